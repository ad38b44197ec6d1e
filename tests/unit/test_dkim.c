/* SPDX-License-Identifier: MIT */
/* DKIM: relaxed header and body canonicalisation (RFC 6376 3.4.2, 3.4.4,
 * the 3.4.5 example, trailing white space and empty lines at the end), in
 * pieces of every size, and random bodies in random pieces against a
 * reference written apart; the body hash; the signature, verified with the
 * public key; and the key file checks. */
#include "compose.h"
#include "dkim.h"

#include <openssl/pem.h>

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[] = "/tmp/aimx-dkim-test-XXXXXX";
static EVP_PKEY *rsa2048;

static void collect(void *arg, const void *data, size_t len);
static char *body_canon(const char *in, size_t piece);
static char *header_canon(const char *in, size_t piece);
static char *bh64(const char *body);
static char *write_key(const char *name, EVP_PKEY *k, mode_t mode,
                       const EVP_CIPHER *cipher);
static void expect_key_error(const char *path, const char *n1, const char *n2);

static int
setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    return rsa2048 == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    char cmd[128];

    (void)state;
    EVP_PKEY_free(rsa2048);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void
collect(void *arg, const void *data, size_t len)
{
    aimx__buf_add(arg, data, len);
}

static char *
body_canon(const char *in, size_t piece)
{
    aimx_buf b = {0};
    aimx_dkim_bcanon c;
    size_t len = strlen(in);

    aimx__dkim_bcanon_init(&c, collect, &b);
    for (size_t i = 0; i < len; i += piece)
        aimx__dkim_bcanon_feed(&c, in + i, len - i < piece ? len - i : piece);
    aimx__dkim_bcanon_end(&c);
    return b.p ? b.p : calloc(1, 1);
}

static char *
header_canon(const char *in, size_t piece)
{
    size_t len = strlen(in), o = 0;
    char *out = malloc(len * 2 + 2);
    aimx_dkim_hcanon h;

    aimx__dkim_hcanon_init(&h);
    for (size_t i = 0; i < len; i += piece)
        o += aimx__dkim_hcanon_feed(&h, in + i,
                                    len - i < piece ? len - i : piece, out + o);
    out[o] = '\0';
    return out;
}

static char *
bh64(const char *body)
{
    aimx_dkim_bodyhash bh;
    char *out = malloc(64);

    assert_int_equal(aimx__dkim_bodyhash_init(&bh), 0);
    aimx__dkim_bodyhash_feed(&bh, body, strlen(body));
    assert_int_equal(aimx__dkim_bodyhash_final(&bh), 0);
    EVP_EncodeBlock((unsigned char *)out, bh.hash, AIMX_DKIM_BH_LEN);
    aimx__dkim_bodyhash_free(&bh);
    return out;
}

static void
relaxed_body(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        /* RFC 6376 3.4.5 */
        {" C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n"},
        {"", ""},
        {"\r\n", ""},
        {"\r\n\r\n \t \r\n", ""},
        {"a", "a\r\n"},
        {"a \t ", "a\r\n"},
        {"a\r\n \r\n\t\r\nb  \r\n\r\n", "a\r\n\r\n\r\nb\r\n"},
        {"trailing   \r\nspace\t\r\n", "trailing\r\nspace\r\n"},
        {"x\r\n\r\n\r\ny\r\n\r\n", "x\r\n\r\n\r\ny\r\n"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t piece = 1; piece <= 8; piece++) {
            char *got = body_canon(cases[i].in, piece);
            if (strcmp(got, cases[i].want) != 0)
                fail_msg("case %zu piece %zu: got '%s'", i, piece, got);
            free(got);
        }
    }
}

/* Relaxed body canonicalisation restated: lines end at CRLF (a lone CR
 * or LF is text), runs of SP and HTAB become one SP, none is left at a
 * line's end, a last line without CRLF gets one, and the empty lines at
 * the end go. */
