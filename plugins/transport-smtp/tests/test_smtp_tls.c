/* SPDX-License-Identifier: MIT */
/*
 * transport-smtp's STARTTLS (issue 6) against real servers on loopback,
 * with certificates made at run time by tests/make_test_certs.py (a test
 * CA, a certificate for the MX name mx.tls.test, and bad ones: another
 * name, another CA, expired, loopback addresses only):
 *
 *  - Debian's aiosmtpd with STARTTLS: the canonical message arrives octet
 *    for octet at every tls level; verify passes with the test CA and the
 *    MX name, and fails (temporary, this MX host, kind TLS) otherwise;
 *  - the fault peer (tests/peers/smtp_fault_peer.py): SNI, EHLO again
 *    after the handshake, 454 and 5xx to STARTTLS, STARTTLS not offered,
 *    handshakes that fail (closed, garbage, no shared cipher), octets
 *    injected after the 220, a TLS-1.0-only server;
 *  - the OpenSSL contexts are made on first use, not at create().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "smtp_test_util.h"
#include "smtp_tls.h"

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MX       "mx.tls.test"

static const char MSG[] = "From: <a@x.test>\r\n"
                          "To: <b@y.test>\r\n"
                          "Subject: STARTTLS\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n"
                          "\r\n"
                          "caf\xc3\xa9 over TLS\r\n"
                          ".a leading dot\r\n"
                          ".\r\n"
                          "..\r\n"
                          "the end\r\n";

static const char *const ONE[] = {"b@y.test", NULL};

/* The certificates' directory; empty when they could not be made. */
static char certs[256];

struct fx {
    struct t_plugin p;
    struct t_peer peer;
    struct t_result r;
    aimx_session *s;
};

static int
make_certs(void **state)
{
    const char *argv[] = {SMTP_PYTHON3, SMTP_CERT_SCRIPT, certs, MX, NULL};
    int st;

    (void)state;
    snprintf(certs, sizeof certs, "/tmp/aimx-tls-certs-XXXXXX");
    if (!mkdtemp(certs)) {
        certs[0] = '\0';
        return -1;
    }
    st = t_run(argv);
    if (st == 77) {
        /* python3-cryptography missing: every test says so and skips. */
        t_remove_tree(certs);
        certs[0] = '\0';
        return 0;
    }
    return st == 0 ? 0 : -1;
}

static int
cleanup(void **state)
{
    t_peers_cleanup(state);
    if (certs[0] && !getenv("SMTP_TEST_KEEP"))
        t_remove_tree(certs);
    return 0;
}

static void
need_certs(void)
{
    if (!certs[0]) {
        fprintf(stderr, "skipped: python3-cryptography is not installed "
                        "(apt-get install python3-cryptography)\n");
        skip();
    }
}

/* certs/name, in one of a few rotating buffers. */
static const char *
cert(const char *name)
{
    static char buf[8][400];
    static unsigned next;
    char *b = buf[next++ % COUNT(buf)];

    snprintf(b, sizeof buf[0], "%s/%s", certs, name);
    return b;
}

/* The plugin on port with tls (NULL: default) and ca_file (NULL: none). */
static void
plugin(struct t_plugin *p, int port, const char *tls, const char *ca)
{
    memset(p, 0, sizeof *p);
    if (tls)
        t_cfg_str(p, "tls", tls);
    if (ca)
        t_cfg_str(p, "ca_file", ca);
    t_plugin_create(p, port);
}

/* A fault peer with STARTTLS offered and answered 220, the handshake as
 * tls_extra says (JSON members after cert and key, may be ""), and
 * further script members in more (may be ""). */
