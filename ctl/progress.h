/* progress.h — one progress line on standard error, for a person at a
 * terminal: a bar and a percentage when the share done is known, the count,
 * the rate and the time left. Nothing at all when standard error is not a
 * terminal (a pipe, a log file). */
#ifndef RELATIOND_PROGRESS_H
#define RELATIOND_PROGRESS_H

#include <stdbool.h>

typedef struct {
    bool on;          /* standard error is a terminal */
    bool shown;       /* a line is on screen */
    const char *unit; /* "events", "sides" */
    double start, next;
} Progress;

/* Starts a meter counting `unit`; off unless standard error is a terminal. */
void progress_start(Progress *p, const char *unit);

/* `done` items so far; `fraction` the share of the whole done (0..1), or
 * negative when unknown. Draws at most five times a second. */
void progress_update(Progress *p, long long done, double fraction);

/* Clears the line, so that what follows starts on a clean one. */
void progress_clear(Progress *p);

/* The share of a file read: `offset` of `size` bytes (negative: unknown). */
double progress_share(long long offset, long long size);

#endif
