/* SPDX-License-Identifier: MIT */
/*
 * transport-smtp against the fault-injecting SMTP peer
 * (tests/peers/smtp_fault_peer.py), one peer per case, started and stopped
 * by PID: every row of issue 5's classification table, and what the peer
 * recorded proves what went over the wire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "smtp_test_util.h"

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char MSG[] = "From: <a@x.test>\r\n"
                          "To: <b@y.test>\r\n"
                          "Subject: fault peer\r\n"
                          "\r\n"
                          "Hello.\r\n"
                          ".a line with a leading dot\r\n"
                          "..two\r\n"
                          ".\r\n"
                          "last line\r\n";

static const char *const ONE[] = {"b@y.test", NULL};
static const char *const THREE[] = {"b@y.test", "bad@y.test", "d@y.test", NULL};
static const char *const FIVE[] = {"r1@y.test", "r2@y.test", "r3@y.test",
                                   "r4@y.test", "r5@y.test", NULL};

/* Extensions of an EHLO reply without PIPELINING. */
#define NO_PIPELINING                                                          \
    "\"ehlo\": {\"extensions\": [\"SIZE 10485760\", \"8BITMIME\", "            \
    "\"SMTPUTF8\", \"ENHANCEDSTATUSCODES\"]}"

struct fx {
    struct t_plugin p;
    struct t_peer peer;
    struct t_result r;
    aimx_session *s;
};

/* A peer running script, and the plugin on its port with settings given
 * as key, value pairs (NULL-terminated). */
static struct fx *
fx_new(const char *script, ...)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *k, *v;
    va_list ap;

    assert_non_null(f);
    t_peer_fault(&f->peer, "127.0.0.1", script);
    va_start(ap, script);
    while ((k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        if (strcmp(k, "max_recipients") == 0)
            t_cfg_int(&f->p, k, atoi(v));
        else
            t_cfg_str(&f->p, k, v);
    }
    va_end(ap);
    t_plugin_create(&f->p, f->peer.port);
    return f;
}

static void
fx_open(struct fx *f)
{
    f->s = t_open1(&f->p, "127.0.0.1", &f->r);
    if (!f->s)
        fail_msg("open: %s", f->r.res.reply);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_OK);
    assert_int_equal(f->r.res.scope, AIMX_SCOPE_NONE);
}

static void
fx_send(struct fx *f, const char *const *rcpts, uint32_t flags)
{
    t_send(&f->p, f->s, "a@x.test", rcpts, flags, MSG, sizeof MSG - 1, 0, 0,
           &f->r);
}

static void
fx_free(struct fx *f)
{
    if (f->s)
        f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
    t_plugin_destroy(&f->p);
    t_peer_stop(&f->peer);
    free(f);
}

/* The peer's record of session n, once every session ended (ours is
 * closed first). */
static char *
fx_session(struct fx *f, int n)
{
    char name[64];
    char *json;

    if (f->s)
        f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
    f->s = NULL;
    t_peer_wait_idle(&f->peer);
    snprintf(name, sizeof name, "session-%d.json", n);
    json = t_peer_file(&f->peer, name, NULL);
    assert_non_null(json);
    return json;
}

/* The data_file of the index-th transaction with data equals the message
 * as it must be on the wire (dot-stuffed). */
static void
check_data(const char *json, size_t index, const char *msg, size_t len)
{
    char path[512];
    size_t got_len, want_len;
    char *got, *want;

    assert_true(t_json_string(json, "data_file", index, path, sizeof path));
    got = t_read_file(path, &got_len);
    assert_non_null(got);
    want = t_stuffed_for_peer(msg, len, &want_len);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, got_len);
    free(got);
    free(want);
}

static void
check_result(const aimx_transport_result *res, uint32_t cls, uint32_t scope,
             uint32_t phase, uint32_t kind)
{
    if (res->result_class != cls || res->scope != scope ||
        res->phase != phase || res->kind != kind)
        fail_msg("got class %u scope %u phase %u kind %u (%u %s \"%s\"), "
                 "want %u %u %u %u",
                 res->result_class, res->scope, res->phase, res->kind,
                 res->code, res->enhanced, res->reply, cls, scope, phase, kind);
}

static const aimx_rcpt_result *
rcpt(const struct fx *f, size_t i)
{
    return AIMX_RCPT_AT(&f->r.res, i);
}

/* Open with the greeting or EHLO failing: the result of open(). */
static struct fx *
fx_open_fails(const char *script)
{
    struct fx *f = fx_new(script, NULL);

    f->s = t_open1(&f->p, "127.0.0.1", &f->r);
    assert_null(f->s);
    assert_int_equal(f->r.res.attempt_count, 1);
    assert_int_equal(AIMX_ATTEMPT_AT(&f->r.res, 0)->outcome, AIMX_CONNECT_OK);
    assert_int_not_equal(f->r.res.connected_us, 0);
    return f;
}

static void
test_greeting_421(void **state)
{
    struct fx *f = fx_open_fails("{\"greeting\": \"421 4.3.2 busy, later\"}");

    (void)state;
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                 AIMX_PHASE_GREETING, AIMX_FAIL_REPLY);
    assert_int_equal(f->r.res.code, 421);
    assert_string_equal(f->r.res.enhanced, "4.3.2");
    assert_string_equal(f->r.res.reply, "busy, later");
    fx_free(f);
}

static void
test_greeting_554(void **state)
{
    struct fx *f = fx_open_fails("{\"greeting\": \"554 5.7.1 not you\"}");
    char *json;

    (void)state;
    check_result(&f->r.res, AIMX_CLASS_PERMANENT, AIMX_SCOPE_ADDRESS,
                 AIMX_PHASE_GREETING, AIMX_FAIL_REPLY);
    assert_int_equal(f->r.res.code, 554);
    /* RFC 5321 3.1: QUIT, and nothing else. */
    json = fx_session(f, 1);
    assert_non_null(strstr(json, "\"commands\": [\"QUIT\"]"));
    free(json);
    fx_free(f);
}

