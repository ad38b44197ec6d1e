/* SPDX-License-Identifier: MIT */
#include "spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The lookup limit bounds nesting already; this guards the stack. */
#define MAX_DEPTH     24
#define MAX_MX_NAMES  10 /* RFC 7208 4.6.4: more MX records: permerror */
#define MAX_PTR_NAMES 10 /* RFC 7208 4.6.4: later PTR names ignored */

enum kind {
    K_ALL,
    K_INCLUDE,
    K_A,
    K_MX,
    K_PTR,
    K_IP4,
    K_IP6,
    K_EXISTS,
    K_REDIRECT,
    K_EXP,
    K_UNKNOWN_MODIFIER
};

/* What evaluating one mechanism gave. */
enum ev { EV_NOMATCH, EV_MATCH, EV_TEMP, EV_PERM };

struct term {
    int kind;
    char qualifier;   /* '+', '-', '~' or '?' */
    const char *text; /* the whole term, for messages */
    size_t text_len;
    const char *spec; /* domain-spec, or NULL */
    size_t spec_len;
    int cidr4, cidr6; /* -1 when not given */
    aimx_addr net;    /* ip4, ip6 */
};

struct state {
    const aimx_spf_query *q;
    aimx_addr ip;
    char local[128];   /* the sender's local part */
    char sdomain[256]; /* the sender's domain */
    unsigned lookups;
    unsigned voids;
    char detail[512]; /* why it ended in an error or "none" */
    int have_detail;
};

static void set_detail(struct state *st, int force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int macro_syntax_ok(const char *s, size_t len, int exp);
static int expand(const struct state *st, const char *s, size_t len,
                  const char *domain, char *out, size_t outlen);
static int expand_domain(struct state *st, const struct term *t,
                         const char *domain, char *out, size_t outlen);
static int domain_ok(const char *d);
static int parse_cidr(const char *s, size_t len, int max, int *out);
static int parse_dual_cidr(const char *s, size_t len, struct term *t);
static int parse_term(const char *s, size_t len, struct term *t);
static int in_cidr(const aimx_addr *ip, const aimx_addr *net, int bits);
static int count_lookup(struct state *st);
static int count_void(struct state *st);
static int is_void(const aimx_dns_answer *a, uint16_t type);
static enum ev match_addrs(struct state *st, const aimx_dns_answer *a,
                           uint16_t type, const struct term *t,
                           const char *name);
static enum ev eval_mech(struct state *st, const struct term *t,
                         const char *domain, int depth);
static int qualifier_result(char q);
static int check_host(struct state *st, const char *domain, int depth,
                      aimx_spf_outcome *top);
static void ip_macro(const aimx_addr *a, char *buf, size_t len);
static void normalise_ip(const aimx_addr *in, aimx_addr *out);

const char *
aimx__spf_result_word(int result)
{
    switch (result) {
    case AIMX_SPF_NONE:
        return "none";
    case AIMX_SPF_NEUTRAL:
        return "neutral";
    case AIMX_SPF_PASS:
        return "pass";
    case AIMX_SPF_FAIL:
        return "fail";
    case AIMX_SPF_SOFTFAIL:
        return "softfail";
    case AIMX_SPF_TEMPERROR:
        return "temperror";
    default:
        return "permerror";
    }
}

int
aimx__spf_is_record(const char *text, size_t len)
{
    return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 &&
           (len == 6 || text[6] == ' ');
}

const char *
aimx__addr_reverse_name(const aimx_addr *a, char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t used = 0;

    if (a->family == AIMX_AF_INET) {
        snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa", a->bytes[3], a->bytes[2],
                 a->bytes[1], a->bytes[0]);
        return buf;
    }
    for (int i = 15; i >= 0 && used + 4 < len; i--) {
        buf[used++] = hex[a->bytes[i] & 0xf];
        buf[used++] = '.';
        buf[used++] = hex[a->bytes[i] >> 4];
        buf[used++] = '.';
    }
    snprintf(buf + used, len - used, "ip6.arpa");
    return buf;
}

/* %{i}: dotted quad, or 32 dot-separated nibbles (RFC 7208 7.3). */
static void
ip_macro(const aimx_addr *a, char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t used = 0;

    if (a->family == AIMX_AF_INET) {
        inet_ntop(AF_INET, a->bytes, buf, (socklen_t)len);
        return;
    }
    for (int i = 0; i < 16 && used + 4 < len; i++) {
        buf[used++] = hex[a->bytes[i] >> 4];
        buf[used++] = '.';
        buf[used++] = hex[a->bytes[i] & 0xf];
        buf[used++] = i < 15 ? '.' : '\0';
    }
    buf[used < len ? used : len - 1] = '\0';
}

