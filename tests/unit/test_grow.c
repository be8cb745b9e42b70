/* test_grow.c — lib/grow.h: the array grows and keeps its elements; a size
 * that does not fit in size_t is refused with the array and its capacity
 * unchanged (nothing lost); the capacity doubles from min_cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "lib/grow.h"

static void test_grows_keeping_the_elements(void **state)
{
    (void)state;
    long *a = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < 1000; i++) {
        assert_true(GROW_RESERVE(a, cap, i + 1, 16));
        assert_true(cap >= i + 1);
        a[i] = (long)i * 7;
    }
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(a[i], (long)i * 7);
    assert_int_equal(cap, 1024); /* 16 doubled */
    free(a);
}

static void test_room_already_there_is_not_reallocated(void **state)
{
    (void)state;
    int *a = malloc(8 * sizeof *a);
    assert_non_null(a);
    int *before = a;
    size_t cap = 8;
    assert_true(GROW_RESERVE(a, cap, 8, 1));
    assert_ptr_equal(a, before);
    assert_int_equal(cap, 8);
    free(a);
}

static void test_an_overflowing_size_is_refused_and_nothing_lost(void **state)
{
    (void)state;
    uint64_t *a = NULL;
    size_t cap = 0;
    assert_true(GROW_RESERVE(a, cap, 4, 0));
    assert_int_equal(cap, 4);
    a[3] = 42;
    uint64_t *before = a;
    /* need * 8 bytes wraps around size_t */
    assert_false(GROW_RESERVE(a, cap, SIZE_MAX / 4, 0));
    assert_false(GROW_EXACT(a, SIZE_MAX / 8 + 1));
    assert_ptr_equal(a, before);
    assert_int_equal(cap, 4);
    assert_int_equal(a[3], 42);
    free(a);
}

static void test_exact_size(void **state)
{
    (void)state;
    char *s = NULL;
    assert_true(GROW_EXACT(s, 3));
    s[0] = 'a', s[1] = 'b', s[2] = '\0';
    assert_true(GROW_EXACT(s, 5));
    assert_string_equal(s, "ab");
    assert_false(GROW_EXACT(s, 0));
    assert_string_equal(s, "ab");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_keeping_the_elements),
        cmocka_unit_test(test_room_already_there_is_not_reallocated),
        cmocka_unit_test(test_an_overflowing_size_is_refused_and_nothing_lost),
        cmocka_unit_test(test_exact_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
