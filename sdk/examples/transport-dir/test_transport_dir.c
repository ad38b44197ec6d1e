/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of transport-dir, through its descriptor, with
 * <aimx/fake_host.h> standing in for aimx: canned settings, an in-memory
 * message (which can be made to read in small pieces or to fail), and
 * leak and misuse counters.  The plugin's source is compiled in with
 * -DAIMX_PLUGIN_STATIC, which makes its entry
 * transport_dir_LTX_aimx_plugin_v1().
 */
#include <dirent.h>
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

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

aimx_plugin_entry_fn transport_dir_LTX_aimx_plugin_v1;

#define NRCPT 2

static const char message[] = "From: a@sender.test\r\n"
                              "To: b@example.com\r\n"
                              "Subject: hi\r\n"
                              "\r\n"
                              ".a line that starts with a dot\r\n"
                              "hello\r\n";

static char dir[] = "/tmp/transport-dir-test-XXXXXX";
static struct aimx_fake_host fh;

/* One call's storage, laid out as the host lays it out. */
struct call {
    aimx_transport_result res;
    aimx_rcpt_result rcpts[NRCPT];
    aimx_connect_attempt attempts[2];
    aimx_envelope env;
    const char *addrs[NRCPT];
    struct aimx_fake_msg msg;
};

static const aimx_plugin_descriptor *
descriptor(void)
{
    return transport_dir_LTX_aimx_plugin_v1();
}

/* Removes every file of the directory; returns how many there were. */
static int
empty_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[600];
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        assert_int_equal(unlink(path), 0);
        n++;
    }
    closedir(d);
    return n;
}

static int
setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    empty_dir();
    return rmdir(dir);
}

static aimx_status
create_with(const char *directory, void **inst)
{
    const struct aimx_fake_cfg cfg[] = {
        AIMX_FAKE_CFG_STRING("directory", directory),
    };
    aimx_status st;

    *inst = NULL;
    aimx_fake_host_init(&fh, cfg, directory ? 1 : 0);
    st = descriptor()->create(aimx_fake_host_api(&fh),
                              aimx_fake_host_handle(&fh), inst);
    fh.cfg_closed = 1; /* the config services are create()-only */
    return st;
}

static void
destroy_instance(void *inst)
{
    descriptor()->destroy(inst);
    assert_int_equal(fh.alloc_live, 0);
    assert_int_equal(fh.misuse, 0);
}

/* A zeroed result with the sizes and strides the host sets. */
static void
init_result(struct call *c)
{
    size_t i;

    memset(&c->res, 0, sizeof c->res);
    memset(c->rcpts, 0, sizeof c->rcpts);
    c->res.struct_size = sizeof c->res;
    c->res.attempts = c->attempts;
    c->res.attempt_stride = sizeof c->attempts[0];
    c->res.attempt_cap = 2;
    for (i = 0; i < 2; i++)
        c->attempts[i].struct_size = sizeof c->attempts[0];
    c->res.rcpts = c->rcpts;
    c->res.rcpt_stride = sizeof c->rcpts[0];
    c->res.rcpt_count = NRCPT;
    for (i = 0; i < NRCPT; i++)
        c->rcpts[i].struct_size = sizeof c->rcpts[0];
}

/* open() to one address, as the host does before send(). */
static aimx_session *
open_session(void *inst, struct call *c)
{
    aimx_addr addr;
    aimx_open_request req;
    aimx_session *session = NULL;

    memset(&addr, 0, sizeof addr);
    addr.family = AIMX_AF_INET;
    addr.bytes[0] = 192;
    addr.bytes[3] = 25;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.mx_host = "mx.example.com";
    req.addrs = &addr;
    req.addr_count = 1;
    init_result(c);
    assert_int_equal(
        descriptor()->transport->open(inst, &req, &session, &c->res), AIMX_OK);
    assert_int_equal(c->res.result_class, AIMX_CLASS_OK);
    assert_memory_equal(&c->res.remote, &addr, sizeof addr);
    assert_non_null(session);
    return session;
}

/* The envelope, the message and a fresh result for one send(). */
static void
prepare_send(struct call *c, const char *first_rcpt, size_t max_chunk)
{
    c->addrs[0] = first_rcpt;
    c->addrs[1] = "c@example.com";
    memset(&c->env, 0, sizeof c->env);
    c->env.struct_size = sizeof c->env;
    c->env.sender = "a@sender.test";
    c->env.rcpts = c->addrs;
    c->env.rcpt_count = NRCPT;
    c->env.message_size = sizeof message - 1;
    aimx_fake_msg_init(&c->msg, message, sizeof message - 1, max_chunk);
    init_result(c);
}

