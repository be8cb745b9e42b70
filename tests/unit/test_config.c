/* test_config.c — config_parse: every rule, every message, the parsed fields.
 *
 * The JSON texts of the table are written with single quotes for readability;
 * they are turned into double quotes before parsing (no case needs a literal
 * single quote). Expected messages are compared exactly. */
#include "tests/unit/helpers.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

#include <jansson.h>

/* ---- helpers ---- */

static int streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* A check returns NULL when the parsed configuration is as expected, else the
 * condition that did not hold. */
typedef const char *(*Check)(const Config *c);
#define EXPECT(cond)                                                                           \
    do {                                                                                       \
        if (!(cond))                                                                           \
            return #cond;                                                                      \
    } while (0)

typedef struct {
    const char *name;
    const char *json;  /* single quotes stand for double quotes */
    const char *error; /* exact message, or NULL: valid */
    Check check;       /* valid cases: optional field checks */
} Case;

/* ---- building blocks (single-quoted JSON) ---- */

#define REDIS "'redis':{'url':'redis://localhost'}"
#define URL_FORM "redis.url: must be redis://[[user]:password@]host[:port][/db] (an IPv6 host in brackets: [::1])"
#define CFG(...) "{" REDIS "," __VA_ARGS__ "}"
#define RELS(...) "'relations':[" __VA_ARGS__ "]"
#define REL_HEAD "'short':'r','database_a':'a','database_b':'b'"
#define REL(...) "{" REL_HEAD __VA_ARGS__ "}"
#define PROPS(...) ",'properties':[" __VA_ARGS__ "]"
#define THS(...) ",'thresholds':[" __VA_ARGS__ "]"
/* One relation with these properties. */
#define WITH_PROPS(...) CFG(RELS(REL(PROPS(__VA_ARGS__))))

/* Threshold fixtures: f float+amount, i int+amount, b bool, n int without amount. */
#define PF "{'short':'f','type':'float','save_amount':true}"
#define PI "{'short':'i','type':'int','save_amount':true}"
#define PB "{'short':'b','type':'bool'}"
#define PN "{'short':'n','type':'int'}"
#define WITH_THS(...) CFG(RELS(REL(PROPS(PF "," PI "," PB "," PN) THS(__VA_ARGS__))))
#define TH(dir, stat, rest) "{'direction':'" dir "','stat':'" stat "'" rest "}"

#define PINT(s) "{'short':'" s "','type':'int'}"
#define P11                                                                                    \
    PINT("p1") "," PINT("p2") "," PINT("p3") "," PINT("p4") "," PINT("p5") "," PINT("p6")      \
        "," PINT("p7") "," PINT("p8") "," PINT("p9") "," PINT("p10") "," PINT("p11")

#define X8 "abcdefgh"
#define X64 X8 X8 X8 X8 X8 X8 X8 X8 /* 64 bytes, a valid short */
#define X65 X64 "x"

#define PATH_PROP3 "relations[0].properties[3]"
#define PROPS3(top) PINT("p0") "," PINT("p1") "," PINT("p2") ",{'short':'p3','type':'int'" top "}"

/* ---- checks of valid cases ---- */

static const char *check_defaults(const Config *c)
{
    EXPECT(streq(c->redis_url, "redis://localhost"));
    EXPECT(streq(c->key_prefix, "rel:"));
    EXPECT(c->redis_timeout_ms == 5000);
    EXPECT(c->tombstone_ttl_s == 604800);
    EXPECT(c->dedup_ids == 10000);
    EXPECT(c->batch_size == 256);
    EXPECT(c->batch_ms == 100 && c->shutdown_timeout_ms == 10000 && c->retry_max_ms == 5000);
    EXPECT(!c->has_kafka && !c->has_amqp && !c->has_hooks && !c->has_http);
    EXPECT(c->nrelations == 0);
    return NULL;
}

static const char *check_engine_set(const Config *c)
{
    EXPECT(c->tombstone_ttl_s == 60);
    EXPECT(c->dedup_ids == 5);
    EXPECT(c->batch_size == 100000);
    EXPECT(streq(c->key_prefix, ""));
    EXPECT(c->redis_timeout_ms == 3600000);
    return NULL;
}

static const char *check_hooks_default(const Config *c)
{
    EXPECT(c->has_hooks);
    EXPECT(streq(c->hooks_url, "amqps://h/%2f"));
    EXPECT(streq(c->hooks_exchange, "relation.hooks"));
    EXPECT(c->hooks_declare);
    EXPECT(c->hooks_tls.verify && !c->hooks_tls.ca && !c->hooks_tls.cert);
    return NULL;
}

static const char *check_hooks_tls(const Config *c)
{
    EXPECT(streq(c->hooks_tls.ca, "/etc/hostname") && streq(c->hooks_tls.cert, "/etc/hostname"));
    EXPECT(streq(c->hooks_tls.key, "/etc/hostname") && !c->hooks_tls.verify);
    return NULL;
}

static const char *check_provisioned(const Config *c)
{
    EXPECT(!c->amqp.declare && !c->hooks_declare);
    EXPECT(c->amqp.queue_arguments == NULL);
    return NULL;
}

static const char *check_queue_arguments(const Config *c)
{
    EXPECT(c->amqp.declare);
    const json_t *a = c->amqp.queue_arguments;
    EXPECT(a && json_object_size(a) == 3);
    EXPECT(streq(json_string_value(json_object_get(a, "x-queue-type")), "quorum"));
    EXPECT(json_integer_value(json_object_get(a, "x-delivery-limit")) == 20);
    EXPECT(json_is_true(json_object_get(a, "x-single-active-consumer")));
    return NULL;
}

static const char *check_kafka_default(const Config *c)
{
    EXPECT(c->has_kafka);
    EXPECT(streq(c->kafka.group_id, "relationd"));
    EXPECT(c->kafka.ntopics == 2);
    EXPECT(streq(c->kafka.topics[0], "t1") && streq(c->kafka.topics[1], "t2"));
    EXPECT(c->kafka.nproperties == 0);
    return NULL;
}

static const char *check_amqp_default(const Config *c)
{
    EXPECT(c->has_amqp);
    EXPECT(c->amqp.prefetch == 8 * 256); /* eight full batches of the default size */
    EXPECT(streq(c->amqp.url, "amqps://h"));
    EXPECT(c->amqp.declare && c->amqp.queue_arguments == NULL);
    return NULL;
}

static const char *check_http_v6(const Config *c)
{
    EXPECT(c->has_http);
    EXPECT(streq(c->http_listen, "[::1]:9464"));
    return NULL;
}

static const char *check_short64(const Config *c)
{
    EXPECT(c->nrelations == 1);
    EXPECT(streq(c->relations[0].short_name, X64));
    EXPECT(strlen(c->relations[0].short_name) == 64);
    return NULL;
}

static const char *check_11_props(const Config *c)
{
    EXPECT(c->nrelations == 1 && c->relations[0].nproperties == 11);
    EXPECT(streq(c->relations[0].properties[10].short_name, "p11"));
    EXPECT(c->relations[0].properties[10].type == PROP_INT);
    return NULL;
}

static const char *check_top_limit_1(const Config *c)
{
    const PropertyDef *p = &c->relations[0].properties[3];
    EXPECT(p->top_limit == 1 && p->top_order == TOP_ASC);
    return NULL;
}

static const char *check_top_limit_20(const Config *c)
{
    const PropertyDef *p = &c->relations[0].properties[3];
    EXPECT(p->top_limit == 20 && p->top_order == TOP_DESC);
    return NULL;
}

static const char *check_top_order_default(const Config *c)
{
    const PropertyDef *p = &c->relations[0].properties[0];
    EXPECT(p->top_order == TOP_DESC && p->top_limit == 3);
    EXPECT(!p->save_amount);
    return NULL;
}

static const char *check_bool_no_amount(const Config *c)
{
    const PropertyDef *p = &c->relations[0].properties[0];
    EXPECT(p->type == PROP_BOOL && !p->save_amount && p->top_order == TOP_NONE);
    return NULL;
}

static const char *check_no_props(const Config *c)
{
    EXPECT(c->nrelations == 2);
    EXPECT(c->relations[0].nproperties == 0 && c->relations[0].nthresholds == 0);
    EXPECT(c->relations[0].name == NULL);
    EXPECT(streq(c->relations[1].short_name, "s"));
    return NULL;
}

/* The first threshold of relation 0. */
static const ThresholdDef *th0(const Config *c)
{
    return c->relations[0].nthresholds == 1 ? &c->relations[0].thresholds[0] : NULL;
}

static const char *check_th_count_relation(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t);
    EXPECT(t->side == SIDE_REVERSE && t->stat == STAT_COUNT && t->property == -1);
    EXPECT(t->value == 5);
    return NULL;
}

static const char *check_th_count_max(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->value == 2147483647 && t->property == -1);
    return NULL;
}

static const char *check_th_count_min(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->value == -2147483647);
    return NULL;
}

static const char *check_th_count_prop(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->stat == STAT_COUNT && t->property == 2 && t->value == 3);
    return NULL;
}

static const char *check_th_count_float_prop(const Config *c)
{
    const ThresholdDef *t = th0(c);
    /* a count is a number of edges, never fixed-point */
    EXPECT(t && t->stat == STAT_COUNT && t->property == 0 && t->value == 7);
    return NULL;
}

static const char *check_th_total_int_max(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->stat == STAT_TOTAL && t->property == 1 && t->value == 9007199254740991LL);
    return NULL;
}

static const char *check_th_total_float(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->stat == STAT_TOTAL && t->property == 0);
    EXPECT(t->value == 1000500000LL); /* 1000.5 x 10^6 */
    return NULL;
}

static const char *check_th_total_float_max(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->value == 9007199254LL * 1000000LL);
    return NULL;
}

static const char *check_th_edge_int_max(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->stat == STAT_EDGE && t->property == 1 && t->value == 1000000000000000LL);
    EXPECT(t->side == SIDE_DIRECT);
    return NULL;
}

static const char *check_th_edge_float(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->stat == STAT_EDGE && t->property == 0 && t->value == -2500000LL);
    return NULL;
}

static const char *check_th_edge_float_int(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->value == 1000000000LL * 1000000LL);
    return NULL;
}

static const char *check_th_edge_float_round(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->value == 1234568); /* 1.2345675 rounded half away from zero */
    return NULL;
}

static const char *check_th_edge_float_text(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->value == 499999); /* 0.49999949999999999 on its digits, not 0.5 */
    return NULL;
}

static const char *check_th_edge_float_max_rounded(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->value == 1000000000LL * 1000000LL); /* rounded, then in range */
    return NULL;
}

/* Each float threshold's own text, wherever it is written and however its
 * key is spelled. */
static const char *check_th_float_found(const Config *c)
{
    EXPECT(c->nrelations == 2 && c->relations[0].nthresholds == 1);
    EXPECT(c->relations[0].thresholds[0].value == 2); /* 0.0000015 */
    const RelationDef *r = &c->relations[1];
    EXPECT(r->nthresholds == 3);
    EXPECT(r->thresholds[0].stat == STAT_COUNT && r->thresholds[0].value == 3);
    EXPECT(r->thresholds[1].value == 499999);
    EXPECT(streq(r->thresholds[1].name, "value"));
    EXPECT(r->thresholds[2].stat == STAT_TOTAL && r->thresholds[2].value == -1234567);
    return NULL;
}

