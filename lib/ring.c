/* ring.c — a fixed-depth ring of slot indices (ring.h). */
#include "lib/ring.h"

#include <stdlib.h>

void ring_init(Ring *r, int depth)
{
    if (depth < 2)
        abort();
    *r = (Ring){.depth = depth, .current = 0, .in_flight = 0};
}

int ring_current(const Ring *r)
{
    return r->current;
}

int ring_in_flight(const Ring *r)
{
    return r->in_flight;
}

int ring_before(const Ring *r, int slot)
{
    return (slot + r->depth - 1) % r->depth;
}

int ring_oldest(const Ring *r)
{
    return (r->current + r->depth - r->in_flight) % r->depth;
}

bool ring_full(const Ring *r)
{
    return r->in_flight == r->depth - 1;
}

void ring_push(Ring *r)
{
    if (ring_full(r))
        abort();
    r->in_flight++;
    r->current = (r->current + 1) % r->depth;
}

int ring_pop(Ring *r)
{
    if (r->in_flight == 0)
        abort();
    int slot = ring_oldest(r);
    r->in_flight--;
    return slot;
}
