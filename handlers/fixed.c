/* fixed.c — JSON numbers to fixed-point. */
#include "handlers/fixed.h"

#include <math.h>

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
        *out = (int64_t)llround(d * (double)FIXED_SCALE);
        return true;
    }
    return false;
}
