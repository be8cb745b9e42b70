/* event.c — parses and validates one relation event (README, "Events"). */
#include "handlers/event.h"
#include "lib/fixed.h"
#include "lib/jsontext.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *const op_names[] = {"attach", "edit", "strengthen", "detach"};

const char *event_op_name(EventOp op)
{
    return op_names[op];
}

static bool fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

/* The text of the number weights.name of the event data..end, which
 * jansson has just accepted (valid JSON, no key twice): jansson keeps a
 * number only as a double (or an integer), and a float weight is rounded on
 * the decimal as written. */
static bool raw_weight(const char *data, const char *end, const char *name, const char **s,
                       size_t *n)
{
    const char *w = jsontext_member(data, end, "weights");
    const char *v = w ? jsontext_member(w, end, name) : NULL;
    return v && jsontext_number(v, end, s, n);
}

/* A non-empty string of at most max bytes, or an integer taken as its decimal string. */
static bool get_profile(const json_t *root, const char *key, char *out, size_t max, char *err,
                        size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (!v)
        return fail(err, errlen, "%s: required", key);
    if (json_is_integer(v)) {
        snprintf(out, max + 1, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return true;
    }
    if (!json_is_string(v) || json_string_length(v) == 0)
        return fail(err, errlen, "%s: must be a non-empty string or an integer", key);
    if (json_string_length(v) > max)
        return fail(err, errlen, "%s: longer than %zu bytes", key, max);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

/* The weight v, read from the event data..end. */
static bool get_weight(const PropertyDef *p, EventOp op, const json_t *v, const char *data,
                       const char *end, Weight *w, char *err, size_t errlen)
{
    const char *text;
    size_t n;

    if (json_is_null(v)) {
        if (op == OP_STRENGTHEN)
            return fail(err, errlen, "weights.%s: null is not allowed in strengthen",
                        p->short_name);
        w->kind = WEIGHT_NULL;
        return true;
    }
    w->kind = WEIGHT_VALUE;
    switch (p->type) {
    case PROP_BOOL:
        if (!json_is_boolean(v))
            return fail(err, errlen, "weights.%s: must be true or false", p->short_name);
        w->value = json_is_true(v);
        return true;
    case PROP_INT:
        if (!json_is_integer(v))
            return fail(err, errlen, "weights.%s: must be an integer", p->short_name);
        if (json_integer_value(v) > FIXED_INT_MAX || json_integer_value(v) < -FIXED_INT_MAX)
            return fail(err, errlen, "weights.%s: out of range -%lld..%lld", p->short_name,
                        FIXED_INT_MAX, FIXED_INT_MAX);
        w->value = json_integer_value(v);
        return true;
    case PROP_FLOAT:
        if (!json_is_number(v))
            return fail(err, errlen, "weights.%s: must be a number", p->short_name);
        if (!raw_weight(data, end, p->short_name, &text, &n))
            return fail(err, errlen, "weights.%s: number not found in the event", p->short_name);
        if (!fixed_from_text(text, n, FIXED_FLOAT_MAX, &w->value))
            return fail(err, errlen, "weights.%s: out of range -%lld..%lld", p->short_name,
                        FIXED_FLOAT_MAX, FIXED_FLOAT_MAX);
        return true;
    }
    return fail(err, errlen, "weights.%s: unknown type", p->short_name);
}

/* A version given as a string (how JavaScript producers send int64): the
 * decimal digits of an integer, -?(0|[1-9][0-9]*), within int64. */
bool decimal_int64(const char *s, size_t n, int64_t *out)
{
    size_t i = n > 0 && s[0] == '-';
    if (i == n || (s[i] == '0' && n > i + 1))
        return false;
    uint64_t u = 0, max = i ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || u > (max - (uint64_t)(s[i] - '0')) / 10)
            return false;
        u = u * 10 + (uint64_t)(s[i] - '0');
    }
    *out = s[0] == '-' ? (int64_t)(0 - u) : (int64_t)u;
    return true;
}

