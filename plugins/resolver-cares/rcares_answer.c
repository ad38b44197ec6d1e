/* SPDX-License-Identifier: MIT */
/*
 * Answer reading.  The plugin walks the answer section itself for what the
 * c-ares 1.18 parsers do not give (owner names, TTLs of every type, raw
 * RDATA, the CNAME chain, the AD bit) and uses ares_parse_mx_reply() and
 * ares_parse_txt_reply_ext() for the typed MX and TXT values, matched to its
 * own walk by their order in the answer.
 */
#include "rcares_answer.h"

#include "rcares_outcome.h"

#include <ares.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HDR_LEN   12
#define RR_FIXED  10 /* type, class, TTL, RDLENGTH */
#define CLASS_IN  1
#define NAME_MAX_ 255
#define JUMPS_MAX 64

/* One answer-section record as it sits in the message. */
struct raw_rr {
    char *owner; /* reported form (rcares_name_report) */
    uint16_t type, cls;
    uint32_t ttl;
    const unsigned char *rdata;
    size_t rdlen;
};

struct walk {
    const unsigned char *abuf;
    size_t alen;
    struct raw_rr *rr;
    size_t nrr;
    struct ares_mx_reply *mx; /* ares_parse_mx_reply(), on first need */
    struct ares_txt_ext *txt; /* ares_parse_txt_reply_ext(), likewise */
    int mx_done, txt_done;
};

static uint16_t get16(const unsigned char *p);
static uint32_t get32(const unsigned char *p);
static int expand(const struct walk *w, const unsigned char *p, char **out,
                  size_t *used);
static int walk_answers(struct walk *w);
static void walk_free(struct walk *w);
static int name_seen(const char *name, const char *const *seen, size_t nseen,
                     const struct rcares_rec *hops, size_t nhops);
static int fill_typed(struct walk *w, size_t i, struct rcares_rec *rec);
static int fill_mx(struct walk *w, size_t i, struct rcares_rec *rec);
static int fill_txt(struct walk *w, size_t i, struct rcares_rec *rec);
static int wire_name(const struct walk *w, const unsigned char *p,
                     const unsigned char *end, unsigned char *out,
                     size_t *outlen);
static int compressible(uint16_t type);
static int add_rec(struct rcares_rec **v, size_t *n, struct rcares_rec *r);
static void *dup_bytes(const void *p, size_t n);

int
rcares_answer_parse(const unsigned char *abuf, size_t alen, uint16_t qtype,
                    const char *qname, const char *const *seen, size_t nseen,
                    size_t budget, struct rcares_answer *out)
{
    struct walk w;
    struct rcares_rec rec;
    const char *cur = qname;
    size_t i;
    int st;

    memset(out, 0, sizeof *out);
    memset(&w, 0, sizeof w);
    if (!abuf || alen < HDR_LEN || alen > 65535)
        return RCARES_P_BAD;
    w.abuf = abuf;
    w.alen = alen;
    out->rcode = abuf[3] & 0x0f;
    out->ad = (abuf[3] & 0x20) != 0;
    if ((st = walk_answers(&w)) != RCARES_P_OK)
        goto fail;

    /* Follow the chain the server put in the answer.  Asking for a CNAME
     * itself means its record is the answer, not a step. */
    for (i = 0; qtype != AIMX_DNS_CNAME && i < w.nrr; i++) {
        struct raw_rr *rr = &w.rr[i];

        if (rr->type != AIMX_DNS_CNAME || rr->cls != CLASS_IN ||
            strcasecmp(rr->owner, cur) != 0)
            continue;
        memset(&rec, 0, sizeof rec);
        st = fill_typed(&w, i, &rec);
        if (st == RCARES_P_OK && out->nhops >= budget)
            st = RCARES_P_CHAIN;
        if (st == RCARES_P_OK &&
            name_seen(rec.target, seen, nseen, out->hops, out->nhops))
            st = RCARES_P_CHAIN;
        if (st == RCARES_P_OK)
            st = add_rec(&out->hops, &out->nhops, &rec);
        if (st != RCARES_P_OK) {
            rcares_rec_free(&rec);
            goto fail;
        }
        cur = out->hops[out->nhops - 1].target;
        i = (size_t)-1; /* the next step may come earlier in the section */
    }

    for (i = 0; i < w.nrr; i++) {
        if (w.rr[i].type != qtype || w.rr[i].cls != CLASS_IN ||
            strcasecmp(w.rr[i].owner, cur) != 0)
            continue;
        memset(&rec, 0, sizeof rec);
        st = fill_typed(&w, i, &rec);
        if (st == RCARES_P_OK)
            st = add_rec(&out->recs, &out->nrecs, &rec);
        if (st != RCARES_P_OK) {
            rcares_rec_free(&rec);
            goto fail;
        }
    }
    if (!(out->end = strdup(cur))) {
        st = RCARES_P_NOMEM;
        goto fail;
    }
    out->dangling = out->nhops > 0 && out->nrecs == 0;
    walk_free(&w);
    return RCARES_P_OK;

fail:
    walk_free(&w);
    rcares_answer_free(out);
    return st;
}

