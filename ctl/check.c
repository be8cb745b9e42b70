/* check.c — verify and rebuild: each side of a relation (or one side, or
 * one profile's) recomputed from its edges; verify prints a JSON line per
 * side whose stored statistics differ (exit status 1 when any does),
 * rebuild writes them again (engine_rebuild: atomic per side, safe while
 * the daemon runs); migrate converts every layout-1 side (engine_migrate:
 * atomic per side, safe while the daemon runs) and then sets the layout
 * key to version 2. A progress line on a terminal; the summary on standard
 * error. The first Redis error ends the walk (said, EXIT_FATAL). One
 * thread. */
#include "ctl/ctl.h"
#include "lib/jsonbuf.h"
#include "handlers/check.h"
#include "handlers/layout.h"
#include "handlers/trigger.h"
#include "handlers/walk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Engine *e;
    const RelationDef *rel;
    Side side;
    bool rebuild;
    unsigned long sides, differ;
    long long edges;
    bool failed;
    int walk, walks; /* the side walked (0, 1) of how many */
    Progress progress;
    char err[CONFIG_ERR_MAX];
} Check;

static void difference(JsonBuf *b, bool *first, const char *field, const PropertyDef *p,
                       int64_t stored, int64_t edges)
{
    jsonbuf_cstr(b, *first ? "" : ",");
    *first = false;
    jsonbuf_string(b, field, strlen(field));
    jsonbuf_cstr(b, ":{\"stored\":");
    trigger_number(b, p, stored);
    jsonbuf_cstr(b, ",\"edges\":");
    trigger_number(b, p, edges);
    jsonbuf_char(b, '}');
}

/* A layout-2 statistic stored as "0" (the engine removes a statistic that
 * becomes 0). */
static void zero_stored(JsonBuf *b, bool *first, const char *field)
{
    jsonbuf_cstr(b, *first ? "" : ",");
    *first = false;
    jsonbuf_string(b, field, strlen(field));
    jsonbuf_cstr(b, ":\"stored as 0, not absent\"");
}

/* One side: checked (printed when it differs) or rebuilt. */
static bool check_side(const char *profile, void *ctx)
{
    Check *c = ctx;
    const RelationDef *rel = c->rel;
    c->sides++;
    progress_update(&c->progress, (long long)c->sides,
                    (c->walk + engine_walk_share(c->e)) / c->walks);
    if (c->rebuild) {
        long long n;
        if (!engine_rebuild(c->e, rel, c->side, profile, &n, c->err, sizeof c->err)) {
            c->failed = true;
            return false;
        }
        c->edges += n;
        return true;
    }
    SideCheck *k = malloc(sizeof *k);
    if (!k || !engine_verify(c->e, rel, c->side, profile, k, c->err, sizeof c->err)) {
        if (!k)
            snprintf(c->err, sizeof c->err, "out of memory");
        free(k);
        c->failed = true;
        return false;
    }
    c->edges += (long long)k->nedges;
    JsonBuf b = {0};
    bool first = true;
    if (k->stored.count != k->edges.count)
        difference(&b, &first, "count", NULL, k->stored.count, k->edges.count);
    if (k->zero[0])
        zero_stored(&b, &first, "count");
    for (int i = 0; i < rel->nproperties; i++) {
        const PropertyDef *p = &rel->properties[i];
        char field[CONFIG_SHORT_MAX + 8];
        if (k->stored.pcount[i] != k->edges.pcount[i]) {
            snprintf(field, sizeof field, "%s:count", p->short_name);
            difference(&b, &first, field, NULL, k->stored.pcount[i], k->edges.pcount[i]);
        }
        if (p->save_amount && k->stored.ptotal[i] != k->edges.ptotal[i]) {
            snprintf(field, sizeof field, "%s:total", p->short_name);
            difference(&b, &first, field, p, k->stored.ptotal[i], k->edges.ptotal[i]);
        }
        for (int t = 0; t < 2; t++)
            if (k->zero[1 + 2 * i + t]) {
                snprintf(field, sizeof field, "%s:%s", p->short_name, t ? "total" : "count");
                zero_stored(&b, &first, field);
            }
        if (p->top_order != TOP_NONE && !k->top_ok[i]) {
            jsonbuf_cstr(&b, first ? "" : ",");
            first = false;
            snprintf(field, sizeof field, "%s:top", p->short_name);
            jsonbuf_string(&b, field, strlen(field));
            jsonbuf_cstr(&b, ":\"differs from the edges\"");
        }
    }
    free(k);
    if (!first) {
        c->differ++;
        progress_clear(&c->progress);
        printf("{\"relation\":\"%s\",\"side\":\"%s\",\"profile\":", rel->short_name,
               c->side == SIDE_DIRECT ? "direct" : "reverse");
        JsonBuf id = {0};
        jsonbuf_string(&id, profile, strlen(profile));
        fwrite(id.data, 1, id.len, stdout);
        jsonbuf_free(&id);
        printf(",\"differences\":{");
        fwrite(b.data, 1, b.len, stdout);
        printf("}}\n");
    }
    jsonbuf_free(&b);
    return true;
}

