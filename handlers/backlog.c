/* backlog.c — the hooks' streams and flags on an engine's connection
 * (backlog.h): commands written in RESP into the engine's buffer, each
 * marked with its key's slot, flushed and their replies read at once. */
#include "handlers/backlog.h"
#include "handlers/cluster.h"
#include "handlers/engine_int.h"
#include "handlers/resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void backlog_key(JsonBuf *b, const Config *cfg, const char *hook, const char *suffix)
{
    jsonbuf_cstr(b, cfg->key_prefix);
    jsonbuf_cstr(b, "{hook:");
    jsonbuf_cstr(b, hook);
    jsonbuf_cstr(b, "}");
    jsonbuf_cstr(b, suffix);
}

int backlog_slot(const char *hook)
{
    char tag[HOOK_NAME_MAX + 8];
    int n = snprintf(tag, sizeof tag, "{hook:%s}", hook);
    return (int)cluster_slot(tag, (size_t)n);
}

/* The key as one RESP argument. */
static void key_arg(JsonBuf *cmd, const Config *cfg, const char *hook, const char *suffix)
{
    JsonBuf k = {0};
    backlog_key(&k, cfg, hook, suffix);
    if (k.oom)
        cmd->oom = true;
    else
        resp_arg(cmd, k.data, k.len);
    jsonbuf_free(&k);
}

/* Whether backlog appends sent on the connection still have replies due. */
static bool appends_due(const Engine *e)
{
    return e->appends_due > 0 && e->connected && e->connections == e->appends_conn;
}

/* Connected, nothing due ahead: the replies of earlier groups read. */
static bool ready(Engine *e, char *err, size_t errlen)
{
    for (int i = 0; i < ENGINE_MAX_PENDING; i++)
        if (e->pending[i].busy) {
            snprintf(err, errlen, "redis: a batch's replies are still due");
            return false;
        }
    if (appends_due(e)) {
        snprintf(err, errlen, "redis: the replies of backlog appends are still due");
        return false;
    }
    return engine_connect(e, err, errlen) && engine_read_groups(e, false, err, errlen);
}

/* Whether a reply is good: not an error (its text in err, the command
 * named by what), and with wait_reply a WAIT that counted
 * redis.wait_replicas. */
static bool reply_ok(const Engine *e, const redisReply *r, bool wait_reply, const char *what,
                     char *err, size_t errlen)
{
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis %s: %s", what, r->str);
        return false;
    }
    if (wait_reply && (r->type != REDIS_REPLY_INTEGER || r->integer < e->cfg->wait_replicas)) {
        snprintf(err, errlen, "redis WAIT: %lld of %d replicas acknowledged the backlog entries",
                 r->type == REDIS_REPLY_INTEGER ? r->integer : 0LL, e->cfg->wait_replicas);
        return false;
    }
    return true;
}

/* Flushes the n commands written and reads their replies; each must not
 * be an error (its text in err); with last, the last reply is the caller's
 * instead; with wait, the last command is a WAIT that must count
 * redis.wait_replicas. A refusal drops the connection. */
static bool collect(Engine *e, size_t n, bool wait, const char *what, redisReply **last,
                    char *err, size_t errlen);

static bool run(Engine *e, size_t n, bool wait, const char *what, redisReply **last, char *err,
                size_t errlen)
{
    if (e->cmd.oom || e->marks_oom) {
        snprintf(err, errlen, "redis: out of memory for %s", what);
        engine_drop(e);
        return false;
    }
    if (!engine_flush(e, err, errlen))
        return false;
    return collect(e, n, wait, what, last, err, errlen);
}

/* The replies of n commands flushed, read as run says. */
static bool collect(Engine *e, size_t n, bool wait, const char *what, redisReply **last,
                    char *err, size_t errlen)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        if (!engine_read_reply(e, &r, err, errlen)) {
            if (last && *last) {
                freeReplyObject(*last);
                *last = NULL;
            }
            return false;
        }
        if (ok && !last && !reply_ok(e, r, wait && i + 1 == n, what, err, errlen))
            ok = false;
        if (last && i + 1 == n)
            *last = r;
        else
            freeReplyObject(r);
    }
    /* A refusal may come from a stale view of a cluster (a WAIT sent to a
     * primary failed over to a replica meanwhile, whose own slots moved
     * nothing this call touched): connect again, reading the map afresh. */
    if (!ok)
        engine_drop(e);
    return ok;
}

