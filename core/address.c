/* SPDX-License-Identifier: MIT */
#include "address.h"

#include "route.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_atext(unsigned char c);
static int check_local(const char *local, size_t len, const char *whole,
                       char *err, size_t errlen);
static char *trim(char *s);
static char *strip_comments(const char *s, char *err, size_t errlen);
static int parse_element(char *elem, int from_header, aimx_mailbox_list *list,
                         char *err, size_t errlen);
static int list_push(aimx_mailbox_list *list, char *display, char *addr,
                     int utf8);
static char *unquote_phrase(const char *s);
static size_t addr_hash(const char *s);
static size_t *index_slot(const aimx_mailbox_list *list, const char *addr);
static int index_update(aimx_mailbox_list *list);

/* RFC 5322 atext, plus RFC 6531's UTF8-non-ascii (validated as a whole). */
static int
is_atext(unsigned char c)
{
    return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL ||
           (c >= 0x80 && c != 0);
}

int
aimx__has_line_break(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 1;
    return 0;
}

int
aimx__utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp;

        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i < n)
            return 0;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) ||
            (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n;
    }
    return 1;
}

const char *
aimx__printable(const char *s, char *out, size_t len)
{
    size_t o = 0;

    if (len < 8) {
        if (len > 0)
            out[0] = '\0';
        return out;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        /* Every address passes through here (for the error it might
         * need), so no snprintf() per octet. */
        static const char hex[] = "0123456789abcdef";
        char piece[4];
        size_t pl = 2;
        piece[0] = '\\';
        if (*p == '\r')
            piece[1] = 'r';
        else if (*p == '\n')
            piece[1] = 'n';
        else if (*p < 0x20 || *p == 0x7f) {
            piece[1] = 'x';
            piece[2] = hex[*p >> 4];
            piece[3] = hex[*p & 15];
            pl = 4;
        } else {
            piece[0] = (char)*p;
            pl = 1;
        }
        if (o + pl + 4 >= len) {
            memcpy(out + o, "...", 4);
            return out;
        }
        memcpy(out + o, piece, pl);
        o += pl;
    }
    out[o] = '\0';
    return out;
}

const char *
aimx__addr_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : addr;
}

int
aimx__domains_align(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la == lb)
        return strcasecmp(a, b) == 0;
    if (la > lb)
        return a[la - lb - 1] == '.' && strcasecmp(a + la - lb, b) == 0;
    return b[lb - la - 1] == '.' && strcasecmp(b + lb - la, a) == 0;
}

/* RFC 5321 Local-part: Dot-string or Quoted-string, at most 64 octets. */
static int
check_local(const char *local, size_t len, const char *whole, char *err,
            size_t errlen)
{
    char shown[300];

    aimx__printable(whole, shown, sizeof shown);
    if (len == 0) {
        snprintf(err, errlen, "'%s' has an empty local part", shown);
        return -1;
    }
    if (len > AIMX_LOCAL_MAX) {
        snprintf(err, errlen,
                 "the local part of '%s' is %zu octets; at most %d are "
                 "allowed (RFC 5321 4.5.3.1.1)",
                 shown, len, AIMX_LOCAL_MAX);
        return -1;
    }
    if (!aimx__utf8_valid(local, len)) {
        snprintf(err, errlen, "the local part of '%s' is not valid UTF-8",
                 shown);
        return -1;
    }
    if (local[0] == '"') {
        if (len < 2 || local[len - 1] != '"')
            goto bad;
        for (size_t i = 1; i + 1 < len; i++) {
            unsigned char c = (unsigned char)local[i];
            if (c == '\\') {
                c = (unsigned char)local[++i];
                if (i + 1 >= len || c < 32 || c > 126)
                    goto bad;
            } else if (c == '"' || (c < 32) || c == 127) {
                goto bad;
            }
        }
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (local[i] == '.') {
            if (i == 0 || i + 1 == len || local[i + 1] == '.')
                goto bad;
        } else if (!is_atext((unsigned char)local[i])) {
            goto bad;
        }
    }
    return 0;
bad:
    snprintf(err, errlen,
             "the local part of '%s' is not valid (RFC 5321: atoms of "
             "letters, digits and !#$%%&'*+-/=?^_`{|}~ joined by single dots, "
             "or a quoted string)",
             shown);
    return -1;
}

