/* load.h — whether the sources are catching up a backlog, for the hooks'
 * deliverers to step aside (hook_deliver.h, the hooks' `defer_ms`).
 *
 * A source that takes a full batch (engine.batch_size messages) marks the
 * daemon busy for the next LOAD_HOLD_MS. A source waits for messages only
 * before a batch's first one and then takes what is ready, so a batch
 * comes full only when that many were waiting at once: the source is
 * behind its broker. A steady flow the daemon keeps up with gives shorter
 * batches and marks nothing. Threads: any (one atomic). Failure: none. */
#ifndef RELATIOND_LOAD_H
#define RELATIOND_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long one such batch keeps the daemon busy, ms: longer than a source
 * takes between two batches while it drains. */
#define LOAD_HOLD_MS 200

/* A batch of n messages started; batch_size the most one takes. */
void load_note_batch(size_t n, size_t batch_size);
/* Such a batch started within the last LOAD_HOLD_MS. */
bool load_sources_busy(void);

#endif
