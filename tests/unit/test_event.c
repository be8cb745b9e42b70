/* test_event.c — event_parse: every rule, every message, the parsed fields.
 *
 * The JSON texts of the table are written with single quotes, turned into
 * double quotes before parsing. A '#' in a text (and in the expected strings)
 * stands for `fill` bytes 'x'; with `pad_to` set, for as many as make the
 * whole event exactly pad_to bytes long. Each event is handed to event_parse
 * in a buffer of exactly its length, without a terminating NUL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "handlers/event.h"
#include "lib/fixed.h"

static const char config_text[] =
    "{\"redis\": {\"url\": \"redis://localhost\"},\n"
    " \"relations\": [\n"
    "  {\"short\": \"rel\", \"database_a\": \"managers\", \"database_b\": \"customers\",\n"
    "   \"properties\": [\n"
    "     {\"short\": \"i\", \"type\": \"int\", \"save_amount\": true},\n"
    "     {\"short\": \"f\", \"type\": \"float\", \"save_amount\": true,\n"
    "      \"save_top\": {\"order\": \"desc\", \"limit\": 5}},\n"
    "     {\"short\": \"b\", \"type\": \"bool\"}]},\n"
    "  {\"short\": \"other\", \"database_a\": \"a\", \"database_b\": \"b\"}]}\n";

#define NPROPS 3 /* of relation "rel": i, f, b */
#define VERR "version: must be an integer or its decimal string (int64)"
#define I 0
#define F 1
#define B 2

typedef struct {
    WeightKind kind;
    int64_t value;
} WantWeight;

typedef struct {
    const char *id; /* NULL: "e1" */
    EventOp op;
    const char *rel; /* NULL: "rel" */
    const char *a;   /* NULL: "42" */
    const char *b;   /* NULL: "1001" */
    bool has_version;
    int64_t version;
    const char *occurred_at; /* NULL: "" */
    bool is_test;
    WantWeight w[NPROPS]; /* unlisted: WEIGHT_ABSENT */
} Want;

typedef struct {
    const char *name;
    const char *json; /* single quotes stand for double quotes */
    size_t fill;      /* '#' becomes this many 'x' */
    size_t pad_to;    /* or: '#' fills the event up to this many bytes */
    const char *error; /* exact message, or NULL: valid */
    Want want;         /* valid cases: the parsed fields */
} Case;

#define HEAD "'id':'e1','op':'attach','relation':'rel','profile_a':'42','profile_b':'1001'"
#define EV(...) "{" HEAD __VA_ARGS__ "}"
#define WTS(...) EV(",'weights':{" __VA_ARGS__ "}")
#define OPEV(op, ...) "{'id':'e1','op':'" op "','relation':'rel','profile_a':'42','profile_b':'1001'" __VA_ARGS__ "}"
#define VAL(v) {WEIGHT_VALUE, (v)}
#define NUL_W {WEIGHT_NULL, 0}
#define S64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

#define INT_RANGE "out of range -1000000000000000..1000000000000000"
#define FLOAT_RANGE "out of range -1000000000..1000000000"

