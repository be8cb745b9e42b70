/* pipeline.c — message → event → apply → triggers → appended to the hooks'
 * backlogs → outbox cleared → dead letters → acknowledged, up to PIPELINE_DEPTH batches overlapping in
 * the one ring of batches in flight (pipeline.h). */
#include "daemon/pipeline.h"
#include "lib/clock.h"

#include "lib/grow.h"
#include "daemon/backoff.h"
#include "daemon/lifecycle.h"
#include "daemon/load.h"
#include "lib/log.h"
#include "lib/ring.h"
#include "daemon/metrics.h"
#include "daemon/hook_sink.h"
#include "daemon/shared_config.h"
#include "daemon/trigger_feed.h"
#include "handlers/apply.h"
#include "handlers/backlog.h"
#include "handlers/layout.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    STAGE_FREE,     /* not in use */
    STAGE_SENT,     /* calls written to Redis (or their writing failed: applied later) */
    STAGE_APPLIED,  /* results in hand, triggers rendered */
    STAGE_PUBLISHED /* triggers appended to the hooks' backlogs */
} Stage;

typedef struct PipelineBatch PipelineBatch;

#define HELD_LAYOUT "Redis lost its data"

struct PipelineBatch {
    Stage stage;
    bool sent_ok;      /* the calls reached Redis' socket */
    bool abandoned;    /* the drain deadline passed before it was parsed */
    const char *held;  /* abandoned: a stop came while consumption was paused (why), or NULL */
    int64_t started_ms; /* for the batch duration metric */
    uint64_t seq;       /* order of starting */
    ConfigRef *cfg;    /* the configuration its events were parsed with */
    Message *msgs;     /* borrowed */
    size_t n;
    Event *events;     /* the parsed messages, index[k]: their message */
    size_t *index;
    ApplyResult *res;
    size_t nev, cap;
    TriggerSet triggers;
    BacklogEntry *bl;  /* the triggers for each hook whose filter passes them */
    size_t nbl, bl_cap;
    size_t *bl_off;    /* while building: key, event_type, rk offsets in bl_text */
    size_t bl_off_cap;
    JsonBuf bl_text;
    long outbox; /* its outbox entries counted in the metric */
};

struct Pipeline {
    PipelineSource src;
    const char *who; /* src.who */
    ConfigRef *cfg;
    Engine *engine;  /* the apply calls, their outbox clearings, the layout key */
    /* The appends to the hooks' backlogs and their lengths: a connection of
     * its own, free while the apply connection has calls in flight; with the
     * configuration of the start (its redis and hooks settings do not change
     * at run time), held for its life. */
    Engine *appends;
    ConfigRef *appends_cfg;
    RedisLink redis;
    Backoff memory;
    /* Backpressure: the hooks' backlogs read every BACKLOG_CHECK_MS; full:
     * one at or above its max_backlog (consumption paused). */
    int64_t backlog_next_ms;
    bool backlog_full;
    PipelineBatch slots[PIPELINE_DEPTH]; /* one per ring slot */
    uint64_t seq; /* batches started */
    /* The ring slot of the newest batch in flight when its calls were sent
     * and its replies not read yet (-1: none): read in the next turn, once
     * the batch after it is parsed, its appends sent with that batch's
     * calls. */
    int unread;
    /* the ring of the source's batches: */
    PipelineBatch *started[PIPELINE_DEPTH]; /* a source slot's batch in the pipeline */
    size_t taken[PIPELINE_DEPTH];           /* the messages it took */
    Ring ring; /* current: the source slot being filled; in flight: the slots
                * before it, published, awaiting their confirms */
    /* The layout key (handlers/layout.h): the keyspace id seen ("" before
     * the first check), the connection it was checked on, when next.
     * lost: the keyspace was wiped or changed under the daemon (or holds a
     * layout not known); consumption is paused until the key holds an id
     * other than lost_id and layout_id (relationctl layout ack). */
    char layout_id[LAYOUT_ID_MAX], lost_id[LAYOUT_ID_MAX];
    unsigned long layout_conn;
    int64_t layout_next_ms;
    bool lost, lost_counted;
};

/* relationd_triggers_unroutable_total at 0 for the relations configured. */
static void list_relations(const Config *cfg)
{
    for (int i = 0; i < cfg->nrelations; i++)
        metrics_triggers_unroutable_list(cfg->relations[i].short_name);
}

Pipeline *pipeline_new(const PipelineSource *src)
{
    Pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    ring_init(&p->ring, PIPELINE_DEPTH);
    p->unread = -1;
    p->src = *src;
    p->who = src->who;
    p->cfg = shared_config_acquire();
    const Config *cfg = config_ref_get(p->cfg);
    p->engine = engine_create(cfg);
    p->appends_cfg = config_ref_retain(p->cfg);
    p->appends = engine_create(cfg);
    if (!p->engine || !p->appends) {
        pipeline_free(p);
        return NULL;
    }
    list_relations(cfg);
    redis_link_init(&p->redis, p->who, p->engine, cfg->retry_max_ms);
    backoff_init(&p->memory, p->who, "memory", cfg->retry_max_ms);
    metrics_component(p->who, "redis data", true); /* listed from the start (layout_lost) */
    return p;
}

