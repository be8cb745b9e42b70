/* apply.c — relationd.apply and relationd.apply2 (apply.h): apply.lua's
 * prepare, commit, finish, remember and shadow, step for step, with
 * Lua 5.1's numbers (doubles) where the library computes, on layout 2
 * (README "Redis key layout": packed edges, the #w/#z duplicate window,
 * the outbox in :out, bounded tops in top.c, a layout-1 side converted on
 * touch by migrate.c; the window past the hash: a ring string of 8-byte
 * event keys). */
#include "module/apply.h"
#include "module/edge.h"
#include "module/mpack.h"
#include "module/num.h"
#include "module/stats.h"
#include "module/store.h"
#include "module/migrate.h"
#include "module/top.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX 1000000000000000.0
#define EXACT (9007199254740992.0 - 2000000000000000.0)
#define LIMIT 9200000000000000000.0

typedef struct {
    const ConfRel *C;
    RedisModuleString *k_side, *k_ids, *k_out, *k_tomb, **k_tops, *k_seen;
    Str cp, ek;
    RedisModuleString *edge_f, *cp_str, *ek_str;
    Opt before[CONF_MAX_HM];
    Opt rb;
    bool unfence;
    int status;
    Opt pending;
    /* the duplicate window: #z present (ring mode: the next position z,
     * the ids string's length ring_len) or #w; ids_after: the ids string
     * exists after the event (ring mode, or the spill) */
    bool zmode, ids_after;
    Opt win;
    double z;
    size_t ring_len;
    Weights old, neww;
    bool has_old, has_new;
    Opt oldver, newver, tomb;
    int kind;
    double edges;
    bool gone, exact;
    int nf;
    int fidx[CONF_MAX_HM];
    double deltas[CONF_MAX_HM], vals[CONF_MAX_HM];
    Mpack rec;
    Opt packed;
    TopEdges side_edges; /* a small side's edges, read with its hash */
} SideState;

enum { PREP_OK, PREP_FENCED, PREP_INVALID, PREP_ERROR, PREP_MIGRATED };

/* vcmp of apply.lua: two int64 decimal strings compared. */
static int vcmp(Str x, Str y)
{
    bool xn = x.len > 0 && x.s[0] == '-', yn = y.len > 0 && y.s[0] == '-';
    if (xn != yn)
        return xn ? -1 : 1;
    if (xn) {
        Str t = x;
        x = (Str){y.s + 1, y.len - 1};
        y = (Str){t.s + 1, t.len - 1};
    }
    if (x.len != y.len)
        return x.len < y.len ? -1 : 1;
    int c = memcmp(x.s, y.s, x.len);
    return c < 0 ? -1 : c > 0;
}

static bool opt_eq(Opt a, Opt b)
{
    return a.set == b.set && (!a.set || (a.len == b.len && memcmp(a.s, b.s, a.len) == 0));
}

static int bad_data(Run *R, RedisModuleString *key, const char *what)
{
    size_t kl;
    const char *k = RedisModule_StringPtrLen(key, &kl);
    snprintf(R->err, sizeof R->err, "ERR relationd: %.*s: %s", (int)(kl > 200 ? 200 : kl), k,
             what);
    R->failed = true;
    return PREP_ERROR;
}

/* The argument strings a call's counterparts and event keys came in
 * (NULL: none found, a string is made). */
typedef struct {
    RedisModuleString *cp[2], *ek[2];
} ArgStrs;

/* The argument among argv[n] whose bytes are s's (a's strings point into
 * them), or NULL. */
static RedisModuleString *arg_of(RedisModuleString **argv, int n, Str s)
{
    for (int i = 0; i < n; i++) {
        size_t len;
        if (RedisModule_StringPtrLen(argv[i], &len) == s.s && len == s.len)
            return argv[i];
    }
    return NULL;
}

/* A copy of v in the context's pool. */
static Opt pool_opt(Run *R, const char *v, size_t vl)
{
    char *c = RedisModule_PoolAlloc(R->ctx, vl + 1);
    memcpy(c, v, vl);
    return (Opt){c, vl, true};
}

