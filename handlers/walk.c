/* walk.c — keyspace walks in pages (walk.h): SCAN of a side's keys on
 * every primary, HSCAN of a side's edges, the edges of a page decoded by
 * their layout (edge.h); the page helpers the other parts share
 * (engine_int.h). */
#include "handlers/walk.h"
#include "handlers/backlog.h"
#include "handlers/engine_int.h"
#include "handlers/keys.h"
#include "handlers/read.h"
#include "handlers/resp.h"
#include "handlers/segment.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool walk_scan_shape(const redisReply *x)
{
    return x->type == REDIS_REPLY_ARRAY && x->elements == 2 &&
           x->element[0]->type == REDIS_REPLY_STRING && x->element[0]->len < 32 &&
           x->element[1]->type == REDIS_REPLY_ARRAY;
}

/* A SCAN or HSCAN written into cmd, sent to slot's node: its reply, checked
 * to be [cursor, [...]] (freed and false otherwise), and its next cursor. */
static bool scan_page(Engine *e, int slot, const char *what, redisReply **r, char next[32],
                      char *err, size_t errlen)
{
    if (!engine_command(e, slot, r, err, errlen))
        return false;
    const redisReply *x = *r;
    if (!walk_scan_shape(x)) {
        snprintf(err, errlen, "redis: unexpected reply to %s%s%s", what,
                 x->type == REDIS_REPLY_ERROR ? ": " : "", x->type == REDIS_REPLY_ERROR ? x->str : "");
        freeReplyObject(*r);
        *r = NULL;
        return false;
    }
    snprintf(next, 32, "%s", x->element[0]->str);
    return true;
}


/* One HSCAN page of a side's edges (its fields @*) from cursor: the reply
 * (checked by scan_page) and the next cursor. The side is key (klen bytes)
 * or, key NULL, the one of rel, side and profile. */
bool walk_edge_page(Engine *e, const RelationDef *rel, Side side, const char *profile,
                    const char *key, size_t klen, int slot, const char *cursor, int count,
                    redisReply **r, char next[32], char *err, size_t errlen)
{
    walk_hscan_cmd(e, rel, side, profile, key, klen, cursor, count);
    return scan_page(e, slot, "HSCAN", r, next, err, errlen);
}

void walk_hscan_cmd(Engine *e, const RelationDef *rel, Side side, const char *profile,
                    const char *key, size_t klen, const char *cursor, int count)
{
    resp_count(&e->cmd, '*', 7);
    resp_cstr(&e->cmd, "HSCAN");
    if (key)
        resp_arg(&e->cmd, key, klen);
    else
        key_write(&e->cmd, e->cfg, rel, side, profile, "side", NULL);
    resp_cstr(&e->cmd, cursor);
    resp_cstr(&e->cmd, "MATCH");
    resp_cstr(&e->cmd, "@*");
    resp_cstr(&e->cmd, "COUNT");
    resp_int(&e->cmd, count);
}

/* Field pair i of an edge page (f: the reply's fields) as an edge, its
 * value decoded by its layout (edge.h); false when it is not an edge of
 * ours. */
bool walk_page_edge(const RelationDef *rel, const EdgeSlots *slots, const redisReply *f, size_t i,
                    PageEdge *out)
{
    const redisReply *k = f->element[i], *v = f->element[i + 1];
    if (k->type != REDIS_REPLY_STRING || k->len < 1 || k->str[0] != '@' ||
        v->type != REDIS_REPLY_STRING ||
        !edge_decode(rel, slots, v->str, v->len, &out->w, out->version, sizeof out->version,
                     &out->has_version))
        return false;
    out->cp = k->str + 1;
    out->cplen = k->len - 1;
    return true;
}

/* One SCAN page of slot's node: keys matching pattern (of type, when not
 * NULL), from cursor (next: where to go on). */
