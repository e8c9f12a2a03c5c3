/* test_retention.c -- the retention policy engine: calendar buckets in local time (ISO
 * weeks, midnight and DST in a time zone east of UTC), restic's rules one by one and
 * together, equal timestamps, groups, the clean-up rule, and answers that do not depend
 * on the input order (checked against a simple reference on random data). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backup/retention.h"
#include "nova/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS 1000000000LL
#define HOUR (3600LL * NS)
#define DAY (24 * HOUR)
/* Central European Time with its DST rules, spelled out so no tzdata is needed. */
#define TZ_CET "CET-1CEST,M3.5.0,M10.5.0/3"

static void use_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* ns of a local wall-clock time in the current TZ. */
static int64_t local_ns(int year, int month, int day, int hour, int minute)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * NS;
}

static int64_t utc_ns(int year, int month, int day, int hour, int minute)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    return (int64_t)timegm(&tm) * NS;
}

#define MAX_ITEMS 512

typedef struct run {
    nova_retention_item items[MAX_ITEMS];
    nova_retention_decision decisions[MAX_ITEMS];
    size_t order[MAX_ITEMS];
    char ids[MAX_ITEMS][8];
    size_t count;
} run;

static run *run_new(void)
{
    run *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    return r;
}

static void add(run *r, const char *id, const char *group, int64_t time_ns)
{
    assert_true(r->count < MAX_ITEMS);
    assert_true(strlen(id) < sizeof(r->ids[0]));
    memcpy(r->ids[r->count], id, strlen(id) + 1);
    r->items[r->count].id = r->ids[r->count];
    r->items[r->count].group = group;
    r->items[r->count].time_ns = time_ns;
    r->count++;
}

static void apply(run *r, const nova_retention_policy *p, int64_t now_ns)
{
    assert_int_equal(nova_retention_apply(r->decisions, r->order, r->items, r->count, p, now_ns),
                     0);
}

static const nova_retention_decision *decision(const run *r, const char *id)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->items[i].id, id) == 0)
            return &r->decisions[i];
    fail_msg("no item %s", id);
    return NULL;
}

/* "a b c": the ids kept, in the engine's order. */
static void assert_kept(const run *r, const char *expected)
{
    char got[MAX_ITEMS * 8] = "";
    size_t used = 0;
    for (size_t k = 0; k < r->count; k++) {
        const nova_retention_item *item = &r->items[r->order[k]];
        if (r->decisions[r->order[k]].keep)
            used += (size_t)snprintf(got + used, sizeof(got) - used, "%s%s", used ? " " : "",
                                     item->id);
    }
    assert_string_equal(got, expected);
}

static nova_retention_policy policy(void)
{
    nova_retention_policy p;
    memset(&p, 0, sizeof(p));
    return p;
}

/* ---- buckets ------------------------------------------------------------------------ */

static void test_iso_week_buckets(void **state)
{
    static const struct {
        int y, m, d;
        int64_t week;
    } cases[] = {
        {2021, 1, 3, 202053},   /* Sunday: still the last week of 2020 */
        {2021, 1, 4, 202101},   /* Monday: week 1 */
        {2020, 12, 28, 202053}, /* Monday of 2020's week 53 */
        {2024, 12, 30, 202501}, /* Monday: already ISO year 2025 */
        {2026, 1, 1, 202601},   /* Thursday: week 1 of its own year */
        {2027, 1, 1, 202653},   /* Friday: 2026 has 53 weeks */
        {2008, 12, 29, 200901}, {2010, 1, 3, 200953}, {2004, 12, 31, 200453},
        {2020, 12, 20, 202051},
    };
    (void)state;
    use_tz("UTC0");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t t = utc_ns(cases[i].y, cases[i].m, cases[i].d, 12, 0);
        assert_int_equal(nova_retention_bucket(NOVA_BUCKET_WEEK, t), cases[i].week);
    }
}

