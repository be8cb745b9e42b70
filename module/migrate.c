/* migrate.c — a layout-1 side converted to layout 2 (migrate.h). Rare
 * (once per side), so written with plain commands (RUN). */
#include "module/migrate.h"
#include "module/edge.h"
#include "module/num.h"
#include "module/top.h"

#include "lib/sha1.h"

#include <stdio.h>
#include <string.h>

/* The event key of a layout-1 member or record name `<id>\0<cp>`. */
static void event_key(const char *s, size_t len, char out[ARGS_EVENT_KEY])
{
    Sha1 h;
    unsigned char d[20];
    sha1_init(&h);
    sha1_update(&h, s, len);
    sha1_final(&h, d);
    memcpy(out, d, ARGS_EVENT_KEY);
}

static int bad(Run *R, RedisModuleString *key, const char *what)
{
    size_t kl;
    const char *k = RedisModule_StringPtrLen(key, &kl);
    snprintf(R->err, sizeof R->err, "ERR relationd: migrating %.*s: %s",
             (int)(kl > 200 ? 200 : kl), k, what);
    R->failed = true;
    return -1;
}

/* A growing list of strings for one command's arguments. */
typedef struct {
    RedisModuleString **v;
    size_t n, cap;
} Args;

static bool push(Run *R, Args *a, RedisModuleString *s)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        RedisModuleString **v = RedisModule_PoolAlloc(R->ctx, cap * sizeof *v);
        if (!v)
            return false;
        if (a->n)
            memcpy(v, a->v, a->n * sizeof *v);
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = s;
    return true;
}

/* The side's hash: edges packed, records to the outbox, zeros and #last
 * removed; *count: its edges; *rebuild: a rebuild's marker; *window: #w or
 * #z (a layout-2 window: seen is not read). */
static int convert_hash(Run *R, const ConfRel *C, RedisModuleString *k_side, Args *hset,
                        Args *hdel, Args *out, double *count, bool *rebuild, bool *window)
{
    RedisModuleCallReply *all = RUN(R, "HGETALL", "s", k_side);
    if (!all)
        return -1;
    size_t n = RedisModule_CallReplyLength(all) / 2;
    *count = 0;
    *rebuild = *window = false;
    for (size_t j = 0; j < n; j++) {
        size_t fl, vl;
        const char *f = run_elem(all, 2 * j, &fl), *v = run_elem(all, 2 * j + 1, &vl);
        if (!f || !v || fl == 0)
            continue;
        RedisModuleString *fs = run_str(R, f, fl);
        bool ok = true;
        if (f[0] == '@')
            (*count)++;
        if (f[0] == '@' && vl > 0 && v[0] == '{') {
            Weights w;
            char *ver = RedisModule_PoolAlloc(R->ctx, vl + 1);
            size_t verl = 0;
            bool hv;
            if (!edge_parse_json(C, v, vl, &w, ver, &verl, &hv))
                return bad(R, k_side, "an edge's value is not layout 1's JSON");
            char *b = RedisModule_PoolAlloc(R->ctx, edge_pack_cap(C, verl));
            size_t bl = edge_pack(C, &w, hv ? ver : NULL, verl, b);
            ok = push(R, hset, fs) && push(R, hset, run_str(R, b, bl));
        } else if (f[0] == '!') {
            char ek[ARGS_EVENT_KEY];
            event_key(f + 1, fl - 1, ek);
            ok = push(R, out, run_str(R, ek, sizeof ek)) && push(R, out, run_str(R, v, vl)) &&
                 push(R, hdel, fs);
        } else if (fl == 5 && memcmp(f, "#last", 5) == 0) {
            ok = push(R, hdel, fs);
        } else if (fl == 8 && memcmp(f, "#rebuild", 8) == 0) {
            *rebuild = true;
            ok = push(R, hdel, fs);
        } else if (fl == 2 && (memcmp(f, "#w", 2) == 0 || memcmp(f, "#z", 2) == 0)) {
            *window = true;
        } else if (f[0] != '#' && f[0] != '@' && vl == 1 && v[0] == '0') {
            ok = push(R, hdel, fs); /* a statistic of 0 */
        }
        if (!ok) {
            snprintf(R->err, sizeof R->err, "ERR relationd: out of memory migrating a side");
            R->failed = true;
            return -1;
        }
    }
    return 0;
}

/* Layout 1's seen window into #w or the ids set (hset gets #w/#z): 1, 0
 * when seen is empty, -1 an error. */