static aimx_status
do_send(void *inst, aimx_session *session, struct call *c)
{
    return descriptor()->transport->send(
        inst, session, &c->env, aimx_fake_msg_handle(&c->msg), &c->res);
}

/* The one *.eml file of the directory, read whole; no temporary left. */
static char *
read_only_file(char *name, size_t namelen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[600], *text;
    int n = 0;
    FILE *f;
    long len;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            assert_true(strcmp(e->d_name, ".") == 0 ||
                        strcmp(e->d_name, "..") == 0);
        else {
            snprintf(name, namelen, "%s", e->d_name);
            n++;
        }
    }
    closedir(d);
    assert_int_equal(n, 1);
    assert_non_null(strstr(name, ".eml"));
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return text;
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
    assert_int_equal(d->kind, AIMX_KIND_TRANSPORT);
    assert_string_equal(d->name, "transport-dir");
    assert_null(d->resolver);
    assert_null(d->policy);
    assert_non_null(d->transport);
    assert_non_null(d->transport->open);
    assert_non_null(d->transport->send);
    assert_non_null(d->transport->close);
}

/* ---- create() ------------------------------------------------------------ */

static void
test_create(void **state)
{
    void *inst;

    (void)state;
    assert_int_equal(create_with(dir, &inst), AIMX_OK);
    assert_true(aimx_fake_host_asked(&fh, "directory"));
    assert_int_equal(fh.error_count, 0);
    destroy_instance(inst);
}

static void
test_create_refuses_bad_directories(void **state)
{
    static const struct {
        const char *directory;
        const char *error;
    } bad[] = {
        {NULL, "needs 'directory'"},
        {"relative/dir", "directory: 'relative/dir' is not an absolute path"},
        {"/nonexistent/dir", "directory: /nonexistent/dir: No such file"},
        {"/dev/null", "directory: /dev/null is not a directory"},
    };
    void *inst;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(create_with(bad[i].directory, &inst),
                         AIMX_ERR_INVALID);
        assert_null(inst);
        if (!aimx_fake_host_has_error(&fh, bad[i].error))
            fail_msg("expected '%s', got '%s'", bad[i].error,
                     fh.error_count ? fh.errors[0] : "nothing");
        assert_int_equal(fh.alloc_live, 0);
    }
}

/* ---- send() -------------------------------------------------------------- */

static void
test_send_writes_one_file(void **state)
{
    void *inst;
    aimx_session *session;
    struct call c;
    char name[256], *text;
    size_t i;

    (void)state;
    assert_int_equal(create_with(dir, &inst), AIMX_OK);
    session = open_session(inst, &c);
    /* Small reads: the message arrives in pieces of 7 octets. */
    prepare_send(&c, "b@example.com", 7);
    assert_int_equal(do_send(inst, session, &c), AIMX_OK);
    assert_int_equal(c.res.result_class, AIMX_CLASS_OK);
    assert_int_equal(c.res.code, 250);
    assert_int_equal(c.res.phase, AIMX_PHASE_DOT);
    for (i = 0; i < NRCPT; i++) {
        assert_int_equal(c.rcpts[i].result_class, AIMX_CLASS_OK);
        assert_int_equal(c.rcpts[i].code, 250);
        assert_string_equal(c.rcpts[i].enhanced, "2.0.0");
        assert_non_null(strstr(c.rcpts[i].reply, "saved as "));
    }
    descriptor()->transport->close(inst, session, 0);

    /* The envelope as header fields, then the message byte for byte: not
     * dot-stuffed, CRLF kept. */
    text = read_only_file(name, sizeof name);
    assert_non_null(strstr(c.res.reply, name));
    assert_string_equal(text, "Return-Path: <a@sender.test>\r\n"
                              "Delivered-To: b@example.com\r\n"
                              "Delivered-To: c@example.com\r\n"
                              "From: a@sender.test\r\n"
                              "To: b@example.com\r\n"
                              "Subject: hi\r\n"
                              "\r\n"
                              ".a line that starts with a dot\r\n"
                              "hello\r\n");
    free(text);
    assert_int_equal(empty_dir(), 1);
    destroy_instance(inst);
}

