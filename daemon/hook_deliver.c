/* hook_deliver.c — one deliverer thread per hook (hook_deliver.h): read the
 * oldest entries of the hook's stream, send up to a batch of their triggers,
 * delete the entries sent whole once taken (one script: XTRIM MINID, the
 * length key, the success, the backlog read back), an entry sent in part
 * finished by the next batch;
 * only while this daemon holds the hook's lease (one deliverer per stream
 * among the daemons sharing the Redis); while the sources catch up a
 * backlog (load.h), a send waits up to the hook's defer_ms. The threads run
 * DELIVERER_NICER nice levels below the daemon (never SCHED_IDLE: a thread
 * that only runs on an idle core could be held past its lease on a busy
 * machine). */
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

/* How much nicer a deliverer thread is than the daemon: under a backlog
 * the CPU goes to applying and acknowledging first and the hooks catch up
 * with what is left (a thread 5 levels nicer still gets about a quarter of
 * a contended core, so its lease, renewed every LEASE_RENEW_MS, does not
 * lapse however busy the machine); a machine with CPU to spare delivers at
 * once. */
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
    char *length_key; /* <stream>:length (backlog.h) */
    const char *token; /* this daemon's: "<host>:<pid>:<random>" */
    bool leased;       /* held at the last renewal */
    bool lease_logged; /* another daemon's holding was logged */
    int64_t lease_at;  /* that renewal's time (clock_now_ms), 0: never */
    int64_t oldest_ms; /* deferring: the oldest entry's time (unix ms), 0: not read */
    bool check_streams; /* the first deliverer: the streams of removed hooks still to log */
    BacklogEntry *batch;
    size_t batch_cap;
    /* The oldest entry's triggers sent already (an entry is deleted once
     * all of its triggers are): skip of the entry skip_id. */
    char skip_id[48];
    size_t skip;
    /* Triggers per entry in the last read: XRANGE asks for about a batch. */
    size_t per_entry;
} Deliverer;

/* What a batch took of an XRANGE reply: its first `full` entries whole
 * (deleted once the batch is sent), `counted` triggers of them in entries
 * that the hook's length key counts (layout 2: field n), then, with
 * part_id, that entry's triggers up to part_upto. */
typedef struct {
    size_t full;
    long long counted;
    const char *last_full; /* the id of the last entry taken whole */
    const char *part_id;
    size_t part_upto;
} Taken;

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

/* An amqp routing key's most bytes (an AMQP short string). */
#define ROUTING_KEY_MAX 255

/* A trigger that cannot be sent set aside, before its entry is deleted:
 * appended with the reason to <stream>:dead (the same slot; fields reason,
 * id, body, key, rk, event_type), logged, counted as a failure (reason
 * unroutable). False when Redis did not take it (the failure waited out:
 * the batch is read again). */
static bool set_aside(Deliverer *d, const char *entry, const BacklogEntry *x, const char *reason)
{
    char *dead = malloc(strlen(d->key) + sizeof ":dead");
    if (!dead) {
        log_at(LOG_ERROR, d->who, "out of memory setting entry %s aside", entry);
        (void)nap(d, POLL_MS);
        return false;
    }
    sprintf(dead, "%s:dead", d->key);
    const char *argv[] = {"XADD", dead, "*", "reason", reason, "id", x->id, "body", x->body,
                          "key", x->key, "rk", x->rk, "event_type", x->event_type};
    size_t lens[15];
    for (int i = 0; i < 15; i++)
        lens[i] = i == 8 ? x->len : strlen(argv[i]);
    char err[512];
    redisReply *r = NULL;
    bool ok = engine_hook_command(d->engine, d->def->name, 15, argv, lens, &r, err, sizeof err);
    if (ok && r->type == REDIS_REPLY_ERROR) {
        snprintf(err, sizeof err, "redis XADD %s: %s", dead, r->str);
        ok = false;
    }
    if (r)
        freeReplyObject(r);
    if (ok) {
        metrics_hook_failure(d->def->name, "unroutable");
        log_at(LOG_ERROR, d->who, "entry %s of %s cannot be sent (%s): set aside in %s",
               entry, d->key, reason, dead);
    } else {
        redis_failed(d, err);
    }
    free(dead);
    return ok;
}

/* The value of an entry's field name (the first such), or NULL. */
static const redisReply *field(const redisReply *f, const char *name)
{
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING &&
            f->element[i + 1]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, name) == 0)
            return f->element[i + 1];
    return NULL;
}

/* One trigger of the entry into the batch (an amqp exchange's whose routing
 * key is over ROUTING_KEY_MAX bytes, which a configuration of an earlier
 * release may have written, set aside instead). False: it could not be. */
