/* amqp_source.c — the RabbitMQ consumer (amqp_source.h): transport code
 * behind the pipeline's PipelineSource. It fills a batch from the queue,
 * dead-letters refused messages to the dead-letter exchange and acks a
 * batch; the pipeline owns the ring of batches in flight and the order of
 * apply, publish, confirm and ack.
 *
 * Deliveries are read frame by frame (amqp_simple_wait_frame_noblock: the
 * basic.deliver method, its content header, its body frames) rather than
 * with amqp_consume_message, which assembles a whole body whatever its size:
 * the content header's body size decides first, and of a body over
 * EVENT_MAX_BYTES only its first EVENT_MAX_BYTES bytes are kept (the rest of
 * its frames are read and dropped as they come), so memory stays bounded by
 * batch size x EVENT_MAX_BYTES whatever the broker's message size limit. The
 * frames read on the way are handled too: connection.blocked / unblocked,
 * and basic.cancel (the queue deleted: the login advertises
 * consumer_cancel_notify) or a channel or connection closed by the broker,
 * which end the connection: marked down (/readyz, relationd_connection_up),
 * the batches in flight finished unacknowledged (a delivery tag is only ever
 * acked on the connection it came from), and the source connects, declares
 * and consumes again with the back-off. */
#include "daemon/amqp_source.h"
#include "lib/clock.h"
#include "daemon/amqp_conn.h"
#include "daemon/backoff.h"
#include "daemon/lifecycle.h"
#include "lib/log.h"
#include "daemon/metrics.h"
#include "daemon/pipeline.h"
#include "daemon/publisher.h"
#include "daemon/shared_config.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

typedef struct {
    char *body;       /* the body; of an oversized one, its first EVENT_MAX_BYTES bytes */
    size_t len;       /* bytes in body */
    uint64_t size;    /* the body's size, from its content header */
    char *routing_key;
    uint64_t tag;     /* its delivery tag, for the log */
    size_t msg;       /* its Message in the batch (not for an oversized one) */
    char over[96];    /* an oversized one: its reason ("" otherwise) */
    char redrives[24]; /* its REDRIVES_HEADER, for its dead letter ("": none) */
} Held;

/* One batch of deliveries (a slot of the pipeline's ring): collected, then
 * through the pipeline's stages. */
typedef struct {
    Held *held;
    Message *msgs;
    size_t n;
    uint64_t last_tag;      /* its last delivery tag: acked with `multiple` */
} Batch;

struct AmqpSource {
    char *url;
    TlsConfig tls;
    char *queue;
    char *dlx;
    bool declare;
    amqp_table_t args; /* of queue.declare: the dead-letter exchange, amqp.queue_arguments */
    amqp_table_entry_t *entries;
    int prefetch;
    size_t batch_size;
    amqp_connection_state_t conn;
    AmqpFlow flow; /* of conn */
    Pipeline *pipeline;
    Publisher *dead_letters;
    Backoff down;
    Backoff dlx_down;
    Batch b[PIPELINE_DEPTH]; /* the pipeline's slots */
    pthread_t thread;
    bool started;
    atomic_bool done;
    atomic_bool ready; /* Redis and the hooks were connected, the queue is consumed */
};

/* The arguments of queue.declare: x-dead-letter-exchange, then
 * amqp.queue_arguments (strings, integers, booleans: validated by the
 * configuration). Their strings are the source's own copies. */
static bool queue_arguments(AmqpSource *s, const json_t *extra)
{
    size_t n = 1 + (extra ? json_object_size(extra) : 0);
    s->entries = calloc(n, sizeof *s->entries);
    if (!s->entries)
        return false;
    s->entries[0] = (amqp_table_entry_t){amqp_cstring_bytes("x-dead-letter-exchange"),
                                         {.kind = AMQP_FIELD_KIND_UTF8,
                                          .value.bytes = amqp_conn_bytes(s->dlx)}};
    s->args = (amqp_table_t){1, s->entries};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)extra, key, v) {
        amqp_table_entry_t *e = &s->entries[s->args.num_entries];
        char *k = strdup(key);
        if (!k)
            return false;
        e->key = amqp_conn_bytes(k);
        s->args.num_entries++; /* freed with the source from here */
        if (json_is_string(v)) {
            char *t = strdup(json_string_value(v));
            if (!t)
                return false;
            e->value.kind = AMQP_FIELD_KIND_UTF8;
            e->value.value.bytes = amqp_conn_bytes(t);
        } else if (json_is_boolean(v)) {
            e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
            e->value.value.boolean = json_is_true(v);
        } else {
            e->value.kind = AMQP_FIELD_KIND_I64;
            e->value.value.i64 = json_integer_value(v);
        }
    }
    return true;
}

