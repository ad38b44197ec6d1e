/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of policy-ipfamily: the truth table row by row through
 * ipfamily_decide(), an exhaustive sweep of every outcome pair against the
 * table as written in the spec, then the plugin itself through its
 * descriptor and the SDK's fake host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

#include "ipfamily_decide.h"

#define NADDR    8
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define GUARD    0xdeadbeefu
#define MX       "mx.example.com"

/* A lookup as the host reports it: an outcome and how many addresses. */
struct lookup {
    uint32_t outcome;
    size_t count;
};

/* One select() call's storage, laid out as the host does. */
struct fixture {
    aimx_addr a[NADDR];
    aimx_addr aaaa[NADDR];
    aimx_policy_input in;
    aimx_policy_output out;
    uint32_t targets[2 * NADDR + 1]; /* one more: a guard against overruns */
};

/* The spec's classes.  OK with no address counts as "none". */
static const struct lookup ok_cases[] = {
    {AIMX_DNS_OK, 1},
    {AIMX_DNS_OK, 3},
};
static const struct lookup none_cases[] = {
    {AIMX_DNS_NODATA, 0},
    {AIMX_DNS_NXDOMAIN, 0},
    {AIMX_DNS_BADNAME, 0},
    {AIMX_DNS_OK, 0},
};
/* 42: an outcome a later ABI minor might append; it must not bounce. */
static const struct lookup fail_cases[] = {
    {AIMX_DNS_SERVFAIL, 0},
    {AIMX_DNS_REFUSED, 0},
    {AIMX_DNS_TIMEOUT, 0},
    {AIMX_DNS_UNREACHABLE, 0},
    {AIMX_DNS_LOCALERR, 0},
    {AIMX_DNS_CANCELLED, 0},
    {42, 0},
};
static const struct lookup no_ok_cases[] = {
    /* none or fail */
    {AIMX_DNS_NODATA, 0},    {AIMX_DNS_NXDOMAIN, 0},
    {AIMX_DNS_BADNAME, 0},   {AIMX_DNS_OK, 0},
    {AIMX_DNS_SERVFAIL, 0},  {AIMX_DNS_TIMEOUT, 0},
    {AIMX_DNS_CANCELLED, 0}, {42, 0},
};

/* The table exactly as the spec writes it; the first matching row wins.
 * 'o' = ok, 'n' = none, 'f' = fail, '*' = any, '-' = none or fail. */
static const struct spec_row {
    int enable_ipv6;
    char a, aaaa;
    uint32_t verdict;
} spec[] = {
    {0, 'o', '*', AIMX_POLICY_USE},   {0, 'n', 'o', AIMX_POLICY_SKIP},
    {0, 'n', '-', AIMX_POLICY_SKIP},  {0, 'f', '*', AIMX_POLICY_DEFER},
    {1, 'o', 'o', AIMX_POLICY_USE},   {1, 'o', '-', AIMX_POLICY_USE},
    {1, '-', 'o', AIMX_POLICY_USE},   {1, 'n', 'n', AIMX_POLICY_SKIP},
    {1, 'f', '-', AIMX_POLICY_DEFER}, {1, 'n', 'f', AIMX_POLICY_DEFER},
};

aimx_plugin_entry_fn policy_ipfamily_LTX_aimx_plugin_v1;

static void setup_case(struct fixture *f, struct lookup a, struct lookup aaaa);
static aimx_status run(struct fixture *f, int enable_ipv6, int prefer_ipv6);
static void assert_targets(const struct fixture *f, const uint32_t *want,
                           size_t n);
static void assert_refusal(const struct fixture *f, uint32_t verdict,
                           const char *reason, const char *detail_part);
static void assert_reason_syntax(const char *reason);
static char class_of(struct lookup l);
static int spec_matches(char pattern, char cls);
static uint32_t spec_verdict(int enable_ipv6, char a, char aaaa);
static aimx_status create_plugin(struct aimx_fake_host *fh,
                                 const struct aimx_fake_cfg *cfg, size_t n,
                                 int enable_ipv6, void **instance);
static void *failing_alloc(aimx_host *host, size_t size);

