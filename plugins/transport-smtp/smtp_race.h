/* SPDX-License-Identifier: MIT */
/*
 * Happy Eyeballs (RFC 8305 section 5) over one MX host's addresses, in
 * the policy's order: the first attempt starts at once, the next one
 * when the connection attempt delay has passed with earlier attempts
 * still pending, or at once when an attempt fails; the first connection
 * established wins and every other attempt is closed.  A silently dropped
 * IPv6 path therefore costs the delay (250 ms), not the connect timeout.
 */
#ifndef SMTP_RACE_H
#define SMTP_RACE_H

#include "smtp_conn.h"

#include <aimx/plugin.h>

#include <stddef.h>
#include <stdint.h>

struct smtp_race {
    const aimx_addr *addrs; /* in the order to try */
    size_t count;
    uint16_t port;
    const aimx_addr *bind4; /* source addresses; NULL or family 0: none */
    const aimx_addr *bind6;
    uint64_t delay_us;    /* connection attempt delay */
    uint64_t timeout_us;  /* each attempt's connect timeout */
    uint64_t deadline_us; /* the call's, absolute; 0 = none */
};

/* One address's attempt: the SDK's record and why it failed. */
struct smtp_race_attempt {
    aimx_connect_attempt a; /* outcome, errno, addresses, times */
    int bind_failed;        /* the source address could not be bound */
};

enum smtp_race_end {
    SMTP_RACE_WON = 0,      /* c holds the winner's socket */
    SMTP_RACE_FAILED = 1,   /* every attempt failed */
    SMTP_RACE_DEADLINE = 2, /* the call's deadline passed */
    SMTP_RACE_ABORTED = 3,  /* abort() */
    SMTP_RACE_ERROR = 4     /* poll() or memory: *err says */
};

/* Runs the race; att[0..count) are filled in address order (attempts
 * the race ended before are AIMX_CONNECT_NOT_STARTED, start_us 0).  On
 * SMTP_RACE_WON the winner's socket is adopted by c (which must be
 * closed) and *winner is its index.  c also gives the abort descriptor
 * and the clock. */
int smtp_race_run(struct smtp_conn *c, const struct smtp_race *r,
                  struct smtp_race_attempt *att, size_t *winner, int *err);

#endif /* SMTP_RACE_H */