static void test_calendar_buckets(void **state)
{
    int64_t t;
    (void)state;
    use_tz("UTC0");
    t = utc_ns(2026, 11, 27, 9, 41);
    assert_int_equal(nova_retention_bucket(NOVA_BUCKET_HOUR, t), 2026112709);
    assert_int_equal(nova_retention_bucket(NOVA_BUCKET_DAY, t), 20261127);
    assert_int_equal(nova_retention_bucket(NOVA_BUCKET_MONTH, t), 202611);
    assert_int_equal(nova_retention_bucket(NOVA_BUCKET_YEAR, t), 2026);
    /* the same instant is a day later in a zone east of UTC */
    use_tz("JST-9");
    t = utc_ns(2026, 11, 27, 20, 0);
    assert_int_equal(nova_retention_bucket(NOVA_BUCKET_DAY, t), 20261128);
    assert_int_equal(nova_retention_bucket(NOVA_BUCKET_HOUR, t), 2026112805);
    /* before the epoch (negative ns) floors to the earlier second */
    use_tz("UTC0");
    assert_int_equal(nova_retention_bucket(NOVA_BUCKET_DAY, -1), 19691231);
}

/* ---- the rules ---------------------------------------------------------------------- */

static void test_keep_last(void **state)
{
    run *r = run_new();
    nova_retention_policy p = policy();
    (void)state;
    use_tz("UTC0");
    for (int i = 0; i < 5; i++) {
        char id[4];
        snprintf(id, sizeof(id), "s%d", i);
        add(r, id, "g", utc_ns(2026, 1, 1 + i, 10, 0)); /* s4 newest */
    }
    p.keep_last = 3;
    apply(r, &p, utc_ns(2027, 1, 1, 0, 0));
    assert_kept(r, "s4 s3 s2");
    assert_int_equal(decision(r, "s4")->reasons, NOVA_KEEP_LAST);
    assert_int_equal(decision(r, "s1")->reasons, 0);
    assert_false(decision(r, "s0")->keep);
    /* more than there are: all kept, the oldest among them */
    p.keep_last = 10;
    apply(r, &p, utc_ns(2027, 1, 1, 0, 0));
    assert_kept(r, "s4 s3 s2 s1 s0");
    p.keep_last = NOVA_KEEP_UNLIMITED;
    apply(r, &p, utc_ns(2027, 1, 1, 0, 0));
    assert_kept(r, "s4 s3 s2 s1 s0");
    free(r);
}

/* Days are local days: two backups on either side of UTC midnight but on one local day
 * share a bucket; in UTC they would not. */
static void test_daily_buckets_across_midnight_in_local_time(void **state)
{
    run *r = run_new();
    nova_retention_policy p = policy();
    (void)state;
    use_tz(TZ_CET);
    add(r, "A", "g", local_ns(2024, 1, 10, 23, 30)); /* 22:30 UTC on the 10th */
    add(r, "B", "g", local_ns(2024, 1, 10, 0, 30));  /* 23:30 UTC on the 9th */
    add(r, "C", "g", local_ns(2024, 1, 9, 12, 0));
    assert_int_equal(r->items[1].time_ns, utc_ns(2024, 1, 9, 23, 30));
    p.keep_daily = 5;
    apply(r, &p, local_ns(2024, 2, 1, 0, 0));
    assert_kept(r, "A C");
    assert_int_equal(decision(r, "A")->reasons, NOVA_KEEP_DAILY);
    assert_int_equal(decision(r, "C")->reasons, NOVA_KEEP_DAILY);
    /* the same instants judged in UTC: B opens the 9th and is kept */
    use_tz("UTC0");
    apply(r, &p, local_ns(2024, 2, 1, 0, 0));
    assert_true(decision(r, "B")->keep);
    free(r);
}

/* Autumn DST change: 02:30 CEST and 02:30 CET are an hour apart but the same local
 * hour, so one hourly bucket. */
