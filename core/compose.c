/* SPDX-License-Identifier: MIT */
#include "compose.h"

#include "exitcodes.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#define LINE_MAX_SOFT 78 /* RFC 5322 2.1.1: lines SHOULD stay within 78 */
#define WORD_BYTES    30 /* octets of text per encoded word: 52 characters */
#define PARAM_SEG     50 /* characters per RFC 2231 continuation */
#define PLAIN_WORD    70 /* a longer word cannot be folded below 78 */
#define IO_CHUNK      65536

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_block(const unsigned char *in, size_t n, char *out);
static size_t utf8_char_len(const unsigned char *p, size_t avail);
static int is_atext(unsigned char c);
static int is_dot_atom(const char *s, size_t len);
static int plain_phrase(const char *s);
static int plain_param(const char *s);
static int printable_ascii(const char *s);
static void qp_put(aimx_qp *q, const char *tok, size_t len);
static void qp_flush_ws(aimx_qp *q, int at_eol);
static void qp_eol(aimx_qp *q);
static void qp_octet(aimx_qp *q, unsigned char c);
static void random_hex(char *out, size_t bytes);
static int copy_body(const aimx_compose *c, aimx_sink_fn sink, void *arg,
                     char *err, size_t errlen);
static int copy_attachment(const aimx_attachment *a, aimx_sink_fn sink,
                           void *arg, char *err, size_t errlen);

void
aimx__buf_add(aimx_buf *b, const char *s, size_t len)
{
    if (b->oom)
        return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (grown == NULL) {
            b->oom = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void
aimx__buf_str(aimx_buf *b, const char *s)
{
    aimx__buf_add(b, s, strlen(s));
}

void
aimx__buf_free(aimx_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- header fields ---------------------------------------------------- */

void
aimx__hdr_begin(aimx_hdr *h, aimx_buf *b, const char *name)
{
    h->b = b;
    aimx__buf_str(b, name);
    aimx__buf_str(b, ":");
    h->col = strlen(name) + 1;
    h->start = h->col;
}

void
aimx__hdr_token(aimx_hdr *h, const char *sep, const char *token, size_t len)
{
    size_t sl = strlen(sep);
    size_t keep = sl;

    while (keep > 0 && sep[keep - 1] == ' ')
        keep--;
    /* Folding puts CRLF before a space, so only a separator ending in one
     * may fold; and folding right after the field name gains nothing. */
    if (keep < sl && h->col + sl + len > LINE_MAX_SOFT && h->col > h->start) {
        aimx__buf_add(h->b, sep, keep);
        aimx__buf_add(h->b, "\r\n ", 3);
        h->col = 1;
    } else {
        aimx__buf_add(h->b, sep, sl);
        h->col += sl;
    }
    aimx__buf_add(h->b, token, len);
    h->col += len;
}

void
aimx__hdr_end(aimx_hdr *h)
{
    aimx__buf_add(h->b, "\r\n", 2);
    h->col = 0;
}

static void
b64_block(const unsigned char *in, size_t n, char *out)
{
    uint32_t v = (uint32_t)in[0] << 16;

    if (n > 1)
        v |= (uint32_t)in[1] << 8;
    if (n > 2)
        v |= in[2];
    out[0] = b64chars[(v >> 18) & 63];
    out[1] = b64chars[(v >> 12) & 63];
    out[2] = n > 1 ? b64chars[(v >> 6) & 63] : '=';
    out[3] = n > 2 ? b64chars[v & 63] : '=';
}

/* Length of the UTF-8 character at p, so encoded words and RFC 2231
 * segments never split one (RFC 2047 5); 1 for a stray octet. */
static size_t
utf8_char_len(const unsigned char *p, size_t avail)
{
    size_t n = 1;

    if (p[0] >= 0xc0 && p[0] < 0xe0)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] < 0xf0)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] < 0xf8)
        n = 4;
    if (n > avail)
        return 1;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 1;
    return n;
}

