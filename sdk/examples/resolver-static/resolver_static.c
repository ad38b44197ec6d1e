/* SPDX-License-Identifier: MIT */
/*
 * resolver-static: an example aimx resolver plugin that answers from a
 * static file instead of asking DNS servers.  Useful on a test bench, in a
 * container with no DNS, or to pin the MX hosts of a few partner domains;
 * meant above all to be read and copied: docs/plugin-guide.md walks through
 * it.
 *
 * The file holds one record per line, "name type data", '#' starts a
 * comment:
 *
 *     example.com.      MX    10 mx.example.com.
 *     mx.example.com.   A     192.0.2.25
 *     mx.example.com.   AAAA  2001:db8::25
 *     example.com.      TXT   v=spf1 -all
 *     nomail.example.   MX    0 .
 *
 * Names are case-insensitive and the trailing dot is optional.  A lookup
 * answers every record of the asked type at the asked name (OK), NODATA
 * when the name has records of other types only, NXDOMAIN when the file
 * does not mention the name at all.  No CNAMEs, no wildcards.
 *
 * Settings (group `resolver` of aimx.conf):
 *     file = "/etc/aimx/static-zone.txt";   required
 *     ttl  = "1h";                           optional, every record's TTL
 */
#define _POSIX_C_SOURCE 200809L /* getline(), strcasecmp() and inet_pton() */

#include <aimx/plugin.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The plugin's own version, free text; `aimx plugins` prints it. */
#define STATIC_VERSION "1.0.0"

/* A DNS name in text form is at most 253 octets without the final dot. */
#define NAME_MAX_LEN 253

/* ABI rule: a field beyond the writer's struct_size does not exist. */
#define HAS_FIELD(p, type, field)                                              \
    ((p)->struct_size >= offsetof(type, field) + sizeof((p)->field))
#define HAS_SERVICE(api, fn) (HAS_FIELD(api, aimx_host_api, fn) && (api)->fn)

/* One record of the file, in the form the host's dns_add() wants. */
struct static_record {
    char *owner;         /* lower case, no trailing dot */
    uint16_t type;       /* AIMX_DNS_A, _AAAA, _MX or _TXT */
    uint16_t preference; /* MX */
    char *target;        /* MX exchange, no trailing dot; "." for a null MX */
    aimx_addr address;   /* A and AAAA */
    char *text;          /* TXT: the rest of the line */
};

/*
 * The instance.  The records are read once, in create(); afterwards
 * nothing changes, so lookup() may run on many threads at once without a
 * lock.
 */
struct static_resolver {
    const aimx_host_api *api;
    aimx_host *host;
    uint32_t ttl; /* seconds */
    struct static_record *records;
    size_t count, cap;
};

static aimx_status static_create(const aimx_host_api *api, aimx_host *host,
                                 void **instance);
static void static_destroy(void *instance);
static aimx_status static_lookup(void *instance, const aimx_dns_query *query,
                                 aimx_dns_sink *sink);
static aimx_status load_file(struct static_resolver *self, const char *path);
static aimx_status parse_line(struct static_resolver *self, char *line,
                              char *why, size_t whylen);
static int canonical_name(const char *in, char *out, size_t len);
static char *copy_string(struct static_resolver *self, const char *s);
static aimx_status complete(struct static_resolver *self, aimx_dns_sink *sink,
                            uint32_t outcome, const char *diag);

static const aimx_resolver_ops static_ops = {
    .struct_size = sizeof(aimx_resolver_ops),
    /* Required: one lookup, answered before it returns. */
    .lookup = static_lookup,
    /* Optional, and useless here: a lookup is over before the host could
     * ask to cancel it. */
    .cancel = NULL,
};

static const aimx_plugin_descriptor static_descriptor = {
    .struct_size = sizeof(aimx_plugin_descriptor),
    .abi_major = AIMX_ABI_MAJOR,
    .abi_minor = AIMX_ABI_MINOR,
    .kind = AIMX_KIND_RESOLVER,
    .name = "resolver-static", /* the file must be resolver-static.so */
    .version = STATIC_VERSION,
    .description = "Example resolver: answers from a static file",
    .create = static_create,
    .destroy = static_destroy,
    .resolver = &static_ops,
};

