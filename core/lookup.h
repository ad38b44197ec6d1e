/* SPDX-License-Identifier: MIT */
/*
 * Many DNS lookups through the resolver plugin, in flight at once, with
 * every answer kept until the end of the command.  `aimx setup --verify`
 * asks for a handful of unrelated names together, then follows SPF terms
 * from several threads; each (name, type) is asked of the resolver once,
 * however many callers want it, and every answer stays valid until the
 * cache is freed, so callers hold plain pointers.
 */
#ifndef AIMX_LOOKUP_H
#define AIMX_LOOKUP_H

#include "dns_sink.h"
#include "host.h"

#include <aimx/plugin.h>

#include <stddef.h>
#include <stdint.h>

/* One finished lookup.  Records are those the resolver gave, CNAMEs
 * included: filter on type. */
typedef struct aimx_dns_answer {
    char name[256]; /* lower case, no trailing dot */
    uint16_t type;
    uint32_t outcome; /* enum aimx_dns_outcome */
    char diag[160];
    const aimx_dns_rr *records;
    size_t count;
} aimx_dns_answer;

/* A name and type to ask for. */
typedef struct aimx_dns_ask {
    const char *name; /* with or without the trailing dot */
    uint16_t type;
} aimx_dns_ask;

typedef struct aimx_dns_cache aimx_dns_cache;

/* deadline_us: absolute monotonic time after which lookups still in
 * flight are cancelled; 0 leaves it to the resolver's own timeout. */
aimx_dns_cache *aimx__dns_cache_new(aimx_instance *resolver,
                                    uint64_t deadline_us);
/* Every lookup has completed by then: callers wait for what they ask. */
void aimx__dns_cache_free(aimx_dns_cache *c);

/* Starts every lookup not yet asked, all at once, and waits until each of
 * the n is answered.  Thread-safe.  Returns 0, or -1 out of memory. */
int aimx__dns_cache_fetch(aimx_dns_cache *c, const aimx_dns_ask *asks,
                          size_t n);
/* One answer, looked up (and waited for) unless already known.
 * Thread-safe.  NULL only when out of memory. */
const aimx_dns_answer *aimx__dns_cache_get(aimx_dns_cache *c, const char *name,
                                           uint16_t type);
/* How many lookups were handed to the resolver (tests). */
size_t aimx__dns_cache_lookups(aimx_dns_cache *c);

/* Temporary: SERVFAIL, REFUSED, TIMEOUT, UNREACHABLE, LOCALERR,
 * CANCELLED. */
int aimx__dns_outcome_temporary(uint32_t outcome);

#endif
