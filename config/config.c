/* config.c — the configuration's table (one row per key: JSON path, type,
 * default, bounds, reloadable, one-line doc) and the section loaders that
 * read a JSON document by it into a Config. Checks every rule, including
 * that each TLS file it names (amqp.tls, hooks.tls, the *.location
 * kafka.properties) opens for reading as this user (so --check-config
 * refuses what would stop the start). Every error names the JSON path of
 * what is wrong. A float threshold value is rounded on its decimal as
 * written, read from the configuration's text (config/jsontext.h): jansson
 * keeps only a double. ${NAME} is expand.c, the reload's rules reload.c,
 * the secret-permission warning secrets.c, the hooks' rules (their rows
 * are here) hooks.c. A Config is owned by the caller
 * (config_free); loading is reentrant (no global state but the const table). */
#include "config/internal.h"
#include "lib/jsontext.h"
#include "lib/fixed.h"
#include "lib/grow.h"

#include <errno.h>
#include <stddef.h>
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

bool fail(Ctx *c, const char *path, const char *fmt, ...)
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
void join(char *out, size_t len, const char *path, const char *key)
{
    snprintf(out, len, "%s%s%s", path, *path ? "." : "", key);
}

void join_index(char *out, size_t len, const char *path, size_t i)
{
    snprintf(out, len, "%s[%zu]", path, i);
}


/* ---- typed getters ---- */