void
aimx__hdr_encoded_words(aimx_hdr *h, const char *sep, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t len = strlen(text), i = 0;
    int first = 1;

    while (i < len) {
        size_t n = 0;
        char word[96];
        size_t w = 0;

        while (i + n < len) {
            size_t c = utf8_char_len(p + i + n, len - i - n);
            if (n + c > WORD_BYTES && n > 0)
                break;
            n += c;
        }
        memcpy(word, "=?UTF-8?B?", 10);
        w = 10;
        for (size_t k = 0; k < n; k += 3) {
            b64_block(p + i + k, n - k < 3 ? n - k : 3, word + w);
            w += 4;
        }
        memcpy(word + w, "?=", 2);
        w += 2;
        aimx__hdr_token(h, first ? sep : " ", word, w);
        first = 0;
        i += n;
    }
}

void
aimx__hdr_unstructured(aimx_hdr *h, const char *text)
{
    int plain = strstr(text, "=?") == NULL;
    size_t word = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p && plain;
         p++) {
        if (*p == ' ') {
            word = 0;
            continue;
        }
        if ((*p < 0x20 && *p != '\t') || *p >= 0x7f || ++word > PLAIN_WORD)
            plain = 0;
    }
    if (!plain)
        aimx__hdr_encoded_words(h, " ", text);
    else
        aimx__hdr_words(h, text);
}

void
aimx__hdr_words(aimx_hdr *h, const char *text)
{
    /* Each space may become a fold; runs of spaces survive as empty
     * tokens. */
    const char *start = text;

    for (;;) {
        const char *sp = strchr(start, ' ');
        size_t n = sp ? (size_t)(sp - start) : strlen(start);
        aimx__hdr_token(h, " ", start, n);
        if (sp == NULL)
            break;
        start = sp + 1;
    }
}

/* Printable ASCII, spaces and tabs: text a header can carry as it is. */
static int
printable_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p >= 0x7f)
            return 0;
    return 1;
}

static int
plain_param(const char *s)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
            return 0;
    return n > 0 && n <= PARAM_SEG;
}

void
aimx__hdr_param(aimx_hdr *h, const char *name, const char *value)
{
    static const char attr_extra[] = "!#$&+-.^_`|~";
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)value;
    size_t len = strlen(value), i = 0;
    aimx_buf seg = {0};
    char head[96];
    unsigned part = 0;

    if (plain_param(value)) {
        aimx_buf t = {0};
        aimx__buf_str(&t, name);
        aimx__buf_str(&t, "=\"");
        aimx__buf_str(&t, value);
        aimx__buf_str(&t, "\"");
        if (!t.oom)
            aimx__hdr_token(h, "; ", t.p, t.len);
        aimx__buf_free(&t);
        return;
    }
    /* RFC 2231: percent-encoded UTF-8, cut into continuations between
     * characters so each piece decodes on its own. */
    do {
        size_t used = 0;
        seg.len = 0;
        if (part == 0)
            aimx__buf_str(&seg, "utf-8''");
        while (i < len) {
            size_t c = utf8_char_len(p + i, len - i);
            char enc[16];
            size_t el = 0;
            for (size_t k = 0; k < c; k++) {
                unsigned char o = p[i + k];
                if (isalnum(o) ||
                    (o < 0x80 && strchr(attr_extra, o) != NULL && o != '\0')) {
                    enc[el++] = (char)o;
                } else {
                    enc[el++] = '%';
                    enc[el++] = hex[o >> 4];
                    enc[el++] = hex[o & 15];
                }
            }
            if (used + el > PARAM_SEG && used > 0)
                break;
            aimx__buf_add(&seg, enc, el);
            used += el;
            i += c;
        }
        if (part == 0 && i >= len)
            snprintf(head, sizeof head, "%s*=", name);
        else
            snprintf(head, sizeof head, "%s*%u*=", name, part);
        aimx_buf t = {0};
        aimx__buf_str(&t, head);
        aimx__buf_add(&t, seg.p ? seg.p : "", seg.len);
        if (!t.oom)
            aimx__hdr_token(h, "; ", t.p, t.len);
        aimx__buf_free(&t);
        part++;
    } while (i < len);
    aimx__buf_free(&seg);
}

