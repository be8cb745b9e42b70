/* read.c — the reading commands: stats (one side's statistics, a table or
 * JSON), edges (every edge of a side, one HSCAN page at a time: constant
 * memory), segment (the profiles with an edge meeting --where) and render
 * (a template's relation variables filled for one profile, each side read
 * once). Each opens its own engine, prints its result on standard output
 * and returns an exit status (ctl.h); an error is said on standard error
 * and nothing half-written is left unsaid (a failed write is an error).
 * One thread. */
#include "ctl/ctl.h"
#include "ctl/stats_table.h"
#include "lib/jsonbuf.h"
#include "handlers/layout.h"
#include "handlers/read.h"
#include "handlers/render.h"
#include "handlers/trigger.h"
#include "handlers/walk.h"
#include "handlers/segment.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A table on a terminal (or --table), JSON when piped (or --json). */
int cmd_stats(const Config *cfg, const Command *c, int argc, char **argv)
{
    char err[CONFIG_ERR_MAX], *pos[3];
    const RelationDef *rel;
    Side side;
    bool as_json = false, as_table = false;
    int npos;
    const Opt opts[] = {{"--json", &as_json, NULL}, {"--table", &as_table, NULL}, {0}};

    if (!parse_args(c, argc, argv, opts, pos, 3, 3, &npos))
        return EXIT_USAGE;
    if (as_json && as_table) {
        fprintf(stderr, "relationctl stats: --json or --table, not both\n");
        return EXIT_USAGE;
    }
    if (!side_args(cfg, pos, &rel, &side))
        return EXIT_USAGE;
    bool table = as_table || (!as_json && isatty(1));
    Engine *e = ctl_engine(cfg, false, err, sizeof err);
    if (!e) {
        fatal(err);
        return EXIT_FATAL;
    }
    SideStats st;
    StatsKeep keep = {0};
    bool ok = engine_side_stats(e, rel, side, pos[2], &st, &keep, err, sizeof err);
    if (ok && st.count == 0)
        note_empty_prefix(e, cfg);
    engine_free(e);
    if (!ok) {
        fatal(err);
        return EXIT_FATAL;
    }
    if (table) {
        stats_table(stdout, rel, side, pos[2], &st);
    } else {
        JsonBuf json = {0};
        trigger_stats_json(&json, rel, &st);
        jsonbuf_char(&json, '\0');
        if (json.oom)
            ok = false;
        else
            printf("%s\n", json.data);
        jsonbuf_free(&json);
    }
    stats_keep_free(&keep);
    if (!ok) {
        fatal("out of memory");
        return EXIT_FATAL;
    }
    return fflush(stdout) == 0 ? 0 : EXIT_FATAL;
}

/* Every edge of a side, a JSON object a line, one HSCAN page at a time
 * (constant memory). */
int cmd_edges(const Config *cfg, const Command *c, int argc, char **argv)
{
    char err[CONFIG_ERR_MAX], cursor[32] = "0", *pos[3];
    const RelationDef *rel;
    Side side;
    EdgePage page = {0};
    JsonBuf text = {0};
    bool ok = true;
    long printed = 0;
    int npos;

    if (!parse_args(c, argc, argv, NULL, pos, 3, 3, &npos) || !side_args(cfg, pos, &rel, &side))
        return EXIT_USAGE;
    argv = pos;
    Engine *e = ctl_engine(cfg, false, err, sizeof err);
    if (!e) {
        fatal(err);
        return EXIT_FATAL;
    }
    do {
        ok = engine_edge_page(e, rel, side, argv[2], cursor, 500, &page, cursor, err, sizeof err);
        if (!ok || page.n == 0)
            continue;
        jsonbuf_reset(&text);
        for (size_t k = 0; k < page.n; k++) {
            read_edge_json(&text, rel, side, &page.edges[k]);
            jsonbuf_char(&text, '\n');
        }
        if (text.oom) {
            snprintf(err, sizeof err, "out of memory");
            ok = false;
        } else if (fwrite(text.data, 1, text.len, stdout) != text.len) {
            snprintf(err, sizeof err, "writing the edges: %s", strerror(errno));
            ok = false;
        }
        printed += (long)page.n;
    } while (ok && strcmp(cursor, "0") != 0);
    if (ok && printed == 0)
        note_empty_prefix(e, cfg);
    engine_free(e);
    edge_page_free(&page);
    jsonbuf_free(&text);
    if (!ok) {
        fatal(err);
        return EXIT_FATAL;
    }
    return fflush(stdout) == 0 ? 0 : EXIT_FATAL;
}

static bool print_profile(const char *profile, size_t len, void *ctx)
{
    ++*(unsigned long *)ctx;
    return fwrite(profile, 1, len, stdout) == len && fputc('\n', stdout) != EOF;
}

