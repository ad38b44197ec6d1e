/* SPDX-License-Identifier: MIT */
/*
 * The connection: every wait is a poll() on the socket and the instance's
 * abort descriptor, with the time left until an absolute deadline, so that
 * neither a silent server nor a slow one can hold a worker thread past its
 * deadline, and abort() from another thread ends the wait at once.
 */
#include "smtp_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static long plain_read(void *ctx, int fd, void *buf, size_t len, int *err);
static long plain_write(void *ctx, int fd, const void *buf, size_t len,
                        int *err);
static int to_sockaddr(const aimx_addr *addr, uint16_t port,
                       struct sockaddr_storage *ss, socklen_t *len);
static void from_sockaddr(const struct sockaddr_storage *ss, aimx_addr *addr,
                          uint16_t *port);
static int is_aborted(const struct smtp_conn *c);
static void drain_while_writing(struct smtp_conn *c);
static void compact(struct smtp_conn *c);

const struct smtp_layer smtp_layer_plain = {
    .name = "tcp",        /* for logs */
    .read = plain_read,   /* recv() */
    .write = plain_write, /* send(MSG_NOSIGNAL) */
    .close = NULL,        /* no state of its own */
    .duplex = 1,          /* a socket reads and writes independently */
};

void
smtp_conn_init(struct smtp_conn *c, int abort_fd, const atomic_int *aborted,
               uint64_t (*now_us)(aimx_host *), aimx_host *host)
{
    memset(c, 0, offsetof(struct smtp_conn, rbuf));
    c->fd = -1;
    c->abort_fd = abort_fd;
    c->aborted = aborted;
    c->layer = &smtp_layer_plain;
    c->now_us = now_us;
    c->host = host;
}

