/* apply.c — batches of events applied (apply.h): the calls of a batch
 * written by hand (FCALL of the library, or the module's relationd.apply and
 * relationd.apply2: the same keys, arguments and replies; one or both
 * sides), their replies
 * read back into statuses and rendered triggers, the library loaded again
 * when Redis lost it, the epoch raised after a failure (the fence), the
 * outbox clearings of delivered triggers. */
#include "handlers/apply.h"
#include "lib/log.h"
#include "handlers/engine_int.h"
#include "handlers/edge.h"
#include "handlers/schema.h"
#include "lib/grow.h"
#include "handlers/keys.h"
#include "handlers/resp.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void now_strings(Engine *e)
{
    struct timespec ts;
    struct tm tm;
    char base[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(e->date, sizeof e->date, "%s.%09ldZ", base, ts.tv_nsec);
    e->now_ms[format_int((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, e->now_ms)] = '\0';
}

static const char op_codes[] = {'a', 'e', 's', 'd'}; /* by EventOp */

/* The keys of one side: side, ids, out, tomb:<counterpart>, each top, then
 * (while the keyspace is in layout 1: engine_int.h) layout 1's seen. */
static int side_keys(const Engine *e, const RelationDef *rel)
{
    int n = 4 + (e->layout_version != 2);
    for (int i = 0; i < rel->nproperties; i++)
        n += rel->properties[i].top_order != TOP_NONE;
    return n;
}

static void write_side_keys(const Engine *e, JsonBuf *b, const RelationDef *rel, Side side,
                            const Event *ev)
{
    const Config *cfg = e->cfg;
    const char *own = side == SIDE_DIRECT ? ev->profile_a : ev->profile_b;
    const char *other = side == SIDE_DIRECT ? ev->profile_b : ev->profile_a;
    key_write(b, cfg, rel, side, own, "side", NULL);
    key_write(b, cfg, rel, side, own, "ids", NULL);
    key_write(b, cfg, rel, side, own, "out", NULL);
    key_write(b, cfg, rel, side, own, "tomb:", other);
    for (int i = 0; i < rel->nproperties; i++)
        if (rel->properties[i].top_order != TOP_NONE)
            key_write(b, cfg, rel, side, own, "top:", rel->properties[i].short_name);
    if (e->layout_version != 2)
        key_write(b, cfg, rel, side, own, "seen", NULL);
}

/* The event key of the event on a side, as one argument. */
static void write_event_key(JsonBuf *b, const Event *ev, Side side)
{
    unsigned char k[EVENT_KEY_LEN];
    event_key(ev->id, side == SIDE_DIRECT ? ev->profile_b : ev->profile_a, k);
    resp_arg(b, (const char *)k, sizeof k);
}

/* The arguments after the event keys: op, version, pairs. */
static void write_event_args(JsonBuf *b, const RelationDef *rel, const Event *ev)
{
    resp_arg(b, &op_codes[ev->op], 1);
    if (ev->has_version)
        resp_int(b, ev->version);
    else
        resp_arg(b, "", 0);
    for (int i = 0; i < rel->nproperties; i++) {
        const Weight *w = &ev->weights[i];
        if (w->kind == WEIGHT_ABSENT)
            continue;
        resp_int(b, i + 1);
        if (w->kind == WEIGHT_NULL)
            resp_arg(b, "n", 1);
        else
            resp_int(b, w->value);
    }
}

/* One side: FCALL fn numkeys (side keys) rel epoch now date counterpart
 * eventkey op version pairs...; both sides (side < 0): FCALL fn_both
 * numkeys (direct keys) (reverse keys) rel epoch now date a b
 * direct-eventkey reverse-eventkey op version pairs... (handlers/apply.lua);
 * with the module relationd.apply or relationd.apply2 and the
 * configuration's name instead of FCALL fn. */
static void write_call(Engine *e, const RelationDef *rel, int index, const Event *ev, int side)
{
    JsonBuf *b = &e->cmd;
    int npairs = 0;
    for (int i = 0; i < rel->nproperties; i++)
        npairs += ev->weights[i].kind != WEIGHT_ABSENT;
    int sides = side < 0 ? 2 : 1;
    int nkeys = sides * side_keys(e, rel);
    engine_write_call_head(e, side < 0 ? "apply2" : "apply",
                           (size_t)(1 + nkeys + 6 + 2 * sides + 2 * npairs));
    resp_int(b, nkeys);
    if (side < 0) {
        write_side_keys(e, b, rel, SIDE_DIRECT, ev);
        write_side_keys(e, b, rel, SIDE_REVERSE, ev);
    } else {
        write_side_keys(e, b, rel, (Side)side, ev);
    }
    resp_int(b, index + 1);
    resp_cstr(b, e->epoch);
    resp_cstr(b, e->now_ms);
    resp_cstr(b, e->date);
    if (side < 0) {
        resp_cstr(b, ev->profile_a);
        resp_cstr(b, ev->profile_b);
        write_event_key(b, ev, SIDE_DIRECT);
        write_event_key(b, ev, SIDE_REVERSE);
    } else {
        resp_cstr(b, side == SIDE_DIRECT ? ev->profile_b : ev->profile_a);
        write_event_key(b, ev, (Side)side);
    }
    write_event_args(b, rel, ev);
    if (side < 0)
        engine_cmd_end(e, ROUTER_ANY); /* one server only */
    else
        engine_cmd_end(e, key_slot(rel, (Side)side,
                                   side == SIDE_DIRECT ? ev->profile_a : ev->profile_b));
}

static bool pending_grow(Pending *pd, size_t n)
{
    if (pd->cap >= n)
        return true;
    if (n > SIZE_MAX / 2 || !GROW_EXACT(pd->state, 2 * n) || !GROW_EXACT(pd->replies, 2 * n) ||
        !GROW_EXACT(pd->both, n))
        return false;
    pd->cap = n;
    return true;
}

/* Writes the calls of every side of slot still pending, as one group: both
 * sides of an event in one call (atomic: both or neither), one side alone
 * when only it is pending. */
static void write_pending(Engine *e, int slot, char *err, size_t errlen)
{
    Pending *pd = &e->pending[slot];
    size_t count = 0;
    for (size_t i = 0; i < pd->n; i++) {
        bool direct = pd->state[2 * i] == SIDE_PENDING, reverse = pd->state[2 * i + 1] == SIDE_PENDING;
        if (!direct && !reverse)
            continue; /* replied: both[i] says how */
        int index = engine_relation_index(e->cfg, pd->events[i].rel);
        /* on a cluster the two sides live in two slots: a call each */
        pd->both[i] = index >= 0 && direct && reverse && !router_cluster(e->router);
        if (pd->both[i]) {
            write_call(e, &e->cfg->relations[index], index, &pd->events[i], -1);
            count++;
            continue;
        }
        for (int s = 0; s < 2; s++) {
            if (pd->state[2 * i + s] != SIDE_PENDING)
                continue;
            if (index < 0) {
                pd->state[2 * i + s] = SIDE_NOT_SENT; /* refused in recv */
                continue;
            }
            write_call(e, &e->cfg->relations[index], index, &pd->events[i], s);
            count++;
        }
    }
    if (!engine_push_group(e, GROUP_APPLY, count, 0, slot, err, errlen))
        e->cmd.oom = true; /* fails the flush */
    if (e->cfg->wait_replicas > 0 && count > 0) {
        /* the batch's writes held by enough replicas of every primary */
        resp_count(&e->cmd, '*', 3);
        resp_cstr(&e->cmd, "WAIT");
        resp_int(&e->cmd, e->cfg->wait_replicas);
        resp_int(&e->cmd, e->cfg->redis_timeout_ms / 2);
        engine_cmd_end(e, router_cluster(e->router) ? ROUTER_ALL : ROUTER_ANY);
        if (!engine_push_group(e, GROUP_WAIT, 1, 0, -1, err, errlen))
            e->cmd.oom = true;
    }
}

static void release(Pending *pd)
{
    for (size_t k = 0; k < 2 * pd->n; k++) {
        if (pd->replies[k])
            freeReplyObject(pd->replies[k]);
        pd->replies[k] = NULL;
    }
    pd->busy = pd->lost = false;
    pd->n = 0;
}

bool engine_send(Engine *e, const Event *events, size_t n, char *err, size_t errlen)
{
    int slot = -1;
    for (int i = 0; i < ENGINE_MAX_PENDING && slot < 0; i++)
        if (!e->pending[i].busy)
            slot = i;
    if (slot < 0) {
        snprintf(err, errlen, "redis: more than %d batches sent and not read", ENGINE_MAX_PENDING);
        return false;
    }
    Pending *pd = &e->pending[slot];
    if (!pending_grow(pd, n ? n : 1)) {
        snprintf(err, errlen, "out of memory for a batch of %zu", n);
        return false;
    }
    if (!engine_connected(e, err, errlen))
        return false;
    *pd = (Pending){.busy = true, .events = events, .n = n, .cap = pd->cap, .state = pd->state,
                    .both = pd->both, .replies = pd->replies, .seq = ++e->seq};
    for (size_t k = 0; k < 2 * n; k++) {
        pd->state[k] = SIDE_PENDING;
        pd->replies[k] = NULL;
    }
    now_strings(e);
    engine_queue_load(e, err, errlen);
    write_pending(e, slot, err, errlen);
    if (!engine_flush(e, err, errlen)) {
        release(pd);
        return false;
    }
    return true;
}

/* A refusal (APPLY_REFUSAL) is dead-lettered. Every other error is Redis's
 * or its data's (out of memory, no permission, a failed save, a key of
 * another type...): the batch is retried with back-off, never
 * dead-lettered. */
static bool refusal(const char *msg)
{
    return strncmp(msg, APPLY_REFUSAL, sizeof APPLY_REFUSAL - 1) == 0;
}

/* Reads the apply group at the head (the replies of its pending sides);
 * sides whose function was missing stay pending (*missing set). */
static bool read_apply_group(Engine *e, bool *missing, char *err, size_t errlen)
{
    Group g = e->groups[0];
    Pending *pd = &e->pending[g.slot];
    bool ok = true, readonly = false;
    memmove(e->groups, e->groups + 1, (size_t)(e->ngroups - 1) * sizeof *e->groups);
    e->ngroups--;
    for (size_t k = 0; k < 2 * pd->n; k++) {
        if (pd->state[k] != SIDE_PENDING)
            continue;
        bool both = k % 2 == 0 && pd->both[k / 2]; /* one reply for the two sides */
        redisReply *r;
        if (!engine_read_reply(e, &r, err, errlen))
            return false;
        if (r->type == REDIS_REPLY_ERROR && engine_missing_function(r->str)) {
            *missing = true;
            freeReplyObject(r);
            k += both;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR && !refusal(r->str)) {
            if (ok)
                snprintf(err, errlen, "redis: %s", r->str);
            ok = false;
            /* a primary turned replica (a failover): the next attempt
             * connects again, and asks the sentinels where the primary is */
            if (strncmp(r->str, "READONLY", 8) == 0)
                readonly = true;
        }
        pd->replies[k] = r;
        pd->state[k] = SIDE_REPLIED;
        if (both)
            pd->state[++k] = SIDE_REPLIED;
    }
    if (readonly)
        engine_drop(e);
    return ok;
}

static bool same_event(const Event *a, const Event *b)
{
    return strcmp(a->rel->short_name, b->rel->short_name) == 0 && strcmp(a->id, b->id) == 0 &&
           strcmp(a->profile_a, b->profile_a) == 0 && strcmp(a->profile_b, b->profile_b) == 0;
}

/* A duplicate whose triggers are already in hand: earlier in this batch, or
 * in the batch being delivered. */
static bool repeated(const Event *events, size_t i, const EventSpan *prev, int nprev)
{
    for (size_t j = 0; j < i; j++)
        if (same_event(&events[j], &events[i]))
            return true;
    for (int k = 0; k < nprev; k++)
        for (size_t j = 0; j < prev[k].n; j++)
            if (same_event(&prev[k].events[j], &events[i]))
                return true;
    return false;
}

static ApplyStatus combine(const int s[2])
{
    if (s[0] == APPLY_INVALID || s[1] == APPLY_INVALID)
        return APPLY_INVALID;
    if (s[0] == APPLY_APPLIED || s[1] == APPLY_APPLIED)
        return APPLY_APPLIED;
    if (s[0] == APPLY_DUPLICATE || s[1] == APPLY_DUPLICATE)
        return APPLY_DUPLICATE;
    return APPLY_STALE;
}

/* Turns the replies into statuses and triggers, in the batch's order. */
static bool take_replies(Engine *e, Pending *pd, ApplyResult *results, TriggerSet *out,
                         const EventSpan *prev, int nprev, char *err, size_t errlen)
{
    const Event *events = pd->events;
    for (size_t i = 0; i < pd->n; i++) {
        ApplyResult *res = &results[i];
        const Event *ev = &events[i];
        int st[2];
        memset(res, 0, sizeof *res);
        res->first = out->n;
        for (int s = 0; s < 2; s++) {
            redisReply *r = pd->replies[pd->both[i] ? 2 * i : 2 * i + s];
            if (!r) {
                st[s] = APPLY_INVALID;
                snprintf(res->error, sizeof res->error, "relation %s: not in the configuration",
                         ev->rel->short_name);
                continue;
            }
            if (r->type == REDIS_REPLY_ERROR) {
                snprintf(res->error, sizeof res->error, "%s", r->str + sizeof APPLY_REFUSAL - 1);
                st[s] = APPLY_INVALID;
                continue;
            }
            /* One side: {status[, record]}; both: {status, record or '',
             * status, record or ''}. */
            const redisReply *status = NULL, *blob = NULL;
            if (r->type == REDIS_REPLY_ARRAY && pd->both[i] && r->elements == 4) {
                status = r->element[2 * s];
                blob = r->element[2 * s + 1];
            } else if (r->type == REDIS_REPLY_ARRAY && !pd->both[i] && r->elements >= 1) {
                status = r->element[0];
                blob = r->elements >= 2 ? r->element[1] : NULL;
            }
            if (!status || status->type != REDIS_REPLY_INTEGER || status->integer < 1 ||
                status->integer > 3) {
                snprintf(err, errlen, "redis: unexpected reply to the apply function");
                return false;
            }
            st[s] = status->integer == 1   ? APPLY_APPLIED
                    : status->integer == 2 ? APPLY_DUPLICATE
                                           : APPLY_STALE;
            if (!blob || (blob->type == REDIS_REPLY_STRING && blob->len == 0))
                continue;
            if (st[s] == APPLY_DUPLICATE && repeated(events, i, prev, nprev))
                continue;
            SideRecord rec;
            char why[128];
            int ri = engine_relation_index(e->cfg, ev->rel);
            const RelationDef *rel = ri >= 0 ? &e->cfg->relations[ri] : ev->rel;
            /* a top left to the daemon is computed from the record's edges
             * (packed at the library's positions), this event's edge at
             * its new weights */
            EdgeSlots slots = {0};
            if (ri >= 0) {
                int nslots;
                const int *slot = engine_slots(e, ri, &nslots);
                slots.known = true;
                memcpy(slots.slot, slot, (size_t)rel->nproperties * sizeof *slot);
            }
            const char *cp = s == SIDE_DIRECT ? ev->profile_b : ev->profile_a;
            if (blob->type != REDIS_REPLY_STRING ||
                !record_decode_side(blob->str, blob->len, rel, &slots, cp, strlen(cp), &rec, why,
                                    sizeof why)) {
                /* Not ours to refuse: the event is fine; the entry is left for
                 * an operator and the event's triggers of this side are not
                 * sent. */
                log_at(LOG_ERROR, "redis", "event %s: %s", ev->id,
                       blob->type == REDIS_REPLY_STRING ? why : "record is not a string");
                continue;
            }
            trigger_render(out, rel, (Side)s, ev, &rec);
            res->outbox |= (unsigned char)(1u << s);
        }
        res->status = combine(st);
        res->ntriggers = out->n - res->first;
    }
    if (!triggers_finish(out)) {
        snprintf(err, errlen, "out of memory for the triggers");
        return false;
    }
    return true;
}

bool engine_recv(Engine *e, const Event *events, size_t n, ApplyResult *results,
                 TriggerSet *out, const EventSpan *prev, int nprev, char *err, size_t errlen)
{
    Pending *pd = NULL;
    bool ok = false;
    for (int i = 0; i < ENGINE_MAX_PENDING; i++)
        if (e->pending[i].busy && e->pending[i].events == events && e->pending[i].n == n)
            pd = &e->pending[i];
    if (!pd) {
        snprintf(err, errlen, "redis: the batch was not sent");
        return false;
    }
    int slot = (int)(pd - e->pending);
    if (pd->lost || !e->connected) {
        snprintf(err, errlen, "redis: connection lost");
        goto done;
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        bool missing = false;
        if (!engine_read_groups(e, true, err, errlen))
            goto done;
        if (e->ngroups == 0 || e->groups[0].kind != GROUP_APPLY || e->groups[0].slot != slot) {
            snprintf(err, errlen, "redis: batches read out of order");
            engine_drop(e);
            goto done;
        }
        if (!read_apply_group(e, &missing, err, errlen) ||
            !engine_read_groups(e, true, err, errlen))
            goto done;
        if (!missing)
            break;
        /* The library is not there (a restart without persistence, FUNCTION
         * FLUSH): the batches sent after this one met its absence too. Read
         * them, load the library, and send every side that met it again, in
         * the order the batches were sent. */
        log_at(LOG_WARN, "redis", "function library missing, loading it again");
        while (e->ngroups > 0) {
            bool later_missing = false;
            if (e->groups[0].kind == GROUP_APPLY) {
                if (!read_apply_group(e, &later_missing, err, errlen))
                    goto done;
            } else if (!engine_read_groups(e, true, err, errlen)) {
                goto done;
            }
        }
        e->loaded = false;
        engine_queue_load(e, err, errlen);
        /* the module fenced the sides that met its configuration missing
         * for this epoch: the calls sent again take a new one */
        engine_next_epoch(e);
        for (uint64_t q = pd->seq; q <= e->seq; q++)
            for (int i = 0; i < ENGINE_MAX_PENDING; i++)
                if (e->pending[i].busy && !e->pending[i].lost && e->pending[i].seq == q)
                    write_pending(e, i, err, errlen);
        if (!engine_flush(e, err, errlen))
            goto done;
        if (attempt == 2) {
            snprintf(err, errlen, "redis: function still missing after loading the library");
            engine_drop(e);
            goto done;
        }
    }
    ok = take_replies(e, pd, results, out, prev, nprev, err, errlen);
    if (!ok)
        engine_drop(e);
done:
    if (!ok) {
        /* A failure before this batch's replies were read: they would be
         * read as the replies of the next batch in its slot. They go with
         * the connection. */
        for (int g = 0; g < e->ngroups && e->connected; g++)
            if (e->groups[g].kind == GROUP_APPLY && e->groups[g].slot == slot)
                engine_drop(e);
        engine_next_epoch(e);
    }
    release(pd);
    return ok;
}

void engine_cancel(Engine *e, const Event *events, size_t n)
{
    for (int i = 0; i < ENGINE_MAX_PENDING; i++) {
        Pending *pd = &e->pending[i];
        if (!pd->busy || pd->events != events || pd->n != n)
            continue;
        if (!pd->lost)
            engine_drop(e);
        release(pd);
    }
}

bool engine_delivered_async(Engine *e, const Event *events, const ApplyResult *results,
                            size_t n, char *err, size_t errlen)
{
    /* Kept in `cleared` first: without a connection now, the next one sends
     * them. */
    size_t count = 0, start = e->cleared.len;
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < 2; s++) {
            if (!(results[i].outbox & (1u << s)))
                continue;
            const char *own = s == SIDE_DIRECT ? events[i].profile_a : events[i].profile_b;
            if (!GROW_RESERVE(e->cleared_slots, e->cleared_cap, e->ncleared + count + 1, 1024)) {
                e->cleared.oom = true;
                break;
            }
            resp_count(&e->cleared, '*', 3);
            resp_cstr(&e->cleared, "HDEL");
            key_write(&e->cleared, e->cfg, events[i].rel, (Side)s, own, "out", NULL);
            write_event_key(&e->cleared, &events[i], (Side)s);
            e->cleared_slots[e->ncleared + count] = key_slot(events[i].rel, (Side)s, own);
            count++;
        }
    if (e->cleared.oom) {
        snprintf(err, errlen, "redis: out of memory for the outbox clearing");
        e->cleared.oom = false;
        e->cleared.len = start;
        return false;
    }
    if (count == 0)
        return true;
    size_t first = e->ncleared;
    e->ncleared += count;
    if (!e->connected) {
        snprintf(err, errlen, "redis: connection lost (the clearing is sent on reconnection)");
        return false;
    }
    size_t bytes = e->cleared.len - start;
    const char *p = e->cleared.data + start;
    for (size_t i = first; i < e->ncleared; i++) {
        size_t len = resp_command_len(p, (size_t)(e->cleared.data + e->cleared.len - p));
        jsonbuf_put(&e->cmd, p, len);
        engine_cmd_end(e, e->cleared_slots[i]);
        p += len;
    }
    if (!engine_push_group(e, GROUP_HDEL, count, bytes, -1, err, errlen)) {
        engine_drop(e);
        return false;
    }
    return engine_flush(e, err, errlen);
}
