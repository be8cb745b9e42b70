/* backoff.h — reconnecting to something that is down: capped exponential
 * back-off with jitter, and a log that says what is down and since when.
 * Something that refuses the configuration (a wrong password) is no
 * outage: it is retried every BACKOFF_REFUSED_MS, each refusal logged. */
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
    bool refused;         /* the last failure was a refusal of the configuration */
    unsigned seed;
} Backoff;

/* Between two attempts after a refusal of the configuration. */
#define BACKOFF_REFUSED_MS 30000

void backoff_init(Backoff *b, const char *who, const char *what, int max_ms);

/* A failure: logs it, then sleeps the next delay (100 ms doubling up to
 * max_ms, each drawn in [delay/2, delay]). False once the drain deadline has
 * passed: give up the work in hand. */
bool backoff_failed(Backoff *b, const char *error) __attribute__((warn_unused_result));

/* The same without sleeping: the delay to wait before the next attempt,
 * at most cap_ms. */
int64_t backoff_note(Backoff *b, const char *error, int64_t cap_ms);

/* A refusal of the configuration (error names the setting): logged at
 * error level each time, the component down with error as its reason;
 * then sleeps BACKOFF_REFUSED_MS. False once a stop is asked. */
bool backoff_refused(Backoff *b, const char *error) __attribute__((warn_unused_result));
/* The same without sleeping: the delay to wait. */
int64_t backoff_refused_note(Backoff *b, const char *error);

/* A success: logs the recovery when it was down. */
void backoff_ok(Backoff *b);

#endif