/* Exports resolver_static_LTX_aimx_plugin_v1 (and, in the module,
 * aimx_plugin_v1): the plugin's name with '-' written as '_'. */
AIMX_PLUGIN_DEFINE(resolver_static, static_descriptor);

/*
 * create(): read the settings, then the file.  Every key we support is
 * asked for before anything can fail, so that the host's unknown-key check
 * knows them all.  Problems are reported with cfg_error(), which the host
 * prints as "aimx.conf:LINE: 'file' in group 'resolver': ...".
 */
static aimx_status
static_create(const aimx_host_api *api, aimx_host *host, void **instance)
{
    struct static_resolver *self;
    const char *path = NULL;
    uint64_t ttl_us = 3600ull * 1000000u; /* the default: one hour */
    aimx_status st, ttl_st;

    if (!instance || !api || !HAS_SERVICE(api, log))
        return AIMX_ERR_UNSUPPORTED;
    if (!HAS_SERVICE(api, cfg_string) || !HAS_SERVICE(api, cfg_duration) ||
        !HAS_SERVICE(api, cfg_error) || !HAS_SERVICE(api, alloc) ||
        !HAS_SERVICE(api, realloc) || !HAS_SERVICE(api, free) ||
        !HAS_SERVICE(api, dns_add) || !HAS_SERVICE(api, dns_complete)) {
        api->log(host, AIMX_LOG_ERR, "the host lacks a service we need");
        return AIMX_ERR_UNSUPPORTED;
    }

    st = api->cfg_string(host, "file", &path);
    /* The getters report wrong types and bad values themselves; "absent" is
     * ours to judge.  TTLs are 31-bit seconds (RFC 2181). */
    ttl_st =
        api->cfg_duration(host, "ttl", 0, 2147483647ull * 1000000u, &ttl_us);
    if (st == AIMX_ERR_NOT_FOUND)
        return api->cfg_error(host, NULL,
                              "resolver-static needs 'file', the path of "
                              "its zone file");
    if (st != AIMX_OK)
        return st;
    if (ttl_st != AIMX_OK && ttl_st != AIMX_ERR_NOT_FOUND)
        return ttl_st;

    self = api->alloc(host, sizeof *self);
    if (!self) {
        api->log(host, AIMX_LOG_ERR, "out of memory");
        return AIMX_ERR_NOMEM;
    }
    self->api = api;
    self->host = host;
    self->ttl = (uint32_t)(ttl_us / 1000000u);
    st = load_file(self, path);
    if (st != AIMX_OK) {
        static_destroy(self);
        return st;
    }
    api->log(host, AIMX_LOG_DEBUG, "%zu records from %s", self->count, path);
    *instance = self;
    return AIMX_OK;
}

/* Everything create() allocated, with the host's allocator. */
static void
static_destroy(void *instance)
{
    struct static_resolver *self = instance;
    size_t i;

    if (!self)
        return;
    for (i = 0; i < self->count; i++) {
        self->api->free(self->host, self->records[i].owner);
        self->api->free(self->host, self->records[i].target);
        self->api->free(self->host, self->records[i].text);
    }
    self->api->free(self->host, self->records);
    self->api->free(self->host, self);
}

/*
 * lookup(): answers at once, on the caller's thread, before returning --
 * the contract allows the completion to arrive that early.  Records go to
 * the host one by one through dns_add(), which copies them; then exactly
 * one dns_complete().  Once lookup() has returned AIMX_OK the sink belongs
 * to the host again.
 */