static const struct lookup A3 = {AIMX_DNS_OK, 3};
static const struct lookup AAAA2 = {AIMX_DNS_OK, 2};

/* ---- the truth table, row by row --------------------------------------- */

/* false | ok | any -> use every A address, in resolver order */
static void
test_v4only_a_ok(void **state)
{
    static const uint32_t want[] = {0, 1, 2};
    const struct lookup *sets[] = {ok_cases, none_cases, fail_cases};
    const size_t lens[] = {COUNT(ok_cases), COUNT(none_cases),
                           COUNT(fail_cases)};
    struct fixture f;
    size_t s, i;
    int prefer;

    (void)state;
    for (s = 0; s < 3; s++)
        for (i = 0; i < lens[s]; i++)
            for (prefer = 0; prefer <= 1; prefer++) {
                setup_case(&f, A3, sets[s][i]);
                assert_int_equal(run(&f, 0, prefer), AIMX_OK);
                assert_int_equal(f.out.verdict, AIMX_POLICY_USE);
                assert_targets(&f, want, COUNT(want));
            }
}

/* false | none | ok -> skip no_ipv4, definitive, "only IPv6" */
static void
test_v4only_a_none_aaaa_ok(void **state)
{
    struct fixture f;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(none_cases); i++) {
        setup_case(&f, none_cases[i], AAAA2);
        assert_int_equal(run(&f, 0, 1), AIMX_OK);
        assert_refusal(&f, AIMX_POLICY_SKIP, "no_ipv4",
                       MX " has only IPv6 addresses and enable_ipv6 = false.");
    }
}

/* false | none | none or fail -> skip no_ipv4, definitive, "no IPv4" */
static void
test_v4only_a_none_aaaa_not_ok(void **state)
{
    struct fixture f;
    size_t i, j;

    (void)state;
    for (i = 0; i < COUNT(none_cases); i++)
        for (j = 0; j < COUNT(no_ok_cases); j++) {
            setup_case(&f, none_cases[i], no_ok_cases[j]);
            assert_int_equal(run(&f, 0, 1), AIMX_OK);
            assert_refusal(&f, AIMX_POLICY_SKIP, "no_ipv4",
                           MX " has no IPv4 address.");
        }
}

/* false | fail | any -> defer: a DNS hiccup never becomes "no IPv4" */
static void
test_v4only_a_fail(void **state)
{
    const struct lookup aaaas[] = {
        {AIMX_DNS_OK, 2}, {AIMX_DNS_NODATA, 0}, {AIMX_DNS_SERVFAIL, 0}};
    struct fixture f;
    size_t i, j;

    (void)state;
    for (i = 0; i < COUNT(fail_cases); i++)
        for (j = 0; j < COUNT(aaaas); j++) {
            setup_case(&f, fail_cases[i], aaaas[j]);
            assert_int_equal(run(&f, 0, 1), AIMX_OK);
            assert_refusal(&f, AIMX_POLICY_DEFER, "dns_a_failed",
                           "The A lookup for " MX " failed (");
        }
    setup_case(&f, fail_cases[0], aaaas[0]);
    run(&f, 0, 1);
    assert_string_equal(f.out.detail,
                        "The A lookup for " MX " failed (SERVFAIL).");
    setup_case(&f, fail_cases[2], aaaas[0]);
    run(&f, 0, 1);
    assert_string_equal(f.out.detail,
                        "The A lookup for " MX " failed (timed out).");
}

/* true | ok | ok -> both, interleaved, preferred family first */
static void
test_dual_both_ok_interleaved(void **state)
{
    static const uint32_t v6_first[] = {3, 0, 4, 1, 2};
    static const uint32_t v4_first[] = {0, 3, 1, 4, 2};
    static const uint32_t one_a_v6_first[] = {1, 0, 2, 3};
    static const uint32_t one_a_v4_first[] = {0, 1, 2, 3};
    const struct lookup a1 = {AIMX_DNS_OK, 1}, aaaa3 = {AIMX_DNS_OK, 3};
    struct fixture f;

    (void)state;
    setup_case(&f, A3, AAAA2);
    assert_int_equal(run(&f, 1, 1), AIMX_OK);
    assert_int_equal(f.out.verdict, AIMX_POLICY_USE);
    assert_targets(&f, v6_first, COUNT(v6_first));

    setup_case(&f, A3, AAAA2);
    assert_int_equal(run(&f, 1, 0), AIMX_OK);
    assert_targets(&f, v4_first, COUNT(v4_first));

    setup_case(&f, a1, aaaa3);
    assert_int_equal(run(&f, 1, 1), AIMX_OK);
    assert_targets(&f, one_a_v6_first, COUNT(one_a_v6_first));

    setup_case(&f, a1, aaaa3);
    assert_int_equal(run(&f, 1, 0), AIMX_OK);
    assert_targets(&f, one_a_v4_first, COUNT(one_a_v4_first));
}

