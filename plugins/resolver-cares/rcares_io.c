/* SPDX-License-Identifier: MIT */
/*
 * The I/O thread of resolver-cares: every c-ares call happens here.
 *
 * Each configured server gets a channel of its own, with ARES_OPT_TRIES 1
 * and ARES_FLAG_NOCHECKRESP.  c-ares 1.18 would otherwise fold SERVFAIL,
 * REFUSED and an unreachable server into one ARES_ECONNREFUSED, and with the
 * flag it stops failing over by itself; so the plugin reads the RCODE from
 * the reply and moves to the next server itself.  A lookup is a series of
 * steps (the query name, then each CNAME target the server did not chase);
 * a step sends its query to one server at a time (an "attempt"), in order,
 * coming back to servers that timed out until each was asked `tries` times.
 *
 * Attempts are separate from lookups: a lookup that ends early (cancel,
 * deadline, destroy) leaves its attempt in flight, orphaned, and c-ares'
 * eventual callback only frees it.  Callbacks never act on lookups
 * directly: they queue the reply, and the loop handles it outside c-ares,
 * so no c-ares call is ever made from inside c-ares.
 */
#include "rcares_io.h"

#include "rcares_answer.h"
#include "rcares_outcome.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CLASS_IN      1
#define HDR_AD        0x20 /* header byte 3: Authentic Data (RFC 4035 3.2.3) */
#define NAME_MAX_TEXT 254  /* 253 characters and the final dot */

struct rcares_lookup {
    /* Under rc->lock. */
    struct rcares_lookup *reg_prev, *reg_next;
    struct rcares_lookup *in_next;
    int cancel_req;
    aimx_dns_sink *sink;

    /* The I/O thread's, once taken from the incoming queue. */
    struct rcares_lookup *act_prev, *act_next;
    int started;
    int cancel_seen;
    uint16_t type;
    uint64_t deadline_us;
    char *name;          /* as asked, with its final dot */
    char *qname;         /* reported form: no final dot */
    unsigned char *qbuf; /* this step's query, AD bit set */
    int qlen;
    struct rcares_attempt *attempt;          /* in flight, or NULL */
    size_t server;                           /* the server asked last */
    unsigned char state[RCARES_MAX_SERVERS]; /* enum rcares_verdict */
    unsigned char asked[RCARES_MAX_SERVERS];
    struct rcares_rec *hops; /* CNAMEs followed by earlier steps */
    size_t nhops;
    int answers; /* answers read (for the AD flag) */
    int ad_all;  /* and whether every one had AD set */
    int native;  /* the last c-ares status */
};

struct rcares_attempt {
    struct rcares *rc;
    struct rcares_lookup *lk; /* NULL once the lookup ended without it */
    size_t server;
    int status;
    unsigned char *abuf;
    int alen;
    struct rcares_attempt *next; /* rc->done_head list */
};

static void *io_main(void *arg);
static int io_init(struct rcares *rc);
static void io_shutdown(struct rcares *rc);
static int channel_open(struct rcares *rc, const struct rcares_server *srv,
                        ares_channel *ch);
static int system_servers(struct rcares *rc);
static int io_take(struct rcares *rc);
static void io_sweep(struct rcares *rc);
static void io_drain(struct rcares *rc);
static int io_poll_timeout(struct rcares *rc);
static void io_poll(struct rcares *rc);
static void lookup_start(struct rcares *rc, struct rcares_lookup *lk);
static void step_begin(struct rcares *rc, struct rcares_lookup *lk,
                       const char *absolute);
static void send_next(struct rcares *rc, struct rcares_lookup *lk);
static void on_reply(void *arg, int status, int timeouts, unsigned char *abuf,
                     int alen);
static void handle_reply(struct rcares *rc, struct rcares_attempt *a);
static int take_hops(struct rcares_lookup *lk, struct rcares_answer *ans);
static void finish(struct rcares *rc, struct rcares_lookup *lk, int verdict,
                   const struct rcares_answer *ans, const char *server,
                   const char *why);
static int report(struct rcares *rc, struct rcares_lookup *lk,
                  const struct rcares_rec *r);
static void describe(const struct rcares *rc, const struct rcares_lookup *lk,
                     int verdict, const char *why, char *buf, size_t len);
