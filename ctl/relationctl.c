/* relationctl.c — relationctl's entry: the command table (name,
 * arguments, help, example, what each reads of the configuration), the
 * option parser, the arguments the reading commands share (relation, side,
 * profile), the fatal-error report with its hint, and main, which loads
 * only the configuration sections the command uses and runs it (README,
 * "Command line"). The commands live by family: read.c, check.c, apply.c,
 * broker.c (ctl.h). One thread; messages go to standard error (the
 * engine's log too: main sets lib/log.h's sink, logfmt without journal
 * prefixes, at engine.log_level), and the exit status is one of ctl.h's. */
#include "ctl/ctl.h"
#include "handlers/check.h"
#include "handlers/layout.h"
#include "lib/log.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static const Command commands[] = {
    {"stats", "RELATION direct|reverse PROFILE [--json|--table]",
     "One side's statistics: a table on a terminal, one JSON object when piped or with\n"
     "--json (--table: the table anyway).",
     "relationctl -c /etc/relationd/relationd.json stats loyal direct 42", cmd_stats, 0},
    {"edges", "RELATION direct|reverse PROFILE",
     "Every edge of one side, one JSON object a line, in constant memory.",
     "relationctl -c /etc/relationd/relationd.json edges loyal reverse 1001", cmd_edges, 0},
    {"segment", "RELATION direct|reverse [--where EXPR]",
     "Every profile of the side with an edge meeting EXPR (COND [and COND]..., COND is\n"
     "PROPERTY OP VALUE, OP one of = != > >= < <=), one a line.",
     "relationctl -c /etc/relationd/relationd.json segment loyal direct --where 'profit > 200'", cmd_segment, 0},
    {"render", "[FILE|-] --profile ID",
     "A template's relation variables ({relation.R.SIDE.count}, ...) filled for one profile.",
     "relationctl -c /etc/relationd/relationd.json render letter.txt --profile 42", cmd_render, 0},
    {"watch", "[PATTERN] [--json]",
     "Triggers as they are published (a temporary queue bound to the hook exchange with\n"
     "PATTERN, default all): a line each on a terminal, JSON lines when piped or with --json.\n"
     "Ctrl-C stops.",
     "relationctl -c /etc/relationd/relationd.json watch 'relation.*.direct.threshold'", cmd_watch, READS_HOOKS},
    {"send", "[FILE|-] --kafka|--amqp",
     "JSON-lines events published as an upstream service should (Kafka: keyed, acks=all;\n"
     "AMQP: persistent, confirmed), each line checked first (bad ones reported, not sent).",
     "relationctl -c /etc/relationd/relationd.json send events.jsonl --kafka", cmd_send, READS_HOOKS | READS_SOURCES},
    {"redrive", "(--amqp QUEUE | --kafka) [--force] [--limit N]",
     "Dead letters back to their source after a fix, each once, its reason shown\n"
     "(--amqp: from QUEUE, a queue bound to the dead-letter exchange, as many as it held\n"
     "at the start; --kafka: the dead-letter topic up to its end at the start). Those\n"
     "redriven before are skipped unless --force. --limit: stop after N redriven.",
     "relationctl -c /etc/relationd/relationd.json redrive --amqp relation-events.dead --limit 100", cmd_redrive, READS_HOOKS | READS_SOURCES},
    {"verify", "RELATION [direct|reverse [PROFILE]]",
     "Recomputes each side's statistics from its edges and prints every side whose stored\n"
     "ones differ, with both values; exit status 1 when any differs.",
     "relationctl -c /etc/relationd/relationd.json verify loyal", cmd_check, 0},
    {"rebuild", "RELATION [direct|reverse [PROFILE]]",
     "Writes each side's statistics again from its edges, in short steps (the result put\n"
     "in place atomically per side); safe while the daemon runs (after a property is added,\n"
     "removed or changed).",
     "relationctl -c /etc/relationd/relationd.json rebuild loyal direct", cmd_check, 0},
    {"migrate", "[RELATION]",
     "Converts every side still in layout 1 (a release before layout 2 wrote it) to layout 2,\n"
     "atomically per side, while the daemons of this release run; resumable (a run again\n"
     "converts what is left). After a run over every relation the layout key says version 2.",
     "relationctl -c /etc/relationd/relationd.json migrate", cmd_migrate, 0},
    {"layout", "show|ack",
     "The layout key (PREFIX layout): show prints its layout version and keyspace id; ack\n"
     "writes a new keyspace id, acknowledging a keyspace the daemon found wiped (the daemon\n"
     "then consumes again).",
     "relationctl -c /etc/relationd/relationd.json layout ack", cmd_layout, 0},
    {"apply", "[FILE|-] [--publish | --no-triggers]",
     "JSON-lines events applied with the daemon's engine (a backfill); the triggers printed,\n"
     "published to the hook exchange (--publish), or dropped (--no-triggers).",
     "relationctl -c /etc/relationd/relationd.json apply backfill.jsonl --publish", cmd_apply, 0},
    {"hooks", "list | test NAME | enable NAME | drop NAME",
     "list: each hook's kind, backlog (triggers kept in Redis, not delivered yet), last\n"
     "success, the daemon delivering it and whether it is disabled, then the backlogs of\n"
     "hooks no longer configured. test: one trigger with \"is_test\": true sent\n"
     "through the hook's destination directly, the outcome and time printed (exit 0 when\n"
     "delivered). enable: a hook disabled by a 410 answer delivers again. drop: the\n"
     "backlog and keys of a hook no longer configured deleted.",
     "relationctl -c /etc/relationd/relationd.json hooks test partner", cmd_hooks, READS_HOOKS},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static const Command *command_named(const char *name)
{
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void usage(FILE *out)
{
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(out, "%s relationctl -c FILE %s %s\n", i ? "      " : "usage:", commands[i].name,
                commands[i].args);
    fprintf(out, "       relationctl [COMMAND] --help | --version\n");
}

static void command_help(const Command *c)
{
    printf("usage: relationctl -c FILE %s %s\n\n%s\n\nexample:\n  %s\n\n"
           "FILE is relationd's configuration (only the sections the command uses are read).\n",
           c->name, c->args, c->about, c->example);
}

/* A command's arguments (Opt: ctl.h). */
bool parse_args(const Command *c, int argc, char **argv, const Opt *opts, char **pos,
                int minpos, int maxpos, int *npos)
{
    bool options = true;
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = false;
            continue;
        }
        if (options && a[0] == '-' && a[1] == '-') {
            const Opt *o = opts;
            while (o && o->name && strcmp(o->name, a) != 0)
                o++;
            if (!o || !o->name) {
                fprintf(stderr, "relationctl %s: unknown option %s (see relationctl %s --help)\n",
                        c->name, a, c->name);
                return false;
            }
            if (o->value && i + 1 >= argc) {
                fprintf(stderr, "relationctl %s: %s needs a value (see relationctl %s --help)\n",
                        c->name, a, c->name);
                return false;
            }
            if (o->value)
                *o->value = argv[++i];
            else
                *o->flag = true;
        } else if (*npos < maxpos) {
            pos[(*npos)++] = argv[i];
        } else {
            fprintf(stderr, "relationctl %s: unexpected argument \"%s\"; it takes %s\n", c->name,
                    a, c->args);
            return false;
        }
    }
    if (*npos < minpos) {
        fprintf(stderr, "relationctl %s: missing arguments; it takes %s (example: %s)\n",
                c->name, c->args, c->example);
        return false;
    }
    return true;
}

