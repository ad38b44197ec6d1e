/* SPDX-License-Identifier: MIT */
/*
 * aimx verify: can this host open outbound SMTP sessions?  For each
 * address family the policy uses, the transport's probe() connects to a
 * target, reads the greeting, says EHLO and QUIT, and nothing else: no
 * mail, no DNS record check (that is `aimx setup --verify`).
 */
#include "cli.h"
#include "exitcodes.h"
#include "hostport.h"
#include "json.h"
#include "log.h"
#include "lookup.h"
#include "netaddr.h"
#include "route.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ADDRS 16
#define PROBE_DEADLINE                                                         \
    (600u * 1000000u) /* the transport's phase timeouts
                                            decide first */

enum verify_opt { OPT_TARGET = 340 };

const struct option aimx__verify_options[] = {
    {"target", required_argument, NULL, OPT_TARGET},
    {NULL, 0, NULL, 0},
};

enum probe_result {
    PR_REACHABLE,
    PR_REFUSED,
    PR_TIMEOUT,
    PR_GREETING_REFUSED,
    PR_NO_ADDRESS,
    PR_LOOKUP_FAILED,
    PR_ERROR
};

/* One family's probe, run on its own thread. */
struct probe {
    const aimx_instance *transport;
    const char *host;
    uint8_t family;
    aimx_addr addrs[MAX_ADDRS];
    size_t naddrs;
    int result; /* enum probe_result */
    char detail[600];
    aimx_status st;
    aimx_transport_result res;
    aimx_connect_attempt attempts[MAX_ADDRS];
    uint64_t start_us, end_us;
    pthread_t thread;
    int threaded;
};

static uint64_t now_us(void);
static void *probe_thread(void *arg);
static int classify(const struct probe *p);
static const char *result_word(int result);
static const char *family_word(uint8_t family);
static void resolve(aimx_instance *resolver, const char *host,
                    struct probe *probes, size_t n);
static void print_json(const char *target, const struct probe *p, size_t n);
static void print_human(const char *target, const char *transport,
                        unsigned port, const struct probe *p, size_t n);

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void *
probe_thread(void *arg)
{
    struct probe *p = arg;
    const aimx_instance *t = p->transport;
    aimx_open_request req;

    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.mx_host = p->host;
    req.addrs = p->addrs;
    req.addr_count = p->naddrs;
    memset(&p->res, 0, sizeof p->res);
    p->res.struct_size = sizeof p->res;
    p->res.attempts = p->attempts;
    p->res.attempt_stride = sizeof p->attempts[0];
    p->res.attempt_cap = MAX_ADDRS;
    for (size_t i = 0; i < MAX_ADDRS; i++)
        p->attempts[i].struct_size = sizeof p->attempts[i];
    p->start_us = now_us();
    req.deadline_us = p->start_us + PROBE_DEADLINE;
    p->st = t->plugin.transport.probe(t->instance, &req, &p->res);
    p->end_us = now_us();
    p->res.reply[sizeof p->res.reply - 1] = '\0';
    p->result = classify(p);
    return NULL;
}

/* The transport's classification, in the four words the issue asks for
 * (plus "error" for a local failure). */
static int
classify(const struct probe *p)
{
    if (p->st != AIMX_OK)
        return PR_ERROR;
    if (p->res.result_class == AIMX_CLASS_OK)
        return PR_REACHABLE;
    switch (p->res.kind) {
    case AIMX_FAIL_REFUSED:
        return PR_REFUSED;
    case AIMX_FAIL_TIMEOUT:
        return PR_TIMEOUT;
    case AIMX_FAIL_REPLY:
    case AIMX_FAIL_LOST:
    case AIMX_FAIL_PROTOCOL:
    case AIMX_FAIL_TLS:
    case AIMX_FAIL_UNSUPPORTED:
        /* Connected, then the server would not hold a session. */
        return p->res.phase == AIMX_PHASE_CONNECT ? PR_REFUSED
                                                  : PR_GREETING_REFUSED;
    default:
        return PR_ERROR;
    }
}