static aimx_status
static_lookup(void *instance, const aimx_dns_query *query, aimx_dns_sink *sink)
{
    struct static_resolver *self = instance;
    char name[NAME_MAX_LEN + 2];
    int name_exists = 0;
    size_t i, found = 0;

    /* A bad call is refused with no sink service called, as the contract
     * says for any status but AIMX_OK. */
    if (!self || !query || !sink || !HAS_FIELD(query, aimx_dns_query, name))
        return AIMX_ERR_INVALID;
    if (!query->name || canonical_name(query->name, name, sizeof name) != 0)
        return complete(self, sink, AIMX_DNS_BADNAME,
                        "not a name this resolver can look up");

    for (i = 0; i < self->count; i++) {
        const struct static_record *r = &self->records[i];
        aimx_dns_record rec;

        if (strcmp(r->owner, name) != 0)
            continue;
        name_exists = 1;
        if (r->type != query->type)
            continue;
        /* Zero first: fields we do not set must read as "none". */
        memset(&rec, 0, sizeof rec);
        rec.struct_size = sizeof rec;
        rec.type = r->type;
        rec.ttl = self->ttl;
        rec.owner = r->owner;
        rec.preference = r->preference;
        rec.target = r->target;
        rec.address = r->address;
        if (r->text) {
            rec.text = (const uint8_t *)r->text;
            rec.text_len = strlen(r->text);
        }
        if (self->api->dns_add(sink, &rec) != AIMX_OK)
            return complete(self, sink, AIMX_DNS_LOCALERR,
                            "the host could not store a record");
        found++;
    }
    if (found > 0)
        return complete(self, sink, AIMX_DNS_OK, NULL);
    return complete(self, sink,
                    name_exists ? AIMX_DNS_NODATA : AIMX_DNS_NXDOMAIN, NULL);
}

/* The one dns_complete() of a lookup.  Returns AIMX_OK: the lookup itself
 * went fine, whatever its outcome. */
static aimx_status
complete(struct static_resolver *self, aimx_dns_sink *sink, uint32_t outcome,
         const char *diag)
{
    aimx_dns_completion done;

    memset(&done, 0, sizeof done);
    done.struct_size = sizeof done;
    done.outcome = outcome;
    done.diag = diag;
    done.server = "static zone file"; /* for the host's logs */
    self->api->dns_complete(sink, &done);
    return AIMX_OK;
}

/* Reads every line of the file; the first bad line fails create(). */
static aimx_status
load_file(struct static_resolver *self, const char *path)
{
    FILE *f;
    char *line = NULL; /* getline()'s buffer: the C library's, freed below */
    size_t size = 0;
    unsigned lineno = 0;
    aimx_status st = AIMX_OK;

    f = fopen(path, "r");
    if (!f)
        return self->api->cfg_error(self->host, "file", "cannot open %s: %s",
                                    path, strerror(errno));
    while (st == AIMX_OK && getline(&line, &size, f) >= 0) {
        char why[160];
        lineno++;
        st = parse_line(self, line, why, sizeof why);
        if (st == AIMX_ERR_INVALID)
            self->api->cfg_error(self->host, "file", "%s:%u: %s", path, lineno,
                                 why);
        else if (st == AIMX_ERR_NOMEM)
            self->api->log(self->host, AIMX_LOG_ERR, "out of memory");
    }
    if (st == AIMX_OK && ferror(f))
        st = self->api->cfg_error(self->host, "file", "cannot read %s: %s",
                                  path, strerror(errno));
    free(line);
    fclose(f);
    return st;
}

/*
 * One line: "name type data", or blank, or a comment.  Returns AIMX_OK,
 * AIMX_ERR_INVALID with a sentence in why, or AIMX_ERR_NOMEM.
 */