int
aimx__addr_normalize(const char *in, char **out, int *utf8, char *err,
                     size_t errlen)
{
    char shown[300], domain[AIMX_DOMAIN_MAX + 1], derr[512];
    const char *at = NULL;
    size_t inlen = strlen(in), local_len;

    *out = NULL;
    *utf8 = 0;
    aimx__printable(in, shown, sizeof shown);
    if (aimx__has_line_break(in, inlen)) {
        snprintf(err, errlen,
                 "'%s' contains a line break (CR or LF): refused, it could "
                 "inject header fields or SMTP commands",
                 shown);
        return -1;
    }
    if (in[0] == '"') {
        /* The quoted local part may hold '@' itself. */
        size_t i = 1;
        while (i < inlen && in[i] != '"')
            i += in[i] == '\\' ? 2 : 1;
        if (i < inlen && in[i + 1] == '@')
            at = in + i + 1;
    } else {
        at = strrchr(in, '@');
    }
    if (at == NULL || at == in) {
        snprintf(err, errlen, "'%s' is not an address (local-part@domain)",
                 shown);
        return -1;
    }
    local_len = (size_t)(at - in);
    if (check_local(in, local_len, in, err, errlen) != 0)
        return -1;
    if (at[1] == '\0') {
        snprintf(err, errlen, "'%s' has no domain", shown);
        return -1;
    }
    if (strlen(at + 1) > AIMX_DOMAIN_MAX) {
        snprintf(err, errlen,
                 "the domain of '%s' is %zu octets; at most %d are allowed "
                 "(RFC 5321 4.5.3.1.2)",
                 shown, strlen(at + 1), AIMX_DOMAIN_MAX);
        return -1;
    }
    if (at[1] == '[') {
        snprintf(err, errlen,
                 "'%s': address literals are not supported (mail is routed "
                 "by the domain's MX records); give a domain",
                 shown);
        return -1;
    }
    if (aimx__route_domain_from_input(at + 1, domain, sizeof domain, derr,
                                      sizeof derr) != 0) {
        snprintf(err, errlen, "address '%s': %s", shown, derr);
        return -1;
    }
    if (local_len + 1 + strlen(domain) > AIMX_ADDR_MAX) {
        snprintf(err, errlen,
                 "'%s' is %zu octets; an address may have at most %d (RFC "
                 "5321 4.5.3.1.3)",
                 shown, local_len + 1 + strlen(domain), AIMX_ADDR_MAX);
        return -1;
    }
    *out = malloc(local_len + 1 + strlen(domain) + 1);
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(*out, in, local_len);
    (*out)[local_len] = '@';
    strcpy(*out + local_len + 1, domain);
    for (size_t i = 0; i < local_len; i++)
        if ((unsigned char)in[i] >= 0x80)
            *utf8 = 1;
    return 0;
}

static char *
trim(char *s)
{
    size_t l;

    while (*s == ' ' || *s == '\t')
        s++;
    l = strlen(s);
    while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t'))
        s[--l] = '\0';
    return s;
}

/* Removes RFC 5322 comments (outside quoted strings) and unfolds, so the
 * rest of the parser sees no "(...)", CR or LF. */
