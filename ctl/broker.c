/* broker.c — the commands that talk to the brokers: watch (the triggers
 * on the hook exchange, through a queue of its own), send (JSON-lines
 * events to Kafka or AMQP as an upstream service should) and redrive
 * (dead letters back to their source, each once). The Kafka clients are
 * configured as the daemon's (kafka_conf.h: kafka.brokers, the settings of
 * each client, kafka.properties); AMQP goes through the daemon's connection
 * and confirmed publisher (amqp_conn.h, publisher.h). One thread: the
 * librdkafka callbacks run inside its poll and flush calls, and the state
 * they write (the last error, the failed deliveries) is this file's, for
 * the one command a process runs. */
#include "ctl/ctl.h"
#include "daemon/amqp_conn.h"
#include "daemon/kafka_conf.h"
#include "lib/clock.h"
#include "daemon/pipeline.h"
#include "daemon/publisher.h"
#include "lib/grow.h"

#include <librdkafka/rdkafka.h>
#include <jansson.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- watch ---- */

static volatile sig_atomic_t watch_stop;

static void on_watch_signal(int sig)
{
    (void)sig;
    watch_stop = 1;
}

static const char *text_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "-";
}

/* One trigger as a line a person reads: time, relation, side, kind,
 * profile -> counterpart, the threshold crossed. */
static void readable(const char *body, size_t len)
{
    json_error_t je;
    json_t *t = json_loadb(body, len, 0, &je);
    const json_t *d = t ? json_object_get(t, "event_data") : NULL;
    if (!json_is_object(d)) {
        printf("(not a trigger: %.*s)\n", (int)(len > 200 ? 200 : len), body);
        json_decref(t);
        return;
    }
    time_t now = time(NULL);
    struct tm tm;
    char at[16];
    localtime_r(&now, &tm);
    strftime(at, sizeof at, "%H:%M:%S", &tm);
    printf("%s %-16s %-7s %-9s %s -> %s", at, text_of(d, "relation"), text_of(d, "direction"),
           text_of(d, "kind"), text_of(t, "profile_id"),
           text_of(json_object_get(d, "counterpart"), "profile_id"));
    const json_t *th = json_object_get(d, "threshold");
    if (json_is_object(th)) {
        char *v = json_dumps(json_object_get(th, "value"), JSON_ENCODE_ANY);
        const json_t *prop = json_object_get(th, "property");
        const json_t *name = json_object_get(th, "name");
        printf("  %s%s%s %s %s", text_of(th, "stat"), json_is_string(prop) ? " of " : "",
               json_is_string(prop) ? json_string_value(prop) : "", text_of(th, "crossing"),
               v ? v : "?");
        if (json_is_string(name))
            printf(" (%s)", json_string_value(name));
        free(v);
    }
    putchar('\n');
    json_decref(t);
}

/* Triggers as they are published: a queue of its own (exclusive, gone with
 * the connection) bound to the hooks exchange with PATTERN (default: all). */
int cmd_watch(const Config *cfg, const Command *c, int argc, char **argv)
{
    char err[512], *pos[1];
    const char *pattern = "#";
    bool json = !isatty(1);
    int npos;
    const Opt opts[] = {{"--json", &json, NULL}, {0}};
    if (!parse_args(c, argc, argv, opts, pos, 0, 1, &npos))
        return EXIT_USAGE;
    if (npos)
        pattern = pos[0];
    if (!cfg->has_hooks) {
        fprintf(stderr, "relationctl: watch needs a hook of kind amqp with a topic exchange "
                        "(the hooks section: the exchange to watch)\n");
        return EXIT_USAGE;
    }
    amqp_connection_state_t conn = amqp_conn_open(cfg->hooks_url, &cfg->hooks_tls, err, sizeof err);
    if (!conn) {
        fatal(err);
        return EXIT_FATAL;
    }
    amqp_queue_declare_ok_t *q = amqp_queue_declare(conn, 1, amqp_empty_bytes, 0, 0, 1, 1,
                                                    amqp_empty_table);
    bool ok = amqp_conn_check(amqp_get_rpc_reply(conn), "queue.declare", err, sizeof err);
    amqp_bytes_t queue = amqp_empty_bytes;
    if (ok && q)
        queue = amqp_bytes_malloc_dup(q->queue);
    if (ok) {
        amqp_queue_bind(conn, 1, queue, amqp_conn_bytes(cfg->hooks_exchange),
                        amqp_conn_bytes(pattern), amqp_empty_table);
        ok = amqp_conn_check(amqp_get_rpc_reply(conn), "queue.bind", err, sizeof err);
    }
    if (ok) {
        amqp_basic_consume(conn, 1, queue, amqp_empty_bytes, 0, 1 /* no ack */, 1,
                           amqp_empty_table);
        ok = amqp_conn_check(amqp_get_rpc_reply(conn), "basic.consume", err, sizeof err);
    }
    if (!ok) {
        fatal(err);
        amqp_bytes_free(queue);
        amqp_conn_close(conn);
        return EXIT_FATAL;
    }
    fprintf(stderr, "watching %s for %s (Ctrl-C stops)\n", cfg->hooks_exchange, pattern);
    signal(SIGINT, on_watch_signal);
    signal(SIGTERM, on_watch_signal);
    unsigned long n = 0;
    int rc = 0;
    while (!watch_stop) {
        amqp_envelope_t env;
        struct timeval tv = {0, 200000};
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            amqp_conn_check(r, "consume", err, sizeof err);
            fatal(err);
            rc = EXIT_FATAL;
            break;
        }
        if (json) {
            fwrite(env.message.body.bytes, 1, env.message.body.len, stdout);
            putchar('\n');
        } else {
            readable(env.message.body.bytes, env.message.body.len);
        }
        fflush(stdout);
        n++;
        amqp_destroy_envelope(&env);
    }
    fprintf(stderr, "%lu triggers\n", n);
    amqp_bytes_free(queue);
    amqp_conn_close(conn);
    return rc;
}