bool get_object(Ctx *c, const json_t *obj, const char *path, const char *key,
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

bool get_string(Ctx *c, const json_t *obj, const char *path, const char *key,
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

bool get_int(Ctx *c, const json_t *obj, const char *path, const char *key,
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

static bool get_short(Ctx *c, const json_t *obj, const char *path, const char *key, char **out)
{
    char sub[PATH_MAX_LEN];
    if (!get_string(c, obj, path, key, true, NULL, out))
        return false;
    if (!valid_short(*out)) {
        join(sub, sizeof sub, path, key);
        return fail(c, sub, "must match [a-z][a-z0-9_]{0,63}");
    }
    return true;
}

/* ---- the table ---- */

/* save_top's keys read by the table ("desc" is 0, "asc" 1). */
typedef struct {
    int order;
} SaveTopRows;

#define ROW(sec, k, t, ...) {.section = (sec), .key = (k), .type = (t), __VA_ARGS__}
#define AT(T, m) .offset = offsetof(T, m), .size = sizeof(((T *)0)->m)
#define RELOAD .reloadable = true
#define REQUIRED .required = true

const ConfigKey config_keys[] = {
    ROW("", "redis", CFG_OBJECT, REQUIRED, .doc = "where the statistics are kept"),
    ROW("", "engine", CFG_OBJECT, RELOAD, .doc = "how events are applied and batched; every key has a default"),
    ROW("", "kafka", CFG_OBJECT, .doc = "the Kafka source; absent: none"),
    ROW("", "amqp", CFG_OBJECT, .doc = "the RabbitMQ source; absent: none"),
    ROW("", "hooks", CFG_OBJECT,
        .doc = "where triggers are delivered: one RabbitMQ exchange (an object), or a list of named hooks (see Action hooks); required with a source"),
    ROW("", "http", CFG_OBJECT, .doc = "the metrics and health endpoint (see Operations) and the read API (see Reading relations); absent: not served"),
    ROW("", "relations", CFG_ARRAY, REQUIRED, RELOAD, .doc = "the relation definitions below"),

    ROW("redis", "url", CFG_STRING, REQUIRED, AT(Config, redis_url),
        .doc = "`redis://[[user]:password@]host[:port][/db]` (checked when the file is loaded; the password may hold `@` and `:`, not `/`; an IPv6 host in brackets)"),
    ROW("redis", "key_prefix", CFG_STRING, .dflt = "rel:", AT(Config, key_prefix),
        .doc = "prefix of every key; must not contain `{` or `}` (the keys' hash tag)"),
    ROW("redis", "timeout_ms", CFG_INT, .dflt = "5000", .min = 1, .max = 3600000,
        AT(Config, redis_timeout_ms), .doc = "connect and command timeout, milliseconds"),
    ROW("redis", "wait_replicas", CFG_INT, .dflt = "0", .min = 0, .max = 16,
        AT(Config, wait_replicas),
        .doc = "after each batch's writes, `WAIT` until this many replicas of every primary hold them (timeout: half of `redis.timeout_ms`); a batch short of them is applied again, nothing of it acknowledged. See [Redis Cluster and replicas](#redis-cluster-and-replicas)"),
    ROW("redis", "seeds", CFG_ARRAY, .max = CONFIG_MAX_ADDRS,
        .doc = "more nodes of a Redis Cluster (`\"host:port\"`, an IPv6 host in brackets) asked for the slot map when the node of `redis.url` does not answer"),
    ROW("redis", "sentinels", CFG_ARRAY, .max = CONFIG_MAX_ADDRS,
        .doc = "Redis Sentinel: the sentinels (`\"host:port\"`) asked in turn for the address of the primary named `redis.master_name`, at start and after every lost connection or `READONLY` reply (a failover); `redis.url` then gives only the user, password and database"),
    ROW("redis", "master_name", CFG_STRING,
        .doc = "Redis Sentinel: the name of the primary (1..127 characters; with `redis.sentinels`)"),
    ROW("redis", "engine", CFG_ENUM, .dflt = "auto", .values = "auto|function|module",
        AT(Config, redis_engine),
        .doc = "which engine applies the events in Redis (see [The Redis module](#the-redis-module); `auto` takes the module when the server has it loaded)"),

    ROW("engine", "tombstone_ttl_s", CFG_INT, RELOAD, .dflt = "604800", .min = 1, .max = 315360000,
        AT(Config, tombstone_ttl_s), .doc = "how long a detached edge remembers its version, seconds (7 days)"),
    ROW("engine", "dedup_ids", CFG_INT, RELOAD, .dflt = "10000", .min = 1, .max = 10000000,
        AT(Config, dedup_ids), .doc = "event ids remembered per profile side for duplicate detection"),
    ROW("engine", "batch_size", CFG_INT, RELOAD, .dflt = "256", .min = 1, .max = 100000,
        AT(Config, batch_size),
        .doc = "most messages per batch (one Redis pipeline, one confirm wait, one commit/ack); a reload may lower it, not raise it above the value at start"),
    ROW("engine", "batch_ms", CFG_INT, RELOAD, .dflt = "100", .min = 1, .max = 60000,
        AT(Config, batch_ms), .doc = "longest time spent taking ready messages into one batch, milliseconds"),
    ROW("engine", "shutdown_timeout_ms", CFG_INT, RELOAD, .dflt = "10000", .min = 100, .max = 3600000,
        AT(Config, shutdown_timeout_ms), .doc = "SIGTERM: the longest drain, milliseconds"),
    ROW("engine", "retry_max_ms", CFG_INT, RELOAD, .dflt = "5000", .min = 10, .max = 3600000,
        AT(Config, retry_max_ms),
        .doc = "cap of the reconnect back-off (Redis, RabbitMQ, dead-letter topic), milliseconds"),
    ROW("engine", "log_level", CFG_ENUM, RELOAD, .dflt = "info", .values = "error|warn|info|debug",
        AT(Config, log_level), .doc = "the least severe messages logged"),

    ROW("kafka", "brokers", CFG_STRING, REQUIRED, AT(KafkaConfig, brokers),
        .doc = "the bootstrap brokers, `host:port,...`"),
    ROW("kafka", "group_id", CFG_STRING, .dflt = "relationd", AT(KafkaConfig, group_id),
        .doc = "the consumer group"),
    ROW("kafka", "topics", CFG_ARRAY, REQUIRED, .doc = "the topics consumed (non-empty strings, at least one)"),
    ROW("kafka", "dead_letter_topic", CFG_STRING, REQUIRED, AT(KafkaConfig, dead_letter_topic),
        .doc = "where events that cannot be applied go"),
    ROW("kafka", "properties", CFG_MAP,
        .doc = "librdkafka properties, passed unchanged (strings, numbers or booleans); those that would break what relationd guarantees are refused, each `*.location` file is checked"),

    ROW("amqp", "url", CFG_STRING, REQUIRED, AT(AmqpConfig, url),
        .doc = "`amqp[s]://[user[:password]@]host[:port][/vhost]`"),
    ROW("amqp", "queue", CFG_STRING, REQUIRED, AT(AmqpConfig, queue), .doc = "the queue consumed"),
    ROW("amqp", "prefetch", CFG_INT, .min = 1, .max = 65535,
        .doc = "`basic.qos` prefetch; default 8 × `engine.batch_size`, at most 65535 (the eight batches a source may have in flight; a smaller prefetch makes smaller batches)"),
    ROW("amqp", "dead_letter_exchange", CFG_STRING, REQUIRED, AT(AmqpConfig, dead_letter_exchange),
        .doc = "the queue's `x-dead-letter-exchange`, a durable fanout exchange; bad messages go there"),
    ROW("amqp", "declare", CFG_BOOL, .dflt = "true", AT(AmqpConfig, declare),
        .doc = "`false`: the queue and the dead-letter exchange must exist and are used as they are"),
    ROW("amqp", "queue_arguments", CFG_MAP,
        .doc = "more `queue.declare` arguments, strings, integers or booleans: `{\"x-queue-type\": \"quorum\"}`"),
    ROW("amqp", "tls", CFG_OBJECT, .doc = "TLS of an `amqps://` url (see TLS)"),

    ROW("tls", "ca", CFG_STRING, AT(TlsConfig, ca),
        .doc = "PEM file of the CA certificates (must be readable); absent: the system's"),
    ROW("tls", "cert", CFG_STRING, AT(TlsConfig, cert),
        .doc = "PEM file of a client certificate (must be readable; with `key`)"),
    ROW("tls", "key", CFG_STRING, AT(TlsConfig, key),
        .doc = "PEM file of the client certificate's key (must be readable; with `cert`)"),
    ROW("tls", "verify", CFG_BOOL, .dflt = "true", AT(TlsConfig, verify),
        .doc = "the server's certificate must chain to `ca` and name the url's host; `false` turns both checks off, for tests only"),

    ROW("hooks", "url", CFG_STRING, REQUIRED, AT(HookDef, url),
        .doc = "`amqp[s]://[user[:password]@]host[:port][/vhost]`"),
    ROW("hooks", "exchange", CFG_STRING, .dflt = "relation.hooks", AT(HookDef, exchange),
        .doc = "the topic exchange triggers are published to"),
    ROW("hooks", "declare", CFG_BOOL, .dflt = "true", AT(HookDef, declare),
        .doc = "`false`: the exchange must exist"),
    ROW("hooks", "tls", CFG_OBJECT, .doc = "TLS of an `amqps://` url (see TLS)"),
    ROW("hooks", "max_backlog", CFG_INT, .dflt = "1000000", .min = 1, .max = 1000000000,
        AT(HookDef, max_backlog),
        .doc = "the most triggers kept for the hook while it cannot take them"),
    ROW("hooks", "defer_ms", CFG_INT, .dflt = "5000", .min = 0, .max = 3600000,
        AT(HookDef, defer_ms),
        .doc = "while the sources catch up a backlog (full batches waiting at the broker), the longest a trigger waits before the hook sends it, so that the CPU applies events first, milliseconds; `0`: at once"),
    ROW("hooks", "defer_idle_percent", CFG_INT, .dflt = "0", .min = 0, .max = 100,
        AT(HookDef, defer_idle_percent),
        .doc = "while a send waits for `defer_ms`, a batch goes anyway when the machine's CPU (every core) was at least this percent idle over the last 100 ms, so that the hooks use what the sources leave; `0`: never"),

    ROW("hook", "name", CFG_STRING, REQUIRED, AT(HookDef, name),
        .doc = "the hook's name, unique: 1..64 of `a-z`, `0-9`, `_`, `-`"),
    ROW("hook", "kind", CFG_ENUM, REQUIRED, .values = "amqp|kafka|http", AT(HookDef, kind),
        .doc = "where the triggers go"),
    ROW("hook", "filter", CFG_OBJECT,
        .doc = "which triggers the hook receives (each list optional; absent: all)"),
    ROW("hook", "url", CFG_STRING, AT(HookDef, url),
        .doc = "amqp: `amqp[s]://[user[:password]@]host[:port][/vhost]`; http: `http[s]://host[:port]/path` the batches are POSTed to (required for both)"),
    ROW("hook", "tls", CFG_OBJECT,
        .doc = "amqp and http: TLS of an `amqps://` or `https://` url (see TLS)"),
    ROW("hook", "exchange", CFG_STRING, AT(HookDef, exchange),
        .doc = "amqp: the exchange every trigger is published to (exactly one of `exchange` and `queue`)"),
    ROW("hook", "queue", CFG_STRING, AT(HookDef, queue),
        .doc = "amqp: the durable queue every trigger is published to"),
    ROW("hook", "exchange_type", CFG_ENUM, .dflt = "topic", .values = "topic|direct",
        AT(HookDef, exchange_type),
        .doc = "amqp with `exchange`: `topic` (routing key `relation.<short>.<direction>.<kind>`) or `direct` (`<database>.<event_type>`)"),
    ROW("hook", "declare", CFG_BOOL, .dflt = "true", AT(HookDef, declare),
        .doc = "amqp: `false`: the exchange or queue must exist"),
    ROW("hook", "brokers", CFG_STRING, AT(HookDef, brokers),
        .doc = "kafka: the bootstrap brokers, `host:port,...` (required)"),
    ROW("hook", "topic", CFG_STRING, AT(HookDef, topic),
        .doc = "kafka: the topic of the triggers' records (required)"),
    ROW("hook", "properties", CFG_MAP,
        .doc = "kafka: librdkafka producer properties (strings, numbers or booleans); those that would break the delivery guarantees are refused, each `*.location` file is checked"),
    ROW("hook", "batch_size", CFG_INT, .dflt = "100", .min = 1, .max = 10000,
        AT(HookDef, batch_size), .doc = "http: the most triggers in one request"),
    ROW("hook", "batch_ms", CFG_INT, .dflt = "1000", .min = 1, .max = 3600000,
        AT(HookDef, batch_ms),
        .doc = "http: the longest wait after the first waiting trigger before a request, milliseconds"),
    ROW("hook", "timeout_ms", CFG_INT, .dflt = "10000", .min = 1, .max = 3600000,
        AT(HookDef, timeout_ms),
        .doc = "http: a request not answered within this (connecting included) failed, milliseconds"),
    ROW("hook", "success_regex", CFG_STRING, AT(HookDef, success_regex),
        .doc = "http: a POSIX extended regular expression a 2xx answer's body must match to count as delivered; absent: any body"),
    ROW("hook", "secret", CFG_STRING, AT(HookDef, secret),
        .doc = "http: `whsec_` and the base64 of 24..64 bytes: requests signed as Standard Webhooks; absent: not signed"),
    ROW("hook", "headers", CFG_MAP,
        .doc = "http: more request headers, an object of strings (`{\"Authorization\": \"Bearer ${TOKEN}\"}`)"),
    ROW("hook", "max_backlog", CFG_INT, .dflt = "1000000", .min = 1, .max = 1000000000,
        AT(HookDef, max_backlog),
        .doc = "the most triggers kept for the hook while it cannot take them"),
    ROW("hook", "defer_ms", CFG_INT, .dflt = "5000", .min = 0, .max = 3600000,
        AT(HookDef, defer_ms),
        .doc = "while the sources catch up a backlog (full batches waiting at the broker), the longest a trigger waits before the hook sends it, so that the CPU applies events first, milliseconds; `0`: at once"),
    ROW("hook", "defer_idle_percent", CFG_INT, .dflt = "0", .min = 0, .max = 100,
        AT(HookDef, defer_idle_percent),
        .doc = "while a send waits for `defer_ms`, a batch goes anyway when the machine's CPU (every core) was at least this percent idle over the last 100 ms, so that the hooks use what the sources leave; `0`: never"),

    ROW("filter", "relations", CFG_ARRAY,
        .doc = "the relations' short names (each a configured relation)"),
    ROW("filter", "kinds", CFG_ARRAY,
        .doc = "the trigger kinds: `attach`, `change`, `detach`, `threshold`"),
    ROW("filter", "directions", CFG_ARRAY, .doc = "the sides: `direct`, `reverse`"),

    ROW("http", "listen", CFG_STRING, REQUIRED, AT(Config, http_listen),
        .doc = "`host:port` (`[::1]:9464`)"),
    ROW("http", "token", CFG_STRING, RELOAD, AT(Config, http_token),
        .doc = "the bearer token `/v1/` and `/api/` require; absent: they are open"),
    ROW("http", "write_token", CFG_STRING, RELOAD, AT(Config, http_write_token),
        .doc = "the bearer token the writes (`/v1/events`, `/api/v1.1/relations/attach` ...) require instead of `token`; absent: `token`"),
    ROW("http", "max_body_bytes", CFG_INT, .dflt = "1048576", .min = 1024, .max = 67108864,
        AT(Config, http_max_body_bytes), .doc = "the largest POST body: beyond, 413"),
    ROW("http", "write_timeout_ms", CFG_INT, .dflt = "10000", .min = 100, .max = 3600000,
        AT(Config, http_write_timeout_ms),
        .doc = "a write not stored within this is answered 503 (retry it with the same id); a POST body not complete within this of its headers closes the connection, milliseconds"),
    ROW("http", "max_writes", CFG_INT, .dflt = "256", .min = 1, .max = 100000,
        AT(Config, http_max_writes), .doc = "write requests waiting at once, at most: beyond, 503 at once"),

    ROW("relation", "short", CFG_SHORT, REQUIRED, RELOAD, AT(RelationDef, short_name),
        .doc = "the relation's short name, unique"),
    ROW("relation", "name", CFG_STRING, RELOAD, AT(RelationDef, name), .doc = "display name"),
    ROW("relation", "database_a", CFG_STRING, REQUIRED, RELOAD, AT(RelationDef, database_a),
        .doc = "the database of side a's profiles"),
    ROW("relation", "database_b", CFG_STRING, REQUIRED, RELOAD, AT(RelationDef, database_b),
        .doc = "the database of side b's profiles"),
    ROW("relation", "properties", CFG_ARRAY, RELOAD, .max = CONFIG_MAX_PROPERTIES,
        .doc = "the properties an edge carries (at most 11)"),
    ROW("relation", "thresholds", CFG_ARRAY, RELOAD, .doc = "the thresholds that publish triggers"),

    ROW("property", "short", CFG_SHORT, REQUIRED, RELOAD, AT(PropertyDef, short_name),
        .doc = "the property's short name, unique within the relation"),
    ROW("property", "name", CFG_STRING, RELOAD, AT(PropertyDef, name), .doc = "display name"),
    ROW("property", "type", CFG_ENUM, REQUIRED, RELOAD, .values = "int|float|bool",
        AT(PropertyDef, type), .doc = "the value's type"),
    ROW("property", "save_amount", CFG_BOOL, RELOAD, .dflt = "false", AT(PropertyDef, save_amount),
        .doc = "keep the sum per profile side (`int` and `float` only)"),
    ROW("property", "save_top", CFG_OBJECT, RELOAD,
        .doc = "keep the profiles with the highest (or lowest) amounts (`int` and `float` only)"),
    ROW("save_top", "order", CFG_ENUM, RELOAD, .dflt = "desc", .values = "desc|asc",
        AT(SaveTopRows, order),
        .doc = "`desc`: highest first; `asc`: lowest first"),
    ROW("save_top", "limit", CFG_INT, REQUIRED, RELOAD, .min = 1, .max = CONFIG_MAX_TOP,
        .doc = "how many profiles are kept"),

    ROW("threshold", "direction", CFG_ENUM, REQUIRED, RELOAD, .values = "direct|reverse",
        AT(ThresholdDef, side), .doc = "the side whose statistic is watched"),
    ROW("threshold", "stat", CFG_ENUM, REQUIRED, RELOAD, .values = "count|total|edge",
        AT(ThresholdDef, stat),
        .doc = "the statistic watched (`count` the relations, or the edges with the property; `total` the property's sum, with `save_amount`; `edge` its value on one edge)"),
    ROW("threshold", "property", CFG_STRING, RELOAD,
        .doc = "a property of the relation; required for `total` and `edge`"),
    ROW("threshold", "value", CFG_NUMBER, REQUIRED, RELOAD,
        .doc = "the value crossed: an integer for `count` and `int`, 0 or 1 (or a boolean) for `bool`, a `float` rounded to 6 decimals as written"),
    ROW("threshold", "name", CFG_STRING, RELOAD,
        .doc = "1..64 letters, digits, `_`, `-`, `.` or spaces, carried in the trigger"),
};
const size_t config_nkeys = sizeof config_keys / sizeof config_keys[0];

/* ---- reading a section by the table ---- */

/* "a, b or c" of an enum's values. */
static void enum_names(const char *values, char *out, size_t len)
{
    size_t used = 0, n = strlen(values);
    out[0] = '\0';
    for (const char *p = values; p < values + n && used < len;) {
        size_t w = strcspn(p, "|");
        const char *next = p + w + (p[w] == '|');
        const char *sep = p == values ? "" : next >= values + n ? " or " : ", ";
        int k = snprintf(out + used, len - used, "%s%.*s", sep, (int)w, p);
        used += k > 0 ? (size_t)k : 0;
        p = next;
    }
}

/* The index of name among the enum's values, -1 when not one of them. */
static int enum_index(const char *values, const char *name)
{
    size_t nl = strlen(name);
    int i = 0;
    for (const char *p = values; *p; i++) {
        size_t w = strcspn(p, "|");
        if (w == nl && strncmp(p, name, nl) == 0)
            return i;
        p += w + (p[w] == '|');
    }
    return -1;
}

/* Stores v in a field of size bytes (an int, an enum or an int64_t). */
static void store_int(void *field, size_t size, int64_t v)
{
    if (size == sizeof(int64_t)) {
        memcpy(field, &v, sizeof v);
    } else {
        int i = (int)v;
        memcpy(field, &i, sizeof i);
    }
}

_Static_assert(sizeof(PropType) == sizeof(int) && sizeof(Side) == sizeof(int) &&
                   sizeof(ThresholdStat) == sizeof(int) && sizeof(HookKind) == sizeof(int) &&
                   sizeof(HookExchangeType) == sizeof(int),
               "enums are stored as int");

/* One row's value from o into base (the row has a place). */
static bool load_row(Ctx *c, const json_t *o, const char *path, const ConfigKey *k, void *base)
{
    void *field = (char *)base + k->offset;
    char sub[PATH_MAX_LEN];
    switch (k->type) {
    case CFG_STRING:
        return get_string(c, o, path, k->key, k->required, k->dflt, (char **)field);
    case CFG_SHORT:
        return get_short(c, o, path, k->key, (char **)field);
    case CFG_BOOL:
        return get_bool(c, o, path, k->key, k->dflt && strcmp(k->dflt, "true") == 0, (bool *)field);
    case CFG_INT: {
        int64_t v;
        if (!get_int(c, o, path, k->key, k->dflt ? strtoll(k->dflt, NULL, 10) : 0, k->min, k->max,
                     &v))
            return false;
        store_int(field, k->size, v);
        return true;
    }
    case CFG_ENUM: {
        char *name = NULL, names[128];
        if (!get_string(c, o, path, k->key, k->required, k->dflt, &name))
            return false;
        int i = name ? enum_index(k->values, name) : 0;
        free(name);
        if (i < 0) {
            enum_names(k->values, names, sizeof names);
            join(sub, sizeof sub, path, k->key);
            return fail(c, sub, "must be %s", names);
        }
        store_int(field, k->size, i);
        return true;
    }
    default:
        return true; /* read by the section's code */
    }
}

/* The keys of section in o (path names o): any other key is refused, then
 * each row that has a place in base is read, in the table's order. */
bool load_rows(Ctx *c, const json_t *o, const char *path, const char *section, void *base)
{
    const char *key;
    json_t *v;
    char sub[PATH_MAX_LEN];
    json_object_foreach((json_t *)o, key, v) {
        bool ok = false;
        for (size_t i = 0; i < config_nkeys && !ok; i++)
            ok = strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].key, key) == 0;
        if (!ok) {
            join(sub, sizeof sub, path, key);
            return fail(c, sub, "unknown key");
        }
    }
    for (size_t i = 0; i < config_nkeys; i++)
        if (strcmp(config_keys[i].section, section) == 0 && config_keys[i].size &&
            !load_row(c, o, path, &config_keys[i], base))
            return false;
    return true;
}

/* The row of section.key (it exists: a key of the table). */
const ConfigKey *row(const char *section, const char *key)
{
    for (size_t i = 0; i < config_nkeys; i++)
        if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].key, key) == 0)
            return &config_keys[i];
    abort(); /* a key missing from the table: a programming error */
}

