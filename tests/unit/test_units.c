/* SPDX-License-Identifier: MIT */
#include "units.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void
durations_with_units(void **state)
{
    uint64_t v;

    (void)state;
    assert_int_equal(aimx__parse_duration("500ms", &v), 0);
    assert_int_equal(v, 500000);
    assert_int_equal(aimx__parse_duration("30s", &v), 0);
    assert_int_equal(v, 30000000);
    assert_int_equal(aimx__parse_duration("10m", &v), 0);
    assert_int_equal(v, 600000000);
    assert_int_equal(aimx__parse_duration("2h", &v), 0);
    assert_int_equal(v, 7200000000ull);
    assert_int_equal(aimx__parse_duration("0s", &v), 0);
    assert_int_equal(v, 0);
}

static void
durations_refused(void **state)
{
    static const char *bad[] = {
        "30",
        "",
        "s",
        "2 s",
        " 2s",
        "2s ",
        "-1s",
        "+1s",
        "1.5s",
        "2sec",
        "2S",
        "2ms5",
        "1e3ms",
        "0x10s",
        "99999999999999999999s",
        "5124095576030431h", /* overflows 64-bit microseconds */
    };
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (aimx__parse_duration(bad[i], &v) == 0)
            fail_msg("'%s' was accepted as a duration", bad[i]);
    }
    assert_int_equal(aimx__parse_duration(NULL, &v), -1);
}

static void
sizes(void **state)
{
    uint64_t v;

    (void)state;
    assert_int_equal(aimx__parse_size("512", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(aimx__parse_size("64KB", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(aimx__parse_size("25MB", &v), 0);
    assert_int_equal(v, 25u * 1024 * 1024);
    assert_int_equal(aimx__parse_size("1GB", &v), 0);
    assert_int_equal(v, 1073741824ull);
    assert_int_equal(aimx__parse_size("25mb", &v), -1);
    assert_int_equal(aimx__parse_size("25 MB", &v), -1);
    assert_int_equal(aimx__parse_size("25M", &v), -1);
    assert_int_equal(aimx__parse_size("-1", &v), -1);
    assert_int_equal(aimx__parse_size("17179869184GB", &v), -1);
}

static void
format_round_trips(void **state)
{
    static const uint64_t values[] = {
        0, 1000, 250000, 2000000, 120000000, 3600000000ull, 90000000};
    char buf[32];
    uint64_t back;

    (void)state;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        aimx__format_duration(values[i], buf, sizeof buf);
        assert_int_equal(aimx__parse_duration(buf, &back), 0);
        assert_int_equal(back, values[i]);
    }
    aimx__format_duration(250000, buf, sizeof buf);
    assert_string_equal(buf, "250ms");
    aimx__format_duration(90000000, buf, sizeof buf);
    assert_string_equal(buf, "90s");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations_with_units),
        cmocka_unit_test(durations_refused),
        cmocka_unit_test(sizes),
        cmocka_unit_test(format_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