static const char *check_th_edge_bool_0(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->stat == STAT_EDGE && t->property == 2 && t->value == 0);
    return NULL;
}

static const char *check_th_edge_bool_1(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->property == 2 && t->value == 1);
    return NULL;
}

static const char *check_th_edge_bool_true(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->property == 2 && t->value == 1);
    return NULL;
}

static const char *check_th_edge_bool_false(const Config *c)
{
    const ThresholdDef *t = th0(c);
    EXPECT(t && t->property == 2 && t->value == 0);
    return NULL;
}

static const char *check_env_url(const Config *c)
{
    EXPECT(streq(c->redis_url, "redis://:s3cret@127.0.0.1:6379/0"));
    /* the URL's parts, as the connection uses them */
    EXPECT(streq(c->redis.host, "127.0.0.1") && c->redis.port == 6379 && c->redis.db == 0);
    EXPECT(streq(c->redis.user, "") && streq(c->redis.password, "s3cret"));
    return NULL;
}

static const char *check_kafka_texts(const Config *c)
{
    EXPECT(c->kafka.nproperties == 4);
    const char *want[][2] = {{"session.timeout.ms", "6000"}, {"check.crcs", "true"},
                             {"enable.auto.commit", "false"}, {"socket.timeout.ms", "30000"}};
    for (int w = 0; w < 4; w++) {
        int found = 0;
        for (int i = 0; i < 4; i++)
            found += streq(c->kafka.property_keys[i], want[w][0]) &&
                     streq(c->kafka.property_values[i], want[w][1]);
        EXPECT(found == 1);
    }
    return NULL;
}

static const char *check_url_parts(const Config *c)
{
    EXPECT(streq(c->redis.user, "app") && streq(c->redis.password, "p@ss:w"));
    EXPECT(streq(c->redis.host, "10.0.0.5") && c->redis.port == 6380 && c->redis.db == 3);
    return NULL;
}

static const char *check_url_ipv6(const Config *c)
{
    EXPECT(streq(c->redis.user, "u") && streq(c->redis.password, "pw"));
    EXPECT(streq(c->redis.host, "::1") && c->redis.port == 6390 && c->redis.db == 2);
    return NULL;
}

static const char *check_url_ipv6_default_port(const Config *c)
{
    EXPECT(streq(c->redis.host, "fe80::1") && c->redis.port == 6379 && c->redis.db == 0);
    return NULL;
}

static const char *check_scale(const Config *c)
{
    EXPECT(c->wait_replicas == 2 && c->nseeds == 2 && c->nsentinels == 1);
    EXPECT(streq(c->seeds[0].host, "10.0.0.2") && c->seeds[0].port == 7001);
    EXPECT(streq(c->seeds[1].host, "::1") && c->seeds[1].port == 7002);
    EXPECT(streq(c->sentinels[0].host, "s1") && c->sentinels[0].port == 26379);
    EXPECT(streq(c->master_name, "main"));
    return NULL;
}

static const char *check_url_defaults(const Config *c)
{
    EXPECT(streq(c->redis.user, "") && streq(c->redis.password, ""));
    EXPECT(streq(c->redis.host, "h") && c->redis.port == 6379 && c->redis.db == 0);
    return NULL;
}

static const char *check_env_whole(const Config *c)
{
    EXPECT(streq(c->redis_url, "redis://127.0.0.1"));
    EXPECT(streq(c->key_prefix, "s3cret"));
    return NULL;
}

static const char *check_env_empty(const Config *c)
{
    EXPECT(streq(c->redis_url, "redis://h"));
    EXPECT(streq(c->key_prefix, "a$b$"));
    return NULL;
}

static const char *check_env_not_recursive(const Config *c)
{
    EXPECT(c->nrelations == 1 && streq(c->relations[0].name, "${RELD_T_UNSET}:"));
    return NULL;
}

static const char *check_env_nested(const Config *c)
{
    EXPECT(c->nrelations == 1);
    EXPECT(streq(c->relations[0].short_name, "orders"));
    EXPECT(streq(c->relations[0].database_a, "db_127.0.0.1"));
    EXPECT(streq(c->relations[0].properties[0].name, "s3cret s3cret"));
    EXPECT(c->has_kafka && c->kafka.ntopics == 2 && streq(c->kafka.topics[1], "orders"));
    EXPECT(c->kafka.nproperties == 1 && streq(c->kafka.property_values[0], "s3cret"));
    EXPECT(c->relations[0].nthresholds == 1 && c->relations[0].thresholds[0].property == 0);
    return NULL;
}

/* ---- the table ---- */

