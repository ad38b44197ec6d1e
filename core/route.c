/* SPDX-License-Identifier: MIT */
#include "route.h"

#include "dns_sink.h"
#include "log.h"
#include "netaddr.h"

#include <ctype.h>
#include <errno.h>
#include <idn2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

/* Every lookup of one phase, and the count still in flight. */
struct batch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t pending;
};

struct lookup {
    aimx_dns_sink sink;
    struct batch *batch;
    int started; /* lookup() accepted it: a completion will come */
};

static void batch_init(struct batch *b);
static void batch_destroy(struct batch *b);
static void on_done(aimx_dns_sink *sink, void *arg);
static void start_lookup(const aimx_router *r, struct lookup *l,
                         struct batch *b, const char *name, uint16_t type);
static void wait_batch(const aimx_router *r, struct batch *b,
                       struct lookup *lookups, size_t n);
static unsigned random_below(unsigned n);
static int compare_pref(const void *a, const void *b);
static void host_from_mx(const aimx_router *r, aimx_route *route,
                         const struct lookup *mx);
static void collect_addrs(const struct lookup *l, uint8_t family,
                          aimx_addr **out, size_t *count, uint32_t *outcome,
                          char *diag, size_t diag_len);
static void apply_policy(const aimx_router *r, aimx_route_host *h);
static void drop_private(const aimx_router *r, aimx_route_host *h);
static void decide(aimx_route *route);
static void set_host_skip(aimx_route_host *h, const char *reason, int temporary,
                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static uint64_t now_us(void);
static int plain_ldh(const char *name);

const char *
aimx__dns_outcome_word(uint32_t outcome)
{
    switch (outcome) {
    case AIMX_DNS_OK:
        return "ok";
    case AIMX_DNS_NODATA:
        return "nodata";
    case AIMX_DNS_NXDOMAIN:
        return "nxdomain";
    case AIMX_DNS_SERVFAIL:
        return "servfail";
    case AIMX_DNS_REFUSED:
        return "refused";
    case AIMX_DNS_TIMEOUT:
        return "timeout";
    case AIMX_DNS_UNREACHABLE:
        return "unreachable";
    case AIMX_DNS_BADNAME:
        return "badname";
    default:
        return "error";
    }
}

const char *
aimx__verdict_word(uint32_t verdict)
{
    switch (verdict) {
    case AIMX_POLICY_USE:
        return "use";
    case AIMX_POLICY_SKIP:
        return "skip";
    default:
        return "defer";
    }
}

int
aimx__route_domain_from_input(const char *input, char *domain, size_t len,
                              char *err, size_t errlen)
{
    const char *at = strrchr(input, '@');
    const char *name = at ? at + 1 : input;
    char *ascii = NULL;
    int rc;

    if (*name == '\0') {
        snprintf(err, errlen, "'%s' has no domain", input);
        return -1;
    }
    for (const char *p = input; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            snprintf(err, errlen, "'%s' contains a control character", input);
            return -1;
        }
    }
    if (name[0] == '[') {
        snprintf(err, errlen,
                 "'%s': address literals are not routed by MX; give a "
                 "domain",
                 input);
        return -1;
    }
    if (plain_ldh(name)) {
        /* What UTS #46 would give (test_route checks it against libidn2),
         * at a hundredth of the cost: a thousand recipients parse in
         * microseconds, not milliseconds. */
        size_t l = strlen(name);
        if (l < len && !aimx__is_ip_literal(name)) {
            for (size_t i = 0; i <= l; i++)
                domain[i] = (char)tolower((unsigned char)name[i]);
            return 0;
        }
    }
    /* UTS #46 non-transitional processing, as browsers and MTAs do. */
    rc = idn2_to_ascii_8z(name, &ascii, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    if (rc != IDN2_OK) {
        snprintf(err, errlen, "'%s' is not a valid domain name: %s", name,
                 idn2_strerror(rc));
        return -1;
    }
    size_t l = strlen(ascii);
    if (l > 1 && ascii[l - 1] == '.')
        ascii[--l] = '\0';
    for (char *p = ascii; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (l >= len || !aimx__valid_hostname(ascii) ||
        aimx__is_ip_literal(ascii)) {
        snprintf(err, errlen,
                 "'%s' is not a valid domain name (letters, digits and '-' "
                 "in dot-separated labels)",
                 name);
        idn2_free(ascii);
        return -1;
    }
    memcpy(domain, ascii, l + 1);
    idn2_free(ascii);
    return 0;
}

/*
 * A name UTS #46 processing only lowercases: ASCII letters, digits, '-'
 * and '.', a valid host name (no empty label, none over 63 octets or
 * starting or ending with '-', no final dot), and no label with "--" in
 * its third and fourth places (A-labels "xn--" and the other reserved
 * ones, which libidn2 checks).  Anything else goes through libidn2.
 */
static int
plain_ldh(const char *name)
{
    size_t pos = 0;

    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.') {
            pos = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-'))
            return 0;
        if (pos == 2 && c == '-' && p[1] == '-')
            return 0;
        pos++;
    }
    return aimx__valid_hostname(name);
}

static void
batch_init(struct batch *b)
{
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->pending = 0;
}

static void
batch_destroy(struct batch *b)
{
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
}

/* Runs on the resolver's thread, possibly inside lookup(). */
static void
on_done(aimx_dns_sink *sink, void *arg)
{
    struct batch *b = arg;

    (void)sink;
    pthread_mutex_lock(&b->lock);
    b->pending--;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void
start_lookup(const aimx_router *r, struct lookup *l, struct batch *b,
             const char *name, uint16_t type)
{
    char absolute[260];
    aimx_dns_query q;
    aimx_status st;

    snprintf(absolute, sizeof absolute, "%s.", name);
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.type = type;
    q.name = absolute;
    q.deadline_us = r->deadline_us;
    aimx__dns_sink_init(&l->sink, on_done, b);
    l->batch = b;
    /* Count it first: the completion may arrive before lookup() returns. */
    pthread_mutex_lock(&b->lock);
    b->pending++;
    pthread_mutex_unlock(&b->lock);
    st = r->resolver->plugin.resolver.lookup(r->resolver->instance, &q,
                                             &l->sink);
    if (st == AIMX_OK) {
        l->started = 1;
        return;
    }
    /* Refused up front: no completion will come, so make one. */
    pthread_mutex_lock(&b->lock);
    b->pending--;
    pthread_mutex_unlock(&b->lock);
    l->sink.done = 1;
    l->sink.outcome = AIMX_DNS_LOCALERR;
    snprintf(l->sink.diag, sizeof l->sink.diag,
             "the resolver refused the lookup (status %d)", (int)st);
}

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
wait_batch(const aimx_router *r, struct batch *b, struct lookup *lookups,
           size_t n)
{
    int cancelled = 0;

    pthread_mutex_lock(&b->lock);
    while (b->pending > 0) {
        if ((r->deadline_us == 0 && r->stop == NULL) || cancelled) {
            pthread_cond_wait(&b->cond, &b->lock);
            continue;
        }
        /* CLOCK_MONOTONIC deadline against a CLOCK_REALTIME wait: wait in
         * short steps and compare on the monotonic clock. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&b->cond, &b->lock, &ts);
        if (b->pending > 0 &&
            ((r->deadline_us != 0 && now_us() >= r->deadline_us) ||
             (r->stop != NULL && *r->stop))) {
            /* A resolver that misses its deadline is asked to stop; its
             * completions still come, so keep waiting for them. */
            cancelled = 1;
            pthread_mutex_unlock(&b->lock);
            if (r->resolver->plugin.resolver.cancel != NULL)
                for (size_t i = 0; i < n; i++)
                    if (lookups[i].started)
                        r->resolver->plugin.resolver.cancel(
                            r->resolver->instance, &lookups[i].sink);
            pthread_mutex_lock(&b->lock);
        }
    }
    pthread_mutex_unlock(&b->lock);
}

static unsigned
random_below(unsigned n)
{
    uint32_t v;

    if (n <= 1)
        return 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (uint32_t)now_us();
    return v % n;
}

static int
compare_pref(const void *a, const void *b)
{
    const aimx_route_host *x = a, *y = b;

    return (int)x->preference - (int)y->preference;
}

size_t
aimx__route_order_mx(aimx_route_host *hosts, size_t n,
                     unsigned (*rnd)(unsigned n))
{
    size_t out = 0;

    if (n > 1)
        qsort(hosts, n, sizeof *hosts, compare_pref);
    /* RFC 5321 5.1: hosts of equal preference are tried in random order. */
    for (size_t start = 0; start < n;) {
        size_t end = start + 1;
        while (end < n && hosts[end].preference == hosts[start].preference)
            end++;
        for (size_t i = end - start; i > 1; i--) {
            size_t j = start + rnd((unsigned)i);
            aimx_route_host tmp = hosts[start + i - 1];
            hosts[start + i - 1] = hosts[j];
            hosts[j] = tmp;
        }
        start = end;
    }
    /* A name listed twice keeps its most preferred place. */
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t k = 0; k < out && !dup; k++)
            dup = strcasecmp(hosts[k].name, hosts[i].name) == 0;
        if (!dup)
            hosts[out++] = hosts[i];
    }
    return out;
}

