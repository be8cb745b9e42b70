/* store.h — the commands apply.c runs most, done on the keys directly
 * (RedisModule_OpenKey and the hash, sorted-set and string calls) instead of
 * through RedisModule_Call, each with the result the command would have:
 * the same values, the same WRONGTYPE error on a key of another type, the
 * same keyspace notification, and each write replicated as the command's
 * effect (RedisModule_Replicate: HSET, HDEL, ZADD, ZREM, DEL, SET,
 * SET … PXAT, APPEND, SETRANGE, PEXPIREAT, PERSIST, ZREMRANGEBYRANK), in the order of the writes, so
 * that replicas and the AOF need no module.
 *
 * A key is opened once per call and its handle held in the Run (by name)
 * until run_flush, which RUN does before any RedisModule_Call (it may free
 * what a handle points to). Strings read are the context's (automatic
 * memory).
 * Threads: Redis's main thread. Failure: false, with the error in run. */
#ifndef RELATIOND_MODULE_STORE_H
#define RELATIOND_MODULE_STORE_H

#include "module/call.h"
#include "module/mpack.h"

#include <stdbool.h>
#include <stddef.h>

/* A value read, or none (nil). */
typedef struct {
    const char *s;
    size_t len;
    bool set;
} Opt;

/* A sorted set's member (bytes of the context's pool) and score. */
typedef struct {
    const char *s;
    size_t len;
    double score;
} ZItem;

/* HMGET key fields… into out[n]. */
bool st_hmget(Run *R, RedisModuleString *key, RedisModuleString *const *fields, int n, Opt *out);
/* HLEN key (0 when missing). */
bool st_hlen(Run *R, RedisModuleString *key, long long *n);
/* HGET key field. */
bool st_hget(Run *R, RedisModuleString *key, RedisModuleString *field, Opt *out);
/* GET key (a copy in the context's pool); a missing key is only looked up
 * (RedisModule_KeyExists), not opened. */
bool st_get(Run *R, RedisModuleString *key, Opt *out);
/* The duplicate window's ring string (README "Redis key layout"): *has
 * when one of its 8-byte keys (at an offset that is a multiple of 8) is
 * ek's 8 bytes; *len: its length (0 when missing). */
bool st_ring_has(Run *R, RedisModuleString *key, const char *ek, bool *has, size_t *len);
/* ek's 8 bytes written into the ring string: APPEND (append), else
 * SETRANGE at key position pos (pos*8); the key's expiry kept. */
bool st_ring_put(Run *R, RedisModuleString *key, bool append, size_t pos, const char *ek);
/* SET key value (no expiry). */
bool st_set(Run *R, RedisModuleString *key, const char *v, size_t vlen);
/* ZRANGE (ZREVRANGE when rev) key 0 max-1 WITHSCORES into out[max]: *n
 * members (0 when the key is missing). */
bool st_zread(Run *R, RedisModuleString *key, bool rev, long long max, ZItem *out, int *n);
/* Each field and value of a hash (none when missing), to fn; the bytes
 * are valid during the call only. */
typedef void (*StHashFn)(void *priv, const char *f, size_t fl, const char *v, size_t vl);
bool st_hscan(Run *R, RedisModuleString *key, StHashFn fn, void *priv);
/* A score as Redis replies it (RESP2: %.17g, inf, -inf) into buf; its length. */
int st_score_text(double d, char *buf, size_t cap);

/* HSET key pairs… (n strings: field, value, …). */
bool st_hset(Run *R, RedisModuleString *key, RedisModuleString *const *pairs, int n);
/* HDEL key fields…. */
bool st_hdel(Run *R, RedisModuleString *key, RedisModuleString *const *fields, int n);
/* ZADD key score member (score: an integer's text; score_str, when not
 * NULL, the same text as a string, replicated as it is). */
bool st_zadd(Run *R, RedisModuleString *key, const char *score, size_t slen,
             RedisModuleString *score_str, RedisModuleString *member);
/* ZADD key score member … (n items) as one command. */
bool st_zadd_many(Run *R, RedisModuleString *key, const ZItem *items, int n);
/* ZREM key member. */
bool st_zrem(Run *R, RedisModuleString *key, RedisModuleString *member);
/* DEL key. */
bool st_del(Run *R, RedisModuleString *key);
/* SET key value EX seconds. */
bool st_set_ex(Run *R, RedisModuleString *key, const char *v, size_t vlen, long long seconds);
/* PEXPIRE key ms (nothing when the key is missing). */
bool st_expire_ms(Run *R, RedisModuleString *key, long long ms);
/* PERSIST key (nothing written when it has no expiry). */
bool st_persist(Run *R, RedisModuleString *key);
/* ZREMRANGEBYRANK key start stop (ranks of ZRANGE, 0-based, start <=
 * stop, both within the set's length). */
bool st_zremrange(Run *R, RedisModuleString *key, long long start, long long stop);

#endif
