/* SPDX-License-Identifier: MIT */
#include "deliver.h"

#include "log.h"
#include "message.h"
#include "netaddr.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Sessions in use: all of them, and per MX host name. */
struct slots {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int used;
    int max;
    int per_dest_max;
    struct dest {
        char name[256];
        int used;
    } * dests;
    size_t dest_count;
    size_t dest_cap;
};

/* The recipients of one domain, or of several whose routes name the same
 * MX hosts (merge_shared_routes), delivered by one worker. */
struct job {
    aimx_delivery *d;
    struct slots *slots;
    aimx_route *route;
    size_t *rcpt; /* indices into d->rcpts */
    size_t count;
};

struct pool {
    struct job *jobs;
    size_t count;
    size_t next;
    pthread_mutex_t lock;
};

static uint64_t now_us(void);
static int dest_index(struct slots *s, const char *name);
static void slots_acquire(struct slots *s, const char *mx);
static void slots_release(struct slots *s, const char *mx);
static void add_attempt(aimx_delivery_rcpt *r, const char *mx,
                        const aimx_addr *ip, uint32_t phase, int result,
                        int code, const char *reason);
static int attempt_result_of(const aimx_transport_result *res);
static int connect_result(const aimx_connect_attempt *at);
static const char *connect_reason(const aimx_connect_attempt *at);
static int stopped(const aimx_delivery *d);
static void settle(aimx_delivery_rcpt *r, int status, const char *mx,
                   const aimx_addr *ip, uint16_t port,
                   const aimx_transport_result *res,
                   const aimx_rcpt_result *rr);
static void route_failed(struct job *j);
static void deliver_domain(struct job *j);
static void *worker(void *arg);
static aimx_transport_result *new_result(size_t attempts, size_t rcpts);
static void free_result(aimx_transport_result *res);
static void remove_addr(aimx_addr *addrs, size_t *n, const aimx_addr *a);
static int same_host(const aimx_route_host *a, const aimx_route_host *b);
static int same_hosts(const aimx_route *a, const aimx_route *b);
static const aimx_route_host *first_host(const aimx_route *r);
static int compare_first_host(const void *a, const void *b);
static void merge_shared_routes(struct job *jobs, size_t n);

const char *
aimx__rcpt_status_word(int status)
{
    switch (status) {
    case AIMX_RCPT_DELIVERED:
        return "delivered";
    case AIMX_RCPT_BOUNCED:
        return "bounced";
    default:
        return "deferred";
    }
}

const char *
aimx__attempt_result_word(int result)
{
    static const char *const words[] = {
        "delivered",  "refused", "timeout", "tls", "temp_reply",
        "perm_reply", "lost",    "skipped", "dns",
    };
    return result >= 0 && result <= AIMX_ATTEMPT_DNS ? words[result] : "lost";
}

const char *
aimx__phase_word(uint32_t phase)
{
    static const char *const words[] = {
        "none", "connect", "greeting", "ehlo", "starttls", "mail",
        "rcpt", "data",    "body",     "dot",  "quit",     "rset",
    };
    return phase <= AIMX_PHASE_RSET ? words[phase] : "none";
}

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int
stopped(const aimx_delivery *d)
{
    return (d->stop != NULL && *d->stop) ||
           (d->deadline_us != 0 && now_us() >= d->deadline_us);
}

