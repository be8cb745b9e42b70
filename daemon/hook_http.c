/* hook_http.c — an http hook's sender on libcurl (hook_http.h): one easy
 * handle per hook, reused (keep-alive); the request's headers and body
 * built for each attempt (the signature's timestamp changes); HMAC-SHA256
 * by OpenSSL's libcrypto; the answer's body kept up to HOOK_BODY_MAX bytes
 * for success_regex (POSIX extended, compiled once here). */
#include "daemon/hook_http.h"
#include "lib/base64.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The most of an answer's body kept for success_regex. */
#define HOOK_BODY_MAX 65536

struct HookHttp {
    CURL *curl;
    char *name;
    char *url;
    TlsConfig tls;
    int timeout_ms;
    bool has_regex;
    regex_t regex;
    unsigned char key[HOOK_SECRET_MAX];
    size_t keylen; /* 0: not signed */
    char **header_lines; /* "Name: value" */
    int nheaders;
    unsigned failures;
    unsigned seed;
    char *answer; /* the body of the last answer, NUL-terminated */
    size_t answer_len;
    bool answer_cut;
};

int64_t hook_http_backoff_ms(unsigned failures, unsigned *seed)
{
    int64_t base = HOOK_BACKOFF_MIN_MS;
    for (unsigned i = 1; i < failures && base < HOOK_BACKOFF_MAX_MS; i++)
        base *= 2;
    int64_t delay = base + (int64_t)(rand_r(seed) % (unsigned)(base / 2 + 1));
    return delay < HOOK_BACKOFF_MAX_MS ? delay : HOOK_BACKOFF_MAX_MS;
}

bool hook_http_sign(const unsigned char *key, size_t keylen, const char *id, long long timestamp,
                    const char *body, size_t len, char out[HOOK_SIGNATURE_MAX])
{
    char head[200];
    int hn = snprintf(head, sizeof head, "%s.%lld.", id, timestamp);
    if (hn < 0 || (size_t)hn >= sizeof head)
        return false;
    char *msg = malloc((size_t)hn + len);
    if (!msg)
        return false;
    memcpy(msg, head, (size_t)hn);
    memcpy(msg + hn, body, len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    bool ok = HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, (size_t)hn + len,
                   mac, &maclen) != NULL;
    free(msg);
    if (!ok || BASE64_LEN(maclen) + 4 > HOOK_SIGNATURE_MAX)
        return false;
    memcpy(out, "v1,", 3);
    base64_encode(mac, maclen, out + 3);
    return true;
}

static size_t keep_answer(char *data, size_t size, size_t nmemb, void *ctx)
{
    HookHttp *h = ctx;
    size_t n = size * nmemb, room = HOOK_BODY_MAX - h->answer_len;
    size_t take = n < room ? n : room;
    memcpy(h->answer + h->answer_len, data, take);
    h->answer_len += take;
    h->answer[h->answer_len] = '\0';
    h->answer_cut |= take < n;
    return n; /* the rest is read and dropped */
}

void hook_http_free(HookHttp *h)
{
    if (!h)
        return;
    if (h->curl) {
        curl_easy_cleanup(h->curl);
        curl_global_cleanup();
    }
    if (h->has_regex)
        regfree(&h->regex);
    for (int i = 0; i < h->nheaders; i++)
        free(h->header_lines[i]);
    free(h->header_lines);
    free(h->name);
    free(h->url);
    free(h->answer);
    config_tls_free(&h->tls);
    memset(h->key, 0, sizeof h->key);
    free(h);
}

