/* publisher.c — confirmed publishing (publisher.h).
 *
 * Publishing: on plain TCP, the frames of a whole batch (for each message a
 * basic.publish method frame, a content header frame and its body frames,
 * split at the negotiated frame size) are encoded here into one reusable
 * buffer and written to the socket with send(): rabbitmq-c 0.11's
 * amqp_basic_publish costs three send() calls per message. On TLS the bytes
 * must go through rabbitmq-c's SSL socket: amqp_basic_publish per message.
 *
 * Confirms: rabbitmq-c 0.11 has no confirm-wait helper: basic.ack and
 * basic.nack frames are read here with amqp_simple_wait_frame_noblock. The
 * messages in flight form a window of tags [base, next_tag) with one state
 * byte each in a ring; `settled` is the first tag not settled yet (acked or
 * nacked), `base` the first not acked. An ack or nack with `multiple` walks
 * from `settled` only, so every tag is visited a bounded number of times.
 *
 * Returns: with the mandatory flag, RabbitMQ sends a message it routed to no
 * queue back before that message's basic.ack: a basic.return method frame,
 * a content header frame and body frames (as many as the header's body size
 * takes). They are read on the same stream as the confirms (no extra round
 * trip), counted, and their header and body skipped; a frame out of that
 * order is a protocol error (the connection is dropped).
 *
 * Flow control: while RabbitMQ blocks the connection (connection.blocked, a
 * resource alarm) confirms are held on purpose: the 30 s without a confirm
 * (or without a byte taken) that otherwise means a dead connection does not
 * run, the connection is kept and nothing is published again (a reconnect
 * would be blocked as well, and publishing again would deliver twice); the
 * wait ends with connection.unblocked, a failure, or the drain deadline. */
#include "daemon/publisher.h"

#include "lib/grow.h"
#include "daemon/amqp_conn.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define CONFIRM_TIMEOUT_MS 30000
#define MAX_NACK_ROUNDS 10
#define CHANNEL 1
#define SHORTSTR_MAX 255
#define FRAME_OVERHEAD 8          /* type, channel, size; frame end */
#define KEEP_BUFFER (4u << 20)    /* larger encode buffers are freed after use */
#define MAX_TABLE_DEPTH 32
#define RETURN_WARN_MS 60000      /* at most one warning about returns a minute */

enum { TAG_PENDING = 1, TAG_ACKED, TAG_NACKED };

/* What a failed publish leaves: the connection dropped, or kept. */
typedef enum { PUB_OK, PUB_CONN_FAILED, PUB_BAD_MESSAGE } PubResult;

struct Publisher {
    char *url;
    char *exchange;
    size_t exchange_len;
    char *type;
    char *queue; /* publisher_set_queue: declared instead of the exchange ("") */
    bool declare;
    TlsConfig tls;
    bool raw; /* plain TCP: frames encoded and written here */
    amqp_connection_state_t conn;
    AmqpFlow flow; /* blocked by the broker */

    /* Tags, over the Publisher's life; the broker's delivery tag of tag t on
     * the current connection is t - offset. */
    uint64_t next_tag;    /* of the next message published */
    uint64_t offset;
    uint64_t base;        /* every tag < base is acked */
    uint64_t settled;     /* every tag < settled is acked or nacked */
    uint64_t lowest_nack; /* the lowest nacked tag in the window, 0: none */
    unsigned char *ring;  /* the state of tag t at (head + t - base) & (cap - 1) */
    size_t ring_cap;      /* 0 or a power of 2 */
    size_t ring_head;

    /* Tags in flight on dropped connections, not reported yet by a false
     * publisher_wait (their hull): none when lost_lo > lost_hi. */
    uint64_t lost_lo, lost_hi;

    /* Returns (publisher_set_mandatory). */
    bool mandatory;
    const char *return_what; /* NULL: returns are not logged */
    PublisherReturned on_return;
    uint64_t returned;          /* over the Publisher's life */
    uint64_t returns_unlogged;  /* since the last warning */
    char return_example[SHORTSTR_MAX + 1]; /* a routing key of those */
    int64_t return_logged_ms;   /* the last warning, 0: none */
    /* A returned message being read: its header is still to come
     * (return_header), then return_body bytes of body frames. */
    bool in_return, return_header;
    uint64_t return_body;

    unsigned char *buf; /* encoded frames */
    size_t buf_len, buf_cap;
    size_t *order; /* publisher_send: the messages of a round */
    size_t order_cap;

    void (*beat)(void);            /* publisher_set_heartbeat; NULL: none */
    bool (*deadline_passed)(void); /* NULL: never */
};

static void warn_returns(Publisher *p, bool now);

/* ---- the window of tags in flight ---------------------------------------- */

static unsigned char *tag_state(Publisher *p, uint64_t tag)
{
    return &p->ring[(p->ring_head + (size_t)(tag - p->base)) & (p->ring_cap - 1)];
}

