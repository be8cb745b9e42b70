/* helpers.h — what more than one unit test needs: a configuration parsed
 * as a cmocka group's state (and one small relation's), a MessagePack writer
 * that encodes the way cmsgpack does (Redis's Lua library, which writes the
 * outbox records: smallest integer form, fixstr/str8/str16/str32,
 * fixarray/array16/array32, doubles as float64), and the SHA-1 of bytes in
 * hex.
 *
 * Single-threaded, for tests only: the writer grows its buffer with realloc
 * and fails the running cmocka test when memory runs out; the caller frees
 * Mp.p. */
#ifndef RELATIOND_TESTS_HELPERS_H
#define RELATIOND_TESTS_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* A copy of text (the caller frees it) with every ' turned into ", so that
 * JSON can be written in C strings without escapes. */
char *dq(const char *text);

/* For cmocka_run_group_tests: *state = the configuration parsed from text
 * (the parse error printed and -1 when it does not parse); config_teardown
 * frees it. */
int config_setup(void **state, const char *text);
int config_teardown(void **state);

/* A configuration of one relation, sales: profit (float, index 0), qty
 * (int, 1), ok (bool, 2), no totals nor tops; sales_relation the relation
 * of the state config_setup parsed it into (failing the test without it). */
extern const char SALES_CONFIG[];
enum { SALES_PROFIT, SALES_QTY, SALES_OK };
const RelationDef *sales_relation(void **state);

typedef struct {
    unsigned char *p;
    size_t len, cap;
} Mp;

/* Raw bytes; one byte; v big-endian in n bytes. */
void mp_bytes(Mp *m, const void *s, size_t n);
void mp_u8(Mp *m, unsigned v);
void mp_be(Mp *m, uint64_t v, int n);

/* An array header of n elements; a string; an integer in its smallest
 * form; false; a float64. */
void w_array(Mp *m, size_t n);
void w_str(Mp *m, const char *s, size_t n);
void w_cstr(Mp *m, const char *s);
void w_int(Mp *m, int64_t v);
void w_false(Mp *m);
void w_double(Mp *m, double d);

/* The SHA-1 of data as 40 lower-case hex digits and a NUL. */
void sha1_of(const void *data, size_t len, char hex[41]);

#endif
