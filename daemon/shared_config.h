/* shared_config.h — the running configuration, shared by the threads. A
 * reload installs a new one; each thread switches at a batch boundary, and a
 * configuration is freed when the last thread has let go of it. */
#ifndef RELATIOND_SHARED_CONFIG_H
#define RELATIOND_SHARED_CONFIG_H

#include "config/config.h"

typedef struct ConfigRef ConfigRef;

/* Installs cfg (owned from now on) as the running configuration. False when
 * out of memory (cfg is freed). */
bool shared_config_set(Config *cfg) __attribute__((warn_unused_result));

/* The running configuration, held until released. */
ConfigRef *shared_config_acquire(void);
const Config *config_ref_get(const ConfigRef *ref);
void shared_config_release(ConfigRef *ref);
/* One more hold on ref (released with shared_config_release). */
ConfigRef *config_ref_retain(ConfigRef *ref);

/* True when ref is no longer the running configuration. */
bool shared_config_outdated(const ConfigRef *ref);

/* Releases the running configuration at exit. */
void shared_config_clear(void);

#endif
