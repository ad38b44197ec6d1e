/* SPDX-License-Identifier: MIT */
/*
 * The `servers` setting of resolver-cares, one entry at a time.  A pure
 * function (no c-ares, no host) so that the unit tests can check every
 * spelling without a network.
 */
#ifndef RCARES_SERVER_H
#define RCARES_SERVER_H

#include <stddef.h>
#include <stdint.h>

/* "[" + 45 characters of IPv6 text + "]:" + 5 digits + NUL, rounded up. */
#define RCARES_LABEL_MAX 64

struct rcares_server {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network byte order; IPv4 uses addr[0..3] */
    uint16_t port;
    /* "127.0.0.1:53" or "[::1]:5353": for diagnostics and completions. */
    char label[RCARES_LABEL_MAX];
};

/*
 * Parses "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6 address (which takes
 * no port: "::1:5353" is the address ::1:5353 on port 53).  Returns 0 and
 * fills *out, or -1 with a reason for a person in why.  *ambiguous is set
 * when a bare IPv6 address also reads as "IPv6:PORT", so that the caller can
 * warn.
 */
int rcares_server_parse(const char *text, struct rcares_server *out,
                        int *ambiguous, char *why, size_t why_len);

/* Writes out->label from its address and port. */
void rcares_server_label(struct rcares_server *srv);

#endif
