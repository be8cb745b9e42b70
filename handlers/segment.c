/* segment.c — --where conditions (segment.h). */
#include "handlers/segment.h"
#include "lib/fixed.h"

#include <stdio.h>
#include <string.h>

static bool failf(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return false;
}

/* A decimal number [+-]D[.D] into units (floor of value x 10^6) and whether
 * digits beyond the sixth decimal are not all zero. False when it is not
 * one, or beyond limit units. */
static bool decimal_units(const char *s, size_t len, bool allow_point, int64_t limit,
                          int64_t *units, bool *frac)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    size_t int_start = i;
    int64_t m = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (m > (limit - (s[i] - '0')) / 10)
            return false;
        m = m * 10 + (s[i] - '0');
    }
    if (i == int_start)
        return false;
    int64_t f = 0;
    int digits = 0;
    bool extra = false;
    if (i < len && s[i] == '.') {
        if (!allow_point)
            return false;
        i++;
        size_t frac_start = i;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (digits < 6) {
                f = f * 10 + (s[i] - '0');
                digits++;
            } else if (s[i] != '0') {
                extra = true;
            }
        }
        if (i == frac_start)
            return false;
    }
    if (i != len)
        return false;
    for (; digits < 6; digits++)
        f *= 10;
    if (allow_point) {
        if (m > limit / FIXED_SCALE)
            return false;
        m = m * FIXED_SCALE + f;
    }
    /* floor: a negative value with extra digits is one unit further down */
    *units = neg ? -m - (extra ? 1 : 0) : m;
    *frac = extra;
    return true;
}

bool segment_parse(const RelationDef *rel, const char *expr, Segment *out, char *err,
                   size_t errlen)
{
    out->n = 0;
    const char *p = expr ? expr : "";
    for (;;) {
        while (*p == ' ')
            p++;
        if (!*p) {
            if (out->n == 0 && expr && *expr)
                return failf(err, errlen, "--where: no condition%s%s", "", "");
            return true;
        }
        if (out->n > 0) {
            if (strncmp(p, "and", 3) != 0 || (p[3] != ' ' && p[3] != '\0')) {
                char word[32];
                size_t wl = strcspn(p, " ");
                snprintf(word, sizeof word, "%.*s", (int)(wl < 31 ? wl : 31), p);
                return failf(err, errlen, "--where: expected \"and\" between conditions, not \"%s\"%s",
                             word, "");
            }
            p += 3;
            while (*p == ' ')
                p++;
        }
        if (out->n == SEGMENT_MAX_CONDS)
            return failf(err, errlen, "--where: more than 32 conditions%s%s", "", "");
        /* PROPERTY */
        const char *name = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
            p++;
        char prop[CONFIG_SHORT_MAX + 1];
        size_t nl = (size_t)(p - name);
        if (nl == 0) {
            char at[32];
            snprintf(at, sizeof at, "%.20s", name);
            return failf(err, errlen, "--where: expected a property name at \"%s\"%s", at, "");
        }
        snprintf(prop, sizeof prop, "%.*s", (int)(nl < CONFIG_SHORT_MAX ? nl : CONFIG_SHORT_MAX),
                 name);
        int index = -1;
        for (int i = 0; i < rel->nproperties; i++)
            if (nl <= CONFIG_SHORT_MAX && strcmp(rel->properties[i].short_name, prop) == 0)
                index = i;
        if (index < 0)
            return failf(err, errlen, "--where: unknown property \"%s\" of relation %s", prop,
                         rel->short_name);
        /* OP */
        while (*p == ' ')
            p++;
        SegmentOp op;
        if (strncmp(p, "!=", 2) == 0)
            op = OP_NE, p += 2;
        else if (strncmp(p, ">=", 2) == 0)
            op = OP_GE, p += 2;
        else if (strncmp(p, "<=", 2) == 0)
            op = OP_LE, p += 2;
        else if (*p == '=')
            op = OP_EQ, p++;
        else if (*p == '>')
            op = OP_GT, p++;
        else if (*p == '<')
            op = OP_LT, p++;
        else
            return failf(err, errlen, "--where: %s: expected an operator (= != > >= < <=)%s",
                         prop, "");
        /* VALUE */
        while (*p == ' ')
            p++;
        const char *v = p;
        while (*p && *p != ' ')
            p++;
        size_t vl = (size_t)(p - v);
        char value[64];
        snprintf(value, sizeof value, "%.*s", (int)(vl < 63 ? vl : 63), v);
        if (vl == 0)
            return failf(err, errlen, "--where: %s: a value is missing%s", prop, "");
        SegmentCond *c = &out->conds[out->n];
        *c = (SegmentCond){index, op, 0, false};
        const PropertyDef *pd = &rel->properties[index];
        if (pd->type == PROP_BOOL) {
            bool t = vl == 4 && memcmp(v, "true", 4) == 0, f = vl == 5 && memcmp(v, "false", 5) == 0;
            if ((op != OP_EQ && op != OP_NE) || (!t && !f))
                return failf(err, errlen,
                             "--where: %s: a bool takes only = or != with true or false%s", prop, "");
            c->value = t;
        } else if (pd->type == PROP_INT) {
            if (!decimal_units(v, vl, false, FIXED_INT_MAX, &c->value, &c->frac))
                return failf(err, errlen, "--where: %s: an int takes only integers, not \"%s\"", prop,
                             value);
        } else if (!decimal_units(v, vl, true, FIXED_FLOAT_MAX * FIXED_SCALE, &c->value,
                                  &c->frac)) {
            return failf(err, errlen, "--where: %s: a float takes a number, not \"%s\"", prop,
                         value);
        }
        out->n++;
    }
}

static bool cond_match(const SegmentCond *c, int64_t x)
{
    /* x against q (+ a fraction of a unit when frac: q < VALUE < q + 1) */
    int64_t q = c->value;
    switch (c->op) {
    case OP_EQ:
        return !c->frac && x == q;
    case OP_NE:
        return c->frac || x != q;
    case OP_GT:
        return x > q;
    case OP_GE:
        return c->frac ? x > q : x >= q;
    case OP_LT:
        return c->frac ? x <= q : x < q;
    case OP_LE:
        return x <= q;
    }
    return false;
}

bool segment_match(const Segment *s, const EdgeWeights *w)
{
    for (int i = 0; i < s->n; i++) {
        const SegmentCond *c = &s->conds[i];
        if (!w->set[c->property] || !cond_match(c, w->w[c->property]))
            return false;
    }
    return true;
}
