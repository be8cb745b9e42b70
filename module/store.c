/* store.c — the engine's commonest commands on the keys directly, their
 * effects replicated (store.h). */
#include "module/store.h"
#include "module/num.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"

/* The key's handle (opened, or held from an earlier call), or false (the
 * error WRONGTYPE) when it holds another type than type. */
static bool open_slot(Run *R, RedisModuleString *key, int type, RedisModuleKey **k, int *slot)
{
    *k = NULL;
    for (int i = 0; i < R->nopen && !*k; i++) /* the same string: the common case */
        if (R->open_str[i] == key) {
            *k = R->open[i];
            *slot = i;
        }
    size_t len;
    const char *name = RedisModule_StringPtrLen(key, &len);
    for (int i = 0; i < R->nopen && !*k; i++)
        if (R->open_len[i] == len && memcmp(R->open_s[i], name, len) == 0) {
            *k = R->open[i];
            *slot = i;
        }
    if (!*k) {
        if (R->nopen == RUN_KEYS)
            run_flush(R);
        *k = RedisModule_OpenKey(R->ctx, key, REDISMODULE_READ | REDISMODULE_WRITE);
        *slot = R->nopen;
        R->open[R->nopen] = *k;
        R->open_str[R->nopen] = key;
        R->open_s[R->nopen] = name;
        R->open_len[R->nopen] = len;
        R->nopen++;
    }
    int t = RedisModule_KeyType(*k);
    if (type >= 0 && t != REDISMODULE_KEYTYPE_EMPTY && t != type) {
        if (!R->failed)
            snprintf(R->err, sizeof R->err, "%s", WRONGTYPE);
        R->failed = true;
        return false;
    }
    return true;
}

/* open_slot for a read (reads keep what is known of the key). */
static bool open_read(Run *R, RedisModuleString *key, int type, RedisModuleKey **k)
{
    int slot;
    return open_slot(R, key, type, k, &slot);
}

/* open_slot for a write. */
static bool open_key(Run *R, RedisModuleString *key, int type, RedisModuleKey **k)
{
    int slot;
    return open_slot(R, key, type, k, &slot);
}

static void opt_of(RedisModuleString *s, Opt *o)
{
    o->set = s != NULL;
    o->s = s ? RedisModule_StringPtrLen(s, &o->len) : NULL;
    if (!s)
        o->len = 0;
}

bool st_hmget(Run *R, RedisModuleString *key, RedisModuleString *const *fields, int n, Opt *out)
{
    RedisModuleKey *k;
    if (!open_read(R, key, REDISMODULE_KEYTYPE_HASH, &k))
        return false;
    bool empty = RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_EMPTY;
    for (int i = 0; i < n; i++) {
        RedisModuleString *v = NULL;
        if (!empty)
            RedisModule_HashGet(k, REDISMODULE_HASH_NONE, fields[i], &v, NULL);
        opt_of(v, &out[i]);
    }
    return true;
}

bool st_hlen(Run *R, RedisModuleString *key, long long *n)
{
    RedisModuleKey *k;
    if (!open_read(R, key, REDISMODULE_KEYTYPE_HASH, &k))
        return false;
    *n = RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_HASH ? (long long)RedisModule_ValueLength(k)
                                                           : 0;
    return true;
}

bool st_hget(Run *R, RedisModuleString *key, RedisModuleString *field, Opt *out)
{
    return st_hmget(R, key, &field, 1, out);
}

bool st_get(Run *R, RedisModuleString *key, Opt *out)
{
    out->set = false;
    out->s = NULL;
    out->len = 0;
    if (!RedisModule_KeyExists(R->ctx, key)) /* the common case: no handle made */
        return true;
    RedisModuleKey *k;
    if (!open_read(R, key, REDISMODULE_KEYTYPE_STRING, &k))
        return false;
    if (RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_STRING) {
        size_t len;
        const char *p = RedisModule_StringDMA(k, &len, REDISMODULE_READ);
        char *copy = RedisModule_PoolAlloc(R->ctx, len + 1);
        memcpy(copy, p, len);
        *out = (Opt){copy, len, true};
    }
    return true;
}