static char *
strip_comments(const char *s, char *err, size_t errlen)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);
    int quoted = 0, depth = 0;

    if (out == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\r' || c == '\n')
            continue;
        if (quoted) {
            out[o++] = c;
            if (c == '\\' && i + 1 < n)
                out[o++] = s[++i];
            else if (c == '"')
                quoted = 0;
        } else if (depth > 0) {
            if (c == '\\' && i + 1 < n)
                i++;
            else if (c == '(')
                depth++;
            else if (c == ')')
                depth--;
        } else if (c == '(') {
            depth = 1;
            out[o++] = ' ';
        } else {
            if (c == '"')
                quoted = 1;
            out[o++] = c;
        }
    }
    out[o] = '\0';
    return out;
}

/* A display name as a person would read it: quotes removed and escapes
 * resolved.  Encoded words are left as they are. */
static char *
unquote_phrase(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            continue;
        if (s[i] == '\\' && i + 1 < n)
            i++;
        out[o++] = s[i];
    }
    out[o] = '\0';
    return out;
}

static int
list_push(aimx_mailbox_list *list, char *display, char *addr, int utf8)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 4;
        aimx_mailbox *grown = realloc(list->v, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        list->v = grown;
        list->cap = cap;
    }
    list->v[list->n].display = display;
    list->v[list->n].addr = addr;
    list->v[list->n].utf8 = utf8;
    list->n++;
    return 0;
}

