/* SPDX-License-Identifier: MIT */
#include "loader.h"

#include "config.h"
#include "log.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ltdl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The smallest descriptor an ABI 1.x plugin can have: the 1.0 fields. */
#define DESCRIPTOR_1_0_SIZE                                                    \
    (offsetof(aimx_plugin_descriptor, transport) +                             \
     sizeof(((aimx_plugin_descriptor *)0)->transport))

static int ltdl_ready(void);
static int builtin_module(const lt_dlsymlist *entry, char *name, size_t len);
static int is_builtin(const char *name);
static int name_from_path(const char *path, char *name, size_t len);
static void copy_sized(void *dst, size_t dst_size, const void *src,
                       size_t src_size);
static int check_ops(const aimx_plugin_descriptor *d, char *why, size_t len);
static int check_descriptor(const aimx_plugin_descriptor *d, const char *name,
                            int builtin, uint32_t kind, char *why, size_t len);
static aimx_plugin_entry_fn *find_entry(lt_dlhandle handle, const char *label,
                                        char *err, size_t errlen);
static int adopt(aimx_plugin_entry_fn *entry, const char *name,
                 const char *path, uint32_t kind, aimx_plugin *out, char *err,
                 size_t errlen);
static int load_builtin(const char *name, uint32_t kind, aimx_plugin *out,
                        char *err, size_t errlen);
static aimx_plugin_listing *listing_add(aimx_plugin_listing **list, size_t *n,
                                        size_t *cap);
static void listing_result(aimx_plugin_listing *e, const char *label, int rc,
                           const aimx_plugin *p, const char *err);
static int compare_names(const void *a, const void *b);

/*
 * The libltdl preloaded-symbol table of the plugins linked into this
 * program: cmake/AimxBuiltins.cmake generates it (aimx_preloaded.c) into the
 * aimx executable, as libtool's link step would (LTDL_SET_PRELOADED_SYMBOLS
 * needs libtool).  Weak, because other programs that link the core, such as
 * the unit tests, have none: then there are no built-in plugins.
 */
extern const lt_dlsymlist aimx__preloaded_symbols[] __attribute__((weak));

/* libltdl keeps global state and a global error string. */
static pthread_mutex_t ltdl_lock = PTHREAD_MUTEX_INITIALIZER;
static int ltdl_initialised;

static int
ltdl_ready(void)
{
    if (!ltdl_initialised) {
        /* lt_dlinit() hands the default table to its preopen loader, so the
         * table must be set before it, once. */
        if (aimx__preloaded_symbols != NULL &&
            lt_dlpreload_default(aimx__preloaded_symbols) != 0)
            return -1;
        if (lt_dlinit() != 0)
            return -1;
        ltdl_initialised = 1;
    }
    return 0;
}

/*
 * A module header of the table is {"<ident>.a", NULL}: libltdl looks a
 * preloaded module up by its canonical name (non-alphanumerics as '_') plus
 * ".a", the archive libtool would have linked.  Plugin names are [a-z0-9-],
 * so the plugin's name is the ident with '_' turned back into '-'.  The
 * originator ("@PROGRAM@"), symbols and anything else give -1.
 */
static int
builtin_module(const lt_dlsymlist *entry, char *name, size_t len)
{
    size_t l;

    if (entry->address != NULL || entry->name == NULL)
        return -1;
    l = strlen(entry->name);
    if (l <= 2 || l - 2 >= len || strcmp(entry->name + l - 2, ".a") != 0)
        return -1;
    for (size_t i = 0; i < l - 2; i++) {
        char c = entry->name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return -1;
        name[i] = c == '_' ? '-' : c;
    }
    name[l - 2] = '\0';
    return aimx__valid_plugin_name(name) ? 0 : -1;
}

size_t
aimx__builtin_count(void)
{
    char name[128];
    size_t n = 0;

    if (aimx__preloaded_symbols == NULL)
        return 0;
    for (const lt_dlsymlist *e = aimx__preloaded_symbols; e->name; e++)
        n += builtin_module(e, name, sizeof name) == 0;
    return n;
}

