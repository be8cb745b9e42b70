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

/* An allocation failed: -1, with the error in R. */
static int oom(Run *R)
{
    snprintf(R->err, sizeof R->err, "ERR relationd: out of memory migrating a side");
    R->failed = true;
    return -1;
}

/* cmd key args… in calls of at most 1,000 arguments after the key (an even
 * number: field/value pairs stay together), as the function does. */
static bool chunked(Run *R, const char *cmd, RedisModuleString *key, const Args *a)
{
    for (size_t s = 0; s < a->n; s += 1000) {
        size_t n = a->n - s < 1000 ? a->n - s : 1000;
        if (!RUN(R, cmd, "!sv", key, a->v + s, n))
            return false;
    }
    return true;
}

/* The side's hash read: *keep gets its layout-2 fields and values (edges
 * packed; records, #last, #rebuild and statistics of 0 left out),
 * *changed: something was of layout 1; out: the records for the outbox;
 * *count: its edges; *rebuild: a rebuild's marker; *window: #w or #z (a
 * layout-2 window: seen is not read). */
static int convert_hash(Run *R, const ConfRel *C, RedisModuleString *k_side, Args *keep,
                        bool *changed, Args *out, double *count, bool *rebuild, bool *window)
{
    RedisModuleCallReply *all = RUN(R, "HGETALL", "s", k_side);
    if (!all)
        return -1;
    size_t n = RedisModule_CallReplyLength(all) / 2;
    *count = 0;
    *rebuild = *window = *changed = false;
    for (size_t j = 0; j < n; j++) {
        size_t fl, vl;
        const char *f = run_elem(all, 2 * j, &fl), *v = run_elem(all, 2 * j + 1, &vl);
        if (!f || !v || fl == 0)
            continue;
        RedisModuleString *fs = run_str(R, f, fl), *vs = NULL;
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
            vs = run_str(R, b, bl);
            *changed = true;
        } else if (f[0] == '!') {
            char ek[ARGS_EVENT_KEY];
            event_key(f + 1, fl - 1, ek);
            ok = push(R, out, run_str(R, ek, sizeof ek)) && push(R, out, run_str(R, v, vl));
            *changed = true;
        } else if (fl == 5 && memcmp(f, "#last", 5) == 0) {
            *changed = true;
        } else if (fl == 8 && memcmp(f, "#rebuild", 8) == 0) {
            *rebuild = *changed = true;
        } else if (f[0] != '#' && f[0] != '@' && vl == 1 && v[0] == '0') {
            *changed = true; /* a statistic of 0 */
        } else {
            if (fl == 2 && (memcmp(f, "#w", 2) == 0 || memcmp(f, "#z", 2) == 0))
                *window = true;
            vs = run_str(R, v, vl);
        }
        if (!ok || (vs && !(push(R, keep, fs) && push(R, keep, vs))))
            return oom(R);
    }
    return 0;
}

/* Layout 1's seen window read (members oldest first) into #w (7 or fewer,
 * or a window of 7 or fewer: the newest 7) or the ids ring string *ids
 * (the newest dedup_ids keys, oldest first, *idslen bytes) and #z (keep
 * gets #w or #z); *pttl: seen's: 1, 0 when seen is empty, -1 an error. */
static int read_seen(Run *R, const Conf *cf, RedisModuleString *k_seen, Args *keep,
                     const char **ids, size_t *idslen, long long *pttl)
{
    RedisModuleCallReply *all = RUN(R, "ZRANGE", "sccc", k_seen, "0", "-1", "WITHSCORES");
    RedisModuleCallReply *ttl = all ? RUN(R, "PTTL", "s", k_seen) : NULL;
    if (!ttl)
        return -1;
    *pttl = RedisModule_CallReplyInteger(ttl);
    size_t n = RedisModule_CallReplyLength(all) / 2;
    if (n == 0)
        return 0;
    char *keys = RedisModule_PoolAlloc(R->ctx, n * ARGS_EVENT_KEY);
    if (!keys)
        return oom(R);
    for (size_t j = 0; j < n; j++) {
        size_t ml;
        const char *m = run_elem(all, 2 * j, &ml);
        if (!m)
            return bad(R, k_seen, "an unexpected ZRANGE reply");
        event_key(m, ml, keys + j * ARGS_EVENT_KEY);
    }
    size_t dedup = (size_t)cf->dedup_keep;
    bool ok;
    if (n <= WINDOW_KEYS || dedup <= WINDOW_KEYS) {
        size_t m = n < WINDOW_KEYS ? n : WINDOW_KEYS;
        ok = push(R, keep, name_w) &&
             push(R, keep, run_str(R, keys + (n - m) * ARGS_EVENT_KEY, m * ARGS_EVENT_KEY));
    } else {
        size_t m = n < dedup ? n : dedup;
        *ids = keys + (n - m) * ARGS_EVENT_KEY;
        *idslen = m * ARGS_EVENT_KEY;
        char z[24];
        int zl = num_ltoa(n < dedup ? (long long)n : 0, z);
        ok = push(R, keep, name_z) && push(R, keep, run_str(R, z, (size_t)zl));
    }
    return ok ? 1 : oom(R);
}

/* The conversion, in the function's order of writes: the outbox's
 * records, the side's hash rewritten whole (DEL, then HSET: encoded
 * afresh, a listpack when small) and the expiry of a hash without edges,
 * the ids string (seen's expiry carried when the side has no edge), seen
 * deleted, the rebuild cancelled, the tops. */
static int convert(Run *R, const Conf *cf, const ConfRel *C, RedisModuleString *k_side,
                   RedisModuleString *k_ids, RedisModuleString *k_out,
                   RedisModuleString *k_seen, RedisModuleString **k_tops)
{
    Args keep = {0}, out = {0};
    double count;
    bool rebuild, window, changed;
    int seen = 0;
    const char *ids = NULL;
    size_t idslen = 0;
    long long pttl = 0;
    if (convert_hash(R, C, k_side, &keep, &changed, &out, &count, &rebuild, &window) < 0)
        return -1;
    if (k_seen && !window && (seen = read_seen(R, cf, k_seen, &keep, &ids, &idslen, &pttl)) < 0)
        return -1;
    if (!changed && !seen)
        return 0; /* nothing of layout 1 */
    if (!chunked(R, "HSET", k_out, &out) || !RUN(R, "DEL", "!s", k_side) ||
        !chunked(R, "HSET", k_side, &keep))
        return -1;
    if (count <= 0) {
        char ms[24];
        int ml = num_ltoa(cf->tomb_ttl_s * 1000, ms);
        if (!RUN(R, "PEXPIRE", "!sb", k_side, ms, (size_t)ml))
            return -1;
    }
    if (ids && !RUN(R, "SET", "!sb", k_ids, ids, idslen))
        return -1;
    if (ids && count <= 0 && pttl > 0 && !RUN(R, "PEXPIRE", "!sl", k_ids, pttl))
        return -1;
    if (seen && !RUN(R, "DEL", "!s", k_seen))
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
