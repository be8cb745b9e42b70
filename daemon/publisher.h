/* publisher.h — publishing to one exchange with publisher confirms: many
 * messages in flight, each one confirmed by the broker or published again. */
#ifndef RELATIOND_PUBLISHER_H
#define RELATIOND_PUBLISHER_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct Publisher Publisher;

typedef struct {
    const char *routing_key;
    const char *message_id;     /* NULL: none */
    const char *content_type;   /* NULL: none */
    const amqp_table_t *headers; /* NULL: none */
    const void *body;
    size_t len;
} Outgoing;

/* Declares nothing yet: the first send connects and declares exchange (a
 * durable exchange of type "topic" or "fanout"). Strings are copied. */
Publisher *publisher_new(const char *url, const char *exchange, const char *type)
    __attribute__((warn_unused_result));
void publisher_free(Publisher *p);

/* Publishes n persistent messages and waits until the broker has confirmed
 * every one (a nacked message is published again). False when the connection
 * failed or no confirm came in time: the connection is dropped, the next call
 * reconnects, and the caller sends the same messages again. */
bool publisher_send(Publisher *p, const Outgoing *msgs, size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Idle: reads what the broker sent (heartbeats) so the connection stays up. */
void publisher_poll(Publisher *p);

#endif
