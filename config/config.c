/* config.c — loads the JSON configuration, expands ${NAME}, checks every rule,
 * including that each TLS file it names (amqp.tls, hooks.tls, the *.location
 * kafka.properties) opens for reading as this user (so --check-config refuses
 * what would stop the start). Every error names the JSON path of what is
 * wrong. A float threshold value
 * is rounded on its decimal as written, read from the configuration's text
 * (lib/jsontext.h): jansson keeps only a double. */
#include "config/config.h"
#include "lib/jsontext.h"
#include "lib/fixed.h"
#include "lib/grow.h"

#include <errno.h>
#include <jansson.h>
#include <amqp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *err;
    size_t errlen;
    const char *text, *end; /* the JSON text jansson parsed */
} Ctx;

static bool fail(Ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(Ctx *c, const char *path, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(c->err, c->errlen, "%s: ", path);
    if (n < 0 || (size_t)n >= c->errlen)
        return false;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

/* PATH.KEY, or KEY at the root. */
static void join(char *out, size_t len, const char *path, const char *key)
{
    snprintf(out, len, "%s%s%s", path, *path ? "." : "", key);
}

static void join_index(char *out, size_t len, const char *path, size_t i)
{
    snprintf(out, len, "%s[%zu]", path, i);
}

#define PATH_MAX_LEN 256

/* ---- ${NAME} expansion, in every string of the document ---- */

static bool expand_string(Ctx *c, const char *path, const char *in, char **out)
{
    size_t cap = strlen(in) + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return fail(c, path, "out of memory");
    for (const char *p = in; *p;) {
        const char *add = p;
        size_t addlen = 1;
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            if (!end) {
                free(buf);
                /* The value is not shown: it may hold a secret. */
                return fail(c, path, "unterminated ${ at byte %zu of the value", (size_t)(p - in));
            }
            char name[128];
            size_t nlen = (size_t)(end - p - 2);
            if (nlen == 0 || nlen >= sizeof name) {
                free(buf);
                return fail(c, path, "bad variable name at byte %zu of the value", (size_t)(p - in));
            }
            memcpy(name, p + 2, nlen);
            name[nlen] = '\0';
            add = getenv(name);
            if (!add) {
                free(buf);
                return fail(c, path, "environment variable %s is not set", name);
            }
            addlen = strlen(add);
            p = end + 1;
        } else {
            p++;
        }
        if (!GROW_RESERVE(buf, cap, len + addlen + 1, 0)) {
            free(buf);
            return fail(c, path, "out of memory");
        }
        memcpy(buf + len, add, addlen);
        len += addlen;
    }
    buf[len] = '\0';
    *out = buf;
    return true;
}

static bool expand_all(Ctx *c, json_t *node, const char *path)
{
    char sub[PATH_MAX_LEN];
    if (json_is_object(node)) {
        const char *key;
        json_t *v;
        json_object_foreach(node, key, v) {
            join(sub, sizeof sub, path, key);
            if (json_is_string(v)) {
                char *s;
                if (!expand_string(c, sub, json_string_value(v), &s))
                    return false;
                int rc = json_object_set_new(node, key, json_string(s));
                free(s);
                if (rc != 0)
                    return fail(c, sub, "out of memory");
            } else if (!expand_all(c, v, sub)) {
                return false;
            }
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) {
            join_index(sub, sizeof sub, path, i);
            if (json_is_string(v)) {
                char *s;
                if (!expand_string(c, sub, json_string_value(v), &s))
                    return false;
                int rc = json_array_set_new(node, i, json_string(s));
                free(s);
                if (rc != 0)
                    return fail(c, sub, "out of memory");
            } else if (!expand_all(c, v, sub)) {
                return false;
            }
        }
    }
    return true;
}

/* ---- typed getters ---- */

static bool only_keys(Ctx *c, const json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    char sub[PATH_MAX_LEN];
    json_object_foreach((json_t *)obj, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = true;
        if (!ok) {
            join(sub, sizeof sub, path, key);
            return fail(c, sub, "unknown key");
        }
    }
    return true;
}

static bool get_object(Ctx *c, const json_t *obj, const char *path, const char *key,
                       bool required, json_t **out)
{
    char sub[PATH_MAX_LEN];
    json_t *v = json_object_get(obj, key);
    join(sub, sizeof sub, path, key);
    *out = NULL;
    if (!v) {
        if (required)
            return fail(c, sub, "required");
        return true;
    }
    if (!json_is_object(v))
        return fail(c, sub, "must be an object");
    *out = v;
    return true;
}

static bool get_string(Ctx *c, const json_t *obj, const char *path, const char *key,
                       bool required, const char *dflt, char **out)
{
    char sub[PATH_MAX_LEN];
    json_t *v = json_object_get(obj, key);
    join(sub, sizeof sub, path, key);
    const char *s = dflt;
    if (v) {
        if (!json_is_string(v))
            return fail(c, sub, "must be a string");
        s = json_string_value(v);
        if (required && !*s)
            return fail(c, sub, "must not be empty");
    } else if (required) {
        return fail(c, sub, "required");
    }
    *out = NULL;
    if (!s)
        return true;
    *out = strdup(s);
    if (!*out)
        return fail(c, sub, "out of memory");
    return true;
}

static bool get_int(Ctx *c, const json_t *obj, const char *path, const char *key,
                    int64_t dflt, int64_t min, int64_t max, int64_t *out)
{
    char sub[PATH_MAX_LEN];
    json_t *v = json_object_get(obj, key);
    join(sub, sizeof sub, path, key);
    *out = dflt;
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fail(c, sub, "must be an integer %lld..%lld", (long long)min, (long long)max);
    *out = json_integer_value(v);
    return true;
}

static bool get_bool(Ctx *c, const json_t *obj, const char *path, const char *key, bool dflt,
                     bool *out)
{
    char sub[PATH_MAX_LEN];
    json_t *v = json_object_get(obj, key);
    join(sub, sizeof sub, path, key);
    *out = dflt;
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return fail(c, sub, "must be true or false");
    *out = json_is_true(v);
    return true;
}

static bool valid_short(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > CONFIG_SHORT_MAX || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static bool get_short(Ctx *c, const json_t *obj, const char *path, char **out)
{
    char sub[PATH_MAX_LEN];
    if (!get_string(c, obj, path, "short", true, NULL, out))
        return false;
    if (!valid_short(*out)) {
        join(sub, sizeof sub, path, "short");
        return fail(c, sub, "must match [a-z][a-z0-9_]{0,63}");
    }
    return true;
}

/* ---- sections ---- */

static bool copy_part(char *dst, size_t cap, const char *from, size_t len)
{
    if (len >= cap)
        return false;
    memcpy(dst, from, len);
    dst[len] = '\0';
    return true;
}

/* redis://[[user]:password@]host[:port][/db]; host may be an IPv6 literal in
 * brackets. */
static bool parse_redis_url(const char *url, RedisUrl *u)
{
    const char *p = url + strlen("redis://");
    const char *at, *slash, *hostend, *colon;
    memset(u, 0, sizeof *u);
    u->port = 6379;

    if (strncmp(url, "redis://", 8) != 0)
        goto bad;
    slash = strchr(p, '/');
    at = NULL;
    for (const char *q = p; *q && (!slash || q < slash); q++)
        if (*q == '@')
            at = q; /* the last @ before the path: passwords may contain @ */
    if (at) {
        const char *c = memchr(p, ':', (size_t)(at - p));
        if (c) {
            if (!copy_part(u->user, sizeof u->user, p, (size_t)(c - p)) ||
                !copy_part(u->password, sizeof u->password, c + 1, (size_t)(at - c - 1)))
                goto bad;
        } else if (!copy_part(u->user, sizeof u->user, p, (size_t)(at - p))) {
            goto bad;
        }
        p = at + 1;
    }
    hostend = slash ? slash : p + strlen(p);
    const char *host = p, *host_end;
    if (*p == '[') { /* an IPv6 literal: [::1] */
        const char *close = memchr(p, ']', (size_t)(hostend - p));
        if (!close || (close + 1 != hostend && close[1] != ':'))
            goto bad;
        host = p + 1;
        host_end = close;
        colon = close + 1 != hostend ? close + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(hostend - p));
        host_end = colon ? colon : hostend;
    }
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != hostend || port < 1 || port > 65535)
            goto bad;
        u->port = (int)port;
    }
    if (host_end == host || !copy_part(u->host, sizeof u->host, host, (size_t)(host_end - host)))
        goto bad;
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 1000000)
            goto bad;
        u->db = (int)db;
    }
    return true;
