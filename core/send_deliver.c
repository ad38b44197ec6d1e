/* SPDX-License-Identifier: MIT */
#include "send_deliver.h"

#include "deliver.h"
#include "exitcodes.h"
#include "host.h"
#include "json.h"
#include "log.h"
#include "netaddr.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static void on_signal(int sig);
static void *watch_signals(void *arg);
static const char *family_word(const aimx_addr *a);
static void print_json(const aimx_send_job *job, const aimx_delivery *d,
                       int status);
static void print_human(const aimx_delivery *d);
static void log_syslog(const aimx_delivery *d);
static int overall(const aimx_delivery *d);

/* A signal stops the send gently: every recipient's state is still
 * printed.  The handler only sets the flag and wakes the watcher. */
static volatile sig_atomic_t interrupted;
static int wake_pipe[2] = {-1, -1};

static void
on_signal(int sig)
{
    int saved = errno;
    char c = 's';

    (void)sig;
    interrupted = 1;
    if (write(wake_pipe[1], &c, 1) < 0) {
        /* nothing more a handler can do */
    }
    errno = saved;
}

static void *
watch_signals(void *arg)
{
    aimx_delivery *d = arg;
    char c;

    while (read(wake_pipe[0], &c, 1) == 1) {
        if (c == 'q')
            break;
        aimx__deliver_abort(d);
    }
    return NULL;
}

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *
family_word(const aimx_addr *a)
{
    return a->family == AIMX_AF_INET6  ? "ipv6"
           : a->family == AIMX_AF_INET ? "ipv4"
                                       : NULL;
}

/* The worst recipient's: bounced > deferred > delivered. */
static int
overall(const aimx_delivery *d)
{
    int worst = AIMX_RCPT_DELIVERED;

    for (size_t i = 0; i < d->rcpt_count; i++) {
        int s = d->rcpts[i].status;
        if (s == AIMX_RCPT_BOUNCED ||
            (s == AIMX_RCPT_DEFERRED && worst == AIMX_RCPT_DELIVERED))
            worst = s;
    }
    return worst;
}

static void
print_json(const aimx_send_job *job, const aimx_delivery *d, int status)
{
    aimx_json j;
    char ip[AIMX_ADDR_TEXT_MAX];

    aimx__json_init(&j, stdout);
    aimx__json_object_begin(&j, NULL);
    aimx__json_int(&j, "schema", AIMX_JSON_SCHEMA);
    aimx__json_string(&j, "status", aimx__rcpt_status_word(status));
    aimx__json_string(&j, "message_id", job->message_id);
    aimx__json_array_begin(&j, "recipients");
    for (size_t i = 0; i < d->rcpt_count; i++) {
        const aimx_delivery_rcpt *r = &d->rcpts[i];
        aimx__json_object_begin(&j, NULL);
        aimx__json_string(&j, "address", r->address);
        aimx__json_string(&j, "status", aimx__rcpt_status_word(r->status));
        aimx__json_string(&j, "mx", r->mx[0] ? r->mx : NULL);
        aimx__json_string(&j, "ip",
                          r->ip.family ? aimx__addr_text(&r->ip, ip, sizeof ip)
                                       : NULL);
        aimx__json_string(&j, "family", family_word(&r->ip));
        if (r->tls) {
            aimx__json_object_begin(&j, "tls");
            aimx__json_string(&j, "version", r->tls_version);
            aimx__json_string(&j, "cipher", r->tls_cipher);
            aimx__json_bool(&j, "verified", r->tls_verified);
            aimx__json_object_end(&j);
        } else {
            aimx__json_null(&j, "tls");
        }
        aimx__json_int(&j, "code", r->code);
        aimx__json_string(&j, "enhanced", r->enhanced[0] ? r->enhanced : NULL);
        aimx__json_string(&j, "reply", r->reply);
        aimx__json_string(&j, "phase",
                          r->status == AIMX_RCPT_DEFERRED
                              ? aimx__phase_word(r->phase)
                              : NULL);
        aimx__json_bool(&j, "possible_duplicate", r->possible_duplicate);
        aimx__json_array_begin(&j, "attempts");
        for (size_t k = 0; k < r->attempt_count; k++) {
            const aimx_delivery_attempt *a = &r->attempts[k];
            aimx__json_object_begin(&j, NULL);
            aimx__json_string(&j, "mx", a->mx[0] ? a->mx : NULL);
            aimx__json_string(
                &j, "ip",
                a->ip.family ? aimx__addr_text(&a->ip, ip, sizeof ip) : NULL);
            aimx__json_string(&j, "family", family_word(&a->ip));
            aimx__json_string(&j, "phase", aimx__phase_word(a->phase));
            aimx__json_string(&j, "result",
                              aimx__attempt_result_word(a->result));
            aimx__json_int(&j, "code", a->code);
            aimx__json_string(&j, "reason", a->reason);
            aimx__json_object_end(&j);
        }
        aimx__json_array_end(&j);
        aimx__json_object_end(&j);
    }
    aimx__json_array_end(&j);
    aimx__json_object_end(&j);
    aimx__json_finish(&j);
}