static const Case cases[] = {
    /* JSON and root */
    {"not JSON", "{'redis':", "line 1 column 9: unexpected token near end of file", NULL},
    {"JSON garbage", "relations", "line 1 column 9: '[' or '{' expected near 'relations'", NULL},
    {"empty text", "", "line 1 column 0: '[' or '{' expected near end of file", NULL},
    {"duplicate key in JSON", "{" REDIS "," REDIS ",'relations':[]}",
     "line 1 column 44: duplicate object key near '\"redis\"'", NULL},
    {"root is an array", "[]", "(root): must be an object", NULL},
    {"unknown root key", CFG("'relations':[],'bogus':1"), "bogus: unknown key", NULL},
    {"unknown root key: misspelt", CFG("'relation':[]"), "relation: unknown key", NULL},
    {"minimal config: defaults", CFG("'relations':[]"), NULL, check_defaults},

    /* redis */
    {"redis missing", "{'relations':[]}", "redis: required", NULL},
    {"redis not an object", "{'redis':'redis://h','relations':[]}", "redis: must be an object",
     NULL},
    {"redis unknown key", "{'redis':{'url':'redis://h','host':'h'},'relations':[]}",
     "redis.host: unknown key", NULL},
    {"redis.url missing", "{'redis':{'key_prefix':'x'},'relations':[]}", "redis.url: required",
     NULL},
    {"redis.url empty", "{'redis':{'url':''},'relations':[]}", "redis.url: must not be empty",
     NULL},
    {"redis.url not a string", "{'redis':{'url':6379},'relations':[]}",
     "redis.url: must be a string", NULL},
    {"redis.url http scheme", "{'redis':{'url':'http://h:6379'},'relations':[]}",
     "redis.url: must start with redis://", NULL},
    {"redis.url no scheme", "{'redis':{'url':'127.0.0.1:6379'},'relations':[]}",
     "redis.url: must start with redis://", NULL},
    {"redis.url uppercase scheme", "{'redis':{'url':'REDIS://h'},'relations':[]}",
     "redis.url: must start with redis://", NULL},
    {"redis.url with user, password, port, db",
     "{'redis':{'url':'redis://app:p@ss:w@10.0.0.5:6380/3'},'relations':[]}", NULL,
     check_url_parts},
    {"redis.url defaults", "{'redis':{'url':'redis://h'},'relations':[]}", NULL,
     check_url_defaults},
    {"redis.url IPv6 literal", "{'redis':{'url':'redis://u:pw@[::1]:6390/2'},'relations':[]}",
     NULL, check_url_ipv6},
    {"redis.url IPv6 literal without port", "{'redis':{'url':'redis://[fe80::1]'},'relations':[]}",
     NULL, check_url_ipv6_default_port},
    {"redis.url without host", "{'redis':{'url':'redis://'},'relations':[]}", URL_FORM, NULL},
    {"redis.url port 0", "{'redis':{'url':'redis://h:0'},'relations':[]}", URL_FORM, NULL},
    {"redis.url port 99999", "{'redis':{'url':'redis://h:99999'},'relations':[]}", URL_FORM,
     NULL},
    {"redis.url db not a number", "{'redis':{'url':'redis://h/x'},'relations':[]}", URL_FORM,
     NULL},
    {"redis.url IPv6 unclosed", "{'redis':{'url':'redis://[::1:6379'},'relations':[]}", URL_FORM,
     NULL},
    {"redis.url IPv6 empty", "{'redis':{'url':'redis://[]:6379'},'relations':[]}", URL_FORM,
     NULL},
    {"redis.url IPv6 text after ]", "{'redis':{'url':'redis://[::1]x:6379'},'relations':[]}",
     URL_FORM, NULL},
    {"redis.url IPv6 without brackets", "{'redis':{'url':'redis://::1:6379'},'relations':[]}",
     URL_FORM, NULL},
    {"redis.key_prefix with {", "{'redis':{'url':'redis://h','key_prefix':'a{'},'relations':[]}",
     "redis.key_prefix: must not contain { or } (the keys' hash tag)", NULL},
    {"redis.key_prefix with }", "{'redis':{'url':'redis://h','key_prefix':'}'},'relations':[]}",
     "redis.key_prefix: must not contain { or } (the keys' hash tag)", NULL},
    {"redis.key_prefix not a string",
     "{'redis':{'url':'redis://h','key_prefix':1},'relations':[]}",
     "redis.key_prefix: must be a string", NULL},
    {"redis scale-out keys",
     "{'redis':{'url':'redis://h','wait_replicas':2,'seeds':['10.0.0.2:7001','[::1]:7002'],"
     "'sentinels':['s1:26379'],'master_name':'main'},'relations':[]}",
     NULL, check_scale},
    {"redis.wait_replicas too big", "{'redis':{'url':'redis://h','wait_replicas':17},'relations':[]}",
     "redis.wait_replicas: must be an integer 0..16", NULL},
    {"redis.seeds not an array", "{'redis':{'url':'redis://h','seeds':'h:1'},'relations':[]}",
     "redis.seeds: must be an array of at most 16 \"host:port\" strings", NULL},
    {"redis.seeds without a port", "{'redis':{'url':'redis://h','seeds':['h:1','h']},'relations':[]}",
     "redis.seeds[1]: must be \"host:port\" (an IPv6 host in brackets)", NULL},
    {"redis.sentinels bad port", "{'redis':{'url':'redis://h','sentinels':['h:0'],"
     "'master_name':'m'},'relations':[]}",
     "redis.sentinels[0]: must be \"host:port\" (an IPv6 host in brackets)", NULL},
    {"redis.sentinels without master_name",
     "{'redis':{'url':'redis://h','sentinels':['h:26379']},'relations':[]}",
     "redis.master_name: required with redis.sentinels", NULL},
    {"redis.master_name without sentinels",
     "{'redis':{'url':'redis://h','master_name':'m'},'relations':[]}",
     "redis.sentinels: required with redis.master_name", NULL},
    {"threshold name with a quote",
     "{'redis':{'url':'redis://h'},'relations':[{'short':'r','name':'R','database_a':'a',"
     "'database_b':'b','properties':[],'thresholds':[{'direction':'direct','stat':'count',"
     "'value':1,'name':'a\\\"b'}]}]}",
     "relations[0].thresholds[0].name: must be 1..64 letters, digits, '_', '-', '.' or spaces",
     NULL},
    {"redis.timeout_ms 0", "{'redis':{'url':'redis://h','timeout_ms':0},'relations':[]}",
     "redis.timeout_ms: must be an integer 1..3600000", NULL},
    {"redis.timeout_ms too big", "{'redis':{'url':'redis://h','timeout_ms':3600001},'relations':[]}",
     "redis.timeout_ms: must be an integer 1..3600000", NULL},
    {"redis.timeout_ms real", "{'redis':{'url':'redis://h','timeout_ms':5.5},'relations':[]}",
     "redis.timeout_ms: must be an integer 1..3600000", NULL},
    {"redis.timeout_ms string", "{'redis':{'url':'redis://h','timeout_ms':'5000'},'relations':[]}",
     "redis.timeout_ms: must be an integer 1..3600000", NULL},

    /* engine */
    {"engine not an object", CFG("'engine':[],'relations':[]"), "engine: must be an object", NULL},
    {"engine.log_level unknown", CFG("'engine':{'log_level':'verbose'},'relations':[]"),
     "engine.log_level: must be error, warn, info or debug", NULL},
    {"engine.log_level not a string", CFG("'engine':{'log_level':3},'relations':[]"),
     "engine.log_level: must be a string", NULL},
    {"engine unknown key", CFG("'engine':{'ttl':5},'relations':[]"), "engine.ttl: unknown key",
     NULL},
    {"engine.tombstone_ttl_s 0", CFG("'engine':{'tombstone_ttl_s':0},'relations':[]"),
     "engine.tombstone_ttl_s: must be an integer 1..315360000", NULL},
    {"engine.tombstone_ttl_s too big", CFG("'engine':{'tombstone_ttl_s':315360001},'relations':[]"),
     "engine.tombstone_ttl_s: must be an integer 1..315360000", NULL},
    {"engine.dedup_ids 0", CFG("'engine':{'dedup_ids':0},'relations':[]"),
     "engine.dedup_ids: must be an integer 1..10000000", NULL},
    {"engine.dedup_ids string", CFG("'engine':{'dedup_ids':'10'},'relations':[]"),
     "engine.dedup_ids: must be an integer 1..10000000", NULL},
    {"engine.batch_size too big", CFG("'engine':{'batch_size':100001},'relations':[]"),
     "engine.batch_size: must be an integer 1..100000", NULL},
    {"engine.batch_ms zero", CFG("'engine':{'batch_ms':0},'relations':[]"),
     "engine.batch_ms: must be an integer 1..60000", NULL},
    {"engine.shutdown_timeout_ms too small", CFG("'engine':{'shutdown_timeout_ms':99},'relations':[]"),
     "engine.shutdown_timeout_ms: must be an integer 100..3600000", NULL},
    {"engine.retry_max_ms a string", CFG("'engine':{'retry_max_ms':'5s'},'relations':[]"),
     "engine.retry_max_ms: must be an integer 10..3600000", NULL},
    {"engine and redis values set",
     "{'redis':{'url':'redis://h','key_prefix':'','timeout_ms':3600000},"
     "'engine':{'tombstone_ttl_s':60,'dedup_ids':5,'batch_size':100000},'relations':[]}",
     NULL, check_engine_set},

    /* kafka */
    {"kafka not an object", CFG("'kafka':true,'relations':[]"), "kafka: must be an object", NULL},
    {"kafka unknown key",
     CFG("'kafka':{'brokers':'b','topic':'t','dead_letter_topic':'d'},'relations':[]"),
     "kafka.topic: unknown key", NULL},
    {"kafka.brokers missing", CFG("'kafka':{'topics':['t'],'dead_letter_topic':'d'},'relations':[]"),
     "kafka.brokers: required", NULL},
    {"kafka.brokers empty",
     CFG("'kafka':{'brokers':'','topics':['t'],'dead_letter_topic':'d'},'relations':[]"),
     "kafka.brokers: must not be empty", NULL},
    {"kafka.dead_letter_topic missing", CFG("'kafka':{'brokers':'b','topics':['t']},'relations':[]"),
     "kafka.dead_letter_topic: required", NULL},
    {"kafka.group_id not a string",
     CFG("'kafka':{'brokers':'b','group_id':1,'topics':['t'],'dead_letter_topic':'d'},"
         "'relations':[]"),
     "kafka.group_id: must be a string", NULL},
    {"kafka.topics missing", CFG("'kafka':{'brokers':'b','dead_letter_topic':'d'},'relations':[]"),
     "kafka.topics: required", NULL},
    {"kafka.topics empty",
     CFG("'kafka':{'brokers':'b','topics':[],'dead_letter_topic':'d'},'relations':[]"),
     "kafka.topics: must be a non-empty array of strings", NULL},
    {"kafka.topics a string",
     CFG("'kafka':{'brokers':'b','topics':'t','dead_letter_topic':'d'},'relations':[]"),
     "kafka.topics: must be a non-empty array of strings", NULL},
    {"kafka.topics empty string",
     CFG("'kafka':{'brokers':'b','topics':[''],'dead_letter_topic':'d'},'relations':[]"),
     "kafka.topics[0]: must be a non-empty string", NULL},
    {"kafka.topics number",
     CFG("'kafka':{'brokers':'b','topics':['t',1],'dead_letter_topic':'d'},'relations':[]"),
     "kafka.topics[1]: must be a non-empty string", NULL},
    {"kafka.properties not an object",
     CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d','properties':[]},"
         "'relations':[]"),
     "kafka.properties: must be an object", NULL},
    {"kafka.properties value an array",
     CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"
         "'properties':{'acks':[1]}},'relations':[]"),
     "kafka.properties.acks: must be a string, a number or a boolean", NULL},
    {"kafka.properties value null",
     CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"
         "'properties':{'acks':null}},'relations':[]"),
     "kafka.properties.acks: must be a string, a number or a boolean", NULL},
    {"kafka.properties numbers and booleans as their text",
     CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"
         "'properties':{'session.timeout.ms':6000,'check.crcs':true,'enable.auto.commit':false,"
         "'socket.timeout.ms':'30000'}},'hooks':{'url':'amqp://h'},'relations':[]"),
     NULL, check_kafka_texts},
    {"kafka.properties enable.auto.commit true",
     CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"
         "'properties':{'enable.auto.commit':'true'}},'relations':[]"),
     "kafka.properties.enable.auto.commit: must be false: offsets are committed by relationd "
     "once their events are applied and their triggers confirmed", NULL},
    {"kafka.properties enable.auto.commit true as a boolean",
     CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"
         "'properties':{'enable.auto.commit':true}},'relations':[]"),
     "kafka.properties.enable.auto.commit: must be false: offsets are committed by relationd "
     "once their events are applied and their triggers confirmed", NULL},
    {"kafka.properties enable.auto.offset.store true",
     CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"
         "'properties':{'enable.auto.offset.store':'true'}},'relations':[]"),
     "kafka.properties.enable.auto.offset.store: must be false: offsets are stored by "
     "relationd once their events are applied and their triggers confirmed", NULL},
    {"kafka.properties auto.offset.reset latest",
     CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"
         "'properties':{'auto.offset.reset':'latest'}},'relations':[]"),
     "kafka.properties.auto.offset.reset: must be earliest (or error): a consumer without a "
     "committed offset (a new group, offsets expired) would skip the backlog; position a new "
     "group with the Kafka tools", NULL},
    {"kafka.properties isolation.level read_uncommitted",
     CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"
         "'properties':{'isolation.level':'read_uncommitted'}},'relations':[]"),
     "kafka.properties.isolation.level: must be read_committed: events of aborted "
     "transactions would be applied", NULL},
#define KP(props) CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"        \
                         "'properties':{" props "}},'hooks':{'url':'amqp://h'},'relations':[]")
