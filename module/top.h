/* top.h — a side's bounded tops (layout 2, README "Redis key layout"): for
 * a property p with a top (order desc|asc, limit L), `P{R:S:X}:top:<p>`
 * exists only while the side has more than L edges, and then holds a
 * prefix of the order (desc: score then member descending, ZREVRANGE's;
 * asc: ZRANGE's; member bytes compared as memcmp, a shorter one first on a
 * tie) of z edges, min(L, p:count) <= z <= 2L. A side with at most L edges
 * has no top key: its top is computed from its edges.
 *
 * tops_after is called by an apply that changed edge cp (attach, change or
 * detach), after the side's hash holds the edge's new value: it makes each
 * top key what the layout says (ZADD/ZREM of the edge, the members past 2L
 * removed, a refill or creation from the side's edges, a DEL when the side
 * falls to L edges), and writes each top's first L into the record m (the
 * flat member, score list of ZRANGE WITHSCORES, scores as Redis replies),
 * or, for a top of at most L edges after the event on a side with another
 * edge, false, the record then ending with the side's edges (tops_edges).
 *
 * Threads: Redis's main thread. Failure: false on a Redis error (a key of
 * another type, a statistic that is not a number), run's message. */
#ifndef RELATIOND_MODULE_TOP_H
#define RELATIOND_MODULE_TOP_H

#include "module/args.h"
#include "module/edge.h"
#include "module/store.h"

/* A side's edges (counterpart, packed value: the context's pool), read by
 * the caller when it scanned the side's hash anyway (apply's prepare of a
 * small side), else by tops_after when it needs them. */
typedef struct {
    Run *R;
    ZItem *e; /* s/len: the counterpart (score unused) */
    const char **val;
    size_t *vlen;
    size_t n, cap;
    bool oom, read; /* read: the caller's scan; in tops_after, the edges after */
    bool got;       /* tops_after's: the edges before read */
} TopEdges;

/* One edge added (copied into the pool). */
void top_edges_add(TopEdges *E, const char *cp, size_t cplen, const char *v, size_t vl);

typedef struct {
    const ConfRel *C;
    RedisModuleString *k_side;
    RedisModuleString **k_tops; /* one per top, in property order */
    Str cp;                     /* the changed edge's counterpart */
    double edges_before, edges_after;
    const Opt *before;          /* the statistics before (ConfRel.hm order) */
    const Weights *old, *neww;  /* NULL: no edge before / after */
    Opt packed;                 /* the edge's new packed value (set when neww) */
    TopEdges *edges;            /* the edges before the event when read, else NULL */
} TopChange;

/* Whether the record carries the side's edges (apply.lua, commit): some
 * top has at most L edges after the event (its entry in the record is
 * false: the daemon orders the edges), on a side with an edge other than
 * the event's (else each top is that edge alone, or empty, written out). */
bool tops_edges(const TopChange *t);

/* The record's tops after the event into m, then (tops_edges) its edges:
 * flat '@' counterpart, packed value, before the event, in the key's scan
 * order (HSCAN's: the function's). */
bool tops_after(Run *R, const TopChange *t, Mpack *m);

/* A full top key cut to the first 2L of its order (ZREMRANGEBYRANK: the
 * migration's and the rebuild's). */
bool tops_cut(Run *R, RedisModuleString *key, int order, long long L);

#endif
