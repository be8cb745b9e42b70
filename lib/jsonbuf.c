/* jsonbuf.c — the JSON writer (jsonbuf.h). */
#include "lib/jsonbuf.h"
#include "lib/grow.h"

#include <stdlib.h>
#include <string.h>

void jsonbuf_reset(JsonBuf *b)
{
    b->len = 0;
    b->oom = false;
}

void jsonbuf_free(JsonBuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

char *jsonbuf_take(JsonBuf *b)
{
    jsonbuf_char(b, '\0');
    char *out = b->oom ? NULL : b->data;
    if (!out)
        free(b->data);
    memset(b, 0, sizeof *b);
    return out;
}

bool jsonbuf_grow(JsonBuf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->cap - b->len >= n)
        return true;
    if (n > SIZE_MAX - b->len || !GROW_RESERVE(b->data, b->cap, b->len + n, 4096)) {
        b->oom = true;
        return false;
    }
    return true;
}

/* The length of the well-formed UTF-8 sequence at s (at most n bytes) that
 * starts with a byte >= 0x80; 0 when it is not one (a stray continuation
 * byte, an overlong form, a surrogate, beyond U+10FFFF, cut short). */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        if (s[0] == 0xE0)
            lo = 0xA0; /* not overlong */
        else if (s[0] == 0xED)
            hi = 0x9F; /* not a surrogate */
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        if (s[0] == 0xF0)
            lo = 0x90;
        else if (s[0] == 0xF4)
            hi = 0x8F; /* at most U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return len;
}

void jsonbuf_string(JsonBuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case: every byte as \u00XX or \ufffd. */
    if (!jsonbuf_reserve(b, n * 6 + 2))
        return;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        if (c >= 0x80) {
            /* Well-formed UTF-8 as it is; any other byte as U+FFFD, so that
             * the output is JSON whatever the input (Redis data included). */
            size_t len = utf8_sequence((const unsigned char *)s + i, n - i);
            if (len) {
                memcpy(o, s + i, len);
                o += len;
                i += len - 1;
            } else {
                memcpy(o, "\\ufffd", 6);
                o += 6;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
}

size_t format_int(int64_t v, char *out)
{
    char tmp[24];
    size_t n = 0, len = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    return len;
}

size_t format_fixed(int64_t units, char *out)
{
    uint64_t u = units < 0 ? (uint64_t)0 - (uint64_t)units : (uint64_t)units;
    uint64_t ip = u / 1000000, fp = u % 1000000;
    size_t len = 0;
    if (units < 0)
        out[len++] = '-';
    len += format_int((int64_t)ip, out + len);
    if (fp) {
        char digits[6];
        for (int i = 5; i >= 0; i--) {
            digits[i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        int last = 5;
        while (digits[last] == '0')
            last--;
        out[len++] = '.';
        memcpy(out + len, digits, (size_t)last + 1);
        len += (size_t)last + 1;
    }
    return len;
}

void jsonbuf_int(JsonBuf *b, int64_t v)
{
    if (jsonbuf_reserve(b, 24))
        b->len += format_int(v, b->data + b->len);
}

void jsonbuf_fixed(JsonBuf *b, int64_t units)
{
    if (jsonbuf_reserve(b, 32))
        b->len += format_fixed(units, b->data + b->len);
}
