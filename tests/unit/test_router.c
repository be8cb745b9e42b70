/* test_router.c — the router against two scripted cluster nodes (threads on
 * loopback ports speaking RESP): commands routed by slot, replies returned in
 * the order of the commands, MOVED (the map read again) and ASK (ASKING, map
 * unchanged) followed, a command to every primary answered once (the
 * smallest integer), a slot's later commands not sent again after one sent
 * again failed, and one server (cluster_enabled:0) used as it is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "handlers/cluster.h"
#include "handlers/router.h"

/* ---- the scripted nodes ---- */

enum { NODE_A, NODE_B, NNODES };

typedef struct {
    int listener, port;
    pthread_t thread;
} Fake;

static Fake fakes[NNODES];
static atomic_int cluster_mode = 1;
/* the slot boundary of the map CLUSTER SLOTS gives: [0, split) on A */
static atomic_int split = 8192;
/* what each node believes: [0, owns_below[A]) on A (A answers MOVED above) */
static atomic_int a_owns_below = 8192;
/* a slot A answers ASK for (migrating to B), -1: none */
static atomic_int ask_slot = -1;
static atomic_int asking_seen;
static atomic_int moved_sent, ask_sent;
/* B fails the next GET it is sent (a node without the module's
 * configuration yet), once; the GETs B answered */
static atomic_int b_fail_once, b_gets;

static int read_line(int fd, char *buf, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        char c;
        if (read(fd, &c, 1) != 1)
            return -1;
        if (c == '\n')
            break;
        if (c != '\r')
            buf[n++] = c;
    }
    buf[n] = '\0';
    return (int)n;
}

/* One RESP command: up to 8 arguments, each under 256 bytes. */
static int read_command(int fd, char args[8][256], int *nargs)
{
    char line[64];
    if (read_line(fd, line, sizeof line) < 0 || line[0] != '*')
        return -1;
    *nargs = atoi(line + 1);
    for (int i = 0; i < *nargs && i < 8; i++) {
        if (read_line(fd, line, sizeof line) < 0 || line[0] != '$')
            return -1;
        int len = atoi(line + 1);
        if (len < 0 || len >= 256)
            return -1;
        char tmp[260];
        int got = 0;
        while (got < len + 2) {
            ssize_t r = read(fd, tmp + got, (size_t)(len + 2 - got));
            if (r <= 0)
                return -1;
            got += (int)r;
        }
        memcpy(args[i], tmp, (size_t)len);
        args[i][len] = '\0';
    }
    return 0;
}

static void say(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len) {
        ssize_t w = write(fd, s, len);
        if (w <= 0)
            return;
        s += w;
        len -= (size_t)w;
    }
}

static void slots_reply(int fd)
{
    char buf[512];
    int s = atomic_load(&split);
    snprintf(buf, sizeof buf,
             "*2\r\n*3\r\n:0\r\n:%d\r\n*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n"
             "*3\r\n:%d\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n",
             s - 1, fakes[NODE_A].port, s, fakes[NODE_B].port);
    say(fd, buf);
}

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg >> 1, node = (int)(intptr_t)arg & 1;
    bool asking = false;
    for (;;) {
        char args[8][256];
        int n;
        if (read_command(fd, args, &n) < 0)
            break;
        char buf[600];
        if (strcasecmp(args[0], "INFO") == 0) {
            const char *t = atomic_load(&cluster_mode) ? "cluster_enabled:1\r\n"
                                                       : "cluster_enabled:0\r\n";
            snprintf(buf, sizeof buf, "$%zu\r\n%s\r\n", strlen(t), t);
            say(fd, buf);
        } else if (strcasecmp(args[0], "CLUSTER") == 0) {
            slots_reply(fd);
        } else if (strcasecmp(args[0], "ASKING") == 0) {
            asking = true;
            atomic_fetch_add(&asking_seen, 1);
            say(fd, "+OK\r\n");
        } else if (strcasecmp(args[0], "WAIT") == 0) {
            /* A has 2 replicas, B 1 */
            say(fd, node == NODE_A ? ":2\r\n" : ":1\r\n");
        } else if (strcasecmp(args[0], "GET") == 0 && n == 2) {
            unsigned slot = cluster_slot(args[1], strlen(args[1]));
            bool mine = node == NODE_A ? (int)slot < atomic_load(&a_owns_below)
                                       : (int)slot >= atomic_load(&split) ||
                                             (int)slot >= atomic_load(&a_owns_below) || asking;
            if (node == NODE_B && mine && atomic_exchange(&b_fail_once, 0)) {
                snprintf(buf, sizeof buf, "-NOCONFIG not loaded\r\n");
            } else if (node == NODE_A && (int)slot == atomic_load(&ask_slot)) {
                atomic_fetch_add(&ask_sent, 1);
                snprintf(buf, sizeof buf, "-ASK %u 127.0.0.1:%d\r\n", slot, fakes[NODE_B].port);
            } else if (!mine) {
                atomic_fetch_add(&moved_sent, 1);
                snprintf(buf, sizeof buf, "-MOVED %u 127.0.0.1:%d\r\n", slot,
                         fakes[node == NODE_A ? NODE_B : NODE_A].port);
            } else {
                char v[300];
                if (node == NODE_B)
                    atomic_fetch_add(&b_gets, 1);
                snprintf(v, sizeof v, "%c:%s", node == NODE_A ? 'A' : 'B', args[1]);
                snprintf(buf, sizeof buf, "$%zu\r\n%s\r\n", strlen(v), v);
            }
            asking = false;
            say(fd, buf);
        } else {
            say(fd, "-ERR unknown\r\n");
        }
    }
    close(fd);
    return NULL;
}