/* true | ok | none or fail -> the A addresses */
static void
test_dual_only_a_ok(void **state)
{
    static const uint32_t want[] = {0, 1, 2};
    struct fixture f;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(no_ok_cases); i++) {
        setup_case(&f, A3, no_ok_cases[i]);
        assert_int_equal(run(&f, 1, 1), AIMX_OK);
        assert_int_equal(f.out.verdict, AIMX_POLICY_USE);
        assert_targets(&f, want, COUNT(want));
    }
}

/* true | none or fail | ok -> the AAAA addresses */
static void
test_dual_only_aaaa_ok(void **state)
{
    struct fixture f;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(no_ok_cases); i++) {
        uint32_t want[] = {0, 1};
        setup_case(&f, no_ok_cases[i], AAAA2);
        /* AAAA indices follow the A ones, even when A is empty. */
        want[0] += (uint32_t)no_ok_cases[i].count;
        want[1] += (uint32_t)no_ok_cases[i].count;
        assert_int_equal(run(&f, 1, 0), AIMX_OK);
        assert_int_equal(f.out.verdict, AIMX_POLICY_USE);
        assert_targets(&f, want, COUNT(want));
    }
}

/* true | none | none -> skip no_address, definitive */
static void
test_dual_none_none(void **state)
{
    struct fixture f;
    size_t i, j;

    (void)state;
    for (i = 0; i < COUNT(none_cases); i++)
        for (j = 0; j < COUNT(none_cases); j++) {
            setup_case(&f, none_cases[i], none_cases[j]);
            assert_int_equal(run(&f, 1, 1), AIMX_OK);
            assert_refusal(&f, AIMX_POLICY_SKIP, "no_address",
                           MX " has no IPv4 or IPv6 address.");
        }
}

/* true | fail | none or fail -> defer */
static void
test_dual_a_fail(void **state)
{
    struct fixture f;
    size_t i, j;

    (void)state;
    for (i = 0; i < COUNT(fail_cases); i++) {
        for (j = 0; j < COUNT(none_cases); j++) {
            setup_case(&f, fail_cases[i], none_cases[j]);
            assert_int_equal(run(&f, 1, 1), AIMX_OK);
            assert_refusal(&f, AIMX_POLICY_DEFER, "dns_a_failed",
                           "and it has no IPv6 address.");
        }
        for (j = 0; j < COUNT(fail_cases); j++) {
            setup_case(&f, fail_cases[i], fail_cases[j]);
            assert_int_equal(run(&f, 1, 1), AIMX_OK);
            assert_refusal(&f, AIMX_POLICY_DEFER, "dns_failed",
                           "The A and AAAA lookups for " MX " failed (");
        }
    }
    setup_case(&f, fail_cases[0], fail_cases[3]);
    run(&f, 1, 1);
    assert_string_equal(f.out.detail,
                        "The A and AAAA lookups for " MX
                        " failed (SERVFAIL; no DNS server reachable).");
}

/* true | none | fail -> defer */
static void
test_dual_a_none_aaaa_fail(void **state)
{
    struct fixture f;
    size_t i, j;

    (void)state;
    for (i = 0; i < COUNT(none_cases); i++)
        for (j = 0; j < COUNT(fail_cases); j++) {
            setup_case(&f, none_cases[i], fail_cases[j]);
            assert_int_equal(run(&f, 1, 0), AIMX_OK);
            assert_refusal(&f, AIMX_POLICY_DEFER, "dns_aaaa_failed",
                           "The AAAA lookup for " MX " failed (");
        }
    setup_case(&f, none_cases[0], fail_cases[1]);
    run(&f, 1, 0);
    assert_string_equal(f.out.detail,
                        "The AAAA lookup for " MX
                        " failed (REFUSED) and it has no IPv4 address.");
}

