/* read.c — reads of one side returned as structs (read.h): its
 * statistics in one MULTI/EXEC snapshot (tops a layout-2 side keeps none
 * of computed from its edges), its edges a page at a time, the slots
 * its layout-2 edges are decoded by. */
#include "handlers/read.h"
#include "handlers/schema.h"
#include "lib/log.h"
#include "handlers/engine_int.h"
#include "lib/grow.h"
#include "handlers/keys.h"
#include "handlers/resp.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool engine_edge_slots(Engine *e, const RelationDef *rel, EdgeSlots *slots, char *err,
                       size_t errlen)
{
    /* each connection reads (and completes) every relation's list first
     * (schema.c) */
    if (!engine_connected(e, err, errlen) || !engine_sync(e, err, errlen))
        return false;
    int index = engine_relation_index(e->cfg, rel), n;
    memset(slots, 0, sizeof *slots);
    if (index < 0)
        return true; /* not in the configuration: no slots */
    /* by name: rel may come from another configuration than the engine's */
    const RelationDef *own = &e->cfg->relations[index];
    const int *slot = engine_slots(e, index, &n);
    slots->known = true;
    for (int i = 0; i < rel->nproperties; i++)
        for (int j = 0; j < own->nproperties; j++)
            if (strcmp(rel->properties[i].short_name, own->properties[j].short_name) == 0)
                slots->slot[i] = slot[j];
    return true;
}

void stats_keep_free(StatsKeep *keep)
{
    if (keep->reply)
        freeReplyObject(keep->reply);
    free(keep->ids);
    *keep = (StatsKeep){0};
}

static int top_count(const RelationDef *rel)
{
    int n = 0;
    for (int i = 0; i < rel->nproperties; i++)
        n += rel->properties[i].top_order != TOP_NONE;
    return n;
}

/* One snapshot of a side: MULTI, HMGET of its statistics and '#last',
 * each top's first limit members, with edges its first HSCAN page (COUNT
 * 1000: a side with few edges is one page), EXEC; the EXEC reply, its
 * shape checked. */
static bool snapshot(Engine *e, const RelationDef *rel, Side side, const char *profile,
                     bool edges, redisReply **out, char *err, size_t errlen)
{
    JsonBuf *b = &e->cmd;
    redisReply *r = NULL;
    int ntop = top_count(rel), slot = key_slot(rel, side, profile);
    size_t queued = (size_t)(2 + ntop + edges);
    resp_count(b, '*', 1);
    resp_cstr(b, "MULTI");
    engine_cmd_end(e, slot);
    resp_count(b, '*', (size_t)(4 + 2 * rel->nproperties));
    resp_cstr(b, "HMGET");
    key_write(b, e->cfg, rel, side, profile, "side", NULL);
    resp_cstr(b, "count");
    for (int i = 0; i < rel->nproperties; i++) {
        char field[CONFIG_SHORT_MAX + 8];
        snprintf(field, sizeof field, "%s:count", rel->properties[i].short_name);
        resp_cstr(b, field);
        snprintf(field, sizeof field, "%s:total", rel->properties[i].short_name);
        resp_cstr(b, field);
    }
    resp_cstr(b, "#last");
    engine_cmd_end(e, slot);
    for (int i = 0; i < rel->nproperties; i++) {
        const PropertyDef *p = &rel->properties[i];
        if (p->top_order == TOP_NONE)
            continue;
        resp_count(b, '*', 5);
        resp_cstr(b, p->top_order == TOP_DESC ? "ZREVRANGE" : "ZRANGE");
        key_write(b, e->cfg, rel, side, profile, "top:", p->short_name);
        resp_cstr(b, "0");
        resp_int(b, p->top_limit - 1);
        resp_cstr(b, "WITHSCORES");
        engine_cmd_end(e, slot);
    }
    if (edges) {
        walk_hscan_cmd(e, rel, side, profile, NULL, 0, "0", 1000);
        engine_cmd_end(e, slot);
    }
    resp_count(b, '*', 1);
    resp_cstr(b, "EXEC");
    engine_cmd_end(e, slot);
    if (!engine_flush(e, err, errlen))
        return false;
    /* MULTI and the queued commands answer +OK / +QUEUED; EXEC the results. */
    for (size_t k = 0; k < queued; k++) {
        if (!engine_read_reply(e, &r, err, errlen))
            return false;
        bool bad = r->type == REDIS_REPLY_ERROR;
        if (bad)
            snprintf(err, errlen, "redis: %s", r->str);
        freeReplyObject(r);
        r = NULL;
        if (bad) {
            engine_drop(e);
            return false;
        }
    }
    if (!engine_read_reply(e, &r, err, errlen))
        return false;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != queued - 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements != (size_t)(2 + 2 * rel->nproperties) ||
        (edges && !walk_scan_shape(r->element[queued - 2]))) {
        snprintf(err, errlen, "redis: unexpected reply to EXEC%s%s",
                 r->type == REDIS_REPLY_ERROR ? ": " : "",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
        freeReplyObject(r);
        return false;
    }
    *out = r;
    return true;
}

