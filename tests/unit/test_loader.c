/* SPDX-License-Identifier: MIT */
/* The loader refuses each broken fixture with its own message, and its pure
 * checks (descriptor, file ownership) behave under any uid. */
#include "loader.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char why[1024];

static void
expect_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("expected '%s' in: %s", needle, text);
}

/* Loads <fixture dir>/<name>.so for kind; returns the loader's result. */
static int
load_fixture(const char *name, uint32_t kind, aimx_plugin *p)
{
    char path[1024];

    snprintf(path, sizeof path, "%s/%s.so", AIMX_FIXTURE_DIR, name);
    return aimx__plugin_load_file(path, kind, p, why, sizeof why);
}

static void
good_fixtures_load(void **state)
{
    static const struct {
        const char *name;
        uint32_t kind;
    } good[] = {
        {"fx-resolver", AIMX_KIND_RESOLVER},
        {"fx-policy", AIMX_KIND_POLICY},
        {"fx-transport", AIMX_KIND_TRANSPORT},
    };
    aimx_plugin p;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (load_fixture(good[i].name, good[i].kind, &p) != 0)
            fail_msg("%s: %s", good[i].name, why);
        assert_string_equal(p.name, good[i].name);
        assert_int_equal(p.desc.kind, good[i].kind);
        assert_string_equal(p.desc.version, "9.9.9-fixture");
    }
    /* kind 0: any kind (the listing). */
    assert_int_equal(load_fixture("fx-policy", 0, &p), 0);
    assert_non_null(p.policy.select);
    assert_non_null(p.policy.families);
}

static void
broken_fixtures_refused(void **state)
{
    static const struct {
        const char *name;
        uint32_t kind;
        const char *message;
    } broken[] = {
        {"fx-wrong-major", AIMX_KIND_POLICY,
         "it was built for plugin ABI 2.0; this aimx speaks ABI 1.0"},
        {"fx-v2-only", AIMX_KIND_POLICY,
         "it was built for plugin ABI 2; this aimx speaks ABI 1.0"},
        {"fx-newer-minor", AIMX_KIND_POLICY,
         "it needs plugin ABI 1.1, newer than this aimx's 1.0"},
        {"fx-no-entry", AIMX_KIND_POLICY, "it exports no aimx_plugin_v1 entry"},
        {"fx-unresolved", AIMX_KIND_POLICY,
         "undefined symbol: aimx_fixture_missing_symbol"},
        {"fx-name-mismatch", AIMX_KIND_POLICY,
         "its descriptor names it 'someone-else' but the file is "
         "'fx-name-mismatch.so'"},
        {"fx-null-op", AIMX_KIND_POLICY,
         "required operation select() is missing"},
        {"fx-policy", AIMX_KIND_RESOLVER,
         "it is a policy plugin, but it was configured where a resolver "
         "plugin belongs"},
        {"fx-resolver", AIMX_KIND_TRANSPORT,
         "it is a resolver plugin, but it was configured where a transport "
         "plugin belongs"},
    };
    aimx_plugin p;

    (void)state;
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        if (load_fixture(broken[i].name, broken[i].kind, &p) == 0)
            fail_msg("%s was accepted", broken[i].name);
        expect_contains(why, broken[i].name);
        expect_contains(why, broken[i].message);
    }
}

static void
not_found_lists_directories(void **state)
{
    char *dirs[] = {"/nonexistent/one", AIMX_FIXTURE_DIR};
    aimx_plugin p;

    (void)state;
    assert_int_equal(aimx__plugin_load(dirs, 2, "no-such-plugin",
                                       AIMX_KIND_RESOLVER, &p, why, sizeof why),
                     -1);
    expect_contains(why, "resolver plugin 'no-such-plugin' not found");
    expect_contains(why, "/nonexistent/one");
    expect_contains(why, AIMX_FIXTURE_DIR);
    /* The first directory that has it wins. */
    assert_int_equal(aimx__plugin_load(dirs, 2, "fx-policy", AIMX_KIND_POLICY,
                                       &p, why, sizeof why),
                     0);
    expect_contains(p.path, AIMX_FIXTURE_DIR "/fx-policy.so");
    assert_int_equal(aimx__plugin_load(dirs, 2, "../x", AIMX_KIND_POLICY, &p,
                                       why, sizeof why),
                     -1);
    expect_contains(why, "not a valid plugin name");
}

static void
relative_and_misnamed_paths_refused(void **state)
{
    aimx_plugin p;

    (void)state;
    assert_int_equal(
        aimx__plugin_load_file("fx-policy.so", 0, &p, why, sizeof why), -1);
    expect_contains(why, "absolute path only");
    assert_int_equal(
        aimx__plugin_load_file("/tmp/Bad_Name.so", 0, &p, why, sizeof why), -1);
    expect_contains(why, "not a valid plugin file name");
}

