/* SPDX-License-Identifier: MIT */
/* The canonical spool: line endings across every chunk boundary, the
 * checks with their line numbers, Bcc removal, kept values, the fields
 * DKIM signs, the body hash, prepending, and an unnamed file that leaves
 * nothing behind; random messages in random pieces against a line-by-line
 * model, and prepending to spools of every size around the write size. */
#include "address.h"
#include "message.h"
#include "spool.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[] = "/tmp/aimx-spool-test-XXXXXX";

static int spool_text(aimx_spool *s, const char *text, size_t len, size_t piece,
                      unsigned flags);
static char *contents(const aimx_spool *s);
static size_t entries(void);

static int
setup(void **state)
{
    (void)state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

/* Spools text fed in pieces of `piece` octets; returns finish()'s code. */
static int
spool_text(aimx_spool *s, const char *text, size_t len, size_t piece,
           unsigned flags)
{
    assert_int_equal(aimx__spool_open(s, dir, flags), 0);
    for (size_t i = 0; i < len; i += piece)
        if (aimx__spool_write(s, text + i, len - i < piece ? len - i : piece) !=
            0)
            return s->error;
    return aimx__spool_finish(s);
}

static char *
contents(const aimx_spool *s)
{
    char *buf = malloc(s->size + 1);
    aimx_msg m;
    int64_t n;
    size_t o = 0;

    aimx__msg_init(&m, s->fd, s->size);
    while ((n = aimx__msg_read(&m, buf + o, 7)) > 0)
        o += (size_t)n;
    assert_int_equal(n, 0);
    assert_int_equal(o, s->size);
    buf[o] = '\0';
    return buf;
}

static size_t
entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void
line_endings_across_chunks(void **state)
{
    static const char lf[] = "From: a@x.test\nSubject: hi\n there\n\nbody\n"
                             "\nlast";
    static const char crlf[] = "From: a@x.test\r\nSubject: hi\r\n there\r\n"
                               "\r\nbody\r\n\r\nlast";
    static const char mixed[] = "From: a@x.test\r\nSubject: hi\n there\r\n"
                                "\nbody\r\n\nlast\n";
    static const char want[] = "From: a@x.test\r\nSubject: hi\r\n there\r\n"
                               "\r\nbody\r\n\r\nlast\r\n";
    const char *inputs[] = {lf, crlf, mixed};

    (void)state;
    for (size_t k = 0; k < 3; k++) {
        /* Every piece size, so every CR/LF pair is split somewhere. */
        for (size_t piece = 1; piece <= strlen(inputs[k]); piece++) {
            aimx_spool s;
            assert_int_equal(
                spool_text(&s, inputs[k], strlen(inputs[k]), piece, 0), 0);
            char *got = contents(&s);
            assert_string_equal(got, want);
            assert_int_equal(s.size, strlen(want));
            assert_false(s.eightbit);
            free(got);
            aimx__spool_close(&s);
        }
    }
    assert_int_equal(entries(), 0);
}

static void
checks_name_the_line(void **state)
{
    static const struct {
        const char *text;
        size_t len;
        const char *needle;
    } cases[] = {
        {"", 0, "the message is empty"},
        {"\nbody\n", 6, "no header section: line 1 is empty"},
        {" folded\n", 8, "line 1 starts with white space"},
        {"From a@x Mon\n\nbody\n", 19, "line 1 is not a header field"},
        {"From: a\nnot a header\n\nbody\n", 27, "line 2 is not a header"},
        {"From: a\n\nb\0dy\n", 14, "line 3 contains a NUL"},
        {"From: a\n\nbo\rdy\n", 15, "line 3 contains a bare CR"},
        {"From: a\n\nbody\r", 14, "line 3 contains a bare CR"},
    };
    char *text = malloc(2100);

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aimx_spool s;
        assert_int_equal(spool_text(&s, cases[i].text, cases[i].len, 3, 0), 65);
        if (strstr(s.message, cases[i].needle) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, s.message,
                     cases[i].needle);
        aimx__spool_close(&s);
    }
    /* 998 octets are fine with either line ending; 999 are not. */
    for (size_t extra = 0; extra < 2; extra++) {
        for (int crlf = 0; crlf < 2; crlf++) {
            aimx_spool s;
            size_t n = 0;
            n += (size_t)sprintf(text, "From: a\n\nok\n");
            memset(text + n, 'x', 998 + extra);
            n += 998 + extra;
            if (crlf)
                text[n++] = '\r';
            text[n++] = '\n';
            int rc = spool_text(&s, text, n, 64, 0);
            if (extra == 0) {
                assert_int_equal(rc, 0);
            } else {
                assert_int_equal(rc, 65);
                assert_non_null(strstr(s.message, "line 4 is longer than 998"));
            }
            aimx__spool_close(&s);
        }
    }
    /* Without a final line break, too. */
    {
        aimx_spool s;
        size_t n = (size_t)sprintf(text, "From: a\n\n");
        memset(text + n, 'x', 999);
        assert_int_equal(spool_text(&s, text, n + 999, 5000, 0), 65);
        assert_non_null(strstr(s.message, "line 3 is longer than 998"));
        aimx__spool_close(&s);
    }
    free(text);
    assert_int_equal(entries(), 0);
}