int
aimx__builtin_name(size_t i, char *name, size_t len)
{
    char found[128];

    if (aimx__preloaded_symbols == NULL)
        return -1;
    for (const lt_dlsymlist *e = aimx__preloaded_symbols; e->name; e++) {
        if (builtin_module(e, found, sizeof found) != 0)
            continue;
        if (i-- == 0) {
            if (strlen(found) >= len)
                return -1;
            memcpy(name, found, strlen(found) + 1);
            return 0;
        }
    }
    return -1;
}

static int
is_builtin(const char *name)
{
    char found[128];

    for (size_t i = 0; aimx__builtin_name(i, found, sizeof found) == 0; i++)
        if (strcmp(found, name) == 0)
            return 1;
    return 0;
}

int
aimx__plugin_file_secure(const struct stat *st, uid_t euid, int is_dir,
                         char *why, size_t len)
{
    const char *what = is_dir ? "its directory" : "the file";

    if (!is_dir && !S_ISREG(st->st_mode)) {
        snprintf(why, len, "not a regular file");
        return 0;
    }
    if (euid != 0)
        return 1; /* an ordinary user can only hurt itself */
    if (st->st_uid != 0) {
        snprintf(why, len,
                 "%s is owned by uid %lu, not root: root loads only "
                 "root-owned plugins",
                 what, (unsigned long)st->st_uid);
        return 0;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(why, len,
                 "%s is %s-writable (mode %04o): root loads only plugins "
                 "that nobody else can replace",
                 what, (st->st_mode & S_IWOTH) ? "world" : "group",
                 (unsigned)(st->st_mode & 07777));
        return 0;
    }
    return 1;
}

static int
check_ops(const aimx_plugin_descriptor *d, char *why, size_t len)
{
    const void *mine = NULL;
    int others = 0;

    switch (d->kind) {
    case AIMX_KIND_RESOLVER:
        mine = d->resolver;
        others = d->policy != NULL || d->transport != NULL;
        break;
    case AIMX_KIND_POLICY:
        mine = d->policy;
        others = d->resolver != NULL || d->transport != NULL;
        break;
    case AIMX_KIND_TRANSPORT:
        mine = d->transport;
        others = d->resolver != NULL || d->policy != NULL;
        break;
    }
    if (mine == NULL) {
        snprintf(why, len, "its %s operations table is missing",
                 aimx__kind_name(d->kind));
        return 0;
    }
    if (others) {
        snprintf(why, len, "it sets operations tables of another kind than %s",
                 aimx__kind_name(d->kind));
        return 0;
    }
    /* Every ops table starts with its size; the 1.0 required slots must lie
     * inside it and be set. */
    switch (d->kind) {
    case AIMX_KIND_RESOLVER: {
        const aimx_resolver_ops *o = d->resolver;
        if (o->struct_size < offsetof(aimx_resolver_ops, cancel) ||
            o->lookup == NULL) {
            snprintf(why, len, "required operation lookup() is missing");
            return 0;
        }
        break;
    }
    case AIMX_KIND_POLICY: {
        const aimx_policy_ops *o = d->policy;
        if (o->struct_size < offsetof(aimx_policy_ops, families) ||
            o->select == NULL) {
            snprintf(why, len, "required operation select() is missing");
            return 0;
        }
        if (o->struct_size < sizeof *o || o->families == NULL) {
            snprintf(why, len, "required operation families() is missing");
            return 0;
        }
        break;
    }
    case AIMX_KIND_TRANSPORT: {
        const aimx_transport_ops *o = d->transport;
        const char *missing = NULL;
        if (o->struct_size < offsetof(aimx_transport_ops, probe))
            missing = "open(), send() and close()";
        else if (o->open == NULL)
            missing = "open()";
        else if (o->send == NULL)
            missing = "send()";
        else if (o->close == NULL)
            missing = "close()";
        if (missing != NULL) {
            snprintf(why, len, "required operation %s is missing", missing);
            return 0;
        }
        break;
    }
    }
    return 1;
}

int
aimx__descriptor_check(const aimx_plugin_descriptor *d, const char *file_name,
                       uint32_t kind, char *why, size_t len)
{
    return check_descriptor(d, file_name, 0, kind, why, len);
}

