/* pipeline.c — message → event → apply → triggers → publish → outbox cleared
 * (pipeline.h). */
#include "daemon/pipeline.h"
#include "daemon/backoff.h"
#include "daemon/log.h"
#include "daemon/publisher.h"
#include "daemon/shared_config.h"
#include "handlers/engine.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Pipeline {
    const char *who;
    ConfigRef *cfg;
    Engine *engine;
    Publisher *hooks;
    Backoff redis_down;
    Backoff hooks_down;
    Backoff memory;
};

Pipeline *pipeline_new(const char *who)
{
    Pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->who = who;
    p->cfg = shared_config_acquire();
    const Config *cfg = config_ref_get(p->cfg);
    p->engine = engine_create(cfg);
    p->hooks = publisher_new(cfg->hooks_url, cfg->hooks_exchange, "topic");
    if (!p->engine || !p->hooks) {
        pipeline_free(p);
        return NULL;
    }
    backoff_init(&p->redis_down, who, "redis", cfg->retry_max_ms);
    backoff_init(&p->hooks_down, who, "hooks exchange", cfg->retry_max_ms);
    backoff_init(&p->memory, who, "memory", cfg->retry_max_ms);
    return p;
}

void pipeline_free(Pipeline *p)
{
    if (!p)
        return;
    engine_free(p->engine);
    publisher_free(p->hooks);
    if (p->cfg)
        shared_config_release(p->cfg);
    free(p);
}

const Config *pipeline_config(Pipeline *p)
{
    if (shared_config_outdated(p->cfg)) {
        ConfigRef *fresh = shared_config_acquire();
        engine_set_config(p->engine, config_ref_get(fresh));
        shared_config_release(p->cfg);
        p->cfg = fresh;
        const Config *cfg = config_ref_get(fresh);
        p->redis_down.max_ms = p->hooks_down.max_ms = p->memory.max_ms = cfg->retry_max_ms;
    }
    return config_ref_get(p->cfg);
}

void pipeline_idle(Pipeline *p)
{
    publisher_poll(p->hooks);
}

/* A trigger body's routing key and message id, from its own fields. */
static bool trigger_route(const char *body, char *key, size_t keylen, char *id, size_t idlen)
{
    json_error_t jerr;
    json_t *t = json_loads(body, 0, &jerr);
    const char *rel = NULL, *dir = NULL, *kind = NULL, *tid = NULL;
    if (t && json_unpack_ex(t, &jerr, 0, "{s:{s:s, s:s, s:s, s:s}}", "event_data", "relation",
                            &rel, "direction", &dir, "kind", &kind, "id", &tid) == 0) {
        snprintf(key, keylen, "relation.%s.%s.%s", rel, dir, kind);
        snprintf(id, idlen, "%s", tid);
    }
    bool ok = tid != NULL;
    json_decref(t);
    return ok;
}

typedef struct {
    char key[CONFIG_SHORT_MAX + 32];
    char id[64];
} Route;

/* Publishes every trigger of the batch once; false with the reason. */
static bool publish_once(Pipeline *p, const ApplyResult *res, size_t nres, size_t total,
                         char *err, size_t errlen)
{
    size_t n = 0;
    bool ok = false;
    Outgoing *out = calloc(total, sizeof *out);
    Route *routes = calloc(total, sizeof *routes);
    if (!out || !routes) {
        snprintf(err, errlen, "out of memory for %zu triggers", total);
        goto done;
    }
    for (size_t i = 0; i < nres; i++)
        for (size_t j = 0; j < res[i].ntriggers; j++) {
            const char *body = res[i].triggers[j];
            if (!trigger_route(body, routes[n].key, sizeof routes[n].key, routes[n].id,
                               sizeof routes[n].id)) {
                snprintf(err, errlen, "cannot read the routing fields of a trigger (out of "
                         "memory?)");
                goto done;
            }
            out[n] = (Outgoing){routes[n].key, routes[n].id, "application/json", NULL, body,
                                strlen(body)};
            n++;
        }
    ok = publisher_send(p->hooks, out, n, err, errlen);
done:
    free(out);
    free(routes);
    return ok;
}

/* Publishes every trigger of the batch; waits out hooks outages. False only
 * once the drain deadline has passed. */
static bool publish_triggers(Pipeline *p, const ApplyResult *res, size_t nres)
{
    size_t total = 0;
    char err[512];
    for (size_t i = 0; i < nres; i++)
        total += res[i].ntriggers;
    if (total == 0)
        return true;
    while (!publish_once(p, res, nres, total, err, sizeof err))
        if (!backoff_failed(&p->hooks_down, err))
            return false;
    backoff_ok(&p->hooks_down);
    return true;
}

bool pipeline_process(Pipeline *p, Message *msgs, size_t n)
{
    const Config *cfg = pipeline_config(p);
    Event *events = NULL;
    size_t *index = NULL;
    ApplyResult *res = NULL;
    size_t nev = 0;
    char err[512];
    bool ok = false, applied = false;

    for (;;) {
        events = calloc(n ? n : 1, sizeof *events);
        index = calloc(n ? n : 1, sizeof *index);
        res = calloc(n ? n : 1, sizeof *res);
        if (events && index && res)
            break;
        free(events);
        free(index);
        free(res);
        events = NULL;
        index = NULL;
        res = NULL;
        snprintf(err, sizeof err, "out of memory for a batch of %zu", n);
        if (!backoff_failed(&p->memory, err))
            goto done;
    }
    backoff_ok(&p->memory);
    for (size_t i = 0; i < n; i++) {
        char why[EVENT_ERR_MAX];
        msgs[i].dead = false;
        if (event_parse(cfg, msgs[i].data, msgs[i].len, &events[nev], why, sizeof why)) {
            index[nev++] = i;
        } else {
            msgs[i].dead = true;
            snprintf(msgs[i].reason, sizeof msgs[i].reason, "%s", why);
            log_at(LOG_WARN, p->who, "%s: refused: %s", msgs[i].where, why);
        }
    }
    if (nev == 0) {
        ok = true;
        goto done;
    }

    /* 1. Statistics: one pipeline; a failure leaves nothing known, and
     *    applying again is safe (duplicates give their pending triggers). */
    while (!(applied = engine_apply(p->engine, events, nev, res, err, sizeof err)))
        if (!backoff_failed(&p->redis_down, err))
            goto done;
    backoff_ok(&p->redis_down);
    for (size_t k = 0; k < nev; k++)
        if (res[k].status == APPLY_INVALID) {
            Message *m = &msgs[index[k]];
            m->dead = true;
            snprintf(m->reason, sizeof m->reason, "%s", res[k].error);
            log_at(LOG_WARN, p->who, "%s: event %s refused: %s", m->where, events[k].id,
                   res[k].error);
        }

    /* 2. Triggers: published and confirmed. */
    if (!publish_triggers(p, res, nev))
        goto done;

    /* 3. The outboxes: confirmed triggers cleared. Past the drain deadline
     *    the batch is not acknowledged, so its redelivery clears them. */
    while (!engine_delivered(p->engine, events, nev, err, sizeof err))
        if (!backoff_failed(&p->redis_down, err))
            goto done;
    backoff_ok(&p->redis_down);
    ok = true;
done:
    if (applied)
        engine_results_clear(res, nev);
    free(events);
    free(index);
    free(res);
    return ok;
}
