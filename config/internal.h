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

/* The loader's helpers (config.c), each failing as fail does. */
bool get_object(Ctx *c, const json_t *obj, const char *path, const char *key, bool required,
                json_t **out);
bool get_string(Ctx *c, const json_t *obj, const char *path, const char *key, bool required,
                const char *dflt, char **out);
bool get_int(Ctx *c, const json_t *obj, const char *path, const char *key, int64_t dflt,
             int64_t min, int64_t max, int64_t *out);
/* The keys of section in o by the table: unknown keys refused, each row
 * with a place read into base. */
bool load_rows(Ctx *c, const json_t *o, const char *path, const char *section, void *base);
/* The row of section.key (aborts when the table has none: a programming error). */
const ConfigKey *row(const char *section, const char *key);
bool check_amqp_url(Ctx *c, const char *path, const char *url);
/* PATH.tls of o: {ca, cert, key, verify}, only with a url starting with scheme. */
bool load_tls(Ctx *c, const json_t *o, const char *path, const char *url, const char *scheme,
              TlsConfig *t);
/* PATH.properties of o, librdkafka's: of the consumer (kafka) or of a
 * producer (a hook); appended to keys/values (*n of them). */
bool load_kafka_properties(Ctx *c, const json_t *o, const char *path, bool producer,
                           char ***keys, char ***values, int *n);

/* `hooks` (hooks.c): the list or the single object into cfg->hooks, after
 * the relations (a filter names them); then the published-to hook's
 * copies (hooks_url, ...). Freeing them all (cfg's hooks fields zeroed). */
bool load_hooks(Ctx *c, const json_t *root, Config *cfg);
void hooks_free(Config *cfg);
/* The copies of hook cfg->hooks[cfg->hooks_index] (hooks_url, ...), or
 * none; false when out of memory. */
bool hooks_fill_published(Config *cfg);
/* A deep copy of hooks[0..n) (NULL when out of memory or n is 0). */
HookDef *hooks_copy(const HookDef *hooks, int n);
bool hooks_same(const HookDef *a, int na, const HookDef *b, int nb);
/* Copies of src[0..n) into *dst (*ndst of them), freeing the old ones;
 * false when out of memory (then *dst holds *ndst slots, some NULL). Pairs:
 * two arrays as long (NULL and 0 when out of memory). */
bool dup_strings(char ***dst, int *ndst, char *const *src, int n);
bool dup_pairs(char ***keys, char ***values, int *n, char *const *src_keys,
               char *const *src_values, int nsrc);
bool config_tls_same(const TlsConfig *a, const TlsConfig *b);

#endif
