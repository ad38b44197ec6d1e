/* SPDX-License-Identifier: MIT */
/*
 * transport-smtp: the bundled transport.  It delivers to one MX host over
 * ESMTP (smtp_session.c) and says what happened in the SDK's result; the
 * meaning of each outcome (temporary or permanent, and how far it reaches)
 * is decided in classify() and nowhere else.
 */
#include "smtp_config.h"
#include "smtp_session.h"

#include <aimx/plugin.h>

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#ifndef TRANSPORT_SMTP_VERSION
#define TRANSPORT_SMTP_VERSION "0.1.0"
#endif

struct smtp_instance {
    /* Kept for destroy(): the instance came from api->alloc. */
    const aimx_host_api *api;
    aimx_host *host;
    struct smtp_settings set;    /* read-only after create(): shared freely */
    struct smtp_tls_trust trust; /* ca_file's store, loaded on first use */
    /* abort(): the flag for cheap checks, the eventfd to wake poll().  It
     * is never drained, so every later wait ends at once too. */
    int abort_fd;
    atomic_int aborted;
};

/* The SDK's opaque session handle is ours to define. */
struct aimx_session {
    struct smtp_instance *inst;
    struct smtp_session s;
};

/* What send() learnt of its recipients, for the call's overall result. */
struct send_tally {
    aimx_transport_result *res;
    size_t ok;         /* delivered */
    size_t individual; /* refused by their own RCPT reply (or address) */
    size_t temporary;  /* temporary failures among the rest */
    size_t shared_temporary, shared_permanent;
    int have_first;
    struct smtp_outcome first; /* the first failure reported */
};

static aimx_status smtp_create(const aimx_host_api *api, aimx_host *host,
                               void **instance);
static void smtp_destroy(void *instance);
static aimx_status smtp_open(void *instance, const aimx_open_request *req,
                             aimx_session **session,
                             aimx_transport_result *res);
static aimx_status smtp_send(void *instance, aimx_session *session,
                             const aimx_envelope *env, aimx_msg *msg,
                             aimx_transport_result *res);
static void smtp_close(void *instance, aimx_session *session,
                       uint64_t deadline_us);
static aimx_status smtp_probe(void *instance, const aimx_open_request *req,
                              aimx_transport_result *res);
static void smtp_abort(void *instance);
static aimx_status smtp_describe(void *instance, aimx_transport_info *info);
static aimx_status connect_session(struct smtp_instance *inst,
                                   const aimx_open_request *req,
                                   aimx_transport_result *res,
                                   struct aimx_session **out_sess,
                                   struct smtp_outcome *o);
static void classify(const struct smtp_outcome *o, uint32_t *result_class,
                     uint32_t *scope, uint32_t *flags);
static void fill_result(aimx_transport_result *res,
                        const struct smtp_outcome *o, uint32_t result_class,
                        uint32_t scope, uint32_t flags,
                        const struct smtp_session *s);
static void on_attempt(void *arg, const aimx_connect_attempt *a);
static void on_rcpt(void *arg, size_t index, const struct smtp_outcome *o,
                    int shared);
static void copy_text(char *dst, size_t size, const char *src);
static int result_usable(const aimx_transport_result *res);
static int api_usable(const aimx_host_api *api);

static const aimx_transport_ops smtp_ops = {
    .struct_size = sizeof(aimx_transport_ops), /* ABI 1.0 table */
    .open = smtp_open,                         /* connect, greeting, EHLO */
    .send = smtp_send,         /* transactions on an open session */
    .close = smtp_close,       /* QUIT, free */
    .probe = smtp_probe,       /* connect, greeting, EHLO, QUIT */
    .abort = smtp_abort,       /* any thread: end every blocking call */
    .describe = smtp_describe, /* EHLO name, port, source addresses */
};

static const aimx_plugin_descriptor smtp_descriptor = {
    .struct_size = sizeof(aimx_plugin_descriptor), /* ABI 1.0 layout */
    .abi_major = AIMX_ABI_MAJOR,                   /* built against 1.x */
    .abi_minor = AIMX_ABI_MINOR,                   /* needs a host >= 1.0 */
    .kind = AIMX_KIND_TRANSPORT,                   /* fills .transport */
    .flags = 0,                                    /* none in 1.0 */
    .name = "transport-smtp",                      /* = transport-smtp.so */
    .version = TRANSPORT_SMTP_VERSION,             /* the project's version */
    .description = "Delivers to MX hosts over ESMTP (STARTTLS, Happy "
                   "Eyeballs, PIPELINING, SIZE, 8BITMIME, "
                   "SMTPUTF8)", /* one line, for `aimx plugins` */
    .create = smtp_create,      /* reads the config group */
    .destroy = smtp_destroy,    /* after the last operation */
    .transport = &smtp_ops,     /* the operations above */
};