static void
header_fields(void **state)
{
    static const char text[] = "Received: x\n"
                               "From: A <a@x.test>\n"
                               "To: b@y.test,\n c@z.test\n"
                               "bcc: secret@x.test,\n\tother@x.test\n"
                               "Subject: caf\xc3\xa9\n"
                               "To: d@y.test\n"
                               "Cc: e@y.test\n"
                               "\n"
                               "body \xe2\x82\xac\n";
    aimx_spool s;
    aimx_dkim_field f[AIMX_F_SIGNED * AIMX_SPOOL_KEEP];
    char *got;

    (void)state;
    assert_int_equal(spool_text(&s, text, strlen(text), 5,
                                AIMX_SPOOL_DROP_BCC | AIMX_SPOOL_COLLECT_RCPT),
                     0);
    got = contents(&s);
    /* Bcc goes, with its continuation line; nothing else changes. */
    assert_null(strstr(got, "secret"));
    assert_null(strstr(got, "other@"));
    assert_null(strstr(got, "bcc"));
    assert_non_null(strstr(got, "To: b@y.test,\r\n c@z.test\r\nSubject:"));
    assert_string_equal(aimx__spool_value(&s, AIMX_F_FROM), " A <a@x.test>");
    assert_string_equal(aimx__spool_value(&s, AIMX_F_TO),
                        " b@y.test, c@z.test,  d@y.test");
    assert_string_equal(aimx__spool_value(&s, AIMX_F_BCC),
                        " secret@x.test,\tother@x.test");
    assert_string_equal(aimx__spool_value(&s, AIMX_F_CC), " e@y.test");
    assert_null(aimx__spool_value(&s, AIMX_F_REPLY_TO));
    assert_true(s.eightbit);
    assert_true(s.header_8bit);
    assert_true(s.utf8);

    /* The signed fields, in h= order, the later To first. */
    size_t n = aimx__spool_signed_fields(&s, f);
    assert_int_equal(n, 5);
    const char *names[] = {"from", "to", "to", "cc", "subject"};
    const char *starts[] = {"From: A", "To: d@", "To: b@", "Cc: e",
                            "Subject: caf"};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(f[i].name, names[i]);
        assert_memory_equal(got + f[i].offset, starts[i], strlen(starts[i]));
        /* The recorded length ends right before the field's CRLF. */
        assert_memory_equal(got + f[i].offset + f[i].len, "\r\n", 2);
        assert_true(got[f[i].offset + f[i].len + 2] != ' ');
    }
    free(got);
    aimx__spool_close(&s);

    /* Without the flags Bcc stays and recipients are not kept. */
    assert_int_equal(spool_text(&s, text, strlen(text), 1000, 0), 0);
    got = contents(&s);
    assert_non_null(strstr(got, "bcc: secret@x.test,\r\n\tother@x.test\r\n"));
    assert_null(aimx__spool_value(&s, AIMX_F_TO));
    assert_non_null(aimx__spool_value(&s, AIMX_F_FROM));
    free(got);
    aimx__spool_close(&s);

    /* Latin-1 is 8-bit but not UTF-8. */
    assert_int_equal(spool_text(&s, "From: a\n\ncaf\xe9\n", 14, 1000, 0), 0);
    assert_true(s.eightbit);
    assert_false(s.header_8bit);
    assert_false(s.utf8);
    aimx__spool_close(&s);
}

