/* store.c — connects to Redis as redis.url says. */
#include "handlers/store.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char user[256];
    char password[256];
    char host[256];
    int port;
    int db;
} RedisUrl;

static bool copy_part(char *dst, size_t cap, const char *from, size_t len)
{
    if (len >= cap)
        return false;
    memcpy(dst, from, len);
    dst[len] = '\0';
    return true;
}

static bool parse_url(const char *url, RedisUrl *u, char *err, size_t errlen)
{
    const char *p = url + strlen("redis://");
    const char *at, *slash, *hostend, *colon;
    memset(u, 0, sizeof *u);
    u->port = 6379;

    if (strncmp(url, "redis://", 8) != 0)
        goto bad;
    slash = strchr(p, '/');
    at = NULL;
    for (const char *q = p; *q && (!slash || q < slash); q++)
        if (*q == '@')
            at = q; /* the last @ before the path: passwords may contain @ */
    if (at) {
        const char *c = memchr(p, ':', (size_t)(at - p));
        if (c) {
            if (!copy_part(u->user, sizeof u->user, p, (size_t)(c - p)) ||
                !copy_part(u->password, sizeof u->password, c + 1, (size_t)(at - c - 1)))
                goto bad;
        } else if (!copy_part(u->user, sizeof u->user, p, (size_t)(at - p))) {
            goto bad;
        }
        p = at + 1;
    }
    hostend = slash ? slash : p + strlen(p);
    colon = memchr(p, ':', (size_t)(hostend - p));
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != hostend || port < 1 || port > 65535)
            goto bad;
        u->port = (int)port;
    } else {
        colon = hostend;
    }
    if (colon == p || !copy_part(u->host, sizeof u->host, p, (size_t)(colon - p)))
        goto bad;
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 1000000)
            goto bad;
        u->db = (int)db;
    }
    return true;
bad:
    snprintf(err, errlen, "redis.url: cannot parse (expected redis://[[user]:password@]host[:port][/db])");
    return false;
}

static bool command_ok(redisContext *c, char *err, size_t errlen, const char *what,
                       redisReply *r)
{
    if (!r) {
        snprintf(err, errlen, "redis %s: %s", what, c->errstr);
        return false;
    }
    bool ok = r->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(err, errlen, "redis %s: %s", what, r->str);
    freeReplyObject(r);
    return ok;
}

redisContext *store_connect(const char *url, int timeout_ms, char *err, size_t errlen)
{
    RedisUrl u;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c;

    if (!parse_url(url, &u, err, errlen))
        return NULL;
    c = redisConnectWithTimeout(u.host, u.port, tv);
    if (!c) {
        snprintf(err, errlen, "redis %s:%d: out of memory", u.host, u.port);
        return NULL;
    }
    if (c->err) {
        snprintf(err, errlen, "redis %s:%d: %s", u.host, u.port, c->errstr);
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis %s:%d: cannot set timeout", u.host, u.port);
        goto fail;
    }
    if (u.password[0]) {
        redisReply *r = u.user[0] ? redisCommand(c, "AUTH %s %s", u.user, u.password)
                                  : redisCommand(c, "AUTH %s", u.password);
        if (!command_ok(c, err, errlen, "AUTH", r))
            goto fail;
    }
    if (u.db && !command_ok(c, err, errlen, "SELECT", redisCommand(c, "SELECT %d", u.db)))
        goto fail;
    return c;
fail:
    redisFree(c);
    return NULL;
}
