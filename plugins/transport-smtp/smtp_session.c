/* SPDX-License-Identifier: MIT */
/*
 * The ESMTP dialogue.  Every reply is read with the timeout of its phase,
 * capped by the call's deadline; every failure to read or write one ends
 * the session (its state is unknown then), while a refusal (4xx/5xx) keeps
 * it in step for the next transaction.
 */
#include "smtp_session.h"

#include "dotstuff.h"
#include "smtp_race.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Message octets per data block: a block and its dot-stuffed copy are the
 * only per-message memory, whatever the message's size. */
#define BLOCK_IN 65536
/* RFC 5321 4.5.3.1.3 allows 256 octets per path; past this an address is
 * not worth a command line (and keeps MAIL under the 1000-octet limit). */
#define ADDR_MAX 900

enum rcpt_state {
    R_NONE = 0, /* not looked at yet */
    R_QUEUED,   /* waiting for a transaction */
    R_PENDING,  /* in the running transaction, no reply yet */
    R_ACCEPTED, /* RCPT accepted, waiting for the message's fate */
    R_DEFERRED, /* "too many recipients": goes into the next transaction */
    R_DONE      /* reported */
};

struct send_ctx {
    const aimx_envelope *env;
    aimx_msg *msg;
    smtp_rcpt_fn *fn;
    void *arg;
    uint8_t *state; /* enum rcpt_state, per env->rcpts index */
    int utf8;       /* the envelope needs SMTPUTF8 */
};

static int race(struct smtp_session *s, const aimx_addr *addrs, size_t count,
                smtp_attempt_fn *fn, void *arg, struct smtp_outcome *out);
static size_t race_culprit(const struct smtp_race_attempt *att, size_t count,
                           int end);
static int converse(struct smtp_session *s, const char *mx_host, int level,
                    struct smtp_outcome *out);
static int starttls(struct smtp_session *s, const char *mx_host, int level,
                    struct smtp_outcome *o);
static int greet(struct smtp_session *s, struct smtp_outcome *o);
static int say_ehlo(struct smtp_session *s, struct smtp_outcome *o);
static void ehlo_line(void *arg, const char *text, size_t len, unsigned index);
static int refused(struct smtp_session *s, uint32_t phase,
                   struct smtp_outcome *o);
static int run_tx(struct smtp_session *s, struct send_ctx *x, size_t *idx,
                  size_t k, struct smtp_outcome *out);
static int mail_command(struct smtp_session *s, const struct send_ctx *x,
                        struct smtp_outcome *o);
static int rcpt_reply(struct smtp_session *s, struct send_ctx *x, size_t i,
                      size_t *accepted, struct smtp_outcome *out);
static int too_many_recipients(const struct smtp_reply *r);
static int send_body(struct smtp_session *s, struct send_ctx *x,
                     struct smtp_outcome *out);
static int lone_dot(struct smtp_session *s, struct smtp_outcome *o);
static int rset(struct smtp_session *s, struct smtp_outcome *o);
static void report(struct send_ctx *x, size_t i, const struct smtp_outcome *o,
                   int shared);
static void report_rest(struct send_ctx *x, const struct smtp_outcome *o);
static int address_ok(const char *a, int *utf8);
static int read_reply(struct smtp_session *s, uint32_t phase, int t,
                      struct smtp_outcome *o);
static int flush(struct smtp_session *s, uint32_t phase, int t,
                 struct smtp_outcome *o);
AIMX_PRINTF(4, 5)
static int command(struct smtp_session *s, struct smtp_outcome *o,
                   uint32_t phase, const char *fmt, ...);
static uint64_t deadline_for(const struct smtp_session *s, int t, int *by_call);
static void io_failure(struct smtp_session *s, int io, uint32_t phase, int t,
                       int by_call, struct smtp_outcome *o);
static void protocol_failure(struct smtp_session *s, uint32_t phase,
                             struct smtp_outcome *o);
static void reply_outcome(const struct smtp_session *s, uint32_t kind,
                          uint32_t phase, struct smtp_outcome *o);
AIMX_PRINTF(4, 5)
static void set_outcome(struct smtp_outcome *o, uint32_t kind, uint32_t phase,
                        const char *fmt, ...);
static void close_broken(struct smtp_session *s);
static int is_aborted(const struct smtp_session *s);
static const char *phase_name(uint32_t phase);
static void format_duration(uint64_t us, char *buf, size_t size);
static uint64_t now_us(const struct smtp_session *s);

void
smtp_session_init(struct smtp_session *s, const struct smtp_settings *set,
                  const aimx_host_api *api, aimx_host *host,
                  struct smtp_tls_trust *trust, int abort_fd,
                  const atomic_int *aborted)
{
    memset(s, 0, offsetof(struct smtp_session, conn));
    s->set = set;
    s->api = api;
    s->host = host;
    s->trust = trust;
    smtp_reply_parser_init(&s->parser);
    smtp_conn_init(&s->conn, abort_fd, aborted, api->monotonic_us, host);
}

