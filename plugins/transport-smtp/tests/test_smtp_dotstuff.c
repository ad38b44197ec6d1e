/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the dot-stuffing stream: lines starting with '.', a '.'
 * or a CRLF split across pieces, the empty message, the final CRLF, bare
 * CR and LF, and random messages against a reference written apart, cut
 * into random pieces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dotstuff.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
