/* pipeline.c — message → event → apply → triggers → publish → outbox cleared
 * (pipeline.h). */
#include "daemon/pipeline.h"
#include "daemon/backoff.h"
#include "daemon/log.h"
#include "daemon/publisher.h"
#include "daemon/shared_config.h"
#include "handlers/engine.h"

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
    TriggerSet triggers;
    Outgoing *out; /* the hooks messages of a batch */
    size_t out_cap;
};

static bool grow_outgoing(Pipeline *p, size_t n, char *err, size_t errlen)
{
    if (n <= p->out_cap)
        return true;
    Outgoing *out = realloc(p->out, n * sizeof *out);
    if (!out) {
        snprintf(err, errlen, "out of memory for %zu triggers", n);
        return false;
    }
    p->out = out;
    p->out_cap = n;
    return true;
}

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
    triggers_free(&p->triggers);
    free(p->out);
    if (p->cfg)
        shared_config_release(p->cfg);
    free(p);
}

const Config *pipeline_config(Pipeline *p)
{
    if (shared_config_outdated(p->cfg)) {
        ConfigRef *fresh = shared_config_acquire();
        if (!engine_set_config(p->engine, config_ref_get(fresh))) {
            log_at(LOG_ERROR, p->who, "out of memory for the reloaded configuration; keeping the "
                   "previous one");
            shared_config_release(fresh);
            return config_ref_get(p->cfg);
        }
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

/* Publishes every trigger of the batch once; false with the reason. */
static bool publish_once(Pipeline *p, const TriggerSet *t, char *err, size_t errlen)
{
    if (!grow_outgoing(p, t->n, err, errlen))
        return false;
    for (size_t i = 0; i < t->n; i++)
        p->out[i] = (Outgoing){t->items[i].routing_key, t->items[i].id, "application/json", NULL,
                               t->items[i].body, t->items[i].len};
    return publisher_send(p->hooks, p->out, t->n, err, errlen);
}

/* Publishes every trigger of the batch; waits out hooks outages. False only
 * once the drain deadline has passed. */
static bool publish_triggers(Pipeline *p, const TriggerSet *t)
{
    char err[512];
    if (t->n == 0)
        return true;
    while (!publish_once(p, t, err, sizeof err))
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
    triggers_reset(&p->triggers);
    while (!(applied = engine_apply(p->engine, events, nev, res, &p->triggers, err, sizeof err)))
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
    if (!publish_triggers(p, &p->triggers))
        goto done;

    /* 3. The outboxes: confirmed triggers cleared. Past the drain deadline
     *    the batch is not acknowledged, so its redelivery clears them. */
    while (!engine_delivered(p->engine, events, res, nev, err, sizeof err))
        if (!backoff_failed(&p->redis_down, err))
            goto done;
    backoff_ok(&p->redis_down);
    ok = true;
done:
    free(events);
    free(index);
    free(res);
    return ok;
}