/* Room in the ring for n more tags. */
static bool window_reserve(Publisher *p, size_t n)
{
    size_t used = (size_t)(p->next_tag - p->base);
    if (n <= p->ring_cap - used)
        return true;
    size_t cap = p->ring_cap ? p->ring_cap : 1024;
    while (cap - used < n) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    unsigned char *ring = malloc(cap);
    if (!ring)
        return false;
    for (size_t i = 0; i < used; i++)
        ring[i] = p->ring[(p->ring_head + i) & (p->ring_cap - 1)];
    free(p->ring);
    p->ring = ring;
    p->ring_cap = cap;
    p->ring_head = 0;
    return true;
}

/* n tags published (window_reserve'd before). */
static void window_add(Publisher *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t t = p->next_tag++;
        *tag_state(p, t) = TAG_PENDING;
    }
}

static void window_advance(Publisher *p)
{
    while (p->settled < p->next_tag && *tag_state(p, p->settled) != TAG_PENDING)
        p->settled++;
    while (p->base < p->settled && *tag_state(p, p->base) == TAG_ACKED) {
        p->base++;
        p->ring_head = (p->ring_head + 1) & (p->ring_cap - 1);
    }
    if (p->base == p->next_tag)
        p->ring_head = 0;
}

static void window_lowest_nack(Publisher *p)
{
    p->lowest_nack = 0;
    for (uint64_t t = p->base; t < p->next_tag; t++)
        if (*tag_state(p, t) == TAG_NACKED) {
            p->lowest_nack = t;
            return;
        }
}

/* A basic.ack / basic.nack of the broker's delivery tag dtag. True when it
 * settled something. */
static bool window_settle(Publisher *p, uint64_t dtag, bool multiple, bool ack)
{
    if (p->settled >= p->next_tag)
        return false; /* nothing in flight (an unknown tag) */
    uint64_t last = p->next_tag - 1;
    uint64_t lo, hi;
    if (multiple) {
        /* delivery tag 0 with multiple: everything in flight */
        hi = dtag == 0 || dtag > last - p->offset ? last : dtag + p->offset;
        lo = p->settled;
    } else {
        if (dtag == 0 || dtag > last - p->offset || dtag + p->offset < p->settled)
            return false;
        lo = hi = dtag + p->offset;
    }
    bool changed = false;
    unsigned char to = ack ? TAG_ACKED : TAG_NACKED;
    for (uint64_t t = lo; t <= hi; t++) {
        unsigned char *s = tag_state(p, t);
        if (*s != TAG_PENDING)
            continue;
        *s = to;
        changed = true;
        if (!ack && (p->lowest_nack == 0 || t < p->lowest_nack))
            p->lowest_nack = t;
    }
    window_advance(p);
    return changed;
}

/* Forgets the window (the connection is gone); its unacked tags are lost. */
static void window_drop(Publisher *p)
{
    if (p->base < p->next_tag) {
        uint64_t lo = p->base, hi = p->next_tag - 1;
        if (p->lost_lo > p->lost_hi) {
            p->lost_lo = lo;
            p->lost_hi = hi;
        } else {
            p->lost_lo = lo < p->lost_lo ? lo : p->lost_lo;
            p->lost_hi = hi > p->lost_hi ? hi : p->lost_hi;
        }
    }
    p->base = p->settled = p->next_tag;
    p->ring_head = 0;
    p->lowest_nack = 0;
}

/* The tags from `from` on belong to the failing call, which reports them. */
static void lost_reported_from(Publisher *p, uint64_t from)
{
    if (p->lost_lo <= p->lost_hi && p->lost_hi >= from)
        p->lost_hi = from - 1;
}

/* ---- connection ------------------------------------------------------------ */

Publisher *publisher_new(const char *url, const char *exchange, const char *type, bool declare,
                         const TlsConfig *tls)
{
    Publisher *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->declare = declare;
    p->tls.verify = true;
    if (tls && !config_tls_copy(&p->tls, tls)) {
        publisher_free(p);
        return NULL;
    }
    p->url = strdup(url);
    p->exchange = strdup(exchange);
    p->type = strdup(type);
    p->next_tag = p->base = p->settled = 1;
    p->lost_lo = 1; /* none */
    p->lost_hi = 0;
    if (!p->url || !p->exchange || !p->type) {
        publisher_free(p);
        return NULL;
    }
    p->exchange_len = strlen(exchange);
    amqp_conn_flow_init(&p->flow, "publisher", "hooks", "exchange", p->exchange);
    /* amqps: the TLS socket of rabbitmq-c. A URL that does not parse fails
     * at the first connection, with the reason. */
    char *copy = strdup(url); /* amqp_parse_url writes into its argument */
    if (!copy) {
        publisher_free(p);
        return NULL;
    }
    struct amqp_connection_info info;
    amqp_default_connection_info(&info);
    p->raw = amqp_parse_url(copy, &info) == AMQP_STATUS_OK && !info.ssl;
    free(copy);
    return p;
}

