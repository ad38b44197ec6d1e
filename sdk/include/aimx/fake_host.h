/*
 * <aimx/fake_host.h> -- an in-memory aimx host for plugin unit tests.
 *
 * SPDX-License-Identifier: MIT
 *
 * Header-only (static inline functions): a test drives a plugin through its
 * descriptor without the aimx core.  Include it in tests, never in a plugin.
 * Needs GCC or Clang and POSIX clocks (_POSIX_C_SOURCE=200809L or
 * _GNU_SOURCE).  Build the plugin's sources into the test with
 * -DAIMX_PLUGIN_STATIC: its entry is then <ident>_LTX_aimx_plugin_v1().
 *
 *   static const struct aimx_fake_cfg cfg[] = {   (the plugin's own group)
 *       AIMX_FAKE_CFG_STRING("prefer", "ipv4"),
 *       AIMX_FAKE_CFG_STRING("timeout", "30s"),    (durations, sizes: strings)
 *       AIMX_FAKE_CFG_LIST("servers", 1), AIMX_FAKE_CFG_STRING("servers[0]", "::1"),
 *   };
 *   static struct aimx_fake_host fh;               (about 30 KB)
 *   aimx_fake_host_init(&fh, cfg, sizeof cfg / sizeof cfg[0]);
 *   fh.enable_ipv6 = 1;                            ("/enable_ipv6")
 *   st = d->create(aimx_fake_host_api(&fh), aimx_fake_host_handle(&fh), &inst);
 *   fh.cfg_closed = 1;                             (config is create()-only)
 *   assert_true(aimx_fake_host_asked(&fh, "prefer"));
 *   assert_int_equal(fh.error_count, 0);           (or aimx_fake_host_has_error)
 *   d->destroy(inst);
 *   assert_int_equal(fh.alloc_live, 0);
 *
 * Resolvers get aimx_fake_dns_sink_handle(&sink), transports
 * aimx_fake_msg_handle(&msg).  Like the real host's, every service may be
 * called from any thread (a resolver logs and completes lookups from its
 * own); the test reads what was recorded after the plugin is done, or
 * waits for a lookup with aimx_fake_dns_sink_wait().
 * Names starting with aimx_fake_i_ are internal.
 */
#ifndef AIMX_FAKE_HOST_H
#define AIMX_FAKE_HOST_H

#include <aimx/plugin.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef CLOCK_MONOTONIC
#error "<aimx/fake_host.h> needs POSIX clocks: define _POSIX_C_SOURCE=200809L"
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define AIMX_FAKE_MAX_ASKED  64 /* distinct config paths remembered */
#define AIMX_FAKE_MAX_ERRORS 16 /* config errors remembered */
#define AIMX_FAKE_MAX_LOGS   64 /* log lines remembered */
#define AIMX_FAKE_PATH_MAX   128
#define AIMX_FAKE_TEXT_MAX   256

/* One lock for everything the fake records: the services are thread-safe,
 * as the SDK promises, without making tests link a thread library. */
static int aimx_fake_i_lock_word;

static inline void
aimx_fake_i_lock(void)
{
    while (__atomic_exchange_n(&aimx_fake_i_lock_word, 1, __ATOMIC_ACQUIRE))
        ;
}

static inline void
aimx_fake_i_unlock(void)
{
    __atomic_store_n(&aimx_fake_i_lock_word, 0, __ATOMIC_RELEASE);
}

enum aimx_fake_cfg_type {
    AIMX_FAKE_T_STRING = 1, /* str; durations ("30s") and sizes ("25MB") too */
    AIMX_FAKE_T_BOOL = 2,   /* num: 0 or 1 */
    AIMX_FAKE_T_INT = 3,    /* num */
    AIMX_FAKE_T_LIST = 4    /* num = element count; each element is an entry
                               of its own, e.g. "servers[0]" */
};

/* One canned value.  path is exactly what the plugin asks for, relative to
 * its group ("prefer", "timeouts.connect", "servers[1]"); the top-level
 * keys come from struct aimx_fake_host's fields instead. */