static void
fault_peer(struct t_peer *peer, const char *leaf, const char *tls_extra,
           const char *more)
{
    char script[4096];

    snprintf(script, sizeof script,
             "{\"ehlo\": {\"extensions\": [\"PIPELINING\", \"8BITMIME\", "
             "\"ENHANCEDSTATUSCODES\", \"STARTTLS\"]}, "
             "\"starttls\": \"220 2.0.0 ready to start TLS\", "
             "\"tls\": {\"cert\": \"%s.pem\", \"key\": \"%s.key\"%s%s}%s%s}",
             cert(leaf), cert(leaf), tls_extra[0] ? ", " : "", tls_extra,
             more[0] ? ", " : "", more);
    t_peer_fault(peer, "127.0.0.1", script);
}

static aimx_session *
open_mx(struct t_plugin *p, const char *mx, struct t_result *r)
{
    aimx_addr a = t_addr("127.0.0.1");

    return t_open_mx(p, mx, &a, 1, 30000, r);
}

static void
check_result(const aimx_transport_result *res, uint32_t cls, uint32_t scope,
             uint32_t phase, uint32_t kind)
{
    if (res->result_class != cls || res->scope != scope ||
        res->phase != phase || res->kind != kind)
        fail_msg("got class %u scope %u phase %u kind %u (%u \"%s\"), "
                 "want %u %u %u %u",
                 res->result_class, res->scope, res->phase, res->kind,
                 res->code, res->reply, cls, scope, phase, kind);
}

/* The TLS facts of a result: none, or TLS (verified or not). */
static void
check_tls(const aimx_transport_result *res, int tls, int verified)
{
    if (!tls) {
        assert_int_equal(
            res->flags & (AIMX_RESULT_TLS | AIMX_RESULT_TLS_VERIFIED), 0);
        assert_string_equal(res->tls_version, "");
        assert_string_equal(res->tls_cipher, "");
        return;
    }
    assert_true(res->flags & AIMX_RESULT_TLS);
    assert_int_equal((res->flags & AIMX_RESULT_TLS_VERIFIED) != 0, verified);
    if (strncmp(res->tls_version, "TLSv1", 5) != 0)
        fail_msg("tls_version \"%s\"", res->tls_version);
    assert_true(strlen(res->tls_cipher) > 0);
}

/* Sends MSG on an open session and expects it delivered. */
static void
deliver(struct t_plugin *p, aimx_session *s, struct t_result *r)
{
    t_send(p, s, "a@x.test", ONE, AIMX_ENV_8BIT, MSG, sizeof MSG - 1, 0, 0, r);
    if (r->res.result_class != AIMX_CLASS_OK)
        fail_msg("send: %s", r->res.reply);
}

/* The fault peer's record of session n once every session ended. */
static char *
session_json(const struct t_peer *peer, int n)
{
    char name[64];
    char *json;

    t_peer_wait_idle(peer);
    snprintf(name, sizeof name, "session-%d.json", n);
    json = t_peer_file(peer, name, NULL);
    if (!json)
        fail_msg("no %s", name);
    return json;
}

/* The message data of the first transaction of a session record equals
 * MSG as it must be on the wire (dot-stuffed, last CRLF off). */
static void
check_data(const char *json)
{
    char path[512];
    size_t got_len, want_len;
    char *got, *want;

    assert_true(t_json_string(json, "data_file", 0, path, sizeof path));
    got = t_read_file(path, &got_len);
    assert_non_null(got);
    want = t_stuffed_for_peer(MSG, sizeof MSG - 1, &want_len);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, got_len);
    free(got);
    free(want);
}

/* aiosmtpd's record of message n equals MSG; its JSON (free it). */
static char *
sink_received(const struct t_peer *peer, int n)
{
    char name[32];
    size_t len;
    char *got, *json;

    snprintf(name, sizeof name, "msg-%d.json", n);
    assert_true(t_peer_wait_file(peer, name, 10000));
    json = t_peer_file(peer, name, NULL);
    snprintf(name, sizeof name, "msg-%d.eml", n);
    got = t_peer_file(peer, name, &len);
    assert_non_null(got);
    if (len != sizeof MSG - 1 || memcmp(got, MSG, len) != 0)
        fail_msg("msg-%d: %zu octets received, %zu sent", n, len,
                 sizeof MSG - 1);
    free(got);
    return json;
}

