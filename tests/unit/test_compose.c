/* SPDX-License-Identifier: MIT */
/* The composer's encoders: RFC 2047 encoded words, RFC 2231 parameters,
 * folding, quoted-printable and base64 (fed in pieces of every size), the
 * body scan, dates and message IDs. */
#include "compose.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

static void collect(void *arg, const char *data, size_t len);
static size_t b64_decode(const char *in, size_t len, unsigned char *out);
static char *decode_words(const char *field);
static void check_lines(const char *text, size_t max);
static char *qp(const char *in, size_t len, size_t piece);
static size_t qp_decode(const char *in, char *out);

static void
collect(void *arg, const char *data, size_t len)
{
    aimx__buf_add(arg, data, len);
}

static size_t
b64_decode(const char *in, size_t len, unsigned char *out)
{
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    size_t pad = 0;

    assert_true(n >= 0);
    while (len > 0 && in[len - 1] == '=') {
        pad++;
        len--;
    }
    return (size_t)n - pad;
}

/* The text of every =?UTF-8?B?...?= word in a field, joined. */
static char *
decode_words(const char *field)
{
    char *out = calloc(1, strlen(field) + 1);
    size_t o = 0;

    for (const char *p = field; (p = strstr(p, "=?UTF-8?B?")) != NULL;) {
        const char *end = strstr(p + 10, "?=");
        assert_non_null(end);
        assert_true(end + 2 - p <= 75); /* RFC 2047 2 */
        o += b64_decode(p + 10, (size_t)(end - p - 10),
                        (unsigned char *)out + o);
        /* Each word holds whole characters (RFC 2047 5). */
        assert_true(aimx__utf8_valid(out, o));
        p = end + 2;
    }
    out[o] = '\0';
    return out;
}

static void
check_lines(const char *text, size_t max)
{
    for (const char *p = text; *p;) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        if ((size_t)(eol - p) > max)
            fail_msg("line of %zu octets (max %zu): %.*s", (size_t)(eol - p),
                     max, (int)(eol - p), p);
        /* No bare LF inside. */
        assert_null(memchr(p, '\n', (size_t)(eol - p)));
        p = eol + 2;
    }
}

static void
encoded_words(void **state)
{
    aimx_buf b = {0};
    aimx_hdr h;
    /* 60 euro signs: 180 octets, each 3 octets that must not be split. */
    char text[256] = "";
    char *dec;

    (void)state;
    for (int i = 0; i < 60; i++)
        strcat(text, "\xe2\x82\xac");
    aimx__hdr_begin(&h, &b, "Subject");
    aimx__hdr_unstructured(&h, text);
    aimx__hdr_end(&h);
    check_lines(b.p, 78);
    dec = decode_words(b.p);
    assert_string_equal(dec, text);
    free(dec);
    aimx__buf_free(&b);

    /* Plain ASCII is folded at its spaces, not encoded. */
    aimx__hdr_begin(&h, &b, "Subject");
    aimx__hdr_unstructured(&h, "the quick brown fox jumps over the lazy dog "
                               "and then runs far far away over the hills "
                               "and beyond  two spaces");
    aimx__hdr_end(&h);
    assert_null(strstr(b.p, "=?"));
    check_lines(b.p, 78);
    assert_non_null(strstr(b.p, "\r\n "));
    assert_non_null(strstr(b.p, "beyond  two"));
    aimx__buf_free(&b);

    /* ASCII that looks like an encoded word, or has an unfoldable word, is
     * encoded so it reads back exactly. */
    aimx__hdr_begin(&h, &b, "Subject");
    aimx__hdr_unstructured(&h, "=?x?Q?y?=");
    aimx__hdr_end(&h);
    dec = decode_words(b.p);
    assert_string_equal(dec, "=?x?Q?y?=");
    free(dec);
    aimx__buf_free(&b);
    char longword[200];
    memset(longword, 'w', 150);
    longword[150] = '\0';
    aimx__hdr_begin(&h, &b, "Subject");
    aimx__hdr_unstructured(&h, longword);
    aimx__hdr_end(&h);
    check_lines(b.p, 78);
    dec = decode_words(b.p);
    assert_string_equal(dec, longword);
    free(dec);
    aimx__buf_free(&b);
}

