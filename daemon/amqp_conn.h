/* amqp_conn.h — opening an AMQP connection from a URL, and turning rabbitmq-c
 * replies into error messages. */
#ifndef RELATIOND_AMQP_CONN_H
#define RELATIOND_AMQP_CONN_H

#include "config/config.h"

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>

#define AMQP_CONN_HEARTBEAT_S 30
#define AMQP_CONN_TIMEOUT_S 10

/* Connects (amqps://: over TLS as tls says), logs in (heartbeats on) and
 * opens channel 1. NULL on failure, with the reason in err. */
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

/* An amqp_bytes_t of a C string, without copying. */
amqp_bytes_t amqp_conn_bytes(const char *s);

#endif
