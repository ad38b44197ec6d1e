/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of resolver-cares, without a network: the `servers` parser,
 * reply classification and the outcome mapping row by row, answer reading
 * on hand-made messages, and the settings through the plugin's descriptor
 * and the SDK's fake host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ares.h>
#include <sys/socket.h>

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

#include "rcares_answer.h"
#include "rcares_outcome.h"
#include "rcares_server.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const aimx_plugin_descriptor *resolver_cares_LTX_aimx_plugin_v1(void);

/* A DNS message under construction (uncompressed unless said so). */
struct msg {
    unsigned char b[2048];
    size_t n;
};

static void put8(struct msg *m, unsigned v);
static void put16(struct msg *m, unsigned v);
static void put32(struct msg *m, uint32_t v);
static void put_name(struct msg *m, const char *name);
static void msg_start(struct msg *m, unsigned rcode, int ad, const char *qname,
                      unsigned qtype, unsigned ancount);
static size_t rr_start(struct msg *m, const char *owner, unsigned type,
                       uint32_t ttl);
static void rr_end(struct msg *m, size_t at);
static void add_cname(struct msg *m, const char *owner, const char *target);
static void add_a(struct msg *m, const char *owner, const char *ip);
static int parse(const struct msg *m, unsigned qtype, const char *qname,
                 struct rcares_answer *a);

/* ------------------------------------------------------------------------
 * The `servers` parser.
 */

static void
test_server_good(void **state)
{
    static const struct {
        const char *text;
        int family;
        const char *addr;
        unsigned port;
        const char *label;
        int ambiguous;
    } rows[] = {
        {"127.0.0.1", AF_INET, "127.0.0.1", 53, "127.0.0.1:53", 0},
        {"127.0.0.1:5353", AF_INET, "127.0.0.1", 5353, "127.0.0.1:5353", 0},
        {"192.0.2.1:65535", AF_INET, "192.0.2.1", 65535, "192.0.2.1:65535", 0},
        {"[::1]:5353", AF_INET6, "::1", 5353, "[::1]:5353", 0},
        {"::1", AF_INET6, "::1", 53, "[::1]:53", 0},
        {"2001:db8::1", AF_INET6, "2001:db8::1", 53, "[2001:db8::1]:53", 0},
        {"[2001:db8::1]:1", AF_INET6, "2001:db8::1", 1, "[2001:db8::1]:1", 0},
        /* What it literally is: the IPv6 address ::1:5353 (which
         * inet_ntop() writes ::0.1.83.83) on port 53, never ::1 on port
         * 5353; but it is flagged, for a warning. */
        {"::1:5353", AF_INET6, "::1:5353", 53, "[::0.1.83.83]:53", 1},
        {"::ffff:192.0.2.1", AF_INET6, "::ffff:192.0.2.1", 53,
         "[::ffff:192.0.2.1]:53", 0},
    };
    struct rcares_server s;
    unsigned char want[16];
    char why[160];
    size_t i;
    int amb;

    (void)state;
    for (i = 0; i < COUNT(rows); i++) {
        why[0] = '\0';
        assert_int_equal(
            rcares_server_parse(rows[i].text, &s, &amb, why, sizeof why), 0);
        assert_int_equal(s.family, rows[i].family);
        assert_int_equal(inet_pton(rows[i].family, rows[i].addr, want), 1);
        assert_memory_equal(s.addr, want, rows[i].family == AF_INET ? 4 : 16);
        assert_int_equal(s.port, rows[i].port);
        assert_string_equal(s.label, rows[i].label);
        assert_int_equal(amb, rows[i].ambiguous);
    }
}

static void
test_server_bad(void **state)
{
    static const struct {
        const char *text;
        const char *why; /* a word the reason must contain */
    } rows[] = {
        {"", "empty"},
        {"1.2.3.4:0", "outside 1..65535"},
        {"1.2.3.4:70000", "outside 1..65535"},
        {"1.2.3.4:123456", "outside 1..65535"},
        {"1.2.3.4:", "no port"},
        {"1.2.3.4:53x", "no port"},
        {"1.2.3.4:+53", "no port"},
        {"1.2.3.4: 53", "no port"},
        {"[::1]", "PORT"},
        {"[::1]:", "no port"},
        {"[::1]x", "PORT"},
        {"[::1", "without ']'"},
        {"[127.0.0.1]:53", "IPv6"},
        {"[host.example]:53", "IPv6"},
        {"host.example", "host names"},
        {"host.example:53", "IPv4"},
        {"1.2.3", "IP address"},
        {" 1.2.3.4", "IP address"},
        {"fe80::1%lo", "IPv6"},
        {"0.0.0.0", "unspecified"},
        {"::", "unspecified"},
        {"[::]:53", "unspecified"},
    };
    struct rcares_server s;
    char why[160];
    size_t i;
    int amb;

    (void)state;
    for (i = 0; i < COUNT(rows); i++) {
        why[0] = '\0';
        if (rcares_server_parse(rows[i].text, &s, &amb, why, sizeof why) != -1)
            fail_msg("\"%s\" was accepted", rows[i].text);
        if (!strstr(why, rows[i].why))
            fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", rows[i].text, why,
                     rows[i].why);
    }
    assert_int_equal(rcares_server_parse(NULL, &s, &amb, why, sizeof why), -1);
}

