/* relationd — parses the command line, loads the configuration, starts the
 * parts in order, runs until SIGTERM, drains, stops them in reverse order.
 * Main thread only; what it tells systemd is in status.c, SIGHUP's reload in
 * reload.c, --check-config --connect in probe.c. Failures at start are
 * logged (or printed before the log is in use) and exit 1; a bad command
 * line exits 2. It sets the log's sink (lib/log.h: logfmt on stderr, the
 * journal's priority prefixes when stderr is the journal) and its level. */
#include "config/config.h"
#include "daemon/amqp_conn.h"
#include "daemon/amqp_source.h"
#include "daemon/hook_deliver.h"
#include "daemon/http.h"
#include "daemon/http_source.h"
#include "daemon/kafka_source.h"
#include "daemon/lifecycle.h"
#include "daemon/metrics.h"
#include "daemon/pipeline.h"
#include "daemon/probe.h"
#include "daemon/reload.h"
#include "daemon/shared_config.h"
#include "daemon/status.h"
#include "lib/clock.h"
#include "lib/log.h"

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

/* The command line: -1 to go on with *path set, else the exit status. */
static int parse_args(int argc, char **argv, const char **path, bool *check_only,
                      bool *connect_too)
{
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
            *check_only = true;
        } else if (strcmp(argv[i], "--connect") == 0) {
            *connect_too = true;
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            *path = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!*path) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* A secret in a file other users can read: a warning (on stderr for
 * --check-config, in the log else). */
static void warn_exposed(const char *path, bool check_only)
{
    char secret[1024];
    if (!config_secret_exposed(path, secret, sizeof secret))
        return;
    if (check_only)
        fprintf(stderr, "relationd: warning: %s is readable by other users and holds %s: "
                "chmod 600 it, or take the secret from the environment (\"${VAR}\")\n",
                path, secret);
    else
        log_at(LOG_WARN, "main", "%s is readable by other users and holds %s: chmod 600 "
               "it, or take the secret from the environment (\"${VAR}\")", path, secret);
}

/* --check-config [--connect]: the exit status. Frees cfg. */
static int check_config(const char *path, Config *cfg, bool connect_too)
{
    char err[CONFIG_ERR_MAX];
    int rc = 0;
    if (cfg->has_kafka && !kafka_source_check(&cfg->kafka, err, sizeof err)) {
        fprintf(stderr, "relationd: %s: %s\n", path, err);
        rc = 1;
    } else {
        printf("%s: ok (%d relation%s)\n", path, cfg->nrelations, plural(cfg->nrelations));
        for (int i = 0; i < cfg->nhooks; i++) {
            char line[1024];
            config_hook_describe(cfg, i, line, sizeof line);
            printf("%s\n", line);
        }
        rc = connect_too && !probe_servers(cfg) ? 1 : 0;
    }
    config_free(cfg);
    return rc;
}

/* The parts that run, started in this order and stopped in reverse. */
typedef struct {
    KafkaSource *kafka;
    AmqpSource *amqp;
    HookDeliverers *hooks; /* one deliverer thread per hook */
    Engine *reads; /* the read API's Redis, checked when there is no source */
    RedisLink reads_link;
    bool reads_seen;
    HttpSource *writes; /* the HTTP writes: with http and hooks */
    Http *http;
} Parts;

/* The sources, each with its own thread, Redis and broker connections
 * (Redis and the brokers may be down: the threads wait for them), then the
 * HTTP endpoint. false when one cannot start (logged; the drain requested
 * when a thread may be running). */
