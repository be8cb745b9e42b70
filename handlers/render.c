/* render.c — relation variables filled in a template (render.h). */
#include "handlers/render.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const Config *cfg;
    RenderStats stats;
    void *ctx;
    JsonBuf *out;
    bool *usage;
    char *err;
    size_t errlen;
} R;

/* The binding of a {for} loop's variables for one entry of a top. */
typedef struct Loop {
    const char *ivar, *item; /* "$i", "$item" */
    size_t ilen, itemlen;
    int index;
    const TopEntry *entry;
    const PropertyDef *p;
    const struct Loop *outer;
} Loop;

static bool bad(R *r, const char *what, size_t n, const char *why)
{
    snprintf(r->err, r->errlen, "{%.*s}: %s", (int)(n > 200 ? 200 : n), what, why);
    *r->usage = true;
    return false;
}

/* The word at p (up to a space or end), its length in *len; returns where
 * the next one starts (the spaces after it skipped). */
static const char *word(const char *p, const char *end, size_t *len)
{
    const char *w = p;
    while (p < end && *p != ' ')
        p++;
    *len = (size_t)(p - w);
    while (p < end && *p == ' ')
        p++;
    return p;
}

/* relation.<short>.<side>[.<p>].<what> (s: after "relation."). */
typedef struct {
    const RelationDef *rel;
    Side side;
    const PropertyDef *p; /* NULL: the relation's count */
    int pi;
    char what[8];
} Ref;

static bool parse_ref(R *r, const char *tag, size_t tlen, const char *s, size_t n, Ref *ref)
{
    const char *part[5];
    size_t len[5];
    int k = 0;
    const char *p = s, *end = s + n;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (k == 5) {
            k = 6; /* too many */
            break;
        }
        part[k] = p;
        len[k] = (size_t)((dot ? dot : end) - p);
        k++;
        if (!dot)
            break;
        p = dot + 1;
    }
    if (k != 3 && k != 4)
        return bad(r, tag, tlen, "not relation.<relation>.<side>[.<property>].<count|total|top>");
    char name[CONFIG_SHORT_MAX + 1];
    snprintf(name, sizeof name, "%.*s", (int)(len[0] < CONFIG_SHORT_MAX ? len[0] : CONFIG_SHORT_MAX),
             part[0]);
    ref->rel = len[0] <= CONFIG_SHORT_MAX ? config_relation(r->cfg, name) : NULL;
    if (!ref->rel) {
        /* as relationctl's other commands say it: with the relations there are */
        char why[CONFIG_ERR_MAX];
        size_t w = (size_t)snprintf(why, sizeof why, "unknown relation \"%s\" (the configuration has:",
                                    name);
        for (int i = 0; i < r->cfg->nrelations && w < sizeof why; i++)
            w += (size_t)snprintf(why + w, sizeof why - w, "%s %s", i ? "," : "",
                                  r->cfg->relations[i].short_name);
        if (w < sizeof why)
            snprintf(why + w, sizeof why - w, ")");
        return bad(r, tag, tlen, why);
    }
    if (len[1] == 6 && memcmp(part[1], "direct", 6) == 0)
        ref->side = SIDE_DIRECT;
    else if (len[1] == 7 && memcmp(part[1], "reverse", 7) == 0)
        ref->side = SIDE_REVERSE;
    else
        return bad(r, tag, tlen, "the side must be direct or reverse");
    ref->p = NULL;
    ref->pi = -1;
    const char *what = part[k - 1];
    size_t wl = len[k - 1];
    if (k == 4) {
        for (int i = 0; i < ref->rel->nproperties; i++)
            if (strlen(ref->rel->properties[i].short_name) == len[2] &&
                memcmp(ref->rel->properties[i].short_name, part[2], len[2]) == 0) {
                ref->p = &ref->rel->properties[i];
                ref->pi = i;
            }
        if (!ref->p) {
            char why[160];
            snprintf(why, sizeof why, "unknown property \"%.*s\" of relation %s",
                     (int)(len[2] > 64 ? 64 : len[2]), part[2], ref->rel->short_name);
            return bad(r, tag, tlen, why);
        }
    }
    if (wl >= sizeof ref->what ||
        !((wl == 5 && memcmp(what, "count", 5) == 0) ||
          (k == 4 && wl == 5 && memcmp(what, "total", 5) == 0) ||
          (k == 4 && wl == 3 && memcmp(what, "top", 3) == 0)))
        return bad(r, tag, tlen, k == 4 ? "a property gives count, total or top"
                                        : "a relation gives count");
    memcpy(ref->what, what, wl);
    ref->what[wl] = '\0';
    if (strcmp(ref->what, "total") == 0 && !ref->p->save_amount)
        return bad(r, tag, tlen, "a total needs save_amount on the property");
    if (strcmp(ref->what, "top") == 0 && ref->p->top_order == TOP_NONE)
        return bad(r, tag, tlen, "a top needs save_top on the property");
    return true;
}

static const SideStats *stats_of(R *r, const Ref *ref)
{
    const SideStats *st = r->stats(r->ctx, ref->rel, ref->side, r->err, r->errlen);
    if (!st)
        *r->usage = false;
    return st;
}

/* The text of a {for} loop's body: from after its tag to its {else} (or
 * {end}), and its {else} part; *next after its {end}. Tags {for ...} and
 * {if ...} open levels of their own, closed by {end}. */