/* ---- the table as JSON ---- */

/* The JSON paths a section's keys have ("relations[].properties[].KEY"). */
static const struct {
    const char *section;
    const char *prefix[3];
} section_paths[] = {
    {"", {""}},
    {"redis", {"redis."}},
    {"engine", {"engine."}},
    {"kafka", {"kafka."}},
    {"amqp", {"amqp."}},
    {"hooks", {"hooks."}},
    {"http", {"http."}},
    {"hook", {"hooks[]."}},
    {"filter", {"hooks[].filter."}},
    {"tls", {"amqp.tls.", "hooks.tls.", "hooks[].tls."}},
    {"relation", {"relations[]."}},
    {"property", {"relations[].properties[]."}},
    {"save_top", {"relations[].properties[].save_top."}},
    {"threshold", {"relations[].thresholds[]."}},
};

static json_t *row_json(const ConfigKey *k)
{
    static const char *const types[] = {"string", "short", "integer", "boolean", "enum",
                                        "number", "object", "map",    "array"};
    json_t *paths = json_array(), *dflt = NULL, *values = NULL;
    if (!paths)
        goto oom;
    for (size_t s = 0; s < sizeof section_paths / sizeof section_paths[0]; s++)
        if (strcmp(section_paths[s].section, k->section) == 0)
            for (int j = 0; j < 3 && section_paths[s].prefix[j]; j++) {
                char p[PATH_MAX_LEN];
                snprintf(p, sizeof p, "%s%s", section_paths[s].prefix[j], k->key);
                if (json_array_append_new(paths, json_string(p)) != 0)
                    goto oom;
            }
    if (k->dflt)
        dflt = k->type == CFG_INT    ? json_integer(strtoll(k->dflt, NULL, 10))
               : k->type == CFG_BOOL ? json_boolean(strcmp(k->dflt, "true") == 0)
                                     : json_string(k->dflt);
    if (k->type == CFG_ENUM) {
        values = json_array();
        for (const char *p = k->values; values && *p;) {
            size_t w = strcspn(p, "|");
            if (json_array_append_new(values, json_stringn(p, w)) != 0)
                goto oom;
            p += w + (p[w] == '|');
        }
    }
    bool bounded = k->type == CFG_INT && (k->min || k->max);
    json_t *min = bounded ? json_integer(k->min) : json_null();
    json_t *max = bounded || (k->type == CFG_ARRAY && k->max) ? json_integer(k->max) : json_null();
    if ((k->dflt && !dflt) || (k->type == CFG_ENUM && !values) || !min || !max) {
        json_decref(min);
        json_decref(max);
        goto oom;
    }
    /* "o" takes the references, also when json_pack fails */
    return json_pack("{s:s, s:s, s:o, s:s, s:b, s:o, s:o, s:o, s:o, s:b, s:s}", "section",
                     k->section, "key", k->key, "paths", paths, "type", types[k->type],
                     "required", (int)k->required, "default", dflt ? dflt : json_null(),
                     "minimum", min, "maximum", max, "enum", values ? values : json_null(),
                     "reloadable", (int)k->reloadable, "doc", k->doc);
oom:
    json_decref(paths);
    json_decref(dflt);
    json_decref(values);
    return NULL;
}