void
rcares_answer_free(struct rcares_answer *a)
{
    size_t i;

    for (i = 0; i < a->nhops; i++)
        rcares_rec_free(&a->hops[i]);
    for (i = 0; i < a->nrecs; i++)
        rcares_rec_free(&a->recs[i]);
    free(a->hops);
    free(a->recs);
    free(a->end);
    memset(a, 0, sizeof *a);
}

void
rcares_rec_free(struct rcares_rec *r)
{
    free(r->owner);
    free(r->target);
    free(r->text);
    free(r->rdata);
    memset(r, 0, sizeof *r);
}

char *
rcares_name_report(const char *absolute)
{
    size_t n = strlen(absolute);
    char *s;

    if (n > 1 && absolute[n - 1] == '.')
        n--;
    if (n == 0)
        return strdup(".");
    if ((s = malloc(n + 1)) != NULL) {
        memcpy(s, absolute, n);
        s[n] = '\0';
    }
    return s;
}

static uint16_t
get16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
get32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

/* ares_expand_name() in the reported form: the root as ".". */
static int
expand(const struct walk *w, const unsigned char *p, char **out, size_t *used)
{
    char *s = NULL;
    long enclen = 0;
    int st;

    *out = NULL;
    st = ares_expand_name(p, w->abuf, (int)w->alen, &s, &enclen);
    if (st == ARES_ENOMEM)
        return RCARES_P_NOMEM;
    if (st != ARES_SUCCESS || enclen <= 0)
        return RCARES_P_BAD;
    *out = strdup(s[0] ? s : ".");
    ares_free_string(s);
    if (used)
        *used = (size_t)enclen;
    return *out ? RCARES_P_OK : RCARES_P_NOMEM;
}

static int
walk_answers(struct walk *w)
{
    const unsigned char *p = w->abuf + HDR_LEN, *end = w->abuf + w->alen;
    unsigned qd = get16(w->abuf + 4), an = get16(w->abuf + 6), k;
    size_t used;
    char *name;
    int st;

    for (k = 0; k < qd; k++) {
        if ((st = expand(w, p, &name, &used)) != RCARES_P_OK)
            return st;
        free(name);
        if ((size_t)(end - p) < used + 4)
            return RCARES_P_BAD;
        p += used + 4;
    }
    if (an > 0 && !(w->rr = calloc(an, sizeof *w->rr)))
        return RCARES_P_NOMEM;
    for (k = 0; k < an; k++) {
        struct raw_rr *rr = &w->rr[w->nrr];

        if ((st = expand(w, p, &rr->owner, &used)) != RCARES_P_OK)
            return st;
        w->nrr++;
        if ((size_t)(end - p) < used + RR_FIXED)
            return RCARES_P_BAD;
        p += used;
        rr->type = get16(p);
        rr->cls = get16(p + 2);
        rr->ttl = get32(p + 4);
        /* RFC 2181 section 8: a TTL with the top bit set means zero. */
        if (rr->ttl > 0x7fffffffu)
            rr->ttl = 0;
        rr->rdlen = get16(p + 8);
        p += RR_FIXED;
        if ((size_t)(end - p) < rr->rdlen)
            return RCARES_P_BAD;
        rr->rdata = p;
        p += rr->rdlen;
    }
    return RCARES_P_OK;
}

static void
walk_free(struct walk *w)
{
    size_t i;

    for (i = 0; i < w->nrr; i++)
        free(w->rr[i].owner);
    free(w->rr);
    if (w->mx)
        ares_free_data(w->mx);
    if (w->txt)
        ares_free_data(w->txt);
    memset(w, 0, sizeof *w);
}

