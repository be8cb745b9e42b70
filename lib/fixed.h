/* fixed.h — fixed-point numbers with 6 decimals, the unit of float weights.
 * Pure functions, no allocation, any thread. */
#ifndef RELATIOND_FIXED_H
#define RELATIOND_FIXED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FIXED_SCALE 1000000LL
#define FIXED_FLOAT_MAX 1000000000LL        /* |float weight| <= 1e9 */
#define FIXED_INT_MAX 1000000000000000LL    /* |int weight| <= 1e15 */
#define FIXED_TOTAL_MAX 9007199254740991LL  /* 2^53 - 1: exact in Redis' Lua */

/* The JSON number literal s (n bytes, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?)
 * times 10^6, rounded half away from zero on its decimal digits as written,
 * all of them (any count, any exponent), in integer arithmetic. False when s
 * is not such a literal or when the ROUNDED value leaves -limit..limit
 * (natural units; limit <= FIXED_TOTAL_MAX / FIXED_SCALE). Never -0. */
bool fixed_from_text(const char *s, size_t n, int64_t limit, int64_t *out)
    __attribute__((warn_unused_result));

#endif
