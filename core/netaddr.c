/* SPDX-License-Identifier: MIT */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

struct range {
    uint8_t prefix[16];
    unsigned bits;
    const char *name;
};

static int in_range(const uint8_t *bytes, const struct range *r);
static const char *v4_class(const uint8_t *b);

/* IANA IPv4 Special-Purpose Address Registry entries that are not globally
 * reachable, plus multicast and the reserved block. */
static const struct range v4_ranges[] = {
    {{0}, 8, "\"this network\" (0.0.0.0/8)"},
    {{10}, 8, "private (RFC 1918)"},
    {{100, 64}, 10, "shared address space (CGNAT, RFC 6598)"},
    {{127}, 8, "loopback"},
    {{169, 254}, 16, "link-local"},
    {{172, 16}, 12, "private (RFC 1918)"},
    {{192, 0, 0}, 24, "IETF protocol assignments (192.0.0.0/24)"},
    {{192, 0, 2}, 24, "documentation (TEST-NET-1)"},
    {{192, 88, 99}, 24, "6to4 relay anycast (deprecated)"},
    {{192, 168}, 16, "private (RFC 1918)"},
    {{198, 18}, 15, "benchmarking (RFC 2544)"},
    {{198, 51, 100}, 24, "documentation (TEST-NET-2)"},
    {{203, 0, 113}, 24, "documentation (TEST-NET-3)"},
    {{224}, 4, "multicast"},
    {{240}, 4, "reserved (240.0.0.0/4)"},
};

static const struct range v6_ranges[] = {
    {{0}, 128, "unspecified (::)"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"},
    {{0x00, 0x64, 0xff, 0x9b, 0, 1}, 48, "local-use NAT64 (64:ff9b:1::/48)"},
    {{0x01, 0x00}, 64, "discard-only (100::/64)"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation (2001:db8::/32)"},
    {{0x20, 0x01, 0x00, 0x00}, 32, "Teredo (2001::/32)"},
    {{0x20, 0x01, 0x00}, 23, "IETF protocol assignments (2001::/23)"},
    {{0x3f, 0xff}, 20, "documentation (3fff::/20)"},
    {{0x5f, 0x00}, 16, "segment routing SIDs (5f00::/16)"},
    {{0xfc}, 7, "unique local (fc00::/7)"},
    {{0xfe, 0x80}, 10, "link-local"},
    {{0xfe, 0xc0}, 10, "site-local (deprecated)"},
    {{0xff}, 8, "multicast"},
};

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t nat64_wkp[12] = {0x00, 0x64, 0xff, 0x9b};

const char *
aimx__addr_text(const aimx_addr *a, char *buf, size_t len)
{
    if (a->family == AIMX_AF_INET)
        return inet_ntop(AF_INET, a->bytes, buf, (socklen_t)len);
    if (a->family == AIMX_AF_INET6)
        return inet_ntop(AF_INET6, a->bytes, buf, (socklen_t)len);
    snprintf(buf, len, "(no address)");
    return buf;
}

int
aimx__addr_parse(const char *text, aimx_addr *out)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = AIMX_AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->bytes) == 1) {
        out->family = AIMX_AF_INET6;
        return 0;
    }
    memset(out, 0, sizeof *out);
    return -1;
}

int
aimx__is_ip_literal(const char *name)
{
    char buf[64];
    size_t len = strlen(name);
    aimx_addr a;

    if (len > 1 && name[len - 1] == '.') /* "192.0.2.1." is still one */
        len--;
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, name, len);
    buf[len] = '\0';
    if (buf[0] == '[' && len > 2 && buf[len - 1] == ']') {
        buf[len - 1] = '\0';
        const char *inner = buf + 1;
        if (strncasecmp(inner, "IPv6:", 5) == 0)
            inner += 5;
        return aimx__addr_parse(inner, &a) == 0;
    }
    return aimx__addr_parse(buf, &a) == 0;
}

static int
in_range(const uint8_t *bytes, const struct range *r)
{
    unsigned full = r->bits / 8, rest = r->bits % 8;

    if (memcmp(bytes, r->prefix, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (bytes[full] & mask) == (r->prefix[full] & mask);
}

static const char *
v4_class(const uint8_t *b)
{
    if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
        return "broadcast";
    for (size_t i = 0; i < sizeof v4_ranges / sizeof v4_ranges[0]; i++)
        if (in_range(b, &v4_ranges[i]))
            return v4_ranges[i].name;
    return NULL;
}

const char *
aimx__addr_nonglobal_class(const aimx_addr *a)
{
    const uint8_t *b = a->bytes;

    if (a->family == AIMX_AF_INET)
        return v4_class(b);
    if (a->family != AIMX_AF_INET6)
        return "not an address";
    /* Embedded IPv4 forms reach the IPv4 address they carry. */
    if (memcmp(b, v4_mapped, 12) == 0 || memcmp(b, nat64_wkp, 12) == 0)
        return v4_class(b + 12);
    if (b[0] == 0x20 && b[1] == 0x02)
        return v4_class(b + 2);
    for (size_t i = 0; i < sizeof v6_ranges / sizeof v6_ranges[0]; i++)
        if (in_range(b, &v6_ranges[i]))
            return v6_ranges[i].name;
    /* Only 2000::/3 is allocated for global unicast. */
    if ((b[0] & 0xe0) != 0x20)
        return "reserved IPv6 space (outside 2000::/3)";
    return NULL;
}
