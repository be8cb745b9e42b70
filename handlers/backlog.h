/* backlog.h — the durable backlog of each action hook: a Redis Stream
 * <prefix>{hook:<name>} (entries of up to BACKLOG_ENTRY_MAX triggers: fields
 * n and t, backlog_pack; an earlier release's entries hold one trigger as
 * fields id, body, key, rk, event_type), its length in triggers
 * <prefix>{hook:<name>}:length, its disabled flag
 * <prefix>{hook:<name>}:disabled, and the commands that write and read them
 * on an engine's connection (on a cluster to the node of the hook's own
 * slot, the hash tag {hook:<name>}).
 *
 * Ownership: the caller's buffers and replies (freeReplyObject) stay the
 * caller's. Threads: the engine's (one thread per engine). Failure: every
 * call returns false with the reason in err, the connection dropped when
 * what is on it can no longer be trusted (the next call connects again);
 * an append that failed may have been partly written: appending again is
 * at least once, with the same trigger ids. */
#ifndef RELATIOND_BACKLOG_H
#define RELATIOND_BACKLOG_H

#include "config/config.h"
#include "handlers/engine.h"
#include "lib/jsonbuf.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

/* One trigger for one hook's stream. */
typedef struct {
    const char *hook;       /* the hook's name */
    const char *id;         /* the trigger id */
    const char *body;       /* the trigger's JSON, len bytes */
    size_t len;
    const char *key;        /* <database>:<profile_id> of the trigger's side (Kafka key) */
    const char *rk;         /* the AMQP routing key for this hook */
    const char *event_type; /* relation_<direction>_<kind> */
} BacklogEntry;

/* Triggers per backlog entry, at most: a batch's triggers for one hook go
 * in entries of up to this many (layout 2 of the entries). */
#define BACKLOG_ENTRY_MAX 64

/* An entry's trigger i packed for its field t: the trigger's id, body,
 * key, rk and event_type, each as "<decimal length>:<bytes>" and a NUL
 * (binary-safe, and each string NUL-terminated where it lies). */
void backlog_pack(JsonBuf *out, const BacklogEntry *x);
/* The next packed trigger of t[*at..len) into e (every string but hook
 * pointing into t), *at moved past it. False at the end (*at == len) or
 * when what follows is not a packed trigger (*at != len then). */
bool backlog_unpack(const char *t, size_t len, size_t *at, BacklogEntry *e);

/* <prefix>{hook:<name>} then suffix ("" or ":disabled") into b. */
void backlog_key(JsonBuf *b, const Config *cfg, const char *hook, const char *suffix);
/* The same key as a C string (malloc'ed, the caller's), NULL when out of
 * memory. */
char *backlog_key_string(const Config *cfg, const char *hook, const char *suffix);
/* The cluster slot of the hook's keys. */
int backlog_slot(const char *hook);

/* The triggers appended, in their order, to their hooks' streams (MAXLEN
 * none: max_backlog pauses consumption, it never trims), pipelined, each
 * to the node of its hook's slot: for each hook, XADDs of entries of up to
 * BACKLOG_ENTRY_MAX (fields n, their number, and t, the packed triggers),
 * then INCRBY of the hook's length key <prefix>{hook:<name>}:length by
 * their number (after them: a failure between leaves the key short, never
 * over, until the deliverer finds the stream empty and sets it to 0). True
 * once every command answered (and, with redis.wait_replicas, a WAIT
 * counted that many replicas). The replies due before them (outbox
 * clearings) are read first; no batch's replies may be due. */
bool engine_backlog_append(Engine *e, const BacklogEntry *entries, size_t n, char *err,
                           size_t errlen) __attribute__((warn_unused_result));

/* One command to the node of hook's slot: argv[0..argc) (each a C string
 * or, with lens, lens[i] bytes), its reply in *r (an error reply is
 * returned as a reply, true). The replies due before it are read first. */
bool engine_hook_command(Engine *e, const char *hook, int argc, const char **argv,
                         const size_t *lens, redisReply **r, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* n commands to the node of hook's slot in one round trip: command i is
 * argv[i][0..argc[i]) (C strings); its reply in r[i] (an error reply is
 * returned as a reply). False (every r[i] NULL) when a reply did not come:
 * the connection dropped, any of the commands may have run. */
bool engine_hook_pipeline(Engine *e, const char *hook, size_t n, const int *argc,
                          const char *const *const *argv, redisReply **r, char *err,
                          size_t errlen) __attribute__((warn_unused_result));

/* The backlog of each hook of cfg, in triggers, into len[0..cfg->nhooks),
 * pipelined: its length key (GET), or, while the stream has none (entries
 * of the layout before only, one trigger each), its XLEN. */
bool engine_backlog_lengths(Engine *e, const Config *cfg, long long *len, char *err,
                            size_t errlen) __attribute__((warn_unused_result));

/* A hook's backlog in triggers from the replies of GET of its length key
 * and XLEN of its stream (engine_backlog_lengths); false when either is
 * not what it should be, and then (err not NULL) why, naming the hook. */
bool backlog_length(const redisReply *get, const redisReply *xlen, long long *len,
                    const char *hook, char *err, size_t errlen);

/* The same for one hook (its slot's node), in one round trip. */
bool engine_hook_backlog(Engine *e, const Config *cfg, const char *hook, long long *len,
                         char *err, size_t errlen) __attribute__((warn_unused_result));

/* Whether the hook is disabled (its :disabled key exists); set or cleared.
 * why: the value kept (the reason, shown by relationctl hooks list). */
bool engine_hook_disabled(Engine *e, const Config *cfg, const char *hook, bool *disabled,
                          char *why, size_t whylen, char *err, size_t errlen)
    __attribute__((warn_unused_result));
bool engine_hook_set_disabled(Engine *e, const Config *cfg, const char *hook, bool disabled,
                              const char *why, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