/* the PipelineSource (pipeline.h) */
static bool fill(void *ctx, char *err, size_t errlen);
static size_t messages(void *ctx, int slot, Message **msgs, size_t *taken);
static bool dead_letter(void *ctx, int slot);
static bool ack(void *ctx, int slot, bool sync);
static void release(void *ctx, int slot);

AmqpSource *amqp_source_new(char *err, size_t errlen)
{
    ConfigRef *ref = shared_config_acquire();
    const Config *cfg = config_ref_get(ref);
    AmqpSource *s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    s->url = strdup(cfg->amqp.url);
    if (!config_tls_copy(&s->tls, &cfg->amqp.tls))
        goto oom;
    s->queue = strdup(cfg->amqp.queue);
    s->dlx = strdup(cfg->amqp.dead_letter_exchange);
    s->prefetch = cfg->amqp.prefetch;
    s->declare = cfg->amqp.declare;
    s->batch_size = (size_t)cfg->batch_size;
    if (s->dlx && !queue_arguments(s, cfg->amqp.queue_arguments))
        goto oom;
    for (int j = 0; j < PIPELINE_DEPTH; j++) {
        s->b[j].held = calloc(s->batch_size, sizeof *s->b[j].held);
        s->b[j].msgs = calloc(s->batch_size, sizeof *s->b[j].msgs);
        if (!s->b[j].held || !s->b[j].msgs)
            goto oom;
    }
    s->pipeline = pipeline_new(&(PipelineSource){SOURCE_AMQP, "amqp source", "unacked", s, fill,
                                                  messages, dead_letter, ack, release});
    if (!s->url || !s->queue || !s->dlx || !s->pipeline)
        goto oom;
    s->dead_letters = publisher_new(s->url, s->dlx, "fanout", s->declare, &s->tls);
    if (!s->dead_letters)
        goto oom;
    publisher_set_component(s->dead_letters, "amqp");
    publisher_set_heartbeat(s->dead_letters, lifecycle_beat, lifecycle_deadline_passed);
    amqp_conn_flow_init(&s->flow, "amqp source", "amqp", "queue", s->queue);
    backoff_init(&s->down, "amqp source", "rabbitmq", cfg->retry_max_ms);
    backoff_init(&s->dlx_down, "amqp source", "dead-letter exchange", cfg->retry_max_ms);
    shared_config_release(ref);
    return s;
oom:
    snprintf(err, errlen, "out of memory");
    shared_config_release(ref);
    amqp_source_free(s);
    return NULL;
}

static void release_held(Held *h)
{
    free(h->body);
    free(h->routing_key);
    memset(h, 0, sizeof *h);
}

static void release(void *ctx, int slot)
{
    AmqpSource *s = ctx;
    Batch *b = &s->b[slot];
    for (size_t i = 0; i < b->n; i++)
        release_held(&b->held[i]);
    b->n = 0;
}

/* The deliveries in hand are not acked: the broker delivers them again. A
 * batch in flight still has its triggers confirmed first, so that its
 * redelivery finds them delivered (pipeline_drop). broken: the connection
 * failed or the broker closed it (no polite close). */
static void disconnect(AmqpSource *s, bool broken)
{
    if (broken)
        amqp_conn_abort(s->conn);
    else
        amqp_conn_close(s->conn);
    s->conn = NULL;
    atomic_store(&s->ready, false);
    amqp_conn_flow_reset(&s->flow);
    pipeline_drop(s->pipeline);
}