/* read_side's scan of a small side. */
typedef struct {
    Run *R;
    SideState *S;
    Opt *got;
} SideScan;

static void scan_field(void *priv, const char *f, size_t fl, const char *v, size_t vl)
{
    SideScan *sc = priv;
    SideState *S = sc->S;
    const ConfRel *C = S->C;
    int nhm = C->nhm, at = -1;
    if (fl == 0)
        return;
    if (f[0] == '@') {
        top_edges_add(&S->side_edges, f + 1, fl - 1, v, vl);
        if (fl - 1 == S->cp.len && memcmp(f + 1, S->cp.s, S->cp.len) == 0)
            at = nhm + 1;
    } else if (f[0] == '#') {
        static const char *const names[] = {"#last", NULL, "#fence", "#rebuild", "#w", "#z"};
        for (int j = 0; j < 6 && at < 0; j++)
            if (names[j] && strlen(names[j]) == fl && memcmp(names[j], f, fl) == 0)
                at = nhm + j;
    } else {
        for (int i = 0; i < nhm && at < 0; i++)
            if (strlen(C->hm[i]) == fl && memcmp(C->hm[i], f, fl) == 0)
                at = i;
    }
    if (at >= 0)
        sc->got[at] = pool_opt(sc->R, v, vl);
}

/* The side's statistics (ConfRel.hm), then #last, the edge, #fence,
 * #rebuild, #w and #z into got: a small side's hash read whole in one scan
 * (its edges kept for its tops), a larger one's fields looked up. */
static bool read_side(Run *R, SideState *S, Opt *got)
{
    const ConfRel *C = S->C;
    int nhm = C->nhm;
    long long small = nhm + 4, fields;
    for (int t = 0; t < C->ntops; t++)
        if (C->p[C->tops[t]].last_n + 1 + nhm + 4 > small)
            small = C->p[C->tops[t]].last_n + 1 + nhm + 4;
    if (!st_hlen(R, S->k_side, &fields))
        return false;
    if (C->ntops > 0 && fields <= small) {
        memset(got, 0, (size_t)(nhm + 6) * sizeof *got);
        S->side_edges.R = R;
        SideScan sc = {R, S, got};
        if (!st_hscan(R, S->k_side, scan_field, &sc))
            return false;
        S->side_edges.read = true;
        if (S->side_edges.oom) {
            snprintf(R->err, sizeof R->err, "ERR relationd: out of memory reading a side");
            R->failed = true;
            return false;
        }
        return true;
    }
    RedisModuleString *get[CONF_MAX_HM + 6];
    for (int i = 0; i < nhm; i++)
        get[i] = C->hm_str[i];
    get[nhm] = name_last;
    get[nhm + 1] = S->edge_f;
    get[nhm + 2] = name_fence;
    get[nhm + 3] = name_rebuild;
    get[nhm + 4] = name_w;
    get[nhm + 5] = name_z;
    return st_hmget(R, S->k_side, get, nhm + 6, got);
}

/* Phase 1 of a side: reads and decisions only (apply.lua, prepare); a
 * layout-1 side found is converted first (PREP_MIGRATED: prepare again). */
