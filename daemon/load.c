/* load.c — the sources' load (load.h): the time until which the daemon
 * counts as catching up a backlog, in clock_now_ms() units. */
#include "daemon/load.h"
#include "lib/clock.h"

#include <stdatomic.h>
#include <stdint.h>

static _Atomic int64_t busy_until;

void load_note_batch(size_t n, size_t batch_size)
{
    if (batch_size > 0 && n >= batch_size)
        atomic_store_explicit(&busy_until, clock_now_ms() + LOAD_HOLD_MS, memory_order_relaxed);
}

bool load_sources_busy(void)
{
    return clock_now_ms() < atomic_load_explicit(&busy_until, memory_order_relaxed);
}
