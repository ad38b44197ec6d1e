/* SPDX-License-Identifier: MIT */
/*
 * aimx setup DOMAIN: the DNS records a mail domain needs for aimx, and
 * with --verify whether they are published and right, judged the way
 * receiving servers judge them.  Families come from the policy plugin
 * (IPv6 records only when it sends over IPv6), addresses and the EHLO
 * name from the transport's describe(), lookups from the resolver plugin.
 */
#include "cli.h"
#include "dkim.h"
#include "exitcodes.h"
#include "json.h"
#include "localaddr.h"
#include "log.h"
#include "lookup.h"
#include "netaddr.h"
#include "route.h"
#include "setup.h"
#include "spf.h"

#include <limits.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_RECORDS 8
#define MAX_PTR     10 /* names of one address looked at */

enum setup_opt {
    OPT_IPV4 = 320,
    OPT_IPV6,
    OPT_OUTBOUND_ONLY,
    OPT_VERIFY,
};

const struct option aimx__setup_options[] = {
    {"ipv4", required_argument, NULL, OPT_IPV4},
    {"ipv6", required_argument, NULL, OPT_IPV6},
    {"outbound-only", no_argument, NULL, OPT_OUTBOUND_ONLY},
    {"verify", no_argument, NULL, OPT_VERIFY},
    {NULL, 0, NULL, 0},
};

enum check_result {
    CK_PASS,
    CK_MISSING,
    CK_WRONG,
    CK_LOOKUP_FAILED,
    CK_WARNING
};

struct record {
    const char *type; /* A, AAAA, MX, TXT */
    char name[330];   /* no trailing dot */
    char *value;      /* zone-file form */
};

struct check {
    char record[80]; /* "A", "SPF 127.0.0.1", "PTR ::1"... */
    int result;      /* enum check_result */
    char *found;     /* what the DNS holds, or NULL */
    char detail[1024];
};

/* One address's SPF evaluation, run on its own thread. */
struct spf_job {
    struct setup *s;
    aimx_addr ip;
    aimx_spf_outcome out;
    pthread_t thread;
    int threaded;
};

struct setup {
    const aimx_cli *cli;
    aimx_config c;
    aimx_instance resolver, policy, transport;
    char domain[256];
    int outbound_only, verify;
    aimx_addr opt4, opt6;
    uint32_t families;
    aimx_transport_info info;
    int have_info;
    aimx_setup_addrs addrs;
    aimx_dns_cache *dns;
    const char *selector;
    char dkim_name[320];
    char dkim_path[PATH_MAX]; /* the file the local key came from */
    EVP_PKEY *dkim_key;
    char *dkim_value;
    char *spf_value;
    char *dmarc_value;
    struct record recs[MAX_RECORDS];
    size_t nrec;
    struct check *checks;
    size_t nchecks, capchecks;
    char **notes;
    size_t nnotes;
};