void
smtp_session_open(struct smtp_session *s, const char *mx_host,
                  const aimx_addr *addrs, size_t count, uint64_t deadline_us,
                  smtp_attempt_fn *fn, void *arg, struct smtp_outcome *out)
{
    aimx_addr same;
    char where[64];
    int r;

    s->call_deadline = deadline_us;
    s->broken = 0;
    s->need_rset = 0;
    s->connected_us = 0;
    s->tls = 0;
    memset(&s->facts, 0, sizeof s->facts);
    if (race(s, addrs, count, fn, arg, out) != 0)
        return;
    r = converse(s, mx_host, s->set->tls, out);
    if (r <= 0)
        return;
    /* tls = may, and the handshake failed (or was tampered with): the
     * connection's state is unknown, so a new one to the same address
     * carries the mail in plaintext, STARTTLS not offered again -- as
     * Postfix, OpenSMTPD and Exim do.  Mail is never lost to a broken
     * TLS stack. */
    same = s->conn.remote;
    smtp_addr_format(&same, s->set->port, where, sizeof where);
    s->api->log(s->host, AIMX_LOG_NOTICE,
                "%s%s%s; retrying in plaintext on a new connection (tls = "
                "may)",
                out->text[0] == '[' ? "" : where,
                out->text[0] == '[' ? "" : ": ", out->text);
    s->broken = 0;
    if (race(s, &same, 1, fn, arg, out) != 0)
        return;
    converse(s, mx_host, SMTP_TLS_NONE, out);
}

void
smtp_session_send(struct smtp_session *s, const aimx_envelope *env,
                  aimx_msg *msg, smtp_rcpt_fn *fn, void *arg,
                  struct smtp_outcome *out)
{
    struct send_ctx x;
    struct smtp_outcome bad;
    size_t *queue, n = env->rcpt_count, qlen = 0, head = 0, k, i;
    int d;

    memset(&x, 0, sizeof x);
    x.env = env;
    x.msg = msg;
    x.fn = fn;
    x.arg = arg;
    s->call_deadline = env->deadline_us;
    memset(out, 0, sizeof *out);
    x.state = calloc(n ? n : 1, 1);
    queue = malloc((n ? n : 1) * sizeof *queue);
    if (!x.state || !queue) {
        set_outcome(out, AIMX_FAIL_LOCAL, AIMX_PHASE_MAIL, "out of memory");
        for (i = 0; i < n; i++)
            fn(arg, i, out, 1);
        goto done;
    }
    if (is_aborted(s)) {
        set_outcome(out, AIMX_FAIL_ABORTED, AIMX_PHASE_MAIL, "aborted");
        goto fail_all;
    }
    if (s->broken || s->conn.fd < 0) {
        set_outcome(out, AIMX_FAIL_LOST, AIMX_PHASE_MAIL,
                    "the session's connection is already closed");
        goto fail_all;
    }
    x.utf8 = (env->flags & AIMX_ENV_SMTPUTF8) != 0;
    if (!address_ok(env->sender, &x.utf8)) {
        set_outcome(out, AIMX_FAIL_LOCAL, AIMX_PHASE_MAIL,
                    "the sender address cannot be written in SMTP");
        out->invalid = 1;
        snprintf(out->enhanced, sizeof out->enhanced, "5.1.7");
        goto fail_all;
    }
    for (i = 0; i < n; i++) {
        if (address_ok(env->rcpts[i], &x.utf8)) {
            x.state[i] = R_QUEUED;
            queue[qlen++] = i;
            continue;
        }
        set_outcome(&bad, AIMX_FAIL_LOCAL, AIMX_PHASE_RCPT,
                    "the recipient address cannot be written in SMTP");
        bad.invalid = 1;
        snprintf(bad.enhanced, sizeof bad.enhanced, "5.1.3");
        report(&x, i, &bad, 0);
    }
    if (x.utf8 && !(s->ext & SMTP_EXT_SMTPUTF8)) {
        /* RFC 6531 3.4; Postfix says 5.6.7 after trying every MX. */
        set_outcome(out, AIMX_FAIL_UNSUPPORTED, AIMX_PHASE_MAIL,
                    "the envelope needs SMTPUTF8, which the server does not "
                    "offer");
        snprintf(out->enhanced, sizeof out->enhanced, "5.6.7");
        goto fail_all;
    }
    if ((s->ext & SMTP_EXT_SIZE) && s->size_limit &&
        env->message_size > s->size_limit) {
        /* RFC 1870 6.1: refused before any data, permanently (5.3.4). */
        set_outcome(out, AIMX_FAIL_TOO_LARGE, AIMX_PHASE_MAIL,
                    "the message (%llu octets) exceeds the server's SIZE "
                    "limit (%llu octets)",
                    (unsigned long long)env->message_size,
                    (unsigned long long)s->size_limit);
        snprintf(out->enhanced, sizeof out->enhanced, "5.3.4");
        goto fail_all;
    }
    while (head < qlen) {
        k = qlen - head;
        if (k > s->set->max_recipients)
            k = s->set->max_recipients;
        d = run_tx(s, &x, queue + head, k, out);
        if (d < 0)
            goto fail_all;
        head += k - (size_t)d;
    }
    goto done;
fail_all:
    report_rest(&x, out);
done:
    free(queue);
    free(x.state);
}

int
smtp_session_quit(struct smtp_session *s, uint64_t deadline_us)
{
    struct smtp_outcome o;
    int ok = -1;

    s->call_deadline = deadline_us;
    if (!s->broken && s->conn.fd >= 0 && !is_aborted(s) &&
        command(s, &o, AIMX_PHASE_QUIT, "QUIT\r\n") == 0 &&
        flush(s, AIMX_PHASE_QUIT, SMTP_T_QUIT, &o) == 0 &&
        read_reply(s, AIMX_PHASE_QUIT, SMTP_T_QUIT, &o) == 0)
        ok = s->reply.code / 100 == 2 ? 0 : -1;
    close_broken(s);
    return ok;
}

void
smtp_session_close(struct smtp_session *s)
{
    close_broken(s);
    free(s->inbuf);
    s->inbuf = NULL;
}

