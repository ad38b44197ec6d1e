/* SPDX-License-Identifier: MIT */
/*
 * Parsing a `servers` entry.  c-ares has its own parser
 * (ares_set_servers_ports_csv), but 1.18.1 reads "::1:5353" as the address
 * ::0.1.83.83 on port 53 without a word, so the plugin parses the text
 * itself and hands c-ares binary addresses (ares_set_servers_ports).
 */
#include "rcares_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int parse_port(const char *s, uint16_t *port, char *why, size_t why_len);
static int copy_part(const char *s, size_t n, char *buf, size_t len);
static int all_zero(const unsigned char *p, size_t n);

int
rcares_server_parse(const char *text, struct rcares_server *out, int *ambiguous,
                    char *why, size_t why_len)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon, *close;
    size_t addr_len;

    memset(out, 0, sizeof *out);
    *ambiguous = 0;
    if (!text || !*text) {
        snprintf(why, why_len, "is empty");
        return -1;
    }
    if (text[0] == '[') {
        close = strchr(text, ']');
        if (!close) {
            snprintf(why, why_len, "has '[' without ']'");
            return -1;
        }
        if (!copy_part(text + 1, (size_t)(close - text - 1), host,
                       sizeof host) ||
            inet_pton(AF_INET6, host, out->addr) != 1) {
            snprintf(why, why_len,
                     "has no IPv6 address between the brackets (a host name "
                     "is not allowed)");
            return -1;
        }
        out->family = AF_INET6;
        /* Brackets exist only to set a port apart from the address; "[::1]"
         * alone is most likely a port forgotten, not a port 53 meant. */
        if (close[1] != ':') {
            snprintf(why, why_len,
                     "needs \":PORT\" after ']': write \"%s\" for port 53 or "
                     "\"[%s]:PORT\"",
                     host, host);
            return -1;
        }
        if (parse_port(close + 2, &out->port, why, why_len) != 0)
            return -1;
    } else if (!(colon = strchr(text, ':'))) {
        if (inet_pton(AF_INET, text, out->addr) != 1) {
            snprintf(why, why_len,
                     "is not an IP address (host names are not allowed: the "
                     "resolver cannot resolve its own servers)");
            return -1;
        }
        out->family = AF_INET;
        out->port = 53;
    } else if (!strchr(colon + 1, ':')) {
        /* One colon: IPv4:PORT (an IPv6 address has at least two). */
        if (!copy_part(text, (size_t)(colon - text), host, sizeof host) ||
            inet_pton(AF_INET, host, out->addr) != 1) {
            snprintf(why, why_len,
                     "is not an IPv4 address with a port (\"IP:PORT\"); "
                     "write an IPv6 address with a port as \"[IPv6]:PORT\"");
            return -1;
        }
        out->family = AF_INET;
        if (parse_port(colon + 1, &out->port, why, why_len) != 0)
            return -1;
    } else {
        if (inet_pton(AF_INET6, text, out->addr) != 1) {
            snprintf(why, why_len,
                     "is not an IPv6 address (with a port, write "
                     "\"[IPv6]:PORT\"; a host name or a zone index is not "
                     "allowed)");
            return -1;
        }
        out->family = AF_INET6;
        out->port = 53;
        /* "::1:5353" is a valid address, but if the text without its last
         * group is one too, the writer may have meant a port. */
        colon = strrchr(text, ':');
        if (colon[1] >= '0' && colon[1] <= '9' &&
            strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
            copy_part(text, (size_t)(colon - text), host, sizeof host)) {
            unsigned char tmp[16];
            *ambiguous = inet_pton(AF_INET6, host, tmp) == 1;
        }
    }
    addr_len = out->family == AF_INET ? 4 : 16;
    if (all_zero(out->addr, addr_len)) {
        snprintf(why, why_len,
                 "is the unspecified address, which names no server");
        return -1;
    }
    rcares_server_label(out);
    return 0;
}

void
rcares_server_label(struct rcares_server *srv)
{
    char host[INET6_ADDRSTRLEN];

    if (!inet_ntop(srv->family, srv->addr, host, sizeof host))
        snprintf(host, sizeof host, "?");
    snprintf(srv->label, sizeof srv->label,
             srv->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
             (unsigned)srv->port);
}

/* Decimal digits only, 1..65535: no sign, space or hex. */
static int
parse_port(const char *s, uint16_t *port, char *why, size_t why_len)
{
    unsigned long v = 0;
    size_t n = strspn(s, "0123456789");

    if (n == 0 || s[n] != '\0') {
        snprintf(why, why_len, "has no port number after ':'");
        return -1;
    }
    if (n > 5 || (v = strtoul(s, NULL, 10)) < 1 || v > 65535) {
        snprintf(why, why_len, "has port %s, outside 1..65535", s);
        return -1;
    }
    *port = (uint16_t)v;
    return 0;
}

/* Copies n characters and a NUL; 0 if they do not fit. */
static int
copy_part(const char *s, size_t n, char *buf, size_t len)
{
    if (n >= len)
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 1;
}

static int
all_zero(const unsigned char *p, size_t n)
{
    while (n--)
        if (*p++)
            return 0;
    return 1;
}