static int prepare(Run *R, const Conf *cf, SideState *S, const ApplyArgs *A,
                   RedisModuleString **keys, int o, int side, const ArgStrs *as, bool converted)
{
    const ConfRel *C = S->C;
    int nhm = C->nhm;
    S->k_side = keys[o];
    S->k_ids = keys[o + 1];
    S->k_out = keys[o + 2];
    S->k_tomb = keys[o + 3];
    S->k_tops = keys + o + 4;
    S->k_seen = A->migrating ? keys[o + 4 + C->ntops] : NULL;
    S->cp = A->cp[side];
    S->ek = A->ek[side];
    S->edge_f = run_cat(R, "@", S->cp.s, S->cp.len, -1, NULL, 0);
    S->cp_str = as->cp[side] ? as->cp[side] : run_str(R, S->cp.s, S->cp.len);
    S->ek_str = as->ek[side] ? as->ek[side] : run_str(R, S->ek.s, S->ek.len);

    Opt got[CONF_MAX_HM + 6];
    if (!read_side(R, S, got))
        return PREP_ERROR;
    for (int i = 0; i < nhm; i++)
        S->before[i] = got[i];
    Opt last1 = got[nhm], raw = got[nhm + 1], fence = got[nhm + 2], z = got[nhm + 5];
    S->rb = got[nhm + 3];
    S->win = got[nhm + 4];
    if (fence.s && fence.len == A->epoch.len && memcmp(fence.s, A->epoch.s, fence.len) == 0)
        return PREP_FENCED;
    if (!converted) {
        int m = migrate_on_touch(R, cf, C, S->k_side, S->k_ids, S->k_out, S->k_seen, S->k_tops,
                                 last1.set, S->win.set || z.set);
        if (m != 0)
            return m < 0 ? PREP_ERROR : PREP_MIGRATED;
    }
    S->unfence = fence.s != NULL;
    S->zmode = S->ids_after = z.set;
    /* #z past the window (made smaller since), or not a position: the ring
     * restarts at 0 (as the function) */
    if (S->zmode && (!num_lua(z.s, z.len, &S->z) || !(S->z >= 0) || S->z != floor(S->z) ||
                     S->z >= (double)cf->dedup_keep))
        S->z = 0;
    if (!S->zmode && S->win.len % ARGS_EVENT_KEY != 0)
        return bad_data(R, S->k_side, "#w is not a list of 8-byte event keys");

    bool dup = false;
    if (S->zmode) {
        if (!st_ring_has(R, S->k_ids, S->ek.s, &dup, &S->ring_len))
            return PREP_ERROR;
    } else {
        for (size_t off = 0; off < S->win.len && !dup; off += ARGS_EVENT_KEY)
            dup = memcmp(S->win.s + off, S->ek.s, ARGS_EVENT_KEY) == 0;
    }
    if (dup) {
        S->status = 2;
        return st_hget(R, S->k_out, S->ek_str, &S->pending) ? PREP_OK : PREP_ERROR;
    }
    if (raw.s) {
        const char *ver;
        size_t vl;
        if (!edge_unpack(C, raw.s, raw.len, &S->old, &ver, &vl))
            return bad_data(R, S->k_side, "an edge's value is not the layout's packed value");
        S->has_old = true;
        S->oldver = (Opt){ver, vl, ver != NULL};
    }
    S->edges = 0;
    if (S->before[0].set && !num_lua(S->before[0].s, S->before[0].len, &S->edges))
        return bad_data(R, S->k_side, "count is not a number");

    if (!S->has_old && !st_get(R, S->k_tomb, &S->tomb))
        return PREP_ERROR;
    Opt known = S->oldver.set ? S->oldver : S->tomb;
    if (A->version.len > 0 && known.set && vcmp(A->version, (Str){known.s, known.len}) < 0) {
        S->status = 3;
        return PREP_OK;
    }
    S->newver = known;
    if (A->version.len > 0)
        S->newver = (Opt){A->version.s, A->version.len, true};

    const int n = C->n;
    if (A->op != 'd') {
        S->has_new = true;
        memset(&S->neww, 0, sizeof S->neww);
        for (int i = 0; i < n; i++)
            if (S->has_old && S->old.set[i]) {
                S->neww.v[i] = S->old.v[i];
                S->neww.set[i] = true;
            }
        for (int j = 0; j < A->npairs; j++) {
            int i = A->pidx[j];
            if (A->pnull[j]) {
                S->neww.set[i] = false;
                continue;
            }
            double v = A->pval[j];
            if (A->op == 's' && C->p[i].typ != 2) {
                v = (S->neww.set[i] ? S->neww.v[i] : 0) + v;
                if (v > MAX || v < -MAX) {
                    snprintf(R->err, sizeof R->err,
                             "INVALID weights.%s: result of strengthen out of range",
                             C->p[i].short_name);
                    return PREP_INVALID;
                }
            }
            S->neww.v[i] = v;
            S->neww.set[i] = true;
        }
    }

    S->kind = 0;
    if (S->has_old && !S->has_new)
        S->kind = 3;
    else if (S->has_new && !S->has_old)
        S->kind = 1;
    else if (S->has_new)
        for (int i = 0; i < n; i++)
            if (S->old.set[i] != S->neww.set[i] ||
                (S->old.set[i] && S->old.v[i] != S->neww.v[i])) {
                S->kind = 2;
                break;
            }

    int dc = S->kind == 1 ? 1 : S->kind == 3 ? -1 : 0;
    S->gone = dc == -1 && S->edges <= 1;
    S->nf = 0;
    S->exact = true;
    if (S->kind && !S->gone) {
        if (dc != 0) {
            S->fidx[0] = 0;
            S->deltas[0] = dc;
            S->nf = 1;
        }
        for (int i = 0; i < n; i++) {
            bool os = S->has_old && S->old.set[i], ns = S->has_new && S->neww.set[i];
            double ov = S->old.v[i], nv = S->neww.v[i];
            int t = C->p[i].typ;
            double d = (double)((ns && (t != 2 || nv == 1)) ? 1 : 0) -
                       (double)((os && (t != 2 || ov == 1)) ? 1 : 0);
            if (d != 0) {
                S->fidx[S->nf] = 1 + 2 * i;
                S->deltas[S->nf++] = d;
            }
            if (C->p[i].amount) {
                d = (ns ? nv : 0) - (os ? ov : 0);
                if (d != 0) {
                    S->fidx[S->nf] = 2 + 2 * i;
                    S->deltas[S->nf++] = d;
                }
            }
        }
        for (int j = 0; j < S->nf; j++) {
            double base = 0;
            const Opt *bv = &S->before[S->fidx[j]];
            if (bv->set && !num_lua(bv->s, bv->len, &base))
                return bad_data(R, S->k_side, "a statistic is not a number");
            double v = base + S->deltas[j];
            S->vals[j] = v;
            if (v >= EXACT || v <= -EXACT) {
                S->exact = false;
                if (v > LIMIT || v < -LIMIT) {
                    snprintf(R->err, sizeof R->err,
                             "INVALID weights: %s of this side would leave the range of a "
                             "64-bit integer",
                             C->hm[S->fidx[j]]);
                    return PREP_INVALID;
                }
            }
        }
    }
    S->status = 1;
    return PREP_OK;
}

