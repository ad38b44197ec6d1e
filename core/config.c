/* SPDX-License-Identifier: MIT */
#include "config.h"

#include "hostport.h"
#include "log.h"

#include <aimx/plugin.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#ifndef AIMX_DEFAULT_CONFIG
#define AIMX_DEFAULT_CONFIG "/etc/aimx/aimx.conf"
#endif
#ifndef AIMX_DEFAULT_PLUGIN_DIR
#define AIMX_DEFAULT_PLUGIN_DIR "/usr/lib/aimx/plugins"
#endif
#define AIMX_DEFAULT_SPOOL_DIR "/var/tmp"

enum key_type { KEY_STRING, KEY_BOOL, KEY_STRING_LIST, KEY_GROUP, KEY_INT };

struct key_spec {
    const char *name;
    enum key_type type;
    long long min, max; /* KEY_INT only */
};

#define KEY(name, type)                                                        \
    {                                                                          \
        name, type, 0, 0                                                       \
    }
static const struct key_spec top_keys[] = {
    KEY("domain", KEY_STRING),
    KEY("enable_ipv6", KEY_BOOL),
    KEY("plugin_dirs", KEY_STRING_LIST),
    KEY("syslog", KEY_BOOL),
    KEY("syslog_facility", KEY_STRING),
    KEY("resolver", KEY_GROUP),
    KEY("policy", KEY_GROUP),
    KEY("transport", KEY_GROUP),
    KEY("dkim", KEY_GROUP),
    KEY("allow_private_targets", KEY_BOOL),
    {"max_addresses_per_host", KEY_INT, 1, 64},
    {"max_mx_hosts", KEY_INT, 1, 100},
    {"max_parallel", KEY_INT, 1, 1000},
    {"max_per_destination", KEY_INT, 1, 100},
    KEY("spool_dir", KEY_STRING),
    KEY("verify_target", KEY_STRING),
};

static const struct key_spec dkim_keys[] = {
    KEY("selector", KEY_STRING),
    KEY("key_file", KEY_STRING),
    KEY("public_key_file", KEY_STRING),
};
#undef KEY

static const char *const slot_names[AIMX_SLOT_COUNT] = {"resolver", "policy",
                                                        "transport"};
static const char *const default_plugins[AIMX_SLOT_COUNT] = {
    "resolver-cares", "policy-ipfamily", "transport-smtp"};

static const char *type_phrase(enum key_type t);
static int type_matches(const config_setting_t *s, enum key_type t);
static const struct key_spec *find_spec(const struct key_spec *specs, size_t n,
                                        const char *name);
static void check_keys(aimx_config *c, config_setting_t *group,
                       const char *group_name, const struct key_spec *specs,
                       size_t n, aimx_diag *d);
static void check_int_literals(aimx_config *c, config_setting_t *s,
                               aimx_diag *d);
static int read_source_line(const char *file, unsigned line, char *buf,
                            size_t len);
static const char *suggest(const char *name, const char *const *candidates,
                           size_t n);
static size_t edit_distance(const char *a, const char *b);
static int add_plugin_dir(aimx_config *c, const char *dir);
static char *default_domain(void);
static void apply_top_level(aimx_config *c, aimx_diag *d);
static void apply_dkim(aimx_config *c, config_setting_t *group, aimx_diag *d);
static char *absolute_path(aimx_config *c, config_setting_t *s,
                           const char *name, aimx_diag *d);

const char *
aimx__slot_name(int slot)
{
    return slot >= 0 && slot < AIMX_SLOT_COUNT ? slot_names[slot] : "?";
}

uint32_t
aimx__slot_kind(int slot)
{
    switch (slot) {
    case AIMX_SLOT_RESOLVER:
        return AIMX_KIND_RESOLVER;
    case AIMX_SLOT_POLICY:
        return AIMX_KIND_POLICY;
    default:
        return AIMX_KIND_TRANSPORT;
    }
}

const char *
aimx__kind_name(uint32_t kind)
{
    switch (kind) {
    case AIMX_KIND_RESOLVER:
        return "resolver";
    case AIMX_KIND_POLICY:
        return "policy";
    case AIMX_KIND_TRANSPORT:
        return "transport";
    default:
        return "unknown";
    }
}

