/* history.c — the properties relations have had (history.h). */
#include "config/history.h"
#include "lib/grow.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *relation, *property;
    PropType type;
    bool amount, top;
    bool present;
} Known;

struct PropertyHistory {
    Known *known;
    size_t n, cap;
};

static Known *find(PropertyHistory *h, const char *relation, const char *property)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->known[i].relation, relation) == 0 &&
            strcmp(h->known[i].property, property) == 0)
            return &h->known[i];
    return NULL;
}

/* Room for every property of cfg not known yet. */
static bool reserve(PropertyHistory *h, const Config *cfg)
{
    size_t need = h->n;
    for (int r = 0; r < cfg->nrelations; r++)
        need += (size_t)cfg->relations[r].nproperties;
    return GROW_RESERVE(h->known, h->cap, need, 0);
}

static void record(Known *k, const PropertyDef *p)
{
    k->type = p->type;
    k->amount = p->save_amount;
    k->top = p->top_order != TOP_NONE;
    k->present = true;
}

/* The properties of cfg into h (new ones added), and those of its relations
 * it lacks marked removed. False when out of memory. */
static bool take(PropertyHistory *h, const Config *cfg)
{
    if (!reserve(h, cfg))
        return false;
    for (int r = 0; r < cfg->nrelations; r++) {
        const RelationDef *rel = &cfg->relations[r];
        for (size_t i = 0; i < h->n; i++)
            if (strcmp(h->known[i].relation, rel->short_name) == 0)
                h->known[i].present = false;
        for (int i = 0; i < rel->nproperties; i++) {
            const PropertyDef *p = &rel->properties[i];
            Known *k = find(h, rel->short_name, p->short_name);
            if (!k) {
                char *relation = strdup(rel->short_name), *property = strdup(p->short_name);
                if (!relation || !property) {
                    free(relation);
                    free(property);
                    return false;
                }
                k = &h->known[h->n++];
                k->relation = relation;
                k->property = property;
            }
            record(k, p);
        }
    }
    return true;
}

PropertyHistory *history_new(const Config *cfg)
{
    PropertyHistory *h = calloc(1, sizeof *h);
    if (h && !take(h, cfg)) {
        history_free(h);
        return NULL;
    }
    return h;
}

bool history_reload(PropertyHistory *h, const Config *fresh,
                    void (*said)(const char *relation, const char *property, const char *what,
                                 void *ctx),
                    void *ctx)
{
    if (!reserve(h, fresh))
        return false;
    for (int r = 0; r < fresh->nrelations; r++) {
        const RelationDef *rel = &fresh->relations[r];
        for (int i = 0; i < rel->nproperties; i++) {
            const PropertyDef *p = &rel->properties[i];
            const Known *k = find(h, rel->short_name, p->short_name);
            const char *what = !k          ? NULL
                               : !k->present ? "removed by an earlier reload and now back"
                               : k->type != p->type ? "its type changed"
                               : p->save_amount && !k->amount ? "save_amount turned on"
                               : p->top_order != TOP_NONE && !k->top ? "save_top turned on"
                                                                     : NULL;
            if (what)
                said(rel->short_name, p->short_name, what, ctx);
        }
    }
    return take(h, fresh);
}

void history_free(PropertyHistory *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->known[i].relation);
        free(h->known[i].property);
    }
    free(h->known);
    free(h);
}
