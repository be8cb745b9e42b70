/* keys.c — the key layout and its one escaping rule (keys.h). */
#include "handlers/keys.h"
#include "lib/sha1.h"
#include "handlers/cluster.h"
#include "handlers/resp.h"

#include <stdint.h>
#include <string.h>

/* Where the bytes of a key's parts go: a buffer, a CRC, a count. */
typedef void (*KeySink)(void *ctx, const char *s, size_t n);

/* An id as it reads inside a key, passed to put in runs: '%', '{' and '}'
 * percent-encoded (the same id reads the same in the key whenever it holds
 * none of them). */
static void escape(const char *id, KeySink put, void *ctx)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *run = id;
    for (const char *c = id;; c++) {
        if (*c && *c != '%' && *c != '{' && *c != '}')
            continue;
        if (c > run)
            put(ctx, run, (size_t)(c - run));
        if (!*c)
            return;
        char esc[3] = {'%', hex[(unsigned char)*c >> 4], hex[(unsigned char)*c & 15]};
        put(ctx, esc, 3);
        run = c + 1;
    }
}

/* The hash tag's text, RELATION:S:PROFILE (the profile escaped): the one
 * source of both the key's bytes and its slot. */
static void tag(const RelationDef *rel, Side side, const char *profile, KeySink put, void *ctx)
{
    put(ctx, rel->short_name, strlen(rel->short_name));
    put(ctx, side == SIDE_DIRECT ? ":d:" : ":r:", 3);
    escape(profile, put, ctx);
}

static void to_buf(void *ctx, const char *s, size_t n)
{
    jsonbuf_put(ctx, s, n);
}

static void to_crc(void *ctx, const char *s, size_t n)
{
    uint16_t *crc = ctx;
    *crc = cluster_crc16_update(*crc, s, n);
}

/* The length escape writes for id: one scan where nothing needs escaping. */
static size_t escaped_len(const char *id)
{
    size_t n = strcspn(id, "%{}");
    if (!id[n])
        return n;
    size_t len = n;
    for (const char *c = id + n; *c; c++)
        len += (*c == '%' || *c == '{' || *c == '}') ? 3 : 1;
    return len;
}

void key_tag(JsonBuf *b, const RelationDef *rel, Side side, const char *profile)
{
    tag(rel, side, profile, to_buf, b);
}

int key_slot(const RelationDef *rel, Side side, const char *profile)
{
    uint16_t crc = 0;
    tag(rel, side, profile, to_crc, &crc);
    return crc & (CLUSTER_SLOTS - 1);
}

void key_write(JsonBuf *b, const Config *cfg, const RelationDef *rel, Side side,
               const char *profile, const char *suffix, const char *id)
{
    size_t lp = strlen(cfg->key_prefix), ls = strlen(suffix);
    /* the tag's length, as tag() writes it */
    size_t len = strlen(rel->short_name) + 3 + escaped_len(profile);
    if (id)
        len += escaped_len(id);
    resp_count(b, '$', lp + 1 + len + 2 + ls);
    jsonbuf_put(b, cfg->key_prefix, lp);
    jsonbuf_char(b, '{');
    key_tag(b, rel, side, profile);
    jsonbuf_put(b, "}:", 2);
    jsonbuf_put(b, suffix, ls);
    if (id)
        escape(id, to_buf, b);
    jsonbuf_put(b, "\r\n", 2);
}

bool key_side_profile(const char *key, size_t len, size_t head, const char *suffix, char *out,
                      size_t cap)
{
    size_t n = 0, tail = strlen(suffix) + 2;
    if (len < head + tail || memcmp(key + len - tail, "}:", 2) != 0 ||
        memcmp(key + len - tail + 2, suffix, tail - 2) != 0)
        return false;
    const char *p = key + head, *end = key + len - tail;
    while (p < end) {
        char c = *p++;
        if (c == '%') {
            if (end - p < 2)
                return false;
            int hi = p[0] <= '9' ? p[0] - '0' : p[0] - 'A' + 10;
            int lo = p[1] <= '9' ? p[1] - '0' : p[1] - 'A' + 10;
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        if (n + 1 >= cap)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return n > 0;
}

void key_glob_literal(JsonBuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '*' || *s == '?' || *s == '[' || *s == ']' || *s == '\\')
            jsonbuf_char(b, '\\');
        jsonbuf_char(b, *s);
    }
}

void event_key(const char *id, const char *counterpart, unsigned char out[EVENT_KEY_LEN])
{
    Sha1 s;
    unsigned char d[20];
    sha1_init(&s);
    sha1_update(&s, id, strlen(id) + 1); /* with its NUL */
    sha1_update(&s, counterpart, strlen(counterpart));
    sha1_final(&s, d);
    memcpy(out, d, EVENT_KEY_LEN);
}
