/* check.c — checks of stored data (check.h): verify (a side's statistics
 * and tops against its edges, by the rules of the side's layout), rebuild
 * (in steps of the library's rebuild function), a side's conversion from
 * layout 1 (the engine's migrate), the check that redis.key_prefix is used
 * at all. The engine calls on one side (rebuild, migrate) are written and
 * sent by one routine, side_call. */
#include "handlers/check.h"
#include "handlers/engine_int.h"
#include "lib/grow.h"
#include "handlers/keys.h"
#include "handlers/read.h"
#include "handlers/resp.h"
#include "handlers/walk.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- verify and rebuild ---- */

/* The edges a rebuild step reads (HSCAN COUNT): about 100 edges are a
 * millisecond or two of Redis (README, "Performance"). */
#define REBUILD_PAGE 100

/* The number of the relation's tops. */
static int top_count(const RelationDef *rel)
{
    int n = 0;
    for (int i = 0; i < rel->nproperties; i++)
        n += rel->properties[i].top_order != TOP_NONE;
    return n;
}

/* The side's top keys (suffix "top:" or "rebuild:top:"), property order. */
static void write_tops(Engine *e, const RelationDef *rel, Side side, const char *profile,
                       const char *suffix)
{
    for (int i = 0; i < rel->nproperties; i++)
        if (rel->properties[i].top_order != TOP_NONE)
            key_write(&e->cmd, e->cfg, rel, side, profile, suffix, rel->properties[i].short_name);
}

/* What an engine call on one side (rebuild, migrate) writes after its
 * head: nargs arguments (numkeys, the keys, ARGV), by write. */
typedef struct {
    const char *cmd; /* engine_write_call_head's: "rebuild", "migrate" */
    size_t nargs;
    void (*write)(Engine *e, const RelationDef *rel, Side side, const char *profile,
                  const void *ctx);
    const void *ctx;
    /* whether the reply is the call's (else it is reported) */
    bool (*good)(const redisReply *r);
} SideCall;

/* One engine call on a side (FCALL <function>_<cmd>, or the module's
 * relationd.<cmd>), sent to its node: its reply when good. The library (or
 * the module's configuration) is loaded when missing, and the call made
 * once more. */
static bool side_call(Engine *e, const RelationDef *rel, Side side, const char *profile,
                      const SideCall *c, redisReply **out, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *r;
        engine_queue_load(e, err, errlen);
        engine_write_call_head(e, c->cmd, c->nargs);
        c->write(e, rel, side, profile, c->ctx);
        engine_cmd_end(e, key_slot(rel, side, profile));
        if (!engine_flush(e, err, errlen) || !engine_read_groups(e, false, err, errlen) ||
            !engine_read_reply(e, &r, err, errlen))
            return false;
        if (c->good(r)) {
            *out = r;
            return true;
        }
        bool missing = r->type == REDIS_REPLY_ERROR && engine_missing_function(r->str);
        snprintf(err, errlen, "redis: %s%s", r->type == REDIS_REPLY_ERROR ? r->str
                                                                          : "unexpected reply to ",
                 r->type == REDIS_REPLY_ERROR ? "" : c->cmd);
        freeReplyObject(r);
        if (!missing)
            return false;
        e->loaded = false; /* load the library, and once more */
    }
    return false;
}

/* A rebuild step's arguments (apply.lua, rebuild). */
typedef struct {
    int index;
    const char *token, *cursor;
} RebuildArgs;

static void write_rebuild(Engine *e, const RelationDef *rel, Side side, const char *profile,
                          const void *ctx)
{
    const RebuildArgs *a = ctx;
    resp_int(&e->cmd, 2 + 2 * top_count(rel));
    key_write(&e->cmd, e->cfg, rel, side, profile, "side", NULL);
    key_write(&e->cmd, e->cfg, rel, side, profile, "rebuild", NULL);
    write_tops(e, rel, side, profile, "top:");
    write_tops(e, rel, side, profile, "rebuild:top:");
    resp_int(&e->cmd, a->index + 1);
    resp_cstr(&e->cmd, a->token);
    resp_cstr(&e->cmd, a->cursor);
    resp_int(&e->cmd, REBUILD_PAGE);
}

/* {next cursor, edges counted} */
static bool rebuild_reply(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
           r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len < 32 &&
           r->element[1]->type == REDIS_REPLY_INTEGER;
}

/* One step of a side's rebuild from cursor: its reply, {next cursor, edges
 * counted}, checked. */
static bool rebuild_step(Engine *e, const RelationDef *rel, int index, Side side,
                         const char *profile, const char *token, const char *cursor,
                         redisReply **out, char *err, size_t errlen)
{
    RebuildArgs a = {index, token, cursor};
    SideCall c = {"rebuild", (size_t)(1 + 2 + 2 * top_count(rel) + 4), write_rebuild, &a,
                  rebuild_reply};
    return side_call(e, rel, side, profile, &c, out, err, errlen);
}