bad:
    return false;
}


/* redis.<key>: an array of "host:port" strings (an IPv6 host in brackets). */
static bool get_addrs(Ctx *c, const json_t *o, const char *key, RedisAddr *out, int *n)
{
    char sub[PATH_MAX_LEN];
    json_t *a = json_object_get(o, key), *v;
    size_t i;
    *n = 0;
    join(sub, sizeof sub, "redis", key);
    if (!a)
        return true;
    if (!json_is_array(a) || json_array_size(a) > CONFIG_MAX_ADDRS)
        return fail(c, sub, "must be an array of at most %d \"host:port\" strings",
                    CONFIG_MAX_ADDRS);
    json_array_foreach(a, i, v) {
        char at[PATH_MAX_LEN];
        join_index(at, sizeof at, sub, i);
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        const char *colon = s ? strrchr(s, ':') : NULL;
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        size_t hl = colon ? (size_t)(colon - s) : 0;
        if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
            s++;
            hl -= 2;
        }
        if (!colon || hl == 0 || hl >= sizeof out[i].host || *end || port < 1 || port > 65535)
            return fail(c, at, "must be \"host:port\" (an IPv6 host in brackets)");
        memcpy(out[i].host, s, hl);
        out[i].host[hl] = '\0';
        out[i].port = (int)port;
        (*n)++;
    }
    return true;
}

static bool load_redis(Ctx *c, const json_t *root, Config *cfg)
{
    static const char *const keys[] = {"url",   "key_prefix", "timeout_ms", "wait_replicas",
                                       "seeds", "sentinels",  "master_name", NULL};
    json_t *o;
    int64_t t, w;
    if (!get_object(c, root, "", "redis", true, &o) || !only_keys(c, o, "redis", keys) ||
        !get_string(c, o, "redis", "url", true, NULL, &cfg->redis_url) ||
        !get_string(c, o, "redis", "key_prefix", false, "rel:", &cfg->key_prefix) ||
        !get_int(c, o, "redis", "timeout_ms", 5000, 1, 3600000, &t) ||
        !get_int(c, o, "redis", "wait_replicas", 0, 0, 16, &w))
        return false;
    cfg->redis_timeout_ms = (int)t;
    cfg->wait_replicas = (int)w;
    if (!get_addrs(c, o, "seeds", cfg->seeds, &cfg->nseeds) ||
        !get_addrs(c, o, "sentinels", cfg->sentinels, &cfg->nsentinels))
        return false;
    json_t *name = json_object_get(o, "master_name");
    if (name && (!json_is_string(name) || !*json_string_value(name) ||
                 strlen(json_string_value(name)) >= sizeof cfg->master_name))
        return fail(c, "redis.master_name", "must be a string of 1..127 characters");
    if (name)
        snprintf(cfg->master_name, sizeof cfg->master_name, "%s", json_string_value(name));
    if (cfg->nsentinels && !name)
        return fail(c, "redis.master_name", "required with redis.sentinels");
    if (name && !cfg->nsentinels)
        return fail(c, "redis.sentinels", "required with redis.master_name");
    if (strncmp(cfg->redis_url, "redis://", 8) != 0)
        return fail(c, "redis.url", "must start with redis://");
    if (!parse_redis_url(cfg->redis_url, &cfg->redis))
        return fail(c, "redis.url", "must be redis://[[user]:password@]host[:port][/db] "
                                    "(an IPv6 host in brackets: [::1])");
    if (strpbrk(cfg->key_prefix, "{}"))
        return fail(c, "redis.key_prefix", "must not contain { or } (the keys' hash tag)");
    return true;
}

static bool load_engine(Ctx *c, const json_t *root, Config *cfg)
{
    static const char *const keys[] = {"tombstone_ttl_s",     "dedup_ids",    "batch_size", "batch_ms",
                                       "shutdown_timeout_ms", "retry_max_ms", "log_level",  NULL};
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    json_t *o;
    int64_t d = 0, b = 0, bm = 0, st = 0, rm = 0;
    if (!get_object(c, root, "", "engine", false, &o))
        return false;
    if (!o)
        o = json_object(); /* defaults: an empty object */
    else
        json_incref(o);
    bool ok = only_keys(c, o, "engine", keys) &&
              get_int(c, o, "engine", "tombstone_ttl_s", 604800, 1, 315360000,
                      &cfg->tombstone_ttl_s) &&
              get_int(c, o, "engine", "dedup_ids", 10000, 1, 10000000, &d) &&
              get_int(c, o, "engine", "batch_size", 256, 1, 100000, &b) &&
              get_int(c, o, "engine", "batch_ms", 100, 1, 60000, &bm) &&
              get_int(c, o, "engine", "shutdown_timeout_ms", 10000, 100, 3600000, &st) &&
              get_int(c, o, "engine", "retry_max_ms", 5000, 10, 3600000, &rm);
    char *level = NULL;
    cfg->log_level = 2;
    if (ok && (ok = get_string(c, o, "engine", "log_level", false, "info", &level))) {
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(level, levels[i]) == 0)
                found = i;
        if (found < 0)
            ok = fail(c, "engine.log_level", "must be error, warn, info or debug");
        else
            cfg->log_level = found;
    }
    free(level);
    json_decref(o);
    cfg->dedup_ids = (int)d;
    cfg->batch_size = (int)b;
    cfg->batch_ms = (int)bm;
    cfg->shutdown_timeout_ms = (int)st;
    cfg->retry_max_ms = (int)rm;
    return ok;
}

