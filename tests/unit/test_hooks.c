/* test_hooks.c — the `hooks` section (config/hooks.c): the list of named
 * hooks and the single object, every rule with its exact message (each
 * names the JSON path), the filter (hook_filter_pass), the hook that
 * relationctl watch and apply --publish use (hooks_url ...), what a reload keeps, the secret's
 * key, the description --check-config prints; and lib/base64.h.
 * JSON texts are written with single quotes, turned into double quotes
 * before parsing. */
#include "tests/unit/helpers.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "handlers/trigger.h"
#include "lib/base64.h"

/* the filter takes a trigger's kind as it is */
_Static_assert((int)HOOK_ON_ATTACH == (int)KIND_ATTACH && (int)HOOK_ON_CHANGE == (int)KIND_CHANGE &&
                   (int)HOOK_ON_DETACH == (int)KIND_DETACH &&
                   (int)HOOK_ON_THRESHOLD == (int)KIND_THRESHOLD,
               "hook filter kinds are trigger kinds");

static Config *parse(const char *text, char *err, size_t len)
{
    char *t = dq(text);
    Config *c = config_parse(t, err, len);
    free(t);
    return c;
}

#define RELS "'relations':[{'short':'referrals','database_a':'a','database_b':'b'}," \
             "{'short':'loyal','database_a':'a','database_b':'b'}]"
#define DOC(hooks) "{'redis':{'url':'redis://h'},'hooks':" hooks "," RELS "}"
#define SRC_DOC(hooks) "{'redis':{'url':'redis://h'},'amqp':{'url':'amqp://h','queue':'q'," \
                       "'dead_letter_exchange':'x'},'hooks':" hooks "," RELS "}"
