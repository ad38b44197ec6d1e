/* SPDX-License-Identifier: MIT */
/*
 * transport-smtp against a real third-party SMTP server: Debian's aiosmtpd
 * (tests/peers/aiosmtpd_sink.py), started and stopped by PID.  What the
 * server received equals the canonical message octet for octet: aiosmtpd
 * undoes dot-stuffing, keeps CRLF and 8-bit octets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "smtp_test_util.h"

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char MSG[] = "From: <sender@x.test>\r\n"
                          "To: <rcpt@y.test>\r\n"
                          "Subject: =?utf-8?q?caf=C3=A9?=\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n"
                          "Content-Transfer-Encoding: 8bit\r\n"
                          "\r\n"
                          "caf\xc3\xa9 \xe2\x82\xac \xff\x80 octets\r\n"
                          ".one leading dot\r\n"
                          "..two leading dots\r\n"
                          ".\r\n"
                          "..\r\n"
                          "a line . with dots .\r\n"
                          "\r\n"
                          ".\r\n"
                          "end\r\n";

static const char *const ONE[] = {"rcpt@y.test", NULL};

struct fx {
    struct t_plugin p;
    struct t_peer peer;
    struct t_result r;
    aimx_session *s;
};

static struct fx *
fx_new(const char *listen, const char *const *extra, int max_rcpt)
{
    struct fx *f = calloc(1, sizeof *f);

    assert_non_null(f);
    t_peer_sink(&f->peer, listen, extra);
    if (max_rcpt)
        t_cfg_int(&f->p, "max_recipients", max_rcpt);
    t_plugin_create(&f->p, f->peer.port);
    return f;
}

static void
fx_open(struct fx *f, const char *addr)
{
    f->s = t_open1(&f->p, addr, &f->r);
    if (!f->s)
        fail_msg("open: %s", f->r.res.reply);
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

/* Message n as aiosmtpd recorded it equals want[0..len). */
static char *
check_received(struct fx *f, int n, const char *want, size_t len)
{
    char name[32];
    size_t got_len;
    char *got, *json;

    snprintf(name, sizeof name, "msg-%d.json", n);
    assert_true(t_peer_wait_file(&f->peer, name, 10000));
    json = t_peer_file(&f->peer, name, NULL);
    snprintf(name, sizeof name, "msg-%d.eml", n);
    got = t_peer_file(&f->peer, name, &got_len);
    assert_non_null(got);
    if (got_len != len || memcmp(got, want, len) != 0)
        fail_msg("msg-%d: %zu octets received, %zu sent", n, got_len, len);
    free(got);
    return json;
}

static void
test_bytes_received(void **state)
{
    struct fx *f = fx_new("127.0.0.1", NULL, 0);
    static const size_t chunks[] = {0, 1, 2, 7, 64};
    char *json;
    size_t i;

    (void)state;
    fx_open(f, "127.0.0.1");
    /* aiosmtpd offers no PIPELINING: commands one by one.  Short reads
     * of the message put '.' and CRLF across block edges. */
    for (i = 0; i < COUNT(chunks); i++) {
        t_send(&f->p, f->s, "sender@x.test", ONE, AIMX_ENV_8BIT, MSG,
               sizeof MSG - 1, chunks[i], 0, &f->r);
        if (f->r.res.result_class != AIMX_CLASS_OK)
            fail_msg("send: %s", f->r.res.reply);
        assert_int_equal(f->r.res.code, 250);
        assert_non_null(strstr(f->r.res.reply, "queued as msg-"));
        assert_int_equal(AIMX_RCPT_AT(&f->r.res, 0)->result_class,
                         AIMX_CLASS_OK);
        json = check_received(f, (int)i + 1, MSG, sizeof MSG - 1);
        assert_non_null(strstr(json, "\"mail_from\": \"sender@x.test\""));
        assert_non_null(strstr(json, "\"rcpt_tos\": [\"rcpt@y.test\"]"));
        assert_non_null(strstr(json, "\"BODY=8BITMIME\""));
        assert_non_null(strstr(json, "\"ehlo_name\": \"example.org\""));
        assert_non_null(strstr(json, "\"extended_smtp\": true"));
        assert_non_null(strstr(json, "\"session\": 1,"));
        free(json);
    }
    fx_free(f);
}