/* The slot is free; its events (and the configuration they point into)
 * stay until it is reused: the next batch's duplicates are checked against
 * them. */
/* The batch's outbox entries, for relationd_outbox_entries. */
static void count_outbox(PipelineBatch *b, long n)
{
    metrics_outbox(n - b->outbox);
    b->outbox = n;
}

/* The batch's slot free again. A batch that did not deliver its triggers
 * (abandoned, or its completion failed) leaves its events out of the
 * duplicate check of the batches after it (others), so that their
 * redelivery in this process renders the triggers from the outbox instead
 * of counting them as in hand. */
static void slot_release(PipelineBatch *b, bool delivered)
{
    count_outbox(b, 0); /* cleared, or left to a redelivery */
    b->stage = STAGE_FREE;
    b->msgs = NULL;
    b->n = 0;
    if (!delivered)
        b->nev = 0;
}

void pipeline_free(Pipeline *p)
{
    if (!p)
        return;
    engine_free(p->engine);
    engine_free(p->appends);
    if (p->appends_cfg)
        shared_config_release(p->appends_cfg);
    for (int i = 0; i < PIPELINE_DEPTH; i++) {
        PipelineBatch *b = &p->slots[i];
        if (b->cfg)
            shared_config_release(b->cfg);
        free(b->events);
        free(b->index);
        free(b->res);
        free(b->bl);
        free(b->bl_off);
        jsonbuf_free(&b->bl_text);
        triggers_free(&b->triggers);
    }
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
        p->redis.down.max_ms = p->memory.max_ms = cfg->retry_max_ms;
        list_relations(cfg);
    }
    return config_ref_get(p->cfg);
}

/* ---- Redis ---- */

void redis_link_init(RedisLink *l, const char *who, Engine *e, int max_ms)
{
    l->engine = e;
    l->next_check_ms = 0;
    backoff_init(&l->down, who, "redis", max_ms);
}

bool redis_link_failed(RedisLink *l, const char *err)
{
    l->next_check_ms = 0;
    if (engine_refused(l->engine))
        return backoff_refused(&l->down, err);
    return backoff_failed(&l->down, err);
}

void redis_link_ok(RedisLink *l)
{
    backoff_ok(&l->down);
    l->next_check_ms = clock_now_ms() + REDIS_IDLE_CHECK_MS;
}

bool redis_link_idle(RedisLink *l)
{
    char err[512];
    int64_t now = clock_now_ms();
    if (now < l->next_check_ms)
        return l->down.attempt == 0;
    if (engine_ping(l->engine, err, sizeof err)) {
        redis_link_ok(l);
        return true;
    }
    /* An outage is tried again every check: its return is seen within
     * seconds (a connection refused costs little). */
    l->next_check_ms = clock_now_ms() +
                       (engine_refused(l->engine)
                            ? backoff_refused_note(&l->down, err)
                            : backoff_note(&l->down, err, REDIS_IDLE_CHECK_MS));
    return false;
}

static bool layout_check(Pipeline *p);

bool pipeline_connect(Pipeline *p)
{
    char err[512];
    while (!engine_connect(p->engine, err, sizeof err))
        if (!redis_link_failed(&p->redis, err))
            return false;
    redis_link_ok(&p->redis);
    (void)layout_check(p); /* the layout key written, or its id seen */
    return true;
}

/* ---- the layout key: a keyspace wiped under the daemon ---- */

/* Pipelines that see the keyspace lost now: the first logs and counts it. */
static atomic_int keyspace_lost;

/* The keyspace is not the one seen before (id: what the key holds now, ""
 * when it is gone), or its layout is not known (why, counted false). */
static void layout_lost(Pipeline *p, const char *id, const char *why, bool counted)
{
    char reason[512];
    const char *key = pipeline_config(p)->key_prefix;
    if (counted)
        snprintf(reason, sizeof reason, "Redis lost its data: the layout key %slayout %s (a "
                 "restart without persistence? FLUSHALL?); consumption paused until "
                 "relationctl layout ack or a restart", key,
                 id[0] ? "holds another keyspace id" : "is gone");
    else
        snprintf(reason, sizeof reason, "%s; consumption paused", why);
    p->lost = true;
    p->lost_counted = counted;
    snprintf(p->lost_id, sizeof p->lost_id, "%s", id);
    metrics_component_refused(p->who, "redis data", reason);
    if (!counted)
        log_at(LOG_ERROR, p->who, "%s", reason);
    else if (atomic_fetch_add(&keyspace_lost, 1) == 0) {
        metrics_keyspace_lost();
        log_at(LOG_ERROR, p->who, "%s", reason);
    }
}

/* The key holds a new id (an acknowledgement, or a daemon started since). */
static void layout_back(Pipeline *p, const char *id)
{
    snprintf(p->layout_id, sizeof p->layout_id, "%s", id);
    p->lost = false;
    metrics_component(p->who, "redis data", true);
    if (p->lost_counted)
        atomic_fetch_sub(&keyspace_lost, 1);
    log_at(LOG_INFO, p->who, "the layout key %slayout holds a new keyspace id (acknowledged): "
           "consuming again", pipeline_config(p)->key_prefix);
}

