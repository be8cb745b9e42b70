/* schema.c — the relations' property slots (schema.h). */
#include "handlers/schema.h"
#include "handlers/cluster.h"
#include "handlers/engine_int.h"
#include "handlers/resp.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS[1] the schema hash, ARGV[1] the relation, then its property names:
 * the names missing from the relation's list appended, the list returned. */
static const char sync_script[] =
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local list, have = {}, {}\n"
    "if cur then for n in string.gmatch(cur, '[^,]+') do list[#list + 1] = n; have[n] = true end end\n"
    "local n0 = #list\n"
    "for i = 2, #ARGV do\n"
    "  if not have[ARGV[i]] then list[#list + 1] = ARGV[i]; have[ARGV[i]] = true end\n"
    "end\n"
    "local s = table.concat(list, ',')\n"
    "if #list ~= n0 then redis.call('HSET', KEYS[1], ARGV[1], s) end\n"
    "return s\n";

void schema_slots(const RelationDef *rel, const char *list, size_t len, int *slot, int *nslots)
{
    int n = 0;
    for (int i = 0; i < rel->nproperties; i++)
        slot[i] = 0;
    const char *p = list, *end = list + len;
    while (list && p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (!c)
            c = end;
        n++;
        for (int i = 0; i < rel->nproperties; i++) {
            const char *name = rel->properties[i].short_name;
            if (!slot[i] && strlen(name) == (size_t)(c - p) && memcmp(name, p, (size_t)(c - p)) == 0)
                slot[i] = n;
        }
        p = c + 1;
    }
    for (int i = 0; i < rel->nproperties; i++)
        if (!slot[i])
            slot[i] = ++n;
    *nslots = n;
}

void engine_set_reader(Engine *e)
{
    e->reader = true;
}

const int *engine_slots(const Engine *e, int rel, int *nslots)
{
    *nslots = e->nslots[rel];
    return e->slot + e->slot_off[rel];
}

bool schema_take(Engine *e, bool *unknown)
{
    const Config *cfg = e->cfg;
    int total = 0;
    for (int r = 0; r < cfg->nrelations; r++)
        total += cfg->relations[r].nproperties;
    int *slot = calloc((size_t)total + 1, sizeof *slot);
    int *off = calloc((size_t)cfg->nrelations + 1, sizeof *off);
    int *nslots = calloc((size_t)cfg->nrelations + 1, sizeof *nslots);
    if (!slot || !off || !nslots) {
        free(slot);
        free(off);
        free(nslots);
        return false;
    }
    *unknown = false;
    for (int r = 0, at = 0; r < cfg->nrelations; r++) {
        const RelationDef *rel = &cfg->relations[r];
        const char *list = NULL;
        for (int k = 0; k < e->nlists; k++)
            if (strcmp(e->list_rel[k], rel->short_name) == 0)
                list = e->lists[k];
        off[r] = at;
        schema_slots(rel, list, list ? strlen(list) : 0, slot + at, &nslots[r]);
        int known = 0;
        for (const char *p = list; p && *p; p++)
            known += *p == ',';
        known += list && *list;
        for (int i = 0; i < rel->nproperties; i++)
            if (slot[at + i] > known)
                *unknown = true;
        at += rel->nproperties;
    }
    free(e->slot);
    free(e->slot_off);
    free(e->nslots);
    e->slot = slot;
    e->slot_off = off;
    e->nslots = nslots;
    return true;
}

static void lists_free(Engine *e)
{
    for (int k = 0; k < e->nlists; k++) {
        free(e->lists[k]);
        free(e->list_rel[k]);
    }
    free(e->lists);
    free(e->list_rel);
    e->lists = NULL;
    e->list_rel = NULL;
    e->nlists = 0;
}

void schema_free(Engine *e)
{
    lists_free(e);
    free(e->slot);
    free(e->slot_off);
    free(e->nslots);
    e->slot = e->slot_off = e->nslots = NULL;
}

bool schema_sync(Engine *e, char *err, size_t errlen)
{
    const Config *cfg = e->cfg;
    const char *prefix = cfg->key_prefix;
    size_t plen = strlen(prefix);
    char key[256];
    if (plen + sizeof "schema" > sizeof key) {
        snprintf(err, errlen, "redis.key_prefix: too long");
        return false;
    }
    memcpy(key, prefix, plen);
    memcpy(key + plen, "schema", sizeof "schema");
    size_t klen = plen + sizeof "schema" - 1;
    int slot = router_cluster(e->router) ? (int)cluster_slot(key, klen) : ROUTER_ANY;
    if (cfg->nrelations == 0)
        return true;
    for (int r = 0; r < cfg->nrelations; r++) {
        const RelationDef *rel = &cfg->relations[r];
        if (e->reader) {
            resp_count(&e->cmd, '*', 3);
            resp_cstr(&e->cmd, "HGET");
            resp_arg(&e->cmd, key, klen);
            resp_cstr(&e->cmd, rel->short_name);
        } else {
            resp_count(&e->cmd, '*', 5 + (size_t)rel->nproperties);
            resp_cstr(&e->cmd, "EVAL");
            resp_cstr(&e->cmd, sync_script);
            resp_cstr(&e->cmd, "1");
            resp_arg(&e->cmd, key, klen);
            resp_cstr(&e->cmd, rel->short_name);
            for (int i = 0; i < rel->nproperties; i++)
                resp_cstr(&e->cmd, rel->properties[i].short_name);
        }
        engine_cmd_end(e, slot);
    }
    if (!engine_flush(e, err, errlen))
        return false;
    char **lists = calloc((size_t)cfg->nrelations, sizeof *lists);
    char **names = calloc((size_t)cfg->nrelations, sizeof *names);
    bool ok = lists && names;
    if (!ok)
        snprintf(err, errlen, "out of memory");
    /* every reply is read, whatever the first ones were */
    for (int r = 0; r < cfg->nrelations; r++) {
        redisReply *x;
        if (!engine_read_reply(e, &x, err, errlen)) {
            ok = false;
            break;
        }
        if (ok && x->type == REDIS_REPLY_NIL && e->reader) {
            /* no list yet: every property after its (empty) end */
            freeReplyObject(x);
            lists[r] = strdup("");
            names[r] = strdup(cfg->relations[r].short_name);
            if (!lists[r] || !names[r]) {
                snprintf(err, errlen, "out of memory");
                ok = false;
            }
            continue;
        }
        if (ok && x->type != REDIS_REPLY_STRING) {
            snprintf(err, errlen, "redis: %s (EVAL of the schema of %s): %s", key,
                     cfg->relations[r].short_name,
                     x->type == REDIS_REPLY_ERROR ? x->str : "unexpected reply");
            ok = false;
        }
        if (ok) {
            lists[r] = strdup(x->str);
            names[r] = strdup(cfg->relations[r].short_name);
            if (!lists[r] || !names[r]) {
                snprintf(err, errlen, "out of memory");
                ok = false;
            }
        }
        freeReplyObject(x);
    }
    if (ok) {
        lists_free(e);
        e->lists = lists;
        e->list_rel = names;
        e->nlists = cfg->nrelations;
        bool unknown;
        if (!schema_take(e, &unknown) || !engine_make_code(e)) {
            snprintf(err, errlen, "out of memory");
            engine_drop(e);
            return false;
        }
        return true;
    }
    for (int r = 0; lists && r < cfg->nrelations; r++) {
        free(lists[r]);
        free(names[r]);
    }
    free(lists);
    free(names);
    if (e->connected)
        engine_drop(e);
    return false;
}