static void
test_each_send_gets_its_own_file(void **state)
{
    void *inst;
    aimx_session *session;
    struct call c;

    (void)state;
    assert_int_equal(create_with(dir, &inst), AIMX_OK);
    session = open_session(inst, &c);
    for (int i = 0; i < 3; i++) {
        prepare_send(&c, "b@example.com", 0);
        assert_int_equal(do_send(inst, session, &c), AIMX_OK);
        assert_int_equal(c.res.result_class, AIMX_CLASS_OK);
    }
    descriptor()->transport->close(inst, session, 0);
    assert_int_equal(empty_dir(), 3);
    destroy_instance(inst);
}

/* The host cannot read the message: a temporary local failure, for every
 * recipient, and nothing left in the directory. */
static void
test_message_read_failure(void **state)
{
    void *inst;
    aimx_session *session;
    struct call c;
    size_t i;

    (void)state;
    assert_int_equal(create_with(dir, &inst), AIMX_OK);
    session = open_session(inst, &c);
    prepare_send(&c, "b@example.com", 0);
    c.msg.fail = 1;
    c.msg.fail_at = 20; /* after a first, good read */
    assert_int_equal(do_send(inst, session, &c), AIMX_OK);
    assert_int_equal(c.res.result_class, AIMX_CLASS_TEMPORARY);
    assert_int_equal(c.res.kind, AIMX_FAIL_LOCAL);
    assert_int_equal(c.res.scope, AIMX_SCOPE_MESSAGE);
    assert_non_null(strstr(c.res.reply, "cannot read the message into"));
    for (i = 0; i < NRCPT; i++)
        assert_int_equal(c.rcpts[i].result_class, AIMX_CLASS_TEMPORARY);
    descriptor()->transport->close(inst, session, 0);
    assert_int_equal(empty_dir(), 0);
    destroy_instance(inst);
}

/* The directory went away after create(): temporary, with the reason. */
static void
test_directory_gone(void **state)
{
    char gone[300];
    void *inst;
    aimx_session *session;
    struct call c;

    (void)state;
    snprintf(gone, sizeof gone, "%s/sub", dir);
    assert_int_equal(mkdir(gone, 0700), 0);
    assert_int_equal(create_with(gone, &inst), AIMX_OK);
    assert_int_equal(rmdir(gone), 0);
    session = open_session(inst, &c);
    prepare_send(&c, "b@example.com", 0);
    assert_int_equal(do_send(inst, session, &c), AIMX_OK);
    assert_int_equal(c.res.result_class, AIMX_CLASS_TEMPORARY);
    assert_non_null(strstr(c.res.reply, "cannot create"));
    assert_non_null(strstr(c.res.reply, "No such file or directory"));
    descriptor()->transport->close(inst, session, 0);
    destroy_instance(inst);
}

/* A line break in an address would forge a header field: refused. */
static void
test_line_break_in_address(void **state)
{
    void *inst;
    aimx_session *session;
    struct call c;

    (void)state;
    assert_int_equal(create_with(dir, &inst), AIMX_OK);
    session = open_session(inst, &c);
    prepare_send(&c, "b@example.com\r\nBcc: evil@example.net", 0);
    assert_int_equal(do_send(inst, session, &c), AIMX_OK);
    assert_int_equal(c.res.result_class, AIMX_CLASS_PERMANENT);
    assert_int_equal(c.rcpts[0].result_class, AIMX_CLASS_PERMANENT);
    descriptor()->transport->close(inst, session, 0);
    assert_int_equal(empty_dir(), 0);
    destroy_instance(inst);
}

/* What the host must never pass: refused, nothing written. */
static void
test_bad_calls(void **state)
{
    void *inst;
    aimx_session *session;
    struct call c;

    (void)state;
    assert_int_equal(create_with(dir, &inst), AIMX_OK);
    session = open_session(inst, &c);
    prepare_send(&c, "b@example.com", 0);
    assert_int_equal(do_send(inst, NULL, &c), AIMX_ERR_INVALID);
    /* The result's recipient array must match the envelope. */
    c.res.rcpt_count = 1;
    assert_int_equal(do_send(inst, session, &c), AIMX_ERR_INVALID);
    descriptor()->transport->close(inst, session, 0);
    assert_int_equal(empty_dir(), 0);
    destroy_instance(inst);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_create_refuses_bad_directories),
        cmocka_unit_test(test_send_writes_one_file),
        cmocka_unit_test(test_each_send_gets_its_own_file),
        cmocka_unit_test(test_message_read_failure),
        cmocka_unit_test(test_directory_gone),
        cmocka_unit_test(test_line_break_in_address),
        cmocka_unit_test(test_bad_calls),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
