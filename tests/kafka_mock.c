/* kafka_mock — a Kafka-protocol broker for the tests, on librdkafka's mock
 * cluster. Creates the topics named on the command line (NAME or
 * NAME:PARTITIONS), prints the bootstrap address on one line and serves
 * until SIGTERM or SIGINT. SIGUSR1 takes every broker down (connections
 * closed and refused), SIGUSR2 brings them up again: a Kafka outage.
 * -j MS answers the first JoinGroup requests MS ms late (a slow group join).
 *
 * usage: kafka_mock [-b BROKERS] [-j MS] TOPIC[:PARTITIONS]... */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

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

int main(int argc, char **argv)
{
    int nbrokers = 1;
    int first = 1;
    char err[512];

    int join_delay_ms = 0;
    while (first + 1 < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "-b") == 0)
            nbrokers = atoi(argv[first + 1]);
        else if (strcmp(argv[first], "-j") == 0)
            join_delay_ms = atoi(argv[first + 1]);
        else
            break;
        first += 2;
    }
    if (nbrokers < 1 || join_delay_ms < 0 || first >= argc || argv[first][0] == '-') {
        fprintf(stderr, "usage: kafka_mock [-b BROKERS] [-j MS] TOPIC[:PARTITIONS]...\n");
        return 2;
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
        int partitions = 1;
        snprintf(name, sizeof name, "%s", argv[i]);
        char *colon = strchr(name, ':');
        if (colon) {
            *colon = '\0';
            partitions = atoi(colon + 1);
        }
        if (partitions < 1 || !*name) {
            fprintf(stderr, "kafka_mock: bad topic %s\n", argv[i]);
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return 2;
        }
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