static void
set_host_skip(aimx_route_host *h, const char *reason, int temporary,
              const char *fmt, ...)
{
    va_list ap;

    h->verdict = AIMX_POLICY_SKIP;
    h->core_reason = 1;
    h->temporary = temporary;
    snprintf(h->reason, sizeof h->reason, "%s", reason);
    va_start(ap, fmt);
    vsnprintf(h->detail, sizeof h->detail, fmt, ap);
    va_end(ap);
}

/* The MX answer as hosts: null MX, names checked, ordered, limited. */
static void
host_from_mx(const aimx_router *r, aimx_route *route, const struct lookup *mx)
{
    const aimx_dns_sink *s = &mx->sink;
    size_t n = 0;

    route->mx_outcome = s->outcome;
    snprintf(route->mx_diag, sizeof route->mx_diag, "%.159s", s->diag);
    if (s->outcome == AIMX_DNS_NODATA) {
        /* RFC 5321 5.1: no MX at all means the domain itself, preference 0. */
        route->hosts = calloc(1, sizeof *route->hosts);
        if (route->hosts == NULL)
            return;
        snprintf(route->hosts[0].name, sizeof route->hosts[0].name, "%s",
                 route->domain);
        route->hosts[0].implicit = 1;
        route->host_count = 1;
        return;
    }
    if (s->outcome != AIMX_DNS_OK)
        return;
    for (size_t i = 0; i < s->count; i++) {
        const aimx_dns_rr *rr = &s->records[i];
        if (rr->type == AIMX_DNS_MX &&
            (rr->target == NULL || rr->target[0] == '\0' ||
             strcmp(rr->target, ".") == 0))
            route->null_mx = 1;
    }
    /* RFC 7505: one null MX makes the domain refuse mail, whatever else. */
    if (route->null_mx)
        return;
    route->hosts = calloc(s->count ? s->count : 1, sizeof *route->hosts);
    if (route->hosts == NULL)
        return;
    for (size_t i = 0; i < s->count; i++) {
        const aimx_dns_rr *rr = &s->records[i];
        aimx_route_host *h = &route->hosts[n];
        if (rr->type != AIMX_DNS_MX || rr->target == NULL)
            continue;
        size_t l = strlen(rr->target);
        if (l > 1 && rr->target[l - 1] == '.')
            l--;
        snprintf(h->name, sizeof h->name, "%.*s", (int)l, rr->target);
        for (char *p = h->name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        h->preference = rr->preference;
        n++;
    }
    n = aimx__route_order_mx(route->hosts, n, random_below);
    if (r->max_mx_hosts > 0 && n > (size_t)r->max_mx_hosts) {
        aimx__info("%s: using the first %d of %zu MX hosts (max_mx_hosts)",
                   route->domain, r->max_mx_hosts, n);
        n = (size_t)r->max_mx_hosts;
    }
    route->host_count = n;
    for (size_t i = 0; i < n; i++) {
        aimx_route_host *h = &route->hosts[i];
        if (aimx__is_ip_literal(h->name))
            set_host_skip(h, "ip_literal_mx", 0,
                          "The MX record names the IP address %s instead of "
                          "a host name (RFC 5321 5.1 forbids it).",
                          h->name);
        else if (!aimx__valid_hostname(h->name))
            set_host_skip(h, "bad_mx_name", 0,
                          "The MX record names '%s', which is not a valid "
                          "host name.",
                          h->name);
    }
}

static void
collect_addrs(const struct lookup *l, uint8_t family, aimx_addr **out,
              size_t *count, uint32_t *outcome, char *diag, size_t diag_len)
{
    const aimx_dns_sink *s = &l->sink;
    size_t n = 0;

    *outcome = s->outcome;
    snprintf(diag, diag_len, "%.159s", s->diag);
    *out = calloc(s->count ? s->count : 1, sizeof **out);
    if (*out == NULL) {
        *outcome = AIMX_DNS_LOCALERR;
        *count = 0;
        return;
    }
    for (size_t i = 0; i < s->count; i++) {
        const aimx_addr *a = &s->records[i].address;
        int dup = 0;
        if ((s->records[i].type != AIMX_DNS_A &&
             s->records[i].type != AIMX_DNS_AAAA) ||
            a->family != family)
            continue;
        for (size_t k = 0; k < n && !dup; k++)
            dup = memcmp((*out)[k].bytes, a->bytes, 16) == 0;
        if (!dup)
            (*out)[n++] = *a;
    }
    *count = n;
    /* "OK" without a usable address is no address at all. */
    if (*outcome == AIMX_DNS_OK && n == 0)
        *outcome = AIMX_DNS_NODATA;
}

static void
apply_policy(const aimx_router *r, aimx_route_host *h)
{
    const aimx_instance *p = r->policy;
    size_t cap = h->a_count + h->aaaa_count;
    uint32_t *idx = calloc(cap ? cap : 1, sizeof *idx);
    unsigned char *seen = calloc(cap ? cap : 1, 1);
    aimx_policy_input in;
    aimx_policy_output out;
    aimx_status st;

    if (idx == NULL || seen == NULL) {
        set_host_skip(h, "local_error", 1, "Out of memory.");
        goto done;
    }
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.preference = h->preference;
    in.flags = h->implicit ? AIMX_MX_IMPLICIT : 0;
    in.mx_host = h->name;
    in.a_outcome = h->a_outcome;
    in.aaaa_outcome = h->aaaa_outcome;
    in.a_addrs = h->a;
    in.a_count = h->a_count;
    in.aaaa_addrs = h->aaaa;
    in.aaaa_count = h->aaaa_count;
    memset(&out, 0, sizeof out);
    out.struct_size = sizeof out;
    out.target_cap = (uint32_t)cap;
    out.targets = idx;

    st = p->plugin.policy.select(p->instance, &in, &out);
    out.reason[sizeof out.reason - 1] = '\0';
    out.detail[sizeof out.detail - 1] = '\0';
    if (st != AIMX_OK) {
        set_host_skip(h, "policy_error", 1,
                      "The policy plugin %s failed on %s (status %d).",
                      p->plugin.name, h->name, (int)st);
        goto done;
    }
    if (out.verdict == AIMX_POLICY_USE) {
        /* A policy may filter and reorder, never invent or repeat. */
        if (out.target_count == 0 || out.target_count > cap) {
            set_host_skip(h, "policy_error", 1,
                          "The policy plugin %s chose %u targets for %s out "
                          "of %zu addresses.",
                          p->plugin.name, (unsigned)out.target_count, h->name,
                          cap);
            goto done;
        }
        h->targets = calloc(out.target_count, sizeof *h->targets);
        if (h->targets == NULL) {
            set_host_skip(h, "local_error", 1, "Out of memory.");
            goto done;
        }
        for (uint32_t i = 0; i < out.target_count; i++) {
            uint32_t k = idx[i];
            if (k >= cap || seen[k]) {
                free(h->targets);
                h->targets = NULL;
                set_host_skip(h, "policy_error", 1,
                              "The policy plugin %s gave an address index "
                              "that is %s (%u) for %s.",
                              p->plugin.name,
                              k >= cap ? "out of range" : "repeated",
                              (unsigned)k, h->name);
                goto done;
            }
            seen[k] = 1;
            h->targets[i] = k < h->a_count ? h->a[k] : h->aaaa[k - h->a_count];
        }
        h->target_count = out.target_count;
        h->verdict = AIMX_POLICY_USE;
        goto done;
    }
    if (out.verdict != AIMX_POLICY_SKIP && out.verdict != AIMX_POLICY_DEFER) {
        set_host_skip(h, "policy_error", 1,
                      "The policy plugin %s gave an unknown verdict %u for "
                      "%s.",
                      p->plugin.name, (unsigned)out.verdict, h->name);
        goto done;
    }
    h->verdict = out.verdict;
    h->temporary = out.verdict == AIMX_POLICY_DEFER ||
                   (out.flags & AIMX_POLICY_F_TEMPORARY) != 0;
    int code_ok = out.reason[0] != '\0';
    for (const char *c = out.reason; *c; c++)
        code_ok &=
            (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
    snprintf(h->reason, sizeof h->reason, "%s",
             code_ok ? out.reason
                     : (out.verdict == AIMX_POLICY_SKIP ? "policy_skip"
                                                        : "policy_defer"));
    snprintf(h->detail, sizeof h->detail, "%s",
             out.detail[0] ? out.detail : "The policy gave no reason.");
done:
    free(idx);
    free(seen);
}

/* A hostile domain's MX must not steer aimx at internal services. */
static void
drop_private(const aimx_router *r, aimx_route_host *h)
{
    char dropped[400] = "";
    size_t kept = 0, used = 0;

    if (h->verdict != AIMX_POLICY_USE || r->allow_private_targets)
        goto limit;
    for (size_t i = 0; i < h->target_count; i++) {
        const char *cls = aimx__addr_nonglobal_class(&h->targets[i]);
        char text[AIMX_ADDR_TEXT_MAX];
        if (cls == NULL) {
            h->targets[kept++] = h->targets[i];
            continue;
        }
        aimx__addr_text(&h->targets[i], text, sizeof text);
        if (used < sizeof dropped)
            used += (size_t)snprintf(dropped + used, sizeof dropped - used,
                                     "%s%s (%s)", used ? ", " : "", text, cls);
    }
    h->target_count = kept;
    if (kept == 0)
        set_host_skip(h, "private_address", 0,
                      "%s has only addresses aimx does not connect to: %s. "
                      "Set allow_private_targets = true for internal relays.",
                      h->name, dropped);
    else if (dropped[0] != '\0')
        aimx__info("%s: not connecting to %s", h->name, dropped);
limit:
    if (h->verdict == AIMX_POLICY_USE && r->max_addresses_per_host > 0 &&
        h->target_count > (size_t)r->max_addresses_per_host)
        h->target_count = (size_t)r->max_addresses_per_host;
}

static void
decide(aimx_route *route)
{
    const char *d = route->domain;
    int any_temp = 0;
    size_t used = 0;

    if (route->null_mx) {
        route->status = AIMX_ROUTE_PERMFAIL;
        snprintf(route->reason, sizeof route->reason, "null_mx");
        snprintf(route->enhanced, sizeof route->enhanced, "5.1.10");
        snprintf(route->detail, sizeof route->detail,
                 "%s does not accept mail (null MX, RFC 7505).", d);
        return;
    }
    switch (route->mx_outcome) {
    case AIMX_DNS_OK:
    case AIMX_DNS_NODATA:
        break;
    case AIMX_DNS_NXDOMAIN:
        route->status = AIMX_ROUTE_PERMFAIL;
        snprintf(route->reason, sizeof route->reason, "nxdomain");
        snprintf(route->enhanced, sizeof route->enhanced, "5.1.2");
        snprintf(route->detail, sizeof route->detail,
                 "The domain %s does not exist (NXDOMAIN).", d);
        return;
    case AIMX_DNS_BADNAME:
        route->status = AIMX_ROUTE_PERMFAIL;
        snprintf(route->reason, sizeof route->reason, "bad_domain");
        snprintf(route->enhanced, sizeof route->enhanced, "5.1.2");
        snprintf(route->detail, sizeof route->detail,
                 "The resolver cannot look up %s (%s).", d, route->mx_diag);
        return;
    default:
        /* Never the A record instead: a DNS failure is not "no MX". */
        route->status = AIMX_ROUTE_TEMPFAIL;
        snprintf(route->reason, sizeof route->reason, "dns_temporary");
        snprintf(route->enhanced, sizeof route->enhanced, "4.4.3");
        snprintf(route->detail, sizeof route->detail,
                 "The MX lookup for %s failed (%s%s%s); this is temporary, "
                 "and aimx will not fall back to the domain's own address.",
                 d, aimx__dns_outcome_word(route->mx_outcome),
                 route->mx_diag[0] ? ": " : "", route->mx_diag);
        return;
    }
    for (size_t i = 0; i < route->host_count; i++) {
        const aimx_route_host *h = &route->hosts[i];
        if (h->verdict == AIMX_POLICY_USE && h->target_count > 0) {
            char text[AIMX_ADDR_TEXT_MAX];
            route->status = AIMX_ROUTE_OK;
            aimx__addr_text(&h->targets[0], text, sizeof text);
            snprintf(route->detail, sizeof route->detail,
                     "Mail for %s goes to %s [%s]%s.", d, h->name, text,
                     route->host_count - i > 1 ? ", with backups" : "");
            return;
        }
        any_temp |= h->temporary;
    }
    route->status = any_temp ? AIMX_ROUTE_TEMPFAIL : AIMX_ROUTE_PERMFAIL;
    snprintf(route->reason, sizeof route->reason, "%s",
             any_temp ? "dns_temporary" : "no_usable_mx");
    snprintf(route->enhanced, sizeof route->enhanced, "%s",
             any_temp ? "4.4.3" : "5.4.4");
    used = (size_t)snprintf(route->detail, sizeof route->detail,
                            any_temp ? "No MX host of %s is usable now:"
                                     : "No MX host of %s is usable:",
                            d);
    for (size_t i = 0; i < route->host_count && used < sizeof route->detail;
         i++) {
        const aimx_route_host *h = &route->hosts[i];
        used +=
            (size_t)snprintf(route->detail + used, sizeof route->detail - used,
                             " %s (%s): %s", h->name, h->reason, h->detail);
    }
    if (route->host_count == 0 && used < sizeof route->detail)
        snprintf(route->detail + used, sizeof route->detail - used,
                 " its MX answer named no host.");
}

int
aimx__route_resolve(const aimx_router *r, aimx_route *routes, size_t n)
{
    struct batch b;
    struct lookup *mx = NULL, *addr = NULL;
    size_t hosts = 0, k = 0;
    int rc = -1;

    batch_init(&b);
    mx = calloc(n ? n : 1, sizeof *mx);
    if (mx == NULL)
        goto out;
    /* Every MX lookup at once. */
    for (size_t i = 0; i < n; i++)
        start_lookup(r, &mx[i], &b, routes[i].domain, AIMX_DNS_MX);
    wait_batch(r, &b, mx, n);
    for (size_t i = 0; i < n; i++) {
        host_from_mx(r, &routes[i], &mx[i]);
        aimx__dns_sink_free(&mx[i].sink);
        for (size_t h = 0; h < routes[i].host_count; h++)
            hosts += routes[i].hosts[h].core_reason ? 0 : 1;
    }

    /* Then A and AAAA of every host of every domain at once. */
    addr = calloc(hosts ? 2 * hosts : 1, sizeof *addr);
    if (addr == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        for (size_t h = 0; h < routes[i].host_count; h++) {
            aimx_route_host *host = &routes[i].hosts[h];
            if (host->core_reason)
                continue;
            host->looked_up = 1;
            start_lookup(r, &addr[k++], &b, host->name, AIMX_DNS_A);
            start_lookup(r, &addr[k++], &b, host->name, AIMX_DNS_AAAA);
        }
    }
    wait_batch(r, &b, addr, k);
    k = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t h = 0; h < routes[i].host_count; h++) {
            aimx_route_host *host = &routes[i].hosts[h];
            if (host->core_reason)
                continue;
            collect_addrs(&addr[k], AIMX_AF_INET, &host->a, &host->a_count,
                          &host->a_outcome, host->a_diag, sizeof host->a_diag);
            collect_addrs(&addr[k + 1], AIMX_AF_INET6, &host->aaaa,
                          &host->aaaa_count, &host->aaaa_outcome,
                          host->aaaa_diag, sizeof host->aaaa_diag);
            aimx__dns_sink_free(&addr[k].sink);
            aimx__dns_sink_free(&addr[k + 1].sink);
            k += 2;
            apply_policy(r, host);
            drop_private(r, host);
        }
        decide(&routes[i]);
    }
    rc = 0;
out:
    free(mx);
    free(addr);
    batch_destroy(&b);
    return rc;
}

void
aimx__route_free(aimx_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t h = 0; h < routes[i].host_count; h++) {
            free(routes[i].hosts[h].a);
            free(routes[i].hosts[h].aaaa);
            free(routes[i].hosts[h].targets);
        }
        free(routes[i].hosts);
        routes[i].hosts = NULL;
        routes[i].host_count = 0;
    }
}