struct aimx_fake_cfg {
    const char *path;
    int type;        /* enum aimx_fake_cfg_type */
    const char *str; /* AIMX_FAKE_T_STRING */
    int64_t num;     /* AIMX_FAKE_T_BOOL, _INT, _LIST */
};

#define AIMX_FAKE_CFG_STRING(p, s)                                             \
    {                                                                          \
        (p), AIMX_FAKE_T_STRING, (s), 0                                        \
    }
#define AIMX_FAKE_CFG_BOOL(p, b)                                               \
    {                                                                          \
        (p), AIMX_FAKE_T_BOOL, NULL, (b) ? 1 : 0                               \
    }
#define AIMX_FAKE_CFG_INT(p, n)                                                \
    {                                                                          \
        (p), AIMX_FAKE_T_INT, NULL, (n)                                        \
    }
#define AIMX_FAKE_CFG_LIST(p, n)                                               \
    {                                                                          \
        (p), AIMX_FAKE_T_LIST, NULL, (n)                                       \
    }

struct aimx_fake_log {
    int level; /* enum aimx_log_level */
    char text[AIMX_FAKE_TEXT_MAX];
};

/* The aimx_host * handed to the plugin points to this struct. */
struct aimx_fake_host {
    aimx_host_api api; /* the services; init fills it, a test may edit it */
    /* Set by the test; init applies the host's defaults. */
    const struct aimx_fake_cfg *cfg; /* the plugin's group, borrowed */
    size_t cfg_count;
    const char *domain; /* "/domain" (default "example.org"; NULL: absent) */
    int enable_ipv6;    /* "/enable_ipv6" (default 0) */
    int cfg_closed;     /* non-zero: config calls are misuse (after create) */
    int echo_logs;      /* non-zero: copy log lines and errors to stderr */
    /* Recorded. */
    char asked[AIMX_FAKE_MAX_ASKED][AIMX_FAKE_PATH_MAX]; /* each path once */
    size_t asked_count;
    char errors[AIMX_FAKE_MAX_ERRORS][AIMX_FAKE_TEXT_MAX]; /* "path: text" */
    size_t error_count; /* cfg_error() calls and the getters' own reports */
    struct aimx_fake_log logs[AIMX_FAKE_MAX_LOGS];
    size_t log_count;
    size_t dropped;  /* paths, errors or log lines that did not fit */
    long alloc_live; /* alloc/realloc(NULL) minus free: 0 after destroy */
    unsigned misuse; /* contract violations seen */
    char misuse_text[AIMX_FAKE_TEXT_MAX]; /* the last one */
};

static inline struct aimx_fake_host *
aimx_fake_i_of(aimx_host *host)
{
    return (struct aimx_fake_host *)(void *)host;
}

/* 1 if one of n rows, stride bytes apart, equals (exact) or contains needle. */
static inline int
aimx_fake_i_match(const char *row, size_t stride, size_t n, const char *needle,
                  int exact)
{
    for (; n > 0; n--, row += stride)
        if (exact ? strcmp(row, needle) == 0 : strstr(row, needle) != NULL)
            return 1;
    return 0;
}

/* Records a log line (level >= 0) or a config error ("path: text"). */
AIMX_PRINTF(4, 0)
static inline void
aimx_fake_i_vrecord(struct aimx_fake_host *fh, int level, const char *path,
                    const char *fmt, va_list ap)
{
    int err = level < 0, n = 0;
    char *t;

    aimx_fake_i_lock();
    if (err ? fh->error_count >= AIMX_FAKE_MAX_ERRORS
            : fh->log_count >= AIMX_FAKE_MAX_LOGS) {
        fh->dropped++;
        aimx_fake_i_unlock();
        return;
    }
    if (err) {
        t = fh->errors[fh->error_count++];
        n = snprintf(t, AIMX_FAKE_TEXT_MAX, "%s: ", path ? path : "(group)");
    } else {
        fh->logs[fh->log_count].level = level;
        t = fh->logs[fh->log_count++].text;
    }
    if (n >= 0 && n < AIMX_FAKE_TEXT_MAX)
        vsnprintf(t + n, AIMX_FAKE_TEXT_MAX - (size_t)n, fmt, ap);
    if (fh->echo_logs)
        fprintf(stderr, "[fake host] %s%s\n", err ? "config error: " : "", t);
    aimx_fake_i_unlock();
}

