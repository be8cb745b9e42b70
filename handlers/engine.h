/* engine.h — applies batches of events to Redis, one atomic script call per
 * side of an edge, pipelined; reads statistics; clears delivered triggers. */
#ifndef RELATIOND_ENGINE_H
#define RELATIOND_ENGINE_H

#include "config/config.h"
#include "handlers/event.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct Engine Engine;

typedef enum { APPLY_APPLIED, APPLY_DUPLICATE, APPLY_STALE, APPLY_INVALID } ApplyStatus;

typedef struct {
    ApplyStatus status;         /* applied if a side applied it, else duplicate, else stale */
    char error[EVENT_ERR_MAX];  /* APPLY_INVALID: why the engine refused the event */
    char **triggers;            /* bodies still to deliver: direct side first */
    size_t ntriggers;
} ApplyResult;

/* Connects to Redis and loads the scripts. cfg is borrowed: it must outlive
 * the engine or be replaced with engine_set_config. */
Engine *engine_new(const Config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The same without connecting: the first call connects (the daemon starts
 * while Redis is down). NULL when out of memory. */
Engine *engine_create(const Config *cfg) __attribute__((warn_unused_result));
void engine_free(Engine *e);
void engine_set_config(Engine *e, const Config *cfg);

/* Applies n events in one pipeline; results[i] belongs to events[i].
 * False on a Redis failure (connection lost, Redis busy, out of memory): then
 * nothing is known of the batch, and applying it again is safe. */
bool engine_apply(Engine *e, const Event *events, size_t n, ApplyResult *results, char *err,
                  size_t errlen) __attribute__((warn_unused_result));

/* Frees the trigger bodies of n results. */
void engine_results_clear(ApplyResult *results, size_t n);

/* The triggers of these events were delivered: removes them from the outboxes. */
bool engine_delivered(Engine *e, const Event *events, size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* One side's statistics as a JSON text (caller frees). */
bool engine_stats(Engine *e, const RelationDef *rel, Side side, const char *profile, char **json,
                  char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
