/* test_render.c — templates filled with a profile's relation variables
 * (render.h): counts and totals, {for $i $item = ....top} loops with their
 * {else} and nesting, every other {...} passed through unchanged, and each
 * error with its message and kind (usage, or the statistics not read).
 *
 * The statistics come from a table here, as `relationctl render` gets them
 * from Redis; the callback records which sides were asked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "handlers/render.h"
#include "tests/unit/helpers.h"

/* sales: profit (float, total, top of 3), qty (int, total, top of 2), ok
 * (bool). peers: score (int, total, no top), w (float, top of 2, no total). */
static const char config_text[] =
    "{\"redis\": {\"url\": \"redis://localhost\"},\n"
    " \"relations\": [\n"
    "  {\"short\": \"sales\", \"database_a\": \"managers\", \"database_b\": \"customers\",\n"
    "   \"properties\": [\n"
    "     {\"short\": \"profit\", \"type\": \"float\", \"save_amount\": true,\n"
    "      \"save_top\": {\"order\": \"desc\", \"limit\": 3}},\n"
    "     {\"short\": \"qty\", \"type\": \"int\", \"save_amount\": true,\n"
    "      \"save_top\": {\"order\": \"asc\", \"limit\": 2}},\n"
    "     {\"short\": \"ok\", \"type\": \"bool\"}]},\n"
    "  {\"short\": \"peers\", \"database_a\": \"people\", \"database_b\": \"people\",\n"
    "   \"properties\": [\n"
    "     {\"short\": \"score\", \"type\": \"int\", \"save_amount\": true},\n"
    "     {\"short\": \"w\", \"type\": \"float\", \"save_top\": {\"order\": \"desc\", "
    "\"limit\": 2}}]}]}\n";

/* The statistics of one profile: [relation][side]; asked: the sides read,
 * as "sales.direct;..."; fail: a reading error to give instead. */
typedef struct {
    const Config *cfg;
    SideStats st[2][2];
    char asked[256];
    const char *fail;
} Stats;

static const SideStats *stats_of(void *ctx, const RelationDef *rel, Side side, char *err,
                                 size_t errlen)
{
    Stats *s = ctx;
    size_t n = strlen(s->asked);
    snprintf(s->asked + n, sizeof s->asked - n, "%s%s.%s", n ? ";" : "", rel->short_name,
             side == SIDE_DIRECT ? "direct" : "reverse");
    if (s->fail) {
        snprintf(err, errlen, "%s", s->fail);
        return NULL;
    }
    int r = (int)(rel - s->cfg->relations);
    assert_true(r >= 0 && r < 2);
    return &s->st[r][side];
}

/* sales.direct: 3 edges; profit count 3 total 400.5, top 1001 (250.5),
 * 7 (100), 8 (50); qty count 2 total 10, top 8 (1), 1001 (3); ok count 1.
 * sales.reverse: 1 edge, empty tops. peers.direct: score total -7,
 * w top x (0.007813). peers.reverse: nothing. */
static void fill(Stats *s, void **state)
{
    memset(s, 0, sizeof *s);
    s->cfg = *state;
    SideStats *d = &s->st[0][SIDE_DIRECT];
    d->count = 3;
    d->pcount[0] = 3;
    d->ptotal[0] = 400500000;
    d->ntop[0] = 3;
    d->top[0][0] = (TopEntry){"1001", 4, 250500000};
    d->top[0][1] = (TopEntry){"7", 1, 100000000};
    d->top[0][2] = (TopEntry){"8", 1, 50000000};
    d->pcount[1] = 2;
    d->ptotal[1] = 10;
    d->ntop[1] = 2;
    d->top[1][0] = (TopEntry){"8", 1, 1};
    d->top[1][1] = (TopEntry){"1001xx", 4, 3}; /* the id is its len bytes */
    d->pcount[2] = 1;
    s->st[0][SIDE_REVERSE].count = 1;
    SideStats *p = &s->st[1][SIDE_DIRECT];
    p->count = 1;
    p->pcount[0] = 1;
    p->ptotal[0] = -7;
    p->pcount[1] = 1;
    p->ntop[1] = 1;
    p->top[1][0] = (TopEntry){"x", 1, -7813};
}

