/* SPDX-License-Identifier: MIT */
/* The pure parts of aimx setup, verify and dkim-keygen: address picking
 * (IPv6 looked for only when the policy uses it), TXT strings, SPF
 * merging, the DKIM key record, targets. */
#include "hostport.h"
#include "netaddr.h"
#include "setup.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A detector that counts its calls per family and answers from a list. */
static unsigned calls_v4, calls_v6;
static int detect_count = 1;

static int
counting_detect(void *arg, uint8_t family, aimx_addr *out, size_t cap)
{
    (void)arg;
    if (family == AIMX_AF_INET6) {
        calls_v6++;
        if (cap > 0 && detect_count > 0)
            assert_int_equal(aimx__addr_parse("::1", &out[0]), 0);
    } else {
        calls_v4++;
        if (cap > 0 && detect_count > 0)
            assert_int_equal(aimx__addr_parse("127.0.0.7", &out[0]), 0);
    }
    return detect_count;
}

static void
reset_detect(int count)
{
    calls_v4 = calls_v6 = 0;
    detect_count = count;
}

static void
ipv6_not_detected_when_the_policy_does_not_use_it(void **state)
{
    aimx_setup_addrs a;
    char err[256];

    (void)state;
    reset_detect(1);
    assert_int_equal(aimx__setup_pick_addrs(AIMX_FAMILY_IPV4, NULL, NULL, NULL,
                                            counting_detect, NULL, &a, err,
                                            sizeof err),
                     0);
    assert_int_equal(calls_v6, 0);
    assert_int_equal(calls_v4, 1);
    assert_int_equal(a.v4.family, AIMX_AF_INET);
    assert_int_equal(a.v4_source, AIMX_SRC_MACHINE);
    assert_int_equal(a.v6.family, 0);
    assert_int_equal(a.v6_source, AIMX_SRC_NONE);
}

static void
ipv6_detected_once_when_it_does(void **state)
{
    aimx_setup_addrs a;
    char err[256], text[AIMX_ADDR_TEXT_MAX];

    (void)state;
    reset_detect(1);
    assert_int_equal(aimx__setup_pick_addrs(AIMX_FAMILY_IPV4 | AIMX_FAMILY_IPV6,
                                            NULL, NULL, NULL, counting_detect,
                                            NULL, &a, err, sizeof err),
                     0);
    assert_int_equal(calls_v6, 1);
    assert_int_equal(calls_v4, 1);
    assert_string_equal(aimx__addr_text(&a.v6, text, sizeof text), "::1");
    assert_int_equal(a.v6_source, AIMX_SRC_MACHINE);

    /* An IPv6-only policy looks for IPv6 alone. */
    reset_detect(1);
    assert_int_equal(aimx__setup_pick_addrs(AIMX_FAMILY_IPV6, NULL, NULL, NULL,
                                            counting_detect, NULL, &a, err,
                                            sizeof err),
                     0);
    assert_int_equal(calls_v4, 0);
    assert_int_equal(calls_v6, 1);
    assert_int_equal(a.v4.family, 0);
}