static int
name_seen(const char *name, const char *const *seen, size_t nseen,
          const struct rcares_rec *hops, size_t nhops)
{
    size_t i;

    for (i = 0; i < nseen; i++)
        if (strcasecmp(seen[i], name) == 0)
            return 1;
    for (i = 0; i < nhops; i++)
        if (strcasecmp(hops[i].owner, name) == 0)
            return 1;
    return 0;
}

/* The typed fields and the RDATA of answer record i. */
static int
fill_typed(struct walk *w, size_t i, struct rcares_rec *rec)
{
    const struct raw_rr *rr = &w->rr[i];
    unsigned char wire[NAME_MAX_ + 2];
    size_t wlen = 0;
    int st = RCARES_P_OK;

    rec->type = rr->type;
    rec->ttl = rr->ttl;
    if (!(rec->owner = strdup(rr->owner)))
        return RCARES_P_NOMEM;
    switch (rr->type) {
    case AIMX_DNS_A:
    case AIMX_DNS_AAAA:
        if (rr->rdlen != (rr->type == AIMX_DNS_A ? 4u : 16u))
            return RCARES_P_BAD;
        rec->address.family =
            rr->type == AIMX_DNS_A ? AIMX_AF_INET : AIMX_AF_INET6;
        memcpy(rec->address.bytes, rr->rdata, rr->rdlen);
        break;
    case AIMX_DNS_MX:
        if ((st = fill_mx(w, i, rec)) != RCARES_P_OK)
            return st;
        break;
    case AIMX_DNS_TXT:
        if ((st = fill_txt(w, i, rec)) != RCARES_P_OK)
            return st;
        break;
    case AIMX_DNS_CNAME:
    case AIMX_DNS_PTR:
        if ((st = expand(w, rr->rdata, &rec->target, &wlen)) != RCARES_P_OK)
            return st;
        if (wlen != rr->rdlen)
            return RCARES_P_BAD;
        break;
    default:
        break;
    }
    /* The RDATA as received, except that a compressed name inside it
     * would point into a message the host never sees: expand those for the
     * types we know, and give none for the others that may hold one. */
    if (rr->type == AIMX_DNS_MX || rr->type == AIMX_DNS_CNAME ||
        rr->type == AIMX_DNS_PTR) {
        size_t skip = rr->type == AIMX_DNS_MX ? 2 : 0;

        if (rr->rdlen < skip + 1 ||
            (st = wire_name(w, rr->rdata + skip, rr->rdata + rr->rdlen,
                            wire + skip, &wlen)) != RCARES_P_OK)
            return st == RCARES_P_OK ? RCARES_P_BAD : st;
        memcpy(wire, rr->rdata, skip);
        rec->rdata_len = skip + wlen;
        rec->rdata = dup_bytes(wire, rec->rdata_len);
    } else if (!compressible(rr->type)) {
        rec->rdata_len = rr->rdlen;
        rec->rdata = dup_bytes(rr->rdata, rr->rdlen);
    }
    return rec->rdata || !rec->rdata_len ? RCARES_P_OK : RCARES_P_NOMEM;
}

/* The k-th MX record of the answer is the k-th entry of c-ares' list, which
 * keeps the root exchange of a null MX as "": that is reported as ".". */
static int
fill_mx(struct walk *w, size_t i, struct rcares_rec *rec)
{
    struct ares_mx_reply *mx;
    size_t j, k = 0;
    int st;

    if (!w->mx_done) {
        w->mx_done = 1;
        st = ares_parse_mx_reply(w->abuf, (int)w->alen, &w->mx);
        if (st == ARES_ENOMEM)
            return RCARES_P_NOMEM;
        if (st != ARES_SUCCESS)
            w->mx = NULL;
    }
    for (j = 0; j < i; j++)
        k += w->rr[j].type == AIMX_DNS_MX && w->rr[j].cls == CLASS_IN;
    for (mx = w->mx; mx && k > 0; mx = mx->next)
        k--;
    if (!mx)
        return RCARES_P_BAD;
    rec->preference = mx->priority;
    rec->target = strdup(mx->host && mx->host[0] ? mx->host : ".");
    return rec->target ? RCARES_P_OK : RCARES_P_NOMEM;
}