static void
many_instances(void **state)
{
    aimx_buf text = {0};
    aimx_spool s;
    aimx_dkim_field f[AIMX_F_SIGNED * AIMX_SPOOL_KEEP];

    (void)state;
    for (int i = 0; i < 20; i++) {
        char line[64];
        snprintf(line, sizeof line, "Subject: s%d\n", i);
        aimx__buf_str(&text, line);
    }
    aimx__buf_str(&text, "\nbody\n");
    assert_int_equal(spool_text(&s, text.p, text.len, 100, 0), 0);
    char *got = contents(&s);
    size_t n = aimx__spool_signed_fields(&s, f);
    /* The latest AIMX_SPOOL_KEEP, bottom-most first. */
    assert_int_equal(n, AIMX_SPOOL_KEEP);
    assert_memory_equal(got + f[0].offset, "Subject: s19", 12);
    assert_memory_equal(got + f[AIMX_SPOOL_KEEP - 1].offset, "Subject: s12",
                        12);
    free(got);
    aimx__spool_close(&s);
    aimx__buf_free(&text);
}

static void
body_hash_and_prepend(void **state)
{
    static const char text[] = "From: a@x.test\n\n C \nD \t E\n\n\n";
    aimx_spool s;
    aimx_dkim_bodyhash bh;
    char *got;

    (void)state;
    assert_int_equal(
        spool_text(&s, text, strlen(text), 2, AIMX_SPOOL_BODY_HASH), 0);
    /* The same hash as the canonicaliser alone over the body. */
    assert_int_equal(aimx__dkim_bodyhash_init(&bh), 0);
    aimx__dkim_bodyhash_feed(&bh, " C \r\nD \t E\r\n\r\n\r\n", 16);
    assert_int_equal(aimx__dkim_bodyhash_final(&bh), 0);
    assert_memory_equal(bh.hash, s.bh.hash, AIMX_DKIM_BH_LEN);
    aimx__dkim_bodyhash_free(&bh);

    uint64_t before = s.size;
    assert_int_equal(aimx__spool_prepend(&s, dir, "X-First: 1\r\n", 12), 0);
    assert_int_equal(s.size, before + 12);
    got = contents(&s);
    assert_string_equal(got, "X-First: 1\r\nFrom: a@x.test\r\n\r\n C \r\n"
                             "D \t E\r\n\r\n\r\n");
    free(got);
    /* The unnamed file leaves nothing behind. */
    assert_int_equal(entries(), 0);
    aimx__spool_close(&s);
}

static void
bad_spool_dir(void **state)
{
    aimx_spool s;
    char err[512];
    int code = 0;

    (void)state;
    assert_int_equal(
        aimx__spool_tmpfile("/nonexistent-aimx-dir", &code, err, sizeof err),
        -1);
    assert_int_equal(code, 78);
    assert_non_null(strstr(err, "/nonexistent-aimx-dir"));
    assert_int_equal(aimx__spool_open(&s, "/nonexistent-aimx-dir", 0), 78);
    aimx__spool_close(&s);
}

/* ---- random messages against a model --------------------------------- */

/* What the spool should make of a message: the spool's rules restated
 * line by line, with none of its buffering. */
struct model {
    char *out; /* the spool's contents */
    size_t len;
    char *body; /* the body alone, for the body hash */
    size_t body_len;
    uint64_t lines;
    int eightbit, header_8bit, utf8;
    int code;
    char complaint[128];
};

static void
model(const char *in, size_t len, struct model *m)
{
    size_t i = 0, start, n;
    int in_body = 0, lf;

    memset(m, 0, sizeof *m);
    m->out = malloc(2 * len + 3);
    m->body = malloc(2 * len + 3);
    assert_non_null(m->out);
    assert_non_null(m->body);
    m->utf8 = 1;
    while (i < len) {
        const char *nl = memchr(in + i, '\n', len - i);
        start = i;
        n = (nl ? (size_t)(nl - in) : len) - i;
        lf = nl != NULL;
        i += n + (size_t)lf;
        /* A CR goes with the LF after it; a last line has none. */
        if (lf && n > 0 && in[start + n - 1] == '\r')
            n--;
        m->lines++;
        if (n > AIMX_SPOOL_LINE_MAX) {
            snprintf(m->complaint, sizeof m->complaint,
                     "line %llu is longer than 998",
                     (unsigned long long)m->lines);
        } else if (memchr(in + start, '\0', n) != NULL) {
            snprintf(m->complaint, sizeof m->complaint,
                     "line %llu contains a NUL", (unsigned long long)m->lines);
        } else if (memchr(in + start, '\r', n) != NULL) {
            snprintf(m->complaint, sizeof m->complaint,
                     "line %llu contains a bare CR",
                     (unsigned long long)m->lines);
        }
        if (m->complaint[0] != '\0') {
            m->code = 65;
            return;
        }
        for (size_t k = 0; k < n; k++) {
            if ((unsigned char)in[start + k] >= 0x80) {
                m->eightbit = 1;
                if (!in_body)
                    m->header_8bit = 1;
                if (!aimx__utf8_valid(in + start, n))
                    m->utf8 = 0;
                break;
            }
        }
        memcpy(m->out + m->len, in + start, n);
        memcpy(m->out + m->len + n, "\r\n", 2);
        m->len += n + 2;
        if (in_body) {
            memcpy(m->body + m->body_len, in + start, n);
            memcpy(m->body + m->body_len + n, "\r\n", 2);
            m->body_len += n + 2;
        }
        if (n == 0)
            in_body = 1;
    }
}

