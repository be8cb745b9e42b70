/* reload.c — what a reload (SIGHUP) may change: the connection settings
 * (redis, kafka, amqp, hooks, http but its token; the rows of config.c's
 * table marked not reloadable) are kept from the running configuration and
 * the sections that differed are named, for the daemon to warn. Works on
 * the fresh configuration only (the running one is read, never written);
 * out of memory leaves fresh fit only for config_free. The properties'
 * history across reloads is config/history.c. */
#include "config/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool strings_same(char **a, char **b, int n)
{
    for (int i = 0; i < n; i++)
        if (!str_same(a[i], b[i]))
            return false;
    return true;
}

static bool kafka_same(const Config *a, const Config *b)
{
    const KafkaConfig *x = &a->kafka, *y = &b->kafka;
    return a->has_kafka == b->has_kafka && str_same(x->brokers, y->brokers) &&
           str_same(x->group_id, y->group_id) && x->ntopics == y->ntopics &&
           strings_same(x->topics, y->topics, x->ntopics) &&
           str_same(x->dead_letter_topic, y->dead_letter_topic) &&
           x->nproperties == y->nproperties &&
           strings_same(x->property_keys, y->property_keys, x->nproperties) &&
           strings_same(x->property_values, y->property_values, x->nproperties);
}

static void note_change(char *changed, size_t len, const char *what)
{
    size_t used = strlen(changed);
    snprintf(changed + used, len - used, "%s%s", used ? ", " : "", what);
}

static bool dup_strings(char ***dst, int *ndst, char *const *src, int n)
{
    free_strings(*dst, *ndst);
    *dst = NULL;
    *ndst = 0;
    if (n == 0)
        return true;
    *dst = calloc((size_t)n, sizeof **dst);
    if (!*dst)
        return false;
    *ndst = n;
    for (int i = 0; i < n; i++)
        if (!dup_str(&(*dst)[i], src[i]))
            return false;
    return true;
}

static bool dup_properties(KafkaConfig *dst, const KafkaConfig *src)
{
    int nk = 0, nv = 0;
    free_strings(dst->property_keys, dst->nproperties);
    free_strings(dst->property_values, dst->nproperties);
    dst->property_keys = dst->property_values = NULL;
    dst->nproperties = 0;
    if (!dup_strings(&dst->property_keys, &nk, src->property_keys, src->nproperties) ||
        !dup_strings(&dst->property_values, &nv, src->property_values, src->nproperties)) {
        free_strings(dst->property_keys, nk);
        free_strings(dst->property_values, nv);
        dst->property_keys = dst->property_values = NULL;
        return false;
    }
    dst->nproperties = src->nproperties;
    return true;
}

static bool tls_same(const TlsConfig *a, const TlsConfig *b)
{
    return a->verify == b->verify && str_same(a->ca, b->ca) && str_same(a->cert, b->cert) &&
           str_same(a->key, b->key);
}