/* Every outcome pair, both settings: the verdict the spec's table gives,
 * and the output rules every verdict obeys. */
static void
test_exhaustive_against_spec(void **state)
{
    const struct lookup *sets[] = {ok_cases, none_cases, fail_cases};
    const size_t lens[] = {COUNT(ok_cases), COUNT(none_cases),
                           COUNT(fail_cases)};
    struct fixture f;
    size_t sa, ia, sb, ib, k, m;
    int enable, prefer;
    unsigned checked = 0;

    (void)state;
    for (enable = 0; enable <= 1; enable++)
        for (prefer = 0; prefer <= 1; prefer++)
            for (sa = 0; sa < 3; sa++)
                for (ia = 0; ia < lens[sa]; ia++)
                    for (sb = 0; sb < 3; sb++)
                        for (ib = 0; ib < lens[sb]; ib++) {
                            struct lookup a = sets[sa][ia], aaaa = sets[sb][ib];

                            setup_case(&f, a, aaaa);
                            assert_int_equal(run(&f, enable, prefer), AIMX_OK);
                            assert_int_equal(f.out.verdict,
                                             spec_verdict(enable, class_of(a),
                                                          class_of(aaaa)));
                            assert_int_equal(f.out.flags, 0);
                            assert_true(f.out.target_count <= f.out.target_cap);
                            assert_int_equal(f.targets[f.out.target_cap],
                                             GUARD);
                            if (f.out.verdict == AIMX_POLICY_USE) {
                                assert_true(f.out.target_count > 0);
                                assert_string_equal(f.out.reason, "");
                                for (k = 0; k < f.out.target_count; k++) {
                                    assert_true(f.targets[k] <
                                                f.out.target_cap);
                                    if (!enable)
                                        assert_true(f.targets[k] < a.count);
                                    for (m = 0; m < k; m++)
                                        assert_true(f.targets[m] !=
                                                    f.targets[k]);
                                }
                            } else {
                                assert_int_equal(f.out.target_count, 0);
                                assert_reason_syntax(f.out.reason);
                                assert_non_null(strstr(f.out.detail, MX));
                                assert_int_equal(
                                    f.out.detail[strlen(f.out.detail) - 1],
                                    '.');
                            }
                            checked++;
                        }
    assert_true(checked > 500);
}

/* ---- output limits and bad input ---------------------------------------- */

static void
test_never_writes_past_target_cap(void **state)
{
    static const uint32_t want[] = {3, 0};
    struct fixture f;

    (void)state;
    setup_case(&f, A3, AAAA2);
    f.out.target_cap = 2;
    f.targets[2] = GUARD;
    assert_int_equal(run(&f, 1, 1), AIMX_OK);
    assert_int_equal(f.out.verdict, AIMX_POLICY_USE);
    assert_targets(&f, want, COUNT(want));
    assert_int_equal(f.targets[2], GUARD);

    /* No room at all although there are addresses: the host's bug. */
    setup_case(&f, A3, AAAA2);
    f.out.target_cap = 0;
    assert_int_equal(run(&f, 1, 1), AIMX_ERR_INVALID);
    assert_int_equal(f.targets[0], GUARD);
}

static void
test_long_host_name_stays_bounded(void **state)
{
    char name[254];
    struct fixture f;

    (void)state;
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    setup_case(&f, fail_cases[0], none_cases[0]);
    f.in.mx_host = name;
    assert_int_equal(run(&f, 1, 1), AIMX_OK);
    assert_int_equal(f.out.verdict, AIMX_POLICY_DEFER);
    assert_string_equal(f.out.reason, "dns_a_failed");
    assert_true(strlen(f.out.detail) < sizeof f.out.detail);

    setup_case(&f, none_cases[0], none_cases[0]);
    f.in.mx_host = NULL;
    assert_int_equal(run(&f, 0, 1), AIMX_OK);
    assert_string_equal(f.out.detail, "the MX host has no IPv4 address.");
}

