/* event.c — parses and validates one relation event (SPEC.md, "Input"). */
#include "handlers/event.h"
#include "handlers/fixed.h"

#include <jansson.h>
#include <stdarg.h>
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

static bool get_weight(const PropertyDef *p, EventOp op, const json_t *v, Weight *w, char *err,
                       size_t errlen)
{
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
        if (!fixed_from_json(v, FIXED_FLOAT_MAX, &w->value))
            return fail(err, errlen, "weights.%s: out of range -%lld..%lld", p->short_name,
                        FIXED_FLOAT_MAX, FIXED_FLOAT_MAX);
        return true;
    }
    return fail(err, errlen, "weights.%s: unknown type", p->short_name);
}

static bool parse_root(const Config *cfg, const json_t *root, Event *ev, char *err,
                       size_t errlen)
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
        if (!json_is_integer(v))
            return fail(err, errlen, "version: must be an integer");
        ev->has_version = true;
        ev->version = json_integer_value(v);
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
            if (!get_weight(&ev->rel->properties[p], ev->op, w, &ev->weights[p], err, errlen))
                return false;
        }
    }
    return true;
}

bool event_parse(const Config *cfg, const char *data, size_t len, Event *ev, char *err,
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
    ok = parse_root(cfg, root, ev, err, errlen);
    json_decref(root);
    return ok;
}
