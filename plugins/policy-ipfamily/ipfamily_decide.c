/* SPDX-License-Identifier: MIT */
/*
 * The truth table of policy-ipfamily.  A lookup is "ok" (addresses),
 * "none" (a definitive answer without addresses) or "fail" (no answer we
 * can trust).  The one rule everything else follows: a failed lookup never
 * becomes a permanent "no address", because a DNS hiccup must not bounce
 * mail; it defers instead.
 */
#include "ipfamily_decide.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

enum lookup_class { LOOKUP_OK, LOOKUP_NONE, LOOKUP_FAIL };

/* True when the writer's struct_size covers the field. */
#define HAS_FIELD(p, type, field)                                              \
    ((p)->struct_size >= offsetof(type, field) + sizeof((p)->field))

static enum lookup_class classify(uint32_t outcome, size_t count);
static const char *outcome_text(uint32_t outcome);
static int input_ok(const aimx_policy_input *in, const aimx_policy_output *out);
static void push(aimx_policy_output *out, size_t index);
static aimx_status use_range(aimx_policy_output *out, size_t first,
                             size_t count);
static aimx_status use_both(aimx_policy_output *out, size_t a_count,
                            size_t aaaa_count, int prefer_ipv6);
static aimx_status finish_use(aimx_policy_output *out);
static aimx_status refuse(aimx_policy_output *out, uint32_t verdict,
                          const char *reason, const char *fmt, ...)
    AIMX_PRINTF(4, 5);

aimx_status
ipfamily_decide(int enable_ipv6, int prefer_ipv6, const aimx_policy_input *in,
                aimx_policy_output *out)
{
    enum lookup_class a, aaaa;
    const char *host;

    if (!input_ok(in, out))
        return AIMX_ERR_INVALID;
    out->verdict = AIMX_POLICY_USE;
    out->flags = 0;
    out->target_count = 0;
    out->reason[0] = '\0';
    out->detail[0] = '\0';

    host = in->mx_host && in->mx_host[0] ? in->mx_host : "the MX host";
    a = classify(in->a_outcome, in->a_count);
    aaaa = classify(in->aaaa_outcome, in->aaaa_count);

    if (!enable_ipv6) {
        if (a == LOOKUP_OK)
            return use_range(out, 0, in->a_count);
        if (a == LOOKUP_FAIL)
            return refuse(out, AIMX_POLICY_DEFER, "dns_a_failed",
                          "The A lookup for %s failed (%s).", host,
                          outcome_text(in->a_outcome));
        /* The AAAA result only sharpens the sentence: without IPv6 this
         * host is unusable whatever it says. */
        if (aaaa == LOOKUP_OK)
            return refuse(out, AIMX_POLICY_SKIP, "no_ipv4",
                          "%s has only IPv6 addresses and enable_ipv6 = false.",
                          host);
        return refuse(out, AIMX_POLICY_SKIP, "no_ipv4",
                      "%s has no IPv4 address.", host);
    }

    if (a == LOOKUP_OK && aaaa == LOOKUP_OK)
        return use_both(out, in->a_count, in->aaaa_count, prefer_ipv6);
    /* One usable family is enough: a failure of the other costs only the
     * alternative, and deferring would delay deliverable mail. */
    if (a == LOOKUP_OK)
        return use_range(out, 0, in->a_count);
    if (aaaa == LOOKUP_OK)
        return use_range(out, in->a_count, in->aaaa_count);
    if (a == LOOKUP_NONE && aaaa == LOOKUP_NONE)
        return refuse(out, AIMX_POLICY_SKIP, "no_address",
                      "%s has no IPv4 or IPv6 address.", host);
    if (a == LOOKUP_FAIL && aaaa == LOOKUP_FAIL)
        return refuse(out, AIMX_POLICY_DEFER, "dns_failed",
                      "The A and AAAA lookups for %s failed (%s; %s).", host,
                      outcome_text(in->a_outcome),
                      outcome_text(in->aaaa_outcome));
    if (a == LOOKUP_FAIL)
        return refuse(
            out, AIMX_POLICY_DEFER, "dns_a_failed",
            "The A lookup for %s failed (%s) and it has no IPv6 address.", host,
            outcome_text(in->a_outcome));
    return refuse(
        out, AIMX_POLICY_DEFER, "dns_aaaa_failed",
        "The AAAA lookup for %s failed (%s) and it has no IPv4 address.", host,
        outcome_text(in->aaaa_outcome));
}

