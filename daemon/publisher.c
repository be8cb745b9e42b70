/* publisher.c — confirmed publishing (publisher.h). rabbitmq-c 0.11 has no
 * confirm-wait helper: basic.ack and basic.nack frames are read here, their
 * `multiple` flag honoured. */
#include "daemon/publisher.h"
#include "daemon/amqp_conn.h"
#include "daemon/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define CONFIRM_TIMEOUT_MS 30000
#define MAX_NACK_ROUNDS 10

struct Publisher {
    char *url;
    char *exchange;
    char *type;
    amqp_connection_state_t conn;
    uint64_t next_tag; /* the delivery tag of the next publish on this channel */
};

Publisher *publisher_new(const char *url, const char *exchange, const char *type)
{
    Publisher *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->url = strdup(url);
    p->exchange = strdup(exchange);
    p->type = strdup(type);
    if (!p->url || !p->exchange || !p->type) {
        publisher_free(p);
        return NULL;
    }
    return p;
}

static void drop(Publisher *p)
{
    amqp_conn_close(p->conn);
    p->conn = NULL;
}

void publisher_free(Publisher *p)
{
    if (!p)
        return;
    drop(p);
    free(p->url);
    free(p->exchange);
    free(p->type);
    free(p);
}

static bool connect_and_declare(Publisher *p, char *err, size_t errlen)
{
    p->conn = amqp_conn_open(p->url, err, errlen);
    if (!p->conn)
        return false;
    if (!amqp_conn_declare_exchange(p->conn, p->exchange, p->type, err, errlen))
        goto fail;
    amqp_confirm_select(p->conn, 1);
    if (!amqp_conn_check(amqp_get_rpc_reply(p->conn), "confirm.select", err, errlen))
        goto fail;
    p->next_tag = 1;
    return true;
fail:
    drop(p);
    return false;
}

enum { MSG_UNSENT, MSG_IN_FLIGHT, MSG_CONFIRMED };

/* Marks the messages a basic.ack / basic.nack covers. */
static void settle(const uint64_t *tags, unsigned char *state, size_t n, uint64_t tag,
                   bool multiple, bool ack, size_t *in_flight)
{
    for (size_t i = 0; i < n; i++) {
        if (state[i] != MSG_IN_FLIGHT || (multiple ? tags[i] > tag : tags[i] != tag))
            continue;
        state[i] = ack ? MSG_CONFIRMED : MSG_UNSENT;
        (*in_flight)--;
    }
}

