/* kafka_conf.c — one Kafka client configuration for every client
 * (kafka_conf.h). */
#include "daemon/kafka_conf.h"

#include <stdio.h>

rd_kafka_conf_t *kafka_conf_new(const KafkaConfig *k, const KafkaSetting *settings, char *err,
                                size_t errlen)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        snprintf(err, errlen, "kafka: out of memory");
        return NULL;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", k->brokers, why, sizeof why) !=
        RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka.brokers: %s", why);
        goto fail;
    }
    for (const KafkaSetting *s = settings; s && s->key; s++)
        if (rd_kafka_conf_set(conf, s->key, s->value, why, sizeof why) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "kafka: %s", why); /* the program's own: a bug */
            goto fail;
        }
    for (int i = 0; i < k->nproperties; i++)
        if (rd_kafka_conf_set(conf, k->property_keys[i], k->property_values[i], why,
                              sizeof why) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "kafka.properties.%s: %s", k->property_keys[i], why);
            goto fail;
        }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}