AIMX_PRINTF(3, 0)
static inline void
aimx_fake_i_vlog(aimx_host *host, int level, const char *fmt, va_list ap)
{
    aimx_fake_i_vrecord(aimx_fake_i_of(host), level < 0 ? 0 : level, NULL, fmt,
                        ap);
}

AIMX_PRINTF(3, 4)
static inline void
aimx_fake_i_log(aimx_host *host, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aimx_fake_i_vlog(host, level, fmt, ap);
    va_end(ap);
}

AIMX_PRINTF(3, 4)
static inline aimx_status
aimx_fake_i_cfg_error(aimx_host *host, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aimx_fake_i_vrecord(aimx_fake_i_of(host), -1, path, fmt, ap);
    va_end(ap);
    return AIMX_ERR_INVALID;
}

/* Records the path, then copies its value into *v if it has the wanted
 * type.  A wrong type is reported here, as the real host does. */
static inline aimx_status
aimx_fake_i_find(aimx_host *host, const char *path, int type, const char *what,
                 struct aimx_fake_cfg *v)
{
    struct aimx_fake_host *fh = aimx_fake_i_of(host);
    size_t i;

    memset(v, 0, sizeof *v);
    if (!path)
        return AIMX_ERR_INVALID;
    if (fh->cfg_closed) {
        fh->misuse++;
        snprintf(fh->misuse_text, sizeof fh->misuse_text,
                 "%s asked for after create()", path);
        return AIMX_ERR_UNSUPPORTED;
    }
    if (aimx_fake_i_match((const char *)fh->asked, AIMX_FAKE_PATH_MAX,
                          fh->asked_count, path, 1))
        ; /* each path once */
    else if (fh->asked_count < AIMX_FAKE_MAX_ASKED)
        snprintf(fh->asked[fh->asked_count++], AIMX_FAKE_PATH_MAX, "%s", path);
    else
        fh->dropped++;
    if (strcmp(path, "/enable_ipv6") == 0) {
        v->type =
            AIMX_FAKE_T_BOOL; /* the host's default applies: always found */
        v->num = fh->enable_ipv6 != 0;
    } else if (strcmp(path, "/domain") == 0 && fh->domain) {
        v->type = AIMX_FAKE_T_STRING;
        v->str = fh->domain;
    } else if (path[0] == '/' && strcmp(path, "/domain") != 0) {
        fh->misuse++;
        snprintf(fh->misuse_text, sizeof fh->misuse_text,
                 "%s is no top-level key", path);
        return AIMX_ERR_UNSUPPORTED;
    }
    for (i = 0; !v->type && path[0] != '/' && i < fh->cfg_count; i++)
        if (fh->cfg[i].path && strcmp(fh->cfg[i].path, path) == 0)
            *v = fh->cfg[i];
    if (!v->type)
        return AIMX_ERR_NOT_FOUND;
    if (v->type != type) {
        aimx_fake_i_cfg_error(host, path, "expected %s", what);
        return AIMX_ERR_WRONG_TYPE;
    }
    return AIMX_OK;
}

/* Strict "<digits><unit>": no sign, space or fraction, exact unit spelling.
 * AIMX_ERR_WRONG_TYPE if malformed or beyond 64 bits, as the real host. */
static inline aimx_status
aimx_fake_i_number(const char *s, const char *const *units,
                   const uint64_t *mult, size_t nunits, int unit_required,
                   uint64_t *out)
{
    uint64_t v = 0, m = 1;
    int overflow = 0;
    size_t i;

    if (!s || *s < '0' || *s > '9')
        return AIMX_ERR_WRONG_TYPE;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        overflow |= v > (UINT64_MAX - d) / 10;
        v = v * 10 + d;
    }
    if (*s != '\0' || unit_required) {
        for (i = 0; i < nunits && strcmp(s, units[i]) != 0; i++)
            ;
        if (i == nunits)
            return AIMX_ERR_WRONG_TYPE;
        m = mult[i];
    }
    if (overflow || v > UINT64_MAX / m)
        return AIMX_ERR_WRONG_TYPE;
    *out = v * m;
    return AIMX_OK;
}

