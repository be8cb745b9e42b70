/* hooks.c — the `hooks` section: the single object (today's form: the hook
 * "default", a RabbitMQ topic exchange) or a list of named hooks of kind
 * amqp, kafka or http, each with a filter; read by the table's rows
 * ("hooks", "hook", "filter", "tls") and checked here: the keys of another
 * kind, exactly one of exchange and queue, the URLs, a success_regex that
 * POSIX regcomp takes, a secret that is `whsec_` and base64 of 24..64
 * bytes, header names and values, the relations a filter names. Every
 * error names the JSON path (`hooks[2].secret: ...`), never a secret's
 * value. Also the hook the daemon publishes every trigger to (copies in
 * Config.hooks_url ...), the filter (hook_filter_pass), the secret's key,
 * a hook's one-line description, and the copy and comparison a reload
 * uses. HookDefs are plain data owned by their Config; every function is
 * pure or works on its arguments only (any thread, no state). */
#include "config/internal.h"
#include "lib/base64.h"

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOOK_AMQP_BIT (1u << HOOK_AMQP)
#define HOOK_KAFKA_BIT (1u << HOOK_KAFKA)
#define HOOK_HTTP_BIT (1u << HOOK_HTTP)

/* The keys of a hook that belong to some kinds only. */
static const struct {
    const char *key;
    unsigned kinds;
    const char *which;
} kind_keys[] = {
    {"url", HOOK_AMQP_BIT | HOOK_HTTP_BIT, "kinds amqp and http"},
    {"tls", HOOK_AMQP_BIT | HOOK_HTTP_BIT, "kinds amqp and http"},
    {"exchange", HOOK_AMQP_BIT, "kind amqp"},
    {"queue", HOOK_AMQP_BIT, "kind amqp"},
    {"exchange_type", HOOK_AMQP_BIT, "kind amqp"},
    {"declare", HOOK_AMQP_BIT, "kind amqp"},
    {"brokers", HOOK_KAFKA_BIT, "kind kafka"},
    {"topic", HOOK_KAFKA_BIT, "kind kafka"},
    {"properties", HOOK_KAFKA_BIT, "kind kafka"},
    {"batch_size", HOOK_HTTP_BIT, "kind http"},
    {"batch_ms", HOOK_HTTP_BIT, "kind http"},
    {"timeout_ms", HOOK_HTTP_BIT, "kind http"},
    {"success_regex", HOOK_HTTP_BIT, "kind http"},
    {"secret", HOOK_HTTP_BIT, "kind http"},
    {"headers", HOOK_HTTP_BIT, "kind http"},
};

/* Headers relationd sets itself (compared ignoring case). */
static const char *const own_headers[] = {
    "content-type", "content-length", "transfer-encoding", "host", "connection",
    "webhook-id",   "webhook-timestamp", "webhook-signature",
};

static const char *const kind_names[] = {"", "attach", "change", "detach", "threshold"};
static const char *const side_names[] = {"direct", "reverse"};

/* ---- the filter ---- */

bool hook_filter_pass(const HookDef *h, const char *relation, Side side, int kind)
{
    const HookFilter *f = &h->filter;
    if (kind < HOOK_ON_ATTACH || kind > HOOK_ON_THRESHOLD || (side != SIDE_DIRECT && side != SIDE_REVERSE))
        return false;
    if (f->kinds && !(f->kinds & (1u << kind)))
        return false;
    if (f->directions && !(f->directions & (1u << side)))
        return false;
    if (!f->relations)
        return true;
    for (int i = 0; i < f->nrelations; i++)
        if (strcmp(f->relations[i], relation) == 0)
            return true;
    return false;
}

/* PATH.KEY of filter o: a non-empty array of names, each one of
 * names[lo..n); *bits gets 1 << the index of each. */
static bool load_names(Ctx *c, const json_t *o, const char *path, const char *key,
                       const char *const *names, int lo, int n, const char *expected,
                       unsigned *bits)
{
    char sub[PATH_MAX_LEN], item[PATH_MAX_LEN];
    json_t *a = json_object_get(o, key), *v;
    size_t i;
    join(sub, sizeof sub, path, key);
    if (!a)
        return true;
    if (!json_is_array(a) || json_array_size(a) == 0)
        return fail(c, sub, "must be a non-empty array (leave it out for all)");
    json_array_foreach(a, i, v) {
        join_index(item, sizeof item, sub, i);
        int k = lo;
        while (k < n && !(json_is_string(v) && strcmp(json_string_value(v), names[k]) == 0))
            k++;
        if (k == n)
            return fail(c, item, "must be %s", expected);
        *bits |= 1u << k;
    }
    return true;
}

