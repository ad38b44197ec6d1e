/* SPDX-License-Identifier: MIT */
/*
 * STARTTLS with OpenSSL 3; see smtp_tls.h.
 *
 * The socket is driven by a BIO of our own rather than OpenSSL's socket
 * BIO: that one writes with write(2), and a server that hangs up would
 * raise SIGPIPE in the host (a plugin may not install signal handlers).
 * Ours uses send(MSG_NOSIGNAL), like the plain layer.
 */
#include "smtp_tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The layer's state: one per encrypted connection. */
struct smtp_tls {
    SSL *ssl;
    int fd;
    int sys_errno; /* errno of the last failed send() or recv() */
    int fatal;     /* a fatal TLS error: no close_notify may follow */
};

static long tls_read(void *ctx, int fd, void *buf, size_t len, int *err);
static long tls_write(void *ctx, int fd, const void *buf, size_t len, int *err);
static void tls_close(void *ctx);
static long tls_failure(struct smtp_tls *t, int r, int *err);
static SSL *new_ssl(int level, const char *mx_host,
                    struct smtp_tls_trust *trust, struct smtp_tls *t, char *why,
                    size_t why_size);
static SSL_CTX *context(int verify, char *why, size_t why_size);
static SSL_CTX *new_context(int verify, char *why, size_t why_size);
static BIO_METHOD *new_bio_method(void);
static void *trust_store(struct smtp_tls_trust *trust, char *why,
                         size_t why_size);
static int bio_write(BIO *b, const char *buf, int len);
static int bio_read(BIO *b, char *buf, int len);
static long bio_ctrl(BIO *b, int cmd, long num, void *ptr);
static int sni_usable(const char *name);
static void describe_failure(SSL *ssl, struct smtp_tls *t, int e,
                             const char *mx_host, char *why, size_t why_size);

static const struct smtp_layer smtp_layer_tls = {
    .name = "tls",      /* for logs */
    .read = tls_read,   /* SSL_read_ex() */
    .write = tls_write, /* SSL_write_ex(), partial writes allowed */
    .close = tls_close, /* close_notify when in step, SSL_free() */
    .duplex = 1,        /* SSL_read() while an SSL_write() waits is fine */
};

/* The process-wide objects, guarded by ctx_lock.  A mutex rather than
 * pthread_once: the last instance frees them (see smtp_tls.h), and a
 * later instance must be able to create them again. */
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *relaxed_ctx; /* may, encrypt */
static SSL_CTX *verify_ctx;  /* verify */
static BIO_METHOD *bio_method;
static unsigned instances;

void
smtp_tls_retain(void)
{
    pthread_mutex_lock(&ctx_lock);
    instances++;
    pthread_mutex_unlock(&ctx_lock);
}

void
smtp_tls_release(void)
{
    pthread_mutex_lock(&ctx_lock);
    if (instances > 0 && --instances == 0) {
        /* Sessions hold their own references to a context; the SDK
         * destroys an instance after its last operation anyway. */
        SSL_CTX_free(relaxed_ctx);
        SSL_CTX_free(verify_ctx);
        BIO_meth_free(bio_method);
        relaxed_ctx = verify_ctx = NULL;
        bio_method = NULL;
    }
    pthread_mutex_unlock(&ctx_lock);
}

unsigned
smtp_tls_contexts(void)
{
    unsigned n;

    pthread_mutex_lock(&ctx_lock);
    n = (relaxed_ctx != NULL) + (verify_ctx != NULL);
    pthread_mutex_unlock(&ctx_lock);
    return n;
}

void
smtp_tls_trust_init(struct smtp_tls_trust *t, const char *ca_file)
{
    memset(t, 0, sizeof *t);
    t->ca_file = ca_file;
    pthread_mutex_init(&t->lock, NULL);
}

void
smtp_tls_trust_free(struct smtp_tls_trust *t)
{
    X509_STORE_free(t->store);
    t->store = NULL;
    pthread_mutex_destroy(&t->lock);
}

