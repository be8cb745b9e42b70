/* schema.h — the relations' property slots (README "Redis key layout",
 * PREFIX schema): a layout-2 edge value holds each property at its slot, a
 * position a property keeps for good. PREFIX schema is a hash, field the
 * relation's short name, value its property names in slot order, comma
 * separated; a property the configuration adds is appended, one it removes
 * keeps its place. On each new connection the engine appends the
 * configuration's missing properties (one EVAL per relation, pipelined;
 * atomic, so that two daemons adding properties at once agree) and takes
 * each property's slot; the function library and the module's
 * configuration are generated with them. An engine that only reads
 * (engine_set_reader) reads the lists (HGET) and completes nothing.
 *
 * Ownership: the slots live in the engine (freed with it). Threads: the
 * engine's. Failure: false with the reason in err; out of memory is
 * reported as such. */
#ifndef RELATIOND_SCHEMA_H
#define RELATIOND_SCHEMA_H

#include "config/config.h"
#include "handlers/engine.h"

#include <stdbool.h>
#include <stddef.h>

/* The engine's slots for its configuration: the ones known for each
 * relation (the lists last read), a new property after them in the
 * configuration's order. *unknown: a property is in no list read (a sync
 * is due before its slot is trusted). False when out of memory. */
bool schema_take(Engine *e, bool *unknown);

/* On a new connection, before anything is sent: every relation's list
 * read and completed (EVAL), the slots taken, the library made again when
 * they changed. */
bool schema_sync(Engine *e, char *err, size_t errlen) __attribute__((warn_unused_result));

/* The slot (1-based) of each property of the configuration's relation
 * number rel (an array of its nproperties), and *nslots, the length of its
 * list. */
const int *engine_slots(const Engine *e, int rel, int *nslots);

/* The slot of each of rel's properties in list (the comma-separated names,
 * len bytes), a property not in it after the list's end in property order;
 * *nslots the list's length with those. Pure: for readers and tests. */
void schema_slots(const RelationDef *rel, const char *list, size_t len, int *slot, int *nslots);

#endif
