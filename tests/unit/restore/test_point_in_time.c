/*
 * test_point_in_time.c -- the point-in-time parser behind `nova restore --at`: absolute
 * times in UTC, with offsets and in local time (TZ pinned), dates alone, relative
 * amounts counted back from a fixed "now", and every malformed form refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "nova/error.h"
#include "nova/backup.h"

#include <stdlib.h>
#include <time.h>

#define S INT64_C(1000000000)
/* 2026-11-27 10:00:00 UTC */
#define T_2026_11_27_10 INT64_C(1795773600)

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static int64_t parse_ok(const char *text, int64_t now)
{
    int64_t out = -1;
    int rc = nova_point_in_time_parse(&out, text, now);
    if (rc != 0)
        fail_msg("'%s' refused: %s", text, nova_error_last()->message);
    return out;
}

static void test_absolute_utc(void **state)
{
    (void)state;
    set_tz("UTC");
    assert_int_equal(parse_ok("2026-11-27T10:00:00Z", 0), T_2026_11_27_10 * S);
    assert_int_equal(parse_ok("2026-11-27 10:00Z", 0), T_2026_11_27_10 * S);
    assert_int_equal(parse_ok("2026-11-27T10:00:00+02:00", 0), (T_2026_11_27_10 - 7200) * S);
    assert_int_equal(parse_ok("2026-11-27T10:00:00-0130", 0), (T_2026_11_27_10 + 5400) * S);
    assert_int_equal(parse_ok("2026-07-01 12:30:15z", 0), INT64_C(1782909015) * S);
    assert_int_equal(parse_ok("2024-02-29", 0), INT64_C(1709164800) * S); /* leap day */
    assert_int_equal(parse_ok("  2026-11-27 10:00  ", 0), T_2026_11_27_10 * S);
}

static void test_absolute_local(void **state)
{
    (void)state;
    set_tz("UTC");
    assert_int_equal(parse_ok("2026-11-27 10:00", 0), T_2026_11_27_10 * S);
    assert_int_equal(parse_ok("2026-11-27", 0), (T_2026_11_27_10 - 10 * 3600) * S);
    set_tz("Europe/Paris"); /* UTC+1 in November, UTC+2 in July */
    assert_int_equal(parse_ok("2026-11-27 10:00", 0), (T_2026_11_27_10 - 3600) * S);
    assert_int_equal(parse_ok("2026-07-01 12:30:15", 0), (INT64_C(1782909015) - 7200) * S);
    /* an explicit zone wins over TZ */
    assert_int_equal(parse_ok("2026-11-27T10:00:00Z", 0), T_2026_11_27_10 * S);
    set_tz("UTC");
}

static void test_relative(void **state)
{
    const int64_t now = T_2026_11_27_10 * S + 123;
    (void)state;
    assert_int_equal(parse_ok("now", now), now);
    assert_int_equal(parse_ok("1h", now), now - 3600 * S);
    assert_int_equal(parse_ok("30m", now), now - 1800 * S);
    assert_int_equal(parse_ok("2d", now), now - 2 * 86400 * S);
    assert_int_equal(parse_ok("1w", now), now - 7 * 86400 * S);
    assert_int_equal(parse_ok("90s", now), now - 90 * S);
    assert_int_equal(parse_ok("1h30m", now), now - 5400 * S);
    assert_int_equal(parse_ok("0m", now), now);
}

static void test_refused(void **state)
{
    static const char *const bad[] = {
        "", "   ", "abc", "5", "5x", "-1h", "1h-", "h", "1.5h", "2026-13-01", "2026-00-10",
        "2026-02-30", "2025-02-29", "2026-11-31", "2026-11-27 24:00", "2026-11-27 10:60",
        "2026-11-27 10:00:60", "2026-11-27 10", "2026-11-27 10:00 extra", "2026-11-27T",
        "1969-12-31", "2026/11/27", "2026-11-27+25:00", "99999999999999999999s", "10000000w",
    };
    (void)state;
    set_tz("UTC");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t out = 42;
        int rc = nova_point_in_time_parse(&out, bad[i], T_2026_11_27_10 * S);
        if (rc != NOVA_EINVALID)
            fail_msg("'%s' accepted (%d, %lld)", bad[i], rc, (long long)out);
    }
    assert_int_equal(nova_point_in_time_parse(&(int64_t){0}, NULL, 0), NOVA_EINVALID);
    /* too far back for "now" */
    assert_int_equal(nova_point_in_time_parse(&(int64_t){0}, "2h", 3600 * S), NOVA_EINVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absolute_utc),
        cmocka_unit_test(test_absolute_local),
        cmocka_unit_test(test_relative),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
