/* test_trigger.c — records decoded and trigger bodies rendered (trigger.h):
 * the kinds of trigger, thresholds, tops and statistics, escaping, the
 * trigger set, record_decode's errors and hostile input, parse_int64.
 *
 * Records are built with the MessagePack writer of helpers.h, which encodes
 * the way cmsgpack does. A record is described by a Rec: comma-separated
 * lists, "-" for false.
 *
 * Expected bodies are exact strings written with single quotes for double
 * quotes (no case of that kind needs a literal single quote); "@ID" stands for
 * the trigger id, computed here independently: SHA-1 (checked against the
 * FIPS 180 vectors in test_sha1.c) of
 * "<event id>|<relation>|<side>|<kind>|<threshold index>" laid out as a
 * version-5 UUID. Two ids are also given as computed by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "handlers/event.h"
#include "lib/jsonbuf.h"
#include "handlers/trigger.h"
#include "handlers/edge.h"
#include "tests/unit/helpers.h"

/* ---- the configuration ---- */

/* ml: every property kind, no thresholds (the kinds of trigger).
 * th: thresholds of both sides, several per side (crossings, order).
 * plain: no property (escaping). wide: 11 tops of 20 (bodies over 8 KiB). */
static const char config_text[] =
    "{\"redis\": {\"url\": \"redis://localhost\"},\n"
    " \"relations\": [\n"
    "  {\"short\": \"ml\", \"database_a\": \"managers\", \"database_b\": \"customers\",\n"
    "   \"properties\": [\n"
    "     {\"short\": \"profit\", \"type\": \"float\", \"save_amount\": true,\n"
    "      \"save_top\": {\"order\": \"desc\", \"limit\": 3}},\n"
    "     {\"short\": \"purchases\", \"type\": \"int\", \"save_amount\": true,\n"
    "      \"save_top\": {\"order\": \"asc\", \"limit\": 2}},\n"
    "     {\"short\": \"approve\", \"type\": \"bool\"},\n"
    "     {\"short\": \"visits\", \"type\": \"int\"}]},\n"
    "  {\"short\": \"th\", \"database_a\": \"managers\", \"database_b\": \"customers\",\n"
    "   \"properties\": [\n"
    "     {\"short\": \"profit\", \"type\": \"float\", \"save_amount\": true,\n"
    "      \"save_top\": {\"order\": \"desc\", \"limit\": 3}},\n"
    "     {\"short\": \"purchases\", \"type\": \"int\", \"save_amount\": true,\n"
    "      \"save_top\": {\"order\": \"asc\", \"limit\": 2}},\n"
    "     {\"short\": \"approve\", \"type\": \"bool\"}],\n"
    "   \"thresholds\": [\n"
    "     {\"direction\": \"reverse\", \"stat\": \"count\", \"value\": 3},\n"
    "     {\"direction\": \"direct\", \"stat\": \"count\", \"value\": 3},\n"
    "     {\"direction\": \"direct\", \"stat\": \"total\", \"property\": \"profit\", \"value\": 100.5},\n"
    "     {\"direction\": \"direct\", \"stat\": \"edge\", \"property\": \"profit\", \"value\": 50},\n"
    "     {\"direction\": \"direct\", \"stat\": \"count\", \"property\": \"approve\", \"value\": 2},\n"
    "     {\"direction\": \"direct\", \"stat\": \"edge\", \"property\": \"approve\", \"value\": true},\n"
    "     {\"direction\": \"direct\", \"stat\": \"total\", \"property\": \"purchases\", \"value\": 10},\n"
    "     {\"direction\": \"reverse\", \"stat\": \"total\", \"property\": \"profit\", \"value\": 0.5},\n"
    "     {\"direction\": \"direct\", \"stat\": \"edge\", \"property\": \"purchases\", \"value\": -5}]},\n"
    "  {\"short\": \"plain\", \"database_a\": \"d\\\"a\", \"database_b\": \"db\"},\n"
    "  {\"short\": \"wide\", \"database_a\": \"wa\", \"database_b\": \"wb\",\n"
    "   \"properties\": [\n"
    "     {\"short\": \"p0\", \"type\": \"float\", \"save_amount\": true, \"save_top\": {\"limit\": 20}},\n"
    "     {\"short\": \"p1\", \"type\": \"float\", \"save_amount\": true, \"save_top\": {\"limit\": 20}},\n"
    "     {\"short\": \"p2\", \"type\": \"float\", \"save_amount\": true, \"save_top\": {\"limit\": 20}},\n"
    "     {\"short\": \"p3\", \"type\": \"float\", \"save_amount\": true, \"save_top\": {\"limit\": 20}},\n"
    "     {\"short\": \"p4\", \"type\": \"float\", \"save_amount\": true, \"save_top\": {\"limit\": 20}},\n"
    "     {\"short\": \"p5\", \"type\": \"float\", \"save_amount\": true, \"save_top\": {\"limit\": 20}},\n"
    "     {\"short\": \"p6\", \"type\": \"float\", \"save_amount\": true, \"save_top\": {\"limit\": 20}},\n"
    "     {\"short\": \"p7\", \"type\": \"float\", \"save_amount\": true, \"save_top\": {\"limit\": 20}},\n"
    "     {\"short\": \"p8\", \"type\": \"float\", \"save_amount\": true, \"save_top\": {\"limit\": 20}},\n"
    "     {\"short\": \"p9\", \"type\": \"float\", \"save_amount\": true, \"save_top\": {\"limit\": 20}},\n"
    "     {\"short\": \"p10\", \"type\": \"float\", \"save_amount\": true, \"save_top\": {\"limit\": 20}}],\n"
    "   \"thresholds\": [\n"
    "     {\"direction\": \"direct\", \"stat\": \"count\", \"value\": 1},\n"
    "     {\"direction\": \"direct\", \"stat\": \"total\", \"property\": \"p10\", \"value\": 1},\n"
    "     {\"direction\": \"direct\", \"stat\": \"edge\", \"property\": \"p0\", \"value\": 0.5}]}]}\n";

static const Config *cfg_of(void **state)
{
    return *state;
}

static const RelationDef *rel_of(void **state, const char *name)
{
    const RelationDef *rel = config_relation(cfg_of(state), name);
    assert_non_null(rel);
    return rel;
}

/* ---- records ---- */

/* The items of a comma-separated list ("" has none). */
#define ITEM_MAX 256
static size_t split(const char *s, char items[][ITEM_MAX], size_t max)
{
    size_t n = 0;
    if (!*s)
        return 0;
    for (;;) {
        const char *c = strchr(s, ',');
        size_t len = c ? (size_t)(c - s) : strlen(s);
        assert_true(n < max);
        assert_true(len < ITEM_MAX);
        memcpy(items[n], s, len);
        items[n][len] = '\0';
        n++;
        if (!c)
            return n;
        s = c + 1;
    }
}

/* "1,-,3": strings ("-" false). */
static void w_strings(Mp *m, const char *list)
{
    static char items[64][ITEM_MAX];
    size_t n = split(list, items, 64);
    w_array(m, n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i], "-") == 0)
            w_false(m);
        else
            w_cstr(m, items[i]);
    }
}

/* NULL: false (no edge); "1,-,3": integers ("-" false). */
static void w_weights(Mp *m, const char *list)
{
    char items[16][ITEM_MAX];
    if (!list) {
        w_false(m);
        return;
    }
    size_t n = split(list, items, 16);
    w_array(m, n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i], "-") == 0)
            w_false(m);
        else
            w_int(m, strtoll(items[i], NULL, 10));
    }
}

#define DATE "2026-11-28T12:00:01Z"

typedef struct {
    const char *date; /* NULL: DATE */
    int kind;
    const char *stats;        /* count, p:count, p:total, ...; "-" false */
    const char *old, *new_;   /* NULL: false */
    const char *tops[CONFIG_MAX_PROPERTIES + 2]; /* NULL-terminated: id,score,id,score... */
} Rec;

static void build_record(Mp *m, const Rec *r)
{
    m->len = 0;
    w_array(m, 6);
    w_cstr(m, r->date ? r->date : DATE);
    w_int(m, r->kind);
    w_strings(m, r->stats);
    w_weights(m, r->old);
    w_weights(m, r->new_);
    size_t ntops = 0;
    while (r->tops[ntops])
        ntops++;
    w_array(m, ntops);
    for (size_t i = 0; i < ntops; i++)
        w_strings(m, r->tops[i]);
}

/* Decodes r (built into m, which the record then points into). */
static void decode_ok(const RelationDef *rel, const Rec *r, Mp *m, SideRecord *rec)
{
    char err[128] = "";
    build_record(m, r);
    if (!record_decode(m->p, m->len, rel, rec, err, sizeof err))
        fail_msg("record_decode: %s", err);
}

static void render(TriggerSet *ts, const RelationDef *rel, Side side, const Event *ev,
                   const Rec *r)
{
    Mp m = {0};
    SideRecord rec;
    decode_ok(rel, r, &m, &rec);
    trigger_render(ts, rel, side, ev, &rec);
    free(m.p);
}

/* ---- events, ids, expected bodies ---- */

static void parse_event(void **state, const char *json, bool quotes, Event *ev)
{
    char err[EVENT_ERR_MAX];
    char *text = quotes ? dq(json) : strdup(json);
    assert_non_null(text);
    if (!event_parse(cfg_of(state), text, strlen(text), ev, err, sizeof err))
        fail_msg("event_parse: %s", err);
    free(text);
}

/* The UUID layout of a SHA-1: version nibble 5 in place of hex digit 12,
 * variant 10xx (8, 9, a or b) from hex digit 16. */
