/* engine.c — the function library of a configuration, the calls of a batch
 * written into one reusable buffer, replies read and rendered (engine.h). */
#include "handlers/engine.h"
#include "lib/log.h"
#include "lib/grow.h"
#include "lib/jsonbuf.h"
#include "lib/sha1.h"
#include "handlers/cluster.h"
#include "handlers/router.h"
#include "handlers/segment.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern const char apply_lua[]; /* generated from handlers/apply.lua */

/* Replies due on the connection, in the order their commands were sent. */
typedef enum { GROUP_APPLY, GROUP_HDEL, GROUP_LOAD, GROUP_WAIT, GROUP_PING } GroupKind;
typedef struct {
    GroupKind kind;
    size_t count;
    size_t bytes; /* GROUP_HDEL: its commands' length in `cleared` */
    int slot;     /* GROUP_APPLY: its batch's Pending */
} Group;
#define MAX_GROUPS 16

/* A side's state between send and recv. */
enum { SIDE_PENDING = -1, SIDE_NOT_SENT = -2, SIDE_REPLIED = -3 };

/* A batch between send and recv. */
typedef struct {
    bool busy;
    bool lost;           /* its calls went with a lost connection */
    const Event *events; /* the caller's */
    size_t n, cap;
    int *state;          /* per event and side */
    bool *both;          /* per event: its two sides went in one call */
    redisReply **replies; /* per event and side; a call of both sides: at the direct side */
    uint64_t seq;        /* order of sending */
} Pending;

/* Where a command of `cmd` ends, and the slot of its keys (ROUTER_ANY,
 * ROUTER_ALL on a cluster: every primary). */
typedef struct {
    size_t end;
    int slot;
} Mark;

struct Engine {
    const Config *cfg;
    Router *router;   /* one server, or a cluster's primaries */
    bool connected;   /* router connected, the clearings due queued */
    bool refused;     /* the last connection was refused for redis.url's settings */
    char *library;    /* the generated library's code */
    char fname[64];   /* its function: one side */
    char fname_both[72]; /* both sides of an event in one call */
    bool loaded;      /* FUNCTION LOAD sent on this connection */
    JsonBuf cmd;      /* commands being written */
    Mark *marks;      /* cmd's commands (on a cluster) */
    size_t nmarks, marks_cap;
    bool marks_oom;
    Group groups[MAX_GROUPS];
    int ngroups;
    /* Outbox clearings sent whose replies were not read yet: sent again on
     * the next connection if this one is lost first (HDEL is idempotent). */
    JsonBuf cleared;
    size_t ncleared;
    int *cleared_slots; /* per clearing in `cleared` */
    size_t cleared_cap;
    Pending pending[ENGINE_MAX_PENDING];
    uint64_t seq;
    char now_ms[24], date[40];
    double walk_share; /* of the SCAN under way (engine_walk_share) */
    /* The apply calls' epoch (apply.lua, "The fence"): a random id and a
     * count, the count raised after every failed batch. */
    uint32_t epoch_id, epoch_n;
    char epoch[24];
};

/* A new epoch: the calls sent from now on pass the fences that the failed
 * ones left, the ones already sent stop at them. */
static void next_epoch(Engine *e)
{
    snprintf(e->epoch, sizeof e->epoch, "%08x.%x", e->epoch_id, ++e->epoch_n);
}

/* ---- the library ---- */

static void lua_strings(JsonBuf *b, const char *key, const RelationDef *rel, const char *pre,
                        const char *suf)
{
    jsonbuf_cstr(b, key);
    jsonbuf_cstr(b, "={");
    for (int i = 0; i < rel->nproperties; i++) {
        jsonbuf_cstr(b, i ? ",'" : "'");
        jsonbuf_cstr(b, pre);
        jsonbuf_cstr(b, rel->properties[i].short_name);
        jsonbuf_cstr(b, suf);
        jsonbuf_char(b, '\'');
    }
    jsonbuf_cstr(b, "},");
}

/* The library: constants of cfg, then handlers/apply.lua. Its name carries
 * a digest of its code, so daemons with different configurations each call
 * their own. Short names are [a-z][a-z0-9_]*: safe inside Lua quotes. */
static char *make_library(const Config *cfg, char fname[64])
{
    JsonBuf body = {0}, lib = {0};
    char *out = NULL;
    jsonbuf_cstr(&body, "local TOMB_TTL = '");
    jsonbuf_int(&body, cfg->tombstone_ttl_s);
    jsonbuf_cstr(&body, "'\nlocal DEDUP_RANK = '");
    jsonbuf_int(&body, -(int64_t)cfg->dedup_ids - 1);
    jsonbuf_cstr(&body, "'\nlocal EXPIRE_STEP = ");
    jsonbuf_int(&body, cfg->tombstone_ttl_s * 1000 / 16 > 0 ? cfg->tombstone_ttl_s * 1000 / 16 : 1);
    jsonbuf_cstr(&body, "\nlocal REL = {\n");
    for (int r = 0; r < cfg->nrelations; r++) {
        const RelationDef *rel = &cfg->relations[r];
        jsonbuf_cstr(&body, "{n=");
        jsonbuf_int(&body, rel->nproperties);
        jsonbuf_char(&body, ',');
        lua_strings(&body, "short", rel, "", "");
        lua_strings(&body, "jkey", rel, "\"", "\":");
        lua_strings(&body, "cf", rel, "", ":count");
        lua_strings(&body, "tf", rel, "", ":total");
        jsonbuf_cstr(&body, "typ={");
        for (int i = 0; i < rel->nproperties; i++) {
            jsonbuf_cstr(&body, i ? "," : "");
            jsonbuf_int(&body, rel->properties[i].type == PROP_INT     ? 0
                               : rel->properties[i].type == PROP_FLOAT ? 1
                                                                       : 2);
        }
        jsonbuf_cstr(&body, "},amount={");
        for (int i = 0; i < rel->nproperties; i++) {
            jsonbuf_cstr(&body, i ? "," : "");
            jsonbuf_cstr(&body, rel->properties[i].save_amount ? "true" : "false");
        }
        jsonbuf_cstr(&body, "},order={");
        for (int i = 0; i < rel->nproperties; i++) {
            jsonbuf_cstr(&body, i ? "," : "");
            jsonbuf_int(&body, rel->properties[i].top_order == TOP_DESC  ? 1
                               : rel->properties[i].top_order == TOP_ASC ? 2
                                                                         : 0);
        }
        jsonbuf_cstr(&body, "},last={");
        for (int i = 0; i < rel->nproperties; i++) {
            jsonbuf_cstr(&body, i ? ",'" : "'");
            jsonbuf_int(&body, rel->properties[i].top_limit - 1);
            jsonbuf_char(&body, '\'');
        }
        jsonbuf_cstr(&body, "},hm={'count'");
        for (int i = 0; i < rel->nproperties; i++) {
            jsonbuf_cstr(&body, ",'");
            jsonbuf_cstr(&body, rel->properties[i].short_name);
            jsonbuf_cstr(&body, ":count','");
            jsonbuf_cstr(&body, rel->properties[i].short_name);
            jsonbuf_cstr(&body, ":total'");
        }
        jsonbuf_cstr(&body, "},pos={count=1");
        for (int i = 0; i < rel->nproperties; i++) {
            jsonbuf_cstr(&body, ",['");
            jsonbuf_cstr(&body, rel->properties[i].short_name);
            jsonbuf_cstr(&body, ":count']=");
            jsonbuf_int(&body, 2 + 2 * i);
            jsonbuf_cstr(&body, ",['");
            jsonbuf_cstr(&body, rel->properties[i].short_name);
            jsonbuf_cstr(&body, ":total']=");
            jsonbuf_int(&body, 3 + 2 * i);
        }
        jsonbuf_cstr(&body, "},tops={");
        for (int i = 0, k = 0; i < rel->nproperties; i++)
            if (rel->properties[i].top_order != TOP_NONE) {
                jsonbuf_cstr(&body, k++ ? "," : "");
                jsonbuf_int(&body, i + 1);
            }
        jsonbuf_cstr(&body, "}},\n");
    }
    jsonbuf_cstr(&body, "}\n");
    jsonbuf_cstr(&body, apply_lua);
    if (body.oom)
        goto done;

    Sha1 s;
    unsigned char digest[20];
    char hex[41];
    sha1_init(&s);
    sha1_update(&s, body.data, body.len);
    sha1_final(&s, digest);
    sha1_hex(digest, hex);
    hex[16] = '\0';
    snprintf(fname, 64, "relationd_apply_%s", hex);
    jsonbuf_cstr(&lib, "#!lua name=relationd_");
    jsonbuf_cstr(&lib, hex);
    jsonbuf_char(&lib, '\n');
    jsonbuf_put(&lib, body.data, body.len);
    jsonbuf_cstr(&lib, "\nredis.register_function('");
    jsonbuf_cstr(&lib, fname);
    jsonbuf_cstr(&lib, "', apply)\nredis.register_function('");
    jsonbuf_cstr(&lib, fname);
    jsonbuf_cstr(&lib, "_both', apply2)\nredis.register_function('");
    jsonbuf_cstr(&lib, fname);
    jsonbuf_cstr(&lib, "_rebuild', rebuild)\n");
    jsonbuf_char(&lib, '\0');
    if (!lib.oom) {
        out = lib.data;
        lib.data = NULL;
    }
done:
    jsonbuf_free(&body);
    jsonbuf_free(&lib);
    return out;
}

