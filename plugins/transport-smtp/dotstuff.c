/* SPDX-License-Identifier: MIT */
/*
 * Dot-stuffing as a two-flag state machine, so that a '.' or a CRLF split
 * across two reads of the message is handled exactly like one inside a
 * read.
 */
#include "dotstuff.h"

void
dotstuff_init(struct dotstuff *d)
{
    d->bol = 1; /* the first line starts at the first octet */
    d->cr = 0;
}

size_t
dotstuff_feed(struct dotstuff *d, const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        uint8_t c = in[i];

        if (d->cr) {
            /* The CR went out already; its LF completes the line end,
             * whatever follows (a bare CR becomes CRLF). */
            d->cr = 0;
            out[o++] = '\n';
            d->bol = 1;
            if (c == '\n')
                continue;
        }
        if (c == '\r') {
            out[o++] = '\r';
            d->cr = 1;
            d->bol = 0;
            continue;
        }
        if (c == '\n') {
            out[o++] = '\r'; /* a bare LF */
            out[o++] = '\n';
            d->bol = 1;
            continue;
        }
        if (d->bol && c == '.')
            out[o++] = '.';
        out[o++] = c;
        d->bol = 0;
    }
    return o;
}

size_t
dotstuff_end(struct dotstuff *d, uint8_t *out)
{
    size_t o = 0;

    if (d->cr) {
        out[o++] = '\n';
        d->cr = 0;
        d->bol = 1;
    }
    if (!d->bol) {
        /* RFC 5321 4.1.1.4: the terminator is CRLF "." CRLF, and the first
         * CRLF belongs to the message; add it when the message lacks it. */
        out[o++] = '\r';
        out[o++] = '\n';
    }
    out[o++] = '.';
    out[o++] = '\r';
    out[o++] = '\n';
    d->bol = 1;
    return o;
}
