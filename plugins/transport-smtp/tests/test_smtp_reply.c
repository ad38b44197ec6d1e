/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the SMTP reply parser: single and multiline replies, codes
 * that disagree, the line length and line count bounds, garbage, replies
 * split across feeds at every byte position, pipelined replies in one
 * feed, enhanced status codes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_reply.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* What a feed produced, reply by reply, for comparing ways of feeding. */
struct trace {
    int status[16];
    struct smtp_reply replies[16];
    size_t n;
    int error;
};

struct lines_seen {
    char text[8][64];
    unsigned index[8];
    size_t n;
};

static void
on_line(void *arg, const char *text, size_t len, unsigned index)
{
    struct lines_seen *l = arg;

    if (l->n >= COUNT(l->text))
        return;
    snprintf(l->text[l->n], sizeof l->text[0], "%.*s", (int)len, text);
    l->index[l->n++] = index;
}

/* Feeds s in pieces of at most `piece` octets (the split points first, if
 * given), collecting every reply. */
static void
feed_all(const char *s, size_t len, const size_t *splits, size_t nsplits,
         size_t piece, struct trace *t)
{
    struct smtp_reply_parser p;
    size_t pos = 0, end, used, k = 0;
    int r;

    memset(t, 0, sizeof *t);
    smtp_reply_parser_init(&p);
    while (pos < len) {
        end = k < nsplits ? splits[k++] : len;
        if (piece && end - pos > piece)
            end = pos + piece;
        if (end <= pos)
            continue;
        while (pos < end) {
            r = smtp_reply_feed(&p, s + pos, end - pos, &used,
                                &t->replies[t->n]);
            assert_true(used <= end - pos);
            pos += used;
            if (r == SMTP_REPLY_MORE) {
                assert_int_equal(pos, end);
                break;
            }
            assert_true(t->n < COUNT(t->replies));
            t->status[t->n++] = r;
            if (r == SMTP_REPLY_ERROR) {
                t->error = p.error;
                return;
            }
        }
    }
}

/* Equal in every field that is in use (the text's tail is not). */
static void
same_reply(const struct smtp_reply *a, const struct smtp_reply *b)
{
    assert_int_equal(a->code, b->code);
    assert_string_equal(a->enhanced, b->enhanced);
    assert_int_equal(a->lines, b->lines);
    assert_int_equal(a->truncated, b->truncated);
    assert_int_equal(a->text_len, b->text_len);
    assert_memory_equal(a->text, b->text, a->text_len + 1);
}

static int
one(const char *s, struct smtp_reply *out, size_t *used, int *error)
{
    struct smtp_reply_parser p;
    int r;

    smtp_reply_parser_init(&p);
    r = smtp_reply_feed(&p, s, strlen(s), used, out);
    *error = p.error;
    return r;
}

static void
test_single_line(void **state)
{
    struct smtp_reply r;
    size_t used;
    int err;

    (void)state;
    assert_int_equal(one("250 OK\r\n", &r, &used, &err), SMTP_REPLY_DONE);
    assert_int_equal(used, 8);
    assert_int_equal(r.code, 250);
    assert_string_equal(r.text, "OK");
    assert_int_equal(r.lines, 1);
    assert_string_equal(r.enhanced, "");
    /* "NNN" alone ends a reply too (RFC 5321 4.2). */
    assert_int_equal(one("221\r\n", &r, &used, &err), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 221);
    assert_string_equal(r.text, "");
    /* Incomplete: everything consumed, nothing yet. */
    assert_int_equal(one("250 O", &r, &used, &err), SMTP_REPLY_MORE);
    assert_int_equal(used, 5);
}

static void
test_multiline(void **state)
{
    struct smtp_reply_parser p;
    struct smtp_reply r;
    struct lines_seen seen;
    const char *s = "250-mx.test greets you\r\n250-PIPELINING\r\n250-SIZE "
                    "1000\r\n250 8BITMIME\r\n";
    size_t used;

    (void)state;
    memset(&seen, 0, sizeof seen);
    smtp_reply_parser_init(&p);
    p.on_line = on_line;
    p.on_line_arg = &seen;
    assert_int_equal(smtp_reply_feed(&p, s, strlen(s), &used, &r),
                     SMTP_REPLY_DONE);
    assert_int_equal(used, strlen(s));
    assert_int_equal(r.code, 250);
    assert_int_equal(r.lines, 4);
    assert_string_equal(r.text,
                        "mx.test greets you PIPELINING SIZE 1000 8BITMIME");
    assert_int_equal(seen.n, 4);
    assert_string_equal(seen.text[0], "mx.test greets you");
    assert_string_equal(seen.text[2], "SIZE 1000");
    assert_int_equal(seen.index[3], 3);
}

static void
test_mixed_codes(void **state)
{
    struct smtp_reply r;
    size_t used;
    int err;

    (void)state;
    assert_int_equal(one("250-a\r\n251 b\r\n", &r, &used, &err),
                     SMTP_REPLY_ERROR);
    assert_int_equal(err, SMTP_REPLY_E_MIXED_CODES);
    /* The same first digit is not enough. */
    assert_int_equal(one("550-a\r\n551-b\r\n550 c\r\n", &r, &used, &err),
                     SMTP_REPLY_ERROR);
    assert_int_equal(err, SMTP_REPLY_E_MIXED_CODES);
}