static void complete_now(struct rcares *rc, aimx_dns_sink *sink,
                         uint32_t outcome, const char *diag);
static void lookup_free(struct rcares_lookup *lk);
static void wake(struct rcares *rc);
static uint64_t now_us(const struct rcares *rc);

/* ares_library_init() and _cleanup() keep a process-wide count without a
 * lock; two instances' threads must not run them at once. */
static pthread_mutex_t library_lock = PTHREAD_MUTEX_INITIALIZER;

int
rcares_io_start(struct rcares *rc)
{
    sigset_t all, old;
    int err;

    rc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (rc->wake_fd < 0) {
        snprintf(rc->init_error, sizeof rc->init_error, "eventfd: %s",
                 strerror(errno));
        return -1;
    }
    /* The thread must never take the host's signals: it inherits the mask
     * in force when it is created. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&rc->thread, NULL, io_main, rc);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        snprintf(rc->init_error, sizeof rc->init_error,
                 "cannot start the I/O thread: %s", strerror(err));
        close(rc->wake_fd);
        rc->wake_fd = -1;
        return -1;
    }
    pthread_mutex_lock(&rc->lock);
    while (rc->state == 0)
        pthread_cond_wait(&rc->started, &rc->lock);
    err = rc->state < 0;
    pthread_mutex_unlock(&rc->lock);
    if (err) {
        pthread_join(rc->thread, NULL);
        close(rc->wake_fd);
        rc->wake_fd = -1;
        return -1;
    }
    return 0;
}

void
rcares_io_stop(struct rcares *rc)
{
    pthread_mutex_lock(&rc->lock);
    rc->stopping = 1;
    pthread_mutex_unlock(&rc->lock);
    wake(rc);
    pthread_join(rc->thread, NULL);
    close(rc->wake_fd);
    rc->wake_fd = -1;
}

aimx_status
rcares_io_lookup(struct rcares *rc, const aimx_dns_query *query,
                 aimx_dns_sink *sink)
{
    struct rcares_lookup *lk;
    size_t len;

    if (!query || !sink ||
        query->struct_size < offsetof(aimx_dns_query, name) + sizeof(char *) ||
        !query->name)
        return AIMX_ERR_INVALID;
    len = strlen(query->name);
    /* Relative names would go through a search list, which aimx never
     * uses: refuse them here, before any c-ares call or packet. */
    if (len == 0 || query->name[len - 1] != '.') {
        complete_now(rc, sink, AIMX_DNS_BADNAME,
                     "the name is not absolute (no final '.')");
        return AIMX_OK;
    }
    if (len > NAME_MAX_TEXT) {
        complete_now(rc, sink, AIMX_DNS_BADNAME,
                     "the name is longer than 253 characters");
        return AIMX_OK;
    }
    if (!(lk = calloc(1, sizeof *lk)))
        return AIMX_ERR_NOMEM;
    lk->sink = sink;
    lk->type = query->type;
    lk->name = strdup(query->name);
    lk->qname = rcares_name_report(query->name);
    if (!lk->name || !lk->qname) {
        lookup_free(lk);
        return AIMX_ERR_NOMEM;
    }
    /* The deadline counts from the call, not from when the thread gets to
     * it; without one, the worst case of asking every server `tries`
     * times. */
    if (query->struct_size >=
        offsetof(aimx_dns_query, deadline_us) + sizeof query->deadline_us)
        lk->deadline_us = query->deadline_us;
    if (!lk->deadline_us)
        lk->deadline_us = now_us(rc) + rc->budget_us;

    pthread_mutex_lock(&rc->lock);
    if (rc->stopping) {
        pthread_mutex_unlock(&rc->lock);
        lookup_free(lk);
        return AIMX_ERR_UNSUPPORTED;
    }
    lk->reg_next = rc->reg;
    if (rc->reg)
        rc->reg->reg_prev = lk;
    rc->reg = lk;
    if (rc->in_tail)
        rc->in_tail->in_next = lk;
    else
        rc->in_head = lk;
    rc->in_tail = lk;
    pthread_mutex_unlock(&rc->lock);
    wake(rc);
    return AIMX_OK;
}

