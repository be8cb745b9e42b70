/* engine.c — builds the script calls of a batch, pipelines them, reads replies. */
#include "handlers/engine.h"
#include "daemon/log.h"
#include "handlers/store.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

extern const char apply_lua[]; /* generated from handlers/apply.lua */

struct Engine {
    const Config *cfg;
    redisContext *redis;
    char sha[41];
};

/* ---- argument vectors ---- */

typedef struct {
    int argc, cap;
    char **argv;
    size_t *lens;
    bool oom;
} Args;

static void args_add(Args *a, const char *s, size_t len)
{
    if (a->oom)
        return;
    if (a->argc == a->cap) {
        int cap = a->cap ? a->cap * 2 : 64;
        char **argv = realloc(a->argv, (size_t)cap * sizeof *argv);
        if (argv)
            a->argv = argv;
        size_t *lens = realloc(a->lens, (size_t)cap * sizeof *lens);
        if (lens)
            a->lens = lens;
        if (!argv || !lens) {
            a->oom = true;
            return;
        }
        a->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        a->oom = true;
        return;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    a->argv[a->argc] = copy;
    a->lens[a->argc] = len;
    a->argc++;
}

static void args_str(Args *a, const char *s)
{
    args_add(a, s, strlen(s));
}

static void args_fmt(Args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void args_fmt(Args *a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        a->oom = true;
        return;
    }
    args_add(a, buf, (size_t)n);
}

static void args_free(Args *a)
{
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
    free(a->argv);
    free(a->lens);
    memset(a, 0, sizeof *a);
}

/* ---- keys (README, "Redis key layout") ---- */

static void key_add(Args *a, const Config *cfg, const RelationDef *rel, Side side,
                    const char *profile, const char *suffix)
{
    args_fmt(a, "%s{%s:%c:%s}:%s", cfg->key_prefix, rel->short_name,
             side == SIDE_DIRECT ? 'd' : 'r', profile, suffix);
}

/* EVALSHA sha numkeys, the side's keys, mode and the property definitions. */
static void script_head(Args *a, Engine *e, const RelationDef *rel, Side side,
                        const char *profile, const char *mode, const char *tomb_of)
{
    int ntop = 0;
    for (int i = 0; i < rel->nproperties; i++)
        ntop += rel->properties[i].top_order != TOP_NONE;
    args_str(a, "EVALSHA");
    args_str(a, e->sha);
    args_fmt(a, "%d", 2 + ntop + (tomb_of ? 3 : 0));
    key_add(a, e->cfg, rel, side, profile, "stats");
    key_add(a, e->cfg, rel, side, profile, "edges");
    for (int i = 0; i < rel->nproperties; i++)
        if (rel->properties[i].top_order != TOP_NONE) {
            char suffix[CONFIG_SHORT_MAX + 8];
            snprintf(suffix, sizeof suffix, "top:%s", rel->properties[i].short_name);
            key_add(a, e->cfg, rel, side, profile, suffix);
        }
    if (tomb_of) {
        char suffix[EVENT_PROFILE_MAX + 8];
        key_add(a, e->cfg, rel, side, profile, "seen");
        key_add(a, e->cfg, rel, side, profile, "outbox");
        snprintf(suffix, sizeof suffix, "tomb:%s", tomb_of);
        key_add(a, e->cfg, rel, side, profile, suffix);
    }
    args_str(a, mode);
    args_fmt(a, "%d", rel->nproperties);
    for (int i = 0; i < rel->nproperties; i++) {
        const PropertyDef *p = &rel->properties[i];
        static const char *const types[] = {"int", "float", "bool"};
        static const char *const orders[] = {"", "desc", "asc"};
        args_str(a, p->short_name);
        args_str(a, types[p->type]);
        args_str(a, p->save_amount ? "1" : "0");
        args_str(a, orders[p->top_order]);
        args_fmt(a, "%d", p->top_limit);
    }
}

static void now_strings(char *ms, size_t mslen, char *date, size_t datelen)
{
    struct timespec ts;
    struct tm tm;
    char base[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(date, datelen, "%s.%09ldZ", base, ts.tv_nsec);
    snprintf(ms, mslen, "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static bool append_apply(Engine *e, const Event *ev, Side side, const char *now_ms,
                         const char *date)
{
    const RelationDef *rel = ev->rel;
    const char *own = side == SIDE_DIRECT ? ev->profile_a : ev->profile_b;
    const char *other = side == SIDE_DIRECT ? ev->profile_b : ev->profile_a;
    Args a = {0};
    int nth = 0;

    script_head(&a, e, rel, side, own, "apply", other);
    args_str(&a, now_ms);
    args_str(&a, date);
    args_fmt(&a, "%lld", (long long)e->cfg->tombstone_ttl_s);
    args_fmt(&a, "%d", e->cfg->dedup_ids);
    args_str(&a, side == SIDE_DIRECT ? "direct" : "reverse");
    args_str(&a, rel->short_name);
    args_str(&a, own);
    args_str(&a, side == SIDE_DIRECT ? rel->database_a : rel->database_b);
    args_str(&a, other);
    args_str(&a, side == SIDE_DIRECT ? rel->database_b : rel->database_a);
    args_str(&a, ev->id);
    args_str(&a, event_op_name(ev->op));
    args_str(&a, ev->occurred_at);
    if (ev->has_version)
        args_fmt(&a, "%lld", (long long)ev->version);
    else
        args_str(&a, "");
    args_str(&a, ev->is_test ? "1" : "0");
    for (int i = 0; i < rel->nproperties; i++) {
        const Weight *w = &ev->weights[i];
        if (w->kind == WEIGHT_ABSENT)
            args_str(&a, "");
        else if (w->kind == WEIGHT_NULL)
            args_str(&a, "null");
        else
            args_fmt(&a, "%lld", (long long)w->value);
    }
    for (int i = 0; i < rel->nthresholds; i++)
        nth += rel->thresholds[i].side == side;
    args_fmt(&a, "%d", nth);
    for (int i = 0; i < rel->nthresholds; i++) {
        const ThresholdDef *t = &rel->thresholds[i];
        static const char *const stats[] = {"count", "total", "edge"};
        if (t->side != side)
            continue;
        args_str(&a, stats[t->stat]);
        args_fmt(&a, "%d", t->property + 1);
        args_fmt(&a, "%lld", (long long)t->value);
        args_fmt(&a, "%d", i);
    }
    bool ok = !a.oom && redisAppendCommandArgv(e->redis, a.argc, (const char **)a.argv,
                                               a.lens) == REDIS_OK;
    args_free(&a);
    return ok;
}

/* ---- connection and scripts ---- */

static bool load_script(Engine *e, char *err, size_t errlen)
{
    redisReply *r = redisCommand(e->redis, "SCRIPT LOAD %s", apply_lua);
    if (!r) {
        snprintf(err, errlen, "redis SCRIPT LOAD: %s", e->redis->errstr);
        return false;
    }
    bool ok = r->type == REDIS_REPLY_STRING && r->len == 40;
    if (ok)
        memcpy(e->sha, r->str, 41);
    else
        snprintf(err, errlen, "redis SCRIPT LOAD: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return ok;
}

/* Connects (again) when there is no usable connection. */
static bool ensure_connected(Engine *e, char *err, size_t errlen)
{
    if (e->redis && !e->redis->err)
        return true;
    if (e->redis) {
        redisFree(e->redis);
        e->redis = NULL;
    }
    e->redis = store_connect(e->cfg, err, errlen);
    if (!e->redis)
        return false;
    if (!load_script(e, err, errlen)) {
        redisFree(e->redis);
        e->redis = NULL;
        return false;
    }
    return true;
}

Engine *engine_create(const Config *cfg)
{
    Engine *e = calloc(1, sizeof *e);
    if (e)
        e->cfg = cfg;
    return e;
}

Engine *engine_new(const Config *cfg, char *err, size_t errlen)
{
    Engine *e = engine_create(cfg);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!ensure_connected(e, err, errlen)) {
        free(e);
        return NULL;
    }
    return e;
}

void engine_free(Engine *e)
{
    if (!e)
        return;
    if (e->redis)
        redisFree(e->redis);
    free(e);
}

void engine_set_config(Engine *e, const Config *cfg)
{
    e->cfg = cfg;
}

/* An error that says Redis cannot take commands now, rather than a refusal of
 * this event: the batch is retried, not dead-lettered. */
static bool transient_error(const char *msg)
{
    static const char *const codes[] = {"OOM",      "READONLY",   "LOADING",     "BUSY",
                                        "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS",
                                        "NOSCRIPT", NULL};
    for (const char *const *c = codes; *c; c++)
        if (strncmp(msg, *c, strlen(*c)) == 0)
            return true;
    return false;
}

/* ---- apply ---- */

enum { SIDE_PENDING = -1 };

typedef struct {
    int status[2]; /* ApplyStatus per side, or SIDE_PENDING */
} SideState;

static bool take_reply(ApplyResult *res, int *side_status, const redisReply *r, char *err,
                       size_t errlen)
{
    if (r->type == REDIS_REPLY_ERROR) {
        if (transient_error(r->str)) {
            snprintf(err, errlen, "redis: %s", r->str);
            return false;
        }
        const char *msg = strncmp(r->str, "ERR ", 4) == 0 ? r->str + 4 : r->str;
        snprintf(res->error, sizeof res->error, "%s", msg);
        *side_status = APPLY_INVALID;
        return true;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        snprintf(err, errlen, "redis: unexpected reply to the apply script");
        return false;
    }
    const char *st = r->element[0]->str;
    *side_status = strcmp(st, "applied") == 0     ? APPLY_APPLIED
                   : strcmp(st, "duplicate") == 0 ? APPLY_DUPLICATE
                                                  : APPLY_STALE;
    size_t more = r->elements - 1;
    if (more) {
        char **t = realloc(res->triggers, (res->ntriggers + more) * sizeof *t);
        if (!t) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        res->triggers = t;
        for (size_t i = 1; i < r->elements; i++) {
            const redisReply *b = r->element[i];
            char *body = malloc(b->len + 1);
            if (!body) {
                snprintf(err, errlen, "out of memory");
                return false;
            }
            memcpy(body, b->str, b->len);
            body[b->len] = '\0';
            res->triggers[res->ntriggers++] = body;
        }
    }
    return true;
}

static ApplyStatus combine(const int s[2])
{
    if (s[0] == APPLY_INVALID || s[1] == APPLY_INVALID)
        return APPLY_INVALID;
    if (s[0] == APPLY_APPLIED || s[1] == APPLY_APPLIED)
        return APPLY_APPLIED;
    if (s[0] == APPLY_DUPLICATE || s[1] == APPLY_DUPLICATE)
        return APPLY_DUPLICATE;
    return APPLY_STALE;
}

/* Sends every side still pending, in order; reads the replies. Sides that met
 * NOSCRIPT stay pending (*noscript set). */
static bool run_pending(Engine *e, const Event *events, size_t n, ApplyResult *results,
                        SideState *state, bool *noscript, char *err, size_t errlen)
{
    char now_ms[32], date[64];
    size_t sent = 0;
    bool ok = true;

    *noscript = false;
    now_strings(now_ms, sizeof now_ms, date, sizeof date);
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < 2; s++)
            if (state[i].status[s] == SIDE_PENDING) {
                if (!append_apply(e, &events[i], (Side)s, now_ms, date)) {
                    snprintf(err, errlen, "redis: cannot queue a command (out of memory)");
                    ok = false;
                    goto drain;
                }
                sent++;
            }
drain:
    /* Read as many replies as were sent, even after a failure, so the
     * connection stays in step. */
    for (size_t i = 0; i < n && sent; i++)
        for (int s = 0; s < 2 && sent; s++) {
            if (state[i].status[s] != SIDE_PENDING)
                continue;
            redisReply *r = NULL;
            sent--;
            if (redisGetReply(e->redis, (void **)&r) != REDIS_OK || !r) {
                snprintf(err, errlen, "redis: %s", e->redis->errstr[0] ? e->redis->errstr
                                                                       : "connection lost");
                return false;
            }
            if (ok && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
                *noscript = true;
            else if (ok && !take_reply(&results[i], &state[i].status[s], r, err, errlen))
                ok = false;
            freeReplyObject(r);
        }
    return ok;
}

/* A duplicate of an event earlier in the same batch: its triggers are that
 * event's, already in this batch's results. */
static bool repeated_in_batch(const Event *events, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (events[j].rel == events[i].rel && strcmp(events[j].id, events[i].id) == 0 &&
            strcmp(events[j].profile_a, events[i].profile_a) == 0 &&
            strcmp(events[j].profile_b, events[i].profile_b) == 0)
            return true;
    return false;
}

bool engine_apply(Engine *e, const Event *events, size_t n, ApplyResult *results, char *err,
                  size_t errlen)
{
    SideState *state = calloc(n ? n : 1, sizeof *state);
    bool ok = false;

    if (!state) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    memset(results, 0, n * sizeof *results);
    for (size_t i = 0; i < n; i++)
        state[i].status[0] = state[i].status[1] = SIDE_PENDING;
    if (!ensure_connected(e, err, errlen))
        goto done;
    for (int attempt = 0; attempt < 3; attempt++) {
        bool noscript;
        if (!run_pending(e, events, n, results, state, &noscript, err, errlen))
            goto done;
        if (!noscript) {
            ok = true;
            break;
        }
        /* The script cache was flushed (restart, SCRIPT FLUSH): the sides that
         * met NOSCRIPT did not run; load the script and send them again. */
        log_at(LOG_WARN, "redis", "script cache flushed, loading the script again");
        if (!load_script(e, err, errlen))
            goto done;
    }
    if (!ok) {
        snprintf(err, errlen, "redis: NOSCRIPT after loading the script again");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        results[i].status = combine(state[i].status);
        if (results[i].status == APPLY_DUPLICATE && repeated_in_batch(events, i))
            engine_results_clear(&results[i], 1);
    }
done:
    free(state);
    if (!ok)
        engine_results_clear(results, n);
    return ok;
}

void engine_results_clear(ApplyResult *results, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < results[i].ntriggers; j++)
            free(results[i].triggers[j]);
        free(results[i].triggers);
        results[i].triggers = NULL;
        results[i].ntriggers = 0;
    }
}

bool engine_delivered(Engine *e, const Event *events, size_t n, char *err, size_t errlen)
{
    size_t sent = 0;
    bool ok = true;
    if (!ensure_connected(e, err, errlen))
        return false;
    for (size_t i = 0; i < n && ok; i++)
        for (int s = 0; s < 2 && ok; s++) {
            Args a = {0};
            const char *own = s == SIDE_DIRECT ? events[i].profile_a : events[i].profile_b;
            args_str(&a, "HDEL");
            key_add(&a, e->cfg, events[i].rel, (Side)s, own, "outbox");
            args_str(&a, events[i].id);
            ok = !a.oom && redisAppendCommandArgv(e->redis, a.argc, (const char **)a.argv,
                                                  a.lens) == REDIS_OK;
            sent += ok;
            args_free(&a);
        }
    if (!ok)
        snprintf(err, errlen, "redis: cannot queue a command (out of memory)");
    while (sent--) {
        redisReply *r = NULL;
        if (redisGetReply(e->redis, (void **)&r) != REDIS_OK || !r) {
            snprintf(err, errlen, "redis: %s", e->redis->errstr);
            return false;
        }
        if (r->type == REDIS_REPLY_ERROR && ok) {
            snprintf(err, errlen, "redis HDEL: %s", r->str);
            ok = false;
        }
        freeReplyObject(r);
    }
    return ok;
}

bool engine_stats(Engine *e, const RelationDef *rel, Side side, const char *profile, char **json,
                  char *err, size_t errlen)
{
    *json = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        Args a = {0};
        redisReply *r = NULL;
        if (!ensure_connected(e, err, errlen))
            return false;
        script_head(&a, e, rel, side, profile, "stats", NULL);
        if (!a.oom)
            r = redisCommandArgv(e->redis, a.argc, (const char **)a.argv, a.lens);
        args_free(&a);
        if (!r) {
            snprintf(err, errlen, "redis: %s", e->redis->errstr[0] ? e->redis->errstr : "out of memory");
            return false;
        }
        if (r->type == REDIS_REPLY_STRING) {
            *json = strdup(r->str);
            freeReplyObject(r);
            if (!*json)
                snprintf(err, errlen, "out of memory");
            return *json != NULL;
        }
        bool noscript = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
        snprintf(err, errlen, "redis: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        if (!noscript || !load_script(e, err, errlen))
            return false;
    }
    return false;
}
