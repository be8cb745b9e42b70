/* amqp_conn.c — AMQP connections (amqp_conn.h). */
#include "daemon/amqp_conn.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

/* Told of every change of a connection's flow state; set once by the daemon
 * before any connection opens (relationctl and the benchmarks set none). */
static AmqpBlockedObserver blocked_observer;

void amqp_conn_observe_blocked(AmqpBlockedObserver fn)
{
    blocked_observer = fn;
}

amqp_bytes_t amqp_conn_bytes(const char *s)
{
    amqp_bytes_t b = {strlen(s), (void *)s};
    return b;
}

bool amqp_conn_header(const amqp_basic_properties_t *p, const char *key, char *out, size_t len)
{
    const amqp_field_value_t *v = NULL;
    size_t klen = strlen(key);
    for (int i = 0; (p->_flags & AMQP_BASIC_HEADERS_FLAG) && i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->key.len == klen && memcmp(e->key.bytes, key, klen) == 0)
            v = &e->value;
    }
    if (len)
        out[0] = '\0';
    if (!v)
        return false;
    switch (v->kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
        snprintf(out, len, "%.*s", (int)v->value.bytes.len, (const char *)v->value.bytes.bytes);
        break;
    case AMQP_FIELD_KIND_I8: snprintf(out, len, "%d", v->value.i8); break;
    case AMQP_FIELD_KIND_U8: snprintf(out, len, "%u", v->value.u8); break;
    case AMQP_FIELD_KIND_I16: snprintf(out, len, "%d", v->value.i16); break;
    case AMQP_FIELD_KIND_U16: snprintf(out, len, "%u", v->value.u16); break;
    case AMQP_FIELD_KIND_I32: snprintf(out, len, "%d", (int)v->value.i32); break;
    case AMQP_FIELD_KIND_U32: snprintf(out, len, "%u", (unsigned)v->value.u32); break;
    case AMQP_FIELD_KIND_I64: snprintf(out, len, "%lld", (long long)v->value.i64); break;
    case AMQP_FIELD_KIND_U64: snprintf(out, len, "%llu", (unsigned long long)v->value.u64); break;
    default: snprintf(out, len, "?");
    }
    return true;
}

/* What an operator should do about a refusal that waiting will not cure
 * (relationd still retries, so that it can be repaired live). */
static const char *hint(unsigned code)
{
    switch (code) {
    case 403:
        return " (a configuration error: check the user's password and its configure, write "
               "and read permissions on the vhost)";
    case 404:
        return " (a configuration error: it does not exist; create it, or let relationd "
               "declare it)";
    case 406:
        return " (a configuration error: it exists with other settings; declare it as "
               "relationd does (README, RabbitMQ), or set amqp.declare or hooks.declare to false "
               "to use it as it is)";
    case 530:
        return " (a configuration error: the user may not use this vhost)";
    default:
        return "";
    }
}

bool amqp_conn_check(amqp_rpc_reply_t r, const char *what, char *err, size_t errlen)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return true;
    case AMQP_RESPONSE_NONE:
        snprintf(err, errlen, "%s: no reply", what);
        return false;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(err, errlen, "%s: %s", what, amqp_error_string2(r.library_error));
        return false;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(err, errlen, "%s: connection closed by the server: %u %.*s%s", what,
                     m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes,
                     hint(m->reply_code));
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(err, errlen, "%s: channel closed by the server: %u %.*s%s", what,
                     m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes,
                     hint(m->reply_code));
        } else {
            snprintf(err, errlen, "%s: unexpected server method 0x%08X", what, r.reply.id);
        }
        return false;
    }
    snprintf(err, errlen, "%s: unknown reply", what);
    return false;
}

/* The CA certificates when amqp.tls.ca / hooks.tls.ca is not given. */
#define SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

