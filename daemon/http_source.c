/* http_source.c — the HTTP writes' source (http_source.h): transport code
 * behind the pipeline's PipelineSource, as kafka_source.c and
 * amqp_source.c are. fill takes queued writes into the batch being filled
 * (whole writes, up to engine.batch_size events unless one write alone is
 * larger); ack answers the batch's writes (the statistics read after with
 * the source's own reader engine, so that the pipeline's connection holds
 * only its batches); release answers 503 whatever was not answered (a
 * batch left unacknowledged: past the drain deadline) and drops the
 * batch's holds. There is no dead-letter destination: a refused event is
 * the request's 400.
 *
 * Threads and ownership: http_source.h. s->mu guards the queue, the count
 * of writes waiting, every write's answer and holds; the batches' arrays
 * are the source thread's. Connections are resumed outside the lock. */
#include "daemon/http_source.h"
#include "daemon/http_read.h"
#include "daemon/lifecycle.h"
#include "daemon/pipeline.h"
#include "daemon/shared_config.h"
#include "handlers/engine.h"
#include "lib/clock.h"
#include "lib/grow.h"
#include "lib/jsonbuf.h"
#include "lib/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO "http source"
#define FILL_WAIT_MS 100

struct HttpWrite {
    struct HttpWrite *next; /* in the queue */
    struct MHD_Connection *c;
    int refs;         /* the connection's; the source's while queued or in a batch */
    int64_t deadline; /* arrival + http.write_timeout_ms */
    int timeout_ms;
    bool answered; /* status and body set, the connection resumed */
    unsigned status;
    char *body;
    char **texts, **ids;
    size_t n;
    bool stats;
    char rel[CONFIG_SHORT_MAX + 1];
    char profile_a[EVENT_PROFILE_MAX + 1], profile_b[EVENT_PROFILE_MAX + 1];
};

/* A slot of the pipeline's ring: the writes taken, their events' messages. */
typedef struct {
    HttpWrite **writes;
    size_t nw, wcap;
    struct MHD_Connection **resume; /* release's, as many as writes */
    size_t rcap;
    Message *msgs;
    size_t n, mcap;
} Batch;

struct HttpSource {
    Pipeline *pipeline;
    Batch b[PIPELINE_DEPTH];
    Engine *reader; /* the statistics after, for the answers */
    ConfigRef *reader_cfg; /* the configuration it works with */
    long long position; /* events taken so far: a message's "delivery tag" in the log */
    pthread_mutex_t mu;
    pthread_cond_t queued; /* a write queued */
    HttpWrite *head, *tail;
    long waiting; /* writes submitted and not answered */
    bool closed;  /* stopping: new writes get 503 */
    pthread_t thread;
    bool started;
    atomic_bool done;
};

static void write_free(HttpWrite *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->texts[i]);
        free(w->ids[i]);
    }
    free(w->texts);
    free(w->ids);
    free(w->body);
    free(w);
}

/* Under s->mu: drops a hold on w, freeing it with the last. */
static void write_drop(HttpWrite *w)
{
    if (--w->refs == 0)
        write_free(w);
}

/* Under s->mu: answers w unless already answered; true when the caller is
 * to resume its connection (after unlocking). body is taken either way. */
static bool write_answer(HttpSource *s, HttpWrite *w, unsigned status, char *body)
{
    if (w->answered) {
        free(body);
        return false;
    }
    w->answered = true;
    w->status = status;
    w->body = body;
    s->waiting--;
    return true;
}

/* ---- the PipelineSource ---- */

static bool batch_take(Batch *b, HttpWrite *w, long long *position)
{
    if (!GROW_RESERVE(b->writes, b->wcap, b->nw + 1, 16) ||
        !GROW_RESERVE(b->resume, b->rcap, b->nw + 1, 16) ||
        !GROW_RESERVE(b->msgs, b->mcap, b->n + w->n, 64))
        return false;
    b->writes[b->nw++] = w;
    for (size_t i = 0; i < w->n; i++)
        b->msgs[b->n++] = (Message){.data = w->texts[i], .len = strlen(w->texts[i]),
                                    .origin = "http", .partition = -1,
                                    .position = ++*position};
    return true;
}

/* Takes the queued writes into the batch being filled; waits for a first
 * one only while nothing is in flight (idle meanwhile). */