/* ---- Kafka clients (send, redrive) ---- */

/* The last error librdkafka reported (a broker unreachable, a TLS handshake
 * or a login that failed, a delivery refused), told with the error that ends
 * a command. Written by the callbacks, which run in this thread, inside
 * rd_kafka_poll, rd_kafka_flush and rd_kafka_consumer_poll. */
static char kafka_error[512];
static atomic_long send_failed;
static atomic_llong send_report_ms; /* when the last delivery report came */

/* The input lines (send: each message's opaque) whose delivery failed, or
 * that were purged unconfirmed; nlost may exceed the lines kept (out of
 * memory: counted only). */
static long *lost_lines;
static size_t nlost, lost_cap;

static void on_sent(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk, (void)opaque;
    atomic_store(&send_report_ms, clock_now_ms());
    if (m->err) {
        atomic_fetch_add(&send_failed, 1);
        /* a purge's own error says nothing of why: the one before it does */
        if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
            m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
            snprintf(kafka_error, sizeof kafka_error, "%s", rd_kafka_err2str(m->err));
        long line = (long)(intptr_t)m->_private;
        /* without room, a lost line is counted, not listed */
        if (line > 0 && (nlost < lost_cap ||
                         (nlost == lost_cap && GROW_RESERVE(lost_lines, lost_cap, nlost + 1, 64))))
            lost_lines[nlost] = line;
        if (line > 0)
            nlost++;
    }
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk, (void)opaque;
    (void)err; /* the reason says it, with the broker */
    snprintf(kafka_error, sizeof kafka_error, "%s", reason);
}

/* librdkafka's own log lines stay quiet: each failure comes through
 * on_kafka_error, and a property meant for the daemon's consumer only is not
 * worth a warning on a producer. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac, (void)buf;
}

/* The brokers' first answer (send, redrive), and each offsets request of
 * redrive. */
#define KAFKA_CONNECT_MS 5000

/* Waits at most KAFKA_CONNECT_MS for a broker of kafka.brokers to answer a
 * metadata request for topic. True with the metadata in *md (the caller
 * destroys it); false, the reason printed with librdkafka's last error (a
 * connection refused, a TLS handshake or a login that failed). */
static bool kafka_reach(rd_kafka_t *rk, const Config *cfg, const char *topic,
                        const struct rd_kafka_metadata **md)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t rc =
        rkt ? rd_kafka_metadata(rk, 0, rkt, md, KAFKA_CONNECT_MS) : rd_kafka_last_error();
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (rc) {
        rd_kafka_poll(rk, 0); /* the errors so far, to on_kafka_error */
        fprintf(stderr, "relationctl: kafka.brokers %s: no broker answered within %d s (%s)\n",
                cfg->kafka.brokers, KAFKA_CONNECT_MS / 1000,
                kafka_error[0] ? kafka_error : rd_kafka_err2str(rc));
        return false;
    }
    return true;
}

/* relationctl's producer: acks=all, and what kafka_conf_new gives every client. */
static const KafkaSetting ctl_producer[] = {
    {"client.id", "relationctl"}, {"acks", "all"}, {"linger.ms", "5"}, {NULL, NULL}};

/* A Kafka client of relationctl (kafka.brokers, settings, kafka.properties:
 * kafka_conf.h); NULL with the reason printed. */
static rd_kafka_t *kafka_client(const Config *cfg, rd_kafka_type_t type,
                                const KafkaSetting *settings)
{
    char err[512];
    rd_kafka_conf_t *conf = kafka_conf_new(&cfg->kafka, settings, err, sizeof err);
    if (!conf) {
        fprintf(stderr, "relationctl: %s\n", err);
        return NULL;
    }
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set_dr_msg_cb(conf, on_sent);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf); /* not taken on failure */
        fprintf(stderr, "relationctl: kafka: %s\n", err);
    }
    return rk;
}

