/* SPDX-License-Identifier: MIT */
/* The core's routing rules (RFC 5321 5.1, RFC 7505) against a scripted
 * resolver and a small IPv4-only policy defined here: every policy and
 * resolver gets these rules for free, so they are tested without either
 * bundled plugin. */
#include "config.h"
#include "netaddr.h"
#include "route.h"
#include "scripted.h"

#include <ctype.h>
#include <idn2.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>

static aimx_instance resolver, policy;
static aimx_router router;

static void
setup_router(void)
{
    memset(&resolver, 0, sizeof resolver);
    memset(&policy, 0, sizeof policy);
    snprintf(resolver.plugin.name, sizeof resolver.plugin.name, "scripted");
    resolver.plugin.resolver.lookup = scripted_dns_lookup;
    snprintf(policy.plugin.name, sizeof policy.plugin.name, "ipv4-test");
    policy.plugin.policy.select = scripted_policy_select;
    memset(&router, 0, sizeof router);
    router.resolver = &resolver;
    router.policy = &policy;
    router.allow_private_targets = 1;
    router.max_addresses_per_host = 5;
    router.max_mx_hosts = 10;
}

static void
run(const struct answer *s, size_t n, size_t hold_for, aimx_route *r,
    const char *domain)
{
    scripted_dns_set(s, n, hold_for);
    memset(r, 0, sizeof *r);
    snprintf(r->domain, sizeof r->domain, "%s", domain);
    assert_int_equal(aimx__route_resolve(&router, r, 1), 0);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
two_mx_first_usable(void **state)
{
    static const struct answer s[] = {
        {"ex.test.",
         AIMX_DNS_MX,
         AIMX_DNS_OK,
         {"20 mx2.ex.test.", "10 mx1.ex.test."}},
        {"mx1.ex.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.1", "127.0.0.2"}},
        {"mx1.ex.test.", AIMX_DNS_AAAA, AIMX_DNS_NODATA, {NULL}},
        {"mx2.ex.test.", AIMX_DNS_A, AIMX_DNS_NODATA, {NULL}},
        {"mx2.ex.test.", AIMX_DNS_AAAA, AIMX_DNS_OK, {"::1"}},
    };
    aimx_route r;
    char t[AIMX_ADDR_TEXT_MAX];

    (void)state;
    run(s, N(s), 4, &r, "ex.test");
    assert_int_equal(r.status, AIMX_ROUTE_OK);
    assert_int_equal(r.host_count, 2);
    assert_string_equal(r.hosts[0].name, "mx1.ex.test");
    assert_int_equal(r.hosts[0].verdict, AIMX_POLICY_USE);
    assert_int_equal(r.hosts[0].target_count, 2);
    assert_string_equal(aimx__addr_text(&r.hosts[0].targets[1], t, sizeof t),
                        "127.0.0.2");
    assert_string_equal(r.hosts[1].name, "mx2.ex.test");
    assert_int_equal(r.hosts[1].verdict, AIMX_POLICY_SKIP);
    assert_string_equal(r.hosts[1].reason, "no_ipv4");
    assert_int_equal(r.hosts[1].aaaa_count, 1);
    /* All four address lookups were in flight together. */
    assert_int_equal(scripted_dns_max_outstanding(), 4);
    aimx__route_free(&r, 1);
}

static void
null_mx_alone_and_beside_another(void **state)
{
    static const struct answer alone[] = {
        {"null.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"0 ."}},
    };
    static const struct answer beside[] = {
        {"null.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mx.null.test.", "0 ."}},
        {"mx.null.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.1"}},
    };
    aimx_route r;

    (void)state;
    run(alone, N(alone), 1, &r, "null.test");
    assert_int_equal(r.status, AIMX_ROUTE_PERMFAIL);
    assert_string_equal(r.reason, "null_mx");
    assert_string_equal(r.enhanced, "5.1.10");
    assert_non_null(
        strstr(r.detail, "does not accept mail (null MX, RFC 7505)"));
    assert_int_equal(scripted_dns_queries(), 1); /* no address lookup at all */
    aimx__route_free(&r, 1);

    run(beside, N(beside), 1, &r, "null.test");
    assert_int_equal(r.status, AIMX_ROUTE_PERMFAIL);
    assert_string_equal(r.reason, "null_mx");
    assert_int_equal(scripted_dns_queries(), 1);
    aimx__route_free(&r, 1);
}

