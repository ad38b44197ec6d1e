/* SPDX-License-Identifier: MIT */
/*
 * The connect race; see smtp_race.h.  One poll() waits on every pending
 * socket and the abort descriptor, until the earliest of: the next
 * attempt's start, a pending attempt's connect timeout, the call's
 * deadline.
 */
#include "smtp_race.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum state { NOT_STARTED = 0, PENDING, DONE };

struct slot {
    int fd;
    int state;         /* enum state */
    uint64_t deadline; /* of its connect timeout */
};

static int start(const struct smtp_race *r, size_t i, struct slot *sl,
                 struct smtp_race_attempt *at, uint64_t now);
static void finish(struct slot *sl, struct smtp_race_attempt *at, int err,
                   uint32_t outcome, uint64_t now);
static uint32_t connect_outcome(int err);
static int is_aborted(const struct smtp_conn *c);

int
smtp_race_run(struct smtp_conn *c, const struct smtp_race *r,
              struct smtp_race_attempt *att, size_t *winner, int *err)
{
    struct slot *sl;
    struct pollfd *pfd;
    size_t *map, i, next = 0, pending = 0, n;
    uint64_t now, next_at = 0, wake, left;
    int end = -1, ms, k, e;

    *err = 0;
    *winner = 0;
    for (i = 0; i < r->count; i++) {
        memset(&att[i], 0, sizeof att[i]);
        att[i].a.struct_size = (uint32_t)sizeof att[i].a;
        att[i].a.outcome = AIMX_CONNECT_NOT_STARTED;
        att[i].a.remote = r->addrs[i];
        att[i].a.remote_port = r->port;
    }
    sl = calloc(r->count ? r->count : 1, sizeof *sl);
    pfd = calloc(r->count + 1, sizeof *pfd);
    map = calloc(r->count ? r->count : 1, sizeof *map);
    if (!sl || !pfd || !map) {
        free(sl);
        free(pfd);
        free(map);
        *err = ENOMEM;
        return SMTP_RACE_ERROR;
    }
    for (i = 0; i < r->count; i++)
        sl[i].fd = -1;
    for (;;) {
        now = c->now_us(c->host);
        if (is_aborted(c)) {
            end = SMTP_RACE_ABORTED;
            break;
        }
        if (r->deadline_us && now >= r->deadline_us) {
            end = SMTP_RACE_DEADLINE;
            break;
        }
        for (i = 0; i < next; i++) {
            if (sl[i].state == PENDING && now >= sl[i].deadline) {
                finish(&sl[i], &att[i], 0, AIMX_CONNECT_TIMEOUT, now);
                pending--;
                next_at = now; /* a failure starts the next one now */
            }
        }
        if (next < r->count && (pending == 0 || now >= next_at)) {
            k = start(r, next, &sl[next], &att[next], now);
            if (k > 0) { /* connected at once */
                *winner = next;
                next++;
                end = SMTP_RACE_WON;
                break;
            }
            if (k == 0) {
                pending++;
                next_at = now + r->delay_us;
            } else {
                next_at = now;
            }
            next++;
            continue;
        }
        if (pending == 0) {
            end = SMTP_RACE_FAILED;
            break;
        }
        /* Sleep until something is due. */
        wake = UINT64_MAX;
        if (next < r->count)
            wake = next_at;
        if (r->deadline_us && r->deadline_us < wake)
            wake = r->deadline_us;
        for (i = 0, n = 0; i < next; i++) {
            if (sl[i].state != PENDING)
                continue;
            if (sl[i].deadline < wake)
                wake = sl[i].deadline;
            pfd[n].fd = sl[i].fd;
            pfd[n].events = POLLOUT;
            pfd[n].revents = 0;
            map[n++] = i;
        }
        left = wake > now ? (wake - now + 999) / 1000 : 0; /* never early */
        ms = left > INT_MAX ? INT_MAX : (int)left;
        if (c->abort_fd >= 0) {
            pfd[n].fd = c->abort_fd;
            pfd[n].events = POLLIN;
            pfd[n].revents = 0;
        }
        k = poll(pfd, n + (c->abort_fd >= 0), ms);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            *err = errno;
            end = SMTP_RACE_ERROR;
            break;
        }
        if (c->abort_fd >= 0 && pfd[n].revents) {
            end = SMTP_RACE_ABORTED;
            break;
        }
        now = c->now_us(c->host);
        for (k = 0; (size_t)k < n && end < 0; k++) {
            if (!pfd[k].revents)
                continue;
            i = map[k];
            e = smtp_sock_error(sl[i].fd);
            if (e == 0 && !(pfd[k].revents & POLLOUT))
                e = ECONNRESET; /* an error without its errno */
            if (e == 0) {
                /* In address order: of two connected at once, the
                 * preferred one wins. */
                *winner = i;
                end = SMTP_RACE_WON;
                break;
            }
            finish(&sl[i], &att[i], e, connect_outcome(e), now);
            pending--;
            next_at = now;
        }
        if (end >= 0)
            break;
    }
    now = c->now_us(c->host);
    for (i = 0; i < r->count; i++) {
        if (end == SMTP_RACE_WON && i == *winner) {
            att[i].a.outcome = AIMX_CONNECT_OK;
            att[i].a.end_us = now;
            smtp_sock_local(sl[i].fd, &att[i].a.local, &att[i].a.local_port);
            smtp_conn_adopt(c, sl[i].fd, &r->addrs[i], r->port);
            sl[i].fd = -1;
        } else if (sl[i].state == PENDING) {
            /* The header's words: ABORTED is "abort() or the call's
             * deadline", ABANDONED "another attempt won the race". */
            finish(&sl[i], &att[i], 0,
                   end == SMTP_RACE_WON     ? AIMX_CONNECT_ABANDONED
                   : end == SMTP_RACE_ERROR ? AIMX_CONNECT_ERROR
                                            : AIMX_CONNECT_ABORTED,
                   now);
            if (end == SMTP_RACE_ERROR)
                att[i].a.sys_errno = *err;
        }
    }
    free(sl);
    free(pfd);
    free(map);
    return end;
}

