/* ring.h — the bookkeeping of a fixed-depth ring of slots in flight, and
 * nothing else: which slot is being filled (current), how many slots before
 * it are in flight, which of them is the oldest. The slots themselves
 * (batches, their buffers, what "in flight" means) are the caller's,
 * indexed 0 .. depth-1 by what the ring returns.
 *
 * A turn, as both users take it (daemon/pipeline.c, ctl/apply.c):
 *
 *     fill ring_current's slot
 *     start it
 *     complete the oldest (ring_pop) when ring_full
 *     ring_push: the current is in flight, the next slot is current
 *
 * Slots are pushed and popped in order (first in, first out); at most
 * depth - 1 are in flight besides the current one. Ownership: a Ring is a
 * plain value inside its owner, no allocation. Threads: none of its own; one
 * thread at a time per Ring. Failure: pushing onto a full ring or popping an
 * empty one is a caller's bug, refused with abort() (never a wrong slot). */
#ifndef RELATIOND_RING_H
#define RELATIOND_RING_H

#include <stdbool.h>

typedef struct {
    int depth;     /* slots, 2 or more */
    int current;   /* the slot being filled */
    int in_flight; /* the slots before it, pushed and not popped */
} Ring;

/* Empty, slot 0 current. */
void ring_init(Ring *r, int depth);

/* The slot being filled. */
int ring_current(const Ring *r);
/* Slots pushed and not popped. */
int ring_in_flight(const Ring *r);
/* The oldest slot in flight (meaningful while ring_in_flight > 0). */
int ring_oldest(const Ring *r);
/* depth - 1 in flight: the oldest must be popped before the next push. */
bool ring_full(const Ring *r);
/* The slot before slot in ring order (the batch that preceded it). */
int ring_before(const Ring *r, int slot);

/* The current slot goes in flight; the next one becomes current. */
void ring_push(Ring *r);
/* The oldest slot leaves the ring; returns it. */
int ring_pop(Ring *r);

#endif
