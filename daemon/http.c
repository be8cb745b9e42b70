/* http.c — /metrics, /healthz, /readyz and the read API /v1/ (http.h).
 * The operations handlers only read the metrics registry, whose lock the
 * sources take once per batch; /v1/ reads Redis through an engine of this
 * thread's own (libmicrohttpd's one thread runs every handler). */
#include "daemon/http.h"
#include "daemon/metrics.h"
#include "daemon/shared_config.h"
#include "handlers/engine.h"
#include "handlers/jsonbuf.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct Http {
    struct MHD_Daemon *mhd;
    ConfigRef *ref;  /* the configuration the engine works with */
    Engine *engine;  /* connected on the first read */
};

#define EDGES_LIMIT_DEFAULT 100
#define EDGES_LIMIT_MAX 1000

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

/* {"error": msg} */
static enum MHD_Result error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    JsonBuf b = {0};
    jsonbuf_cstr(&b, "{\"error\":");
    jsonbuf_string(&b, msg, strlen(msg));
    jsonbuf_cstr(&b, "}\n");
    jsonbuf_char(&b, '\0');
    return reply(c, status, "application/json", b.oom ? NULL : b.data);
}

/* URLs arrive as sent (see http_start): path segments are decoded here,
 * one by one, so that a profile id may hold a '/'. */
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

/* The configuration of this request, the engine switched to it. */
static const Config *current(Http *h)
{
    if (!h->ref || shared_config_outdated(h->ref)) {
        ConfigRef *fresh = shared_config_acquire();
        if (!fresh)
            return h->ref ? config_ref_get(h->ref) : NULL;
        const Config *cfg = config_ref_get(fresh);
        if (!h->engine)
            h->engine = engine_create(cfg);
        else if (!engine_set_config(h->engine, cfg)) {
            shared_config_release(fresh);
            return config_ref_get(h->ref);
        }
        if (h->ref)
            shared_config_release(h->ref);
        h->ref = fresh;
    }
    return h->engine ? config_ref_get(h->ref) : NULL;
}