static void
test_rejects_inconsistent_input(void **state)
{
    struct fixture f;

    (void)state;
    setup_case(&f, A3, AAAA2);
    assert_int_equal(ipfamily_decide(1, 1, NULL, &f.out), AIMX_ERR_INVALID);
    assert_int_equal(ipfamily_decide(1, 1, &f.in, NULL), AIMX_ERR_INVALID);

    setup_case(&f, A3, AAAA2);
    f.in.struct_size = offsetof(aimx_policy_input, aaaa_count);
    assert_int_equal(run(&f, 1, 1), AIMX_ERR_INVALID);

    setup_case(&f, A3, AAAA2);
    f.out.struct_size = offsetof(aimx_policy_output, detail);
    assert_int_equal(run(&f, 1, 1), AIMX_ERR_INVALID);

    setup_case(&f, A3, AAAA2);
    f.in.a_addrs = NULL;
    assert_int_equal(run(&f, 1, 1), AIMX_ERR_INVALID);

    setup_case(&f, A3, AAAA2);
    f.out.targets = NULL;
    assert_int_equal(run(&f, 1, 1), AIMX_ERR_INVALID);

    /* A newer host's larger structs are fine: we read only what we know. */
    setup_case(&f, A3, AAAA2);
    f.in.struct_size += 16;
    f.out.struct_size += 16;
    assert_int_equal(run(&f, 1, 1), AIMX_OK);
}

/* ---- the plugin through its descriptor ----------------------------------- */

static void
test_descriptor(void **state)
{
    const aimx_plugin_descriptor *d = policy_ipfamily_LTX_aimx_plugin_v1();

    (void)state;
    assert_non_null(d);
    assert_int_equal(d->struct_size, sizeof(aimx_plugin_descriptor));
    assert_int_equal(d->abi_major, AIMX_ABI_MAJOR);
    assert_int_equal(d->abi_minor, AIMX_ABI_MINOR);
    assert_int_equal(d->kind, AIMX_KIND_POLICY);
    assert_int_equal(d->flags, 0);
    assert_string_equal(d->name, "policy-ipfamily");
    assert_non_null(d->version);
    assert_non_null(d->description);
    assert_non_null(d->create);
    assert_non_null(d->destroy);
    assert_null(d->resolver);
    assert_null(d->transport);
    assert_non_null(d->policy);
    assert_int_equal(d->policy->struct_size, sizeof(aimx_policy_ops));
    assert_non_null(d->policy->select);
    assert_non_null(d->policy->families);
}

static void
test_create_defaults_ipv4_only(void **state)
{
    static struct aimx_fake_host fh;
    const aimx_plugin_descriptor *d = policy_ipfamily_LTX_aimx_plugin_v1();
    static const uint32_t want[] = {0, 1, 2};
    struct fixture f;
    void *inst = NULL;
    uint32_t fam = 0;

    (void)state;
    assert_int_equal(create_plugin(&fh, NULL, 0, 0, &inst), AIMX_OK);
    assert_non_null(inst);
    assert_true(aimx_fake_host_asked(&fh, "/enable_ipv6"));
    assert_true(aimx_fake_host_asked(&fh, "prefer"));
    assert_int_equal(fh.asked_count, 2);
    assert_int_equal(fh.error_count, 0);
    assert_int_equal(fh.alloc_live, 1);

    fh.cfg_closed = 1;
    assert_int_equal(d->policy->families(inst, &fam), AIMX_OK);
    assert_int_equal(fam, AIMX_FAMILY_IPV4);
    setup_case(&f, A3, AAAA2);
    assert_int_equal(d->policy->select(inst, &f.in, &f.out), AIMX_OK);
    assert_int_equal(f.out.verdict, AIMX_POLICY_USE);
    assert_targets(&f, want, COUNT(want));
    assert_int_equal(fh.misuse, 0);

    d->destroy(inst);
    assert_int_equal(fh.alloc_live, 0);
}