/* A file the daemon reads at run time (TLS keys and certificates), checked
 * now so that --check-config refuses what would stop the start: it must
 * open for reading as this user, and be a regular file (or, dir_ok, a
 * directory). */
static bool check_file(Ctx *c, const char *path, const char *file, bool dir_ok)
{
    struct stat st;
    int fd = open(file, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return fail(c, path, "cannot read %s: %s", file, strerror(errno));
    int rc = fstat(fd, &st), saved = errno;
    close(fd);
    if (rc != 0)
        return fail(c, path, "cannot read %s: %s", file, strerror(saved));
    if (!S_ISREG(st.st_mode) && !(dir_ok && S_ISDIR(st.st_mode)))
        return fail(c, path, "%s is not a regular file%s", file, dir_ok ? " or a directory" : "");
    return true;
}

/* kafka.properties that name a file librdkafka reads (*.location): checked
 * as the other TLS files; ssl.ca.location may be a directory, or "probe"
 * (librdkafka looks in the usual places). An empty value sets nothing. */
static bool check_kafka_file(Ctx *c, const char *path, const char *key, const char *value)
{
    size_t n = strlen(key), suffix = strlen(".location");
    if (n < suffix || strcmp(key + n - suffix, ".location") != 0 || !*value)
        return true;
    bool ca = strcmp(key, "ssl.ca.location") == 0;
    if (ca && strcmp(value, "probe") == 0)
        return true;
    return check_file(c, path, value, ca);
}

/* kafka.properties that would break what relationd guarantees: the key,
 * the values allowed (NULL: none; compared as librdkafka does, ignoring
 * case), and why. */
#define KAFKA_ACKS_WHY                                                                         \
    "must be all (or -1): an event's offset is committed once its dead letter is "             \
    "acknowledged, and a dead letter acknowledged by fewer than all in-sync replicas could "   \
    "be lost with its broker (relationctl send and redrive rely on it too)"
static const struct {
    const char *key;
    const char *const allowed[5];
    const char *why;
} kafka_guarded[] = {
    {"enable.auto.commit", {"false"},
     "must be false: offsets are committed by relationd once their events are applied and "
     "their triggers confirmed"},
    {"auto.commit.enable", {"false"},
     "must be false: offsets are committed by relationd once their events are applied and "
     "their triggers confirmed"},
    {"enable.auto.offset.store", {"false"},
     "must be false: offsets are stored by relationd once their events are applied and "
     "their triggers confirmed"},
    {"auto.offset.reset", {"earliest", "smallest", "beginning", "error"},
     "must be earliest (or error): a consumer without a committed offset (a new group, "
     "offsets expired) would skip the backlog; position a new group with the Kafka tools"},
    {"isolation.level", {"read_committed"},
     "must be read_committed: events of aborted transactions would be applied"},
    {"acks", {"all", "-1"}, KAFKA_ACKS_WHY},
    {"request.required.acks", {"all", "-1"}, KAFKA_ACKS_WHY},
    {"transactional.id", {NULL},
     "must not be set: relationd's producers do not use transactions, and a transactional "
     "producer refuses every message sent outside one (no dead letter could be written)"},
    {"offset.store.method", {"broker"},
     "must be broker: relationd commits offsets to the group in the cluster"},
    {"group.id", {NULL}, "is kafka.group_id"},
    {"bootstrap.servers", {NULL}, "is kafka.brokers"},
    {"metadata.broker.list", {NULL}, "is kafka.brokers"},
};

/* A property's value as librdkafka takes it: strings as they are, numbers
 * and booleans as their text; NULL (with *why) otherwise. */
static char *kafka_value(const char *key, const json_t *v, const char **why)
{
    char num[32];
    const char *text = NULL;
    if (json_is_string(v)) {
        text = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        text = num;
    } else if (json_is_real(v)) {
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        text = num;
    } else if (json_is_boolean(v)) {
        text = json_is_true(v) ? "true" : "false";
    }
    if (!text) {
        *why = "must be a string, a number or a boolean";
        return NULL;
    }
    for (size_t i = 0; i < sizeof kafka_guarded / sizeof kafka_guarded[0]; i++) {
        if (strcmp(key, kafka_guarded[i].key) != 0)
            continue;
        bool ok = false;
        for (const char *const *a = kafka_guarded[i].allowed; *a && !ok; a++)
            ok = strcasecmp(text, *a) == 0;
        if (!ok) {
            *why = kafka_guarded[i].why;
            return NULL;
        }
    }
    char *out = strdup(text);
    if (!out)
        *why = "out of memory";
    return out;
}

static bool load_kafka(Ctx *c, const json_t *root, Config *cfg)
{
    static const char *const keys[] = {"brokers", "group_id", "topics", "dead_letter_topic",
                                       "properties", NULL};
    json_t *o, *topics, *props;
    char sub[PATH_MAX_LEN];
    KafkaConfig *k = &cfg->kafka;
    if (!get_object(c, root, "", "kafka", false, &o))
        return false;
    if (!o)
        return true;
    cfg->has_kafka = true;
    if (!only_keys(c, o, "kafka", keys) ||
        !get_string(c, o, "kafka", "brokers", true, NULL, &k->brokers) ||
        !get_string(c, o, "kafka", "group_id", false, "relationd", &k->group_id) ||
        !get_string(c, o, "kafka", "dead_letter_topic", true, NULL, &k->dead_letter_topic))
        return false;
    topics = json_object_get(o, "topics");
    if (!topics)
        return fail(c, "kafka.topics", "required");
    if (!json_is_array(topics) || json_array_size(topics) == 0)
        return fail(c, "kafka.topics", "must be a non-empty array of strings");
    k->topics = calloc(json_array_size(topics), sizeof *k->topics);
    if (!k->topics)
        return fail(c, "kafka.topics", "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(topics, i, v) {
        join_index(sub, sizeof sub, "kafka.topics", i);
        if (!json_is_string(v) || !*json_string_value(v))
            return fail(c, sub, "must be a non-empty string");
        if (!(k->topics[i] = strdup(json_string_value(v))))
            return fail(c, sub, "out of memory");
        k->ntopics++;
    }
    if (!get_object(c, o, "kafka", "properties", false, &props))
        return false;
    if (props && json_object_size(props) > 0) {
        size_t n = json_object_size(props);
        k->property_keys = calloc(n, sizeof *k->property_keys);
        k->property_values = calloc(n, sizeof *k->property_values);
        if (!k->property_keys || !k->property_values)
            return fail(c, "kafka.properties", "out of memory");
        const char *key;
        json_object_foreach(props, key, v) {
            const char *why = NULL;
            join(sub, sizeof sub, "kafka.properties", key);
            char *value = kafka_value(key, v, &why);
            if (!value)
                return fail(c, sub, "%s", why);
            k->property_values[k->nproperties] = value;
            k->property_keys[k->nproperties] = strdup(key);
            k->nproperties++;
            if (!k->property_keys[k->nproperties - 1])
                return fail(c, sub, "out of memory");
            if (!check_kafka_file(c, sub, key, value))
                return false;
        }
    }
    return true;
}

/* An AMQP URL as the daemon parses it (rabbitmq-c's amqp_parse_url), so
 * that --check-config refuses what the daemon could not use. */
static bool check_amqp_url(Ctx *c, const char *path, const char *url)
{
    if (strncmp(url, "amqp://", 7) != 0 && strncmp(url, "amqps://", 8) != 0)
        return fail(c, path, "must start with amqp:// or amqps://");
    char *copy = strdup(url); /* amqp_parse_url writes into its argument */
    if (!copy)
        return fail(c, path, "out of memory");
    struct amqp_connection_info info;
    int rc = amqp_parse_url(copy, &info);
    free(copy);
    if (rc != AMQP_STATUS_OK)
        return fail(c, path, "must be amqp[s]://[user[:password]@]host[:port][/vhost]");
    return true;
}

static bool dup_str(char **dst, const char *src);
static bool str_same(const char *a, const char *b);

bool config_tls_copy(TlsConfig *dst, const TlsConfig *src)
{
    dst->verify = src->verify;
    return dup_str(&dst->ca, src->ca) && dup_str(&dst->cert, src->cert) &&
           dup_str(&dst->key, src->key);
}

void config_tls_free(TlsConfig *t)
{
    free(t->ca);
    free(t->cert);
    free(t->key);
    memset(t, 0, sizeof *t);
}

static bool tls_same(const TlsConfig *a, const TlsConfig *b)
{
    return a->verify == b->verify && str_same(a->ca, b->ca) && str_same(a->cert, b->cert) &&
           str_same(a->key, b->key);
}

/* SECTION.tls: {ca, cert, key, verify}, for an amqps:// url. */
static bool load_tls(Ctx *c, const json_t *o, const char *section, const char *url, TlsConfig *t)
{
    static const char *const keys[] = {"ca", "cert", "key", "verify", NULL};
    char path[PATH_MAX_LEN], sub[PATH_MAX_LEN];
    json_t *tls;
    t->verify = true;
    join(path, sizeof path, section, "tls");
    if (!get_object(c, o, section, "tls", false, &tls))
        return false;
    if (!tls)
        return true;
    if (strncmp(url, "amqps://", 8) != 0)
        return fail(c, path, "only with an amqps:// url");
    if (!only_keys(c, tls, path, keys) || !get_string(c, tls, path, "ca", false, NULL, &t->ca) ||
        !get_string(c, tls, path, "cert", false, NULL, &t->cert) ||
        !get_string(c, tls, path, "key", false, NULL, &t->key) ||
        !get_bool(c, tls, path, "verify", true, &t->verify))
        return false;
    if (!t->cert != !t->key)
        return fail(c, path, "cert and key go together");
    const char *const files[][2] = {{"ca", t->ca}, {"cert", t->cert}, {"key", t->key}};
    for (int i = 0; i < 3; i++) {
        join(sub, sizeof sub, path, files[i][0]);
        if (files[i][1] && !check_file(c, sub, files[i][1], false))
            return false;
    }
    return true;
}

static bool load_amqp(Ctx *c, const json_t *root, Config *cfg)
{
    static const char *const keys[] = {"url",     "queue",           "prefetch", "dead_letter_exchange",
                                       "declare", "queue_arguments", "tls",      NULL};
    json_t *o, *args;
    int64_t prefetch;
    if (!get_object(c, root, "", "amqp", false, &o))
        return false;
    if (!o)
        return true;
    cfg->has_amqp = true;
    if (!only_keys(c, o, "amqp", keys) ||
        !get_string(c, o, "amqp", "url", true, NULL, &cfg->amqp.url) ||
        !get_string(c, o, "amqp", "queue", true, NULL, &cfg->amqp.queue) ||
        /* Default: enough deliveries for every batch in flight to be full. */
        !get_int(c, o, "amqp", "prefetch",
                 (int64_t)cfg->batch_size * CONFIG_BATCHES_IN_FLIGHT > 65535
                     ? 65535
                     : (int64_t)cfg->batch_size * CONFIG_BATCHES_IN_FLIGHT,
                 1, 65535, &prefetch) ||
        !get_string(c, o, "amqp", "dead_letter_exchange", true, NULL,
                    &cfg->amqp.dead_letter_exchange))
        return false;
    cfg->amqp.prefetch = (int)prefetch;
    cfg->amqp.prefetch_default = !json_object_get(o, "prefetch");
    if (!get_bool(c, o, "amqp", "declare", true, &cfg->amqp.declare) ||
        !get_object(c, o, "amqp", "queue_arguments", false, &args))
        return false;
    if (args) {
        const char *key;
        json_t *v;
        char sub[PATH_MAX_LEN];
        json_object_foreach(args, key, v) {
            join(sub, sizeof sub, "amqp.queue_arguments", key);
            if (strcmp(key, "x-dead-letter-exchange") == 0)
                return fail(c, sub, "is amqp.dead_letter_exchange");
            if (!json_is_string(v) && !json_is_integer(v) && !json_is_boolean(v))
                return fail(c, sub, "must be a string, an integer or a boolean");
        }
        if (json_object_size(args) && !(cfg->amqp.queue_arguments = json_deep_copy(args)))
            return fail(c, "amqp.queue_arguments", "out of memory");
    }
    return check_amqp_url(c, "amqp.url", cfg->amqp.url) &&
           load_tls(c, o, "amqp", cfg->amqp.url, &cfg->amqp.tls);
}

static bool load_hooks_http(Ctx *c, const json_t *root, Config *cfg)
{
    static const char *const hook_keys[] = {"url", "exchange", "declare", "tls", NULL};
    static const char *const http_keys[] = {"listen", "token", NULL};
    json_t *o;
    if (!get_object(c, root, "", "hooks", false, &o))
        return false;
    if (o) {
        cfg->has_hooks = true;
        if (!only_keys(c, o, "hooks", hook_keys) ||
            !get_string(c, o, "hooks", "url", true, NULL, &cfg->hooks_url) ||
            !get_string(c, o, "hooks", "exchange", false, "relation.hooks", &cfg->hooks_exchange) ||
            !get_bool(c, o, "hooks", "declare", true, &cfg->hooks_declare))
            return false;
        if (!check_amqp_url(c, "hooks.url", cfg->hooks_url) ||
            !load_tls(c, o, "hooks", cfg->hooks_url, &cfg->hooks_tls))
            return false;
    }
    if (!get_object(c, root, "", "http", false, &o))
        return false;
    if (o) {
        cfg->has_http = true;
        if (!only_keys(c, o, "http", http_keys) ||
            !get_string(c, o, "http", "listen", true, NULL, &cfg->http_listen) ||
            !get_string(c, o, "http", "token", false, NULL, &cfg->http_token))
            return false;
        if (cfg->http_token && !*cfg->http_token)
            return fail(c, "http.token", "must not be empty (leave it out for no token)");
        const char *colon = strrchr(cfg->http_listen, ':');
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || colon == cfg->http_listen || *end || port < 1 || port > 65535)
            return fail(c, "http.listen", "must be host:port");
    }
    return true;
}

