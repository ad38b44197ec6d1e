/* SPDX-License-Identifier: MIT */
#include "host.h"

#include "dns_sink.h"
#include "log.h"
#include "message.h"
#include "units.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void host_vlog(aimx_host *h, int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void host_log(aimx_host *h, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static aimx_status host_cfg_string(aimx_host *h, const char *path,
                                   const char **out);
static aimx_status host_cfg_bool(aimx_host *h, const char *path, int *out);
static aimx_status host_cfg_int(aimx_host *h, const char *path, int64_t min,
                                int64_t max, int64_t *out);
static aimx_status host_cfg_duration(aimx_host *h, const char *path,
                                     uint64_t min_us, uint64_t max_us,
                                     uint64_t *out_us);
static aimx_status host_cfg_size(aimx_host *h, const char *path, uint64_t min,
                                 uint64_t max, uint64_t *out);
static aimx_status host_cfg_count(aimx_host *h, const char *path, size_t *out);
static aimx_status host_cfg_error(aimx_host *h, const char *path,
                                  const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *host_alloc(aimx_host *h, size_t size);
static void *host_realloc(aimx_host *h, void *ptr, size_t size);
static void host_free(aimx_host *h, void *ptr);
static uint64_t host_monotonic_us(aimx_host *h);
static aimx_status lookup(aimx_host *h, const char *path,
                          config_setting_t **out);
static void where_of(aimx_host *h, config_setting_t *s, char *buf, size_t len);

static const aimx_host_api host_api = {
    .struct_size = sizeof(aimx_host_api), /* what this host provides */
    .abi_major = AIMX_ABI_MAJOR,          /* the host's ABI */
    .abi_minor = AIMX_ABI_MINOR,
    .reserved = 0,
    .log = host_log, /* prefixed with the plugin name */
    .vlog = host_vlog,
    .cfg_string = host_cfg_string, /* config: during create() only */
    .cfg_bool = host_cfg_bool,
    .cfg_int = host_cfg_int,
    .cfg_duration = host_cfg_duration,
    .cfg_size = host_cfg_size,
    .cfg_count = host_cfg_count,
    .cfg_error = host_cfg_error,
    .alloc = host_alloc, /* plain calloc/realloc/free */
    .realloc = host_realloc,
    .free = host_free,
    .monotonic_us = host_monotonic_us, /* CLOCK_MONOTONIC */
    .dns_add = aimx__dns_sink_add,     /* dns_sink.c */
    .dns_complete = aimx__dns_sink_complete,
    .msg_read = aimx__msg_read, /* message.c */
    .msg_rewind = aimx__msg_rewind,
};

const aimx_host_api *
aimx__host_api(void)
{
    return &host_api;
}

static void
host_vlog(aimx_host *h, int level, const char *fmt, va_list ap)
{
    aimx__vlog(level, h ? h->plugin_name : "plugin", fmt, ap);
}

static void
host_log(aimx_host *h, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    host_vlog(h, level, fmt, ap);
    va_end(ap);
}

static void
where_of(aimx_host *h, config_setting_t *s, char *buf, size_t len)
{
    aimx__config_where(h->config, s ? s : h->group, buf, len);
}

/* Records the path (found or not: asking makes it a known key) and finds it. */
static aimx_status
lookup(aimx_host *h, const char *path, config_setting_t **out)
{
    int malformed;

    *out = NULL;
    if (!h->creating) {
        aimx__log(3, h->plugin_name,
                  "asked for config key '%s' outside create(); the config is "
                  "only available during create()",
                  path);
        return AIMX_ERR_UNSUPPORTED;
    }
    if (path == NULL || path[0] == '\0') {
        aimx__log(3, h->plugin_name, "asked for an empty config path");
        return AIMX_ERR_INVALID;
    }
    if (h->known_count == h->known_cap) {
        size_t cap = h->known_cap ? h->known_cap * 2 : 16;
        char **grown = realloc(h->known, cap * sizeof *grown);
        if (grown == NULL)
            return AIMX_ERR_NOMEM;
        h->known = grown;
        h->known_cap = cap;
    }
    h->known[h->known_count] = strdup(path);
    if (h->known[h->known_count] == NULL)
        return AIMX_ERR_NOMEM;
    h->known_count++;
    if (h->group == NULL)
        return AIMX_ERR_NOT_FOUND;
    *out = aimx__config_lookup_path(h->group, path, &malformed);
    if (malformed) {
        aimx__log(3, h->plugin_name, "asked for malformed config path '%s'",
                  path);
        return AIMX_ERR_INVALID;
    }
    return *out ? AIMX_OK : AIMX_ERR_NOT_FOUND;
}

static aimx_status
wrong_type(aimx_host *h, config_setting_t *s, const char *path,
           const char *what)
{
    char where[PATH_MAX + 32];

    where_of(h, s, where, sizeof where);
    aimx__diag_add(h->diag, "%s: '%s' in group '%s' must be %s", where, path,
                   h->group_name, what);
    return AIMX_ERR_WRONG_TYPE;
}

/* The documented top-level keys plugins may read, with defaults applied. */
static aimx_status
top_level(aimx_host *h, const char *path, const char **str, int *flag)
{
    if (!h->creating) {
        aimx__log(3, h->plugin_name,
                  "asked for config key '%s' outside create(); the config is "
                  "only available during create()",
                  path);
        return AIMX_ERR_UNSUPPORTED;
    }
    if (strcmp(path, "/domain") == 0 && str != NULL) {
        *str = h->config->domain;
        return AIMX_OK;
    }
    if (strcmp(path, "/enable_ipv6") == 0 && flag != NULL) {
        *flag = h->config->enable_ipv6;
        return AIMX_OK;
    }
    aimx__log(3, h->plugin_name,
              "asked for top-level key '%s' as a %s, which plugins may not "
              "read (see docs/sdk.md)",
              path, str ? "string" : "boolean");
    return AIMX_ERR_UNSUPPORTED;
}

static aimx_status
host_cfg_string(aimx_host *h, const char *path, const char **out)
{
    config_setting_t *s;
    aimx_status st;

    if (path != NULL && path[0] == '/')
        return top_level(h, path, out, NULL);
    st = lookup(h, path, &s);
    if (st != AIMX_OK)
        return st;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return wrong_type(h, s, path, "a string");
    *out = config_setting_get_string(s);
    return AIMX_OK;
}

static aimx_status
host_cfg_bool(aimx_host *h, const char *path, int *out)
{
    config_setting_t *s;
    aimx_status st;

    if (path != NULL && path[0] == '/')
        return top_level(h, path, NULL, out);
    st = lookup(h, path, &s);
    if (st != AIMX_OK)
        return st;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return wrong_type(h, s, path, "a boolean (true or false)");
    *out = config_setting_get_bool(s) ? 1 : 0;
    return AIMX_OK;
}

static aimx_status
host_cfg_int(aimx_host *h, const char *path, int64_t min, int64_t max,
             int64_t *out)
{
    config_setting_t *s;
    aimx_status st;
    long long v;
    char where[PATH_MAX + 32];

    st = lookup(h, path, &s);
    if (st != AIMX_OK)
        return st;
    if (config_setting_type(s) == CONFIG_TYPE_INT)
        v = config_setting_get_int(s);
    else if (config_setting_type(s) == CONFIG_TYPE_INT64)
        v = config_setting_get_int64(s);
    else
        return wrong_type(h, s, path, "an integer");
    if (v < min || v > max) {
        where_of(h, s, where, sizeof where);
        aimx__diag_add(h->diag,
                       "%s: '%s' in group '%s' must be between %lld and %lld "
                       "(it is %lld)",
                       where, path, h->group_name, (long long)min,
                       (long long)max, v);
        return AIMX_ERR_RANGE;
    }
    *out = v;
    return AIMX_OK;
}

static aimx_status
host_cfg_duration(aimx_host *h, const char *path, uint64_t min_us,
                  uint64_t max_us, uint64_t *out_us)
{
    config_setting_t *s;
    aimx_status st;
    uint64_t v;
    char where[PATH_MAX + 32], lo[32], hi[32];

    st = lookup(h, path, &s);
    if (st != AIMX_OK)
        return st;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return wrong_type(h, s, path,
                          "a duration string such as \"500ms\", \"30s\", "
                          "\"10m\" or \"1h\"");
    where_of(h, s, where, sizeof where);
    if (aimx__parse_duration(config_setting_get_string(s), &v) != 0) {
        aimx__diag_add(h->diag,
                       "%s: '%s' in group '%s' = \"%s\" is not a duration "
                       "(a whole number and a unit: ms, s, m or h, as in "
                       "\"30s\")",
                       where, path, h->group_name,
                       config_setting_get_string(s));
        return AIMX_ERR_WRONG_TYPE;
    }
    if (v < min_us || v > max_us) {
        aimx__format_duration(min_us, lo, sizeof lo);
        aimx__format_duration(max_us, hi, sizeof hi);
        aimx__diag_add(h->diag,
                       "%s: '%s' in group '%s' must be between %s and %s (it "
                       "is \"%s\")",
                       where, path, h->group_name, lo, hi,
                       config_setting_get_string(s));
        return AIMX_ERR_RANGE;
    }
    *out_us = v;
    return AIMX_OK;
}

static aimx_status
host_cfg_size(aimx_host *h, const char *path, uint64_t min, uint64_t max,
              uint64_t *out)
{
    config_setting_t *s;
    aimx_status st;
    uint64_t v;
    char where[PATH_MAX + 32];

    st = lookup(h, path, &s);
    if (st != AIMX_OK)
        return st;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return wrong_type(h, s, path, "a size string such as \"25MB\"");
    where_of(h, s, where, sizeof where);
    if (aimx__parse_size(config_setting_get_string(s), &v) != 0) {
        aimx__diag_add(h->diag,
                       "%s: '%s' in group '%s' = \"%s\" is not a size (a whole "
                       "number, optionally followed by KB, MB or GB)",
                       where, path, h->group_name,
                       config_setting_get_string(s));
        return AIMX_ERR_WRONG_TYPE;
    }
    if (v < min || v > max) {
        aimx__diag_add(h->diag,
                       "%s: '%s' in group '%s' must be between %llu and %llu "
                       "octets (it is \"%s\")",
                       where, path, h->group_name, (unsigned long long)min,
                       (unsigned long long)max, config_setting_get_string(s));
        return AIMX_ERR_RANGE;
    }
    *out = v;
    return AIMX_OK;
}

static aimx_status
host_cfg_count(aimx_host *h, const char *path, size_t *out)
{
    config_setting_t *s;
    aimx_status st;

    st = lookup(h, path, &s);
    if (st != AIMX_OK)
        return st;
    if (!config_setting_is_list(s) && !config_setting_is_array(s))
        return wrong_type(h, s, path, "a list, like [ ... ]");
    *out = (size_t)config_setting_length(s);
    return AIMX_OK;
}

static aimx_status
host_cfg_error(aimx_host *h, const char *path, const char *fmt, ...)
{
    config_setting_t *s = NULL;
    char where[PATH_MAX + 32], text[1024];
    int malformed;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (!h->creating) {
        /* The command's error list is gone: a log line is all that is left. */
        aimx__log(3, h->plugin_name, "%s: %s", path ? path : "", text);
        return AIMX_ERR_INVALID;
    }
    if (h->group != NULL && path != NULL && path[0] != '/')
        s = aimx__config_lookup_path(h->group, path, &malformed);
    where_of(h, s, where, sizeof where);
    if (path != NULL && path[0] != '\0')
        aimx__diag_add(h->diag, "%s: '%s' in group '%s': %s", where, path,
                       h->group_name, text);
    else
        aimx__diag_add(h->diag, "%s: group '%s': %s", where, h->group_name,
                       text);
    return AIMX_ERR_INVALID;
}

static void *
host_alloc(aimx_host *h, size_t size)
{
    (void)h;
    return calloc(1, size ? size : 1);
}

static void *
host_realloc(aimx_host *h, void *ptr, size_t size)
{
    (void)h;
    return realloc(ptr, size);
}

static void
host_free(aimx_host *h, void *ptr)
{
    (void)h;
    free(ptr);
}

static uint64_t
host_monotonic_us(aimx_host *h)
{
    struct timespec ts;

    (void)h;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int
aimx__instance_create_from(aimx_instance *inst, const aimx_config *c, int slot,
                           aimx_diag *d)
{
    size_t before = d->count;
    aimx_status st;

    memset(&inst->host, 0, sizeof inst->host);
    inst->host.config = c;
    inst->host.plugin_name = inst->plugin.name;
    inst->host.group_name = aimx__slot_name(slot);
    inst->host.group = c->slot_group[slot];
    inst->host.diag = d;
    inst->host.creating = 1;
    inst->instance = NULL;
    st = inst->plugin.desc.create(&host_api, &inst->host, &inst->instance);
    inst->host.creating = 0;
    if (st != AIMX_OK) {
        if (d->count == before) {
            char where[PATH_MAX + 32];
            aimx__config_where(c, inst->host.group, where, sizeof where);
            aimx__diag_add(
                d,
                "%s: plugin '%s' (%s) could not start (status "
                "%d); see the messages above",
                where, inst->plugin.name,
                inst->plugin.builtin ? "built in" : inst->plugin.path, (int)st);
        }
        return 78;
    }
    inst->created = 1;
    aimx__config_check_known(c, inst->host.group, inst->host.group_name,
                             inst->host.known, inst->host.known_count, d);
    return d->count > before ? 78 : 0;
}

int
aimx__instance_create(aimx_instance *inst, const aimx_config *c, int slot,
                      aimx_diag *d)
{
    char err[2048];

    memset(inst, 0, sizeof *inst);
    if (aimx__plugin_load(c->plugin_dirs, c->plugin_dir_count,
                          c->slot_plugin[slot], aimx__slot_kind(slot),
                          &inst->plugin, err, sizeof err) != 0) {
        aimx__diag_add(d, "%s", err);
        return 78;
    }
    return aimx__instance_create_from(inst, c, slot, d);
}

void
aimx__instance_destroy(aimx_instance *inst)
{
    if (inst->created && inst->plugin.desc.destroy != NULL)
        inst->plugin.desc.destroy(inst->instance);
    inst->created = 0;
    for (size_t i = 0; i < inst->host.known_count; i++)
        free(inst->host.known[i]);
    free(inst->host.known);
    inst->host.known = NULL;
    inst->host.known_count = inst->host.known_cap = 0;
}