/* Drops the connection; broken: its byte stream may end inside a frame, so no
 * polite close. */
static void drop(Publisher *p, bool broken)
{
    if (p->conn) {
        if (broken)
            amqp_conn_abort(p->conn);
        else
            amqp_conn_close(p->conn);
        p->conn = NULL;
        amqp_conn_flow_reset(&p->flow);
    }
    p->in_return = false; /* its frames went with the connection */
    window_drop(p);
}

void publisher_free(Publisher *p)
{
    if (!p)
        return;
    drop(p, false);
    warn_returns(p, true);
    free(p->url);
    free(p->exchange);
    free(p->type);
    free(p->queue);
    config_tls_free(&p->tls);
    free(p->ring);
    free(p->buf);
    free(p->order);
    free(p);
}

void publisher_set_component(Publisher *p, const char *component)
{
    p->flow.component = component;
}

void publisher_set_heartbeat(Publisher *p, void (*beat)(void), bool (*deadline_passed)(void))
{
    p->beat = beat;
    p->deadline_passed = deadline_passed;
}

void publisher_set_mandatory(Publisher *p, const char *what, PublisherReturned on_return)
{
    p->mandatory = true;
    p->return_what = what;
    p->on_return = on_return;
}

uint64_t publisher_returned(const Publisher *p)
{
    return p->returned;
}

void publisher_reset(Publisher *p)
{
    drop(p, false);
    p->lost_lo = 1;
    p->lost_hi = 0;
}

static bool connect_and_declare(Publisher *p, char *err, size_t errlen)
{
    p->conn = amqp_conn_open(p->url, &p->tls, err, errlen);
    if (!p->conn)
        return false;
    if (p->queue) {
        /* declare false: the queue must exist, as it is (a passive declare) */
        amqp_queue_declare(p->conn, CHANNEL, amqp_conn_bytes(p->queue), !p->declare,
                           1 /* durable */, 0, 0, amqp_empty_table);
        if (!amqp_conn_check(amqp_get_rpc_reply(p->conn),
                             p->declare ? "queue.declare" : "queue.declare (passive, it must exist)",
                             err, errlen))
            goto fail;
    } else if (!amqp_conn_declare_exchange(p->conn, p->exchange, p->type, p->declare, err,
                                           errlen)) {
        goto fail;
    }
    amqp_confirm_select(p->conn, CHANNEL);
    if (!amqp_conn_check(amqp_get_rpc_reply(p->conn), "confirm.select", err, errlen))
        goto fail;
    if (p->raw && amqp_get_frame_max(p->conn) <= FRAME_OVERHEAD + 12) {
        snprintf(err, errlen, "negotiated frame size %d is too small",
                 amqp_get_frame_max(p->conn));
        goto fail;
    }
    amqp_conn_flow_reset(&p->flow);
    /* The broker counts this channel's deliveries from 1. */
    p->offset = p->next_tag - 1;
    p->base = p->settled = p->next_tag;
    p->ring_head = 0;
    p->lowest_nack = 0;
    return true;
fail:
    drop(p, false);
    return false;
}

bool publisher_set_queue(Publisher *p, const char *queue)
{
    free(p->queue);
    p->queue = strdup(queue);
    return p->queue != NULL;
}

bool publisher_connect(Publisher *p, char *err, size_t errlen)
{
    return p->conn || connect_and_declare(p, err, errlen);
}

/* ---- reading confirms ------------------------------------------------------ */

typedef enum { READ_FRAME, READ_TIMEOUT, READ_FAILED } ReadResult;

/* A basic.return: counted, and its routing key to the callback (and kept as
 * the example of the next warning). */
static void note_return(Publisher *p, amqp_bytes_t routing_key)
{
    char key[SHORTSTR_MAX + 1];
    size_t n = routing_key.len < SHORTSTR_MAX ? routing_key.len : SHORTSTR_MAX;
    if (n > 0)
        memcpy(key, routing_key.bytes, n);
    key[n] = '\0';
    p->returned++;
    if (p->returns_unlogged++ == 0)
        memcpy(p->return_example, key, n + 1);
    if (p->on_return)
        p->on_return(key);
    p->in_return = p->return_header = true;
}

/* A content frame: the header or a body frame of the returned message being
 * read (skipped); anything else there is a protocol error. */
static ReadResult return_content(Publisher *p, const amqp_frame_t *f, char *err, size_t errlen)
{
    if (p->in_return && p->return_header && f->frame_type == AMQP_FRAME_HEADER) {
        p->return_body = f->payload.properties.body_size;
        p->return_header = false;
    } else if (p->in_return && !p->return_header && f->frame_type == AMQP_FRAME_BODY &&
               f->payload.body_fragment.len <= p->return_body) {
        p->return_body -= f->payload.body_fragment.len;
    } else {
        snprintf(err, errlen, "reading confirms: unexpected frame (type %u) %s",
                 (unsigned)f->frame_type,
                 p->in_return ? "inside a returned message" : "outside a returned message");
        return READ_FAILED;
    }
    p->in_return = p->return_header || p->return_body > 0;
    return READ_FRAME;
}