static void
print_human(const aimx_delivery *d)
{
    char ip[AIMX_ADDR_TEXT_MAX];

    for (size_t i = 0; i < d->rcpt_count; i++) {
        const aimx_delivery_rcpt *r = &d->rcpts[i];
        if (r->status == AIMX_RCPT_DELIVERED) {
            printf("%s: delivered to %s [%s] over %s%s%s: %d %s%s%s\n",
                   r->address, r->mx, aimx__addr_text(&r->ip, ip, sizeof ip),
                   r->ip.family == AIMX_AF_INET6 ? "IPv6" : "IPv4",
                   r->tls ? ", " : "", r->tls ? r->tls_version : "", r->code,
                   r->enhanced, r->enhanced[0] ? " " : "", r->reply);
            continue;
        }
        printf("%s: %s%s: ", r->address, aimx__rcpt_status_word(r->status),
               r->possible_duplicate ? " (it may have been delivered: the "
                                       "connection was lost after the whole "
                                       "message was sent)"
                                     : "");
        if (r->code != 0)
            printf("%d ", r->code);
        printf("%s%s%s\n", r->enhanced, r->enhanced[0] ? " " : "", r->reply);
        for (size_t k = 0; k < r->attempt_count; k++) {
            const aimx_delivery_attempt *a = &r->attempts[k];
            printf("    %s", a->mx[0] ? a->mx : "(domain)");
            if (a->ip.family)
                printf(" [%s]", aimx__addr_text(&a->ip, ip, sizeof ip));
            printf(" %s", aimx__attempt_result_word(a->result));
            if (a->phase != AIMX_PHASE_NONE)
                printf(" at %s", aimx__phase_word(a->phase));
            printf(": %s\n", a->reason);
        }
    }
}

/* Postfix-style, one line per recipient, for mail log readers. */
static void
log_syslog(const aimx_delivery *d)
{
    char ip[AIMX_ADDR_TEXT_MAX];
    uint64_t now = now_us();

    for (size_t i = 0; i < d->rcpt_count; i++) {
        const aimx_delivery_rcpt *r = &d->rcpts[i];
        uint64_t done = r->done_us ? r->done_us : now;
        const char *status = r->status == AIMX_RCPT_DELIVERED ? "sent"
                             : r->status == AIMX_RCPT_BOUNCED ? "bounced"
                                                              : "deferred";
        const char *dsn = r->enhanced[0]                     ? r->enhanced
                          : r->status == AIMX_RCPT_DELIVERED ? "2.0.0"
                          : r->status == AIMX_RCPT_BOUNCED   ? "5.0.0"
                                                             : "4.0.0";
        char relay[AIMX_ADDR_TEXT_MAX + 300];
        if (r->ip.family != 0)
            snprintf(relay, sizeof relay, "%s[%s]:%u", r->mx,
                     aimx__addr_text(&r->ip, ip, sizeof ip), (unsigned)r->port);
        else
            snprintf(relay, sizeof relay, "%s", r->mx[0] ? r->mx : "none");
        aimx__syslog_only(
            r->status == AIMX_RCPT_DELIVERED ? LOG_INFO : LOG_NOTICE,
            "to=<%s>, relay=%s, delay=%.2f, dsn=%s, status=%s (%s)%s",
            r->address, relay, (double)(done - d->start_us) / 1e6, dsn, status,
            r->reply, r->possible_duplicate ? ", possible duplicate" : "");
    }
}

