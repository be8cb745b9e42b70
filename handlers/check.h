/* check.h — the checks of stored data: a side's statistics against its
 * edges (verify), a side's statistics and tops written again from its edges
 * (rebuild, in steps), a side converted from layout 1 (migrate), and
 * whether redis.key_prefix is used at all.
 *
 * Ownership: results go into the caller's structs. Threads: the engine's
 * (engine.h). Failure: false with the reason in err; a check that finds a
 * difference is not a failure (it is in the result). */
#ifndef RELATIOND_CHECK_H
#define RELATIOND_CHECK_H

#include "config/config.h"
#include "handlers/engine.h"
#include "handlers/trigger.h"

#include <stdbool.h>

/* One side's statistics from its edges (HSCAN), the stored ones, and
 * whether each top is what the edges make it. A layout-1 side (one with
 * '#last'): every edge with the property set at its value, nothing else
 * (ZSCORE, ZCARD). A layout-2 side: no sorted set while count <= limit L,
 * else the first z entries of the top's order at their values, min(L,
 * p:count) <= z <= 2L; and no statistic stored as "0" (zero[]: count,
 * then <p>:count and <p>:total of each property). */
typedef struct {
    SideStats stored, edges;
    bool top_ok[CONFIG_MAX_PROPERTIES];
    bool layout1;
    bool zero[1 + 2 * CONFIG_MAX_PROPERTIES];
    unsigned long nedges;
} SideCheck;
bool engine_verify(Engine *e, const RelationDef *rel, Side side, const char *profile,
                   SideCheck *out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* One side's statistics and tops written again from its edges, in steps of
 * about 100 edges (one short function call each; events applied to the side
 * meanwhile are counted: apply.lua, rebuild), the new statistics and tops
 * swapped in atomically by the last step; *edges the edges read. Fails with
 * "REBUILD ..." when another rebuild of the side started meanwhile. */
bool engine_rebuild(Engine *e, const RelationDef *rel, Side side, const char *profile,
                    long long *edges, char *err, size_t errlen) __attribute__((warn_unused_result));

/* One side converted from layout 1 to layout 2 by the engine's migrate
 * (function <lib>_migrate or relationd.migrate; atomic; README "Migration
 * from layout 1"): *converted true when it was in layout 1, false when it
 * was in layout 2 already (or held nothing). */
bool engine_migrate(Engine *e, const RelationDef *rel, Side side, const char *profile,
                    bool *converted, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Whether no key at all starts with redis.key_prefix (a mistyped prefix),
 * PREFIX layout and PREFIX schema apart (no data: every connection writes
 * the schema); false when the keyspace is too large to tell cheaply. */
bool engine_prefix_unused(Engine *e, bool *unused, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
