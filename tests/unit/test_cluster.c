/* test_cluster.c — the hash slot of keys against the cluster specification's
 * CRC16 check value and slots Redis gives for known keys (CLUSTER KEYSLOT in
 * Redis's documentation), hash tag rules, MOVED/ASK parsing and the slot map
 * read from a CLUSTER SLOTS reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "handlers/cluster.h"

static unsigned slot(const char *key)
{
    return cluster_slot(key, strlen(key));
}

static void test_crc16_check_value(void **state)
{
    (void)state;
    assert_int_equal(cluster_crc16("123456789", 9), 0x31C3);
    assert_int_equal(cluster_crc16("", 0), 0);
}

static void test_known_slots(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        unsigned slot;
    } known[] = {
        {"somekey", 11058},        {"foo{hash_tag}", 2515},     {"bar{hash_tag}", 2515},
        {"{user1}.following", 8106}, {"user:info{1}", 9842},     {"user:case{1}", 9842},
        {"user:info", 15429},      {"user:case", 9491},         {"my_key", 13711},
        {"{user1234}:contact", 14020},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (slot(known[i].key) != known[i].slot)
            fail_msg("%s: slot %u, not %u", known[i].key, slot(known[i].key), known[i].slot);
    }
}

static void test_hash_tags(void **state)
{
    (void)state;
    /* the text between the first '{' and the first '}' after it */
    assert_int_equal(slot("foo{bar}{zap}"), slot("bar"));
    assert_int_equal(slot("foo{{bar}}zap"), slot("{bar"));
    /* an empty tag: the whole key */
    assert_int_equal(slot("foo{}{bar}"), cluster_crc16("foo{}{bar}", 10) & 16383);
    /* no closing brace, or only one: the whole key */
    assert_int_equal(slot("foo{bar"), cluster_crc16("foo{bar", 7) & 16383);
    assert_int_equal(slot("foo}bar{"), cluster_crc16("foo}bar{", 8) & 16383);
    /* every key of one side shares its tag */
    assert_int_equal(slot("rel:P{loyal:D:42}:side"), slot("loyal:D:42"));
    assert_int_equal(slot("rel:P{loyal:D:42}:top:profit"), slot("rel:P{loyal:D:42}:seen"));
    /* binary keys: the length counts, not a NUL */
    assert_int_equal(cluster_slot("a\0{b}", 5), slot("b"));
}

static void test_redirections(void **state)
{
    (void)state;
    unsigned s = 0;
    ClusterNode to;
    const char *m = "MOVED 3999 127.0.0.1:6381";
    assert_int_equal(cluster_redirect(m, strlen(m), &s, &to), REDIRECT_MOVED);
    assert_int_equal(s, 3999);
    assert_string_equal(to.host, "127.0.0.1");
    assert_int_equal(to.port, 6381);
    m = "ASK 16383 ::1:7000";
    assert_int_equal(cluster_redirect(m, strlen(m), &s, &to), REDIRECT_ASK);
    assert_int_equal(s, 16383);
    assert_string_equal(to.host, "::1");
    assert_int_equal(to.port, 7000);
    static const char *const bad[] = {
        "MOVED", "MOVED x 1.2.3.4:5", "MOVED 16384 h:1", "MOVED 1 h", "MOVED 1 h:0",
        "MOVED 1 h:70000", "MOVED 1 :6379", "MOVED 1 h:12x", "ERR unknown", "TRYAGAIN x",
        "ASK 1", "moved 1 h:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cluster_redirect(bad[i], strlen(bad[i]), &s, &to) != REDIRECT_NONE)
            fail_msg("parsed: %s", bad[i]);
}

/* ---- a CLUSTER SLOTS reply built by hand ---- */

static redisReply integer(long long v)
{
    return (redisReply){.type = REDIS_REPLY_INTEGER, .integer = v};
}

static redisReply string(const char *s)
{
    return (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)s, .len = strlen(s)};
}

static redisReply array(redisReply **elements, size_t n)
{
    return (redisReply){.type = REDIS_REPLY_ARRAY, .element = elements, .elements = n};
}

static void test_slot_map(void **state)
{
    (void)state;
    /* 0-5460 on :7000 (a replica :7003), 5461-10922 on :7001 announcing no
     * host, 10923-16383 on :7002, 16000 left out by a split range */
    redisReply h0 = string("10.0.0.1"), p0 = integer(7000), id0 = string("a");
    redisReply h3 = string("10.0.0.4"), p3 = integer(7003), id3 = string("d");
    redisReply h1 = string(""), p1 = integer(7001);
    redisReply h2 = string("10.0.0.3"), p2 = integer(7002);
    redisReply *n0e[] = {&h0, &p0, &id0}, *n3e[] = {&h3, &p3, &id3}, *n1e[] = {&h1, &p1},
               *n2e[] = {&h2, &p2};
    redisReply n0 = array(n0e, 3), n3 = array(n3e, 3), n1 = array(n1e, 2), n2 = array(n2e, 2);
    redisReply a0 = integer(0), b0 = integer(5460), a1 = integer(5461), b1 = integer(10922),
               a2 = integer(10923), b2 = integer(15999), a3 = integer(16001), b3 = integer(16383);
    redisReply *r0e[] = {&a0, &b0, &n0, &n3}, *r1e[] = {&a1, &b1, &n1}, *r2e[] = {&a2, &b2, &n2},
               *r3e[] = {&a3, &b3, &n2};
    redisReply r0 = array(r0e, 4), r1 = array(r1e, 3), r2 = array(r2e, 3), r3 = array(r3e, 3);
    redisReply *top[] = {&r0, &r1, &r2, &r3};
    redisReply reply = array(top, 4);

    static ClusterMap map;
    char err[128];
    assert_true(cluster_map_read(&map, &reply, "seed.example", err, sizeof err));
    assert_int_equal(map.nnodes, 3); /* primaries only */
    assert_string_equal(map.nodes[map.node[0]].host, "10.0.0.1");
    assert_int_equal(map.nodes[map.node[5460]].port, 7000);
    assert_string_equal(map.nodes[map.node[5461]].host, "seed.example");
    assert_int_equal(map.nodes[map.node[10922]].port, 7001);
    assert_int_equal(map.nodes[map.node[10923]].port, 7002);
    assert_int_equal(map.node[16000], -1);
    assert_int_equal(map.node[16001], map.node[15999]);

    /* malformed */
    redisReply bad_end = integer(16384);
    redisReply *re[] = {&a0, &bad_end, &n0};
    redisReply rbad = array(re, 3);
    redisReply *tb[] = {&rbad};
    redisReply bad = array(tb, 1);
    assert_false(cluster_map_read(&map, &bad, "h", err, sizeof err));
    assert_non_null(strstr(err, "out of 0..16383"));
    redisReply e = {.type = REDIS_REPLY_ERROR, .str = "ERR This instance has cluster support disabled"};
    e.len = strlen(e.str);
    assert_false(cluster_map_read(&map, &e, "h", err, sizeof err));
    assert_non_null(strstr(err, "cluster support disabled"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_check_value), cmocka_unit_test(test_known_slots),
        cmocka_unit_test(test_hash_tags),         cmocka_unit_test(test_redirections),
        cmocka_unit_test(test_slot_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
