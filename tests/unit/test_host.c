/* SPDX-License-Identifier: MIT */
/* The host services, driven through real (fixture) plugins. */
#include "dns_sink.h"
#include "host.h"
#include "message.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char tmpdir[] = "/tmp/aimx-host-test-XXXXXX";
static char path[512];

static int
load(const char *text, aimx_config *c, aimx_diag *d)
{
    FILE *f;
    char full[4096];

    snprintf(full, sizeof full, "plugin_dirs = [ \"%s\" ];\n%s",
             AIMX_FIXTURE_DIR, text);
    snprintf(path, sizeof path, "%s/aimx.conf", tmpdir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(full, f);
    fclose(f);
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
good_group_creates(void **state)
{
    aimx_config c;
    aimx_diag d = {0};
    aimx_instance inst;

    (void)state;
    assert_int_equal(load("domain = \"agent.example\";\n"
                          "resolver: { plugin = \"fx-resolver\"; servers = [ "
                          "\"a\", \"b\" ];\n"
                          "  timeout = \"250ms\"; tries = 3; flag = true;\n"
                          "  limits: { max_size = \"25MB\"; }; };\n",
                          &c, &d),
                     0);
    assert_int_equal(aimx__instance_create(&inst, &c, AIMX_SLOT_RESOLVER, &d),
                     0);
    assert_int_equal(d.count, 0);
    /* The keys asked for, found or not, in order. */
    assert_true(inst.host.known_count >= 7);
    assert_string_equal(inst.host.known[0], "servers");
    assert_string_equal(inst.host.known[1], "servers[0]");
    assert_string_equal(inst.host.known[2], "servers[1]");
    assert_string_equal(inst.host.known[3], "timeout");
    aimx__instance_destroy(&inst);
    aimx__config_free(&c);
}

static void
misspelled_key_names_file_and_line(void **state)
{
    aimx_config c;
    aimx_diag d = {0};
    aimx_instance inst;
    char want[700];

    (void)state;
    assert_int_equal(load("resolver: {\n"
                          "  plugin = \"fx-resolver\";\n"
                          "  timout = \"2s\";\n"
                          "};\n",
                          &c, &d),
                     0);
    assert_int_equal(aimx__instance_create(&inst, &c, AIMX_SLOT_RESOLVER, &d),
                     78);
    /* +1: load() puts plugin_dirs on the first line. */
    snprintf(want, sizeof want,
             "%s:4: unknown setting 'timout' in group 'resolver' (did you "
             "mean 'timeout'?)",
             path);
    expect_message(&d, want);
    aimx__instance_destroy(&inst);
    aimx__config_free(&c);
    aimx__diag_free(&d);
}

static void
typed_getters_report_errors(void **state)
{
    static const struct {
        const char *group;
        const char *message;
    } cases[] = {
        {"tries = \"2\";", "'tries' in group 'policy' must be an integer"},
        {"tries = 11;",
         "'tries' in group 'policy' must be between 1 and 10 (it is 11)"},
        {"timeout = 2;",
         "'timeout' in group 'policy' must be a duration string"},
        {"timeout = \"2 s\";",
         "'timeout' in group 'policy' = \"2 s\" is not a duration"},
        {"timeout = \"2\";", "= \"2\" is not a duration"},
        {"timeout = \"2m\";", "'timeout' in group 'policy' must be between 1ms "
                              "and 1m (it is \"2m\")"},
        {"flag = 1;", "'flag' in group 'policy' must be a boolean"},
        {"servers = \"a\";", "'servers' in group 'policy' must be a list"},
        {"servers = [ \"\" ];",
         "'servers[0]' in group 'policy': a server cannot be empty"},
        {"limits: { max_size = \"25 MB\"; };",
         "'limits.max_size' in group 'policy' = \"25 MB\" is not a size"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aimx_config c;
        aimx_diag d = {0};
        aimx_instance inst;
        char text[512];

        snprintf(text, sizeof text,
                 "policy: { plugin = \"fx-policy\";\n %s };\n", cases[i].group);
        assert_int_equal(load(text, &c, &d), 0);
        assert_int_equal(aimx__instance_create(&inst, &c, AIMX_SLOT_POLICY, &d),
                         78);
        expect_message(&d, cases[i].message);
        /* The line of the offending setting, not of the group. */
        expect_message(&d, ":3: ");
        aimx__instance_destroy(&inst);
        aimx__config_free(&c);
        aimx__diag_free(&d);
    }
}

static void
top_level_keys_for_plugins(void **state)
{
    aimx_config c;
    aimx_diag d = {0};
    aimx_instance inst;
    const aimx_host_api *api = aimx__host_api();
    const char *s;
    int flag;

    (void)state;
    assert_int_equal(load("domain = \"agent.example\"; enable_ipv6 = true;\n"
                          "transport: { plugin = \"fx-transport\"; };\n",
                          &c, &d),
                     0);
    assert_int_equal(aimx__instance_create(&inst, &c, AIMX_SLOT_TRANSPORT, &d),
                     0);
    /* The fixture read both during create(); ask again as it would. */
    inst.host.creating = 1;
    assert_int_equal(api->cfg_string(&inst.host, "/domain", &s), AIMX_OK);
    assert_string_equal(s, "agent.example");
    assert_int_equal(api->cfg_bool(&inst.host, "/enable_ipv6", &flag), AIMX_OK);
    assert_int_equal(flag, 1);
    assert_int_equal(api->cfg_string(&inst.host, "/plugin_dirs", &s),
                     AIMX_ERR_UNSUPPORTED);
    assert_int_equal(api->cfg_string(&inst.host, "port", &s),
                     AIMX_ERR_NOT_FOUND);
    assert_int_equal(api->cfg_string(&inst.host, "a..b", &s), AIMX_ERR_INVALID);
    /* After create() the config is gone for plugins. */
    inst.host.creating = 0;
    assert_int_equal(api->cfg_string(&inst.host, "port", &s),
                     AIMX_ERR_UNSUPPORTED);
    assert_int_equal(api->cfg_string(&inst.host, "/domain", &s),
                     AIMX_ERR_UNSUPPORTED);
    assert_int_equal(api->cfg_error(&inst.host, "port", "late"),
                     AIMX_ERR_INVALID);
    assert_int_equal(d.count, 0);
    aimx__instance_destroy(&inst);
    aimx__config_free(&c);
}

static void
wrong_kind_in_slot(void **state)
{
    aimx_config c;
    aimx_diag d = {0};
    aimx_instance inst;

    (void)state;
    assert_int_equal(load("resolver: { plugin = \"fx-policy\"; };\n", &c, &d),
                     0);
    assert_int_equal(aimx__instance_create(&inst, &c, AIMX_SLOT_RESOLVER, &d),
                     78);
    expect_message(&d, "fx-policy.so: refused: it is a policy plugin, but it "
                       "was configured where a resolver plugin belongs");
    aimx__instance_destroy(&inst);
    aimx__config_free(&c);
    aimx__diag_free(&d);
}

struct done_count {
    int calls;
};

static void
count_done(aimx_dns_sink *sink, void *arg)
{
    (void)sink;
    ((struct done_count *)arg)->calls++;
}

static void
dns_sink_through_a_resolver(void **state)
{
    aimx_config c;
    aimx_diag d = {0};
    aimx_instance inst;
    aimx_dns_sink sink;
    aimx_dns_query q = {sizeof q, AIMX_DNS_A, 0, "mx.example.", 0};
    struct done_count done = {0};

    (void)state;
    assert_int_equal(load("resolver: { plugin = \"fx-resolver\"; };\n", &c, &d),
                     0);
    assert_int_equal(aimx__instance_create(&inst, &c, AIMX_SLOT_RESOLVER, &d),
                     0);
    aimx__dns_sink_init(&sink, count_done, &done);
    /* The fixture completes inside lookup(), as c-ares may. */
    assert_int_equal(inst.plugin.resolver.lookup(inst.instance, &q, &sink),
                     AIMX_OK);
    aimx__dns_sink_wait(&sink);
    assert_int_equal(done.calls, 1);
    assert_int_equal(sink.outcome, AIMX_DNS_OK);
    assert_int_equal(sink.count, 1);
    assert_int_equal(sink.records[0].type, AIMX_DNS_A);
    assert_int_equal(sink.records[0].address.family, AIMX_AF_INET);
    assert_int_equal(sink.records[0].address.bytes[0], 127);
    assert_string_equal(sink.records[0].owner, "mx.example");
    assert_string_equal(sink.diag, "fixture answer");
    /* A second completion or a late record is refused, not stored. */
    aimx_dns_record late = {0};
    late.struct_size = sizeof late;
    assert_int_equal(aimx__dns_sink_add(&sink, &late), AIMX_ERR_INVALID);
    aimx__dns_sink_complete(&sink, NULL);
    assert_int_equal(done.calls, 1);
    assert_int_equal(sink.count, 1);
    aimx__dns_sink_free(&sink);
    aimx__instance_destroy(&inst);
    aimx__config_free(&c);
}

static void
dns_sink_reads_only_what_the_plugin_wrote(void **state)
{
    /* A record from an older plugin: struct_size ends before `address`.
     * Whatever lies beyond must read as zero. */
    unsigned char raw[sizeof(aimx_dns_record)];
    aimx_dns_record *rec = (aimx_dns_record *)(void *)raw;
    aimx_dns_sink sink;

    (void)state;
    memset(raw, 0xAB, sizeof raw);
    rec->struct_size = (uint32_t)offsetof(aimx_dns_record, address);
    rec->type = AIMX_DNS_MX;
    rec->preference = 10;
    rec->ttl = 5;
    rec->reserved = 0;
    rec->owner = "example";
    rec->target = "mx.example";
    aimx__dns_sink_init(&sink, NULL, NULL);
    assert_int_equal(aimx__dns_sink_add(&sink, rec), AIMX_OK);
    assert_int_equal(sink.records[0].preference, 10);
    assert_string_equal(sink.records[0].target, "mx.example");
    assert_int_equal(sink.records[0].address.family, 0);
    assert_null(sink.records[0].text);
    assert_null(sink.records[0].rdata);
    aimx__dns_sink_free(&sink);
}

static void
message_reads_in_chunks_and_rewinds(void **state)
{
    aimx_config c;
    aimx_diag d = {0};
    aimx_instance inst;
    char file[600];
    FILE *f;
    aimx_msg msg;
    aimx_transport_result res;
    aimx_envelope env = {0};
    aimx_session *session = NULL;
    aimx_open_request req = {0};

    (void)state;
    snprintf(file, sizeof file, "%s/spool", tmpdir);
    f = fopen(file, "w+");
    assert_non_null(f);
    for (int i = 0; i < 1000; i++)
        fputs("0123456789\r\n", f); /* 12000 octets */
    fflush(f);
    aimx__msg_init(&msg, fileno(f), 12000);

    assert_int_equal(
        load("transport: { plugin = \"fx-transport\"; };\n", &c, &d), 0);
    assert_int_equal(aimx__instance_create(&inst, &c, AIMX_SLOT_TRANSPORT, &d),
                     0);
    memset(&res, 0, sizeof res);
    res.struct_size = sizeof res;
    assert_int_equal(
        inst.plugin.transport.open(inst.instance, &req, &session, &res),
        AIMX_OK);
    env.struct_size = sizeof env;
    assert_int_equal(
        inst.plugin.transport.send(inst.instance, session, &env, &msg, &res),
        AIMX_OK);
    assert_string_equal(res.reply, "read 12000 octets");
    /* A second attempt reads it all again after a rewind. */
    assert_int_equal(aimx__msg_rewind(&msg), AIMX_OK);
    assert_int_equal(
        inst.plugin.transport.send(inst.instance, session, &env, &msg, &res),
        AIMX_OK);
    assert_string_equal(res.reply, "read 12000 octets");
    inst.plugin.transport.close(inst.instance, session, 0);

    /* A spool that shrank under the reader is an I/O error, not an EOF. */
    assert_int_equal(aimx__msg_rewind(&msg), AIMX_OK);
    assert_int_equal(ftruncate(fileno(f), 100), 0);
    char buf[200];
    assert_int_equal(aimx__msg_read(&msg, buf, sizeof buf), 100);
    assert_int_equal(aimx__msg_read(&msg, buf, sizeof buf), -AIMX_ERR_IO);
    fclose(f);
    unlink(file);
    aimx__instance_destroy(&inst);
    aimx__config_free(&c);
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
        cmocka_unit_test(good_group_creates),
        cmocka_unit_test(misspelled_key_names_file_and_line),
        cmocka_unit_test(typed_getters_report_errors),
        cmocka_unit_test(top_level_keys_for_plugins),
        cmocka_unit_test(wrong_kind_in_slot),
        cmocka_unit_test(dns_sink_through_a_resolver),
        cmocka_unit_test(dns_sink_reads_only_what_the_plugin_wrote),
        cmocka_unit_test(message_reads_in_chunks_and_rewinds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