#define AMQP_X "{'name':'mailing','kind':'amqp','url':'amqp://u:p@h/','exchange':'relation.hooks'}"
#define HTTP(rest) "{'name':'partner','kind':'http','url':'https://partner.example/hook'" rest "}"
/* 24 bytes, the Standard Webhooks libraries' test secret */
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static const struct {
    const char *name, *json, *error;
} refused[] = {
    {"empty list", DOC("[]"), "hooks: must be an object or a non-empty array of hooks"},
    {"a string", DOC("'amqp://h'"), "hooks: must be an object or a non-empty array of hooks"},
    {"entry not an object", DOC("[3]"), "hooks[0]: must be an object"},
    {"no name", DOC("[{'kind':'kafka','brokers':'b','topic':'t'}]"), "hooks[0].name: required"},
    {"bad name", DOC("[{'name':'Mailing','kind':'kafka','brokers':'b','topic':'t'}]"),
     "hooks[0].name: must be 1..64 of a-z, 0-9, _ and -"},
    {"duplicate name", DOC("[" AMQP_X "," AMQP_X "]"), "hooks[1].name: duplicate \"mailing\""},
    {"no kind", DOC("[{'name':'x'}]"), "hooks[0].kind: required"},
    {"bad kind", DOC("[{'name':'x','kind':'smtp'}]"), "hooks[0].kind: must be amqp, kafka or http"},
    {"unknown key", DOC("[{'name':'x','kind':'kafka','brokers':'b','topic':'t','qeue':'q'}]"),
     "hooks[0].qeue: unknown key"},
    {"key of another kind", DOC("[{'name':'x','kind':'kafka','brokers':'b','topic':'t','url':'amqp://h'}]"),
     "hooks[0].url: only for kinds amqp and http"},
    {"http key on amqp", DOC("[{'name':'x','kind':'amqp','url':'amqp://h','queue':'q','batch_size':5}]"),
     "hooks[0].batch_size: only for kind http"},
    {"amqp without url", DOC("[{'name':'x','kind':'amqp','queue':'q'}]"),
     "hooks[0].url: required for kind amqp"},
    {"amqp bad url", DOC("[{'name':'x','kind':'amqp','url':'http://h','queue':'q'}]"),
     "hooks[0].url: must start with amqp:// or amqps://"},
    {"amqp both", DOC("[{'name':'x','kind':'amqp','url':'amqp://h','queue':'q','exchange':'e'}]"),
     "hooks[0]: exactly one of exchange and queue"},
    {"amqp neither", DOC("[{'name':'x','kind':'amqp','url':'amqp://h'}]"),
     "hooks[0]: exactly one of exchange and queue"},
    {"amqp empty queue", DOC("[{'name':'x','kind':'amqp','url':'amqp://h','queue':''}]"),
     "hooks[0].queue: must not be empty"},
    {"exchange_type with queue",
     DOC("[{'name':'x','kind':'amqp','url':'amqp://h','queue':'q','exchange_type':'direct'}]"),
     "hooks[0].exchange_type: only with exchange"},
    {"exchange_type enum",
     DOC("[{'name':'x','kind':'amqp','url':'amqp://h','exchange':'e','exchange_type':'fanout'}]"),
     "hooks[0].exchange_type: must be topic or direct"},
    {"amqp tls without amqps",
     DOC("[{'name':'x','kind':'amqp','url':'amqp://h','queue':'q','tls':{'verify':false}}]"),
     "hooks[0].tls: only with an amqps:// url"},
    {"kafka without topic", DOC("[{'name':'x','kind':'kafka','brokers':'b'}]"),
     "hooks[0].topic: required for kind kafka"},
    {"kafka empty brokers", DOC("[{'name':'x','kind':'kafka','brokers':'','topic':'t'}]"),
     "hooks[0].brokers: must not be empty"},
    {"kafka acks 1",
     DOC("[{'name':'x','kind':'kafka','brokers':'b','topic':'t','properties':{'acks':'1'}}]"),
     "hooks[0].properties.acks: must be all (or -1): a trigger acknowledged by fewer than all "
     "in-sync replicas could be lost with its broker"},
    {"kafka bootstrap",
     DOC("[{'name':'x','kind':'kafka','brokers':'b','topic':'t','properties':{'bootstrap.servers':'b'}}]"),
     "hooks[0].properties.bootstrap.servers: is the hook's brokers"},
    {"kafka property object",
     DOC("[{'name':'x','kind':'kafka','brokers':'b','topic':'t','properties':{'linger.ms':{}}}]"),
     "hooks[0].properties.linger.ms: must be a string, a number or a boolean"},
    {"http without url", DOC("[{'name':'x','kind':'http'}]"), "hooks[0].url: required for kind http"},
    {"http bad url", DOC("[{'name':'x','kind':'http','url':'ftp://h/'}]"),
     "hooks[0].url: must be http[s]://host[:port][/path]"},
    {"http no host", DOC("[{'name':'x','kind':'http','url':'https:///p'}]"),
     "hooks[0].url: must be http[s]://host[:port][/path]"},
    {"batch_size 0", DOC("[" HTTP(",'batch_size':0") "]"),
     "hooks[0].batch_size: must be an integer 1..10000"},
    {"batch_size 10001", DOC("[" HTTP(",'batch_size':10001") "]"),
     "hooks[0].batch_size: must be an integer 1..10000"},
    {"bad regex", DOC("[" HTTP(",'success_regex':'(OK'") "]"),
     "hooks[0].success_regex: not a POSIX extended regular expression: Unmatched ( or \\("},
    {"secret without prefix", DOC("[" HTTP(",'secret':'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'") "]"),
     "hooks[0].secret: must be whsec_ and the base64 of 24..64 bytes"},
    {"secret not base64", DOC("[" HTTP(",'secret':'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w'") "]"),
     "hooks[0].secret: must be whsec_ and the base64 of 24..64 bytes"},
    {"secret too short", DOC("[" HTTP(",'secret':'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La'") "]"),
     "hooks[0].secret: must be whsec_ and the base64 of 24..64 bytes"},
    {"header not a string", DOC("[" HTTP(",'headers':{'X-A':1}") "]"),
     "hooks[0].headers.X-A: must be a string"},
    {"header name", DOC("[" HTTP(",'headers':{'X A':'v'}") "]"),
     "hooks[0].headers.X A: not a header name (1..128 letters, digits or !#$%&'*+-.^_`|~)"},
    {"header line break", DOC("[" HTTP(",'headers':{'X-A':'v\\r\\nX-B: w'}") "]"),
     "hooks[0].headers.X-A: must not hold a line break"},
    {"header relationd sets", DOC("[" HTTP(",'headers':{'Webhook-Signature':'v1,x'}") "]"),
     "hooks[0].headers.Webhook-Signature: set by relationd"},
    {"http tls with http://",
     DOC("[{'name':'x','kind':'http','url':'http://h/','tls':{'verify':false}}]"),
     "hooks[0].tls: only with an https:// url"},
    {"filter not an object", DOC("[" HTTP(",'filter':[]") "]"), "hooks[0].filter: must be an object"},
    {"filter unknown key", DOC("[" HTTP(",'filter':{'kind':['attach']}") "]"),
     "hooks[0].filter.kind: unknown key"},
    {"filter unknown relation", DOC("[" AMQP_X "," HTTP(",'filter':{'relations':['referals']}") "]"),
     "hooks[1].filter.relations[0]: no relation \"referals\""},
    {"filter empty relations", DOC("[" HTTP(",'filter':{'relations':[]}") "]"),
     "hooks[0].filter.relations: must be a non-empty array (leave it out for all)"},
    {"filter bad kind", DOC("[" HTTP(",'filter':{'kinds':['attach','attached']}") "]"),
     "hooks[0].filter.kinds[1]: must be attach, change, detach or threshold"},
    {"filter bad direction", DOC("[" HTTP(",'filter':{'directions':['both']}") "]"),
     "hooks[0].filter.directions[0]: must be direct or reverse"},
    {"max_backlog 0", DOC("[" HTTP(",'max_backlog':0") "]"),
     "hooks[0].max_backlog: must be an integer 1..1000000000"},
    {"single object: unknown key", DOC("{'url':'amqp://h','queue':'q'}"), "hooks.queue: unknown key"},
};