/* ---- RESP, written by hand into the command buffer ---- */

static void resp_count(JsonBuf *b, char c, size_t n)
{
    jsonbuf_char(b, c);
    jsonbuf_int(b, (int64_t)n);
    jsonbuf_put(b, "\r\n", 2);
}

static void resp_arg(JsonBuf *b, const char *s, size_t n)
{
    resp_count(b, '$', n);
    jsonbuf_put(b, s, n);
    jsonbuf_put(b, "\r\n", 2);
}

static void resp_cstr(JsonBuf *b, const char *s)
{
    resp_arg(b, s, strlen(s));
}

/* A profile id inside a key: '%', '{' and '}' percent-encoded, so that an id
 * can neither end the hash tag nor forge the key of another profile (the
 * same id reads the same in the key whenever it holds none of them). */
static size_t key_id_len(const char *id)
{
    size_t n = 0;
    for (const char *c = id; *c; c++)
        n += (*c == '%' || *c == '{' || *c == '}') ? 3 : 1;
    return n;
}

static void key_id(JsonBuf *b, const char *id)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *run = id;
    for (const char *c = id;; c++) {
        if (*c && *c != '%' && *c != '{' && *c != '}')
            continue;
        jsonbuf_put(b, run, (size_t)(c - run));
        if (!*c)
            return;
        char esc[3] = {'%', hex[(unsigned char)*c >> 4], hex[(unsigned char)*c & 15]};
        jsonbuf_put(b, esc, 3);
        run = c + 1;
    }
}

/* A key of the layout: PREFIX{RELATION:S:PROFILE}:SUFFIX[ID], the profile
 * and the id encoded by key_id. */
static void resp_key(JsonBuf *b, const Config *cfg, const RelationDef *rel, Side side,
                     const char *profile, const char *suffix, const char *id)
{
    size_t lp = strlen(cfg->key_prefix), lr = strlen(rel->short_name);
    size_t ls = strlen(suffix);
    resp_count(b, '$', lp + 1 + lr + 3 + key_id_len(profile) + 2 + ls + (id ? key_id_len(id) : 0));
    jsonbuf_put(b, cfg->key_prefix, lp);
    jsonbuf_char(b, '{');
    jsonbuf_put(b, rel->short_name, lr);
    jsonbuf_put(b, side == SIDE_DIRECT ? ":d:" : ":r:", 3);
    key_id(b, profile);
    jsonbuf_put(b, "}:", 2);
    jsonbuf_put(b, suffix, ls);
    if (id)
        key_id(b, id);
    jsonbuf_put(b, "\r\n", 2);
}

/* A field of the side's hash: a mark, then the event id, NUL, the
 * counterpart (ids and profiles hold no NUL). */
static void resp_member(JsonBuf *b, const char *mark, const char *id, const char *cp)
{
    size_t lm = strlen(mark), li = strlen(id), lc = strlen(cp);
    resp_count(b, '$', lm + li + 1 + lc);
    jsonbuf_put(b, mark, lm);
    jsonbuf_put(b, id, li);
    jsonbuf_char(b, '\0');
    jsonbuf_put(b, cp, lc);
    jsonbuf_put(b, "\r\n", 2);
}

/* The length of the RESP command at p (an array of bulk strings), 0 when
 * it is not one within len bytes. */
static size_t resp_command_len(const char *p, size_t len)
{
    const char *q = p, *end = p + len;
    char *next;
    if (q >= end || *q != '*')
        return 0;
    long n = strtol(q + 1, &next, 10);
    if (next + 2 > end || next[0] != '\r' || next[1] != '\n' || n < 0)
        return 0;
    q = next + 2;
    for (long i = 0; i < n; i++) {
        if (q >= end || *q != '$')
            return 0;
        long l = strtol(q + 1, &next, 10);
        if (l < 0 || next + 2 > end || next[0] != '\r' || (size_t)(end - next) < (size_t)l + 4)
            return 0;
        q = next + 2 + l + 2;
    }
    return (size_t)(q - p);
}

/* The cluster slot of a side's keys: of its hash tag, RELATION:S:PROFILE
 * with the profile encoded as in the keys (key_id). */
static int side_slot(const RelationDef *rel, Side side, const char *profile)
{
    static const char hex[] = "0123456789ABCDEF";
    uint16_t crc = cluster_crc16_update(0, rel->short_name, strlen(rel->short_name));
    crc = cluster_crc16_update(crc, side == SIDE_DIRECT ? ":d:" : ":r:", 3);
    for (const char *c = profile; *c; c++) {
        if (*c == '%' || *c == '{' || *c == '}') {
            char esc[3] = {'%', hex[(unsigned char)*c >> 4], hex[(unsigned char)*c & 15]};
            crc = cluster_crc16_update(crc, esc, 3);
        } else {
            crc = cluster_crc16_update(crc, c, 1);
        }
    }
    return crc & (CLUSTER_SLOTS - 1);
}

static void resp_int(JsonBuf *b, int64_t v)
{
    char s[24];
    resp_arg(b, s, format_int(v, s));
}

/* ---- connection ---- */

static void drop(Engine *e)
{
    next_epoch(e);
    router_drop(e->router);
    e->connected = false;
    e->nmarks = 0;
    e->loaded = false;
    e->ngroups = 0;
    for (int i = 0; i < ENGINE_MAX_PENDING; i++)
        if (e->pending[i].busy)
            e->pending[i].lost = true;
}

static bool push_group(Engine *e, GroupKind kind, size_t count, size_t bytes, int slot,
                       char *err, size_t errlen)
{
    if (e->ngroups == MAX_GROUPS) {
        snprintf(err, errlen, "redis: too many batches in flight");
        return false;
    }
    e->groups[e->ngroups++] = (Group){kind, count, bytes, slot};
    return true;
}

/* Hands the command buffer to hiredis and writes it out. */
static bool flush_commands(Engine *e, char *err, size_t errlen)
{
    int done = 0;
    if (e->cmd.oom) {
        snprintf(err, errlen, "redis: out of memory for the commands");
        drop(e);
        return false;
    }
    (void)done;
    bool ok = !e->marks_oom;
    if (ok && e->cmd.len && !router_cluster(e->router)) {
        ok = router_append(e->router, ROUTER_ANY, e->cmd.data, e->cmd.len);
    } else {
        size_t from = 0;
        for (size_t i = 0; ok && i < e->nmarks; i++) {
            ok = router_append(e->router, e->marks[i].slot, e->cmd.data + from,
                               e->marks[i].end - from);
            from = e->marks[i].end;
        }
    }
    jsonbuf_reset(&e->cmd);
    e->nmarks = 0;
    e->marks_oom = false;
    if (!ok) {
        snprintf(err, errlen, "redis: out of memory for the commands, or not connected");
        drop(e);
        return false;
    }
    if (!router_flush(e->router, err, errlen)) {
        drop(e);
        return false;
    }
    return true;
}

/* The command just written into cmd goes to the node of slot. */
static void cmd_end(Engine *e, int slot)
{
    if (!GROW_RESERVE(e->marks, e->marks_cap, e->nmarks + 1, 512)) {
        e->marks_oom = true;
        return;
    }
    e->marks[e->nmarks++] = (Mark){e->cmd.len, slot};
}

/* The clearings of `cleared` into cmd, each to its slot's node. */
static void requeue_cleared(Engine *e)
{
    const char *p = e->cleared.data;
    size_t left = e->cleared.len;
    for (size_t i = 0; i < e->ncleared && left; i++) {
        /* one HDEL: *3 $4 HDEL $n key $m field */
        size_t len = resp_command_len(p, left);
        if (!len)
            break;
        jsonbuf_put(&e->cmd, p, len);
        cmd_end(e, e->cleared_slots[i]);
        p += len;
        left -= len;
    }
}

/* Whether a connection's failure is Redis refusing what redis.url says
 * (its user, password or database) rather than an outage: the reply codes
 * of AUTH, SELECT and the commands sent on connecting. */
static bool config_refusal(const char *err)
{
    static const char *const codes[] = {
        "WRONGPASS", "NOAUTH", "NOPERM", "DB index is out of range", "invalid password",
        "without any password configured", "invalid username-password pair",
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strstr(err, codes[i]))
            return true;
    return false;
}

static bool connected(Engine *e, char *err, size_t errlen)
{
    if (e->connected && router_connected(e->router))
        return true;
    drop(e);
    e->refused = false;
    if (!router_connect(e->router, err, errlen)) {
        /* The reply names neither the URL nor its password: the setting is
         * named, so that the operator knows where to look. */
        e->refused = config_refusal(err);
        if (e->refused && strncmp(err, "redis.url: ", 11) != 0) {
            size_t len = strlen(err);
            if (len + 12 <= errlen) {
                memmove(err + 11, err, len + 1);
                memcpy(err, "redis.url: ", 11);
            }
        }
        return false;
    }
    e->connected = true;
    /* Clearings whose outcome the lost connection took with it. */
    if (e->cleared.len) {
        requeue_cleared(e);
        if (!push_group(e, GROUP_HDEL, e->ncleared, e->cleared.len, -1, err, errlen)) {
            drop(e);
            return false;
        }
    }
    return true;
}

