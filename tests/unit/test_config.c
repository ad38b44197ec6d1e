/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char tmpdir[] = "/tmp/aimx-config-test-XXXXXX";
static char path[512];

static void
write_conf(const char *text)
{
    FILE *f;

    snprintf(path, sizeof path, "%s/aimx.conf", tmpdir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads text; returns the exit code and leaves the messages in d. */
static int
load(const char *text, aimx_config *c, aimx_diag *d)
{
    write_conf(text);
    return aimx__config_load(c, path, 1, d);
}

static void
expect_message(const aimx_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->count; i++)
        if (strstr(d->messages[i], needle) != NULL)
            return;
    for (size_t i = 0; i < d->count; i++)
        print_message("message %zu: %s\n", i, d->messages[i]);
    fail_msg("no message contains '%s'", needle);
}

static void
good_file(void **state)
{
    aimx_config c;
    aimx_diag d = {0};

    (void)state;
    assert_int_equal(
        load("domain = \"agent.example.com.\";\n"
             "enable_ipv6 = true;\n"
             "plugin_dirs = [ \"/opt/aimx/plugins\", \"/usr/lib/aimx/p\" ];\n"
             "syslog = true; syslog_facility = \"local3\";\n"
             "resolver: { plugin = \"resolver-cares\"; servers = [ "
             "\"127.0.0.1:5353\" ]; timeout = \"2s\"; tries = 2; };\n"
             "policy: { plugin = \"policy-ipfamily\"; prefer = \"ipv6\"; };\n"
             "transport: { plugin = \"my-transport\"; port = 25; };\n"
             "dkim: { selector = \"aimx\"; key_file = \"/k\"; public_key_file "
             "= \"/p\"; };\n",
             &c, &d),
        0);
    assert_int_equal(d.count, 0);
    assert_string_equal(c.domain, "agent.example.com");
    assert_false(c.domain_is_default);
    assert_true(c.enable_ipv6);
    assert_true(c.syslog);
    assert_int_equal(c.plugin_dir_count, 2);
    assert_string_equal(c.plugin_dirs[0], "/opt/aimx/plugins");
    assert_string_equal(c.slot_plugin[AIMX_SLOT_TRANSPORT], "my-transport");
    assert_non_null(c.slot_group[AIMX_SLOT_RESOLVER]);
    aimx__config_free(&c);
    aimx__diag_free(&d);
}

static void
defaults_without_a_file(void **state)
{
    aimx_config c;
    aimx_diag d = {0};
    char missing[600];

    (void)state;
    unsetenv("AIMX_PLUGIN_PATH");
    snprintf(missing, sizeof missing, "%s/absent.conf", tmpdir);
    assert_int_equal(aimx__config_load(&c, missing, 0, &d), 0);
    assert_false(c.have_file);
    assert_false(c.enable_ipv6);
    assert_true(c.domain_is_default);
    assert_string_equal(c.slot_plugin[AIMX_SLOT_RESOLVER], "resolver-cares");
    assert_string_equal(c.slot_plugin[AIMX_SLOT_POLICY], "policy-ipfamily");
    assert_string_equal(c.slot_plugin[AIMX_SLOT_TRANSPORT], "transport-smtp");
    assert_int_equal(c.plugin_dir_count, 1);
    assert_string_equal(c.plugin_dirs[0], AIMX_DEFAULT_PLUGIN_DIR);
    aimx__config_free(&c);

    /* Named explicitly, a missing file is an error that names it. */
    assert_int_equal(aimx__config_load(&c, missing, 1, &d), 78);
    expect_message(&d, missing);
    expect_message(&d, "No such file");
    aimx__config_free(&c);
    aimx__diag_free(&d);
}

static void
syntax_error_names_file_and_line(void **state)
{
    aimx_config c;
    aimx_diag d = {0};
    char where[600];

    (void)state;
    assert_int_equal(
        load("domain = \"a.example\";\n\nenable_ipv6 = ;\n", &c, &d), 78);
    snprintf(where, sizeof where, "%s:3: ", path);
    expect_message(&d, where);
    aimx__config_free(&c);
    aimx__diag_free(&d);
}

static void
unknown_top_level_key(void **state)
{
    aimx_config c;
    aimx_diag d = {0};
    char want[700];

    (void)state;
    assert_int_equal(
        load("domain = \"a.example\";\nenable_ipv7 = true;\n", &c, &d), 78);
    snprintf(
        want, sizeof want,
        "%s:2: unknown setting 'enable_ipv7' (did you mean 'enable_ipv6'?)",
        path);
    expect_message(&d, want);
    aimx__config_free(&c);
    aimx__diag_free(&d);
    assert_int_equal(load("dkim: { selectr = \"x\"; };\n", &c, &d), 78);
    expect_message(&d, "unknown setting 'selectr' in group 'dkim' (did you "
                       "mean 'selector'?)");
    aimx__config_free(&c);
    aimx__diag_free(&d);
}

static void
wrong_types(void **state)
{
    aimx_config c;
    aimx_diag d = {0};

    (void)state;
    assert_int_equal(load("enable_ipv6 = \"yes\";\n"
                          "plugin_dirs = \"/x\";\n"
                          "domain = 5;\n"
                          "resolver = 3;\n"
                          "policy: { plugin = 7; };\n",
                          &c, &d),
                     78);
    expect_message(&d, ":1: 'enable_ipv6' must be a boolean");
    expect_message(&d, ":2: 'plugin_dirs' must be a list of strings");
    expect_message(&d, ":3: 'domain' must be a string");
    expect_message(&d, ":4: 'resolver' must be a group");
    expect_message(&d, ":5: 'plugin' in group 'policy' must be a string");
    aimx__config_free(&c);
    aimx__diag_free(&d);
}

static void
bad_values(void **state)
{
    aimx_config c;
    aimx_diag d = {0};

    (void)state;
    assert_int_equal(load("domain = \"bad_domain..x\";\n"
                          "plugin_dirs = [ \"relative/dir\" ];\n"
                          "syslog_facility = \"kern\";\n"
                          "transport: { plugin = \"Transport_SMTP\"; };\n",
                          &c, &d),
                     78);
    expect_message(&d,
                   ":1: 'domain' = \"bad_domain..x\" is not a valid host name");
    expect_message(
        &d, ":2: plugin directory 'relative/dir' is not an absolute path");
    expect_message(&d, ":3: 'syslog_facility' = \"kern\" is not one of");
    expect_message(
        &d,
        ":4: plugin name \"Transport_SMTP\" in group 'transport' is not valid");
    aimx__config_free(&c);
    aimx__diag_free(&d);
}

static void
wrapped_integer_is_caught(void **state)
{
    aimx_config c;
    aimx_diag d = {0};

    (void)state;
    /* libconfig reads 5000000000 back as 705032704 without a word. */
    assert_int_equal(
        load("resolver: {\n  tries = 2;\n  big = 5000000000;\n};\n", &c, &d),
        78);
    expect_message(&d, ":3: the number for 'big' is too large");
    aimx__config_free(&c);
    aimx__diag_free(&d);

    assert_int_equal(load("resolver: { list = [ 1, 4294967297 ];\n"
                          "  list2 = (\n 1,\n 4294967297 ); };\n",
                          &c, &d),
                     78);
    expect_message(&d, ":1: the number for 'list element' is too large");
    expect_message(&d, ":4: the number for 'list element' is too large");
    expect_message(&d, "the number for 'list element' is too large");
    aimx__config_free(&c);
    aimx__diag_free(&d);

    /* An explicit 64-bit literal is fine. */
    assert_int_equal(
        load("resolver: { big = 5000000000L; small = -7; hex = 0x10; };\n", &c,
             &d),
        0);
    aimx__config_free(&c);
    aimx__diag_free(&d);
}

static void
int_literal_matcher(void **state)
{
    (void)state;
    assert_true(aimx__int_literal_matches("  tries = 2;", "tries", 0, 2));
    assert_true(aimx__int_literal_matches("a = 1; b = 2;", "b", 0, 2));
    assert_true(aimx__int_literal_matches("x:0x10;", "x", 0, 16));
    assert_true(aimx__int_literal_matches("n = -3;", "n", 0, -3));
    assert_false(
        aimx__int_literal_matches("big = 5000000000;", "big", 0, 705032704));
    assert_false(
        aimx__int_literal_matches("big = 99999999999999999999;", "big", 0, 1));
    /* "xbig" is another key: the match must be a whole name. */
    assert_false(aimx__int_literal_matches("xbig = 1; big = 5000000000;", "big",
                                           0, 705032704));
    /* Lists: the element's rank picks its literal; strings are skipped. */
    assert_true(aimx__int_literal_matches("l = [ 1, 2, 3 ];", "l", 2, 3));
    assert_false(
        aimx__int_literal_matches("l = [ 1, 4294967297 ];", "l", 1, 1));
    assert_true(aimx__int_literal_matches("l = [ 1, 4294967297 ];", "l", 0, 1));
    assert_true(aimx__int_literal_matches("  7, 8 )", NULL, 1, 8));
    assert_true(aimx__int_literal_matches("l = ( \"a1\", 5 );", "l", 0, 5));
}

static void
lookup_paths(void **state)
{
    aimx_config c;
    aimx_diag d = {0};
    config_setting_t *g, *s;
    int bad;

    (void)state;
    assert_int_equal(load("transport: { timeouts: { connect = \"30s\"; };\n"
                          "  servers = [ \"a\", \"b\" ]; };\n",
                          &c, &d),
                     0);
    g = c.slot_group[AIMX_SLOT_TRANSPORT];
    s = aimx__config_lookup_path(g, "timeouts.connect", &bad);
    assert_false(bad);
    assert_non_null(s);
    assert_string_equal(config_setting_get_string(s), "30s");
    s = aimx__config_lookup_path(g, "servers[1]", &bad);
    assert_non_null(s);
    assert_string_equal(config_setting_get_string(s), "b");
    assert_null(aimx__config_lookup_path(g, "servers[2]", &bad));
    assert_false(bad);
    assert_null(aimx__config_lookup_path(g, "timeouts.greeting", &bad));
    assert_false(bad);
    assert_null(aimx__config_lookup_path(g, "timeouts.", &bad));
    assert_true(bad);
    assert_null(aimx__config_lookup_path(g, "servers[x]", &bad));
    assert_true(bad);
    assert_null(aimx__config_lookup_path(g, "a b", &bad));
    assert_true(bad);
    aimx__config_free(&c);
    aimx__diag_free(&d);
}

static void
unknown_plugin_keys(void **state)
{
    aimx_config c;
    aimx_diag d = {0};
    char *known[] = {"servers", "timeout", "tries", "timeouts.connect",
                     "timeouts.greeting"};

    (void)state;
    assert_int_equal(
        load("resolver: {\n"
             "  plugin = \"x\";\n"
             "  servers = [ \"1.2.3.4\" ];\n"
             "  timout = \"2s\";\n"
             "  timeouts: { connect = \"1s\"; greting = \"2s\"; };\n"
             "  retries = 3;\n"
             "};\n",
             &c, &d),
        0);
    aimx__config_check_known(&c, c.slot_group[AIMX_SLOT_RESOLVER], "resolver",
                             known, sizeof known / sizeof known[0], &d);
    assert_int_equal(d.count, 3);
    expect_message(&d, ":4: unknown setting 'timout' in group 'resolver' "
                       "(did you mean 'timeout'?)");
    expect_message(&d, ":5: unknown setting 'timeouts.greting' in group "
                       "'resolver' (did you mean 'greeting'?)");
    expect_message(&d, ":6: unknown setting 'retries' in group 'resolver'");
    aimx__config_free(&c);
    aimx__diag_free(&d);
}

static void
plugin_path_env(void **state)
{
    aimx_config c;
    aimx_diag d = {0};

    (void)state;
    setenv("AIMX_PLUGIN_PATH", "/dev/a:/dev/b", 1);
    assert_int_equal(load("plugin_dirs = [ \"/c\" ];\n", &c, &d), 0);
    assert_int_equal(c.plugin_dir_count, 3);
    assert_string_equal(c.plugin_dirs[0], "/dev/a");
    assert_string_equal(c.plugin_dirs[1], "/dev/b");
    assert_string_equal(c.plugin_dirs[2], "/c");
    aimx__config_free(&c);
    setenv("AIMX_PLUGIN_PATH", "relative", 1);
    assert_int_equal(load("", &c, &d), 78);
    expect_message(&d, "AIMX_PLUGIN_PATH: 'relative' is not an absolute");
    aimx__config_free(&c);
    aimx__diag_free(&d);
    unsetenv("AIMX_PLUGIN_PATH");
}

static void
hostnames(void **state)
{
    (void)state;
    assert_true(aimx__valid_hostname("a.example.com"));
    assert_true(aimx__valid_hostname("xn--bcher-kva.example"));
    assert_true(aimx__valid_hostname("localhost"));
    assert_false(aimx__valid_hostname(""));
    assert_false(aimx__valid_hostname("-a.example"));
    assert_false(aimx__valid_hostname("a-.example"));
    assert_false(aimx__valid_hostname("a..example"));
    assert_false(aimx__valid_hostname("a.example."));
    assert_false(aimx__valid_hostname("a_b.example"));
    assert_false(aimx__valid_hostname("b\xc3\xbc"
                                      "cher.example"));
    assert_true(aimx__valid_plugin_name("resolver-cares"));
    assert_false(aimx__valid_plugin_name("Resolver"));
    assert_false(aimx__valid_plugin_name("a_b"));
    assert_false(aimx__valid_plugin_name(""));
}

static int
setup(void **state)
{
    (void)state;
    unsetenv("AIMX_PLUGIN_PATH");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(tmpdir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_file),
        cmocka_unit_test(defaults_without_a_file),
        cmocka_unit_test(syntax_error_names_file_and_line),
        cmocka_unit_test(unknown_top_level_key),
        cmocka_unit_test(wrong_types),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(wrapped_integer_is_caught),
        cmocka_unit_test(int_literal_matcher),
        cmocka_unit_test(lookup_paths),
        cmocka_unit_test(unknown_plugin_keys),
        cmocka_unit_test(plugin_path_env),
        cmocka_unit_test(hostnames),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
