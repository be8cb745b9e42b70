/* args.c — the commands' arguments checked (args.h). */
#include "module/args.h"
#include "module/num.h"

#include <stdio.h>
#include <string.h>

int args_numkeys(const Str *numkeys, int argc)
{
    int n;
    if (numkeys->len == 1 && numkeys->s[0] == '0')
        return 0;
    if (!num_index(numkeys->s, numkeys->len, 100000, &n) || n > argc - 3)
        return -1;
    return n;
}

static bool relation(const Conf *c, const Str *a, const ConfRel **rel, int *index, char *err,
                     size_t errlen)
{
    int i;
    if (!num_index(a->s, a->len, c->nrel, &i)) {
        snprintf(err, errlen, "ERR relationd: the relation index (first argument after the keys) "
                              "must be 1..%d", c->nrel);
        return false;
    }
    *rel = &c->rel[i - 1];
    if (index)
        *index = i;
    return true;
}

bool args_apply(const Conf *c, bool both, int nkeys, const Str *args, int nargs,
                ApplyArgs *out, char *err, size_t errlen)
{
    int fixed = both ? 10 : 8;
    memset(out, 0, sizeof *out);
    if (nargs < 1 || !relation(c, &args[0], &out->rel, &out->rel_index, err, errlen))
        return nargs < 1 ? (snprintf(err, errlen, "ERR relationd: no arguments after the keys"), false)
                         : false;
    int sides = both ? 2 : 1, want = sides * (4 + out->rel->ntops);
    if (nkeys != want && nkeys != want + sides) {
        snprintf(err, errlen, "ERR relationd: %d keys given, relation %d takes %d (%d while "
                              "migrating)", nkeys, out->rel_index, want, want + sides);
        return false;
    }
    out->half = nkeys / sides;
    out->migrating = nkeys != want;
    if (nargs < fixed || (nargs - fixed) % 2 != 0 || (nargs - fixed) / 2 > ARGS_MAX_PAIRS) {
        snprintf(err, errlen, "ERR relationd: %d arguments after the keys: %d, then at most %d "
                              "index/value pairs", nargs, fixed, ARGS_MAX_PAIRS);
        return false;
    }
    out->epoch = args[1];
    out->now = args[2];
    out->date = args[3];
    if (!num_int(out->now.s, out->now.len, &out->now_v)) {
        snprintf(err, errlen, "ERR relationd: now (argument 3 after the keys) is not an integer");
        return false;
    }
    int k = 4;
    if (both) {
        out->cp[1] = args[k++]; /* the reverse side's counterpart: a */
        out->cp[0] = args[k++];
    } else {
        out->cp[0] = args[k++];
    }
    for (int s = 0; s < sides; s++) {
        out->ek[s] = args[k++];
        if (out->ek[s].len != ARGS_EVENT_KEY) {
            snprintf(err, errlen, "ERR relationd: the event key (argument %d after the keys) "
                                  "must be %d bytes", k, ARGS_EVENT_KEY);
            return false;
        }
    }
    const Str *op = &args[k++];
    if (op->len != 1 || !strchr("aesd", op->s[0]) || op->s[0] == '\0') {
        snprintf(err, errlen, "ERR relationd: op (argument %d after the keys) must be a, e, s or d",
                 k);
        return false;
    }
    out->op = op->s[0];
    out->version = args[k++];
    double ver;
    if (out->version.len > 0 && !num_int(out->version.s, out->version.len, &ver)) {
        /* it is written before the packed edge's ';' */
        snprintf(err, errlen, "ERR relationd: version (argument %d after the keys) must be "
                              "empty or an integer", k);
        return false;
    }
    for (int j = k; j < nargs; j += 2) {
        int p = out->npairs, idx;
        if (!num_index(args[j].s, args[j].len, out->rel->n, &idx)) {
            snprintf(err, errlen, "ERR relationd: argument %d after the keys: a property index "
                                  "1..%d", j + 1, out->rel->n);
            return false;
        }
        out->pidx[p] = idx - 1;
        const Str *v = &args[j + 1];
        if (v->len == 1 && v->s[0] == 'n') {
            out->pnull[p] = true;
        } else if (!num_int(v->s, v->len, &out->pval[p])) {
            snprintf(err, errlen, "ERR relationd: argument %d after the keys: a value, n or an "
                                  "integer", j + 2);
            return false;
        }
        out->npairs++;
    }
    return true;
}

bool args_migrate(const Conf *c, int nkeys, const Str *args, int nargs, const ConfRel **rel,
                  char *err, size_t errlen)
{
    if (nargs != 1) {
        snprintf(err, errlen, "ERR relationd: migrate takes 1 argument after the keys (the "
                              "relation index), not %d", nargs);
        return false;
    }
    if (!relation(c, &args[0], rel, NULL, err, errlen))
        return false;
    if (nkeys != 4 + (*rel)->ntops) {
        snprintf(err, errlen, "ERR relationd: %d keys given, the migration takes %d", nkeys,
                 4 + (*rel)->ntops);
        return false;
    }
    return true;
}

bool args_rebuild(const Conf *c, int nkeys, const Str *args, int nargs, RebuildArgs *out,
                  char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (nargs != 4) {
        snprintf(err, errlen, "ERR relationd: rebuild takes 4 arguments after the keys, not %d",
                 nargs);
        return false;
    }
    if (!relation(c, &args[0], &out->rel, NULL, err, errlen))
        return false;
    if (nkeys != 2 + 2 * out->rel->ntops) {
        snprintf(err, errlen, "ERR relationd: %d keys given, the rebuild takes %d", nkeys,
                 2 + 2 * out->rel->ntops);
        return false;
    }
    out->token = args[1];
    out->cursor = args[2];
    out->count = args[3];
    int n;
    bool digits = out->cursor.len > 0 && out->cursor.len < 32;
    for (size_t i = 0; digits && i < out->cursor.len; i++)
        digits = out->cursor.s[i] >= '0' && out->cursor.s[i] <= '9';
    if (!digits) {
        snprintf(err, errlen, "ERR relationd: the cursor (argument 3 after the keys) must be "
                              "digits");
        return false;
    }
    if (!num_index(out->count.s, out->count.len, 1000000, &n)) {
        snprintf(err, errlen, "ERR relationd: the count (argument 4 after the keys) must be "
                              "1..1000000");
        return false;
    }
    return true;
}