/* name: the file's name without ".so", or the built-in module's name. */
static int
check_descriptor(const aimx_plugin_descriptor *d, const char *name, int builtin,
                 uint32_t kind, char *why, size_t len)
{
    if (d == NULL) {
        snprintf(why, len, "its entry function returned no descriptor");
        return 0;
    }
    /* struct_size, abi_major and abi_minor keep their place in every major. */
    if (d->struct_size < 3 * sizeof(uint32_t)) {
        snprintf(why, len, "its descriptor is malformed (struct_size %u)",
                 (unsigned)d->struct_size);
        return 0;
    }
    if (d->abi_major != AIMX_ABI_MAJOR) {
        snprintf(why, len,
                 "it was built for plugin ABI %u.%u; this aimx speaks ABI "
                 "%d.%d: rebuild it against this aimx's SDK",
                 (unsigned)d->abi_major, (unsigned)d->abi_minor, AIMX_ABI_MAJOR,
                 AIMX_ABI_MINOR);
        return 0;
    }
    if (d->abi_minor > AIMX_ABI_MINOR) {
        snprintf(why, len,
                 "it needs plugin ABI %u.%u, newer than this aimx's %d.%d: "
                 "upgrade aimx or use a build of the plugin for ABI %d.%d",
                 (unsigned)d->abi_major, (unsigned)d->abi_minor, AIMX_ABI_MAJOR,
                 AIMX_ABI_MINOR, AIMX_ABI_MAJOR, AIMX_ABI_MINOR);
        return 0;
    }
    if (d->struct_size < DESCRIPTOR_1_0_SIZE) {
        snprintf(why, len,
                 "its descriptor is too small for ABI %u.%u (%u bytes, "
                 "expected at least %zu)",
                 (unsigned)d->abi_major, (unsigned)d->abi_minor,
                 (unsigned)d->struct_size, DESCRIPTOR_1_0_SIZE);
        return 0;
    }
    if (d->name == NULL || !aimx__valid_plugin_name(d->name)) {
        snprintf(why, len, "its descriptor has no valid name ([a-z0-9-]+)");
        return 0;
    }
    if (name != NULL && strcmp(d->name, name) != 0) {
        if (builtin)
            snprintf(why, len,
                     "its descriptor names it '%s' but it was built in as "
                     "'%s': AIMX_BUILTIN_PLUGINS must name plugins as their "
                     "descriptors do",
                     d->name, name);
        else
            snprintf(why, len,
                     "its descriptor names it '%s' but the file is '%s.so': "
                     "a plugin's file must be named after it",
                     d->name, name);
        return 0;
    }
    if (d->kind != AIMX_KIND_RESOLVER && d->kind != AIMX_KIND_POLICY &&
        d->kind != AIMX_KIND_TRANSPORT) {
        snprintf(why, len, "its kind %u is not one this aimx knows",
                 (unsigned)d->kind);
        return 0;
    }
    if (kind != 0 && d->kind != kind) {
        snprintf(why, len,
                 "it is a %s plugin, but it was configured where a %s plugin "
                 "belongs",
                 aimx__kind_name(d->kind), aimx__kind_name(kind));
        return 0;
    }
    if (d->create == NULL || d->destroy == NULL) {
        snprintf(why, len, "required operation %s is missing",
                 d->create == NULL ? "create()" : "destroy()");
        return 0;
    }
    return check_ops(d, why, len);
}

static int
name_from_path(const char *path, char *name, size_t len)
{
    const char *base = strrchr(path, '/');
    size_t l;

    base = base ? base + 1 : path;
    l = strlen(base);
    if (l <= 3 || strcmp(base + l - 3, ".so") != 0 || l - 3 >= len)
        return -1;
    memcpy(name, base, l - 3);
    name[l - 3] = '\0';
    return 0;
}

/* A reader of a minor-N struct treats what lies past struct_size as zero. */
static void
copy_sized(void *dst, size_t dst_size, const void *src, size_t src_size)
{
    memset(dst, 0, dst_size);
    memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
}

/*
 * The entry function of an open module: "aimx_plugin_v1", which lt_dlsym()
 * tries as "<module>_LTX_aimx_plugin_v1" first (the only name a built-in
 * plugin has).  When it is missing, err tells another major's entry apart
 * from no entry at all.  Called with ltdl_lock held.
 */
