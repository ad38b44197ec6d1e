/* SPDX-License-Identifier: MIT */
/*
 * Mail addresses as aimx accepts them: RFC 5321 syntax and length limits
 * for what goes into the envelope, RFC 5322 address lists for what a user
 * or a header hands over, internationalised domains as A-labels, and the
 * checks that keep a value from splitting a header or an SMTP command.
 */
#ifndef AIMX_ADDRESS_H
#define AIMX_ADDRESS_H

#include <stddef.h>

#define AIMX_LOCAL_MAX  64  /* RFC 5321 4.5.3.1.1 */
#define AIMX_DOMAIN_MAX 255 /* RFC 5321 4.5.3.1.2 */
#define AIMX_ADDR_MAX   254 /* a path is 256 octets with its angle brackets */

typedef struct aimx_mailbox {
    char *display; /* display name as given (UTF-8), or NULL */
    char *addr;    /* local@domain; the domain in A-labels, lower case */
    int utf8;      /* the local part is not ASCII: SMTPUTF8 is needed */
} aimx_mailbox;

typedef struct aimx_mailbox_list {
    aimx_mailbox *v;
    size_t n;
    size_t cap;
    /* aimx__mailbox_list_add_unique()'s index of v[0..indexed) by address
     * (open addressing, i + 1 per slot, 0 = empty), so that a thousand
     * recipients are not a million comparisons. */
    size_t *index;
    size_t index_cap;
    size_t indexed;
} aimx_mailbox_list;

/*
 * Checks one address ("local@domain", RFC 5321 Mailbox with RFC 6531's
 * UTF-8 local parts) and returns its normalised form in *out (malloc'ed).
 * Returns 0, or -1 with a sentence naming the value in err.
 */
int aimx__addr_normalize(const char *in, char **out, int *utf8, char *err,
                         size_t errlen);

/*
 * Parses an RFC 5322 address list ("a@x, Name <b@y>, \"Doe, J\" <c@z>") and
 * appends each mailbox to list.  from_header: the value comes from a
 * message's header field, so comments and groups ("team: a@x;") are
 * accepted and empty elements skipped; otherwise it comes from the command
 * line, where neither makes sense.  Returns 0, or -1 with err set.
 */
int aimx__addr_parse_list(const char *in, int from_header,
                          aimx_mailbox_list *list, char *err, size_t errlen);
void aimx__mailbox_list_free(aimx_mailbox_list *list);
/* Appends a copy of m unless an equal address is already there. */
int aimx__mailbox_list_add_unique(aimx_mailbox_list *list,
                                  const aimx_mailbox *m);

/* The domain of a normalised address (after the last '@'). */
const char *aimx__addr_domain(const char *addr);

/* Relaxed DMARC alignment, approximated without the public suffix list:
 * equal, or one a subdomain of the other. */
int aimx__domains_align(const char *a, const char *b);

/* A CR, LF or NUL in len octets: such a value would split a header field
 * or an SMTP command. */
int aimx__has_line_break(const char *s, size_t len);

/* Well-formed UTF-8 (RFC 3629): no overlongs, surrogates or NUL. */
int aimx__utf8_valid(const char *s, size_t len);

/* s made printable for an error message: controls as \r, \n or \xNN, cut
 * with "..." to fit len. */
const char *aimx__printable(const char *s, char *out, size_t len);

#endif