static size_t
addr_hash(const char *s)
{
    size_t h = 14695981039346656037u; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The slot of addr in the index: its entry, or the empty slot where it
 * would go. */
static size_t *
index_slot(const aimx_mailbox_list *list, const char *addr)
{
    size_t mask = list->index_cap - 1, i = addr_hash(addr) & mask;

    while (list->index[i] != 0 &&
           strcmp(list->v[list->index[i] - 1].addr, addr) != 0)
        i = (i + 1) & mask;
    return &list->index[i];
}

/* Brings the index up to v[0..n) with room for one more: at most half
 * full.  Returns -1 when out of memory. */
static int
index_update(aimx_mailbox_list *list)
{
    if ((list->n + 1) * 2 > list->index_cap) {
        size_t cap = list->index_cap ? list->index_cap : 16;
        size_t *grown;

        while ((list->n + 1) * 2 > cap)
            cap *= 2;
        grown = calloc(cap, sizeof *grown);
        if (grown == NULL)
            return -1;
        free(list->index);
        list->index = grown;
        list->index_cap = cap;
        list->indexed = 0;
    }
    for (; list->indexed < list->n; list->indexed++) {
        size_t *slot = index_slot(list, list->v[list->indexed].addr);
        if (*slot == 0)
            *slot = list->indexed + 1;
    }
    return 0;
}

int
aimx__mailbox_list_add_unique(aimx_mailbox_list *list, const aimx_mailbox *m)
{
    char *display = NULL, *addr;
    size_t *slot;

    if (index_update(list) != 0)
        return -1;
    slot = index_slot(list, m->addr);
    if (*slot != 0)
        return 0;
    addr = strdup(m->addr);
    if (m->display != NULL)
        display = strdup(m->display);
    if (addr == NULL || (m->display != NULL && display == NULL) ||
        list_push(list, display, addr, m->utf8) != 0) {
        free(addr);
        free(display);
        return -1;
    }
    /* index_update() left room for this one. */
    *slot = list->n;
    list->indexed = list->n;
    return 0;
}

/* One element of a list: "addr", "<addr>" or "phrase <addr>". */
static int
parse_element(char *elem, int from_header, aimx_mailbox_list *list, char *err,
              size_t errlen)
{
    char *lt = NULL, *spec, *display = NULL, *addr = NULL;
    char shown[300];
    int quoted = 0, utf8;

    elem = trim(elem);
    if (*elem == '\0')
        return 0;
    for (char *p = elem; *p; p++) {
        if (quoted) {
            if (*p == '\\' && p[1] != '\0')
                p++;
            else if (*p == '"')
                quoted = 0;
        } else if (*p == '"') {
            quoted = 1;
        } else if (*p == '<') {
            lt = p;
            break;
        }
    }
    spec = elem;
    if (lt != NULL) {
        char *gt = strchr(lt, '>');
        if (gt == NULL || *trim(gt + 1) != '\0') {
            snprintf(err, errlen, "'%s' is not an address: '<' without '>'",
                     aimx__printable(elem, shown, sizeof shown));
            return -1;
        }
        *gt = '\0';
        *lt = '\0';
        spec = trim(lt + 1);
        /* An obsolete source route ("<@relay:user@x>") is ignored. */
        if (from_header && spec[0] == '@' && strchr(spec, ':') != NULL)
            spec = strchr(spec, ':') + 1;
        char *phrase = trim(elem);
        if (*phrase != '\0') {
            display = unquote_phrase(phrase);
            if (display == NULL)
                goto nomem;
        }
    }
    if (aimx__addr_normalize(spec, &addr, &utf8, err, errlen) != 0) {
        free(display);
        return -1;
    }
    if (list_push(list, display, addr, utf8) != 0)
        goto nomem;
    return 0;
nomem:
    free(display);
    free(addr);
    snprintf(err, errlen, "out of memory");
    return -1;
}

int
aimx__addr_parse_list(const char *in, int from_header, aimx_mailbox_list *list,
                      char *err, size_t errlen)
{
    char shown[300];
    char *s, *start;
    int quoted = 0, angle = 0, bracket = 0, rc = 0;
    size_t before = list->n;

    if (aimx__has_line_break(in, strlen(in)) && !from_header) {
        snprintf(err, errlen,
                 "'%s' contains a line break (CR or LF): refused, it could "
                 "inject header fields or SMTP commands",
                 aimx__printable(in, shown, sizeof shown));
        return -1;
    }
    s = strip_comments(in, err, errlen);
    if (s == NULL)
        return -1;
    start = s;
    for (char *p = s;; p++) {
        char c = *p;
        if (quoted) {
            if (c == '\\' && p[1] != '\0')
                p++;
            else if (c == '"')
                quoted = 0;
            else if (c == '\0')
                break;
            continue;
        }
        if (c == '"') {
            quoted = 1;
        } else if (c == '<') {
            angle = 1;
        } else if (c == '>') {
            angle = 0;
        } else if (c == '[') {
            bracket = 1;
        } else if (c == ']') {
            bracket = 0;
        } else if (c == ':' && !angle && !bracket) {
            /* A group: its name carries no address. */
            if (!from_header) {
                snprintf(err, errlen,
                         "'%s': address groups (\"name: a@x, b@y;\") are not "
                         "accepted here",
                         aimx__printable(in, shown, sizeof shown));
                rc = -1;
                break;
            }
            start = p + 1;
        } else if (c == '\0' && (angle || bracket)) {
            snprintf(err, errlen,
                     "'%s' is not an address list: '%c' without "
                     "'%c'",
                     aimx__printable(in, shown, sizeof shown),
                     angle ? '<' : '[', angle ? '>' : ']');
            rc = -1;
            break;
        } else if ((c == ',' || c == ';' || c == '\0') && !angle && !bracket) {
            *p = '\0';
            if (parse_element(start, from_header, list, err, errlen) != 0) {
                rc = -1;
                break;
            }
            start = p + 1;
            if (c == '\0')
                break;
        }
    }
    if (rc == 0 && quoted) {
        snprintf(err, errlen, "'%s' has an unterminated quoted string",
                 aimx__printable(in, shown, sizeof shown));
        rc = -1;
    }
    if (rc == 0 && !from_header && list->n == before) {
        snprintf(err, errlen, "'%s' holds no address",
                 aimx__printable(in, shown, sizeof shown));
        rc = -1;
    }
    free(s);
    return rc;
}

void
aimx__mailbox_list_free(aimx_mailbox_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->v[i].display);
        free(list->v[i].addr);
    }
    free(list->v);
    free(list->index);
    memset(list, 0, sizeof *list);
}
