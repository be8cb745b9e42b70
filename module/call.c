/* call.c — Redis commands run from the module's commands (call.h). */
#include "module/call.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

RedisModuleCallReply *run_check(Run *r, RedisModuleCallReply *rep, const char *cmd)
{
    if (rep && RedisModule_CallReplyType(rep) != REDISMODULE_REPLY_ERROR)
        return rep;
    if (!r->failed) {
        if (rep) {
            size_t len;
            const char *s = RedisModule_CallReplyStringPtr(rep, &len);
            if (len >= sizeof r->err)
                len = sizeof r->err - 1;
            memcpy(r->err, s, len);
            r->err[len] = '\0';
            for (size_t i = 0; i < len; i++) /* an error reply is one line */
                if (r->err[i] == '\r' || r->err[i] == '\n' || r->err[i] == '\0')
                    r->err[i] = ' ';
        } else {
            snprintf(r->err, sizeof r->err, "ERR relationd: %s could not be run (errno %d)", cmd,
                     errno);
        }
    }
    r->failed = true;
    return NULL;
}

void run_flush(Run *r)
{
    for (int i = 0; i < r->nopen; i++)
        RedisModule_CloseKey(r->open[i]);
    r->nopen = 0;
}

RedisModuleString *run_str(Run *r, const char *s, size_t len)
{
    return RedisModule_CreateString(r->ctx, s, len);
}

RedisModuleString *run_cat(Run *r, const char *prefix, const char *s, size_t len, int sep,
                           const char *t, size_t tlen)
{
    size_t pl = strlen(prefix), total = pl + len + (sep >= 0 ? 1 + tlen : 0);
    char buf[256];
    if (total <= sizeof buf) { /* the common case: one string made, no appends */
        memcpy(buf, prefix, pl);
        memcpy(buf + pl, s, len);
        if (sep >= 0) {
            buf[pl + len] = (char)sep;
            memcpy(buf + pl + len + 1, t, tlen);
        }
        return RedisModule_CreateString(r->ctx, buf, total);
    }
    RedisModuleString *out = RedisModule_CreateString(r->ctx, prefix, pl);
    RedisModule_StringAppendBuffer(r->ctx, out, s, len);
    if (sep >= 0) {
        char c = (char)sep;
        RedisModule_StringAppendBuffer(r->ctx, out, &c, 1);
        RedisModule_StringAppendBuffer(r->ctx, out, t, tlen);
    }
    return out;
}

RedisModuleString *run_sibling(Run *r, RedisModuleString *k_side, const char *tail,
                               const char *tail2)
{
    size_t kl;
    const char *k = RedisModule_StringPtrLen(k_side, &kl);
    RedisModuleString *s = RedisModule_CreateString(r->ctx, k, kl < 4 ? 0 : kl - 4);
    RedisModule_StringAppendBuffer(r->ctx, s, tail, strlen(tail));
    if (tail2)
        RedisModule_StringAppendBuffer(r->ctx, s, tail2, strlen(tail2));
    return s;
}

const char *run_elem(RedisModuleCallReply *arr, size_t i, size_t *len)
{
    RedisModuleCallReply *e = RedisModule_CallReplyArrayElement(arr, i);
    *len = 0;
    if (!e || RedisModule_CallReplyType(e) != REDISMODULE_REPLY_STRING)
        return NULL;
    return RedisModule_CallReplyStringPtr(e, len);
}

RedisModuleString *name_last, *name_fence, *name_rebuild, *name_w, *name_z;

bool names_init(void)
{
    name_last = RedisModule_CreateString(NULL, "#last", 5);
    name_fence = RedisModule_CreateString(NULL, "#fence", 6);
    name_rebuild = RedisModule_CreateString(NULL, "#rebuild", 8);
    name_w = RedisModule_CreateString(NULL, "#w", 2);
    name_z = RedisModule_CreateString(NULL, "#z", 2);
    return name_last && name_fence && name_rebuild && name_w && name_z;
}
