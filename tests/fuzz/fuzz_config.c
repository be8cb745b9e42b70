/* fuzz_config.c — libFuzzer target: arbitrary bytes as a configuration
 * file. No crash, leak or read out of bounds; a refusal comes with a message;
 * a configuration that loads can be reloaded over itself. */
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    if (cfg) {
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
