/* reload.c — what a reload (SIGHUP) may change: the connection settings
 * (redis, kafka, amqp, hooks, http but its token; the rows of config.c's
 * table marked not reloadable) are kept from the running configuration and
 * the sections that differed are named, for the daemon to warn: the rows
 * that have a place in a struct are compared and copied by the table, the
 * rest (arrays, maps, tls, presence) by the code of their section. Works on
 * the fresh configuration only (the running one is read, never written);
 * out of memory leaves fresh fit only for config_free. The properties'
 * history across reloads is config/history.c. */
#include "config/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool strings_same(char **a, char **b, int n)
{
    for (int i = 0; i < n; i++)
        if (!str_same(a[i], b[i]))
            return false;
    return true;
}

static void note_change(char *changed, size_t len, const char *what)
{
    size_t used = strlen(changed);
    snprintf(changed + used, len - used, "%s%s", used ? ", " : "", what);
}

bool dup_strings(char ***dst, int *ndst, char *const *src, int n)
{
    free_strings(*dst, *ndst);
    *dst = NULL;
    *ndst = 0;
    if (n == 0)
        return true;
    *dst = calloc((size_t)n, sizeof **dst);
    if (!*dst)
        return false;
    *ndst = n;
    for (int i = 0; i < n; i++)
        if (!dup_str(&(*dst)[i], src[i]))
            return false;
    return true;
}

bool dup_pairs(char ***keys, char ***values, int *n, char *const *src_keys,
               char *const *src_values, int nsrc)
{
    int nk = 0, nv = 0;
    free_strings(*keys, *n);
    free_strings(*values, *n);
    *keys = *values = NULL;
    *n = 0;
    if (!dup_strings(keys, &nk, src_keys, nsrc) || !dup_strings(values, &nv, src_values, nsrc)) {
        free_strings(*keys, nk);
        free_strings(*values, nv);
        *keys = *values = NULL;
        return false;
    }
    *n = nsrc;
    return true;
}

/* ---- the table's rows that a reload does not change ---- */

/* The struct in cfg that holds a section's rows; NULL: none of its rows is
 * kept here (engine, relations: reloadable; tls: config_tls_same; hooks:
 * compared and copied whole, hooks.c). */
static void *section_base(const Config *cfg, const char *section)
{
    if (strcmp(section, "kafka") == 0)
        return (void *)&cfg->kafka;
    if (strcmp(section, "amqp") == 0)
        return (void *)&cfg->amqp;
    if (strcmp(section, "redis") == 0 || strcmp(section, "http") == 0)
        return (void *)cfg;
    return NULL;
}

/* The rows of section that are not reloadable and have a place: the same
 * in a and b. */
static bool rows_same(const Config *a, const Config *b, const char *section)
{
    const char *x = section_base(a, section), *y = section_base(b, section);
    for (size_t i = 0; x && i < config_nkeys; i++) {
        const ConfigKey *k = &config_keys[i];
        if (k->reloadable || !k->size || strcmp(k->section, section) != 0)
            continue;
        if (k->type == CFG_STRING || k->type == CFG_SHORT
                ? !str_same(*(char *const *)(x + k->offset), *(char *const *)(y + k->offset))
                : memcmp(x + k->offset, y + k->offset, k->size) != 0)
            return false;
    }
    return true;
}

/* The rows of section that are not reloadable: running's values into
 * fresh. False when out of memory. */
static bool rows_keep(Config *fresh, const Config *running, const char *section)
{
    char *x = section_base(fresh, section);
    const char *y = section_base(running, section);
    for (size_t i = 0; x && i < config_nkeys; i++) {
        const ConfigKey *k = &config_keys[i];
        if (k->reloadable || !k->size || strcmp(k->section, section) != 0)
            continue;
        if (k->type == CFG_STRING || k->type == CFG_SHORT) {
            if (!dup_str((char **)(x + k->offset), *(char *const *)(y + k->offset)))
                return false;
        } else {
            memcpy(x + k->offset, y + k->offset, k->size);
        }
    }
    return true;
}

/* What the table cannot say of each connection section: the same in a
 * and b. */