static void test_hooks_refused(void **state)
{
    (void)state;
    char err[CONFIG_ERR_MAX];
    int failures = 0;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        Config *c = parse(refused[i].json, err, sizeof err);
        if (c || strcmp(err, refused[i].error) != 0) {
            printf("FAIL %s\n  expected: %s\n  got:      %s\n", refused[i].name, refused[i].error,
                   c ? "(accepted)" : err);
            failures++;
        }
        config_free(c);
    }
    assert_int_equal(failures, 0);
}

/* The spec's example list, every key read. */
#define SPEC_LIST                                                                              \
    "[{'name':'mailing','kind':'amqp','url':'amqp://u:p@h/','exchange':'relation.hooks'},"    \
    "{'name':'crm','kind':'amqp','url':'amqps://u:p@h/','queue':'crm.relations','declare':false," \
    " 'tls':{'verify':false},'filter':{'kinds':['attach','detach']}},"                         \
    "{'name':'lake','kind':'kafka','brokers':'host:9092','topic':'relation-triggers',"         \
    " 'properties':{'security.protocol':'ssl','linger.ms':5,'enable.idempotence':true}},"      \
    "{'name':'partner','kind':'http','url':'https://partner.example/hook','batch_size':50,"    \
    " 'batch_ms':200,'timeout_ms':3000,'success_regex':'.*OK.*','secret':'" SECRET "',"         \
    " 'headers':{'Authorization':'Bearer ${HOOKS_TEST_TOKEN}'},'max_backlog':5000,"           \
    " 'filter':{'relations':['referrals'],'directions':['direct']}}]"