static void uuid_layout(const char h[41], char out[37])
{
    static const char hexdigits[] = "0123456789abcdef";
    int d16 = (int)(strchr(hexdigits, h[16]) - hexdigits);
    snprintf(out, 37, "%.8s-%.4s-5%.3s-%c%.3s-%.12s", h, h + 8, h + 13,
             hexdigits[8 | (d16 & 3)], h + 17, h + 20);
}

static void expect_id(char out[37], const char *event_id, const char *rel, const char *side,
                      const char *kind, int threshold)
{
    char name[512], h[41];
    int n = threshold >= 0
                ? snprintf(name, sizeof name, "%s|%s|%s|%s|%d", event_id, rel, side, kind, threshold)
                : snprintf(name, sizeof name, "%s|%s|%s|%s|", event_id, rel, side, kind);
    assert_true(n > 0 && (size_t)n < sizeof name);
    sha1_of(name, (size_t)n, h);
    uuid_layout(h, out);
}

/* tpl with ' for " (when quotes) and @ID for id; the caller frees it. */
static char *expand(const char *tpl, const char *id, bool quotes)
{
    size_t cap = strlen(tpl) + 64;
    char *out = malloc(cap), *o = out;
    assert_non_null(out);
    for (const char *p = tpl; *p;) {
        if (strncmp(p, "@ID", 3) == 0) {
            memcpy(o, id, 36);
            o += 36;
            p += 3;
        } else {
            *o++ = quotes && *p == '\'' ? '"' : *p;
            p++;
        }
    }
    *o = '\0';
    return out;
}

static void assert_valid_json(const char *s, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb(s, len, JSON_ALLOW_NUL, &jerr);
    if (!j)
        fail_msg("not JSON (%s at %d): %.*s", jerr.text, jerr.position, (int)len, s);
    json_decref(j);
}

typedef struct {
    Side side;
    const char *kind;
    int threshold; /* -1: none */
    const char *body;
} Want;

static const char *const side_name[] = {"direct", "reverse"};

/* The triggers of ts from index `from` on start with want[0..n). */
static void check_from(TriggerSet *ts, size_t from, const Event *ev, const char *rel,
                       const Want *want, size_t n, bool quotes)
{
    assert_true(triggers_finish(ts));
    assert_true(from + n <= ts->n);
    for (size_t i = 0; i < n; i++) {
        const Trigger *t = &ts->items[from + i];
        char key[128], id[37];
        snprintf(key, sizeof key, "relation.%s.%s.%s", rel, side_name[want[i].side],
                 want[i].kind);
        assert_string_equal(t->routing_key, key);
        expect_id(id, ev->id, rel, side_name[want[i].side], want[i].kind, want[i].threshold);
        assert_string_equal(t->id, id);
        char *body = strndup(t->body, t->len);
        assert_non_null(body);
        assert_int_equal(strlen(body), t->len); /* no NUL inside */
        char *expected = expand(want[i].body, id, quotes);
        assert_string_equal(body, expected);
        assert_valid_json(t->body, t->len);
        free(expected);
        free(body);
    }
}

/* The triggers of ts are exactly want[0..n). */
static void check(TriggerSet *ts, const Event *ev, const char *rel, const Want *want, size_t n)
{
    assert_int_equal(ts->n, n);
    check_from(ts, 0, ev, rel, want, n, true);
}

#define NWANT(w) (sizeof(w) / sizeof(w)[0])

#define BODY(side, kind, date, own, owndb, test, mid, thr)                                   \
    "{'event_type':'relation_" side "_" kind "','event_date':'" date "','profile_id':'" own \
    "','database':'" owndb "','is_test':" test ",'event_data':{'id':'@ID','kind':'" kind    \
    "'," mid thr "}}"

/* ---- trigger ids ---- */

/* The layout rule on ids worked out by hand, one per variant digit. */
static void test_trigger_id_by_hand(void **state)
{
    char h[41], id[37];
    /* sha1("e-1|ml|direct|attach|") = ffeeb74ef84e11a30522bc28dad3b9c6725eab92:
     * digit 12 '1' -> '5'; digit 16 '0' -> variant '8' */
    const char *n1 = "e-1|ml|direct|attach|";
    sha1_of(n1, strlen(n1), h);
    assert_string_equal(h, "ffeeb74ef84e11a30522bc28dad3b9c6725eab92");
    uuid_layout(h, id);
    assert_string_equal(id, "ffeeb74e-f84e-51a3-8522-bc28dad3b9c6");
    /* sha1("ev-f|th|reverse|threshold|7") = e811f94e8dd3b6ff2f8925fabd6a4689fa1eec2b:
     * digit 12 'b' -> '5'; digit 16 '2' -> variant 'a' */
    const char *n2 = "ev-f|th|reverse|threshold|7";
    sha1_of(n2, strlen(n2), h);
    assert_string_equal(h, "e811f94e8dd3b6ff2f8925fabd6a4689fa1eec2b");
    uuid_layout(h, id);
    assert_string_equal(id, "e811f94e-8dd3-56ff-af89-25fabd6a4689");

    /* and the renderer gives the same */
    const RelationDef *ml = rel_of(state, "ml");
    Event ev;
    parse_event(state, "{'id':'e-1','op':'attach','relation':'ml','profile_a':'42',"
                       "'profile_b':'1001','weights':{'profit':1}}", true, &ev);
    TriggerSet ts = {0};
    Rec r = {.kind = 1, .stats = "", .new_ = "1000000", .tops = {"", ""}};
    render(&ts, ml, SIDE_DIRECT, &ev, &r);
    assert_true(triggers_finish(&ts));
    assert_int_equal(ts.n, 1);
    assert_string_equal(ts.items[0].id, "ffeeb74e-f84e-51a3-8522-bc28dad3b9c6");
    assert_memory_equal(ts.items[0].body + strlen("{'event_type':'relation_direct_attach',"
                                                  "'event_date':'" DATE "','profile_id':'42',"
                                                  "'database':'managers','is_test':false,"
                                                  "'event_data':{'id':'"),
                        "ffeeb74e-f84e-51a3-8522-bc28dad3b9c6", 36);

    const RelationDef *th = rel_of(state, "th");
    parse_event(state, "{'id':'ev-f','op':'attach','relation':'th','profile_a':'42',"
                       "'profile_b':'1001','weights':{'profit':100.5}}", true, &ev);
    triggers_reset(&ts);
    Rec f = {.kind = 1, .stats = "2,0,0,-,-,-,-", .new_ = "100500000,-,-",
             .tops = {"42,100500000", ""}};
    render(&ts, th, SIDE_REVERSE, &ev, &f);
    assert_true(triggers_finish(&ts));
    assert_int_equal(ts.n, 3); /* attach, thresholds 0 and 7 */
    assert_string_equal(ts.items[2].id, "e811f94e-8dd3-56ff-af89-25fabd6a4689");
    for (size_t i = 0; i < ts.n; i++) {
        const char *t = ts.items[i].id;
        assert_int_equal(strlen(t), TRIGGER_ID_LEN);
        assert_int_equal(t[8], '-');
        assert_int_equal(t[13], '-');
        assert_int_equal(t[14], '5');
        assert_int_equal(t[18], '-');
        assert_non_null(strchr("89ab", t[19]));
        assert_int_equal(t[23], '-');
    }
    /* distinct per kind, side and threshold; stable across renders */
    assert_string_not_equal(ts.items[0].id, ts.items[1].id);
    assert_string_not_equal(ts.items[1].id, ts.items[2].id);
    char again[3][37];
    for (int i = 0; i < 3; i++)
        memcpy(again[i], ts.items[i].id, 37);
    triggers_reset(&ts);
    render(&ts, th, SIDE_REVERSE, &ev, &f);
    assert_true(triggers_finish(&ts));
    for (int i = 0; i < 3; i++)
        assert_string_equal(ts.items[i].id, again[i]);
    triggers_free(&ts);
}

/* ---- the kinds of trigger (relation ml) ---- */

#define ML_STATS_K1                                                                           \
    "'stats':{'count':3,'properties':{'profit':{'count':3,'total':400.5,'top':["              \
    "{'profile_id':'1001','value':250.5},{'profile_id':'7','value':100},"                      \
    "{'profile_id':'8','value':50}]},'purchases':{'count':3,'total':10,'top':["                \
    "{'profile_id':'8','value':1},{'profile_id':'1001','value':3}]},'approve':{'count':2},"   \
    "'visits':{'count':3}}},"
#define ML_STATS_K1R                                                                          \
    "'stats':{'count':1,'properties':{'profit':{'count':1,'total':250.5,'top':["              \
    "{'profile_id':'42','value':250.5}]},'purchases':{'count':1,'total':3,'top':["             \
    "{'profile_id':'42','value':3}]},'approve':{'count':1},'visits':{'count':1}}},"
#define ML_SRC_K1                                                                             \
    "'source_event':{'id':'e-1','op':'attach','occurred_at':'2026-11-28T12:00:00Z'},"          \
    "'weights':{'before':null,'after':{'profit':250.5,'purchases':3,'approve':true,"           \
    "'visits':9}},"
#define CP_D "'counterpart':{'profile_id':'1001','database':'customers'},"
#define CP_R "'counterpart':{'profile_id':'42','database':'managers'},"

static const Rec k1_direct = {
    .date = "2026-11-28T12:00:01.5Z", .kind = 1, .stats = "2,2,150000000,2,7,1,-,2,-",
    .new_ = "250500000,3,1,9",
    .tops = {"1001,250500000,7,100000000,8,50000000", "8,1,1001,3"}};
