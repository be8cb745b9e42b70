/* hook_deliver.c — one deliverer thread per hook (hook_deliver.h): read the
 * oldest entries of the hook's stream, send them, delete them once taken
 * (XTRIM MINID, with the success and the length in the same round trip);
 * only while this daemon holds the hook's lease (one deliverer per stream
 * among the daemons sharing the Redis); while the sources catch up a
 * backlog (load.h), a send waits up to the hook's defer_ms. The threads run
 * SCHED_IDLE (else DELIVERER_NICER nice levels below the daemon). */
#include "daemon/hook_deliver.h"
#include "daemon/backoff.h"
#include "daemon/hook_sink.h"
#include "daemon/lifecycle.h"
#include "daemon/load.h"
#include "daemon/metrics.h"
#include "daemon/shared_config.h"
#include "handlers/backlog.h"
#include "handlers/walk.h"
#include "lib/clock.h"
#include "lib/grow.h"
#include "lib/log.h"

#include <hiredis/hiredis.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <sys/random.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* How often an idle deliverer looks at its stream, and a disabled one at
 * its flag. */
#define POLL_MS 100
#define DISABLED_POLL_MS 1000
/* The longest XREAD BLOCK of an idle deliverer. */
#define IDLE_BLOCK_MS 1000
/* The lease <prefix>{hook:NAME}:lease: taken (SET NX PX) when there is a
 * batch to send, held for LEASE_MS from its last renewal, renewed every
 * LEASE_RENEW_MS by its holder (while sending, waiting and idle); a daemon
 * without it tries again every LEASE_RENEW_MS while the stream holds
 * entries. */
#define LEASE_MS 5000
#define LEASE_RENEW_MS 1000

/* The renewal: PEXPIRE only while the key holds ARGV[1] (1), else 0 (lost:
 * expired, taken by another, or the keyspace wiped; never written again
 * here). The release deletes it when ARGV[1] holds it. */
