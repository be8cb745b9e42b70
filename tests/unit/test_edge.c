/* test_edge.c — stored edge values of both layouts (edge.h): layout 1's
 * JSON and layout 2's packed form decoded by the relation's slots (a
 * float, an int and a bool, a version, unset and trailing positions, a slot the
 * configuration no longer has, a relation without slots, values that are
 * not edges), and a top computed from edges (both orders, ties broken by
 * the id bytes as Redis orders members, the limit, an edge offered twice).
 *
 * Values are in units, as the engine holds them: an int as it is, a float
 * in millionths, a bool 0 or 1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/edge.h"
#include "handlers/schema.h"
#include "tests/unit/helpers.h"

/* sales (helpers.h): profit (float, index 0), qty (int, 1), ok (bool, 2). */

/* The slots a reader decodes by: those of the engine (schema_slots) for a
 * PREFIX schema list; list NULL: none. */
static EdgeSlots slots_of(const RelationDef *rel, const char *list)
{
    EdgeSlots s;
    int n;
    memset(&s, 0, sizeof s);
    s.known = list != NULL;
    if (list)
        schema_slots(rel, list, strlen(list), s.slot, &n);
    return s;
}

typedef struct {
    EdgeWeights w;
    char version[24];
    bool has_version;
} Decoded;

static bool decode(const RelationDef *rel, const EdgeSlots *s, const char *raw, Decoded *d)
{
    return edge_decode(rel, s, raw, strlen(raw), &d->w, d->version, sizeof d->version,
                       &d->has_version);
}

/* The weights expected: set[i] and w[i] for each property. */
static void expect_weights(const Decoded *d, const bool set[3], const int64_t w[3])
{
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d->w.set[i], set[i]);
        if (set[i])
            assert_int_equal(d->w.w[i], w[i]);
    }
}

static void test_a_float_an_int_and_a_bool(void **state)
{
    const RelationDef *rel = sales_relation(state);
    EdgeSlots s = slots_of(rel, "profit,qty,ok");
    Decoded d;
    assert_true(decode(rel, &s, "397700000,3,1", &d));
    assert_false(d.has_version);
    expect_weights(&d, (bool[]){true, true, true}, (int64_t[]){397700000, 3, 1});

    assert_true(decode(rel, &s, "17;397700000,,1", &d));
    assert_true(d.has_version);
    assert_string_equal(d.version, "17");
    expect_weights(&d, (bool[]){true, false, true}, (int64_t[]){397700000, 0, 1});
}

static void test_empty_and_trailing_positions(void **state)
{
    const RelationDef *rel = sales_relation(state);
    EdgeSlots s = slots_of(rel, "profit,qty,ok");
    Decoded d;
    /* nothing set, no version: the empty string */
    assert_true(decode(rel, &s, "", &d));
    assert_false(d.has_version);
    expect_weights(&d, (bool[]){false, false, false}, (int64_t[]){0, 0, 0});
    /* a version and nothing set */
    assert_true(decode(rel, &s, "-5;", &d));
    assert_string_equal(d.version, "-5");
    expect_weights(&d, (bool[]){false, false, false}, (int64_t[]){0, 0, 0});
    /* trailing positions left out */
    assert_true(decode(rel, &s, ",-42", &d));
    expect_weights(&d, (bool[]){false, true, false}, (int64_t[]){0, -42, 0});
    /* a bool false is set */
    assert_true(decode(rel, &s, ",,0", &d));
    expect_weights(&d, (bool[]){false, false, true}, (int64_t[]){0, 0, 0});
}

static void test_positions_follow_the_slots_not_the_configuration(void **state)
{
    const RelationDef *rel = sales_relation(state);
    /* slot 1 is a property the configuration removed: its position is
     * ignored; qty, not in the list yet, comes after it (slot 4) */
    EdgeSlots s = slots_of(rel, "old,ok,profit");
    Decoded d;
    assert_true(decode(rel, &s, "7,1,250500000", &d));
    expect_weights(&d, (bool[]){true, false, true}, (int64_t[]){250500000, 0, 1});
    assert_true(decode(rel, &s, "7,0,1,99", &d));
    expect_weights(&d, (bool[]){true, true, true}, (int64_t[]){1, 99, 0});
    /* positions past the last slot the configuration knows are ignored */
    assert_true(decode(rel, &s, "7,0,1,99,100,1.5x", &d) == false);
    assert_true(decode(rel, &s, "7,0,1,,100,-3", &d));
    expect_weights(&d, (bool[]){true, false, true}, (int64_t[]){1, 0, 0});
}

static void test_layout1_json_is_read_as_before(void **state)
{
    const RelationDef *rel = sales_relation(state);
    EdgeSlots none = slots_of(rel, NULL);
    Decoded d;
    assert_true(decode(rel, &none,
                       "{\"version\":\"17\",\"weights\":{\"profit\":250500000,\"ok\":true}}",
                       &d));
    assert_true(d.has_version);
    assert_string_equal(d.version, "17");
    expect_weights(&d, (bool[]){true, false, true}, (int64_t[]){250500000, 0, 1});
    assert_true(decode(rel, &none, "{\"version\":null,\"weights\":{\"qty\":3}}", &d));
    assert_false(d.has_version);
    expect_weights(&d, (bool[]){false, true, false}, (int64_t[]){0, 3, 0});
    assert_true(edge_is_layout1("{}", 2));
    assert_false(edge_is_layout1("1,2", 3));
    assert_false(edge_is_layout1("", 0));
}