static void test_hourly_across_dst_fall_back(void **state)
{
    run *r = run_new();
    nova_retention_policy p = policy();
    (void)state;
    use_tz(TZ_CET);
    add(r, "X", "g", utc_ns(2024, 10, 27, 1, 30)); /* 02:30 CET */
    add(r, "Y", "g", utc_ns(2024, 10, 27, 0, 30)); /* 02:30 CEST */
    add(r, "Z", "g", utc_ns(2024, 10, 26, 12, 0));
    assert_int_equal(nova_retention_bucket(NOVA_BUCKET_HOUR, r->items[0].time_ns),
                     nova_retention_bucket(NOVA_BUCKET_HOUR, r->items[1].time_ns));
    p.keep_hourly = 3;
    apply(r, &p, utc_ns(2025, 1, 1, 0, 0));
    assert_kept(r, "X Z");
    free(r);
}

static void test_the_oldest_is_kept_while_count_is_left(void **state)
{
    run *r = run_new();
    nova_retention_policy p = policy();
    (void)state;
    use_tz("UTC0");
    add(r, "d3b", "g", utc_ns(2026, 3, 3, 18, 0));
    add(r, "d3a", "g", utc_ns(2026, 3, 3, 8, 0));
    add(r, "d2b", "g", utc_ns(2026, 3, 2, 18, 0));
    add(r, "d2a", "g", utc_ns(2026, 3, 2, 8, 0));
    add(r, "d1b", "g", utc_ns(2026, 3, 1, 18, 0));
    add(r, "d1a", "g", utc_ns(2026, 3, 1, 8, 0));
    p.keep_daily = 5; /* 3 days hold backups: count is left at the oldest */
    apply(r, &p, utc_ns(2026, 4, 1, 0, 0));
    assert_kept(r, "d3b d2b d1b d1a");
    p.keep_daily = 3; /* used up by the third day: the oldest goes */
    apply(r, &p, utc_ns(2026, 4, 1, 0, 0));
    assert_kept(r, "d3b d2b d1b");
    free(r);
}

static void test_weekly_uses_iso_weeks(void **state)
{
    run *r = run_new();
    nova_retention_policy p = policy();
    (void)state;
    use_tz("UTC0");
    add(r, "mon0104", "g", utc_ns(2021, 1, 4, 12, 0)); /* 2021-W01 */
    add(r, "sun0103", "g", utc_ns(2021, 1, 3, 12, 0)); /* 2020-W53 */
    add(r, "mon1228", "g", utc_ns(2020, 12, 28, 12, 0)); /* 2020-W53 */
    add(r, "sun1220", "g", utc_ns(2020, 12, 20, 12, 0)); /* 2020-W51 */
    p.keep_weekly = 2;
    apply(r, &p, utc_ns(2022, 1, 1, 0, 0));
    /* with weeks starting on Sunday, 01-03 and 01-04 would share a week */
    assert_kept(r, "mon0104 sun0103");
    p.keep_weekly = NOVA_KEEP_UNLIMITED;
    apply(r, &p, utc_ns(2022, 1, 1, 0, 0));
    assert_kept(r, "mon0104 sun0103 sun1220");
    free(r);
}

static void test_monthly_and_yearly(void **state)
{
    run *r = run_new();
    nova_retention_policy p = policy();
    (void)state;
    use_tz("UTC0");
    add(r, "feb01", "g", utc_ns(2026, 2, 1, 0, 30));
    add(r, "jan31", "g", utc_ns(2026, 1, 31, 23, 30));
    add(r, "jan01", "g", utc_ns(2026, 1, 1, 0, 30));
    add(r, "dec15", "g", utc_ns(2025, 12, 15, 12, 0));
    add(r, "jun10", "g", utc_ns(2025, 6, 10, 12, 0));
    add(r, "may10", "g", utc_ns(2024, 5, 10, 12, 0));
    p.keep_monthly = 2;
    apply(r, &p, utc_ns(2027, 1, 1, 0, 0));
    assert_kept(r, "feb01 jan31");
    p.keep_monthly = NOVA_KEEP_UNLIMITED;
    apply(r, &p, utc_ns(2027, 1, 1, 0, 0));
    assert_kept(r, "feb01 jan31 dec15 jun10 may10");
    p = policy();
    p.keep_yearly = 2;
    apply(r, &p, utc_ns(2027, 1, 1, 0, 0));
    assert_kept(r, "feb01 dec15");
    p.keep_yearly = 5;
    apply(r, &p, utc_ns(2027, 1, 1, 0, 0));
    assert_kept(r, "feb01 dec15 may10");
    assert_int_equal(decision(r, "may10")->reasons, NOVA_KEEP_YEARLY);
    free(r);
}

