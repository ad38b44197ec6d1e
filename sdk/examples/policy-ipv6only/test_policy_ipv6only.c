/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of policy-ipv6only, through its descriptor, as the host uses
 * it, with <aimx/fake_host.h> standing in for aimx.  The plugin's source is
 * compiled into this program with -DAIMX_PLUGIN_STATIC, which makes its
 * entry policy_ipv6only_LTX_aimx_plugin_v1() instead of aimx_plugin_v1().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

#define NADDR 4
#define MX    "mx.example.com"
#define GUARD 0xdeadbeefu

aimx_plugin_entry_fn policy_ipv6only_LTX_aimx_plugin_v1;

/* One select() call's storage, laid out as the host lays it out. */
struct call {
    aimx_addr a[NADDR];
    aimx_addr aaaa[NADDR];
    aimx_policy_input in;
    aimx_policy_output out;
    uint32_t targets[2 * NADDR + 1]; /* one more: a guard against overruns */
};

/* Every outcome that means "no answer we can trust", and 42, an outcome a
 * later ABI minor might append: none of them may become a SKIP. */
static const uint32_t temporary[] = {
    AIMX_DNS_SERVFAIL,
    AIMX_DNS_REFUSED,
    AIMX_DNS_TIMEOUT,
    AIMX_DNS_UNREACHABLE,
    AIMX_DNS_LOCALERR,
    AIMX_DNS_CANCELLED,
    42,
};
/* Definitive answers without an address (OK with no record included). */
static const uint32_t definitive_none[] = {
    AIMX_DNS_NODATA,
    AIMX_DNS_NXDOMAIN,
    AIMX_DNS_BADNAME,
    AIMX_DNS_OK,
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static struct aimx_fake_host fh;

static const aimx_plugin_descriptor *
descriptor(void)
{
    return policy_ipv6only_LTX_aimx_plugin_v1();
}

/* A plugin instance made by create() with an empty group. */
static void *
create_instance(void)
{
    void *inst = NULL;

    aimx_fake_host_init(&fh, NULL, 0);
    assert_int_equal(descriptor()->create(aimx_fake_host_api(&fh),
                                          aimx_fake_host_handle(&fh), &inst),
                     AIMX_OK);
    assert_non_null(inst);
    fh.cfg_closed = 1; /* the config services are create()-only */
    return inst;
}

static void
destroy_instance(void *inst)
{
    descriptor()->destroy(inst);
    assert_int_equal(fh.alloc_live, 0);
    assert_int_equal(fh.misuse, 0);
}

static void
setup_call(struct call *c, uint32_t a_outcome, size_t a_count,
           uint32_t aaaa_outcome, size_t aaaa_count)
{
    size_t i;

    memset(c, 0, sizeof *c);
    for (i = 0; i < NADDR; i++) {
        c->a[i].family = AIMX_AF_INET;
        c->a[i].bytes[0] = 192;
        c->a[i].bytes[3] = (uint8_t)(i + 1);
        c->aaaa[i].family = AIMX_AF_INET6;
        c->aaaa[i].bytes[0] = 0x20;
        c->aaaa[i].bytes[15] = (uint8_t)(i + 1);
    }
    c->in.struct_size = sizeof c->in;
    c->in.preference = 10;
    c->in.mx_host = MX;
    c->in.a_outcome = a_outcome;
    c->in.a_addrs = c->a;
    c->in.a_count = a_count;
    c->in.aaaa_outcome = aaaa_outcome;
    c->in.aaaa_addrs = c->aaaa;
    c->in.aaaa_count = aaaa_count;
    c->out.struct_size = sizeof c->out;
    c->out.target_cap = (uint32_t)(a_count + aaaa_count);
    c->out.targets = c->targets;
    for (i = 0; i < COUNT(c->targets); i++)
        c->targets[i] = GUARD;
    /* Stale content the policy must overwrite. */
    c->out.target_count = 99;
    c->out.flags = 0xffu;
    strcpy(c->out.reason, "stale");
}

static aimx_status
run(void *inst, struct call *c)
{
    return descriptor()->policy->select(inst, &c->in, &c->out);
}

/* A SKIP or DEFER: no targets, a well-formed reason code, the sentence. */
static void
assert_refusal(const struct call *c, uint32_t verdict, const char *reason,
               const char *detail_part)
{
    const char *p;

    assert_int_equal(c->out.verdict, verdict);
    assert_int_equal(c->out.target_count, 0);
    assert_int_equal(c->out.flags, 0);
    assert_string_equal(c->out.reason, reason);
    for (p = c->out.reason; *p; p++)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                    *p == '_');
    assert_non_null(strstr(c->out.detail, detail_part));
    assert_int_equal(c->targets[0], GUARD);
}

/* ---- the descriptor ------------------------------------------------------ */

