/* backoff.c — capped exponential back-off with jitter (backoff.h). */
#include "daemon/backoff.h"
#include "lib/clock.h"
#include "daemon/lifecycle.h"
#include "lib/log.h"
#include "daemon/metrics.h"

#include <stdlib.h>
#include <unistd.h>

#define BACKOFF_BASE_MS 100
#define BACKOFF_LOG_EVERY_MS 10000

void backoff_init(Backoff *b, const char *who, const char *what, int max_ms)
{
    b->who = who;
    b->what = what;
    b->max_ms = max_ms;
    b->attempt = 0;
    b->down_ms = 0;
    b->down_wall = 0;
    b->next_log_ms = 0;
    b->refused = false;
    b->seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)b;
    metrics_component(who, what, true); /* listed from the start */
}

int64_t backoff_note(Backoff *b, const char *error, int64_t cap_ms)
{
    int64_t now = clock_now_ms();
    if (b->attempt == 0 || b->refused) {
        metrics_component(b->who, b->what, false);
        b->down_ms = b->attempt == 0 ? now : b->down_ms;
        b->down_wall = b->attempt == 0 ? time(NULL) : b->down_wall;
        b->next_log_ms = now;
        b->refused = false;
    }
    int64_t delay = BACKOFF_BASE_MS;
    for (int i = 0; i < b->attempt && delay < b->max_ms; i++)
        delay *= 2;
    if (delay > b->max_ms)
        delay = b->max_ms;
    if (delay > cap_ms)
        delay = cap_ms;
    delay = delay / 2 + rand_r(&b->seed) % (delay / 2 + 1);
    b->attempt++;

    if (now >= b->next_log_ms) {
        struct tm tm;
        char since[32];
        gmtime_r(&b->down_wall, &tm);
        strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
        log_at(LOG_ERROR, b->who, "%s down since %s (%lld s, %d attempts): %s; retrying in %lld ms",
               b->what, since, (long long)(now - b->down_ms) / 1000, b->attempt, error,
               (long long)delay);
        b->next_log_ms = now + BACKOFF_LOG_EVERY_MS;
    }
    return delay;
}

bool backoff_failed(Backoff *b, const char *error)
{
    int64_t delay = backoff_note(b, error, b->max_ms);
    if (lifecycle_deadline_passed())
        return false;
    lifecycle_sleep_ms(delay);
    return !lifecycle_deadline_passed();
}

int64_t backoff_refused_note(Backoff *b, const char *error)
{
    if (b->attempt == 0) {
        b->down_ms = clock_now_ms();
        b->down_wall = time(NULL);
    }
    b->attempt++;
    b->refused = true;
    metrics_component_refused(b->who, b->what, error);
    log_at(LOG_ERROR, b->who, "%s refused the configuration: %s; retrying in %d s", b->what,
           error, BACKOFF_REFUSED_MS / 1000);
    return BACKOFF_REFUSED_MS;
}

bool backoff_refused(Backoff *b, const char *error)
{
    int64_t until = clock_now_ms() + backoff_refused_note(b, error);
    /* Nothing comes of waiting once a stop is asked: no batch in hand is
     * applied before the configuration is fixed. */
    while (clock_now_ms() < until && !lifecycle_stopping())
        lifecycle_sleep_ms(100);
    return !lifecycle_stopping();
}

void backoff_ok(Backoff *b)
{
    if (b->attempt == 0)
        return;
    metrics_component(b->who, b->what, true);
    log_at(LOG_INFO, b->who, "%s back after %lld s (%d attempts)", b->what,
           (long long)(clock_now_ms() - b->down_ms) / 1000, b->attempt);
    b->attempt = 0;
    b->refused = false;
}
