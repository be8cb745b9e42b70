/* engine.h — applies batches of events to Redis, one atomic function call
 * per side of an edge, pipelined; renders the triggers from what the calls
 * return; reads statistics; clears delivered triggers from the outboxes.
 *
 * A batch can be sent before the previous ones are read (engine_send, then
 * engine_recv, in the same order): Redis applies it while the caller renders
 * and publishes the previous one. */
#ifndef RELATIOND_ENGINE_H
#define RELATIOND_ENGINE_H

#include "config/config.h"
#include "handlers/apply_status.h"
#include "handlers/event.h"
#include "handlers/trigger.h"

#include <hiredis/hiredis.h>

#include <stdbool.h>
#include <stddef.h>

typedef struct Engine Engine;

/* Batches sent and not read yet, at most. */
#define ENGINE_MAX_PENDING 3

/* Events of other batches (engine_recv). */
typedef struct {
    const Event *events;
    size_t n;
} EventSpan;

typedef struct {
    ApplyStatus status;        /* applied if a side applied it, else duplicate, else stale */
    char error[EVENT_ERR_MAX]; /* APPLY_INVALID: why the engine refused the event */
    size_t first, ntriggers;   /* its triggers in the TriggerSet: direct side first */
    unsigned char outbox;      /* bit s: side s holds an outbox entry to clear once delivered */
} ApplyResult;

/* Connects to Redis and loads the function library. cfg is borrowed: it
 * must outlive the engine or be replaced with engine_set_config. */
Engine *engine_new(const Config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The same without connecting: the first call connects (the daemon starts
 * while Redis is down). NULL when out of memory. */
Engine *engine_create(const Config *cfg) __attribute__((warn_unused_result));
void engine_free(Engine *e);
/* Connects (when not connected) and loads the function library, waiting for
 * the replies. False with the reason in err. */
bool engine_connect(Engine *e, char *err, size_t errlen) __attribute__((warn_unused_result));
/* A reloaded configuration: its library is loaded before the next batch.
 * Events parsed with the previous one may still be delivered (their
 * relation is found by name). False when out of memory (the previous
 * configuration stays). */
bool engine_set_config(Engine *e, const Config *cfg) __attribute__((warn_unused_result));

/* Sends the calls of n events (written, not awaited). events stay the
 * caller's until engine_recv or engine_cancel. */
bool engine_send(Engine *e, const Event *events, size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Reads the replies of the batch sent last; results[i] belongs to events[i];
 * the triggers are appended to out (reset by the caller). A duplicate of an
 * event earlier in the batch, or of one in the nprev spans of prev (batches
 * whose triggers are being delivered), yields no trigger.
 * False on a Redis failure (connection lost, Redis busy, out of memory): then
 * nothing is known of the batch, and applying it again is safe. */
bool engine_recv(Engine *e, const Event *events, size_t n, ApplyResult *results,
                 TriggerSet *out, const EventSpan *prev, int nprev, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Forgets a batch sent and not to be read (the connection goes with it when
 * its replies are still due). */
void engine_cancel(Engine *e, const Event *events, size_t n);

/* engine_send then engine_recv. */
bool engine_apply(Engine *e, const Event *events, size_t n, ApplyResult *results,
                  TriggerSet *out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* The triggers of these events were delivered: sends the removal of their
 * outbox entries; the replies are read with the next batch (or by
 * engine_sync). A failure leaves entries behind: a redelivery of the event
 * then publishes its triggers again, with the same ids. */
bool engine_delivered_async(Engine *e, const Event *events, const ApplyResult *results,
                            size_t n, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Reads the replies still due ahead of the first batch sent and not read. */
bool engine_sync(Engine *e, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Between batches: connects when not connected, then PING on every node
 * (each primary of a cluster). False with the reason in err: Redis is
 * unreachable, or refused (engine_refused). True without a PING while a
 * batch's replies are still due. */
bool engine_ping(Engine *e, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Whether the last failed connection was Redis refusing redis.url's
 * settings (WRONGPASS, NOAUTH, NOPERM on connecting, a database out of
 * range): a configuration error, not an outage. err then starts with
 * "redis.url: "; it never holds the password. */
bool engine_refused(const Engine *e);

/* One page of a side's edges (HSCAN from cursor, "0" to start, COUNT
 * count): each edge appended to out as trigger_edge_json, after sep when
 * out is not empty; *n the edges appended; next the cursor to go on with,
 * "0" when the walk is over. */
bool engine_edges(Engine *e, const RelationDef *rel, Side side, const char *profile,
                  const char *cursor, int count, const char *sep, JsonBuf *out, int *n,
                  char next[32], char *err, size_t errlen) __attribute__((warn_unused_result));

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

/* The share (0..1) of the relation's side keys the walk under way (or the
 * last) of engine_sides or engine_segment has passed, for a progress bar. */
double engine_walk_share(const Engine *e);

/* One side's statistics from its edges (HSCAN), the stored ones, and
 * whether each top holds exactly the edges' values (ZSCORE, ZCARD). */
typedef struct {
    SideStats stored, edges;
    bool top_ok[CONFIG_MAX_PROPERTIES];
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

/* Whether no key at all starts with redis.key_prefix (a mistyped prefix);
 * false when the keyspace is too large to tell cheaply. */
bool engine_prefix_unused(Engine *e, bool *unused, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* One side's statistics into st; the tops' ids point into *keep, the reply
 * the caller frees (freeReplyObject) when done with st. */
bool engine_side_stats(Engine *e, const RelationDef *rel, Side side, const char *profile,
                       SideStats *st, redisReply **keep, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* One side's statistics as a JSON text (caller frees). */
bool engine_stats(Engine *e, const RelationDef *rel, Side side, const char *profile, char **json,
                  char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
