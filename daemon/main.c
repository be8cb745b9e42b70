/* relationd — parses the command line, loads the configuration, starts the
 * parts in order, runs until SIGTERM, stops them in reverse order. */
#include "config/config.h"
#include "daemon/log.h"
#include "handlers/engine.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_signal(int sig)
{
    if (sig == SIGHUP) {
        reload_requested = 1;
    } else if (stop_requested) {
        _exit(1); /* a second SIGTERM: exit at once */
    } else {
        stop_requested = 1;
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: relationd -c FILE [--check-config]\n"
                 "       relationd --version\n");
}

/* Loads the file again; a file that fails validation keeps the running one. */
static void reload(const char *path, Config **cfg, Engine *engine)
{
    char err[CONFIG_ERR_MAX];
    sd_notify(0, "RELOADING=1");
    Config *fresh = config_load(path, err, sizeof err);
    if (!fresh) {
        log_at(LOG_ERROR, "config", "reload refused, keeping the running configuration: %s", err);
    } else {
        if (strcmp(fresh->redis_url, (*cfg)->redis_url) != 0)
            log_at(LOG_WARN, "config", "redis.url cannot change at run time: restart to apply it");
        free(fresh->redis_url);
        fresh->redis_url = strdup((*cfg)->redis_url);
        fresh->redis = (*cfg)->redis;
        if (!fresh->redis_url) {
            log_at(LOG_ERROR, "config", "reload: out of memory, keeping the running configuration");
            config_free(fresh);
        } else {
            engine_set_config(engine, fresh);
            config_free(*cfg);
            *cfg = fresh;
            log_at(LOG_INFO, "config", "reloaded %s: %d relations", path, fresh->nrelations);
        }
    }
    sd_notify(0, "READY=1");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool check_only = false;
    char err[CONFIG_ERR_MAX];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("relationd %s\n", RELATIOND_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
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
    Config *cfg = config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "relationd: %s\n", err);
        return 1;
    }
    if (check_only) {
        printf("%s: ok (%d relations)\n", path, cfg->nrelations);
        config_free(cfg);
        return 0;
    }

    /* 2. Signals: handlers only set flags. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* 3. The engine: Redis and its scripts. */
    Engine *engine = engine_new(cfg, err, sizeof err);
    if (!engine) {
        log_at(LOG_ERROR, "redis", "%s", err);
        config_free(cfg);
        return 1;
    }

    sd_notify(0, "READY=1");
    log_at(LOG_INFO, "main", "ready: %d relations", cfg->nrelations);
    while (!stop_requested) {
        if (reload_requested) {
            reload_requested = 0;
            reload(path, &cfg, engine);
        }
        pause();
    }

    /* Stop in reverse order. */
    sd_notify(0, "STOPPING=1");
    log_at(LOG_INFO, "main", "stopping");
    engine_free(engine);
    config_free(cfg);
    return 0;
}
