/* status.h — what relationd tells systemd while it runs: the STATUS= line
 * (what is awaited, or a short live summary) and the watchdog pings
 * (WatchdogSec=), sent only while every source thread's loop turned since
 * the previous ping (lifecycle_all_beat). Main thread only; sd_notify's
 * failures are ignored (no systemd: nothing to tell). */
#ifndef RELATIOND_STATUS_H
#define RELATIOND_STATUS_H

#include "daemon/amqp_source.h"
#include "daemon/kafka_source.h"

#include <stdbool.h>
#include <stdint.h>

/* STATUS=: before ready, "waiting for" the sources not ready (k, a: NULL
 * when not configured) and redis when the read API's Redis is awaited;
 * once ready, the events counted and their rate since the previous call,
 * and the Kafka lag. */
void status_notify(bool ready, const KafkaSource *k, const AmqpSource *a, bool redis);

typedef struct {
    uint64_t usec;     /* WatchdogSec=, 0 when off */
    int64_t next_ping; /* clock_now_ms */
    bool stalled;      /* a ping was held back: said once */
} Watchdog;

/* Reads WatchdogSec= (from the environment systemd set). */
void watchdog_init(Watchdog *w);
/* Pings when half the period has passed, if every source thread turned;
 * logs the stall and the recovery once each. */
void watchdog_tick(Watchdog *w);
/* How long the main loop may wait for a signal: until the next ping, at
 * most 1000 ms once ready (100 ms before), at least 1 ms. */
int64_t watchdog_wait_ms(const Watchdog *w, bool ready);

#endif