bool st_ring_has(Run *R, RedisModuleString *key, const char *ek, bool *has, size_t *len)
{
    *has = false;
    *len = 0;
    if (!RedisModule_KeyExists(R->ctx, key)) /* no handle made */
        return true;
    RedisModuleKey *k;
    if (!open_read(R, key, REDISMODULE_KEYTYPE_STRING, &k))
        return false;
    if (RedisModule_KeyType(k) != REDISMODULE_KEYTYPE_STRING)
        return true;
    const char *p = RedisModule_StringDMA(k, len, REDISMODULE_READ);
    if (!p) {
        *len = 0;
        return true;
    }
    /* a loop over the 8-byte words, four a step (only aligned keys
     * compared: a match at another offset is none); under callgrind it
     * costs 3.9 instructions a key, memmem with the alignment check 13
     * (README "The Redis module") */
    uint64_t want, w[4];
    memcpy(&want, ek, sizeof want);
    size_t n = *len / 8, i = 0;
    for (; i + 4 <= n && !*has; i += 4) {
        memcpy(w, p + 8 * i, sizeof w);
        *has = (w[0] == want) | (w[1] == want) | (w[2] == want) | (w[3] == want);
    }
    for (; i < n && !*has; i++) {
        memcpy(w, p + 8 * i, sizeof *w);
        *has = w[0] == want;
    }
    return true;
}

bool st_ring_put(Run *R, RedisModuleString *key, bool append, size_t pos, const char *ek)
{
    RedisModuleKey *k;
    if (!open_key(R, key, REDISMODULE_KEYTYPE_STRING, &k))
        return false;
    size_t len = RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_STRING
                     ? RedisModule_ValueLength(k)
                     : 0;
    size_t off = append ? len : pos * 8;
    if (off + 8 > len && RedisModule_StringTruncate(k, off + 8) != REDISMODULE_OK) {
        snprintf(R->err, sizeof R->err, "ERR relationd: the ids string could not grow");
        R->failed = true;
        return false;
    }
    char *p = RedisModule_StringDMA(k, &len, REDISMODULE_WRITE);
    if (!p || len < off + 8) {
        snprintf(R->err, sizeof R->err, "ERR relationd: the ids string could not be written");
        R->failed = true;
        return false;
    }
    memcpy(p + off, ek, 8);
    if (append) {
        RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_STRING, "append", key);
        RedisModule_Replicate(R->ctx, "APPEND", "sb", key, ek, (size_t)8);
    } else {
        RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_STRING, "setrange", key);
        RedisModule_Replicate(R->ctx, "SETRANGE", "slb", key, (long long)off, ek, (size_t)8);
    }
    return true;
}

bool st_set(Run *R, RedisModuleString *key, const char *v, size_t vlen)
{
    RedisModuleKey *k;
    open_key(R, key, -1, &k);
    RedisModule_StringSet(k, RedisModule_CreateString(R->ctx, v, vlen));
    RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_STRING, "set", key);
    RedisModule_Replicate(R->ctx, "SET", "sb", key, v, vlen);
    return true;
}

/* A score as Redis replies it in RESP2: %.17g, inf and -inf. */
int st_score_text(double d, char *buf, size_t cap)
{
    if (isinf(d))
        return snprintf(buf, cap, "%s", d > 0 ? "inf" : "-inf");
    if (d == (double)(long long)d && fabs(d) < 1e15 && !(d == 0 && signbit(d)))
        return num_ltoa((long long)d, buf); /* what %.17g prints for it */
    return snprintf(buf, cap, "%.17g", d);
}

/* A sorted set's handle and length (0 when missing), or false (WRONGTYPE). */
static bool open_zset(Run *R, RedisModuleString *key, RedisModuleKey **k, long long *len,
                      int *slot)
{
    if (!open_slot(R, key, REDISMODULE_KEYTYPE_ZSET, k, slot))
        return false;
    *len = RedisModule_KeyType(*k) == REDISMODULE_KEYTYPE_ZSET
               ? (long long)RedisModule_ValueLength(*k)
               : 0;
    return true;
}

bool st_hset(Run *R, RedisModuleString *key, RedisModuleString *const *pairs, int n)
{
    RedisModuleKey *k;
    if (!open_key(R, key, REDISMODULE_KEYTYPE_HASH, &k))
        return false;
    for (int i = 0; i + 1 < n; i += 2)
        RedisModule_HashSet(k, REDISMODULE_HASH_NONE, pairs[i], pairs[i + 1], NULL);
    RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_HASH, "hset", key);
    RedisModule_Replicate(R->ctx, "HSET", "sv", key, pairs, (size_t)n);
    return true;
}

bool st_hdel(Run *R, RedisModuleString *key, RedisModuleString *const *fields, int n)
{
    RedisModuleKey *k;
    if (!open_key(R, key, REDISMODULE_KEYTYPE_HASH, &k))
        return false;
    int deleted = 0;
    if (RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_HASH)
        for (int i = 0; i < n; i++)
            deleted += RedisModule_HashSet(k, REDISMODULE_HASH_NONE, fields[i],
                                           REDISMODULE_HASH_DELETE, NULL);
    if (deleted) {
        RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_HASH, "hdel", key);
        RedisModule_Replicate(R->ctx, "HDEL", "sv", key, fields, (size_t)n);
    }
    return true;
}