static bool parse_root(const Config *cfg, const json_t *root, const char *data, size_t len,
                       Event *ev, char *err, size_t errlen)
{
    json_t *v;

    if (!json_is_object(root))
        return fail(err, errlen, "event must be a JSON object");

    v = json_object_get(root, "id");
    if (!v)
        return fail(err, errlen, "id: required");
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > EVENT_ID_MAX)
        return fail(err, errlen, "id: must be a string of 1..%d bytes", EVENT_ID_MAX);
    memcpy(ev->id, json_string_value(v), json_string_length(v) + 1);

    v = json_object_get(root, "op");
    if (!v)
        return fail(err, errlen, "op: required");
    int op = -1;
    for (int i = 0; json_is_string(v) && i < 4; i++)
        if (strcmp(json_string_value(v), op_names[i]) == 0)
            op = i;
    if (op < 0)
        return fail(err, errlen, "op: must be attach, edit, strengthen or detach");
    ev->op = (EventOp)op;

    v = json_object_get(root, "relation");
    if (!v)
        return fail(err, errlen, "relation: required");
    if (!json_is_string(v))
        return fail(err, errlen, "relation: must be a string");
    ev->rel = config_relation(cfg, json_string_value(v));
    if (!ev->rel)
        return fail(err, errlen, "relation: unknown relation \"%.64s\"", json_string_value(v));

    if (!get_profile(root, "profile_a", ev->profile_a, EVENT_PROFILE_MAX, err, errlen) ||
        !get_profile(root, "profile_b", ev->profile_b, EVENT_PROFILE_MAX, err, errlen))
        return false;

    v = json_object_get(root, "version");
    if (v && !json_is_null(v)) {
        if (json_is_integer(v))
            ev->version = json_integer_value(v);
        else if (!json_is_string(v) ||
                 !decimal_int64(json_string_value(v), json_string_length(v), &ev->version))
            return fail(err, errlen, "version: must be an integer or its decimal string (int64)");
        ev->has_version = true;
    }

    v = json_object_get(root, "occurred_at");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || json_string_length(v) > EVENT_OCCURRED_MAX)
            return fail(err, errlen, "occurred_at: must be a string of at most %d bytes",
                        EVENT_OCCURRED_MAX);
        memcpy(ev->occurred_at, json_string_value(v), json_string_length(v) + 1);
    }

    v = json_object_get(root, "is_test");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return fail(err, errlen, "is_test: must be true or false");
        ev->is_test = json_is_true(v);
    }

    v = json_object_get(root, "weights");
    if (v && !json_is_null(v)) {
        const char *key;
        json_t *w;
        if (!json_is_object(v))
            return fail(err, errlen, "weights: must be an object");
        json_object_foreach(v, key, w) {
            int p = config_property(ev->rel, key);
            if (p < 0)
                return fail(err, errlen, "weights.%.64s: no such property in relation %s", key,
                            ev->rel->short_name);
            if (!get_weight(&ev->rel->properties[p], ev->op, w, data, data + len, &ev->weights[p],
                            err, errlen))
                return false;
        }
    }
    return true;
}

bool event_parse_json(const Config *cfg, const char *data, size_t len, Event *ev, char *err,
                      size_t errlen)
{
    json_error_t jerr;
    json_t *root;
    bool ok;

    memset(ev, 0, sizeof *ev);
    if (len > EVENT_MAX_BYTES)
        return fail(err, errlen, "event larger than %d bytes", EVENT_MAX_BYTES);
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(err, errlen, "not JSON: %s at column %d", jerr.text, jerr.column);
    ok = parse_root(cfg, root, data, len, ev, err, errlen);
    json_decref(root);
    return ok;
}

/* ---- the fast path ----
 *
 * Most events are plain: printable ASCII strings without escapes, numbers
 * without exponents, the known keys once each. Those are read here in one
 * pass, with no allocation. Anything else, and every invalid event, goes to
 * event_parse_json: the fast path only accepts, never refuses, so the result
 * and every message are the JSON path's. */

typedef enum { T_STR, T_INT, T_REAL, T_TRUE, T_FALSE, T_NULL, T_OBJ } TokType;
typedef struct {
    TokType type;
    const char *s; /* T_STR: the contents; numbers: the text; T_OBJ: from '{' */
    size_t n;
} Tok;

/* A string of printable ASCII without escapes. */
static const char *scan_string(const char *p, const char *end, Tok *t)
{
    if (p >= end || *p != '"')
        return NULL;
    const char *s = ++p;
    while (p < end && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c > 0x7e || c == '\\')
            return NULL;
        p++;
    }
    if (p >= end)
        return NULL;
    t->type = T_STR;
    t->s = s;
    t->n = (size_t)(p - s);
    return p + 1;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)? with at most 18 digits in all. */
static const char *scan_number(const char *p, const char *end, Tok *t)
{
    const char *s = p;
    int digits = 0;
    if (p < end && *p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')
        return NULL;
    while (p < end && *p >= '0' && *p <= '9')
        p++, digits++;
    t->type = T_INT;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++, digits++;
        t->type = T_REAL;
    }
    if (digits > 18 || (p < end && (*p == 'e' || *p == 'E')))
        return NULL;
    t->s = s;
    t->n = (size_t)(p - s);
    return p;
}