static void
options_then_bind_then_machine(void **state)
{
    aimx_setup_addrs a;
    aimx_addr o4, o6;
    aimx_transport_info info;
    char err[256], text[AIMX_ADDR_TEXT_MAX];
    const uint32_t both = AIMX_FAMILY_IPV4 | AIMX_FAMILY_IPV6;

    (void)state;
    assert_int_equal(aimx__addr_parse("127.0.0.25", &o4), 0);
    assert_int_equal(aimx__addr_parse("::1", &o6), 0);
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    info.flags = AIMX_TRANSPORT_BIND_IPV4 | AIMX_TRANSPORT_BIND_IPV6;
    assert_int_equal(aimx__addr_parse("127.0.0.26", &info.bind_ipv4), 0);
    assert_int_equal(aimx__addr_parse("::1", &info.bind_ipv6), 0);

    /* The options win; nothing is detected. */
    reset_detect(1);
    assert_int_equal(aimx__setup_pick_addrs(both, &o4, &o6, &info,
                                            counting_detect, NULL, &a, err,
                                            sizeof err),
                     0);
    assert_int_equal(calls_v4 + calls_v6, 0);
    assert_string_equal(aimx__addr_text(&a.v4, text, sizeof text),
                        "127.0.0.25");
    assert_int_equal(a.v4_source, AIMX_SRC_OPTION);
    assert_int_equal(a.v6_source, AIMX_SRC_OPTION);

    /* Then the transport's source addresses. */
    reset_detect(1);
    assert_int_equal(aimx__setup_pick_addrs(both, NULL, NULL, &info,
                                            counting_detect, NULL, &a, err,
                                            sizeof err),
                     0);
    assert_int_equal(calls_v4 + calls_v6, 0);
    assert_string_equal(aimx__addr_text(&a.v4, text, sizeof text),
                        "127.0.0.26");
    assert_int_equal(a.v4_source, AIMX_SRC_BIND);
    assert_int_equal(a.v6_source, AIMX_SRC_BIND);

    /* bind_ipv4 only: IPv6 comes from the machine, once. */
    info.flags = AIMX_TRANSPORT_BIND_IPV4;
    reset_detect(1);
    assert_int_equal(aimx__setup_pick_addrs(both, NULL, NULL, &info,
                                            counting_detect, NULL, &a, err,
                                            sizeof err),
                     0);
    assert_int_equal(calls_v4, 0);
    assert_int_equal(calls_v6, 1);
    assert_int_equal(a.v6_source, AIMX_SRC_MACHINE);
    assert_string_equal(aimx__addr_source_text(AIMX_SRC_BIND, AIMX_AF_INET),
                        "the transport's bind_ipv4");
}

static void
address_errors(void **state)
{
    aimx_setup_addrs a;
    aimx_addr o6;
    char err[256];

    (void)state;
    assert_int_equal(aimx__addr_parse("::1", &o6), 0);
    /* --ipv6 for a policy without IPv6: refused, and nothing detected. */
    reset_detect(1);
    assert_int_equal(aimx__setup_pick_addrs(AIMX_FAMILY_IPV4, NULL, &o6, NULL,
                                            counting_detect, NULL, &a, err,
                                            sizeof err),
                     -1);
    assert_non_null(strstr(err, "--ipv6"));
    assert_int_equal(calls_v6, 0);
    /* No global address anywhere: say which option to give. */
    reset_detect(0);
    assert_int_equal(aimx__setup_pick_addrs(AIMX_FAMILY_IPV4, NULL, NULL, NULL,
                                            counting_detect, NULL, &a, err,
                                            sizeof err),
                     -1);
    assert_non_null(strstr(err, "--ipv4"));
    assert_int_equal(calls_v4, 1);
}

/* Parses a zone-file TXT value back into its strings. */
static size_t
unquote(const char *q, char out[][300], size_t max)
{
    size_t n = 0;

    while (*q && n < max) {
        size_t o = 0;
        assert_int_equal(*q, '"');
        q++;
        while (*q != '"') {
            if (*q == '\\') {
                q++;
                if (*q >= '0' && *q <= '9') {
                    out[n][o++] = (char)((q[0] - '0') * 100 +
                                         (q[1] - '0') * 10 + (q[2] - '0'));
                    q += 3;
                    continue;
                }
            }
            out[n][o++] = *q++;
        }
        out[n][o] = '\0';
        n++;
        q++;
        if (*q == ' ')
            q++;
    }
    return n;
}

static void
txt_split_at_255_octets(void **state)
{
    char text[800], parts[4][300];
    char *q;

    (void)state;
    q = aimx__txt_quote("v=spf1 -all", 11);
    assert_string_equal(q, "\"v=spf1 -all\"");
    free(q);
    q = aimx__txt_quote("", 0);
    assert_string_equal(q, "\"\"");
    free(q);

    memset(text, 'a', sizeof text);
    for (size_t len = 254; len <= 766; len++) {
        size_t want = (len + 254) / 255, total = 0;
        q = aimx__txt_quote(text, len);
        size_t n = unquote(q, parts, 4);
        assert_int_equal(n, want);
        for (size_t i = 0; i < n; i++) {
            assert_true(strlen(parts[i]) <= 255);
            total += strlen(parts[i]);
        }
        assert_int_equal(total, len);
        free(q);
    }
    /* Escapes do not count toward the 255: they are one octet each. */
    memset(text, '"', 255);
    q = aimx__txt_quote(text, 255);
    assert_int_equal(unquote(q, parts, 4), 1);
    assert_int_equal(strlen(parts[0]), 255);
    free(q);
    q = aimx__txt_quote("a\\b\x01", 4);
    assert_string_equal(q, "\"a\\\\b\\001\"");
    free(q);
}

