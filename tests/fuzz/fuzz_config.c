/* fuzz_config.c — libFuzzer target: arbitrary bytes as a configuration
 * file. No crash, leak or read out of bounds; a refusal comes with a message;
 * a configuration that loads can be reloaded over itself; a float threshold
 * value is always found in the text, and it is the number jansson read there
 * (within the rounding of jansson's double). */
#include "config/config.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Each float threshold of cfg against the number jansson has at its path. */
static void check_float_thresholds(const Config *cfg, const char *text)
{
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        abort(); /* config_parse accepted it */
    json_t *rels = json_object_get(root, "relations");
    for (int i = 0; i < cfg->nrelations; i++) {
        const RelationDef *r = &cfg->relations[i];
        json_t *ths = json_object_get(json_array_get(rels, (size_t)i), "thresholds");
        for (int j = 0; j < r->nthresholds; j++) {
            const ThresholdDef *t = &r->thresholds[j];
            if (t->stat == STAT_COUNT || r->properties[t->property].type != PROP_FLOAT)
                continue;
            double d = json_number_value(json_object_get(json_array_get(ths, (size_t)j), "value"));
            if (fabs((double)t->value - d * 1e6) > 1.0 + fabs(d) * 1e6 * 1e-15)
                abort(); /* a float threshold read from another number of the text */
        }
    }
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[CONFIG_ERR_MAX];
    err[0] = '\0';
    Config *cfg = config_parse(text, err, sizeof err);
    if (!cfg && !err[0])
        abort(); /* a refusal without a reason */
    static const char lost[] = ".value: number not found in the configuration text";
    size_t en = strlen(err);
    if (!cfg && en >= sizeof lost - 1 && strcmp(err + en - (sizeof lost - 1), lost) == 0)
        abort(); /* a float threshold's text lost */
    if (cfg) {
        check_float_thresholds(cfg, text);
        Config *again = config_parse(text, err, sizeof err);
        char changed[256];
        if (!again)
            abort(); /* loaded once, refused the second time */
        if (config_keep_connections(again, cfg, changed, sizeof changed) && changed[0])
            abort(); /* the same file reloaded reports a change */
        config_free(again);
    }
    config_free(cfg);
    free(text);
    return 0;
}
