/* trigger.c — records decoded, trigger bodies rendered (trigger.h). */
#include "handlers/trigger.h"
#include "handlers/edge.h"

#include "lib/grow.h"
#include "lib/msgpack.h"
#include "lib/sha1.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"", "attach", "change", "detach", "threshold"};
static const char *const side_names[] = {"direct", "reverse"};
static const char *const stat_names[] = {"count", "total", "edge"};

void triggers_reset(TriggerSet *t)
{
    jsonbuf_reset(&t->text);
    t->n = 0;
    t->oom = false;
}

void triggers_free(TriggerSet *t)
{
    jsonbuf_free(&t->text);
    free(t->items);
    memset(t, 0, sizeof *t);
}

bool triggers_finish(TriggerSet *t)
{
    if (t->oom || t->text.oom)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        t->items[i].body = t->text.data + t->items[i].body_off;
        t->items[i].routing_key = t->text.data + t->items[i].key_off;
    }
    return true;
}

static Trigger *trigger_add(TriggerSet *t)
{
    if (!GROW_RESERVE(t->items, t->cap, t->n + 1, 256)) {
        t->oom = true;
        return NULL;
    }
    return &t->items[t->n++];
}

bool parse_int64(const char *s, size_t len, int64_t *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    /* [-]digits, within int64. */
    size_t i = buf[0] == '-';
    if (buf[i] < '0' || buf[i] > '9')
        return false;
    uint64_t u = 0;
    for (; buf[i] >= '0' && buf[i] <= '9'; i++) {
        if (u > (UINT64_MAX - 9) / 10)
            return false;
        u = u * 10 + (uint64_t)(buf[i] - '0');
    }
    if (buf[i] == '\0') {
        if (buf[0] == '-' ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
            return false;
        *out = buf[0] == '-' ? (int64_t)(0 - u) : (int64_t)u;
        return true;
    }
    /* A whole number Redis wrote as a double ("5e+15", "1.0"). */
    char *end;
    double d = strtod(buf, &end);
    if (*end != '\0' || !isfinite(d) || fabs(d) >= 9.2e18 || floor(d) != d)
        return false;
    *out = (int64_t)d;
    return true;
}

/* ---- records ---- */

static bool fail(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "bad outbox record: %s", what);
    return false;
}

/* Weights: an array (false = unset) or false (no edge). */
static bool read_weights(MpReader *r, int nprops, bool *has, EdgeWeights *w)
{
    MpValue v;
    memset(w, 0, sizeof *w);
    if (!mp_next(r, &v))
        return false;
    if (v.type == MP_BOOL || v.type == MP_NIL) {
        *has = false;
        return true;
    }
    if (v.type != MP_ARRAY && !(v.type == MP_MAP && v.len == 0))
        return false;
    *has = true;
    for (size_t i = 0; i < v.len; i++) {
        MpValue x;
        if (!mp_next(r, &x))
            return false;
        if ((int)i >= nprops)
            continue; /* a property removed since: ignored */
        if (x.type == MP_BOOL || x.type == MP_NIL)
            continue;
        if (!mp_integer(&x, &w->w[i]))
            return false;
        w->set[i] = true;
    }
    return true;
}

static bool counted(const PropertyDef *p, const EdgeWeights *w, bool has, int i)
{
    return has && w->set[i] && (p->type != PROP_BOOL || w->w[i] == 1);
}

/* (id, value) offered to the top of property i after the event: kept among
 * its first limit entries in the top's order (the id not copied). */
static void top_offer_entry(const RelationDef *rel, SideRecord *rec, int i, const char *id,
                            size_t len, int64_t value)
{
    const PropertyDef *p = &rel->properties[i];
    int limit = p->top_limit < CONFIG_MAX_TOP ? p->top_limit : CONFIG_MAX_TOP;
    TopEntry *e = rec->after.top[i];
    int at = top_rank(p->top_order, e, rec->after.ntop[i], limit, id, len, value);
    if (at >= 0)
        rec->after.ntop[i] = top_put(e, rec->after.ntop[i], limit, at, id, len, value);
}

