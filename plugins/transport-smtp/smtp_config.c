/* SPDX-License-Identifier: MIT */
/*
 * Config of transport-smtp.  The timeouts' defaults are RFC 5321
 * 4.5.3.2's, as Postfix has them (smtp_*_timeout); the connection attempt
 * delay is RFC 8305's (250 ms, 100 ms to 2 s).
 */
#include "smtp_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEC 1000000u

static const struct {
    const char *path;
    uint64_t default_us;
} timeout_keys[SMTP_T_COUNT] = {
    [SMTP_T_CONNECT] = {"timeouts.connect", 30 * (uint64_t)SEC},
    [SMTP_T_GREETING] = {"timeouts.greeting", 300 * (uint64_t)SEC},
    [SMTP_T_EHLO] = {"timeouts.ehlo", 300 * (uint64_t)SEC},
    [SMTP_T_STARTTLS] = {"timeouts.starttls", 300 * (uint64_t)SEC},
    [SMTP_T_MAIL] = {"timeouts.mail", 300 * (uint64_t)SEC},
    [SMTP_T_RCPT] = {"timeouts.rcpt", 300 * (uint64_t)SEC},
    [SMTP_T_DATA] = {"timeouts.data", 120 * (uint64_t)SEC},
    [SMTP_T_BLOCK] = {"timeouts.block", 180 * (uint64_t)SEC},
    [SMTP_T_DOT] = {"timeouts.dot", 600 * (uint64_t)SEC},
    [SMTP_T_QUIT] = {"timeouts.quit", 300 * (uint64_t)SEC},
};

static aimx_status found(aimx_status st);
static int label_ok(const char *s, size_t n);
static aimx_status read_tls(const aimx_host_api *api, aimx_host *host,
                            struct smtp_settings *set);
static aimx_status read_source(const aimx_host_api *api, aimx_host *host,
                               const char *path, int family, aimx_addr *out);
static int source_local(const aimx_addr *a, int *err);
static int has_pem_certificate(const char *path);

aimx_status
smtp_config_read(const aimx_host_api *api, aimx_host *host,
                 struct smtp_settings *set)
{
    const char *helo = NULL, *domain = NULL;
    int64_t port = 0, max_rcpt = 0;
    uint64_t us = 0, delay = 0;
    aimx_status st_port, st_helo, st_domain, st_max, st_t, st_delay, st_x;
    aimx_status st = AIMX_OK;
    size_t i;

