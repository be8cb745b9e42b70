/* top.c — a side's bounded tops after an event (top.h). */
#include "module/top.h"
#include "module/num.h"

#include <stdio.h>
#include <string.h>

/* ZRANGE's order: score, then member bytes. */
static int zcmp(const ZItem *a, const ZItem *b)
{
    if (a->score != b->score)
        return a->score < b->score ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* a ranks before b in the top's order. */
static bool before(const ZItem *a, const ZItem *b, int order)
{
    int c = zcmp(a, b);
    return order == 1 ? c > 0 : c < 0;
}

void top_edges_add(TopEdges *E, const char *cp, size_t cplen, const char *v, size_t vl)
{
    if (E->oom)
        return;
    if (E->n == E->cap) {
        size_t cap = E->cap ? 2 * E->cap : 32;
        ZItem *e = RedisModule_PoolAlloc(E->R->ctx, cap * sizeof *e);
        const char **val = RedisModule_PoolAlloc(E->R->ctx, cap * sizeof *val);
        size_t *vlen = RedisModule_PoolAlloc(E->R->ctx, cap * sizeof *vlen);
        if (!e || !val || !vlen) {
            E->oom = true;
            return;
        }
        if (E->n) {
            memcpy(e, E->e, E->n * sizeof *e);
            memcpy(val, E->val, E->n * sizeof *val);
            memcpy(vlen, E->vlen, E->n * sizeof *vlen);
        }
        E->e = e, E->val = val, E->vlen = vlen, E->cap = cap;
    }
    char *b = RedisModule_PoolAlloc(E->R->ctx, cplen + vl + 1);
    if (!b) {
        E->oom = true;
        return;
    }
    memcpy(b, cp, cplen);
    memcpy(b + cplen, v, vl);
    E->e[E->n] = (ZItem){b, cplen, 0};
    E->val[E->n] = b + cplen;
    E->vlen[E->n++] = vl;
}

static void edge_one(void *priv, const char *f, size_t fl, const char *v, size_t vl)
{
    if (fl >= 1 && f[0] == '@')
        top_edges_add(priv, f + 1, fl - 1, v, vl);
}

/* The side's edges before the event, in the key's scan order (read by the
 * caller, else from the hash, not written yet). */
static bool edges_before(Run *R, const TopChange *t, TopEdges *E)
{
    if (E->got)
        return true;
    E->R = R;
    if (t->edges && t->edges->read)
        *E = *t->edges;
    else if (!st_hscan(R, t->k_side, edge_one, E))
        return false;
    E->got = true;
    E->read = false;
    return true;
}

/* The side's edges as this event leaves them: the ones before the event
 * with the edge's change (E's arrays, shared with the caller's, changed). */
static bool edges_after(Run *R, const TopChange *t, TopEdges *E)
{
    if (E->read)
        return true;
    if (!edges_before(R, t, E))
        return false;
    size_t j = 0;
    while (j < E->n && !(E->e[j].len == t->cp.len && memcmp(E->e[j].s, t->cp.s, t->cp.len) == 0))
        j++;
    if (j < E->n && t->neww) {
        E->val[j] = t->packed.s;
        E->vlen[j] = t->packed.len;
    } else if (j < E->n) {
        E->e[j] = E->e[E->n - 1];
        E->val[j] = E->val[E->n - 1];
        E->vlen[j] = E->vlen[--E->n];
    } else if (t->neww) {
        E->cap = E->n; /* the caller's arrays are copied, not written past */
        top_edges_add(E, t->cp.s, t->cp.len, t->packed.s, t->packed.len);
    }
    E->read = true;
    return true;
}

/* The first max edges of the top of property i, from the side's edges,
 * into out (room for max); their number. -1: a Redis error. */
static int from_edges(Run *R, const TopChange *t, TopEdges *E, int i, int max, ZItem *out)
{
    const ConfProp *p = &t->C->p[i];
    if (!edges_after(R, t, E))
        return -1;
    if (E->oom) {
        snprintf(R->err, sizeof R->err, "ERR relationd: out of memory for a top");
        R->failed = true;
        return -1;
    }
    /* out kept in the order: an edge goes in when it ranks before its last
     * (no allocation; max is at most 2L) */
    int n = 0;
    for (size_t j = 0; j < E->n; j++) {
        double v;
        if (!edge_slot(E->val[j], E->vlen[j], p->slot, &v))
            continue;
        ZItem e = {E->e[j].s, E->e[j].len, v};
        if (n == max && (max == 0 || !before(&e, &out[n - 1], p->order)))
            continue;
        int at = n < max ? n : max - 1;
        while (at > 0 && before(&e, &out[at - 1], p->order)) {
            out[at] = out[at - 1];
            at--;
        }
        out[at] = e;
        if (n < max)
            n++;
    }
    return n;
}

static void pack_top(Mpack *m, const ZItem *items, int n, int limit)
{
    if (n > limit)
        n = limit;
    mpack_array(m, (size_t)(2 * n));
    for (int j = 0; j < n; j++) {
        char num[64];
        int nl = st_score_text(items[j].score, num, sizeof num);
        mpack_str(m, items[j].s, items[j].len);
        mpack_str(m, num, (size_t)nl);
    }
}

/* The top key's ranks (ZRANGE order) of the members past 2L: the worst. */
static bool trim(Run *R, RedisModuleString *k, int order, int z, int keep)
{
    if (z <= keep)
        return true;
    return order == 1 ? st_zremrange(R, k, 0, z - keep - 1) : st_zremrange(R, k, keep, z - 1);
}

/* One top of a side that has more than L edges before and after. */
static bool update(Run *R, const TopChange *t, TopEdges *E, int ti, ZItem *items, int *z)
{
    const ConfRel *C = t->C;
    int i = C->tops[ti], order = C->p[i].order, L = (int)C->p[i].last_n + 1;
    RedisModuleString *k = t->k_tops[ti];
    bool os = t->old && t->old->set[i], ns = t->neww && t->neww->set[i];
    double pb = 0;
    const Opt *pc = &t->before[1 + 2 * i];
    if (pc->set && !num_lua(pc->s, pc->len, &pb)) {
        snprintf(R->err, sizeof R->err, "ERR relationd: a statistic is not a number");
        R->failed = true;
        return false;
    }
    double pa = pb - (os ? 1 : 0) + (ns ? 1 : 0);
    if (!st_zread(R, k, order == 1, 2 * L + 1, items, z))
        return false;
    if (os == ns && (!os || t->old->v[i] == t->neww->v[i]))
        return true;
    bool complete = *z == pb;
    int at = -1; /* e's rank in the set */
    for (int j = 0; j < *z && at < 0; j++)
        if (items[j].len == t->cp.len && memcmp(items[j].s, t->cp.s, t->cp.len) == 0)
            at = j;
    ZItem e = {t->cp.s, t->cp.len, ns ? t->neww->v[i] : 0};
    int last = *z - 1 == at ? *z - 2 : *z - 1; /* the last member other than e */
    bool stays = ns && (complete || (last >= 0 && before(&e, &items[last], order)));
    RedisModuleString *member = run_str(R, t->cp.s, t->cp.len);
    if (at >= 0) {
        memmove(items + at, items + at + 1, (size_t)(*z - at - 1) * sizeof *items);
        (*z)--;
    }
    if (stays) {
        char num[24];
        int nl = num_format(e.score, num);
        if (!st_zadd(R, k, num, (size_t)nl, NULL, member))
            return false;
        int j = 0;
        while (j < *z && before(&items[j], &e, order))
            j++;
        memmove(items + j + 1, items + j, (size_t)(*z - j) * sizeof *items);
        items[j] = e;
        (*z)++;
    } else if (at >= 0 && !st_zrem(R, k, member)) {
        return false;
    }
    if (*z > 2 * L) {
        if (!trim(R, k, order, *z, 2 * L))
            return false;
        *z = 2 * L;
    }
    if (*z < L && pa > *z) { /* refill */
        if (!st_del(R, k))
            return false;
        *z = from_edges(R, t, E, i, 2 * L, items);
        if (*z < 0 || !st_zadd_many(R, k, items, *z))
            return false;
    }
    return true;
}

bool tops_edges(const TopChange *t)
{
    if (t->edges_before - (t->old ? 1 : 0) == 0)
        return false; /* no edge but the event's: each top is it alone, or empty */
    for (int ti = 0; ti < t->C->ntops; ti++)
        if (t->edges_after <= t->C->p[t->C->tops[ti]].last_n + 1)
            return true;
    return false;
}

/* The record's edges: E's (before the event), flat '@' counterpart, value. */
static void pack_edges(Mpack *m, const TopEdges *E)
{
    mpack_array(m, 2 * E->n);
    for (size_t j = 0; j < E->n; j++) {
        mpack_str2(m, "@", 1, E->e[j].s, E->e[j].len);
        mpack_str(m, E->val[j], E->vlen[j]);
    }
}

/* Top ti after the event into m (its key written); edges: the record
 * carries the side's edges (tops_edges). */
static bool top_after(Run *R, const TopChange *t, TopEdges *E, int ti, bool edges, Mpack *m)
{
    const ConfRel *C = t->C;
    int i = C->tops[ti], L = (int)C->p[i].last_n + 1;
    RedisModuleString *k = t->k_tops[ti];
    if (t->edges_after <= L && t->edges_before > L && !st_del(R, k))
        return false;
    if (t->edges_after <= L && edges) {
        /* the top is every edge with the property: the daemon orders the
         * record's edges */
        mpack_false(m);
        return true;
    }
    ZItem *items = RedisModule_PoolAlloc(R->ctx, (size_t)(2 * L + 2) * sizeof *items);
    int z = 0;
    if (t->edges_after <= L) {
        z = from_edges(R, t, E, i, L, items);
    } else if (t->edges_before <= L) { /* created */
        if (!st_del(R, k))
            return false;
        z = from_edges(R, t, E, i, 2 * L, items);
        if (z >= 0 && !st_zadd_many(R, k, items, z))
            return false;
    } else if (!update(R, t, E, ti, items, &z)) {
        return false;
    }
    if (z < 0)
        return false;
    pack_top(m, items, z, L);
    return true;
}

bool tops_after(Run *R, const TopChange *t, Mpack *m)
{
    TopEdges E = {0};
    bool edges = tops_edges(t), ok = true;
    Mpack tail = {0};
    if (edges) {
        /* packed before the tops change E's arrays; written after them */
        if (!edges_before(R, t, &E))
            return false;
        pack_edges(&tail, &E);
        if (E.oom || tail.oom) {
            mpack_free(&tail);
            snprintf(R->err, sizeof R->err, "ERR relationd: out of memory for the record");
            R->failed = true;
            return false;
        }
    }
    mpack_array(m, (size_t)t->C->ntops);
    for (int ti = 0; ti < t->C->ntops && ok; ti++)
        ok = top_after(R, t, &E, ti, edges, m);
    if (ok && edges)
        mpack_raw(m, tail.data, tail.len);
    mpack_free(&tail);
    return ok;
}

bool tops_cut(Run *R, RedisModuleString *key, int order, long long L)
{
    if (order == 1)
        return RUN(R, "ZREMRANGEBYRANK", "!sll", key, 0LL, -2 * L - 1) != NULL;
    return RUN(R, "ZREMRANGEBYRANK", "!sll", key, 2 * L, -1LL) != NULL;
}
