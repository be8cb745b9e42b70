/* hook_sink.h — one hook's destination, whatever its kind: an amqp
 * exchange (topic or direct) or queue through a Publisher (confirms), a
 * Kafka topic through an idempotent producer (acks=all; key, value,
 * headers message_id and event_type), an http URL through hook_http. A
 * batch of triggers is sent and its outcome classified as hook_http's:
 * delivered, retry after a delay, or disabled (http 410 only).
 *
 * Ownership: a HookSink copies what it needs of the HookDef; the triggers
 * and the outcome are the caller's. Threads: one thread at a time per
 * HookSink (the daemon's deliverer of that hook, or relationctl hooks
 * test). Failure: hook_sink_new returns NULL with a message (out of
 * memory, a Kafka property librdkafka refuses, curl); a send never fails,
 * its outcome says what happened (reason a metric label). */
#ifndef RELATIOND_HOOK_SINK_H
#define RELATIOND_HOOK_SINK_H

#include "config/config.h"
#include "daemon/hook_http.h"
#include "handlers/backlog.h"

#include <stddef.h>

typedef struct HookSink HookSink;

/* For hook def; max_ms caps the amqp/kafka back-off (engine.retry_max_ms). */
HookSink *hook_sink_new(const HookDef *def, int max_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void hook_sink_free(HookSink *s);

/* Connects now when the kind has a connection to make (amqp: connect and
 * declare), so that an outage or a refusal shows at the start; false with
 * the reason (the first send tries again). */
bool hook_sink_connect(HookSink *s, char *err, size_t errlen) __attribute__((warn_unused_result));

/* --check-config --connect: whether an amqp or http destination can take
 * triggers, without sending one: amqp, connected, logged in, the exchange
 * or queue declared (declare false: it exists, a passive declare); http, a
 * connection to the URL's host (TLS included) opens within timeout_ms
 * (hook_http_probe). True with what was checked in what, false with the
 * reason in err. (A kafka hook: kafka_source_probe of its brokers and
 * topic.) */
bool hook_sink_probe(HookSink *s, char *what, size_t whatlen, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Sends t[0..n) (n >= 1; at most batch_size for http) and waits until the
 * destination took them all (publisher confirms, Kafka delivery reports,
 * an http answer). */
void hook_sink_send(HookSink *s, const BacklogEntry *t, size_t n, HookOutcome *out);

/* The routing key of a trigger for an amqp hook: the topic key, or for a
 * direct exchange <database>.<event_type>, or the queue's name, into out. */
void hook_sink_routing_key(const HookDef *def, const char *topic_key, const char *database,
                           const char *event_type, char *out, size_t len);

#endif
