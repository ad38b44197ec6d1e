/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the dot-stuffing stream: lines starting with '.', a '.'
 * or a CRLF split across pieces, the empty message, the final CRLF, bare
 * CR and LF, and random messages against a reference written apart, cut
 * into random pieces; and the run-copying implementation against the
 * octet-at-a-time state machine it replaced, both with and without SIMD.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dotstuff.h"

/* dotstuff.c once more, under other names, with the portable scan instead
 * of the SIMD one. */
#ifndef DOTSTUFF_NO_SIMD
#define DOTSTUFF_NO_SIMD
#endif
#define dotstuff_init scalar_dotstuff_init
#define dotstuff_feed scalar_dotstuff_feed
#define dotstuff_end  scalar_dotstuff_end
void scalar_dotstuff_init(struct dotstuff *d);
size_t scalar_dotstuff_feed(struct dotstuff *d, const uint8_t *in, size_t n,
                            uint8_t *out);
size_t scalar_dotstuff_end(struct dotstuff *d, uint8_t *out);
#include "../dotstuff.c"
#undef dotstuff_init
#undef dotstuff_feed
#undef dotstuff_end

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define GUARD    0x5a

/* Stuffs in[0..len) cut at the given points (ascending; may be none) and
 * ends it; checks every piece's output bound.  Returns a malloc'd buffer. */
static uint8_t *
stuff(const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts,
      size_t *out_len)
{
    uint8_t *out = malloc(DOTSTUFF_OUT_MAX(len) + DOTSTUFF_END_MAX + 64);
    struct dotstuff d;
    size_t pos = 0, o = 0, k, end, n, i;

    assert_non_null(out);
    dotstuff_init(&d);
    for (k = 0; k <= ncuts; k++) {
        end = k < ncuts ? cuts[k] : len;
        if (end < pos)
            continue;
        /* Guards past the documented bound catch any overrun. */
        memset(out + o, GUARD, DOTSTUFF_OUT_MAX(end - pos) + 16);
        n = dotstuff_feed(&d, in + pos, end - pos, out + o);
        assert_true(n <= DOTSTUFF_OUT_MAX(end - pos));
        for (i = DOTSTUFF_OUT_MAX(end - pos);
             i < DOTSTUFF_OUT_MAX(end - pos) + 16; i++)
            assert_int_equal(out[o + i], GUARD);
        o += n;
        pos = end;
    }
    n = dotstuff_end(&d, out + o);
    assert_true(n <= DOTSTUFF_END_MAX);
    *out_len = o + n;
    return out;
}

/* The reference: split into lines at CRLF, a lone CR or a lone LF; write
 * each with a '.' doubled at its start and CRLF after it; a last line
 * without an end gets one; then ".\r\n". */
