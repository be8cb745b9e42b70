/* publisher_driver.c — daemon/publisher.c driven from stdin, for
 * tests/e2e/test_publisher.py (built by make, not installed): `publisher_driver
 * URL EXCHANGE TYPE`; exit status 2 on other arguments, 1 when the publisher
 * cannot be made, else 0 at "quit" or the end of stdin.
 *
 * Commands on stdin, one per line; answers "ok [TAG]" or "fail REASON".
 *   publish N PREFIX SIZE   publisher_publish of N messages
 *   send N PREFIX SIZE      publisher_send of N messages
 *   sizes PREFIX S...       publisher_publish of one message per size
 *   wait TAG | poll | reset | quit
 *   mandatory               publisher_set_mandatory (returns logged as "messages")
 *   returned                answers "ok N": returns seen by the callback, which
 *                           checks them against publisher_returned
 *   long FIELD VERB         one message with a 256-byte FIELD (rk, id, ct,
 *                           hkey), by VERB (publish or send)
 * Message i of PREFIX: routing key rk.PREFIX, message id PREFIX-i, content
 * type application/octet-stream, headers x-index (int i), x-prefix, x-nested
 * {k: true}, x-list [5000000000, "two"]; body byte j = (j * 7 + i) % 251. */
#include "daemon/publisher.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Outgoing *out;
    char (*ids)[300];
    unsigned char **bodies;
    amqp_table_entry_t (*entries)[4];
    amqp_table_t *tables;
    amqp_table_entry_t nested_entry;
    amqp_field_value_t list[2];
    char rk[300];
    char ct[300];
    char hkey[300];
    size_t n;
} Batch;

static void batch_free(Batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->bodies[i]);
    free(b->out);
    free(b->ids);
    free(b->bodies);
    free(b->entries);
    free(b->tables);
    memset(b, 0, sizeof *b);
}

static void batch_make(Batch *b, const char *prefix, const size_t *sizes, size_t n)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->out = calloc(n + 1, sizeof *b->out);
    b->ids = calloc(n + 1, sizeof *b->ids);
    b->bodies = calloc(n + 1, sizeof *b->bodies);
    b->entries = calloc(n + 1, sizeof *b->entries);
    b->tables = calloc(n + 1, sizeof *b->tables);
    if (!b->out || !b->ids || !b->bodies || !b->entries || !b->tables)
        abort();
    snprintf(b->rk, sizeof b->rk, "rk.%s", prefix);
    snprintf(b->ct, sizeof b->ct, "application/octet-stream");
    snprintf(b->hkey, sizeof b->hkey, "x-index");
    b->nested_entry.key = amqp_cstring_bytes("k");
    b->nested_entry.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    b->nested_entry.value.value.boolean = 1;
    b->list[0].kind = AMQP_FIELD_KIND_I64;
    b->list[0].value.i64 = 5000000000; /* pika reads 64-bit integers as unsigned */
    b->list[1].kind = AMQP_FIELD_KIND_UTF8;
    b->list[1].value.bytes = amqp_cstring_bytes("two");
    for (size_t i = 0; i < n; i++) {
        snprintf(b->ids[i], sizeof b->ids[i], "%s-%zu", prefix, i);
        b->bodies[i] = malloc(sizes[i] ? sizes[i] : 1);
        if (!b->bodies[i])
            abort();
        for (size_t j = 0; j < sizes[i]; j++)
            b->bodies[i][j] = (unsigned char)((j * 7 + i) % 251);
        amqp_table_entry_t *e = b->entries[i];
        e[0].key = amqp_cstring_bytes(b->hkey);
        e[0].value.kind = AMQP_FIELD_KIND_I32;
        e[0].value.value.i32 = (int32_t)i;
        e[1].key = amqp_cstring_bytes("x-prefix");
        e[1].value.kind = AMQP_FIELD_KIND_UTF8;
        e[1].value.value.bytes = amqp_cstring_bytes(prefix);
        e[2].key = amqp_cstring_bytes("x-nested");
        e[2].value.kind = AMQP_FIELD_KIND_TABLE;
        e[2].value.value.table = (amqp_table_t){1, &b->nested_entry};
        e[3].key = amqp_cstring_bytes("x-list");
        e[3].value.kind = AMQP_FIELD_KIND_ARRAY;
        e[3].value.value.array = (amqp_array_t){2, b->list};
        b->tables[i] = (amqp_table_t){4, e};
        b->out[i] = (Outgoing){b->rk, b->ids[i], b->ct, &b->tables[i], b->bodies[i], sizes[i]};
    }
}

