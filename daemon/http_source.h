/* http_source.h — the HTTP writes as a source of events: the write
 * requests (http_write.h checks them) are queued here and taken in batches
 * by a thread of its own that drives a Pipeline (pipeline.h) like the Kafka
 * and RabbitMQ sources: applied in the engine's atomic calls, their
 * triggers appended to every hook's backlog, then "acknowledged" — which
 * answers each request (200 with the sides' statistics read after, 400 for
 * an event the engine refused) and resumes its connection. Counted as
 * source="http".
 *
 * A write is one unit: all its events go into one batch. A write not
 * answered within http.write_timeout_ms of its arrival is answered 503 by
 * http_source_sweep (taken out of the queue if not yet in a batch; else the
 * batch may still store it: a retry with the same id is a duplicate).
 * More than http.max_writes waiting: 503 at once.
 *
 * Threads: http_source_submit, _answer and _completed run on the server's
 * threads, http_source_sweep on its sweeper, the pipeline on the source's
 * thread; one lock guards the queue, the count and every answer.
 * Ownership: a write is held by its connection (until _completed) and by
 * the source while queued or in a batch; the last holder frees it, and its
 * event texts are the write's. Failure: out of memory answers 503. */
#ifndef RELATIOND_HTTP_SOURCE_H
#define RELATIOND_HTTP_SOURCE_H

#include "config/config.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HttpSource HttpSource;
typedef struct HttpWrite HttpWrite;

/* From the running configuration (its thread not started). */
HttpSource *http_source_new(char *err, size_t errlen) __attribute__((warn_unused_result));
bool http_source_start(HttpSource *s) __attribute__((warn_unused_result));
/* True once the thread has finished (a stop asked: the writes in hand
 * stored and answered, those still queued answered 503). */
bool http_source_done(const HttpSource *s);
/* Answers 503 every write still waiting and resumes its connection: before
 * MHD_stop_daemon. */
void http_source_stop_writes(HttpSource *s);
/* Joins the thread and frees s (after MHD_stop_daemon). NULL: nothing. */
void http_source_free(HttpSource *s);

/* The events of one write request: n JSON texts (each malloc'ed, taken by
 * the call whatever it returns, as is the array). stats: answer with the
 * statistics after of rel's direct side of profile_a and reverse side of
 * profile_b (one event), else with the ids. NULL with the answer in
 * *status and *body (503: busy or stopping; body NULL when out of memory);
 * else c is suspended until the write is answered. */
HttpWrite *http_source_submit(HttpSource *s, struct MHD_Connection *c, char **texts, size_t n,
                              char **ids, bool stats, const char *rel, const char *profile_a,
                              const char *profile_b, const Config *cfg, unsigned *status,
                              char **body);
/* The answer of a write whose connection was resumed (the body is the
 * caller's). */
void http_source_answer(HttpSource *s, HttpWrite *w, unsigned *status, char **body);
/* The request holding w ended: its hold is dropped. */
void http_source_completed(HttpSource *s, HttpWrite *w);
/* Answers 503 every write past its deadline at now (clock_now_ms). */
void http_source_sweep(HttpSource *s, int64_t now);

#endif