static bool connect_and_consume(AmqpSource *s, char *err, size_t errlen)
{
    s->conn = amqp_conn_open(s->url, &s->tls, err, errlen);
    if (!s->conn)
        return false;
    if (!amqp_conn_declare_exchange(s->conn, s->dlx, "fanout", s->declare, err, errlen))
        goto fail;
    /* amqp.declare false: the queue must exist, as it is (a passive declare). */
    amqp_queue_declare(s->conn, 1, amqp_conn_bytes(s->queue), !s->declare, 1 /* durable */, 0, 0,
                       s->declare ? s->args : amqp_empty_table);
    if (!amqp_conn_check(amqp_get_rpc_reply(s->conn),
                         s->declare ? "queue.declare" : "queue.declare (passive, it must exist)",
                         err, errlen))
        goto fail;
    amqp_basic_qos(s->conn, 1, 0, (uint16_t)s->prefetch, 0);
    if (!amqp_conn_check(amqp_get_rpc_reply(s->conn), "basic.qos", err, errlen))
        goto fail;
    amqp_basic_consume(s->conn, 1, amqp_conn_bytes(s->queue), amqp_empty_bytes, 0, 0 /* acks */,
                       0, amqp_empty_table);
    if (!amqp_conn_check(amqp_get_rpc_reply(s->conn), "basic.consume", err, errlen))
        goto fail;
    log_at(LOG_INFO, "amqp source", "consuming queue %s (prefetch %d)", s->queue, s->prefetch);
    amqp_conn_flow_reset(&s->flow);
    return true;
fail:
    amqp_conn_close(s->conn);
    s->conn = NULL;
    return false;
}

static char *copy_bytes(amqp_bytes_t b)
{
    char *p = malloc(b.len + 1);
    if (p) {
        if (b.len)
            memcpy(p, b.bytes, b.len);
        p[b.len] = '\0';
    }
    return p;
}

/* The next frame within ms (0: only one already there): AMQP_STATUS_OK,
 * AMQP_STATUS_TIMEOUT, or the failure. The frames read before are released. */
static int wait_frame(AmqpSource *s, amqp_frame_t *f, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    amqp_maybe_release_buffers(s->conn);
    return amqp_simple_wait_frame_noblock(s->conn, f, &tv);
}

/* A frame that is not part of a delivery: flow control is handled (true);
 * basic.cancel or a close by the broker ends the connection (false, with the
 * reason); anything else is of no use here (true). */
