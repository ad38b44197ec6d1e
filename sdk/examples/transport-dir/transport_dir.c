/* SPDX-License-Identifier: MIT */
/*
 * transport-dir: an example aimx transport plugin that delivers into a
 * directory instead of talking SMTP.  Every message aimx would have sent to
 * an MX host becomes one file, <directory>/<unique>.eml: the message as it
 * would have gone on the wire (CRLF line endings, not dot-stuffed, the
 * DKIM signature included), preceded by a Return-Path: field with the
 * envelope sender and one Delivered-To: field per envelope recipient.
 * Useful to see what aimx sends, to feed another program, or as a dead end
 * on a test bench; meant above all to be read and copied:
 * docs/plugin-guide.md walks through it.
 *
 * The file is written under a hidden temporary name, flushed to disk and
 * then renamed, so that a program watching the directory never sees half
 * a message: every *.eml file there is complete.
 *
 * Settings (group `transport` of aimx.conf):
 *     directory = "/var/spool/aimx-out";   required, must exist
 */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, fsync() */

#include <aimx/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The plugin's own version, free text; `aimx plugins` prints it. */
#define DIR_VERSION "1.0.0"

/* ABI rule: a field beyond the writer's struct_size does not exist. */
#define HAS_FIELD(p, type, field)                                              \
    ((p)->struct_size >= offsetof(type, field) + sizeof((p)->field))
#define HAS_SERVICE(api, fn) (HAS_FIELD(api, aimx_host_api, fn) && (api)->fn)

/* The instance.  send() runs on several host threads at once, for
 * different sessions: the counter that makes file names unique is atomic,
 * everything else is read-only after create(). */
struct dir_transport {
    const aimx_host_api *api;
    aimx_host *host;
    char directory[4096];
    atomic_uint_fast64_t sequence;
};

/* A session stands for a connection; here it only remembers where the
 * host meant the mail to go. */
struct dir_session {
    aimx_addr remote;
};

static aimx_status dir_create(const aimx_host_api *api, aimx_host *host,
                              void **instance);
static void dir_destroy(void *instance);
static aimx_status dir_open(void *instance, const aimx_open_request *req,
                            aimx_session **session, aimx_transport_result *res);
static aimx_status dir_send(void *instance, aimx_session *session,
                            const aimx_envelope *env, aimx_msg *msg,
                            aimx_transport_result *res);
static void dir_close(void *instance, aimx_session *session,
                      uint64_t deadline_us);
static int write_all(int fd, const void *buf, size_t len);
static int write_message(struct dir_transport *self, int fd,
                         const aimx_envelope *env, aimx_msg *msg,
                         const char **what);
static int sync_directory(const char *directory);
static void settle(aimx_transport_result *res, size_t rcpt_count,
                   uint32_t result_class, uint32_t phase, uint16_t code,
                   const char *enhanced, const char *fmt, ...)
    AIMX_PRINTF(7, 8);

static const aimx_transport_ops dir_ops = {
    .struct_size = sizeof(aimx_transport_ops),
    /* Required: "connect" (nothing to do). */
    .open = dir_open,
    /* Required: the message, into one file. */
    .send = dir_send,
    /* Required: frees the session. */
    .close = dir_close,
    /* Optional: probe (no server to probe), abort (every call is short),
     * describe (no port, no source address). */
    .probe = NULL,
    .abort = NULL,
    .describe = NULL,
};

static const aimx_plugin_descriptor dir_descriptor = {
    .struct_size = sizeof(aimx_plugin_descriptor),
    .abi_major = AIMX_ABI_MAJOR,
    .abi_minor = AIMX_ABI_MINOR,
    .kind = AIMX_KIND_TRANSPORT,
    .name = "transport-dir", /* the file must be transport-dir.so */
    .version = DIR_VERSION,
    .description = "Example transport: writes each message into a directory",
    .create = dir_create,
    .destroy = dir_destroy,
    .transport = &dir_ops,
};

AIMX_PLUGIN_DEFINE(transport_dir, dir_descriptor);