#define APPEND "XADD to a hook's backlog"

/* The XADDs of the n entries, and the WAIT of redis.wait_replicas, into
 * the engine's buffer; their count. */
static size_t write_appends(Engine *e, const BacklogEntry *x, size_t n)
{
    JsonBuf key = {0};
    const char *hook = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!hook || strcmp(hook, x[i].hook) != 0) {
            hook = x[i].hook; /* a batch's entries run hook after hook: one key each */
            jsonbuf_reset(&key);
            backlog_key(&key, e->cfg, hook, "");
            if (key.oom)
                e->cmd.oom = true;
        }
        resp_count(&e->cmd, '*', 13);
        resp_cstr(&e->cmd, "XADD");
        resp_arg(&e->cmd, key.data, key.len);
        resp_cstr(&e->cmd, "*");
        resp_cstr(&e->cmd, "id");
        resp_cstr(&e->cmd, x[i].id);
        resp_cstr(&e->cmd, "body");
        resp_arg(&e->cmd, x[i].body, x[i].len);
        resp_cstr(&e->cmd, "key");
        resp_cstr(&e->cmd, x[i].key);
        resp_cstr(&e->cmd, "rk");
        resp_cstr(&e->cmd, x[i].rk);
        resp_cstr(&e->cmd, "event_type");
        resp_cstr(&e->cmd, x[i].event_type);
        engine_cmd_end(e, backlog_slot(x[i].hook));
    }
    jsonbuf_free(&key);
    bool wait = e->cfg->wait_replicas > 0;
    if (wait) {
        /* as after a batch's apply calls: held by enough replicas of every primary */
        resp_count(&e->cmd, '*', 3);
        resp_cstr(&e->cmd, "WAIT");
        resp_int(&e->cmd, e->cfg->wait_replicas);
        resp_int(&e->cmd, e->cfg->redis_timeout_ms / 2);
        engine_cmd_end(e, router_cluster(e->router) ? ROUTER_ALL : ROUTER_ANY);
    }
    return n + wait;
}

bool engine_backlog_append(Engine *e, const BacklogEntry *x, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return true;
    if (!ready(e, err, errlen))
        return false;
    size_t count = write_appends(e, x, n);
    return run(e, count, e->cfg->wait_replicas > 0, APPEND, NULL, err, errlen);
}

bool engine_backlog_append_send(Engine *e, const BacklogEntry *x, size_t n, char *err,
                                size_t errlen)
{
    if (n == 0)
        return true;
    if (!ready(e, err, errlen))
        return false;
    size_t count = write_appends(e, x, n);
    if (e->cmd.oom || e->marks_oom) {
        snprintf(err, errlen, "redis: out of memory for %s", APPEND);
        engine_drop(e);
        return false;
    }
    if (!engine_flush(e, err, errlen))
        return false;
    e->appends_due = count;
    e->appends_wait = e->cfg->wait_replicas > 0;
    e->appends_conn = e->connections;
    return true;
}

bool engine_backlog_append_confirm(Engine *e, char *err, size_t errlen)
{
    size_t n = e->appends_due;
    if (n == 0)
        return true;
    bool due = appends_due(e);
    e->appends_due = 0;
    if (!due) {
        snprintf(err, errlen, "redis: the connection was lost before the replies of the "
                 "backlog appends were read");
        return false;
    }
    return collect(e, n, e->appends_wait, APPEND, NULL, err, errlen);
}

void engine_backlog_append_cancel(Engine *e)
{
    bool due = appends_due(e);
    e->appends_due = 0;
    if (due)
        engine_drop(e);
}

bool engine_hook_command(Engine *e, const char *hook, int argc, const char **argv,
                         const size_t *lens, redisReply **r, char *err, size_t errlen)
{
    *r = NULL;
    if (!ready(e, err, errlen))
        return false;
    resp_count(&e->cmd, '*', (size_t)argc);
    for (int i = 0; i < argc; i++)
        resp_arg(&e->cmd, argv[i], lens ? lens[i] : strlen(argv[i]));
    engine_cmd_end(e, backlog_slot(hook));
    return run(e, 1, false, argv[0], r, err, errlen);
}