/* The layout key checked when due (a new connection, or REDIS_IDLE_CHECK_MS
 * since the last check) and no batch's replies are due: written on the
 * first check, compared with what was seen on the others. False while the
 * keyspace is lost (consumption paused). A failed connection or an error
 * reply (a server still loading its data) changes nothing here: the
 * outage is the batches' and the idle check's. */
static bool layout_check(Pipeline *p)
{
    char err[512], id[LAYOUT_ID_MAX];
    unsigned long conn;
    bool written;
    if (!engine_layout_idle(p->engine, &conn) ||
        (conn == p->layout_conn && clock_now_ms() < p->layout_next_ms))
        return !p->lost;
    LayoutResult res = p->layout_id[0] ? engine_layout_get(p->engine, id, err, sizeof err)
                                       : engine_layout_claim(p->engine, id, &written, err, sizeof err);
    if (res == LAYOUT_FAILED)
        return !p->lost;
    p->layout_conn = conn;
    p->layout_next_ms = clock_now_ms() + REDIS_IDLE_CHECK_MS;
    if (res == LAYOUT_UNKNOWN) {
        if (!p->lost)
            layout_lost(p, "?", err, false);
    } else if (p->lost && !p->lost_counted) {
        if (id[0])
            layout_back(p, id); /* a layout not known, replaced */
    } else if (!p->layout_id[0]) {
        snprintf(p->layout_id, sizeof p->layout_id, "%s", id); /* the first check */
    } else if (p->lost) {
        if (id[0] && strcmp(id, p->lost_id) != 0 && strcmp(id, p->layout_id) != 0)
            layout_back(p, id);
    } else if (strcmp(id, p->layout_id) != 0) {
        layout_lost(p, id, NULL, true);
    }
    return !p->lost;
}

/* Before a batch's calls go to Redis: while the keyspace is lost, waits
 * (its events held, neither applied nor acknowledged) until it is
 * acknowledged. False when a stop is asked meanwhile: the batch is left to
 * be delivered again. */
static bool layout_hold(Pipeline *p)
{
    char err[512];
    unsigned long conn;
    if (!engine_layout_idle(p->engine, &conn) && !engine_connect(p->engine, err, sizeof err))
        return true; /* the outage is the batch's to wait out; checked when it ends */
    while (!layout_check(p)) {
        if (lifecycle_stopping() || lifecycle_deadline_passed())
            return false;
        lifecycle_sleep_ms(200);
        if (!engine_layout_idle(p->engine, &conn) && !engine_connect(p->engine, err, sizeof err))
            lifecycle_sleep_ms(800);
    }
    return true;
}

/* ---- backpressure: the hooks' backlogs ---- */

#define BACKLOG_CHECK_MS 100

/* Whether a hook's backlog is at or above its max_backlog: read (XLEN of
 * every hook) at most every BACKLOG_CHECK_MS, when no batch's replies are
 * due; a failed read keeps the previous answer (the outage is the
 * batches'). */
static bool backlog_check(Pipeline *p)
{
    const Config *cfg = pipeline_config(p);
    if (cfg->nhooks == 0 || clock_now_ms() < p->backlog_next_ms)
        return p->backlog_full;
    p->backlog_next_ms = clock_now_ms() + BACKLOG_CHECK_MS;
    long long *len = calloc((size_t)cfg->nhooks, sizeof *len);
    char err[512];
    if (!len)
        return p->backlog_full;
    if (!engine_backlog_lengths(p->appends, cfg, len, err, sizeof err)) {
        log_at(LOG_DEBUG, p->who, "reading the hooks' backlogs: %s", err);
        free(len);
        return p->backlog_full;
    }
    int full = -1;
    for (int i = 0; i < cfg->nhooks; i++) {
        metrics_hook_backlog(cfg->hooks[i].name, len[i]);
        if (full < 0 && len[i] >= cfg->hooks[i].max_backlog)
            full = i;
    }
    if (full >= 0) {
        char reason[256];
        snprintf(reason, sizeof reason, "hook %s: backlog %lld \xe2\x89\xa5 max_backlog %lld",
                 cfg->hooks[full].name, len[full], (long long)cfg->hooks[full].max_backlog);
        if (!p->backlog_full)
            log_at(LOG_WARN, p->who, "%s: consumption paused until it drains", reason);
        metrics_component_refused(p->who, "hooks backlog", reason);
    } else if (p->backlog_full) {
        metrics_component(p->who, "hooks backlog", true);
        log_at(LOG_INFO, p->who, "the hooks' backlogs are below their max_backlog: consuming "
               "again");
    }
    free(len);
    p->backlog_full = full >= 0;
    return p->backlog_full;
}

/* Before a batch's calls go to Redis: while a hook's backlog is full, waits
 * (its events held, neither applied nor acknowledged). False when a stop is
 * asked meanwhile: the batch is left to be delivered again. */
static bool backlog_hold(Pipeline *p)
{
    while (backlog_check(p)) {
        if (lifecycle_stopping() || lifecycle_deadline_passed())
            return false;
        lifecycle_sleep_ms(BACKLOG_CHECK_MS);
    }
    return true;
}

