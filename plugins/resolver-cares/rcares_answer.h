/* SPDX-License-Identifier: MIT */
/*
 * Reading a DNS answer into the records resolver-cares reports.  Runs on
 * the plugin's I/O thread (it calls c-ares' parsers).
 */
#ifndef RCARES_ANSWER_H
#define RCARES_ANSWER_H

#include <aimx/plugin.h>

#include <stddef.h>
#include <stdint.h>

/* CNAME steps a lookup follows in all, inside answers and by re-querying. */
#define RCARES_MAX_CHAIN 8

/* One record to report; every pointer is owned (malloc). */
struct rcares_rec {
    uint16_t type;
    uint16_t preference; /* MX */
    uint32_t ttl;
    char *owner;         /* no trailing dot; "." for the root */
    char *target;        /* MX exchange, PTR or CNAME target, or NULL */
    aimx_addr address;   /* A, AAAA */
    unsigned char *text; /* TXT: the record's strings joined */
    size_t text_len;
    unsigned char *rdata; /* self-contained RDATA, or NULL */
    size_t rdata_len;
};

struct rcares_answer {
    int rcode;
    int ad;                  /* the header's AD bit */
    struct rcares_rec *hops; /* the CNAMEs followed, in order */
    size_t nhops;
    struct rcares_rec *recs; /* records of the type, owned by the end */
    size_t nrecs;
    char *end;    /* the chain's last name (the query name without hops) */
    int dangling; /* hops were followed and the end has no records */
};

/*
 * Reads abuf (a whole reply) for records of qtype owned by qname or by the
 * end of a CNAME chain starting at it.  seen[0..nseen) are the names the
 * lookup already went through (qname included): reaching one again is a
 * loop.  At most budget CNAMEs are followed.  Returns an enum rcares_parse;
 * *out is filled on RCARES_P_OK and empty otherwise.
 */
int rcares_answer_parse(const unsigned char *abuf, size_t alen, uint16_t qtype,
                        const char *qname, const char *const *seen,
                        size_t nseen, size_t budget, struct rcares_answer *out);

void rcares_answer_free(struct rcares_answer *a);
void rcares_rec_free(struct rcares_rec *r);

/* "example.test." -> "example.test", "." -> "." (malloc), NULL on ENOMEM. */
char *rcares_name_report(const char *absolute);

#endif
