/* SPDX-License-Identifier: MIT */
#include "hostport.h"

#include "config.h"
#include "netaddr.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int parse_port(const char *s, uint16_t *out);

/* 1..65535, decimal digits only. */
static int
parse_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;

    if (*s == '\0' || strlen(s) > 5)
        return -1;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int
aimx__hostport_parse(const char *text, aimx_hostport *out, char *err,
                     size_t errlen)
{
    char host[300];
    const char *port = NULL;
    const char *colon;

    memset(out, 0, sizeof *out);
    if (text == NULL || *text == '\0') {
        snprintf(err, errlen, "the target is empty");
        return -1;
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || (size_t)(close - text - 1) >= sizeof host) {
            snprintf(err, errlen, "'%s' has '[' without ']'", text);
            return -1;
        }
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0') {
            snprintf(err, errlen,
                     "'%s': only ':PORT' may follow ']' (as in [::1]:25)",
                     text);
            return -1;
        }
        if (aimx__addr_parse(host, &out->addr) != 0) {
            snprintf(err, errlen,
                     "'%s': '%s' inside brackets is not an IP address", text,
                     host);
            return -1;
        }
        out->is_ip = 1;
    } else {
        colon = strchr(text, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            /* Two colons or more: a bare IPv6 address, never a port. */
            if (aimx__addr_parse(text, &out->addr) != 0 ||
                out->addr.family != AIMX_AF_INET6) {
                snprintf(err, errlen,
                         "'%s' is not an IPv6 address; write an IPv6 "
                         "address with a port as [ADDRESS]:PORT",
                         text);
                return -1;
            }
            aimx__addr_text(&out->addr, out->host, sizeof out->host);
            out->is_ip = 1;
            return 0;
        }
        size_t hl = colon ? (size_t)(colon - text) : strlen(text);
        if (hl >= sizeof host) {
            snprintf(err, errlen, "'%s' is too long for a host name", text);
            return -1;
        }
        memcpy(host, text, hl);
        host[hl] = '\0';
        if (colon != NULL)
            port = colon + 1;
        if (aimx__addr_parse(host, &out->addr) == 0) {
            out->is_ip = 1;
        } else {
            if (hl > 1 && host[hl - 1] == '.')
                host[--hl] = '\0';
            for (char *p = host; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            if (!aimx__valid_hostname(host)) {
                snprintf(err, errlen,
                         "'%s' is not a host name or an IP address", host);
                return -1;
            }
        }
    }
    if (port != NULL && parse_port(port, &out->port) != 0) {
        snprintf(err, errlen,
                 "'%s': the port '%s' is not a number from 1 to "
                 "65535",
                 text, port);
        return -1;
    }
    if (out->is_ip)
        aimx__addr_text(&out->addr, out->host, sizeof out->host);
    else
        snprintf(out->host, sizeof out->host, "%.255s", host);
    return 0;
}