/* Neither hold would wait or read the apply connection now, so that a
 * batch's calls may go behind those of the batch before, unread: the
 * connection is up and was checked (a new one is checked before any call
 * goes on it), the keyspace is not lost, no backlog is full, and the layout
 * key's check is not due (layout_check; the backlogs' lengths are read on
 * the appends' connection). Never on a cluster: there the replies are read
 * before the next batch goes, so that the redirections met while reading
 * (a failover, a resharding) are followed before anything is routed
 * anew. */
static bool holds_quiet(Pipeline *p)
{
    unsigned long conn;
    return engine_layout_connected(p->engine, &conn) && !engine_cluster(p->engine) &&
           conn == p->layout_conn && !p->lost && !p->backlog_full &&
           clock_now_ms() < p->layout_next_ms;
}

void pipeline_idle(Pipeline *p)
{
    char err[256];
    if (!engine_sync(p->engine, err, sizeof err))
        log_at(LOG_WARN, p->who, "%s", err);
    if (redis_link_idle(&p->redis)) {
        (void)layout_check(p);
        (void)backlog_check(p); /* /readyz and the gauge follow the backlogs while idle */
    }
}

/* ---- the batch's arrays ---- */

static bool slot_grow(PipelineBatch *b, size_t n)
{
    if (n <= b->cap)
        return true;
    if (!GROW_EXACT(b->events, n) || !GROW_EXACT(b->index, n) || !GROW_EXACT(b->res, n))
        return false;
    b->cap = n;
    return true;
}


/* The events of the batches started before b: a duplicate of one of them
 * yields no trigger (that batch delivers them, or delivered them and its
 * outbox clearing is still behind this batch's calls). Never a later
 * batch's: when both are applied again after an outage, the later one sees
 * the event as a duplicate of this one, and neither would deliver it. Nor
 * one released without delivering (slot_release: no events left). */
static int others(const Pipeline *p, const PipelineBatch *b, EventSpan *spans)
{
    int n = 0;
    for (int i = 0; i < PIPELINE_DEPTH; i++)
        if (&p->slots[i] != b && p->slots[i].seq < b->seq)
            spans[n++] = (EventSpan){p->slots[i].events, p->slots[i].nev};
    return n;
}

/* ---- stage 1: parse, send ---- */

/* One warning for a refused message: where it came from (topic, partition
 * and offset; or queue and delivery tag), the event's id when known, why. */
static void log_refusal(const Pipeline *p, const Message *m, const char *msg, const char *event,
                        const char *reason)
{
    if (LOG_WARN > atomic_load_explicit(&log_max_level, memory_order_relaxed))
        return;
    char part[16], pos[24];
    snprintf(part, sizeof part, "%d", m->partition);
    snprintf(pos, sizeof pos, "%lld", m->position);
    const char *k1 = m->partition >= 0 ? "topic" : "queue";
    const char *k3 = m->partition >= 0 ? "offset" : "delivery_tag";
    if (m->partition >= 0 && event)
        log_kv(LOG_WARN, p->who, msg, k1, m->origin, "partition", part, k3, pos, "event", event,
               "reason", reason, (char *)NULL);
    else if (m->partition >= 0)
        log_kv(LOG_WARN, p->who, msg, k1, m->origin, "partition", part, k3, pos, "reason",
               reason, (char *)NULL);
    else if (event)
        log_kv(LOG_WARN, p->who, msg, k1, m->origin, k3, pos, "event", event, "reason", reason,
               (char *)NULL);
    else
        log_kv(LOG_WARN, p->who, msg, k1, m->origin, k3, pos, "reason", reason, (char *)NULL);
}

/* Parses the messages of ring slot `slot` (bad ones get dead = true and a
 * reason); batch_send writes their calls to Redis. msgs stay the caller's
 * until batch_finish. The slot's previous batch must be finished or
 * abandoned. */
static PipelineBatch *batch_parse(Pipeline *p, int slot, Message *msgs, size_t n)
{
    PipelineBatch *b = &p->slots[slot];
    char err[512];
    if (b->stage != STAGE_FREE) {
        log_at(LOG_ERROR, p->who, "more than %d batches started; refused", PIPELINE_DEPTH);
        return NULL;
    }
    const Config *cfg = pipeline_config(p);
    if (b->cfg)
        shared_config_release(b->cfg);
    b->cfg = config_ref_retain(p->cfg);
    b->abandoned = false;
    b->held = NULL;
    b->msgs = msgs;
    b->n = n;
    b->nev = 0;
    b->sent_ok = false;
    b->started_ms = clock_now_ms();
    b->seq = ++p->seq;
    b->stage = STAGE_SENT;
    load_note_batch(n, (size_t)cfg->batch_size);
    while (!slot_grow(b, n ? n : 1)) {
        snprintf(err, sizeof err, "out of memory for a batch of %zu", n);
        if (!backoff_failed(&p->memory, err)) {
            b->abandoned = true; /* past the drain deadline: nothing parsed */
            return b;
        }
    }
    backoff_ok(&p->memory);
    for (size_t i = 0; i < n; i++) {
        char why[EVENT_ERR_MAX];
        msgs[i].dead = false;
        if (event_parse(cfg, msgs[i].data, msgs[i].len, &b->events[b->nev], why, sizeof why)) {
            b->index[b->nev++] = i;
        } else {
            msgs[i].dead = true;
            snprintf(msgs[i].reason, sizeof msgs[i].reason, "%s", why);
            const char *id = b->events[b->nev].id;
            log_refusal(p, &msgs[i], "message refused", id[0] ? id : NULL, why);
        }
    }
    return b;
}