static bool start(Parts *p, const Config *running)
{
    char err[CONFIG_ERR_MAX];
    if (running->nhooks > 0 && !(p->hooks = hook_deliverers_start(err, sizeof err))) {
        log_at(LOG_ERROR, "main", "%s", err);
        return false;
    }
    if (running->has_kafka && !(p->kafka = kafka_source_new(err, sizeof err))) {
        log_at(LOG_ERROR, "main", "kafka source: %s", err);
        return false;
    }
    if (running->has_amqp && !(p->amqp = amqp_source_new(err, sizeof err))) {
        log_at(LOG_ERROR, "main", "amqp source: %s", err);
        return false;
    }
    if ((p->kafka && !kafka_source_start(p->kafka)) ||
        (p->amqp && !amqp_source_start(p->amqp))) {
        log_at(LOG_ERROR, "main", "cannot start a thread");
        lifecycle_request_stop(0);
        return false;
    }
    if (!p->kafka && !p->amqp)
        log_at(LOG_WARN, "main", "no kafka or amqp section: no source to consume");
    /* Without a source, the read API's Redis is checked here, so that
     * /readyz follows it; the source threads check their own. */
    if (!p->kafka && !p->amqp && running->has_http) {
        if (!(p->reads = engine_create(running))) {
            log_at(LOG_ERROR, "main", "out of memory");
            lifecycle_request_stop(0);
            return false;
        }
        engine_set_reader(p->reads);
        redis_link_init(&p->reads_link, READS, p->reads, running->retry_max_ms);
        metrics_waiting(READS, "a first connection to redis");
    }
    if (p->amqp)
        metrics_waiting("amqp source", "connections to redis and the queue");
    if (running->has_http && running->nhooks > 0) {
        if (!(p->writes = http_source_new(err, sizeof err))) {
            log_at(LOG_ERROR, "main", "http source: %s", err);
            lifecycle_request_stop(0);
            return false;
        }
        if (!http_source_start(p->writes)) {
            log_at(LOG_ERROR, "main", "cannot start a thread");
            lifecycle_request_stop(0);
            return false;
        }
    }
    if (running->has_http &&
        !(p->http = http_start(running->http_listen, p->writes, err, sizeof err))) {
        log_at(LOG_ERROR, "main", "%s", err);
        lifecycle_request_stop(0);
        return false;
    }
    return true;
}

/* READY=1 once Redis and every source are connected
 * (with no source: Redis); until then STATUS= says what is awaited. */
static void check_ready(Parts *p, const Config *running, bool *ready)
{
    if (p->reads && redis_link_idle(&p->reads_link) && !p->reads_seen) {
        p->reads_seen = true;
        metrics_waiting(READS, NULL);
    }
    if (p->amqp && amqp_source_ready(p->amqp))
        metrics_waiting("amqp source", NULL);
    if (!*ready && (!p->kafka || kafka_source_ready(p->kafka)) &&
        (!p->amqp || amqp_source_ready(p->amqp)) && (!p->reads || p->reads_seen)) {
        *ready = true;
        sd_notify(0, "READY=1\nSTATUS=ready");
        reload_ready();
        log_at(LOG_INFO, "main", "ready: %d relation%s, sources:%s%s", running->nrelations,
               plural(running->nrelations), p->kafka ? " kafka" : "", p->amqp ? " amqp" : "");
    }
}

/* Runs until SIGTERM / SIGINT (or a source's fatal error), reloading on
 * SIGHUP. With WatchdogSec= the watchdog is pinged every half period, and
 * only while every source thread's loop turned since the previous ping: a
 * thread stuck in a call that never returns stops the pings, and systemd
 * restarts the daemon. */
static void run(Parts *p, const sigset_t *sigs, const char *path, const Config **running)
{
    Watchdog dog;
    watchdog_init(&dog);
    bool ready = false;
    int64_t next_status = 0;
    for (;;) {
        check_ready(p, *running, &ready);
        if (clock_now_ms() >= next_status) {
            next_status = clock_now_ms() + 5000;
            status_notify(ready, p->kafka, p->amqp, p->reads && !p->reads_seen);
        }
        watchdog_tick(&dog);
        int64_t wait_ms = watchdog_wait_ms(&dog, ready);
        struct timespec tick = {wait_ms / 1000, (wait_ms % 1000) * 1000000};
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGHUP) {
            reload_config(path, running);
            if (p->reads && !engine_set_config(p->reads, *running))
                log_at(LOG_ERROR, "main", "out of memory for the reloaded configuration");
        } else if (sig == SIGTERM || sig == SIGINT) {
            break;
        } else if (lifecycle_stopping()) {
            break; /* a source met a fatal error */
        } else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            log_at(LOG_ERROR, "main", "sigtimedwait: %s", strerror(errno));
        }
    }
}