static const Rec k1_reverse = {
    .kind = 1, .stats = "-,-,-,-,-,-,-,-,-", .new_ = "250500000,3,1,9",
    .tops = {"42,250500000", "42,3"}};

static const Want k1_want[] = {
    {SIDE_DIRECT, "attach", -1,
     BODY("direct", "attach", "2026-11-28T12:00:01.5Z", "42", "managers", "true",
          "'relation':'ml','direction':'direct'," CP_D ML_SRC_K1 ML_STATS_K1 "'threshold':",
          "null")},
    {SIDE_REVERSE, "attach", -1,
     BODY("reverse", "attach", DATE, "1001", "customers", "true",
          "'relation':'ml','direction':'reverse'," CP_R ML_SRC_K1 ML_STATS_K1R "'threshold':",
          "null")},
};

static void test_render_attach(void **state)
{
    const RelationDef *ml = rel_of(state, "ml");
    Event ev;
    TriggerSet ts = {0};
    parse_event(state,
                "{'id':'e-1','op':'attach','relation':'ml','profile_a':'42','profile_b':'1001',"
                "'weights':{'profit':250.5,'purchases':3,'approve':true,'visits':9},"
                "'version':7,'occurred_at':'2026-11-28T12:00:00Z','is_test':true}",
                true, &ev);
    render(&ts, ml, SIDE_DIRECT, &ev, &k1_direct);
    render(&ts, ml, SIDE_REVERSE, &ev, &k1_reverse);
    check(&ts, &ev, "ml", k1_want, NWANT(k1_want));

    /* the version is not part of a trigger: the same bodies without it */
    parse_event(state,
                "{'id':'e-1','op':'attach','relation':'ml','profile_a':'42','profile_b':'1001',"
                "'weights':{'profit':250.5,'purchases':3,'approve':true,'visits':9},"
                "'occurred_at':'2026-11-28T12:00:00Z','is_test':true}",
                true, &ev);
    assert_false(ev.has_version);
    triggers_reset(&ts);
    render(&ts, ml, SIDE_DIRECT, &ev, &k1_direct);
    render(&ts, ml, SIDE_REVERSE, &ev, &k1_reverse);
    check(&ts, &ev, "ml", k1_want, NWANT(k1_want));
    triggers_free(&ts);
}

static void test_render_change(void **state)
{
    const RelationDef *ml = rel_of(state, "ml");
    Event ev;
    TriggerSet ts = {0};
    /* no occurred_at, no is_test, no version */
    parse_event(state,
                "{'id':'e-2','op':'edit','relation':'ml','profile_a':'42','profile_b':'1001',"
                "'weights':{'profit':-0.007813,'approve':false}}",
                true, &ev);
    Rec r = {.kind = 2, .stats = "3,3,400500000,3,10,2,-,3,-", .old = "250500000,3,1,9",
             .new_ = "-7813,3,0,9",
             .tops = {"7,100000000,8,50000000,1001,-7813", "8,1,1001,3"}};
    render(&ts, ml, SIDE_DIRECT, &ev, &r);
    static const Want want[] = {
        {SIDE_DIRECT, "change", -1,
         BODY("direct", "change", DATE, "42", "managers", "false",
              "'relation':'ml','direction':'direct'," CP_D
              "'source_event':{'id':'e-2','op':'edit','occurred_at':null},"
              "'weights':{'before':{'profit':250.5,'purchases':3,'approve':true,'visits':9},"
              "'after':{'profit':-0.007813,'purchases':3,'approve':false,'visits':9}},"
              "'stats':{'count':3,'properties':{'profit':{'count':3,'total':149.992187,'top':["
              "{'profile_id':'7','value':100},{'profile_id':'8','value':50},"
              "{'profile_id':'1001','value':-0.007813}]},'purchases':{'count':3,'total':10,"
              "'top':[{'profile_id':'8','value':1},{'profile_id':'1001','value':3}]},"
              "'approve':{'count':1},'visits':{'count':3}}},'threshold':",
              "null")},
    };
    check(&ts, &ev, "ml", want, NWANT(want));

    /* strengthen, reverse side, from an edge with no property set; is_test null */
    parse_event(state,
                "{'id':'e-4','op':'strengthen','relation':'ml','profile_a':'42',"
                "'profile_b':'1001','weights':{'profit':0.000001},'is_test':null}",
                true, &ev);
    Rec r4 = {.kind = 2, .stats = "1,0,-,0,-,0,-,0,-", .old = "-,-,-,-", .new_ = "1,-,-,-",
              .tops = {"42,1", ""}};
    triggers_reset(&ts);
    render(&ts, ml, SIDE_REVERSE, &ev, &r4);
    static const Want want4[] = {
        {SIDE_REVERSE, "change", -1,
         BODY("reverse", "change", DATE, "1001", "customers", "false",
              "'relation':'ml','direction':'reverse'," CP_R
              "'source_event':{'id':'e-4','op':'strengthen','occurred_at':null},"
              "'weights':{'before':{},'after':{'profit':0.000001}},"
              "'stats':{'count':1,'properties':{'profit':{'count':1,'total':0.000001,'top':["
              "{'profile_id':'42','value':0.000001}]},'purchases':{'count':0,'total':0,"
              "'top':[]},'approve':{'count':0},'visits':{'count':0}}},'threshold':",
              "null")},
    };
    check(&ts, &ev, "ml", want4, NWANT(want4));
    triggers_free(&ts);
}

static void test_render_detach(void **state)
{
    const RelationDef *ml = rel_of(state, "ml");
    Event ev;
    TriggerSet ts = {0};
    parse_event(state,
                "{'id':'e-3','op':'detach','relation':'ml','profile_a':'42','profile_b':'1001',"
                "'occurred_at':'2026-11-29T00:00:00+01:00','is_test':false,'version':9}",
                true, &ev);
    Rec r = {.kind = 3, .stats = "1,1,250500000,1,3,1,-,1,-", .old = "250500000,3,1,9",
             .tops = {"", ""}};
    render(&ts, ml, SIDE_REVERSE, &ev, &r);
    static const Want want[] = {
        {SIDE_REVERSE, "detach", -1,
         BODY("reverse", "detach", DATE, "1001", "customers", "false",
              "'relation':'ml','direction':'reverse'," CP_R
              "'source_event':{'id':'e-3','op':'detach','occurred_at':'2026-11-29T00:00:00+01:00'},"
              "'weights':{'before':{'profit':250.5,'purchases':3,'approve':true,'visits':9},"
              "'after':null},"
              "'stats':{'count':0,'properties':{'profit':{'count':0,'total':0,'top':[]},"
              "'purchases':{'count':0,'total':0,'top':[]},'approve':{'count':0},"
              "'visits':{'count':0}}},'threshold':",
              "null")},
    };
    check(&ts, &ev, "ml", want, NWANT(want));
    triggers_free(&ts);
}

/* ---- thresholds (relation th) ----
 * 0 reverse count 3            1 direct count 3
 * 2 direct total profit 100.5  3 direct edge profit 50
 * 4 direct count approve 2     5 direct edge approve true
 * 6 direct total purchases 10  7 reverse total profit 0.5
 * 8 direct edge purchases -5 */

#define TH_HEAD_D "'relation':'th','direction':'direct'," CP_D

static void test_thresholds_attach_up(void **state)
{
    const RelationDef *th = rel_of(state, "th");
    Event ev;
    TriggerSet ts = {0};
    parse_event(state,
                "{'id':'ev-a','op':'attach','relation':'th','profile_a':'42','profile_b':'1001',"
                "'weights':{'profit':100.5,'purchases':3,'approve':true},"
                "'occurred_at':'2026-11-28T12:00:00Z'}",
                true, &ev);
    /* count 2 -> 3, profit total 50 -> 150.5, purchases total 5 -> 8 (not 10),
     * approve count 1 -> 2; threshold 0 (reverse, count 3) would cross here */
    Rec r = {.kind = 1, .stats = "2,1,50000000,2,5,1,-", .new_ = "100500000,3,1",
             .tops = {"1001,100500000,7,50000000", "7,2,1001,3"}};
    render(&ts, th, SIDE_DIRECT, &ev, &r);
#define MID_A                                                                                 \
    TH_HEAD_D "'source_event':{'id':'ev-a','op':'attach','occurred_at':'2026-11-28T12:00:00Z'}," \
              "'weights':{'before':null,'after':{'profit':100.5,'purchases':3,'approve':true}}," \
              "'stats':{'count':3,'properties':{'profit':{'count':2,'total':150.5,'top':["     \
              "{'profile_id':'1001','value':100.5},{'profile_id':'7','value':50}]},"            \
              "'purchases':{'count':3,'total':8,'top':[{'profile_id':'7','value':2},"           \
              "{'profile_id':'1001','value':3}]},'approve':{'count':2}}},'threshold':"
#define TA(kind, thr) BODY("direct", kind, DATE, "42", "managers", "false", MID_A, thr)
    static const Want want[] = {
        {SIDE_DIRECT, "attach", -1, TA("attach", "null")},
        {SIDE_DIRECT, "threshold", 1,
         TA("threshold", "{'stat':'count','property':null,'value':3,'crossing':'up',"
                         "'before':2,'after':3}")},
        {SIDE_DIRECT, "threshold", 2,
         TA("threshold", "{'stat':'total','property':'profit','value':100.5,'crossing':'up',"
                         "'before':50,'after':150.5}")},
        {SIDE_DIRECT, "threshold", 3,
         TA("threshold", "{'stat':'edge','property':'profit','value':50,'crossing':'up',"
                         "'before':null,'after':100.5}")},
        {SIDE_DIRECT, "threshold", 4,
         TA("threshold", "{'stat':'count','property':'approve','value':2,'crossing':'up',"
                         "'before':1,'after':2}")},
        {SIDE_DIRECT, "threshold", 5,
         TA("threshold", "{'stat':'edge','property':'approve','value':1,'crossing':'up',"
                         "'before':null,'after':1}")},
        {SIDE_DIRECT, "threshold", 8,
         TA("threshold", "{'stat':'edge','property':'purchases','value':-5,'crossing':'up',"
                         "'before':null,'after':3}")},
    };
    check(&ts, &ev, "th", want, NWANT(want));
    triggers_free(&ts);
}

