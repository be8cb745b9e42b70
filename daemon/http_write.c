/* http_write.c — the POST routes (http_write.h): body, token, the events
 * checked and given their ids, then the HTTP source (writes) or the read
 * threads (get, get_counter) answer.
 *
 * A request's state is a Post (HttpState first), allocated on its first
 * call: its body grows as it comes; once complete the request is answered
 * at once (an error) or its connection suspended until the source or a read
 * thread answers, and the call after the resume replies. The events are
 * turned into the event JSON the sources carry (jansson), so that the
 * pipeline parses them as any other; each is checked here first with the
 * same parser, so a bad one is never submitted and a write is stored whole
 * or not at all (but for a refusal by the engine itself, named in the
 * 400). */
#include "daemon/http_write.h"
#include "daemon/http.h"
#include "daemon/metrics.h"
#include "daemon/shared_config.h"
#include "handlers/event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define API_PREFIX "/api/v1.1/relations/"
#define EVENTS_PATH "/v1/events"
/* the most an Idempotency-Key may hold: its batch suffix ":<line>" fits */
#define IDEM_MAX (EVENT_ID_MAX - 12)

typedef struct {
    HttpState state; /* HTTP_STATE_POST: first */
    char *body;
    size_t len, cap;
    bool too_large;
    bool waiting;    /* handed over: the next call after the resume replies */
    void *read;      /* http_read's, for get and get_counter */
    HttpWrite *write;
} Post;

/* The events of one write, checked, as they go to the source. */
typedef struct {
    char **texts, **ids;
    size_t n, cap;
    char rel[CONFIG_SHORT_MAX + 1];
    char profile_a[EVENT_PROFILE_MAX + 1], profile_b[EVENT_PROFILE_MAX + 1];
} Events;

static void events_free(Events *ev)
{
    for (size_t i = 0; i < ev->n; i++) {
        free(ev->texts[i]);
        free(ev->ids[i]);
    }
    free(ev->texts);
    free(ev->ids);
}

bool http_post_path(const char *url)
{
    return strcmp(url, EVENTS_PATH) == 0 || strncmp(url, API_PREFIX, strlen(API_PREFIX)) == 0;
}

/* The operation a platform path names (attach ...), or NULL. */
static const char *write_op(const char *url)
{
    static const char *const ops[] = {"attach", "edit", "strengthen", "detach"};
    if (strncmp(url, API_PREFIX, strlen(API_PREFIX)) != 0)
        return NULL;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (strcmp(url + strlen(API_PREFIX), ops[i]) == 0)
            return ops[i];
    return NULL;
}

static enum MHD_Result api_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return http_reply(c, status, "application/json", http_api_error_body(status, msg));
}

/* A random id for an event that came with none. */
static bool random_id(char *out, size_t len)
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r || len < 5 + 2 * sizeof r + 1)
        return false;
    size_t at = (size_t)snprintf(out, len, "http-");
    for (size_t i = 0; i < sizeof r; i++)
        at += (size_t)snprintf(out + at, len - at, "%02x", r[i]);
    return true;
}

/* The platform's body (op from the path) as an event object, into *event
 * (a new reference). NULL, or the error (msg holding it). */
static const char *platform_event(json_t *root, const char *op, json_t **event, char *msg,
                                  size_t msglen)
{
    static const char *const keys[] = {"rel_id", "profile_a", "profile_b", "weights", "id",
                                       "version", "occurred_at", "is_test"};
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        bool known = false;
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            known |= strcmp(key, keys[i]) == 0;
        if (!known) {
            snprintf(msg, msglen, "%.64s: not a field (rel_id, profile_a, profile_b, weights, id, "
                     "version, occurred_at, is_test)", key);
            return msg;
        }
    }
    json_t *rel = json_object_get(root, "rel_id");
    if (!rel)
        return "rel_id: required";
    if (!json_is_string(rel))
        return "rel_id: must be a string (the relation's short name)";
    json_t *ev = json_object();
    if (!ev || json_object_set_new(ev, "op", json_string(op)) != 0 ||
        json_object_set(ev, "relation", rel) != 0) {
        json_decref(ev);
        return "out of memory";
    }
    for (size_t i = 1; i < sizeof keys / sizeof *keys; i++)
        if ((v = json_object_get(root, keys[i])) && json_object_set(ev, keys[i], v) != 0) {
            json_decref(ev);
            return "out of memory";
        }
    *event = ev;
    return NULL;
}