/* /v1/stats/<relation>/<side>/<profile> and /v1/edges/... */
static enum MHD_Result read_api(Http *h, struct MHD_Connection *c, const char *path)
{
    const Config *cfg = current(h);
    if (!cfg)
        return error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    if (cfg->http_token) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (!auth || strncmp(auth, "Bearer ", 7) != 0 || strcmp(auth + 7, cfg->http_token) != 0)
            return error(c, MHD_HTTP_UNAUTHORIZED, "Authorization: Bearer <http.token> required");
    }
    bool edges = strncmp(path, "/v1/edges/", 10) == 0;
    const char *p = path + 10; /* both prefixes are 10 bytes long */
    const char *s1 = strchr(p, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    char rel_name[CONFIG_SHORT_MAX + 1], side_name[16], profile[EVENT_PROFILE_MAX + 1];
    if (!s1 || !s2 || !decode(p, s1, rel_name, sizeof rel_name) ||
        !decode(s1 + 1, s2, side_name, sizeof side_name))
        return error(c, MHD_HTTP_NOT_FOUND, "not found: /v1/stats|edges/<relation>/<side>/<profile>");
    const RelationDef *rel = config_relation(cfg, rel_name);
    if (!rel) {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown relation \"%s\"", rel_name);
        return error(c, MHD_HTTP_NOT_FOUND, msg);
    }
    Side side;
    if (strcmp(side_name, "direct") == 0)
        side = SIDE_DIRECT;
    else if (strcmp(side_name, "reverse") == 0)
        side = SIDE_REVERSE;
    else
        return error(c, MHD_HTTP_NOT_FOUND, "side must be direct or reverse");
    if (!decode(s2 + 1, s2 + 1 + strlen(s2 + 1), profile, sizeof profile) || !*profile)
        return error(c, MHD_HTTP_BAD_REQUEST, "profile: 1..128 bytes, percent-encoded");
    char err[512];
    if (!edges) {
        char *json = NULL;
        if (!engine_stats(h->engine, rel, side, profile, &json, err, sizeof err))
            return error(c, MHD_HTTP_SERVICE_UNAVAILABLE, err);
        size_t n = strlen(json);
        char *body = realloc(json, n + 2);
        if (!body) {
            free(json);
            return MHD_NO;
        }
        memcpy(body + n, "\n", 2);
        return reply(c, MHD_HTTP_OK, "application/json", body);
    }

    /* limit 1..1000; cursor "<HSCAN cursor>", or "<HSCAN cursor>.<hex of the
     * last counterpart returned>" when a page of Redis's was cut: it is
     * asked again and read after that edge (all of it again if that edge
     * went meanwhile: an edge may then come twice, none is missed). */
    const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    const char *cur = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cursor");
    long limit = EDGES_LIMIT_DEFAULT;
    char hscan[32] = "0", after[EVENT_PROFILE_MAX + 1] = "", *end;
    if (lim) {
        limit = strtol(lim, &end, 10);
        if (!*lim || *end || limit < 1 || limit > EDGES_LIMIT_MAX)
            return error(c, MHD_HTTP_BAD_REQUEST, "limit: an integer 1..1000");
    }
    if (cur) {
        unsigned long long at = strtoull(cur, &end, 10);
        bool bad = !*cur || *cur == '-' || end == cur;
        if (!bad && *end == '.') {
            size_t hl = strlen(end + 1);
            bad = hl == 0 || hl % 2 || hl / 2 > EVENT_PROFILE_MAX;
            for (size_t i = 0; !bad && i < hl / 2; i++) {
                int hi = hexval(end[1 + 2 * i]), lo = hexval(end[2 + 2 * i]);
                bad = hi < 0 || lo < 0 || (hi == 0 && lo == 0);
                after[i] = (char)(hi * 16 + lo);
            }
            after[hl / 2] = '\0';
        } else if (!bad && *end) {
            bad = true;
        }
        if (bad || (at == 0 && !after[0]))
            return error(c, MHD_HTTP_BAD_REQUEST, "cursor: as returned by the previous page");
        snprintf(hscan, sizeof hscan, "%llu", at);
    }
    JsonBuf out = {0}, page = {0}, mark = {0};
    long taken = 0;
    char next[32];
    bool more = true, ok = true, cut = false;
    jsonbuf_cstr(&out, "{\"edges\":[");
    size_t start = out.len;
    if (after[0]) {
        /* how the edge to go on after starts its line */
        jsonbuf_cstr(&mark, "{\"profile_id\":");
        jsonbuf_string(&mark, after, strlen(after));
        jsonbuf_char(&mark, ',');
    }
    const char *last = NULL; /* the line of the last edge taken */
    size_t last_len = 0;
    while (ok && more && !cut) {
        int n;
        jsonbuf_reset(&page);
        ok = engine_edges(h->engine, rel, side, profile, hscan, (int)limit, "\n", &page, &n,
                          next, err, sizeof err);
        if (!ok)
            break;
        const char *e = page.data, *pend = page.data + page.len, *from = e;
        if (mark.len) {
            /* after the marked edge, if it is still there */
            for (const char *x = e; page.len && x < pend;) {
                const char *nl = memchr(x, '\n', (size_t)(pend - x));
                if ((size_t)(pend - x) >= mark.len && memcmp(x, mark.data, mark.len) == 0) {
                    from = nl ? nl + 1 : pend;
                    break;
                }
                x = nl ? nl + 1 : pend;
            }
            mark.len = 0;
        }
        for (e = from; page.len && e < pend;) {
            const char *nl = memchr(e, '\n', (size_t)(pend - e));
            const char *eend = nl ? nl : pend;
            if (taken == limit) {
                cut = true; /* the page goes on after the last edge taken */
                break;
            }
            if (out.len > start)
                jsonbuf_char(&out, ',');
            jsonbuf_put(&out, e, (size_t)(eend - e));
            last = e;
            last_len = (size_t)(eend - e);
            taken++;
            e = nl ? nl + 1 : pend;
        }
        if (!cut) {
            more = strcmp(next, "0") != 0;
            snprintf(hscan, sizeof hscan, "%s", next);
            if (taken == limit)
                break;
        }
    }
    char resume[32 + 2 * EVENT_PROFILE_MAX + 2] = "";
    if (ok && cut && last) {
        /* the counterpart of the last line: {"profile_id":"<id>",... */
        json_error_t je;
        json_t *edge = json_loadb(last, last_len, 0, &je);
        const char *id = edge ? json_string_value(json_object_get(edge, "profile_id")) : NULL;
        size_t at = (size_t)snprintf(resume, sizeof resume, "%s.", hscan);
        static const char hex[] = "0123456789abcdef";
        for (const char *q = id; q && *q && at + 2 < sizeof resume; q++) {
            resume[at++] = hex[(unsigned char)*q >> 4];
            resume[at++] = hex[(unsigned char)*q & 15];
        }
        resume[at] = '\0';
        if (!id)
            ok = false, snprintf(err, sizeof err, "an edge that does not parse");
        json_decref(edge);
    }
    jsonbuf_free(&page);
    jsonbuf_free(&mark);
    if (!ok) {
        jsonbuf_free(&out);
        return error(c, MHD_HTTP_SERVICE_UNAVAILABLE, err);
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
        return MHD_NO;
    }
    return reply(c, MHD_HTTP_OK, "application/json", out.data);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)version, (void)upload, (void)upload_size, (void)state;
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
        return read_api(cls, c, url);
    return reply(c, MHD_HTTP_NOT_FOUND, "application/json", copy("{\"error\":\"not found\"}\n"));
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
    if (!h) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR,
                              ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                              MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_UNESCAPE_CALLBACK,
                              no_unescape, NULL, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->mhd) {
        snprintf(err, errlen, "http.listen %s: cannot listen (address in use?)", listen);
        free(h);
        return NULL;
    }
    return h;
}

void http_stop(Http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->mhd);
    engine_free(h->engine);
    if (h->ref)
        shared_config_release(h->ref);
    free(h);
}
