/* hook_http.h — the sender of an http hook: POSTs one batch of trigger
 * bodies as a JSON array (Content-Type: application/json and the hook's
 * headers), signed as Standard Webhooks when the hook has a secret, and
 * classifies the answer: delivered, retry (after a delay) or disabled.
 *
 * Ownership: a HookHttp copies what it needs of the HookDef (the Config may
 * be freed after hook_http_new); the caller owns the triggers it passes
 * and the outcome. Threads: one HookHttp is used by one thread at a time
 * (its curl easy handle, kept for keep-alive, is not shareable); different
 * HookHttps may run in parallel. hook_http_new initialises libcurl
 * (curl_global_init, thread-safe in libcurl >= 7.84). Failure: an outcome
 * never fails (out of memory is a retry with reason "memory"); new fails
 * only out of memory or when curl cannot be set up, with a message. The
 * durable backlog, batching by batch_ms and the metrics are the caller's. */
#ifndef RELATIOND_HOOK_HTTP_H
#define RELATIOND_HOOK_HTTP_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    HOOK_DELIVERED, /* a 2xx within timeout_ms, its body matching success_regex when set */
    HOOK_RETRY,     /* send the same batch again after retry_ms */
    HOOK_DISABLED,  /* 410 Gone: the hook is disabled (logged at error level) */
} HookVerdict;

/* The longest wait a Retry-After may ask for; the back-off's cap. */
#define HOOK_RETRY_AFTER_MAX_MS 3600000
#define HOOK_BACKOFF_MIN_MS 1000
#define HOOK_BACKOFF_MAX_MS 300000

typedef struct {
    HookVerdict verdict;
    long status;        /* the HTTP status, 0 when there was no answer */
    const char *reason; /* NULL when delivered, else a metric label: status_5xx,
                         * status_4xx, status_other, timeout, connect,
                         * body_mismatch, gone, memory */
    int64_t retry_ms;   /* HOOK_RETRY: the wait before the next attempt */
    int64_t elapsed_ms; /* the request, connecting included */
    unsigned failures;  /* failures in a row of this hook, this one included */
    char webhook_id[128]; /* the batch's id (its first trigger's), every attempt */
    char detail[256];   /* what curl or the server said, for the log (no secret) */
} HookOutcome;

/* One trigger: its id (webhook-id of a batch it starts) and its body, a
 * JSON text of len bytes. */
typedef struct {
    const char *id;
    const char *body;
    size_t len;
} HookTrigger;

typedef struct HookHttp HookHttp;

/* For hook def (kind http). NULL with a message in err when out of memory
 * or curl cannot be set up. */
HookHttp *hook_http_new(const HookDef *def, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void hook_http_free(HookHttp *h);

/* POSTs triggers t[0..n) (1 <= n <= batch_size) as one JSON array and
 * writes the outcome. Consecutive failures (any retry) grow the back-off;
 * a delivery resets it. Blocks up to the hook's timeout_ms. */
void hook_http_send(HookHttp *h, const HookTrigger *t, size_t n, HookOutcome *out);

/* The Standard Webhooks signature "v1,<base64 HMAC-SHA256(key,
 * "<id>.<timestamp>.<body>")>" into out (HOOK_SIGNATURE_MAX bytes); false
 * when out of memory. */
#define HOOK_SIGNATURE_MAX 64
bool hook_http_sign(const unsigned char *key, size_t keylen, const char *id, long long timestamp,
                    const char *body, size_t len, char out[HOOK_SIGNATURE_MAX])
    __attribute__((warn_unused_result));

/* The wait after the failures-th failure in a row (1: the first): 1 s
 * doubling, drawn between that and half as much again with *seed (jitter),
 * at most 5 min. */
int64_t hook_http_backoff_ms(unsigned failures, unsigned *seed);

/* --check-config --connect: a connection to the URL's host (TCP, and TLS
 * with https://: the certificate checked as for a request) within
 * timeout_ms, then closed; no request is sent. False with the reason. */
bool hook_http_probe(HookHttp *h, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
