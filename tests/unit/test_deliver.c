/* SPDX-License-Identifier: MIT */
/* The delivery engine's failover and concurrency rules, against a scripted
 * resolver, a small IPv4-only policy and a scripted transport defined
 * here.  The real transport and servers are tested end to end elsewhere. */
#include "deliver.h"
#include "netaddr.h"
#include "scripted.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- a scripted transport ------------------------------------------------
 * Each address behaves as its row says.  open() holds a session back until
 * `hold` sessions are open at once (or 300 ms passed), so the largest
 * number open together shows what the engine allowed. */

struct server {
    const char *addr;
    int connect;  /* 0 connects, 1 refused, 2 times out */
    int greeting; /* 0 = 220 */
    int mail;     /* 0 = 250 */
    const char *bad_rcpt;
    int bad_rcpt_code; /* the reply to RCPT for bad_rcpt */
    int lost_after_dot;
    int cannot; /* needs an extension it lacks: permanent, this host */
};

#define MAX_SERVERS 16
static struct server servers[MAX_SERVERS];
static size_t server_count;
static size_t hold_sessions;
static pthread_mutex_t t_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t t_cond = PTHREAD_COND_INITIALIZER;
static int open_now, max_open, sessions_at[MAX_SERVERS];
static char delivered_to[64][64];
static size_t delivered_count;

static struct server *
find_server(const aimx_addr *a)
{
    char text[AIMX_ADDR_TEXT_MAX];

    aimx__addr_text(a, text, sizeof text);
    for (size_t i = 0; i < server_count; i++)
        if (strcmp(servers[i].addr, text) == 0)
            return &servers[i];
    return NULL;
}

static void
reply(aimx_transport_result *res, int code, uint32_t phase)
{
    res->code = (uint16_t)code;
    res->phase = phase;
    res->kind = code / 100 == 2 ? AIMX_FAIL_NONE : AIMX_FAIL_REPLY;
    res->result_class = code / 100 == 2   ? AIMX_CLASS_OK
                        : code / 100 == 5 ? AIMX_CLASS_PERMANENT
                                          : AIMX_CLASS_TEMPORARY;
    snprintf(res->reply, sizeof res->reply, "%d scripted", code);
}

static aimx_status
t_open(void *instance, const aimx_open_request *req, aimx_session **session,
       aimx_transport_result *res)
{
    (void)instance;
    for (size_t i = 0; i < req->addr_count; i++) {
        struct server *s = find_server(&req->addrs[i]);
        aimx_connect_attempt *a = AIMX_ATTEMPT_AT(res, res->attempt_count);
        int fails = s == NULL ? 1 : s->connect;

        if (res->attempt_count < res->attempt_cap) {
            a->remote = req->addrs[i];
            a->outcome = fails == 0   ? AIMX_CONNECT_OK
                         : fails == 1 ? AIMX_CONNECT_REFUSED
                                      : AIMX_CONNECT_TIMEOUT;
            a->sys_errno = fails == 1 ? 111 : 0;
            res->attempt_count++;
        }
        if (fails) {
            res->result_class = AIMX_CLASS_TEMPORARY;
            res->scope = AIMX_SCOPE_ADDRESS;
            res->phase = AIMX_PHASE_CONNECT;
            res->kind = fails == 1 ? AIMX_FAIL_REFUSED : AIMX_FAIL_TIMEOUT;
            continue;
        }
        res->remote = req->addrs[i];
        res->remote_port = 25;
        if (s->greeting != 0) {
            reply(res, s->greeting, AIMX_PHASE_GREETING);
            res->scope = AIMX_SCOPE_ADDRESS;
            return AIMX_OK;
        }
        pthread_mutex_lock(&t_lock);
        sessions_at[s - servers]++;
        if (++open_now > max_open)
            max_open = open_now;
        pthread_cond_broadcast(&t_cond);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 300 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while ((size_t)open_now < hold_sessions &&
               pthread_cond_timedwait(&t_cond, &t_lock, &until) == 0)
            ;
        pthread_mutex_unlock(&t_lock);
        *session = (aimx_session *)s;
        reply(res, 250, AIMX_PHASE_EHLO);
        res->scope = AIMX_SCOPE_NONE;
        return AIMX_OK;
    }
    return AIMX_OK;
}

