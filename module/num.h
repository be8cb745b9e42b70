/* num.h — numbers as the Lua function library has them (handlers/apply.lua
 * runs on Lua 5.1, whose numbers are doubles): a string read as Lua's
 * tonumber reads it (strtod), a double written as string.format('%d')
 * writes it, and the strict integer strings the engine sends.
 *
 * Pure functions on caller-owned buffers; no allocation; any thread. */
#ifndef RELATIOND_MODULE_NUM_H
#define RELATIOND_MODULE_NUM_H

#include <stdbool.h>
#include <stddef.h>

/* Lua 5.1's conversion of a string to a number (leading and trailing
 * spaces, decimal or 0x hexadecimal): false when it is not one. */
bool num_lua(const char *s, size_t len, double *out);
/* An integer the engine wrote: -?[0-9]{1,19}, as a double (rounded to the
 * nearest, as Lua reads it). */
bool num_int(const char *s, size_t len, double *out);
/* A small index: [1-9][0-9]* up to max. */
bool num_index(const char *s, size_t len, int max, int *out);
/* string.format('%d', v) of Lua 5.1 (the double cast to long); buf of 24
 * bytes at least; returns the length. */
int num_format(double v, char *buf);
/* v in decimal into buf (24 bytes at least); returns the length. */
int num_ltoa(long long v, char *buf);
/* -?[0-9]{1,15}: read exactly (what strtod gives for it, without its cost);
 * false for anything else (then strtod decides). */
bool num_small_int(const char *s, size_t len, double *out);

#endif
