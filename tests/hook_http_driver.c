/* hook_http_driver.c — daemon/hook_http.c driven from stdin, for
 * tests/e2e/test_hook_http.py (built by make, not installed):
 * `hook_http_driver FILE HOOK ATTEMPTS WAIT` loads the configuration FILE
 * (relationd's loader), takes its http hook named HOOK, reads trigger
 * bodies from stdin (one JSON object a line, its "id" the trigger id) and
 * sends them in batches of the hook's batch_size, each batch up to ATTEMPTS
 * times while the outcome is retry, sleeping the retry delay between
 * attempts when WAIT is 1. Prints one JSON line per attempt:
 *   {"batch": B, "attempt": A, "triggers": N, "webhook_id": ID,
 *    "outcome": "delivered"|"retry"|"disabled", "status": S, "reason": R|null,
 *    "retry_ms": D, "elapsed_ms": E, "failures": F}
 * Stops after a disabled outcome. Exit status 2 on bad arguments or input,
 * 1 when the configuration or the hook cannot be used, else 0. */
#include "config/config.h"
#include "daemon/hook_http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *line;
    char *id;
} Input;

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: hook_http_driver FILE HOOK ATTEMPTS WAIT\n");
        return 2;
    }
    int attempts = atoi(argv[3]);
    bool wait = strcmp(argv[4], "1") == 0;
    char err[CONFIG_ERR_MAX];
    Config *cfg = config_load(argv[1], err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "hook_http_driver: %s\n", err);
        return 1;
    }
    const HookDef *def = NULL;
    for (int i = 0; i < cfg->nhooks; i++)
        if (strcmp(cfg->hooks[i].name, argv[2]) == 0 && cfg->hooks[i].kind == HOOK_HTTP)
            def = &cfg->hooks[i];
    if (!def) {
        fprintf(stderr, "hook_http_driver: no http hook %s\n", argv[2]);
        config_free(cfg);
        return 1;
    }
    HookHttp *h = hook_http_new(def, err, sizeof err);
    size_t batch_size = (size_t)def->batch_size;
    config_free(cfg); /* the sender keeps its own copies */
    if (!h) {
        fprintf(stderr, "hook_http_driver: %s\n", err);
        return 1;
    }

    Input *in = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    while ((got = getline(&line, &lcap, stdin)) > 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        if (!got)
            continue;
        json_t *doc = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(doc, "id"));
        if (!id) {
            fprintf(stderr, "hook_http_driver: not a trigger with an id: %s\n", line);
            return 2;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            if (!(in = realloc(in, cap * sizeof *in)))
                return 1;
        }
        in[n].line = strdup(line);
        in[n].id = strdup(id);
        json_decref(doc);
        if (!in[n].line || !in[n].id)
            return 1;
        n++;
    }
    free(line);

    HookTrigger *t = calloc(batch_size, sizeof *t);
    if (!t)
        return 1;
    static const char *const verdicts[] = {"delivered", "retry", "disabled"};
    bool disabled = false;
    for (size_t start = 0, batch = 0; start < n && !disabled; start += batch_size, batch++) {
        size_t k = n - start < batch_size ? n - start : batch_size;
        for (size_t i = 0; i < k; i++)
            t[i] = (HookTrigger){in[start + i].id, in[start + i].line, strlen(in[start + i].line)};
        for (int a = 1; a <= attempts; a++) {
            HookOutcome o;
            hook_http_send(h, t, k, &o);
            json_t *rec = json_pack("{s:I, s:i, s:I, s:s, s:s, s:I, s:s?, s:I, s:I, s:I, s:s}",
                                    "batch", (json_int_t)batch, "attempt", a, "triggers",
                                    (json_int_t)k, "webhook_id", o.webhook_id, "outcome",
                                    verdicts[o.verdict], "status", (json_int_t)o.status,
                                    "reason", o.reason, "retry_ms", (json_int_t)o.retry_ms,
                                    "elapsed_ms", (json_int_t)o.elapsed_ms, "failures",
                                    (json_int_t)o.failures, "detail", o.detail);
            char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
            if (!text)
                return 1;
            printf("%s\n", text);
            fflush(stdout);
            free(text);
            json_decref(rec);
            if (o.verdict == HOOK_DISABLED)
                disabled = true;
            if (o.verdict != HOOK_RETRY)
                break;
            if (wait && a < attempts)
                sleep_ms(o.retry_ms);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(in[i].line);
        free(in[i].id);
    }
    free(in);
    free(t);
    hook_http_free(h);
    return 0;
}