static void test_thresholds_detach_down(void **state)
{
    const RelationDef *th = rel_of(state, "th");
    Event ev;
    TriggerSet ts = {0};
    parse_event(state,
                "{'id':'ev-b','op':'detach','relation':'th','profile_a':'42','profile_b':'1001'}",
                true, &ev);
    Rec r = {.kind = 3, .stats = "3,2,150500000,3,8,2,-", .old = "100500000,3,1",
             .tops = {"7,50000000", "7,2,9,4"}};
    render(&ts, th, SIDE_DIRECT, &ev, &r);
#define MID_B                                                                                 \
    TH_HEAD_D "'source_event':{'id':'ev-b','op':'detach','occurred_at':null},"                \
              "'weights':{'before':{'profit':100.5,'purchases':3,'approve':true},'after':null}," \
              "'stats':{'count':2,'properties':{'profit':{'count':1,'total':50,'top':["        \
              "{'profile_id':'7','value':50}]},'purchases':{'count':2,'total':5,'top':["        \
              "{'profile_id':'7','value':2},{'profile_id':'9','value':4}]},"                    \
              "'approve':{'count':1}}},'threshold':"
#define TB(kind, thr) BODY("direct", kind, DATE, "42", "managers", "false", MID_B, thr)
    static const Want want[] = {
        {SIDE_DIRECT, "detach", -1, TB("detach", "null")},
        {SIDE_DIRECT, "threshold", 1,
         TB("threshold", "{'stat':'count','property':null,'value':3,'crossing':'down',"
                         "'before':3,'after':2}")},
        {SIDE_DIRECT, "threshold", 2,
         TB("threshold", "{'stat':'total','property':'profit','value':100.5,'crossing':'down',"
                         "'before':150.5,'after':50}")},
        {SIDE_DIRECT, "threshold", 3,
         TB("threshold", "{'stat':'edge','property':'profit','value':50,'crossing':'down',"
                         "'before':100.5,'after':null}")},
        {SIDE_DIRECT, "threshold", 4,
         TB("threshold", "{'stat':'count','property':'approve','value':2,'crossing':'down',"
                         "'before':2,'after':1}")},
        {SIDE_DIRECT, "threshold", 5,
         TB("threshold", "{'stat':'edge','property':'approve','value':1,'crossing':'down',"
                         "'before':1,'after':null}")},
        {SIDE_DIRECT, "threshold", 8,
         TB("threshold", "{'stat':'edge','property':'purchases','value':-5,'crossing':'down',"
                         "'before':3,'after':null}")},
    };
    check(&ts, &ev, "th", want, NWANT(want));
    triggers_free(&ts);
}

static void test_thresholds_change(void **state)
{
    const RelationDef *th = rel_of(state, "th");
    Event ev;
    TriggerSet ts = {0};

    /* edge profit 40 -> 60 up; purchases total 3 -> 10 up (reaching the value);
     * purchases edge -7 -> unset: below -5 already, no crossing; approve edge
     * unset -> false: absent -> 0, below 1, no crossing; count stays 3 */
    parse_event(state,
                "{'id':'ev-c','op':'edit','relation':'th','profile_a':'42','profile_b':'1001',"
                "'weights':{'profit':60,'purchases':null,'approve':false}}",
                true, &ev);
    Rec c = {.kind = 2, .stats = "3,2,135500000,3,3,1,-", .old = "40000000,-7,-",
             .new_ = "60000000,-,0", .tops = {"1001,60000000,7,50000000", "7,2,9,4"}};
    render(&ts, th, SIDE_DIRECT, &ev, &c);
#define MID_C                                                                                 \
    TH_HEAD_D "'source_event':{'id':'ev-c','op':'edit','occurred_at':null},"                  \
              "'weights':{'before':{'profit':40,'purchases':-7},"                               \
              "'after':{'profit':60,'approve':false}},"                                         \
              "'stats':{'count':3,'properties':{'profit':{'count':2,'total':155.5,'top':["      \
              "{'profile_id':'1001','value':60},{'profile_id':'7','value':50}]},"               \
              "'purchases':{'count':2,'total':10,'top':[{'profile_id':'7','value':2},"          \
              "{'profile_id':'9','value':4}]},'approve':{'count':1}}},'threshold':"
#define TC(kind, thr) BODY("direct", kind, DATE, "42", "managers", "false", MID_C, thr)
    static const Want want_c[] = {
        {SIDE_DIRECT, "change", -1, TC("change", "null")},
        {SIDE_DIRECT, "threshold", 3,
         TC("threshold", "{'stat':'edge','property':'profit','value':50,'crossing':'up',"
                         "'before':40,'after':60}")},
        {SIDE_DIRECT, "threshold", 6,
         TC("threshold", "{'stat':'total','property':'purchases','value':10,'crossing':'up',"
                         "'before':3,'after':10}")},
    };
    check(&ts, &ev, "th", want_c, NWANT(want_c));

    /* profit unset: its edge goes from 60 to absent (down, after null), its
     * total from 155.5 to 95.5 (down) */
    parse_event(state,
                "{'id':'ev-c2','op':'edit','relation':'th','profile_a':'42','profile_b':'1001',"
                "'weights':{'profit':null}}",
                true, &ev);
    Rec c2 = {.kind = 2, .stats = "3,2,155500000,2,10,1,-", .old = "60000000,-,0",
              .new_ = "-,-,0", .tops = {"7,50000000", "7,2"}};
    triggers_reset(&ts);
    render(&ts, th, SIDE_DIRECT, &ev, &c2);
#define MID_C2                                                                                \
    TH_HEAD_D "'source_event':{'id':'ev-c2','op':'edit','occurred_at':null},"                 \
              "'weights':{'before':{'profit':60,'approve':false},'after':{'approve':false}},"   \
              "'stats':{'count':3,'properties':{'profit':{'count':1,'total':95.5,'top':["       \
              "{'profile_id':'7','value':50}]},'purchases':{'count':2,'total':10,'top':["       \
              "{'profile_id':'7','value':2}]},'approve':{'count':1}}},'threshold':"
#define TC2(kind, thr) BODY("direct", kind, DATE, "42", "managers", "false", MID_C2, thr)
    static const Want want_c2[] = {
        {SIDE_DIRECT, "change", -1, TC2("change", "null")},
        {SIDE_DIRECT, "threshold", 2,
         TC2("threshold", "{'stat':'total','property':'profit','value':100.5,'crossing':'down',"
                          "'before':155.5,'after':95.5}")},
        {SIDE_DIRECT, "threshold", 3,
         TC2("threshold", "{'stat':'edge','property':'profit','value':50,'crossing':'down',"
                          "'before':60,'after':null}")},
    };
    check(&ts, &ev, "th", want_c2, NWANT(want_c2));

    /* at the value before, a millionth below after: down */
    parse_event(state,
                "{'id':'ev-e','op':'edit','relation':'th','profile_a':'42','profile_b':'1001',"
                "'weights':{'profit':49.999999}}",
                true, &ev);
    Rec e = {.kind = 2, .stats = "1,1,100500000,-,-,-,-", .old = "50000000,-,-",
             .new_ = "49999999,-,-", .tops = {"1001,49999999", ""}};
    triggers_reset(&ts);
    render(&ts, th, SIDE_DIRECT, &ev, &e);
#define MID_E                                                                                 \
    TH_HEAD_D "'source_event':{'id':'ev-e','op':'edit','occurred_at':null},"                  \
              "'weights':{'before':{'profit':50},'after':{'profit':49.999999}},"               \
              "'stats':{'count':1,'properties':{'profit':{'count':1,'total':100.499999,'top':[" \
              "{'profile_id':'1001','value':49.999999}]},'purchases':{'count':0,'total':0,"     \
              "'top':[]},'approve':{'count':0}}},'threshold':"
#define TE(kind, thr) BODY("direct", kind, DATE, "42", "managers", "false", MID_E, thr)
    static const Want want_e[] = {
        {SIDE_DIRECT, "change", -1, TE("change", "null")},
        {SIDE_DIRECT, "threshold", 2,
         TE("threshold", "{'stat':'total','property':'profit','value':100.5,'crossing':'down',"
                         "'before':100.5,'after':100.499999}")},
        {SIDE_DIRECT, "threshold", 3,
         TE("threshold", "{'stat':'edge','property':'profit','value':50,'crossing':'down',"
                         "'before':50,'after':49.999999}")},
    };
    check(&ts, &ev, "th", want_e, NWANT(want_e));
    triggers_free(&ts);
}

