/* relationd — parses the command line, loads the configuration, starts the
 * parts in order, runs until SIGTERM, stops them in reverse order. */
#include "config/config.h"
#include "lib/clock.h"
#include "config/history.h"
#include "daemon/amqp_conn.h"
#include "daemon/amqp_source.h"
#include "daemon/http.h"
#include "daemon/kafka_source.h"
#include "daemon/lifecycle.h"
#include "lib/log.h"
#include "daemon/metrics.h"
#include "daemon/pipeline.h"
#include "daemon/shared_config.h"
#include "handlers/store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

/* Who checks the read API's Redis when there is no source. */
#define READS "http reads"

/* Past the drain deadline, the threads get this long to notice before the
 * process exits without them. */
#define ABANDON_GRACE_MS 3000

static void usage(FILE *out)
{
    fprintf(out, "usage: relationd -c FILE [--check-config [--connect]]\n"
                 "       relationd --dump-config-table\n"
                 "       relationd --version\n");
}

/* The "s" of a count's noun: "1 relation", "2 relations". */
static const char *plural(int n)
{
    return n == 1 ? "" : "s";
}

/* Every property the relations have had since start (a reload's warnings). */
static PropertyHistory *history;

/* A reload whose relations would leave stored statistics out of step with
 * their edges: said, with the rebuild to run (the reload goes on). */
static void stale_statistics(const char *relation, const char *property, const char *what,
                             void *ctx)
{
    (void)ctx;
    log_at(LOG_WARN, "config",
           "relation %s, property %s: %s; the statistics stored before do not follow until "
           "`relationctl rebuild %s` runs (relationctl verify %s shows the sides)",
           relation, property, what, relation, relation);
}

/* Loads the file again; a file that fails validation keeps the running one.
 * The threads switch to it at their next batch. */
/* READY=1 ends a reload only once the daemon was ready. */
static bool reload_ready;

static void reload(const char *path, const Config **running)
{
    char err[CONFIG_ERR_MAX], changed[128];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    Config *fresh = config_load(path, err, sizeof err);
    if (!fresh) {
        log_at(LOG_ERROR, "config", "reload refused, keeping the running configuration: %s", err);
    } else if (!config_keep_connections(fresh, *running, changed, sizeof changed)) {
        log_at(LOG_ERROR, "config", "reload: out of memory, keeping the running configuration");
        config_free(fresh);
    } else {
        if (changed[0])
            log_at(LOG_WARN, "config", "%s settings cannot change at run time: restart to apply them",
                   changed);
        if (!history_reload(history, fresh, stale_statistics, NULL))
            log_at(LOG_WARN, "config", "reload: out of memory comparing the properties with the "
                                       "earlier ones; run relationctl verify after it");
        int nrel = fresh->nrelations;
        const Config *installed = fresh;
        if (!shared_config_set(fresh)) { /* fresh is owned (or freed) from here */
            log_at(LOG_ERROR, "config", "reload: out of memory, keeping the running configuration");
        } else {
            *running = installed;
            atomic_store(&log_max_level, installed->log_level);
            log_at(LOG_INFO, "config", "reloaded %s: %d relation%s", path, nrel, plural(nrel));
        }
    }
    if (reload_ready)
        sd_notify(0, "READY=1");
}

/* STATUS=: what is awaited, or a short live summary. */
static void notify_status(bool ready, const KafkaSource *k, const AmqpSource *a, bool redis)
{
    static unsigned long last_events;
    static int64_t last_ms;
    if (!ready) {
        bool up;
        char *down = metrics_down_json(&up);
        sd_notifyf(0, "STATUS=waiting for%s%s%s%s", k && !kafka_source_ready(k) ? " kafka" : "",
                   a && !amqp_source_ready(a) ? " amqp" : "", redis ? " redis" : "",
                   up || !down ? "" : " (down: see /readyz)");
        free(down);
        return;
    }
    unsigned long events = metrics_events_total();
    int64_t now = clock_now_ms();
    double rate = last_ms && now > last_ms ? (events - last_events) * 1000.0 / (now - last_ms) : 0;
    long long lag;
    if (k && metrics_kafka_lag_total(&lag))
        sd_notifyf(0, "STATUS=ready: %lu events, %.0f/s, kafka lag %lld", events, rate, lag);
    else
        sd_notifyf(0, "STATUS=ready: %lu events, %.0f/s", events, rate);
    last_events = events;
    last_ms = now;
}

/* --check-config --connect: Redis, each AMQP URL, the Kafka brokers and
 * topics; one line each on stdout when it answers, on stderr when not. */
