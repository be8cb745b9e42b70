/* test_clock.c — lib/clock.h: the deadline of a timed wait lies the asked
 * milliseconds after now on the asked clock, its nanoseconds normalized
 * (pthread_cond_timedwait refuses tv_nsec >= 10^9 with EINVAL: a wait that
 * would return at once, a busy loop). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "lib/clock.h"

static int64_t ms_of(struct timespec ts)
{
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void check(clockid_t clock, int64_t ms)
{
    struct timespec before, after;
    clock_gettime(clock, &before);
    struct timespec d = clock_deadline(clock, ms);
    clock_gettime(clock, &after);
    assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
    assert_true(ms_of(d) >= ms_of(before) + ms);
    assert_true(ms_of(d) <= ms_of(after) + ms);
}

static void test_deadlines_on_both_clocks(void **state)
{
    (void)state;
    const int64_t ms[] = {0, 1, 5, 200, 999, 1000, 1001, 1999, 60000, 3600001};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        check(CLOCK_MONOTONIC, ms[i]);
        check(CLOCK_REALTIME, ms[i]);
    }
}

static void test_now_never_goes_back(void **state)
{
    (void)state;
    int64_t last = clock_now_ms();
    for (int i = 0; i < 10000; i++) {
        int64_t now = clock_now_ms();
        assert_true(now >= last);
        last = now;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadlines_on_both_clocks),
        cmocka_unit_test(test_now_never_goes_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