static void test_thresholds_none(void **state)
{
    const RelationDef *th = rel_of(state, "th");
    Event ev;
    TriggerSet ts = {0};
    /* every watched value stays on its side of its threshold */
    parse_event(state,
                "{'id':'ev-d','op':'edit','relation':'th','profile_a':'42','profile_b':'1001',"
                "'weights':{'profit':2}}",
                true, &ev);
    Rec d = {.kind = 2, .stats = "5,3,10000000,0,0,4,-", .old = "1000000,-,1",
             .new_ = "2000000,-,1", .tops = {"1001,2000000", ""}};
    render(&ts, th, SIDE_DIRECT, &ev, &d);
    static const Want want[] = {
        {SIDE_DIRECT, "change", -1,
         BODY("direct", "change", DATE, "42", "managers", "false",
              TH_HEAD_D "'source_event':{'id':'ev-d','op':'edit','occurred_at':null},"
                        "'weights':{'before':{'profit':1,'approve':true},"
                        "'after':{'profit':2,'approve':true}},"
                        "'stats':{'count':5,'properties':{'profit':{'count':3,'total':11,'top':["
                        "{'profile_id':'1001','value':2}]},'purchases':{'count':0,'total':0,"
                        "'top':[]},'approve':{'count':4}}},'threshold':",
              "null")},
    };
    check(&ts, &ev, "th", want, NWANT(want));

    /* a reverse detach that stays above every reverse threshold, while the
     * direct ones (count 3, profit edge 50, ...) would have crossed down */
    parse_event(state,
                "{'id':'ev-g','op':'detach','relation':'th','profile_a':'42','profile_b':'1001'}",
                true, &ev);
    Rec g = {.kind = 3, .stats = "5,3,900000000,1,3,1,-", .old = "100000000,3,1",
             .tops = {"", ""}};
    triggers_reset(&ts);
    render(&ts, th, SIDE_REVERSE, &ev, &g);
    assert_true(triggers_finish(&ts));
    assert_int_equal(ts.n, 1);
    assert_string_equal(ts.items[0].routing_key, "relation.th.reverse.detach");
    triggers_free(&ts);
}

static void test_thresholds_reverse(void **state)
{
    const RelationDef *th = rel_of(state, "th");
    Event ev;
    TriggerSet ts = {0};
    parse_event(state,
                "{'id':'ev-f','op':'attach','relation':'th','profile_a':'42','profile_b':'1001',"
                "'weights':{'profit':100.5,'purchases':3,'approve':true},'is_test':true}",
                true, &ev);
    /* the direct thresholds 1, 2, 3, 5 and 8 would cross here: ignored */
    Rec f = {.kind = 1, .stats = "2,0,0,-,-,-,-", .new_ = "100500000,3,1",
             .tops = {"42,100500000", "42,3"}};
    render(&ts, th, SIDE_REVERSE, &ev, &f);
#define MID_F                                                                                 \
    "'relation':'th','direction':'reverse'," CP_R                                             \
    "'source_event':{'id':'ev-f','op':'attach','occurred_at':null},"                          \
    "'weights':{'before':null,'after':{'profit':100.5,'purchases':3,'approve':true}},"        \
    "'stats':{'count':3,'properties':{'profit':{'count':1,'total':100.5,'top':["              \
    "{'profile_id':'42','value':100.5}]},'purchases':{'count':1,'total':3,'top':["            \
    "{'profile_id':'42','value':3}]},'approve':{'count':1}}},'threshold':"
#define TF(kind, thr) BODY("reverse", kind, DATE, "1001", "customers", "true", MID_F, thr)
    static const Want want[] = {
        {SIDE_REVERSE, "attach", -1, TF("attach", "null")},
        {SIDE_REVERSE, "threshold", 0,
         TF("threshold", "{'stat':'count','property':null,'value':3,'crossing':'up',"
                         "'before':2,'after':3}")},
        {SIDE_REVERSE, "threshold", 7,
         TF("threshold", "{'stat':'total','property':'profit','value':0.5,'crossing':'up',"
                         "'before':0,'after':100.5}")},
    };
    check(&ts, &ev, "th", want, NWANT(want));
    assert_string_equal(ts.items[2].id, "e811f94e-8dd3-56ff-af89-25fabd6a4689");

    /* the two sides of one event in one set: direct after reverse */
    Rec fd = {.kind = 1, .stats = "0,0,0,0,0,0,-", .new_ = "100500000,3,1",
              .tops = {"1001,100500000", "1001,3"}};
    size_t from = ts.n;
    render(&ts, th, SIDE_DIRECT, &ev, &fd);
    assert_true(triggers_finish(&ts));
    /* count 0 -> 1 (below 3), total 0 -> 100.5 up, edge profit up, approve
     * count 0 -> 1 (below 2), edge approve up, edge purchases up */
    const char *keys[] = {"relation.th.direct.attach", "relation.th.direct.threshold",
                          "relation.th.direct.threshold", "relation.th.direct.threshold",
                          "relation.th.direct.threshold"};
    const int thr[] = {-1, 2, 3, 5, 8};
    assert_int_equal(ts.n - from, 5);
    for (size_t i = 0; i < 5; i++) {
        char id[37];
        assert_string_equal(ts.items[from + i].routing_key, keys[i]);
        expect_id(id, "ev-f", "th", "direct", i ? "threshold" : "attach", thr[i]);
        assert_string_equal(ts.items[from + i].id, id);
    }
    /* the reverse triggers are untouched by the later render */
    check_from(&ts, 0, &ev, "th", want, NWANT(want), true);
    triggers_free(&ts);
}

/* ---- tops and statistics ---- */

static char *stats_json(const RelationDef *rel, const SideStats *st)
{
    JsonBuf b = {0};
    trigger_stats_json(&b, rel, st);
    assert_false(b.oom);
    char *s = strndup(b.data, b.len);
    assert_non_null(s);
    jsonbuf_free(&b);
    return s;
}

static void check_stats(const RelationDef *rel, const Rec *r, const char *expected)
{
    Mp m = {0};
    SideRecord rec;
    decode_ok(rel, r, &m, &rec);
    char *got = stats_json(rel, &rec.after);
    char *want = dq(expected);
    assert_string_equal(got, want);
    assert_valid_json(got, strlen(got));
    free(want);
    free(got);
    free(m.p);
}

static void test_tops(void **state)
{
    const RelationDef *ml = rel_of(state, "ml");

    /* full: the limits (3 and 2); entries beyond them are ignored */
    Rec full = {.kind = 2, .stats = "5,5,0,5,0,5,-,5,-", .old = "1,1,1,1", .new_ = "1,1,1,1",
                .tops = {"a,5000000,b,1,c,-7813,d,-9000000,e,-10000000", "c,-5,a,0,b,7"}};
    check_stats(ml, &full,
                "{'count':5,'properties':{'profit':{'count':5,'total':0,'top':["
                "{'profile_id':'a','value':5},{'profile_id':'b','value':0.000001},"
                "{'profile_id':'c','value':-0.007813}]},'purchases':{'count':5,'total':0,"
                "'top':[{'profile_id':'c','value':-5},{'profile_id':'a','value':0}]},"
                "'approve':{'count':5},'visits':{'count':5}}}");

    /* empty */
    Rec empty = {.kind = 3, .stats = "1,1,1,1,1,1,-,1,-", .old = "1,1,1,1", .tops = {"", ""}};
    check_stats(ml, &empty,
                "{'count':0,'properties':{'profit':{'count':0,'total':0,'top':[]},"
                "'purchases':{'count':0,'total':0,'top':[]},'approve':{'count':0},"
                "'visits':{'count':0}}}");

    /* fewer tops than properties with one: the rest empty; more: skipped */
    Rec fewer = {.kind = 2, .stats = "1", .old = "", .new_ = "", .tops = {"x,123456789"}};
    check_stats(ml, &fewer,
                "{'count':1,'properties':{'profit':{'count':0,'total':0,'top':["
                "{'profile_id':'x','value':123.456789}]},'purchases':{'count':0,'total':0,"
                "'top':[]},'approve':{'count':0},'visits':{'count':0}}}");
    Rec more = {.kind = 2, .stats = "1", .old = "", .new_ = "",
                .tops = {"x,1000000", "y,1000000", "z,1,w,2,v,3"}};
    check_stats(ml, &more,
                "{'count':1,'properties':{'profit':{'count':0,'total':0,'top':["
                "{'profile_id':'x','value':1}]},'purchases':{'count':0,'total':0,'top':["
                "{'profile_id':'y','value':1000000}]},'approve':{'count':0},"
                "'visits':{'count':0}}}");

    /* scores as Redis may print a double */
    Rec dbl = {.kind = 2, .stats = "1", .old = "", .new_ = "",
               .tops = {"x,2.0,y,5e+15", "z,-3"}};
    check_stats(ml, &dbl,
                "{'count':1,'properties':{'profit':{'count':0,'total':0,'top':["
                "{'profile_id':'x','value':0.000002},{'profile_id':'y','value':5000000000}]},"
                "'purchases':{'count':0,'total':0,'top':[{'profile_id':'z','value':-3}]},"
                "'approve':{'count':0},'visits':{'count':0}}}");

    /* a top profile id that needs escaping */
    Mp m = {0};
    SideRecord rec;
    Rec esc = {.kind = 2, .stats = "1", .old = "", .new_ = "", .tops = {"q\"\\\n\x01\xc3\xa9,7"}};
    decode_ok(ml, &esc, &m, &rec);
    char *got = stats_json(ml, &rec.after);
    assert_string_equal(got, "{\"count\":1,\"properties\":{\"profit\":{\"count\":0,\"total\":0,"
                             "\"top\":[{\"profile_id\":\"q\\\"\\\\\\n\\u0001\xc3\xa9\","
                             "\"value\":0.000007}]},\"purchases\":{\"count\":0,\"total\":0,"
                             "\"top\":[]},\"approve\":{\"count\":0},\"visits\":{\"count\":0}}}");
    free(got);
    free(m.p);

    /* a relation without properties */
    SideStats none;
    memset(&none, 0, sizeof none);
    none.count = 7;
    got = stats_json(rel_of(state, "plain"), &none);
    assert_string_equal(got, "{\"count\":7,\"properties\":{}}");
    free(got);
}

