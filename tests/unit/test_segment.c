/* test_segment.c — the conditions of `relationctl segment --where`
 * (segment.h): each operator on an int, a float and a bool, floats compared
 * exactly at 6 decimals (and values finer than that), `and`, an unset
 * property satisfying no condition, and each parse error with its message.
 *
 * Weights are given in units, as the engine holds them: an int as it is, a
 * float in millionths, a bool 0 or 1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "handlers/segment.h"
#include "tests/unit/helpers.h"

/* sales (helpers.h): profit (float, index 0), qty (int, 1), ok (bool, 2). */
enum { PROFIT = SALES_PROFIT, QTY = SALES_QTY, OK = SALES_OK };

static void parse_ok(void **state, const char *expr, Segment *s)
{
    char err[256] = "";
    if (!segment_parse(sales_relation(state), expr, s, err, sizeof err))
        fail_msg("segment_parse(%s): %s", expr, err);
}

/* Weights with only property i set, to v. */
static EdgeWeights one(int i, int64_t v)
{
    EdgeWeights w;
    memset(&w, 0, sizeof w);
    w.set[i] = true;
    w.w[i] = v;
    return w;
}

/* An expression on one property and, for each value tried, whether it
 * matches (want[k] for the k-th value). */
typedef struct {
    const char *expr;
    int want[5];
} Case;

/* Each case's expression, on property i, matched by exactly the values xs[k]
 * with want[k] != 0. */
static void expect_matches(void **state, int i, const int64_t *xs, size_t nxs, const Case *cases,
                           size_t ncases)
{
    for (size_t c = 0; c < ncases; c++) {
        Segment s;
        parse_ok(state, cases[c].expr, &s);
        assert_int_equal(s.n, 1);
        for (size_t k = 0; k < nxs; k++) {
            EdgeWeights w = one(i, xs[k]);
            if (segment_match(&s, &w) != (cases[c].want[k] != 0))
                fail_msg("\"%s\" on %lld: %s expected", cases[c].expr, (long long)xs[k],
                         cases[c].want[k] ? "a match" : "no match");
        }
    }
}

#define N(a) (sizeof(a) / sizeof(a)[0])

static void test_no_condition_matches_every_edge(void **state)
{
    Segment s;
    EdgeWeights none, all = one(PROFIT, -5);
    memset(&none, 0, sizeof none);
    all.set[QTY] = all.set[OK] = true;
    parse_ok(state, NULL, &s);
    assert_int_equal(s.n, 0);
    assert_true(segment_match(&s, &none));
    assert_true(segment_match(&s, &all));
    parse_ok(state, "", &s);
    assert_int_equal(s.n, 0);
    assert_true(segment_match(&s, &none));
}

static void test_each_operator_on_an_int(void **state)
{
    static const int64_t xs[] = {-4, 2, 3, 4, 1000000000000000LL};
    static const Case cases[] = {
        {"qty = 3", {0, 0, 1, 0, 0}},  {"qty != 3", {1, 1, 0, 1, 1}},
        {"qty > 3", {0, 0, 0, 1, 1}},  {"qty >= 3", {0, 0, 1, 1, 1}},
        {"qty < 3", {1, 1, 0, 0, 0}},  {"qty <= 3", {1, 1, 1, 0, 0}},
        {"qty=3", {0, 0, 1, 0, 0}},    {"qty<=3", {1, 1, 1, 0, 0}},
        {"qty > -4", {0, 1, 1, 1, 1}}, {"qty = +3", {0, 0, 1, 0, 0}},
        {"qty >= 1000000000000000", {0, 0, 0, 0, 1}},
    };
    expect_matches(state, QTY, xs, N(xs), cases, N(cases));
}