static void *serve(void *arg)
{
    int node = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(fakes[node].listener, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_t t;
        pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)((fd << 1) | node));
        pthread_detach(t);
    }
}

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < NNODES; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        fakes[i].listener = socket(AF_INET, SOCK_STREAM, 0);
        if (fakes[i].listener < 0 || bind(fakes[i].listener, (struct sockaddr *)&a, sizeof a) ||
            listen(fakes[i].listener, 16) ||
            getsockname(fakes[i].listener, (struct sockaddr *)&a, &len))
            return -1;
        fakes[i].port = ntohs(a.sin_port);
        pthread_create(&fakes[i].thread, NULL, serve, (void *)(intptr_t)i);
        pthread_detach(fakes[i].thread);
    }
    return 0;
}

/* ---- the router against them ---- */

static Config cfg;

static Router *connect_to_a(void)
{
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.redis.host, sizeof cfg.redis.host, "127.0.0.1");
    cfg.redis.port = fakes[NODE_A].port;
    cfg.redis_timeout_ms = 5000;
    Router *r = router_new(&cfg);
    char err[256];
    assert_non_null(r);
    if (!router_connect(r, err, sizeof err))
        fail_msg("connect: %s", err);
    return r;
}

/* The nodes in their first state ([0, 8192) on A, the rest on B, no slot
 * migrating), and a router connected to them. */
static Router *start_halves(void)
{
    atomic_store(&cluster_mode, 1);
    atomic_store(&split, 8192);
    atomic_store(&a_owns_below, 8192);
    atomic_store(&ask_slot, -1);
    return connect_to_a();
}

/* A key of a slot in [lo, hi). */
static void key_in(char *out, size_t len, int lo, int hi, int *slot)
{
    for (int i = 0;; i++) {
        snprintf(out, len, "k%d", i);
        *slot = (int)cluster_slot(out, strlen(out));
        if (*slot >= lo && *slot < hi)
            return;
    }
}