AIMX_PLUGIN_DEFINE(transport_smtp, smtp_descriptor);

static aimx_status
smtp_create(const aimx_host_api *api, aimx_host *host, void **instance)
{
    struct smtp_instance *inst;
    struct smtp_settings set;
    aimx_status st;

    if (!instance || !api_usable(api))
        return AIMX_ERR_UNSUPPORTED;
    st = smtp_config_read(api, host, &set);
    if (st != AIMX_OK)
        return st;
    inst = api->alloc(host, sizeof *inst);
    if (!inst) {
        api->log(host, AIMX_LOG_ERR, "out of memory");
        return AIMX_ERR_NOMEM;
    }
    inst->api = api;
    inst->host = host;
    inst->set = set;
    atomic_init(&inst->aborted, 0);
    inst->abort_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (inst->abort_fd < 0) {
        api->log(host, AIMX_LOG_ERR, "eventfd: %s", strerror(errno));
        api->free(host, inst);
        return AIMX_ERR_INTERNAL;
    }
    /* No OpenSSL call here: the contexts come on the first STARTTLS. */
    smtp_tls_trust_init(&inst->trust, inst->set.ca_file);
    smtp_tls_retain();
    api->log(host, AIMX_LOG_DEBUG,
             "port %u, helo_name %s, max_recipients %u, tls %s",
             (unsigned)set.port, set.helo_name, set.max_recipients,
             smtp_tls_level_name(set.tls));
    *instance = inst;
    return AIMX_OK;
}

static void
smtp_destroy(void *instance)
{
    struct smtp_instance *inst = instance;

    if (!inst)
        return;
    close(inst->abort_fd);
    smtp_tls_trust_free(&inst->trust);
    smtp_tls_release();
    inst->api->free(inst->host, inst);
}

static aimx_status
smtp_open(void *instance, const aimx_open_request *req, aimx_session **session,
          aimx_transport_result *res)
{
    struct smtp_instance *inst = instance;
    struct aimx_session *sess = NULL;
    struct smtp_outcome o;
    aimx_status st;

    if (!session)
        return AIMX_ERR_INVALID;
    *session = NULL;
    st = connect_session(inst, req, res, &sess, &o);
    if (st != AIMX_OK)
        return st;
    if (o.kind == AIMX_FAIL_NONE) {
        *session = sess;
        return AIMX_OK;
    }
    smtp_session_close(&sess->s);
    inst->api->free(inst->host, sess);
    return AIMX_OK;
}

static aimx_status
smtp_probe(void *instance, const aimx_open_request *req,
           aimx_transport_result *res)
{
    struct smtp_instance *inst = instance;
    struct aimx_session *sess = NULL;
    struct smtp_outcome o;
    aimx_status st;

    st = connect_session(inst, req, res, &sess, &o);
    if (st != AIMX_OK)
        return st;
    if (o.kind == AIMX_FAIL_NONE) {
        /* The probe is about the greeting and EHLO; a QUIT that goes
         * unanswered does not make the server unusable. */
        smtp_session_quit(&sess->s, req->deadline_us);
        res->phase = AIMX_PHASE_QUIT;
        res->end_us = inst->api->monotonic_us(inst->host);
    }
    smtp_session_close(&sess->s);
    inst->api->free(inst->host, sess);
    return AIMX_OK;
}

/* open() and probe(): a session connected, greeted and EHLO'd, the result
 * filled in.  *out_sess is set (and must be freed) when AIMX_OK. */
static aimx_status
connect_session(struct smtp_instance *inst, const aimx_open_request *req,
                aimx_transport_result *res, struct aimx_session **out_sess,
                struct smtp_outcome *o)
{
    const aimx_host_api *api;
    struct aimx_session *sess;
    uint32_t cls, scope, flags;