static uint64_t returns_seen;
static char return_key[300];

static void on_return(const char *routing_key)
{
    returns_seen++;
    snprintf(return_key, sizeof return_key, "%s", routing_key);
}

static void answer(bool ok, uint64_t tag, bool with_tag, const char *err)
{
    if (!ok)
        printf("fail %s\n", err);
    else if (with_tag)
        printf("ok %" PRIu64 "\n", tag);
    else
        printf("ok\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: driver URL EXCHANGE TYPE\n");
        return 2;
    }
    Publisher *p = publisher_new(argv[1], argv[2], argv[3], true, NULL);
    if (!p)
        return 1;
    char line[4096], err[512];
    while (fgets(line, sizeof line, stdin)) {
        char *save = NULL;
        char *cmd = strtok_r(line, " \n", &save);
        if (!cmd)
            continue;
        err[0] = '\0';
        if (!strcmp(cmd, "quit"))
            break;
        if (!strcmp(cmd, "publish") || !strcmp(cmd, "send")) {
            size_t n = strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
            const char *prefix = strtok_r(NULL, " \n", &save);
            size_t size = strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
            size_t *sizes = calloc(n + 1, sizeof *sizes);
            if (!sizes)
                abort();
            for (size_t i = 0; i < n; i++)
                sizes[i] = size;
            Batch b;
            batch_make(&b, prefix, sizes, n);
            uint64_t tag = 0;
            bool ok = cmd[0] == 'p' ? publisher_publish(p, b.out, n, &tag, err, sizeof err)
                                    : publisher_send(p, b.out, n, err, sizeof err);
            answer(ok, tag, cmd[0] == 'p', err);
            batch_free(&b);
            free(sizes);
        } else if (!strcmp(cmd, "sizes")) {
            const char *prefix = strtok_r(NULL, " \n", &save);
            size_t sizes[64], n = 0;
            char *s;
            while (n < 64 && (s = strtok_r(NULL, " \n", &save)))
                sizes[n++] = strtoul(s, NULL, 10);
            Batch b;
            batch_make(&b, prefix, sizes, n);
            uint64_t tag = 0;
            bool ok = publisher_publish(p, b.out, n, &tag, err, sizeof err);
            answer(ok, tag, true, err);
            batch_free(&b);
        } else if (!strcmp(cmd, "long")) {
            const char *field = strtok_r(NULL, " \n", &save);
            const char *verb = strtok_r(NULL, " \n", &save);
            size_t size = 10;
            Batch b;
            batch_make(&b, "long", &size, 1);
            char *target = !strcmp(field, "rk") ? b.rk : !strcmp(field, "id") ? b.ids[0]
                         : !strcmp(field, "ct") ? b.ct : b.hkey;
            memset(target, 'L', 256);
            target[256] = '\0';
            b.entries[0][0].key = amqp_cstring_bytes(b.hkey);
            uint64_t tag = 0;
            bool ok = !strcmp(verb, "publish")
                          ? publisher_publish(p, b.out, 1, &tag, err, sizeof err)
                          : publisher_send(p, b.out, 1, err, sizeof err);
            answer(ok, tag, !strcmp(verb, "publish"), err);
            batch_free(&b);
        } else if (!strcmp(cmd, "wait")) {
            uint64_t tag = strtoull(strtok_r(NULL, " \n", &save), NULL, 10);
            answer(publisher_wait(p, tag, err, sizeof err), 0, false, err);
        } else if (!strcmp(cmd, "poll")) {
            publisher_poll(p);
            answer(true, 0, false, "");
        } else if (!strcmp(cmd, "mandatory")) {
            publisher_set_mandatory(p, "messages", on_return);
            answer(true, 0, false, "");
        } else if (!strcmp(cmd, "returned")) {
            snprintf(err, sizeof err, "callback %" PRIu64 " (last %s), publisher_returned %"
                     PRIu64, returns_seen, return_key, publisher_returned(p));
            answer(returns_seen == publisher_returned(p), returns_seen, true, err);
        } else if (!strcmp(cmd, "reset")) {
            publisher_reset(p);
            answer(true, 0, false, "");
        } else {
            answer(false, 0, false, "unknown command");
        }
    }
    publisher_free(p);
    return 0;
}
