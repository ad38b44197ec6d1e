/* SPDX-License-Identifier: MIT */
#include "spool.h"

#include "exitcodes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_SIZE 65536

static const char *const field_names[AIMX_F_COUNT] = {
    "from",       "to",           "cc",           "reply-to",
    "subject",    "date",         "message-id",   "in-reply-to",
    "references", "mime-version", "content-type", "bcc"};

static int fail(aimx_spool *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int io_code(int err);
static void emit(aimx_spool *s, const void *data, size_t len);
static int flush_out(aimx_spool *s);
static void end_field(aimx_spool *s);
static int start_field(aimx_spool *s, const char *line, size_t len);
static void keep_value(aimx_spool *s, const char *data, size_t len);
static int process_line(aimx_spool *s, const char *line, size_t len);
static int copy_range(int from, int to, uint64_t to_offset, uint64_t len);

static int
fail(aimx_spool *s, int code, const char *fmt, ...)
{
    va_list ap;

    if (s->error)
        return s->error;
    va_start(ap, fmt);
    vsnprintf(s->message, sizeof s->message, fmt, ap);
    va_end(ap);
    s->error = code;
    return code;
}

/* A full disk may empty again (75); anything else needs a person (73). */
static int
io_code(int err)
{
    return err == ENOSPC || err == EDQUOT || err == EIO ? AIMX_EXIT_TEMPFAIL
                                                        : AIMX_EXIT_CANTCREAT;
}

int
aimx__spool_tmpfile(const char *dir, int *code, char *err, size_t errlen)
{
    /* O_EXCL: the file can never be given a name with linkat(). */
    int fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);

    if (fd >= 0)
        return fd;
    switch (errno) {
    case ENOENT:
    case ENOTDIR:
        *code = AIMX_EXIT_CONFIG;
        snprintf(err, errlen,
                 "spool_dir %s is not a directory (%s): create it or set "
                 "'spool_dir' in the configuration",
                 dir, strerror(errno));
        break;
    case EACCES:
    case EPERM:
    case EROFS:
        *code = AIMX_EXIT_CONFIG;
        snprintf(err, errlen,
                 "cannot create a spool file in spool_dir %s: %s: give the "
                 "user aimx runs as write access, or set 'spool_dir'",
                 dir, strerror(errno));
        break;
    case EOPNOTSUPP:
    case EISDIR:
    case EINVAL:
        *code = AIMX_EXIT_CONFIG;
        snprintf(err, errlen,
                 "spool_dir %s is on a file system without unnamed files "
                 "(O_TMPFILE: %s); choose a directory on ext4, xfs, btrfs "
                 "or tmpfs",
                 dir, strerror(errno));
        break;
    default:
        *code = io_code(errno);
        snprintf(err, errlen, "cannot create a spool file in %s: %s", dir,
                 strerror(errno));
    }
    return -1;
}

int
aimx__spool_open(aimx_spool *s, const char *dir, unsigned flags)
{
    int code = 0;

    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->field = -1;
    s->utf8 = 1;
    s->flags = flags;
    s->out = malloc(OUT_SIZE);
    if (s->out == NULL)
        return fail(s, AIMX_EXIT_SOFTWARE, "out of memory");
    if (flags & AIMX_SPOOL_BODY_HASH) {
        if (aimx__dkim_bodyhash_init(&s->bh) != 0)
            return fail(s, AIMX_EXIT_SOFTWARE,
                        "cannot start the DKIM body hash");
        s->hashing = 1;
    }
    s->fd = aimx__spool_tmpfile(dir, &code, s->message, sizeof s->message);
    if (s->fd < 0) {
        s->error = code;
        return code;
    }
    return 0;
}

static int
flush_out(aimx_spool *s)
{
    size_t done = 0;

    while (done < s->out_len) {
        ssize_t n = write(s->fd, s->out + done, s->out_len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            s->out_len = 0;
            return fail(s, io_code(e), "cannot write the spool file: %s",
                        strerror(e));
        }
        done += (size_t)n;
    }
    s->out_len = 0;
    return 0;
}

static void
emit(aimx_spool *s, const void *data, size_t len)
{
    if (s->out_len + len > OUT_SIZE && flush_out(s) != 0)
        return;
    memcpy(s->out + s->out_len, data, len);
    s->out_len += len;
    s->size += len;
}

static void
keep_value(aimx_spool *s, const char *data, size_t len)
{
    aimx_buf *b = &s->value[s->field];

    if (b->len + len > AIMX_SPOOL_VALUE_MAX) {
        fail(s, AIMX_EXIT_DATAERR,
             "the %s header fields are longer than %d octets in all "
             "(line %llu)",
             field_names[s->field], AIMX_SPOOL_VALUE_MAX,
             (unsigned long long)s->lines);
        return;
    }
    aimx__buf_add(b, data, len);
    if (b->oom)
        fail(s, AIMX_EXIT_SOFTWARE, "out of memory");
}

