/* SPDX-License-Identifier: MIT */
/* This machine's global unicast addresses, for `aimx setup` when neither
 * the command line nor the transport names the server's address. */
#ifndef AIMX_LOCALADDR_H
#define AIMX_LOCALADDR_H

#include <aimx/plugin.h>

#include <stddef.h>

/*
 * Fills out[0..cap) with the global unicast addresses of one family
 * (AIMX_AF_INET or AIMX_AF_INET6) found on up interfaces, in interface
 * order, without repeats.  Returns how many there are (possibly more than
 * cap), or -1 with errno.  The type lets callers inject a fake: setup
 * proves it never asks for IPv6 when the policy does not use it.
 */
typedef int aimx_localaddr_fn(void *arg, uint8_t family, aimx_addr *out,
                              size_t cap);

/* The real one, through getifaddrs(3); arg is unused. */
int aimx__local_addrs(void *arg, uint8_t family, aimx_addr *out, size_t cap);

#endif
