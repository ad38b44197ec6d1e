/* SPDX-License-Identifier: MIT */
/*
 * DKIM signing (RFC 6376): rsa-sha256 with relaxed/relaxed
 * canonicalisation.  Both canonicalisations stream, so neither the body
 * nor a long header field is ever held whole in memory.
 */
#ifndef AIMX_DKIM_H
#define AIMX_DKIM_H

#include <openssl/evp.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define AIMX_DKIM_BH_LEN 32 /* SHA-256 */

typedef void (*aimx_dkim_out_fn)(void *arg, const void *data, size_t len);

/*
 * Relaxed body canonicalisation (RFC 6376 3.4.4) of a CRLF body fed in
 * pieces of any size: white space runs become one SP, white space at a
 * line's end goes, and empty lines at the end are held back until
 * something follows them, so they vanish if nothing does.
 */
typedef struct aimx_dkim_bcanon {
    aimx_dkim_out_fn out;
    void *arg;
    int ws;         /* white space seen and not yet written */
    int cr;         /* a CR waits for its LF */
    int content;    /* the current line has written something */
    uint64_t empty; /* empty lines held back */
    unsigned char buf[512];
    size_t n;
} aimx_dkim_bcanon;

void aimx__dkim_bcanon_init(aimx_dkim_bcanon *b, aimx_dkim_out_fn out,
                            void *arg);
void aimx__dkim_bcanon_feed(aimx_dkim_bcanon *b, const void *data, size_t len);
void aimx__dkim_bcanon_end(aimx_dkim_bcanon *b);

/*
 * Relaxed header canonicalisation (RFC 6376 3.4.2) of one field fed in
 * pieces, without its final CRLF: the name in lower case, unfolded, white
 * space runs as one SP, none around the colon or at the end.  Each feed
 * writes at most len + 1 octets to out.
 */
typedef struct aimx_dkim_hcanon {
    int state; /* 0: name, 1: before the value, 2: value */
    int ws;
} aimx_dkim_hcanon;

void aimx__dkim_hcanon_init(aimx_dkim_hcanon *h);
size_t aimx__dkim_hcanon_feed(aimx_dkim_hcanon *h, const char *in, size_t len,
                              char *out);

/* The body hash, computed as the body streams by. */
typedef struct aimx_dkim_bodyhash {
    EVP_MD_CTX *md;
    aimx_dkim_bcanon canon;
    unsigned char hash[AIMX_DKIM_BH_LEN];
} aimx_dkim_bodyhash;

int aimx__dkim_bodyhash_init(aimx_dkim_bodyhash *bh);
void aimx__dkim_bodyhash_feed(aimx_dkim_bodyhash *bh, const void *data,
                              size_t len);
int aimx__dkim_bodyhash_final(aimx_dkim_bodyhash *bh);
void aimx__dkim_bodyhash_free(aimx_dkim_bodyhash *bh);

/*
 * Loads the signing key.  Refuses a file that is missing, unreadable, not
 * a regular file, readable or writable by others, not an unencrypted PEM
 * RSA key, or shorter than 1024 bits.  Returns 0, or -1 with a sentence
 * naming the path and the fix in err.
 */
int aimx__dkim_load_key(const char *path, EVP_PKEY **key, char *err,
                        size_t errlen);

/* One header field to sign: where it lies in fd, without its final CRLF. */
typedef struct aimx_dkim_field {
    const char *name; /* lower case, as written into h= */
    uint64_t offset;
    uint64_t len;
} aimx_dkim_field;

/*
 * Builds the DKIM-Signature field (ending in CRLF, malloc'ed into
 * *header) over fields, read from fd in the order given (a name listed
 * twice is signed twice, bottom-most instance first as RFC 6376 5.4.2
 * has verifiers pick them), and the body hash.  Returns 0, or -1 with err
 * set.
 */
int aimx__dkim_sign(int fd, const aimx_dkim_field *fields, size_t n,
                    const unsigned char bh[AIMX_DKIM_BH_LEN], EVP_PKEY *key,
                    const char *domain, const char *selector, time_t t,
                    char **header, char *err, size_t errlen);

#endif
