/* store.h — the Redis connection: URL parsing, connect, AUTH, SELECT. */
#ifndef RELATIOND_STORE_H
#define RELATIOND_STORE_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* Connects to redis://[[user]:password@]host[:port][/db] with timeout_ms for the
 * connection and every command. NULL with a message in err on failure. */
redisContext *store_connect(const char *url, int timeout_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
