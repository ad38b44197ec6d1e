/* SPDX-License-Identifier: MIT */
/*
 * policy-ipv6only: an example aimx policy plugin that sends mail over IPv6
 * only.  It is meant to be copied: it is small, complete, and every part of
 * the plugin contract it touches is explained where it is used.
 *
 * What a policy does: for each MX host of a recipient domain the host
 * (aimx) looks up the A and AAAA records and calls the policy's select()
 * with both results.  The policy answers with one verdict:
 *   USE    connect to these addresses, in this order;
 *   SKIP   do not use this MX host (the host moves on to the next MX);
 *   DEFER  cannot decide now, try again later (a temporary DNS failure).
 *
 * This policy's rules:
 *   - AAAA addresses exist        -> USE all of them, in resolver order;
 *   - AAAA lookup failed for now  -> DEFER "dns_aaaa_failed" (a DNS hiccup
 *                                    must never bounce mail);
 *   - only A addresses            -> SKIP "no_ipv6";
 *   - no address at all           -> SKIP "no_address".
 *
 * Build it with the AimxPlugin CMake package or with pkg-config (README.md).
 * Its file must be named policy-ipv6only.so: the loader refuses a plugin
 * whose file name differs from the name in its descriptor.
 */
#include <aimx/plugin.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The plugin's own version, free text; `aimx plugins` prints it. */
#define IPV6ONLY_VERSION "1.0.0"

/*
 * ABI rule: every struct crossing the boundary starts with struct_size, the
 * size its writer was compiled with.  A field that lies beyond it does not
 * exist for us (an older host wrote a shorter struct).  Check before use.
 */
#define HAS_FIELD(p, type, field)                                              \
    ((p)->struct_size >= offsetof(type, field) + sizeof((p)->field))

/* A host service is usable when the host's table reaches it and it is not
 * NULL (NULL means "not provided"). */
#define HAS_SERVICE(api, fn) (HAS_FIELD(api, aimx_host_api, fn) && (api)->fn)

/*
 * The instance: whatever create() builds and every other operation gets
 * back as `void *instance`.  This policy has no settings, so it only keeps
 * what destroy() needs to give its memory back.  The host may call
 * select() and families() from several threads at once: they only read it.
 */
struct ipv6only {
    const aimx_host_api *api; /* the host's services, valid until destroy() */
    aimx_host *host;          /* our handle, passed back to every service */
};

static aimx_status ipv6only_create(const aimx_host_api *api, aimx_host *host,
                                   void **instance);
static void ipv6only_destroy(void *instance);
static aimx_status ipv6only_select(void *instance, const aimx_policy_input *in,
                                   aimx_policy_output *out);
static aimx_status ipv6only_families(void *instance, uint32_t *families);
static int is_temporary_failure(uint32_t outcome);
static const char *outcome_text(uint32_t outcome);
static aimx_status refuse(aimx_policy_output *out, uint32_t verdict,
                          const char *reason, const char *fmt, ...)
    AIMX_PRINTF(4, 5);

/*
 * The operations of a policy.  `static const`: the tables are read-only
 * data the host reads through the descriptor; nothing runs to set them up
 * (a plugin must not have ELF constructors).
 */
static const aimx_policy_ops ipv6only_ops = {
    /* Always sizeof this SDK's struct: a newer host then knows which of
     * the operations appended by later ABI minors we do not have. */
    .struct_size = sizeof(aimx_policy_ops),
    /* Required: the decision for one MX host. */
    .select = ipv6only_select,
    /* Required: which families our mail leaves by, for `aimx setup`. */
    .families = ipv6only_families,
};

/*
 * The descriptor: the one thing the plugin exports.  The host checks it
 * (ABI, name, kind, required operations) before calling any plugin code.
 */