char *config_table_json(void)
{
    json_t *all = json_array();
    for (size_t i = 0; all && i < config_nkeys; i++)
        if (json_array_append_new(all, row_json(&config_keys[i])) != 0) {
            json_decref(all);
            all = NULL;
        }
    char *text = all ? json_dumps(all, JSON_INDENT(1)) : NULL;
    json_decref(all);
    return text;
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
    json_t *o;
    if (!get_object(c, root, "", "redis", true, &o) || !load_rows(c, o, "redis", "redis", cfg))
        return false;
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
    json_t *o;
    if (!get_object(c, root, "", "engine", false, &o))
        return false;
    if (!o)
        o = json_object(); /* defaults: an empty object */
    else
        json_incref(o);
    if (!o)
        return fail(c, "engine", "out of memory");
    bool ok = load_rows(c, o, "engine", "engine", cfg);
    json_decref(o);
    return ok;
}

/* A file the daemon reads at run time (TLS keys and certificates), checked
 * now so that --check-config refuses what would stop the start: it must
 * open for reading as this user, and be a regular file (or, dir_ok, a
 * directory). */
bool check_file(Ctx *c, const char *path, const char *file, bool dir_ok)
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
bool check_kafka_file(Ctx *c, const char *path, const char *key, const char *value)
{
    size_t n = strlen(key), suffix = strlen(".location");
    if (n < suffix || strcmp(key + n - suffix, ".location") != 0 || !*value)
        return true;
    bool ca = strcmp(key, "ssl.ca.location") == 0;
    if (ca && strcmp(value, "probe") == 0)
        return true;
    return check_file(c, path, value, ca);
}