void
smtp_ehlo_keyword(const char *text, size_t len, unsigned *ext,
                  uint64_t *size_limit)
{
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {
        {"PIPELINING", SMTP_EXT_PIPELINING},
        {"SIZE", SMTP_EXT_SIZE},
        {"8BITMIME", SMTP_EXT_8BITMIME},
        {"SMTPUTF8", SMTP_EXT_SMTPUTF8},
        {"ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES},
        {"STARTTLS", SMTP_EXT_STARTTLS},
    };
    size_t i, kw = 0, p;
    uint64_t v = 0;
    int digits = 0, overflow = 0;

    while (kw < len && text[kw] != ' ')
        kw++;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i].name) == kw &&
            strncasecmp(text, known[i].name, kw) == 0)
            break;
    if (i == sizeof known / sizeof known[0])
        return;
    *ext |= known[i].bit;
    if (known[i].bit != SMTP_EXT_SIZE)
        return;
    for (p = kw; p < len && text[p] == ' '; p++)
        ;
    for (; p < len && text[p] >= '0' && text[p] <= '9'; p++, digits++) {
        unsigned dgt = (unsigned)(text[p] - '0');
        overflow |= v > (UINT64_MAX - dgt) / 10;
        v = v * 10 + dgt;
    }
    /* "SIZE", "SIZE 0" or a value beyond 64 bits: no usable limit. */
    *size_limit = digits && !overflow && p == len ? v : 0;
}

/* Connects (the race over addrs); every attempt goes to fn, in order.
 * 0: s->conn is connected; -1: out says why not. */
static int
race(struct smtp_session *s, const aimx_addr *addrs, size_t count,
     smtp_attempt_fn *fn, void *arg, struct smtp_outcome *out)
{
    struct smtp_race r;
    struct smtp_race_attempt *att;
    const aimx_connect_attempt *a;
    char where[64], span[32], src[64];
    size_t i, w = 0, c;
    int end, err = 0;

    set_outcome(out, AIMX_FAIL_LOCAL, AIMX_PHASE_CONNECT,
                "no address to connect to");
    if (count == 0)
        return -1;
    att = calloc(count, sizeof *att);
    if (!att) {
        set_outcome(out, AIMX_FAIL_LOCAL, AIMX_PHASE_CONNECT, "out of memory");
        return -1;
    }
    memset(&r, 0, sizeof r);
    r.addrs = addrs;
    r.count = count;
    r.port = s->set->port;
    r.bind4 = &s->set->bind4;
    r.bind6 = &s->set->bind6;
    r.delay_us = s->set->attempt_delay_us;
    r.timeout_us = s->set->timeout_us[SMTP_T_CONNECT];
    r.deadline_us = s->call_deadline;
    end = smtp_race_run(&s->conn, &r, att, &w, &err);
    for (i = 0; fn && i < count; i++)
        fn(arg, &att[i].a);
    if (end == SMTP_RACE_WON) {
        s->connected_us = att[w].a.end_us;
        free(att);
        return 0;
    }
    /* The result names one address: the one whose failure ended it. */
    c = race_culprit(att, count, end);
    a = &att[c].a;
    s->conn.remote = a->remote;
    s->conn.remote_port = a->remote_port;
    s->conn.local = a->local;
    s->conn.local_port = a->local_port;
    smtp_addr_format(&a->remote, a->remote_port, where, sizeof where);
    format_duration(s->set->timeout_us[SMTP_T_CONNECT], span, sizeof span);
    switch (end) {
    case SMTP_RACE_DEADLINE:
        set_outcome(out, AIMX_FAIL_TIMEOUT, AIMX_PHASE_CONNECT,
                    "connect to %s: the call's deadline passed", where);
        break;
    case SMTP_RACE_ABORTED:
        set_outcome(out, AIMX_FAIL_ABORTED, AIMX_PHASE_CONNECT,
                    "connect to %s: aborted", where);
        break;
    case SMTP_RACE_ERROR:
        set_outcome(out, AIMX_FAIL_LOCAL, AIMX_PHASE_CONNECT,
                    "connect to %s: %s", where, strerror(err));
        break;
    default:
        if (a->outcome == AIMX_CONNECT_TIMEOUT && a->sys_errno == 0) {
            set_outcome(out, AIMX_FAIL_TIMEOUT, AIMX_PHASE_CONNECT,
                        "connect to %s: timed out after %s", where, span);
        } else if (att[c].bind_failed) {
            smtp_addr_text(a->remote.family == AIMX_AF_INET6 ? &s->set->bind6
                                                             : &s->set->bind4,
                           src, sizeof src);
            set_outcome(out, AIMX_FAIL_LOCAL, AIMX_PHASE_CONNECT,
                        "connect to %s: cannot bind to the source address "
                        "%s: %s",
                        where, src, strerror(a->sys_errno));
        } else {
            set_outcome(out,
                        a->outcome == AIMX_CONNECT_ERROR ? AIMX_FAIL_LOCAL
                        : a->outcome == AIMX_CONNECT_TIMEOUT
                            ? AIMX_FAIL_TIMEOUT
                            : AIMX_FAIL_REFUSED,
                        AIMX_PHASE_CONNECT, "connect to %s: %s", where,
                        strerror(a->sys_errno));
        }
        break;
    }
    free(att);
    return -1;
}

/* Whose failure the result reports: every attempt failed -> the one that
 * ended last (its failure ended the race); otherwise the last started. */
static size_t
race_culprit(const struct smtp_race_attempt *att, size_t count, int end)
{
    size_t i, best = 0;

    for (i = 0; i < count; i++) {
        if (att[i].a.outcome == AIMX_CONNECT_NOT_STARTED)
            continue;
        if (end != SMTP_RACE_FAILED || att[i].a.end_us >= att[best].a.end_us)
            best = i;
    }
    return best;
}