static void
test_create_enable_ipv6(void **state)
{
    static struct aimx_fake_host fh;
    static const struct aimx_fake_cfg v6[] = {
        AIMX_FAKE_CFG_STRING("prefer", "ipv6")};
    static const struct aimx_fake_cfg v4[] = {
        AIMX_FAKE_CFG_STRING("prefer", "ipv4")};
    static const uint32_t v6_first[] = {3, 0, 4, 1, 2};
    static const uint32_t v4_first[] = {0, 3, 1, 4, 2};
    const aimx_plugin_descriptor *d = policy_ipfamily_LTX_aimx_plugin_v1();
    struct fixture f;
    void *inst = NULL;
    uint32_t fam = 0;

    (void)state;
    /* Default prefer = "ipv6". */
    assert_int_equal(create_plugin(&fh, NULL, 0, 1, &inst), AIMX_OK);
    assert_int_equal(d->policy->families(inst, &fam), AIMX_OK);
    assert_int_equal(fam, AIMX_FAMILY_IPV4 | AIMX_FAMILY_IPV6);
    setup_case(&f, A3, AAAA2);
    assert_int_equal(d->policy->select(inst, &f.in, &f.out), AIMX_OK);
    assert_targets(&f, v6_first, COUNT(v6_first));
    d->destroy(inst);

    assert_int_equal(create_plugin(&fh, v6, COUNT(v6), 1, &inst), AIMX_OK);
    setup_case(&f, A3, AAAA2);
    assert_int_equal(d->policy->select(inst, &f.in, &f.out), AIMX_OK);
    assert_targets(&f, v6_first, COUNT(v6_first));
    d->destroy(inst);

    assert_int_equal(create_plugin(&fh, v4, COUNT(v4), 1, &inst), AIMX_OK);
    assert_int_equal(fh.error_count, 0);
    assert_int_equal(d->policy->families(inst, &fam), AIMX_OK);
    assert_int_equal(fam, AIMX_FAMILY_IPV4 | AIMX_FAMILY_IPV6);
    setup_case(&f, A3, AAAA2);
    assert_int_equal(d->policy->select(inst, &f.in, &f.out), AIMX_OK);
    assert_targets(&f, v4_first, COUNT(v4_first));
    d->destroy(inst);
    assert_int_equal(fh.alloc_live, 0);
}

static void
test_create_rejects_ipv5(void **state)
{
    static struct aimx_fake_host fh;
    static const struct aimx_fake_cfg cfg[] = {
        AIMX_FAKE_CFG_STRING("prefer", "ipv5")};
    void *inst = &fh; /* must stay untouched */
    int enable;

    (void)state;
    for (enable = 0; enable <= 1; enable++) {
        assert_int_equal(create_plugin(&fh, cfg, COUNT(cfg), enable, &inst),
                         AIMX_ERR_INVALID);
        assert_ptr_equal(inst, &fh);
        assert_int_equal(fh.error_count, 1);
        assert_string_equal(
            fh.errors[0], "prefer: must be \"ipv6\" or \"ipv4\", not \"ipv5\"");
        /* Both keys were still read, so neither is flagged as unknown. */
        assert_true(aimx_fake_host_asked(&fh, "/enable_ipv6"));
        assert_true(aimx_fake_host_asked(&fh, "prefer"));
        assert_int_equal(fh.alloc_live, 0);
    }
}

static void
test_create_rejects_wrong_types(void **state)
{
    static struct aimx_fake_host fh;
    static const struct aimx_fake_cfg cfg[] = {AIMX_FAKE_CFG_BOOL("prefer", 1)};
    void *inst = NULL;

    (void)state;
    assert_int_equal(create_plugin(&fh, cfg, COUNT(cfg), 1, &inst),
                     AIMX_ERR_WRONG_TYPE);
    assert_int_equal(fh.error_count,
                     1); /* the host's report, not a second one */
    assert_true(aimx_fake_host_has_error(&fh, "prefer: expected a string"));
    assert_int_equal(fh.alloc_live, 0);
}

