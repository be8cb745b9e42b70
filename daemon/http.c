/* http.c — the HTTP server on http.listen (http.h): /metrics, /healthz,
 * /readyz, the routing of /v1/ to the read API (http_read.c) once its
 * token is checked, of the POST routes (/v1/events, /api/...) to
 * http_write.c, whose writes the HTTP source (http_source.c) stores, and of
 * the page /ui/ and its endpoints to http_ui.c (the token checked here for
 * its /v1/ ones). The sweeper has http_ui.c send its streams' keepalives; a
 * stop ends the streams (resumed) before libmicrohttpd stops.
 *
 * Threads: libmicrohttpd runs HTTP_THREADS polling threads; they parse every
 * request and answer /metrics, /healthz and /readyz themselves (those only
 * read the metrics registry, whose lock the sources take once per batch).
 * A /v1/ request's token (http.token) is checked here, then it is handed to
 * http_read.c, which checks the rest and runs it on read threads of its own
 * (their own Redis connections): a stalled Redis holds /v1/ reads only,
 * never the operations endpoints.
 *
 * Limits (what a client sees):
 *   - CONN_LIMIT connections in all, PER_IP_LIMIT from one address: beyond,
 *     a new connection waits in the listen backlog (total) or is closed at
 *     once (per address);
 *   - a request's headers complete within HEADER_DEADLINE_MS of the
 *     connection's start (or of the previous response, kept alive),
 *     however slowly they trickle in: else 408 and the connection closed
 *     (closed without an answer when not even the request line came);
 *   - a POST's body complete within http.write_timeout_ms of its headers:
 *     else the connection is closed (without an answer: one may be queued
 *     already);
 *   - the reads' queue and deadline (redis.timeout_ms): http_read.h;
 *   - the writes' body cap, count and deadline: http_write.h, http_source.h.
 * One sweeper thread enforces the deadlines (every SWEEP_MS): the headers'
 * here, the reads' through http_reads_sweep, the writes' through
 * http_source_sweep.
 *
 * Ownership: a Conn (the socket context) is allocated when its connection
 * starts and freed when it closes, listed in h->conns under h->mu for the
 * sweeper; a read's state belongs to http_read.c, dropped when its request
 * ends. Failures: out of memory closes the connection (MHD_NO) or answers
 * 503; a connection without a Conn (out of memory) has no header
 * deadline. */
#include "daemon/http.h"
#include "daemon/http_read.h"
#include "daemon/http_ui.h"
#include "daemon/http_write.h"
#include "daemon/metrics.h"
#include "daemon/shared_config.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HTTP_THREADS 2
#define CONN_LIMIT 512
#define PER_IP_LIMIT 32
#define HEADER_DEADLINE_MS 5000
#define IDLE_TIMEOUT_S 10
#define SWEEP_MS 100

/* A connection (its socket context): where its current request is. */
enum { CONN_IDLE, CONN_HEADERS, CONN_BODY, CONN_REQUEST };
typedef struct Conn {
    struct Conn *prev, *next;
    int fd;
    int phase;     /* IDLE: no request line yet; HEADERS: the request line came;
                    * BODY: a POST's body is coming */
    int64_t body_deadline; /* BODY: its body complete by then */
    int64_t since; /* the connection's start, or the previous request's end */
    bool cut;      /* shut down by the sweeper */
} Conn;

struct Http {
    struct MHD_Daemon *mhd;
    HttpReads *reads;
    HttpSource *writes; /* borrowed; NULL: writes not served */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the sweeper's: stopping */
    Conn *conns;
    bool stopping;
    pthread_t sweeper;
    bool has_sweeper;
    char timeout_408[256]; /* the answer to headers past their deadline */
    size_t timeout_408_len;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body)
{
    if (!body)
        return MHD_NO; /* out of memory: the connection is closed */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result http_reply(struct MHD_Connection *c, unsigned status, const char *type,
                           char *body)
{
    return reply(c, status, type, body);
}

static char *copy(const char *s)
{
    return strdup(s);
}

static enum MHD_Result error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return reply(c, status, "application/json", http_read_error_body(msg));
}

/* URLs arrive as sent (see http_start): path segments are decoded here,
 * one by one, so that a profile id may hold a '/'. libmicrohttpd applies
 * this callback to the query's names and values too: they are decoded in
 * query_arg. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    return strlen(s);
}

bool http_token_equal(const char *given, size_t glen, const char *token, size_t tlen)
{
    /* As long as the given value whatever it holds: every byte is compared
     * (with the token's, taken round), no branch on their contents. */
    volatile unsigned char diff = (unsigned char)(glen != tlen || tlen == 0);
    for (size_t i = 0; i < glen && tlen; i++)
        diff |= (unsigned char)(given[i] ^ token[i % tlen]);
    return diff == 0;
}

static Conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

static void conn_phase(Http *h, struct MHD_Connection *c, int phase)
{
    Conn *k = conn_of(c);
    if (!k)
        return;
    pthread_mutex_lock(&h->mu);
    k->phase = phase;
    if (phase == CONN_IDLE)
        k->since = clock_now_ms();
    pthread_mutex_unlock(&h->mu);
}

/* A POST's headers came: its body is due within http.write_timeout_ms. */
static void conn_body(Http *h, struct MHD_Connection *c)
{
    Conn *k = conn_of(c);
    ConfigRef *ref = shared_config_acquire();
    if (k) {
        pthread_mutex_lock(&h->mu);
        k->phase = CONN_BODY;
        k->body_deadline = clock_now_ms() + (ref ? config_ref_get(ref)->http_write_timeout_ms
                                                 : HEADER_DEADLINE_MS);
        pthread_mutex_unlock(&h->mu);
    }
    if (ref)
        shared_config_release(ref);
}

/* Connections opened and closed: kept in h->conns for the sweeper. */
static void on_connection(void *cls, struct MHD_Connection *c, void **context,
                          enum MHD_ConnectionNotificationCode code)
{
    Http *h = cls;
    Conn *k = *context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *i =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!i || !(k = calloc(1, sizeof *k)))
            return; /* out of memory: no header deadline for this one */
        k->fd = i->connect_fd;
        k->since = clock_now_ms();
        pthread_mutex_lock(&h->mu);
        k->next = h->conns;
        if (h->conns)
            h->conns->prev = k;
        h->conns = k;
        pthread_mutex_unlock(&h->mu);
        *context = k;
    } else if (k) { /* closed: before its socket is */
        pthread_mutex_lock(&h->mu);
        if (k->prev)
            k->prev->next = k->next;
        else
            h->conns = k->next;
        if (k->next)
            k->next->prev = k->prev;
        pthread_mutex_unlock(&h->mu);
        free(k);
        *context = NULL;
    }
}

/* The request line has come. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)uri;
    conn_phase(cls, c, CONN_HEADERS);
    return NULL;
}

/* A request ended (answered, or its connection closed). */
static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode code)
{
    Http *h = cls;
    (void)code;
    conn_phase(h, c, CONN_IDLE);
    if (*state && ((HttpState *)*state)->kind == HTTP_STATE_POST)
        http_post_completed(h->reads, h->writes, *state);
    else if (*state)
        http_read_completed(h->reads, *state);
    *state = NULL;
}


