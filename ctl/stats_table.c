/* stats_table.c — the statistics as a table (stats_table.h). */
#include "ctl/stats_table.h"

#include "lib/jsonbuf.h"

#include <string.h>

/* An id or name with control characters (a terminal's escapes) as '?'. */
static void text(FILE *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fputc((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i], out);
}

/* v as the triggers print it, NUL-terminated (out: at least 32 bytes). */
static size_t number(const PropertyDef *p, int64_t v, char *out)
{
    size_t n = p->type == PROP_FLOAT ? format_fixed(v, out) : format_int(v, out);
    out[n] = '\0';
    return n;
}

void stats_table(FILE *out, const RelationDef *rel, Side side, const char *profile,
                 const SideStats *st)
{
    bool direct = side == SIDE_DIRECT;
    int wname = (int)strlen("property"), wtotal = (int)strlen("total");
    bool any_total = false;
    char num[32];

    text(out, rel->short_name, strlen(rel->short_name));
    fprintf(out, ", %s side of ", direct ? "direct" : "reverse");
    text(out, profile, strlen(profile));
    fprintf(out, " (%s -> %s): %lld edge%s\n", direct ? rel->database_a : rel->database_b,
            direct ? rel->database_b : rel->database_a, (long long)st->count,
            st->count == 1 ? "" : "s");
    for (int i = 0; i < rel->nproperties; i++) {
        const PropertyDef *p = &rel->properties[i];
        int n = (int)strlen(p->short_name);
        wname = n > wname ? n : wname;
        if (p->save_amount) {
            any_total = true;
            n = (int)number(p, st->ptotal[i], num);
            wtotal = n > wtotal ? n : wtotal;
        }
    }
    if (rel->nproperties > 0) {
        fprintf(out, "\n%-*s  %14s", wname, "property", "edges with it");
        if (any_total)
            fprintf(out, "  %*s", wtotal, "total");
        fputc('\n', out);
    }
    for (int i = 0; i < rel->nproperties; i++) {
        const PropertyDef *p = &rel->properties[i];
        fprintf(out, "%-*s  %14lld", wname, p->short_name, (long long)st->pcount[i]);
        if (p->save_amount) {
            number(p, st->ptotal[i], num);
            fprintf(out, "  %*s", wtotal, num);
        } else if (any_total) {
            fprintf(out, "  %*s", wtotal, "-");
        }
        fputc('\n', out);
    }
    for (int i = 0; i < rel->nproperties; i++) {
        const PropertyDef *p = &rel->properties[i];
        if (p->top_order == TOP_NONE)
            continue;
        fprintf(out, "\ntop %s (%s first, at most %d)%s\n", p->short_name,
                p->top_order == TOP_DESC ? "highest" : "lowest", p->top_limit,
                st->ntop[i] ? "" : ": none yet");
        size_t wid = 0;
        for (int k = 0; k < st->ntop[i]; k++)
            wid = st->top[i][k].len > wid ? st->top[i][k].len : wid;
        for (int k = 0; k < st->ntop[i]; k++) {
            const TopEntry *t = &st->top[i][k];
            fprintf(out, "%4d. ", k + 1);
            text(out, t->id, t->len);
            number(p, t->value, num);
            fprintf(out, "%*s  %s\n", (int)(wid - t->len), "", num);
        }
    }
}
