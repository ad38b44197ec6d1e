/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of resolver-static, through its descriptor, with
 * <aimx/fake_host.h> standing in for aimx: canned settings, a DNS sink that
 * records what the plugin reports, and leak and misuse counters.  The
 * plugin's source is compiled in with -DAIMX_PLUGIN_STATIC, which makes
 * its entry resolver_static_LTX_aimx_plugin_v1().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

aimx_plugin_entry_fn resolver_static_LTX_aimx_plugin_v1;

static const char zone_text[] =
    "# a comment line\n"
    "\n"
    "Example.COM.    MX   10 MX.example.com.\n"
    "example.com     MX   20 backup.example.net   # a trailing comment\n"
    "mx.example.com  A    192.0.2.25\n"
    "mx.example.com  AAAA 2001:db8::25\n"
    "mx.example.com  A    192.0.2.26\n"
    "example.com     TXT  v=spf1 mx -all  \n"
    "example.org.    MX   0 .\n";

static char dir[] = "/tmp/resolver-static-test-XXXXXX";
static char zone_path[256];
static struct aimx_fake_host fh;

static const aimx_plugin_descriptor *
descriptor(void)
{
    return resolver_static_LTX_aimx_plugin_v1();
}

/* Writes text into a file of the test directory; returns its path. */
static const char *
write_file(const char *name, const char *text)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int
setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(zone_path, sizeof zone_path, "%s", write_file("zone", zone_text));
    return 0;
}