static const Case cases[] = {
    /* the four ops */
    {"attach with every field",
     "{'id':'9f1c0d2e-aa','op':'attach','relation':'rel','profile_a':'42','profile_b':'1001',"
     "'weights':{'i':5,'f':250.5,'b':true},'version':1764331200123,"
     "'occurred_at':'2026-11-28T12:00:00Z','is_test':false}",
     0, 0, NULL,
     {.id = "9f1c0d2e-aa", .op = OP_ATTACH, .has_version = true, .version = 1764331200123LL,
      .occurred_at = "2026-11-28T12:00:00Z", .w = {VAL(5), VAL(250500000), VAL(1)}}},
    {"edit", OPEV("edit", ",'weights':{'f':-1.25}"), 0, 0, NULL,
     {.op = OP_EDIT, .w = {[F] = VAL(-1250000)}}},
    {"strengthen with negative deltas", OPEV("strengthen", ",'weights':{'i':-3,'f':-0.25,'b':false}"),
     0, 0, NULL, {.op = OP_STRENGTHEN, .w = {VAL(-3), VAL(-250000), VAL(0)}}},
    {"detach without weights", OPEV("detach"), 0, 0, NULL, {.op = OP_DETACH}},
    {"detach with weights (validated)", OPEV("detach", ",'weights':{'i':1,'b':null}"), 0, 0, NULL,
     {.op = OP_DETACH, .w = {[I] = VAL(1), [B] = NUL_W}}},
    {"detach with a bad weight", OPEV("detach", ",'weights':{'i':'1'}"), 0, 0,
     "weights.i: must be an integer", {0}},
    {"detach with an unknown weight", OPEV("detach", ",'weights':{'zz':1}"), 0, 0,
     "weights.zz: no such property in relation rel", {0}},
    {"attach without weights", EV(""), 0, 0, NULL, {.op = OP_ATTACH}},

    /* op */
    {"op missing", "{'id':'e1','relation':'rel','profile_a':'42','profile_b':'1001'}", 0, 0,
     "op: required", {0}},
    {"op unknown", OPEV("delete"), 0, 0, "op: must be attach, edit, strengthen or detach", {0}},
    {"op uppercase", OPEV("Attach"), 0, 0, "op: must be attach, edit, strengthen or detach", {0}},
    {"op empty", OPEV(""), 0, 0, "op: must be attach, edit, strengthen or detach", {0}},
    {"op not a string", "{'id':'e1','op':1,'relation':'rel','profile_a':'42','profile_b':'1001'}",
     0, 0, "op: must be attach, edit, strengthen or detach", {0}},
    {"op null", "{'id':'e1','op':null,'relation':'rel','profile_a':'42','profile_b':'1001'}", 0, 0,
     "op: must be attach, edit, strengthen or detach", {0}},

    /* id */
    {"id missing", "{'op':'attach','relation':'rel','profile_a':'42','profile_b':'1001'}", 0, 0,
     "id: required", {0}},
    {"id empty", "{'id':'','op':'attach','relation':'rel','profile_a':'42','profile_b':'1001'}", 0,
     0, "id: must be a string of 1..128 bytes", {0}},
    {"id 129 bytes", "{'id':'#','op':'attach','relation':'rel','profile_a':'42','profile_b':'1001'}",
     129, 0, "id: must be a string of 1..128 bytes", {0}},
    {"id 128 bytes", "{'id':'#','op':'attach','relation':'rel','profile_a':'42','profile_b':'1001'}",
     128, 0, NULL, {.id = "#", .op = OP_ATTACH}},
    {"id 1 byte", "{'id':'z','op':'edit','relation':'rel','profile_a':'42','profile_b':'1001'}", 0,
     0, NULL, {.id = "z", .op = OP_EDIT}},
    {"id an integer", "{'id':7,'op':'attach','relation':'rel','profile_a':'42','profile_b':'1001'}",
     0, 0, "id: must be a string of 1..128 bytes", {0}},
    {"id null", "{'id':null,'op':'attach','relation':'rel','profile_a':'42','profile_b':'1001'}", 0,
     0, "id: must be a string of 1..128 bytes", {0}},
    {"id checked before op", "{'id':'','op':'nope'}", 0, 0, "id: must be a string of 1..128 bytes",
     {0}},

    /* relation */
    {"relation missing", "{'id':'e1','op':'attach','profile_a':'42','profile_b':'1001'}", 0, 0,
     "relation: required", {0}},
    {"relation unknown",
     "{'id':'e1','op':'attach','relation':'nope','profile_a':'42','profile_b':'1001'}", 0, 0,
     "relation: unknown relation \"nope\"", {0}},
    {"relation unknown, long name cut at 64 bytes",
     "{'id':'e1','op':'attach','relation':'" S64 "tail','profile_a':'42','profile_b':'1001'}", 0, 0,
     "relation: unknown relation \"" S64 "\"", {0}},
    {"relation not a string",
     "{'id':'e1','op':'attach','relation':5,'profile_a':'42','profile_b':'1001'}", 0, 0,
     "relation: must be a string", {0}},
    {"relation an object",
     "{'id':'e1','op':'attach','relation':{'short':'rel'},'profile_a':'42','profile_b':'1001'}", 0,
     0, "relation: must be a string", {0}},
    {"relation other, no properties",
     "{'id':'e1','op':'attach','relation':'other','profile_a':'a','profile_b':'b'}", 0, 0, NULL,
     {.op = OP_ATTACH, .rel = "other", .a = "a", .b = "b"}},
    {"weight of a property of another relation",
     "{'id':'e1','op':'attach','relation':'other','profile_a':'a','profile_b':'b','weights':{'i':1}}",
     0, 0, "weights.i: no such property in relation other", {0}},

    /* profile_a / profile_b */
    {"profile_a missing", "{'id':'e1','op':'attach','relation':'rel','profile_b':'1001'}", 0, 0,
     "profile_a: required", {0}},
    {"profile_b missing", "{'id':'e1','op':'attach','relation':'rel','profile_a':'42'}", 0, 0,
     "profile_b: required", {0}},
    {"profile_a empty", "{'id':'e1','op':'attach','relation':'rel','profile_a':'','profile_b':'1'}",
     0, 0, "profile_a: must be a non-empty string or an integer", {0}},
    {"profile_b empty", "{'id':'e1','op':'attach','relation':'rel','profile_a':'1','profile_b':''}",
     0, 0, "profile_b: must be a non-empty string or an integer", {0}},
    {"profile_a 129 bytes",
     "{'id':'e1','op':'attach','relation':'rel','profile_a':'#','profile_b':'1'}", 129, 0,
     "profile_a: longer than 128 bytes", {0}},
    {"profile_b 129 bytes",
     "{'id':'e1','op':'attach','relation':'rel','profile_a':'1','profile_b':'#'}", 129, 0,
     "profile_b: longer than 128 bytes", {0}},
    {"profile_a 128 bytes",
     "{'id':'e1','op':'attach','relation':'rel','profile_a':'#','profile_b':'1'}", 128, 0, NULL,
     {.op = OP_ATTACH, .a = "#", .b = "1"}},
    {"profile_b 128 bytes",
     "{'id':'e1','op':'attach','relation':'rel','profile_a':'1','profile_b':'#'}", 128, 0, NULL,
     {.op = OP_ATTACH, .a = "1", .b = "#"}},
    {"profiles as integers",
     "{'id':'e1','op':'attach','relation':'rel','profile_a':42,'profile_b':-7}", 0, 0, NULL,
     {.op = OP_ATTACH, .a = "42", .b = "-7"}},
    {"profile 0 and int64 extremes",
     "{'id':'e1','op':'attach','relation':'rel','profile_a':9223372036854775807,"
     "'profile_b':-9223372036854775808}",
     0, 0, NULL, {.op = OP_ATTACH, .a = "9223372036854775807", .b = "-9223372036854775808"}},
    {"profile 0", "{'id':'e1','op':'attach','relation':'rel','profile_a':0,'profile_b':'0'}", 0, 0,
     NULL, {.op = OP_ATTACH, .a = "0", .b = "0"}},
    {"profile_a real", "{'id':'e1','op':'attach','relation':'rel','profile_a':4.2,'profile_b':'1'}",
     0, 0, "profile_a: must be a non-empty string or an integer", {0}},
    {"profile_b real 42.0",
     "{'id':'e1','op':'attach','relation':'rel','profile_a':'1','profile_b':42.0}", 0, 0,
     "profile_b: must be a non-empty string or an integer", {0}},
    {"profile_a bool", "{'id':'e1','op':'attach','relation':'rel','profile_a':true,'profile_b':'1'}",
     0, 0, "profile_a: must be a non-empty string or an integer", {0}},
    {"profile_a null", "{'id':'e1','op':'attach','relation':'rel','profile_a':null,'profile_b':'1'}",
     0, 0, "profile_a: must be a non-empty string or an integer", {0}},
    {"profile_b an array",
     "{'id':'e1','op':'attach','relation':'rel','profile_a':'1','profile_b':['1']}", 0, 0,
     "profile_b: must be a non-empty string or an integer", {0}},

    /* weights */
    {"weights an array", EV(",'weights':[1]"), 0, 0, "weights: must be an object", {0}},
    {"weights a string", EV(",'weights':'i=1'"), 0, 0, "weights: must be an object", {0}},
    {"weights a number", EV(",'weights':0"), 0, 0, "weights: must be an object", {0}},
    {"weights null", EV(",'weights':null"), 0, 0, NULL, {.op = OP_ATTACH}},
    {"weights empty", EV(",'weights':{}"), 0, 0, NULL, {.op = OP_ATTACH}},
    {"unknown property", WTS("'i':1,'zz':2"), 0, 0, "weights.zz: no such property in relation rel",
     {0}},
    {"unknown property, case differs", WTS("'I':1"), 0, 0,
     "weights.I: no such property in relation rel", {0}},
    {"unknown property, long name cut at 64 bytes", WTS("'" S64 "more':1"), 0, 0,
     "weights." S64 ": no such property in relation rel", {0}},

    /* int weights */
    {"int 1.5", WTS("'i':1.5"), 0, 0, "weights.i: must be an integer", {0}},
    {"int 1e3 (a real)", WTS("'i':1e3"), 0, 0, "weights.i: must be an integer", {0}},
    {"int 2.0 (a real)", WTS("'i':2.0"), 0, 0, "weights.i: must be an integer", {0}},
    {"int true", WTS("'i':true"), 0, 0, "weights.i: must be an integer", {0}},
    {"int string", WTS("'i':'5'"), 0, 0, "weights.i: must be an integer", {0}},
    {"int object", WTS("'i':{}"), 0, 0, "weights.i: must be an integer", {0}},
    {"int 1e15", WTS("'i':1000000000000000"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[I] = VAL(1000000000000000LL)}}},
    {"int -1e15", WTS("'i':-1000000000000000"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[I] = VAL(-1000000000000000LL)}}},
    {"int 1e15+1", WTS("'i':1000000000000001"), 0, 0, "weights.i: " INT_RANGE, {0}},
    {"int -1e15-1", WTS("'i':-1000000000000001"), 0, 0, "weights.i: " INT_RANGE, {0}},
    {"int int64 max", WTS("'i':9223372036854775807"), 0, 0, "weights.i: " INT_RANGE, {0}},
    {"int 0", WTS("'i':0"), 0, 0, NULL, {.op = OP_ATTACH, .w = {[I] = VAL(0)}}},

    /* float weights: fixed-point, 6 decimals, half away from zero */
    {"float string", WTS("'f':'1.5'"), 0, 0, "weights.f: must be a number", {0}},
    {"float bool", WTS("'f':false"), 0, 0, "weights.f: must be a number", {0}},
    {"float array", WTS("'f':[1]"), 0, 0, "weights.f: must be a number", {0}},
    {"float integer accepted", WTS("'f':3"), 0, 0, NULL, {.op = OP_ATTACH, .w = {[F] = VAL(3000000)}}},
    {"float negative integer", WTS("'f':-3"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(-3000000)}}},
    {"float 0.1", WTS("'f':0.1"), 0, 0, NULL, {.op = OP_ATTACH, .w = {[F] = VAL(100000)}}},
    {"float 0.1234565 rounds up", WTS("'f':0.1234565"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(123457)}}},
    {"float -0.1234565 rounds away from zero", WTS("'f':-0.1234565"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(-123457)}}},
    {"float 0.1234564 rounds down", WTS("'f':0.1234564"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(123456)}}},
    {"float 0.12345649 rounds down", WTS("'f':0.12345649"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(123456)}}},
    {"float 1.2345675 rounds up", WTS("'f':1.2345675"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(1234568)}}},
    {"float 0.0000005 rounds up", WTS("'f':0.0000005"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(1)}}},
    {"float -0.0000005 rounds away from zero", WTS("'f':-0.0000005"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(-1)}}},
    {"float 0.0000004 rounds to 0", WTS("'f':0.0000004"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(0)}}},
    {"float 1e-7 rounds to 0", WTS("'f':1e-7"), 0, 0, NULL, {.op = OP_ATTACH, .w = {[F] = VAL(0)}}},
    {"float 123.4567895 rounds up", WTS("'f':123.4567895"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(123456790)}}},
    /* the decimal the sender wrote is rounded, not its nearest double
     * (0.0019985 is 0.00199849999... as a double) */
    {"float 0.0019985 rounds up", WTS("'f':0.0019985"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(1999)}}},
    {"float 0.0039225 rounds up", WTS("'f':0.0039225"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(3923)}}},
    {"float 0.0156515 rounds up", WTS("'f':0.0156515"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(15652)}}},
    {"float -0.0019985 rounds away from zero", WTS("'f':-0.0019985"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(-1999)}}},
    {"float 999999999.999999 exact", WTS("'f':999999999.999999"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(999999999999999LL)}}},
    {"float 2.5e-1", WTS("'f':2.5e-1"), 0, 0, NULL, {.op = OP_ATTACH, .w = {[F] = VAL(250000)}}},
    {"float 1e9 integer", WTS("'f':1000000000"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(1000000000000000LL)}}},
    {"float 1e9 real", WTS("'f':1e9"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(1000000000000000LL)}}},
    {"float -1e9", WTS("'f':-1000000000"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(-1000000000000000LL)}}},
    {"float 999999999.999999", WTS("'f':999999999.999999"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[F] = VAL(999999999999999LL)}}},
    {"float 1e9+1 integer", WTS("'f':1000000001"), 0, 0, "weights.f: " FLOAT_RANGE, {0}},
    {"float -1e9-1 integer", WTS("'f':-1000000001"), 0, 0, "weights.f: " FLOAT_RANGE, {0}},
    {"float 1000000000.5", WTS("'f':1000000000.5"), 0, 0, "weights.f: " FLOAT_RANGE, {0}},
    {"float 1e10", WTS("'f':1e10"), 0, 0, "weights.f: " FLOAT_RANGE, {0}},
    {"float 1e300", WTS("'f':-1e300"), 0, 0, "weights.f: " FLOAT_RANGE, {0}},

    /* float weights are rounded on every digit as written, not through a double */
