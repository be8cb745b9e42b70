/* rebuild.c — relationd.rebuild (rebuild.h): apply.lua's rebuild, step for
 * step, on layout 2 (packed edge values; the swap keeps a top's first 2L,
 * and no top when the side has at most L edges). */
#include "module/rebuild.h"
#include "module/num.h"
#include "module/stats.h"
#include "module/top.h"

#include <stdio.h>
#include <string.h>

#define REBUILD_TTL "60000"
#define REBUILD_TOP_TTL "70000"
#define ZADD_CHUNK 500 /* pairs per ZADD, as the library's 1000 arguments */

static bool is(const char *s, size_t len, Str want)
{
    return s && len == want.len && memcmp(s, want.s, len) == 0;
}

static int step(Run *R, const RebuildArgs *a, RedisModuleString **keys, long long *count,
                RedisModuleString **next)
{
    const ConfRel *C = a->rel;
    int nt = C->ntops;
    RedisModuleString *k_side = keys[0], *k_rb = keys[1];
    bool first = a->cursor.len == 1 && a->cursor.s[0] == '0';
    size_t len;
    const char *s;
    if (first) {
        if (!RUN(R, "UNLINK", "!sv", k_rb, keys + 2 + nt, (size_t)nt))
            return -1;
    } else {
        RedisModuleCallReply *m = RUN(R, "HGET", "sc", k_side, "#rebuild");
        if (!m)
            return -1;
        bool mine = false;
        if (RedisModule_CallReplyType(m) == REDISMODULE_REPLY_STRING) {
            s = RedisModule_CallReplyStringPtr(m, &len);
            mine = is(s, len, a->token);
        }
        if (mine) {
            RedisModuleCallReply *e = RUN(R, "HGET", "sc", k_rb, "#epoch");
            if (!e)
                return -1;
            s = RedisModule_CallReplyType(e) == REDISMODULE_REPLY_STRING
                    ? RedisModule_CallReplyStringPtr(e, &len)
                    : NULL;
            mine = is(s, len, a->token);
        }
        if (!mine) {
            RedisModuleCallReply *e = RUN(R, "HGET", "sc", k_rb, "#epoch");
            if (!e)
                return -1;
            if (RedisModule_CallReplyType(e) != REDISMODULE_REPLY_STRING) {
                if (!RUN(R, "HDEL", "!sc", k_side, "#rebuild") ||
                    !RUN(R, "UNLINK", "!sv", k_rb, keys + 2 + nt, (size_t)nt))
                    return -1;
            }
            size_t kl;
            const char *k = RedisModule_StringPtrLen(k_side, &kl);
            snprintf(R->err, sizeof R->err,
                     "REBUILD %.*s: stopped, another rebuild of the side started or this one "
                     "paused over " REBUILD_TTL " ms",
                     (int)(kl > 400 ? 400 : kl), k);
            for (char *c = R->err; *c; c++)
                if (*c == '\r' || *c == '\n')
                    *c = ' ';
            R->failed = true;
            return -1;
        }
    }
    RedisModuleCallReply *page = RUN(R, "HSCAN", "sbcccb", k_side, a->cursor.s, a->cursor.len,
                                     "MATCH", "@*", "COUNT", a->count.s, a->count.len);
    if (!page)
        return -1;
    size_t nxl;
    const char *nx = run_elem(page, 0, &nxl);
    RedisModuleCallReply *f = RedisModule_CallReplyArrayElement(page, 1);
    if (!nx || !f) {
        snprintf(R->err, sizeof R->err, "ERR relationd: unexpected HSCAN reply");
        R->failed = true;
        return -1;
    }
    *next = run_str(R, nx, nxl);
    bool last = nxl == 1 && nx[0] == '0';
    bool whole = first && last;
    size_t nf = RedisModule_CallReplyLength(f) / 2;
    if (first && !whole) {
        if (!RUN(R, "HSET", "!scb", k_rb, "#epoch", a->token.s, a->token.len) ||
            !RUN(R, "HSET", "!scb", k_side, "#rebuild", a->token.s, a->token.len))
            return -1;
    }
    if (!whole && !RUN(R, "PEXPIRE", "!sc", k_rb, REBUILD_TTL))
        return -1;

    RedisModuleCallReply *known = NULL;
    if (!whole && nf > 0) {
        RedisModuleString **names = RedisModule_PoolAlloc(R->ctx, nf * sizeof *names);
        for (size_t j = 0; j < nf; j++) {
            s = run_elem(f, 2 * j, &len);
            names[j] = run_str(R, s ? s : "", len);
        }
        if (!(known = RUN(R, "HMGET", "sv", k_rb, names, nf)))
            return -1;
    }
    Stats acc;
    stats_init(&acc, C, k_rb);
    /* per top: score, member pairs; marks: field, '=' */
    RedisModuleString **topv = RedisModule_PoolAlloc(R->ctx, (size_t)(nt ? nt : 1) * (2 * nf + 1) *
                                                                 sizeof *topv);
    size_t ntv[CONF_MAX_PROPS] = {0};
    RedisModuleString **marks = RedisModule_PoolAlloc(R->ctx, (2 * nf + 1) * sizeof *marks);
    size_t nmarks = 0;
    RedisModuleString *one = run_str(R, "=", 1); /* counted as stored */
    *count = 0;
    for (size_t j = 0; j < nf; j++) {
        if (known) {
            size_t kl;
            if (run_elem(known, j, &kl))
                continue;
        }
        size_t fl, vl;
        const char *fs = run_elem(f, 2 * j, &fl), *vs = run_elem(f, 2 * j + 1, &vl);
        Weights w;
        const char *ver;
        size_t verl;
        if (!fs || !vs || fl < 1 || !edge_unpack(C, vs, vl, &w, &ver, &verl)) {
            snprintf(R->err, sizeof R->err,
                     "ERR relationd: an edge's value is not the layout's packed value");
            R->failed = true;
            return -1;
        }
        if (!stats_contrib(R, &acc, &w, 1))
            return -1;
        (*count)++;
        RedisModuleString *field = run_str(R, fs, fl), *cp = run_str(R, fs + 1, fl - 1);
        for (int t = 0; t < nt; t++) {
            int i = C->tops[t];
            if (!w.set[i])
                continue;
            char num[24];
            int nl = num_format(w.v[i], num);
            RedisModuleString **tv = topv + (size_t)t * (2 * nf + 1);
            tv[ntv[t]++] = run_str(R, num, (size_t)nl);
            tv[ntv[t]++] = cp;
        }
        marks[nmarks++] = field;
        marks[nmarks++] = one;
    }
    if (!stats_flush(R, &acc))
        return -1;
    if (!whole && nmarks > 0 && !RUN(R, "HSET", "!sv", k_rb, marks, nmarks))
        return -1;
    for (int t = 0; t < nt; t++) {
        RedisModuleString **tv = topv + (size_t)t * (2 * nf + 1);
        RedisModuleString *tk = keys[2 + nt + t];
        for (size_t s0 = 0; s0 < ntv[t]; s0 += 2 * ZADD_CHUNK) {
            size_t m = ntv[t] - s0 < 2 * ZADD_CHUNK ? ntv[t] - s0 : 2 * ZADD_CHUNK;
            if (!RUN(R, "ZADD", "!sv", tk, tv + s0, m))
                return -1;
        }
        if (!whole && !RUN(R, "PEXPIRE", "!sc", tk, REBUILD_TOP_TTL))
            return -1;
    }
    if (!last)
        return 0;

    /* the swap */
    RedisModuleString *hm[CONF_MAX_HM + 1];
    hm[0] = run_str(R, "#rebuild", 8);
    for (int i = 0; i < C->nhm; i++)
        hm[i + 1] = run_str(R, C->hm[i], strlen(C->hm[i]));
    RedisModuleCallReply *vals = RUN(R, "HMGET", "sv", k_rb, hm + 1, (size_t)C->nhm);
    if (!vals || !RUN(R, "HDEL", "!sv", k_side, hm, (size_t)C->nhm + 1))
        return -1;
    size_t l0;
    const char *v0 = run_elem(vals, 0, &l0);
    if (v0 && !(l0 == 1 && v0[0] == '0')) {
        RedisModuleString *h[2 * CONF_MAX_HM];
        size_t nh = 0;
        for (int j = 0; j < C->nhm; j++) {
            size_t vl;
            const char *v = run_elem(vals, (size_t)j, &vl);
            if (v && !(vl == 1 && v[0] == '0')) {
                h[nh++] = hm[j + 1];
                h[nh++] = run_str(R, v, vl);
            }
        }
        if (!RUN(R, "HSET", "!sv", k_side, h, nh))
            return -1;
    }
    /* the tops: none while the side has at most L edges, else the first
     * 2L of the copy */
    double edges = 0;
    if (v0 && !num_lua(v0, l0, &edges))
        edges = 0;
    for (int t = 0; t < nt; t++) {
        const ConfProp *p = &C->p[C->tops[t]];
        long long L = p->last_n + 1;
        if (!RUN(R, "UNLINK", "!s", keys[2 + t]))
            return -1;
        if (edges <= (double)L) {
            if (!RUN(R, "UNLINK", "!s", keys[2 + nt + t]))
                return -1;
            continue;
        }
        RedisModuleCallReply *ex = RUN(R, "EXISTS", "s", keys[2 + nt + t]);
        if (!ex)
            return -1;
        if (RedisModule_CallReplyInteger(ex) == 1 &&
            (!RUN(R, "RENAME", "!ss", keys[2 + nt + t], keys[2 + t]) ||
             !RUN(R, "PERSIST", "!s", keys[2 + t]) || !tops_cut(R, keys[2 + t], p->order, L)))
            return -1;
    }
    if (!RUN(R, "UNLINK", "!s", k_rb))
        return -1;
    return 0;
}

int rebuild_run(RedisModuleCtx *ctx, const RebuildArgs *a, RedisModuleString **keys)
{
    Run R = {.ctx = ctx};
    long long count = 0;
    RedisModuleString *next = NULL;
    if (step(&R, a, keys, &count, &next) < 0)
        return RedisModule_ReplyWithError(ctx, R.err);
    RedisModule_ReplyWithArray(ctx, 2);
    RedisModule_ReplyWithString(ctx, next);
    RedisModule_ReplyWithLongLong(ctx, count);
    return REDISMODULE_OK;
}
