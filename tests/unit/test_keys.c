/* test_keys.c — the key layout (handlers/keys.h): hostile profile ids and
 * event ids escaped so that they neither end the hash tag nor forge another
 * profile's key; the slot the engine routes a side to equals the slot Redis
 * computes for each of the side's keys (the CRC16 of the hash tag, cluster
 * specification), with values given by CLUSTER KEYSLOT of Redis 7; side keys
 * decoded back; glob patterns literal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "handlers/cluster.h"
#include "handlers/keys.h"

static Config cfg = {.key_prefix = "rp:"};
static RelationDef rel = {.short_name = "rel"};

/* The key as key_write writes it, without its RESP header and CRLF, into
 * out; asserts the header's length is the key's. */
static size_t key_of(const char *profile, Side side, const char *suffix, const char *id,
                     char *out, size_t cap)
{
    JsonBuf b = {0};
    key_write(&b, &cfg, &rel, side, profile, suffix, id);
    assert_false(b.oom);
    assert_true(b.len > 4 && b.data[0] == '$');
    char *crlf = memchr(b.data, '\r', b.len);
    assert_non_null(crlf);
    size_t head = (size_t)(crlf - b.data) + 2, len = b.len - head - 2;
    size_t said = 0;
    assert_int_equal(sscanf(b.data + 1, "%zu", &said), 1);
    assert_int_equal(said, len);
    assert_memory_equal(b.data + b.len - 2, "\r\n", 2);
    assert_true(len < cap);
    memcpy(out, b.data + head, len);
    out[len] = '\0';
    jsonbuf_free(&b);
    return len;
}

static void test_plain_ids_read_as_they_are(void **state)
{
    (void)state;
    char k[256];
    key_of("1001", SIDE_DIRECT, "side", NULL, k, sizeof k);
    assert_string_equal(k, "rp:{rel:d:1001}:side");
    key_of("42", SIDE_REVERSE, "tomb:", "1001", k, sizeof k);
    assert_string_equal(k, "rp:{rel:r:42}:tomb:1001");
    key_of("é ü:*?", SIDE_DIRECT, "top:", "value", k, sizeof k);
    assert_string_equal(k, "rp:{rel:d:é ü:*?}:top:value");
}

static void test_hostile_ids_are_escaped(void **state)
{
    (void)state;
    char k[256];
    key_of("a{b}c%d", SIDE_DIRECT, "side", NULL, k, sizeof k);
    assert_string_equal(k, "rp:{rel:d:a%7Bb%7Dc%25d}:side");
    /* an id cannot end the tag early and name another profile's key */
    key_of("x}:side", SIDE_DIRECT, "seen", NULL, k, sizeof k);
    assert_string_equal(k, "rp:{rel:d:x%7D:side}:seen");
    /* an already escaped-looking id stays distinct from the id it spells */
    char k1[256], k2[256];
    key_of("%7B", SIDE_DIRECT, "side", NULL, k1, sizeof k1);
    key_of("{", SIDE_DIRECT, "side", NULL, k2, sizeof k2);
    assert_string_equal(k1, "rp:{rel:d:%257B}:side");
    assert_string_equal(k2, "rp:{rel:d:%7B}:side");
    /* the id after the suffix is escaped by the same rule */
    key_of("42", SIDE_REVERSE, "tomb:", "x}y{%", k, sizeof k);
    assert_string_equal(k, "rp:{rel:r:42}:tomb:x%7Dy%7B%25");
}

/* CLUSTER KEYSLOT of these keys, asked of a Redis 7 server in cluster mode. */
static void test_known_slots_from_redis(void **state)
{
    (void)state;
    static const struct {
        const char *profile, *suffix, *id;
        Side side;
        const char *key;
        int slot;
    } known[] = {
        {"a{b}c%d", "side", NULL, SIDE_DIRECT, "rp:{rel:d:a%7Bb%7Dc%25d}:side", 9686},
        {"42", "tomb:", "x}y", SIDE_REVERSE, "rp:{rel:r:42}:tomb:x%7Dy", 6549},
        {"{}", "seen", NULL, SIDE_DIRECT, "rp:{rel:d:%7B%7D}:seen", 7597},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char k[256];
        size_t len = key_of(known[i].profile, known[i].side, known[i].suffix, known[i].id, k,
                            sizeof k);
        assert_string_equal(k, known[i].key);
        assert_int_equal((int)cluster_slot(k, len), known[i].slot);
        assert_int_equal(key_slot(&rel, known[i].side, known[i].profile), known[i].slot);
    }
    /* another relation and no prefix: the tag alone decides */
    RelationDef follows = {.short_name = "follows"};
    /* CLUSTER KEYSLOT {follows:d:1001}:top:value */
    assert_int_equal(key_slot(&follows, SIDE_DIRECT, "1001"), 2445);
}