static bool other_frame(AmqpSource *s, const amqp_frame_t *f, char *err, size_t errlen)
{
    if (amqp_conn_flow_frame(&s->flow, f) || f->frame_type != AMQP_FRAME_METHOD)
        return true;
    switch (f->payload.method.id) {
    case AMQP_BASIC_CANCEL_METHOD:
        snprintf(err, errlen, "RabbitMQ cancelled the consumer of queue %s (the queue was "
                 "deleted, or its node went down)", s->queue);
        return false;
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = f->payload.method.decoded;
        snprintf(err, errlen, "the channel was closed by the broker: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        return false;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = f->payload.method.decoded;
        snprintf(err, errlen, "the connection was closed by the broker: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        return false;
    }
    default:
        return true;
    }
}

/* The next frame of a delivery's content (of type, on channel 1): waits as
 * long as the broker sends something (its heartbeats), a second at a time,
 * until a stop is asked (the delivery, unacked, is delivered again). */
static bool content_frame(AmqpSource *s, amqp_frame_t *f, uint8_t type, char *err,
                          size_t errlen)
{
    for (;;) {
        lifecycle_beat();
        int rc = wait_frame(s, f, 1000);
        if (rc == AMQP_STATUS_TIMEOUT && lifecycle_stopping()) {
            snprintf(err, errlen, "stopping inside a delivery's content");
            return false;
        }
        if (rc == AMQP_STATUS_TIMEOUT)
            continue;
        if (rc != AMQP_STATUS_OK) {
            snprintf(err, errlen, "%s", amqp_error_string2(rc));
            return false;
        }
        if (f->frame_type == type && f->channel == 1)
            return true;
        if (!other_frame(s, f, err, errlen))
            return false;
        if (f->channel != 0) {
            snprintf(err, errlen, "frame of type %u on channel %u inside a delivery's content",
                     f->frame_type, f->channel);
            return false;
        }
    }
}

/* After its basic.deliver: the delivery's content header and body frames,
 * into h (body frames past EVENT_MAX_BYTES are dropped as they come). */
static bool read_content(AmqpSource *s, Held *h, char *err, size_t errlen)
{
    amqp_frame_t f;
    if (!content_frame(s, &f, AMQP_FRAME_HEADER, err, errlen))
        return false;
    h->size = f.payload.properties.body_size;
    /* redriven: the count goes with its dead letter, if refused again */
    amqp_conn_header(f.payload.properties.decoded, REDRIVES_HEADER, h->redrives,
                     sizeof h->redrives);
    size_t keep = h->size > EVENT_MAX_BYTES ? EVENT_MAX_BYTES : (size_t)h->size;
    h->body = malloc(keep + 1);
    if (!h->body) {
        snprintf(err, errlen, "out of memory for a message of %zu bytes", keep);
        return false;
    }
    for (uint64_t got = 0; got < h->size;) {
        if (!content_frame(s, &f, AMQP_FRAME_BODY, err, errlen))
            return false;
        amqp_bytes_t frag = f.payload.body_fragment;
        if (frag.len > h->size - got) {
            snprintf(err, errlen, "delivery %llu: more body than its header's %llu bytes",
                     (unsigned long long)h->tag, (unsigned long long)h->size);
            return false;
        }
        if (got < keep) {
            size_t n = keep - (size_t)got < frag.len ? keep - (size_t)got : frag.len;
            memcpy(h->body + got, frag.bytes, n);
        }
        got += frag.len;
    }
    h->len = keep;
    h->body[keep] = '\0';
    if (h->size > EVENT_MAX_BYTES) {
        char tag[24];
        snprintf(h->over, sizeof h->over, "message of %llu bytes over the %d-byte limit",
                 (unsigned long long)h->size, EVENT_MAX_BYTES);
        snprintf(tag, sizeof tag, "%llu", (unsigned long long)h->tag);
        log_kv(LOG_WARN, "amqp source", "message refused", "queue", s->queue, "delivery_tag",
               tag, "reason", h->over, (char *)NULL);
    }
    return true;
}

/* The next delivery into h, waiting at most wait_ms for its basic.deliver:
 * 1, or 0 when none came; -1 when the connection failed or must go (the
 * reason in err; h released). */
static int next_delivery(AmqpSource *s, Held *h, int64_t wait_ms, char *err, size_t errlen)
{
    int64_t deadline = clock_now_ms() + wait_ms;
    for (;;) {
        amqp_frame_t f;
        int64_t left = deadline - clock_now_ms();
        int rc = wait_frame(s, &f, left > 0 ? left : 0);
        if (rc == AMQP_STATUS_TIMEOUT)
            return 0;
        if (rc != AMQP_STATUS_OK) {
            snprintf(err, errlen, "%s", amqp_error_string2(rc));
            return -1;
        }
        if (f.frame_type != AMQP_FRAME_METHOD || f.channel != 1 ||
            f.payload.method.id != AMQP_BASIC_DELIVER_METHOD) {
            if (!other_frame(s, &f, err, errlen))
                return -1;
            continue;
        }
        const amqp_basic_deliver_t *d = f.payload.method.decoded;
        memset(h, 0, sizeof *h);
        h->tag = d->delivery_tag;
        h->routing_key = copy_bytes(d->routing_key);
        if (!h->routing_key)
            snprintf(err, errlen, "out of memory");
        if (!h->routing_key || !read_content(s, h, err, errlen)) {
            /* unacked, and no later ack (multiple) covers it: the connection goes */
            release_held(h);
            return -1;
        }
        return 1;
    }
}

/* Fills the current batch with what is ready: waits for a first delivery
 * only while no batch is in flight, then takes deliveries as long as more
 * are ready. False when the connection failed or must go. */
static bool fill(void *ctx, char *err, size_t errlen)
{
    AmqpSource *s = ctx;
    const Config *cfg = pipeline_config(s->pipeline);
    size_t limit = (size_t)cfg->batch_size < s->batch_size ? (size_t)cfg->batch_size : s->batch_size;
    int64_t first = 0;
    Batch *b = &s->b[pipeline_filling(s->pipeline)];
    int in_flight = pipeline_in_flight(s->pipeline);
    while (b->n < limit && !lifecycle_stopping()) {
        int64_t wait = 0;
        if (b->n == 0 && in_flight == 0)
            wait = 100;
        else if (b->n && clock_now_ms() - first >= cfg->batch_ms)
            break;
        lifecycle_beat();
        int got = next_delivery(s, &b->held[b->n], wait, err, errlen);
        if (got < 0)
            return false;
        if (got > 0) {
            if (b->n == 0)
                first = clock_now_ms();
            b->last_tag = b->held[b->n].tag;
            b->n++;
            continue;
        }
        if (b->n || in_flight)
            break; /* nothing more ready */
        pipeline_idle(s->pipeline);
        publisher_poll(s->dead_letters);
    }
    return true;
}

/* The i-th delivery is refused: oversized, or by the pipeline. */
static bool is_dead(const Batch *b, size_t i)
{
    const Held *h = &b->held[i];
    return h->over[0] || b->msgs[h->msg].dead;
}

/* Publishes the batch's bad messages to the dead-letter exchange, confirmed.
 * False: the drain deadline passed first. */
static bool dead_letter(void *ctx, int slot)
{
    AmqpSource *s = ctx;
    const Batch *b = &s->b[slot];
    size_t ndead = 0, k = 0;
    for (size_t i = 0; i < b->n; i++)
        ndead += is_dead(b, i);
    if (ndead == 0)
        return true;
    Outgoing *out;
    amqp_table_entry_t *entries;
    amqp_table_t *tables;
    bool ok = false;
    char err[512];
    for (;;) {
        out = calloc(ndead, sizeof *out);
        entries = calloc(ndead * 4, sizeof *entries);
        tables = calloc(ndead, sizeof *tables);
        if (out && entries && tables)
            break;
        free(out);
        free(entries);
        free(tables);
        if (!backoff_failed(&s->dlx_down, "out of memory for dead letters"))
            return false;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (!is_dead(b, i))
            continue;
        const Held *h = &b->held[i];
        amqp_table_entry_t *e = &entries[4 * k];
        e[0].key = amqp_cstring_bytes("x-relationd-reason");
        e[0].value.kind = AMQP_FIELD_KIND_UTF8;
        e[0].value.value.bytes = amqp_conn_bytes(h->over[0] ? h->over : b->msgs[h->msg].reason);
        e[1].key = amqp_cstring_bytes("x-relationd-queue");
        e[1].value.kind = AMQP_FIELD_KIND_UTF8;
        e[1].value.value.bytes = amqp_conn_bytes(s->queue);
        /* an oversized one goes with its first bytes only, and its size */
        e[2].key = amqp_cstring_bytes("x-relationd-body-bytes");
        e[2].value.kind = AMQP_FIELD_KIND_I64;
        e[2].value.value.i64 = (int64_t)h->size;
        int n = h->over[0] ? 3 : 2;
        if (h->redrives[0]) {
            e[n].key = amqp_cstring_bytes(REDRIVES_HEADER);
            e[n].value.kind = AMQP_FIELD_KIND_UTF8;
            e[n++].value.value.bytes = amqp_conn_bytes(h->redrives);
        }
        tables[k] = (amqp_table_t){n, e};
        out[k] = (Outgoing){b->held[i].routing_key, NULL, NULL, &tables[k], b->held[i].body,
                            b->held[i].len};
        k++;
    }
    while (!(ok = publisher_send(s->dead_letters, out, ndead, err, sizeof err)))
        if (!backoff_failed(&s->dlx_down, err))
            break;
    if (ok) {
        backoff_ok(&s->dlx_down);
        metrics_dead_letters(SOURCE_AMQP, ndead);
    }
    size_t nover = 0;
    for (size_t i = 0; ok && i < b->n; i++)
        nover += b->held[i].over[0] != '\0';
    metrics_events(SOURCE_AMQP, APPLY_INVALID, nover); /* the pipeline counts the others */
    free(out);
    free(entries);
    free(tables);
    return ok;
}

/* The batch's messages as the pipeline reads them. An oversized message is
 * not among them: it is dead-lettered with its own reason. */
static size_t messages(void *ctx, int slot, Message **msgs, size_t *taken)
{
    AmqpSource *s = ctx;
    Batch *b = &s->b[slot];
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        Held *h = &b->held[i];
        if (h->over[0])
            continue;
        Message *msg = &b->msgs[k];
        msg->data = h->body;
        msg->len = h->len;
        msg->origin = s->queue;
        msg->partition = -1;
        msg->position = (long long)h->tag;
        msg->dead = false;
        h->msg = k++;
    }
    *msgs = b->msgs;
    *taken = b->n;
    return k;
}