const char *
aimx__config_default_path(void)
{
    return AIMX_DEFAULT_CONFIG;
}

int
aimx__valid_plugin_name(const char *name)
{
    size_t n = 0;

    for (const char *p = name; *p; p++, n++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-'))
            return 0;
    return n > 0 && n <= 64;
}

int
aimx__valid_hostname(const char *name)
{
    size_t label = 0, total = 0;
    char prev = '.';

    for (const char *p = name; *p; p++, total++) {
        if (*p == '.') {
            if (label == 0 || prev == '-')
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-') {
            if (label == 0 && *p == '-')
                return 0;
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
        prev = *p;
    }
    return total > 0 && total <= 253 && label > 0 && prev != '-';
}

void
aimx__config_where(const aimx_config *c, const config_setting_t *s, char *buf,
                   size_t len)
{
    const char *file = s ? config_setting_source_file(s) : NULL;
    unsigned line = s ? config_setting_source_line(s) : 0;

    if (file == NULL)
        file = c->path ? c->path : "(built-in defaults)";
    if (line > 0)
        snprintf(buf, len, "%s:%u", file, line);
    else
        snprintf(buf, len, "%s", file);
}

static const char *
type_phrase(enum key_type t)
{
    switch (t) {
    case KEY_STRING:
        return "a string";
    case KEY_BOOL:
        return "a boolean (true or false)";
    case KEY_STRING_LIST:
        return "a list of strings, like [ \"/a\", \"/b\" ]";
    case KEY_INT:
        return "an integer";
    default:
        return "a group, like { ... }";
    }
}

static int
type_matches(const config_setting_t *s, enum key_type t)
{
    switch (t) {
    case KEY_STRING:
        return config_setting_type(s) == CONFIG_TYPE_STRING;
    case KEY_BOOL:
        return config_setting_type(s) == CONFIG_TYPE_BOOL;
    case KEY_GROUP:
        return config_setting_is_group(s);
    case KEY_INT:
        return config_setting_type(s) == CONFIG_TYPE_INT ||
               config_setting_type(s) == CONFIG_TYPE_INT64;
    case KEY_STRING_LIST:
        if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
            return 0;
        for (int i = 0; i < config_setting_length(s); i++)
            if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) !=
                CONFIG_TYPE_STRING)
                return 0;
        return 1;
    }
    return 0;
}

static const struct key_spec *
find_spec(const struct key_spec *specs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(specs[i].name, name) == 0)
            return &specs[i];
    return NULL;
}

/* Levenshtein distance, for "did you mean" on misspelled keys. */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65];

    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *
suggest(const char *name, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3; /* farther than two edits is not a typo */

    for (size_t i = 0; i < n; i++) {
        size_t dist = edit_distance(name, candidates[i]);
        if (dist < best_d) {
            best_d = dist;
            best = candidates[i];
        }
    }
    return best;
}

static void
check_keys(aimx_config *c, config_setting_t *group, const char *group_name,
           const struct key_spec *specs, size_t n, aimx_diag *d)
{
    char where[PATH_MAX + 32];
    const char *names[16];

    for (size_t i = 0; i < n && i < 16; i++)
        names[i] = specs[i].name;
    for (int i = 0; i < config_setting_length(group); i++) {
        config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(s);
        const struct key_spec *spec = find_spec(specs, n, name);

        aimx__config_where(c, s, where, sizeof where);
        if (spec == NULL) {
            const char *hint = suggest(name, names, n < 16 ? n : 16);
            char in_group[80] = "";
            if (group_name != NULL)
                snprintf(in_group, sizeof in_group, " in group '%s'",
                         group_name);
            if (hint != NULL)
                aimx__diag_add(
                    d, "%s: unknown setting '%s'%s (did you mean '%s'?)", where,
                    name, in_group, hint);
            else
                aimx__diag_add(d, "%s: unknown setting '%s'%s", where, name,
                               in_group);
        } else if (!type_matches(s, spec->type)) {
            aimx__diag_add(d, "%s: '%s' must be %s", where, name,
                           type_phrase(spec->type));
        } else if (spec->type == KEY_INT) {
            long long v = config_setting_get_int64(s);
            if (config_setting_type(s) == CONFIG_TYPE_INT)
                v = config_setting_get_int(s);
            if (v < spec->min || v > spec->max)
                aimx__diag_add(d,
                               "%s: '%s' must be between %lld and %lld (it "
                               "is %lld)",
                               where, name, spec->min, spec->max, v);
        }
    }
}