HookHttp *hook_http_new(const HookDef *def, char *err, size_t errlen)
{
    HookHttp *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "hook %s: out of memory", def->name);
        return NULL;
    }
    h->timeout_ms = def->timeout_ms;
    h->seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)h;
    h->name = strdup(def->name);
    h->url = strdup(def->url);
    h->answer = malloc(HOOK_BODY_MAX + 1);
    h->header_lines = def->nheaders ? calloc((size_t)def->nheaders, sizeof *h->header_lines) : NULL;
    bool ok = h->name && h->url && h->answer && (!def->nheaders || h->header_lines) &&
              config_tls_copy(&h->tls, &def->tls);
    for (int i = 0; ok && i < def->nheaders; i++) {
        size_t n = strlen(def->header_names[i]) + strlen(def->header_values[i]) + 3;
        ok = (h->header_lines[i] = malloc(n)) != NULL;
        if (ok)
            snprintf(h->header_lines[i], n, "%s: %s", def->header_names[i], def->header_values[i]);
        h->nheaders = i + 1;
    }
    if (!ok) {
        snprintf(err, errlen, "hook %s: out of memory", def->name);
        hook_http_free(h);
        return NULL;
    }
    if (def->secret && !config_hook_key(def, h->key, &h->keylen)) {
        snprintf(err, errlen, "hook %s: the secret is not whsec_ and base64", def->name);
        hook_http_free(h);
        return NULL;
    }
    if (def->success_regex) {
        int rc = regcomp(&h->regex, def->success_regex, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            snprintf(err, errlen, "hook %s: success_regex does not compile", def->name);
            hook_http_free(h);
            return NULL;
        }
        h->has_regex = true;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "hook %s: libcurl cannot be initialised", def->name);
        hook_http_free(h);
        return NULL;
    }
    if (!(h->curl = curl_easy_init())) {
        curl_global_cleanup();
        snprintf(err, errlen, "hook %s: libcurl cannot make a handle", def->name);
        hook_http_free(h);
        return NULL;
    }
    /* the settings every request keeps */
    CURL *c = h->curl;
    bool set = curl_easy_setopt(c, CURLOPT_URL, h->url) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->timeout_ms) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_answer) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_WRITEDATA, h) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_USERAGENT, "relationd/" RELATIOND_VERSION) == CURLE_OK &&
               (!h->tls.ca || curl_easy_setopt(c, CURLOPT_CAINFO, h->tls.ca) == CURLE_OK) &&
               (!h->tls.cert || curl_easy_setopt(c, CURLOPT_SSLCERT, h->tls.cert) == CURLE_OK) &&
               (!h->tls.key || curl_easy_setopt(c, CURLOPT_SSLKEY, h->tls.key) == CURLE_OK) &&
               curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->tls.verify ? 1L : 0L) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->tls.verify ? 2L : 0L) == CURLE_OK;
    if (!set) {
        snprintf(err, errlen, "hook %s: libcurl refuses a setting", def->name);
        hook_http_free(h);
        return NULL;
    }
    return h;
}

/* "[b0,b1,...]" of the triggers' bodies (malloc'ed, *len bytes), or NULL. */
static char *batch_body(const HookTrigger *t, size_t n, size_t *len)
{
    size_t total = 2 + (n ? n - 1 : 0);
    for (size_t i = 0; i < n; i++)
        total += t[i].len;
    char *body = malloc(total + 1), *p = body;
    if (!body)
        return NULL;
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, t[i].body, t[i].len);
        p += t[i].len;
    }
    *p++ = ']';
    *p = '\0';
    *len = total;
    return body;
}

/* The request's headers for this attempt, or NULL when out of memory. */
static struct curl_slist *request_headers(HookHttp *h, const char *id, const char *body,
                                          size_t len)
{
    char line[256], sig[HOOK_SIGNATURE_MAX];
    struct curl_slist *list = NULL, *next;
#define ADD(text)                                                                              \
    do {                                                                                       \
        if (!(next = curl_slist_append(list, (text)))) {                                       \
            curl_slist_free_all(list);                                                         \
            return NULL;                                                                       \
        }                                                                                      \
        list = next;                                                                           \
    } while (0)
    ADD("Content-Type: application/json");
    ADD("Expect:"); /* no 100-continue round trip */
    for (int i = 0; i < h->nheaders; i++)
        ADD(h->header_lines[i]);
    if (h->keylen) {
        long long now = (long long)time(NULL);
        if (!hook_http_sign(h->key, h->keylen, id, now, body, len, sig)) {
            curl_slist_free_all(list);
            return NULL;
        }
        snprintf(line, sizeof line, "webhook-id: %s", id);
        ADD(line);
        snprintf(line, sizeof line, "webhook-timestamp: %lld", now);
        ADD(line);
        snprintf(line, sizeof line, "webhook-signature: %s", sig);
        ADD(line);
    }
#undef ADD
    return list;
}

