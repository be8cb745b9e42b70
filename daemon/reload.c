/* reload.c — SIGHUP's reload (reload.h). State: the property history and
 * whether READY=1 was sent, both of the main thread. Failures (a file that
 * does not validate, out of memory) are logged and keep the running
 * configuration; a history that cannot be compared is a warning (the
 * reload goes on). */
#include "daemon/reload.h"
#include "config/history.h"
#include "daemon/shared_config.h"
#include "lib/log.h"

#include <stdatomic.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/* Every property the relations have had since start (a reload's warnings). */
static PropertyHistory *history;

/* READY=1 ends a reload only once the daemon was ready. */
static bool ready;

bool reload_init(const Config *cfg)
{
    history = history_new(cfg);
    return history != NULL;
}

void reload_ready(void)
{
    ready = true;
}

void reload_free(void)
{
    history_free(history);
    history = NULL;
}

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
void reload_config(const char *path, const Config **running)
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
            log_at(LOG_INFO, "config", "reloaded %s: %d relation%s", path, nrel,
                   nrel == 1 ? "" : "s");
        }
    }
    if (ready)
        sd_notify(0, "READY=1");
}
