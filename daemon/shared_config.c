/* shared_config.c — reference-counted configurations (shared_config.h). */
#include "daemon/shared_config.h"

#include <pthread.h>
#include <stdlib.h>

struct ConfigRef {
    Config *cfg;
    int refs;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ConfigRef *running;

static void unref_locked(ConfigRef *ref)
{
    if (ref && --ref->refs == 0) {
        config_free(ref->cfg);
        free(ref);
    }
}

bool shared_config_set(Config *cfg)
{
    ConfigRef *ref = malloc(sizeof *ref);
    if (!ref) {
        config_free(cfg);
        return false;
    }
    ref->cfg = cfg; /* owned by ref */
    ref->refs = 1;  /* the running reference */
    pthread_mutex_lock(&lock);
    ConfigRef *old = running;
    running = ref;
    unref_locked(old);
    pthread_mutex_unlock(&lock);
    return true;
}

ConfigRef *shared_config_acquire(void)
{
    pthread_mutex_lock(&lock);
    ConfigRef *ref = running;
    if (ref)
        ref->refs++;
    pthread_mutex_unlock(&lock);
    return ref;
}

const Config *config_ref_get(const ConfigRef *ref)
{
    return ref->cfg;
}

void shared_config_release(ConfigRef *ref)
{
    pthread_mutex_lock(&lock);
    unref_locked(ref);
    pthread_mutex_unlock(&lock);
}

ConfigRef *config_ref_retain(ConfigRef *ref)
{
    pthread_mutex_lock(&lock);
    ref->refs++;
    pthread_mutex_unlock(&lock);
    return ref;
}

bool shared_config_outdated(const ConfigRef *ref)
{
    pthread_mutex_lock(&lock);
    bool outdated = ref != running;
    pthread_mutex_unlock(&lock);
    return outdated;
}

void shared_config_clear(void)
{
    pthread_mutex_lock(&lock);
    unref_locked(running);
    running = NULL;
    pthread_mutex_unlock(&lock);
}