static int
is_atext(unsigned char c)
{
    return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* A display name that needs neither quotes nor encoding: atoms separated
 * by single spaces. */
static int
plain_phrase(const char *s)
{
    size_t word = 0;

    if (*s == '\0' || *s == ' ')
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == ' ') {
            if (p[1] == ' ' || p[1] == '\0')
                return 0;
            word = 0;
        } else if (!is_atext(*p) || ++word > PLAIN_WORD) {
            return 0;
        }
    }
    return 1;
}

void
aimx__hdr_mailboxes(aimx_hdr *h, const aimx_mailbox *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            aimx__buf_add(h->b, ",", 1);
            h->col++;
        }
        if (m[i].display != NULL && m[i].display[0] != '\0') {
            const char *d = m[i].display;
            if (plain_phrase(d)) {
                aimx__hdr_unstructured(h, d);
            } else if (printable_ascii(d) && strlen(d) <= PLAIN_WORD &&
                       strstr(d, "=?") == NULL) {
                aimx_buf q = {0};
                aimx__buf_add(&q, "\"", 1);
                for (const char *p = d; *p; p++) {
                    if (*p == '"' || *p == '\\')
                        aimx__buf_add(&q, "\\", 1);
                    aimx__buf_add(&q, p, 1);
                }
                aimx__buf_add(&q, "\"", 1);
                if (!q.oom)
                    aimx__hdr_token(h, " ", q.p, q.len);
                aimx__buf_free(&q);
            } else {
                aimx__hdr_encoded_words(h, " ", d);
            }
            aimx_buf a = {0};
            aimx__buf_add(&a, "<", 1);
            aimx__buf_str(&a, m[i].addr);
            aimx__buf_add(&a, ">", 1);
            if (!a.oom)
                aimx__hdr_token(h, " ", a.p, a.len);
            aimx__buf_free(&a);
        } else {
            aimx__hdr_token(h, " ", m[i].addr, strlen(m[i].addr));
        }
    }
}

/* ---- quoted-printable ------------------------------------------------- */

void
aimx__qp_init(aimx_qp *q, aimx_sink_fn out, void *arg)
{
    memset(q, 0, sizeof *q);
    q->out = out;
    q->arg = arg;
}

/* Lines stay at 76 octets: 75 encoded ones plus the soft break's '='. */
static void
qp_put(aimx_qp *q, const char *tok, size_t len)
{
    if (q->n + len > 75) {
        q->line[q->n++] = '=';
        q->line[q->n++] = '\r';
        q->line[q->n++] = '\n';
        q->out(q->arg, q->line, q->n);
        q->n = 0;
    }
    memcpy(q->line + q->n, tok, len);
    q->n += len;
}

static void
qp_octet(aimx_qp *q, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char enc[3] = {'=', hex[c >> 4], hex[c & 15]};

    if (c >= 33 && c <= 126 && c != '=')
        qp_put(q, (const char *)&c, 1);
    else
        qp_put(q, enc, 3);
}

/* White space is literal unless the line ends right after it (RFC 2045
 * 6.7 rule 3: transports may strip trailing white space). */
static void
qp_flush_ws(aimx_qp *q, int at_eol)
{
    char c = (char)q->ws;

    if (q->ws == 0)
        return;
    q->ws = 0;
    if (at_eol)
        qp_octet(q, (unsigned char)c);
    else
        qp_put(q, &c, 1);
}

static void
qp_eol(aimx_qp *q)
{
    qp_flush_ws(q, 1);
    q->line[q->n++] = '\r';
    q->line[q->n++] = '\n';
    q->out(q->arg, q->line, q->n);
    q->n = 0;
}

void
aimx__qp_feed(aimx_qp *q, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (q->cr) {
            q->cr = 0;
            if (c == '\n') {
                qp_eol(q);
                continue;
            }
            qp_flush_ws(q, 0);
            qp_octet(q, '\r');
        }
        if (c == '\r') {
            q->cr = 1;
        } else if (c == '\n') {
            qp_eol(q);
        } else if (c == ' ' || c == '\t') {
            qp_flush_ws(q, 0);
            q->ws = c;
        } else {
            qp_flush_ws(q, 0);
            qp_octet(q, c);
        }
    }
}