    memset(set, 0, sizeof *set);
    /* Ask for every key before judging any: the host flags keys nobody
     * asked for as unknown, and an early return would make a valid key
     * look like a typo next to the real error.  An absent key takes its
     * default here, not from whatever a getter left in its output. */
    st_port = api->cfg_int(host, "port", 1, 65535, &port);
    if (st_port == AIMX_ERR_NOT_FOUND)
        port = 25;
    st_helo = api->cfg_string(host, "helo_name", &helo);
    if (st_helo == AIMX_ERR_NOT_FOUND)
        helo = NULL;
    st_domain = api->cfg_string(host, "/domain", &domain);
    if (st_domain != AIMX_OK)
        domain = NULL;
    st_max = api->cfg_int(host, "max_recipients", 1, 1000, &max_rcpt);
    if (st_max == AIMX_ERR_NOT_FOUND)
        max_rcpt = 50;
    for (i = 0; i < SMTP_T_COUNT; i++) {
        st_t = api->cfg_duration(host, timeout_keys[i].path, 1000,
                                 3600 * (uint64_t)SEC, &us);
        set->timeout_us[i] =
            st_t == AIMX_ERR_NOT_FOUND ? timeout_keys[i].default_us : us;
        st_t = found(st_t);
        if (st_t != AIMX_OK)
            st = st_t;
    }
    st_delay = api->cfg_duration(host, "connection_attempt_delay", 100000,
                                 2 * (uint64_t)SEC, &delay);
    set->attempt_delay_us = st_delay == AIMX_ERR_NOT_FOUND ? 250000 : delay;
    st_delay = found(st_delay);
    if (st_delay != AIMX_OK)
        st = st_delay;
    st_x = read_tls(api, host, set);
    if (st_x != AIMX_OK)
        st = st_x;
    st_x = read_source(api, host, "bind_ipv4", AF_INET, &set->bind4);
    if (st_x != AIMX_OK)
        st = st_x;
    st_x = read_source(api, host, "bind_ipv6", AF_INET6, &set->bind6);
    if (st_x != AIMX_OK)
        st = st_x;
    st_port = found(st_port);
    st_helo = found(st_helo);
    st_max = found(st_max);
    if (st_port != AIMX_OK)
        st = st_port;
    if (st_max != AIMX_OK)
        st = st_max;
    if (st_helo != AIMX_OK) {
        st = st_helo;
    } else if (helo) {
        if (!smtp_helo_valid(helo) || strlen(helo) >= sizeof set->helo_name)
            st = api->cfg_error(host, "helo_name",
                                "\"%s\" is not a host name or an address "
                                "literal",
                                helo);
    } else if (!domain) {
        st = api->cfg_error(host, "helo_name",
                            "not set, and there is no top-level domain to "
                            "use instead");
    } else if (!smtp_helo_valid(domain) ||
               strlen(domain) >= sizeof set->helo_name) {
        st = api->cfg_error(host, "helo_name",
                            "not set, and the top-level domain \"%s\" is not "
                            "a host name EHLO can use",
                            domain);
    }
    if (st != AIMX_OK)
        return st;
    set->port = (uint16_t)port;
    set->max_recipients = (unsigned)max_rcpt;
    snprintf(set->helo_name, sizeof set->helo_name, "%s", helo ? helo : domain);
    return AIMX_OK;
}

int
smtp_helo_valid(const char *name)
{
    unsigned char buf[16];
    char lit[64];
    size_t n, start = 0, i;

    if (!name)
        return 0;
    n = strlen(name);
    if (n >= 2 && name[0] == '[' && name[n - 1] == ']') {
        /* RFC 5321 4.1.3 address literals. */
        if (n - 2 >= sizeof lit)
            return 0;
        memcpy(lit, name + 1, n - 2);
        lit[n - 2] = '\0';
        if (strncmp(lit, "IPv6:", 5) == 0)
            return inet_pton(AF_INET6, lit + 5, buf) == 1;
        return inet_pton(AF_INET, lit, buf) == 1;
    }
    if (n == 0 || n > 253)
        return 0;
    for (i = 0; i <= n; i++) {
        if (i < n && name[i] != '.')
            continue;
        if (!label_ok(name + start, i - start))
            return 0;
        start = i + 1;
    }
    return 1;
}

/* One LDH label (RFC 1123 2.1): letters, digits, '-' inside. */
static int
label_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}

/* tls and ca_file.  ca_file is opened now only to check it is readable:
 * its certificates are loaded on first use (start-up stays fast). */
static aimx_status
read_tls(const aimx_host_api *api, aimx_host *host, struct smtp_settings *set)
{
    const char *level = NULL, *ca = NULL;
    aimx_status st_level, st_ca, st = AIMX_OK;

    st_level = api->cfg_string(host, "tls", &level);
    st_ca = api->cfg_string(host, "ca_file", &ca);
    set->tls = SMTP_TLS_MAY;
    set->ca_file = NULL;
    if (st_level == AIMX_OK) {
        set->tls = smtp_tls_level_parse(level);
        if (set->tls < 0) {
            set->tls = SMTP_TLS_MAY;
            st = api->cfg_error(host, "tls",
                                "\"%s\" is not one of none, may, encrypt, "
                                "verify",
                                level);
        }
    } else if (st_level != AIMX_ERR_NOT_FOUND) {
        st = st_level;
    }
    if (st_ca == AIMX_OK) {
        if (!*ca || access(ca, R_OK) != 0)
            st = api->cfg_error(host, "ca_file", "cannot read \"%s\": %s", ca,
                                *ca ? strerror(errno) : "empty path");
        else if (!has_pem_certificate(ca))
            st = api->cfg_error(host, "ca_file",
                                "\"%s\" holds no PEM certificate", ca);
        else
            set->ca_file = ca;
        if (st == AIMX_OK && set->tls != SMTP_TLS_VERIFY)
            api->log(host, AIMX_LOG_WARNING,
                     "ca_file is used only with tls = verify (tls is %s)",
                     smtp_tls_level_name(set->tls));
    } else if (st_ca != AIMX_ERR_NOT_FOUND) {
        st = st_ca;
    }
    return st;
}

