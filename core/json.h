/* SPDX-License-Identifier: MIT */
/* A streaming JSON writer: one compact object per command on stdout. */
#ifndef AIMX_JSON_H
#define AIMX_JSON_H

#include <stdint.h>
#include <stdio.h>

#define AIMX_JSON_SCHEMA    1
#define AIMX_JSON_MAX_DEPTH 32

typedef struct aimx_json {
    FILE *out;
    int depth;
    unsigned char need_comma[AIMX_JSON_MAX_DEPTH];
} aimx_json;

void aimx__json_init(aimx_json *j, FILE *out);
/* key is NULL inside arrays and for the outermost value. */
void aimx__json_object_begin(aimx_json *j, const char *key);
void aimx__json_object_end(aimx_json *j);
void aimx__json_array_begin(aimx_json *j, const char *key);
void aimx__json_array_end(aimx_json *j);
void aimx__json_string(aimx_json *j, const char *key,
                       const char *value); /* NULL -> null */
void aimx__json_int(aimx_json *j, const char *key, int64_t value);
void aimx__json_bool(aimx_json *j, const char *key, int value);
void aimx__json_null(aimx_json *j, const char *key);
/* Ends the document with a newline and flushes. */
void aimx__json_finish(aimx_json *j);

/* {"schema":1,"status":"error","exit":N,"message":"..."} */
void aimx__json_error(FILE *out, int exit_code, const char *message);

#endif
