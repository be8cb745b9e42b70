/* kafka_source.c — the Kafka consumer (kafka_source.h): transport code
 * behind the pipeline's PipelineSource. It fills a batch from the consumer,
 * dead-letters refused messages to the dead-letter topic and commits a
 * batch's offsets; the pipeline owns the ring of batches in flight and the
 * order of apply, publish, confirm and commit. */
#include "daemon/kafka_source.h"
#include "lib/clock.h"
#include "daemon/backoff.h"
#include "daemon/kafka_conf.h"
#include "daemon/lifecycle.h"
#include "lib/log.h"
#include "daemon/metrics.h"
#include "daemon/pipeline.h"
#include "daemon/shared_config.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DLQ_FLUSH_MS 10000
#define KAFKA_QUEUED_KBYTES "4096"
/* librdkafka 2.0 stops fetching every partition while the consumer's queue
 * (one for all of them) holds queued.min.messages, and decides again only
 * when its broker thread wakes, up to a second later: a queue of 1,000
 * (four batches) ran dry during a backlog and the source sat idle. 10,000
 * covers that second at the engine's rate; the bytes cap stays. */
#define KAFKA_QUEUED_MIN "10000"
#define KAFKA_FETCH_MAX_BYTES "4194304"
#define KAFKA_LAG_INTERVAL_MS 5000 /* kafka.properties statistics.interval.ms changes it */
#define KAFKA_LAG_TIMEOUT_MS 2000
#define KAFKA_AWAITED "partition assignment" /* what /readyz says it waits for */

/* One batch of messages (a slot of the pipeline's ring): collected, then
 * through the pipeline's stages. */
typedef struct {
    rd_kafka_message_t **batch;
    Message *msgs;
    size_t n;
} Batch;

struct KafkaSource {
    rd_kafka_t *consumer;
    rd_kafka_t *producer; /* dead letters */
    char *dlq_topic;
    int batch_size;
    int shutdown_timeout_ms;
    Pipeline *pipeline;
    Batch b[PIPELINE_DEPTH]; /* the pipeline's slots */
    time_t down_since; /* all brokers down since (0: up) */
    Backoff dlq_down;
    pthread_t thread;
    bool started;
    pthread_t lag_thread; /* the consumer lag for /metrics */
    bool lag_started;
    atomic_bool lag_stop;
    int lag_interval_ms;
    atomic_bool done;
    atomic_bool ready; /* Redis and the hooks connected, partitions assigned */
};

/* ---- callbacks ---- */

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* A broker connection failure also comes through on_error, with its
     * meaning: logged once, there. */
    if (strcmp(fac, "FAIL") == 0)
        return;
    int l = level <= 3 ? LOG_ERROR : level <= 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;
    log_at(l, "kafka", "%s: %s", fac, buf);
}

/* What an error of librdkafka's means for an operator. */
static const char *meaning(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
        return "a broker connection failed (librdkafka reconnects by itself)";
    case RD_KAFKA_RESP_ERR__RESOLVE:
        return "a broker's name does not resolve (check kafka.brokers)";
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        return "authentication failed (check the sasl.* properties)";
    case RD_KAFKA_RESP_ERR__SSL:
        return "the TLS handshake failed (check the ssl.* properties)";
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return "a topic does not exist (check kafka.topics)";
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return "not authorized (check the ACLs of the user)";
    default:
        return rd_kafka_err2str(err);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    KafkaSource *s = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (!s->down_since)
            s->down_since = time(NULL);
        metrics_component("kafka source", "kafka", false);
        char since[32];
        struct tm tm;
        gmtime_r(&s->down_since, &tm);
        strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
        log_at(LOG_ERROR, "kafka source", "kafka down since %s: %s; consumption paused", since,
               reason);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        log_at(LOG_ERROR, "kafka source", "fatal: %s; stopping", why);
        lifecycle_note_abandoned(); /* exit status 1 */
        lifecycle_request_stop(s->shutdown_timeout_ms);
        return;
    }
    log_kv(LOG_WARN, "kafka source", meaning(err), "code", rd_kafka_err2name(err), "detail",
           reason, (char *)NULL);
}

static void kafka_up(KafkaSource *s)
{
    if (!s->down_since)
        return;
    metrics_component("kafka source", "kafka", true);
    log_at(LOG_INFO, "kafka source", "kafka back after %lld s",
           (long long)(time(NULL) - s->down_since));
    s->down_since = 0;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    *(rd_kafka_resp_err_t *)m->_private = m->err;
}

