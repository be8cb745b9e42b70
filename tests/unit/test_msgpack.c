/* test_msgpack.c — the MessagePack reader (msgpack.h): every integer form
 * and its value, strings, arrays, maps, doubles and float32, what it refuses
 * (ext, the unused byte, input cut short anywhere), and skipping nested
 * values. Inputs are written by hand or with the writer of helpers.h, which
 * encodes the way cmsgpack does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/msgpack.h"
#include "tests/unit/helpers.h"

static void expect_int_value(const unsigned char *data, size_t len, int64_t want)
{
    MpReader r;
    MpValue v;
    int64_t got = 0;
    mp_reader_init(&r, data, len);
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_INT);
    assert_int_equal(v.i, want);
    assert_true(mp_integer(&v, &got));
    assert_int_equal(got, want);
    assert_ptr_equal(r.p, data + len); /* consumed exactly */
    /* cut short: refused */
    for (size_t cut = 0; cut < len; cut++) {
        mp_reader_init(&r, data, cut);
        assert_false(mp_next(&r, &v));
    }
}

#define INT_CASE(want, ...)                                                                   \
    do {                                                                                      \
        static const unsigned char d_[] = {__VA_ARGS__};                                      \
        expect_int_value(d_, sizeof d_, (want));                                              \
    } while (0)

