/* apply.c — relationd.apply and relationd.apply2 (apply.h): apply.lua's
 * prepare, commit, finish, remember and shadow, step for step, with
 * Lua 5.1's numbers (doubles) where the library computes. */
#include "module/apply.h"
#include "module/edge.h"
#include "module/mpack.h"
#include "module/num.h"
#include "module/stats.h"
#include "module/store.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX 1000000000000000.0
#define EXACT (9007199254740992.0 - 2000000000000000.0)
#define LIMIT 9200000000000000000.0

typedef struct {
    const ConfRel *C;
    RedisModuleString *k_side, *k_seen, *k_tomb, **k_tops;
    Str cp;
    RedisModuleString *member, *edge_f, *cp_str;
    Str mem; /* member's bytes */
    Opt before[CONF_MAX_HM];
    Opt rb;
    bool unfence;
    int status;
    Opt pending;
    char now[32];
    size_t nowlen;
    double score, l;
    bool has_l;
    Weights old, neww;
    bool has_old, has_new;
    Opt oldver, newver, tomb;
    char *verbuf;
    int kind;
    double edges;
    bool gone, exact;
    int nf;
    int fidx[CONF_MAX_HM];
    double deltas[CONF_MAX_HM], vals[CONF_MAX_HM];
    Mpack rec;
    Opt json;
    RedisModuleString *now_str; /* now's text as a string, once made (side_now) */
} SideState;

enum { PREP_OK, PREP_FENCED, PREP_INVALID, PREP_ERROR };

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

/* The argument strings a call's counterparts and now came in (NULL: none
 * found, a string is made). */