static aimx_status
t_send(void *instance, aimx_session *session, const aimx_envelope *env,
       aimx_msg *msg, aimx_transport_result *res)
{
    struct server *s = (struct server *)session;
    int all_ok = 1, any_ok = 0;

    (void)instance;
    (void)msg;
    if (s->cannot) {
        reply(res, 555, AIMX_PHASE_MAIL);
        res->kind = AIMX_FAIL_UNSUPPORTED;
        res->scope = AIMX_SCOPE_HOST;
        snprintf(res->enhanced, sizeof res->enhanced, "5.6.7");
        for (size_t i = 0; i < env->rcpt_count; i++) {
            aimx_rcpt_result *r = AIMX_RCPT_AT(res, i);
            r->result_class = AIMX_CLASS_PERMANENT;
            r->phase = AIMX_PHASE_MAIL;
            r->code = 555;
            snprintf(r->enhanced, sizeof r->enhanced, "5.6.7");
        }
        return AIMX_OK;
    }
    if (s->mail != 0) {
        reply(res, s->mail, AIMX_PHASE_MAIL);
        res->scope = AIMX_SCOPE_MESSAGE;
        for (size_t i = 0; i < env->rcpt_count; i++) {
            aimx_rcpt_result *r = AIMX_RCPT_AT(res, i);
            r->result_class = res->result_class;
            r->phase = AIMX_PHASE_MAIL;
            r->code = (uint16_t)s->mail;
        }
        return AIMX_OK;
    }
    for (size_t i = 0; i < env->rcpt_count; i++) {
        aimx_rcpt_result *r = AIMX_RCPT_AT(res, i);
        int bad = s->bad_rcpt && strcmp(env->rcpts[i], s->bad_rcpt) == 0;
        int code = bad ? s->bad_rcpt_code : 250;
        r->code = (uint16_t)code;
        r->phase = bad ? AIMX_PHASE_RCPT : AIMX_PHASE_DOT;
        r->result_class = code / 100 == 2   ? AIMX_CLASS_OK
                          : code / 100 == 5 ? AIMX_CLASS_PERMANENT
                                            : AIMX_CLASS_TEMPORARY;
        if (!bad && s->lost_after_dot) {
            r->result_class = AIMX_CLASS_TEMPORARY;
            r->code = 0;
            r->flags = AIMX_RESULT_MAYBE_DELIVERED;
        }
        if (r->result_class == AIMX_CLASS_OK) {
            any_ok = 1;
            pthread_mutex_lock(&t_lock);
            if (delivered_count < 64)
                snprintf(delivered_to[delivered_count++], 64, "%s@%s",
                         env->rcpts[i], s->addr);
            pthread_mutex_unlock(&t_lock);
        } else {
            all_ok = 0;
        }
    }
    (void)any_ok;
    if (all_ok) {
        reply(res, 250, AIMX_PHASE_DOT);
    } else {
        res->result_class = AIMX_CLASS_TEMPORARY;
        res->scope =
            s->lost_after_dot ? AIMX_SCOPE_MESSAGE : AIMX_SCOPE_RECIPIENT;
        res->phase = s->lost_after_dot ? AIMX_PHASE_DOT : AIMX_PHASE_RCPT;
        res->kind = s->lost_after_dot ? AIMX_FAIL_LOST : AIMX_FAIL_REPLY;
        if (s->lost_after_dot)
            res->flags = AIMX_RESULT_MAYBE_DELIVERED;
    }
    return AIMX_OK;
}

static void
t_close(void *instance, aimx_session *session, uint64_t deadline_us)
{
    (void)instance;
    (void)session;
    (void)deadline_us;
    pthread_mutex_lock(&t_lock);
    open_now--;
    pthread_mutex_unlock(&t_lock);
}

/* ---- the test bench ---------------------------------------------------- */

static aimx_instance resolver, policy, transport;
static aimx_delivery d;
static aimx_delivery_rcpt rcpts[16];
static int spool_fd = -1;

