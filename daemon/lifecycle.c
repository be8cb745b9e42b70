/* lifecycle.c — the run state shared by the threads (lifecycle.h). */
#include "daemon/lifecycle.h"
#include "lib/clock.h"

#include <stdatomic.h>
#include <time.h>

static atomic_bool stopping;
static atomic_llong deadline_ms = INT64_MAX;
static atomic_bool abandoned;

#define MAX_THREADS 8
static atomic_uint_fast64_t beats[MAX_THREADS];
static atomic_int nthreads;
static _Thread_local int my_slot = -1;

void lifecycle_register_thread(void)
{
    int n = atomic_fetch_add(&nthreads, 1);
    my_slot = n < MAX_THREADS ? n : -1;
}

void lifecycle_beat(void)
{
    if (my_slot >= 0)
        atomic_fetch_add_explicit(&beats[my_slot], 1, memory_order_relaxed);
}

bool lifecycle_all_beat(void)
{
    static uint_fast64_t last[MAX_THREADS];
    bool all = true;
    int n = atomic_load(&nthreads);
    for (int i = 0; i < n && i < MAX_THREADS; i++) {
        uint_fast64_t now = atomic_load_explicit(&beats[i], memory_order_relaxed);
        all &= now != last[i];
        last[i] = now;
    }
    return all;
}

void lifecycle_note_abandoned(void)
{
    atomic_store(&abandoned, true);
}

bool lifecycle_abandoned(void)
{
    return atomic_load(&abandoned);
}

void lifecycle_request_stop(int timeout_ms)
{
    atomic_store(&deadline_ms, clock_now_ms() + timeout_ms);
    atomic_store(&stopping, true);
}

bool lifecycle_stopping(void)
{
    return atomic_load(&stopping);
}

bool lifecycle_deadline_passed(void)
{
    return clock_now_ms() >= atomic_load(&deadline_ms);
}

void lifecycle_sleep_ms(int64_t ms)
{
    int64_t end = clock_now_ms() + ms;
    for (int64_t now = clock_now_ms(); now < end && !lifecycle_deadline_passed();
         now = clock_now_ms()) {
        int64_t slice = end - now < 50 ? end - now : 50;
        lifecycle_beat();
        struct timespec ts = {slice / 1000, (slice % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}