/* One event object (taken) checked and added to out: its id set when
 * absent, its text the pipeline's. line: its line (1..) in a batch, 0 for
 * a single event. NULL, or the error with *status (msg holding it). */
static const char *add_event(const Config *cfg, json_t *ev, const char *idem, size_t line,
                             const char *relation_key, Events *out, unsigned *status,
                             char *msg, size_t msglen)
{
    char at[32] = "", id[EVENT_ID_MAX + 1], why[EVENT_ERR_MAX];
    const char *bad = NULL;
    char *text = NULL;
    if (line)
        snprintf(at, sizeof at, "line %zu: ", line);
    *status = MHD_HTTP_BAD_REQUEST;
    if (!json_is_object(ev)) {
        snprintf(msg, msglen, "%sevent must be a JSON object", at);
        json_decref(ev);
        return msg;
    }
    if (!json_object_get(ev, "id")) {
        if (idem && line)
            snprintf(id, sizeof id, "%s:%zu", idem, line);
        else if (idem)
            snprintf(id, sizeof id, "%s", idem);
        else if (!random_id(id, sizeof id))
            bad = "no random id to give the event: send an id";
        if (!bad && json_object_set_new(ev, "id", json_string(id)) != 0)
            bad = "out of memory";
    }
    const char *rel = json_string_value(json_object_get(ev, "relation"));
    if (!bad && rel && !config_relation(cfg, rel)) {
        *status = MHD_HTTP_NOT_FOUND;
        snprintf(msg, msglen, "%s%s: unknown relation \"%.64s\"", at, relation_key, rel);
        bad = msg;
    }
    if (!bad && !(text = json_dumps(ev, JSON_COMPACT)))
        bad = "out of memory";
    Event *parsed = bad ? NULL : malloc(sizeof *parsed);
    if (!bad && !parsed)
        bad = "out of memory";
    if (!bad && !event_parse(cfg, text, strlen(text), parsed, why, sizeof why)) {
        snprintf(msg, msglen, "%s%s", at, why);
        bad = msg;
    }
    json_decref(ev);
    if (!bad && out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 8;
        char **t = realloc(out->texts, cap * sizeof *t);
        if (t)
            out->texts = t;
        char **i = t ? realloc(out->ids, cap * sizeof *i) : NULL;
        if (i)
            out->ids = i;
        if (t && i)
            out->cap = cap;
        else
            bad = "out of memory";
    }
    char *idcopy = bad ? NULL : strdup(parsed->id);
    if (!bad && !idcopy)
        bad = "out of memory";
    if (bad) {
        if (strcmp(bad, "out of memory") == 0)
            *status = MHD_HTTP_SERVICE_UNAVAILABLE;
        free(text);
        free(parsed);
        return bad;
    }
    if (out->n == 0) {
        snprintf(out->rel, sizeof out->rel, "%s", parsed->rel->short_name);
        snprintf(out->profile_a, sizeof out->profile_a, "%s", parsed->profile_a);
        snprintf(out->profile_b, sizeof out->profile_b, "%s", parsed->profile_b);
    }
    out->texts[out->n] = text;
    out->ids[out->n++] = idcopy;
    free(parsed);
    return NULL;
}

/* The body's events into out: the platform's body (op set), or one event,
 * or JSON lines. NULL, or the error with *status. */
