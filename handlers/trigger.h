/* trigger.h — trigger bodies rendered from what the apply script returns:
 * the side's record (event date, kind, statistics before, old and new
 * weights, tops after) and the event. One renderer for triggers and for
 * `relationctl stats`, so both print numbers the same way. */
#ifndef RELATIOND_TRIGGER_H
#define RELATIOND_TRIGGER_H

#include "config/config.h"
#include "handlers/event.h"
#include "lib/jsonbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRIGGER_ID_LEN 36

typedef enum { KIND_ATTACH = 1, KIND_CHANGE = 2, KIND_DETACH = 3, KIND_THRESHOLD = 4 } TriggerKind;

typedef struct {
    const char *body; /* valid until the set is reset; not NUL-terminated */
    size_t len;
    const char *routing_key; /* NUL-terminated: relation.<short>.<direct|reverse>.<kind> */
    char id[TRIGGER_ID_LEN + 1];
    size_t body_off, key_off; /* in text, while rendering */
} Trigger;

/* The triggers of a batch: bodies and routing keys in one reusable buffer. */
typedef struct {
    JsonBuf text;
    Trigger *items;
    size_t n, cap;
    bool oom;
} TriggerSet;

void triggers_reset(TriggerSet *t);
void triggers_free(TriggerSet *t);
/* Points body and routing_key into the buffer; call after the last render.
 * False when out of memory at any point since the reset. */
bool triggers_finish(TriggerSet *t) __attribute__((warn_unused_result));

/* A top entry: the counterpart's id (not NUL-terminated) and its value. */
typedef struct {
    const char *id;
    size_t len;
    int64_t value;
} TopEntry;

/* One side's statistics. Values in units (float: millionths). */
typedef struct {
    int64_t count;
    int64_t pcount[CONFIG_MAX_PROPERTIES];
    int64_t ptotal[CONFIG_MAX_PROPERTIES];
    TopEntry top[CONFIG_MAX_PROPERTIES][CONFIG_MAX_TOP];
    int ntop[CONFIG_MAX_PROPERTIES];
} SideStats;

/* One edge's weights; set[i] false: property i unset. */
typedef struct {
    bool set[CONFIG_MAX_PROPERTIES];
    int64_t w[CONFIG_MAX_PROPERTIES];
} EdgeWeights;

/* The record of one applied side. Strings point into the record's bytes. */
typedef struct {
    const char *date;
    size_t date_len;
    TriggerKind kind;
    bool has_old, has_new;
    EdgeWeights old, new_;
    SideStats before, after; /* after.top: the tops after the event, valid up to
                              * after.ntop (entries beyond are not cleared); before.top unused */
} SideRecord;

/* Decodes a record (MessagePack, see handlers/apply.lua) of rel; computes
 * the statistics after from those before and the weights, and a top the
 * record leaves to the daemon (false: every edge of the side with the
 * property) from the record's edges. False with a message when it is not a
 * record. The tops' ids point into data (or cp), which must outlive rec. */
bool record_decode(const void *data, size_t len, const RelationDef *rel, SideRecord *rec,
                   char *err, size_t errlen) __attribute__((warn_unused_result));

/* record_decode of the record of an event on a side whose counterpart is
 * cp (cplen bytes: its edge among the record's edges is replaced by the
 * new weights), slots the relation's positions in a packed edge (edge.h);
 * record_decode is this without them (a record with edges is refused). An
 * edge of the record that is not one of ours is skipped, as the readers
 * skip it. */
struct EdgeSlots;
bool record_decode_side(const void *data, size_t len, const RelationDef *rel,
                        const struct EdgeSlots *slots, const char *cp, size_t cplen,
                        SideRecord *rec, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Appends the side's triggers: attach, change or detach, then one per
 * threshold of that side crossed. */
void trigger_render(TriggerSet *out, const RelationDef *rel, Side side, const Event *ev,
                    const SideRecord *rec);

/* {"count":N,"properties":{"p":{"count":N,"total":X,"top":[...]},...}} */
void trigger_stats_json(JsonBuf *b, const RelationDef *rel, const SideStats *st);

/* A property's value (units) as the triggers print it: a float in natural
 * units (250.5), anything else as an integer. p NULL: an integer. */
void trigger_number(JsonBuf *b, const PropertyDef *p, int64_t v);
/* One edge of a side as the read side prints it: {"profile_id": cp,
 * "database": the counterpart's, "weights": {...} (as in triggers, unset
 * properties absent), "version": "<decimal>" or null}. */
void trigger_edge_json(JsonBuf *b, const RelationDef *rel, Side side, const char *cp, size_t cplen,
                       const EdgeWeights *w, const char *version, size_t vlen);

/* A decimal integer (or a decimal with a fraction of zeros) as Redis holds
 * it; false when it is not one. */
bool parse_int64(const char *s, size_t len, int64_t *out);

#endif
