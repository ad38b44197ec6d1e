/* SPDX-License-Identifier: MIT */
#include "message.h"

#include <errno.h>
#include <unistd.h>

void
aimx__msg_init(aimx_msg *m, int fd, uint64_t size)
{
    m->fd = fd;
    m->size = size;
    m->offset = 0;
}

int64_t
aimx__msg_read(aimx_msg *m, void *buf, size_t len)
{
    ssize_t n;

    if (m == NULL || (buf == NULL && len > 0))
        return -(int64_t)AIMX_ERR_INVALID;
    if (m->offset >= m->size || len == 0)
        return 0;
    if (len > m->size - m->offset)
        len = (size_t)(m->size - m->offset);
    do
        n = pread(m->fd, buf, len, (off_t)m->offset);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -(int64_t)AIMX_ERR_IO;
    if (n == 0) /* the spool shrank under us */
        return -(int64_t)AIMX_ERR_IO;
    m->offset += (uint64_t)n;
    return n;
}

aimx_status
aimx__msg_rewind(aimx_msg *m)
{
    if (m == NULL)
        return AIMX_ERR_INVALID;
    m->offset = 0;
    return AIMX_OK;
}