static int parse_options(struct setup *s);
static void note(struct setup *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static struct check *add_check(struct setup *s, const char *record, int result,
                               char *found, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void add_record(struct setup *s, const char *type, const char *name,
                       char *value);
static int load_plugins(struct setup *s);
static void load_dkim(struct setup *s);
static void first_lookups(struct setup *s);
static void propose_spf(struct setup *s);
static void build_records(struct setup *s);
static char *addr_list(const aimx_dns_answer *a, uint16_t type);
static int has_addr(const aimx_dns_answer *a, uint16_t type,
                    const aimx_addr *want);
static void check_address(struct setup *s, uint16_t type,
                          const aimx_addr *want);
static void check_mx(struct setup *s);
static void *spf_thread(void *arg);
static const aimx_dns_answer *spf_lookup(void *arg, const char *name,
                                         uint16_t type);
static void check_spf(struct setup *s);
static void check_dkim(struct setup *s);
static void check_dmarc(struct setup *s);
static void check_reverse(struct setup *s);
static void reverse_one(struct setup *s, const aimx_addr *ip);
static const char *result_word(int result);
static const char *result_label(int result);
static void print_json(const struct setup *s);
static void print_human(const struct setup *s);
static void free_setup(struct setup *s);

static int
parse_options(struct setup *s)
{
    const aimx_cli *cli = s->cli;

    for (int i = 0; i < cli->opt_count; i++) {
        const char *arg = cli->opts[i].arg;
        int id = cli->opts[i].id;
        aimx_addr *dst = id == OPT_IPV4 ? &s->opt4 : &s->opt6;

        switch (id) {
        case OPT_IPV4:
        case OPT_IPV6:
            if (aimx__addr_parse(arg, dst) != 0 ||
                dst->family != (id == OPT_IPV4 ? AIMX_AF_INET : AIMX_AF_INET6))
                return aimx__fail(cli, AIMX_EXIT_USAGE,
                                  "%s '%s' is not an %s address",
                                  id == OPT_IPV4 ? "--ipv4" : "--ipv6", arg,
                                  id == OPT_IPV4 ? "IPv4" : "IPv6");
            break;
        case OPT_OUTBOUND_ONLY:
            s->outbound_only = 1;
            break;
        case OPT_VERIFY:
            s->verify = 1;
            break;
        default:
            break;
        }
    }
    if (cli->arg_count != 1)
        return aimx__fail(cli, AIMX_EXIT_USAGE,
                          cli->arg_count == 0
                              ? "'aimx setup' needs the mail domain"
                              : "'aimx setup' takes one domain");
    return 0;
}

static void
note(struct setup *s, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    char **grown = realloc(s->notes, (s->nnotes + 1) * sizeof *grown);

    if (grown == NULL)
        return;
    s->notes = grown;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg != NULL)
        s->notes[s->nnotes++] = msg;
}

static struct check *
add_check(struct setup *s, const char *record, int result, char *found,
          const char *fmt, ...)
{
    struct check *k;
    va_list ap;

    if (s->nchecks == s->capchecks) {
        size_t cap = s->capchecks ? s->capchecks * 2 : 16;
        struct check *grown = realloc(s->checks, cap * sizeof *grown);
        if (grown == NULL) {
            free(found);
            return NULL;
        }
        s->checks = grown;
        s->capchecks = cap;
    }
    k = &s->checks[s->nchecks++];
    memset(k, 0, sizeof *k);
    snprintf(k->record, sizeof k->record, "%s", record);
    k->result = result;
    k->found = found;
    va_start(ap, fmt);
    vsnprintf(k->detail, sizeof k->detail, fmt, ap);
    va_end(ap);
    return k;
}

static void
add_record(struct setup *s, const char *type, const char *name, char *value)
{
    struct record *r;

    if (value == NULL || s->nrec == MAX_RECORDS) {
        free(value);
        return;
    }
    r = &s->recs[s->nrec++];
    r->type = type;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->value = value;
}

/* setup needs all three: the resolver for lookups, the policy for the
 * families, the transport for its source addresses and EHLO name. */
static int
load_plugins(struct setup *s)
{
    aimx_diag d = {0};
    aimx_status st;
    int rc = 0;

    aimx__instance_create(&s->resolver, &s->c, AIMX_SLOT_RESOLVER, &d);
    aimx__instance_create(&s->policy, &s->c, AIMX_SLOT_POLICY, &d);
    aimx__instance_create(&s->transport, &s->c, AIMX_SLOT_TRANSPORT, &d);
    if (d.count > 0) {
        rc = aimx__fail_diag(s->cli, AIMX_EXIT_CONFIG, &d);
        aimx__diag_free(&d);
        return rc;
    }
    aimx__diag_free(&d);
    st = s->policy.plugin.policy.families(s->policy.instance, &s->families);
    if (st != AIMX_OK ||
        (s->families & (AIMX_FAMILY_IPV4 | AIMX_FAMILY_IPV6)) == 0)
        return aimx__fail(s->cli, AIMX_EXIT_CONFIG,
                          "the policy plugin %s reports no address family "
                          "for outbound mail (status %d, families 0x%x)",
                          s->policy.plugin.name, (int)st,
                          (unsigned)s->families);
    s->families &= AIMX_FAMILY_IPV4 | AIMX_FAMILY_IPV6;
    if (s->transport.plugin.transport.describe != NULL) {
        memset(&s->info, 0, sizeof s->info);
        s->info.struct_size = sizeof s->info;
        st = s->transport.plugin.transport.describe(s->transport.instance,
                                                    &s->info);
        s->info.ehlo_name[sizeof s->info.ehlo_name - 1] = '\0';
        s->have_info = st == AIMX_OK;
        if (!s->have_info)
            aimx__warn("the transport plugin %s could not describe itself "
                       "(status %d): no source address or EHLO name from it",
                       s->transport.plugin.name, (int)st);
    }
    return 0;
}

/* The key aimx signs with: the private key's public half when this user
 * can read it (that is the truth), else public_key_file. */
static void
load_dkim(struct setup *s)
{
    char def_priv[PATH_MAX], def_pub[PATH_MAX], err[1024];
    const char *priv, *pub;
    EVP_PKEY *from_priv = NULL, *from_pub = NULL;

    s->selector =
        s->c.dkim_selector ? s->c.dkim_selector : AIMX_DEFAULT_DKIM_SELECTOR;
    snprintf(s->dkim_name, sizeof s->dkim_name, "%s._domainkey.%s", s->selector,
             s->domain);
    aimx__dkim_default_paths(def_priv, sizeof def_priv, def_pub,
                             sizeof def_pub);
    priv = s->c.dkim_key_file ? s->c.dkim_key_file : def_priv;
    pub = s->c.dkim_public_key_file ? s->c.dkim_public_key_file : def_pub;
    if (aimx__dkim_load_key(priv, &from_priv, err, sizeof err) != 0)
        aimx__debug("%s", err);
    if (aimx__dkim_load_public(pub, &from_pub, err, sizeof err) != 0)
        aimx__debug("%s", err);
    if (from_priv != NULL && from_pub != NULL &&
        EVP_PKEY_eq(from_priv, from_pub) != 1)
        note(s,
             "the public key %s is not the public half of the key_file %s, "
             "which signs: the DKIM record below is made from the key_file; "
             "run 'aimx dkim-keygen --force' for a fresh pair, or replace "
             "%s",
             pub, priv, pub);
    if (from_priv != NULL) {
        s->dkim_key = from_priv;
        snprintf(s->dkim_path, sizeof s->dkim_path, "%s", priv);
        EVP_PKEY_free(from_pub);
    } else if (from_pub != NULL) {
        s->dkim_key = from_pub;
        snprintf(s->dkim_path, sizeof s->dkim_path, "%s", pub);
    }
    if (s->dkim_key != NULL) {
        s->dkim_value = aimx__dkim_txt_value(s->dkim_key, err, sizeof err);
        if (s->dkim_value == NULL)
            note(s, "the DKIM key in %s cannot be encoded: %s", s->dkim_path,
                 err);
    } else {
        note(s,
             "no DKIM key in %s or %s: run 'aimx dkim-keygen' (as root), "
             "then 'aimx setup %s' again for the DKIM record",
             pub, priv, s->domain);
    }
    if (!s->c.dkim)
        note(s,
             "the configuration has no dkim group, so aimx does not sign: "
             "add dkim: { selector = \"%s\"; key_file = \"%s\"; "
             "public_key_file = \"%s\"; };",
             s->selector, priv, pub);
    if (strcmp(s->domain, s->c.domain) != 0)
        note(s,
             "%s is not the configured domain (%s): aimx signs DKIM with "
             "d=%s and says so in Message-IDs, so mail from %s is not "
             "aligned with DKIM; set domain = \"%s\" in aimx.conf to send "
             "as %s",
             s->domain, s->c.domain, s->c.domain, s->domain, s->domain,
             s->domain);
}

/* Everything that does not depend on another answer, in flight at once. */
static void
first_lookups(struct setup *s)
{
    aimx_dns_ask asks[10];
    char dmarc[300], rev4[80], rev6[80];
    size_t n = 0;

    asks[n++] = (aimx_dns_ask){s->domain, AIMX_DNS_TXT};
    if (s->verify) {
        if (!s->outbound_only) {
            if (s->addrs.v4.family)
                asks[n++] = (aimx_dns_ask){s->domain, AIMX_DNS_A};
            if (s->addrs.v6.family)
                asks[n++] = (aimx_dns_ask){s->domain, AIMX_DNS_AAAA};
            asks[n++] = (aimx_dns_ask){s->domain, AIMX_DNS_MX};
        }
        snprintf(dmarc, sizeof dmarc, "_dmarc.%s", s->domain);
        asks[n++] = (aimx_dns_ask){s->dkim_name, AIMX_DNS_TXT};
        asks[n++] = (aimx_dns_ask){dmarc, AIMX_DNS_TXT};
        if (s->addrs.v4.family)
            asks[n++] = (aimx_dns_ask){
                aimx__addr_reverse_name(&s->addrs.v4, rev4, sizeof rev4),
                AIMX_DNS_PTR};
        if (s->addrs.v6.family)
            asks[n++] = (aimx_dns_ask){
                aimx__addr_reverse_name(&s->addrs.v6, rev6, sizeof rev6),
                AIMX_DNS_PTR};
    }
    if (aimx__dns_cache_fetch(s->dns, asks, n) != 0)
        aimx__warn("out of memory starting DNS lookups");
}

/* Merge into the domain's SPF record rather than replace it: other
 * senders of the domain would start failing otherwise. */
static void
propose_spf(struct setup *s)
{
    const aimx_dns_answer *a =
        aimx__dns_cache_get(s->dns, s->domain, AIMX_DNS_TXT);
    const aimx_dns_rr *first = NULL;
    size_t count = 0;
    char *existing = NULL;
    int added = 0;

    if (a != NULL && aimx__dns_outcome_temporary(a->outcome)) {
        note(s,
             "the TXT lookup of %s failed (%s%s%s), so the SPF record below "
             "is a new one: if %s already publishes SPF, merge them into one",
             s->domain, aimx__dns_outcome_word(a->outcome),
             a->diag[0] ? ": " : "", a->diag, s->domain);
    }
    for (size_t i = 0; a != NULL && i < a->count; i++) {
        const aimx_dns_rr *rr = &a->records[i];
        if (rr->type == AIMX_DNS_TXT && rr->text != NULL &&
            aimx__spf_is_record((const char *)rr->text, rr->text_len)) {
            if (first == NULL)
                first = rr;
            count++;
        }
    }
    if (first != NULL)
        existing = strndup((const char *)first->text, first->text_len);
    s->spf_value =
        aimx__spf_propose(existing, &s->addrs.v4, &s->addrs.v6, &added);
    if (existing != NULL) {
        if (added == 0)
            note(s,
                 "the SPF record of %s already lists this server: keep "
                 "it as it is",
                 s->domain);
        else
            note(s,
                 "%s already publishes SPF (\"%s\"): the record below "
                 "keeps its terms and adds this server; replace the old "
                 "record with it",
                 s->domain, existing);
    }
    if (count > 1)
        note(s,
             "%s publishes %zu SPF records, which makes SPF fail for every "
             "sender (permerror, RFC 7208 4.5): publish only the one below",
             s->domain, count);
    free(existing);
}

static void
build_records(struct setup *s)
{
    char text[AIMX_ADDR_TEXT_MAX], name[320];
    char *mx = NULL;

    if (!s->outbound_only) {
        if (s->addrs.v4.family)
            add_record(
                s, "A", s->domain,
                strdup(aimx__addr_text(&s->addrs.v4, text, sizeof text)));
        if (s->addrs.v6.family)
            add_record(
                s, "AAAA", s->domain,
                strdup(aimx__addr_text(&s->addrs.v6, text, sizeof text)));
        if (asprintf(&mx, "10 %s.", s->domain) < 0)
            mx = NULL;
        add_record(s, "MX", s->domain, mx);
    }
    if (s->spf_value != NULL)
        add_record(s, "TXT", s->domain,
                   aimx__txt_quote(s->spf_value, strlen(s->spf_value)));
    if (s->dkim_value != NULL)
        add_record(s, "TXT", s->dkim_name,
                   aimx__txt_quote(s->dkim_value, strlen(s->dkim_value)));
    s->dmarc_value = aimx__dmarc_value(s->domain);
    snprintf(name, sizeof name, "_dmarc.%s", s->domain);
    if (s->dmarc_value != NULL)
        add_record(s, "TXT", name,
                   aimx__txt_quote(s->dmarc_value, strlen(s->dmarc_value)));
}

/* "127.0.0.1, 127.0.0.2", or NULL for none. */
static char *
addr_list(const aimx_dns_answer *a, uint16_t type)
{
    char *out = NULL;
    size_t used = 0;

    for (size_t i = 0; a != NULL && i < a->count; i++) {
        char text[AIMX_ADDR_TEXT_MAX];
        if (a->records[i].type != type)
            continue;
        aimx__addr_text(&a->records[i].address, text, sizeof text);
        char *grown = realloc(out, used + strlen(text) + 3);
        if (grown == NULL)
            break;
        out = grown;
        used += (size_t)sprintf(out + used, "%s%s", used ? ", " : "", text);
    }
    return out;
}

static int
has_addr(const aimx_dns_answer *a, uint16_t type, const aimx_addr *want)
{
    for (size_t i = 0; a != NULL && i < a->count; i++)
        if (a->records[i].type == type &&
            a->records[i].address.family == want->family &&
            memcmp(a->records[i].address.bytes, want->bytes, 16) == 0)
            return 1;
    return 0;
}

static void
check_address(struct setup *s, uint16_t type, const aimx_addr *want)
{
    const char *label = type == AIMX_DNS_A ? "A" : "AAAA";
    const aimx_dns_answer *a = aimx__dns_cache_get(s->dns, s->domain, type);
    char text[AIMX_ADDR_TEXT_MAX];
    char *found;

    aimx__addr_text(want, text, sizeof text);
    if (a == NULL || aimx__dns_outcome_temporary(a->outcome)) {
        add_check(s, label, CK_LOOKUP_FAILED, NULL,
                  "the %s lookup of %s failed (%s%s%s)", label, s->domain,
                  a ? aimx__dns_outcome_word(a->outcome) : "out of memory",
                  a && a->diag[0] ? ": " : "", a ? a->diag : "");
        return;
    }
    found = addr_list(a, type);
    if (has_addr(a, type, want))
        add_check(s, label, CK_PASS, found, "%s has %s %s", s->domain, label,
                  text);
    else if (found == NULL)
        add_check(s, label, CK_MISSING, NULL,
                  "%s has no %s record: publish %s %s (MX %s. sends inbound "
                  "mail there)",
                  s->domain, label, label, text, s->domain);
    else
        add_check(s, label, CK_WRONG, found,
                  "%s's %s record is %s, not this server's %s: publish %s %s",
                  s->domain, label, found, text, label, text);
}

static void
check_mx(struct setup *s)
{
    const aimx_dns_answer *a =
        aimx__dns_cache_get(s->dns, s->domain, AIMX_DNS_MX);
    char *found = NULL;
    size_t used = 0;
    int ours = 0, null_mx = 0;

    if (a == NULL || aimx__dns_outcome_temporary(a->outcome)) {
        add_check(s, "MX", CK_LOOKUP_FAILED, NULL,
                  "the MX lookup of %s failed (%s%s%s)", s->domain,
                  a ? aimx__dns_outcome_word(a->outcome) : "out of memory",
                  a && a->diag[0] ? ": " : "", a ? a->diag : "");
        return;
    }
    for (size_t i = 0; i < a->count; i++) {
        const aimx_dns_rr *rr = &a->records[i];
        const char *t = rr->target ? rr->target : "";
        size_t tl = strlen(t);
        if (rr->type != AIMX_DNS_MX)
            continue;
        if (tl == 0 || strcmp(t, ".") == 0) {
            /* RFC 7505: the root as exchange, shown as "0 ." */
            null_mx = 1;
            tl = 0;
        } else if (tl > 1 && t[tl - 1] == '.') {
            tl--;
        }
        ours |= tl == strlen(s->domain) && strncasecmp(t, s->domain, tl) == 0;
        char *grown = realloc(found, used + tl + 16);
        if (grown == NULL)
            break;
        found = grown;
        used += (size_t)sprintf(found + used, "%s%u %.*s.", used ? ", " : "",
                                (unsigned)rr->preference, (int)tl, t);
    }
    if (null_mx)
        add_check(s, "MX", CK_WRONG, found,
                  "%s publishes a null MX (RFC 7505), which says it accepts "
                  "no mail: replace it with MX 10 %s. (or use "
                  "--outbound-only if inbound mail is not wanted)",
                  s->domain, s->domain);
    else if (ours)
        add_check(s, "MX", CK_PASS, found, "%s's MX points at %s", s->domain,
                  s->domain);
    else if (found == NULL)
        add_check(s, "MX", CK_MISSING, NULL,
                  "%s has no MX record: publish MX 10 %s. (with no MX, mail "
                  "goes to the domain's own address, and many senders "
                  "refuse that), or use --outbound-only when another "
                  "server takes the domain's mail",
                  s->domain, s->domain);
    else
        add_check(s, "MX", CK_WRONG, found,
                  "%s's MX points elsewhere (%s), not at %s: publish MX 10 "
                  "%s., or use --outbound-only when that server takes the "
                  "domain's mail",
                  s->domain, found, s->domain, s->domain);
}

static const aimx_dns_answer *
spf_lookup(void *arg, const char *name, uint16_t type)
{
    struct setup *s = arg;

    return aimx__dns_cache_get(s->dns, name, type);
}

static void *
spf_thread(void *arg)
{
    struct spf_job *job = arg;
    struct setup *s = job->s;
    char sender[320];
    aimx_spf_query q;

    snprintf(sender, sizeof sender, "postmaster@%s", s->domain);
    memset(&q, 0, sizeof q);
    q.ip = job->ip;
    q.domain = s->domain;
    q.sender = sender;
    q.helo =
        s->have_info && s->info.ehlo_name[0] ? s->info.ehlo_name : s->domain;
    q.lookup = spf_lookup;
    q.arg = s;
    aimx__spf_check(&q, &job->out);
    return NULL;
}

/* Each outbound address as a receiver sees it, the addresses evaluated
 * at once on their own threads (lookups they share are asked once). */
static void
check_spf(struct setup *s)
{
    struct spf_job jobs[2];
    size_t n = 0;

    memset(jobs, 0, sizeof jobs);
    if (s->addrs.v4.family)
        jobs[n++].ip = s->addrs.v4;
    if (s->addrs.v6.family)
        jobs[n++].ip = s->addrs.v6;
    for (size_t i = 0; i < n; i++) {
        jobs[i].s = s;
        jobs[i].threaded = n > 1 && pthread_create(&jobs[i].thread, NULL,
                                                   spf_thread, &jobs[i]) == 0;
        if (!jobs[i].threaded)
            spf_thread(&jobs[i]);
    }
    for (size_t i = 0; i < n; i++)
        if (jobs[i].threaded)
            pthread_join(jobs[i].thread, NULL);
    for (size_t i = 0; i < n; i++) {
        const aimx_spf_outcome *o = &jobs[i].out;
        char text[AIMX_ADDR_TEXT_MAX], label[80];
        char *found = o->record[0] ? strdup(o->record) : NULL;
        const char *w = aimx__spf_result_word(o->result);

        aimx__addr_text(&jobs[i].ip, text, sizeof text);
        snprintf(label, sizeof label, "SPF %s", text);
        switch (o->result) {
        case AIMX_SPF_PASS:
            add_check(s, label, CK_PASS, found, "%s passes SPF: %s", text,
                      o->detail);
            break;
        case AIMX_SPF_NONE:
            add_check(s, label, CK_MISSING, found,
                      "%s: publish the SPF record above", o->detail);
            break;
        case AIMX_SPF_TEMPERROR:
            add_check(s, label, CK_LOOKUP_FAILED, found,
                      "a receiver gets temperror for %s: %s", text, o->detail);
            break;
        default:
            add_check(s, label, CK_WRONG, found,
                      "a receiver gets %s, not pass, for mail from %s: %s; "
                      "publish the SPF record above",
                      w, text, o->detail);
            break;
        }
    }
}

static void
check_dkim(struct setup *s)
{
    const aimx_dns_answer *a =
        aimx__dns_cache_get(s->dns, s->dkim_name, AIMX_DNS_TXT);
    const aimx_dns_rr *rec = NULL;
    size_t count = 0;
    char *p = NULL, *k = NULL, *local_p = NULL, *found = NULL;

    if (a == NULL || aimx__dns_outcome_temporary(a->outcome)) {
        add_check(s, "DKIM", CK_LOOKUP_FAILED, NULL,
                  "the TXT lookup of %s failed (%s%s%s)", s->dkim_name,
                  a ? aimx__dns_outcome_word(a->outcome) : "out of memory",
                  a && a->diag[0] ? ": " : "", a ? a->diag : "");
        return;
    }
    for (size_t i = 0; i < a->count; i++) {
        const aimx_dns_rr *rr = &a->records[i];
        char *tag;
        if (rr->type != AIMX_DNS_TXT || rr->text == NULL)
            continue;
        tag = aimx__dkim_tag((const char *)rr->text, rr->text_len, "p");
        if (tag == NULL)
            continue;
        free(tag);
        rec = rr;
        count++;
    }
    if (rec != NULL)
        found = strndup((const char *)rec->text, rec->text_len);
    if (s->dkim_value == NULL) {
        add_check(s, "DKIM", CK_MISSING, found,
                  "there is no local DKIM key to compare with: run 'aimx "
                  "dkim-keygen', publish its record at %s and run this "
                  "again",
                  s->dkim_name);
        return;
    }
    if (rec == NULL) {
        add_check(s, "DKIM", CK_MISSING, NULL,
                  "%s has no DKIM key record: publish the TXT record above",
                  s->dkim_name);
        return;
    }
    if (count > 1) {
        add_check(s, "DKIM", CK_WRONG, found,
                  "%s has %zu DKIM key records and verifiers may use any of "
                  "them: publish only the one above",
                  s->dkim_name, count);
        return;
    }
    p = aimx__dkim_tag((const char *)rec->text, rec->text_len, "p");
    k = aimx__dkim_tag((const char *)rec->text, rec->text_len, "k");
    local_p = aimx__dkim_tag(s->dkim_value, strlen(s->dkim_value), "p");
    if (k != NULL && strcasecmp(k, "rsa") != 0) {
        add_check(s, "DKIM", CK_WRONG, found,
                  "%s says k=%s, but aimx signs with rsa-sha256: publish "
                  "the record above",
                  s->dkim_name, k);
    } else if (p == NULL || p[0] == '\0') {
        add_check(s, "DKIM", CK_WRONG, found,
                  "%s has an empty p=, which revokes the key: publish the "
                  "record above",
                  s->dkim_name);
    } else {
        int same = local_p != NULL && strcmp(p, local_p) == 0;
        if (!same) {
            /* The same key may be written another way (RSAPublicKey
             * instead of SubjectPublicKeyInfo): compare keys. */
            size_t pl = strlen(p);
            unsigned char *der = malloc(pl);
            int n =
                der ? EVP_DecodeBlock(der, (unsigned char *)p, (int)pl) : -1;
            const unsigned char *q = der;
            EVP_PKEY *pub = NULL;
            if (n > 0) {
                while (pl > 0 && p[pl - 1] == '=') { /* padding decoded as 0 */
                    pl--;
                    n--;
                }
                pub = d2i_PUBKEY(NULL, &q, n);
            }
            same = pub != NULL && EVP_PKEY_eq(pub, s->dkim_key) == 1;
            EVP_PKEY_free(pub);
            free(der);
        }
        if (!same)
            add_check(s, "DKIM", CK_WRONG, found,
                      "the key published at %s is not the local key (%s), "
                      "so receivers cannot verify aimx's signatures: "
                      "publish the record above",
                      s->dkim_name, s->dkim_path);
        else if (!s->c.dkim)
            add_check(s, "DKIM", CK_WARNING, found,
                      "the published key is the local one, but the "
                      "configuration has no dkim group, so aimx does not "
                      "sign yet");
        else
            add_check(s, "DKIM", CK_PASS, found, "%s publishes the key of %s",
                      s->dkim_name, s->dkim_path);
    }
    free(p);
    free(k);
    free(local_p);
}

static void
check_dmarc(struct setup *s)
{
    char name[300];
    const aimx_dns_answer *a;
    const aimx_dns_rr *rec = NULL;
    size_t count = 0;
    char *p, *found;

    snprintf(name, sizeof name, "_dmarc.%s", s->domain);
    a = aimx__dns_cache_get(s->dns, name, AIMX_DNS_TXT);
    if (a == NULL || aimx__dns_outcome_temporary(a->outcome)) {
        add_check(s, "DMARC", CK_LOOKUP_FAILED, NULL,
                  "the TXT lookup of %s failed (%s%s%s)", name,
                  a ? aimx__dns_outcome_word(a->outcome) : "out of memory",
                  a && a->diag[0] ? ": " : "", a ? a->diag : "");
        return;
    }
    for (size_t i = 0; i < a->count; i++) {
        const aimx_dns_rr *rr = &a->records[i];
        const char *t = (const char *)rr->text;
        if (rr->type != AIMX_DNS_TXT || t == NULL || rr->text_len < 8 ||
            strncmp(t, "v=DMARC1", 8) != 0 ||
            (rr->text_len > 8 && t[8] != ';' && t[8] != ' '))
            continue;
        rec = rr;
        count++;
    }
    if (rec == NULL) {
        add_check(s, "DMARC", CK_MISSING, NULL,
                  "%s has no DMARC record: publish the TXT record above", name);
        return;
    }
    found = strndup((const char *)rec->text, rec->text_len);
    if (count > 1) {
        add_check(s, "DMARC", CK_WRONG, found,
                  "%s has %zu DMARC records, and receivers then apply none "
                  "(RFC 7489 6.6.3): publish only one",
                  name, count);
        return;
    }
    p = aimx__dkim_tag((const char *)rec->text, rec->text_len, "p");
    if (p == NULL ||
        (strcasecmp(p, "none") != 0 && strcasecmp(p, "quarantine") != 0 &&
         strcasecmp(p, "reject") != 0))
        add_check(s, "DMARC", CK_WRONG, found,
                  "%s has %s%s%s; p= must be none, quarantine or reject", name,
                  p ? "p=" : "no p= tag", p ? p : "", "");
    else if (strcasecmp(p, "none") == 0)
        add_check(s, "DMARC", CK_WARNING, found,
                  "p=none only asks for reports: receivers still deliver "
                  "forged mail from %s; move to p=quarantine or p=reject "
                  "once the reports show your mail passing",
                  s->domain);
    else
        add_check(s, "DMARC", CK_PASS, found, "%s publishes p=%s", name, p);
    free(p);
}

/* PTR of one address: it exists and resolves back to the address
 * (forward-confirmed), and the EHLO name is that name.  Warnings only:
 * the operator's zone cannot fix them; whoever runs the address can. */
static void
reverse_one(struct setup *s, const aimx_addr *ip)
{
    uint16_t ftype = ip->family == AIMX_AF_INET ? AIMX_DNS_A : AIMX_DNS_AAAA;
    char text[AIMX_ADDR_TEXT_MAX], rev[80], label[80];
    const aimx_dns_answer *a;
    aimx_dns_ask asks[MAX_PTR];
    const char *names[MAX_PTR];
    const char *confirmed = NULL;
    size_t n = 0, used = 0;
    int fwd_failed = 0;
    char *found = NULL;
    const char *ehlo =
        s->have_info && s->info.ehlo_name[0] ? s->info.ehlo_name : NULL;

    aimx__addr_text(ip, text, sizeof text);
    aimx__addr_reverse_name(ip, rev, sizeof rev);
    snprintf(label, sizeof label, "PTR %s", text);
    a = aimx__dns_cache_get(s->dns, rev, AIMX_DNS_PTR);
    if (a == NULL || aimx__dns_outcome_temporary(a->outcome)) {
        add_check(s, label, CK_LOOKUP_FAILED, NULL,
                  "the PTR lookup of %s failed (%s%s%s)", rev,
                  a ? aimx__dns_outcome_word(a->outcome) : "out of memory",
                  a && a->diag[0] ? ": " : "", a ? a->diag : "");
        return;
    }
    for (size_t i = 0; i < a->count && n < MAX_PTR; i++) {
        const aimx_dns_rr *rr = &a->records[i];
        if (rr->type != AIMX_DNS_PTR || rr->target == NULL ||
            rr->target[0] == '\0')
            continue;
        names[n] = rr->target;
        asks[n] = (aimx_dns_ask){rr->target, ftype};
        n++;
        char *grown = realloc(found, used + strlen(rr->target) + 3);
        if (grown == NULL)
            break;
        found = grown;
        used +=
            (size_t)sprintf(found + used, "%s%s", used ? ", " : "", rr->target);
    }
    if (n == 0) {
        add_check(s, label, CK_WARNING, NULL,
                  "%s has no PTR record (reverse DNS): many receivers refuse "
                  "or junk mail from an address without one, and Gmail "
                  "rejects all IPv6 mail without it; ask whoever runs the "
                  "address to set its PTR to %s",
                  text, ehlo ? ehlo : s->domain);
        return;
    }
    /* Every name's forward lookup at once. */
    aimx__dns_cache_fetch(s->dns, asks, n);
    for (size_t i = 0; i < n && confirmed == NULL; i++) {
        const aimx_dns_answer *f = aimx__dns_cache_get(s->dns, names[i], ftype);
        if (f == NULL || aimx__dns_outcome_temporary(f->outcome))
            fwd_failed = 1;
        else if (has_addr(f, ftype, ip))
            confirmed = names[i];
    }
    if (confirmed != NULL)
        add_check(s, label, CK_PASS, strdup(found),
                  "%s -> %s -> %s: forward-confirmed", text, confirmed, text);
    else if (fwd_failed)
        add_check(s, label, CK_LOOKUP_FAILED, strdup(found),
                  "the %s lookup of %s's reverse name failed, so whether it "
                  "is forward-confirmed is unknown",
                  ftype == AIMX_DNS_A ? "A" : "AAAA", text);
    else
        add_check(s, label, CK_WARNING, strdup(found),
                  "%s's PTR names %s, which has no %s record %s: receivers "
                  "want reverse DNS that resolves back to the address "
                  "(forward-confirmed); add %s %s to that name, or have the "
                  "PTR changed to a name that has it",
                  text, found, ftype == AIMX_DNS_A ? "A" : "AAAA", text,
                  ftype == AIMX_DNS_A ? "A" : "AAAA", text);

    snprintf(label, sizeof label, "EHLO %s", text);
    if (ehlo == NULL) {
        add_check(s, label, CK_WARNING, NULL,
                  "the transport plugin %s does not say which name it sends "
                  "in EHLO, so it cannot be compared with the PTR",
                  s->transport.plugin.name);
    } else {
        const char *match = NULL;
        for (size_t i = 0; i < n && match == NULL; i++) {
            size_t l = strlen(names[i]);
            if (l > 1 && names[i][l - 1] == '.')
                l--;
            if (strlen(ehlo) == l && strncasecmp(names[i], ehlo, l) == 0)
                match = names[i];
        }
        if (match != NULL && confirmed != NULL &&
            strcasecmp(match, confirmed) == 0)
            add_check(s, label, CK_PASS, strdup(ehlo),
                      "the EHLO name %s is %s's forward-confirmed reverse "
                      "name",
                      ehlo, text);
        else if (match != NULL)
            add_check(s, label, CK_WARNING, strdup(ehlo),
                      "the EHLO name %s is %s's reverse name, but it does "
                      "not resolve back to %s",
                      ehlo, text, text);
        else
            add_check(s, label, CK_WARNING, strdup(ehlo),
                      "the transport says EHLO %s, but %s's reverse name is "
                      "%s: receivers compare them; set helo_name = \"%s\" "
                      "in the transport group, or have the PTR changed to "
                      "%s",
                      ehlo, text, confirmed ? confirmed : names[0],
                      confirmed ? confirmed : names[0], ehlo);
    }
    free(found);
}

static void
check_reverse(struct setup *s)
{
    if (s->addrs.v4.family)
        reverse_one(s, &s->addrs.v4);
    if (s->addrs.v6.family)
        reverse_one(s, &s->addrs.v6);
}

static const char *
result_word(int result)
{
    switch (result) {
    case CK_PASS:
        return "pass";
    case CK_MISSING:
        return "missing";
    case CK_WRONG:
        return "wrong";
    case CK_LOOKUP_FAILED:
        return "lookup_failed";
    default:
        return "warning";
    }
}

static const char *
result_label(int result)
{
    switch (result) {
    case CK_PASS:
        return "PASS";
    case CK_MISSING:
        return "MISSING";
    case CK_WRONG:
        return "WRONG";
    case CK_LOOKUP_FAILED:
        return "LOOKUP FAILED";
    default:
        return "WARNING";
    }
}

static void
print_json(const struct setup *s)
{
    aimx_json j;

    aimx__json_init(&j, stdout);
    aimx__json_object_begin(&j, NULL);
    aimx__json_int(&j, "schema", AIMX_JSON_SCHEMA);
    aimx__json_string(&j, "domain", s->domain);
    aimx__json_array_begin(&j, "records");
    for (size_t i = 0; i < s->nrec; i++) {
        aimx__json_object_begin(&j, NULL);
        aimx__json_string(&j, "type", s->recs[i].type);
        aimx__json_string(&j, "name", s->recs[i].name);
        aimx__json_string(&j, "value", s->recs[i].value);
        aimx__json_object_end(&j);
    }
    aimx__json_array_end(&j);
    aimx__json_array_begin(&j, "checks");
    for (size_t i = 0; i < s->nchecks; i++) {
        const struct check *k = &s->checks[i];
        aimx__json_object_begin(&j, NULL);
        aimx__json_string(&j, "record", k->record);
        aimx__json_string(&j, "result", result_word(k->result));
        aimx__json_string(&j, "found", k->found);
        aimx__json_string(&j, "detail", k->detail);
        aimx__json_object_end(&j);
    }
    aimx__json_array_end(&j);
    aimx__json_object_end(&j);
    aimx__json_finish(&j);
    /* The notes are for a person: stderr keeps stdout one JSON object. */
    for (size_t i = 0; i < s->nnotes; i++)
        aimx__notice("%s", s->notes[i]);
}

static void
print_human(const struct setup *s)
{
    char text[AIMX_ADDR_TEXT_MAX];
    size_t width = 4;
    int bad = 0, failed = 0, warn = 0;

    printf("DNS records for %s\n", s->domain);
    printf("  policy     %s: outbound mail uses %s\n", s->policy.plugin.name,
           s->families == (AIMX_FAMILY_IPV4 | AIMX_FAMILY_IPV6)
               ? "IPv4 and IPv6"
           : s->families == AIMX_FAMILY_IPV6 ? "IPv6 only"
                                             : "IPv4 only");
    if (s->addrs.v4.family)
        printf("  IPv4       %s (%s)\n",
               aimx__addr_text(&s->addrs.v4, text, sizeof text),
               aimx__addr_source_text(s->addrs.v4_source, AIMX_AF_INET));
    else
        printf("  IPv4       not used by the policy: no A record, no ip4: "
               "term\n");
    if (s->addrs.v6.family)
        printf("  IPv6       %s (%s)\n",
               aimx__addr_text(&s->addrs.v6, text, sizeof text),
               aimx__addr_source_text(s->addrs.v6_source, AIMX_AF_INET6));
    else
        printf("  IPv6       not used by the policy: no AAAA record, no ip6: "
               "term (an existing AAAA record is left alone)\n");
    if (s->have_info && s->info.ehlo_name[0])
        printf("  EHLO name  %s (%s)\n", s->info.ehlo_name,
               s->transport.plugin.name);
    if (s->dkim_value != NULL)
        printf("  DKIM       selector %s, key from %s\n", s->selector,
               s->dkim_path);

    for (size_t i = 0; i < s->nrec; i++)
        if (strlen(s->recs[i].name) + 1 > width)
            width = strlen(s->recs[i].name) + 1;
    printf("\nPublish these records%s:\n",
           s->outbound_only ? " (--outbound-only: no A, AAAA or MX)" : "");
    for (size_t i = 0; i < s->nrec; i++) {
        char name[340];
        snprintf(name, sizeof name, "%s.", s->recs[i].name);
        printf("  %-5s %-*s  %s\n", s->recs[i].type, (int)width, name,
               s->recs[i].value);
    }
    printf("\nReverse DNS (PTR; set by whoever runs the address, not in "
           "your zone):\n");
    if (s->addrs.v4.family)
        printf("  %s -> %s\n", aimx__addr_text(&s->addrs.v4, text, sizeof text),
               s->have_info && s->info.ehlo_name[0] ? s->info.ehlo_name
                                                    : s->domain);
    if (s->addrs.v6.family)
        printf("  %s -> %s\n", aimx__addr_text(&s->addrs.v6, text, sizeof text),
               s->have_info && s->info.ehlo_name[0] ? s->info.ehlo_name
                                                    : s->domain);
    if (s->nnotes > 0) {
        printf("\nNotes:\n");
        for (size_t i = 0; i < s->nnotes; i++)
            printf("  - %s\n", s->notes[i]);
    }
    if (!s->verify) {
        printf("\nAfter publishing, check them: aimx setup %s --verify\n",
               s->domain);
        return;
    }
    printf("\nChecks (through the resolver plugin %s):\n",
           s->resolver.plugin.name);
    for (size_t i = 0; i < s->nchecks; i++) {
        const struct check *k = &s->checks[i];
        printf("  %-13s %-22s %s\n", result_label(k->result), k->record,
               k->detail);
        if (k->found != NULL && k->result != CK_PASS)
            printf("  %-13s %-22s found: %s\n", "", "", k->found);
        bad += k->result == CK_MISSING || k->result == CK_WRONG;
        failed += k->result == CK_LOOKUP_FAILED;
        warn += k->result == CK_WARNING;
    }
    if (bad > 0)
        printf("\n%d check%s found a missing or wrong record: publish the "
               "records above, wait for their TTL, and run this again.\n",
               bad, bad == 1 ? "" : "s");
    else if (failed > 0)
        printf("\n%d lookup%s failed: the records could not all be "
               "checked; try again later.\n",
               failed, failed == 1 ? "" : "s");
    else
        printf("\nEvery record is in place%s.\n",
               warn ? " (see the warnings above)" : "");
}

static void
free_setup(struct setup *s)
{
    for (size_t i = 0; i < s->nrec; i++)
        free(s->recs[i].value);
    for (size_t i = 0; i < s->nchecks; i++)
        free(s->checks[i].found);
    free(s->checks);
    for (size_t i = 0; i < s->nnotes; i++)
        free(s->notes[i]);
    free(s->notes);
    free(s->spf_value);
    free(s->dkim_value);
    free(s->dmarc_value);
    EVP_PKEY_free(s->dkim_key);
    /* The cache before the resolver: every lookup has completed. */
    aimx__dns_cache_free(s->dns);
    aimx__instance_destroy(&s->transport);
    aimx__instance_destroy(&s->policy);
    aimx__instance_destroy(&s->resolver);
    aimx__config_free(&s->c);
}

int
aimx__cmd_setup(const aimx_cli *cli)
{
    struct setup *s = calloc(1, sizeof *s);
    char err[1024];
    int rc;

    if (s == NULL)
        return aimx__fail(cli, AIMX_EXIT_SOFTWARE, "out of memory");
    s->cli = cli;
    rc = parse_options(s);
    if (rc != 0) {
        free(s);
        return rc;
    }
    if (strchr(cli->args[0], '@') != NULL) {
        free(s);
        return aimx__fail(cli, AIMX_EXIT_DATAERR,
                          "'%s' is an address: give the mail domain (the "
                          "part after '@')",
                          cli->args[0]);
    }
    if (aimx__route_domain_from_input(cli->args[0], s->domain, sizeof s->domain,
                                      err, sizeof err) != 0) {
        free(s);
        return aimx__fail(cli, AIMX_EXIT_DATAERR, "%s", err);
    }
    rc = aimx__cli_load_config(cli, &s->c);
    if (rc != 0) {
        free(s);
        return rc;
    }
    rc = load_plugins(s);
    if (rc != 0)
        goto out;
    if (aimx__setup_pick_addrs(
            s->families, &s->opt4, &s->opt6, s->have_info ? &s->info : NULL,
            aimx__local_addrs, NULL, &s->addrs, err, sizeof err) != 0) {
        rc = aimx__fail(cli, AIMX_EXIT_USAGE, "%s", err);
        goto out;
    }
    for (int f = 0; f < 2; f++) {
        const aimx_addr *a = f ? &s->addrs.v6 : &s->addrs.v4;
        size_t found = f ? s->addrs.v6_found : s->addrs.v4_found;
        const char *cls = a->family ? aimx__addr_nonglobal_class(a) : NULL;
        char text[AIMX_ADDR_TEXT_MAX];
        if (a->family == 0)
            continue;
        aimx__addr_text(a, text, sizeof text);
        if (found > 1)
            note(s,
                 "this machine has %zu global %s addresses; %s is the first: "
                 "give %s, or set %s in the transport group so mail always "
                 "leaves from the one you publish",
                 found, f ? "IPv6" : "IPv4", text, f ? "--ipv6" : "--ipv4",
                 f ? "bind_ipv6" : "bind_ipv4");
        if (cls != NULL)
            note(s,
                 "%s is not a global address (%s): receivers on the "
                 "internet see another one; behind NAT give the public "
                 "address with %s",
                 text, cls, f ? "--ipv6" : "--ipv4");
    }
    load_dkim(s);
    s->dns = aimx__dns_cache_new(&s->resolver, 0);
    if (s->dns == NULL) {
        rc = aimx__fail(cli, AIMX_EXIT_SOFTWARE, "out of memory");
        goto out;
    }
    first_lookups(s);
    propose_spf(s);
    build_records(s);
    if (s->verify) {
        if (!s->outbound_only) {
            if (s->addrs.v4.family)
                check_address(s, AIMX_DNS_A, &s->addrs.v4);
            if (s->addrs.v6.family)
                check_address(s, AIMX_DNS_AAAA, &s->addrs.v6);
            check_mx(s);
        }
        check_spf(s);
        check_dkim(s);
        check_dmarc(s);
        check_reverse(s);
    }
    if (cli->json)
        print_json(s);
    else
        print_human(s);
    rc = AIMX_EXIT_OK;
    for (size_t i = 0; i < s->nchecks; i++)
        if (s->checks[i].result == CK_MISSING ||
            s->checks[i].result == CK_WRONG)
            rc = AIMX_EXIT_CHECK_FAILED;
    for (size_t i = 0; i < s->nchecks && rc == AIMX_EXIT_OK; i++)
        if (s->checks[i].result == CK_LOOKUP_FAILED)
            rc = AIMX_EXIT_TEMPFAIL;
out:
    free_setup(s);
    free(s);
    return rc;
}