static size_t
body_reference(const char *in, size_t len, char *out)
{
    size_t i = 0, o = 0, keep = 0, start;

    while (i < len) {
        int ws = 0;

        start = o;
        for (; i < len; i++) {
            if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n') {
                i += 2;
                break;
            }
            if (in[i] == ' ' || in[i] == '\t') {
                ws = 1;
                continue;
            }
            if (ws)
                out[o++] = ' ';
            ws = 0;
            out[o++] = in[i];
        }
        out[o++] = '\r';
        out[o++] = '\n';
        if (o - start > 2)
            keep = o; /* the end, unless only empty lines follow */
    }
    return keep;
}

static void
relaxed_body_random(void **state)
{
    static const char alphabet[] = {' ', ' ', '\t', '\r', '\n', '\r',  '\n',
                                    '.', 'a', 'b',  'z',  0,    '\x80'};
    enum { MAX = 20000 };
    char *in = malloc(MAX), *want = malloc(2 * MAX + 2);
    size_t len, n, i, k, piece;

    (void)state;
    assert_non_null(in);
    assert_non_null(want);
    srand(20240605);
    for (unsigned iter = 0; iter < 3000; iter++) {
        size_t max = iter % 50 == 0 ? MAX : iter % 5 == 0 ? 2000 : 100;
        len = (size_t)rand() % max;
        for (i = 0; i < len;) {
            switch (rand() % 4) {
            case 0: /* a line end, maybe before an ordinary octet */
                in[i++] = '\r';
                if (i < len)
                    in[i++] = '\n';
                break;
            case 1: /* a run of ordinary octets, long or short */
                n = (size_t)rand() % (rand() % 4 ? 20 : 200);
                for (; n > 0 && i < len; n--)
                    in[i++] = (char)('A' + rand() % 26);
                break;
            default:
                in[i++] = alphabet[(size_t)rand() % sizeof alphabet];
            }
        }
        n = body_reference(in, len, want);
        /* Whole, in random pieces, and (short ones) an octet at a time. */
        for (k = 0; k < 3; k++) {
            aimx_buf b = {0};
            aimx_dkim_bcanon c;

            if (k == 2 && len > 2000)
                continue;
            aimx__dkim_bcanon_init(&c, collect, &b);
            for (i = 0; i < len; i += piece) {
                piece = k == 0 ? len : k == 2 ? 1 : (size_t)rand() % 300 + 1;
                if (piece > len - i)
                    piece = len - i;
                aimx__dkim_bcanon_feed(&c, in + i, piece);
            }
            aimx__dkim_bcanon_end(&c);
            assert_int_equal(b.len, n);
            if (n > 0)
                assert_memory_equal(b.p, want, n);
            aimx__buf_free(&b);
        }
    }
    free(in);
    free(want);
}

static void
relaxed_header(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        /* RFC 6376 3.4.5 */
        {"A: X", "a:X"},
        {"B : Y\t\r\n\tZ  ", "b:Y Z"},
        {"Subject:   lots   of\t space  ", "subject:lots of space"},
        {"To: a@x,\r\n b@y", "to:a@x, b@y"},
        {"X-Empty:", "x-empty:"},
        {"X-Empty:   ", "x-empty:"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t piece = 1; piece <= 5; piece++) {
            char *got = header_canon(cases[i].in, piece);
            if (strcmp(got, cases[i].want) != 0)
                fail_msg("case %zu piece %zu: got '%s'", i, piece, got);
            free(got);
        }
    }
}

static void
body_hash(void **state)
{
    /* SHA-256 of the empty string: an empty body, or empty lines only. */
    static const char empty[] = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    char *h;

    (void)state;
    h = bh64("");
    assert_string_equal(h, empty);
    free(h);
    h = bh64("\r\n\r\n");
    assert_string_equal(h, empty);
    free(h);
    /* Trailing white space and empty lines do not change the hash. */
    char *a = bh64("Hello\r\nworld\r\n");
    char *b = bh64("Hello  \r\nworld\t\r\n\r\n\r\n");
    assert_string_equal(a, b);
    free(a);
    free(b);
}