void
rcares_io_cancel(struct rcares *rc, aimx_dns_sink *sink)
{
    struct rcares_lookup *lk;
    int found = 0;

    /* Only a flag: the I/O thread owns the lookup and completes it.  A sink
     * already completed is no longer registered, so this is a no-op. */
    pthread_mutex_lock(&rc->lock);
    for (lk = rc->reg; lk; lk = lk->reg_next)
        if (lk->sink == sink && !lk->cancel_req) {
            lk->cancel_req = 1;
            rc->cancels++;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&rc->lock);
    if (found)
        wake(rc);
}

static void *
io_main(void *arg)
{
    struct rcares *rc = arg;
    int ok = io_init(rc) == 0;

    pthread_mutex_lock(&rc->lock);
    rc->state = ok ? 1 : -1;
    pthread_cond_broadcast(&rc->started);
    pthread_mutex_unlock(&rc->lock);
    if (!ok)
        return NULL;
    while (io_take(rc)) {
        io_sweep(rc);
        io_drain(rc);
        io_poll(rc);
        io_drain(rc);
    }
    io_shutdown(rc);
    return NULL;
}

static int
io_init(struct rcares *rc)
{
    size_t i;
    int st;

    pthread_mutex_lock(&library_lock);
    st = ares_library_init(ARES_LIB_INIT_ALL);
    pthread_mutex_unlock(&library_lock);
    if (st != ARES_SUCCESS) {
        snprintf(rc->init_error, sizeof rc->init_error, "ares_library_init: %s",
                 ares_strerror(st));
        return -1;
    }
    if (rc->servers_from_system && system_servers(rc) != 0)
        goto fail;
    rc->budget_us = (uint64_t)rc->timeout_ms * 1000u * rc->tries * rc->nservers;
    rc->channels = calloc(rc->nservers, sizeof *rc->channels);
    rc->pfd = calloc(1 + rc->nservers * ARES_GETSOCK_MAXNUM, sizeof *rc->pfd);
    rc->pfd_chan =
        calloc(1 + rc->nservers * ARES_GETSOCK_MAXNUM, sizeof *rc->pfd_chan);
    if (!rc->channels || !rc->pfd || !rc->pfd_chan) {
        snprintf(rc->init_error, sizeof rc->init_error, "out of memory");
        goto fail;
    }
    for (i = 0; i < rc->nservers; i++)
        if (channel_open(rc, &rc->servers[i], &rc->channels[i]) != 0)
            goto fail;
    return 0;

fail:
    io_shutdown(rc);
    return -1;
}

/* Also the failure path of io_init(): copes with a half-built state. */
static void
io_shutdown(struct rcares *rc)
{
    struct rcares_lookup *lk;
    struct rcares_attempt *a;
    size_t i;

    /* destroy() may come with lookups in flight: complete each one exactly
     * once, as CANCELLED, so that no sink waits forever and none is touched
     * after destroy() returns. */
    pthread_mutex_lock(&rc->lock);
    while ((lk = rc->in_head)) {
        rc->in_head = lk->in_next;
        lk->act_prev = rc->act_tail;
        if (rc->act_tail)
            rc->act_tail->act_next = lk;
        else
            rc->act_head = lk;
        rc->act_tail = lk;
    }
    rc->in_tail = NULL;
    pthread_mutex_unlock(&rc->lock);
    while ((lk = rc->act_head))
        finish(rc, lk, RCARES_V_CANCELLED, NULL, NULL,
               "the resolver was shut down");

    /* Orphaned attempts come back through on_reply() (ARES_EDESTRUCTION). */
    for (i = 0; rc->channels && i < rc->nservers; i++)
        if (rc->channels[i])
            ares_destroy(rc->channels[i]);
    while ((a = rc->done_head)) {
        rc->done_head = a->next;
        free(a->abuf);
        free(a);
    }
    rc->done_tail = NULL;
    free(rc->channels);
    free(rc->pfd);
    free(rc->pfd_chan);
    rc->channels = NULL;
    rc->pfd = NULL;
    rc->pfd_chan = NULL;
    pthread_mutex_lock(&library_lock);
    ares_library_cleanup();
    pthread_mutex_unlock(&library_lock);
}