static void get(Router *r, const char *key, int slot)
{
    char cmd[300];
    int n = snprintf(cmd, sizeof cmd, "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key);
    assert_true(router_append(r, slot, cmd, (size_t)n));
}

static void expect(Router *r, const char *want)
{
    redisReply *rep;
    char err[256];
    if (!router_read(r, &rep, err, sizeof err))
        fail_msg("read: %s", err);
    if (rep->type != REDIS_REPLY_STRING || strcmp(rep->str, want) != 0)
        fail_msg("got %s, want %s", rep->type == REDIS_REPLY_STRING ? rep->str : "a non-string",
                 want);
    freeReplyObject(rep);
}

static void test_replies_in_the_order_of_the_commands(void **state)
{
    (void)state;
    Router *r = start_halves();
    assert_true(router_cluster(r));
    char keys[6][32], want[6][40];
    int slots[6];
    for (int i = 0; i < 6; i++) {
        /* A, B, A, B...: replies interleave two pipelines */
        key_in(keys[i], sizeof keys[i], i % 2 ? 8192 + i * 100 : i * 100,
               i % 2 ? 16384 : 8192, &slots[i]);
        get(r, keys[i], slots[i]);
        snprintf(want[i], sizeof want[i], "%c:%s", i % 2 ? 'B' : 'A', keys[i]);
    }
    char err[256];
    assert_true(router_flush(r, err, sizeof err));
    for (int i = 0; i < 6; i++)
        expect(r, want[i]);
    router_free(r);
}

static void test_moved_and_ask_are_followed(void **state)
{
    (void)state;
    Router *r = start_halves();
    char k1[32], k2[32], k3[32], want[40];
    int s1, s2, s3;
    key_in(k1, sizeof k1, 4096, 8192, &s1);   /* about to move to B */
    key_in(k2, sizeof k2, 0, 4096, &s2);      /* stays on A */
    key_in(k3, sizeof k3, 0, 4096, &s3);      /* migrating: ASK */
    while (s3 == s2)
        key_in(k3, sizeof k3, s3 + 1, 4096, &s3);
    /* slots [4096, 8192) moved to B: A says MOVED; the map changes too */
    atomic_store(&a_owns_below, 4096);
    atomic_store(&split, 4096);
    atomic_store(&ask_slot, s3);
    int moved0 = atomic_load(&moved_sent), ask0 = atomic_load(&ask_sent);
    int asking0 = atomic_load(&asking_seen);
    get(r, k1, s1);
    get(r, k2, s2);
    get(r, k3, s3);
    get(r, k1, s1);
    char err[256];
    assert_true(router_flush(r, err, sizeof err));
    snprintf(want, sizeof want, "B:%s", k1);
    expect(r, want);
    snprintf(want, sizeof want, "A:%s", k2);
    expect(r, want);
    snprintf(want, sizeof want, "B:%s", k3);
    expect(r, want);
    snprintf(want, sizeof want, "B:%s", k1);
    expect(r, want);
    assert_true(atomic_load(&moved_sent) - moved0 >= 2); /* both k1 went to A */
    assert_int_equal(atomic_load(&ask_sent) - ask0, 1);
    assert_int_equal(atomic_load(&asking_seen) - asking0, 1);
    /* the map was read again: k1 goes straight to B now */
    moved0 = atomic_load(&moved_sent);
    get(r, k1, s1);
    assert_true(router_flush(r, err, sizeof err));
    expect(r, want);
    assert_int_equal(atomic_load(&moved_sent), moved0);
    router_free(r);
}

static void expect_error(Router *r, const char *start)
{
    redisReply *rep;
    char err[256];
    if (!router_read(r, &rep, err, sizeof err))
        fail_msg("read: %s", err);
    if (rep->type != REDIS_REPLY_ERROR || strncmp(rep->str, start, strlen(start)) != 0)
        fail_msg("got %s, want an error starting %s",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "no error", start);
    freeReplyObject(rep);
}

/* A command followed to its slot's new node fails there (the node has no
 * configuration yet) and the cause clears at once: the slot's later
 * commands, redirected too, are not sent again (they would run before it);
 * another slot's are; once the queue is empty the slot is sent to again. */
static void test_a_failed_follow_stops_its_slots_later_commands(void **state)
{
    (void)state;
    Router *r = start_halves();
    char k1[32], k2[32], want[40], err[256];
    int s1, s2;
    key_in(k1, sizeof k1, 4096, 8192, &s1);
    key_in(k2, sizeof k2, 4096, 8192, &s2);
    while (s2 == s1)
        key_in(k2, sizeof k2, s2 + 1, 8192, &s2);
    atomic_store(&a_owns_below, 4096); /* [4096, 8192) failed over to B */
    atomic_store(&split, 4096);
    atomic_store(&b_fail_once, 1);
    get(r, k1, s1);
    get(r, k1, s1);
    get(r, k2, s2);
    get(r, k1, s1);
    assert_true(router_flush(r, err, sizeof err));
    int gets0 = atomic_load(&b_gets);
    expect_error(r, "NOCONFIG");
    expect_error(r, "ORDER");
    snprintf(want, sizeof want, "B:%s", k2);
    expect(r, want);
    expect_error(r, "ORDER");
    assert_int_equal(atomic_load(&b_gets) - gets0, 1); /* k2 only */
    /* the queue emptied: k1 goes (straight to B: the map was read again) */
    get(r, k1, s1);
    assert_true(router_flush(r, err, sizeof err));
    snprintf(want, sizeof want, "B:%s", k1);
    expect(r, want);
    router_free(r);
}

static void test_every_primary_answers_once(void **state)
{
    (void)state;
    Router *r = start_halves();
    static const char wait[] = "*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$1\r\n0\r\n";
    char k[32], want[40], err[256];
    int s;
    key_in(k, sizeof k, 8192, 16384, &s);
    assert_true(router_append(r, ROUTER_ALL, wait, sizeof wait - 1));
    get(r, k, s);
    assert_true(router_flush(r, err, sizeof err));
    redisReply *rep;
    assert_true(router_read(r, &rep, err, sizeof err));
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, 1); /* the fewest replicas */
    freeReplyObject(rep);
    snprintf(want, sizeof want, "B:%s", k);
    expect(r, want);
    router_free(r);
}

static void test_one_server_is_used_as_it_is(void **state)
{
    (void)state;
    atomic_store(&cluster_mode, 0);
    atomic_store(&a_owns_below, 16384);
    atomic_store(&split, 16384);
    atomic_store(&ask_slot, -1);
    Router *r = connect_to_a();
    assert_false(router_cluster(r));
    char k[32], want[40], err[256];
    int s;
    key_in(k, sizeof k, 0, 16384, &s);
    get(r, k, ROUTER_ANY);
    get(r, k, ROUTER_ANY);
    assert_true(router_flush(r, err, sizeof err));
    snprintf(want, sizeof want, "A:%s", k);
    expect(r, want);
    expect(r, want);
    router_free(r);
    atomic_store(&cluster_mode, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_in_the_order_of_the_commands),
        cmocka_unit_test(test_moved_and_ask_are_followed),
        cmocka_unit_test(test_a_failed_follow_stops_its_slots_later_commands),
        cmocka_unit_test(test_every_primary_answers_once),
        cmocka_unit_test(test_one_server_is_used_as_it_is),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