    if (!inst || !req || !res || !result_usable(res) ||
        req->struct_size < offsetof(aimx_open_request, deadline_us) +
                               sizeof req->deadline_us ||
        req->addr_count == 0 || !req->addrs)
        return AIMX_ERR_INVALID;
    api = inst->api;
    res->start_us = api->monotonic_us(inst->host);
    sess = api->alloc(inst->host, sizeof *sess);
    if (!sess)
        return AIMX_ERR_NOMEM;
    sess->inst = inst;
    smtp_session_init(&sess->s, &inst->set, api, inst->host, &inst->trust,
                      inst->abort_fd, &inst->aborted);
    if (atomic_load(&inst->aborted)) {
        memset(o, 0, sizeof *o);
        o->kind = AIMX_FAIL_ABORTED;
        o->phase = AIMX_PHASE_CONNECT;
        copy_text(o->text, sizeof o->text, "aborted");
    } else {
        smtp_session_open(&sess->s, req->mx_host, req->addrs, req->addr_count,
                          req->deadline_us, on_attempt, res, o);
    }
    classify(o, &cls, &scope, &flags);
    fill_result(res, o, cls, scope, flags, &sess->s);
    *out_sess = sess;
    return AIMX_OK;
}

static aimx_status
smtp_send(void *instance, aimx_session *session, const aimx_envelope *env,
          aimx_msg *msg, aimx_transport_result *res)
{
    struct smtp_instance *inst = instance;
    struct send_tally t;
    struct smtp_outcome o;
    const struct smtp_outcome *top;
    uint32_t cls, scope, flags;
    size_t total;

    if (!inst || !session || !env || !msg || !res || !result_usable(res) ||
        env->struct_size <
            offsetof(aimx_envelope, deadline_us) + sizeof env->deadline_us ||
        !env->sender || !env->rcpts || env->rcpt_count == 0)
        return AIMX_ERR_INVALID;
    res->start_us = inst->api->monotonic_us(inst->host);
    memset(&t, 0, sizeof t);
    t.res = res;
    smtp_session_send(&session->s, env, msg, on_rcpt, &t, &o);
    total = env->rcpt_count;
    classify(&o, &cls, &scope, &flags);
    if (t.ok == total) {
        fill_result(res, &o, AIMX_CLASS_OK, AIMX_SCOPE_NONE, 0, &session->s);
    } else if (t.ok == 0 && t.individual == 0 && o.kind != AIMX_FAIL_NONE &&
               (cls == AIMX_CLASS_TEMPORARY ? t.shared_permanent
                                            : t.shared_temporary) == 0) {
        /* One event decided every recipient: its own scope says it all
         * (this address, this host, the message). */
        fill_result(res, &o, cls, scope, flags, &session->s);
    } else {
        /* Mixed fates: the core reads them recipient by recipient. */
        top = o.kind != AIMX_FAIL_NONE || !t.have_first ? &o : &t.first;
        fill_result(res, top,
                    t.temporary ? AIMX_CLASS_TEMPORARY : AIMX_CLASS_PERMANENT,
                    AIMX_SCOPE_RECIPIENT, flags, &session->s);
    }
    return AIMX_OK;
}

static void
smtp_close(void *instance, aimx_session *session, uint64_t deadline_us)
{
    struct smtp_instance *inst = instance;

    if (!inst || !session)
        return;
    smtp_session_quit(&session->s, deadline_us);
    smtp_session_close(&session->s);
    inst->api->free(inst->host, session);
}

static void
smtp_abort(void *instance)
{
    struct smtp_instance *inst = instance;
    uint64_t one = 1;
    ssize_t n;

    if (!inst)
        return;
    atomic_store(&inst->aborted, 1);
    n = write(inst->abort_fd, &one, sizeof one);
    (void)n; /* the flag is set; a full counter is readable anyway */
}

static aimx_status
smtp_describe(void *instance, aimx_transport_info *info)
{
    const struct smtp_instance *inst = instance;

    if (!inst || !info || info->struct_size < sizeof *info)
        return AIMX_ERR_INVALID;
    info->flags = 0;
    memset(&info->bind_ipv4, 0, sizeof info->bind_ipv4);
    memset(&info->bind_ipv6, 0, sizeof info->bind_ipv6);
    if (inst->set.bind4.family) {
        info->flags |= AIMX_TRANSPORT_BIND_IPV4;
        info->bind_ipv4 = inst->set.bind4;
    }
    if (inst->set.bind6.family) {
        info->flags |= AIMX_TRANSPORT_BIND_IPV6;
        info->bind_ipv6 = inst->set.bind6;
    }
    info->port = inst->set.port;
    info->reserved = 0;
    copy_text(info->ehlo_name, sizeof info->ehlo_name, inst->set.helo_name);
    return AIMX_OK;
}

