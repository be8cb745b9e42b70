/* jsonbuf.h — an append-only byte buffer that writes JSON: strings escaped,
 * integers and fixed-point numbers without printf. Reused across batches:
 * jsonbuf_reset keeps the memory. */
#ifndef RELATIOND_JSONBUF_H
#define RELATIOND_JSONBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len, cap;
    bool oom; /* an allocation failed: the content is incomplete */
} JsonBuf;

void jsonbuf_reset(JsonBuf *b);
void jsonbuf_free(JsonBuf *b);
/* The content as a NUL-terminated string the caller frees; the buffer is
 * left empty. NULL (the buffer freed) when an allocation failed. */
char *jsonbuf_take(JsonBuf *b) __attribute__((warn_unused_result));
/* Grows the buffer to hold n more bytes; false (and oom set) when out of
 * memory. */
bool jsonbuf_grow(JsonBuf *b, size_t n);

/* The writers below run a few hundred times per event: inline, so that the
 * common case is a comparison and a copy (and strlen of a literal is folded). */

/* Room for n more bytes; false (and oom set) when out of memory. */
static inline bool jsonbuf_reserve(JsonBuf *b, size_t n)
{
    return (!b->oom && b->cap - b->len >= n) || jsonbuf_grow(b, n);
}

static inline void jsonbuf_put(JsonBuf *b, const void *s, size_t n)
{
    if (n && jsonbuf_reserve(b, n)) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
    }
}

/* raw, not quoted */
static inline void jsonbuf_cstr(JsonBuf *b, const char *s)
{
    jsonbuf_put(b, s, strlen(s));
}

static inline void jsonbuf_char(JsonBuf *b, char c)
{
    if (jsonbuf_reserve(b, 1))
        b->data[b->len++] = c;
}

/* A JSON string: quoted, with ", \ and control characters escaped; bytes that
 * are not well-formed UTF-8 become U+FFFD (the output is always JSON). */
void jsonbuf_string(JsonBuf *b, const char *s, size_t n);
void jsonbuf_int(JsonBuf *b, int64_t v);
/* A fixed-point number (10^-6 units) in natural units, shortest form:
 * 250500000 -> 250.5, -7813 -> -0.007813, 0 -> 0. */
void jsonbuf_fixed(JsonBuf *b, int64_t units);

/* The decimal digits of v into out (at least 21 bytes); returns the length. */
size_t format_int(int64_t v, char *out);
/* The same for a fixed-point value in natural units (at least 28 bytes). */
size_t format_fixed(int64_t units, char *out);

#endif
