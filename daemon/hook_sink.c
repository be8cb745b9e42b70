/* hook_sink.c — a hook's destination by kind (hook_sink.h): amqp through a
 * Publisher, kafka through an idempotent librdkafka producer, http through
 * hook_http. The amqp and kafka failures wait a back-off (daemon/backoff.c:
 * 100 ms doubling up to the cap, with jitter); http's are hook_http's. */
#include "daemon/hook_sink.h"
#include "daemon/backoff.h"
#include "daemon/kafka_conf.h"
#include "daemon/lifecycle.h"
#include "daemon/metrics.h"
#include "daemon/publisher.h"
#include "lib/clock.h"
#include "lib/grow.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest wait for a Kafka batch's delivery reports; never past the
 * drain deadline (engine.shutdown_timeout_ms): the batch is then purged and
 * stays in the backlog. */
#define KAFKA_FLUSH_MS 30000

struct HookSink {
    HookKind kind;
    char name[HOOK_NAME_MAX + 1];
    char who[HOOK_NAME_MAX + 8]; /* "hook <name>": the back-off's log and relationd_up */
    Backoff down;          /* amqp, kafka */
    Publisher *pub;        /* amqp */
    char *queue;           /* amqp with a queue: the routing key */
    bool declare;          /* amqp: declared (true) or must exist */
    Outgoing *out;         /* amqp: the batch's messages */
    size_t out_cap;
    rd_kafka_t *rk;        /* kafka */
    rd_kafka_topic_t *topic;
    char *topic_name;
    size_t pending;        /* kafka: the batch's delivery reports still due */
    HookHttp *http;        /* http */
    HookTrigger *ht;       /* http: the batch */
    size_t ht_cap;
};

void hook_sink_routing_key(const HookDef *def, const char *topic_key, const char *database,
                           const char *event_type, char *out, size_t len)
{
    if (def->kind == HOOK_AMQP && def->queue)
        snprintf(out, len, "%s", def->queue);
    else if (def->kind == HOOK_AMQP && def->exchange_type == HOOK_EXCHANGE_DIRECT)
        snprintf(out, len, "%s.%s", database, event_type);
    else
        snprintf(out, len, "%s", topic_key);
}

/* Kafka: each message's delivery report into the int its opaque points to
 * (0 delivered, else the error code), counted off the sink's pending. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    HookSink *s = opaque;
    if (m->_private) {
        *(int *)m->_private = m->err ? (int)m->err : 0;
        if (s->pending)
            s->pending--;
    }
}

static bool kafka_open(HookSink *s, const HookDef *def, char *err, size_t errlen)
{
    KafkaConfig k = {0};
    k.brokers = def->brokers;
    k.property_keys = def->property_keys;
    k.property_values = def->property_values;
    k.nproperties = def->nproperties;
    static const KafkaSetting settings[] = {{"enable.idempotence", "true"},
                                            {"acks", "all"},
                                            {"linger.ms", "5"},
                                            {NULL, NULL}};
    char why[512];
    rd_kafka_conf_t *conf = kafka_conf_new(&k, settings, why, sizeof why);
    if (!conf) {
        snprintf(err, errlen, "hook %s: %s", def->name, why);
        return false;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, s);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "hook %s: kafka producer: %s", def->name, why);
        return false;
    }
    s->topic_name = strdup(def->topic);
    s->topic = s->topic_name ? rd_kafka_topic_new(s->rk, def->topic, NULL) : NULL;
    if (!s->topic) {
        snprintf(err, errlen, "hook %s: out of memory for the kafka topic", def->name);
        return false;
    }
    return true;
}

HookSink *hook_sink_new(const HookDef *def, int max_ms, char *err, size_t errlen)
{
    HookSink *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->kind = def->kind;
    snprintf(s->name, sizeof s->name, "%s", def->name);
    snprintf(s->who, sizeof s->who, "hook %s", def->name);
    backoff_init(&s->down, s->who, "destination", max_ms);
    switch (def->kind) {
    case HOOK_AMQP: {
        const char *type = def->exchange_type == HOOK_EXCHANGE_DIRECT ? "direct" : "topic";
        s->declare = def->declare;
        s->queue = def->queue ? strdup(def->queue) : NULL;
        s->pub = publisher_new(def->url, def->queue ? "" : def->exchange, type, def->declare,
                               &def->tls);
        if (!s->pub || (def->queue && (!s->queue || !publisher_set_queue(s->pub, def->queue)))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        publisher_set_heartbeat(s->pub, NULL, lifecycle_deadline_passed);
        if (!def->queue)
            publisher_set_mandatory(s->pub, "triggers", metrics_trigger_unroutable);
        break;
    }
    case HOOK_KAFKA:
        if (!kafka_open(s, def, err, errlen))
            goto fail;
        break;
    case HOOK_HTTP:
        if (!(s->http = hook_http_new(def, err, errlen)))
            goto fail;
        break;
    }
    return s;
fail:
    hook_sink_free(s);
    return NULL;
}

void hook_sink_free(HookSink *s)
{
    if (!s)
        return;
    publisher_free(s->pub);
    if (s->topic)
        rd_kafka_topic_destroy(s->topic);
    if (s->rk) {
        /* past the drain deadline nothing more is awaited */
        if (lifecycle_deadline_passed() ||
            rd_kafka_flush(s->rk, 1000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(s->rk);
    }
    free(s->queue);
    free(s->topic_name);
    hook_http_free(s->http);
    free(s->out);
    free(s->ht);
    free(s);
}

