/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of `aimx setup` and `aimx dkim-keygen`: which addresses
 * the server has, which records to publish, TXT strings, SPF merging, the
 * DKIM key record.  Unit-tested without DNS or plugins.
 */
#ifndef AIMX_SETUP_H
#define AIMX_SETUP_H

#include "localaddr.h"

#include <aimx/plugin.h>
#include <openssl/evp.h>

#include <stddef.h>
#include <stdint.h>

/* Where each of the server's addresses came from. */
enum aimx_addr_source {
    AIMX_SRC_NONE = 0,   /* the family is not used */
    AIMX_SRC_OPTION = 1, /* --ipv4 / --ipv6 */
    AIMX_SRC_BIND = 2,   /* the transport's bind_ipv4 / bind_ipv6 */
    AIMX_SRC_MACHINE = 3 /* this machine's global unicast addresses */
};

typedef struct aimx_setup_addrs {
    aimx_addr v4, v6;          /* family 0 when the family is not used */
    int v4_source, v6_source;  /* enum aimx_addr_source */
    size_t v4_found, v6_found; /* global addresses seen (MACHINE only) */
} aimx_setup_addrs;

/*
 * The server's address for each family in families (AIMX_FAMILY_* bits):
 * opt4/opt6 (NULL or family 0: not given), else the transport's bind
 * address (info NULL: no describe()), else detect(detect_arg, ...).
 * detect is called at most once per family, and never for a family the
 * policy does not use.  An option for an unused family is an error.
 * Returns 0, or -1 with a sentence in err.
 */
int aimx__setup_pick_addrs(uint32_t families, const aimx_addr *opt4,
                           const aimx_addr *opt6,
                           const aimx_transport_info *info,
                           aimx_localaddr_fn *detect, void *detect_arg,
                           aimx_setup_addrs *out, char *err, size_t errlen);

/* "--ipv4", "the transport's bind_ipv4", "this machine", ... */
const char *aimx__addr_source_text(int source, uint8_t family);

/*
 * The zone-file form of a TXT record's text: quoted strings of at most 255
 * octets each (RFC 1035 3.3.14), '"' and '\' escaped, other octets outside
 * printable ASCII as \DDD, separated by one space.  malloc'ed.
 */
char *aimx__txt_quote(const char *text, size_t len);

/*
 * The SPF record to propose.  existing NULL: "v=spf1 ip4:V4 [ip6:V6] -all"
 * (the addresses of family 0 left out).  Otherwise the existing record
 * with every term kept and "ip4:V4" / "ip6:V6" added right after "v=spf1"
 * unless a term of it already passes that address on its own (an ip4/ip6
 * term whose CIDR covers it).  *added (may be NULL) is set to how many
 * were added.  malloc'ed, NULL when out of memory.
 */
char *aimx__spf_propose(const char *existing, const aimx_addr *v4,
                        const aimx_addr *v6, int *added);

/* "v=DKIM1; k=rsa; p=<base64 of the DER SubjectPublicKeyInfo>",
 * malloc'ed, or NULL with err. */
char *aimx__dkim_txt_value(EVP_PKEY *key, char *err, size_t errlen);

/* The tag's value in a DKIM key record ("p", "k"...), white space
 * removed, malloc'ed; NULL when absent. */
char *aimx__dkim_tag(const char *record, size_t len, const char *tag);

/* Reads a PEM public key ("BEGIN PUBLIC KEY").  0, or -1 with err. */
int aimx__dkim_load_public(const char *path, EVP_PKEY **key, char *err,
                           size_t errlen);

/* The DMARC record aimx proposes for domain, malloc'ed. */
char *aimx__dmarc_value(const char *domain);

/* The dkim key files when the configuration names none:
 * <dir of the default config>/dkim/private.key and public.key. */
void aimx__dkim_default_paths(char *priv, size_t privlen, char *pub,
                              size_t publen);

/* The selector when neither --selector nor dkim.selector gives one. */
#define AIMX_DEFAULT_DKIM_SELECTOR "aimx"

#endif
