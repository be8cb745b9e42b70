/* kafka_conf.h — the configuration of every Kafka client of relationd and
 * relationctl: the daemon's consumer and dead-letter producer, its
 * --check-config --connect probe, relationctl send's producer, relationctl
 * redrive's consumer and producer. Each is kafka.brokers, the client's own
 * settings, then kafka.properties unchanged (TLS, SASL, timeouts), so every
 * client reaches the cluster the same way. No state, no threads. */
#ifndef RELATIOND_KAFKA_CONF_H
#define RELATIOND_KAFKA_CONF_H

#include "config/config.h"

#include <librdkafka/rdkafka.h>
#include <stddef.h>

/* One librdkafka setting of a client. */
typedef struct {
    const char *key, *value;
} KafkaSetting;

/* A new configuration: bootstrap.servers = k->brokers, then settings (the
 * client's own; NULL, or ended by {NULL, NULL}), then kafka.properties,
 * which may change a setting (config.c refuses the properties that would
 * break a guarantee: acks below all, group.id, auto-commit and the like). A property
 * librdkafka does not know, or whose value it refuses, is an error: NULL,
 * with err naming it ("kafka.properties.KEY: why", "kafka.brokers: why").
 * The caller owns the result (rd_kafka_new takes it when it succeeds). */
rd_kafka_conf_t *kafka_conf_new(const KafkaConfig *k, const KafkaSetting *settings, char *err,
                                size_t errlen) __attribute__((warn_unused_result));

#endif