/* Reads one frame (waiting at most tv) and handles it: confirms settle tags
 * (*progress set when one did). READ_FAILED: the connection is unusable
 * (reason in err), not dropped yet. */
static ReadResult read_frame(Publisher *p, struct timeval *tv, bool *progress, char *err,
                             size_t errlen)
{
    amqp_frame_t frame;
    amqp_maybe_release_buffers(p->conn); /* the previous frame is no longer used */
    int rc = amqp_simple_wait_frame_noblock(p->conn, &frame, tv);
    if (rc == AMQP_STATUS_TIMEOUT)
        return READ_TIMEOUT;
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, errlen, "reading confirms: %s", amqp_error_string2(rc));
        return READ_FAILED;
    }
    if (frame.frame_type == AMQP_FRAME_HEARTBEAT)
        return READ_FRAME;
    if (p->in_return || frame.frame_type != AMQP_FRAME_METHOD)
        return return_content(p, &frame, err, errlen);
    bool was_blocked = p->flow.blocked;
    if (amqp_conn_flow_frame(&p->flow, &frame)) {
        if (was_blocked && !p->flow.blocked)
            *progress = true; /* the wait for confirms starts again */
        return READ_FRAME;
    }
    switch (frame.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *m = frame.payload.method.decoded;
        if (window_settle(p, m->delivery_tag, m->multiple, true))
            *progress = true;
        return READ_FRAME;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        const amqp_basic_return_t *m = frame.payload.method.decoded;
        note_return(p, m->routing_key);
        return READ_FRAME;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *m = frame.payload.method.decoded;
        if (window_settle(p, m->delivery_tag, m->multiple, false))
            *progress = true;
        return READ_FRAME;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = frame.payload.method.decoded;
        snprintf(err, errlen, "channel closed by the server: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        return READ_FAILED;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = frame.payload.method.decoded;
        snprintf(err, errlen, "connection closed by the server: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        return READ_FAILED;
    }
    default:
        return READ_FRAME;
    }
}

/* While the broker blocks the connection, the wait has no time limit
 * (*deadline moves on) except the drain deadline (false, with the reason). */
static bool still_blocked(Publisher *p, int64_t *deadline, char *err, size_t errlen)
{
    if (!p->flow.blocked)
        return true;
    if (p->deadline_passed && p->deadline_passed()) {
        snprintf(err, errlen, "blocked by RabbitMQ (%s) past the drain deadline",
                 p->flow.reason);
        return false;
    }
    *deadline = clock_now_ms() + CONFIRM_TIMEOUT_MS;
    return true;
}

/* The warning about returns not logged yet: now, or when the last one is a
 * minute old. */
static void warn_returns(Publisher *p, bool now)
{
    if (p->returns_unlogged == 0 || !p->return_what)
        return;
    int64_t t = clock_now_ms();
    if (!now && p->return_logged_ms != 0 && t - p->return_logged_ms < RETURN_WARN_MS)
        return;
    log_at(LOG_WARN, "publisher", "exchange %s: %" PRIu64 " %s unroutable in the last minute "
           "(e.g. routing key %s): RabbitMQ routed them to no queue and dropped them; bind "
           "the subscriber's queue to the exchange for the %s it wants", p->exchange,
           p->returns_unlogged, p->return_what, p->return_example, p->return_what);
    p->return_logged_ms = t;
    p->returns_unlogged = 0;
}

/* Reads confirms until every tag <= upto is settled (all_acked: acked; a nack
 * of one of them fails). False with the reason: the connection failed, or
 * nothing was settled for CONFIRM_TIMEOUT_MS. Drops nothing. */
static bool read_confirms(Publisher *p, uint64_t upto, bool all_acked, char *err,
                          size_t errlen)
{
    int64_t deadline = clock_now_ms() + CONFIRM_TIMEOUT_MS;
    for (;;) {
        if (all_acked && p->lowest_nack != 0 && p->lowest_nack <= upto) {
            snprintf(err, errlen, "message %" PRIu64 " nacked by the broker",
                     p->lowest_nack - p->offset);
            return false;
        }
        if ((all_acked ? p->base : p->settled) > upto)
            return true;
        if (!still_blocked(p, &deadline, err, errlen))
            return false;
        int64_t left = deadline - clock_now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "no confirm within %d ms", CONFIRM_TIMEOUT_MS);
            return false;
        }
        /* A second at a time: the thread stays alive for the watchdog. */
        if (left > 1000)
            left = 1000;
        if (p->beat)
            p->beat();
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
        bool progress = false;
        ReadResult r = read_frame(p, &tv, &progress, err, errlen);
        if (r == READ_FAILED)
            return false;
        if (progress)
            deadline = clock_now_ms() + CONFIRM_TIMEOUT_MS;
    }
}