/* A float is compared in millionths: 2.5 is 2500000 units. */
static void test_each_operator_on_a_float(void **state)
{
    static const int64_t xs[] = {-2500000, 2499999, 2500000, 2500001, 0};
    static const Case cases[] = {
        {"profit = 2.5", {0, 0, 1, 0, 0}},     {"profit != 2.5", {1, 1, 0, 1, 1}},
        {"profit > 2.5", {0, 0, 0, 1, 0}},     {"profit >= 2.5", {0, 0, 1, 1, 0}},
        {"profit < 2.5", {1, 1, 0, 0, 1}},     {"profit <= 2.5", {1, 1, 1, 0, 1}},
        {"profit = 2.500000", {0, 0, 1, 0, 0}}, {"profit = 2.5000000000", {0, 0, 1, 0, 0}},
        {"profit = -2.5", {1, 0, 0, 0, 0}},    {"profit = 0", {0, 0, 0, 0, 1}},
        {"profit = 2.499999", {0, 1, 0, 0, 0}}, {"profit = 2.500001", {0, 0, 0, 1, 0}},
        {"profit > 2", {0, 1, 1, 1, 0}},
    };
    expect_matches(state, PROFIT, xs, N(xs), cases, N(cases));
}

/* A value finer than a millionth lies between two weights: = matches none,
 * != every one, and the order is exact (2.0000005 is above 2.000000 and
 * below 2.000001; -0.0000001 above -0.000001 and below 0). */
static void test_a_float_finer_than_six_decimals(void **state)
{
    static const int64_t xs[] = {1999999, 2000000, 2000001, -1, 0};
    static const Case cases[] = {
        {"profit = 2.0000005", {0, 0, 0, 0, 0}},  {"profit != 2.0000005", {1, 1, 1, 1, 1}},
        {"profit > 2.0000005", {0, 0, 1, 0, 0}},  {"profit >= 2.0000005", {0, 0, 1, 0, 0}},
        {"profit < 2.0000005", {1, 1, 0, 1, 1}},  {"profit <= 2.0000005", {1, 1, 0, 1, 1}},
        {"profit <= -0.0000001", {0, 0, 0, 1, 0}}, {"profit > -0.0000001", {1, 1, 1, 0, 1}},
        {"profit < -0.0000001", {0, 0, 0, 1, 0}},  {"profit >= -0.0000001", {1, 1, 1, 0, 1}},
    };
    expect_matches(state, PROFIT, xs, N(xs), cases, N(cases));
}

static void test_a_bool_with_true_or_false(void **state)
{
    static const int64_t xs[] = {0, 1};
    static const Case cases[] = {
        {"ok = true", {0, 1}},  {"ok != true", {1, 0}},
        {"ok = false", {1, 0}}, {"ok != false", {0, 1}},
        {"ok=true", {0, 1}},
    };
    expect_matches(state, OK, xs, N(xs), cases, N(cases));
}