#define ACKS_WHY                                                                               \
    ": must be all (or -1): an event's offset is committed once its dead letter is "           \
    "acknowledged, and a dead letter acknowledged by fewer than all in-sync replicas could "   \
    "be lost with its broker (relationctl send and redrive rely on it too)"
    {"kafka.properties acks 0", KP("'acks':'0'"), "kafka.properties.acks" ACKS_WHY, NULL},
    {"kafka.properties acks 1 as a number", KP("'acks':1"), "kafka.properties.acks" ACKS_WHY,
     NULL},
    {"kafka.properties request.required.acks 1", KP("'request.required.acks':'1'"),
     "kafka.properties.request.required.acks" ACKS_WHY, NULL},
    {"kafka.properties acks all, -1, ALL", KP("'acks':'all','request.required.acks':-1"), NULL,
     NULL},
    {"kafka.properties acks ALL", KP("'acks':'ALL'"), NULL, NULL},
    {"kafka.properties enable.auto.commit FALSE", KP("'enable.auto.commit':'FALSE'"), NULL, NULL},
    {"kafka.properties transactional.id", KP("'transactional.id':'x'"),
     "kafka.properties.transactional.id: must not be set: relationd's producers do not use "
     "transactions, and a transactional producer refuses every message sent outside one (no "
     "dead letter could be written)", NULL},
    {"kafka.properties offset.store.method file", KP("'offset.store.method':'file'"),
     "kafka.properties.offset.store.method: must be broker: relationd commits offsets to the "
     "group in the cluster", NULL},
    {"kafka.properties ssl.key.location missing",
     KP("'ssl.key.location':'/nonexistent/client.key'"),
     "kafka.properties.ssl.key.location: cannot read /nonexistent/client.key: No such file or "
     "directory", NULL},
    {"kafka.properties ssl.certificate.location missing",
     KP("'ssl.certificate.location':'/nonexistent/client.pem'"),
     "kafka.properties.ssl.certificate.location: cannot read /nonexistent/client.pem: No such "
     "file or directory", NULL},
    {"kafka.properties ssl.ca.location missing", KP("'ssl.ca.location':'/nonexistent/ca.pem'"),
     "kafka.properties.ssl.ca.location: cannot read /nonexistent/ca.pem: No such file or "
     "directory", NULL},
    {"kafka.properties ssl.keystore.location a directory", KP("'ssl.keystore.location':'/etc'"),
     "kafka.properties.ssl.keystore.location: /etc is not a regular file", NULL},
    {"kafka.properties ssl.crl.location missing", KP("'ssl.crl.location':'/nonexistent/crl'"),
     "kafka.properties.ssl.crl.location: cannot read /nonexistent/crl: No such file or "
     "directory", NULL},
    {"kafka.properties ssl.ca.location a device", KP("'ssl.ca.location':'/dev/null'"),
     "kafka.properties.ssl.ca.location: /dev/null is not a regular file or a directory", NULL},
    {"kafka.properties files that are there",
     KP("'ssl.ca.location':'/etc','ssl.key.location':'/etc/hostname',"
        "'ssl.certificate.location':'/etc/hostname','ssl.key.password':'p'"),
     NULL, NULL},
    {"kafka.properties ssl.ca.location probe", KP("'ssl.ca.location':'probe'"), NULL, NULL},
    {"kafka.properties group.id",
     CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"
         "'properties':{'group.id':'g'}},'relations':[]"),
     "kafka.properties.group.id: is kafka.group_id", NULL},
    {"kafka.properties bootstrap.servers",
     CFG("'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"
         "'properties':{'bootstrap.servers':'h:9092'}},'relations':[]"),
     "kafka.properties.bootstrap.servers: is kafka.brokers", NULL},
    {"kafka defaults",
     CFG("'kafka':{'brokers':'b','topics':['t1','t2'],'dead_letter_topic':'d'},"
         "'hooks':{'url':'amqp://h'},'relations':[]"),
     NULL, check_kafka_default},
    {"kafka without hooks",
     CFG("'kafka':{'brokers':'b','topics':['t1'],'dead_letter_topic':'d'},'relations':[]"),
     "hooks: required when a kafka or amqp source is configured", NULL},

    /* amqp */
    {"amqp not an object", CFG("'amqp':1,'relations':[]"), "amqp: must be an object", NULL},
    {"amqp unknown key",
     CFG("'amqp':{'url':'amqp://h','queue':'q','dead_letter_exchange':'x','exchange':'e'},"
         "'relations':[]"),
     "amqp.exchange: unknown key", NULL},
    {"amqp.url with a port that is not a number",
     CFG("'amqp':{'url':'amqp://u:hunter2@h:notaport/','queue':'q','dead_letter_exchange':'x'},"
         "'hooks':{'url':'amqp://h'},'relations':[]"),
     "amqp.url: must be amqp[s]://[user[:password]@]host[:port][/vhost]", NULL},
    {"hooks.url the daemon cannot parse",
     CFG("'hooks':{'url':'amqp://h:99999999999/'},'relations':[]"),
     "hooks.url: must be amqp[s]://[user[:password]@]host[:port][/vhost]", NULL},
    {"amqp.url missing", CFG("'amqp':{'queue':'q','dead_letter_exchange':'x'},'relations':[]"),
     "amqp.url: required", NULL},
    {"amqp.queue missing", CFG("'amqp':{'url':'amqp://h','dead_letter_exchange':'x'},'relations':[]"),
     "amqp.queue: required", NULL},
    {"amqp.dead_letter_exchange missing", CFG("'amqp':{'url':'amqp://h','queue':'q'},'relations':[]"),
     "amqp.dead_letter_exchange: required", NULL},
    {"amqp.prefetch 0",
     CFG("'amqp':{'url':'amqp://h','queue':'q','prefetch':0,'dead_letter_exchange':'x'},"
         "'relations':[]"),
     "amqp.prefetch: must be an integer 1..65535", NULL},
    {"amqp.prefetch 65536",
     CFG("'amqp':{'url':'amqp://h','queue':'q','prefetch':65536,'dead_letter_exchange':'x'},"
         "'relations':[]"),
     "amqp.prefetch: must be an integer 1..65535", NULL},
    {"amqp.url scheme",
     CFG("'amqp':{'url':'http://h','queue':'q','dead_letter_exchange':'x'},'relations':[]"),
     "amqp.url: must start with amqp:// or amqps://", NULL},
    {"amqp amqps and default prefetch",
     CFG("'amqp':{'url':'amqps://h','queue':'q','dead_letter_exchange':'x'},"
         "'hooks':{'url':'amqp://h'},'relations':[]"),
     NULL, check_amqp_default},
    {"amqp and hooks provisioned beforehand (declare false)",
     CFG("'amqp':{'url':'amqp://h','queue':'q','dead_letter_exchange':'x','declare':false},"
         "'hooks':{'url':'amqp://h','declare':false},'relations':[]"),
     NULL, check_provisioned},
    {"amqp.queue_arguments",
     CFG("'amqp':{'url':'amqp://h','queue':'q','dead_letter_exchange':'x','queue_arguments':"
         "{'x-queue-type':'quorum','x-delivery-limit':20,'x-single-active-consumer':true}},"
         "'hooks':{'url':'amqp://h'},'relations':[]"),
     NULL, check_queue_arguments},
    {"amqp.queue_arguments with the dead-letter exchange",
     CFG("'amqp':{'url':'amqp://h','queue':'q','dead_letter_exchange':'x','queue_arguments':"
         "{'x-dead-letter-exchange':'y'}},'hooks':{'url':'amqp://h'},'relations':[]"),
     "amqp.queue_arguments.x-dead-letter-exchange: is amqp.dead_letter_exchange", NULL},
    {"amqp.queue_arguments a real",
     CFG("'amqp':{'url':'amqp://h','queue':'q','dead_letter_exchange':'x','queue_arguments':"
         "{'x-max-length':1.5}},'hooks':{'url':'amqp://h'},'relations':[]"),
     "amqp.queue_arguments.x-max-length: must be a string, an integer or a boolean", NULL},
    {"amqp.queue_arguments not an object",
     CFG("'amqp':{'url':'amqp://h','queue':'q','dead_letter_exchange':'x','queue_arguments':"
         "[]},'hooks':{'url':'amqp://h'},'relations':[]"),
     "amqp.queue_arguments: must be an object", NULL},
    {"amqp.declare not a boolean",
     CFG("'amqp':{'url':'amqp://h','queue':'q','dead_letter_exchange':'x','declare':'no'},"
         "'hooks':{'url':'amqp://h'},'relations':[]"),
     "amqp.declare: must be true or false", NULL},
    {"hooks.declare not a boolean", CFG("'hooks':{'url':'amqp://h','declare':0},'relations':[]"),
     "hooks.declare: must be true or false", NULL},
    {"amqp.tls with amqp://",
     CFG("'amqp':{'url':'amqp://h','queue':'q','dead_letter_exchange':'x','tls':{}},"
         "'hooks':{'url':'amqp://h'},'relations':[]"),
     "amqp.tls: only with an amqps:// url", NULL},
    {"amqp.tls cert without key",
     CFG("'amqp':{'url':'amqps://h','queue':'q','dead_letter_exchange':'x',"
         "'tls':{'cert':'/etc/hostname'}},'hooks':{'url':'amqp://h'},'relations':[]"),
     "amqp.tls: cert and key go together", NULL},
    {"amqp.tls unreadable ca",
     CFG("'amqp':{'url':'amqps://h','queue':'q','dead_letter_exchange':'x',"
         "'tls':{'ca':'/nonexistent/ca.pem'}},'hooks':{'url':'amqp://h'},'relations':[]"),
     "amqp.tls.ca: cannot read /nonexistent/ca.pem: No such file or directory", NULL},
    {"amqp.tls key a directory",
     CFG("'amqp':{'url':'amqps://h','queue':'q','dead_letter_exchange':'x',"
         "'tls':{'cert':'/etc/hostname','key':'/etc'}},'hooks':{'url':'amqp://h'},'relations':[]"),
     "amqp.tls.key: /etc is not a regular file", NULL},
    {"amqp.tls unknown key",
     CFG("'amqp':{'url':'amqps://h','queue':'q','dead_letter_exchange':'x',"
         "'tls':{'cafile':'x'}},'hooks':{'url':'amqp://h'},'relations':[]"),
     "amqp.tls.cafile: unknown key", NULL},
    {"hooks.tls",
     CFG("'hooks':{'url':'amqps://h','tls':{'ca':'/etc/hostname','cert':'/etc/hostname',"
         "'key':'/etc/hostname','verify':false}},'relations':[]"),
     NULL, check_hooks_tls},
    {"hooks.tls verify not a boolean",
     CFG("'hooks':{'url':'amqps://h','tls':{'verify':'yes'}},'relations':[]"),
     "hooks.tls.verify: must be true or false", NULL},
    {"amqp without hooks",
     CFG("'amqp':{'url':'amqp://h','queue':'q','dead_letter_exchange':'x'},'relations':[]"),
     "hooks: required when a kafka or amqp source is configured", NULL},

    /* hooks */
    {"hooks not an object", CFG("'hooks':'amqp://h','relations':[]"),
     "hooks: must be an object or a non-empty array of hooks",
     NULL},
    {"hooks unknown key", CFG("'hooks':{'url':'amqp://h','exchanges':'e'},'relations':[]"),
     "hooks.exchanges: unknown key", NULL},
    {"hooks.url missing", CFG("'hooks':{'exchange':'e'},'relations':[]"), "hooks.url: required",
     NULL},
    {"hooks.url scheme", CFG("'hooks':{'url':'redis://h'},'relations':[]"),
     "hooks.url: must start with amqp:// or amqps://", NULL},
    {"hooks.exchange not a string", CFG("'hooks':{'url':'amqp://h','exchange':5},'relations':[]"),
     "hooks.exchange: must be a string", NULL},
    {"hooks default exchange", CFG("'hooks':{'url':'amqps://h/%2f'},'relations':[]"), NULL,
     check_hooks_default},

    /* http */
    {"http not an object", CFG("'http':9464,'relations':[]"), "http: must be an object", NULL},
    {"http unknown key", CFG("'http':{'listen':'h:1','port':1},'relations':[]"),
     "http.port: unknown key", NULL},
    {"http.listen missing", CFG("'http':{},'relations':[]"), "http.listen: required", NULL},
    {"http.listen no colon", CFG("'http':{'listen':'9464'},'relations':[]"),
     "http.listen: must be host:port", NULL},
    {"http.listen no host", CFG("'http':{'listen':':9464'},'relations':[]"),
     "http.listen: must be host:port", NULL},
    {"http.listen no port", CFG("'http':{'listen':'h:'},'relations':[]"),
     "http.listen: must be host:port", NULL},
    {"http.listen port 0", CFG("'http':{'listen':'h:0'},'relations':[]"),
     "http.listen: must be host:port", NULL},
    {"http.listen port 65536", CFG("'http':{'listen':'h:65536'},'relations':[]"),
     "http.listen: must be host:port", NULL},
    {"http.listen port not a number", CFG("'http':{'listen':'h:80x'},'relations':[]"),
     "http.listen: must be host:port", NULL},
    {"http.listen ipv6", CFG("'http':{'listen':'[::1]:9464'},'relations':[]"), NULL,
     check_http_v6},

    /* relations */
    {"relations missing", "{" REDIS "}", "relations: required", NULL},
    {"relations not an array", CFG("'relations':{}"), "relations: must be an array", NULL},
    {"relation not an object", CFG(RELS("'r'")), "relations[0]: must be an object", NULL},
    {"relation unknown key", CFG(RELS(REL(",'props':[]"))), "relations[0].props: unknown key",
     NULL},
    {"relation short missing", CFG(RELS("{'database_a':'a','database_b':'b'}")),
     "relations[0].short: required", NULL},
    {"relation short empty", CFG(RELS("{'short':'','database_a':'a','database_b':'b'}")),
     "relations[0].short: must not be empty", NULL},
    {"relation short not a string", CFG(RELS("{'short':1,'database_a':'a','database_b':'b'}")),
     "relations[0].short: must be a string", NULL},
    {"relation short uppercase", CFG(RELS("{'short':'Orders','database_a':'a','database_b':'b'}")),
     "relations[0].short: must match [a-z][a-z0-9_]{0,63}", NULL},
    {"relation short uppercase inside",
     CFG(RELS("{'short':'ordErs','database_a':'a','database_b':'b'}")),
     "relations[0].short: must match [a-z][a-z0-9_]{0,63}", NULL},
    {"relation short starts with digit",
     CFG(RELS("{'short':'1orders','database_a':'a','database_b':'b'}")),
     "relations[0].short: must match [a-z][a-z0-9_]{0,63}", NULL},
    {"relation short starts with _", CFG(RELS("{'short':'_o','database_a':'a','database_b':'b'}")),
     "relations[0].short: must match [a-z][a-z0-9_]{0,63}", NULL},
    {"relation short with -", CFG(RELS("{'short':'a-b','database_a':'a','database_b':'b'}")),
     "relations[0].short: must match [a-z][a-z0-9_]{0,63}", NULL},
    {"relation short with :", CFG(RELS("{'short':'a:b','database_a':'a','database_b':'b'}")),
     "relations[0].short: must match [a-z][a-z0-9_]{0,63}", NULL},
    {"relation short with space", CFG(RELS("{'short':'a b','database_a':'a','database_b':'b'}")),
     "relations[0].short: must match [a-z][a-z0-9_]{0,63}", NULL},
    {"relation short 65 bytes", CFG(RELS("{'short':'" X65 "','database_a':'a','database_b':'b'}")),
     "relations[0].short: must match [a-z][a-z0-9_]{0,63}", NULL},
    {"relation short 64 bytes", CFG(RELS("{'short':'" X64 "','database_a':'a','database_b':'b'}")),
     NULL, check_short64},
    {"relation short a_1 ok", CFG(RELS("{'short':'a_1','database_a':'a','database_b':'b'}")), NULL,
     NULL},
    {"relation name not a string", CFG(RELS(REL(",'name':1"))),
     "relations[0].name: must be a string", NULL},
    {"relation database_a missing", CFG(RELS("{'short':'r','database_b':'b'}")),
     "relations[0].database_a: required", NULL},
    {"relation database_a not a string", CFG(RELS("{'short':'r','database_a':[],'database_b':'b'}")),
     "relations[0].database_a: must be a string", NULL},
    {"relation database_b missing", CFG(RELS("{'short':'r','database_a':'a'}")),
     "relations[0].database_b: required", NULL},
    {"relation database_b empty", CFG(RELS("{'short':'r','database_a':'a','database_b':''}")),
     "relations[0].database_b: must not be empty", NULL},
    {"duplicate relation short", CFG(RELS(REL("") "," REL(""))),
     "relations[1].short: duplicate \"r\"", NULL},
    {"duplicate relation short, third",
     CFG(RELS(REL("") ",{'short':'s','database_a':'a','database_b':'b'}," REL(""))),
     "relations[2].short: duplicate \"r\"", NULL},
    {"error in the second relation",
     CFG(RELS(REL("") ",{'short':'s','database_b':'b'}")), "relations[1].database_a: required",
     NULL},
    {"relations without properties",
     CFG(RELS(REL("") ",{'short':'s','database_a':'a','database_b':'a'}")), NULL, check_no_props},
    {"properties not an array", CFG(RELS(REL(",'properties':{}"))),
     "relations[0].properties: must be an array", NULL},
    {"thresholds not an array", CFG(RELS(REL(",'thresholds':{}"))),
     "relations[0].thresholds: must be an array", NULL},
    {"12 properties", WITH_PROPS(P11 "," PINT("p12")), "relations[0].properties: at most 11 properties",
     NULL},
    {"11 properties", WITH_PROPS(P11), NULL, check_11_props},

    /* properties */
    {"property not an object", WITH_PROPS("'p'"), "relations[0].properties[0]: must be an object",
     NULL},
    {"property unknown key", WITH_PROPS("{'short':'p','type':'int','kind':'x'}"),
     "relations[0].properties[0].kind: unknown key", NULL},
    {"property short missing", WITH_PROPS("{'type':'int'}"),
     "relations[0].properties[0].short: required", NULL},
    {"property short empty", WITH_PROPS("{'short':'','type':'int'}"),
     "relations[0].properties[0].short: must not be empty", NULL},
    {"property short uppercase", WITH_PROPS("{'short':'Profit','type':'int'}"),
     "relations[0].properties[0].short: must match [a-z][a-z0-9_]{0,63}", NULL},
    {"property short starts with digit", WITH_PROPS(PINT("p") ",{'short':'9p','type':'int'}"),
     "relations[0].properties[1].short: must match [a-z][a-z0-9_]{0,63}", NULL},
    {"property short 65 bytes", WITH_PROPS("{'short':'" X65 "','type':'int'}"),
     "relations[0].properties[0].short: must match [a-z][a-z0-9_]{0,63}", NULL},
    {"property short 64 bytes", WITH_PROPS("{'short':'" X64 "','type':'int'}"), NULL, NULL},
    {"property name not a string", WITH_PROPS("{'short':'p','name':false,'type':'int'}"),
     "relations[0].properties[0].name: must be a string", NULL},
    {"property type missing", WITH_PROPS("{'short':'p'}"),
     "relations[0].properties[0].type: required", NULL},
    {"property type empty", WITH_PROPS("{'short':'p','type':''}"),
     "relations[0].properties[0].type: must not be empty", NULL},
    {"property type string", WITH_PROPS("{'short':'p','type':'string'}"),
     "relations[0].properties[0].type: must be int, float or bool", NULL},
    {"property type Int", WITH_PROPS("{'short':'p','type':'Int'}"),
     "relations[0].properties[0].type: must be int, float or bool", NULL},
    {"property type not a string", WITH_PROPS("{'short':'p','type':1}"),
     "relations[0].properties[0].type: must be a string", NULL},
    {"duplicate property short", WITH_PROPS(PINT("x") "," PINT("y") ",{'short':'x','type':'bool'}"),
     "relations[0].properties[2].short: duplicate \"x\"", NULL},
    {"duplicate property short, adjacent", WITH_PROPS(PINT("x") "," PINT("x")),
     "relations[0].properties[1].short: duplicate \"x\"", NULL},
    {"same property short in two relations",
     CFG(RELS(REL(PROPS(PINT("x"))) ",{'short':'s','database_a':'a','database_b':'b'" PROPS(PINT("x")) "}")),
     NULL, NULL},
    {"save_amount on bool", WITH_PROPS("{'short':'p','type':'bool','save_amount':true}"),
     "relations[0].properties[0].save_amount: only for int or float properties", NULL},
    {"save_amount false on bool", WITH_PROPS("{'short':'p','type':'bool','save_amount':false}"),
     NULL, check_bool_no_amount},
    {"save_amount not a bool", WITH_PROPS("{'short':'p','type':'int','save_amount':1}"),
     "relations[0].properties[0].save_amount: must be true or false", NULL},
    {"save_top on bool",
     WITH_PROPS(PINT("a") ",{'short':'p','type':'bool','save_top':{'order':'desc','limit':5}}"),
     "relations[0].properties[1].save_top: only for int or float properties", NULL},
    {"save_top not an object", WITH_PROPS("{'short':'p','type':'int','save_top':5}"),
     "relations[0].properties[0].save_top: must be an object", NULL},
    {"save_top unknown key", WITH_PROPS("{'short':'p','type':'int','save_top':{'limit':5,'size':5}}"),
     "relations[0].properties[0].save_top.size: unknown key", NULL},
    {"save_top order bad", WITH_PROPS("{'short':'p','type':'int','save_top':{'order':'up','limit':5}}"),
     "relations[0].properties[0].save_top.order: must be desc or asc", NULL},
    {"save_top order DESC", WITH_PROPS("{'short':'p','type':'int','save_top':{'order':'DESC','limit':5}}"),
     "relations[0].properties[0].save_top.order: must be desc or asc", NULL},
    {"save_top order not a string",
     WITH_PROPS("{'short':'p','type':'int','save_top':{'order':1,'limit':5}}"),
     "relations[0].properties[0].save_top.order: must be a string", NULL},
    {"save_top limit missing", WITH_PROPS("{'short':'p','type':'int','save_top':{'order':'asc'}}"),
     "relations[0].properties[0].save_top.limit: required", NULL},
    {"save_top limit 0", WITH_PROPS(PROPS3(",'save_top':{'order':'desc','limit':0}")),
     PATH_PROP3 ".save_top.limit: must be 1..20", NULL},
    {"save_top limit 21", WITH_PROPS(PROPS3(",'save_top':{'order':'desc','limit':21}")),
     PATH_PROP3 ".save_top.limit: must be 1..20", NULL},
    {"save_top limit -1", WITH_PROPS(PROPS3(",'save_top':{'limit':-1}")),
     PATH_PROP3 ".save_top.limit: must be 1..20", NULL},
    {"save_top limit real", WITH_PROPS(PROPS3(",'save_top':{'limit':5.0}")),
     PATH_PROP3 ".save_top.limit: must be 1..20", NULL},
    {"save_top limit string", WITH_PROPS(PROPS3(",'save_top':{'limit':'5'}")),
     PATH_PROP3 ".save_top.limit: must be 1..20", NULL},
    {"save_top limit 1", WITH_PROPS(PROPS3(",'save_top':{'order':'asc','limit':1}")), NULL,
     check_top_limit_1},
    {"save_top limit 20", WITH_PROPS(PROPS3(",'save_top':{'order':'desc','limit':20}")), NULL,
     check_top_limit_20},
    {"save_top order defaults to desc",
     WITH_PROPS("{'short':'p','type':'float','save_top':{'limit':3}}"), NULL,
     check_top_order_default},
    {"property error in second relation",
     CFG(RELS(REL("") ",{'short':'s','database_a':'a','database_b':'b'" PROPS(PINT("x") ",{'short':'y','type':'int','save_top':{'limit':30}}") "}")),
     "relations[1].properties[1].save_top.limit: must be 1..20", NULL},

    /* thresholds */
    {"threshold not an object", WITH_THS("5"), "relations[0].thresholds[0]: must be an object",
     NULL},
    {"threshold unknown key", WITH_THS(TH("direct", "count", ",'value':1,'prop':'f'")),
     "relations[0].thresholds[0].prop: unknown key", NULL},
    {"threshold direction missing", WITH_THS("{'stat':'count','value':1}"),
     "relations[0].thresholds[0].direction: required", NULL},
    {"threshold direction bad", WITH_THS(TH("incoming", "count", ",'value':1")),
     "relations[0].thresholds[0].direction: must be direct or reverse", NULL},
    {"threshold direction not a string", WITH_THS("{'direction':1,'stat':'count','value':1}"),
     "relations[0].thresholds[0].direction: must be a string", NULL},
    {"threshold stat missing", WITH_THS("{'direction':'direct','value':1}"),
     "relations[0].thresholds[0].stat: required", NULL},
    {"threshold stat bad", WITH_THS(TH("direct", "sum", ",'value':1")),
     "relations[0].thresholds[0].stat: must be count, total or edge", NULL},
    {"threshold stat top", WITH_THS(TH("direct", "top", ",'property':'f','value':1")),
     "relations[0].thresholds[0].stat: must be count, total or edge", NULL},
    {"threshold property unknown", WITH_THS(TH("direct", "count", ",'property':'zz','value':1")),
     "relations[0].thresholds[0].property: no property \"zz\" in relation r", NULL},
    {"threshold property not a string", WITH_THS(TH("direct", "count", ",'property':0,'value':1")),
     "relations[0].thresholds[0].property: must be a string", NULL},
    {"threshold total without property", WITH_THS(TH("direct", "total", ",'value':1")),
     "relations[0].thresholds[0].property: required for stat total", NULL},
    {"threshold edge without property", WITH_THS(TH("reverse", "edge", ",'value':1")),
     "relations[0].thresholds[0].property: required for stat edge", NULL},
    {"threshold total without save_amount", WITH_THS(TH("direct", "total", ",'property':'n','value':1")),
     "relations[0].thresholds[0].property: stat total needs save_amount on property n", NULL},
    {"threshold total on bool", WITH_THS(TH("direct", "total", ",'property':'b','value':1")),
     "relations[0].thresholds[0].property: stat total needs save_amount on property b", NULL},
    {"threshold value missing", WITH_THS(TH("direct", "count", "")),
     "relations[0].thresholds[0].value: required", NULL},
    {"threshold second index",
     WITH_THS(TH("direct", "count", ",'value':1") "," TH("direct", "edge", ",'property':'q','value':1")),
     "relations[0].thresholds[1].property: no property \"q\" in relation r", NULL},
    {"count without property", WITH_THS(TH("reverse", "count", ",'value':5")), NULL,
     check_th_count_relation},
    {"count with property", WITH_THS(TH("direct", "count", ",'property':'b','value':3")), NULL,
     check_th_count_prop},
    {"count of float property is an integer",
     WITH_THS(TH("direct", "count", ",'property':'f','value':7")), NULL, check_th_count_float_prop},
    {"count value real", WITH_THS(TH("direct", "count", ",'value':1.5")),
     "relations[0].thresholds[0].value: must be an integer -2147483647..2147483647", NULL},
    {"count value 5.0", WITH_THS(TH("direct", "count", ",'value':5.0")),
     "relations[0].thresholds[0].value: must be an integer -2147483647..2147483647", NULL},
    {"count of float property value real",
     WITH_THS(TH("direct", "count", ",'property':'f','value':2.5")),
     "relations[0].thresholds[0].value: must be an integer -2147483647..2147483647", NULL},
    {"count value string", WITH_THS(TH("direct", "count", ",'value':'5'")),
     "relations[0].thresholds[0].value: must be an integer -2147483647..2147483647", NULL},
    {"count value too big", WITH_THS(TH("direct", "count", ",'value':2147483648")),
     "relations[0].thresholds[0].value: must be an integer -2147483647..2147483647", NULL},
    {"count value too small", WITH_THS(TH("direct", "count", ",'value':-2147483648")),
     "relations[0].thresholds[0].value: must be an integer -2147483647..2147483647", NULL},
    {"count value max", WITH_THS(TH("direct", "count", ",'value':2147483647")), NULL,
     check_th_count_max},
    {"count value min", WITH_THS(TH("direct", "count", ",'value':-2147483647")), NULL,
     check_th_count_min},
    {"int edge value real", WITH_THS(TH("direct", "edge", ",'property':'i','value':1.5")),
     "relations[0].thresholds[0].value: must be an integer -1000000000000000..1000000000000000",
     NULL},
    {"int edge value 1e3", WITH_THS(TH("direct", "edge", ",'property':'n','value':1e3")),
     "relations[0].thresholds[0].value: must be an integer -1000000000000000..1000000000000000",
     NULL},
    {"int edge value too big", WITH_THS(TH("direct", "edge", ",'property':'i','value':1000000000000001")),
     "relations[0].thresholds[0].value: must be an integer -1000000000000000..1000000000000000",
     NULL},
    {"int edge value max", WITH_THS(TH("direct", "edge", ",'property':'i','value':1000000000000000")),
     NULL, check_th_edge_int_max},
    {"int total value too big",
     WITH_THS(TH("direct", "total", ",'property':'i','value':9007199254740992")),
     "relations[0].thresholds[0].value: must be an integer -9007199254740991..9007199254740991",
     NULL},
    {"int total value real", WITH_THS(TH("direct", "total", ",'property':'i','value':0.5")),
     "relations[0].thresholds[0].value: must be an integer -9007199254740991..9007199254740991",
     NULL},
    {"int total value max",
     WITH_THS(TH("direct", "total", ",'property':'i','value':9007199254740991")), NULL,
     check_th_total_int_max},
    {"bool edge value 2", WITH_THS(TH("direct", "edge", ",'property':'b','value':2")),
     "relations[0].thresholds[0].value: must be 0 or 1 for a bool property", NULL},
    {"bool edge value -1", WITH_THS(TH("direct", "edge", ",'property':'b','value':-1")),
     "relations[0].thresholds[0].value: must be 0 or 1 for a bool property", NULL},
    {"bool edge value 0.5", WITH_THS(TH("direct", "edge", ",'property':'b','value':0.5")),
     "relations[0].thresholds[0].value: must be 0 or 1 for a bool property", NULL},
    {"bool edge value 1.0", WITH_THS(TH("direct", "edge", ",'property':'b','value':1.0")),
     "relations[0].thresholds[0].value: must be 0 or 1 for a bool property", NULL},
    {"bool edge value string", WITH_THS(TH("direct", "edge", ",'property':'b','value':'1'")),
     "relations[0].thresholds[0].value: must be 0 or 1 for a bool property", NULL},
    {"bool edge value 0", WITH_THS(TH("direct", "edge", ",'property':'b','value':0")), NULL,
     check_th_edge_bool_0},
    {"bool edge value 1", WITH_THS(TH("direct", "edge", ",'property':'b','value':1")), NULL,
     check_th_edge_bool_1},
    {"bool edge value true", WITH_THS(TH("direct", "edge", ",'property':'b','value':true")), NULL,
     check_th_edge_bool_true},
    {"bool edge value false", WITH_THS(TH("direct", "edge", ",'property':'b','value':false")), NULL,
     check_th_edge_bool_false},
    {"float edge value string", WITH_THS(TH("direct", "edge", ",'property':'f','value':'1'")),
     "relations[0].thresholds[0].value: must be a number -1000000000..1000000000", NULL},
    {"float edge value bool", WITH_THS(TH("direct", "edge", ",'property':'f','value':true")),
     "relations[0].thresholds[0].value: must be a number -1000000000..1000000000", NULL},
    {"float edge value too big", WITH_THS(TH("direct", "edge", ",'property':'f','value':1000000001")),
     "relations[0].thresholds[0].value: must be a number -1000000000..1000000000", NULL},
    {"float edge value too big real",
     WITH_THS(TH("direct", "edge", ",'property':'f','value':-1000000000.5")),
     "relations[0].thresholds[0].value: must be a number -1000000000..1000000000", NULL},
    {"float edge value real", WITH_THS(TH("direct", "edge", ",'property':'f','value':-2.5")), NULL,
     check_th_edge_float},
    {"float edge value max integer",
     WITH_THS(TH("direct", "edge", ",'property':'f','value':1000000000")), NULL,
     check_th_edge_float_int},
    {"float edge value rounded", WITH_THS(TH("direct", "edge", ",'property':'f','value':1.2345675")),
     NULL, check_th_edge_float_round},
    {"float edge value rounded on its text",
     WITH_THS(TH("direct", "edge", ",'property':'f','value':0.49999949999999999")), NULL,
     check_th_edge_float_text},
    {"float edge value 1000000000.00000049999999 rounds to 1e9: accepted",
     WITH_THS(TH("direct", "edge", ",'property':'f','value':1000000000.00000049999999")), NULL,
     check_th_edge_float_max_rounded},
    {"float edge value 1000000000.0000005 rounds beyond 1e9: refused",
     WITH_THS(TH("direct", "edge", ",'property':'f','value':1000000000.0000005")),
     "relations[0].thresholds[0].value: must be a number -1000000000..1000000000", NULL},
    {"float total value 9007199254.0000005 rounds beyond the limit: refused",
     WITH_THS(TH("direct", "total", ",'property':'f','value':9007199254.0000005")),
     "relations[0].thresholds[0].value: must be a number -9007199254..9007199254", NULL},
    {"float threshold values read from the text: escaped keys, look-alike members",
     "{'kafka':{'brokers':'b','topics':['relations'],'dead_letter_topic':'d',"
     "'properties':{'relations':'[{','thresholds':2.5,'value':7}},"
     "'hooks':{'url':'amqp://h'},\n"
     "'relations':[" REL(PROPS(PF) THS(TH("direct", "edge", ",'property':'f','value':0.0000015")))
     ",\n"
     " {'thresholds' : [ " TH("direct", "count", ",'value':3") ",\n"
     "   {'name':'value','direction':'direct','stat':'edge','property':'f',\n"
     "    'v\\u0061lue'\t:\r 0.49999949999999999},\n"
     "   {'value':-1.2345665,'property':'f','direction':'reverse','stat':'total'}],\n"
     "  'properties':[{'short':'f','type':'float','save_amount':true,'name':'value'}],\n"
     "  'short':'s','database_a':'value','database_b':'b'}], " REDIS "}",
     NULL, check_th_float_found},
    {"float total value", WITH_THS(TH("direct", "total", ",'property':'f','value':1000.5")), NULL,
     check_th_total_float},
    {"float total value max", WITH_THS(TH("direct", "total", ",'property':'f','value':9007199254")),
     NULL, check_th_total_float_max},
    {"float total value too big",
     WITH_THS(TH("direct", "total", ",'property':'f','value':9007199255")),
     "relations[0].thresholds[0].value: must be a number -9007199254..9007199254", NULL},
    {"float total value string", WITH_THS(TH("direct", "total", ",'property':'f','value':'x'")),
     "relations[0].thresholds[0].value: must be a number -9007199254..9007199254", NULL},

    /* ${NAME} expansion (RELD_T_* are set by the test, RELD_T_UNSET is not) */
    {"env: expanded inside a longer string",
     "{'redis':{'url':'redis://:${RELD_T_PASS}@${RELD_T_HOST}:6379/0'},'relations':[]}", NULL,
     check_env_url},
    {"env: whole strings",
     "{'redis':{'url':'redis://${RELD_T_HOST}','key_prefix':'${RELD_T_PASS}'},'relations':[]}",
     NULL, check_env_whole},
    {"env: empty value and lone $",
     "{'redis':{'url':'redis://h${RELD_T_EMPTY}','key_prefix':'a$b$'},'relations':[]}", NULL,
     check_env_empty},
    {"env: value is not expanded again",
     CFG(RELS(REL(",'name':'${RELD_T_META}:'"))), NULL,
     check_env_not_recursive},
    {"env: everywhere in the document",
     "{'redis':{'url':'redis://h'},"
     "'kafka':{'brokers':'b','topics':['t','${RELD_T_SHORT}'],'dead_letter_topic':'d',"
     "'properties':{'sasl.password':'${RELD_T_PASS}'}},'hooks':{'url':'amqp://h'},"
     "'relations':[{'short':'${RELD_T_SHORT}','database_a':'db_${RELD_T_HOST}','database_b':'b',"
     "'properties':[{'short':'p','name':'${RELD_T_PASS} ${RELD_T_PASS}','type':'int'}],"
     "'thresholds':[{'direction':'direct','stat':'edge','property':'${RELD_T_PROP}','value':1}]}]}",
     NULL, check_env_nested},
    {"env: unset variable", "{'redis':{'url':'redis://${RELD_T_UNSET}'},'relations':[]}",
     "redis.url: environment variable RELD_T_UNSET is not set", NULL},
    {"env: unset variable, nested path",
     CFG(RELS(REL(PROPS(PINT("a") ",{'short':'p','name':'x${RELD_T_UNSET}y','type':'int'}")))),
     "relations[0].properties[1].name: environment variable RELD_T_UNSET is not set", NULL},
    {"env: unset variable in an array",
     CFG("'kafka':{'brokers':'b','topics':['t','${RELD_T_UNSET}'],'dead_letter_topic':'d'},"
         "'relations':[]"),
     "kafka.topics[1]: environment variable RELD_T_UNSET is not set", NULL},
    {"env: unterminated", "{'redis':{'url':'redis://${RELD_T_HOST'},'relations':[]}",
     "redis.url: unterminated ${ at byte 8 of the value", NULL},
    {"env: a secret before the error is not shown",
     "{'redis':{'url':'redis://u:hunter2@${RELD_T_HOST'},'relations':[]}",
     "redis.url: unterminated ${ at byte 18 of the value", NULL},
    {"env: empty name", "{'redis':{'url':'redis://${}'},'relations':[]}",
     "redis.url: bad variable name at byte 8 of the value", NULL},
    {"env: expanded value is validated", "{'redis':{'url':'${RELD_T_HOST}'},'relations':[]}",
     "redis.url: must start with redis://", NULL},
    {"env: expanded to empty required string",
     CFG(RELS("{'short':'r','database_a':'${RELD_T_EMPTY}','database_b':'b'}")),
     "relations[0].database_a: must not be empty", NULL},
    {"env: expanded short is validated",
     CFG(RELS("{'short':'${RELD_T_HOST}','database_a':'a','database_b':'b'}")),
     "relations[0].short: must match [a-z][a-z0-9_]{0,63}", NULL},
};

