/* layout.h — the layout key (README "Redis key layout"): PREFIX layout, a
 * string "<version> <keyspace id>", the version of the key layout the data
 * is in and a random id naming this keyspace. The engine writes it (SET NX)
 * when it first connects; readers refuse a version they do not know; the
 * daemon compares the id with the one it saw, so that a keyspace wiped
 * under it (a Redis restarted without persistence, FLUSHALL) is noticed:
 * the key is gone or holds another id.
 *
 * Ownership: results go into the caller's buffers. Threads: the engine's
 * (engine.h). Failure: false with the reason in err (the key named, and
 * both versions for one not known); a connection lost is dropped as every
 * engine call does. */
#ifndef RELATIOND_LAYOUT_H
#define RELATIOND_LAYOUT_H

#include "handlers/engine.h"

#include <stdbool.h>
#include <stddef.h>

/* The key layout this build writes (and reads, with layout 1: a keyspace
 * in layout 1 is migrated side by side, relationctl migrate). */
#define LAYOUT_VERSION 2
#define LAYOUT_OLDEST 1
/* A keyspace id: 16 hex digits ("" when the key is absent). */
#define LAYOUT_ID_MAX 24

typedef enum {
    LAYOUT_FAILED,  /* Redis did not answer, or answered an error (err) */
    LAYOUT_OK,
    LAYOUT_UNKNOWN  /* the key names another version, or is not a layout value:
                     * err names the key and both versions */
} LayoutResult;

/* The layout key's value: its id into id ("" when the key is absent). */
LayoutResult engine_layout_get(Engine *e, char id[LAYOUT_ID_MAX], char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Writes the key with a new id when it is absent (SET NX GET): id is the
 * one it holds now; *written whether this call wrote it. The version
 * written is 2 for a keyspace without layout-1 data, 1 otherwise (a
 * keyspace of a release before the key: a SCAN of every primary finds a
 * layout-1 side). */
LayoutResult engine_layout_claim(Engine *e, char id[LAYOUT_ID_MAX], bool *written, char *err,
                                 size_t errlen) __attribute__((warn_unused_result));
/* Writes the key with a new id (relationctl layout ack), unless it names a
 * version not known: id the new one (the version kept). */
bool engine_layout_renew(Engine *e, char id[LAYOUT_ID_MAX], char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* After a migration that converted every layout-1 side (relationctl
 * migrate): the key set from "1 <id>" to "2 <id>" atomically, id the
 * keyspace id it held when the migration started; *changed false when it
 * said "2 <id>" already. False (err naming what the key holds) when it
 * holds anything else: the keyspace changed meanwhile. */
bool engine_layout_migrated(Engine *e, const char *id, bool *changed, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The keyspace's layout version as last read (0: not read yet). */
int engine_layout_version(const Engine *e);

/* For a reader: on each new connection (connecting when not connected),
 * the layout key's version checked once; false with err otherwise. */
bool engine_layout_known(Engine *e, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Whether a command may be sent and its reply awaited now: connected, and
 * no batch's replies are due. *conn: the connection's number (one more on
 * each new connection: a caller that saw another one since its last check
 * checks again). */
bool engine_layout_idle(const Engine *e, unsigned long *conn);
/* Connected now (a batch's replies may be due); *conn as above. */
bool engine_layout_connected(const Engine *e, unsigned long *conn);

#endif