/* The last line's CRLF is added when missing; an empty message stays
 * empty; the null sender is <>. */
static void
test_edges(void **state)
{
    static const char no_crlf[] = "Subject: x\r\n\r\nno line end";
    static const char with_crlf[] = "Subject: x\r\n\r\nno line end\r\n";
    struct fx *f = fx_new("127.0.0.1", NULL, 0);
    char *json;

    (void)state;
    fx_open(f, "127.0.0.1");
    t_send(&f->p, f->s, "a@x.test", ONE, 0, no_crlf, sizeof no_crlf - 1, 3, 0,
           &f->r);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_OK);
    free(check_received(f, 1, with_crlf, sizeof with_crlf - 1));
    t_send(&f->p, f->s, "", ONE, 0, "", 0, 0, 0, &f->r);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_OK);
    json = check_received(f, 2, "", 0);
    assert_non_null(strstr(json, "\"mail_from\": \"<>\"") ||
                    strstr(json, "\"mail_from\": \"\""));
    free(json);
    fx_free(f);
}

/* Random canonical messages, random short reads, one session. */
static void
test_random_messages(void **state)
{
    static const char alphabet[] = ".....abcXYZ \t-=\xc3\xa9\xff";
    struct fx *f = fx_new("127.0.0.1", NULL, 0);
    char *msg = malloc(20000);
    size_t len, line, i, chunk;
    int n;

    (void)state;
    assert_non_null(msg);
    srand(4242);
    fx_open(f, "127.0.0.1");
    for (n = 1; n <= 12; n++) {
        len = 0;
        while (len < 15000) {
            line = (size_t)rand() % (n % 3 ? 80 : 990);
            for (i = 0; i < line; i++)
                msg[len++] = alphabet[(size_t)rand() % (sizeof alphabet - 1)];
            msg[len++] = '\r';
            msg[len++] = '\n';
        }
        chunk = (size_t)rand() % 200;
        t_send(&f->p, f->s, "a@x.test", ONE, AIMX_ENV_8BIT, msg, len, chunk, 0,
               &f->r);
        if (f->r.res.result_class != AIMX_CLASS_OK)
            fail_msg("message %d: %s", n, f->r.res.reply);
        free(check_received(f, n, msg, len));
    }
    free(msg);
    fx_free(f);
}

static void
test_smtputf8(void **state)
{
    static const char *const extra[] = {"--smtputf8", NULL};
    static const char *const rcpts[] = {"j\xc3\xbcrgen@b\xc3\xbc"
                                        "cher.test",
                                        NULL};
    struct fx *f = fx_new("127.0.0.1", extra, 0);
    char *json;

    (void)state;
    fx_open(f, "127.0.0.1");
    t_send(&f->p, f->s, "\xc3\xa9l\xc3\xa8ve@x.test", rcpts,
           AIMX_ENV_SMTPUTF8 | AIMX_ENV_8BIT, MSG, sizeof MSG - 1, 0, 0, &f->r);
    if (f->r.res.result_class != AIMX_CLASS_OK)
        fail_msg("send: %s", f->r.res.reply);
    json = check_received(f, 1, MSG, sizeof MSG - 1);
    assert_non_null(strstr(json, "\"SMTPUTF8\""));
    assert_non_null(strstr(json, "\"smtp_utf8\": true"));
    assert_non_null(strstr(json, "j\\u00fcrgen@b\\u00fccher.test"));
    free(json);
    fx_free(f);

    /* Not offered (aiosmtpd's default): refused before MAIL. */
    f = fx_new("127.0.0.1", NULL, 0);
    fx_open(f, "127.0.0.1");
    t_send(&f->p, f->s, "a@x.test", rcpts, AIMX_ENV_SMTPUTF8, MSG,
           sizeof MSG - 1, 0, 0, &f->r);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_PERMANENT);
    assert_int_equal(f->r.res.scope, AIMX_SCOPE_HOST);
    assert_int_equal(f->r.res.kind, AIMX_FAIL_UNSUPPORTED);
    fx_free(f);
}