static void
signature_verifies(void **state)
{
    static const char msg[] = "From: A <a@sender.test>\r\n"
                              "To: b@x.test,\r\n  c@x.test\r\n"
                              "Subject:  Hello   there \r\n"
                              "\r\n"
                              "Body  text \r\n\r\n";
    char path[256], err[512], *header = NULL;
    aimx_dkim_field f[3];
    aimx_dkim_bodyhash bh;
    int fd;

    (void)state;
    snprintf(path, sizeof path, "%s/msg", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
    const char *from = strstr(msg, "From:"), *to = strstr(msg, "To:"),
               *subj = strstr(msg, "Subject:"), *body = strstr(msg, "\r\n\r\n");
    f[0] = (aimx_dkim_field){"from", (uint64_t)(from - msg),
                             (uint64_t)(to - from - 2)};
    f[1] = (aimx_dkim_field){"to", (uint64_t)(to - msg),
                             (uint64_t)(subj - to - 2)};
    f[2] = (aimx_dkim_field){"subject", (uint64_t)(subj - msg),
                             (uint64_t)(body - subj)};
    assert_int_equal(aimx__dkim_bodyhash_init(&bh), 0);
    aimx__dkim_bodyhash_feed(&bh, body + 4, strlen(body + 4));
    assert_int_equal(aimx__dkim_bodyhash_final(&bh), 0);
    aimx__dkim_bodyhash_free(&bh);
    assert_int_equal(aimx__dkim_sign(fd, f, 3, bh.hash, rsa2048, "sender.test",
                                     "s1", 1700000000, &header, err,
                                     sizeof err),
                     0);
    close(fd);

    /* Its form. */
    assert_memory_equal(header, "DKIM-Signature: v=1; a=rsa-sha256; ", 35);
    assert_non_null(strstr(header, "c=relaxed/relaxed;"));
    assert_non_null(strstr(header, "d=sender.test;"));
    assert_non_null(strstr(header, "s=s1;"));
    assert_non_null(strstr(header, "t=1700000000;"));
    assert_non_null(strstr(header, "h=from:to:subject;"));
    char want_bh[64];
    EVP_EncodeBlock((unsigned char *)want_bh, bh.hash, AIMX_DKIM_BH_LEN);
    char *bhtag = strstr(header, "bh=");
    assert_non_null(bhtag);
    assert_memory_equal(bhtag + 3, want_bh, strlen(want_bh));
    for (const char *p = header; *p;) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        assert_true(eol - p <= 78);
        p = eol + 2;
    }
    assert_string_equal(header + strlen(header) - 2, "\r\n");

    /* Verify as RFC 6376 6.1.3 does: the signed fields canonicalised, then
     * the signature field with b= emptied, without its final CRLF. */
    const char *b = strstr(header, "\tb=") + 3;
    aimx_buf data = {0};
    const char *fields[] = {"From: A <a@sender.test>",
                            "To: b@x.test,\r\n  c@x.test",
                            "Subject:  Hello   there "};
    for (int i = 0; i < 3; i++) {
        char *c = header_canon(fields[i], 4096);
        aimx__buf_str(&data, c);
        aimx__buf_str(&data, "\r\n");
        free(c);
    }
    char *sigfield = strndup(header, (size_t)(b - header));
    char *c = header_canon(sigfield, 4096);
    aimx__buf_str(&data, c);
    free(c);
    free(sigfield);
    /* The b= value without its folding. */
    char sig64[1024];
    size_t n = 0;
    for (const char *p = b; *p; p++)
        if (*p != '\r' && *p != '\n' && *p != '\t' && *p != ' ')
            sig64[n++] = *p;
    sig64[n] = '\0';
    unsigned char sig[512];
    /* EVP_DecodeBlock counts the octets the padding stands for. */
    int siglen = EVP_DecodeBlock(sig, (unsigned char *)sig64, (int)n);
    for (size_t i = n; i > 0 && sig64[i - 1] == '='; i--)
        siglen--;
    assert_int_equal(siglen, 256);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(
        EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, rsa2048), 1);
    assert_int_equal(
        EVP_DigestVerify(ctx, sig, 256, (unsigned char *)data.p, data.len), 1);
    /* A changed field does not verify. */
    data.p[6] ^= 1;
    EVP_MD_CTX_free(ctx);
    ctx = EVP_MD_CTX_new();
    assert_int_equal(
        EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, rsa2048), 1);
    assert_int_not_equal(
        EVP_DigestVerify(ctx, sig, 256, (unsigned char *)data.p, data.len), 1);
    EVP_MD_CTX_free(ctx);
    aimx__buf_free(&data);
    free(header);
}