int
smtp_tls_start(struct smtp_conn *c, int level, const char *mx_host,
               struct smtp_tls_trust *trust, uint64_t deadline_us, int *io,
               struct smtp_tls_facts *facts, char *why, size_t why_size)
{
    struct smtp_tls *t;
    SSL *ssl;
    long vr;
    int r, e, st;

    *io = SMTP_IO_OK;
    memset(facts, 0, sizeof *facts);
    t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(why, why_size, "out of memory");
        return SMTP_TLS_LOCAL;
    }
    t->fd = c->fd;
    ssl = new_ssl(level, mx_host, trust, t, why, why_size);
    if (!ssl) {
        free(t);
        return SMTP_TLS_LOCAL;
    }
    t->ssl = ssl;
    for (;;) {
        ERR_clear_error();
        t->sys_errno = 0;
        r = SSL_connect(ssl);
        if (r == 1)
            break;
        e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            st = smtp_conn_wait(c, POLLIN, deadline_us, NULL);
        } else if (e == SSL_ERROR_WANT_WRITE) {
            st = smtp_conn_wait(c, POLLOUT, deadline_us, NULL);
        } else {
            describe_failure(ssl, t, e, mx_host, why, why_size);
            vr = SSL_get_verify_result(ssl);
            t->fatal = 1;
            tls_close(t);
            return level == SMTP_TLS_VERIFY && vr != X509_V_OK
                       ? SMTP_TLS_CERT
                       : SMTP_TLS_FAILED;
        }
        if (st != SMTP_IO_OK) {
            *io = st;
            snprintf(why, why_size, "the TLS handshake did not finish");
            t->fatal = 1;
            tls_close(t);
            return SMTP_TLS_IO;
        }
    }
    if (level == SMTP_TLS_VERIFY && (SSL_get_verify_result(ssl) != X509_V_OK ||
                                     !SSL_get0_peer_certificate(ssl))) {
        /* SSL_VERIFY_PEER makes this unreachable; belt and braces. */
        snprintf(why, why_size, "the certificate of %s was not verified",
                 mx_host ? mx_host : "the server");
        tls_close(t);
        return SMTP_TLS_CERT;
    }
    snprintf(facts->version, sizeof facts->version, "%s", SSL_get_version(ssl));
    snprintf(facts->cipher, sizeof facts->cipher, "%s",
             SSL_get_cipher_name(ssl));
    facts->verified = level == SMTP_TLS_VERIFY;
    ERR_clear_error();
    smtp_conn_set_layer(c, &smtp_layer_tls, t);
    return SMTP_TLS_OK;
}

int
smtp_tls_level_parse(const char *text)
{
    static const char *const names[] = {"none", "may", "encrypt", "verify"};
    int i;

    for (i = 0; text && i < 4; i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    return -1;
}

const char *
smtp_tls_level_name(int level)
{
    switch (level) {
    case SMTP_TLS_NONE:
        return "none";
    case SMTP_TLS_MAY:
        return "may";
    case SMTP_TLS_ENCRYPT:
        return "encrypt";
    case SMTP_TLS_VERIFY:
        return "verify";
    }
    return "?";
}

/* The layer ------------------------------------------------------------ */

static long
tls_read(void *ctx, int fd, void *buf, size_t len, int *err)
{
    struct smtp_tls *t = ctx;
    size_t n = 0;
    int r;

    (void)fd;
    ERR_clear_error();
    t->sys_errno = 0;
    r = SSL_read_ex(t->ssl, buf, len, &n);
    if (r == 1)
        return (long)n;
    return tls_failure(t, r, err);
}

static long
tls_write(void *ctx, int fd, const void *buf, size_t len, int *err)
{
    struct smtp_tls *t = ctx;
    size_t n = 0;
    int r;

    (void)fd;
    ERR_clear_error();
    t->sys_errno = 0;
    r = SSL_write_ex(t->ssl, buf, len, &n);
    if (r == 1)
        return (long)n;
    return tls_failure(t, r, err);
}

static long
tls_failure(struct smtp_tls *t, int r, int *err)
{
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return SMTP_LAYER_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return SMTP_LAYER_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        /* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a plain EOF:
         * SMTP has its own framing, so a missing close_notify truncates
         * nothing that the dialogue would not notice. */
        return 0;
    case SSL_ERROR_SYSCALL:
        t->fatal = 1;
        if (t->sys_errno == 0 && ERR_peek_error() == 0)
            return 0;
        *err = t->sys_errno ? t->sys_errno : EPROTO;
        ERR_clear_error();
        return SMTP_LAYER_ERROR;
    default:
        t->fatal = 1;
        *err = EPROTO;
        ERR_clear_error();
        return SMTP_LAYER_ERROR;
    }
}

