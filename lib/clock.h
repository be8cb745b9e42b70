/* clock.h — monotonic time in milliseconds (CLOCK_MONOTONIC: never steps
 * back, unaffected by changes of the wall clock), and the deadlines of
 * timed waits. No state, thread-safe, cannot fail. */
#ifndef RELATIOND_CLOCK_H
#define RELATIOND_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t clock_now_ms(void);

/* The time ms milliseconds from now on clock (the clock of the condition
 * variable it is for: CLOCK_MONOTONIC where the condition was made with
 * pthread_condattr_setclock, else CLOCK_REALTIME), for
 * pthread_cond_timedwait; ms >= 0. */
struct timespec clock_deadline(clockid_t clock, int64_t ms);

#endif
