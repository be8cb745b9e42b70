/* backoff.h — reconnecting to something that is down: capped exponential
 * back-off with jitter, and a log that says what is down and since when. */
#ifndef RELATIOND_BACKOFF_H
#define RELATIOND_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

typedef struct {
    const char *what; /* "redis", "hooks", "kafka", "amqp", ... (borrowed) */
    const char *who;  /* the thread: "kafka source", "amqp source" (borrowed) */
    int max_ms;
    int attempt;          /* failures in a row; 0 while up */
    int64_t down_ms;      /* monotonic time of the first failure */
    time_t down_wall;     /* the same, for the log */
    int64_t next_log_ms;  /* repeats of the same outage are logged at most every 10 s */
    unsigned seed;
} Backoff;

void backoff_init(Backoff *b, const char *who, const char *what, int max_ms);

/* A failure: logs it, then sleeps the next delay (100 ms doubling up to
 * max_ms, each drawn in [delay/2, delay]). False once the drain deadline has
 * passed: give up the work in hand. */
bool backoff_failed(Backoff *b, const char *error) __attribute__((warn_unused_result));

/* A success: logs the recovery when it was down. */
void backoff_ok(Backoff *b);

#endif