/* Queues the library's load ahead of the calls that need it. */
static void queue_load(Engine *e, char *err, size_t errlen)
{
    if (e->loaded)
        return;
    resp_count(&e->cmd, '*', 4);
    resp_cstr(&e->cmd, "FUNCTION");
    resp_cstr(&e->cmd, "LOAD");
    resp_cstr(&e->cmd, "REPLACE");
    resp_cstr(&e->cmd, e->library);
    cmd_end(e, router_cluster(e->router) ? ROUTER_ALL : ROUTER_ANY);
    if (push_group(e, GROUP_LOAD, 1, 0, -1, err, errlen))
        e->loaded = true;
}

static bool read_reply(Engine *e, redisReply **r, char *err, size_t errlen)
{
    *r = NULL;
    if (!e->connected || !router_read(e->router, r, err, errlen) || !*r) {
        if (!e->connected)
            snprintf(err, errlen, "redis: connection lost");
        drop(e);
        return false;
    }
    return true;
}

/* Reads the replies of the groups ahead of the first apply group (all of
 * them when stop_at_apply is false). */
static bool read_groups(Engine *e, bool stop_at_apply, char *err, size_t errlen)
{
    bool ok = true, hdel_failed = false;
    while (e->ngroups > 0) {
        Group g = e->groups[0];
        if (g.kind == GROUP_APPLY) {
            if (stop_at_apply)
                return ok;
            snprintf(err, errlen, "redis: a batch's replies were not read");
            drop(e);
            return false;
        }
        memmove(e->groups, e->groups + 1, (size_t)(e->ngroups - 1) * sizeof *e->groups);
        e->ngroups--;
        for (size_t k = 0; k < g.count; k++) {
            redisReply *r;
            if (!read_reply(e, &r, err, errlen)) {
                /* The group is lost with the connection; its clearings stay
                 * in `cleared` for the next one. */
                return false;
            }
            if (g.kind == GROUP_WAIT && ok &&
                (r->type != REDIS_REPLY_INTEGER || r->integer < e->cfg->wait_replicas)) {
                snprintf(err, errlen, "redis WAIT: %lld of %d replicas acknowledged the batch",
                         r->type == REDIS_REPLY_INTEGER ? r->integer : 0LL,
                         e->cfg->wait_replicas);
                ok = false;
            } else if (r->type == REDIS_REPLY_ERROR && g.kind == GROUP_LOAD) {
                /* Not the batch's failure: the library may be there already
                 * (a user without FUNCTION LOAD, a server still loading its
                 * data), and a call that meets its absence loads it again
                 * (engine_recv). */
                log_at(LOG_WARN, "redis", "FUNCTION LOAD: %s", r->str);
            } else if (r->type == REDIS_REPLY_ERROR && g.kind == GROUP_PING && ok) {
                snprintf(err, errlen, "redis PING: %s", r->str);
                ok = false;
            } else if (r->type == REDIS_REPLY_ERROR && g.kind == GROUP_HDEL && !hdel_failed) {
                snprintf(err, errlen, "redis: clearing delivered triggers: %s", r->str);
                hdel_failed = true;
            }
            freeReplyObject(r);
        }
        if (hdel_failed) {
            /* Not done (a server still loading, refusing writes...): the
             * clearings stay in `cleared`, sent again on the next
             * connection. */
            drop(e);
            return false;
        }
        if (g.kind == GROUP_HDEL) {
            /* Done: the oldest clearings leave `cleared`. */
            size_t b = g.bytes <= e->cleared.len ? g.bytes : e->cleared.len;
            memmove(e->cleared.data, e->cleared.data + b, e->cleared.len - b);
            e->cleared.len -= b;
            size_t c = g.count <= e->ncleared ? g.count : e->ncleared;
            memmove(e->cleared_slots, e->cleared_slots + c,
                    (e->ncleared - c) * sizeof *e->cleared_slots);
            e->ncleared -= c;
        }
    }
    return ok;
}

/* ---- life ---- */

Engine *engine_create(const Config *cfg)
{
    Engine *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->cfg = cfg;
    e->router = router_new(cfg);
    e->library = make_library(cfg, e->fname);
    if (!e->library || !e->router) {
        free(e->library);
        router_free(e->router);
        free(e);
        return NULL;
    }
    snprintf(e->fname_both, sizeof e->fname_both, "%s_both", e->fname);
    /* another engine (a daemon, relationctl) never shares an epoch */
    if (getrandom(&e->epoch_id, sizeof e->epoch_id, 0) != (ssize_t)sizeof e->epoch_id)
        e->epoch_id = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16) ^ (uint32_t)(uintptr_t)e;
    next_epoch(e);
    return e;
}

Engine *engine_new(const Config *cfg, char *err, size_t errlen)
{
    Engine *e = engine_create(cfg);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!connected(e, err, errlen)) {
        engine_free(e);
        return NULL;
    }
    queue_load(e, err, errlen);
    if (!flush_commands(e, err, errlen) || !read_groups(e, false, err, errlen)) {
        engine_free(e);
        return NULL;
    }
    return e;
}

void engine_free(Engine *e)
{
    if (!e)
        return;
    drop(e);
    router_free(e->router);
    free(e->library);
    free(e->marks);
    free(e->cleared_slots);
    jsonbuf_free(&e->cmd);
    jsonbuf_free(&e->cleared);
    for (int i = 0; i < ENGINE_MAX_PENDING; i++) {
        Pending *pd = &e->pending[i];
        for (size_t k = 0; pd->replies && k < 2 * pd->n; k++)
            if (pd->replies[k])
                freeReplyObject(pd->replies[k]);
        free(pd->state);
        free(pd->both);
        free(pd->replies);
    }
    free(e);
}

bool engine_set_config(Engine *e, const Config *cfg)
{
    char fname[64];
    char *library = make_library(cfg, fname);
    if (!library)
        return false;
    free(e->library);
    e->library = library;
    memcpy(e->fname, fname, sizeof fname);
    snprintf(e->fname_both, sizeof e->fname_both, "%s_both", e->fname);
    e->cfg = cfg;
    router_set_config(e->router, cfg);
    e->loaded = false;
    return true;
}

/* ---- apply ---- */

/* The relation's place in the engine's configuration (the event may have
 * been parsed with the previous one). -1 when it is gone. */
static int relation_index(const Config *cfg, const RelationDef *rel)
{
    uintptr_t p = (uintptr_t)rel, lo = (uintptr_t)cfg->relations;
    if (p >= lo && p < (uintptr_t)(cfg->relations + cfg->nrelations))
        return (int)((p - lo) / sizeof *rel);
    const RelationDef *same = config_relation(cfg, rel->short_name);
    return same ? (int)(same - cfg->relations) : -1;
}