/* librdkafka properties that would break what relationd guarantees: the
 * key, the values allowed (NULL: none; compared as librdkafka does,
 * ignoring case), and why. */
typedef struct {
    const char *key;
    const char *const allowed[5];
    const char *why;
} KafkaGuard;

#define KAFKA_ACKS_WHY                                                                         \
    "must be all (or -1): an event's offset is committed once its dead letter is "             \
    "acknowledged, and a dead letter acknowledged by fewer than all in-sync replicas could "   \
    "be lost with its broker (relationctl send and redrive rely on it too)"
#define KAFKA_TRANSACTIONAL_WHY                                                                \
    "must not be set: relationd's producers do not use transactions, and a transactional "     \
    "producer refuses every message sent outside one"
/* kafka.properties: the consumer's, and its dead-letter producer's */
static const KafkaGuard kafka_guarded[] = {
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
    {"transactional.id", {NULL}, KAFKA_TRANSACTIONAL_WHY " (no dead letter could be written)"},
    {"offset.store.method", {"broker"},
     "must be broker: relationd commits offsets to the group in the cluster"},
    {"group.id", {NULL}, "is kafka.group_id"},
    {"bootstrap.servers", {NULL}, "is kafka.brokers"},
    {"metadata.broker.list", {NULL}, "is kafka.brokers"},
};

