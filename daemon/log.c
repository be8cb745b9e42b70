/* log.c — lines on stderr, prefixed with the level and a context. systemd's
 * journal reads the <N> prefix as the priority. */
#include "daemon/log.h"

#include <stdarg.h>
#include <stdio.h>

int log_max_level = LOG_INFO;

void log_write(int level, const char *ctx, const char *fmt, ...)
{
    static const char *const prefix[] = {"<3>error", "<4>warning", "<6>info", "<7>debug"};
    va_list ap;

    flockfile(stderr); /* one whole line per call, whatever the thread */
    fprintf(stderr, "%s: %s: ", prefix[level], ctx);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    funlockfile(stderr);
}
