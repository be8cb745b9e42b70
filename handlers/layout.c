/* layout.c — the layout key (layout.h): written, read, renewed and (after a
 * migration) moved to version 2 with one command each, sent to the node of
 * the key's own slot (the key has no hash tag of a side: on a cluster it
 * lives wherever its name hashes). */
#include "handlers/layout.h"
#include "handlers/cluster.h"
#include "handlers/engine_int.h"
#include "handlers/keys.h"
#include "handlers/resp.h"
#include "handlers/walk.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* A new keyspace id: 16 hex digits. */
static void new_id(char id[LAYOUT_ID_MAX])
{
    uint64_t v;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = ((uint64_t)time(NULL) << 32) ^ ((uint64_t)getpid() << 16) ^ (uint64_t)clock();
    snprintf(id, LAYOUT_ID_MAX, "%016llx", (unsigned long long)v);
}

/* Connected, nothing due ahead: the layout key's name (malloc'd, klen
 * bytes), NULL with err otherwise. */
static char *layout_key(Engine *e, size_t *klen, char *err, size_t errlen)
{
    if (!engine_connect(e, err, errlen) || !engine_read_groups(e, false, err, errlen))
        return NULL;
    const char *prefix = e->cfg->key_prefix;
    size_t plen = strlen(prefix);
    char *key = malloc(plen + sizeof "layout");
    if (!key) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(key, prefix, plen);
    memcpy(key + plen, "layout", sizeof "layout");
    *klen = plen + sizeof "layout" - 1;
    return key;
}

/* The command written into cmd sent to the node of key (freed): its reply. */
static bool layout_send(Engine *e, char *key, size_t klen, redisReply **r, char *err,
                        size_t errlen)
{
    int slot = router_cluster(e->router) ? (int)cluster_slot(key, klen) : ROUTER_ANY;
    free(key);
    return engine_command(e, slot, r, err, errlen);
}

/* One command on the layout key: op, the key, then up to three more
 * arguments (NULL ends them); its reply. */
static bool layout_call(Engine *e, const char *op, const char *a1, const char *a2,
                        const char *a3, redisReply **r, char *err, size_t errlen)
{
    size_t klen;
    char *key = layout_key(e, &klen, err, errlen);
    if (!key)
        return false;
    const char *extra[3] = {a1, a2, a3};
    size_t n = 2;
    while (n - 2 < 3 && extra[n - 2])
        n++;
    resp_count(&e->cmd, '*', n);
    resp_cstr(&e->cmd, op);
    resp_arg(&e->cmd, key, klen);
    for (size_t i = 0; i + 2 < n; i++)
        resp_cstr(&e->cmd, extra[i]);
    return layout_send(e, key, klen, r, err, errlen);
}

/* A reply holding the key's value (or nil) read into id. */
static LayoutResult parse_value(Engine *e, const redisReply *r, char id[LAYOUT_ID_MAX],
                                char *err, size_t errlen)
{
    const char *key = e->cfg->key_prefix;
    id[0] = '\0';
    if (r->type == REDIS_REPLY_NIL)
        return LAYOUT_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis: %slayout: %s", key, r->str);
        return LAYOUT_FAILED;
    }
    if (r->type != REDIS_REPLY_STRING) {
        snprintf(err, errlen, "redis: %slayout: unexpected reply", key);
        return LAYOUT_FAILED;
    }
    char *end;
    long version = strtol(r->str, &end, 10);
    if (end == r->str || version <= 0 || (*end != ' ' && *end != '\0')) {
        snprintf(err, errlen, "redis: %slayout holds \"%.40s\", not a layout version", key, r->str);
        return LAYOUT_UNKNOWN;
    }
    if (version < LAYOUT_OLDEST || version > LAYOUT_VERSION) {
        snprintf(err, errlen, "redis: %slayout says the data is in layout version %ld; this "
                 "build reads versions %d to %d only (a newer release wrote it? use that "
                 "release, or another redis.key_prefix)", key, version, LAYOUT_OLDEST,
                 LAYOUT_VERSION);
        return LAYOUT_UNKNOWN;
    }
    const char *v = *end ? end + 1 : end;
    size_t vlen = strlen(v);
    if (vlen == 0 || vlen >= LAYOUT_ID_MAX || strchr(v, ' ')) {
        snprintf(err, errlen, "redis: %slayout holds \"%.40s\": version %ld without a keyspace "
                 "id (relationctl layout ack writes one)", key, r->str, version);
        return LAYOUT_UNKNOWN;
    }
    memcpy(id, v, vlen + 1);
    e->layout_version = (int)version;
    return LAYOUT_OK;
}

