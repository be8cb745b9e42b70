/* load.h — whether the sources are catching up a backlog, for the hooks'
 * deliverers to step aside (hook_deliver.h, the hooks' `defer_ms`).
 *
 * A source that takes a full batch (engine.batch_size messages) at once
 * (within LOAD_FILL_MS: they were waiting, the source is behind its
 * broker) marks the daemon busy for the next LOAD_HOLD_MS. A batch that
 * came short, or that filled only as messages arrived (a steady flow the
 * daemon keeps up with), marks nothing. Threads: any (one atomic).
 * Failure: none. */
#ifndef RELATIOND_LOAD_H
#define RELATIOND_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How fast a full batch must have been taken to count, ms. */
#define LOAD_FILL_MS 2
/* How long one such batch keeps the daemon busy, ms: longer than a source
 * takes between two batches while it drains. */
#define LOAD_HOLD_MS 200

/* A batch of n messages started, taken in fill_ms; batch_size the most one
 * takes. */
void load_note_batch(size_t n, size_t batch_size, int64_t fill_ms);
/* Such a batch started within the last LOAD_HOLD_MS. */
bool load_sources_busy(void);

#endif
