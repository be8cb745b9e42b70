/* apply.c — apply: JSON-lines events applied with the daemon's engine
 * (a backfill), in batches of the configuration's batch size: one batch is
 * sent to Redis while the one sent before it is read back (three in turn:
 * a duplicate is checked against the batch before; their turn kept by
 * lib/ring.h, as the daemon's pipeline); the triggers printed
 * in order, published to the hook exchange and confirmed (--publish), or
 * dropped and counted (--no-triggers). A bad line is said (line N:
 * reason) and skipped (exit status EXIT_INVALID_LINES); a Redis failure
 * ends the run naming the first line not known to be applied, a publishing
 * or writing failure ends it too. The summary goes to standard error. One
 * thread. */
#include "ctl/ctl.h"
#include "daemon/publisher.h"
#include "handlers/apply.h"
#include "lib/grow.h"
#include "lib/ring.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Batches in turn: one filled, one sent and not read back, and the one read
 * before it (a duplicate is checked against the batch before). */
#define APPLY_BATCHES 3

/* A batch of lines: parsed, sent, then read and printed while the next one
 * is parsed and applied. */
typedef struct {
    Event *events;
    long *lines;
    ApplyResult *results;
    size_t n;
} CtlBatch;

typedef struct {
    Engine *engine;
    CtlBatch b[APPLY_BATCHES];
    Ring ring; /* current: the batch being filled; in flight: sent, not read back */
    TriggerSet triggers;
    size_t cap;
    long applied, duplicate, stale, invalid;
    bool no_triggers;    /* --no-triggers: dropped, counted */
    Publisher *publish;  /* --publish: to the hook exchange, confirmed */
    Outgoing *out;
    size_t out_cap;
    long dropped, published;
    Progress *progress; /* the input's */
} ApplyRun;

/* The triggers of a batch to the hook exchange, every one confirmed. */
static bool publish_triggers(ApplyRun *r)
{
    char err[512];
    size_t n = r->triggers.n;
    if (n == 0)
        return true;
    if (!GROW_RESERVE(r->out, r->out_cap, n, 0)) {
        fprintf(stderr, "relationctl: out of memory\n");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const Trigger *t = &r->triggers.items[i];
        r->out[i] = (Outgoing){t->routing_key, t->id, "application/json", NULL, t->body, t->len};
    }
    /* a lost connection: once more, on a new one (the same messages) */
    for (int attempt = 0;; attempt++) {
        if (publisher_send(r->publish, r->out, n, err, sizeof err))
            break;
        if (attempt == 2) {
            fprintf(stderr, "relationctl: publishing the triggers: %s\n", err);
            return false;
        }
    }
    r->published += (long)n;
    return true;
}

/* Reads a sent batch's results, prints its triggers in order, then clears
 * them from the outbox: printing is their delivery. */
static bool receive(ApplyRun *r, CtlBatch *b, const CtlBatch *before)
{
    char err[CONFIG_ERR_MAX];
    EventSpan span = {before->events, before->n};
    triggers_reset(&r->triggers);
    if (!engine_recv(r->engine, b->events, b->n, b->results, &r->triggers, &span, 1, err,
                     sizeof err)) {
        fprintf(stderr, "relationctl: %s (lines %ld.. not known to be applied)\n", err,
                b->lines[0]);
        return false;
    }
    for (size_t i = 0; i < b->n; i++) {
        ApplyResult *res = &b->results[i];
        switch (res->status) {
        case APPLY_APPLIED: r->applied++; break;
        case APPLY_DUPLICATE: r->duplicate++; break;
        case APPLY_STALE: r->stale++; break;
        case APPLY_INVALID:
            r->invalid++;
            progress_clear(r->progress);
            fprintf(stderr, "line %ld: %s\n", b->lines[i], res->error);
            break;
        }
        if (r->no_triggers) {
            r->dropped += (long)res->ntriggers;
            continue;
        }
        for (size_t j = res->first; !r->publish && j < res->first + res->ntriggers; j++) {
            fwrite(r->triggers.items[j].body, 1, r->triggers.items[j].len, stdout);
            fputc('\n', stdout);
        }
    }
    if (r->publish && !publish_triggers(r))
        return false;
    if (fflush(stdout) != 0) {
        fprintf(stderr, "relationctl: writing the triggers: %s\n", strerror(errno));
        return false;
    }
    if (!engine_delivered_async(r->engine, b->events, b->results, b->n, err, sizeof err)) {
        fatal(err);
        return false;
    }
    return true;
}

/* Sends the current batch, then reads and prints the one sent before it;
 * at the end, reads the last one too. The batch now current is emptied only
 * after: it was the one before those read, their duplicates' reference. */