static int convert_seen(Run *R, RedisModuleString *k_seen, RedisModuleString *k_ids,
                        Args *hset)
{
    RedisModuleCallReply *all = RUN(R, "ZRANGE", "sccc", k_seen, "0", "-1", "WITHSCORES");
    RedisModuleCallReply *ttl = all ? RUN(R, "PTTL", "s", k_seen) : NULL;
    if (!ttl)
        return -1;
    long long pttl = RedisModule_CallReplyInteger(ttl);
    size_t n = RedisModule_CallReplyLength(all) / 2;
    if (n == 0)
        return 0;
    char *keys = RedisModule_PoolAlloc(R->ctx, n * ARGS_EVENT_KEY);
    RedisModuleString **z = RedisModule_PoolAlloc(R->ctx, 2 * n * sizeof *z);
    size_t sl = 0;
    const char *newest = NULL;
    for (size_t j = 0; j < n; j++) {
        size_t ml;
        const char *m = run_elem(all, 2 * j, &ml), *sc = run_elem(all, 2 * j + 1, &sl);
        if (!m || !sc)
            return bad(R, k_seen, "an unexpected ZRANGE reply");
        event_key(m, ml, keys + j * ARGS_EVENT_KEY);
        z[2 * j] = run_str(R, sc, sl);
        z[2 * j + 1] = run_str(R, keys + j * ARGS_EVENT_KEY, ARGS_EVENT_KEY);
        newest = sc;
    }
    if (n <= WINDOW_KEYS) {
        if (!push(R, hset, name_w) || !push(R, hset, run_str(R, keys, n * ARGS_EVENT_KEY)))
            return bad(R, k_seen, "out of memory");
    } else {
        if (!RUN(R, "ZADD", "!sv", k_ids, z, 2 * n))
            return -1;
        if (pttl > 0 && !RUN(R, "PEXPIRE", "!sl", k_ids, pttl))
            return -1;
        if (!push(R, hset, name_z) || !push(R, hset, run_str(R, newest, sl)))
            return bad(R, k_seen, "out of memory");
    }
    return RUN(R, "DEL", "!s", k_seen) ? 1 : -1;
}

static int convert(Run *R, const Conf *cf, const ConfRel *C, RedisModuleString *k_side,
                   RedisModuleString *k_ids, RedisModuleString *k_out,
                   RedisModuleString *k_seen, RedisModuleString **k_tops)
{
    Args hset = {0}, hdel = {0}, out = {0};
    double count;
    bool rebuild, window;
    int seen = 0;
    if (convert_hash(R, C, k_side, &hset, &hdel, &out, &count, &rebuild, &window) < 0)
        return -1;
    if (k_seen && !window && (seen = convert_seen(R, k_seen, k_ids, &hset)) < 0)
        return -1;
    if (!hset.n && !hdel.n && !out.n && !seen)
        return 0; /* nothing of layout 1 */
    if (hdel.n && !RUN(R, "HDEL", "!sv", k_side, hdel.v, hdel.n))
        return -1;
    if (hset.n && !RUN(R, "HSET", "!sv", k_side, hset.v, hset.n))
        return -1;
    if (out.n && !RUN(R, "HSET", "!sv", k_out, out.v, out.n))
        return -1;
    if (rebuild) {
        if (!RUN(R, "UNLINK", "!s", run_sibling(R, k_side, "rebuild", NULL)))
            return -1;
        for (int t = 0; t < C->ntops; t++)
            if (!RUN(R, "UNLINK", "!s",
                     run_sibling(R, k_side, "rebuild:top:", C->p[C->tops[t]].short_name)))
                return -1;
    }
    for (int t = 0; t < C->ntops; t++) {
        const ConfProp *p = &C->p[C->tops[t]];
        long long L = p->last_n + 1;
        if (count <= (double)L) {
            if (!RUN(R, "DEL", "!s", k_tops[t]))
                return -1;
        } else if (!tops_cut(R, k_tops[t], p->order, L)) {
            return -1;
        }
    }
    if (count <= 0) {
        char ms[24];
        int ml = num_ltoa(cf->tomb_ttl_s * 1000, ms);
        if (!RUN(R, "PEXPIRE", "!sb", k_side, ms, (size_t)ml))
            return -1;
    }
    return 1;
}

int migrate_on_touch(Run *R, const Conf *cf, const ConfRel *C, RedisModuleString *k_side,
                     RedisModuleString *k_ids, RedisModuleString *k_out,
                     RedisModuleString *k_seen, RedisModuleString **k_tops, bool has_last,
                     bool has_window)
{
    if (!has_last) {
        if (!k_seen || has_window)
            return 0;
        RedisModuleCallReply *ex = RUN(R, "EXISTS", "s", k_seen);
        if (!ex)
            return -1;
        if (RedisModule_CallReplyInteger(ex) == 0)
            return 0;
    }
    return convert(R, cf, C, k_side, k_ids, k_out, k_seen, k_tops);
}

int migrate_run(RedisModuleCtx *ctx, const Conf *cf, const ConfRel *C,
                RedisModuleString **keys)
{
    Run R = {.ctx = ctx};
    int done = convert(&R, cf, C, keys[0], keys[1], keys[2], keys[3], keys + 4);
    if (done < 0)
        return RedisModule_ReplyWithError(ctx, R.err);
    return RedisModule_ReplyWithLongLong(ctx, done);
}