/* "qty != 0 and qty != 1 and ..." of n conditions. */
static void conditions(char *expr, size_t size, int n)
{
    expr[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(expr + strlen(expr), size - strlen(expr), "%sqty != %d", i ? " and " : "", i);
}

/* Every condition joined by `and` must hold; each one alone failing fails. */
static void test_and_needs_every_condition(void **state)
{
    Segment s;
    parse_ok(state, "ok=false and profit< 50 and qty <=4", &s);
    assert_int_equal(s.n, 3);
    EdgeWeights w = one(OK, 0);
    w.set[PROFIT] = w.set[QTY] = true;
    w.w[PROFIT] = 49999999;
    w.w[QTY] = 4;
    assert_true(segment_match(&s, &w));
    EdgeWeights bad = w;
    bad.w[OK] = 1;
    assert_false(segment_match(&s, &bad));
    bad = w;
    bad.w[PROFIT] = 50000000;
    assert_false(segment_match(&s, &bad));
    bad = w;
    bad.w[QTY] = 5;
    assert_false(segment_match(&s, &bad));

    /* 32 conditions are the most */
    char expr[33 * 16];
    conditions(expr, sizeof expr, SEGMENT_MAX_CONDS);
    parse_ok(state, expr, &s);
    assert_int_equal(s.n, SEGMENT_MAX_CONDS);
    w = one(QTY, 32);
    assert_true(segment_match(&s, &w));
    w.w[QTY] = 31;
    assert_false(segment_match(&s, &w));
}

/* An edge without the property satisfies no condition on it, not even !=. */
static void test_an_unset_property_matches_nothing(void **state)
{
    static const char *const exprs[] = {
        "qty = 0",  "qty != 0",         "qty > -1000", "qty >= 0",          "qty < 1000",
        "qty <= 0", "profit != 2.0000005", "ok != true",  "ok != false",
    };
    EdgeWeights w;
    memset(&w, 0, sizeof w);
    w.w[QTY] = 0; /* a value there, but not set */
    for (size_t k = 0; k < N(exprs); k++) {
        Segment s;
        parse_ok(state, exprs[k], &s);
        if (segment_match(&s, &w))
            fail_msg("\"%s\" matched an edge without the property", exprs[k]);
    }
    /* and in a conjunction: one unset property fails the whole */
    Segment s;
    parse_ok(state, "qty >= 0 and ok != true", &s);
    w = one(QTY, 1);
    assert_false(segment_match(&s, &w));
    w.set[OK] = true;
    assert_true(segment_match(&s, &w));
}

static void test_parse_errors_name_what_is_wrong(void **state)
{
    static const struct {
        const char *expr, *message;
    } cases[] = {
        {"nope > 1", "--where: unknown property \"nope\" of relation sales"},
        {"ok > true", "--where: ok: a bool takes only = or != with true or false"},
        {"ok = 1", "--where: ok: a bool takes only = or != with true or false"},
        {"ok = TRUE", "--where: ok: a bool takes only = or != with true or false"},
        {"qty = 1.5", "--where: qty: an int takes only integers, not \"1.5\""},
        {"qty = 1000000000000001", "--where: qty: an int takes only integers, not "
                                   "\"1000000000000001\""},
        {"qty = -", "--where: qty: an int takes only integers, not \"-\""},
        {"profit = abc", "--where: profit: a float takes a number, not \"abc\""},
        {"profit = 1e3", "--where: profit: a float takes a number, not \"1e3\""},
        {"profit = 5.", "--where: profit: a float takes a number, not \"5.\""},
        {"profit = .5", "--where: profit: a float takes a number, not \".5\""},
        {"profit = 1000000001", "--where: profit: a float takes a number, not \"1000000001\""},
        {"profit ~ 1", "--where: profit: expected an operator (= != > >= < <=)"},
        {"profit", "--where: profit: expected an operator (= != > >= < <=)"},
        {"profit >", "--where: profit: a value is missing"},
        {"profit > 1 or qty = 2", "--where: expected \"and\" between conditions, not \"or\""},
        {"profit > 1 AND qty = 2", "--where: expected \"and\" between conditions, not \"AND\""},
        {"profit > 1 andqty = 2", "--where: expected \"and\" between conditions, not \"andqty\""},
        {"profit > 1 and", "--where: expected a property name at \"\""},
        {"> 1", "--where: expected a property name at \"> 1\""},
        {"Profit > 1", "--where: expected a property name at \"Profit > 1\""},
        {"  ", "--where: no condition"},
    };
    for (size_t k = 0; k < N(cases); k++) {
        Segment s;
        char err[256];
        memset(err, 0, sizeof err);
        if (segment_parse(sales_relation(state), cases[k].expr, &s, err, sizeof err))
            fail_msg("\"%s\" parsed, expected: %s", cases[k].expr, cases[k].message);
        assert_string_equal(err, cases[k].message);
    }

    /* 33 conditions: one too many */
    char expr[33 * 16];
    conditions(expr, sizeof expr, SEGMENT_MAX_CONDS + 1);
    Segment s;
    char err[256] = "";
    assert_false(segment_parse(sales_relation(state), expr, &s, err, sizeof err));
    assert_string_equal(err, "--where: more than 32 conditions");
}

static int setup(void **state)
{
    return config_setup(state, SALES_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_condition_matches_every_edge),
        cmocka_unit_test(test_each_operator_on_an_int),
        cmocka_unit_test(test_each_operator_on_a_float),
        cmocka_unit_test(test_a_float_finer_than_six_decimals),
        cmocka_unit_test(test_a_bool_with_true_or_false),
        cmocka_unit_test(test_and_needs_every_condition),
        cmocka_unit_test(test_an_unset_property_matches_nothing),
        cmocka_unit_test(test_parse_errors_name_what_is_wrong),
    };
    return cmocka_run_group_tests(tests, setup, config_teardown);
}