bool hook_sink_connect(HookSink *s, char *err, size_t errlen)
{
    return s->kind != HOOK_AMQP || publisher_connect(s->pub, err, errlen);
}

bool hook_sink_probe(HookSink *s, char *what, size_t whatlen, char *err, size_t errlen)
{
    switch (s->kind) {
    case HOOK_AMQP:
        if (!publisher_connect(s->pub, err, errlen))
            return false;
        snprintf(what, whatlen, "logged in, %s %s", s->queue ? "queue" : "exchange",
                 s->declare ? "declared" : "exists");
        return true;
    case HOOK_KAFKA: /* kafka_source_probe: no producer's metadata request, which a
                      * broker may answer by creating the topic */
        snprintf(err, errlen, "kafka hooks are probed by kafka_source_probe");
        return false;
    case HOOK_HTTP:
        if (!hook_http_probe(s->http, err, errlen))
            return false;
        snprintf(what, whatlen, "connected, no request sent");
        return true;
    }
    return false;
}

static void retry(HookSink *s, HookOutcome *out, const char *reason, const char *why)
{
    out->verdict = HOOK_RETRY;
    out->reason = reason;
    snprintf(out->detail, sizeof out->detail, "%s", why);
    out->retry_ms = backoff_note(&s->down, why, s->down.max_ms);
    out->failures = (unsigned)s->down.attempt;
}

static void amqp_send(HookSink *s, const BacklogEntry *t, size_t n, HookOutcome *out)
{
    char err[512];
    if (!GROW_RESERVE(s->out, s->out_cap, n, 0)) {
        retry(s, out, "memory", "out of memory for a batch");
        return;
    }
    for (size_t i = 0; i < n; i++)
        s->out[i] = (Outgoing){t[i].rk, t[i].id, "application/json", NULL, t[i].body, t[i].len};
    if (publisher_send(s->pub, s->out, n, err, sizeof err))
        out->verdict = HOOK_DELIVERED;
    else
        retry(s, out, "broker", err);
}

static void kafka_send(HookSink *s, const BacklogEntry *t, size_t n, HookOutcome *out)
{
    int *status = calloc(n, sizeof *status);
    if (!status) {
        retry(s, out, "memory", "out of memory for a batch");
        return;
    }
    char why[256] = "";
    size_t produced = 0;
    s->pending = 0;
    for (; produced < n; produced++) {
        status[produced] = -1; /* no report yet */
        rd_kafka_resp_err_t e = rd_kafka_producev(
            s->rk, RD_KAFKA_V_RKT(s->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(t[produced].key, strlen(t[produced].key)),
            RD_KAFKA_V_VALUE((void *)t[produced].body, t[produced].len),
            RD_KAFKA_V_HEADER("message_id", t[produced].id, -1),
            RD_KAFKA_V_HEADER("event_type", t[produced].event_type, -1),
            RD_KAFKA_V_OPAQUE(&status[produced]), RD_KAFKA_V_END);
        if (e) {
            snprintf(why, sizeof why, "kafka topic %s: %s", s->topic_name, rd_kafka_err2str(e));
            break;
        }
        s->pending++;
    }
    /* Every report awaited (the status array must outlive them). */
    int64_t until = clock_now_ms() + KAFKA_FLUSH_MS;
    while (s->pending > 0 && clock_now_ms() < until && !lifecycle_deadline_passed())
        rd_kafka_poll(s->rk, 100);
    bool all = produced == n;
    for (size_t i = 0; i < produced; i++)
        if (status[i] != 0) {
            all = false;
            if (!why[0])
                snprintf(why, sizeof why, "kafka topic %s: %s", s->topic_name,
                         status[i] < 0 ? "no delivery report in time"
                                       : rd_kafka_err2str((rd_kafka_resp_err_t)status[i]));
        }
    if (s->pending > 0) {
        /* reports still due would write into status: purge, and take the
         * purged messages' reports (at once; the produce requests left in
         * flight, which may take request.timeout.ms, are not waited for) */
        rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        while (s->pending > 0)
            rd_kafka_poll(s->rk, 100);
    }
    free(status);
    if (all)
        out->verdict = HOOK_DELIVERED;
    else
        retry(s, out, "broker", why);
}

static void http_send(HookSink *s, const BacklogEntry *t, size_t n, HookOutcome *out)
{
    if (!GROW_RESERVE(s->ht, s->ht_cap, n, 0)) {
        retry(s, out, "memory", "out of memory for a batch");
        return;
    }
    for (size_t i = 0; i < n; i++)
        s->ht[i] = (HookTrigger){t[i].id, t[i].body, t[i].len};
    hook_http_send(s->http, s->ht, n, out);
}

void hook_sink_send(HookSink *s, const BacklogEntry *t, size_t n, HookOutcome *out)
{
    memset(out, 0, sizeof *out);
    int64_t start = clock_now_ms();
    snprintf(out->webhook_id, sizeof out->webhook_id, "%s", n ? t[0].id : "");
    switch (s->kind) {
    case HOOK_AMQP: amqp_send(s, t, n, out); break;
    case HOOK_KAFKA: kafka_send(s, t, n, out); break;
    case HOOK_HTTP: http_send(s, t, n, out); return;
    }
    out->elapsed_ms = clock_now_ms() - start;
    if (out->verdict == HOOK_DELIVERED)
        backoff_ok(&s->down);
}
