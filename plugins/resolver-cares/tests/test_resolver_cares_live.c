/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of resolver-cares against real DNS servers on loopback,
 * which the test starts and stops itself (by PID): dnsmasq (dnsmasq-base)
 * for the ordinary answers, and the project's DNS fault peer
 * (tests/peers/dns_fault_peer.py) for SERVFAIL, REFUSED, silence, delays,
 * truncation, unchased CNAMEs and null MX.  Concurrency is proved by the
 * peer's count of outstanding queries, never by timing.
 *
 * The plugin's sources are built into this test (AIMX_PLUGIN_STATIC) and
 * driven through its descriptor and the SDK's fake host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

#ifndef RCARES_TEST_PYTHON
#define RCARES_TEST_PYTHON "/usr/bin/python3"
#endif
#ifndef RCARES_TEST_PEER
#define RCARES_TEST_PEER "tests/peers/dns_fault_peer.py"
#endif
#ifndef RCARES_TEST_DNSMASQ
#define RCARES_TEST_DNSMASQ "/usr/sbin/dnsmasq"
#endif
#define SETPRIV "/usr/bin/setpriv"

#define COUNT(a)    (sizeof(a) / sizeof((a)[0]))
#define MAX_SERVERS 4
#define WAIT_MS     10000u /* a completion that should come at all */

extern char **environ;

const aimx_plugin_descriptor *resolver_cares_LTX_aimx_plugin_v1(void);

/* A server process the test owns. */
struct proc {
    pid_t pid;
    int port;
    char name[16];
    char log[256];
    char stats[256];
    char label[64];  /* "127.0.0.1:PORT" */
    char label6[64]; /* "[::1]:PORT" when it listens there too */
};

struct world {
    char dir[64];
    struct proc peer_a; /* the fault peer: faults, null MX, chains... */
    struct proc peer_b; /* a second fault peer: failover between two */
    struct proc dnsmasq;
    int have_dnsmasq;
    char dead[64]; /* a loopback port where nothing listens */
    char dead2[64];
};

/* One plugin instance on the fake host. */
struct inst {
    struct aimx_fake_host fh;
    struct aimx_fake_cfg cfg[3 + MAX_SERVERS];
    char paths[MAX_SERVERS][16];
    void *p;
    const aimx_resolver_ops *ops;
};

static struct world W;

/* Fault peer A's zone. */
static const char ZONE_A[] =
    "{\"records\": [\n"
    " {\"name\": \"null.test.\", \"type\": \"MX\", \"data\": \"0 .\"},\n"
    " {\"name\": \"mx.test.\", \"type\": \"MX\", \"data\": \"10 mx1.test.\"},\n"
    " {\"name\": \"txt2.test.\", \"type\": \"TXT\", \"data\": [\"a\", "
    "\"b\"]},\n"
    " {\"name\": \"txt2.test.\", \"type\": \"TXT\", \"data\": \"c\"},\n"
    " {\"name\": \"nc.test.\", \"type\": \"CNAME\", \"data\": \"nc2.test.\"},\n"
    " {\"name\": \"nc2.test.\", \"type\": \"CNAME\", \"data\": "
    "\"nc3.test.\"},\n"
    " {\"name\": \"nc3.test.\", \"type\": \"A\", \"data\": \"127.0.0.7\"},\n"
    " {\"name\": \"loop1.test.\", \"type\": \"CNAME\", \"data\": "
    "\"loop2.test.\"},\n"
    " {\"name\": \"loop2.test.\", \"type\": \"CNAME\", \"data\": "
    "\"loop1.test.\"},\n"
    " {\"name\": \"c0.test.\", \"type\": \"CNAME\", \"data\": \"c1.test.\"},\n"
    " {\"name\": \"c1.test.\", \"type\": \"CNAME\", \"data\": \"c2.test.\"},\n"
    " {\"name\": \"c2.test.\", \"type\": \"CNAME\", \"data\": \"c3.test.\"},\n"
    " {\"name\": \"c3.test.\", \"type\": \"CNAME\", \"data\": \"c4.test.\"},\n"
    " {\"name\": \"c4.test.\", \"type\": \"CNAME\", \"data\": \"c5.test.\"},\n"
    " {\"name\": \"c5.test.\", \"type\": \"CNAME\", \"data\": \"c6.test.\"},\n"
    " {\"name\": \"c6.test.\", \"type\": \"CNAME\", \"data\": \"c7.test.\"},\n"
    " {\"name\": \"c7.test.\", \"type\": \"CNAME\", \"data\": \"c8.test.\"},\n"
    " {\"name\": \"c8.test.\", \"type\": \"CNAME\", \"data\": \"c9.test.\"},\n"
    " {\"name\": \"c9.test.\", \"type\": \"A\", \"data\": \"127.0.0.9\"},\n"
    " {\"name\": \"tc.test.\", \"type\": \"A\", \"data\": \"127.0.0.8\"},\n"
    " {\"name\": \"fo.test.\", \"type\": \"A\", \"data\": \"127.0.0.66\"},\n"
    " {\"name\": \"dl.test.\", \"type\": \"A\", \"data\": \"127.0.0.5\"},\n"
    " {\"name\": \"probe.test.\", \"type\": \"A\", \"data\": \"127.0.0.1\"}\n"
    "],\n"
    "\"behaviours\": [\n"
    " {\"name\": \"nc.test.\", \"type\": \"*\", \"action\": \"nochase\"},\n"
    " {\"name\": \"nc2.test.\", \"type\": \"*\", \"action\": \"nochase\"},\n"
    " {\"name\": \"tc.test.\", \"type\": \"*\", \"action\": \"truncate\"},\n"
    " {\"name\": \"sf.test.\", \"type\": \"*\", \"action\": \"servfail\"},\n"
    " {\"name\": \"fo.test.\", \"type\": \"*\", \"action\": \"servfail\"},\n"
    " {\"name\": \"mixed.test.\", \"type\": \"*\", \"action\": \"servfail\"},\n"
    " {\"name\": \"rf.test.\", \"type\": \"*\", \"action\": \"refused\"},\n"
    " {\"name\": \"drop.test.\", \"type\": \"*\", \"action\": \"drop\"},\n"
    " {\"name\": \"dl.test.\", \"type\": \"*\", \"action\": \"delay\", "
    "\"ms\": 3000}\n"
    "]}\n";