/* read_confirms, then the warning about the returns read (warn_returns). */
static bool await_confirms(Publisher *p, uint64_t upto, bool all_acked, char *err,
                           size_t errlen)
{
    bool ok = read_confirms(p, upto, all_acked, err, errlen);
    warn_returns(p, false);
    return ok;
}

/* Handles what the broker already sent, without waiting. False: the
 * connection failed (reason in err), not dropped yet. Warns about the
 * returns read (warn_returns). */
static bool read_available(Publisher *p, char *err, size_t errlen)
{
    ReadResult r;
    do {
        struct timeval tv = {0, 0};
        bool progress = false;
        r = read_frame(p, &tv, &progress, err, errlen);
    } while (r == READ_FRAME);
    warn_returns(p, false);
    return r == READ_TIMEOUT;
}

/* ---- encoding -------------------------------------------------------------- */

static bool buf_reserve(Publisher *p, size_t n)
{
    return n <= SIZE_MAX - p->buf_len && GROW_RESERVE(p->buf, p->buf_cap, p->buf_len + n, 65536);
}

/* Callers have reserved the room. */
static void put8(Publisher *p, uint8_t v)
{
    p->buf[p->buf_len++] = v;
}

static void put16(Publisher *p, uint16_t v)
{
    put8(p, (uint8_t)(v >> 8));
    put8(p, (uint8_t)v);
}

static void put32_at(Publisher *p, size_t at, uint32_t v)
{
    p->buf[at] = (uint8_t)(v >> 24);
    p->buf[at + 1] = (uint8_t)(v >> 16);
    p->buf[at + 2] = (uint8_t)(v >> 8);
    p->buf[at + 3] = (uint8_t)v;
}

static void put32(Publisher *p, uint32_t v)
{
    put32_at(p, p->buf_len, v);
    p->buf_len += 4;
}

static void put64(Publisher *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p, (uint32_t)v);
}

static void put_bytes(Publisher *p, const void *b, size_t n)
{
    if (n > 0)
        memcpy(p->buf + p->buf_len, b, n);
    p->buf_len += n;
}

/* A short string of at most SHORTSTR_MAX bytes (checked before). */
static void put_shortstr(Publisher *p, const char *s, size_t n)
{
    put8(p, (uint8_t)n);
    put_bytes(p, s, n);
}

/* Starts a frame; returns where its payload starts (its size is written by
 * frame_end). */
static size_t frame_begin(Publisher *p, uint8_t type)
{
    put8(p, type);
    put16(p, CHANNEL);
    put32(p, 0);
    return p->buf_len;
}

static void frame_end(Publisher *p, size_t payload)
{
    put32_at(p, payload - 4, (uint32_t)(p->buf_len - payload));
    put8(p, AMQP_FRAME_END);
}

static bool table_ok(const amqp_table_t *t, int depth);

static bool field_ok(const amqp_field_value_t *v, int depth)
{
    if (v->kind == AMQP_FIELD_KIND_TABLE)
        return table_ok(&v->value.table, depth + 1);
    if (v->kind == AMQP_FIELD_KIND_ARRAY) {
        if (depth >= MAX_TABLE_DEPTH || v->value.array.num_entries < 0 ||
            (v->value.array.num_entries > 0 && !v->value.array.entries))
            return false;
        for (int i = 0; i < v->value.array.num_entries; i++)
            if (!field_ok(&v->value.array.entries[i], depth + 1))
                return false;
    }
    return true;
}

/* Keys are short strings: amqp_encode_table would cut a longer one's length
 * to 8 bits. */
static bool table_ok(const amqp_table_t *t, int depth)
{
    if (depth >= MAX_TABLE_DEPTH || t->num_entries < 0 || (t->num_entries > 0 && !t->entries))
        return false;
    for (int i = 0; i < t->num_entries; i++)
        if (t->entries[i].key.len > SHORTSTR_MAX || !field_ok(&t->entries[i].value, depth))
            return false;
    return true;
}

static size_t opt_len(const char *s)
{
    return s ? strlen(s) : 0;
}

/* The checks that do not depend on the connection. */
static bool check_message(const Outgoing *m, size_t i, char *err, size_t errlen)
{
    const char *what = NULL;
    if (opt_len(m->routing_key) > SHORTSTR_MAX)
        what = "routing key";
    else if (opt_len(m->message_id) > SHORTSTR_MAX)
        what = "message id";
    else if (opt_len(m->content_type) > SHORTSTR_MAX)
        what = "content type";
    if (what) {
        snprintf(err, errlen, "message %zu: %s longer than %d bytes", i, what, SHORTSTR_MAX);
        return false;
    }
    if (m->headers && !table_ok(m->headers, 0)) {
        snprintf(err, errlen, "message %zu: bad headers (a key longer than %d bytes?)", i,
                 SHORTSTR_MAX);
        return false;
    }
    if (m->len > 0 && !m->body) {
        snprintf(err, errlen, "message %zu: no body", i);
        return false;
    }
    return true;
}