/* verify / rebuild RELATION [direct|reverse [PROFILE]] */
int cmd_check(const Config *cfg, const Command *cmd, int argc, char **argv)
{
    char *pos[3];
    bool rebuild = strcmp(cmd->name, "rebuild") == 0;
    if (!parse_args(cmd, argc, argv, NULL, pos, 1, 3, &argc))
        return EXIT_USAGE;
    argv = pos;
    const RelationDef *rel = relation_arg(cfg, argv[0]);
    int from = SIDE_DIRECT, to = SIDE_REVERSE;
    Side one;
    if (!rel || (argc >= 2 && !side_arg(argv[1], &one)) || (argc == 3 && !profile_arg(argv[2])))
        return EXIT_USAGE;
    if (argc >= 2)
        from = to = (int)one;
    Check c = {.rel = rel, .rebuild = rebuild, .walks = to - from + 1};
    progress_start(&c.progress, "sides");
    c.e = ctl_engine(cfg, false, c.err, sizeof c.err);
    if (!c.e) {
        fatal(c.err);
        return EXIT_FATAL;
    }
    for (int s = from; s <= to && !c.failed; s++) {
        c.side = (Side)s;
        c.walk = s - from;
        if (argc == 3)
            check_side(argv[2], &c);
        else if (!engine_sides(c.e, rel, c.side, check_side, &c, c.err, sizeof c.err))
            c.failed = true;
    }
    if (!c.failed && c.sides == 0)
        note_empty_prefix(c.e, cfg);
    engine_free(c.e);
    progress_clear(&c.progress);
    if (c.failed) {
        fatal(c.err);
        return EXIT_FATAL;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "relationctl: writing: %s\n", strerror(errno));
        return EXIT_FATAL;
    }
    if (rebuild)
        fprintf(stderr, "sides %lu rebuilt, edges read %lld\n", c.sides, c.edges);
    else
        fprintf(stderr, "sides %lu, differing %lu, edges read %lld\n", c.sides, c.differ, c.edges);
    return c.differ ? EXIT_FATAL : 0;
}

/* layout show: the layout key's version and keyspace id; layout ack: a new
 * keyspace id written (a daemon paused on a lost keyspace goes on). */
int cmd_layout(const Config *cfg, const Command *c, int argc, char **argv)
{
    char *pos[1], err[CONFIG_ERR_MAX], id[LAYOUT_ID_MAX];
    int npos;
    if (!parse_args(c, argc, argv, NULL, pos, 1, 1, &npos))
        return EXIT_USAGE;
    bool ack = strcmp(pos[0], "ack") == 0;
    if (!ack && strcmp(pos[0], "show") != 0) {
        fprintf(stderr, "relationctl layout: show or ack, not \"%s\"\n", pos[0]);
        return EXIT_USAGE;
    }
    Engine *e = engine_new(cfg, err, sizeof err);
    if (!e) {
        fatal(err);
        return EXIT_FATAL;
    }
    bool ok = ack ? engine_layout_renew(e, id, err, sizeof err)
                  : engine_layout_get(e, id, err, sizeof err) == LAYOUT_OK;
    int version = engine_layout_version(e);
    engine_free(e);
    if (!ok) {
        fatal(err);
        return EXIT_FATAL;
    }
    if (ack)
        printf("%slayout: version %d, new keyspace id %s (a daemon paused on a lost keyspace "
               "consumes again)\n", cfg->key_prefix, version, id);
    else if (!id[0])
        printf("%slayout: absent (no engine wrote to this keyspace yet, or it was wiped)\n",
               cfg->key_prefix);
    else
        printf("%slayout: version %d, keyspace id %s%s\n", cfg->key_prefix, version, id,
               version < LAYOUT_VERSION ? " (relationctl migrate converts it to the "
                                          "current version)" : "");
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : EXIT_FATAL;
}

