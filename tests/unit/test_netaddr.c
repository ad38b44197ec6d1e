/* SPDX-License-Identifier: MIT */
/* Which connect targets are public: every special-purpose range, one by
 * one, with an address just inside and one just outside it. */
#include "netaddr.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static const char *
class_of(const char *text)
{
    aimx_addr a;

    if (aimx__addr_parse(text, &a) != 0)
        fail_msg("cannot parse %s", text);
    return aimx__addr_nonglobal_class(&a);
}

static void
expect_nonglobal(const char *text, const char *class_part)
{
    const char *c = class_of(text);

    if (c == NULL)
        fail_msg("%s was judged global", text);
    if (strstr(c, class_part) == NULL)
        fail_msg("%s: class '%s' does not mention '%s'", text, c, class_part);
}

static void
expect_global(const char *text)
{
    const char *c = class_of(text);

    if (c != NULL)
        fail_msg("%s was judged non-global (%s)", text, c);
}

static void
ipv4_ranges(void **state)
{
    static const struct {
        const char *inside, *outside, *class_part;
    } cases[] = {
        {"0.1.2.3", "1.0.0.1", "this network"},
        {"10.255.255.255", "11.0.0.1", "RFC 1918"},
        {"100.64.0.1", "100.63.255.255", "CGNAT"},
        {"100.127.255.254", "100.128.0.1", "CGNAT"},
        {"127.0.0.1", "128.0.0.1", "loopback"},
        {"127.255.255.254", "126.255.255.255", "loopback"},
        {"169.254.169.254", "169.253.255.255", "link-local"},
        {"172.16.0.1", "172.15.255.255", "RFC 1918"},
        {"172.31.255.255", "172.32.0.1", "RFC 1918"},
        {"192.0.0.8", "192.0.1.1", "IETF protocol"},
        {"192.0.2.55", "192.0.3.1", "TEST-NET-1"},
        {"192.88.99.1", "192.88.98.1", "6to4 relay"},
        {"192.168.1.1", "192.169.0.1", "RFC 1918"},
        {"198.18.0.1", "198.17.255.255", "benchmarking"},
        {"198.19.255.255", "198.20.0.1", "benchmarking"},
        {"198.51.100.7", "198.51.101.1", "TEST-NET-2"},
        {"203.0.113.9", "203.0.114.1", "TEST-NET-3"},
        {"224.0.0.1", "223.255.255.254", "multicast"},
        {"239.255.255.255", "223.1.1.1", "multicast"},
        {"240.0.0.1", "223.0.0.1", "reserved"},
        {"255.255.255.255", "223.255.255.1", "broadcast"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_nonglobal(cases[i].inside, cases[i].class_part);
        expect_global(cases[i].outside);
    }
    expect_global("8.8.8.8");
}

static void
ipv6_ranges(void **state)
{
    static const struct {
        const char *inside, *outside, *class_part;
    } cases[] = {
        {"::", "2600::1", "unspecified"},
        {"::1", "2600::2", "loopback"},
        {"fc00::1", "2600::3", "unique local"},
        {"fdff:ffff::1", "2600::4", "unique local"},
        {"fe80::1", "2600::5", "link-local"},
        {"febf::1", "2600::6", "link-local"},
        {"fec0::1", "2600::7", "site-local"},
        {"ff02::1", "2600::8", "multicast"},
        {"2001:db8::1", "2001:db9::1", "documentation"},
        {"3fff::1", "3ffe::1", "documentation"},
        {"2001::1", "2001:200::1", "Teredo"},
        {"2001:10::1", "2001:200::2", "IETF"},
        {"64:ff9b:1::1", "2600::9", "NAT64"},
        {"100::1", "2600::a", "discard"},
        {"5f00::1", "2600::b", "segment routing"},
        {"4000::1", "2600::c", "outside 2000::/3"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_nonglobal(cases[i].inside, cases[i].class_part);
        expect_global(cases[i].outside);
    }
    expect_global("2a00:1450:4001:82b::200e");
}

static void
embedded_ipv4(void **state)
{
    (void)state;
    /* IPv4-mapped, NAT64 and 6to4 reach the IPv4 address they carry. */
    expect_nonglobal("::ffff:127.0.0.1", "loopback");
    expect_nonglobal("::ffff:10.1.2.3", "RFC 1918");
    expect_global("::ffff:8.8.8.8");
    expect_nonglobal("64:ff9b::192.168.0.1", "RFC 1918");
    expect_global("64:ff9b::8.8.4.4");
    expect_nonglobal("2002:7f00:1::1", "loopback");
    expect_nonglobal("2002:a9fe:a9fe::1", "link-local");
    expect_global("2002:0808:0808::1");
}

static void
literals_and_text(void **state)
{
    aimx_addr a;
    char buf[AIMX_ADDR_TEXT_MAX];

    (void)state;
    assert_true(aimx__is_ip_literal("192.0.2.1"));
    assert_true(aimx__is_ip_literal("192.0.2.1."));
    assert_true(aimx__is_ip_literal("::1"));
    assert_true(aimx__is_ip_literal("[192.0.2.1]"));
    assert_true(aimx__is_ip_literal("[IPv6:2001:db8::1]"));
    assert_false(aimx__is_ip_literal("mx.example"));
    assert_false(aimx__is_ip_literal("192.0.2"));
    assert_false(aimx__is_ip_literal("1.2.3.4.example"));
    assert_false(aimx__is_ip_literal("[mx.example]"));
    assert_int_equal(aimx__addr_parse("2001:db8::1", &a), 0);
    assert_int_equal(a.family, AIMX_AF_INET6);
    assert_string_equal(aimx__addr_text(&a, buf, sizeof buf), "2001:db8::1");
    assert_int_equal(aimx__addr_parse("127.0.0.1", &a), 0);
    assert_int_equal(a.family, AIMX_AF_INET);
    assert_string_equal(aimx__addr_text(&a, buf, sizeof buf), "127.0.0.1");
    assert_int_equal(aimx__addr_parse("[::1]", &a), -1);
    assert_int_equal(aimx__addr_parse("::1:5353:", &a), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv4_ranges),
        cmocka_unit_test(ipv6_ranges),
        cmocka_unit_test(embedded_ipv4),
        cmocka_unit_test(literals_and_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