/* The edge as this call leaves it counted in the rebuild's copy (apply.lua,
 * shadow); value: the edge's packed value, "x" when detached. */
static bool shadow(Run *R, SideState *S, Opt value)
{
    const ConfRel *C = S->C;
    RedisModuleString *k_rb = run_sibling(R, S->k_side, "rebuild", NULL);
    RedisModuleCallReply *got = RUN(R, "HMGET", "scs", k_rb, "#epoch", S->edge_f);
    if (!got)
        return false;
    Opt ep, counted;
    ep.s = run_elem(got, 0, &ep.len);
    ep.set = ep.s != NULL;
    counted.s = run_elem(got, 1, &counted.len);
    if (!opt_eq(ep, S->rb)) {
        if (!RUN(R, "HDEL", "!sc", S->k_side, "#rebuild"))
            return false;
        for (int t = 0; t < C->ntops; t++)
            if (!RUN(R, "UNLINK", "!s",
                     run_sibling(R, S->k_side, "rebuild:top:", C->p[C->tops[t]].short_name)))
                return false;
        return true;
    }
    Stats acc;
    stats_init(&acc, C, k_rb);
    /* the copy's markers: '=' as stored, 'x' detached (no packed value) */
    if (counted.s && counted.len == 1 && counted.s[0] == '=') {
        if (S->has_old && !stats_contrib(R, &acc, &S->old, -1))
            return false;
    } else if (counted.s && !(counted.len == 1 && counted.s[0] == 'x')) {
        Weights w;
        const char *ver;
        size_t vl;
        if (!edge_unpack(C, counted.s, counted.len, &w, &ver, &vl)) {
            bad_data(R, k_rb, "an edge's value is not the layout's packed value");
            return false;
        }
        if (!stats_contrib(R, &acc, &w, -1))
            return false;
    }
    if (S->has_new && !stats_contrib(R, &acc, &S->neww, 1))
        return false;
    if (!stats_flush(R, &acc))
        return false;
    for (int t = 0; t < C->ntops; t++) {
        int i = C->tops[t];
        RedisModuleString *tk = run_sibling(R, S->k_side, "rebuild:top:", C->p[i].short_name);
        if (S->has_new && S->neww.set[i]) {
            char num[24];
            int nl = num_format(S->neww.v[i], num);
            if (!RUN(R, "ZADD", "!sbb", tk, num, (size_t)nl, S->cp.s, S->cp.len))
                return false;
        } else if (!RUN(R, "ZREM", "!sb", tk, S->cp.s, S->cp.len)) {
            return false;
        }
    }
    return RUN(R, "HSET", "!ssb", k_rb, S->edge_f, value.s ? value.s : "", value.len) != NULL;
}