static uint8_t *
reference(const uint8_t *in, size_t len, size_t *out_len)
{
    uint8_t *out = malloc(2 * len + 8);
    size_t i = 0, start, o = 0;

    assert_non_null(out);
    while (i < len) {
        start = i;
        while (i < len && in[i] != '\r' && in[i] != '\n')
            i++;
        if (start < i && in[start] == '.')
            out[o++] = '.';
        memcpy(out + o, in + start, i - start);
        o += i - start;
        out[o++] = '\r';
        out[o++] = '\n';
        if (i < len && in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
            i += 2;
        else if (i < len)
            i++;
    }
    memcpy(out + o, ".\r\n", 3);
    *out_len = o + 3;
    return out;
}

static void
expect(const char *in, const char *want)
{
    size_t n, len = strlen(in), i, cut;
    uint8_t *out = stuff((const uint8_t *)in, len, NULL, 0, &n);

    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    free(out);
    /* Any single cut gives the same octets. */
    for (i = 0; i <= len; i++) {
        cut = i;
        out = stuff((const uint8_t *)in, len, &cut, 1, &n);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(out, want, n);
        free(out);
    }
}

static void
test_empty(void **state)
{
    (void)state;
    expect("", ".\r\n");
}

static void
test_final_crlf(void **state)
{
    (void)state;
    expect("a\r\n", "a\r\n.\r\n");
    expect("a", "a\r\n.\r\n");
    expect("a\r\nb", "a\r\nb\r\n.\r\n");
    expect("\r\n", "\r\n.\r\n");
    expect("\r\n\r\n", "\r\n\r\n.\r\n");
}

static void
test_leading_dots(void **state)
{
    (void)state;
    expect(".\r\n", "..\r\n.\r\n");
    expect(".", "..\r\n.\r\n");
    expect("..\r\n", "...\r\n.\r\n");
    expect(".a\r\n.b\r\n", "..a\r\n..b\r\n.\r\n");
    expect("a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n");
    /* Only at the start of a line. */
    expect("a.b\r\n a.\r\n", "a.b\r\n a.\r\n.\r\n");
    expect("Subject: x\r\n\r\n.\r\n..\r\n",
           "Subject: x\r\n\r\n..\r\n...\r\n.\r\n");
}

static void
test_bare_line_ends(void **state)
{
    (void)state;
    /* Never an early end of data at a lenient receiver. */
    expect("a\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n");
    expect("a\r.\r\n", "a\r\n..\r\n.\r\n");
    expect("a\nb", "a\r\nb\r\n.\r\n");
    expect("a\rb", "a\r\nb\r\n.\r\n");
    expect("a\r", "a\r\n.\r\n");
    expect("\r\r\n", "\r\n\r\n.\r\n");
    expect("\n\n", "\r\n\r\n.\r\n");
    expect("\r\n.\r", "\r\n..\r\n.\r\n");
}

static void
test_eight_bit(void **state)
{
    (void)state;
    expect("\xc3\xa9t\xc3\xa9\r\n.\xff\r\n",
           "\xc3\xa9t\xc3\xa9\r\n..\xff\r\n.\r\n");
}

static void
test_chunk_boundaries(void **state)
{
    static const char msg[] = "ab\r\n.cd\r\n..\r\n.\r\nx.y\r\n\r\n.";
    size_t len = sizeof msg - 1, i, j, n, n0, cuts[2];
    uint8_t *want = stuff((const uint8_t *)msg, len, NULL, 0, &n0), *got;

    (void)state;
    /* Every pair of cut points, and one octet at a time. */
    for (i = 0; i <= len; i++) {
        for (j = i; j <= len; j++) {
            cuts[0] = i;
            cuts[1] = j;
            got = stuff((const uint8_t *)msg, len, cuts, 2, &n);
            assert_int_equal(n, n0);
            assert_memory_equal(got, want, n);
            free(got);
        }
    }
    free(want);
}

static void
test_random_against_reference(void **state)
{
    static const uint8_t alphabet[] = {'.', '.', '\r', '\n', '\r', '\n',
                                       'a', ' ', 0x80, 0xff, 0,    'z'};
    uint8_t in[600];
    size_t cuts[8], len, ncuts, i, n, nref;
    uint8_t *got, *want;
    unsigned iter, seed = 20240601;
    int crlf_only;

    (void)state;
    srand(seed);
    for (iter = 0; iter < 20000; iter++) {
        len = (size_t)rand() % sizeof in;
        crlf_only = iter % 2;
        for (i = 0; i < len; i++) {
            in[i] = alphabet[(size_t)rand() % COUNT(alphabet)];
            /* Half of the runs are canonical: CRLF pairs only. */
            if (crlf_only && (in[i] == '\r' || in[i] == '\n')) {
                if (i + 1 < len) {
                    in[i] = '\r';
                    in[++i] = '\n';
                } else {
                    in[i] = 'q';
                }
            }
        }
        ncuts = (size_t)rand() % COUNT(cuts);
        for (i = 0; i < ncuts; i++)
            cuts[i] = len ? (size_t)rand() % (len + 1) : 0;
        for (i = 1; i < ncuts; i++) /* ascending */
            if (cuts[i] < cuts[i - 1])
                cuts[i] = cuts[i - 1];
        got = stuff(in, len, cuts, ncuts, &n);
        want = reference(in, len, &nref);
        assert_int_equal(n, nref);
        assert_memory_equal(got, want, n);
        /* The only CRLF.CRLF is the terminator; every CR has its LF. */
        for (i = 0; i + 1 < n; i++) {
            assert_true((got[i] == '\r') == (got[i + 1] == '\n'));
            if (i + 5 < n)
                assert_false(memcmp(got + i, "\r\n.\r\n", 5) == 0);
        }
        free(got);
        free(want);
    }
}

/* ---- against the octet-at-a-time state machine ------------------------- */

/* dotstuff_feed() as it was before it copied runs: one octet at a time. */
static size_t
bytewise_feed(struct dotstuff *d, const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        uint8_t c = in[i];

        if (d->cr) {
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
            out[o++] = '\r';
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

static size_t
bytewise_end(struct dotstuff *d, uint8_t *out)
{
    size_t o = 0;

    if (d->cr) {
        out[o++] = '\n';
        d->cr = 0;
        d->bol = 1;
    }
    if (!d->bol) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    out[o++] = '.';
    out[o++] = '\r';
    out[o++] = '\n';
    d->bol = 1;
    return o;
}

#define LOCK_MAX 4096

typedef size_t (*feed_fn)(struct dotstuff *, const uint8_t *, size_t,
                          uint8_t *);

/* One piece through an implementation, into out (with guards past the
 * documented bound, checked). */
static size_t
feed_guarded(feed_fn feed, struct dotstuff *d, const uint8_t *in, size_t n,
             uint8_t *out)
{
    size_t got, i;

    memset(out, GUARD, DOTSTUFF_OUT_MAX(n) + 16);
    got = feed(d, in, n, out);
    assert_true(got <= DOTSTUFF_OUT_MAX(n));
    for (i = DOTSTUFF_OUT_MAX(n); i < DOTSTUFF_OUT_MAX(n) + 16; i++)
        assert_int_equal(out[i], GUARD);
    return got;
}

/* Feeds in[0..len) cut at the given points (ascending) to the SIMD, the
 * portable and the octet-at-a-time implementations in step: the same
 * octets out of every piece, the same state after it, the same end. */
static void
lockstep(const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts)
{
    static uint8_t want[DOTSTUFF_OUT_MAX(LOCK_MAX) + 16];
    static uint8_t simd[DOTSTUFF_OUT_MAX(LOCK_MAX) + 16];
    static uint8_t port[DOTSTUFF_OUT_MAX(LOCK_MAX) + 16];
    struct dotstuff dw, ds, dp;
    size_t pos = 0, k, end, nw, ns, np;

    assert_true(len <= LOCK_MAX);
    dotstuff_init(&dw);
    dotstuff_init(&ds);
    scalar_dotstuff_init(&dp);
    for (k = 0; k <= ncuts; k++) {
        end = k < ncuts ? cuts[k] : len;
        if (end < pos)
            continue;
        nw = bytewise_feed(&dw, in + pos, end - pos, want);
        ns = feed_guarded(dotstuff_feed, &ds, in + pos, end - pos, simd);
        np = feed_guarded(scalar_dotstuff_feed, &dp, in + pos, end - pos, port);
        assert_int_equal(ns, nw);
        assert_memory_equal(simd, want, nw);
        assert_int_equal(np, nw);
        assert_memory_equal(port, want, nw);
        assert_int_equal(ds.bol, dw.bol);
        assert_int_equal(ds.cr, dw.cr);
        assert_int_equal(dp.bol, dw.bol);
        assert_int_equal(dp.cr, dw.cr);
        pos = end;
    }
    nw = bytewise_end(&dw, want);
    ns = dotstuff_end(&ds, simd);
    np = scalar_dotstuff_end(&dp, port);
    assert_int_equal(ns, nw);
    assert_memory_equal(simd, want, nw);
    assert_int_equal(np, nw);
    assert_memory_equal(port, want, nw);
}

/* A message rich in '.', CR and LF, in every arrangement, between runs of
 * ordinary octets long and short (the scans step 16 octets at a time). */
static size_t
random_message(uint8_t *in, size_t max)
{
    static const uint8_t special[] = {'.',  '.', '\r', '\n', '\r',
                                      '\n', '.', 0x80, 0,    ' '};
    size_t len = (size_t)rand() % (max + 1), i = 0, run;

    while (i < len) {
        switch (rand() % 6) {
        case 0: /* a canonical line end, often with a '.' after it */
            in[i++] = '\r';
            if (i < len)
                in[i++] = '\n';
            if (i < len && rand() % 2)
                in[i++] = '.';
            break;
        case 1: /* a run of ordinary octets */
            run = (size_t)rand() % (rand() % 4 ? 20 : 90);
            for (; run > 0 && i < len; run--)
                in[i++] = (uint8_t)('A' + rand() % 26);
            break;
        default:
            in[i++] = special[(size_t)rand() % COUNT(special)];
        }
    }
    return len;
}

static void
test_bytewise_random_pieces(void **state)
{
    static uint8_t in[LOCK_MAX];
    size_t cuts[24], len, ncuts, i, max;
    unsigned iter;

    (void)state;
    srand(20240602);
    for (iter = 0; iter < 30000; iter++) {
        max = iter % 10 == 0 ? LOCK_MAX : iter % 3 == 0 ? 400 : 64;
        len = random_message(in, max);
        ncuts = (size_t)rand() % COUNT(cuts);
        for (i = 0; i < ncuts; i++)
            cuts[i] = len ? (size_t)rand() % (len + 1) : 0;
        for (i = 1; i < ncuts; i++) /* ascending */
            if (cuts[i] < cuts[i - 1])
                cuts[i] = cuts[i - 1];
        lockstep(in, len, cuts, ncuts);
    }
}

static void
test_bytewise_every_split(void **state)
{
    static uint8_t in[LOCK_MAX];
    size_t cuts[LOCK_MAX], len, i, j;
    unsigned iter;

    (void)state;
    srand(20240603);
    for (iter = 0; iter < 400; iter++) {
        len = random_message(in, iter % 4 == 0 ? 300 : 40);
        /* Whole, one octet at a time, and every single cut. */
        lockstep(in, len, NULL, 0);
        for (i = 0; i < len; i++)
            cuts[i] = i;
        lockstep(in, len, cuts, len);
        for (i = 0; i <= len; i++) {
            cuts[0] = i;
            lockstep(in, len, cuts, 1);
        }
        /* Every pair of cuts in the short ones. */
        if (len > 40)
            continue;
        for (i = 0; i <= len; i++) {
            for (j = i; j <= len; j++) {
                cuts[0] = i;
                cuts[1] = j;
                lockstep(in, len, cuts, 2);
            }
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_final_crlf),
        cmocka_unit_test(test_leading_dots),
        cmocka_unit_test(test_bare_line_ends),
        cmocka_unit_test(test_eight_bit),
        cmocka_unit_test(test_chunk_boundaries),
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_bytewise_random_pieces),
        cmocka_unit_test(test_bytewise_every_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