/* A fatal error, and what to do next where the message tells. */
void fatal(const char *err)
{
    fprintf(stderr, "relationctl: %s\n", err);
    const char *hint = NULL;
    if (strncmp(err, "redis", 5) == 0 && (strstr(err, "refused") || strstr(err, "timed out") ||
                                          strstr(err, "Name or service")))
        hint = "is redis-server running at redis.url? (relationd -c FILE --check-config "
               "--connect tries every connection of FILE)";
    else if (strstr(err, "NOAUTH") || strstr(err, "WRONGPASS"))
        hint = "put Redis's password in redis.url (redis://:PASSWORD@HOST:PORT/DB, or "
               "${NAME} taken from the environment)";
    else if (strstr(err, "ACCESS_REFUSED") || strstr(err, "access refused"))
        hint = "check the user and password of the AMQP URL (a ${NAME} in it comes from the "
               "environment)";
    else if (strstr(err, "socket error") || strstr(err, "refused"))
        hint = "is the broker running at the URL of the configuration? (relationd -c FILE "
               "--check-config --connect tries every connection of FILE)";
    if (hint)
        fprintf(stderr, "relationctl: hint: %s\n", hint);
}

/* After an empty answer: a word when the key prefix holds no data at all. */
Engine *ctl_engine(const Config *cfg, bool writer, char *err, size_t errlen)
{
    char id[LAYOUT_ID_MAX];
    bool written;
    Engine *e;
    if (writer) {
        e = engine_new(cfg, err, errlen);
    } else {
        e = engine_create(cfg);
        if (!e)
            snprintf(err, errlen, "out of memory");
        else
            engine_set_reader(e);
        if (e && !engine_connect(e, err, errlen)) {
            engine_free(e);
            e = NULL;
        }
    }
    if (e && (writer ? engine_layout_claim(e, id, &written, err, errlen) == LAYOUT_OK
                     : engine_layout_known(e, err, errlen)))
        return e;
    engine_free(e);
    return NULL;
}

