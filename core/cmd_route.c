/* SPDX-License-Identifier: MIT */
/* aimx route: where mail for a domain would go, and why, without sending. */
#include "cli.h"
#include "exitcodes.h"
#include "host.h"
#include "json.h"
#include "netaddr.h"
#include "route.h"

#include <stdio.h>
#include <string.h>

static const char *status_word(int status);
static const char *mx_result_word(const aimx_route *r);
static void print_json(const aimx_route *r);
static void print_human(const aimx_route *r);
static void json_lookup(aimx_json *j, const char *key, int looked_up,
                        uint32_t outcome, const aimx_addr *addrs, size_t n);
static void human_lookup(const char *label, int looked_up, uint32_t outcome,
                         const char *diag, const aimx_addr *addrs, size_t n);

static const char *
status_word(int status)
{
    switch (status) {
    case AIMX_ROUTE_OK:
        return "ok";
    case AIMX_ROUTE_TEMPFAIL:
        return "tempfail";
    default:
        return "permfail";
    }
}

static const char *
mx_result_word(const aimx_route *r)
{
    return r->null_mx ? "null_mx" : aimx__dns_outcome_word(r->mx_outcome);
}

static void
json_lookup(aimx_json *j, const char *key, int looked_up, uint32_t outcome,
            const aimx_addr *addrs, size_t n)
{
    char text[AIMX_ADDR_TEXT_MAX];

    if (!looked_up) {
        aimx__json_null(j, key);
        return;
    }
    aimx__json_object_begin(j, key);
    aimx__json_string(j, "result", aimx__dns_outcome_word(outcome));
    aimx__json_array_begin(j, "addresses");
    for (size_t i = 0; i < n; i++)
        aimx__json_string(j, NULL,
                          aimx__addr_text(&addrs[i], text, sizeof text));
    aimx__json_array_end(j);
    aimx__json_object_end(j);
}

static void
print_json(const aimx_route *r)
{
    aimx_json j;
    char text[AIMX_ADDR_TEXT_MAX];

    aimx__json_init(&j, stdout);
    aimx__json_object_begin(&j, NULL);
    aimx__json_int(&j, "schema", AIMX_JSON_SCHEMA);
    aimx__json_string(&j, "domain", r->domain);
    aimx__json_string(&j, "status", status_word(r->status));
    aimx__json_string(&j, "reason", r->reason[0] ? r->reason : NULL);
    aimx__json_string(&j, "enhanced", r->enhanced[0] ? r->enhanced : NULL);
    aimx__json_string(&j, "detail", r->detail);
    aimx__json_string(&j, "mx_result", mx_result_word(r));
    aimx__json_array_begin(&j, "mx");
    for (size_t i = 0; i < r->host_count; i++) {
        const aimx_route_host *h = &r->hosts[i];
        aimx__json_object_begin(&j, NULL);
        aimx__json_string(&j, "host", h->name);
        aimx__json_int(&j, "preference", h->preference);
        aimx__json_bool(&j, "implicit", h->implicit);
        json_lookup(&j, "a", h->looked_up, h->a_outcome, h->a, h->a_count);
        json_lookup(&j, "aaaa", h->looked_up, h->aaaa_outcome, h->aaaa,
                    h->aaaa_count);
        aimx__json_string(&j, "verdict", aimx__verdict_word(h->verdict));
        aimx__json_string(&j, "reason", h->reason[0] ? h->reason : NULL);
        aimx__json_string(&j, "detail", h->detail[0] ? h->detail : NULL);
        aimx__json_bool(&j, "temporary", h->temporary);
        aimx__json_array_begin(&j, "targets");
        for (size_t k = 0; k < h->target_count; k++)
            aimx__json_string(
                &j, NULL, aimx__addr_text(&h->targets[k], text, sizeof text));
        aimx__json_array_end(&j);
        aimx__json_object_end(&j);
    }
    aimx__json_array_end(&j);
    aimx__json_object_end(&j);
    aimx__json_finish(&j);
}

static void
human_lookup(const char *label, int looked_up, uint32_t outcome,
             const char *diag, const aimx_addr *addrs, size_t n)
{
    char text[AIMX_ADDR_TEXT_MAX];

    if (!looked_up)
        return;
    printf("      %-5s %-11s", label, aimx__dns_outcome_word(outcome));
    for (size_t i = 0; i < n; i++)
        printf(" %s", aimx__addr_text(&addrs[i], text, sizeof text));
    if (outcome != 0 && diag[0] != '\0')
        printf(" (%s)", diag);
    printf("\n");
}