static void
bench(const struct answer *dns, size_t ndns, const struct server *srv,
      size_t nsrv, size_t hold, const char *const *addresses, size_t n)
{
    memset(&resolver, 0, sizeof resolver);
    memset(&policy, 0, sizeof policy);
    memset(&transport, 0, sizeof transport);
    resolver.plugin.resolver.lookup = scripted_dns_lookup;
    policy.plugin.policy.select = scripted_policy_select;
    transport.plugin.transport.open = t_open;
    transport.plugin.transport.send = t_send;
    transport.plugin.transport.close = t_close;
    scripted_dns_set(dns, ndns, 1);
    if (nsrv > 0)
        memcpy(servers, srv, nsrv * sizeof *srv);
    server_count = nsrv;
    hold_sessions = hold;
    open_now = max_open = 0;
    memset(sessions_at, 0, sizeof sessions_at);
    delivered_count = 0;

    memset(&d, 0, sizeof d);
    d.router.resolver = &resolver;
    d.router.policy = &policy;
    d.router.allow_private_targets = 1;
    d.router.max_addresses_per_host = 5;
    d.router.max_mx_hosts = 10;
    d.transport = &transport;
    d.spool_fd = spool_fd;
    d.size = 0;
    d.sender = "agent@sender.test";
    d.max_parallel = 8;
    d.max_per_destination = 2;
    memset(rcpts, 0, sizeof rcpts);
    for (size_t i = 0; i < n; i++) {
        rcpts[i].address = addresses[i];
        snprintf(rcpts[i].domain, sizeof rcpts[i].domain, "%s",
                 strchr(addresses[i], '@') + 1);
    }
    d.rcpts = rcpts;
    d.rcpt_count = n;
}

static int
attempts_with(const aimx_delivery_rcpt *r, int result)
{
    int n = 0;

    for (size_t i = 0; i < r->attempt_count; i++)
        n += r->attempts[i].result == result;
    return n;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
delivered_over_the_third_address(void **state)
{
    static const struct answer dns[] = {
        {"a.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mx.a.test."}},
        {"mx.a.test.",
         AIMX_DNS_A,
         AIMX_DNS_OK,
         {"127.0.0.1", "127.0.0.2", "127.0.0.3"}},
    };
    static const struct server srv[] = {
        {"127.0.0.1", 1, 0, 0, NULL, 0, 0, 0},
        {"127.0.0.2", 2, 0, 0, NULL, 0, 0, 0},
        {"127.0.0.3", 0, 0, 0, NULL, 0, 0, 0},
    };
    static const char *const to[] = {"u@a.test"};
    char ip[AIMX_ADDR_TEXT_MAX];

    (void)state;
    bench(dns, N(dns), srv, N(srv), 1, to, 1);
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(rcpts[0].status, AIMX_RCPT_DELIVERED);
    assert_string_equal(rcpts[0].mx, "mx.a.test");
    assert_string_equal(aimx__addr_text(&rcpts[0].ip, ip, sizeof ip),
                        "127.0.0.3");
    assert_int_equal(attempts_with(&rcpts[0], AIMX_ATTEMPT_REFUSED), 1);
    assert_int_equal(attempts_with(&rcpts[0], AIMX_ATTEMPT_TIMEOUT), 1);
    assert_int_equal(attempts_with(&rcpts[0], AIMX_ATTEMPT_DELIVERED), 1);
    aimx__delivery_free(&d);
}

static void
greeting_421_tries_the_next_address(void **state)
{
    static const struct answer dns[] = {
        {"a.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mx.a.test."}},
        {"mx.a.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.1", "127.0.0.2"}},
    };
    static const struct server srv[] = {
        {"127.0.0.1", 0, 421, 0, NULL, 0, 0, 0},
        {"127.0.0.2", 0, 0, 0, NULL, 0, 0, 0},
    };
    static const char *const to[] = {"u@a.test"};

    (void)state;
    bench(dns, N(dns), srv, N(srv), 1, to, 1);
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(rcpts[0].status, AIMX_RCPT_DELIVERED);
    assert_int_equal(attempts_with(&rcpts[0], AIMX_ATTEMPT_TEMP_REPLY), 1);
    assert_int_equal(rcpts[0].attempts[0].code, 421);
    aimx__delivery_free(&d);
}

static const struct answer two_mx[] = {
    {"b.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mx1.b.test.", "20 mx2.b.test."}},
    {"mx1.b.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.1"}},
    {"mx2.b.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.2"}},
};

