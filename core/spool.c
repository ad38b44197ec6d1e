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
#include <sys/uio.h>
#include <unistd.h>

#if defined(__SSE2__) && !defined(AIMX_SPOOL_NO_SIMD)
#include <emmintrin.h>
#endif

/* The file is written OUT_SIZE octets at a time at offsets that are
 * multiples of it (but for the last write): the page cache then holds it
 * in large folios, cheaper to fill, read and drop than unaligned pieces. */
#define OUT_SIZE 262144

static const char *const field_names[AIMX_F_COUNT] = {
    "from",       "to",           "cc",           "reply-to",
    "subject",    "date",         "message-id",   "in-reply-to",
    "references", "mime-version", "content-type", "bcc"};

static int fail(aimx_spool *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int io_code(int err);
static void emit(aimx_spool *s, const void *data, size_t len);
static int write_out(aimx_spool *s, const char *data, size_t len);
static int flush_out(aimx_spool *s);
static const char *scan_line(const char *p, const char *end, int *high);
static const char *body_run(aimx_spool *s, const char *p, const char *end);
static void end_field(aimx_spool *s);
static int start_field(aimx_spool *s, const char *line, size_t len);
static void keep_value(aimx_spool *s, const char *data, size_t len);
static int process_line(aimx_spool *s, const char *line, size_t len);
static int pio_full(int fd, char *buf, size_t len, uint64_t off, int writing);

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

/* The write buffer, then len octets of data, in one writev() when the
 * file takes them. */
static int
write_out(aimx_spool *s, const char *data, size_t len)
{
    struct iovec iov[2];
    int i = 0, cnt = 2;

    iov[0].iov_base = s->out;
    iov[0].iov_len = s->out_len;
    iov[1].iov_base = (void *)(uintptr_t)data;
    iov[1].iov_len = len;
    while (i < cnt) {
        ssize_t n;

        if (iov[i].iov_len == 0) {
            i++;
            continue;
        }
        n = writev(s->fd, iov + i, cnt - i);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            s->out_len = 0;
            return fail(s, io_code(e), "cannot write the spool file: %s",
                        strerror(e));
        }
        for (; i < cnt && (size_t)n >= iov[i].iov_len; i++)
            n -= (ssize_t)iov[i].iov_len;
        if (i < cnt) {
            iov[i].iov_base = (char *)iov[i].iov_base + n;
            iov[i].iov_len -= (size_t)n;
        }
    }
    s->out_len = 0;
    return 0;
}

static int
flush_out(aimx_spool *s)
{
    return write_out(s, NULL, 0);
}

/* Appends to the file through the write buffer.  What completes the
 * buffer goes out with it straight from data, as do the whole OUT_SIZE
 * pieces after that; only the rest is copied. */
static void
emit(aimx_spool *s, const void *data, size_t len)
{
    size_t room = OUT_SIZE - s->out_len, direct;

    if (len >= room) {
        direct = room + (len - room) / OUT_SIZE * OUT_SIZE;
        if (write_out(s, data, direct) != 0)
            return;
        s->size += direct;
        data = (const char *)data + direct;
        len -= direct;
    }
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

/* The first NUL, CR or LF in [p, end), or end; *high set if an octet
 * >= 0x80 comes before it. */
static const char *
scan_line(const char *p, const char *end, int *high)
{
#if defined(__SSE2__) && !defined(AIMX_SPOOL_NO_SIMD)
    const __m128i nul = _mm_setzero_si128(), cr = _mm_set1_epi8('\r'),
                  lf = _mm_set1_epi8('\n');
    unsigned hi = 0;

    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, nul), _mm_cmpeq_epi8(v, cr)),
            _mm_cmpeq_epi8(v, lf)));
        unsigned h = (unsigned)_mm_movemask_epi8(v);

        if (m != 0) {
            /* Only the octets before the first one found. */
            if ((hi | (h & ((m & -m) - 1))) != 0)
                *high = 1;
            return p + __builtin_ctz(m);
        }
        hi |= h;
        p += 16;
    }
    if (hi != 0)
        *high = 1;
#endif
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == '\0' || c == '\r' || c == '\n')
            break;
        if (c >= 0x80)
            *high = 1;
    }
    return p;
}