static bool fill(void *ctx, char *err, size_t errlen)
{
    HttpSource *s = ctx;
    (void)err, (void)errlen;
    const size_t limit = (size_t)pipeline_config(s->pipeline)->batch_size;
    Batch *b = &s->b[pipeline_filling(s->pipeline)];
    bool idle = false;
    pthread_mutex_lock(&s->mu);
    if (!s->head && b->nw == 0 && pipeline_in_flight(s->pipeline) == 0 && !lifecycle_stopping()) {
        struct timespec ts = clock_deadline(CLOCK_MONOTONIC, FILL_WAIT_MS);
        pthread_cond_timedwait(&s->queued, &s->mu, &ts);
        idle = !s->head;
    }
    while (s->head && !lifecycle_stopping() && (b->n == 0 || b->n + s->head->n <= limit)) {
        HttpWrite *w = s->head;
        if (!batch_take(b, w, &s->position))
            break; /* out of memory: taken by a later batch */
        s->head = w->next;
        if (!s->head)
            s->tail = NULL;
        w->next = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (idle)
        pipeline_idle(s->pipeline);
    return true;
}

static size_t messages(void *ctx, int slot, Message **msgs, size_t *taken)
{
    HttpSource *s = ctx;
    *msgs = s->b[slot].msgs;
    *taken = s->b[slot].n;
    return s->b[slot].n;
}

static bool dead_letter(void *ctx, int slot)
{
    (void)ctx, (void)slot;
    return true; /* a refused event is its request's 400 (ack) */
}

/* One side's statistics after, or null when they cannot be read (the
 * write is stored all the same). */
static void stats_after(HttpSource *s, const char *relation, Side side, const char *profile,
                        JsonBuf *out)
{
    char err[512];
    const Config *cfg = http_reader_current(&s->reader_cfg, &s->reader);
    const RelationDef *rel = cfg ? config_relation(cfg, relation) : NULL;
    Engine *e = rel ? s->reader : NULL;
    size_t at = out->len;
    /* twice: a connection Redis closed since the last write is found
     * dropped by the first attempt, and made again by the second */
    for (int attempt = 0; e && attempt < 2; attempt++) {
        if (http_read_stats_json(e, rel, side, profile, out, err, sizeof err))
            return;
        out->len = at;
    }
    jsonbuf_cstr(out, "null");
    if (e)
        log_at(LOG_WARN, WHO, "the statistics after a write: %s", err);
}

/* The answer to w, its messages msgs: 400 naming what the engine refused,
 * else 200 with the statistics after (one event) or the ids. */
static char *answer_body(HttpSource *s, const HttpWrite *w, const Message *msgs,
                         unsigned *status)
{
    JsonBuf b = {0};
    size_t refused = 0;
    for (size_t i = 0; i < w->n; i++)
        refused += msgs[i].dead;
    if (refused) {
        char text[EVENT_ERR_MAX + 128];
        for (size_t i = 0; i < w->n; i++)
            if (msgs[i].dead) {
                if (w->n == 1)
                    snprintf(text, sizeof text, "%s", msgs[i].reason);
                else
                    snprintf(text, sizeof text, "line %zu: %s (%zu of %zu events refused, the "
                             "others stored)", i + 1, msgs[i].reason, refused, w->n);
                break;
            }
        *status = MHD_HTTP_BAD_REQUEST;
        return http_api_error_body(*status, text);
    }
    *status = MHD_HTTP_OK;
    jsonbuf_cstr(&b, "{\"error\":0,\"error_text\":\"Successful\",\"data\":{");
    if (w->stats) {
        jsonbuf_cstr(&b, "\"id\":");
        jsonbuf_string(&b, w->ids[0], strlen(w->ids[0]));
        jsonbuf_cstr(&b, ",\"direct\":");
        stats_after(s, w->rel, SIDE_DIRECT, w->profile_a, &b);
        jsonbuf_cstr(&b, ",\"reverse\":");
        stats_after(s, w->rel, SIDE_REVERSE, w->profile_b, &b);
    } else {
        jsonbuf_cstr(&b, "\"ids\":[");
        for (size_t i = 0; i < w->n; i++) {
            if (i)
                jsonbuf_char(&b, ',');
            jsonbuf_string(&b, w->ids[i], strlen(w->ids[i]));
        }
        jsonbuf_char(&b, ']');
    }
    jsonbuf_cstr(&b, "}}\n");
    char *out = jsonbuf_take(&b);
    if (!out) {
        *status = MHD_HTTP_SERVICE_UNAVAILABLE;
        return http_api_error_body(*status, "stored, but out of memory for the answer");
    }
    return out;
}

/* Answers each of the batch's writes (stored), resuming their connections. */
static bool ack(void *ctx, int slot, bool sync)
{
    HttpSource *s = ctx;
    Batch *b = &s->b[slot];
    (void)sync;
    const Message *m = b->msgs;
    for (size_t i = 0; i < b->nw; m += b->writes[i]->n, i++) {
        HttpWrite *w = b->writes[i];
        unsigned status;
        char *body = answer_body(s, w, m, &status);
        pthread_mutex_lock(&s->mu);
        struct MHD_Connection *c = w->c;
        bool resume = write_answer(s, w, status, body);
        pthread_mutex_unlock(&s->mu);
        if (resume)
            MHD_resume_connection(c);
    }
    return true;
}

/* The batch goes: a write not answered (left unacknowledged) gets 503. */
static void release(void *ctx, int slot)
{
    HttpSource *s = ctx;
    Batch *b = &s->b[slot];
    size_t nresume = 0;
    pthread_mutex_lock(&s->mu); /* the sweeper reads the batch */
    for (size_t i = 0; i < b->nw; i++) {
        HttpWrite *w = b->writes[i];
        if (!w->answered && write_answer(s, w, MHD_HTTP_SERVICE_UNAVAILABLE,
                         http_api_error_body(MHD_HTTP_SERVICE_UNAVAILABLE,
                                             "not confirmed stored (relationd is stopping, or "
                                             "Redis is unreachable): retry with the same id")))
            b->resume[nresume++] = w->c;
        write_drop(w);
    }
    b->nw = 0;
    b->n = 0;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < nresume; i++)
        MHD_resume_connection(b->resume[i]);
}