#define FV(name, text, v) {name, WTS("'f':" text), 0, 0, NULL, {.op = OP_ATTACH, .w = {[F] = VAL(v)}}}
#define FR(name, text) {name, WTS("'f':" text), 0, 0, "weights.f: " FLOAT_RANGE, {0}}
    FV("float 0.49999949999999999 rounds down (a double reads 0.4999995)",
       "0.49999949999999999", 499999),
    FV("float -0.49999949999999999 rounds down", "-0.49999949999999999", -499999),
    FV("float 0.4999995 exactly half rounds up", "0.4999995", 500000),
    FV("float 2.5000005 exactly half rounds up", "2.5000005", 2500001),
    FV("float -2.5000005 exactly half rounds away from zero", "-2.5000005", -2500001),
    FV("float 0.0000015 exactly half rounds up", "0.0000015", 2),
    FV("float 0.12345650000000000000000001 rounds up", "0.12345650000000000000000001", 123457),
    FV("float 0.12345649999999999999999999 rounds down", "0.12345649999999999999999999", 123456),
    FV("float 1.00000049999999999999999999999999 rounds down",
       "1.00000049999999999999999999999999", 1000000),
    FV("float 12345678.1234565 (15 significant digits) rounds up", "12345678.1234565",
       12345678123457LL),
    FV("float 123456789.1234565 (16 significant digits) rounds up", "123456789.1234565",
       123456789123457LL),
    FV("float 123456789.1234564999 rounds down", "123456789.1234564999", 123456789123456LL),
    /* the range: on the rounded value, both sides of the limit */
    FV("float 999999999.9999995 rounds to 1e9: accepted", "999999999.9999995",
       1000000000000000LL),
    FV("float 1000000000.0000004 rounds to 1e9: accepted", "1000000000.0000004",
       1000000000000000LL),
    FV("float 1000000000.00000049999999 rounds to 1e9: accepted", "1000000000.00000049999999",
       1000000000000000LL),
    FR("float 1000000000.0000005 rounds past 1e9: refused", "1000000000.0000005"),
    FR("float 1000000000.000001: refused", "1000000000.000001"),
    FV("float -1000000000.0000004 rounds to -1e9: accepted", "-1000000000.0000004",
       -1000000000000000LL),
    FR("float -1000000000.0000005 rounds past -1e9: refused", "-1000000000.0000005"),
    FV("float -999999999.9999995 rounds to -1e9", "-999999999.9999995", -1000000000000000LL),
    FV("float 0.9999999999999995e9 rounds to 1e9", "0.9999999999999995e9", 1000000000000000LL),
    FV("float 1.0000000000000004e9 rounds to 1e9", "1.0000000000000004e9", 1000000000000000LL),
    FR("float 1.0000000000000005E9 refused", "1.0000000000000005E9"),
    FR("float 10000000000 refused", "10000000000"),
    /* exponents */
    FV("float 2.5E3", "2.5E3", 2500000000LL),
    FV("float 2.5e+3", "2.5e+3", 2500000000LL),
    FV("float 25E-1", "25E-1", 2500000),
    FV("float 5e-7 exactly half rounds up", "5e-7", 1),
    FV("float -5e-7 rounds away from zero", "-5e-7", -1),
    FV("float 4.999999999999999999e-7 rounds down", "4.999999999999999999e-7", 0),
    FV("float 5000001e-13 rounds up", "5000001e-13", 1),
    FV("float 4999999e-13 rounds down", "4999999e-13", 0),
    FV("float 0e999999999999999999999 is 0", "0e999999999999999999999", 0),
    FV("float 1e-999999999999999999999 rounds to 0", "1e-999999999999999999999", 0),
    {"float 1e999999999999999999999 (beyond a double: jansson refuses it)",
     WTS("'f':1e999999999999999999999"), 0, 0, "not JSON: real number overflow at column 116",
     {0}},
    FV("float 1e-400 (below a double) rounds to 0", "1e-400", 0),
    FV("float 0.00000000000000000000000000000000000000001e41", "0.00000000000000000000000000000000000000001e41",
       1000000),
    FV("float 100000000000000000000000000000e-21", "100000000000000000000000000000e-21",
       100000000000000LL),
    FV("float 1e0005", "1e0005", 100000000000LL),
    /* zero and -0 */
    FV("float -0", "-0", 0),
    FV("float -0.0", "-0.0", 0),
    FV("float -0e5", "-0e5", 0),
    FV("float -0.0000004 rounds to 0", "-0.0000004", 0),
    /* the JSON path finds the weight's text: escapes, other members, nesting */
    {"float through the JSON path: escaped keys, look-alike members",
     "{'id':'e\\u0031','x':{'weights':{'f':7}},'y':['{\\'weights\\':{','}',[{'f':8}]],"
     "'op':'attach','relation':'rel','profile_a':'42','profile_b':'1001',"
     "'w\\u0065ights':{'i':1,'\\u0066':0.49999949999999999,'b':true}}",
     0, 0, NULL, {.id = "e1", .op = OP_ATTACH, .w = {VAL(1), VAL(499999), VAL(1)}}},
    {"float through the JSON path: out of range after rounding",
     "{'id':'e\\u0031','op':'attach','relation':'rel','profile_a':'42','profile_b':'1001',"
     "'weights' : { 'f' : 1000000000.0000005 } , 'z' : null}",
     0, 0, "weights.f: " FLOAT_RANGE, {0}},