/* The contexts come with the first STARTTLS, not with create(), and go
 * with the last instance. */
static void
test_contexts_lazy(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct t_plugin *p2 = calloc(1, sizeof *p2);

    (void)state;
    need_certs();
    assert_non_null(f);
    assert_non_null(p2);
    assert_int_equal(smtp_tls_contexts(), 0);
    fault_peer(&f->peer, "good", "", "");
    plugin(&f->p, f->peer.port, "verify", cert("ca.pem"));
    plugin(p2, f->peer.port, "may", NULL);
    assert_int_equal(smtp_tls_contexts(), 0);
    f->s = open_mx(&f->p, MX, &f->r);
    assert_non_null(f->s);
    assert_int_equal(smtp_tls_contexts(), 1);
    f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
    f->s = open_mx(p2, MX, &f->r);
    assert_non_null(f->s);
    assert_int_equal(smtp_tls_contexts(), 2);
    p2->ops->close(p2->inst, f->s, t_now_us() + 5000000);
    f->s = NULL;
    t_plugin_destroy(&f->p);
    assert_int_equal(smtp_tls_contexts(), 2); /* p2 still lives */
    t_plugin_destroy(p2);
    assert_int_equal(smtp_tls_contexts(), 0);
    t_peer_stop(&f->peer);
    free(p2);
    free(f);
}

/* aiosmtpd receives the canonical message at every level. */
static void
test_levels_aiosmtpd(void **state)
{
    static const char *const levels[] = {"none", "may", "encrypt", "verify"};
    struct fx *f = calloc(1, sizeof *f);
    char crt[400], key[400];
    const char *extra[5];
    char *json;
    size_t i;

    (void)state;
    need_certs();
    assert_non_null(f);
    snprintf(crt, sizeof crt, "%s", cert("good.pem"));
    snprintf(key, sizeof key, "%s", cert("good.key"));
    extra[0] = "--tls-cert";
    extra[1] = crt;
    extra[2] = "--tls-key";
    extra[3] = key;
    extra[4] = NULL;
    t_peer_sink(&f->peer, "127.0.0.1", extra);
    for (i = 0; i < COUNT(levels); i++) {
        plugin(&f->p, f->peer.port, levels[i], i == 3 ? cert("ca.pem") : NULL);
        f->s = open_mx(&f->p, MX, &f->r);
        if (!f->s)
            fail_msg("tls = %s: %s", levels[i], f->r.res.reply);
        check_tls(&f->r.res, i > 0, i == 3);
        deliver(&f->p, f->s, &f->r);
        check_tls(&f->r.res, i > 0, i == 3);
        f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
        f->s = NULL;
        t_plugin_destroy(&f->p);
        json = sink_received(&f->peer, (int)i + 1);
        assert_non_null(strstr(json, i > 0 ? "\"tls\": true"
                                           : "\"tls\": "
                                             "false"));
        assert_non_null(strstr(json, "\"BODY=8BITMIME\""));
        free(json);
    }
    t_peer_stop(&f->peer);
    free(f);
}

/* verify: a certificate for another name, from another CA, expired, or
 * naming only the dialled address fails for this MX host; so does the
 * right one when its CA is not trusted (the system store) or when the MX
 * name differs.  Nothing is delivered, nothing retried in plaintext. */