static void
test_prefer_without_ipv6_is_noted(void **state)
{
    static struct aimx_fake_host fh;
    static const struct aimx_fake_cfg cfg[] = {
        AIMX_FAKE_CFG_STRING("prefer", "ipv4")};
    const aimx_plugin_descriptor *d = policy_ipfamily_LTX_aimx_plugin_v1();
    void *inst = NULL;
    uint32_t fam = 0;

    (void)state;
    assert_int_equal(create_plugin(&fh, cfg, COUNT(cfg), 0, &inst), AIMX_OK);
    assert_int_equal(fh.error_count, 0);
    assert_true(
        aimx_fake_host_has_log(&fh, "has no effect while enable_ipv6 = false"));
    assert_int_equal(d->policy->families(inst, &fam), AIMX_OK);
    assert_int_equal(fam, AIMX_FAMILY_IPV4);
    d->destroy(inst);
}

static void
test_create_needs_host_services(void **state)
{
    static struct aimx_fake_host fh;
    const aimx_plugin_descriptor *d = policy_ipfamily_LTX_aimx_plugin_v1();
    void *inst = NULL;

    (void)state;
    aimx_fake_host_init(&fh, NULL, 0);
    fh.api.struct_size = (uint32_t)offsetof(aimx_host_api, alloc);
    assert_int_equal(
        d->create(aimx_fake_host_api(&fh), aimx_fake_host_handle(&fh), &inst),
        AIMX_ERR_UNSUPPORTED);
    assert_null(inst);

    aimx_fake_host_init(&fh, NULL, 0);
    fh.api.cfg_error = NULL;
    assert_int_equal(
        d->create(aimx_fake_host_api(&fh), aimx_fake_host_handle(&fh), &inst),
        AIMX_ERR_UNSUPPORTED);
    assert_null(inst);

    aimx_fake_host_init(&fh, NULL, 0);
    fh.api.alloc = failing_alloc;
    assert_int_equal(
        d->create(aimx_fake_host_api(&fh), aimx_fake_host_handle(&fh), &inst),
        AIMX_ERR_NOMEM);
    assert_null(inst);
    assert_true(aimx_fake_host_has_log(&fh, "out of memory"));
}

/* ---- helpers ----------------------------------------------------------- */

static void
setup_case(struct fixture *f, struct lookup a, struct lookup aaaa)
{
    size_t i;

    memset(f, 0, sizeof *f);
    for (i = 0; i < NADDR; i++) {
        f->a[i].family = AIMX_AF_INET;
        f->a[i].bytes[0] = 192;
        f->a[i].bytes[2] = 2;
        f->a[i].bytes[3] = (uint8_t)(i + 1);
        f->aaaa[i].family = AIMX_AF_INET6;
        f->aaaa[i].bytes[0] = 0x20;
        f->aaaa[i].bytes[1] = 0x01;
        f->aaaa[i].bytes[2] = 0x0d;
        f->aaaa[i].bytes[3] = 0xb8;
        f->aaaa[i].bytes[15] = (uint8_t)(i + 1);
    }
    for (i = 0; i < COUNT(f->targets); i++)
        f->targets[i] = GUARD;
    f->in.struct_size = sizeof f->in;
    f->in.preference = 10;
    f->in.mx_host = MX;
    f->in.a_outcome = a.outcome;
    f->in.a_addrs = f->a;
    f->in.a_count = a.count;
    f->in.aaaa_outcome = aaaa.outcome;
    f->in.aaaa_addrs = f->aaaa;
    f->in.aaaa_count = aaaa.count;
    f->out.struct_size = sizeof f->out;
    f->out.target_cap = (uint32_t)(a.count + aaaa.count);
    f->out.targets = f->targets;
    /* Stale values: the policy must set every field it owns. */
    f->out.verdict = 99;
    f->out.flags = 0xff;
    f->out.target_count = 77;
    memset(f->out.reason, 'x', sizeof f->out.reason - 1);
    memset(f->out.detail, 'x', sizeof f->out.detail - 1);
}

static aimx_status
run(struct fixture *f, int enable_ipv6, int prefer_ipv6)
{
    return ipfamily_decide(enable_ipv6, prefer_ipv6, &f->in, &f->out);
}