static int
kept(const aimx_spool *s, int field)
{
    return field == AIMX_F_FROM || field == AIMX_F_MESSAGE_ID ||
           ((s->flags & AIMX_SPOOL_COLLECT_RCPT) &&
            (field == AIMX_F_TO || field == AIMX_F_CC || field == AIMX_F_BCC));
}

static void
end_field(aimx_spool *s)
{
    if (s->field >= 0 && s->field < AIMX_F_SIGNED && !s->dropping) {
        aimx_spool_seen *seen = &s->seen[s->field];
        unsigned slot = seen->count % AIMX_SPOOL_KEEP;
        seen->offset[slot] = s->field_start;
        seen->len[slot] = s->size - s->field_start - 2;
        seen->count++;
    }
    s->field = -1;
    s->dropping = 0;
}

/* "Name: value" (RFC 5322 2.2; white space before the colon is the
 * obsolete syntax, still accepted). */
static int
start_field(aimx_spool *s, const char *line, size_t len)
{
    size_t n = 0, name_len;

    while (n < len && line[n] != ':' && line[n] != ' ' && line[n] != '\t' &&
           (unsigned char)line[n] >= 33 && (unsigned char)line[n] <= 126)
        n++;
    name_len = n;
    while (n < len && (line[n] == ' ' || line[n] == '\t'))
        n++;
    if (name_len == 0 || n >= len || line[n] != ':')
        return fail(s, AIMX_EXIT_DATAERR,
                    "line %llu is not a header field (\"Name: value\") and "
                    "no empty line before it ends the header section",
                    (unsigned long long)s->lines);
    s->field = -1;
    for (int i = 0; i < AIMX_F_COUNT; i++)
        if (strlen(field_names[i]) == name_len &&
            strncasecmp(line, field_names[i], name_len) == 0)
            s->field = i;
    s->dropping = s->field == AIMX_F_BCC && (s->flags & AIMX_SPOOL_DROP_BCC);
    s->field_start = s->size;
    if (s->field >= 0 && kept(s, s->field)) {
        if (s->has_value[s->field])
            keep_value(s, ", ", 2);
        s->has_value[s->field] = 1;
        keep_value(s, line + n + 1, len - n - 1);
    }
    return s->error;
}

static int
process_line(aimx_spool *s, const char *line, size_t len)
{
    int high = 0;

    s->lines++;
    if (memchr(line, '\0', len) != NULL)
        return fail(s, AIMX_EXIT_DATAERR, "line %llu contains a NUL octet",
                    (unsigned long long)s->lines);
    if (memchr(line, '\r', len) != NULL)
        return fail(s, AIMX_EXIT_DATAERR,
                    "line %llu contains a bare CR (a carriage return not "
                    "followed by a line feed)",
                    (unsigned long long)s->lines);
    for (size_t i = 0; i < len && !high; i++)
        high = (unsigned char)line[i] >= 0x80;
    if (high) {
        s->eightbit = 1;
        if (s->state < 2)
            s->header_8bit = 1;
        if (s->utf8 && !aimx__utf8_valid(line, len))
            s->utf8 = 0;
    }

    switch (s->state) {
    case 0:
        if (len == 0)
            return fail(s, AIMX_EXIT_DATAERR,
                        "the message has no header section: line 1 is "
                        "empty");
        if (line[0] == ' ' || line[0] == '\t')
            return fail(s, AIMX_EXIT_DATAERR,
                        "the message has no header section: line 1 starts "
                        "with white space");
        s->state = 1;
        if (start_field(s, line, len) != 0)
            return s->error;
        break;
    case 1:
        if (len == 0) {
            end_field(s);
            s->state = 2;
            emit(s, "\r\n", 2);
            return s->error;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            if (s->field >= 0 && kept(s, s->field))
                keep_value(s, line, len);
        } else {
            end_field(s);
            if (start_field(s, line, len) != 0)
                return s->error;
        }
        if (s->dropping)
            return s->error;
        break;
    default:
        if (s->hashing) {
            aimx__dkim_bodyhash_feed(&s->bh, line, len);
            aimx__dkim_bodyhash_feed(&s->bh, "\r\n", 2);
        }
    }
    emit(s, line, len);
    emit(s, "\r\n", 2);
    return s->error;
}

int
aimx__spool_write(aimx_spool *s, const void *data, size_t len)
{
    const char *p = data, *end = p + len;

    while (p < end && !s->error) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((lf ? lf : end) - p);

        /* 998 octets and a CR that the next LF may still pair with. */
        if (s->line_len + n > AIMX_SPOOL_LINE_MAX + 1)
            return fail(s, AIMX_EXIT_DATAERR,
                        "line %llu is longer than %d octets (RFC 5322 "
                        "2.1.1): wrap it, or send the data as an attachment",
                        (unsigned long long)s->lines + 1, AIMX_SPOOL_LINE_MAX);
        memcpy(s->line + s->line_len, p, n);
        s->line_len += n;
        if (lf == NULL)
            break;
        if (s->line_len > 0 && s->line[s->line_len - 1] == '\r')
            s->line_len--;
        if (s->line_len > AIMX_SPOOL_LINE_MAX)
            return fail(s, AIMX_EXIT_DATAERR,
                        "line %llu is longer than %d octets (RFC 5322 "
                        "2.1.1): wrap it, or send the data as an attachment",
                        (unsigned long long)s->lines + 1, AIMX_SPOOL_LINE_MAX);
        process_line(s, s->line, s->line_len);
        s->line_len = 0;
        p = lf + 1;
    }
    return s->error;
}

