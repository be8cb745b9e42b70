/* http_read.c — the read API /v1/ (http_read.h): its arguments checked on
 * the server's threads, its reads run by READ_WORKERS threads of its own.
 *
 * Threads: each read thread has its own engine (its own Redis connection,
 * connected on its first read, switched to a reloaded configuration before
 * a read) and takes reads from one queue of at most READ_QUEUE_MAX; so a
 * stalled Redis holds /v1/ reads only, never the operations endpoints of
 * http.c. r->mu guards the queue, the running reads and every answer.
 *
 * Ownership: a Job is held by its connection (dropped when the request
 * ends: http_read_completed) and by the read thread running it; the last
 * one frees it. Its answer (status, body) is set once, under r->mu, by the
 * first of the read thread, the sweep (its deadline: arrival +
 * redis.timeout_ms) and the stop; that one resumes the connection. The
 * engine's structs (SideStats, EdgePage) are rendered here into the JSON
 * bodies. Failures: out of memory answers 503 or gives a NULL body; Redis's
 * errors and timeouts answer 503 with {"error": ...}. */
#include "daemon/http_read.h"
#include "daemon/shared_config.h"
#include "handlers/engine.h"
#include "handlers/layout.h"
#include "handlers/read.h"
#include "lib/clock.h"
#include "lib/jsonbuf.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EDGES_LIMIT_DEFAULT 100
#define EDGES_LIMIT_MAX 1000

#define READ_WORKERS 2
#define READ_QUEUE_MAX 32

/* A cursor: "<HSCAN cursor>[.<hex of a counterpart>]" */
#define CURSOR_MAX (20 + 1 + 2 * EVENT_PROFILE_MAX)

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
    struct HttpReads *r;
    pthread_t thread;
    ConfigRef *ref; /* the configuration the engine works with */
    Engine *engine; /* connected on the first read */
    Job *job;       /* running */
} Worker;

struct HttpReads {
    pthread_mutex_t mu;
    pthread_cond_t queued; /* a job queued, or stopping */
    Job *head, *tail;
    size_t nqueued;
    bool stopping;
    Worker workers[READ_WORKERS];
    int nworkers;
};