static void pack_weights(Mpack *m, const ConfRel *C, bool has, const Weights *w)
{
    if (!has) {
        mpack_false(m);
        return;
    }
    mpack_array(m, (size_t)C->n);
    for (int i = 0; i < C->n; i++) {
        if (w->set[i])
            mpack_number(m, w->v[i]);
        else
            mpack_false(m);
    }
}

#define HMAX (2 * (CONF_MAX_HM + 4))

/* Field/value pairs for the side's HSET and fields for its HDEL. */
typedef struct {
    RedisModuleString *h[HMAX + 4];
    int nh;
    RedisModuleString *d[CONF_MAX_HM + 4];
    int nd;
} SideWrites;

/* #z's text: (pos + 1) mod dedup_ids, the position the next key goes to. */
static RedisModuleString *next_z(Run *R, const Conf *cf, double pos)
{
    char num[24];
    int nl = num_format(fmod(pos + 1, (double)cf->dedup_keep), num);
    return run_str(R, num, (size_t)nl);
}

/* The window's writes of a side that is not a duplicate (apply.lua,
 * remember): into the side's hash (#w or #z, written with the rest by
 * side_write) and the ids string (written now, after the side's hash):
 * the ring's key appended while it holds fewer than dedup_ids keys, else
 * written over the oldest (at #z); the spill writes the 7 keys of #w and
 * the new one. */
static bool remember(Run *R, const Conf *cf, SideState *S, SideWrites *W, bool write_ids)
{
    if (S->zmode) {
        size_t have = S->ring_len / ARGS_EVENT_KEY;
        bool full = (double)have >= (double)cf->dedup_keep;
        double pos = full ? S->z : (double)have;
        if (!write_ids) {
            W->h[W->nh++] = name_z;
            W->h[W->nh++] = next_z(R, cf, pos);
            return true;
        }
        return st_ring_put(R, S->k_ids, !full, (size_t)pos, S->ek.s);
    }
    size_t n = S->win.len / ARGS_EVENT_KEY;
    if (n < WINDOW_KEYS || cf->dedup_keep <= WINDOW_KEYS) {
        if (write_ids)
            return true;
        size_t keep = n < WINDOW_KEYS ? n : WINDOW_KEYS - 1;
        RedisModuleString *w = keep ? run_str(R, S->win.s + (n - keep) * ARGS_EVENT_KEY,
                                              keep * ARGS_EVENT_KEY)
                                    : run_str(R, "", 0);
        RedisModule_StringAppendBuffer(R->ctx, w, S->ek.s, ARGS_EVENT_KEY);
        W->h[W->nh++] = name_w;
        W->h[W->nh++] = w;
        return true;
    }
    /* the spill: the window's 7 keys and the new one to the ids string */
    S->ids_after = true;
    if (!write_ids) {
        W->d[W->nd++] = name_w;
        W->h[W->nh++] = name_z;
        W->h[W->nh++] = next_z(R, cf, WINDOW_KEYS);
        return true;
    }
    char ring[(WINDOW_KEYS + 1) * ARGS_EVENT_KEY];
    memcpy(ring, S->win.s + (n - WINDOW_KEYS) * ARGS_EVENT_KEY, WINDOW_KEYS * ARGS_EVENT_KEY);
    memcpy(ring + WINDOW_KEYS * ARGS_EVENT_KEY, S->ek.s, ARGS_EVENT_KEY);
    return st_set(R, S->k_ids, ring, sizeof ring);
}

