/* http.h — the HTTP endpoint on http.listen (one thread of libmicrohttpd's):
 * GET /metrics (Prometheus text), /healthz (the process answers), /readyz
 * (503 and a JSON body naming what is down or awaited: metrics_down_json). */
#ifndef RELATIOND_HTTP_H
#define RELATIOND_HTTP_H

#include <stddef.h>

typedef struct Http Http;

/* Listens on "host:port" ("[::1]:9464"). NULL with the reason in err. */
Http *http_start(const char *listen, char *err, size_t errlen) __attribute__((warn_unused_result));
void http_stop(Http *h);

#endif
