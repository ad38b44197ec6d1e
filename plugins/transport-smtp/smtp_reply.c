/* SPDX-License-Identifier: MIT */
/*
 * The SMTP reply parser.  A reply is one or more lines "NNN-text" ended by
 * one line "NNN text" or "NNN" (RFC 5321 4.2.1); every line of one reply
 * must carry the same code.  The parser checks each line's prefix as soon
 * as its first four octets are in, so a peer that is not speaking SMTP is
 * caught at once rather than after a timeout.
 */
#include "smtp_reply.h"

#include <stddef.h>
#include <string.h>

static int append_octet(struct smtp_reply_parser *p, char c);
static int check_prefix(struct smtp_reply_parser *p);
static int end_line(struct smtp_reply_parser *p);
static int fail(struct smtp_reply_parser *p, int error);
static void add_text(struct smtp_reply *r, const char *s, size_t n);
static size_t parse_number(const char *s, size_t len, size_t max_digits);
static void reset_reply(struct smtp_reply *r);

void
smtp_reply_parser_init(struct smtp_reply_parser *p)
{
    p->on_line = NULL;
    p->on_line_arg = NULL;
    p->error = SMTP_REPLY_E_NONE;
    p->cr = 0;
    p->line_len = 0;
    reset_reply(&p->cur);
}

const char *
smtp_reply_strerror(int error)
{
    switch (error) {
    case SMTP_REPLY_E_NONE:
        return "no error";
    case SMTP_REPLY_E_GARBAGE:
        return "a reply line does not start with a reply code";
    case SMTP_REPLY_E_SEPARATOR:
        return "a reply code is followed by neither ' ' nor '-'";
    case SMTP_REPLY_E_MIXED_CODES:
        return "the lines of a multiline reply carry different codes";
    case SMTP_REPLY_E_LINE_LONG:
        return "a reply line is too long";
    case SMTP_REPLY_E_TOO_MANY_LINES:
        return "a reply has too many lines";
    case SMTP_REPLY_E_NUL:
        return "a reply line contains a NUL octet";
    }
    return "malformed reply";
}

int
smtp_reply_feed(struct smtp_reply_parser *p, const void *buf, size_t len,
                size_t *used, struct smtp_reply *out)
{
    const unsigned char *b = buf;
    size_t i;
    int r;

    if (p->error) {
        *used = 0;
        return SMTP_REPLY_ERROR;
    }
    for (i = 0; i < len; i++) {
        char c = (char)b[i];

        if (c == '\n') {
            p->cr = 0; /* CRLF and bare LF both end the line */
            r = end_line(p);
            if (r == SMTP_REPLY_MORE)
                continue;
            *used = i + 1;
            if (r == SMTP_REPLY_DONE) {
                /* Only what is in use: replies are many and small. */
                memcpy(out, &p->cur,
                       offsetof(struct smtp_reply, text) + p->cur.text_len + 1);
                reset_reply(&p->cur);
            }
            return r;
        }
        if (p->cr) {
            /* A CR not followed by LF is part of the text. */
            p->cr = 0;
            if (append_octet(p, '\r') != SMTP_REPLY_MORE) {
                *used = i;
                return SMTP_REPLY_ERROR;
            }
        }
        if (c == '\r') {
            p->cr = 1;
            continue;
        }
        if (c == '\0' || append_octet(p, c) != SMTP_REPLY_MORE) {
            if (c == '\0')
                fail(p, SMTP_REPLY_E_NUL);
            *used = i + 1;
            return SMTP_REPLY_ERROR;
        }
    }
    *used = len;
    return SMTP_REPLY_MORE;
}

size_t
smtp_enhanced_parse(const char *text, size_t len, unsigned code,
                    char out[SMTP_ENHANCED_MAX])
{
    size_t n = 0, subject, detail;

    /* class "." subject "." detail, RFC 3463 section 2. */
    if (len < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') ||
        text[1] != '.')
        return 0;
    if ((unsigned)(text[0] - '0') != code / 100)
        return 0;
    n = 2;
    subject = parse_number(text + n, len - n, 3);
    if (subject == 0 || n + subject >= len || text[n + subject] != '.')
        return 0;
    n += subject + 1;
    detail = parse_number(text + n, len - n, 3);
    if (detail == 0)
        return 0;
    n += detail;
    if (n < len && text[n] != ' ')
        return 0;
    memcpy(out, text, n);
    out[n] = '\0';
    return n < len ? n + 1 : n;
}