static bool take_one(Deliverer *d, const char *entry, const BacklogEntry *x, size_t *n)
{
    if (d->def->kind == HOOK_AMQP && strlen(x->rk) > ROUTING_KEY_MAX) {
        char why[80];
        snprintf(why, sizeof why, "its routing key is %zu bytes, more than AMQP's %d",
                 strlen(x->rk), ROUTING_KEY_MAX);
        return set_aside(d, entry, x, why);
    }
    d->batch[*n] = *x;
    d->batch[*n].hook = d->def->name;
    (*n)++;
    return true;
}

/* Up to count triggers of the XRANGE reply as the batch, in order, from
 * the oldest entry's first not sent yet (skip); what was taken in *t.
 * Entries of layout 2 (fields n and t: the packed triggers, backlog.h) and
 * of the layout before (one trigger: fields id, body, key, rk,
 * event_type) are read alike; an entry of another shape, or the rest of a
 * packed text that does not parse, is logged and deleted with the batch.
 * SIZE_MAX: a trigger could not be set aside, or no memory for the batch
 * (waited out: nothing is sent, the batch is read again). */
static size_t take(Deliverer *d, const redisReply *r, size_t count, Taken *t)
{
    size_t n = 0, seen = 0, read = 0;
    *t = (Taken){0, 0, NULL, NULL, 0};
    if (!GROW_RESERVE(d->batch, d->batch_cap, count, 16)) {
        log_at(LOG_ERROR, d->who, "out of memory for a batch");
        (void)nap(d, POLL_MS);
        return SIZE_MAX;
    }
    for (size_t i = 0; i < r->elements && n < count; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const char *id = e->element[0]->str;
        read++;
        const redisReply *f = e->element[1], *packed = field(f, "t"), *nf = field(f, "n");
        size_t skip = i == 0 && d->skip > 0 && strcmp(id, d->skip_id) == 0 ? d->skip : 0;
        if (packed && nf) {
            size_t at = 0, q = 0;
            BacklogEntry x;
            bool whole = true;
            while (backlog_unpack(packed->str, packed->len, &at, &x)) {
                if (q >= skip) {
                    if (n == count) {
                        whole = false;
                        break;
                    }
                    if (!take_one(d, id, &x, &n))
                        return SIZE_MAX;
                }
                q++;
            }
            seen += q;
            if (whole && at != packed->len)
                log_at(LOG_ERROR, d->who, "backlog entry %s of %s: its packed triggers do not "
                       "parse after %zu of them: the rest is dropped", id, d->key, q);
            if (!whole) {
                t->part_id = id;
                t->part_upto = q;
                break;
            }
            t->counted += strtoll(nf->str, NULL, 10);
        } else {
            const redisReply *v[5] = {field(f, "id"), field(f, "body"), field(f, "key"),
                                      field(f, "rk"), field(f, "event_type")};
            seen++;
            if (!v[0] || !v[1] || !v[2] || !v[3] || !v[4]) {
                log_at(LOG_ERROR, d->who, "backlog entry %s of %s is not a trigger (fields n and "
                       "t, or id, body, key, rk, event_type): dropped", id, d->key);
            } else {
                BacklogEntry x = {d->def->name, v[0]->str, v[1]->str, v[1]->len, v[2]->str,
                                  v[3]->str, v[4]->str};
                if (!take_one(d, id, &x, &n))
                    return SIZE_MAX;
            }
        }
        t->full = i + 1;
        t->last_full = id;
    }
    if (read > 0)
        d->per_entry = seen / read > 0 ? seen / read : 1;
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

/* The backlog metric from the reply of DONE_LUA (anything else ignored). */
static void note_length(Deliverer *d, const redisReply *r)
{
    long long len;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        backlog_length(r->element[0], r->element[1], &len, NULL, NULL, 0))
        metrics_hook_backlog(d->def->name, len);
}