static void
assert_targets(const struct fixture *f, const uint32_t *want, size_t n)
{
    size_t i;

    assert_int_equal(f->out.target_count, n);
    for (i = 0; i < n; i++)
        assert_int_equal(f->targets[i], want[i]);
    assert_int_equal(f->targets[n], GUARD);
    assert_string_equal(f->out.reason, "");
    assert_string_equal(f->out.detail, "");
    assert_int_equal(f->out.flags, 0);
}

static void
assert_refusal(const struct fixture *f, uint32_t verdict, const char *reason,
               const char *detail_part)
{
    assert_int_equal(f->out.verdict, verdict);
    assert_int_equal(f->out.target_count, 0);
    assert_int_equal(f->targets[0], GUARD);
    /* The rows of the table are definitive skips; none is temporary. */
    assert_int_equal(f->out.flags, 0);
    assert_string_equal(f->out.reason, reason);
    assert_reason_syntax(f->out.reason);
    assert_non_null(strstr(f->out.detail, detail_part));
}

static void
assert_reason_syntax(const char *reason)
{
    size_t i, n = strlen(reason);

    assert_true(n > 0 && n < 32);
    for (i = 0; i < n; i++)
        assert_true((reason[i] >= 'a' && reason[i] <= 'z') ||
                    (reason[i] >= '0' && reason[i] <= '9') || reason[i] == '_');
}

static char
class_of(struct lookup l)
{
    switch (l.outcome) {
    case AIMX_DNS_OK:
        return l.count ? 'o' : 'n';
    case AIMX_DNS_NODATA:
    case AIMX_DNS_NXDOMAIN:
    case AIMX_DNS_BADNAME:
        return 'n';
    default:
        return 'f';
    }
}

static int
spec_matches(char pattern, char cls)
{
    return pattern == '*' || pattern == cls || (pattern == '-' && cls != 'o');
}

static uint32_t
spec_verdict(int enable_ipv6, char a, char aaaa)
{
    size_t i;

    for (i = 0; i < COUNT(spec); i++)
        if (spec[i].enable_ipv6 == enable_ipv6 && spec_matches(spec[i].a, a) &&
            spec_matches(spec[i].aaaa, aaaa))
            return spec[i].verdict;
    fail_msg("no row of the spec for enable_ipv6=%d A=%c AAAA=%c", enable_ipv6,
             a, aaaa);
    return 0;
}

static aimx_status
create_plugin(struct aimx_fake_host *fh, const struct aimx_fake_cfg *cfg,
              size_t n, int enable_ipv6, void **instance)
{
    const aimx_plugin_descriptor *d = policy_ipfamily_LTX_aimx_plugin_v1();

    aimx_fake_host_init(fh, cfg, n);
    fh->enable_ipv6 = enable_ipv6;
    return d->create(aimx_fake_host_api(fh), aimx_fake_host_handle(fh),
                     instance);
}

static void *
failing_alloc(aimx_host *host, size_t size)
{
    (void)host;
    (void)size;
    return NULL;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4only_a_ok),
        cmocka_unit_test(test_v4only_a_none_aaaa_ok),
        cmocka_unit_test(test_v4only_a_none_aaaa_not_ok),
        cmocka_unit_test(test_v4only_a_fail),
        cmocka_unit_test(test_dual_both_ok_interleaved),
        cmocka_unit_test(test_dual_only_a_ok),
        cmocka_unit_test(test_dual_only_aaaa_ok),
        cmocka_unit_test(test_dual_none_none),
        cmocka_unit_test(test_dual_a_fail),
        cmocka_unit_test(test_dual_a_none_aaaa_fail),
        cmocka_unit_test(test_exhaustive_against_spec),
        cmocka_unit_test(test_never_writes_past_target_cap),
        cmocka_unit_test(test_long_host_name_stays_bounded),
        cmocka_unit_test(test_rejects_inconsistent_input),
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_create_defaults_ipv4_only),
        cmocka_unit_test(test_create_enable_ipv6),
        cmocka_unit_test(test_create_rejects_ipv5),
        cmocka_unit_test(test_create_rejects_wrong_types),
        cmocka_unit_test(test_prefer_without_ipv6_is_noted),
        cmocka_unit_test(test_create_needs_host_services),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