/* ------------------------------------------------------------------------
 * Classification and the outcome mapping.
 */

static void
test_classify(void **state)
{
    static const struct {
        int status, rcode, parse;
        size_t typed;
        int dangling;
        enum rcares_verdict want;
    } rows[] = {
        {ARES_SUCCESS, 0, RCARES_P_OK, 1, 0, RCARES_V_OK},
        {ARES_SUCCESS, 0, RCARES_P_OK, 3, 0, RCARES_V_OK},
        {ARES_SUCCESS, 0, RCARES_P_OK, 0, 0, RCARES_V_NODATA},
        /* A CNAME and nothing of the type: re-query its target. */
        {ARES_SUCCESS, 0, RCARES_P_OK, 0, 1, RCARES_V_CHASE},
        {ARES_SUCCESS, 3, RCARES_P_OK, 0, 0, RCARES_V_NXDOMAIN},
        /* RFC 6604: NXDOMAIN after a chain is about the chain's end. */
        {ARES_SUCCESS, 3, RCARES_P_OK, 0, 1, RCARES_V_NXDOMAIN},
        {ARES_SUCCESS, 2, RCARES_P_OK, 0, 0, RCARES_V_SERVFAIL},
        {ARES_SUCCESS, 5, RCARES_P_OK, 0, 0, RCARES_V_REFUSED},
        {ARES_SUCCESS, 1, RCARES_P_OK, 0, 0, RCARES_V_SERVFAIL}, /* FORMERR */
        {ARES_SUCCESS, 4, RCARES_P_OK, 0, 0, RCARES_V_SERVFAIL}, /* NOTIMP */
        {ARES_SUCCESS, 9, RCARES_P_OK, 0, 0, RCARES_V_SERVFAIL}, /* NOTAUTH */
        /* The RCODE speaks before the records: a SERVFAIL with junk after
         * the header is still a SERVFAIL. */
        {ARES_SUCCESS, 2, RCARES_P_BAD, 0, 0, RCARES_V_SERVFAIL},
        {ARES_SUCCESS, 5, RCARES_P_BAD, 0, 0, RCARES_V_REFUSED},
        {ARES_SUCCESS, 0, RCARES_P_BAD, 0, 0, RCARES_V_BADREPLY},
        {ARES_SUCCESS, 3, RCARES_P_BAD, 0, 0, RCARES_V_BADREPLY},
        {ARES_SUCCESS, -1, RCARES_P_BAD, 0, 0, RCARES_V_BADREPLY},
        {ARES_SUCCESS, 0, RCARES_P_CHAIN, 0, 0, RCARES_V_CHAIN_BROKEN},
        {ARES_SUCCESS, 0, RCARES_P_NOMEM, 0, 0, RCARES_V_LOCALERR},
        {ARES_ETIMEOUT, 0, RCARES_P_OK, 0, 0, RCARES_V_TIMEOUT},
        {ARES_ECONNREFUSED, 0, RCARES_P_OK, 0, 0, RCARES_V_UNREACHABLE},
        {ARES_ESERVFAIL, 0, RCARES_P_OK, 0, 0, RCARES_V_SERVFAIL},
        {ARES_EREFUSED, 0, RCARES_P_OK, 0, 0, RCARES_V_REFUSED},
        {ARES_EBADRESP, 0, RCARES_P_OK, 0, 0, RCARES_V_BADREPLY},
        {ARES_EBADNAME, 0, RCARES_P_OK, 0, 0, RCARES_V_BADNAME},
        {ARES_ENOMEM, 0, RCARES_P_OK, 0, 0, RCARES_V_LOCALERR},
        {ARES_EDESTRUCTION, 0, RCARES_P_OK, 0, 0, RCARES_V_CANCELLED},
        {ARES_ECANCELLED, 0, RCARES_P_OK, 0, 0, RCARES_V_CANCELLED},
    };
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(rows); i++) {
        enum rcares_verdict v =
            rcares_classify(rows[i].status, rows[i].rcode, rows[i].parse,
                            rows[i].typed, rows[i].dangling);
        if (v != rows[i].want)
            fail_msg("row %zu: %s, want %s", i, rcares_verdict_name(v),
                     rcares_verdict_name(rows[i].want));
    }
    /* Server failures move on; answers and local failures do not. */
    assert_true(rcares_verdict_fails_over(RCARES_V_SERVFAIL));
    assert_true(rcares_verdict_fails_over(RCARES_V_REFUSED));
    assert_true(rcares_verdict_fails_over(RCARES_V_TIMEOUT));
    assert_true(rcares_verdict_fails_over(RCARES_V_UNREACHABLE));
    assert_true(rcares_verdict_fails_over(RCARES_V_BADREPLY));
    assert_false(rcares_verdict_fails_over(RCARES_V_NXDOMAIN));
    assert_false(rcares_verdict_fails_over(RCARES_V_NODATA));
    assert_false(rcares_verdict_fails_over(RCARES_V_OK));
    assert_false(rcares_verdict_fails_over(RCARES_V_LOCALERR));
    assert_false(rcares_verdict_fails_over(RCARES_V_CHASE));
}