int
smtp_sock_start(const aimx_addr *addr, uint16_t port, const aimx_addr *source,
                int *done, int *err, int *bind_failed)
{
    struct sockaddr_storage ss, src;
    socklen_t len, slen;
    int fd, one = 1;

    *done = 0;
    *err = 0;
    *bind_failed = 0;
    if (!to_sockaddr(addr, port, &ss, &len)) {
        *err = EAFNOSUPPORT;
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                IPPROTO_TCP);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    /* Commands and data blocks go out whole, one write each: nothing is
     * gained by Nagle, and the final dot must not wait for the ACK of the
     * previous segment (a delayed ACK costs ~40 ms on Linux). */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (source && source->family == addr->family &&
        to_sockaddr(source, 0, &src, &slen)) {
        /* The address SPF and PTR name.  The port is left to connect():
         * bind() alone would reserve one port per connection across
         * every destination and run out under load. */
#ifdef IP_BIND_ADDRESS_NO_PORT
        (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                         sizeof one);
#endif
        if (bind(fd, (struct sockaddr *)&src, slen) != 0) {
            *err = errno;
            *bind_failed = 1;
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
        *done = 1;
    } else if (errno != EINPROGRESS && errno != EINTR) {
        /* EINTR: the connect goes on in the background, like
         * EINPROGRESS (POSIX). */
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

int
smtp_sock_error(int fd)
{
    socklen_t len;
    int soerr = 0;

    len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        return errno;
    return soerr;
}

void
smtp_sock_local(int fd, aimx_addr *addr, uint16_t *port)
{
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;

    memset(addr, 0, sizeof *addr);
    *port = 0;
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
        from_sockaddr(&local, addr, port);
    if (*port == 0) /* never bound: "family 0" says so */
        memset(addr, 0, sizeof *addr);
}

void
smtp_conn_adopt(struct smtp_conn *c, int fd, const aimx_addr *remote,
                uint16_t port)
{
    smtp_conn_close(c);
    c->fd = fd;
    c->eof = 0;
    c->rpos = c->rlen = 0;
    c->remote = *remote;
    c->remote_port = port;
    smtp_sock_local(fd, &c->local, &c->local_port);
}

int
smtp_conn_wait(struct smtp_conn *c, short events, uint64_t deadline_us,
               short *revents)
{
    struct pollfd pfd[2];
    nfds_t n;
    uint64_t now, left;
    int ms, r;

    for (;;) {
        if (is_aborted(c))
            return SMTP_IO_ABORTED;
        ms = -1;
        if (deadline_us) {
            now = c->now_us(c->host);
            if (now >= deadline_us)
                return SMTP_IO_TIMEOUT;
            left = (deadline_us - now + 999) / 1000; /* never wake early */
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        pfd[0].fd = c->fd;
        pfd[0].events = events;
        pfd[0].revents = 0;
        n = 1;
        if (c->abort_fd >= 0) {
            pfd[1].fd = c->abort_fd;
            pfd[1].events = POLLIN;
            pfd[1].revents = 0;
            n = 2;
        }
        r = poll(pfd, n, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            c->sys_errno = errno;
            return SMTP_IO_ERROR;
        }
        if (n == 2 && pfd[1].revents)
            return SMTP_IO_ABORTED;
        if (pfd[0].revents) {
            /* POLLERR and POLLHUP too: the next read or write says what. */
            if (revents)
                *revents = pfd[0].revents;
            return SMTP_IO_OK;
        }
    }
}

int
smtp_conn_fill(struct smtp_conn *c, uint64_t deadline_us)
{
    long n;
    int err = 0, st;

    if (c->fd < 0) {
        c->sys_errno = ENOTCONN;
        return SMTP_IO_ERROR;
    }
    compact(c);
    if (c->rlen == sizeof c->rbuf) {
        /* Callers parse everything before asking for more. */
        c->sys_errno = ENOBUFS;
        return SMTP_IO_ERROR;
    }
    for (;;) {
        if (is_aborted(c))
            return SMTP_IO_ABORTED;
        if (c->eof)
            return SMTP_IO_EOF;
        n = c->layer->read(c->layer_ctx, c->fd, c->rbuf + c->rlen,
                           sizeof c->rbuf - c->rlen, &err);
        if (n > 0) {
            c->rlen += (size_t)n;
            return SMTP_IO_OK;
        }
        if (n == 0) {
            c->eof = 1;
            return SMTP_IO_EOF;
        }
        if (n == SMTP_LAYER_WANT_READ)
            st = smtp_conn_wait(c, POLLIN, deadline_us, NULL);
        else if (n == SMTP_LAYER_WANT_WRITE)
            st = smtp_conn_wait(c, POLLOUT, deadline_us, NULL);
        else {
            c->sys_errno = err;
            return SMTP_IO_ERROR;
        }
        if (st != SMTP_IO_OK)
            return st;
    }
}

uint8_t *
smtp_conn_reserve(struct smtp_conn *c, size_t n)
{
    size_t cap;
    uint8_t *p;

    if (c->wcap - c->wlen >= n)
        return c->wbuf + c->wlen;
    if (n > SIZE_MAX / 2 - c->wlen)
        return NULL;
    cap = c->wcap ? c->wcap : 512;
    while (cap - c->wlen < n)
        cap *= 2;
    p = realloc(c->wbuf, cap);
    if (!p)
        return NULL;
    c->wbuf = p;
    c->wcap = cap;
    return c->wbuf + c->wlen;
}

void
smtp_conn_commit(struct smtp_conn *c, size_t n)
{
    c->wlen += n;
}

int
smtp_conn_append(struct smtp_conn *c, const void *data, size_t n)
{
    uint8_t *p = smtp_conn_reserve(c, n);

    if (!p)
        return SMTP_IO_NOMEM;
    memcpy(p, data, n);
    c->wlen += n;
    return SMTP_IO_OK;
}

int
smtp_conn_flush(struct smtp_conn *c, uint64_t deadline_us)
{
    size_t off = 0;
    long n;
    short events, rev;
    int err = 0, st = SMTP_IO_OK, reading;

    if (c->fd < 0) {
        c->wlen = 0;
        c->sys_errno = ENOTCONN;
        return SMTP_IO_ERROR;
    }
    while (off < c->wlen) {
        if (is_aborted(c)) {
            st = SMTP_IO_ABORTED;
            break;
        }
        n = c->layer->write(c->layer_ctx, c->fd, c->wbuf + off, c->wlen - off,
                            &err);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n != SMTP_LAYER_WANT_WRITE && n != SMTP_LAYER_WANT_READ) {
            c->sys_errno = err;
            st = SMTP_IO_ERROR;
            break;
        }
        /* RFC 2920 section 3.1: a client must not block on a write while
         * the server blocks writing replies it does not read.  Read them
         * into rbuf while waiting, as long as there is room. */
        reading = c->layer->duplex && !c->eof && c->rlen < sizeof c->rbuf;
        events = n == SMTP_LAYER_WANT_WRITE ? POLLOUT : POLLIN;
        if (reading)
            events |= POLLIN;
        rev = 0;
        st = smtp_conn_wait(c, events, deadline_us, &rev);
        if (st != SMTP_IO_OK)
            break;
        if (reading && (rev & POLLIN))
            drain_while_writing(c);
    }
    c->wlen = 0;
    return st;
}

size_t
smtp_conn_pending(const struct smtp_conn *c)
{
    return c->rlen - c->rpos;
}

void
smtp_conn_set_layer(struct smtp_conn *c, const struct smtp_layer *layer,
                    void *ctx)
{
    c->layer = layer;
    c->layer_ctx = ctx;
}

void
smtp_conn_close(struct smtp_conn *c)
{
    if (c->layer && c->layer->close && c->layer_ctx)
        c->layer->close(c->layer_ctx);
    c->layer = &smtp_layer_plain;
    c->layer_ctx = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = c->wcap = 0;
}

void
smtp_addr_format(const aimx_addr *addr, uint16_t port, char *buf, size_t size)
{
    char text[INET6_ADDRSTRLEN];

    smtp_addr_text(addr, text, sizeof text);
    snprintf(buf, size, "[%s]:%u", text, (unsigned)port);
}

void
smtp_addr_text(const aimx_addr *addr, char *buf, size_t size)
{
    char text[INET6_ADDRSTRLEN] = "?";

    if (addr->family == AIMX_AF_INET)
        inet_ntop(AF_INET, addr->bytes, text, sizeof text);
    else if (addr->family == AIMX_AF_INET6)
        inet_ntop(AF_INET6, addr->bytes, text, sizeof text);
    snprintf(buf, size, "%s", text);
}

static long
plain_read(void *ctx, int fd, void *buf, size_t len, int *err)
{
    ssize_t n;

    (void)ctx;
    for (;;) {
        n = recv(fd, buf, len, 0);
        if (n >= 0)
            return (long)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return SMTP_LAYER_WANT_READ;
        *err = errno;
        return SMTP_LAYER_ERROR;
    }
}

static long
plain_write(void *ctx, int fd, const void *buf, size_t len, int *err)
{
    ssize_t n;

    (void)ctx;
    for (;;) {
        /* MSG_NOSIGNAL: a plugin must not install a SIGPIPE handler, and
         * a server that hangs up must not kill the process. */
        n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0)
            return (long)n;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return SMTP_LAYER_WANT_WRITE;
        *err = n < 0 ? errno : EPIPE;
        return SMTP_LAYER_ERROR;
    }
}

static void
drain_while_writing(struct smtp_conn *c)
{
    long n;
    int err = 0;

    compact(c);
    if (c->rlen == sizeof c->rbuf)
        return;
    n = c->layer->read(c->layer_ctx, c->fd, c->rbuf + c->rlen,
                       sizeof c->rbuf - c->rlen, &err);
    if (n > 0)
        c->rlen += (size_t)n;
    else if (n == 0)
        c->eof = 1;
    /* An error shows up again at the next write or read. */
}

static void
compact(struct smtp_conn *c)
{
    if (c->rpos == c->rlen) {
        c->rpos = c->rlen = 0;
    } else if (c->rpos > 0 && c->rlen == sizeof c->rbuf) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
}

static int
is_aborted(const struct smtp_conn *c)
{
    return c->aborted && atomic_load(c->aborted);
}

static int
to_sockaddr(const aimx_addr *addr, uint16_t port, struct sockaddr_storage *ss,
            socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (addr->family == AIMX_AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, addr->bytes, 4);
        *len = sizeof *sin;
        return 1;
    }
    if (addr->family == AIMX_AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        memcpy(&sin6->sin6_addr, addr->bytes, 16);
        *len = sizeof *sin6;
        return 1;
    }
    return 0;
}

static void
from_sockaddr(const struct sockaddr_storage *ss, aimx_addr *addr,
              uint16_t *port)
{
    memset(addr, 0, sizeof *addr);
    *port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        addr->family = AIMX_AF_INET;
        memcpy(addr->bytes, &sin->sin_addr, 4);
        *port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        addr->family = AIMX_AF_INET6;
        memcpy(addr->bytes, &sin6->sin6_addr, 16);
        *port = ntohs(sin6->sin6_port);
    }
}
