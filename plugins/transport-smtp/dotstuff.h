/* SPDX-License-Identifier: MIT */
/*
 * Streaming dot-stuffing (RFC 5321 4.5.2) of a message in canonical form,
 * in pieces of any size, in constant memory: the state between pieces is
 * two flags.  The message is supposed to use CRLF line ends; a bare CR or a
 * bare LF is sent as CRLF anyway, so that nothing this transport sends can
 * end the data early at a receiver that treats them as line ends (the
 * "SMTP smuggling" class, CVE-2023-51764 and friends).
 */
#ifndef DOTSTUFF_H
#define DOTSTUFF_H

#include <stddef.h>
#include <stdint.h>

/* The most octets dotstuff_feed() writes for n input octets. */
#define DOTSTUFF_OUT_MAX(n) (2 * (size_t)(n) + 1)
/* The most octets dotstuff_end() writes: CR? LF? then ".\r\n". */
#define DOTSTUFF_END_MAX    5

struct dotstuff {
    int bol; /* the next octet starts a line */
    int cr;  /* the last octet was a CR whose LF has not been seen */
};

void dotstuff_init(struct dotstuff *d);

/* Stuffs n octets of the message into out (room for DOTSTUFF_OUT_MAX(n));
 * returns the octets written. */
size_t dotstuff_feed(struct dotstuff *d, const uint8_t *in, size_t n,
                     uint8_t *out);

/* Ends the data: a CRLF if the message did not end with one, then the
 * final ".\r\n" (room for DOTSTUFF_END_MAX); returns the octets written. */
size_t dotstuff_end(struct dotstuff *d, uint8_t *out);

#endif /* DOTSTUFF_H */
