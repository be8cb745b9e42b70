/* hooks.c — relationctl hooks list|test NAME|enable NAME|drop NAME: each
 * hook's backlog, last success, deliverer (its lease) and disabled flag as
 * the daemon keeps them in Redis, and the streams left by hooks the
 * configuration no longer has (handlers/walk.h), which drop deletes
 * (handlers/backlog.h, daemon/hook_deliver.h); one test trigger sent
 * through a hook's destination directly (daemon/hook_sink.h), not through
 * its backlog; a hook disabled by a 410 enabled again. One thread; messages
 * on standard error, the exit status ctl.h's (test: 1 when not delivered). */
#include "ctl/ctl.h"
#include "daemon/hook_sink.h"
#include "handlers/backlog.h"
#include "handlers/walk.h"
#include "lib/clock.h"
#include "lib/jsonbuf.h"
#include "lib/sha1.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The configuration's hook named name, or NULL. */
static const HookDef *configured(const Config *cfg, const char *name)
{
    for (int i = 0; i < cfg->nhooks; i++)
        if (strcmp(cfg->hooks[i].name, name) == 0)
            return &cfg->hooks[i];
    return NULL;
}

/* The hook of a NAME argument; NULL (said, with the names there are). */
static const HookDef *hook_arg(const Config *cfg, const char *name)
{
    const HookDef *h = configured(cfg, name);
    if (h)
        return h;
    fprintf(stderr, "relationctl: no hook named \"%s\" (the configuration has:", name);
    for (int i = 0; i < cfg->nhooks; i++)
        fprintf(stderr, "%s %s", i ? "," : "", cfg->hooks[i].name);
    fprintf(stderr, "%s)\n", cfg->nhooks ? "" : " none");
    return NULL;
}

/* GET of one of the hook's keys (suffix) into out ("" when absent);
 * false with err. */
static bool hook_read(Engine *e, const Config *cfg, const char *hook, const char *cmd,
                      const char *suffix, char *out, size_t len, char *err, size_t errlen)
{
    JsonBuf k = {0};
    backlog_key(&k, cfg, hook, suffix);
    jsonbuf_char(&k, '\0');
    if (k.oom) {
        jsonbuf_free(&k);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    const char *argv[] = {cmd, k.data};
    redisReply *r;
    bool ok = engine_hook_command(e, hook, 2, argv, NULL, &r, err, errlen);
    jsonbuf_free(&k);
    if (!ok)
        return false;
    out[0] = '\0';
    if (r->type == REDIS_REPLY_INTEGER)
        snprintf(out, len, "%lld", r->integer);
    else if (r->type == REDIS_REPLY_STRING)
        snprintf(out, len, "%s", r->str);
    else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis %s of hook %s: %s", cmd, hook, r->str);
        ok = false;
    }
    freeReplyObject(r);
    return ok;
}

static const char *const kinds[] = {"amqp", "kafka", "http"};

/* One line of hooks list: a configured hook (def), or a stream left by a
 * hook the configuration no longer has (def NULL). */