static void note_backlog(Deliverer *d)
{
    char err[512];
    long long len;
    if (engine_hook_backlog(d->engine, d->cfg, d->def->name, &len, err, sizeof err))
        metrics_hook_backlog(d->def->name, len);
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

/* After a batch is sent, in one script: the entries it took whole
 * deleted (XTRIM MINID of the id after the last: the batch is the stream's
 * oldest entries and only the lease holder deletes; entries appended
 * meanwhile have larger ids) and their counted triggers taken off the
 * length key (after the XTRIM, which Redis allows under maxmemory, so that
 * the DECRBY is too), the length key set to 0 when the stream is empty (or
 * below 0), the success noted (SET of :last_success; refused under
 * maxmemory, and then left), and {the length key, XLEN} returned
 * (backlog_length). KEYS: stream, length, last_success; ARGV: MINID or
 * "", triggers counted, now (unix ms). */
static const char DONE_LUA[] =
    "if ARGV[1] ~= '' then redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1]) end "
    "if ARGV[2] ~= '0' then redis.pcall('DECRBY', KEYS[2], ARGV[2]) end "
    "redis.pcall('SET', KEYS[3], ARGV[3]) "
    "local xl = redis.call('XLEN', KEYS[1]) "
    "local v = redis.call('GET', KEYS[2]) "
    "if v and v ~= '0' and (xl == 0 or (tonumber(v) or 0) < 0) then "
    "  redis.pcall('SET', KEYS[2], '0') v = '0' end "
    "return {v, xl}";

/* What the batch took deleted (DONE_LUA) and the entry taken in part
 * remembered. Retried until Redis takes it (false: stopping; the batch is
 * sent again next time). */
static bool done(Deliverer *d, const Taken *t, size_t delivered)
{
    char min[48] = "", ms[24], counted[24], err[512];
    if (t->full > 0 && !id_after(t->last_full, min, sizeof min)) {
        log_at(LOG_ERROR, d->who, "backlog entry id %s of %s is not <ms>-<seq>: the batch "
               "stays in the backlog", t->last_full, d->key);
        (void)nap(d, POLL_MS);
        return false;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(ms, sizeof ms, "%lld", (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    snprintf(counted, sizeof counted, "%lld", t->counted);
    const char *argv[] = {"EVAL", DONE_LUA, "3", d->key, d->length_key, d->last_key, min,
                          counted, ms};
    redisReply *r;
    for (;;) {
        if (!engine_hook_command(d->engine, d->def->name, 9, argv, NULL, &r, err, sizeof err)) {
            redis_failed(d, err);
        } else if (r->type == REDIS_REPLY_ERROR) {
            snprintf(err, sizeof err, "redis XTRIM %s: %s", d->key, r->str);
            freeReplyObject(r);
            redis_failed(d, err);
        } else {
            break;
        }
        if (stopping(d))
            return false;
    }
    backoff_ok(&d->redis);
    metrics_hook_delivered(d->def->name, delivered, (double)now.tv_sec + now.tv_nsec / 1e9);
    note_length(d, r);
    freeReplyObject(r);
    d->skip = 0;
    if (t->part_id && strlen(t->part_id) < sizeof d->skip_id) {
        memcpy(d->skip_id, t->part_id, strlen(t->part_id) + 1);
        d->skip = t->part_upto;
    }
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
 * through, or keeps defer_ms behind them; but while the machine's CPU was
 * at least defer_idle_percent idle over the last sample (LOAD_SAMPLE_MS),
 * a batch goes at once: the hook takes what the sources leave. True:
 * waited a step (POLL_MS at most) or a Redis failure, look again; false:
 * send now. */
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
    /* the CPU the sources leave: one batch now, the next looked at again */
    if (d->def->defer_idle_percent > 0 &&
        load_idle_share() * 100 >= (double)d->def->defer_idle_percent)
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
    char err[512];
    char comm[16]; /* the thread's name in ps -L and top -H: "hook:<name>", cut to 15 bytes */
    snprintf(comm, sizeof comm, "hook:%s", d->def->name);
    (void)pthread_setname_np(pthread_self(), comm);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno != 0 || setpriority(PRIO_PROCESS, (id_t)gettid(), nice + DELIVERER_NICER) != 0)
        log_at(LOG_DEBUG, d->who, "delivering at the daemon's priority (nice not raised)");
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
        /* about a batch of triggers: the entries it takes at the last
         * read's triggers per entry (before any, full ones), and the one
         * begun: a read of whole-batch entries never holds many batches */
        size_t want = count / (d->per_entry ? d->per_entry : BACKLOG_ENTRY_MAX) + 1;
        if (want > count)
            want = count;
        snprintf(count_s, sizeof count_s, "%zu", want);
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
        Taken t;
        size_t n = take(d, r, count, &t);
        if (n == SIZE_MAX) {
            freeReplyObject(r);
            continue;
        }
        /* http: a full batch, or batch_ms after the oldest entry (when the
         * read reached the stream's end) */
        int64_t first = first_entry_ms(r);
        if (d->def->kind == HOOK_HTTP && n < count && r->elements < want && first != 0) {
            int64_t wait = d->def->batch_ms - (unix_now_ms() - first);
            if (wait > 0) {
                freeReplyObject(r);
                (void)nap(d, wait < POLL_MS ? wait : POLL_MS);
                continue;
            }
        }
        if (n == 0 || deliver(d, n)) {
            (void)done(d, &t, n);
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
    free(d->length_key);
    free(d->batch);
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
        d->length_key = backlog_key_string(cfg, d->def->name, ":length");
        d->token = h->token;
        d->check_streams = i == 0;
        if (!d->key || !d->lease_key || !d->last_key || !d->length_key || !(d->engine = engine_create(cfg))) {
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