static char *
write_key(const char *name, EVP_PKEY *k, mode_t mode, const EVP_CIPHER *cipher)
{
    char *path = malloc(512);
    FILE *f;

    snprintf(path, 512, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    if (k != NULL)
        assert_int_equal(PEM_write_PrivateKey(f, k, cipher,
                                              (unsigned char *)"secret", 6,
                                              NULL, NULL),
                         1);
    else
        fputs("not a key\n", f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void
expect_key_error(const char *path, const char *n1, const char *n2)
{
    char err[1024];
    EVP_PKEY *k = NULL;

    assert_int_equal(aimx__dkim_load_key(path, &k, err, sizeof err), -1);
    assert_null(k);
    if (strstr(err, path) == NULL || strstr(err, n1) == NULL ||
        (n2 != NULL && strstr(err, n2) == NULL))
        fail_msg("'%s' lacks the path, '%s' or '%s'", err, n1, n2 ? n2 : "");
}

static void
key_files(void **state)
{
    char err[1024], *p;
    EVP_PKEY *k = NULL;

    (void)state;
    p = write_key("ok.pem", rsa2048, 0600, NULL);
    assert_int_equal(aimx__dkim_load_key(p, &k, err, sizeof err), 0);
    EVP_PKEY_free(k);
    /* Group-readable is fine (a service group). */
    assert_int_equal(chmod(p, 0640), 0);
    assert_int_equal(aimx__dkim_load_key(p, &k, err, sizeof err), 0);
    EVP_PKEY_free(k);
    assert_int_equal(chmod(p, 0644), 0);
    expect_key_error(p, "readable by others (mode 0644)", "chmod o-rwx");
    assert_int_equal(chmod(p, 0602), 0);
    expect_key_error(p, "writable by others", NULL);
    free(p);

    char missing[512];
    snprintf(missing, sizeof missing, "%s/absent.pem", dir);
    expect_key_error(missing, "does not exist", "openssl genpkey");
    expect_key_error(dir, "not a regular file", NULL);
    p = write_key("junk.pem", NULL, 0600, NULL);
    expect_key_error(p, "not an unencrypted PEM private key", NULL);
    free(p);
    p = write_key("enc.pem", rsa2048, 0600, EVP_aes_128_cbc());
    expect_key_error(p, "not an unencrypted PEM private key", NULL);
    free(p);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ec);
    p = write_key("ec.pem", ec, 0600, NULL);
    expect_key_error(p, "not an RSA key", NULL);
    free(p);
    EVP_PKEY_free(ec);
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)768);
    assert_non_null(small);
    p = write_key("small.pem", small, 0600, NULL);
    expect_key_error(p, "768-bit", "2048");
    free(p);
    EVP_PKEY_free(small);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(relaxed_body),
        cmocka_unit_test(relaxed_body_random),
        cmocka_unit_test(relaxed_header),
        cmocka_unit_test(body_hash),
        cmocka_unit_test(signature_verifies),
        cmocka_unit_test(key_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