static void
mailboxes(void **state)
{
    aimx_mailbox m[3] = {
        {"Jane Doe", "jane@x.test", 0},
        {"Doe, J. \"JD\"", "jd@x.test", 0},
        {"J\xc3\xbcrgen", "j@x.test", 0},
    };
    aimx_buf b = {0};
    aimx_hdr h;

    (void)state;
    aimx__hdr_begin(&h, &b, "To");
    aimx__hdr_mailboxes(&h, m, 3);
    aimx__hdr_end(&h);
    check_lines(b.p, 78);
    assert_non_null(strstr(b.p, "To: Jane Doe <jane@x.test>,"));
    assert_non_null(strstr(b.p, "\"Doe, J. \\\"JD\\\"\" <jd@x.test>"));
    assert_non_null(strstr(b.p, "=?UTF-8?B?SsO8cmdlbg==?= <j@x.test>"));
    aimx__buf_free(&b);
}

static void
rfc2231(void **state)
{
    aimx_buf b = {0};
    aimx_hdr h;
    char name[512] = "";

    (void)state;
    aimx__hdr_begin(&h, &b, "Content-Disposition");
    aimx__hdr_token(&h, " ", "attachment", 10);
    aimx__hdr_param(&h, "filename", "report.pdf");
    aimx__hdr_end(&h);
    assert_string_equal(
        b.p, "Content-Disposition: attachment; filename=\"report.pdf\"\r\n");
    aimx__buf_free(&b);

    aimx__hdr_begin(&h, &b, "Content-Disposition");
    aimx__hdr_token(&h, " ", "attachment", 10);
    aimx__hdr_param(&h, "filename", "r\xc3\xa9sum\xc3\xa9 1.pdf");
    aimx__hdr_end(&h);
    assert_non_null(
        strstr(b.p, "filename*=utf-8''r%C3%A9sum%C3%A9%201.pdf\r\n"));
    aimx__buf_free(&b);

    /* A long name: continuations, none splitting a character. */
    for (int i = 0; i < 30; i++)
        strcat(name, "\xc3\xa9t\xc3\xa9");
    aimx__hdr_begin(&h, &b, "Content-Disposition");
    aimx__hdr_token(&h, " ", "attachment", 10);
    aimx__hdr_param(&h, "filename", name);
    aimx__hdr_end(&h);
    check_lines(b.p, 78);
    assert_non_null(strstr(b.p, "filename*0*=utf-8''%C3%A9t%C3%A9"));
    assert_non_null(strstr(b.p, "filename*1*=%C3"));
    assert_null(strstr(b.p, "filename*1*=utf-8"));
    aimx__buf_free(&b);

    /* ASCII with a quote is encoded rather than escaped. */
    aimx__hdr_begin(&h, &b, "Content-Type");
    aimx__hdr_param(&h, "name", "a\"b.txt");
    aimx__hdr_end(&h);
    assert_non_null(strstr(b.p, "name*=utf-8''a%22b.txt"));
    aimx__buf_free(&b);
}

static char *
qp(const char *in, size_t len, size_t piece)
{
    aimx_buf b = {0};
    aimx_qp q;

    aimx__qp_init(&q, collect, &b);
    for (size_t i = 0; i < len; i += piece)
        aimx__qp_feed(&q, in + i, len - i < piece ? len - i : piece);
    aimx__qp_end(&q);
    if (b.p == NULL)
        return calloc(1, 1);
    return b.p;
}

