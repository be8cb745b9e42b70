/* test_resp.c — commands written by hand in RESP (handlers/resp.h): the
 * exact bytes of each part, binary-safe arguments, and whole commands read
 * back as arrays of bulk strings by hiredis's own protocol reader; the
 * length of a command in a buffer of several, and 0 for a truncated or
 * malformed one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <string.h>

#include "handlers/resp.h"

static void assert_buf(JsonBuf *b, const char *want, size_t len)
{
    assert_false(b->oom);
    assert_int_equal(b->len, len);
    assert_memory_equal(b->data, want, len);
    jsonbuf_reset(b);
}
#define ASSERT_BUF(b, lit) assert_buf(b, lit, sizeof lit - 1)

static void test_parts(void **state)
{
    (void)state;
    JsonBuf b = {0};
    resp_count(&b, '*', 3);
    ASSERT_BUF(&b, "*3\r\n");
    resp_cstr(&b, "HDEL");
    ASSERT_BUF(&b, "$4\r\nHDEL\r\n");
    resp_cstr(&b, "");
    ASSERT_BUF(&b, "$0\r\n\r\n");
    resp_arg(&b, "a\0\r\nb", 5);
    ASSERT_BUF(&b, "$5\r\na\0\r\nb\r\n");
    resp_int(&b, 0);
    ASSERT_BUF(&b, "$1\r\n0\r\n");
    resp_int(&b, -42);
    ASSERT_BUF(&b, "$3\r\n-42\r\n");
    resp_int(&b, INT64_MIN);
    ASSERT_BUF(&b, "$20\r\n-9223372036854775808\r\n");
    jsonbuf_free(&b);
}

/* A whole command, as Redis's protocol reader sees it. */
static void test_commands_read_back(void **state)
{
    (void)state;
    JsonBuf b = {0};
    resp_count(&b, '*', 4);
    resp_cstr(&b, "HSET");
    resp_arg(&b, "k\r\n", 3);
    resp_arg(&b, "@\0cp", 4);
    resp_int(&b, 1234567890123LL);
    assert_false(b.oom);
    redisReader *rd = redisReaderCreate();
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, b.data, b.len), REDIS_OK);
    void *out = NULL;
    assert_int_equal(redisReaderGetReply(rd, &out), REDIS_OK);
    redisReply *r = out;
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    assert_string_equal(r->element[0]->str, "HSET");
    assert_int_equal(r->element[1]->len, 3);
    assert_memory_equal(r->element[1]->str, "k\r\n", 3);
    assert_int_equal(r->element[2]->len, 4);
    assert_memory_equal(r->element[2]->str, "@\0cp", 4);
    assert_string_equal(r->element[3]->str, "1234567890123");
    freeReplyObject(r);
    redisReaderFree(rd);
    assert_int_equal(resp_command_len(b.data, b.len), b.len);
    jsonbuf_free(&b);
}

static void test_command_len(void **state)
{
    (void)state;
    JsonBuf b = {0};
    resp_count(&b, '*', 2);
    resp_cstr(&b, "GET");
    resp_arg(&b, "$3\r\n*1", 6); /* looks like RESP inside */
    size_t first = b.len;
    resp_count(&b, '*', 1);
    resp_cstr(&b, "PING");
    assert_false(b.oom);
    assert_int_equal(resp_command_len(b.data, b.len), first);
    assert_int_equal(resp_command_len(b.data + first, b.len - first), b.len - first);
    /* truncated anywhere: not a command */
    for (size_t cut = 0; cut < first; cut++)
        assert_int_equal(resp_command_len(b.data, cut), 0);
    assert_int_equal(resp_command_len("+OK\r\n", 5), 0);
    assert_int_equal(resp_command_len("*-1\r\n", 5), 0);
    assert_int_equal(resp_command_len("*1\r\n$-1\r\n", 9), 0);
    assert_int_equal(resp_command_len("*0\r\n", 4), 4);
    jsonbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts),
        cmocka_unit_test(test_commands_read_back),
        cmocka_unit_test(test_command_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
