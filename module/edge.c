/* edge.c — a stored edge's value read and written (edge.h): the packed
 * value of layout 2, and a small JSON reader for layout 1's that keeps what
 * weights_of kept and skips the rest (depth at most 32). */
#include "module/edge.h"
#include "module/num.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p, *end;
} In;

static void ws(In *in)
{
    while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' || *in->p == '\r'))
        in->p++;
}

static bool lit(In *in, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(in->end - in->p) < n || memcmp(in->p, w, n) != 0)
        return false;
    in->p += n;
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A string (in->p at its quote), decoded into out (NULL: skipped); out has
 * room for the raw length. */
static bool str(In *in, char *out, size_t *outlen)
{
    size_t n = 0;
    if (in->p >= in->end || *in->p != '"')
        return false;
    in->p++;
    while (in->p < in->end && *in->p != '"') {
        unsigned char c = (unsigned char)*in->p++;
        if (c < 0x20)
            return false;
        if (c != '\\') {
            if (out)
                out[n] = (char)c;
            n++;
            continue;
        }
        if (in->p >= in->end)
            return false;
        char e = *in->p++;
        const char *map = "\"\"\\\\//b\bf\fn\nr\rt\t";
        const char *m = NULL;
        for (const char *k = map; *k; k += 2)
            if (*k == e)
                m = k + 1;
        if (m) {
            if (out)
                out[n] = *m;
            n++;
            continue;
        }
        if (e != 'u' || in->end - in->p < 4)
            return false;
        unsigned cp = 0;
        for (int k = 0; k < 4; k++) {
            int h = hexval(in->p[k]);
            if (h < 0)
                return false;
            cp = cp * 16 + (unsigned)h;
        }
        in->p += 4;
        /* at most 3 bytes of UTF-8 for one \uXXXX (6 raw bytes) */
        unsigned char b[3];
        size_t nb;
        if (cp < 0x80) {
            b[0] = (unsigned char)cp;
            nb = 1;
        } else if (cp < 0x800) {
            b[0] = (unsigned char)(0xc0 | (cp >> 6));
            b[1] = (unsigned char)(0x80 | (cp & 0x3f));
            nb = 2;
        } else {
            b[0] = (unsigned char)(0xe0 | (cp >> 12));
            b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
            b[2] = (unsigned char)(0x80 | (cp & 0x3f));
            nb = 3;
        }
        if (out)
            memcpy(out + n, b, nb);
        n += nb;
    }
    if (in->p >= in->end)
        return false;
    in->p++;
    if (outlen)
        *outlen = n;
    return true;
}

static bool number(In *in, double *out)
{
    char buf[64];
    const char *s = in->p;
    while (in->p < in->end && strchr("+-0123456789.eE", *in->p))
        in->p++;
    size_t n = (size_t)(in->p - s);
    if (n == 0 || n >= sizeof buf)
        return false;
    if (num_small_int(s, n, out))
        return true;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e;
    *out = strtod(buf, &e);
    return *e == '\0';
}

static bool skip(In *in, int depth);

static bool skip_container(In *in, int depth, char close, bool keys)
{
    in->p++;
    ws(in);
    if (in->p < in->end && *in->p == close) {
        in->p++;
        return true;
    }
    for (;;) {
        ws(in);
        if (keys) {
            if (!str(in, NULL, NULL))
                return false;
            ws(in);
            if (in->p >= in->end || *in->p++ != ':')
                return false;
        }
        if (!skip(in, depth + 1))
            return false;
        ws(in);
        if (in->p >= in->end)
            return false;
        char c = *in->p++;
        if (c == close)
            return true;
        if (c != ',')
            return false;
    }
}

static bool skip(In *in, int depth)
{
    double d;
    ws(in);
    if (depth > 32 || in->p >= in->end)
        return false;
    switch (*in->p) {
    case '"':
        return str(in, NULL, NULL);
    case '{':
        return skip_container(in, depth, '}', true);
    case '[':
        return skip_container(in, depth, ']', false);
    case 't':
        return lit(in, "true");
    case 'f':
        return lit(in, "false");
    case 'n':
        return lit(in, "null");
    default:
        return number(in, &d);
    }
}

/* The weights object: each property's number or bool (last one wins). */
static bool weights(In *in, const ConfRel *r, Weights *w)
{
    char key[CONF_MAX_SHORT + 1];
    in->p++;
    ws(in);
    if (in->p < in->end && *in->p == '}') {
        in->p++;
        return true;
    }
    for (;;) {
        ws(in);
        const char *ks = in->p;
        size_t klen;
        if (!str(in, NULL, &klen))
            return false;
        int prop = -1;
        if (klen <= CONF_MAX_SHORT) {
            In again = {ks, in->end};
            str(&again, key, &klen);
            for (int i = 0; i < r->n; i++)
                if (strlen(r->p[i].short_name) == klen && memcmp(r->p[i].short_name, key, klen) == 0)
                    prop = i;
        }
        ws(in);
        if (in->p >= in->end || *in->p++ != ':')
            return false;
        ws(in);
        if (prop < 0) {
            if (!skip(in, 2))
                return false;
        } else if (lit(in, "true")) {
            w->v[prop] = 1;
            w->set[prop] = true;
        } else if (lit(in, "false")) {
            w->v[prop] = 0;
            w->set[prop] = true;
        } else if (in->p < in->end && (*in->p == '-' || (*in->p >= '0' && *in->p <= '9'))) {
            if (!number(in, &w->v[prop]))
                return false;
            w->set[prop] = true;
        } else {
            return false; /* null, a string...: not a weight the library can use */
        }
        ws(in);
        if (in->p >= in->end)
            return false;
        char c = *in->p++;
        if (c == '}')
            return true;
        if (c != ',')
            return false;
    }
}

