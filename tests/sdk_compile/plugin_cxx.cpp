// SPDX-License-Identifier: MIT
//
// The same kind of plugin as plugin_c.c, written in C++17 (which has no
// designated initializers), so that the header is proven clean for C++
// plugin authors and, through the symbol tests, that AIMX_PLUGIN_DEFINE
// gives the entry functions C linkage: a mangled name would never be found
// by the loader's dlsym("aimx_plugin_v1").
//
// Nothing here runs: it only has to compile without a single warning.
#include <aimx/plugin.h>

#include <cstring>

namespace {

struct demo {
    const aimx_host_api *api;
    aimx_host *host;
    uint32_t families;
};

aimx_status
demo_create(const aimx_host_api *api, aimx_host *host, void **instance)
{
    int ipv6 = 0;
    aimx_status st = api->cfg_bool(host, "/enable_ipv6", &ipv6);
    if (st != AIMX_OK && st != AIMX_ERR_NOT_FOUND)
        return st;
    void *mem = api->alloc(host, sizeof(demo));
    if (mem == nullptr)
        return AIMX_ERR_NOMEM;
    demo *d = static_cast<demo *>(mem);
    d->api = api;
    d->host = host;
    d->families = AIMX_FAMILY_IPV4 | (ipv6 ? AIMX_FAMILY_IPV6 : 0u);
    api->log(host, AIMX_LOG_INFO, "families %u",
             static_cast<unsigned>(d->families));
    *instance = d;
    return AIMX_OK;
}

void
demo_destroy(void *instance)
{
    demo *d = static_cast<demo *>(instance);
    d->api->free(d->host, d);
}

aimx_status
demo_select(void *instance, const aimx_policy_input *in,
            aimx_policy_output *out)
{
    const demo *d = static_cast<const demo *>(instance);
    uint32_t n = 0;

    if (d->families & AIMX_FAMILY_IPV4)
        for (size_t i = 0; i < in->a_count && n < out->target_cap; i++)
            out->targets[n++] = static_cast<uint32_t>(i);
    if (d->families & AIMX_FAMILY_IPV6)
        for (size_t i = 0; i < in->aaaa_count && n < out->target_cap; i++)
            out->targets[n++] = static_cast<uint32_t>(in->a_count + i);
    out->target_count = n;
    if (n == 0) {
        out->verdict = AIMX_POLICY_SKIP;
        std::strcpy(out->reason, "no_address");
        std::strcpy(out->detail, "the MX host has no usable address");
    } else {
        out->verdict = AIMX_POLICY_USE;
    }
    return AIMX_OK;
}

aimx_status
demo_families(void *instance, uint32_t *families)
{
    *families = static_cast<const demo *>(instance)->families;
    return AIMX_OK;
}

const aimx_policy_ops demo_ops = {
    sizeof(aimx_policy_ops),
    demo_select,
    demo_families,
};

const aimx_plugin_descriptor demo_descriptor = {
    sizeof(aimx_plugin_descriptor),
    AIMX_ABI_MAJOR,
    AIMX_ABI_MINOR,
    AIMX_KIND_POLICY,
    0,
    "sdk-compile-demo",
    "0",
    "compile check of <aimx/plugin.h> from C++",
    demo_create,
    demo_destroy,
    nullptr,
    &demo_ops,
    nullptr,
};

} // namespace

AIMX_PLUGIN_DEFINE(sdk_compile_demo, demo_descriptor);
