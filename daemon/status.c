/* status.c — STATUS= and the watchdog (status.h). The live summary keeps
 * the previous call's event count and time (static: the main thread's). */
#include "daemon/status.h"
#include "daemon/lifecycle.h"
#include "daemon/metrics.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <stdlib.h>
#include <systemd/sd-daemon.h>

void status_notify(bool ready, const KafkaSource *k, const AmqpSource *a, bool redis)
{
    static unsigned long last_events;
    static int64_t last_ms;
    if (!ready) {
        bool up;
        char *down = metrics_down_json(&up);
        sd_notifyf(0, "STATUS=waiting for%s%s%s%s", k && !kafka_source_ready(k) ? " kafka" : "",
                   a && !amqp_source_ready(a) ? " amqp" : "", redis ? " redis" : "",
                   up || !down ? "" : " (down: see /readyz)");
        free(down);
        return;
    }
    unsigned long events = metrics_events_total();
    int64_t now = clock_now_ms();
    double rate = last_ms && now > last_ms ? (events - last_events) * 1000.0 / (now - last_ms) : 0;
    long long lag;
    if (k && metrics_kafka_lag_total(&lag))
        sd_notifyf(0, "STATUS=ready: %lu events, %.0f/s, kafka lag %lld", events, rate, lag);
    else
        sd_notifyf(0, "STATUS=ready: %lu events, %.0f/s", events, rate);
    last_events = events;
    last_ms = now;
}

void watchdog_init(Watchdog *w)
{
    w->usec = 0;
    if (sd_watchdog_enabled(0, &w->usec) <= 0)
        w->usec = 0;
    w->next_ping = clock_now_ms() + (int64_t)(w->usec / 2000);
    w->stalled = false;
}

void watchdog_tick(Watchdog *w)
{
    if (!w->usec || clock_now_ms() < w->next_ping)
        return;
    w->next_ping = clock_now_ms() + (int64_t)(w->usec / 2000);
    if (lifecycle_all_beat()) {
        sd_notify(0, "WATCHDOG=1");
        if (w->stalled)
            log_at(LOG_INFO, "main", "the source threads are turning again");
        w->stalled = false;
    } else if (!w->stalled) {
        log_at(LOG_ERROR, "main", "a source thread made no progress for %llu ms: "
               "the watchdog is not pinged", (unsigned long long)(w->usec / 2000));
        w->stalled = true;
    }
}

int64_t watchdog_wait_ms(const Watchdog *w, bool ready)
{
    int64_t wait_ms = w->usec ? w->next_ping - clock_now_ms() : 1000;
    if (wait_ms > (ready ? 1000 : 100))
        wait_ms = ready ? 1000 : 100;
    if (wait_ms < 1)
        wait_ms = 1;
    return wait_ms;
}