static aimx_status
parse_line(struct static_resolver *self, char *line, char *why, size_t whylen)
{
    static const char *const space = " \t\r\n";
    struct static_record r;
    char owner[NAME_MAX_LEN + 2], *name, *type, *data, *tail, *save = NULL;

    line[strcspn(line, "#")] = '\0'; /* a comment runs to the line's end */
    name = strtok_r(line, space, &save);
    if (!name)
        return AIMX_OK; /* blank or comment only */
    type = strtok_r(NULL, space, &save);
    data = type ? strtok_r(NULL, "\r\n", &save) : NULL;
    if (data) {
        /* The blanks around the data are not part of it. */
        data += strspn(data, " \t");
        tail = data + strlen(data);
        while (tail > data && (tail[-1] == ' ' || tail[-1] == '\t'))
            *--tail = '\0';
    }
    if (!data || !*data) {
        snprintf(why, whylen, "expected \"name type data\"");
        return AIMX_ERR_INVALID;
    }
    if (canonical_name(name, owner, sizeof owner) != 0 ||
        strcmp(owner, ".") == 0) {
        snprintf(why, whylen, "'%.64s' is not a domain name", name);
        return AIMX_ERR_INVALID;
    }

    memset(&r, 0, sizeof r);
    if (strcasecmp(type, "A") == 0 || strcasecmp(type, "AAAA") == 0) {
        int v6 = strcasecmp(type, "AAAA") == 0;
        r.type = v6 ? AIMX_DNS_AAAA : AIMX_DNS_A;
        r.address.family = v6 ? AIMX_AF_INET6 : AIMX_AF_INET;
        if (inet_pton(v6 ? AF_INET6 : AF_INET, data, r.address.bytes) != 1) {
            snprintf(why, whylen, "'%.64s' is not an IPv%c address", data,
                     v6 ? '6' : '4');
            return AIMX_ERR_INVALID;
        }
    } else if (strcasecmp(type, "MX") == 0) {
        char exchange[NAME_MAX_LEN + 2], *end, *host;
        unsigned long pref = strtoul(data, &end, 10);
        host = strtok_r(end, space, &save);
        if (end == data || pref > 65535 || !isspace((unsigned char)*end) ||
            !host || strtok_r(NULL, space, &save) ||
            canonical_name(host, exchange, sizeof exchange) != 0) {
            snprintf(why, whylen,
                     "an MX record is \"preference exchange\", as in "
                     "\"10 mx.example.com.\" (or \"0 .\" for a null MX)");
            return AIMX_ERR_INVALID;
        }
        r.type = AIMX_DNS_MX;
        r.preference = (uint16_t)pref;
        if (!(r.target = copy_string(self, exchange)))
            return AIMX_ERR_NOMEM;
    } else if (strcasecmp(type, "TXT") == 0) {
        r.type = AIMX_DNS_TXT;
        if (!(r.text = copy_string(self, data)))
            return AIMX_ERR_NOMEM;
    } else {
        snprintf(why, whylen,
                 "unknown record type '%.16s' (A, AAAA, MX or TXT)", type);
        return AIMX_ERR_INVALID;
    }

    if (self->count == self->cap) {
        size_t cap = self->cap ? 2 * self->cap : 16;
        struct static_record *grown =
            self->api->realloc(self->host, self->records, cap * sizeof *grown);
        if (!grown) {
            self->api->free(self->host, r.target);
            self->api->free(self->host, r.text);
            return AIMX_ERR_NOMEM;
        }
        self->records = grown;
        self->cap = cap;
    }
    r.owner = copy_string(self, owner);
    if (!r.owner) {
        self->api->free(self->host, r.target);
        self->api->free(self->host, r.text);
        return AIMX_ERR_NOMEM;
    }
    self->records[self->count++] = r;
    return AIMX_OK;
}

/*
 * "Example.COM." -> "example.com": lower case, without the trailing dot,
 * as the host wants names in records.  The root "." stays ".".  Refuses
 * an empty name, an empty label, blanks, and names over 253 octets.
 */
static int
canonical_name(const char *in, char *out, size_t len)
{
    size_t n = strlen(in), i;

    if (n == 1 && in[0] == '.') {
        snprintf(out, len, ".");
        return 0;
    }
    if (n > 0 && in[n - 1] == '.')
        n--;
    if (n == 0 || n > NAME_MAX_LEN || n >= len)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= ' ' || c >= 0x7f || (c == '.' && (i == 0 || in[i - 1] == '.')))
            return -1;
        out[i] = (char)tolower(c);
    }
    out[n] = '\0';
    return 0;
}

static char *
copy_string(struct static_resolver *self, const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = self->api->alloc(self->host, n);

    if (copy)
        memcpy(copy, s, n);
    return copy;
}
