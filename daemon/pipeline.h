/* pipeline.h — one batch of messages from a source: parse, apply in one
 * Redis pipeline, publish the triggers, await their confirms, clear them from
 * the outbox. Each source has its own pipeline (its own Redis and hooks
 * connections). Outages are waited out with back-off. */
#ifndef RELATIOND_PIPELINE_H
#define RELATIOND_PIPELINE_H

#include "config/config.h"
#include "handlers/event.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct Pipeline Pipeline;

typedef struct {
    const char *data; /* the message body (borrowed) */
    size_t len;
    const char *where; /* for the log: "topic/partition@offset" (borrowed) */
    bool dead;         /* out: refused; reason says why */
    char reason[EVENT_ERR_MAX + 32];
} Message;

/* who names the source in the log ("kafka", "amqp"). */
Pipeline *pipeline_new(const char *who) __attribute__((warn_unused_result));
void pipeline_free(Pipeline *p);

/* The configuration of this batch: switches to a reloaded one, if any. */
const Config *pipeline_config(Pipeline *p);

/* Applies the batch. Bad messages get dead = true and a reason; the others'
 * statistics are stored and their triggers confirmed when it returns true.
 * Outages and lack of memory are waited out with back-off. False only once
 * the drain deadline has passed: acknowledge nothing. */
bool pipeline_process(Pipeline *p, Message *msgs, size_t n) __attribute__((warn_unused_result));

/* Between batches: keeps the idle hooks connection alive. */
void pipeline_idle(Pipeline *p);

#endif