bool st_zadd(Run *R, RedisModuleString *key, const char *score, size_t slen,
             RedisModuleString *score_str, RedisModuleString *member)
{
    char buf[32];
    if (slen >= sizeof buf)
        slen = sizeof buf - 1;
    memcpy(buf, score, slen);
    buf[slen] = '\0';
    RedisModuleKey *k;
    int slot;
    if (!open_slot(R, key, REDISMODULE_KEYTYPE_ZSET, &k, &slot))
        return false;
    int flags = 0;
    double score_v;
    if (!num_small_int(buf, slen, &score_v))
        score_v = strtod(buf, NULL);
    RedisModule_ZsetAdd(k, score_v, member, &flags);
    if (!(flags & REDISMODULE_ZADD_NOP)) {
        RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_ZSET, "zadd", key);
        if (score_str)
            RedisModule_Replicate(R->ctx, "ZADD", "sss", key, score_str, member);
        else
            RedisModule_Replicate(R->ctx, "ZADD", "sbs", key, buf, slen, member);
    }
    return true;
}

bool st_zrem(Run *R, RedisModuleString *key, RedisModuleString *member)
{
    RedisModuleKey *k;
    if (!open_key(R, key, REDISMODULE_KEYTYPE_ZSET, &k))
        return false;
    int deleted = 0;
    if (RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_ZSET)
        RedisModule_ZsetRem(k, member, &deleted);
    if (deleted) {
        RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_ZSET, "zrem", key);
        RedisModule_Replicate(R->ctx, "ZREM", "ss", key, member);
    }
    return true;
}

bool st_del(Run *R, RedisModuleString *key)
{
    RedisModuleKey *k;
    open_key(R, key, -1, &k);
    bool had = RedisModule_KeyType(k) != REDISMODULE_KEYTYPE_EMPTY;
    if (had)
        RedisModule_DeleteKey(k);
    if (had) {
        RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_GENERIC, "del", key);
        RedisModule_Replicate(R->ctx, "DEL", "s", key);
    }
    return true;
}

bool st_set_ex(Run *R, RedisModuleString *key, const char *v, size_t vlen, long long seconds)
{
    RedisModuleKey *k;
    open_key(R, key, -1, &k);
    RedisModule_StringSet(k, RedisModule_CreateString(R->ctx, v, vlen));
    RedisModule_SetExpire(k, seconds * 1000);
    long long at = RedisModule_GetAbsExpire(k);
    RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_STRING, "set", key);
    RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_GENERIC, "expire", key);
    RedisModule_Replicate(R->ctx, "SET", "sbcl", key, v, vlen, "PXAT", at);
    return true;
}

bool st_expire_ms(Run *R, RedisModuleString *key, long long ms)
{
    RedisModuleKey *k;
    open_key(R, key, -1, &k);
    bool had = RedisModule_KeyType(k) != REDISMODULE_KEYTYPE_EMPTY;
    long long at = 0;
    if (had) {
        RedisModule_SetExpire(k, ms);
        at = RedisModule_GetAbsExpire(k);
    }
    if (had) {
        RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_GENERIC, "expire", key);
        char num[24];
        RedisModule_Replicate(R->ctx, "PEXPIREAT", "sb", key, num, (size_t)num_ltoa(at, num));
    }
    return true;
}

/* Removes ZRANGE ranks [start, stop] of an open sorted set of len members. */
static void zrem_ranks(Run *R, RedisModuleKey *k, long long start, long long stop)
{
    long long n = stop - start + 1, i = 0;
    RedisModuleString **old = RedisModule_PoolAlloc(R->ctx, (size_t)n * sizeof *old);
    RedisModule_ZsetFirstInScoreRange(k, REDISMODULE_NEGATIVE_INFINITE,
                                      REDISMODULE_POSITIVE_INFINITE, 0, 0);
    for (long long r = 0; r <= stop && !RedisModule_ZsetRangeEndReached(k); r++) {
        if (r >= start)
            old[i++] = RedisModule_ZsetRangeCurrentElement(k, NULL);
        RedisModule_ZsetRangeNext(k);
    }
    RedisModule_ZsetRangeStop(k);
    for (long long j = 0; j < i; j++) {
        int deleted;
        RedisModule_ZsetRem(k, old[j], &deleted);
        RedisModule_FreeString(R->ctx, old[j]);
    }
}