#define HOOK_ACKS_WHY                                                                          \
    "must be all (or -1): a trigger acknowledged by fewer than all in-sync replicas could be " \
    "lost with its broker"
/* hooks[].properties: a producer's */
static const KafkaGuard hook_guarded[] = {
    {"acks", {"all", "-1"}, HOOK_ACKS_WHY},
    {"request.required.acks", {"all", "-1"}, HOOK_ACKS_WHY},
    {"enable.idempotence", {"true"},
     "must be true: a record sent again after an error is written once, in order"},
    {"transactional.id", {NULL}, KAFKA_TRANSACTIONAL_WHY},
    {"bootstrap.servers", {NULL}, "is the hook's brokers"},
    {"metadata.broker.list", {NULL}, "is the hook's brokers"},
};

/* A property's value as librdkafka takes it: strings as they are, numbers
 * and booleans as their text; NULL (with *why) otherwise or when a guard
 * refuses it. */
static char *kafka_value(const char *key, const json_t *v, const KafkaGuard *guards,
                         size_t nguards, const char **why)
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
    for (size_t i = 0; i < nguards; i++) {
        if (strcmp(key, guards[i].key) != 0)
            continue;
        bool ok = false;
        for (const char *const *a = guards[i].allowed; *a && !ok; a++)
            ok = strcasecmp(text, *a) == 0;
        if (!ok) {
            *why = guards[i].why;
            return NULL;
        }
    }
    char *out = strdup(text);
    if (!out)
        *why = "out of memory";
    return out;
}