static void
spf_new_and_merged(void **state)
{
    aimx_addr v4, v6, none;
    char *r;
    int added;

    (void)state;
    memset(&none, 0, sizeof none);
    assert_int_equal(aimx__addr_parse("127.0.0.25", &v4), 0);
    assert_int_equal(aimx__addr_parse("::1", &v6), 0);
    r = aimx__spf_propose(NULL, &v4, &none, &added);
    assert_string_equal(r, "v=spf1 ip4:127.0.0.25 -all");
    assert_int_equal(added, 1);
    free(r);
    r = aimx__spf_propose(NULL, &v4, &v6, NULL);
    assert_string_equal(r, "v=spf1 ip4:127.0.0.25 ip6:::1 -all");
    free(r);
    r = aimx__spf_propose(NULL, &none, &v6, NULL);
    assert_string_equal(r, "v=spf1 ip6:::1 -all");
    free(r);

    /* Existing terms kept as they are; ours in front. */
    r = aimx__spf_propose("v=spf1 include:_spf.other.test  mx ~all", &v4, &none,
                          &added);
    assert_string_equal(r, "v=spf1 ip4:127.0.0.25 include:_spf.other.test mx "
                           "~all");
    assert_int_equal(added, 1);
    free(r);
    /* Already covered by a CIDR: nothing added, the record unchanged. */
    r = aimx__spf_propose("v=spf1 ip4:127.0.0.0/24 ip6:::1 -all", &v4, &v6,
                          &added);
    assert_string_equal(r, "v=spf1 ip4:127.0.0.0/24 ip6:::1 -all");
    assert_int_equal(added, 0);
    free(r);
    /* A look-alike or a "-" term does not count as covering. */
    r = aimx__spf_propose("v=spf1 ip4:127.0.0.250 -ip4:127.0.0.25 ~all", &v4,
                          &none, &added);
    assert_string_equal(r, "v=spf1 ip4:127.0.0.25 ip4:127.0.0.250 "
                           "-ip4:127.0.0.25 ~all");
    free(r);
    /* An IPv6 term already there is left alone when IPv6 is off. */
    r = aimx__spf_propose("v=spf1 ip6:::2 -all", &v4, &none, &added);
    assert_string_equal(r, "v=spf1 ip4:127.0.0.25 ip6:::2 -all");
    free(r);
}

static void
dkim_record_round_trip(void **state)
{
    EVP_PKEY *key, *back;
    char err[256];
    char *value, *p, *k, *v;
    unsigned char der[1024];
    const unsigned char *dp = der;
    int n;

    (void)state;
    key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(key);
    value = aimx__dkim_txt_value(key, err, sizeof err);
    assert_non_null(value);
    assert_memory_equal(value, "v=DKIM1; k=rsa; p=MI", 20);
    p = aimx__dkim_tag(value, strlen(value), "p");
    k = aimx__dkim_tag(value, strlen(value), "k");
    v = aimx__dkim_tag(value, strlen(value), "v");
    assert_string_equal(k, "rsa");
    assert_string_equal(v, "DKIM1");
    n = EVP_DecodeBlock(der, (const unsigned char *)p, (int)strlen(p));
    assert_true(n > 0);
    /* EVP_DecodeBlock counts the padding as zero octets. */
    for (size_t i = strlen(p); i > 0 && p[i - 1] == '='; i--)
        n--;
    back = d2i_PUBKEY(NULL, &dp, n);
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(key, back), 1);
    EVP_PKEY_free(back);
    EVP_PKEY_free(key);
    free(value);
    free(p);
    free(k);
    free(v);

    /* Tags with folding white space, absent tags. */
    const char *rec = "v = DKIM1 ;\t p = AB CD\r\n EF ; t=y";
    p = aimx__dkim_tag(rec, strlen(rec), "p");
    assert_string_equal(p, "ABCDEF");
    free(p);
    assert_null(aimx__dkim_tag(rec, strlen(rec), "k"));
    p = aimx__dkim_tag("p=", 2, "p");
    assert_string_equal(p, "");
    free(p);
}