static void
test_line_length(void **state)
{
    char *s = malloc(SMTP_REPLY_LINE_MAX + 16);
    struct smtp_reply r;
    size_t used;
    int err;

    (void)state;
    assert_non_null(s);
    /* Exactly the limit, line end excluded: accepted. */
    memcpy(s, "250 ", 4);
    memset(s + 4, 'x', SMTP_REPLY_LINE_MAX - 4);
    strcpy(s + SMTP_REPLY_LINE_MAX, "\r\n");
    assert_int_equal(one(s, &r, &used, &err), SMTP_REPLY_DONE);
    assert_int_equal(r.text_len, SMTP_REPLY_LINE_MAX - 4);
    /* One more: refused as soon as it is seen, without its line end. */
    memset(s + 4, 'x', SMTP_REPLY_LINE_MAX - 3);
    s[SMTP_REPLY_LINE_MAX + 1] = '\0';
    assert_int_equal(one(s, &r, &used, &err), SMTP_REPLY_ERROR);
    assert_int_equal(err, SMTP_REPLY_E_LINE_LONG);
    assert_int_equal(used, SMTP_REPLY_LINE_MAX + 1);
    free(s);
}

static void
test_line_count(void **state)
{
    size_t len = (SMTP_REPLY_LINES_MAX + 1) * 8 + 1, o = 0, i;
    char *s = malloc(len);
    struct smtp_reply r;
    size_t used;
    int err;

    (void)state;
    assert_non_null(s);
    for (i = 0; i + 1 < SMTP_REPLY_LINES_MAX; i++)
        o += (size_t)sprintf(s + o, "250-x\r\n");
    o += (size_t)sprintf(s + o, "250 x\r\n");
    assert_int_equal(one(s, &r, &used, &err), SMTP_REPLY_DONE);
    assert_int_equal(r.lines, SMTP_REPLY_LINES_MAX);
    /* One line more. */
    o -= 7;
    o += (size_t)sprintf(s + o, "250-x\r\n250 x\r\n");
    assert_int_equal(one(s, &r, &used, &err), SMTP_REPLY_ERROR);
    assert_int_equal(err, SMTP_REPLY_E_TOO_MANY_LINES);
    free(s);
}

static void
test_garbage(void **state)
{
    static const struct {
        const char *in;
        int error;
        size_t used; /* where it is caught; 0: do not check */
    } cases[] = {
        {"SSH-2.0-OpenSSH_9.2p1 not-smtp\r\n", SMTP_REPLY_E_GARBAGE, 1},
        {"HTTP/1.1 400 Bad Request\r\n", SMTP_REPLY_E_GARBAGE, 1},
        {"25\r\n", SMTP_REPLY_E_GARBAGE, 0},
        {"\r\n", SMTP_REPLY_E_GARBAGE, 0},
        {"2500 x\r\n", SMTP_REPLY_E_SEPARATOR, 4},
        {"250x\r\n", SMTP_REPLY_E_SEPARATOR, 4},
        {"150 x\r\n", SMTP_REPLY_E_GARBAGE, 1},
        {"600 x\r\n", SMTP_REPLY_E_GARBAGE, 1},
        {"2a0 x\r\n", SMTP_REPLY_E_GARBAGE, 2},
        {"250 a\0b\r\n", SMTP_REPLY_E_NUL, 0},
        {"250-a\r\nxyz\r\n", SMTP_REPLY_E_GARBAGE, 8},
    };
    struct smtp_reply_parser p;
    struct smtp_reply r;
    size_t i, used, len;

    (void)state;
    for (i = 0; i < COUNT(cases); i++) {
        len = strlen(cases[i].in);
        if (cases[i].error == SMTP_REPLY_E_NUL)
            len = 9;
        smtp_reply_parser_init(&p);
        assert_int_equal(smtp_reply_feed(&p, cases[i].in, len, &used, &r),
                         SMTP_REPLY_ERROR);
        assert_int_equal(p.error, cases[i].error);
        if (cases[i].used)
            assert_int_equal(used, cases[i].used);
        /* Sticky: nothing more is taken. */
        assert_int_equal(smtp_reply_feed(&p, "250 ok\r\n", 8, &used, &r),
                         SMTP_REPLY_ERROR);
        assert_int_equal(used, 0);
        assert_non_null(smtp_reply_strerror(p.error));
    }
}

static void
test_bare_lf_and_cr(void **state)
{
    struct trace t;
    const char *s = "250-first\n250 second\n354 go\r\n";
    struct smtp_reply r;
    size_t used;
    int err;

    (void)state;
    feed_all(s, strlen(s), NULL, 0, 0, &t);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.replies[0].text, "first second");
    assert_int_equal(t.replies[1].code, 354);
    /* A CR that does not end a line is text. */
    assert_int_equal(one("250 a\rb\r\n", &r, &used, &err), SMTP_REPLY_DONE);
    assert_string_equal(r.text, "a\rb");
}

