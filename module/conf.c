/* conf.c — a configuration's text parsed, and the registry of the loaded
 * ones (conf.h). */
#include "module/conf.h"
#include "module/mem.h"
#include "module/num.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *p, *end;
    int n; /* token number, for messages */
} Tok;

/* The next token (no empty one: exactly one space between). */
static bool next(Tok *t, const char **s, size_t *len)
{
    if (t->p >= t->end)
        return false;
    const char *e = memchr(t->p, ' ', (size_t)(t->end - t->p));
    if (!e)
        e = t->end;
    *s = t->p;
    *len = (size_t)(e - t->p);
    t->p = e < t->end ? e + 1 : e;
    t->n++;
    return *len > 0;
}

static bool int_tok(Tok *t, long long lo, long long hi, long long *out)
{
    const char *s;
    size_t len;
    double v;
    if (!next(t, &s, &len) || !num_int(s, len, &v) || v < (double)lo || v > (double)hi)
        return false;
    *out = (long long)v;
    return true;
}

static bool fail(char *err, size_t errlen, const Tok *t, const char *what)
{
    snprintf(err, errlen, "token %d: %s", t->n, what);
    return false;
}

static bool short_ok(const char *s, size_t len)
{
    if (len == 0 || len > CONF_MAX_SHORT || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static bool parse_rel(Tok *t, ConfRel *r, char *err, size_t errlen)
{
    long long n, v;
    if (!int_tok(t, 0, CONF_MAX_PROPS, &n))
        return fail(err, errlen, t, "the number of properties (0..11)");
    r->n = (int)n;
    if (!int_tok(t, n, CONF_MAX_SLOTS, &v))
        return fail(err, errlen, t, "the number of slots (the properties' count..1024)");
    r->nslots = (int)v;
    r->hm[r->nhm++] = "count";
    for (int i = 0; i < r->n; i++) {
        ConfProp *p = &r->p[i];
        const char *s;
        size_t len;
        if (!next(t, &s, &len) || !short_ok(s, len))
            return fail(err, errlen, t, "a property's short name ([a-z][a-z0-9_]*, 1..64)");
        for (int j = 0; j < i; j++)
            if (strlen(r->p[j].short_name) == len && memcmp(r->p[j].short_name, s, len) == 0)
                return fail(err, errlen, t, "a property's short name twice");
        memcpy(p->short_name, s, len);
        p->short_name[len] = '\0';
        if (!int_tok(t, 1, r->nslots, &v))
            return fail(err, errlen, t, "a property's slot (1..nslots)");
        p->slot = (int)v - 1;
        for (int j = 0; j < i; j++)
            if (r->p[j].slot == p->slot)
                return fail(err, errlen, t, "a property's slot twice");
        if (!int_tok(t, 0, 2, &v))
            return fail(err, errlen, t, "a property's type (0 int, 1 float, 2 bool)");
        p->typ = (int)v;
        if (!int_tok(t, 0, 1, &v))
            return fail(err, errlen, t, "a property's amount (0 or 1)");
        p->amount = v == 1;
        if (!int_tok(t, 0, 2, &v))
            return fail(err, errlen, t, "a property's top order (0 none, 1 desc, 2 asc)");
        p->order = (int)v;
        if (!int_tok(t, -1, CONF_MAX_LAST, &v))
            return fail(err, errlen, t, "a property's top limit less one (-1..999)");
        snprintf(p->last, sizeof p->last, "%lld", v);
        p->last_n = v;
        snprintf(p->cf, sizeof p->cf, "%s:count", p->short_name);
        snprintf(p->tf, sizeof p->tf, "%s:total", p->short_name);
        if (p->order != 0)
            r->tops[r->ntops++] = i;
        r->hm[r->nhm++] = p->cf;
        r->hm[r->nhm++] = p->tf;
    }
    for (int i = 0; i < r->n; i++) { /* insertion sort by slot (n <= 11) */
        int j = i;
        for (; j > 0 && r->p[r->by_slot[j - 1]].slot > r->p[i].slot; j--)
            r->by_slot[j] = r->by_slot[j - 1];
        r->by_slot[j] = i;
    }
    return true;
}

Conf *conf_parse(const char *name, size_t namelen, const char *text, size_t len, char *err,
                 size_t errlen)
{
    Tok t = {text, text + len, 0};
    long long v, nrel;
    if (namelen == 0 || namelen > 128) {
        snprintf(err, errlen, "the configuration's name: 1..128 bytes");
        return NULL;
    }
    Conf *c = mem_alloc(sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memset(c, 0, sizeof *c);
    c->name = mem_alloc(namelen + 1);
    if (!c->name) {
        snprintf(err, errlen, "out of memory");
        goto bad;
    }
    memcpy(c->name, name, namelen);
    c->name[namelen] = '\0';
    if (!int_tok(&t, 2, 2, &v)) {
        fail(err, errlen, &t, "the text's version (2)");
        goto bad;
    }
    if (!int_tok(&t, 1, 315360000, &v)) {
        fail(err, errlen, &t, "TOMB_TTL (1..315360000 s)");
        goto bad;
    }
    snprintf(c->tomb_ttl, sizeof c->tomb_ttl, "%lld", v);
    c->tomb_ttl_s = v;
    if (!int_tok(&t, -100000001, -2, &v)) {
        fail(err, errlen, &t, "DEDUP_RANK (-100000001..-2)");
        goto bad;
    }
    snprintf(c->dedup_rank, sizeof c->dedup_rank, "%lld", v);
    c->dedup_keep = -v - 1;
    if (!int_tok(&t, 1, 315360000000LL, &v)) {
        fail(err, errlen, &t, "EXPIRE_STEP (1.. ms)");
        goto bad;
    }
    if (!int_tok(&t, 1, CONF_MAX_RELATIONS, &nrel)) {
        fail(err, errlen, &t, "the number of relations (1..4096)");
        goto bad;
    }
    c->rel = mem_alloc((size_t)nrel * sizeof *c->rel);
    if (!c->rel) {
        snprintf(err, errlen, "out of memory");
        goto bad;
    }
    memset(c->rel, 0, (size_t)nrel * sizeof *c->rel);
    c->nrel = (int)nrel;
    for (int r = 0; r < c->nrel; r++)
        if (!parse_rel(&t, &c->rel[r], err, errlen))
            goto bad;
    if (t.p != t.end) {
        fail(err, errlen, &t, "text after the last relation");
        goto bad;
    }
    return c;
bad:
    conf_free(c);
    return NULL;
}

void conf_free(Conf *c)
{
    if (!c)
        return;
    if (c->release)
        c->release(c);
    mem_free(c->name);
    mem_free(c->rel);
    mem_free(c);
}

static Conf *registry;

void conf_put(Conf *c)
{
    Conf **at = &registry;
    int n = 0;
    c->next = NULL;
    /* the one of its name goes; c is the newest (first) */
    while (*at) {
        Conf *x = *at;
        if (strcmp(x->name, c->name) == 0) {
            *at = x->next;
            conf_free(x);
            continue;
        }
        at = &x->next;
    }
    c->next = registry;
    registry = c;
    for (at = &registry; *at; at = &(*at)->next)
        if (++n == CONF_KEEP) {
            Conf *rest = (*at)->next;
            (*at)->next = NULL;
            while (rest) {
                Conf *x = rest;
                rest = x->next;
                conf_free(x);
            }
            break;
        }
}

const Conf *conf_get(const char *name, size_t len)
{
    for (Conf *c = registry; c; c = c->next)
        if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
            return c;
    return NULL;
}
