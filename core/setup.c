/* SPDX-License-Identifier: MIT */
#include "setup.h"

#include "config.h"
#include "netaddr.h"
#include "spf.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TXT_STRING 255 /* RFC 1035 3.3.14: one character-string */

static int pick_one(uint8_t family, const aimx_addr *opt, const aimx_addr *bind,
                    aimx_localaddr_fn *detect, void *arg, aimx_addr *out,
                    int *source, size_t *found, char *err, size_t errlen);

const char *
aimx__addr_source_text(int source, uint8_t family)
{
    int v6 = family == AIMX_AF_INET6;

    switch (source) {
    case AIMX_SRC_OPTION:
        return v6 ? "--ipv6" : "--ipv4";
    case AIMX_SRC_BIND:
        return v6 ? "the transport's bind_ipv6" : "the transport's bind_ipv4";
    case AIMX_SRC_MACHINE:
        return "this machine's global addresses";
    default:
        return "not used";
    }
}

static int
pick_one(uint8_t family, const aimx_addr *opt, const aimx_addr *bind,
         aimx_localaddr_fn *detect, void *arg, aimx_addr *out, int *source,
         size_t *found, char *err, size_t errlen)
{
    const char *v = family == AIMX_AF_INET6 ? "IPv6" : "IPv4";
    const char *o = family == AIMX_AF_INET6 ? "--ipv6" : "--ipv4";
    aimx_addr list[1];
    int n;

    if (opt != NULL && opt->family != 0) {
        *out = *opt;
        *source = AIMX_SRC_OPTION;
        return 0;
    }
    /* Where mail leaves from when the transport binds a source address. */
    if (bind != NULL && bind->family == family) {
        *out = *bind;
        *source = AIMX_SRC_BIND;
        return 0;
    }
    n = detect(arg, family, list, 1);
    if (n < 0) {
        snprintf(err, errlen,
                 "cannot list this machine's %s addresses (%s): give %s "
                 "ADDRESS",
                 v, strerror(errno), o);
        return -1;
    }
    if (n == 0) {
        snprintf(err, errlen,
                 "this machine has no global %s address and the transport "
                 "binds none: give %s ADDRESS, the public address mail "
                 "leaves from (behind NAT, the router's)",
                 v, o);
        return -1;
    }
    *out = list[0];
    *source = AIMX_SRC_MACHINE;
    *found = (size_t)n;
    return 0;
}

int
aimx__setup_pick_addrs(uint32_t families, const aimx_addr *opt4,
                       const aimx_addr *opt6, const aimx_transport_info *info,
                       aimx_localaddr_fn *detect, void *detect_arg,
                       aimx_setup_addrs *out, char *err, size_t errlen)
{
    const aimx_addr *bind4 = NULL, *bind6 = NULL;

    memset(out, 0, sizeof *out);
    if (info != NULL && (info->flags & AIMX_TRANSPORT_BIND_IPV4))
        bind4 = &info->bind_ipv4;
    if (info != NULL && (info->flags & AIMX_TRANSPORT_BIND_IPV6))
        bind6 = &info->bind_ipv6;
    if (opt4 != NULL && opt4->family != 0 && !(families & AIMX_FAMILY_IPV4)) {
        snprintf(err, errlen,
                 "--ipv4 was given but the policy does not send over IPv4, "
                 "so no A record or ip4: term is proposed");
        return -1;
    }
    if (opt6 != NULL && opt6->family != 0 && !(families & AIMX_FAMILY_IPV6)) {
        snprintf(err, errlen,
                 "--ipv6 was given but the policy does not send over IPv6, "
                 "so no AAAA record or ip6: term is proposed (to send over "
                 "IPv6, turn it on in the configuration first)");
        return -1;
    }
    if ((families & AIMX_FAMILY_IPV4) &&
        pick_one(AIMX_AF_INET, opt4, bind4, detect, detect_arg, &out->v4,
                 &out->v4_source, &out->v4_found, err, errlen) != 0)
        return -1;
    /* Only a policy that sends over IPv6 makes setup look for an IPv6
     * address: with IPv6 off, nothing about it is published. */
    if ((families & AIMX_FAMILY_IPV6) &&
        pick_one(AIMX_AF_INET6, opt6, bind6, detect, detect_arg, &out->v6,
                 &out->v6_source, &out->v6_found, err, errlen) != 0)
        return -1;
    return 0;
}

char *
aimx__txt_quote(const char *text, size_t len)
{
    /* Worst case: every octet as \DDD, plus quotes and spaces. */
    size_t cap = len * 4 + (len / MAX_TXT_STRING + 1) * 3 + 3;
    char *out = malloc(cap);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    if (len == 0) {
        memcpy(out, "\"\"", 3);
        return out;
    }
    for (size_t start = 0; start < len; start += MAX_TXT_STRING) {
        size_t end =
            start + MAX_TXT_STRING < len ? start + MAX_TXT_STRING : len;
        if (start > 0)
            out[o++] = ' ';
        out[o++] = '"';
        for (size_t i = start; i < end; i++) {
            unsigned char c = (unsigned char)text[i];
            if (c == '"' || c == '\\') {
                out[o++] = '\\';
                out[o++] = (char)c;
            } else if (c < 0x20 || c > 0x7e) {
                o += (size_t)snprintf(out + o, cap - o, "\\%03u", c);
            } else {
                out[o++] = (char)c;
            }
        }
        out[o++] = '"';
    }
    out[o] = '\0';
    return out;
}