static void
permanent_rcpt_reply_is_final(void **state)
{
    static const struct server srv[] = {
        {"127.0.0.1", 0, 0, 0, "bad@b.test", 550, 0, 0},
        {"127.0.0.2", 0, 0, 0, NULL, 0, 0, 0}, /* accepts everything */
    };
    static const char *const to[] = {"good@b.test", "bad@b.test"};

    (void)state;
    bench(two_mx, N(two_mx), srv, N(srv), 1, to, 2);
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(rcpts[0].status, AIMX_RCPT_DELIVERED);
    assert_int_equal(rcpts[1].status, AIMX_RCPT_BOUNCED);
    assert_int_equal(rcpts[1].code, 550);
    /* The backup MX was never contacted. */
    assert_int_equal(sessions_at[1], 0);
    aimx__delivery_free(&d);
}

static void
temporary_reply_goes_to_the_next_mx(void **state)
{
    static const struct server srv[] = {
        {"127.0.0.1", 0, 0, 451, NULL, 0, 0, 0},
        {"127.0.0.2", 0, 0, 0, NULL, 0, 0, 0},
    };
    static const char *const to[] = {"u@b.test", "v@b.test"};

    (void)state;
    bench(two_mx, N(two_mx), srv, N(srv), 1, to, 2);
    assert_int_equal(aimx__deliver(&d), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rcpts[i].status, AIMX_RCPT_DELIVERED);
        assert_string_equal(rcpts[i].mx, "mx2.b.test");
        assert_int_equal(attempts_with(&rcpts[i], AIMX_ATTEMPT_TEMP_REPLY), 1);
    }
    aimx__delivery_free(&d);
}

static void
greeting_5xx_everywhere_bounces_else_defers(void **state)
{
    static const struct server all_5xx[] = {
        {"127.0.0.1", 0, 554, 0, NULL, 0, 0, 0},
        {"127.0.0.2", 0, 554, 0, NULL, 0, 0, 0},
    };
    static const struct server one_refused[] = {
        {"127.0.0.1", 0, 554, 0, NULL, 0, 0, 0},
        {"127.0.0.2", 1, 0, 0, NULL, 0, 0, 0},
    };
    static const char *const to[] = {"u@b.test"};

    (void)state;
    bench(two_mx, N(two_mx), all_5xx, N(all_5xx), 1, to, 1);
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(rcpts[0].status, AIMX_RCPT_BOUNCED);
    assert_int_equal(attempts_with(&rcpts[0], AIMX_ATTEMPT_PERM_REPLY), 2);
    aimx__delivery_free(&d);

    bench(two_mx, N(two_mx), one_refused, N(one_refused), 1, to, 1);
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(rcpts[0].status, AIMX_RCPT_DEFERRED);
    aimx__delivery_free(&d);
}

static void
lost_after_dot_is_deferred_not_retried(void **state)
{
    static const struct server srv[] = {
        {"127.0.0.1", 0, 0, 0, NULL, 0, 1, 0},
        {"127.0.0.2", 0, 0, 0, NULL, 0, 0, 0},
    };
    static const char *const to[] = {"u@b.test"};

    (void)state;
    bench(two_mx, N(two_mx), srv, N(srv), 1, to, 1);
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(rcpts[0].status, AIMX_RCPT_DEFERRED);
    assert_true(rcpts[0].possible_duplicate);
    assert_int_equal(sessions_at[1], 0);
    aimx__delivery_free(&d);
}

static void
host_that_cannot_moves_to_the_next_mx(void **state)
{
    static const struct server one_cannot[] = {
        {"127.0.0.1", 0, 0, 0, NULL, 0, 0, 1},
        {"127.0.0.2", 0, 0, 0, NULL, 0, 0, 0},
    };
    static const struct server both_cannot[] = {
        {"127.0.0.1", 0, 0, 0, NULL, 0, 0, 1},
        {"127.0.0.2", 0, 0, 0, NULL, 0, 0, 1},
    };
    static const char *const to[] = {"u@b.test"};

    (void)state;
    bench(two_mx, N(two_mx), one_cannot, N(one_cannot), 1, to, 1);
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(rcpts[0].status, AIMX_RCPT_DELIVERED);
    assert_string_equal(rcpts[0].mx, "mx2.b.test");
    aimx__delivery_free(&d);

    /* Every MX host cannot: permanent, with the reply's codes. */
    bench(two_mx, N(two_mx), both_cannot, N(both_cannot), 1, to, 1);
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(rcpts[0].status, AIMX_RCPT_BOUNCED);
    assert_int_equal(rcpts[0].code, 555);
    assert_string_equal(rcpts[0].enhanced, "5.6.7");
    aimx__delivery_free(&d);
}