static int
dest_index(struct slots *s, const char *name)
{
    for (size_t i = 0; i < s->dest_count; i++)
        if (strcasecmp(s->dests[i].name, name) == 0)
            return (int)i;
    if (s->dest_count == s->dest_cap) {
        size_t cap = s->dest_cap ? s->dest_cap * 2 : 16;
        struct dest *grown = realloc(s->dests, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        s->dests = grown;
        s->dest_cap = cap;
    }
    snprintf(s->dests[s->dest_count].name, sizeof s->dests[0].name, "%s", name);
    s->dests[s->dest_count].used = 0;
    return (int)s->dest_count++;
}

/* The destination's slot first: a session waiting for a busy MX host must
 * not hold one of the global slots others could use. */
static void
slots_acquire(struct slots *s, const char *mx)
{
    pthread_mutex_lock(&s->lock);
    for (;;) {
        int i = dest_index(s, mx);
        int dest_free = i < 0 || s->dests[i].used < s->per_dest_max;
        if (dest_free && s->used < s->max) {
            if (i >= 0)
                s->dests[i].used++;
            s->used++;
            break;
        }
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
}

static void
slots_release(struct slots *s, const char *mx)
{
    pthread_mutex_lock(&s->lock);
    int i = dest_index(s, mx);
    if (i >= 0 && s->dests[i].used > 0)
        s->dests[i].used--;
    s->used--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void
add_attempt(aimx_delivery_rcpt *r, const char *mx, const aimx_addr *ip,
            uint32_t phase, int result, int code, const char *reason)
{
    aimx_delivery_attempt *a;

    if (r->attempt_count == r->attempt_cap) {
        size_t cap = r->attempt_cap ? r->attempt_cap * 2 : 4;
        aimx_delivery_attempt *grown =
            realloc(r->attempts, cap * sizeof *grown);
        if (grown == NULL)
            return;
        r->attempts = grown;
        r->attempt_cap = cap;
    }
    a = &r->attempts[r->attempt_count++];
    memset(a, 0, sizeof *a);
    snprintf(a->mx, sizeof a->mx, "%s", mx ? mx : "");
    if (ip != NULL)
        a->ip = *ip;
    a->phase = phase;
    a->result = result;
    a->code = code;
    snprintf(a->reason, sizeof a->reason, "%s", reason ? reason : "");
}

/* The one place a transport outcome becomes an attempt's result word. */
static int
attempt_result_of(const aimx_transport_result *res)
{
    switch (res->kind) {
    case AIMX_FAIL_NONE:
        return AIMX_ATTEMPT_DELIVERED;
    case AIMX_FAIL_REFUSED:
        return AIMX_ATTEMPT_REFUSED;
    case AIMX_FAIL_TIMEOUT:
        return AIMX_ATTEMPT_TIMEOUT;
    case AIMX_FAIL_TLS:
        return AIMX_ATTEMPT_TLS;
    case AIMX_FAIL_REPLY:
        return res->result_class == AIMX_CLASS_PERMANENT
                   ? AIMX_ATTEMPT_PERM_REPLY
                   : AIMX_ATTEMPT_TEMP_REPLY;
    case AIMX_FAIL_UNSUPPORTED:
    case AIMX_FAIL_TOO_LARGE:
        return res->result_class == AIMX_CLASS_PERMANENT
                   ? AIMX_ATTEMPT_PERM_REPLY
                   : AIMX_ATTEMPT_TEMP_REPLY;
    default:
        return AIMX_ATTEMPT_LOST;
    }
}

static int
connect_result(const aimx_connect_attempt *at)
{
    return at->outcome == AIMX_CONNECT_TIMEOUT ||
                   at->outcome == AIMX_CONNECT_ABORTED
               ? AIMX_ATTEMPT_TIMEOUT
               : AIMX_ATTEMPT_REFUSED;
}

static const char *
connect_reason(const aimx_connect_attempt *at)
{
    switch (at->outcome) {
    case AIMX_CONNECT_TIMEOUT:
        return "connection timed out";
    case AIMX_CONNECT_ABORTED:
        return "cut short: the deadline passed or aimx was interrupted";
    case AIMX_CONNECT_UNREACHABLE:
        return at->sys_errno ? strerror(at->sys_errno) : "unreachable";
    default:
        return at->sys_errno ? strerror(at->sys_errno) : "connection refused";
    }
}

static void
settle(aimx_delivery_rcpt *r, int status, const char *mx, const aimx_addr *ip,
       uint16_t port, const aimx_transport_result *res,
       const aimx_rcpt_result *rr)
{
    r->status = status;
    r->done_us = now_us();
    snprintf(r->mx, sizeof r->mx, "%s", mx);
    if (ip != NULL)
        r->ip = *ip;
    r->port = port;
    if (res != NULL) {
        r->tls = (res->flags & AIMX_RESULT_TLS) != 0;
        r->tls_verified = (res->flags & AIMX_RESULT_TLS_VERIFIED) != 0;
        snprintf(r->tls_version, sizeof r->tls_version, "%s", res->tls_version);
        snprintf(r->tls_cipher, sizeof r->tls_cipher, "%s", res->tls_cipher);
    }
    if (rr != NULL) {
        r->phase = rr->phase;
        r->code = rr->code;
        snprintf(r->enhanced, sizeof r->enhanced, "%.15s", rr->enhanced);
        snprintf(r->reply, sizeof r->reply, "%.255s", rr->reply);
    }
}

static aimx_transport_result *
new_result(size_t attempts, size_t rcpts)
{
    aimx_transport_result *res = calloc(1, sizeof *res);

    if (res == NULL)
        return NULL;
    res->struct_size = sizeof *res;
    res->attempts = calloc(attempts ? attempts : 1, sizeof *res->attempts);
    res->rcpts = calloc(rcpts ? rcpts : 1, sizeof *res->rcpts);
    if (res->attempts == NULL || res->rcpts == NULL) {
        free_result(res);
        return NULL;
    }
    res->attempt_stride = sizeof *res->attempts;
    res->attempt_cap = attempts;
    for (size_t i = 0; i < attempts; i++)
        res->attempts[i].struct_size = sizeof *res->attempts;
    res->rcpt_stride = sizeof *res->rcpts;
    res->rcpt_count = rcpts;
    /* A transport that leaves a recipient unfilled must not make it look
     * delivered: the zero class would be "ok". */
    for (size_t i = 0; i < rcpts; i++) {
        res->rcpts[i].struct_size = sizeof *res->rcpts;
        res->rcpts[i].result_class = AIMX_CLASS_TEMPORARY;
    }
    return res;
}

static void
free_result(aimx_transport_result *res)
{
    if (res == NULL)
        return;
    free(res->attempts);
    free(res->rcpts);
    free(res);
}

static void
remove_addr(aimx_addr *addrs, size_t *n, const aimx_addr *a)
{
    for (size_t i = 0; i < *n; i++) {
        if (addrs[i].family == a->family &&
            memcmp(addrs[i].bytes, a->bytes, 16) == 0) {
            memmove(&addrs[i], &addrs[i + 1], (*n - i - 1) * sizeof *addrs);
            (*n)--;
            return;
        }
    }
}

/* The same MX host: name, preference, verdict and connect targets (as a
 * set: equal-preference hosts and addresses come in random order). */
static int
same_host(const aimx_route_host *a, const aimx_route_host *b)
{
    if (strcasecmp(a->name, b->name) != 0 || a->preference != b->preference ||
        a->implicit != b->implicit || a->verdict != b->verdict ||
        a->target_count != b->target_count)
        return 0;
    for (size_t i = 0; i < a->target_count; i++) {
        size_t k = 0;
        while (k < b->target_count &&
               (a->targets[i].family != b->targets[k].family ||
                memcmp(a->targets[i].bytes, b->targets[k].bytes, 16) != 0))
            k++;
        if (k == b->target_count)
            return 0;
    }
    return 1;
}

static int
same_hosts(const aimx_route *a, const aimx_route *b)
{
    if (a->status != AIMX_ROUTE_OK || b->status != AIMX_ROUTE_OK ||
        a->host_count != b->host_count)
        return 0;
    for (size_t i = 0; i < a->host_count; i++) {
        size_t k = 0;
        while (k < b->host_count && !same_host(&a->hosts[i], &b->hosts[k]))
            k++;
        if (k == b->host_count)
            return 0;
    }
    return 1;
}

/* The route's host that sorts first by preference and name: the same for
 * routes with the same hosts in any order. */
static const aimx_route_host *
first_host(const aimx_route *r)
{
    const aimx_route_host *best = NULL;

    for (size_t i = 0; i < r->host_count; i++)
        if (best == NULL || r->hosts[i].preference < best->preference ||
            (r->hosts[i].preference == best->preference &&
             strcasecmp(r->hosts[i].name, best->name) < 0))
            best = &r->hosts[i];
    return best;
}

static int
compare_first_host(const void *a, const void *b)
{
    const struct job *x = *(const struct job *const *)a;
    const struct job *y = *(const struct job *const *)b;
    const aimx_route_host *hx = first_host(x->route),
                          *hy = first_host(y->route);

    if (x->route->host_count != y->route->host_count)
        return x->route->host_count < y->route->host_count ? -1 : 1;
    if (hx == NULL || hy == NULL)
        return (hx != NULL) - (hy != NULL);
    return strcasecmp(hx->name, hy->name);
}

/*
 * Domains whose routes name the same MX hosts (hosted mail: many domains,
 * one provider's MX) go to one job, so that one session carries all their
 * recipients instead of a connection, a greeting, EHLO and a TLS handshake
 * per domain.  Only routes that are alike in everything the delivery looks
 * at: the failover is the same for every recipient of the job.  Sorting by
 * the first host keeps this n log n for thousands of domains.
 */
static void
merge_shared_routes(struct job *jobs, size_t n)
{
    struct job **order = calloc(n ? n : 1, sizeof *order);
    size_t m = 0;

    if (order == NULL)
        return; /* one session per domain, as without it */
    for (size_t k = 0; k < n; k++)
        if (jobs[k].route->status == AIMX_ROUTE_OK &&
            jobs[k].route->host_count > 0)
            order[m++] = &jobs[k];
    qsort(order, m, sizeof *order, compare_first_host);
    for (size_t a = 0; a < m; a++) {
        if (order[a]->count == 0)
            continue;
        for (size_t b = a + 1;
             b < m && compare_first_host(&order[a], &order[b]) == 0; b++) {
            struct job *into = order[a], *from = order[b];
            if (from->count == 0 || !same_hosts(into->route, from->route))
                continue;
            /* Every job's rcpt array has room for all recipients. */
            memcpy(into->rcpt + into->count, from->rcpt,
                   from->count * sizeof *from->rcpt);
            into->count += from->count;
            from->count = 0;
        }
    }
    free(order);
}

/* The domain could not be routed: every recipient learns why. */
static void
route_failed(struct job *j)
{
    const aimx_route *rt = j->route;
    int status = rt->status == AIMX_ROUTE_PERMFAIL ? AIMX_RCPT_BOUNCED
                                                   : AIMX_RCPT_DEFERRED;

    for (size_t k = 0; k < j->count; k++) {
        aimx_delivery_rcpt *r = &j->d->rcpts[j->rcpt[k]];
        if (rt->host_count == 0)
            add_attempt(r, NULL, NULL, AIMX_PHASE_NONE, AIMX_ATTEMPT_DNS, 0,
                        rt->detail);
        for (size_t h = 0; h < rt->host_count; h++) {
            const aimx_route_host *host = &rt->hosts[h];
            char why[600];
            snprintf(why, sizeof why, "%s: %s", host->reason, host->detail);
            add_attempt(r, host->name, NULL, AIMX_PHASE_NONE,
                        host->verdict == AIMX_POLICY_DEFER
                            ? AIMX_ATTEMPT_DNS
                            : AIMX_ATTEMPT_SKIPPED,
                        0, why);
        }
        r->status = status;
        r->done_us = now_us();
        snprintf(r->enhanced, sizeof r->enhanced, "%s", rt->enhanced);
        snprintf(r->reply, sizeof r->reply, "%.511s", rt->detail);
    }
}

static void
deliver_domain(struct job *j)
{
    aimx_delivery *d = j->d;
    const aimx_transport_ops *ops = &d->transport->plugin.transport;
    void *inst = d->transport->instance;
    aimx_route *rt = j->route;
    size_t *pending = calloc(j->count ? j->count : 1, sizeof *pending);
    const char **addrs = calloc(j->count ? j->count : 1, sizeof *addrs);
    size_t npending = j->count;
    /* A domain bounces on failures of the sessions themselves only when
     * every address tried ended permanently (a 5xx greeting, or a host
     * that cannot do it): one temporary failure anywhere defers it. */
    int tried = 0, all_permanent = 1, last_perm_code = 0;
    char last_perm[600] = "", last_perm_enhanced[16] = "";
    uint32_t last_phase = AIMX_PHASE_NONE;
    const char *last_mx = "";

    if (rt->status != AIMX_ROUTE_OK) {
        route_failed(j);
        goto out;
    }
    if (pending == NULL || addrs == NULL)
        goto out;
    memcpy(pending, j->rcpt, j->count * sizeof *pending);

    for (size_t h = 0; h < rt->host_count && npending > 0 && !stopped(d); h++) {
        const aimx_route_host *host = &rt->hosts[h];
        aimx_addr remaining[64];
        size_t nremaining = 0;

        last_mx = host->name;
        if (host->verdict != AIMX_POLICY_USE || host->target_count == 0) {
            char why[600];
            snprintf(why, sizeof why, "%s: %s", host->reason, host->detail);
            for (size_t k = 0; k < npending; k++)
                add_attempt(
                    &d->rcpts[pending[k]], host->name, NULL, AIMX_PHASE_NONE,
                    host->verdict == AIMX_POLICY_DEFER ? AIMX_ATTEMPT_DNS
                                                       : AIMX_ATTEMPT_SKIPPED,
                    0, why);
            if (host->temporary)
                all_permanent = 0;
            continue;
        }
        for (size_t t = 0; t < host->target_count && t < 64; t++)
            remaining[nremaining++] = host->targets[t];

        while (nremaining > 0 && npending > 0 && !stopped(d)) {
            aimx_open_request req;
            aimx_session *session = NULL;
            aimx_transport_result *res = new_result(nremaining, 0);
            aimx_status st;

            if (res == NULL)
                goto out;
            memset(&req, 0, sizeof req);
            req.struct_size = sizeof req;
            req.mx_host = host->name;
            req.addrs = remaining;
            req.addr_count = nremaining;
            req.deadline_us = d->deadline_us;
            slots_acquire(j->slots, host->name);
            st = ops->open(inst, &req, &session, res);
            tried = 1;
            /* An address that failed is spent; one that lost the race to
             * another, or never started, may still be tried. */
            for (size_t a = 0; a < res->attempt_count && a < nremaining + 64;
                 a++) {
                const aimx_connect_attempt *at = AIMX_ATTEMPT_AT(res, a);
                if (at->outcome == AIMX_CONNECT_NOT_STARTED ||
                    at->outcome == AIMX_CONNECT_ABANDONED ||
                    at->outcome == AIMX_CONNECT_OK)
                    continue;
                all_permanent = 0;
                for (size_t k = 0; k < npending; k++)
                    add_attempt(&d->rcpts[pending[k]], host->name, &at->remote,
                                AIMX_PHASE_CONNECT, connect_result(at), 0,
                                connect_reason(at));
                remove_addr(remaining, &nremaining, &at->remote);
            }
            if (st != AIMX_OK || res->result_class != AIMX_CLASS_OK) {
                char why[600];
                if (st != AIMX_OK)
                    snprintf(why, sizeof why,
                             "the transport plugin failed (status %d)",
                             (int)st);
                else
                    snprintf(why, sizeof why, "%s%s%s", res->enhanced,
                             res->enhanced[0] ? " " : "", res->reply);
                last_phase = res->phase;
                if (res->remote.family != 0)
                    remove_addr(remaining, &nremaining, &res->remote);
                else if (res->attempt_count == 0 && nremaining > 0)
                    remove_addr(remaining, &nremaining, &remaining[0]);
                if (st == AIMX_OK &&
                    res->result_class == AIMX_CLASS_PERMANENT) {
                    snprintf(last_perm, sizeof last_perm, "%s", why);
                    snprintf(last_perm_enhanced, sizeof last_perm_enhanced,
                             "%.15s", res->enhanced);
                    last_perm_code = res->code;
                } else {
                    all_permanent = 0;
                }
                /* Connect failures are in the attempts already. */
                if (st != AIMX_OK || res->phase != AIMX_PHASE_CONNECT)
                    for (size_t k = 0; k < npending; k++)
                        add_attempt(&d->rcpts[pending[k]], host->name,
                                    &res->remote, res->phase,
                                    st != AIMX_OK ? AIMX_ATTEMPT_LOST
                                                  : attempt_result_of(res),
                                    res->code, why);
                slots_release(j->slots, host->name);
                int next_host = st == AIMX_OK && res->scope == AIMX_SCOPE_HOST;
                free_result(res);
                if (next_host)
                    break;
                continue;
            }
            remove_addr(remaining, &nremaining, &res->remote);

            /* Connected: one session for every pending recipient. */
            aimx_transport_result *sent = new_result(0, npending);
            aimx_envelope env;
            aimx_msg msg;
            aimx_addr ip = res->remote;
            uint16_t port = res->remote_port;
            if (sent == NULL) {
                ops->close(inst, session, now_us() + 1000000);
                slots_release(j->slots, host->name);
                free_result(res);
                goto out;
            }
            for (size_t k = 0; k < npending; k++)
                addrs[k] = d->rcpts[pending[k]].address;
            memset(&env, 0, sizeof env);
            env.struct_size = sizeof env;
            env.flags = d->env_flags;
            env.sender = d->sender;
            env.rcpts = addrs;
            env.rcpt_count = npending;
            env.message_size = d->size;
            env.deadline_us = d->deadline_us;
            aimx__msg_init(&msg, d->spool_fd, d->size);
            st = ops->send(inst, session, &env, &msg, sent);
            /* QUIT gets little time: the mail is decided already. */
            uint64_t quit_by = now_us() + 10000000;
            if (d->deadline_us != 0 && d->deadline_us < quit_by)
                quit_by = d->deadline_us;
            ops->close(inst, session, quit_by);
            slots_release(j->slots, host->name);
            if (st != AIMX_OK) {
                sent->result_class = AIMX_CLASS_TEMPORARY;
                sent->scope = AIMX_SCOPE_ADDRESS;
                sent->kind = AIMX_FAIL_LOCAL;
                snprintf(sent->reply, sizeof sent->reply,
                         "the transport plugin failed (status %d)", (int)st);
            }
            size_t kept = 0;
            for (size_t k = 0; k < npending; k++) {
                aimx_delivery_rcpt *r = &d->rcpts[pending[k]];
                aimx_rcpt_result *rr = AIMX_RCPT_AT(sent, k);
                char why[600];
                if (st != AIMX_OK)
                    rr = NULL;
                snprintf(why, sizeof why, "%s%s%s", rr ? rr->enhanced : "",
                         rr && rr->enhanced[0] ? " " : "",
                         rr ? rr->reply : sent->reply);
                if (rr != NULL && rr->result_class == AIMX_CLASS_OK) {
                    add_attempt(r, host->name, &ip, rr->phase,
                                AIMX_ATTEMPT_DELIVERED, rr->code, why);
                    settle(r, AIMX_RCPT_DELIVERED, host->name, &ip, port, res,
                           rr);
                    continue;
                }
                /* A host that cannot do it (SMTPUTF8 not offered...) is
                 * not the last word: the next MX host may. */
                int host_cannot = sent->scope == AIMX_SCOPE_HOST;
                int perm = rr != NULL && !host_cannot &&
                           rr->result_class == AIMX_CLASS_PERMANENT;
                int maybe =
                    rr != NULL ? (rr->flags & AIMX_RESULT_MAYBE_DELIVERED) : 0;
                aimx_transport_result view = *sent;
                if (rr != NULL) {
                    view.result_class = rr->result_class;
                    view.code = rr->code;
                    if (sent->result_class == AIMX_CLASS_OK ||
                        sent->scope == AIMX_SCOPE_RECIPIENT)
                        view.kind = AIMX_FAIL_REPLY;
                }
                add_attempt(r, host->name, &ip, rr ? rr->phase : sent->phase,
                            attempt_result_of(&view), rr ? rr->code : 0, why);
                r->phase = rr ? rr->phase : sent->phase;
                if (perm) {
                    /* A 5xx is final: no backup MX after it. */
                    settle(r, AIMX_RCPT_BOUNCED, host->name, &ip, port, res,
                           rr);
                } else if (maybe) {
                    /* Lost after the final dot: retrying could deliver it
                     * twice.  Defer, and say so. */
                    settle(r, AIMX_RCPT_DEFERRED, host->name, &ip, port, res,
                           rr);
                    r->possible_duplicate = 1;
                } else {
                    if (rr != NULL)
                        settle(r, AIMX_RCPT_PENDING, host->name, &ip, port, res,
                               rr);
                    else
                        snprintf(r->reply, sizeof r->reply, "%.511s", why);
                    if (host_cannot && rr != NULL &&
                        rr->result_class == AIMX_CLASS_PERMANENT) {
                        snprintf(last_perm, sizeof last_perm, "%s", why);
                        snprintf(last_perm_enhanced, sizeof last_perm_enhanced,
                                 "%.15s", rr->enhanced);
                        last_perm_code = rr->code;
                    } else {
                        all_permanent = 0;
                    }
                    pending[kept++] = pending[k];
                }
            }
            npending = kept;
            last_phase = sent->phase;
            int same_host = st != AIMX_OK || sent->scope == AIMX_SCOPE_ADDRESS;
            free_result(sent);
            free_result(res);
            if (!same_host)
                break; /* a temporary reply: the next MX host */
        }
    }

    for (size_t k = 0; k < npending; k++) {
        aimx_delivery_rcpt *r = &d->rcpts[pending[k]];
        r->done_us = now_us();
        if (r->mx[0] == '\0')
            snprintf(r->mx, sizeof r->mx, "%s", last_mx);
        if (tried && all_permanent && last_perm[0] != '\0' && !stopped(d)) {
            r->status = AIMX_RCPT_BOUNCED;
            r->code = last_perm_code;
            snprintf(r->enhanced, sizeof r->enhanced, "%s", last_perm_enhanced);
            snprintf(r->reply, sizeof r->reply, "%.511s", last_perm);
            continue;
        }
        r->status = AIMX_RCPT_DEFERRED;
        if (r->phase == AIMX_PHASE_NONE)
            r->phase = last_phase;
        if (stopped(d)) {
            char why[600];
            snprintf(why, sizeof why, "%s before it was decided (in phase %s)",
                     d->stop != NULL && *d->stop ? "interrupted"
                                                 : "the deadline passed",
                     aimx__phase_word(r->phase));
            add_attempt(r, last_mx, NULL, r->phase, AIMX_ATTEMPT_TIMEOUT, 0,
                        why);
            if (r->reply[0] == '\0')
                snprintf(r->reply, sizeof r->reply, "%.511s", why);
        } else if (r->reply[0] == '\0') {
            snprintf(r->reply, sizeof r->reply,
                     "no MX host of %s accepted it; see the attempts",
                     rt->domain);
        }
    }
out:
    free(pending);
    free(addrs);
}

static void *
worker(void *arg)
{
    struct pool *p = arg;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        size_t i = p->next < p->count ? p->next++ : p->count;
        pthread_mutex_unlock(&p->lock);
        if (i >= p->count)
            return NULL;
        if (p->jobs[i].count > 0) /* not merged into another */
            deliver_domain(&p->jobs[i]);
    }
}

int
aimx__deliver(aimx_delivery *d)
{
    aimx_route *routes = NULL;
    struct job *jobs = NULL;
    size_t nd = 0;
    struct slots slots;
    struct pool pool;
    pthread_t *threads = NULL;
    size_t nthreads = 0;
    int rc = -1;

    d->start_us = now_us();
    memset(&slots, 0, sizeof slots);
    pthread_mutex_init(&slots.lock, NULL);
    pthread_cond_init(&slots.cond, NULL);
    slots.max = d->max_parallel > 0 ? d->max_parallel : 1;
    slots.per_dest_max =
        d->max_per_destination > 0 ? d->max_per_destination : 1;

    routes = calloc(d->rcpt_count ? d->rcpt_count : 1, sizeof *routes);
    jobs = calloc(d->rcpt_count ? d->rcpt_count : 1, sizeof *jobs);
    if (routes == NULL || jobs == NULL)
        goto out;
    /* Recipients grouped by domain. */
    for (size_t i = 0; i < d->rcpt_count; i++) {
        size_t k;
        for (k = 0; k < nd; k++)
            if (strcasecmp(routes[k].domain, d->rcpts[i].domain) == 0)
                break;
        if (k == nd) {
            snprintf(routes[nd].domain, sizeof routes[nd].domain, "%s",
                     d->rcpts[i].domain);
            jobs[nd].rcpt = calloc(d->rcpt_count, sizeof *jobs[nd].rcpt);
            if (jobs[nd].rcpt == NULL)
                goto out;
            nd++;
        }
        jobs[k].rcpt[jobs[k].count++] = i;
    }
    /* Every route at once; DNS is not bounded by max_parallel. */
    d->router.deadline_us = d->deadline_us;
    d->router.stop = d->stop;
    if (aimx__route_resolve(&d->router, routes, nd) != 0)
        goto out;
    for (size_t k = 0; k < nd; k++) {
        jobs[k].d = d;
        jobs[k].slots = &slots;
        jobs[k].route = &routes[k];
    }
    merge_shared_routes(jobs, nd);
    pool.jobs = jobs;
    pool.count = nd;
    pool.next = 0;
    pthread_mutex_init(&pool.lock, NULL);
    /* Enough workers that max_parallel sessions can be open at once, and
     * some to spare for domains waiting on a busy MX host. */
    size_t want = (size_t)slots.max * 2;
    if (want > nd)
        want = nd;
    threads = calloc(want ? want : 1, sizeof *threads);
    for (; threads != NULL && nthreads < want; nthreads++)
        if (pthread_create(&threads[nthreads], NULL, worker, &pool) != 0)
            break;
    if (nthreads == 0)
        worker(&pool);
    for (size_t t = 0; t < nthreads; t++)
        pthread_join(threads[t], NULL);
    free(threads);
    pthread_mutex_destroy(&pool.lock);
    rc = 0;
out:
    for (size_t i = 0; i < d->rcpt_count; i++) {
        if (d->rcpts[i].status == AIMX_RCPT_PENDING) {
            d->rcpts[i].status = AIMX_RCPT_DEFERRED;
            if (d->rcpts[i].reply[0] == '\0')
                snprintf(d->rcpts[i].reply, sizeof d->rcpts[i].reply,
                         "not delivered: an internal error stopped the send");
        }
    }
    if (routes != NULL)
        aimx__route_free(routes, nd);
    free(routes);
    if (jobs != NULL)
        for (size_t k = 0; k < nd; k++)
            free(jobs[k].rcpt);
    free(jobs);
    free(slots.dests);
    pthread_mutex_destroy(&slots.lock);
    pthread_cond_destroy(&slots.cond);
    return rc;
}

void
aimx__deliver_abort(aimx_delivery *d)
{
    if (d->transport != NULL && d->transport->plugin.transport.abort != NULL)
        d->transport->plugin.transport.abort(d->transport->instance);
}

void
aimx__delivery_free(aimx_delivery *d)
{
    for (size_t i = 0; i < d->rcpt_count; i++) {
        free(d->rcpts[i].attempts);
        d->rcpts[i].attempts = NULL;
        d->rcpts[i].attempt_count = d->rcpts[i].attempt_cap = 0;
    }
}
