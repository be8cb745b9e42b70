/* lifecycle.h — the run state every thread reads: running, draining (SIGTERM
 * received, finish the batch in hand), or past the drain deadline (abandon
 * unfinished work; it was not acknowledged, the brokers deliver it again). */
#ifndef RELATIOND_LIFECYCLE_H
#define RELATIOND_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>

/* Starts the drain: stop fetching, finish within timeout_ms. */
void lifecycle_request_stop(int timeout_ms);
bool lifecycle_stopping(void);
bool lifecycle_deadline_passed(void);

/* A thread gave up work past the deadline: the exit status says so. */
void lifecycle_note_abandoned(void);
bool lifecycle_abandoned(void);

/* Sleeps ms, waking early once the drain deadline has passed (a beat every
 * 50 ms meanwhile). */
void lifecycle_sleep_ms(int64_t ms);

/* The watchdog's view of the source threads: each registers once, then
 * beats on every turn of its loop, while it sleeps a back-off and while it
 * waits for confirms. A thread stuck in a call that never returns stops
 * beating. */
void lifecycle_register_thread(void);
void lifecycle_beat(void);
/* True when every registered thread beat since the previous call (one
 * caller: the main thread). */
bool lifecycle_all_beat(void);

#endif