/* Its triggers confirmed and its dead letters published: acked with one
 * basic.ack (multiple). False when the ack failed: the connection must go. */
static bool ack(void *ctx, int slot, bool sync)
{
    AmqpSource *s = ctx;
    const Batch *b = &s->b[slot];
    (void)sync; /* a basic.ack has no reply */
    int rc = s->conn ? amqp_basic_ack(s->conn, 1, b->last_tag, 1 /* multiple */)
                     : AMQP_STATUS_CONNECTION_CLOSED;
    if (rc != AMQP_STATUS_OK) {
        /* The broker delivers them again; their events count once. */
        log_at(LOG_WARN, "amqp source", "ack of %zu messages failed: %s; reconnecting", b->n,
               amqp_error_string2(rc));
        return false;
    }
    return true;
}

/* After a failed turn: a batch left unacked (its ack failed, or the drain
 * deadline passed) would be acked by a later ack (multiple), so the
 * connection goes; after a failed completion or ack without a polite
 * close. */
static void turn_failed(AmqpSource *s, PipelineStatus st)
{
    disconnect(s, st != PIPELINE_PUBLISH_FAILED);
}

static void *run(void *arg)
{
    AmqpSource *s = arg;
    char err[512];
    lifecycle_register_thread();
    /* Redis and the hooks first: nothing is taken from the queue before
     * its events can be applied and their triggers published. */
    bool connected = pipeline_connect(s->pipeline);
    while (connected && !lifecycle_stopping()) {
        lifecycle_beat();
        if (!s->conn) {
            if (!connect_and_consume(s, err, sizeof err)) {
                if (!backoff_failed(&s->down, err))
                    break;
                continue;
            }
            backoff_ok(&s->down);
            atomic_store(&s->ready, true);
        }
        PipelineStatus st = pipeline_step(s->pipeline, err, sizeof err);
        if (st == PIPELINE_SOURCE_FAILED) {
            size_t held = 0;
            for (int j = 0; j < PIPELINE_DEPTH; j++)
                held += s->b[j].n;
            log_at(LOG_WARN, "amqp source", "queue %s: %s; %zu unacked messages will be "
                   "delivered again; consuming again", s->queue, err, held);
            disconnect(s, true);
            /* down (/readyz, relationd_connection_up) until consuming again */
            if (!backoff_failed(&s->down, err))
                break;
            continue;
        }
        if (st != PIPELINE_OK)
            turn_failed(s, st);
    }
    /* the batch in hand, and the confirms of those in flight */
    PipelineStatus st = pipeline_drain(s->pipeline);
    if (st != PIPELINE_OK)
        turn_failed(s, st);
    disconnect(s, false); /* prefetched, unacked messages go back to the queue */
    log_at(LOG_INFO, "amqp source", "stopped");
    atomic_store(&s->done, true);
    return NULL;
}

