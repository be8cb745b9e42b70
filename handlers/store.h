/* store.h — the Redis connection: connect, AUTH, SELECT. */
#ifndef RELATIOND_STORE_H
#define RELATIOND_STORE_H

#include "config/config.h"

#include <hiredis/hiredis.h>
#include <stddef.h>

/* Connects to cfg's Redis with redis.timeout_ms for the connection and every
 * command; AUTH and SELECT as its URL says. NULL with a message on failure;
 * when Redis refuses AUTH or SELECT (a wrong user, password or database) the
 * message starts "redis.url: " and never holds the password. */
redisContext *store_connect(const Config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The same to another node (of a cluster): redis.url's user, password, db. */
redisContext *store_connect_to(const Config *cfg, const char *host, int port, char *err,
                               size_t errlen) __attribute__((warn_unused_result));

#endif