static void
print_human(const aimx_route *r)
{
    char text[AIMX_ADDR_TEXT_MAX];

    printf("%s: %s\n", r->domain,
           r->status == AIMX_ROUTE_OK         ? "deliverable"
           : r->status == AIMX_ROUTE_TEMPFAIL ? "temporary failure"
                                              : "undeliverable");
    printf("  MX lookup: %s%s%s%s\n", mx_result_word(r),
           r->mx_outcome != 0 && r->mx_diag[0] ? " (" : "",
           r->mx_outcome != 0 ? r->mx_diag : "",
           r->mx_outcome != 0 && r->mx_diag[0] ? ")" : "");
    for (size_t i = 0; i < r->host_count; i++) {
        const aimx_route_host *h = &r->hosts[i];
        printf("  %5u %s%s\n", (unsigned)h->preference, h->name,
               h->implicit ? " (implicit: the domain has no MX record)" : "");
        human_lookup("A", h->looked_up, h->a_outcome, h->a_diag, h->a,
                     h->a_count);
        human_lookup("AAAA", h->looked_up, h->aaaa_outcome, h->aaaa_diag,
                     h->aaaa, h->aaaa_count);
        if (h->verdict == AIMX_POLICY_USE) {
            printf("      use  ");
            for (size_t k = 0; k < h->target_count; k++)
                printf(" %s%s",
                       aimx__addr_text(&h->targets[k], text, sizeof text),
                       h->targets[k].family == AIMX_AF_INET6 ? " (IPv6)" : "");
            printf("\n");
        } else {
            printf("      %-5s %s%s: %s\n", aimx__verdict_word(h->verdict),
                   h->reason, h->temporary ? ", temporary" : "", h->detail);
        }
    }
    printf("  => %s%s%s%s\n", r->detail, r->enhanced[0] ? " [" : "",
           r->enhanced, r->enhanced[0] ? "]" : "");
}

int
aimx__cmd_route(const aimx_cli *cli)
{
    aimx_config c;
    aimx_instance resolver, policy;
    aimx_diag d = {0};
    aimx_route route;
    aimx_router router;
    char err[512];
    int rc;

    if (cli->arg_count != 1)
        return aimx__fail(cli, AIMX_EXIT_USAGE,
                          cli->arg_count == 0
                              ? "'aimx route' needs a domain or an address"
                              : "'aimx route' takes one domain or address");
    memset(&route, 0, sizeof route);
    if (aimx__route_domain_from_input(cli->args[0], route.domain,
                                      sizeof route.domain, err,
                                      sizeof err) != 0)
        return aimx__fail(cli, AIMX_EXIT_DATAERR, "%s", err);

    rc = aimx__cli_load_config(cli, &c);
    if (rc != 0)
        return rc;
    /* route needs a resolver and a policy, never a transport. */
    memset(&resolver, 0, sizeof resolver);
    memset(&policy, 0, sizeof policy);
    aimx__instance_create(&resolver, &c, AIMX_SLOT_RESOLVER, &d);
    aimx__instance_create(&policy, &c, AIMX_SLOT_POLICY, &d);
    if (d.count > 0) {
        rc = aimx__fail_diag(cli, AIMX_EXIT_CONFIG, &d);
        goto out;
    }
    memset(&router, 0, sizeof router);
    router.resolver = &resolver;
    router.policy = &policy;
    router.allow_private_targets = c.allow_private_targets;
    router.max_addresses_per_host = c.max_addresses_per_host;
    router.max_mx_hosts = c.max_mx_hosts;
    if (aimx__route_resolve(&router, &route, 1) != 0) {
        rc = aimx__fail(cli, AIMX_EXIT_SOFTWARE, "out of memory routing %s",
                        route.domain);
        goto out;
    }
    if (cli->json)
        print_json(&route);
    else
        print_human(&route);
    rc = route.status == AIMX_ROUTE_OK         ? AIMX_EXIT_OK
         : route.status == AIMX_ROUTE_TEMPFAIL ? AIMX_EXIT_TEMPFAIL
                                               : AIMX_EXIT_UNAVAILABLE;
out:
    aimx__route_free(&route, 1);
    aimx__instance_destroy(&policy);
    aimx__instance_destroy(&resolver);
    aimx__diag_free(&d);
    aimx__config_free(&c);
    return rc;
}
