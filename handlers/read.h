/* read.h — reads of one side, returned as structs for the callers to
 * render (trigger_stats_json, read_edge_json): its statistics and tops in
 * one snapshot (MULTI/EXEC), and its edges a page at a time (HSCAN), in
 * either key layout (edge.h decodes an edge by its first byte).
 *
 * Ownership: strings in a result point into what it keeps (freed by the
 * caller: stats_keep_free, edge_page_free). Threads: the
 * engine's (engine.h). Failure: false with the reason in err, nothing to
 * free; a field that is not an edge of ours is skipped with a warning. */
#ifndef RELATIOND_READ_H
#define RELATIOND_READ_H

#include "config/config.h"
#include "handlers/edge.h"
#include "handlers/engine.h"
#include "lib/jsonbuf.h"
#include "handlers/trigger.h"
#include "handlers/walk.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

/* What the tops' ids of a SideStats point into: the snapshot's reply,
 * and the ids of tops computed from the edges. */
typedef struct StatsKeep {
    redisReply *reply;
    char *ids;
} StatsKeep;
void stats_keep_free(StatsKeep *keep);

/* One side's statistics into st, read in one snapshot (MULTI/EXEC), both
 * layouts: a statistic absent is 0; a top is the first limit members of
 * its sorted set when it exists, else, when the side has at most limit
 * edges (a layout-2 side keeps no set then: README "Redis key layout"),
 * computed from the side's edges, in the same snapshot; a larger side
 * without a set (a top not rebuilt yet) has an empty top. The tops' ids
 * point into *keep, freed by the caller (stats_keep_free) when done with
 * st. */
bool engine_side_stats(Engine *e, const RelationDef *rel, Side side, const char *profile,
                       SideStats *st, StatsKeep *keep, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The slots of rel's properties (edge.h) as the engine read them from
 * PREFIX schema on this connection (schema.h: every connection reads each
 * relation's list first, connecting when not connected); known false for a
 * relation not in the engine's configuration. */
bool engine_edge_slots(Engine *e, const RelationDef *rel, EdgeSlots *slots, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

/* One HSCAN page of a side's edges: the edges, and the reply their
 * counterparts point into (released by the next read into the page). */
typedef struct {
    PageEdge *edges;
    size_t n, cap;
    redisReply *reply;
} EdgePage;

/* One page of a side's edges (HSCAN from cursor, "0" to start, COUNT
 * count) into page (its previous edges released); next the cursor to go on
 * with, "0" when the walk is over. */
bool engine_edge_page(Engine *e, const RelationDef *rel, Side side, const char *profile,
                      const char *cursor, int count, EdgePage *page, char next[32], char *err,
                      size_t errlen) __attribute__((warn_unused_result));
void edge_page_free(EdgePage *page);

/* An edge as the read side prints it (trigger_edge_json), appended to b. */
void read_edge_json(JsonBuf *b, const RelationDef *rel, Side side, const PageEdge *pe);

#endif
