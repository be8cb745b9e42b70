/* edge.c — stored edge values of both layouts decoded, tops computed from
 * edges (edge.h). */
#include "handlers/edge.h"
#include "handlers/event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool edge_is_layout1(const char *raw, size_t len)
{
    return len > 0 && raw[0] == '{';
}

/* Layout 1: {"version": "<int64>"|null, "weights": {...}}. */
static bool json_edge(const RelationDef *rel, const char *raw, size_t len, EdgeWeights *w,
                      char *version, size_t vcap, bool *has_version)
{
    json_error_t je;
    json_t *root = json_loadb(raw, len, 0, &je);
    json_t *weights = root ? json_object_get(root, "weights") : NULL;
    json_t *v = root ? json_object_get(root, "version") : NULL;
    bool ok = json_is_object(weights);
    *has_version = ok && json_is_string(v) && strlen(json_string_value(v)) < vcap;
    if (*has_version)
        snprintf(version, vcap, "%s", json_string_value(v));
    for (int i = 0; ok && i < rel->nproperties; i++) {
        json_t *x = json_object_get(weights, rel->properties[i].short_name);
        if (!x)
            continue;
        w->set[i] = true;
        if (json_is_boolean(x))
            w->w[i] = json_is_true(x);
        else if (json_is_integer(x))
            w->w[i] = json_integer_value(x);
        else
            ok = false;
    }
    json_decref(root);
    return ok;
}

/* Layout 2: [<version>;]<v1>,<v2>,... by the relation's slots. */
static bool packed_edge(const RelationDef *rel, const EdgeSlots *slots, const char *raw,
                        size_t len, EdgeWeights *w, char *version, size_t vcap, bool *has_version)
{
    if (!slots->known)
        return false;
    const char *semi = memchr(raw, ';', len);
    size_t at = 0;
    if (semi) {
        int64_t v;
        size_t vl = (size_t)(semi - raw);
        if (!decimal_int64(raw, vl, &v) || vl >= vcap)
            return false;
        memcpy(version, raw, vl);
        version[vl] = '\0';
        *has_version = true;
        at = vl + 1;
    }
    for (int pos = 1; at < len; pos++) {
        const char *p = raw + at;
        const char *comma = memchr(p, ',', len - at);
        size_t n = comma ? (size_t)(comma - p) : len - at;
        int64_t v = 0;
        if (n > 0 && !decimal_int64(p, n, &v))
            return false;
        for (int i = 0; n > 0 && i < rel->nproperties; i++) {
            if (slots->slot[i] != pos)
                continue;
            if (rel->properties[i].type == PROP_BOOL && v != 0 && v != 1)
                return false;
            w->set[i] = true;
            w->w[i] = v;
        }
        at += n + 1;
    }
    return true;
}

bool edge_decode(const RelationDef *rel, const EdgeSlots *slots, const char *raw, size_t len,
                 EdgeWeights *w, char *version, size_t vcap, bool *has_version)
{
    memset(w, 0, sizeof *w);
    *has_version = false;
    if (edge_is_layout1(raw, len))
        return json_edge(rel, raw, len, w, version, vcap, has_version);
    return packed_edge(rel, slots, raw, len, w, version, vcap, has_version);
}

int top_cmp(TopOrder order, int64_t va, const char *a, size_t alen, int64_t vb, const char *b,
            size_t blen)
{
    /* ascending: value, then the ids as Redis compares members */
    int c = va < vb ? -1 : va > vb;
    if (c == 0) {
        size_t n = alen < blen ? alen : blen;
        c = n ? memcmp(a, b, n) : 0;
        if (c == 0)
            c = alen < blen ? -1 : alen > blen;
        else
            c = c < 0 ? -1 : 1;
    }
    return order == TOP_DESC ? -c : c;
}

void top_build_init(TopBuild *t, TopOrder order, int limit)
{
    memset(t, 0, sizeof *t);
    t->order = order;
    t->limit = limit < 1 ? 1 : limit > TOP_BUILD_MAX ? TOP_BUILD_MAX : limit;
}

int top_rank(TopOrder order, const TopEntry *e, int n, int limit, const char *id, size_t len,
             int64_t value)
{
    /* where it goes: after every entry before it */
    int at = n;
    while (at > 0) {
        const TopEntry *x = &e[at - 1];
        int c = top_cmp(order, value, id, len, x->value, x->id, x->len);
        if (c == 0)
            return -1; /* offered already */
        if (c > 0)
            break;
        at--;
    }
    return at < limit ? at : -1;
}

int top_put(TopEntry *e, int n, int limit, int at, const char *id, size_t len, int64_t value)
{
    if (n == limit)
        n--;
    memmove(&e[at + 1], &e[at], (size_t)(n - at) * sizeof e[0]);
    e[at] = (TopEntry){id, len, value};
    return n + 1;
}

bool top_offer(TopBuild *t, const char *id, size_t len, int64_t value)
{
    int at = top_rank(t->order, t->e, t->n, t->limit, id, len, value);
    if (at < 0)
        return true; /* offered already, or after the first limit */
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return false;
    if (len)
        memcpy(copy, id, len);
    if (t->n == t->limit)
        free((char *)t->e[t->n - 1].id);
    t->n = top_put(t->e, t->n, t->limit, at, copy, len, value);
    return true;
}

void top_build_free(TopBuild *t)
{
    for (int i = 0; i < t->n; i++)
        free((char *)t->e[i].id);
    t->n = 0;
}