/* Greeting, EHLO and STARTTLS on a new connection.  0: ready (*out is the
 * EHLO reply); -1: failed (*out); 1: the handshake failed under `may`,
 * the connection is closed and a plaintext one should follow. */
static int
converse(struct smtp_session *s, const char *mx_host, int level,
         struct smtp_outcome *out)
{
    struct smtp_outcome ehlo;
    int r;

    smtp_reply_parser_init(&s->parser);
    if (greet(s, out) != 0 || say_ehlo(s, out) != 0)
        return -1;
    reply_outcome(s, AIMX_FAIL_NONE, AIMX_PHASE_EHLO, &ehlo);
    if (level != SMTP_TLS_NONE) {
        r = starttls(s, mx_host, level, out);
        if (r != 0)
            return r;
        if (s->tls) /* the EHLO said after the handshake */
            reply_outcome(s, AIMX_FAIL_NONE, AIMX_PHASE_EHLO, &ehlo);
    }
    *out = ehlo;
    return 0;
}

/*
 * STARTTLS (RFC 3207) as the level says.  0: go on (encrypted, or in
 * plaintext on this connection when `may` met no STARTTLS or a 4xx/5xx
 * to it); -1: failed (*o); 1: `may`, and the handshake failed or was
 * tampered with: the connection is closed, a plaintext one follows.
 */
static int
starttls(struct smtp_session *s, const char *mx_host, int level,
         struct smtp_outcome *o)
{
    char why[256], where[64];
    int may = level == SMTP_TLS_MAY, by_call, io, st;
    unsigned cls;
    size_t junk;
    uint64_t dl;

    smtp_addr_format(&s->conn.remote, s->conn.remote_port, where, sizeof where);
    if (!(s->ext & SMTP_EXT_STARTTLS)) {
        if (may)
            return 0;
        set_outcome(o, AIMX_FAIL_TLS, AIMX_PHASE_STARTTLS,
                    "TLS is required (tls = %s) but %s does not offer "
                    "STARTTLS",
                    smtp_tls_level_name(level), where);
        o->host_wide = 1;
        smtp_session_quit(s, s->call_deadline);
        return -1;
    }
    if (command(s, o, AIMX_PHASE_STARTTLS, "STARTTLS\r\n") != 0 ||
        flush(s, AIMX_PHASE_STARTTLS, SMTP_T_STARTTLS, o) != 0 ||
        read_reply(s, AIMX_PHASE_STARTTLS, SMTP_T_STARTTLS, o) != 0)
        return -1;
    cls = s->reply.code / 100;
    if (s->reply.code == 421) {
        reply_outcome(s, AIMX_FAIL_REPLY, AIMX_PHASE_STARTTLS, o);
        close_broken(s);
        return -1;
    }
    if (cls == 4 || cls == 5) {
        /* RFC 3207 4: the client decides.  `may` goes on in plaintext on
         * this very connection (the server is in step); a required level
         * says QUIT.  A 5xx says this host will not do TLS at all. */
        if (may)
            return 0;
        reply_outcome(s, AIMX_FAIL_TLS, AIMX_PHASE_STARTTLS, o);
        o->host_wide = cls == 5;
        smtp_session_quit(s, s->call_deadline);
        return -1;
    }
    if (cls != 2) {
        protocol_failure(s, AIMX_PHASE_STARTTLS, o);
        return -1;
    }
    /* Octets received after the 220 and before the handshake came from
     * the server's side of the plaintext connection (CVE-2011-0411):
     * they must neither reach TLS nor be read as replies after it. */
    junk = smtp_conn_pending(&s->conn);
    if (junk > 0) {
        set_outcome(o, AIMX_FAIL_TLS, AIMX_PHASE_STARTTLS,
                    "%s sent %zu octets after its 220 reply to STARTTLS, "
                    "before the TLS handshake (an injection attempt)",
                    where, junk);
        close_broken(s);
        return may ? 1 : -1;
    }
    dl = deadline_for(s, SMTP_T_STARTTLS, &by_call);
    st = smtp_tls_start(&s->conn, level, mx_host, s->trust, dl, &io, &s->facts,
                        why, sizeof why);
    switch (st) {
    case SMTP_TLS_OK:
        break;
    case SMTP_TLS_IO:
        io_failure(s, io, AIMX_PHASE_STARTTLS, SMTP_T_STARTTLS, by_call, o);
        /* A handshake that stalls is a failed one; abort() and the
         * call's deadline leave no time for plaintext. */
        return may && io == SMTP_IO_TIMEOUT && !by_call ? 1 : -1;
    case SMTP_TLS_CERT:
        set_outcome(o, AIMX_FAIL_TLS, AIMX_PHASE_STARTTLS, "%s: %s", where,
                    why);
        o->host_wide = 1;
        close_broken(s);
        return -1;
    case SMTP_TLS_LOCAL:
        set_outcome(o, AIMX_FAIL_LOCAL, AIMX_PHASE_STARTTLS, "%s: %s", where,
                    why);
        close_broken(s);
        return may ? 1 : -1;
    default:
        set_outcome(o, AIMX_FAIL_TLS, AIMX_PHASE_STARTTLS, "%s: %s", where,
                    why);
        close_broken(s);
        return may ? 1 : -1;
    }
    s->tls = 1;
    /* RFC 3207 4.2: forget what the server said in plaintext (an
     * attacker could have written it), and ask again. */
    smtp_reply_parser_init(&s->parser);
    return say_ehlo(s, o) == 0 ? 0 : -1;
}