/* {"error": msg}\n, NULL when out of memory */
char *http_read_error_body(const char *msg)
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
        if (!w->engine) {
            w->engine = engine_create(cfg);
            if (w->engine)
                engine_set_reader(w->engine);
        }
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
        *body = http_read_error_body("out of memory");
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (!rel) { /* gone with a reload since the request was checked */
        snprintf(err, sizeof err, "unknown relation \"%s\"", j->rel);
        *body = http_read_error_body(err);
        return MHD_HTTP_NOT_FOUND;
    }
    if (!engine_layout_known(w->engine, err, sizeof err)) {
        /* a layout not known, or Redis unreachable */
    } else if (j->edges) {
        *body = read_edges(w, rel, j, err, sizeof err);
    } else {
        SideStats *st = malloc(sizeof *st);
        StatsKeep keep = {0};
        if (!st) {
            *body = http_read_error_body("out of memory");
            return MHD_HTTP_SERVICE_UNAVAILABLE;
        }
        if (engine_side_stats(w->engine, rel, j->side, j->profile, st, &keep, err, sizeof err)) {
            JsonBuf text = {0};
            trigger_stats_json(&text, rel, st);
            jsonbuf_cstr(&text, "\n");
            jsonbuf_char(&text, '\0');
            stats_keep_free(&keep);
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
    *body = http_read_error_body(err);
    return MHD_HTTP_SERVICE_UNAVAILABLE;
}

/* Under r->mu: drops a hold on j, freeing it with the last. */
static void job_drop(Job *j)
{
    if (--j->refs == 0) {
        free(j->body);
        free(j);
    }
}

/* Under r->mu: answers j unless already answered; true when the caller is
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
    HttpReads *r = w->r;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->head && !r->stopping)
            pthread_cond_wait(&r->queued, &r->mu);
        if (r->stopping)
            break;
        Job *j = r->head;
        r->head = j->next;
        if (!r->head)
            r->tail = NULL;
        r->nqueued--;
        j->refs++;
        w->job = j;
        pthread_mutex_unlock(&r->mu);
        char *body;
        unsigned status = run_read(w, j, &body);
        pthread_mutex_lock(&r->mu);
        w->job = NULL;
        struct MHD_Connection *c = j->c; /* held by j's connection until resumed */
        bool resume = job_answer(j, status, body);
        job_drop(j);
        if (resume) {
            pthread_mutex_unlock(&r->mu);
            MHD_resume_connection(c);
            pthread_mutex_lock(&r->mu);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

bool http_read_path(const char *url)
{
    return strncmp(url, "/v1/stats/", 10) == 0 || strncmp(url, "/v1/edges/", 10) == 0;
}

/* Checks the path and arguments into j: NULL, or the error to answer with
 * *status (msg holding it when it names the relation). */
static const char *check_request(struct MHD_Connection *c, const char *path, const Config *cfg,
                                 Job *j, unsigned *status, char *msg, size_t msglen)
{
    j->edges = strncmp(path, "/v1/edges/", 10) == 0;
    const char *p = path + 10; /* both prefixes are 10 bytes long */
    const char *s1 = strchr(p, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    char side_name[16];
    *status = MHD_HTTP_NOT_FOUND;
    if (!s1 || !s2 || !decode(p, s1, j->rel, sizeof j->rel) ||
        !decode(s1 + 1, s2, side_name, sizeof side_name))
        return "not found: /v1/stats|edges/<relation>/<side>/<profile>";
    if (!config_relation(cfg, j->rel)) {
        snprintf(msg, msglen, "unknown relation \"%s\"", j->rel);
        return msg;
    }
    if (strcmp(side_name, "direct") == 0)
        j->side = SIDE_DIRECT;
    else if (strcmp(side_name, "reverse") == 0)
        j->side = SIDE_REVERSE;
    else
        return "side must be direct or reverse";
    *status = MHD_HTTP_BAD_REQUEST;
    if (!decode(s2 + 1, s2 + 1 + strlen(s2 + 1), j->profile, sizeof j->profile) || !*j->profile)
        return "profile: 1..128 bytes, percent-encoded";
    return j->edges ? edges_args(c, j) : NULL;
}

bool http_read_request(HttpReads *r, struct MHD_Connection *c, const char *path,
                       const Config *cfg, void **state, unsigned *status, char **body)
{
    Job *j = *state;
    if (j) { /* resumed: answered */
        pthread_mutex_lock(&r->mu);
        *body = j->body;
        *status = j->status;
        j->body = NULL;
        pthread_mutex_unlock(&r->mu);
        return true;
    }
    char msg[128];
    const char *bad;
    if (!(j = calloc(1, sizeof *j))) {
        *status = MHD_HTTP_SERVICE_UNAVAILABLE;
        *body = http_read_error_body("out of memory");
        return true;
    }
    if ((bad = check_request(c, path, cfg, j, status, msg, sizeof msg)))
        goto refused;
    j->c = c;
    j->refs = 1;
    j->timeout_ms = cfg->redis_timeout_ms;
    j->deadline = clock_now_ms() + cfg->redis_timeout_ms;
    pthread_mutex_lock(&r->mu);
    if (r->stopping || r->nqueued >= READ_QUEUE_MAX) {
        pthread_mutex_unlock(&r->mu);
        *status = MHD_HTTP_SERVICE_UNAVAILABLE;
        snprintf(msg, sizeof msg, "busy: %d reads waiting already, retry later", READ_QUEUE_MAX);
        bad = msg;
        goto refused;
    }
    MHD_suspend_connection(c); /* before a read thread may resume it */
    if (r->tail)
        r->tail->next = j;
    else
        r->head = j;
    r->tail = j;
    r->nqueued++;
    *state = j;
    pthread_cond_signal(&r->queued);
    pthread_mutex_unlock(&r->mu);
    return false;
refused:
    free(j);
    *body = http_read_error_body(bad);
    return true;
}

void http_read_completed(HttpReads *r, void *state)
{
    pthread_mutex_lock(&r->mu);
    job_drop(state);
    pthread_mutex_unlock(&r->mu);
}

void http_reads_sweep(HttpReads *r, int64_t now)
{
    struct MHD_Connection *resume[READ_QUEUE_MAX + READ_WORKERS];
    size_t nresume = 0;
    pthread_mutex_lock(&r->mu);
    for (Job **p = &r->head; *p;) {
        Job *j = *p;
        if (now < j->deadline) {
            p = &j->next;
            continue;
        }
        *p = j->next;
        r->nqueued--;
        char err[128];
        timed_out(j, err, sizeof err);
        if (job_answer(j, MHD_HTTP_SERVICE_UNAVAILABLE, http_read_error_body(err)))
            resume[nresume++] = j->c;
    }
    r->tail = NULL;
    for (Job *j = r->head; j; j = j->next)
        r->tail = j;
    for (int i = 0; i < r->nworkers; i++) {
        Job *j = r->workers[i].job;
        char err[128];
        if (j && now >= j->deadline && !j->answered) {
            timed_out(j, err, sizeof err);
            if (job_answer(j, MHD_HTTP_SERVICE_UNAVAILABLE, http_read_error_body(err)))
                resume[nresume++] = j->c;
        }
    }
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < nresume; i++)
        MHD_resume_connection(resume[i]);
}

void http_reads_stop(HttpReads *r)
{
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->queued);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->nworkers; i++)
        pthread_join(r->workers[i].thread, NULL);
    pthread_mutex_lock(&r->mu);
    while (r->head) {
        Job *j = r->head;
        r->head = j->next;
        r->nqueued--;
        if (job_answer(j, MHD_HTTP_SERVICE_UNAVAILABLE,
                       http_read_error_body("relationd is stopping"))) {
            pthread_mutex_unlock(&r->mu);
            MHD_resume_connection(j->c);
            pthread_mutex_lock(&r->mu);
        }
    }
    r->tail = NULL;
    pthread_mutex_unlock(&r->mu);
}

void http_reads_free(HttpReads *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nworkers; i++) {
        engine_free(r->workers[i].engine);
        if (r->workers[i].ref)
            shared_config_release(r->workers[i].ref);
    }
    pthread_cond_destroy(&r->queued);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

HttpReads *http_reads_start(void)
{
    HttpReads *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->queued, NULL);
    for (int i = 0; i < READ_WORKERS; i++) {
        r->workers[i].r = r;
        if (pthread_create(&r->workers[i].thread, NULL, read_worker, &r->workers[i]) != 0)
            break;
        r->nworkers++;
    }
    if (r->nworkers < READ_WORKERS) {
        http_reads_stop(r);
        http_reads_free(r);
        return NULL;
    }
    return r;
}