static void now_strings(Engine *e)
{
    struct timespec ts;
    struct tm tm;
    char base[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(e->date, sizeof e->date, "%s.%09ldZ", base, ts.tv_nsec);
    e->now_ms[format_int((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, e->now_ms)] = '\0';
}

static const char op_codes[] = {'a', 'e', 's', 'd'}; /* by EventOp */

/* The keys of one side: side, seen, tomb:<counterpart>, then each top. */
static void write_side_keys(JsonBuf *b, const Config *cfg, const RelationDef *rel, Side side,
                            const Event *ev)
{
    const char *own = side == SIDE_DIRECT ? ev->profile_a : ev->profile_b;
    const char *other = side == SIDE_DIRECT ? ev->profile_b : ev->profile_a;
    resp_key(b, cfg, rel, side, own, "side", NULL);
    resp_key(b, cfg, rel, side, own, "seen", NULL);
    resp_key(b, cfg, rel, side, own, "tomb:", other);
    for (int i = 0; i < rel->nproperties; i++)
        if (rel->properties[i].top_order != TOP_NONE)
            resp_key(b, cfg, rel, side, own, "top:", rel->properties[i].short_name);
}

/* The arguments after the profiles: event id, op, version, pairs. */
static void write_event_args(JsonBuf *b, const RelationDef *rel, const Event *ev)
{
    resp_cstr(b, ev->id);
    resp_arg(b, &op_codes[ev->op], 1);
    if (ev->has_version)
        resp_int(b, ev->version);
    else
        resp_arg(b, "", 0);
    for (int i = 0; i < rel->nproperties; i++) {
        const Weight *w = &ev->weights[i];
        if (w->kind == WEIGHT_ABSENT)
            continue;
        resp_int(b, i + 1);
        if (w->kind == WEIGHT_NULL)
            resp_arg(b, "n", 1);
        else
            resp_int(b, w->value);
    }
}

/* One side: FCALL fn numkeys side seen tomb tops... rel now date
 * counterpart id op version pairs...; both sides (side < 0): FCALL fn_both
 * numkeys (direct keys) (reverse keys) rel now date a b id op version
 * pairs... (handlers/apply.lua). */
static void write_call(Engine *e, const RelationDef *rel, int index, const Event *ev, int side)
{
    JsonBuf *b = &e->cmd;
    const Config *cfg = e->cfg;
    int ntop = 0, npairs = 0;
    for (int i = 0; i < rel->nproperties; i++) {
        ntop += rel->properties[i].top_order != TOP_NONE;
        npairs += ev->weights[i].kind != WEIGHT_ABSENT;
    }
    int sides = side < 0 ? 2 : 1;
    int nkeys = sides * (3 + ntop);
    resp_count(b, '*', (size_t)(3 + nkeys + 7 + sides + 2 * npairs));
    resp_cstr(b, "FCALL");
    resp_cstr(b, side < 0 ? e->fname_both : e->fname);
    resp_int(b, nkeys);
    if (side < 0) {
        write_side_keys(b, cfg, rel, SIDE_DIRECT, ev);
        write_side_keys(b, cfg, rel, SIDE_REVERSE, ev);
    } else {
        write_side_keys(b, cfg, rel, (Side)side, ev);
    }
    resp_int(b, index + 1);
    resp_cstr(b, e->epoch);
    resp_cstr(b, e->now_ms);
    resp_cstr(b, e->date);
    if (side < 0) {
        resp_cstr(b, ev->profile_a);
        resp_cstr(b, ev->profile_b);
    } else {
        resp_cstr(b, side == SIDE_DIRECT ? ev->profile_b : ev->profile_a);
    }
    write_event_args(b, rel, ev);
    if (side < 0)
        cmd_end(e, ROUTER_ANY); /* one server only */
    else
        cmd_end(e, side_slot(rel, (Side)side,
                             side == SIDE_DIRECT ? ev->profile_a : ev->profile_b));
}

static bool pending_grow(Pending *pd, size_t n)
{
    if (pd->cap >= n)
        return true;
    if (n > SIZE_MAX / 2 || !GROW_EXACT(pd->state, 2 * n) || !GROW_EXACT(pd->replies, 2 * n) ||
        !GROW_EXACT(pd->both, n))
        return false;
    pd->cap = n;
    return true;
}

/* Writes the calls of every side of slot still pending, as one group: both
 * sides of an event in one call (atomic: both or neither), one side alone
 * when only it is pending. */
static void write_pending(Engine *e, int slot, char *err, size_t errlen)
{
    Pending *pd = &e->pending[slot];
    size_t count = 0;
    for (size_t i = 0; i < pd->n; i++) {
        bool direct = pd->state[2 * i] == SIDE_PENDING, reverse = pd->state[2 * i + 1] == SIDE_PENDING;
        if (!direct && !reverse)
            continue; /* replied: both[i] says how */
        int index = relation_index(e->cfg, pd->events[i].rel);
        /* on a cluster the two sides live in two slots: a call each */
        pd->both[i] = index >= 0 && direct && reverse && !router_cluster(e->router);
        if (pd->both[i]) {
            write_call(e, &e->cfg->relations[index], index, &pd->events[i], -1);
            count++;
            continue;
        }
        for (int s = 0; s < 2; s++) {
            if (pd->state[2 * i + s] != SIDE_PENDING)
                continue;
            if (index < 0) {
                pd->state[2 * i + s] = SIDE_NOT_SENT; /* refused in recv */
                continue;
            }
            write_call(e, &e->cfg->relations[index], index, &pd->events[i], s);
            count++;
        }
    }
    if (!push_group(e, GROUP_APPLY, count, 0, slot, err, errlen))
        e->cmd.oom = true; /* fails the flush */
    if (e->cfg->wait_replicas > 0 && count > 0) {
        /* the batch's writes held by enough replicas of every primary */
        resp_count(&e->cmd, '*', 3);
        resp_cstr(&e->cmd, "WAIT");
        resp_int(&e->cmd, e->cfg->wait_replicas);
        resp_int(&e->cmd, e->cfg->redis_timeout_ms / 2);
        cmd_end(e, router_cluster(e->router) ? ROUTER_ALL : ROUTER_ANY);
        if (!push_group(e, GROUP_WAIT, 1, 0, -1, err, errlen))
            e->cmd.oom = true;
    }
}

static void release(Pending *pd)
{
    for (size_t k = 0; k < 2 * pd->n; k++) {
        if (pd->replies[k])
            freeReplyObject(pd->replies[k]);
        pd->replies[k] = NULL;
    }
    pd->busy = pd->lost = false;
    pd->n = 0;
}

bool engine_send(Engine *e, const Event *events, size_t n, char *err, size_t errlen)
{
    int slot = -1;
    for (int i = 0; i < ENGINE_MAX_PENDING && slot < 0; i++)
        if (!e->pending[i].busy)
            slot = i;
    if (slot < 0) {
        snprintf(err, errlen, "redis: more than %d batches sent and not read", ENGINE_MAX_PENDING);
        return false;
    }
    Pending *pd = &e->pending[slot];
    if (!pending_grow(pd, n ? n : 1)) {
        snprintf(err, errlen, "out of memory for a batch of %zu", n);
        return false;
    }
    if (!connected(e, err, errlen))
        return false;
    *pd = (Pending){.busy = true, .events = events, .n = n, .cap = pd->cap, .state = pd->state,
                    .both = pd->both, .replies = pd->replies, .seq = ++e->seq};
    for (size_t k = 0; k < 2 * n; k++) {
        pd->state[k] = SIDE_PENDING;
        pd->replies[k] = NULL;
    }
    now_strings(e);
    queue_load(e, err, errlen);
    write_pending(e, slot, err, errlen);
    if (!flush_commands(e, err, errlen)) {
        release(pd);
        return false;
    }
    return true;
}

/* The apply function refuses an event with an error that starts with this
 * code: the event's fault, decided before anything was written (it is
 * dead-lettered). Every other error is Redis's or its data's (out of memory,
 * no permission, a failed save, a key of another type...): the batch is
 * retried with back-off, never dead-lettered. */
#define REFUSAL "INVALID "

static bool refusal(const char *msg)
{
    return strncmp(msg, REFUSAL, sizeof REFUSAL - 1) == 0;
}

static bool missing_function(const char *msg)
{
    return strstr(msg, "Function not found") != NULL || strncmp(msg, "NOSCRIPT", 8) == 0;
}

/* Reads the apply group at the head (the replies of its pending sides);
 * sides whose function was missing stay pending (*missing set). */
static bool read_apply_group(Engine *e, bool *missing, char *err, size_t errlen)
{
    Group g = e->groups[0];
    Pending *pd = &e->pending[g.slot];
    bool ok = true, readonly = false;
    memmove(e->groups, e->groups + 1, (size_t)(e->ngroups - 1) * sizeof *e->groups);
    e->ngroups--;
    for (size_t k = 0; k < 2 * pd->n; k++) {
        if (pd->state[k] != SIDE_PENDING)
            continue;
        bool both = k % 2 == 0 && pd->both[k / 2]; /* one reply for the two sides */
        redisReply *r;
        if (!read_reply(e, &r, err, errlen))
            return false;
        if (r->type == REDIS_REPLY_ERROR && missing_function(r->str)) {
            *missing = true;
            freeReplyObject(r);
            k += both;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR && !refusal(r->str)) {
            if (ok)
                snprintf(err, errlen, "redis: %s", r->str);
            ok = false;
            /* a primary turned replica (a failover): the next attempt
             * connects again, and asks the sentinels where the primary is */
            if (strncmp(r->str, "READONLY", 8) == 0)
                readonly = true;
        }
        pd->replies[k] = r;
        pd->state[k] = SIDE_REPLIED;
        if (both)
            pd->state[++k] = SIDE_REPLIED;
    }
    if (readonly)
        drop(e);
    return ok;
}

static bool same_event(const Event *a, const Event *b)
{
    return strcmp(a->rel->short_name, b->rel->short_name) == 0 && strcmp(a->id, b->id) == 0 &&
           strcmp(a->profile_a, b->profile_a) == 0 && strcmp(a->profile_b, b->profile_b) == 0;
}

/* A duplicate whose triggers are already in hand: earlier in this batch, or
 * in the batch being delivered. */
static bool repeated(const Event *events, size_t i, const EventSpan *prev, int nprev)
{
    for (size_t j = 0; j < i; j++)
        if (same_event(&events[j], &events[i]))
            return true;
    for (int k = 0; k < nprev; k++)
        for (size_t j = 0; j < prev[k].n; j++)
            if (same_event(&prev[k].events[j], &events[i]))
                return true;
    return false;
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

/* Turns the replies into statuses and triggers, in the batch's order. */
static bool take_replies(Engine *e, Pending *pd, ApplyResult *results, TriggerSet *out,
                         const EventSpan *prev, int nprev, char *err, size_t errlen)
{
    const Event *events = pd->events;
    for (size_t i = 0; i < pd->n; i++) {
        ApplyResult *res = &results[i];
        const Event *ev = &events[i];
        int st[2];
        memset(res, 0, sizeof *res);
        res->first = out->n;
        for (int s = 0; s < 2; s++) {
            redisReply *r = pd->replies[pd->both[i] ? 2 * i : 2 * i + s];
            if (!r) {
                st[s] = APPLY_INVALID;
                snprintf(res->error, sizeof res->error, "relation %s: not in the configuration",
                         ev->rel->short_name);
                continue;
            }
            if (r->type == REDIS_REPLY_ERROR) {
                snprintf(res->error, sizeof res->error, "%s", r->str + sizeof REFUSAL - 1);
                st[s] = APPLY_INVALID;
                continue;
            }
            /* One side: {status[, record]}; both: {status, record or '',
             * status, record or ''}. */
            const redisReply *status = NULL, *blob = NULL;
            if (r->type == REDIS_REPLY_ARRAY && pd->both[i] && r->elements == 4) {
                status = r->element[2 * s];
                blob = r->element[2 * s + 1];
            } else if (r->type == REDIS_REPLY_ARRAY && !pd->both[i] && r->elements >= 1) {
                status = r->element[0];
                blob = r->elements >= 2 ? r->element[1] : NULL;
            }
            if (!status || status->type != REDIS_REPLY_INTEGER || status->integer < 1 ||
                status->integer > 3) {
                snprintf(err, errlen, "redis: unexpected reply to the apply function");
                return false;
            }
            st[s] = status->integer == 1   ? APPLY_APPLIED
                    : status->integer == 2 ? APPLY_DUPLICATE
                                           : APPLY_STALE;
            if (!blob || (blob->type == REDIS_REPLY_STRING && blob->len == 0))
                continue;
            if (st[s] == APPLY_DUPLICATE && repeated(events, i, prev, nprev))
                continue;
            SideRecord rec;
            char why[128];
            int ri = relation_index(e->cfg, ev->rel);
            const RelationDef *rel = ri >= 0 ? &e->cfg->relations[ri] : ev->rel;
            if (blob->type != REDIS_REPLY_STRING ||
                !record_decode(blob->str, blob->len, rel, &rec, why, sizeof why)) {
                /* Not ours to refuse: the event is fine; the entry is left for
                 * an operator and the event's triggers of this side are not
                 * sent. */
                log_at(LOG_ERROR, "redis", "event %s: %s", ev->id,
                       blob->type == REDIS_REPLY_STRING ? why : "record is not a string");
                continue;
            }
            trigger_render(out, rel, (Side)s, ev, &rec);
            res->outbox |= (unsigned char)(1u << s);
        }
        res->status = combine(st);
        res->ntriggers = out->n - res->first;
    }
    if (!triggers_finish(out)) {
        snprintf(err, errlen, "out of memory for the triggers");
        return false;
    }
    return true;
}

bool engine_recv(Engine *e, const Event *events, size_t n, ApplyResult *results,
                 TriggerSet *out, const EventSpan *prev, int nprev, char *err, size_t errlen)
{
    Pending *pd = NULL;
    bool ok = false;
    for (int i = 0; i < ENGINE_MAX_PENDING; i++)
        if (e->pending[i].busy && e->pending[i].events == events && e->pending[i].n == n)
            pd = &e->pending[i];
    if (!pd) {
        snprintf(err, errlen, "redis: the batch was not sent");
        return false;
    }
    int slot = (int)(pd - e->pending);
    if (pd->lost || !e->connected) {
        snprintf(err, errlen, "redis: connection lost");
        goto done;
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        bool missing = false;
        if (!read_groups(e, true, err, errlen))
            goto done;
        if (e->ngroups == 0 || e->groups[0].kind != GROUP_APPLY || e->groups[0].slot != slot) {
            snprintf(err, errlen, "redis: batches read out of order");
            drop(e);
            goto done;
        }
        if (!read_apply_group(e, &missing, err, errlen) || !read_groups(e, true, err, errlen))
            goto done;
        if (!missing)
            break;
        /* The library is not there (a restart without persistence, FUNCTION
         * FLUSH): the batches sent after this one met its absence too. Read
         * them, load the library, and send every side that met it again, in
         * the order the batches were sent. */
        log_at(LOG_WARN, "redis", "function library missing, loading it again");
        while (e->ngroups > 0) {
            bool later_missing = false;
            if (e->groups[0].kind == GROUP_APPLY) {
                if (!read_apply_group(e, &later_missing, err, errlen))
                    goto done;
            } else if (!read_groups(e, true, err, errlen)) {
                goto done;
            }
        }
        e->loaded = false;
        queue_load(e, err, errlen);
        for (uint64_t q = pd->seq; q <= e->seq; q++)
            for (int i = 0; i < ENGINE_MAX_PENDING; i++)
                if (e->pending[i].busy && !e->pending[i].lost && e->pending[i].seq == q)
                    write_pending(e, i, err, errlen);
        if (!flush_commands(e, err, errlen))
            goto done;
        if (attempt == 2) {
            snprintf(err, errlen, "redis: function still missing after loading the library");
            drop(e);
            goto done;
        }
    }
    ok = take_replies(e, pd, results, out, prev, nprev, err, errlen);
    if (!ok)
        drop(e);
done:
    if (!ok) {
        /* A failure before this batch's replies were read: they would be
         * read as the replies of the next batch in its slot. They go with
         * the connection. */
        for (int g = 0; g < e->ngroups && e->connected; g++)
            if (e->groups[g].kind == GROUP_APPLY && e->groups[g].slot == slot)
                drop(e);
        next_epoch(e);
    }
    release(pd);
    return ok;
}

void engine_cancel(Engine *e, const Event *events, size_t n)
{
    for (int i = 0; i < ENGINE_MAX_PENDING; i++) {
        Pending *pd = &e->pending[i];
        if (!pd->busy || pd->events != events || pd->n != n)
            continue;
        if (!pd->lost)
            drop(e);
        release(pd);
    }
}

bool engine_apply(Engine *e, const Event *events, size_t n, ApplyResult *results,
                  TriggerSet *out, char *err, size_t errlen)
{
    return engine_send(e, events, n, err, errlen) &&
           engine_recv(e, events, n, results, out, NULL, 0, err, errlen);
}

bool engine_delivered_async(Engine *e, const Event *events, const ApplyResult *results,
                            size_t n, char *err, size_t errlen)
{
    /* Kept in `cleared` first: without a connection now, the next one sends
     * them. */
    size_t count = 0, start = e->cleared.len;
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < 2; s++) {
            if (!(results[i].outbox & (1u << s)))
                continue;
            const char *own = s == SIDE_DIRECT ? events[i].profile_a : events[i].profile_b;
            const char *other = s == SIDE_DIRECT ? events[i].profile_b : events[i].profile_a;
            if (!GROW_RESERVE(e->cleared_slots, e->cleared_cap, e->ncleared + count + 1, 1024)) {
                e->cleared.oom = true;
                break;
            }
            resp_count(&e->cleared, '*', 3);
            resp_cstr(&e->cleared, "HDEL");
            resp_key(&e->cleared, e->cfg, events[i].rel, (Side)s, own, "side", NULL);
            resp_member(&e->cleared, "!", events[i].id, other);
            e->cleared_slots[e->ncleared + count] = side_slot(events[i].rel, (Side)s, own);
            count++;
        }
    if (e->cleared.oom) {
        snprintf(err, errlen, "redis: out of memory for the outbox clearing");
        e->cleared.oom = false;
        e->cleared.len = start;
        return false;
    }
    if (count == 0)
        return true;
    size_t first = e->ncleared;
    e->ncleared += count;
    if (!e->connected) {
        snprintf(err, errlen, "redis: connection lost (the clearing is sent on reconnection)");
        return false;
    }
    size_t bytes = e->cleared.len - start;
    const char *p = e->cleared.data + start;
    for (size_t i = first; i < e->ncleared; i++) {
        size_t len = resp_command_len(p, (size_t)(e->cleared.data + e->cleared.len - p));
        jsonbuf_put(&e->cmd, p, len);
        cmd_end(e, e->cleared_slots[i]);
        p += len;
    }
    if (!push_group(e, GROUP_HDEL, count, bytes, -1, err, errlen)) {
        drop(e);
        return false;
    }
    return flush_commands(e, err, errlen);
}

bool engine_connect(Engine *e, char *err, size_t errlen)
{
    if (!connected(e, err, errlen))
        return false;
    queue_load(e, err, errlen);
    return flush_commands(e, err, errlen) && read_groups(e, true, err, errlen);
}

bool engine_sync(Engine *e, char *err, size_t errlen)
{
    if (!e->connected)
        return true;
    return read_groups(e, true, err, errlen); /* up to a batch still to be read */
}

bool engine_refused(const Engine *e)
{
    return e->refused;
}

bool engine_ping(Engine *e, char *err, size_t errlen)
{
    for (int i = 0; i < ENGINE_MAX_PENDING; i++)
        if (e->pending[i].busy)
            return true; /* a batch's replies are due: its reading tells */
    if (!engine_connect(e, err, errlen) || !read_groups(e, false, err, errlen))
        return false;
    resp_count(&e->cmd, '*', 1);
    resp_cstr(&e->cmd, "PING");
    cmd_end(e, router_cluster(e->router) ? ROUTER_ALL : ROUTER_ANY);
    if (!push_group(e, GROUP_PING, 1, 0, -1, err, errlen) || !flush_commands(e, err, errlen))
        return false;
    return read_groups(e, false, err, errlen);
}


/* ---- statistics ---- */

bool engine_stats(Engine *e, const RelationDef *rel, Side side, const char *profile, char **json,
                  char *err, size_t errlen)
{
    redisReply *r = NULL;
    SideStats *st = calloc(1, sizeof *st);
    JsonBuf text = {0};
    bool ok = false;
    *json = NULL;
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    if (!engine_side_stats(e, rel, side, profile, st, &r, err, errlen))
        goto done;
    trigger_stats_json(&text, rel, st);
    jsonbuf_char(&text, '\0');
    if (text.oom) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    *json = text.data;
    text.data = NULL;
    ok = true;
done:
    if (r)
        freeReplyObject(r);
    free(st);
    jsonbuf_free(&text);
    return ok;
}

bool engine_side_stats(Engine *e, const RelationDef *rel, Side side, const char *profile,
                       SideStats *st, redisReply **keep, char *err, size_t errlen)
{
    JsonBuf *b = &e->cmd;
    redisReply *r = NULL;
    bool ok = false;
    int ntop = 0;

    *keep = NULL;
    memset(st, 0, sizeof *st);
    if (!connected(e, err, errlen) || !engine_sync(e, err, errlen))
        return false;
    /* One snapshot: MULTI, HMGET of the fields, each top, EXEC (one slot). */
    int slot = side_slot(rel, side, profile);
    resp_count(b, '*', 1);
    resp_cstr(b, "MULTI");
    cmd_end(e, slot);
    resp_count(b, '*', (size_t)(3 + 2 * rel->nproperties));
    resp_cstr(b, "HMGET");
    resp_key(b, e->cfg, rel, side, profile, "side", NULL);
    resp_cstr(b, "count");
    for (int i = 0; i < rel->nproperties; i++) {
        char field[CONFIG_SHORT_MAX + 8];
        snprintf(field, sizeof field, "%s:count", rel->properties[i].short_name);
        resp_cstr(b, field);
        snprintf(field, sizeof field, "%s:total", rel->properties[i].short_name);
        resp_cstr(b, field);
    }
    cmd_end(e, slot);
    for (int i = 0; i < rel->nproperties; i++) {
        const PropertyDef *p = &rel->properties[i];
        if (p->top_order == TOP_NONE)
            continue;
        resp_count(b, '*', 5);
        resp_cstr(b, p->top_order == TOP_DESC ? "ZREVRANGE" : "ZRANGE");
        resp_key(b, e->cfg, rel, side, profile, "top:", p->short_name);
        resp_cstr(b, "0");
        resp_int(b, p->top_limit - 1);
        resp_cstr(b, "WITHSCORES");
        cmd_end(e, slot);
        ntop++;
    }
    resp_count(b, '*', 1);
    resp_cstr(b, "EXEC");
    cmd_end(e, slot);
    if (!flush_commands(e, err, errlen))
        return false;
    /* MULTI and the queued commands answer +OK / +QUEUED; EXEC the results. */
    for (int k = 0; k < 2 + ntop; k++) {
        if (!read_reply(e, &r, err, errlen))
            return false;
        bool bad = r->type == REDIS_REPLY_ERROR;
        if (bad)
            snprintf(err, errlen, "redis: %s", r->str);
        freeReplyObject(r);
        r = NULL;
        if (bad) {
            drop(e);
            return false;
        }
    }
    if (!read_reply(e, &r, err, errlen))
        return false;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)(1 + ntop) ||
        r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements != (size_t)(1 + 2 * rel->nproperties)) {
        snprintf(err, errlen, "redis: unexpected reply to EXEC%s%s",
                 r->type == REDIS_REPLY_ERROR ? ": " : "",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
        goto done;
    }
    const redisReply *h = r->element[0];
    for (size_t f = 0; f < h->elements; f++) {
        int64_t v = 0;
        if (h->element[f]->type == REDIS_REPLY_STRING &&
            !parse_int64(h->element[f]->str, h->element[f]->len, &v)) {
            snprintf(err, errlen, "redis: statistic %zu of %s is not an integer", f,
                     rel->short_name);
            goto done;
        }
        if (f == 0)
            st->count = v;
        else if ((f - 1) % 2 == 0)
            st->pcount[(f - 1) / 2] = v;
        else
            st->ptotal[(f - 1) / 2] = v;
    }
    for (int i = 0, k = 1; i < rel->nproperties; i++) {
        if (rel->properties[i].top_order == TOP_NONE)
            continue;
        const redisReply *z = r->element[k++];
        if (z->type != REDIS_REPLY_ARRAY) {
            snprintf(err, errlen, "redis: unexpected reply for a top");
            goto done;
        }
        for (size_t j = 0; j + 1 < z->elements && st->ntop[i] < CONFIG_MAX_TOP; j += 2) {
            TopEntry *t = &st->top[i][st->ntop[i]];
            if (z->element[j]->type != REDIS_REPLY_STRING ||
                z->element[j + 1]->type != REDIS_REPLY_STRING ||
                !parse_int64(z->element[j + 1]->str, z->element[j + 1]->len, &t->value)) {
                snprintf(err, errlen, "redis: a score of a top is not an integer");
                goto done;
            }
            t->id = z->element[j]->str;
            t->len = z->element[j]->len;
            st->ntop[i]++;
        }
    }
    ok = true;
done:
    if (ok)
        *keep = r; /* the tops' ids point into it */
    else if (r)
        freeReplyObject(r);
    return ok;
}

/* ---- edges ---- */

/* One command to slot's node, its reply. */
static bool command(Engine *e, int slot, redisReply **r, char *err, size_t errlen)
{
    cmd_end(e, slot);
    return flush_commands(e, err, errlen) && read_reply(e, r, err, errlen);
}

/* A SCAN or HSCAN written into cmd, sent to slot's node: its reply, checked
 * to be [cursor, [...]] (freed and false otherwise), and its next cursor. */
static bool scan_page(Engine *e, int slot, const char *what, redisReply **r, char next[32],
                      char *err, size_t errlen)
{
    if (!command(e, slot, r, err, errlen))
        return false;
    const redisReply *x = *r;
    if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 ||
        x->element[0]->type != REDIS_REPLY_STRING || x->element[0]->len >= 32 ||
        x->element[1]->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "redis: unexpected reply to %s%s%s", what,
                 x->type == REDIS_REPLY_ERROR ? ": " : "", x->type == REDIS_REPLY_ERROR ? x->str : "");
        freeReplyObject(*r);
        *r = NULL;
        return false;
    }
    snprintf(next, 32, "%s", x->element[0]->str);
    return true;
}


