/* SPDX-License-Identifier: MIT */
/*
 * Routing: where mail for a domain goes, per RFC 5321 section 5.1 and RFC
 * 7505.  The core makes every MX decision here, for any resolver and any
 * policy; the policy plugin makes every address-family decision.
 */
#ifndef AIMX_ROUTE_H
#define AIMX_ROUTE_H

#include "host.h"

#include <aimx/plugin.h>

#include <signal.h>

enum aimx_route_status {
    AIMX_ROUTE_OK = 0,       /* at least one MX host is usable */
    AIMX_ROUTE_TEMPFAIL = 1, /* try again later */
    AIMX_ROUTE_PERMFAIL = 2  /* mail for it cannot be delivered */
};

typedef struct aimx_route_host {
    char name[256]; /* no trailing dot */
    uint16_t preference;
    int implicit;       /* no MX record: the domain itself */
    int looked_up;      /* A and AAAA were asked (not for core skips) */
    uint32_t a_outcome; /* enum aimx_dns_outcome */
    uint32_t aaaa_outcome;
    char a_diag[160];
    char aaaa_diag[160];
    aimx_addr *a;
    size_t a_count;
    aimx_addr *aaaa;
    size_t aaaa_count;
    uint32_t verdict; /* enum aimx_policy_verdict */
    int temporary;    /* a skip or defer that may go away */
    int core_reason;  /* reason set by the core, not the policy */
    char reason[32];
    char detail[512];
    aimx_addr *targets; /* connect targets, in order */
    size_t target_count;
} aimx_route_host;

typedef struct aimx_route {
    char domain[256];    /* A-labels, lower case, no trailing dot */
    int status;          /* enum aimx_route_status */
    char reason[32];     /* null_mx, nxdomain, dns_temporary, no_usable_mx */
    char enhanced[16];   /* RFC 3463 code for a failure */
    char detail[2048];   /* a sentence for a person */
    uint32_t mx_outcome; /* enum aimx_dns_outcome of the MX lookup */
    int null_mx;
    char mx_diag[160];
    aimx_route_host *hosts;
    size_t host_count;
} aimx_route;

typedef struct aimx_router {
    aimx_instance *resolver;
    aimx_instance *policy;
    int allow_private_targets;
    int max_addresses_per_host;
    int max_mx_hosts;
    uint64_t deadline_us;        /* absolute monotonic; 0: the resolver's own */
    volatile sig_atomic_t *stop; /* set by a signal: cancel the lookups */
} aimx_router;

/*
 * A domain or an address ("user@domain") given by a user, as the domain
 * in A-labels (IDNA2008/UTS #46), lower case, without a trailing dot.
 * Returns 0, or -1 with the reason in err.
 */
int aimx__route_domain_from_input(const char *input, char *domain, size_t len,
                                  char *err, size_t errlen);

/* Resolves every route at once: all MX lookups in flight together, then
 * every host's A and AAAA lookups together.  routes[i].domain is set by
 * the caller.  Returns 0, or -1 on an internal failure. */
int aimx__route_resolve(const aimx_router *r, aimx_route *routes, size_t n);
void aimx__route_free(aimx_route *routes, size_t n);

/* "ok", "nodata", "nxdomain", "servfail", "refused", "timeout",
 * "unreachable", "badname", "error". */
const char *aimx__dns_outcome_word(uint32_t outcome);
const char *aimx__verdict_word(uint32_t verdict);

/*
 * The pure steps, unit-tested on their own.
 * route_order_mx: sorts hosts by preference, shuffles equal preferences
 * (rnd supplies randomness: rnd(n) returns 0..n-1), and removes later
 * duplicates of a name.  Returns the new count.
 */
size_t aimx__route_order_mx(aimx_route_host *hosts, size_t n,
                            unsigned (*rnd)(unsigned n));

#endif
