/* engine.c — the engine's lifecycle (engine.h): the function library of a
 * configuration, or the configuration's text for the Redis module (module/,
 * redis.engine chosen on each connection), the connection (commands written
 * into one reusable buffer, grouped by the replies they await), connecting,
 * PING, the helpers the other parts share (engine_int.h). */
#include "handlers/engine_int.h"
#include "lib/grow.h"
#include "lib/log.h"
#include "handlers/resp.h"
#include "handlers/schema.h"
#include "lib/sha1.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

extern const char apply_lua[]; /* generated from handlers/apply.lua */

/* A new epoch: the calls sent from now on pass the fences that the failed
 * ones left, the ones already sent stop at them. */
void engine_next_epoch(Engine *e)
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

/* The module's configuration text (module/conf.h): the constants that
 * make_library bakes into the Lua code, in the same order. */
static char *make_module_text(const Engine *e)
{
    const Config *cfg = e->cfg;
    JsonBuf b = {0};
    jsonbuf_cstr(&b, "2 ");
    jsonbuf_int(&b, cfg->tombstone_ttl_s);
    jsonbuf_char(&b, ' ');
    jsonbuf_int(&b, -(int64_t)cfg->dedup_ids - 1);
    jsonbuf_char(&b, ' ');
    jsonbuf_int(&b, cfg->tombstone_ttl_s * 1000 / 16 > 0 ? cfg->tombstone_ttl_s * 1000 / 16 : 1);
    jsonbuf_char(&b, ' ');
    jsonbuf_int(&b, cfg->nrelations);
    for (int r = 0; r < cfg->nrelations; r++) {
        const RelationDef *rel = &cfg->relations[r];
        int nslots;
        const int *slot = engine_slots(e, r, &nslots);
        jsonbuf_char(&b, ' ');
        jsonbuf_int(&b, rel->nproperties);
        jsonbuf_char(&b, ' ');
        jsonbuf_int(&b, nslots);
        for (int i = 0; i < rel->nproperties; i++) {
            const PropertyDef *p = &rel->properties[i];
            jsonbuf_char(&b, ' ');
            jsonbuf_cstr(&b, p->short_name);
            jsonbuf_char(&b, ' ');
            jsonbuf_int(&b, slot[i]);
            jsonbuf_char(&b, ' ');
            jsonbuf_int(&b, p->type == PROP_INT ? 0 : p->type == PROP_FLOAT ? 1 : 2);
            jsonbuf_cstr(&b, p->save_amount ? " 1 " : " 0 ");
            jsonbuf_int(&b, p->top_order == TOP_DESC ? 1 : p->top_order == TOP_ASC ? 2 : 0);
            jsonbuf_char(&b, ' ');
            jsonbuf_int(&b, p->top_limit - 1);
        }
    }
    return jsonbuf_take(&b);
}

/* The library: constants of cfg, then handlers/apply.lua. Its name carries
 * a digest of its code, so daemons with different configurations each call
 * their own. Short names are [a-z][a-z0-9_]*: safe inside Lua quotes. */