static void
test_outcome(void **state)
{
    /* final, servfail, refused, badreply, timeout, unreachable -> outcome */
    static const struct {
        struct rcares_tally t;
        uint32_t want;
    } rows[] = {
        {{RCARES_V_OK, 0, 0, 0, 0, 0}, AIMX_DNS_OK},
        /* A server that failed before the one that answered is forgotten. */
        {{RCARES_V_OK, 1, 0, 0, 1, 0}, AIMX_DNS_OK},
        {{RCARES_V_NODATA, 0, 0, 0, 0, 0}, AIMX_DNS_NODATA},
        {{RCARES_V_NXDOMAIN, 1, 0, 0, 0, 0}, AIMX_DNS_NXDOMAIN},
        {{RCARES_V_BADNAME, 0, 0, 0, 0, 0}, AIMX_DNS_BADNAME},
        {{RCARES_V_CANCELLED, 0, 0, 0, 1, 0}, AIMX_DNS_CANCELLED},
        {{RCARES_V_LOCALERR, 0, 0, 0, 0, 0}, AIMX_DNS_LOCALERR},
        {{RCARES_V_CHAIN_BROKEN, 0, 0, 0, 0, 0}, AIMX_DNS_SERVFAIL},
        /* Every server failed. */
        {{RCARES_V_NONE, 1, 0, 0, 0, 0}, AIMX_DNS_SERVFAIL},
        {{RCARES_V_NONE, 3, 0, 0, 0, 0}, AIMX_DNS_SERVFAIL},
        {{RCARES_V_NONE, 0, 1, 0, 0, 0}, AIMX_DNS_REFUSED},
        {{RCARES_V_NONE, 0, 2, 0, 0, 0}, AIMX_DNS_REFUSED},
        {{RCARES_V_NONE, 1, 1, 0, 0, 0}, AIMX_DNS_SERVFAIL},
        {{RCARES_V_NONE, 0, 1, 0, 1, 0}, AIMX_DNS_REFUSED},
        {{RCARES_V_NONE, 1, 0, 0, 1, 1}, AIMX_DNS_SERVFAIL},
        {{RCARES_V_NONE, 0, 0, 1, 0, 0}, AIMX_DNS_LOCALERR},
        {{RCARES_V_NONE, 0, 1, 1, 0, 0}, AIMX_DNS_SERVFAIL},
        {{RCARES_V_NONE, 0, 0, 0, 1, 0}, AIMX_DNS_TIMEOUT},
        {{RCARES_V_NONE, 0, 0, 0, 1, 2}, AIMX_DNS_TIMEOUT},
        {{RCARES_V_NONE, 0, 0, 0, 0, 1}, AIMX_DNS_UNREACHABLE},
        {{RCARES_V_NONE, 0, 0, 0, 0, 3}, AIMX_DNS_UNREACHABLE},
        /* The deadline: silence unless someone answered. */
        {{RCARES_V_DEADLINE, 0, 0, 0, 0, 0}, AIMX_DNS_TIMEOUT},
        {{RCARES_V_DEADLINE, 0, 0, 0, 0, 1}, AIMX_DNS_TIMEOUT},
        {{RCARES_V_DEADLINE, 1, 0, 0, 1, 0}, AIMX_DNS_SERVFAIL},
        {{RCARES_V_DEADLINE, 0, 1, 0, 1, 0}, AIMX_DNS_REFUSED},
        /* Per-server verdicts as "final" mean the same as NONE. */
        {{RCARES_V_SERVFAIL, 1, 0, 0, 0, 0}, AIMX_DNS_SERVFAIL},
        {{RCARES_V_TIMEOUT, 0, 0, 0, 1, 0}, AIMX_DNS_TIMEOUT},
    };
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(rows); i++) {
        uint32_t got = rcares_outcome(&rows[i].t);
        if (got != rows[i].want)
            fail_msg("row %zu: outcome %u, want %u", i, got, rows[i].want);
    }
}

/* ------------------------------------------------------------------------
 * Answer reading.
 */

static void
test_answer_mx_null_and_compressed(void **state)
{
    struct rcares_answer a;
    struct msg m;
    size_t at;
    static const unsigned char mx1_wire[] = {0,   10,  3,   'm', 'x', '1', 7,
                                             'e', 'x', 'a', 'm', 'p', 'l', 'e',
                                             4,   't', 'e', 's', 't', 0};

    (void)state;
    msg_start(&m, 0, 0, "example.test", AIMX_DNS_MX, 2);
    /* MX 10 mx1.<pointer to the question's name> */
    at = rr_start(&m, "example.test", AIMX_DNS_MX, 300);
    put16(&m, 10);
    put8(&m, 3);
    memcpy(m.b + m.n, "mx1", 3);
    m.n += 3;
    put16(&m, 0xc000 | 12);
    rr_end(&m, at);
    /* MX 0 . (RFC 7505) */
    at = rr_start(&m, "example.test", AIMX_DNS_MX, 60);
    put16(&m, 0);
    put8(&m, 0);
    rr_end(&m, at);

    assert_int_equal(parse(&m, AIMX_DNS_MX, "example.test", &a), RCARES_P_OK);
    assert_int_equal(a.nrecs, 2);
    assert_int_equal(a.nhops, 0);
    assert_string_equal(a.recs[0].owner, "example.test");
    assert_int_equal(a.recs[0].preference, 10);
    assert_int_equal(a.recs[0].ttl, 300);
    assert_string_equal(a.recs[0].target, "mx1.example.test");
    /* The RDATA handed on is self-contained: the pointer is expanded. */
    assert_int_equal(a.recs[0].rdata_len, sizeof mx1_wire);
    assert_memory_equal(a.recs[0].rdata, mx1_wire, sizeof mx1_wire);
    assert_int_equal(a.recs[1].preference, 0);
    assert_string_equal(a.recs[1].target, ".");
    assert_int_equal(a.recs[1].rdata_len, 3);
    rcares_answer_free(&a);
}

