/* hook_deliver.h — the deliverers of the action hooks: one thread per hook
 * of the configuration, each with its own Redis connection (an Engine) and
 * its own destination (hook_sink.h). A deliverer reads its hook's backlog
 * (the stream <prefix>{hook:<name>}, handlers/backlog.h) from its oldest
 * entry, about batch_size (http) or engine.batch_size (amqp, kafka)
 * triggers (an empty stream is waited on with XREAD BLOCK, at most 1 s),
 * sends up to that many as one batch, and once the destination took it
 * deletes the entries it took whole (XTRIM MINID just past the last: the
 * batch is the stream's oldest entries, and only the lease holder deletes)
 * with their triggers off the length key, notes the success
 * (<prefix>{hook:<name>}:last_success, unix ms) and reads the backlog back,
 * in one script; an entry sent in part is finished by the next batch. A
 * failed send waits the destination's back-off and sends the same batch
 * again; an http 410 sets <prefix>{hook:<name>}:disabled (logged at error
 * level) and the deliverer then waits until that key is deleted (relationctl
 * hooks enable NAME). An http hook waits up to batch_ms after its oldest
 * entry for a full batch. Metrics: relationd_hook_*{hook}.
 *
 * Several daemons on one Redis: a deliverer sends only while its daemon
 * holds the hook's lease, <prefix>{hook:<name>}:lease (this daemon's token
 * "<host>:<pid>:<random>", taken with SET NX PX 5000 when there is a
 * batch to send, renewed every second by its holder only (compare and
 * PEXPIRE), deleted by it at the stop); the others wait and take it over
 * once it expires.
 *
 * Ownership: the deliverers hold a reference to the shared configuration
 * (daemon/shared_config.h) for their life. Threads: started and stopped by
 * the main thread; each deliverer touches only its own engine and sink.
 * Failure: start fails (NULL, err) only when out of memory, a sink cannot
 * be made or a thread cannot start; every outage later is waited out with
 * back-off, never stopping application nor the other hooks. */
#ifndef RELATIOND_HOOK_DELIVER_H
#define RELATIOND_HOOK_DELIVER_H

#include <stddef.h>

typedef struct HookDeliverers HookDeliverers;

/* One thread per hook of the shared configuration. NULL with a message in
 * err on failure (no thread left running). */
HookDeliverers *hook_deliverers_start(char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The drain (SIGTERM, after the sources finished): each deliverer goes on
 * until its backlog is empty (or its hook disabled), or until the drain
 * deadline (lifecycle.h) passes; what is left stays in its backlog for the
 * next start. NULL: none. */
void hook_deliverers_drain(HookDeliverers *d);
/* Asks every deliverer to stop (after hook_deliverers_drain: once its drain
 * is done; otherwise at once: a send in progress finishes, its entries stay
 * in the backlog when not delivered), joins them, frees. NULL: none. */
void hook_deliverers_stop(HookDeliverers *d);

#endif
