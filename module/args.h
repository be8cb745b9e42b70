/* args.h — the arguments of the module's commands checked before anything
 * is read or written: the same KEYS and ARGV as the Lua library's FCALLs
 * (handlers/apply.lua), numkeys first:
 *   relationd.apply   CONF numkeys side ids out tomb tops... [seen] rel epoch
 *                     now date counterpart EVENTKEY op version [index value]...
 *   relationd.apply2  CONF numkeys (direct keys) (reverse keys) rel epoch now
 *                     date a b DIRECTKEY REVERSEKEY op version [index value]...
 *   relationd.rebuild CONF numkeys side copy tops... topcopies... rel token
 *                     cursor count
 *   relationd.migrate CONF numkeys side ids out seen tops... rel
 * A side's keys end with layout 1's seen only while the keyspace migrates
 * (the count of keys tells). An event key is 8 bytes (the first of
 * SHA-1(id NUL counterpart)). A value is "n" (unset) or an integer; an
 * index is a property's (1-based).
 *
 * Pure: the strings are the caller's (borrowed); no allocation; any thread.
 * Failure: false with the reason in err, naming the argument. */
#ifndef RELATIOND_MODULE_ARGS_H
#define RELATIOND_MODULE_ARGS_H

#include "module/conf.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *s;
    size_t len;
} Str;

#define ARGS_MAX_PAIRS 64

typedef struct {
    const ConfRel *rel;
    int rel_index; /* 1-based, as sent */
    Str epoch, now, date, cp[2], ek[2], version; /* [0]: the direct side's (counterpart b) */
    int half;       /* keys per side */
    bool migrating; /* the sides' keys end with layout 1's seen */
    char op;       /* a e s d */
    double now_v;
    int npairs;
    int pidx[ARGS_MAX_PAIRS]; /* 0-based property */
    bool pnull[ARGS_MAX_PAIRS];
    double pval[ARGS_MAX_PAIRS];
} ApplyArgs;

typedef struct {
    const ConfRel *rel;
    Str token, cursor, count;
} RebuildArgs;

#define ARGS_EVENT_KEY 8
/* event keys a side's hash window (#w) holds */
#define WINDOW_KEYS 7

/* The keys a command takes, from argv[2] (numkeys): -1 when it is not a
 * count that fits argc. */
int args_numkeys(const Str *numkeys, int argc);
/* both: apply2's arguments; args: ARGV (after the keys). */
bool args_apply(const Conf *c, bool both, int nkeys, const Str *args, int nargs,
                ApplyArgs *out, char *err, size_t errlen);
/* relationd.migrate: the relation (its keys counted). */
bool args_migrate(const Conf *c, int nkeys, const Str *args, int nargs, const ConfRel **rel,
                  char *err, size_t errlen);
bool args_rebuild(const Conf *c, int nkeys, const Str *args, int nargs, RebuildArgs *out,
                  char *err, size_t errlen);

#endif