static aimx_plugin_entry_fn *
find_entry(lt_dlhandle handle, const char *label, char *err, size_t errlen)
{
    aimx_plugin_entry_fn *entry;
    int other = 0;

    *(void **)&entry = lt_dlsym(handle, AIMX_PLUGIN_ENTRY_SYMBOL);
    if (entry != NULL)
        return entry;
    for (int major = 0; major <= 9 && !other; major++) {
        char sym[32];
        if (major == AIMX_ABI_MAJOR)
            continue;
        snprintf(sym, sizeof sym, "aimx_plugin_v%d", major);
        if (lt_dlsym(handle, sym) != NULL)
            other = major ? major : -1;
    }
    (void)lt_dlerror();
    if (other > 0)
        snprintf(err, errlen,
                 "%s: refused: it was built for plugin ABI %d; this aimx "
                 "speaks ABI %d.%d",
                 label, other, AIMX_ABI_MAJOR, AIMX_ABI_MINOR);
    else
        snprintf(err, errlen,
                 "%s: refused: it exports no %s entry (not an aimx "
                 "plugin, or not built with AIMX_PLUGIN_DEFINE)",
                 label, AIMX_PLUGIN_ENTRY_SYMBOL);
    return NULL;
}

/*
 * Calls the entry, checks the descriptor and keeps zero-extended copies.
 * path is NULL for a built-in plugin, whose messages name it instead.
 */
static int
adopt(aimx_plugin_entry_fn *entry, const char *name, const char *path,
      uint32_t kind, aimx_plugin *out, char *err, size_t errlen)
{
    char why[768];
    const aimx_plugin_descriptor *d = entry();

    if (!check_descriptor(d, name, path == NULL, kind, why, sizeof why)) {
        if (path != NULL)
            snprintf(err, errlen, "%s: refused: %s", path, why);
        else
            snprintf(err, errlen, "built-in plugin '%s': refused: %s", name,
                     why);
        return -1;
    }
    snprintf(out->name, sizeof out->name, "%.64s", name);
    snprintf(out->path, sizeof out->path, "%s", path ? path : "");
    out->builtin = path == NULL;
    copy_sized(&out->desc, sizeof out->desc, d, d->struct_size);
    if (d->resolver)
        copy_sized(&out->resolver, sizeof out->resolver, d->resolver,
                   d->resolver->struct_size);
    if (d->policy)
        copy_sized(&out->policy, sizeof out->policy, d->policy,
                   d->policy->struct_size);
    if (d->transport)
        copy_sized(&out->transport, sizeof out->transport, d->transport,
                   d->transport->struct_size);
    return 0;
}

int
aimx__plugin_load_file(const char *path, uint32_t kind, aimx_plugin *out,
                       char *err, size_t errlen)
{
    char name[256], why[768], dir[PATH_MAX];
    struct stat st;
    lt_dladvise advise;
    lt_dlhandle handle;
    aimx_plugin_entry_fn *entry;

    memset(out, 0, sizeof *out);
    if (path[0] != '/') {
        snprintf(err, errlen, "%s: plugins are loaded by absolute path only",
                 path);
        return -1;
    }
    if (name_from_path(path, name, sizeof name) != 0 ||
        !aimx__valid_plugin_name(name)) {
        snprintf(err, errlen,
                 "%s: not a valid plugin file name (<name>.so, the name made "
                 "of a-z, 0-9 and '-')",
                 path);
        return -1;
    }
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!aimx__plugin_file_secure(&st, geteuid(), 0, why, sizeof why)) {
        snprintf(err, errlen, "%s: refused: %s", path, why);
        return -1;
    }
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    if (stat(dir[0] ? dir : "/", &st) != 0 ||
        !aimx__plugin_file_secure(&st, geteuid(), 1, why, sizeof why)) {
        snprintf(err, errlen, "%s: refused: %s", path, why);
        return -1;
    }

    pthread_mutex_lock(&ltdl_lock);
    if (ltdl_ready() != 0) {
        pthread_mutex_unlock(&ltdl_lock);
        snprintf(err, errlen, "%s: cannot initialise libltdl", path);
        return -1;
    }
    lt_dladvise_init(&advise);
    lt_dladvise_local(&advise);
    lt_dladvise_resident(&advise);
    handle = lt_dlopenadvise(path, advise);
    lt_dladvise_destroy(&advise);
    if (handle == NULL) {
        /* libltdl reports "file not found" for a file that exists but cannot
         * be loaded: ask the dynamic linker for the real reason. */
        const char *lt_msg = lt_dlerror();
        void *probe = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (probe == NULL)
            snprintf(err, errlen, "%s: cannot be loaded: %s", path, dlerror());
        else
            snprintf(err, errlen, "%s: cannot be loaded: %s", path,
                     lt_msg ? lt_msg : "unknown libltdl error");
        pthread_mutex_unlock(&ltdl_lock);
        /* probe is left open: unloading could run foreign destructors. */
        return -1;
    }
    entry = find_entry(handle, path, err, errlen);
    pthread_mutex_unlock(&ltdl_lock);
    if (entry == NULL)
        return -1;
    return adopt(entry, name, path, kind, out, err, errlen);
}