/* Zeroes what a record's readers read unconditionally: the tops only up
 * to ntop (10 KiB of entries that a memset per trigger would clear). */
static void stats_clear(SideStats *s)
{
    s->count = 0;
    memset(s->pcount, 0, sizeof s->pcount);
    memset(s->ptotal, 0, sizeof s->ptotal);
    memset(s->ntop, 0, sizeof s->ntop);
}

/* The tops marked in from_edges computed from the record's edges (r at
 * them: flat field, value), the event's own edge (cp) at its new weights. */
static bool tops_from_edges(MpReader *r, const RelationDef *rel, const EdgeSlots *slots,
                            const char *cp, size_t cplen, const bool *from_edges,
                            SideRecord *rec, char *err, size_t errlen)
{
    MpValue v;
    if (!mp_next(r, &v) || (v.type != MP_ARRAY && !(v.type == MP_MAP && v.len == 0)) ||
        v.len % 2)
        return fail(err, errlen, "edges");
    if (!slots || !slots->known)
        return fail(err, errlen, "edges of a relation whose packed positions are unknown");
    for (size_t e = 0; e < v.len; e += 2) {
        MpValue f, x;
        if (!mp_next(r, &f) || f.type != MP_STR || !mp_next(r, &x) || x.type != MP_STR)
            return fail(err, errlen, "an edge");
        EdgeWeights w;
        char version[32];
        bool has_version;
        if (f.len < 1 || f.s[0] != '@' ||
            (f.len - 1 == cplen && memcmp(f.s + 1, cp, cplen) == 0) ||
            !edge_decode(rel, slots, x.s, x.len, &w, version, sizeof version, &has_version))
            continue; /* the event's own edge (below), or not an edge of ours */
        for (int i = 0; i < rel->nproperties; i++)
            if (from_edges[i] && w.set[i])
                top_offer_entry(rel, rec, i, f.s + 1, f.len - 1, w.w[i]);
    }
    for (int i = 0; i < rel->nproperties; i++)
        if (from_edges[i] && rec->has_new && rec->new_.set[i])
            top_offer_entry(rel, rec, i, cp, cplen, rec->new_.w[i]);
    return true;
}

bool record_decode(const void *data, size_t len, const RelationDef *rel, SideRecord *rec,
                   char *err, size_t errlen)
{
    return record_decode_side(data, len, rel, NULL, "", 0, rec, err, errlen);
}