static bool redis_same(const Config *a, const Config *b)
{
    return a->nseeds == b->nseeds && a->nsentinels == b->nsentinels &&
           memcmp(a->seeds, b->seeds, sizeof a->seeds) == 0 &&
           memcmp(a->sentinels, b->sentinels, sizeof a->sentinels) == 0 &&
           strcmp(a->master_name, b->master_name) == 0;
}

static bool kafka_same(const Config *a, const Config *b)
{
    const KafkaConfig *x = &a->kafka, *y = &b->kafka;
    return a->has_kafka == b->has_kafka && x->ntopics == y->ntopics &&
           strings_same(x->topics, y->topics, x->ntopics) &&
           x->nproperties == y->nproperties &&
           strings_same(x->property_keys, y->property_keys, x->nproperties) &&
           strings_same(x->property_values, y->property_values, x->nproperties);
}

static bool amqp_same(const Config *a, const Config *b)
{
    const AmqpConfig *x = &a->amqp, *y = &b->amqp;
    return a->has_amqp == b->has_amqp &&
           /* a default prefetch follows engine.batch_size: not a change of amqp */
           (x->prefetch == y->prefetch || (x->prefetch_default && y->prefetch_default)) &&
           config_tls_same(&x->tls, &y->tls) &&
           (x->queue_arguments == y->queue_arguments ||
            (x->queue_arguments && y->queue_arguments &&
             json_equal(x->queue_arguments, y->queue_arguments)));
}

static bool hooks_unchanged(const Config *a, const Config *b)
{
    return hooks_same(a->hooks, a->nhooks, b->hooks, b->nhooks);
}

static bool http_same(const Config *a, const Config *b)
{
    return a->has_http == b->has_http;
}

bool config_keep_connections(Config *fresh, const Config *running, char *changed, size_t len)
{
    static const struct {
        const char *section;
        bool (*same)(const Config *, const Config *);
    } sections[] = {{"redis", redis_same}, {"kafka", kafka_same}, {"amqp", amqp_same},
                    {"hooks", hooks_unchanged}, {"http", http_same}};
    changed[0] = '\0';
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        if (!rows_same(fresh, running, sections[i].section) || !sections[i].same(fresh, running))
            note_change(changed, len, sections[i].section);
        if (!rows_keep(fresh, running, sections[i].section))
            return false;
    }

    const KafkaConfig *rk = &running->kafka;
    KafkaConfig *fk = &fresh->kafka;
    fresh->redis = running->redis;
    memcpy(fresh->seeds, running->seeds, sizeof fresh->seeds);
    fresh->nseeds = running->nseeds;
    memcpy(fresh->sentinels, running->sentinels, sizeof fresh->sentinels);
    fresh->nsentinels = running->nsentinels;
    memcpy(fresh->master_name, running->master_name, sizeof fresh->master_name);
    fresh->has_kafka = running->has_kafka;
    fresh->has_amqp = running->has_amqp;
    fresh->amqp.prefetch = running->amqp.prefetch;
    fresh->amqp.prefetch_default = running->amqp.prefetch_default;
    config_tls_free(&fresh->amqp.tls);
    if (!config_tls_copy(&fresh->amqp.tls, &running->amqp.tls))
        return false;
    hooks_free(fresh);
    fresh->hooks = hooks_copy(running->hooks, running->nhooks);
    if (running->nhooks && !fresh->hooks)
        return false;
    fresh->nhooks = running->nhooks;
    if (!hooks_fill_published(fresh))
        return false;
    json_decref(fresh->amqp.queue_arguments);
    fresh->amqp.queue_arguments =
        running->amqp.queue_arguments ? json_deep_copy(running->amqp.queue_arguments) : NULL;
    if (running->amqp.queue_arguments && !fresh->amqp.queue_arguments)
        return false;
    fresh->has_http = running->has_http;
    return dup_strings(&fk->topics, &fk->ntopics, rk->topics, rk->ntopics) &&
           dup_pairs(&fk->property_keys, &fk->property_values, &fk->nproperties,
                     rk->property_keys, rk->property_values, rk->nproperties);
}
