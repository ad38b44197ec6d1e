/* SPDX-License-Identifier: MIT */
/*
 * Dot-stuffing as a two-flag state machine, so that a '.' or a CRLF split
 * across two reads of the message is handled exactly like one inside a
 * read.
 *
 * The input is copied in runs: a message in canonical form is its own
 * stuffed form but for a '.' doubled where a line starts, so the scan only
 * stops at line ends, and the octets between the places where the output
 * differs go out with one memcpy().
 */
#include "dotstuff.h"

#include <string.h>

#if defined(__SSE2__) && !defined(DOTSTUFF_NO_SIMD)
#include <emmintrin.h>
#endif

static const uint8_t *find_eol(const uint8_t *p, const uint8_t *end);

/* The first CR or LF in [p, end), or end. */
static const uint8_t *
find_eol(const uint8_t *p, const uint8_t *end)
{
#if defined(__SSE2__) && !defined(DOTSTUFF_NO_SIMD)
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');

    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
    }
    while (p < end && *p != '\r' && *p != '\n')
        p++;
    return p;
#else
    const uint8_t *lf = memchr(p, '\n', (size_t)(end - p)), *cr;

    if (lf == NULL)
        lf = end;
    cr = memchr(p, '\r', (size_t)(lf - p));
    return cr != NULL ? cr : lf;
#endif
}

void
dotstuff_init(struct dotstuff *d)
{
    d->bol = 1; /* the first line starts at the first octet */
    d->cr = 0;
}

size_t
dotstuff_feed(struct dotstuff *d, const uint8_t *in, size_t n, uint8_t *out)
{
    const uint8_t *end = in + n, *p = in, *run, *q;
    size_t o = 0;

    if (n == 0)
        return 0;
    if (d->cr) {
        /* The CR went out already; its LF completes the line end,
         * whatever follows (a bare CR becomes CRLF). */
        d->cr = 0;
        d->bol = 1;
        out[o++] = '\n';
        if (*p == '\n')
            p++;
    }
    /* in[run..p) goes out as it is; d->bol and d->cr describe p. */
    run = p;
    while (p < end) {
        if (d->bol && *p == '.') {
            memcpy(out + o, run, (size_t)(p - run));
            o += (size_t)(p - run);
            out[o++] = '.';
            run = p; /* the '.' itself goes out with the run */
        }
        q = find_eol(p, end);
        if (q == end) {
            d->bol = 0; /* p < end: at least one ordinary octet */
            p = end;
            break;
        }
        if (*q == '\r' && q + 1 < end && q[1] == '\n') {
            p = q + 2; /* CRLF: as it is */
            d->bol = 1;
            continue;
        }
        if (*q == '\r' && q + 1 == end) {
            /* The LF, if any, comes with the next piece. */
            p = end;
            d->cr = 1;
            d->bol = 0;
            break;
        }
        /* A bare LF, or a CR followed by something else than LF: the
         * octets before it, then CRLF in its place. */
        memcpy(out + o, run, (size_t)(q - run));
        o += (size_t)(q - run);
        out[o++] = '\r';
        out[o++] = '\n';
        p = run = q + 1;
        d->bol = 1;
    }
    memcpy(out + o, run, (size_t)(p - run));
    return o + (size_t)(p - run);
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