/* A backup is kept when any rule keeps it; every rule that does is named. */
static void test_rules_together(void **state)
{
    run *r = run_new();
    nova_retention_policy p = policy();
    int64_t d3 = utc_ns(2026, 5, 3, 0, 0), d2 = utc_ns(2026, 5, 2, 0, 0),
            d1 = utc_ns(2026, 5, 1, 0, 0);
    (void)state;
    use_tz("UTC0");
    add(r, "d3e", "g", d3 + 18 * HOUR);
    add(r, "d3m", "g", d3 + 12 * HOUR);
    add(r, "d2e", "g", d2 + 18 * HOUR);
    add(r, "d2m", "g", d2 + 12 * HOUR);
    add(r, "d1e", "g", d1 + 18 * HOUR);
    add(r, "d1m", "g", d1 + 12 * HOUR);
    p.keep_last = 2;
    p.keep_daily = 2;
    apply(r, &p, d3 + 2 * DAY);
    assert_kept(r, "d3e d3m d2e");
    assert_int_equal(decision(r, "d3e")->reasons, NOVA_KEEP_LAST | NOVA_KEEP_DAILY);
    assert_int_equal(decision(r, "d3m")->reasons, NOVA_KEEP_LAST);
    assert_int_equal(decision(r, "d2e")->reasons, NOVA_KEEP_DAILY);
    /* within 30 h of the newest (d3 18:00): d2 18:00 is 24 h before; d2 12:00 exactly
     * 30 h before is not "less than" 30 h */
    p.keep_within_ns = 30 * HOUR;
    apply(r, &p, d3 + 2 * DAY);
    assert_kept(r, "d3e d3m d2e");
    assert_int_equal(decision(r, "d2e")->reasons, NOVA_KEEP_DAILY | NOVA_KEEP_WITHIN);
    assert_int_equal(decision(r, "d3m")->reasons, NOVA_KEEP_LAST | NOVA_KEEP_WITHIN);
    p.keep_within_ns = 30 * HOUR + 1;
    apply(r, &p, d3 + 2 * DAY);
    assert_kept(r, "d3e d3m d2e d2m");
    assert_int_equal(decision(r, "d2m")->reasons, NOVA_KEEP_WITHIN);
    /* hourly with count left keeps the oldest too */
    p = policy();
    p.keep_hourly = 100;
    p.keep_monthly = 1;
    apply(r, &p, d3 + 2 * DAY);
    assert_kept(r, "d3e d3m d2e d2m d1e d1m");
    assert_int_equal(decision(r, "d1m")->reasons, NOVA_KEEP_HOURLY);
    assert_int_equal(decision(r, "d3e")->reasons, NOVA_KEEP_HOURLY | NOVA_KEEP_MONTHLY);
    free(r);
}