static void
tls_close(void *ctx)
{
    struct smtp_tls *t = ctx;

    if (!t)
        return;
    if (!t->fatal && SSL_is_init_finished(t->ssl)) {
        /* One close_notify, without waiting for the server's: the socket
         * is about to close anyway. */
        ERR_clear_error();
        (void)SSL_shutdown(t->ssl);
    }
    ERR_clear_error();
    SSL_free(t->ssl);
    free(t);
}

/* One session's SSL object, over the socket, with SNI and the checks of
 * its level. */
static SSL *
new_ssl(int level, const char *mx_host, struct smtp_tls_trust *trust,
        struct smtp_tls *t, char *why, size_t why_size)
{
    void *store = NULL;
    SSL_CTX *ctx;
    SSL *ssl = NULL;
    BIO *bio;

    if (level == SMTP_TLS_VERIFY && trust && trust->ca_file) {
        store = trust_store(trust, why, why_size);
        if (!store)
            return NULL;
    }
    pthread_mutex_lock(&ctx_lock);
    ctx = context(level == SMTP_TLS_VERIFY, why, why_size);
    if (ctx)
        ssl = SSL_new(ctx); /* holds its own reference to ctx */
    bio = ssl ? BIO_new(bio_method) : NULL;
    pthread_mutex_unlock(&ctx_lock);
    if (!ssl || !bio) {
        if (ctx)
            snprintf(why, why_size, "cannot set up TLS: out of memory");
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(bio, t);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_connect_state(ssl);
    /* SNI is always the MX host name: servers with several names pick
     * the certificate by it (RFC 6066 forbids address literals). */
    if (sni_usable(mx_host) && SSL_set_tlsext_host_name(ssl, mx_host) != 1)
        goto fail;
    if (level == SMTP_TLS_VERIFY) {
        /* The name checked is the MX host's, never the dialled address:
         * that is what DNS (and the core) connected us to. */
        if (!mx_host || !*mx_host) {
            snprintf(why, why_size,
                     "no MX host name to check the certificate against");
            SSL_free(ssl);
            return NULL;
        }
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(ssl, mx_host) != 1)
            goto fail;
        if (store && SSL_set1_verify_cert_store(ssl, store) != 1)
            goto fail;
    }
    return ssl;
fail:
    snprintf(why, why_size, "cannot set up TLS for %s",
             mx_host ? mx_host : "the server");
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
}

/* The context for a level, created on first use (ctx_lock held). */
static SSL_CTX *
context(int verify, char *why, size_t why_size)
{
    SSL_CTX **slot = verify ? &verify_ctx : &relaxed_ctx;

    if (!bio_method && !(bio_method = new_bio_method())) {
        snprintf(why, why_size, "cannot set up TLS: out of memory");
        return NULL;
    }
    if (!*slot)
        *slot = new_context(verify, why, why_size);
    return *slot;
}

