/* fixed.h — fixed-point numbers with 6 decimals, the unit of float weights. */
#ifndef RELATIOND_FIXED_H
#define RELATIOND_FIXED_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define FIXED_SCALE 1000000LL
#define FIXED_FLOAT_MAX 1000000000LL        /* |float weight| <= 1e9 */
#define FIXED_INT_MAX 1000000000000000LL    /* |int weight| <= 1e15 */
#define FIXED_TOTAL_MAX 9007199254740991LL  /* 2^53 - 1: exact in Redis' Lua */

/* A JSON number (integer or real) times 10^6, rounded half away from zero.
 * False when not a number or when |value| > limit (in natural units). */
bool fixed_from_json(const json_t *v, int64_t limit, int64_t *out)
    __attribute__((warn_unused_result));

#endif