static void
test_ehlo_refused_helo(void **state)
{
    struct fx *f = fx_new("{\"ehlo_reject\": \"502 5.5.1 what is EHLO\"}",
                          "helo_name", "out.example.net", NULL);
    char *json;

    (void)state;
    fx_open(f);
    fx_send(f, ONE, AIMX_ENV_8BIT);
    check_result(&f->r.res, AIMX_CLASS_OK, AIMX_SCOPE_NONE, AIMX_PHASE_DOT,
                 AIMX_FAIL_NONE);
    f->p.ops->close(f->p.inst, f->s, 0);
    f->s = NULL;
    json = fx_session(f, 1);
    assert_non_null(strstr(json, "\"commands\": [\"EHLO out.example.net\", "
                                 "\"HELO out.example.net\", "
                                 "\"MAIL FROM:<a@x.test>\""));
    /* No extension after HELO: no SIZE=, no BODY=, no pipelining. */
    assert_non_null(strstr(json, "\"mail_params\": \"\""));
    assert_non_null(strstr(json, "\"end_reason\": \"quit\""));
    check_data(json, 0, MSG, sizeof MSG - 1);
    free(json);
    fx_free(f);
}

static void
test_ehlo_refused_5xx(void **state)
{
    struct fx *f = fx_open_fails(
        "{\"ehlo\": [\"550 5.7.1 go away\"], \"helo\": \"550 5.7.1 no\"}");

    (void)state;
    check_result(&f->r.res, AIMX_CLASS_PERMANENT, AIMX_SCOPE_ADDRESS,
                 AIMX_PHASE_EHLO, AIMX_FAIL_REPLY);
    assert_int_equal(f->r.res.code, 550);
    fx_free(f);
}

/* Every reply multiline, enhanced codes on each line, pipelined. */
static void
test_multiline_pipelined(void **state)
{
    struct fx *f = fx_new("{\"multiline_all\": true}", NULL);
    char *json;

    (void)state;
    fx_open(f);
    fx_send(f, FIVE, 0);
    check_result(&f->r.res, AIMX_CLASS_OK, AIMX_SCOPE_NONE, AIMX_PHASE_DOT,
                 AIMX_FAIL_NONE);
    assert_int_equal(f->r.res.code, 250);
    assert_string_equal(f->r.res.enhanced, "2.0.0");
    assert_string_equal(f->r.res.reply, "queued as X more (2/3) end (3/3)");
    assert_int_equal(rcpt(f, 4)->result_class, AIMX_CLASS_OK);
    assert_int_equal(rcpt(f, 4)->phase, AIMX_PHASE_DOT);
    json = fx_session(f, 1);
    assert_int_equal(t_count(json, "\"RCPT TO:<"), 5);
    check_data(json, 0, MSG, sizeof MSG - 1);
    free(json);
    fx_free(f);
}

static void
test_split_and_bare_lf(void **state)
{
    static const char *const scripts[] = {
        "{\"split_replies\": true, \"multiline_all\": true, "
        "\"split_pause_ms\": 0}",
        "{\"malformed\": \"bare_lf\"}",
    };
    struct fx *f;
    char *json;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(scripts); i++) {
        f = fx_new(scripts[i], NULL);
        fx_open(f);
        fx_send(f, THREE, 0);
        check_result(&f->r.res, AIMX_CLASS_OK, AIMX_SCOPE_NONE, AIMX_PHASE_DOT,
                     AIMX_FAIL_NONE);
        json = fx_session(f, 1);
        check_data(json, 0, MSG, sizeof MSG - 1);
        free(json);
        fx_free(f);
    }
}

static void
test_some_rcpt_refused(void **state)
{
    struct fx *f = fx_new("{\"rcpt\": {\"by_address\": {\"bad@y.test\": "
                          "\"550 5.1.1 no such user\"}}}",
                          NULL);
    char *json;

    (void)state;
    fx_open(f);
    fx_send(f, THREE, 0);
    check_result(&f->r.res, AIMX_CLASS_PERMANENT, AIMX_SCOPE_RECIPIENT,
                 AIMX_PHASE_RCPT, AIMX_FAIL_REPLY);
    assert_int_equal(rcpt(f, 0)->result_class, AIMX_CLASS_OK);
    assert_int_equal(rcpt(f, 0)->code, 250);
    assert_int_equal(rcpt(f, 1)->result_class, AIMX_CLASS_PERMANENT);
    assert_int_equal(rcpt(f, 1)->phase, AIMX_PHASE_RCPT);
    assert_int_equal(rcpt(f, 1)->code, 550);
    assert_string_equal(rcpt(f, 1)->enhanced, "5.1.1");
    assert_string_equal(rcpt(f, 1)->reply, "no such user");
    assert_int_equal(rcpt(f, 2)->result_class, AIMX_CLASS_OK);
    assert_int_equal(rcpt(f, 2)->phase, AIMX_PHASE_DOT);
    json = fx_session(f, 1);
    assert_non_null(strstr(json, "\"rcpts\": [\"b@y.test\", \"d@y.test\"]"));
    assert_non_null(strstr(json, "\"rcpts_rejected\": [\"bad@y.test\"]"));
    check_data(json, 0, MSG, sizeof MSG - 1);
    free(json);
    fx_free(f);
}

/* RFC 2920 3.1: DATA went in the group; accepted although every RCPT was
 * refused, it gets a lone dot: no message data. */
static void
test_all_rcpt_refused_pipelined(void **state)
{
    struct fx *f = fx_new("{\"rcpt\": {\"default\": \"550 5.1.1 nobody\"}, "
                          "\"data_without_rcpts\": true}",
                          NULL);
    char *json;
    size_t i;

    (void)state;
    fx_open(f);
    fx_send(f, THREE, 0);
    check_result(&f->r.res, AIMX_CLASS_PERMANENT, AIMX_SCOPE_RECIPIENT,
                 AIMX_PHASE_RCPT, AIMX_FAIL_REPLY);
    for (i = 0; i < 3; i++) {
        assert_int_equal(rcpt(f, i)->result_class, AIMX_CLASS_PERMANENT);
        assert_int_equal(rcpt(f, i)->code, 550);
    }
    /* The session is still in step: a second message goes through RSET. */
    fx_send(f, THREE, 0);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_PERMANENT);
    json = fx_session(f, 1);
    assert_int_equal(t_count(json, "\"DATA\""), 2);
    assert_int_equal(t_count(json, "\"RSET\""), 1);
    assert_non_null(strstr(json, "\"data_len\": 0"));
    assert_int_equal(t_count(json, "\"complete\": true"), 2);
    free(json);
    fx_free(f);
}

