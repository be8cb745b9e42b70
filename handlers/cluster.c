/* cluster.c — the routing primitives of cluster.h. */
#include "handlers/cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint16_t cluster_crc16(const void *data, size_t len)
{
    return cluster_crc16_update(0, data, len);
}

uint16_t cluster_crc16_update(uint16_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

unsigned cluster_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        const char *from = open + 1;
        const char *close = memchr(from, '}', len - (size_t)(from - key));
        if (close && close > from)
            return cluster_crc16(from, (size_t)(close - from)) & (CLUSTER_SLOTS - 1);
    }
    return cluster_crc16(key, len) & (CLUSTER_SLOTS - 1);
}

int cluster_map_node(ClusterMap *map, const char *host, int port)
{
    for (int i = 0; i < map->nnodes; i++)
        if (map->nodes[i].port == port && strcmp(map->nodes[i].host, host) == 0)
            return i;
    if (map->nnodes == CLUSTER_MAX_NODES || strlen(host) >= CLUSTER_HOST_MAX)
        return -1;
    ClusterNode *n = &map->nodes[map->nnodes];
    snprintf(n->host, sizeof n->host, "%s", host);
    n->port = port;
    return map->nnodes++;
}

static bool fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "CLUSTER SLOTS: %s", why);
    return false;
}

bool cluster_map_read(ClusterMap *map, const redisReply *r, const char *default_host,
                      char *err, size_t errlen)
{
    map->nnodes = 0;
    for (int s = 0; s < CLUSTER_SLOTS; s++)
        map->node[s] = -1;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return fail(err, errlen, r && r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        /* start, end, primary [host, port, id, ...], replicas... */
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            return fail(err, errlen, "an entry is not [start, end, [host, port, ...], ...]");
        long long from = e->element[0]->integer, to = e->element[1]->integer;
        const redisReply *host = e->element[2]->element[0], *port = e->element[2]->element[1];
        if (from < 0 || to >= CLUSTER_SLOTS || from > to)
            return fail(err, errlen, "a slot range out of 0..16383");
        if ((host->type != REDIS_REPLY_STRING && host->type != REDIS_REPLY_NIL) ||
            port->type != REDIS_REPLY_INTEGER || port->integer <= 0 || port->integer > 65535)
            return fail(err, errlen, "a node without a host and port");
        const char *h = host->type == REDIS_REPLY_STRING && host->len ? host->str : default_host;
        int n = cluster_map_node(map, h, (int)port->integer);
        if (n < 0)
            return fail(err, errlen, "too many primaries");
        for (long long s = from; s <= to; s++)
            map->node[s] = (int16_t)n;
    }
    return true;
}

ClusterRedirect cluster_redirect(const char *msg, size_t len, unsigned *slot, ClusterNode *to)
{
    ClusterRedirect kind;
    size_t skip;
    if (len > 6 && memcmp(msg, "MOVED ", 6) == 0) {
        kind = REDIRECT_MOVED;
        skip = 6;
    } else if (len > 4 && memcmp(msg, "ASK ", 4) == 0) {
        kind = REDIRECT_ASK;
        skip = 4;
    } else {
        return REDIRECT_NONE;
    }
    char buf[CLUSTER_HOST_MAX + 32];
    if (len - skip >= sizeof buf)
        return REDIRECT_NONE;
    memcpy(buf, msg + skip, len - skip);
    buf[len - skip] = '\0';
    char *end;
    unsigned long s = strtoul(buf, &end, 10);
    if (end == buf || *end != ' ' || s >= CLUSTER_SLOTS)
        return REDIRECT_NONE;
    char *addr = end + 1, *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return REDIRECT_NONE;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port <= 0 || port > 65535)
        return REDIRECT_NONE;
    *colon = '\0';
    if (strlen(addr) >= sizeof to->host)
        return REDIRECT_NONE;
    snprintf(to->host, sizeof to->host, "%s", addr);
    to->port = (int)port;
    *slot = (unsigned)s;
    return kind;
}