static bool load_property(Ctx *c, const json_t *o, const char *path, PropertyDef *p)
{
    static const char *const keys[] = {"short", "name", "type", "save_amount", "save_top", NULL};
    static const char *const top_keys[] = {"order", "limit", NULL};
    char *type = NULL;
    char sub[PATH_MAX_LEN];
    json_t *top;

    if (!json_is_object(o))
        return fail(c, path, "must be an object");
    if (!only_keys(c, o, path, keys) || !get_short(c, o, path, &p->short_name) ||
        !get_string(c, o, path, "name", false, NULL, &p->name) ||
        !get_string(c, o, path, "type", true, NULL, &type))
        goto fail;
    if (strcmp(type, "int") == 0) {
        p->type = PROP_INT;
    } else if (strcmp(type, "float") == 0) {
        p->type = PROP_FLOAT;
    } else if (strcmp(type, "bool") == 0) {
        p->type = PROP_BOOL;
    } else {
        join(sub, sizeof sub, path, "type");
        fail(c, sub, "must be int, float or bool");
        goto fail;
    }
    free(type);
    type = NULL;
    if (!get_bool(c, o, path, "save_amount", false, &p->save_amount))
        return false;
    if (p->save_amount && p->type == PROP_BOOL) {
        join(sub, sizeof sub, path, "save_amount");
        return fail(c, sub, "only for int or float properties");
    }
    if (!get_object(c, o, path, "save_top", false, &top))
        return false;
    p->top_order = TOP_NONE;
    if (top) {
        char *order = NULL;
        int64_t limit;
        join(sub, sizeof sub, path, "save_top");
        if (p->type == PROP_BOOL)
            return fail(c, sub, "only for int or float properties");
        if (!only_keys(c, top, sub, top_keys) ||
            !get_string(c, top, sub, "order", false, "desc", &order))
            return false;
        bool desc = strcmp(order, "desc") == 0, asc = strcmp(order, "asc") == 0;
        free(order);
        if (!desc && !asc) {
            join(sub, sizeof sub, path, "save_top.order");
            return fail(c, sub, "must be desc or asc");
        }
        p->top_order = desc ? TOP_DESC : TOP_ASC;
        json_t *lv = json_object_get(top, "limit");
        join(sub, sizeof sub, path, "save_top.limit");
        if (!lv)
            return fail(c, sub, "required");
        if (!json_is_integer(lv) || json_integer_value(lv) < 1 ||
            json_integer_value(lv) > CONFIG_MAX_TOP)
            return fail(c, sub, "must be 1..20");
        limit = json_integer_value(lv);
        p->top_limit = (int)limit;
    }
    return true;
fail:
    free(type);
    return false;
}