static void drain(KafkaSource *s);
/* the PipelineSource (pipeline.h) */
static bool fill(void *ctx, char *err, size_t errlen);
static size_t messages(void *ctx, int slot, Message **msgs, size_t *taken);
static bool dead_letter(void *ctx, int slot);
static bool ack(void *ctx, int slot, bool sync);
static void release(void *ctx, int slot);

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    /* A commit that went through: the brokers are back, even when every
     * message had been fetched before they went. */
    if (!err && opaque)
        kafka_up(opaque);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_at(LOG_WARN, "kafka source",
               "commit failed (%s): those messages will be delivered again, and counted once",
               rd_kafka_err2str(err));
    for (int i = 0; !err && offsets && i < offsets->cnt; i++)
        if (offsets->elems[i].err)
            log_at(LOG_WARN, "kafka source",
                   "commit of %s[%d] failed (%s): its messages will be delivered again, and "
                   "counted once", offsets->elems[i].topic, (int)offsets->elems[i].partition,
                   rd_kafka_err2str(offsets->elems[i].err));
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    KafkaSource *s = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        kafka_up(s);
        log_at(LOG_INFO, "kafka source", "assigned %d partitions", parts->cnt);
        /* Ready: a member of the group (with none to own when the group
         * has more members than partitions). */
        atomic_store(&s->ready, true);
        metrics_waiting("kafka source", NULL);
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rc = rd_kafka_assign(rk, parts);
    } else {
        /* Revoked (or lost): finish and commit the work in flight first.
         * Not ready until the next assignment, unless cooperative partitions
         * are revoked from a member that stays in the group. */
        if (!coop || rd_kafka_assignment_lost(rk)) {
            atomic_store(&s->ready, false);
            metrics_waiting("kafka source", KAFKA_AWAITED);
        }
        drain(s);
        log_at(LOG_INFO, "kafka source", "%s %d partitions",
               rd_kafka_assignment_lost(rk) ? "lost" : "revoked", parts->cnt);
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            rc = rd_kafka_assign(rk, NULL);
    }
    if (e) {
        log_at(LOG_ERROR, "kafka source", "rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (rc) {
        log_at(LOG_ERROR, "kafka source", "rebalance: %s", rd_kafka_err2str(rc));
    }
}

/* ---- construction ---- */

/* The defaults, then kafka.properties unchanged (kafka_conf.h). */
static rd_kafka_conf_t *make_conf(const KafkaConfig *k, KafkaSource *s, bool consumer, char *err,
                                  size_t errlen)
{
    const KafkaSetting consumer_settings[] = {
        {"client.id", "relationd"},
        {"group.id", k->group_id},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        /* Prefetch caps (librdkafka's defaults hold up to 64 MiB and 100k
         * messages a partition); kafka.properties may raise them. */
        {"queued.max.messages.kbytes", KAFKA_QUEUED_KBYTES},
        {"queued.min.messages", KAFKA_QUEUED_MIN},
        {"fetch.max.bytes", KAFKA_FETCH_MAX_BYTES},
        {NULL, NULL}};
    static const KafkaSetting producer_settings[] = {
        {"client.id", "relationd"}, {"acks", "all"}, {"linger.ms", "5"}, {NULL, NULL}};
    rd_kafka_conf_t *conf =
        kafka_conf_new(k, consumer ? consumer_settings : producer_settings, err, errlen);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, s);
    if (consumer) {
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
        rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    }
    else
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    return conf;
}

bool kafka_source_check(const KafkaConfig *k, char *err, size_t errlen)
{
    for (int consumer = 0; consumer < 2; consumer++) {
        rd_kafka_conf_t *conf = make_conf(k, NULL, consumer, err, errlen);
        if (!conf)
            return false;
        rd_kafka_conf_destroy(conf);
    }
    return true;
}