static void test_hooks_list(void **state)
{
    (void)state;
    char err[CONFIG_ERR_MAX];
    assert_int_equal(setenv("HOOKS_TEST_TOKEN", "t0k", 1), 0);
    Config *c = parse(SRC_DOC(SPEC_LIST), err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->nhooks, 4);
    const HookDef *m = &c->hooks[0], *crm = &c->hooks[1], *lake = &c->hooks[2],
                  *p = &c->hooks[3];
    assert_string_equal(m->name, "mailing");
    assert_int_equal(m->kind, HOOK_AMQP);
    assert_string_equal(m->exchange, "relation.hooks");
    assert_null(m->queue);
    assert_int_equal(m->exchange_type, HOOK_EXCHANGE_TOPIC);
    assert_true(m->declare);
    assert_int_equal(m->max_backlog, 1000000);
    assert_string_equal(crm->queue, "crm.relations");
    assert_false(crm->declare);
    assert_false(crm->tls.verify);
    assert_int_equal(crm->filter.kinds, 1u << HOOK_ON_ATTACH | 1u << HOOK_ON_DETACH);
    assert_int_equal(lake->kind, HOOK_KAFKA);
    assert_string_equal(lake->brokers, "host:9092");
    assert_string_equal(lake->topic, "relation-triggers");
    assert_int_equal(lake->nproperties, 3);
    assert_string_equal(lake->property_keys[1], "linger.ms");
    assert_string_equal(lake->property_values[1], "5");
    assert_string_equal(lake->property_values[2], "true");
    assert_int_equal(p->kind, HOOK_HTTP);
    assert_int_equal(p->batch_size, 50);
    assert_int_equal(p->batch_ms, 200);
    assert_int_equal(p->timeout_ms, 3000);
    assert_string_equal(p->success_regex, ".*OK.*");
    assert_string_equal(p->secret, SECRET);
    assert_int_equal(p->nheaders, 1);
    assert_string_equal(p->header_names[0], "Authorization");
    assert_string_equal(p->header_values[0], "Bearer t0k"); /* ${NAME} expanded */
    assert_int_equal(p->max_backlog, 5000);
    assert_int_equal(p->filter.nrelations, 1);
    assert_string_equal(p->filter.relations[0], "referrals");
    assert_int_equal(p->filter.directions, 1u << SIDE_DIRECT);
    /* the first amqp topic exchange is the one relationctl watch uses */
    assert_true(c->has_hooks);
    assert_int_equal(c->hooks_index, 0);
    assert_string_equal(c->hooks_url, "amqp://u:p@h/");
    assert_string_equal(c->hooks_exchange, "relation.hooks");
    assert_true(c->hooks_declare);

    unsigned char key[HOOK_SECRET_MAX];
    size_t len;
    assert_true(config_hook_key(p, key, &len));
    assert_int_equal(len, 24);
    assert_false(config_hook_key(m, key, &len));

    char line[512];
    config_hook_describe(c, 0, line, sizeof line);
    assert_string_equal(line, "hook mailing: amqp topic exchange relation.hooks at amqp://h/, "
                              "every trigger; backlog up to 1000000; relationctl watch and "
                              "apply --publish use it");
    config_hook_describe(c, 1, line, sizeof line);
    assert_string_equal(line, "hook crm: amqp queue crm.relations at amqps://h/, kinds attach, "
                              "detach; backlog up to 1000000");
    config_hook_describe(c, 2, line, sizeof line);
    assert_string_equal(line, "hook lake: kafka topic relation-triggers at host:9092, every "
                              "trigger; backlog up to 1000000");
    config_hook_describe(c, 3, line, sizeof line);
    assert_string_equal(line, "hook partner: http POST https://partner.example/hook (batches "
                              "of up to 50, 200 ms, timeout 3000 ms, signed, body checked), "
                              "relations referrals, directions direct; backlog up to 5000");
    config_free(c);
}

