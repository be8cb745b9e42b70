/* apply.h — relationd.apply and relationd.apply2: one side, or both sides
 * of an event in one atomic call, with the semantics, writes and replies of
 * the Lua library's apply and apply2 (handlers/apply.lua): the same
 * statuses and MessagePack records, the same refusals (INVALID …), fences
 * (FENCED …) and the fence written on a Redis error.
 *
 * Threads: Redis's main thread (a command). Failure: an error reply; writes
 * made before a Redis error stay, as in the library (each is idempotent and
 * the side's fence makes the engine send the call again in order). */
#ifndef RELATIOND_MODULE_APPLY_H
#define RELATIOND_MODULE_APPLY_H

#include "module/args.h"
#include "module/call.h"

/* keys: the call's keys (nkeys of them, checked by args_apply); argv: the
 * nargs strings after them, which a's strings point into (so that the
 * counterparts and now are written as they came, no copy made). Replies to
 * the client. */
int apply_run(RedisModuleCtx *ctx, const Conf *c, const ApplyArgs *a, bool both,
              RedisModuleString **keys, RedisModuleString **argv, int nargs);

/* The side whose hash is `side` fenced for `epoch` ('#fence', replicated):
 * a later call of that epoch on the side is refused FENCED. As the
 * library's redis.pcall: a key of another type in the way leaves the side
 * unfenced. */
void apply_fence(RedisModuleCtx *ctx, RedisModuleString *side, Str epoch);

#endif
