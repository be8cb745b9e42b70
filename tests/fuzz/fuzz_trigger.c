/* fuzz_trigger.c — libFuzzer target: arbitrary bytes as the record an apply
 * call returns (MessagePack). A record that does not decode is refused with a
 * message; one that decodes (its tops from edges too: record_decode_side)
 * renders triggers that are valid JSON objects with
 * their routing key, and a `relationctl stats` body that is valid JSON. The
 * same bytes as a hook backlog entry's packed triggers read within them. No
 * crash, leak or read out of bounds. */
#include "config/config.h"
#include "handlers/event.h"
#include "handlers/backlog.h"
#include "handlers/trigger.h"
#include "handlers/edge.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const CONFIG =
    "{\"redis\": {\"url\": \"redis://127.0.0.1:6379/0\"}, \"relations\": [{"
    "\"short\": \"managers_loyal\", \"database_a\": \"managers\", \"database_b\": \"customers\","
    "\"properties\": [{\"short\": \"profit\", \"type\": \"float\", \"save_amount\": true,"
    " \"save_top\": {\"order\": \"desc\", \"limit\": 3}},"
    " {\"short\": \"purchases\", \"type\": \"int\", \"save_amount\": true,"
    " \"save_top\": {\"order\": \"asc\", \"limit\": 2}},"
    " {\"short\": \"approve\", \"type\": \"bool\"}],"
    " \"thresholds\": [{\"direction\": \"direct\", \"stat\": \"count\", \"value\": 2},"
    " {\"direction\": \"direct\", \"stat\": \"total\", \"property\": \"profit\", \"value\": 100.5},"
    " {\"direction\": \"reverse\", \"stat\": \"edge\", \"property\": \"approve\", \"value\": 1}]}]}";

static const char *const EVENT =
    "{\"id\":\"e-\\u00e9\\\"1\",\"op\":\"strengthen\",\"relation\":\"managers_loyal\","
    "\"profile_a\":\"42\",\"profile_b\":\"c\\n1\",\"occurred_at\":\"2026-01-01T00:00:00Z\"}";

static void valid_json(const char *text, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(text, len, JSON_ALLOW_NUL, &e); /* \u0000 is JSON */
    if (!j || !json_is_object(j))
        abort(); /* rendered text that is not a JSON object */
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static Config *cfg;
    static Event ev;
    static TriggerSet set;
    if (!cfg) {
        char err[CONFIG_ERR_MAX];
        cfg = config_parse(CONFIG, err, sizeof err);
        if (!cfg || !event_parse(cfg, EVENT, strlen(EVENT), &ev, err, sizeof err))
            abort();
    }
    /* the same bytes as a backlog entry's packed triggers (handlers/backlog.h,
     * read by the deliverers from Redis): every string read lies within them,
     * NUL-terminated there */
    size_t at = 0;
    BacklogEntry x;
    while (backlog_unpack((const char *)data, size, &at, &x)) {
        const char *end = (const char *)data + size;
        if (at > size || x.body + x.len >= end || x.body[x.len] != '\0' ||
            x.event_type + strlen(x.event_type) >= end)
            abort();
    }
    const RelationDef *rel = &cfg->relations[0];
    SideRecord rec;
    char why[256];
    why[0] = '\0';
    /* the relation's positions in a packed edge (a record's edges, when a
     * top is left to the daemon: apply.lua), the event's counterpart "c\n1" */
    static const EdgeSlots slots = {.known = true, .slot = {1, 2, 3}};
    if (!record_decode_side(data, size, rel, &slots, "c\n1", 3, &rec, why, sizeof why)) {
        if (!why[0])
            abort(); /* a refusal without a reason */
        return 0;
    }
    triggers_reset(&set);
    for (int side = 0; side < 2; side++)
        trigger_render(&set, rel, (Side)side, &ev, &rec);
    if (!triggers_finish(&set))
        return 0; /* out of memory */
    for (size_t i = 0; i < set.n; i++) {
        if (strncmp(set.items[i].routing_key, "relation.managers_loyal.", 24) != 0)
            abort();
        valid_json(set.items[i].body, set.items[i].len);
    }
    JsonBuf stats = {0};
    trigger_stats_json(&stats, rel, &rec.after);
    if (!stats.oom)
        valid_json(stats.data, stats.len);
    jsonbuf_free(&stats);
    return 0;
}