static void
test_verify_failures(void **state)
{
    static const struct {
        const char *leaf;
        const char *ca; /* NULL: the system store */
        const char *mx;
        const char *why;
    } cases[] = {
        {"wrongname", "ca.pem", MX, "hostname mismatch"},
        {"untrusted", "ca.pem", MX, "unable to get local issuer"},
        {"expired", "ca.pem", MX, "certificate has expired"},
        {"ipaddr", "ca.pem", MX, "hostname mismatch"},
        {"good", NULL, MX, "unable to get local issuer"},
        {"good", "ca.pem", "other.tls.test", "hostname mismatch"},
    };
    struct fx *f = calloc(1, sizeof *f);
    char crt[400], key[400];
    const char *extra[5];
    size_t i;

    (void)state;
    need_certs();
    assert_non_null(f);
    for (i = 0; i < COUNT(cases); i++) {
        snprintf(crt, sizeof crt, "%s/%s.pem", certs, cases[i].leaf);
        snprintf(key, sizeof key, "%s/%s.key", certs, cases[i].leaf);
        extra[0] = "--tls-cert";
        extra[1] = crt;
        extra[2] = "--tls-key";
        extra[3] = key;
        extra[4] = NULL;
        t_peer_sink(&f->peer, "127.0.0.1", extra);
        plugin(&f->p, f->peer.port, "verify",
               cases[i].ca ? cert(cases[i].ca) : NULL);
        f->s = open_mx(&f->p, cases[i].mx, &f->r);
        assert_null(f->s);
        check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_HOST,
                     AIMX_PHASE_STARTTLS, AIMX_FAIL_TLS);
        if (!strstr(f->r.res.reply, cases[i].why) ||
            !strstr(f->r.res.reply, cases[i].mx))
            fail_msg("case %zu: \"%s\"", i, f->r.res.reply);
        check_tls(&f->r.res, 0, 0);
        assert_int_equal(f->r.res.attempt_count, 1);
        t_plugin_destroy(&f->p);
        t_peer_stop(&f->peer);
    }
    free(f);
}

/* The fault peer sees SNI = the MX name at every level, EHLO again after
 * the handshake, and the version and cipher the result reports. */
static void
test_sni_and_facts(void **state)
{
    static const char *const levels[] = {"verify", "encrypt", "may"};
    struct fx *f = calloc(1, sizeof *f);
    char want[128], got[64];
    aimx_open_request req;
    aimx_addr a = t_addr("127.0.0.1");
    char *json;
    size_t i;

    (void)state;
    need_certs();
    assert_non_null(f);
    fault_peer(&f->peer, "good", "", "");
    for (i = 0; i < COUNT(levels); i++) {
        plugin(&f->p, f->peer.port, levels[i], i == 0 ? cert("ca.pem") : NULL);
        f->s = open_mx(&f->p, MX, &f->r);
        if (!f->s)
            fail_msg("tls = %s: %s", levels[i], f->r.res.reply);
        check_tls(&f->r.res, 1, i == 0);
        deliver(&f->p, f->s, &f->r);
        f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
        f->s = NULL;
        json = session_json(&f->peer, (int)i + 1);
        assert_non_null(strstr(json, "\"tls\": true"));
        assert_non_null(strstr(json, "\"sni\": \"" MX "\""));
        assert_non_null(
            strstr(json, "\"commands\": [\"EHLO example.org\", \"STARTTLS\", "
                         "\"EHLO example.org\", \"MAIL FROM:<a@x.test>"));
        assert_true(t_json_string(json, "tls_version", 0, got, sizeof got));
        assert_string_equal(got, f->r.res.tls_version);
        assert_true(t_json_string(json, "tls_cipher", 0, got, sizeof got));
        assert_string_equal(got, f->r.res.tls_cipher);
        snprintf(want, sizeof want, "\"end_reason\": \"quit\"");
        assert_non_null(strstr(json, want));
        check_data(json);
        free(json);
        t_plugin_destroy(&f->p);
    }
    /* probe() reports the same facts. */
    plugin(&f->p, f->peer.port, "verify", cert("ca.pem"));
    memset(&req, 0, sizeof req);
    req.struct_size = (uint32_t)sizeof req;
    req.mx_host = MX;
    req.addrs = &a;
    req.addr_count = 1;
    t_result_init(&f->r, 0);
    assert_int_equal(f->p.ops->probe(f->p.inst, &req, &f->r.res), AIMX_OK);
    check_result(&f->r.res, AIMX_CLASS_OK, AIMX_SCOPE_NONE, AIMX_PHASE_QUIT,
                 AIMX_FAIL_NONE);
    check_tls(&f->r.res, 1, 1);
    t_plugin_destroy(&f->p);
    t_peer_stop(&f->peer);
    free(f);
}