static size_t
put(char *buf, size_t o, const char *s, size_t n)
{
    memcpy(buf + o, s, n);
    return o + n;
}

#define PUT(lit) put(buf, o, lit, sizeof lit - 1)

/* A message of about size octets: a header section, then body lines of
 * every kind the spool tells apart, mostly canonical ones.  With bad set,
 * a line or two that the spool refuses. */
static size_t
random_message(char *buf, size_t size, int bad)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, n, k;

    o = PUT("From: a@x.test\r\n");
    if (rand() % 3 == 0)
        o = PUT("Subject: caf\xc3\xa9\n");
    if (rand() % 4 == 0)
        o = PUT("To: b@y.test,\r\n c@y.test\r\n");
    o = rand() % 2 ? PUT("\r\n") : PUT("\n");
    while (o < size) {
        int kind = rand() % 40;
        const char *eol = rand() % 8 == 0 ? "\n" : "\r\n";

        switch (kind) {
        case 0:
            o = PUT(".");
            break;
        case 1:
            o = PUT("..");
            break;
        case 2:
            break; /* empty */
        case 3:
            o = PUT("caf\xc3\xa9 \xe2\x82\xac");
            break;
        case 4:
            o = PUT("caf\xe9"); /* Latin-1 */
            break;
        case 5:
        case 6:
            /* The longest lines there may be, and near them. */
            n = AIMX_SPOOL_LINE_MAX - (size_t)(rand() % 3);
            memset(buf + o, 'L', n);
            o += n;
            break;
        case 7:
            if (bad && rand() % 8 == 0) {
                switch (rand() % 4) {
                case 0:
                    memset(buf + o, 'X', AIMX_SPOOL_LINE_MAX + 1);
                    o += AIMX_SPOOL_LINE_MAX + 1;
                    break;
                case 1:
                    o = PUT("n\0l");
                    break;
                case 2:
                    o = PUT("c\rr");
                    break;
                default:
                    o = PUT("cr\r"); /* then CRLF or LF */
                }
            }
            break;
        default:
            n = (size_t)(rand() % 8 ? 76 : rand() % 80);
            for (k = 0; k < n; k++)
                buf[o + k] = b64[rand() % 64];
            if (n > 0 && rand() % 30 == 0)
                buf[o] = '.';
            o += n;
        }
        o = put(buf, o, eol, strlen(eol));
    }
    /* The last line: whole, without its line end, or a lone CR. */
    switch (rand() % 4) {
    case 0:
        o = PUT("last");
        break;
    case 1:
        o = put(buf, o, "\r", bad ? 1 : 0);
        break;
    default:
        break;
    }
    return o;
}

/* Spools in[0..len) in pieces of random sizes (piece 0), or of piece
 * octets; returns finish()'s code. */
static int
spool_pieces(aimx_spool *s, const char *in, size_t len, size_t piece,
             unsigned flags)
{
    size_t i = 0, n;

    assert_int_equal(aimx__spool_open(s, dir, flags), 0);
    while (i < len) {
        if (piece > 0)
            n = piece;
        else
            n = rand() % 4 ? (size_t)rand() % 200 + 1
                           : (size_t)rand() % 140000 + 1;
        if (n > len - i)
            n = len - i;
        if (aimx__spool_write(s, in + i, n) != 0)
            return s->error;
        i += n;
    }
    return aimx__spool_finish(s);
}