bool kafka_source_probe(const KafkaConfig *k, int timeout_ms, char *what, size_t whatlen,
                        char *err, size_t errlen)
{
    static const KafkaSetting quiet[] = {{"client.id", "relationd"}, {"log_level", "0"},
                                         {NULL, NULL}};
    char why[512];
    rd_kafka_conf_t *conf = kafka_conf_new(k, quiet, err, errlen);
    if (!conf)
        return false;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "kafka: %s", why);
        return false;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    bool ok = rc == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!ok)
        snprintf(err, errlen, "kafka %s: %s", k->brokers, rd_kafka_err2str(rc));
    for (int t = 0; ok && t < k->ntopics; t++) {
        bool found = false;
        for (int i = 0; i < md->topic_cnt && !found; i++)
            found = strcmp(md->topics[i].topic, k->topics[t]) == 0 && !md->topics[i].err;
        if (!found) {
            snprintf(err, errlen, "kafka %s: topic %s does not exist", k->brokers, k->topics[t]);
            ok = false;
        }
    }
    if (ok)
        snprintf(what, whatlen, "%d broker%s, %d topic%s found", md->broker_cnt,
                 md->broker_cnt == 1 ? "" : "s", k->ntopics, k->ntopics == 1 ? "" : "s");
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return ok;
}

/* The dead-letter producer or the consumer. */
static rd_kafka_t *new_client(const KafkaConfig *k, KafkaSource *s, bool consumer, char *err,
                              size_t errlen)
{
    char why[512];
    rd_kafka_conf_t *conf = make_conf(k, s, consumer, err, errlen);
    if (!conf)
        return NULL;
    rd_kafka_t *rk = rd_kafka_new(consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf, why,
                                  sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf); /* not taken on failure */
        snprintf(err, errlen, "kafka %s: %s", consumer ? "consumer" : "producer", why);
    }
    return rk; /* conf is owned by rk */
}