static void expect_stats(const SideStats *st, int64_t count, const int64_t pcount[4],
                         const int64_t ptotal[4])
{
    assert_int_equal(st->count, count);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(st->pcount[i], pcount[i]);
        assert_int_equal(st->ptotal[i], ptotal[i]);
    }
}

static void test_stats_after(void **state)
{
    const RelationDef *ml = rel_of(state, "ml"); /* profit, purchases, approve, visits */
    Mp m = {0};
    SideRecord rec;

    /* attach: +1; numeric set +1; bool true +1; totals only with save_amount
     * (visits' total field stays as it was) */
    Rec a = {.kind = 1, .stats = "4,3,10000000,2,20,1,-,7,100", .new_ = "2500000,5,1,9",
             .tops = {"", ""}};
    decode_ok(ml, &a, &m, &rec);
    assert_int_equal(rec.kind, KIND_ATTACH);
    assert_int_equal(rec.date_len, strlen(DATE));
    assert_memory_equal(rec.date, DATE, rec.date_len);
    assert_false(rec.has_old);
    assert_true(rec.has_new);
    expect_stats(&rec.before, 4, (int64_t[]){3, 2, 1, 7}, (int64_t[]){10000000, 20, 0, 100});
    expect_stats(&rec.after, 5, (int64_t[]){4, 3, 2, 8}, (int64_t[]){12500000, 25, 0, 100});

    /* attach with a bool false and unset numbers: only the count moves */
    Rec a0 = {.kind = 1, .stats = "4,3,10000000,2,20,1,-,7,-", .new_ = "-,-,0,-",
              .tops = {"", ""}};
    decode_ok(ml, &a0, &m, &rec);
    assert_true(rec.new_.set[2]);
    assert_false(rec.new_.set[0]);
    expect_stats(&rec.after, 5, (int64_t[]){3, 2, 1, 7}, (int64_t[]){10000000, 20, 0, 0});

    /* detach: -1 and the edge's values out */
    Rec d = {.kind = 3, .stats = "4,3,10000000,2,20,1,-,7,-", .old = "2500000,5,1,9",
             .tops = {"", ""}};
    decode_ok(ml, &d, &m, &rec);
    assert_true(rec.has_old);
    assert_false(rec.has_new);
    expect_stats(&rec.after, 3, (int64_t[]){2, 1, 0, 6}, (int64_t[]){7500000, 15, 0, 0});

    /* change: set -> unset, unset -> set, false -> true, a new value */
    Rec c = {.kind = 2, .stats = "4,3,10000000,2,20,1,-,7,-", .old = "2500000,5,0,9",
             .new_ = "-,7,1,-", .tops = {"", ""}};
    decode_ok(ml, &c, &m, &rec);
    expect_stats(&rec.after, 4, (int64_t[]){2, 2, 2, 6}, (int64_t[]){7500000, 22, 0, 0});

    /* a bool weight other than 1 does not count; negative values */
    Rec b = {.kind = 2, .stats = "2,2,-5000000,2,-3,1,-,0,-", .old = "-1000000,-3,1,-",
             .new_ = "-4000000,-9,2,-", .tops = {"", ""}};
    decode_ok(ml, &b, &m, &rec);
    expect_stats(&rec.after, 2, (int64_t[]){2, 2, 0, 0}, (int64_t[]){-8000000, -9, 0, 0});

    /* missing fields are 0; a short statistics array leaves the rest 0, a
     * long one's extra fields are ignored; extra weights (a property removed
     * since) are ignored; nil weights are no edge; "1.0" reads as 1 */
    Rec s = {.kind = 1, .stats = "", .new_ = "1,2,1,4,99", .tops = {"", ""}};
    decode_ok(ml, &s, &m, &rec);
    expect_stats(&rec.after, 1, (int64_t[]){1, 1, 1, 1}, (int64_t[]){1, 2, 0, 0});
    Rec l = {.kind = 2, .stats = "1.0,1,1,1,1,1,1,1,1,55,66", .old = "1,1,1,1", .new_ = "1,1,1,1",
             .tops = {"", ""}};
    decode_ok(ml, &l, &m, &rec);
    expect_stats(&rec.after, 1, (int64_t[]){1, 1, 1, 1}, (int64_t[]){1, 1, 1, 1});

    m.len = 0;
    w_array(&m, 6);
    w_cstr(&m, "d");
    w_int(&m, 3);
    w_array(&m, 1);
    w_cstr(&m, "2");
    mp_u8(&m, 0xc0); /* nil old weights */
    mp_u8(&m, 0xc0);
    mp_u8(&m, 0x80); /* an empty map for the tops */
    char err[128];
    assert_true(record_decode(m.p, m.len, ml, &rec, err, sizeof err));
    assert_false(rec.has_old);
    assert_false(rec.has_new);
    assert_int_equal(rec.kind, KIND_DETACH);
    assert_int_equal(rec.after.count, 1);
    free(m.p);
}

/* ---- numbers ---- */

static void test_parse_int64(void **state)
{
    (void)state;
    int64_t v = 42;
    assert_true(parse_int64("0", 1, &v));
    assert_int_equal(v, 0);
    assert_true(parse_int64("-17", 3, &v));
    assert_int_equal(v, -17);
    assert_true(parse_int64("9223372036854775807", 19, &v));
    assert_int_equal(v, INT64_MAX);
    assert_true(parse_int64("-9223372036854775808", 20, &v));
    assert_int_equal(v, INT64_MIN);
    assert_true(parse_int64("1.0", 3, &v));
    assert_int_equal(v, 1);
    assert_true(parse_int64("5e+15", 5, &v));
    assert_int_equal(v, 5000000000000000LL);
    assert_true(parse_int64("123trailing", 3, &v)); /* only len bytes */
    assert_int_equal(v, 123);
    v = 42;
    assert_false(parse_int64("", 0, &v));
    assert_false(parse_int64("abc", 3, &v));
    assert_false(parse_int64("12x", 3, &v));
    assert_false(parse_int64("inf", 3, &v));
    assert_false(parse_int64("nan", 3, &v));
    assert_false(parse_int64("1e300", 5, &v));
    char big[80];
    memset(big, '1', sizeof big);
    assert_false(parse_int64(big, sizeof big, &v));
    assert_int_equal(v, 42);
}

/* ---- escaping ---- */

static void test_render_escaping(void **state)
{
    const RelationDef *plain = rel_of(state, "plain");
    Event ev;
    TriggerSet ts = {0};
    parse_event(state,
                "{\"id\":\"q\\\"b\\\\s\\nn\\tt\\u0001\\u001f\\u007f\xc3\xa9\xe2\x82\xac\","
                "\"op\":\"attach\",\"relation\":\"plain\",\"profile_a\":\"a\\\"\\\\\\r\","
                "\"profile_b\":\"\xc3\xa9\\b\\f\",\"occurred_at\":\"\\u0002/\"}",
                false, &ev);
    assert_string_equal(ev.id, "q\"b\\s\nn\tt\x01\x1f\x7f\xc3\xa9\xe2\x82\xac");
    Rec r = {.date = "d\x01\"", .kind = 1, .stats = "", .new_ = ""};
    render(&ts, plain, SIDE_DIRECT, &ev, &r);
    static const Want want[] = {
        {SIDE_DIRECT, "attach", -1,
         "{\"event_type\":\"relation_direct_attach\",\"event_date\":\"d\\u0001\\\"\","
         "\"profile_id\":\"a\\\"\\\\\\r\",\"database\":\"d\\\"a\",\"is_test\":false,"
         "\"event_data\":{\"id\":\"@ID\",\"kind\":\"attach\",\"relation\":\"plain\","
         "\"direction\":\"direct\",\"counterpart\":{\"profile_id\":\"\xc3\xa9\\b\\f\","
         "\"database\":\"db\"},\"source_event\":{\"id\":\"q\\\"b\\\\s\\nn\\tt\\u0001\\u001f"
         "\x7f\xc3\xa9\xe2\x82\xac\",\"op\":\"attach\",\"occurred_at\":\"\\u0002/\"},"
         "\"weights\":{\"before\":null,\"after\":{}},\"stats\":{\"count\":1,"
         "\"properties\":{}},\"threshold\":null}}"},
    };
    assert_int_equal(ts.n, 1);
    check_from(&ts, 0, &ev, "plain", want, NWANT(want), false);
    triggers_free(&ts);
}

/* ---- the trigger set ---- */

static void test_trigger_set_reuse(void **state)
{
    const RelationDef *th = rel_of(state, "th");
    Event ev;
    TriggerSet ts = {0};
    parse_event(state,
                "{'id':'ev-a','op':'attach','relation':'th','profile_a':'42','profile_b':'1001',"
                "'weights':{'profit':100.5,'purchases':3,'approve':true},"
                "'occurred_at':'2026-11-28T12:00:00Z'}",
                true, &ev);
    Rec r = {.kind = 1, .stats = "2,1,50000000,2,5,1,-", .new_ = "100500000,3,1",
             .tops = {"1001,100500000,7,50000000", "7,2,1001,3"}};
    for (int round = 0; round < 2; round++) {
        triggers_reset(&ts);
        for (int i = 0; i < 100; i++)
            render(&ts, th, SIDE_DIRECT, &ev, &r);
        assert_true(triggers_finish(&ts));
        assert_int_equal(ts.n, 700); /* past the first 256 items */
        for (size_t i = 7; i < ts.n; i++) {
            const Trigger *a = &ts.items[i % 7], *t = &ts.items[i];
            assert_int_equal(t->len, a->len);
            assert_memory_equal(t->body, a->body, t->len);
            assert_string_equal(t->routing_key, a->routing_key);
            assert_string_equal(t->id, a->id);
        }
    }
    triggers_free(&ts);
    assert_null(ts.items);
    assert_int_equal(ts.n, 0);
}

