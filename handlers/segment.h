/* segment.h — the conditions of `relationctl segment --where`: parsed
 * against a relation's properties, evaluated on an edge's weights.
 *
 * EXPR: COND [and COND]...; COND: PROPERTY OP VALUE (spaces around OP
 * optional); OP: = != > >= < <=; VALUE: a number, true or false. A bool
 * takes = and != with true or false; an int, integers; a float, any decimal
 * number, compared exactly (weights are whole millionths). An unset property
 * satisfies no condition, not even !=. */
#ifndef RELATIOND_SEGMENT_H
#define RELATIOND_SEGMENT_H

#include "config/config.h"
#include "handlers/trigger.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEGMENT_MAX_CONDS 32

typedef enum { OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE } SegmentOp;

typedef struct {
    int property;  /* index in the relation */
    SegmentOp op;
    int64_t value; /* in units: floor of the value x 10^6 for a float; 0/1 for a bool */
    bool frac;     /* a float value finer than 10^-6: value < VALUE < value + 1 unit */
} SegmentCond;

typedef struct Segment {
    SegmentCond conds[SEGMENT_MAX_CONDS];
    int n;
} Segment;

/* expr NULL or "": no condition (every edge matches). False with a message
 * naming what is wrong. */
bool segment_parse(const RelationDef *rel, const char *expr, Segment *out, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/* Whether the weights satisfy every condition. */
bool segment_match(const Segment *s, const EdgeWeights *w);

#endif
