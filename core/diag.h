/* SPDX-License-Identifier: MIT */
/* Collected error messages ("FILE:LINE: ..."), printed once by the command. */
#ifndef AIMX_DIAG_H
#define AIMX_DIAG_H

#include <stddef.h>

typedef struct aimx_diag {
    char **messages;
    size_t count;
    size_t capacity;
} aimx_diag;

void aimx__diag_add(aimx_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* All messages joined with "; " (for a JSON error); caller frees. */
char *aimx__diag_join(const aimx_diag *d);
void aimx__diag_print(const aimx_diag *d);
void aimx__diag_free(aimx_diag *d);

#endif