/* Fault peer B's: where A says SERVFAIL, B says REFUSED, and so on. */
static const char ZONE_B[] =
    "{\"records\": [\n"
    " {\"name\": \"probe.test.\", \"type\": \"A\", \"data\": \"127.0.0.1\"}\n"
    "],\n"
    "\"behaviours\": [\n"
    " {\"name\": \"sf.test.\", \"type\": \"*\", \"action\": \"servfail\"},\n"
    " {\"name\": \"rf.test.\", \"type\": \"*\", \"action\": \"refused\"},\n"
    " {\"name\": \"mixed.test.\", \"type\": \"*\", \"action\": \"refused\"},\n"
    " {\"name\": \"drop.test.\", \"type\": \"*\", \"action\": \"refused\"}\n"
    "]}\n";

/* A peer of its own for the concurrency proof: its max_outstanding counts
 * nothing but that test's queries. */
static const char ZONE_SLOW[] =
    "{\"records\": [\n"
    " {\"name\": \"slow.test.\", \"type\": \"A\", \"data\": \"127.0.0.1\"},\n"
    " {\"name\": \"probe.test.\", \"type\": \"A\", \"data\": \"127.0.0.1\"}\n"
    "],\n"
    "\"behaviours\": [\n"
    " {\"name\": \"slow.test.\", \"type\": \"*\", \"action\": \"delay\", "
    "\"ms\": 300}\n"
    "]}\n";

static int write_file(const char *path, const char *text);
static void rm_dir(const char *dir);
static pid_t spawn(const char *const *argv, const char *log);
static void proc_stop(struct proc *p);
static int proc_alive(struct proc *p);
static int free_port(void);
static int peer_start(struct proc *p, const char *name, const char *zone,
                      int with_v6);
static int dnsmasq_start(struct proc *p);
static int probe(int port);
static char *slurp(const char *path);
static int stats_wait(const struct proc *p, long min_queries, long *queries,
                      long *max_out);
static int stats_has(const struct proc *p, const char *needle);
static int stats_find(const struct proc *p, const char *needle, long *queries);
static struct inst *inst_new(const char *timeout, int tries, ...);
static void inst_free(struct inst *in);
static void start(struct inst *in, const char *name, uint16_t type,
                  uint64_t deadline_us, struct aimx_fake_dns_sink *s);
static uint32_t resolve(struct inst *in, const char *name, uint16_t type,
                        struct aimx_fake_dns_sink *s);
static void sink_ok(const struct aimx_fake_dns_sink *s);
static uint64_t mono_us(void);
static void sleep_ms(unsigned ms);

/* ------------------------------------------------------------------------
 * Answers.
 */

static void
test_dnsmasq_a_two_addresses(void **state)
{
    struct aimx_fake_dns_sink s;
    struct inst *in;
    char text[2][INET_ADDRSTRLEN];
    size_t i;

    (void)state;
    if (!W.have_dnsmasq)
        skip();
    in = inst_new("2s", 2, W.dnsmasq.label, NULL);
    assert_int_equal(resolve(in, "two.test.", AIMX_DNS_A, &s), AIMX_DNS_OK);
    assert_int_equal(s.record_count, 2);
    for (i = 0; i < 2; i++) {
        const aimx_dns_record *r = &s.records[i];
        assert_int_equal(r->type, AIMX_DNS_A);
        assert_string_equal(r->owner, "two.test");
        assert_int_equal(r->ttl, 60);
        assert_int_equal(r->address.family, AIMX_AF_INET);
        assert_int_equal(r->rdata_len, 4);
        assert_memory_equal(r->rdata, r->address.bytes, 4);
        inet_ntop(AF_INET, r->address.bytes, text[i], sizeof text[i]);
    }
    /* dnsmasq's order is its own; the set is what counts. */
    assert_true((strcmp(text[0], "127.0.0.2") == 0 &&
                 strcmp(text[1], "127.0.0.3") == 0) ||
                (strcmp(text[0], "127.0.0.3") == 0 &&
                 strcmp(text[1], "127.0.0.2") == 0));
    /* dnsmasq does not validate: the AD bit is known, and clear. */
    assert_int_equal(s.completion.flags, AIMX_DNS_F_AD_KNOWN);
    assert_string_equal(s.completion.server, W.dnsmasq.label);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);
}