/* RFC 3207 4.2: what the plaintext EHLO said is forgotten.  Before TLS
 * the server says SIZE 100 and 8BITMIME, after it neither. */
static void
test_ehlo_again_forgets(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char script[4096];
    char *json;

    (void)state;
    need_certs();
    assert_non_null(f);
    snprintf(script, sizeof script,
             "{\"ehlo\": {\"extensions\": [\"SIZE 100\", \"8BITMIME\", "
             "\"STARTTLS\"]}, \"starttls\": \"220 go\", "
             "\"tls\": {\"cert\": \"%s\", \"key\": \"%s\", "
             "\"ehlo\": {\"extensions\": [\"PIPELINING\", "
             "\"ENHANCEDSTATUSCODES\"]}}}",
             cert("good.pem"), cert("good.key"));
    t_peer_fault(&f->peer, "127.0.0.1", script);
    plugin(&f->p, f->peer.port, "may", NULL);
    f->s = open_mx(&f->p, MX, &f->r);
    assert_non_null(f->s);
    check_tls(&f->r.res, 1, 0);
    /* Larger than 100 octets, 8-bit: sent, without SIZE= or BODY=. */
    deliver(&f->p, f->s, &f->r);
    f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
    f->s = NULL;
    json = session_json(&f->peer, 1);
    assert_non_null(strstr(json, "\"mail_params\": \"\""));
    assert_non_null(strstr(json, "\"MAIL FROM:<a@x.test>\""));
    check_data(json);
    free(json);
    t_plugin_destroy(&f->p);
    t_peer_stop(&f->peer);
    free(f);
}

/* 454 (and 502) to STARTTLS: `may` goes on in plaintext on the same
 * connection; `encrypt` fails (454: this address; 5xx: this host). */
static void
test_starttls_refused(void **state)
{
    static const struct {
        const char *reply;
        uint32_t scope;
    } cases[] = {{"454 4.7.0 TLS not available", AIMX_SCOPE_ADDRESS},
                 {"502 5.5.1 not implemented", AIMX_SCOPE_HOST}};
    struct fx *f = calloc(1, sizeof *f);
    char more[128];
    char *json;
    size_t i;

    (void)state;
    need_certs();
    assert_non_null(f);
    for (i = 0; i < COUNT(cases); i++) {
        snprintf(more, sizeof more,
                 "\"sessions\": [{\"starttls\": \"%s\"}, "
                 "{\"starttls\": \"%s\"}]",
                 cases[i].reply, cases[i].reply);
        fault_peer(&f->peer, "good", "", more);
        plugin(&f->p, f->peer.port, "may", NULL);
        f->s = open_mx(&f->p, MX, &f->r);
        if (!f->s)
            fail_msg("may, %s: %s", cases[i].reply, f->r.res.reply);
        check_tls(&f->r.res, 0, 0);
        assert_int_equal(f->r.res.code, 250); /* EHLO's, not the 4xx */
        assert_int_equal(f->r.res.attempt_count, 1);
        deliver(&f->p, f->s, &f->r);
        f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
        f->s = NULL;
        t_plugin_destroy(&f->p);
        json = session_json(&f->peer, 1);
        assert_non_null(
            strstr(json, "\"commands\": [\"EHLO example.org\", \"STARTTLS\", "
                         "\"MAIL FROM:<a@x.test>"));
        check_data(json);
        free(json);
        assert_int_equal(t_peer_count(&f->peer, "session-"), 1);

        plugin(&f->p, f->peer.port, "encrypt", NULL);
        assert_null(open_mx(&f->p, MX, &f->r));
        check_result(&f->r.res, AIMX_CLASS_TEMPORARY, cases[i].scope,
                     AIMX_PHASE_STARTTLS, AIMX_FAIL_TLS);
        assert_int_equal(f->r.res.code, atoi(cases[i].reply));
        t_plugin_destroy(&f->p);
        json = session_json(&f->peer, 2);
        assert_non_null(strstr(json, "\"commands\": [\"EHLO example.org\", "
                                     "\"STARTTLS\", \"QUIT\"]"));
        free(json);
        t_peer_stop(&f->peer);
    }
    free(f);
}