/* Enforces the header deadline, and has http_read.c enforce the reads'. */
static void *sweeper(void *arg)
{
    Http *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        int64_t now = clock_now_ms();
        for (Conn *k = h->conns; k; k = k->next) {
            if (k->phase == CONN_BODY && !k->cut && now >= k->body_deadline) {
                /* a response may be queued already: closed without one */
                shutdown(k->fd, SHUT_RDWR);
                k->cut = true;
            }
            if (k->phase >= CONN_BODY || k->cut || now - k->since < HEADER_DEADLINE_MS)
                continue;
            /* libmicrohttpd writes nothing before the headers are complete;
             * the socket stays open until CLOSED, which takes h->mu */
            if (k->phase == CONN_HEADERS)
                (void)!send(k->fd, h->timeout_408, h->timeout_408_len,
                            MSG_DONTWAIT | MSG_NOSIGNAL);
            shutdown(k->fd, SHUT_RDWR); /* libmicrohttpd sees the end, and closes it */
            k->cut = true;
        }
        pthread_mutex_unlock(&h->mu);
        http_reads_sweep(h->reads, now);
        http_source_sweep(h->writes, now);
        http_ui_sweep(now);
        pthread_mutex_lock(&h->mu);
        if (h->stopping)
            break;
        struct timespec ts = clock_deadline(CLOCK_MONOTONIC, SWEEP_MS);
        pthread_cond_timedwait(&h->wake, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

bool http_authorized(struct MHD_Connection *c, const char *token)
{
    if (!token)
        return true;
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return auth && strncmp(auth, "Bearer ", 7) == 0 &&
           http_token_equal(auth + 7, strlen(auth + 7), token, strlen(token));
}

static enum MHD_Result unauthorized(struct MHD_Connection *c)
{
    return error(c, MHD_HTTP_UNAUTHORIZED, "Authorization: Bearer <http.token> required");
}

/* /v1/stats/... and /v1/edges/...: the token checked here, the rest by
 * http_read.c (the connection suspended until a read thread answers). */
static enum MHD_Result read_api(Http *h, struct MHD_Connection *c, const char *path,
                                void **state)
{
    unsigned status;
    char *body;
    if (*state) { /* resumed: answered */
        http_read_request(h->reads, c, path, NULL, state, &status, &body);
        return reply(c, status, "application/json", body);
    }
    ConfigRef *ref = shared_config_acquire();
    if (!ref)
        return error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    const Config *cfg = config_ref_get(ref);
    enum MHD_Result ret = MHD_YES;
    if (!http_authorized(c, cfg->http_token))
        ret = unauthorized(c);
    else if (http_read_request(h->reads, c, path, cfg, state, &status, &body))
        ret = reply(c, status, "application/json", body);
    shared_config_release(ref);
    return ret;
}

/* The page and its endpoints (http_ui.c), the token checked here for
 * those that need it. */
static enum MHD_Result ui(struct MHD_Connection *c, const char *url)
{
    ConfigRef *ref = shared_config_acquire();
    if (!ref)
        return error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    const Config *cfg = config_ref_get(ref);
    enum MHD_Result ret = http_ui_protected(url) && !http_authorized(c, cfg->http_token)
                              ? unauthorized(c)
                              : http_ui_request(c, url, cfg);
    shared_config_release(ref);
    return ret;
}

/* libmicrohttpd's messages are about one client each (a connection
 * refused at a limit, closed early): debug lines of the log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_at(LOG_DEBUG, "http", "%s", msg);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    Http *h = cls;
    (void)version;
    bool post = strcmp(method, "POST") == 0 && http_post_path(url);
    if (!*state && post)
        conn_body(h, c);
    else if (!*state || (post && !*upload_size))
        conn_phase(h, c, CONN_REQUEST); /* headers (and body) complete */
    if (post)
        return http_post(h->reads, h->writes, c, url, upload, upload_size, state);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                     copy("{\"error\":\"only GET\"}\n"));
    if (strcmp(url, "/metrics") == 0)
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", metrics_render());
    if (strcmp(url, "/healthz") == 0)
        return reply(c, MHD_HTTP_OK, "application/json", copy("{\"status\":\"ok\"}\n"));
    if (strcmp(url, "/readyz") == 0) {
        bool up;
        char *body = metrics_down_json(&up);
        return reply(c, up ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", body);
    }
    if (http_read_path(url))
        return read_api(cls, c, url, state);
    if (http_ui_path(url))
        return ui(c, url);
    return reply(c, MHD_HTTP_NOT_FOUND, "application/json", copy("{\"error\":\"not found\"}\n"));
}

/* Stops the sweeper, then the reads (those still queued are answered 503
 * and resumed: libmicrohttpd must not stop with a connection suspended). */
static void stop_threads(Http *h)
{
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
    if (h->has_sweeper)
        pthread_join(h->sweeper, NULL);
    if (h->reads)
        http_reads_stop(h->reads);
    http_ui_stop();
}

/* After MHD_stop_daemon (or before MHD_start_daemon). */
static void http_free(Http *h)
{
    http_reads_free(h->reads);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

Http *http_start(const char *listen, HttpSource *writes, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    if (!colon || hl >= sizeof host) {
        snprintf(err, errlen, "http.listen %s: must be host:port", listen);
        return NULL;
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* [::1] */
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "http.listen %s: %s", listen, gai_strerror(rc));
        return NULL;
    }
    Http *h = calloc(1, sizeof *h);
    pthread_condattr_t ca;
    if (!h || pthread_condattr_init(&ca) != 0) {
        free(h);
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    char body[96];
    int bl = snprintf(body, sizeof body,
                      "{\"error\":\"request headers not complete within %d ms\"}\n",
                      HEADER_DEADLINE_MS);
    h->timeout_408_len = (size_t)snprintf(
        h->timeout_408, sizeof h->timeout_408,
        "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
        "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
        bl, body);
    h->writes = writes;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->wake, &ca);
    pthread_condattr_destroy(&ca);
    h->reads = http_reads_start();
    h->has_sweeper = h->reads && pthread_create(&h->sweeper, NULL, sweeper, h) == 0;
    if (!h->has_sweeper) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "http: cannot start a thread");
        stop_threads(h);
        http_free(h);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PER_IP_LIMIT, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_URI_LOG_CALLBACK, on_request_line, h, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape,
        NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->mhd) {
        snprintf(err, errlen, "http.listen %s: cannot listen (address in use?)", listen);
        stop_threads(h);
        http_free(h);
        return NULL;
    }
    return h;
}

void http_stop(Http *h)
{
    if (!h)
        return;
    stop_threads(h);
    http_source_stop_writes(h->writes);
    MHD_stop_daemon(h->mhd);
    http_free(h);
}