void
aimx__qp_end(aimx_qp *q)
{
    if (q->cr) {
        q->cr = 0;
        qp_flush_ws(q, 0);
        qp_octet(q, '\r');
    }
    if (q->n > 0 || q->ws)
        qp_eol(q);
}

/* ---- base64 ----------------------------------------------------------- */

void
aimx__b64_init(aimx_b64 *e, aimx_sink_fn out, void *arg)
{
    memset(e, 0, sizeof *e);
    e->out = out;
    e->arg = arg;
}

void
aimx__b64_feed(aimx_b64 *e, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        e->rest[e->nrest++] = p[i];
        if (e->nrest < 3)
            continue;
        b64_block(e->rest, 3, e->line + e->n);
        e->n += 4;
        e->nrest = 0;
        if (e->n == 76) {
            e->line[e->n++] = '\r';
            e->line[e->n++] = '\n';
            e->out(e->arg, e->line, e->n);
            e->n = 0;
        }
    }
}

void
aimx__b64_end(aimx_b64 *e)
{
    if (e->nrest > 0) {
        b64_block(e->rest, e->nrest, e->line + e->n);
        e->n += 4;
        e->nrest = 0;
    }
    if (e->n > 0) {
        e->line[e->n++] = '\r';
        e->line[e->n++] = '\n';
        e->out(e->arg, e->line, e->n);
        e->n = 0;
    }
}

/* ---- small fields ----------------------------------------------------- */

void
aimx__rfc5322_date(time_t t, char *out, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    long off;
    char sign = '+';

    localtime_r(&t, &tm);
    off = tm.tm_gmtoff / 60;
    if (off < 0) {
        sign = '-';
        off = -off;
    }
    snprintf(out, len, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
             days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
             off / 60, off % 60);
}