static const aimx_plugin_descriptor ipv6only_descriptor = {
    /* Lets a newer host treat fields we do not know of as zero. */
    .struct_size = sizeof(aimx_plugin_descriptor),
    /* The ABI this plugin was compiled against: the host loads it if the
     * major equals its own and the minor is not newer than its own. */
    .abi_major = AIMX_ABI_MAJOR,
    /* Taken from the header, never written by hand, so it is always true. */
    .abi_minor = AIMX_ABI_MINOR,
    /* Which slot of aimx.conf it can fill: the `policy` group. */
    .kind = AIMX_KIND_POLICY,
    /* No flags exist in ABI 1.0; it must be zero. */
    .flags = 0,
    /* [a-z0-9-]+, equal to the file name without ".so", and what an
     * operator writes in aimx.conf: policy: { plugin = "policy-ipv6only"; } */
    .name = "policy-ipv6only",
    /* Free text, shown by `aimx plugins`. */
    .version = IPV6ONLY_VERSION,
    /* One line, shown by `aimx plugins`. */
    .description = "Example policy: delivers over IPv6 only (AAAA addresses)",
    /* Required: reads and checks the config group, builds the instance. */
    .create = ipv6only_create,
    /* Required: frees the instance after its last operation. */
    .destroy = ipv6only_destroy,
    /* Exactly the ops table matching .kind is set: a policy has no
     * resolver operations... */
    .resolver = NULL,
    /* ...this is ours... */
    .policy = &ipv6only_ops,
    /* ...and no transport operations. */
    .transport = NULL,
};

/*
 * Exports the entry function that returns the descriptor.  The first
 * argument is the plugin's name with '-' written as '_'.  In a shared
 * module it defines two symbols, aimx_plugin_v1 (what the loader looks
 * for) and policy_ipv6only_LTX_aimx_plugin_v1 (unique, for linking the
 * plugin statically into a program, as the unit test does with
 * -DAIMX_PLUGIN_STATIC, which leaves out aimx_plugin_v1).  Built with
 * -fvisibility=hidden, as it must be, the plugin exports nothing else.
 */
AIMX_PLUGIN_DEFINE(policy_ipv6only, ipv6only_descriptor);

/*
 * create() runs once per instance on the host's main thread, for
 * `aimx config check` as well as for delivery.  It is the only time the
 * config services may be used.
 */
static aimx_status
ipv6only_create(const aimx_host_api *api, aimx_host *host, void **instance)
{
    struct ipv6only *self;

    /* Check every service we rely on: an older or unusual host may have a
     * shorter table.  Without log() we cannot even say what is wrong. */
    if (!instance || !api || !HAS_SERVICE(api, log))
        return AIMX_ERR_UNSUPPORTED;
    if (!HAS_SERVICE(api, alloc) || !HAS_SERVICE(api, free)) {
        api->log(host, AIMX_LOG_ERR, "the host provides no memory services");
        return AIMX_ERR_UNSUPPORTED;
    }

    /*
     * Settings: this policy has none.  A plugin with settings would read
     * them here with api->cfg_string(), cfg_bool(), cfg_duration()...
     * Every key asked for -- found or not -- becomes a known key of our
     * group, and the host reports any other key as unknown, with its file
     * and line.  Asking for nothing therefore makes the host reject any
     * key an operator puts in our group, with no code of ours.
     */

    /* alloc() returns zeroed memory.  Plain calloc() would do as well: no
     * ownership crosses the boundary either way. */
    self = api->alloc(host, sizeof *self);
    if (!self) {
        api->log(host, AIMX_LOG_ERR, "out of memory");
        return AIMX_ERR_NOMEM;
    }
    self->api = api;
    self->host = host;
    *instance = self;
    return AIMX_OK;
}

/* Runs once, after the last operation of the instance. */
static void
ipv6only_destroy(void *instance)
{
    struct ipv6only *self = instance;

    if (self)
        self->api->free(self->host, self);
}

/*
 * select(): pure and synchronous, called concurrently from any host
 * thread.  It fills in `out`, which the host owns, and returns AIMX_OK
 * whatever the verdict; another status means the call itself was wrong.
 */