/* Digits at s, 1..max_digits of them; 0 when there are none or too many. */
static size_t
parse_number(const char *s, size_t len, size_t max_digits)
{
    size_t n = 0;

    while (n < len && s[n] >= '0' && s[n] <= '9')
        n++;
    return n > max_digits ? 0 : n;
}

static void
reset_reply(struct smtp_reply *r)
{
    r->code = 0;
    r->enhanced[0] = '\0';
    r->lines = 0;
    r->truncated = 0;
    r->text_len = 0;
    r->text[0] = '\0';
}

static int
fail(struct smtp_reply_parser *p, int error)
{
    p->error = error;
    return SMTP_REPLY_ERROR;
}

static int
append_octet(struct smtp_reply_parser *p, char c)
{
    if (p->line_len >= SMTP_REPLY_LINE_MAX)
        return fail(p, SMTP_REPLY_E_LINE_LONG);
    p->line[p->line_len++] = c;
    return p->line_len <= 4 ? check_prefix(p) : SMTP_REPLY_MORE;
}

/* Checks the first min(line_len, 4) octets: three digits (the first 2..5,
 * RFC 5321 4.2) and a separator. */
static int
check_prefix(struct smtp_reply_parser *p)
{
    size_t i, n = p->line_len < 4 ? p->line_len : 4;

    for (i = 0; i < n && i < 3; i++) {
        char c = p->line[i];
        if (i == 0 ? (c < '2' || c > '5') : (c < '0' || c > '9'))
            return fail(p, SMTP_REPLY_E_GARBAGE);
    }
    if (n == 4 && p->line[3] != ' ' && p->line[3] != '-')
        return fail(p, SMTP_REPLY_E_SEPARATOR);
    return SMTP_REPLY_MORE;
}

static int
end_line(struct smtp_reply_parser *p)
{
    struct smtp_reply *r = &p->cur;
    char esc[SMTP_ENHANCED_MAX];
    const char *text;
    size_t tlen, skip = 0;
    unsigned code;
    int last;

    if (p->line_len < 3)
        return fail(p, SMTP_REPLY_E_GARBAGE);
    if (check_prefix(p) != SMTP_REPLY_MORE)
        return SMTP_REPLY_ERROR;
    code = (unsigned)(p->line[0] - '0') * 100 +
           (unsigned)(p->line[1] - '0') * 10 + (unsigned)(p->line[2] - '0');
    last = p->line_len == 3 || p->line[3] == ' ';
    if (r->lines > 0 && code != r->code)
        return fail(p, SMTP_REPLY_E_MIXED_CODES);
    if (r->lines >= SMTP_REPLY_LINES_MAX)
        return fail(p, SMTP_REPLY_E_TOO_MANY_LINES);
    r->code = (uint16_t)code;
    text = p->line + (p->line_len > 3 ? 4 : 3);
    tlen = p->line_len > 3 ? p->line_len - 4 : 0;
    if (r->lines == 0) {
        skip = smtp_enhanced_parse(text, tlen, code, r->enhanced);
    } else if (r->enhanced[0]) {
        /* Servers repeat the code on every line: keep it out of the text. */
        skip = smtp_enhanced_parse(text, tlen, code, esc);
        if (skip && strcmp(esc, r->enhanced) != 0)
            skip = 0;
    }
    if (p->on_line)
        p->on_line(p->on_line_arg, text, tlen, r->lines);
    add_text(r, text + skip, tlen - skip);
    r->lines++;
    p->line_len = 0;
    return last ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
}

static void
add_text(struct smtp_reply *r, const char *s, size_t n)
{
    size_t room;

    if (r->lines > 0 && n > 0 && r->text_len > 0) {
        if (r->text_len + 1 >= sizeof r->text) {
            r->truncated = 1;
            return;
        }
        r->text[r->text_len++] = ' ';
    }
    room = sizeof r->text - 1 - r->text_len;
    if (n > room) {
        n = room;
        r->truncated = 1;
    }
    memcpy(r->text + r->text_len, s, n);
    r->text_len += n;
    r->text[r->text_len] = '\0';
}