bool record_decode_side(const void *data, size_t len, const RelationDef *rel,
                        const EdgeSlots *slots, const char *cp, size_t cplen, SideRecord *rec,
                        char *err, size_t errlen)
{
    MpReader r;
    MpValue v;
    int64_t k;
    bool from_edges[CONFIG_MAX_PROPERTIES] = {false}, any_from_edges = false;
    memset(rec, 0, offsetof(SideRecord, before));
    stats_clear(&rec->before);
    stats_clear(&rec->after);
    mp_reader_init(&r, data, len);
    if (!mp_next(&r, &v) || v.type != MP_ARRAY || (v.len != 6 && v.len != 7))
        return fail(err, errlen, "not an array of 6 or 7");
    bool has_edges = v.len == 7;
    if (!mp_next(&r, &v) || v.type != MP_STR)
        return fail(err, errlen, "event date");
    rec->date = v.s;
    rec->date_len = v.len;
    if (!mp_next(&r, &v) || !mp_integer(&v, &k) || k < KIND_ATTACH || k > KIND_DETACH)
        return fail(err, errlen, "kind");
    rec->kind = (TriggerKind)k;

    /* The stats fields before: count, then each property's count and total. */
    if (!mp_next(&r, &v) || (v.type != MP_ARRAY && !(v.type == MP_MAP && v.len == 0)))
        return fail(err, errlen, "statistics");
    size_t nfields = v.len;
    for (size_t f = 0; f < nfields; f++) {
        MpValue x;
        int64_t n = 0;
        if (!mp_next(&r, &x))
            return fail(err, errlen, "statistics");
        if ((x.type == MP_STR && !parse_int64(x.s, x.len, &n)) ||
            (x.type != MP_STR && x.type != MP_BOOL && x.type != MP_NIL))
            return fail(err, errlen, "a statistic is not an integer");
        if (f == 0)
            rec->before.count = n;
        else if ((int)(f - 1) / 2 < rel->nproperties) {
            if ((f - 1) % 2 == 0)
                rec->before.pcount[(f - 1) / 2] = n;
            else
                rec->before.ptotal[(f - 1) / 2] = n;
        }
    }
    if (!read_weights(&r, rel->nproperties, &rec->has_old, &rec->old))
        return fail(err, errlen, "old weights");
    if (!read_weights(&r, rel->nproperties, &rec->has_new, &rec->new_))
        return fail(err, errlen, "new weights");

    /* The tops after, one per property with a top, in property order. */
    if (!mp_next(&r, &v) || (v.type != MP_ARRAY && !(v.type == MP_MAP && v.len == 0)))
        return fail(err, errlen, "tops");
    size_t ntops = v.len, j = 0;
    for (int i = 0; i < rel->nproperties && j < ntops; i++) {
        if (rel->properties[i].top_order == TOP_NONE)
            continue;
        MpValue a;
        if (!mp_next(&r, &a))
            return fail(err, errlen, "a top");
        j++;
        if (a.type == MP_BOOL && has_edges) {
            from_edges[i] = any_from_edges = true; /* from the edges, below */
            continue;
        }
        if (a.type != MP_ARRAY && !(a.type == MP_MAP && a.len == 0))
            return fail(err, errlen, "a top");
        if (a.len % 2)
            return fail(err, errlen, "a top of odd length");
        for (size_t e = 0; e < a.len; e += 2) {
            MpValue id, score;
            if (!mp_next(&r, &id) || id.type != MP_STR || !mp_next(&r, &score) ||
                score.type != MP_STR)
                return fail(err, errlen, "a top entry");
            int n = rec->after.ntop[i];
            if (n >= CONFIG_MAX_TOP || n >= rel->properties[i].top_limit)
                continue;
            if (!parse_int64(score.s, score.len, &rec->after.top[i][n].value))
                return fail(err, errlen, "a top score");
            rec->after.top[i][n].id = id.s;
            rec->after.top[i][n].len = id.len;
            rec->after.ntop[i] = n + 1;
        }
    }
    for (; j < ntops; j++)
        if (!mp_skip(&r))
            return fail(err, errlen, "tops");
    if (has_edges && any_from_edges &&
        !tops_from_edges(&r, rel, slots, cp, cplen, from_edges, rec, err, errlen))
        return false;

    /* The statistics after (a sum out of int64 range is not a record of ours). */
    int64_t dc = (rec->kind == KIND_ATTACH) - (rec->kind == KIND_DETACH);
    if (__builtin_add_overflow(rec->before.count, dc, &rec->after.count))
        return fail(err, errlen, "count out of range");
    for (int i = 0; i < rel->nproperties; i++) {
        const PropertyDef *p = &rel->properties[i];
        int64_t d = (int64_t)counted(p, &rec->new_, rec->has_new, i) -
                    (int64_t)counted(p, &rec->old, rec->has_old, i);
        if (__builtin_add_overflow(rec->before.pcount[i], d, &rec->after.pcount[i]))
            return fail(err, errlen, "count out of range");
        rec->after.ptotal[i] = rec->before.ptotal[i];
        if (p->save_amount) {
            int64_t nv = rec->has_new && rec->new_.set[i] ? rec->new_.w[i] : 0;
            int64_t ov = rec->has_old && rec->old.set[i] ? rec->old.w[i] : 0;
            if (__builtin_sub_overflow(nv, ov, &d) ||
                __builtin_add_overflow(rec->after.ptotal[i], d, &rec->after.ptotal[i]))
                return fail(err, errlen, "total out of range");
        }
    }
    return true;
}

/* ---- rendering ---- */

void trigger_number(JsonBuf *b, const PropertyDef *p, int64_t v)
{
    if (p && p->type == PROP_FLOAT)
        jsonbuf_fixed(b, v);
    else
        jsonbuf_int(b, v);
}

