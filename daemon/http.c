/* http.c — /metrics, /healthz, /readyz and the read API /v1/ (http.h).
 *
 * Threads: libmicrohttpd runs HTTP_THREADS polling threads; they parse every
 * request and answer /metrics, /healthz and /readyz themselves (those only
 * read the metrics registry, whose lock the sources take once per batch).
 * A /v1/ request is checked there (token, path, arguments), then suspended
 * and queued for READ_WORKERS read threads, each with its own engine (its
 * own Redis connection); the thread that answers it resumes it. So a
 * stalled Redis holds /v1/ reads only, never the operations endpoints.
 *
 * Limits (what a client sees):
 *   - CONN_LIMIT connections in all, PER_IP_LIMIT from one address: beyond,
 *     a new connection waits in the listen backlog (total) or is closed at
 *     once (per address);
 *   - a request's headers complete within HEADER_DEADLINE_MS of the
 *     connection's start (or of the previous response, kept alive),
 *     however slowly they trickle in: else 408 and the connection closed
 *     (closed without an answer when not even the request line came);
 *   - READ_QUEUE_MAX reads waiting: beyond, 503 at once;
 *   - a read answered within redis.timeout_ms of its arrival: else 503
 *     (queued or stalled in Redis alike).
 * One sweeper thread enforces both deadlines (every SWEEP_MS).
 *
 * Ownership: a Job is held by its connection (dropped when the request
 * ends) and by the read thread running it; the last one frees it. Its
 * answer (status, body) is set once, under h->mu, by the first of the read
 * thread and the sweeper; that one resumes the connection. Failures: out of
 * memory closes the connection (MHD_NO) or answers 503. */
#include "daemon/http.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "daemon/metrics.h"
#include "daemon/shared_config.h"
#include "handlers/engine.h"
#include "handlers/read.h"
#include "lib/jsonbuf.h"

#include <arpa/inet.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define EDGES_LIMIT_DEFAULT 100
#define EDGES_LIMIT_MAX 1000

#define HTTP_THREADS 2
#define READ_WORKERS 2
#define READ_QUEUE_MAX 32
#define CONN_LIMIT 512
#define PER_IP_LIMIT 32
#define HEADER_DEADLINE_MS 5000
#define IDLE_TIMEOUT_S 10
#define SWEEP_MS 100

/* A cursor: "<HSCAN cursor>[.<hex of a counterpart>]" */
#define CURSOR_MAX (20 + 1 + 2 * EVENT_PROFILE_MAX)

/* A connection (its socket context): where its current request is. */
enum { CONN_IDLE, CONN_HEADERS, CONN_REQUEST };
typedef struct Conn {
    struct Conn *prev, *next;
    int fd;
    int phase;     /* IDLE: no request line yet; HEADERS: the request line came */
    int64_t since; /* the connection's start, or the previous request's end */
    bool cut;      /* shut down by the sweeper */
} Conn;

/* A /v1/ read, checked, waiting for or run by a read thread. */
typedef struct Job {
    struct Job *next; /* in the queue */
    struct MHD_Connection *c;
    int refs;         /* the connection's, and the read thread's while it runs it */
    int64_t deadline; /* arrival + redis.timeout_ms */
    int timeout_ms;
    bool answered; /* status and body set, the connection resumed */
    unsigned status;
    char *body;
    bool edges;
    Side side;
    long limit;
    char rel[CONFIG_SHORT_MAX + 1];
    char profile[EVENT_PROFILE_MAX + 1];
    char hscan[32];
    char after[EVENT_PROFILE_MAX + 1];
} Job;

typedef struct {
    struct Http *h;
    pthread_t thread;
    ConfigRef *ref; /* the configuration the engine works with */
    Engine *engine; /* connected on the first read */
    Job *job;       /* running */
} Worker;