bool load_kafka_properties(Ctx *c, const json_t *o, const char *path, bool producer,
                           char ***keys, char ***values, int *n)
{
    json_t *props, *v;
    char where[PATH_MAX_LEN], sub[PATH_MAX_LEN];
    const char *key;
    if (!get_object(c, o, path, "properties", false, &props))
        return false;
    if (!props || json_object_size(props) == 0)
        return true;
    join(where, sizeof where, path, "properties");
    size_t count = json_object_size(props);
    *keys = calloc(count, sizeof **keys);
    *values = calloc(count, sizeof **values);
    if (!*keys || !*values)
        return fail(c, where, "out of memory");
    json_object_foreach(props, key, v) {
        const char *why = NULL;
        join(sub, sizeof sub, where, key);
        char *value = producer ? kafka_value(key, v, hook_guarded,
                                             sizeof hook_guarded / sizeof hook_guarded[0], &why)
                               : kafka_value(key, v, kafka_guarded,
                                             sizeof kafka_guarded / sizeof kafka_guarded[0], &why);
        if (!value)
            return fail(c, sub, "%s", why);
        (*values)[*n] = value;
        (*keys)[*n] = strdup(key);
        (*n)++;
        if (!(*keys)[*n - 1])
            return fail(c, sub, "out of memory");
        if (!check_kafka_file(c, sub, key, value))
            return false;
    }
    return true;
}

static bool load_kafka(Ctx *c, const json_t *root, Config *cfg)
{
    json_t *o, *topics;
    char sub[PATH_MAX_LEN];
    KafkaConfig *k = &cfg->kafka;
    if (!get_object(c, root, "", "kafka", false, &o))
        return false;
    if (!o)
        return true;
    cfg->has_kafka = true;
    if (!load_rows(c, o, "kafka", "kafka", k))
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
    return load_kafka_properties(c, o, "kafka", false, &k->property_keys, &k->property_values,
                                 &k->nproperties);
}

/* An AMQP URL as the daemon parses it (rabbitmq-c's amqp_parse_url), so
 * that --check-config refuses what the daemon could not use. */
bool check_amqp_url(Ctx *c, const char *path, const char *url)
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

bool config_tls_copy(TlsConfig *dst, const TlsConfig *src)
{
    dst->verify = src->verify;
    return dup_str(&dst->ca, src->ca) && dup_str(&dst->cert, src->cert) &&
           dup_str(&dst->key, src->key);
}

bool config_tls_same(const TlsConfig *a, const TlsConfig *b)
{
    return a->verify == b->verify && str_same(a->ca, b->ca) && str_same(a->cert, b->cert) &&
           str_same(a->key, b->key);
}

void config_tls_free(TlsConfig *t)
{
    free(t->ca);
    free(t->cert);
    free(t->key);
    memset(t, 0, sizeof *t);
}

bool load_tls(Ctx *c, const json_t *o, const char *section, const char *url,
              const char *scheme, TlsConfig *t)
{
    char path[PATH_MAX_LEN], sub[PATH_MAX_LEN];
    json_t *tls;
    t->verify = true;
    join(path, sizeof path, section, "tls");
    if (!get_object(c, o, section, "tls", false, &tls))
        return false;
    if (!tls)
        return true;
    if (strncmp(url, scheme, strlen(scheme)) != 0)
        return fail(c, path, "only with an %s url", scheme);
    if (!load_rows(c, tls, path, "tls", t))
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
    const ConfigKey *pf = row("amqp", "prefetch");
    json_t *o, *args;
    int64_t prefetch;
    if (!get_object(c, root, "", "amqp", false, &o))
        return false;
    if (!o)
        return true;
    cfg->has_amqp = true;
    if (!load_rows(c, o, "amqp", "amqp", &cfg->amqp) ||
        /* Default: enough deliveries for every batch in flight to be full. */
        !get_int(c, o, "amqp", "prefetch",
                 (int64_t)cfg->batch_size * CONFIG_BATCHES_IN_FLIGHT > pf->max
                     ? pf->max
                     : (int64_t)cfg->batch_size * CONFIG_BATCHES_IN_FLIGHT,
                 pf->min, pf->max, &prefetch))
        return false;
    cfg->amqp.prefetch = (int)prefetch;
    cfg->amqp.prefetch_default = !json_object_get(o, "prefetch");
    if (!get_object(c, o, "amqp", "queue_arguments", false, &args))
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
           load_tls(c, o, "amqp", cfg->amqp.url, "amqps://", &cfg->amqp.tls);
}

