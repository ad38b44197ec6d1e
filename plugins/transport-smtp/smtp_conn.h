/* SPDX-License-Identifier: MIT */
/*
 * One TCP connection to an SMTP server: a non-blocking socket, a read
 * buffer (which doubles as the queue of pipelined replies not yet parsed),
 * a write buffer flushed as a whole, and waits bounded by an absolute
 * deadline and cut short by the instance's abort descriptor.
 *
 * The octets go through a "layer" (struct smtp_layer): plain TCP here.  The
 * TLS layer (smtp_tls.c) implements the same functions over the same
 * socket and is swapped in with smtp_conn_set_layer() after the 220 reply
 * to STARTTLS; nothing above this file changes.  Connecting is split into
 * start (smtp_sock_start) and adopt (smtp_conn_adopt), so that the race
 * (smtp_race.c) can wait on several sockets at once.
 */
#ifndef SMTP_CONN_H
#define SMTP_CONN_H

#include <aimx/plugin.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Replies are small; this holds a pipelined group's worth and more. */
#define SMTP_CONN_RBUF 16384

enum smtp_io {
    SMTP_IO_OK = 0,
    SMTP_IO_EOF = 1,     /* the server closed the connection */
    SMTP_IO_TIMEOUT = 2, /* the deadline passed */
    SMTP_IO_ABORTED = 3, /* abort() was called */
    SMTP_IO_ERROR = 4,   /* a system call failed: see sys_errno */
    SMTP_IO_NOMEM = 5    /* a buffer could not grow */
};

/* What a layer's read or write returns when it moved no octets. */
#define SMTP_LAYER_WANT_READ  (-1L) /* retry once the socket is readable */
#define SMTP_LAYER_WANT_WRITE (-2L) /* retry once the socket is writable */
#define SMTP_LAYER_ERROR      (-3L) /* broken; *err holds an errno */

struct smtp_layer {
    const char *name;
    /* > 0: octets read; 0: end of stream; else SMTP_LAYER_*. */
    long (*read)(void *ctx, int fd, void *buf, size_t len, int *err);
    /* > 0: octets written; else SMTP_LAYER_*. */
    long (*write)(void *ctx, int fd, const void *buf, size_t len, int *err);
    /* Optional: frees ctx.  The connection closes the socket itself. */
    void (*close)(void *ctx);
    /* Non-zero if read() may be called while a write() is unfinished (to
     * drain replies while a large pipelined group goes out). */
    int duplex;
};

extern const struct smtp_layer smtp_layer_plain;

struct smtp_conn {
    int fd;       /* -1 when closed */
    int abort_fd; /* readable once abort() was called; -1 for none */
    const atomic_int *aborted; /* the same, cheaper to test; may be NULL */
    const struct smtp_layer *layer;
    void *layer_ctx;
    uint64_t (*now_us)(aimx_host *host); /* CLOCK_MONOTONIC, microseconds */
    aimx_host *host;
    int sys_errno; /* errno of the last SMTP_IO_ERROR */
    int eof;       /* the server closed its side */
    aimx_addr local, remote;
    uint16_t local_port, remote_port;
    size_t rpos, rlen; /* unparsed octets are rbuf[rpos..rlen) */
    uint8_t *wbuf;     /* wlen octets waiting for smtp_conn_flush() */
    size_t wlen, wcap;
    uint8_t rbuf[SMTP_CONN_RBUF];
};

/* A closed connection using the plain layer. */
void smtp_conn_init(struct smtp_conn *c, int abort_fd,
                    const atomic_int *aborted, uint64_t (*now_us)(aimx_host *),
                    aimx_host *host);

/* Starts a non-blocking connect to addr:port, TCP_NODELAY set, from
 * source (NULL or family 0: the kernel's choice; else bound just before
 * connect()).  Returns the socket, whose connect is under way (*done 0) or
 * complete (*done 1), or -1 with *err set (*bind_failed when the bind
 * failed: the source address is gone). */
int smtp_sock_start(const aimx_addr *addr, uint16_t port,
                    const aimx_addr *source, int *done, int *err,
                    int *bind_failed);
/* The outcome of fd's connect once it polled writable: 0 or an errno. */
int smtp_sock_error(int fd);
/* fd's local address and port (family 0 and 0 while unbound). */
void smtp_sock_local(int fd, aimx_addr *addr, uint16_t *port);
/* Makes fd, connected to remote:port, the connection's socket (the
 * connection must be closed); nothing buffered. */
void smtp_conn_adopt(struct smtp_conn *c, int fd, const aimx_addr *remote,
                     uint16_t port);

/* Reads at least one octet into rbuf, waiting until deadline. */
int smtp_conn_fill(struct smtp_conn *c, uint64_t deadline_us);

/* Room for n more octets at the end of the write buffer, or NULL. */
uint8_t *smtp_conn_reserve(struct smtp_conn *c, size_t n);
/* Adds n octets written into the room smtp_conn_reserve() gave. */
void smtp_conn_commit(struct smtp_conn *c, size_t n);
/* Appends n octets; SMTP_IO_OK or SMTP_IO_NOMEM. */
int smtp_conn_append(struct smtp_conn *c, const void *data, size_t n);
/* Writes the whole buffer (a single write when the socket takes it),
 * waiting until deadline; empties the buffer whatever the outcome. */
int smtp_conn_flush(struct smtp_conn *c, uint64_t deadline_us);

/* Waits for events (POLLIN, POLLOUT) on the socket until deadline; 0 =
 * none.  *revents gets what poll() saw (may be NULL). */
int smtp_conn_wait(struct smtp_conn *c, short events, uint64_t deadline_us,
                   short *revents);

/* Octets received and not parsed yet.  After the 220 reply to STARTTLS it
 * must be 0: anything else was injected before the handshake. */
size_t smtp_conn_pending(const struct smtp_conn *c);

/* Replaces the layer (STARTTLS); the old one is not closed. */
void smtp_conn_set_layer(struct smtp_conn *c, const struct smtp_layer *layer,
                         void *ctx);

/* Closes the socket and frees the buffers; the connection can be reused. */
void smtp_conn_close(struct smtp_conn *c);

/* "[192.0.2.1]:25" or "[2001:db8::1]:25"; always NUL-terminated. */
void smtp_addr_format(const aimx_addr *addr, uint16_t port, char *buf,
                      size_t size);
/* "192.0.2.1" or "2001:db8::1" ("?" for no address). */
void smtp_addr_text(const aimx_addr *addr, char *buf, size_t size);

#endif /* SMTP_CONN_H */