/* Renders text; returns the output (NUL-terminated, in out) or fails. */
static const char *render_ok(void **state, Stats *s, const char *text, JsonBuf *out)
{
    char err[512] = "";
    bool usage = true;
    jsonbuf_reset(out);
    if (!render_template(*state, text, strlen(text), stats_of, s, out, &usage, err, sizeof err))
        fail_msg("render of \"%s\": %s", text, err);
    assert_false(usage);
    jsonbuf_char(out, '\0');
    assert_false(out->oom);
    return out->data;
}

static void expect_render(void **state, const char *text, const char *want)
{
    Stats s;
    JsonBuf out = {0};
    fill(&s, state);
    assert_string_equal(render_ok(state, &s, text, &out), want);
    jsonbuf_free(&out);
}

static void test_variables(void **state)
{
    expect_render(state, "D {relation.sales.direct.count}; profit "
                         "{relation.sales.direct.profit.count}/{relation.sales.direct.profit.total}; "
                         "qty {relation.sales.direct.qty.total}; ok {relation.sales.direct.ok.count}",
                  "D 3; profit 3/400.5; qty 10; ok 1");
    expect_render(state, "R {relation.sales.reverse.count} {relation.sales.reverse.profit.total} "
                         "P {relation.peers.direct.score.total} {relation.peers.reverse.count}",
                  "R 1 0 P -7 0");
    expect_render(state, "", "");
    expect_render(state, "no variable at all", "no variable at all");

    /* each side read once per variable, no more */
    Stats s;
    JsonBuf out = {0};
    fill(&s, state);
    render_ok(state, &s, "{relation.sales.reverse.count}{relation.peers.direct.w.count}", &out);
    assert_string_equal(s.asked, "sales.reverse;peers.direct");
    fill(&s, state);
    render_ok(state, &s, "text {unknown}", &out);
    assert_string_equal(s.asked, "");
    jsonbuf_free(&out);
}

static void test_loops(void **state)
{
    /* in the top's order, $i from 0; a float's value in natural units, an
     * int's as an integer */
    expect_render(state,
                  "{for $i $it = relation.sales.direct.profit.top}[{$i} {$it.profile_id} "
                  "{$it.value}]{else}none{end}.",
                  "[0 1001 250.5][1 7 100][2 8 50].");
    expect_render(state,
                  "{for $k $x = relation.sales.direct.qty.top}<{$k}:{$x.profile_id}={$x.value}>"
                  "{end}|",
                  "<0:8=1><1:1001=3>|");
    expect_render(state, "{for $i $it = relation.peers.direct.w.top}{$it.value}{end}", "-0.007813");
    /* an empty top: the {else} part, or nothing */
    expect_render(state,
                  "{for $i $it = relation.sales.reverse.profit.top}[{$i}]{else}none {$i}{end}.",
                  "none {$i}.");
    expect_render(state, "a{for $i $it = relation.sales.reverse.qty.top}[{$i}]{end}b", "ab");
    /* other fields of the item, and the variables outside their loop, pass through */
    expect_render(state,
                  "{for $i $it = relation.sales.direct.qty.top}{$it.other}{$it}{$j}{end}{$i}",
                  "{$it.other}{$it}{$j}{$it.other}{$it}{$j}{$i}");
    /* nested: the outer loop's variables are seen inside; {if} and {for}
     * levels inside a body are closed by their own {end} */
    expect_render(state,
                  "{for $i $a = relation.sales.direct.qty.top}{for $j $b = "
                  "relation.sales.direct.qty.top}({$i}{$j} {$a.profile_id}{$b.profile_id})"
                  "{end};{end}",
                  "(00 88)(01 81001);(10 10018)(11 10011001);");
    expect_render(state,
                  "{for $i $it = relation.sales.direct.qty.top}{if x}{$i}{end}{else}no{end}",
                  "{if x}0{end}{if x}1{end}");
    /* an inner loop's {else} is its own */
    expect_render(state,
                  "{for $i $a = relation.sales.direct.qty.top}{for $j $b = "
                  "relation.sales.reverse.qty.top}x{else}E{$i}{end}!{else}none{end}",
                  "E0!E1!");
    /* the inner variable hides the outer one of the same name */
    expect_render(state,
                  "{for $i $a = relation.sales.direct.qty.top}{for $i $b = "
                  "relation.peers.direct.w.top}{$i}{$a.value}{end}{end}",
                  "0103");
}

