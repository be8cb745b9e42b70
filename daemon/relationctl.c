/* relationctl — reads statistics and applies JSON-lines events with the
 * daemon's engine (README, "Command line"). */
#include "config/config.h"
#include "daemon/log.h"
#include "handlers/engine.h"
#include "handlers/event.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_FATAL = 1, EXIT_USAGE = 2, EXIT_INVALID_LINES = 3 };

static void usage(FILE *out)
{
    fprintf(out, "usage: relationctl -c FILE stats RELATION direct|reverse PROFILE\n"
                 "       relationctl -c FILE apply [FILE|-]\n"
                 "       relationctl --version\n");
}

static int cmd_stats(const Config *cfg, int argc, char **argv)
{
    char err[CONFIG_ERR_MAX];
    char *json = NULL;
    const RelationDef *rel;
    Side side;
    Engine *e;

    if (argc != 3) {
        usage(stderr);
        return EXIT_USAGE;
    }
    rel = config_relation(cfg, argv[0]);
    if (!rel) {
        fprintf(stderr, "relationctl: unknown relation \"%s\"\n", argv[0]);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "direct") == 0) {
        side = SIDE_DIRECT;
    } else if (strcmp(argv[1], "reverse") == 0) {
        side = SIDE_REVERSE;
    } else {
        fprintf(stderr, "relationctl: side must be direct or reverse, not \"%s\"\n", argv[1]);
        return EXIT_USAGE;
    }
    if (!*argv[2] || strlen(argv[2]) > EVENT_PROFILE_MAX) {
        fprintf(stderr, "relationctl: PROFILE must be 1..%d bytes\n", EVENT_PROFILE_MAX);
        return EXIT_USAGE;
    }
    e = engine_new(cfg, err, sizeof err);
    if (!e) {
        fprintf(stderr, "relationctl: %s\n", err);
        return EXIT_FATAL;
    }
    bool ok = engine_stats(e, rel, side, argv[2], &json, err, sizeof err);
    engine_free(e);
    if (!ok) {
        fprintf(stderr, "relationctl: %s\n", err);
        return EXIT_FATAL;
    }
    printf("%s\n", json);
    free(json);
    return fflush(stdout) == 0 ? 0 : EXIT_FATAL;
}

typedef struct {
    Engine *engine;
    Event *events;
    long *lines;
    ApplyResult *results;
    TriggerSet triggers;
    size_t n, cap;
    long applied, duplicate, stale, invalid;
} ApplyRun;

/* Applies the batch, prints its triggers in order, then clears them from the
 * outbox: printing is their delivery. */
static bool flush_batch(ApplyRun *r)
{
    char err[CONFIG_ERR_MAX];
    bool any = false;
    if (r->n == 0)
        return true;
    triggers_reset(&r->triggers);
    if (!engine_apply(r->engine, r->events, r->n, r->results, &r->triggers, err, sizeof err)) {
        fprintf(stderr, "relationctl: %s (lines %ld..%ld not known to be applied)\n", err,
                r->lines[0], r->lines[r->n - 1]);
        return false;
    }
    for (size_t i = 0; i < r->n; i++) {
        ApplyResult *res = &r->results[i];
        switch (res->status) {
        case APPLY_APPLIED: r->applied++; break;
        case APPLY_DUPLICATE: r->duplicate++; break;
        case APPLY_STALE: r->stale++; break;
        case APPLY_INVALID:
            r->invalid++;
            fprintf(stderr, "line %ld: %s\n", r->lines[i], res->error);
            break;
        }
        for (size_t j = res->first; j < res->first + res->ntriggers; j++) {
            fwrite(r->triggers.items[j].body, 1, r->triggers.items[j].len, stdout);
            fputc('\n', stdout);
            any = true;
        }
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "relationctl: writing the triggers: %s\n", strerror(errno));
        return false;
    }
    if (any && !engine_delivered(r->engine, r->events, r->results, r->n, err, sizeof err)) {
        fprintf(stderr, "relationctl: %s\n", err);
        return false;
    }
    r->n = 0;
    return true;
}