/* A parsed batch with events to apply. */
static bool sendable(const PipelineBatch *b)
{
    return b && !b->abandoned && b->nev > 0;
}

/* While the keyspace is lost or a hook's backlog is full, waits; false
 * (the batch abandoned, delivered again) when a stop is asked meanwhile. */
static bool batch_hold(Pipeline *p, PipelineBatch *b)
{
    if (!layout_hold(p))
        b->held = HELD_LAYOUT;
    else if (!backlog_hold(p))
        b->held = "a hook's backlog is at its max_backlog";
    else
        return true;
    b->abandoned = true;
    return false;
}

/* Writes the batch's calls to Redis (with what is staged ahead of them). A
 * failure here is retried in batch_publish. */
static void batch_send(Pipeline *p, PipelineBatch *b)
{
    char err[512];
    b->sent_ok = engine_send(p->engine, b->events, b->nev, err, sizeof err);
    if (!b->sent_ok)
        log_at(LOG_DEBUG, p->who, "sending a batch: %s", err);
}

/* ---- stage 2: results, publish ---- */

/* Applies the batch again until Redis answers. False past the drain deadline. */
static bool apply_with_backoff(Pipeline *p, PipelineBatch *b, char *err, size_t errlen)
{
    EventSpan o[PIPELINE_DEPTH];
    int no = others(p, b, o);
    for (;;) {
        triggers_reset(&b->triggers);
        if (!layout_hold(p)) {
            b->held = HELD_LAYOUT;
            return false;
        }
        if (engine_send(p->engine, b->events, b->nev, err, errlen) &&
            engine_recv(p->engine, b->events, b->nev, b->res, &b->triggers, o, no, err, errlen))
            break;
        if (!redis_link_failed(&p->redis, err))
            return false;
    }
    redis_link_ok(&p->redis);
    return true;
}

/* A trigger's side and kind (HOOK_ON_*) from its routing key
 * relation.<short>.<direct|reverse>.<kind>; false for another shape. */
static bool trigger_side_kind(const char *rk, Side *side, int *kind)
{
    static const char *const kinds[] = {"", "attach", "change", "detach", "threshold"};
    const char *k = strrchr(rk, '.');
    if (!k || k - rk < 8)
        return false;
    *kind = 0;
    for (int i = 1; i < 5; i++)
        if (strcmp(k + 1, kinds[i]) == 0)
            *kind = i;
    if (k - rk >= 7 && strncmp(k - 7, ".direct", 7) == 0)
        *side = SIDE_DIRECT;
    else if (k - rk >= 8 && strncmp(k - 8, ".reverse", 8) == 0)
        *side = SIDE_REVERSE;
    else
        return false;
    return *kind != 0;
}

/* Adds a NUL-terminated string to the batch's backlog text; its offset. */
static size_t bl_put(PipelineBatch *b, const char *s)
{
    size_t off = b->bl_text.len;
    jsonbuf_put(&b->bl_text, s, strlen(s) + 1);
    return off;
}

/* The batch's backlog entries: each trigger once for every hook whose
 * filter passes it, in the batch's order. False when out of memory. */
static bool backlog_entries(PipelineBatch *b)
{
    const Config *cfg = config_ref_get(b->cfg);
    b->nbl = 0;
    jsonbuf_reset(&b->bl_text);
    for (size_t k = 0; k < b->nev; k++) {
        const Event *ev = &b->events[k];
        for (size_t t = b->res[k].first; t < b->res[k].first + b->res[k].ntriggers; t++) {
            const Trigger *tr = &b->triggers.items[t];
            Side side;
            int kind;
            if (!trigger_side_kind(tr->routing_key, &side, &kind))
                continue;
            const char *db = side == SIDE_DIRECT ? ev->rel->database_a : ev->rel->database_b;
            const char *profile = side == SIDE_DIRECT ? ev->profile_a : ev->profile_b;
            char et[64], key[EVENT_PROFILE_MAX + 256], rk[EVENT_PROFILE_MAX + 256];
            snprintf(et, sizeof et, "relation_%s_%s",
                     side == SIDE_DIRECT ? "direct" : "reverse", strrchr(tr->routing_key, '.') + 1);
            snprintf(key, sizeof key, "%s:%s", db, profile);
            size_t key_off = (size_t)-1, et_off = 0;
            for (int h = 0; h < cfg->nhooks; h++) {
                const HookDef *def = &cfg->hooks[h];
                if (!hook_filter_pass(def, ev->rel->short_name, side, kind))
                    continue;
                if (key_off == (size_t)-1) {
                    key_off = bl_put(b, key);
                    et_off = bl_put(b, et);
                }
                hook_sink_routing_key(def, tr->routing_key, db, et, rk, sizeof rk);
                if (!GROW_RESERVE(b->bl, b->bl_cap, b->nbl + 1, 64) ||
                    !GROW_RESERVE(b->bl_off, b->bl_off_cap, 3 * (b->nbl + 1), 192))
                    return false;
                b->bl[b->nbl] = (BacklogEntry){def->name, tr->id, tr->body, tr->len, NULL, NULL,
                                               NULL};
                b->bl_off[3 * b->nbl] = key_off;
                b->bl_off[3 * b->nbl + 1] = et_off;
                b->bl_off[3 * b->nbl + 2] = bl_put(b, rk);
                b->nbl++;
            }
        }
    }
    if (b->bl_text.oom)
        return false;
    for (size_t i = 0; i < b->nbl; i++) {
        b->bl[i].key = b->bl_text.data + b->bl_off[3 * i];
        b->bl[i].event_type = b->bl_text.data + b->bl_off[3 * i + 1];
        b->bl[i].rk = b->bl_text.data + b->bl_off[3 * i + 2];
    }
    return true;
}