/* ---- the thread ---- */

/* Answers 503 the writes of the queue (stopping), resuming them. */
static void answer_queued(HttpSource *s, const char *why)
{
    pthread_mutex_lock(&s->mu);
    while (s->head) {
        HttpWrite *w = s->head;
        s->head = w->next;
        struct MHD_Connection *c = w->c;
        bool resume = write_answer(s, w, MHD_HTTP_SERVICE_UNAVAILABLE,
                                   http_api_error_body(MHD_HTTP_SERVICE_UNAVAILABLE, why));
        write_drop(w);
        if (resume) {
            pthread_mutex_unlock(&s->mu);
            MHD_resume_connection(c);
            pthread_mutex_lock(&s->mu);
        }
    }
    s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
}

static void *run(void *arg)
{
    HttpSource *s = arg;
    lifecycle_register_thread();
    bool connected = pipeline_connect(s->pipeline);
    while (connected && !lifecycle_stopping()) {
        lifecycle_beat();
        pipeline_turn(s->pipeline);
    }
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    pthread_mutex_unlock(&s->mu);
    if (pipeline_drain(s->pipeline) != PIPELINE_OK)
        pipeline_drop(s->pipeline);
    answer_queued(s, "relationd is stopping: not stored");
    log_at(LOG_INFO, WHO, "stopped");
    atomic_store(&s->done, true);
    return NULL;
}

HttpSource *http_source_new(char *err, size_t errlen)
{
    HttpSource *s = calloc(1, sizeof *s);
    pthread_condattr_t ca;
    if (!s || pthread_condattr_init(&ca) != 0) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->queued, &ca);
    pthread_condattr_destroy(&ca);
    PipelineSource src = {.id = SOURCE_HTTP, .who = WHO, .unacked = "unanswered (503)", .ctx = s,
                          .fill = fill, .messages = messages, .dead_letter = dead_letter,
                          .ack = ack, .release = release};
    if (!(s->pipeline = pipeline_new(&src))) {
        http_source_free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return s;
}

bool http_source_start(HttpSource *s)
{
    s->started = pthread_create(&s->thread, NULL, run, s) == 0;
    return s->started;
}

bool http_source_done(const HttpSource *s)
{
    return !s || !s->started || atomic_load(&s->done);
}

void http_source_stop_writes(HttpSource *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    pthread_mutex_unlock(&s->mu);
    /* the thread has finished (drained) unless the drain was abandoned:
     * whatever is still queued is answered here */
    answer_queued(s, "relationd is stopping: not stored");
    for (int k = 0; k < PIPELINE_DEPTH; k++) {
        if (s->started && !atomic_load(&s->done))
            break; /* the batches are the running thread's */
        Batch *b = &s->b[k];
        for (size_t i = 0; i < b->nw; i++) {
            pthread_mutex_lock(&s->mu);
            struct MHD_Connection *c = b->writes[i]->c;
            bool resume = write_answer(
                s, b->writes[i], MHD_HTTP_SERVICE_UNAVAILABLE,
                http_api_error_body(MHD_HTTP_SERVICE_UNAVAILABLE, "relationd is stopping"));
            pthread_mutex_unlock(&s->mu);
            if (resume)
                MHD_resume_connection(c);
        }
    }
}

