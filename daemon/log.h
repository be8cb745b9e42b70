/* log.h — one logging macro, level checked before formatting. */
#ifndef RELATIOND_LOG_H
#define RELATIOND_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_max_level;

void log_write(int level, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_at(LOG_WARN, "redis", "reconnect failed: %s", err) */
#define log_at(level, ctx, ...)                                                \
    do {                                                                       \
        if ((level) <= log_max_level)                                          \
            log_write((level), (ctx), __VA_ARGS__);                            \
    } while (0)

#endif