/* ---- send ---- */

/* How long send waits without a delivery report before it gives up on the
 * messages not confirmed. */
#define SEND_STALL_MS 30000

/* Serves delivery reports: once (all false), or until none is outstanding
 * (all). False when messages are outstanding and no report came for
 * SEND_STALL_MS since since_ms (or since the last report after it). */
static bool send_wait(rd_kafka_t *rk, int64_t since_ms, bool all)
{
    do {
        if (all)
            rd_kafka_flush(rk, 500);
        else
            rd_kafka_poll(rk, 100);
        int64_t last = atomic_load(&send_report_ms);
        if (rd_kafka_outq_len(rk) > 0 &&
            clock_now_ms() - (last > since_ms ? last : since_ms) >= SEND_STALL_MS)
            return false;
    } while (all && rd_kafka_outq_len(rk) > 0);
    return true;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* The lines of lost_lines, sorted, as ranges: "3, 7-9, 12" (the first ones,
 * then "..."). */
static void lost_text(char *out, size_t len)
{
    size_t kept = nlost < lost_cap ? nlost : lost_cap, used = 0;
    out[0] = '\0';
    if (kept)
        qsort(lost_lines, kept, sizeof *lost_lines, cmp_long);
    for (size_t i = 0; i < kept && used + 32 < len;) {
        size_t j = i;
        while (j + 1 < kept && lost_lines[j + 1] <= lost_lines[j] + 1)
            j++;
        int w = lost_lines[j] == lost_lines[i]
                    ? snprintf(out + used, len - used, "%s%ld", i ? ", " : "", lost_lines[i])
                    : snprintf(out + used, len - used, "%s%ld-%ld", i ? ", " : "",
                               lost_lines[i], lost_lines[j]);
        used += w > 0 ? (size_t)w : 0;
        i = j + 1;
        if (i < kept && used + 32 >= len)
            snprintf(out + used, len - used, ", ...");
    }
    if (kept < nlost && used + 8 < len)
        snprintf(out + used, len - used, "%s...", used ? ", " : "");
}

/* JSON-lines events published the way an upstream service should: each
 * line checked first (a bad one reported and not sent); Kafka: once a broker
 * answered (kafka_reach), to the first topic of kafka.topics, keyed
 * <relation>:<profile_a>:<profile_b>, acks=all, the lines not confirmed
 * named (a stall of SEND_STALL_MS ends the wait);
 * AMQP: persistent, to the queue of amqp.queue, confirmed. */
int cmd_send(const Config *cfg, const Command *c, int argc, char **argv)
{
    char err[CONFIG_ERR_MAX], *pos[1];
    const char *path = "-";
    bool to_kafka = false, to_amqp = false;
    int npos;
    const Opt opts[] = {{"--kafka", &to_kafka, NULL}, {"--amqp", &to_amqp, NULL}, {0}};
    if (!parse_args(c, argc, argv, opts, pos, 0, 1, &npos))
        return EXIT_USAGE;
    if (npos)
        path = pos[0];
    int kafka = to_kafka == to_amqp ? -1 : to_kafka;
    if (kafka < 0 || (kafka && !cfg->has_kafka) || (!kafka && !cfg->has_amqp)) {
        fprintf(stderr, "relationctl: send needs --kafka (and the kafka section) or --amqp "
                        "(and the amqp section)\n");
        return EXIT_USAGE;
    }
    LineReader in;
    if (!reader_open(&in, path, "events", true)) {
        reader_close(&in);
        return EXIT_FATAL;
    }
    enum { BATCH = 512 };
    Outgoing *out = calloc(BATCH, sizeof *out);
    char **bodies = calloc(BATCH, sizeof *bodies);
    char (*ids)[EVENT_ID_MAX + 1] = calloc(BATCH, sizeof *ids);
    Event *ev = malloc(sizeof *ev);
    Publisher *pub = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *topic = NULL;
    int rc = EXIT_FATAL;
    long sent = 0, invalid = 0;
    size_t nout = 0;
    if (!out || !bodies || !ids || !ev) {
        fprintf(stderr, "relationctl: out of memory\n");
        goto done;
    }
    bool stalled = false;
    if (kafka) {
        const struct rd_kafka_metadata *md = NULL;
        if (!(rk = kafka_client(cfg, RD_KAFKA_PRODUCER, ctl_producer)) ||
            !kafka_reach(rk, cfg, cfg->kafka.topics[0], &md))
            goto done;
        rd_kafka_metadata_destroy(md);
        if (!(topic = rd_kafka_topic_new(rk, cfg->kafka.topics[0], NULL))) {
            fprintf(stderr, "relationctl: kafka topic %s: %s\n", cfg->kafka.topics[0],
                    rd_kafka_err2str(rd_kafka_last_error()));
            goto done;
        }
    } else {
        pub = publisher_new(cfg->amqp.url, "", "direct", false, &cfg->amqp.tls);
        if (!pub || !publisher_connect(pub, err, sizeof err)) {
            fprintf(stderr, "relationctl: amqp: %s\n", pub ? err : "out of memory");
            goto done;
        }
    }
    for (bool end = false; !end && !stalled;) {
        char *line;
        long len = next_event(cfg, &in, ev, &line, &invalid);
        end = len == LINE_EOF;
        if (len == LINE_ERROR)
            goto done;
        if (kafka && !end) {
            char key[CONFIG_SHORT_MAX + 2 * EVENT_PROFILE_MAX + 3];
            int kl = snprintf(key, sizeof key, "%s:%s:%s", ev->rel->short_name, ev->profile_a,
                              ev->profile_b);
            int64_t full_since = clock_now_ms();
            while (!stalled &&
                   rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, line,
                                    (size_t)len, key, (size_t)kl,
                                    (void *)(intptr_t)in.lineno) != 0) {
                if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    fprintf(stderr, "relationctl: kafka: %s\n",
                            rd_kafka_err2str(rd_kafka_last_error()));
                    goto done;
                }
                stalled = !send_wait(rk, full_since, false);
            }
            if (stalled)
                break;
            rd_kafka_poll(rk, 0);
            sent++;
        } else if (!kafka && !end) {
            bodies[nout] = malloc((size_t)len);
            if (!bodies[nout]) {
                fprintf(stderr, "relationctl: out of memory\n");
                goto done;
            }
            memcpy(bodies[nout], line, (size_t)len);
            snprintf(ids[nout], sizeof ids[nout], "%s", ev->id);
            out[nout] = (Outgoing){cfg->amqp.queue, ids[nout], "application/json", NULL,
                                   bodies[nout], (size_t)len};
            nout++;
        }
        if (!kafka && nout && (nout == BATCH || end)) {
            if (!publisher_send(pub, out, nout, err, sizeof err) &&
                !publisher_send(pub, out, nout, err, sizeof err)) {
                fprintf(stderr, "relationctl: amqp: %s (lines up to %ld not known to be sent)\n",
                        err, in.lineno);
                goto done;
            }
            sent += (long)nout;
            for (size_t k = 0; k < nout; k++)
                free(bodies[k]);
            nout = 0;
        }
    }
    if (kafka) {
        /* what is still unconfirmed after a stall is taken back (purged):
         * its delivery reports name its lines */
        if (stalled || !send_wait(rk, clock_now_ms(), true)) {
            rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(rk, 1000);
            if (!kafka_error[0])
                snprintf(kafka_error, sizeof kafka_error, "no delivery report for %d s",
                         SEND_STALL_MS / 1000);
        }
        if (stalled || atomic_load(&send_failed) > 0) {
            char lines[256], named[270] = "", rest[64] = "";
            lost_text(lines, sizeof lines);
            if (lines[0])
                snprintf(named, sizeof named, " (line%s %s)", nlost == 1 ? "" : "s", lines);
            if (stalled)
                snprintf(rest, sizeof rest, "; lines from %ld on not sent", in.lineno);
            fprintf(stderr, "relationctl: kafka: %ld of %ld events sent to %s not confirmed"
                            "%s%s: %s\n",
                    atomic_load(&send_failed), sent, cfg->kafka.topics[0], named, rest,
                    kafka_error);
            goto done;
        }
    }
    rc = invalid ? EXIT_INVALID_LINES : 0;
