/* SPDX-License-Identifier: MIT */
#include "json.h"

static size_t utf8_sequence(const unsigned char *p);
static void put_string(FILE *out, const char *s);
static void begin_value(aimx_json *j, const char *key);

void
aimx__json_init(aimx_json *j, FILE *out)
{
    j->out = out;
    j->depth = 0;
    j->need_comma[0] = 0;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), or 0. */
static size_t
utf8_sequence(const unsigned char *p)
{
    size_t n;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Escapes per RFC 8259.  Bytes that are not well-formed UTF-8 (a file name
 * can hold anything) become U+FFFD, so the output is always valid JSON. */
static void
put_string(FILE *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80) {
            size_t n = utf8_sequence(p);
            if (n == 0) {
                fputs("\\ufffd", out);
            } else {
                fwrite(p, 1, n, out);
                p += n - 1;
            }
            continue;
        }
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                fputs("\\u00", out);
                fputc(hex[*p >> 4], out);
                fputc(hex[*p & 0xf], out);
            } else {
                fputc(*p, out);
            }
        }
    }
    fputc('"', out);
}

static void
begin_value(aimx_json *j, const char *key)
{
    if (j->need_comma[j->depth])
        fputc(',', j->out);
    j->need_comma[j->depth] = 1;
    if (key != NULL) {
        put_string(j->out, key);
        fputc(':', j->out);
    }
}

void
aimx__json_object_begin(aimx_json *j, const char *key)
{
    begin_value(j, key);
    fputc('{', j->out);
    if (j->depth + 1 < AIMX_JSON_MAX_DEPTH)
        j->depth++;
    j->need_comma[j->depth] = 0;
}

void
aimx__json_object_end(aimx_json *j)
{
    fputc('}', j->out);
    if (j->depth > 0)
        j->depth--;
}

void
aimx__json_array_begin(aimx_json *j, const char *key)
{
    begin_value(j, key);
    fputc('[', j->out);
    if (j->depth + 1 < AIMX_JSON_MAX_DEPTH)
        j->depth++;
    j->need_comma[j->depth] = 0;
}

void
aimx__json_array_end(aimx_json *j)
{
    fputc(']', j->out);
    if (j->depth > 0)
        j->depth--;
}

void
aimx__json_string(aimx_json *j, const char *key, const char *value)
{
    begin_value(j, key);
    if (value == NULL)
        fputs("null", j->out);
    else
        put_string(j->out, value);
}

void
aimx__json_int(aimx_json *j, const char *key, int64_t value)
{
    begin_value(j, key);
    fprintf(j->out, "%lld", (long long)value);
}

void
aimx__json_bool(aimx_json *j, const char *key, int value)
{
    begin_value(j, key);
    fputs(value ? "true" : "false", j->out);
}

void
aimx__json_null(aimx_json *j, const char *key)
{
    begin_value(j, key);
    fputs("null", j->out);
}

void
aimx__json_finish(aimx_json *j)
{
    fputc('\n', j->out);
    fflush(j->out);
}

void
aimx__json_error(FILE *out, int exit_code, const char *message)
{
    aimx_json j;

    aimx__json_init(&j, out);
    aimx__json_object_begin(&j, NULL);
    aimx__json_int(&j, "schema", AIMX_JSON_SCHEMA);
    aimx__json_string(&j, "status", "error");
    aimx__json_int(&j, "exit", exit_code);
    aimx__json_string(&j, "message", message);
    aimx__json_object_end(&j);
    aimx__json_finish(&j);
}
