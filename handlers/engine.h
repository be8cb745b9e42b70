/* engine.h — the engine's lifecycle: a connection to Redis (one server,
 * or a cluster's primaries through the router) with the function library
 * of a configuration loaded on it, or the configuration given to the Redis
 * module when the server has it (redis.engine). What is done with it is in its parts:
 * apply.h (batches of events), read.h (statistics and edges), walk.h
 * (keyspace walks), check.h (verify, rebuild, the prefix check).
 *
 * Ownership: an Engine owns its connection and library; the configuration
 * is borrowed. Threads: one engine is used by one thread at a time (each
 * thread that talks to Redis has its own). Failure: every call that talks
 * to Redis returns false with the reason in err, the connection dropped
 * when what is on it can no longer be trusted; the next call connects
 * again. */
#ifndef RELATIOND_ENGINE_H
#define RELATIOND_ENGINE_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct Engine Engine;

/* Connects to Redis and loads the function library. cfg is borrowed: it
 * must outlive the engine or be replaced with engine_set_config. */
Engine *engine_new(const Config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The same without connecting: the first call connects (the daemon starts
 * while Redis is down). NULL when out of memory. */
Engine *engine_create(const Config *cfg) __attribute__((warn_unused_result));
void engine_free(Engine *e);
/* Connects (when not connected) and loads the function library, waiting for
 * the replies. False with the reason in err. */
bool engine_connect(Engine *e, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The engine only reads (statistics, edges, verify, rebuild): its
 * connections read PREFIX schema without completing it; a property missing
 * there (no edge holds a value of it) takes a slot after the list's end, in
 * the configuration's order, as a writer would give it. Before the first
 * connection. */
void engine_set_reader(Engine *e);
/* A reloaded configuration: its library is loaded before the next batch.
 * Events parsed with the previous one may still be delivered (their
 * relation is found by name). False when out of memory (the previous
 * configuration stays). */
bool engine_set_config(Engine *e, const Config *cfg) __attribute__((warn_unused_result));

/* Reads the replies still due ahead of the first batch sent and not read. */
bool engine_sync(Engine *e, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Between batches: connects when not connected, then PING on every node
 * (each primary of a cluster). False with the reason in err: Redis is
 * unreachable, or refused (engine_refused). True without a PING while a
 * batch's replies are still due. */
bool engine_ping(Engine *e, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Whether the engine is connected to a Redis Cluster (false while not
 * connected). */
bool engine_cluster(const Engine *e);

/* Whether the last failed connection was Redis refusing redis.url's
 * settings (WRONGPASS, NOAUTH, NOPERM on connecting, a database out of
 * range): a configuration error, not an outage. err then starts with
 * "redis.url: "; it never holds the password. */
bool engine_refused(const Engine *e);

/* Whether a Redis error is a passing state of the server (still loading
 * its data, busy with a script), waited for like a server that is down,
 * never a refusal. */
bool engine_passing(const char *msg);
/* redis.engine against a server's reply to MODULE LIST (an error reply
 * counts as no module): *module set when the module engine is to be used.
 * False, with err naming redis.engine, when the configuration asks for the
 * module and the server has not loaded it. */
struct redisReply;
bool engine_choose(const Config *cfg, const struct redisReply *module_list, bool *module,
                   char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