/* 11 tops of 20 long ids: the shared part of the body is over 8 KiB. */
static void test_render_large(void **state)
{
    const RelationDef *wide = rel_of(state, "wide");
    Event ev;
    TriggerSet ts = {0};
    parse_event(state,
                "{'id':'w1','op':'attach','relation':'wide','profile_a':'A','profile_b':'B'}",
                true, &ev);
    char id[ITEM_MAX];
    Mp m = {0};
    w_array(&m, 6);
    w_cstr(&m, "dt");
    w_int(&m, 1);
    w_array(&m, 0);
    w_false(&m);
    w_array(&m, 11);
    for (int i = 0; i < 11; i++)
        w_int(&m, 1000000);
    w_array(&m, 11);
    for (int p = 0; p < 11; p++) {
        w_array(&m, 40);
        for (int k = 0; k < 20; k++) {
            snprintf(id, sizeof id, "%d-%d-%0100d", p, k, 0);
            w_cstr(&m, id);
            char score[32];
            snprintf(score, sizeof score, "%d", 1000000 * (20 - k) + p);
            w_cstr(&m, score);
        }
    }
    SideRecord rec;
    char err[128];
    assert_true(record_decode(m.p, m.len, wide, &rec, err, sizeof err));
    trigger_render(&ts, wide, SIDE_DIRECT, &ev, &rec);

    /* the expected shared part, written out here */
    JsonBuf e = {0};
    jsonbuf_cstr(&e, "\",\"relation\":\"wide\",\"direction\":\"direct\",\"counterpart\":"
                     "{\"profile_id\":\"B\",\"database\":\"wb\"},\"source_event\":{\"id\":\"w1\","
                     "\"op\":\"attach\",\"occurred_at\":null},\"weights\":{\"before\":null,"
                     "\"after\":{");
    for (int p = 0; p < 11; p++) {
        char s[32];
        snprintf(s, sizeof s, "%s\"p%d\":1", p ? "," : "", p);
        jsonbuf_cstr(&e, s);
    }
    jsonbuf_cstr(&e, "}},\"stats\":{\"count\":1,\"properties\":{");
    for (int p = 0; p < 11; p++) {
        char s[256];
        snprintf(s, sizeof s, "%s\"p%d\":{\"count\":1,\"total\":1,\"top\":[", p ? "," : "", p);
        jsonbuf_cstr(&e, s);
        for (int k = 0; k < 20; k++) {
            snprintf(id, sizeof id, "%d-%d-%0100d", p, k, 0);
            /* value 20-k and p millionths: no point without a fraction,
             * no trailing zeros (p10: .00001) */
            if (p == 0)
                snprintf(s, sizeof s, "%s{\"profile_id\":\"%s\",\"value\":%d}", k ? "," : "", id,
                         20 - k);
            else
                snprintf(s, sizeof s, "%s{\"profile_id\":\"%s\",\"value\":%d.%0*d}",
                         k ? "," : "", id, 20 - k, 6 - (p >= 10), p >= 10 ? 1 : p);
            jsonbuf_cstr(&e, s);
        }
        jsonbuf_cstr(&e, "]}");
    }
    jsonbuf_cstr(&e, "}},\"threshold\":");
    assert_true(e.len > 8192 * 3);
    char *mid = strndup(e.data, e.len);
    jsonbuf_free(&e);

    const char *thr[] = {
        "null",
        "{\"stat\":\"count\",\"property\":null,\"value\":1,\"crossing\":\"up\",\"before\":0,"
        "\"after\":1}",
        "{\"stat\":\"total\",\"property\":\"p10\",\"value\":1,\"crossing\":\"up\",\"before\":0,"
        "\"after\":1}",
        "{\"stat\":\"edge\",\"property\":\"p0\",\"value\":0.5,\"crossing\":\"up\","
        "\"before\":null,\"after\":1}",
    };
    Want want[4];
    char *bodies[4];
    for (int i = 0; i < 4; i++) {
        const char *kind = i ? "threshold" : "attach";
        size_t cap = strlen(mid) + 1024;
        bodies[i] = malloc(cap);
        assert_non_null(bodies[i]);
        snprintf(bodies[i], cap,
                 "{\"event_type\":\"relation_direct_%s\",\"event_date\":\"dt\",\"profile_id\":"
                 "\"A\",\"database\":\"wa\",\"is_test\":false,\"event_data\":{\"id\":\"@ID\","
                 "\"kind\":\"%s%s%s}}",
                 kind, kind, mid, thr[i]);
        want[i] = (Want){SIDE_DIRECT, kind, i - 1, bodies[i]};
    }
    assert_int_equal(ts.n, 4);
    check_from(&ts, 0, &ev, "wide", want, 4, false);
    for (int i = 0; i < 4; i++)
        free(bodies[i]);
    free(mid);
    free(m.p);
    triggers_free(&ts);
}

/* ---- record_decode: errors and hostile input ---- */

static void expect_decode_error(void **state, const Mp *m, const char *message)
{
    SideRecord rec;
    char err[128];
    memset(err, 0, sizeof err);
    if (record_decode(m->p, m->len, rel_of(state, "ml"), &rec, err, sizeof err))
        fail_msg("decoded, expected: %s", message);
    assert_string_equal(err, message);
}

/* A valid record of ml, up to (not including) element `upto`, then the
 * caller writes the rest. */
static void head(Mp *m, int upto)
{
    m->len = 0;
    w_array(m, 6);
    if (upto > 0)
        w_cstr(m, DATE);
    if (upto > 1)
        w_int(m, 2);
    if (upto > 2)
        w_strings(m, "1,1,1,1,1,1,-,1,-");
    if (upto > 3)
        w_weights(m, "1,1,1,1");
    if (upto > 4)
        w_weights(m, "1,1,1,1");
}

