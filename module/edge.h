/* edge.h — a stored edge's value. Layout 2 (README, "Redis key layout"):
 * the packed value `[<version>;]<v1>,<v2>,…`, one position per slot of the
 * relation (ConfProp.slot), empty when unset, else a decimal integer in
 * units (a bool 1 or 0), trailing empty positions left out. Layout 1 (read
 * only by the migration): the JSON {"version": "…" or null, "weights":
 * {"p": number or true/false, …}}, read as the Lua library read it
 * (cjson.decode, then weights_of).
 * Either way: per property its value (a bool as 1 or 0) or unset, and the
 * version when there is one.
 *
 * Pure: no allocation (a JSON version is decoded into the caller's buffer
 * of at least len bytes; a packed one points into raw); any thread.
 * Failure: false when the value is not of that shape (foreign data: the call
 * fails as a Redis error). */
#ifndef RELATIOND_MODULE_EDGE_H
#define RELATIOND_MODULE_EDGE_H

#include "module/conf.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    double v[CONF_MAX_PROPS];
    bool set[CONF_MAX_PROPS];
} Weights;

/* A layout-1 (JSON) value. */
bool edge_parse_json(const ConfRel *r, const char *raw, size_t len, Weights *w, char *ver,
                     size_t *verlen, bool *hasver);

/* A packed value: *ver points into raw (NULL when none). */
bool edge_unpack(const ConfRel *r, const char *raw, size_t len, Weights *w, const char **ver,
                 size_t *verlen);

/* The packed value's room for r: an upper bound of edge_pack's length for
 * a version of verlen bytes. */
size_t edge_pack_cap(const ConfRel *r, size_t verlen);
/* w (and the version, when ver is not NULL) packed into out (edge_pack_cap
 * bytes); returns the length. */
size_t edge_pack(const ConfRel *r, const Weights *w, const char *ver, size_t verlen, char *out);

/* One property's value in a packed value (its slot's position): false
 * when unset or not an integer. Cheaper than edge_unpack for the tops. */
bool edge_slot(const char *raw, size_t len, int slot, double *v);

#endif
