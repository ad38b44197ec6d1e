/* SPDX-License-Identifier: MIT */
/*
 * Config of transport-smtp.  The timeouts' defaults are RFC 5321
 * 4.5.3.2's, as Postfix has them (smtp_*_timeout).
 */
#include "smtp_config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

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

aimx_status
smtp_config_read(const aimx_host_api *api, aimx_host *host,
                 struct smtp_settings *set)
{
    const char *helo = NULL, *domain = NULL;
    int64_t port = 0, max_rcpt = 0;
    uint64_t us = 0;
    aimx_status st_port, st_helo, st_domain, st_max, st_t;
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

/* Absent means "use the default"; the getters reported anything else. */
static aimx_status
found(aimx_status st)
{
    return st == AIMX_ERR_NOT_FOUND ? AIMX_OK : st;
}
