/* grow.h — the one growable-array helper: room for n elements of any size,
 * the byte count checked against overflow, the array unchanged on failure.
 *
 * Ownership: the array is the caller's (malloc'ed or NULL; freed with free).
 * No state, thread-safe as far as the caller's array is. Failure (a size
 * that does not fit in size_t, or realloc failing) returns false and leaves
 * the array and its capacity as they were: nothing the caller holds is lost.
 *
 * The macros take the array's lvalue (a T * variable or member) and
 * pass its address as void *: the helper reads and writes the pointer with
 * memcpy (every object pointer has one representation on the platforms
 * relationd builds for). */
#ifndef RELATIOND_GROW_H
#define RELATIOND_GROW_H

#include <stdbool.h>
#include <stddef.h>

/* *array (a T *, at address array_ptr) reallocated to exactly n elements of
 * elem bytes (n > 0). */
bool grow_exact(void *array_ptr, size_t n, size_t elem) __attribute__((warn_unused_result));

/* Room for at least need elements in *array (capacity *cap elements): when
 * need > *cap, the capacity doubles, starting from *cap or else min_cap
 * (0: need), until it holds need, and *cap is set to it. */
bool grow_reserve(void *array_ptr, size_t *cap, size_t need, size_t elem, size_t min_cap)
    __attribute__((warn_unused_result));

#define GROW_EXACT(array, n) grow_exact(&(array), (n), sizeof *(array))
#define GROW_RESERVE(array, cap, need, min_cap) \
    grow_reserve(&(array), &(cap), (need), sizeof *(array), (min_cap))

#endif
