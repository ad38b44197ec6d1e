/* SPDX-License-Identifier: MIT */
/* The host side of the plugin contract: the services table and plugin
 * instances (load, create with config tracking, destroy). */
#ifndef AIMX_HOST_H
#define AIMX_HOST_H

#include "config.h"
#include "diag.h"
#include "loader.h"

#include <aimx/plugin.h>

struct aimx_host {
    const aimx_config *config;
    const char *plugin_name;
    const char *group_name;  /* "resolver", "policy", "transport" */
    config_setting_t *group; /* NULL when the config has no such group */
    char **known;            /* paths asked for during create() */
    size_t known_count;
    size_t known_cap;
    int creating;
    aimx_diag *diag; /* config errors land here */
};

typedef struct aimx_instance {
    aimx_plugin plugin;
    struct aimx_host host;
    void *instance;
    int created;
} aimx_instance;

const aimx_host_api *aimx__host_api(void);

/*
 * Loads the plugin configured for slot, creates its instance and checks
 * that every key of its group was asked for.  Problems go to d.  Returns 0
 * or 78.
 */
int aimx__instance_create(aimx_instance *inst, const aimx_config *c, int slot,
                          aimx_diag *d);
/* Same, from an already loaded plugin (tests, built-in plugins). */
int aimx__instance_create_from(aimx_instance *inst, const aimx_config *c,
                               int slot, aimx_diag *d);
void aimx__instance_destroy(aimx_instance *inst);

#endif
