/* test_trigger_feed.c — daemon/trigger_feed.c without a server: a
 * subscriber's stream ("ready", then one server-sent event per trigger, in
 * order, whatever the reader's buffer), parking and waking, the bounds of
 * a slow subscriber's queue (count and bytes: the oldest dropped, then a
 * note with how many), the subscribers' limit, keepalives and the end.
 * Through a server: tests/e2e/test_ui.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/trigger_feed.h"
#include "lib/clock.h"

typedef struct {
    int parks, wakes;
} Calls;

static void on_park(void *ctx)
{
    ((Calls *)ctx)->parks++;
}

static void on_wake(void *ctx)
{
    ((Calls *)ctx)->wakes++;
}

static char join_err[128];

static FeedSub *join(Calls *calls)
{
    return trigger_feed_join(on_park, on_wake, calls, join_err, sizeof join_err);
}

/* n triggers whose bodies are body_len bytes: "{"i":K,...}" padded with 'x'. */
typedef struct {
    Trigger items[FEED_QUEUE_MAX + 64];
    char *bodies[FEED_QUEUE_MAX + 64];
    TriggerSet set;
} Batch;

static Batch *batch(size_t n, size_t body_len, size_t first)
{
    Batch *b = calloc(1, sizeof *b);
    assert_non_null(b);
    assert_true(n <= FEED_QUEUE_MAX + 64);
    for (size_t i = 0; i < n; i++) {
        b->bodies[i] = malloc(body_len + 1);
        assert_non_null(b->bodies[i]);
        int len = snprintf(b->bodies[i], body_len + 1, "{\"i\":%zu,\"pad\":\"", first + i);
        memset(b->bodies[i] + len, 'x', body_len - (size_t)len - 2);
        memcpy(b->bodies[i] + body_len - 2, "\"}", 2);
        b->items[i].body = b->bodies[i];
        b->items[i].len = body_len;
        b->items[i].routing_key = "relation.r.direct.attach";
    }
    b->set.items = b->items;
    b->set.n = n;
    return b;
}

static void batch_free(Batch *b)
{
    for (size_t i = 0; i < b->set.n; i++)
        free(b->bodies[i]);
    free(b);
}