static void
nxdomain_is_permanent_nodata_is_implicit(void **state)
{
    static const struct answer nx[] = {
        {"gone.test.", AIMX_DNS_MX, AIMX_DNS_NXDOMAIN, {NULL}},
    };
    static const struct answer nodata[] = {
        {"bare.test.", AIMX_DNS_MX, AIMX_DNS_NODATA, {NULL}},
        {"bare.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.9"}},
        {"bare.test.", AIMX_DNS_AAAA, AIMX_DNS_NODATA, {NULL}},
    };
    aimx_route r;

    (void)state;
    run(nx, N(nx), 1, &r, "gone.test");
    assert_int_equal(r.status, AIMX_ROUTE_PERMFAIL);
    assert_string_equal(r.reason, "nxdomain");
    assert_int_equal(r.host_count, 0);
    aimx__route_free(&r, 1);

    run(nodata, N(nodata), 2, &r, "bare.test");
    assert_int_equal(r.status, AIMX_ROUTE_OK);
    assert_int_equal(r.host_count, 1);
    assert_true(r.hosts[0].implicit);
    assert_int_equal(r.hosts[0].preference, 0);
    assert_string_equal(r.hosts[0].name, "bare.test");
    aimx__route_free(&r, 1);
}

static void
temporary_mx_failures_never_fall_back(void **state)
{
    static const uint32_t outcomes[] = {AIMX_DNS_SERVFAIL, AIMX_DNS_REFUSED,
                                        AIMX_DNS_TIMEOUT, AIMX_DNS_UNREACHABLE,
                                        AIMX_DNS_LOCALERR};
    aimx_route r;

    (void)state;
    for (size_t i = 0; i < N(outcomes); i++) {
        struct answer s[] = {
            {"flaky.test.", AIMX_DNS_MX, outcomes[i], {NULL}},
            {"flaky.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.1"}},
        };
        run(s, N(s), 1, &r, "flaky.test");
        assert_int_equal(r.status, AIMX_ROUTE_TEMPFAIL);
        assert_string_equal(r.reason, "dns_temporary");
        assert_false(scripted_dns_was_asked(AIMX_DNS_A, "flaky.test."));
        assert_int_equal(scripted_dns_queries(), 1);
        aimx__route_free(&r, 1);
    }
}

static void
bad_exchanges_are_skipped(void **state)
{
    static const struct answer s[] = {
        {"odd.test.",
         AIMX_DNS_MX,
         AIMX_DNS_OK,
         {"5 127.0.0.1.", "6 bad_name.odd.test.", "7 mx.odd.test."}},
        {"mx.odd.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.3"}},
    };
    aimx_route r;

    (void)state;
    run(s, N(s), 2, &r, "odd.test");
    assert_int_equal(r.status, AIMX_ROUTE_OK);
    assert_int_equal(r.host_count, 3);
    assert_string_equal(r.hosts[0].reason, "ip_literal_mx");
    assert_false(r.hosts[0].looked_up);
    assert_string_equal(r.hosts[1].reason, "bad_mx_name");
    assert_false(r.hosts[1].looked_up);
    assert_int_equal(r.hosts[2].verdict, AIMX_POLICY_USE);
    assert_false(scripted_dns_was_asked(AIMX_DNS_A, "127.0.0.1."));
    aimx__route_free(&r, 1);
}