static int
teardown(void **state)
{
    char path[300];

    (void)state;
    snprintf(path, sizeof path, "%s/zone", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/bad", dir);
    unlink(path);
    return rmdir(dir);
}

/* create() with these settings; returns its status, *inst on success. */
static aimx_status
create_with(const struct aimx_fake_cfg *cfg, size_t n, void **inst)
{
    aimx_status st;

    *inst = NULL;
    aimx_fake_host_init(&fh, cfg, n);
    st = descriptor()->create(aimx_fake_host_api(&fh),
                              aimx_fake_host_handle(&fh), inst);
    fh.cfg_closed = 1; /* the config services are create()-only */
    return st;
}

static void *
create_instance(void)
{
    const struct aimx_fake_cfg cfg[] = {
        AIMX_FAKE_CFG_STRING("file", zone_path),
        AIMX_FAKE_CFG_STRING("ttl", "5m"),
    };
    void *inst;

    assert_int_equal(create_with(cfg, 2, &inst), AIMX_OK);
    assert_non_null(inst);
    assert_int_equal(fh.error_count, 0);
    return inst;
}

static void
destroy_instance(void *inst)
{
    descriptor()->destroy(inst);
    assert_int_equal(fh.alloc_live, 0);
    assert_int_equal(fh.misuse, 0);
}

/* One lookup, as the host makes it; the sink holds what came back. */
static void
lookup(void *inst, const char *name, uint16_t type,
       struct aimx_fake_dns_sink *sink)
{
    aimx_dns_query q;

    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.type = type;
    q.name = name;
    aimx_fake_dns_sink_init(sink);
    assert_int_equal(descriptor()->resolver->lookup(
                         inst, &q, aimx_fake_dns_sink_handle(sink)),
                     AIMX_OK);
    /* Answered before lookup() returned, exactly once. */
    assert_true(aimx_fake_dns_sink_wait(sink, 0));
    assert_int_equal(sink->completions, 1);
    assert_int_equal(sink->late_adds, 0);
}

/* ---- the descriptor ------------------------------------------------------ */

static void
test_descriptor(void **state)
{
    const aimx_plugin_descriptor *d = descriptor();

    (void)state;
    assert_int_equal(d->struct_size, sizeof *d);
    assert_int_equal(d->abi_major, AIMX_ABI_MAJOR);
    assert_int_equal(d->abi_minor, AIMX_ABI_MINOR);
    assert_int_equal(d->kind, AIMX_KIND_RESOLVER);
    assert_string_equal(d->name, "resolver-static");
    assert_non_null(d->create);
    assert_non_null(d->destroy);
    assert_non_null(d->resolver);
    assert_null(d->policy);
    assert_null(d->transport);
    assert_int_equal(d->resolver->struct_size, sizeof *d->resolver);
    assert_non_null(d->resolver->lookup);
}

/* ---- create() ------------------------------------------------------------ */

static void
test_create_asks_for_every_key(void **state)
{
    void *inst = create_instance();

    (void)state;
    /* Asked for, so the host accepts both keys in the group. */
    assert_true(aimx_fake_host_asked(&fh, "file"));
    assert_true(aimx_fake_host_asked(&fh, "ttl"));
    destroy_instance(inst);
}

static void
test_create_needs_a_file(void **state)
{
    void *inst;

    (void)state;
    assert_int_equal(create_with(NULL, 0, &inst), AIMX_ERR_INVALID);
    assert_null(inst);
    assert_true(aimx_fake_host_has_error(&fh, "needs 'file'"));
    /* ttl was asked for all the same: a good ttl is not called unknown. */
    assert_true(aimx_fake_host_asked(&fh, "ttl"));
    assert_int_equal(fh.alloc_live, 0);
}

static void
test_create_missing_file(void **state)
{
    const struct aimx_fake_cfg cfg[] = {
        AIMX_FAKE_CFG_STRING("file", "/nonexistent/zone"),
    };
    void *inst;

    (void)state;
    assert_int_equal(create_with(cfg, 1, &inst), AIMX_ERR_INVALID);
    assert_true(aimx_fake_host_has_error(
        &fh, "file: cannot open /nonexistent/zone: No such file"));
    assert_int_equal(fh.alloc_live, 0);
}

/* The host reports a bad duration itself; the plugin only fails. */
static void
test_create_bad_ttl(void **state)
{
    const struct aimx_fake_cfg cfg[] = {
        AIMX_FAKE_CFG_STRING("file", zone_path),
        AIMX_FAKE_CFG_STRING("ttl", "5 minutes"),
    };
    void *inst;

    (void)state;
    assert_int_equal(create_with(cfg, 2, &inst), AIMX_ERR_WRONG_TYPE);
    assert_true(aimx_fake_host_has_error(&fh, "ttl: \"5 minutes\" is not"));
    assert_int_equal(fh.alloc_live, 0);
}

/* Every bad line is refused with the file, the line and what is wrong. */
static void
test_create_bad_lines(void **state)
{
    static const struct {
        const char *line;
        const char *error;
    } bad[] = {
        {"example.com\n", "bad:2: expected \"name type data\""},
        {"example.com MX\n", "bad:2: expected \"name type data\""},
        {"example.com CNAME other.example\n",
         "bad:2: unknown record type 'CNAME' (A, AAAA, MX or TXT)"},
        {"mx.example A 192.0.2.300\n",
         "bad:2: '192.0.2.300' is not an IPv4 address"},
        {"mx.example AAAA 192.0.2.1\n",
         "bad:2: '192.0.2.1' is not an IPv6 address"},
        {"mx.example A 192.0.2.1 192.0.2.2\n",
         "bad:2: '192.0.2.1 192.0.2.2' is not an IPv4 address"},
        {"example.com MX mx.example.com\n", "an MX record is"},
        {"example.com MX 70000 mx.example.com\n", "an MX record is"},
        {"example.com MX 10 mx.example.com extra\n", "an MX record is"},
        {"example..com A 192.0.2.1\n", "'example..com' is not a domain name"},
        {". A 192.0.2.1\n", "'.' is not a domain name"},
    };
    char text[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *inst;

        /* A good first line: the error must name the second. */
        snprintf(text, sizeof text, "example.com A 192.0.2.1\n%s", bad[i].line);
        const struct aimx_fake_cfg cfg[] = {
            AIMX_FAKE_CFG_STRING("file", write_file("bad", text)),
        };
        assert_int_equal(create_with(cfg, 1, &inst), AIMX_ERR_INVALID);
        if (!aimx_fake_host_has_error(&fh, bad[i].error))
            fail_msg("line '%s': expected '%s', got '%s'", bad[i].line,
                     bad[i].error, fh.error_count ? fh.errors[0] : "nothing");
        assert_int_equal(fh.alloc_live, 0);
    }
}

/* ---- lookup() ------------------------------------------------------------ */

static void
test_mx_records_in_file_order(void **state)
{
    void *inst = create_instance();
    struct aimx_fake_dns_sink s;

    (void)state;
    lookup(inst, "example.com.", AIMX_DNS_MX, &s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_OK);
    assert_int_equal(s.record_count, 2);
    /* Names come without the final dot, in lower case. */
    assert_string_equal(s.records[0].owner, "example.com");
    assert_int_equal(s.records[0].type, AIMX_DNS_MX);
    assert_int_equal(s.records[0].preference, 10);
    assert_string_equal(s.records[0].target, "mx.example.com");
    assert_int_equal(s.records[0].ttl, 300);
    assert_int_equal(s.records[1].preference, 20);
    assert_string_equal(s.records[1].target, "backup.example.net");
    aimx_fake_dns_sink_free(&s);
    destroy_instance(inst);
}

static void
test_addresses(void **state)
{
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x25};
    void *inst = create_instance();
    struct aimx_fake_dns_sink s;

    (void)state;
    lookup(inst, "mx.example.com.", AIMX_DNS_A, &s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_OK);
    assert_int_equal(s.record_count, 2);
    assert_int_equal(s.records[0].address.family, AIMX_AF_INET);
    assert_memory_equal(s.records[0].address.bytes, "\xc0\x00\x02\x19", 4);
    assert_memory_equal(s.records[1].address.bytes, "\xc0\x00\x02\x1a", 4);
    aimx_fake_dns_sink_free(&s);

    lookup(inst, "MX.Example.Com.", AIMX_DNS_AAAA, &s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_OK);
    assert_int_equal(s.record_count, 1);
    assert_int_equal(s.records[0].address.family, AIMX_AF_INET6);
    assert_memory_equal(s.records[0].address.bytes, v6, 16);
    aimx_fake_dns_sink_free(&s);
    destroy_instance(inst);
}