/* A stored edge ({"version": ..., "weights": {...}}, README "Redis key
 * layout") into w and its version; false when it is not one. */
static bool edge_read(const RelationDef *rel, const char *raw, size_t len, EdgeWeights *w,
                      char *version, size_t vcap, bool *has_version)
{
    json_error_t je;
    json_t *root = json_loadb(raw, len, 0, &je);
    json_t *weights = root ? json_object_get(root, "weights") : NULL;
    json_t *v = root ? json_object_get(root, "version") : NULL;
    bool ok = json_is_object(weights);
    memset(w, 0, sizeof *w);
    *has_version = ok && json_is_string(v) && strlen(json_string_value(v)) < vcap;
    if (*has_version)
        snprintf(version, vcap, "%s", json_string_value(v));
    for (int i = 0; ok && i < rel->nproperties; i++) {
        json_t *x = json_object_get(weights, rel->properties[i].short_name);
        if (!x)
            continue;
        w->set[i] = true;
        if (json_is_boolean(x))
            w->w[i] = json_is_true(x);
        else if (json_is_integer(x))
            w->w[i] = json_integer_value(x);
        else
            ok = false;
    }
    json_decref(root);
    return ok;
}

/* One HSCAN page of a side's edges (its fields @*) from cursor: the reply
 * (checked by scan_page) and the next cursor. The side is key (klen bytes)
 * or, key NULL, the one of rel, side and profile. */