static bool check_messages(Publisher *p, const Outgoing *msgs, size_t n, char *err,
                           size_t errlen)
{
    if (p->exchange_len > SHORTSTR_MAX) {
        snprintf(err, errlen, "exchange name longer than %d bytes", SHORTSTR_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!check_message(&msgs[i], i, err, errlen))
            return false;
    return true;
}

/* Appends the frames of one message (checked) to the buffer. */
static bool encode_message(Publisher *p, const Outgoing *m, size_t i, size_t frame_max,
                           char *err, size_t errlen)
{
    const char *rk = m->routing_key ? m->routing_key : "";
    size_t rk_len = strlen(rk), ct_len = opt_len(m->content_type),
           id_len = opt_len(m->message_id);
    size_t chunk = frame_max - FRAME_OVERHEAD;
    size_t nbody = m->len / chunk + (m->len % chunk != 0);
    /* method frame, header frame without its table, body frames */
    size_t need = FRAME_OVERHEAD + 4 + 2 + 1 + p->exchange_len + 1 + rk_len + 1 +
                  FRAME_OVERHEAD + 14 + 1 + ct_len + 1 + 1 + id_len;
    if (m->len > SIZE_MAX - need - FRAME_OVERHEAD * nbody ||
        !buf_reserve(p, need + m->len + FRAME_OVERHEAD * nbody))
        goto oom;

    /* basic.publish: reserved short, exchange, routing key, mandatory and
     * immediate bits */
    size_t at = frame_begin(p, AMQP_FRAME_METHOD);
    put16(p, AMQP_BASIC_CLASS);
    put16(p, (uint16_t)(AMQP_BASIC_PUBLISH_METHOD & 0xFFFF));
    put16(p, 0);
    put_shortstr(p, p->exchange, p->exchange_len);
    put_shortstr(p, rk, rk_len);
    put8(p, p->mandatory ? 1 : 0); /* bit 0: mandatory, bit 1: immediate */
    frame_end(p, at);

    /* content header: class, weight, body size, property flags, properties
     * in the order of their flags */
    at = frame_begin(p, AMQP_FRAME_HEADER);
    put16(p, AMQP_BASIC_CLASS);
    put16(p, 0);
    put64(p, (uint64_t)m->len);
    uint16_t flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    if (m->content_type)
        flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    if (m->headers)
        flags |= AMQP_BASIC_HEADERS_FLAG;
    if (m->message_id)
        flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    put16(p, flags);
    if (m->content_type)
        put_shortstr(p, m->content_type, ct_len);
    if (m->headers) {
        /* a header frame larger than a frame cannot be sent */
        size_t used = p->buf_len - at;
        if (used >= frame_max - FRAME_OVERHEAD) {
            snprintf(err, errlen, "message %zu: its properties are larger than a frame (%zu "
                     "bytes)", i, frame_max);
            return false;
        }
        size_t room = frame_max - FRAME_OVERHEAD - used;
        size_t rest = 1 + 1 + id_len + m->len + FRAME_OVERHEAD * nbody + FRAME_OVERHEAD;
        if (!buf_reserve(p, room + rest))
            goto oom;
        amqp_table_t table = *m->headers;
        amqp_bytes_t out = {p->buf_len + room, p->buf};
        size_t off = p->buf_len;
        int rc = amqp_encode_table(out, &table, &off);
        if (rc == AMQP_STATUS_TABLE_TOO_BIG) {
            snprintf(err, errlen, "message %zu: its properties are larger than a frame (%zu "
                     "bytes)", i, frame_max);
            return false;
        }
        if (rc != AMQP_STATUS_OK) {
            snprintf(err, errlen, "message %zu: headers: %s", i, amqp_error_string2(rc));
            return false;
        }
        p->buf_len = off;
    }
    put8(p, 2); /* delivery mode: persistent */
    if (m->message_id)
        put_shortstr(p, m->message_id, id_len);
    if (p->buf_len - at > frame_max - FRAME_OVERHEAD) {
        snprintf(err, errlen, "message %zu: its properties are larger than a frame (%zu bytes)",
                 i, frame_max);
        return false;
    }
    frame_end(p, at);

    for (size_t done = 0; done < m->len; done += chunk) {
        size_t k = m->len - done < chunk ? m->len - done : chunk;
        at = frame_begin(p, AMQP_FRAME_BODY);
        put_bytes(p, (const char *)m->body + done, k);
        frame_end(p, at);
    }
    return true;
oom:
    snprintf(err, errlen, "out of memory encoding message %zu (%zu bytes)", i, m->len);
    return false;
}

/* Writes the whole buffer; gives up after CONFIRM_TIMEOUT_MS without any
 * byte taken. */
static bool write_buffer(Publisher *p, char *err, size_t errlen)
{
    int fd = amqp_get_sockfd(p->conn);
    if (fd < 0) {
        snprintf(err, errlen, "publish: no socket");
        return false;
    }
    char why[128];
    size_t off = 0;
    int64_t deadline = clock_now_ms() + CONFIRM_TIMEOUT_MS;
    while (off < p->buf_len) {
        ssize_t w = send(fd, p->buf + off, p->buf_len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            deadline = clock_now_ms() + CONFIRM_TIMEOUT_MS;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!still_blocked(p, &deadline, err, errlen))
                return false;
            if (p->beat)
                p->beat();
            int64_t left = deadline - clock_now_ms();
            if (left <= 0) {
                snprintf(err, errlen, "publish: the broker took no data for %d ms",
                         CONFIRM_TIMEOUT_MS);
                return false;
            }
            struct pollfd pfd = {fd, POLLOUT, 0};
            if (poll(&pfd, 1, left > 1000 ? 1000 : (int)left) < 0 && errno != EINTR) {
                snprintf(err, errlen, "publish: poll: %s", strerror_r(errno, why, sizeof why));
                return false;
            }
            continue;
        }
        snprintf(err, errlen, "publish: %s",
                 w == 0 ? "connection closed" : strerror_r(errno, why, sizeof why));
        return false;
    }
    return true;
}

