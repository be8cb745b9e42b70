/* http_ui.h — the relation card page and its two endpoints behind the HTTP
 * server (http.c routes to it and checks http.token first where
 * http_ui_protected says so):
 *   GET /ui/, /ui/card.css, /ui/card.js   the page: static files embedded in
 *                                         the binary at build time (open);
 *   GET /v1/relations                     the configured relations, their
 *                                         properties and thresholds (JSON);
 *   GET /v1/triggers/stream               the triggers as they are published,
 *                                         server-sent events (trigger_feed.h).
 * The page reads the rest from /v1/stats, /v1/edges, /readyz and /metrics.
 *
 * Threads: libmicrohttpd's (the server's); a stream's connection is
 * suspended while it has nothing to send and resumed by whoever queues
 * something for it (trigger_feed.h). Ownership: a stream's state belongs to
 * its response, freed with it. Failure: out of memory answers 503 or closes
 * the connection; more than FEED_SUBS_MAX streams: 503. */
#ifndef RELATIOND_HTTP_UI_H
#define RELATIOND_HTTP_UI_H

#include "config/config.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

/* The path (no query) is one of this file's. */
bool http_ui_path(const char *url);
/* It needs the token (http.token), as the reads do. */
bool http_ui_protected(const char *url);

/* Answers the request for url (http_ui_path, its token checked), method GET
 * or HEAD, under cfg. */
enum MHD_Result http_ui_request(struct MHD_Connection *c, const char *url, const Config *cfg);

/* The server's sweeper, every 100 ms: the streams' keepalives. */
void http_ui_sweep(int64_t now);
/* The server stops: every stream ends (before MHD_stop_daemon, which must
 * not find a connection suspended), given up to STREAM_END_MS to send its
 * end before the connections are closed. */
void http_ui_stop(void);

#endif
