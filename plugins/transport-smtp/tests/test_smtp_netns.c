/* SPDX-License-Identifier: MIT */
/*
 * Happy Eyeballs and source addresses (issue 6) in a network namespace
 * this test creates, "aimx-he-<pid>", and removes at the end (failures
 * included; a namespace left by a killed run is removed by the next one).
 * Inside it: loopback carrying 127.0.0.1 and ::1, plus 198.18.0.2,
 * 198.18.0.3 (RFC 2544's benchmarking range) and fd00:0:0:1::2,
 * fd00:0:0:1::3 (ULA) as source addresses, and nft rules that silently
 * drop SYNs.  The test process enters the namespace with setns() (its
 * children, the SMTP servers and nft, start inside it), so no packet of
 * these tests leaves it.
 *
 * Needs root (CI runs as root), `ip` (iproute2) and `nft` (nftables);
 * otherwise every test is skipped with the reason.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* setns() */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "smtp_test_util.h"

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define V4_A "198.18.0.2"
#define V4_B "198.18.0.3"
#define V6_A "fd00:0:0:1::2"
#define V6_B "fd00:0:0:1::3"

static const char MSG[] = "From: <a@x.test>\r\n"
                          "To: <b@y.test>\r\n"
                          "Subject: happy eyeballs\r\n"
                          "\r\n"
                          "Hello.\r\n";

static const char *const ONE[] = {"b@y.test", NULL};

static char ns[64];          /* the namespace's name, "" when none */
static int home_fd = -1;     /* the namespace we came from */
static const char *skip_why; /* non-NULL: why every test skips */

static void ns_remove(void);
static void remove_stale(void);
static int run(const char *a0, ...);

struct fx {
    struct t_plugin p;
    struct t_peer peer;
    struct t_result r;
    aimx_session *s;
};