/* o is the threshold, raw its text in c->text (NULL: not found there). */
static bool load_threshold(Ctx *c, const json_t *o, const char *raw, const char *path,
                           RelationDef *rel, ThresholdDef *t)
{
    static const char *const keys[] = {"direction", "stat", "property", "value", "name", NULL};
    char *dir = NULL, *stat = NULL, *prop = NULL, *name = NULL;
    char sub[PATH_MAX_LEN];
    bool ok = false;

    if (!json_is_object(o))
        return fail(c, path, "must be an object");
    if (!only_keys(c, o, path, keys) ||
        !get_string(c, o, path, "direction", true, NULL, &dir) ||
        !get_string(c, o, path, "stat", true, NULL, &stat) ||
        !get_string(c, o, path, "property", false, NULL, &prop) ||
        !get_string(c, o, path, "name", false, NULL, &name))
        goto done;
    if (name) {
        size_t nl = strlen(name);
        bool good = nl >= 1 && nl <= 64;
        for (size_t k = 0; good && k < nl; k++)
            good = (name[k] >= 'a' && name[k] <= 'z') || (name[k] >= 'A' && name[k] <= 'Z') ||
                   (name[k] >= '0' && name[k] <= '9') || strchr("_-. ", name[k]);
        if (!good) {
            join(sub, sizeof sub, path, "name");
            fail(c, sub, "must be 1..64 letters, digits, '_', '-', '.' or spaces");
            goto done;
        }
        snprintf(t->name, sizeof t->name, "%s", name);
    }
    if (strcmp(dir, "direct") == 0) {
        t->side = SIDE_DIRECT;
    } else if (strcmp(dir, "reverse") == 0) {
        t->side = SIDE_REVERSE;
    } else {
        join(sub, sizeof sub, path, "direction");
        fail(c, sub, "must be direct or reverse");
        goto done;
    }
    if (strcmp(stat, "count") == 0) {
        t->stat = STAT_COUNT;
    } else if (strcmp(stat, "total") == 0) {
        t->stat = STAT_TOTAL;
    } else if (strcmp(stat, "edge") == 0) {
        t->stat = STAT_EDGE;
    } else {
        join(sub, sizeof sub, path, "stat");
        fail(c, sub, "must be count, total or edge");
        goto done;
    }
    join(sub, sizeof sub, path, "property");
    t->property = -1;
    if (prop) {
        t->property = config_property(rel, prop);
        if (t->property < 0) {
            fail(c, sub, "no property \"%s\" in relation %s", prop, rel->short_name);
            goto done;
        }
    } else if (t->stat != STAT_COUNT) {
        fail(c, sub, "required for stat %s", stat);
        goto done;
    }
    const PropertyDef *p = t->property >= 0 ? &rel->properties[t->property] : NULL;
    if (t->stat == STAT_TOTAL && !p->save_amount) {
        fail(c, sub, "stat total needs save_amount on property %s", p->short_name);
        goto done;
    }

    json_t *v = json_object_get(o, "value");
    join(sub, sizeof sub, path, "value");
    if (!v) {
        fail(c, sub, "required");
        goto done;
    }
    if (t->stat == STAT_COUNT || (p && p->type == PROP_INT)) {
        int64_t max = t->stat == STAT_COUNT ? INT32_MAX
                      : t->stat == STAT_TOTAL ? FIXED_TOTAL_MAX : FIXED_INT_MAX;
        if (!json_is_integer(v) || json_integer_value(v) < -max || json_integer_value(v) > max) {
            fail(c, sub, "must be an integer -%lld..%lld", (long long)max, (long long)max);
            goto done;
        }
        t->value = json_integer_value(v);
    } else if (p->type == PROP_BOOL) {
        if (json_is_boolean(v))
            t->value = json_is_true(v);
        else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
            t->value = json_integer_value(v);
        else {
            fail(c, sub, "must be 0 or 1 for a bool property");
            goto done;
        }
    } else {
        int64_t limit = t->stat == STAT_TOTAL ? FIXED_TOTAL_MAX / FIXED_SCALE : FIXED_FLOAT_MAX;
        const char *text = NULL;
        size_t n = 0;
        bool found = json_is_number(v) &&
                     jsontext_number(jsontext_member(raw, c->end, "value"), c->end, &text, &n);
        if (json_is_number(v) && !found) {
            fail(c, sub, "number not found in the configuration text");
            goto done;
        }
        if (!found || !fixed_from_text(text, n, limit, &t->value)) {
            fail(c, sub, "must be a number -%lld..%lld", (long long)limit, (long long)limit);
            goto done;
        }
    }
    ok = true;
done:
    free(name);
    free(dir);
    free(stat);
    free(prop);
    return ok;
}

