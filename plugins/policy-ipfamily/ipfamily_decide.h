/* SPDX-License-Identifier: MIT */
/*
 * The address-family decision of policy-ipfamily, kept free of any host
 * service so that every row of its truth table can be unit-tested.
 */
#ifndef IPFAMILY_DECIDE_H
#define IPFAMILY_DECIDE_H

#include <aimx/plugin.h>

/*
 * Fills *out for one MX host from its A and AAAA lookups.  enable_ipv6 is
 * the top-level setting; prefer_ipv6 picks the family tried first when both
 * are usable (RFC 8305 section 4) and is ignored without IPv6.
 * Returns AIMX_ERR_INVALID for inconsistent input (the host's bug), else
 * AIMX_OK with a verdict.
 */
aimx_status ipfamily_decide(int enable_ipv6, int prefer_ipv6,
                            const aimx_policy_input *in,
                            aimx_policy_output *out);

#endif /* IPFAMILY_DECIDE_H */