/* The host's duration syntax, in microseconds: "250ms", "30s", "10m", "1h". */
static inline aimx_status
aimx_fake_parse_duration(const char *s, uint64_t *out_us)
{
    static const char *const units[] = {"ms", "s", "m", "h"};
    static const uint64_t mult[] = {1000u, 1000000u, 60000000u, 3600000000u};
    return aimx_fake_i_number(s, units, mult, 4, 1, out_us);
}

/* The host's size syntax: "512", "64KB", "25MB", "1GB" (powers of 1024). */
static inline aimx_status
aimx_fake_parse_size(const char *s, uint64_t *out)
{
    static const char *const units[] = {"KB", "MB", "GB"};
    static const uint64_t mult[] = {1024u, 1048576u, 1073741824u};
    return aimx_fake_i_number(s, units, mult, 3, 0, out);
}

static inline aimx_status
aimx_fake_i_cfg_string(aimx_host *host, const char *path, const char **out)
{
    struct aimx_fake_cfg v;
    aimx_status st =
        aimx_fake_i_find(host, path, AIMX_FAKE_T_STRING, "a string", &v);
    if (st == AIMX_OK)
        *out = v.str;
    return st;
}

static inline aimx_status
aimx_fake_i_cfg_bool(aimx_host *host, const char *path, int *out)
{
    struct aimx_fake_cfg v;
    aimx_status st =
        aimx_fake_i_find(host, path, AIMX_FAKE_T_BOOL, "true or false", &v);
    if (st == AIMX_OK)
        *out = v.num != 0;
    return st;
}

static inline aimx_status
aimx_fake_i_cfg_count(aimx_host *host, const char *path, size_t *out)
{
    struct aimx_fake_cfg v;
    aimx_status st =
        aimx_fake_i_find(host, path, AIMX_FAKE_T_LIST, "a list", &v);
    if (st == AIMX_OK)
        *out = v.num < 0 ? 0 : (size_t)v.num;
    return st;
}

static inline aimx_status
aimx_fake_i_cfg_int(aimx_host *host, const char *path, int64_t min, int64_t max,
                    int64_t *out)
{
    struct aimx_fake_cfg v;
    aimx_status st =
        aimx_fake_i_find(host, path, AIMX_FAKE_T_INT, "an integer", &v);

    if (st == AIMX_OK && (v.num < min || v.num > max)) {
        aimx_fake_i_cfg_error(host, path, "%lld is out of range (%lld..%lld)",
                              (long long)v.num, (long long)min, (long long)max);
        return AIMX_ERR_RANGE;
    }
    if (st == AIMX_OK)
        *out = v.num;
    return st;
}

/* cfg_duration and cfg_size: parse, report, check the range. */
static inline aimx_status
aimx_fake_i_cfg_unit(aimx_host *host, const char *path, int duration,
                     uint64_t min, uint64_t max, uint64_t *out)
{
    const char *what =
        duration ? "a duration such as \"250ms\", \"30s\", \"10m\", \"1h\""
                 : "a size such as \"512\", \"64KB\", \"25MB\", \"1GB\"";
    struct aimx_fake_cfg v;
    uint64_t n = 0;
    aimx_status st = aimx_fake_i_find(host, path, AIMX_FAKE_T_STRING, what, &v);

    if (st != AIMX_OK)
        return st;
    st = duration ? aimx_fake_parse_duration(v.str, &n)
                  : aimx_fake_parse_size(v.str, &n);
    if (st == AIMX_ERR_WRONG_TYPE) {
        aimx_fake_i_cfg_error(host, path, "\"%s\" is not %s",
                              v.str ? v.str : "(null)", what);
        return st;
    }
    if (st != AIMX_OK || n < min || n > max) {
        aimx_fake_i_cfg_error(host, path,
                              "\"%s\" is out of range (%llu..%llu %s)", v.str,
                              (unsigned long long)min, (unsigned long long)max,
                              duration ? "us" : "bytes");
        return AIMX_ERR_RANGE;
    }
    *out = n;
    return AIMX_OK;
}

