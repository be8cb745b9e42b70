/* progress.c — the progress line (progress.h). */
#include "ctl/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

enum { BAR = 24 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_start(Progress *p, const char *unit)
{
    *p = (Progress){.on = isatty(2), .unit = unit};
    if (p->on)
        p->start = p->next = now();
}

/* 12345678 -> "12,345,678" */
static void grouped(long long v, char *out, size_t len)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", v < 0 ? 0 : v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

void progress_update(Progress *p, long long done, double fraction)
{
    if (!p->on)
        return;
    double t = now();
    if (t < p->next)
        return;
    p->next = t + 0.2;
    double elapsed = t - p->start;
    char count[32], rate[32], line[160];
    int n = 0;
    grouped(done, count, sizeof count);
    grouped(elapsed > 0 ? (long long)(done / elapsed) : 0, rate, sizeof rate);
    if (fraction >= 0) {
        if (fraction > 1)
            fraction = 1;
        int full = (int)(fraction * BAR);
        n += snprintf(line + n, sizeof line - (size_t)n, "[");
        for (int i = 0; i < BAR; i++)
            line[n++] = i < full ? '#' : '.';
        n += snprintf(line + n, sizeof line - (size_t)n, "] %3d%%  ", (int)(fraction * 100));
    }
    n += snprintf(line + n, sizeof line - (size_t)n, "%s %s  %s/s", count, p->unit, rate);
    if (fraction > 0.01 && fraction < 1) {
        long left = (long)(elapsed * (1 - fraction) / fraction + 0.5);
        snprintf(line + n, sizeof line - (size_t)n, "  ETA %ld:%02ld", left / 60, left % 60);
    }
    /* \r, the line, then erase what a longer line before left behind */
    fprintf(stderr, "\r%s\033[K", line);
    p->shown = true;
}

void progress_clear(Progress *p)
{
    if (p->on && p->shown)
        fputs("\r\033[K", stderr);
    p->shown = false;
}

double progress_share(long long offset, long long size)
{
    return size > 0 ? (double)offset / (double)size : -1;
}