/*
 * Issue 5's classification table, in one place:
 *   connect refused/timed out, lost before the dot, 4xx greeting or EHLO,
 *   a malformed reply, abort()          -> temporary, this address
 *   5xx greeting or EHLO                -> permanent, this address
 *   SMTPUTF8 needed, not offered        -> permanent, this MX host
 *   larger than the advertised SIZE     -> permanent, the message
 *   MAIL, DATA or final-dot 4xx / 5xx   -> temporary / permanent, message
 *   RCPT 4xx / 5xx                      -> temporary / permanent, recipient
 *   421 to any command                  -> temporary, this address
 *   lost/timed out after the final dot  -> temporary, message, and
 *                                          AIMX_RESULT_MAYBE_DELIVERED
 * and issue 6's TLS rows:
 *   handshake failed under encrypt/verify (or tampered with, or a 4xx
 *   to STARTTLS)                        -> temporary, this address
 *   STARTTLS required but not offered (or refused 5xx); the certificate
 *   did not verify under verify         -> temporary, this MX host
 * (under `may` a failed handshake never gets here: the session retries
 * in plaintext, see smtp_session_open()).
 */
static void
classify(const struct smtp_outcome *o, uint32_t *result_class, uint32_t *scope,
         uint32_t *flags)
{
    int permanent = o->code / 100 == 5;

    *flags = 0;
    switch (o->kind) {
    case AIMX_FAIL_NONE:
        *result_class = AIMX_CLASS_OK;
        *scope = AIMX_SCOPE_NONE;
        return;
    case AIMX_FAIL_REPLY:
        *result_class = permanent ? AIMX_CLASS_PERMANENT : AIMX_CLASS_TEMPORARY;
        if (o->code == 421) {
            /* RFC 5321 3.8: the server is closing the session, whatever
             * the command; nothing was said about the message. */
            *scope = AIMX_SCOPE_ADDRESS;
            return;
        }
        switch (o->phase) {
        case AIMX_PHASE_MAIL:
        case AIMX_PHASE_DATA:
        case AIMX_PHASE_BODY:
        case AIMX_PHASE_DOT:
            *scope = AIMX_SCOPE_MESSAGE;
            break;
        case AIMX_PHASE_RCPT:
            *scope = AIMX_SCOPE_RECIPIENT;
            break;
        case AIMX_PHASE_RSET:
            /* A server that refuses RSET is confused, not final. */
            *result_class = AIMX_CLASS_TEMPORARY;
            *scope = AIMX_SCOPE_ADDRESS;
            break;
        default:
            /* Greeting, EHLO/HELO: the core makes a domain permanent only
             * when every address of every MX said 5xx. */
            *scope = AIMX_SCOPE_ADDRESS;
            break;
        }
        return;
    case AIMX_FAIL_UNSUPPORTED:
        *result_class = AIMX_CLASS_PERMANENT;
        *scope = AIMX_SCOPE_HOST;
        return;
    case AIMX_FAIL_TOO_LARGE:
        *result_class = AIMX_CLASS_PERMANENT;
        *scope = AIMX_SCOPE_MESSAGE;
        return;
    case AIMX_FAIL_TLS:
        /* Never permanent: certificates get renewed, TLS gets fixed. */
        *result_class = AIMX_CLASS_TEMPORARY;
        *scope = o->host_wide ? AIMX_SCOPE_HOST : AIMX_SCOPE_ADDRESS;
        return;
    case AIMX_FAIL_LOCAL:
        if (o->invalid) {
            /* An address SMTP cannot carry never will. */
            *result_class = AIMX_CLASS_PERMANENT;
            *scope = o->phase == AIMX_PHASE_RCPT ? AIMX_SCOPE_RECIPIENT
                                                 : AIMX_SCOPE_MESSAGE;
        } else {
            /* Before a transaction it is about the connection. */
            *result_class = AIMX_CLASS_TEMPORARY;
            *scope = o->phase == AIMX_PHASE_CONNECT ||
                             o->phase == AIMX_PHASE_STARTTLS
                         ? AIMX_SCOPE_ADDRESS
                         : AIMX_SCOPE_MESSAGE;
        }
        return;
    default:
        /* Refused, timeout, lost, aborted, protocol. */
        *result_class = AIMX_CLASS_TEMPORARY;
        if (o->after_dot) {
            /* RFC 5321 4.5.3.2.6: the server may have taken it; a retry
             * may duplicate it, and the core must know. */
            *scope = AIMX_SCOPE_MESSAGE;
            *flags = AIMX_RESULT_MAYBE_DELIVERED;
        } else {
            *scope = AIMX_SCOPE_ADDRESS;
        }
        return;
    }
}