/* Without PIPELINING, no DATA is sent at all. */
static void
test_all_rcpt_refused_plain(void **state)
{
    struct fx *f = fx_new(
        "{\"rcpt\": {\"default\": \"450 4.2.0 later\"}, " NO_PIPELINING "}",
        NULL);
    char *json;

    (void)state;
    fx_open(f);
    fx_send(f, THREE, 0);
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_RECIPIENT,
                 AIMX_PHASE_RCPT, AIMX_FAIL_REPLY);
    assert_int_equal(rcpt(f, 2)->result_class, AIMX_CLASS_TEMPORARY);
    assert_int_equal(rcpt(f, 2)->code, 450);
    json = fx_session(f, 1);
    assert_int_equal(t_count(json, "\"DATA\""), 0);
    assert_int_equal(t_count(json, "\"RCPT TO:<"), 3);
    free(json);
    fx_free(f);
}

static void
check_split(struct fx *f, size_t expected_tx)
{
    char *json;
    size_t i;

    check_result(&f->r.res, AIMX_CLASS_OK, AIMX_SCOPE_NONE, AIMX_PHASE_DOT,
                 AIMX_FAIL_NONE);
    for (i = 0; i < 5; i++)
        assert_int_equal(rcpt(f, i)->result_class, AIMX_CLASS_OK);
    f->p.ops->close(f->p.inst, f->s, 0);
    f->s = NULL;
    json = fx_session(f, 1);
    /* One session, RSET between transactions, each with the message. */
    assert_non_null(strstr(json, "\"rcpts\": [\"r1@y.test\", \"r2@y.test\"]"));
    assert_non_null(strstr(json, "\"rcpts\": [\"r3@y.test\", \"r4@y.test\"]"));
    assert_non_null(strstr(json, "\"rcpts\": [\"r5@y.test\"]"));
    assert_int_equal(t_count(json, "\"MAIL FROM:"), expected_tx);
    assert_int_equal(t_count(json, "\"RSET\""), expected_tx - 1);
    for (i = 0; i < expected_tx; i++)
        check_data(json, i, MSG, sizeof MSG - 1);
    free(json);
    json = t_peer_file(&f->peer, "stats.json", NULL);
    assert_non_null(strstr(json, "\"sessions\": 1"));
    free(json);
}

/* "452 too many recipients" after 2: the rest in new transactions on the
 * same session, with and without PIPELINING. */
static void
test_rcpt_452_split(void **state)
{
    struct fx *f;

    (void)state;
    f = fx_new("{\"rcpt\": {\"max_per_transaction\": 2}}", NULL);
    fx_open(f);
    fx_send(f, FIVE, 0);
    check_split(f, 3);
    fx_free(f);

    f = fx_new("{\"rcpt\": {\"max_per_transaction\": 2}, " NO_PIPELINING "}",
               NULL);
    fx_open(f);
    fx_send(f, FIVE, 0);
    check_split(f, 3);
    fx_free(f);
}

/* The transport's own limit splits the same way. */
static void
test_max_recipients(void **state)
{
    struct fx *f = fx_new("{}", "max_recipients", "2", NULL);

    (void)state;
    fx_open(f);
    fx_send(f, FIVE, 0);
    check_split(f, 3);
    fx_free(f);
}

/* A 452 to the first RCPT of a transaction is that recipient's own
 * temporary failure (there is nothing to split). */
static void
test_rcpt_452_first(void **state)
{
    struct fx *f = fx_new("{\"rcpt\": {\"by_address\": {\"r1@y.test\": "
                          "\"452 4.3.1 out of space\"}}}",
                          NULL);

    (void)state;
    fx_open(f);
    fx_send(f, FIVE, 0);
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_RECIPIENT,
                 AIMX_PHASE_RCPT, AIMX_FAIL_REPLY);
    assert_int_equal(rcpt(f, 0)->result_class, AIMX_CLASS_TEMPORARY);
    assert_int_equal(rcpt(f, 0)->code, 452);
    assert_int_equal(rcpt(f, 1)->result_class, AIMX_CLASS_OK);
    assert_int_equal(rcpt(f, 4)->result_class, AIMX_CLASS_OK);
    fx_free(f);
}

static void
test_envelope_parameters(void **state)
{
    struct fx *f = fx_new("{}", NULL);
    static const char *const utf8[] = {"\xc3\xa9l\xc3\xa8ve@y.test", NULL};
    char *json, want[128];

    (void)state;
    fx_open(f);
    fx_send(f, ONE, AIMX_ENV_8BIT);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_OK);
    /* A non-ASCII address needs SMTPUTF8 even when the flag is missing. */
    t_send(&f->p, f->s, "a@x.test", utf8, 0, MSG, sizeof MSG - 1, 0, 0, &f->r);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_OK);
    json = fx_session(f, 1);
    snprintf(want, sizeof want, "\"mail_params\": \"SIZE=%zu BODY=8BITMIME\"",
             sizeof MSG - 1);
    assert_non_null(strstr(json, want));
    snprintf(want, sizeof want, "\"mail_params\": \"SIZE=%zu SMTPUTF8\"",
             sizeof MSG - 1);
    assert_non_null(strstr(json, want));
    assert_non_null(strstr(json, "\"EHLO example.org\""));
    free(json);
    fx_free(f);
}

static void
test_smtputf8_not_offered(void **state)
{
    struct fx *f = fx_new("{\"ehlo\": {\"extensions\": [\"PIPELINING\", "
                          "\"8BITMIME\"]}}",
                          NULL);
    char *json;

    (void)state;
    fx_open(f);
    fx_send(f, THREE, AIMX_ENV_SMTPUTF8);
    check_result(&f->r.res, AIMX_CLASS_PERMANENT, AIMX_SCOPE_HOST,
                 AIMX_PHASE_MAIL, AIMX_FAIL_UNSUPPORTED);
    assert_string_equal(f->r.res.enhanced, "5.6.7");
    assert_int_equal(rcpt(f, 1)->result_class, AIMX_CLASS_PERMANENT);
    json = fx_session(f, 1);
    assert_int_equal(t_count(json, "\"MAIL FROM:"), 0);
    free(json);
    fx_free(f);
}