static void buffer_done(Publisher *p)
{
    p->buf_len = 0;
    if (p->buf_cap > KEEP_BUFFER) {
        free(p->buf);
        p->buf = NULL;
        p->buf_cap = 0;
    }
}

/* ---- publishing ------------------------------------------------------------ */

/* Publishes msgs[idx[k]] (idx NULL: msgs[k]) for k < n, checked, on the
 * current connection, connecting first if there is none. Each gets the next
 * tag, in order. PUB_CONN_FAILED: the connection is dropped (a message may
 * have been published); PUB_BAD_MESSAGE: nothing was published. */
static PubResult publish_batch(Publisher *p, const Outgoing *msgs, const size_t *idx, size_t n,
                               char *err, size_t errlen)
{
    if (!p->conn && !connect_and_declare(p, err, errlen))
        return PUB_CONN_FAILED;
    if (!window_reserve(p, n)) {
        snprintf(err, errlen, "out of memory for %zu messages in flight", n);
        return PUB_BAD_MESSAGE;
    }
    if (!p->raw) {
        for (size_t k = 0; k < n; k++) {
            const Outgoing *m = &msgs[idx ? idx[k] : k];
            amqp_basic_properties_t props;
            memset(&props, 0, sizeof props);
            props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
            props.delivery_mode = 2; /* persistent */
            if (m->content_type) {
                props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
                props.content_type = amqp_conn_bytes(m->content_type);
            }
            if (m->message_id) {
                props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
                props.message_id = amqp_conn_bytes(m->message_id);
            }
            if (m->headers) {
                props._flags |= AMQP_BASIC_HEADERS_FLAG;
                props.headers = *m->headers;
            }
            amqp_bytes_t body = {m->len, (void *)m->body};
            int rc = amqp_basic_publish(p->conn, CHANNEL, amqp_conn_bytes(p->exchange),
                                        amqp_conn_bytes(m->routing_key ? m->routing_key : ""),
                                        p->mandatory, 0, &props, body);
            if (rc != AMQP_STATUS_OK) {
                snprintf(err, errlen, "basic.publish: %s", amqp_error_string2(rc));
                drop(p, true);
                return PUB_CONN_FAILED;
            }
            window_add(p, 1);
        }
        return PUB_OK;
    }
    size_t frame_max = (size_t)amqp_get_frame_max(p->conn);
    p->buf_len = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = idx ? idx[k] : k;
        if (!encode_message(p, &msgs[i], i, frame_max, err, errlen)) {
            buffer_done(p);
            return PUB_BAD_MESSAGE;
        }
    }
    bool ok = write_buffer(p, err, errlen);
    buffer_done(p);
    if (!ok) {
        drop(p, true);
        return PUB_CONN_FAILED;
    }
    window_add(p, n);
    return PUB_OK;
}

/* True when the broker sent nothing that is still to read. Only on plain TCP
 * (a TLS layer may hold decrypted bytes the socket no longer shows). */
static bool nothing_to_read(Publisher *p)
{
    if (!p->raw || amqp_data_in_buffer(p->conn) || amqp_frames_enqueued(p->conn))
        return false;
    struct pollfd pfd = {amqp_get_sockfd(p->conn), POLLIN, 0};
    return pfd.fd >= 0 && poll(&pfd, 1, 0) == 0;
}

/* Before publishing on a connection that was idle: handles the confirms that
 * came, and notices a connection closed meanwhile (dropped). One poll() when
 * nothing came. */
static void refresh(Publisher *p)
{
    char err[256];
    if (p->conn && !nothing_to_read(p) && !read_available(p, err, sizeof err)) {
        log_at(LOG_WARN, "publisher", "exchange %s: %s; reconnecting", p->exchange, err);
        drop(p, false);
    }
}

