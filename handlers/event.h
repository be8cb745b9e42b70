/* event.h — one relation event, parsed and validated against the relations. */
#ifndef RELATIOND_EVENT_H
#define RELATIOND_EVENT_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENT_MAX_BYTES 65536
#define EVENT_ID_MAX 128
#define EVENT_PROFILE_MAX 128
#define EVENT_OCCURRED_MAX 64
#define EVENT_ERR_MAX 256

typedef enum { OP_ATTACH, OP_EDIT, OP_STRENGTHEN, OP_DETACH } EventOp;
typedef enum { WEIGHT_ABSENT, WEIGHT_NULL, WEIGHT_VALUE } WeightKind;

typedef struct {
    WeightKind kind;
    int64_t value; /* int: the integer; float: fixed-point (x 10^6); bool: 0 or 1 */
} Weight;

typedef struct {
    char id[EVENT_ID_MAX + 1];
    EventOp op;
    const RelationDef *rel; /* borrowed from the Config the event was parsed with */
    char profile_a[EVENT_PROFILE_MAX + 1];
    char profile_b[EVENT_PROFILE_MAX + 1];
    Weight weights[CONFIG_MAX_PROPERTIES]; /* indexed like rel->properties */
    bool has_version;
    int64_t version;
    char occurred_at[EVENT_OCCURRED_MAX + 1]; /* "" when absent */
    bool is_test;
} Event;

/* Parses one JSON event of len bytes. On failure returns false and writes one
 * message naming the field to err ("weights.profit: must be a number"); ev->id
 * is then the event's id when the message had a valid one, else "". */
bool event_parse(const Config *cfg, const char *data, size_t len, Event *ev, char *err,
                 size_t errlen) __attribute__((warn_unused_result));

/* The same, always through the JSON parser (jansson). event_parse reads
 * plain events (printable ASCII strings without escapes, numbers without
 * exponents, known keys) in one pass without allocating, and hands every
 * other event here: both give the same result and the same message for
 * every input. A float weight is rounded on its text in data, as written. */
bool event_parse_json(const Config *cfg, const char *data, size_t len, Event *ev, char *err,
                      size_t errlen) __attribute__((warn_unused_result));

const char *event_op_name(EventOp op);

/* s (n bytes) as an event's version is written, and as the engines write
 * integers: -?(0|[1-9][0-9]*) within int64; false otherwise. */
bool decimal_int64(const char *s, size_t n, int64_t *out) __attribute__((warn_unused_result));

#endif
