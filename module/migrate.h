/* migrate.h — a side of layout 1 converted to layout 2 (README "Redis key
 * layout", "Migration"), atomically, in the call that finds it: by apply
 * and apply2 before their event applies (on touch), and by
 * relationd.migrate (relationctl migrate's scan, one side a call).
 *
 * On touch, a side is of layout 1 when its hash has `#last`, or (the call
 * has the layout-1 seen key) it has neither `#w` nor `#z` and seen exists;
 * relationd.migrate converts whatever of layout 1 it finds (a JSON edge, a
 * `!` record, `#last`, a statistic of 0, seen's members while the side has
 * no window) and answers 0 when there is none. The conversion: JSON edges packed (the relation's slots), each `!<id>\0<cp>`
 * record moved to the outbox `:out` under SHA-1-8(`<id>\0<cp>`), statistics
 * that are 0 and `#last` removed, the hash rewritten whole (DEL, then
 * HSET in calls of at most 1,000 arguments); seen's members (score order)
 * as event keys into `#w` (7 or fewer, or the newest 7 when dedup_ids is
 * at most 7) or into the `:ids` ring string (the newest dedup_ids, oldest
 * first) with `#z` the next position (n when n < dedup_ids, else 0), seen
 * deleted (its TTL carried to `:ids` only when the side has no edge); each top deleted when
 * the side's count is at most its limit L, else trimmed to its first 2L; a
 * rebuild under way cancelled; a hash left without edges expires after
 * TOMB_TTL.
 *
 * Threads: Redis's main thread. Failure: -1 (run's message) on a Redis
 * error or data of neither layout; the writes made before stay (each
 * conversion step is idempotent). */
#ifndef RELATIOND_MODULE_MIGRATE_H
#define RELATIOND_MODULE_MIGRATE_H

#include "module/args.h"
#include "module/call.h"
#include "module/conf.h"

/* The side converted when it is of layout 1 (has_last: `#last` in its
 * hash; has_window: `#w` or `#z`; k_seen NULL: no layout-1 seen key
 * given): 1 converted, 0 nothing to do, -1 an error. k_tops: one per top. */
int migrate_on_touch(Run *R, const Conf *cf, const ConfRel *C, RedisModuleString *k_side,
                     RedisModuleString *k_ids, RedisModuleString *k_out,
                     RedisModuleString *k_seen, RedisModuleString **k_tops, bool has_last,
                     bool has_window);

/* relationd.migrate: keys side, ids, out, seen, tops…; replies 1
 * (converted) or 0 (nothing of layout 1). */
int migrate_run(RedisModuleCtx *ctx, const Conf *cf, const ConfRel *C,
                RedisModuleString **keys);

#endif