/* Appends the batch's triggers to the hooks' backlogs until Redis took
 * every one. False past the drain deadline. */
static bool append_with_backoff(Pipeline *p, PipelineBatch *b)
{
    char err[512];
    for (;;) {
        if (!backlog_entries(b)) {
            snprintf(err, sizeof err, "out of memory for the backlog entries of %zu triggers",
                     b->triggers.n);
            if (!backoff_failed(&p->memory, err))
                return false;
            continue;
        }
        backoff_ok(&p->memory);
        if (engine_backlog_append(p->appends, b->bl, b->nbl, err, sizeof err))
            break;
        if (!redis_link_failed(&p->redis, err))
            return false;
    }
    redis_link_ok(&p->redis);
    return true;
}

/* b's reading failed: the batches sent after it (send_and_publish) would
 * be read ahead of its calls sent again. Their calls go with the
 * connection (engine_cancel), and each is applied again in its turn (Redis
 * may have applied them: their events count once). */
static void cancel_later(Pipeline *p, const PipelineBatch *b)
{
    for (int i = 0; i < PIPELINE_DEPTH; i++) {
        PipelineBatch *o = p->started[i];
        if (o && o != b && o->stage == STAGE_SENT && o->sent_ok && o->seq > b->seq) {
            engine_cancel(p->engine, o->events, o->nev);
            o->sent_ok = false;
        }
    }
}

/* Reads the batch's results (events Redis refused get dead = true):
 * STAGE_APPLIED, or STAGE_PUBLISHED when it has no trigger. False only once
 * the drain deadline has passed. */
static bool batch_read(Pipeline *p, PipelineBatch *b)
{
    char err[512];
    if (b->abandoned)
        return false;
    if (b->nev == 0) {
        b->stage = STAGE_PUBLISHED;
        return true;
    }
    EventSpan o[PIPELINE_DEPTH];
    int no = others(p, b, o);
    triggers_reset(&b->triggers);
    bool applied = b->sent_ok && engine_recv(p->engine, b->events, b->nev, b->res, &b->triggers,
                                             o, no, err, sizeof err);
    if (!applied)
        cancel_later(p, b);
    if (!applied && !apply_with_backoff(p, b, err, sizeof err))
        return false;
    if (applied)
        redis_link_ok(&p->redis);
    b->stage = STAGE_APPLIED;
    long entries = 0;
    for (size_t k = 0; k < b->nev; k++)
        entries += __builtin_popcount(b->res[k].outbox);
    count_outbox(b, entries);
    for (size_t k = 0; k < b->nev; k++)
        if (b->res[k].status == APPLY_INVALID) {
            Message *m = &b->msgs[b->index[k]];
            m->dead = true;
            snprintf(m->reason, sizeof m->reason, "%s", b->res[k].error);
            log_refusal(p, m, "event refused", b->events[k].id, b->res[k].error);
        }
    if (b->triggers.n == 0)
        b->stage = STAGE_PUBLISHED;
    return true;
}

/* The batch's triggers are in the hooks' backlogs: they go to the live
 * streams too (GET /v1/triggers/stream; nothing when nobody listens). */
static void stored(PipelineBatch *b)
{
    trigger_feed_post(&b->triggers);
    b->stage = STAGE_PUBLISHED;
}

/* Reads the batch's results when not read yet and appends its triggers to
 * the hooks' backlogs. False only once the drain deadline has passed. */
static bool batch_publish(Pipeline *p, PipelineBatch *b)
{
    if (b->stage == STAGE_SENT && !batch_read(p, b))
        return false;
    if (b->stage == STAGE_APPLIED) {
        if (!append_with_backoff(p, b))
            return false;
        stored(b);
    }
    return true;
}

/* ---- stage 3: confirms, outboxes ---- */

/* The batch's triggers are in the hooks' backlogs: sends the clearing of
 * its outbox entries. True: its statistics and its triggers are stored;
 * acknowledge it. False only once the drain deadline has passed:
 * acknowledge nothing. The batch's slot is free again either way. */
