/* SPDX-License-Identifier: MIT */
#include "diag.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
aimx__diag_add(aimx_diag *d, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    if (d->count == d->capacity) {
        size_t cap = d->capacity ? d->capacity * 2 : 8;
        char **grown = realloc(d->messages, cap * sizeof *grown);
        if (grown == NULL)
            return;
        d->messages = grown;
        d->capacity = cap;
    }
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg != NULL)
        d->messages[d->count++] = msg;
}

char *
aimx__diag_join(const aimx_diag *d)
{
    size_t len = 1;
    char *out;

    for (size_t i = 0; i < d->count; i++)
        len += strlen(d->messages[i]) + 2;
    out = malloc(len);
    if (out == NULL)
        return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < d->count; i++) {
        if (i > 0)
            strcat(out, "; ");
        strcat(out, d->messages[i]);
    }
    return out;
}

void
aimx__diag_print(const aimx_diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        aimx__err("%s", d->messages[i]);
}

void
aimx__diag_free(aimx_diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->messages[i]);
    free(d->messages);
    d->messages = NULL;
    d->count = d->capacity = 0;
}