static void
fill_result(aimx_transport_result *res, const struct smtp_outcome *o,
            uint32_t result_class, uint32_t scope, uint32_t flags,
            const struct smtp_session *s)
{
    res->result_class = result_class;
    res->scope = scope;
    res->phase = o->phase;
    res->kind = o->kind;
    res->flags = flags;
    res->code = o->code;
    copy_text(res->enhanced, sizeof res->enhanced, o->enhanced);
    copy_text(res->reply, sizeof res->reply, o->text);
    res->tls_version[0] = '\0';
    res->tls_cipher[0] = '\0';
    if (s->tls) {
        /* The session's, on every result of it (open, send, probe). */
        res->flags |= AIMX_RESULT_TLS;
        if (s->facts.verified)
            res->flags |= AIMX_RESULT_TLS_VERIFIED;
        copy_text(res->tls_version, sizeof res->tls_version, s->facts.version);
        copy_text(res->tls_cipher, sizeof res->tls_cipher, s->facts.cipher);
    }
    res->local = s->conn.local;
    res->local_port = s->conn.local_port;
    res->remote = s->conn.remote;
    res->remote_port = s->conn.remote_port;
    res->connected_us = s->connected_us;
    res->end_us = s->api->monotonic_us(s->host);
}

/* Appends one connect attempt to the host's array (arg is the result). */
static void
on_attempt(void *arg, const aimx_connect_attempt *a)
{
    aimx_transport_result *res = arg;
    aimx_connect_attempt *el;
    uint32_t size;

    if (!res->attempts || res->attempt_count >= res->attempt_cap ||
        res->attempt_stride < sizeof *el)
        return;
    el = AIMX_ATTEMPT_AT(res, res->attempt_count);
    size = el->struct_size ? el->struct_size : (uint32_t)sizeof *el;
    if (size < sizeof *el)
        return;
    /* Every field of ours, the host's struct_size kept. */
    memcpy((char *)el + sizeof el->struct_size,
           (const char *)a + sizeof a->struct_size,
           sizeof *el - sizeof el->struct_size);
    el->struct_size = size;
    res->attempt_count++;
}

/* One recipient's fate into the host's array, and into the tally. */
static void
on_rcpt(void *arg, size_t index, const struct smtp_outcome *o, int shared)
{
    struct send_tally *t = arg;
    aimx_transport_result *res = t->res;
    aimx_rcpt_result *el;
    uint32_t cls, scope, flags;

    classify(o, &cls, &scope, &flags);
    if (cls == AIMX_CLASS_OK) {
        t->ok++;
    } else {
        if (!t->have_first) {
            t->first = *o;
            t->have_first = 1;
        }
        if (!shared)
            t->individual++;
        else if (cls == AIMX_CLASS_TEMPORARY)
            t->shared_temporary++;
        else
            t->shared_permanent++;
        if (cls == AIMX_CLASS_TEMPORARY)
            t->temporary++;
    }
    if (!res->rcpts || index >= res->rcpt_count ||
        res->rcpt_stride < sizeof *el)
        return;
    el = AIMX_RCPT_AT(res, index);
    if (el->struct_size == 0)
        el->struct_size = (uint32_t)sizeof *el;
    if (el->struct_size < sizeof *el)
        return;
    el->result_class = cls;
    el->phase = o->phase;
    el->code = o->code;
    /* Each transaction's fate is its recipients': with several on one
     * session, the core must know which ones may have been delivered. */
    el->flags = (uint16_t)flags;
    copy_text(el->enhanced, sizeof el->enhanced, o->enhanced);
    copy_text(el->reply, sizeof el->reply, o->text);
}

/* Server text goes to logs and JSON: printable ASCII only, bounded. */
static void
copy_text(char *dst, size_t size, const char *src)
{
    size_t i;

    for (i = 0; i + 1 < size && src[i]; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c >= 0x20 && c < 0x7f ? (char)c : (c == '\t' ? ' ' : '?');
    }
    if (size)
        dst[i] = '\0';
}

/* The host allocated the result: write only what lies below its size. */
static int
result_usable(const aimx_transport_result *res)
{
    return res->struct_size >= sizeof *res;
}

/* A reader may use only what lies below the writer's struct_size, and a
 * NULL slot means "not provided": check every service this plugin uses. */
static int
api_usable(const aimx_host_api *api)
{
    if (!api || api->struct_size < offsetof(aimx_host_api, msg_rewind) +
                                       sizeof api->msg_rewind)
        return 0;
    return api->log && api->cfg_string && api->cfg_int && api->cfg_duration &&
           api->cfg_error && api->alloc && api->free && api->monotonic_us &&
           api->msg_read;
}
