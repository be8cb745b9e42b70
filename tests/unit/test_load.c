/* test_load.c — daemon/load.c: what marks the daemon as catching up a
 * backlog (a full batch), what does not (a short batch), and the mark
 * lapsing LOAD_HOLD_MS after the last full batch; /proc/stat's first line
 * read into the machine's idle share. Through the daemon:
 * tests/e2e/test_hooks_defer.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <time.h>

#include "daemon/load.h"
#include "lib/clock.h"

static void sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Waits until a mark left by an earlier test has lapsed. */
static void lapse(void)
{
    sleep_ms(LOAD_HOLD_MS + 20);
    assert_false(load_sources_busy());
}

static void test_load_short_batches_are_no_backlog(void **state)
{
    (void)state;
    lapse();
    load_note_batch(255, 256); /* the broker had no more */
    assert_false(load_sources_busy());
    load_note_batch(0, 256);
    assert_false(load_sources_busy());
    load_note_batch(1, 0); /* no batch size: never busy */
    assert_false(load_sources_busy());
}

static void test_load_a_full_batch_at_once_marks_a_backlog_until_it_lapses(void **state)
{
    (void)state;
    lapse();
    load_note_batch(256, 256);
    assert_true(load_sources_busy());
    load_note_batch(10, 256); /* a short batch does not end the mark */
    assert_true(load_sources_busy());
    sleep_ms(LOAD_HOLD_MS / 2);
    load_note_batch(300, 256); /* renewed: LOAD_HOLD_MS from now */
    int64_t renewed = clock_now_ms();
    sleep_ms(LOAD_HOLD_MS / 2 + 20);
    bool busy = load_sources_busy();
    if (clock_now_ms() - renewed < LOAD_HOLD_MS) /* not when the machine held us longer */
        assert_true(busy);
    sleep_ms((long)(LOAD_HOLD_MS + 20 - (clock_now_ms() - renewed)));
    assert_false(load_sources_busy());
}

static void test_load_the_cpu_line_of_proc_stat(void **state)
{
    (void)state;
    uint64_t total = 0, idle = 0;
    /* user nice system idle iowait irq softirq steal guest guest_nice */
    assert_true(load_stat_parse("cpu  100 5 40 800 20 3 2 30 7 1\ncpu0 1 2 3 4\n", &total,
                                &idle));
    assert_int_equal(total, 100 + 5 + 40 + 800 + 20 + 3 + 2 + 30); /* guests in user already */
    assert_int_equal(idle, 800 + 20);
    /* an old kernel's four fields */
    assert_true(load_stat_parse("cpu 1 2 3 4\n", &total, &idle));
    assert_int_equal(total, 10);
    assert_int_equal(idle, 4);
    assert_false(load_stat_parse("cpu0 1 2 3 4\n", &total, &idle));
    assert_false(load_stat_parse("cpu 1 2\n", &total, &idle));
    assert_false(load_stat_parse("", &total, &idle));
}

static void test_load_the_idle_share_of_this_machine(void **state)
{
    (void)state;
    double first = load_idle_share(); /* -1 (no sample before) or a share */
    assert_true(first == -1 || (first >= 0 && first <= 1));
    sleep_ms(LOAD_SAMPLE_MS + 20); /* a sleeping test: the machine's idle share is taken */
    double share = load_idle_share();
    assert_true(share >= 0 && share <= 1);
    /* within LOAD_SAMPLE_MS: the same sample */
    assert_true(load_idle_share() == share);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_short_batches_are_no_backlog),
        cmocka_unit_test(test_load_a_full_batch_at_once_marks_a_backlog_until_it_lapses),
        cmocka_unit_test(test_load_the_cpu_line_of_proc_stat),
        cmocka_unit_test(test_load_the_idle_share_of_this_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
