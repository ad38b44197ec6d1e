/* SPDX-License-Identifier: MIT */
#include "json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

static char *
render(void (*build)(aimx_json *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    aimx_json j;

    assert_non_null(f);
    aimx__json_init(&j, f);
    build(&j);
    aimx__json_finish(&j);
    fclose(f);
    return buf;
}

static void
build_nested(aimx_json *j)
{
    aimx__json_object_begin(j, NULL);
    aimx__json_int(j, "schema", 1);
    aimx__json_string(j, "s", "a\"b\\c\n\t\x01\x7f\xc3\xa9");
    aimx__json_null(j, "n");
    aimx__json_string(j, "nullstr", NULL);
    aimx__json_array_begin(j, "list");
    aimx__json_bool(j, NULL, 1);
    aimx__json_bool(j, NULL, 0);
    aimx__json_object_begin(j, NULL);
    aimx__json_int(j, "neg", -5);
    aimx__json_object_end(j);
    aimx__json_array_end(j);
    aimx__json_array_begin(j, "empty");
    aimx__json_array_end(j);
    aimx__json_object_end(j);
}

static void
escapes_and_nesting(void **state)
{
    char *out = render(build_nested);

    (void)state;
    assert_string_equal(out,
                        "{\"schema\":1,\"s\":\"a\\\"b\\\\c\\n\\t\\u0001\\u007f"
                        "\xc3\xa9\",\"n\":null,\"nullstr\":null,\"list\":[true,"
                        "false,{\"neg\":-5}],\"empty\":[]}\n");
    free(out);
}

static void
build_bad_utf8(aimx_json *j)
{
    aimx__json_array_begin(j, NULL);
    aimx__json_string(j, NULL,
                      "a\xff"
                      "b");                     /* stray byte */
    aimx__json_string(j, NULL, "\xc3");         /* truncated */
    aimx__json_string(j, NULL, "\xed\xa0\x80"); /* a surrogate */
    aimx__json_string(j, NULL, "\xe2\x82\xac\xf0\x9f\x93\xa7"); /* fine */
    aimx__json_array_end(j);
}

static void
invalid_utf8_becomes_replacement(void **state)
{
    char *out = render(build_bad_utf8);

    (void)state;
    assert_string_equal(out,
                        "[\"a\\ufffdb\",\"\\ufffd\",\"\\ufffd\\ufffd\\ufffd\","
                        "\"\xe2\x82\xac\xf0\x9f\x93\xa7\"]\n");
    free(out);
}

static void
error_object(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    (void)state;
    aimx__json_error(f, 78, "x.conf:3: bad");
    fclose(f);
    assert_string_equal(buf, "{\"schema\":1,\"status\":\"error\",\"exit\":78,"
                             "\"message\":\"x.conf:3: bad\"}\n");
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_and_nesting),
        cmocka_unit_test(error_object),
        cmocka_unit_test(invalid_utf8_becomes_replacement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
