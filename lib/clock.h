/* clock.h — monotonic time in milliseconds (CLOCK_MONOTONIC: never steps
 * back, unaffected by changes of the wall clock), and the deadlines of
 * timed waits. No state, thread-safe, cannot fail. */
#ifndef RELATIOND_CLOCK_H
#define RELATIOND_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t clock_now_ms(void);
/* The time ms milliseconds from now on clock (CLOCK_MONOTONIC, or
 * CLOCK_REALTIME for a condition variable left on its default clock): the
 * deadline of a pthread_cond_timedwait. */
struct timespec clock_after_ms(clockid_t clock, int64_t ms);

#endif