static void test_equal_timestamps_are_ordered_by_id(void **state)
{
    static const char *const orders[][3] = {
        {"c", "a", "b"}, {"a", "b", "c"}, {"b", "c", "a"}, {"c", "b", "a"}};
    nova_retention_policy p = policy();
    int64_t t = utc_ns(2026, 7, 1, 12, 0);
    (void)state;
    use_tz("UTC0");
    for (size_t o = 0; o < sizeof(orders) / sizeof(orders[0]); o++) {
        run *r = run_new();
        for (int i = 0; i < 3; i++)
            add(r, orders[o][i], "g", t);
        add(r, "old", "g", t - 3 * DAY);
        p = policy();
        p.keep_last = 1;
        apply(r, &p, t + DAY);
        assert_kept(r, "a");
        p = policy();
        p.keep_daily = 1;
        apply(r, &p, t + DAY);
        assert_kept(r, "a");
        p.keep_daily = 2;
        apply(r, &p, t + DAY);
        assert_kept(r, "a old");
        p = policy();
        p.keep_within_ns = HOUR;
        apply(r, &p, t + DAY);
        assert_kept(r, "a b c");
        /* the order array lists them by id */
        assert_string_equal(r->items[r->order[0]].id, "a");
        assert_string_equal(r->items[r->order[1]].id, "b");
        assert_string_equal(r->items[r->order[2]].id, "c");
        free(r);
    }
}

static void test_groups_are_judged_apart(void **state)
{
    run *r = run_new();
    nova_retention_policy p = policy();
    (void)state;
    use_tz("UTC0");
    /* interleaved input; group "b" holds the newest backup overall */
    add(r, "a1", "ga", utc_ns(2026, 1, 1, 0, 0));
    add(r, "b1", "gb", utc_ns(2026, 1, 5, 0, 0));
    add(r, "a2", "ga", utc_ns(2026, 1, 2, 0, 0));
    add(r, "b2", "gb", utc_ns(2026, 1, 6, 0, 0));
    add(r, "a3", "ga", utc_ns(2026, 1, 3, 0, 0));
    p.keep_last = 1;
    apply(r, &p, utc_ns(2026, 2, 1, 0, 0));
    assert_kept(r, "a3 b2");
    assert_int_equal(decision(r, "a1")->group, 0);
    assert_int_equal(decision(r, "a3")->group, 0);
    assert_int_equal(decision(r, "b1")->group, 1);
    /* order: group by group, newest first */
    assert_string_equal(r->items[r->order[0]].id, "a3");
    assert_string_equal(r->items[r->order[2]].id, "a1");
    assert_string_equal(r->items[r->order[3]].id, "b2");
    /* keep-within counts from each group's own newest */
    p = policy();
    p.keep_within_ns = DAY + 1;
    apply(r, &p, utc_ns(2026, 2, 1, 0, 0));
    assert_kept(r, "a3 a2 b2 b1");
    free(r);
}

static void test_within_ignores_backups_in_the_future(void **state)
{
    run *r = run_new();
    nova_retention_policy p = policy();
    int64_t now = utc_ns(2026, 6, 1, 12, 0);
    (void)state;
    use_tz("UTC0");
    add(r, "future", "g", now + DAY);
    add(r, "recent", "g", now - HOUR);
    add(r, "older", "g", now - 2 * DAY + 2 * HOUR);
    add(r, "old", "g", now - 3 * DAY);
    p.keep_within_ns = 2 * DAY;
    apply(r, &p, now);
    /* counted from "recent", not from "future"; the future one is kept */
    assert_kept(r, "future recent older");
    /* everything in the future: nothing to count from, so nothing is cut off */
    apply(r, &p, now - 10 * DAY);
    assert_kept(r, "future recent older old");
    free(r);
}

static void test_policy_errors(void **state)
{
    nova_retention_item item = {"x", "g", 0, 0};
    nova_retention_decision d;
    nova_retention_policy p = policy();
    (void)state;
    assert_false(nova_retention_policy_has_rule(&p));
    assert_int_equal(nova_retention_apply(&d, NULL, &item, 1, &p, 0), NOVA_EINVALID);
    p.keep_daily = -2;
    assert_int_equal(nova_retention_apply(&d, NULL, &item, 1, &p, 0), NOVA_EINVALID);
    p.keep_daily = 0;
    p.keep_within_ns = -5;
    assert_int_equal(nova_retention_apply(&d, NULL, &item, 1, &p, 0), NOVA_EINVALID);
    /* no items is fine */
    p.keep_within_ns = 0;
    p.keep_last = 1;
    assert_int_equal(nova_retention_apply(&d, NULL, &item, 0, &p, 0), 0);
}