static int
process_line(aimx_spool *s, const char *line, size_t len)
{
    int high = 0;

    s->lines++;
    /* One pass finds the 8-bit octets and whether there is anything to
     * complain about; the complaint is then made as it always was. */
    if (scan_line(line, line + len, &high) != line + len) {
        if (memchr(line, '\0', len) != NULL)
            return fail(s, AIMX_EXIT_DATAERR, "line %llu contains a NUL octet",
                        (unsigned long long)s->lines);
        if (memchr(line, '\r', len) != NULL)
            return fail(s, AIMX_EXIT_DATAERR,
                        "line %llu contains a bare CR (a carriage return "
                        "not followed by a line feed)",
                        (unsigned long long)s->lines);
    }
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

/*
 * In the body, whole lines already in canonical form (CRLF, no NUL or bare
 * CR, at most 998 octets) need nothing but the checks: a run of them goes
 * to the body hash and the file in one piece, straight from the input.
 * Returns where the run stops: end, or the start of a line for
 * process_line() (an LF alone, a line too long or with something to
 * complain about, or one that the input does not hold whole).
 */
static const char *
body_run(aimx_spool *s, const char *p, const char *end)
{
    const char *start = p, *q;
    uint64_t lines = 0;
    int high;

    while (p < end) {
        high = 0;
        q = scan_line(p, end, &high);
        if (q == end || *q != '\r' || end - q < 2 || q[1] != '\n' ||
            q - p > AIMX_SPOOL_LINE_MAX)
            break;
        if (high) {
            s->eightbit = 1;
            if (s->utf8 && !aimx__utf8_valid(p, (size_t)(q - p)))
                s->utf8 = 0;
        }
        lines++;
        p = q + 2;
    }
    if (p == start)
        return p;
    s->lines += lines;
    if (s->hashing)
        aimx__dkim_bodyhash_feed(&s->bh, start, (size_t)(p - start));
    emit(s, start, (size_t)(p - start));
    return p;
}

int
aimx__spool_write(aimx_spool *s, const void *data, size_t len)
{
    const char *p = data, *end = p + len;

    while (p < end && !s->error) {
        const char *lf;
        size_t n;

        if (s->state == 2 && s->line_len == 0) {
            p = body_run(s, p, end);
            if (p == end || s->error)
                break;
        }
        lf = memchr(p, '\n', (size_t)(end - p));
        n = (size_t)((lf ? lf : end) - p);
        /* 998 octets and a CR that the next LF may still pair with. */
        if (s->line_len + n > AIMX_SPOOL_LINE_MAX + 1)
            return fail(s, AIMX_EXIT_DATAERR,
                        "line %llu is longer than %d octets (RFC 5322 "
                        "2.1.1): wrap it, or send the data as an attachment",
                        (unsigned long long)s->lines + 1, AIMX_SPOOL_LINE_MAX);
        if (lf != NULL && s->line_len == 0) {
            /* The whole line is in the input: no copy. */
            if (n > 0 && p[n - 1] == '\r')
                n--;
            if (n > AIMX_SPOOL_LINE_MAX)
                return fail(s, AIMX_EXIT_DATAERR,
                            "line %llu is longer than %d octets (RFC 5322 "
                            "2.1.1): wrap it, or send the data as an "
                            "attachment",
                            (unsigned long long)s->lines + 1,
                            AIMX_SPOOL_LINE_MAX);
            process_line(s, p, n);
            p = lf + 1;
            continue;
        }
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

/* Reads or writes exactly len octets at off; -1 with errno set. */
static int
pio_full(int fd, char *buf, size_t len, uint64_t off, int writing)
{
    while (len > 0) {
        ssize_t n = writing ? pwrite(fd, buf, len, (off_t)off)
                            : pread(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO; /* the spool is shorter than it was */
            return -1;
        }
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/*
 * In place: the spool moves len octets towards the end, from its end
 * backwards so that nothing is overwritten before it has been read, in
 * pieces written at multiples of OUT_SIZE like the spool itself; then the
 * header goes in front.  The page cache already holds the spool: nothing
 * new to allocate, and no second file to fill and drop.
 */
int
aimx__spool_prepend(aimx_spool *s, const char *dir, const char *header,
                    size_t len)
{
    uint64_t d0, d1 = s->size + len;
    int e;

    (void)dir;
    if (flush_out(s) != 0)
        return s->error;
    while (d1 > len) {
        d0 = (d1 - 1) / OUT_SIZE * OUT_SIZE;
        if (d0 < len)
            d0 = len;
        if (pio_full(s->fd, s->out, (size_t)(d1 - d0), d0 - len, 0) != 0 ||
            pio_full(s->fd, s->out, (size_t)(d1 - d0), d0, 1) != 0)
            goto failed;
        d1 = d0;
    }
    if (pio_full(s->fd, (char *)(uintptr_t)header, len, 0, 1) != 0)
        goto failed;
    s->size += len;
    return 0;
failed:
    e = errno;
    return fail(s, io_code(e), "cannot write the spool file: %s", strerror(e));
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