LayoutResult engine_layout_get(Engine *e, char id[LAYOUT_ID_MAX], char *err, size_t errlen)
{
    redisReply *r;
    if (!layout_call(e, "GET", NULL, NULL, NULL, &r, err, errlen))
        return LAYOUT_FAILED;
    LayoutResult res = parse_value(e, r, id, err, errlen);
    freeReplyObject(r);
    return res;
}

/* "<version> <id>" of a new id. */
static void new_value(int version, char id[LAYOUT_ID_MAX], char value[LAYOUT_ID_MAX + 16])
{
    new_id(id);
    snprintf(value, LAYOUT_ID_MAX + 16, "%d %s", version, id);
}

/* A page of layout-1 windows: found when it has one. */
static bool window_page(Engine *e, int slot, const redisReply *keys, void *ctx, bool *ok,
                        char *err, size_t errlen)
{
    (void)e, (void)slot, (void)ok, (void)err, (void)errlen;
    bool *found = ctx;
    *found = keys->elements > 0;
    return !*found;
}

/* A page of side hashes: found when one has layout 1's '#last' (an
 * HEXISTS of each, pipelined). */
static bool last_page(Engine *e, int slot, const redisReply *keys, void *ctx, bool *ok,
                      char *err, size_t errlen)
{
    bool *found = ctx;
    for (size_t i = 0; i < keys->elements; i++) {
        resp_count(&e->cmd, '*', 3);
        resp_cstr(&e->cmd, "HEXISTS");
        resp_arg(&e->cmd, keys->element[i]->str, keys->element[i]->len);
        resp_cstr(&e->cmd, "#last");
        engine_cmd_end(e, slot);
    }
    if (keys->elements && !engine_flush(e, err, errlen))
        return *ok = false;
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *x;
        if (!engine_read_reply(e, &x, err, errlen))
            return *ok = false;
        *found |= x->type == REDIS_REPLY_INTEGER && x->integer == 1;
        freeReplyObject(x);
    }
    return !*found;
}

/* Whether the keyspace holds layout-1 data: a SCAN of every primary
 * (walk.h) for a layout-1 window (PREFIX{...}:seen), then for a side hash
 * with layout 1's '#last' (a side untouched for longer than its window
 * lives). */
static bool holds_layout1(Engine *e, bool *found, char *err, size_t errlen)
{
    static const char *const suffix[2] = {"}:seen", "}:side"};
    static const WalkPageFn page[2] = {window_page, last_page};
    *found = false;
    for (int pass = 0; pass < 2 && !*found; pass++) {
        JsonBuf pat = {0};
        key_glob_literal(&pat, e->cfg->key_prefix);
        jsonbuf_cstr(&pat, "{*");
        jsonbuf_cstr(&pat, suffix[pass]);
        if (pat.oom) {
            jsonbuf_free(&pat);
            snprintf(err, errlen, "out of memory");
            return false;
        }
        bool ok = engine_walk_keys(e, &pat, NULL, page[pass], found, err, errlen);
        jsonbuf_free(&pat);
        if (!ok)
            return false;
    }
    return true;
}

LayoutResult engine_layout_claim(Engine *e, char id[LAYOUT_ID_MAX], bool *written, char *err,
                                 size_t errlen)
{
    char mine[LAYOUT_ID_MAX], value[LAYOUT_ID_MAX + 16];
    redisReply *r;
    bool old = false;
    *written = false;
    LayoutResult got = engine_layout_get(e, id, err, errlen);
    if (got != LAYOUT_OK || id[0])
        return got;
    if (!holds_layout1(e, &old, err, errlen))
        return LAYOUT_FAILED;
    new_value(old ? 1 : LAYOUT_VERSION, mine, value);
    if (!layout_call(e, "SET", value, "NX", "GET", &r, err, errlen))
        return LAYOUT_FAILED;
    LayoutResult res = parse_value(e, r, id, err, errlen);
    *written = res == LAYOUT_OK && r->type == REDIS_REPLY_NIL;
    freeReplyObject(r);
    if (*written) {
        memcpy(id, mine, LAYOUT_ID_MAX);
        e->layout_version = old ? 1 : LAYOUT_VERSION;
    }
    return res;
}