static inline aimx_status
aimx_fake_i_cfg_duration(aimx_host *host, const char *path, uint64_t min_us,
                         uint64_t max_us, uint64_t *out_us)
{
    return aimx_fake_i_cfg_unit(host, path, 1, min_us, max_us, out_us);
}

static inline aimx_status
aimx_fake_i_cfg_size(aimx_host *host, const char *path, uint64_t min,
                     uint64_t max, uint64_t *out)
{
    return aimx_fake_i_cfg_unit(host, path, 0, min, max, out);
}

static inline void *
aimx_fake_i_alloc(aimx_host *host, size_t size)
{
    void *p = calloc(1, size ? size : 1);
    __atomic_add_fetch(&aimx_fake_i_of(host)->alloc_live, p != NULL,
                       __ATOMIC_RELAXED);
    return p;
}

static inline void *
aimx_fake_i_realloc(aimx_host *host, void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    __atomic_add_fetch(&aimx_fake_i_of(host)->alloc_live,
                       p != NULL && ptr == NULL, __ATOMIC_RELAXED);
    return p;
}

static inline void
aimx_fake_i_free(aimx_host *host, void *ptr)
{
    __atomic_sub_fetch(&aimx_fake_i_of(host)->alloc_live, ptr != NULL,
                       __ATOMIC_RELAXED);
    free(ptr);
}