/* The side's hash written (HDEL, then HSET) and its expiry, then its
 * window's ids and theirs (the function's order): a side left without
 * edges expires TOMB_TTL after its last event (the hash and the ids
 * string); an attach to such a side keeps them (PERSIST). */
static bool side_write(Run *R, const Conf *cf, SideState *S, SideWrites *W, double edges_after)
{
    if (!remember(R, cf, S, W, false))
        return false;
    if (W->nd > 0 && !st_hdel(R, S->k_side, W->d, W->nd))
        return false;
    if (W->nh > 0 && !st_hset(R, S->k_side, W->h, W->nh))
        return false;
    bool edgeless = edges_after <= 0, persist = !edgeless && S->kind == 1 && S->edges <= 0;
    if (edgeless && !st_expire_ms(R, S->k_side, cf->tomb_ttl_s * 1000))
        return false;
    if (persist && !st_persist(R, S->k_side))
        return false;
    if (!remember(R, cf, S, W, true))
        return false;
    if (edgeless && S->ids_after)
        return st_expire_ms(R, S->k_ids, cf->tomb_ttl_s * 1000);
    if (persist && S->ids_after)
        return st_persist(R, S->k_ids);
    return true;
}

/* The record: {date, kind, before, old, new, {tops after}[, edges]}; the
 * tops' keys written (top.h). */
static bool record(Run *R, SideState *S, const ApplyArgs *A, double after)
{
    const ConfRel *C = S->C;
    Mpack *m = &S->rec;
    TopChange tc = {C, S->k_side, S->k_tops, S->cp, S->edges, after, S->before,
                    S->has_old ? &S->old : NULL, S->has_new ? &S->neww : NULL, S->packed,
                    &S->side_edges};
    mpack_array(m, tops_edges(&tc) ? 7 : 6);
    mpack_str(m, A->date.s, A->date.len);
    mpack_number(m, S->kind);
    mpack_array(m, (size_t)C->nhm);
    for (int i = 0; i < C->nhm; i++) {
        if (S->before[i].set)
            mpack_str(m, S->before[i].s, S->before[i].len);
        else
            mpack_false(m);
    }
    pack_weights(m, C, S->has_old, &S->old);
    pack_weights(m, C, S->has_new, &S->neww);
    if (!tops_after(R, &tc, m))
        return false;
    if (m->oom) {
        snprintf(R->err, sizeof R->err, "ERR relationd: out of memory for the record");
        R->failed = true;
        return false;
    }
    return true;
}

/* Phase 2 of a side prepared with status 1 (apply.lua, commit), in the
 * function's order of writes (so that a key of another type in the way
 * leaves what the function leaves): the tops, the tombstone, the rebuild's
 * copy, the outbox's record, then the side's hash and window: false on a
 * Redis error. */