static void
test_descriptor(void **state)
{
    const aimx_plugin_descriptor *d = descriptor();

    (void)state;
    assert_non_null(d);
    assert_int_equal(d->struct_size, sizeof *d);
    assert_int_equal(d->abi_major, AIMX_ABI_MAJOR);
    assert_int_equal(d->abi_minor, AIMX_ABI_MINOR);
    assert_int_equal(d->kind, AIMX_KIND_POLICY);
    assert_int_equal(d->flags, 0);
    assert_string_equal(d->name, "policy-ipv6only");
    assert_non_null(d->version);
    assert_non_null(d->description);
    assert_non_null(d->create);
    assert_non_null(d->destroy);
    assert_null(d->resolver);
    assert_null(d->transport);
    assert_non_null(d->policy);
    assert_int_equal(d->policy->struct_size, sizeof *d->policy);
    assert_non_null(d->policy->select);
    assert_non_null(d->policy->families);
}

/* ---- create() and destroy() ---------------------------------------------- */

/* No settings: nothing is asked for, so the host would call any key in the
 * group unknown; an empty group is fine. */
static void
test_create_empty_group(void **state)
{
    void *inst;

    (void)state;
    inst = create_instance();
    assert_int_equal(fh.asked_count, 0);
    assert_int_equal(fh.error_count, 0);
    destroy_instance(inst);
}

static void *
failing_alloc(aimx_host *host, size_t size)
{
    (void)host;
    (void)size;
    return NULL;
}

static void
test_create_out_of_memory(void **state)
{
    void *inst = NULL;

    (void)state;
    aimx_fake_host_init(&fh, NULL, 0);
    fh.api.alloc = failing_alloc;
    assert_int_equal(descriptor()->create(aimx_fake_host_api(&fh),
                                          aimx_fake_host_handle(&fh), &inst),
                     AIMX_ERR_NOMEM);
    assert_null(inst);
    assert_true(aimx_fake_host_has_log(&fh, "out of memory"));
}

/* An older host's shorter table without the memory services. */
static void
test_create_short_api(void **state)
{
    void *inst = NULL;

    (void)state;
    aimx_fake_host_init(&fh, NULL, 0);
    fh.api.struct_size = (uint32_t)offsetof(aimx_host_api, alloc);
    assert_int_equal(descriptor()->create(aimx_fake_host_api(&fh),
                                          aimx_fake_host_handle(&fh), &inst),
                     AIMX_ERR_UNSUPPORTED);
    assert_null(inst);
}

/* ---- families() ---------------------------------------------------------- */

static void
test_families(void **state)
{
    void *inst = create_instance();
    uint32_t fam = 0;

    (void)state;
    assert_int_equal(descriptor()->policy->families(inst, &fam), AIMX_OK);
    assert_int_equal(fam, AIMX_FAMILY_IPV6);
    assert_int_equal(descriptor()->policy->families(inst, NULL),
                     AIMX_ERR_INVALID);
    destroy_instance(inst);
}

/* ---- select() ------------------------------------------------------------ */

/* Dual-stack: every AAAA address, in resolver order, none of the A ones.
 * Targets index A-then-AAAA, so AAAA i is a_count + i. */
static void
test_dual_stack_uses_aaaa_only(void **state)
{
    void *inst = create_instance();
    struct call c;

    (void)state;
    setup_call(&c, AIMX_DNS_OK, 2, AIMX_DNS_OK, 3);
    assert_int_equal(run(inst, &c), AIMX_OK);
    assert_int_equal(c.out.verdict, AIMX_POLICY_USE);
    assert_int_equal(c.out.flags, 0);
    assert_int_equal(c.out.target_count, 3);
    assert_int_equal(c.targets[0], 2);
    assert_int_equal(c.targets[1], 3);
    assert_int_equal(c.targets[2], 4);
    assert_int_equal(c.targets[3], GUARD);
    destroy_instance(inst);
}

/* AAAA addresses are enough whatever happened to the A lookup. */
static void
test_ipv6_only_host(void **state)
{
    void *inst = create_instance();
    struct call c;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(temporary) + COUNT(definitive_none); i++) {
        uint32_t a = i < COUNT(temporary)
                         ? temporary[i]
                         : definitive_none[i - COUNT(temporary)];
        setup_call(&c, a, 0, AIMX_DNS_OK, 2);
        assert_int_equal(run(inst, &c), AIMX_OK);
        assert_int_equal(c.out.verdict, AIMX_POLICY_USE);
        assert_int_equal(c.out.target_count, 2);
        assert_int_equal(c.targets[0], 0);
        assert_int_equal(c.targets[1], 1);
        assert_int_equal(c.targets[2], GUARD);
    }
    destroy_instance(inst);
}

/* An A-only host is skipped with a sentence that names it. */
static void
test_a_only_host_is_skipped(void **state)
{
    void *inst = create_instance();
    struct call c;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(definitive_none); i++) {
        setup_call(&c, AIMX_DNS_OK, 2, definitive_none[i], 0);
        assert_int_equal(run(inst, &c), AIMX_OK);
        assert_refusal(&c, AIMX_POLICY_SKIP, "no_ipv6",
                       MX
                       " has no IPv6 address and this policy uses IPv6 only");
    }
    destroy_instance(inst);
}

