/* rebuild.h — relationd.rebuild: one step of the rebuild of a side's
 * statistics and tops from its edges (relationctl rebuild), with the
 * semantics, writes and replies of the Lua library's rebuild
 * (handlers/apply.lua): {next cursor, edges counted}, the cursor "0" when
 * the side was swapped in; 'REBUILD …' when another rebuild took the side.
 *
 * Threads: Redis's main thread (a command). Failure: an error reply (writes
 * before a Redis error stay, as in the library). */
#ifndef RELATIOND_MODULE_REBUILD_H
#define RELATIOND_MODULE_REBUILD_H

#include "module/args.h"
#include "module/call.h"

int rebuild_run(RedisModuleCtx *ctx, const RebuildArgs *a, RedisModuleString **keys);

#endif