/* For every side, the slot the engine routes to is the slot of each of the
 * side's keys, and the CRC16 of the tag key_tag writes. */
static void test_slot_is_the_slot_of_every_key(void **state)
{
    (void)state;
    static const char *const profiles[] = {
        "1001", "{", "}", "%", "{}", "}{", "a{b", "a}b", "%7B", "%%{{}}", "{user1000}",
        "x}:side{y", "ü{", " ", "*",
    };
    static const char *const suffixes[] = {"side", "seen", "tomb:", "top:", "rebuild"};
    for (size_t p = 0; p < sizeof profiles / sizeof profiles[0]; p++)
        for (int s = 0; s < 2; s++) {
            int slot = key_slot(&rel, (Side)s, profiles[p]);
            JsonBuf tag = {0};
            key_tag(&tag, &rel, (Side)s, profiles[p]);
            assert_false(tag.oom);
            assert_int_equal(slot, cluster_crc16(tag.data, tag.len) & (CLUSTER_SLOTS - 1));
            /* the tag holds no brace: the key's hash tag is all of it */
            assert_null(memchr(tag.data, '{', tag.len));
            assert_null(memchr(tag.data, '}', tag.len));
            jsonbuf_free(&tag);
            for (size_t x = 0; x < sizeof suffixes / sizeof suffixes[0]; x++) {
                char k[256];
                size_t len = key_of(profiles[p], (Side)s, suffixes[x], "{7}", k, sizeof k);
                if ((int)cluster_slot(k, len) != slot)
                    fail_msg("profile %s side %d key %s: slot %u, routed to %d", profiles[p], s,
                             k, cluster_slot(k, len), slot);
            }
        }
}

static void test_side_keys_decode_to_their_profile(void **state)
{
    (void)state;
    static const char *const profiles[] = {"1001", "a{b}c%d", "%7B", "{", "x}:side"};
    size_t head = strlen("rp:{rel:d:");
    for (size_t p = 0; p < sizeof profiles / sizeof profiles[0]; p++) {
        char k[256], out[64];
        size_t len = key_of(profiles[p], SIDE_DIRECT, "side", NULL, k, sizeof k);
        assert_true(key_side_profile(k, len, head, "side", out, sizeof out));
        assert_string_equal(out, profiles[p]);
        /* layout 1's window of the same side, for the migration */
        len = key_of(profiles[p], SIDE_DIRECT, "seen", NULL, k, sizeof k);
        assert_true(key_side_profile(k, len, head, "seen", out, sizeof out));
        assert_string_equal(out, profiles[p]);
        assert_false(key_side_profile(k, len, head, "side", out, sizeof out));
    }
    char out[4];
    assert_false(key_side_profile("rp:{rel:d:1001}:seen", 20, head, "side", out, sizeof out));
    assert_false(key_side_profile("rp:{rel:d:1}:sideseen", 21, head, "seen", out, sizeof out));
    /* a profile longer than out, and an empty one */
    assert_false(key_side_profile("rp:{rel:d:1001}:side", 20, head, "side", out, sizeof out));
    assert_false(key_side_profile("rp:{rel:d:}:side", 16, head, "side", out, sizeof out));
    assert_false(key_side_profile("side", 4, head, "side", out, sizeof out));
}

static void test_glob_literal(void **state)
{
    (void)state;
    JsonBuf b = {0};
    key_glob_literal(&b, "a*b?[c]\\d");
    jsonbuf_char(&b, '\0');
    assert_false(b.oom);
    assert_string_equal(b.data, "a\\*b\\?\\[c\\]\\\\d");
    jsonbuf_free(&b);
}

/* The event key: SHA-1 of "id NUL counterpart", its first 8 bytes (the
 * digest of "abc\0def" computed by sha1sum). */
static void test_event_key_is_the_sha1_prefix(void **state)
{
    (void)state;
    unsigned char k[EVENT_KEY_LEN];
    event_key("abc", "def", k);
    assert_memory_equal(k, "\x48\x7b\x19\x75\xd9\x72\x15\x51", EVENT_KEY_LEN);
    unsigned char other[EVENT_KEY_LEN];
    event_key("abc", "de", other); /* the counterpart is part of it */
    assert_memory_not_equal(k, other, EVENT_KEY_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_ids_read_as_they_are),
        cmocka_unit_test(test_hostile_ids_are_escaped),
        cmocka_unit_test(test_known_slots_from_redis),
        cmocka_unit_test(test_slot_is_the_slot_of_every_key),
        cmocka_unit_test(test_side_keys_decode_to_their_profile),
        cmocka_unit_test(test_glob_literal),
        cmocka_unit_test(test_event_key_is_the_sha1_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