static bool probe(const Config *cfg)
{
    char err[512], what[128];
    bool ok = true;
    redisContext *r = store_connect(cfg, err, sizeof err);
    redisReply *pong = r ? redisCommand(r, "PING") : NULL;
    if (pong && pong->type != REDIS_REPLY_ERROR)
        printf("redis %s:%d: ok\n", cfg->redis.host, cfg->redis.port);
    else {
        fprintf(stderr, "relationd: %s\n",
                r ? (pong ? pong->str : r->errstr) : err);
        ok = false;
    }
    if (pong)
        freeReplyObject(pong);
    if (r)
        redisFree(r);
    const struct {
        bool on;
        const char *name, *url;
        const TlsConfig *tls;
    } amqp[] = {{cfg->has_amqp, "amqp", cfg->amqp.url, &cfg->amqp.tls},
                {cfg->has_hooks, "hooks", cfg->hooks_url, &cfg->hooks_tls}};
    for (int i = 0; i < 2; i++) {
        if (!amqp[i].on)
            continue;
        amqp_connection_state_t c = amqp_conn_open(amqp[i].url, amqp[i].tls, err, sizeof err);
        if (c)
            printf("%s: ok (logged in)\n", amqp[i].name);
        else
            fprintf(stderr, "relationd: %s: %s\n", amqp[i].name, err);
        ok &= c != NULL;
        amqp_conn_close(c);
    }
    if (cfg->has_kafka) {
        if (kafka_source_probe(&cfg->kafka, 5000, what, sizeof what, err, sizeof err))
            printf("kafka: ok (%s)\n", what);
        else {
            fprintf(stderr, "relationd: %s\n", err);
            ok = false;
        }
    }
    return ok;
}