int
aimx__send_deliver(const aimx_send_job *job)
{
    const aimx_cli *cli = job->cli;
    const aimx_config *c = job->config;
    aimx_instance resolver, policy, transport;
    aimx_diag diag = {0};
    aimx_delivery d;
    struct sigaction sa, old_int, old_term;
    pthread_t watcher;
    int watching = 0, rc, status;

    memset(&resolver, 0, sizeof resolver);
    memset(&policy, 0, sizeof policy);
    memset(&transport, 0, sizeof transport);
    memset(&d, 0, sizeof d);
    d.rcpts = calloc(job->rcpt_count ? job->rcpt_count : 1, sizeof *d.rcpts);
    if (d.rcpts == NULL)
        return aimx__fail(cli, AIMX_EXIT_SOFTWARE, "out of memory");

    /* Every kind is needed: a missing transport is a configuration error
     * before anything is sent. */
    aimx__instance_create(&resolver, c, AIMX_SLOT_RESOLVER, &diag);
    aimx__instance_create(&policy, c, AIMX_SLOT_POLICY, &diag);
    aimx__instance_create(&transport, c, AIMX_SLOT_TRANSPORT, &diag);
    if (diag.count > 0) {
        rc = aimx__fail_diag(cli, AIMX_EXIT_CONFIG, &diag);
        goto out;
    }

    d.router.resolver = &resolver;
    d.router.policy = &policy;
    d.router.allow_private_targets = c->allow_private_targets;
    d.router.max_addresses_per_host = c->max_addresses_per_host;
    d.router.max_mx_hosts = c->max_mx_hosts;
    d.transport = &transport;
    d.spool_fd = job->spool_fd;
    d.size = job->size;
    d.env_flags = job->env_flags;
    d.sender = job->sender;
    d.rcpt_count = job->rcpt_count;
    d.max_parallel = c->max_parallel;
    d.max_per_destination = c->max_per_destination;
    d.deadline_us = job->deadline_us;
    d.stop = &interrupted;
    for (size_t i = 0; i < job->rcpt_count; i++) {
        const char *at = strrchr(job->rcpts[i], '@');
        d.rcpts[i].address = job->rcpts[i];
        snprintf(d.rcpts[i].domain, sizeof d.rcpts[i].domain, "%s",
                 at ? at + 1 : "");
    }

    interrupted = 0;
    if (pipe(wake_pipe) == 0) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        watching = pthread_create(&watcher, NULL, watch_signals, &d) == 0;
    }

    if (aimx__deliver(&d) != 0)
        aimx__err("an internal error stopped the send; the recipients not "
                  "delivered are reported deferred");

    if (wake_pipe[0] >= 0) {
        char q = 'q';
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        if (watching) {
            if (write(wake_pipe[1], &q, 1) == 1)
                pthread_join(watcher, NULL);
            else
                pthread_detach(watcher);
        }
        close(wake_pipe[0]);
        close(wake_pipe[1]);
        wake_pipe[0] = wake_pipe[1] = -1;
    }

    status = overall(&d);
    if (interrupted)
        aimx__warn("interrupted: recipients not yet decided are deferred");
    if (cli->json)
        print_json(job, &d, status);
    else
        print_human(&d);
    log_syslog(&d);
    rc = status == AIMX_RCPT_DELIVERED ? AIMX_EXIT_OK
         : status == AIMX_RCPT_BOUNCED ? AIMX_EXIT_UNAVAILABLE
                                       : AIMX_EXIT_TEMPFAIL;
    /* A stopped send is unfinished business: try again later. */
    if (interrupted && rc != AIMX_EXIT_OK)
        rc = AIMX_EXIT_TEMPFAIL;
out:
    aimx__delivery_free(&d);
    free(d.rcpts);
    aimx__instance_destroy(&transport);
    aimx__instance_destroy(&policy);
    aimx__instance_destroy(&resolver);
    aimx__diag_free(&diag);
    return rc;
}
