/* http_read.h — the read API /v1/stats/<relation>/<side>/<profile> and
 * /v1/edges/<relation>/<side>/<profile>?limit=&cursor= behind the HTTP
 * server (http.c, which routes to it and checks the token first), and the
 * same reads in the platform's shape: POST /api/v1.1/relations/get and
 * get_counter (http_read_api, their body read by http_write.c).
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
#include "daemon/shared_config.h"
#include "handlers/engine.h"
#include "lib/jsonbuf.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct HttpReads HttpReads;

/* What a request's state (libmicrohttpd's per-request pointer) starts
 * with: whose it is, so that the server hands its end to its owner. */
typedef enum { HTTP_STATE_READ, HTTP_STATE_POST } HttpStateKind;
typedef struct {
    HttpStateKind kind;
} HttpState;

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

/* POST /api/v1.1/relations/<what> ("get" or "get_counter") with its JSON
 * body (len bytes: rel_id, profile_id, optional direction, limit, cursor),
 * its token already checked: as http_read_request, the answers in the
 * platform's shape ({"error": 0, "error_text": "Successful", "data": ...}
 * or http_api_error_body). */
bool http_read_api(HttpReads *r, struct MHD_Connection *c, const char *what, const char *body,
                   size_t len, const Config *cfg, void **state, unsigned *status, char **out);

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
/* The platform's error: {"error": status, "error_text": msg}\n (NULL when
 * out of memory). */
char *http_api_error_body(unsigned status, const char *msg) __attribute__((warn_unused_result));

/* A reader's configuration (*ref: the one its engine works with, NULL at
 * first) and engine (*engine: created reading on the first call),
 * switched to a reloaded configuration; NULL when out of memory (then the
 * previous one, if any, stays). One thread's. */
const Config *http_reader_current(ConfigRef **ref, Engine **engine);

/* One side's statistics (the shape relationctl stats prints) appended to
 * out, read through e (its thread's). False with err (Redis's failure). */
bool http_read_stats_json(Engine *e, const RelationDef *rel, Side side, const char *profile,
                          JsonBuf *out, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
