/* http_ui.c — the relation card page, GET /v1/relations and the trigger
 * stream (http_ui.h).
 *
 * The page's files are compiled in (build/ui_assets.c, generated from
 * daemon/ui/ by tools/embed.sh) and served as they are, with a
 * Content-Security-Policy that allows this server's own files only.
 *
 * A stream is a libmicrohttpd response of unknown size (chunked) whose
 * reader takes the subscriber's queue (trigger_feed_read): with nothing to
 * send, the feed parks it (the connection suspended, under the feed's lock,
 * so that a wake cannot come before the suspension) and a post, keepalive
 * or the end wakes it (resumed). The response's free callback leaves the
 * feed: a connection is closed only while it is not suspended (a client
 * gone is seen by the next write: a keepalive at the latest). */
#include "daemon/http_ui.h"
#include "daemon/http_read.h"
#include "daemon/trigger_feed.h"
#include "handlers/trigger.h"
#include "lib/jsonbuf.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* build/ui_assets.c */
extern const char ui_index_html[], ui_card_css[], ui_card_js[];

#define STREAM_BLOCK 16384
#define STREAM_END_MS 1000

static const struct {
    const char *path, *type;
    const char *body;
} assets[] = {
    {"/ui/", "text/html; charset=utf-8", ui_index_html},
    {"/ui/card.css", "text/css; charset=utf-8", ui_card_css},
    {"/ui/card.js", "text/javascript; charset=utf-8", ui_card_js},
};
#define NASSETS (sizeof assets / sizeof assets[0])

static const char RELATIONS[] = "/v1/relations";
static const char STREAM[] = "/v1/triggers/stream";

bool http_ui_path(const char *url)
{
    if (strcmp(url, "/ui") == 0 || strcmp(url, RELATIONS) == 0 || strcmp(url, STREAM) == 0)
        return true;
    for (size_t i = 0; i < NASSETS; i++)
        if (strcmp(url, assets[i].path) == 0)
            return true;
    return false;
}

bool http_ui_protected(const char *url)
{
    return strncmp(url, "/v1/", 4) == 0;
}