static int
greet(struct smtp_session *s, struct smtp_outcome *o)
{
    if (read_reply(s, AIMX_PHASE_GREETING, SMTP_T_GREETING, o) != 0)
        return -1;
    if (s->reply.code / 100 == 2)
        return 0;
    return refused(s, AIMX_PHASE_GREETING, o);
}

static int
say_ehlo(struct smtp_session *s, struct smtp_outcome *o)
{
    int r;

    s->ext = 0;
    s->size_limit = 0;
    s->esmtp = 0;
    if (command(s, o, AIMX_PHASE_EHLO, "EHLO %s\r\n", s->set->helo_name) ||
        flush(s, AIMX_PHASE_EHLO, SMTP_T_EHLO, o))
        return -1;
    s->parser.on_line = ehlo_line;
    s->parser.on_line_arg = s;
    r = read_reply(s, AIMX_PHASE_EHLO, SMTP_T_EHLO, o);
    s->parser.on_line = NULL;
    if (r != 0)
        return -1;
    if (s->reply.code / 100 == 2) {
        s->esmtp = 1;
        return 0;
    }
    s->ext = 0;
    s->size_limit = 0;
    if (s->reply.code == 500 || s->reply.code == 502) {
        /* RFC 5321 3.2: a server that does not know EHLO gets HELO, and
         * then no extension is used. */
        if (command(s, o, AIMX_PHASE_EHLO, "HELO %s\r\n", s->set->helo_name) ||
            flush(s, AIMX_PHASE_EHLO, SMTP_T_EHLO, o) ||
            read_reply(s, AIMX_PHASE_EHLO, SMTP_T_EHLO, o))
            return -1;
        if (s->reply.code / 100 == 2)
            return 0;
    }
    return refused(s, AIMX_PHASE_EHLO, o);
}

static void
ehlo_line(void *arg, const char *text, size_t len, unsigned index)
{
    struct smtp_session *s = arg;

    /* The first line is the server's name, not an extension. */
    if (index > 0)
        smtp_ehlo_keyword(text, len, &s->ext, &s->size_limit);
}

/* The session-level refusal in s->reply (greeting, EHLO, HELO): the
 * outcome, then QUIT when the server still listens (RFC 5321 3.1: after a
 * 554 greeting it waits for one), and the connection closed. */
static int
refused(struct smtp_session *s, uint32_t phase, struct smtp_outcome *o)
{
    unsigned cls = s->reply.code / 100;

    if (cls != 4 && cls != 5) {
        protocol_failure(s, phase, o);
        return -1;
    }
    reply_outcome(s, AIMX_FAIL_REPLY, phase, o);
    if (s->reply.code == 421)
        close_broken(s);
    else
        smtp_session_quit(s, s->call_deadline);
    return -1;
}

/*
 * One transaction for idx[0..k).  Returns how many of them were deferred
 * by "too many recipients" (moved to the end of idx, to go first into the
 * next transaction), or -1 when the call must stop (*out says why; the
 * recipients not reported yet get it from report_rest()).
 */
static int
run_tx(struct smtp_session *s, struct send_ctx *x, size_t *idx, size_t k,
       struct smtp_outcome *out)
{
    struct smtp_outcome tmp;
    size_t j, w, accepted = 0, deferred = 0;
    int pipe = (s->ext & SMTP_EXT_PIPELINING) != 0, r;
    unsigned cls;
    aimx_status st;