static bool tls_setup(amqp_socket_t *sock, const TlsConfig *tls, char *err, size_t errlen)
{
    const char *ca = tls && tls->ca ? tls->ca : SYSTEM_CA;
    bool verify = !tls || tls->verify;
    int rc;
    if (verify && (rc = amqp_ssl_socket_set_cacert(sock, ca)) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "tls: CA certificates %s: %s", ca, amqp_error_string2(rc));
        return false;
    }
    if (tls && tls->cert && (rc = amqp_ssl_socket_set_key(sock, tls->cert, tls->key)) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "tls: certificate %s and key %s: %s", tls->cert, tls->key,
                 amqp_error_string2(rc));
        return false;
    }
    amqp_ssl_socket_set_verify_peer(sock, verify);
    amqp_ssl_socket_set_verify_hostname(sock, verify);
    return true;
}

amqp_connection_state_t amqp_conn_open(const char *url, const TlsConfig *tls, char *err,
                                       size_t errlen)
{
    struct amqp_connection_info info;
    struct timeval tv = {AMQP_CONN_TIMEOUT_S, 0};
    amqp_socket_t *sock;
    char *copy = strdup(url); /* amqp_parse_url writes into its argument */
    amqp_connection_state_t conn = NULL;
    int rc;

    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    amqp_default_connection_info(&info);
    if ((rc = amqp_parse_url(copy, &info)) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "bad url: %s", amqp_error_string2(rc));
        goto fail;
    }
    conn = amqp_new_connection();
    if (!conn) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    sock = info.ssl ? amqp_ssl_socket_new(conn) : amqp_tcp_socket_new(conn);
    if (!sock) {
        snprintf(err, errlen, "cannot create a socket");
        goto fail;
    }
    if (info.ssl && !tls_setup(sock, tls, err, errlen))
        goto fail;
    if ((rc = amqp_socket_open_noblock(sock, info.host, info.port, &tv)) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "connect %s:%d: %s", info.host, info.port, amqp_error_string2(rc));
        goto fail;
    }
    amqp_set_handshake_timeout(conn, &tv);
    amqp_set_rpc_timeout(conn, &tv);
    /* merged by rabbitmq-c into its own client properties and capabilities */
    amqp_table_entry_t caps[] = {
        {amqp_cstring_bytes("consumer_cancel_notify"), {.kind = AMQP_FIELD_KIND_BOOLEAN,
                                                        .value.boolean = 1}},
        {amqp_cstring_bytes("connection.blocked"), {.kind = AMQP_FIELD_KIND_BOOLEAN,
                                                    .value.boolean = 1}},
    };
    amqp_table_entry_t props[] = {
        {amqp_cstring_bytes("capabilities"),
         {.kind = AMQP_FIELD_KIND_TABLE, .value.table = {2, caps}}},
    };
    amqp_table_t properties = {1, props};
    if (!amqp_conn_check(amqp_login_with_properties(conn, info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE,
                                                    AMQP_CONN_HEARTBEAT_S, &properties,
                                                    AMQP_SASL_METHOD_PLAIN, info.user,
                                                    info.password),
                         "login", err, errlen))
        goto fail;
    amqp_channel_open(conn, 1);
    if (!amqp_conn_check(amqp_get_rpc_reply(conn), "channel.open", err, errlen))
        goto fail;
    free(copy);
    return conn;
fail:
    if (conn)
        amqp_destroy_connection(conn);
    free(copy);
    return NULL;
}

/* The server closed channel 1 with code: acknowledges the close and opens
 * the channel again. */
static bool channel_closed_with(amqp_connection_state_t conn, amqp_rpc_reply_t r, unsigned code,
                                char *err, size_t errlen)
{
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD ||
        ((const amqp_channel_close_t *)r.reply.decoded)->reply_code != code)
        return false;
    amqp_channel_close_ok_t ok = {0};
    if (amqp_send_method(conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != AMQP_STATUS_OK)
        return false;
    amqp_channel_open(conn, 1);
    return amqp_conn_check(amqp_get_rpc_reply(conn), "channel.open", err, errlen);
}