static void
dmarc_and_default_paths(void **state)
{
    char priv[512], pub[512];
    char *d = aimx__dmarc_value("example.test");

    (void)state;
    assert_string_equal(
        d, "v=DMARC1; p=reject; rua=mailto:postmaster@example.test");
    free(d);
    aimx__dkim_default_paths(priv, sizeof priv, pub, sizeof pub);
    assert_non_null(strstr(priv, "/dkim/private.key"));
    assert_non_null(strstr(pub, "/dkim/public.key"));
}

static void
targets(void **state)
{
    aimx_hostport hp;
    char err[256];

    (void)state;
    assert_int_equal(
        aimx__hostport_parse("MX.Example.TEST.", &hp, err, sizeof err), 0);
    assert_string_equal(hp.host, "mx.example.test");
    assert_false(hp.is_ip);
    assert_int_equal(hp.port, 0);
    assert_int_equal(aimx__hostport_parse("mx.test:2525", &hp, err, sizeof err),
                     0);
    assert_int_equal(hp.port, 2525);
    assert_int_equal(aimx__hostport_parse("127.0.0.1:25", &hp, err, sizeof err),
                     0);
    assert_true(hp.is_ip);
    assert_int_equal(hp.addr.family, AIMX_AF_INET);
    assert_string_equal(hp.host, "127.0.0.1");
    assert_int_equal(aimx__hostport_parse("[::1]:2525", &hp, err, sizeof err),
                     0);
    assert_int_equal(hp.addr.family, AIMX_AF_INET6);
    assert_string_equal(hp.host, "::1");
    assert_int_equal(hp.port, 2525);
    assert_int_equal(aimx__hostport_parse("[::1]", &hp, err, sizeof err), 0);
    assert_int_equal(hp.port, 0);
    /* A bare IPv6 address has no port. */
    assert_int_equal(aimx__hostport_parse("::1", &hp, err, sizeof err), 0);
    assert_int_equal(hp.port, 0);
    assert_true(hp.is_ip);

    assert_int_equal(aimx__hostport_parse("", &hp, err, sizeof err), -1);
    assert_int_equal(aimx__hostport_parse("mx.test:0", &hp, err, sizeof err),
                     -1);
    assert_int_equal(
        aimx__hostport_parse("mx.test:65536", &hp, err, sizeof err), -1);
    assert_int_equal(aimx__hostport_parse("mx.test:25x", &hp, err, sizeof err),
                     -1);
    assert_int_equal(aimx__hostport_parse("[::1", &hp, err, sizeof err), -1);
    assert_int_equal(aimx__hostport_parse("[::1]25", &hp, err, sizeof err), -1);
    assert_int_equal(aimx__hostport_parse("[mx.test]:25", &hp, err, sizeof err),
                     -1);
    assert_int_equal(aimx__hostport_parse("::1::2:25", &hp, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "[ADDRESS]:PORT"));
    assert_int_equal(aimx__hostport_parse("bad_name:25", &hp, err, sizeof err),
                     -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv6_not_detected_when_the_policy_does_not_use_it),
        cmocka_unit_test(ipv6_detected_once_when_it_does),
        cmocka_unit_test(options_then_bind_then_machine),
        cmocka_unit_test(address_errors),
        cmocka_unit_test(txt_split_at_255_octets),
        cmocka_unit_test(spf_new_and_merged),
        cmocka_unit_test(dkim_record_round_trip),
        cmocka_unit_test(dmarc_and_default_paths),
        cmocka_unit_test(targets),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
