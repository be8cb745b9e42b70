/* call.h — Redis commands run from a module command (RedisModule_Call), the
 * way the Lua library's redis.call runs them: a write's effects replicated
 * ("!": to the replicas and the AOF, wrapped with the command's other
 * writes in MULTI/EXEC, so that neither needs the module), an error reply
 * turned into the failure of the whole call (its message kept for the
 * client, as pcall gives it to the library's `failed`).
 *
 * Ownership: replies and strings are the context's automatic memory (freed
 * when the command returns). Threads: Redis's main thread. */
#ifndef RELATIOND_MODULE_CALL_H
#define RELATIOND_MODULE_CALL_H

#include "redismodule.h"

#include <stdbool.h>
#include <stddef.h>

#define RUN_KEYS 16

typedef struct {
    RedisModuleCtx *ctx;
    bool failed;
    char err[512];
    /* Keys store.c holds open (by name) between its calls; closed by
     * run_flush before any RedisModule_Call, which may free what a handle
     * points to. */
    int nopen;
    RedisModuleKey *open[RUN_KEYS];
    RedisModuleString *open_str[RUN_KEYS]; /* the name as opened */
    const char *open_s[RUN_KEYS]; /* the names' bytes (the strings are the context's) */
    size_t open_len[RUN_KEYS];
} Run;

/* The reply, or NULL when it is an error (or the call failed): r->failed
 * set and r->err its message, the first one kept. */
RedisModuleCallReply *run_check(Run *r, RedisModuleCallReply *rep, const char *cmd);

#define RUN(r, cmd, fmt, ...)                                                                    \
    (run_flush(r), run_check((r), RedisModule_Call((r)->ctx, cmd, fmt, __VA_ARGS__), cmd))

/* The keys held open closed. */
void run_flush(Run *r);

/* A string of the context's automatic memory. */
RedisModuleString *run_str(Run *r, const char *s, size_t len);
/* prefix then s then (when sep >= 0) the byte sep and t. */
RedisModuleString *run_cat(Run *r, const char *prefix, const char *s, size_t len, int sep,
                           const char *t, size_t tlen);
/* A key of the side whose hash is k_side (`P{R:S:X}:side`): its name
 * with `side` replaced by tail then tail2 (NULL: none), e.g. "rebuild",
 * "rebuild:top:" and a property's short name. */
RedisModuleString *run_sibling(Run *r, RedisModuleString *k_side, const char *tail,
                               const char *tail2);
/* The layout's fixed field names ('#last' of layout 1, '#fence',
 * '#rebuild', '#w', '#z'), created once by names_init (OnLoad: false when
 * out of memory), never freed. */
extern RedisModuleString *name_last, *name_fence, *name_rebuild, *name_w, *name_z;
bool names_init(void);

/* Element i of an array reply: its string (NULL for a nil). */
const char *run_elem(RedisModuleCallReply *arr, size_t i, size_t *len);

#endif
