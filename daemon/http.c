/* http.c — /metrics, /healthz, /readyz (http.h). The handlers only read the
 * metrics registry, whose lock the sources take once per batch. */
#include "daemon/http.h"
#include "daemon/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct Http {
    struct MHD_Daemon *mhd;
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

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)cls, (void)version, (void)upload, (void)upload_size, (void)state;
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
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR,
                              ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                              MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
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
    free(h);
}