/* Reads one line of a config file; the file is small and read at start-up. */
static int
read_source_line(const char *file, unsigned line, char *buf, size_t len)
{
    FILE *f = fopen(file, "r");
    unsigned n = 0;
    int found = 0;

    if (f == NULL)
        return -1;
    while (fgets(buf, (int)len, f) != NULL) {
        size_t l = strlen(buf);
        int complete = l > 0 && buf[l - 1] == '\n';
        if (++n == line) {
            found = 1;
            break;
        }
        /* A line longer than buf: skip the rest of it. */
        while (!complete && fgets(buf, (int)len, f) != NULL) {
            l = strlen(buf);
            complete = l > 0 && buf[l - 1] == '\n';
        }
    }
    fclose(f);
    return found ? 0 : -1;
}

static int
parse_literal(const char *p, long long *out, const char **end)
{
    char *e;
    int neg = 0;

    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    if (!isdigit((unsigned char)*p))
        return -1;
    errno = 0;
    unsigned long long v;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        v = strtoull(p + 2, &e, 16);
    else
        v = strtoull(p, &e, 10);
    if (errno == ERANGE || v > (unsigned long long)LLONG_MAX + neg)
        return 1; /* does not fit even in 64 bits */
    *out = neg ? (long long)(0 - v) : (long long)v;
    *end = e;
    return 0;
}

/* Finds "name =" or "name :" as a whole word; returns what follows it. */
static const char *
after_name(const char *line, const char *name)
{
    size_t nl = strlen(name);

    for (const char *p = line;;) {
        const char *hit = strstr(p, name);
        if (hit == NULL)
            return NULL;
        const char *q = hit + nl;
        int starts = hit == line || !(isalnum((unsigned char)hit[-1]) ||
                                      hit[-1] == '_' || hit[-1] == '-');
        while (*q == ' ' || *q == '\t')
            q++;
        if (starts && (*q == '=' || *q == ':')) {
            q++;
            while (*q == ' ' || *q == '\t')
                q++;
            return q;
        }
        p = hit + nl;
    }
}

int
aimx__int_literal_matches(const char *line, const char *name, unsigned rank,
                          long long value)
{
    const char *p = line;
    long long v;
    const char *end;

    if (name != NULL) {
        p = after_name(line, name);
        if (p == NULL)
            return 1; /* cannot find it: do not guess */
        if (*p != '[' && *p != '(') {
            int r = parse_literal(p, &v, &end);
            if (r < 0)
                return 1;
            return r == 0 && v == value;
        }
        p++;
    }
    /* The rank-th integer literal from here, skipping quoted strings. */
    for (unsigned seen = 0; *p;) {
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p)
                p++;
            continue;
        }
        if ((isdigit((unsigned char)*p) || *p == '-' || *p == '+') &&
            (p == line || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' ||
                            p[-1] == '.'))) {
            int r = parse_literal(p, &v, &end);
            if (r > 0 && seen == rank)
                return 0; /* does not fit even in 64 bits */
            if (r == 0) {
                if (seen++ == rank)
                    return v == value;
                p = end;
                continue;
            }
        }
        p++;
    }
    return 1;
}

/* libconfig 1.5 silently wraps integers >= 2^31 ("5000000000" reads back as
 * 705032704) and its API cannot tell: compare with the literal in the file. */