const char *
aimx__content_type_for(const char *filename)
{
    static const struct {
        const char *ext;
        const char *type;
    } table[] = {
        {"txt", "text/plain"},
        {"text", "text/plain"},
        {"log", "text/plain"},
        {"md", "text/markdown"},
        {"csv", "text/csv"},
        {"tsv", "text/tab-separated-values"},
        {"html", "text/html"},
        {"htm", "text/html"},
        {"css", "text/css"},
        {"ics", "text/calendar"},
        {"vcf", "text/vcard"},
        {"xml", "application/xml"},
        {"json", "application/json"},
        {"yaml", "application/yaml"},
        {"yml", "application/yaml"},
        {"pdf", "application/pdf"},
        {"rtf", "application/rtf"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
        {"tgz", "application/gzip"},
        {"tar", "application/x-tar"},
        {"bz2", "application/x-bzip2"},
        {"xz", "application/x-xz"},
        {"7z", "application/x-7z-compressed"},
        {"doc", "application/msword"},
        {"docx", "application/"
                 "vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {"xls", "application/vnd.ms-excel"},
        {"xlsx",
         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        {"ppt", "application/vnd.ms-powerpoint"},
        {"pptx", "application/"
                 "vnd.openxmlformats-officedocument.presentationml."
                 "presentation"},
        {"odt", "application/vnd.oasis.opendocument.text"},
        {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
        {"odp", "application/vnd.oasis.opendocument.presentation"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"svg", "image/svg+xml"},
        {"bmp", "image/bmp"},
        {"tif", "image/tiff"},
        {"tiff", "image/tiff"},
        {"heic", "image/heic"},
        {"mp3", "audio/mpeg"},
        {"wav", "audio/wav"},
        {"ogg", "audio/ogg"},
        {"mp4", "video/mp4"},
        {"webm", "video/webm"},
        {"mov", "video/quicktime"},
    };
    const char *dot = strrchr(filename, '.');

    if (dot != NULL && dot != filename)
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
            if (strcasecmp(dot + 1, table[i].ext) == 0)
                return table[i].type;
    return "application/octet-stream";
}

static int
is_dot_atom(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return 0;
        } else if (!is_atext((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

int
aimx__msgid_normalize(const char *in, char *out, size_t len, char *err,
                      size_t errlen)
{
    size_t n = strlen(in);
    const char *s = in, *at, *right;
    char shown[300];
    int ok;

    if (n >= 2 && in[0] == '<' && in[n - 1] == '>') {
        s = in + 1;
        n -= 2;
    }
    at = memchr(s, '@', n);
    ok = at != NULL && n + 3 <= len && n <= 900;
    if (ok) {
        size_t ln = (size_t)(at - s), rn = n - ln - 1;
        right = at + 1;
        ok = is_dot_atom(s, ln);
        if (ok && rn >= 2 && right[0] == '[' && right[rn - 1] == ']') {
            for (size_t i = 1; i + 1 < rn && ok; i++)
                ok = right[i] >= 33 && right[i] <= 126 && right[i] != '[' &&
                     right[i] != ']' && right[i] != '\\';
        } else if (ok) {
            ok = is_dot_atom(right, rn);
        }
    }
    if (!ok) {
        snprintf(err, errlen,
                 "'%s' is not a message ID (<left@right> in printable ASCII, "
                 "RFC 5322 3.6.4)",
                 aimx__printable(in, shown, sizeof shown));
        return -1;
    }
    snprintf(out, len, "<%.*s>", (int)n, s);
    return 0;
}

static void
random_hex(char *out, size_t bytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[32];
    size_t got = 0;

    if (bytes > sizeof r)
        bytes = sizeof r;
    while (got < bytes) {
        ssize_t n = getrandom(r + got, bytes - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* No entropy source at all: the time still makes IDs differ. */
            for (; got < bytes; got++)
                r[got] = (unsigned char)(rand() ^ (int)time(NULL) ^ getpid());
            break;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[2 * bytes] = '\0';
}

void
aimx__msgid_generate(const char *domain, char *out, size_t len)
{
    struct timespec ts;
    char rnd[33];

    clock_gettime(CLOCK_REALTIME, &ts);
    random_hex(rnd, 16);
    snprintf(out, len, "<%llx.%s@%s>",
             (unsigned long long)ts.tv_sec * 1000000ULL +
                 (unsigned long long)ts.tv_nsec / 1000,
             rnd, domain);
}

/* ---- the body scan ---------------------------------------------------- */

void
aimx__body_scan_init(aimx_body_scan *s)
{
    memset(s, 0, sizeof *s);
    s->line = 1;
    s->seven_bit = 1;
}

void
aimx__body_scan_feed(aimx_body_scan *s, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];

        if (s->utf8_need > 0) {
            if ((c & 0xc0) == 0x80) {
                s->utf8_cp = (s->utf8_cp << 6) | (c & 0x3f);
                if (--s->utf8_need == 0 &&
                    ((s->utf8_len == 3 && s->utf8_cp < 0x800) ||
                     (s->utf8_len == 4 &&
                      (s->utf8_cp < 0x10000 || s->utf8_cp > 0x10ffff)) ||
                     (s->utf8_cp >= 0xd800 && s->utf8_cp <= 0xdfff)) &&
                    s->bad_line == 0)
                    s->bad_line = s->line;
                s->col++;
                continue;
            }
            s->utf8_need = 0;
            if (s->bad_line == 0)
                s->bad_line = s->line;
        }
        if (s->cr && c != '\n')
            s->seven_bit = 0; /* a bare CR */
        s->cr = c == '\r';
        if (c == '\n') {
            if (s->col > 998)
                s->seven_bit = 0;
            s->line++;
            s->col = 0;
            continue;
        }
        if (c != '\r')
            s->col++;
        if (s->col > 998)
            s->seven_bit = 0;
        if (c == 0 && s->bad_line == 0)
            s->bad_line = s->line;
        if (c < 0x80)
            continue;
        s->seven_bit = 0;
        if (c >= 0xc2 && c <= 0xdf) {
            s->utf8_need = 1;
            s->utf8_cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            s->utf8_need = 2;
            s->utf8_cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            s->utf8_need = 3;
            s->utf8_cp = c & 0x07;
        } else if (s->bad_line == 0) {
            s->bad_line = s->line;
        }
        s->utf8_len = s->utf8_need + 1;
    }
}

void
aimx__body_scan_end(aimx_body_scan *s)
{
    if (s->utf8_need > 0 && s->bad_line == 0)
        s->bad_line = s->line;
    if (s->cr)
        s->seven_bit = 0;
}

/* ---- the message ------------------------------------------------------ */

static int
copy_body(const aimx_compose *c, aimx_sink_fn sink, void *arg, char *err,
          size_t errlen)
{
    aimx_qp qp;
    char *buf = NULL;
    char last = '\n';
    int rc = 0;

    aimx__qp_init(&qp, sink, arg);
    if (c->body_fd < 0) {
        if (c->body_seven_bit) {
            sink(arg, c->body_text, c->body_len);
            if (c->body_len > 0)
                last = c->body_text[c->body_len - 1];
        } else {
            aimx__qp_feed(&qp, c->body_text, c->body_len);
        }
    } else {
        buf = malloc(IO_CHUNK);
        if (buf == NULL) {
            snprintf(err, errlen, "out of memory");
            return AIMX_EXIT_SOFTWARE;
        }
        for (;;) {
            ssize_t n = read(c->body_fd, buf, IO_CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                snprintf(err, errlen, "cannot read the body from %s: %s",
                         c->body_name, strerror(errno));
                rc = AIMX_EXIT_NOINPUT;
                break;
            }
            if (n == 0)
                break;
            if (c->body_seven_bit) {
                sink(arg, buf, (size_t)n);
                last = buf[n - 1];
            } else {
                aimx__qp_feed(&qp, buf, (size_t)n);
            }
        }
        free(buf);
    }
    if (c->body_seven_bit) {
        if (last != '\n')
            sink(arg, "\r\n", 2);
    } else {
        aimx__qp_end(&qp);
    }
    return rc;
}

static int
copy_attachment(const aimx_attachment *a, aimx_sink_fn sink, void *arg,
                char *err, size_t errlen)
{
    aimx_b64 e;
    /* A multiple of 3, so only the last read leaves octets behind. */
    size_t chunk = (IO_CHUNK / 3) * 3;
    char *buf = malloc(chunk);
    int rc = 0;

    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return AIMX_EXIT_SOFTWARE;
    }
    aimx__b64_init(&e, sink, arg);
    for (;;) {
        ssize_t n = read(a->fd, buf, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read attachment %s: %s", a->path,
                     strerror(errno));
            rc = AIMX_EXIT_NOINPUT;
            break;
        }
        if (n == 0)
            break;
        aimx__b64_feed(&e, buf, (size_t)n);
    }
    aimx__b64_end(&e);
    free(buf);
    return rc;
}

int
aimx__compose_write(const aimx_compose *c, aimx_sink_fn sink, void *arg,
                    char *err, size_t errlen)
{
    aimx_buf b = {0};
    aimx_hdr h;
    char date[64], boundary[64], rnd[33];
    const char *cte = c->body_seven_bit ? "7bit" : "quoted-printable";
    int rc;

    aimx__rfc5322_date(c->date, date, sizeof date);
    aimx__hdr_begin(&h, &b, "Date");
    aimx__hdr_token(&h, " ", date, strlen(date));
    aimx__hdr_end(&h);
    aimx__hdr_begin(&h, &b, "From");
    aimx__hdr_mailboxes(&h, c->from, 1);
    aimx__hdr_end(&h);
    if (c->to->n > 0) {
        aimx__hdr_begin(&h, &b, "To");
        aimx__hdr_mailboxes(&h, c->to->v, c->to->n);
        aimx__hdr_end(&h);
    }
    if (c->cc->n > 0) {
        aimx__hdr_begin(&h, &b, "Cc");
        aimx__hdr_mailboxes(&h, c->cc->v, c->cc->n);
        aimx__hdr_end(&h);
    }
    if (c->reply_to->n > 0) {
        aimx__hdr_begin(&h, &b, "Reply-To");
        aimx__hdr_mailboxes(&h, c->reply_to->v, c->reply_to->n);
        aimx__hdr_end(&h);
    }
    if (c->subject != NULL) {
        aimx__hdr_begin(&h, &b, "Subject");
        if (c->subject[0] != '\0')
            aimx__hdr_unstructured(&h, c->subject);
        aimx__hdr_end(&h);
    }
    aimx__hdr_begin(&h, &b, "Message-ID");
    aimx__hdr_token(&h, " ", c->message_id, strlen(c->message_id));
    aimx__hdr_end(&h);
    if (c->in_reply_to != NULL) {
        aimx__hdr_begin(&h, &b, "In-Reply-To");
        aimx__hdr_words(&h, c->in_reply_to);
        aimx__hdr_end(&h);
    }
    if (c->references != NULL) {
        aimx__hdr_begin(&h, &b, "References");
        aimx__hdr_words(&h, c->references);
        aimx__hdr_end(&h);
    }
    for (size_t i = 0; i < c->header_count; i++) {
        const char *colon = strchr(c->headers[i], ':');
        char name[128];
        const char *value = colon + 1;
        snprintf(name, sizeof name, "%.*s", (int)(colon - c->headers[i]),
                 c->headers[i]);
        while (*value == ' ' || *value == '\t')
            value++;
        aimx__hdr_begin(&h, &b, name);
        if (*value == '\0') {
            /* an empty field */
        } else if (printable_ascii(value)) {
            /* ASCII is written as given: it may be structured. */
            aimx__hdr_words(&h, value);
        } else {
            aimx__hdr_encoded_words(&h, " ", value);
        }
        aimx__hdr_end(&h);
    }
    aimx__buf_str(&b, "MIME-Version: 1.0\r\n");
    if (c->attachment_count > 0) {
        random_hex(rnd, 16);
        snprintf(boundary, sizeof boundary, "=_aimx_%s", rnd);
        aimx__buf_str(&b, "Content-Type: multipart/mixed;\r\n boundary=\"");
        aimx__buf_str(&b, boundary);
        aimx__buf_str(&b, "\"\r\n\r\n--");
        aimx__buf_str(&b, boundary);
        aimx__buf_str(&b, "\r\n");
    }
    aimx__buf_str(&b, "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Transfer-Encoding: ");
    aimx__buf_str(&b, cte);
    aimx__buf_str(&b, "\r\n\r\n");
    if (b.oom) {
        aimx__buf_free(&b);
        snprintf(err, errlen, "out of memory");
        return AIMX_EXIT_SOFTWARE;
    }
    sink(arg, b.p, b.len);
    aimx__buf_free(&b);

    rc = copy_body(c, sink, arg, err, errlen);
    for (size_t i = 0; rc == 0 && i < c->attachment_count; i++) {
        const aimx_attachment *a = &c->attachments[i];
        b.len = 0;
        aimx__buf_str(&b, "\r\n--");
        aimx__buf_str(&b, boundary);
        aimx__buf_str(&b, "\r\n");
        aimx__hdr_begin(&h, &b, "Content-Type");
        const char *type = aimx__content_type_for(a->name);
        aimx__hdr_token(&h, " ", type, strlen(type));
        aimx__hdr_param(&h, "name", a->name);
        aimx__hdr_end(&h);
        aimx__hdr_begin(&h, &b, "Content-Disposition");
        aimx__hdr_token(&h, " ", "attachment", 10);
        aimx__hdr_param(&h, "filename", a->name);
        aimx__hdr_end(&h);
        aimx__buf_str(&b, "Content-Transfer-Encoding: base64\r\n\r\n");
        if (b.oom) {
            snprintf(err, errlen, "out of memory");
            rc = AIMX_EXIT_SOFTWARE;
            break;
        }
        sink(arg, b.p, b.len);
        rc = copy_attachment(a, sink, arg, err, errlen);
    }
    if (rc == 0 && c->attachment_count > 0) {
        b.len = 0;
        aimx__buf_str(&b, "\r\n--");
        aimx__buf_str(&b, boundary);
        aimx__buf_str(&b, "--\r\n");
        if (!b.oom)
            sink(arg, b.p, b.len);
    }
    aimx__buf_free(&b);
    return rc;
}