/* STARTTLS not offered: `may` sends in plaintext without asking;
 * `encrypt` and `verify` fail for this MX host. */
static void
test_starttls_not_offered(void **state)
{
    static const char *const levels[] = {"encrypt", "verify"};
    struct fx *f = calloc(1, sizeof *f);
    char *json;
    size_t i;

    (void)state;
    need_certs();
    assert_non_null(f);
    t_peer_fault(&f->peer, "127.0.0.1", "{}");
    plugin(&f->p, f->peer.port, "may", NULL);
    f->s = open_mx(&f->p, MX, &f->r);
    assert_non_null(f->s);
    deliver(&f->p, f->s, &f->r);
    check_tls(&f->r.res, 0, 0);
    f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
    f->s = NULL;
    t_plugin_destroy(&f->p);
    json = session_json(&f->peer, 1);
    assert_int_equal(t_count(json, "STARTTLS"), 0);
    free(json);
    for (i = 0; i < COUNT(levels); i++) {
        plugin(&f->p, f->peer.port, levels[i], cert("ca.pem"));
        assert_null(open_mx(&f->p, MX, &f->r));
        check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_HOST,
                     AIMX_PHASE_STARTTLS, AIMX_FAIL_TLS);
        assert_non_null(strstr(f->r.res.reply, "does not offer STARTTLS"));
        t_plugin_destroy(&f->p);
        json = session_json(&f->peer, (int)i + 2);
        assert_non_null(strstr(json, "\"commands\": [\"EHLO example.org\", "
                                     "\"QUIT\"]"));
        free(json);
    }
    t_peer_stop(&f->peer);
    free(f);
}

/* A handshake that fails -- the server closes after its 220, sends
 * plaintext garbage, or shares no cipher -- and octets injected after
 * the 220 (CVE-2011-0411): `may` closes, connects again to the same
 * address and delivers in plaintext without STARTTLS; `encrypt` and
 * `verify` fail for this address, no second session. */
