/* trigger_feed.h — an in-process broadcast of the triggers as the pipelines
 * publish them (appended to the hooks' backlogs), to the live subscribers of
 * GET /v1/triggers/stream (daemon/http_ui.c). Live only: a subscriber gets
 * the triggers published while it is subscribed, no history, no replay.
 *
 * Cost: with no subscriber, trigger_feed_post is one relaxed atomic load
 * (inline) on the pipeline's thread. With subscribers, each trigger is
 * rendered once as a server-sent event ("event: trigger", "data: <body>":
 * trigger bodies are one line of JSON) and queued to every subscriber.
 *
 * Bounds: at most FEED_SUBS_MAX subscribers; each queue holds at most
 * FEED_QUEUE_MAX events and FEED_QUEUE_BYTES bytes: beyond, the oldest not
 * yet started is dropped, and the subscriber's stream then says how many
 * ("event: dropped", data {"dropped": N}) before the next event.
 *
 * Threads: any thread posts; a subscriber's callbacks (park, wake) are
 * called under the feed's one lock, park from trigger_feed_read (the
 * subscriber's own thread), wake from any thread that queues something for
 * a parked subscriber (a post, a keepalive, the end). Ownership: records
 * are shared by the queues holding them and freed with the last; a
 * subscriber is the feed's until trigger_feed_leave. Failure: out of
 * memory drops the post for every subscriber (counted as dropped). */
#ifndef RELATIOND_TRIGGER_FEED_H
#define RELATIOND_TRIGGER_FEED_H

#include "handlers/trigger.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FEED_SUBS_MAX 16
#define FEED_QUEUE_MAX 1024
#define FEED_QUEUE_BYTES (1024 * 1024)
/* A parked subscriber without anything for that long gets a comment line
 * (": keepalive"): a client gone is then noticed by the failed write. */
#define FEED_KEEPALIVE_MS 15000

typedef struct FeedSub FeedSub;

/* Under the feed's lock: park is told that the subscriber has nothing to
 * read (its reader will wait), wake that something came for a parked one. */
typedef void (*FeedCallback)(void *ctx);

/* Subscribers now (read without the lock: the hot path's check). */
extern atomic_int trigger_feed_subscribers;

/* A new subscriber, its queue starting with "event: ready" (data {}). NULL
 * with the reason in err when FEED_SUBS_MAX subscribe already, the feed
 * ended, or out of memory. */
FeedSub *trigger_feed_join(FeedCallback park, FeedCallback wake, void *ctx, char *err,
                           size_t errlen) __attribute__((warn_unused_result));
/* The subscriber goes (never parked when it leaves: see trigger_feed_read). */
void trigger_feed_leave(FeedSub *s);

/* Copies up to cap bytes of s's stream into buf: the count, or 0 when
 * nothing waits (park was called: the caller waits until wake) or -1 when
 * the feed ended (trigger_feed_end) and everything was read. */
long trigger_feed_read(FeedSub *s, char *buf, size_t cap);

void trigger_feed_post_all(const TriggerSet *t);
/* The triggers of a batch, in the hooks' backlogs: queued to every
 * subscriber. */
static inline void trigger_feed_post(const TriggerSet *t)
{
    if (t->n && atomic_load_explicit(&trigger_feed_subscribers, memory_order_relaxed))
        trigger_feed_post_all(t);
}

/* Queues a keepalive comment to every subscriber parked for
 * FEED_KEEPALIVE_MS at now (clock_now_ms). */
void trigger_feed_keepalive(int64_t now);

/* The end (the server stops): every subscriber's stream ends once read,
 * the parked ones are woken; no new subscriber. Waits up to wait_ms for
 * every subscriber to leave (its stream ended, or its client gone); false
 * when some are still there. */
bool trigger_feed_end(int wait_ms);

#endif
