/* SPDX-License-Identifier: MIT */
/* Address syntax and limits (RFC 5321 4.1.2, 4.5.3.1), IDN to A-labels,
 * RFC 5322 address lists, header-injection checks. */
#include "address.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void expect_ok(const char *in, const char *want, int want_utf8);
static void expect_bad(const char *in, const char *needle);
static char *repeat(char c, size_t n, const char *suffix);

static void
expect_ok(const char *in, const char *want, int want_utf8)
{
    char err[1024] = "", *out = NULL;
    int utf8 = -1;

    if (aimx__addr_normalize(in, &out, &utf8, err, sizeof err) != 0)
        fail_msg("'%s' refused: %s", in, err);
    assert_string_equal(out, want);
    assert_int_equal(utf8, want_utf8);
    free(out);
}

static void
expect_bad(const char *in, const char *needle)
{
    char err[1024] = "", *out = NULL;
    int utf8;

    if (aimx__addr_normalize(in, &out, &utf8, err, sizeof err) == 0)
        fail_msg("'%s' accepted as '%s'", in, out);
    assert_null(out);
    if (strstr(err, needle) == NULL)
        fail_msg("error for '%s' lacks '%s': %s", in, needle, err);
}

static char *
repeat(char c, size_t n, const char *suffix)
{
    char *s = malloc(n + strlen(suffix) + 1);

    memset(s, c, n);
    strcpy(s + n, suffix);
    return s;
}

static void
valid_addresses(void **state)
{
    (void)state;
    expect_ok("user@example.com", "user@example.com", 0);
    expect_ok("First.Last+tag@Example.COM", "First.Last+tag@example.com", 0);
    expect_ok("!#$%&'*+-/=?^_`{|}~@x.test", "!#$%&'*+-/=?^_`{|}~@x.test", 0);
    expect_ok("\"john doe\"@x.test", "\"john doe\"@x.test", 0);
    expect_ok("\"a@b\"@x.test", "\"a@b\"@x.test", 0);
    expect_ok("\"q\\\"x\"@x.test", "\"q\\\"x\"@x.test", 0);
    /* IDN domains become A-labels; UTF-8 local parts need SMTPUTF8. */
    expect_ok("user@b\xc3\xbc"
              "cher.example",
              "user@xn--bcher-kva.example", 0);
    expect_ok("j\xc3\xb6"
              "e@x.test",
              "j\xc3\xb6"
              "e@x.test",
              1);
    expect_ok("user@example.com.", "user@example.com", 0);
}

static void
limits(void **state)
{
    char *s;

    (void)state;
    s = repeat('a', 64, "@x.test");
    expect_ok(s, s, 0);
    free(s);
    s = repeat('a', 65, "@x.test");
    expect_bad(s, "65 octets; at most 64");
    expect_bad(s, s); /* the message names the value */
    free(s);
    /* A 256-octet domain. */
    s = repeat('a', 1, "@");
    char *dom = malloc(300);
    dom[0] = '\0';
    for (int i = 0; i < 4; i++)
        strcat(dom,
               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
               "a.");
    strcat(dom, "example");
    size_t l = strlen(dom);
    assert_true(l > 255);
    char *addr = malloc(l + 8);
    snprintf(addr, l + 8, "a@%s", dom);
    expect_bad(addr, "at most 255");
    free(addr);
    free(dom);
    free(s);
    /* A valid domain and local part that together pass 254 octets. */
    addr = malloc(400);
    snprintf(addr, 400, "%s@%s.%s.%s.x",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
             "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
             "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    expect_bad(addr, "at most 254");
    free(addr);
}

static void
invalid_addresses(void **state)
{
    (void)state;
    expect_bad("no-at-sign", "not an address");
    expect_bad("@x.test", "not an address");
    expect_bad("user@", "has no domain");
    expect_bad(".user@x.test", "local part");
    expect_bad("user.@x.test", "local part");
    expect_bad("us..er@x.test", "local part");
    expect_bad("us er@x.test", "local part");
    expect_bad("a<b@x.test", "local part");
    expect_bad("\"unterminated@x.test", "not an address");
    expect_bad("user@[192.0.2.1]", "address literals");
    expect_bad("user@exa_mple.com", "not a valid domain");
    expect_bad("user@-x.test", "not a valid domain");
    expect_bad("user@x.test\r\nRCPT TO:<evil@x.test>", "line break");
    expect_bad("user@x.test\nBcc: e@x.test", "line break");
    expect_bad("us\xff"
               "er@x.test",
               "not valid UTF-8");
}

static void
address_lists(void **state)
{
    aimx_mailbox_list l = {0};
    char err[1024];

    (void)state;
    assert_int_equal(aimx__addr_parse_list("a@x.test, \"Doe, Jane\" "
                                           "<jane@y.test>,Bob <bob@z.test>",
                                           0, &l, err, sizeof err),
                     0);
    assert_int_equal(l.n, 3);
    assert_null(l.v[0].display);
    assert_string_equal(l.v[0].addr, "a@x.test");
    assert_string_equal(l.v[1].display, "Doe, Jane");
    assert_string_equal(l.v[1].addr, "jane@y.test");
    assert_string_equal(l.v[2].display, "Bob");
    assert_string_equal(l.v[2].addr, "bob@z.test");
    aimx__mailbox_list_free(&l);

    /* From a header: comments, groups, folding and empty elements. */
    assert_int_equal(aimx__addr_parse_list(
                         " undisclosed-recipients:;, team: a@x.test (A),\r\n"
                         "\tb@y.test;, , \"Q (not a comment)\" <q@z.test>",
                         1, &l, err, sizeof err),
                     0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].addr, "a@x.test");
    assert_string_equal(l.v[1].addr, "b@y.test");
    assert_string_equal(l.v[2].display, "Q (not a comment)");
    aimx__mailbox_list_free(&l);

    /* Groups and line breaks are refused on the command line. */
    assert_int_not_equal(
        aimx__addr_parse_list("team: a@x.test;", 0, &l, err, sizeof err), 0);
    assert_non_null(strstr(err, "groups"));
    aimx__mailbox_list_free(&l);
    assert_int_not_equal(aimx__addr_parse_list("a@x.test\r\nBcc: e@x.test", 0,
                                               &l, err, sizeof err),
                         0);
    assert_non_null(strstr(err, "line break"));
    aimx__mailbox_list_free(&l);
    assert_int_not_equal(aimx__addr_parse_list("", 0, &l, err, sizeof err), 0);
    assert_non_null(strstr(err, "holds no address"));
    assert_int_not_equal(
        aimx__addr_parse_list("Name <a@x.test", 0, &l, err, sizeof err), 0);
    aimx__mailbox_list_free(&l);
    assert_int_not_equal(
        aimx__addr_parse_list("\"open <a@x.test>", 0, &l, err, sizeof err), 0);
    aimx__mailbox_list_free(&l);

    /* add_unique keeps the first of equal addresses. */
    aimx_mailbox m = {NULL, "a@x.test", 0};
    assert_int_equal(aimx__mailbox_list_add_unique(&l, &m), 0);
    assert_int_equal(aimx__mailbox_list_add_unique(&l, &m), 0);
    assert_int_equal(l.n, 1);
    aimx__mailbox_list_free(&l);
}

