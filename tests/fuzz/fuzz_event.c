/* fuzz_event.c — libFuzzer target: arbitrary bytes as an event. No crash,
 * leak or read out of bounds; a refusal comes with a message; the one-pass
 * reader and the JSON path agree on every input (verdict, event, message);
 * the JSON path always finds a float weight's text in the event. */
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
    char err[EVENT_ERR_MAX], jerr[EVENT_ERR_MAX];
    Event ev, jev;

    if (!cfg) {
        char cerr[CONFIG_ERR_MAX];
        cfg = config_parse(CONFIG, cerr, sizeof cerr);
        if (!cfg)
            abort();
    }
    err[0] = jerr[0] = '\0';
    bool ok = event_parse(cfg, (const char *)data, size, &ev, err, sizeof err);
    if (!ok && !err[0])
        abort(); /* a refusal without a reason */
    bool jok = event_parse_json(cfg, (const char *)data, size, &jev, jerr, sizeof jerr);
    static const char lost[] = ": number not found in the event";
    size_t jn = strlen(jerr);
    if (strncmp(jerr, "weights.", 8) == 0 && jn >= sizeof lost - 1 &&
        strcmp(jerr + jn - (sizeof lost - 1), lost) == 0)
        abort(); /* the JSON path lost a weight's text */
    if (ok != jok || (ok && memcmp(&ev, &jev, sizeof ev) != 0) || (!ok && strcmp(err, jerr) != 0))
        abort(); /* the one-pass reader and the JSON path disagree */
    return 0;
}