static void
test_answer_txt_joined(void **state)
{
    struct rcares_answer a;
    struct msg m;
    size_t at;

    (void)state;
    msg_start(&m, 0, 1, "txt.test", AIMX_DNS_TXT, 3);
    at = rr_start(&m, "txt.test", AIMX_DNS_TXT, 60);
    put8(&m, 7);
    memcpy(m.b + m.n, "v=spf1 ", 7);
    m.n += 7;
    put8(&m, 4);
    memcpy(m.b + m.n, "-all", 4);
    m.n += 4;
    rr_end(&m, at);
    /* Malformed (a TXT needs one string at least) but seen in the wild. */
    at = rr_start(&m, "txt.test", AIMX_DNS_TXT, 60);
    rr_end(&m, at);
    at = rr_start(&m, "txt.test", AIMX_DNS_TXT, 60);
    put8(&m, 0);
    put8(&m, 2);
    memcpy(m.b + m.n, "xy", 2);
    m.n += 2;
    rr_end(&m, at);

    assert_int_equal(parse(&m, AIMX_DNS_TXT, "txt.test", &a), RCARES_P_OK);
    assert_true(a.ad);
    assert_int_equal(a.nrecs, 3);
    assert_int_equal(a.recs[0].text_len, 11);
    assert_memory_equal(a.recs[0].text, "v=spf1 -all", 11);
    assert_int_equal(a.recs[0].rdata_len, 13);
    assert_int_equal(a.recs[1].text_len, 0);
    assert_int_equal(a.recs[2].text_len, 2);
    assert_memory_equal(a.recs[2].text, "xy", 2);
    rcares_answer_free(&a);
}

static void
test_answer_chain(void **state)
{
    const char *seen[] = {"a.test"};
    struct rcares_answer a;
    struct msg m;

    (void)state;
    /* Out of order on purpose, and with a stray A of another owner. */
    msg_start(&m, 0, 0, "a.test", AIMX_DNS_A, 4);
    add_a(&m, "other.test", "127.0.0.99");
    add_cname(&m, "b.test", "c.test");
    add_cname(&m, "A.TEST", "b.test");
    add_a(&m, "c.test", "127.0.0.3");
    assert_int_equal(rcares_answer_parse(m.b, m.n, AIMX_DNS_A, "a.test", seen,
                                         1, RCARES_MAX_CHAIN, &a),
                     RCARES_P_OK);
    assert_int_equal(a.nhops, 2);
    assert_int_equal(a.hops[0].type, AIMX_DNS_CNAME);
    assert_string_equal(a.hops[0].owner, "A.TEST");
    assert_string_equal(a.hops[0].target, "b.test");
    assert_string_equal(a.hops[1].target, "c.test");
    assert_int_equal(a.nrecs, 1);
    assert_string_equal(a.recs[0].owner, "c.test");
    assert_int_equal(a.recs[0].address.family, AIMX_AF_INET);
    assert_memory_equal(a.recs[0].address.bytes, "\x7f\0\0\x03", 4);
    assert_string_equal(a.end, "c.test");
    assert_false(a.dangling);
    rcares_answer_free(&a);

    /* A CNAME alone: the end is its target, dangling. */
    msg_start(&m, 0, 0, "a.test", AIMX_DNS_MX, 1);
    add_cname(&m, "a.test", "b.test");
    assert_int_equal(parse(&m, AIMX_DNS_MX, "a.test", &a), RCARES_P_OK);
    assert_int_equal(a.nhops, 1);
    assert_int_equal(a.nrecs, 0);
    assert_true(a.dangling);
    assert_string_equal(a.end, "b.test");
    rcares_answer_free(&a);

    /* Asking for the CNAME itself: it is the answer, not a step. */
    assert_int_equal(parse(&m, AIMX_DNS_CNAME, "a.test", &a), RCARES_P_OK);
    assert_int_equal(a.nhops, 0);
    assert_int_equal(a.nrecs, 1);
    assert_string_equal(a.recs[0].target, "b.test");
    rcares_answer_free(&a);
}

