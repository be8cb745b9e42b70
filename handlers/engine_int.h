/* engine_int.h — the engine's state and the helpers its parts share
 * (engine.c, apply.c, read.c, walk.c, check.c); not for other callers.
 *
 * Ownership: an Engine owns its router, library text, command buffer and
 * the replies of its pending batches. Threads: one engine is used by one
 * thread at a time. Failure: a helper that fails drops the connection
 * (engine_drop) when what is on it can no longer be trusted, and says why
 * in err. */
#ifndef RELATIOND_ENGINE_INT_H
#define RELATIOND_ENGINE_INT_H

#include "handlers/apply.h"
#include "handlers/edge.h"
#include "handlers/engine.h"
#include "lib/jsonbuf.h"
#include "handlers/router.h"
#include "handlers/walk.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Replies due on the connection, in the order their commands were sent. */
typedef enum { GROUP_APPLY, GROUP_HDEL, GROUP_LOAD, GROUP_WAIT, GROUP_PING } GroupKind;
typedef struct {
    GroupKind kind;
    size_t count;
    size_t bytes; /* GROUP_HDEL: its commands' length in `cleared` */
    int slot;     /* GROUP_APPLY: its batch's Pending */
} Group;
#define MAX_GROUPS 16

/* A side's state between send and recv. */
enum { SIDE_PENDING = -1, SIDE_NOT_SENT = -2, SIDE_REPLIED = -3 };

/* A batch between send and recv. */
typedef struct {
    bool busy;
    bool lost;           /* its calls went with a lost connection */
    const Event *events; /* the caller's */
    size_t n, cap;
    int *state;          /* per event and side */
    bool *both;          /* per event: its two sides went in one call */
    redisReply **replies; /* per event and side; a call of both sides: at the direct side */
    uint64_t seq;        /* order of sending */
} Pending;

/* Where a command of `cmd` ends, and the slot of its keys (ROUTER_ANY,
 * ROUTER_ALL on a cluster: every primary). */
typedef struct {
    size_t end;
    int slot;
} Mark;

struct Engine {
    const Config *cfg;
    Router *router;   /* one server, or a cluster's primaries */
    bool connected;   /* router connected, the clearings due queued */
    bool refused;     /* the last connection was refused for redis.url's settings */
    char *library;    /* the generated library's code */
    char fname[64];   /* its function: one side */
    bool loaded;      /* FUNCTION LOAD (relationd.load) sent on this connection */
    /* The module engine (redis.engine, chosen on each connection): the
     * relationd.* commands of the Redis module instead of FCALL, the same
     * keys, arguments and replies (module/). */
    bool module;
    char *module_text;  /* the configuration for relationd.load (module/conf.h) */
    char conf_name[48]; /* its name: the library's, relationd_<digest> */
    JsonBuf cmd;      /* commands being written */
    Mark *marks;      /* cmd's commands (on a cluster) */
    size_t nmarks, marks_cap;
    bool marks_oom;
    Group groups[MAX_GROUPS];
    int ngroups;
    /* Outbox clearings sent whose replies were not read yet: sent again on
     * the next connection if this one is lost first (HDEL is idempotent). */
    JsonBuf cleared;
    size_t ncleared;
    int *cleared_slots; /* per clearing in `cleared` */
    size_t cleared_cap;
    Pending pending[ENGINE_MAX_PENDING];
    uint64_t seq;
    char now_ms[24], date[40];
    double walk_share; /* of the SCAN under way (engine_walk_share) */
    /* The apply calls' epoch (apply.lua, "The fence"): a random id and a
     * count, the count raised after every failed batch. */
    uint32_t epoch_id, epoch_n;
    char epoch[24];
    /* Connections made (layout.c: the layout key is checked again on a
     * new one), and the one a reader checked it on. */
    unsigned long connections, layout_conn;
    /* The keyspace's layout version as last read (layout.c): 0 not known
     * yet; while it is not 2, the apply calls name layout 1's seen key too
     * (the side may still be in layout 1). */
    int layout_version;
    /* The slots of the configuration's properties (schema.c): slot[
     * slot_off[r] + i] of property i of relation r, nslots[r] the length of
     * its list; the lists last read from PREFIX schema, by relation name. */
    int *slot, *slot_off, *nslots;
    char **lists, **list_rel;
    int nlists;
    bool reader; /* engine_set_reader: PREFIX schema read, never completed */
};


/* A new epoch: the calls sent from now on pass the fences that the failed
 * ones left, the ones already sent stop at them. */