static bool edge_page(Engine *e, const RelationDef *rel, Side side, const char *profile,
                      const char *key, size_t klen, int slot, const char *cursor, int count,
                      redisReply **r, char next[32], char *err, size_t errlen)
{
    resp_count(&e->cmd, '*', 7);
    resp_cstr(&e->cmd, "HSCAN");
    if (key)
        resp_arg(&e->cmd, key, klen);
    else
        resp_key(&e->cmd, e->cfg, rel, side, profile, "side", NULL);
    resp_cstr(&e->cmd, cursor);
    resp_cstr(&e->cmd, "MATCH");
    resp_cstr(&e->cmd, "@*");
    resp_cstr(&e->cmd, "COUNT");
    resp_int(&e->cmd, count);
    return scan_page(e, slot, "HSCAN", r, next, err, errlen);
}

typedef struct {
    const char *cp; /* the counterpart (after '@'), cplen bytes */
    size_t cplen;
    EdgeWeights w;
    char version[24];
    bool has_version;
} PageEdge;

/* Field pair i of an edge page (f: the reply's fields) as an edge; false
 * when it is not an edge of ours. */
static bool page_edge(const RelationDef *rel, const redisReply *f, size_t i, PageEdge *out)
{
    const redisReply *k = f->element[i], *v = f->element[i + 1];
    if (k->type != REDIS_REPLY_STRING || k->len < 1 || k->str[0] != '@' ||
        v->type != REDIS_REPLY_STRING ||
        !edge_read(rel, v->str, v->len, &out->w, out->version, sizeof out->version,
                   &out->has_version))
        return false;
    out->cp = k->str + 1;
    out->cplen = k->len - 1;
    return true;
}