bool publisher_publish(Publisher *p, const Outgoing *msgs, size_t n, uint64_t *last_tag,
                       char *err, size_t errlen)
{
    *last_tag = p->next_tag - 1;
    if (n == 0)
        return true;
    if (!check_messages(p, msgs, n, err, errlen))
        return false;
    refresh(p);
    uint64_t first = p->next_tag;
    bool reused = p->conn != NULL;
    PubResult r = publish_batch(p, msgs, NULL, n, err, errlen);
    if (r == PUB_CONN_FAILED && reused) {
        /* an idle connection closed by the broker: once more on a fresh one */
        lost_reported_from(p, first);
        first = p->next_tag;
        r = publish_batch(p, msgs, NULL, n, err, errlen);
    }
    if (r != PUB_OK) {
        lost_reported_from(p, first);
        return false;
    }
    *last_tag = p->next_tag - 1;
    return true;
}

bool publisher_wait(Publisher *p, uint64_t last_tag, char *err, size_t errlen)
{
    if (last_tag >= p->next_tag) {
        snprintf(err, errlen, "tag %" PRIu64 " not published yet (the last is %" PRIu64 ")",
                 last_tag, p->next_tag - 1);
        return false;
    }
    if (p->lost_lo <= p->lost_hi && p->lost_lo <= last_tag) {
        snprintf(err, errlen, "the connection was lost before messages %" PRIu64 " to %" PRIu64
                 " were confirmed", p->lost_lo,
                 last_tag < p->lost_hi ? last_tag : p->lost_hi);
        p->lost_lo = last_tag + 1; /* reported */
        return false;
    }
    if (!p->conn || last_tag < p->offset + 1)
        return true; /* acked before the connection they went on was dropped */
    if (await_confirms(p, last_tag, true, err, errlen))
        return true;
    drop(p, false);
    if (p->lost_lo <= last_tag)
        p->lost_lo = last_tag + 1; /* reported by this false */
    return false;
}

static bool order_reserve(Publisher *p, size_t n)
{
    return GROW_RESERVE(p->order, p->order_cap, n, 0);
}

/* Publishes and waits; nacked messages again, up to MAX_NACK_ROUNDS rounds. */
static PubResult send_once(Publisher *p, const Outgoing *msgs, size_t n, char *err,
                           size_t errlen)
{
    if (!order_reserve(p, n)) {
        snprintf(err, errlen, "out of memory");
        return PUB_BAD_MESSAGE;
    }
    refresh(p);
    uint64_t first_of_call = p->next_tag;
    const size_t *idx = NULL; /* the first round: every message */
    size_t count = n;
    PubResult r;
    for (int round = 0; round < MAX_NACK_ROUNDS; round++) {
        uint64_t first = p->next_tag;
        r = publish_batch(p, msgs, idx, count, err, errlen);
        if (r != PUB_OK)
            goto fail;
        uint64_t last = p->next_tag - 1;
        r = PUB_CONN_FAILED;
        if (!await_confirms(p, last, false, err, errlen))
            goto fail;
        /* the nacked ones: published again; their tags count as settled */
        size_t nacked = 0;
        if (p->lowest_nack != 0 && p->lowest_nack <= last) {
            for (size_t k = 0; k < count; k++) {
                uint64_t t = first + k;
                if (t < p->base || *tag_state(p, t) != TAG_NACKED)
                    continue;
                *tag_state(p, t) = TAG_ACKED;
                p->order[nacked++] = idx ? idx[k] : k;
            }
            window_lowest_nack(p);
            window_advance(p);
        }
        if (nacked == 0)
            return PUB_OK;
        log_at(LOG_WARN, "publisher", "exchange %s: %zu messages nacked, publishing them again",
               p->exchange, nacked);
        idx = p->order;
        count = nacked;
    }
    snprintf(err, errlen, "messages still nacked after %d rounds", MAX_NACK_ROUNDS);
    r = PUB_CONN_FAILED;
fail:
    if (r == PUB_CONN_FAILED)
        drop(p, false);
    lost_reported_from(p, first_of_call);
    return r;
}

bool publisher_send(Publisher *p, const Outgoing *msgs, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return true;
    if (!check_messages(p, msgs, n, err, errlen))
        return false;
    bool reused = p->conn != NULL;
    PubResult r = send_once(p, msgs, n, err, errlen);
    if (r == PUB_OK)
        return true;
    /* A connection that sat idle may have been closed by the broker (missed
     * heartbeats, a restart): one more try on a fresh one before reporting. */
    return r == PUB_CONN_FAILED && reused && send_once(p, msgs, n, err, errlen) == PUB_OK;
}

void publisher_poll(Publisher *p)
{
    char err[256];
    if (p->conn && !read_available(p, err, sizeof err)) {
        log_at(LOG_WARN, "publisher", "exchange %s: connection lost while idle (%s); "
               "reconnecting at the next publish", p->exchange, err);
        drop(p, false);
    }
}