/* Reads frames until every message in flight is settled. */
static bool await_confirms(Publisher *p, const uint64_t *tags, unsigned char *state, size_t n,
                           size_t in_flight, char *err, size_t errlen)
{
    struct timeval start, now;
    gettimeofday(&start, NULL);
    while (in_flight > 0) {
        amqp_frame_t frame;
        amqp_maybe_release_buffers(p->conn); /* the previous frame is no longer used */
        gettimeofday(&now, NULL);
        long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_usec - start.tv_usec) / 1000;
        if (waited >= CONFIRM_TIMEOUT_MS) {
            snprintf(err, errlen, "no confirm within %d ms", CONFIRM_TIMEOUT_MS);
            return false;
        }
        long left = CONFIRM_TIMEOUT_MS - waited;
        struct timeval tv = {left / 1000, (left % 1000) * 1000};
        int rc = amqp_simple_wait_frame_noblock(p->conn, &frame, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            continue;
        if (rc != AMQP_STATUS_OK) {
            snprintf(err, errlen, "waiting for confirms: %s", amqp_error_string2(rc));
            return false;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue; /* the header and body of a returned message: not used */
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *m = frame.payload.method.decoded;
            settle(tags, state, n, m->delivery_tag, m->multiple, true, &in_flight);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *m = frame.payload.method.decoded;
            settle(tags, state, n, m->delivery_tag, m->multiple, false, &in_flight);
            break;
        }
        case AMQP_BASIC_RETURN_METHOD:
            break;
        case AMQP_CHANNEL_CLOSE_METHOD: {
            const amqp_channel_close_t *m = frame.payload.method.decoded;
            snprintf(err, errlen, "channel closed by the server: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            return false;
        }
        case AMQP_CONNECTION_CLOSE_METHOD: {
            const amqp_connection_close_t *m = frame.payload.method.decoded;
            snprintf(err, errlen, "connection closed by the server: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            return false;
        }
        default:
            break;
        }
    }
    return true;
}

static bool send_once(Publisher *p, const Outgoing *msgs, size_t n, char *err, size_t errlen)
{
    uint64_t *tags = calloc(n, sizeof *tags);
    unsigned char *state = calloc(n, 1);
    bool ok = false;
    if (!tags || !state) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (!p->conn && !connect_and_declare(p, err, errlen))
        goto done;
    for (int round = 0; round < MAX_NACK_ROUNDS; round++) {
        size_t in_flight = 0;
        for (size_t i = 0; i < n; i++) {
            if (state[i] != MSG_UNSENT)
                continue;
            amqp_basic_properties_t props;
            memset(&props, 0, sizeof props);
            props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
            props.delivery_mode = 2; /* persistent */
            if (msgs[i].content_type) {
                props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
                props.content_type = amqp_conn_bytes(msgs[i].content_type);
            }
            if (msgs[i].message_id) {
                props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
                props.message_id = amqp_conn_bytes(msgs[i].message_id);
            }
            if (msgs[i].headers) {
                props._flags |= AMQP_BASIC_HEADERS_FLAG;
                props.headers = *msgs[i].headers;
            }
            amqp_bytes_t body = {msgs[i].len, (void *)msgs[i].body};
            int rc = amqp_basic_publish(p->conn, 1, amqp_conn_bytes(p->exchange),
                                        amqp_conn_bytes(msgs[i].routing_key), 0, 0, &props, body);
            if (rc != AMQP_STATUS_OK) {
                snprintf(err, errlen, "basic.publish: %s", amqp_error_string2(rc));
                goto done;
            }
            tags[i] = p->next_tag++;
            state[i] = MSG_IN_FLIGHT;
            in_flight++;
        }
        if (in_flight == 0) {
            ok = true;
            goto done;
        }
        if (!await_confirms(p, tags, state, n, in_flight, err, errlen))
            goto done;
        size_t nacked = 0;
        for (size_t i = 0; i < n; i++)
            nacked += state[i] == MSG_UNSENT;
        if (nacked == 0) {
            ok = true;
            goto done;
        }
        log_at(LOG_WARN, "publisher", "exchange %s: %zu messages nacked, publishing them again",
               p->exchange, nacked);
    }
    snprintf(err, errlen, "messages still nacked after %d rounds", MAX_NACK_ROUNDS);
done:
    if (!ok)
        drop(p);
    free(tags);
    free(state);
    return ok;
}

bool publisher_send(Publisher *p, const Outgoing *msgs, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return true;
    bool reused = p->conn != NULL;
    if (send_once(p, msgs, n, err, errlen))
        return true;
    /* A connection that sat idle may have been closed by the broker (missed
     * heartbeats, a restart): one more try on a fresh one before reporting. */
    return reused && send_once(p, msgs, n, err, errlen);
}

void publisher_poll(Publisher *p)
{
    if (!p->conn)
        return;
    for (;;) {
        amqp_frame_t frame;
        struct timeval tv = {0, 0};
        amqp_maybe_release_buffers(p->conn);
        int rc = amqp_simple_wait_frame_noblock(p->conn, &frame, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            return;
        if (rc != AMQP_STATUS_OK || (frame.frame_type == AMQP_FRAME_METHOD &&
                                     (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                                      frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD))) {
            log_at(LOG_WARN, "publisher", "exchange %s: connection lost while idle; reconnecting "
                   "at the next publish", p->exchange);
            drop(p);
            return;
        }
    }
}