static const char LEASE_RENEW[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
static const char LEASE_RELEASE[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";

/* How much nicer a deliverer thread is than the daemon where SCHED_IDLE is
 * refused: under a backlog the CPU goes to applying and acknowledging
 * first and the hooks catch up with what is left; a machine with CPU to
 * spare delivers at once. */
#define DELIVERER_NICER 5

typedef struct {
    pthread_t thread;
    bool started;
    const HookDef *def; /* in cfg */
    const Config *cfg;
    char who[HOOK_NAME_MAX + 8]; /* "hook <name>" */
    Engine *engine;
    HookSink *sink;
    Backoff redis;
    atomic_bool *stop;     /* stop at once */
    atomic_bool *draining; /* stop once the backlog is empty, or at the drain deadline */
    char *key; /* the stream's key, NUL-terminated */
    char *lease_key;
    char *last_key; /* <stream>:last_success */
    const char *token; /* this daemon's: "<host>:<pid>:<random>" */
    bool leased;       /* held at the last renewal */
    bool lease_logged; /* another daemon's holding was logged */
    int64_t lease_at;  /* that renewal's time (clock_now_ms), 0: never */
    int64_t oldest_ms; /* deferring: the oldest entry's time (unix ms), 0: not read */
    bool check_streams; /* the first deliverer: the streams of removed hooks still to log */
    BacklogEntry *batch;
    size_t batch_cap;
    char **ids; /* the batch's stream entry ids (into the reply) */
    size_t ids_cap;
} Deliverer;

struct HookDeliverers {
    ConfigRef *cfg;
    char token[HOST_NAME_MAX + 48];
    atomic_bool stop, draining;
    Deliverer *d;
    int n;
};

/* A stop asked, or a drain past its deadline. */
static bool stopping(const Deliverer *d)
{
    return atomic_load(d->stop) || (atomic_load(d->draining) && lifecycle_deadline_passed());
}

static void lease_renew(Deliverer *d);

/* Sleeps ms in steps of POLL_MS (renewing a held lease); false once a stop
 * was asked. */
static bool nap(Deliverer *d, int64_t ms)
{
    int64_t until = clock_now_ms() + ms;
    while (!stopping(d)) {
        if (d->leased && clock_now_ms() - d->lease_at >= LEASE_RENEW_MS)
            lease_renew(d);
        int64_t left = until - clock_now_ms();
        if (left <= 0)
            return true;
        if (left > POLL_MS)
            left = POLL_MS;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* A Redis failure: logged by the back-off, waited out; a refusal of
 * redis.url's settings as the sources take it (a configuration error,
 * retried every BACKOFF_REFUSED_MS, its reason in /readyz). */
static void redis_failed(Deliverer *d, const char *err)
{
    metrics_hook_failure(d->def->name, "redis");
    (void)nap(d, engine_refused(d->engine) ? backoff_refused_note(&d->redis, err)
                                           : backoff_note(&d->redis, err, d->cfg->retry_max_ms));
}

/* One command on the hook's keys; NULL after a failure (waited out). */
static redisReply *command(Deliverer *d, int argc, const char **argv)
{
    char err[512];
    redisReply *r;
    if (!engine_hook_command(d->engine, d->def->name, argc, argv, NULL, &r, err, sizeof err)) {
        redis_failed(d, err);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, sizeof err, "redis %s: %s", argv[0], r->str);
        freeReplyObject(r);
        redis_failed(d, err);
        return NULL;
    }
    backoff_ok(&d->redis);
    return r;
}

/* Renews the hook's lease when held (an EVAL), else tries to take it (SET
 * NX PX); d->leased says whether it is held. A Redis failure counts as not
 * held (nothing is sent meanwhile; the caller's next Redis command waits
 * the outage out). */
static void lease_renew(Deliverer *d)
{
    char err[512], ms[24];
    snprintf(ms, sizeof ms, "%d", LEASE_MS);
    const char *renew[] = {"EVAL", LEASE_RENEW, "1", d->lease_key, d->token, ms};
    const char *take[] = {"SET", d->lease_key, d->token, "NX", "PX", ms};
    redisReply *r;
    bool was = d->leased;
    d->leased = false;
    if (!engine_hook_command(d->engine, d->def->name, 6, was ? renew : take, NULL, &r, err,
                             sizeof err)) {
        if (was)
            log_at(LOG_WARN, d->who, "lease %s not renewed (%s): not delivering until it is",
                   d->lease_key, err);
        return;
    }
    if ((r->type == REDIS_REPLY_INTEGER && r->integer == 1) || r->type == REDIS_REPLY_STATUS) {
        d->leased = true;
        d->lease_at = clock_now_ms();
        if (!was)
            log_at(LOG_INFO, d->who, "delivering (lease %s held by %s)", d->lease_key,
                   d->token);
        d->lease_logged = false;
    } else if (r->type == REDIS_REPLY_ERROR) {
        log_at(LOG_WARN, d->who, "lease %s: redis %s: %s", d->lease_key, was ? "EVAL" : "SET",
               r->str);
    } else if (was) {
        log_at(LOG_WARN, d->who, "lease %s lost (expired or taken by another daemon): not "
               "delivering until it is free again", d->lease_key);
    } else if (!d->lease_logged) {
        log_at(LOG_INFO, d->who, "another daemon delivers (it holds %s): waiting to take over",
               d->lease_key);
        d->lease_logged = true;
    }
    freeReplyObject(r);
}

/* Whether this daemon may send a batch now: the lease renewed within
 * LEASE_RENEW_MS (so held for LEASE_MS - LEASE_RENEW_MS more at least),
 * else renewed now. */
static bool lease_held(Deliverer *d)
{
    if (!d->leased || clock_now_ms() - d->lease_at >= LEASE_RENEW_MS)
        lease_renew(d);
    return d->leased;
}

/* The lease given back at the stop, so that another daemon takes over at
 * once rather than once it expires. */
static void lease_release(Deliverer *d)
{
    if (!d->leased || !d->engine)
        return;
    char err[512];
    const char *argv[] = {"EVAL", LEASE_RELEASE, "1", d->lease_key, d->token};
    redisReply *r;
    if (engine_hook_command(d->engine, d->def->name, 5, argv, NULL, &r, err, sizeof err))
        freeReplyObject(r);
    d->leased = false;
}

static bool warn_unconfigured(const char *hook, long long len, void *ctx)
{
    const Deliverer *d = ctx;
    for (int i = 0; i < d->cfg->nhooks; i++)
        if (strcmp(d->cfg->hooks[i].name, hook) == 0)
            return true;
    log_at(LOG_WARN, "hooks", "the backlog %s{hook:%s} of a hook the configuration no longer "
           "has holds %lld triggers: relationctl hooks drop %s deletes it", d->cfg->key_prefix,
           hook, len, hook);
    return true;
}

/* The streams left by hooks the configuration no longer has, logged once
 * (a walk of the keyspace, handlers/walk.h); retried while Redis fails. */
static void check_streams(Deliverer *d)
{
    char err[512];
    if (engine_hook_streams(d->engine, warn_unconfigured, d, err, sizeof err))
        d->check_streams = false;
}

/* A trigger entry's fields, in the order the appends write them. */
enum { F_ID, F_BODY, F_KEY, F_RK, F_EVENT_TYPE, NFIELDS };
static const char *const field_names[NFIELDS] = {"id", "body", "key", "rk", "event_type"};

/* The string values of the fields named field_names in an entry's field
 * list, in one pass (each name's first; the appends' order costs one
 * comparison per field); false when one is missing. */
static bool fields(const redisReply *f, const redisReply *v[NFIELDS])
{
    int found = 0;
    for (int k = 0; k < NFIELDS; k++)
        v[k] = NULL;
    for (size_t i = 0; i + 1 < f->elements && found < NFIELDS; i += 2) {
        if (f->element[i]->type != REDIS_REPLY_STRING ||
            f->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        for (int k = 0; k < NFIELDS; k++)
            if (!v[k] && strcmp(f->element[i]->str, field_names[k]) == 0) {
                v[k] = f->element[i + 1];
                found++;
                break;
            }
    }
    return found == NFIELDS;
}

/* An amqp routing key's most bytes (an AMQP short string). */
#define ROUTING_KEY_MAX 255

/* An entry that cannot be sent set aside, before it is deleted with its
 * batch: appended as it is, with the reason, to <stream>:dead (the same
 * slot), logged, counted as a failure (reason unroutable). False when Redis
 * did not take it (the failure waited out: the batch is read again). */
static bool set_aside(Deliverer *d, const redisReply *e, const char *reason)
{
    const redisReply *f = e->element[1];
    size_t n = f->elements + 5;
    const char **argv = malloc(n * sizeof *argv);
    size_t *lens = malloc(n * sizeof *lens);
    char *dead = malloc(strlen(d->key) + sizeof ":dead");
    bool ok = argv && lens && dead;
    if (!ok) {
        log_at(LOG_ERROR, d->who, "out of memory setting entry %s aside", e->element[0]->str);
        (void)nap(d, POLL_MS);
    } else {
        sprintf(dead, "%s:dead", d->key);
        const char *head[] = {"XADD", dead, "*", "reason", reason};
        for (size_t i = 0; i < 5; i++) {
            argv[i] = head[i];
            lens[i] = strlen(head[i]);
        }
        for (size_t i = 0; i < f->elements; i++) {
            bool str = f->element[i]->type == REDIS_REPLY_STRING;
            argv[5 + i] = str ? f->element[i]->str : "";
            lens[5 + i] = str ? f->element[i]->len : 0;
        }
        char err[512];
        redisReply *r = NULL;
        ok = engine_hook_command(d->engine, d->def->name, (int)n, argv, lens, &r, err,
                                 sizeof err);
        if (ok && r->type == REDIS_REPLY_ERROR) {
            snprintf(err, sizeof err, "redis XADD %s: %s", dead, r->str);
            ok = false;
        }
        if (r)
            freeReplyObject(r);
        if (ok) {
            metrics_hook_failure(d->def->name, "unroutable");
            log_at(LOG_ERROR, d->who, "entry %s of %s cannot be sent (%s): set aside in %s",
                   e->element[0]->str, d->key, reason, dead);
        } else {
            redis_failed(d, err);
        }
    }
    free(argv);
    free(lens);
    free(dead);
    return ok;
}

/* The XRANGE reply as the batch; its count (entries of another shape are
 * deleted with the batch, logged; an amqp exchange's entry whose routing
 * key is over ROUTING_KEY_MAX bytes, which a configuration of an earlier
 * release may have written, is set aside first). SIZE_MAX: an entry could
 * not be set aside (nothing is sent, the batch is read again). */
static size_t take(Deliverer *d, const redisReply *r, size_t *nids)
{
    size_t n = 0;
    *nids = 0;
    if (!GROW_RESERVE(d->batch, d->batch_cap, r->elements, 16) ||
        !GROW_RESERVE(d->ids, d->ids_cap, r->elements, 16))
        return 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        d->ids[(*nids)++] = e->element[0]->str;
        const redisReply *v[NFIELDS];
        if (!fields(e->element[1], v)) {
            log_at(LOG_ERROR, d->who, "backlog entry %s of %s is not a trigger (fields id, body, "
                   "key, rk, event_type): dropped", e->element[0]->str, d->key);
            continue;
        }
        if (d->def->kind == HOOK_AMQP && v[F_RK]->len > ROUTING_KEY_MAX) {
            char why[80];
            snprintf(why, sizeof why, "its routing key is %zu bytes, more than AMQP's %d",
                     v[F_RK]->len, ROUTING_KEY_MAX);
            if (!set_aside(d, e, why))
                return SIZE_MAX;
            continue;
        }
        d->batch[n++] = (BacklogEntry){d->def->name,    v[F_ID]->str,  v[F_BODY]->str,
                                       v[F_BODY]->len,  v[F_KEY]->str, v[F_RK]->str,
                                       v[F_EVENT_TYPE]->str};
    }
    return n;
}

/* Whether the hook is disabled (its flag in Redis); false after a failure. */
static bool disabled(Deliverer *d, bool *is)
{
    char err[512], why[256];
    if (engine_hook_disabled(d->engine, d->cfg, d->def->name, is, why, sizeof why, err,
                             sizeof err)) {
        backoff_ok(&d->redis);
        return true;
    }
    redis_failed(d, err);
    return false;
}

/* The backlog metric from an XLEN reply (anything else ignored). */
static void note_length(Deliverer *d, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_INTEGER)
        metrics_hook_backlog(d->def->name, r->integer);
}

static void note_backlog(Deliverer *d)
{
    const char *argv[] = {"XLEN", d->key};
    redisReply *r = command(d, 2, argv);
    note_length(d, r);
    if (r)
        freeReplyObject(r);
}

/* The stream entry id just after id ("<ms>-<seq>") into out: XTRIM MINID
 * of it deletes id and every entry before it. False when id is not one. */
static bool id_after(const char *id, char *out, size_t len)
{
    char *end;
    errno = 0;
    unsigned long long ms = strtoull(id, &end, 10), seq;
    if (errno || end == id || *end != '-')
        return false;
    const char *s = end + 1;
    seq = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        return false;
    if (seq < ULLONG_MAX)
        seq++;
    else if (ms < ULLONG_MAX)
        ms++, seq = 0;
    else
        return false;
    snprintf(out, len, "%llu-%llu", ms, seq);
    return true;
}

/* The delivered entries deleted, the success noted and the backlog's
 * length taken, in one round trip: XTRIM MINID of the id after the batch's
 * last (the batch is the stream's oldest entries and only the lease holder
 * deletes; entries appended meanwhile have larger ids), SET of
 * :last_success, XLEN. Retried until the XTRIM is taken (false: stopping;
 * the entries are sent again next time); a failed SET or XLEN is logged
 * and waited out as any Redis failure, not retried (under maxmemory a SET
 * is refused, a trim never). */
static bool done(Deliverer *d, size_t nids, size_t delivered)
{
    char min[48], ms[24], err[512];
    if (!id_after(d->ids[nids - 1], min, sizeof min)) {
        log_at(LOG_ERROR, d->who, "backlog entry id %s of %s is not <ms>-<seq>: the batch "
               "stays in the backlog", d->ids[nids - 1], d->key);
        (void)nap(d, POLL_MS);
        return false;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(ms, sizeof ms, "%lld", (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    const char *trim[] = {"XTRIM", d->key, "MINID", min};
    const char *set[] = {"SET", d->last_key, ms};
    const char *len[] = {"XLEN", d->key};
    static const int argc[] = {4, 3, 2};
    const char *const *const argv[] = {trim, set, len};
    redisReply *r[3];
    for (;;) {
        if (!engine_hook_pipeline(d->engine, d->def->name, 3, argc, argv, r, err, sizeof err)) {
            redis_failed(d, err);
        } else if (r[0]->type == REDIS_REPLY_ERROR) {
            snprintf(err, sizeof err, "redis XTRIM %s: %s", d->key, r[0]->str);
            for (int i = 0; i < 3; i++)
                freeReplyObject(r[i]);
            redis_failed(d, err);
        } else {
            break;
        }
        if (stopping(d))
            return false;
    }
    backoff_ok(&d->redis);
    metrics_hook_delivered(d->def->name, delivered, (double)now.tv_sec + now.tv_nsec / 1e9);
    note_length(d, r[2]);
    for (int i = 1; i < 3; i++)
        if (r[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, sizeof err, "redis %s: %s", argv[i][0], r[i]->str);
            redis_failed(d, err);
            break;
        }
    for (int i = 0; i < 3; i++)
        freeReplyObject(r[i]);
    return true;
}

/* Sends the batch until the destination takes it. False: stopping, the
 * hook was disabled (410), or the lease was lost. */
static bool deliver(Deliverer *d, size_t n)
{
    for (;;) {
        if (!lease_held(d))
            return false; /* another daemon took the hook over: it sends this batch */
        HookOutcome out;
        hook_sink_send(d->sink, d->batch, n, &out);
        if (out.verdict == HOOK_DELIVERED)
            return true;
        metrics_hook_failure(d->def->name, out.reason ? out.reason : "other");
        if (out.verdict == HOOK_DISABLED) {
            char err[512], why[300];
            snprintf(why, sizeof why, "410 Gone at %lld: %s", (long long)time(NULL), out.detail);
            log_at(LOG_ERROR, d->who, "the destination answered 410 Gone (%s): hook disabled; "
                   "its triggers are kept in %s until relationctl hooks enable %s",
                   out.detail, d->key, d->def->name);
            while (!engine_hook_set_disabled(d->engine, d->cfg, d->def->name, true, why, err,
                                             sizeof err)) {
                redis_failed(d, err);
                if (stopping(d))
                    break;
            }
            return false;
        }
        if (d->def->kind == HOOK_HTTP) /* amqp and kafka: the back-off logged it */
            log_at(LOG_WARN, d->who, "%zu triggers not delivered (%s%s%s); again in %lld ms", n,
                   out.reason ? out.reason : "failed", out.detail[0] ? ": " : "", out.detail,
                   (long long)out.retry_ms);
        if (!nap(d, out.retry_ms))
            return false;
    }
}

/* An empty stream: waits until an entry is appended (XREAD BLOCK from the
 * start: the stream holds only undelivered entries), at most
 * IDLE_BLOCK_MS (under redis.timeout_ms), so that a trigger goes out as
 * soon as it is stored and a stop is seen within that time. */
static void wait_entry(Deliverer *d)
{
    int64_t block = d->cfg->redis_timeout_ms / 2;
    if (block > IDLE_BLOCK_MS)
        block = IDLE_BLOCK_MS;
    if (block < POLL_MS) {
        (void)nap(d, POLL_MS);
        return;
    }
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", (long long)block);
    const char *argv[] = {"XREAD", "COUNT", "1", "BLOCK", ms, "STREAMS", d->key, "0-0"};
    redisReply *r = command(d, 8, argv);
    if (r)
        freeReplyObject(r);
}

/* Now in unix ms, the clock of stream entry ids "<unix ms>-<seq>". */
static int64_t unix_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The time (unix ms) of the first entry of an XRANGE reply; 0: none. */
static int64_t first_entry_ms(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2 ||
        r->element[0]->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    return strtoll(r->element[0]->element[0]->str, NULL, 10);
}

/* While the sources catch up a backlog (load.h) a send waits until the
 * oldest entry is defer_ms old (never during the drain): the cores apply
 * and acknowledge first, and the hook catches up once the sources are
 * through, or keeps defer_ms behind them. True: waited a step (POLL_MS at
 * most) or a Redis failure, look again; false: send now. */
static bool deferred(Deliverer *d)
{
    if (d->def->defer_ms <= 0 || atomic_load(d->draining) || !load_sources_busy()) {
        d->oldest_ms = 0;
        return false;
    }
    if (d->oldest_ms == 0) {
        const char *argv[] = {"XRANGE", d->key, "-", "+", "COUNT", "1"};
        redisReply *r = command(d, 6, argv);
        if (!r)
            return true;
        d->oldest_ms = first_entry_ms(r);
        freeReplyObject(r);
        if (d->oldest_ms == 0)
            return false; /* empty: waited on as usual */
    }
    int64_t wait = d->oldest_ms + d->def->defer_ms - unix_now_ms();
    if (wait <= 0)
        return false;
    (void)nap(d, wait < POLL_MS ? wait : POLL_MS);
    return true;
}

static void *run(void *arg)
{
    Deliverer *d = arg;
    bool off = false, was_off = false;
    int64_t next_flag = 0;
    size_t count = d->def->kind == HOOK_HTTP ? (size_t)d->def->batch_size
                                             : (size_t)d->cfg->batch_size;
    char count_s[24];
    snprintf(count_s, sizeof count_s, "%zu", count);
    char err[512];
    struct sched_param sp = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0) {
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, 0);
        if (errno != 0 || setpriority(PRIO_PROCESS, (id_t)gettid(), nice + DELIVERER_NICER) != 0)
            log_at(LOG_DEBUG, d->who, "delivering at the daemon's priority (nice not raised)");
    }
    if (!hook_sink_connect(d->sink, err, sizeof err))
        log_at(LOG_WARN, d->who, "%s (retried with the first batch)", err);
    note_backlog(d);
    while (!stopping(d)) {
        if (d->check_streams)
            check_streams(d);
        if (clock_now_ms() >= next_flag) {
            if (!disabled(d, &off))
                continue;
            next_flag = clock_now_ms() + DISABLED_POLL_MS;
            if (off && !was_off)
                log_at(LOG_ERROR, d->who, "disabled (%s:disabled is set): not delivering "
                       "until relationctl hooks enable %s", d->key, d->def->name);
            else if (!off && was_off)
                log_at(LOG_INFO, d->who, "enabled again: delivering");
            was_off = off;
        }
        if (off && atomic_load(d->draining))
            break;
        if (off) {
            note_backlog(d);
            (void)nap(d, DISABLED_POLL_MS);
            continue;
        }
        if (d->leased && clock_now_ms() - d->lease_at >= LEASE_RENEW_MS)
            lease_renew(d); /* an idle holder keeps it */
        /* without the lease: whether there is anything to send (one entry) */
        bool had = d->leased;
        if (had && deferred(d))
            continue;
        const char *argv[] = {"XRANGE", d->key, "-", "+", "COUNT", had ? count_s : "1"};
        redisReply *r = command(d, 6, argv);
        if (!r)
            continue;
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            freeReplyObject(r);
            metrics_hook_backlog(d->def->name, 0);
            if (atomic_load(d->draining))
                break; /* delivered everything: the drain is done */
            wait_entry(d);
            continue;
        }
        if (!lease_held(d) || !had) {
            freeReplyObject(r);
            if (d->leased)
                continue; /* taken now: a full batch read */
            if (atomic_load(d->draining))
                break; /* the holder delivers the backlog */
            (void)nap(d, LEASE_RENEW_MS);
            continue;
        }
        /* http: a full batch, or batch_ms after the oldest entry */
        int64_t first = first_entry_ms(r);
        if (d->def->kind == HOOK_HTTP && r->elements < count && first != 0) {
            int64_t wait = d->def->batch_ms - (unix_now_ms() - first);
            if (wait > 0) {
                freeReplyObject(r);
                (void)nap(d, wait < POLL_MS ? wait : POLL_MS);
                continue;
            }
        }
        size_t nids, n = take(d, r, &nids);
        if (n == SIZE_MAX) {
            freeReplyObject(r);
            continue;
        }
        if (nids == 0) {
            freeReplyObject(r);
            log_at(LOG_ERROR, d->who, "out of memory for a batch");
            (void)nap(d, POLL_MS);
            continue;
        }
        if (n == 0 || deliver(d, n)) {
            (void)done(d, nids, n);
            d->oldest_ms = 0; /* the next one is newer */
        } else if (d->leased) {
            next_flag = 0; /* disabled (logged already), or stopping */
            was_off = !stopping(d);
        }
        freeReplyObject(r);
    }
    lease_release(d);
    return NULL;
}

static void free_deliverer(Deliverer *d)
{
    engine_free(d->engine);
    hook_sink_free(d->sink);
    free(d->key);
    free(d->lease_key);
    free(d->last_key);
    free(d->batch);
    free(d->ids);
}

HookDeliverers *hook_deliverers_start(char *err, size_t errlen)
{
    HookDeliverers *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&h->stop, false);
    atomic_init(&h->draining, false);
    /* this daemon's lease token: host, pid and 32 random bits (a pid may
     * come again after a restart, in a container always) */
    char host[HOST_NAME_MAX + 1] = "";
    unsigned rnd = 0;
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[HOST_NAME_MAX] = '\0';
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (unsigned)clock_now_ms() ^ ((unsigned)getpid() << 16);
    snprintf(h->token, sizeof h->token, "%s:%d:%08x", host, (int)getpid(), rnd);
    h->cfg = shared_config_acquire();
    const Config *cfg = config_ref_get(h->cfg);
    if (cfg->nhooks && !(h->d = calloc((size_t)cfg->nhooks, sizeof *h->d))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < cfg->nhooks; i++) {
        Deliverer *d = &h->d[h->n++];
        d->def = &cfg->hooks[i];
        d->cfg = cfg;
        d->stop = &h->stop;
        d->draining = &h->draining;
        snprintf(d->who, sizeof d->who, "hook %s", d->def->name);
        backoff_init(&d->redis, d->who, "redis", cfg->retry_max_ms);
        d->key = backlog_key_string(cfg, d->def->name, "");
        d->lease_key = backlog_key_string(cfg, d->def->name, ":lease");
        d->last_key = backlog_key_string(cfg, d->def->name, ":last_success");
        d->token = h->token;
        d->check_streams = i == 0;
        if (!d->key || !d->lease_key || !d->last_key || !(d->engine = engine_create(cfg))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (!(d->sink = hook_sink_new(d->def, cfg->retry_max_ms, err, errlen)))
            goto fail;
        metrics_hook_list(d->def->name);
    }
    for (int i = 0; i < h->n; i++) {
        if (pthread_create(&h->d[i].thread, NULL, run, &h->d[i]) != 0) {
            snprintf(err, errlen, "cannot start the deliverer of hook %s", h->d[i].def->name);
            goto fail;
        }
        h->d[i].started = true;
    }
    return h;
fail:
    hook_deliverers_stop(h);
    return NULL;
}

void hook_deliverers_drain(HookDeliverers *h)
{
    if (h)
        atomic_store(&h->draining, true);
}

void hook_deliverers_stop(HookDeliverers *h)
{
    if (!h)
        return;
    if (!atomic_load(&h->draining))
        atomic_store(&h->stop, true);
    for (int i = 0; i < h->n; i++) {
        if (h->d[i].started)
            pthread_join(h->d[i].thread, NULL);
        free_deliverer(&h->d[i]);
    }
    free(h->d);
    shared_config_release(h->cfg);
    free(h);
}