struct Http {
    struct MHD_Daemon *mhd;
    pthread_mutex_t mu;
    pthread_cond_t queued; /* a job queued, or stopping */
    pthread_cond_t wake;   /* the sweeper's: stopping */
    Job *head, *tail;
    size_t nqueued;
    Conn *conns;
    bool stopping;
    Worker workers[READ_WORKERS];
    int nworkers;
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

static char *copy(const char *s)
{
    return strdup(s);
}

/* {"error": msg}\n, NULL when out of memory */
static char *error_body(const char *msg)
{
    JsonBuf b = {0};
    jsonbuf_cstr(&b, "{\"error\":");
    jsonbuf_string(&b, msg, strlen(msg));
    jsonbuf_cstr(&b, "}\n");
    jsonbuf_char(&b, '\0');
    if (b.oom) {
        jsonbuf_free(&b);
        return NULL;
    }
    return b.data;
}

static enum MHD_Result error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return reply(c, status, "application/json", error_body(msg));
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

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes [s, end) into out (cap bytes with the NUL); false when it
 * is malformed, too long, or decodes to a NUL. */
static bool decode(const char *s, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    while (s < end) {
        int c = (unsigned char)*s;
        if (c == '%') {
            int hi = end - s >= 3 ? hexval(s[1]) : -1, lo = end - s >= 3 ? hexval(s[2]) : -1;
            if (hi < 0 || lo < 0)
                return false;
            c = hi * 16 + lo;
            s += 3;
        } else {
            s++;
        }
        if (c == 0 || n + 1 >= cap)
            return false;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return true;
}

/* [s, end): decimal digits only (no sign, no space), at most max. */
static bool parse_digits(const char *s, const char *end, unsigned long long max,
                         unsigned long long *out)
{
    unsigned long long v = 0;
    if (s == end)
        return false;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
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

/* The query's limit and cursor, decoded. */
typedef struct {
    char limit[8], cursor[CURSOR_MAX + 1];
    int has_limit, has_cursor; /* how many times given */
    bool bad_limit, bad_cursor;
} Args;

static void query_arg(const char *name, char *out, size_t cap, int *count, bool *bad,
                      const char *key, const char *value)
{
    char k[16];
    if (!decode(key, key + strlen(key), k, sizeof k) || strcmp(k, name) != 0)
        return;
    ++*count;
    if (!value || !decode(value, value + strlen(value), out, cap))
        *bad = true;
}

static enum MHD_Result take_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    Args *a = cls;
    (void)kind;
    query_arg("limit", a->limit, sizeof a->limit, &a->has_limit, &a->bad_limit, key, value);
    query_arg("cursor", a->cursor, sizeof a->cursor, &a->has_cursor, &a->bad_cursor, key, value);
    return MHD_YES;
}

/* limit 1..1000; cursor "<HSCAN cursor>", or "<HSCAN cursor>.<hex of the
 * last counterpart returned>" when a page of Redis's was cut: it is asked
 * again and read after that edge (all of it again if that edge went
 * meanwhile: an edge may then come twice, none is missed). NULL, or the
 * error naming the argument. */
static const char *edges_args(struct MHD_Connection *c, Job *j)
{
    Args a = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, take_arg, &a);
    unsigned long long v;
    j->limit = EDGES_LIMIT_DEFAULT;
    if (a.has_limit) {
        if (a.has_limit > 1 || a.bad_limit ||
            !parse_digits(a.limit, a.limit + strlen(a.limit), EDGES_LIMIT_MAX, &v) || v < 1)
            return "limit: an integer 1..1000 (given once)";
        j->limit = (long)v;
    }
    snprintf(j->hscan, sizeof j->hscan, "0");
    j->after[0] = '\0';
    if (a.has_cursor) {
        const char *cur = a.cursor, *dot = strchr(cur, '.');
        const char *dend = dot ? dot : cur + strlen(cur);
        bool bad = a.has_cursor > 1 || a.bad_cursor || !parse_digits(cur, dend, ULLONG_MAX, &v);
        if (!bad && dot) {
            size_t hl = strlen(dot + 1);
            bad = hl == 0 || hl % 2 || hl / 2 > EVENT_PROFILE_MAX;
            for (size_t i = 0; !bad && i < hl / 2; i++) {
                int hi = hexval(dot[1 + 2 * i]), lo = hexval(dot[2 + 2 * i]);
                bad = hi < 0 || lo < 0 || (hi == 0 && lo == 0);
                j->after[i] = (char)(hi * 16 + lo);
            }
            j->after[bad ? 0 : hl / 2] = '\0';
        }
        if (bad || (v == 0 && !j->after[0]))
            return "cursor: as returned by the previous page";
        snprintf(j->hscan, sizeof j->hscan, "%llu", v);
    }
    return NULL;
}

/* The configuration of this worker's read, its engine switched to it. */
static const Config *current(Worker *w)
{
    if (!w->ref || shared_config_outdated(w->ref)) {
        ConfigRef *fresh = shared_config_acquire();
        if (!fresh)
            return w->ref ? config_ref_get(w->ref) : NULL;
        const Config *cfg = config_ref_get(fresh);
        if (!w->engine)
            w->engine = engine_create(cfg);
        else if (!engine_set_config(w->engine, cfg)) {
            shared_config_release(fresh);
            return config_ref_get(w->ref);
        }
        if (w->ref)
            shared_config_release(w->ref);
        w->ref = fresh;
    }
    return w->engine ? config_ref_get(w->ref) : NULL;
}

static void timed_out(const Job *j, char *err, size_t errlen)
{
    snprintf(err, errlen, "redis: no answer within redis.timeout_ms (%d ms)", j->timeout_ms);
}

/* /v1/edges: the page's JSON, or NULL with err. */
static char *read_edges(Worker *w, const RelationDef *rel, const Job *j, char *err, size_t errlen)
{
    JsonBuf out = {0};
    EdgePage page = {0};
    long taken = 0, limit = j->limit;
    char hscan[32], next[32];
    snprintf(hscan, sizeof hscan, "%s", j->hscan);
    bool more = true, ok = true, cut = false;
    bool after = j->after[0] != '\0'; /* the edge to go on after still to find */
    size_t after_len = strlen(j->after);
    char resume[CURSOR_MAX + 1] = "";
    jsonbuf_cstr(&out, "{\"edges\":[");
    size_t start = out.len;
    while (ok && more && !cut) {
        if (clock_now_ms() >= j->deadline) {
            timed_out(j, err, errlen);
            ok = false;
            break;
        }
        ok = engine_edge_page(w->engine, rel, j->side, j->profile, hscan, (int)limit, &page, next,
                              err, errlen);
        if (!ok)
            break;
        size_t from = 0;
        if (after) {
            /* after the marked edge, if it is still there */
            for (size_t k = 0; k < page.n; k++)
                if (page.edges[k].cplen == after_len &&
                    memcmp(page.edges[k].cp, j->after, after_len) == 0) {
                    from = k + 1;
                    break;
                }
            after = false;
        }
        const PageEdge *last = NULL; /* the last edge taken */
        for (size_t k = from; k < page.n; k++) {
            if (taken == limit) {
                cut = true; /* the page goes on after the last edge taken */
                break;
            }
            if (out.len > start)
                jsonbuf_char(&out, ',');
            read_edge_json(&out, rel, j->side, &page.edges[k]);
            last = &page.edges[k];
            taken++;
        }
        if (cut && last) {
            /* where to go on: this page's cursor, then the last edge's
             * counterpart in hex */
            size_t at = (size_t)snprintf(resume, sizeof resume, "%s.", hscan);
            static const char hex[] = "0123456789abcdef";
            for (size_t q = 0; q < last->cplen && at + 2 < sizeof resume; q++) {
                resume[at++] = hex[(unsigned char)last->cp[q] >> 4];
                resume[at++] = hex[(unsigned char)last->cp[q] & 15];
            }
            resume[at] = '\0';
        }
        if (!cut) {
            more = strcmp(next, "0") != 0;
            snprintf(hscan, sizeof hscan, "%s", next);
            if (taken == limit)
                break;
        }
    }
    edge_page_free(&page);
    if (!ok) {
        jsonbuf_free(&out);
        return NULL;
    }
    jsonbuf_cstr(&out, "],\"cursor\":");
    if (resume[0]) {
        jsonbuf_string(&out, resume, strlen(resume));
    } else if (more) {
        jsonbuf_string(&out, hscan, strlen(hscan));
    } else {
        jsonbuf_cstr(&out, "null");
    }
    jsonbuf_cstr(&out, "}\n");
    jsonbuf_char(&out, '\0');
    if (out.oom) {
        jsonbuf_free(&out);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return out.data;
}

/* Runs a read: its status, *body set (NULL when out of memory). */
static unsigned run_read(Worker *w, const Job *j, char **body)
{
    char err[512];
    const Config *cfg = current(w);
    const RelationDef *rel = cfg ? config_relation(cfg, j->rel) : NULL;
    *body = NULL;
    if (!cfg) {
        *body = error_body("out of memory");
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (!rel) { /* gone with a reload since the request was checked */
        snprintf(err, sizeof err, "unknown relation \"%s\"", j->rel);
        *body = error_body(err);
        return MHD_HTTP_NOT_FOUND;
    }
    if (j->edges) {
        *body = read_edges(w, rel, j, err, sizeof err);
    } else {
        SideStats *st = malloc(sizeof *st);
        redisReply *keep = NULL;
        if (!st) {
            *body = error_body("out of memory");
            return MHD_HTTP_SERVICE_UNAVAILABLE;
        }
        if (engine_side_stats(w->engine, rel, j->side, j->profile, st, &keep, err, sizeof err)) {
            JsonBuf text = {0};
            trigger_stats_json(&text, rel, st);
            jsonbuf_cstr(&text, "\n");
            jsonbuf_char(&text, '\0');
            freeReplyObject(keep);
            if (text.oom) {
                jsonbuf_free(&text);
                free(st);
                return MHD_HTTP_SERVICE_UNAVAILABLE;
            }
            *body = text.data;
        }
        free(st);
    }
    if (*body)
        return MHD_HTTP_OK;
    if (clock_now_ms() >= j->deadline)
        timed_out(j, err, sizeof err);
    *body = error_body(err);
    return MHD_HTTP_SERVICE_UNAVAILABLE;
}

/* Under h->mu: drops a hold on j, freeing it with the last. */
static void job_drop(Job *j)
{
    if (--j->refs == 0) {
        free(j->body);
        free(j);
    }
}

/* Under h->mu: answers j unless already answered; true when the caller is
 * to resume its connection (after unlocking). body is taken either way. */
static bool job_answer(Job *j, unsigned status, char *body)
{
    if (j->answered) {
        free(body);
        return false;
    }
    j->answered = true;
    j->status = status;
    j->body = body;
    return true;
}

static void *read_worker(void *arg)
{
    Worker *w = arg;
    Http *h = w->h;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->head && !h->stopping)
            pthread_cond_wait(&h->queued, &h->mu);
        if (h->stopping)
            break;
        Job *j = h->head;
        h->head = j->next;
        if (!h->head)
            h->tail = NULL;
        h->nqueued--;
        j->refs++;
        w->job = j;
        pthread_mutex_unlock(&h->mu);
        char *body;
        unsigned status = run_read(w, j, &body);
        pthread_mutex_lock(&h->mu);
        w->job = NULL;
        struct MHD_Connection *c = j->c; /* held by j's connection until resumed */
        bool resume = job_answer(j, status, body);
        job_drop(j);
        if (resume) {
            pthread_mutex_unlock(&h->mu);
            MHD_resume_connection(c);
            pthread_mutex_lock(&h->mu);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
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
    if (*state) {
        pthread_mutex_lock(&h->mu);
        job_drop(*state);
        pthread_mutex_unlock(&h->mu);
        *state = NULL;
    }
}

/* Enforces the header deadline and the reads' deadline. */
static void *sweeper(void *arg)
{
    Http *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        int64_t now = clock_now_ms();
        for (Conn *k = h->conns; k; k = k->next) {
            if (k->phase == CONN_REQUEST || k->cut || now - k->since < HEADER_DEADLINE_MS)
                continue;
            /* libmicrohttpd writes nothing before the headers are complete;
             * the socket stays open until CLOSED, which takes h->mu */
            if (k->phase == CONN_HEADERS)
                (void)!send(k->fd, h->timeout_408, h->timeout_408_len,
                            MSG_DONTWAIT | MSG_NOSIGNAL);
            shutdown(k->fd, SHUT_RDWR); /* libmicrohttpd sees the end, and closes it */
            k->cut = true;
        }
        /* reads past their deadline, queued or running: 503 */
        struct MHD_Connection *resume[READ_QUEUE_MAX + READ_WORKERS];
        size_t nresume = 0;
        for (Job **p = &h->head; *p;) {
            Job *j = *p;
            if (now < j->deadline) {
                p = &j->next;
                continue;
            }
            *p = j->next;
            h->nqueued--;
            char err[128];
            timed_out(j, err, sizeof err);
            if (job_answer(j, MHD_HTTP_SERVICE_UNAVAILABLE, error_body(err)))
                resume[nresume++] = j->c;
        }
        h->tail = NULL;
        for (Job *j = h->head; j; j = j->next)
            h->tail = j;
        for (int i = 0; i < h->nworkers; i++) {
            Job *j = h->workers[i].job;
            char err[128];
            if (j && now >= j->deadline && !j->answered) {
                timed_out(j, err, sizeof err);
                if (job_answer(j, MHD_HTTP_SERVICE_UNAVAILABLE, error_body(err)))
                    resume[nresume++] = j->c;
            }
        }
        pthread_mutex_unlock(&h->mu);
        for (size_t i = 0; i < nresume; i++)
            MHD_resume_connection(resume[i]);
        pthread_mutex_lock(&h->mu);
        if (h->stopping)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += SWEEP_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&h->wake, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* /v1/stats/<relation>/<side>/<profile> and /v1/edges/...: checked here,
 * then queued for a read thread (the connection suspended until it is
 * answered). */
static enum MHD_Result read_api(Http *h, struct MHD_Connection *c, const char *path,
                                void **state)
{
    Job *j = *state;
    if (j) { /* resumed: answered */
        pthread_mutex_lock(&h->mu);
        char *body = j->body;
        unsigned status = j->status;
        j->body = NULL;
        pthread_mutex_unlock(&h->mu);
        return reply(c, status, "application/json", body);
    }
    ConfigRef *ref = shared_config_acquire();
    if (!ref)
        return error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    const Config *cfg = config_ref_get(ref);
    enum MHD_Result ret = MHD_YES;
    const char *bad = NULL;
    unsigned status = MHD_HTTP_BAD_REQUEST;
    char msg[128];
    if (!(j = calloc(1, sizeof *j))) {
        shared_config_release(ref);
        return error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    }
    if (cfg->http_token) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (!auth || strncmp(auth, "Bearer ", 7) != 0 ||
            !http_token_equal(auth + 7, strlen(auth + 7), cfg->http_token,
                              strlen(cfg->http_token))) {
            bad = "Authorization: Bearer <http.token> required";
            status = MHD_HTTP_UNAUTHORIZED;
            goto done;
        }
    }
    j->edges = strncmp(path, "/v1/edges/", 10) == 0;
    const char *p = path + 10; /* both prefixes are 10 bytes long */
    const char *s1 = strchr(p, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    char side_name[16];
    status = MHD_HTTP_NOT_FOUND;
    if (!s1 || !s2 || !decode(p, s1, j->rel, sizeof j->rel) ||
        !decode(s1 + 1, s2, side_name, sizeof side_name)) {
        bad = "not found: /v1/stats|edges/<relation>/<side>/<profile>";
        goto done;
    }
    if (!config_relation(cfg, j->rel)) {
        snprintf(msg, sizeof msg, "unknown relation \"%s\"", j->rel);
        bad = msg;
        goto done;
    }
    if (strcmp(side_name, "direct") == 0)
        j->side = SIDE_DIRECT;
    else if (strcmp(side_name, "reverse") == 0)
        j->side = SIDE_REVERSE;
    else {
        bad = "side must be direct or reverse";
        goto done;
    }
    status = MHD_HTTP_BAD_REQUEST;
    if (!decode(s2 + 1, s2 + 1 + strlen(s2 + 1), j->profile, sizeof j->profile) ||
        !*j->profile) {
        bad = "profile: 1..128 bytes, percent-encoded";
        goto done;
    }
    if (j->edges && (bad = edges_args(c, j)))
        goto done;
    j->c = c;
    j->refs = 1;
    j->timeout_ms = cfg->redis_timeout_ms;
    j->deadline = clock_now_ms() + cfg->redis_timeout_ms;
    pthread_mutex_lock(&h->mu);
    if (h->stopping || h->nqueued >= READ_QUEUE_MAX) {
        pthread_mutex_unlock(&h->mu);
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        snprintf(msg, sizeof msg, "busy: %d reads waiting already, retry later", READ_QUEUE_MAX);
        bad = msg;
        goto done;
    }
    MHD_suspend_connection(c); /* before a read thread may resume it */
    if (h->tail)
        h->tail->next = j;
    else
        h->head = j;
    h->tail = j;
    h->nqueued++;
    *state = j;
    pthread_cond_signal(&h->queued);
    pthread_mutex_unlock(&h->mu);
    j = NULL;
done:
    shared_config_release(ref);
    if (j) {
        free(j);
        ret = error(c, status, bad);
    }
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
    (void)version, (void)upload, (void)upload_size;
    if (!*state)
        conn_phase(cls, c, CONN_REQUEST);
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
    if (strncmp(url, "/v1/stats/", 10) == 0 || strncmp(url, "/v1/edges/", 10) == 0)
        return read_api(cls, c, url, state);
    return reply(c, MHD_HTTP_NOT_FOUND, "application/json", copy("{\"error\":\"not found\"}\n"));
}

/* Stops the threads; the reads still queued or running are answered 503 and
 * resumed (libmicrohttpd must not stop with a connection suspended). */
static void stop_threads(Http *h)
{
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_broadcast(&h->queued);
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
    if (h->has_sweeper)
        pthread_join(h->sweeper, NULL);
    for (int i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i].thread, NULL);
    pthread_mutex_lock(&h->mu);
    while (h->head) {
        Job *j = h->head;
        h->head = j->next;
        h->nqueued--;
        if (job_answer(j, MHD_HTTP_SERVICE_UNAVAILABLE, error_body("relationd is stopping"))) {
            pthread_mutex_unlock(&h->mu);
            MHD_resume_connection(j->c);
            pthread_mutex_lock(&h->mu);
        }
    }
    h->tail = NULL;
    pthread_mutex_unlock(&h->mu);
}

static void http_free(Http *h)
{
    for (int i = 0; i < h->nworkers; i++) {
        engine_free(h->workers[i].engine);
        if (h->workers[i].ref)
            shared_config_release(h->workers[i].ref);
    }
    pthread_cond_destroy(&h->wake);
    pthread_cond_destroy(&h->queued);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

Http *http_start(const char *listen, char *err, size_t errlen)
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
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->queued, NULL);
    pthread_cond_init(&h->wake, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < READ_WORKERS; i++) {
        h->workers[i].h = h;
        if (pthread_create(&h->workers[i].thread, NULL, read_worker, &h->workers[i]) != 0)
            break;
        h->nworkers++;
    }
    h->has_sweeper =
        h->nworkers == READ_WORKERS && pthread_create(&h->sweeper, NULL, sweeper, h) == 0;
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
    MHD_stop_daemon(h->mhd);
    http_free(h);
}