done:
    progress_clear(&in.progress);
    fprintf(stderr, "sent %ld, invalid %ld\n", rc == EXIT_FATAL ? 0 : sent, invalid);
    for (size_t k = 0; bodies && k < nout; k++)
        free(bodies[k]);
    free(bodies);
    free(ids);
    free(out);
    free(ev);
    reader_close(&in);
    if (topic)
        rd_kafka_topic_destroy(topic);
    if (rk)
        rd_kafka_destroy(rk);
    free(lost_lines);
    lost_lines = NULL;
    nlost = lost_cap = 0;
    publisher_free(pub);
    return rc;
}

/* ---- redrive ---- */

/* An AMQP header's text ("-" when absent). */
static void header_text(const amqp_basic_properties_t *p, const char *key, char *out, size_t len)
{
    if (!amqp_conn_header(p, key, out, len))
        snprintf(out, len, "-");
}

/* A Kafka header's text ("-" when absent). */
static void kafka_header(const rd_kafka_message_t *m, const char *name, char *out, size_t len)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t vl;
    snprintf(out, len, "-");
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, name, &v, &vl) == RD_KAFKA_RESP_ERR_NO_ERROR && v)
        snprintf(out, len, "%.*s", (int)vl, (const char *)v);
}

enum {
    REDRIVE_CONNECT_MS = KAFKA_CONNECT_MS, /* each offsets request */
    REDRIVE_STALL_MS = 30000,  /* nothing read while partitions are short of their end */
    REDRIVE_FLUSH_MS = 30000,  /* a redriven message acknowledged (said in a message) */
    REDRIVE_REASONS = 32,      /* reasons counted one by one in the summary */
};

