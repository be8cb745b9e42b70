/* fuzz_module.c — libFuzzer target: the Redis module's parsing, the code
 * that reads what a client sends to redis-server (module/conf.c, args.c)
 * and what it finds in the keyspace (edge.c), with the record writer
 * (mpack.c). Input: the first line is a configuration's text
 * (relationd.load), each further line a command's arguments separated by
 * spaces (the first one numkeys, as sent after the configuration's name),
 * tried as apply, apply2, rebuild and migrate, and the same line as a
 * stored edge's value, packed (layout 2: unpacked, packed again and read
 * back the same) and JSON (layout 1, the migration's). No crash, leak or
 * read out of bounds; a refusal comes with a message; what is accepted is
 * within the configuration's bounds.
 * The module's allocator (module/mem.h) is malloc here. */
#include "module/args.h"
#include "module/conf.h"
#include "module/edge.h"
#include "module/mem.h"
#include "module/mpack.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *mem_alloc(size_t n)
{
    return malloc(n);
}

void *mem_realloc(void *p, size_t n)
{
    return realloc(p, n);
}

void mem_free(void *p)
{
    free(p);
}

#define MAXA 256

static void try_line(const Conf *c, const char *line, size_t len)
{
    Str argv[MAXA + 3];
    int argc = 2; /* the command's name and the configuration's */
    const char *p = line, *end = line + len;
    while (p <= end && argc < MAXA + 3) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if (!sp)
            sp = end;
        argv[argc++] = (Str){p, (size_t)(sp - p)};
        p = sp + 1;
    }
    char err[256];
    if (argc < 3)
        return;
    int nkeys = args_numkeys(&argv[2], argc);
    if (nkeys < 0)
        return;
    const Str *args = argv + 3 + nkeys;
    int nargs = argc - 3 - nkeys;
    for (int both = 0; both < 2; both++) {
        ApplyArgs a;
        err[0] = '\0';
        if (!args_apply(c, both, nkeys, args, nargs, &a, err, sizeof err)) {
            if (!err[0])
                abort();
            continue;
        }
        int side = 4 + a.rel->ntops;
        if (a.rel < c->rel || a.rel >= c->rel + c->nrel ||
            nkeys != (both + 1) * (side + a.migrating) || a.half != side + a.migrating)
            abort();
        for (int s = 0; s <= both; s++)
            if (a.ek[s].len != ARGS_EVENT_KEY)
                abort();
        for (int j = 0; j < a.npairs; j++)
            if (a.pidx[j] < 0 || a.pidx[j] >= a.rel->n)
                abort();
    }
    RebuildArgs r;
    err[0] = '\0';
    if (!args_rebuild(c, nkeys, args, nargs, &r, err, sizeof err) && !err[0])
        abort();
    const ConfRel *rel;
    err[0] = '\0';
    if (args_migrate(c, nkeys, args, nargs, &rel, err, sizeof err)) {
        if (rel < c->rel || rel >= c->rel + c->nrel || nkeys != 4 + rel->ntops)
            abort();
    } else if (!err[0]) {
        abort();
    }
}

/* A packed value read, packed again and read back: the same weights and
 * version. */
static void try_packed(const ConfRel *r, const char *s, size_t len)
{
    Weights w, back;
    const char *ver, *ver2;
    size_t vl, vl2;
    if (!edge_unpack(r, s, len, &w, &ver, &vl))
        return;
    if (ver && (ver < s || ver + vl > s + len))
        abort();
    char *out = malloc(edge_pack_cap(r, vl));
    if (!out)
        return;
    size_t n = edge_pack(r, &w, ver, vl, out);
    if (n > edge_pack_cap(r, vl) || !edge_unpack(r, out, n, &back, &ver2, &vl2) ||
        (ver == NULL) != (ver2 == NULL) || vl != vl2 || (ver && memcmp(ver, ver2, vl) != 0))
        abort();
    for (int i = 0; i < r->n; i++) {
        double v;
        if (back.set[i] != w.set[i] || (w.set[i] && back.v[i] != w.v[i]) ||
            edge_slot(out, n, r->p[i].slot, &v) != w.set[i] || (w.set[i] && v != w.v[i]))
            abort();
    }
    free(out);
}

static void try_edge(const Conf *c, const char *s, size_t len)
{
    Weights w;
    char *ver = malloc(len + 1);
    size_t vl = 0;
    bool hv;
    if (!ver)
        return;
    for (int r = 0; r < c->nrel && r < 4; r++) {
        try_packed(&c->rel[r], s, len);
        if (!edge_parse_json(&c->rel[r], s, len, &w, ver, &vl, &hv))
            continue;
        if (hv && vl > len)
            abort();
        Mpack m = {0};
        mpack_array(&m, (size_t)c->rel[r].n);
        for (int i = 0; i < c->rel[r].n; i++) {
            if (w.set[i])
                mpack_number(&m, w.v[i]);
            else
                mpack_false(&m);
        }
        if (hv)
            mpack_str(&m, ver, vl);
        mpack_free(&m);
    }
    free(ver);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *end = text + size;
    const char *nl = memchr(text, '\n', size);
    size_t first = nl ? (size_t)(nl - text) : size;
    char err[200] = "";
    Conf *c = conf_parse("fuzz", 4, text, first, err, sizeof err);
    if (!c) {
        if (!err[0])
            abort();
        return 0;
    }
    if (c->nrel < 1)
        abort();
    for (int r = 0; r < c->nrel; r++)
        if (c->rel[r].nhm != 1 + 2 * c->rel[r].n || c->rel[r].ntops > c->rel[r].n)
            abort();
    const char *p = nl ? nl + 1 : end;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        try_line(c, p, (size_t)(e - p));
        try_edge(c, p, (size_t)(e - p));
        p = e + 1;
    }
    conf_put(c); /* the registry: replaced, kept, dropped past CONF_KEEP */
    if (!conf_get("fuzz", 4))
        abort();
    return 0;
}