static void
check_int_literals(aimx_config *c, config_setting_t *s, aimx_diag *d)
{
    int type = config_setting_type(s);

    if (config_setting_is_aggregate(s)) {
        for (int i = 0; i < config_setting_length(s); i++)
            check_int_literals(c, config_setting_get_elem(s, (unsigned)i), d);
        return;
    }
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
        return;
    const char *file = config_setting_source_file(s);
    unsigned line = config_setting_source_line(s);
    char text[4096];
    long long value = type == CONFIG_TYPE_INT ? config_setting_get_int(s)
                                              : config_setting_get_int64(s);
    if (file == NULL || line == 0 ||
        read_source_line(file, line, text, sizeof text) != 0)
        return;
    const char *name = config_setting_name(s);
    unsigned rank = 0;
    config_setting_t *parent = config_setting_parent(s);
    if (name == NULL && parent != NULL) {
        /* A list element: its rank among the elements on its line, counted
         * from the list's "name = [" when the list starts on that line. */
        int idx = config_setting_index(s);
        for (int i = 0; i < idx; i++)
            if (config_setting_source_line(
                    config_setting_get_elem(parent, (unsigned)i)) == line)
                rank++;
        if (config_setting_source_line(parent) == line)
            name = config_setting_name(parent);
    }
    if (!aimx__int_literal_matches(text, name, rank, value)) {
        char where[PATH_MAX + 32];
        aimx__config_where(c, s, where, sizeof where);
        aimx__diag_add(d,
                       "%s: the number for '%s' is too large (integers here "
                       "must lie between -2147483648 and 2147483647)",
                       where,
                       config_setting_name(s) ? config_setting_name(s)
                                              : "list element");
    }
}

