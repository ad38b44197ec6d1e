/* SPDX-License-Identifier: MIT */
/* A canonical message as transports read it: one reader per delivery
 * attempt over a shared spool file, each with its own position. */
#ifndef AIMX_MESSAGE_H
#define AIMX_MESSAGE_H

#include <aimx/plugin.h>

struct aimx_msg {
    int fd;          /* the spool file, shared, read with pread() */
    uint64_t size;   /* octets in the canonical message */
    uint64_t offset; /* this reader's position */
};

void aimx__msg_init(aimx_msg *m, int fd, uint64_t size);

/* The services in the host table. */
int64_t aimx__msg_read(aimx_msg *m, void *buf, size_t len);
aimx_status aimx__msg_rewind(aimx_msg *m);

#endif
