/* probe.c — relationd --check-config --connect (probe.h): Redis by PING
 * and, unless redis.engine is function, MODULE LIST (the engine it gets),
 * each AMQP URL by a login, the Kafka brokers and topics by a metadata
 * request (kafka_source_probe, within 5 s). Every connection opened here is
 * closed before returning; a failure is reported and the next server tried. */
#include "daemon/probe.h"
#include "daemon/amqp_conn.h"
#include "daemon/kafka_source.h"
#include "handlers/engine.h"
#include "handlers/store.h"

#include <stdio.h>

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
    const struct {
        bool on;
        const char *name, *url;
        const TlsConfig *tls;
    } amqp[] = {{cfg->has_amqp, "amqp", cfg->amqp.url, &cfg->amqp.tls},
                {cfg->has_hooks, "hooks", cfg->hooks_url, &cfg->hooks_tls}};
    for (int i = 0; i < 2; i++) {
        if (!amqp[i].on)
            continue;
        amqp_connection_state_t c = amqp_conn_open(amqp[i].url, amqp[i].tls, err, sizeof err);
        if (c)
            printf("%s: ok (logged in)\n", amqp[i].name);
        else
            fprintf(stderr, "relationd: %s: %s\n", amqp[i].name, err);
        ok &= c != NULL;
        amqp_conn_close(c);
    }
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