bool walk_scan_keys(Engine *e, int slot, const JsonBuf *pattern, const char *type,
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
static bool side_matches(Engine *e, const RelationDef *rel, const EdgeSlots *slots,
                         const char *key, size_t klen, int slot, const Segment *seg, bool *match,
                         unsigned long *edges, char *err, size_t errlen)
{
    char cursor[32] = "0";
    *match = false;
    do {
        redisReply *r;
        if (!walk_edge_page(e, rel, SIDE_DIRECT, NULL, key, klen, slot, cursor, 500, &r, cursor,
                            err, errlen))
            return false;
        const redisReply *f = r->element[1];
        for (size_t i = 0; i + 1 < f->elements && !*match; i += 2) {
            PageEdge pe;
            if (!walk_page_edge(rel, slots, f, i, &pe))
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

bool engine_walk_keys(Engine *e, const JsonBuf *pattern, const char *type, WalkPageFn each,
                      void *ctx, char *err, size_t errlen)
{
    bool ok = true, go_on = true;
    if (!engine_connected(e, err, errlen) || !engine_sync(e, err, errlen))
        return false;
    int nodes = router_nodes(e->router);
    e->walk_share = 0;
    for (int node = 0; ok && go_on && node < nodes; node++) {
        int slot = router_node_slot(e->router, node);
        char cursor[32] = "0";
        if (slot == ROUTER_NONE)
            continue; /* a primary with no slot holds no key */
        do {
            redisReply *r;
            if (!(ok = walk_scan_keys(e, slot, pattern, type, &r, cursor, err, errlen)))
                break;
            e->walk_share = (node + cursor_share(cursor)) / nodes;
            go_on = each(e, slot, r->element[1], ctx, &ok, err, errlen);
            freeReplyObject(r);
        } while (ok && go_on && strcmp(cursor, "0") != 0);
    }
    return ok;
}

typedef struct {
    const RelationDef *rel;
    Side side;
    const char *suffix;
    size_t head; /* the length of PREFIX{REL:S: */
    SideFn each;
    void *ctx;
} SideWalk;

/* A page of side keys: each one's profile passed on. */
static bool sides_page(Engine *e, int slot, const redisReply *keys, void *ctx, bool *ok,
                       char *err, size_t errlen)
{
    (void)slot;
    SideWalk *w = ctx;
    bool go_on = true;
    for (size_t i = 0; *ok && go_on && i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        char profile[EVENT_PROFILE_MAX + 1];
        if (k->type != REDIS_REPLY_STRING ||
            !key_side_profile(k->str, k->len, w->head, w->suffix, profile, sizeof profile))
            continue;
        go_on = w->each(e, w->rel, w->side, k->str, k->len, profile, w->ctx, ok, err, errlen);
    }
    return go_on;
}

/* The keys PREFIX{REL:S:*}:suffix of type (a SCAN ... TYPE). */
static bool walk_sides(Engine *e, const RelationDef *rel, Side side, const char *suffix,
                       const char *type, SideFn each, void *ctx, char *err, size_t errlen)
{
    JsonBuf pattern = {0};
    key_glob_literal(&pattern, e->cfg->key_prefix);
    jsonbuf_char(&pattern, '{');
    jsonbuf_cstr(&pattern, rel->short_name);
    jsonbuf_cstr(&pattern, side == SIDE_DIRECT ? ":d:*}:" : ":r:*}:");
    jsonbuf_cstr(&pattern, suffix);
    SideWalk w = {rel, side, suffix,
                  strlen(e->cfg->key_prefix) + 1 + strlen(rel->short_name) + 3, each, ctx};
    if (pattern.oom) {
        jsonbuf_free(&pattern);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool ok = engine_walk_keys(e, &pattern, type, sides_page, &w, err, errlen);
    jsonbuf_free(&pattern);
    return ok;
}

typedef struct {
    const struct Segment *seg;
    EdgeSlots slots;
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
    *ok = side_matches(e, rel, &w->slots, key, klen,
                       router_cluster(e->router) ? key_slot(rel, side, profile) : ROUTER_ANY,
                       w->seg, &match, w->edges, err, errlen);
    return *ok && (!match || w->found(profile, strlen(profile), w->ctx));
}

bool engine_segment(Engine *e, const RelationDef *rel, Side side, const struct Segment *seg,
                    bool (*found)(const char *profile, size_t len, void *ctx), void *ctx,
                    unsigned long *edges, char *err, size_t errlen)
{
    SegmentWalk w = {.seg = seg, .found = found, .ctx = ctx, .edges = edges};
    *edges = 0;
    if (!engine_edge_slots(e, rel, &w.slots, err, errlen))
        return false;
    return walk_sides(e, rel, side, "side", "hash", segment_side, &w, err, errlen);
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
    return engine_sides_keyed(e, rel, side, "side", "hash", each, ctx, err, errlen);
}

bool engine_sides_keyed(Engine *e, const RelationDef *rel, Side side, const char *suffix,
                        const char *type, bool (*each)(const char *profile, void *ctx),
                        void *ctx, char *err, size_t errlen)
{
    ProfileWalk w = {each, ctx};
    return walk_sides(e, rel, side, suffix, type, profile_side, &w, err, errlen);
}


typedef struct {
    size_t head; /* the length of PREFIX{hook: */
    bool (*each)(const char *hook, long long len, void *ctx);
    void *ctx;
} StreamWalk;

/* A page of PREFIX{hook:NAME} streams: each NAME and its length passed on. */
static bool streams_page(Engine *e, int slot, const redisReply *keys, void *ctx, bool *ok,
                         char *err, size_t errlen)
{
    (void)slot;
    StreamWalk *w = ctx;
    bool go_on = true;
    for (size_t i = 0; go_on && i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        char hook[HOOK_NAME_MAX + 1];
        size_t n = k->type == REDIS_REPLY_STRING && k->len > w->head ? k->len - w->head - 1 : 0;
        if (n < 1 || n > HOOK_NAME_MAX || k->str[k->len - 1] != '}' ||
            memchr(k->str + w->head, '}', n) || memchr(k->str + w->head, '{', n))
            continue; /* not one a hook's name makes */
        memcpy(hook, k->str + w->head, n);
        hook[n] = '\0';
        long long len;
        if (!(*ok = engine_hook_backlog(e, e->cfg, hook, &len, err, errlen)))
            return false;
        go_on = w->each(hook, len, w->ctx);
    }
    return go_on;
}

bool engine_hook_streams(Engine *e, bool (*each)(const char *hook, long long len, void *ctx),
                         void *ctx, char *err, size_t errlen)
{
    JsonBuf pattern = {0};
    key_glob_literal(&pattern, e->cfg->key_prefix);
    jsonbuf_cstr(&pattern, "{hook:*}");
    StreamWalk w = {strlen(e->cfg->key_prefix) + strlen("{hook:"), each, ctx};
    if (pattern.oom) {
        jsonbuf_free(&pattern);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool ok = engine_walk_keys(e, &pattern, "stream", streams_page, &w, err, errlen);
    jsonbuf_free(&pattern);
    return ok;
}