static aimx_status
ipv6only_select(void *instance, const aimx_policy_input *in,
                aimx_policy_output *out)
{
    const char *host;
    size_t i;

    /* The host builds both structs; a short one is its bug, and guessing
     * could send mail to an address the resolver never returned. */
    if (!instance || !in || !out ||
        !HAS_FIELD(in, aimx_policy_input, aaaa_count) ||
        !HAS_FIELD(out, aimx_policy_output, detail))
        return AIMX_ERR_INVALID;
    /* Targets are 32-bit indices into A-then-AAAA, at most target_cap. */
    if ((uint64_t)in->a_count > UINT32_MAX ||
        (uint64_t)in->aaaa_count > UINT32_MAX - (uint64_t)in->a_count ||
        out->target_cap < in->aaaa_count ||
        (in->aaaa_count > 0 && (!in->aaaa_addrs || !out->targets)))
        return AIMX_ERR_INVALID;

    out->verdict = AIMX_POLICY_USE;
    out->flags = 0;
    out->target_count = 0;
    out->reason[0] = '\0';
    out->detail[0] = '\0';
    host = in->mx_host && in->mx_host[0] ? in->mx_host : "the MX host";

    /*
     * USE: a target is an index, not an address; the AAAA addresses follow
     * the A ones, so aaaa_addrs[i] is index a_count + i.  A policy may
     * filter and reorder, never invent.  We keep the resolver's order: it
     * already reflects the zone's (and RFC 6724's) preferences.
     */
    if (in->aaaa_count > 0) {
        for (i = 0; i < in->aaaa_count; i++)
            out->targets[out->target_count++] = (uint32_t)(in->a_count + i);
        return AIMX_OK;
    }

    /*
     * No AAAA address.  Before concluding "this host has no IPv6", make
     * sure the AAAA lookup really said so: a failed lookup proves nothing,
     * and a SKIP could end in a bounce.  DEFER makes the host retry later.
     */
    if (is_temporary_failure(in->aaaa_outcome))
        return refuse(out, AIMX_POLICY_DEFER, "dns_aaaa_failed",
                      "The AAAA lookup for %s failed (%s); this policy uses "
                      "IPv6 only, so delivery waits for a retry.",
                      host, outcome_text(in->aaaa_outcome));

    /* The AAAA answer is definitive (NODATA, NXDOMAIN...): the reason is a
     * code for programs and logs, the detail a sentence for a person. */
    if (in->a_count > 0)
        return refuse(out, AIMX_POLICY_SKIP, "no_ipv6",
                      "%s has no IPv6 address and this policy uses IPv6 only.",
                      host);
    if (is_temporary_failure(in->a_outcome))
        return refuse(out, AIMX_POLICY_SKIP, "no_address",
                      "%s has no IPv6 address and its A lookup failed (%s); "
                      "this policy uses IPv6 only.",
                      host, outcome_text(in->a_outcome));
    return refuse(out, AIMX_POLICY_SKIP, "no_address",
                  "%s has no IPv6 or IPv4 address.", host);
}

/* `aimx setup` publishes DNS records (SPF...) only for the families a
 * policy says outbound mail uses. */
static aimx_status
ipv6only_families(void *instance, uint32_t *families)
{
    if (!instance || !families)
        return AIMX_ERR_INVALID;
    *families = AIMX_FAMILY_IPV6;
    return AIMX_OK;
}

/*
 * Outcomes are append-only ABI values: a later minor may add some.  Only
 * the known definitive answers count as "no address"; anything else,
 * including a value we do not know yet, is treated as a failure, because
 * what we do not understand must not bounce mail.
 */
static int
is_temporary_failure(uint32_t outcome)
{
    switch (outcome) {
    case AIMX_DNS_OK:       /* answered, possibly with no usable record */
    case AIMX_DNS_NODATA:   /* the name exists, no record of this type */
    case AIMX_DNS_NXDOMAIN: /* the name does not exist */
    case AIMX_DNS_BADNAME:  /* the name cannot be queried at all */
        return 0;
    default: /* SERVFAIL, REFUSED, TIMEOUT, UNREACHABLE, LOCALERR, CANCELLED */
        return 1;
    }
}

static const char *
outcome_text(uint32_t outcome)
{
    switch (outcome) {
    case AIMX_DNS_SERVFAIL:
        return "SERVFAIL";
    case AIMX_DNS_REFUSED:
        return "REFUSED";
    case AIMX_DNS_TIMEOUT:
        return "timed out";
    case AIMX_DNS_UNREACHABLE:
        return "no DNS server reachable";
    case AIMX_DNS_LOCALERR:
        return "local resolver error";
    case AIMX_DNS_CANCELLED:
        return "cancelled";
    default:
        return "unknown DNS outcome";
    }
}

/*
 * SKIP and DEFER carry no targets.  Both strings are bounded by the
 * struct's arrays; snprintf truncates a very long host name rather than
 * overflowing.  AIMX_POLICY_F_TEMPORARY stays clear: our temporary
 * trouble is reported as DEFER, so every SKIP here is definitive.
 */
static aimx_status
refuse(aimx_policy_output *out, uint32_t verdict, const char *reason,
       const char *fmt, ...)
{
    va_list ap;

    out->verdict = verdict;
    out->flags = 0;
    out->target_count = 0;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof out->detail, fmt, ap);
    va_end(ap);
    return AIMX_OK;
}
