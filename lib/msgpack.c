/* msgpack.c — the MessagePack reader (msgpack.h). */
#include "lib/msgpack.h"

#include <math.h>
#include <string.h>

void mp_reader_init(MpReader *r, const void *data, size_t len)
{
    r->p = data;
    r->end = r->p + len;
}

static bool take(MpReader *r, size_t n, uint64_t *out)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | r->p[i];
    r->p += n;
    *out = v;
    return true;
}

static bool str(MpReader *r, MpValue *v, size_t lenbytes)
{
    uint64_t n;
    if (!take(r, lenbytes, &n) || (uint64_t)(r->end - r->p) < n)
        return false;
    v->type = MP_STR;
    v->s = (const char *)r->p;
    v->len = (size_t)n;
    r->p += n;
    return true;
}

static bool container(MpReader *r, MpValue *v, MpType type, size_t lenbytes)
{
    uint64_t n;
    if (!take(r, lenbytes, &n) || n > (uint64_t)(r->end - r->p))
        return false; /* each element takes at least one byte */
    v->type = type;
    v->len = (size_t)n;
    return true;
}

bool mp_next(MpReader *r, MpValue *v)
{
    uint64_t u;
    memset(v, 0, sizeof *v);
    if (r->p >= r->end)
        return false;
    unsigned char c = *r->p++;
    if (c <= 0x7f) {
        v->type = MP_INT;
        v->i = c;
        return true;
    }
    if (c >= 0xe0) {
        v->type = MP_INT;
        v->i = (int8_t)c;
        return true;
    }
    if ((c & 0xe0) == 0xa0) {
        r->p--;
        v->len = *r->p++ & 0x1f;
        if ((size_t)(r->end - r->p) < v->len)
            return false;
        v->type = MP_STR;
        v->s = (const char *)r->p;
        r->p += v->len;
        return true;
    }
    if ((c & 0xf0) == 0x90 || (c & 0xf0) == 0x80) {
        v->type = (c & 0xf0) == 0x90 ? MP_ARRAY : MP_MAP;
        v->len = c & 0x0f;
        return true;
    }
    switch (c) {
    case 0xc0: v->type = MP_NIL; return true;
    case 0xc2: v->type = MP_BOOL; v->b = false; return true;
    case 0xc3: v->type = MP_BOOL; v->b = true; return true;
    case 0xc4: case 0xd9: return str(r, v, 1);
    case 0xc5: case 0xda: return str(r, v, 2);
    case 0xc6: case 0xdb: return str(r, v, 4);
    case 0xcc: case 0xcd: case 0xce: case 0xcf: {
        size_t n = (size_t)1 << (c - 0xcc);
        if (!take(r, n, &u) || u > INT64_MAX)
            return false;
        v->type = MP_INT;
        v->i = (int64_t)u;
        return true;
    }
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        size_t n = (size_t)1 << (c - 0xd0);
        if (!take(r, n, &u))
            return false;
        if (n < 8 && (u >> (8 * n - 1)) & 1)
            u |= ~(uint64_t)0 << (8 * n); /* sign extension */
        v->type = MP_INT;
        v->i = (int64_t)u;
        return true;
    }
    case 0xca: {
        float f;
        uint32_t w;
        if (!take(r, 4, &u))
            return false;
        w = (uint32_t)u;
        memcpy(&f, &w, 4);
        v->type = MP_DOUBLE;
        v->d = f;
        return true;
    }
    case 0xcb:
        if (!take(r, 8, &u))
            return false;
        memcpy(&v->d, &u, 8);
        v->type = MP_DOUBLE;
        return true;
    case 0xdc: return container(r, v, MP_ARRAY, 2);
    case 0xdd: return container(r, v, MP_ARRAY, 4);
    case 0xde: return container(r, v, MP_MAP, 2);
    case 0xdf: return container(r, v, MP_MAP, 4);
    default: return false;
    }
}

bool mp_skip(MpReader *r)
{
    MpValue v;
    if (!mp_next(r, &v))
        return false;
    size_t n = v.type == MP_ARRAY ? v.len : v.type == MP_MAP ? 2 * v.len : 0;
    for (size_t i = 0; i < n; i++)
        if (!mp_skip(r))
            return false;
    return true;
}

bool mp_integer(const MpValue *v, int64_t *out)
{
    if (v->type == MP_INT) {
        *out = v->i;
        return true;
    }
    if (v->type == MP_DOUBLE && isfinite(v->d) && fabs(v->d) < 9.2e18 && floor(v->d) == v->d) {
        *out = (int64_t)v->d;
        return true;
    }
    return false;
}
