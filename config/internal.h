/* internal.h — private to config/: the loading context and the helpers the
 * loader (config.c), the expansion (expand.c) and the reload (reload.c)
 * share. Single-threaded use; every function reports failure by returning
 * false after writing one message "PATH: reason" into the context's err
 * (fail), never by logging. Not for use outside config/. */
#ifndef RELATIOND_CONFIG_INTERNAL_H
#define RELATIOND_CONFIG_INTERNAL_H

#include "config/config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define PATH_MAX_LEN 256

typedef struct {
    char *err;
    size_t errlen;
    const char *text, *end; /* the JSON text jansson parsed */
} Ctx;

/* Writes "PATH: message" to c->err; returns false. */
bool fail(Ctx *c, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* PATH.KEY (or KEY at the root), PATH[i]. */
void join(char *out, size_t len, const char *path, const char *key);
void join_index(char *out, size_t len, const char *path, size_t i);

/* Replaces ${NAME} in every string under node (expand.c); path names node
 * in messages ("" the root). */
bool expand_all(Ctx *c, json_t *node, const char *path);

/* *dst = a copy of src (NULL stays NULL), freeing the old *dst; false when
 * out of memory. Freeing n strings and their array. Same strings (NULL
 * equals only NULL). */
bool dup_str(char **dst, const char *src);
void free_strings(char **v, int n);
bool str_same(const char *a, const char *b);

#endif
