/* router.c — one Redis server or a cluster's primaries (router.h). */
#include "handlers/router.h"

#include "handlers/apply_status.h"

#include "lib/grow.h"
#include "lib/log.h"
#include "handlers/cluster.h"
#include "lib/jsonbuf.h"
#include "handlers/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REDIRECTS_MAX 16     /* redirections followed for one command */
#define RETRY_PAUSE_MS 100   /* before a TRYAGAIN / CLUSTERDOWN is sent again */
#define FAILED_SLOTS_MAX 64  /* once full, every redirected command of the burst fails */

typedef struct {
    char host[CLUSTER_HOST_MAX];
    int port;
    redisContext *c;     /* the pipeline */
    redisContext *aside; /* redirected commands, one at a time */
    bool primary;        /* serves slots in the current map */
} Node;

/* A command sent on a cluster and not returned yet. */
typedef struct {
    int node;            /* its node; -1: the primaries in `all` */
    uint64_t all;
    int slot;
    size_t off, len;     /* its text in `kept` */
    unsigned epoch;      /* the slot map it was routed with */
    redisReply *reply;   /* read ahead (a new slot map came meanwhile) */
} Out;

struct Router {
    const Config *cfg;
    bool cluster;
    Node nodes[CLUSTER_MAX_NODES];
    int nnodes;
    ClusterMap *map; /* cluster: which node serves each slot */
    unsigned epoch;  /* counts the slot maps read */
    Out *outs;
    size_t head, nouts, cap; /* outs[head..nouts): due */
    JsonBuf kept;            /* the text of the commands due */
    /* slots whose command, sent again after a redirection, failed since
     * the queue was last empty: their later redirected commands are not
     * sent again (see follow) */
    int failed[FAILED_SLOTS_MAX];
    int nfailed;
};

Router *router_new(const Config *cfg)
{
    Router *r = calloc(1, sizeof *r);
    if (r)
        r->cfg = cfg;
    return r;
}

void router_set_config(Router *r, const Config *cfg)
{
    r->cfg = cfg;
}

static void close_node(Node *n)
{
    if (n->c)
        redisFree(n->c);
    if (n->aside)
        redisFree(n->aside);
    n->c = n->aside = NULL;
}

void router_drop(Router *r)
{
    for (int i = 0; i < r->nnodes; i++)
        close_node(&r->nodes[i]);
    for (size_t k = r->head; k < r->nouts; k++)
        if (r->outs[k].reply)
            freeReplyObject(r->outs[k].reply);
    r->head = r->nouts = 0;
    r->nfailed = 0;
    jsonbuf_reset(&r->kept);
}

void router_free(Router *r)
{
    if (!r)
        return;
    router_drop(r);
    free(r->outs);
    free(r->map);
    jsonbuf_free(&r->kept);
    free(r);
}

bool router_connected(const Router *r)
{
    if (r->nnodes == 0)
        return false;
    for (int i = 0; i < r->nnodes; i++)
        if ((r->nodes[i].primary || !r->cluster) && (!r->nodes[i].c || r->nodes[i].c->err))
            return false;
    return true;
}