bool engine_edges(Engine *e, const RelationDef *rel, Side side, const char *profile,
                  const char *cursor, int count, const char *sep, JsonBuf *out, int *n,
                  char next[32], char *err, size_t errlen)
{
    redisReply *r = NULL;
    bool ok = false;
    *n = 0;
    if (!connected(e, err, errlen) || !engine_sync(e, err, errlen) ||
        !edge_page(e, rel, side, profile, NULL, 0, side_slot(rel, side, profile), cursor, count,
                   &r, next, err, errlen))
        return false;
    const redisReply *f = r->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        PageEdge pe;
        if (!page_edge(rel, f, i, &pe)) {
            log_at(LOG_WARN, "redis", "%s: a field that is not an edge of ours, skipped",
                   rel->short_name);
            continue;
        }
        if (out->len && sep)
            jsonbuf_cstr(out, sep);
        trigger_edge_json(out, rel, side, pe.cp, pe.cplen, &pe.w,
                          pe.has_version ? pe.version : NULL,
                          pe.has_version ? strlen(pe.version) : 0);
        (*n)++;
    }
    if (out->oom) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    ok = true;
done:
    freeReplyObject(r);
    return ok;
}

/* ---- segments ---- */

/* A glob pattern matching text literally (SCAN MATCH). */
static void glob_literal(JsonBuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '*' || *s == '?' || *s == '[' || *s == ']' || *s == '\\')
            jsonbuf_char(b, '\\');
        jsonbuf_char(b, *s);
    }
}

/* The profile of a side key PREFIX{REL:S:PROFILE}:side, decoded (key_id);
 * false when the key is not one. */
static bool key_profile(const char *key, size_t len, size_t head, char *out, size_t cap)
{
    const char *p = key + head, *end = key + len - 6; /* "}:side" */
    size_t n = 0;
    if (len < head + 6 || memcmp(end, "}:side", 6) != 0)
        return false;
    while (p < end) {
        char c = *p++;
        if (c == '%') {
            if (end - p < 2)
                return false;
            int hi = p[0] <= '9' ? p[0] - '0' : p[0] - 'A' + 10;
            int lo = p[1] <= '9' ? p[1] - '0' : p[1] - 'A' + 10;
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        if (n + 1 >= cap)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return n > 0;
}

/* One SCAN page of slot's node: keys matching pattern (of type, when not
 * NULL), from cursor (next: where to go on). */
static bool scan_keys(Engine *e, int slot, const JsonBuf *pattern, const char *type,
                      redisReply **r, char cursor[32], char *err, size_t errlen)
{
    resp_count(&e->cmd, '*', type ? 8 : 6);
    resp_cstr(&e->cmd, "SCAN");
    resp_cstr(&e->cmd, cursor);
    resp_cstr(&e->cmd, "MATCH");
    resp_arg(&e->cmd, pattern->data, pattern->len);
    resp_cstr(&e->cmd, "COUNT");
    resp_cstr(&e->cmd, "1000");
    if (type) {
        resp_cstr(&e->cmd, "TYPE");
        resp_cstr(&e->cmd, type);
    }
    return scan_page(e, slot, "SCAN", r, cursor, err, errlen);
}

/* Whether one of the side's edges matches (HSCAN until one does). */
static bool side_matches(Engine *e, const RelationDef *rel, const char *key, size_t klen,
                         int slot, const Segment *seg, bool *match, unsigned long *edges,
                         char *err, size_t errlen)
{
    char cursor[32] = "0";
    *match = false;
    do {
        redisReply *r;
        if (!edge_page(e, rel, SIDE_DIRECT, NULL, key, klen, slot, cursor, 500, &r, cursor, err,
                       errlen))
            return false;
        const redisReply *f = r->element[1];
        for (size_t i = 0; i + 1 < f->elements && !*match; i += 2) {
            PageEdge pe;
            if (!page_edge(rel, f, i, &pe))
                continue;
            (*edges)++;
            *match = segment_match(seg, &pe.w);
        }
        freeReplyObject(r);
    } while (!*match && strcmp(cursor, "0") != 0);
    return true;
}

/* Every side key of a relation's side (SCAN on every primary), each
 * passed to each with its profile; each returns false to stop (ok false
 * and err set on a failure). */
typedef bool (*SideFn)(Engine *e, const RelationDef *rel, Side side, const char *key, size_t klen,
                       const char *profile, void *ctx, bool *ok, char *err, size_t errlen);

/* The share of a table a SCAN has walked before its next cursor: Redis
 * counts the cursor up from its high bits down (reverse binary), so its bits
 * reversed grow from 0 to the table's size; "0" means done. */
static double cursor_share(const char *cursor)
{
    unsigned long long c = strtoull(cursor, NULL, 10), r = 0;
    if (c == 0)
        return 1;
    for (int i = 0; i < 64; i++, c >>= 1)
        r = (r << 1) | (c & 1);
    return (double)r / 18446744073709551616.0;
}

double engine_walk_share(const Engine *e)
{
    return e->walk_share;
}

static bool walk_sides(Engine *e, const RelationDef *rel, Side side, SideFn each, void *ctx,
                       char *err, size_t errlen)
{
    JsonBuf pattern = {0};
    bool ok = true, go_on = true;
    if (!connected(e, err, errlen) || !engine_sync(e, err, errlen))
        return false;
    glob_literal(&pattern, e->cfg->key_prefix);
    jsonbuf_char(&pattern, '{');
    jsonbuf_cstr(&pattern, rel->short_name);
    jsonbuf_cstr(&pattern, side == SIDE_DIRECT ? ":d:*}:side" : ":r:*}:side");
    size_t head = strlen(e->cfg->key_prefix) + 1 + strlen(rel->short_name) + 3;
    if (pattern.oom) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    int nodes = router_nodes(e->router);
    e->walk_share = 0;
    for (int node = 0; ok && go_on && node < nodes; node++) {
        int slot = router_node_slot(e->router, node);
        char cursor[32] = "0";
        if (slot == ROUTER_NONE)
            continue; /* a primary with no slot holds no key */
        do {
            redisReply *r;
            if (!(ok = scan_keys(e, slot, &pattern, "hash", &r, cursor, err, errlen)))
                break;
            e->walk_share = (node + cursor_share(cursor)) / nodes;
            const redisReply *keys = r->element[1];
            for (size_t i = 0; ok && go_on && i < keys->elements; i++) {
                const redisReply *k = keys->element[i];
                char profile[EVENT_PROFILE_MAX + 1];
                if (k->type != REDIS_REPLY_STRING ||
                    !key_profile(k->str, k->len, head, profile, sizeof profile))
                    continue;
                go_on = each(e, rel, side, k->str, k->len, profile, ctx, &ok, err, errlen);
            }
            freeReplyObject(r);
        } while (ok && go_on && strcmp(cursor, "0") != 0);
    }
    jsonbuf_free(&pattern);
    return ok;
}

typedef struct {
    const struct Segment *seg;
    bool (*found)(const char *profile, size_t len, void *ctx);
    void *ctx;
    unsigned long *edges;
} SegmentWalk;

static bool segment_side(Engine *e, const RelationDef *rel, Side side, const char *key,
                         size_t klen, const char *profile, void *ctx, bool *ok, char *err,
                         size_t errlen)
{
    SegmentWalk *w = ctx;
    bool match;
    *ok = side_matches(e, rel, key, klen,
                       router_cluster(e->router) ? side_slot(rel, side, profile) : ROUTER_ANY,
                       w->seg, &match, w->edges, err, errlen);
    return *ok && (!match || w->found(profile, strlen(profile), w->ctx));
}

bool engine_segment(Engine *e, const RelationDef *rel, Side side, const struct Segment *seg,
                    bool (*found)(const char *profile, size_t len, void *ctx), void *ctx,
                    unsigned long *edges, char *err, size_t errlen)
{
    SegmentWalk w = {seg, found, ctx, edges};
    *edges = 0;
    return walk_sides(e, rel, side, segment_side, &w, err, errlen);
}

typedef struct {
    bool (*each)(const char *profile, void *ctx);
    void *ctx;
} ProfileWalk;

static bool profile_side(Engine *e, const RelationDef *rel, Side side, const char *key,
                         size_t klen, const char *profile, void *ctx, bool *ok, char *err,
                         size_t errlen)
{
    (void)e, (void)rel, (void)side, (void)key, (void)klen, (void)ok, (void)err, (void)errlen;
    ProfileWalk *w = ctx;
    return w->each(profile, w->ctx);
}

bool engine_sides(Engine *e, const RelationDef *rel, Side side,
                  bool (*each)(const char *profile, void *ctx), void *ctx, char *err,
                  size_t errlen)
{
    ProfileWalk w = {each, ctx};
    return walk_sides(e, rel, side, profile_side, &w, err, errlen);
}

/* ---- verify and rebuild ---- */

/* The edges a rebuild step reads (HSCAN COUNT): about 100 edges are a
 * millisecond or two of Redis (README, "Performance"). */
#define REBUILD_PAGE 100

/* One step of a side's rebuild (apply.lua, rebuild) from cursor: its reply,
 * {next cursor, edges counted}, checked. The library is loaded when it is
 * missing, and the step made once more. */
static bool rebuild_step(Engine *e, const RelationDef *rel, int index, Side side,
                         const char *profile, const char *token, const char *cursor,
                         redisReply **out, char *err, size_t errlen)
{
    int ntop = 0;
    for (int i = 0; i < rel->nproperties; i++)
        ntop += rel->properties[i].top_order != TOP_NONE;
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *r;
        char fname[96];
        queue_load(e, err, errlen);
        snprintf(fname, sizeof fname, "%s_rebuild", e->fname);
        resp_count(&e->cmd, '*', (size_t)(3 + 2 + 2 * ntop + 4));
        resp_cstr(&e->cmd, "FCALL");
        resp_cstr(&e->cmd, fname);
        resp_int(&e->cmd, 2 + 2 * ntop);
        resp_key(&e->cmd, e->cfg, rel, side, profile, "side", NULL);
        resp_key(&e->cmd, e->cfg, rel, side, profile, "rebuild", NULL);
        for (int copy = 0; copy < 2; copy++)
            for (int i = 0; i < rel->nproperties; i++)
                if (rel->properties[i].top_order != TOP_NONE)
                    resp_key(&e->cmd, e->cfg, rel, side, profile, copy ? "rebuild:top:" : "top:",
                             rel->properties[i].short_name);
        resp_int(&e->cmd, index + 1);
        resp_cstr(&e->cmd, token);
        resp_cstr(&e->cmd, cursor);
        resp_int(&e->cmd, REBUILD_PAGE);
        cmd_end(e, side_slot(rel, side, profile));
        if (!flush_commands(e, err, errlen) || !read_groups(e, false, err, errlen) ||
            !read_reply(e, &r, err, errlen))
            return false;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len < 32 &&
            r->element[1]->type == REDIS_REPLY_INTEGER) {
            *out = r;
            return true;
        }
        bool missing = r->type == REDIS_REPLY_ERROR && missing_function(r->str);
        snprintf(err, errlen, "redis: %s", r->type == REDIS_REPLY_ERROR ? r->str
                                                                       : "unexpected reply to rebuild");
        freeReplyObject(r);
        if (!missing)
            return false;
        e->loaded = false; /* load the library, and once more */
    }
    return false;
}