static void
test_size_too_large(void **state)
{
    struct fx *f = fx_new("{\"ehlo\": {\"extensions\": [\"PIPELINING\", "
                          "\"SIZE 100\", \"ENHANCEDSTATUSCODES\"]}}",
                          NULL);
    char *json;

    (void)state;
    fx_open(f);
    fx_send(f, THREE, 0);
    check_result(&f->r.res, AIMX_CLASS_PERMANENT, AIMX_SCOPE_MESSAGE,
                 AIMX_PHASE_MAIL, AIMX_FAIL_TOO_LARGE);
    assert_string_equal(f->r.res.enhanced, "5.3.4");
    assert_non_null(strstr(f->r.res.reply, "100"));
    assert_int_equal(rcpt(f, 0)->result_class, AIMX_CLASS_PERMANENT);
    f->p.ops->close(f->p.inst, f->s, 0);
    f->s = NULL;
    json = fx_session(f, 1);
    /* Refused up front: not even MAIL, let alone DATA. */
    assert_int_equal(t_count(json, "\"MAIL FROM:"), 0);
    assert_int_equal(t_count(json, "\"DATA\""), 0);
    assert_non_null(strstr(json, "\"end_reason\": \"quit\""));
    free(json);
    fx_free(f);
}

static void
test_mail_refused(void **state)
{
    static const struct {
        const char *script;
        uint32_t cls;
        uint16_t code;
    } cases[] = {
        {"{\"mail\": \"451 4.3.0 try later\"}", AIMX_CLASS_TEMPORARY, 451},
        {"{\"mail\": \"553 5.7.1 sender refused\"}", AIMX_CLASS_PERMANENT, 553},
        {"{\"mail\": \"553 5.7.1 sender refused\", " NO_PIPELINING "}",
         AIMX_CLASS_PERMANENT, 553},
    };
    struct fx *f;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(cases); i++) {
        f = fx_new(cases[i].script, NULL);
        fx_open(f);
        fx_send(f, THREE, 0);
        check_result(&f->r.res, cases[i].cls, AIMX_SCOPE_MESSAGE,
                     AIMX_PHASE_MAIL, AIMX_FAIL_REPLY);
        assert_int_equal(f->r.res.code, cases[i].code);
        assert_int_equal(rcpt(f, 2)->result_class, cases[i].cls);
        assert_int_equal(rcpt(f, 2)->phase, AIMX_PHASE_MAIL);
        /* Every reply of the group was read: the session is in step. */
        fx_send(f, ONE, 0);
        assert_int_equal(f->r.res.phase, AIMX_PHASE_MAIL);
        assert_int_equal(f->r.res.code, cases[i].code);
        fx_free(f);
    }
}

/* 421 is the server closing the session, not a verdict on the message:
 * temporary, this address, whatever the command. */
static void
test_421_anywhere(void **state)
{
    static const char *const scripts[] = {
        "{\"mail\": \"421 4.3.2 shutting down\"}",
        "{\"rcpt\": {\"default\": \"421 4.3.2 shutting down\"}}",
        "{\"data\": \"421 4.3.2 shutting down\"}",
        "{\"dot\": \"421 4.3.2 shutting down\"}",
    };
    static const uint32_t phases[] = {AIMX_PHASE_MAIL, AIMX_PHASE_RCPT,
                                      AIMX_PHASE_DATA, AIMX_PHASE_DOT};
    struct fx *f;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(scripts); i++) {
        f = fx_new(scripts[i], NULL);
        fx_open(f);
        fx_send(f, ONE, 0);
        check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                     phases[i], AIMX_FAIL_REPLY);
        assert_int_equal(f->r.res.code, 421);
        assert_int_equal(rcpt(f, 0)->result_class, AIMX_CLASS_TEMPORARY);
        /* The session is over: no QUIT into a closed connection. */
        fx_send(f, ONE, 0);
        assert_int_equal(f->r.res.kind, AIMX_FAIL_LOST);
        fx_free(f);
    }
}

static void
test_data_and_dot_refused(void **state)
{
    static const struct {
        const char *script;
        uint32_t cls;
        uint32_t phase;
        uint16_t code;
    } cases[] = {
        {"{\"data\": \"554 5.6.0 no thanks\"}", AIMX_CLASS_PERMANENT,
         AIMX_PHASE_DATA, 554},
        {"{\"data\": \"451 4.3.0 later\"}", AIMX_CLASS_TEMPORARY,
         AIMX_PHASE_DATA, 451},
        {"{\"dot\": \"552 5.3.4 message too big\"}", AIMX_CLASS_PERMANENT,
         AIMX_PHASE_DOT, 552},
        {"{\"dot\": \"451 4.7.1 greylisted\"}", AIMX_CLASS_TEMPORARY,
         AIMX_PHASE_DOT, 451},
    };
    struct fx *f;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(cases); i++) {
        f = fx_new(cases[i].script, NULL);
        fx_open(f);
        fx_send(f, ONE, 0);
        check_result(&f->r.res, cases[i].cls, AIMX_SCOPE_MESSAGE,
                     cases[i].phase, AIMX_FAIL_REPLY);
        assert_int_equal(f->r.res.code, cases[i].code);
        assert_int_equal(f->r.res.flags, 0);
        assert_int_equal(rcpt(f, 0)->result_class, cases[i].cls);
        assert_int_equal(rcpt(f, 0)->phase, cases[i].phase);
        fx_free(f);
    }
}

/* One session, two messages: the first refused at the dot, the second
 * delivered after RSET. */
static void
test_session_reuse(void **state)
{
    struct fx *f =
        fx_new("{\"dot_by_transaction\": [\"451 4.3.0 later\"]}", NULL);
    char *json;

    (void)state;
    fx_open(f);
    fx_send(f, ONE, 0);
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_MESSAGE,
                 AIMX_PHASE_DOT, AIMX_FAIL_REPLY);
    fx_send(f, THREE, 0);
    check_result(&f->r.res, AIMX_CLASS_OK, AIMX_SCOPE_NONE, AIMX_PHASE_DOT,
                 AIMX_FAIL_NONE);
    json = fx_session(f, 1);
    assert_int_equal(t_count(json, "\"RSET\""), 1);
    check_data(json, 0, MSG, sizeof MSG - 1);
    check_data(json, 1, MSG, sizeof MSG - 1);
    free(json);
    fx_free(f);
}