bool router_cluster(const Router *r)
{
    return r->cluster;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the slot map ---- */

static int node_index(Router *r, const char *host, int port)
{
    for (int i = 0; i < r->nnodes; i++)
        if (r->nodes[i].port == port && strcmp(r->nodes[i].host, host) == 0)
            return i;
    if (r->nnodes == CLUSTER_MAX_NODES)
        return -1;
    Node *n = &r->nodes[r->nnodes];
    memset(n, 0, sizeof *n);
    snprintf(n->host, sizeof n->host, "%s", host);
    n->port = port;
    return r->nnodes++;
}

/* Reads CLUSTER SLOTS on c (host: the address it was reached at) into a
 * new map. Nodes keep their index (commands due refer to it): a node new to
 * the map is added, one gone from it stays, no longer a primary. */
static bool read_map(Router *r, redisContext *c, const char *host, char *err, size_t errlen)
{
    ClusterMap *map = malloc(sizeof *map);
    if (!map) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    redisReply *rep = redisCommand(c, "CLUSTER SLOTS");
    if (!rep) {
        snprintf(err, errlen, "redis CLUSTER SLOTS: %s", c->errstr);
        free(map);
        return false;
    }
    bool ok = cluster_map_read(map, rep, host, err, errlen);
    freeReplyObject(rep);
    int index[CLUSTER_MAX_NODES];
    for (int i = 0; ok && i < map->nnodes; i++) {
        index[i] = node_index(r, map->nodes[i].host, map->nodes[i].port);
        if (index[i] < 0) {
            snprintf(err, errlen, "redis: more than %d cluster nodes", CLUSTER_MAX_NODES);
            ok = false;
        }
    }
    if (!ok) {
        free(map);
        return false;
    }
    for (int i = 0; i < r->nnodes; i++)
        r->nodes[i].primary = false;
    for (int i = 0; i < map->nnodes; i++)
        r->nodes[index[i]].primary = true;
    for (int s2 = 0; s2 < CLUSTER_SLOTS; s2++)
        if (map->node[s2] >= 0)
            map->node[s2] = (int16_t)index[map->node[s2]];
    free(r->map);
    r->map = map;
    r->epoch++;
    return true;
}

/* Whether c's server runs in cluster mode (INFO cluster). */
static bool cluster_enabled(redisContext *c, bool *enabled, char *err, size_t errlen)
{
    redisReply *rep = redisCommand(c, "INFO cluster");
    if (!rep) {
        snprintf(err, errlen, "redis INFO: %s", c->errstr);
        return false;
    }
    bool ok = rep->type == REDIS_REPLY_STRING;
    if (ok)
        *enabled = strstr(rep->str, "cluster_enabled:1") != NULL;
    else
        snprintf(err, errlen, "redis INFO: %s",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    freeReplyObject(rep);
    return ok;
}

/* The primary Redis Sentinel names (redis.sentinels, asked in turn). */
static redisContext *from_sentinels(Router *r, char *host, size_t hostlen, char *err,
                                    size_t errlen)
{
    const Config *cfg = r->cfg;
    int timeout_ms = cfg->redis_timeout_ms;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    snprintf(err, errlen, "redis: no sentinel answered");
    for (int i = 0; i < cfg->nsentinels; i++) {
        const RedisAddr *a = &cfg->sentinels[i];
        redisContext *s = redisConnectWithTimeout(a->host, a->port, tv);
        if (!s || s->err) {
            snprintf(err, errlen, "redis sentinel %s:%d: %s", a->host, a->port,
                     s ? s->errstr : "out of memory");
            if (s)
                redisFree(s);
            continue;
        }
        redisSetTimeout(s, tv);
        redisReply *rep = redisCommand(s, "SENTINEL get-master-addr-by-name %s", cfg->master_name);
        bool ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                  rep->element[0]->type == REDIS_REPLY_STRING &&
                  rep->element[1]->type == REDIS_REPLY_STRING;
        if (ok) {
            snprintf(host, hostlen, "%s", rep->element[0]->str);
            int port = atoi(rep->element[1]->str);
            freeReplyObject(rep);
            redisFree(s);
            return store_connect_to(cfg, host, port, err, errlen);
        }
        snprintf(err, errlen, "redis sentinel %s:%d: %s", a->host, a->port,
                 !rep ? s->errstr
                      : rep->type == REDIS_REPLY_ERROR ? rep->str
                                                       : "does not know redis.master_name");
        if (rep)
            freeReplyObject(rep);
        redisFree(s);
    }
    return NULL;
}

/* Any node that answers: redis.url first, then redis.seeds, then the nodes
 * known. */
static redisContext *seed(Router *r, char *host, size_t hostlen, char *err, size_t errlen)
{
    if (r->cfg->nsentinels)
        return from_sentinels(r, host, hostlen, err, errlen);
    redisContext *c = store_connect(r->cfg, err, errlen);
    snprintf(host, hostlen, "%s", r->cfg->redis.host);
    for (int i = 0; !c && i < r->cfg->nseeds; i++) {
        char why[256];
        c = store_connect_to(r->cfg, r->cfg->seeds[i].host, r->cfg->seeds[i].port, why,
                             sizeof why);
        snprintf(host, hostlen, "%s", r->cfg->seeds[i].host);
    }
    for (int i = 0; !c && i < r->nnodes; i++) {
        char why[256];
        c = store_connect_to(r->cfg, r->nodes[i].host, r->nodes[i].port, why, sizeof why);
        snprintf(host, hostlen, "%s", r->nodes[i].host);
    }
    return c;
}

static bool node_connect(Router *r, Node *n, redisContext **c, char *err, size_t errlen)
{
    if (*c && !(*c)->err)
        return true;
    if (*c)
        redisFree(*c);
    *c = store_connect_to(r->cfg, n->host, n->port, err, errlen);
    return *c != NULL;
}

bool router_connect(Router *r, char *err, size_t errlen)
{
    if (router_connected(r))
        return true;
    router_drop(r);
    char host[CLUSTER_HOST_MAX];
    redisContext *c = seed(r, host, sizeof host, err, errlen);
    if (!c)
        return false;
    bool enabled = false;
    if (!cluster_enabled(c, &enabled, err, errlen)) {
        redisFree(c);
        return false;
    }
    r->cluster = enabled;
    if (!enabled) {
        /* one server: the one that answered */
        r->nnodes = 1;
        memset(&r->nodes[0], 0, sizeof r->nodes[0]);
        snprintf(r->nodes[0].host, sizeof r->nodes[0].host, "%s", host);
        r->nodes[0].port = c->tcp.port;
        r->nodes[0].primary = true;
        r->nodes[0].c = c;
        return true;
    }
    bool ok = read_map(r, c, host, err, errlen);
    redisFree(c);
    for (int i = 0; ok && i < r->nnodes; i++)
        if (r->nodes[i].primary)
            ok = node_connect(r, &r->nodes[i], &r->nodes[i].c, err, errlen);
    if (!ok)
        router_drop(r);
    return ok;
}

/* ---- commands ---- */

static bool out_push(Router *r, int node, uint64_t all, int slot, const char *cmd,
                     size_t len)
{
    if (r->head == r->nouts) {
        r->head = r->nouts = 0;
        jsonbuf_reset(&r->kept);
    }
    if (!GROW_RESERVE(r->outs, r->cap, r->nouts + 1, 256))
        return false;
    size_t off = r->kept.len;
    jsonbuf_put(&r->kept, cmd, len);
    if (r->kept.oom)
        return false;
    r->outs[r->nouts++] = (Out){node, all, slot, off, len, r->epoch, NULL};
    return true;
}

static bool read_one(Router *r, Node *n, redisContext *c, redisReply **rep, char *err,
                     size_t errlen)
{
    *rep = NULL;
    if (!c || redisGetReply(c, (void **)rep) != REDIS_OK || !*rep) {
        snprintf(err, errlen, "redis %s:%d: %s", n->host, n->port,
                 c && c->errstr[0] ? c->errstr : "connection lost");
        if (*rep)
            freeReplyObject(*rep);
        *rep = NULL;
        router_drop(r);
        return false;
    }
    return true;
}

/* The reply of Out k from its node(s), as it came. */
static bool take(Router *r, Out *o, redisReply **rep, char *err, size_t errlen)
{
    if (o->reply) {
        *rep = o->reply;
        o->reply = NULL;
        return true;
    }
    if (o->node >= 0)
        return read_one(r, &r->nodes[o->node], r->nodes[o->node].c, rep, err, errlen);
    /* the primaries it went to: the first error, else the smallest integer
     * (WAIT: the fewest replicas), else the first reply */
    *rep = NULL;
    for (int i = 0; i < r->nnodes; i++) {
        if (!(o->all & (UINT64_C(1) << i)))
            continue;
        redisReply *x;
        if (!read_one(r, &r->nodes[i], r->nodes[i].c, &x, err, errlen)) {
            if (*rep)
                freeReplyObject(*rep);
            *rep = NULL;
            return false;
        }
        bool smaller = x->type == REDIS_REPLY_INTEGER && (*rep) &&
                       (*rep)->type == REDIS_REPLY_INTEGER && x->integer < (*rep)->integer;
        if (!*rep || smaller ||
            (x->type == REDIS_REPLY_ERROR && (*rep)->type != REDIS_REPLY_ERROR)) {
            if (*rep)
                freeReplyObject(*rep);
            *rep = x;
        } else {
            freeReplyObject(x);
        }
    }
    return true;
}

static bool prefix(const redisReply *rep, const char *p)
{
    return rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, p, strlen(p)) == 0;
}

/* An error reply of ours (freed by freeReplyObject). */
static redisReply *error_reply(const char *msg)
{
    redisReply *e = calloc(1, sizeof *e);
    if (!e || !(e->str = strdup(msg))) {
        free(e);
        return NULL;
    }
    e->type = REDIS_REPLY_ERROR;
    e->len = strlen(msg);
    return e;
}

/* redis.wait_replicas after a command sent again on n's second connection
 * (the WAIT of the pipeline does not cover it): too few replicas turn the
 * reply into an error (the caller sends its batch again). */
static bool wait_aside(Router *r, Node *n, redisReply **rep, char *err, size_t errlen)
{
    redisReply *w;
    redisAppendCommand(n->aside, "WAIT %d %d", r->cfg->wait_replicas,
                       r->cfg->redis_timeout_ms / 2);
    if (!read_one(r, n, n->aside, &w, err, errlen))
        return false;
    bool enough = w->type == REDIS_REPLY_INTEGER && w->integer >= r->cfg->wait_replicas;
    freeReplyObject(w);
    if (enough)
        return true;
    freeReplyObject(*rep);
    *rep = error_reply("WAIT: fewer replicas than redis.wait_replicas acknowledged the write");
    if (!*rep) {
        snprintf(err, errlen, "out of memory");
        router_drop(r);
        return false;
    }
    return true;
}

static bool slot_failed(const Router *r, int slot)
{
    if (r->nfailed == FAILED_SLOTS_MAX)
        return true;
    for (int i = 0; i < r->nfailed; i++)
        if (r->failed[i] == slot)
            return true;
    return false;
}

/* Follows the redirections of Out o's reply *rep until a final reply:
 * the command is sent again, alone, on the target's second connection.
 *
 * A command sent again that fails (not a refusal: a node still without
 * the function library or the module's configuration, out of memory,
 * busy...) may have run nothing, while a later command of its slot, sent
 * again once the cause cleared, would run: the slot's commands out of
 * their order. So the later redirected commands of that slot are not sent
 * again until the queue has emptied: each gets an error (the caller sends
 * its batch again, in order). */
static bool follow(Router *r, Out *o, redisReply **rep, char *err, size_t errlen)
{
    for (int hops = 0; hops < REDIRECTS_MAX; hops++) {
        ClusterNode to;
        unsigned slot;
        ClusterRedirect how = (*rep)->type == REDIS_REPLY_ERROR
                                  ? cluster_redirect((*rep)->str, (*rep)->len, &slot, &to)
                                  : REDIRECT_NONE;
        bool again = prefix(*rep, "TRYAGAIN") || prefix(*rep, "CLUSTERDOWN");
        if (how == REDIRECT_NONE && !again) {
            if (hops > 0 && (*rep)->type == REDIS_REPLY_ERROR && !prefix(*rep, APPLY_REFUSAL) &&
                o->slot >= 0 && !slot_failed(r, o->slot))
                r->failed[r->nfailed++] = o->slot;
            return true;
        }
        if (hops == 0 && o->slot >= 0 && slot_failed(r, o->slot)) {
            char msg[160];
            snprintf(msg, sizeof msg, "ORDER redis: slot %d: not sent again after an earlier "
                     "command of the slot failed", o->slot);
            freeReplyObject(*rep);
            if (!(*rep = error_reply(msg))) {
                snprintf(err, errlen, "out of memory");
                router_drop(r);
                return false;
            }
            return true;
        }
        log_at(LOG_DEBUG, "redis", "slot %d: %s; following", o->slot, (*rep)->str);
        int target;
        if (how == REDIRECT_NONE) {
            pause_ms(RETRY_PAUSE_MS * (hops + 1));
            target = o->node >= 0 ? o->node : 0;
            if (prefix(*rep, "CLUSTERDOWN") && r->map && o->slot >= 0) {
                /* the map may have changed (a failover) */
                Node *n = &r->nodes[target];
                if (node_connect(r, n, &n->aside, err, errlen) &&
                    read_map(r, n->aside, n->host, err, errlen) && r->map->node[o->slot] >= 0)
                    target = r->map->node[o->slot];
            }
        } else {
            target = node_index(r, to.host, to.port);
            if (target < 0) {
                snprintf(err, errlen, "redis: more than %d cluster nodes", CLUSTER_MAX_NODES);
                freeReplyObject(*rep);
                *rep = NULL;
                router_drop(r);
                return false;
            }
            if (how == REDIRECT_MOVED) {
                Node *n = &r->nodes[target];
                char host[CLUSTER_HOST_MAX];
                snprintf(host, sizeof host, "%s", n->host);
                if (!node_connect(r, n, &n->aside, err, errlen) ||
                    !read_map(r, n->aside, host, err, errlen)) {
                    freeReplyObject(*rep);
                    *rep = NULL;
                    router_drop(r);
                    return false;
                }
                target = node_index(r, to.host, to.port);
            }
        }
        freeReplyObject(*rep);
        *rep = NULL;
        if (target < 0) {
            snprintf(err, errlen, "redis: more than %d cluster nodes", CLUSTER_MAX_NODES);
            router_drop(r);
            return false;
        }
        Node *n = &r->nodes[target];
        if (!node_connect(r, n, &n->aside, err, errlen)) {
            router_drop(r);
            return false;
        }
        if (how == REDIRECT_ASK)
            redisAppendCommand(n->aside, "ASKING");
        redisAppendFormattedCommand(n->aside, r->kept.data + o->off, o->len);
        if (how == REDIRECT_ASK) {
            redisReply *ok;
            if (!read_one(r, n, n->aside, &ok, err, errlen))
                return false;
            freeReplyObject(ok);
        }
        if (!read_one(r, n, n->aside, rep, err, errlen))
            return false;
        if (r->cfg->wait_replicas > 0 && (*rep)->type != REDIS_REPLY_ERROR &&
            !wait_aside(r, n, rep, err, errlen))
            return false;
    }
    snprintf(err, errlen, "redis: still redirected after %d attempts: %s", REDIRECTS_MAX,
             (*rep)->str);
    freeReplyObject(*rep);
    *rep = NULL;
    router_drop(r);
    return false;
}

/* Every command routed with an older slot map answered (followed), so that
 * no command routed with the new one overtakes one of them. */
static bool settle_old(Router *r, char *err, size_t errlen)
{
    for (size_t k = r->head; k < r->nouts; k++) {
        Out *o = &r->outs[k];
        if (o->epoch == r->epoch || o->reply)
            continue;
        redisReply *rep;
        if (!take(r, o, &rep, err, errlen) || !follow(r, o, &rep, err, errlen))
            return false;
        o->reply = rep;
    }
    return true;
}

bool router_append(Router *r, int slot, const char *cmd, size_t len)
{
    if (!r->cluster) {
        if (r->nnodes == 0 || !r->nodes[0].c)
            return false;
        return redisAppendFormattedCommand(r->nodes[0].c, cmd, len) == REDIS_OK;
    }
    char err[256];
    if (r->head < r->nouts && r->outs[r->nouts - 1].epoch != r->epoch &&
        !settle_old(r, err, sizeof err)) {
        log_at(LOG_DEBUG, "redis", "%s", err);
        return false;
    }
    int node = -1;
    uint64_t all = 0;
    if (slot >= 0) {
        node = r->map && r->map->node[slot] >= 0 ? r->map->node[slot] : -1;
        if (node < 0) /* a slot no primary serves: the first, which says CLUSTERDOWN */
            for (int i = r->nnodes - 1; i >= 0; i--)
                if (r->nodes[i].primary)
                    node = i;
        if (node < 0)
            return false;
    } else {
        for (int i = 0; i < r->nnodes; i++)
            if (r->nodes[i].primary)
                all |= UINT64_C(1) << i;
    }
    if (!out_push(r, node, all, slot, cmd, len))
        return false;
    for (int i = 0; i < r->nnodes; i++) {
        if (node >= 0 ? i != node : !(all & (UINT64_C(1) << i)))
            continue;
        if (!r->nodes[i].c || redisAppendFormattedCommand(r->nodes[i].c, cmd, len) != REDIS_OK)
            return false;
    }
    return true;
}

bool router_flush(Router *r, char *err, size_t errlen)
{
    for (int i = 0; i < r->nnodes; i++) {
        Node *n = &r->nodes[i];
        int done = 0;
        while (n->c && !done)
            if (redisBufferWrite(n->c, &done) != REDIS_OK) {
                snprintf(err, errlen, "redis %s:%d: %s", n->host, n->port, n->c->errstr);
                router_drop(r);
                return false;
            }
    }
    return true;
}

bool router_read(Router *r, redisReply **rep, char *err, size_t errlen)
{
    if (!r->cluster) {
        if (r->nnodes == 0)
            return false;
        return read_one(r, &r->nodes[0], r->nodes[0].c, rep, err, errlen);
    }
    if (r->head == r->nouts) {
        snprintf(err, errlen, "redis: no reply is due");
        return false;
    }
    Out *o = &r->outs[r->head];
    if (!take(r, o, rep, err, errlen) || !follow(r, o, rep, err, errlen))
        return false;
    if (++r->head == r->nouts)
        r->nfailed = 0;
    return true;
}

int router_nodes(const Router *r)
{
    if (!r->cluster)
        return 1;
    int n = 0;
    for (int i = 0; i < r->nnodes; i++)
        n += r->nodes[i].primary;
    return n;
}

int router_node_slot(const Router *r, int i)
{
    if (!r->cluster)
        return ROUTER_ANY;
    int node = -1;
    for (int k = 0, seen = 0; k < r->nnodes && node < 0; k++)
        if (r->nodes[k].primary && seen++ == i)
            node = k;
    for (int s = 0; node >= 0 && r->map && s < CLUSTER_SLOTS; s++)
        if (r->map->node[s] == node)
            return s;
    return ROUTER_NONE;
}