static void test_decode_errors(void **state)
{
    Mp m = {0};
#define E(what) "bad outbox record: " what

    m.len = 0;
    expect_decode_error(state, &m, E("not an array of 6 or 7"));
    m.len = 0;
    w_array(&m, 5);
    w_cstr(&m, DATE);
    w_int(&m, 1);
    w_array(&m, 0);
    w_false(&m);
    w_false(&m);
    expect_decode_error(state, &m, E("not an array of 6 or 7"));
    head(&m, 6);
    w_array(&m, 0);
    m.p[0] = 0x98; /* 8 elements */
    w_false(&m);
    w_false(&m);
    expect_decode_error(state, &m, E("not an array of 6 or 7"));
    m.len = 0;
    w_cstr(&m, "record");
    expect_decode_error(state, &m, E("not an array of 6 or 7"));
    m.len = 0;
    mp_u8(&m, 0x86); /* a map of 6 */
    expect_decode_error(state, &m, E("not an array of 6 or 7"));

    head(&m, 0);
    w_int(&m, 20261128);
    expect_decode_error(state, &m, E("event date"));

    const int64_t bad_kinds[] = {0, 4, -1, 300};
    for (size_t i = 0; i < 4; i++) {
        head(&m, 1);
        w_int(&m, bad_kinds[i]);
        expect_decode_error(state, &m, E("kind"));
    }
    head(&m, 1);
    w_cstr(&m, "1");
    expect_decode_error(state, &m, E("kind"));
    head(&m, 1);
    w_double(&m, 1.5);
    expect_decode_error(state, &m, E("kind"));

    head(&m, 2);
    w_false(&m);
    expect_decode_error(state, &m, E("statistics"));
    head(&m, 2);
    w_strings(&m, "1,1,12x,1");
    expect_decode_error(state, &m, E("a statistic is not an integer"));
    head(&m, 2);
    w_strings(&m, "abc");
    expect_decode_error(state, &m, E("a statistic is not an integer"));
    head(&m, 2);
    w_array(&m, 2);
    w_cstr(&m, "1");
    w_str(&m, "", 0);
    expect_decode_error(state, &m, E("a statistic is not an integer"));
    head(&m, 2);
    w_array(&m, 3); /* 3 announced, 1 there */
    w_cstr(&m, "1");
    expect_decode_error(state, &m, E("statistics"));

    head(&m, 3);
    w_cstr(&m, "1,1,1,1");
    expect_decode_error(state, &m, E("old weights"));
    head(&m, 3);
    w_array(&m, 2);
    w_int(&m, 1);
    w_cstr(&m, "1");
    expect_decode_error(state, &m, E("old weights"));
    head(&m, 3);
    w_array(&m, 1);
    w_double(&m, 0.5);
    expect_decode_error(state, &m, E("old weights"));

    head(&m, 4);
    w_int(&m, 1);
    expect_decode_error(state, &m, E("new weights"));
    head(&m, 4);
    w_array(&m, 4);
    w_int(&m, 1);
    expect_decode_error(state, &m, E("new weights"));

    head(&m, 5);
    w_false(&m);
    expect_decode_error(state, &m, E("tops"));
    head(&m, 5);
    w_array(&m, 1);
    w_cstr(&m, "1001");
    expect_decode_error(state, &m, E("a top"));
    head(&m, 5);
    w_array(&m, 1);
    w_strings(&m, "1001,5,1002");
    expect_decode_error(state, &m, E("a top of odd length"));
    head(&m, 5);
    w_array(&m, 2);
    w_strings(&m, "");
    w_strings(&m, "1001");
    expect_decode_error(state, &m, E("a top of odd length"));
    head(&m, 5);
    w_array(&m, 1);
    w_array(&m, 2);
    w_int(&m, 1001);
    w_cstr(&m, "5");
    expect_decode_error(state, &m, E("a top entry"));
    head(&m, 5);
    w_array(&m, 1);
    w_array(&m, 2);
    w_cstr(&m, "1001");
    w_int(&m, 5);
    expect_decode_error(state, &m, E("a top entry"));
    head(&m, 5);
    w_array(&m, 1);
    w_strings(&m, "1001,5x");
    expect_decode_error(state, &m, E("a top score"));
    head(&m, 5);
    w_array(&m, 3); /* a third top, for no property: skipped, but must be there */
    w_strings(&m, "");
    w_strings(&m, "");
    w_array(&m, 2);
    w_cstr(&m, "x");
    expect_decode_error(state, &m, E("tops"));

    /* the message is cut at the buffer's size */
    m.len = 0;
    SideRecord rec;
    char small[8];
    memset(small, 'Z', sizeof small);
    assert_false(record_decode(m.p, m.len, rel_of(state, "ml"), &rec, small, 5));
    assert_string_equal(small, "bad ");
    assert_int_equal(small[5], 'Z');
    free(m.p);
#undef E
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Valid JSON once any byte >= 0x80 is taken for an ASCII letter: a record
 * of random bytes may hold strings that are not UTF-8, passed through as
 * they are. */
static void assert_json_but_utf8(const char *s, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    for (size_t i = 0; i < len; i++)
        copy[i] = (unsigned char)s[i] >= 0x80 ? 'x' : s[i];
    assert_valid_json(copy, len);
    free(copy);
}

/* Decodes data (in a buffer of exactly len bytes); when it is a record,
 * renders it too, as JSON. */
static int decode_any(const RelationDef *rel, const Event *ev, const unsigned char *data,
                      size_t len)
{
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    SideRecord rec;
    char err[128] = "";
    bool ok = record_decode(copy, len, rel, &rec, err, sizeof err);
    if (ok) {
        TriggerSet ts = {0};
        trigger_render(&ts, rel, SIDE_DIRECT, ev, &rec);
        assert_true(triggers_finish(&ts));
        assert_true(ts.n >= 1);
        for (size_t i = 0; i < ts.n; i++)
            assert_json_but_utf8(ts.items[i].body, ts.items[i].len);
        triggers_free(&ts);
    } else {
        assert_int_equal(strncmp(err, "bad outbox record: ", 19), 0);
    }
    free(copy);
    return ok;
}

/* A top left to the daemon (false in the record): ordered from the
 * record's edges (flat '@' counterpart, packed value), the event's own edge
 * (counterpart "c") at its new weights; edges that are not ours skipped. */
static void edges_record(Mp *m, int kind, const char *new_, bool profit_false)
{
    m->len = 0;
    w_array(m, 7);
    w_cstr(m, DATE);
    w_int(m, kind);
    w_strings(m, "5,5,0,5,0,5,-,5,-");
    w_weights(m, "2000000,9,1,1");
    w_weights(m, new_);
    w_array(m, 2);
    if (profit_false) {
        w_false(m);
    } else {
        w_strings(m, "z,1");
    }
    w_false(m);
    static const char *const edges[] = {
        "@a", "5000000,3,1,",  "@b", "9;1000000,1,0,1", "@c", "2000000,9,1,1",
        "@d", ",7,,",          "@e", "x,1",             "@f", "5000000,2",
        "#w", "12345678"};
    size_t n = sizeof edges / sizeof edges[0];
    w_array(m, n);
    for (size_t i = 0; i < n; i++)
        w_cstr(m, edges[i]);
}

static void expect_top(const SideRecord *rec, int i, const char *ids, const int64_t *values)
{
    size_t n = strlen(ids);
    assert_int_equal(rec->after.ntop[i], (int)n);
    for (size_t j = 0; j < n; j++) {
        assert_int_equal(rec->after.top[i][j].len, 1);
        assert_int_equal(rec->after.top[i][j].id[0], ids[j]);
        assert_int_equal(rec->after.top[i][j].value, values[j]);
    }
}

static void test_tops_from_edges(void **state)
{
    const RelationDef *ml = rel_of(state, "ml");
    EdgeSlots slots = {.known = true, .slot = {1, 2, 3, 4}};
    Mp m = {0};
    SideRecord rec;
    char err[128] = "";

    /* a change of c: profit desc (limit 3, a tie by member bytes
     * descending), purchases asc (limit 2) */
    edges_record(&m, 2, "3000000,5,1,1", true);
    assert_true(record_decode_side(m.p, m.len, ml, &slots, "c", 1, &rec, err, sizeof err));
    expect_top(&rec, 0, "fac", (const int64_t[]){5000000, 5000000, 3000000});
    expect_top(&rec, 1, "bf", (const int64_t[]){1, 2});

    /* c detached: its stored edge is not counted */
    edges_record(&m, 3, NULL, true);
    assert_true(record_decode_side(m.p, m.len, ml, &slots, "c", 1, &rec, err, sizeof err));
    expect_top(&rec, 0, "fab", (const int64_t[]){5000000, 5000000, 1000000});
    expect_top(&rec, 1, "bf", (const int64_t[]){1, 2});

    /* c's new value unset for purchases; profit's top given as a list */
    edges_record(&m, 2, "9000000,-,1,1", false);
    assert_true(record_decode_side(m.p, m.len, ml, &slots, "c", 1, &rec, err, sizeof err));
    expect_top(&rec, 0, "z", (const int64_t[]){1});
    expect_top(&rec, 1, "bf", (const int64_t[]){1, 2});

    /* without the relation's positions: refused */
    edges_record(&m, 2, "3000000,5,1,1", true);
    assert_false(record_decode(m.p, m.len, ml, &rec, err, sizeof err));
    assert_string_equal(err, "bad outbox record: edges of a relation whose packed positions "
                             "are unknown");

    /* a false top without the edges, edges that are not a flat list */
    m.len = 0;
    head(&m, 5);
    w_array(&m, 1);
    w_false(&m);
    assert_false(record_decode_side(m.p, m.len, ml, &slots, "c", 1, &rec, err, sizeof err));
    assert_string_equal(err, "bad outbox record: a top");
    m.p[0] = 0x97;
    w_array(&m, 1);
    w_cstr(&m, "@a");
    assert_false(record_decode_side(m.p, m.len, ml, &slots, "c", 1, &rec, err, sizeof err));
    assert_string_equal(err, "bad outbox record: edges");
    free(m.p);
}

static void test_decode_hostile(void **state)
{
    const RelationDef *th = rel_of(state, "th");
    Event ev;
    parse_event(state,
                "{'id':'h','op':'attach','relation':'th','profile_a':'42','profile_b':'1001'}",
                true, &ev);
    Mp m = {0};
    Rec r = {.kind = 2, .stats = "3,2,135500000,3,3,1,-", .old = "40000000,-7,-",
             .new_ = "60000000,-,0", .tops = {"1001,60000000,7,50000000", "7,2,9,4"}};
    build_record(&m, &r);
    assert_true(decode_any(th, &ev, m.p, m.len));

    /* every truncation fails */
    for (size_t len = 0; len < m.len; len++)
        assert_false(decode_any(th, &ev, m.p, len));

    /* random byte strings, some starting like a record */
    unsigned char buf[96];
    for (int i = 0; i < 600; i++) {
        size_t len = rnd() % sizeof buf;
        for (size_t k = 0; k < len; k++)
            buf[k] = (unsigned char)rnd();
        if (i % 2 && len > 0)
            buf[0] = 0x96;
        if (i % 4 == 1 && len > 2) {
            buf[1] = 0xa1;
            buf[2] = 'd';
        }
        decode_any(th, &ev, buf, len);
    }

    /* a valid record with bytes changed, and cut at random */
    unsigned char *mut = malloc(m.len);
    assert_non_null(mut);
    int decoded = 0;
    for (int i = 0; i < 600; i++) {
        memcpy(mut, m.p, m.len);
        int changes = 1 + (int)(rnd() % 3);
        for (int k = 0; k < changes; k++)
            mut[rnd() % m.len] = (unsigned char)rnd();
        size_t len = i % 3 ? m.len : rnd() % (m.len + 1);
        decoded += decode_any(th, &ev, mut, len);
    }
    assert_true(decoded > 0); /* some changes keep it a record (a digit, a date byte) */
    free(mut);
    free(m.p);
}

/* ---- setup ---- */

static int setup(void **state)
{
    return config_setup(state, config_text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trigger_id_by_hand),
        cmocka_unit_test(test_render_attach),
        cmocka_unit_test(test_render_change),
        cmocka_unit_test(test_render_detach),
        cmocka_unit_test(test_thresholds_attach_up),
        cmocka_unit_test(test_thresholds_detach_down),
        cmocka_unit_test(test_thresholds_change),
        cmocka_unit_test(test_thresholds_none),
        cmocka_unit_test(test_thresholds_reverse),
        cmocka_unit_test(test_tops),
        cmocka_unit_test(test_tops_from_edges),
        cmocka_unit_test(test_stats_after),
        cmocka_unit_test(test_parse_int64),
        cmocka_unit_test(test_render_escaping),
        cmocka_unit_test(test_trigger_set_reuse),
        cmocka_unit_test(test_render_large),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_hostile),
    };
    return cmocka_run_group_tests(tests, setup, config_teardown);
}