static void
test_dnsmasq_aaaa_mx_txt_ptr(void **state)
{
    struct aimx_fake_dns_sink s;
    struct inst *in;
    unsigned char v6[16];
    int seen10 = 0, seen20 = 0;
    size_t i;

    (void)state;
    if (!W.have_dnsmasq)
        skip();
    in = inst_new("2s", 2, W.dnsmasq.label, NULL);

    assert_int_equal(resolve(in, "v6.test.", AIMX_DNS_AAAA, &s), AIMX_DNS_OK);
    assert_int_equal(s.record_count, 1);
    assert_int_equal(s.records[0].type, AIMX_DNS_AAAA);
    assert_int_equal(s.records[0].address.family, AIMX_AF_INET6);
    inet_pton(AF_INET6, "::1", v6);
    assert_memory_equal(s.records[0].address.bytes, v6, 16);
    assert_int_equal(s.records[0].rdata_len, 16);
    aimx_fake_dns_sink_free(&s);

    assert_int_equal(resolve(in, "mx.dm.test.", AIMX_DNS_MX, &s), AIMX_DNS_OK);
    assert_int_equal(s.record_count, 2);
    for (i = 0; i < s.record_count; i++) {
        const aimx_dns_record *r = &s.records[i];
        assert_int_equal(r->type, AIMX_DNS_MX);
        assert_string_equal(r->owner, "mx.dm.test");
        if (r->preference == 10) {
            assert_string_equal(r->target, "mx1.dm.test");
            seen10++;
        } else {
            assert_int_equal(r->preference, 20);
            assert_string_equal(r->target, "mx2.dm.test");
            seen20++;
        }
        /* Self-contained RDATA: preference, then the whole name. */
        assert_int_equal(r->rdata_len, 2 + 13);
        assert_int_equal(r->rdata[1], r->preference);
    }
    assert_int_equal(seen10 + seen20, 2);
    assert_int_equal(seen10, 1);
    aimx_fake_dns_sink_free(&s);

    /* One record of two strings: joined (RFC 7208 section 3.3). */
    assert_int_equal(resolve(in, "txt.dm.test.", AIMX_DNS_TXT, &s),
                     AIMX_DNS_OK);
    assert_int_equal(s.record_count, 1);
    assert_int_equal(s.records[0].text_len, 11);
    assert_memory_equal(s.records[0].text, "v=spf1 -all", 11);
    assert_int_equal(s.records[0].rdata_len, 13);
    aimx_fake_dns_sink_free(&s);

    assert_int_equal(resolve(in, "2.0.0.127.in-addr.arpa.", AIMX_DNS_PTR, &s),
                     AIMX_DNS_OK);
    assert_int_equal(s.record_count, 1);
    assert_int_equal(s.records[0].type, AIMX_DNS_PTR);
    assert_string_equal(s.records[0].owner, "2.0.0.127.in-addr.arpa");
    assert_string_equal(s.records[0].target, "two.test");
    aimx_fake_dns_sink_free(&s);

    assert_int_equal(resolve(in, "nx.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_NXDOMAIN);
    assert_int_equal(s.record_count, 0);
    assert_int_equal(s.completion.flags, AIMX_DNS_F_AD_KNOWN);
    aimx_fake_dns_sink_free(&s);

    /* The name exists, with no MX. */
    assert_int_equal(resolve(in, "two.test.", AIMX_DNS_MX, &s),
                     AIMX_DNS_NODATA);
    assert_int_equal(s.record_count, 0);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);
}

static void
test_dnsmasq_cnames(void **state)
{
    struct aimx_fake_dns_sink s;
    struct inst *in;

    (void)state;
    if (!W.have_dnsmasq)
        skip();
    in = inst_new("2s", 2, W.dnsmasq.label, NULL);

    /* Chased by the server: the CNAME first, then the address. */
    assert_int_equal(resolve(in, "alias.test.", AIMX_DNS_A, &s), AIMX_DNS_OK);
    assert_int_equal(s.record_count, 2);
    assert_int_equal(s.records[0].type, AIMX_DNS_CNAME);
    assert_string_equal(s.records[0].owner, "alias.test");
    assert_string_equal(s.records[0].target, "target.test");
    assert_int_equal(s.records[1].type, AIMX_DNS_A);
    assert_string_equal(s.records[1].owner, "target.test");
    assert_memory_equal(s.records[1].address.bytes, "\x7f\0\0\x09", 4);
    aimx_fake_dns_sink_free(&s);

    /* A CNAME and nothing of the type: NODATA, with the CNAME followed. */
    assert_int_equal(resolve(in, "alias.test.", AIMX_DNS_MX, &s),
                     AIMX_DNS_NODATA);
    assert_int_equal(s.record_count, 1);
    assert_int_equal(s.records[0].type, AIMX_DNS_CNAME);
    assert_string_equal(s.records[0].target, "target.test");
    aimx_fake_dns_sink_free(&s);

    /* Asking for the CNAME itself. */
    assert_int_equal(resolve(in, "alias.test.", AIMX_DNS_CNAME, &s),
                     AIMX_DNS_OK);
    assert_int_equal(s.record_count, 1);
    assert_int_equal(s.records[0].type, AIMX_DNS_CNAME);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);
}

static void
test_peer_null_mx_txt_ipv6_server(void **state)
{
    struct aimx_fake_dns_sink s;
    struct inst *in;

    (void)state;
    /* The peer over IPv6, given as "[::1]:PORT". */
    in = inst_new("2s", 2, W.peer_a.label6, NULL);
    assert_int_equal(resolve(in, "null.test.", AIMX_DNS_MX, &s), AIMX_DNS_OK);
    assert_int_equal(s.record_count, 1);
    assert_int_equal(s.records[0].preference, 0);
    assert_string_equal(s.records[0].target, ".");
    assert_string_equal(s.completion.server, W.peer_a.label6);
    aimx_fake_dns_sink_free(&s);

    /* Two records: each joins its own strings. */
    assert_int_equal(resolve(in, "txt2.test.", AIMX_DNS_TXT, &s), AIMX_DNS_OK);
    assert_int_equal(s.record_count, 2);
    assert_int_equal(s.records[0].text_len, 2);
    assert_memory_equal(s.records[0].text, "ab", 2);
    assert_int_equal(s.records[1].text_len, 1);
    assert_memory_equal(s.records[1].text, "c", 1);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);
}

