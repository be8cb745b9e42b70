/* amqp_conn.h — opening an AMQP connection from a URL, turning rabbitmq-c
 * replies into error messages, and the broker's flow control of a
 * connection (connection.blocked / connection.unblocked). Each connection
 * belongs to one thread; the flow state is reported to the observer set with
 * amqp_conn_observe_blocked (relationd's metrics; none in relationctl). */
#ifndef RELATIOND_AMQP_CONN_H
#define RELATIOND_AMQP_CONN_H

#include "config/config.h"

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AMQP_CONN_HEARTBEAT_S 30
#define AMQP_CONN_TIMEOUT_S 10

/* Connects (amqps://: over TLS as tls says), logs in and opens channel 1.
 * The login asks for heartbeats every AMQP_CONN_HEARTBEAT_S (rabbitmq-c sends
 * and checks them only while the connection is read: its owner polls it
 * while idle) and advertises the capabilities
 * consumer_cancel_notify (a consumer cancelled by the broker, its queue
 * deleted, gets basic.cancel) and connection.blocked (a resource alarm
 * blocking the connection is announced). NULL on failure, with the reason in
 * err. */
amqp_connection_state_t amqp_conn_open(const char *url, const TlsConfig *tls, char *err,
                                       size_t errlen)
    __attribute__((warn_unused_result));

/* True for a normal reply; otherwise writes "what: reason" to err, with
 * what to do about a refusal waiting will not cure (403, 404, 406, 530). */
bool amqp_conn_check(amqp_rpc_reply_t reply, const char *what, char *err, size_t errlen);

/* Declares a durable exchange of type on channel 1; declare false (or a
 * declare refused for want of the configure permission): checks that it
 * exists instead (a passive declare). */
bool amqp_conn_declare_exchange(amqp_connection_state_t conn, const char *name, const char *type,
                                bool declare, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Closes channel 1 and the connection, politely when it still works. */
void amqp_conn_close(amqp_connection_state_t conn);

/* Closes a connection that is broken or closed by the broker (its byte
 * stream may end inside a frame): the socket is shut down first, so nothing
 * waits for a reply. */
void amqp_conn_abort(amqp_connection_state_t conn);

/* The broker's flow control of one connection. RabbitMQ blocks a connection
 * that publishes while one of its resource alarms (disk, memory) is on: it
 * stops reading it and sends connection.blocked with the alarm ("low on
 * disk"), then connection.unblocked once every alarm cleared. */
typedef struct {
    const char *who;       /* the log's component (borrowed) */
    const char *component; /* relationd_amqp_blocked's: "hooks" or "amqp" (borrowed) */
    char name[300];        /* what the log names: "exchange relation.hooks" */
    bool blocked;
    int64_t since_ms;
    char reason[128];
} AmqpFlow;

/* Told when a connection is blocked (change +1, the alarm), unblocked (-1),
 * or reset (0: the component is listed). Called from the connection's thread. */
typedef void (*AmqpBlockedObserver)(const char *component, int change, const char *reason);

/* Sets the observer of every connection's flow state; call once, before any
 * connection opens. */
void amqp_conn_observe_blocked(AmqpBlockedObserver fn);

void amqp_conn_flow_init(AmqpFlow *f, const char *who, const char *component, const char *kind,
                         const char *name);
/* Handles a frame that is connection.blocked or connection.unblocked (one log
 * line each, the metric, /readyz): true; false for any other frame. */
bool amqp_conn_flow_frame(AmqpFlow *f, const amqp_frame_t *frame);
/* The connection is gone, or new: not blocked (listed in the metric at 0). */
void amqp_conn_flow_reset(AmqpFlow *f);

/* The text of the last header named key in p, into out (cut to len - 1
 * bytes): a string as it is, an integer in decimal, another kind "?".
 * False, out "", when there is none. */
bool amqp_conn_header(const amqp_basic_properties_t *p, const char *key, char *out, size_t len);

/* An amqp_bytes_t of a C string, without copying. */
amqp_bytes_t amqp_conn_bytes(const char *s);

#endif
