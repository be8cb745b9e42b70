/* read.c — reads of one side returned as structs (read.h): its
 * statistics in one MULTI/EXEC snapshot, its edges a page at a time. */
#include "handlers/read.h"
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

bool engine_side_stats(Engine *e, const RelationDef *rel, Side side, const char *profile,
                       SideStats *st, redisReply **keep, char *err, size_t errlen)
{
    JsonBuf *b = &e->cmd;
    redisReply *r = NULL;
    bool ok = false;
    int ntop = 0;

    *keep = NULL;
    memset(st, 0, sizeof *st);
    if (!engine_connected(e, err, errlen) || !engine_sync(e, err, errlen))
        return false;
    /* One snapshot: MULTI, HMGET of the fields, each top, EXEC (one slot). */
    int slot = key_slot(rel, side, profile);
    resp_count(b, '*', 1);
    resp_cstr(b, "MULTI");
    engine_cmd_end(e, slot);
    resp_count(b, '*', (size_t)(3 + 2 * rel->nproperties));
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
        ntop++;
    }
    resp_count(b, '*', 1);
    resp_cstr(b, "EXEC");
    engine_cmd_end(e, slot);
    if (!engine_flush(e, err, errlen))
        return false;
    /* MULTI and the queued commands answer +OK / +QUEUED; EXEC the results. */
    for (int k = 0; k < 2 + ntop; k++) {
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
    if (!engine_connected(e, err, errlen) || !engine_sync(e, err, errlen) ||
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
        if (!walk_page_edge(rel, f, i, &page->edges[page->n])) {
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