static const char *body_events(const Config *cfg, const char *op, const char *body, size_t len,
                               const char *idem, Events *out, unsigned *status, char *msg,
                               size_t msglen)
{
    json_error_t jerr;
    *status = MHD_HTTP_BAD_REQUEST;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (op) {
        json_t *ev = NULL;
        const char *bad;
        if (!root) {
            snprintf(msg, msglen, "body: not JSON: %s at column %d", jerr.text, jerr.column);
            return msg;
        }
        bad = json_is_object(root) ? platform_event(root, op, &ev, msg, msglen)
                                   : "body: must be a JSON object";
        json_decref(root);
        return bad ? bad : add_event(cfg, ev, idem, 0, "rel_id", out, status, msg, msglen);
    }
    if (root) /* one event (possibly over several lines) */
        return add_event(cfg, root, idem, 0, "relation", out, status, msg, msglen);
    size_t line = 0;
    for (const char *p = body, *end = body + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        line++;
        const char *q = p;
        while (q < stop && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < stop) {
            json_t *ev = json_loadb(p, (size_t)(stop - p), JSON_REJECT_DUPLICATES, &jerr);
            if (!ev) {
                snprintf(msg, msglen, "line %zu: not JSON: %s at column %d", line, jerr.text,
                         jerr.column);
                return msg;
            }
            const char *bad = add_event(cfg, ev, idem, line, "relation", out, status, msg,
                                        msglen);
            if (bad)
                return bad;
        }
        p = stop + 1;
    }
    if (out->n == 0)
        return "body: one event, or JSON lines of events, required";
    return NULL;
}

/* The complete body of a write: submitted (the connection suspended), or
 * answered now. */
static enum MHD_Result write_body(HttpSource *src, struct MHD_Connection *c, const char *url,
                                  Post *post, const Config *cfg)
{
    char msg[EVENT_ERR_MAX + 128];
    unsigned status;
    const char *idem = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    if (idem && (strlen(idem) < 1 || strlen(idem) > IDEM_MAX)) {
        snprintf(msg, sizeof msg, "Idempotency-Key: 1..%d bytes", IDEM_MAX);
        return api_error(c, MHD_HTTP_BAD_REQUEST, msg);
    }
    Events ev = {0};
    const char *bad = body_events(cfg, write_op(url), post->body ? post->body : "", post->len,
                                  idem, &ev, &status, msg, sizeof msg);
    if (bad) {
        events_free(&ev);
        if (status != MHD_HTTP_SERVICE_UNAVAILABLE)
            metrics_events(SOURCE_HTTP, APPLY_INVALID, 1);
        return api_error(c, status, bad);
    }
    char *answer;
    post->write = http_source_submit(src, c, ev.texts, ev.n, ev.ids, ev.n == 1, ev.rel,
                                     ev.profile_a, ev.profile_b, cfg, &status, &answer);
    if (!post->write)
        return http_reply(c, status, "application/json", answer);
    post->waiting = true;
    return MHD_YES;
}

/* The body is complete: answered, or handed over. */
static enum MHD_Result complete(HttpReads *reads, HttpSource *src, struct MHD_Connection *c,
                                const char *url, Post *post)
{
    if (post->too_large) {
        ConfigRef *ref = shared_config_acquire();
        char msg[128];
        snprintf(msg, sizeof msg, "body larger than http.max_body_bytes (%d bytes)",
                 ref ? config_ref_get(ref)->http_max_body_bytes : 0);
        if (ref)
            shared_config_release(ref);
        return api_error(c, MHD_HTTP_CONTENT_TOO_LARGE, msg);
    }
    ConfigRef *ref = shared_config_acquire();
    if (!ref)
        return api_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    const Config *cfg = config_ref_get(ref);
    enum MHD_Result ret = MHD_YES;
    const char *what = url + strlen(API_PREFIX);
    if (write_op(url) || strcmp(url, EVENTS_PATH) == 0) {
        ret = write_body(src, c, url, post, cfg);
    } else {
        unsigned status;
        char *body;
        if (http_read_api(reads, c, what, post->body ? post->body : "", post->len, cfg,
                          &post->read, &status, &body))
            ret = http_reply(c, status, "application/json", body);
        else
            post->waiting = true;
    }
    shared_config_release(ref);
    return ret;
}

