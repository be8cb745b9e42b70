/* fixed.c — JSON numbers to fixed-point.
 *
 * jansson hands a real over as a double, which is not the decimal the sender
 * wrote: 0.0019985 is stored as 0.00199849999…, and rounding the double would
 * round that half down. The shortest decimal that reads back as the same
 * double is the one the sender wrote (whenever it had at most 15 significant
 * digits), so that decimal is rounded, in integer arithmetic. */
#include "handlers/fixed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* d as digits x 10^exp10 with the fewest digits (15..17) that read back as d. */
static void shortest_decimal(double d, int64_t *digits, int *exp10)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d || prec == 17)
            break;
    }
    /* buf: [-]D.DDDDe[+-]XX */
    int64_t v = 0;
    int ndigits = 0;
    const char *p = buf + (buf[0] == '-');
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p - '0');
            ndigits++;
        }
    *digits = v;
    *exp10 = atoi(p + 1) - (ndigits - 1);
}

static int64_t round_scaled(double d)
{
    int64_t digits, pow10 = 1;
    int exp10;
    shortest_decimal(fabs(d), &digits, &exp10);
    int shift = exp10 + 6; /* value x 10^6 = digits x 10^shift */
    int64_t r;
    if (shift >= 0) {
        for (int i = 0; i < shift; i++)
            digits *= 10; /* |d| <= limit keeps this within int64 */
        r = digits;
    } else if (shift < -18) {
        r = 0; /* digits < 10^17: below half of 10^-shift */
    } else {
        for (int i = 0; i < -shift; i++)
            pow10 *= 10;
        r = digits / pow10 + (digits % pow10 >= pow10 - digits % pow10); /* half away from zero */
    }
    return d < 0 ? -r : r;
}

bool fixed_from_json(const json_t *v, int64_t limit, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i > limit || i < -limit)
            return false;
        *out = (int64_t)i * FIXED_SCALE;
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || fabs(d) > (double)limit)
            return false;
        *out = round_scaled(d);
        return true;
    }
    return false;
}
