/* SPDX-License-Identifier: MIT */
/* Finding, loading and checking plugins.  Every libltdl call lives in
 * loader.c behind one lock. */
#ifndef AIMX_LOADER_H
#define AIMX_LOADER_H

#include <aimx/plugin.h>

#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct aimx_plugin {
    char name[65];
    char path[PATH_MAX]; /* "" when built in */
    int builtin;
    aimx_plugin_descriptor desc; /* zero-extended copy */
    aimx_resolver_ops resolver;  /* zero-extended copies of the ops */
    aimx_policy_ops policy;
    aimx_transport_ops transport;
} aimx_plugin;

enum aimx_listing_status {
    AIMX_LISTING_OK = 0,
    AIMX_LISTING_REFUSED = 1,
    AIMX_LISTING_SHADOWED = 2
};

typedef struct aimx_plugin_listing {
    char name[256];
    char path[PATH_MAX]; /* "" when built in */
    int builtin;         /* linked into this binary (AIMX_BUILTIN_PLUGINS) */
    int status;          /* enum aimx_listing_status */
    char reason[1024];
    uint32_t kind; /* 0 when unknown */
    uint32_t abi_major, abi_minor;
    char version[64];
    char description[256];
} aimx_plugin_listing;

/*
 * Loads plugin `name` for a slot of `kind`: the plugin of that name linked
 * into this binary if there is one (see aimx__builtin_count), else the one
 * in the first directory that has <dir>/<name>.so.  Whichever is found
 * first is used even when it is then refused.  On failure returns -1 with
 * a sentence in err that names the file or the built-in plugin (or, when
 * absent, every directory searched).
 */
int aimx__plugin_load(char *const *dirs, size_t dir_count, const char *name,
                      uint32_t kind, aimx_plugin *out, char *err,
                      size_t errlen);

/* Loads one file; kind 0 accepts any kind. */
int aimx__plugin_load_file(const char *path, uint32_t kind, aimx_plugin *out,
                           char *err, size_t errlen);

/*
 * Built-in plugins: those linked into this binary and listed in its
 * libltdl preloaded-symbol table (aimx__preloaded_symbols, which
 * cmake/AimxBuiltins.cmake generates into the aimx program; a program
 * without one, such as a unit test, has no built-in plugins).  Names come
 * in table order.  aimx__builtin_name copies the i-th one's name into
 * name and returns 0, or returns -1 past the end.
 */
size_t aimx__builtin_count(void);
int aimx__builtin_name(size_t i, char *name, size_t len);

/* Every built-in plugin, then every *.so in dirs, in search order; a file
 * named like a built-in plugin or like a file of an earlier directory is
 * listed as shadowed.  *out is malloc'ed. */
int aimx__plugin_scan(char *const *dirs, size_t dir_count,
                      aimx_plugin_listing **out, size_t *count);

/*
 * Pure checks, unit-tested on their own.
 * plugin_file_secure: may a process with this euid load a file (or use a
 * directory) with this stat result?  Root only loads root-owned files that
 * neither group nor others can write.  Returns 1 when fine; else 0 and why.
 */
int aimx__plugin_file_secure(const struct stat *st, uid_t euid, int is_dir,
                             char *why, size_t len);
/* Checks a descriptor against the host's ABI, the wanted kind (0: any) and
 * the name taken from the file.  Returns 1 when fine; else 0 and why. */
int aimx__descriptor_check(const aimx_plugin_descriptor *d,
                           const char *file_name, uint32_t kind, char *why,
                           size_t len);

#endif
