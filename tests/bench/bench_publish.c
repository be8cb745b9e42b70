/* bench_publish — RabbitMQ alone, through the daemon's own publisher
 * (daemon/publisher.c): N persistent messages, the bodies taken in turn from
 * FILE (one per line: triggers as relationctl prints them), published to
 * EXCHANGE with confirms, as the daemon publishes a backlog's triggers:
 * batches of BATCH messages, up to DEPTH batches in flight. Prints the
 * seconds from the first publish to the last confirm.
 *
 * usage: bench_publish URL EXCHANGE FILE N [BATCH [DEPTH]] */
#include "daemon/publisher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_publish URL EXCHANGE FILE N [BATCH [DEPTH]]\n");
        return 2;
    }
    long n = atol(argv[4]), batch = argc > 5 ? atol(argv[5]) : 512,
         depth = argc > 6 ? atol(argv[6]) : 8;
    FILE *f = fopen(argv[3], "r");
    if (!f || n <= 0 || batch <= 0 || depth <= 0) {
        fprintf(stderr, "bench_publish: bad arguments or %s unreadable\n", argv[3]);
        return 2;
    }
    char **bodies = NULL;
    size_t *lens = NULL, nb = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            len--;
        char **b2 = realloc(bodies, (nb + 1) * sizeof *bodies);
        size_t *l2 = realloc(lens, (nb + 1) * sizeof *lens);
        if (!b2 || !l2)
            return 1;
        bodies = b2;
        lens = l2;
        bodies[nb] = strndup(line, (size_t)len);
        lens[nb++] = (size_t)len;
    }
    fclose(f);
    free(line);
    if (nb == 0) {
        fprintf(stderr, "bench_publish: %s holds no message\n", argv[3]);
        return 2;
    }

    TlsConfig tls = {0};
    Publisher *p = publisher_new(argv[1], argv[2], "topic", false, &tls);
    Outgoing *out = calloc((size_t)batch, sizeof *out);
    char (*ids)[24] = calloc((size_t)batch, sizeof *ids);
    uint64_t *tags = calloc((size_t)depth, sizeof *tags);
    char err[512];
    if (!p || !out || !ids || !tags || !publisher_connect(p, err, sizeof err)) {
        fprintf(stderr, "bench_publish: %s\n", p ? err : "out of memory");
        return 1;
    }
    double t0 = now();
    long sent = 0, k = 0;
    while (sent < n) {
        long m = n - sent < batch ? n - sent : batch;
        for (long i = 0; i < m; i++) {
            size_t j = (size_t)(sent + i) % nb;
            snprintf(ids[i], sizeof ids[i], "b-%ld", sent + i);
            out[i] = (Outgoing){"relation.bench.direct.change", ids[i], "application/json", NULL,
                                bodies[j], lens[j]};
        }
        if (k >= depth && !publisher_wait(p, tags[k % depth], err, sizeof err)) {
            fprintf(stderr, "bench_publish: %s\n", err);
            return 1;
        }
        if (!publisher_publish(p, out, (size_t)m, &tags[k % depth], err, sizeof err)) {
            fprintf(stderr, "bench_publish: %s\n", err);
            return 1;
        }
        sent += m;
        k++;
    }
    if (!publisher_wait(p, tags[(k - 1) % depth], err, sizeof err)) {
        fprintf(stderr, "bench_publish: %s\n", err);
        return 1;
    }
    printf("%.6f\n", now() - t0);
    publisher_free(p);
    for (size_t j = 0; j < nb; j++)
        free(bodies[j]);
    free(bodies);
    free(lens);
    free(out);
    free(ids);
    free(tags);
    return 0;
}
