/* probe.h — relationd --check-config --connect: each server the
 * configuration names is asked once whether it answers (Redis, each AMQP
 * URL, the Kafka brokers and topics). Main thread, before anything starts;
 * nothing kept. */
#ifndef RELATIOND_PROBE_H
#define RELATIOND_PROBE_H

#include "config/config.h"

#include <stdbool.h>

/* One line each on stdout when it answers ("redis HOST:PORT: ok",
 * "amqp: ok (logged in)", "kafka: ok (N brokers)"), on stderr with the
 * reason when not ("relationd: ..."). false when one did not answer. */
bool probe_servers(const Config *cfg);

#endif
