/* load.c — the sources' load (load.h): the time until which the daemon
 * counts as catching up a backlog, in clock_now_ms() units; the machine's
 * idle share from /proc/stat. */
#include "daemon/load.h"
#include "lib/clock.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic int64_t busy_until;

void load_note_batch(size_t n, size_t batch_size)
{
    if (batch_size > 0 && n >= batch_size)
        atomic_store_explicit(&busy_until, clock_now_ms() + LOAD_HOLD_MS, memory_order_relaxed);
}

bool load_sources_busy(void)
{
    return clock_now_ms() < atomic_load_explicit(&busy_until, memory_order_relaxed);
}

bool load_stat_parse(const char *text, uint64_t *total, uint64_t *idle)
{
    if (strncmp(text, "cpu ", 4) != 0)
        return false;
    /* user nice system idle iowait irq softirq steal guest guest_nice */
    uint64_t v[10] = {0};
    const char *p = text + 4;
    int n = 0;
    while (n < 10) {
        char *end;
        while (*p == ' ')
            p++;
        if (*p < '0' || *p > '9')
            break;
        v[n++] = strtoull(p, &end, 10);
        p = end;
    }
    if (n < 4)
        return false;
    *total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    *idle = v[3] + v[4];
    return true;
}

static pthread_mutex_t sample_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t sample_at;          /* clock_now_ms() of the last sample, 0: none */
static uint64_t sample_total, sample_idle;
static double idle_share = -1;

/* /proc/stat's first line into buf; false when unreadable. */
static bool read_stat(char *buf, size_t len)
{
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t got = read(fd, buf, len - 1);
    close(fd);
    if (got <= 0)
        return false;
    buf[got] = '\0';
    return true;
}

double load_idle_share(void)
{
    pthread_mutex_lock(&sample_mu);
    int64_t now = clock_now_ms();
    if (sample_at == 0 || now - sample_at >= LOAD_SAMPLE_MS) {
        char buf[256];
        uint64_t total, idle;
        if (read_stat(buf, sizeof buf) && load_stat_parse(buf, &total, &idle)) {
            if (sample_at != 0 && total > sample_total) {
                /* iowait may step back: the share kept within 0..1 */
                double d = (double)idle - (double)sample_idle;
                double t = (double)(total - sample_total);
                idle_share = d <= 0 ? 0 : d >= t ? 1 : d / t;
            }
            sample_at = now;
            sample_total = total;
            sample_idle = idle;
        } else {
            idle_share = -1;
        }
    }
    double share = idle_share;
    pthread_mutex_unlock(&sample_mu);
    return share;
}