bool config_keep_connections(Config *fresh, const Config *running, char *changed, size_t len)
{
    changed[0] = '\0';
    if (!str_same(fresh->redis_url, running->redis_url) ||
        !str_same(fresh->key_prefix, running->key_prefix) ||
        fresh->redis_timeout_ms != running->redis_timeout_ms ||
        fresh->wait_replicas != running->wait_replicas || fresh->nseeds != running->nseeds ||
        fresh->nsentinels != running->nsentinels ||
        memcmp(fresh->seeds, running->seeds, sizeof fresh->seeds) != 0 ||
        memcmp(fresh->sentinels, running->sentinels, sizeof fresh->sentinels) != 0 ||
        strcmp(fresh->master_name, running->master_name) != 0)
        note_change(changed, len, "redis");
    if (!kafka_same(fresh, running))
        note_change(changed, len, "kafka");
    if (fresh->has_amqp != running->has_amqp || !str_same(fresh->amqp.url, running->amqp.url) ||
        !str_same(fresh->amqp.queue, running->amqp.queue) ||
        /* a default prefetch follows engine.batch_size: not a change of amqp */
        (fresh->amqp.prefetch != running->amqp.prefetch &&
         !(fresh->amqp.prefetch_default && running->amqp.prefetch_default)) ||
        !str_same(fresh->amqp.dead_letter_exchange, running->amqp.dead_letter_exchange) ||
        fresh->amqp.declare != running->amqp.declare ||
        !tls_same(&fresh->amqp.tls, &running->amqp.tls) ||
        !(fresh->amqp.queue_arguments == running->amqp.queue_arguments ||
          (fresh->amqp.queue_arguments && running->amqp.queue_arguments &&
           json_equal(fresh->amqp.queue_arguments, running->amqp.queue_arguments))))
        note_change(changed, len, "amqp");
    if (fresh->has_hooks != running->has_hooks || !str_same(fresh->hooks_url, running->hooks_url) ||
        !str_same(fresh->hooks_exchange, running->hooks_exchange) ||
        fresh->hooks_declare != running->hooks_declare ||
        !tls_same(&fresh->hooks_tls, &running->hooks_tls))
        note_change(changed, len, "hooks");
    if (fresh->has_http != running->has_http || !str_same(fresh->http_listen, running->http_listen))
        note_change(changed, len, "http");

    const KafkaConfig *rk = &running->kafka;
    KafkaConfig *fk = &fresh->kafka;
    fresh->redis = running->redis;
    fresh->redis_timeout_ms = running->redis_timeout_ms;
    fresh->wait_replicas = running->wait_replicas;
    memcpy(fresh->seeds, running->seeds, sizeof fresh->seeds);
    fresh->nseeds = running->nseeds;
    memcpy(fresh->sentinels, running->sentinels, sizeof fresh->sentinels);
    fresh->nsentinels = running->nsentinels;
    memcpy(fresh->master_name, running->master_name, sizeof fresh->master_name);
    fresh->has_kafka = running->has_kafka;
    fresh->has_amqp = running->has_amqp;
    fresh->amqp.prefetch = running->amqp.prefetch;
    fresh->amqp.prefetch_default = running->amqp.prefetch_default;
    fresh->amqp.declare = running->amqp.declare;
    fresh->hooks_declare = running->hooks_declare;
    config_tls_free(&fresh->amqp.tls);
    config_tls_free(&fresh->hooks_tls);
    if (!config_tls_copy(&fresh->amqp.tls, &running->amqp.tls) ||
        !config_tls_copy(&fresh->hooks_tls, &running->hooks_tls))
        return false;
    json_decref(fresh->amqp.queue_arguments);
    fresh->amqp.queue_arguments =
        running->amqp.queue_arguments ? json_deep_copy(running->amqp.queue_arguments) : NULL;
    if (running->amqp.queue_arguments && !fresh->amqp.queue_arguments)
        return false;
    fresh->has_hooks = running->has_hooks;
    fresh->has_http = running->has_http;
    return dup_str(&fresh->redis_url, running->redis_url) &&
           dup_str(&fresh->key_prefix, running->key_prefix) &&
           dup_str(&fk->brokers, rk->brokers) && dup_str(&fk->group_id, rk->group_id) &&
           dup_strings(&fk->topics, &fk->ntopics, rk->topics, rk->ntopics) &&
           dup_str(&fk->dead_letter_topic, rk->dead_letter_topic) &&
           dup_properties(fk, rk) &&
           dup_str(&fresh->amqp.url, running->amqp.url) &&
           dup_str(&fresh->amqp.queue, running->amqp.queue) &&
           dup_str(&fresh->amqp.dead_letter_exchange, running->amqp.dead_letter_exchange) &&
           dup_str(&fresh->hooks_url, running->hooks_url) &&
           dup_str(&fresh->hooks_exchange, running->hooks_exchange) &&
           dup_str(&fresh->http_listen, running->http_listen);
}