/* ---- the complete example configuration ---- */

static const char example[] =
    "{\n"
    "  'redis': {'url': 'redis://127.0.0.1:6379/0', 'key_prefix': 'rel:', 'timeout_ms': 5000},\n"
    "  'engine': {'tombstone_ttl_s': 604800, 'dedup_ids': 10000, 'batch_size': 256},\n"
    "  'kafka': {'brokers': '127.0.0.1:9092', 'group_id': 'relationd',\n"
    "            'topics': ['relation-events'], 'dead_letter_topic': 'relation-events.dlq',\n"
    "            'properties': {'security.protocol': 'plaintext'}},\n"
    "  'amqp': {'url': 'amqp://guest:${AMQP_PASSWORD}@127.0.0.1:5672/%2f', 'queue': "
    "'relation-events',\n"
    "           'prefetch': 256, 'dead_letter_exchange': 'relation-events.dlx'},\n"
    "  'hooks': {'url': 'amqp://guest:${AMQP_PASSWORD}@127.0.0.1:5672/%2f', 'exchange': "
    "'relation.hooks'},\n"
    "  'http': {'listen': '127.0.0.1:9464'},\n"
    "  'relations': [\n"
    "    {'short': 'managers_loyal', 'name': 'Loyal managers',\n"
    "     'database_a': 'managers', 'database_b': 'customers',\n"
    "     'properties': [\n"
    "       {'short': 'profit', 'name': 'Profit', 'type': 'float',\n"
    "        'save_amount': true, 'save_top': {'order': 'desc', 'limit': 10}},\n"
    "       {'short': 'purchases', 'name': 'Purchases', 'type': 'int', 'save_amount': true},\n"
    "       {'short': 'approve', 'name': 'Approves', 'type': 'bool'}],\n"
    "     'thresholds': [\n"
    "       {'direction': 'direct', 'stat': 'total', 'property': 'profit', 'value': 1000},\n"
    "       {'direction': 'reverse', 'stat': 'count', 'value': 5},\n"
    "       {'direction': 'direct', 'stat': 'edge', 'property': 'purchases', 'value': 10},\n"
    "       {'direction': 'reverse', 'stat': 'edge', 'property': 'profit', 'value': 250.5},\n"
    "       {'direction': 'direct', 'stat': 'edge', 'property': 'approve', 'value': 1}]},\n"
    "    {'short': 'referrals', 'name': 'Referrals',\n"
    "     'database_a': 'referrers', 'database_b': 'customers',\n"
    "     'properties': [\n"
    "       {'short': 'revenue', 'type': 'float', 'save_amount': true,\n"
    "        'save_top': {'order': 'desc', 'limit': 5}},\n"
    "       {'short': 'days_to_buy', 'type': 'int', 'save_top': {'order': 'asc', 'limit': 3}}]}\n"
    "  ]\n"
    "}\n";