static aimx_status
dir_create(const aimx_host_api *api, aimx_host *host, void **instance)
{
    struct dir_transport *self;
    const char *directory = NULL;
    struct stat st;
    aimx_status s;

    if (!instance || !api || !HAS_SERVICE(api, log))
        return AIMX_ERR_UNSUPPORTED;
    if (!HAS_SERVICE(api, cfg_string) || !HAS_SERVICE(api, cfg_error) ||
        !HAS_SERVICE(api, alloc) || !HAS_SERVICE(api, free) ||
        !HAS_SERVICE(api, monotonic_us) || !HAS_SERVICE(api, msg_read)) {
        api->log(host, AIMX_LOG_ERR, "the host lacks a service we need");
        return AIMX_ERR_UNSUPPORTED;
    }

    s = api->cfg_string(host, "directory", &directory);
    if (s == AIMX_ERR_NOT_FOUND)
        return api->cfg_error(host, NULL,
                              "transport-dir needs 'directory', where it "
                              "writes the messages");
    if (s != AIMX_OK)
        return s;
    /* Checked now, so that `aimx config check` catches it, not a send. */
    if (directory[0] != '/')
        return api->cfg_error(host, "directory", "'%s' is not an absolute path",
                              directory);
    if (strlen(directory) >= sizeof self->directory - 64)
        return api->cfg_error(host, "directory", "the path is too long");
    if (stat(directory, &st) != 0)
        return api->cfg_error(host, "directory", "%s: %s", directory,
                              strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return api->cfg_error(host, "directory", "%s is not a directory",
                              directory);
    if (access(directory, W_OK | X_OK) != 0)
        return api->cfg_error(host, "directory", "cannot write into %s: %s",
                              directory, strerror(errno));

    self = api->alloc(host, sizeof *self);
    if (!self) {
        api->log(host, AIMX_LOG_ERR, "out of memory");
        return AIMX_ERR_NOMEM;
    }
    self->api = api;
    self->host = host;
    snprintf(self->directory, sizeof self->directory, "%s", directory);
    atomic_init(&self->sequence, 0);
    *instance = self;
    return AIMX_OK;
}

static void
dir_destroy(void *instance)
{
    struct dir_transport *self = instance;

    if (self)
        self->api->free(self->host, self);
}

/*
 * open(): a real transport connects to req->addrs here, reads the greeting
 * and says EHLO.  We only note the first address, which the host reports
 * as where the mail went.  The result is host-owned and zeroed; we write
 * only fields below its struct_size.
 */
static aimx_status
dir_open(void *instance, const aimx_open_request *req, aimx_session **session,
         aimx_transport_result *res)
{
    struct dir_transport *self = instance;
    struct dir_session *sess;

    if (!self || !req || !session || !res ||
        !HAS_FIELD(req, aimx_open_request, addr_count) ||
        !HAS_FIELD(res, aimx_transport_result, end_us))
        return AIMX_ERR_INVALID;
    sess = self->api->alloc(self->host, sizeof *sess);
    if (!sess)
        return AIMX_ERR_NOMEM; /* the host tries again later */
    if (req->addr_count > 0 && req->addrs)
        sess->remote = req->addrs[0];
    res->result_class = AIMX_CLASS_OK;
    res->scope = AIMX_SCOPE_NONE;
    res->phase = AIMX_PHASE_NONE;
    res->kind = AIMX_FAIL_NONE;
    res->remote = sess->remote;
    res->start_us = res->connected_us = res->end_us =
        self->api->monotonic_us(self->host);
    *session = (aimx_session *)sess;
    return AIMX_OK;
}

/*
 * send(): one file per call, for every recipient of env.  The result
 * says, for the whole call and per recipient, what a server's reply would
 * have said: 250 when the file is in place, a temporary local failure when
 * it could not be written (the host then reports the recipients deferred,
 * for the caller to try again).  A status other than AIMX_OK would mean
 * that the call itself was wrong.
 */
static aimx_status
dir_send(void *instance, aimx_session *session, const aimx_envelope *env,
         aimx_msg *msg, aimx_transport_result *res)
{
    struct dir_transport *self = instance;
    char name[96], tmp[4200], final[4200];
    const char *what = NULL, *path = tmp;
    int fd, err = 0;
    size_t i;

    if (!self || !session || !env || !msg || !res ||
        !HAS_FIELD(env, aimx_envelope, rcpt_count) ||
        !HAS_FIELD(res, aimx_transport_result, rcpt_count) ||
        res->rcpt_count != env->rcpt_count)
        return AIMX_ERR_INVALID;
    res->start_us = self->api->monotonic_us(self->host);

    /* aimx checked the addresses before anything was sent; a line break in
     * one would still forge a header field here, so check, not trust. */
    for (i = 0; i <= env->rcpt_count; i++) {
        const char *a = i < env->rcpt_count ? env->rcpts[i] : env->sender;
        if (strpbrk(a, "\r\n")) {
            res->kind = AIMX_FAIL_LOCAL;
            res->scope = AIMX_SCOPE_MESSAGE;
            settle(res, env->rcpt_count, AIMX_CLASS_PERMANENT, AIMX_PHASE_MAIL,
                   0, "5.1.3", "an envelope address holds a line break");
            return AIMX_OK;
        }
    }

    /* Unique across processes (the pid) and threads (the counter). */
    snprintf(name, sizeof name, "%lld.%ld.%llu", (long long)time(NULL),
             (long)getpid(),
             (unsigned long long)atomic_fetch_add(&self->sequence, 1));
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", self->directory, name);
    snprintf(final, sizeof final, "%s/%s.eml", self->directory, name);

    /* Each step runs only if every one before it worked; the first
     * failure is the one reported. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = errno;
        what = "create";
    } else {
        err = write_message(self, fd, env, msg, &what);
        if (!err && fsync(fd) != 0) {
            err = errno;
            what = "flush";
        }
        if (close(fd) != 0 && !err) {
            err = errno;
            what = "close";
        }
        if (!err && rename(tmp, final) != 0) {
            err = errno;
            what = "rename";
        }
        if (err)
            unlink(tmp); /* no half message left behind */
        else if (sync_directory(self->directory) != 0) {
            err = errno;
            what = "flush the directory entry of";
            path = final;
        }
    }
    res->end_us = self->api->monotonic_us(self->host);

    if (err) {
        /* Our failure, not the recipients': temporary, for the whole
         * message.  The reply names the step, the file and the reason. */
        res->kind = AIMX_FAIL_LOCAL;
        res->scope = AIMX_SCOPE_MESSAGE;
        settle(res, env->rcpt_count, AIMX_CLASS_TEMPORARY, AIMX_PHASE_BODY, 0,
               "4.3.0", "cannot %s %s: %s", what, path,
               err > 0 ? strerror(err) : "the host could not read the message");
        return AIMX_OK;
    }
    res->kind = AIMX_FAIL_NONE;
    res->scope = AIMX_SCOPE_NONE;
    settle(res, env->rcpt_count, AIMX_CLASS_OK, AIMX_PHASE_DOT, 250, "2.0.0",
           "saved as %s", final);
    return AIMX_OK;
}