    for (j = 0; j < k; j++)
        x->state[idx[j]] = R_PENDING;
    if (s->need_rset && rset(s, out) != 0)
        return -1;
    /* Everything that can fail locally fails before the first command. */
    if (!s->inbuf && !(s->inbuf = malloc(BLOCK_IN))) {
        set_outcome(out, AIMX_FAIL_LOCAL, AIMX_PHASE_MAIL, "out of memory");
        return -1;
    }
    if (s->api->msg_rewind && (st = s->api->msg_rewind(x->msg)) != AIMX_OK) {
        set_outcome(out, AIMX_FAIL_LOCAL, AIMX_PHASE_MAIL,
                    "rewinding the message failed (status %d)", (int)st);
        return -1;
    }
    s->need_rset = 1;
    if (mail_command(s, x, out) != 0)
        return -1;
    if (pipe) {
        /* RFC 2920: MAIL, every RCPT and DATA in one group, one write. */
        for (j = 0; j < k; j++)
            if (command(s, out, AIMX_PHASE_RCPT, "RCPT TO:<%s>\r\n",
                        x->env->rcpts[idx[j]]) != 0)
                return -1;
        if (command(s, out, AIMX_PHASE_DATA, "DATA\r\n") != 0)
            return -1;
    }
    if (flush(s, AIMX_PHASE_MAIL, SMTP_T_MAIL, out) != 0 ||
        read_reply(s, AIMX_PHASE_MAIL, SMTP_T_MAIL, out) != 0)
        return -1;
    cls = s->reply.code / 100;
    if (cls != 2) {
        if (cls != 4 && cls != 5) {
            protocol_failure(s, AIMX_PHASE_MAIL, out);
            return -1;
        }
        reply_outcome(s, AIMX_FAIL_REPLY, AIMX_PHASE_MAIL, out);
        if (s->reply.code == 421) {
            close_broken(s);
            return -1;
        }
        /* RFC 2920 3.1: every reply of the group is read, to stay in step;
         * a DATA the server accepted anyway gets a lone dot. */
        for (j = 0; pipe && j < k; j++)
            if (read_reply(s, AIMX_PHASE_RCPT, SMTP_T_RCPT, &tmp) != 0)
                return -1;
        if (pipe && read_reply(s, AIMX_PHASE_DATA, SMTP_T_DATA, &tmp) == 0 &&
            s->reply.code == 354)
            lone_dot(s, &tmp);
        return -1;
    }
    for (j = 0; j < k; j++) {
        if (!pipe && (command(s, out, AIMX_PHASE_RCPT, "RCPT TO:<%s>\r\n",
                              x->env->rcpts[idx[j]]) != 0 ||
                      flush(s, AIMX_PHASE_RCPT, SMTP_T_RCPT, out) != 0))
            return -1;
        if (read_reply(s, AIMX_PHASE_RCPT, SMTP_T_RCPT, out) != 0)
            return -1;
        r = rcpt_reply(s, x, idx[j], &accepted, out);
        if (r < 0)
            return -1;
        if (r > 0 && !pipe) {
            /* Without pipelining the rest is not even sent. */
            for (; j < k; j++)
                x->state[idx[j]] = R_DEFERRED;
            break;
        }
    }
    if (pipe || accepted > 0) {
        if (!pipe && (command(s, out, AIMX_PHASE_DATA, "DATA\r\n") != 0 ||
                      flush(s, AIMX_PHASE_DATA, SMTP_T_DATA, out) != 0))
            return -1;
        if (read_reply(s, AIMX_PHASE_DATA, SMTP_T_DATA, out) != 0)
            return -1;
        cls = s->reply.code / 100;
        if (s->reply.code == 354 && accepted == 0) {
            /* RFC 2920 3.1: DATA accepted, every RCPT refused. */
            if (lone_dot(s, out) != 0)
                return -1;
        } else if (s->reply.code == 354) {
            if (send_body(s, x, out) != 0)
                return -1;
            if (read_reply(s, AIMX_PHASE_DOT, SMTP_T_DOT, out) != 0) {
                out->after_dot = 1;
                return -1;
            }
            cls = s->reply.code / 100;
            if (cls == 2) {
                reply_outcome(s, AIMX_FAIL_NONE, AIMX_PHASE_DOT, out);
                for (j = 0; j < k; j++)
                    if (x->state[idx[j]] == R_ACCEPTED)
                        report(x, idx[j], out, 1);
            } else if (cls == 4 || cls == 5) {
                reply_outcome(s, AIMX_FAIL_REPLY, AIMX_PHASE_DOT, out);
                if (s->reply.code == 421)
                    close_broken(s);
                return -1;
            } else {
                protocol_failure(s, AIMX_PHASE_DOT, out);
                out->after_dot = 1;
                return -1;
            }
        } else if ((cls == 4 || cls == 5) &&
                   (accepted > 0 || s->reply.code == 421)) {
            reply_outcome(s, AIMX_FAIL_REPLY, AIMX_PHASE_DATA, out);
            if (s->reply.code == 421)
                close_broken(s);
            return -1;
        } else if (cls != 4 && cls != 5) {
            protocol_failure(s, AIMX_PHASE_DATA, out);
            return -1;
        }
        /* else: DATA refused after every RCPT was: as expected. */
    }
    /* The deferred ones to the end, in order (walking backwards keeps the
     * order among them; the others are done with). */
    for (j = k, w = k; j-- > 0;) {
        size_t t = idx[j];
        if (x->state[t] != R_DEFERRED)
            continue;
        idx[j] = idx[--w];
        idx[w] = t;
        x->state[t] = R_QUEUED;
        deferred++;
    }
    return (int)deferred;
}

static int
mail_command(struct smtp_session *s, const struct send_ctx *x,
             struct smtp_outcome *o)
{
    char size[32] = "";
    const char *body = "", *utf8 = "";

    if (s->ext & SMTP_EXT_SIZE)
        snprintf(size, sizeof size, " SIZE=%llu",
                 (unsigned long long)x->env->message_size);
    /* Without 8BITMIME the message goes as it is: there is nothing to
     * convert it with, and most servers take 8-bit data anyway. */
    if ((x->env->flags & AIMX_ENV_8BIT) && (s->ext & SMTP_EXT_8BITMIME))
        body = " BODY=8BITMIME";
    if (x->utf8)
        utf8 = " SMTPUTF8";
    return command(s, o, AIMX_PHASE_MAIL, "MAIL FROM:<%s>%s%s%s\r\n",
                   x->env->sender, size, body, utf8);
}

/* The reply to recipient i's RCPT: 0 to go on, 1 deferred to the next
 * transaction, -1 to stop (*out set). */
static int
rcpt_reply(struct smtp_session *s, struct send_ctx *x, size_t i,
           size_t *accepted, struct smtp_outcome *out)
{
    struct smtp_outcome o;
    unsigned cls = s->reply.code / 100;

    if (cls == 2) {
        x->state[i] = R_ACCEPTED;
        (*accepted)++;
        return 0;
    }
    if (cls != 4 && cls != 5) {
        protocol_failure(s, AIMX_PHASE_RCPT, out);
        return -1;
    }
    if (s->reply.code == 421) {
        /* The session ends: no verdict on this recipient more than on the
         * others, so report_rest() gives it to all of them. */
        reply_outcome(s, AIMX_FAIL_REPLY, AIMX_PHASE_RCPT, out);
        close_broken(s);
        return -1;
    }
    /* Deferring is only progress when this transaction carries someone;
     * otherwise it is that recipient's own temporary failure. */
    if (*accepted > 0 && too_many_recipients(&s->reply)) {
        x->state[i] = R_DEFERRED;
        return 1;
    }
    reply_outcome(s, AIMX_FAIL_REPLY, AIMX_PHASE_RCPT, &o);
    report(x, i, &o, 0);
    return 0;
}

/* RFC 5321 4.5.3.1.10: "452 too many recipients", and the historic 552
 * that clients should treat the same way. */
