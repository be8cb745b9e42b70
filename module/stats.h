/* stats.h — statistics accumulated into a hash (apply.lua's add, contrib
 * and flush): what weights add to a side's statistics, summed while every
 * sum stays exact in a double, then one HINCRBY per field that is not 0;
 * a sum about to leave the exact range is flushed first. Used by the
 * rebuild and by an apply that counts its edge in a rebuild's copy.
 *
 * Ownership: the hash key is borrowed. Threads: Redis's main thread.
 * Failure: false on a Redis error (run's message). */
#ifndef RELATIOND_MODULE_STATS_H
#define RELATIOND_MODULE_STATS_H

#include "module/call.h"
#include "module/conf.h"
#include "module/edge.h"

typedef struct {
    const ConfRel *C;
    RedisModuleString *key;
    double acc[CONF_MAX_HM];
} Stats;

void stats_init(Stats *s, const ConfRel *C, RedisModuleString *key);
/* w's contribution times sign (+1 or -1). */
bool stats_contrib(Run *R, Stats *s, const Weights *w, int sign);
bool stats_flush(Run *R, Stats *s);

#endif
