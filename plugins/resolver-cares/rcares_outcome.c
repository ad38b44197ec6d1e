/* SPDX-License-Identifier: MIT */
/*
 * Reply classification and the outcome mapping.  Everything that decides
 * between "permanent" and "temporary" for the core lives here.
 */
#include "rcares_outcome.h"

#include <aimx/plugin.h>

#include <ares.h>

/* RFC 1035 section 4.1.1 and RFC 6895 RCODEs. */
#define RCODE_NOERROR  0
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3
#define RCODE_REFUSED  5

static uint32_t exhausted(const struct rcares_tally *t, int deadline);

enum rcares_verdict
rcares_classify(int ares_status, int rcode, int parse, size_t typed,
                int dangling)
{
    switch (ares_status) {
    case ARES_SUCCESS:
        break;
    case ARES_ETIMEOUT:
        return RCARES_V_TIMEOUT;
    /* c-ares 1.18 says ECONNREFUSED for an ICMP unreachable or a TCP RST
     * (and, without ARES_FLAG_NOCHECKRESP, for SERVFAIL and REFUSED too,
     * which is why the plugin sets that flag). */
    case ARES_ECONNREFUSED:
        return RCARES_V_UNREACHABLE;
    /* The next four come only from ares_query(), which the plugin does not
     * use; they are mapped for completeness. */
    case ARES_ESERVFAIL:
    case ARES_EFORMERR:
    case ARES_ENOTIMP:
        return RCARES_V_SERVFAIL;
    case ARES_EREFUSED:
        return RCARES_V_REFUSED;
    case ARES_EBADRESP:
        return RCARES_V_BADREPLY;
    case ARES_EBADNAME:
        return RCARES_V_BADNAME;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        return RCARES_V_CANCELLED;
    default:
        return RCARES_V_LOCALERR;
    }
    /* Too short to hold an RCODE: c-ares drops those itself, but a reply
     * that says nothing is the server's fault either way. */
    if (rcode < 0)
        return RCARES_V_BADREPLY;
    switch (rcode) {
    case RCODE_NOERROR:
    case RCODE_NXDOMAIN:
        break;
    case RCODE_REFUSED:
        return RCARES_V_REFUSED;
    /* FORMERR, NOTIMP and the rest: this server cannot answer, another
     * one may; none of them says anything about the name. */
    case RCODE_SERVFAIL:
    default:
        return RCARES_V_SERVFAIL;
    }
    if (parse == RCARES_P_NOMEM)
        return RCARES_V_LOCALERR;
    if (parse == RCARES_P_BAD)
        return RCARES_V_BADREPLY;
    if (parse == RCARES_P_CHAIN)
        return RCARES_V_CHAIN_BROKEN;
    /* RFC 6604: with a chain, the RCODE is about its last name. */
    if (rcode == RCODE_NXDOMAIN)
        return RCARES_V_NXDOMAIN;
    if (typed > 0)
        return RCARES_V_OK;
    return dangling ? RCARES_V_CHASE : RCARES_V_NODATA;
}

int
rcares_verdict_fails_over(enum rcares_verdict v)
{
    return v == RCARES_V_SERVFAIL || v == RCARES_V_REFUSED ||
           v == RCARES_V_BADREPLY || v == RCARES_V_TIMEOUT ||
           v == RCARES_V_UNREACHABLE;
}

uint32_t
rcares_outcome(const struct rcares_tally *t)
{
    switch (t->final) {
    case RCARES_V_OK:
        return AIMX_DNS_OK;
    case RCARES_V_NODATA:
        return AIMX_DNS_NODATA;
    case RCARES_V_NXDOMAIN:
        return AIMX_DNS_NXDOMAIN;
    case RCARES_V_BADNAME:
        return AIMX_DNS_BADNAME;
    case RCARES_V_CANCELLED:
        return AIMX_DNS_CANCELLED;
    /* A loop or a chain too long is the zone's fault and may be fixed any
     * minute; recursive servers (BIND, Unbound) answer SERVFAIL for it, and
     * a temporary outcome never bounces mail on a transient mistake. */
    case RCARES_V_CHAIN_BROKEN:
        return AIMX_DNS_SERVFAIL;
    case RCARES_V_DEADLINE:
        return exhausted(t, 1);
    case RCARES_V_LOCALERR:
    /* A CHASE never ends a lookup: reaching here is our bug. */
    case RCARES_V_CHASE:
        return AIMX_DNS_LOCALERR;
    default:
        return exhausted(t, 0);
    }
}

/* No server gave a usable answer.  The servers that did answer speak for
 * the name; silence counts only when nobody answered. */
static uint32_t
exhausted(const struct rcares_tally *t, int deadline)
{
    unsigned answered = t->servfail + t->refused + t->badreply;

    if (answered > 0) {
        if (t->refused == answered)
            return AIMX_DNS_REFUSED;
        if (t->badreply == answered)
            return AIMX_DNS_LOCALERR;
        return AIMX_DNS_SERVFAIL;
    }
    if (deadline || t->timeout > 0)
        return AIMX_DNS_TIMEOUT;
    if (t->unreachable > 0)
        return AIMX_DNS_UNREACHABLE;
    /* Nothing was asked at all (cannot happen with >= 1 server). */
    return AIMX_DNS_LOCALERR;
}

const char *
rcares_verdict_name(enum rcares_verdict v)
{
    static const char *const names[] = {
        "no usable answer",  /* RCARES_V_NONE */
        "ok",                /* RCARES_V_OK */
        "nodata",            /* RCARES_V_NODATA */
        "nxdomain",          /* RCARES_V_NXDOMAIN */
        "cname",             /* RCARES_V_CHASE */
        "servfail",          /* RCARES_V_SERVFAIL */
        "refused",           /* RCARES_V_REFUSED */
        "bad reply",         /* RCARES_V_BADREPLY */
        "timeout",           /* RCARES_V_TIMEOUT */
        "unreachable",       /* RCARES_V_UNREACHABLE */
        "local error",       /* RCARES_V_LOCALERR */
        "bad name",          /* RCARES_V_BADNAME */
        "cancelled",         /* RCARES_V_CANCELLED */
        "deadline",          /* RCARES_V_DEADLINE */
        "broken CNAME chain" /* RCARES_V_CHAIN_BROKEN */
    };

    if ((unsigned)v < sizeof names / sizeof names[0])
        return names[v];
    return "?";
}