/* An IPv4-mapped IPv6 address is checked as the IPv4 address (RFC 7208
 * 5). */
static void
normalise_ip(const aimx_addr *in, aimx_addr *out)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};

    *out = *in;
    if (in->family == AIMX_AF_INET6 && memcmp(in->bytes, mapped, 12) == 0) {
        memset(out, 0, sizeof *out);
        out->family = AIMX_AF_INET;
        memcpy(out->bytes, in->bytes + 12, 4);
    }
}

static void
set_detail(struct state *st, int force, const char *fmt, ...)
{
    va_list ap;

    if (st->have_detail && !force)
        return;
    va_start(ap, fmt);
    vsnprintf(st->detail, sizeof st->detail, fmt, ap);
    va_end(ap);
    st->have_detail = 1;
}

/* RFC 7208 7.1: macro-string syntax.  c, r and t belong to exp only. */
static int
macro_syntax_ok(const char *s, size_t len, int exp)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c != '%') {
            if (c < 0x21 || c > 0x7e)
                return 0;
            i++;
            continue;
        }
        if (i + 1 >= len)
            return 0;
        if (s[i + 1] == '%' || s[i + 1] == '_' || s[i + 1] == '-') {
            i += 2;
            continue;
        }
        if (s[i + 1] != '{' || i + 2 >= len)
            return 0;
        i += 2;
        char letter = (char)tolower((unsigned char)s[i]);
        if (strchr("slodiphv", letter) == NULL &&
            !(exp && strchr("crt", letter) != NULL))
            return 0;
        i++;
        size_t digits = 0;
        unsigned value = 0;
        while (i < len && isdigit((unsigned char)s[i]) && digits < 4) {
            value = value * 10 + (unsigned)(s[i] - '0');
            digits++;
            i++;
        }
        if (digits > 0 && value == 0)
            return 0; /* a zero part count is not allowed */
        if (i < len && (s[i] == 'r' || s[i] == 'R'))
            i++;
        while (i < len && strchr(".-+,/_=", s[i]) != NULL)
            i++;
        if (i >= len || s[i] != '}')
            return 0;
        i++;
    }
    return 1;
}

/* Expands a macro-string (syntax already checked).  0, or -1 when the
 * result does not fit. */