/*
 * Opens a plugin from the preloaded table by its bare name.  Preload-only
 * advice keeps libltdl away from the file system: a bare name would
 * otherwise be searched in LTDL_LIBRARY_PATH and LD_LIBRARY_PATH.  The
 * descriptor gets the same checks as a file's.
 */
static int
load_builtin(const char *name, uint32_t kind, aimx_plugin *out, char *err,
             size_t errlen)
{
    char label[128];
    lt_dladvise advise;
    lt_dlhandle handle;
    aimx_plugin_entry_fn *entry;

    memset(out, 0, sizeof *out);
    snprintf(label, sizeof label, "built-in plugin '%.64s'", name);
    pthread_mutex_lock(&ltdl_lock);
    if (ltdl_ready() != 0) {
        pthread_mutex_unlock(&ltdl_lock);
        snprintf(err, errlen, "%s: cannot initialise libltdl", label);
        return -1;
    }
    lt_dladvise_init(&advise);
    lt_dladvise_preload(&advise);
    lt_dladvise_local(&advise);
    lt_dladvise_resident(&advise);
    handle = lt_dlopenadvise(name, advise);
    lt_dladvise_destroy(&advise);
    if (handle == NULL) {
        const char *lt_msg = lt_dlerror();
        snprintf(err, errlen,
                 "%s: cannot be opened from the preloaded symbol table: %s",
                 label, lt_msg ? lt_msg : "unknown libltdl error");
        pthread_mutex_unlock(&ltdl_lock);
        return -1;
    }
    entry = find_entry(handle, label, err, errlen);
    pthread_mutex_unlock(&ltdl_lock);
    if (entry == NULL)
        return -1;
    return adopt(entry, name, NULL, kind, out, err, errlen);
}

int
aimx__plugin_load(char *const *dirs, size_t dir_count, const char *name,
                  uint32_t kind, aimx_plugin *out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    size_t used;

    if (!aimx__valid_plugin_name(name)) {
        snprintf(err, errlen, "'%s' is not a valid plugin name", name);
        return -1;
    }
    /* Built in first: the binary was linked with it on purpose, and a file
     * of the same name is shadowed (aimx plugins says so). */
    if (is_builtin(name))
        return load_builtin(name, kind, out, err, errlen);
    for (size_t i = 0; i < dir_count; i++) {
        if (snprintf(path, sizeof path, "%s/%s.so", dirs[i], name) >=
            (int)sizeof path)
            continue;
        if (access(path, F_OK) == 0)
            return aimx__plugin_load_file(path, kind, out, err, errlen);
    }
    used = (size_t)snprintf(err, errlen,
                            "%s plugin '%s' not found (looked for %s.so in",
                            aimx__kind_name(kind), name, name);
    for (size_t i = 0; i < dir_count && used < errlen; i++)
        used += (size_t)snprintf(err + used, errlen - used, "%s %s",
                                 i ? "," : "", dirs[i]);
    if (used < errlen)
        snprintf(err + used, errlen - used, ")");
    return -1;
}