static void
test_size(void **state)
{
    static const char *const extra[] = {"--data-size-limit", "300", NULL};
    struct fx *f = fx_new("127.0.0.1", extra, 0);
    char *big = malloc(1000), *json, want[64];
    size_t i;

    (void)state;
    assert_non_null(big);
    for (i = 0; i < 1000; i++)
        big[i] = i % 50 == 48 ? '\r' : i % 50 == 49 ? '\n' : 'b';
    fx_open(f, "127.0.0.1");
    t_send(&f->p, f->s, "a@x.test", ONE, 0, big, 1000, 0, 0, &f->r);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_PERMANENT);
    assert_int_equal(f->r.res.scope, AIMX_SCOPE_MESSAGE);
    assert_int_equal(f->r.res.kind, AIMX_FAIL_TOO_LARGE);
    assert_int_equal(f->r.res.phase, AIMX_PHASE_MAIL);
    /* A message that fits goes, with SIZE=. */
    t_send(&f->p, f->s, "a@x.test", ONE, 0, big, 200, 0, 0, &f->r);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_OK);
    json = check_received(f, 1, big, 200);
    snprintf(want, sizeof want, "\"SIZE=200\"");
    assert_non_null(strstr(json, want));
    free(json);
    free(big);
    fx_free(f);
}

/* max_recipients 2, five recipients: three transactions, one session. */
static void
test_recipient_split(void **state)
{
    static const char *const five[] = {"r1@y.test", "r2@y.test", "r3@y.test",
                                       "r4@y.test", "r5@y.test", NULL};
    struct fx *f = fx_new("127.0.0.1", NULL, 2);
    char *json;
    int n;

    (void)state;
    fx_open(f, "127.0.0.1");
    t_send(&f->p, f->s, "a@x.test", five, 0, MSG, sizeof MSG - 1, 0, 0, &f->r);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_OK);
    for (n = 1; n <= 3; n++) {
        json = check_received(f, n, MSG, sizeof MSG - 1);
        assert_non_null(strstr(json, "\"session\": 1,"));
        assert_non_null(strstr(json, n == 1   ? "[\"r1@y.test\", \"r2@y.test\"]"
                                     : n == 2 ? "[\"r3@y.test\", \"r4@y.test\"]"
                                              : "[\"r5@y.test\"]"));
        free(json);
    }
    fx_free(f);
}

static void
test_ipv6_and_probe(void **state)
{
    struct fx *f = fx_new("127.0.0.1,::1", NULL, 0);
    aimx_addr a = t_addr("127.0.0.1");
    aimx_open_request req;
    char *json;

    (void)state;
    fx_open(f, "::1");
    assert_int_equal(f->r.res.remote.family, AIMX_AF_INET6);
    t_send(&f->p, f->s, "a@x.test", ONE, 0, MSG, sizeof MSG - 1, 0, 0, &f->r);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_OK);
    json = check_received(f, 1, MSG, sizeof MSG - 1);
    assert_non_null(strstr(json, "\"client_addr\": \"::1\""));
    free(json);
    memset(&req, 0, sizeof req);
    req.struct_size = (uint32_t)sizeof req;
    req.addrs = &a;
    req.addr_count = 1;
    t_result_init(&f->r, 0);
    assert_int_equal(f->p.ops->probe(f->p.inst, &req, &f->r.res), AIMX_OK);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_OK);
    assert_int_equal(f->r.res.phase, AIMX_PHASE_QUIT);
    fx_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_received),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_random_messages),
        cmocka_unit_test(test_smtputf8),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_recipient_split),
        cmocka_unit_test(test_ipv6_and_probe),
    };
    return cmocka_run_group_tests(tests, NULL, t_peers_cleanup);
}