/* A snapshot's statistics and tops into st (ids into r), its marks; *need
 * whether a top is to be computed from the edges. */
static bool snapshot_parse(const RelationDef *rel, const redisReply *r, SideStats *st,
                           SideMarks *marks, bool *need, char *err, size_t errlen)
{
    const redisReply *h = r->element[0];
    memset(st, 0, sizeof *st);
    memset(marks, 0, sizeof *marks);
    *need = false;
    for (size_t f = 0; f + 1 < h->elements; f++) {
        int64_t v = 0;
        if (h->element[f]->type == REDIS_REPLY_STRING &&
            !parse_int64(h->element[f]->str, h->element[f]->len, &v)) {
            snprintf(err, errlen, "redis: statistic %zu of %s is not an integer", f,
                     rel->short_name);
            return false;
        }
        marks->zero[f] = h->element[f]->type == REDIS_REPLY_STRING && v == 0;
        if (f == 0)
            st->count = v;
        else if ((f - 1) % 2 == 0)
            st->pcount[(f - 1) / 2] = v;
        else
            st->ptotal[(f - 1) / 2] = v;
    }
    marks->layout1 = h->element[h->elements - 1]->type == REDIS_REPLY_STRING;
    for (int i = 0, k = 1; i < rel->nproperties; i++) {
        if (rel->properties[i].top_order == TOP_NONE)
            continue;
        const redisReply *z = r->element[k++];
        if (z->type != REDIS_REPLY_ARRAY) {
            snprintf(err, errlen, "redis: unexpected reply for a top");
            return false;
        }
        for (size_t j = 0; j + 1 < z->elements && st->ntop[i] < CONFIG_MAX_TOP; j += 2) {
            TopEntry *t = &st->top[i][st->ntop[i]];
            if (z->element[j]->type != REDIS_REPLY_STRING ||
                z->element[j + 1]->type != REDIS_REPLY_STRING ||
                !parse_int64(z->element[j + 1]->str, z->element[j + 1]->len, &t->value)) {
                snprintf(err, errlen, "redis: a score of a top is not an integer");
                return false;
            }
            t->id = z->element[j]->str;
            t->len = z->element[j]->len;
            st->ntop[i]++;
        }
        /* layout 2 keeps no set while count <= limit: the top is the
         * edges'; a larger side without one (a top turned on by a reload,
         * not rebuilt yet; verify reports it) shows none, as layout 1 did */
        marks->top_from_edges[i] = z->elements == 0 && st->pcount[i] > 0 &&
                                   st->count <= rel->properties[i].top_limit;
        *need |= marks->top_from_edges[i];
    }
    return true;
}

/* The edges of one page (f: HSCAN's fields) offered to the tops to compute
 * (build[i].limit 0: not computed). */
static bool tops_offer_page(const RelationDef *rel, const EdgeSlots *slots, const redisReply *f,
                            TopBuild *build, char *err, size_t errlen)
{
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        PageEdge pe;
        if (!walk_page_edge(rel, slots, f, i, &pe)) {
            log_at(LOG_WARN, "redis", "%s: a field that is not an edge of ours, skipped",
                   rel->short_name);
            continue;
        }
        for (int p = 0; p < rel->nproperties; p++)
            if (build[p].limit && pe.w.set[p] &&
                !top_offer(&build[p], pe.cp, pe.cplen, pe.w.w[p])) {
                snprintf(err, errlen, "out of memory");
                return false;
            }
    }
    return true;
}

/* The tops marked top_from_edges computed from the side's edges: the
 * snapshot's page, then the pages after it (outside the snapshot: a side
 * of at most limit edges has more only with many other fields); their ids
 * into keep->ids. */
