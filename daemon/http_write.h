/* http_write.h — the POST routes of the HTTP server (http.c routes them
 * here): the writes POST /v1/events (one event as on Kafka, or JSON lines)
 * and POST /api/v1.1/relations/{attach,edit,strengthen,detach} (the
 * platform's body), and the platform's reads POST
 * /api/v1.1/relations/{get,get_counter} (handed to http_read_api).
 *
 * A POST's body is collected up to http.max_body_bytes (413 beyond, at
 * once when Content-Length says so), its token checked (writes:
 * http.write_token when set, else http.token; reads: http.token), each
 * event checked as the pipeline will (event_parse: 400 naming what and
 * where, 404 for an unknown relation), given an id when it has none (the
 * Idempotency-Key header, with ":<line>" for a batch; else a random one),
 * then submitted to the HTTP source (http_source.h), which answers it once
 * stored. Every answer is in the platform's shape.
 *
 * Threads: libmicrohttpd's (the server's). Ownership: a request's state
 * (its body, its write or read) is allocated by http_post and freed by
 * http_post_completed. Failure: out of memory answers 503 or closes the
 * connection. */
#ifndef RELATIOND_HTTP_WRITE_H
#define RELATIOND_HTTP_WRITE_H

#include "daemon/http_read.h"
#include "daemon/http_source.h"

#include <microhttpd.h>
#include <stdbool.h>

/* url is one of the POST routes (/v1/events, /api/...). */
bool http_post_path(const char *url);

/* libmicrohttpd's request callback for a POST on such a url (src NULL:
 * writes are not served, relationd has no hooks). */
enum MHD_Result http_post(HttpReads *reads, HttpSource *src, struct MHD_Connection *c,
                          const char *url, const char *upload, size_t *upload_size,
                          void **state);

/* The request holding state (an HTTP_STATE_POST) ended. */
void http_post_completed(HttpReads *reads, HttpSource *src, void *state);

#endif