/* Starts attempt i: 1 connected already, 0 pending, -1 failed (recorded). */
static int
start(const struct smtp_race *r, size_t i, struct slot *sl,
      struct smtp_race_attempt *at, uint64_t now)
{
    const aimx_addr *src =
        r->addrs[i].family == AIMX_AF_INET6 ? r->bind6 : r->bind4;
    int done = 0, err = 0, bind_failed = 0;

    at->a.start_us = now;
    sl->fd =
        smtp_sock_start(&r->addrs[i], r->port, src, &done, &err, &bind_failed);
    if (sl->fd < 0) {
        at->bind_failed = bind_failed;
        /* A source address that went away is our problem, not the
         * server's. */
        finish(sl, at, err,
               bind_failed ? AIMX_CONNECT_ERROR : connect_outcome(err), now);
        return -1;
    }
    sl->state = PENDING;
    sl->deadline = now + r->timeout_us;
    return done ? 1 : 0;
}

/* Ends an attempt that did not win: its local address, then the socket. */
static void
finish(struct slot *sl, struct smtp_race_attempt *at, int err, uint32_t outcome,
       uint64_t now)
{
    at->a.outcome = outcome;
    at->a.sys_errno = err;
    at->a.end_us = now;
    if (sl->fd >= 0) {
        /* A failed attempt may have been bound too: report where from. */
        smtp_sock_local(sl->fd, &at->a.local, &at->a.local_port);
        close(sl->fd);
    }
    sl->fd = -1;
    sl->state = DONE;
}

static uint32_t
connect_outcome(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return AIMX_CONNECT_REFUSED;
    case ETIMEDOUT:
        return AIMX_CONNECT_TIMEOUT;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
    case EPERM:
    case EACCES:
        /* EPERM/EACCES: a local firewall rejected the SYN. */
        return AIMX_CONNECT_UNREACHABLE;
    default:
        return AIMX_CONNECT_ERROR;
    }
}

static int
is_aborted(const struct smtp_conn *c)
{
    return c->aborted && atomic_load(c->aborted);
}