/* RFC 2045 6.7 decoding, enough for these tests. */
static size_t
qp_decode(const char *in, char *out)
{
    size_t o = 0;

    for (const char *p = in; *p;) {
        if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
            p += 3;
        } else if (p[0] == '=') {
            unsigned v;
            assert_int_equal(sscanf(p + 1, "%2X", &v), 1);
            out[o++] = (char)v;
            p += 3;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return o;
}

static void
quoted_printable(void **state)
{
    char *a, *b, dec[8192];
    char text[4096];

    (void)state;
    a = qp("caf\xc3\xa9 = ok \t\nend", strlen("caf\xc3\xa9 = ok \t\nend"),
           1000);
    assert_string_equal(a, "caf=C3=A9 =3D ok =09\r\nend\r\n");
    free(a);

    /* LF and CRLF give the same; a bare CR is encoded. */
    a = qp("a\nb\n", 4, 1000);
    b = qp("a\r\nb\r\n", 6, 1000);
    assert_string_equal(a, b);
    free(a);
    free(b);
    a = qp("a\rb", 3, 1000);
    assert_string_equal(a, "a=0Db\r\n");
    free(a);

    /* A long line with non-ASCII: soft breaks, never inside =XX, lines of
     * at most 76; every split of the input gives the same output. */
    text[0] = '\0';
    for (int i = 0; i < 200; i++)
        strcat(text, i % 7 == 0 ? "\xc3\xa9 " : "word ");
    strcat(text, "\n\nlast line with trailing space \n");
    a = qp(text, strlen(text), 100000);
    check_lines(a, 76);
    qp_decode(a, dec);
    /* Decoding gives the text back with CRLF line breaks. */
    assert_non_null(strstr(dec, "last line with trailing space \r\n"));
    for (size_t piece = 1; piece < 9; piece++) {
        b = qp(text, strlen(text), piece);
        assert_string_equal(a, b);
        free(b);
    }
    free(a);

    /* Text without a final line break gets one; trailing space at the very
     * end is encoded. */
    a = qp("x ", 2, 1);
    assert_string_equal(a, "x=20\r\n");
    free(a);
    a = qp("", 0, 1);
    assert_string_equal(a, "");
    free(a);
}

static void
base64_stream(void **state)
{
    unsigned char data[1000], dec[2000];
    aimx_buf whole = {0};
    aimx_b64 e;

    (void)state;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    aimx__b64_init(&e, collect, &whole);
    aimx__b64_feed(&e, data, sizeof data);
    aimx__b64_end(&e);
    check_lines(whole.p, 76);
    for (size_t piece = 1; piece < 8; piece++) {
        aimx_buf b = {0};
        aimx__b64_init(&e, collect, &b);
        for (size_t i = 0; i < sizeof data; i += piece)
            aimx__b64_feed(&e, data + i,
                           sizeof data - i < piece ? sizeof data - i : piece);
        aimx__b64_end(&e);
        assert_string_equal(b.p, whole.p);
        aimx__buf_free(&b);
    }
    /* Decode line by line. */
    size_t o = 0;
    for (const char *p = whole.p; *p;) {
        const char *eol = strstr(p, "\r\n");
        o += b64_decode(p, (size_t)(eol - p), dec + o);
        p = eol + 2;
    }
    assert_int_equal(o, sizeof data);
    assert_memory_equal(dec, data, sizeof data);
    aimx__buf_free(&whole);
}

static void
body_scan(void **state)
{
    aimx_body_scan s;
    char line[1001];

    (void)state;
    aimx__body_scan_init(&s);
    aimx__body_scan_feed(&s, "plain ascii\r\nlines\n", 19);
    aimx__body_scan_end(&s);
    assert_true(s.seven_bit);
    assert_int_equal(s.bad_line, 0);

    /* UTF-8 split across pieces is still valid, but not 7bit. */
    aimx__body_scan_init(&s);
    aimx__body_scan_feed(&s, "a\xe2", 2);
    aimx__body_scan_feed(&s, "\x82", 1);
    aimx__body_scan_feed(&s, "\xac\n", 2);
    aimx__body_scan_end(&s);
    assert_false(s.seven_bit);
    assert_int_equal(s.bad_line, 0);

    /* Invalid UTF-8 and NUL name their line. */
    aimx__body_scan_init(&s);
    aimx__body_scan_feed(&s, "ok\nok\n\xff\n", 8);
    aimx__body_scan_end(&s);
    assert_int_equal(s.bad_line, 3);
    aimx__body_scan_init(&s);
    aimx__body_scan_feed(&s, "ok\nn\0l\n", 7);
    aimx__body_scan_end(&s);
    assert_int_equal(s.bad_line, 2);

    /* 998 octets fit 7bit, 999 do not; a CRLF does not count. */
    memset(line, 'x', 998);
    aimx__body_scan_init(&s);
    aimx__body_scan_feed(&s, line, 998);
    aimx__body_scan_feed(&s, "\r", 1);
    aimx__body_scan_feed(&s, "\n", 1);
    aimx__body_scan_end(&s);
    assert_true(s.seven_bit);
    aimx__body_scan_init(&s);
    aimx__body_scan_feed(&s, line, 998);
    aimx__body_scan_feed(&s, "y\n", 2);
    aimx__body_scan_end(&s);
    assert_false(s.seven_bit);

    /* A bare CR is not 7bit text. */
    aimx__body_scan_init(&s);
    aimx__body_scan_feed(&s, "a\rb\n", 4);
    aimx__body_scan_end(&s);
    assert_false(s.seven_bit);
}

static void
small_fields(void **state)
{
    char out[1024], err[512], a[128], b[128];
    int d, y, hh, mm, ss;
    char wd[8], mon[8], zone[8];

    (void)state;
    aimx__rfc5322_date(0, out, sizeof out);
    assert_int_equal(sscanf(out, "%3s, %d %3s %d %d:%d:%d %5s", wd, &d, mon, &y,
                            &hh, &mm, &ss, zone),
                     8);
    assert_true(zone[0] == '+' || zone[0] == '-');
    assert_string_equal(aimx__content_type_for("a.PDF"), "application/pdf");
    assert_string_equal(aimx__content_type_for("x.tar.gz"), "application/gzip");
    assert_string_equal(aimx__content_type_for("photo.jpeg"), "image/jpeg");
    assert_string_equal(aimx__content_type_for("noext"),
                        "application/octet-stream");
    assert_string_equal(aimx__content_type_for(".txt"),
                        "application/octet-stream");
    assert_int_equal(
        aimx__msgid_normalize("abc.1@x.test", out, sizeof out, err, sizeof err),
        0);
    assert_string_equal(out, "<abc.1@x.test>");
    assert_int_equal(aimx__msgid_normalize("<a@[literal]>", out, sizeof out,
                                           err, sizeof err),
                     0);
    assert_int_not_equal(
        aimx__msgid_normalize("no-at", out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(err, "'no-at'"));
    assert_int_not_equal(
        aimx__msgid_normalize("<a b@x>", out, sizeof out, err, sizeof err), 0);
    assert_int_not_equal(
        aimx__msgid_normalize("<a@x>\r\n", out, sizeof out, err, sizeof err),
        0);
    aimx__msgid_generate("sender.test", a, sizeof a);
    aimx__msgid_generate("sender.test", b, sizeof b);
    assert_string_not_equal(a, b);
    assert_int_equal(aimx__msgid_normalize(a, out, sizeof out, err, sizeof err),
                     0);
    assert_string_equal(out, a);
    assert_non_null(strstr(a, "@sender.test>"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encoded_words), cmocka_unit_test(mailboxes),
        cmocka_unit_test(rfc2231),       cmocka_unit_test(quoted_printable),
        cmocka_unit_test(base64_stream), cmocka_unit_test(body_scan),
        cmocka_unit_test(small_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
