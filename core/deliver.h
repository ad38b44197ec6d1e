/* SPDX-License-Identifier: MIT */
/*
 * Delivery: every recipient to its domain's MX, through the transport,
 * with MX and address failover, bounded concurrency, a deadline, and a
 * result per recipient that says what happened and why.
 */
#ifndef AIMX_DELIVER_H
#define AIMX_DELIVER_H

#include "route.h"

#include <aimx/plugin.h>

#include <signal.h>

enum aimx_rcpt_status {
    AIMX_RCPT_PENDING = 0, /* internal: not decided yet */
    AIMX_RCPT_DELIVERED = 1,
    AIMX_RCPT_DEFERRED = 2,
    AIMX_RCPT_BOUNCED = 3
};

/* What one try did for one recipient (attempts[] of the JSON output). */
enum aimx_attempt_result {
    AIMX_ATTEMPT_DELIVERED = 0,
    AIMX_ATTEMPT_REFUSED = 1, /* connection refused or unreachable */
    AIMX_ATTEMPT_TIMEOUT = 2,
    AIMX_ATTEMPT_TLS = 3,
    AIMX_ATTEMPT_TEMP_REPLY = 4,
    AIMX_ATTEMPT_PERM_REPLY = 5,
    AIMX_ATTEMPT_LOST = 6,
    AIMX_ATTEMPT_SKIPPED = 7, /* policy or core skip; reason has its code */
    AIMX_ATTEMPT_DNS = 8      /* a DNS failure for the domain or host */
};

typedef struct aimx_delivery_attempt {
    char mx[256];
    aimx_addr ip;     /* family 0 when no address was involved */
    uint32_t phase;   /* enum aimx_phase */
    int result;       /* enum aimx_attempt_result */
    int code;         /* SMTP reply code or 0 */
    char reason[600]; /* reply text, policy sentence, or error */
} aimx_delivery_attempt;

typedef struct aimx_delivery_rcpt {
    const char *address; /* as given; owned by the caller */
    char domain[256];
    int status;   /* enum aimx_rcpt_status */
    char mx[256]; /* the MX that took it, or the last one tried */
    aimx_addr ip;
    uint16_t port;
    uint32_t phase; /* where it stopped (for deferrals) */
    int code;
    char enhanced[16];
    char reply[512];
    int tls; /* the session was encrypted */
    int tls_verified;
    char tls_version[16];
    char tls_cipher[64];
    int possible_duplicate;
    uint64_t done_us; /* monotonic time its fate was decided */
    aimx_delivery_attempt *attempts;
    size_t attempt_count;
    size_t attempt_cap;
} aimx_delivery_rcpt;

typedef struct aimx_delivery {
    aimx_router router; /* resolver, policy, routing settings */
    aimx_instance *transport;
    int spool_fd; /* the canonical message */
    uint64_t size;
    uint32_t env_flags; /* AIMX_ENV_* */
    const char *sender; /* reverse-path, "" for null */
    aimx_delivery_rcpt *rcpts;
    size_t rcpt_count;
    int max_parallel;            /* sessions at once */
    int max_per_destination;     /* sessions at once to one MX host */
    uint64_t deadline_us;        /* absolute monotonic, 0: none */
    volatile sig_atomic_t *stop; /* set by a signal: wind down */
    uint64_t start_us;
} aimx_delivery;

/*
 * Delivers to every recipient (rcpts[i].address set, status PENDING) and
 * fills in each one's fate.  Returns 0, or -1 on an internal failure (the
 * recipients not decided are then deferred).
 */
int aimx__deliver(aimx_delivery *d);
void aimx__delivery_free(aimx_delivery *d);

/* Ends every transport call at once (from a signal watcher thread). */
void aimx__deliver_abort(aimx_delivery *d);

const char *aimx__rcpt_status_word(int status);
const char *aimx__attempt_result_word(int result);
const char *aimx__phase_word(uint32_t phase);

#endif
