/* kafka_source.h — the Kafka source: a consumer group over the configured
 * topics, batches through the pipeline, bad messages to the dead-letter
 * topic, offsets committed only after all that. Runs in its own thread. */
#ifndef RELATIOND_KAFKA_SOURCE_H
#define RELATIOND_KAFKA_SOURCE_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct KafkaSource KafkaSource;

/* Creates the consumer and the dead-letter producer from the running
 * configuration (a property librdkafka refuses is an error here). */
KafkaSource *kafka_source_new(char *err, size_t errlen) __attribute__((warn_unused_result));

/* Checks kafka.properties with librdkafka (relationd --check-config). */
bool kafka_source_check(const KafkaConfig *k, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Asks the brokers for the cluster's metadata (kafka.properties applied:
 * TLS, SASL) within timeout_ms; writes "N brokers" to what, or the reason
 * (a missing topic included) to err. */
bool kafka_source_probe(const KafkaConfig *k, int timeout_ms, char *what, size_t whatlen,
                        char *err, size_t errlen) __attribute__((warn_unused_result));

/* Starts the thread; it drains and closes once the lifecycle says stop. */
bool kafka_source_start(KafkaSource *s) __attribute__((warn_unused_result));

/* True once the thread has closed everything. */
bool kafka_source_done(const KafkaSource *s);
/* Redis and the hooks exchange have been connected and partitions assigned
 * (or the group joined with none to own); false again from a lost
 * assignment or an eager revocation until the next assignment. /readyz
 * follows it ("waiting": partition assignment). */
bool kafka_source_ready(const KafkaSource *s);

/* Joins the thread (when started) and frees everything. */
void kafka_source_free(KafkaSource *s);

#endif