static const char *
result_word(int result)
{
    switch (result) {
    case PR_REACHABLE:
        return "reachable";
    case PR_REFUSED:
        return "refused";
    case PR_TIMEOUT:
        return "timeout";
    case PR_GREETING_REFUSED:
        return "greeting_refused";
    case PR_NO_ADDRESS:
        return "no_address";
    case PR_LOOKUP_FAILED:
        return "lookup_failed";
    default:
        return "error";
    }
}

static const char *
family_word(uint8_t family)
{
    return family == AIMX_AF_INET6 ? "ipv6" : "ipv4";
}

/* A and AAAA of a host name target, together. */
static void
resolve(aimx_instance *resolver, const char *host, struct probe *probes,
        size_t n)
{
    aimx_dns_cache *dns = aimx__dns_cache_new(resolver, 0);
    aimx_dns_ask asks[2];

    if (dns == NULL) {
        for (size_t i = 0; i < n; i++) {
            probes[i].result = PR_ERROR;
            snprintf(probes[i].detail, sizeof probes[i].detail,
                     "out of memory");
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        asks[i] = (aimx_dns_ask){host, probes[i].family == AIMX_AF_INET
                                           ? AIMX_DNS_A
                                           : AIMX_DNS_AAAA};
    aimx__dns_cache_fetch(dns, asks, n);
    for (size_t i = 0; i < n; i++) {
        struct probe *p = &probes[i];
        const aimx_dns_answer *a = aimx__dns_cache_get(dns, host, asks[i].type);
        const char *t = asks[i].type == AIMX_DNS_A ? "A" : "AAAA";
        if (a == NULL || aimx__dns_outcome_temporary(a->outcome)) {
            p->result = PR_LOOKUP_FAILED;
            snprintf(p->detail, sizeof p->detail,
                     "the %s lookup of %s failed (%s%s%.160s)", t, host,
                     a ? aimx__dns_outcome_word(a->outcome) : "out of memory",
                     a && a->diag[0] ? ": " : "", a ? a->diag : "");
            continue;
        }
        for (size_t k = 0; k < a->count && p->naddrs < MAX_ADDRS; k++)
            if (a->records[k].type == asks[i].type &&
                a->records[k].address.family == p->family)
                p->addrs[p->naddrs++] = a->records[k].address;
        if (p->naddrs == 0) {
            p->result = PR_NO_ADDRESS;
            snprintf(p->detail, sizeof p->detail,
                     "%s has no %s record, so %s cannot be probed with this "
                     "target",
                     host, t, p->family == AIMX_AF_INET ? "IPv4" : "IPv6");
        }
    }
    aimx__dns_cache_free(dns);
}

static void
print_json(const char *target, const struct probe *p, size_t n)
{
    aimx_json j;

    aimx__json_init(&j, stdout);
    aimx__json_object_begin(&j, NULL);
    aimx__json_int(&j, "schema", AIMX_JSON_SCHEMA);
    aimx__json_string(&j, "target", target);
    aimx__json_array_begin(&j, "families");
    for (size_t i = 0; i < n; i++) {
        int probed =
            p[i].result != PR_NO_ADDRESS && p[i].result != PR_LOOKUP_FAILED;
        aimx__json_object_begin(&j, NULL);
        aimx__json_string(&j, "family", family_word(p[i].family));
        aimx__json_string(&j, "result", result_word(p[i].result));
        aimx__json_string(&j, "greeting",
                          probed && p[i].res.code != 0 ? p[i].res.reply : NULL);
        if (probed)
            aimx__json_int(&j, "ms",
                           (int64_t)((p[i].end_us - p[i].start_us) / 1000));
        else
            aimx__json_null(&j, "ms");
        aimx__json_object_end(&j);
    }
    aimx__json_array_end(&j);
    aimx__json_object_end(&j);
    aimx__json_finish(&j);
}

static void
print_human(const char *target, const char *transport, unsigned port,
            const struct probe *p, size_t n)
{
    printf("Outbound SMTP probe of %s through %s", target, transport);
    if (port != 0)
        printf(" (port %u: the transport's port)", port);
    printf(":\n");
    for (size_t i = 0; i < n; i++) {
        const struct probe *q = &p[i];
        char addr[AIMX_ADDR_TEXT_MAX] = "-";
        if (q->result == PR_NO_ADDRESS || q->result == PR_LOOKUP_FAILED) {
            printf("  %-4s  %-16s %s\n",
                   q->family == AIMX_AF_INET ? "IPv4" : "IPv6",
                   result_word(q->result), q->detail);
            continue;
        }
        if (q->res.remote.family != 0)
            aimx__addr_text(&q->res.remote, addr, sizeof addr);
        printf("  %-4s  %-16s %6llu ms  %s",
               q->family == AIMX_AF_INET ? "IPv4" : "IPv6",
               result_word(q->result),
               (unsigned long long)((q->end_us - q->start_us) / 1000), addr);
        if (q->res.connected_us > q->res.start_us)
            printf(
                " (connected in %llu ms)",
                (unsigned long long)((q->res.connected_us - q->res.start_us) /
                                     1000));
        printf("\n");
        if (q->st != AIMX_OK)
            printf("        the transport failed (status %d)\n", (int)q->st);
        else if (q->res.reply[0] != '\0')
            printf("        %s\n", q->res.reply);
    }
    printf("This probe connects, reads the greeting, says EHLO and QUIT; "
           "it sends no mail and\nchecks nothing else (DNS records: aimx "
           "setup DOMAIN --verify).\n");
}

int
aimx__cmd_verify(const aimx_cli *cli)
{
    const char *target_text = NULL;
    aimx_config c;
    aimx_instance resolver, policy, transport;
    aimx_diag d = {0};
    aimx_hostport hp;
    struct probe *probes = NULL;
    size_t n = 0;
    uint32_t families = 0;
    aimx_transport_info info;
    unsigned port = 0;
    char err[600], shown[300];
    int rc;

    for (int i = 0; i < cli->opt_count; i++)
        if (cli->opts[i].id == OPT_TARGET)
            target_text = cli->opts[i].arg;
    if (cli->arg_count != 0)
        return aimx__fail(cli, AIMX_EXIT_USAGE,
                          "'aimx verify' takes no operand, not '%s' (the "
                          "target goes with --target HOST[:PORT])",
                          cli->args[0]);
    rc = aimx__cli_load_config(cli, &c);
    if (rc != 0)
        return rc;
    memset(&resolver, 0, sizeof resolver);
    memset(&policy, 0, sizeof policy);
    memset(&transport, 0, sizeof transport);
    if (target_text == NULL)
        target_text = c.verify_target;
    if (target_text == NULL) {
        rc = aimx__fail(cli, AIMX_EXIT_USAGE,
                        "no target to probe: give --target HOST[:PORT] or "
                        "set verify_target = \"HOST[:PORT]\" in aimx.conf "
                        "(an SMTP server that accepts connections from "
                        "this host, over every address family aimx sends "
                        "with)");
        goto out;
    }
    if (aimx__hostport_parse(target_text, &hp, err, sizeof err) != 0) {
        rc = aimx__fail(cli, AIMX_EXIT_USAGE, "target %s", err);
        goto out;
    }

    /* The policy decides the families; the resolver only matters for a
     * host name. */
    aimx__instance_create(&policy, &c, AIMX_SLOT_POLICY, &d);
    if (!hp.is_ip)
        aimx__instance_create(&resolver, &c, AIMX_SLOT_RESOLVER, &d);
    aimx__instance_create(&transport, &c, AIMX_SLOT_TRANSPORT, &d);
    if (d.count > 0) {
        rc = aimx__fail_diag(cli, AIMX_EXIT_CONFIG, &d);
        goto out;
    }
    if (policy.plugin.policy.families(policy.instance, &families) != AIMX_OK ||
        (families & (AIMX_FAMILY_IPV4 | AIMX_FAMILY_IPV6)) == 0) {
        rc = aimx__fail(cli, AIMX_EXIT_CONFIG,
                        "the policy plugin %s reports no address family "
                        "for outbound mail",
                        policy.plugin.name);
        goto out;
    }
    if (transport.plugin.transport.probe == NULL) {
        rc = aimx__fail(cli, AIMX_EXIT_CONFIG,
                        "the transport plugin %s cannot probe (it has no "
                        "probe operation), so aimx verify cannot use it",
                        transport.plugin.name);
        goto out;
    }
    /* probe() connects to the transport's own port: the SDK gives it no
     * other.  A port in the target must therefore be that port. */
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (transport.plugin.transport.describe != NULL &&
        transport.plugin.transport.describe(transport.instance, &info) ==
            AIMX_OK)
        port = info.port;
    if (hp.port != 0 && port == 0) {
        rc = aimx__fail(cli, AIMX_EXIT_USAGE,
                        "the transport plugin %s does not say which port it "
                        "connects to, so the port in '%s' cannot be honoured: "
                        "leave it out",
                        transport.plugin.name, target_text);
        goto out;
    }
    if (hp.port != 0 && hp.port != port) {
        rc = aimx__fail(cli, AIMX_EXIT_USAGE,
                        "'%s' asks for port %u, but the transport %s "
                        "connects to port %u (its 'port' setting) and a "
                        "probe uses the transport's port: set port = %u in "
                        "the transport group to probe port %u, or leave the "
                        "port out",
                        target_text, (unsigned)hp.port, transport.plugin.name,
                        port, (unsigned)hp.port, (unsigned)hp.port);
        goto out;
    }

    probes = calloc(2, sizeof *probes);
    if (probes == NULL) {
        rc = aimx__fail(cli, AIMX_EXIT_SOFTWARE, "out of memory");
        goto out;
    }
    if (hp.is_ip) {
        uint32_t need = hp.addr.family == AIMX_AF_INET ? AIMX_FAMILY_IPV4
                                                       : AIMX_FAMILY_IPV6;
        if (!(families & need)) {
            rc = aimx__fail(
                cli, AIMX_EXIT_USAGE,
                "%s is an %s address, but the policy %s does not send over "
                "%s, so probing it says nothing about aimx's mail: give a "
                "target of a family the policy uses (%s), or a host name",
                hp.host, need == AIMX_FAMILY_IPV4 ? "IPv4" : "IPv6",
                policy.plugin.name, need == AIMX_FAMILY_IPV4 ? "IPv4" : "IPv6",
                families == AIMX_FAMILY_IPV6 ? "IPv6" : "IPv4");
            goto out;
        }
        /* An IP literal probes its own family only. */
        probes[0].family = hp.addr.family;
        probes[0].addrs[0] = hp.addr;
        probes[0].naddrs = 1;
        n = 1;
    } else {
        if (families & AIMX_FAMILY_IPV4)
            probes[n++].family = AIMX_AF_INET;
        if (families & AIMX_FAMILY_IPV6)
            probes[n++].family = AIMX_AF_INET6;
        resolve(&resolver, hp.host, probes, n);
    }

    /* The families at once: a timing-out IPv6 path does not hold up the
     * IPv4 answer. */
    for (size_t i = 0; i < n; i++) {
        probes[i].transport = &transport;
        probes[i].host = hp.host;
        if (probes[i].naddrs == 0)
            continue;
        probes[i].threaded =
            n > 1 && pthread_create(&probes[i].thread, NULL, probe_thread,
                                    &probes[i]) == 0;
        if (!probes[i].threaded)
            probe_thread(&probes[i]);
    }
    for (size_t i = 0; i < n; i++)
        if (probes[i].threaded)
            pthread_join(probes[i].thread, NULL);

    if (port == 0)
        snprintf(shown, sizeof shown, "%s", hp.host);
    else if (hp.is_ip && hp.addr.family == AIMX_AF_INET6)
        snprintf(shown, sizeof shown, "[%s]:%u", hp.host, port);
    else
        snprintf(shown, sizeof shown, "%s:%u", hp.host, port);
    if (cli->json)
        print_json(shown, probes, n);
    else
        print_human(shown, transport.plugin.name, port, probes, n);
    rc = AIMX_EXIT_OK;
    for (size_t i = 0; i < n; i++)
        if (probes[i].result != PR_REACHABLE)
            rc = AIMX_EXIT_TEMPFAIL;
out:
    free(probes);
    aimx__instance_destroy(&transport);
    aimx__instance_destroy(&resolver);
    aimx__instance_destroy(&policy);
    aimx__diag_free(&d);
    aimx__config_free(&c);
    return rc;
}
