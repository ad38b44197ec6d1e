/* SPDX-License-Identifier: MIT */
/* aimx.conf: reading, top-level validation, and lookups for plugin groups. */
#ifndef AIMX_CONFIG_H
#define AIMX_CONFIG_H

#include "diag.h"

#include <libconfig.h>
#include <stddef.h>
#include <stdint.h>

enum aimx_slot {
    AIMX_SLOT_RESOLVER = 0,
    AIMX_SLOT_POLICY = 1,
    AIMX_SLOT_TRANSPORT = 2,
    AIMX_SLOT_COUNT = 3
};

typedef struct aimx_config {
    config_t lc;
    int have_file;         /* 0: running on built-in defaults */
    char *path;            /* the file that was read, or NULL */
    char *domain;          /* effective value */
    int domain_is_default; /* taken from the host name */
    int enable_ipv6;
    int allow_private_targets; /* connect to non-global addresses too */
    int max_addresses_per_host;
    int max_mx_hosts;
    int max_parallel;        /* delivery sessions at once */
    int max_per_destination; /* ... to one MX host name */
    char **plugin_dirs;      /* AIMX_PLUGIN_PATH entries first */
    size_t plugin_dir_count;
    int syslog;
    int syslog_facility;                           /* LOG_* */
    char *slot_plugin[AIMX_SLOT_COUNT];            /* plugin name per slot */
    config_setting_t *slot_group[AIMX_SLOT_COUNT]; /* NULL when absent */
    char *spool_dir;            /* where unnamed spool files are made */
    int dkim;                   /* the dkim group is present: sign */
    char *dkim_selector;        /* s=; set when dkim */
    char *dkim_key_file;        /* absolute; set when dkim */
    char *dkim_public_key_file; /* absolute, or NULL */
    char *verify_target;        /* "HOST[:PORT]" for aimx verify, or NULL */
} aimx_config;

const char *aimx__slot_name(int slot);
uint32_t aimx__slot_kind(int slot);
const char *aimx__kind_name(uint32_t kind);

/* The file aimx reads when neither --config nor AIMX_CONFIG names one. */
const char *aimx__config_default_path(void);

/*
 * Reads path (NULL: the default file, which may be absent) and checks every
 * top-level key.  Problems go to d as "FILE:LINE: message".  Returns 0, or
 * the exit code (78).  Call aimx__config_free() afterwards either way.
 */
int aimx__config_load(aimx_config *c, const char *path, int path_is_explicit,
                      aimx_diag *d);
void aimx__config_free(aimx_config *c);

/* "FILE:LINE" of a setting (or of the file, for NULL). */
void aimx__config_where(const aimx_config *c, const config_setting_t *s,
                        char *buf, size_t len);

/*
 * Follows a plugin path ("timeouts.connect", "servers[1]") from group.
 * Returns NULL when absent; sets *malformed when the path is not valid.
 */
config_setting_t *aimx__config_lookup_path(config_setting_t *group,
                                           const char *path, int *malformed);

/*
 * After a plugin's create(): every setting of its group must have been asked
 * for (known[] holds the paths asked for, found or not).
 */
void aimx__config_check_known(const aimx_config *c, config_setting_t *group,
                              const char *group_name, char *const *known,
                              size_t known_count, aimx_diag *d);

/* A host name in LDH form (A-labels), without a trailing dot. */
int aimx__valid_hostname(const char *name);
/* A plugin name: [a-z0-9-]+, at most 64 octets. */
int aimx__valid_plugin_name(const char *name);

/* Pure helper behind the wrapped-integer check, for unit tests: does the
 * integer literal of setting `name` on `line` equal value?  When `name`
 * holds a list ("name = [ ... ]"), or is NULL (a line inside a list), the
 * rank-th literal is the one compared. */
int aimx__int_literal_matches(const char *line, const char *name, unsigned rank,
                              long long value);

#endif
