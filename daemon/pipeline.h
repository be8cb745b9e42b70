/* pipeline.h — batches of messages from a source: parse, apply in one Redis
 * pipeline, render and publish the triggers, await their confirms, clear
 * them from the outboxes. Each source has its own pipeline (its own Redis
 * and hooks connections).
 *
 * The stages of several batches overlap: while batch N waits for its
 * confirms, batch N+1's triggers are in flight too and batch N+2 is applied
 * by Redis:
 *
 *     b = pipeline_start(p, msgs, n);   parse; the calls written to Redis
 *     pipeline_finish(p, oldest);       N's confirms awaited, outboxes cleared;
 *                                       the source acknowledges N
 *     pipeline_publish(p, b);           N+2's results read, triggers published
 *
 * Batches go through the stages in the order they were started, at most
 * PIPELINE_DEPTH at a time; an edge's later event never overtakes an earlier one (one
 * Redis connection, one hooks channel). Any failure falls back to doing the
 * batch's remaining work one step after the other, waiting out outages with
 * back-off; applying again is safe (a duplicate returns its undelivered
 * triggers). */
#ifndef RELATIOND_PIPELINE_H
#define RELATIOND_PIPELINE_H

#include "config/config.h"
#include "daemon/backoff.h"
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
typedef struct PipelineBatch PipelineBatch;

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

/* who names the source in the log ("kafka", "amqp"). */
Pipeline *pipeline_new(const char *who) __attribute__((warn_unused_result));
void pipeline_free(Pipeline *p);

/* The configuration of the next batch: switches to a reloaded one, if any. */
const Config *pipeline_config(Pipeline *p);

/* Parses the messages (bad ones get dead = true and a reason) and writes
 * their calls to Redis. msgs stay the caller's until pipeline_finish. At
 * most PIPELINE_DEPTH batches may be started and not finished. */
PipelineBatch *pipeline_start(Pipeline *p, Message *msgs, size_t n)
    __attribute__((warn_unused_result));
/* Reads the batch's results (events Redis refused get dead = true) and
 * publishes its triggers without waiting. False only once the drain
 * deadline has passed. */
bool pipeline_publish(Pipeline *p, PipelineBatch *b) __attribute__((warn_unused_result));
/* Waits until the batch's triggers are confirmed, then sends the clearing
 * of its outbox entries. True: its statistics are stored and its triggers
 * delivered; acknowledge it. False only once the drain deadline has passed:
 * acknowledge nothing. The batch's slot is free again either way. */
bool pipeline_finish(Pipeline *p, PipelineBatch *b) __attribute__((warn_unused_result));

/* Gives up a started batch whose publishing failed past the drain
 * deadline: its slot is free; acknowledge nothing. */
void pipeline_abandon(Pipeline *p, PipelineBatch *b);

/* Connects to Redis (loading the function library) and to the hooks
 * exchange, waiting out their outages with back-off. False only past the
 * drain deadline. */
bool pipeline_connect(Pipeline *p) __attribute__((warn_unused_result));

/* Between batches: keeps the idle connections alive, and checks Redis
 * (redis_link_idle) so that the gauges and /readyz follow it without
 * traffic. */
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