/* ---- clean-up by age ---------------------------------------------------------------- */

static void test_expire_keeps_recent_and_newest_usable(void **state)
{
    run *r = run_new();
    int64_t now = utc_ns(2026, 6, 1, 0, 0), cutoff = now - 30 * DAY;
    (void)state;
    add(r, "a40", "ga", now - 40 * DAY); /* newest of ga, old: kept as newest */
    add(r, "a50", "ga", now - 50 * DAY);
    add(r, "b01", "gb", now - 1 * DAY);
    add(r, "b40", "gb", now - 40 * DAY);
    add(r, "bcut", "gb", cutoff); /* exactly at the cut-off: old enough to go */
    add(r, "c40", "gc", now - 40 * DAY);
    r->items[r->count - 1].failed = 1; /* the newest of gc failed */
    add(r, "c45", "gc", now - 45 * DAY);
    add(r, "c50", "gc", now - 50 * DAY);
    add(r, "d60", "gd", now - 60 * DAY);
    r->items[r->count - 1].failed = 1;
    add(r, "d70", "gd", now - 70 * DAY);
    r->items[r->count - 1].failed = 1;
    assert_int_equal(nova_retention_expire(r->decisions, r->order, r->items, r->count, cutoff), 0);
    assert_kept(r, "a40 b01 c45 d60");
    assert_int_equal(decision(r, "a40")->reasons, NOVA_KEEP_NEWEST);
    assert_int_equal(decision(r, "b01")->reasons, NOVA_KEEP_RECENT | NOVA_KEEP_NEWEST);
    assert_int_equal(decision(r, "c45")->reasons, NOVA_KEEP_NEWEST);
    assert_int_equal(decision(r, "d60")->reasons, NOVA_KEEP_NEWEST);
    assert_false(decision(r, "bcut")->keep);
    assert_false(decision(r, "c40")->keep);
    free(r);
}

static void test_group_keys(void **state)
{
    const char *ab[] = {"/a", "/b"}, *ba[] = {"/b", "/a"}, *joined[] = {"/a/b"},
               *colon[] = {"1:/a"};
    char *k1 = nova_retention_group_key("h", ab, 2), *k2 = nova_retention_group_key("h", ba, 2);
    char *k3 = nova_retention_group_key("h", joined, 1), *k4 = nova_retention_group_key("g", ab, 2);
    char *k5 = nova_retention_group_key("h", ab, 1), *k6 = nova_retention_group_key("", colon, 1);
    char *k7 = nova_retention_group_key("1:/a", NULL, 0);
    (void)state;
    assert_string_equal(k1, k2);
    assert_string_not_equal(k1, k3);
    assert_string_not_equal(k1, k4);
    assert_string_not_equal(k1, k5);
    assert_string_not_equal(k6, k7); /* no host or path can imitate the framing */
    free(k1), free(k2), free(k3), free(k4), free(k5), free(k6), free(k7);
}

/* ---- random data: order independence and a reference for the daily rule -------------- */