/* A failure: the verdict retry with its delay (at least Retry-After). */
static void failed(HookHttp *h, HookOutcome *out, const char *reason, int64_t retry_after_ms)
{
    out->verdict = HOOK_RETRY;
    out->reason = reason;
    out->failures = ++h->failures;
    out->retry_ms = hook_http_backoff_ms(h->failures, &h->seed);
    if (retry_after_ms > out->retry_ms)
        out->retry_ms = retry_after_ms;
}

static const char *curl_reason(CURLcode rc)
{
    return rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "connect";
}

void hook_http_send(HookHttp *h, const HookTrigger *t, size_t n, HookOutcome *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->webhook_id, sizeof out->webhook_id, "%s", n ? t[0].id : "");
    size_t len = 0;
    char *body = batch_body(t, n, &len);
    struct curl_slist *headers = body ? request_headers(h, out->webhook_id, body, len) : NULL;
    if (!headers) {
        snprintf(out->detail, sizeof out->detail, "out of memory");
        failed(h, out, "memory", 0);
        free(body);
        return;
    }
    h->answer_len = 0;
    h->answer[0] = '\0';
    h->answer_cut = false;
    CURL *c = h->curl;
    char curl_err[CURL_ERROR_SIZE] = "";
    int64_t start = clock_now_ms();
    CURLcode rc = CURLE_OK;
    if (curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err) != CURLE_OK)
        rc = CURLE_FAILED_INIT;
    else
        rc = curl_easy_perform(c);
    out->elapsed_ms = clock_now_ms() - start;
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(headers);
    free(body);

    if (rc != CURLE_OK) {
        snprintf(out->detail, sizeof out->detail, "%s", *curl_err ? curl_err : curl_easy_strerror(rc));
        failed(h, out, curl_reason(rc), 0);
        return;
    }
    long status = 0;
    curl_off_t retry_after = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    out->status = status;
    if (status >= 200 && status < 300) {
        if (h->has_regex && regexec(&h->regex, h->answer, 0, NULL, 0) != 0) {
            snprintf(out->detail, sizeof out->detail, "%ld with a body not matching success_regex",
                     status);
            failed(h, out, "body_mismatch", 0);
            return;
        }
        out->verdict = HOOK_DELIVERED;
        h->failures = 0;
        return;
    }
    snprintf(out->detail, sizeof out->detail, "answered %ld", status);
    if (status == 410) {
        out->verdict = HOOK_DISABLED;
        out->reason = "gone";
        out->failures = ++h->failures;
        log_at(LOG_ERROR, "hooks", "hook %s answered 410 Gone: the hook is disabled (its "
               "receiver says it no longer exists); check its configuration", h->name);
        return;
    }
    int64_t wait = 0;
    if ((status == 429 || status == 503) &&
        curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
        wait = retry_after > HOOK_RETRY_AFTER_MAX_MS / 1000 ? HOOK_RETRY_AFTER_MAX_MS
                                                            : (int64_t)retry_after * 1000;
    failed(h, out, status >= 500 && status < 600   ? "status_5xx"
                   : status >= 400 && status < 500 ? "status_4xx"
                                                   : "status_other",
           wait);
}

bool hook_http_probe(HookHttp *h, char *err, size_t errlen)
{
    if (curl_easy_setopt(h->curl, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK) {
        snprintf(err, errlen, "libcurl refuses CONNECT_ONLY");
        return false;
    }
    CURLcode rc = curl_easy_perform(h->curl);
    (void)curl_easy_setopt(h->curl, CURLOPT_CONNECT_ONLY, 0L);
    if (rc != CURLE_OK)
        snprintf(err, errlen, "%s: %s (%s)", h->url, curl_easy_strerror(rc), curl_reason(rc));
    return rc == CURLE_OK;
}