bool engine_rebuild(Engine *e, const RelationDef *rel, Side side, const char *profile,
                    long long *edges, char *err, size_t errlen)
{
    int index = engine_relation_index(e->cfg, rel);
    char token[40], cursor[32] = "0";
    uint64_t id;
    *edges = 0;
    if (index < 0) {
        snprintf(err, errlen, "relation %s: not in the configuration", rel->short_name);
        return false;
    }
    if (!engine_connected(e, err, errlen) || !engine_sync(e, err, errlen))
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

static void write_migrate(Engine *e, const RelationDef *rel, Side side, const char *profile,
                          const void *ctx)
{
    const int *index = ctx;
    resp_int(&e->cmd, 4 + top_count(rel));
    key_write(&e->cmd, e->cfg, rel, side, profile, "side", NULL);
    key_write(&e->cmd, e->cfg, rel, side, profile, "ids", NULL);
    key_write(&e->cmd, e->cfg, rel, side, profile, "out", NULL);
    key_write(&e->cmd, e->cfg, rel, side, profile, "seen", NULL);
    write_tops(e, rel, side, profile, "top:");
    resp_int(&e->cmd, *index + 1);
}

/* 1 (converted) or 0 (already layout 2, or nothing there) */
static bool migrate_reply(const redisReply *r)
{
    return r->type == REDIS_REPLY_INTEGER && (r->integer == 0 || r->integer == 1);
}

bool engine_migrate(Engine *e, const RelationDef *rel, Side side, const char *profile,
                    bool *converted, char *err, size_t errlen)
{
    int index = engine_relation_index(e->cfg, rel);
    redisReply *r;
    *converted = false;
    if (index < 0) {
        snprintf(err, errlen, "relation %s: not in the configuration", rel->short_name);
        return false;
    }
    if (!engine_connected(e, err, errlen) || !engine_sync(e, err, errlen))
        return false;
    SideCall c = {"migrate", (size_t)(1 + 4 + top_count(rel) + 1), write_migrate, &index,
                  migrate_reply};
    if (!side_call(e, rel, side, profile, &c, &r, err, errlen))
        return false;
    *converted = r->integer == 1;
    freeReplyObject(r);
    return true;
}

static bool add64(int64_t *to, int64_t v)
{
    return !__builtin_add_overflow(*to, v, to);
}

/* Layout 2's tops against the edges (README "Redis key layout"): a side
 * with count <= L keeps no sorted set; a larger one keeps the first z
 * entries of the order, min(L, p:count) <= z <= 2L, at their values. best:
 * the first 2L of the edges' order. */
static bool tops_check(Engine *e, const RelationDef *rel, Side side, const char *profile,
                       const TopBuild *best, SideCheck *out, char *err, size_t errlen)
{
    int slot = key_slot(rel, side, profile);
    for (int p = 0; p < rel->nproperties; p++) {
        const PropertyDef *pd = &rel->properties[p];
        redisReply *r;
        if (pd->top_order == TOP_NONE)
            continue;
        resp_count(&e->cmd, '*', 5);
        resp_cstr(&e->cmd, pd->top_order == TOP_DESC ? "ZREVRANGE" : "ZRANGE");
        key_write(&e->cmd, e->cfg, rel, side, profile, "top:", pd->short_name);
        resp_cstr(&e->cmd, "0");
        resp_int(&e->cmd, 2 * pd->top_limit); /* one past 2L: too many shows */
        resp_cstr(&e->cmd, "WITHSCORES");
        if (!engine_command(e, slot, &r, err, errlen))
            return false;
        if (r->type != REDIS_REPLY_ARRAY) {
            snprintf(err, errlen, "redis: unexpected reply for a top%s%s",
                     r->type == REDIS_REPLY_ERROR ? ": " : "",
                     r->type == REDIS_REPLY_ERROR ? r->str : "");
            freeReplyObject(r);
            return false;
        }
        int64_t z = (int64_t)r->elements / 2, lim = pd->top_limit, pc = best[p].n;
        bool ok;
        if (out->edges.count <= lim || pc == 0)
            ok = z == 0;
        else
            ok = z >= (pc < lim ? pc : lim) && z <= 2 * lim && z <= best[p].n;
        for (int64_t k = 0; ok && k < z; k++) {
            const redisReply *m = r->element[2 * k], *sc = r->element[2 * k + 1];
            const TopEntry *want = &best[p].e[k];
            int64_t got;
            ok = m->type == REDIS_REPLY_STRING && sc->type == REDIS_REPLY_STRING &&
                 m->len == want->len && memcmp(m->str, want->id, m->len) == 0 &&
                 parse_int64(sc->str, sc->len, &got) && got == want->value;
        }
        out->top_ok[p] = ok;
        freeReplyObject(r);
    }
    return true;
}

bool engine_verify(Engine *e, const RelationDef *rel, Side side, const char *profile,
                   SideCheck *out, char *err, size_t errlen)
{
    redisReply *r = NULL;
    StatsKeep keep;
    SideMarks marks;
    EdgeSlots slots;
    TopBuild best[CONFIG_MAX_PROPERTIES];
    int slot = key_slot(rel, side, profile);
    int64_t topset[CONFIG_MAX_PROPERTIES] = {0};
    memset(out, 0, sizeof *out);
    if (!side_read(e, rel, side, profile, false, &out->stored, &keep, &marks, err, errlen))
        return false;
    stats_keep_free(&keep);
    if (!engine_edge_slots(e, rel, &slots, err, errlen))
        return false;
    memset(out->stored.ntop, 0, sizeof out->stored.ntop);
    /* A side with '#last' is in layout 1 (full tops, zero statistics
     * allowed); any other in layout 2 (README "Redis key layout"). */
    out->layout1 = marks.layout1;
    for (int i = 0; !out->layout1 && i < 1 + 2 * rel->nproperties; i++)
        out->zero[i] = marks.zero[i];
    for (int i = 0; i < rel->nproperties; i++) {
        out->top_ok[i] = true;
        top_build_init(&best[i], rel->properties[i].top_order, 2 * rel->properties[i].top_limit);
    }
    char cursor[32] = "0";
    int64_t *want = NULL;
    int *prop = NULL;
    size_t cap = 0;
    bool ok = true, no_mem = false;
    do {
        if (!(ok = walk_edge_page(e, rel, side, profile, NULL, 0, slot, cursor, 500, &r, cursor,
                                  err, errlen)))
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
            if (!walk_page_edge(rel, &slots, f, i, &pe)) {
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
                if (pd->top_order == TOP_NONE)
                    continue;
                topset[p]++;
                if (!out->layout1) {
                    if (ok && !top_offer(&best[p], pe.cp, pe.cplen, w.w[p])) {
                        no_mem = true;
                        ok = false;
                    }
                    continue;
                }
                resp_count(&e->cmd, '*', 3);
                resp_cstr(&e->cmd, "ZSCORE");
                key_write(&e->cmd, e->cfg, rel, side, profile, "top:", pd->short_name);
                resp_arg(&e->cmd, pe.cp, pe.cplen);
                engine_cmd_end(e, slot);
                want[nz] = w.w[p];
                prop[nz++] = p;
            }
            if (!ok)
                snprintf(err, errlen, no_mem ? "out of memory" : "a sum out of the 64-bit range");
        }
        freeReplyObject(r);
        r = NULL;
        if (!ok)
            break;
        if (nz && !(ok = engine_flush(e, err, errlen)))
            break;
        for (size_t z = 0; ok && z < nz; z++) {
            redisReply *sc;
            if (!(ok = engine_read_reply(e, &sc, err, errlen)))
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
    if (ok && !out->layout1)
        ok = tops_check(e, rel, side, profile, best, out, err, errlen);
    for (int p = 0; p < rel->nproperties; p++)
        top_build_free(&best[p]);
    /* layout 1: every top holds the edges with the property set, and
     * nothing else */
    for (int p = 0; ok && out->layout1 && p < rel->nproperties; p++) {
        if (rel->properties[p].top_order == TOP_NONE)
            continue;
        resp_count(&e->cmd, '*', 2);
        resp_cstr(&e->cmd, "ZCARD");
        key_write(&e->cmd, e->cfg, rel, side, profile, "top:", rel->properties[p].short_name);
        if (!(ok = engine_command(e, slot, &r, err, errlen)))
            break;
        if (r->type != REDIS_REPLY_INTEGER || r->integer != topset[p])
            out->top_ok[p] = false;
        freeReplyObject(r);
        r = NULL;
    }
    return ok;
}

/* Whether keys (a SCAN page of PREFIX*) holds a key other than PREFIX
 * layout and PREFIX schema: every connection writes the schema (schema.c),
 * a mistyped prefix's too, and neither holds data. */
static bool data_key_among(const char *prefix, const redisReply *keys)
{
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len < plen)
            return true;
        const char *rest = k->str + plen;
        size_t n = k->len - plen;
        if (!(n == 6 && (memcmp(rest, "schema", 6) == 0 || memcmp(rest, "layout", 6) == 0)))
            return true;
    }
    return false;
}

bool engine_prefix_unused(Engine *e, bool *unused, char *err, size_t errlen)
{
    JsonBuf pattern = {0};
    bool ok = true, found = false, finished = true;
    *unused = false;
    if (!engine_connected(e, err, errlen) || !engine_sync(e, err, errlen))
        return false;
    key_glob_literal(&pattern, e->cfg->key_prefix);
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
            if (!(ok = walk_scan_keys(e, slot, &pattern, NULL, &r, cursor, err, errlen)))
                break;
            found = data_key_among(e->cfg->key_prefix, r->element[1]);
            freeReplyObject(r);
            if (found || strcmp(cursor, "0") == 0)
                break;
        }
    }
    jsonbuf_free(&pattern);
    *unused = ok && !found && finished;
    return ok;
}

