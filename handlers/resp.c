/* resp.c — RESP commands written by hand (resp.h). */
#include "handlers/resp.h"

#include <stdlib.h>
#include <string.h>

void resp_count(JsonBuf *b, char c, size_t n)
{
    jsonbuf_char(b, c);
    jsonbuf_int(b, (int64_t)n);
    jsonbuf_put(b, "\r\n", 2);
}

void resp_arg(JsonBuf *b, const char *s, size_t n)
{
    resp_count(b, '$', n);
    jsonbuf_put(b, s, n);
    jsonbuf_put(b, "\r\n", 2);
}

void resp_cstr(JsonBuf *b, const char *s)
{
    resp_arg(b, s, strlen(s));
}

/* The length of the RESP command at p (an array of bulk strings), 0 when
 * it is not one within len bytes. */
size_t resp_command_len(const char *p, size_t len)
{
    const char *q = p, *end = p + len;
    char *next;
    if (q >= end || *q != '*')
        return 0;
    long n = strtol(q + 1, &next, 10);
    if (next + 2 > end || next[0] != '\r' || next[1] != '\n' || n < 0)
        return 0;
    q = next + 2;
    for (long i = 0; i < n; i++) {
        if (q >= end || *q != '$')
            return 0;
        long l = strtol(q + 1, &next, 10);
        if (l < 0 || next + 2 > end || next[0] != '\r' || (size_t)(end - next) < (size_t)l + 4)
            return 0;
        q = next + 2 + l + 2;
    }
    return (size_t)(q - p);
}

void resp_int(JsonBuf *b, int64_t v)
{
    char s[24];
    resp_arg(b, s, format_int(v, s));
}
