/* store.h — the commands apply.c runs most, done on the keys directly
 * (RedisModule_OpenKey and the hash, sorted-set and string calls) instead of
 * through RedisModule_Call, each with the result the command would have:
 * the same values, the same WRONGTYPE error on a key of another type, the
 * same keyspace notification, and each write replicated as the command's
 * effect (RedisModule_Replicate: HSET, HDEL, ZADD, ZREM, DEL,
 * SET … PXAT, PEXPIREAT, ZREMRANGEBYRANK), in the order of the writes, so
 * that replicas and the AOF need no module.
 *
 * A key is opened once per call and its handle held in the Run (by name)
 * until run_flush, which RUN does before any RedisModule_Call (it may free
 * what a handle points to). A sorted set that st_zadd left with one member
 * is read back by st_zrange_pack from what st_zadd wrote (any other write
 * through these functions forgets it). Strings read are the context's
 * (automatic memory).
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

/* HMGET key fields… into out[n]. */
bool st_hmget(Run *R, RedisModuleString *key, RedisModuleString *const *fields, int n, Opt *out);
/* HGET key field. */
bool st_hget(Run *R, RedisModuleString *key, RedisModuleString *field, Opt *out);
/* ZSCORE key member is not nil. */
bool st_zhas(Run *R, RedisModuleString *key, RedisModuleString *member, bool *has);
/* GET key (a copy in the context's pool); a missing key is only looked up
 * (RedisModule_KeyExists), not opened. */
bool st_get(Run *R, RedisModuleString *key, Opt *out);
/* ZRANGE (ZREVRANGE when rev) key 0 last WITHSCORES, written into m as an
 * array of strings (member, score as Redis replies it: %.17g). */
bool st_zrange_pack(Run *R, RedisModuleString *key, bool rev, long long last, Mpack *m);

/* HSET key pairs… (n strings: field, value, …). */
bool st_hset(Run *R, RedisModuleString *key, RedisModuleString *const *pairs, int n);
/* HDEL key fields…. */
bool st_hdel(Run *R, RedisModuleString *key, RedisModuleString *const *fields, int n);
/* ZADD key score member (score: an integer's text; score_str, when not
 * NULL, the same text as a string, replicated as it is). */
bool st_zadd(Run *R, RedisModuleString *key, const char *score, size_t slen,
             RedisModuleString *score_str, RedisModuleString *member);
/* ZREM key member. */
bool st_zrem(Run *R, RedisModuleString *key, RedisModuleString *member);
/* DEL key. */
bool st_del(Run *R, RedisModuleString *key);
/* SET key value EX seconds. */
bool st_set_ex(Run *R, RedisModuleString *key, const char *v, size_t vlen, long long seconds);
/* EXPIRE key seconds. */
bool st_expire(Run *R, RedisModuleString *key, long long seconds);
/* ZREMRANGEBYRANK key 0 -(keep+1): the newest keep members stay. */
bool st_ztrim(Run *R, RedisModuleString *key, long long keep);

#endif