static void
test_answer_chain_broken(void **state)
{
    const char *seen[] = {"x.test", "a.test"};
    struct rcares_answer a;
    struct msg m;

    (void)state;
    msg_start(&m, 0, 0, "a.test", AIMX_DNS_A, 2);
    add_cname(&m, "a.test", "b.test");
    add_cname(&m, "b.test", "a.test");
    assert_int_equal(parse(&m, AIMX_DNS_A, "a.test", &a), RCARES_P_CHAIN);
    assert_int_equal(a.nhops, 0); /* nothing is left behind */

    /* A loop back to a name of an earlier step. */
    msg_start(&m, 0, 0, "a.test", AIMX_DNS_A, 1);
    add_cname(&m, "a.test", "x.test");
    assert_int_equal(rcares_answer_parse(m.b, m.n, AIMX_DNS_A, "a.test", seen,
                                         2, RCARES_MAX_CHAIN, &a),
                     RCARES_P_CHAIN);

    /* Longer than the steps left. */
    msg_start(&m, 0, 0, "a.test", AIMX_DNS_A, 3);
    add_cname(&m, "a.test", "b.test");
    add_cname(&m, "b.test", "c.test");
    add_cname(&m, "c.test", "d.test");
    assert_int_equal(
        rcares_answer_parse(m.b, m.n, AIMX_DNS_A, "a.test", seen, 2, 2, &a),
        RCARES_P_CHAIN);
    assert_int_equal(
        rcares_answer_parse(m.b, m.n, AIMX_DNS_A, "a.test", seen, 2, 3, &a),
        RCARES_P_OK);
    rcares_answer_free(&a);
}

static void
test_answer_malformed(void **state)
{
    struct rcares_answer a;
    struct msg m;
    size_t at, cut;

    (void)state;
    msg_start(&m, 0, 0, "a.test", AIMX_DNS_A, 1);
    add_a(&m, "a.test", "127.0.0.1");
    for (cut = 0; cut < m.n; cut++)
        assert_int_equal(rcares_answer_parse(m.b, cut, AIMX_DNS_A, "a.test",
                                             NULL, 0, RCARES_MAX_CHAIN, &a),
                         RCARES_P_BAD);
    /* An A record of 5 octets. */
    msg_start(&m, 0, 0, "a.test", AIMX_DNS_A, 1);
    at = rr_start(&m, "a.test", AIMX_DNS_A, 60);
    put32(&m, 0x7f000001);
    put8(&m, 0);
    rr_end(&m, at);
    assert_int_equal(parse(&m, AIMX_DNS_A, "a.test", &a), RCARES_P_BAD);
    /* A compression pointer to itself. */
    msg_start(&m, 0, 0, "a.test", AIMX_DNS_PTR, 1);
    at = rr_start(&m, "a.test", AIMX_DNS_PTR, 60);
    put16(&m, 0xc000 | (unsigned)m.n);
    rr_end(&m, at);
    assert_int_equal(parse(&m, AIMX_DNS_PTR, "a.test", &a), RCARES_P_BAD);
    assert_int_equal(rcares_answer_parse(NULL, 0, AIMX_DNS_A, "a.test", NULL, 0,
                                         RCARES_MAX_CHAIN, &a),
                     RCARES_P_BAD);
}

static void
test_answer_other_types(void **state)
{
    struct rcares_answer a;
    struct msg m;
    size_t at;

    (void)state;
    /* AAAA, and a type the plugin knows nothing about (raw RDATA only). */
    msg_start(&m, 0, 0, "v6.test", AIMX_DNS_AAAA, 1);
    at = rr_start(&m, "v6.test", AIMX_DNS_AAAA, 0x80000000u);
    put32(&m, 0);
    put32(&m, 0);
    put32(&m, 0);
    put32(&m, 1);
    rr_end(&m, at);
    assert_int_equal(parse(&m, AIMX_DNS_AAAA, "v6.test", &a), RCARES_P_OK);
    assert_int_equal(a.nrecs, 1);
    assert_int_equal(a.recs[0].address.family, AIMX_AF_INET6);
    assert_int_equal(a.recs[0].address.bytes[15], 1);
    assert_int_equal(a.recs[0].ttl, 0); /* RFC 2181: top bit set */
    assert_int_equal(a.recs[0].rdata_len, 16);
    rcares_answer_free(&a);

    msg_start(&m, 0, 0, "_25._tcp.mx.test", AIMX_DNS_TLSA, 1);
    at = rr_start(&m, "_25._tcp.mx.test", AIMX_DNS_TLSA, 60);
    put8(&m, 3);
    put8(&m, 1);
    put8(&m, 1);
    put32(&m, 0xdeadbeef);
    rr_end(&m, at);
    assert_int_equal(parse(&m, AIMX_DNS_TLSA, "_25._tcp.mx.test", &a),
                     RCARES_P_OK);
    assert_int_equal(a.nrecs, 1);
    assert_int_equal(a.recs[0].rdata_len, 7);
    assert_memory_equal(a.recs[0].rdata, "\3\1\1\xde\xad\xbe\xef", 7);
    assert_null(a.recs[0].target);
    rcares_answer_free(&a);

    /* The root as a name: "." both ways. */
    msg_start(&m, 3, 0, ".", AIMX_DNS_A, 0);
    assert_int_equal(parse(&m, AIMX_DNS_A, ".", &a), RCARES_P_OK);
    assert_int_equal(a.rcode, 3);
    assert_string_equal(a.end, ".");
    rcares_answer_free(&a);
}

/* ------------------------------------------------------------------------
 * Settings, through the descriptor and the fake host.
 */

struct created {
    struct aimx_fake_host fh;
    void *inst;
    aimx_status st;
};