bool amqp_source_start(AmqpSource *s)
{
    if (pthread_create(&s->thread, NULL, run, s) != 0)
        return false;
    s->started = true;
    return true;
}

bool amqp_source_ready(const AmqpSource *s)
{
    return atomic_load(&s->ready);
}

bool amqp_source_done(const AmqpSource *s)
{
    return atomic_load(&s->done);
}

void amqp_source_free(AmqpSource *s)
{
    if (!s)
        return;
    if (s->started)
        pthread_join(s->thread, NULL);
    bool allocated = true;
    for (int j = 0; j < PIPELINE_DEPTH; j++)
        allocated &= s->b[j].held != NULL;
    if (allocated)
        disconnect(s, false);
    publisher_free(s->dead_letters);
    pipeline_free(s->pipeline);
    free(s->url);
    config_tls_free(&s->tls);
    free(s->queue);
    free(s->dlx);
    for (int i = 1; s->entries && i < s->args.num_entries; i++) {
        free(s->entries[i].key.bytes);
        if (s->entries[i].value.kind == AMQP_FIELD_KIND_UTF8)
            free(s->entries[i].value.value.bytes.bytes);
    }
    free(s->entries);
    for (int j = 0; j < PIPELINE_DEPTH; j++) {
        free(s->b[j].held);
        free(s->b[j].msgs);
    }
    free(s);
}