static int
too_many_recipients(const struct smtp_reply *r)
{
    return r->code == 452 || strcmp(r->enhanced, "4.5.3") == 0 ||
           (r->code == 552 && strcmp(r->enhanced, "5.5.3") == 0);
}

/* The message from msg_read(), dot-stuffed, one write per block; the last
 * block and the final dot go out together. */
static int
send_body(struct smtp_session *s, struct send_ctx *x, struct smtp_outcome *out)
{
    struct dotstuff ds;
    uint8_t *p;
    int64_t n;

    dotstuff_init(&ds);
    for (;;) {
        n = s->api->msg_read(x->msg, s->inbuf, BLOCK_IN);
        if (n < 0) {
            /* No dot may follow a partial message: hang up instead, and
             * the server discards what it got. */
            set_outcome(out, AIMX_FAIL_LOCAL, AIMX_PHASE_BODY,
                        "reading the message failed (status %lld)",
                        (long long)-n);
            close_broken(s);
            return -1;
        }
        if (n == 0)
            break;
        if (n > BLOCK_IN)
            n = BLOCK_IN; /* the host broke its contract; stay in bounds */
        if (s->conn.wlen > 0 &&
            flush(s, AIMX_PHASE_BODY, SMTP_T_BLOCK, out) != 0)
            return -1;
        p = smtp_conn_reserve(&s->conn, DOTSTUFF_OUT_MAX(n));
        if (!p) {
            set_outcome(out, AIMX_FAIL_LOCAL, AIMX_PHASE_BODY, "out of memory");
            close_broken(s);
            return -1;
        }
        smtp_conn_commit(&s->conn, dotstuff_feed(&ds, s->inbuf, (size_t)n, p));
    }
    p = smtp_conn_reserve(&s->conn, DOTSTUFF_END_MAX);
    if (!p) {
        set_outcome(out, AIMX_FAIL_LOCAL, AIMX_PHASE_BODY, "out of memory");
        close_broken(s);
        return -1;
    }
    smtp_conn_commit(&s->conn, dotstuff_end(&ds, p));
    return flush(s, AIMX_PHASE_BODY, SMTP_T_BLOCK, out);
}

static int
lone_dot(struct smtp_session *s, struct smtp_outcome *o)
{
    if (command(s, o, AIMX_PHASE_DOT, ".\r\n") != 0 ||
        flush(s, AIMX_PHASE_DOT, SMTP_T_DOT, o) != 0 ||
        read_reply(s, AIMX_PHASE_DOT, SMTP_T_DOT, o) != 0)
        return -1;
    if (s->reply.code == 421)
        close_broken(s);
    return 0;
}

/* RSET between transactions; its failure leaves the server's state
 * unknown, so the session ends. */
static int
rset(struct smtp_session *s, struct smtp_outcome *o)
{
    unsigned cls;

    if (command(s, o, AIMX_PHASE_RSET, "RSET\r\n") != 0 ||
        flush(s, AIMX_PHASE_RSET, SMTP_T_MAIL, o) != 0 ||
        read_reply(s, AIMX_PHASE_RSET, SMTP_T_MAIL, o) != 0)
        return -1;
    cls = s->reply.code / 100;
    if (cls == 2) {
        s->need_rset = 0;
        return 0;
    }
    if (cls == 4 || cls == 5) {
        reply_outcome(s, AIMX_FAIL_REPLY, AIMX_PHASE_RSET, o);
        close_broken(s);
    } else {
        protocol_failure(s, AIMX_PHASE_RSET, o);
    }
    return -1;
}

static void
report(struct send_ctx *x, size_t i, const struct smtp_outcome *o, int shared)
{
    x->state[i] = R_DONE;
    x->fn(x->arg, i, o, shared);
}

/* Every recipient not reported yet gets o; those that were not in the
 * transaction it ended were never sent the message, whatever o says. */
static void
report_rest(struct send_ctx *x, const struct smtp_outcome *o)
{
    struct smtp_outcome unsent = *o;
    size_t i;

    unsent.after_dot = 0;
    for (i = 0; i < x->env->rcpt_count; i++) {
        switch (x->state[i]) {
        case R_DONE:
            break;
        case R_PENDING:
        case R_ACCEPTED:
            report(x, i, o, 1);
            break;
        default:
            report(x, i, &unsent, 1);
            break;
        }
    }
}

/* An address goes between '<' and '>' on a command line: no control
 * octets, no angle brackets, bounded.  Non-ASCII needs SMTPUTF8. */
static int
address_ok(const char *a, int *utf8)
{
    size_t n;

    if (!a)
        return 0;
    for (n = 0; a[n]; n++) {
        unsigned char c = (unsigned char)a[n];
        if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || n >= ADDR_MAX)
            return 0;
        if (c >= 0x80)
            *utf8 = 1;
    }
    return 1;
}

static int
read_reply(struct smtp_session *s, uint32_t phase, int t,
           struct smtp_outcome *o)
{
    struct smtp_conn *c = &s->conn;
    size_t used;
    int by_call, r, io;
    uint64_t dl = deadline_for(s, t, &by_call);

    if (c->fd < 0) {
        io_failure(s, SMTP_IO_ERROR, phase, t, by_call, o);
        return -1;
    }
    for (;;) {
        if (c->rpos < c->rlen) {
            r = smtp_reply_feed(&s->parser, c->rbuf + c->rpos,
                                c->rlen - c->rpos, &used, &s->reply);
            c->rpos += used;
            if (r == SMTP_REPLY_DONE)
                return 0;
            if (r == SMTP_REPLY_ERROR) {
                set_outcome(o, AIMX_FAIL_PROTOCOL, phase,
                            "malformed reply during %s: %s", phase_name(phase),
                            smtp_reply_strerror(s->parser.error));
                close_broken(s);
                return -1;
            }
        }
        io = smtp_conn_fill(c, dl);
        if (io != SMTP_IO_OK) {
            io_failure(s, io, phase, t, by_call, o);
            return -1;
        }
    }
}

