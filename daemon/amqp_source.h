/* amqp_source.h — the RabbitMQ source: a durable queue with a dead-letter
 * exchange, prefetch, batches through the pipeline, bad messages to the
 * dead-letter exchange with their reason (of a message over EVENT_MAX_BYTES
 * only its first EVENT_MAX_BYTES bytes are ever held) and the redrive count
 * they came with (REDRIVES_HEADER), one ack (multiple) per
 * batch only after all that. A consumer cancelled by the broker (its queue
 * deleted) or a connection lost is down until the source consumes again,
 * with back-off. Runs in its own thread. */
#ifndef RELATIOND_AMQP_SOURCE_H
#define RELATIOND_AMQP_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct AmqpSource AmqpSource;

/* From the running configuration; connects in its thread. */
AmqpSource *amqp_source_new(char *err, size_t errlen) __attribute__((warn_unused_result));
bool amqp_source_start(AmqpSource *s) __attribute__((warn_unused_result));
bool amqp_source_done(const AmqpSource *s);
/* Redis and the hooks exchange have been connected, and the queue is
 * consumed (false again while the source reconnects). */
bool amqp_source_ready(const AmqpSource *s);
void amqp_source_free(AmqpSource *s);

#endif