/* o is the relation, raw its text in c->text (NULL: not found there). */
static bool load_relation(Ctx *c, const json_t *o, const char *raw, const char *path,
                          RelationDef *rel)
{
    static const char *const keys[] = {"short",      "name",       "database_a", "database_b",
                                       "properties", "thresholds", NULL};
    char sub[PATH_MAX_LEN], item[PATH_MAX_LEN];
    size_t i;
    json_t *v;

    if (!json_is_object(o))
        return fail(c, path, "must be an object");
    if (!only_keys(c, o, path, keys) || !get_short(c, o, path, &rel->short_name) ||
        !get_string(c, o, path, "name", false, NULL, &rel->name) ||
        !get_string(c, o, path, "database_a", true, NULL, &rel->database_a) ||
        !get_string(c, o, path, "database_b", true, NULL, &rel->database_b))
        return false;

    json_t *props = json_object_get(o, "properties");
    join(sub, sizeof sub, path, "properties");
    if (props && !json_is_array(props))
        return fail(c, sub, "must be an array");
    if (props && json_array_size(props) > CONFIG_MAX_PROPERTIES)
        return fail(c, sub, "at most 11 properties");
    json_array_foreach(props, i, v) {
        join_index(item, sizeof item, sub, i);
        if (!load_property(c, v, item, &rel->properties[i])) {
            rel->nproperties = (int)i + 1; /* free what was loaded */
            return false;
        }
        rel->nproperties = (int)i + 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(rel->properties[j].short_name, rel->properties[i].short_name) == 0) {
                snprintf(item, sizeof item, "%s[%zu].short", sub, i);
                return fail(c, item, "duplicate \"%s\"", rel->properties[i].short_name);
            }
    }

    json_t *ths = json_object_get(o, "thresholds");
    join(sub, sizeof sub, path, "thresholds");
    if (ths && !json_is_array(ths))
        return fail(c, sub, "must be an array");
    if (ths && json_array_size(ths) > 0) {
        rel->thresholds = calloc(json_array_size(ths), sizeof *rel->thresholds);
        if (!rel->thresholds)
            return fail(c, sub, "out of memory");
        const char *raw_ths = jsontext_member(raw, c->end, "thresholds");
        json_array_foreach(ths, i, v) {
            join_index(item, sizeof item, sub, i);
            if (!load_threshold(c, v, jsontext_element(raw_ths, c->end, i), item, rel,
                                &rel->thresholds[i]))
                return false;
            rel->nthresholds = (int)i + 1;
        }
    }
    return true;
}

static bool load_relations(Ctx *c, const json_t *root, Config *cfg)
{
    json_t *rels = json_object_get(root, "relations");
    char item[PATH_MAX_LEN];
    size_t i;
    json_t *v;
    if (!rels)
        return fail(c, "relations", "required");
    if (!json_is_array(rels))
        return fail(c, "relations", "must be an array");
    if (json_array_size(rels) == 0)
        return true;
    cfg->relations = calloc(json_array_size(rels), sizeof *cfg->relations);
    if (!cfg->relations)
        return fail(c, "relations", "out of memory");
    const char *raw_rels = jsontext_member(c->text, c->end, "relations");
    json_array_foreach(rels, i, v) {
        join_index(item, sizeof item, "relations", i);
        cfg->nrelations = (int)i + 1;
        if (!load_relation(c, v, jsontext_element(raw_rels, c->end, i), item,
                           &cfg->relations[i]))
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->relations[j].short_name, cfg->relations[i].short_name) == 0) {
                snprintf(item, sizeof item, "relations[%zu].short", i);
                return fail(c, item, "duplicate \"%s\"", cfg->relations[i].short_name);
            }
    }
    return true;
}

static Config *config_from_json(json_t *root, Ctx *c, unsigned skip)
{
    static const char *const keys[] = {"redis", "engine", "kafka", "amqp",
                                       "hooks", "http",   "relations", NULL};
    Config *cfg;
    if (!json_is_object(root)) {
        fail(c, "(root)", "must be an object");
        return NULL;
    }
    /* sections a command does not use: not read at all (an unset ${NAME}
     * there stops nothing) */
    if (skip & CONFIG_SKIP_SOURCES) {
        json_object_del(root, "kafka");
        json_object_del(root, "amqp");
    }
    if (skip & CONFIG_SKIP_HOOKS)
        json_object_del(root, "hooks");
    if (skip & CONFIG_SKIP_HTTP)
        json_object_del(root, "http");
    cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        fail(c, "(root)", "out of memory");
        return NULL;
    }
    if (!expand_all(c, root, "") || !only_keys(c, root, "", keys) || !load_redis(c, root, cfg) ||
        !load_engine(c, root, cfg) || !load_kafka(c, root, cfg) || !load_amqp(c, root, cfg) ||
        !load_hooks_http(c, root, cfg) || !load_relations(c, root, cfg)) {
        config_free(cfg);
        return NULL;
    }
    if ((cfg->has_kafka || cfg->has_amqp) && !cfg->has_hooks) {
        fail(c, "hooks", "required when a kafka or amqp source is configured");
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

Config *config_parse(const char *text, char *err, size_t errlen)
{
    Ctx c = {err, errlen, text, text + strlen(text)};
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    Config *cfg = config_from_json(root, &c, 0);
    json_decref(root);
    return cfg;
}

Config *config_load(const char *path, char *err, size_t errlen)
{
    return config_load_sections(path, 0, err, errlen);
}

/* The whole file at path, malloc'ed (*len bytes, NUL after them), or NULL
 * with the message in err. Read once: the tree and the text are the same
 * file even when it is being replaced. */
static char *read_text(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: unable to open %s: %s", path, path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1)
            break;
        char *nb = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
    } else if (ferror(f)) {
        snprintf(err, errlen, "%s: unable to read: %s", path, strerror(errno));
        free(buf);
        buf = NULL;
    } else {
        buf[n] = '\0';
        *len = n;
    }
    fclose(f);
    return buf;
}