static bool sources_done(const KafkaSource *k, const AmqpSource *a)
{
    return (!k || kafka_source_done(k)) && (!a || amqp_source_done(a));
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool check_only = false, connect_too = false;
    char err[CONFIG_ERR_MAX];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("relationd %s\n", RELATIOND_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--dump-config-table") == 0) {
            char *table = config_table_json();
            if (!table) {
                fprintf(stderr, "relationd: out of memory\n");
                return 1;
            }
            puts(table);
            free(table);
            return 0;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
        } else if (strcmp(argv[i], "--connect") == 0) {
            connect_too = true;
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }

    /* 1. The configuration. */
    log_init();
    amqp_conn_observe_blocked(metrics_amqp_blocked);
    Config *cfg = config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "relationd: %s\n", err);
        return 1;
    }
    char secret[1024];
    if (config_secret_exposed(path, secret, sizeof secret)) {
        if (check_only)
            fprintf(stderr, "relationd: warning: %s is readable by other users and holds %s: "
                    "chmod 600 it, or take the secret from the environment (\"${VAR}\")\n",
                    path, secret);
        else
            log_at(LOG_WARN, "main", "%s is readable by other users and holds %s: chmod 600 "
                   "it, or take the secret from the environment (\"${VAR}\")", path, secret);
    }
    if (check_only && cfg->has_kafka && !kafka_source_check(&cfg->kafka, err, sizeof err)) {
        fprintf(stderr, "relationd: %s: %s\n", path, err);
        config_free(cfg);
        return 1;
    }
    if (check_only) {
        printf("%s: ok (%d relation%s)\n", path, cfg->nrelations,
               plural(cfg->nrelations));
        int rc = connect_too && !probe(cfg) ? 1 : 0;
        config_free(cfg);
        return rc;
    }
    const Config *running = cfg;
    int shutdown_timeout_ms = cfg->shutdown_timeout_ms;
    atomic_store(&log_max_level, cfg->log_level);
    history = history_new(cfg);
    if (!history || !shared_config_set(cfg)) { /* cfg is owned by the shared configuration now */
        fprintf(stderr, "relationd: out of memory\n");
        return 1;
    }
    cfg = NULL;

    /* 2. Signals: blocked in every thread, taken by sigtimedwait below. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* 3. The sources, each with its own thread, Redis and broker connections.
     *    Redis and the brokers may be down: the threads wait for them. */
    KafkaSource *kafka = NULL;
    AmqpSource *amqp = NULL;
    Http *http = NULL;
    Engine *reads = NULL; /* the read API's Redis, checked when there is no source */
    RedisLink reads_link;
    int status = 0;
    if (running->has_kafka && !(kafka = kafka_source_new(err, sizeof err))) {
        log_at(LOG_ERROR, "main", "kafka source: %s", err);
        status = 1;
        goto stop;
    }
    if (running->has_amqp && !(amqp = amqp_source_new(err, sizeof err))) {
        log_at(LOG_ERROR, "main", "amqp source: %s", err);
        status = 1;
        goto stop;
    }
    if ((kafka && !kafka_source_start(kafka)) || (amqp && !amqp_source_start(amqp))) {
        log_at(LOG_ERROR, "main", "cannot start a thread");
        lifecycle_request_stop(0);
        status = 1;
        goto stop;
    }
    if (!kafka && !amqp)
        log_at(LOG_WARN, "main", "no kafka or amqp section: no source to consume");
    /* Without a source, the read API's Redis is checked here, so that
     * /readyz follows it; the source threads check their own. */
    if (!kafka && !amqp && running->has_http) {
        if (!(reads = engine_create(running))) {
            log_at(LOG_ERROR, "main", "out of memory");
            lifecycle_request_stop(0);
            status = 1;
            goto stop;
        }
        redis_link_init(&reads_link, READS, reads, running->retry_max_ms);
        metrics_waiting(READS, "a first connection to redis");
    }
    if (amqp)
        metrics_waiting("amqp source", "connections to redis, the hooks and the queue");
    if (running->has_http && !(http = http_start(running->http_listen, err, sizeof err))) {
        log_at(LOG_ERROR, "main", "%s", err);
        lifecycle_request_stop(0);
        status = 1;
        goto stop;
    }

    log_at(LOG_INFO, "main", "started: %d relation%s, sources:%s%s", running->nrelations,
           plural(running->nrelations), kafka ? " kafka" : "", amqp ? " amqp" : "");
    sd_notify(0, "STATUS=connecting to Redis, the hooks exchange and the sources");

    /* 4. Run until SIGTERM / SIGINT. With WatchdogSec= the watchdog is
     *    pinged every half period, and only while every source thread's loop
     *    turned since the previous ping: a thread stuck in a call that never
     *    returns stops the pings, and systemd restarts the daemon. */
    uint64_t watchdog_usec = 0;
    if (sd_watchdog_enabled(0, &watchdog_usec) <= 0)
        watchdog_usec = 0;
    int64_t next_ping = clock_now_ms() + (int64_t)(watchdog_usec / 2000);
    bool stalled = false, ready = false, reads_seen = false;
    int64_t next_status = 0;
    for (;;) {
        /* READY=1 once Redis, the hooks exchange and every source are
         * connected (with no source: Redis); until then STATUS= says what
         * is awaited. */
        if (reads && redis_link_idle(&reads_link) && !reads_seen) {
            reads_seen = true;
            metrics_waiting(READS, NULL);
        }
        if (amqp && amqp_source_ready(amqp))
            metrics_waiting("amqp source", NULL);
        if (!ready && (!kafka || kafka_source_ready(kafka)) && (!amqp || amqp_source_ready(amqp)) &&
            (!reads || reads_seen)) {
            ready = true;
            sd_notify(0, "READY=1\nSTATUS=ready");
            reload_ready = true;
            log_at(LOG_INFO, "main", "ready: %d relation%s, sources:%s%s", running->nrelations,
                   plural(running->nrelations), kafka ? " kafka" : "", amqp ? " amqp" : "");
        }
        if (clock_now_ms() >= next_status) {
            next_status = clock_now_ms() + 5000;
            notify_status(ready, kafka, amqp, reads && !reads_seen);
        }
        if (watchdog_usec && clock_now_ms() >= next_ping) {
            next_ping = clock_now_ms() + (int64_t)(watchdog_usec / 2000);
            if (lifecycle_all_beat()) {
                sd_notify(0, "WATCHDOG=1");
                if (stalled)
                    log_at(LOG_INFO, "main", "the source threads are turning again");
                stalled = false;
            } else if (!stalled) {
                log_at(LOG_ERROR, "main", "a source thread made no progress for %llu ms: "
                       "the watchdog is not pinged", (unsigned long long)(watchdog_usec / 2000));
                stalled = true;
            }
        }
        int64_t wait_ms = watchdog_usec ? next_ping - clock_now_ms() : 1000;
        if (wait_ms > (ready ? 1000 : 100))
            wait_ms = ready ? 1000 : 100;
        if (wait_ms < 1)
            wait_ms = 1;
        struct timespec tick = {wait_ms / 1000, (wait_ms % 1000) * 1000000};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGHUP) {
            reload(path, &running);
            shutdown_timeout_ms = running->shutdown_timeout_ms;
            if (reads && !engine_set_config(reads, running))
                log_at(LOG_ERROR, "main", "out of memory for the reloaded configuration");
        } else if (sig == SIGTERM || sig == SIGINT) {
            break;
        } else if (lifecycle_stopping()) {
            break; /* a source met a fatal error */
        } else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            log_at(LOG_ERROR, "main", "sigtimedwait: %s", strerror(errno));
        }
    }

    /* 5. Drain: stop fetching, finish the batch, confirm, commit/ack, close.
     *    A second SIGTERM exits at once. */
    sd_notify(0, "STOPPING=1");
    log_at(LOG_INFO, "main", "stopping: draining within %d ms", shutdown_timeout_ms);
    lifecycle_request_stop(shutdown_timeout_ms);
    int64_t give_up = clock_now_ms() + shutdown_timeout_ms + ABANDON_GRACE_MS;
    while (!sources_done(kafka, amqp)) {
        struct timespec tick = {0, 50 * 1000000};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            log_at(LOG_WARN, "main", "second signal: exiting now, unfinished work is not "
                   "acknowledged and will be delivered again");
            _exit(1);
        }
        if (clock_now_ms() > give_up) {
            log_at(LOG_ERROR, "main", "drain did not finish in time: exiting, unfinished work "
                   "is not acknowledged and will be delivered again");
            _exit(1);
        }
    }
    if (lifecycle_abandoned())
        status = 1;
stop:
    /* 6. Stop in reverse order. */
    http_stop(http);
    engine_free(reads);
    amqp_source_free(amqp);
    kafka_source_free(kafka);
    shared_config_clear();
    history_free(history);
    log_at(LOG_INFO, "main", "stopped");
    return status;
}
