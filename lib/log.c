/* log.c — records handed to the front end's sink; the logfmt sink on
 * standard error (log.h). */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

atomic_int log_max_level = LOG_INFO;

static LogSink sink = log_sink_logfmt;
static void *sink_ctx;

static const char *const names[] = {"error", "warn", "info", "debug"};
static const char *const priorities[] = {"<3>", "<4>", "<6>", "<7>"};

void log_set_sink(LogSink s, void *ctx)
{
    sink = s;
    sink_ctx = ctx;
}

bool log_stderr_is_journal(void)
{
    /* systemd sets JOURNAL_STREAM=<device>:<inode> of the journal's stream. */
    const char *js = getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long dev, ino;
    return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
           (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* A logfmt value: as it is when it is a plain token, else quoted with ",
 * \ and control characters escaped. */
static void value(FILE *f, const char *v)
{
    bool plain = *v != '\0';
    for (const char *c = v; *c && plain; c++)
        plain = (unsigned char)*c > ' ' && *c != '"' && *c != '=' && *c != '\\' && *c != 0x7f;
    if (plain) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (const char *c = v; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u == '"' || u == '\\')
            fprintf(f, "\\%c", u);
        else if (u == '\n')
            fputs("\\n", f);
        else if (u < ' ' || u == 0x7f)
            fprintf(f, "\\x%02x", u);
        else
            fputc(u, f);
    }
    fputc('"', f);
}

void log_sink_logfmt(void *ctx, int level, const char *component, const char *msg,
                     const char *const *kv, size_t npairs)
{
    const LogfmtSink *s = ctx;
    flockfile(stderr); /* one whole line per call, whatever the thread */
    if (s && s->journal)
        fputs(priorities[level], stderr);
    fprintf(stderr, "level=%s component=", names[level]);
    value(stderr, component);
    fputs(" msg=", stderr);
    value(stderr, msg);
    for (size_t i = 0; i < npairs; i++) {
        fprintf(stderr, " %s=", kv[2 * i]);
        value(stderr, kv[2 * i + 1]);
    }
    fputc('\n', stderr);
    funlockfile(stderr);
}

void log_write(int level, const char *component, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sink(sink_ctx, level, component, msg, NULL, 0);
}

void log_kv(int level, const char *component, const char *msg, ...)
{
    if (level > atomic_load_explicit(&log_max_level, memory_order_relaxed))
        return;
    const char *kv[2 * LOG_KV_MAX];
    size_t n = 0;
    va_list ap;
    va_start(ap, msg);
    for (const char *k; (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        if (n < LOG_KV_MAX) {
            kv[2 * n] = k;
            kv[2 * n + 1] = v ? v : "";
            n++;
        }
    }
    va_end(ap);
    sink(sink_ctx, level, component, msg, kv, n);
}
