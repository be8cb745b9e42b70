/* config.h — the configuration file: loading by a table of every key
 * (config.c), ${NAME} expansion (expand.c), validation, what a reload keeps
 * (reload.c), the secret-permission warning (secrets.c). A Config belongs to
 * its caller (config_free); no function keeps state between calls; failures
 * are reported by return value with one message naming the JSON path. */
#ifndef RELATIOND_CONFIG_H
#define RELATIOND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_PROPERTIES 11
#define CONFIG_MAX_TOP 20
#define CONFIG_SHORT_MAX 64
#define CONFIG_ERR_MAX 512
/* Batches a source may have in flight at once (daemon/pipeline.h): RabbitMQ
 * confirms persistent messages after writing them to disk, so deep is fast;
 * the default amqp.prefetch covers that many full batches. */
#define CONFIG_BATCHES_IN_FLIGHT 8

typedef enum { PROP_INT, PROP_FLOAT, PROP_BOOL } PropType;
typedef enum { TOP_NONE, TOP_DESC, TOP_ASC } TopOrder;
typedef enum { SIDE_DIRECT = 0, SIDE_REVERSE = 1 } Side;
typedef enum { STAT_COUNT, STAT_TOTAL, STAT_EDGE } ThresholdStat;

typedef struct {
    char *short_name;
    char *name;
    PropType type;
    bool save_amount;
    TopOrder top_order;
    int top_limit;
} PropertyDef;

typedef struct {
    Side side;
    ThresholdStat stat;
    int property;  /* index into properties, -1: the relation count */
    int64_t value; /* in the watched value's units: fixed-point for float totals/edges */
    char name[65]; /* optional ("" none): letters, digits, '_', '-', '.', ' ' */
} ThresholdDef;

typedef struct {
    char *short_name;
    char *name;
    char *database_a;
    char *database_b;
    PropertyDef properties[CONFIG_MAX_PROPERTIES];
    int nproperties;
    ThresholdDef *thresholds;
    int nthresholds;
} RelationDef;

typedef struct {
    char *brokers;
    char *group_id;
    char **topics;
    int ntopics;
    char *dead_letter_topic;
    char **property_keys; /* passed to librdkafka unchanged */
    char **property_values;
    int nproperties;
} KafkaConfig;

/* TLS of an amqps:// connection. */
typedef struct {
    char *ca;    /* CA certificates (PEM); NULL: the system's */
    char *cert;  /* client certificate and key (PEM), or NULL */
    char *key;
    bool verify; /* the server's certificate and host name (default true) */
} TlsConfig;

typedef struct {
    char *url;
    TlsConfig tls;
    char *queue;
    int prefetch;
    bool prefetch_default; /* not in the file: CONFIG_BATCHES_IN_FLIGHT x engine.batch_size */
    char *dead_letter_exchange;
    bool declare;                  /* false: the queue and exchange must exist (passive) */
    struct json_t *queue_arguments; /* more queue.declare arguments, or NULL */
} AmqpConfig;

/* ---- action hooks (config/hooks.c) ---- */

typedef enum { HOOK_AMQP, HOOK_KAFKA, HOOK_HTTP } HookKind;
typedef enum { HOOK_EXCHANGE_TOPIC, HOOK_EXCHANGE_DIRECT } HookExchangeType;
/* The trigger kinds a filter names: the values of TriggerKind
 * (handlers/trigger.h), so a trigger's kind is passed as it is. */
enum { HOOK_ON_ATTACH = 1, HOOK_ON_CHANGE = 2, HOOK_ON_DETACH = 3, HOOK_ON_THRESHOLD = 4 };
#define HOOK_NAME_MAX 64
/* A secret: "whsec_" then the base64 of HOOK_SECRET_MIN..HOOK_SECRET_MAX bytes. */
#define HOOK_SECRET_MIN 24
#define HOOK_SECRET_MAX 64

/* Which triggers a hook receives; each part 0/NULL: all. */
typedef struct {
    char **relations; /* short names; NULL: every relation */
    int nrelations;
    unsigned kinds;      /* bits 1 << HOOK_ON_*; 0: every kind */
    unsigned directions; /* bits 1 << Side; 0: both */
} HookFilter;

/* One hook: hooks[i], or the single object `hooks` (named "default", kind
 * amqp with an exchange). The fields of the other kinds stay 0/NULL (the
 * table's defaults for the numbers). */
