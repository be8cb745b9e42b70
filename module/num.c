/* num.c — numbers as Lua 5.1 reads and writes them (num.h). */
#include "module/num.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool num_small_int(const char *s, size_t len, double *out)
{
    size_t i = len > 0 && s[0] == '-';
    if (len == i || len - i > 15)
        return false;
    long long v = 0;
    for (size_t k = i; k < len; k++) {
        if (s[k] < '0' || s[k] > '9')
            return false;
        v = v * 10 + (s[k] - '0');
    }
    *out = i ? -(double)v : (double)v;
    return true;
}

int num_ltoa(long long v, char *buf)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char tmp[24];
    int n = (int)sizeof tmp, len = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) { /* two digits a division */
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        tmp[--n] = pairs[d + 1];
        tmp[--n] = pairs[d];
    }
    if (u >= 10) {
        unsigned d = (unsigned)u * 2;
        tmp[--n] = pairs[d + 1];
        tmp[--n] = pairs[d];
    } else {
        tmp[--n] = (char)('0' + u);
    }
    if (v < 0)
        buf[len++] = '-';
    memcpy(buf + len, tmp + n, sizeof tmp - (size_t)n);
    len += (int)sizeof tmp - n;
    buf[len] = '\0';
    return len;
}

bool num_lua(const char *s, size_t len, double *out)
{
    char buf[128];
    if (num_small_int(s, len, out))
        return true;
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len))
        return false; /* Lua stops at the NUL: the rest is not a number */
    char *end;
    double v = strtod(buf, &end);
    if (end == buf)
        return false;
    if (*end == 'x' || *end == 'X') /* Lua 5.1: hexadecimal through strtoul */
        v = (double)strtoul(buf, &end, 16);
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0')
        return false;
    *out = v;
    return true;
}

bool num_int(const char *s, size_t len, double *out)
{
    size_t i = len > 0 && s[0] == '-';
    if (len == i || len - i > 19)
        return false;
    for (size_t k = i; k < len; k++)
        if (s[k] < '0' || s[k] > '9')
            return false;
    if (num_small_int(s, len, out))
        return true;
    char buf[24];
    memcpy(buf, s, len);
    buf[len] = '\0';
    *out = strtod(buf, NULL);
    return true;
}

bool num_index(const char *s, size_t len, int max, int *out)
{
    if (len == 0 || len > 9 || s[0] < '1' || s[0] > '9')
        return false;
    int v = 0;
    for (size_t k = 0; k < len; k++) {
        if (s[k] < '0' || s[k] > '9')
            return false;
        v = v * 10 + (s[k] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

int num_format(double v, char *buf)
{
    long n;
    /* out of long's range the cast is undefined in C; x86 (and so Lua
     * there) gives LONG_MIN */
    if (v != v || v >= 9223372036854775808.0 || v < -9223372036854775808.0)
        n = (long)(-9223372036854775807L - 1);
    else
        n = (long)v;
    return num_ltoa(n, buf);
}
