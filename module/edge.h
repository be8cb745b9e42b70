/* edge.h — a stored edge's value (README, "Redis key layout": the JSON
 * {"version": "…" or null, "weights": {"p": number or true/false, …}}) read
 * as the Lua library reads it (cjson.decode, then weights_of): per property
 * its value (a bool as 1 or 0) or unset, and the version when it is a
 * string.
 *
 * Pure: no allocation (the version is decoded into the caller's buffer of
 * at least len bytes); any thread. Failure: false when the value is not
 * JSON of that shape (foreign data: the call fails as a Redis error). */
#ifndef RELATIOND_MODULE_EDGE_H
#define RELATIOND_MODULE_EDGE_H

#include "module/conf.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    double v[CONF_MAX_PROPS];
    bool set[CONF_MAX_PROPS];
} Weights;

bool edge_parse(const ConfRel *r, const char *raw, size_t len, Weights *w, char *ver,
                size_t *verlen, bool *hasver);

#endif