static void test_values_that_are_not_edges(void **state)
{
    const RelationDef *rel = sales_relation(state);
    EdgeSlots s = slots_of(rel, "profit,qty,ok");
    EdgeSlots none = slots_of(rel, NULL);
    Decoded d;
    /* a packed value of a relation without slots */
    assert_false(decode(rel, &none, "1,2,1", &d));
    static const char *const bad[] = {
        "1.5",                        /* not an integer */
        "1,x",                        /* not an integer */
        "1, 2",                       /* a space */
        ",,2",                        /* a bool other than 0 or 1 */
        "v;1",                        /* a version that is not an integer */
        ";1",                         /* an empty version */
        "9223372036854775808",        /* beyond int64 */
        "1;2;3",                      /* two versions */
        "01,2",                       /* not as the engines write integers */
        "{\"weights\":3}",            /* JSON that is not an edge */
        "{\"weights\":{\"profit\":1.5}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (decode(rel, &s, bad[i], &d))
            fail_msg("\"%s\" decoded as an edge", bad[i]);
    assert_true(decode(rel, &s, "-9223372036854775808", &d));
    assert_int_equal(d.w.w[SALES_PROFIT], INT64_MIN);
}

/* The build's entries as "id=value id=value ...". */
static void expect_top(const TopBuild *t, const char *want)
{
    char got[512] = "";
    size_t at = 0;
    for (int i = 0; i < t->n; i++)
        at += (size_t)snprintf(got + at, sizeof got - at, "%s%.*s=%lld", i ? " " : "",
                               (int)t->e[i].len, t->e[i].id, (long long)t->e[i].value);
    assert_string_equal(got, want);
}

static void offer(TopBuild *t, const char *id, int64_t v)
{
    assert_true(top_offer(t, id, strlen(id), v));
}

static void test_a_top_desc_is_zrevrange_order(void **state)
{
    (void)state;
    TopBuild t;
    top_build_init(&t, TOP_DESC, 4);
    offer(&t, "a", 5);
    offer(&t, "b", 9);
    offer(&t, "c", 5);
    offer(&t, "ab", 5);
    offer(&t, "d", -1);
    offer(&t, "e", 1);
    /* value descending, then id bytes descending ("ab" after "a" ascending) */
    expect_top(&t, "b=9 c=5 ab=5 a=5");
    top_build_free(&t);
}

static void test_a_top_asc_is_zrange_order(void **state)
{
    (void)state;
    TopBuild t;
    top_build_init(&t, TOP_ASC, 3);
    offer(&t, "b", 9);
    offer(&t, "ab", 5);
    offer(&t, "a", 5);
    offer(&t, "\xff", -3);
    offer(&t, "c", 5);
    expect_top(&t, "\xff=-3 a=5 ab=5");
    /* an id that is a prefix of another comes first ascending, as in Redis */
    assert_true(top_cmp(TOP_ASC, 5, "a", 1, 5, "ab", 2) < 0);
    assert_true(top_cmp(TOP_DESC, 5, "a", 1, 5, "ab", 2) > 0);
    assert_int_equal(top_cmp(TOP_DESC, 5, "a", 1, 5, "a", 1), 0);
    top_build_free(&t);
}

static void test_an_edge_offered_twice_is_kept_once(void **state)
{
    (void)state;
    TopBuild t;
    top_build_init(&t, TOP_DESC, 3);
    offer(&t, "x", 3);
    offer(&t, "y", 2);
    offer(&t, "x", 3);
    offer(&t, "z", 1);
    offer(&t, "z", 1);
    expect_top(&t, "x=3 y=2 z=1");
    top_build_free(&t);
}

static void test_fewer_edges_than_the_limit(void **state)
{
    (void)state;
    TopBuild t;
    top_build_init(&t, TOP_DESC, 20);
    expect_top(&t, "");
    offer(&t, "only", 0);
    expect_top(&t, "only=0");
    top_build_free(&t);
    expect_top(&t, "");
}

static int setup(void **state)
{
    return config_setup(state, SALES_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_float_an_int_and_a_bool),
        cmocka_unit_test(test_empty_and_trailing_positions),
        cmocka_unit_test(test_positions_follow_the_slots_not_the_configuration),
        cmocka_unit_test(test_layout1_json_is_read_as_before),
        cmocka_unit_test(test_values_that_are_not_edges),
        cmocka_unit_test(test_a_top_desc_is_zrevrange_order),
        cmocka_unit_test(test_a_top_asc_is_zrange_order),
        cmocka_unit_test(test_an_edge_offered_twice_is_kept_once),
        cmocka_unit_test(test_fewer_edges_than_the_limit),
    };
    return cmocka_run_group_tests(tests, setup, config_teardown);
}