/*
 * One channel for one server.  The options keep c-ares away from every
 * local source of names: no search list (ARES_OPT_DOMAINS empty,
 * NOSEARCH), no HOSTALIASES (NOALIASES), no /etc/hosts (lookups "b", which
 * only getaddrinfo-style calls would use anyway), and no resolv.conf for a
 * configured server (/dev/null: its options must not change ours).
 */
static int
channel_open(struct rcares *rc, const struct rcares_server *srv,
             ares_channel *ch)
{
    static char dns_only[] = "b";
    static char no_file[] = "/dev/null";
    struct ares_options o;
    struct ares_addr_port_node node;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
               ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS;
    int st;

    memset(&o, 0, sizeof o);
    o.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    o.timeout = (int)rc->timeout_ms;
    /* The plugin retries itself, so that every attempt has the configured
     * timeout (c-ares doubles it on each round) and failover follows the
     * rules in rcares_outcome.c. */
    o.tries = 1;
    o.ndomains = 0;
    o.lookups = dns_only;
    if (srv) {
        o.resolvconf_path = no_file;
        mask |= ARES_OPT_RESOLVCONF;
    }
    st = ares_init_options(ch, &o, mask);
    if (st != ARES_SUCCESS) {
        *ch = NULL;
        snprintf(rc->init_error, sizeof rc->init_error, "ares_init_options: %s",
                 ares_strerror(st));
        return -1;
    }
    if (!srv)
        return 0;
    memset(&node, 0, sizeof node);
    node.family = srv->family;
    memcpy(&node.addr, srv->addr, srv->family == AF_INET ? 4 : 16);
    node.udp_port = srv->port;
    node.tcp_port = srv->port;
    st = ares_set_servers_ports(*ch, &node);
    if (st != ARES_SUCCESS) {
        snprintf(rc->init_error, sizeof rc->init_error,
                 "ares_set_servers_ports(%s): %s", srv->label,
                 ares_strerror(st));
        return -1;
    }
    return 0;
}

/* No `servers` setting: whatever c-ares reads from /etc/resolv.conf. */
static int
system_servers(struct rcares *rc)
{
    struct ares_addr_port_node *list = NULL, *n;
    ares_channel probe = NULL;
    int st;

    if (channel_open(rc, NULL, &probe) != 0)
        return -1;
    st = ares_get_servers_ports(probe, &list);
    ares_destroy(probe);
    if (st != ARES_SUCCESS) {
        snprintf(rc->init_error, sizeof rc->init_error,
                 "ares_get_servers_ports: %s", ares_strerror(st));
        return -1;
    }
    rc->nservers = 0;
    for (n = list; n && rc->nservers < RCARES_MAX_SERVERS; n = n->next) {
        struct rcares_server *srv = &rc->servers[rc->nservers];

        if (n->family != AF_INET && n->family != AF_INET6)
            continue;
        memset(srv, 0, sizeof *srv);
        srv->family = n->family;
        memcpy(srv->addr, &n->addr, n->family == AF_INET ? 4 : 16);
        srv->port = (uint16_t)(n->udp_port > 0 ? n->udp_port : 53);
        rcares_server_label(srv);
        rc->nservers++;
    }
    if (list)
        ares_free_data(list);
    if (rc->nservers == 0) {
        snprintf(rc->init_error, sizeof rc->init_error,
                 "no DNS server in the system's resolver configuration");
        return -1;
    }
    return 0;
}

/* Takes new lookups and cancel requests; 0 when destroy() asked to stop. */
static int
io_take(struct rcares *rc)
{
    struct rcares_lookup *lk;

    pthread_mutex_lock(&rc->lock);
    if (rc->stopping) {
        pthread_mutex_unlock(&rc->lock);
        return 0;
    }
    while ((lk = rc->in_head)) {
        rc->in_head = lk->in_next;
        lk->act_prev = rc->act_tail;
        if (rc->act_tail)
            rc->act_tail->act_next = lk;
        else
            rc->act_head = lk;
        rc->act_tail = lk;
    }
    rc->in_tail = NULL;
    if (rc->cancels) {
        rc->cancels = 0;
        for (lk = rc->act_head; lk; lk = lk->act_next)
            lk->cancel_seen = lk->cancel_req;
    }
    pthread_mutex_unlock(&rc->lock);
    return 1;
}

