/* reload.h — SIGHUP: the configuration file loaded again and installed for
 * every thread (shared_config), or refused with the running one kept; the
 * properties every relation has had since start compared with the new ones
 * (config/history.h), and the statistics a change leaves out of step named
 * with the rebuild to run. Main thread only: reload_init once before the
 * first reload, reload_free at the end. */
#ifndef RELATIOND_RELOAD_H
#define RELATIOND_RELOAD_H

#include "config/config.h"

#include <stdbool.h>

/* The properties of cfg (the configuration started with) as the first
 * history; false when out of memory. */
bool reload_init(const Config *cfg) __attribute__((warn_unused_result));

/* Loads path again and, when it validates, installs it (shared_config_set)
 * and sets *running to it; else logs why and keeps *running. Settings that
 * cannot change at run time keep their running values (a warning names
 * them). Tells systemd RELOADING=1, then READY=1 once reload_ready was
 * called. */
void reload_config(const char *path, const Config **running);

/* The daemon became ready: a reload ends with READY=1 from now on. */
void reload_ready(void);

void reload_free(void);

#endif