static const char *check_example(const Config *c)
{
    EXPECT(streq(c->redis_url, "redis://127.0.0.1:6379/0"));
    EXPECT(streq(c->key_prefix, "rel:"));
    EXPECT(c->redis_timeout_ms == 5000);
    EXPECT(c->tombstone_ttl_s == 604800 && c->dedup_ids == 10000 && c->batch_size == 256);

    EXPECT(c->has_kafka);
    EXPECT(streq(c->kafka.brokers, "127.0.0.1:9092"));
    EXPECT(streq(c->kafka.group_id, "relationd"));
    EXPECT(c->kafka.ntopics == 1 && streq(c->kafka.topics[0], "relation-events"));
    EXPECT(streq(c->kafka.dead_letter_topic, "relation-events.dlq"));
    EXPECT(c->kafka.nproperties == 1);
    EXPECT(streq(c->kafka.property_keys[0], "security.protocol"));
    EXPECT(streq(c->kafka.property_values[0], "plaintext"));

    EXPECT(c->has_amqp);
    EXPECT(streq(c->amqp.url, "amqp://guest:pw%21@127.0.0.1:5672/%2f"));
    EXPECT(streq(c->amqp.queue, "relation-events"));
    EXPECT(c->amqp.prefetch == 256);
    EXPECT(streq(c->amqp.dead_letter_exchange, "relation-events.dlx"));

    EXPECT(c->has_hooks);
    EXPECT(streq(c->hooks_url, "amqp://guest:pw%21@127.0.0.1:5672/%2f"));
    EXPECT(streq(c->hooks_exchange, "relation.hooks"));
    EXPECT(c->has_http && streq(c->http_listen, "127.0.0.1:9464"));

    EXPECT(c->nrelations == 2);
    const RelationDef *r = &c->relations[0];
    EXPECT(streq(r->short_name, "managers_loyal") && streq(r->name, "Loyal managers"));
    EXPECT(streq(r->database_a, "managers") && streq(r->database_b, "customers"));
    EXPECT(r->nproperties == 3);
    EXPECT(streq(r->properties[0].short_name, "profit") && streq(r->properties[0].name, "Profit"));
    EXPECT(r->properties[0].type == PROP_FLOAT && r->properties[0].save_amount);
    EXPECT(r->properties[0].top_order == TOP_DESC && r->properties[0].top_limit == 10);
    EXPECT(streq(r->properties[1].short_name, "purchases"));
    EXPECT(r->properties[1].type == PROP_INT && r->properties[1].save_amount);
    EXPECT(r->properties[1].top_order == TOP_NONE);
    EXPECT(streq(r->properties[2].short_name, "approve"));
    EXPECT(r->properties[2].type == PROP_BOOL && !r->properties[2].save_amount);
    EXPECT(r->properties[2].top_order == TOP_NONE);

    EXPECT(r->nthresholds == 5);
    const ThresholdDef *t = r->thresholds;
    EXPECT(t[0].side == SIDE_DIRECT && t[0].stat == STAT_TOTAL && t[0].property == 0);
    EXPECT(t[0].value == 1000LL * 1000000LL); /* float total: fixed-point */
    EXPECT(t[1].side == SIDE_REVERSE && t[1].stat == STAT_COUNT && t[1].property == -1);
    EXPECT(t[1].value == 5);
    EXPECT(t[2].side == SIDE_DIRECT && t[2].stat == STAT_EDGE && t[2].property == 1);
    EXPECT(t[2].value == 10); /* int edge: natural units */
    EXPECT(t[3].side == SIDE_REVERSE && t[3].stat == STAT_EDGE && t[3].property == 0);
    EXPECT(t[3].value == 250500000LL);
    EXPECT(t[4].stat == STAT_EDGE && t[4].property == 2 && t[4].value == 1);

    r = &c->relations[1];
    EXPECT(streq(r->short_name, "referrals") && streq(r->name, "Referrals"));
    EXPECT(streq(r->database_a, "referrers") && streq(r->database_b, "customers"));
    EXPECT(r->nproperties == 2 && r->nthresholds == 0 && r->thresholds == NULL);
    EXPECT(r->properties[0].type == PROP_FLOAT && r->properties[0].save_amount);
    EXPECT(r->properties[0].name == NULL);
    EXPECT(r->properties[0].top_order == TOP_DESC && r->properties[0].top_limit == 5);
    EXPECT(r->properties[1].type == PROP_INT && !r->properties[1].save_amount);
    EXPECT(r->properties[1].top_order == TOP_ASC && r->properties[1].top_limit == 3);

    EXPECT(config_relation(c, "referrals") == &c->relations[1]);
    EXPECT(config_relation(c, "nope") == NULL);
    EXPECT(config_property(&c->relations[0], "approve") == 2);
    EXPECT(config_property(&c->relations[0], "revenue") == -1);
    return NULL;
}

