/* SPDX-License-Identifier: MIT */
/*
 * The ESMTP client engine: greeting, EHLO (HELO fallback), extensions,
 * transactions with PIPELINING, recipient limits and 452 splitting, the
 * message through dot-stuffing, QUIT.  It reports what happened as plain
 * facts (struct smtp_outcome: failure kind, phase, reply); turning facts
 * into temporary/permanent and a scope is transport_smtp.c's job, done in
 * one place.
 */
#ifndef SMTP_SESSION_H
#define SMTP_SESSION_H

#include "smtp_conn.h"
#include "smtp_reply.h"
#include "smtp_tls.h"

#include <aimx/plugin.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The per-phase timeouts, in the order of the `timeouts` group. */
enum smtp_timeout {
    SMTP_T_CONNECT = 0,
    SMTP_T_GREETING,
    SMTP_T_EHLO,
    SMTP_T_STARTTLS, /* the reply to STARTTLS, and the handshake */
    SMTP_T_MAIL,     /* MAIL FROM, and RSET */
    SMTP_T_RCPT,
    SMTP_T_DATA,  /* the reply to DATA */
    SMTP_T_BLOCK, /* each write of message data */
    SMTP_T_DOT,   /* the reply to the final dot */
    SMTP_T_QUIT,
    SMTP_T_COUNT
};

#define SMTP_HELO_MAX 256 /* aimx_transport_info.ehlo_name's size */

struct smtp_settings {
    uint16_t port;
    unsigned max_recipients;
    uint64_t timeout_us[SMTP_T_COUNT];
    uint64_t attempt_delay_us; /* connection_attempt_delay */
    int tls;                   /* enum smtp_tls_level */
    const char *ca_file;    /* NULL: the system CA store; the host's string */
    aimx_addr bind4, bind6; /* source addresses; family 0: none */
    char helo_name[SMTP_HELO_MAX];
};

/* Extensions seen in the EHLO reply. */
#define SMTP_EXT_PIPELINING          0x01u
#define SMTP_EXT_SIZE                0x02u
#define SMTP_EXT_8BITMIME            0x04u
#define SMTP_EXT_SMTPUTF8            0x08u
#define SMTP_EXT_ENHANCEDSTATUSCODES 0x10u
#define SMTP_EXT_STARTTLS            0x20u

#define SMTP_TEXT_MAX 512 /* aimx_transport_result.reply's size */

/* What ended a step, unclassified. */
struct smtp_outcome {
    uint32_t kind;  /* enum aimx_failure_kind; AIMX_FAIL_NONE: it worked */
    uint32_t phase; /* enum aimx_phase */
    uint16_t code;  /* the reply's code, 0 when no reply decided it */
    int after_dot;  /* the final dot went out before the connection failed */
    int host_wide;  /* TLS: this MX host cannot do it (not offered, or its
                       certificate did not verify), not just this address */
    int invalid;    /* the envelope cannot be written in SMTP */
    char enhanced[SMTP_ENHANCED_MAX];
    char text[SMTP_TEXT_MAX];
};

/* One connect attempt, as it ended. */
typedef void smtp_attempt_fn(void *arg, const aimx_connect_attempt *a);
/* One recipient's fate, reported exactly once per send for every index
 * of env->rcpts.  shared: it came from a transaction or session event
 * (MAIL, DATA, the dot, a lost connection), not from its own RCPT reply. */
typedef void smtp_rcpt_fn(void *arg, size_t index, const struct smtp_outcome *o,
                          int shared);

struct smtp_session {
    const struct smtp_settings *set;
    const aimx_host_api *api;
    aimx_host *host;
    struct smtp_tls_trust *trust; /* the instance's ca_file store */
    uint64_t call_deadline;       /* of the operation running; 0 = none */
    unsigned ext;                 /* SMTP_EXT_* */
    uint64_t size_limit;          /* SIZE's value; 0 = none given */
    int esmtp;                    /* EHLO worked (not HELO) */
    int broken;                   /* no further command may be sent */
    int need_rset;                /* a transaction was started on the session */
    uint64_t connected_us;
    int tls;                     /* the session is encrypted: see facts */
    struct smtp_tls_facts facts; /* version, cipher, verified */
    uint8_t *inbuf;              /* message octets read for one data block */
    struct smtp_reply reply;     /* the last reply read */
    struct smtp_reply_parser parser;
    struct smtp_conn conn;
};

void smtp_session_init(struct smtp_session *s, const struct smtp_settings *set,
                       const aimx_host_api *api, aimx_host *host,
                       struct smtp_tls_trust *trust, int abort_fd,
                       const atomic_int *aborted);

/* Races connections to addrs (Happy Eyeballs, in their order), reads the
 * greeting, says EHLO (or HELO), and STARTTLS as the tls level says, as
 * a client of mx_host (SNI, certificate name; may be NULL).  Under `may`
 * a failed handshake closes the connection and delivery goes on in
 * plaintext on a new one to the same address.  Every attempt goes to fn,
 * in order.  out->kind is AIMX_FAIL_NONE when the session is open;
 * otherwise the connection is closed. */
void smtp_session_open(struct smtp_session *s, const char *mx_host,
                       const aimx_addr *addrs, size_t count,
                       uint64_t deadline_us, smtp_attempt_fn *fn, void *arg,
                       struct smtp_outcome *out);

/* Runs the transactions for env (rcpt_count > 0).  Every recipient's fate
 * goes to fn; *out is what ended the call (AIMX_FAIL_NONE: it ran to the
 * end; the last reply then). */
void smtp_session_send(struct smtp_session *s, const aimx_envelope *env,
                       aimx_msg *msg, smtp_rcpt_fn *fn, void *arg,
                       struct smtp_outcome *out);

/* QUIT and its reply, bounded by the quit timeout and deadline_us (0 =
 * none), when the session is still in step; then closes.  Returns 0 when
 * the server answered 2xx. */
int smtp_session_quit(struct smtp_session *s, uint64_t deadline_us);

/* Closes the connection and frees what the session holds. */
void smtp_session_close(struct smtp_session *s);

/* One line of an EHLO reply after the first: adds its keyword to *ext and
 * SIZE's value to *size_limit (RFC 1870: 0 or absent = no limit). */
void smtp_ehlo_keyword(const char *text, size_t len, unsigned *ext,
                       uint64_t *size_limit);

#endif /* SMTP_SESSION_H */
