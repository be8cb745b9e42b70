/* store.c — connects to Redis as redis.url says (store.h). */
#include "handlers/store.h"

#include <stdbool.h>
#include <stdio.h>

static bool command_ok(redisContext *c, char *err, size_t errlen, const char *what,
                       redisReply *r)
{
    if (!r) {
        snprintf(err, errlen, "redis %s: %s", what, c->errstr);
        return false;
    }
    bool ok = r->type != REDIS_REPLY_ERROR;
    if (!ok) /* a refusal of the user, password or database: a configuration error */
        snprintf(err, errlen, "redis.url: redis %s: %s", what, r->str);
    freeReplyObject(r);
    return ok;
}

redisContext *store_connect(const Config *cfg, char *err, size_t errlen)
{
    return store_connect_to(cfg, cfg->redis.host, cfg->redis.port, err, errlen);
}

redisContext *store_connect_to(const Config *cfg, const char *host, int port, char *err,
                               size_t errlen)
{
    const RedisUrl *u = &cfg->redis;
    int timeout_ms = cfg->redis_timeout_ms;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c;

    c = redisConnectWithTimeout(host, port, tv);
    if (!c) {
        snprintf(err, errlen, "redis %s:%d: out of memory", host, port);
        return NULL;
    }
    if (c->err) {
        snprintf(err, errlen, "redis %s:%d: %s", host, port, c->errstr);
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis %s:%d: cannot set timeout", host, port);
        goto fail;
    }
    if (u->password[0]) {
        redisReply *r = u->user[0] ? redisCommand(c, "AUTH %s %s", u->user, u->password)
                                  : redisCommand(c, "AUTH %s", u->password);
        if (!command_ok(c, err, errlen, "AUTH", r))
            goto fail;
    }
    if (u->db && !command_ok(c, err, errlen, "SELECT", redisCommand(c, "SELECT %d", u->db)))
        goto fail;
    return c;
fail:
    redisFree(c);
    return NULL;
}