static char *make_library(const Engine *e, char fname[64])
{
    const Config *cfg = e->cfg;
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
        int nslots;
        const int *slot = engine_slots(e, r, &nslots);
        jsonbuf_cstr(&body, "nslots=");
        jsonbuf_int(&body, nslots);
        jsonbuf_cstr(&body, ",slot={");
        for (int i = 0; i < rel->nproperties; i++) {
            jsonbuf_cstr(&body, i ? "," : "");
            jsonbuf_int(&body, slot[i]);
        }
        jsonbuf_cstr(&body, "},");
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
    jsonbuf_cstr(&lib, "_rebuild', rebuild)\nredis.register_function('");
    jsonbuf_cstr(&lib, fname);
    jsonbuf_cstr(&lib, "_migrate', migrate)\n");
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

/* ---- connection ---- */

void engine_drop(Engine *e)
{
    engine_next_epoch(e);
    router_drop(e->router);
    e->connected = false;
    e->nmarks = 0;
    e->loaded = false;
    e->ngroups = 0;
    for (int i = 0; i < ENGINE_MAX_PENDING; i++)
        if (e->pending[i].busy)
            e->pending[i].lost = true;
}

bool engine_push_group(Engine *e, GroupKind kind, size_t count, size_t bytes, int slot,
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
bool engine_flush(Engine *e, char *err, size_t errlen)
{
    int done = 0;
    if (e->cmd.oom) {
        snprintf(err, errlen, "redis: out of memory for the commands");
        engine_drop(e);
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
        engine_drop(e);
        return false;
    }
    if (!router_flush(e->router, err, errlen)) {
        engine_drop(e);
        return false;
    }
    return true;
}

/* The command just written into cmd goes to the node of slot. */
void engine_cmd_end(Engine *e, int slot)
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
        engine_cmd_end(e, e->cleared_slots[i]);
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

bool engine_choose(const Config *cfg, const redisReply *r, bool *module, char *err,
                   size_t errlen)
{
    bool has = false;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *m = r->element[i];
        for (size_t k = 0; m->type == REDIS_REPLY_ARRAY && k + 1 < m->elements; k += 2)
            if (m->element[k]->type == REDIS_REPLY_STRING &&
                strcmp(m->element[k]->str, "name") == 0 &&
                m->element[k + 1]->type == REDIS_REPLY_STRING &&
                strcmp(m->element[k + 1]->str, "relationd") == 0)
                has = true;
    }
    *module = has && cfg->redis_engine != 1;
    if (!has && cfg->redis_engine == 2) {
        snprintf(err, errlen, "redis.engine: \"module\", but the server has not loaded the relationd "
                              "module (MODULE LIST%s%s); load relationd.so (loadmodule) or set "
                              "redis.engine to \"function\"",
                 r->type == REDIS_REPLY_ERROR ? ": " : "",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
        return false;
    }
    return true;
}

bool engine_passing(const char *msg)
{
    return strncmp(msg, "LOADING", 7) == 0 || strncmp(msg, "BUSY", 4) == 0;
}

/* redis.engine on a new connection: the module when it is asked for, or
 * (auto) when MODULE LIST names it; `module` without it is a configuration
 * error (engine_refused). */
static bool choose_engine(Engine *e, char *err, size_t errlen)
{
    e->module = false;
    if (e->cfg->redis_engine == 1)
        return true;
    redisReply *r;
    resp_count(&e->cmd, '*', 2);
    resp_cstr(&e->cmd, "MODULE");
    resp_cstr(&e->cmd, "LIST");
    if (!engine_command(e, ROUTER_ANY, &r, err, errlen))
        return false;
    /* A server still loading its data (or busy with a script) answers
     * every command so: a passing state, not a server without the module,
     * and for auto not a reason to take the function. */
    if (r->type == REDIS_REPLY_ERROR && engine_passing(r->str)) {
        snprintf(err, errlen, "redis: %s", r->str);
        freeReplyObject(r);
        engine_drop(e);
        return false;
    }
    bool ok = engine_choose(e->cfg, r, &e->module, err, errlen);
    freeReplyObject(r);
    if (!ok) {
        e->refused = true;
        engine_drop(e);
    }
    return ok;
}

bool engine_connected(Engine *e, char *err, size_t errlen)
{
    if (e->connected && router_connected(e->router))
        return true;
    engine_drop(e);
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
    e->connections++;
    if (!choose_engine(e, err, errlen) || !schema_sync(e, err, errlen))
        return false;
    /* Clearings whose outcome the lost connection took with it. */
    if (e->cleared.len) {
        requeue_cleared(e);
        if (!engine_push_group(e, GROUP_HDEL, e->ncleared, e->cleared.len, -1, err, errlen)) {
            engine_drop(e);
            return false;
        }
    }
    return true;
}

/* Queues the library's load ahead of the calls that need it. */
void engine_queue_load(Engine *e, char *err, size_t errlen)
{
    if (e->loaded)
        return;
    if (e->module) {
        resp_count(&e->cmd, '*', 3);
        resp_cstr(&e->cmd, "relationd.load");
        resp_cstr(&e->cmd, e->conf_name);
        resp_cstr(&e->cmd, e->module_text);
    } else {
        resp_count(&e->cmd, '*', 4);
        resp_cstr(&e->cmd, "FUNCTION");
        resp_cstr(&e->cmd, "LOAD");
        resp_cstr(&e->cmd, "REPLACE");
        resp_cstr(&e->cmd, e->library);
    }
    engine_cmd_end(e, router_cluster(e->router) ? ROUTER_ALL : ROUTER_ANY);
    if (engine_push_group(e, GROUP_LOAD, 1, 0, -1, err, errlen))
        e->loaded = true;
}

bool engine_read_reply(Engine *e, redisReply **r, char *err, size_t errlen)
{
    *r = NULL;
    if (!e->connected || !router_read(e->router, r, err, errlen) || !*r) {
        if (!e->connected)
            snprintf(err, errlen, "redis: connection lost");
        engine_drop(e);
        return false;
    }
    return true;
}

/* Reads the replies of the groups ahead of the first apply group (all of
 * them when stop_at_apply is false). */
bool engine_read_groups(Engine *e, bool stop_at_apply, char *err, size_t errlen)
{
    bool ok = true, hdel_failed = false;
    while (e->ngroups > 0) {
        Group g = e->groups[0];
        if (g.kind == GROUP_APPLY) {
            if (stop_at_apply)
                return ok;
            snprintf(err, errlen, "redis: a batch's replies were not read");
            engine_drop(e);
            return false;
        }
        memmove(e->groups, e->groups + 1, (size_t)(e->ngroups - 1) * sizeof *e->groups);
        e->ngroups--;
        for (size_t k = 0; k < g.count; k++) {
            redisReply *r;
            if (!engine_read_reply(e, &r, err, errlen)) {
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
                log_at(LOG_WARN, "redis", "%s: %s", e->module ? "relationd.load" : "FUNCTION LOAD",
                       r->str);
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
            engine_drop(e);
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
    bool unknown;
    e->cfg = cfg;
    e->router = router_new(cfg);
    if (!e->router || !schema_take(e, &unknown) || !engine_make_code(e)) {
        schema_free(e);
        router_free(e->router);
        free(e);
        return NULL;
    }
    /* another engine (a daemon, relationctl) never shares an epoch */
    if (getrandom(&e->epoch_id, sizeof e->epoch_id, 0) != (ssize_t)sizeof e->epoch_id)
        e->epoch_id = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16) ^ (uint32_t)(uintptr_t)e;
    engine_next_epoch(e);
    return e;
}

Engine *engine_new(const Config *cfg, char *err, size_t errlen)
{
    Engine *e = engine_create(cfg);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!engine_connected(e, err, errlen)) {
        engine_free(e);
        return NULL;
    }
    engine_queue_load(e, err, errlen);
    if (!engine_flush(e, err, errlen) || !engine_read_groups(e, false, err, errlen)) {
        engine_free(e);
        return NULL;
    }
    return e;
}

void engine_free(Engine *e)
{
    if (!e)
        return;
    engine_drop(e);
    router_free(e->router);
    free(e->library);
    free(e->module_text);
    schema_free(e);
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

bool engine_make_code(Engine *e)
{
    char fname[64];
    char *library = make_library(e, fname), *text = make_module_text(e);
    if (!library || !text) {
        free(library);
        free(text);
        return false;
    }
    if (e->library && strcmp(library, e->library) == 0 && strcmp(text, e->module_text) == 0) {
        free(library);
        free(text);
        return true;
    }
    free(e->library);
    free(e->module_text);
    e->library = library;
    e->module_text = text;
    memcpy(e->fname, fname, sizeof fname);
    snprintf(e->conf_name, sizeof e->conf_name, "relationd_%s", e->fname + 16);
    e->loaded = false;
    return true;
}

bool engine_set_config(Engine *e, const Config *cfg)
{
    const Config *old = e->cfg;
    bool unknown;
    e->cfg = cfg;
    if (!schema_take(e, &unknown) || !engine_make_code(e)) {
        e->cfg = old;
        if (!schema_take(e, &unknown))
            engine_drop(e); /* slots taken again on the next connection */
        return false;
    }
    router_set_config(e->router, cfg);
    e->loaded = false;
    /* A property in no schema list read: its slot is taken on a new
     * connection (the batches in flight are sent again on it). */
    if (unknown && e->connected)
        engine_drop(e);
    return true;
}

/* ---- shared with the parts ---- */

/* The relation's place in the engine's configuration (the event may have
 * been parsed with the previous one). -1 when it is gone. */
int engine_relation_index(const Config *cfg, const RelationDef *rel)
{
    uintptr_t p = (uintptr_t)rel, lo = (uintptr_t)cfg->relations;
    if (p >= lo && p < (uintptr_t)(cfg->relations + cfg->nrelations))
        return (int)((p - lo) / sizeof *rel);
    const RelationDef *same = config_relation(cfg, rel->short_name);
    return same ? (int)(same - cfg->relations) : -1;
}

bool engine_missing_function(const char *msg)
{
    return strstr(msg, "Function not found") != NULL || strncmp(msg, "NOSCRIPT", 8) == 0 ||
           strncmp(msg, "NOCONFIG", 8) == 0;
}

void engine_write_call_head(Engine *e, const char *cmd, size_t nargs)
{
    resp_count(&e->cmd, '*', nargs + 2);
    if (e->module) {
        char name[32];
        snprintf(name, sizeof name, "relationd.%s", cmd);
        resp_cstr(&e->cmd, name);
        resp_cstr(&e->cmd, e->conf_name);
        return;
    }
    char fname[96];
    snprintf(fname, sizeof fname, "%s%s%s", e->fname, strcmp(cmd, "apply") ? "_" : "",
             strcmp(cmd, "apply") == 0 ? "" : strcmp(cmd, "apply2") == 0 ? "both" : cmd);
    resp_cstr(&e->cmd, "FCALL");
    resp_cstr(&e->cmd, fname);
}

/* One command to slot's node, its reply. */
bool engine_command(Engine *e, int slot, redisReply **r, char *err, size_t errlen)
{
    engine_cmd_end(e, slot);
    return engine_flush(e, err, errlen) && engine_read_reply(e, r, err, errlen);
}

/* ---- connecting, syncing, PING ---- */

bool engine_connect(Engine *e, char *err, size_t errlen)
{
    if (!engine_connected(e, err, errlen))
        return false;
    engine_queue_load(e, err, errlen);
    return engine_flush(e, err, errlen) && engine_read_groups(e, true, err, errlen);
}

bool engine_sync(Engine *e, char *err, size_t errlen)
{
    if (!e->connected)
        return true;
    return engine_read_groups(e, true, err, errlen); /* up to a batch still to be read */
}

bool engine_refused(const Engine *e)
{
    return e->refused;
}

bool engine_cluster(const Engine *e)
{
    return e->connected && router_connected(e->router) && router_cluster(e->router);
}

bool engine_ping(Engine *e, char *err, size_t errlen)
{
    for (int i = 0; i < ENGINE_MAX_PENDING; i++)
        if (e->pending[i].busy)
            return true; /* a batch's replies are due: its reading tells */
    if (!engine_connect(e, err, errlen) || !engine_read_groups(e, false, err, errlen))
        return false;
    resp_count(&e->cmd, '*', 1);
    resp_cstr(&e->cmd, "PING");
    engine_cmd_end(e, router_cluster(e->router) ? ROUTER_ALL : ROUTER_ANY);
    if (!engine_push_group(e, GROUP_PING, 1, 0, -1, err, errlen) || !engine_flush(e, err, errlen))
        return false;
    return engine_read_groups(e, false, err, errlen);
}