static void test_other_braces_pass_through(void **state)
{
    expect_render(state, "Hi {$item.lead._fname}! {if x}kept{end} {unknown} {} {relation} {",
                  "Hi {$item.lead._fname}! {if x}kept{end} {unknown} {} {relation} {");
    /* a tag ends at the first }: "{{relation...}" is not a variable */
    expect_render(state, "{for x}{end} {{relation.sales.direct.count}} }{",
                  "{for x}{end} {{relation.sales.direct.count}} }{");
}

static void expect_error(void **state, const char *text, const char *message, bool usage_want)
{
    Stats s;
    JsonBuf out = {0};
    char err[512] = "";
    bool usage = !usage_want;
    fill(&s, state);
    if (usage_want == false)
        s.fail = "redis: connection refused";
    if (render_template(*state, text, strlen(text), stats_of, &s, &out, &usage, err, sizeof err))
        fail_msg("\"%s\" rendered, expected: %s", text, message);
    assert_string_equal(err, message);
    assert_int_equal(usage, usage_want);
    jsonbuf_free(&out);
}

static void test_errors_name_the_variable(void **state)
{
    static const struct {
        const char *text, *message;
    } cases[] = {
        {"x {relation.nope.direct.count}",
         "{relation.nope.direct.count}: unknown relation \"nope\" (the configuration has: sales, "
         "peers)"},
        {"{relation.sales.sideways.count}",
         "{relation.sales.sideways.count}: the side must be direct or reverse"},
        {"{relation.sales.direct.nope.count}",
         "{relation.sales.direct.nope.count}: unknown property \"nope\" of relation sales"},
        {"{relation.sales.direct.ok.total}",
         "{relation.sales.direct.ok.total}: a total needs save_amount on the property"},
        {"{relation.peers.direct.w.total}",
         "{relation.peers.direct.w.total}: a total needs save_amount on the property"},
        {"{for $i $x = relation.peers.direct.score.top}{end}",
         "{for $i $x = relation.peers.direct.score.top}: a top needs save_top on the property"},
        {"{relation.sales.direct.profit.top}",
         "{relation.sales.direct.profit.top}: a top is read in a {for $i $item = ...} loop"},
        {"{for $i $x = relation.sales.direct.profit.top}...",
         "{for $i $x = relation.sales.direct.profit.top}: a loop without {end}"},
        {"{for $i $x = relation.sales.direct.profit.count}{end}",
         "{for $i $x = relation.sales.direct.profit.count}: a loop goes over a top"},
        {"{for $i = relation.sales.direct.profit.top}{end}",
         "{for $i = relation.sales.direct.profit.top}: a loop reads {for $i $item = "
         "relation.<relation>.<side>.<property>.top}"},
        {"{for i x = relation.sales.direct.profit.top}{end}",
         "{for i x = relation.sales.direct.profit.top}: a loop reads {for $i $item = "
         "relation.<relation>.<side>.<property>.top}"},
        {"{relation.sales.direct}",
         "{relation.sales.direct}: not relation.<relation>.<side>[.<property>].<count|total|top>"},
        {"{relation.sales.direct.profit.count.x}",
         "{relation.sales.direct.profit.count.x}: not "
         "relation.<relation>.<side>[.<property>].<count|total|top>"},
        {"{relation.sales.direct.total}", "{relation.sales.direct.total}: a relation gives count"},
        {"{relation.sales.direct.profit.sum}",
         "{relation.sales.direct.profit.sum}: a property gives count, total or top"},
        /* inside a loop's body, after what it rendered */
        {"{for $i $x = relation.sales.direct.qty.top}{relation.nope.direct.count}{end}",
         "{relation.nope.direct.count}: unknown relation \"nope\" (the configuration has: sales, "
         "peers)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        expect_error(state, cases[k].text, cases[k].message, true);
}

/* The statistics not read: that error as it is, not a usage error. */
static void test_a_reading_error_is_not_a_usage_error(void **state)
{
    expect_error(state, "a {relation.sales.direct.count}", "redis: connection refused", false);
    expect_error(state, "{for $i $x = relation.sales.direct.qty.top}{end}",
                 "redis: connection refused", false);
}

static int setup(void **state)
{
    return config_setup(state, config_text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_loops),
        cmocka_unit_test(test_other_braces_pass_through),
        cmocka_unit_test(test_errors_name_the_variable),
        cmocka_unit_test(test_a_reading_error_is_not_a_usage_error),
    };
    return cmocka_run_group_tests(tests, setup, config_teardown);
}