#undef FV
#undef FR

    /* bool weights */
    {"bool 1", WTS("'b':1"), 0, 0, "weights.b: must be true or false", {0}},
    {"bool 0", WTS("'b':0"), 0, 0, "weights.b: must be true or false", {0}},
    {"bool string", WTS("'b':'true'"), 0, 0, "weights.b: must be true or false", {0}},
    {"bool false", WTS("'b':false"), 0, 0, NULL, {.op = OP_ATTACH, .w = {[B] = VAL(0)}}},
    {"bool true", WTS("'b':true"), 0, 0, NULL, {.op = OP_ATTACH, .w = {[B] = VAL(1)}}},

    /* null weights */
    {"null in attach", WTS("'i':null,'f':2"), 0, 0, NULL,
     {.op = OP_ATTACH, .w = {[I] = NUL_W, [F] = VAL(2000000)}}},
    {"null in edit", OPEV("edit", ",'weights':{'f':null,'b':null}"), 0, 0, NULL,
     {.op = OP_EDIT, .w = {[F] = NUL_W, [B] = NUL_W}}},
    {"null int in strengthen", OPEV("strengthen", ",'weights':{'i':null}"), 0, 0,
     "weights.i: null is not allowed in strengthen", {0}},
    {"null bool in strengthen", OPEV("strengthen", ",'weights':{'i':1,'b':null}"), 0, 0,
     "weights.b: null is not allowed in strengthen", {0}},
    {"null float in strengthen", OPEV("strengthen", ",'weights':{'f':null}"), 0, 0,
     "weights.f: null is not allowed in strengthen", {0}},

    /* version */
    {"version absent", EV(""), 0, 0, NULL, {.op = OP_ATTACH, .has_version = false}},
    {"version present", EV(",'version':1764331200123"), 0, 0, NULL,
     {.op = OP_ATTACH, .has_version = true, .version = 1764331200123LL}},
    {"version 0", EV(",'version':0"), 0, 0, NULL, {.op = OP_ATTACH, .has_version = true}},
    {"version negative", EV(",'version':-5"), 0, 0, NULL,
     {.op = OP_ATTACH, .has_version = true, .version = -5}},
    {"version int64 max", EV(",'version':9223372036854775807"), 0, 0, NULL,
     {.op = OP_ATTACH, .has_version = true, .version = INT64_MAX}},
    {"version null is absent", EV(",'version':null"), 0, 0, NULL,
     {.op = OP_ATTACH, .has_version = false}},
    {"version a decimal string", EV(",'version':'5'"), 0, 0, NULL,
     {.op = OP_ATTACH, .has_version = true, .version = 5}},
    {"version a decimal string past 2^53", EV(",'version':'9007199254740993'"), 0, 0, NULL,
     {.op = OP_ATTACH, .has_version = true, .version = 9007199254740993LL}},
    {"version a decimal string int64 max", EV(",'version':'9223372036854775807'"), 0, 0, NULL,
     {.op = OP_ATTACH, .has_version = true, .version = INT64_MAX}},
    {"version a decimal string int64 min", EV(",'version':'-9223372036854775808'"), 0, 0, NULL,
     {.op = OP_ATTACH, .has_version = true, .version = INT64_MIN}},
    {"version a decimal string past int64", EV(",'version':'9223372036854775808'"), 0, 0, VERR,
     {0}},
    {"version a decimal string below int64", EV(",'version':'-9223372036854775809'"), 0, 0,
     VERR, {0}},
    {"version a string with a leading zero", EV(",'version':'05'"), 0, 0, VERR, {0}},
    {"version an empty string", EV(",'version':''"), 0, 0, VERR, {0}},
    {"version a string of a minus", EV(",'version':'-'"), 0, 0, VERR, {0}},
    {"version a string with a space", EV(",'version':' 5'"), 0, 0, VERR, {0}},
    {"version a string with a plus", EV(",'version':'+5'"), 0, 0, VERR, {0}},
    {"version a string of a real", EV(",'version':'5.0'"), 0, 0, VERR, {0}},
    {"version a real", EV(",'version':1.5"), 0, 0, VERR, {0}},
    {"version 1e3", EV(",'version':1e3"), 0, 0, VERR, {0}},
    {"version a bool", EV(",'version':true"), 0, 0, VERR, {0}},

    /* occurred_at */
    {"occurred_at 64 bytes", EV(",'occurred_at':'" S64 "'"), 0, 0, NULL,
     {.op = OP_ATTACH, .occurred_at = S64}},
    {"occurred_at 65 bytes", EV(",'occurred_at':'" S64 "Z'"), 0, 0,
     "occurred_at: must be a string of at most 64 bytes", {0}},
    {"occurred_at a number", EV(",'occurred_at':1764331200"), 0, 0,
     "occurred_at: must be a string of at most 64 bytes", {0}},
    {"occurred_at an object", EV(",'occurred_at':{}"), 0, 0,
     "occurred_at: must be a string of at most 64 bytes", {0}},
    {"occurred_at null", EV(",'occurred_at':null"), 0, 0, NULL, {.op = OP_ATTACH, .occurred_at = ""}},
    {"occurred_at empty", EV(",'occurred_at':''"), 0, 0, NULL, {.op = OP_ATTACH, .occurred_at = ""}},

    /* is_test */
    {"is_test true", EV(",'is_test':true"), 0, 0, NULL, {.op = OP_ATTACH, .is_test = true}},
    {"is_test false", EV(",'is_test':false"), 0, 0, NULL, {.op = OP_ATTACH, .is_test = false}},
    {"is_test 1", EV(",'is_test':1"), 0, 0, "is_test: must be true or false", {0}},
    {"is_test a string", EV(",'is_test':'true'"), 0, 0, "is_test: must be true or false", {0}},
    {"is_test null is absent", EV(",'is_test':null"), 0, 0, NULL, {.op = OP_ATTACH, .is_test = false}},

    /* not JSON, not an object */
    {"not JSON", "hello", 0, 0, "not JSON: '[' or '{' expected near 'hello' at column 5", {0}},
    {"empty input", "", 0, 0, "not JSON: '[' or '{' expected near end of file at column 0", {0}},
    {"truncated JSON", "{'id':'e1','op':", 0, 0,
     "not JSON: unexpected token near end of file at column 16", {0}},
    {"trailing garbage", EV("") " x", 0, 0, "not JSON: end of file expected near 'x' at column 80",
     {0}},
    {"backslash outside a string", "{\\'id\\':1}", 0, 0,
     "not JSON: string or '}' expected near '\\' at column 2", {0}},
    {"an array", "[" EV("") "]", 0, 0, "event must be a JSON object", {0}},
    {"an empty array", "[]", 0, 0, "event must be a JSON object", {0}},
    {"a number", "42", 0, 0, "not JSON: '[' or '{' expected near '42' at column 2", {0}},
    {"a string", "'e1'", 0, 0, "not JSON: '[' or '{' expected near '\"e1\"' at column 4", {0}},
    {"an empty object", "{}", 0, 0, "id: required", {0}},

    /* duplicate keys */
    {"duplicate id", "{'id':'e1','id':'e2','op':'attach','relation':'rel','profile_a':'1','profile_b':'2'}",
     0, 0, "not JSON: duplicate object key near '\"id\"' at column 15", {0}},
    {"duplicate weight", WTS("'i':1,'i':2"), 0, 0,
     "not JSON: duplicate object key near '\"i\"' at column 98", {0}},

    /* size */
    {"65536 bytes", EV(",'pad':'#'"), 0, 65536, NULL, {.op = OP_ATTACH}},
    {"65537 bytes", EV(",'pad':'#'"), 0, 65537, "event larger than 65536 bytes", {0}},
    {"65537 bytes of garbage", "#", 0, 65537, "event larger than 65536 bytes", {0}},

    /* unknown top-level fields are ignored */
    {"unknown top-level fields",
     EV(",'source':'crm','extra':{'nested':[1,2,{'x':null}]},'weights_v2':5,'Version':'x'"), 0, 0,
     NULL, {.op = OP_ATTACH}},
    {"unknown field before the known ones",
     "{'zzz':true,'profile_b':'b','profile_a':'a','relation':'rel','op':'strengthen','id':'e9',"
     "'weights':{'b':true}}",
     0, 0, NULL, {.id = "e9", .op = OP_STRENGTHEN, .a = "a", .b = "b", .w = {[B] = VAL(1)}}},
};