static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int by_time_desc_then_id(const void *a, const void *b)
{
    const nova_retention_item *x = a, *y = b;
    if (x->time_ns != y->time_ns)
        return x->time_ns > y->time_ns ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* restic's daily rule written plainly for one group: keep the newest of each of the
 * newest n days, and the oldest backup when fewer than n days came before it. */
static int reference_daily_keeps(const nova_retention_item *sorted, size_t count, size_t k, int n)
{
    int days_before = 0;
    for (size_t i = 0; i < k; i++)
        if (i == 0 || nova_retention_bucket(NOVA_BUCKET_DAY, sorted[i].time_ns) !=
                          nova_retention_bucket(NOVA_BUCKET_DAY, sorted[i - 1].time_ns))
            days_before++;
    if (k > 0 && nova_retention_bucket(NOVA_BUCKET_DAY, sorted[k].time_ns) ==
                     nova_retention_bucket(NOVA_BUCKET_DAY, sorted[k - 1].time_ns))
        return k == count - 1 && days_before < n;
    return days_before < n;
}

static void test_random_histories(void **state)
{
    static const char *const groups[] = {"g0", "g1", "g2"};
    uint64_t seed = 20261127;
    (void)state;
    use_tz(TZ_CET);
    for (int round = 0; round < 40; round++) {
        run *r = run_new(), *shuffled = run_new();
        nova_retention_policy p = policy();
        int64_t base = utc_ns(2025, 1, 1, 0, 0);
        size_t n = 20 + next_random(&seed) % 200;

        for (size_t i = 0; i < n; i++) {
            char id[24];
            snprintf(id, sizeof(id), "i%03zu", i);
            /* every 8 hours over about 13 months: some exact duplicates of times */
            add(r, id, groups[next_random(&seed) % 3],
                base + (int64_t)(next_random(&seed) % 1200) * 8 * HOUR);
        }
        p.keep_last = (int)(next_random(&seed) % 4);
        p.keep_daily = 1 + (int)(next_random(&seed) % 10);
        p.keep_weekly = (int)(next_random(&seed) % 6);
        p.keep_monthly = (int)(next_random(&seed) % 4) - 1;
        p.keep_within_ns = (int64_t)(next_random(&seed) % 3) * 5 * DAY;
        apply(r, &p, base + 500 * DAY);

        /* the same items in another order give the same decisions */
        *shuffled = *r;
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = next_random(&seed) % (i + 1);
            nova_retention_item tmp = shuffled->items[i];
            shuffled->items[i] = shuffled->items[j];
            shuffled->items[j] = tmp;
        }
        apply(shuffled, &p, base + 500 * DAY);
        for (size_t i = 0; i < n; i++) {
            const nova_retention_decision *a = decision(r, shuffled->items[i].id);
            assert_int_equal(a->keep, shuffled->decisions[i].keep);
            assert_int_equal(a->reasons, shuffled->decisions[i].reasons);
            assert_int_equal(a->group, shuffled->decisions[i].group);
        }

        /* the daily reasons agree with the plain reference, group by group */
        for (size_t g = 0; g < 3; g++) {
            nova_retention_item sorted[MAX_ITEMS];
            size_t m = 0;
            memset(sorted, 0, sizeof(sorted));
            for (size_t i = 0; i < n; i++)
                if (strcmp(r->items[i].group, groups[g]) == 0)
                    sorted[m++] = r->items[i];
            qsort(sorted, m, sizeof(sorted[0]), by_time_desc_then_id);
            for (size_t k = 0; k < m; k++) {
                int want = reference_daily_keeps(sorted, m, k, p.keep_daily);
                int got = (decision(r, sorted[k].id)->reasons & NOVA_KEEP_DAILY) != 0;
                if (want != got)
                    fail_msg("round %d group %zu item %s: daily %d, reference %d", round, g,
                             sorted[k].id, got, want);
            }
        }
        free(r);
        free(shuffled);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso_week_buckets),
        cmocka_unit_test(test_calendar_buckets),
        cmocka_unit_test(test_keep_last),
        cmocka_unit_test(test_daily_buckets_across_midnight_in_local_time),
        cmocka_unit_test(test_hourly_across_dst_fall_back),
        cmocka_unit_test(test_the_oldest_is_kept_while_count_is_left),
        cmocka_unit_test(test_weekly_uses_iso_weeks),
        cmocka_unit_test(test_monthly_and_yearly),
        cmocka_unit_test(test_rules_together),
        cmocka_unit_test(test_equal_timestamps_are_ordered_by_id),
        cmocka_unit_test(test_groups_are_judged_apart),
        cmocka_unit_test(test_within_ignores_backups_in_the_future),
        cmocka_unit_test(test_policy_errors),
        cmocka_unit_test(test_expire_keeps_recent_and_newest_usable),
        cmocka_unit_test(test_group_keys),
        cmocka_unit_test(test_random_histories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
