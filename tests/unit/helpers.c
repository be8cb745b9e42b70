/* helpers.c — the unit tests' configuration state, MessagePack writer and
 * SHA-1 hex digest (helpers.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sha1.h"
#include "tests/unit/helpers.h"

int config_setup(void **state, const char *text)
{
    char err[CONFIG_ERR_MAX];
    Config *cfg = config_parse(text, err, sizeof err);
    if (!cfg) {
        printf("configuration: %s\n", err);
        return -1;
    }
    *state = cfg;
    return 0;
}

int config_teardown(void **state)
{
    config_free(*state);
    return 0;
}

const char SALES_CONFIG[] =
    "{\"redis\": {\"url\": \"redis://localhost\"},\n"
    " \"relations\": [\n"
    "  {\"short\": \"sales\", \"database_a\": \"managers\", \"database_b\": \"customers\",\n"
    "   \"properties\": [\n"
    "     {\"short\": \"profit\", \"type\": \"float\"},\n"
    "     {\"short\": \"qty\", \"type\": \"int\"},\n"
    "     {\"short\": \"ok\", \"type\": \"bool\"}]}]}\n";

const RelationDef *sales_relation(void **state)
{
    const RelationDef *rel = config_relation(*state, "sales");
    assert_non_null(rel);
    return rel;
}

void mp_bytes(Mp *m, const void *s, size_t n)
{
    if (m->cap - m->len < n) {
        size_t cap = m->cap ? m->cap : 256;
        while (cap - m->len < n)
            cap *= 2;
        m->p = realloc(m->p, cap);
        assert_non_null(m->p);
        m->cap = cap;
    }
    if (n)
        memcpy(m->p + m->len, s, n);
    m->len += n;
}

void mp_u8(Mp *m, unsigned v)
{
    unsigned char c = (unsigned char)v;
    mp_bytes(m, &c, 1);
}

void mp_be(Mp *m, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        mp_u8(m, (unsigned)(v >> (8 * i)) & 0xff);
}

void w_array(Mp *m, size_t n)
{
    if (n < 16) {
        mp_u8(m, 0x90 | (unsigned)n);
    } else if (n <= 0xffff) {
        mp_u8(m, 0xdc);
        mp_be(m, n, 2);
    } else {
        mp_u8(m, 0xdd);
        mp_be(m, n, 4);
    }
}

void w_str(Mp *m, const char *s, size_t n)
{
    if (n < 32) {
        mp_u8(m, 0xa0 | (unsigned)n);
    } else if (n <= 0xff) {
        mp_u8(m, 0xd9);
        mp_be(m, n, 1);
    } else if (n <= 0xffff) {
        mp_u8(m, 0xda);
        mp_be(m, n, 2);
    } else {
        mp_u8(m, 0xdb);
        mp_be(m, n, 4);
    }
    mp_bytes(m, s, n);
}

void w_cstr(Mp *m, const char *s)
{
    w_str(m, s, strlen(s));
}

void w_int(Mp *m, int64_t v)
{
    if (v >= 0) {
        if (v <= 127) {
            mp_u8(m, (unsigned)v);
        } else if (v <= 0xff) {
            mp_u8(m, 0xcc);
            mp_be(m, (uint64_t)v, 1);
        } else if (v <= 0xffff) {
            mp_u8(m, 0xcd);
            mp_be(m, (uint64_t)v, 2);
        } else if (v <= 0xffffffffLL) {
            mp_u8(m, 0xce);
            mp_be(m, (uint64_t)v, 4);
        } else {
            mp_u8(m, 0xcf);
            mp_be(m, (uint64_t)v, 8);
        }
    } else {
        if (v >= -32) {
            mp_u8(m, (unsigned)(v & 0xff));
        } else if (v >= -128) {
            mp_u8(m, 0xd0);
            mp_be(m, (uint64_t)v, 1);
        } else if (v >= -32768) {
            mp_u8(m, 0xd1);
            mp_be(m, (uint64_t)v, 2);
        } else if (v >= -2147483648LL) {
            mp_u8(m, 0xd2);
            mp_be(m, (uint64_t)v, 4);
        } else {
            mp_u8(m, 0xd3);
            mp_be(m, (uint64_t)v, 8);
        }
    }
}

void w_false(Mp *m)
{
    mp_u8(m, 0xc2);
}

void w_double(Mp *m, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    mp_u8(m, 0xcb);
    mp_be(m, u, 8);
}

void sha1_of(const void *data, size_t len, char hex[41])
{
    Sha1 s;
    unsigned char d[20];
    sha1_init(&s);
    sha1_update(&s, data, len);
    sha1_final(&s, d);
    sha1_hex(d, hex);
}

char *dq(const char *text)
{
    char *s = strdup(text);
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}
