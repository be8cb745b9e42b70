/* test_history.c — which reload leaves stored statistics behind: a type
 * changed, save_amount or save_top turned on, a property removed by one
 * reload and back in a later one; and what does not (a new property, one
 * turned off, a relation removed and back, an unchanged file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config/history.h"

/* A configuration with relation "r" holding the given properties (JSON
 * objects, comma-separated), and relation "other" with one int property. */
static Config *with(const char *properties)
{
    char text[2048], err[CONFIG_ERR_MAX];
    snprintf(text, sizeof text,
             "{\"redis\": {\"url\": \"redis://127.0.0.1:6379/0\"}, \"relations\": ["
             "{\"short\": \"r\", \"database_a\": \"a\", \"database_b\": \"b\", "
             "\"properties\": [%s]},"
             "{\"short\": \"other\", \"database_a\": \"a\", \"database_b\": \"b\", "
             "\"properties\": [{\"short\": \"n\", \"type\": \"int\"}]}]}",
             properties);
    Config *cfg = config_parse(text, err, sizeof err);
    if (!cfg)
        fail_msg("config: %s", err);
    return cfg;
}

static char said[1024];

static void note(const char *relation, const char *property, const char *what, void *ctx)
{
    (void)ctx;
    size_t n = strlen(said);
    snprintf(said + n, sizeof said - n, "%s%s.%s: %s", n ? "; " : "", relation, property, what);
}

/* The warnings of a reload from h's state to `properties`. */
static const char *reload(PropertyHistory *h, const char *properties)
{
    Config *cfg = with(properties);
    said[0] = '\0';
    assert_true(history_reload(h, cfg, note, NULL));
    config_free(cfg);
    return said;
}

#define P "{\"short\": \"p\", \"type\": \"int\"}"
#define Q "{\"short\": \"q\", \"type\": \"float\", \"save_amount\": true}"

static void test_what_leaves_statistics_behind(void **state)
{
    (void)state;
    Config *start = with(P "," Q);
    PropertyHistory *h = history_new(start);
    config_free(start);
    assert_non_null(h);
    assert_string_equal(reload(h, P "," Q), "");
    assert_string_equal(reload(h, "{\"short\": \"p\", \"type\": \"float\"}," Q),
                        "r.p: its type changed");
    assert_string_equal(reload(h, "{\"short\": \"p\", \"type\": \"float\", \"save_amount\": true},"
                                  Q), "r.p: save_amount turned on");
    assert_string_equal(reload(h, "{\"short\": \"p\", \"type\": \"float\", \"save_amount\": true,"
                                  "\"save_top\": {\"limit\": 3}}," Q),
                        "r.p: save_top turned on");
    /* turned off: the stored fields are left unread, nothing to rebuild */
    assert_string_equal(reload(h, "{\"short\": \"p\", \"type\": \"float\"}," Q), "");
    /* q removed, then back two reloads later: said once */
    assert_string_equal(reload(h, "{\"short\": \"p\", \"type\": \"float\"}"), "");
    assert_string_equal(reload(h, "{\"short\": \"p\", \"type\": \"float\"}"), "");
    assert_string_equal(reload(h, "{\"short\": \"p\", \"type\": \"float\"}," Q),
                        "r.q: removed by an earlier reload and now back");
    assert_string_equal(reload(h, "{\"short\": \"p\", \"type\": \"float\"}," Q), "");
    /* a new property: its statistics start with it */
    assert_string_equal(reload(h, "{\"short\": \"p\", \"type\": \"float\"}," Q ","
                                  "{\"short\": \"z\", \"type\": \"bool\"}"), "");
    /* two at once, in the relation's order */
    assert_string_equal(reload(h, "{\"short\": \"p\", \"type\": \"int\"},"
                                  "{\"short\": \"q\", \"type\": \"int\", \"save_amount\": true},"
                                  "{\"short\": \"z\", \"type\": \"bool\"}"),
                        "r.p: its type changed; r.q: its type changed");
    history_free(h);
}

static void test_a_relation_removed_and_back_is_not_said(void **state)
{
    (void)state;
    char err[CONFIG_ERR_MAX];
    Config *start = with(P);
    PropertyHistory *h = history_new(start);
    config_free(start);
    /* "other" gone (its events are refused meanwhile: nothing applied) */
    Config *alone = config_parse("{\"redis\": {\"url\": \"redis://127.0.0.1:6379/0\"}, "
                                 "\"relations\": [{\"short\": \"r\", \"database_a\": \"a\", "
                                 "\"database_b\": \"b\", \"properties\": [" P "]}]}",
                                 err, sizeof err);
    assert_non_null(alone);
    said[0] = '\0';
    assert_true(history_reload(h, alone, note, NULL));
    config_free(alone);
    assert_string_equal(said, "");
    assert_string_equal(reload(h, P), "");
    history_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_what_leaves_statistics_behind),
        cmocka_unit_test(test_a_relation_removed_and_back_is_not_said),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