void note_empty_prefix(Engine *e, const Config *cfg)
{
    char err[256];
    bool unused;
    if (engine_prefix_unused(e, &unused, err, sizeof err) && unused)
        fprintf(stderr, "relationctl: note: no key at all starts with \"%s\" in this Redis "
                        "(is redis.key_prefix right?)\n", cfg->key_prefix);
}

/* A relation of the configuration (NULL, message printed, when it is not). */
const RelationDef *relation_arg(const Config *cfg, const char *name)
{
    const RelationDef *rel = config_relation(cfg, name);
    if (!rel) {
        fprintf(stderr, "relationctl: unknown relation \"%s\" (the configuration has:", name);
        for (int i = 0; i < cfg->nrelations; i++)
            fprintf(stderr, "%s %s", i ? "," : "", cfg->relations[i].short_name);
        fprintf(stderr, ")\n");
    }
    return rel;
}

/* direct or reverse (false, message printed, otherwise). */
bool side_arg(const char *name, Side *side)
{
    if (strcmp(name, "direct") == 0)
        *side = SIDE_DIRECT;
    else if (strcmp(name, "reverse") == 0)
        *side = SIDE_REVERSE;
    else {
        fprintf(stderr, "relationctl: side must be direct or reverse, not \"%s\"\n", name);
        return false;
    }
    return true;
}

bool profile_arg(const char *profile)
{
    if (*profile && strlen(profile) <= EVENT_PROFILE_MAX)
        return true;
    fprintf(stderr, "relationctl: PROFILE must be 1..%d bytes\n", EVENT_PROFILE_MAX);
    return false;
}

/* RELATION direct|reverse PROFILE: false (message printed) when one is not. */
bool side_args(const Config *cfg, char **argv, const RelationDef **out, Side *side)
{
    return (*out = relation_arg(cfg, argv[0])) && side_arg(argv[1], side) && profile_arg(argv[2]);
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    char err[CONFIG_ERR_MAX];
    int i = 1, rc;
    bool help = false;

    /* A lost Redis connection, or a closed standard output, is an error
     * reported with its reason (and the exit status), not a silent SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

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
    const Command *c = i < argc ? command_named(argv[i]) : NULL;
    if (i < argc && strcmp(argv[i], "help") == 0 && i + 1 < argc)
        c = command_named(argv[i + 1]), help = true;
    for (int k = i + 1; c && k < argc && strcmp(argv[k], "--") != 0; k++)
        help |= strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0;
    if (c && help) {
        command_help(c);
        return 0;
    }
    if (!c || !config_path) {
        if (i < argc && !c)
            fprintf(stderr, "relationctl: unknown command \"%s\"\n", argv[i]);
        else if (c)
            fprintf(stderr, "relationctl %s: -c FILE, relationd's configuration, comes first "
                            "(example: %s)\n", c->name, c->example);
        usage(stderr);
        return EXIT_USAGE;
    }
    /* only the sections the command uses: http never, the hooks for watch,
     * send, redrive and apply --publish, the sources for send and redrive */
    bool hooks = c->reads & READS_HOOKS, sources = c->reads & READS_SOURCES;
    for (int k = i + 1; k < argc; k++)
        hooks |= c->run == cmd_apply && strcmp(argv[k], "--publish") == 0;
    Config *cfg = config_load_sections(config_path,
                                       (sources ? 0 : CONFIG_SKIP_SOURCES) | CONFIG_SKIP_HTTP |
                                           (hooks ? 0 : CONFIG_SKIP_HOOKS),
                                       err, sizeof err);
    if (!cfg) {
        fatal(err);
        return EXIT_FATAL;
    }
    /* the engine's log: logfmt on stderr (never the journal's prefixes), at
     * engine.log_level, as the daemon */
    static LogfmtSink log_sink = {.journal = false};
    log_set_sink(log_sink_logfmt, &log_sink);
    atomic_store(&log_max_level, cfg->log_level);
    rc = c->run(cfg, c, argc - i - 1, argv + i + 1);
    config_free(cfg);
    return rc;
}