Config *config_load_sections(const char *path, unsigned skip, char *err, size_t errlen)
{
    json_error_t jerr;
    size_t len;
    char *text = read_text(path, &len, err, errlen);
    if (!text)
        return NULL;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s: line %d column %d: %s", path, jerr.line, jerr.column,
                 jerr.text);
        free(text);
        return NULL;
    }
    char inner[CONFIG_ERR_MAX];
    Ctx c = {inner, sizeof inner, text, text + len};
    Config *cfg = config_from_json(root, &c, skip);
    json_decref(root);
    free(text);
    if (!cfg)
        snprintf(err, errlen, "%s: %s", path, inner);
    return cfg;
}

static void free_strings(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void config_free(Config *cfg)
{
    if (!cfg)
        return;
    free(cfg->redis_url);
    free(cfg->key_prefix);
    free(cfg->kafka.brokers);
    free(cfg->kafka.group_id);
    free_strings(cfg->kafka.topics, cfg->kafka.ntopics);
    free(cfg->kafka.dead_letter_topic);
    free_strings(cfg->kafka.property_keys, cfg->kafka.nproperties);
    free_strings(cfg->kafka.property_values, cfg->kafka.nproperties);
    free(cfg->amqp.url);
    free(cfg->amqp.queue);
    free(cfg->amqp.dead_letter_exchange);
    json_decref(cfg->amqp.queue_arguments);
    config_tls_free(&cfg->amqp.tls);
    config_tls_free(&cfg->hooks_tls);
    free(cfg->hooks_url);
    free(cfg->hooks_exchange);
    free(cfg->http_listen);
    free(cfg->http_token);
    for (int i = 0; i < cfg->nrelations; i++) {
        RelationDef *r = &cfg->relations[i];
        free(r->short_name);
        free(r->name);
        free(r->database_a);
        free(r->database_b);
        for (int j = 0; j < r->nproperties; j++) {
            free(r->properties[j].short_name);
            free(r->properties[j].name);
        }
        free(r->thresholds);
    }
    free(cfg->relations);
    free(cfg);
}

const RelationDef *config_relation(const Config *cfg, const char *short_name)
{
    for (int i = 0; i < cfg->nrelations; i++)
        if (strcmp(cfg->relations[i].short_name, short_name) == 0)
            return &cfg->relations[i];
    return NULL;
}

int config_property(const RelationDef *rel, const char *short_name)
{
    for (int i = 0; i < rel->nproperties; i++)
        if (rel->properties[i].short_name && strcmp(rel->properties[i].short_name, short_name) == 0)
            return i;
    return -1;
}

/* ---- reload ---- */

static bool str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool strings_same(char **a, char **b, int n)
{
    for (int i = 0; i < n; i++)
        if (!str_same(a[i], b[i]))
            return false;
    return true;
}

static bool kafka_same(const Config *a, const Config *b)
{
    const KafkaConfig *x = &a->kafka, *y = &b->kafka;
    return a->has_kafka == b->has_kafka && str_same(x->brokers, y->brokers) &&
           str_same(x->group_id, y->group_id) && x->ntopics == y->ntopics &&
           strings_same(x->topics, y->topics, x->ntopics) &&
           str_same(x->dead_letter_topic, y->dead_letter_topic) &&
           x->nproperties == y->nproperties &&
           strings_same(x->property_keys, y->property_keys, x->nproperties) &&
           strings_same(x->property_values, y->property_values, x->nproperties);
}

static void note_change(char *changed, size_t len, const char *what)
{
    size_t used = strlen(changed);
    snprintf(changed + used, len - used, "%s%s", used ? ", " : "", what);
}

static bool dup_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? strdup(src) : NULL;
    return !src || *dst;
}

static bool dup_strings(char ***dst, int *ndst, char *const *src, int n)
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

static bool dup_properties(KafkaConfig *dst, const KafkaConfig *src)
{
    int nk = 0, nv = 0;
    free_strings(dst->property_keys, dst->nproperties);
    free_strings(dst->property_values, dst->nproperties);
    dst->property_keys = dst->property_values = NULL;
    dst->nproperties = 0;
    if (!dup_strings(&dst->property_keys, &nk, src->property_keys, src->nproperties) ||
        !dup_strings(&dst->property_values, &nv, src->property_values, src->nproperties)) {
        free_strings(dst->property_keys, nk);
        free_strings(dst->property_values, nv);
        dst->property_keys = dst->property_values = NULL;
        return false;
    }
    dst->nproperties = src->nproperties;
    return true;
}

/* A secret written in the file: some of [s, end) is not ${NAME}. */
static bool literal_text(const char *s, const char *end)
{
    while (s < end) {
        const char *close = s[0] == '$' && s + 1 < end && s[1] == '{'
                                ? memchr(s + 2, '}', (size_t)(end - s - 2))
                                : NULL;
        if (!close)
            return true;
        s = close + 1;
    }
    return false;
}

/* A URL with a password written in it (not taken from the environment). */
static bool literal_password(const char *url)
{
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return false;
    p += 3;
    const char *end = p + strcspn(p, "/"), *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    const char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    return colon && literal_text(colon + 1, at);
}

/* kafka.properties that hold secrets. */
static bool secret_property(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.jaas") ||
           strstr(key, "ssl.key.pem") || strstr(key, "oauthbearer.config");
}

#define SECRETS_NAMED 16

typedef struct {
    char names[SECRETS_NAMED][300];
    int n; /* may be more than SECRETS_NAMED: those are counted */
} Secrets;

static void name_secret(Secrets *s, const char *fmt, const char *name)
{
    if (s->n < SECRETS_NAMED)
        snprintf(s->names[s->n], sizeof s->names[s->n], fmt, name);
    s->n++;
}

