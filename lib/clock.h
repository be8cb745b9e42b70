/* clock.h — monotonic time in milliseconds (CLOCK_MONOTONIC: never steps
 * back, unaffected by changes of the wall clock). No state, thread-safe,
 * cannot fail. */
#ifndef RELATIOND_CLOCK_H
#define RELATIOND_CLOCK_H

#include <stdint.h>

int64_t clock_now_ms(void);

#endif
