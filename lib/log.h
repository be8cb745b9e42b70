/* log.h — one line per record on stderr, in logfmt:
 *   level=warn component="kafka source" msg="event refused" topic=t partition=3 offset=42 event=e1
 * values quoted when they hold a space, a quote, '=' or nothing; the level
 * checked before formatting. Under systemd's journal (JOURNAL_STREAM names
 * stderr) each line starts with the <N> priority prefix the journal reads. */
#ifndef RELATIOND_LOG_H
#define RELATIOND_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern atomic_int log_max_level;

/* Whether stderr is the journal (then the <N> prefixes are written). */
void log_init(void);

void log_write(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A message with context: key, value, ... NULL (values are strings). */
void log_kv(int level, const char *component, const char *msg, ...)
    __attribute__((sentinel));

/* log_at(LOG_WARN, "redis", "reconnect failed: %s", err) */
#define log_at(level, component, ...)                                          \
    do {                                                                       \
        if ((level) <= atomic_load_explicit(&log_max_level, memory_order_relaxed)) \
            log_write((level), (component), __VA_ARGS__);                      \
    } while (0)

#endif