static bool list_row(const Config *cfg, Engine *e, const char *name, const HookDef *def)
{
    char err[512], len[32], last[32], why[300], when[40], holder[128];
    long long backlog;
    if (!engine_hook_backlog(e, cfg, name, &backlog, err, sizeof err) ||
        !hook_read(e, cfg, name, "GET", ":last_success", last, sizeof last, err, sizeof err) ||
        !hook_read(e, cfg, name, "GET", ":disabled", why, sizeof why, err, sizeof err) ||
        !hook_read(e, cfg, name, "GET", ":lease", holder, sizeof holder, err, sizeof err)) {
        fatal(err);
        return false;
    }
    snprintf(len, sizeof len, "%lld", backlog);
    snprintf(when, sizeof when, "never");
    if (last[0]) {
        time_t t = (time_t)(strtoll(last, NULL, 10) / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    printf("%-20s %-6s %10s  %-24s %-32s ", name, def ? kinds[def->kind] : "-", len, when,
           holder[0] ? holder : "-");
    if (!def)
        printf("not configured (relationctl hooks drop %s)\n", name);
    else
        printf("%s%s%s\n", why[0] ? "disabled: " : "enabled", why,
               why[0] ? " (relationctl hooks enable)" : "");
    return true;
}

typedef struct {
    const Config *cfg;
    Engine *e;
    bool ok;
} ListWalk;

static bool list_unconfigured(const char *hook, long long len, void *ctx)
{
    (void)len;
    ListWalk *w = ctx;
    if (configured(w->cfg, hook))
        return true;
    return (w->ok = list_row(w->cfg, w->e, hook, NULL));
}

static int hooks_list(const Config *cfg, Engine *e)
{
    char err[512];
    printf("%-20s %-6s %10s  %-24s %-32s %s\n", "HOOK", "KIND", "BACKLOG", "LAST SUCCESS",
           "DELIVERER", "STATE");
    for (int i = 0; i < cfg->nhooks; i++)
        if (!list_row(cfg, e, cfg->hooks[i].name, &cfg->hooks[i]))
            return EXIT_FATAL;
    ListWalk w = {cfg, e, true};
    if (!engine_hook_streams(e, list_unconfigured, &w, err, sizeof err)) {
        fatal(err);
        return EXIT_FATAL;
    }
    return w.ok ? 0 : EXIT_FATAL;
}

/* The stream of a hook the configuration no longer has, and its keys,
 * deleted (one DEL: they share the hook's slot). */
static int hooks_drop(const Config *cfg, Engine *e, const char *name)
{
    static const char *const suffixes[] = {"",      ":length", ":last_success", ":disabled",
                                           ":lease", ":dead"};
    enum { NKEYS = sizeof suffixes / sizeof suffixes[0] };
    char err[512];
    long long len;
    if (configured(cfg, name)) {
        fprintf(stderr, "relationctl hooks drop: hook %s is configured (take it out of hooks "
                "and restart the daemons first)\n", name);
        return EXIT_USAGE;
    }
    if (!engine_hook_backlog(e, cfg, name, &len, err, sizeof err)) {
        fatal(err);
        return EXIT_FATAL;
    }
    JsonBuf k[NKEYS] = {{0}};
    const char *argv[NKEYS + 1] = {"DEL"};
    bool oom = false;
    for (int i = 0; i < NKEYS; i++) {
        backlog_key(&k[i], cfg, name, suffixes[i]);
        jsonbuf_char(&k[i], '\0');
        oom |= k[i].oom;
        argv[i + 1] = k[i].data;
    }
    redisReply *r = NULL;
    bool ok = !oom && engine_hook_command(e, name, NKEYS + 1, argv, NULL, &r, err, sizeof err);
    if (oom)
        snprintf(err, sizeof err, "out of memory");
    else if (ok && r->type != REDIS_REPLY_INTEGER) {
        snprintf(err, sizeof err, "redis DEL of hook %s's keys: %s", name,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        ok = false;
    }
    long long deleted = ok ? r->integer : 0;
    if (r)
        freeReplyObject(r);
    for (int i = 0; i < NKEYS; i++)
        jsonbuf_free(&k[i]);
    if (!ok) {
        fatal(err);
        return EXIT_FATAL;
    }
    if (deleted == 0)
        printf("hook %s: nothing in Redis\n", name);
    else
        printf("hook %s: dropped its backlog of %lld triggers and its keys (%lld deleted)\n",
               name, len, deleted);
    return 0;
}

static int hooks_enable(const Config *cfg, Engine *e, const HookDef *h)
{
    char err[512], why[300];
    bool was;
    if (!engine_hook_disabled(e, cfg, h->name, &was, why, sizeof why, err, sizeof err) ||
        (was && !engine_hook_set_disabled(e, cfg, h->name, false, NULL, err, sizeof err))) {
        fatal(err);
        return EXIT_FATAL;
    }
    if (was)
        printf("hook %s: enabled (it was disabled: %s); the daemon delivers its backlog within "
               "a second\n", h->name, why);
    else
        printf("hook %s: was not disabled\n", h->name);
    return 0;
}

/* A trigger its filter passes: the first relation, direction and kind it
 * takes, marked "is_test": true. */
static bool test_trigger(const Config *cfg, const HookDef *h, JsonBuf *b, char id[40],
                         char key[300], char rk[300], char et[64])
{
    static const char *const kind_names[] = {"", "attach", "change", "detach", "threshold"};
    const RelationDef *rel = h->filter.relations ? config_relation(cfg, h->filter.relations[0])
                                                 : cfg->nrelations ? &cfg->relations[0] : NULL;
    if (!rel)
        return false;
    Side side = h->filter.directions == (1u << SIDE_REVERSE) ? SIDE_REVERSE : SIDE_DIRECT;
    int kind = HOOK_ON_ATTACH;
    while (h->filter.kinds && !(h->filter.kinds & (1u << kind)))
        kind++;
    const char *dir = side == SIDE_DIRECT ? "direct" : "reverse";
    const char *db = side == SIDE_DIRECT ? rel->database_a : rel->database_b;
    const char *cdb = side == SIDE_DIRECT ? rel->database_b : rel->database_a;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char seed[64], hex[41], date[40], base[32];
    unsigned char d[20];
    snprintf(seed, sizeof seed, "%lld.%ld.%d", (long long)ts.tv_sec, ts.tv_nsec, (int)getpid());
    Sha1 s;
    sha1_init(&s);
    sha1_update(&s, seed, strlen(seed));
    sha1_final(&s, d);
    sha1_hex(d, hex);
    snprintf(id, 40, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(date, sizeof date, "%s.%09ldZ", base, ts.tv_nsec);
    snprintf(et, 64, "relation_%s_%s", dir, kind_names[kind]);
    snprintf(key, 300, "%s:relationctl-test", db);
    char topic_key[128];
    snprintf(topic_key, sizeof topic_key, "relation.%s.%s.%s", rel->short_name, dir,
             kind_names[kind]);
    hook_sink_routing_key(h, topic_key, db, et, rk, 300);
    jsonbuf_cstr(b, "{\"event_type\":");
    jsonbuf_string(b, et, strlen(et));
    jsonbuf_cstr(b, ",\"event_date\":");
    jsonbuf_string(b, date, strlen(date));
    jsonbuf_cstr(b, ",\"profile_id\":\"relationctl-test\",\"database\":");
    jsonbuf_string(b, db, strlen(db));
    jsonbuf_cstr(b, ",\"is_test\":true,\"event_data\":{\"id\":");
    jsonbuf_string(b, id, strlen(id));
    jsonbuf_cstr(b, ",\"relation\":");
    jsonbuf_string(b, rel->short_name, strlen(rel->short_name));
    jsonbuf_cstr(b, ",\"direction\":");
    jsonbuf_string(b, dir, strlen(dir));
    jsonbuf_cstr(b, ",\"kind\":");
    jsonbuf_string(b, kind_names[kind], strlen(kind_names[kind]));
    jsonbuf_cstr(b, ",\"counterpart\":{\"profile_id\":\"relationctl-test-counterpart\","
                    "\"database\":");
    jsonbuf_string(b, cdb, strlen(cdb));
    jsonbuf_cstr(b, "},\"source_event\":{\"id\":\"relationctl-hooks-test\",\"op\":\"attach\","
                    "\"occurred_at\":null},\"weights\":{\"before\":null,\"after\":{}},"
                    "\"stats\":{\"count\":1,\"properties\":{}},\"threshold\":null}}");
    return !b->oom;
}

static int hooks_test(const Config *cfg, const HookDef *h)
{
    char err[512], id[40], key[300], rk[300], et[64];
    JsonBuf body = {0};
    if (!test_trigger(cfg, h, &body, id, key, rk, et)) {
        jsonbuf_free(&body);
        fatal("out of memory");
        return EXIT_FATAL;
    }
    HookSink *s = hook_sink_new(h, 1000, err, sizeof err);
    if (!s) {
        jsonbuf_free(&body);
        fatal(err);
        return EXIT_FATAL;
    }
    BacklogEntry t = {h->name, id, body.data, body.len, key, rk, et};
    HookOutcome out;
    int64_t start = clock_now_ms();
    hook_sink_send(s, &t, 1, &out);
    long long ms = (long long)(clock_now_ms() - start);
    char status[32] = "";
    if (out.status)
        snprintf(status, sizeof status, ", HTTP %ld", out.status);
    if (out.verdict == HOOK_DELIVERED)
        printf("hook %s: test trigger %s delivered in %lld ms%s\n", h->name, id, ms, status);
    else
        printf("hook %s: test trigger %s not delivered after %lld ms%s: %s%s%s%s\n", h->name, id,
               ms, status, out.reason ? out.reason : "failed", out.detail[0] ? " (" : "",
               out.detail, out.detail[0] ? ")" : "");
    hook_sink_free(s);
    jsonbuf_free(&body);
    return out.verdict == HOOK_DELIVERED ? 0 : EXIT_FATAL;
}

int cmd_hooks(const Config *cfg, const Command *c, int argc, char **argv)
{
    char *pos[2], err[512];
    int npos;
    if (!parse_args(c, argc, argv, NULL, pos, 1, 2, &npos))
        return EXIT_USAGE;
    bool list = strcmp(pos[0], "list") == 0, test = strcmp(pos[0], "test") == 0,
         enable = strcmp(pos[0], "enable") == 0, drop = strcmp(pos[0], "drop") == 0;
    if (!list && !test && !enable && !drop) {
        fprintf(stderr, "relationctl hooks: list, test NAME, enable NAME or drop NAME, not "
                "\"%s\"\n", pos[0]);
        return EXIT_USAGE;
    }
    if (list != (npos == 1)) {
        fprintf(stderr, "relationctl hooks %s: %s\n", pos[0],
                list ? "takes no argument" : "needs the hook's NAME");
        return EXIT_USAGE;
    }
    if (drop && !hook_name_valid(pos[1])) {
        fprintf(stderr, "relationctl hooks drop: \"%s\" is not a hook's name (1..%d of a-z, "
                "0-9, _ and -)\n", pos[1], HOOK_NAME_MAX);
        return EXIT_USAGE;
    }
    const HookDef *h = list || drop ? NULL : hook_arg(cfg, pos[1]);
    if (!list && !drop && !h)
        return EXIT_USAGE;
    if (test)
        return hooks_test(cfg, h);
    Engine *e = engine_create(cfg);
    if (!e || !engine_connect(e, err, sizeof err)) {
        fatal(e ? err : "out of memory");
        engine_free(e);
        return EXIT_FATAL;
    }
    int rc = list   ? hooks_list(cfg, e)
             : drop ? hooks_drop(cfg, e, pos[1])
                    : hooks_enable(cfg, e, h);
    engine_free(e);
    return rc;
}
