/* test_hook_http.c — daemon/hook_http.c without a network: the Standard
 * Webhooks signature against the specification libraries' published test
 * vector (standard-webhooks, libraries/go/webhook_test.go, TestWebhookSign),
 * and the back-off's schedule (1 s doubling to 5 min, jitter up to half
 * again). Requests and their outcomes: tests/e2e/test_hook_http.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "config/config.h"
#include "daemon/hook_http.h"

static void test_signature_vector(void **state)
{
    (void)state;
    HookDef def;
    memset(&def, 0, sizeof def);
    def.secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    unsigned char key[HOOK_SECRET_MAX];
    size_t len;
    assert_true(config_hook_key(&def, key, &len));
    const char *body = "{\"test\": 2432232314}";
    char sig[HOOK_SIGNATURE_MAX];
    assert_true(hook_http_sign(key, len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                               strlen(body), sig));
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* another timestamp, another signature */
    assert_true(hook_http_sign(key, len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body,
                               strlen(body), sig));
    assert_string_not_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void test_backoff(void **state)
{
    (void)state;
    unsigned seed = 7;
    for (int round = 0; round < 200; round++) {
        int64_t base = 1000;
        for (unsigned f = 1; f <= 20; f++) {
            int64_t d = hook_http_backoff_ms(f, &seed);
            int64_t hi = base + base / 2 < HOOK_BACKOFF_MAX_MS ? base + base / 2 : HOOK_BACKOFF_MAX_MS;
            int64_t lo = base < HOOK_BACKOFF_MAX_MS ? base : HOOK_BACKOFF_MAX_MS;
            if (d < lo || d > hi)
                fail_msg("failure %u: %lld ms, not in %lld..%lld", f, (long long)d, (long long)lo,
                         (long long)hi);
            base *= 2;
        }
    }
    /* the jitter draws different delays */
    int64_t first = hook_http_backoff_ms(3, &seed);
    bool differs = false;
    for (int i = 0; i < 20 && !differs; i++)
        differs = hook_http_backoff_ms(3, &seed) != first;
    assert_true(differs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_vector),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