bool amqp_conn_declare_exchange(amqp_connection_state_t conn, const char *name, const char *type,
                                bool declare, char *err, size_t errlen)
{
    if (!*name)
        return true; /* the default exchange: always there, never declared */
    if (declare) {
        amqp_exchange_declare(conn, 1, amqp_conn_bytes(name), amqp_conn_bytes(type), 0,
                              1 /* durable */, 0, 0, amqp_empty_table);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
        if (r.reply_type == AMQP_RESPONSE_NORMAL)
            return true;
        /* No configure permission: enough when the exchange exists. */
        if (!channel_closed_with(conn, r, 403, err, errlen))
            return amqp_conn_check(r, "exchange.declare", err, errlen);
    }
    amqp_exchange_declare(conn, 1, amqp_conn_bytes(name), amqp_conn_bytes(type), 1 /* passive */,
                          0, 0, 0, amqp_empty_table);
    return amqp_conn_check(amqp_get_rpc_reply(conn), "exchange.declare (passive, it must exist)",
                           err, errlen);
}

void amqp_conn_close(amqp_connection_state_t conn)
{
    if (!conn)
        return;
    struct timeval tv = {2, 0};
    amqp_set_rpc_timeout(conn, &tv);
    if (amqp_get_socket(conn) && amqp_get_sockfd(conn) >= 0) {
        amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);
}

void amqp_conn_abort(amqp_connection_state_t conn)
{
    if (conn && amqp_get_socket(conn)) {
        int fd = amqp_get_sockfd(conn);
        if (fd >= 0)
            (void)shutdown(fd, SHUT_RDWR); /* the polite close then fails at once */
    }
    amqp_conn_close(conn);
}

/* ---- flow control ---------------------------------------------------------- */

void amqp_conn_flow_init(AmqpFlow *f, const char *who, const char *component, const char *kind,
                         const char *name)
{
    memset(f, 0, sizeof *f);
    f->who = who;
    f->component = component;
    snprintf(f->name, sizeof f->name, "%s %s", kind, name);
}

static void flow_set(AmqpFlow *f, bool blocked)
{
    if (f->blocked == blocked)
        return;
    f->blocked = blocked;
    if (blocked_observer)
        blocked_observer(f->component, blocked ? 1 : -1, f->reason);
}

bool amqp_conn_flow_frame(AmqpFlow *f, const amqp_frame_t *frame)
{
    if (frame->frame_type != AMQP_FRAME_METHOD)
        return false;
    if (frame->payload.method.id == AMQP_CONNECTION_BLOCKED_METHOD) {
        const amqp_connection_blocked_t *m = frame->payload.method.decoded;
        if (f->blocked)
            return true; /* logged once per block */
        snprintf(f->reason, sizeof f->reason, "%.*s", (int)m->reason.len,
                 (const char *)m->reason.bytes);
        f->since_ms = clock_now_ms();
        flow_set(f, true); /* before the log line: whoever reads it finds /readyz says so */
        log_at(LOG_WARN, f->who, "%s: RabbitMQ blocked the connection (%s, a resource alarm): "
               "publishing waits until the alarm clears", f->name, f->reason);
        return true;
    }
    if (frame->payload.method.id == AMQP_CONNECTION_UNBLOCKED_METHOD) {
        if (f->blocked)
            log_at(LOG_INFO, f->who, "%s: RabbitMQ unblocked the connection after %lld s", f->name,
                   (long long)(clock_now_ms() - f->since_ms) / 1000);
        flow_set(f, false);
        return true;
    }
    return false;
}

void amqp_conn_flow_reset(AmqpFlow *f)
{
    if (!f->component)
        return; /* never initialized */
    flow_set(f, false);
    if (blocked_observer)
        blocked_observer(f->component, 0, NULL); /* listed */
}