/* Message octets made up as they are read: any size, no memory. */
struct gen_msg {
    uint64_t size, pos;
};

static int64_t
gen_read(aimx_msg *msg, void *buf, size_t len)
{
    struct gen_msg *g = (struct gen_msg *)(void *)msg;
    uint8_t *b = buf;
    size_t i, n = g->size - g->pos < len ? (size_t)(g->size - g->pos) : len;

    for (i = 0; i < n; i++, g->pos++)
        b[i] = g->pos % 80 == 78 ? '\r' : g->pos % 80 == 79 ? '\n' : 'm';
    return (int64_t)n;
}

static aimx_status
gen_rewind(aimx_msg *msg)
{
    ((struct gen_msg *)(void *)msg)->pos = 0;
    return AIMX_OK;
}

static void
send_generated(struct fx *f, uint64_t size)
{
    struct gen_msg g = {size, 0};
    aimx_envelope env;

    f->p.fh.api.msg_read = gen_read;
    f->p.fh.api.msg_rewind = gen_rewind;
    memset(&env, 0, sizeof env);
    env.struct_size = (uint32_t)sizeof env;
    env.sender = "a@x.test";
    env.rcpts = ONE;
    env.rcpt_count = 1;
    env.message_size = size;
    t_result_init(&f->r, 1);
    assert_int_equal(f->p.ops->send(f->p.inst, f->s, &env,
                                    (aimx_msg *)(void *)&g, &f->r.res),
                     AIMX_OK);
    t_result_check_guards(&f->r);
}

static void
test_drop_mid_data(void **state)
{
    struct fx *f =
        fx_new("{\"drop\": \"mid_data\", \"drop_after_bytes\": 1000, "
               "\"ehlo\": {\"extensions\": [\"PIPELINING\", \"8BITMIME\"]}}",
               NULL);
    char *json;

    (void)state;
    fx_open(f);
    /* Larger than every socket buffer between the two: the loss shows
     * while data is still going out. */
    send_generated(f, 64u << 20);
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                 AIMX_PHASE_BODY, AIMX_FAIL_LOST);
    assert_int_equal(f->r.res.flags, 0);
    assert_int_equal(rcpt(f, 0)->result_class, AIMX_CLASS_TEMPORARY);
    assert_int_equal(rcpt(f, 0)->phase, AIMX_PHASE_BODY);
    /* The session is gone; a second send says so at once. */
    send_generated(f, 10);
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                 AIMX_PHASE_MAIL, AIMX_FAIL_LOST);
    json = fx_session(f, 1);
    assert_non_null(strstr(json, "\"complete\": false"));
    free(json);
    fx_free(f);
}

static void
test_drop_after_dot(void **state)
{
    struct fx *f = fx_new("{\"drop\": \"after_dot\"}", NULL);
    char *json;
    size_t i;

    (void)state;
    fx_open(f);
    fx_send(f, THREE, 0);
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_MESSAGE,
                 AIMX_PHASE_DOT, AIMX_FAIL_LOST);
    assert_int_equal(f->r.res.flags, AIMX_RESULT_MAYBE_DELIVERED);
    for (i = 0; i < 3; i++) {
        assert_int_equal(rcpt(f, i)->result_class, AIMX_CLASS_TEMPORARY);
        assert_int_equal(rcpt(f, i)->phase, AIMX_PHASE_DOT);
    }
    json = fx_session(f, 1);
    assert_non_null(strstr(json, "\"complete\": true"));
    check_data(json, 0, MSG, sizeof MSG - 1);
    free(json);
    fx_free(f);
}

/* Lost at each stage before the data: temporary, this address. */
static void
test_drops_before_data(void **state)
{
    static const struct {
        const char *script;
        uint32_t phase;
        int at_open;
    } cases[] = {
        {"{\"drop\": \"greeting\"}", AIMX_PHASE_GREETING, 1},
        {"{\"drop\": \"after_greeting\"}", AIMX_PHASE_EHLO, 1},
        {"{\"drop\": \"at_mail\"}", AIMX_PHASE_MAIL, 0},
        {"{\"drop\": \"at_rcpt\"}", AIMX_PHASE_RCPT, 0},
        {"{\"drop\": \"at_data\"}", AIMX_PHASE_DATA, 0},
        {"{\"drop\": \"at_rcpt\", \"drop_reset\": true}", AIMX_PHASE_RCPT, 0},
        {"{\"drop\": \"at_data\", " NO_PIPELINING "}", AIMX_PHASE_DATA, 0},
    };
    struct fx *f;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(cases); i++) {
        f = fx_new(cases[i].script, NULL);
        if (cases[i].at_open) {
            f->s = t_open1(&f->p, "127.0.0.1", &f->r);
            assert_null(f->s);
        } else {
            fx_open(f);
            fx_send(f, THREE, 0);
            assert_int_equal(rcpt(f, 1)->result_class, AIMX_CLASS_TEMPORARY);
        }
        check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                     cases[i].phase, AIMX_FAIL_LOST);
        assert_int_equal(f->r.res.flags, 0);
        fx_free(f);
    }
}