static bool batch_finish(Pipeline *p, PipelineBatch *b)
{
    char err[512];
    bool ok = false;
    if (b->abandoned || (b->stage == STAGE_SENT && !batch_publish(p, b)))
        goto done;
    if (b->triggers.n > 0 && b->nev > 0) {
        /* In the backlogs: the outbox entries go. Their replies are read with the
         * next batch; a failure only leaves entries behind. */
        if (!engine_delivered_async(p->engine, b->events, b->res, b->nev, err, sizeof err)) {
            /* sent again on the next connection; when stopping there is
             * none: left unacknowledged, the redelivery appends the
             * triggers again (same ids) and clears them */
            bool stopping = lifecycle_stopping();
            log_at(LOG_WARN, p->who, "clearing delivered triggers: %s%s", err,
                   stopping ? "; stopping, so the batch is delivered again" : "");
            if (stopping)
                goto done;
        }
        for (size_t i = 0; i < b->triggers.n; i++)
            metrics_trigger(b->triggers.items[i].routing_key);
    }
    /* Counted once the batch is through: a batch applied again after a
     * failure counts as what its first application was. */
    SourceId src = p->src.id;
    unsigned long by[4] = {0, 0, 0, 0}, refused = 0;
    for (size_t i = 0; i < b->n; i++)
        refused += b->msgs[i].dead;
    for (size_t k = 0; k < b->nev; k++)
        by[b->res[k].status == APPLY_APPLIED     ? 0
           : b->res[k].status == APPLY_DUPLICATE ? 1
           : b->res[k].status == APPLY_STALE     ? 2
                                                 : 3] += b->res[k].status != APPLY_INVALID;
    metrics_events(src, APPLY_APPLIED, by[0]);
    metrics_events(src, APPLY_DUPLICATE, by[1]);
    metrics_events(src, APPLY_STALE, by[2]);
    metrics_events(src, APPLY_INVALID, refused);
    metrics_batch_seconds((double)(clock_now_ms() - b->started_ms) / 1000.0);
    if (atomic_load_explicit(&log_max_level, memory_order_relaxed) >= LOG_DEBUG) {
        char messages[24], events[24], triggers[24];
        snprintf(messages, sizeof messages, "%zu", b->n);
        snprintf(events, sizeof events, "%zu", b->nev);
        snprintf(triggers, sizeof triggers, "%zu", b->triggers.n);
        log_kv(LOG_DEBUG, p->who, "batch delivered", "messages", messages, "events", events,
               "triggers", triggers, (char *)NULL);
    }
    ok = true;
done:
    slot_release(b, ok);
    return ok;
}

/* Gives up a started batch whose publishing failed past the drain
 * deadline: its slot is free; acknowledge nothing. */
static void batch_abandon(Pipeline *p, PipelineBatch *b)
{
    /* Replies still due on the Redis connection would be read as the next
     * batch's: the connection goes with them (Redis may have applied the
     * calls; the redelivery finds them as duplicates). */
    if (b->stage == STAGE_SENT && b->sent_ok)
        engine_cancel(p->engine, b->events, b->nev);
    slot_release(b, false);
}


/* ---- the ring of the source's batches ---- */

int pipeline_filling(const Pipeline *p)
{
    return ring_current(&p->ring);
}

int pipeline_in_flight(const Pipeline *p)
{
    return ring_in_flight(&p->ring);
}

/* A batch left unacknowledged: the source delivers it again. */
static void left_unacked(Pipeline *p, int slot, const char *held)
{
    lifecycle_note_abandoned();
    if (held)
        log_at(LOG_WARN, p->who, "stopping while consumption is paused (%s): %zu messages left %s",
               held, p->taken[slot], p->src.unacked);
    else
        log_at(LOG_WARN, p->who, "drain deadline passed: %zu messages left %s", p->taken[slot],
               p->src.unacked);
}


/* Published without waiting; false past the drain deadline (the slot is
 * then released, unacknowledged). */
static bool ring_publish(Pipeline *p, int slot)
{
    PipelineBatch *b = p->started[slot];
    if (b && batch_publish(p, b))
        return true;
    if (b)
        batch_abandon(p, b);
    p->started[slot] = NULL;
    left_unacked(p, slot, b ? b->held : NULL);
    p->src.release(p->src.ctx, slot);
    return false;
}

/* The oldest slot in flight: its triggers confirmed, its dead letters
 * delivered, then acknowledged; released either way. False: left
 * unacknowledged. */
static bool ring_complete_oldest(Pipeline *p, bool sync)
{
    int slot = ring_oldest(&p->ring);
    PipelineBatch *b = p->started[slot];
    p->started[slot] = NULL;
    if (slot == p->unread)
        p->unread = -1; /* published by batch_finish */
    const char *held = b ? b->held : NULL;
    bool ok = b && batch_finish(p, b) && p->src.dead_letter(p->src.ctx, slot);
    if (!ok)
        left_unacked(p, slot, held);
    else
        ok = p->src.ack(p->src.ctx, slot, sync);
    p->src.release(p->src.ctx, slot);
    ring_pop(&p->ring);
    return ok;
}

/* A batch in flight whose publishing failed past the drain deadline: left
 * in the ring, abandoned (its completion leaves it unacknowledged). */
static void in_flight_failed(Pipeline *p, PipelineBatch *b)
{
    if (b->stage == STAGE_SENT && b->sent_ok)
        engine_cancel(p->engine, b->events, b->nev);
    b->abandoned = true;
}

