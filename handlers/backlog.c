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

/* Connected, nothing due ahead: the replies of earlier groups read. */
static bool ready(Engine *e, char *err, size_t errlen)
{
    for (int i = 0; i < ENGINE_MAX_PENDING; i++)
        if (e->pending[i].busy) {
            snprintf(err, errlen, "redis: a batch's replies are still due");
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

void backlog_pack(JsonBuf *out, const BacklogEntry *x)
{
    const char *v[5] = {x->id, x->body, x->key, x->rk, x->event_type};
    size_t len[5] = {strlen(x->id), x->len, strlen(x->key), strlen(x->rk),
                     strlen(x->event_type)};
    for (int i = 0; i < 5; i++) {
        char head[24];
        int h = snprintf(head, sizeof head, "%zu:", len[i]);
        jsonbuf_put(out, head, (size_t)h);
        jsonbuf_put(out, v[i], len[i]);
        jsonbuf_char(out, '\0');
    }
}

bool backlog_unpack(const char *t, size_t len, size_t *at, BacklogEntry *e)
{
    const char *v[5];
    size_t vlen[5], p = *at;
    if (p >= len)
        return false;
    for (int i = 0; i < 5; i++) {
        size_t n = 0, digits = 0;
        while (p < len && t[p] >= '0' && t[p] <= '9' && digits < 10) {
            n = n * 10 + (size_t)(t[p++] - '0');
            digits++;
        }
        /* the colon, n bytes and the NUL within the text */
        if (digits == 0 || p >= len || t[p] != ':' || n + 2 > len - p || t[p + 1 + n] != '\0')
            return false;
        v[i] = t + p + 1;
        vlen[i] = n;
        p += n + 2;
    }
    e->id = v[0];
    e->body = v[1];
    e->len = vlen[1];
    e->key = v[2];
    e->rk = v[3];
    e->event_type = v[4];
    *at = p;
    return true;
}

/* For each hook of the entries (in the order they first come), the XADDs
 * of its entries in order and the INCRBY of its length key by their
 * triggers, and the WAIT of redis.wait_replicas, into the engine's buffer;
 * their count. */
static size_t write_appends(Engine *e, const BacklogEntry *x, size_t n)
{
    JsonBuf key = {0}, packed = {0};
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const char *hook = x[i].hook;
        bool first = true;
        for (size_t j = 0; j < i && first; j++)
            first = strcmp(x[j].hook, hook) != 0;
        if (!first)
            continue;
        int slot = backlog_slot(hook);
        jsonbuf_reset(&key);
        backlog_key(&key, e->cfg, hook, "");
        size_t stream_len = key.len, m = 0;
        jsonbuf_cstr(&key, ":length");
        if (key.oom) {
            e->cmd.oom = true;
            break;
        }
        for (size_t j = i; j < n;) {
            size_t k = 0;
            jsonbuf_reset(&packed);
            for (; j < n && k < BACKLOG_ENTRY_MAX; j++)
                if (strcmp(x[j].hook, hook) == 0) {
                    backlog_pack(&packed, &x[j]);
                    k++;
                }
            if (k == 0)
                break;
            if (packed.oom)
                e->cmd.oom = true;
            resp_count(&e->cmd, '*', 7);
            resp_cstr(&e->cmd, "XADD");
            resp_arg(&e->cmd, key.data, stream_len);
            resp_cstr(&e->cmd, "*");
            resp_cstr(&e->cmd, "n");
            resp_int(&e->cmd, (int64_t)k);
            resp_cstr(&e->cmd, "t");
            resp_arg(&e->cmd, packed.data, packed.len);
            engine_cmd_end(e, slot);
            count++;
            m += k;
        }
        resp_count(&e->cmd, '*', 3);
        resp_cstr(&e->cmd, "INCRBY");
        resp_arg(&e->cmd, key.data, key.len);
        resp_int(&e->cmd, (int64_t)m);
        engine_cmd_end(e, slot);
        count++;
    }
    jsonbuf_free(&key);
    jsonbuf_free(&packed);
    bool wait = e->cfg->wait_replicas > 0;
    if (wait) {
        /* as after a batch's apply calls: held by enough replicas of every primary */
        resp_count(&e->cmd, '*', 3);
        resp_cstr(&e->cmd, "WAIT");
        resp_int(&e->cmd, e->cfg->wait_replicas);
        resp_int(&e->cmd, e->cfg->redis_timeout_ms / 2);
        engine_cmd_end(e, router_cluster(e->router) ? ROUTER_ALL : ROUTER_ANY);
    }
    return count + wait;
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
        resp_cstr(&e->cmd, "GET");
        key_arg(&e->cmd, cfg, cfg->hooks[i].name, ":length");
        engine_cmd_end(e, backlog_slot(cfg->hooks[i].name));
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
        redisReply *r[2];
        for (int k = 0; k < 2; k++)
            if (!engine_read_reply(e, &r[k], err, errlen)) {
                if (k == 1)
                    freeReplyObject(r[0]);
                return false;
            }
        if (ok && !backlog_length(r[0], r[1], &len[i], cfg->hooks[i].name, err, errlen))
            ok = false;
        freeReplyObject(r[0]);
        freeReplyObject(r[1]);
    }
    return ok;
}

bool engine_hook_backlog(Engine *e, const Config *cfg, const char *hook, long long *len,
                         char *err, size_t errlen)
{
    char *stream = backlog_key_string(cfg, hook, ""), *length =
        backlog_key_string(cfg, hook, ":length");
    bool ok = stream && length;
    if (!ok)
        snprintf(err, errlen, "out of memory");
    const char *get[] = {"GET", length}, *xlen[] = {"XLEN", stream};
    static const int argc[] = {2, 2};
    const char *const *const argv[] = {get, xlen};
    redisReply *r[2] = {NULL, NULL};
    ok = ok && engine_hook_pipeline(e, hook, 2, argc, argv, r, err, errlen);
    ok = ok && backlog_length(r[0], r[1], len, hook, err, errlen);
    for (int i = 0; i < 2; i++)
        if (r[i])
            freeReplyObject(r[i]);
    free(stream);
    free(length);
    return ok;
}

bool backlog_length(const redisReply *get, const redisReply *xlen, long long *len,
                    const char *hook, char *err, size_t errlen)
{
    if (get->type == REDIS_REPLY_STRING) {
        char *end;
        long long v = strtoll(get->str, &end, 10);
        if (end != get->str && !*end) {
            *len = v < 0 ? 0 : v;
            return true;
        }
    } else if (get->type == REDIS_REPLY_NIL && xlen->type == REDIS_REPLY_INTEGER) {
        *len = xlen->integer;
        return true;
    }
    if (err && errlen) {
        const redisReply *bad = get->type == REDIS_REPLY_ERROR ? get : xlen;
        snprintf(err, errlen, "redis GET/XLEN of hook %s's backlog: %s", hook ? hook : "?",
                 bad->type == REDIS_REPLY_ERROR ? bad->str : "not a length");
    }
    return false;
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
