/* SPDX-License-Identifier: MIT */
/*
 * Composing an RFC 5322 / MIME message from command-line options, and the
 * encoders it needs (RFC 2047 encoded words, RFC 2231 parameters,
 * quoted-printable, base64), which stream so a body of any size is
 * encoded in bounded memory.
 */
#ifndef AIMX_COMPOSE_H
#define AIMX_COMPOSE_H

#include "address.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Where encoders send their output. */
typedef void (*aimx_sink_fn)(void *arg, const char *data, size_t len);

/* A growing string for header text, which is bounded by the command line. */
typedef struct aimx_buf {
    char *p;
    size_t len;
    size_t cap;
    int oom; /* an allocation failed: the contents are incomplete */
} aimx_buf;

void aimx__buf_add(aimx_buf *b, const char *s, size_t len);
void aimx__buf_str(aimx_buf *b, const char *s);
void aimx__buf_free(aimx_buf *b);

/* A header field being written, folded before column 78. */
typedef struct aimx_hdr {
    aimx_buf *b;
    size_t col;   /* octets on the current line */
    size_t start; /* the column after "Name:" */
} aimx_hdr;

void aimx__hdr_begin(aimx_hdr *h, aimx_buf *b, const char *name);
/* Appends sep then token, folding (CRLF SP in place of sep's space) when
 * the line would pass 78 octets.  Tokens are never split. */
void aimx__hdr_token(aimx_hdr *h, const char *sep, const char *token,
                     size_t len);
void aimx__hdr_end(aimx_hdr *h);

/* Appends text as RFC 2047 "B" encoded words in UTF-8, each whole
 * characters and at most 75 octets, as folding tokens. */
void aimx__hdr_encoded_words(aimx_hdr *h, const char *sep, const char *text);
/* Appends unstructured text (RFC 5322 3.2.5): folded at its spaces when
 * it is printable ASCII with no overlong word, otherwise as encoded
 * words. */
void aimx__hdr_unstructured(aimx_hdr *h, const char *text);
/* Appends text as it is, folded at its spaces (for structured values). */
void aimx__hdr_words(aimx_hdr *h, const char *text);
/* Appends "; name=\"value\"", or the RFC 2231 form (name*=utf-8''... with
 * continuations name*0*=, name*1*= ...) when value is not short plain
 * ASCII. */
void aimx__hdr_param(aimx_hdr *h, const char *name, const char *value);
/* Appends an address list, display names encoded as needed. */
void aimx__hdr_mailboxes(aimx_hdr *h, const aimx_mailbox *m, size_t n);

/* Quoted-printable (RFC 2045 6.7): line breaks (LF or CRLF) are hard
 * breaks, encoded lines are at most 76 octets, trailing white space and
 * every octet that is not printable ASCII are encoded. */
typedef struct aimx_qp {
    aimx_sink_fn out;
    void *arg;
    char line[80];
    size_t n;
    int ws; /* a held SP or TAB: encoded if the line ends after it */
    int cr; /* a held CR: a line break if LF follows */
} aimx_qp;

void aimx__qp_init(aimx_qp *q, aimx_sink_fn out, void *arg);
void aimx__qp_feed(aimx_qp *q, const void *data, size_t len);
/* Ends the text; a last line without a line break gets one. */
void aimx__qp_end(aimx_qp *q);

/* Base64 (RFC 2045 6.8) in lines of 76 characters, each ending in CRLF. */
typedef struct aimx_b64 {
    aimx_sink_fn out;
    void *arg;
    unsigned char rest[3];
    size_t nrest;
    char line[80];
    size_t n;
} aimx_b64;

void aimx__b64_init(aimx_b64 *e, aimx_sink_fn out, void *arg);
void aimx__b64_feed(aimx_b64 *e, const void *data, size_t len);
void aimx__b64_end(aimx_b64 *e);

/* "Tue, 1 Jul 2025 09:03:04 +0200" (RFC 5322 3.3) in local time. */
void aimx__rfc5322_date(time_t t, char *out, size_t len);
/* The MIME type for a file name, from its extension; octet-stream when
 * unknown. */
const char *aimx__content_type_for(const char *filename);
/* Checks a message ID ("<left@right>" or "left@right", RFC 5322 3.6.4);
 * writes it with angle brackets.  Returns 0 or -1 with err set. */
int aimx__msgid_normalize(const char *in, char *out, size_t len, char *err,
                          size_t errlen);
/* A new "<random@domain>". */
void aimx__msgid_generate(const char *domain, char *out, size_t len);

/*
 * What a body looks like, learnt in one pass before any header is written
 * (the Content-Transfer-Encoding depends on all of it).
 */
typedef struct aimx_body_scan {
    uint64_t line;     /* current line, from 1 */
    uint64_t col;      /* octets on it so far */
    int cr;            /* the previous octet was CR */
    int seven_bit;     /* still sendable as 7bit */
    uint32_t utf8_cp;  /* UTF-8 decoding state */
    int utf8_need;     /* continuation octets still expected */
    int utf8_len;      /* length of the sequence being read */
    uint64_t bad_line; /* first line with invalid UTF-8, or 0 */
} aimx_body_scan;

void aimx__body_scan_init(aimx_body_scan *s);
void aimx__body_scan_feed(aimx_body_scan *s, const void *data, size_t len);
void aimx__body_scan_end(aimx_body_scan *s);

typedef struct aimx_attachment {
    const char *path;
    const char *name; /* the file name shown to the recipient */
    int fd;
} aimx_attachment;

typedef struct aimx_compose {
    const aimx_mailbox *from;
    const aimx_mailbox_list *to;
    const aimx_mailbox_list *cc;
    const aimx_mailbox_list *reply_to;
    const char *subject;     /* NULL: no Subject field */
    const char *message_id;  /* "<...>" */
    const char *in_reply_to; /* "<...> <...>" or NULL */
    const char *references;  /* "<...> <...>" or NULL */
    char *const *headers;    /* extra "Name: value" fields, checked */
    size_t header_count;
    time_t date;
    /* The body: text in memory, or a file read once from its start. */
    const char *body_text;
    size_t body_len;
    int body_fd; /* -1 when body_text is used */
    const char *body_name;
    int body_seven_bit; /* from the scan */
    const aimx_attachment *attachments;
    size_t attachment_count;
} aimx_compose;

/*
 * Writes the message to sink: the header fields, then the text part (7bit
 * or quoted-printable), then each attachment in base64 inside
 * multipart/mixed.  Returns 0, or the exit code with err set (66 when a
 * file cannot be read).
 */
int aimx__compose_write(const aimx_compose *c, aimx_sink_fn sink, void *arg,
                        char *err, size_t errlen);

#endif