static bool loop_parts(const char *body, const char *end, const char **else_at,
                       const char **end_at, const char **next)
{
    int depth = 0;
    *else_at = NULL;
    for (const char *p = body; p < end; p++) {
        if (*p != '{')
            continue;
        size_t left = (size_t)(end - p);
        if ((left >= 5 && memcmp(p, "{for ", 5) == 0) || (left >= 4 && memcmp(p, "{if ", 4) == 0)) {
            depth++;
        } else if (left >= 5 && memcmp(p, "{end}", 5) == 0) {
            if (depth == 0) {
                *end_at = p;
                *next = p + 5;
                return true;
            }
            depth--;
        } else if (depth == 0 && left >= 6 && memcmp(p, "{else}", 6) == 0 && !*else_at) {
            *else_at = p;
        }
    }
    return false;
}

static bool render(R *r, const char *s, const char *end, const Loop *loop);

/* {for $i $item = relation....top} at tag (content c, n bytes). */
static bool render_loop(R *r, const char *c, size_t n, const char *after, const char *end,
                        const char **next, const Loop *outer)
{
    /* for $i $item = relation.x.y.p.top */
    const char *p = c + 4, *cend = c + n;
    const char *iv = p, *item;
    size_t il, itl;
    p = word(p, cend, &il);
    item = p;
    p = word(p, cend, &itl);
    if (il < 2 || iv[0] != '$' || itl < 2 || item[0] != '$' || p >= cend || *p != '=')
        return bad(r, c, n, "a loop reads {for $i $item = relation.<relation>.<side>.<property>.top}");
    p++;
    while (p < cend && *p == ' ')
        p++;
    if ((size_t)(cend - p) < 9 || memcmp(p, "relation.", 9) != 0)
        return bad(r, c, n, "a loop reads {for $i $item = relation.<relation>.<side>.<property>.top}");
    Ref ref;
    if (!parse_ref(r, c, n, p + 9, (size_t)(cend - p - 9), &ref))
        return false;
    if (strcmp(ref.what, "top") != 0)
        return bad(r, c, n, "a loop goes over a top");
    const char *else_at, *end_at;
    if (!loop_parts(after, end, &else_at, &end_at, next))
        return bad(r, c, n, "a loop without {end}");
    const SideStats *st = stats_of(r, &ref);
    if (!st)
        return false;
    int count = st->ntop[ref.pi];
    const char *body_end = else_at ? else_at : end_at;
    if (count == 0)
        return !else_at || render(r, else_at + 6, end_at, outer);
    for (int k = 0; k < count; k++) {
        Loop l = {iv, item, il, itl, k, &st->top[ref.pi][k], ref.p, outer};
        if (!render(r, after, body_end, &l))
            return false;
    }
    return true;
}

/* A loop variable: {$i}, {$item.profile_id}, {$item.value}. */
static bool loop_var(R *r, const char *c, size_t n, const Loop *loop)
{
    for (const Loop *l = loop; l; l = l->outer) {
        if (n == l->ilen && memcmp(c, l->ivar, n) == 0) {
            jsonbuf_int(r->out, l->index);
            return true;
        }
        if (n > l->itemlen + 1 && memcmp(c, l->item, l->itemlen) == 0 && c[l->itemlen] == '.') {
            const char *f = c + l->itemlen + 1;
            size_t fl = n - l->itemlen - 1;
            if (fl == 10 && memcmp(f, "profile_id", 10) == 0) {
                jsonbuf_put(r->out, l->entry->id, l->entry->len);
                return true;
            }
            if (fl == 5 && memcmp(f, "value", 5) == 0) {
                trigger_number(r->out, l->p, l->entry->value);
                return true;
            }
        }
    }
    return false;
}

static bool render(R *r, const char *s, const char *end, const Loop *loop)
{
    const char *p = s;
    while (p < end) {
        const char *open = memchr(p, '{', (size_t)(end - p));
        if (!open) {
            jsonbuf_put(r->out, p, (size_t)(end - p));
            return true;
        }
        jsonbuf_put(r->out, p, (size_t)(open - p));
        const char *close = memchr(open + 1, '}', (size_t)(end - open - 1));
        if (!close) {
            jsonbuf_put(r->out, open, (size_t)(end - open));
            return true;
        }
        const char *c = open + 1;
        size_t n = (size_t)(close - c);
        p = close + 1;
        if (n > 9 && memcmp(c, "relation.", 9) == 0) {
            Ref ref;
            if (!parse_ref(r, c, n, c + 9, n - 9, &ref))
                return false;
            if (strcmp(ref.what, "top") == 0)
                return bad(r, c, n, "a top is read in a {for $i $item = ...} loop");
            const SideStats *st = stats_of(r, &ref);
            if (!st)
                return false;
            if (!ref.p)
                jsonbuf_int(r->out, st->count);
            else if (strcmp(ref.what, "count") == 0)
                jsonbuf_int(r->out, st->pcount[ref.pi]);
            else
                trigger_number(r->out, ref.p, st->ptotal[ref.pi]);
            continue;
        }
        if (n > 4 && memcmp(c, "for ", 4) == 0 && memmem(c, n, "= relation.", 11)) {
            if (!render_loop(r, c, n, p, end, &p, loop))
                return false;
            continue;
        }
        if (loop && loop_var(r, c, n, loop))
            continue;
        jsonbuf_put(r->out, open, n + 2); /* not ours: as it is */
    }
    return true;
}

bool render_template(const Config *cfg, const char *text, size_t len, RenderStats stats,
                     void *ctx, JsonBuf *out, bool *usage, char *err, size_t errlen)
{
    R r = {cfg, stats, ctx, out, usage, err, errlen};
    *usage = false;
    if (!render(&r, text, text + len, NULL))
        return false;
    if (out->oom) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    return true;
}