static void
private_targets(void **state)
{
    static const struct answer s[] = {
        {"corp.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mx.corp.test."}},
        {"mx.corp.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.1", "127.0.0.2"}},
    };
    aimx_route r;

    (void)state;
    router.allow_private_targets = 0;
    run(s, N(s), 2, &r, "corp.test");
    assert_int_equal(r.status, AIMX_ROUTE_PERMFAIL);
    assert_string_equal(r.reason, "no_usable_mx");
    assert_string_equal(r.hosts[0].reason, "private_address");
    assert_int_equal(r.hosts[0].target_count, 0);
    assert_non_null(strstr(r.hosts[0].detail, "127.0.0.1 (loopback)"));
    assert_non_null(strstr(r.hosts[0].detail, "allow_private_targets"));
    aimx__route_free(&r, 1);

    router.allow_private_targets = 1;
    run(s, N(s), 2, &r, "corp.test");
    assert_int_equal(r.status, AIMX_ROUTE_OK);
    assert_int_equal(r.hosts[0].target_count, 2);
    aimx__route_free(&r, 1);
}

static void
outcome_of_unusable_hosts(void **state)
{
    static const struct answer perm[] = {
        {"v6.test.",
         AIMX_DNS_MX,
         AIMX_DNS_OK,
         {"10 a.v6.test.", "20 b.v6.test."}},
        {"a.v6.test.", AIMX_DNS_A, AIMX_DNS_NODATA, {NULL}},
        {"a.v6.test.", AIMX_DNS_AAAA, AIMX_DNS_OK, {"::1"}},
        {"b.v6.test.", AIMX_DNS_A, AIMX_DNS_NXDOMAIN, {NULL}},
        {"b.v6.test.", AIMX_DNS_AAAA, AIMX_DNS_NXDOMAIN, {NULL}},
    };
    static const struct answer temp[] = {
        {"v6.test.",
         AIMX_DNS_MX,
         AIMX_DNS_OK,
         {"10 a.v6.test.", "20 b.v6.test."}},
        {"a.v6.test.", AIMX_DNS_A, AIMX_DNS_NODATA, {NULL}},
        {"a.v6.test.", AIMX_DNS_AAAA, AIMX_DNS_OK, {"::1"}},
        {"b.v6.test.", AIMX_DNS_A, AIMX_DNS_SERVFAIL, {NULL}},
        {"b.v6.test.", AIMX_DNS_AAAA, AIMX_DNS_NODATA, {NULL}},
    };
    aimx_route r;

    (void)state;
    run(perm, N(perm), 4, &r, "v6.test");
    assert_int_equal(r.status, AIMX_ROUTE_PERMFAIL);
    assert_string_equal(r.reason, "no_usable_mx");
    /* Every host's reason, in the policy's words. */
    assert_non_null(
        strstr(r.detail, "a.v6.test (no_ipv4): a.v6.test has no IPv4"));
    assert_non_null(strstr(r.detail, "b.v6.test (no_ipv4)"));
    aimx__route_free(&r, 1);

    /* A DNS hiccup on one host keeps the whole domain temporary. */
    run(temp, N(temp), 4, &r, "v6.test");
    assert_int_equal(r.status, AIMX_ROUTE_TEMPFAIL);
    assert_string_equal(r.reason, "dns_temporary");
    assert_int_equal(r.hosts[1].verdict, AIMX_POLICY_DEFER);
    assert_true(r.hosts[1].temporary);
    aimx__route_free(&r, 1);
}

static void
policy_may_not_invent_addresses(void **state)
{
    static const struct answer s[] = {
        {"p.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mx.p.test."}},
        {"mx.p.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.1"}},
    };
    aimx_route r;

    (void)state;
    scripted_policy_bad_index = 1;
    run(s, N(s), 2, &r, "p.test");
    scripted_policy_bad_index = 0;
    assert_int_equal(r.status, AIMX_ROUTE_TEMPFAIL);
    assert_string_equal(r.hosts[0].reason, "policy_error");
    assert_non_null(strstr(r.hosts[0].detail, "out of range"));
    aimx__route_free(&r, 1);
}

static void
limits(void **state)
{
    static const struct answer s[] = {
        {"big.test.",
         AIMX_DNS_MX,
         AIMX_DNS_OK,
         {"10 a.big.test.", "20 b.big.test.", "30 c.big.test."}},
        {"a.big.test.",
         AIMX_DNS_A,
         AIMX_DNS_OK,
         {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}},
    };
    aimx_route r;

    (void)state;
    router.max_mx_hosts = 2;
    router.max_addresses_per_host = 3;
    run(s, N(s), 4, &r, "big.test");
    router.max_mx_hosts = 10;
    router.max_addresses_per_host = 5;
    assert_int_equal(r.host_count, 2);
    assert_int_equal(r.hosts[0].target_count, 3);
    assert_false(scripted_dns_was_asked(AIMX_DNS_A, "c.big.test."));
    aimx__route_free(&r, 1);
}