static enum lookup_class
classify(uint32_t outcome, size_t count)
{
    switch (outcome) {
    case AIMX_DNS_OK:
        /* A resolver saying OK with no record must not yield an empty USE. */
        return count > 0 ? LOOKUP_OK : LOOKUP_NONE;
    case AIMX_DNS_NODATA:
    case AIMX_DNS_NXDOMAIN:
    case AIMX_DNS_BADNAME:
        return LOOKUP_NONE;
    default:
        /* The temporary outcomes, CANCELLED, and any value a later ABI minor
         * appends: what we do not understand must not bounce mail. */
        return LOOKUP_FAIL;
    }
}

static const char *
outcome_text(uint32_t outcome)
{
    switch (outcome) {
    case AIMX_DNS_SERVFAIL:
        return "SERVFAIL";
    case AIMX_DNS_REFUSED:
        return "REFUSED";
    case AIMX_DNS_TIMEOUT:
        return "timed out";
    case AIMX_DNS_UNREACHABLE:
        return "no DNS server reachable";
    case AIMX_DNS_LOCALERR:
        return "local resolver error";
    case AIMX_DNS_CANCELLED:
        return "cancelled";
    default:
        return "unknown DNS outcome";
    }
}

/* The host builds these; a mismatch is its bug, and guessing could send
 * mail to an address the resolver never returned. */
static int
input_ok(const aimx_policy_input *in, const aimx_policy_output *out)
{
    uint64_t a, aaaa;

    if (!in || !out)
        return 0;
    if (!HAS_FIELD(in, aimx_policy_input, aaaa_count) ||
        !HAS_FIELD(out, aimx_policy_output, detail))
        return 0;
    if ((in->a_count && !in->a_addrs) || (in->aaaa_count && !in->aaaa_addrs))
        return 0;
    /* Targets are 32-bit indices over both arrays. */
    a = in->a_count;
    aaaa = in->aaaa_count;
    if (a > UINT32_MAX || aaaa > UINT32_MAX - a)
        return 0;
    return out->target_cap == 0 || out->targets != NULL;
}

static void
push(aimx_policy_output *out, size_t index)
{
    if (out->target_count < out->target_cap)
        out->targets[out->target_count++] = (uint32_t)index;
}

static aimx_status
use_range(aimx_policy_output *out, size_t first, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++)
        push(out, first + i);
    return finish_use(out);
}

/* RFC 8305 section 4 with a First Address Family Count of 1: the preferred
 * family's first address, then alternate, then whatever is left. */
static aimx_status
use_both(aimx_policy_output *out, size_t a_count, size_t aaaa_count,
         int prefer_ipv6)
{
    size_t first_base = prefer_ipv6 ? a_count : 0;
    size_t first_count = prefer_ipv6 ? aaaa_count : a_count;
    size_t second_base = prefer_ipv6 ? 0 : a_count;
    size_t second_count = prefer_ipv6 ? a_count : aaaa_count;
    size_t i;

    for (i = 0; i < first_count || i < second_count; i++) {
        if (i < first_count)
            push(out, first_base + i);
        if (i < second_count)
            push(out, second_base + i);
    }
    return finish_use(out);
}

static aimx_status
finish_use(aimx_policy_output *out)
{
    out->verdict = AIMX_POLICY_USE;
    /* Only reachable with target_cap == 0 despite addresses: a host bug. */
    return out->target_count > 0 ? AIMX_OK : AIMX_ERR_INVALID;
}

static aimx_status
refuse(aimx_policy_output *out, uint32_t verdict, const char *reason,
       const char *fmt, ...)
{
    va_list ap;

    out->verdict = verdict;
    out->target_count = 0;
    /* Every skip in the table is definitive, so F_TEMPORARY stays clear;
     * temporary trouble is reported as a DEFER instead. */
    out->flags = 0;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof out->detail, fmt, ap);
    va_end(ap);
    return AIMX_OK;
}
