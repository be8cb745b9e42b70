/* edge.h — a stored edge value of either key layout decoded (README "Redis
 * key layout"), and a side's top computed from its edges.
 *
 * An edge value whose first byte is '{' is layout 1's JSON
 * ({"version":...,"weights":{...}}); any other is layout 2's packed form
 * "[<version>;]<v1>,<v2>,...": one position per slot of the relation
 * (Pschema: its property names in slot order, comma-separated), empty for
 * an unset property, a decimal integer in units otherwise (a bool 1 or 0).
 *
 * Ownership: EdgeSlots and TopBuild are the caller's; a TopBuild owns the
 * copies of the ids it keeps (top_build_free). Threads: none of its own,
 * no shared state. Failure: false (a value that is not an edge, out of
 * memory); nothing to free on a decoding failure. */
#ifndef RELATIOND_EDGE_H
#define RELATIOND_EDGE_H

#include "config/config.h"
#include "handlers/trigger.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where each property of a relation is in a packed value: slot[i] the
 * 1-based position of property i (schema.h); known false: no slots (no
 * layout-2 edge can be read). */
typedef struct EdgeSlots {
    bool known;
    int slot[CONFIG_MAX_PROPERTIES];
} EdgeSlots;

/* A stored edge value (raw, len bytes) of rel into w, and its version as
 * decimal text into version (vcap bytes; has_version false when the edge
 * has none). False when it is not an edge of ours: not JSON of layout 1, a
 * packed value without slots, a position that is not an integer, a bool
 * other than 0 or 1, a version that is not an int64. */
bool edge_decode(const RelationDef *rel, const EdgeSlots *slots, const char *raw, size_t len,
                 EdgeWeights *w, char *version, size_t vcap, bool *has_version)
    __attribute__((warn_unused_result));

/* Whether a stored edge value is layout 1's (JSON). */
bool edge_is_layout1(const char *raw, size_t len);

/* The order of a top: < 0 when (va, a) comes before (vb, b), 0 when they
 * are the same entry. desc: value descending, then id bytes descending
 * (ZREVRANGE); asc: value ascending, then id bytes ascending (ZRANGE). */
int top_cmp(TopOrder order, int64_t va, const char *a, size_t alen, int64_t vb, const char *b,
            size_t blen);

/* The rank (id, value) takes among the n entries e of a top's order (in
 * order), the first limit kept: -1 when it ranks past them, or is one of
 * them already (the same id and value). */
int top_rank(TopOrder order, const TopEntry *e, int n, int limit, const char *id, size_t len,
             int64_t value);
/* (id, value) put at rank at (top_rank's) of the n entries e, at most limit
 * kept (the last one dropped when full: a copy the caller owns is its to
 * free first); the new n. The id is not copied. */
int top_put(TopEntry *e, int n, int limit, int at, const char *id, size_t len, int64_t value);

/* The first `limit` entries of a top's order among the entries offered
 * (the edges with the property set), in order; an entry offered twice (an
 * HSCAN may return an edge twice) is kept once. */
#define TOP_BUILD_MAX (2 * CONFIG_MAX_TOP)
typedef struct {
    TopOrder order;
    int limit; /* 1..TOP_BUILD_MAX */
    int n;
    TopEntry e[TOP_BUILD_MAX]; /* ids: copies owned by the build */
} TopBuild;

void top_build_init(TopBuild *t, TopOrder order, int limit);
/* False when out of memory (the build unchanged). */
bool top_offer(TopBuild *t, const char *id, size_t len, int64_t value)
    __attribute__((warn_unused_result));
void top_build_free(TopBuild *t);

#endif