static void
ten_hosts_twenty_lookups_at_once(void **state)
{
    /* Three domains, ten MX hosts in all. */
    static const struct answer s[] = {
        {"many.test.",
         AIMX_DNS_MX,
         AIMX_DNS_OK,
         {"10 m0.many.test.", "10 m1.many.test.", "10 m2.many.test.",
          "10 m3.many.test."}},
        {"more.test.",
         AIMX_DNS_MX,
         AIMX_DNS_OK,
         {"10 m4.more.test.", "10 m5.more.test.", "10 m6.more.test.",
          "10 m7.more.test."}},
        {"last.test.",
         AIMX_DNS_MX,
         AIMX_DNS_OK,
         {"10 m8.last.test.", "10 m9.last.test."}},
    };
    aimx_route r[3];

    (void)state;
    /* The resolver answers nothing until 20 lookups wait: the three MX
     * lookups are released by its one-second cap, the twenty address
     * lookups only if the core has them all in flight at once. */
    scripted_dns_set(s, N(s), 20);
    memset(r, 0, sizeof r);
    snprintf(r[0].domain, sizeof r[0].domain, "many.test");
    snprintf(r[1].domain, sizeof r[1].domain, "more.test");
    snprintf(r[2].domain, sizeof r[2].domain, "last.test");
    assert_int_equal(aimx__route_resolve(&router, r, 3), 0);
    assert_int_equal(scripted_dns_queries(), 3 + 20);
    assert_int_equal(scripted_dns_max_outstanding(), 20);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(r[i].host_count, i == 2 ? 2 : 4);
    aimx__route_free(r, 3);
}

static unsigned
first_choice(unsigned n)
{
    (void)n;
    return 0;
}

static unsigned
last_choice(unsigned n)
{
    return n - 1;
}

static void
order_sorts_shuffles_and_dedupes(void **state)
{
    aimx_route_host h[6];
    size_t n;

    (void)state;
    memset(h, 0, sizeof h);
    const char *names[] = {"c", "a", "b", "A", "d", "e"};
    const uint16_t prefs[] = {20, 10, 10, 30, 10, 5};
    for (size_t i = 0; i < 6; i++) {
        snprintf(h[i].name, sizeof h[i].name, "%s", names[i]);
        h[i].preference = prefs[i];
    }
    n = aimx__route_order_mx(h, 6, first_choice);
    /* "A" duplicates "a" (names are case-insensitive): dropped. */
    assert_int_equal(n, 5);
    assert_string_equal(h[0].name, "e");
    assert_int_equal(h[1].preference, 10);
    assert_int_equal(h[2].preference, 10);
    assert_int_equal(h[3].preference, 10);
    assert_string_equal(h[4].name, "c");

    /* The shuffle uses the random source within one preference only. */
    n = aimx__route_order_mx(h, 5, last_choice);
    assert_int_equal(n, 5);
    assert_string_equal(h[0].name, "e");
    assert_string_equal(h[4].name, "c");
}

static void
equal_preferences_vary_across_runs(void **state)
{
    static const struct answer s[] = {
        {"eq.test.",
         AIMX_DNS_MX,
         AIMX_DNS_OK,
         {"10 a.eq.test.", "10 b.eq.test.", "10 c.eq.test."}},
    };
    int first[3] = {0, 0, 0};
    aimx_route r;

    (void)state;
    for (int i = 0; i < 60; i++) {
        run(s, N(s), 1, &r, "eq.test");
        first[r.hosts[0].name[0] - 'a']++;
        aimx__route_free(&r, 1);
    }
    /* Random order: each host comes first sometimes (a failure here has
     * probability 3 * (2/3)^60, about 1e-10). */
    assert_true(first[0] > 0 && first[1] > 0 && first[2] > 0);
}