static void name(JsonBuf *b, const char *s)
{
    jsonbuf_string(b, s, strlen(s));
}

static void weights_json(JsonBuf *b, const RelationDef *rel, bool has, const EdgeWeights *w)
{
    if (!has) {
        jsonbuf_put(b, "null", 4);
        return;
    }
    bool first = true;
    jsonbuf_char(b, '{');
    for (int i = 0; i < rel->nproperties; i++) {
        const PropertyDef *p = &rel->properties[i];
        if (!w->set[i])
            continue;
        if (!first)
            jsonbuf_char(b, ',');
        first = false;
        name(b, p->short_name);
        jsonbuf_char(b, ':');
        if (p->type == PROP_BOOL)
            jsonbuf_cstr(b, w->w[i] == 1 ? "true" : "false");
        else
            trigger_number(b, p, w->w[i]);
    }
    jsonbuf_char(b, '}');
}

void trigger_edge_json(JsonBuf *b, const RelationDef *rel, Side side, const char *cp, size_t cplen,
                       const EdgeWeights *w, const char *version, size_t vlen)
{
    jsonbuf_cstr(b, "{\"profile_id\":");
    jsonbuf_string(b, cp, cplen);
    jsonbuf_cstr(b, ",\"database\":");
    name(b, side == SIDE_DIRECT ? rel->database_b : rel->database_a);
    jsonbuf_cstr(b, ",\"weights\":");
    weights_json(b, rel, true, w);
    jsonbuf_cstr(b, ",\"version\":");
    if (version)
        jsonbuf_string(b, version, vlen);
    else
        jsonbuf_cstr(b, "null");
    jsonbuf_char(b, '}');
}

void trigger_stats_json(JsonBuf *b, const RelationDef *rel, const SideStats *st)
{
    jsonbuf_cstr(b, "{\"count\":");
    jsonbuf_int(b, st->count);
    jsonbuf_cstr(b, ",\"properties\":{");
    for (int i = 0; i < rel->nproperties; i++) {
        const PropertyDef *p = &rel->properties[i];
        if (i)
            jsonbuf_char(b, ',');
        name(b, p->short_name);
        jsonbuf_cstr(b, ":{\"count\":");
        jsonbuf_int(b, st->pcount[i]);
        if (p->save_amount) {
            jsonbuf_cstr(b, ",\"total\":");
            trigger_number(b, p, st->ptotal[i]);
        }
        if (p->top_order != TOP_NONE) {
            jsonbuf_cstr(b, ",\"top\":[");
            for (int k = 0; k < st->ntop[i]; k++) {
                if (k)
                    jsonbuf_char(b, ',');
                jsonbuf_cstr(b, "{\"profile_id\":");
                jsonbuf_string(b, st->top[i][k].id, st->top[i][k].len);
                jsonbuf_cstr(b, ",\"value\":");
                trigger_number(b, p, st->top[i][k].value);
                jsonbuf_char(b, '}');
            }
            jsonbuf_char(b, ']');
        }
        jsonbuf_char(b, '}');
    }
    jsonbuf_cstr(b, "}}");
}

/* A name-based UUID (version 5 layout) of the event id, relation, side, kind
 * and threshold index: stable across redeliveries. */
static void trigger_id(char out[TRIGGER_ID_LEN + 1], const Event *ev, const RelationDef *rel,
                       Side side, TriggerKind kind, int threshold)
{
    Sha1 s;
    unsigned char digest[20];
    char h[41], index[16] = "";
    sha1_init(&s);
    sha1_update(&s, ev->id, strlen(ev->id));
    sha1_update(&s, "|", 1);
    sha1_update(&s, rel->short_name, strlen(rel->short_name));
    sha1_update(&s, "|", 1);
    sha1_update(&s, side_names[side], strlen(side_names[side]));
    sha1_update(&s, "|", 1);
    sha1_update(&s, kind_names[kind], strlen(kind_names[kind]));
    sha1_update(&s, "|", 1);
    if (threshold >= 0)
        snprintf(index, sizeof index, "%d", threshold);
    sha1_update(&s, index, strlen(index));
    sha1_final(&s, digest);
    sha1_hex(digest, h);
    static const char variant[] = "89ab";
    int nib = h[16] <= '9' ? h[16] - '0' : h[16] - 'a' + 10;
    memcpy(out, h, 8);
    out[8] = '-';
    memcpy(out + 9, h + 8, 4);
    out[13] = '-';
    out[14] = '5';
    memcpy(out + 15, h + 13, 3);
    out[18] = '-';
    out[19] = variant[nib % 4];
    memcpy(out + 20, h + 17, 3);
    out[23] = '-';
    memcpy(out + 24, h + 20, 12);
    out[36] = '\0';
}

