/* load.h — whether the sources are catching up a backlog, for the hooks'
 * deliverers to step aside (hook_deliver.h, the hooks' `defer_ms`).
 *
 * A source that takes a full batch (engine.batch_size messages) marks the
 * daemon busy for the next LOAD_HOLD_MS. A source waits for messages only
 * before a batch's first one and then takes what is ready, so a batch
 * comes full only when that many were waiting at once: the source is
 * behind its broker. A steady flow the daemon keeps up with gives shorter
 * batches and marks nothing. And how idle the machine's CPU is, for a
 * deferred hook to send with what the sources leave. Threads: any.
 * Failure: none (an unknown idle share is -1). */
#ifndef RELATIOND_LOAD_H
#define RELATIOND_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long one such batch keeps the daemon busy, ms: longer than a source
 * takes between two batches while it drains. */
#define LOAD_HOLD_MS 200

/* The machine's CPU sampled at most every LOAD_SAMPLE_MS, ms. */
#define LOAD_SAMPLE_MS 100

/* A batch of n messages started; batch_size the most one takes. */
void load_note_batch(size_t n, size_t batch_size);
/* Such a batch started within the last LOAD_HOLD_MS. */
bool load_sources_busy(void);

/* The share of the machine's CPU time (every core) that was idle between
 * the last two samples of /proc/stat, taken at least LOAD_SAMPLE_MS apart
 * (a call past that takes the next one), 0..1; -1 while unknown (the
 * first call, /proc/stat unreadable). Threads: any (a mutex around the
 * samples). */
double load_idle_share(void);

/* From /proc/stat's text, the sums of its first ("cpu") line: *total of
 * every field (the guests' excepted: counted in user and nice already) and
 * *idle of idle and iowait. False when the text has no such line. */
bool load_stat_parse(const char *text, uint64_t *total, uint64_t *idle);

#endif