char *
aimx__spf_propose(const char *existing, const aimx_addr *v4,
                  const aimx_addr *v6, int *added)
{
    const aimx_addr *want[2] = {v4, v6};
    char add[2][AIMX_ADDR_TEXT_MAX + 8];
    size_t addlen = 0, n_add = 0;
    char *out;

    if (added != NULL)
        *added = 0;
    for (int k = 0; k < 2; k++) {
        const aimx_addr *a = want[k];
        char text[AIMX_ADDR_TEXT_MAX];
        int covered = 0;

        if (a == NULL || a->family == 0)
            continue;
        /* A term that already passes the address on its own is enough;
         * anything else (a, mx, include...) could change without us. */
        if (existing != NULL) {
            const char *p = existing;
            while (*p && !covered) {
                while (*p == ' ')
                    p++;
                const char *s = p;
                while (*p && *p != ' ')
                    p++;
                if (p > s)
                    covered = aimx__spf_term_covers(s, (size_t)(p - s), a);
            }
        }
        if (covered)
            continue;
        snprintf(add[n_add], sizeof add[n_add], "%s:%s",
                 a->family == AIMX_AF_INET ? "ip4" : "ip6",
                 aimx__addr_text(a, text, sizeof text));
        addlen += strlen(add[n_add]) + 1;
        n_add++;
    }
    if (added != NULL)
        *added = (int)n_add;

    if (existing == NULL) {
        out = malloc(addlen + 16);
        if (out == NULL)
            return NULL;
        size_t o = (size_t)sprintf(out, "v=spf1");
        for (size_t i = 0; i < n_add; i++)
            o += (size_t)sprintf(out + o, " %s", add[i]);
        sprintf(out + o, " -all");
        return out;
    }

    /* Keep every term as it is; the new ones go first so that they match
     * before anything that could fail or cost a lookup. */
    size_t elen = strlen(existing);
    out = malloc(elen + addlen + 8);
    if (out == NULL)
        return NULL;
    size_t o = (size_t)sprintf(out, "v=spf1");
    for (size_t i = 0; i < n_add; i++)
        o += (size_t)sprintf(out + o, " %s", add[i]);
    const char *p = existing + (elen >= 6 ? 6 : elen);
    while (*p) {
        while (*p == ' ')
            p++;
        const char *s = p;
        while (*p && *p != ' ')
            p++;
        if (p > s) {
            out[o++] = ' ';
            memcpy(out + o, s, (size_t)(p - s));
            o += (size_t)(p - s);
        }
    }
    out[o] = '\0';
    return out;
}

char *
aimx__dkim_txt_value(EVP_PKEY *key, char *err, size_t errlen)
{
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(key, &der);
    char *out;
    int b64_len;

    if (der_len <= 0) {
        snprintf(err, errlen, "cannot encode the DKIM public key");
        return NULL;
    }
    /* 4 output octets per 3 input octets, plus the prefix and a NUL. */
    out = malloc((size_t)der_len / 3 * 4 + 4 + 32);
    if (out == NULL) {
        OPENSSL_free(der);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int o = sprintf(out, "v=DKIM1; k=rsa; p=");
    b64_len = EVP_EncodeBlock((unsigned char *)out + o, der, der_len);
    out[o + b64_len] = '\0';
    OPENSSL_free(der);
    return out;
}

char *
aimx__dkim_tag(const char *record, size_t len, const char *tag)
{
    size_t tl = strlen(tag);

    for (size_t i = 0; i < len;) {
        size_t start, end, eq;
        while (i < len && isspace((unsigned char)record[i]))
            i++;
        start = i;
        while (i < len && record[i] != ';')
            i++;
        end = i;
        i++; /* past ';' */
        eq = start;
        while (eq < end && record[eq] != '=')
            eq++;
        if (eq == end)
            continue;
        size_t ne = eq;
        while (ne > start && isspace((unsigned char)record[ne - 1]))
            ne--;
        if (ne - start != tl || strncmp(record + start, tag, tl) != 0)
            continue;
        /* The value, every white space (FWS) removed. */
        char *v = malloc(end - eq);
        size_t o = 0;
        if (v == NULL)
            return NULL;
        for (size_t k = eq + 1; k < end; k++)
            if (!isspace((unsigned char)record[k]))
                v[o++] = record[k];
        v[o] = '\0';
        return v;
    }
    return NULL;
}

int
aimx__dkim_load_public(const char *path, EVP_PKEY **key, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "r");
    unsigned long e;

    *key = NULL;
    if (f == NULL) {
        snprintf(err, errlen, "cannot read the DKIM public key %s: %s", path,
                 strerror(errno));
        return -1;
    }
    *key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (*key == NULL) {
        e = ERR_get_error();
        ERR_clear_error();
        snprintf(err, errlen,
                 "%s is not a PEM public key (-----BEGIN PUBLIC KEY-----): "
                 "%s",
                 path, e ? ERR_reason_error_string(e) : "unreadable");
        return -1;
    }
    return 0;
}

char *
aimx__dmarc_value(const char *domain)
{
    char *out = NULL;

    if (asprintf(&out, "v=DMARC1; p=reject; rua=mailto:postmaster@%s", domain) <
        0)
        return NULL;
    return out;
}

void
aimx__dkim_default_paths(char *priv, size_t privlen, char *pub, size_t publen)
{
    const char *conf = aimx__config_default_path();
    const char *slash = strrchr(conf, '/');
    int dl = slash ? (int)(slash - conf) : 0;

    /* Beside the default configuration: /etc/aimx/dkim/... by default. */
    snprintf(priv, privlen, "%.*s/dkim/private.key", dl, conf);
    snprintf(pub, publen, "%.*s/dkim/public.key", dl, conf);
}