typedef struct {
    RedisModuleString *cp[2], *now;
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

/* Phase 1 of a side: reads and decisions only (apply.lua, prepare). */
static int prepare(Run *R, SideState *S, const ApplyArgs *A, RedisModuleString **keys, int o,
                   Str cp, RedisModuleString *cp_str, RedisModuleString *now_str)
{
    const ConfRel *C = S->C;
    int nhm = C->nhm;
    S->k_side = keys[o];
    S->k_seen = keys[o + 1];
    S->k_tomb = keys[o + 2];
    S->k_tops = keys + o + 3;
    S->cp = cp;
    S->member = run_cat(R, "", A->id.s, A->id.len, 0, cp.s, cp.len);
    S->mem.s = RedisModule_StringPtrLen(S->member, &S->mem.len);
    S->edge_f = run_cat(R, "@", cp.s, cp.len, -1, NULL, 0);
    S->cp_str = cp_str ? cp_str : run_str(R, cp.s, cp.len);

    RedisModuleString *get[CONF_MAX_HM + 4];
    for (int i = 0; i < nhm; i++)
        get[i] = C->hm_str[i];
    get[nhm] = name_last;
    get[nhm + 1] = S->edge_f;
    get[nhm + 2] = name_fence;
    get[nhm + 3] = name_rebuild;
    Opt got[CONF_MAX_HM + 4];
    if (!st_hmget(R, S->k_side, get, nhm + 4, got))
        return PREP_ERROR;
    for (int i = 0; i < nhm; i++)
        S->before[i] = got[i];
    Opt l = got[nhm], raw = got[nhm + 1], fence = got[nhm + 2];
    S->rb = got[nhm + 3];
    if (fence.s && fence.len == A->epoch.len && memcmp(fence.s, A->epoch.s, fence.len) == 0)
        return PREP_FENCED;
    S->unfence = fence.s != NULL;
    S->has_l = l.s != NULL;
    if (S->has_l && !num_lua(l.s, l.len, &S->l))
        return bad_data(R, S->k_side, "#last is not a number");

    bool seen;
    if (!st_zhas(R, S->k_seen, S->member, &seen))
        return PREP_ERROR;
    if (seen) {
        S->status = 2;
        if (!st_hget(R, S->k_side, run_cat(R, "!", S->mem.s, S->mem.len, -1, NULL, 0),
                     &S->pending))
            return PREP_ERROR;
        return PREP_OK;
    }
    S->score = A->now_v;
    if (A->now.len >= sizeof S->now)
        return bad_data(R, S->k_side, "now too long");
    memcpy(S->now, A->now.s, A->now.len);
    S->nowlen = A->now.len;
    S->now_str = now_str;
    if (S->has_l && S->l >= S->score) {
        S->score = S->l + 1;
        S->nowlen = (size_t)num_format(S->score, S->now);
        S->now_str = NULL; /* made from S->now when needed (side_now) */
    }

    if (raw.s) {
        S->verbuf = RedisModule_PoolAlloc(R->ctx, raw.len + 1);
        bool hv;
        if (!edge_parse(C, raw.s, raw.len, &S->old, S->verbuf, &S->oldver.len, &hv))
            return bad_data(R, S->k_side, "an edge's value is not the layout's JSON");
        S->has_old = true;
        S->oldver.set = hv;
        S->oldver.s = S->verbuf;
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

/* The side's now (the #last value and the id's score) as a string, made
 * once. */
static RedisModuleString *side_now(Run *R, SideState *S)
{
    if (!S->now_str)
        S->now_str = run_str(R, S->now, S->nowlen);
    return S->now_str;
}

/* The id joins the side's recent ids (apply.lua, remember). */
static bool remember(Run *R, const Conf *cf, SideState *S)
{
    if (!st_zadd(R, S->k_seen, S->now, S->nowlen, side_now(R, S), S->member))
        return false;
    if (!S->has_l || floor(S->score / cf->expire_step) != floor(S->l / cf->expire_step))
        if (!st_expire(R, S->k_seen, cf->tomb_ttl_s))
            return false;
    if (!S->has_l || floor(S->score / 8) != floor(S->l / 8))
        if (!st_ztrim(R, S->k_seen, cf->dedup_keep))
            return false;
    return true;
}

/* The edge as this call leaves it counted in the rebuild's copy (apply.lua,
 * shadow). */
static bool shadow(Run *R, SideState *S, Opt json)
{
    const ConfRel *C = S->C;
    size_t kl;
    const char *k = RedisModule_StringPtrLen(S->k_side, &kl);
    if (kl < 4)
        kl = 4;
    Str base = {k, kl - 4};
    RedisModuleString *k_rb = run_cat(R, "", base.s, base.len, -1, NULL, 0);
    RedisModule_StringAppendBuffer(R->ctx, k_rb, "rebuild", 7);
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
        for (int t = 0; t < C->ntops; t++) {
            RedisModuleString *tk = run_cat(R, "", base.s, base.len, -1, NULL, 0);
            RedisModule_StringAppendBuffer(R->ctx, tk, "rebuild:top:", 12);
            const char *sn = C->p[C->tops[t]].short_name;
            RedisModule_StringAppendBuffer(R->ctx, tk, sn, strlen(sn));
            if (!RUN(R, "UNLINK", "!s", tk))
                return false;
        }
        return true;
    }
    Stats acc;
    stats_init(&acc, C, k_rb);
    if (counted.s && counted.len == 1 && counted.s[0] == '1') {
        if (S->has_old && !stats_contrib(R, &acc, &S->old, -1))
            return false;
    } else if (counted.s && counted.len > 0) {
        Weights w;
        char *vb = RedisModule_PoolAlloc(R->ctx, counted.len + 1);
        size_t vl;
        bool hv;
        if (!edge_parse(C, counted.s, counted.len, &w, vb, &vl, &hv)) {
            bad_data(R, k_rb, "an edge's value is not the layout's JSON");
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
        RedisModuleString *tk = run_cat(R, "", base.s, base.len, -1, NULL, 0);
        RedisModule_StringAppendBuffer(R->ctx, tk, "rebuild:top:", 12);
        RedisModule_StringAppendBuffer(R->ctx, tk, C->p[i].short_name, strlen(C->p[i].short_name));
        if (S->has_new && S->neww.set[i]) {
            char num[24];
            int nl = num_format(S->neww.v[i], num);
            if (!RUN(R, "ZADD", "!sbb", tk, num, (size_t)nl, S->cp.s, S->cp.len))
                return false;
        } else if (!RUN(R, "ZREM", "!sb", tk, S->cp.s, S->cp.len)) {
            return false;
        }
    }
    return RUN(R, "HSET", "!ssb", k_rb, S->edge_f, json.s ? json.s : "", json.len) != NULL;
}

/* n bytes of s at p: the end. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* The edge's JSON value (apply.lua, commit). */
static Opt edge_json(Run *R, SideState *S)
{
    const ConfRel *C = S->C;
    size_t cap = 40 + (S->newver.set ? S->newver.len : 0);
    for (int i = 0; i < C->n; i++)
        cap += strlen(C->p[i].jkey) + 26;
    char *b = RedisModule_PoolAlloc(R->ctx, cap), *p = b;
    p = put(p, "{\"version\":", 11);
    if (S->newver.set) {
        *p++ = '"';
        p = put(p, S->newver.s, S->newver.len);
        *p++ = '"';
    } else {
        p = put(p, "null", 4);
    }
    p = put(p, ",\"weights\":{", 12);
    bool first = true;
    for (int i = 0; i < C->n; i++) {
        if (!S->neww.set[i])
            continue;
        if (!first)
            *p++ = ',';
        first = false;
        p = put(p, C->p[i].jkey, strlen(C->p[i].jkey));
        if (C->p[i].typ == 2)
            p = S->neww.v[i] == 1 ? put(p, "true", 4) : put(p, "false", 5);
        else
            p += num_format(S->neww.v[i], p);
    }
    p = put(p, "}}", 2);
    return (Opt){b, (size_t)(p - b), true};
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

/* Phase 2 of a side prepared with status 1 (apply.lua, commit): false on a
 * Redis error. */
static bool commit(Run *R, const Conf *cf, SideState *S, const ApplyArgs *A)
{
    const ConfRel *C = S->C;
    char num[HMAX][24];
    RedisModuleString *h[HMAX + 2];
    int nh = 0;
    bool has_old = S->has_old, has_new = S->has_new;

    if (S->kind) {
        for (int t = 0; t < C->ntops; t++) {
            int i = C->tops[t];
            bool os = has_old && S->old.set[i], ns = has_new && S->neww.set[i];
            if (os == ns && (!os || S->old.v[i] == S->neww.v[i]))
                continue;
            if (ns) {
                int nl = num_format(S->neww.v[i], num[0]);
                if (!st_zadd(R, S->k_tops[t], num[0], (size_t)nl, NULL, S->cp_str))
                    return false;
            } else if (!st_zrem(R, S->k_tops[t], S->cp_str)) {
                return false;
            }
        }
    }

    S->json = (Opt){NULL, 0, false};
    if (has_new) {
        if (S->kind || !opt_eq(S->oldver, S->newver)) {
            S->json = edge_json(R, S);
            h[0] = S->edge_f;
            h[1] = run_str(R, S->json.s, S->json.len);
            nh = 2;
        }
        if (S->tomb.set && !st_del(R, S->k_tomb))
            return false;
    } else if (S->newver.set && (has_old || A->version.len > 0)) {
        if (!st_set_ex(R, S->k_tomb, S->newver.s, S->newver.len, cf->tomb_ttl_s))
            return false;
    }
    if (S->rb.set && S->kind && !shadow(R, S, has_new ? S->json : (Opt){"", 0, true}))
        return false;

    RedisModuleString *last = name_last, *now = side_now(R, S);
    if (!S->kind) {
        if (S->edges > 0) {
            h[nh++] = last;
            h[nh++] = now;
        }
        if (nh > 0 && !st_hset(R, S->k_side, h, nh))
            return false;
        return remember(R, cf, S);
    }
    h[nh++] = last;
    h[nh++] = now;

    if (S->kind == 3) {
        if (S->gone) {
            RedisModuleString *del[CONF_MAX_HM + 3];
            int nd = 0;
            for (int i = 0; i < C->nhm; i++)
                del[nd++] = C->hm_str[i];
            del[nd++] = last;
            del[nd++] = S->edge_f;
            del[nd++] = name_fence;
            if (!st_hdel(R, S->k_side, del, nd))
                return false;
            nh = 0;
        } else if (!st_hdel(R, S->k_side, &S->edge_f, 1)) {
            return false;
        }
    }
    if (S->exact) {
        for (int j = 0; j < S->nf; j++) {
            h[nh++] = C->hm_str[S->fidx[j]];
            int nl = num_format(S->vals[j], num[j]);
            h[nh++] = run_str(R, num[j], (size_t)nl);
        }
    } else {
        for (int j = 0; j < S->nf; j++) {
            int nl = num_format(S->deltas[j], num[j]);
            if (!RUN(R, "HINCRBY", "!scb", S->k_side, C->hm[S->fidx[j]], num[j], (size_t)nl))
                return false;
        }
    }

    /* the record: {date, kind, before, old, new, {tops after}} */
    Mpack *m = &S->rec;
    mpack_array(m, 6);
    mpack_str(m, A->date.s, A->date.len);
    mpack_number(m, S->kind);
    mpack_array(m, (size_t)C->nhm);
    for (int i = 0; i < C->nhm; i++) {
        if (S->before[i].set)
            mpack_str(m, S->before[i].s, S->before[i].len);
        else
            mpack_false(m);
    }
    pack_weights(m, C, has_old, &S->old);
    pack_weights(m, C, has_new, &S->neww);
    mpack_array(m, (size_t)C->ntops);
    for (int t = 0; t < C->ntops; t++) {
        const ConfProp *p = &C->p[C->tops[t]];
        if (!st_zrange_pack(R, S->k_tops[t], p->order == 1, p->last_n, m))
            return false;
    }
    if (m->oom) {
        snprintf(R->err, sizeof R->err, "ERR relationd: out of memory for the record");
        R->failed = true;
        return false;
    }
    h[nh++] = run_cat(R, "!", S->mem.s, S->mem.len, -1, NULL, 0);
    h[nh++] = run_str(R, (const char *)m->data, m->len);
    if (!st_hset(R, S->k_side, h, nh))
        return false;
    return remember(R, cf, S);
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
    RedisModuleString *last[2] = {name_last, side_now(R, S)};
    if (S->edges > 0 && !st_hset(R, S->k_side, last, 2))
        return false;
    return remember(R, cf, S);
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

static void fence(Run *R, RedisModuleString *k, const ApplyArgs *A)
{
    run_flush(R);
    RedisModuleCallReply *r =
        RedisModule_Call(R->ctx, "HSET", "!scb", k, "#fence", A->epoch.s, A->epoch.len);
    (void)r; /* as redis.pcall: a side whose hash is in the way stays unfenced */
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

int apply_run(RedisModuleCtx *ctx, const Conf *c, const ApplyArgs *a, bool both,
              RedisModuleString **keys, RedisModuleString **argv, int nargs)
{
    ArgStrs as = {{arg_of(argv, nargs, a->cp[0]), both ? arg_of(argv, nargs, a->cp[1]) : NULL},
                  arg_of(argv, nargs, a->now)};
    Run R = {.ctx = ctx};
    SideState *D = RedisModule_PoolAlloc(ctx, sizeof *D), *Rv = NULL;
    memset(D, 0, sizeof *D);
    D->C = a->rel;
    int half = 3 + a->rel->ntops;
    /* A side fenced stops the event on both sides: its other side is
     * fenced too, so that a later event of this epoch there does not go
     * before it (as the function does). */
    int why = prepare(&R, D, a, keys, 0, a->cp[0], as.cp[0], as.now);
    if (why == PREP_FENCED) {
        if (both)
            fence(&R, keys[half], a);
        return fenced(ctx, keys[0]);
    }
    if (both && why == PREP_OK) {
        Rv = RedisModule_PoolAlloc(ctx, sizeof *Rv);
        memset(Rv, 0, sizeof *Rv);
        Rv->C = a->rel;
        why = prepare(&R, Rv, a, keys, half, a->cp[1], as.cp[1], as.now);
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
