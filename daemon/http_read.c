/* http_read.c — the read API /v1/ and its platform-shaped twin
 * /api/v1.1/relations/get|get_counter (http_read.h): its arguments checked
 * on the server's threads, its reads run by READ_WORKERS threads of its own.
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
 * bodies: /v1/'s, or the platform's envelope for the /api/ reads (the same
 * reads, the same rendering inside). Failures: out of memory answers 503 or gives a NULL body; Redis's
 * errors and timeouts answer 503 with {"error": ...}. */
#include "daemon/http_read.h"
#include "daemon/shared_config.h"
#include "handlers/engine.h"
#include "handlers/layout.h"
#include "handlers/read.h"
#include "lib/clock.h"
#include "lib/jsonbuf.h"

#include <jansson.h>
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

/* What a read answers: /v1/stats, /v1/edges, or the platform's get (a page
 * of edges and the side's count) and get_counter (the statistics). */
typedef enum { READ_STATS, READ_EDGES, READ_API_GET, READ_API_COUNTER } ReadKind;

/* A read, checked, waiting for or run by a read thread. */
typedef struct Job {
    HttpState state;  /* HTTP_STATE_READ: first */
    struct Job *next; /* in the queue */
    struct MHD_Connection *c;
    int refs;         /* the connection's, and the read thread's while it runs it */
    int64_t deadline; /* arrival + redis.timeout_ms */
    int timeout_ms;
    bool answered; /* status and body set, the connection resumed */
    unsigned status;
    char *body;
    ReadKind kind;
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

/* b's text, NUL-terminated; NULL (b freed) when out of memory. */
static char *finished(JsonBuf *b)
{
    jsonbuf_char(b, '\0');
    if (b->oom) {
        jsonbuf_free(b);
        return NULL;
    }
    return b->data;
}

/* {"error": msg}\n, NULL when out of memory */
char *http_read_error_body(const char *msg)
{
    JsonBuf b = {0};
    jsonbuf_cstr(&b, "{\"error\":");
    jsonbuf_string(&b, msg, strlen(msg));
    jsonbuf_cstr(&b, "}\n");
    return finished(&b);
}

char *http_api_error_body(unsigned status, const char *msg)
{
    JsonBuf b = {0};
    jsonbuf_cstr(&b, "{\"error\":");
    jsonbuf_int(&b, status);
    jsonbuf_cstr(&b, ",\"error_text\":");
    jsonbuf_string(&b, msg, strlen(msg));
    jsonbuf_cstr(&b, "}\n");
    return finished(&b);
}

/* j's error body, in its API's shape. */
static char *job_error(const Job *j, unsigned status, const char *msg)
{
    return j->kind == READ_API_GET || j->kind == READ_API_COUNTER
               ? http_api_error_body(status, msg)
               : http_read_error_body(msg);
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
static const char *paging_args(const Args *a, Job *j)
{
    unsigned long long v;
    j->limit = EDGES_LIMIT_DEFAULT;
    if (a->has_limit) {
        if (a->has_limit > 1 || a->bad_limit ||
            !parse_digits(a->limit, a->limit + strlen(a->limit), EDGES_LIMIT_MAX, &v) || v < 1)
            return "limit: an integer 1..1000 (given once)";
        j->limit = (long)v;
    }
    snprintf(j->hscan, sizeof j->hscan, "0");
    j->after[0] = '\0';
    if (a->has_cursor) {
        const char *cur = a->cursor, *dot = strchr(cur, '.');
        const char *dend = dot ? dot : cur + strlen(cur);
        bool bad = a->has_cursor > 1 || a->bad_cursor || !parse_digits(cur, dend, ULLONG_MAX, &v);
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

/* /v1/edges' query arguments (paging_args). */
static const char *edges_args(struct MHD_Connection *c, Job *j)
{
    Args a = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, take_arg, &a);
    return paging_args(&a, j);
}

const Config *http_reader_current(ConfigRef **ref, Engine **engine)
{
    if (!*ref || shared_config_outdated(*ref)) {
        ConfigRef *fresh = shared_config_acquire();
        if (!fresh)
            return *ref ? config_ref_get(*ref) : NULL;
        const Config *cfg = config_ref_get(fresh);
        if (!*engine) {
            *engine = engine_create(cfg);
            if (*engine)
                engine_set_reader(*engine);
        }
        else if (!engine_set_config(*engine, cfg)) {
            shared_config_release(fresh);
            return config_ref_get(*ref);
        }
        if (*ref)
            shared_config_release(*ref);
        *ref = fresh;
    }
    return *engine ? config_ref_get(*ref) : NULL;
}

static void timed_out(const Job *j, char *err, size_t errlen)
{
    snprintf(err, errlen, "redis: no answer within redis.timeout_ms (%d ms)", j->timeout_ms);
}

/* A page of edges into out: "<items>":[...],"cursor":... (false with err). */
static bool read_edges(Worker *w, const RelationDef *rel, const Job *j, const char *items,
                       JsonBuf *out, char *err, size_t errlen)
{
    EdgePage page = {0};
    long taken = 0, limit = j->limit;
    char hscan[32], next[32];
    snprintf(hscan, sizeof hscan, "%s", j->hscan);
    bool more = true, ok = true, cut = false;
    bool after = j->after[0] != '\0'; /* the edge to go on after still to find */
    size_t after_len = strlen(j->after);
    char resume[CURSOR_MAX + 1] = "";
    jsonbuf_char(out, '"');
    jsonbuf_cstr(out, items);
    jsonbuf_cstr(out, "\":[");
    size_t start = out->len;
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
            if (out->len > start)
                jsonbuf_char(out, ',');
            read_edge_json(out, rel, j->side, &page.edges[k]);
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
    if (!ok)
        return false;
    jsonbuf_cstr(out, "],\"cursor\":");
    if (resume[0]) {
        jsonbuf_string(out, resume, strlen(resume));
    } else if (more) {
        jsonbuf_string(out, hscan, strlen(hscan));
    } else {
        jsonbuf_cstr(out, "null");
    }
    return true;
}

bool http_read_stats_json(Engine *e, const RelationDef *rel, Side side, const char *profile,
                          JsonBuf *out, char *err, size_t errlen)
{
    SideStats *st = malloc(sizeof *st);
    StatsKeep keep = {0};
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool ok = engine_side_stats(e, rel, side, profile, st, &keep, err, errlen);
    if (ok)
        trigger_stats_json(out, rel, st);
    stats_keep_free(&keep);
    free(st);
    return ok;
}

/* The side's edge count (get's total_count) into out. */
static bool read_count(Worker *w, const RelationDef *rel, const Job *j, JsonBuf *out, char *err,
                       size_t errlen)
{
    SideStats *st = malloc(sizeof *st);
    StatsKeep keep = {0};
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool ok = engine_side_stats(w->engine, rel, j->side, j->profile, st, &keep, err, errlen);
    if (ok)
        jsonbuf_int(out, st->count);
    stats_keep_free(&keep);
    free(st);
    return ok;
}

/* The read's body into out (false with err). */
static bool read_body(Worker *w, const RelationDef *rel, const Job *j, JsonBuf *out, char *err,
                      size_t errlen)
{
    bool ok;
    switch (j->kind) {
    case READ_STATS:
        ok = http_read_stats_json(w->engine, rel, j->side, j->profile, out, err, errlen);
        break;
    case READ_EDGES:
        jsonbuf_char(out, '{');
        ok = read_edges(w, rel, j, "edges", out, err, errlen);
        jsonbuf_char(out, '}');
        break;
    case READ_API_COUNTER:
        jsonbuf_cstr(out, "{\"error\":0,\"error_text\":\"Successful\",\"data\":");
        ok = http_read_stats_json(w->engine, rel, j->side, j->profile, out, err, errlen);
        jsonbuf_char(out, '}');
        break;
    default: /* READ_API_GET */
        jsonbuf_cstr(out, "{\"error\":0,\"error_text\":\"Successful\",\"data\":{"
                          "\"total_count\":");
        ok = read_count(w, rel, j, out, err, errlen);
        jsonbuf_char(out, ',');
        ok = ok && read_edges(w, rel, j, "relations", out, err, errlen);
        jsonbuf_cstr(out, "}}");
        break;
    }
    jsonbuf_char(out, '\n');
    return ok;
}

/* Runs a read: its status, *body set (NULL when out of memory). */
static unsigned run_read(Worker *w, const Job *j, char **body)
{
    char err[512];
    const Config *cfg = http_reader_current(&w->ref, &w->engine);
    const RelationDef *rel = cfg ? config_relation(cfg, j->rel) : NULL;
    *body = NULL;
    if (!cfg) {
        *body = job_error(j, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (!rel) { /* gone with a reload since the request was checked */
        snprintf(err, sizeof err, "unknown relation \"%s\"", j->rel);
        *body = job_error(j, MHD_HTTP_NOT_FOUND, err);
        return MHD_HTTP_NOT_FOUND;
    }
    /* else a layout not known, or Redis unreachable */
    if (engine_layout_known(w->engine, err, sizeof err)) {
        JsonBuf out = {0};
        if (read_body(w, rel, j, &out, err, sizeof err)) {
            if ((*body = finished(&out)))
                return MHD_HTTP_OK;
            snprintf(err, sizeof err, "out of memory");
        } else {
            jsonbuf_free(&out);
        }
    }
    if (clock_now_ms() >= j->deadline)
        timed_out(j, err, sizeof err);
    *body = job_error(j, MHD_HTTP_SERVICE_UNAVAILABLE, err);
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
    j->kind = strncmp(path, "/v1/edges/", 10) == 0 ? READ_EDGES : READ_STATS;
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
    return j->kind == READ_EDGES ? edges_args(c, j) : NULL;
}

/* The answer of a resumed request's read. */
static void resumed(HttpReads *r, Job *j, unsigned *status, char **body)
{
    pthread_mutex_lock(&r->mu);
    *body = j->body;
    *status = j->status;
    j->body = NULL;
    pthread_mutex_unlock(&r->mu);
}

/* Queues j (checked) for a read thread, c suspended: false, *state = j.
 * Else true with the answer (j freed). */
static bool queue_job(HttpReads *r, struct MHD_Connection *c, const Config *cfg, Job *j,
                      void **state, unsigned *status, char **body)
{
    char msg[128];
    j->c = c;
    j->state.kind = HTTP_STATE_READ;
    j->refs = 1;
    j->timeout_ms = cfg->redis_timeout_ms;
    j->deadline = clock_now_ms() + cfg->redis_timeout_ms;
    pthread_mutex_lock(&r->mu);
    if (r->stopping || r->nqueued >= READ_QUEUE_MAX) {
        pthread_mutex_unlock(&r->mu);
        *status = MHD_HTTP_SERVICE_UNAVAILABLE;
        snprintf(msg, sizeof msg, "busy: %d reads waiting already, retry later", READ_QUEUE_MAX);
        *body = job_error(j, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
        free(j);
        return true;
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
}

bool http_read_request(HttpReads *r, struct MHD_Connection *c, const char *path,
                       const Config *cfg, void **state, unsigned *status, char **body)
{
    Job *j = *state;
    if (j) { /* resumed: answered */
        resumed(r, j, status, body);
        return true;
    }
    char msg[128];
    const char *bad;
    if (!(j = calloc(1, sizeof *j))) {
        *status = MHD_HTTP_SERVICE_UNAVAILABLE;
        *body = http_read_error_body("out of memory");
        return true;
    }
    if ((bad = check_request(c, path, cfg, j, status, msg, sizeof msg))) {
        free(j);
        *body = http_read_error_body(bad);
        return true;
    }
    return queue_job(r, c, cfg, j, state, status, body);
}

/* The platform's body into j: NULL, or the error to answer with *status
 * (msg holding it). */
static const char *check_api(const char *what, const char *body, size_t len, const Config *cfg,
                             Job *j, unsigned *status, char *msg, size_t msglen)
{
    static const char *const keys[] = {"rel_id", "profile_id", "direction", "limit", "cursor"};
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr), *v;
    const char *key;
    *status = MHD_HTTP_BAD_REQUEST;
    j->kind = strcmp(what, "get") == 0 ? READ_API_GET : READ_API_COUNTER;
    if (!root) {
        snprintf(msg, msglen, "body: not JSON: %s at column %d", jerr.text, jerr.column);
        return msg;
    }
    const char *bad = NULL;
    if (!json_is_object(root))
        bad = "body: must be a JSON object";
    json_object_foreach(root, key, v) {
        bool known = false;
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            known |= strcmp(key, keys[i]) == 0;
        if (!known && !bad) {
            snprintf(msg, msglen, "%.64s: not a field (rel_id, profile_id, direction, limit, "
                     "cursor)", key);
            bad = msg;
        }
    }
    v = json_object_get(root, "rel_id");
    if (!bad && (!json_is_string(v) || json_string_length(v) > CONFIG_SHORT_MAX))
        bad = "rel_id: required, a relation's short name";
    if (!bad) {
        snprintf(j->rel, sizeof j->rel, "%s", json_string_value(v));
        if (!config_relation(cfg, j->rel)) {
            *status = MHD_HTTP_NOT_FOUND;
            snprintf(msg, msglen, "rel_id: unknown relation \"%s\"", j->rel);
            bad = msg;
        }
    }
    v = json_object_get(root, "profile_id");
    if (!bad && json_is_integer(v))
        snprintf(j->profile, sizeof j->profile, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (!bad && json_is_string(v) && json_string_length(v) >= 1 &&
             json_string_length(v) <= EVENT_PROFILE_MAX && !memchr(json_string_value(v), 0,
                                                                   json_string_length(v)))
        snprintf(j->profile, sizeof j->profile, "%s", json_string_value(v));
    else if (!bad)
        bad = "profile_id: required, a string of 1..128 bytes or an integer";
    v = json_object_get(root, "direction");
    j->side = SIDE_DIRECT;
    if (!bad && v && json_is_string(v) && strcmp(json_string_value(v), "reverse") == 0)
        j->side = SIDE_REVERSE;
    else if (!bad && v && !(json_is_string(v) && strcmp(json_string_value(v), "direct") == 0))
        bad = "direction: direct or reverse";
    Args a = {0};
    v = json_object_get(root, "limit");
    if (!bad && v) {
        a.has_limit = 1;
        a.bad_limit = !json_is_integer(v) || json_integer_value(v) < 1 ||
                      json_integer_value(v) > EDGES_LIMIT_MAX;
        if (!a.bad_limit)
            snprintf(a.limit, sizeof a.limit, "%d", (int)json_integer_value(v));
    }
    v = json_object_get(root, "cursor");
    if (!bad && v && !json_is_null(v)) {
        a.has_cursor = 1;
        a.bad_cursor = !json_is_string(v) || json_string_length(v) > CURSOR_MAX;
        if (!a.bad_cursor)
            snprintf(a.cursor, sizeof a.cursor, "%s", json_string_value(v));
    }
    if (!bad)
        bad = paging_args(&a, j);
    json_decref(root);
    return bad;
}

bool http_read_api(HttpReads *r, struct MHD_Connection *c, const char *what, const char *body,
                   size_t len, const Config *cfg, void **state, unsigned *status, char **out)
{
    Job *j = *state;
    if (j) { /* resumed: answered */
        resumed(r, j, status, out);
        return true;
    }
    char msg[256];
    const char *bad;
    if (!(j = calloc(1, sizeof *j))) {
        *status = MHD_HTTP_SERVICE_UNAVAILABLE;
        *out = http_api_error_body(*status, "out of memory");
        return true;
    }
    if ((bad = check_api(what, body, len, cfg, j, status, msg, sizeof msg))) {
        *out = http_api_error_body(*status, bad);
        free(j);
        return true;
    }
    return queue_job(r, c, cfg, j, state, status, out);
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
        if (job_answer(j, MHD_HTTP_SERVICE_UNAVAILABLE,
                       job_error(j, MHD_HTTP_SERVICE_UNAVAILABLE, err)))
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
            if (job_answer(j, MHD_HTTP_SERVICE_UNAVAILABLE,
                       job_error(j, MHD_HTTP_SERVICE_UNAVAILABLE, err)))
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
                       job_error(j, MHD_HTTP_SERVICE_UNAVAILABLE, "relationd is stopping"))) {
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
