/* msgpack.h — a reader for the MessagePack the apply script returns
 * (cmsgpack.pack): nil, booleans, integers, doubles, strings, arrays, maps. */
#ifndef RELATIOND_MSGPACK_H
#define RELATIOND_MSGPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { MP_NIL, MP_BOOL, MP_INT, MP_DOUBLE, MP_STR, MP_ARRAY, MP_MAP } MpType;

typedef struct {
    MpType type;
    bool b;
    int64_t i;
    double d;
    const char *s; /* MP_STR: into the buffer, not NUL-terminated */
    size_t len;    /* MP_STR: bytes; MP_ARRAY/MP_MAP: elements (pairs for a map) */
} MpValue;

typedef struct {
    const unsigned char *p, *end;
} MpReader;

void mp_reader_init(MpReader *r, const void *data, size_t len);
/* Reads one value's head (an array's or a map's elements follow it). False
 * when the input ends early or holds a type not listed above. */
bool mp_next(MpReader *r, MpValue *v) __attribute__((warn_unused_result));
/* Skips one whole value, elements included. */
bool mp_skip(MpReader *r) __attribute__((warn_unused_result));
/* An integer, or a double that holds one exactly. */
bool mp_integer(const MpValue *v, int64_t *out);

#endif
