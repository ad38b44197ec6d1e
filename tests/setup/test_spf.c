/* SPDX-License-Identifier: MIT */
/* The SPF evaluator (RFC 7208) over an in-memory DNS table: what a
 * receiver concludes for one address, lookup limits included.  Nothing is
 * sent anywhere; the addresses are loopback ones anyway. */
#include "netaddr.h"
#include "spf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

/* One zone entry: name, type, outcome and up to 12 data strings (TXT
 * text, MX "PREF NAME", PTR name, A/AAAA address). */
struct zrec {
    const char *name;
    uint16_t type;
    uint32_t outcome;
    const char *data[12];
};

static const struct zrec *zone;
static size_t zone_len;
static size_t asked;

/* Answers built on demand, kept until the test ends. */
static aimx_dns_answer *answers[256];
static aimx_dns_rr *rrs[256];
static size_t n_answers;

static const aimx_dns_answer *table_lookup(void *arg, const char *name,
                                           uint16_t type);
static void free_answers(void);
static int check(const char *ip, const char *domain, aimx_spf_outcome *out);

static void
free_answers(void)
{
    for (size_t i = 0; i < n_answers; i++) {
        for (size_t k = 0; k < answers[i]->count; k++) {
            free(rrs[i][k].owner);
            free(rrs[i][k].target);
            free(rrs[i][k].text);
        }
        free(rrs[i]);
        free(answers[i]);
    }
    n_answers = 0;
}

static const aimx_dns_answer *
table_lookup(void *arg, const char *name, uint16_t type)
{
    aimx_dns_answer *a;
    aimx_dns_rr *rr;
    size_t n = 0;
    int name_exists = 0;

    (void)arg;
    asked++;
    assert_true(n_answers < 256);
    a = calloc(1, sizeof *a);
    rr = calloc(12, sizeof *rr);
    assert_non_null(a);
    assert_non_null(rr);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->type = type;
    a->outcome = AIMX_DNS_NXDOMAIN;
    for (size_t i = 0; i < zone_len; i++) {
        const struct zrec *z = &zone[i];
        if (strcasecmp(z->name, name) != 0)
            continue;
        name_exists = 1;
        if (z->type != type)
            continue;
        a->outcome = z->outcome;
        for (size_t k = 0; k < 12 && z->data[k] != NULL && n < 12; k++) {
            aimx_dns_rr *r = &rr[n++];
            r->type = type;
            r->owner = strdup(name);
            if (type == AIMX_DNS_TXT) {
                r->text = (uint8_t *)strdup(z->data[k]);
                r->text_len = strlen(z->data[k]);
            } else if (type == AIMX_DNS_MX) {
                char host[256];
                unsigned pref;
                assert_int_equal(sscanf(z->data[k], "%u %255s", &pref, host),
                                 2);
                r->preference = (uint16_t)pref;
                r->target = strdup(host);
            } else if (type == AIMX_DNS_PTR) {
                r->target = strdup(z->data[k]);
            } else {
                assert_int_equal(aimx__addr_parse(z->data[k], &r->address), 0);
            }
        }
    }
    if (a->outcome == AIMX_DNS_NXDOMAIN && name_exists)
        a->outcome = AIMX_DNS_NODATA;
    if (a->outcome == AIMX_DNS_OK && n == 0)
        a->outcome = AIMX_DNS_NODATA;
    a->records = rr;
    a->count = n;
    rrs[n_answers] = rr;
    answers[n_answers++] = a;
    return a;
}

#define USE_ZONE(z)                                                            \
    do {                                                                       \
        zone = (z);                                                            \
        zone_len = sizeof(z) / sizeof((z)[0]);                                 \
        asked = 0;                                                             \
    } while (0)

static int
check(const char *ip, const char *domain, aimx_spf_outcome *out)
{
    aimx_spf_query q;

    memset(&q, 0, sizeof q);
    assert_int_equal(aimx__addr_parse(ip, &q.ip), 0);
    q.domain = domain;
    q.sender = "postmaster@sender.test";
    q.helo = "mail.sender.test";
    q.lookup = table_lookup;
    aimx__spf_check(&q, out);
    free_answers();
    return out->result;
}