static int
ns_setup(void **state)
{
    char path[128];
    int fd;

    (void)state;
    if (geteuid() != 0) {
        skip_why = "not root: creating a network namespace needs root";
        return 0;
    }
    if (run("ip", "-V", NULL) != 0) {
        skip_why = "no `ip` command (apt-get install iproute2)";
        return 0;
    }
    if (run("nft", "--version", NULL) != 0) {
        skip_why = "no `nft` command (apt-get install nftables)";
        return 0;
    }
    remove_stale();
    snprintf(ns, sizeof ns, "aimx-he-%ld", (long)getpid());
    if (run("ip", "netns", "add", ns, NULL) != 0) {
        ns[0] = '\0';
        skip_why = "`ip netns add` failed (no network namespaces here?)";
        return 0;
    }
    atexit(ns_remove);
    if (run("ip", "-n", ns, "link", "set", "lo", "up", NULL) != 0 ||
        run("ip", "-n", ns, "addr", "add", V4_A "/32", "dev", "lo", NULL) ||
        run("ip", "-n", ns, "addr", "add", V4_B "/32", "dev", "lo", NULL) ||
        run("ip", "-n", ns, "addr", "add", V6_A "/128", "dev", "lo", "nodad",
            NULL) ||
        run("ip", "-n", ns, "addr", "add", V6_B "/128", "dev", "lo", "nodad",
            NULL)) {
        fprintf(stderr, "cannot set up the namespace %s\n", ns);
        return -1;
    }
    home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (home_fd < 0 || fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "cannot enter %s: %s\n", ns, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int
ns_teardown(void **state)
{
    t_peers_cleanup(state);
    ns_remove();
    return 0;
}

/* Back home, and the namespace gone with everything in it (its nft
 * tables and addresses too). */
static void
ns_remove(void)
{
    if (home_fd >= 0) {
        if (setns(home_fd, CLONE_NEWNET) != 0)
            fprintf(stderr, "cannot leave %s: %s\n", ns, strerror(errno));
        close(home_fd);
        home_fd = -1;
    }
    if (ns[0]) {
        run("ip", "netns", "del", ns, NULL);
        ns[0] = '\0';
    }
}

/* Namespaces of earlier runs that were killed before their teardown. */
static void
remove_stale(void)
{
    DIR *d = opendir("/run/netns");
    struct dirent *e;
    long pid;
    char name[300];

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (sscanf(e->d_name, "aimx-he-%ld", &pid) != 1 || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(name, sizeof name, "%s", e->d_name);
        run("ip", "netns", "del", name, NULL);
    }
    closedir(d);
}

/* Runs a command (NULL-terminated arguments); its exit status. */
static int
run(const char *a0, ...)
{
    const char *argv[16];
    va_list ap;
    size_t n = 0;

    argv[n++] = a0;
    va_start(ap, a0);
    while (n < COUNT(argv) - 1 && (argv[n] = va_arg(ap, const char *)))
        n++;
    va_end(ap);
    argv[n] = NULL;
    return t_run(argv);
}

static void
need_ns(void)
{
    if (skip_why) {
        fprintf(stderr, "skipped: %s\n", skip_why);
        skip();
    }
}

/* nft: SYNs to addr:port vanish (inet table "aimx", input hook; nothing
 * else is ever sent there). */
static void
drop_syns(const char *addr, int port)
{
    char rule[128], dport[16];

    snprintf(dport, sizeof dport, "%d", port);
    snprintf(rule, sizeof rule, "%s", strchr(addr, ':') ? "ip6" : "ip");
    if (run("nft", "add", "table", "inet", "aimx", NULL) != 0 ||
        run("nft", "add", "chain", "inet", "aimx", "in",
            "{ type filter hook input priority 0 ; }", NULL) != 0 ||
        run("nft", "add", "rule", "inet", "aimx", "in", rule, "daddr", addr,
            "tcp", "dport", dport, "drop", NULL) != 0)
        fail_msg("nft could not add the DROP rule for %s port %d", addr, port);
}

static void
drop_nothing(void)
{
    run("nft", "delete", "table", "inet", "aimx", NULL);
}

static struct fx *
fx_new(const char *listen, const char *bind4, const char *bind6,
       const char *delay)
{
    struct fx *f = calloc(1, sizeof *f);

    assert_non_null(f);
    t_peer_fault(&f->peer, listen, "{}");
    if (bind4)
        t_cfg_str(&f->p, "bind_ipv4", bind4);
    if (bind6)
        t_cfg_str(&f->p, "bind_ipv6", bind6);
    if (delay)
        t_cfg_str(&f->p, "connection_attempt_delay", delay);
    t_plugin_create(&f->p, f->peer.port);
    return f;
}

static void
fx_free(struct fx *f)
{
    if (f->s)
        f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
    t_plugin_destroy(&f->p);
    t_peer_stop(&f->peer);
    drop_nothing();
    free(f);
}

/* Delivers MSG on the open session; the peer's record of it (free it). */
static char *
deliver(struct fx *f)
{
    char name[64];
    char *json;
    size_t n;

    t_send(&f->p, f->s, "a@x.test", ONE, 0, MSG, sizeof MSG - 1, 0, 0, &f->r);
    if (f->r.res.result_class != AIMX_CLASS_OK)
        fail_msg("send: %s", f->r.res.reply);
    f->p.ops->close(f->p.inst, f->s, t_now_us() + 5000000);
    f->s = NULL;
    t_peer_wait_idle(&f->peer);
    n = t_peer_count(&f->peer, "session-");
    snprintf(name, sizeof name, "session-%zu.json", n);
    json = t_peer_file(&f->peer, name, NULL);
    assert_non_null(json);
    assert_int_equal(t_count(json, "\"dot_reply\": \"250"), 1);
    return json;
}

/* The IPv6 address silently drops SYNs: the IPv4 attempt starts while
 * the IPv6 one is still pending, and wins; delivery goes over IPv4. */
static void
test_he_ipv6_dropped(void **state)
{
    struct fx *f;
    aimx_addr addrs[2];
    const aimx_connect_attempt *a6, *a4;
    char *json;

    (void)state;
    need_ns();
    f = fx_new("127.0.0.1,::1", NULL, NULL, NULL); /* delay: 250ms */
    drop_syns("::1", f->peer.port);
    addrs[0] = t_addr("::1");
    addrs[1] = t_addr("127.0.0.1");
    f->s = t_open(&f->p, addrs, 2, 20000, &f->r);
    if (!f->s)
        fail_msg("open: %s", f->r.res.reply);
    assert_int_equal(f->r.res.attempt_count, 2);
    a6 = AIMX_ATTEMPT_AT(&f->r.res, 0);
    a4 = AIMX_ATTEMPT_AT(&f->r.res, 1);
    assert_memory_equal(&a6->remote, &addrs[0], sizeof addrs[0]);
    assert_memory_equal(&a4->remote, &addrs[1], sizeof addrs[1]);
    /* Not refused: the SYN vanished, and the race gave the attempt up. */
    assert_int_equal(a6->outcome, AIMX_CONNECT_ABANDONED);
    assert_int_equal(a4->outcome, AIMX_CONNECT_OK);
    /* The order of events: IPv6 started first; IPv4 started while IPv6
     * was pending, connected, and only then was IPv6 given up. */
    assert_true(a6->start_us < a4->start_us);
    assert_true(a4->start_us < a6->end_us);
    assert_true(a4->end_us <= a6->end_us);
    assert_int_equal(f->r.res.remote.family, AIMX_AF_INET);
    json = deliver(f);
    assert_non_null(strstr(json, "\"client_addr\": \"127.0.0.1\""));
    free(json);
    /* Only the IPv4 connection reached the server. */
    assert_int_equal(t_peer_count(&f->peer, "session-"), 1);
    fx_free(f);
}

/* Both families dropped: each attempt has its own connect timeout, the
 * second starts while the first is pending, both time out. */
static void
test_he_all_dropped(void **state)
{
    struct fx *f;
    aimx_addr addrs[2];
    const aimx_connect_attempt *a0, *a1;

    (void)state;
    need_ns();
    f = calloc(1, sizeof *f);
    assert_non_null(f);
    t_peer_fault(&f->peer, "127.0.0.1,::1", "{}");
    t_cfg_str(&f->p, "timeouts.connect", "400ms");
    t_cfg_str(&f->p, "connection_attempt_delay", "100ms");
    t_plugin_create(&f->p, f->peer.port);
    drop_syns("::1", f->peer.port);
    drop_syns("127.0.0.1", f->peer.port);
    addrs[0] = t_addr("::1");
    addrs[1] = t_addr("127.0.0.1");
    assert_null(t_open(&f->p, addrs, 2, 20000, &f->r));
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_TEMPORARY);
    assert_int_equal(f->r.res.scope, AIMX_SCOPE_ADDRESS);
    assert_int_equal(f->r.res.kind, AIMX_FAIL_TIMEOUT);
    assert_non_null(strstr(f->r.res.reply, "timed out after 400ms"));
    a0 = AIMX_ATTEMPT_AT(&f->r.res, 0);
    a1 = AIMX_ATTEMPT_AT(&f->r.res, 1);
    assert_int_equal(a0->outcome, AIMX_CONNECT_TIMEOUT);
    assert_int_equal(a1->outcome, AIMX_CONNECT_TIMEOUT);
    assert_true(a1->start_us < a0->end_us);
    assert_true(a0->end_us <= a1->end_us);
    /* The result names the attempt that ended the race: the last one. */
    assert_memory_equal(&f->r.res.remote, &addrs[1], sizeof addrs[1]);
    fx_free(f);
}

/* Both families alive: the preferred (first) address wins; the other is
 * never started (or, on a slow machine, abandoned). */
static void
test_he_both_alive(void **state)
{
    static const char *const orders[][2] = {{"::1", "127.0.0.1"},
                                            {"127.0.0.1", "::1"}};
    struct fx *f;
    aimx_addr addrs[2];
    uint32_t o1;
    size_t i;
    char *json, want[64];

    (void)state;
    need_ns();
    for (i = 0; i < COUNT(orders); i++) {
        f = fx_new("127.0.0.1,::1", NULL, NULL, NULL);
        addrs[0] = t_addr(orders[i][0]);
        addrs[1] = t_addr(orders[i][1]);
        f->s = t_open(&f->p, addrs, 2, 20000, &f->r);
        assert_non_null(f->s);
        assert_int_equal(AIMX_ATTEMPT_AT(&f->r.res, 0)->outcome,
                         AIMX_CONNECT_OK);
        o1 = AIMX_ATTEMPT_AT(&f->r.res, 1)->outcome;
        assert_true(o1 == AIMX_CONNECT_NOT_STARTED ||
                    o1 == AIMX_CONNECT_ABANDONED);
        assert_memory_equal(&f->r.res.remote, &addrs[0], sizeof addrs[0]);
        json = deliver(f);
        snprintf(want, sizeof want, "\"client_addr\": \"%s\"", orders[i][0]);
        assert_non_null(strstr(json, want));
        free(json);
        fx_free(f);
    }
}

/* bind_ipv4 / bind_ipv6: the server sees the configured source address,
 * whichever of the two of its family; each family uses its own. */
static void
test_bind_sources(void **state)
{
    static const struct {
        const char *bind4, *bind6, *dial, *seen;
    } cases[] = {
        {V4_A, NULL, "127.0.0.1", V4_A},
        {V4_B, NULL, "127.0.0.1", V4_B},
        {NULL, V6_A, "::1", V6_A},
        {NULL, V6_B, "::1", V6_B},
        {V4_B, V6_A, "::1", V6_A},
        {V4_B, V6_A, "127.0.0.1", V4_B},
        {NULL, V6_B, "127.0.0.1", "127.0.0.1"}, /* no bind_ipv4: kernel's */
    };
    struct fx *f;
    aimx_addr dial, seen;
    char *json, want[96];
    size_t i;

    (void)state;
    need_ns();
    for (i = 0; i < COUNT(cases); i++) {
        f = fx_new("127.0.0.1,::1", cases[i].bind4, cases[i].bind6, NULL);
        dial = t_addr(cases[i].dial);
        seen = t_addr(cases[i].seen);
        f->s = t_open(&f->p, &dial, 1, 20000, &f->r);
        if (!f->s)
            fail_msg("case %zu: %s", i, f->r.res.reply);
        assert_memory_equal(&f->r.res.local, &seen, sizeof seen);
        assert_memory_equal(&AIMX_ATTEMPT_AT(&f->r.res, 0)->local, &seen,
                            sizeof seen);
        assert_int_not_equal(f->r.res.local_port, 0);
        json = deliver(f);
        snprintf(want, sizeof want, "\"client_addr\": \"%s\"", cases[i].seen);
        if (!strstr(json, want))
            fail_msg("case %zu: want %s in %s", i, want, json);
        free(json);
        fx_free(f);
    }
}

/* A source address this machine does not have: create() fails naming
 * the key; one that goes away after create(): a local failure of the
 * connect, this address. */
static void
test_bind_not_here(void **state)
{
    static const struct aimx_fake_cfg cfg4[] = {
        AIMX_FAKE_CFG_STRING("bind_ipv4", "198.18.0.9")};
    static const struct aimx_fake_cfg cfg6[] = {
        AIMX_FAKE_CFG_STRING("bind_ipv6", "fd00:0:0:1::9")};
    const struct aimx_fake_cfg *cfgs[] = {cfg4, cfg6};
    const char *needles[] = {"bind_ipv4: 198.18.0.9 is not an address",
                             "bind_ipv6: fd00:0:0:1::9 is not an address"};
    struct aimx_fake_host *fh = calloc(1, sizeof *fh);
    const aimx_plugin_descriptor *d = transport_smtp_LTX_aimx_plugin_v1();
    const aimx_connect_attempt *a;
    struct fx *f;
    aimx_addr dial = t_addr("127.0.0.1");
    void *inst = NULL;
    size_t i;

    (void)state;
    need_ns();
    assert_non_null(fh);
    for (i = 0; i < COUNT(cfgs); i++) {
        aimx_fake_host_init(fh, cfgs[i], 1);
        assert_int_not_equal(
            d->create(aimx_fake_host_api(fh), aimx_fake_host_handle(fh), &inst),
            AIMX_OK);
        if (!aimx_fake_host_has_error(fh, needles[i]))
            fail_msg("no \"%s\" (%s)", needles[i],
                     fh->error_count ? fh->errors[0] : "no error");
        assert_int_equal(fh->alloc_live, 0);
    }
    free(fh);

    f = fx_new("127.0.0.1", V4_B, NULL, NULL);
    assert_int_equal(run("ip", "addr", "del", V4_B "/32", "dev", "lo", NULL),
                     0);
    assert_null(t_open(&f->p, &dial, 1, 20000, &f->r));
    assert_int_equal(run("ip", "addr", "add", V4_B "/32", "dev", "lo", NULL),
                     0);
    assert_int_equal(f->r.res.result_class, AIMX_CLASS_TEMPORARY);
    assert_int_equal(f->r.res.scope, AIMX_SCOPE_ADDRESS);
    assert_int_equal(f->r.res.kind, AIMX_FAIL_LOCAL);
    if (!strstr(f->r.res.reply, "source address " V4_B))
        fail_msg("reply \"%s\"", f->r.res.reply);
    a = AIMX_ATTEMPT_AT(&f->r.res, 0);
    assert_int_equal(a->outcome, AIMX_CONNECT_ERROR);
    assert_int_equal(a->sys_errno, EADDRNOTAVAIL);
    /* Back again: it works. */
    f->s = t_open(&f->p, &dial, 1, 20000, &f->r);
    assert_non_null(f->s);
    fx_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_he_ipv6_dropped),
        cmocka_unit_test(test_he_all_dropped),
        cmocka_unit_test(test_he_both_alive),
        cmocka_unit_test(test_bind_sources),
        cmocka_unit_test(test_bind_not_here),
    };
    return cmocka_run_group_tests(tests, ns_setup, ns_teardown);
}
