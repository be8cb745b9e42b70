/* walk.h — walks of the keyspace in pages: SCAN of a relation's side keys
 * (every primary of a cluster) and HSCAN of a side's edges, in constant
 * memory; the hooks' backlog streams (PREFIX{hook:NAME}).
 *
 * Ownership: each profile passed to a callback lives until it returns.
 * Threads: the engine's (engine.h). Failure: false with the reason in err;
 * a callback's false stops a walk without failing it. */
#ifndef RELATIONDWALK_H
#define RELATIONDWALK_H

#include "config/config.h"
#include "handlers/engine.h"
#include "handlers/trigger.h"
#include "lib/jsonbuf.h"

#include <stdbool.h>
#include <stddef.h>

/* One edge of an HSCAN page of a side. */
typedef struct {
    const char *cp; /* the counterpart, cplen bytes (into the page's reply) */
    size_t cplen;
    EdgeWeights w;
    char version[24];
    bool has_version;
} PageEdge;

/* Every profile of a relation's side with at least one edge the segment
 * matches, each passed to found (a false return stops the walk): a SCAN of
 * the side keys (every primary of a cluster), then HSCAN of each side's
 * edges until one matches. Constant memory; *edges counts the edges read. */
struct Segment;
bool engine_segment(Engine *e, const RelationDef *rel, Side side, const struct Segment *seg,
                    bool (*found)(const char *profile, size_t len, void *ctx), void *ctx,
                    unsigned long *edges, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Every profile with a side of rel (SCAN; every primary of a cluster),
 * passed to each (false stops the walk). Constant memory. */
bool engine_sides(Engine *e, const RelationDef *rel, Side side,
                  bool (*each)(const char *profile, void *ctx), void *ctx, char *err,
                  size_t errlen) __attribute__((warn_unused_result));

/* The same for the side keys ending in :suffix of the Redis type `type`
 * ("seen", "zset": layout 1's duplicate windows, for the migration);
 * engine_sides is ("side", "hash"). */
bool engine_sides_keyed(Engine *e, const RelationDef *rel, Side side, const char *suffix,
                        const char *type, bool (*each)(const char *profile, void *ctx),
                        void *ctx, char *err, size_t errlen) __attribute__((warn_unused_result));

/* One page of a SCAN: its keys (an array reply of strings), found on the
 * node of slot (ROUTER_ANY off a cluster). True to go on; false stops the
 * walk, a failure when *ok was set false (with err). */
typedef bool (*WalkPageFn)(Engine *e, int slot, const struct redisReply *keys, void *ctx,
                           bool *ok, char *err, size_t errlen);

/* Every key matching the SCAN MATCH glob pattern (of the Redis type `type`,
 * when not NULL), page by page, on every primary of a cluster: connects
 * first (no reply may be due); a callback may send commands of its own.
 * Constant memory. Keys that move (a resharding) during the walk may be
 * missed or seen twice. */
bool engine_walk_keys(Engine *e, const JsonBuf *pattern, const char *type, WalkPageFn each,
                      void *ctx, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Every hook's backlog stream in Redis, PREFIX{hook:NAME} (of the type
 * stream), whether the configuration has the hook or not: each NAME passed
 * to each with its backlog in triggers (engine_hook_backlog); false from
 * each stops the walk.
 * Constant memory. */
bool engine_hook_streams(Engine *e, bool (*each)(const char *hook, long long len, void *ctx),
                         void *ctx, char *err, size_t errlen) __attribute__((warn_unused_result));

/* The share (0..1) of the relation's side keys the walk under way (or the
 * last) of engine_sides(_keyed) or engine_segment has passed, for a progress bar. */
double engine_walk_share(const Engine *e);

#endif