/* A partition of the dead-letter topic: read up to end, its high watermark
 * when the run started (what comes after, dead letters of this run's
 * messages included, waits for the next run). */
typedef struct {
    int32_t id;
    int64_t end;
    bool done;
} RedrivePart;

/* What a run did, per reason: the first REDRIVE_REASONS reasons one by one,
 * the others together in the last entry. */
typedef struct {
    struct {
        char reason[512];
        long redriven, skipped;
    } r[REDRIVE_REASONS + 1];
    int n;
    long redriven, skipped;
} RedriveTally;

static void redrive_count(RedriveTally *t, const char *reason, bool skipped)
{
    int i = 0;
    while (i < t->n && strcmp(t->r[i].reason, reason) != 0)
        i++;
    if (i == t->n && t->n < REDRIVE_REASONS)
        snprintf(t->r[t->n++].reason, sizeof t->r[i].reason, "%s", reason);
    else if (i == t->n)
        i = REDRIVE_REASONS;
    *(skipped ? &t->r[i].skipped : &t->r[i].redriven) += 1;
    *(skipped ? &t->skipped : &t->redriven) += 1;
}

/* from: the dead letters' topic, or "QUEUE to amqp.queue". */
static void redrive_summary(const RedriveTally *t, const char *from)
{
    for (int i = 0; i <= REDRIVE_REASONS; i++)
        if (t->r[i].redriven || t->r[i].skipped)
            fprintf(stderr, "  redriven %ld, skipped %ld: %s\n", t->r[i].redriven,
                    t->r[i].skipped, i < t->n ? t->r[i].reason : "(other reasons)");
    fprintf(stderr, "redriven %ld, skipped %ld from %s\n", t->redriven, t->skipped, from);
}

/* A dead letter of either source: what its headers say ("-": absent), and
 * what redrive does with it (redrive_decide). */
typedef struct {
    char reason[512];
    char count[24];   /* REDRIVES_HEADER: redriven before */
    char dropped[24]; /* the size of a value or body not kept whole */
    long redrives;    /* times redriven before (0: never) */
    bool lost;        /* not kept whole: nothing to send */
    bool skip;        /* not sent: lost, or redriven before and no --force */
    char next[24];    /* REDRIVES_HEADER of what is sent: redrives + 1 */
} RedriveLetter;

static void redrive_decide(RedriveLetter *l, bool force)
{
    l->redrives = 0;
    if (strcmp(l->count, "-") != 0) {
        char *end;
        errno = 0;
        l->redrives = strtol(l->count, &end, 10);
        /* there, but unreadable: redriven before all the same */
        if (*end || errno || l->redrives < 1)
            l->redrives = 1;
    }
    l->lost = strcmp(l->dropped, "-") != 0;
    l->skip = l->lost || (l->redrives > 0 && !force);
    snprintf(l->next, sizeof l->next, "%ld", l->redrives + 1);
}

/* Reports a dead letter handled (sent, or skipped) and counts it. lost: what
 * was not kept of it (for a lost one); where: where it is, and came from. */
static void redrive_report(RedriveTally *t, const RedriveLetter *l, const char *lost,
                           const char *where)
{
    if (l->lost)
        fprintf(stderr, "skipped: %s: %s (%s)\n", lost, l->reason, where);
    else if (l->skip)
        fprintf(stderr, "skipped: already redriven %ld time%s: %s (%s)\n", l->redrives,
                l->redrives == 1 ? "" : "s", l->reason, where);
    else
        fprintf(stderr, "redriven: %s\n", l->reason);
    redrive_count(t, l->reason, l->skip);
}

/* The partitions of the dead-letter topic, each from the group's committed
 * offset (or its start) to its end offset now, assigned to the consumer.
 * False, the reason printed: no broker answered within KAFKA_CONNECT_MS,
 * the topic does not exist, the offsets could not be read. */