static void
test_txt_and_null_mx(void **state)
{
    void *inst = create_instance();
    struct aimx_fake_dns_sink s;

    (void)state;
    lookup(inst, "example.com.", AIMX_DNS_TXT, &s);
    assert_int_equal(s.record_count, 1);
    assert_int_equal(s.records[0].text_len, strlen("v=spf1 mx -all"));
    assert_memory_equal(s.records[0].text, "v=spf1 mx -all", 14);
    aimx_fake_dns_sink_free(&s);

    /* A null MX reaches the host as the root, ".". */
    lookup(inst, "example.org.", AIMX_DNS_MX, &s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_OK);
    assert_int_equal(s.record_count, 1);
    assert_int_equal(s.records[0].preference, 0);
    assert_string_equal(s.records[0].target, ".");
    aimx_fake_dns_sink_free(&s);
    destroy_instance(inst);
}

static void
test_nodata_and_nxdomain(void **state)
{
    void *inst = create_instance();
    struct aimx_fake_dns_sink s;

    (void)state;
    /* The name has records, none of this type. */
    lookup(inst, "mx.example.com.", AIMX_DNS_MX, &s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_NODATA);
    assert_int_equal(s.record_count, 0);
    aimx_fake_dns_sink_free(&s);
    /* The file does not know the name. */
    lookup(inst, "nowhere.example.", AIMX_DNS_A, &s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_NXDOMAIN);
    assert_int_equal(s.record_count, 0);
    aimx_fake_dns_sink_free(&s);
    destroy_instance(inst);
}

static void
test_bad_names(void **state)
{
    void *inst = create_instance();
    struct aimx_fake_dns_sink s;
    char longname[300];

    (void)state;
    lookup(inst, "", AIMX_DNS_A, &s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_BADNAME);
    aimx_fake_dns_sink_free(&s);
    lookup(inst, "a..example.", AIMX_DNS_A, &s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_BADNAME);
    aimx_fake_dns_sink_free(&s);
    memset(longname, 'a', sizeof longname - 2);
    longname[sizeof longname - 2] = '.';
    longname[sizeof longname - 1] = '\0';
    lookup(inst, longname, AIMX_DNS_A, &s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_BADNAME);
    aimx_fake_dns_sink_free(&s);
    destroy_instance(inst);
}

/* The host could not take a record: the lookup ends as a local error. */
static void
test_sink_refuses_a_record(void **state)
{
    void *inst = create_instance();
    struct aimx_fake_dns_sink s;
    aimx_dns_query q;

    (void)state;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.type = AIMX_DNS_MX;
    q.name = "example.com.";
    aimx_fake_dns_sink_init(&s);
    s.fail_add = AIMX_ERR_NOMEM;
    assert_int_equal(
        descriptor()->resolver->lookup(inst, &q, aimx_fake_dns_sink_handle(&s)),
        AIMX_OK);
    assert_int_equal(s.completions, 1);
    assert_int_equal(s.completion.outcome, AIMX_DNS_LOCALERR);
    aimx_fake_dns_sink_free(&s);
    destroy_instance(inst);
}

/* A bad call touches no sink service at all. */
static void
test_bad_calls(void **state)
{
    void *inst = create_instance();
    struct aimx_fake_dns_sink s;
    aimx_dns_query q;

    (void)state;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.type = AIMX_DNS_A;
    q.name = "example.com.";
    aimx_fake_dns_sink_init(&s);
    assert_int_equal(descriptor()->resolver->lookup(
                         inst, NULL, aimx_fake_dns_sink_handle(&s)),
                     AIMX_ERR_INVALID);
    assert_int_equal(descriptor()->resolver->lookup(inst, &q, NULL),
                     AIMX_ERR_INVALID);
    q.struct_size = 4; /* too short to hold a name */
    assert_int_equal(
        descriptor()->resolver->lookup(inst, &q, aimx_fake_dns_sink_handle(&s)),
        AIMX_ERR_INVALID);
    assert_int_equal(s.completions, 0);
    destroy_instance(inst);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_create_asks_for_every_key),
        cmocka_unit_test(test_create_needs_a_file),
        cmocka_unit_test(test_create_missing_file),
        cmocka_unit_test(test_create_bad_ttl),
        cmocka_unit_test(test_create_bad_lines),
        cmocka_unit_test(test_mx_records_in_file_order),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_txt_and_null_mx),
        cmocka_unit_test(test_nodata_and_nxdomain),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_sink_refuses_a_record),
        cmocka_unit_test(test_bad_calls),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