static void
create_with(struct created *c, const struct aimx_fake_cfg *cfg, size_t n)
{
    const aimx_plugin_descriptor *d = resolver_cares_LTX_aimx_plugin_v1();

    aimx_fake_host_init(&c->fh, cfg, n);
    c->inst = NULL;
    c->st = d->create(aimx_fake_host_api(&c->fh), aimx_fake_host_handle(&c->fh),
                      &c->inst);
    c->fh.cfg_closed = 1;
    /* Every key is asked for, whatever happened. */
    assert_true(aimx_fake_host_asked(&c->fh, "timeout"));
    assert_true(aimx_fake_host_asked(&c->fh, "tries"));
    assert_true(aimx_fake_host_asked(&c->fh, "servers"));
}

static void
destroy_created(struct created *c)
{
    if (c->inst)
        resolver_cares_LTX_aimx_plugin_v1()->destroy(c->inst);
    c->inst = NULL;
    assert_int_equal(c->fh.alloc_live, 0);
    assert_int_equal(c->fh.misuse, 0);
}

static void
test_descriptor(void **state)
{
    const aimx_plugin_descriptor *d = resolver_cares_LTX_aimx_plugin_v1();

    (void)state;
    assert_int_equal(d->struct_size, sizeof *d);
    assert_int_equal(d->abi_major, AIMX_ABI_MAJOR);
    assert_int_equal(d->abi_minor, AIMX_ABI_MINOR);
    assert_int_equal(d->kind, AIMX_KIND_RESOLVER);
    assert_string_equal(d->name, "resolver-cares");
    assert_non_null(d->resolver);
    assert_null(d->policy);
    assert_null(d->transport);
    assert_non_null(d->resolver->lookup);
    assert_non_null(d->resolver->cancel);
}

static void
test_config_good(void **state)
{
    static const struct aimx_fake_cfg cfg[] = {
        AIMX_FAKE_CFG_LIST("servers", 3),
        AIMX_FAKE_CFG_STRING("servers[0]", "127.0.0.1"),
        AIMX_FAKE_CFG_STRING("servers[1]", "[::1]:5353"),
        AIMX_FAKE_CFG_STRING("servers[2]", "127.0.0.2:53"),
        AIMX_FAKE_CFG_STRING("timeout", "250ms"),
        AIMX_FAKE_CFG_INT("tries", 3),
    };
    static struct created c;

    (void)state;
    create_with(&c, cfg, COUNT(cfg));
    assert_int_equal(c.st, AIMX_OK);
    assert_non_null(c.inst);
    assert_int_equal(c.fh.error_count, 0);
    assert_true(aimx_fake_host_asked(&c.fh, "servers[2]"));
    assert_true(aimx_fake_host_has_log(&c.fh, "[::1]:5353"));
    assert_true(aimx_fake_host_has_log(&c.fh, "timeout 250ms, tries 3"));
    destroy_created(&c);
}

static void
test_config_defaults(void **state)
{
    static struct created c;

    (void)state;
    /* No setting at all: the servers of /etc/resolv.conf, "2s", 2. */
    create_with(&c, NULL, 0);
    assert_int_equal(c.st, AIMX_OK);
    assert_int_equal(c.fh.error_count, 0);
    assert_true(aimx_fake_host_has_log(&c.fh, "(from the system)"));
    assert_true(aimx_fake_host_has_log(&c.fh, "timeout 2000ms, tries 2"));
    destroy_created(&c);
}

static void
test_config_bad_timeout(void **state)
{
    static const struct aimx_fake_cfg too_short[] = {
        AIMX_FAKE_CFG_STRING("timeout", "50ms")};
    static const struct aimx_fake_cfg too_long[] = {
        AIMX_FAKE_CFG_STRING("timeout", "2m")};
    static const struct aimx_fake_cfg not_duration[] = {
        AIMX_FAKE_CFG_STRING("timeout", "2 s")};
    static const struct aimx_fake_cfg wrong_type[] = {
        AIMX_FAKE_CFG_INT("timeout", 2)};
    static const struct aimx_fake_cfg *all[] = {too_short, too_long,
                                                not_duration, wrong_type};
    static struct created c;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(all); i++) {
        create_with(&c, all[i], 1);
        assert_int_not_equal(c.st, AIMX_OK);
        assert_null(c.inst);
        assert_true(aimx_fake_host_has_error(&c.fh, "timeout: "));
        destroy_created(&c);
    }
}

static void
test_config_bad_tries(void **state)
{
    static const struct aimx_fake_cfg zero[] = {AIMX_FAKE_CFG_INT("tries", 0)};
    static const struct aimx_fake_cfg eleven[] = {
        AIMX_FAKE_CFG_INT("tries", 11)};
    static const struct aimx_fake_cfg text[] = {
        AIMX_FAKE_CFG_STRING("tries", "2")};
    static const struct aimx_fake_cfg *all[] = {zero, eleven, text};
    static struct created c;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(all); i++) {
        create_with(&c, all[i], 1);
        assert_int_not_equal(c.st, AIMX_OK);
        assert_null(c.inst);
        assert_true(aimx_fake_host_has_error(&c.fh, "tries: "));
        destroy_created(&c);
    }
}