static void
dns_outcomes_reach_every_recipient(void **state)
{
    static const struct answer dns[] = {
        {"null.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"0 ."}},
        {"gone.test.", AIMX_DNS_MX, AIMX_DNS_NXDOMAIN, {NULL}},
        {"flaky.test.", AIMX_DNS_MX, AIMX_DNS_SERVFAIL, {NULL}},
        {"v6.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mx.v6.test."}},
        {"mx.v6.test.", AIMX_DNS_AAAA, AIMX_DNS_OK, {"::1"}},
    };
    static const char *const to[] = {"a@null.test", "b@gone.test",
                                     "c@flaky.test", "d@v6.test"};

    (void)state;
    bench(dns, N(dns), NULL, 0, 1, to, 4);
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(rcpts[0].status, AIMX_RCPT_BOUNCED);
    assert_string_equal(rcpts[0].enhanced, "5.1.10");
    assert_int_equal(rcpts[1].status, AIMX_RCPT_BOUNCED);
    assert_int_equal(rcpts[2].status, AIMX_RCPT_DEFERRED);
    assert_int_equal(attempts_with(&rcpts[2], AIMX_ATTEMPT_DNS), 1);
    /* The policy's skip, with its reason, is in the attempts. */
    assert_int_equal(rcpts[3].status, AIMX_RCPT_BOUNCED);
    assert_int_equal(attempts_with(&rcpts[3], AIMX_ATTEMPT_SKIPPED), 1);
    assert_non_null(strstr(rcpts[3].attempts[0].reason, "no_ipv4"));
    aimx__delivery_free(&d);
}

static const struct answer four_domains[] = {
    {"d1.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mx1.test."}},
    {"d2.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mx2.test."}},
    {"d3.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mx3.test."}},
    {"d4.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mx4.test."}},
    {"mx1.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.1"}},
    {"mx2.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.2"}},
    {"mx3.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.3"}},
    {"mx4.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.4"}},
    /* One first MX host, each domain its own backup: not the same hosts,
     * so not one session, but one destination. */
    {"s1.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 shared.test.", "20 mx1.test."}},
    {"s2.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 shared.test.", "20 mx2.test."}},
    {"s3.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 shared.test.", "20 mx3.test."}},
    {"shared.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.5"}},
    /* Hosted mail: the same two MX hosts of equal preference (so in
     * random order) for h1..h3; h4 names only one of them. */
    {"h1.test.",
     AIMX_DNS_MX,
     AIMX_DNS_OK,
     {"10 mxa.host.test.", "10 mxb.host.test."}},
    {"h2.test.",
     AIMX_DNS_MX,
     AIMX_DNS_OK,
     {"10 mxb.host.test.", "10 mxa.host.test."}},
    {"h3.test.",
     AIMX_DNS_MX,
     AIMX_DNS_OK,
     {"10 mxa.host.test.", "10 mxb.host.test."}},
    {"h4.test.", AIMX_DNS_MX, AIMX_DNS_OK, {"10 mxa.host.test."}},
    {"mxa.host.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.6"}},
    {"mxb.host.test.", AIMX_DNS_A, AIMX_DNS_OK, {"127.0.0.7"}},
};
static const struct server four_servers[] = {
    {"127.0.0.1", 0, 0, 0, NULL, 0, 0, 0},
    {"127.0.0.2", 0, 0, 0, NULL, 0, 0, 0},
    {"127.0.0.3", 0, 0, 0, NULL, 0, 0, 0},
    {"127.0.0.4", 0, 0, 0, NULL, 0, 0, 0},
    {"127.0.0.5", 0, 0, 0, NULL, 0, 0, 0},
    {"127.0.0.6", 0, 0, 0, NULL, 0, 0, 0},
    {"127.0.0.7", 0, 0, 0, "bad@h2.test", 550, 0, 0},
};

