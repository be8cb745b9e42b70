/* base64.h — standard base64 (RFC 4648, section 4: the alphabet with '+'
 * and '/', '=' padding), for the webhook secrets (`whsec_...`) and
 * signatures. Pure functions on the caller's buffers; no allocation, no
 * state, any thread. Decoding is strict: a length not a multiple of 4, a
 * character outside the alphabet, padding anywhere but at the end or
 * non-zero bits left over in the last character are refused. */
#ifndef RELATIOND_BASE64_H
#define RELATIOND_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes of the text of n bytes, without the NUL. */
#define BASE64_LEN(n) (((n) + 2) / 3 * 4)

/* Writes the text of data[0..n) and a NUL to out (BASE64_LEN(n) + 1
 * bytes); returns its length. */
size_t base64_encode(const void *data, size_t n, char *out);

/* Decodes text[0..len) into out (at most cap bytes); *n the bytes written.
 * False when the text is not strict base64 or does not fit. */
bool base64_decode(const char *text, size_t len, unsigned char *out, size_t cap, size_t *n)
    __attribute__((warn_unused_result));

#endif
