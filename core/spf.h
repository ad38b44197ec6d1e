/* SPDX-License-Identifier: MIT */
/*
 * SPF (RFC 7208) evaluated the way a receiving server evaluates it:
 * check_host() for one address over a lookup callback, with the limits of
 * section 4.6.4 (10 DNS-querying terms, 2 void lookups).  Pure: the
 * callback answers from the resolver in aimx, from a table in the tests.
 */
#ifndef AIMX_SPF_H
#define AIMX_SPF_H

#include "lookup.h"

#include <aimx/plugin.h>

#include <stddef.h>

enum aimx_spf_result {
    AIMX_SPF_NONE = 0,
    AIMX_SPF_NEUTRAL = 1,
    AIMX_SPF_PASS = 2,
    AIMX_SPF_FAIL = 3,
    AIMX_SPF_SOFTFAIL = 4,
    AIMX_SPF_TEMPERROR = 5,
    AIMX_SPF_PERMERROR = 6
};

#define AIMX_SPF_MAX_LOOKUPS 10 /* RFC 7208 4.6.4 */
#define AIMX_SPF_MAX_VOID    2

/* The answer for name (no trailing dot) and type; NULL is a local failure
 * (a temperror).  The answer must stay valid until aimx__spf_check()
 * returns.  Called from the thread running the check. */
typedef const aimx_dns_answer *aimx_spf_lookup_fn(void *arg, const char *name,
                                                  uint16_t type);

typedef struct aimx_spf_query {
    aimx_addr ip;       /* the connecting address */
    const char *domain; /* the domain checked, no trailing dot */
    const char *sender; /* MAIL FROM, "local@domain" (for macros) */
    const char *helo;   /* the EHLO name (for %{h}); NULL: domain */
    aimx_spf_lookup_fn *lookup;
    void *arg;
} aimx_spf_query;

typedef struct aimx_spf_outcome {
    int result;        /* enum aimx_spf_result */
    char record[1024]; /* the domain's own SPF record, "" when none */
    char term[256];    /* the domain's term that decided, "" if none */
    char detail[512];  /* a sentence: why this result */
    unsigned lookups;  /* DNS-querying terms evaluated */
    unsigned void_lookups;
} aimx_spf_outcome;

void aimx__spf_check(const aimx_spf_query *q, aimx_spf_outcome *out);

/* "none", "neutral", "pass", "fail", "softfail", "temperror",
 * "permerror". */
const char *aimx__spf_result_word(int result);

/* Is text (len octets) an SPF version 1 record: "v=spf1" followed by a
 * space or the end, in any case (RFC 7208 4.5)? */
int aimx__spf_is_record(const char *text, size_t len);

/* Does one term of a record ("ip4:127.0.0.0/8", "+ip6:::1") authorise
 * ip on its own, with a pass?  Used to merge records. */
int aimx__spf_term_covers(const char *term, size_t len, const aimx_addr *ip);

/* The reverse-lookup name of an address: "4.3.2.1.in-addr.arpa" or the
 * 32 nibbles under "ip6.arpa".  Returns buf. */
const char *aimx__addr_reverse_name(const aimx_addr *a, char *buf, size_t len);

#endif
