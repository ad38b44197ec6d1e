/* SPDX-License-Identifier: MIT */
/*
 * The canonical spool: the message read once, line by line, into an
 * unnamed file (O_TMPFILE: nothing is left behind, even after SIGKILL),
 * with CRLF line endings, checked as it goes (a header section, no line
 * over 998 octets, no NUL or bare CR), measured (size, 8-bit data, UTF-8
 * in the header section), with the DKIM body hash computed on the way and
 * the header fields DKIM signs located.  Memory stays bounded whatever the
 * message's size.  The delivery attempts then read it through aimx_msg.
 */
#ifndef AIMX_SPOOL_H
#define AIMX_SPOOL_H

#include "compose.h"
#include "dkim.h"

#include <stddef.h>
#include <stdint.h>

#define AIMX_SPOOL_DROP_BCC     0x1u /* leave Bcc fields out */
#define AIMX_SPOOL_COLLECT_RCPT 0x2u /* keep the To, Cc and Bcc values */
#define AIMX_SPOOL_BODY_HASH    0x4u /* compute the DKIM body hash */

#define AIMX_SPOOL_LINE_MAX  998 /* RFC 5322 2.1.1, without the CRLF */
#define AIMX_SPOOL_KEEP      8   /* instances of a signed field remembered */
#define AIMX_SPOOL_VALUE_MAX (1024 * 1024) /* a kept field value, at most */

/* Header fields the spool watches.  The first AIMX_F_SIGNED are the ones
 * DKIM signs, in the order they go into h=. */
enum aimx_spool_field {
    AIMX_F_FROM,
    AIMX_F_TO,
    AIMX_F_CC,
    AIMX_F_REPLY_TO,
    AIMX_F_SUBJECT,
    AIMX_F_DATE,
    AIMX_F_MESSAGE_ID,
    AIMX_F_IN_REPLY_TO,
    AIMX_F_REFERENCES,
    AIMX_F_MIME_VERSION,
    AIMX_F_CONTENT_TYPE,
    AIMX_F_SIGNED,
    AIMX_F_BCC = AIMX_F_SIGNED,
    AIMX_F_COUNT
};

typedef struct aimx_spool_seen {
    uint64_t offset[AIMX_SPOOL_KEEP]; /* a ring of the latest instances */
    uint64_t len[AIMX_SPOOL_KEEP];    /* without the final CRLF */
    unsigned count;                   /* instances seen in all */
} aimx_spool_seen;

typedef struct aimx_spool {
    int fd;
    unsigned flags;
    uint64_t size;  /* octets in the spool file */
    uint64_t lines; /* input lines read whole */
    int state;      /* 0: nothing yet, 1: header section, 2: body */
    int field;      /* the field being read: enum aimx_spool_field, or -1 */
    int dropping;   /* ... and it is left out */
    uint64_t field_start;
    int eightbit;    /* an octet >= 0x80 anywhere */
    int header_8bit; /* ... in the header section */
    int utf8;        /* every line is well-formed UTF-8 */
    aimx_spool_seen seen[AIMX_F_SIGNED];
    aimx_buf value[AIMX_F_COUNT]; /* unfolded values of kept fields */
    int has_value[AIMX_F_COUNT];
    aimx_dkim_bodyhash bh;
    int hashing;
    char line[AIMX_SPOOL_LINE_MAX + 2];
    size_t line_len;
    char *out; /* write buffer */
    size_t out_len;
    int error; /* sticky exit code, 0 while all is well */
    char message[512];
} aimx_spool;

/*
 * Opens an unnamed file in dir (O_TMPFILE, mode 0600).  Returns the fd,
 * or -1 with *code (an exit code) and err set.
 */
int aimx__spool_tmpfile(const char *dir, int *code, char *err, size_t errlen);

/* Returns 0, or the exit code with s->message set. */
int aimx__spool_open(aimx_spool *s, const char *dir, unsigned flags);
/* Input in pieces of any size, LF or CRLF line endings. */
int aimx__spool_write(aimx_spool *s, const void *data, size_t len);
/* An aimx_sink_fn for the composer: errors stay in s->error. */
void aimx__spool_sink(void *arg, const char *data, size_t len);
/* The end of the input: the last line, the checks, the body hash. */
int aimx__spool_finish(aimx_spool *s);

/* The unfolded value of a kept field (From and Message-ID always; To, Cc
 * and Bcc with
 * AIMX_SPOOL_COLLECT_RCPT), every instance joined by ", "; NULL when the
 * message has none. */
const char *aimx__spool_value(const aimx_spool *s, int field);
/* The fields to sign, in h= order; returns how many (at most
 * AIMX_F_SIGNED * AIMX_SPOOL_KEEP). */
size_t aimx__spool_signed_fields(const aimx_spool *s, aimx_dkim_field *out);

/*
 * Makes header (a DKIM-Signature field) the start of the message, in the
 * same file: the spool moves len octets further (the file grows by len
 * only), then header goes in front.  dir is not used.  Returns 0 or the
 * exit code with s->message set; after a failure the spool is unusable.
 */
int aimx__spool_prepend(aimx_spool *s, const char *dir, const char *header,
                        size_t len);

void aimx__spool_close(aimx_spool *s);

#endif
