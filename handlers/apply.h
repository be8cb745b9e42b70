/* apply.h — applies batches of events to Redis, one atomic function call
 * per side of an edge (both sides in one call on a single server),
 * pipelined; renders the triggers from what the calls return; clears
 * delivered triggers from the outboxes. Every call carries the engine's
 * epoch (apply.lua, "The fence"): a new epoch after every failed batch.
 *
 * A batch can be sent before the previous ones are read (engine_send, then
 * engine_recv, in the same order): Redis applies it while the caller renders
 * and publishes the previous one.
 *
 * Ownership: the events stay the caller's (borrowed until engine_recv or
 * engine_cancel); the triggers go into the caller's TriggerSet. Threads:
 * the engine's (engine.h). Failure: engine_recv false means nothing is known
 * of the batch and applying it again is safe; an event the apply function
 * refuses is APPLY_INVALID with the reason (dead-lettered by the caller). */
#ifndef RELATIOND_APPLY_H
#define RELATIOND_APPLY_H

#include "config/config.h"
#include "handlers/apply_status.h"
#include "handlers/engine.h"
#include "handlers/event.h"
#include "handlers/trigger.h"

#include <stdbool.h>
#include <stddef.h>

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

/* The triggers of these events were delivered: sends the removal of their
 * outbox entries; the replies are read with the next batch (or by
 * engine_sync). A failure leaves entries behind: a redelivery of the event
 * then publishes its triggers again, with the same ids. */
bool engine_delivered_async(Engine *e, const Event *events, const ApplyResult *results,
                            size_t n, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
