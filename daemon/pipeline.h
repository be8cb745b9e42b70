/* pipeline.h — batches of messages from a source: parse, apply in one Redis
 * pipeline, render the triggers and append them to the backlog of each hook
 * whose filter passes them (handlers/backlog.h; the hooks' deliverers,
 * daemon/hook_deliver.h, send them on), clear them from the outboxes, then
 * have the source acknowledge them. Each source has its own pipeline (its
 * own Redis connection), used by the source's thread only.
 *
 * The pipeline owns the ring of batches in flight (its bookkeeping: which
 * slot is filled, how many in flight, the oldest, is lib/ring.h's, shared
 * with relationctl apply); a source is transport
 * code behind a PipelineSource (fill a batch, hand over its messages,
 * dead-letter the refused ones, acknowledge it, release it). The stages of
 * several batches overlap: while Redis applies batch N+1, the source fills
 * batch N+2 and it is parsed; earlier batches wait for their
 * acknowledgement. One turn (pipeline_step):
 *
 *     fill the current batch (N+2)        the source takes what is ready
 *     parse it
 *     read N+1's replies                  results, triggers rendered
 *     hold N+2                            paused while the keyspace is lost
 *                                         or a hook's backlog is at its
 *                                         max_backlog
 *     write N+1's appends, N+2's calls    in one write: N+1's triggers into
 *                                         the hooks' backlogs, confirmed at
 *                                         once; N+2 applied meanwhile
 *     complete the oldest (ring full)     outboxes cleared, dead letters
 *                                         sent, acked
 *
 * With nothing new, N+1 is read and appended at once and the oldest
 * completed; when a hold may wait or read Redis, or the appends fail, they
 * go on their own, before N+2's calls.
 *
 * Batches go through the stages in the order they were started, at most
 * PIPELINE_DEPTH at a time, and are acknowledged in that order, each only
 * after Redis took its triggers into the backlogs and its dead letters were
 * delivered; an edge's later event never overtakes an earlier one (one
 * Redis connection). Any failure falls back to doing the batch's remaining
 * work one step after the other, waiting out outages with back-off;
 * applying again is safe (a duplicate returns its undelivered triggers).
 * Only past the drain deadline (or when the source's acknowledgement
 * fails) is a batch left unacknowledged: the turn says so, and the source
 * then finishes the rest unacknowledged (pipeline_drop), since a later
 * acknowledgement would cover it. */
#ifndef RELATIOND_PIPELINE_H
#define RELATIOND_PIPELINE_H

#include "config/config.h"
#include "daemon/backoff.h"
#include "daemon/metrics.h"
#include "handlers/apply.h"
#include "handlers/event.h"

#include <stdbool.h>
#include <stddef.h>

/* The header that counts a message's redrives (relationctl redrive sets it,
 * one more each time; each source copies it into the dead letter when it
 * refuses the message again). Its value is the count in decimal. */
#define REDRIVES_HEADER "x-relationd-redrives"

/* Batches started and not finished, at most. */
#define PIPELINE_DEPTH CONFIG_BATCHES_IN_FLIGHT

typedef struct Pipeline Pipeline;

typedef struct {
    const char *data; /* the message body (borrowed) */
    size_t len;
    /* where it came from, for the log: a Kafka topic (borrowed), its
     * partition and the offset, or an AMQP queue, partition -1 and the
     * delivery tag */
    const char *origin;
    int partition;
    long long position;
    bool dead;         /* out: refused; reason says why */
    char reason[EVENT_ERR_MAX + 32];
} Message;

/* A source as the pipeline drives it. Its batches are PIPELINE_DEPTH slots
 * of the source's own (0 .. PIPELINE_DEPTH-1), named by the pipeline; every
 * callback runs on the source's thread, inside a pipeline call. */
typedef struct {
    SourceId id;         /* for the metrics */
    const char *who;     /* the log's component: "kafka source" */
    const char *unacked; /* the log's word for a batch not acknowledged: "uncommitted" */
    void *ctx;           /* the source (borrowed), every callback's first argument */
    /* Takes what is ready into the batch pipeline_filling names (asked
     * again after each message: a Kafka rebalance drains the ring inside
     * it), waiting for a first message only while pipeline_in_flight is 0.
     * False: the source's connection failed or must go (err says why). */
    bool (*fill)(void *ctx, char *err, size_t errlen);
    /* The batch's messages for the pipeline (*msgs, the count returned;
     * the source's until the batch is released), and in *taken all it took
     * (0: an empty batch). A message the source refused itself is not
     * among the pipeline's. */
    size_t (*messages)(void *ctx, int slot, Message **msgs, size_t *taken);
    /* Sends the batch's refused messages to the dead letters, delivered.
     * False: the drain deadline passed first. */
    bool (*dead_letter)(void *ctx, int slot);
    /* Acknowledges the batch to the source (Kafka: commits its offsets,
     * synchronously when sync; AMQP: one basic.ack). False: it failed and
     * the connection must go (the source logged why). */
    bool (*ack)(void *ctx, int slot, bool sync);
    /* The batch is done with: its messages go, it is empty again. */
    void (*release)(void *ctx, int slot);
} PipelineSource;

