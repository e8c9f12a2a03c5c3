/*
 * point_in_time.c -- "2026-11-27 10:00", "2026-11-27T10:00:00Z", "1h30m" and friends as
 * ns since the epoch (forms: nova_point_in_time_parse in include/nova/backup.h).
 *
 * Absolute times are validated by converting them and converting back: a date such as
 * 2026-02-30, which mktime/timegm would silently normalise to March, is refused. Local
 * times in a DST gap or overlap are whatever mktime makes of them with tm_isdst = -1.
 */
#include "nova/backup.h"

#include "common/err.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#define NS_PER_SECOND INT64_C(1000000000)
/* Relative amounts beyond this many seconds (about 290 years) are refused. */
#define RELATIVE_MAX_SECONDS (INT64_MAX / NS_PER_SECOND)

static int invalid(const char *text, const char *why)
{
    return nova_fail(NOVA_EINVALID, "point in time '%.64s': %s (use e.g. \"2026-11-27 10:00\", "
                     "\"2026-11-27T10:00:00Z\" or \"2h\")", text, why);
}

/* Reads exactly `digits` decimal digits at *p. */
static int take_digits(const char **p, int digits, int *out)
{
    int value = 0;
    for (int i = 0; i < digits; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return 0;
        value = value * 10 + ((*p)[i] - '0');
    }
    *p += digits;
    *out = value;
    return 1;
}

static int unit_seconds(char unit, int64_t *out)
{
    switch (unit) {
    case 's': *out = 1; return 1;
    case 'm': *out = 60; return 1;
    case 'h': *out = 3600; return 1;
    case 'd': *out = 86400; return 1;
    case 'w': *out = 7 * 86400; return 1;
    default: return 0;
    }
}

static int parse_relative(int64_t *out_ns, const char *text, const char *p, const char *end,
                          int64_t now_ns)
{
    int64_t total = 0;

    while (p < end) {
        int64_t amount = 0, unit;
        if (!isdigit((unsigned char)*p))
            return invalid(text, "expected a number");
        while (p < end && isdigit((unsigned char)*p)) {
            amount = amount * 10 + (*p++ - '0');
            if (amount > RELATIVE_MAX_SECONDS)
                return invalid(text, "too far back");
        }
        if (p == end || !unit_seconds(*p, &unit))
            return invalid(text, "a relative time needs a unit s, m, h, d or w");
        p++;
        if (amount > (RELATIVE_MAX_SECONDS - total) / unit)
            return invalid(text, "too far back");
        total += amount * unit;
    }
    if (now_ns / NS_PER_SECOND - total < 0)
        return invalid(text, "before 1970");
    *out_ns = now_ns - total * NS_PER_SECOND;
    return 0;
}

/* Parses the optional zone suffix; *utc_offset in seconds east of UTC. */
static int parse_zone(const char **p, const char *end, int *has_zone, int *utc_offset)
{
    int hours, minutes, sign;

    *has_zone = 0;
    *utc_offset = 0;
    if (*p == end)
        return 1;
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        *has_zone = 1;
        return *p == end;
    }
    if (**p != '+' && **p != '-')
        return 0;
    sign = **p == '-' ? -1 : 1;
    (*p)++;
    if (!take_digits(p, 2, &hours))
        return 0;
    if (*p < end && **p == ':')
        (*p)++;
    if (!take_digits(p, 2, &minutes) || hours > 23 || minutes > 59)
        return 0;
    *has_zone = 1;
    *utc_offset = sign * (hours * 3600 + minutes * 60);
    return *p == end;
}

static int parse_absolute(int64_t *out_ns, const char *text, const char *p, const char *end)
{
    struct tm tm, check;
    int year, month, day, hour = 0, minute = 0, second = 0, has_zone, offset;
    time_t t;

    if (!take_digits(&p, 4, &year) || *p++ != '-' || !take_digits(&p, 2, &month) ||
        *p++ != '-' || !take_digits(&p, 2, &day))
        return invalid(text, "expected YYYY-MM-DD");
    if (p < end && (*p == ' ' || *p == 'T' || *p == 't')) {
        p++;
        if (!take_digits(&p, 2, &hour) || *p++ != ':' || !take_digits(&p, 2, &minute))
            return invalid(text, "expected HH:MM after the date");
        if (p < end && *p == ':' && (p++, !take_digits(&p, 2, &second)))
            return invalid(text, "expected HH:MM:SS after the date");
    }
    if (!parse_zone(&p, end, &has_zone, &offset))
        return invalid(text, "unexpected text after the time");
    if (year < 1970 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
        minute > 59 || second > 59)
        return invalid(text, "a field is out of range");
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    tm.tm_isdst = -1;
    check = tm;
    t = has_zone ? timegm(&tm) : mktime(&tm);
    if (t == (time_t)-1 || tm.tm_mday != check.tm_mday || tm.tm_mon != check.tm_mon)
        return invalid(text, "no such date");
    t -= offset;
    if (t < 0)
        return invalid(text, "before 1970");
    *out_ns = (int64_t)t * NS_PER_SECOND;
    return 0;
}

int nova_point_in_time_parse(int64_t *out_ns, const char *text, int64_t now_ns)
{
    const char *p = text, *end;

    *out_ns = 0;
    if (!text)
        return nova_fail(NOVA_EINVALID, "no point in time given");
    while (isspace((unsigned char)*p))
        p++;
    end = p + strlen(p);
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    if (p == end)
        return invalid(text, "empty");
    if ((size_t)(end - p) == 3 && strncmp(p, "now", 3) == 0) {
        *out_ns = now_ns;
        return 0;
    }
    /* "2026-..." has a '-' at index 4; relative forms never contain one. */
    if (end - p >= 10 && p[4] == '-')
        return parse_absolute(out_ns, text, p, end);
    return parse_relative(out_ns, text, p, end, now_ns);
}
