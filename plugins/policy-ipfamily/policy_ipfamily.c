/* SPDX-License-Identifier: MIT */
/*
 * policy-ipfamily: the bundled address-family policy.  It decides which of
 * an MX host's addresses outbound mail uses, from the top-level
 * enable_ipv6 and its own `prefer = "ipv6" | "ipv4"`.  The decision itself
 * lives in ipfamily_decide.c; this file is the plugin around it.
 */
#include "ipfamily_decide.h"

#include <aimx/plugin.h>

#include <stddef.h>
#include <string.h>

#ifndef IPFAMILY_VERSION
#define IPFAMILY_VERSION "0.1.0"
#endif

struct ipfamily {
    /* Kept for destroy(): the instance came from api->alloc. */
    const aimx_host_api *api;
    aimx_host *host;
    int enable_ipv6;
    int prefer_ipv6;
};

static aimx_status ipfamily_create(const aimx_host_api *api, aimx_host *host,
                                   void **instance);
static void ipfamily_destroy(void *instance);
static aimx_status ipfamily_select(void *instance, const aimx_policy_input *in,
                                   aimx_policy_output *out);
static aimx_status ipfamily_families(void *instance, uint32_t *families);
static int api_usable(const aimx_host_api *api);

static const aimx_policy_ops ipfamily_ops = {
    .struct_size = sizeof(aimx_policy_ops),
    .select = ipfamily_select,
    .families = ipfamily_families,
};

static const aimx_plugin_descriptor ipfamily_descriptor = {
    .struct_size = sizeof(aimx_plugin_descriptor),
    .abi_major = AIMX_ABI_MAJOR,
    .abi_minor = AIMX_ABI_MINOR,
    .kind = AIMX_KIND_POLICY,
    .flags = 0,
    .name = "policy-ipfamily",
    .version = IPFAMILY_VERSION,
    .description =
        "Chooses IPv4/IPv6 addresses of MX hosts (enable_ipv6, prefer)",
    .create = ipfamily_create,
    .destroy = ipfamily_destroy,
    .policy = &ipfamily_ops,
};

AIMX_PLUGIN_DEFINE(policy_ipfamily, ipfamily_descriptor);

static aimx_status
ipfamily_create(const aimx_host_api *api, aimx_host *host, void **instance)
{
    struct ipfamily *pf;
    const char *prefer = NULL;
    int enable_ipv6 = 0, prefer_ipv6 = 1;
    aimx_status st_enable, st_prefer;

    if (!instance || !api_usable(api))
        return AIMX_ERR_UNSUPPORTED;

    /* Read every key before judging any: the host flags the keys nobody
     * asked for as unknown, and an early return would make a valid key
     * look like a typo next to the real error. */
    st_enable = api->cfg_bool(host, "/enable_ipv6", &enable_ipv6);
    st_prefer = api->cfg_string(host, "prefer", &prefer);

    if (st_enable == AIMX_ERR_NOT_FOUND) {
        enable_ipv6 = 0;
        st_enable = AIMX_OK;
    }
    if (st_prefer == AIMX_ERR_NOT_FOUND) {
        prefer = NULL;
        st_prefer = AIMX_OK;
    }
    if (st_prefer == AIMX_OK && prefer) {
        if (strcmp(prefer, "ipv6") == 0)
            prefer_ipv6 = 1;
        else if (strcmp(prefer, "ipv4") == 0)
            prefer_ipv6 = 0;
        else
            st_prefer = api->cfg_error(
                host, "prefer", "must be \"ipv6\" or \"ipv4\", not \"%s\"",
                prefer);
    }
    /* Both errors are reported by now; either one fails create(). */
    if (st_enable != AIMX_OK)
        return st_enable;
    if (st_prefer != AIMX_OK)
        return st_prefer;

    if (prefer && !enable_ipv6)
        api->log(host, AIMX_LOG_INFO,
                 "prefer = \"%s\" has no effect while enable_ipv6 = false",
                 prefer);

    pf = api->alloc(host, sizeof *pf);
    if (!pf) {
        api->log(host, AIMX_LOG_ERR, "out of memory");
        return AIMX_ERR_NOMEM;
    }
    pf->api = api;
    pf->host = host;
    pf->enable_ipv6 = enable_ipv6 != 0;
    pf->prefer_ipv6 = prefer_ipv6;
    api->log(host, AIMX_LOG_DEBUG, "enable_ipv6 = %s, prefer = %s",
             pf->enable_ipv6 ? "true" : "false",
             pf->prefer_ipv6 ? "ipv6" : "ipv4");
    *instance = pf;
    return AIMX_OK;
}

static void
ipfamily_destroy(void *instance)
{
    struct ipfamily *pf = instance;

    if (pf)
        pf->api->free(pf->host, pf);
}

static aimx_status
ipfamily_select(void *instance, const aimx_policy_input *in,
                aimx_policy_output *out)
{
    const struct ipfamily *pf = instance;

    if (!pf)
        return AIMX_ERR_INVALID;
    return ipfamily_decide(pf->enable_ipv6, pf->prefer_ipv6, in, out);
}

static aimx_status
ipfamily_families(void *instance, uint32_t *families)
{
    const struct ipfamily *pf = instance;

    if (!pf || !families)
        return AIMX_ERR_INVALID;
    *families = AIMX_FAMILY_IPV4 | (pf->enable_ipv6 ? AIMX_FAMILY_IPV6 : 0u);
    return AIMX_OK;
}

/* A reader may use only what lies below the writer's struct_size, and a
 * NULL slot means "not provided": check every service create() relies on. */
static int
api_usable(const aimx_host_api *api)
{
    if (!api || api->struct_size < offsetof(aimx_host_api, monotonic_us))
        return 0;
    return api->log && api->cfg_bool && api->cfg_string && api->cfg_error &&
           api->alloc && api->free;
}