static int
expand(const struct state *st, const char *s, size_t len, const char *domain,
       char *out, size_t outlen)
{
    size_t o = 0;

#define PUT(ch)                                                                \
    do {                                                                       \
        if (o + 1 >= outlen)                                                   \
            return -1;                                                         \
        out[o++] = (ch);                                                       \
    } while (0)

    for (size_t i = 0; i < len;) {
        if (s[i] != '%') {
            PUT(s[i]);
            i++;
            continue;
        }
        if (s[i + 1] == '%' || s[i + 1] == '_' || s[i + 1] == '-') {
            PUT(s[i + 1] == '%' ? '%' : s[i + 1] == '_' ? ' ' : '%');
            if (s[i + 1] == '-') {
                PUT('2');
                PUT('0');
            }
            i += 2;
            continue;
        }
        /* %{ letter digits [r] delimiters } */
        char letter = s[i + 2];
        int upper = isupper((unsigned char)letter);
        char value[400];
        char delims[8] = "";
        size_t nd = 0;
        unsigned keep = 0;
        int reverse = 0;

        i += 3;
        while (isdigit((unsigned char)s[i]))
            keep = keep * 10 + (unsigned)(s[i++] - '0');
        if (s[i] == 'r' || s[i] == 'R') {
            reverse = 1;
            i++;
        }
        while (s[i] != '}') {
            if (nd + 1 < sizeof delims)
                delims[nd++] = s[i];
            i++;
        }
        i++;
        delims[nd] = '\0';
        switch (tolower((unsigned char)letter)) {
        case 's':
            snprintf(value, sizeof value, "%s@%s", st->local, st->sdomain);
            break;
        case 'l':
            snprintf(value, sizeof value, "%s", st->local);
            break;
        case 'o':
            snprintf(value, sizeof value, "%s", st->sdomain);
            break;
        case 'd':
            snprintf(value, sizeof value, "%s", domain);
            break;
        case 'i':
            ip_macro(&st->ip, value, sizeof value);
            break;
        case 'p':
            /* RFC 7208 7.3 discourages %{p}; "unknown" is what it allows
             * when the name is not validated. */
            snprintf(value, sizeof value, "unknown");
            break;
        case 'v':
            snprintf(value, sizeof value, "%s",
                     st->ip.family == AIMX_AF_INET ? "in-addr" : "ip6");
            break;
        case 'h':
            snprintf(value, sizeof value, "%s",
                     st->q->helo && st->q->helo[0] ? st->q->helo : domain);
            break;
        default:
            value[0] = '\0';
            break;
        }
        /* Split on the delimiters (default "."), reverse, keep the
         * rightmost parts, join with ".". */
        char *parts[130];
        size_t np = 0;
        char *p = value;
        if (nd == 0)
            snprintf(delims, sizeof delims, ".");
        parts[np++] = p;
        for (; *p; p++) {
            if (strchr(delims, *p) != NULL && np < 130) {
                *p = '\0';
                parts[np++] = p + 1;
            }
        }
        if (reverse)
            for (size_t a = 0, b = np - 1; a < b; a++, b--) {
                char *tmp = parts[a];
                parts[a] = parts[b];
                parts[b] = tmp;
            }
        size_t first = keep > 0 && keep < np ? np - keep : 0;
        for (size_t k = first; k < np; k++) {
            if (k > first)
                PUT('.');
            for (const char *c = parts[k]; *c; c++) {
                unsigned char uc = (unsigned char)*c;
                if (upper && !(isalnum(uc) || strchr("-._~", uc) != NULL)) {
                    static const char hex[] = "0123456789ABCDEF";
                    PUT('%');
                    PUT(hex[uc >> 4]);
                    PUT(hex[uc & 0xf]);
                } else {
                    PUT((char)uc);
                }
            }
        }
    }
    out[o] = '\0';
    return 0;
#undef PUT
}

/* A multi-label name, labels of 1..63 octets, at most 253 (RFC 7208 4.3). */
static int
domain_ok(const char *d)
{
    size_t label = 0, labels = 0, total = strlen(d);

    if (total > 0 && d[total - 1] == '.')
        total--;
    if (total == 0 || total > 253)
        return 0;
    for (size_t i = 0; i < total; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            labels++;
            label = 0;
        } else if (c <= 0x20 || c >= 0x7f || ++label > 63) {
            return 0;
        }
    }
    return label > 0 && labels >= 1;
}

/* The target of a term: its expanded domain-spec, or the current domain.
 * A name longer than 253 loses labels on the left (RFC 7208 7.3).
 * Returns 0, or -1 (a permerror, detail set). */
static int
expand_domain(struct state *st, const struct term *t, const char *domain,
              char *out, size_t outlen)
{
    char buf[1024];
    const char *p = buf;

    if (t->spec == NULL) {
        snprintf(out, outlen, "%s", domain);
        return 0;
    }
    if (expand(st, t->spec, t->spec_len, domain, buf, sizeof buf) != 0) {
        set_detail(st, 0, "'%.*s' expands to a name that is too long",
                   (int)t->text_len, t->text);
        return -1;
    }
    size_t l = strlen(p);
    if (l > 0 && p[l - 1] == '.')
        buf[--l] = '\0';
    while (l > 253) {
        const char *dot = strchr(p, '.');
        if (dot == NULL)
            break;
        l -= (size_t)(dot + 1 - p);
        p = dot + 1;
    }
    if (!domain_ok(p) || strlen(p) >= outlen) {
        set_detail(st, 0, "'%.*s' names '%s', which is not a valid domain",
                   (int)t->text_len, t->text, p);
        return -1;
    }
    snprintf(out, outlen, "%s", p);
    return 0;
}

/* "/N" with 0 <= N <= max, no leading zero.  1 when valid. */
static int
parse_cidr(const char *s, size_t len, int max, int *out)
{
    int v = 0;

    if (len < 2 || s[0] != '/' || len > 4)
        return 0;
    if (s[1] == '0' && len > 2)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return 0;
    *out = v;
    return 1;
}

/* dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] */
static int
parse_dual_cidr(const char *s, size_t len, struct term *t)
{
    const char *dbl = NULL;

    for (size_t i = 0; i + 1 < len; i++)
        if (s[i] == '/' && s[i + 1] == '/') {
            dbl = s + i;
            break;
        }
    if (dbl == NULL)
        return parse_cidr(s, len, 32, &t->cidr4);
    if (dbl > s && !parse_cidr(s, (size_t)(dbl - s), 32, &t->cidr4))
        return 0;
    return parse_cidr(dbl + 1, len - (size_t)(dbl + 1 - s), 128, &t->cidr6);
}

/* One term of a record (RFC 7208 4.6.1, 5, 6).  1 when valid. */
static int
parse_term(const char *s, size_t len, struct term *t)
{
    static const struct {
        const char *name;
        int kind;
    } mechs[] = {{"all", K_ALL}, {"include", K_INCLUDE}, {"a", K_A},
                 {"mx", K_MX},   {"ptr", K_PTR},         {"ip4", K_IP4},
                 {"ip6", K_IP6}, {"exists", K_EXISTS}};
    size_t i = 0, name_len;
    const char *name, *rest;
    size_t rest_len;

    memset(t, 0, sizeof *t);
    t->text = s;
    t->text_len = len;
    t->cidr4 = t->cidr6 = -1;
    t->qualifier = '+';

    /* A modifier: name "=" macro-string. */
    if (len > 0 && isalpha((unsigned char)s[0])) {
        i = 1;
        while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '-' ||
                           s[i] == '_' || s[i] == '.'))
            i++;
        if (i < len && s[i] == '=') {
            t->spec = s + i + 1;
            t->spec_len = len - i - 1;
            if (i == 8 && strncasecmp(s, "redirect", 8) == 0)
                t->kind = K_REDIRECT;
            else if (i == 3 && strncasecmp(s, "exp", 3) == 0)
                t->kind = K_EXP;
            else
                t->kind = K_UNKNOWN_MODIFIER;
            if (t->kind != K_UNKNOWN_MODIFIER && t->spec_len == 0)
                return 0;
            return macro_syntax_ok(t->spec, t->spec_len,
                                   t->kind == K_UNKNOWN_MODIFIER);
        }
    }
    i = 0;
    if (len > 0 && strchr("+-~?", s[0]) != NULL)
        t->qualifier = s[i++];
    name = s + i;
    while (i < len && s[i] != ':' && s[i] != '/')
        i++;
    name_len = (size_t)(s + i - name);
    rest = s + i;
    rest_len = len - i;
    t->kind = -1;
    for (size_t k = 0; k < sizeof mechs / sizeof mechs[0]; k++)
        if (strlen(mechs[k].name) == name_len &&
            strncasecmp(name, mechs[k].name, name_len) == 0)
            t->kind = mechs[k].kind;

    switch (t->kind) {
    case K_ALL:
        return rest_len == 0;
    case K_INCLUDE:
    case K_EXISTS:
        if (rest_len < 2 || rest[0] != ':')
            return 0;
        t->spec = rest + 1;
        t->spec_len = rest_len - 1;
        return macro_syntax_ok(t->spec, t->spec_len, 0);
    case K_PTR:
        if (rest_len == 0)
            return 1;
        if (rest_len < 2 || rest[0] != ':')
            return 0;
        t->spec = rest + 1;
        t->spec_len = rest_len - 1;
        return macro_syntax_ok(t->spec, t->spec_len, 0);
    case K_A:
    case K_MX: {
        size_t j = 0, depth = 0;
        if (rest_len == 0)
            return 1;
        if (rest[0] == ':') {
            /* The domain-spec runs to the first '/' outside a macro. */
            for (j = 1; j < rest_len; j++) {
                if (rest[j] == '{' && rest[j - 1] == '%')
                    depth++;
                else if (rest[j] == '}' && depth > 0)
                    depth--;
                else if (rest[j] == '/' && depth == 0)
                    break;
            }
            t->spec = rest + 1;
            t->spec_len = j - 1;
            if (t->spec_len == 0 || !macro_syntax_ok(t->spec, t->spec_len, 0))
                return 0;
        }
        if (j == rest_len)
            return 1;
        return parse_dual_cidr(rest + j, rest_len - j, t);
    }
    case K_IP4:
    case K_IP6: {
        char addr[64];
        size_t j = 1;
        if (rest_len < 2 || rest[0] != ':')
            return 0;
        while (j < rest_len && rest[j] != '/')
            j++;
        if (j - 1 >= sizeof addr || j == 1)
            return 0;
        memcpy(addr, rest + 1, j - 1);
        addr[j - 1] = '\0';
        t->net.family = t->kind == K_IP4 ? AIMX_AF_INET : AIMX_AF_INET6;
        if (inet_pton(t->kind == K_IP4 ? AF_INET : AF_INET6, addr,
                      t->net.bytes) != 1)
            return 0;
        if (j == rest_len)
            return 1;
        return parse_cidr(rest + j, rest_len - j, t->kind == K_IP4 ? 32 : 128,
                          t->kind == K_IP4 ? &t->cidr4 : &t->cidr6);
    }
    default:
        return 0; /* an unknown mechanism is a permerror (RFC 7208 5) */
    }
}