static int
add_plugin_dir(aimx_config *c, const char *dir)
{
    char **grown =
        realloc(c->plugin_dirs, (c->plugin_dir_count + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    c->plugin_dirs = grown;
    c->plugin_dirs[c->plugin_dir_count] = strdup(dir);
    if (c->plugin_dirs[c->plugin_dir_count] == NULL)
        return -1;
    c->plugin_dir_count++;
    return 0;
}

/* The host's own name, without asking DNS: a command must not send a query
 * just to learn its defaults. */
static char *
default_domain(void)
{
    char name[256];

    if (gethostname(name, sizeof name) != 0 || name[0] == '\0')
        return strdup("localhost");
    name[sizeof name - 1] = '\0';
    /* A name we could not say in EHLO is no default at all. */
    if (!aimx__valid_hostname(name))
        return strdup("localhost");
    return strdup(name);
}

static void
apply_top_level(aimx_config *c, aimx_diag *d)
{
    config_setting_t *root = config_root_setting(&c->lc);
    config_setting_t *s;
    char where[PATH_MAX + 32];
    const char *env;

    /* AIMX_PLUGIN_PATH comes first so a developer's build wins; it is
     * ignored in set-uid/set-gid processes. */
    env = secure_getenv("AIMX_PLUGIN_PATH");
    if (env != NULL && *env != '\0') {
        char *copy = strdup(env), *save = NULL;
        for (char *dir = strtok_r(copy, ":", &save); dir != NULL;
             dir = strtok_r(NULL, ":", &save)) {
            if (dir[0] != '/')
                aimx__diag_add(d,
                               "AIMX_PLUGIN_PATH: '%s' is not an absolute "
                               "directory; plugins are only loaded by absolute "
                               "path",
                               dir);
            else
                add_plugin_dir(c, dir);
        }
        free(copy);
    }

    s = config_setting_get_member(root, "plugin_dirs");
    if (s != NULL && type_matches(s, KEY_STRING_LIST)) {
        if (config_setting_length(s) == 0) {
            aimx__config_where(c, s, where, sizeof where);
            aimx__diag_add(d,
                           "%s: 'plugin_dirs' is empty; name at least one "
                           "directory",
                           where);
        }
        for (int i = 0; i < config_setting_length(s); i++) {
            config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            const char *dir = config_setting_get_string(e);
            if (dir[0] != '/') {
                aimx__config_where(c, e, where, sizeof where);
                aimx__diag_add(d,
                               "%s: plugin directory '%s' is not an "
                               "absolute path",
                               where, dir);
            } else {
                add_plugin_dir(c, dir);
            }
        }
    } else {
        add_plugin_dir(c, AIMX_DEFAULT_PLUGIN_DIR);
    }

    s = config_setting_get_member(root, "domain");
    if (s != NULL && type_matches(s, KEY_STRING)) {
        const char *v = config_setting_get_string(s);
        size_t l = strlen(v);
        c->domain = strdup(v);
        if (l > 1 && c->domain[l - 1] == '.')
            c->domain[l - 1] = '\0';
        if (!aimx__valid_hostname(c->domain)) {
            aimx__config_where(c, s, where, sizeof where);
            aimx__diag_add(d,
                           "%s: 'domain' = \"%s\" is not a valid host name "
                           "(letters, digits and '-' in dot-separated "
                           "labels; write an internationalised name in "
                           "its xn-- form)",
                           where, v);
        }
    } else {
        c->domain = default_domain();
        c->domain_is_default = 1;
    }

    s = config_setting_get_member(root, "enable_ipv6");
    c->enable_ipv6 =
        s != NULL && type_matches(s, KEY_BOOL) && config_setting_get_bool(s);
    s = config_setting_get_member(root, "allow_private_targets");
    c->allow_private_targets =
        s != NULL && type_matches(s, KEY_BOOL) && config_setting_get_bool(s);
    c->max_addresses_per_host = 5;
    s = config_setting_get_member(root, "max_addresses_per_host");
    if (s != NULL && type_matches(s, KEY_INT))
        c->max_addresses_per_host = config_setting_get_int(s);
    c->max_parallel = 8;
    s = config_setting_get_member(root, "max_parallel");
    if (s != NULL && type_matches(s, KEY_INT))
        c->max_parallel = config_setting_get_int(s);
    c->max_per_destination = 2;
    s = config_setting_get_member(root, "max_per_destination");
    if (s != NULL && type_matches(s, KEY_INT))
        c->max_per_destination = config_setting_get_int(s);
    c->max_mx_hosts = 10;
    s = config_setting_get_member(root, "max_mx_hosts");
    if (s != NULL && type_matches(s, KEY_INT))
        c->max_mx_hosts = config_setting_get_int(s);
    s = config_setting_get_member(root, "syslog");
    c->syslog =
        s != NULL && type_matches(s, KEY_BOOL) && config_setting_get_bool(s);
    c->syslog_facility = LOG_MAIL;
    s = config_setting_get_member(root, "syslog_facility");
    if (s != NULL && type_matches(s, KEY_STRING)) {
        int f = aimx__log_facility_from_name(config_setting_get_string(s));
        if (f < 0) {
            aimx__config_where(c, s, where, sizeof where);
            aimx__diag_add(d,
                           "%s: 'syslog_facility' = \"%s\" is not one of "
                           "mail, daemon, user, local0 ... local7",
                           where, config_setting_get_string(s));
        } else {
            c->syslog_facility = f;
        }
    }

    for (int slot = 0; slot < AIMX_SLOT_COUNT; slot++) {
        const char *name = default_plugins[slot];
        s = config_setting_get_member(root, slot_names[slot]);
        if (s != NULL && config_setting_is_group(s)) {
            config_setting_t *p = config_setting_get_member(s, "plugin");
            c->slot_group[slot] = s;
            if (p != NULL && config_setting_type(p) != CONFIG_TYPE_STRING) {
                aimx__config_where(c, p, where, sizeof where);
                aimx__diag_add(d, "%s: 'plugin' in group '%s' must be a string",
                               where, slot_names[slot]);
            } else if (p != NULL) {
                name = config_setting_get_string(p);
                if (!aimx__valid_plugin_name(name)) {
                    aimx__config_where(c, p, where, sizeof where);
                    aimx__diag_add(d,
                                   "%s: plugin name \"%s\" in group '%s' "
                                   "is not valid (lower-case letters, "
                                   "digits and '-', as in "
                                   "\"resolver-cares\")",
                                   where, name, slot_names[slot]);
                }
            }
        }
        c->slot_plugin[slot] = strdup(name);
    }

    s = config_setting_get_member(root, "spool_dir");
    if (s != NULL && type_matches(s, KEY_STRING))
        c->spool_dir = absolute_path(c, s, "spool_dir", d);
    if (c->spool_dir == NULL)
        c->spool_dir = strdup(AIMX_DEFAULT_SPOOL_DIR);

    /* Checked here so that a bad target is a FILE:LINE error for every
     * command, not a surprise when 'aimx verify' finally runs. */
    s = config_setting_get_member(root, "verify_target");
    if (s != NULL && type_matches(s, KEY_STRING)) {
        aimx_hostport hp;
        char why[512];
        const char *v = config_setting_get_string(s);
        if (aimx__hostport_parse(v, &hp, why, sizeof why) != 0) {
            aimx__config_where(c, s, where, sizeof where);
            aimx__diag_add(d,
                           "%s: 'verify_target' = \"%s\" is not HOST[:PORT] "
                           "or [IPv6]:PORT: %s",
                           where, v, why);
        } else {
            c->verify_target = strdup(v);
        }
    }

    s = config_setting_get_member(root, "dkim");
    if (s != NULL && config_setting_is_group(s)) {
        check_keys(c, s, "dkim", dkim_keys,
                   sizeof dkim_keys / sizeof dkim_keys[0], d);
        apply_dkim(c, s, d);
    }
}

/* A string setting that must name an absolute path (a relative one would
 * depend on the directory aimx happens to be started from).  Returns a
 * copy, or NULL after reporting. */
static char *
absolute_path(aimx_config *c, config_setting_t *s, const char *name,
              aimx_diag *d)
{
    char where[PATH_MAX + 32];
    const char *v = config_setting_get_string(s);

    if (v[0] == '/')
        return strdup(v);
    aimx__config_where(c, s, where, sizeof where);
    aimx__diag_add(d, "%s: '%s' = \"%s\" is not an absolute path", where, name,
                   v);
    return NULL;
}

/* The group's presence turns signing on, so what signing needs must be
 * there: a missing selector is found here, not when the first message is
 * refused. */
static void
apply_dkim(aimx_config *c, config_setting_t *group, aimx_diag *d)
{
    char where[PATH_MAX + 32];
    config_setting_t *s;

    c->dkim = 1;
    aimx__config_where(c, group, where, sizeof where);
    s = config_setting_get_member(group, "selector");
    if (s == NULL) {
        aimx__diag_add(d,
                       "%s: group 'dkim' needs 'selector' (the DKIM selector, "
                       "s=, as published in DNS at "
                       "<selector>._domainkey.<domain>)",
                       where);
    } else if (type_matches(s, KEY_STRING)) {
        const char *v = config_setting_get_string(s);
        if (!aimx__valid_hostname(v) || strlen(v) > 63) {
            aimx__config_where(c, s, where, sizeof where);
            aimx__diag_add(d,
                           "%s: 'selector' = \"%s\" in group 'dkim' is not "
                           "a valid selector (letters, digits and '-' in "
                           "dot-separated labels)",
                           where, v);
        } else {
            c->dkim_selector = strdup(v);
        }
    }
    aimx__config_where(c, group, where, sizeof where);
    s = config_setting_get_member(group, "key_file");
    if (s == NULL)
        aimx__diag_add(d,
                       "%s: group 'dkim' needs 'key_file' (the path of the "
                       "PEM private key used for signing)",
                       where);
    else if (type_matches(s, KEY_STRING))
        c->dkim_key_file = absolute_path(c, s, "key_file", d);
    s = config_setting_get_member(group, "public_key_file");
    if (s != NULL && type_matches(s, KEY_STRING))
        c->dkim_public_key_file = absolute_path(c, s, "public_key_file", d);
}

int
aimx__config_load(aimx_config *c, const char *path, int path_is_explicit,
                  aimx_diag *d)
{
    size_t before = d->count;

    memset(c, 0, sizeof *c);
    config_init(&c->lc);
    if (path == NULL)
        path = AIMX_DEFAULT_CONFIG;

    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT && !path_is_explicit) {
            aimx__debug("%s does not exist: running on built-in defaults",
                        path);
        } else {
            aimx__diag_add(d, "%s: cannot read the configuration file: %s",
                           path, strerror(errno));
            return 78;
        }
    } else {
        fclose(f);
        c->path = strdup(path);
        c->have_file = 1;
        if (config_read_file(&c->lc, path) != CONFIG_TRUE) {
            aimx__diag_add(
                d, "%s:%d: %s",
                config_error_file(&c->lc) ? config_error_file(&c->lc) : path,
                config_error_line(&c->lc), config_error_text(&c->lc));
            return 78;
        }
        config_setting_t *root = config_root_setting(&c->lc);
        check_keys(c, root, NULL, top_keys,
                   sizeof top_keys / sizeof top_keys[0], d);
        check_int_literals(c, root, d);
    }
    apply_top_level(c, d);
    return d->count > before ? 78 : 0;
}

