/* mem.h — the module's allocator. Inside redis-server every allocation is
 * Redis's (mem.c: RedisModule_Alloc and friends, accounted in its memory
 * and limits); the parsing code (conf.c, args.c, edge.c, mpack.c) calls only
 * these, so that a fuzz target links them with its own (malloc).
 *
 * Threads: called from Redis's main thread only. Failure: mem_alloc and
 * mem_realloc return NULL only in a build whose allocator can fail (Redis
 * aborts when out of memory); callers check all the same. */
#ifndef RELATIOND_MODULE_MEM_H
#define RELATIOND_MODULE_MEM_H

#include <stddef.h>

void *mem_alloc(size_t n);
void *mem_realloc(void *p, size_t n);
void mem_free(void *p);

#endif