static const char pipelined[] =
    "250 2.1.0 sender ok\r\n"
    "250-2.1.5 recipient\r\n250 2.1.5 ok\r\n"
    "550-5.1.1 no such\r\n550-5.1.1 user\r\n550 5.1.1 here\r\n"
    "452 4.5.3 too many recipients\r\n"
    "354 go ahead\r\n";

static void
check_pipelined(const struct trace *t)
{
    assert_int_equal(t->n, 5);
    assert_int_equal(t->status[4], SMTP_REPLY_DONE);
    assert_int_equal(t->replies[0].code, 250);
    assert_string_equal(t->replies[0].enhanced, "2.1.0");
    assert_string_equal(t->replies[0].text, "sender ok");
    assert_string_equal(t->replies[1].text, "recipient ok");
    assert_int_equal(t->replies[2].code, 550);
    assert_int_equal(t->replies[2].lines, 3);
    assert_string_equal(t->replies[2].enhanced, "5.1.1");
    assert_string_equal(t->replies[2].text, "no such user here");
    assert_int_equal(t->replies[3].code, 452);
    assert_string_equal(t->replies[3].enhanced, "4.5.3");
    assert_int_equal(t->replies[4].code, 354);
    assert_string_equal(t->replies[4].text, "go ahead");
}

static void
test_pipelined_one_feed(void **state)
{
    struct trace t;

    (void)state;
    feed_all(pipelined, strlen(pipelined), NULL, 0, 0, &t);
    check_pipelined(&t);
}

static void
test_split_everywhere(void **state)
{
    struct trace t, whole;
    size_t len = strlen(pipelined), i, j, k, splits[2];

    (void)state;
    feed_all(pipelined, len, NULL, 0, 0, &whole);
    /* One split at every position, then two at every pair. */
    for (i = 1; i < len; i++) {
        splits[0] = i;
        feed_all(pipelined, len, splits, 1, 0, &t);
        check_pipelined(&t);
        for (j = i + 1; j < len; j += 3) {
            splits[1] = j;
            feed_all(pipelined, len, splits, 2, 0, &t);
            assert_int_equal(t.n, whole.n);
            for (k = 0; k < t.n; k++)
                same_reply(&t.replies[k], &whole.replies[k]);
        }
    }
    /* Octet by octet, as the fault peer's split_replies sends them. */
    feed_all(pipelined, len, NULL, 0, 1, &t);
    check_pipelined(&t);
}

static void
test_enhanced(void **state)
{
    static const struct {
        const char *in;
        const char *enhanced;
        const char *text;
    } cases[] = {
        {"550 5.1.1 user unknown\r\n", "5.1.1", "user unknown"},
        {"250 2.0.0\r\n", "2.0.0", ""},
        {"451 4.7.1 greylisted\r\n", "4.7.1", "greylisted"},
        {"552 5.123.456 big\r\n", "5.123.456", "big"},
        /* The class must agree with the code (RFC 3463): kept as text. */
        {"550 4.1.1 odd\r\n", "", "4.1.1 odd"},
        {"250 2.0.0x\r\n", "", "2.0.0x"},
        {"250 2.1000.0 x\r\n", "", "2.1000.0 x"},
        {"250 2..0 x\r\n", "", "2..0 x"},
        {"250 2.0. x\r\n", "", "2.0. x"},
        {"250 3.0.0 x\r\n", "", "3.0.0 x"},
        {"250 ok 2.0.0\r\n", "", "ok 2.0.0"},
        /* Repeated on every line: stripped; a different one is text. */
        {"550-5.1.1 a\r\n550 5.1.1 b\r\n", "5.1.1", "a b"},
        {"550-5.1.1 a\r\n550 5.7.1 b\r\n", "5.1.1", "a 5.7.1 b"},
    };
    struct smtp_reply r;
    size_t i, used;
    int err;

    (void)state;
    for (i = 0; i < COUNT(cases); i++) {
        assert_int_equal(one(cases[i].in, &r, &used, &err), SMTP_REPLY_DONE);
        assert_string_equal(r.enhanced, cases[i].enhanced);
        assert_string_equal(r.text, cases[i].text);
    }
}

static void
test_text_bounded(void **state)
{
    size_t len = 40 * 100 + 1, o = 0, i;
    char *s = malloc(len);
    struct smtp_reply r;
    size_t used;
    int err;

    (void)state;
    assert_non_null(s);
    for (i = 0; i < 99; i++)
        o += (size_t)sprintf(s + o, "250-%034zu\r\n", i);
    sprintf(s + o, "250 last\r\n");
    assert_int_equal(one(s, &r, &used, &err), SMTP_REPLY_DONE);
    assert_true(r.truncated);
    assert_int_equal(r.text_len, strlen(r.text));
    assert_true(r.text_len < sizeof r.text);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_line),
        cmocka_unit_test(test_multiline),
        cmocka_unit_test(test_mixed_codes),
        cmocka_unit_test(test_line_length),
        cmocka_unit_test(test_line_count),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_bare_lf_and_cr),
        cmocka_unit_test(test_pipelined_one_feed),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_enhanced),
        cmocka_unit_test(test_text_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