static bool commit(Run *R, const Conf *cf, SideState *S, const ApplyArgs *A)
{
    const ConfRel *C = S->C;
    char num[HMAX][24];
    SideWrites *W = RedisModule_PoolAlloc(R->ctx, sizeof *W);
    W->nh = W->nd = 0;
    bool has_old = S->has_old, has_new = S->has_new;

    S->packed = (Opt){NULL, 0, false};
    if (has_new && (S->kind || !opt_eq(S->oldver, S->newver))) {
        char *b = RedisModule_PoolAlloc(R->ctx, edge_pack_cap(C, S->newver.len));
        size_t bl = edge_pack(C, &S->neww, S->newver.set ? S->newver.s : NULL, S->newver.len, b);
        S->packed = (Opt){b, bl, true};
        W->h[W->nh++] = S->edge_f;
        W->h[W->nh++] = run_str(R, b, bl);
    }
    double after = S->edges + (S->kind == 1 ? 1 : S->kind == 3 ? -1 : 0);
    if (S->gone)
        after = 0;
    if (S->kind && !record(R, S, A, after))
        return false;
    if (has_new) {
        if (S->tomb.set && !st_del(R, S->k_tomb))
            return false;
    } else if (S->newver.set && (has_old || A->version.len > 0)) {
        if (!st_set_ex(R, S->k_tomb, S->newver.s, S->newver.len, cf->tomb_ttl_s))
            return false;
    }
    if (S->rb.set && S->kind && !shadow(R, S, has_new ? S->packed : (Opt){"x", 1, true}))
        return false;

    if (S->kind == 3) {
        if (S->gone) /* the edge, and every statistic */
            for (int i = 0; i < C->nhm; i++)
                W->d[W->nd++] = C->hm_str[i];
        W->d[W->nd++] = S->edge_f;
    }
    if (S->exact) {
        for (int j = 0; j < S->nf; j++) {
            if (S->vals[j] == 0) { /* a statistic that is 0 is absent */
                W->d[W->nd++] = C->hm_str[S->fidx[j]];
                continue;
            }
            W->h[W->nh++] = C->hm_str[S->fidx[j]];
            int nl = num_format(S->vals[j], num[j]);
            W->h[W->nh++] = run_str(R, num[j], (size_t)nl);
        }
    } else {
        for (int j = 0; j < S->nf; j++) {
            int nl = num_format(S->deltas[j], num[j]);
            RedisModuleCallReply *r =
                RUN(R, "HINCRBY", "!scb", S->k_side, C->hm[S->fidx[j]], num[j], (size_t)nl);
            if (!r)
                return false;
            if (RedisModule_CallReplyInteger(r) == 0) /* a statistic that is 0 is absent */
                W->d[W->nd++] = C->hm_str[S->fidx[j]];
        }
    }
    if (S->kind) {
        RedisModuleString *out[2] = {S->ek_str,
                                     run_str(R, (const char *)S->rec.data, S->rec.len)};
        if (!st_hset(R, S->k_out, out, 2))
            return false;
    }
    return side_write(R, cf, S, W, after);
}

/* A prepared side (apply.lua, finish): false on a Redis error. */
static bool finish(Run *R, const Conf *cf, SideState *S, const ApplyArgs *A)
{
    RedisModuleString *fence = name_fence;
    if (S->unfence && !st_hdel(R, S->k_side, &fence, 1))
        return false;
    if (S->status == 1)
        return commit(R, cf, S, A);
    if (S->status == 2)
        return true;
    SideWrites *W = RedisModule_PoolAlloc(R->ctx, sizeof *W);
    W->nh = W->nd = 0;
    return side_write(R, cf, S, W, S->edges);
}

static void reply_side(RedisModuleCtx *ctx, const SideState *S, bool pad)
{
    RedisModule_ReplyWithLongLong(ctx, S->status);
    if (S->status == 1 && S->kind)
        RedisModule_ReplyWithStringBuffer(ctx, (const char *)S->rec.data, S->rec.len);
    else if (S->status == 2 && S->pending.set)
        RedisModule_ReplyWithStringBuffer(ctx, S->pending.s, S->pending.len);
    else if (pad)
        RedisModule_ReplyWithStringBuffer(ctx, "", 0);
}

static int side_len(const SideState *S)
{
    return (S->status == 1 && S->kind) || (S->status == 2 && S->pending.set) ? 2 : 1;
}

