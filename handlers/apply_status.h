/* apply_status.h — what applying one event did (engine_recv's
 * ApplyResult.status, counted by relationd_events_total{result}): a header
 * of its own, so that counting a result needs neither the engine nor hiredis.
 * Plain values, no state. */
#ifndef RELATIOND_APPLY_STATUS_H
#define RELATIOND_APPLY_STATUS_H

typedef enum { APPLY_APPLIED, APPLY_DUPLICATE, APPLY_STALE, APPLY_INVALID } ApplyStatus;

/* The apply function (and the module) refuses an event with an error that
 * starts with this code: the event's fault, decided before anything was
 * written (APPLY_INVALID, dead-lettered). Every other error is Redis's or
 * its data's. */
#define APPLY_REFUSAL "INVALID "

#endif
