/* log.c — logfmt lines on stderr (log.h). */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

atomic_int log_max_level = LOG_INFO;

static const char *const names[] = {"error", "warn", "info", "debug"};
static const char *const priorities[] = {"<3>", "<4>", "<6>", "<7>"};
static bool journal;

void log_init(void)
{
    /* systemd sets JOURNAL_STREAM=<device>:<inode> of the journal's stream. */
    const char *js = getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long dev, ino;
    journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
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

static void head(FILE *f, int level, const char *component)
{
    if (journal)
        fputs(priorities[level], f);
    fprintf(f, "level=%s component=", names[level]);
    value(f, component);
    fputs(" msg=", f);
}

void log_write(int level, const char *component, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    flockfile(stderr); /* one whole line per call, whatever the thread */
    head(stderr, level, component);
    value(stderr, msg);
    fputc('\n', stderr);
    funlockfile(stderr);
}

void log_kv(int level, const char *component, const char *msg, ...)
{
    if (level > atomic_load_explicit(&log_max_level, memory_order_relaxed))
        return;
    va_list ap;
    va_start(ap, msg);
    flockfile(stderr);
    head(stderr, level, component);
    value(stderr, msg);
    for (const char *k; (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        fprintf(stderr, " %s=", k);
        value(stderr, v ? v : "");
    }
    fputc('\n', stderr);
    funlockfile(stderr);
    va_end(ap);
}