/* The watched value of threshold t; false when absent. */
static bool watched(const ThresholdDef *t, const SideStats *st, bool has_edge,
                    const EdgeWeights *w, int64_t *v)
{
    switch (t->stat) {
    case STAT_COUNT:
        *v = t->property < 0 ? st->count : st->pcount[t->property];
        return true;
    case STAT_TOTAL:
        *v = st->ptotal[t->property];
        return true;
    case STAT_EDGE:
        if (!has_edge || !w->set[t->property])
            return false;
        *v = w->w[t->property];
        return true;
    }
    return false;
}

/* A trigger's routing key and the head of its body, up to its kind; the
 * caller appends the rest. NULL when out of memory. */
static Trigger *emit_head(TriggerSet *out, const RelationDef *rel, Side side, const Event *ev,
                          const SideRecord *rec, TriggerKind kind, int threshold)
{
    JsonBuf *b = &out->text;
    Trigger *t = trigger_add(out);
    if (!t)
        return NULL;
    const char *own = side == SIDE_DIRECT ? ev->profile_a : ev->profile_b;
    const char *own_db = side == SIDE_DIRECT ? rel->database_a : rel->database_b;
    trigger_id(t->id, ev, rel, side, kind, threshold);

    t->key_off = b->len;
    jsonbuf_cstr(b, "relation.");
    jsonbuf_cstr(b, rel->short_name);
    jsonbuf_char(b, '.');
    jsonbuf_cstr(b, side_names[side]);
    jsonbuf_char(b, '.');
    jsonbuf_cstr(b, kind_names[kind]);
    jsonbuf_char(b, '\0');

    t->body_off = b->len;
    jsonbuf_cstr(b, "{\"event_type\":\"relation_");
    jsonbuf_cstr(b, side_names[side]);
    jsonbuf_char(b, '_');
    jsonbuf_cstr(b, kind_names[kind]);
    jsonbuf_cstr(b, "\",\"event_date\":");
    jsonbuf_string(b, rec->date, rec->date_len);
    jsonbuf_cstr(b, ",\"profile_id\":");
    name(b, own);
    jsonbuf_cstr(b, ",\"database\":");
    name(b, own_db);
    jsonbuf_cstr(b, ev->is_test ? ",\"is_test\":true" : ",\"is_test\":false");
    jsonbuf_cstr(b, ",\"event_data\":{\"id\":\"");
    jsonbuf_put(b, t->id, TRIGGER_ID_LEN);
    jsonbuf_cstr(b, "\",\"kind\":\"");
    jsonbuf_cstr(b, kind_names[kind]);
    return t;
}