void engine_next_epoch(Engine *e);
/* The library and the module's configuration made again for the
 * configuration and slots (schema.c), the load queued again when they
 * changed; false when out of memory (the previous ones stay). */
bool engine_make_code(Engine *e);
/* The slots and lists freed (schema.c). */
void schema_free(Engine *e);
/* The connection goes (with the replies due on it); a new epoch. */
void engine_drop(Engine *e);
/* Replies of count commands of kind due next; false (err) when too many. */
bool engine_push_group(Engine *e, GroupKind kind, size_t count, size_t bytes, int slot,
                       char *err, size_t errlen);
/* Hands the command buffer to the router and writes it out; false (the
 * connection dropped) on a failure. */
bool engine_flush(Engine *e, char *err, size_t errlen);
/* The command just written into cmd goes to the node of slot. */
void engine_cmd_end(Engine *e, int slot);
/* Connected (connecting when not), the clearings due queued again. */
bool engine_connected(Engine *e, char *err, size_t errlen);
/* Queues the library's load ahead of the calls that need it. */
void engine_queue_load(Engine *e, char *err, size_t errlen);
/* The next reply on the connection; false (dropped) when lost. */
bool engine_read_reply(Engine *e, redisReply **r, char *err, size_t errlen);
/* Reads the replies of the groups ahead of the first apply group (all of
 * them when stop_at_apply is false). */
bool engine_read_groups(Engine *e, bool stop_at_apply, char *err, size_t errlen);
/* One command (written into cmd) to slot's node, its reply. */
bool engine_command(Engine *e, int slot, redisReply **r, char *err, size_t errlen);
/* The relation's place in the engine's configuration (the event may have
 * been parsed with the previous one). -1 when it is gone. */
int engine_relation_index(const Config *cfg, const RelationDef *rel);
/* The start of an apply or rebuild call: "FCALL <function>" or, with the
 * module, "relationd.<cmd> <configuration>" (cmd: apply, apply2, rebuild),
 * counted in nargs with the arguments that follow. */
void engine_write_call_head(Engine *e, const char *cmd, size_t nargs);
/* Whether an error reply says the function library (or the module's
 * configuration) is missing. */
bool engine_missing_function(const char *msg);

/* ---- read.c ---- */

struct StatsKeep;

/* How a side is stored, beside its statistics (verify). */
typedef struct {
    /* a statistic stored as "0" (layout 2 leaves it absent): count, then
     * <p>:count and <p>:total of each property */
    bool zero[1 + 2 * CONFIG_MAX_PROPERTIES];
    bool layout1;                            /* '#last' present: a layout-1 side */
    /* the top has no sorted set, the side at most limit edges, some with
     * the property: the top is computed from the edges */
    bool top_from_edges[CONFIG_MAX_PROPERTIES];
} SideMarks;

/* engine_side_stats (read.h), and the side's marks; compute_tops false:
 * a missing top is left empty, not computed from the edges. */
bool side_read(Engine *e, const RelationDef *rel, Side side, const char *profile,
               bool compute_tops, SideStats *st, struct StatsKeep *keep, SideMarks *marks,
               char *err, size_t errlen) __attribute__((warn_unused_result));

/* ---- walk.c: pages shared with read.c and check.c ---- */

/* One HSCAN page of a side's edges (its fields @*) from cursor: the reply,
 * checked to be [cursor, [...]], and the next cursor. The side is key (klen
 * bytes) or, key NULL, the one of rel, side and profile. */
bool walk_edge_page(Engine *e, const RelationDef *rel, Side side, const char *profile,
                    const char *key, size_t klen, int slot, const char *cursor, int count,
                    redisReply **r, char next[32], char *err, size_t errlen);
/* The HSCAN of walk_edge_page written into cmd (not ended: engine_cmd_end). */
void walk_hscan_cmd(Engine *e, const RelationDef *rel, Side side, const char *profile,
                    const char *key, size_t klen, const char *cursor, int count);
/* Whether a reply is a SCAN's: [cursor, [...]]. */
bool walk_scan_shape(const redisReply *x);
/* Field pair i of an edge page (f: the reply's fields) as an edge; false
 * when it is not an edge of ours. */
bool walk_page_edge(const RelationDef *rel, const EdgeSlots *slots, const redisReply *f, size_t i,
                    PageEdge *out);
/* One SCAN page of slot's node: keys matching pattern (of type, when not
 * NULL), from cursor (next: where to go on). */
bool walk_scan_keys(Engine *e, int slot, const JsonBuf *pattern, const char *type,
                    redisReply **r, char cursor[32], char *err, size_t errlen);

#endif
