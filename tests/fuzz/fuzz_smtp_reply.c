/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for transport-smtp's reply parser (smtp_reply.c).
 *
 * The input is fed whole, then again either one octet at a time or in
 * pieces whose sizes come from its first octet (its low bit chooses).
 * Both must yield the same replies and the same error, which is what pipelining needs (a
 * reply's fate cannot depend on how the network cut it).  Each reply must
 * also be well-formed: a code in 200..599, NUL-terminated text within its
 * bounds, an enhanced code agreeing with the reply code.
 */
#include "smtp_reply.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPLIES 16 /* compared; the rest only counted */

struct run {
    struct smtp_reply replies[MAX_REPLIES];
    size_t n;
    int error;
    size_t lines_seen;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
count_line(void *arg, const char *text, size_t len, unsigned index)
{
    struct run *r = arg;

    (void)text;
    if (len > SMTP_REPLY_LINE_MAX || index >= SMTP_REPLY_LINES_MAX)
        abort();
    r->lines_seen++;
}

static void
check_reply(const struct smtp_reply *r)
{
    if (r->code < 200 || r->code > 599 || r->lines == 0 ||
        r->lines > SMTP_REPLY_LINES_MAX || r->text_len >= SMTP_REPLY_TEXT_MAX ||
        memchr(r->text, '\0', SMTP_REPLY_TEXT_MAX) == NULL ||
        strlen(r->text) != r->text_len ||
        memchr(r->enhanced, '\0', sizeof r->enhanced) == NULL)
        abort();
    if (r->enhanced[0] && (unsigned)(r->enhanced[0] - '0') != r->code / 100)
        abort();
}

/* piece: 0 = everything at once; else the size of each piece, plus 0..7
 * drawn from seed when seed is not 0. */
static void
feed(const uint8_t *data, size_t size, size_t piece, uint8_t seed,
     struct run *out)
{
    struct smtp_reply_parser p;
    struct smtp_reply r;
    size_t pos = 0, end, used;
    int st = SMTP_REPLY_MORE;

    out->n = 0;
    out->error = 0;
    out->lines_seen = 0;
    smtp_reply_parser_init(&p);
    p.on_line = count_line;
    p.on_line_arg = out;
    while (pos < size && st != SMTP_REPLY_ERROR) {
        end = size;
        if (piece) {
            end = pos + piece + (seed & 7);
            if (seed)
                seed = (uint8_t)(seed * 5 + 1) | 0x80;
            if (end > size)
                end = size;
        }
        while (pos < end) {
            st = smtp_reply_feed(&p, data + pos, end - pos, &used, &r);
            if (used > end - pos)
                abort();
            pos += used;
            if (st == SMTP_REPLY_MORE) {
                if (pos != end)
                    abort();
                break;
            }
            if (st == SMTP_REPLY_ERROR) {
                if (p.error == SMTP_REPLY_E_NONE)
                    abort();
                out->error = p.error;
                /* Sticky: nothing more is accepted. */
                if (smtp_reply_feed(&p, "250 x\r\n", 7, &used, &r) !=
                        SMTP_REPLY_ERROR ||
                    used != 0)
                    abort();
                break;
            }
            if (used == 0)
                abort(); /* a reply needs at least its line end */
            check_reply(&r);
            if (out->n < MAX_REPLIES)
                memcpy(&out->replies[out->n], &r,
                       offsetof(struct smtp_reply, text) + r.text_len + 1);
            out->n++;
        }
    }
}

static int
same(const struct run *a, const struct run *b)
{
    size_t i, n = a->n < MAX_REPLIES ? a->n : MAX_REPLIES;

    if (a->n != b->n || a->error != b->error || a->lines_seen != b->lines_seen)
        return 0;
    for (i = 0; i < n; i++) {
        const struct smtp_reply *x = &a->replies[i], *y = &b->replies[i];
        if (x->code != y->code || x->lines != y->lines ||
            x->truncated != y->truncated || x->text_len != y->text_len ||
            strcmp(x->enhanced, y->enhanced) != 0 ||
            memcmp(x->text, y->text, x->text_len) != 0)
            return 0;
    }
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run whole, cut;
    uint8_t seed = size ? data[0] : 0;

    feed(data, size, 0, 0, &whole);
    if (seed & 1)
        feed(data, size, 1, 0, &cut);
    else
        feed(data, size, 1 + (seed >> 3), seed, &cut);
    if (!same(&whole, &cut))
        abort();
    return 0;
}