typedef struct {
    char *name; /* [a-z0-9_-]{1,64}, unique */
    HookKind kind;
    HookFilter filter;
    int64_t max_backlog;
    int defer_ms; /* while the sources catch up a backlog, the longest a trigger waits */
    int defer_idle_percent; /* while deferred, a batch goes when the CPU was this idle */
    /* amqp and http */
    char *url;
    TlsConfig tls; /* amqps://, https:// */
    /* amqp: exactly one of exchange and queue */
    char *exchange;
    char *queue;
    HookExchangeType exchange_type;
    bool declare;
    /* kafka */
    char *brokers;
    char *topic;
    char **property_keys; /* passed to librdkafka */
    char **property_values;
    int nproperties;
    /* http */
    int batch_size;
    int batch_ms;
    int timeout_ms;
    char *success_regex; /* POSIX extended (checked at load); NULL: any body */
    char *secret;        /* "whsec_<base64>"; NULL: requests are not signed */
    char **header_names; /* sent with every request */
    char **header_values;
    int nheaders;
} HookDef;

typedef struct {
    char user[256];
    char password[256];
    char host[256];
    int port;
    int db;
} RedisUrl;

#define CONFIG_MAX_ADDRS 16

/* host:port */
typedef struct {
    char host[256];
    int port;
} RedisAddr;

typedef struct {
    char *redis_url;
    RedisUrl redis; /* redis_url's parts */
    char *key_prefix;
    int redis_timeout_ms;
    int redis_engine;        /* 0 auto, 1 function, 2 module */
    int wait_replicas; /* WAIT for this many replicas after a batch's writes (0: none) */
    RedisAddr seeds[CONFIG_MAX_ADDRS];     /* more cluster nodes to ask for the map */
    int nseeds;
    RedisAddr sentinels[CONFIG_MAX_ADDRS]; /* Redis Sentinel: who names the primary */
    int nsentinels;
    char master_name[128];

    int64_t tombstone_ttl_s;
    int dedup_ids;
    int batch_size;
    int batch_ms;            /* longest wait to fill a batch */
    int shutdown_timeout_ms; /* SIGTERM: the longest drain */
    int retry_max_ms;        /* cap of the reconnect back-off */
    int log_level;           /* 0 error, 1 warn, 2 info, 3 debug */

    bool has_kafka;
    KafkaConfig kafka;
    bool has_amqp;
    AmqpConfig amqp;
    HookDef *hooks; /* `hooks`: the list, or the single object as hook "default" */
    int nhooks;
    /* The hook relationctl watch and apply --publish use (the daemon
     * delivers to every hook, daemon/hook_deliver.h): "default", else the
     * first of kind amqp with an exchange (hooks_index; -1 and has_hooks
     * false when none). Copies of its settings. */
    bool has_hooks;
    int hooks_index;
    char *hooks_url;
    char *hooks_exchange;
    TlsConfig hooks_tls;
    bool hooks_declare; /* false: the exchange must exist (passive declare) */
    bool has_http;
    char *http_listen;
    char *http_token; /* NULL: /v1/ is open */
    char *http_write_token;  /* NULL: writes take http_token */
    int http_max_body_bytes; /* a POST body beyond: 413 */
    int http_write_timeout_ms; /* a write not stored within: 503 */
    int http_max_writes;     /* writes waiting at once, at most: beyond, 503 */

    RelationDef *relations;
    int nrelations;
} Config;

/* Loads and validates FILE. On failure returns NULL and writes one message
 * naming the file or the JSON path to err. */
/* The same, not reading some sections at all (relationctl: those its
 * command does not use). */
#define CONFIG_SKIP_SOURCES 1u /* kafka, amqp */
#define CONFIG_SKIP_HOOKS 2u
#define CONFIG_SKIP_HTTP 4u
Config *config_load_sections(const char *path, unsigned skip, char *err, size_t errlen)
    __attribute__((warn_unused_result));
