/* probe.c — relationd --check-config --connect (probe.h): Redis by PING
 * and, unless redis.engine is function, MODULE LIST (the engine it gets),
 * the AMQP source by a login, the Kafka brokers and topics by a metadata
 * request (kafka_source_probe, within 5 s), each hook's destination as
 * hook_sink_probe checks it. Every connection opened here is
 * closed before returning; a failure is reported and the next server tried. */
#include "daemon/probe.h"
#include "daemon/amqp_conn.h"
#include "daemon/hook_sink.h"
#include "daemon/kafka_source.h"
#include "handlers/engine.h"
#include "handlers/store.h"

#include <stdio.h>
#include <string.h>

/* One hook's destination: a kafka hook's brokers and topic as the
 * source's (kafka_source_probe, with the hook's properties), an amqp or
 * http hook's by hook_sink_probe. "hook NAME: ok (...)", or "relationd:
 * hook NAME: <reason>" on stderr. */
static bool probe_hook(const HookDef *def)
{
    char err[512] = "", what[256];
    bool ok;
    if (def->kind == HOOK_KAFKA) {
        char *topics[] = {def->topic};
        KafkaConfig k = {0};
        k.brokers = def->brokers;
        k.topics = topics;
        k.ntopics = 1;
        k.property_keys = def->property_keys;
        k.property_values = def->property_values;
        k.nproperties = def->nproperties;
        ok = kafka_source_probe(&k, 5000, what, sizeof what, err, sizeof err);
    } else {
        HookSink *s = hook_sink_new(def, 1000, err, sizeof err);
        ok = s && hook_sink_probe(s, what, sizeof what, err, sizeof err);
        hook_sink_free(s);
    }
    char head[HOOK_NAME_MAX + 8] = ""; /* hook_sink_new's messages name the hook already */
    if (strncmp(err, "hook ", 5) != 0)
        snprintf(head, sizeof head, "hook %s: ", def->name);
    if (ok)
        printf("hook %s: ok (%s)\n", def->name, what);
    else
        fprintf(stderr, "relationd: %s%s\n", head, err);
    return ok;
}

bool probe_servers(const Config *cfg)
{
    char err[512], what[128];
    bool ok = true;
    redisContext *r = store_connect(cfg, err, sizeof err);
    redisReply *pong = r ? redisCommand(r, "PING") : NULL;
    if (pong && pong->type != REDIS_REPLY_ERROR) {
        /* redis.engine: the module when asked for (or, auto, loaded) */
        bool module = false;
        redisReply *list = cfg->redis_engine != 1 ? redisCommand(r, "MODULE LIST") : NULL;
        if (cfg->redis_engine != 1 && !list) {
            fprintf(stderr, "relationd: redis MODULE LIST: %s\n", r->errstr);
            ok = false;
        } else if (list && !engine_choose(cfg, list, &module, err, sizeof err)) {
            fprintf(stderr, "relationd: %s\n", err);
            ok = false;
        } else {
            printf("redis %s:%d: ok, engine %s\n", cfg->redis.host, cfg->redis.port,
                   module ? "module" : "function");
        }
        if (list)
            freeReplyObject(list);
    } else if (pong && engine_passing(pong->str)) {
        /* still loading its data, or busy: the server's state, not the
         * configuration's (the daemon waits for it) */
        fprintf(stderr, "relationd: redis %s:%d: %s (the server is not ready yet: try again)\n",
                cfg->redis.host, cfg->redis.port, pong->str);
        ok = false;
    } else {
        fprintf(stderr, "relationd: %s\n",
                r ? (pong ? pong->str : r->errstr) : err);
        ok = false;
    }
    if (pong)
        freeReplyObject(pong);
    if (r)
        redisFree(r);
    if (cfg->has_amqp) {
        amqp_connection_state_t c = amqp_conn_open(cfg->amqp.url, &cfg->amqp.tls, err,
                                                   sizeof err);
        if (c)
            printf("amqp: ok (logged in)\n");
        else
            fprintf(stderr, "relationd: amqp: %s\n", err);
        ok &= c != NULL;
        amqp_conn_close(c);
    }
    for (int i = 0; i < cfg->nhooks; i++)
        ok &= probe_hook(&cfg->hooks[i]);
    if (cfg->has_kafka) {
        if (kafka_source_probe(&cfg->kafka, 5000, what, sizeof what, err, sizeof err))
            printf("kafka: ok (%s)\n", what);
        else {
            fprintf(stderr, "relationd: %s\n", err);
            ok = false;
        }
    }
    return ok;
}