/* add_unique against a plain model, over enough addresses for its index
 * to grow many times, with duplicates of old and new entries and with
 * entries that parse_list() added before the index saw them. */
static void
add_unique_many(void **state)
{
    aimx_mailbox_list l = {0};
    char addr[64], err[256];
    unsigned seed = 12345;
    size_t model = 0;

    (void)state;
    assert_int_equal(
        aimx__addr_parse_list("p0@x.test, p1@x.test", 0, &l, err, sizeof err),
        0);
    model = l.n;
    for (int k = 0; k < 20000; k++) {
        seed = seed * 1103515245u + 12345u;
        int fresh = (seed >> 8) % 3 == 0; /* otherwise a duplicate */
        size_t pick = fresh ? model : (seed >> 12) % model;
        if (fresh)
            snprintf(addr, sizeof addr, "u%zu@d%zu.test", model, model % 97);
        else if (pick < 2)
            snprintf(addr, sizeof addr, "p%zu@x.test", pick);
        else
            snprintf(addr, sizeof addr, "u%zu@d%zu.test", pick, pick % 97);
        aimx_mailbox m = {NULL, addr, 0};
        assert_int_equal(aimx__mailbox_list_add_unique(&l, &m), 0);
        if (fresh)
            model++;
        assert_int_equal(l.n, model);
        if (fresh)
            assert_string_equal(l.v[l.n - 1].addr, addr);
    }
    assert_true(model > 1000);
    for (size_t i = 2; i < l.n; i++) {
        snprintf(addr, sizeof addr, "u%zu@d%zu.test", i, i % 97);
        assert_string_equal(l.v[i].addr, addr);
    }
    aimx__mailbox_list_free(&l);
    assert_null(l.index);
}

static void
helpers(void **state)
{
    char out[32];

    (void)state;
    assert_true(aimx__has_line_break("a\rb", 3));
    assert_true(aimx__has_line_break("a\nb", 3));
    assert_true(aimx__has_line_break("a\0b", 3));
    assert_false(aimx__has_line_break("a\tb", 3));
    assert_true(aimx__utf8_valid("\xe2\x82\xac", 3));
    assert_false(aimx__utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(aimx__utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(aimx__utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_false(aimx__utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_string_equal(aimx__printable("a\r\nb\x01", out, sizeof out),
                        "a\\r\\nb\\x01");
    aimx__printable("0123456789012345678901234567890123456789", out,
                    sizeof out);
    assert_true(strlen(out) < sizeof out);
    assert_non_null(strstr(out, "..."));
    assert_string_equal(aimx__addr_domain("a@b@c.test"), "c.test");
    assert_true(aimx__domains_align("sender.test", "SENDER.test"));
    assert_true(aimx__domains_align("mail.sender.test", "sender.test"));
    assert_true(aimx__domains_align("sender.test", "mail.sender.test"));
    assert_false(aimx__domains_align("evilsender.test", "sender.test"));
    assert_false(aimx__domains_align("other.test", "sender.test"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_addresses),   cmocka_unit_test(limits),
        cmocka_unit_test(invalid_addresses), cmocka_unit_test(address_lists),
        cmocka_unit_test(add_unique_many),   cmocka_unit_test(helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
