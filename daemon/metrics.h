/* metrics.h — the process's counters and states, exact and per process,
 * written by the source threads and read by the HTTP thread (/metrics,
 * /readyz). */
#ifndef RELATIOND_METRICS_H
#define RELATIOND_METRICS_H

#include "handlers/apply_status.h"

#include <stdbool.h>
#include <stddef.h>

/* A source of events: the label source="kafka" / "amqp" / "http" (the HTTP
 * writes) of relationd_events_total and relationd_dead_letters_total. */
typedef enum { SOURCE_KAFKA, SOURCE_AMQP, SOURCE_HTTP, SOURCE_COUNT } SourceId;

/* A batch's applied events by result (APPLY_*), and its dead letters. */
void metrics_events(SourceId s, ApplyStatus result, unsigned long n);
void metrics_dead_letters(SourceId s, unsigned long n);
/* A confirmed trigger, by its routing key relation.<rel>.<direction>.<kind>. */
void metrics_trigger(const char *routing_key);
/* A trigger the hooks exchange routed to no queue (returned by RabbitMQ, then
 * confirmed), by its routing key: relationd_triggers_unroutable_total
 * {relation,kind}. A key of another shape is not counted. */
void metrics_trigger_unroutable(const char *routing_key);
/* Lists relationd_triggers_unroutable_total{relation,kind} at 0 for every
 * kind of the relation (short name), so that a first increase shows. */
void metrics_triggers_unroutable_list(const char *relation);
/* A batch from its start to its acknowledgement. */
void metrics_batch_seconds(double seconds);
/* A component (redis, hooks, kafka, amqp, dead letters) of a source is up or
 * down: what the back-off says. */
void metrics_component(const char *who, const char *what, bool up);
/* Down because it refused the configuration: reason (naming the setting,
 * never a secret) goes into /readyz. metrics_component clears it. */
void metrics_component_refused(const char *who, const char *what, const char *reason);
/* A source (or the read API) is not ready yet: what it awaits ("partition
 * assignment"); NULL once it is ready. /readyz answers 503 while any awaits. */
void metrics_waiting(const char *who, const char *what);

/* A RabbitMQ connection of component ("hooks", "amqp") blocked by the broker
 * (change 1, reason: the alarm, "low on disk"), unblocked (-1), or only listed
 * (0, at 0 until blocked). The component is blocked while any of its
 * connections is: relationd_amqp_blocked{component}, and /readyz names it
 * with the latest reason. */
void metrics_amqp_blocked(const char *component, int change, const char *reason);

/* The Redis keyspace was found wiped or changed under the daemon (its
 * layout key gone or holding another id): relationd_redis_keyspace_lost_total. */
void metrics_keyspace_lost(void);

/* Outbox entries written by this process whose triggers are not confirmed
 * and cleared yet: n more (or fewer, when negative). */
void metrics_outbox(long n);

/* The consumer lag of every partition the process consumes (high watermark
 * less the committed offset): replaces the previous set. */
typedef struct {
    const char *topic;
    int partition;
    long long lag;
} MetricLag;
void metrics_kafka_lags(const MetricLag *lags, int n);
/* Their sum; false while none is known. */
bool metrics_kafka_lag_total(long long *total);

/* Action hooks (one deliverer thread each, daemon/hooks.h): listed at 0,
 * n triggers delivered at now_s (unix seconds: the last success), a failed
 * attempt by reason (hook_http's reasons, "connect", "broker", "memory",
 * "redis"), the backlog's length in triggers (backlog.h). At most 64 hooks are
 * counted. */
void metrics_hook_list(const char *hook);
void metrics_hook_delivered(const char *hook, unsigned long n, double now_s);
void metrics_hook_failure(const char *hook, const char *reason);
void metrics_hook_backlog(const char *hook, long long len);

/* Events taken so far (every source, every result). */
unsigned long metrics_events_total(void);

/* The Prometheus text of every metric, malloc'ed (NULL: out of memory). */
char *metrics_render(void);
/* {"down":[...]} naming what is down (with "error" for a refused
 * configuration; the RabbitMQ connections blocked by an alarm), and "waiting":[...] when something is not ready yet,
 * malloc'ed (NULL: out of memory); *all_up when nothing is down or awaited. */
char *metrics_down_json(bool *all_up);

#endif