void http_source_free(HttpSource *s)
{
    if (!s)
        return;
    if (s->started)
        pthread_join(s->thread, NULL);
    pipeline_free(s->pipeline);
    engine_free(s->reader);
    if (s->reader_cfg)
        shared_config_release(s->reader_cfg);
    for (int k = 0; k < PIPELINE_DEPTH; k++) {
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->b[k].nw; i++)
            write_drop(s->b[k].writes[i]);
        pthread_mutex_unlock(&s->mu);
        free(s->b[k].writes);
        free(s->b[k].resume);
        free(s->b[k].msgs);
    }
    pthread_cond_destroy(&s->queued);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- the server's side ---- */

HttpWrite *http_source_submit(HttpSource *s, struct MHD_Connection *c, char **texts, size_t n,
                              char **ids, bool stats, const char *rel, const char *profile_a,
                              const char *profile_b, const Config *cfg, unsigned *status,
                              char **body)
{
    HttpWrite *w = calloc(1, sizeof *w);
    char msg[128];
    *status = MHD_HTTP_SERVICE_UNAVAILABLE;
    if (!w) {
        for (size_t i = 0; i < n; i++) {
            free(texts[i]);
            free(ids[i]);
        }
        free(texts);
        free(ids);
        *body = http_api_error_body(*status, "out of memory");
        return NULL;
    }
    w->texts = texts;
    w->ids = ids;
    w->n = n;
    w->stats = stats;
    snprintf(w->rel, sizeof w->rel, "%s", rel ? rel : "");
    snprintf(w->profile_a, sizeof w->profile_a, "%s", profile_a ? profile_a : "");
    snprintf(w->profile_b, sizeof w->profile_b, "%s", profile_b ? profile_b : "");
    w->c = c;
    w->refs = 2; /* the connection's, the source's */
    w->timeout_ms = cfg->http_write_timeout_ms;
    w->deadline = clock_now_ms() + cfg->http_write_timeout_ms;
    pthread_mutex_lock(&s->mu);
    if (s->closed || s->waiting >= cfg->http_max_writes) {
        pthread_mutex_unlock(&s->mu);
        if (s->closed)
            snprintf(msg, sizeof msg, "relationd is stopping: not stored");
        else
            snprintf(msg, sizeof msg, "busy: %d writes waiting already (http.max_writes), "
                     "retry later", cfg->http_max_writes);
        write_free(w);
        *body = http_api_error_body(*status, msg);
        return NULL;
    }
    s->waiting++;
    MHD_suspend_connection(c); /* before the source may resume it */
    if (s->tail)
        s->tail->next = w;
    else
        s->head = w;
    s->tail = w;
    pthread_cond_signal(&s->queued);
    pthread_mutex_unlock(&s->mu);
    return w;
}

void http_source_answer(HttpSource *s, HttpWrite *w, unsigned *status, char **body)
{
    pthread_mutex_lock(&s->mu);
    *status = w->status;
    *body = w->body;
    w->body = NULL;
    pthread_mutex_unlock(&s->mu);
}

void http_source_completed(HttpSource *s, HttpWrite *w)
{
    pthread_mutex_lock(&s->mu);
    write_drop(w);
    pthread_mutex_unlock(&s->mu);
}

void http_source_sweep(HttpSource *s, int64_t now)
{
    if (!s)
        return;
    for (;;) {
        HttpWrite *late = NULL;
        bool queued = false;
        pthread_mutex_lock(&s->mu);
        for (HttpWrite **p = &s->head; *p; p = &(*p)->next)
            if (!(*p)->answered && now >= (*p)->deadline) {
                late = *p;
                *p = late->next; /* never applied */
                queued = true;
                break;
            }
        if (!late)
            for (int k = 0; k < PIPELINE_DEPTH && !late; k++)
                for (size_t i = 0; i < s->b[k].nw && !late; i++)
                    if (!s->b[k].writes[i]->answered && now >= s->b[k].writes[i]->deadline)
                        late = s->b[k].writes[i];
        if (!late) {
            pthread_mutex_unlock(&s->mu);
            return;
        }
        if (queued) {
            s->tail = NULL;
            for (HttpWrite *w = s->head; w; w = w->next)
                s->tail = w;
        }
        char msg[256];
        snprintf(msg, sizeof msg, "not stored within http.write_timeout_ms (%d ms)%s: retry with "
                 "the same id", late->timeout_ms,
                 queued ? "" : " (Redis unreachable? it may still be stored once Redis answers)");
        struct MHD_Connection *c = late->c;
        bool resume = write_answer(s, late, MHD_HTTP_SERVICE_UNAVAILABLE,
                                   http_api_error_body(MHD_HTTP_SERVICE_UNAVAILABLE, msg));
        if (queued)
            write_drop(late);
        pthread_mutex_unlock(&s->mu);
        if (resume)
            MHD_resume_connection(c);
    }
}