static const char *scan_word(const char *p, const char *end, const char *w, TokType type, Tok *t)
{
    size_t n = strlen(w);
    if ((size_t)(end - p) < n || memcmp(p, w, n) != 0)
        return NULL;
    t->type = type;
    t->s = p;
    t->n = n;
    return p + n;
}

/* A scalar; an object only when obj (then t->s..t->n span it, and its
 * members are scalars). */
static const char *scan_value(const char *p, const char *end, Tok *t, bool obj)
{
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"': return scan_string(p, end, t);
    case 't': return scan_word(p, end, "true", T_TRUE, t);
    case 'f': return scan_word(p, end, "false", T_FALSE, t);
    case 'n': return scan_word(p, end, "null", T_NULL, t);
    case '{': {
        if (!obj)
            return NULL;
        const char *s = p;
        Tok k, v;
        p = jsontext_skip_ws(p + 1, end);
        if (p < end && *p == '}')
            p++;
        else
            for (;;) {
                if (!(p = scan_string(p, end, &k)))
                    return NULL;
                p = jsontext_skip_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                if (!(p = scan_value(jsontext_skip_ws(p + 1, end), end, &v, false)))
                    return NULL;
                p = jsontext_skip_ws(p, end);
                if (p < end && *p == ',') {
                    p = jsontext_skip_ws(p + 1, end);
                    continue;
                }
                if (p >= end || *p != '}')
                    return NULL;
                p++;
                break;
            }
        t->type = T_OBJ;
        t->s = s;
        t->n = (size_t)(p - s);
        return p;
    }
    default: return scan_number(p, end, t);
    }
}

static bool tok_is(const Tok *t, const char *w)
{
    return t->n == strlen(w) && memcmp(t->s, w, t->n) == 0;
}

static bool tok_int(const Tok *t, int64_t *out)
{
    int64_t v = 0;
    bool neg = t->s[0] == '-';
    for (size_t i = neg; i < t->n; i++)
        v = v * 10 + (t->s[i] - '0'); /* at most 18 digits */
    *out = neg ? -v : v;
    return !(neg && v == 0); /* "-0" reads as 0: left to the JSON path */
}

static bool fast_weight(const PropertyDef *p, EventOp op, const Tok *t, Weight *w)
{
    if (t->type == T_NULL) {
        if (op == OP_STRENGTHEN)
            return false;
        w->kind = WEIGHT_NULL;
        return true;
    }
    w->kind = WEIGHT_VALUE;
    switch (p->type) {
    case PROP_BOOL:
        if (t->type != T_TRUE && t->type != T_FALSE)
            return false;
        w->value = t->type == T_TRUE;
        return true;
    case PROP_INT:
        return t->type == T_INT && tok_int(t, &w->value) && w->value <= FIXED_INT_MAX &&
               w->value >= -FIXED_INT_MAX;
    case PROP_FLOAT:
        return (t->type == T_INT || t->type == T_REAL) &&
               fixed_from_text(t->s, t->n, FIXED_FLOAT_MAX, &w->value);
    }
    return false;
}

static bool fast_string(const Tok *t, char *out, size_t max)
{
    if (t->type != T_STR || t->n == 0 || t->n > max)
        return false;
    memcpy(out, t->s, t->n);
    out[t->n] = '\0';
    return true;
}

static bool fast_profile(const Tok *t, char *out)
{
    if (t->type == T_INT) {
        int64_t v;
        if (!tok_int(t, &v))
            return false;
        memcpy(out, t->s, t->n); /* the canonical decimal: JSON has no leading zeros */
        out[t->n] = '\0';
        return true;
    }
    return fast_string(t, out, EVENT_PROFILE_MAX);
}

enum { K_ID, K_OP, K_REL, K_A, K_B, K_VERSION, K_OCCURRED, K_TEST, K_WEIGHTS, K_COUNT };
static const char *const known_keys[K_COUNT] = {
    "id", "op", "relation", "profile_a", "profile_b", "version", "occurred_at", "is_test",
    "weights"};