/* ---- running ---- */

static void set_env(void)
{
    assert_int_equal(setenv("RELD_T_HOST", "127.0.0.1", 1), 0);
    assert_int_equal(setenv("RELD_T_PASS", "s3cret", 1), 0);
    assert_int_equal(setenv("RELD_T_EMPTY", "", 1), 0);
    assert_int_equal(setenv("RELD_T_SHORT", "orders", 1), 0);
    assert_int_equal(setenv("RELD_T_PROP", "p", 1), 0);
    assert_int_equal(setenv("RELD_T_META", "${RELD_T_UNSET}", 1), 0);
    assert_int_equal(setenv("AMQP_PASSWORD", "pw%21", 1), 0);
    assert_int_equal(unsetenv("RELD_T_UNSET"), 0);
}

/* Runs one case; returns 0 when it behaves as expected, else prints why. */
static int run_case(const char *name, const char *json, const char *want_err, Check check)
{
    char err[CONFIG_ERR_MAX];
    char *text = dq(json);
    strcpy(err, "(no message)");
    Config *cfg = config_parse(text, err, sizeof err);
    int bad = 0;
    if (want_err) {
        if (cfg) {
            printf("FAIL %s\n  expected error: %s\n  got: a valid configuration\n", name, want_err);
            bad = 1;
        } else if (strcmp(err, want_err) != 0) {
            printf("FAIL %s\n  expected error: %s\n  got error:      %s\n", name, want_err, err);
            bad = 1;
        }
    } else if (!cfg) {
        printf("FAIL %s\n  expected: valid\n  got error: %s\n", name, err);
        bad = 1;
    } else if (check) {
        const char *why = check(cfg);
        if (why) {
            printf("FAIL %s\n  expected: %s\n  got: not so\n", name, why);
            bad = 1;
        }
    }
    config_free(cfg);
    free(text);
    return bad;
}

static void test_config_table(void **state)
{
    (void)state;
    int failures = 0;
    size_t n = sizeof cases / sizeof cases[0];
    set_env();
    for (size_t i = 0; i < n; i++)
        failures += run_case(cases[i].name, cases[i].json, cases[i].error, cases[i].check);
    printf("config cases: %zu, failures: %d\n", n, failures);
    assert_int_equal(failures, 0);
}

static void test_config_example(void **state)
{
    (void)state;
    set_env();
    assert_int_equal(run_case("complete example configuration", example, NULL, check_example), 0);
}

/* An unset variable in the example is reported with its path. */
static void test_config_example_unset(void **state)
{
    (void)state;
    set_env();
    assert_int_equal(unsetenv("AMQP_PASSWORD"), 0);
    int bad = run_case("example without AMQP_PASSWORD", example,
                       "amqp.url: environment variable AMQP_PASSWORD is not set", NULL);
    set_env();
    assert_int_equal(bad, 0);
}

/* A message longer than the buffer is cut, never overflows it. */
static void test_config_small_buffer(void **state)
{
    (void)state;
    char err[16];
    memset(err, 'Z', sizeof err);
    char *text = dq(CFG("'relations':[],'bogus':1"));
    Config *cfg = config_parse(text, err, 10);
    free(text);
    assert_null(cfg);
    assert_string_equal(err, "bogus: un");
    assert_int_equal(err[10], 'Z');
}

