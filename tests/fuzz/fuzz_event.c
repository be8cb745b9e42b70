/* fuzz_event.c — libFuzzer target: arbitrary bytes as an event, then as a
 * configuration. Neither may crash, leak or read out of bounds; a rejected
 * input must come with a message. */
#include "config/config.h"
#include "handlers/event.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const CONFIG =
    "{\"redis\": {\"url\": \"redis://127.0.0.1:6379/0\"}, \"relations\": [{"
    "\"short\": \"managers_loyal\", \"database_a\": \"managers\", \"database_b\": \"customers\","
    "\"properties\": [{\"short\": \"profit\", \"type\": \"float\", \"save_amount\": true,"
    " \"save_top\": {\"order\": \"desc\", \"limit\": 10}},"
    " {\"short\": \"purchases\", \"type\": \"int\", \"save_amount\": true},"
    " {\"short\": \"approve\", \"type\": \"bool\"}]}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static Config *cfg;
    char err[EVENT_ERR_MAX];
    Event ev;

    if (!cfg) {
        char cerr[CONFIG_ERR_MAX];
        cfg = config_parse(CONFIG, cerr, sizeof cerr);
        if (!cfg)
            abort();
    }
    err[0] = '\0';
    if (!event_parse(cfg, (const char *)data, size, &ev, err, sizeof err) && !err[0])
        abort(); /* a refusal without a reason */

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char cerr[CONFIG_ERR_MAX];
    cerr[0] = '\0';
    Config *other = config_parse(text, cerr, sizeof cerr);
    if (!other && !cerr[0])
        abort();
    config_free(other);
    free(text);
    return 0;
}