KafkaSource *kafka_source_new(char *err, size_t errlen)
{
    ConfigRef *ref = shared_config_acquire();
    const Config *cfg = config_ref_get(ref);
    const KafkaConfig *k = &cfg->kafka;
    KafkaSource *s = calloc(1, sizeof *s);

    if (!s)
        goto oom;
    s->batch_size = cfg->batch_size;
    s->shutdown_timeout_ms = cfg->shutdown_timeout_ms;
    s->lag_interval_ms = KAFKA_LAG_INTERVAL_MS;
    for (int i = 0; i < k->nproperties; i++)
        if (strcmp(k->property_keys[i], "statistics.interval.ms") == 0 &&
            atoi(k->property_values[i]) > 0)
            s->lag_interval_ms = atoi(k->property_values[i]);
    s->dlq_topic = strdup(k->dead_letter_topic);
    for (int j = 0; j < PIPELINE_DEPTH; j++) {
        s->b[j].batch = calloc((size_t)cfg->batch_size, sizeof *s->b[j].batch);
        s->b[j].msgs = calloc((size_t)cfg->batch_size, sizeof *s->b[j].msgs);
        if (!s->b[j].batch || !s->b[j].msgs)
            goto oom;
    }
    metrics_waiting("kafka source", KAFKA_AWAITED);
    s->pipeline = pipeline_new(&(PipelineSource){SOURCE_KAFKA, "kafka source", "uncommitted", s,
                                                  fill, messages, dead_letter, ack,
                                                  release});
    if (!s->dlq_topic || !s->pipeline)
        goto oom;
    backoff_init(&s->dlq_down, "kafka source", "dead-letter topic", cfg->retry_max_ms);

    if (!(s->producer = new_client(k, s, false, err, errlen)) ||
        !(s->consumer = new_client(k, s, true, err, errlen)))
        goto fail;
    rd_kafka_poll_set_consumer(s->consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(k->ntopics);
    for (int i = 0; i < k->ntopics; i++)
        rd_kafka_topic_partition_list_add(topics, k->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rc = rd_kafka_subscribe(s->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rc) {
        snprintf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(rc));
        goto fail;
    }
    shared_config_release(ref);
    return s;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    shared_config_release(ref);
    kafka_source_free(s);
    return NULL;
}

/* ---- the batch ---- */

static void release_batch(Batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        rd_kafka_message_destroy(b->batch[i]);
    b->n = 0;
}

/* Queues the dead letter of message i; false (status set) when refused.
 * drop_value: the value is too large for the dead-letter topic; the headers
 * go alone, with x-relationd-value-bytes telling its size. */
static bool produce_dead_letter(KafkaSource *s, const Batch *b, size_t i, bool drop_value,
                                rd_kafka_resp_err_t *status)
{
    const rd_kafka_message_t *m = b->batch[i];
    char partition[16], offset[24];
    snprintf(partition, sizeof partition, "%d", (int)m->partition);
    snprintf(offset, sizeof offset, "%lld", (long long)m->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_headers_t *in = NULL;
    const void *redrives;
    size_t redrives_len;
    /* refused again after a redrive: the count goes with it (pipeline.h) */
    if (rd_kafka_message_headers(m, &in) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(in, REDRIVES_HEADER, &redrives, &redrives_len) ==
            RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_header_add(h, REDRIVES_HEADER, -1, redrives, (ssize_t)redrives_len);
    rd_kafka_header_add(h, "x-relationd-reason", -1, b->msgs[i].reason, -1);
    rd_kafka_header_add(h, "x-relationd-topic", -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, "x-relationd-partition", -1, partition, -1);
    rd_kafka_header_add(h, "x-relationd-offset", -1, offset, -1);
    if (drop_value) {
        char bytes[24];
        snprintf(bytes, sizeof bytes, "%zu", m->len);
        rd_kafka_header_add(h, "x-relationd-value-bytes", -1, bytes, -1);
    }
    *status = RD_KAFKA_RESP_ERR__IN_PROGRESS;
    rd_kafka_resp_err_t rc = rd_kafka_producev(
        s->producer, RD_KAFKA_V_TOPIC(s->dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(drop_value ? NULL : m->payload, drop_value ? 0 : m->len),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(status), RD_KAFKA_V_END);
    if (rc) {
        rd_kafka_headers_destroy(h); /* not taken on failure */
        *status = rc;
        return false;
    }
    return true;
}

/* Produces the bad messages to the dead-letter topic and waits for their
 * delivery; a message whose delivery failed is produced again after a
 * back-off, one still queued is waited for. False: the drain deadline
 * passed first. */
static bool dead_letter(void *ctx, int slot)
{
    KafkaSource *s = ctx;
    const Batch *b = &s->b[slot];
    size_t ndead = 0;
    for (size_t i = 0; i < b->n; i++)
        ndead += b->msgs[i].dead;
    if (ndead == 0)
        return true;
    rd_kafka_resp_err_t *status;
    bool *drop;
    while (!(status = calloc(b->n, sizeof *status)) | !(drop = calloc(b->n, sizeof *drop))) {
        free(status);
        free(drop);
        if (!backoff_failed(&s->dlq_down, "out of memory for dead letters"))
            return false;
    }
    /* NO_ERROR: delivered (or not a dead letter); IN_PROGRESS: queued; else failed. */
    for (size_t i = 0; i < b->n; i++)
        status[i] = b->msgs[i].dead ? RD_KAFKA_RESP_ERR__FAIL : RD_KAFKA_RESP_ERR_NO_ERROR;
    bool ok = false;
    for (;;) {
        char err[512] = "";
        for (size_t i = 0; i < b->n; i++) {
            if (status[i] == RD_KAFKA_RESP_ERR_NO_ERROR ||
                status[i] == RD_KAFKA_RESP_ERR__IN_PROGRESS)
                continue;
            /* Too large for the topic: permanent, so without the value. */
            drop[i] |= status[i] == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
            if (!produce_dead_letter(s, b, i, drop[i], &status[i]) &&
                status[i] == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && !drop[i]) {
                drop[i] = true;
                produce_dead_letter(s, b, i, true, &status[i]);
            }
            if (status[i] != RD_KAFKA_RESP_ERR__IN_PROGRESS)
                snprintf(err, sizeof err, "produce: %s", rd_kafka_err2str(status[i]));
        }
        rd_kafka_flush(s->producer, DLQ_FLUSH_MS);
        size_t failed = 0, queued = 0;
        for (size_t i = 0; i < b->n; i++) {
            if (status[i] == RD_KAFKA_RESP_ERR__IN_PROGRESS) {
                queued++;
            } else if (status[i] != RD_KAFKA_RESP_ERR_NO_ERROR) {
                failed++;
                if (!err[0])
                    snprintf(err, sizeof err, "%s", rd_kafka_err2str(status[i]));
            }
        }
        if (failed == 0 && queued == 0) {
            ok = true;
            break;
        }
        if (lifecycle_deadline_passed())
            break;
        if (failed == 0)
            continue; /* still queued: flush again rather than producing twice */
        bool only_size = true;
        for (size_t i = 0; i < b->n; i++)
            if (status[i] != RD_KAFKA_RESP_ERR_NO_ERROR &&
                status[i] != RD_KAFKA_RESP_ERR__IN_PROGRESS &&
                (status[i] != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || drop[i]))
                only_size = false;
        if (only_size)
            continue; /* produced again at once, without the value */
        if (!backoff_failed(&s->dlq_down, err))
            break;
    }
    if (ok) {
        backoff_ok(&s->dlq_down);
        metrics_dead_letters(SOURCE_KAFKA, ndead);
    }
    free(drop);
    if (ok || rd_kafka_outq_len(s->producer) == 0)
        free(status);
    /* else the drain deadline passed with dead letters still queued: their
     * delivery reports may yet write to status, so it is left to the exiting
     * process. */
    return ok;
}

/* Stores the offsets after the batch's messages and commits them:
 * asynchronously in the stream (a failure is logged, and a later commit
 * covers it), synchronously before a rebalance or an exit. Never asks for
 * the connection to go. */
static bool ack(void *ctx, int slot, bool sync)
{
    KafkaSource *s = ctx;
    const Batch *b = &s->b[slot];
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < b->n; i++) {
        const rd_kafka_message_t *m = b->batch[i];
        const char *topic = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, topic, m->partition);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(list, topic, m->partition);
        if (tp->offset < m->offset + 1)
            tp->offset = m->offset + 1;
    }
    rd_kafka_resp_err_t rc = rd_kafka_offsets_store(s->consumer, list);
    if (rc && rc != RD_KAFKA_RESP_ERR__STATE)
        log_at(LOG_WARN, "kafka source", "storing offsets: %s", rd_kafka_err2str(rc));
    rc = rd_kafka_commit(s->consumer, list, sync ? 0 : 1);
    if (rc && rc != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_at(LOG_WARN, "kafka source",
               "commit failed (%s): those messages will be delivered again, and counted once",
               rd_kafka_err2str(rc));
    for (int i = 0; sync && !rc && i < list->cnt; i++)
        if (list->elems[i].err)
            log_at(LOG_WARN, "kafka source",
                   "commit of %s[%d] failed (%s): its messages will be delivered again, and "
                   "counted once", list->elems[i].topic, (int)list->elems[i].partition,
                   rd_kafka_err2str(list->elems[i].err));
    rd_kafka_topic_partition_list_destroy(list);
    return true;
}

/* The batch's messages as the pipeline reads them. */
static size_t messages(void *ctx, int slot, Message **msgs, size_t *taken)
{
    KafkaSource *s = ctx;
    Batch *b = &s->b[slot];
    for (size_t i = 0; i < b->n; i++) {
        const rd_kafka_message_t *m = b->batch[i];
        Message *msg = &b->msgs[i];
        msg->data = m->payload ? (const char *)m->payload : "";
        msg->len = m->len;
        msg->origin = rd_kafka_topic_name(m->rkt);
        msg->partition = (int)m->partition;
        msg->position = (long long)m->offset;
        msg->dead = false;
    }
    *msgs = b->msgs;
    *taken = b->n;
    return b->n;
}

static void release(void *ctx, int slot)
{
    KafkaSource *s = ctx;
    release_batch(&s->b[slot]);
}

/* Everything in hand finished and committed (a rebalance, the exit); past
 * the drain deadline, what is left stays uncommitted. */
static void drain(KafkaSource *s)
{
    if (pipeline_drain(s->pipeline) != PIPELINE_OK)
        pipeline_drop(s->pipeline);
}

/* ---- the thread ---- */

/* Fills the current batch with what is ready: waits for a first message
 * only while no batch is in flight, then takes messages as long as more are
 * ready (a batch goes as soon as the source has nothing more ready). A
 * rebalance inside the poll drains the ring: the batch and the count in
 * flight are asked again after it. */
static bool fill(void *ctx, char *err, size_t errlen)
{
    KafkaSource *s = ctx;
    (void)err;
    (void)errlen;
    /* Copied: a rebalance inside the poll below may switch (and free) the
     * configuration. */
    const Config *cfg = pipeline_config(s->pipeline);
    const int batch_ms = cfg->batch_ms;
    const int limit = cfg->batch_size < s->batch_size ? cfg->batch_size : s->batch_size;
    int64_t first = 0;
    for (;;) {
        Batch *b = &s->b[pipeline_filling(s->pipeline)]; /* a rebalance may have emptied it */
        int in_flight = pipeline_in_flight(s->pipeline);
        if (b->n >= (size_t)limit || lifecycle_stopping())
            return true;
        int timeout = 0;
        if (b->n == 0 && in_flight == 0)
            timeout = 100;
        else if (b->n && clock_now_ms() - first >= batch_ms)
            return true;
        lifecycle_beat();
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer, timeout);
        if (!m) {
            if (s->b[pipeline_filling(s->pipeline)].n || pipeline_in_flight(s->pipeline))
                return true; /* nothing more ready */
            pipeline_idle(s->pipeline);
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_at(LOG_WARN, "kafka source", "consume: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        kafka_up(s);
        b = &s->b[pipeline_filling(s->pipeline)];
        if (b->n == 0)
            first = clock_now_ms();
        b->batch[b->n++] = m;
    }
}

static void *run(void *arg)
{
    KafkaSource *s = arg;
    lifecycle_register_thread();
    /* Redis and the hooks first: nothing is fetched before its events can
     * be applied and their triggers published. */
    bool connected = pipeline_connect(s->pipeline);
    while (connected && !lifecycle_stopping()) {
        lifecycle_beat();
        pipeline_turn(s->pipeline);
    }
    drain(s);
    /* Leaves the group: revokes (nothing left in flight), commits nothing more. */
    rd_kafka_resp_err_t rc = rd_kafka_consumer_close(s->consumer);
    if (rc)
        log_at(LOG_WARN, "kafka source", "close: %s", rd_kafka_err2str(rc));
    log_at(LOG_INFO, "kafka source", "stopped");
    atomic_store(&s->done, true);
    return NULL;
}

/* ---- the consumer lag ---- */

/* The lag of each assigned partition (its high watermark less the group's
 * committed offset), asked of the brokers: it keeps rising while the source
 * thread waits for an outage. A round that cannot ask every partition keeps
 * the last figures. */
static void refresh_lag(KafkaSource *s)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(s->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
        return;
    MetricLag *lags = calloc((size_t)parts->cnt + 1, sizeof *lags);
    bool ok = lags && (parts->cnt == 0 ||
                       rd_kafka_committed(s->consumer, parts, KAFKA_LAG_TIMEOUT_MS) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR);
    int n = 0;
    for (int i = 0; ok && i < parts->cnt && !atomic_load(&s->lag_stop); i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t lo, hi;
        ok = tp->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
             rd_kafka_query_watermark_offsets(s->consumer, tp->topic, tp->partition, &lo, &hi,
                                              KAFKA_LAG_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR;
        int64_t from = tp->offset >= 0 ? tp->offset : lo; /* nothing committed: the start */
        lags[n++] = (MetricLag){tp->topic, tp->partition, hi > from ? hi - from : 0};
    }
    if (ok && !atomic_load(&s->lag_stop))
        metrics_kafka_lags(lags, n);
    free(lags);
    rd_kafka_topic_partition_list_destroy(parts);
}

static void *lag_run(void *arg)
{
    KafkaSource *s = arg;
    for (;;) {
        for (int waited = 0; waited < s->lag_interval_ms; waited += 100) {
            if (atomic_load(&s->lag_stop) || lifecycle_stopping())
                return NULL;
            lifecycle_sleep_ms(100);
        }
        refresh_lag(s);
    }
}

bool kafka_source_start(KafkaSource *s)
{
    if (pthread_create(&s->thread, NULL, run, s) != 0)
        return false;
    s->started = true;
    /* without it only /metrics misses the lag */
    if (pthread_create(&s->lag_thread, NULL, lag_run, s) == 0)
        s->lag_started = true;
    else
        log_at(LOG_WARN, "kafka source", "no thread for the consumer lag: it is not reported");
    return true;
}

bool kafka_source_ready(const KafkaSource *s)
{
    return atomic_load(&s->ready);
}

bool kafka_source_done(const KafkaSource *s)
{
    return atomic_load(&s->done);
}

void kafka_source_free(KafkaSource *s)
{
    if (!s)
        return;
    atomic_store(&s->lag_stop, true);
    if (s->lag_started)
        pthread_join(s->lag_thread, NULL);
    if (s->started)
        pthread_join(s->thread, NULL);
    for (int k = 0; k < PIPELINE_DEPTH; k++)
        if (s->b[k].batch)
            release_batch(&s->b[k]);
    if (s->consumer)
        rd_kafka_destroy(s->consumer);
    if (s->producer) {
        rd_kafka_flush(s->producer, 2000);
        rd_kafka_destroy(s->producer);
    }
    pipeline_free(s->pipeline);
    free(s->dlq_topic);
    for (int k = 0; k < PIPELINE_DEPTH; k++) {
        free(s->b[k].batch);
        free(s->b[k].msgs);
    }
    free(s);
}