/* A server slower than a short timeout, phase by phase. */
static void
test_phase_timeouts(void **state)
{
    static const struct {
        const char *delay; /* delays_ms key */
        const char *setting;
        uint32_t phase;
        uint32_t scope;
        uint32_t flags;
        int at_open;
    } cases[] = {
        {"greeting", "timeouts.greeting", AIMX_PHASE_GREETING,
         AIMX_SCOPE_ADDRESS, 0, 1},
        {"ehlo", "timeouts.ehlo", AIMX_PHASE_EHLO, AIMX_SCOPE_ADDRESS, 0, 1},
        {"mail", "timeouts.mail", AIMX_PHASE_MAIL, AIMX_SCOPE_ADDRESS, 0, 0},
        {"rcpt", "timeouts.rcpt", AIMX_PHASE_RCPT, AIMX_SCOPE_ADDRESS, 0, 0},
        {"data", "timeouts.data", AIMX_PHASE_DATA, AIMX_SCOPE_ADDRESS, 0, 0},
        {"dot", "timeouts.dot", AIMX_PHASE_DOT, AIMX_SCOPE_MESSAGE,
         AIMX_RESULT_MAYBE_DELIVERED, 0},
    };
    char script[128];
    struct fx *f;
    uint64_t t0, took;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(cases); i++) {
        snprintf(script, sizeof script, "{\"delays_ms\": {\"%s\": 4000}}",
                 cases[i].delay);
        f = fx_new(script, cases[i].setting, "300ms", NULL);
        t0 = t_now_us();
        if (cases[i].at_open) {
            f->s = t_open1(&f->p, "127.0.0.1", &f->r);
            assert_null(f->s);
        } else {
            fx_open(f);
            t0 = t_now_us();
            fx_send(f, ONE, 0);
        }
        took = t_now_us() - t0;
        check_result(&f->r.res, AIMX_CLASS_TEMPORARY, cases[i].scope,
                     cases[i].phase, AIMX_FAIL_TIMEOUT);
        assert_int_equal(f->r.res.flags, cases[i].flags);
        assert_non_null(strstr(f->r.res.reply, "300ms"));
        if (took < 290000 || took > 3000000)
            fail_msg("%s: took %llu us", cases[i].delay,
                     (unsigned long long)took);
        fx_free(f);
    }
}

/* close() does not wait for a slow 221 longer than timeouts.quit. */
static void
test_quit_timeout(void **state)
{
    struct fx *f = fx_new("{\"delays_ms\": {\"quit\": 4000}}", "timeouts.quit",
                          "300ms", NULL);
    uint64_t t0, took;

    (void)state;
    fx_open(f);
    t0 = t_now_us();
    f->p.ops->close(f->p.inst, f->s, 0);
    took = t_now_us() - t0;
    f->s = NULL;
    assert_true(took >= 290000 && took < 3000000);
    /* The call's deadline bounds it too. */
    fx_open(f);
    t0 = t_now_us();
    f->p.ops->close(f->p.inst, f->s, t_now_us() + 100000);
    took = t_now_us() - t0;
    f->s = NULL;
    assert_true(took < 290000);
    fx_free(f);
}

struct stopper {
    struct t_peer *peer;
    int stopped;
    atomic_int done; /* the send returned: give up */
};

/* Stops the peer (SIGSTOP) once it is reading message data: from then on
 * nothing reads the socket, and the client's writes block. */
static void *
stop_peer_in_data(void *arg)
{
    struct stopper *st = arg;
    struct timespec tick = {0, 1000000L};
    unsigned i;
    char *json;

    for (i = 0; i < 20000 && !st->stopped && !atomic_load(&st->done); i++) {
        json = t_peer_file(st->peer, "session-1.json", NULL);
        if (json && strstr(json, "\"data_file\": \"/")) {
            kill(st->peer->pid, SIGSTOP);
            st->stopped = 1;
        }
        free(json);
        nanosleep(&tick, NULL);
    }
    return NULL;
}

static void
test_block_timeout(void **state)
{
    /* No SIZE: the 2 GB message must not be refused up front. */
    struct fx *f = fx_new("{\"ehlo\": {\"extensions\": [\"PIPELINING\"]}}",
                          "timeouts.block", "300ms", NULL);
    struct stopper st;
    pthread_t th;

    (void)state;
    st.peer = &f->peer;
    st.stopped = 0;
    atomic_init(&st.done, 0);
    fx_open(f);
    assert_int_equal(pthread_create(&th, NULL, stop_peer_in_data, &st), 0);
    send_generated(f, (uint64_t)1 << 31);
    atomic_store(&st.done, 1);
    pthread_join(th, NULL);
    assert_true(st.stopped);
    kill(f->peer.pid, SIGCONT);
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                 AIMX_PHASE_BODY, AIMX_FAIL_TIMEOUT);
    assert_non_null(strstr(f->r.res.reply, "300ms"));
    fx_free(f);
}

/* The call's deadline ends a phase with a long timeout. */
static void
test_call_deadline(void **state)
{
    struct fx *f = fx_new("{\"delays_ms\": {\"rcpt\": 4000}}", NULL);
    uint64_t t0;

    (void)state;
    fx_open(f);
    t0 = t_now_us();
    t_send(&f->p, f->s, "a@x.test", ONE, 0, MSG, sizeof MSG - 1, 0, 300, &f->r);
    assert_true(t_now_us() - t0 < 3000000);
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                 AIMX_PHASE_RCPT, AIMX_FAIL_TIMEOUT);
    assert_non_null(strstr(f->r.res.reply, "deadline"));
    fx_free(f);
}

struct aborter {
    const aimx_transport_ops *ops;
    void *inst;
    unsigned after_ms;
};

