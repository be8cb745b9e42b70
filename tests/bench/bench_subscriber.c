/* bench_subscriber — the benchmark's consumer of the hooks queue, in C so that
 * its cost stays small next to the daemon's on a 2-core machine (a pika
 * consumer spends about 16 us of CPU per message, more than the daemon's
 * target per event).
 *
 * Consumes QUEUE with no-ack and writes one line per message to standard
 * output: "<CLOCK_MONOTONIC ns> <source_event.id of the body, or ->". The
 * output is flushed whenever nothing arrived for 10 ms, so that a reader sees
 * every message of a quiet queue; SIGTERM or SIGINT flushes and exits 0.
 * CLOCK_MONOTONIC is Python's time.monotonic_ns() in any process.
 *
 * usage: bench_subscriber HOST PORT QUEUE */
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
    (void)sig;
    run = 0;
}

static void die_reply(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        fprintf(stderr, "bench_subscriber: %s: %s\n", what, amqp_error_string2(r.library_error));
    else
        fprintf(stderr, "bench_subscriber: %s: broker error\n", what);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_subscriber HOST PORT QUEUE\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (!sock || amqp_socket_open(sock, argv[1], atoi(argv[2])) != AMQP_STATUS_OK) {
        fprintf(stderr, "bench_subscriber: cannot connect to %s:%s\n", argv[1], argv[2]);
        return 1;
    }
    die_reply(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
              "login");
    amqp_channel_open(conn, 1);
    die_reply(amqp_get_rpc_reply(conn), "channel.open");
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(argv[3]), amqp_empty_bytes, 0, 1, 0,
                       amqp_empty_table);
    die_reply(amqp_get_rpc_reply(conn), "basic.consume");
    /* Ready: the queue has a consumer. */
    fprintf(stderr, "consuming\n");

    static const char mark[] = "\"source_event\":{\"id\":\"";
    const size_t mark_len = sizeof mark - 1;
    int dirty = 0;
    while (run) {
        amqp_envelope_t env;
        struct timeval tv = {0, 10000};
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            if (dirty) {
                fflush(stdout);
                dirty = 0;
            }
            continue;
        }
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            if (!run)
                break;
            fflush(stdout);
            die_reply(r, "consume");
            return 1;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        const char *body = env.message.body.bytes;
        size_t len = env.message.body.len;
        const char *id = NULL;
        int id_len = 1;
        const char *p = memmem(body, len, mark, mark_len);
        if (p) {
            p += mark_len;
            const char *q = memchr(p, '"', len - (size_t)(p - body));
            if (q) {
                id = p;
                id_len = (int)(q - p);
            }
        }
        printf("%lld %.*s\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, id_len,
               id ? id : "-");
        dirty = 1;
        amqp_destroy_envelope(&env);
    }
    fflush(stdout);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return 0;
}