/* A real transport says QUIT here, bounded by deadline_us; always frees. */
static void
dir_close(void *instance, aimx_session *session, uint64_t deadline_us)
{
    struct dir_transport *self = instance;

    (void)deadline_us;
    if (self && session)
        self->api->free(self->host, session);
}

/*
 * The envelope as header fields, then the message as the host gives it.
 * Returns 0, an errno value when writing failed, or -1 when the host could
 * not read the message; *what names the step that failed.
 */
static int
write_message(struct dir_transport *self, int fd, const aimx_envelope *env,
              aimx_msg *msg, const char **what)
{
    char buf[65536];
    int64_t n;
    size_t i;

    *what = "write";
    n = snprintf(buf, sizeof buf, "Return-Path: <%s>\r\n", env->sender);
    if (n < 0 || (size_t)n >= sizeof buf)
        return ENAMETOOLONG;
    if (write_all(fd, buf, (size_t)n) != 0)
        return errno;
    for (i = 0; i < env->rcpt_count; i++) {
        n = snprintf(buf, sizeof buf, "Delivered-To: %s\r\n", env->rcpts[i]);
        if (n < 0 || (size_t)n >= sizeof buf)
            return ENAMETOOLONG;
        if (write_all(fd, buf, (size_t)n) != 0)
            return errno;
    }
    /* msg_read() gives the canonical message: > 0 octets, 0 at the end, a
     * negated aimx_status on failure.  It may return less than asked. */
    while ((n = self->api->msg_read(msg, buf, sizeof buf)) > 0)
        if (write_all(fd, buf, (size_t)n) != 0)
            return errno;
    if (n < 0) {
        *what = "read the message into";
        return -1;
    }
    return 0;
}

static int
write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* After a rename, the directory entry itself must reach the disk too. */
static int
sync_directory(const char *directory)
{
    int fd = open(directory, O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/*
 * Fills in the call's result and every recipient's.  The host sized the
 * per-recipient array and set each element's struct_size; AIMX_RCPT_AT()
 * steps by the host's stride, which may exceed our sizeof.
 */
static void
settle(aimx_transport_result *res, size_t rcpt_count, uint32_t result_class,
       uint32_t phase, uint16_t code, const char *enhanced, const char *fmt,
       ...)
{
    va_list ap;
    size_t i;

    res->result_class = result_class;
    res->phase = phase;
    res->code = code;
    snprintf(res->enhanced, sizeof res->enhanced, "%s", enhanced);
    va_start(ap, fmt);
    vsnprintf(res->reply, sizeof res->reply, fmt, ap);
    va_end(ap);
    for (i = 0; i < rcpt_count && res->rcpts; i++) {
        aimx_rcpt_result *r = AIMX_RCPT_AT(res, i);
        if (!HAS_FIELD(r, aimx_rcpt_result, flags))
            continue;
        r->result_class = result_class;
        r->phase = phase;
        r->code = code;
        snprintf(r->enhanced, sizeof r->enhanced, "%s", enhanced);
        /* Bounded: the per-recipient reply is shorter than the call's. */
        snprintf(r->reply, sizeof r->reply, "%.*s", (int)sizeof r->reply - 1,
                 res->reply);
    }
}
