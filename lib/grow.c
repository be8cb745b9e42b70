/* grow.c — see grow.h. */
#include "lib/grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool grow_exact(void *array_ptr, size_t n, size_t elem)
{
    if (n == 0 || elem == 0 || n > SIZE_MAX / elem)
        return false;
    void *old;
    memcpy(&old, array_ptr, sizeof old);
    void *fresh = realloc(old, n * elem);
    if (!fresh)
        return false;
    memcpy(array_ptr, &fresh, sizeof fresh);
    return true;
}

bool grow_reserve(void *array_ptr, size_t *cap, size_t need, size_t elem, size_t min_cap)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : min_cap ? min_cap : need;
    while (c < need)
        c = c > SIZE_MAX / 2 ? need : 2 * c;
    if (elem && c > SIZE_MAX / elem)
        c = need; /* grow_exact says whether need itself fits */
    if (!grow_exact(array_ptr, c, elem))
        return false;
    *cap = c;
    return true;
}
