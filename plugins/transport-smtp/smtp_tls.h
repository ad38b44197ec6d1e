/* SPDX-License-Identifier: MIT */
/*
 * STARTTLS over OpenSSL 3: the TLS layer (struct smtp_layer) that
 * smtp_conn_set_layer() swaps in after the 220 reply to STARTTLS, the
 * handshake, and the process-wide client contexts.
 *
 * Two SSL_CTX objects serve every instance and session: "relaxed" for the
 * levels may and encrypt (certificate not checked; @SECLEVEL=0, TLS 1.0
 * and up, because the alternative is plaintext) and "verify" (OpenSSL's
 * defaults, the system CA store, peer verification).  They are created on
 * first use, not at create() (OpenSSL's start-up costs milliseconds and
 * reads openssl.cnf), and freed when the last instance is destroyed, so a
 * host that unloads the plugin leaks nothing.  No OpenSSL type appears in
 * this header: the rest of the plugin stays OpenSSL-free.
 */
#ifndef SMTP_TLS_H
#define SMTP_TLS_H

#include "smtp_conn.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* The `tls` setting. */
enum smtp_tls_level {
    SMTP_TLS_NONE = 0,    /* never */
    SMTP_TLS_MAY = 1,     /* when offered; plaintext if it fails */
    SMTP_TLS_ENCRYPT = 2, /* required, certificate not checked */
    SMTP_TLS_VERIFY = 3   /* required, chain and MX host name verified */
};

/* What smtp_tls_start() ended with. */
enum smtp_tls_status {
    SMTP_TLS_OK = 0,     /* the TLS layer is installed */
    SMTP_TLS_FAILED = 1, /* the handshake failed (why says how) */
    SMTP_TLS_CERT = 2,   /* the certificate did not verify (verify only) */
    SMTP_TLS_IO = 3,     /* a wait ended: *io is the SMTP_IO_* code */
    SMTP_TLS_LOCAL = 4   /* a local failure: memory, context, ca_file */
};

/* The CA certificates `verify` trusts when ca_file is set: one store per
 * instance, loaded on first use (the file is checked at create()). */
struct smtp_tls_trust {
    const char *ca_file; /* NULL: the system CA store */
    pthread_mutex_t lock;
    void *store; /* X509_STORE *, once loaded */
    int failed;  /* loading failed: every verify fails locally */
};

/* The facts of an established session, for the SDK result. */
struct smtp_tls_facts {
    char version[16]; /* "TLSv1.3" */
    char cipher[64];  /* "TLS_AES_256_GCM_SHA384" */
    int verified;     /* chain and host name checked */
};

/* create() and destroy(): count the instances; the last release frees
 * the contexts.  Main thread only (as create/destroy are). */
void smtp_tls_retain(void);
void smtp_tls_release(void);

/* How many contexts exist now (0..2): for tests of the lazy creation. */
unsigned smtp_tls_contexts(void);

void smtp_tls_trust_init(struct smtp_tls_trust *t, const char *ca_file);
void smtp_tls_trust_free(struct smtp_tls_trust *t);

/* The TLS handshake on c's socket, as a client of mx_host (SNI always;
 * the certificate's name under `verify`), until deadline_us.  Nothing
 * may be buffered in c (smtp_conn_pending() == 0).  On SMTP_TLS_OK the
 * TLS layer carries every later octet and *facts is filled in; otherwise
 * c is unchanged (the caller closes it) and why says what happened. */
int smtp_tls_start(struct smtp_conn *c, int level, const char *mx_host,
                   struct smtp_tls_trust *trust, uint64_t deadline_us, int *io,
                   struct smtp_tls_facts *facts, char *why, size_t why_size);

/* "none", "may", "encrypt", "verify"; -1 for anything else. */
int smtp_tls_level_parse(const char *text);
const char *smtp_tls_level_name(int level);

#endif /* SMTP_TLS_H */