/* A failed AAAA lookup proves nothing: defer, whether or not A worked. */
static void
test_aaaa_failure_defers(void **state)
{
    void *inst = create_instance();
    struct call c;
    size_t i, a_count;

    (void)state;
    for (i = 0; i < COUNT(temporary); i++)
        for (a_count = 0; a_count <= 2; a_count += 2) {
            setup_call(&c, a_count ? AIMX_DNS_OK : AIMX_DNS_NODATA, a_count,
                       temporary[i], 0);
            assert_int_equal(run(inst, &c), AIMX_OK);
            assert_refusal(&c, AIMX_POLICY_DEFER, "dns_aaaa_failed", MX);
        }
    setup_call(&c, AIMX_DNS_OK, 1, AIMX_DNS_SERVFAIL, 0);
    assert_int_equal(run(inst, &c), AIMX_OK);
    assert_non_null(strstr(c.out.detail, "SERVFAIL"));
    destroy_instance(inst);
}

/* Nothing at all: skip, with the A failure (if any) in the sentence. */
static void
test_no_address_is_skipped(void **state)
{
    void *inst = create_instance();
    struct call c;
    size_t i, j;

    (void)state;
    for (i = 0; i < COUNT(definitive_none); i++)
        for (j = 0; j < COUNT(definitive_none); j++) {
            setup_call(&c, definitive_none[i], 0, definitive_none[j], 0);
            assert_int_equal(run(inst, &c), AIMX_OK);
            assert_refusal(&c, AIMX_POLICY_SKIP, "no_address",
                           MX " has no IPv6 or IPv4 address");
        }
    setup_call(&c, AIMX_DNS_TIMEOUT, 0, AIMX_DNS_NODATA, 0);
    assert_int_equal(run(inst, &c), AIMX_OK);
    assert_refusal(&c, AIMX_POLICY_SKIP, "no_address",
                   "its A lookup failed (timed out)");
    destroy_instance(inst);
}

/* Without a host name the sentence still reads. */
static void
test_missing_host_name(void **state)
{
    void *inst = create_instance();
    struct call c;

    (void)state;
    setup_call(&c, AIMX_DNS_OK, 1, AIMX_DNS_NODATA, 0);
    c.in.mx_host = NULL;
    assert_int_equal(run(inst, &c), AIMX_OK);
    assert_refusal(&c, AIMX_POLICY_SKIP, "no_ipv6",
                   "the MX host has no IPv6 address");
    destroy_instance(inst);
}

/* A long host name is truncated, never overflows detail. */
static void
test_long_host_name(void **state)
{
    void *inst = create_instance();
    char name[600];
    struct call c;

    (void)state;
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    setup_call(&c, AIMX_DNS_OK, 1, AIMX_DNS_NODATA, 0);
    c.in.mx_host = name;
    assert_int_equal(run(inst, &c), AIMX_OK);
    assert_int_equal(c.out.verdict, AIMX_POLICY_SKIP);
    assert_int_equal(strlen(c.out.detail), sizeof c.out.detail - 1);
    destroy_instance(inst);
}

/* What the host must never send: the policy refuses rather than guesses. */
static void
test_bad_input(void **state)
{
    void *inst = create_instance();
    struct call c;

    (void)state;
    setup_call(&c, AIMX_DNS_OK, 1, AIMX_DNS_OK, 2);
    assert_int_equal(descriptor()->policy->select(inst, NULL, &c.out),
                     AIMX_ERR_INVALID);
    assert_int_equal(descriptor()->policy->select(inst, &c.in, NULL),
                     AIMX_ERR_INVALID);

    c.in.struct_size = (uint32_t)offsetof(aimx_policy_input, aaaa_addrs);
    assert_int_equal(run(inst, &c), AIMX_ERR_INVALID);

    setup_call(&c, AIMX_DNS_OK, 1, AIMX_DNS_OK, 2);
    c.out.target_cap = 1; /* fewer slots than AAAA addresses */
    assert_int_equal(run(inst, &c), AIMX_ERR_INVALID);

    setup_call(&c, AIMX_DNS_OK, 1, AIMX_DNS_OK, 2);
    c.in.aaaa_addrs = NULL;
    assert_int_equal(run(inst, &c), AIMX_ERR_INVALID);
    assert_int_equal(c.targets[0], GUARD);
    destroy_instance(inst);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_create_empty_group),
        cmocka_unit_test(test_create_out_of_memory),
        cmocka_unit_test(test_create_short_api),
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_dual_stack_uses_aaaa_only),
        cmocka_unit_test(test_ipv6_only_host),
        cmocka_unit_test(test_a_only_host_is_skipped),
        cmocka_unit_test(test_aaaa_failure_defers),
        cmocka_unit_test(test_no_address_is_skipped),
        cmocka_unit_test(test_missing_host_name),
        cmocka_unit_test(test_long_host_name),
        cmocka_unit_test(test_bad_input),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