/* ---- running ---- */

/* text with ' as " and '#' replaced; *len receives its length. */
static char *expand(const char *text, size_t fill, size_t pad_to, size_t *len)
{
    size_t n = strlen(text), hashes = 0;
    for (size_t i = 0; i < n; i++)
        hashes += text[i] == '#';
    if (pad_to) {
        assert_int_equal(hashes, 1);
        assert_true(pad_to >= n - 1);
        fill = pad_to - (n - 1);
    }
    size_t out_len = n - hashes + hashes * fill;
    char *out = malloc(out_len + 1), *o = out;
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '#') {
            memset(o, 'x', fill);
            o += fill;
        } else {
            *o++ = text[i] == '\'' ? '"' : text[i];
        }
    }
    *o = '\0';
    if (len)
        *len = out_len;
    return out;
}

static int streq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static const char *kind_name(WeightKind k)
{
    return k == WEIGHT_ABSENT ? "absent" : k == WEIGHT_NULL ? "null" : "value";
}

/* Compares the parsed event with the expectation; prints every difference. */
static int compare(const Case *c, const Config *cfg, const Event *ev)
{
    const Want *w = &c->want;
    int bad = 0;
    char *want_id = expand(w->id ? w->id : "e1", c->fill, 0, NULL);
    char *want_a = expand(w->a ? w->a : "42", c->fill, 0, NULL);
    char *want_b = expand(w->b ? w->b : "1001", c->fill, 0, NULL);
    const RelationDef *want_rel = config_relation(cfg, w->rel ? w->rel : "rel");
    const char *want_occ = w->occurred_at ? w->occurred_at : "";

#define DIFF(field, fmt, want, got)                                                            \
    do {                                                                                       \
        printf("FAIL %s\n  %s expected: " fmt "\n  %s got:      " fmt "\n", c->name, field,    \
               want, field, got);                                                              \
        bad = 1;                                                                               \
    } while (0)

    if (!streq(ev->id, want_id))
        DIFF("id", "%s", want_id, ev->id);
    if (ev->op != w->op)
        DIFF("op", "%s", event_op_name(w->op), event_op_name(ev->op));
    if (ev->rel != want_rel)
        DIFF("relation", "%s", want_rel->short_name, ev->rel ? ev->rel->short_name : "(none)");
    if (!streq(ev->profile_a, want_a))
        DIFF("profile_a", "%s", want_a, ev->profile_a);
    if (!streq(ev->profile_b, want_b))
        DIFF("profile_b", "%s", want_b, ev->profile_b);
    if (ev->has_version != w->has_version)
        DIFF("has_version", "%d", w->has_version, ev->has_version);
    if (ev->has_version && ev->version != w->version)
        DIFF("version", "%" PRId64, w->version, ev->version);
    if (!streq(ev->occurred_at, want_occ))
        DIFF("occurred_at", "%s", want_occ, ev->occurred_at);
    if (ev->is_test != w->is_test)
        DIFF("is_test", "%d", w->is_test, ev->is_test);
    for (int i = 0; i < CONFIG_MAX_PROPERTIES; i++) {
        WantWeight ww = {WEIGHT_ABSENT, 0};
        if (i < NPROPS && want_rel->nproperties > i)
            ww = w->w[i];
        const Weight *g = &ev->weights[i];
        char field[32];
        snprintf(field, sizeof field, "weights[%d]", i);
        if (g->kind != ww.kind)
            DIFF(field, "%s", kind_name(ww.kind), kind_name(g->kind));
        else if (g->kind == WEIGHT_VALUE && g->value != ww.value)
            DIFF(field, "%" PRId64, ww.value, g->value);
    }
#undef DIFF
    free(want_id);
    free(want_a);
    free(want_b);
    return bad;
}