static bool load_http(Ctx *c, const json_t *root, Config *cfg)
{
    json_t *o;
    if (!get_object(c, root, "", "http", false, &o))
        return false;
    if (o) {
        cfg->has_http = true;
        if (!load_rows(c, o, "http", "http", cfg))
            return false;
        if (cfg->http_token && !*cfg->http_token)
            return fail(c, "http.token", "must not be empty (leave it out for no token)");
        if (cfg->http_write_token && !*cfg->http_write_token)
            return fail(c, "http.write_token", "must not be empty (leave it out for none)");
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
    char sub[PATH_MAX_LEN];
    json_t *top;

    if (!json_is_object(o))
        return fail(c, path, "must be an object");
    if (!load_rows(c, o, path, "property", p))
        return false;
    if (p->save_amount && p->type == PROP_BOOL) {
        join(sub, sizeof sub, path, "save_amount");
        return fail(c, sub, "only for int or float properties");
    }
    if (!get_object(c, o, path, "save_top", false, &top))
        return false;
    p->top_order = TOP_NONE;
    if (top) {
        SaveTopRows st;
        const ConfigKey *lk = row("save_top", "limit");
        join(sub, sizeof sub, path, "save_top");
        if (p->type == PROP_BOOL)
            return fail(c, sub, "only for int or float properties");
        if (!load_rows(c, top, sub, "save_top", &st))
            return false;
        p->top_order = st.order == 0 ? TOP_DESC : TOP_ASC;
        json_t *lv = json_object_get(top, "limit");
        join(sub, sizeof sub, path, "save_top.limit");
        if (!lv)
            return fail(c, sub, "required");
        if (!json_is_integer(lv) || json_integer_value(lv) < lk->min ||
            json_integer_value(lv) > lk->max)
            return fail(c, sub, "must be %lld..%lld", (long long)lk->min, (long long)lk->max);
        p->top_limit = (int)json_integer_value(lv);
    }
    return true;
}

/* o is the threshold, raw its text in c->text (NULL: not found there). */
static bool load_threshold(Ctx *c, const json_t *o, const char *raw, const char *path,
                           RelationDef *rel, ThresholdDef *t)
{
    char *prop = NULL, *name = NULL;
    char sub[PATH_MAX_LEN];
    bool ok = false;

    if (!json_is_object(o))
        return fail(c, path, "must be an object");
    if (!load_rows(c, o, path, "threshold", t) ||
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
    join(sub, sizeof sub, path, "property");
    t->property = -1;
    if (prop) {
        t->property = config_property(rel, prop);
        if (t->property < 0) {
            fail(c, sub, "no property \"%s\" in relation %s", prop, rel->short_name);
            goto done;
        }
    } else if (t->stat != STAT_COUNT) {
        fail(c, sub, "required for stat %s", t->stat == STAT_TOTAL ? "total" : "edge");
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
    free(prop);
    return ok;
}

/* o is the relation, raw its text in c->text (NULL: not found there). */
static bool load_relation(Ctx *c, const json_t *o, const char *raw, const char *path,
                          RelationDef *rel)
{
    char sub[PATH_MAX_LEN], item[PATH_MAX_LEN];
    size_t i;
    json_t *v;

    if (!json_is_object(o))
        return fail(c, path, "must be an object");
    if (!load_rows(c, o, path, "relation", rel))
        return false;

    json_t *props = json_object_get(o, "properties");
    join(sub, sizeof sub, path, "properties");
    if (props && !json_is_array(props))
        return fail(c, sub, "must be an array");
    if (props && json_array_size(props) > CONFIG_MAX_PROPERTIES)
        return fail(c, sub, "at most %d properties", CONFIG_MAX_PROPERTIES);
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
    if (!expand_all(c, root, "") || !load_rows(c, root, "", "", cfg) || !load_redis(c, root, cfg) ||
        !load_engine(c, root, cfg) || !load_kafka(c, root, cfg) || !load_amqp(c, root, cfg) ||
        !load_http(c, root, cfg) || !load_relations(c, root, cfg) || !load_hooks(c, root, cfg)) {
        config_free(cfg);
        return NULL;
    }
    if ((cfg->has_kafka || cfg->has_amqp) && !cfg->nhooks) {
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
    size_t cap = 0, n = 0;
    char *buf = NULL;
    bool oom = false;
    for (;;) {
        /* room for 4 KiB more and the NUL */
        if (!GROW_RESERVE(buf, cap, n + 4097, 4096)) {
            oom = true;
            break;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (oom) {
        free(buf);
        buf = NULL;
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
    size_t len = 0;
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
    hooks_free(cfg);
    free(cfg->http_listen);
    free(cfg->http_token);
    free(cfg->http_write_token);
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

void free_strings(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

bool str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool dup_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? strdup(src) : NULL;
    return !src || *dst;
}

