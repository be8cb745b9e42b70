/* conf.h — a configuration's relations as the module applies them: what
 * handlers/engine.c (make_library) bakes into the Lua function library,
 * given to the module as one line of text (relationd.load) and kept under
 * the library's name, so that daemons with different configurations share
 * one Redis.
 *
 * The text (version 2, layout 2), tokens separated by one space:
 *   2 TOMB_TTL DEDUP_RANK EXPIRE_STEP nrelations
 *   then per relation: nproperties nslots, then per property:
 *   short slot type(0 int|1 float|2 bool) amount(0|1) order(0 none|1 desc|2 asc) last
 * (slot: the property's 1-based position in the packed edge values, the
 * relation's Pschema list, 1..nslots, no two alike; last: the top's limit
 * less one; TOMB_TTL in seconds, DEDUP_RANK the negative rank
 * ZREMRANGEBYRANK keeps the window with, EXPIRE_STEP in ms).
 *
 * Ownership: conf_parse returns a Conf the caller frees with conf_free; the
 * registry owns the ones given to it. Threads: Redis's main thread.
 * Failure: conf_parse returns NULL with the reason in err (what and where). */
#ifndef RELATIOND_MODULE_CONF_H
#define RELATIOND_MODULE_CONF_H

#include <stdbool.h>
#include <stddef.h>

#define CONF_MAX_PROPS 11
#define CONF_MAX_RELATIONS 4096
#define CONF_MAX_SHORT 64
/* a top's limit less one, at most (a side keeps at most twice the limit) */
#define CONF_MAX_LAST 999
/* the positions of a relation's packed edge values (its Pschema list) */
#define CONF_MAX_SLOTS 1024
/* 'count', then per property 'p:count', 'p:total' */
#define CONF_MAX_HM (1 + 2 * CONF_MAX_PROPS)

typedef struct {
    char short_name[CONF_MAX_SHORT + 1];
    int typ;    /* 0 int, 1 float, 2 bool */
    bool amount;
    int order;  /* 0 none, 1 desc, 2 asc */
    char last[24];
    long long last_n;
    char cf[CONF_MAX_SHORT + 8], tf[CONF_MAX_SHORT + 8];
    int slot; /* 0-based position in a packed edge value */
} ConfProp;

typedef struct {
    int n;
    int nslots;
    ConfProp p[CONF_MAX_PROPS];
    int by_slot[CONF_MAX_PROPS]; /* property indexes in slot order */
    int ntops;
    int tops[CONF_MAX_PROPS]; /* property indexes (0-based) with a top, in order */
    int nhm;
    const char *hm[CONF_MAX_HM]; /* into p[] (or "count") */
    void *hm_str[CONF_MAX_HM];   /* the same as the module's strings (set by its owner) */
} ConfRel;

typedef struct Conf {
    char *name;
    char tomb_ttl[24];
    char dedup_rank[24];
    long long tomb_ttl_s, dedup_keep; /* TOMB_TTL; the ids kept: -DEDUP_RANK - 1 */
    /* EXPIRE_STEP is checked and not kept: the ids ring has no expiry step */
    int nrel;
    ConfRel *rel;
    struct Conf *next;
    /* frees what the owner attached (hm_str); NULL: nothing */
    void (*release)(struct Conf *c);
} Conf;

Conf *conf_parse(const char *name, size_t namelen, const char *text, size_t len, char *err,
                 size_t errlen);
void conf_free(Conf *c);

/* The registry: at most CONF_KEEP configurations, the oldest dropped. */
#define CONF_KEEP 64
/* c replaces the one of its name. */
void conf_put(Conf *c);
const Conf *conf_get(const char *name, size_t len);

#endif
