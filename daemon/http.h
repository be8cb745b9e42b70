/* http.h — the HTTP server on http.listen: GET /metrics (Prometheus text),
 * /healthz (the process answers), /readyz (503 and a JSON body naming what
 * is down or awaited: metrics_down_json), the read API /v1/stats/...,
 * /v1/edges/... (http.token checked here; answered by http_read.h's read
 * threads, with their own Redis connections, so the operations endpoints
 * answer whatever the /v1/ clients or Redis do), the POST routes of
 * http_write.h (writes stored by http_source.h's thread), and the relation
 * card page /ui/ with /v1/relations and /v1/triggers/stream (http_ui.h; the
 * token checked here for the /v1/ ones). Threads of its own
 * (libmicrohttpd's, a deadline sweeper, the read threads), started by
 * http_start and joined by http_stop, both called by one thread; the
 * connection limits and deadlines are described in http.c and the README.
 * Failure: http_start returns NULL with the reason; later, a request that
 * meets out of memory is answered 503 or its connection closed. */
#ifndef RELATIOND_HTTP_H
#define RELATIOND_HTTP_H

#include "daemon/http_source.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct Http Http;

/* Listens on "host:port" ("[::1]:9464"); writes (borrowed, outliving the
 * server; NULL: writes are not served) stores the POSTed events. NULL with
 * the reason in err. */
Http *http_start(const char *listen, HttpSource *writes, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Answers the reads and writes still waiting with 503, then stops. */
void http_stop(Http *h);

/* given equals token (both of that many bytes), in a time that depends on
 * glen only: no branch on either's bytes, none on where they differ. */
bool http_token_equal(const char *given, size_t glen, const char *token, size_t tlen);

/* The request carries "Authorization: Bearer <token>" (always true for a
 * NULL token). */
bool http_authorized(struct MHD_Connection *c, const char *token);

/* Queues body (malloc'ed, taken; NULL: out of memory, the connection is
 * closed) as the answer with status and Content-Type type. */
enum MHD_Result http_reply(struct MHD_Connection *c, unsigned status, const char *type,
                           char *body);

#endif
