/* log.h — the one logging call of every layer, and where its records go.
 *
 * Code at any layer (handlers, config, daemon, ctl) calls log_at / log_kv
 * with a level, a component and a message (plus key/value context); it never
 * decides the format or the destination. Those belong to the front ends
 * (daemon/main.c, ctl/relationctl.c): each sets, before starting any thread,
 * the sink that receives the records (log_set_sink) and the least severe
 * level kept (log_max_level; the daemon changes it on reload, atomically).
 * Records less severe than log_max_level are dropped before formatting.
 *
 * The sink lib/log.c offers, and both front ends set today, is logfmt on
 * standard error, one line per record, one whole line per call whatever the
 * thread:
 *   level=warn component="kafka source" msg="event refused" topic=t partition=3 offset=42 event=e1
 * values quoted when they hold a space, a quote, '=' or nothing; with
 * LogfmtSink.journal (the daemon under systemd's journal: JOURNAL_STREAM
 * names stderr, log_stderr_is_journal) each line starts with the <N>
 * priority prefix the journal reads. Until a front end sets a sink (tests,
 * tools), records go to that sink without the prefixes.
 *
 * Threads: log_at / log_kv from any thread; the sink is called on the
 * caller's thread and must be thread-safe. log_set_sink only before threads
 * start. Failure: a record is best effort (a message longer than 2047 bytes
 * is cut; context beyond LOG_KV_MAX pairs is a caller's bug and dropped). */
#ifndef RELATIOND_LOG_H
#define RELATIOND_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* The least severe level kept; set by the front end. */
extern atomic_int log_max_level;

/* Key/value pairs of context log_kv passes on, at most. */
#define LOG_KV_MAX 16

/* Receives a record that passed the level: the formatted message, then
 * npairs of context as kv[0] = kv[1], kv[2] = kv[3], ... (values never
 * NULL). ctx is the one given to log_set_sink. */
typedef void (*LogSink)(void *ctx, int level, const char *component, const char *msg,
                        const char *const *kv, size_t npairs);

void log_set_sink(LogSink sink, void *ctx);

/* The logfmt sink on standard error; ctx is a LogfmtSink * (NULL: no
 * journal prefixes). */
typedef struct {
    bool journal; /* the <N> priority prefixes */
} LogfmtSink;
void log_sink_logfmt(void *ctx, int level, const char *component, const char *msg,
                     const char *const *kv, size_t npairs);

/* Whether standard error is systemd's journal stream (JOURNAL_STREAM). */
bool log_stderr_is_journal(void);

void log_write(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A message with context: key, value, ... NULL (values are strings; a NULL
 * value is written as nothing). */
void log_kv(int level, const char *component, const char *msg, ...)
    __attribute__((sentinel));

/* log_at(LOG_WARN, "redis", "reconnect failed: %s", err) */
#define log_at(level, component, ...)                                          \
    do {                                                                       \
        if ((level) <= atomic_load_explicit(&log_max_level, memory_order_relaxed)) \
            log_write((level), (component), __VA_ARGS__);                      \
    } while (0)

#endif