bool engine_layout_renew(Engine *e, char id[LAYOUT_ID_MAX], char *err, size_t errlen)
{
    char old[LAYOUT_ID_MAX], value[LAYOUT_ID_MAX + 16];
    redisReply *r;
    if (!layout_call(e, "GET", NULL, NULL, NULL, &r, err, errlen))
        return false;
    /* a value of this version without a proper id is what an ack repairs;
     * another version, or a value that is none, is not */
    LayoutResult res = parse_value(e, r, old, err, errlen);
    long version = r->type == REDIS_REPLY_STRING ? strtol(r->str, NULL, 10) : 0;
    bool mine = res == LAYOUT_OK ||
                (res == LAYOUT_UNKNOWN && version >= LAYOUT_OLDEST && version <= LAYOUT_VERSION);
    freeReplyObject(r);
    if (!mine)
        return false;
    int keep = version >= LAYOUT_OLDEST ? (int)version : LAYOUT_VERSION;
    new_value(keep, id, value);
    if (!layout_call(e, "SET", value, NULL, NULL, &r, err, errlen))
        return false;
    bool ok = r->type == REDIS_REPLY_STATUS;
    if (ok)
        e->layout_version = keep;
    if (!ok)
        snprintf(err, errlen, "redis: SET %slayout: %s", e->cfg->key_prefix,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return ok;
}

int engine_layout_version(const Engine *e)
{
    return e->layout_version;
}

bool engine_layout_known(Engine *e, char *err, size_t errlen)
{
    char id[LAYOUT_ID_MAX];
    if (e->connected && router_connected(e->router) && e->layout_conn == e->connections)
        return true;
    if (!engine_connect(e, err, errlen) || engine_layout_get(e, id, err, errlen) != LAYOUT_OK)
        return false;
    e->layout_conn = e->connections;
    return true;
}

bool engine_layout_connected(const Engine *e, unsigned long *conn)
{
    *conn = e->connections;
    return e->connected && router_connected(e->router);
}

bool engine_layout_idle(const Engine *e, unsigned long *conn)
{
    *conn = e->connections;
    if (!e->connected || !router_connected(e->router))
        return false;
    for (int i = 0; i < e->ngroups; i++)
        if (e->groups[i].kind == GROUP_APPLY)
            return false;
    return true;
}

/* 1 when the key held "1 <id>" and now holds "2 <id>", 0 when it held
 * "2 <id>" already, else an error naming what it holds. */
static const char MIGRATED_LUA[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v == '1 ' .. ARGV[1] then redis.call('SET', KEYS[1], '2 ' .. ARGV[1]) return 1 end\n"
    "if v == '2 ' .. ARGV[1] then return 0 end\n"
    "return redis.error_reply('holds ' .. (v and ('\"' .. string.sub(v, 1, 40) .. '\"') or "
    "'nothing') .. ', not layout 1 or 2 of keyspace ' .. ARGV[1] .. ' (changed during the "
    "migration: relationctl layout ack, or the keyspace wiped?)')\n";

bool engine_layout_migrated(Engine *e, const char *id, bool *changed, char *err, size_t errlen)
{
    redisReply *r;
    size_t klen;
    char *key = layout_key(e, &klen, err, errlen);
    *changed = false;
    if (!key)
        return false;
    resp_count(&e->cmd, '*', 5);
    resp_cstr(&e->cmd, "EVAL");
    resp_cstr(&e->cmd, MIGRATED_LUA);
    resp_cstr(&e->cmd, "1");
    resp_arg(&e->cmd, key, klen);
    resp_cstr(&e->cmd, id);
    if (!layout_send(e, key, klen, &r, err, errlen))
        return false;
    bool ok = r->type == REDIS_REPLY_INTEGER;
    if (ok) {
        *changed = r->integer == 1;
        e->layout_version = 2;
    }
    else
        snprintf(err, errlen, "redis: %slayout %s", e->cfg->key_prefix,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to EVAL");
    freeReplyObject(r);
    return ok;
}
