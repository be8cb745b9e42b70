/* fixed.c — JSON numbers to fixed-point (fixed.h).
 *
 * A number is rounded on its decimal text: the digits d0 d1 ... as written
 * and the exponent give the value times 10^6 as the digits before position k
 * (the scaled integer part, zeros past the last digit) and the digit at k
 * (>= 5: one more, half away from zero). Nothing goes through a double, so
 * 0.49999949999999999 is 0.499999 and not 0.5; the range is checked on the
 * rounded value. The text is found by lib/jsontext.h: event weights
 * (handlers/event.c) and configuration thresholds (config/config.c). */
#include "lib/fixed.h"

#define EXP_CAP 1000000000000000000LL /* |exponent| beyond: the same verdict */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool fixed_from_text(const char *s, size_t n, int64_t limit, int64_t *out)
{
    const char *p = s, *end = s + n;
    bool neg = p < end && *p == '-';
    p += neg;
    const char *ip = p; /* integer part */
    while (p < end && is_digit(*p))
        p++;
    int64_t nint = p - ip, nfrac = 0;
    if (nint == 0 || (*ip == '0' && nint > 1))
        return false;
    const char *fp = p; /* fraction */
    if (p < end && *p == '.') {
        for (fp = ++p; p < end && is_digit(*p); p++)
            nfrac++;
        if (nfrac == 0)
            return false;
    }
    int64_t exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        bool eneg = false;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        const char *es = p;
        for (; p < end && is_digit(*p); p++)
            exp = exp <= (EXP_CAP - (*p - '0')) / 10 ? exp * 10 + (*p - '0') : EXP_CAP;
        if (p == es)
            return false;
        if (eneg)
            exp = -exp;
    }
    if (p != end)
        return false;

#define DIGIT(i) ((i) < nint ? ip[(i)] - '0' : fp[(i) - nint] - '0')
    int64_t ndig = nint + nfrac, z = 0;
    while (z < ndig && DIGIT(z) == 0)
        z++;
    int64_t max = limit * FIXED_SCALE, r = 0;
    if (z < ndig) {
        int64_t k = nint + exp + 6; /* digits before the scaled point */
        for (int64_t i = z; i < k; i++) {
            int d = i < ndig ? DIGIT(i) : 0;
            if (r > (max - d) / 10)
                return false; /* r grows from here on: out of range */
            r = r * 10 + d;
        }
        r += k >= 0 && k < ndig && DIGIT(k) >= 5;
        if (r > max)
            return false;
    }
#undef DIGIT
    *out = neg ? -r : r;
    return true;
}