/* A look for "-----BEGIN CERTIFICATE-----" without OpenSSL (which is not
 * even initialised before the first STARTTLS): a wrong file is reported
 * with FILE:LINE now, not as failed deliveries later. */
static int
has_pem_certificate(const char *path)
{
    static const char marker[] = "-----BEGIN CERTIFICATE-----";
    char buf[4096 + sizeof marker];
    size_t keep = 0, n;
    FILE *f = fopen(path, "r");
    int found = 0;

    if (!f)
        return 0;
    while (!found && (n = fread(buf + keep, 1, sizeof buf - 1 - keep, f)) > 0) {
        n += keep;
        buf[n] = '\0';
        found = strstr(buf, marker) != NULL;
        /* A marker across two reads: keep the tail. */
        keep = n < sizeof marker - 1 ? n : sizeof marker - 1;
        memmove(buf, buf + n - keep, keep);
    }
    fclose(f);
    return found;
}

/* bind_ipv4 / bind_ipv6: an address of this machine, of that family. */
static aimx_status
read_source(const aimx_host_api *api, aimx_host *host, const char *path,
            int family, aimx_addr *out)
{
    const char *text = NULL;
    aimx_status st;
    int err = 0;

    memset(out, 0, sizeof *out);
    st = api->cfg_string(host, path, &text);
    if (st != AIMX_OK)
        return found(st);
    if (inet_pton(family, text, out->bytes) != 1) {
        memset(out, 0, sizeof *out);
        return api->cfg_error(host, path, "\"%s\" is not an %s address", text,
                              family == AF_INET ? "IPv4" : "IPv6");
    }
    out->family = family == AF_INET ? AIMX_AF_INET : AIMX_AF_INET6;
    if (!source_local(out, &err)) {
        memset(out, 0, sizeof *out);
        if (err == EADDRNOTAVAIL)
            return api->cfg_error(host, path,
                                  "%s is not an address of this machine", text);
        return api->cfg_error(host, path, "cannot use %s as a source: %s", text,
                              strerror(err));
    }
    return AIMX_OK;
}

/* A throwaway socket bound to a:0 says whether a is ours: no packet is
 * sent, and the kernel answers EADDRNOTAVAIL for a foreign address. */
static int
source_local(const aimx_addr *a, int *err)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    int fd, ok;

    fd = socket(a->family == AIMX_AF_INET ? AF_INET : AF_INET6,
                SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return 0;
    }
    if (a->family == AIMX_AF_INET) {
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        memcpy(&sin.sin_addr, a->bytes, 4);
        ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
    } else {
        memset(&sin6, 0, sizeof sin6);
        sin6.sin6_family = AF_INET6;
        memcpy(&sin6.sin6_addr, a->bytes, 16);
        ok = bind(fd, (struct sockaddr *)&sin6, sizeof sin6) == 0;
    }
    *err = ok ? 0 : errno;
    close(fd);
    return ok;
}

/* Absent means "use the default"; the getters reported anything else. */
static aimx_status
found(aimx_status st)
{
    return st == AIMX_ERR_NOT_FOUND ? AIMX_OK : st;
}