static void
scan_lists_ok_refused_shadowed(void **state)
{
    char shadow_dir[] = "/tmp/aimx-shadow-XXXXXX";
    char link_path[256], target[1024];
    aimx_plugin_listing *list;
    size_t n;
    int saw_ok = 0, saw_shadow = 0, saw_refused = 0;

    (void)state;
    assert_non_null(mkdtemp(shadow_dir));
    /* The same plugin in an earlier directory shadows the fixture's. */
    snprintf(link_path, sizeof link_path, "%s/fx-policy.so", shadow_dir);
    snprintf(target, sizeof target, "%s/fx-policy.so", AIMX_FIXTURE_DIR);
    assert_int_equal(symlink(target, link_path), 0);
    char *dirs[] = {shadow_dir, AIMX_FIXTURE_DIR};
    assert_int_equal(aimx__plugin_scan(dirs, 2, &list, &n), 0);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, "fx-policy") == 0) {
            if (strncmp(list[i].path, shadow_dir, strlen(shadow_dir)) == 0) {
                assert_int_equal(list[i].status, AIMX_LISTING_OK);
                saw_ok = 1;
            } else {
                assert_int_equal(list[i].status, AIMX_LISTING_SHADOWED);
                expect_contains(list[i].reason, shadow_dir);
                saw_shadow = 1;
            }
        }
        if (strcmp(list[i].name, "fx-newer-minor") == 0) {
            assert_int_equal(list[i].status, AIMX_LISTING_REFUSED);
            expect_contains(list[i].reason, "newer than this aimx");
            saw_refused = 1;
        }
    }
    assert_true(saw_ok && saw_shadow && saw_refused);
    free(list);
    unlink(link_path);
    rmdir(shadow_dir);
}

static void
descriptor_checks(void **state)
{
    static const aimx_policy_ops ops = {sizeof ops, NULL, NULL};
    aimx_plugin_descriptor d;

    (void)state;
    memset(&d, 0, sizeof d);
    assert_false(aimx__descriptor_check(NULL, "x", 0, why, sizeof why));
    d.struct_size = 8;
    assert_false(aimx__descriptor_check(&d, "x", 0, why, sizeof why));
    expect_contains(why, "malformed");

    d.struct_size = sizeof d;
    d.abi_major = AIMX_ABI_MAJOR;
    d.abi_minor = AIMX_ABI_MINOR;
    d.kind = AIMX_KIND_POLICY;
    d.name = "x";
    assert_false(aimx__descriptor_check(&d, "x", 0, why, sizeof why));
    expect_contains(why, "create()");

    /* A 1.0 plugin never has a smaller descriptor than the 1.0 fields. */
    d.struct_size = 40;
    assert_false(aimx__descriptor_check(&d, "x", 0, why, sizeof why));
    expect_contains(why, "too small");
    d.struct_size = sizeof d;

    d.name = "Bad Name";
    assert_false(aimx__descriptor_check(&d, "x", 0, why, sizeof why));
    expect_contains(why, "no valid name");
    d.name = "x";
    d.kind = 99;
    assert_false(aimx__descriptor_check(&d, "x", 0, why, sizeof why));
    expect_contains(why, "kind 99");
    d.kind = AIMX_KIND_POLICY;
    d.create = (aimx_status(*)(const aimx_host_api *, aimx_host *, void **))1;
    d.destroy = (void (*)(void *))1;
    assert_false(aimx__descriptor_check(&d, "x", 0, why, sizeof why));
    expect_contains(why, "policy operations table is missing");
    d.policy = &ops;
    assert_false(aimx__descriptor_check(&d, "x", 0, why, sizeof why));
    expect_contains(why, "select() is missing");
    d.resolver = (const aimx_resolver_ops *)&ops;
    assert_false(aimx__descriptor_check(&d, "x", 0, why, sizeof why));
    expect_contains(why, "another kind");
}

static void
file_security_is_a_pure_function(void **state)
{
    struct stat st;

    (void)state;
    memset(&st, 0, sizeof st);
    st.st_mode = S_IFREG | 0644;
    st.st_uid = 0;
    assert_true(aimx__plugin_file_secure(&st, 0, 0, why, sizeof why));

    st.st_mode = S_IFREG | 0664;
    assert_false(aimx__plugin_file_secure(&st, 0, 0, why, sizeof why));
    expect_contains(why, "group-writable");
    st.st_mode = S_IFREG | 0646;
    assert_false(aimx__plugin_file_secure(&st, 0, 0, why, sizeof why));
    expect_contains(why, "world-writable");
    st.st_mode = S_IFREG | 0644;
    st.st_uid = 1000;
    assert_false(aimx__plugin_file_secure(&st, 0, 0, why, sizeof why));
    expect_contains(why, "owned by uid 1000, not root");

    /* An ordinary user may load its own development plugins. */
    st.st_mode = S_IFREG | 0666;
    assert_true(aimx__plugin_file_secure(&st, 1000, 0, why, sizeof why));

    /* Directories: the same rules, and the message says which. */
    st.st_mode = S_IFDIR | 0777;
    st.st_uid = 0;
    assert_false(aimx__plugin_file_secure(&st, 0, 1, why, sizeof why));
    expect_contains(why, "its directory is world-writable");
    st.st_mode = S_IFDIR | 01777; /* sticky /tmp is still writable by all */
    assert_false(aimx__plugin_file_secure(&st, 0, 1, why, sizeof why));
    st.st_mode = S_IFDIR | 0755;
    assert_true(aimx__plugin_file_secure(&st, 0, 1, why, sizeof why));

    /* Not a regular file: refused for everyone. */
    st.st_mode = S_IFIFO | 0644;
    assert_false(aimx__plugin_file_secure(&st, 1000, 0, why, sizeof why));
    expect_contains(why, "not a regular file");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_fixtures_load),
        cmocka_unit_test(broken_fixtures_refused),
        cmocka_unit_test(not_found_lists_directories),
        cmocka_unit_test(relative_and_misnamed_paths_refused),
        cmocka_unit_test(scan_lists_ok_refused_shadowed),
        cmocka_unit_test(descriptor_checks),
        cmocka_unit_test(file_security_is_a_pure_function),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