static void
random_against_model(void **state)
{
    enum { MAX = 300000 };
    char *in = malloc(MAX + 4096);
    static const size_t pieces[] = {0, 0, 1, 65536, 4096 - 1, SIZE_MAX};
    unsigned char want_bh[AIMX_DKIM_BH_LEN];

    (void)state;
    assert_non_null(in);
    srand(20240604);
    for (unsigned iter = 0; iter < 120; iter++) {
        size_t size =
            iter % 3 == 0 ? (size_t)rand() % MAX : (size_t)rand() % 3000;
        size_t len = random_message(in, size, iter % 4 == 3);
        struct model m;
        aimx_dkim_bodyhash bh;

        model(in, len, &m);
        if (m.code == 0) {
            /* The body hash, the body fed an octet at a time. */
            assert_int_equal(aimx__dkim_bodyhash_init(&bh), 0);
            for (size_t k = 0; k < m.body_len; k++)
                aimx__dkim_bodyhash_feed(&bh, m.body + k, 1);
            assert_int_equal(aimx__dkim_bodyhash_final(&bh), 0);
            memcpy(want_bh, bh.hash, sizeof want_bh);
            aimx__dkim_bodyhash_free(&bh);
        }
        for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
            aimx_spool s;
            size_t piece = pieces[p] == SIZE_MAX ? len + 1 : pieces[p];
            int rc;

            if (piece == 1 && len > 20000)
                continue;
            rc = spool_pieces(&s, in, len, piece, AIMX_SPOOL_BODY_HASH);
            if (m.code != 0) {
                assert_int_equal(rc, m.code);
                if (strstr(s.message, m.complaint) == NULL)
                    fail_msg("iteration %u piece %zu: '%s' lacks '%s'", iter,
                             piece, s.message, m.complaint);
                aimx__spool_close(&s);
                continue;
            }
            if (rc != 0)
                fail_msg("iteration %u piece %zu: %s", iter, piece, s.message);
            char *got = contents(&s);
            assert_int_equal(s.size, m.len);
            assert_memory_equal(got, m.out, m.len);
            assert_int_equal(s.lines, m.lines);
            assert_int_equal(s.eightbit, m.eightbit);
            assert_int_equal(s.header_8bit, m.header_8bit);
            assert_int_equal(s.utf8, m.utf8);
            assert_memory_equal(s.bh.hash, want_bh, AIMX_DKIM_BH_LEN);
            free(got);
            aimx__spool_close(&s);
        }
        free(m.out);
        free(m.body);
    }
    free(in);
    assert_int_equal(entries(), 0);
}

/* Prepending moves the spool in place, in pieces aligned to its writes:
 * spools of every size around those pieces, headers short and long. */
static void
prepend_sizes(void **state)
{
    static const size_t sizes[] = {13,     14,     4096,   65535,
                                   65536,  65537,  131071, 131072,
                                   131073, 200000, 262144, 262145};
    static const size_t hlens[] = {1, 12, 700, 65535, 65536, 70000};
    char *text = malloc(300000), *header = malloc(70000), *want;
    size_t len, n, k;

    (void)state;
    assert_non_null(text);
    assert_non_null(header);
    for (k = 0; k < 70000; k++)
        header[k] = (char)('a' + k % 23);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        /* A canonical message of exactly sizes[i] octets, every line
         * different from its neighbours. */
        len = (size_t)sprintf(text, "From: a\r\n\r\n");
        while (len < sizes[i]) {
            n = sizes[i] - len < 80 ? sizes[i] - len : 40 + len % 37;
            for (k = 0; k + 2 < n; k++)
                text[len + k] = (char)('A' + (len + k) % 26);
            if (n >= 2) {
                memcpy(text + len + n - 2, "\r\n", 2);
            } else {
                text[len + n - 1] = 'z';
            }
            len += n;
        }
        for (size_t h = 0; h < sizeof hlens / sizeof hlens[0]; h++) {
            aimx_spool s;

            assert_int_equal(spool_text(&s, text, len, 65536, 0), 0);
            if (text[len - 1] != '\n') /* the spool adds the CRLF */
                assert_int_equal(s.size, len + 2);
            else
                assert_int_equal(s.size, len);
            n = s.size;
            want = malloc(hlens[h] + n + 1);
            memcpy(want, header, hlens[h]);
            memcpy(want + hlens[h], text, len);
            memcpy(want + hlens[h] + len, "\r\n", n - len);
            assert_int_equal(aimx__spool_prepend(&s, dir, header, hlens[h]), 0);
            assert_int_equal(s.size, hlens[h] + n);
            char *got = contents(&s);
            assert_memory_equal(got, want, hlens[h] + n);
            free(got);
            free(want);
            aimx__spool_close(&s);
        }
    }
    free(text);
    free(header);
    assert_int_equal(entries(), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(line_endings_across_chunks),
        cmocka_unit_test(checks_name_the_line),
        cmocka_unit_test(header_fields),
        cmocka_unit_test(many_instances),
        cmocka_unit_test(body_hash_and_prepend),
        cmocka_unit_test(bad_spool_dir),
        cmocka_unit_test(random_against_model),
        cmocka_unit_test(prepend_sizes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