/*
 * RFC 7208 section 3.3: the strings of one TXT record are joined with
 * nothing between them.  c-ares gives every string of every record in one
 * list and marks each record's first with record_start; a record with no
 * string at all (RDLENGTH 0, malformed but seen) has no entry.
 */
static int
fill_txt(struct walk *w, size_t i, struct rcares_rec *rec)
{
    struct ares_txt_ext *t, *first;
    size_t j, k = 0, len = 0;
    unsigned char *p;
    int st;

    if (!w->txt_done) {
        w->txt_done = 1;
        st = ares_parse_txt_reply_ext(w->abuf, (int)w->alen, &w->txt);
        if (st == ARES_ENOMEM)
            return RCARES_P_NOMEM;
        if (st != ARES_SUCCESS)
            w->txt = NULL;
    }
    if (w->rr[i].rdlen == 0) {
        rec->text = dup_bytes("", 0);
        return rec->text ? RCARES_P_OK : RCARES_P_NOMEM;
    }
    for (j = 0; j < i; j++)
        k += w->rr[j].type == AIMX_DNS_TXT && w->rr[j].cls == CLASS_IN &&
             w->rr[j].rdlen > 0;
    for (t = w->txt; t; t = t->next)
        if (t->record_start && k-- == 0)
            break;
    if (!t)
        return RCARES_P_BAD;
    first = t;
    do {
        len += t->length;
        t = t->next;
    } while (t && !t->record_start);
    if (!(rec->text = malloc(len + 1)))
        return RCARES_P_NOMEM;
    p = rec->text;
    for (t = first; t && (t == first || !t->record_start); t = t->next) {
        if (t->length)
            memcpy(p, t->txt, t->length);
        p += t->length;
    }
    *p = '\0';
    rec->text_len = len;
    return RCARES_P_OK;
}

/*
 * The uncompressed wire form of the name at p, which must end exactly at
 * end (the end of the RDATA).  Pointers are followed within the message,
 * a bounded number of times.
 */
static int
wire_name(const struct walk *w, const unsigned char *p,
          const unsigned char *end, unsigned char *out, size_t *outlen)
{
    const unsigned char *msg_end = w->abuf + w->alen, *stop = NULL;
    size_t n = 0;
    unsigned jumps = 0;

    for (;;) {
        unsigned len;

        if (p >= msg_end)
            return RCARES_P_BAD;
        len = *p;
        if ((len & 0xc0) == 0xc0) {
            size_t off;

            if (p + 1 >= msg_end || ++jumps > JUMPS_MAX)
                return RCARES_P_BAD;
            off = ((size_t)(len & 0x3f) << 8) | p[1];
            if (!stop)
                stop = p + 2;
            if (off >= w->alen)
                return RCARES_P_BAD;
            p = w->abuf + off;
            continue;
        }
        if (len & 0xc0)
            return RCARES_P_BAD; /* the obsolete label types */
        if (n + 1 + len > NAME_MAX_ || p + 1 + len > msg_end)
            return RCARES_P_BAD;
        memcpy(out + n, p, 1 + len);
        n += 1 + len;
        p += 1 + len;
        if (len == 0)
            break;
    }
    if ((stop ? stop : p) != end)
        return RCARES_P_BAD;
    *outlen = n;
    return RCARES_P_OK;
}

/* Types whose RDATA may hold a compressed name: those of RFC 1035 and the
 * ones RFC 3597 section 4 lists as possibly compressed by old servers. */
static int
compressible(uint16_t type)
{
    static const uint16_t types[] = {2,  3,  4,  5,  6,  7,  8,  9,  12, 14,
                                     15, 17, 18, 21, 24, 26, 30, 33, 35, 39};
    size_t i;

    for (i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i] == type)
            return 1;
    return 0;
}

static int
add_rec(struct rcares_rec **v, size_t *n, struct rcares_rec *r)
{
    struct rcares_rec *grown = realloc(*v, (*n + 1) * sizeof **v);

    if (!grown)
        return RCARES_P_NOMEM;
    *v = grown;
    grown[(*n)++] = *r;
    memset(r, 0, sizeof *r);
    return RCARES_P_OK;
}

/* n bytes and a NUL, so that text can be logged as a string. */
static void *
dup_bytes(const void *p, size_t n)
{
    unsigned char *c = malloc(n + 1);

    if (c) {
        if (n)
            memcpy(c, p, n);
        c[n] = '\0';
    }
    return c;
}
