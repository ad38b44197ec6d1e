/* SPDX-License-Identifier: MIT */
/* "HOST[:PORT]" and "[IPv6]:PORT", as `aimx verify --target` and the
 * top-level verify_target take them. */
#ifndef AIMX_HOSTPORT_H
#define AIMX_HOSTPORT_H

#include <aimx/plugin.h>

#include <stddef.h>
#include <stdint.h>

typedef struct aimx_hostport {
    char host[256]; /* a host name (lower case, no trailing dot) or the
                       IP literal without brackets */
    int is_ip;
    aimx_addr addr; /* when is_ip */
    uint16_t port;  /* 0 when not given */
} aimx_hostport;

/*
 * Accepts "mx.example.org", "mx.example.org:2525", "192.0.2.1",
 * "192.0.2.1:25", "[2001:db8::1]", "[2001:db8::1]:25" and a bare IPv6
 * address without a port ("2001:db8::1").  Returns 0, or -1 with a
 * sentence in err.
 */
int aimx__hostport_parse(const char *text, aimx_hostport *out, char *err,
                         size_t errlen);

#endif