bool st_zremrange(Run *R, RedisModuleString *key, long long start, long long stop)
{
    RedisModuleKey *k;
    long long len;
    int slot;
    if (!open_zset(R, key, &k, &len, &slot))
        return false;
    if (stop >= len)
        stop = len - 1;
    if (start < 0 || start > stop)
        return true;
    zrem_ranks(R, k, start, stop);
    char a[24], b[24];
    int al = num_ltoa(start, a), bl = num_ltoa(stop, b);
    RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_ZSET, "zremrangebyrank", key);
    if (RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_EMPTY)
        RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_GENERIC, "del", key);
    RedisModule_Replicate(R->ctx, "ZREMRANGEBYRANK", "sbb", key, a, (size_t)al, b, (size_t)bl);
    return true;
}

bool st_persist(Run *R, RedisModuleString *key)
{
    RedisModuleKey *k;
    open_key(R, key, -1, &k);
    if (RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_EMPTY ||
        RedisModule_GetExpire(k) == REDISMODULE_NO_EXPIRE)
        return true;
    RedisModule_SetExpire(k, REDISMODULE_NO_EXPIRE);
    RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_GENERIC, "persist", key);
    RedisModule_Replicate(R->ctx, "PERSIST", "s", key);
    return true;
}

bool st_zread(Run *R, RedisModuleString *key, bool rev, long long max, ZItem *out, int *n)
{
    RedisModuleKey *k;
    long long len;
    int slot;
    *n = 0;
    if (!open_zset(R, key, &k, &len, &slot))
        return false;
    if (len == 0 || max <= 0)
        return true;
    if (rev)
        RedisModule_ZsetLastInScoreRange(k, REDISMODULE_NEGATIVE_INFINITE,
                                         REDISMODULE_POSITIVE_INFINITE, 0, 0);
    else
        RedisModule_ZsetFirstInScoreRange(k, REDISMODULE_NEGATIVE_INFINITE,
                                          REDISMODULE_POSITIVE_INFINITE, 0, 0);
    while (*n < max && !RedisModule_ZsetRangeEndReached(k)) {
        double score;
        RedisModuleString *e = RedisModule_ZsetRangeCurrentElement(k, &score);
        size_t el;
        const char *es = RedisModule_StringPtrLen(e, &el);
        char *copy = RedisModule_PoolAlloc(R->ctx, el ? el : 1);
        memcpy(copy, es, el);
        out[(*n)++] = (ZItem){copy, el, score};
        RedisModule_FreeString(R->ctx, e);
        if (rev)
            RedisModule_ZsetRangePrev(k);
        else
            RedisModule_ZsetRangeNext(k);
    }
    RedisModule_ZsetRangeStop(k);
    return true;
}

typedef struct {
    StHashFn fn;
    void *priv;
} ScanPriv;

static void scan_one(RedisModuleKey *k, RedisModuleString *f, RedisModuleString *v, void *priv)
{
    (void)k;
    ScanPriv *p = priv;
    size_t fl, vl;
    const char *fs = RedisModule_StringPtrLen(f, &fl), *vs = RedisModule_StringPtrLen(v, &vl);
    p->fn(p->priv, fs, fl, vs, vl);
}

bool st_hscan(Run *R, RedisModuleString *key, StHashFn fn, void *priv)
{
    RedisModuleKey *k;
    if (!open_read(R, key, REDISMODULE_KEYTYPE_HASH, &k))
        return false;
    if (RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_EMPTY)
        return true;
    RedisModuleScanCursor *c = RedisModule_ScanCursorCreate();
    ScanPriv p = {fn, priv};
    while (RedisModule_ScanKey(k, c, scan_one, &p))
        ;
    RedisModule_ScanCursorDestroy(c);
    return true;
}

bool st_zadd_many(Run *R, RedisModuleString *key, const ZItem *items, int n)
{
    RedisModuleKey *k;
    if (n <= 0)
        return true;
    if (!open_key(R, key, REDISMODULE_KEYTYPE_ZSET, &k))
        return false;
    RedisModuleString **v = RedisModule_PoolAlloc(R->ctx, (size_t)(2 * n) * sizeof *v);
    for (int i = 0; i < n; i++) {
        char num[24];
        int nl = num_format(items[i].score, num);
        v[2 * i] = RedisModule_CreateString(R->ctx, num, (size_t)nl);
        v[2 * i + 1] = RedisModule_CreateString(R->ctx, items[i].s, items[i].len);
        RedisModule_ZsetAdd(k, items[i].score, v[2 * i + 1], NULL);
    }
    RedisModule_NotifyKeyspaceEvent(R->ctx, REDISMODULE_NOTIFY_ZSET, "zadd", key);
    RedisModule_Replicate(R->ctx, "ZADD", "sv", key, v, (size_t)(2 * n));
    return true;
}