/* Queues r (its reference dropped) with the headers every answer here has. */
static enum MHD_Result send_response(struct MHD_Connection *c, unsigned status, const char *type,
                                     struct MHD_Response *r)
{
    if (!r)
        return MHD_NO; /* out of memory: the connection is closed */
    if (MHD_add_response_header(r, "Content-Type", type) != MHD_YES ||
        MHD_add_response_header(r, "Cache-Control", "no-cache") != MHD_YES ||
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A malloc'ed JSON body (NULL: out of memory, the connection closed). */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *body)
{
    if (!body)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(body);
    return send_response(c, status, "application/json", r);
}

static enum MHD_Result send_asset(struct MHD_Connection *c, const char *path)
{
    for (size_t i = 0; i < NASSETS; i++) {
        if (strcmp(path, assets[i].path) != 0)
            continue;
        struct MHD_Response *r = MHD_create_response_from_buffer(
            strlen(assets[i].body), (void *)assets[i].body, MHD_RESPMEM_PERSISTENT);
        if (r && MHD_add_response_header(r, "Content-Security-Policy",
                                         "default-src 'self'; base-uri 'none'; "
                                         "frame-ancestors 'none'") != MHD_YES) {
            MHD_destroy_response(r);
            return MHD_NO;
        }
        return send_response(c, MHD_HTTP_OK, assets[i].type, r);
    }
    /* "/ui": the page is "/ui/" (its files are named relative to it) */
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (r && MHD_add_response_header(r, "Location", "/ui/") != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    return send_response(c, MHD_HTTP_MOVED_PERMANENTLY, "text/plain", r);
}

static void str(JsonBuf *b, const char *s)
{
    if (s)
        jsonbuf_string(b, s, strlen(s));
    else
        jsonbuf_cstr(b, "null");
}

/* {"relations":[...]}: each relation as the configuration file has it
 * (short, name, database_a, database_b, properties with type, save_amount
 * and save_top, thresholds with direction, stat, property, value, name),
 * numbers as the triggers print them. */
static char *relations_json(const Config *cfg)
{
    static const char *const types[] = {[PROP_INT] = "int", [PROP_FLOAT] = "float",
                                        [PROP_BOOL] = "bool"};
    static const char *const stats[] = {[STAT_COUNT] = "count", [STAT_TOTAL] = "total",
                                        [STAT_EDGE] = "edge"};
    JsonBuf b = {0};
    jsonbuf_cstr(&b, "{\"relations\":[");
    for (int i = 0; i < cfg->nrelations; i++) {
        const RelationDef *rel = &cfg->relations[i];
        jsonbuf_cstr(&b, i ? ",{\"short\":" : "{\"short\":");
        str(&b, rel->short_name);
        jsonbuf_cstr(&b, ",\"name\":");
        str(&b, rel->name);
        jsonbuf_cstr(&b, ",\"database_a\":");
        str(&b, rel->database_a);
        jsonbuf_cstr(&b, ",\"database_b\":");
        str(&b, rel->database_b);
        jsonbuf_cstr(&b, ",\"properties\":[");
        for (int k = 0; k < rel->nproperties; k++) {
            const PropertyDef *p = &rel->properties[k];
            jsonbuf_cstr(&b, k ? ",{\"short\":" : "{\"short\":");
            str(&b, p->short_name);
            jsonbuf_cstr(&b, ",\"name\":");
            str(&b, p->name);
            jsonbuf_cstr(&b, ",\"type\":");
            str(&b, types[p->type]);
            jsonbuf_cstr(&b, p->save_amount ? ",\"save_amount\":true" : ",\"save_amount\":false");
            jsonbuf_cstr(&b, ",\"save_top\":");
            if (p->top_order == TOP_NONE) {
                jsonbuf_cstr(&b, "null");
            } else {
                jsonbuf_cstr(&b, p->top_order == TOP_DESC ? "{\"order\":\"desc\",\"limit\":"
                                                          : "{\"order\":\"asc\",\"limit\":");
                jsonbuf_int(&b, p->top_limit);
                jsonbuf_char(&b, '}');
            }
            jsonbuf_char(&b, '}');
        }
        jsonbuf_cstr(&b, "],\"thresholds\":[");
        for (int k = 0; k < rel->nthresholds; k++) {
            const ThresholdDef *t = &rel->thresholds[k];
            const PropertyDef *p = t->property >= 0 ? &rel->properties[t->property] : NULL;
            if (k)
                jsonbuf_char(&b, ',');
            jsonbuf_cstr(&b, t->side == SIDE_DIRECT ? "{\"direction\":\"direct\""
                                                    : "{\"direction\":\"reverse\"");
            jsonbuf_cstr(&b, ",\"stat\":");
            str(&b, stats[t->stat]);
            jsonbuf_cstr(&b, ",\"property\":");
            str(&b, p ? p->short_name : NULL);
            jsonbuf_cstr(&b, ",\"value\":");
            /* a count is a number of edges; a total or an edge's weight is
             * in the property's units */
            trigger_number(&b, t->stat == STAT_COUNT ? NULL : p, t->value);
            jsonbuf_cstr(&b, ",\"name\":");
            str(&b, t->name[0] ? t->name : NULL);
            jsonbuf_char(&b, '}');
        }
        jsonbuf_cstr(&b, "]}");
    }
    jsonbuf_cstr(&b, "]}\n");
    return jsonbuf_take(&b);
}

/* ---- the trigger stream ---- */

static void park(void *ctx)
{
    MHD_suspend_connection(ctx);
}

static void wake(void *ctx)
{
    MHD_resume_connection(ctx);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    long n = trigger_feed_read(cls, buf, max);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void stream_free(void *cls)
{
    trigger_feed_leave(cls);
}

static enum MHD_Result send_stream(struct MHD_Connection *c)
{
    char err[96];
    FeedSub *sub = trigger_feed_join(park, wake, c, err, sizeof err);
    if (!sub)
        return send_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, http_read_error_body(err));
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
                                                               stream_read, sub, stream_free);
    if (!r) {
        trigger_feed_leave(sub);
        return MHD_NO;
    }
    return send_response(c, MHD_HTTP_OK, "text/event-stream", r);
}

enum MHD_Result http_ui_request(struct MHD_Connection *c, const char *url, const Config *cfg)
{
    if (strcmp(url, RELATIONS) == 0)
        return send_json(c, MHD_HTTP_OK, relations_json(cfg));
    if (strcmp(url, STREAM) == 0)
        return send_stream(c);
    return send_asset(c, url);
}

void http_ui_sweep(int64_t now)
{
    trigger_feed_keepalive(now);
}

void http_ui_stop(void)
{
    if (!trigger_feed_end(STREAM_END_MS))
        log_at(LOG_DEBUG, "http", "trigger streams not ended within %d ms: closed",
               STREAM_END_MS);
}
