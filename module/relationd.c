/* relationd.c — the module's entry point (redis-server --loadmodule
 * relationd.so): registers the commands
 *   relationd.load CONF TEXT          a configuration's relations (conf.h)
 *   relationd.apply CONF numkeys …    one side (apply.h)
 *   relationd.apply2 CONF numkeys …   both sides of an event (apply.h)
 *   relationd.rebuild CONF numkeys …  one rebuild step (rebuild.h)
 *   relationd.migrate CONF numkeys …  one layout-1 side converted (migrate.h)
 * A command naming a configuration not loaded (never, or before a restart)
 * fails with "NOCONFIG …": the engine loads it and calls again.
 *
 * Keys are declared through the getkeys API (numkeys at argument 2), so
 * that ACLs, Redis Cluster routing and -CROSSSLOT see them. The writes are
 * replicated as their effects (call.h). Threads: Redis's main thread. */
#include "module/apply.h"
#include "module/args.h"
#include "module/conf.h"
#include "module/migrate.h"
#include "module/rebuild.h"

#include "redismodule.h"

#include <stdio.h>
#include <string.h>

#define MAX_ARGS 1024

static Str str_of(RedisModuleString *s)
{
    Str out;
    out.s = RedisModule_StringPtrLen(s, &out.len);
    return out;
}

/* The keys of a keyed command (argv: name CONF numkeys keys…). */
static int keyed_keys(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    if (argc < 3)
        return 0;
    Str nk = str_of(argv[2]);
    int n = args_numkeys(&nk, argc);
    for (int i = 0; i < n; i++)
        RedisModule_KeyAtPos(ctx, 3 + i);
    return n;
}

/* An apply that finds its configuration missing fences its side(s) for
 * the call's epoch (args[1], after the keys), as a call that fails does
 * (apply_fence): a later call of the same epoch on the side, pipelined
 * behind this one, is refused FENCED even once another client has loaded
 * the configuration meanwhile (a failover to a node the engine has not
 * loaded it on yet), so that the side's events are applied in their order
 * when the engine sends them again. apply2's keys are the direct side's
 * then the reverse side's; the side's hash is the first of each. */
static void fence_unconfigured(RedisModuleCtx *ctx, RedisModuleString **keys, int nkeys,
                               const Str *args, int nargs, int sides)
{
    if (nkeys < sides || nargs < 2)
        return;
    for (int k = 0; k < sides; k++)
        apply_fence(ctx, keys[k * (nkeys / 2)], args[1]);
}

/* The configuration and the keys of a keyed command, or an error replied
 * (returns NULL); sides: an apply's sides (1 or 2, else 0), which a missing
 * configuration fences. */
static const Conf *keyed(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, int *nkeys,
                         Str *args, int *nargs, int sides)
{
    if (argc < 3) {
        RedisModule_WrongArity(ctx);
        return NULL;
    }
    if (argc > MAX_ARGS) {
        RedisModule_ReplyWithError(ctx, "ERR relationd: too many arguments");
        return NULL;
    }
    Str name = str_of(argv[1]), nk = str_of(argv[2]);
    *nkeys = args_numkeys(&nk, argc);
    if (*nkeys < 0) {
        RedisModule_ReplyWithError(ctx, "ERR relationd: numkeys (argument 2) must be a count "
                                        "of the keys that follow");
        return NULL;
    }
    *nargs = argc - 3 - *nkeys;
    for (int i = 0; i < *nargs; i++)
        args[i] = str_of(argv[3 + *nkeys + i]);
    const Conf *c = conf_get(name.s, name.len);
    if (!c) {
        if (sides > 0)
            fence_unconfigured(ctx, argv + 3, *nkeys, args, *nargs, sides);
        char msg[200];
        snprintf(msg, sizeof msg, "NOCONFIG relationd: configuration %.*s is not loaded "
                                  "(relationd.load)", (int)(name.len > 128 ? 128 : name.len),
                 name.s);
        for (char *p = msg; *p; p++)
            if (*p == '\r' || *p == '\n')
                *p = ' ';
        RedisModule_ReplyWithError(ctx, msg);
        return NULL;
    }
    return c;
}

typedef enum { CMD_APPLY, CMD_APPLY2, CMD_REBUILD, CMD_MIGRATE } Kind;

