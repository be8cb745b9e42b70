/* history.h — every property the relations have had since the daemon
 * started, to tell which change of a reload leaves the statistics stored
 * before out of step with the edges (README, "Verify and rebuild"). */
#ifndef RELATIOND_HISTORY_H
#define RELATIOND_HISTORY_H

#include "config/config.h"

#include <stdbool.h>

typedef struct PropertyHistory PropertyHistory;

/* The properties of cfg, as present. NULL when out of memory. */
PropertyHistory *history_new(const Config *cfg);

/* Calls said(relation, property, what, ctx) for each property of fresh
 * whose stored statistics would not follow: its type changed, save_amount or
 * save_top turned on, or removed by an earlier reload and now back (the
 * events applied meanwhile dropped its values from their edges). Then
 * records fresh: a property of a relation of fresh that fresh lacks is
 * marked removed. False when out of memory (the history is then unchanged). */
bool history_reload(PropertyHistory *h, const Config *fresh,
                    void (*said)(const char *relation, const char *property, const char *what,
                                 void *ctx),
                    void *ctx);

void history_free(PropertyHistory *h);

#endif
