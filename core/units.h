/* SPDX-License-Identifier: MIT */
/* Strict parsing of the config file's duration and size strings. */
#ifndef AIMX_UNITS_H
#define AIMX_UNITS_H

#include <stdint.h>

/* "250ms", "30s", "10m", "2h" -> microseconds.  Returns 0 or -1. */
int aimx__parse_duration(const char *text, uint64_t *out_us);
/* "512", "64KB", "25MB", "1GB" (powers of 1024) -> octets.  0 or -1. */
int aimx__parse_size(const char *text, uint64_t *out);
/* Formats a duration the way the parser reads it ("2s", "250ms"). */
void aimx__format_duration(uint64_t us, char *buf, unsigned long len);

#endif