static bool fast_weights(const Tok *t, Event *ev)
{
    const char *p = jsontext_skip_ws(t->s + 1, t->s + t->n), *end = t->s + t->n;
    uint64_t seen = 0;
    while (p < end && *p != '}') {
        Tok k = {0}, v = {0};
        char name[CONFIG_SHORT_MAX + 1];
        p = scan_string(p, end, &k);
        if (k.n > CONFIG_SHORT_MAX)
            return false;
        memcpy(name, k.s, k.n);
        name[k.n] = '\0';
        int i = config_property(ev->rel, name);
        if (i < 0 || (seen & (1ull << i)))
            return false;
        seen |= 1ull << i;
        p = scan_value(jsontext_skip_ws(jsontext_skip_ws(p, end) + 1, end), end, &v, false);
        if (!fast_weight(&ev->rel->properties[i], ev->op, &v, &ev->weights[i]))
            return false;
        p = jsontext_skip_ws(p, end);
        if (*p == ',')
            p = jsontext_skip_ws(p + 1, end);
    }
    return true;
}

/* true: *ev is the event; false: the JSON path decides. */
static bool parse_fast(const Config *cfg, const char *data, size_t len, Event *ev)
{
    const char *p = data, *end = data + len;
    Tok v[K_COUNT];
    unsigned have = 0;

    if (len > EVENT_MAX_BYTES)
        return false;
    p = jsontext_skip_ws(p, end);
    if (p >= end || *p != '{')
        return false;
    p = jsontext_skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return false;
    for (;;) {
        Tok k;
        int key = -1;
        if (!(p = scan_string(p, end, &k)))
            return false;
        for (int i = 0; i < K_COUNT && key < 0; i++)
            if (tok_is(&k, known_keys[i]))
                key = i;
        if (key < 0 || (have & (1u << key)))
            return false; /* unknown keys are skipped by the JSON path */
        have |= 1u << key;
        p = jsontext_skip_ws(p, end);
        if (p >= end || *p != ':')
            return false;
        if (!(p = scan_value(jsontext_skip_ws(p + 1, end), end, &v[key], key == K_WEIGHTS)))
            return false;
        p = jsontext_skip_ws(p, end);
        if (p < end && *p == ',') {
            p = jsontext_skip_ws(p + 1, end);
            continue;
        }
        if (p >= end || *p != '}')
            return false;
        break;
    }
    if (jsontext_skip_ws(p + 1, end) != end)
        return false;

    unsigned required = 1u << K_ID | 1u << K_OP | 1u << K_REL | 1u << K_A | 1u << K_B;
    if ((have & required) != required || !fast_string(&v[K_ID], ev->id, EVENT_ID_MAX))
        return false;
    int op = -1;
    for (int i = 0; i < 4; i++)
        if (v[K_OP].type == T_STR && tok_is(&v[K_OP], op_names[i]))
            op = i;
    if (op < 0)
        return false;
    ev->op = (EventOp)op;
    char rel[CONFIG_SHORT_MAX + 1];
    if (!fast_string(&v[K_REL], rel, CONFIG_SHORT_MAX) || !(ev->rel = config_relation(cfg, rel)))
        return false;
    if (!fast_profile(&v[K_A], ev->profile_a) || !fast_profile(&v[K_B], ev->profile_b))
        return false;
    if ((have & 1u << K_VERSION) && v[K_VERSION].type != T_NULL) {
        const Tok *t = &v[K_VERSION];
        if (t->type == T_STR ? !decimal_int64(t->s, t->n, &ev->version)
                             : t->type != T_INT || !tok_int(t, &ev->version))
            return false;
        ev->has_version = true;
    }
    if ((have & 1u << K_OCCURRED) && v[K_OCCURRED].type != T_NULL) {
        const Tok *t = &v[K_OCCURRED];
        if (t->type != T_STR || t->n > EVENT_OCCURRED_MAX)
            return false;
        memcpy(ev->occurred_at, t->s, t->n);
        ev->occurred_at[t->n] = '\0';
    }
    if ((have & 1u << K_TEST) && v[K_TEST].type != T_NULL) {
        if (v[K_TEST].type != T_TRUE && v[K_TEST].type != T_FALSE)
            return false;
        ev->is_test = v[K_TEST].type == T_TRUE;
    }
    if ((have & 1u << K_WEIGHTS) && v[K_WEIGHTS].type != T_NULL)
        return v[K_WEIGHTS].type == T_OBJ && fast_weights(&v[K_WEIGHTS], ev);
    return true;
}

bool event_parse(const Config *cfg, const char *data, size_t len, Event *ev, char *err,
                 size_t errlen)
{
    memset(ev, 0, sizeof *ev);
    if (parse_fast(cfg, data, len, ev))
        return true;
    return event_parse_json(cfg, data, len, ev, err, errlen);
}
