/* publisher.h — publishing to one exchange with publisher confirms: many
 * messages in flight, each one confirmed by the broker or published again.
 *
 * Two ways to publish:
 * - publisher_send: publishes a batch and waits for its confirms (a nacked
 *   message is published again); simple, for dead letters and fallbacks.
 * - publisher_publish + publisher_wait: publishes without waiting and returns
 *   the delivery tag of the batch's last message; several batches may be
 *   published before waiting for the confirms of all of them at once.
 *
 * Delivery tags count up from 1 over the Publisher's life: on its first
 * connection they are the broker's delivery tags; after a reconnect they go
 * on counting (the broker's count starts again at 1), so that a tag published
 * on a lost connection is never mistaken for one of the new connection.
 *
 * On plain TCP (amqp://) the frames of a batch are encoded into one buffer
 * and written with as few system calls as possible; on TLS (amqps://) each
 * message goes through amqp_basic_publish. Not thread-safe: one thread per
 * Publisher.
 *
 * Unroutable messages (publisher_set_mandatory): published with the
 * mandatory flag, a message the exchange routes to no queue comes back
 * (basic.return) just before its confirm; it is still confirmed, and counts
 * as published: the broker took it, and dropped it. Returns are counted,
 * reported to a callback, and warned about at most once a minute.
 *
 * While RabbitMQ blocks the connection for a resource alarm
 * (connection.blocked: logged once, relationd_amqp_blocked{component} 1,
 * /readyz 503), publishing and waiting for confirms wait for the alarm to
 * clear, without a time limit except the drain deadline
 * (publisher_set_heartbeat), and publish nothing twice. */
#ifndef RELATIOND_PUBLISHER_H
#define RELATIOND_PUBLISHER_H

#include "config/config.h"

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Publisher Publisher;

/* routing_key, message_id and content_type are AMQP short strings: at most
 * 255 bytes (a longer one fails the call, see below), as are header keys. */
typedef struct {
    const char *routing_key;
    const char *message_id;     /* NULL: none */
    const char *content_type;   /* NULL: none */
    const amqp_table_t *headers; /* NULL: none */
    const void *body;
    size_t len;
} Outgoing;

/* Declares nothing yet: the first send connects and declares exchange (a
 * durable exchange of type "topic" or "fanout"); declare false: only checks
 * that it exists (amqp_conn_declare_exchange). Strings are copied. */
Publisher *publisher_new(const char *url, const char *exchange, const char *type, bool declare,
                         const TlsConfig *tls)
    __attribute__((warn_unused_result));
void publisher_free(Publisher *p);
/* The component its blocked state is reported under: "hooks" (the default)
 * or "amqp" (borrowed, a constant). */
void publisher_set_component(Publisher *p, const char *component);
/* The caller's run state (both NULL unless set, as in relationctl): while
 * publishing and waiting for confirms, beat is called at least once a second
 * (a watchdog sees the thread alive: the daemon passes lifecycle_beat), and a
 * wait on a connection RabbitMQ blocks ends once deadline_passed returns true
 * (the daemon's drain deadline: lifecycle_deadline_passed); NULL: never. */
void publisher_set_heartbeat(Publisher *p, void (*beat)(void), bool (*deadline_passed)(void));
/* A returned message's routing key (valid during the call only). */
typedef void (*PublisherReturned)(const char *routing_key);
/* From now on every message is published with the mandatory flag. Each one
 * the exchange routes to no queue is returned by the broker (basic.return,
 * read with its header and body on the confirm stream, before its ack: no
 * round trip more) and still confirmed: publisher_send / publisher_wait
 * treat it as any confirmed message. For each return: on_return (NULL:
 * none) is called on the publishing thread; with `what` (a plural noun,
 * "triggers", borrowed; NULL: no log) a warning is logged once the
 * confirms in hand are read, at most once a minute while returns come:
 * how many were returned since the previous one, the exchange, an example
 * routing key and what to do; publisher_free logs the ones not logged yet. */
void publisher_set_mandatory(Publisher *p, const char *what, PublisherReturned on_return);
/* Messages returned as unroutable over the Publisher's life. */
uint64_t publisher_returned(const Publisher *p);
/* A Publisher made with exchange "" (the default exchange), publishing to
 * one queue (the routing key its name): on connecting the durable queue is
 * declared instead of the exchange (declare false: it must exist). False
 * when out of memory. */
bool publisher_set_queue(Publisher *p, const char *queue) __attribute__((warn_unused_result));
/* Connects and declares now (when not connected). False with the reason. */
bool publisher_connect(Publisher *p, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Publishes n persistent messages and waits until the broker has confirmed
 * every one (a nacked message is published again). False when the connection
 * failed or no confirm came in time: the connection is dropped, the next call
 * reconnects, and the caller sends the same messages again. A connection
 * found closed after sitting idle is replaced once within the call. False
 * too, with the connection kept and nothing published, for a message that
 * cannot be encoded (a short string over 255 bytes, properties larger than a
 * frame): sending it again fails again. */
bool publisher_send(Publisher *p, const Outgoing *msgs, size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Publishes n persistent messages without waiting for their confirms;
 * connects first if needed (and replaces, once, a connection found closed).
 * *last_tag: the delivery tag of the last message (the batch has the n tags
 * up to it); for n == 0 the last tag already published (0: none), so that
 * waiting for it waits only for what is already in flight.
 * False with the reason: the connection failed (it is dropped; the messages
 * of earlier publisher_publish calls not confirmed yet are lost with it, and
 * publisher_wait reports them), or a message cannot be encoded (nothing of
 * the batch was published, the connection is kept). */
bool publisher_publish(Publisher *p, const Outgoing *msgs, size_t n, uint64_t *last_tag,
                       char *err, size_t errlen) __attribute__((warn_unused_result));

/* Waits until the broker has confirmed every message with a tag <= last_tag
 * (reading its acks; an ack that settles many tags at once settles them in
 * one step). True only when every one of them was acked. False with the
 * reason, and the connection dropped, when one was nacked, the connection
 * failed or was closed by the broker, or 30 s passed without any confirm:
 * the caller publishes those messages again (publisher_send), on a fresh
 * connection. While the broker blocks the connection the 30 s do not run. False too when a message up to last_tag was in flight on a
 * connection dropped since (by a failed call or publisher_poll): each such
 * loss is reported by one false return (a later wait for the same tags
 * returns true). False, without dropping anything, for a last_tag not
 * published yet. */
bool publisher_wait(Publisher *p, uint64_t last_tag, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Drops the connection and forgets every message in flight (their losses are
 * not reported by publisher_wait). The next call reconnects. */
void publisher_reset(Publisher *p);

/* Idle: reads what the broker sent (heartbeats, confirms of messages in
 * flight) so the connection stays up; a connection found closed is dropped
 * (its messages in flight are reported lost by publisher_wait). */
void publisher_poll(Publisher *p);

#endif