Config *config_load(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The same from a JSON text (tests). */
Config *config_parse(const char *text, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void config_free(Config *cfg);

/* A copy of src's strings into dst (false when out of memory); freeing. */
bool config_tls_copy(TlsConfig *dst, const TlsConfig *src) __attribute__((warn_unused_result));
void config_tls_free(TlsConfig *t);

/* True when FILE can be read by other users than its owner and holds secrets
 * written in it, not taken from the environment (some of the value is not
 * ${NAME}): the password of redis.url, amqp.url, hooks.url or hooks[i].url,
 * http.token, http.write_token, a secret kafka property (*password*, *secret*, sasl.jaas*,
 * ssl.key.pem, *oauthbearer.config) of kafka or of a hook, a hook's secret
 * and its headers named *auth*, *token*, *key*, *secret* or *cookie*. what names every one ("A, B and C"; never a value)
 * and the file's mode. */
bool config_secret_exposed(const char *path, char *what, size_t len);

/* A reload: fresh takes copies of running's connection settings (redis,
 * kafka, amqp, hooks, http), which cannot change at run time; running is not
 * touched. changed lists the sections whose settings differed ("" when none).
 * False when out of memory (then fresh is only fit for config_free). */
bool config_keep_connections(Config *fresh, const Config *running, char *changed, size_t len)
    __attribute__((warn_unused_result));

/* True when hook h's filter passes a trigger of relation (short name), side
 * and kind (HOOK_ON_*; another value passes no filter). Pure. */
bool hook_filter_pass(const HookDef *h, const char *relation, Side side, int kind);
/* Whether s is a hook's name: 1..HOOK_NAME_MAX of a-z, 0-9, _ and -. Pure. */
bool hook_name_valid(const char *s);

/* The key of h->secret (base64-decoded after "whsec_") into key
 * (HOOK_SECRET_MAX bytes), *len its bytes; false when h has no valid secret
 * (the loader refuses an invalid one). */
bool config_hook_key(const HookDef *h, unsigned char key[HOOK_SECRET_MAX], size_t *len)
    __attribute__((warn_unused_result));

/* One line describing hook i of cfg (kind, destination without credentials
 * or query, filter, batching), for --check-config and relationctl. */
void config_hook_describe(const Config *cfg, int i, char *out, size_t len);

const RelationDef *config_relation(const Config *cfg, const char *short_name);
int config_property(const RelationDef *rel, const char *short_name);

/* ---- the table: one row per key of the file ----
 * The loader (config.c) takes from it which keys each object may hold,
 * which are required, their types, defaults, bounds and enum names;
 * relationd --dump-config-table prints it as JSON, against which the
 * README's configuration table and config/relationd.schema.json are checked
 * (tests/e2e/test_schema.py). */
typedef enum {
    CFG_STRING,
    CFG_SHORT, /* a string matching [a-z][a-z0-9_]{0,63} */
    CFG_INT,
    CFG_BOOL,
    CFG_ENUM,   /* a string, one of values; stored as its index */
    CFG_NUMBER, /* a threshold's value (read by its section's code) */
    CFG_OBJECT,
    CFG_MAP,    /* an object of free keys (kafka.properties, amqp.queue_arguments) */
    CFG_ARRAY,
} ConfigType;

typedef struct {
    /* the object holding the key: "" the root, "redis", "engine", "kafka",
     * "amqp", "hooks" (the single hook), "hook" (hooks[]), "filter"
     * (hooks[].filter), "http", "tls" (amqp.tls, hooks.tls, hooks[].tls), "relation"
     * (relations[]), "property" (relations[].properties[]), "save_top",
     * "threshold" (relations[].thresholds[]) */
    const char *section;
    const char *key;
    ConfigType type;
    bool required;
    const char *dflt;   /* the default as text (a string's value, a number, true or
                         * false, an enum's name); NULL: none (or computed: see doc) */
    int64_t min, max;   /* CFG_INT (both 0: unbounded here, checked by its section's code) */
    const char *values; /* CFG_ENUM: the names, '|' between them */
    bool reloadable;    /* SIGHUP applies a change (else: restart) */
    size_t offset, size; /* where the table's loader stores it in the section's
                          * struct; size 0: read by the section's own code */
    const char *doc;    /* one line, the README's "meaning" */
} ConfigKey;

extern const ConfigKey config_keys[];
extern const size_t config_nkeys;

/* The table as a JSON array, one object per row, with each row's full JSON
 * path(s) (relationd --dump-config-table). NULL when out of memory; the
 * caller frees it. */
char *config_table_json(void) __attribute__((warn_unused_result));

#endif