/* Reads one line into buf (at most cap-1 bytes plus NUL). Returns its length,
 * -1 at end of input, or -2 for a line longer than EVENT_MAX_BYTES (skipped). */
static long read_line(FILE *in, char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, in))
        return -1;
    size_t len = strlen(buf);
    if (len == cap - 1 && buf[len - 1] != '\n') {
        int c;
        while ((c = getc(in)) != EOF && c != '\n')
            ;
        return -2;
    }
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    return (long)len;
}

static int cmd_apply(const Config *cfg, int argc, char **argv)
{
    char err[CONFIG_ERR_MAX];
    const char *path = argc >= 1 ? argv[0] : "-";
    FILE *in = stdin;
    char *buf = NULL;
    ApplyRun r = {0};
    int rc = EXIT_FATAL;
    long lineno = 0;

    if (argc > 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(path, "-") != 0 && !(in = fopen(path, "r"))) {
        fprintf(stderr, "relationctl: %s: %s\n", path, strerror(errno));
        return EXIT_FATAL;
    }
    r.cap = (size_t)cfg->batch_size;
    r.events = calloc(r.cap, sizeof *r.events);
    r.lines = calloc(r.cap, sizeof *r.lines);
    r.results = calloc(r.cap, sizeof *r.results);
    buf = malloc(EVENT_MAX_BYTES + 2);
    if (!r.events || !r.lines || !r.results || !buf) {
        fprintf(stderr, "relationctl: out of memory\n");
        goto done;
    }
    r.engine = engine_new(cfg, err, sizeof err);
    if (!r.engine) {
        fprintf(stderr, "relationctl: %s\n", err);
        goto done;
    }
    for (;;) {
        long len = read_line(in, buf, EVENT_MAX_BYTES + 2);
        if (len == -1)
            break;
        lineno++;
        if (len == -2) {
            fprintf(stderr, "line %ld: event larger than %d bytes\n", lineno, EVENT_MAX_BYTES);
            r.invalid++;
            continue;
        }
        if (strspn(buf, " \t") == (size_t)len)
            continue; /* blank line */
        if (!event_parse(cfg, buf, (size_t)len, &r.events[r.n], err, sizeof err)) {
            fprintf(stderr, "line %ld: %s\n", lineno, err);
            r.invalid++;
            continue;
        }
        r.lines[r.n++] = lineno;
        if (r.n == r.cap && !flush_batch(&r))
            goto done;
    }
    if (ferror(in)) {
        fprintf(stderr, "relationctl: reading %s: %s\n", path, strerror(errno));
        goto done;
    }
    if (!flush_batch(&r))
        goto done;
    rc = r.invalid ? EXIT_INVALID_LINES : 0;
done:
    fprintf(stderr, "applied %ld, duplicate %ld, stale %ld, invalid %ld\n", r.applied,
            r.duplicate, r.stale, r.invalid);
    engine_free(r.engine);
    triggers_free(&r.triggers);
    free(buf);
    free(r.events);
    free(r.lines);
    free(r.results);
    if (in != stdin)
        fclose(in);
    return rc;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    char err[CONFIG_ERR_MAX];
    int i = 1, rc;

    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("relationctl %s\n", RELATIOND_VERSION);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
        config_path = argv[2];
        i = 3;
    }
    if (!config_path || i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    Config *cfg = config_load(config_path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "relationctl: %s\n", err);
        return EXIT_FATAL;
    }
    if (strcmp(argv[i], "stats") == 0) {
        rc = cmd_stats(cfg, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "apply") == 0) {
        rc = cmd_apply(cfg, argc - i - 1, argv + i + 1);
    } else {
        usage(stderr);
        rc = EXIT_USAGE;
    }
    config_free(cfg);
    return rc;
}