static int
flush(struct smtp_session *s, uint32_t phase, int t, struct smtp_outcome *o)
{
    int by_call, io;
    uint64_t dl = deadline_for(s, t, &by_call);

    io = smtp_conn_flush(&s->conn, dl);
    if (io == SMTP_IO_OK)
        return 0;
    io_failure(s, io, phase, t, by_call, o);
    return -1;
}

static int
command(struct smtp_session *s, struct smtp_outcome *o, uint32_t phase,
        const char *fmt, ...)
{
    va_list ap;
    uint8_t *p;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    p = n < 0 ? NULL : smtp_conn_reserve(&s->conn, (size_t)n + 1);
    if (!p) {
        /* Nothing of a half-built group may go out. */
        s->conn.wlen = 0;
        set_outcome(o, AIMX_FAIL_LOCAL, phase, "out of memory");
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf((char *)p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    smtp_conn_commit(&s->conn, (size_t)n);
    return 0;
}

/* The phase's timeout from now, or the call's deadline if that comes
 * first (*by_call then says so). */
static uint64_t
deadline_for(const struct smtp_session *s, int t, int *by_call)
{
    uint64_t d = now_us(s) + s->set->timeout_us[t];

    *by_call = s->call_deadline != 0 && s->call_deadline <= d;
    return *by_call ? s->call_deadline : d;
}

static void
io_failure(struct smtp_session *s, int io, uint32_t phase, int t, int by_call,
           struct smtp_outcome *o)
{
    const char *what = phase_name(phase);
    char span[32];

    switch (io) {
    case SMTP_IO_EOF:
        set_outcome(o, AIMX_FAIL_LOST, phase,
                    "connection closed by the server during %s", what);
        break;
    case SMTP_IO_TIMEOUT:
        format_duration(s->set->timeout_us[t], span, sizeof span);
        if (by_call)
            set_outcome(o, AIMX_FAIL_TIMEOUT, phase,
                        "the call's deadline passed during %s", what);
        else
            set_outcome(o, AIMX_FAIL_TIMEOUT, phase,
                        "timed out after %s during %s", span, what);
        break;
    case SMTP_IO_ABORTED:
        set_outcome(o, AIMX_FAIL_ABORTED, phase, "aborted during %s", what);
        break;
    case SMTP_IO_NOMEM:
        set_outcome(o, AIMX_FAIL_LOCAL, phase, "out of memory during %s", what);
        break;
    default:
        set_outcome(o, AIMX_FAIL_LOST, phase, "connection lost during %s: %s",
                    what, strerror(s->conn.sys_errno));
        break;
    }
    close_broken(s);
}

/* A reply of a class the command cannot get: the server is out of step. */
static void
protocol_failure(struct smtp_session *s, uint32_t phase, struct smtp_outcome *o)
{
    set_outcome(o, AIMX_FAIL_PROTOCOL, phase,
                "unexpected reply %u during %s: %s", (unsigned)s->reply.code,
                phase_name(phase), s->reply.text);
    o->code = s->reply.code;
    close_broken(s);
}

static void
reply_outcome(const struct smtp_session *s, uint32_t kind, uint32_t phase,
              struct smtp_outcome *o)
{
    size_t n;

    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->phase = phase;
    o->code = s->reply.code;
    memcpy(o->enhanced, s->reply.enhanced, sizeof o->enhanced);
    n = s->reply.text_len < sizeof o->text ? s->reply.text_len
                                           : sizeof o->text - 1;
    memcpy(o->text, s->reply.text, n);
    o->text[n] = '\0';
}

static void
set_outcome(struct smtp_outcome *o, uint32_t kind, uint32_t phase,
            const char *fmt, ...)
{
    va_list ap;

    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->phase = phase;
    va_start(ap, fmt);
    vsnprintf(o->text, sizeof o->text, fmt, ap);
    va_end(ap);
}

static void
close_broken(struct smtp_session *s)
{
    s->broken = 1;
    smtp_conn_close(&s->conn);
}

static int
is_aborted(const struct smtp_session *s)
{
    return s->conn.aborted && atomic_load(s->conn.aborted);
}

static const char *
phase_name(uint32_t phase)
{
    switch (phase) {
    case AIMX_PHASE_CONNECT:
        return "connect";
    case AIMX_PHASE_GREETING:
        return "the greeting";
    case AIMX_PHASE_EHLO:
        return "EHLO";
    case AIMX_PHASE_STARTTLS:
        return "STARTTLS";
    case AIMX_PHASE_MAIL:
        return "MAIL FROM";
    case AIMX_PHASE_RCPT:
        return "RCPT TO";
    case AIMX_PHASE_DATA:
        return "DATA";
    case AIMX_PHASE_BODY:
        return "the message data";
    case AIMX_PHASE_DOT:
        return "the final dot";
    case AIMX_PHASE_QUIT:
        return "QUIT";
    case AIMX_PHASE_RSET:
        return "RSET";
    }
    return "the session";
}

static void
format_duration(uint64_t us, char *buf, size_t size)
{
    if (us % 1000000u == 0)
        snprintf(buf, size, "%llus", (unsigned long long)(us / 1000000u));
    else
        snprintf(buf, size, "%llums", (unsigned long long)(us / 1000u));
}

static uint64_t
now_us(const struct smtp_session *s)
{
    return s->api->monotonic_us(s->host);
}
