/* stats_table.h — one side's statistics as a table a person reads
 * (`relationctl stats` on a terminal, or with --table). */
#ifndef RELATIOND_STATS_TABLE_H
#define RELATIOND_STATS_TABLE_H

#include "config/config.h"
#include "handlers/trigger.h"

#include <stdio.h>

/* The side's edge count, a row per property (edges with it set, total when
 * save_amount) and each top, ranked. Control characters in ids print as '?'. */
void stats_table(FILE *out, const RelationDef *rel, Side side, const char *profile,
                 const SideStats *st);

#endif