static inline uint64_t
aimx_fake_i_monotonic_us(aimx_host *host)
{
    struct timespec ts;
    (void)host;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* What a resolver reported.  Every pointer in records[] and completion is
 * owned by the sink: release them with aimx_fake_dns_sink_free(). */
struct aimx_fake_dns_sink {
    aimx_dns_record *records; /* copies, in the order added */
    size_t record_count, record_cap;
    aimx_dns_completion completion;  /* the first dns_complete() */
    char diag[AIMX_FAKE_TEXT_MAX];   /* completion.diag points here */
    char server[AIMX_FAKE_TEXT_MAX]; /* completion.server points here */
    int completed;                   /* set by dns_complete(); see ..._wait() */
    unsigned completions;            /* more than 1 is a resolver bug */
    unsigned late_adds;   /* dns_add() after completion: a resolver bug */
    aimx_status fail_add; /* set by the test: dns_add() returns it */
};

static inline void
aimx_fake_dns_sink_init(struct aimx_fake_dns_sink *s)
{
    memset(s, 0, sizeof *s);
}

static inline aimx_dns_sink *
aimx_fake_dns_sink_handle(struct aimx_fake_dns_sink *s)
{
    return (aimx_dns_sink *)(void *)s;
}

/* Copies n bytes plus a NUL; NULL stays NULL. */
static inline void *
aimx_fake_i_dup(const void *p, size_t n)
{
    char *c = p ? (char *)malloc(n + 1) : NULL;
    if (c) {
        memcpy(c, p, n);
        c[n] = '\0';
    }
    return c;
}

static inline void
aimx_fake_dns_sink_free(struct aimx_fake_dns_sink *s)
{
    size_t i;
    for (i = 0; i < s->record_count; i++) {
        free((void *)(uintptr_t)s->records[i].owner);
        free((void *)(uintptr_t)s->records[i].target);
        free((void *)(uintptr_t)s->records[i].text);
        free((void *)(uintptr_t)s->records[i].rdata);
    }
    free(s->records);
    aimx_fake_dns_sink_init(s);
}

static inline aimx_status
aimx_fake_i_dns_add(aimx_dns_sink *sink, const aimx_dns_record *rec)
{
    struct aimx_fake_dns_sink *s = (struct aimx_fake_dns_sink *)(void *)sink;
    aimx_dns_record *r;

    aimx_status st = AIMX_OK;

    aimx_fake_i_lock();
    if (__atomic_load_n(&s->completed, __ATOMIC_ACQUIRE)) {
        s->late_adds++;
        st = AIMX_ERR_INVALID;
    } else if (s->fail_add != AIMX_OK || !rec ||
               rec->struct_size < sizeof(uint32_t)) {
        st = s->fail_add != AIMX_OK ? s->fail_add : AIMX_ERR_INVALID;
    }
    if (st == AIMX_OK && s->record_count == s->record_cap) {
        size_t cap = s->record_cap ? 2 * s->record_cap : 8;
        if (!(r = (aimx_dns_record *)realloc(s->records, cap * sizeof *r)))
            st = AIMX_ERR_NOMEM;
        else {
            s->records = r;
            s->record_cap = cap;
        }
    }
    if (st != AIMX_OK) {
        aimx_fake_i_unlock();
        return st;
    }
    r = &s->records[s->record_count++];
    memset(r, 0, sizeof *r);
    /* A smaller writer's missing fields read as zero (the ABI rule). */
    memcpy(r, rec, rec->struct_size < sizeof *r ? rec->struct_size : sizeof *r);
    r->struct_size = (uint32_t)sizeof *r;
    r->owner = (const char *)aimx_fake_i_dup(r->owner,
                                             r->owner ? strlen(r->owner) : 0);
    r->target = (const char *)aimx_fake_i_dup(
        r->target, r->target ? strlen(r->target) : 0);
    r->text = (const uint8_t *)aimx_fake_i_dup(r->text, r->text_len);
    r->rdata = (const uint8_t *)aimx_fake_i_dup(r->rdata, r->rdata_len);
    aimx_fake_i_unlock();
    return AIMX_OK;
}

static inline void
aimx_fake_i_dns_complete(aimx_dns_sink *sink, const aimx_dns_completion *c)
{
    struct aimx_fake_dns_sink *s = (struct aimx_fake_dns_sink *)(void *)sink;

    aimx_fake_i_lock();
    if (s->completions++ > 0) {
        aimx_fake_i_unlock();
        return; /* keep the first; the test sees completions > 1 */
    }
    if (c)
        memcpy(&s->completion, c,
               c->struct_size < sizeof s->completion ? c->struct_size
                                                     : sizeof s->completion);
    else
        s->completion.outcome =
            AIMX_DNS_LOCALERR; /* a resolver bug must not read as OK */
    s->completion.struct_size = (uint32_t)sizeof s->completion;
    if (s->completion.diag) {
        snprintf(s->diag, sizeof s->diag, "%s", s->completion.diag);
        s->completion.diag = s->diag;
    }
    if (s->completion.server) {
        snprintf(s->server, sizeof s->server, "%s", s->completion.server);
        s->completion.server = s->server;
    }
    /* Release: a thread that sees the flag also sees every record. */
    __atomic_store_n(&s->completed, 1, __ATOMIC_RELEASE);
    aimx_fake_i_unlock();
}

/* Waits up to timeout_ms for the completion; 1 if it came. */
static inline int
aimx_fake_dns_sink_wait(struct aimx_fake_dns_sink *s, unsigned timeout_ms)
{
    struct timespec tick = {0, 1000000L};
    while (!__atomic_load_n(&s->completed, __ATOMIC_ACQUIRE)) {
        if (timeout_ms-- == 0)
            return 0;
        nanosleep(&tick, NULL);
    }
    return 1;
}

/* A message over a caller-owned buffer (canonical: CRLF, not dot-stuffed). */
struct aimx_fake_msg {
    const uint8_t *data;
    size_t len;
    size_t pos;       /* the next octet msg_read() returns */
    size_t max_chunk; /* > 0: no read returns more (exercises short reads) */
    int fail; /* non-zero: a read at or past fail_at gives AIMX_ERR_IO */
    size_t fail_at;
    unsigned reads, rewinds; /* calls seen */
};

static inline void
aimx_fake_msg_init(struct aimx_fake_msg *m, const void *data, size_t len,
                   size_t max_chunk)
{
    memset(m, 0, sizeof *m);
    m->data = (const uint8_t *)data;
    m->len = len;
    m->max_chunk = max_chunk;
}

static inline aimx_msg *
aimx_fake_msg_handle(struct aimx_fake_msg *m)
{
    return (aimx_msg *)(void *)m;
}

static inline int64_t
aimx_fake_i_msg_read(aimx_msg *msg, void *buf, size_t len)
{
    struct aimx_fake_msg *m = (struct aimx_fake_msg *)(void *)msg;
    size_t n = m->len - m->pos;

    m->reads++;
    if (!buf || len == 0)
        return -(int64_t)AIMX_ERR_INVALID;
    if (m->fail && m->pos >= m->fail_at)
        return -(int64_t)AIMX_ERR_IO;
    if (n > len)
        n = len;
    if (m->max_chunk && n > m->max_chunk)
        n = m->max_chunk;
    if (m->fail && m->fail_at - m->pos < n)
        n = m->fail_at - m->pos; /* the failure lands on the next read */
    if (n)
        memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (int64_t)n;
}

static inline aimx_status
aimx_fake_i_msg_rewind(aimx_msg *msg)
{
    struct aimx_fake_msg *m = (struct aimx_fake_msg *)(void *)msg;
    m->rewinds++;
    m->pos = 0;
    return AIMX_OK;
}

/* Resets fh: nothing recorded, the given group config (borrowed), the
 * host's top-level defaults and a services table of this SDK's ABI. */
static inline void
aimx_fake_host_init(struct aimx_fake_host *fh, const struct aimx_fake_cfg *cfg,
                    size_t cfg_count)
{
    memset(fh, 0, sizeof *fh);
    fh->cfg = cfg;
    fh->cfg_count = cfg_count;
    fh->domain = "example.org";
    fh->api.struct_size = (uint32_t)sizeof fh->api;
    fh->api.abi_major = AIMX_ABI_MAJOR;
    fh->api.abi_minor = AIMX_ABI_MINOR;
    fh->api.log = aimx_fake_i_log;
    fh->api.vlog = aimx_fake_i_vlog;
    fh->api.cfg_string = aimx_fake_i_cfg_string;
    fh->api.cfg_bool = aimx_fake_i_cfg_bool;
    fh->api.cfg_int = aimx_fake_i_cfg_int;
    fh->api.cfg_duration = aimx_fake_i_cfg_duration;
    fh->api.cfg_size = aimx_fake_i_cfg_size;
    fh->api.cfg_count = aimx_fake_i_cfg_count;
    fh->api.cfg_error = aimx_fake_i_cfg_error;
    fh->api.alloc = aimx_fake_i_alloc;
    fh->api.realloc = aimx_fake_i_realloc;
    fh->api.free = aimx_fake_i_free;
    fh->api.monotonic_us = aimx_fake_i_monotonic_us;
    fh->api.dns_add = aimx_fake_i_dns_add;
    fh->api.dns_complete = aimx_fake_i_dns_complete;
    fh->api.msg_read = aimx_fake_i_msg_read;
    fh->api.msg_rewind = aimx_fake_i_msg_rewind;
}

static inline const aimx_host_api *
aimx_fake_host_api(struct aimx_fake_host *fh)
{
    return &fh->api;
}

static inline aimx_host *
aimx_fake_host_handle(struct aimx_fake_host *fh)
{
    return (aimx_host *)(void *)fh;
}

/* Test helpers: 1 if the plugin asked for exactly this config path, if a
 * recorded config error or log line contains needle. */
static inline int
aimx_fake_host_asked(const struct aimx_fake_host *fh, const char *path)
{
    return aimx_fake_i_match((const char *)fh->asked, AIMX_FAKE_PATH_MAX,
                             fh->asked_count, path, 1);
}

static inline int
aimx_fake_host_has_error(const struct aimx_fake_host *fh, const char *needle)
{
    return aimx_fake_i_match((const char *)fh->errors, AIMX_FAKE_TEXT_MAX,
                             fh->error_count, needle, 0);
}

static inline int
aimx_fake_host_has_log(const struct aimx_fake_host *fh, const char *needle)
{
    return aimx_fake_i_match((const char *)fh->logs +
                                 offsetof(struct aimx_fake_log, text),
                             sizeof fh->logs[0], fh->log_count, needle, 0);
}

#ifdef __cplusplus
}
#endif
#endif /* AIMX_FAKE_HOST_H */