static void
test_config_bad_servers(void **state)
{
    static const struct aimx_fake_cfg bad[] = {
        AIMX_FAKE_CFG_LIST("servers", 3),
        AIMX_FAKE_CFG_STRING("servers[0]", "127.0.0.1"),
        AIMX_FAKE_CFG_STRING("servers[1]", "host.example"),
        AIMX_FAKE_CFG_STRING("servers[2]", "1.2.3.4:70000"),
        AIMX_FAKE_CFG_INT("tries", 99), /* reported too, in the same run */
    };
    static const struct aimx_fake_cfg empty[] = {
        AIMX_FAKE_CFG_LIST("servers", 0)};
    static const struct aimx_fake_cfg not_list[] = {
        AIMX_FAKE_CFG_STRING("servers", "127.0.0.1")};
    static const struct aimx_fake_cfg not_string[] = {
        AIMX_FAKE_CFG_LIST("servers", 1), AIMX_FAKE_CFG_INT("servers[0]", 53)};
    static struct created c;

    (void)state;
    create_with(&c, bad, COUNT(bad));
    assert_int_not_equal(c.st, AIMX_OK);
    assert_null(c.inst);
    assert_int_equal(c.fh.error_count, 3);
    assert_true(
        aimx_fake_host_has_error(&c.fh, "servers[1]: \"host.example\""));
    assert_true(
        aimx_fake_host_has_error(&c.fh, "servers[2]: \"1.2.3.4:70000\""));
    assert_true(aimx_fake_host_has_error(&c.fh, "tries: "));
    assert_false(aimx_fake_host_has_error(&c.fh, "servers[0]"));
    destroy_created(&c);

    create_with(&c, empty, COUNT(empty));
    assert_int_not_equal(c.st, AIMX_OK);
    assert_true(aimx_fake_host_has_error(&c.fh, "servers: is empty"));
    destroy_created(&c);

    create_with(&c, not_list, COUNT(not_list));
    assert_int_not_equal(c.st, AIMX_OK);
    assert_true(aimx_fake_host_has_error(&c.fh, "servers: "));
    destroy_created(&c);

    create_with(&c, not_string, COUNT(not_string));
    assert_int_not_equal(c.st, AIMX_OK);
    assert_true(aimx_fake_host_has_error(&c.fh, "servers[0]: "));
    destroy_created(&c);
}

static void
test_config_ambiguous_ipv6_warns(void **state)
{
    static const struct aimx_fake_cfg cfg[] = {
        AIMX_FAKE_CFG_LIST("servers", 1),
        AIMX_FAKE_CFG_STRING("servers[0]", "::1:5353"),
    };
    static struct created c;

    (void)state;
    create_with(&c, cfg, COUNT(cfg));
    assert_int_equal(c.st, AIMX_OK);
    assert_true(aimx_fake_host_has_log(&c.fh, "servers[0]: \"::1:5353\" is "
                                              "read as the IPv6 address"));
    assert_true(aimx_fake_host_has_log(&c.fh, "server 1: [::0.1.83.83]:53"));
    destroy_created(&c);
}

/* Relative names never reach c-ares: BADNAME inside lookup() itself. */
static void
test_lookup_badname_and_invalid(void **state)
{
    static const struct aimx_fake_cfg cfg[] = {
        AIMX_FAKE_CFG_LIST("servers", 1),
        AIMX_FAKE_CFG_STRING("servers[0]", "127.0.0.1:9"),
    };
    static const char *const bad[] = {"example.test", "", "a.b"};
    const aimx_resolver_ops *ops =
        resolver_cares_LTX_aimx_plugin_v1()->resolver;
    static struct created c;
    struct aimx_fake_dns_sink sink;
    aimx_dns_query q;
    char longname[300];
    size_t i;

    (void)state;
    create_with(&c, cfg, COUNT(cfg));
    assert_int_equal(c.st, AIMX_OK);
    for (i = 0; i < COUNT(bad); i++) {
        memset(&q, 0, sizeof q);
        q.struct_size = sizeof q;
        q.type = AIMX_DNS_A;
        q.name = bad[i];
        aimx_fake_dns_sink_init(&sink);
        assert_int_equal(
            ops->lookup(c.inst, &q, aimx_fake_dns_sink_handle(&sink)), AIMX_OK);
        /* Already completed when lookup() returns. */
        assert_int_equal(sink.completed, 1);
        assert_int_equal(sink.completions, 1);
        assert_int_equal(sink.completion.outcome, AIMX_DNS_BADNAME);
        assert_int_equal(sink.record_count, 0);
        aimx_fake_dns_sink_free(&sink);
    }
    memset(longname, 'a', sizeof longname - 2);
    for (i = 63; i < sizeof longname - 2; i += 64)
        longname[i] = '.';
    longname[sizeof longname - 2] = '.';
    longname[sizeof longname - 1] = '\0';
    q.name = longname;
    aimx_fake_dns_sink_init(&sink);
    assert_int_equal(ops->lookup(c.inst, &q, aimx_fake_dns_sink_handle(&sink)),
                     AIMX_OK);
    assert_int_equal(sink.completion.outcome, AIMX_DNS_BADNAME);
    aimx_fake_dns_sink_free(&sink);

    /* Absolute but not encodable: c-ares refuses it on the I/O thread,
     * before anything is sent (the server, port 9, would not answer). */
    {
        static const char *const unencodable[] = {
            "a..example.test.",
            "a234567890123456789012345678901234567890123456789012345678901234"
            ".test.",
        };
        for (i = 0; i < COUNT(unencodable); i++) {
            q.name = unencodable[i];
            aimx_fake_dns_sink_init(&sink);
            assert_int_equal(
                ops->lookup(c.inst, &q, aimx_fake_dns_sink_handle(&sink)),
                AIMX_OK);
            assert_true(aimx_fake_dns_sink_wait(&sink, 5000));
            assert_int_equal(sink.completion.outcome, AIMX_DNS_BADNAME);
            assert_int_equal(sink.completions, 1);
            aimx_fake_dns_sink_free(&sink);
        }
    }

    /* Invalid calls: an error status and no sink call. */
    aimx_fake_dns_sink_init(&sink);
    assert_int_equal(
        ops->lookup(c.inst, NULL, aimx_fake_dns_sink_handle(&sink)),
        AIMX_ERR_INVALID);
    q.name = NULL;
    assert_int_equal(ops->lookup(c.inst, &q, aimx_fake_dns_sink_handle(&sink)),
                     AIMX_ERR_INVALID);
    q.name = "example.test.";
    assert_int_equal(ops->lookup(c.inst, &q, NULL), AIMX_ERR_INVALID);
    q.struct_size = 4;
    assert_int_equal(ops->lookup(c.inst, &q, aimx_fake_dns_sink_handle(&sink)),
                     AIMX_ERR_INVALID);
    assert_int_equal(sink.completions, 0);
    /* cancel() of a sink the plugin does not know is harmless. */
    ops->cancel(c.inst, aimx_fake_dns_sink_handle(&sink));
    destroy_created(&c);
    assert_int_equal(sink.completions, 0);
}

