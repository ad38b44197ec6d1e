/* SPDX-License-Identifier: MIT */
/*
 * What a reply means, and what a lookup's outcome is.  Pure functions: the
 * unit tests check every row without a server.
 */
#ifndef RCARES_OUTCOME_H
#define RCARES_OUTCOME_H

#include <stddef.h>
#include <stdint.h>

/* How the answer's records read (see rcares_answer.h). */
enum rcares_parse {
    RCARES_P_OK = 0,    /* well formed */
    RCARES_P_BAD = 1,   /* malformed: a server's fault */
    RCARES_P_CHAIN = 2, /* a CNAME loop, or a chain longer than allowed */
    RCARES_P_NOMEM = 3  /* our own failure */
};

/* The verdict on one reply, or on how a lookup ended. */
enum rcares_verdict {
    RCARES_V_NONE = 0,    /* every server failed: the tally decides */
    RCARES_V_OK,          /* records of the requested type */
    RCARES_V_NODATA,      /* the name exists, no record of the type */
    RCARES_V_NXDOMAIN,    /* the name does not exist */
    RCARES_V_CHASE,       /* a CNAME not followed by the server: re-query */
    RCARES_V_SERVFAIL,    /* SERVFAIL or another error RCODE */
    RCARES_V_REFUSED,     /* REFUSED */
    RCARES_V_BADREPLY,    /* a reply that cannot be read */
    RCARES_V_TIMEOUT,     /* no reply in time from this server */
    RCARES_V_UNREACHABLE, /* connection refused or unreachable */
    RCARES_V_LOCALERR,    /* our own failure (memory...) */
    RCARES_V_BADNAME,     /* the name cannot be queried */
    RCARES_V_CANCELLED,   /* cancel() or destroy() */
    RCARES_V_DEADLINE,    /* the lookup's deadline passed */
    RCARES_V_CHAIN_BROKEN /* a CNAME loop or an over-long chain */
};

/* Per-server failures of one query step (each server counted once, by its
 * last state), and how the step ended. */
struct rcares_tally {
    int final; /* enum rcares_verdict */
    unsigned servfail, refused, badreply, timeout, unreachable;
};

/*
 * One reply.  ares_status is the c-ares callback status; rcode (-1: none),
 * parse (enum rcares_parse) and the counts matter only for ARES_SUCCESS
 * with a packet: typed = records of
 * the requested type at the end of the chain, dangling = the chain ends on a
 * CNAME target the answer says nothing more about.
 */
enum rcares_verdict rcares_classify(int ares_status, int rcode, int parse,
                                    size_t typed, int dangling);

/* 1 if this verdict moves on to the next server. */
int rcares_verdict_fails_over(enum rcares_verdict v);

/* The only mapping to enum aimx_dns_outcome. */
uint32_t rcares_outcome(const struct rcares_tally *t);

/* A short lower-case word for diagnostics ("servfail", "timeout"...). */
const char *rcares_verdict_name(enum rcares_verdict v);

#endif