/* Everything s has now, read cap bytes at a time (NUL-terminated). */
static char *drain(FeedSub *s, size_t cap)
{
    size_t len = 0, size = 1 << 16;
    char *out = malloc(size);
    assert_non_null(out);
    for (;;) {
        if (size - len < cap + 1) {
            size = size * 2 + cap;
            out = realloc(out, size);
            assert_non_null(out);
        }
        long n = trigger_feed_read(s, out + len, cap);
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    out[len] = '\0';
    return out;
}

static void expect_trigger(const char **p, size_t i, size_t body_len)
{
    char head[64];
    int hl = snprintf(head, sizeof head, "event: trigger\ndata: {\"i\":%zu,", i);
    assert_memory_equal(*p, head, (size_t)hl);
    const char *end = strstr(*p, "\n\n");
    assert_non_null(end);
    assert_int_equal((size_t)(end - *p), strlen("event: trigger\ndata: ") + body_len);
    *p = end + 2;
}

static void test_ready_then_each_trigger_in_order(void **state)
{
    (void)state;
    Calls calls = {0};
    FeedSub *s = join(&calls);
    assert_non_null(s);
    assert_int_equal(atomic_load(&trigger_feed_subscribers), 1);
    char *text = drain(s, 4096);
    assert_string_equal(text, "event: ready\ndata: {}\n\n");
    free(text);
    assert_int_equal(calls.parks, 1); /* nothing left: parked */
    assert_int_equal(calls.wakes, 0);

    Batch *b = batch(5, 300, 0);
    trigger_feed_post(&b->set);
    assert_int_equal(calls.wakes, 1);
    text = drain(s, 7); /* a small buffer: records cut anywhere */
    const char *p = text;
    for (size_t i = 0; i < 5; i++)
        expect_trigger(&p, i, 300);
    assert_string_equal(p, "");
    free(text);
    assert_int_equal(calls.parks, 2);
    /* posted while not parked: no wake */
    trigger_feed_post(&b->set);
    trigger_feed_post(&b->set);
    assert_int_equal(calls.wakes, 2);
    text = drain(s, 4096);
    p = text;
    for (size_t i = 0; i < 10; i++)
        expect_trigger(&p, i % 5, 300);
    free(text);
    batch_free(b);
    trigger_feed_leave(s);
    assert_int_equal(atomic_load(&trigger_feed_subscribers), 0);
}

static void test_a_slow_subscriber_drops_the_oldest_with_a_note(void **state)
{
    (void)state;
    Calls slow_calls = {0}, fast_calls = {0};
    FeedSub *slow = join(&slow_calls);
    FeedSub *fast = join(&fast_calls);
    assert_non_null(slow);
    assert_non_null(fast);
    free(drain(slow, 4096));
    free(drain(fast, 4096));
    /* by count: FEED_QUEUE_MAX + 40, the first 40 dropped */
    Batch *b = batch(FEED_QUEUE_MAX + 40, 200, 0);
    trigger_feed_post(&b->set);
    char *text = drain(slow, 1000);
    const char *p = text;
    const char note[] = "event: dropped\ndata: {\"dropped\":40}\n\n";
    assert_memory_equal(p, note, sizeof note - 1);
    p += sizeof note - 1;
    for (size_t i = 40; i < FEED_QUEUE_MAX + 40; i++)
        expect_trigger(&p, i, 200);
    assert_string_equal(p, "");
    free(text);
    batch_free(b);
    free(drain(fast, 1 << 16));

    /* by bytes: 100 KiB bodies, FEED_QUEUE_BYTES holds 10 of them; the
     * record being read is finished first, the note comes after it */
    Batch *big = batch(3, 100 * 1024, 0);
    trigger_feed_post(&big->set);
    char part[100];
    assert_int_equal(trigger_feed_read(slow, part, sizeof part), sizeof part); /* 0 started */
    batch_free(big);
    big = batch(30, 100 * 1024, 3);
    trigger_feed_post(&big->set);
    text = drain(slow, 4096);
    size_t rest = strlen("event: trigger\ndata: ") + 100 * 1024 + 2 - sizeof part; /* of 0 */
    assert_memory_equal(text + rest - 2, "\n\n", 2);
    p = text + rest;
    const char note2[] = "event: dropped\ndata: {\"dropped\":22}\n\n"; /* 1, 2 and 3..22 */
    assert_memory_equal(p, note2, sizeof note2 - 1);
    p += sizeof note2 - 1;
    for (size_t i = 23; i < 33; i++)
        expect_trigger(&p, i, 100 * 1024);
    assert_string_equal(p, "");
    free(text);
    batch_free(big);
    trigger_feed_leave(slow);
    trigger_feed_leave(fast);
}

static void test_at_most_subs_max_subscribers(void **state)
{
    (void)state;
    Calls calls = {0};
    FeedSub *subs[FEED_SUBS_MAX];
    for (int i = 0; i < FEED_SUBS_MAX; i++)
        assert_non_null(subs[i] = join(&calls));
    assert_null(join(&calls));
    assert_string_equal(join_err, "busy: 16 trigger streams open already, retry later");
    trigger_feed_leave(subs[3]);
    assert_non_null(subs[3] = join(&calls));
    for (int i = 0; i < FEED_SUBS_MAX; i++)
        trigger_feed_leave(subs[i]);
    assert_int_equal(atomic_load(&trigger_feed_subscribers), 0);
}

static void test_keepalive_then_the_end(void **state)
{
    (void)state;
    Calls calls = {0};
    FeedSub *s = join(&calls);
    assert_non_null(s);
    free(drain(s, 4096)); /* parked */
    int64_t now = clock_now_ms();
    trigger_feed_keepalive(now); /* not parked for long: nothing */
    assert_int_equal(calls.wakes, 0);
    trigger_feed_keepalive(now + FEED_KEEPALIVE_MS);
    assert_int_equal(calls.wakes, 1);
    char *text = drain(s, 4096);
    assert_string_equal(text, ": keepalive\n\n");
    free(text);
    assert_false(trigger_feed_end(50)); /* s has not left */
    assert_int_equal(calls.wakes, 2);
    char buf[16];
    assert_int_equal(trigger_feed_read(s, buf, sizeof buf), -1);
    assert_null(join(&calls));
    assert_string_equal(join_err, "relationd is stopping");
    trigger_feed_leave(s);
    assert_true(trigger_feed_end(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_then_each_trigger_in_order),
        cmocka_unit_test(test_a_slow_subscriber_drops_the_oldest_with_a_note),
        cmocka_unit_test(test_at_most_subs_max_subscribers),
        cmocka_unit_test(test_keepalive_then_the_end), /* last: the feed ends */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