static void
ip4_exact_and_look_alike(void **state)
{
    static const struct zrec z[] = {
        {"x.test", AIMX_DNS_TXT, 0, {"v=spf1 ip4:127.0.0.45 -all"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("127.0.0.45", "x.test", &o), AIMX_SPF_PASS);
    assert_string_equal(o.term, "ip4:127.0.0.45");
    assert_string_equal(o.record, "v=spf1 ip4:127.0.0.45 -all");
    /* 127.0.0.4 is a prefix of 127.0.0.45 as text, not as an address. */
    assert_int_equal(check("127.0.0.4", "x.test", &o), AIMX_SPF_FAIL);
    assert_string_equal(o.term, "-all");
    assert_int_equal(o.lookups, 0);
}

static void
cidr_covers(void **state)
{
    static const struct zrec z[] = {
        {"x.test", AIMX_DNS_TXT, 0, {"v=spf1 ip4:127.0.0.0/24 -all"}},
        {"y.test", AIMX_DNS_TXT, 0, {"v=spf1 ip4:127.0.0.64/26 ~all"}},
        {"z.test", AIMX_DNS_TXT, 0, {"v=spf1 ip4:10.0.0.0/0 -all"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("127.0.0.4", "x.test", &o), AIMX_SPF_PASS);
    assert_int_equal(check("127.0.1.4", "x.test", &o), AIMX_SPF_FAIL);
    assert_int_equal(check("127.0.0.100", "y.test", &o), AIMX_SPF_PASS);
    assert_int_equal(check("127.0.0.128", "y.test", &o), AIMX_SPF_SOFTFAIL);
    assert_int_equal(check("127.9.9.9", "z.test", &o), AIMX_SPF_PASS);
}

static void
ip6_with_cidr(void **state)
{
    static const struct zrec z[] = {
        {"x.test", AIMX_DNS_TXT, 0, {"v=spf1 ip6:::1 -all"}},
        {"y.test", AIMX_DNS_TXT, 0, {"v=spf1 ip6:::/112 ip4:127.0.0.1 -all"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("::1", "x.test", &o), AIMX_SPF_PASS);
    assert_int_equal(check("::2", "x.test", &o), AIMX_SPF_FAIL);
    assert_int_equal(check("::ff01", "y.test", &o), AIMX_SPF_PASS);
    assert_int_equal(check("::1:0:1", "y.test", &o), AIMX_SPF_FAIL);
    /* ip4 never matches an IPv6 address, nor ip6 an IPv4 one. */
    assert_int_equal(check("127.0.0.1", "x.test", &o), AIMX_SPF_FAIL);
    /* An IPv4-mapped address is checked as IPv4. */
    assert_int_equal(check("::ffff:127.0.0.1", "y.test", &o), AIMX_SPF_PASS);
}

static void
qualifiers(void **state)
{
    static const struct zrec z[] = {
        {"minus.test", AIMX_DNS_TXT, 0, {"v=spf1 -ip4:127.0.0.4 +all"}},
        {"tilde.test", AIMX_DNS_TXT, 0, {"v=spf1 ~all"}},
        {"query.test", AIMX_DNS_TXT, 0, {"v=spf1 ?ip4:127.0.0.4 -all"}},
        {"plus.test", AIMX_DNS_TXT, 0, {"v=spf1 +ip4:127.0.0.4 -all"}},
        {"noall.test", AIMX_DNS_TXT, 0, {"v=spf1 ip4:127.0.0.9"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("127.0.0.4", "minus.test", &o), AIMX_SPF_FAIL);
    assert_string_equal(o.term, "-ip4:127.0.0.4");
    assert_int_equal(check("127.0.0.4", "tilde.test", &o), AIMX_SPF_SOFTFAIL);
    assert_int_equal(check("127.0.0.4", "query.test", &o), AIMX_SPF_NEUTRAL);
    assert_int_equal(check("127.0.0.4", "plus.test", &o), AIMX_SPF_PASS);
    assert_int_equal(check("127.0.0.4", "noall.test", &o), AIMX_SPF_NEUTRAL);
    assert_string_equal(o.term, "");
    assert_non_null(strstr(o.detail, "neutral"));
}

static void
a_and_mx(void **state)
{
    static const struct zrec z[] = {
        {"x.test", AIMX_DNS_TXT, 0, {"v=spf1 a mx -all"}},
        {"x.test", AIMX_DNS_A, 0, {"127.0.0.2"}},
        {"x.test", AIMX_DNS_MX, 0, {"10 mx1.x.test", "20 mx2.x.test"}},
        {"mx1.x.test", AIMX_DNS_A, 0, {"127.0.0.3"}},
        {"mx2.x.test", AIMX_DNS_A, 0, {"127.0.0.4"}},
        {"mx2.x.test", AIMX_DNS_AAAA, 0, {"::1"}},
        {"c.test", AIMX_DNS_TXT, 0, {"v=spf1 a:x.test/24 -all"}},
        {"d.test", AIMX_DNS_TXT, 0, {"v=spf1 mx:x.test//64 -all"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("127.0.0.2", "x.test", &o), AIMX_SPF_PASS);
    assert_string_equal(o.term, "a");
    assert_int_equal(check("127.0.0.4", "x.test", &o), AIMX_SPF_PASS);
    assert_string_equal(o.term, "mx");
    assert_int_equal(o.lookups, 2);
    assert_int_equal(check("::1", "x.test", &o), AIMX_SPF_PASS);
    assert_int_equal(check("127.0.0.9", "x.test", &o), AIMX_SPF_FAIL);
    assert_int_equal(check("127.0.0.200", "c.test", &o), AIMX_SPF_PASS);
    assert_int_equal(check("127.0.0.200", "d.test", &o), AIMX_SPF_FAIL);
    assert_int_equal(check("::abcd", "d.test", &o), AIMX_SPF_PASS);
}

static void
include_passes_and_fails(void **state)
{
    static const struct zrec z[] = {
        {"x.test", AIMX_DNS_TXT, 0, {"v=spf1 include:_spf.other.test ~all"}},
        {"_spf.other.test", AIMX_DNS_TXT, 0, {"v=spf1 ip4:127.0.0.4 -all"}},
        {"y.test", AIMX_DNS_TXT, 0, {"v=spf1 include:nospf.test -all"}},
        {"nospf.test", AIMX_DNS_TXT, 0, {"hello"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("127.0.0.4", "x.test", &o), AIMX_SPF_PASS);
    assert_string_equal(o.term, "include:_spf.other.test");
    /* The include's -all is no match for the including record: its own
     * ~all decides. */
    assert_int_equal(check("127.0.0.5", "x.test", &o), AIMX_SPF_SOFTFAIL);
    assert_string_equal(o.term, "~all");
    /* An include of a domain without SPF is a permerror (5.2). */
    assert_int_equal(check("127.0.0.4", "y.test", &o), AIMX_SPF_PERMERROR);
    assert_non_null(strstr(o.detail, "nospf.test has no SPF record"));
}

static void
include_loop_hits_the_limit(void **state)
{
    static const struct zrec z[] = {
        {"loop1.test", AIMX_DNS_TXT, 0, {"v=spf1 include:loop2.test -all"}},
        {"loop2.test", AIMX_DNS_TXT, 0, {"v=spf1 include:loop1.test -all"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("127.0.0.4", "loop1.test", &o), AIMX_SPF_PERMERROR);
    assert_int_equal(o.lookups, AIMX_SPF_MAX_LOOKUPS + 1);
    assert_non_null(strstr(o.detail, "more than 10"));
    /* The limit stops it: 11 TXT lookups, no runaway. */
    assert_true(asked <= 12);
}

static void
ten_lookups_allowed_eleven_not(void **state)
{
    /* chain0 includes chain1 ... each include is one lookup. */
    static const struct zrec z[] = {
        {"c0.test", AIMX_DNS_TXT, 0, {"v=spf1 include:c1.test -all"}},
        {"c1.test", AIMX_DNS_TXT, 0, {"v=spf1 include:c2.test -all"}},
        {"c2.test", AIMX_DNS_TXT, 0, {"v=spf1 include:c3.test -all"}},
        {"c3.test", AIMX_DNS_TXT, 0, {"v=spf1 include:c4.test -all"}},
        {"c4.test", AIMX_DNS_TXT, 0, {"v=spf1 include:c5.test -all"}},
        {"c5.test", AIMX_DNS_TXT, 0, {"v=spf1 include:c6.test -all"}},
        {"c6.test", AIMX_DNS_TXT, 0, {"v=spf1 include:c7.test -all"}},
        {"c7.test", AIMX_DNS_TXT, 0, {"v=spf1 include:c8.test -all"}},
        {"c8.test", AIMX_DNS_TXT, 0, {"v=spf1 include:c9.test -all"}},
        {"c9.test", AIMX_DNS_TXT, 0, {"v=spf1 a:end.test -all"}},
        {"end.test", AIMX_DNS_A, 0, {"127.0.0.4"}},
        {"d0.test", AIMX_DNS_TXT, 0, {"v=spf1 include:c0.test -all"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    /* 9 includes and one a: exactly 10. */
    assert_int_equal(check("127.0.0.4", "c0.test", &o), AIMX_SPF_PASS);
    assert_int_equal(o.lookups, 10);
    /* One more include in front: 11. */
    assert_int_equal(check("127.0.0.4", "d0.test", &o), AIMX_SPF_PERMERROR);
}

static void
redirect(void **state)
{
    static const struct zrec z[] = {
        {"x.test", AIMX_DNS_TXT, 0, {"v=spf1 redirect=_spf.x.test"}},
        {"_spf.x.test", AIMX_DNS_TXT, 0, {"v=spf1 ip4:127.0.0.4 -all"}},
        {"y.test",
         AIMX_DNS_TXT,
         0,
         {"v=spf1 ip4:127.0.0.9 ?all redirect=_spf.x.test"}},
        {"z.test", AIMX_DNS_TXT, 0, {"v=spf1 redirect=nothing.test"}},
        {"two.test",
         AIMX_DNS_TXT,
         0,
         {"v=spf1 redirect=a.test redirect=b.test"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("127.0.0.4", "x.test", &o), AIMX_SPF_PASS);
    assert_string_equal(o.term, "redirect=_spf.x.test");
    assert_int_equal(check("127.0.0.5", "x.test", &o), AIMX_SPF_FAIL);
    /* An "all" anywhere makes redirect ignored (6.1). */
    assert_int_equal(check("127.0.0.4", "y.test", &o), AIMX_SPF_NEUTRAL);
    /* A redirect to a domain without SPF: permerror. */
    assert_int_equal(check("127.0.0.4", "z.test", &o), AIMX_SPF_PERMERROR);
    assert_int_equal(check("127.0.0.4", "two.test", &o), AIMX_SPF_PERMERROR);
}

static void
void_lookups(void **state)
{
    static const struct zrec z[] = {
        {"two.test",
         AIMX_DNS_TXT,
         0,
         {"v=spf1 a:nx1.test a:nx2.test ip4:127.0.0.4 -all"}},
        {"three.test",
         AIMX_DNS_TXT,
         0,
         {"v=spf1 a:nx1.test a:nx2.test mx:nx3.test ip4:127.0.0.4 -all"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("127.0.0.4", "two.test", &o), AIMX_SPF_PASS);
    assert_int_equal(o.void_lookups, 2);
    assert_int_equal(check("127.0.0.4", "three.test", &o), AIMX_SPF_PERMERROR);
    assert_non_null(strstr(o.detail, "void"));
}

static void
exists_and_macros(void **state)
{
    static const struct zrec z[] = {
        {"x.test",
         AIMX_DNS_TXT,
         0,
         {"v=spf1 exists:%{ir}.%{v}._spf.%{d} -all"}},
        {"4.0.0.127.in-addr._spf.x.test", AIMX_DNS_A, 0, {"127.0.0.2"}},
        {"y.test",
         AIMX_DNS_TXT,
         0,
         {"v=spf1 exists:%{l}.%{o}.%{d2}.%{h}.chk.test -all"}},
        {"postmaster.sender.test.y.test.mail.sender.test.chk.test",
         AIMX_DNS_A,
         0,
         {"127.0.0.2"}},
        {"bad.test", AIMX_DNS_TXT, 0, {"v=spf1 exists:%{x} -all"}},
        {"zero.test", AIMX_DNS_TXT, 0, {"v=spf1 exists:%{d0} -all"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("127.0.0.4", "x.test", &o), AIMX_SPF_PASS);
    assert_int_equal(check("127.0.0.5", "x.test", &o), AIMX_SPF_FAIL);
    assert_int_equal(check("127.0.0.5", "y.test", &o), AIMX_SPF_PASS);
    assert_int_equal(check("127.0.0.4", "bad.test", &o), AIMX_SPF_PERMERROR);
    assert_int_equal(check("127.0.0.4", "zero.test", &o), AIMX_SPF_PERMERROR);
}

static void
ptr_mechanism(void **state)
{
    static const struct zrec z[] = {
        {"x.test", AIMX_DNS_TXT, 0, {"v=spf1 ptr -all"}},
        {"4.0.0.127.in-addr.arpa", AIMX_DNS_PTR, 0, {"mail.x.test"}},
        {"mail.x.test", AIMX_DNS_A, 0, {"127.0.0.4"}},
        {"5.0.0.127.in-addr.arpa", AIMX_DNS_PTR, 0, {"mail.x.test"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("127.0.0.4", "x.test", &o), AIMX_SPF_PASS);
    /* The PTR name must resolve back to the address. */
    assert_int_equal(check("127.0.0.5", "x.test", &o), AIMX_SPF_FAIL);
}

static void
records_and_errors(void **state)
{
    static const struct zrec z[] = {
        {"none.test", AIMX_DNS_TXT, 0, {"google-site-verification=abc"}},
        {"two.test",
         AIMX_DNS_TXT,
         0,
         {"v=spf1 ip4:127.0.0.4 -all", "v=spf1 -all"}},
        {"case.test", AIMX_DNS_TXT, 0, {"V=SPF1 IP4:127.0.0.4 -ALL"}},
        {"spf10.test", AIMX_DNS_TXT, 0, {"v=spf10 ip4:127.0.0.4"}},
        {"syntax.test",
         AIMX_DNS_TXT,
         0,
         {"v=spf1 ip4:127.0.0.4 frobnicate:x -all"}},
        {"badip.test", AIMX_DNS_TXT, 0, {"v=spf1 ip4:127.0.0.256 -all"}},
        {"badcidr.test", AIMX_DNS_TXT, 0, {"v=spf1 ip4:127.0.0.4/33 -all"}},
        {"fail.test", AIMX_DNS_TXT, AIMX_DNS_SERVFAIL, {NULL}},
        {"afail.test", AIMX_DNS_TXT, 0, {"v=spf1 a:down.test -all"}},
        {"down.test", AIMX_DNS_A, AIMX_DNS_TIMEOUT, {NULL}},
        {"unknownmod.test",
         AIMX_DNS_TXT,
         0,
         {"v=spf1 foo=bar ip4:127.0.0.4 exp=explain.%{d} -all"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    assert_int_equal(check("127.0.0.4", "none.test", &o), AIMX_SPF_NONE);
    assert_int_equal(check("127.0.0.4", "nowhere.test", &o), AIMX_SPF_NONE);
    assert_non_null(strstr(o.detail, "NXDOMAIN"));
    assert_int_equal(check("127.0.0.4", "two.test", &o), AIMX_SPF_PERMERROR);
    assert_int_equal(check("127.0.0.4", "case.test", &o), AIMX_SPF_PASS);
    assert_int_equal(check("127.0.0.4", "spf10.test", &o), AIMX_SPF_NONE);
    /* A syntax error anywhere is a permerror before any evaluation. */
    assert_int_equal(check("127.0.0.4", "syntax.test", &o), AIMX_SPF_PERMERROR);
    assert_non_null(strstr(o.detail, "frobnicate"));
    assert_int_equal(check("127.0.0.4", "badip.test", &o), AIMX_SPF_PERMERROR);
    assert_int_equal(check("127.0.0.4", "badcidr.test", &o),
                     AIMX_SPF_PERMERROR);
    assert_int_equal(check("127.0.0.4", "fail.test", &o), AIMX_SPF_TEMPERROR);
    assert_int_equal(check("127.0.0.4", "afail.test", &o), AIMX_SPF_TEMPERROR);
    assert_int_equal(check("127.0.0.4", "unknownmod.test", &o), AIMX_SPF_PASS);
}

static void
too_many_mx(void **state)
{
    static const struct zrec z[] = {
        {"x.test", AIMX_DNS_TXT, 0, {"v=spf1 mx:ten.test ip4:127.0.0.4 -all"}},
        {"y.test",
         AIMX_DNS_TXT,
         0,
         {"v=spf1 mx:eleven.test ip4:127.0.0.4 -all"}},
        {"ten.test",
         AIMX_DNS_MX,
         0,
         {"1 a.test", "2 b.test", "3 c.test", "4 d.test", "5 e.test",
          "6 f.test", "7 g.test", "8 h.test", "9 i.test", "10 j.test"}},
        {"eleven.test",
         AIMX_DNS_MX,
         0,
         {"1 a.test", "2 b.test", "3 c.test", "4 d.test", "5 e.test",
          "6 f.test", "7 g.test", "8 h.test", "9 i.test", "10 j.test",
          "11 k.test"}},
    };
    aimx_spf_outcome o;

    (void)state;
    USE_ZONE(z);
    /* Ten MX names are looked up (none matches: the ip4 term does). */
    assert_int_equal(check("127.0.0.4", "x.test", &o), AIMX_SPF_PASS);
    /* Eleven: receivers stop with permerror (RFC 7208 4.6.4). */
    assert_int_equal(check("127.0.0.4", "y.test", &o), AIMX_SPF_PERMERROR);
    assert_non_null(strstr(o.detail, "MX records"));
}

static void
term_covers_and_reverse_names(void **state)
{
    aimx_addr a, b;
    char buf[128];

    (void)state;
    assert_int_equal(aimx__addr_parse("127.0.0.4", &a), 0);
    assert_int_equal(aimx__addr_parse("::1", &b), 0);
    assert_true(aimx__spf_term_covers("ip4:127.0.0.4", 13, &a));
    assert_true(aimx__spf_term_covers("+ip4:127.0.0.0/8", 16, &a));
    assert_false(aimx__spf_term_covers("ip4:127.0.0.45", 14, &a));
    assert_false(aimx__spf_term_covers("-ip4:127.0.0.4", 14, &a));
    assert_false(aimx__spf_term_covers("a", 1, &a));
    assert_true(aimx__spf_term_covers("ip6:::1", 7, &b));
    assert_false(aimx__spf_term_covers("ip4:127.0.0.4", 13, &b));
    assert_string_equal(aimx__addr_reverse_name(&a, buf, sizeof buf),
                        "4.0.0.127.in-addr.arpa");
    assert_string_equal(
        aimx__addr_reverse_name(&b, buf, sizeof buf),
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
        "ip6.arpa");
    assert_true(aimx__spf_is_record("v=spf1", 6));
    assert_true(aimx__spf_is_record("v=spf1 -all", 11));
    assert_false(aimx__spf_is_record("v=spf10", 7));
    assert_string_equal(aimx__spf_result_word(AIMX_SPF_SOFTFAIL), "softfail");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ip4_exact_and_look_alike),
        cmocka_unit_test(cidr_covers),
        cmocka_unit_test(ip6_with_cidr),
        cmocka_unit_test(qualifiers),
        cmocka_unit_test(a_and_mx),
        cmocka_unit_test(include_passes_and_fails),
        cmocka_unit_test(include_loop_hits_the_limit),
        cmocka_unit_test(ten_lookups_allowed_eleven_not),
        cmocka_unit_test(redirect),
        cmocka_unit_test(void_lookups),
        cmocka_unit_test(exists_and_macros),
        cmocka_unit_test(ptr_mechanism),
        cmocka_unit_test(records_and_errors),
        cmocka_unit_test(too_many_mx),
        cmocka_unit_test(term_covers_and_reverse_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