static bool redrive_assign(rd_kafka_t *c, const Config *cfg, const char *group,
                           RedrivePart **out, int *nout, int *left)
{
    const char *dlq = cfg->kafka.dead_letter_topic;
    const struct rd_kafka_metadata *md = NULL;
    if (!kafka_reach(c, cfg, dlq, &md))
        return false;
    if (md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "relationctl: kafka.dead_letter_topic %s: %s\n", dlq,
                md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not found");
        rd_kafka_metadata_destroy(md);
        return false;
    }
    int n = md->topics[0].partition_cnt;
    RedrivePart *parts = calloc(n > 0 ? (size_t)n : 1, sizeof *parts);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; parts && i < n; i++)
        rd_kafka_topic_partition_list_add(list, dlq, md->topics[0].partitions[i].id);
    rd_kafka_metadata_destroy(md);
    bool ok = false;
    if (!parts) {
        fprintf(stderr, "relationctl: out of memory\n");
        goto done;
    }
    rd_kafka_resp_err_t rc = rd_kafka_committed(c, list, REDRIVE_CONNECT_MS);
    if (rc) {
        fprintf(stderr, "relationctl: kafka: the committed offsets of group %s: %s\n", group,
                rd_kafka_err2str(rc));
        goto done;
    }
    *left = 0;
    for (int i = 0; i < n; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t lo, hi;
        rc = tp->err ? tp->err
                     : rd_kafka_query_watermark_offsets(c, dlq, tp->partition, &lo, &hi,
                                                        REDRIVE_CONNECT_MS);
        if (rc) {
            fprintf(stderr, "relationctl: kafka: the offsets of %s[%d]: %s\n", dlq,
                    (int)tp->partition, rd_kafka_err2str(rc));
            goto done;
        }
        if (tp->offset < lo) /* none committed (or expired): from the start */
            tp->offset = lo;
        parts[i] = (RedrivePart){tp->partition, hi, tp->offset >= hi};
        *left += !parts[i].done;
    }
    rd_kafka_poll_set_consumer(c);
    rc = rd_kafka_assign(c, list);
    if (rc) {
        fprintf(stderr, "relationctl: kafka: assigning %s: %s\n", dlq, rd_kafka_err2str(rc));
        goto done;
    }
    ok = true;
done:
    rd_kafka_topic_partition_list_destroy(list);
    if (ok) {
        *out = parts;
        *nout = n;
    } else {
        free(parts);
    }
    return ok;
}

/* One dead letter: produced again to the topic it came from, with its key
 * and REDRIVES_HEADER one more (acks=all); or, when it was redriven before
 * and force is off, or its value was too large to be kept, reported and
 * skipped. Then its offset committed.
 * False, the reason printed, when that failed (the dead letter stays). */
static bool redrive_message(rd_kafka_t *c, rd_kafka_t *p, const Config *cfg,
                            const rd_kafka_message_t *m, bool force, RedriveTally *t)
{
    RedriveLetter l;
    char topic[256], partition[16], offset[24];
    /* a value too large for the dead-letter topic is not in it: nothing to send */
    kafka_header(m, "x-relationd-value-bytes", l.dropped, sizeof l.dropped);
    kafka_header(m, "x-relationd-reason", l.reason, sizeof l.reason);
    kafka_header(m, "x-relationd-topic", topic, sizeof topic);
    kafka_header(m, "x-relationd-partition", partition, sizeof partition);
    kafka_header(m, "x-relationd-offset", offset, sizeof offset);
    kafka_header(m, REDRIVES_HEADER, l.count, sizeof l.count);
    redrive_decide(&l, force);
    const char *dlq = cfg->kafka.dead_letter_topic;
    const char *to = strcmp(topic, "-") == 0 ? cfg->kafka.topics[0] : topic;
    char where[600]; /* the dead letter's place, and its message's */
    snprintf(where, sizeof where, "%s[%d] offset %lld, from %s[%s] offset %s", dlq,
             (int)m->partition, (long long)m->offset, topic, partition, offset);
    if (!l.skip) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, REDRIVES_HEADER, -1, l.next, -1);
        long failed = atomic_load(&send_failed);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(to), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (e)
            rd_kafka_headers_destroy(h); /* not taken on failure */
        const char *why = e ? rd_kafka_err2str(e) : NULL;
        if (!why && rd_kafka_flush(p, REDRIVE_FLUSH_MS))
            why = "not acknowledged within 30 s; it may still arrive";
        if (!why && atomic_load(&send_failed) != failed)
            why = kafka_error; /* the delivery report's */
        if (why) {
            fprintf(stderr, "relationctl: producing to %s failed (%s); the dead letter (%s) "
                            "stays\n", to, why, where);
            return false;
        }
    }
    rd_kafka_resp_err_t rc = rd_kafka_commit_message(c, m, 0 /* sync */);
    if (rc) {
        fprintf(stderr, "relationctl: commit in group %s-redrive failed (%s): the dead letter "
                        "(%s)%s will be read again\n", cfg->kafka.group_id,
                rd_kafka_err2str(rc), where, l.skip ? "" : ", sent,");
        return false;
    }
    char lost[128];
    snprintf(lost, sizeof lost, "its value (%s bytes) was too large for the dead-letter topic",
             l.dropped);
    redrive_report(t, &l, lost, where);
    return true;
}

