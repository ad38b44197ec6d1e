/* SPDX-License-Identifier: MIT */
#include "dkim.h"

#include "compose.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SSE2__) && !defined(AIMX_DKIM_NO_SIMD)
#include <emmintrin.h>
#endif

#define FOLD_AT 76 /* header lines stay below RFC 5322's 78 */

static void bcanon_put(aimx_dkim_bcanon *b, const void *data, size_t len);
static void bcanon_flush(aimx_dkim_bcanon *b);
static void bcanon_text(aimx_dkim_bcanon *b, unsigned char c);
static size_t find_wsp_cr(const unsigned char *p, size_t i, size_t len);
static void md_update(void *arg, const void *data, size_t len);
static int no_passphrase(char *buf, int size, int rwflag, void *u);
static void fold_put(aimx_buf *b, size_t *col, const char *sep,
                     const char *tok);
static int sign_field(EVP_MD_CTX *ctx, int fd, const aimx_dkim_field *f,
                      char *err, size_t errlen);
static void ssl_reason(char *out, size_t len);

/* ---- relaxed body ----------------------------------------------------- */

void
aimx__dkim_bcanon_init(aimx_dkim_bcanon *b, aimx_dkim_out_fn out, void *arg)
{
    memset(b, 0, sizeof *b);
    b->out = out;
    b->arg = arg;
}

static void
bcanon_flush(aimx_dkim_bcanon *b)
{
    if (b->n > 0)
        b->out(b->arg, b->buf, b->n);
    b->n = 0;
}

static void
bcanon_put(aimx_dkim_bcanon *b, const void *data, size_t len)
{
    if (b->n + len > sizeof b->buf) {
        bcanon_flush(b);
        if (len > sizeof b->buf) {
            b->out(b->arg, data, len);
            return;
        }
    }
    memcpy(b->buf + b->n, data, len);
    b->n += len;
}

/* An octet of text: the empty lines held back were not the end after all,
 * and pending white space becomes one SP. */
static void
bcanon_text(aimx_dkim_bcanon *b, unsigned char c)
{
    if (!b->content) {
        for (; b->empty > 0; b->empty--)
            bcanon_put(b, "\r\n", 2);
        b->content = 1;
    }
    if (b->ws)
        bcanon_put(b, " ", 1);
    b->ws = 0;
    bcanon_put(b, &c, 1);
}

/* The index of the first SP, HTAB or CR in p[i..len), or len. */
static size_t
find_wsp_cr(const unsigned char *p, size_t i, size_t len)
{
#if defined(__SSE2__) && !defined(AIMX_DKIM_NO_SIMD)
    const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t'),
                  cr = _mm_set1_epi8('\r');

    while (len - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, sp), _mm_cmpeq_epi8(v, tab)),
            _mm_cmpeq_epi8(v, cr)));
        if (m != 0)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
#endif
    while (i < len && p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
        i++;
    return i;
}

void
aimx__dkim_bcanon_feed(aimx_dkim_bcanon *b, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        if (b->cr) {
            b->cr = 0;
            if (c == '\n') {
                /* White space at the end of a line is dropped; an empty
                 * line waits to see whether the body ends here. */
                b->ws = 0;
                if (b->content)
                    bcanon_put(b, "\r\n", 2);
                else
                    b->empty++;
                b->content = 0;
                i++;
                continue;
            }
            /* A lone CR is ordinary text (the spool never produces one). */
            bcanon_text(b, '\r');
        }
        if (c == '\r') {
            b->cr = 1;
            i++;
        } else if (c == ' ' || c == '\t') {
            b->ws = 1;
            i++;
        } else {
            /* A run of ordinary octets goes out in one piece, and so do
             * the lines after it made of nothing else: each one's CRLF
             * and first octet are written as they are, text after text. */
            size_t j = find_wsp_cr(p, i + 1, len);
            while (len - j > 2 && p[j] == '\r' && p[j + 1] == '\n' &&
                   p[j + 2] != ' ' && p[j + 2] != '\t' && p[j + 2] != '\r')
                j = find_wsp_cr(p, j + 3, len);
            bcanon_text(b, c);
            bcanon_put(b, p + i + 1, j - i - 1);
            i = j;
        }
    }
}

void
aimx__dkim_bcanon_end(aimx_dkim_bcanon *b)
{
    if (b->cr) {
        /* A CR at the very end: text like any other. */
        b->cr = 0;
        bcanon_text(b, '\r');
    }
    /* A body that does not end in CRLF gets one (RFC 6376 3.4.4). */
    if (b->content)
        bcanon_put(b, "\r\n", 2);
    b->content = 0;
    b->ws = 0;
    b->empty = 0;
    bcanon_flush(b);
}

/* ---- relaxed header --------------------------------------------------- */

void
aimx__dkim_hcanon_init(aimx_dkim_hcanon *h)
{
    memset(h, 0, sizeof *h);
}