static void
test_handshake_failures(void **state)
{
    static const struct {
        const char *tls_extra;
        const char *more;
        const char *why;
    } cases[] = {
        {"\"after_220\": \"close\"", "", "TLS handshake failed"},
        {"\"after_220\": \"garbage\"", "", "TLS handshake failed"},
        {"\"ciphers\": \"aNULL:@SECLEVEL=0\", \"max_version\": \"TLSv1.2\"", "",
         "TLS handshake failed"},
        {"", "\"starttls\": [\"220 go ahead\", \"250 injected\"]", "injection"},
    };
    static const char *const strict[] = {"encrypt", "verify"};
    struct fx *f = calloc(1, sizeof *f);
    const aimx_connect_attempt *a0, *a1;
    char *json;
    size_t i, j;

    (void)state;
    need_certs();
    assert_non_null(f);
    for (i = 0; i < COUNT(cases); i++) {
        fault_peer(&f->peer, "good", cases[i].tls_extra, cases[i].more);
        plugin(&f->p, f->peer.port, "may", NULL);
        f->s = open_mx(&f->p, MX, &f->r);
        if (!f->s)
            fail_msg("case %zu, may: %s", i, f->r.res.reply);
        check_tls(&f->r.res, 0, 0);
        /* Two connections to the same address, both recorded. */
        assert_int_equal(f->r.res.attempt_count, 2);
        a0 = AIMX_ATTEMPT_AT(&f->r.res, 0);
        a1 = AIMX_ATTEMPT_AT(&f->r.res, 1);
        assert_int_equal(a0->outcome, AIMX_CONNECT_OK);
        assert_int_equal(a1->outcome, AIMX_CONNECT_OK);
        assert_memory_equal(&a0->remote, &a1->remote, sizeof a0->remote);
        assert_true(a1->start_us >= a0->end_us);
        assert_true(aimx_fake_host_has_log(&f->p.fh, "retrying in plaintext"));
        deliver(&f->p, f->s, &f->r);
        f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
        f->s = NULL;
        t_plugin_destroy(&f->p);
        json = session_json(&f->peer, 1);
        /* Nothing after STARTTLS on the first connection: no command,
         * and (injection) no handshake either. */
        assert_non_null(strstr(json, "\"commands\": [\"EHLO example.org\", "
                                     "\"STARTTLS\"]"));
        assert_non_null(strstr(json, "\"tls\": false"));
        free(json);
        json = session_json(&f->peer, 2);
        assert_non_null(strstr(json, "\"commands\": [\"EHLO example.org\", "
                                     "\"MAIL FROM:<a@x.test>"));
        assert_int_equal(t_count(json, "\"STARTTLS\""), 0);
        assert_non_null(strstr(json, "\"tls\": false"));
        check_data(json);
        free(json);
        assert_int_equal(t_peer_count(&f->peer, "session-"), 2);

        for (j = 0; j < COUNT(strict); j++) {
            plugin(&f->p, f->peer.port, strict[j], cert("ca.pem"));
            assert_null(open_mx(&f->p, MX, &f->r));
            check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                         AIMX_PHASE_STARTTLS, AIMX_FAIL_TLS);
            if (!strstr(f->r.res.reply, cases[i].why))
                fail_msg("case %zu, %s: \"%s\"", i, strict[j], f->r.res.reply);
            assert_int_equal(f->r.res.attempt_count, 1);
            t_plugin_destroy(&f->p);
            t_peer_wait_idle(&f->peer);
            assert_int_equal(t_peer_count(&f->peer, "session-"), 3 + j);
        }
        t_peer_stop(&f->peer);
    }
    free(f);
}

/* A server that speaks TLS 1.0 only (as old ones do) gets TLS under
 * `may` and `encrypt` (@SECLEVEL=0, TLS 1.0 and up); `verify` keeps
 * OpenSSL's defaults, which refuse it: a failed handshake, no plaintext. */
static void
test_tls10_only(void **state)
{
    static const char *const relaxed[] = {"may", "encrypt"};
    struct fx *f = calloc(1, sizeof *f);
    char *json;
    size_t i;

    (void)state;
    need_certs();
    assert_non_null(f);
    fault_peer(&f->peer, "good",
               "\"min_version\": \"TLSv1\", \"max_version\": \"TLSv1\", "
               "\"ciphers\": \"DEFAULT:@SECLEVEL=0\"",
               "");
    for (i = 0; i < COUNT(relaxed); i++) {
        plugin(&f->p, f->peer.port, relaxed[i], NULL);
        f->s = open_mx(&f->p, MX, &f->r);
        if (!f->s)
            fail_msg("%s: %s", relaxed[i], f->r.res.reply);
        check_tls(&f->r.res, 1, 0);
        assert_string_equal(f->r.res.tls_version, "TLSv1");
        deliver(&f->p, f->s, &f->r);
        assert_string_equal(f->r.res.tls_version, "TLSv1");
        f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
        f->s = NULL;
        t_plugin_destroy(&f->p);
        json = session_json(&f->peer, (int)i + 1);
        assert_non_null(strstr(json, "\"tls_version\": \"TLSv1\""));
        check_data(json);
        free(json);
    }
    plugin(&f->p, f->peer.port, "verify", cert("ca.pem"));
    assert_null(open_mx(&f->p, MX, &f->r));
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                 AIMX_PHASE_STARTTLS, AIMX_FAIL_TLS);
    t_plugin_destroy(&f->p);
    t_peer_wait_idle(&f->peer);
    assert_int_equal(t_peer_count(&f->peer, "session-"), 3);
    t_peer_stop(&f->peer);
    free(f);
}