static void
domains_from_user_input(void **state)
{
    char d[256], err[256];

    (void)state;
    assert_int_equal(aimx__route_domain_from_input("User@Example.COM", d,
                                                   sizeof d, err, sizeof err),
                     0);
    assert_string_equal(d, "example.com");
    assert_int_equal(aimx__route_domain_from_input("b\xc3\xbc"
                                                   "cher.example.",
                                                   d, sizeof d, err,
                                                   sizeof err),
                     0);
    assert_string_equal(d, "xn--bcher-kva.example");
    static const char *bad[] = {"a..b",
                                "x@",
                                "",
                                "[127.0.0.1]",
                                "u@[127.0.0.1]",
                                "127.0.0.1",
                                "a b.example",
                                "new\nline.example",
                                "-a.example"};
    for (size_t i = 0; i < N(bad); i++)
        if (aimx__route_domain_from_input(bad[i], d, sizeof d, err,
                                          sizeof err) == 0)
            fail_msg("'%s' was accepted as %s", bad[i], d);
}

/* The ASCII fast path against libidn2 itself: random names of letters
 * of both cases, digits, '-' and '.', valid and not, reserved "ab--" and
 * "xn--" labels among them.  Same verdict, same domain. */
static void
ascii_domains_as_libidn2_sees_them(void **state)
{
    static const char alphabet[] = "aZx-n0-9.-Q";
    unsigned seed = 7;
    char name[80], d[256], err[256];
    int accepted = 0;

    (void)state;
    for (int k = 0; k < 20000; k++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 8) % 24;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            name[i] = alphabet[(seed >> 10) % (sizeof alphabet - 1)];
        }
        name[n] = '\0';
        if (k % 7 == 0 && n > 4) /* a reserved or A-label prefix */
            memcpy(name, k % 14 ? "xn--" : "ab--", 4);
        if (k % 11 == 0) { /* a label over 63 octets */
            memset(name, 'a', sizeof name - 1);
            name[sizeof name - 1] = '\0';
        }

        char *ascii = NULL;
        int want = idn2_to_ascii_8z(name, &ascii,
                                    IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
        char expect[256] = "";
        if (want == IDN2_OK) {
            size_t l = strlen(ascii);
            if (l > 1 && ascii[l - 1] == '.')
                ascii[--l] = '\0';
            for (char *p = ascii; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            if (l < sizeof expect && aimx__valid_hostname(ascii) &&
                !aimx__is_ip_literal(ascii))
                snprintf(expect, sizeof expect, "%s", ascii);
            else
                want = -1;
        }
        idn2_free(ascii);
        int got =
            aimx__route_domain_from_input(name, d, sizeof d, err, sizeof err);
        if ((want == IDN2_OK) != (got == 0))
            fail_msg("'%s': libidn2 %s it, aimx %s it", name,
                     want == IDN2_OK ? "accepts" : "refuses",
                     got == 0 ? "accepts" : "refuses");
        if (got == 0) {
            assert_string_equal(d, expect);
            accepted++;
        }
    }
    assert_true(accepted > 1000);
}

static int
setup(void **state)
{
    (void)state;
    setup_router();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ascii_domains_as_libidn2_sees_them),
        cmocka_unit_test_setup(two_mx_first_usable, setup),
        cmocka_unit_test_setup(null_mx_alone_and_beside_another, setup),
        cmocka_unit_test_setup(nxdomain_is_permanent_nodata_is_implicit, setup),
        cmocka_unit_test_setup(temporary_mx_failures_never_fall_back, setup),
        cmocka_unit_test_setup(bad_exchanges_are_skipped, setup),
        cmocka_unit_test_setup(private_targets, setup),
        cmocka_unit_test_setup(outcome_of_unusable_hosts, setup),
        cmocka_unit_test_setup(policy_may_not_invent_addresses, setup),
        cmocka_unit_test_setup(limits, setup),
        cmocka_unit_test_setup(ten_hosts_twenty_lookups_at_once, setup),
        cmocka_unit_test(order_sorts_shuffles_and_dedupes),
        cmocka_unit_test_setup(equal_preferences_vary_across_runs, setup),
        cmocka_unit_test(domains_from_user_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