static bool sources_done(const Parts *p)
{
    return (!p->kafka || kafka_source_done(p->kafka)) &&
           (!p->amqp || amqp_source_done(p->amqp)) && http_source_done(p->writes);
}

/* Drain: stop fetching, finish the batch, confirm, commit/ack, close. A
 * second SIGTERM, or the deadline passed, exits at once (_exit(1)). The exit
 * status: 1 when a thread abandoned work. */
static int drain(const Parts *p, const sigset_t *sigs, int shutdown_timeout_ms)
{
    sd_notify(0, "STOPPING=1");
    log_at(LOG_INFO, "main", "stopping: draining within %d ms", shutdown_timeout_ms);
    lifecycle_request_stop(shutdown_timeout_ms);
    int64_t give_up = clock_now_ms() + shutdown_timeout_ms + ABANDON_GRACE_MS;
    while (!sources_done(p)) {
        struct timespec tick = {0, 50 * 1000000};
        int sig = sigtimedwait(sigs, NULL, &tick);
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
    return lifecycle_abandoned() ? 1 : 0;
}

/* In reverse order of start. */
static void stop(Parts *p)
{
    http_stop(p->http);
    http_source_free(p->writes);
    engine_free(p->reads);
    amqp_source_free(p->amqp);
    kafka_source_free(p->kafka);
    /* after the sources: the backlogs delivered until empty or the drain
     * deadline; what is left is durable (the next start sends it) */
    if (lifecycle_stopping())
        hook_deliverers_drain(p->hooks);
    hook_deliverers_stop(p->hooks);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool check_only = false, connect_too = false;
    int rc = parse_args(argc, argv, &path, &check_only, &connect_too);
    if (rc >= 0)
        return rc;

    /* 1. The configuration. The log: logfmt on stderr, with the journal's
     * priority prefixes when stderr is the journal. */
    static LogfmtSink log_sink;
    log_sink.journal = log_stderr_is_journal();
    log_set_sink(log_sink_logfmt, &log_sink);
    amqp_conn_observe_blocked(metrics_amqp_blocked);
    char err[CONFIG_ERR_MAX];
    Config *cfg = config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "relationd: %s\n", err);
        return 1;
    }
    warn_exposed(path, check_only);
    if (check_only)
        return check_config(path, cfg, connect_too);
    const Config *running = cfg;
    atomic_store(&log_max_level, cfg->log_level);
    if (!reload_init(cfg) || !shared_config_set(cfg)) { /* cfg is the shared configuration's now */
        fprintf(stderr, "relationd: out of memory\n");
        return 1;
    }

    /* 2. Signals: blocked in every thread, taken by sigtimedwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* 3. Start, 4. run until SIGTERM, 5. drain, 6. stop in reverse order. */
    Parts parts = {0};
    int status = 1;
    if (start(&parts, running)) {
        log_at(LOG_INFO, "main", "started: %d relation%s, sources:%s%s", running->nrelations,
               plural(running->nrelations), parts.kafka ? " kafka" : "",
               parts.amqp ? " amqp" : "");
        sd_notify(0, "STATUS=connecting to Redis and the sources");
        run(&parts, &sigs, path, &running);
        status = drain(&parts, &sigs, running->shutdown_timeout_ms);
    }
    stop(&parts);
    shared_config_clear();
    reload_free();
    log_at(LOG_INFO, "main", "stopped");
    return status;
}