/* http defaults; a URL's credentials and query never described. */
static void test_hooks_http_defaults(void **state)
{
    (void)state;
    char err[CONFIG_ERR_MAX], line[512];
    Config *c = parse(DOC("[{'name':'p','kind':'http','url':'http://u:p@w@h:8080/x?token=s'}]"),
                      err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    const HookDef *h = &c->hooks[0];
    assert_int_equal(h->batch_size, 100);
    assert_int_equal(h->batch_ms, 1000);
    assert_int_equal(h->timeout_ms, 10000);
    assert_int_equal(h->max_backlog, 1000000);
    assert_null(h->secret);
    assert_null(h->success_regex);
    assert_false(c->has_hooks); /* no amqp exchange for relationctl watch */
    assert_int_equal(c->hooks_index, -1);
    assert_null(c->hooks_url);
    config_hook_describe(c, 0, line, sizeof line);
    assert_string_equal(line, "hook p: http POST http://h:8080/x (batches of up to 100, 1000 ms, "
                              "timeout 10000 ms), every trigger; backlog up to 1000000");
    config_free(c);
}

/* The single object is the hook "default"; in a list, "default" is taken
 * before an earlier amqp exchange, a direct exchange never. */
static void test_hooks_default(void **state)
{
    (void)state;
    char err[CONFIG_ERR_MAX];
    Config *c = parse(SRC_DOC("{'url':'amqp://h','max_backlog':9}"), err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->nhooks, 1);
    assert_string_equal(c->hooks[0].name, "default");
    assert_int_equal(c->hooks[0].kind, HOOK_AMQP);
    assert_string_equal(c->hooks[0].exchange, "relation.hooks");
    assert_int_equal(c->hooks[0].max_backlog, 9);
    assert_true(hook_filter_pass(&c->hooks[0], "loyal", SIDE_REVERSE, HOOK_ON_THRESHOLD));
    assert_string_equal(c->hooks_exchange, "relation.hooks");
    config_free(c);

    c = parse(SRC_DOC("[{'name':'d','kind':'amqp','url':'amqp://h1','exchange':'x1','exchange_type':'direct'},"
                      "{'name':'first','kind':'amqp','url':'amqp://h2','exchange':'x2'},"
                      "{'name':'default','kind':'amqp','url':'amqp://h3','exchange':'x3','declare':false}]"),
              err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->hooks_index, 2);
    assert_string_equal(c->hooks_url, "amqp://h3");
    assert_string_equal(c->hooks_exchange, "x3");
    assert_false(c->hooks_declare);
    config_free(c);
}

static void test_hooks_filter(void **state)
{
    (void)state;
    char err[CONFIG_ERR_MAX];
    Config *c = parse(DOC("[" HTTP(",'filter':{'relations':['referrals'],'kinds':['attach','threshold'],"
                                   "'directions':['reverse']}") ","
                          "{'name':'all','kind':'kafka','brokers':'b','topic':'t'},"
                          "{'name':'detach','kind':'kafka','brokers':'b','topic':'t',"
                          "'filter':{'kinds':['detach']}}]"),
                      err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    const HookDef *f = &c->hooks[0], *all = &c->hooks[1], *det = &c->hooks[2];
    assert_true(hook_filter_pass(f, "referrals", SIDE_REVERSE, HOOK_ON_ATTACH));
    assert_true(hook_filter_pass(f, "referrals", SIDE_REVERSE, HOOK_ON_THRESHOLD));
    assert_false(hook_filter_pass(f, "referrals", SIDE_DIRECT, HOOK_ON_ATTACH));
    assert_false(hook_filter_pass(f, "referrals", SIDE_REVERSE, HOOK_ON_CHANGE));
    assert_false(hook_filter_pass(f, "loyal", SIDE_REVERSE, HOOK_ON_ATTACH));
    assert_false(hook_filter_pass(f, "referral", SIDE_REVERSE, HOOK_ON_ATTACH));
    for (int kind = HOOK_ON_ATTACH; kind <= HOOK_ON_THRESHOLD; kind++)
        for (int side = 0; side < 2; side++) {
            assert_true(hook_filter_pass(all, "anything", (Side)side, kind));
            assert_true(hook_filter_pass(det, "loyal", (Side)side, kind) == (kind == HOOK_ON_DETACH));
        }
    /* not a trigger kind: passes no filter */
    assert_false(hook_filter_pass(all, "loyal", SIDE_DIRECT, 0));
    assert_false(hook_filter_pass(all, "loyal", SIDE_DIRECT, 5));
    config_free(c);
}

/* A reload keeps the running hooks (all of them, deep copies) and names
 * "hooks" when any setting of any hook differed. */
static void test_hooks_reload(void **state)
{
    (void)state;
    char err[CONFIG_ERR_MAX], changed[128];
    assert_int_equal(setenv("HOOKS_TEST_TOKEN", "t0k", 1), 0);
    Config *running = parse(SRC_DOC(SPEC_LIST), err, sizeof err);
    assert_non_null(running);
    static const char *const changes[] = {
        "'batch_size':50", "'batch_size':51",
        "'Bearer ${HOOKS_TEST_TOKEN}'", "'Bearer x'",
        "['referrals']", "['loyal']",
        "['attach','detach']", "['attach']",
        "'linger.ms':5", "'linger.ms':6",
        "'name':'lake'", "'name':'lake2'",
    };
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i += 2) {
        char *text = dq(SRC_DOC(SPEC_LIST));
        char *from = dq(changes[i]), *to = dq(changes[i + 1]);
        char *at = strstr(text, from);
        assert_non_null(at);
        size_t n = strlen(text) + strlen(to) + 1;
        char *edited = malloc(n);
        assert_non_null(edited);
        snprintf(edited, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
        Config *fresh = config_parse(edited, err, sizeof err);
        if (!fresh)
            fail_msg("%s: %s", changes[i + 1], err);
        assert_true(config_keep_connections(fresh, running, changed, sizeof changed));
        assert_string_equal(changed, "hooks");
        assert_true(config_keep_connections(fresh, running, changed, sizeof changed));
        assert_string_equal(changed, ""); /* running's kept */
        assert_int_equal(fresh->nhooks, 4);
        assert_string_equal(fresh->hooks[3].header_values[0], "Bearer t0k");
        assert_string_equal(fresh->hooks[3].filter.relations[0], "referrals");
        assert_string_equal(fresh->hooks_exchange, "relation.hooks");
        config_free(fresh);
        free(text);
        free(from);
        free(to);
        free(edited);
    }
    config_free(running);
}

/* A readable file naming a hook list's secrets written in it: each is
 * named by its path, those taken from the environment are not. */
static void test_hooks_secret_exposed(void **state)
{
    (void)state;
    char path[] = "/tmp/test_hooks_XXXXXX", what[1024];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *body = dq(DOC("[{'name':'a','kind':'amqp','url':'amqp://u:pw@h/','queue':'q'},"
                        "{'name':'k','kind':'kafka','brokers':'b','topic':'t',"
                        "'properties':{'sasl.password':'pw','client.id':'c'}},"
                        "{'name':'p','kind':'http','url':'https://h/','secret':'" SECRET "',"
                        "'headers':{'Authorization':'Bearer x','X-Api-Key':'${K}','X-Source':'r'}},"
                        "{'name':'e','kind':'http','url':'https://u:${P}@h/','secret':'${S}'}]"));
    assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    close(fd);
    free(body);
    assert_int_equal(chmod(path, 0644), 0);
    assert_true(config_secret_exposed(path, what, sizeof what));
    assert_string_equal(what, "the password of hooks[0].url, hooks[1].properties.sasl.password, "
                              "hooks[2].secret and hooks[2].headers.Authorization (mode 0644)");
    assert_int_equal(chmod(path, 0600), 0);
    assert_false(config_secret_exposed(path, what, sizeof what));
    unlink(path);
}

static void test_base64(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *text;
    } v[] = {{"", ""},           {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}}; /* RFC 4648 */
    char text[16];
    unsigned char raw[16];
    size_t n;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(base64_encode(v[i].raw, strlen(v[i].raw), text), strlen(v[i].text));
        assert_string_equal(text, v[i].text);
        assert_true(base64_decode(v[i].text, strlen(v[i].text), raw, sizeof raw, &n));
        assert_int_equal(n, strlen(v[i].raw));
        assert_memory_equal(raw, v[i].raw, n);
    }
    unsigned char all[256];
    char big[BASE64_LEN(256) + 1];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    assert_int_equal(base64_encode(all, 256, big), BASE64_LEN(256));
    unsigned char back[256];
    assert_true(base64_decode(big, strlen(big), back, sizeof back, &n));
    assert_int_equal(n, 256);
    assert_memory_equal(back, all, 256);
    static const char *const bad[] = {"Zg=", "Zg===", "Z===", "Zm9v!A==", "Zh==", "Zm9=",
                                      "=Zm9", "Zg==Zg==", "Zm 9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(base64_decode(bad[i], strlen(bad[i]), raw, sizeof raw, &n));
    assert_false(base64_decode("Zm9vYmFy", 8, raw, 5, &n)); /* does not fit */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks_refused),     cmocka_unit_test(test_hooks_list),
        cmocka_unit_test(test_hooks_http_defaults), cmocka_unit_test(test_hooks_default),
        cmocka_unit_test(test_hooks_filter),      cmocka_unit_test(test_hooks_reload),
        cmocka_unit_test(test_hooks_secret_exposed), cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