static void *
abort_later(void *arg)
{
    struct aborter *a = arg;
    struct timespec ts = {a->after_ms / 1000,
                          (long)(a->after_ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
    a->ops->abort(a->inst);
    return NULL;
}

/* abort() from another thread during a slow phase ends the call at once. */
static void
test_abort_slow_phase(void **state)
{
    static const struct {
        const char *delay;
        uint32_t phase;
        uint32_t scope;
        uint32_t flags;
        int at_open;
    } cases[] = {
        {"greeting", AIMX_PHASE_GREETING, AIMX_SCOPE_ADDRESS, 0, 1},
        {"rcpt", AIMX_PHASE_RCPT, AIMX_SCOPE_ADDRESS, 0, 0},
        {"dot", AIMX_PHASE_DOT, AIMX_SCOPE_MESSAGE, AIMX_RESULT_MAYBE_DELIVERED,
         0},
    };
    char script[128];
    struct aborter ab;
    pthread_t th;
    struct fx *f;
    uint64_t t0;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(cases); i++) {
        snprintf(script, sizeof script, "{\"delays_ms\": {\"%s\": 10000}}",
                 cases[i].delay);
        f = fx_new(script, NULL);
        if (!cases[i].at_open)
            fx_open(f);
        ab.ops = f->p.ops;
        ab.inst = f->p.inst;
        ab.after_ms = 300;
        assert_int_equal(pthread_create(&th, NULL, abort_later, &ab), 0);
        t0 = t_now_us();
        if (cases[i].at_open) {
            f->s = t_open1(&f->p, "127.0.0.1", &f->r);
            assert_null(f->s);
        } else {
            fx_send(f, ONE, 0);
        }
        assert_true(t_now_us() - t0 < 3000000);
        pthread_join(th, NULL);
        check_result(&f->r.res, AIMX_CLASS_TEMPORARY, cases[i].scope,
                     cases[i].phase, AIMX_FAIL_ABORTED);
        assert_int_equal(f->r.res.flags, cases[i].flags);
        /* Sticky: the next call ends at once. */
        if (f->s) {
            t0 = t_now_us();
            fx_send(f, ONE, 0);
            assert_int_equal(f->r.res.kind, AIMX_FAIL_ABORTED);
            assert_true(t_now_us() - t0 < 1000000);
        }
        fx_free(f);
    }
}

static void
test_malformed(void **state)
{
    static const struct {
        const char *kind;
        uint32_t phase;
        const char *why;
    } cases[] = {
        {"mixed_codes", AIMX_PHASE_EHLO, "different codes"},
        {"long_line", AIMX_PHASE_EHLO, "too long"},
        {"many_lines", AIMX_PHASE_EHLO, "too many lines"},
        {"garbage", AIMX_PHASE_GREETING, "reply code"},
    };
    char script[128];
    struct fx *f;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(cases); i++) {
        snprintf(script, sizeof script, "{\"malformed\": \"%s\"}",
                 cases[i].kind);
        f = fx_open_fails(script);
        check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                     cases[i].phase, AIMX_FAIL_PROTOCOL);
        if (!strstr(f->r.res.reply, cases[i].why))
            fail_msg("%s: \"%s\"", cases[i].kind, f->r.res.reply);
        fx_free(f);
    }
}

/* An address SMTP cannot carry is refused before it can inject a command;
 * the others go. */
static void
test_invalid_address(void **state)
{
    static const char *const rcpts[] = {"b@y.test", "x@y.test>\r\nRSET", NULL};
    struct fx *f = fx_new("{}", NULL);
    char *json;

    (void)state;
    fx_open(f);
    fx_send(f, rcpts, 0);
    check_result(&f->r.res, AIMX_CLASS_PERMANENT, AIMX_SCOPE_RECIPIENT,
                 AIMX_PHASE_RCPT, AIMX_FAIL_LOCAL);
    assert_int_equal(rcpt(f, 0)->result_class, AIMX_CLASS_OK);
    assert_int_equal(rcpt(f, 1)->result_class, AIMX_CLASS_PERMANENT);
    assert_string_equal(rcpt(f, 1)->enhanced, "5.1.3");
    json = fx_session(f, 1);
    assert_int_equal(t_count(json, "\"RCPT TO:<"), 1);
    assert_int_equal(t_count(json, "RSET"), 0);
    free(json);
    fx_free(f);
}

/* Addresses in order: the first refused, the second taken; both in the
 * attempts, and the session's addresses are the real ones. */
static void
test_addresses_in_order(void **state)
{
    struct fx *f = fx_new("{}", NULL);
    aimx_addr addrs[2];
    char *json, want[64];
    uint16_t local_port;

    (void)state;
    addrs[0] = t_addr("127.0.0.2");
    addrs[1] = t_addr("127.0.0.1");
    f->s = t_open(&f->p, addrs, 2, 10000, &f->r);
    assert_non_null(f->s);
    assert_int_equal(f->r.res.attempt_count, 2);
    assert_int_equal(AIMX_ATTEMPT_AT(&f->r.res, 0)->outcome,
                     AIMX_CONNECT_REFUSED);
    assert_int_equal(AIMX_ATTEMPT_AT(&f->r.res, 1)->outcome, AIMX_CONNECT_OK);
    assert_memory_equal(&f->r.res.remote, &addrs[1], sizeof addrs[1]);
    assert_int_equal(f->r.res.remote_port, f->peer.port);
    assert_int_equal(f->r.res.local.family, AIMX_AF_INET);
    assert_int_equal(AIMX_ATTEMPT_AT(&f->r.res, 1)->local_port,
                     f->r.res.local_port);
    assert_true(f->r.res.connected_us >= f->r.res.start_us);
    assert_true(f->r.res.end_us >= f->r.res.connected_us);
    assert_int_equal(f->r.res.code, 250);
    local_port = f->r.res.local_port;
    fx_send(f, ONE, 0);
    /* send() reports the session's addresses too. */
    assert_int_equal(f->r.res.local_port, local_port);
    assert_memory_equal(&f->r.res.remote, &addrs[1], sizeof addrs[1]);
    json = fx_session(f, 1);
    snprintf(want, sizeof want, "\"peer\": \"127.0.0.1:%u\"",
             (unsigned)local_port);
    assert_non_null(strstr(json, want));
    free(json);
    fx_free(f);
}

static void
test_ipv6(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char *json;

    (void)state;
    assert_non_null(f);
    t_peer_fault(&f->peer, "::1", "{}");
    t_plugin_create(&f->p, f->peer.port);
    f->s = t_open1(&f->p, "::1", &f->r);
    assert_non_null(f->s);
    assert_int_equal(f->r.res.remote.family, AIMX_AF_INET6);
    assert_int_equal(f->r.res.local.family, AIMX_AF_INET6);
    fx_send(f, THREE, 0);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_OK);
    json = fx_session(f, 1);
    assert_non_null(strstr(json, "\"client_addr\": \"::1\""));
    check_data(json, 0, MSG, sizeof MSG - 1);
    free(json);
    fx_free(f);
}

static void
test_probe(void **state)
{
    struct fx *f = fx_new("{}", NULL);
    aimx_addr a = t_addr("127.0.0.1");
    aimx_open_request req;
    char *json;

    (void)state;
    memset(&req, 0, sizeof req);
    req.struct_size = (uint32_t)sizeof req;
    req.mx_host = "mx.test";
    req.addrs = &a;
    req.addr_count = 1;
    t_result_init(&f->r, 0);
    assert_int_equal(f->p.ops->probe(f->p.inst, &req, &f->r.res), AIMX_OK);
    check_result(&f->r.res, AIMX_CLASS_OK, AIMX_SCOPE_NONE, AIMX_PHASE_QUIT,
                 AIMX_FAIL_NONE);
    assert_int_equal(f->r.res.attempt_count, 1);
    assert_int_not_equal(f->r.res.connected_us, 0);
    json = fx_session(f, 1);
    assert_non_null(
        strstr(json, "\"commands\": [\"EHLO example.org\", \"QUIT\"]"));
    assert_non_null(strstr(json, "\"end_reason\": \"quit\""));
    free(json);
    fx_free(f);
}