static void
domains_in_parallel_within_limits(void **state)
{
    static const char *const to[] = {"a@d1.test", "b@d2.test", "c@d3.test",
                                     "d@d4.test"};

    (void)state;
    /* Room for all four: the transport sees them open together. */
    bench(four_domains, N(four_domains), four_servers, N(four_servers), 4, to,
          4);
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(max_open, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rcpts[i].status, AIMX_RCPT_DELIVERED);
    aimx__delivery_free(&d);

    /* max_parallel = 2: never more than two, though the transport waits
     * for four. */
    bench(four_domains, N(four_domains), four_servers, N(four_servers), 4, to,
          4);
    d.max_parallel = 2;
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(max_open, 2);
    aimx__delivery_free(&d);
}

static void
one_mx_host_gets_at_most_max_per_destination(void **state)
{
    static const char *const to[] = {"a@s1.test", "b@s2.test", "c@s3.test"};

    (void)state;
    bench(four_domains, N(four_domains), four_servers, N(four_servers), 3, to,
          3);
    d.max_per_destination = 1;
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(max_open, 1);
    assert_int_equal(sessions_at[4], 3);
    aimx__delivery_free(&d);
}

static void
domains_with_the_same_mx_hosts_share_a_session(void **state)
{
    static const char *const to[] = {"a@h1.test", "b@h2.test", "c@h3.test",
                                     "d@h4.test", "e@h1.test", "f@d1.test"};

    (void)state;
    bench(four_domains, N(four_domains), four_servers, N(four_servers), 1, to,
          6);
    assert_int_equal(aimx__deliver(&d), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(rcpts[i].status, AIMX_RCPT_DELIVERED);
    /* h1, h2 and h3 in one session (to either host), h4 and d1 in their
     * own. */
    assert_int_equal(sessions_at[5] + sessions_at[6], 2);
    assert_int_equal(sessions_at[0], 1);
    aimx__delivery_free(&d);

    /* A recipient refused in the shared session bounces alone; the other
     * domains' recipients are delivered.  Only mxb.host.test refuses it,
     * and only if the session went there: either way its verdict is its
     * own. */
    static const char *const to2[] = {"a@h1.test", "bad@h2.test", "c@h3.test"};
    bench(four_domains, N(four_domains), four_servers, N(four_servers), 1, to2,
          3);
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(sessions_at[5] + sessions_at[6], 1);
    assert_int_equal(rcpts[0].status, AIMX_RCPT_DELIVERED);
    assert_int_equal(rcpts[2].status, AIMX_RCPT_DELIVERED);
    if (sessions_at[6] == 1) {
        assert_int_equal(rcpts[1].status, AIMX_RCPT_BOUNCED);
        assert_int_equal(rcpts[1].code, 550);
    } else {
        assert_int_equal(rcpts[1].status, AIMX_RCPT_DELIVERED);
    }
    aimx__delivery_free(&d);
}

static void
stop_flag_defers_what_is_left(void **state)
{
    static const char *const to[] = {"a@d1.test"};
    static volatile sig_atomic_t stop = 1;

    (void)state;
    bench(four_domains, N(four_domains), four_servers, N(four_servers), 1, to,
          1);
    d.stop = &stop;
    assert_int_equal(aimx__deliver(&d), 0);
    assert_int_equal(rcpts[0].status, AIMX_RCPT_DEFERRED);
    assert_non_null(strstr(rcpts[0].reply, "interrupted"));
    assert_int_equal(sessions_at[0], 0);
    aimx__delivery_free(&d);
}

static int
setup(void **state)
{
    char path[] = "/tmp/aimx-deliver-XXXXXX";

    (void)state;
    spool_fd = mkstemp(path);
    if (spool_fd < 0)
        return -1;
    unlink(path);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    close(spool_fd);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(delivered_over_the_third_address),
        cmocka_unit_test(greeting_421_tries_the_next_address),
        cmocka_unit_test(permanent_rcpt_reply_is_final),
        cmocka_unit_test(temporary_reply_goes_to_the_next_mx),
        cmocka_unit_test(greeting_5xx_everywhere_bounces_else_defers),
        cmocka_unit_test(lost_after_dot_is_deferred_not_retried),
        cmocka_unit_test(host_that_cannot_moves_to_the_next_mx),
        cmocka_unit_test(dns_outcomes_reach_every_recipient),
        cmocka_unit_test(domains_in_parallel_within_limits),
        cmocka_unit_test(one_mx_host_gets_at_most_max_per_destination),
        cmocka_unit_test(domains_with_the_same_mx_hosts_share_a_session),
        cmocka_unit_test(stop_flag_defers_what_is_left),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
