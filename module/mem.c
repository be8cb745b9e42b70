/* mem.c — mem.h on Redis's allocator (RedisModule_Alloc, RedisModule_Realloc,
 * RedisModule_Free): usable once RedisModule_Init has run (OnLoad). */
#include "module/mem.h"

#include "redismodule.h"

void *mem_alloc(size_t n)
{
    return RedisModule_Alloc(n);
}

void *mem_realloc(void *p, size_t n)
{
    return RedisModule_Realloc(p, n);
}

void mem_free(void *p)
{
    RedisModule_Free(p);
}