/* event_parse and event_parse_json agree on data: the same verdict, the
 * same event, the same message. 0 when they do. */
static int same_as_json(const Config *cfg, const char *data, size_t len, const char *name)
{
    Event fast, slow;
    char ferr[EVENT_ERR_MAX] = "", serr[EVENT_ERR_MAX] = "";
    bool fok = event_parse(cfg, data, len, &fast, ferr, sizeof ferr);
    bool sok = event_parse_json(cfg, data, len, &slow, serr, sizeof serr);
    if (fok != sok || (fok && memcmp(&fast, &slow, sizeof fast) != 0) ||
        (!fok && strcmp(ferr, serr) != 0)) {
        printf("FAIL %s: event_parse and event_parse_json differ on %.*s\n"
               "  event_parse: %s\n  event_parse_json: %s\n",
               name, (int)(len > 300 ? 300 : len), data, fok ? "valid" : ferr,
               sok ? "valid" : serr);
        return 1;
    }
    return 0;
}

static int run_case(const Config *cfg, const Case *c)
{
    size_t len;
    char *text = expand(c->json, c->fill, c->pad_to, &len);
    /* exactly len bytes: a read past the end is caught under AddressSanitizer */
    char *data = malloc(len ? len : 1);
    assert_non_null(data);
    memcpy(data, text, len);
    if (c->pad_to)
        assert_int_equal(len, c->pad_to);

    Event ev;
    char err[EVENT_ERR_MAX];
    strcpy(err, "(no message)");
    bool ok = event_parse(cfg, data, len, &ev, err, sizeof err);
    int bad = 0;
    if (c->error) {
        if (ok) {
            printf("FAIL %s\n  expected error: %s\n  got: a valid event\n", c->name, c->error);
            bad = 1;
        } else if (strcmp(err, c->error) != 0) {
            printf("FAIL %s\n  expected error: %s\n  got error:      %s\n", c->name, c->error, err);
            bad = 1;
        }
    } else if (!ok) {
        printf("FAIL %s\n  expected: a valid event\n  got error: %s\n", c->name, err);
        bad = 1;
    } else {
        bad = compare(c, cfg, &ev);
    }
    bad |= same_as_json(cfg, data, len, c->name);
    free(data);
    free(text);
    return bad;
}

static int setup(void **state)
{
    char err[CONFIG_ERR_MAX];
    Config *cfg = config_parse(config_text, err, sizeof err);
    if (!cfg) {
        printf("configuration: %s\n", err);
        return -1;
    }
    *state = cfg;
    return 0;
}

static int teardown(void **state)
{
    config_free(*state);
    return 0;
}

static void test_event_table(void **state)
{
    const Config *cfg = *state;
    int failures = 0;
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++)
        failures += run_case(cfg, &cases[i]);
    printf("event cases: %zu, failures: %d\n", n, failures);
    assert_int_equal(failures, 0);
}

/* A previous parse leaves nothing behind: fields are reset for every event. */
/* fixed_from_text: the JSON number grammar, and nothing else. */
static void test_fixed_grammar(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "-", "+1", "01", "-01", "1.", ".5", "1e", "1e+", "1E-",
                                      "0x1", "1.5.", "1e5e", "1 ", " 1", "--1", "1,5", "Infinity",
                                      "NaN", "1e1.5"};
    int64_t v = 42;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (fixed_from_text(bad[i], strlen(bad[i]), FIXED_FLOAT_MAX, &v))
            fail_msg("\"%s\" read as %" PRId64, bad[i], v);
    assert_int_equal(v, 42);
    /* the text stops at n: "0.49999949" of "0.499999499..." */
    assert_true(fixed_from_text("0.49999949999", 10, FIXED_FLOAT_MAX, &v));
    assert_int_equal(v, 499999);
    /* the limit is the caller's (a threshold on a total) */
    assert_true(fixed_from_text("-9007199254.0000004", 19, FIXED_TOTAL_MAX / FIXED_SCALE, &v));
    assert_int_equal(v, -9007199254000000LL);
    assert_false(fixed_from_text("9007199254.0000005", 18, FIXED_TOTAL_MAX / FIXED_SCALE, &v));
}