static bool flush_batch(ApplyRun *r, bool last)
{
    char err[CONFIG_ERR_MAX];
    CtlBatch *cur = &r->b[ring_current(&r->ring)];
    if (cur->n) {
        if (!engine_send(r->engine, cur->events, cur->n, err, sizeof err)) {
            fprintf(stderr, "relationctl: %s (lines %ld.. not known to be applied)\n", err,
                    ring_in_flight(&r->ring) ? r->b[ring_oldest(&r->ring)].lines[0]
                                             : cur->lines[0]);
            return false;
        }
        ring_push(&r->ring);
    }
    while (ring_in_flight(&r->ring) > (last ? 0 : 1)) {
        int slot = ring_pop(&r->ring);
        if (!receive(r, &r->b[slot], &r->b[ring_before(&r->ring, slot)]))
            return false;
    }
    if (last && !engine_sync(r->engine, err, sizeof err)) {
        fatal(err);
        return false;
    }
    r->b[ring_current(&r->ring)].n = 0;
    return true;
}

int cmd_apply(const Config *cfg, const Command *c, int argc, char **argv)
{
    char err[CONFIG_ERR_MAX], *pos[1];
    const char *path = "-";
    LineReader in = {0};
    ApplyRun r = {0};
    int rc = EXIT_FATAL, npos;
    bool publish = false;
    const Opt opts[] = {{"--no-triggers", &r.no_triggers, NULL}, {"--publish", &publish, NULL},
                        {0}};

    if (!parse_args(c, argc, argv, opts, pos, 0, 1, &npos))
        return EXIT_USAGE;
    if (npos)
        path = pos[0];
    if (publish && r.no_triggers) {
        fprintf(stderr, "relationctl: --publish and --no-triggers exclude each other\n");
        return EXIT_USAGE;
    }
    if (publish && !cfg->has_hooks) {
        fprintf(stderr, "relationctl: --publish needs a hook of kind amqp with a topic exchange "
                        "(the hooks section)\n");
        return EXIT_USAGE;
    }
    if (publish) {
        r.publish = publisher_new(cfg->hooks_url, cfg->hooks_exchange, "topic", cfg->hooks_declare,
                                  &cfg->hooks_tls);
        if (r.publish)
            publisher_set_mandatory(r.publish, NULL, NULL); /* counted, in the summary */
        if (!r.publish || !publisher_connect(r.publish, err, sizeof err)) {
            fprintf(stderr, "relationctl: %s\n", r.publish ? err : "out of memory");
            publisher_free(r.publish);
            return EXIT_FATAL;
        }
    }
    /* no progress line when the triggers print on the same terminal */
    bool printing = !r.no_triggers && !r.publish;
    if (!reader_open(&in, path, "events", !(printing && isatty(1)))) {
        reader_close(&in);
        publisher_free(r.publish);
        return EXIT_FATAL;
    }
    r.progress = &in.progress;
    r.cap = (size_t)cfg->batch_size;
    bool oom = false;
    ring_init(&r.ring, APPLY_BATCHES);
    for (int k = 0; k < APPLY_BATCHES; k++) {
        r.b[k].events = calloc(r.cap, sizeof *r.b[k].events);
        r.b[k].lines = calloc(r.cap, sizeof *r.b[k].lines);
        r.b[k].results = calloc(r.cap, sizeof *r.b[k].results);
        oom |= !r.b[k].events || !r.b[k].lines || !r.b[k].results;
    }
    if (oom) {
        fprintf(stderr, "relationctl: out of memory\n");
        goto done;
    }
    r.engine = ctl_engine(cfg, true, err, sizeof err);
    if (!r.engine) {
        fatal(err);
        goto done;
    }
    for (;;) {
        char *line;
        /* Input that makes us wait: what was sent is read and printed first. */
        CtlBatch *b = &r.b[ring_current(&r.ring)];
        if ((ring_in_flight(&r.ring) || b->n) && !reader_ready(&in) && !flush_batch(&r, true))
            goto done;
        b = &r.b[ring_current(&r.ring)];
        long len = next_event(cfg, &in, &b->events[b->n], &line, &r.invalid);
        if (len == LINE_EOF)
            break;
        if (len == LINE_ERROR)
            goto done;
        b->lines[b->n++] = in.lineno;
        if (b->n == r.cap && !flush_batch(&r, false))
            goto done;
    }
    if (!flush_batch(&r, true))
        goto done;
    rc = r.invalid ? EXIT_INVALID_LINES : 0;
done:
    progress_clear(&in.progress);
    if (r.no_triggers)
        fprintf(stderr, "triggers dropped %ld (--no-triggers: none printed or published)\n",
                r.dropped);
    if (r.publish) {
        fprintf(stderr, "triggers published %ld to %s\n", r.published, cfg->hooks_exchange);
        uint64_t unroutable = publisher_returned(r.publish);
        if (unroutable > 0)
            fprintf(stderr, "triggers unroutable %" PRIu64 ": %s routed them to no queue, and "
                    "RabbitMQ dropped them (bind the subscriber's queue to the exchange first)\n",
                    unroutable, cfg->hooks_exchange);
    }
    fprintf(stderr, "applied %ld, duplicate %ld, stale %ld, invalid %ld\n", r.applied,
            r.duplicate, r.stale, r.invalid);
    publisher_free(r.publish);
    free(r.out);
    engine_free(r.engine);
    triggers_free(&r.triggers);
    reader_close(&in);
    for (int k = 0; k < APPLY_BATCHES; k++) {
        free(r.b[k].events);
        free(r.b[k].lines);
        free(r.b[k].results);
    }
    return rc;
}