bool engine_rebuild(Engine *e, const RelationDef *rel, Side side, const char *profile,
                    long long *edges, char *err, size_t errlen)
{
    int index = relation_index(e->cfg, rel);
    char token[40], cursor[32] = "0";
    uint64_t id;
    *edges = 0;
    if (index < 0) {
        snprintf(err, errlen, "relation %s: not in the configuration", rel->short_name);
        return false;
    }
    if (!connected(e, err, errlen) || !engine_sync(e, err, errlen))
        return false;
    /* this rebuild's own id: another rebuild of the side (another
     * relationctl) never has it */
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        id = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    snprintf(token, sizeof token, "%08x.%016llx", e->epoch_id, (unsigned long long)id);
    do {
        redisReply *r;
        if (!rebuild_step(e, rel, index, side, profile, token, cursor, &r, err, errlen))
            return false;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        *edges += r->element[1]->integer;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return true;
}

static bool add64(int64_t *to, int64_t v)
{
    return !__builtin_add_overflow(*to, v, to);
}

bool engine_verify(Engine *e, const RelationDef *rel, Side side, const char *profile,
                   SideCheck *out, char *err, size_t errlen)
{
    redisReply *keep = NULL, *r = NULL;
    int slot = side_slot(rel, side, profile);
    int64_t topset[CONFIG_MAX_PROPERTIES] = {0};
    memset(out, 0, sizeof *out);
    if (!engine_side_stats(e, rel, side, profile, &out->stored, &keep, err, errlen))
        return false;
    freeReplyObject(keep);
    memset(out->stored.ntop, 0, sizeof out->stored.ntop);
    for (int i = 0; i < rel->nproperties; i++)
        out->top_ok[i] = true;
    char cursor[32] = "0";
    int64_t *want = NULL;
    int *prop = NULL;
    size_t cap = 0;
    bool ok = true;
    do {
        if (!(ok = edge_page(e, rel, side, profile, NULL, 0, slot, cursor, 500, &r, cursor, err,
                             errlen)))
            break;
        const redisReply *f = r->element[1];
        size_t nz = 0;
        if (cap < f->elements / 2 * CONFIG_MAX_PROPERTIES + 1) {
            cap = f->elements / 2 * CONFIG_MAX_PROPERTIES + 1;
            if (!GROW_EXACT(want, cap) || !GROW_EXACT(prop, cap)) {
                snprintf(err, errlen, "out of memory");
                ok = false;
                break;
            }
        }
        for (size_t i = 0; ok && i + 1 < f->elements; i += 2) {
            PageEdge pe;
            if (!page_edge(rel, f, i, &pe)) {
                snprintf(err, errlen, "%s: a field that is not an edge of ours", rel->short_name);
                ok = false;
                break;
            }
            const EdgeWeights w = pe.w;
            out->nedges++;
            ok = add64(&out->edges.count, 1);
            for (int p = 0; ok && p < rel->nproperties; p++) {
                const PropertyDef *pd = &rel->properties[p];
                if (!w.set[p])
                    continue;
                if (pd->type == PROP_BOOL) {
                    ok = add64(&out->edges.pcount[p], w.w[p] == 1);
                    continue;
                }
                ok = add64(&out->edges.pcount[p], 1) &&
                     (!pd->save_amount || add64(&out->edges.ptotal[p], w.w[p]));
                if (pd->top_order != TOP_NONE) {
                    topset[p]++;
                    resp_count(&e->cmd, '*', 3);
                    resp_cstr(&e->cmd, "ZSCORE");
                    resp_key(&e->cmd, e->cfg, rel, side, profile, "top:", pd->short_name);
                    resp_arg(&e->cmd, pe.cp, pe.cplen);
                    cmd_end(e, slot);
                    want[nz] = w.w[p];
                    prop[nz++] = p;
                }
            }
            if (!ok)
                snprintf(err, errlen, "a sum out of the 64-bit range");
        }
        freeReplyObject(r);
        r = NULL;
        if (!ok)
            break;
        if (nz && !(ok = flush_commands(e, err, errlen)))
            break;
        for (size_t z = 0; ok && z < nz; z++) {
            redisReply *sc;
            if (!(ok = read_reply(e, &sc, err, errlen)))
                break;
            int64_t got;
            if (sc->type != REDIS_REPLY_STRING || !parse_int64(sc->str, sc->len, &got) ||
                got != want[z])
                out->top_ok[prop[z]] = false;
            freeReplyObject(sc);
        }
    } while (ok && strcmp(cursor, "0") != 0);
    if (r)
        freeReplyObject(r);
    free(want);
    free(prop);
    /* every top holds the edges with the property set, and nothing else */
    for (int p = 0; ok && p < rel->nproperties; p++) {
        if (rel->properties[p].top_order == TOP_NONE)
            continue;
        resp_count(&e->cmd, '*', 2);
        resp_cstr(&e->cmd, "ZCARD");
        resp_key(&e->cmd, e->cfg, rel, side, profile, "top:", rel->properties[p].short_name);
        if (!(ok = command(e, slot, &r, err, errlen)))
            break;
        if (r->type != REDIS_REPLY_INTEGER || r->integer != topset[p])
            out->top_ok[p] = false;
        freeReplyObject(r);
        r = NULL;
    }
    return ok;
}

bool engine_prefix_unused(Engine *e, bool *unused, char *err, size_t errlen)
{
    JsonBuf pattern = {0};
    bool ok = true, found = false, finished = true;
    *unused = false;
    if (!connected(e, err, errlen) || !engine_sync(e, err, errlen))
        return false;
    glob_literal(&pattern, e->cfg->key_prefix);
    jsonbuf_char(&pattern, '*');
    int nodes = router_nodes(e->router);
    for (int node = 0; ok && !found && node < nodes; node++) {
        int slot = router_node_slot(e->router, node);
        char cursor[32] = "0";
        if (slot == ROUTER_NONE)
            continue;
        for (int page = 0;; page++) {
            redisReply *r;
            if (page == 20) { /* a large keyspace: not worth reading it all */
                finished = false;
                break;
            }
            if (!(ok = scan_keys(e, slot, &pattern, NULL, &r, cursor, err, errlen)))
                break;
            found = r->element[1]->elements > 0;
            freeReplyObject(r);
            if (found || strcmp(cursor, "0") == 0)
                break;
        }
    }
    jsonbuf_free(&pattern);
    *unused = ok && !found && finished;
    return ok;
}