/* Kafka's dead letters (kafka.dead_letter_topic) back to the topic each came
 * from, each read once: the partitions are read from the offsets committed
 * in the group <group_id>-redrive up to their end offsets at the start
 * (the dead letters of this run's messages, refused again, wait for the
 * next run), each offset committed once its dead letter is handled. A dead
 * letter redriven before is reported and skipped unless force. Stops after
 * limit redriven (limit < 0: no limit), then prints the summary. */
static int redrive_kafka(const Config *cfg, long limit, bool force)
{
    const char *dlq = cfg->kafka.dead_letter_topic;
    char group[300];
    snprintf(group, sizeof group, "%s-redrive", cfg->kafka.group_id);
    const KafkaSetting consumer_settings[] = {
        {"client.id", "relationctl"},         {"group.id", group},
        {"enable.auto.commit", "false"},      {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},    {"enable.partition.eof", "true"},
        {NULL, NULL}};
    rd_kafka_t *consumer = kafka_client(cfg, RD_KAFKA_CONSUMER, consumer_settings);
    rd_kafka_t *producer = consumer ? kafka_client(cfg, RD_KAFKA_PRODUCER, ctl_producer) : NULL;
    RedriveTally *t = calloc(1, sizeof *t);
    RedrivePart *parts = NULL;
    int nparts = 0, left = 0, status = EXIT_FATAL;
    bool assigned = false;
    if (!t)
        fprintf(stderr, "relationctl: out of memory\n");
    if (!t || !consumer || !producer ||
        !(assigned = redrive_assign(consumer, cfg, group, &parts, &nparts, &left)))
        goto done;
    int64_t read_at = clock_now_ms();
    while (left > 0 && (limit < 0 || t->redriven < limit)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 200);
        if (!m) {
            if (clock_now_ms() - read_at < REDRIVE_STALL_MS)
                continue;
            fprintf(stderr, "relationctl: kafka: nothing read from %s for %d s, %d of its "
                            "partitions short of their end offset (%s)\n", dlq,
                    REDRIVE_STALL_MS / 1000, left, kafka_error[0] ? kafka_error : "no error");
            goto done;
        }
        RedrivePart *pt = NULL; /* only the dead-letter topic is assigned */
        for (int i = 0; i < nparts && !pt; i++)
            if (parts[i].id == m->partition)
                pt = &parts[i];
        bool ok = true;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (pt && !pt->done) /* read to its end (none left below end) */
                pt->done = true, left--;
        } else if (m->err) {
            snprintf(kafka_error, sizeof kafka_error, "%s", rd_kafka_message_errstr(m));
        } else if (pt && !pt->done) {
            read_at = clock_now_ms();
            if (m->offset < pt->end)
                ok = redrive_message(consumer, producer, cfg, m, force, t);
            if (ok && m->offset + 1 >= pt->end)
                pt->done = true, left--;
        }
        rd_kafka_message_destroy(m);
        if (!ok)
            goto done;
    }
    status = 0;
done:
    if (assigned)
        redrive_summary(t, dlq);
    free(parts);
    free(t);
    if (consumer) {
        rd_kafka_consumer_close(consumer);
        rd_kafka_destroy(consumer);
    }
    if (producer)
        rd_kafka_destroy(producer);
    return status;
}

/* One dead letter got from QUEUE (from) with its delivery tag: published
 * again to amqp.queue with REDRIVES_HEADER one more, persistent and
 * confirmed, then acked; or, when it was redriven before and force is off,
 * or its body was cut at EVENT_MAX_BYTES, reported and left unacknowledged
 * (back in QUEUE when the run's connection closes). False, the reason
 * printed, when publishing or the ack failed. */
static bool redrive_delivery(amqp_connection_state_t conn, Publisher *pub, const Config *cfg,
                             const char *from, uint64_t tag, const amqp_message_t *msg,
                             bool force, RedriveTally *t)
{
    RedriveLetter l;
    char source[256], err[512];
    /* of a message over the size limit only its first bytes are there */
    header_text(&msg->properties, "x-relationd-body-bytes", l.dropped, sizeof l.dropped);
    header_text(&msg->properties, "x-relationd-reason", l.reason, sizeof l.reason);
    header_text(&msg->properties, "x-relationd-queue", source, sizeof source);
    header_text(&msg->properties, REDRIVES_HEADER, l.count, sizeof l.count);
    redrive_decide(&l, force);
    if (!l.skip) {
        amqp_table_entry_t count = {.key = amqp_cstring_bytes(REDRIVES_HEADER),
                                    .value = {.kind = AMQP_FIELD_KIND_UTF8,
                                              .value.bytes = amqp_conn_bytes(l.next)}};
        amqp_table_t headers = {1, &count};
        Outgoing o = {cfg->amqp.queue, NULL, "application/json", &headers, msg->body.bytes,
                      msg->body.len};
        if (!publisher_send(pub, &o, 1, err, sizeof err) &&
            !publisher_send(pub, &o, 1, err, sizeof err)) {
            fprintf(stderr, "relationctl: publishing to %s: %s (the dead letter stays)\n",
                    cfg->amqp.queue, err);
            return false;
        }
        if (amqp_basic_ack(conn, 1, tag, 0) != AMQP_STATUS_OK) {
            fprintf(stderr, "relationctl: ack in %s failed: it may be redriven again\n", from);
            return false;
        }
    }
    char lost[128], where[600];
    snprintf(lost, sizeof lost, "only the first %d of its %s bytes were kept", EVENT_MAX_BYTES,
             l.dropped);
    snprintf(where, sizeof where, "left in %s, from %s", from, source);
    redrive_report(t, &l, lost, where);
    return true;
}