/* The profiles of a side with an edge that matches --where, one a line. */
int cmd_segment(const Config *cfg, const Command *c, int argc, char **argv)
{
    char err[CONFIG_ERR_MAX], *pos[2];
    const char *expr = NULL;
    Segment seg;
    Side side;
    int npos;
    const Opt opts[] = {{"--where", NULL, &expr}, {0}};
    if (!parse_args(c, argc, argv, opts, pos, 2, 2, &npos))
        return EXIT_USAGE;
    const RelationDef *rel = relation_arg(cfg, pos[0]);
    if (!rel || !side_arg(pos[1], &side))
        return EXIT_USAGE;
    if (!segment_parse(rel, expr, &seg, err, sizeof err)) {
        fatal(err);
        return EXIT_USAGE;
    }
    Engine *e = ctl_engine(cfg, false, err, sizeof err);
    if (!e) {
        fatal(err);
        return EXIT_FATAL;
    }
    unsigned long edges = 0, profiles = 0;
    bool ok = engine_segment(e, rel, side, &seg, print_profile, &profiles, &edges, err, sizeof err);
    if (ok && edges == 0)
        note_empty_prefix(e, cfg);
    engine_free(e);
    if (!ok) {
        fatal(err);
        return EXIT_FATAL;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "relationctl: writing the profiles: %s\n", strerror(errno));
        return EXIT_FATAL;
    }
    fprintf(stderr, "profiles %lu, edges read %lu\n", profiles, edges);
    return 0;
}

/* render: each side's statistics read once. */
typedef struct {
    Engine *e;
    const char *profile;
    struct {
        const RelationDef *rel;
        Side side;
        SideStats st;
        StatsKeep keep;
    } side[128]; /* the sides a template reads */
    int n;
} RenderCache;

static const SideStats *cached_stats(void *ctx, const RelationDef *rel, Side side, char *err,
                                     size_t errlen)
{
    RenderCache *c = ctx;
    for (int i = 0; i < c->n; i++)
        if (c->side[i].rel == rel && c->side[i].side == side)
            return &c->side[i].st;
    if (c->n == (int)(sizeof c->side / sizeof c->side[0])) {
        snprintf(err, errlen, "a template reads more than 128 sides");
        return NULL;
    }
    if (!engine_layout_known(c->e, err, errlen) ||
        !engine_side_stats(c->e, rel, side, c->profile, &c->side[c->n].st, &c->side[c->n].keep,
                           err, errlen))
        return NULL;
    c->side[c->n].rel = rel;
    c->side[c->n].side = side;
    return &c->side[c->n++].st;
}

/* The relation variables of a template (a file or stdin) filled for one
 * profile. */
int cmd_render(const Config *cfg, const Command *c, int argc, char **argv)
{
    char err[CONFIG_ERR_MAX], *pos[1];
    const char *path = NULL, *profile = NULL;
    int npos;
    const Opt opts[] = {{"--profile", NULL, &profile}, {0}};
    if (!parse_args(c, argc, argv, opts, pos, 0, 1, &npos))
        return EXIT_USAGE;
    if (npos)
        path = pos[0];
    if (!profile || !*profile || strlen(profile) > EVENT_PROFILE_MAX) {
        fprintf(stderr, "relationctl: render needs --profile ID (1..%d bytes)\n",
                EVENT_PROFILE_MAX);
        return EXIT_USAGE;
    }
    FILE *in = !path || strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in) {
        fprintf(stderr, "relationctl: %s: %s\n", path, strerror(errno));
        return EXIT_FATAL;
    }
    JsonBuf text = {0}, out = {0};
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0)
        jsonbuf_put(&text, buf, got);
    bool read_ok = !ferror(in);
    if (in != stdin)
        fclose(in);
    if (!read_ok || text.oom) {
        fprintf(stderr, "relationctl: reading the template failed\n");
        jsonbuf_free(&text);
        return EXIT_FATAL;
    }
    RenderCache *cache = calloc(1, sizeof *cache);
    Engine *e = cache ? engine_create(cfg) : NULL;
    if (e)
        engine_set_reader(e);
    if (!e) {
        fprintf(stderr, "relationctl: out of memory\n");
        free(cache);
        jsonbuf_free(&text);
        return EXIT_FATAL;
    }
    cache->e = e;
    cache->profile = profile;
    bool usage_error = false;
    bool ok = render_template(cfg, text.data ? text.data : "", text.len, cached_stats, cache, &out,
                              &usage_error, err, sizeof err);
    for (int i = 0; i < cache->n; i++)
        stats_keep_free(&cache->side[i].keep);
    free(cache);
    engine_free(e);
    jsonbuf_free(&text);
    if (!ok) {
        fatal(err);
        jsonbuf_free(&out);
        return usage_error ? EXIT_USAGE : EXIT_FATAL;
    }
    bool written = fwrite(out.data, 1, out.len, stdout) == out.len && fflush(stdout) == 0;
    jsonbuf_free(&out);
    if (!written) {
        fprintf(stderr, "relationctl: writing the result: %s\n", strerror(errno));
        return EXIT_FATAL;
    }
    return 0;
}