/* A listener on 127.0.0.1:port whose accept queue is full: SYNs to it
 * go unanswered, like a path that drops them (no root, no firewall). */
struct silent {
    int listener;
    int fillers[4];
};

static void
silent_open(struct silent *b, int port)
{
    struct sockaddr_in sin;
    struct timespec pause = {0, 50 * 1000000L};
    size_t i;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    b->listener = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(b->listener >= 0);
    if (bind(b->listener, (struct sockaddr *)&sin, sizeof sin) != 0)
        fail_msg("127.0.0.1:%d is taken", port);
    assert_int_equal(listen(b->listener, 0), 0);
    for (i = 0; i < COUNT(b->fillers); i++) {
        b->fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(b->fillers[i] >= 0);
        (void)connect(b->fillers[i], (struct sockaddr *)&sin, sizeof sin);
        nanosleep(&pause, NULL);
    }
}

static void
silent_close(struct silent *b)
{
    size_t i;

    for (i = 0; i < COUNT(b->fillers); i++)
        close(b->fillers[i]);
    close(b->listener);
}

/* Happy Eyeballs on loopback: the preferred address is silent, the next
 * one starts after the connection attempt delay while the first is still
 * pending, and wins; the first is abandoned.  (The namespace test does
 * the same with an IPv6 address and a firewall DROP rule.) */
static void
test_race_silent_first(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct silent b;
    aimx_addr addrs[2];
    const aimx_connect_attempt *a0, *a1;

    (void)state;
    assert_non_null(f);
    t_peer_fault(&f->peer, "127.0.0.2", "{}");
    silent_open(&b, f->peer.port);
    t_cfg_str(&f->p, "connection_attempt_delay", "100ms");
    t_plugin_create(&f->p, f->peer.port);
    addrs[0] = t_addr("127.0.0.1");
    addrs[1] = t_addr("127.0.0.2");
    f->s = t_open(&f->p, addrs, 2, 20000, &f->r);
    if (!f->s)
        fail_msg("open: %s", f->r.res.reply);
    assert_int_equal(f->r.res.attempt_count, 2);
    a0 = AIMX_ATTEMPT_AT(&f->r.res, 0);
    a1 = AIMX_ATTEMPT_AT(&f->r.res, 1);
    assert_int_equal(a0->outcome, AIMX_CONNECT_ABANDONED);
    assert_int_equal(a1->outcome, AIMX_CONNECT_OK);
    /* The order of events: the second started while the first was
     * pending, and ended (won) before the first was given up. */
    assert_true(a0->start_us < a1->start_us);
    assert_true(a1->start_us < a0->end_us);
    assert_true(a1->end_us <= a0->end_us);
    assert_memory_equal(&f->r.res.remote, &addrs[1], sizeof addrs[1]);
    assert_int_equal(f->r.res.connected_us, a1->end_us);
    fx_send(f, ONE, 0);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_OK);
    fx_free(f);
    silent_close(&b);
}

/* Both alive: the first (preferred) address wins, the second is never
 * started (or, on a slow machine, abandoned). */
static void
test_race_both_alive(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    aimx_addr addrs[2];
    uint32_t o1;

    (void)state;
    assert_non_null(f);
    t_peer_fault(&f->peer, "127.0.0.2,127.0.0.3", "{}");
    t_plugin_create(&f->p, f->peer.port);
    addrs[0] = t_addr("127.0.0.3");
    addrs[1] = t_addr("127.0.0.2");
    f->s = t_open(&f->p, addrs, 2, 20000, &f->r);
    assert_non_null(f->s);
    assert_int_equal(f->r.res.attempt_count, 2);
    assert_int_equal(AIMX_ATTEMPT_AT(&f->r.res, 0)->outcome, AIMX_CONNECT_OK);
    o1 = AIMX_ATTEMPT_AT(&f->r.res, 1)->outcome;
    assert_true(o1 == AIMX_CONNECT_NOT_STARTED || o1 == AIMX_CONNECT_ABANDONED);
    assert_memory_equal(&f->r.res.remote, &addrs[0], sizeof addrs[0]);
    fx_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_421),
        cmocka_unit_test(test_greeting_554),
        cmocka_unit_test(test_ehlo_refused_helo),
        cmocka_unit_test(test_ehlo_refused_5xx),
        cmocka_unit_test(test_multiline_pipelined),
        cmocka_unit_test(test_split_and_bare_lf),
        cmocka_unit_test(test_some_rcpt_refused),
        cmocka_unit_test(test_all_rcpt_refused_pipelined),
        cmocka_unit_test(test_all_rcpt_refused_plain),
        cmocka_unit_test(test_rcpt_452_split),
        cmocka_unit_test(test_max_recipients),
        cmocka_unit_test(test_rcpt_452_first),
        cmocka_unit_test(test_envelope_parameters),
        cmocka_unit_test(test_smtputf8_not_offered),
        cmocka_unit_test(test_size_too_large),
        cmocka_unit_test(test_mail_refused),
        cmocka_unit_test(test_421_anywhere),
        cmocka_unit_test(test_data_and_dot_refused),
        cmocka_unit_test(test_session_reuse),
        cmocka_unit_test(test_drop_mid_data),
        cmocka_unit_test(test_drop_after_dot),
        cmocka_unit_test(test_drops_before_data),
        cmocka_unit_test(test_phase_timeouts),
        cmocka_unit_test(test_quit_timeout),
        cmocka_unit_test(test_block_timeout),
        cmocka_unit_test(test_call_deadline),
        cmocka_unit_test(test_abort_slow_phase),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_invalid_address),
        cmocka_unit_test(test_addresses_in_order),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_race_silent_first),
        cmocka_unit_test(test_race_both_alive),
    };
    return cmocka_run_group_tests(tests, NULL, t_peers_cleanup);
}