/* AMQP's dead letters, from QUEUE (from: a queue bound to
 * amqp.dead_letter_exchange) back to amqp.queue: at most as many got as
 * QUEUE held at the start (queue.declare, passive), so that the dead letters
 * of this run's messages, refused again, wait for the next run. A skipped
 * one stays unacknowledged until the run ends (so it is not got again), and
 * RabbitMQ puts it back in QUEUE when the connection closes. Stops after
 * limit redriven (limit < 0: no limit), then prints the summary. */
static int redrive_amqp(const Config *cfg, const char *from, long limit, bool force)
{
    char err[512];
    amqp_connection_state_t conn = amqp_conn_open(cfg->amqp.url, &cfg->amqp.tls, err, sizeof err);
    Publisher *pub = publisher_new(cfg->amqp.url, "", "direct", false, &cfg->amqp.tls);
    RedriveTally *t = calloc(1, sizeof *t);
    int status = EXIT_FATAL;
    bool counted = false;
    if (!conn || !pub || !t || !publisher_connect(pub, err, sizeof err)) {
        fprintf(stderr, "relationctl: %s\n", conn && pub && t ? err : conn ? "out of memory" : err);
        goto done;
    }
    amqp_queue_declare_ok_t *q = amqp_queue_declare(conn, 1, amqp_conn_bytes(from), 1 /* passive */,
                                                    0, 0, 0, amqp_empty_table);
    if (!amqp_conn_check(amqp_get_rpc_reply(conn), "queue.declare (passive)", err, sizeof err)) {
        fatal(err);
        goto done;
    }
    uint32_t count = q->message_count;
    counted = true;
    for (uint32_t got = 0; got < count && (limit < 0 || t->redriven < limit); got++) {
        amqp_rpc_reply_t r = amqp_basic_get(conn, 1, amqp_conn_bytes(from), 0 /* ack */);
        if (!amqp_conn_check(r, "basic.get", err, sizeof err)) {
            fatal(err);
            goto done;
        }
        if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
            break;
        uint64_t tag = ((amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
        amqp_message_t msg;
        r = amqp_read_message(conn, 1, &msg, 0);
        if (!amqp_conn_check(r, "reading a dead letter", err, sizeof err)) {
            fatal(err);
            goto done;
        }
        bool ok = redrive_delivery(conn, pub, cfg, from, tag, &msg, force, t);
        amqp_destroy_message(&msg);
        if (!ok)
            goto done;
    }
    status = 0;
done:
    if (counted) {
        char name[600];
        snprintf(name, sizeof name, "%s to %s", from, cfg->amqp.queue);
        redrive_summary(t, name);
    }
    free(t);
    publisher_free(pub);
    if (conn)
        amqp_conn_close(conn);
    return status;
}

/* Dead letters back to their source after a fix: redrive_amqp, or
 * redrive_kafka. */
int cmd_redrive(const Config *cfg, const Command *c, int argc, char **argv)
{
    const char *from = NULL, *limit_arg = NULL;
    long limit = -1;
    bool kafka = false;
    int npos;
    bool force = false;
    const Opt opts[] = {{"--amqp", NULL, &from}, {"--kafka", &kafka, NULL},
                        {"--limit", NULL, &limit_arg}, {"--force", &force, NULL}, {0}};
    if (!parse_args(c, argc, argv, opts, NULL, 0, 0, &npos))
        return EXIT_USAGE;
    bool amqp = from != NULL;
    if (limit_arg) {
        char *end;
        limit = strtol(limit_arg, &end, 10);
        if (*end || limit < 1) {
            fprintf(stderr, "relationctl: --limit takes a count of 1 or more\n");
            return EXIT_USAGE;
        }
    }
    if (kafka && !amqp && cfg->has_kafka)
        return redrive_kafka(cfg, limit, force);
    if (amqp && !kafka && cfg->has_amqp)
        return redrive_amqp(cfg, from, limit, force);
    fprintf(stderr, "relationctl: redrive needs --amqp QUEUE (and the amqp section) or "
                    "--kafka (and the kafka section)\n");
    return EXIT_USAGE;
}