size_t
aimx__dkim_hcanon_feed(aimx_dkim_hcanon *h, const char *in, size_t len,
                       char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int space = c == ' ' || c == '\t' || c == '\r' || c == '\n';

        switch (h->state) {
        case 0:
            if (c == ':') {
                out[o++] = ':';
                h->state = 1;
            } else if (!space) {
                out[o++] = (char)tolower((unsigned char)c);
            }
            break;
        case 1:
            if (space)
                break;
            h->state = 2;
            out[o++] = c;
            break;
        default:
            /* Unfolding deletes CR and LF; the white space after them is
             * what remains of the fold. */
            if (c == '\r' || c == '\n')
                break;
            if (c == ' ' || c == '\t') {
                h->ws = 1;
                break;
            }
            if (h->ws)
                out[o++] = ' ';
            h->ws = 0;
            out[o++] = c;
        }
    }
    return o;
}

/* ---- body hash -------------------------------------------------------- */

static void
md_update(void *arg, const void *data, size_t len)
{
    EVP_DigestUpdate(arg, data, len);
}

int
aimx__dkim_bodyhash_init(aimx_dkim_bodyhash *bh)
{
    memset(bh, 0, sizeof *bh);
    bh->md = EVP_MD_CTX_new();
    if (bh->md == NULL || EVP_DigestInit_ex(bh->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(bh->md);
        bh->md = NULL;
        return -1;
    }
    aimx__dkim_bcanon_init(&bh->canon, md_update, bh->md);
    return 0;
}

void
aimx__dkim_bodyhash_feed(aimx_dkim_bodyhash *bh, const void *data, size_t len)
{
    aimx__dkim_bcanon_feed(&bh->canon, data, len);
}

int
aimx__dkim_bodyhash_final(aimx_dkim_bodyhash *bh)
{
    unsigned int n = 0;

    aimx__dkim_bcanon_end(&bh->canon);
    if (EVP_DigestFinal_ex(bh->md, bh->hash, &n) != 1 || n != AIMX_DKIM_BH_LEN)
        return -1;
    return 0;
}

void
aimx__dkim_bodyhash_free(aimx_dkim_bodyhash *bh)
{
    EVP_MD_CTX_free(bh->md);
    bh->md = NULL;
}

/* ---- the key ---------------------------------------------------------- */

/* An encrypted key would make OpenSSL prompt on the terminal. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static void
ssl_reason(char *out, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    snprintf(out, len, "%s", r ? r : "unknown error");
    ERR_clear_error();
}

int
aimx__dkim_load_key(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
    struct stat st;
    FILE *f;
    EVP_PKEY *k;
    char why[256];
    int fd;

    *key = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ENOENT) {
        snprintf(err, errlen,
                 "the DKIM key_file %s does not exist: create it (openssl "
                 "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "
                 "%s && chmod 0600 %s) and publish its public key, or "
                 "correct 'key_file' in the dkim group",
                 path, path, path);
        return -1;
    }
    if (fd < 0) {
        snprintf(err, errlen,
                 "cannot read the DKIM key_file %s: %s: make it readable by "
                 "the user aimx runs as (owner with mode 0600, or its group "
                 "with 0640)",
                 path, strerror(errno));
        return -1;
    }
    /* fstat on the opened file: what is checked is what is read. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "the DKIM key_file %s is not a regular file",
                 path);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        snprintf(err, errlen,
                 "the DKIM key_file %s is %s by others (mode %04o): anyone on "
                 "this host could sign mail with it; run 'chmod o-rwx %s' "
                 "(0600, or 0640 with aimx's group) and consider the key "
                 "exposed",
                 path, (st.st_mode & S_IROTH) ? "readable" : "writable",
                 (unsigned)(st.st_mode & 07777), path);
        close(fd);
        return -1;
    }
    f = fdopen(fd, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read the DKIM key_file %s: %s", path,
                 strerror(errno));
        close(fd);
        return -1;
    }
    k = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (k == NULL) {
        ssl_reason(why, sizeof why);
        snprintf(err, errlen,
                 "the DKIM key_file %s is not an unencrypted PEM private key "
                 "(%s): write the key in PEM form without a passphrase",
                 path, why);
        return -1;
    }
    if (!EVP_PKEY_is_a(k, "RSA")) {
        snprintf(err, errlen,
                 "the DKIM key_file %s is not an RSA key: rsa-sha256 needs "
                 "one (openssl genpkey -algorithm RSA -pkeyopt "
                 "rsa_keygen_bits:2048)",
                 path);
        EVP_PKEY_free(k);
        return -1;
    }
    if (EVP_PKEY_get_bits(k) < 1024) {
        snprintf(err, errlen,
                 "the DKIM key_file %s holds a %d-bit RSA key; verifiers "
                 "ignore keys under 1024 bits (RFC 8301): use 2048",
                 path, EVP_PKEY_get_bits(k));
        EVP_PKEY_free(k);
        return -1;
    }
    *key = k;
    return 0;
}

/* ---- signing ---------------------------------------------------------- */

/* Appends sep and tok, folding into a new line (CRLF TAB) when the line
 * would pass FOLD_AT; sep's trailing space is what the fold replaces. */
static void
fold_put(aimx_buf *b, size_t *col, const char *sep, const char *tok)
{
    size_t sl = strlen(sep), tl = strlen(tok), keep = sl;

    while (keep > 0 && sep[keep - 1] == ' ')
        keep--;
    if (*col + sl + tl > FOLD_AT) {
        aimx__buf_add(b, sep, keep);
        aimx__buf_str(b, "\r\n\t");
        *col = 8;
    } else {
        aimx__buf_add(b, sep, sl);
        *col += sl;
    }
    aimx__buf_add(b, tok, tl);
    *col += tl;
}

static int
sign_field(EVP_MD_CTX *ctx, int fd, const aimx_dkim_field *f, char *err,
           size_t errlen)
{
    char in[4096], out[sizeof in + 1];
    aimx_dkim_hcanon h;
    uint64_t done = 0;

    aimx__dkim_hcanon_init(&h);
    while (done < f->len) {
        size_t want =
            f->len - done < sizeof in ? (size_t)(f->len - done) : sizeof in;
        ssize_t n = pread(fd, in, want, (off_t)(f->offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "cannot read the spool to sign it: %s",
                     n < 0 ? strerror(errno) : "it is shorter than expected");
            return -1;
        }
        size_t o = aimx__dkim_hcanon_feed(&h, in, (size_t)n, out);
        EVP_DigestSignUpdate(ctx, out, o);
        done += (uint64_t)n;
    }
    EVP_DigestSignUpdate(ctx, "\r\n", 2);
    return 0;
}

int
aimx__dkim_sign(int fd, const aimx_dkim_field *fields, size_t n,
                const unsigned char bh[AIMX_DKIM_BH_LEN], EVP_PKEY *key,
                const char *domain, const char *selector, time_t t,
                char **header, char *err, size_t errlen)
{
    aimx_buf b = {0};
    size_t col;
    char tok[512], bh64[64], why[256];
    unsigned char *sig = NULL;
    char *sig64 = NULL, *canon = NULL;
    size_t siglen = 0;
    EVP_MD_CTX *ctx = NULL;
    int rc = -1;

    *header = NULL;
    EVP_EncodeBlock((unsigned char *)bh64, bh, AIMX_DKIM_BH_LEN);
    aimx__buf_str(&b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;");
    col = b.len;
    snprintf(tok, sizeof tok, "d=%s;", domain);
    fold_put(&b, &col, " ", tok);
    snprintf(tok, sizeof tok, "s=%s;", selector);
    fold_put(&b, &col, " ", tok);
    snprintf(tok, sizeof tok, "t=%lld;", (long long)t);
    fold_put(&b, &col, " ", tok);
    /* h= may fold around its colons (RFC 6376 3.5). */
    for (size_t i = 0; i < n; i++) {
        snprintf(tok, sizeof tok, "%s%s%s", i == 0 ? "h=" : ":", fields[i].name,
                 i + 1 == n ? ";" : "");
        fold_put(&b, &col, i == 0 ? " " : "", tok);
    }
    snprintf(tok, sizeof tok, "bh=%s;", bh64);
    fold_put(&b, &col, " ", tok);
    /* b= starts a line of its own so the value folds evenly. */
    aimx__buf_str(&b, "\r\n\tb=");
    col = 10;
    if (b.oom)
        goto nomem;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL ||
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1) {
        ssl_reason(why, sizeof why);
        snprintf(err, errlen, "cannot start the DKIM signature: %s", why);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (sign_field(ctx, fd, &fields[i], err, errlen) != 0)
            goto out;
    /* The signature field itself, with b= empty and no final CRLF. */
    {
        aimx_dkim_hcanon h;
        size_t o;
        canon = malloc(b.len + 1);
        if (canon == NULL)
            goto nomem;
        aimx__dkim_hcanon_init(&h);
        o = aimx__dkim_hcanon_feed(&h, b.p, b.len, canon);
        EVP_DigestSignUpdate(ctx, canon, o);
    }
    if (EVP_DigestSignFinal(ctx, NULL, &siglen) != 1 ||
        (sig = malloc(siglen)) == NULL ||
        EVP_DigestSignFinal(ctx, sig, &siglen) != 1) {
        ssl_reason(why, sizeof why);
        snprintf(err, errlen, "cannot compute the DKIM signature: %s", why);
        goto out;
    }
    sig64 = malloc(4 * ((siglen + 2) / 3) + 1);
    if (sig64 == NULL)
        goto nomem;
    EVP_EncodeBlock((unsigned char *)sig64, sig, (int)siglen);
    for (size_t i = 0, l = strlen(sig64); i < l;) {
        size_t room = FOLD_AT - col, take = l - i < room ? l - i : room;
        aimx__buf_add(&b, sig64 + i, take);
        i += take;
        if (i < l) {
            aimx__buf_str(&b, "\r\n\t");
            col = 8;
        }
    }
    aimx__buf_str(&b, "\r\n");
    if (b.oom)
        goto nomem;
    *header = b.p;
    b.p = NULL;
    rc = 0;
    goto out;
nomem:
    snprintf(err, errlen, "out of memory while signing");
out:
    EVP_MD_CTX_free(ctx);
    free(sig);
    free(sig64);
    free(canon);
    aimx__buf_free(&b);
    return rc;
}