/* config_load names the file in front of the message, and reads a float
 * threshold from the file's text. */
static void test_config_load(void **state)
{
    (void)state;
    char path[] = "/tmp/relationd-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char body[] = "{\"relations\": []}\n";
    assert_int_equal(write(fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
    close(fd);

    char err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX];
    Config *cfg = config_load(path, err, sizeof err);
    snprintf(want, sizeof want, "%s: redis: required", path);
    int bad = 0;
    if (cfg || strcmp(err, want) != 0) {
        printf("FAIL config_load\n  expected error: %s\n  got error:      %s\n", want,
               cfg ? "(valid)" : err);
        bad = 1;
    }
    config_free(cfg);
    unlink(path);

    /* A float threshold is rounded on the text of the file. */
    char fpath[] = "/tmp/relationd-test-config-XXXXXX";
    fd = mkstemp(fpath);
    assert_true(fd >= 0);
    const char floats[] =
        "{\"redis\": {\"url\": \"redis://localhost\"}, \"relations\": [{\"short\": \"r\",\n"
        " \"database_a\": \"a\", \"database_b\": \"b\",\n"
        " \"properties\": [{\"short\": \"f\", \"type\": \"float\"}],\n"
        " \"thresholds\": [{\"direction\": \"direct\", \"stat\": \"edge\", \"property\": \"f\",\n"
        "                 \"value\": 0.49999949999999999}]}]}\n";
    assert_int_equal(write(fd, floats, sizeof floats - 1), (ssize_t)(sizeof floats - 1));
    close(fd);
    cfg = config_load(fpath, err, sizeof err);
    unlink(fpath);
    if (!cfg || cfg->relations[0].thresholds[0].value != 499999) {
        printf("FAIL config_load of a float threshold\n  expected: 499999\n  got: %s %lld\n",
               cfg ? "" : err, cfg ? (long long)cfg->relations[0].thresholds[0].value : 0LL);
        bad = 1;
    }
    config_free(cfg);

    cfg = config_load("/nonexistent/relationd.json", err, sizeof err);
    if (cfg || strncmp(err, "/nonexistent/relationd.json: ", 29) != 0) {
        printf("FAIL config_load of a missing file\n  got: %s\n", cfg ? "(valid)" : err);
        bad = 1;
    }
    config_free(cfg);
    assert_int_equal(bad, 0);
}

/* Every secret written in a file other users can read is named (never its
 * value); one from the environment (${NAME}) is not; a private file is not
 * warned about. */
static void test_config_secret_exposed(void **state)
{
    (void)state;
    char path[] = "/tmp/relationd-test-secret-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *body = dq(
        "{'redis':{'url':'redis://:r3dis@h/0'},"
        "'kafka':{'brokers':'b','topics':['t'],'dead_letter_topic':'d',"
        "'properties':{'sasl.username':'u','sasl.password':'k4fka','ssl.key.password':'${PW}',"
        "'sasl.oauthbearer.client.secret':'pre-${PW}'}},"
        "'amqp':{'url':'amqp://u:amqp@h/','queue':'q','dead_letter_exchange':'x'},"
        "'hooks':{'url':'amqp://u:${PW}@h/'},"
        "'http':{'listen':'127.0.0.1:1','token':'t0ken','write_token':'wr1te'},'relations':[]}");
    assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    free(body);
    close(fd);
    char what[1024];
    assert_int_equal(chmod(path, 0640), 0);
    assert_true(config_secret_exposed(path, what, sizeof what));
    assert_string_equal(what, "the password of redis.url, the password of amqp.url, http.token, "
                              "http.write_token, kafka.properties.sasl.password and "
                              "kafka.properties.sasl.oauthbearer.client.secret (mode 0640)");
    char small[40]; /* cut, still a string */
    assert_true(config_secret_exposed(path, small, sizeof small));
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(chmod(path, 0600), 0);
    assert_false(config_secret_exposed(path, what, sizeof what));

    body = dq("{'redis':{'url':'redis://:${PW}@h/0'},'http':{'listen':'h:1','token':'${T}'},"
              "'hooks':{'url':'amqp://u:${PW}${PW}@h/'},'relations':[]}");
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    free(body);
    close(fd);
    assert_int_equal(chmod(path, 0644), 0);
    assert_false(config_secret_exposed(path, what, sizeof what));
    unlink(path);
}

/* A reload keeps the running connection settings, takes the new relations
 * and engine settings, and names the sections whose settings differed. */
static void test_config_keep_connections(void **state)
{
    (void)state;
    char err[CONFIG_ERR_MAX], changed[128];
    char *a = dq("{'redis':{'url':'redis://h1:1/0','key_prefix':'a:'},"
                 "'engine':{'batch_size':10},"
                 "'kafka':{'brokers':'b1','topics':['t1','t2'],'dead_letter_topic':'d1',"
                 "'properties':{'security.protocol':'plaintext','client.rack':'r1'}},"
                 "'amqp':{'url':'amqp://h1','queue':'q1','dead_letter_exchange':'x1'},"
                 "'hooks':{'url':'amqp://h1'},'relations':[]}");
    char *b = dq("{'redis':{'url':'redis://h2:2/0','key_prefix':'a:'},"
                 "'engine':{'batch_size':20},"
                 "'kafka':{'brokers':'b2','topics':['t9'],'dead_letter_topic':'d1'},"
                 "'amqp':{'url':'amqp://h1','queue':'q1','dead_letter_exchange':'x1'},"
                 "'hooks':{'url':'amqp://h1'},"
                 "'relations':[{'short':'r','database_a':'a','database_b':'b'}]}");
    Config *running = config_parse(a, err, sizeof err);
    assert_non_null(running);
    Config *fresh = config_parse(b, err, sizeof err);
    assert_non_null(fresh);
    free(a);
    free(b);

    assert_true(config_keep_connections(fresh, running, changed, sizeof changed));
    assert_string_equal(changed, "redis, kafka");
    assert_string_equal(fresh->redis_url, "redis://h1:1/0");
    assert_string_equal(fresh->redis.host, "h1");
    assert_int_equal(fresh->redis.port, 1);
    assert_string_equal(fresh->kafka.brokers, "b1");
    assert_int_equal(fresh->kafka.ntopics, 2);
    assert_string_equal(fresh->kafka.topics[1], "t2");
    assert_int_equal(fresh->kafka.nproperties, 2);
    assert_string_equal(fresh->kafka.property_keys[1], "client.rack");
    assert_string_equal(fresh->kafka.property_values[1], "r1");
    assert_int_equal(fresh->batch_size, 20);    /* reloadable */
    assert_int_equal(fresh->nrelations, 1);     /* reloadable */
    assert_string_equal(running->redis_url, "redis://h1:1/0"); /* untouched */
    assert_string_equal(running->kafka.brokers, "b1");

    /* The same file again: nothing differs. */
    assert_true(config_keep_connections(running, fresh, changed, sizeof changed));
    assert_string_equal(changed, "");
    config_free(running); /* each frees its own copies */
    config_free(fresh);
}

/* The table's reloadable flag is what a reload does: a change of any one key
 * of a connection section that the table reads is named (with its section)
 * and undone when the row is not reloadable, and taken silently when it is. */
static void test_config_reload_follows_the_table(void **state)
{
    (void)state;
    /* another valid value for each key the table reads in those sections */
    static const struct {
        const char *section, *key, *value;
    } other[] = {
        {"redis", "url", "\"redis://h9:9/1\""}, {"redis", "key_prefix", "\"z:\""},
        {"redis", "timeout_ms", "7"},           {"redis", "wait_replicas", "2"},
        {"redis", "engine", "\"function\""},
        {"kafka", "brokers", "\"b9\""},         {"kafka", "group_id", "\"g9\""},
        {"kafka", "dead_letter_topic", "\"d9\""}, {"amqp", "url", "\"amqp://h9\""},
        {"amqp", "queue", "\"q9\""},            {"amqp", "dead_letter_exchange", "\"x9\""},
        {"amqp", "declare", "false"},           {"hooks", "url", "\"amqp://h9\""},
        {"hooks", "exchange", "\"e9\""},        {"hooks", "declare", "false"},
        {"hooks", "max_backlog", "7"},          {"hooks", "defer_ms", "9"},
        {"hooks", "defer_idle_percent", "9"},
        {"http", "listen", "\"127.0.0.1:9\""},  {"http", "token", "\"t9\""},
        {"http", "write_token", "\"w9\""},    {"http", "max_body_bytes", "4096"},
        {"http", "write_timeout_ms", "700"},  {"http", "max_writes", "9"},
    };
    const char *base = "{\"redis\":{\"url\":\"redis://h1:1/0\"},"
                       "\"kafka\":{\"brokers\":\"b1\",\"topics\":[\"t1\"],\"dead_letter_topic\":\"d1\"},"
                       "\"amqp\":{\"url\":\"amqp://h1\",\"queue\":\"q1\",\"dead_letter_exchange\":\"x1\"},"
                       "\"hooks\":{\"url\":\"amqp://h1\"},\"http\":{\"listen\":\"127.0.0.1:1\"},"
                       "\"relations\":[]}";
    char err[CONFIG_ERR_MAX], changed[128];
    size_t tested = 0;
    for (size_t i = 0; i < config_nkeys; i++) {
        const ConfigKey *k = &config_keys[i];
        bool connection = strcmp(k->section, "redis") == 0 || strcmp(k->section, "kafka") == 0 ||
                          strcmp(k->section, "amqp") == 0 || strcmp(k->section, "hooks") == 0 ||
                          strcmp(k->section, "http") == 0;
        if (!connection || !k->size)
            continue;
        const char *value = NULL;
        for (size_t j = 0; j < sizeof other / sizeof other[0]; j++)
            if (strcmp(other[j].section, k->section) == 0 && strcmp(other[j].key, k->key) == 0)
                value = other[j].value;
        if (!value)
            fail_msg("no other value for %s.%s in this test", k->section, k->key);
        json_t *doc = json_loads(base, 0, NULL);
        assert_non_null(doc);
        assert_int_equal(json_object_set_new(json_object_get(doc, k->section), k->key,
                                             json_loads(value, JSON_DECODE_ANY, NULL)),
                         0);
        char *text = json_dumps(doc, 0);
        json_decref(doc);
        Config *running = config_parse(base, err, sizeof err);
        assert_non_null(running);
        Config *fresh = config_parse(text, err, sizeof err);
        if (!fresh)
            fail_msg("%s.%s: %s", k->section, k->key, err);
        free(text);
        assert_true(config_keep_connections(fresh, running, changed, sizeof changed));
        if (k->reloadable) {
            assert_string_equal(changed, "");
        } else {
            assert_string_equal(changed, k->section);
            /* undone: the same as the running one now */
            assert_true(config_keep_connections(fresh, running, changed, sizeof changed));
            assert_string_equal(changed, "");
        }
        config_free(running);
        config_free(fresh);
        tested++;
    }
    assert_int_equal(tested, sizeof other / sizeof other[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_table),
        cmocka_unit_test(test_config_example),
        cmocka_unit_test(test_config_example_unset),
        cmocka_unit_test(test_config_small_buffer),
        cmocka_unit_test(test_config_load),
        cmocka_unit_test(test_config_keep_connections),
        cmocka_unit_test(test_config_reload_follows_the_table),
        cmocka_unit_test(test_config_secret_exposed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