/* Cancels, new lookups and deadlines. */
static void
io_sweep(struct rcares *rc)
{
    struct rcares_lookup *lk, *next;
    uint64_t now = now_us(rc);

    for (lk = rc->act_head; lk; lk = next) {
        next = lk->act_next;
        if (lk->cancel_seen)
            finish(rc, lk, RCARES_V_CANCELLED, NULL, NULL, "cancelled");
        else if (!lk->started)
            lookup_start(rc, lk);
        else if (now >= lk->deadline_us) {
            /* The server being asked counts as silent. */
            if (lk->attempt)
                lk->state[lk->attempt->server] = RCARES_V_TIMEOUT;
            finish(rc, lk, RCARES_V_DEADLINE, NULL, NULL,
                   "the lookup's deadline passed");
        }
    }
}

/* Replies queued by on_reply(); handling one may queue another (a reply
 * can come back inside ares_send()). */
static void
io_drain(struct rcares *rc)
{
    struct rcares_attempt *a;

    while ((a = rc->done_head)) {
        rc->done_head = a->next;
        if (!rc->done_head)
            rc->done_tail = NULL;
        if (a->lk) {
            a->lk->attempt = NULL;
            handle_reply(rc, a);
        }
        free(a->abuf);
        free(a);
    }
}

/* Milliseconds until the next c-ares timeout or lookup deadline; -1 for
 * none. */
static int
io_poll_timeout(struct rcares *rc)
{
    struct rcares_lookup *lk;
    struct timeval tv, *tp;
    uint64_t now = now_us(rc), ms, best = UINT64_MAX;
    size_t i;

    for (i = 0; i < rc->nservers; i++) {
        tp = ares_timeout(rc->channels[i], NULL, &tv);
        if (tp) {
            ms = (uint64_t)tp->tv_sec * 1000u +
                 ((uint64_t)tp->tv_usec + 999u) / 1000u;
            if (ms < best)
                best = ms;
        }
    }
    for (lk = rc->act_head; lk; lk = lk->act_next) {
        ms = lk->deadline_us > now ? (lk->deadline_us - now + 999u) / 1000u : 0;
        if (ms < best)
            best = ms;
    }
    if (best == UINT64_MAX)
        return -1;
    return best > 60000 ? 60000 : (int)best;
}