/* A weight of thousands of digits, or with an exponent of thousands of
 * digits, on both paths. */
static void test_float_long_digits(void **state)
{
    const Config *cfg = *state;
    static const struct {
        const char *head, *rep, *tail;
        size_t n;
        int64_t want; /* INT64_MIN: out of range */
    } longs[] = {
        {"0.000000", "4", "", 5000, 0},
        {"0.000000", "4", "5", 5000, 0},
        {"0.4999995", "0", "", 20000, 500000},
        {"0.4999994", "9", "", 20000, 499999},
        {"123456789.123456", "0", "5", 10000, 123456789123456LL},
        {"123456789.1234565", "0", "", 10000, 123456789123457LL},
        {"100000000.", "9", "", 30000, 100000001000000LL},
        {"999999999.", "9", "", 30000, 1000000000000000LL},
        {"-999999999.", "9", "", 30000, -1000000000000000LL},
        {"1000000000.000000", "4", "", 30000, 1000000000000000LL},
        {"1000000000.000000", "0", "1", 30000, 1000000000000000LL},
        {"1000000000.000000", "5", "", 30000, INT64_MIN},
        {"1", "0", "", 9, 1000000000000000LL},
        {"1", "0", "", 10, INT64_MIN},
        {"0.", "0", "1e5000", 4999, 1000000},
        {"5e-", "0", "7", 10000, 1},
        {"5e+", "0", "", 10000, 5000000},
        {"0e", "9", "", 10000, 0},
        {"0.", "0", "e-99", 10000, 0},
    };
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
        size_t hn = strlen(longs[i].head), tn = strlen(longs[i].tail), cap = 200 + hn +
                                                                           longs[i].n + tn;
        char *text = malloc(cap);
        assert_non_null(text);
        int at = snprintf(text, cap, "{\"id\":\"e1\",\"op\":\"attach\",\"relation\":\"rel\","
                                     "\"profile_a\":\"42\",\"profile_b\":\"1001\","
                                     "\"weights\":{\"f\":%s", longs[i].head);
        memset(text + at, longs[i].rep[0], longs[i].n);
        size_t len = (size_t)at + longs[i].n;
        len += (size_t)snprintf(text + len, cap - len, "%s}}", longs[i].tail);
        Event ev;
        char err[EVENT_ERR_MAX] = "";
        bool ok = event_parse(cfg, text, len, &ev, err, sizeof err);
        if (longs[i].want == INT64_MIN) {
            if (ok)
                fail_msg("%s%s x %zu%s: accepted as %" PRId64, longs[i].head, longs[i].rep,
                         longs[i].n, longs[i].tail, ev.weights[F].value);
            assert_string_equal(err, "weights.f: " FLOAT_RANGE);
        } else {
            if (!ok)
                fail_msg("%s%s x %zu%s: %s", longs[i].head, longs[i].rep, longs[i].n,
                         longs[i].tail, err);
            if (ev.weights[F].value != longs[i].want)
                fail_msg("%s%s x %zu%s: %" PRId64 ", expected %" PRId64, longs[i].head,
                         longs[i].rep, longs[i].n, longs[i].tail, ev.weights[F].value,
                         longs[i].want);
        }
        assert_int_equal(same_as_json(cfg, text, len, longs[i].head), 0);
        free(text);
    }
}

static void test_event_reset(void **state)
{
    const Config *cfg = *state;
    Event ev;
    char err[EVENT_ERR_MAX];
    char *full = expand("{'id':'first','op':'attach','relation':'rel','profile_a':'1',"
                        "'profile_b':'2','version':9,'occurred_at':'t','is_test':true,"
                        "'weights':{'i':1,'f':1,'b':true}}",
                        0, 0, NULL);
    char *bare = expand(EV(""), 0, 0, NULL);
    assert_true(event_parse(cfg, full, strlen(full), &ev, err, sizeof err));
    assert_true(ev.has_version && ev.is_test && ev.weights[F].kind == WEIGHT_VALUE);
    assert_true(event_parse(cfg, bare, strlen(bare), &ev, err, sizeof err));
    assert_false(ev.has_version);
    assert_false(ev.is_test);
    assert_string_equal(ev.occurred_at, "");
    for (int i = 0; i < CONFIG_MAX_PROPERTIES; i++)
        assert_int_equal(ev.weights[i].kind, WEIGHT_ABSENT);
    free(full);
    free(bare);
}

/* A message longer than the buffer is cut, never overflows it. */
static void test_event_small_buffer(void **state)
{
    const Config *cfg = *state;
    Event ev;
    char err[16];
    memset(err, 'Z', sizeof err);
    char *text = expand(OPEV("delete"), 0, 0, NULL);
    assert_false(event_parse(cfg, text, strlen(text), &ev, err, 8));
    assert_string_equal(err, "op: mus");
    assert_int_equal(err[8], 'Z');
    free(text);
}

/* Only len bytes are read: what follows in the buffer does not matter. */
static void test_event_len_bounds(void **state)
{
    const Config *cfg = *state;
    Event ev;
    char err[EVENT_ERR_MAX];
    char *text = expand(EV("") "garbage after the event", 0, 0, NULL);
    size_t len = strlen(text) - strlen("garbage after the event");
    assert_true(event_parse(cfg, text, len, &ev, err, sizeof err));
    assert_string_equal(ev.id, "e1");
    /* one byte short: the object is not closed */
    assert_false(event_parse(cfg, text, len - 1, &ev, err, sizeof err));
    assert_string_equal(err, "not JSON: '}' expected near end of file at column 77");
    free(text);
}

/* A small deterministic generator (xorshift), so a failure repeats. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (unsigned)(rnd_state % n);
}

static const char *pick(const char *const *list, size_t n)
{
    return list[rnd((unsigned)n)];
}
#define PICK(list) pick(list, sizeof list / sizeof list[0])

/* Values meant to sit on the edges of both paths: plain and escaped strings,
 * numbers at the limits, with exponents, too many digits, -0, leading zeros,
 * wrong types. */