void apply_fence(RedisModuleCtx *ctx, RedisModuleString *side, Str epoch)
{
    RedisModuleCallReply *r =
        RedisModule_Call(ctx, "HSET", "!scb", side, "#fence", epoch.s, epoch.len);
    (void)r; /* as redis.pcall: a side whose hash is in the way stays unfenced */
}

static void fence(Run *R, RedisModuleString *k, const ApplyArgs *A)
{
    run_flush(R);
    apply_fence(R->ctx, k, A->epoch);
}

static int fenced(RedisModuleCtx *ctx, RedisModuleString *k)
{
    size_t kl;
    const char *ks = RedisModule_StringPtrLen(k, &kl);
    char msg[600];
    snprintf(msg, sizeof msg, "FENCED %.*s: an earlier event of this side failed; sent again in order",
             (int)(kl > 400 ? 400 : kl), ks);
    for (char *c = msg; *c; c++)
        if (*c == '\r' || *c == '\n')
            *c = ' ';
    return RedisModule_ReplyWithError(ctx, msg);
}

/* prepare, and again after a conversion of the side (migration on touch). */
static int prepare_side(Run *R, const Conf *cf, SideState *S, const ApplyArgs *A,
                        RedisModuleString **keys, int o, int side, const ArgStrs *as)
{
    int why = prepare(R, cf, S, A, keys, o, side, as, false);
    if (why != PREP_MIGRATED)
        return why;
    const ConfRel *C = S->C;
    memset(S, 0, sizeof *S);
    S->C = C;
    return prepare(R, cf, S, A, keys, o, side, as, true);
}

int apply_run(RedisModuleCtx *ctx, const Conf *c, const ApplyArgs *a, bool both,
              RedisModuleString **keys, RedisModuleString **argv, int nargs)
{
    ArgStrs as = {{arg_of(argv, nargs, a->cp[0]), both ? arg_of(argv, nargs, a->cp[1]) : NULL},
                  {arg_of(argv, nargs, a->ek[0]), both ? arg_of(argv, nargs, a->ek[1]) : NULL}};
    Run R = {.ctx = ctx};
    SideState *D = RedisModule_PoolAlloc(ctx, sizeof *D), *Rv = NULL;
    memset(D, 0, sizeof *D);
    D->C = a->rel;
    int half = a->half;
    /* A side fenced stops the event on both sides: its other side is
     * fenced too, so that a later event of this epoch there does not go
     * before it (as the function does). */
    int why = prepare_side(&R, c, D, a, keys, 0, 0, &as);
    if (why == PREP_FENCED) {
        if (both)
            fence(&R, keys[half], a);
        return fenced(ctx, keys[0]);
    }
    if (both && why == PREP_OK) {
        Rv = RedisModule_PoolAlloc(ctx, sizeof *Rv);
        memset(Rv, 0, sizeof *Rv);
        Rv->C = a->rel;
        why = prepare_side(&R, c, Rv, a, keys, half, 1, &as);
        if (why == PREP_FENCED) {
            fence(&R, keys[0], a);
            return fenced(ctx, keys[half]);
        }
    }
    if (why == PREP_INVALID)
        return RedisModule_ReplyWithError(ctx, R.err);
    bool ok = why == PREP_OK && finish(&R, c, D, a) && (!Rv || finish(&R, c, Rv, a));
    int ret;
    if (!ok) {
        fence(&R, keys[0], a);
        if (both)
            fence(&R, keys[half], a);
        ret = RedisModule_ReplyWithError(ctx, R.err);
    } else if (both) {
        RedisModule_ReplyWithArray(ctx, 4);
        reply_side(ctx, D, true);
        reply_side(ctx, Rv, true);
        ret = REDISMODULE_OK;
    } else {
        RedisModule_ReplyWithArray(ctx, side_len(D));
        reply_side(ctx, D, false);
        ret = REDISMODULE_OK;
    }
    mpack_free(&D->rec);
    if (Rv)
        mpack_free(&Rv->rec);
    return ret;
}