/* A handshake that stalls: under `may` the STARTTLS timeout ends it and
 * plaintext follows; the call's deadline leaves no time for that. */
static void
test_handshake_stalls(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    uint64_t t0;

    (void)state;
    need_certs();
    assert_non_null(f);
    /* 220 to STARTTLS, then silence: the ClientHello gets no answer. */
    fault_peer(&f->peer, "good", "\"after_220\": \"silent\"", "");
    memset(&f->p, 0, sizeof f->p);
    t_cfg_str(&f->p, "timeouts.starttls", "300ms");
    t_plugin_create(&f->p, f->peer.port);
    f->s = open_mx(&f->p, MX, &f->r);
    if (!f->s)
        fail_msg("may: %s", f->r.res.reply);
    assert_int_equal(f->r.res.attempt_count, 2);
    check_tls(&f->r.res, 0, 0);
    assert_true(aimx_fake_host_has_log(&f->p.fh, "timed out after 300ms"));
    deliver(&f->p, f->s, &f->r);
    f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
    f->s = NULL;
    t_plugin_destroy(&f->p);
    assert_int_equal(t_peer_count(&f->peer, "session-"), 2);

    /* encrypt: the stall is this address's temporary failure. */
    memset(&f->p, 0, sizeof f->p);
    t_cfg_str(&f->p, "tls", "encrypt");
    t_cfg_str(&f->p, "timeouts.starttls", "300ms");
    t_plugin_create(&f->p, f->peer.port);
    assert_null(open_mx(&f->p, MX, &f->r));
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                 AIMX_PHASE_STARTTLS, AIMX_FAIL_TIMEOUT);
    t_plugin_destroy(&f->p);

    /* may, and the call's deadline ends the handshake: no time is left
     * for plaintext, so no second connection. */
    memset(&f->p, 0, sizeof f->p);
    t_plugin_create(&f->p, f->peer.port);
    {
        aimx_addr a = t_addr("127.0.0.1");
        t0 = t_now_us();
        assert_null(t_open_mx(&f->p, MX, &a, 1, 500, &f->r));
        assert_true(t_now_us() - t0 < 5000000);
    }
    check_result(&f->r.res, AIMX_CLASS_TEMPORARY, AIMX_SCOPE_ADDRESS,
                 AIMX_PHASE_STARTTLS, AIMX_FAIL_TIMEOUT);
    assert_non_null(strstr(f->r.res.reply, "deadline"));
    assert_int_equal(f->r.res.attempt_count, 1);
    t_plugin_destroy(&f->p);
    t_peer_wait_idle(&f->peer);
    assert_int_equal(t_peer_count(&f->peer, "session-"), 4);
    t_peer_stop(&f->peer);
    free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contexts_lazy),
        cmocka_unit_test(test_levels_aiosmtpd),
        cmocka_unit_test(test_verify_failures),
        cmocka_unit_test(test_sni_and_facts),
        cmocka_unit_test(test_ehlo_again_forgets),
        cmocka_unit_test(test_starttls_refused),
        cmocka_unit_test(test_starttls_not_offered),
        cmocka_unit_test(test_handshake_failures),
        cmocka_unit_test(test_tls10_only),
        cmocka_unit_test(test_handshake_stalls),
    };
    return cmocka_run_group_tests(tests, make_certs, cleanup);
}