static int
in_cidr(const aimx_addr *ip, const aimx_addr *net, int bits)
{
    int full = bits / 8, rest = bits % 8;

    if (ip->family != net->family)
        return 0;
    if (memcmp(ip->bytes, net->bytes, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (ip->bytes[full] & mask) == (net->bytes[full] & mask);
}

int
aimx__spf_term_covers(const char *term, size_t len, const aimx_addr *ip)
{
    struct term t;
    aimx_addr a;

    normalise_ip(ip, &a);
    if (!parse_term(term, len, &t) || t.qualifier != '+')
        return 0;
    if (t.kind == K_IP4)
        return in_cidr(&a, &t.net, t.cidr4 < 0 ? 32 : t.cidr4);
    if (t.kind == K_IP6)
        return in_cidr(&a, &t.net, t.cidr6 < 0 ? 128 : t.cidr6);
    return 0;
}

static int
count_lookup(struct state *st)
{
    if (++st->lookups <= AIMX_SPF_MAX_LOOKUPS)
        return 1;
    set_detail(st, 0,
               "more than %d DNS-querying terms (include, a, mx, ptr, "
               "exists, redirect): receivers stop with permerror (RFC 7208 "
               "4.6.4)",
               AIMX_SPF_MAX_LOOKUPS);
    return 0;
}

static int
count_void(struct state *st)
{
    if (++st->voids <= AIMX_SPF_MAX_VOID)
        return 1;
    set_detail(st, 0,
               "more than %d lookups found no record (void lookups): "
               "receivers stop with permerror (RFC 7208 4.6.4)",
               AIMX_SPF_MAX_VOID);
    return 0;
}

/* NXDOMAIN, or an answer with no record of the type. */
static int
is_void(const aimx_dns_answer *a, uint16_t type)
{
    if (a->outcome == AIMX_DNS_NXDOMAIN || a->outcome == AIMX_DNS_NODATA)
        return 1;
    for (size_t i = 0; i < a->count; i++)
        if (a->records[i].type == type)
            return 0;
    return 1;
}

/* Does an A or AAAA answer hold the address, within the term's CIDR? */
static enum ev
match_addrs(struct state *st, const aimx_dns_answer *a, uint16_t type,
            const struct term *t, const char *name)
{
    int bits = type == AIMX_DNS_A ? (t->cidr4 < 0 ? 32 : t->cidr4)
                                  : (t->cidr6 < 0 ? 128 : t->cidr6);

    if (a == NULL) {
        set_detail(st, 0, "out of memory looking up %s", name);
        return EV_TEMP;
    }
    if (aimx__dns_outcome_temporary(a->outcome)) {
        set_detail(st, 0, "'%.*s': the %s lookup of %s failed (%s)",
                   (int)t->text_len, t->text, type == AIMX_DNS_A ? "A" : "AAAA",
                   name, a->diag[0] ? a->diag : "temporary failure");
        return EV_TEMP;
    }
    for (size_t i = 0; i < a->count; i++)
        if (a->records[i].type == type &&
            in_cidr(&st->ip, &a->records[i].address, bits))
            return EV_MATCH;
    return EV_NOMATCH;
}

static int
qualifier_result(char q)
{
    switch (q) {
    case '-':
        return AIMX_SPF_FAIL;
    case '~':
        return AIMX_SPF_SOFTFAIL;
    case '?':
        return AIMX_SPF_NEUTRAL;
    default:
        return AIMX_SPF_PASS;
    }
}

static enum ev
eval_mech(struct state *st, const struct term *t, const char *domain, int depth)
{
    const aimx_spf_query *q = st->q;
    uint16_t atype = st->ip.family == AIMX_AF_INET ? AIMX_DNS_A : AIMX_DNS_AAAA;
    const aimx_dns_answer *a;
    char target[256];
    int r;

    switch (t->kind) {
    case K_ALL:
        return EV_MATCH;
    case K_IP4:
        return st->ip.family == AIMX_AF_INET &&
                       in_cidr(&st->ip, &t->net, t->cidr4 < 0 ? 32 : t->cidr4)
                   ? EV_MATCH
                   : EV_NOMATCH;
    case K_IP6:
        return st->ip.family == AIMX_AF_INET6 &&
                       in_cidr(&st->ip, &t->net, t->cidr6 < 0 ? 128 : t->cidr6)
                   ? EV_MATCH
                   : EV_NOMATCH;
    default:
        break;
    }
    /* Every other mechanism queries DNS and counts toward the limit. */
    if (!count_lookup(st))
        return EV_PERM;
    if (expand_domain(st, t, domain, target, sizeof target) != 0)
        return EV_PERM;

    switch (t->kind) {
    case K_A:
        a = q->lookup(q->arg, target, atype);
        if (a != NULL && !aimx__dns_outcome_temporary(a->outcome) &&
            is_void(a, atype) && !count_void(st))
            return EV_PERM;
        return match_addrs(st, a, atype, t, target);
    case K_EXISTS:
        /* Always an A query, whatever the address's family (5.7). */
        a = q->lookup(q->arg, target, AIMX_DNS_A);
        if (a == NULL || aimx__dns_outcome_temporary(a->outcome)) {
            set_detail(st, 0, "'%.*s': the A lookup of %s failed",
                       (int)t->text_len, t->text, target);
            return EV_TEMP;
        }
        if (is_void(a, AIMX_DNS_A))
            return count_void(st) ? EV_NOMATCH : EV_PERM;
        return EV_MATCH;
    case K_MX: {
        size_t names = 0;
        a = q->lookup(q->arg, target, AIMX_DNS_MX);
        if (a == NULL || aimx__dns_outcome_temporary(a->outcome)) {
            set_detail(st, 0, "'%.*s': the MX lookup of %s failed",
                       (int)t->text_len, t->text, target);
            return EV_TEMP;
        }
        if (is_void(a, AIMX_DNS_MX))
            return count_void(st) ? EV_NOMATCH : EV_PERM;
        for (size_t i = 0; i < a->count; i++)
            if (a->records[i].type == AIMX_DNS_MX)
                names++;
        if (names > MAX_MX_NAMES) {
            set_detail(st, 0,
                       "'%.*s': %s has %zu MX records, more than the %d a "
                       "receiver looks up (RFC 7208 4.6.4)",
                       (int)t->text_len, t->text, target, names, MAX_MX_NAMES);
            return EV_PERM;
        }
        for (size_t i = 0; i < a->count; i++) {
            const aimx_dns_rr *rr = &a->records[i];
            if (rr->type != AIMX_DNS_MX || rr->target == NULL ||
                strcmp(rr->target, ".") == 0 || rr->target[0] == '\0')
                continue;
            enum ev e = match_addrs(st, q->lookup(q->arg, rr->target, atype),
                                    atype, t, rr->target);
            if (e != EV_NOMATCH)
                return e;
        }
        return EV_NOMATCH;
    }
    case K_PTR: {
        char rev[80];
        size_t tl = strlen(target), used = 0;
        aimx__addr_reverse_name(&st->ip, rev, sizeof rev);
        a = q->lookup(q->arg, rev, AIMX_DNS_PTR);
        /* A failed PTR lookup is no match (RFC 7208 5.5). */
        if (a == NULL || aimx__dns_outcome_temporary(a->outcome))
            return EV_NOMATCH;
        if (is_void(a, AIMX_DNS_PTR))
            return count_void(st) ? EV_NOMATCH : EV_PERM;
        for (size_t i = 0; i < a->count && used < MAX_PTR_NAMES; i++) {
            const aimx_dns_rr *rr = &a->records[i];
            if (rr->type != AIMX_DNS_PTR || rr->target == NULL)
                continue;
            used++;
            size_t nl = strlen(rr->target);
            if (nl > 0 && rr->target[nl - 1] == '.')
                nl--;
            int under =
                (nl == tl && strncasecmp(rr->target, target, nl) == 0) ||
                (nl > tl && rr->target[nl - tl - 1] == '.' &&
                 strncasecmp(rr->target + nl - tl, target, tl) == 0);
            if (!under)
                continue;
            const aimx_dns_answer *f = q->lookup(q->arg, rr->target, atype);
            if (f == NULL || aimx__dns_outcome_temporary(f->outcome))
                continue; /* skipped, the search goes on */
            for (size_t k = 0; k < f->count; k++)
                if (f->records[k].type == atype &&
                    in_cidr(&st->ip, &f->records[k].address,
                            atype == AIMX_DNS_A ? 32 : 128))
                    return EV_MATCH;
        }
        return EV_NOMATCH;
    }
    case K_INCLUDE:
        r = check_host(st, target, depth + 1, NULL);
        switch (r) {
        case AIMX_SPF_PASS:
            return EV_MATCH;
        case AIMX_SPF_FAIL:
        case AIMX_SPF_SOFTFAIL:
        case AIMX_SPF_NEUTRAL:
            return EV_NOMATCH;
        case AIMX_SPF_TEMPERROR:
            return EV_TEMP;
        case AIMX_SPF_NONE:
            set_detail(st, 1,
                       "'%.*s': %s has no SPF record, which makes the "
                       "include a permerror (RFC 7208 5.2)",
                       (int)t->text_len, t->text, target);
            return EV_PERM;
        default:
            return EV_PERM;
        }
    default:
        return EV_PERM;
    }
}

static int
check_host(struct state *st, const char *domain, int depth,
           aimx_spf_outcome *top)
{
    const aimx_spf_query *q = st->q;
    const aimx_dns_answer *a;
    const aimx_dns_rr *rec = NULL;
    struct term *terms = NULL;
    char *copy = NULL;
    size_t nrec = 0, nterms = 0;
    const struct term *redirect = NULL;
    int has_all = 0, result = AIMX_SPF_NEUTRAL;

    if (depth > MAX_DEPTH) {
        set_detail(st, 0, "SPF records nest more than %d deep", MAX_DEPTH);
        return AIMX_SPF_PERMERROR;
    }
    if (!domain_ok(domain)) {
        set_detail(st, 0, "'%s' is not a valid domain name", domain);
        return AIMX_SPF_NONE;
    }
    a = q->lookup(q->arg, domain, AIMX_DNS_TXT);
    if (a == NULL) {
        set_detail(st, 0, "out of memory looking up %s", domain);
        return AIMX_SPF_TEMPERROR;
    }
    if (aimx__dns_outcome_temporary(a->outcome)) {
        set_detail(st, 0, "the TXT lookup of %s failed (%s)", domain,
                   a->diag[0] ? a->diag : "temporary DNS failure");
        return AIMX_SPF_TEMPERROR;
    }
    for (size_t i = 0; i < a->count; i++) {
        const aimx_dns_rr *rr = &a->records[i];
        if (rr->type == AIMX_DNS_TXT && rr->text != NULL &&
            aimx__spf_is_record((const char *)rr->text, rr->text_len)) {
            nrec++;
            rec = rr;
        }
    }
    if (nrec == 0) {
        set_detail(st, 0, "%s %s", domain,
                   a->outcome == AIMX_DNS_NXDOMAIN
                       ? "does not exist (NXDOMAIN)"
                       : "publishes no SPF record (no TXT record starting "
                         "v=spf1)");
        return AIMX_SPF_NONE;
    }
    if (top != NULL)
        snprintf(top->record, sizeof top->record, "%.*s", (int)rec->text_len,
                 (const char *)rec->text);
    if (nrec > 1) {
        set_detail(st, 0,
                   "%s publishes %zu SPF records; receivers treat that as "
                   "an error (RFC 7208 4.5): merge them into one",
                   domain, nrec);
        return AIMX_SPF_PERMERROR;
    }

    /* Syntax first: one bad term anywhere is a permerror before anything
     * is evaluated (RFC 7208 4.6). */
    copy = malloc(rec->text_len + 1);
    terms = calloc(rec->text_len / 2 + 2, sizeof *terms);
    if (copy == NULL || terms == NULL) {
        set_detail(st, 0, "out of memory");
        result = AIMX_SPF_TEMPERROR;
        goto out;
    }
    memcpy(copy, rec->text, rec->text_len);
    copy[rec->text_len] = '\0';
    for (size_t i = 6; i < rec->text_len;) {
        size_t start, end;
        while (i < rec->text_len && copy[i] == ' ')
            i++;
        if (i >= rec->text_len)
            break;
        start = i;
        while (i < rec->text_len && copy[i] != ' ')
            i++;
        end = i;
        struct term *t = &terms[nterms];
        if (!parse_term(copy + start, end - start, t)) {
            set_detail(st, 0,
                       "%s's SPF record has an invalid term '%.*s' (a "
                       "permerror, RFC 7208 4.6)",
                       domain, (int)(end - start), copy + start);
            result = AIMX_SPF_PERMERROR;
            goto out;
        }
        if (t->kind == K_REDIRECT) {
            if (redirect != NULL) {
                set_detail(st, 0,
                           "%s's SPF record has two redirect modifiers "
                           "(a permerror, RFC 7208 6)",
                           domain);
                result = AIMX_SPF_PERMERROR;
                goto out;
            }
            redirect = t;
        }
        has_all |= t->kind == K_ALL;
        nterms++;
    }

    for (size_t i = 0; i < nterms; i++) {
        const struct term *t = &terms[i];
        enum ev e;

        if (t->kind == K_REDIRECT || t->kind == K_EXP ||
            t->kind == K_UNKNOWN_MODIFIER)
            continue;
        e = eval_mech(st, t, domain, depth);
        if (e == EV_NOMATCH)
            continue;
        if (top != NULL)
            snprintf(top->term, sizeof top->term, "%.*s", (int)t->text_len,
                     t->text);
        result = e == EV_MATCH  ? qualifier_result(t->qualifier)
                 : e == EV_TEMP ? AIMX_SPF_TEMPERROR
                                : AIMX_SPF_PERMERROR;
        goto out;
    }
    /* redirect only when nothing matched and there is no "all" (6.1). */
    if (redirect != NULL && !has_all) {
        char target[256];
        if (top != NULL)
            snprintf(top->term, sizeof top->term, "%.*s",
                     (int)redirect->text_len, redirect->text);
        if (!count_lookup(st) ||
            expand_domain(st, redirect, domain, target, sizeof target) != 0) {
            result = AIMX_SPF_PERMERROR;
            goto out;
        }
        result = check_host(st, target, depth + 1, NULL);
        if (result == AIMX_SPF_NONE) {
            set_detail(st, 1,
                       "'%.*s': %s has no SPF record, which makes the "
                       "redirect a permerror (RFC 7208 6.1)",
                       (int)redirect->text_len, redirect->text, target);
            result = AIMX_SPF_PERMERROR;
        }
        goto out;
    }
    result = AIMX_SPF_NEUTRAL;
out:
    free(terms);
    free(copy);
    return result;
}

void
aimx__spf_check(const aimx_spf_query *q, aimx_spf_outcome *out)
{
    struct state st;
    const char *at;

    memset(out, 0, sizeof *out);
    memset(&st, 0, sizeof st);
    st.q = q;
    normalise_ip(&q->ip, &st.ip);
    at = q->sender ? strrchr(q->sender, '@') : NULL;
    if (at != NULL && at != q->sender) {
        snprintf(st.local, sizeof st.local, "%.*s", (int)(at - q->sender),
                 q->sender);
        snprintf(st.sdomain, sizeof st.sdomain, "%s", at + 1);
    } else {
        /* RFC 7208 4.3: no local part is "postmaster". */
        snprintf(st.local, sizeof st.local, "postmaster");
        snprintf(st.sdomain, sizeof st.sdomain, "%s", at ? at + 1 : q->domain);
    }
    out->result = check_host(&st, q->domain, 0, out);
    out->lookups = st.lookups;
    out->void_lookups = st.voids;
    switch (out->result) {
    case AIMX_SPF_NONE:
    case AIMX_SPF_TEMPERROR:
    case AIMX_SPF_PERMERROR:
        snprintf(out->detail, sizeof out->detail, "%s", st.detail);
        break;
    default:
        if (out->term[0] == '\0')
            snprintf(out->detail, sizeof out->detail,
                     "no term matched and there is no redirect, so the "
                     "result is neutral (RFC 7208 4.7)");
        else if (strncasecmp(out->term, "redirect=", 9) == 0)
            snprintf(out->detail, sizeof out->detail,
                     "no term matched; '%s' gave %s", out->term,
                     aimx__spf_result_word(out->result));
        else
            snprintf(out->detail, sizeof out->detail, "'%s' matched: %s",
                     out->term, aimx__spf_result_word(out->result));
        break;
    }
}
