/* cluster.h — Redis Cluster's routing primitives: the hash slot of a key (the
 * cluster specification's CRC16 and hash tags), the slot map read from
 * CLUSTER SLOTS, and MOVED/ASK redirections. No I/O. */
#ifndef RELATIOND_CLUSTER_H
#define RELATIOND_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLUSTER_SLOTS 16384
#define CLUSTER_MAX_NODES 64
#define CLUSTER_HOST_MAX 256

/* CRC16 (XMODEM: poly 0x1021, init 0, no reflection) of len bytes; _update
 * goes on from crc (the CRC of what came before). */
uint16_t cluster_crc16(const void *data, size_t len);
uint16_t cluster_crc16_update(uint16_t crc, const void *data, size_t len);

/* The slot of a key: of the text between its first '{' and the first '}'
 * after it when that text is not empty, else of the whole key. */
unsigned cluster_slot(const char *key, size_t len);

typedef struct {
    char host[CLUSTER_HOST_MAX];
    int port;
} ClusterNode;

/* Which primary serves each slot: node[slot] indexes nodes, -1 when none. */
typedef struct {
    ClusterNode nodes[CLUSTER_MAX_NODES];
    int nnodes;
    int16_t node[CLUSTER_SLOTS];
} ClusterMap;

/* Reads a CLUSTER SLOTS reply into map (the primaries; replicas are not
 * routed to). An empty host in the reply (a node announcing none) is
 * default_host, the address asked. False with the reason when the reply is
 * not one. */
bool cluster_map_read(ClusterMap *map, const redisReply *r, const char *default_host,
                      char *err, size_t errlen) __attribute__((warn_unused_result));

/* The index of host:port in map, added when missing; -1 when full. */
int cluster_map_node(ClusterMap *map, const char *host, int port);

typedef enum { REDIRECT_NONE, REDIRECT_MOVED, REDIRECT_ASK } ClusterRedirect;

/* An error reply "MOVED <slot> <host>:<port>" or "ASK ..." (host may be an
 * IPv6 address: the port follows the last ':'); REDIRECT_NONE for any other
 * reply, or one that does not parse. */
ClusterRedirect cluster_redirect(const char *msg, size_t len, unsigned *slot,
                                 ClusterNode *to);

#endif
