/* resp.h — Redis commands written by hand in RESP (arrays of bulk strings)
 * into a JsonBuf, and the length of a command so written.
 *
 * Ownership: the caller's buffer; nothing allocated here beyond its growth.
 * Threads: none of its own; pure functions of their arguments.
 * Failure: an allocation failure sets the buffer's oom flag (jsonbuf.h),
 * which the caller checks once before sending. */
#ifndef RELATIOND_RESP_H
#define RELATIOND_RESP_H

#include "lib/jsonbuf.h"

#include <stddef.h>
#include <stdint.h>

/* A header: c ('*' an array, '$' a bulk string) and n, then CRLF. */
void resp_count(JsonBuf *b, char c, size_t n);
/* A bulk string of n bytes (any bytes). */
void resp_arg(JsonBuf *b, const char *s, size_t n);
void resp_cstr(JsonBuf *b, const char *s);
/* A decimal integer as a bulk string. */
void resp_int(JsonBuf *b, int64_t v);

/* The length of the RESP command at p (an array of bulk strings), 0 when
 * it is not one within len bytes. */
size_t resp_command_len(const char *p, size_t len);

#endif