static int
compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A new zeroed element at the end of *list, or NULL when out of memory. */
static aimx_plugin_listing *
listing_add(aimx_plugin_listing **list, size_t *n, size_t *cap)
{
    aimx_plugin_listing *e;

    if (*n == *cap) {
        size_t grown_cap = *cap ? *cap * 2 : 16;
        aimx_plugin_listing *grown = realloc(*list, grown_cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        *list = grown;
        *cap = grown_cap;
    }
    e = &(*list)[(*n)++];
    memset(e, 0, sizeof *e);
    return e;
}

/* Fills in what loading gave: the descriptor's facts, or the reason. */
static void
listing_result(aimx_plugin_listing *e, const char *label, int rc,
               const aimx_plugin *p, const char *err)
{
    if (rc != 0) {
        /* The path (or name) is printed beside the reason already. */
        const char *r = err;
        size_t pl = strlen(label);
        e->status = AIMX_LISTING_REFUSED;
        if (strncmp(r, label, pl) == 0 && r[pl] == ':')
            r += pl + 1 + (r[pl + 1] == ' ');
        if (strncmp(r, "refused: ", 9) == 0)
            r += 9;
        snprintf(e->reason, sizeof e->reason, "%.1000s", r);
        return;
    }
    e->kind = p->desc.kind;
    e->abi_major = p->desc.abi_major;
    e->abi_minor = p->desc.abi_minor;
    snprintf(e->version, sizeof e->version, "%s",
             p->desc.version ? p->desc.version : "");
    snprintf(e->description, sizeof e->description, "%s",
             p->desc.description ? p->desc.description : "");
}

int
aimx__plugin_scan(char *const *dirs, size_t dir_count,
                  aimx_plugin_listing **out, size_t *count)
{
    aimx_plugin_listing *list = NULL;
    size_t n = 0, cap = 0;
    char name[128];

    for (size_t i = 0; aimx__builtin_name(i, name, sizeof name) == 0; i++) {
        aimx_plugin_listing *e = listing_add(&list, &n, &cap);
        aimx_plugin p;
        char err[1024], label[128];
        int rc;

        if (e == NULL)
            break;
        snprintf(e->name, sizeof e->name, "%s", name);
        e->builtin = 1;
        snprintf(label, sizeof label, "built-in plugin '%.64s'", name);
        rc = load_builtin(name, 0, &p, err, sizeof err);
        listing_result(e, label, rc, &p, err);
    }

    for (size_t i = 0; i < dir_count; i++) {
        DIR *dh = opendir(dirs[i]);
        char **names = NULL;
        size_t nn = 0, ncap = 0;
        struct dirent *de;

        if (dh == NULL) {
            aimx__debug("plugin directory %s: %s", dirs[i], strerror(errno));
            continue;
        }
        while ((de = readdir(dh)) != NULL) {
            size_t l = strlen(de->d_name);
            if (l <= 3 || strcmp(de->d_name + l - 3, ".so") != 0)
                continue;
            if (nn == ncap) {
                ncap = ncap ? ncap * 2 : 16;
                char **grown = realloc(names, ncap * sizeof *grown);
                if (grown == NULL)
                    break;
                names = grown;
            }
            names[nn++] = strdup(de->d_name);
        }
        closedir(dh);
        if (nn > 1)
            qsort(names, nn, sizeof *names, compare_names);

        for (size_t k = 0; k < nn; k++) {
            aimx_plugin_listing *e = listing_add(&list, &n, &cap);
            aimx_plugin p;
            char err[1024];
            int rc;

            if (e == NULL)
                break;
            snprintf(e->path, sizeof e->path, "%s/%s", dirs[i], names[k]);
            snprintf(e->name, sizeof e->name, "%.*s",
                     (int)(strlen(names[k]) - 3), names[k]);
            for (size_t j = 0; j + 1 < n; j++) {
                if (list[j].status != AIMX_LISTING_SHADOWED &&
                    strcmp(list[j].name, e->name) == 0) {
                    e->status = AIMX_LISTING_SHADOWED;
                    if (list[j].builtin)
                        snprintf(e->reason, sizeof e->reason,
                                 "shadowed by the built-in plugin %.200s",
                                 list[j].name);
                    else
                        snprintf(e->reason, sizeof e->reason,
                                 "shadowed by %.1000s", list[j].path);
                    break;
                }
            }
            if (e->status == AIMX_LISTING_SHADOWED)
                continue;
            rc = aimx__plugin_load_file(e->path, 0, &p, err, sizeof err);
            listing_result(e, e->path, rc, &p, err);
        }
        for (size_t k = 0; k < nn; k++)
            free(names[k]);
        free(names);
    }
    *out = list;
    *count = n;
    return 0;
}