static bool tops_from_edges(Engine *e, const RelationDef *rel, Side side, const char *profile,
                            const EdgeSlots *slots, const redisReply *page, const SideMarks *marks,
                            SideStats *st, StatsKeep *keep, char *err, size_t errlen)
{
    TopBuild build[CONFIG_MAX_PROPERTIES];
    char cursor[32];
    bool ok = true;
    for (int p = 0; p < rel->nproperties; p++) {
        memset(&build[p], 0, sizeof build[p]);
        if (marks->top_from_edges[p])
            top_build_init(&build[p], rel->properties[p].top_order, rel->properties[p].top_limit);
    }
    snprintf(cursor, sizeof cursor, "%s", page->element[0]->str);
    ok = tops_offer_page(rel, slots, page->element[1], build, err, errlen);
    while (ok && strcmp(cursor, "0") != 0) {
        redisReply *r;
        if (!(ok = walk_edge_page(e, rel, side, profile, NULL, 0, key_slot(rel, side, profile),
                                  cursor, 1000, &r, cursor, err, errlen)))
            break;
        ok = tops_offer_page(rel, slots, r->element[1], build, err, errlen);
        freeReplyObject(r);
    }
    size_t bytes = 1, at = 0;
    for (int p = 0; p < rel->nproperties; p++)
        for (int k = 0; k < build[p].n; k++)
            bytes += build[p].e[k].len;
    if (ok && !(keep->ids = malloc(bytes))) {
        snprintf(err, errlen, "out of memory");
        ok = false;
    }
    for (int p = 0; p < rel->nproperties; p++) {
        for (int k = 0; ok && build[p].limit && k < build[p].n; k++) {
            memcpy(keep->ids + at, build[p].e[k].id, build[p].e[k].len);
            st->top[p][k] = (TopEntry){keep->ids + at, build[p].e[k].len, build[p].e[k].value};
            at += build[p].e[k].len;
        }
        if (ok && build[p].limit)
            st->ntop[p] = build[p].n;
        top_build_free(&build[p]);
    }
    return ok;
}

bool side_read(Engine *e, const RelationDef *rel, Side side, const char *profile,
               bool compute_tops, SideStats *st, StatsKeep *keep, SideMarks *marks, char *err,
               size_t errlen)
{
    redisReply *r = NULL;
    EdgeSlots slots;
    bool need = false, edges = false;
    *keep = (StatsKeep){0};
    if (!engine_connected(e, err, errlen) || !engine_sync(e, err, errlen))
        return false;
    /* A top to compute from the edges: read again with the side's first
     * page of edges in the snapshot. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (edges && !engine_edge_slots(e, rel, &slots, err, errlen))
            return false;
        if (!snapshot(e, rel, side, profile, edges, &r, err, errlen))
            return false;
        if (!snapshot_parse(rel, r, st, marks, &need, err, errlen)) {
            freeReplyObject(r);
            return false;
        }
        if (!need || !compute_tops || edges)
            break;
        freeReplyObject(r);
        r = NULL;
        edges = true;
    }
    keep->reply = r; /* the tops' ids point into it */
    if (need && compute_tops &&
        !tops_from_edges(e, rel, side, profile, &slots, r->element[r->elements - 1], marks, st,
                         keep, err, errlen)) {
        stats_keep_free(keep);
        return false;
    }
    return true;
}

bool engine_side_stats(Engine *e, const RelationDef *rel, Side side, const char *profile,
                       SideStats *st, StatsKeep *keep, char *err, size_t errlen)
{
    SideMarks marks;
    return side_read(e, rel, side, profile, true, st, keep, &marks, err, errlen);
}

void edge_page_free(EdgePage *page)
{
    if (page->reply)
        freeReplyObject(page->reply);
    free(page->edges);
    *page = (EdgePage){0};
}

bool engine_edge_page(Engine *e, const RelationDef *rel, Side side, const char *profile,
                      const char *cursor, int count, EdgePage *page, char next[32], char *err,
                      size_t errlen)
{
    redisReply *r = NULL;
    if (page->reply)
        freeReplyObject(page->reply);
    page->reply = NULL;
    page->n = 0;
    EdgeSlots slots;
    if (!engine_edge_slots(e, rel, &slots, err, errlen) ||
        !walk_edge_page(e, rel, side, profile, NULL, 0, key_slot(rel, side, profile), cursor,
                        count, &r, next, err, errlen))
        return false;
    const redisReply *f = r->element[1];
    if (page->cap < f->elements / 2) {
        if (!GROW_EXACT(page->edges, f->elements / 2)) {
            snprintf(err, errlen, "out of memory");
            freeReplyObject(r);
            return false;
        }
        page->cap = f->elements / 2;
    }
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        if (!walk_page_edge(rel, &slots, f, i, &page->edges[page->n])) {
            log_at(LOG_WARN, "redis", "%s: a field that is not an edge of ours, skipped",
                   rel->short_name);
            continue;
        }
        page->n++;
    }
    page->reply = r; /* the counterparts point into it */
    return true;
}

void read_edge_json(JsonBuf *b, const RelationDef *rel, Side side, const PageEdge *pe)
{
    trigger_edge_json(b, rel, side, pe->cp, pe->cplen, &pe->w,
                      pe->has_version ? pe->version : NULL,
                      pe->has_version ? strlen(pe->version) : 0);
}
