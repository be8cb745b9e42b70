/* router.h — the connections to Redis: one server, or the primaries of a
 * Redis Cluster (detected: INFO cluster). Commands (RESP, formatted by the
 * caller) are queued with the slot of their keys, written to the node that
 * serves it, one pipeline per node, and their replies are returned in the
 * order the commands were queued.
 *
 * On a cluster, a reply that redirects is followed before it is returned:
 * MOVED (the slot map is read again, the command sent to its new node), ASK
 * (ASKING, then the command to the named node; the map unchanged), TRYAGAIN
 * and CLUSTERDOWN (sent again after a pause, a few times). Commands queued
 * after a redirected one for the same slot were sent to the same node and
 * come back redirected too, so a slot's commands still run in their order;
 * before commands are written under a new slot map, every reply due under
 * the old one is read (kept for router_read). A command sent again that
 * fails (not a refusal, "INVALID …") stops its slot until the queue is
 * empty: its later redirected commands get an "ORDER …" error instead of
 * being sent again, so none runs before it. */
#ifndef RELATIOND_ROUTER_H
#define RELATIOND_ROUTER_H

#include "config/config.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

/* The slot of a command for router_append: ROUTER_ANY on one server (every
 * command); on a cluster, ROUTER_ALL sends it to every primary (one reply
 * is returned: the first error, else the first node's). */
#define ROUTER_ANY (-1)
#define ROUTER_ALL (-2)
#define ROUTER_NONE (-3) /* router_node_slot: a primary that serves no slot */

typedef struct Router Router;

/* No connection yet. cfg is borrowed (redis.url, redis.timeout_ms). */
Router *router_new(const Config *cfg) __attribute__((warn_unused_result));
void router_free(Router *r);
void router_set_config(Router *r, const Config *cfg);

/* Connects when not connected: to redis.url, then, on a cluster, to every
 * primary of its slot map. */
bool router_connect(Router *r, char *err, size_t errlen) __attribute__((warn_unused_result));
bool router_connected(const Router *r);
/* Whether the server is a cluster (known once connected). */
bool router_cluster(const Router *r);
/* Closes every connection: the replies due are lost. */
void router_drop(Router *r);

/* Queues one command (or, on one server, several). False: out of memory. */
bool router_append(Router *r, int slot, const char *cmd, size_t len)
    __attribute__((warn_unused_result));
/* Writes what is queued. False (everything dropped) on a connection error. */
bool router_flush(Router *r, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The reply to the oldest command not answered yet (the caller frees it).
 * False (everything dropped) on a connection error or a redirection that
 * cannot be followed. */
bool router_read(Router *r, redisReply **reply, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The primaries (1 on one server), and a slot the i-th serves, for a
 * command meant for that node (SCAN): ROUTER_ANY on one server,
 * ROUTER_NONE when it serves none. */
int router_nodes(const Router *r);
int router_node_slot(const Router *r, int i);

#endif
