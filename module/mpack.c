/* mpack.c — MessagePack as cmsgpack writes it (mpack.h). */
#include "module/mpack.h"
#include "module/mem.h"

#include <math.h>
#include <string.h>

static void put(Mpack *m, const void *p, size_t n)
{
    if (m->oom)
        return;
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 512;
        while (cap < m->len + n)
            cap *= 2;
        unsigned char *d = mem_realloc(m->data, cap);
        if (!d) {
            m->oom = true;
            return;
        }
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, p, n);
    m->len += n;
}

/* code then the n low bytes of v, big-endian */
static void be(Mpack *m, unsigned char code, uint64_t v, int n)
{
    if (n == 0 && m->len < m->cap && !m->oom) { /* the common case: one byte, room */
        m->data[m->len++] = code;
        return;
    }
    unsigned char b[9];
    b[0] = code;
    for (int i = 0; i < n; i++)
        b[1 + i] = (unsigned char)(v >> (8 * (n - 1 - i)));
    put(m, b, (size_t)n + 1);
}

void mpack_array(Mpack *m, size_t n)
{
    if (n < 16)
        be(m, (unsigned char)(0x90 | n), 0, 0);
    else if (n <= 0xffff)
        be(m, 0xdc, n, 2);
    else
        be(m, 0xdd, n, 4);
}

static void str_head(Mpack *m, size_t len)
{
    if (len < 32)
        be(m, (unsigned char)(0xa0 | len), 0, 0);
    else if (len <= 0xff)
        be(m, 0xd9, len, 1);
    else if (len <= 0xffff)
        be(m, 0xda, len, 2);
    else
        be(m, 0xdb, len, 4);
}

void mpack_str(Mpack *m, const char *s, size_t len)
{
    str_head(m, len);
    put(m, s, len);
}

void mpack_str2(Mpack *m, const char *a, size_t alen, const char *b, size_t blen)
{
    str_head(m, alen + blen);
    put(m, a, alen);
    put(m, b, blen);
}

void mpack_raw(Mpack *m, const void *p, size_t n)
{
    put(m, p, n);
}

void mpack_false(Mpack *m)
{
    be(m, 0xc2, 0, 0);
}

static void mpack_int(Mpack *m, int64_t n)
{
    if (n >= 0) {
        if (n <= 127)
            be(m, (unsigned char)n, 0, 0);
        else if (n <= 0xff)
            be(m, 0xcc, (uint64_t)n, 1);
        else if (n <= 0xffff)
            be(m, 0xcd, (uint64_t)n, 2);
        else if (n <= 0xffffffffLL)
            be(m, 0xce, (uint64_t)n, 4);
        else
            be(m, 0xcf, (uint64_t)n, 8);
    } else {
        if (n >= -32)
            be(m, (unsigned char)(signed char)n, 0, 0);
        else if (n >= -128)
            be(m, 0xd0, (uint64_t)n, 1);
        else if (n >= -32768)
            be(m, 0xd1, (uint64_t)n, 2);
        else if (n >= -2147483648LL)
            be(m, 0xd2, (uint64_t)n, 4);
        else
            be(m, 0xd3, (uint64_t)n, 8);
    }
}

void mpack_number(Mpack *m, double v)
{
    /* IS_INT64_EQUIVALENT, then lua_tointeger's cast */
    if (!isinf(v) && v == v && v >= -9223372036854775808.0 && v < 9223372036854775808.0 &&
        (double)(int64_t)v == v) {
        mpack_int(m, (int64_t)v);
        return;
    }
    float f = (float)v;
    if (v == (double)f) {
        uint32_t u;
        memcpy(&u, &f, 4);
        be(m, 0xca, u, 4);
    } else {
        uint64_t u;
        memcpy(&u, &v, 8);
        be(m, 0xcb, u, 8);
    }
}

void mpack_free(Mpack *m)
{
    mem_free(m->data);
    m->data = NULL;
    m->len = m->cap = 0;
}
