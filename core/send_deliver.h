/* SPDX-License-Identifier: MIT */
/* aimx send, after the message is spooled and signed: deliver it and say
 * what happened to every recipient (text, JSON, syslog). */
#ifndef AIMX_SEND_DELIVER_H
#define AIMX_SEND_DELIVER_H

#include "cli.h"
#include "config.h"

#include <stdint.h>

typedef struct aimx_send_job {
    const aimx_cli *cli;
    const aimx_config *config;
    const char *sender;       /* "" for the null reverse-path */
    const char *const *rcpts; /* normalised addresses */
    size_t rcpt_count;
    int spool_fd; /* the canonical, signed message */
    uint64_t size;
    uint32_t env_flags;     /* AIMX_ENV_* */
    const char *message_id; /* as in the message, or NULL */
    uint64_t deadline_us;   /* absolute CLOCK_MONOTONIC µs; 0: none */
} aimx_send_job;

/* Loads the resolver, policy and transport, delivers, prints the outcome;
 * returns the exit code (0 all delivered, 75 some deferred, 69 any
 * bounced, 78 configuration). */
int aimx__send_deliver(const aimx_send_job *job);

#endif