static SSL_CTX *
new_context(int verify, char *why, size_t why_size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int ok = ctx != NULL;

    if (!ok)
        goto out;
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* SMTP frames itself (replies, the final dot): a server that closes
     * without close_notify is common and loses nothing. */
    SSL_CTX_set_options(ctx,
                        SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (verify) {
        /* OpenSSL's defaults (Debian's openssl.cnf applies), the system
         * CA store, and a failed check fails the handshake: no octet of
         * mail goes to a server that did not prove its name. */
        ok = SSL_CTX_set_default_verify_paths(ctx) == 1;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        /* may and encrypt: anything beats plaintext, so old servers are
         * welcome: TLS 1.0 and up, every cipher of security level 0,
         * and servers without RFC 5746 secure renegotiation. */
        SSL_CTX_set_security_level(ctx, 0);
        ok = SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION) == 1 &&
             SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0") == 1;
        SSL_CTX_set_options(ctx, SSL_OP_LEGACY_SERVER_CONNECT);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
out:
    if (!ok) {
        snprintf(why, why_size, "cannot set up the TLS context: %s",
                 ERR_reason_error_string(ERR_peek_last_error())
                     ? ERR_reason_error_string(ERR_peek_last_error())
                     : "unknown error");
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static BIO_METHOD *
new_bio_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "aimx smtp socket");

    if (!m)
        return NULL;
    if (BIO_meth_set_write(m, bio_write) != 1 ||
        BIO_meth_set_read(m, bio_read) != 1 ||
        BIO_meth_set_ctrl(m, bio_ctrl) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* ca_file's certificates, loaded once per instance on first use. */
static void *
trust_store(struct smtp_tls_trust *trust, char *why, size_t why_size)
{
    X509_STORE *store;

    pthread_mutex_lock(&trust->lock);
    if (!trust->store && !trust->failed) {
        store = X509_STORE_new();
        if (store && X509_STORE_load_file(store, trust->ca_file) == 1) {
            trust->store = store;
        } else {
            X509_STORE_free(store);
            trust->failed = 1;
        }
        ERR_clear_error();
    }
    store = trust->store;
    pthread_mutex_unlock(&trust->lock);
    if (!store)
        snprintf(why, why_size, "cannot load the CA certificates of %s",
                 trust->ca_file);
    return store;
}

/* The BIO ---------------------------------------------------------------- */

static int
bio_write(BIO *b, const char *buf, int len)
{
    struct smtp_tls *t = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    do
        n = send(t->fd, buf, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_write(b);
    else
        t->sys_errno = errno;
    return -1;
}

static int
bio_read(BIO *b, char *buf, int len)
{
    struct smtp_tls *t = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    do
        n = recv(t->fd, buf, (size_t)len, 0);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_read(b);
    else
        t->sys_errno = errno;
    return -1;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* Nothing is buffered here: a flush is done at once; every other
     * control (KTLS, datagram, ...) is "not supported". */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

/* SNI carries a host name, never an address literal (RFC 6066 3). */
static int
sni_usable(const char *name)
{
    unsigned char buf[16];

    return name && *name && strlen(name) <= 253 &&
           inet_pton(AF_INET, name, buf) != 1 &&
           inet_pton(AF_INET6, name, buf) != 1;
}

static void
describe_failure(SSL *ssl, struct smtp_tls *t, int e, const char *mx_host,
                 char *why, size_t why_size)
{
    unsigned long err = ERR_peek_last_error();
    long vr = SSL_get_verify_result(ssl);
    const char *reason;

    if (vr != X509_V_OK && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER)) {
        snprintf(why, why_size, "the certificate of %s did not verify: %s",
                 mx_host ? mx_host : "the server",
                 X509_verify_cert_error_string(vr));
    } else if (e == SSL_ERROR_SYSCALL && err == 0) {
        if (t->sys_errno)
            snprintf(why, why_size, "TLS handshake failed: %s",
                     strerror(t->sys_errno));
        else
            snprintf(why, why_size,
                     "TLS handshake failed: the server "
                     "closed the connection");
    } else {
        reason = err ? ERR_reason_error_string(err) : NULL;
        snprintf(why, why_size, "TLS handshake failed: %s",
                 reason ? reason : "unknown error");
    }
    ERR_clear_error();
}