void trigger_render(TriggerSet *out, const RelationDef *rel, Side side, const Event *ev,
                    const SideRecord *rec)
{
    JsonBuf *b = &out->text;
    const char *cp = side == SIDE_DIRECT ? ev->profile_b : ev->profile_a;
    const char *cp_db = side == SIDE_DIRECT ? rel->database_b : rel->database_a;

    /* The first trigger's body is written in place; its middle (from the
     * relation to the stats), shared by every trigger of this side, is
     * copied from there into the threshold triggers' bodies. */
    Trigger *first = emit_head(out, rel, side, ev, rec, rec->kind, -1);
    if (!first)
        return;
    size_t first_index = (size_t)(first - out->items);
    size_t mid_off = b->len;
    jsonbuf_cstr(b, "\",\"relation\":");
    name(b, rel->short_name);
    jsonbuf_cstr(b, ",\"direction\":\"");
    jsonbuf_cstr(b, side_names[side]);
    jsonbuf_cstr(b, "\",\"counterpart\":{\"profile_id\":");
    name(b, cp);
    jsonbuf_cstr(b, ",\"database\":");
    name(b, cp_db);
    jsonbuf_cstr(b, "},\"source_event\":{\"id\":");
    name(b, ev->id);
    jsonbuf_cstr(b, ",\"op\":\"");
    jsonbuf_cstr(b, event_op_name(ev->op));
    jsonbuf_cstr(b, "\",\"occurred_at\":");
    if (ev->occurred_at[0])
        name(b, ev->occurred_at);
    else
        jsonbuf_cstr(b, "null");
    jsonbuf_cstr(b, "},\"weights\":{\"before\":");
    weights_json(b, rel, rec->has_old, &rec->old);
    jsonbuf_cstr(b, ",\"after\":");
    weights_json(b, rel, rec->has_new, &rec->new_);
    jsonbuf_cstr(b, "},\"stats\":");
    trigger_stats_json(b, rel, &rec->after);
    jsonbuf_cstr(b, ",\"threshold\":");
    size_t mid_len = b->len - mid_off;
    jsonbuf_put(b, "null}}", 6);
    out->items[first_index].len = b->len - out->items[first_index].body_off;
    if (b->oom)
        return;

    for (int i = 0; i < rel->nthresholds; i++) {
        const ThresholdDef *t = &rel->thresholds[i];
        if (t->side != side)
            continue;
        int64_t x = 0, y = 0;
        bool hx = watched(t, &rec->before, rec->has_old, &rec->old, &x);
        bool hy = watched(t, &rec->after, rec->has_new, &rec->new_, &y);
        const char *crossing = NULL;
        if ((!hx || x < t->value) && hy && y >= t->value)
            crossing = "up";
        else if (hx && x >= t->value && (!hy || y < t->value))
            crossing = "down";
        if (!crossing)
            continue;
        /* The threshold object: short names and numbers, well under 512 bytes. */
        const PropertyDef *p = t->stat != STAT_COUNT ? &rel->properties[t->property] : NULL;
        char thr[640];
        size_t off = b->len;
        jsonbuf_cstr(b, "{\"stat\":\"");
        jsonbuf_cstr(b, stat_names[t->stat]);
        jsonbuf_cstr(b, "\",\"property\":");
        if (t->property >= 0)
            name(b, rel->properties[t->property].short_name);
        else
            jsonbuf_cstr(b, "null");
        jsonbuf_cstr(b, ",\"value\":");
        trigger_number(b, p, t->value);
        jsonbuf_cstr(b, ",\"crossing\":\"");
        jsonbuf_cstr(b, crossing);
        jsonbuf_cstr(b, "\",\"before\":");
        if (hx)
            trigger_number(b, p, x);
        else
            jsonbuf_cstr(b, "null");
        jsonbuf_cstr(b, ",\"after\":");
        if (hy)
            trigger_number(b, p, y);
        else
            jsonbuf_cstr(b, "null");
        if (t->name[0]) {
            jsonbuf_cstr(b, ",\"name\":");
            name(b, t->name);
        }
        jsonbuf_char(b, '}');
        if (b->oom)
            break;
        size_t len = b->len - off;
        if (len > sizeof thr) {
            out->oom = true;
            break;
        }
        memcpy(thr, b->data + off, len);
        b->len = off;
        Trigger *tr = emit_head(out, rel, side, ev, rec, KIND_THRESHOLD, i);
        if (!tr || !jsonbuf_reserve(b, mid_len))
            break;
        memcpy(b->data + b->len, b->data + mid_off, mid_len); /* an earlier part of b */
        b->len += mid_len;
        jsonbuf_put(b, thr, len);
        jsonbuf_put(b, "}}", 2);
        tr->len = b->len - tr->body_off;
    }
}