void
aimx__config_free(aimx_config *c)
{
    config_destroy(&c->lc);
    free(c->path);
    free(c->domain);
    for (size_t i = 0; i < c->plugin_dir_count; i++)
        free(c->plugin_dirs[i]);
    free(c->plugin_dirs);
    for (int i = 0; i < AIMX_SLOT_COUNT; i++)
        free(c->slot_plugin[i]);
    free(c->spool_dir);
    free(c->dkim_selector);
    free(c->dkim_key_file);
    free(c->dkim_public_key_file);
    free(c->verify_target);
    memset(c, 0, sizeof *c);
}

config_setting_t *
aimx__config_lookup_path(config_setting_t *group, const char *path,
                         int *malformed)
{
    config_setting_t *s = group;
    const char *p = path;

    *malformed = 0;
    while (*p) {
        char name[128];
        size_t n = 0;

        while (*p && *p != '.' && *p != '[') {
            if (n + 1 >= sizeof name ||
                !(isalnum((unsigned char)*p) || *p == '_' || *p == '-' ||
                  *p == '*')) {
                *malformed = 1;
                return NULL;
            }
            name[n++] = *p++;
        }
        name[n] = '\0';
        if (n == 0) {
            *malformed = 1;
            return NULL;
        }
        if (s != NULL)
            s = config_setting_is_group(s) ? config_setting_get_member(s, name)
                                           : NULL;
        while (*p == '[') {
            char *end;
            unsigned long idx = strtoul(p + 1, &end, 10);
            if (end == p + 1 || *end != ']') {
                *malformed = 1;
                return NULL;
            }
            if (s != NULL)
                s = (config_setting_is_array(s) || config_setting_is_list(s)) &&
                            idx < (unsigned long)config_setting_length(s)
                        ? config_setting_get_elem(s, (unsigned)idx)
                        : NULL;
            p = end + 1;
        }
        if (*p == '.') {
            p++;
            if (*p == '\0') {
                *malformed = 1;
                return NULL;
            }
        } else if (*p != '\0') {
            *malformed = 1;
            return NULL;
        }
    }
    return s;
}

