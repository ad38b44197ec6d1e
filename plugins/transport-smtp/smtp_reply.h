/* SPDX-License-Identifier: MIT */
/*
 * An incremental, strict parser of SMTP replies (RFC 5321 4.2, RFC 2034 /
 * RFC 3463 enhanced status codes).  It is fed octets as they arrive, in
 * pieces of any size, and stops right after the end of each complete
 * reply, so that the octets of the replies that follow (PIPELINING, RFC
 * 2920) stay with the caller, in order, for the next call.  Memory is
 * bounded: one line and one reply's joined text.  It depends on nothing
 * but libc, so the fuzz target builds it alone.
 */
#ifndef SMTP_REPLY_H
#define SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.5 allows 512 octets; twice that leaves room for wordy
 * real servers while refusing a peer that never ends a line. */
#define SMTP_REPLY_LINE_MAX  1024 /* octets of one line, line end excluded */
/* An EHLO reply has a line per extension: a few dozen at most in real
 * life. */
#define SMTP_REPLY_LINES_MAX 512
/* The joined text kept per reply, NUL included; the rest is dropped. */
#define SMTP_REPLY_TEXT_MAX  1024
#define SMTP_ENHANCED_MAX    16 /* "5.123.123" and its NUL fit */

enum smtp_reply_status {
    SMTP_REPLY_MORE = 0,  /* every octet consumed, no complete reply yet */
    SMTP_REPLY_DONE = 1,  /* a complete reply is in *out */
    SMTP_REPLY_ERROR = -1 /* malformed: see parser->error; sticky */
};

enum smtp_reply_error {
    SMTP_REPLY_E_NONE = 0,
    SMTP_REPLY_E_GARBAGE = 1,     /* a line does not start with a reply code */
    SMTP_REPLY_E_SEPARATOR = 2,   /* neither ' ', '-' nor the line end after
                                    the code */
    SMTP_REPLY_E_MIXED_CODES = 3, /* lines of one reply with different codes */
    SMTP_REPLY_E_LINE_LONG = 4,   /* a line longer than SMTP_REPLY_LINE_MAX */
    SMTP_REPLY_E_TOO_MANY_LINES = 5, /* more than SMTP_REPLY_LINES_MAX */
    SMTP_REPLY_E_NUL = 6             /* a NUL octet in a line */
};

struct smtp_reply {
    uint16_t code;                    /* 200..599 */
    char enhanced[SMTP_ENHANCED_MAX]; /* "5.1.1" or "" */
    unsigned lines;                   /* 1..SMTP_REPLY_LINES_MAX */
    int truncated;                    /* text lost some of the reply */
    size_t text_len;                  /* strlen(text) */
    char text[SMTP_REPLY_TEXT_MAX];   /* lines after the code, joined by
                                          ' ', enhanced code stripped */
};

/* Called for every line of a reply as it is accepted: its text after
 * "NNN-" or "NNN " (not NUL-terminated), index 0 for the first line.  The
 * EHLO reader uses it to see every extension, however long the reply. */
typedef void smtp_reply_line_fn(void *arg, const char *text, size_t len,
                                unsigned index);

struct smtp_reply_parser {
    smtp_reply_line_fn *on_line; /* optional, set by the caller */
    void *on_line_arg;
    int error;       /* enum smtp_reply_error */
    int cr;          /* the last octet seen was a CR */
    size_t line_len; /* octets in line[] */
    struct smtp_reply cur;
    char line[SMTP_REPLY_LINE_MAX + 1];
};

/* Ready for the first reply; on_line cleared. */
void smtp_reply_parser_init(struct smtp_reply_parser *p);

/*
 * Feeds len octets.  Sets *used to the octets consumed: up to and including
 * the end of the first reply completed (SMTP_REPLY_DONE, *out filled; feed
 * the rest again for the next reply), all of them (SMTP_REPLY_MORE), or up
 * to the offending octet (SMTP_REPLY_ERROR).  A line ends with CRLF or a
 * bare LF (tolerated: some servers send it); a CR elsewhere is text.
 */
int smtp_reply_feed(struct smtp_reply_parser *p, const void *buf, size_t len,
                    size_t *used, struct smtp_reply *out);

/* A short English description of an enum smtp_reply_error. */
const char *smtp_reply_strerror(int error);

/* Parses an enhanced status code at the start of text ("5.1.1 ...").  It
 * must be followed by a space or the end and its class must agree with
 * code (RFC 3463: the reply code wins).  Returns the octets it covers
 * (the separating space included) and copies it to out, or returns 0. */
size_t smtp_enhanced_parse(const char *text, size_t len, unsigned code,
                           char out[SMTP_ENHANCED_MAX]);

#endif /* SMTP_REPLY_H */
