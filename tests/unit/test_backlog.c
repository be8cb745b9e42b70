/* test_backlog.c — handlers/backlog.c: a trigger packed for a backlog
 * entry (layout 2, field t) reads back as it was written, string for
 * string and NUL-terminated in place, several in a row; what is not a
 * packed trigger (cut short, a length past the end, no NUL, no digits) is
 * refused without reading past the text; and a hook's backlog from the
 * replies of GET of its length key and XLEN. Through the daemon:
 * tests/e2e/test_hooks*.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "handlers/backlog.h"

static const BacklogEntry one = {"h", "7f1c", "{\"a\":1}", 7, "db:p1", "db.relation_direct_attach",
                                 "relation_direct_attach"};

static void same(const BacklogEntry *got, const BacklogEntry *want)
{
    assert_string_equal(got->id, want->id);
    assert_int_equal(got->len, want->len);
    assert_memory_equal(got->body, want->body, want->len);
    assert_int_equal(got->body[got->len], '\0');
    assert_string_equal(got->key, want->key);
    assert_string_equal(got->rk, want->rk);
    assert_string_equal(got->event_type, want->event_type);
}

static void test_packed_triggers_read_back(void **state)
{
    (void)state;
    /* a body with a NUL and bytes that look like the format's own */
    static const char body2[] = "x\0y12:,";
    BacklogEntry two = {"h", "id2", body2, sizeof body2 - 1, "db:p:2", "", "relation_reverse_detach"};
    JsonBuf b = {0};
    backlog_pack(&b, &one);
    backlog_pack(&b, &two);
    assert_false(b.oom);
    size_t at = 0;
    BacklogEntry got;
    assert_true(backlog_unpack(b.data, b.len, &at, &got));
    same(&got, &one);
    assert_true(backlog_unpack(b.data, b.len, &at, &got));
    same(&got, &two);
    assert_int_equal(at, b.len);
    assert_false(backlog_unpack(b.data, b.len, &at, &got));
    jsonbuf_free(&b);
}

static void test_what_is_not_packed_is_refused(void **state)
{
    (void)state;
    JsonBuf b = {0};
    backlog_pack(&b, &one);
    BacklogEntry got;
    /* every cut short: refused, never read past the end */
    for (size_t len = 1; len < b.len; len++) {
        char *copy = malloc(len);
        assert_non_null(copy);
        memcpy(copy, b.data, len);
        size_t at = 0;
        assert_false(backlog_unpack(copy, len, &at, &got));
        assert_int_equal(at, 0);
        free(copy);
    }
    static const char *const bad[] = {
        "4:7f1c",                      /* no NUL */
        "4:7f1cX5:",                   /* something else where the NUL goes */
        ":7f1c",                       /* no length */
        "99:7f1c",                     /* a length past the end */
        "99999999999999999999:x",      /* a length of too many digits */
        "4;7f1c",                      /* no colon */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t at = 0;
        assert_false(backlog_unpack(bad[i], strlen(bad[i]) + 1, &at, &got));
    }
    jsonbuf_free(&b);
}

static redisReply *reply(int type, const char *str, long long integer)
{
    redisReply *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->type = type;
    r->str = (char *)str;
    r->len = str ? strlen(str) : 0;
    r->integer = integer;
    return r;
}

static void test_the_backlog_from_the_length_key_or_xlen(void **state)
{
    (void)state;
    long long len = -1;
    redisReply *get = reply(REDIS_REPLY_STRING, "130", 0), *xlen = reply(REDIS_REPLY_INTEGER, NULL, 3);
    assert_true(backlog_length(get, xlen, &len, NULL, NULL, 0));
    assert_int_equal(len, 130); /* the length key: triggers, not entries */
    get->str = (char *)"-4";
    assert_true(backlog_length(get, xlen, &len, NULL, NULL, 0));
    assert_int_equal(len, 0); /* never below 0 */
    get->type = REDIS_REPLY_NIL;
    assert_true(backlog_length(get, xlen, &len, NULL, NULL, 0));
    assert_int_equal(len, 3); /* no length key: entries of one trigger each */
    get->type = REDIS_REPLY_STRING;
    get->str = (char *)"12x";
    assert_false(backlog_length(get, xlen, &len, NULL, NULL, 0));
    char err[128];
    assert_false(backlog_length(get, xlen, &len, "crm", err, sizeof err));
    assert_string_equal(err, "redis GET/XLEN of hook crm's backlog: not a length");
    get->type = REDIS_REPLY_ERROR;
    get->str = (char *)"WRONGTYPE";
    assert_false(backlog_length(get, xlen, &len, NULL, NULL, 0));
    assert_false(backlog_length(get, xlen, &len, "crm", err, sizeof err));
    assert_string_equal(err, "redis GET/XLEN of hook crm's backlog: WRONGTYPE");
    get->type = REDIS_REPLY_NIL;
    xlen->type = REDIS_REPLY_ERROR;
    xlen->str = (char *)"WRONGTYPE";
    assert_false(backlog_length(get, xlen, &len, NULL, NULL, 0));
    assert_false(backlog_length(get, xlen, &len, "lake", err, sizeof err));
    assert_string_equal(err, "redis GET/XLEN of hook lake's backlog: WRONGTYPE");
    free(get);
    free(xlen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packed_triggers_read_back),
        cmocka_unit_test(test_what_is_not_packed_is_refused),
        cmocka_unit_test(test_the_backlog_from_the_length_key_or_xlen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