/* The first call: the route and the token; a body announced too large. */
static enum MHD_Result start(HttpSource *src, struct MHD_Connection *c, const char *url,
                             void **state)
{
    bool write = write_op(url) || strcmp(url, EVENTS_PATH) == 0;
    const char *what = url + strlen(API_PREFIX);
    if (!write && strcmp(what, "get") != 0 && strcmp(what, "get_counter") != 0)
        return api_error(c, MHD_HTTP_NOT_FOUND, "not found: POST /v1/events or "
                         "/api/v1.1/relations/{attach,edit,strengthen,detach,get,get_counter}");
    if (write && !src)
        return api_error(c, MHD_HTTP_NOT_FOUND, "writes are not served: relationd has no hooks "
                         "section to deliver their triggers to");
    ConfigRef *ref = shared_config_acquire();
    if (!ref)
        return api_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    const Config *cfg = config_ref_get(ref);
    const char *token = write && cfg->http_write_token ? cfg->http_write_token : cfg->http_token;
    const char *name = write && cfg->http_write_token ? "http.write_token" : "http.token";
    long long max = cfg->http_max_body_bytes;
    bool allowed = http_authorized(c, token);
    shared_config_release(ref);
    char msg[128];
    if (!allowed) {
        snprintf(msg, sizeof msg, "Authorization: Bearer <%s> required", name);
        return api_error(c, MHD_HTTP_UNAUTHORIZED, msg);
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoll(cl, NULL, 10) > max) {
        snprintf(msg, sizeof msg, "body larger than http.max_body_bytes (%lld bytes)", max);
        return api_error(c, MHD_HTTP_CONTENT_TOO_LARGE, msg);
    }
    Post *post = calloc(1, sizeof *post);
    if (!post)
        return api_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    post->state.kind = HTTP_STATE_POST;
    post->cap = (size_t)max; /* the most the body may grow to */
    *state = post;
    return MHD_YES;
}

/* A piece of the body: kept, or dropped past the cap (413 at the end). */
static bool take(Post *post, const char *data, size_t n)
{
    if (post->too_large || post->len + n > post->cap) {
        post->too_large = true;
        free(post->body);
        post->body = NULL;
        post->len = 0;
        return true;
    }
    char *grown = realloc(post->body, post->len + n + 1);
    if (!grown)
        return false;
    memcpy(grown + post->len, data, n);
    post->body = grown;
    post->len += n;
    post->body[post->len] = '\0';
    return true;
}

enum MHD_Result http_post(HttpReads *reads, HttpSource *src, struct MHD_Connection *c,
                          const char *url, const char *upload, size_t *upload_size,
                          void **state)
{
    Post *post = *state;
    if (!post)
        return start(src, c, url, state);
    if (*upload_size) {
        bool ok = take(post, upload, *upload_size);
        *upload_size = 0;
        return ok ? MHD_YES : MHD_NO; /* out of memory: the connection is closed */
    }
    if (!post->waiting)
        return complete(reads, src, c, url, post);
    unsigned status; /* resumed: answered */
    char *body;
    if (post->write)
        http_source_answer(src, post->write, &status, &body);
    else
        http_read_api(reads, c, NULL, NULL, 0, NULL, &post->read, &status, &body);
    return http_reply(c, status, "application/json", body);
}

void http_post_completed(HttpReads *reads, HttpSource *src, void *state)
{
    Post *post = state;
    if (post->write)
        http_source_completed(src, post->write);
    if (post->read)
        http_read_completed(reads, post->read);
    free(post->body);
    free(post);
}