static void test_msgpack_integers(void **state)
{
    (void)state;
    INT_CASE(0, 0x00);
    INT_CASE(127, 0x7f);
    INT_CASE(-1, 0xff);
    INT_CASE(-32, 0xe0);
    INT_CASE(200, 0xcc, 0xc8);
    INT_CASE(255, 0xcc, 0xff);
    INT_CASE(65535, 0xcd, 0xff, 0xff);
    INT_CASE(258, 0xcd, 0x01, 0x02);
    INT_CASE(4294967295LL, 0xce, 0xff, 0xff, 0xff, 0xff);
    INT_CASE(250500000, 0xce, 0x0e, 0xee, 0x53, 0xa0);
    INT_CASE(4294967296LL, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0);
    INT_CASE(INT64_MAX, 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    INT_CASE(-33, 0xd0, 0xdf);
    INT_CASE(-128, 0xd0, 0x80);
    INT_CASE(127, 0xd0, 0x7f);
    INT_CASE(-32768, 0xd1, 0x80, 0x00);
    INT_CASE(-129, 0xd1, 0xff, 0x7f);
    INT_CASE(32767, 0xd1, 0x7f, 0xff);
    INT_CASE(-2147483648LL, 0xd2, 0x80, 0, 0, 0);
    INT_CASE(-7813, 0xd2, 0xff, 0xff, 0xe1, 0x7b);
    INT_CASE(INT64_MIN, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
    INT_CASE(-1, 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    INT_CASE(-4294967297LL, 0xd3, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff);

    /* the test's writer uses the smallest forms, as cmsgpack does */
    const int64_t vals[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295LL,
                            4294967296LL, INT64_MAX, -1, -32, -33, -128, -129, -32768,
                            -32769, -2147483648LL, -2147483649LL, INT64_MIN};
    const size_t sizes[] = {1, 1, 1, 2, 2, 3, 3, 5, 5, 9, 9, 1, 1, 2, 2, 3, 3, 5, 5, 9, 9};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        Mp m = {0};
        w_int(&m, vals[i]);
        assert_int_equal(m.len, sizes[i]);
        expect_int_value(m.p, m.len, vals[i]);
        free(m.p);
    }
}

static void test_msgpack_values(void **state)
{
    (void)state;
    MpReader r;
    MpValue v;
    int64_t i64;

    static const unsigned char simple[] = {0xc0, 0xc2, 0xc3, 0xa0, 0xa3, 'a', 'b', 'c'};
    mp_reader_init(&r, simple, sizeof simple);
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_NIL);
    assert_false(mp_integer(&v, &i64));
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_BOOL);
    assert_false(v.b);
    assert_false(mp_integer(&v, &i64));
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_BOOL);
    assert_true(v.b);
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_STR);
    assert_int_equal(v.len, 0);
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_STR);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.s, "abc", 3);
    assert_false(mp_integer(&v, &i64));
    assert_false(mp_next(&r, &v)); /* the end */

    /* str8, str16 (and their lengths checked against the input) */
    Mp m = {0};
    char long_s[300];
    memset(long_s, 'x', sizeof long_s);
    w_str(&m, long_s, 31);
    assert_int_equal(m.p[0], 0xbf);
    w_str(&m, long_s, 32);
    w_str(&m, long_s, 255);
    w_str(&m, long_s, 256);
    w_str(&m, long_s, 300);
    assert_int_equal(m.p[1 + 31], 0xd9);
    mp_reader_init(&r, m.p, m.len);
    const size_t lens[] = {31, 32, 255, 256, 300};
    for (int k = 0; k < 5; k++) {
        assert_true(mp_next(&r, &v));
        assert_int_equal(v.type, MP_STR);
        assert_int_equal(v.len, lens[k]);
        assert_memory_equal(v.s, long_s, v.len);
    }
    assert_ptr_equal(r.p, m.p + m.len);
    for (size_t cut = 0; cut < m.len; cut++) { /* cut anywhere: the last value fails */
        mp_reader_init(&r, m.p, cut);
        bool all = true;
        for (int k = 0; k < 5 && all; k++)
            all = mp_next(&r, &v);
        assert_false(all);
    }
    static const unsigned char str32[] = {0xdb, 0, 0, 0, 2, 'h', 'i'};
    mp_reader_init(&r, str32, sizeof str32);
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_STR);
    assert_int_equal(v.len, 2);
    static const unsigned char str8_short[] = {0xd9, 5, 'a', 'b'};
    mp_reader_init(&r, str8_short, sizeof str8_short);
    assert_false(mp_next(&r, &v));
    static const unsigned char fix_short[] = {0xa5, 'a'};
    mp_reader_init(&r, fix_short, sizeof fix_short);
    assert_false(mp_next(&r, &v));

    /* array16 of 17, map16, fixmap */
    m.len = 0;
    w_array(&m, 17);
    assert_int_equal(m.p[0], 0xdc);
    for (int k = 0; k < 17; k++)
        w_int(&m, k);
    mp_reader_init(&r, m.p, m.len);
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_ARRAY);
    assert_int_equal(v.len, 17);
    for (int k = 0; k < 17; k++) {
        assert_true(mp_next(&r, &v));
        assert_int_equal(v.i, k);
    }
    mp_reader_init(&r, m.p, 5); /* 17 announced, 2 bytes left */
    assert_false(mp_next(&r, &v));
    static const unsigned char maps[] = {0x81, 0xa1, 'k', 0x01, 0xde, 0x00, 0x00, 0x80};
    mp_reader_init(&r, maps, sizeof maps);
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_MAP);
    assert_int_equal(v.len, 1);
    assert_true(mp_skip(&r) && mp_skip(&r));
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_MAP);
    assert_int_equal(v.len, 0);
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_MAP);
    assert_int_equal(v.len, 0);

    /* doubles: an integer, a fraction, out of range, not finite; a float32 */
    const double ds[] = {3.0, -250500000.0, 0.0, 2.5, -0.5, 1e19, INFINITY, NAN};
    const bool is_int[] = {true, true, true, false, false, false, false, false};
    for (int k = 0; k < 8; k++) {
        m.len = 0;
        w_double(&m, ds[k]);
        mp_reader_init(&r, m.p, m.len);
        assert_true(mp_next(&r, &v));
        assert_int_equal(v.type, MP_DOUBLE);
        if (!isnan(ds[k]))
            assert_true(v.d == ds[k]);
        i64 = 99;
        assert_int_equal(mp_integer(&v, &i64), is_int[k]);
        if (is_int[k])
            assert_int_equal(i64, (int64_t)ds[k]);
        mp_reader_init(&r, m.p, m.len - 1);
        assert_false(mp_next(&r, &v));
    }
    static const unsigned char f32[] = {0xca, 0x3f, 0xc0, 0x00, 0x00}; /* 1.5 */
    mp_reader_init(&r, f32, sizeof f32);
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_DOUBLE);
    assert_true(v.d == 1.5);
    assert_false(mp_integer(&v, &i64));

    /* not supported (ext, the unused byte): refused */
    static const unsigned char bad[] = {0xc1, 0xd4, 0xc7};
    for (int k = 0; k < 3; k++) {
        mp_reader_init(&r, bad + k, 1);
        assert_false(mp_next(&r, &v));
    }

    /* skip: whole nested values */
    m.len = 0;
    w_array(&m, 3);
    w_int(&m, 1);
    w_array(&m, 2);
    w_cstr(&m, "a");
    w_int(&m, -300);
    mp_u8(&m, 0x81);
    w_cstr(&m, "k");
    w_array(&m, 1);
    w_double(&m, 4.0);
    w_cstr(&m, "after");
    mp_reader_init(&r, m.p, m.len);
    assert_true(mp_skip(&r));
    assert_true(mp_next(&r, &v));
    assert_int_equal(v.type, MP_STR);
    assert_memory_equal(v.s, "after", 5);
    mp_reader_init(&r, m.p, m.len - 7); /* the nested array cut */
    assert_false(mp_skip(&r));
    free(m.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgpack_integers),
        cmocka_unit_test(test_msgpack_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