static int
is_known(const char *path, char *const *known, size_t n, int *has_children)
{
    size_t l = strlen(path);
    int exact = 0;

    *has_children = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(known[i], path) == 0)
            exact = 1;
        else if (strncmp(known[i], path, l) == 0 &&
                 (known[i][l] == '.' || known[i][l] == '['))
            *has_children = 1;
    }
    return exact;
}

static void
check_known_in(const aimx_config *c, config_setting_t *group,
               const char *prefix, const char *group_name, char *const *known,
               size_t known_count, aimx_diag *d)
{
    for (int i = 0; i < config_setting_length(group); i++) {
        config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(s);
        char path[512];
        int children;

        if (prefix[0] == '\0' && strcmp(name, "plugin") == 0)
            continue; /* the host's own key */
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "",
                 name);
        int exact = is_known(path, known, known_count, &children);
        if (config_setting_is_group(s) && children) {
            check_known_in(c, s, path, group_name, known, known_count, d);
            continue;
        }
        if (exact || children)
            continue;

        /* Suggest a key the plugin asked for at the same level. */
        const char *cands[64];
        char store[64][128];
        size_t nc = 0, pl = strlen(prefix);
        for (size_t k = 0; k < known_count && nc < 64; k++) {
            const char *kp = known[k];
            if (kp[0] == '/')
                continue;
            if (pl > 0) {
                if (strncmp(kp, prefix, pl) != 0 || kp[pl] != '.')
                    continue;
                kp += pl + 1;
            }
            size_t seg = strcspn(kp, ".[");
            if (seg == 0 || seg >= sizeof store[0])
                continue;
            memcpy(store[nc], kp, seg);
            store[nc][seg] = '\0';
            cands[nc] = store[nc];
            nc++;
        }
        const char *hint = suggest(name, cands, nc);
        char where[PATH_MAX + 32];
        aimx__config_where(c, s, where, sizeof where);
        if (hint != NULL)
            aimx__diag_add(d,
                           "%s: unknown setting '%s' in group '%s' (did you "
                           "mean '%s'?)",
                           where, path, group_name, hint);
        else
            aimx__diag_add(d, "%s: unknown setting '%s' in group '%s'", where,
                           path, group_name);
    }
}

void
aimx__config_check_known(const aimx_config *c, config_setting_t *group,
                         const char *group_name, char *const *known,
                         size_t known_count, aimx_diag *d)
{
    if (group != NULL)
        check_known_in(c, group, "", group_name, known, known_count, d);
}