static void
io_poll(struct rcares *rc)
{
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    size_t n = 1, i;
    unsigned bits;
    int k;
    uint64_t drain;

    rc->pfd[0].fd = rc->wake_fd;
    rc->pfd[0].events = POLLIN;
    rc->pfd[0].revents = 0;
    for (i = 0; i < rc->nservers; i++) {
        bits =
            (unsigned)ares_getsock(rc->channels[i], socks, ARES_GETSOCK_MAXNUM);
        for (k = 0; k < ARES_GETSOCK_MAXNUM; k++) {
            short ev = 0;

            /* Not ARES_GETSOCK_WRITABLE(): for the 16th socket it shifts a
             * signed 1 into the sign bit, which UBSan rightly rejects. */
            if ((bits >> k) & 1u)
                ev |= POLLIN;
            if ((bits >> (k + ARES_GETSOCK_MAXNUM)) & 1u)
                ev |= POLLOUT;
            if (!ev)
                continue;
            rc->pfd[n].fd = socks[k];
            rc->pfd[n].events = ev;
            rc->pfd[n].revents = 0;
            rc->pfd_chan[n] = i;
            n++;
        }
    }
    if (poll(rc->pfd, (nfds_t)n, io_poll_timeout(rc)) < 0 && errno != EINTR)
        rc->pfd[0].revents = 0; /* nothing is ready; timeouts still run */
    if (rc->pfd[0].revents & POLLIN)
        (void)!read(rc->wake_fd, &drain, sizeof drain);
    for (i = 1; i < n; i++) {
        short ev = rc->pfd[i].events, rev = rc->pfd[i].revents;
        ares_socket_t r = ARES_SOCKET_BAD, w = ARES_SOCKET_BAD;

        /* An error or hang-up is read (or written) so that c-ares sees
         * it: that is how ECONNREFUSED from an ICMP unreachable arrives. */
        if ((ev & POLLIN) && (rev & (POLLIN | POLLERR | POLLHUP)))
            r = rc->pfd[i].fd;
        if ((ev & POLLOUT) && (rev & (POLLOUT | POLLERR | POLLHUP)))
            w = rc->pfd[i].fd;
        if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD)
            ares_process_fd(rc->channels[rc->pfd_chan[i]], r, w);
    }
    /* Timeouts, for every channel whether its sockets woke us or not. */
    for (i = 0; i < rc->nservers; i++)
        ares_process_fd(rc->channels[i], ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

static void
lookup_start(struct rcares *rc, struct rcares_lookup *lk)
{
    lk->started = 1;
    lk->ad_all = 1;
    if (now_us(rc) >= lk->deadline_us) {
        finish(rc, lk, RCARES_V_DEADLINE, NULL, NULL,
               "the deadline had passed before the query was sent");
        return;
    }
    step_begin(rc, lk, lk->name);
}

/* A new query name: the lookup's own, or a CNAME target to re-query. */
static void
step_begin(struct rcares *rc, struct rcares_lookup *lk, const char *absolute)
{
    unsigned char *buf = NULL;
    int len = 0, st;

    if (lk->qbuf)
        ares_free_string(lk->qbuf);
    lk->qbuf = NULL;
    /* ares_create_query + ares_send rather than ares_query: only then can
     * the AD bit be set (RFC 6840 section 5.7: it asks a validating server
     * to say whether the answer is authenticated, without EDNS DO). */
    st = ares_create_query(absolute, CLASS_IN, lk->type, 0, 1, &buf, &len, 0);
    lk->native = st;
    if (st != ARES_SUCCESS) {
        finish(rc, lk,
               st == ARES_EBADNAME ? RCARES_V_BADNAME : RCARES_V_LOCALERR, NULL,
               NULL,
               st == ARES_EBADNAME ? "c-ares cannot encode the name"
                                   : ares_strerror(st));
        return;
    }
    buf[3] |= HDR_AD;
    lk->qbuf = buf;
    lk->qlen = len;
    memset(lk->state, 0, sizeof lk->state);
    memset(lk->asked, 0, sizeof lk->asked);
    lk->server = rc->nservers - 1; /* the next one is server 0 */
    send_next(rc, lk);
}

/* The next server in order that has not answered and has tries left. */
static void
send_next(struct rcares *rc, struct rcares_lookup *lk)
{
    struct rcares_attempt *a;
    size_t k, s = 0;
    int found = 0;

    for (k = 1; k <= rc->nservers && !found; k++) {
        s = (lk->server + k) % rc->nservers;
        found = (lk->state[s] == RCARES_V_NONE ||
                 lk->state[s] == RCARES_V_TIMEOUT) &&
                lk->asked[s] < rc->tries;
    }
    if (!found) {
        finish(rc, lk, RCARES_V_NONE, NULL, NULL, NULL);
        return;
    }
    if (!(a = calloc(1, sizeof *a))) {
        finish(rc, lk, RCARES_V_LOCALERR, NULL, NULL, "out of memory");
        return;
    }
    a->rc = rc;
    a->lk = lk;
    a->server = s;
    lk->attempt = a;
    lk->server = s;
    lk->asked[s]++;
    ares_send(rc->channels[s], lk->qbuf, lk->qlen, on_reply, a);
}

/* Called by c-ares, from ares_process_fd(), ares_send() or ares_destroy():
 * only queue the reply. */
static void
on_reply(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct rcares_attempt *a = arg;
    struct rcares *rc = a->rc;

    (void)timeouts;
    a->status = status;
    if (status == ARES_SUCCESS && abuf && alen > 0) {
        if ((a->abuf = malloc((size_t)alen))) {
            memcpy(a->abuf, abuf, (size_t)alen);
            a->alen = alen;
        } else {
            a->status = ARES_ENOMEM;
        }
    }
    a->next = NULL;
    if (rc->done_tail)
        rc->done_tail->next = a;
    else
        rc->done_head = a;
    rc->done_tail = a;
}

static void
handle_reply(struct rcares *rc, struct rcares_attempt *a)
{
    struct rcares_lookup *lk = a->lk;
    struct rcares_answer ans;
    const char *seen[1 + RCARES_MAX_CHAIN];
    const char *cur = lk->nhops ? lk->hops[lk->nhops - 1].target : lk->qname;
    int parse = RCARES_P_BAD, rcode = -1, v;
    size_t i, nseen = 0;

    memset(&ans, 0, sizeof ans);
    seen[nseen++] = lk->qname;
    for (i = 0; i < lk->nhops && nseen < 1 + RCARES_MAX_CHAIN; i++)
        seen[nseen++] = lk->hops[i].target;
    lk->native = a->status;
    if (a->status == ARES_SUCCESS) {
        if (a->alen >= 4)
            rcode = a->abuf[3] & 0x0f;
        parse =
            rcares_answer_parse(a->abuf, (size_t)a->alen, lk->type, cur, seen,
                                nseen, RCARES_MAX_CHAIN - lk->nhops, &ans);
    }
    v = rcares_classify(a->status, rcode, parse, ans.nrecs, ans.dangling);
    if (rcares_verdict_fails_over(v)) {
        rcares_answer_free(&ans);
        lk->state[a->server] = (unsigned char)v;
        send_next(rc, lk);
        return;
    }
    if (v == RCARES_V_OK || v == RCARES_V_NODATA || v == RCARES_V_NXDOMAIN ||
        v == RCARES_V_CHASE) {
        lk->answers++;
        lk->ad_all &= ans.ad;
    }
    if (v == RCARES_V_CHASE) {
        char target[NAME_MAX_TEXT + 2];

        if (take_hops(lk, &ans) != 0) {
            rcares_answer_free(&ans);
            finish(rc, lk, RCARES_V_LOCALERR, NULL, NULL, "out of memory");
            return;
        }
        cur = lk->hops[lk->nhops - 1].target;
        snprintf(target, sizeof target, "%s%s", cur,
                 strcmp(cur, ".") == 0 ? "" : ".");
        rcares_answer_free(&ans);
        step_begin(rc, lk, target);
        return;
    }
    finish(rc, lk, v, parse == RCARES_P_OK ? &ans : NULL,
           rc->servers[a->server].label,
           v == RCARES_V_CHAIN_BROKEN
               ? "CNAME loop, or a chain longer than 8 steps"
               : NULL);
    rcares_answer_free(&ans);
}

/* Moves the answer's CNAMEs to the lookup, after the earlier steps' ones. */
static int
take_hops(struct rcares_lookup *lk, struct rcares_answer *ans)
{
    struct rcares_rec *grown;

    grown = realloc(lk->hops, (lk->nhops + ans->nhops) * sizeof *grown);
    if (!grown)
        return -1;
    lk->hops = grown;
    memcpy(grown + lk->nhops, ans->hops, ans->nhops * sizeof *grown);
    lk->nhops += ans->nhops;
    free(ans->hops);
    ans->hops = NULL;
    ans->nhops = 0;
    return 0;
}

/*
 * Ends a lookup: the records (only for an answer that says something about
 * the name: OK, NODATA, NXDOMAIN), then the one completion.  The lookup
 * leaves the registry first, so that a cancel() racing with this finds
 * nothing, and no lock is held while the host's sink runs (it may call
 * lookup() or cancel() again).
 */
static void
finish(struct rcares *rc, struct rcares_lookup *lk, int verdict,
       const struct rcares_answer *ans, const char *server, const char *why)
{
    struct rcares_tally t;
    aimx_dns_completion c;
    char diag[512];
    uint32_t outcome;
    size_t i;
    int add_failed = 0;

    memset(&t, 0, sizeof t);
    t.final = verdict;
    for (i = 0; i < rc->nservers; i++) {
        t.servfail += lk->state[i] == RCARES_V_SERVFAIL;
        t.refused += lk->state[i] == RCARES_V_REFUSED;
        t.badreply += lk->state[i] == RCARES_V_BADREPLY;
        t.timeout += lk->state[i] == RCARES_V_TIMEOUT;
        t.unreachable += lk->state[i] == RCARES_V_UNREACHABLE;
    }
    outcome = rcares_outcome(&t);

    if (lk->attempt) {
        lk->attempt->lk = NULL;
        lk->attempt = NULL;
    }
    if (lk->act_prev)
        lk->act_prev->act_next = lk->act_next;
    else if (rc->act_head == lk)
        rc->act_head = lk->act_next;
    if (lk->act_next)
        lk->act_next->act_prev = lk->act_prev;
    else if (rc->act_tail == lk)
        rc->act_tail = lk->act_prev;
    pthread_mutex_lock(&rc->lock);
    if (lk->reg_prev)
        lk->reg_prev->reg_next = lk->reg_next;
    else
        rc->reg = lk->reg_next;
    if (lk->reg_next)
        lk->reg_next->reg_prev = lk->reg_prev;
    pthread_mutex_unlock(&rc->lock);

    if (outcome == AIMX_DNS_OK || outcome == AIMX_DNS_NODATA ||
        outcome == AIMX_DNS_NXDOMAIN) {
        for (i = 0; i < lk->nhops && !add_failed; i++)
            add_failed = report(rc, lk, &lk->hops[i]) != 0;
        for (i = 0; ans && i < ans->nhops && !add_failed; i++)
            add_failed = report(rc, lk, &ans->hops[i]) != 0;
        for (i = 0; ans && i < ans->nrecs && !add_failed; i++)
            add_failed = report(rc, lk, &ans->recs[i]) != 0;
    }
    if (add_failed) {
        outcome = AIMX_DNS_LOCALERR;
        why = "the host could not store a record";
    }

    describe(rc, lk, verdict, why, diag, sizeof diag);
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.outcome = outcome;
    if (lk->answers > 0 && !add_failed &&
        (outcome == AIMX_DNS_OK || outcome == AIMX_DNS_NODATA ||
         outcome == AIMX_DNS_NXDOMAIN))
        c.flags = AIMX_DNS_F_AD_KNOWN | (lk->ad_all ? AIMX_DNS_F_AD : 0u);
    c.native_code = lk->native;
    c.diag = diag[0] ? diag : NULL;
    c.server = server;
    rc->api->dns_complete(lk->sink, &c);
    lookup_free(lk);
}

static int
report(struct rcares *rc, struct rcares_lookup *lk, const struct rcares_rec *r)
{
    aimx_dns_record rec;

    memset(&rec, 0, sizeof rec);
    rec.struct_size = sizeof rec;
    rec.type = r->type;
    rec.preference = r->preference;
    rec.ttl = r->ttl;
    rec.owner = r->owner;
    rec.target = r->target;
    rec.address = r->address;
    rec.text = r->text;
    rec.text_len = r->text_len;
    rec.rdata = r->rdata;
    rec.rdata_len = r->rdata_len;
    return rc->api->dns_add(lk->sink, &rec) == AIMX_OK ? 0 : -1;
}

/* The completion's diag: why, and what each server did in the last step. */
static void
describe(const struct rcares *rc, const struct rcares_lookup *lk, int verdict,
         const char *why, char *buf, size_t len)
{
    size_t i, n = 0;
    int w;

    buf[0] = '\0';
    if (why)
        n = (size_t)snprintf(buf, len, "%s", why);
    if (verdict != RCARES_V_NONE && verdict != RCARES_V_DEADLINE)
        return;
    for (i = 0; i < rc->nservers && n < len; i++) {
        if (lk->state[i] == RCARES_V_NONE)
            continue;
        w = snprintf(buf + n, len - n, "%s%s %s", n ? "; " : "",
                     rc->servers[i].label,
                     rcares_verdict_name((enum rcares_verdict)lk->state[i]));
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* A completion before the lookup was queued: inside lookup() itself. */
static void
complete_now(struct rcares *rc, aimx_dns_sink *sink, uint32_t outcome,
             const char *diag)
{
    aimx_dns_completion c;

    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.outcome = outcome;
    c.diag = diag;
    rc->api->dns_complete(sink, &c);
}

static void
lookup_free(struct rcares_lookup *lk)
{
    size_t i;

    for (i = 0; i < lk->nhops; i++)
        rcares_rec_free(&lk->hops[i]);
    free(lk->hops);
    if (lk->qbuf)
        ares_free_string(lk->qbuf);
    free(lk->name);
    free(lk->qname);
    free(lk);
}

static void
wake(struct rcares *rc)
{
    uint64_t one = 1;

    /* EAGAIN means the counter is already non-zero: awake anyway. */
    (void)!write(rc->wake_fd, &one, sizeof one);
}

static uint64_t
now_us(const struct rcares *rc)
{
    return rc->api->monotonic_us(rc->host);
}