bool config_secret_exposed(const char *path, char *what, size_t len)
{
    struct stat st;
    if (len == 0 || stat(path, &st) != 0 || !(st.st_mode & (S_IRGRP | S_IROTH)))
        return false;
    json_error_t e;
    json_t *root = json_load_file(path, 0, &e);
    if (!root)
        return false;
    Secrets *s = calloc(1, sizeof *s);
    if (!s) {
        json_decref(root);
        snprintf(what, len, "secrets (out of memory naming them; mode %04o)",
                 (unsigned)(st.st_mode & 07777));
        return true;
    }
    static const char *const sections[] = {"redis", "amqp", "hooks"};
    for (size_t i = 0; i < 3; i++) {
        const char *url = json_string_value(json_object_get(json_object_get(root, sections[i]), "url"));
        if (literal_password(url))
            name_secret(s, "the password of %s.url", sections[i]);
    }
    const char *token = json_string_value(json_object_get(json_object_get(root, "http"), "token"));
    if (token && literal_text(token, token + strlen(token)))
        name_secret(s, "%s", "http.token");
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(root, "kafka"), "properties"), key, v) {
        const char *value = json_string_value(v);
        if (secret_property(key) && value && literal_text(value, value + strlen(value)))
            name_secret(s, "kafka.properties.%s", key);
    }
    json_decref(root);
    /* "A", "A and B", "A, B and C", "A, ..., P and 3 more" */
    int named = s->n < SECRETS_NAMED ? s->n : SECRETS_NAMED;
    size_t used = 0;
    what[0] = '\0';
    for (int i = 0; i < named && used < len; i++) {
        const char *sep = i == 0 ? "" : i == s->n - 1 ? " and " : ", ";
        int w = snprintf(what + used, len - used, "%s%s", sep, s->names[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (s->n > named && used < len) {
        int w = snprintf(what + used, len - used, " and %d more", s->n - named);
        used += w > 0 ? (size_t)w : 0;
    }
    if (s->n && used < len)
        snprintf(what + used, len - used, " (mode %04o)", (unsigned)(st.st_mode & 07777));
    bool found = s->n > 0;
    free(s);
    return found;
}

bool config_keep_connections(Config *fresh, const Config *running, char *changed, size_t len)
{
    changed[0] = '\0';
    if (!str_same(fresh->redis_url, running->redis_url) ||
        !str_same(fresh->key_prefix, running->key_prefix) ||
        fresh->redis_timeout_ms != running->redis_timeout_ms ||
        fresh->wait_replicas != running->wait_replicas || fresh->nseeds != running->nseeds ||
        fresh->nsentinels != running->nsentinels ||
        memcmp(fresh->seeds, running->seeds, sizeof fresh->seeds) != 0 ||
        memcmp(fresh->sentinels, running->sentinels, sizeof fresh->sentinels) != 0 ||
        strcmp(fresh->master_name, running->master_name) != 0)
        note_change(changed, len, "redis");
    if (!kafka_same(fresh, running))
        note_change(changed, len, "kafka");
    if (fresh->has_amqp != running->has_amqp || !str_same(fresh->amqp.url, running->amqp.url) ||
        !str_same(fresh->amqp.queue, running->amqp.queue) ||
        /* a default prefetch follows engine.batch_size: not a change of amqp */
        (fresh->amqp.prefetch != running->amqp.prefetch &&
         !(fresh->amqp.prefetch_default && running->amqp.prefetch_default)) ||
        !str_same(fresh->amqp.dead_letter_exchange, running->amqp.dead_letter_exchange) ||
        fresh->amqp.declare != running->amqp.declare ||
        !tls_same(&fresh->amqp.tls, &running->amqp.tls) ||
        !(fresh->amqp.queue_arguments == running->amqp.queue_arguments ||
          (fresh->amqp.queue_arguments && running->amqp.queue_arguments &&
           json_equal(fresh->amqp.queue_arguments, running->amqp.queue_arguments))))
        note_change(changed, len, "amqp");
    if (fresh->has_hooks != running->has_hooks || !str_same(fresh->hooks_url, running->hooks_url) ||
        !str_same(fresh->hooks_exchange, running->hooks_exchange) ||
        fresh->hooks_declare != running->hooks_declare ||
        !tls_same(&fresh->hooks_tls, &running->hooks_tls))
        note_change(changed, len, "hooks");
    if (fresh->has_http != running->has_http || !str_same(fresh->http_listen, running->http_listen))
        note_change(changed, len, "http");

    const KafkaConfig *rk = &running->kafka;
    KafkaConfig *fk = &fresh->kafka;
    fresh->redis = running->redis;
    fresh->redis_timeout_ms = running->redis_timeout_ms;
    fresh->wait_replicas = running->wait_replicas;
    memcpy(fresh->seeds, running->seeds, sizeof fresh->seeds);
    fresh->nseeds = running->nseeds;
    memcpy(fresh->sentinels, running->sentinels, sizeof fresh->sentinels);
    fresh->nsentinels = running->nsentinels;
    memcpy(fresh->master_name, running->master_name, sizeof fresh->master_name);
    fresh->has_kafka = running->has_kafka;
    fresh->has_amqp = running->has_amqp;
    fresh->amqp.prefetch = running->amqp.prefetch;
    fresh->amqp.prefetch_default = running->amqp.prefetch_default;
    fresh->amqp.declare = running->amqp.declare;
    fresh->hooks_declare = running->hooks_declare;
    config_tls_free(&fresh->amqp.tls);
    config_tls_free(&fresh->hooks_tls);
    if (!config_tls_copy(&fresh->amqp.tls, &running->amqp.tls) ||
        !config_tls_copy(&fresh->hooks_tls, &running->hooks_tls))
        return false;
    json_decref(fresh->amqp.queue_arguments);
    fresh->amqp.queue_arguments =
        running->amqp.queue_arguments ? json_deep_copy(running->amqp.queue_arguments) : NULL;
    if (running->amqp.queue_arguments && !fresh->amqp.queue_arguments)
        return false;
    fresh->has_hooks = running->has_hooks;
    fresh->has_http = running->has_http;
    return dup_str(&fresh->redis_url, running->redis_url) &&
           dup_str(&fresh->key_prefix, running->key_prefix) &&
           dup_str(&fk->brokers, rk->brokers) && dup_str(&fk->group_id, rk->group_id) &&
           dup_strings(&fk->topics, &fk->ntopics, rk->topics, rk->ntopics) &&
           dup_str(&fk->dead_letter_topic, rk->dead_letter_topic) &&
           dup_properties(fk, rk) &&
           dup_str(&fresh->amqp.url, running->amqp.url) &&
           dup_str(&fresh->amqp.queue, running->amqp.queue) &&
           dup_str(&fresh->amqp.dead_letter_exchange, running->amqp.dead_letter_exchange) &&
           dup_str(&fresh->hooks_url, running->hooks_url) &&
           dup_str(&fresh->hooks_exchange, running->hooks_exchange) &&
           dup_str(&fresh->http_listen, running->http_listen);
}
