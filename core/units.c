/* SPDX-License-Identifier: MIT */
#include "units.h"

#include <stdio.h>
#include <string.h>

static int parse_digits(const char **p, uint64_t *out);
static int scale(uint64_t value, uint64_t factor, uint64_t *out);

/* Digits only: no sign, no spaces, no exponent, no leading '+', no overflow. */
static int
parse_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

static int
scale(uint64_t value, uint64_t factor, uint64_t *out)
{
    if (factor != 0 && value > UINT64_MAX / factor)
        return -1;
    *out = value * factor;
    return 0;
}

int
aimx__parse_duration(const char *text, uint64_t *out_us)
{
    static const struct {
        const char *suffix;
        uint64_t us;
    } units[] = {
        {"ms", 1000ull},
        {"s", 1000000ull},
        {"m", 60000000ull},
        {"h", 3600000000ull},
    };
    const char *p = text;
    uint64_t n;

    if (text == NULL || parse_digits(&p, &n) != 0)
        return -1;
    /* A bare number is refused: "30" could mean seconds or milliseconds. */
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(p, units[i].suffix) == 0)
            return scale(n, units[i].us, out_us);
    return -1;
}

int
aimx__parse_size(const char *text, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t factor;
    } units[] = {
        {"", 1ull},
        {"KB", 1024ull},
        {"MB", 1024ull * 1024},
        {"GB", 1024ull * 1024 * 1024},
    };
    const char *p = text;
    uint64_t n;

    if (text == NULL || parse_digits(&p, &n) != 0)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(p, units[i].suffix) == 0)
            return scale(n, units[i].factor, out);
    return -1;
}

void
aimx__format_duration(uint64_t us, char *buf, unsigned long len)
{
    if (us % 3600000000ull == 0 && us != 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(us / 3600000000ull));
    else if (us % 60000000ull == 0 && us != 0)
        snprintf(buf, len, "%llum", (unsigned long long)(us / 60000000ull));
    else if (us % 1000000ull == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(us / 1000000ull));
    else
        snprintf(buf, len, "%llums", (unsigned long long)(us / 1000ull));
}