static bool load_filter(Ctx *c, const json_t *o, const char *path, const Config *cfg, HookDef *h)
{
    char fpath[PATH_MAX_LEN], sub[PATH_MAX_LEN], item[PATH_MAX_LEN];
    json_t *f, *rels, *v;
    size_t i;
    if (!get_object(c, o, path, "filter", false, &f))
        return false;
    if (!f)
        return true;
    join(fpath, sizeof fpath, path, "filter");
    if (!load_rows(c, f, fpath, "filter", h) ||
        !load_names(c, f, fpath, "kinds", kind_names, HOOK_ON_ATTACH, HOOK_ON_THRESHOLD + 1,
                    "attach, change, detach or threshold", &h->filter.kinds) ||
        !load_names(c, f, fpath, "directions", side_names, 0, 2, "direct or reverse",
                    &h->filter.directions))
        return false;
    rels = json_object_get(f, "relations");
    join(sub, sizeof sub, fpath, "relations");
    if (!rels)
        return true;
    if (!json_is_array(rels) || json_array_size(rels) == 0)
        return fail(c, sub, "must be a non-empty array (leave it out for all)");
    h->filter.relations = calloc(json_array_size(rels), sizeof *h->filter.relations);
    if (!h->filter.relations)
        return fail(c, sub, "out of memory");
    json_array_foreach(rels, i, v) {
        join_index(item, sizeof item, sub, i);
        if (!json_is_string(v))
            return fail(c, item, "must be a relation's short name");
        if (!config_relation(cfg, json_string_value(v)))
            return fail(c, item, "no relation \"%s\"", json_string_value(v));
        if (!(h->filter.relations[i] = strdup(json_string_value(v))))
            return fail(c, item, "out of memory");
        h->filter.nrelations = (int)i + 1;
    }
    return true;
}

/* ---- http ---- */

bool config_hook_key(const HookDef *h, unsigned char key[HOOK_SECRET_MAX], size_t *len)
{
    const char *s = h->secret;
    *len = 0;
    if (!s || strncmp(s, "whsec_", 6) != 0)
        return false;
    return base64_decode(s + 6, strlen(s + 6), key, HOOK_SECRET_MAX, len) &&
           *len >= HOOK_SECRET_MIN;
}

