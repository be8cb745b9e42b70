/* test_jsonbuf.c — the JSON writer (jsonbuf.h): integers and fixed-point
 * numbers as text, and strings escaped: control characters, quotes,
 * backslashes, bytes that are not well-formed UTF-8 (U+FFFD, one per byte),
 * long strings growing the buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "lib/jsonbuf.h"

/* ---- numbers ---- */

static void expect_fixed(int64_t units, const char *want)
{
    char out[40];
    memset(out, 'Z', sizeof out);
    size_t n = format_fixed(units, out);
    assert_true(n < 28);
    assert_int_equal(out[n], 'Z');
    out[n] = '\0';
    assert_string_equal(out, want);

    JsonBuf b = {0};
    jsonbuf_cstr(&b, "[");
    jsonbuf_fixed(&b, units);
    jsonbuf_cstr(&b, "]");
    assert_int_equal(b.len, n + 2);
    assert_memory_equal(b.data + 1, want, n);
    jsonbuf_free(&b);
}

static void expect_int(int64_t v, const char *want)
{
    char out[40];
    memset(out, 'Z', sizeof out);
    size_t n = format_int(v, out);
    assert_true(n <= 21);
    assert_int_equal(out[n], 'Z');
    out[n] = '\0';
    assert_string_equal(out, want);

    JsonBuf b = {0};
    jsonbuf_int(&b, v);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    jsonbuf_free(&b);
}

static void test_format_numbers(void **state)
{
    (void)state;
    expect_fixed(0, "0");
    expect_fixed(250500000, "250.5");
    expect_fixed(1, "0.000001");
    expect_fixed(-1, "-0.000001");
    expect_fixed(-7813, "-0.007813");
    expect_fixed(1000000, "1");
    expect_fixed(-1000000, "-1");
    expect_fixed(100000, "0.1");
    expect_fixed(10, "0.00001");
    expect_fixed(1000001, "1.000001");
    expect_fixed(-250500000, "-250.5");
    expect_fixed(999999999999999LL, "999999999.999999");
    expect_fixed(1000000000000000LL, "1000000000");
    expect_fixed(9007199254740991LL, "9007199254.740991");
    expect_fixed(INT64_MAX, "9223372036854.775807");
    expect_fixed(INT64_MIN, "-9223372036854.775808");
    expect_fixed(INT64_MIN + 1, "-9223372036854.775807");

    expect_int(0, "0");
    expect_int(7, "7");
    expect_int(-1, "-1");
    expect_int(1000000000000000LL, "1000000000000000");
    expect_int(INT64_MAX, "9223372036854775807");
    expect_int(INT64_MIN, "-9223372036854775808");
}

/* ---- JSON strings ---- */

static void test_json_string_escaping(void **state)
{
    (void)state;
    char in[256];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    JsonBuf b = {0};
    jsonbuf_string(&b, in, sizeof in);

    char want[2048], *o = want;
    *o++ = '"';
    for (int i = 0; i < 256; i++) {
        const char *e = NULL;
        switch (i) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        default: break;
        }
        if (e)
            o += sprintf(o, "%s", e);
        else if (i < 0x20)
            o += sprintf(o, "\\u%04x", i);
        else if (i >= 0x80)
            o += sprintf(o, "\\ufffd"); /* alone, no byte >= 0x80 is UTF-8 */
        else
            *o++ = (char)i; /* DEL as it is */
    }
    *o++ = '"';
    assert_int_equal(b.len, (size_t)(o - want));
    assert_memory_equal(b.data, want, b.len);
    assert_memory_equal(b.data, "\"\\u0000\\u0001", 13);

    /* valid UTF-8 with escapes reads back as the same bytes */
    jsonbuf_reset(&b);
    const char *s = "q\"\\/\n\x1f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    jsonbuf_char(&b, '[');
    jsonbuf_string(&b, s, strlen(s));
    jsonbuf_char(&b, ']');
    json_error_t jerr;
    json_t *j = json_loadb(b.data, b.len, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_array_get(j, 0)), s);
    json_decref(j);

    /* bytes that are not well-formed UTF-8 become U+FFFD, one per byte:
     * the output is JSON whatever the input */
    static const struct {
        const char *in, *out;
    } utf8[] = {
        {"\xc3\xa9", "\"\xc3\xa9\""},                     /* é */
        {"\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""},     /* U+10FFFF */
        {"\xc0\xaf", "\"\\ufffd\\ufffd\""},                 /* overlong / */
        {"\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""},      /* overlong / */
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},      /* a surrogate */
        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* beyond U+10FFFF */
        {"a\xe2\x82", "\"a\\ufffd\\ufffd\""},               /* cut short */
        {"\xbf\xc3\xa9", "\"\\ufffd\xc3\xa9\""},           /* a stray continuation */
    };
    for (size_t k = 0; k < sizeof utf8 / sizeof utf8[0]; k++) {
        jsonbuf_reset(&b);
        jsonbuf_string(&b, utf8[k].in, strlen(utf8[k].in));
        assert_int_equal(b.len, strlen(utf8[k].out));
        assert_memory_equal(b.data, utf8[k].out, b.len);
        json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY, &jerr);
        assert_non_null(v);
        json_decref(v);
    }

    /* long strings grow the buffer: every byte escaped, 6 each */
    jsonbuf_reset(&b);
    static char ctl[20000];
    memset(ctl, 1, sizeof ctl);
    jsonbuf_string(&b, ctl, sizeof ctl);
    assert_false(b.oom);
    assert_int_equal(b.len, sizeof ctl * 6 + 2);
    assert_memory_equal(b.data + b.len - 7, "\\u0001\"", 7);
    jsonbuf_string(&b, "", 0);
    assert_memory_equal(b.data + b.len - 2, "\"\"", 2);
    jsonbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_numbers),
        cmocka_unit_test(test_json_string_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