static const char *const strings[] = {
    "\"e1\"", "\"x\"", "\"\"", "\"a b\"", "\"\\u0041\"", "\"\\u0000\"", "\"caf\xc3\xa9\"",
    "\"\xff\"", "\"tab\\t\"", "\"\x01\"", "\"rel\"", "\"other\"", "\"attach\"", "\"edit\"",
    "\"strengthen\"", "\"detach\"", "\"42\"", "\"1001\"", "\"2024-01-01T00:00:00Z\"",
    "\"9223372036854775807\"", "\"9223372036854775808\"", "\"-0\"", "\"007\"",
    "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""};
static const char *const numbers[] = {
    "0", "-0", "1", "-1", "007", "12", "1.5", "-1.5", "0.1", "0.0019985", "2.0000004999",
    "0.0000005", "-0.0000005", "0.00000049", "999999999.999999", "1000000000", "1000000000.0",
    "1000000000.000001", "-1000000000", "999999999.9999995", "1e3", "1E-2", "1.", ".5", "-",
    "1000000000000000", "1000000000000001", "-1000000000000000", "123456789012345678",
    "1234567890123456789", "9223372036854775807", "9223372036854775808", "0.1234567890123456",
    "12345.678901234567", "3.14159265358979", "2.0000004999999999", "-2.0000004999999999"};
static const char *const others[] = {"true", "false", "null", "[]", "{}", "{\"i\":1}", "tru", "nul"};
static const char *const keys[] = {"id", "op", "relation", "profile_a", "profile_b", "version",
                                   "occurred_at", "is_test", "weights", "extra", "ID"};
static const char *const props[] = {"i", "f", "b", "x"};
static const char *const spaces[] = {"", "", "", " ", "\n", "\t ", "\r\n"};

static const char *any_value(void)
{
    switch (rnd(3)) {
    case 0: return PICK(strings);
    case 1: return PICK(numbers);
    default: return PICK(others);
    }
}

/* A value that is usually right for key k (so that most events get far). */
static const char *value_for(const char *k, char *buf, size_t cap)
{
    if (rnd(15) == 0)
        return any_value();
    if (strcmp(k, "op") == 0)
        return pick((const char *const[]){"\"attach\"", "\"edit\"", "\"strengthen\"", "\"detach\""}, 4);
    if (strcmp(k, "relation") == 0)
        return "\"rel\"";
    if (strcmp(k, "profile_a") == 0 || strcmp(k, "profile_b") == 0)
        return rnd(2) ? PICK(strings) : PICK(numbers);
    if (strcmp(k, "version") == 0)
        return rnd(4) ? (rnd(2) ? PICK(numbers) : PICK(strings)) : "null";
    if (strcmp(k, "is_test") == 0)
        return rnd(2) ? "true" : "false";
    if (strcmp(k, "weights") == 0) {
        size_t len = 0;
        int n = (int)rnd(4);
        len += (size_t)snprintf(buf + len, cap - len, "{%s", PICK(spaces));
        for (int i = 0; i < n; i++) {
            const char *p = PICK(props);
            const char *v = strcmp(p, "b") == 0 && rnd(3) ? (rnd(2) ? "true" : "false")
                            : rnd(10) == 0                ? any_value()
                                                          : PICK(numbers);
            len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\"%s:%s%s", i ? "," : "", p,
                                    PICK(spaces), PICK(spaces), v);
        }
        snprintf(buf + len, cap - len, "%s}", PICK(spaces));
        return buf;
    }
    if (strcmp(k, "id") == 0 && rnd(2))
        return "\"e1\"";
    return PICK(strings);
}

/* Thousands of generated events, and each cut short or with a byte changed:
 * event_parse (one pass, or the JSON path) and event_parse_json agree on
 * every one. */
static void test_event_fast_path_agrees_with_json(void **state)
{
    const Config *cfg = *state;
    static const char *const required[] = {"id", "op", "relation", "profile_a", "profile_b"};
    char text[4096], wbuf[1024];
    int failures = 0, valid = 0, total = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = 0;
        len += (size_t)snprintf(text, sizeof text, "%s{%s", PICK(spaces), PICK(spaces));
        int n = 0;
        /* the required keys (one may be missing), then a few others, shuffled */
        const char *list[12];
        for (int i = 0; i < 5; i++)
            if (rnd(20))
                list[n++] = required[i];
        if (rnd(4))
            list[n++] = "weights";
        for (int extra = (int)rnd(3); extra > 0; extra--)
            list[n++] = PICK(keys);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)rnd((unsigned)i + 1);
            const char *t = list[i];
            list[i] = list[j];
            list[j] = t;
        }
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(text + len, sizeof text - len, "%s\"%s\"%s:%s%s%s",
                                    i ? "," : "", list[i], PICK(spaces), PICK(spaces),
                                    value_for(list[i], wbuf, sizeof wbuf), PICK(spaces));
        len += (size_t)snprintf(text + len, sizeof text - len, "}%s", PICK(spaces));
        Event ev;
        char err[EVENT_ERR_MAX];
        valid += event_parse_json(cfg, text, len, &ev, err, sizeof err);
        failures += same_as_json(cfg, text, len, "generated");
        /* cut short, and one byte changed */
        failures += same_as_json(cfg, text, rnd((unsigned)len), "cut short");
        char saved = text[len / 2];
        text[rnd((unsigned)len)] = (char)rnd(256);
        failures += same_as_json(cfg, text, len, "a byte changed");
        text[len / 2] = saved;
        total += 3;
        if (failures > 5)
            break;
    }
    printf("fast path vs JSON path: %d inputs (%d generated events valid), failures: %d\n",
           total, valid, failures);
    /* the generator reaches both verdicts often */
    assert_true(valid > 500);
    assert_int_equal(failures, 0);
}

static void test_event_op_names(void **state)
{
    (void)state;
    assert_string_equal(event_op_name(OP_ATTACH), "attach");
    assert_string_equal(event_op_name(OP_EDIT), "edit");
    assert_string_equal(event_op_name(OP_STRENGTHEN), "strengthen");
    assert_string_equal(event_op_name(OP_DETACH), "detach");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_table),
        cmocka_unit_test(test_event_reset),
        cmocka_unit_test(test_event_small_buffer),
        cmocka_unit_test(test_event_len_bounds),
        cmocka_unit_test(test_event_op_names),
        cmocka_unit_test(test_fixed_grammar),
        cmocka_unit_test(test_float_long_digits),
        cmocka_unit_test(test_event_fast_path_agrees_with_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
