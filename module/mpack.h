/* mpack.h — MessagePack written byte for byte as Redis's Lua cmsgpack.pack
 * writes it (deps/lua/src/lua_cmsgpack.c): the smallest integer form, str8
 * from 32 bytes, arrays, false; a double that is no integer as float 32
 * when exact, else float 64.
 *
 * Ownership: the buffer's data is the caller's to mpack_free. Threads: any.
 * Failure: an allocation that fails sets oom; the rest is then dropped. */
#ifndef RELATIOND_MODULE_MPACK_H
#define RELATIOND_MODULE_MPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    unsigned char *data;
    size_t len, cap;
    bool oom;
} Mpack;

void mpack_array(Mpack *m, size_t n);
void mpack_str(Mpack *m, const char *s, size_t len);
/* One str of the bytes of a then of b. */
void mpack_str2(Mpack *m, const char *a, size_t alen, const char *b, size_t blen);
/* Bytes already MessagePack appended as they are. */
void mpack_raw(Mpack *m, const void *p, size_t n);
void mpack_false(Mpack *m);
/* A Lua number: an integer when it is one, else a float. */
void mpack_number(Mpack *m, double v);
void mpack_free(Mpack *m);

#endif