/* A keyed command: its keys when Redis asks for them, else its arguments
 * checked and the command run. */
static int keyed_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, Kind kind)
{
    if (RedisModule_IsKeysPositionRequest(ctx)) {
        keyed_keys(ctx, argv, argc);
        return REDISMODULE_OK;
    }
    RedisModule_AutoMemory(ctx);
    Str args[MAX_ARGS];
    int nkeys, nargs;
    const Conf *c = keyed(ctx, argv, argc, &nkeys, args, &nargs,
                          kind == CMD_APPLY2 ? 2 : kind == CMD_APPLY ? 1 : 0);
    if (!c)
        return REDISMODULE_OK;
    char err[256];
    if (kind == CMD_REBUILD) {
        RebuildArgs r;
        if (!args_rebuild(c, nkeys, args, nargs, &r, err, sizeof err))
            return RedisModule_ReplyWithError(ctx, err);
        return rebuild_run(ctx, &r, argv + 3);
    }
    if (kind == CMD_MIGRATE) {
        const ConfRel *rel;
        if (!args_migrate(c, nkeys, args, nargs, &rel, err, sizeof err))
            return RedisModule_ReplyWithError(ctx, err);
        return migrate_run(ctx, c, rel, argv + 3);
    }
    ApplyArgs a;
    bool both = kind == CMD_APPLY2;
    if (!args_apply(c, both, nkeys, args, nargs, &a, err, sizeof err))
        return RedisModule_ReplyWithError(ctx, err);
    return apply_run(ctx, c, &a, both, argv + 3, argv + 3 + nkeys, nargs);
}

static int apply1_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    return keyed_cmd(ctx, argv, argc, CMD_APPLY);
}

static int apply2_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    return keyed_cmd(ctx, argv, argc, CMD_APPLY2);
}

static int rebuild_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    return keyed_cmd(ctx, argv, argc, CMD_REBUILD);
}

static int migrate_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    return keyed_cmd(ctx, argv, argc, CMD_MIGRATE);
}

static void release_strings(Conf *c)
{
    for (int r = 0; r < c->nrel; r++)
        for (int i = 0; i < c->rel[r].nhm; i++)
            if (c->rel[r].hm_str[i])
                RedisModule_FreeString(NULL, c->rel[r].hm_str[i]);
}

static int load_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    if (argc != 3)
        return RedisModule_WrongArity(ctx);
    Str name = str_of(argv[1]), text = str_of(argv[2]);
    char err[200], msg[300];
    Conf *c = conf_parse(name.s, name.len, text.s, text.len, err, sizeof err);
    if (!c) {
        snprintf(msg, sizeof msg, "ERR relationd.load: the configuration's text: %s", err);
        return RedisModule_ReplyWithError(ctx, msg);
    }
    /* the statistics' field names as strings, made once */
    c->release = release_strings;
    for (int r = 0; r < c->nrel; r++)
        for (int i = 0; i < c->rel[r].nhm; i++)
            c->rel[r].hm_str[i] =
                RedisModule_CreateString(NULL, c->rel[r].hm[i], strlen(c->rel[r].hm[i]));
    conf_put(c);
    return RedisModule_ReplyWithSimpleString(ctx, "OK");
}

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
    __attribute__((visibility("default")));

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    (void)argv;
    (void)argc;
    if (RedisModule_Init(ctx, "relationd", 1, REDISMODULE_APIVER_1) == REDISMODULE_ERR ||
        !names_init())
        return REDISMODULE_ERR;
    if (RedisModule_CreateCommand(ctx, "relationd.load", load_cmd, "fast", 0, 0, 0) ==
            REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "relationd.apply", apply1_cmd,
                                  "write deny-oom getkeys-api", 0, 0, 0) == REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "relationd.apply2", apply2_cmd,
                                  "write deny-oom getkeys-api", 0, 0, 0) == REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "relationd.rebuild", rebuild_cmd,
                                  "write deny-oom getkeys-api", 0, 0, 0) == REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "relationd.migrate", migrate_cmd,
                                  "write deny-oom getkeys-api", 0, 0, 0) == REDISMODULE_ERR)
        return REDISMODULE_ERR;
    return REDISMODULE_OK;
}