/* An RFC 9110 token: a header's name. */
static bool header_name(const char *s)
{
    if (!*s || strlen(s) > 128)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

static bool load_headers(Ctx *c, const json_t *o, const char *path, HookDef *h)
{
    char where[PATH_MAX_LEN], sub[PATH_MAX_LEN];
    json_t *hs, *v;
    const char *name;
    if (!get_object(c, o, path, "headers", false, &hs))
        return false;
    if (!hs || json_object_size(hs) == 0)
        return true;
    join(where, sizeof where, path, "headers");
    h->header_names = calloc(json_object_size(hs), sizeof *h->header_names);
    h->header_values = calloc(json_object_size(hs), sizeof *h->header_values);
    if (!h->header_names || !h->header_values)
        return fail(c, where, "out of memory");
    json_object_foreach(hs, name, v) {
        join(sub, sizeof sub, where, name);
        if (!header_name(name))
            return fail(c, sub, "not a header name (1..128 letters, digits or !#$%%&'*+-.^_`|~)");
        for (size_t k = 0; k < sizeof own_headers / sizeof own_headers[0]; k++)
            if (strcasecmp(name, own_headers[k]) == 0)
                return fail(c, sub, "set by relationd");
        if (!json_is_string(v))
            return fail(c, sub, "must be a string");
        /* not shown: it may hold a secret */
        if (strpbrk(json_string_value(v), "\r\n"))
            return fail(c, sub, "must not hold a line break");
        h->header_names[h->nheaders] = strdup(name);
        h->header_values[h->nheaders] = strdup(json_string_value(v));
        h->nheaders++;
        if (!h->header_names[h->nheaders - 1] || !h->header_values[h->nheaders - 1])
            return fail(c, sub, "out of memory");
    }
    return true;
}

/* http[s]://host... */
static bool http_url(const char *url)
{
    const char *host = strncmp(url, "http://", 7) == 0    ? url + 7
                       : strncmp(url, "https://", 8) == 0 ? url + 8
                                                          : NULL;
    return host && *host && *host != '/' && !strpbrk(url, " \t\r\n");
}

static bool load_http_hook(Ctx *c, const json_t *o, const char *path, HookDef *h)
{
    char sub[PATH_MAX_LEN];
    join(sub, sizeof sub, path, "url");
    if (!h->url)
        return fail(c, sub, "required for kind http");
    if (!http_url(h->url))
        return fail(c, sub, "must be http[s]://host[:port][/path]");
    if (!load_tls(c, o, path, h->url, "https://", &h->tls) || !load_headers(c, o, path, h))
        return false;
    if (h->success_regex) {
        regex_t re;
        int rc = regcomp(&re, h->success_regex, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            regerror(rc, &re, why, sizeof why);
            join(sub, sizeof sub, path, "success_regex");
            return fail(c, sub, "not a POSIX extended regular expression: %s", why);
        }
        regfree(&re);
    }
    unsigned char key[HOOK_SECRET_MAX];
    size_t len;
    join(sub, sizeof sub, path, "secret");
    if (h->secret && !config_hook_key(h, key, &len))
        return fail(c, sub, "must be whsec_ and the base64 of %d..%d bytes", HOOK_SECRET_MIN,
                    HOOK_SECRET_MAX);
    return true;
}

/* ---- one hook ---- */

static bool not_empty(Ctx *c, const char *path, const char *key, const char *value)
{
    char sub[PATH_MAX_LEN];
    join(sub, sizeof sub, path, key);
    if (!value)
        return fail(c, sub, "required for kind %s", strcmp(key, "url") == 0 ? "amqp" : "kafka");
    if (!*value)
        return fail(c, sub, "must not be empty");
    return true;
}

/* AMQP's short strings (exchange, queue and routing key): at most 255 bytes. */
#define AMQP_SHORTSTR_MAX 255
/* A direct exchange's routing key <database>.relation_<direction>_<kind>:
 * within AMQP_SHORTSTR_MAX for every relation, side and kind the filter
 * passes (the topic key relation.<short>.<direction>.<kind> always is,
 * short names being at most CONFIG_SHORT_MAX bytes). */
static bool direct_keys_fit(Ctx *c, const char *path, const Config *cfg, const HookDef *h)
{
    char sub[PATH_MAX_LEN];
    for (int i = 0; i < cfg->nrelations; i++) {
        const RelationDef *rel = &cfg->relations[i];
        for (int side = SIDE_DIRECT; side <= SIDE_REVERSE; side++)
            for (int kind = HOOK_ON_ATTACH; kind <= HOOK_ON_THRESHOLD; kind++) {
                if (!hook_filter_pass(h, rel->short_name, (Side)side, kind))
                    continue;
                const char *db = side == SIDE_DIRECT ? rel->database_a : rel->database_b;
                size_t n = strlen(db) + strlen(".relation__") + strlen(side_names[side]) +
                           strlen(kind_names[kind]);
                if (n <= AMQP_SHORTSTR_MAX)
                    continue;
                snprintf(sub, sizeof sub, "relations[%d].%s", i,
                         side == SIDE_DIRECT ? "database_a" : "database_b");
                return fail(c, sub, "%zu bytes: the routing key %s.relation_%s_%s of %s (a "
                            "direct exchange) would be %zu bytes, more than AMQP's %d",
                            strlen(db), "<database>", side_names[side], kind_names[kind], path,
                            n, AMQP_SHORTSTR_MAX);
            }
    }
    return true;
}

static bool load_amqp_hook(Ctx *c, const json_t *o, const char *path, HookDef *h)
{
    char sub[PATH_MAX_LEN];
    if (!not_empty(c, path, "url", h->url))
        return false;
    join(sub, sizeof sub, path, "url");
    if (!check_amqp_url(c, sub, h->url) || !load_tls(c, o, path, h->url, "amqps://", &h->tls))
        return false;
    if (!h->exchange == !h->queue)
        return fail(c, path, "exactly one of exchange and queue");
    join(sub, sizeof sub, path, h->exchange ? "exchange" : "queue");
    if (!*(h->exchange ? h->exchange : h->queue))
        return fail(c, sub, "must not be empty");
    if (strlen(h->exchange ? h->exchange : h->queue) > AMQP_SHORTSTR_MAX)
        return fail(c, sub, "%zu bytes, more than AMQP's %d", strlen(h->exchange ? h->exchange
                                                                              : h->queue),
                    AMQP_SHORTSTR_MAX);
    join(sub, sizeof sub, path, "exchange_type");
    if (h->queue && json_object_get(o, "exchange_type"))
        return fail(c, sub, "only with exchange");
    return true;
}

bool hook_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > HOOK_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

/* hooks[i] at path. */
static bool load_hook(Ctx *c, const json_t *o, const char *path, const Config *cfg, HookDef *h)
{
    char sub[PATH_MAX_LEN];
    if (!json_is_object(o))
        return fail(c, path, "must be an object");
    if (!load_rows(c, o, path, "hook", h))
        return false;
    if (!hook_name_valid(h->name)) {
        join(sub, sizeof sub, path, "name");
        return fail(c, sub, "must be 1..%d of a-z, 0-9, _ and -", HOOK_NAME_MAX);
    }
    for (size_t k = 0; k < sizeof kind_keys / sizeof kind_keys[0]; k++)
        if (!(kind_keys[k].kinds & (1u << h->kind)) && json_object_get(o, kind_keys[k].key)) {
            join(sub, sizeof sub, path, kind_keys[k].key);
            return fail(c, sub, "only for %s", kind_keys[k].which);
        }
    bool ok;
    switch (h->kind) {
    case HOOK_AMQP:
        ok = load_amqp_hook(c, o, path, h);
        break;
    case HOOK_KAFKA:
        ok = not_empty(c, path, "brokers", h->brokers) && not_empty(c, path, "topic", h->topic) &&
             load_kafka_properties(c, o, path, true, &h->property_keys, &h->property_values,
                                   &h->nproperties);
        break;
    default:
        ok = load_http_hook(c, o, path, h);
        break;
    }
    return ok && load_filter(c, o, path, cfg, h) &&
           (h->kind != HOOK_AMQP || !h->exchange || h->exchange_type != HOOK_EXCHANGE_DIRECT ||
            direct_keys_fit(c, path, cfg, h));
}

/* The single object: the hook "default", a topic exchange. */
static bool load_single(Ctx *c, const json_t *o, HookDef *h)
{
    h->kind = HOOK_AMQP;
    h->exchange_type = HOOK_EXCHANGE_TOPIC;
    if (!(h->name = strdup("default")))
        return fail(c, "hooks", "out of memory");
    return load_rows(c, o, "hooks", "hooks", h) && check_amqp_url(c, "hooks.url", h->url) &&
           load_tls(c, o, "hooks", h->url, "amqps://", &h->tls);
}

/* The hook every trigger is published to: "default", else the first
 * amqp topic exchange; -1 when none. */
static int published_hook(const Config *cfg)
{
    int first = -1;
    for (int i = 0; i < cfg->nhooks; i++) {
        const HookDef *h = &cfg->hooks[i];
        if (h->kind != HOOK_AMQP || !h->exchange || h->exchange_type != HOOK_EXCHANGE_TOPIC)
            continue;
        if (strcmp(h->name, "default") == 0)
            return i;
        if (first < 0)
            first = i;
    }
    return first;
}

bool hooks_fill_published(Config *cfg)
{
    free(cfg->hooks_url);
    free(cfg->hooks_exchange);
    config_tls_free(&cfg->hooks_tls);
    cfg->hooks_url = cfg->hooks_exchange = NULL;
    cfg->hooks_index = published_hook(cfg);
    cfg->has_hooks = cfg->hooks_index >= 0;
    cfg->hooks_declare = true;
    if (!cfg->has_hooks)
        return true;
    const HookDef *h = &cfg->hooks[cfg->hooks_index];
    cfg->hooks_declare = h->declare;
    return dup_str(&cfg->hooks_url, h->url) && dup_str(&cfg->hooks_exchange, h->exchange) &&
           config_tls_copy(&cfg->hooks_tls, &h->tls);
}

bool load_hooks(Ctx *c, const json_t *root, Config *cfg)
{
    json_t *o = json_object_get(root, "hooks"), *v;
    char item[PATH_MAX_LEN];
    size_t i;
    cfg->hooks_index = -1;
    if (!o)
        return true;
    if (json_is_object(o)) {
        if (!(cfg->hooks = calloc(1, sizeof *cfg->hooks)))
            return fail(c, "hooks", "out of memory");
        cfg->nhooks = 1;
        if (!load_single(c, o, &cfg->hooks[0]))
            return false;
    } else if (json_is_array(o) && json_array_size(o) > 0) {
        if (!(cfg->hooks = calloc(json_array_size(o), sizeof *cfg->hooks)))
            return fail(c, "hooks", "out of memory");
        json_array_foreach(o, i, v) {
            join_index(item, sizeof item, "hooks", i);
            cfg->nhooks = (int)i + 1;
            if (!load_hook(c, v, item, cfg, &cfg->hooks[i]))
                return false;
            for (size_t j = 0; j < i; j++)
                if (strcmp(cfg->hooks[j].name, cfg->hooks[i].name) == 0) {
                    snprintf(item, sizeof item, "hooks[%zu].name", i);
                    return fail(c, item, "duplicate \"%s\"", cfg->hooks[i].name);
                }
        }
    } else {
        return fail(c, "hooks", "must be an object or a non-empty array of hooks");
    }
    if (!hooks_fill_published(cfg))
        return fail(c, "hooks", "out of memory");
    return true;
}

/* ---- freeing, copying, comparing ---- */

static void hook_free(HookDef *h)
{
    free(h->name);
    free_strings(h->filter.relations, h->filter.nrelations);
    free(h->url);
    config_tls_free(&h->tls);
    free(h->exchange);
    free(h->queue);
    free(h->brokers);
    free(h->topic);
    free_strings(h->property_keys, h->nproperties);
    free_strings(h->property_values, h->nproperties);
    free(h->success_regex);
    free(h->secret);
    free_strings(h->header_names, h->nheaders);
    free_strings(h->header_values, h->nheaders);
}

void hooks_free(Config *cfg)
{
    for (int i = 0; i < cfg->nhooks; i++)
        hook_free(&cfg->hooks[i]);
    free(cfg->hooks);
    cfg->hooks = NULL;
    cfg->nhooks = 0;
    free(cfg->hooks_url);
    free(cfg->hooks_exchange);
    config_tls_free(&cfg->hooks_tls);
    cfg->hooks_url = cfg->hooks_exchange = NULL;
    cfg->has_hooks = false;
    cfg->hooks_index = -1;
}

static bool hook_copy(HookDef *d, const HookDef *s)
{
    /* the numbers as they are, every pointer copied after */
    *d = *s;
    d->name = d->url = d->exchange = d->queue = d->brokers = d->topic = NULL;
    d->success_regex = d->secret = NULL;
    memset(&d->tls, 0, sizeof d->tls);
    d->filter.relations = d->property_keys = d->property_values = NULL;
    d->header_names = d->header_values = NULL;
    d->filter.nrelations = d->nproperties = d->nheaders = 0;
    return dup_str(&d->name, s->name) && dup_str(&d->url, s->url) &&
           dup_str(&d->exchange, s->exchange) && dup_str(&d->queue, s->queue) &&
           dup_str(&d->brokers, s->brokers) && dup_str(&d->topic, s->topic) &&
           dup_str(&d->success_regex, s->success_regex) && dup_str(&d->secret, s->secret) &&
           config_tls_copy(&d->tls, &s->tls) &&
           dup_strings(&d->filter.relations, &d->filter.nrelations, s->filter.relations,
                       s->filter.nrelations) &&
           dup_pairs(&d->property_keys, &d->property_values, &d->nproperties, s->property_keys,
                     s->property_values, s->nproperties) &&
           dup_pairs(&d->header_names, &d->header_values, &d->nheaders, s->header_names,
                     s->header_values, s->nheaders);
}

HookDef *hooks_copy(const HookDef *hooks, int n)
{
    HookDef *out = n > 0 ? calloc((size_t)n, sizeof *out) : NULL;
    if (!out)
        return NULL;
    for (int i = 0; i < n; i++)
        if (!hook_copy(&out[i], &hooks[i])) {
            for (int j = 0; j <= i; j++)
                hook_free(&out[j]);
            free(out);
            return NULL;
        }
    return out;
}

static bool list_same(char *const *a, int na, char *const *b, int nb)
{
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (!str_same(a[i], b[i]))
            return false;
    return true;
}

static bool hook_same(const HookDef *a, const HookDef *b)
{
    return str_same(a->name, b->name) && a->kind == b->kind &&
           a->max_backlog == b->max_backlog && a->defer_ms == b->defer_ms &&
           a->defer_idle_percent == b->defer_idle_percent &&
           str_same(a->url, b->url) &&
           config_tls_same(&a->tls, &b->tls) && str_same(a->exchange, b->exchange) &&
           str_same(a->queue, b->queue) && a->exchange_type == b->exchange_type &&
           a->declare == b->declare && str_same(a->brokers, b->brokers) &&
           str_same(a->topic, b->topic) &&
           list_same(a->property_keys, a->nproperties, b->property_keys, b->nproperties) &&
           list_same(a->property_values, a->nproperties, b->property_values, b->nproperties) &&
           a->batch_size == b->batch_size && a->batch_ms == b->batch_ms &&
           a->timeout_ms == b->timeout_ms && str_same(a->success_regex, b->success_regex) &&
           str_same(a->secret, b->secret) &&
           list_same(a->header_names, a->nheaders, b->header_names, b->nheaders) &&
           list_same(a->header_values, a->nheaders, b->header_values, b->nheaders) &&
           a->filter.kinds == b->filter.kinds && a->filter.directions == b->filter.directions &&
           list_same(a->filter.relations, a->filter.nrelations, b->filter.relations,
                     b->filter.nrelations);
}

bool hooks_same(const HookDef *a, int na, const HookDef *b, int nb)
{
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (!hook_same(&a[i], &b[i]))
            return false;
    return true;
}

/* ---- describing ---- */

/* Appends to out (used bytes so far in *used). */
static void add(char *out, size_t len, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *out, size_t len, size_t *used, const char *fmt, ...)
{
    if (*used >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *used, len - *used, fmt, ap);
    va_end(ap);
    *used += n > 0 ? (size_t)n : 0;
}

/* url without its user and password and without its query. */
static void add_url(char *out, size_t len, size_t *used, const char *url)
{
    const char *rest = strstr(url, "://");
    rest = rest ? rest + 3 : url;
    const char *host = rest;
    /* after the last @ of the authority: a password may hold @ */
    for (const char *p = rest; *p && !strchr("/?#", *p); p++)
        if (*p == '@')
            host = p + 1;
    add(out, len, used, "%.*s%.*s", (int)(rest - url), url, (int)strcspn(host, "?#"), host);
}

static void add_names(char *out, size_t len, size_t *used, const char *what, unsigned bits,
                      const char *const *names, int lo, int n)
{
    if (!bits)
        return;
    add(out, len, used, ", %s", what);
    const char *sep = " ";
    for (int k = lo; k < n; k++)
        if (bits & (1u << k)) {
            add(out, len, used, "%s%s", sep, names[k]);
            sep = ", ";
        }
}

void config_hook_describe(const Config *cfg, int i, char *out, size_t len)
{
    const HookDef *h = &cfg->hooks[i];
    size_t used = 0;
    out[0] = '\0';
    add(out, len, &used, "hook %s: ", h->name);
    switch (h->kind) {
    case HOOK_AMQP:
        if (h->exchange)
            add(out, len, &used, "amqp %s exchange %s at ",
                h->exchange_type == HOOK_EXCHANGE_TOPIC ? "topic" : "direct", h->exchange);
        else
            add(out, len, &used, "amqp queue %s at ", h->queue);
        add_url(out, len, &used, h->url);
        break;
    case HOOK_KAFKA:
        add(out, len, &used, "kafka topic %s at %s", h->topic, h->brokers);
        break;
    default:
        add(out, len, &used, "http POST ");
        add_url(out, len, &used, h->url);
        add(out, len, &used, " (batches of up to %d, %d ms, timeout %d ms%s%s)", h->batch_size,
            h->batch_ms, h->timeout_ms, h->secret ? ", signed" : "",
            h->success_regex ? ", body checked" : "");
        break;
    }
    if (h->filter.relations) {
        add(out, len, &used, ", relations");
        for (int k = 0; k < h->filter.nrelations; k++)
            add(out, len, &used, "%s%s", k ? ", " : " ", h->filter.relations[k]);
    }
    add_names(out, len, &used, "kinds", h->filter.kinds, kind_names, HOOK_ON_ATTACH,
              HOOK_ON_THRESHOLD + 1);
    add_names(out, len, &used, "directions", h->filter.directions, side_names, 0, 2);
    if (!h->filter.relations && !h->filter.kinds && !h->filter.directions)
        add(out, len, &used, ", every trigger");
    add(out, len, &used, "; backlog up to %lld", (long long)h->max_backlog);
    if (i == cfg->hooks_index)
        add(out, len, &used, "; relationctl watch and apply --publish use it");
}
