/* kafka_mock — a Kafka-protocol broker for the tests, on librdkafka's mock
 * cluster. Creates the topics named on the command line (NAME or
 * NAME:PARTITIONS), prints the bootstrap address on one line and serves
 * until SIGTERM or SIGINT. SIGUSR1 takes every broker down (connections
 * closed and refused), SIGUSR2 brings them up again: a Kafka outage.
 * -j MS answers the first JoinGroup requests MS ms late (a slow group join).
 * -h or --help prints the usage on standard output (exit 0); an unknown
 * option or a bad argument prints it on standard error (exit 2).
 *
 * usage: kafka_mock [-b BROKERS] [-j MS] TOPIC[:PARTITIONS]... */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t run = 1;
static volatile sig_atomic_t want_down = -1; /* -1: no change asked */

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        want_down = 1;
    else if (sig == SIGUSR2)
        want_down = 0;
    else
        run = 0;
}

static const char usage_text[] =
    "usage: kafka_mock [-b BROKERS] [-j MS] TOPIC[:PARTITIONS]...\n"
    "A Kafka-protocol broker for tests (librdkafka's mock cluster, in memory,\n"
    "nothing kept): creates each TOPIC with PARTITIONS partitions (default 1),\n"
    "prints the bootstrap address (HOST:PORT,...) on one line and serves until\n"
    "SIGTERM or SIGINT. SIGUSR1 takes every broker down, SIGUSR2 brings them up.\n"
    "  -b BROKERS  number of brokers (default 1)\n"
    "  -j MS       answer the first JoinGroup requests MS ms late (default 0)\n"
    "  -h, --help  print this help and exit\n";

/* Exit status 2 with the usage after what was wrong. */
static int bad_usage(const char *what, const char *arg)
{
    if (what)
        fprintf(stderr, "kafka_mock: %s: %s\n", what, arg);
    fputs(usage_text, stderr);
    return 2;
}

/* A whole decimal number in [min, INT_MAX], or -1. */
static int parse_int(const char *s, int min)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > INT_MAX)
        return -1;
    return (int)v;
}

/* NAME or NAME:PARTITIONS into name (size n) and *partitions; 0, or -1 when
 * bad (a NAME starting with '-' too: an option after the topics). */
static int parse_topic(const char *arg, char *name, size_t n, int *partitions)
{
    const char *colon = strchr(arg, ':');
    size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
    if (len == 0 || len >= n || arg[0] == '-')
        return -1;
    memcpy(name, arg, len);
    name[len] = '\0';
    *partitions = colon ? parse_int(colon + 1, 1) : 1;
    return *partitions < 1 ? -1 : 0;
}

int main(int argc, char **argv)
{
    int nbrokers = 1;
    int join_delay_ms = 0;
    char err[512];

    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    opterr = 0; /* the messages are ours */
    int opt;
    while ((opt = getopt_long(argc, argv, "+:b:j:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            if ((nbrokers = parse_int(optarg, 1)) < 0)
                return bad_usage("-b wants a number of brokers of 1 or more, not", optarg);
            break;
        case 'j':
            if ((join_delay_ms = parse_int(optarg, 0)) < 0)
                return bad_usage("-j wants milliseconds (0 or more), not", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case ':':
            return bad_usage("missing the value of", argv[optind - 1]);
        default:
            return bad_usage("unknown option", argv[optind - 1]);
        }
    }
    int first = optind;
    if (first >= argc)
        return bad_usage("no TOPIC given", "at least one is needed");
    for (int i = first; i < argc; i++) {
        char name[256];
        int partitions;
        if (parse_topic(argv[i], name, sizeof name, &partitions) < 0)
            return bad_usage("bad TOPIC[:PARTITIONS]", argv[i]);
    }

    /* The mock cluster lives inside a client handle. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_mock: %s\n", err);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "kafka_mock: %s\n", err);
        return 1;
    }
    conf = NULL; /* owned by rk */

    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (!mc) {
        fprintf(stderr, "kafka_mock: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = first; i < argc; i++) {
        char name[256];
        int partitions;
        parse_topic(argv[i], name, sizeof name, &partitions); /* checked above */
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, partitions, 1);
        if (e) {
            fprintf(stderr, "kafka_mock: topic %s: %s\n", name, rd_kafka_err2str(e));
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return 1;
        }
    }

    /* A client joins with two JoinGroup requests (the first one learns its
     * member id): each of the first few is answered late, on every broker
     * (whichever is the coordinator). */
    for (int b = 1; join_delay_ms && b <= nbrokers; b++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_broker_push_request_error_rtts(
            mc, b, 11 /* JoinGroup */, 4, RD_KAFKA_RESP_ERR_NO_ERROR, join_delay_ms,
            RD_KAFKA_RESP_ERR_NO_ERROR, join_delay_ms, RD_KAFKA_RESP_ERR_NO_ERROR, join_delay_ms,
            RD_KAFKA_RESP_ERR_NO_ERROR, join_delay_ms);
        if (e) {
            fprintf(stderr, "kafka_mock: broker %d: %s\n", b, rd_kafka_err2str(e));
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return 1;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);

    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (run) {
        struct timespec tick = {0, 20 * 1000 * 1000}; /* no signal can be missed */
        nanosleep(&tick, NULL);
        int down = want_down;
        if (down < 0)
            continue;
        want_down = -1;
        for (int b = 1; b <= nbrokers; b++) {
            rd_kafka_resp_err_t e = down ? rd_kafka_mock_broker_set_down(mc, b)
                                         : rd_kafka_mock_broker_set_up(mc, b);
            if (e)
                fprintf(stderr, "kafka_mock: broker %d: %s\n", b, rd_kafka_err2str(e));
        }
        fprintf(stderr, "kafka_mock: brokers %s\n", down ? "down" : "up");
    }

    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
