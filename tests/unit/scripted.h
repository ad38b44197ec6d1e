/* SPDX-License-Identifier: MIT */
/*
 * A scripted resolver for the core's tests.  It answers from a table and
 * holds every completion back until `hold` lookups are outstanding (or a
 * second has passed), then completes them all from its own thread: the
 * largest number in flight at once proves the core issued them together,
 * without timing anything.
 */
#ifndef AIMX_TEST_SCRIPTED_H
#define AIMX_TEST_SCRIPTED_H

#include <aimx/plugin.h>

#include <stddef.h>

struct answer {
    const char *name; /* absolute */
    uint16_t type;
    uint32_t outcome;
    const char *data[4]; /* MX: "10 mx.example", A/AAAA: address */
};

/* Resets the counters and installs a script. */
void scripted_dns_set(const struct answer *script, size_t len, size_t hold);
aimx_status scripted_dns_lookup(void *instance, const aimx_dns_query *q,
                                aimx_dns_sink *sink);
size_t scripted_dns_queries(void);
size_t scripted_dns_max_outstanding(void);
int scripted_dns_was_asked(uint16_t type, const char *name);

/* An IPv4-only policy: USE every A address, SKIP no_ipv4, DEFER when the A
 * lookup failed.  scripted_policy_bad_index makes it return an index it
 * was not given. */
extern int scripted_policy_bad_index;
aimx_status scripted_policy_select(void *instance, const aimx_policy_input *in,
                                   aimx_policy_output *out);

#endif
