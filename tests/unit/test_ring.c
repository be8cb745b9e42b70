/* test_ring.c — lib/ring.h: slots go in flight and come back first in,
 * first out, around the ring; at most depth - 1 in flight besides the
 * current slot; the oldest is the slot pushed first; misuse (a push onto a
 * full ring, a pop from an empty one) aborts instead of naming a wrong slot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/ring.h"

static void test_starts_empty_at_slot_zero(void **state)
{
    (void)state;
    Ring r;
    ring_init(&r, 3);
    assert_int_equal(ring_current(&r), 0);
    assert_int_equal(ring_in_flight(&r), 0);
    assert_false(ring_full(&r));
}

/* The pipeline's turn: push the current, pop the oldest when full. Over
 * many turns every slot comes back in the order it went, and the slot being
 * filled is never one in flight. */
static void test_first_in_first_out_around_the_ring(void **state)
{
    (void)state;
    for (int depth = 2; depth <= 5; depth++) {
        Ring r;
        ring_init(&r, depth);
        int pushed[64], npushed = 0, npopped = 0;
        for (int turn = 0; turn < 40; turn++) {
            if (ring_full(&r)) {
                assert_int_equal(ring_oldest(&r), pushed[npopped]);
                assert_int_equal(ring_pop(&r), pushed[npopped]);
                npopped++;
            }
            for (int k = 0; k < ring_in_flight(&r); k++)
                assert_int_not_equal(pushed[npopped + k], ring_current(&r));
            assert_int_equal(ring_current(&r), turn % depth);
            pushed[npushed++] = ring_current(&r);
            ring_push(&r);
            assert_true(ring_in_flight(&r) <= depth - 1);
        }
        while (ring_in_flight(&r))
            assert_int_equal(ring_pop(&r), pushed[npopped++]);
        assert_int_equal(npopped, npushed);
    }
}

static void test_full_at_depth_minus_one(void **state)
{
    (void)state;
    Ring r;
    ring_init(&r, 3);
    ring_push(&r);
    assert_false(ring_full(&r));
    ring_push(&r);
    assert_true(ring_full(&r));
    assert_int_equal(ring_in_flight(&r), 2);
    assert_int_equal(ring_current(&r), 2);
    assert_int_equal(ring_oldest(&r), 0);
    assert_int_equal(ring_pop(&r), 0);
    assert_int_equal(ring_oldest(&r), 1);
    assert_false(ring_full(&r));
}

static void test_before_is_the_previous_slot(void **state)
{
    (void)state;
    Ring r;
    ring_init(&r, 3);
    assert_int_equal(ring_before(&r, 0), 2);
    assert_int_equal(ring_before(&r, 1), 0);
    assert_int_equal(ring_before(&r, 2), 1);
}

/* Runs misuse in a child: it must die of SIGABRT. */
static void assert_aborts(void (*misuse)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        misuse();
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void push_onto_full(void)
{
    Ring r;
    ring_init(&r, 2);
    ring_push(&r);
    ring_push(&r);
}

static void pop_from_empty(void)
{
    Ring r;
    ring_init(&r, 3);
    ring_pop(&r);
}

static void test_misuse_aborts(void **state)
{
    (void)state;
    assert_aborts(push_onto_full);
    assert_aborts(pop_from_empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_empty_at_slot_zero),
        cmocka_unit_test(test_first_in_first_out_around_the_ring),
        cmocka_unit_test(test_full_at_depth_minus_one),
        cmocka_unit_test(test_before_is_the_previous_slot),
        cmocka_unit_test(test_misuse_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