void
aimx__spool_sink(void *arg, const char *data, size_t len)
{
    aimx__spool_write(arg, data, len);
}

int
aimx__spool_finish(aimx_spool *s)
{
    if (s->error)
        return s->error;
    /* A last line without a line break gets one. */
    if (s->line_len > 0) {
        if (s->line_len > AIMX_SPOOL_LINE_MAX)
            return fail(s, AIMX_EXIT_DATAERR,
                        "line %llu is longer than %d octets (RFC 5322 "
                        "2.1.1): wrap it, or send the data as an attachment",
                        (unsigned long long)s->lines + 1, AIMX_SPOOL_LINE_MAX);
        if (process_line(s, s->line, s->line_len) != 0)
            return s->error;
        s->line_len = 0;
    }
    if (s->state == 0)
        return fail(s, AIMX_EXIT_DATAERR,
                    "the message is empty: it needs at least a header "
                    "section");
    end_field(s);
    for (int i = 0; i < AIMX_F_COUNT; i++)
        if (s->value[i].oom)
            return fail(s, AIMX_EXIT_SOFTWARE, "out of memory");
    if (flush_out(s) != 0)
        return s->error;
    if (s->hashing && aimx__dkim_bodyhash_final(&s->bh) != 0)
        return fail(s, AIMX_EXIT_SOFTWARE, "cannot compute the body hash");
    return 0;
}

const char *
aimx__spool_value(const aimx_spool *s, int field)
{
    if (field < 0 || field >= AIMX_F_COUNT || !s->has_value[field])
        return NULL;
    return s->value[field].p ? s->value[field].p : "";
}

size_t
aimx__spool_signed_fields(const aimx_spool *s, aimx_dkim_field *out)
{
    size_t n = 0;

    for (int f = 0; f < AIMX_F_SIGNED; f++) {
        const aimx_spool_seen *seen = &s->seen[f];
        unsigned have =
            seen->count < AIMX_SPOOL_KEEP ? seen->count : AIMX_SPOOL_KEEP;
        /* Bottom-most first, the order in which verifiers take them. */
        for (unsigned k = 0; k < have; k++) {
            unsigned slot = (seen->count - 1 - k) % AIMX_SPOOL_KEEP;
            out[n].name = field_names[f];
            out[n].offset = seen->offset[slot];
            out[n].len = seen->len[slot];
            n++;
        }
    }
    return n;
}

/* The kernel copies (copy_file_range); a plain read/write loop through a
 * small buffer where it cannot. */
static int
copy_range(int from, int to, uint64_t to_offset, uint64_t len)
{
    loff_t in = 0, out = (loff_t)to_offset;
    uint64_t left = len;
    char buf[65536];

    while (left > 0) {
        ssize_t n = copy_file_range(from, &in, to, &out,
                                    left > (1u << 30) ? (1u << 30) : left, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EXDEV || errno == ENOSYS ||
                      errno == EOPNOTSUPP || errno == EINVAL))
            break;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO; /* the spool is shorter than it was */
            return -1;
        }
        left -= (uint64_t)n;
    }
    while (left > 0) {
        ssize_t r = pread(from, buf, left < sizeof buf ? left : sizeof buf, in);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        for (ssize_t w = 0; w < r;) {
            ssize_t k = pwrite(to, buf + w, (size_t)(r - w), out);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return -1;
            w += k;
            out += k;
        }
        in += r;
        left -= (uint64_t)r;
    }
    return 0;
}

int
aimx__spool_prepend(aimx_spool *s, const char *dir, const char *header,
                    size_t len)
{
    int code = 0, fd;
    size_t done = 0;

    fd = aimx__spool_tmpfile(dir, &code, s->message, sizeof s->message);
    if (fd < 0) {
        s->error = code;
        return code;
    }
    while (done < len) {
        ssize_t n = pwrite(fd, header + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto failed;
        done += (size_t)n;
    }
    if (copy_range(s->fd, fd, len, s->size) != 0)
        goto failed;
    close(s->fd);
    s->fd = fd;
    s->size += len;
    return 0;
failed:
    code = errno;
    close(fd);
    return fail(s, io_code(code), "cannot write the spool file: %s",
                strerror(code));
}

void
aimx__spool_close(aimx_spool *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->out);
    s->out = NULL;
    if (s->hashing)
        aimx__dkim_bodyhash_free(&s->bh);
    s->hashing = 0;
    for (int i = 0; i < AIMX_F_COUNT; i++)
        aimx__buf_free(&s->value[i]);
}