/* src is copied. */
Pipeline *pipeline_new(const PipelineSource *src) __attribute__((warn_unused_result));
void pipeline_free(Pipeline *p);

/* The configuration of the next batch: switches to a reloaded one, if any. */
const Config *pipeline_config(Pipeline *p);

/* The slot of the batch being filled. */
int pipeline_filling(const Pipeline *p);
/* Batches published (their triggers in the backlogs) and not yet completed. */
int pipeline_in_flight(const Pipeline *p);

typedef enum {
    PIPELINE_OK,
    PIPELINE_SOURCE_FAILED,  /* fill failed (err says why): nothing else done */
    PIPELINE_ACK_FAILED,     /* a batch was left unacknowledged: its completion passed the
                              * drain deadline, or its ack failed */
    PIPELINE_PUBLISH_FAILED  /* the current batch's applying or appending passed the drain
                              * deadline: abandoned, unacknowledged */
} PipelineStatus;

/* One turn: fills the current batch, starts it, completes (acknowledges)
 * the oldest in flight when the ring is full or nothing new came, and
 * publishes the current one (its triggers appended to the backlogs). After a failure, the source
 * drops its connection (AMQP) and calls pipeline_drop. */
PipelineStatus pipeline_step(Pipeline *p, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* One turn of a source that keeps its connection through failures (Kafka,
 * the HTTP writes): pipeline_step; after a batch abandoned past the drain
 * deadline the batches before it are finished (pipeline_drain), and after
 * any failure what is left is dropped (pipeline_drop). */
void pipeline_turn(Pipeline *p);
/* Everything in hand finished and acknowledged, in order (a rebalance, the
 * exit): the batches in flight first, then the batch in hand, without
 * filling, stopping at the first failure (then call pipeline_drop). ack is
 * called with sync. */
PipelineStatus pipeline_drain(Pipeline *p) __attribute__((warn_unused_result));
/* The batches in flight are finished (their triggers are in the backlogs:
 * their outbox entries cleared, so that a redelivery finds them delivered)
 * but not acknowledged; the current one
 * is abandoned; all are released. For a connection gone, or after a
 * failed turn. NULL: nothing. */
void pipeline_drop(Pipeline *p);

/* Connects to Redis (loading the function library; the layout key written
 * when absent, its keyspace id remembered: handlers/layout.h), waiting out
 * its outages with back-off. False only past the drain deadline. */
bool pipeline_connect(Pipeline *p) __attribute__((warn_unused_result));

/* Between batches: keeps the idle connection alive, and checks Redis
 * (redis_link_idle) so that the gauges and /readyz follow it without
 * traffic, its layout key, and the hooks' backlogs (max_backlog).
 *
 * The layout key is read again on every new Redis connection and every
 * REDIS_IDLE_CHECK_MS (idle, or between batches). Gone or holding another
 * keyspace id: Redis lost its data under the daemon. Logged once per
 * process, counted (relationd_redis_keyspace_lost_total), named in /readyz
 * (component "redis data"), and consumption paused: the next batch waits
 * before its calls are sent, neither applied nor acknowledged, until the
 * key holds a new id (relationctl layout ack, or a daemon started since);
 * a stop meanwhile leaves it unacknowledged. */
void pipeline_idle(Pipeline *p);

/* ---- Redis as one thread sees it through its engine ----
 *
 * Up, down (an outage: retried with back-off), or refused (Redis refused
 * redis.url's user, password or database: a configuration error, logged at
 * error level naming redis.url, retried every BACKOFF_REFUSED_MS). The
 * state goes to relationd_up / relationd_connection_up and /readyz. One
 * thread only (the engine's). */
/* A check while idle after this long without a batch or a check. */
#define REDIS_IDLE_CHECK_MS 1000

typedef struct {
    Engine *engine; /* borrowed */
    Backoff down;
    int64_t next_check_ms;
} RedisLink;

void redis_link_init(RedisLink *l, const char *who, Engine *e, int max_ms);
/* A connection or a batch failed with err: waits out the back-off (an
 * outage) or BACKOFF_REFUSED_MS (a refusal). False: give up the work in
 * hand (the drain deadline passed, or a stop was asked while refused). */
bool redis_link_failed(RedisLink *l, const char *err) __attribute__((warn_unused_result));
/* Redis answered. */
void redis_link_ok(RedisLink *l);
/* Without waiting: when REDIS_IDLE_CHECK_MS passed since the last answer
 * (or the retry delay since the last failure), connects if needed and
 * PINGs every node. True while Redis answers. */
bool redis_link_idle(RedisLink *l);

#endif
