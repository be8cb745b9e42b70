/* http_read.h — the read API /v1/stats/<relation>/<side>/<profile> and
 * /v1/edges/<relation>/<side>/<profile>?limit=&cursor= behind the HTTP
 * server (http.c, which routes to it and checks the token first).
 *
 * A request is checked on the server's thread (path, relation, side,
 * profile, arguments: 400/404 with {"error": ...}), then its connection is
 * suspended and the read queued for one of the read threads, each with its
 * own engine (its own Redis connection); the thread that answers it resumes
 * the connection. A read not answered within redis.timeout_ms of its
 * arrival (queued or stalled in Redis alike) is answered 503 by
 * http_reads_sweep; more than the queue holds: 503 at once.
 *
 * Threads: http_read_request and http_read_completed run on the server's
 * threads, http_reads_sweep on its sweeper; one lock of its own guards the
 * queue and every read's answer. Failure: out of memory answers 503, or a
 * NULL body (the server then closes the connection). */
#ifndef RELATIOND_HTTP_READ_H
#define RELATIOND_HTTP_READ_H

#include "config/config.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct HttpReads HttpReads;

/* Starts the read threads; NULL when one cannot start (none is left
 * running then). */
HttpReads *http_reads_start(void) __attribute__((warn_unused_result));

/* url starts /v1/stats/ or /v1/edges/. */
bool http_read_path(const char *url);

/* The request on c for path (http_read_path), under cfg, its token already
 * checked. true with the answer to send now: *status and a JSON *body of
 * the caller's (NULL when out of memory). false when it is queued: c is
 * suspended, *state holds the read until http_read_completed; when c is
 * resumed, the same call (with that *state) gives the answer. */
bool http_read_request(HttpReads *r, struct MHD_Connection *c, const char *path,
                       const Config *cfg, void **state, unsigned *status, char **body);

/* The request holding state (non-NULL) ended: its hold is dropped. */
void http_read_completed(HttpReads *r, void *state);

/* Answers 503 every read past its deadline at now (clock_now_ms), queued or
 * running, and resumes its connection. */
void http_reads_sweep(HttpReads *r, int64_t now);

/* Stops the read threads; the reads still queued are answered 503 and
 * resumed (libmicrohttpd must not stop with a connection suspended); new
 * ones get 503. Before MHD_stop_daemon. */
void http_reads_stop(HttpReads *r);

/* Frees r (stopped), its engines and configurations. After
 * MHD_stop_daemon, which ends every request holding a read. */
void http_reads_free(HttpReads *r);

/* {"error": msg}\n, NULL when out of memory (the body of the server's own
 * errors too). */
char *http_read_error_body(const char *msg) __attribute__((warn_unused_result));

#endif