typedef struct {
    Engine *e;
    const RelationDef *rel;
    Side side;
    unsigned long converted, already;
    int walk, walks; /* the walk under way of how many */
    bool failed;
    Progress progress;
    char err[CONFIG_ERR_MAX];
} Migration;

/* One side met by the walk: converted by the engine, or found in layout 2. */
static bool migrate_side(const char *profile, void *ctx)
{
    Migration *m = ctx;
    bool converted;
    if (!engine_migrate(m->e, m->rel, m->side, profile, &converted, m->err, sizeof m->err)) {
        m->failed = true;
        return false;
    }
    if (converted)
        m->converted++;
    else
        m->already++;
    progress_update(&m->progress, (long long)(m->converted + m->already),
                    (m->walk + engine_walk_share(m->e)) / m->walks);
    return true;
}

/* migrate [RELATION]: every side of the relation (of every relation)
 * converted from layout 1, found by two walks of each side: the side hashes
 * (either layout) and layout 1's windows (a side without edges has only
 * that). A side converted by the first walk has no window left for the
 * second; one converted meanwhile by the daemon (an event on it) answers 0.
 * After a full walk of every relation, no layout-1 side is left (SCAN
 * returns every key that exists from its start to its end, and no engine
 * of this build writes layout 1): the layout key goes to version 2. */
int cmd_migrate(const Config *cfg, const Command *cmd, int argc, char **argv)
{
    static const char *const walks[][2] = {{"side", "hash"}, {"seen", "zset"}};
    char *pos[1], id[LAYOUT_ID_MAX];
    if (!parse_args(cmd, argc, argv, NULL, pos, 0, 1, &argc))
        return EXIT_USAGE;
    const RelationDef *only = argc ? relation_arg(cfg, pos[0]) : NULL;
    if (argc && !only)
        return EXIT_USAGE;
    int from = only ? (int)(only - cfg->relations) : 0, to = only ? from : cfg->nrelations - 1;
    Migration m = {.walks = (to - from + 1) * 2 * 2};
    progress_start(&m.progress, "sides");
    m.e = ctl_engine(cfg, true, m.err, sizeof m.err);
    if (!m.e) {
        fatal(m.err);
        return EXIT_FATAL;
    }
    if (engine_layout_get(m.e, id, m.err, sizeof m.err) != LAYOUT_OK)
        m.failed = true;
    for (int r = from; r <= to && !m.failed; r++)
        for (int s = SIDE_DIRECT; s <= SIDE_REVERSE && !m.failed; s++)
            for (int w = 0; w < 2 && !m.failed; w++, m.walk++) {
                m.rel = &cfg->relations[r];
                m.side = (Side)s;
                if (!engine_sides_keyed(m.e, m.rel, m.side, walks[w][0], walks[w][1],
                                        migrate_side, &m, m.err, sizeof m.err))
                    m.failed = true;
            }
    bool changed = false;
    if (!m.failed && !only &&
        !engine_layout_migrated(m.e, id, &changed, m.err, sizeof m.err))
        m.failed = true;
    if (!m.failed && m.converted + m.already == 0)
        note_empty_prefix(m.e, cfg);
    engine_free(m.e);
    progress_clear(&m.progress);
    fprintf(stderr, "sides %lu converted, %lu already in layout 2\n", m.converted, m.already);
    if (m.failed) {
        fatal(m.err);
        fprintf(stderr, "relationctl: migrate: stopped; what it converted stays converted, run "
                        "it again to go on\n");
        return EXIT_FATAL;
    }
    if (only)
        fprintf(stderr, "%slayout left as it was (version 2 is written by a run over every "
                        "relation)\n", cfg->key_prefix);
    else
        fprintf(stderr, "%slayout: version 2, keyspace id %s%s\n", cfg->key_prefix, id,
                changed ? "" : " (it was already)");
    return 0;
}