/* The unread batch's results read and its triggers appended. False past
 * the drain deadline. */
static bool publish_unread(Pipeline *p)
{
    if (p->unread < 0)
        return true;
    PipelineBatch *b = p->started[p->unread];
    p->unread = -1;
    if (!b || batch_publish(p, b))
        return true;
    in_flight_failed(p, b);
    return false;
}

/* Sends b (parsed; NULL or nothing to send: only prev is published) and
 * publishes prev, the batch sent in the turn before. b's calls go first,
 * behind prev's on the connection, so that Redis applies them while prev's
 * replies are read, its triggers rendered and appended (on the appends'
 * own connection) and the next batch filled and parsed: Redis always has a
 * batch to apply. Only when a hold may read the apply connection (the
 * layout key due or lost) or wait (a backlog full) does b wait for prev to
 * be read. False: prev could not be published before the drain deadline. */
static bool send_and_publish(Pipeline *p, PipelineBatch *b, PipelineBatch *prev)
{
    bool early = sendable(b) && holds_quiet(p);
    if (early && batch_hold(p, b))
        batch_send(p, b);
    if (prev && !batch_publish(p, prev))
        return false;
    if (!early && sendable(b) && batch_hold(p, b))
        batch_send(p, b);
    return true;
}

/* One turn without filling: the current slot is parsed; the batch sent in
 * the turn before is read and published, its appends in one write with
 * the current one's calls (send_and_publish); the oldest in flight is
 * completed when the ring is full. The current one is read in the next
 * turn; at once when that turn finds nothing new, or when nothing of it
 * was sent. */
static PipelineStatus ring_turn(Pipeline *p, bool sync)
{
    int cur = ring_current(&p->ring);
    Message *msgs = NULL;
    size_t n = p->src.messages(p->src.ctx, cur, &msgs, &p->taken[cur]);
    if (p->taken[cur] == 0) {
        if (!publish_unread(p))
            return PIPELINE_PUBLISH_FAILED;
        if (ring_in_flight(&p->ring) && !ring_complete_oldest(p, sync))
            return PIPELINE_ACK_FAILED;
        return PIPELINE_OK;
    }
    PipelineBatch *b = batch_parse(p, cur, msgs, n);
    p->started[cur] = b;
    /* A full ring completes its oldest before b's calls go, so that the
     * oldest's outbox clearing is ahead of them: the next batch takes the
     * oldest's slot (its events) before b is read, and a duplicate in b of
     * one of them must then find its record gone rather than unrecognised
     * (which would give its triggers twice). */
    if (ring_full(&p->ring) && !ring_complete_oldest(p, sync))
        return PIPELINE_ACK_FAILED;
    PipelineBatch *prev = p->unread >= 0 ? p->started[p->unread] : NULL;
    p->unread = -1;
    if (!send_and_publish(p, b, prev)) {
        in_flight_failed(p, prev);
        return PIPELINE_PUBLISH_FAILED; /* b is the current slot's: pipeline_drop */
    }
    if (!sendable(b) || !b->sent_ok) {
        if (!ring_publish(p, cur))
            return PIPELINE_PUBLISH_FAILED;
    } else {
        p->unread = cur;
    }
    ring_push(&p->ring);
    return PIPELINE_OK;
}

PipelineStatus pipeline_step(Pipeline *p, char *err, size_t errlen)
{
    if (!p->src.fill(p->src.ctx, err, errlen))
        return PIPELINE_SOURCE_FAILED;
    return ring_turn(p, false);
}

void pipeline_turn(Pipeline *p)
{
    char err[8];
    PipelineStatus st = pipeline_step(p, err, sizeof err);
    /* Past the drain deadline. The batches before a batch that could not be
     * published are through: acknowledged (their offsets lie below it);
     * after a failed acknowledgement nothing more is. */
    if (st == PIPELINE_PUBLISH_FAILED)
        st = pipeline_drain(p);
    if (st != PIPELINE_OK)
        pipeline_drop(p);
}

PipelineStatus pipeline_drain(Pipeline *p)
{
    /* Those in flight first, oldest first: they are applied and published
     * already, and the batch in hand may wait for Redis until the drain
     * deadline (then nothing after it is acknowledged). */
    while (ring_in_flight(&p->ring))
        if (!ring_complete_oldest(p, true))
            return PIPELINE_ACK_FAILED;
    PipelineStatus st = ring_turn(p, true); /* the batch in hand */
    while (st == PIPELINE_OK && ring_in_flight(&p->ring))
        st = ring_turn(p, true);
    return st;
}

void pipeline_drop(Pipeline *p)
{
    if (!p)
        return;
    while (ring_in_flight(&p->ring)) {
        int slot = ring_oldest(&p->ring);
        PipelineBatch *b = p->started[slot];
        p->started[slot] = NULL;
        if (slot == p->unread)
            p->unread = -1;
        if (b && !batch_finish(p, b))
            lifecycle_note_abandoned();
        p->src.release(p->src.ctx, slot);
        ring_pop(&p->ring);
    }
    int cur = ring_current(&p->ring);
    if (p->started[cur]) {
        batch_abandon(p, p->started[cur]);
        p->started[cur] = NULL;
    }
    p->src.release(p->src.ctx, cur);
}
