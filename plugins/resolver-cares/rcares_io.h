/* SPDX-License-Identifier: MIT */
/*
 * The resolver-cares instance and its I/O thread.  c-ares 1.18 channels
 * are not thread-safe and have no event thread of their own, so one thread
 * per instance makes every c-ares call; lookup() and cancel() only queue
 * work for it under a mutex and wake it through an eventfd.
 */
#ifndef RCARES_IO_H
#define RCARES_IO_H

#include "rcares_server.h"

#include <aimx/plugin.h>

#include <ares.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* One c-ares channel, and so one pollable server set, per server. */
#define RCARES_MAX_SERVERS 16

struct rcares_lookup;
struct rcares_attempt;
struct pollfd;

struct rcares {
    /* Set by create(), read-only afterwards. */
    const aimx_host_api *api;
    aimx_host *host;
    struct rcares_server servers[RCARES_MAX_SERVERS];
    size_t nservers; /* 0 until the I/O thread read resolv.conf */
    int servers_from_system;
    unsigned timeout_ms; /* per query sent to one server */
    unsigned tries;      /* times each silent server is asked */
    uint64_t budget_us;  /* deadline of a lookup that gives none */

    /* Shared with lookup() and cancel(): under lock. */
    pthread_mutex_t lock;
    pthread_cond_t started; /* the I/O thread's start-up verdict */
    int state;              /* 0 starting, 1 running, -1 failed */
    char init_error[256];
    int stopping;
    unsigned cancels;          /* cancel() calls the I/O thread has not seen */
    struct rcares_lookup *reg; /* every lookup not completed yet */
    struct rcares_lookup *in_head; /* accepted, not yet started (FIFO) */
    struct rcares_lookup *in_tail;
    int wake_fd; /* eventfd: lookup(), cancel() and destroy() wake the thread */
    pthread_t thread;

    /* The I/O thread's alone. */
    ares_channel *channels; /* one per server */
    struct pollfd *pfd;
    size_t *pfd_chan; /* the channel of each pfd entry */
    struct rcares_lookup *act_head, *act_tail;
    struct rcares_attempt *done_head, *done_tail;
};

/* create(): starts the thread, which opens the channels; 0 when it runs,
 * -1 with rc->init_error set otherwise (nothing left running). */
int rcares_io_start(struct rcares *rc);

/* destroy(): every lookup still pending completes as CANCELLED, then the
 * thread ends and the channels close. */
void rcares_io_stop(struct rcares *rc);

/* The resolver operations. */
aimx_status rcares_io_lookup(struct rcares *rc, const aimx_dns_query *query,
                             aimx_dns_sink *sink);
void rcares_io_cancel(struct rcares *rc, aimx_dns_sink *sink);

#endif
