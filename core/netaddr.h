/* SPDX-License-Identifier: MIT */
/* Address helpers: text form, IP literals, and which targets are public. */
#ifndef AIMX_NETADDR_H
#define AIMX_NETADDR_H

#include <aimx/plugin.h>

#include <stddef.h>

/* Enough for any IPv6 address in text form. */
#define AIMX_ADDR_TEXT_MAX 48

/* "127.0.0.1" or "::1" (never bracketed). */
const char *aimx__addr_text(const aimx_addr *a, char *buf, size_t len);
/* Parses an IPv4 or IPv6 literal (no brackets, no port).  0 or -1. */
int aimx__addr_parse(const char *text, aimx_addr *out);
/* Is name an IP literal ("192.0.2.1", "::1", "[::1]", "[IPv6:...]")? */
int aimx__is_ip_literal(const char *name);

/*
 * Returns NULL for a global unicast address, else the class that makes it
 * unfit as a mail target from the public internet ("loopback",
 * "private (RFC 1918)", "shared (CGNAT, RFC 6598)", "link-local", ...).
 * IPv6 forms that embed an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96,
 * 6to4) are judged by the address they embed.
 */
const char *aimx__addr_nonglobal_class(const aimx_addr *a);

#endif