static void
test_peer_cname_not_chased(void **state)
{
    struct aimx_fake_dns_sink s;
    struct inst *in;

    (void)state;
    /* nc -> nc2 -> nc3 (A), and the server chases none of it: the plugin
     * asks for nc2 and nc3 itself. */
    in = inst_new("2s", 2, W.peer_a.label, NULL);
    assert_int_equal(resolve(in, "nc.test.", AIMX_DNS_A, &s), AIMX_DNS_OK);
    assert_int_equal(s.record_count, 3);
    assert_int_equal(s.records[0].type, AIMX_DNS_CNAME);
    assert_string_equal(s.records[0].owner, "nc.test");
    assert_string_equal(s.records[0].target, "nc2.test");
    assert_int_equal(s.records[1].type, AIMX_DNS_CNAME);
    assert_string_equal(s.records[1].owner, "nc2.test");
    assert_string_equal(s.records[1].target, "nc3.test");
    assert_int_equal(s.records[2].type, AIMX_DNS_A);
    assert_string_equal(s.records[2].owner, "nc3.test");
    assert_memory_equal(s.records[2].address.bytes, "\x7f\0\0\x07", 4);
    aimx_fake_dns_sink_free(&s);
    assert_true(
        stats_has(&W.peer_a, "\"name\": \"nc2.test.\", \"type\": \"A\""));
    assert_true(
        stats_has(&W.peer_a, "\"name\": \"nc3.test.\", \"type\": \"A\""));

    /* A loop, and a chain longer than 8 steps: temporary, like a
     * recursive server's SERVFAIL. */
    assert_int_equal(resolve(in, "loop1.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_SERVFAIL);
    assert_int_equal(s.record_count, 0);
    aimx_fake_dns_sink_free(&s);
    assert_int_equal(resolve(in, "c0.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_SERVFAIL);
    assert_int_equal(s.record_count, 0);
    aimx_fake_dns_sink_free(&s);
    /* Eight steps are still fine. */
    assert_int_equal(resolve(in, "c1.test.", AIMX_DNS_A, &s), AIMX_DNS_OK);
    assert_int_equal(s.record_count, 9);
    assert_string_equal(s.records[8].owner, "c9.test");
    aimx_fake_dns_sink_free(&s);
    inst_free(in);
}

static void
test_peer_truncated_goes_tcp(void **state)
{
    struct aimx_fake_dns_sink s;
    struct inst *in;

    (void)state;
    in = inst_new("2s", 2, W.peer_a.label, NULL);
    assert_int_equal(resolve(in, "tc.test.", AIMX_DNS_A, &s), AIMX_DNS_OK);
    assert_int_equal(s.record_count, 1);
    assert_memory_equal(s.records[0].address.bytes, "\x7f\0\0\x08", 4);
    aimx_fake_dns_sink_free(&s);
    assert_true(stats_has(&W.peer_a, "\"name\": \"tc.test.\", \"type\": "
                                     "\"A\", \"proto\": \"udp\""));
    assert_true(stats_has(&W.peer_a, "\"name\": \"tc.test.\", \"type\": "
                                     "\"A\", \"proto\": \"tcp\""));
    inst_free(in);
}

/* ------------------------------------------------------------------------
 * Failures: four different outcomes, and failover.
 */

static void
test_four_failures_differ(void **state)
{
    struct aimx_fake_dns_sink s;
    struct inst *in;
    uint32_t o[4];
    size_t i, j;

    (void)state;
    in = inst_new("200ms", 1, W.peer_a.label, NULL);
    o[0] = resolve(in, "sf.test.", AIMX_DNS_A, &s);
    assert_int_equal(o[0], AIMX_DNS_SERVFAIL);
    assert_int_equal(s.record_count, 0);
    assert_int_equal(s.completion.flags, 0);
    assert_non_null(strstr(s.diag, "servfail"));
    aimx_fake_dns_sink_free(&s);
    o[1] = resolve(in, "rf.test.", AIMX_DNS_A, &s);
    assert_int_equal(o[1], AIMX_DNS_REFUSED);
    aimx_fake_dns_sink_free(&s);
    o[2] = resolve(in, "drop.test.", AIMX_DNS_A, &s);
    assert_int_equal(o[2], AIMX_DNS_TIMEOUT);
    assert_non_null(strstr(s.diag, "timeout"));
    aimx_fake_dns_sink_free(&s);
    inst_free(in);

    /* Nothing listens there: ICMP port unreachable, ECONNREFUSED. */
    in = inst_new("200ms", 1, W.dead, NULL);
    o[3] = resolve(in, "sf.test.", AIMX_DNS_A, &s);
    assert_int_equal(o[3], AIMX_DNS_UNREACHABLE);
    assert_non_null(strstr(s.diag, "unreachable"));
    aimx_fake_dns_sink_free(&s);
    inst_free(in);

    for (i = 0; i < 4; i++)
        for (j = i + 1; j < 4; j++)
            assert_int_not_equal(o[i], o[j]);
}

static void
test_failover_to_second_server(void **state)
{
    struct aimx_fake_dns_sink s;
    struct inst *in;

    (void)state;
    if (!W.have_dnsmasq)
        skip();
    /* SERVFAIL from the first, the answer from the second. */
    in = inst_new("200ms", 1, W.peer_a.label, W.dnsmasq.label, NULL);
    assert_int_equal(resolve(in, "fo.test.", AIMX_DNS_A, &s), AIMX_DNS_OK);
    assert_int_equal(s.record_count, 1);
    /* dnsmasq's address, not the peer's 127.0.0.66. */
    assert_memory_equal(s.records[0].address.bytes, "\x7f\0\0\x0a", 4);
    assert_string_equal(s.completion.server, W.dnsmasq.label);
    aimx_fake_dns_sink_free(&s);
    assert_true(stats_has(&W.peer_a, "\"name\": \"fo.test.\""));

    /* Silence from the first. */
    assert_int_equal(resolve(in, "drop.test.", AIMX_DNS_A, &s), AIMX_DNS_OK);
    assert_string_equal(s.completion.server, W.dnsmasq.label);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);

    /* The first unreachable. */
    in = inst_new("200ms", 1, W.dead, W.dnsmasq.label, NULL);
    assert_int_equal(resolve(in, "fo.test.", AIMX_DNS_A, &s), AIMX_DNS_OK);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);

    /* NXDOMAIN is an answer: the second server is never asked. */
    in = inst_new("200ms", 1, W.dnsmasq.label, W.peer_a.label, NULL);
    assert_int_equal(resolve(in, "nx-nofailover.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_NXDOMAIN);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);
    /* A later query to the peer: once it shows in the stats, so would the
     * NXDOMAIN query have, had it been sent. */
    in = inst_new("2s", 1, W.peer_a.label, NULL);
    assert_int_equal(resolve(in, "barrier-nofailover.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_NXDOMAIN);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);
    assert_true(stats_has(&W.peer_a, "barrier-nofailover.test."));
    assert_false(stats_has(&W.peer_a, "nx-nofailover.test."));
}

static void
test_every_server_failed(void **state)
{
    struct aimx_fake_dns_sink s;
    struct inst *in;

    (void)state;
    in = inst_new("200ms", 1, W.peer_a.label, W.peer_b.label, NULL);
    assert_int_equal(resolve(in, "sf.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_SERVFAIL);
    /* Both were asked, and the diagnostic says what each did. */
    assert_non_null(strstr(s.diag, W.peer_a.label));
    assert_non_null(strstr(s.diag, W.peer_b.label));
    aimx_fake_dns_sink_free(&s);
    assert_int_equal(resolve(in, "rf.test.", AIMX_DNS_A, &s), AIMX_DNS_REFUSED);
    aimx_fake_dns_sink_free(&s);
    /* SERVFAIL and REFUSED mixed. */
    assert_int_equal(resolve(in, "mixed.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_SERVFAIL);
    aimx_fake_dns_sink_free(&s);
    /* Silence, then REFUSED: the server that answered speaks. */
    assert_int_equal(resolve(in, "drop.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_REFUSED);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);

    /* Unreachable, then silence (asked twice): TIMEOUT. */
    in = inst_new("200ms", 2, W.dead, W.peer_a.label, NULL);
    assert_int_equal(resolve(in, "drop.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_TIMEOUT);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);

    /* Nobody there at all. */
    in = inst_new("200ms", 2, W.dead, W.dead2, NULL);
    assert_int_equal(resolve(in, "drop.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_UNREACHABLE);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);
}

/* ------------------------------------------------------------------------
 * Names, concurrency, cancel, deadline, destroy.
 */

static void
test_relative_name_sends_nothing(void **state)
{
    struct aimx_fake_dns_sink s;
    struct inst *in;
    long before = 0, after = 0;

    (void)state;
    in = inst_new("2s", 2, W.peer_a.label, NULL);
    assert_int_equal(resolve(in, "before-badname.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_NXDOMAIN);
    aimx_fake_dns_sink_free(&s);
    assert_int_equal(stats_find(&W.peer_a, "before-badname", &before), 0);

    aimx_fake_dns_sink_init(&s);
    start(in, "relative-name.test", AIMX_DNS_A, 0, &s);
    /* Completed inside lookup(). */
    assert_int_equal(s.completed, 1);
    sink_ok(&s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_BADNAME);
    aimx_fake_dns_sink_free(&s);

    /* One more real query: the peer saw that one and nothing else. */
    assert_int_equal(resolve(in, "after-badname.test.", AIMX_DNS_A, &s),
                     AIMX_DNS_NXDOMAIN);
    aimx_fake_dns_sink_free(&s);
    assert_int_equal(stats_find(&W.peer_a, "after-badname", &after), 0);
    assert_int_equal(after, before + 1);
    assert_false(stats_has(&W.peer_a, "relative-name"));
    inst_free(in);
}

static void
test_concurrent_lookups_overlap(void **state)
{
    static struct aimx_fake_dns_sink s[20];
    struct proc slow;
    struct inst *in;
    long before = 0, queries = 0, max_out = 0;
    size_t i;

    (void)state;
    assert_int_equal(peer_start(&slow, "slow", ZONE_SLOW, 0), 0);
    /* The readiness probe is the peer's only query so far. */
    assert_int_equal(stats_find(&slow, "probe.test.", &before), 0);
    in = inst_new("2s", 1, slow.label, NULL);
    for (i = 0; i < COUNT(s); i++) {
        aimx_fake_dns_sink_init(&s[i]);
        start(in, "slow.test.", AIMX_DNS_A, 0, &s[i]);
    }
    for (i = 0; i < COUNT(s); i++) {
        assert_true(aimx_fake_dns_sink_wait(&s[i], WAIT_MS));
        sink_ok(&s[i]);
        assert_int_equal(s[i].completion.outcome, AIMX_DNS_OK);
        assert_int_equal(s[i].record_count, 1);
        aimx_fake_dns_sink_free(&s[i]);
    }
    inst_free(in);
    assert_int_equal(stats_wait(&slow, before + 20, &queries, &max_out), 0);
    print_message("slow peer: %ld queries, %ld outstanding at most\n",
                  queries - before, max_out);
    proc_stop(&slow);
    /* Each lookup asked once (no retry), and they were on the wire
     * together: one at a time would leave max_outstanding at 1. */
    assert_int_equal(queries, before + 20);
    assert_true(max_out >= 15);
}

static void
test_cancel(void **state)
{
    struct aimx_fake_dns_sink s, other;
    struct inst *in;

    (void)state;
    /* A timeout above the peer's 3 s delay, so that the other lookup gets
     * its answer. */
    in = inst_new("5s", 1, W.peer_a.label, NULL);
    aimx_fake_dns_sink_init(&s);
    aimx_fake_dns_sink_init(&other);
    start(in, "dl.test.", AIMX_DNS_A, 0, &s); /* answered after 3 s */
    start(in, "dl.test.", AIMX_DNS_A, 0, &other);
    sleep_ms(100);
    assert_false(s.completed);
    in->ops->cancel(in->p, aimx_fake_dns_sink_handle(&s));
    /* Long before the answer would come. */
    assert_true(aimx_fake_dns_sink_wait(&s, 1500));
    sink_ok(&s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_CANCELLED);
    assert_int_equal(s.record_count, 0);
    /* Only that one. */
    assert_false(other.completed);
    /* A second cancel of a completed sink is a no-op. */
    in->ops->cancel(in->p, aimx_fake_dns_sink_handle(&s));
    assert_true(aimx_fake_dns_sink_wait(&other, WAIT_MS));
    assert_int_equal(other.completion.outcome, AIMX_DNS_OK);
    assert_int_equal(s.completions, 1);
    aimx_fake_dns_sink_free(&s);
    aimx_fake_dns_sink_free(&other);
    inst_free(in);
}

static void
test_deadline(void **state)
{
    struct aimx_fake_dns_sink s;
    struct inst *in;
    uint64_t t0;

    (void)state;
    in = inst_new("2s", 2, W.peer_a.label, NULL);
    aimx_fake_dns_sink_init(&s);
    t0 = mono_us();
    start(in, "dl.test.", AIMX_DNS_A, t0 + 300000u, &s);
    assert_true(aimx_fake_dns_sink_wait(&s, 2500));
    sink_ok(&s);
    assert_int_equal(s.completion.outcome, AIMX_DNS_TIMEOUT);
    assert_int_equal(s.record_count, 0);
    /* Before the 3 s answer, and no earlier than the deadline. */
    assert_true(mono_us() - t0 >= 290000u);
    aimx_fake_dns_sink_free(&s);

    /* A deadline already past. */
    aimx_fake_dns_sink_init(&s);
    start(in, "probe.test.", AIMX_DNS_A, mono_us() - 1, &s);
    assert_true(aimx_fake_dns_sink_wait(&s, WAIT_MS));
    assert_int_equal(s.completion.outcome, AIMX_DNS_TIMEOUT);
    aimx_fake_dns_sink_free(&s);
    inst_free(in);
}

static void
test_destroy_cancels_pending(void **state)
{
    struct aimx_fake_dns_sink s[3];
    struct inst *in;
    size_t i;

    (void)state;
    in = inst_new("2s", 2, W.peer_a.label, NULL);
    for (i = 0; i < COUNT(s); i++) {
        aimx_fake_dns_sink_init(&s[i]);
        start(in, "dl.test.", AIMX_DNS_A, 0, &s[i]);
    }
    sleep_ms(50);
    inst_free(in);
    /* Completed by the time destroy() returned, once each. */
    for (i = 0; i < COUNT(s); i++) {
        assert_int_equal(s[i].completed, 1);
        sink_ok(&s[i]);
        assert_int_equal(s[i].completion.outcome, AIMX_DNS_CANCELLED);
        aimx_fake_dns_sink_free(&s[i]);
    }
}

/* A hand-driven server: the query carries AD (and RD), and an answer's AD
 * bit comes back as AIMX_DNS_F_AD. */
static void
test_ad_bit(void **state)
{
    struct sockaddr_in sa, from;
    socklen_t fl, sl = sizeof sa;
    struct aimx_fake_dns_sink s;
    struct inst *in;
    unsigned char q[512];
    char label[64];
    int fd, round;

    (void)state;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(label, sizeof label, "127.0.0.1:%u", ntohs(sa.sin_port));
    in = inst_new("2s", 1, label, NULL);

    for (round = 0; round < 2; round++) {
        struct pollfd pfd = {fd, POLLIN, 0};
        static const unsigned char rr[] = {0xc0, 12, 0, 1, 0,   1, 0, 0,
                                           0,    30, 0, 4, 127, 0, 0, 42};
        ssize_t n;

        aimx_fake_dns_sink_init(&s);
        start(in, "ad.test.", AIMX_DNS_A, 0, &s);
        assert_int_equal(poll(&pfd, 1, 5000), 1);
        fl = sizeof from;
        n = recvfrom(fd, q, sizeof q - sizeof rr, 0, (struct sockaddr *)&from,
                     &fl);
        assert_true(n > 12);
        assert_true(q[2] & 0x01); /* RD */
        assert_true(q[3] & 0x20); /* AD: "tell me if it is authentic" */
        q[2] |= 0x80;             /* QR */
        q[3] = (unsigned char)(0x80 | (round == 0 ? 0x20 : 0)); /* RA, AD */
        q[7] = 1;                                               /* ANCOUNT */
        memcpy(q + n, rr, sizeof rr);
        assert_int_equal(sendto(fd, q, (size_t)n + sizeof rr, 0,
                                (struct sockaddr *)&from, fl),
                         (ssize_t)((size_t)n + sizeof rr));
        assert_true(aimx_fake_dns_sink_wait(&s, WAIT_MS));
        sink_ok(&s);
        assert_int_equal(s.completion.outcome, AIMX_DNS_OK);
        assert_int_equal(s.record_count, 1);
        assert_memory_equal(s.records[0].address.bytes, "\x7f\0\0\x2a", 4);
        assert_int_equal(s.completion.flags,
                         round == 0 ? AIMX_DNS_F_AD_KNOWN | AIMX_DNS_F_AD
                                    : AIMX_DNS_F_AD_KNOWN);
        aimx_fake_dns_sink_free(&s);
    }
    inst_free(in);
    close(fd);
}

/* ------------------------------------------------------------------------
 * Servers.
 */

static int
group_setup(void **state)
{
    int i;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    snprintf(W.dir, sizeof W.dir, "/tmp/rcares-live-XXXXXX");
    if (!mkdtemp(W.dir)) {
        perror("mkdtemp");
        return -1;
    }
    /* The peer may still be on its way from another engineer's branch. */
    for (i = 0; access(RCARES_TEST_PEER, R_OK) != 0 && i < 120; i++) {
        if (i == 0)
            fprintf(stderr, "waiting for %s\n", RCARES_TEST_PEER);
        sleep_ms(500);
    }
    if (peer_start(&W.peer_a, "peer_a", ZONE_A, 1) != 0 ||
        peer_start(&W.peer_b, "peer_b", ZONE_B, 0) != 0)
        return -1;
    W.have_dnsmasq = access(RCARES_TEST_DNSMASQ, X_OK) == 0;
    if (!W.have_dnsmasq)
        fprintf(stderr,
                "%s not found (apt-get install dnsmasq-base): its "
                "cases are skipped\n",
                RCARES_TEST_DNSMASQ);
    else if (dnsmasq_start(&W.dnsmasq) != 0)
        return -1;
    snprintf(W.dead, sizeof W.dead, "127.0.0.1:%d", free_port());
    snprintf(W.dead2, sizeof W.dead2, "127.0.0.1:%d", free_port());
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    proc_stop(&W.peer_a);
    proc_stop(&W.peer_b);
    proc_stop(&W.dnsmasq);
    if (W.dir[0])
        rm_dir(W.dir);
    return 0;
}

static int
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    int ok;

    if (!f)
        return -1;
    ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Our own mkdtemp() directory: flat, files only. */
static void
rm_dir(const char *dir)
{
    char path[512];
    struct dirent *e;
    DIR *d = opendir(dir);

    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    if (rmdir(dir) != 0)
        fprintf(stderr, "could not remove %s: %s\n", dir, strerror(errno));
}

/* The child dies with the test even if the test crashes: setpriv sets the
 * parent-death signal and then execs the server under the same PID. */
static pid_t
spawn(const char *const *argv, const char *log)
{
    const char *args[40];
    posix_spawn_file_actions_t fa;
    pid_t pid = -1;
    size_t n = 0, i;

    if (access(SETPRIV, X_OK) == 0) {
        args[n++] = SETPRIV;
        args[n++] = "--pdeathsig";
        args[n++] = "TERM";
        args[n++] = "--";
    }
    for (i = 0; argv[i] && n < COUNT(args) - 1; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawn(&pid, args[0], &fa, NULL, (char *const *)(uintptr_t)args,
                    environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* SIGTERM, then SIGKILL if it lingers; always reaped. */
static void
proc_stop(struct proc *p)
{
    int i, status;

    if (p->pid <= 0)
        return;
    kill(p->pid, SIGTERM);
    for (i = 0; i < 300; i++) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return;
        }
        sleep_ms(10);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    p->pid = 0;
}

static int
proc_alive(struct proc *p)
{
    int status;

    if (p->pid > 0 && waitpid(p->pid, &status, WNOHANG) == p->pid)
        p->pid = 0;
    return p->pid > 0;
}

/* A loopback port free for UDP and TCP right now (then left unbound). */
static int
free_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int u, t, port = 0, tries;

    for (tries = 0; tries < 20 && !port; tries++) {
        u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (u >= 0 && t >= 0 &&
            bind(u, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            getsockname(u, (struct sockaddr *)&sa, &sl) == 0 &&
            bind(t, (struct sockaddr *)&sa, sizeof sa) == 0)
            port = ntohs(sa.sin_port);
        if (u >= 0)
            close(u);
        if (t >= 0)
            close(t);
    }
    return port;
}

static int
peer_start(struct proc *p, const char *name, const char *zone, int with_v6)
{
    char zpath[256], ppath[256], *text;
    const char *argv[16];
    size_t n = 0;
    int i;

    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(zpath, sizeof zpath, "%s/%s.json", W.dir, name);
    snprintf(ppath, sizeof ppath, "%s/%s.port", W.dir, name);
    snprintf(p->stats, sizeof p->stats, "%s/%s.stats", W.dir, name);
    snprintf(p->log, sizeof p->log, "%s/%s.log", W.dir, name);
    if (write_file(zpath, zone) != 0)
        return -1;
    argv[n++] = RCARES_TEST_PYTHON;
    argv[n++] = RCARES_TEST_PEER;
    argv[n++] = "--zone";
    argv[n++] = zpath;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1";
    if (with_v6) {
        argv[n++] = "--listen";
        argv[n++] = "::1";
    }
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--port-file";
    argv[n++] = ppath;
    argv[n++] = "--stats";
    argv[n++] = p->stats;
    argv[n] = NULL;
    if ((p->pid = spawn(argv, p->log)) < 0) {
        fprintf(stderr, "cannot start %s\n", RCARES_TEST_PEER);
        return -1;
    }
    for (i = 0; i < 1500; i++) {
        if ((text = slurp(ppath)) != NULL) {
            p->port = atoi(text);
            free(text);
            if (p->port > 0)
                break;
        }
        if (!proc_alive(p))
            break;
        sleep_ms(10);
    }
    if (p->port <= 0) {
        text = slurp(p->log);
        fprintf(stderr, "%s did not start:\n%s\n", name, text ? text : "");
        free(text);
        proc_stop(p);
        return -1;
    }
    snprintf(p->label, sizeof p->label, "127.0.0.1:%d", p->port);
    snprintf(p->label6, sizeof p->label6, "[::1]:%d", p->port);
    return probe(p->port) == 0 ? 0 : -1;
}

static int
dnsmasq_start(struct proc *p)
{
    char port[32];
    const char *argv[40];
    size_t n;
    int attempt, i;

    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "dnsmasq");
    snprintf(p->log, sizeof p->log, "%s/dnsmasq.log", W.dir);
    for (attempt = 0; attempt < 5; attempt++) {
        p->port = free_port();
        snprintf(port, sizeof port, "--port=%d", p->port);
        n = 0;
        argv[n++] = RCARES_TEST_DNSMASQ;
        argv[n++] = "--keep-in-foreground";
        argv[n++] = "--conf-file=/dev/null";
        argv[n++] = "--no-resolv";
        argv[n++] = "--no-hosts";
        argv[n++] = "--bind-interfaces";
        argv[n++] = "--listen-address=127.0.0.1";
        argv[n++] = port;
        argv[n++] = "--pid-file=";
        argv[n++] = "--log-facility=-";
        argv[n++] = "--local-ttl=60";
        argv[n++] = "--local=/test/";
        argv[n++] = "--host-record=two.test,127.0.0.2";
        argv[n++] = "--host-record=two.test,127.0.0.3";
        argv[n++] = "--host-record=v6.test,::1";
        argv[n++] = "--host-record=target.test,127.0.0.9";
        argv[n++] = "--host-record=fo.test,127.0.0.10";
        argv[n++] = "--host-record=drop.test,127.0.0.11";
        argv[n++] = "--host-record=probe.test,127.0.0.1";
        argv[n++] = "--cname=alias.test,target.test";
        argv[n++] = "--mx-host=mx.dm.test,mx1.dm.test,10";
        argv[n++] = "--mx-host=mx.dm.test,mx2.dm.test,20";
        argv[n++] = "--txt-record=txt.dm.test,v=spf1 ,-all"; /* 2 strings */
        /* As root dnsmasq would switch to nobody:dip, and a change of
         * credentials clears the parent-death signal (prctl(2)): a crashed
         * test would leave it running. */
        if (geteuid() == 0) {
            argv[n++] = "--user=root";
            argv[n++] = "--group=root";
        }
        argv[n] = NULL;
        if ((p->pid = spawn(argv, p->log)) < 0)
            return -1;
        for (i = 0; i < 50 && proc_alive(p); i++)
            if (probe(p->port) == 0) {
                snprintf(p->label, sizeof p->label, "127.0.0.1:%d", p->port);
                return 0;
            }
        proc_stop(p); /* most likely the port was taken meanwhile */
    }
    {
        char *text = slurp(p->log);
        fprintf(stderr, "dnsmasq did not start:\n%s\n", text ? text : "");
        free(text);
    }
    return -1;
}

/* Readiness: an answer to "probe.test. A" over UDP within 100 ms. */
static int
probe(int port)
{
    static const unsigned char q[] = {
        0x42, 0x42, 0x01, 0x00, 0, 1,   0,   0,   0,   0, 0, 0, 5, 'p',
        'r',  'o',  'b',  'e',  4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
    struct sockaddr_in sa;
    unsigned char r[512];
    int fd, tries, ok = -1;

    for (tries = 0; tries < 50 && ok != 0; tries++) {
        struct pollfd pfd;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        pfd.fd = fd;
        pfd.events = POLLIN;
        if (sendto(fd, q, sizeof q, 0, (struct sockaddr *)&sa, sizeof sa) ==
                (ssize_t)sizeof q &&
            poll(&pfd, 1, 100) == 1 && recv(fd, r, sizeof r, 0) >= 12 &&
            r[0] == 0x42 && r[1] == 0x42)
            ok = 0;
        else
            sleep_ms(20);
        close(fd);
    }
    return ok;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0, n = 0, r;

    if (!f)
        return NULL;
    do {
        char *grown;
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (!(grown = realloc(buf, cap))) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
    } while (r > 0);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static long
json_long(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* The peer rewrites its stats after each query it answered: wait until
 * they show at least min_queries. */
static int
stats_wait(const struct proc *p, long min_queries, long *queries, long *max_out)
{
    char *text;
    int i;

    for (i = 0; i < 300; i++) {
        if ((text = slurp(p->stats)) != NULL) {
            long q = json_long(text, "\"queries\": ");
            long m = json_long(text, "\"max_outstanding\": ");
            free(text);
            if (q >= min_queries) {
                if (queries)
                    *queries = q;
                if (max_out)
                    *max_out = m;
                return 0;
            }
        }
        sleep_ms(10);
    }
    return -1;
}

/* Waits until the stats show needle; *queries is from that same copy. */
static int
stats_find(const struct proc *p, const char *needle, long *queries)
{
    char *text;
    int i;

    for (i = 0; i < 300; i++) {
        if ((text = slurp(p->stats)) != NULL) {
            if (strstr(text, needle)) {
                *queries = json_long(text, "\"queries\": ");
                free(text);
                return 0;
            }
            free(text);
        }
        sleep_ms(10);
    }
    return -1;
}

static int
stats_has(const struct proc *p, const char *needle)
{
    char *text;
    int found = 0, i;

    /* The query that matters may be the one just answered. */
    for (i = 0; i < 50 && !found; i++) {
        if ((text = slurp(p->stats)) != NULL) {
            found = strstr(text, needle) != NULL;
            free(text);
        }
        if (!found)
            sleep_ms(10);
    }
    return found;
}

/* ------------------------------------------------------------------------
 * The plugin.
 */

/* inst_new(timeout, tries, server, ..., NULL) */
static struct inst *
inst_new(const char *timeout, int tries, ...)
{
    const aimx_plugin_descriptor *d = resolver_cares_LTX_aimx_plugin_v1();
    struct inst *in = calloc(1, sizeof *in);
    const char *srv;
    size_t n = 0, k = 0;
    aimx_status st;
    va_list ap;

    assert_non_null(in);
    va_start(ap, tries);
    while ((srv = va_arg(ap, const char *)) != NULL && n < MAX_SERVERS) {
        snprintf(in->paths[n], sizeof in->paths[n], "servers[%zu]", n);
        in->cfg[1 + n].path = in->paths[n];
        in->cfg[1 + n].type = AIMX_FAKE_T_STRING;
        in->cfg[1 + n].str = srv;
        n++;
    }
    va_end(ap);
    in->cfg[0].path = "servers";
    in->cfg[0].type = AIMX_FAKE_T_LIST;
    in->cfg[0].num = (int64_t)n;
    k = 1 + n;
    in->cfg[k].path = "timeout";
    in->cfg[k].type = AIMX_FAKE_T_STRING;
    in->cfg[k++].str = timeout;
    in->cfg[k].path = "tries";
    in->cfg[k].type = AIMX_FAKE_T_INT;
    in->cfg[k++].num = tries;
    aimx_fake_host_init(&in->fh, in->cfg, k);
    st = d->create(aimx_fake_host_api(&in->fh), aimx_fake_host_handle(&in->fh),
                   &in->p);
    in->fh.cfg_closed = 1;
    if (st != AIMX_OK)
        fail_msg("create() failed: %s", in->fh.error_count ? in->fh.errors[0]
                                        : in->fh.log_count ? in->fh.logs[0].text
                                                           : "?");
    in->ops = d->resolver;
    return in;
}

static void
inst_free(struct inst *in)
{
    resolver_cares_LTX_aimx_plugin_v1()->destroy(in->p);
    assert_int_equal(in->fh.alloc_live, 0);
    assert_int_equal(in->fh.misuse, 0);
    free(in);
}

static void
start(struct inst *in, const char *name, uint16_t type, uint64_t deadline_us,
      struct aimx_fake_dns_sink *s)
{
    aimx_dns_query q;

    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.type = type;
    q.name = name;
    q.deadline_us = deadline_us;
    assert_int_equal(in->ops->lookup(in->p, &q, aimx_fake_dns_sink_handle(s)),
                     AIMX_OK);
}

/* Starts a lookup, waits for it, checks the sink was used correctly, and
 * returns the outcome; the caller frees s. */
static uint32_t
resolve(struct inst *in, const char *name, uint16_t type,
        struct aimx_fake_dns_sink *s)
{
    aimx_fake_dns_sink_init(s);
    start(in, name, type, 0, s);
    if (!aimx_fake_dns_sink_wait(s, WAIT_MS))
        fail_msg("%s: no completion", name);
    sink_ok(s);
    return s->completion.outcome;
}

static void
sink_ok(const struct aimx_fake_dns_sink *s)
{
    assert_int_equal(s->completions, 1);
    assert_int_equal(s->late_adds, 0);
}

static uint64_t
mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dnsmasq_a_two_addresses),
        cmocka_unit_test(test_dnsmasq_aaaa_mx_txt_ptr),
        cmocka_unit_test(test_dnsmasq_cnames),
        cmocka_unit_test(test_peer_null_mx_txt_ipv6_server),
        cmocka_unit_test(test_peer_cname_not_chased),
        cmocka_unit_test(test_peer_truncated_goes_tcp),
        cmocka_unit_test(test_four_failures_differ),
        cmocka_unit_test(test_failover_to_second_server),
        cmocka_unit_test(test_every_server_failed),
        cmocka_unit_test(test_relative_name_sends_nothing),
        cmocka_unit_test(test_concurrent_lookups_overlap),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_destroy_cancels_pending),
        cmocka_unit_test(test_ad_bit),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