/* ------------------------------------------------------------------------
 * Message building.
 */

static void
put8(struct msg *m, unsigned v)
{
    m->b[m->n++] = (unsigned char)v;
}

static void
put16(struct msg *m, unsigned v)
{
    put8(m, (v >> 8) & 0xff);
    put8(m, v & 0xff);
}

static void
put32(struct msg *m, uint32_t v)
{
    put16(m, (v >> 16) & 0xffff);
    put16(m, v & 0xffff);
}

static void
put_name(struct msg *m, const char *name)
{
    const char *p = name, *dot;

    while (*p && strcmp(p, ".") != 0) {
        dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        put8(m, (unsigned)len);
        memcpy(m->b + m->n, p, len);
        m->n += len;
        p += len + (dot ? 1 : 0);
    }
    put8(m, 0);
}

static void
msg_start(struct msg *m, unsigned rcode, int ad, const char *qname,
          unsigned qtype, unsigned ancount)
{
    memset(m, 0, sizeof *m);
    put16(m, 0x1234);
    put8(m, 0x81);                           /* QR, RD */
    put8(m, 0x80 | (ad ? 0x20 : 0) | rcode); /* RA, AD, RCODE */
    put16(m, 1);
    put16(m, ancount);
    put16(m, 0);
    put16(m, 0);
    put_name(m, qname);
    put16(m, qtype);
    put16(m, 1);
}

static size_t
rr_start(struct msg *m, const char *owner, unsigned type, uint32_t ttl)
{
    size_t at;

    put_name(m, owner);
    put16(m, type);
    put16(m, 1);
    put32(m, ttl);
    at = m->n;
    put16(m, 0);
    return at;
}

static void
rr_end(struct msg *m, size_t at)
{
    size_t len = m->n - at - 2;

    m->b[at] = (unsigned char)(len >> 8);
    m->b[at + 1] = (unsigned char)(len & 0xff);
}

static void
add_cname(struct msg *m, const char *owner, const char *target)
{
    size_t at = rr_start(m, owner, AIMX_DNS_CNAME, 60);
    put_name(m, target);
    rr_end(m, at);
}

static void
add_a(struct msg *m, const char *owner, const char *ip)
{
    size_t at = rr_start(m, owner, AIMX_DNS_A, 60);
    assert_int_equal(inet_pton(AF_INET, ip, m->b + m->n), 1);
    m->n += 4;
    rr_end(m, at);
}

static int
parse(const struct msg *m, unsigned qtype, const char *qname,
      struct rcares_answer *a)
{
    const char *seen[] = {qname};
    return rcares_answer_parse(m->b, m->n, (uint16_t)qtype, qname, seen, 1,
                               RCARES_MAX_CHAIN, a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_good),
        cmocka_unit_test(test_server_bad),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_outcome),
        cmocka_unit_test(test_answer_mx_null_and_compressed),
        cmocka_unit_test(test_answer_txt_joined),
        cmocka_unit_test(test_answer_chain),
        cmocka_unit_test(test_answer_chain_broken),
        cmocka_unit_test(test_answer_malformed),
        cmocka_unit_test(test_answer_other_types),
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_config_good),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_bad_timeout),
        cmocka_unit_test(test_config_bad_tries),
        cmocka_unit_test(test_config_bad_servers),
        cmocka_unit_test(test_config_ambiguous_ipv6_warns),
        cmocka_unit_test(test_lookup_badname_and_invalid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
