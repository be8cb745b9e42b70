/* test_sha1.c — SHA-1 (sha1.h) against the FIPS 180 vectors, in one call
 * and in pieces: uneven ones, and byte by byte around the block and padding
 * edges. Trigger ids are SHA-1 based (test_trigger.c checks their layout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/sha1.h"
#include "tests/unit/helpers.h"

static void test_sha1_vectors(void **state)
{
    (void)state;
    char h[41];
    sha1_of("abc", 3, h);
    assert_string_equal(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    sha1_of("", 0, h);
    assert_string_equal(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    /* 56 bytes: the length no longer fits the first block */
    const char *v56 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha1_of(v56, strlen(v56), h);
    assert_string_equal(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    const char *v112 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    sha1_of(v112, strlen(v112), h);
    assert_string_equal(h, "a49b2446a02c645bf419f995b67091253a04a259");

    /* one million 'a', in uneven pieces */
    static char a[1000000];
    memset(a, 'a', sizeof a);
    sha1_of(a, sizeof a, h);
    assert_string_equal(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    Sha1 s;
    unsigned char d[20];
    sha1_init(&s);
    size_t done = 0, piece = 1;
    while (done < sizeof a) {
        size_t n = piece < sizeof a - done ? piece : sizeof a - done;
        sha1_update(&s, a + done, n);
        done += n;
        piece = piece * 7 % 193 + 1;
    }
    sha1_final(&s, d);
    sha1_hex(d, h);
    assert_string_equal(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");

    /* byte by byte equals all at once, around the block and padding edges */
    unsigned char buf[200];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 31 + 7);
    for (size_t len = 0; len <= 130; len++) {
        char whole[41], bytes[41];
        sha1_of(buf, len, whole);
        sha1_init(&s);
        for (size_t i = 0; i < len; i++)
            sha1_update(&s, buf + i, 1);
        sha1_final(&s, d);
        sha1_hex(d, bytes);
        assert_string_equal(whole, bytes);
    }
    /* known digests (Python's hashlib) at the padding edges: the padding
     * ends the block (55), spills into a second one (56..63), or fills it */
    static const struct {
        size_t len;
        const char *hex;
    } edges[] = {
        {55, "749bbefb28edc4638b28b2b9a9e03ab9a4032b90"},
        {56, "a5b6e9c29d201c774753ff8e7fb64931656f5e63"},
        {63, "d1a454409359fc372b4d22b3cea6488d6ba1be00"},
        {64, "39a0d8b645ad85f1f976731ed112ac9455e28b78"},
        {119, "562ecf8a430f8e1056e3619bae33628e9a1d0a4e"},
        {120, "353f6d2bf0e91aa91b74a2e0b3f297510f7d825f"},
        {127, "bebc42d2d3d1e5fb8ad8895c2dcef2d68a6c279a"},
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        sha1_of(buf, edges[i].len, h);
        assert_string_equal(h, edges[i].hex);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