bool engine_hook_pipeline(Engine *e, const char *hook, size_t n, const int *argc,
                          const char *const *const *argv, redisReply **r, char *err,
                          size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        r[i] = NULL;
    if (!ready(e, err, errlen))
        return false;
    for (size_t i = 0; i < n; i++) {
        resp_count(&e->cmd, '*', (size_t)argc[i]);
        for (int j = 0; j < argc[i]; j++)
            resp_cstr(&e->cmd, argv[i][j]);
        engine_cmd_end(e, backlog_slot(hook));
    }
    if (e->cmd.oom || e->marks_oom) {
        snprintf(err, errlen, "redis: out of memory for %s", n ? argv[0][0] : "a pipeline");
        engine_drop(e);
        return false;
    }
    if (!engine_flush(e, err, errlen))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!engine_read_reply(e, &r[i], err, errlen)) {
            for (size_t j = 0; j < i; j++) {
                freeReplyObject(r[j]);
                r[j] = NULL;
            }
            return false;
        }
    return true;
}

bool engine_backlog_lengths(Engine *e, const Config *cfg, long long *len, char *err,
                            size_t errlen)
{
    if (cfg->nhooks == 0)
        return true;
    if (!ready(e, err, errlen))
        return false;
    for (int i = 0; i < cfg->nhooks; i++) {
        resp_count(&e->cmd, '*', 2);
        resp_cstr(&e->cmd, "XLEN");
        key_arg(&e->cmd, cfg, cfg->hooks[i].name, "");
        engine_cmd_end(e, backlog_slot(cfg->hooks[i].name));
    }
    if (e->cmd.oom || e->marks_oom) {
        snprintf(err, errlen, "redis: out of memory for XLEN");
        engine_drop(e);
        return false;
    }
    if (!engine_flush(e, err, errlen))
        return false;
    bool ok = true;
    for (int i = 0; i < cfg->nhooks; i++) {
        redisReply *r;
        if (!engine_read_reply(e, &r, err, errlen))
            return false;
        if (r->type == REDIS_REPLY_INTEGER) {
            len[i] = r->integer;
        } else if (ok) {
            snprintf(err, errlen, "redis XLEN of hook %s: %s", cfg->hooks[i].name,
                     r->type == REDIS_REPLY_ERROR ? r->str : "not an integer");
            ok = false;
        }
        freeReplyObject(r);
    }
    return ok;
}

char *backlog_key_string(const Config *cfg, const char *hook, const char *suffix)
{
    JsonBuf k = {0};
    backlog_key(&k, cfg, hook, suffix);
    char *s = k.oom ? NULL : strndup(k.data, k.len);
    jsonbuf_free(&k);
    return s;
}

bool engine_hook_disabled(Engine *e, const Config *cfg, const char *hook, bool *disabled,
                          char *why, size_t whylen, char *err, size_t errlen)
{
    char *key = backlog_key_string(cfg, hook, ":disabled");
    if (!key) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    const char *argv[] = {"GET", key};
    redisReply *r;
    bool ok = engine_hook_command(e, hook, 2, argv, NULL, &r, err, errlen);
    free(key);
    if (!ok)
        return false;
    ok = r->type == REDIS_REPLY_NIL || r->type == REDIS_REPLY_STRING;
    if (!ok)
        snprintf(err, errlen, "redis GET of hook %s's flag: %s", hook,
                 r->type == REDIS_REPLY_ERROR ? r->str : "not a string");
    *disabled = r->type == REDIS_REPLY_STRING;
    if (why && whylen)
        snprintf(why, whylen, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return ok;
}

bool engine_hook_set_disabled(Engine *e, const Config *cfg, const char *hook, bool disabled,
                              const char *why, char *err, size_t errlen)
{
    char *key = backlog_key_string(cfg, hook, ":disabled");
    if (!key) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    const char *set[] = {"SET", key, why && why[0] ? why : "disabled"};
    const char *del[] = {"DEL", key};
    redisReply *r;
    bool ok = engine_hook_command(e, hook, disabled ? 3 : 2, disabled ? set : del, NULL, &r, err,
                                  errlen);
    free(key);
    if (!ok)
        return false;
    ok = r->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(err, errlen, "redis %s of hook %s's flag: %s", disabled ? "SET" : "DEL", hook,
                 r->str);
    freeReplyObject(r);
    return ok;
}