bool edge_parse_json(const ConfRel *r, const char *raw, size_t len, Weights *w, char *ver,
                size_t *verlen, bool *hasver)
{
    In in = {raw, raw + len};
    bool got_weights = false;
    memset(w, 0, sizeof *w);
    *hasver = false;
    ws(&in);
    if (in.p >= in.end || *in.p != '{')
        return false;
    in.p++;
    ws(&in);
    if (in.p < in.end && *in.p == '}')
        return false; /* no weights */
    for (;;) {
        char key[16];
        size_t klen;
        ws(&in);
        const char *ks = in.p;
        if (!str(&in, NULL, &klen))
            return false;
        bool is_w = false, is_v = false;
        if (klen < sizeof key) {
            In again = {ks, in.end};
            str(&again, key, &klen);
            is_w = klen == 7 && memcmp(key, "weights", 7) == 0;
            is_v = klen == 7 && memcmp(key, "version", 7) == 0;
        }
        ws(&in);
        if (in.p >= in.end || *in.p++ != ':')
            return false;
        ws(&in);
        if (is_w) {
            if (in.p >= in.end || *in.p != '{')
                return false;
            memset(w, 0, sizeof *w);
            if (!weights(&in, r, w))
                return false;
            got_weights = true;
        } else if (is_v && in.p < in.end && *in.p == '"') {
            if (!str(&in, ver, verlen))
                return false;
            *hasver = true;
        } else {
            if (is_v)
                *hasver = false;
            if (!skip(&in, 1))
                return false;
        }
        ws(&in);
        if (in.p >= in.end)
            return false;
        char c = *in.p++;
        if (c == '}')
            break;
        if (c != ',')
            return false;
    }
    ws(&in);
    return in.p == in.end && got_weights;
}

/* -?[0-9]+ (at most 19 digits, within an int64) read as num_int reads it. */
static bool packed_int(const char *s, size_t len, double *v)
{
    return len > 0 && num_int(s, len, v) && *v < 9.2e18 && *v > -9.2e18;
}

bool edge_unpack(const ConfRel *r, const char *raw, size_t len, Weights *w, const char **ver,
                 size_t *verlen)
{
    const char *p = raw, *end = raw + len;
    const char *semi = memchr(raw, ';', len);
    double d;
    memset(w, 0, sizeof *w);
    *ver = NULL;
    *verlen = 0;
    if (semi) {
        if (!packed_int(raw, (size_t)(semi - raw), &d))
            return false;
        *ver = raw;
        *verlen = (size_t)(semi - raw);
        p = semi + 1;
    }
    int pos = 0, next = 0; /* next: index into by_slot */
    for (;;) {
        const char *e = memchr(p, ',', (size_t)(end - p));
        if (!e)
            e = end;
        size_t n = (size_t)(e - p);
        while (next < r->n && r->p[r->by_slot[next]].slot < pos)
            next++;
        bool mine = next < r->n && r->p[r->by_slot[next]].slot == pos;
        if (n > 0) {
            if (!packed_int(p, n, &d))
                return false;
            if (mine) {
                w->v[r->by_slot[next]] = d;
                w->set[r->by_slot[next]] = true;
            }
        }
        if (e == end)
            break;
        p = e + 1;
        pos++;
    }
    return true;
}

size_t edge_pack_cap(const ConfRel *r, size_t verlen)
{
    int top = r->n > 0 ? r->p[r->by_slot[r->n - 1]].slot : 0;
    return verlen + 1 + (size_t)top + 1 + 24 * (size_t)r->n + 1;
}

size_t edge_pack(const ConfRel *r, const Weights *w, const char *ver, size_t verlen, char *out)
{
    char *p = out;
    if (ver) {
        memcpy(p, ver, verlen);
        p += verlen;
        *p++ = ';';
    }
    int commas = 0;
    for (int j = 0; j < r->n; j++) {
        int i = r->by_slot[j];
        if (!w->set[i])
            continue;
        for (; commas < r->p[i].slot; commas++)
            *p++ = ',';
        p += num_format(w->v[i], p);
    }
    return (size_t)(p - out);
}

bool edge_slot(const char *raw, size_t len, int slot, double *v)
{
    const char *p = raw, *end = raw + len;
    const char *semi = memchr(raw, ';', len);
    if (semi)
        p = semi + 1;
    for (int pos = 0; pos < slot; pos++) {
        const char *e = memchr(p, ',', (size_t)(end - p));
        if (!e)
            return false;
        p = e + 1;
    }
    const char *e = memchr(p, ',', (size_t)(end - p));
    if (!e)
        e = end;
    return packed_int(p, (size_t)(e - p), v);
}
