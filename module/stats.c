/* stats.c — statistics accumulated into a hash (stats.h). */
#include "module/stats.h"
#include "module/num.h"

#include <string.h>

#define EXACT (9007199254740992.0 - 2000000000000000.0)

void stats_init(Stats *s, const ConfRel *C, RedisModuleString *key)
{
    memset(s, 0, sizeof *s);
    s->C = C;
    s->key = key;
}

static bool add(Run *R, Stats *s, int f, double d)
{
    double v = s->acc[f] + d;
    if (v >= EXACT || v <= -EXACT) {
        char num[24];
        int nl = num_format(s->acc[f], num);
        if (!RUN(R, "HINCRBY", "!scb", s->key, s->C->hm[f], num, (size_t)nl))
            return false;
        v = d;
    }
    s->acc[f] = v;
    return true;
}

bool stats_contrib(Run *R, Stats *s, const Weights *w, int sign)
{
    const ConfRel *C = s->C;
    if (!add(R, s, 0, sign))
        return false;
    for (int i = 0; i < C->n; i++) {
        if (!w->set[i])
            continue;
        double v = w->v[i];
        if ((C->p[i].typ != 2 || v == 1) && !add(R, s, 1 + 2 * i, sign))
            return false;
        if (C->p[i].amount && !add(R, s, 2 + 2 * i, sign * v))
            return false;
    }
    return true;
}

bool stats_flush(Run *R, Stats *s)
{
    for (int f = 0; f < s->C->nhm; f++) {
        if (s->acc[f] == 0)
            continue;
        char num[24];
        int nl = num_format(s->acc[f], num);
        if (!RUN(R, "HINCRBY", "!scb", s->key, s->C->hm[f], num, (size_t)nl))
            return false;
    }
    return true;
}
