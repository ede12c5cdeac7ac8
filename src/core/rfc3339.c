/*
 * rfc3339.c — RFC 3339 timestamps to and from Unix microseconds by pure arithmetic (days from
 * the civil calendar), so the result depends on no locale, time zone or libc calendar function.
 *
 * Invariants:
 *  1. The accepted grammar is exactly YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|(+|-)HH:MM) with upper-case
 *     T and Z; the date must exist (Feb 29 only in leap years), hours 00..23, minutes and
 *     seconds 00..59, offsets up to ±23:59.
 *  2. The parser reads the string one byte at a time and stops at the first byte that does not
 *     fit, so it never reads past the terminating NUL.
 */
#include <stdio.h>

#include "pe/core.h"

#define US_PER_S     1000000
#define MAX_FRACTION 9 /* nanoseconds; digits past microseconds are truncated */

static bool take_char(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

static bool take_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = **p;
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int DAYS[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap_year(y) ? 29 : DAYS[m - 1];
}

int pe_time_parse_rfc3339(const char *s, int64_t *unix_us)
{
    if (!s || !unix_us)
        return PE_EINVAL;
    const char *p = s;
    int y, mo, d, h, mi, sec;
    if (!take_digits(&p, 4, &y) || !take_char(&p, '-') || !take_digits(&p, 2, &mo) ||
        !take_char(&p, '-') || !take_digits(&p, 2, &d) || !take_char(&p, 'T') ||
        !take_digits(&p, 2, &h) || !take_char(&p, ':') || !take_digits(&p, 2, &mi) ||
        !take_char(&p, ':') || !take_digits(&p, 2, &sec))
        return PE_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return PE_EINVAL;

    int64_t frac_us = 0;
    if (take_char(&p, '.')) {
        int ndigits = 0, scale = US_PER_S;
        while (*p >= '0' && *p <= '9') {
            if (++ndigits > MAX_FRACTION)
                return PE_EINVAL;
            scale /= 10;
            frac_us += (int64_t)(*p - '0') * scale; /* scale is 0 past microseconds */
            p++;
        }
        if (ndigits == 0)
            return PE_EINVAL;
    }

    int64_t offset_s = 0;
    if (!take_char(&p, 'Z')) {
        int sign = *p == '+' ? 1 : *p == '-' ? -1 : 0;
        int oh, om;
        if (sign == 0)
            return PE_EINVAL;
        p++;
        if (!take_digits(&p, 2, &oh) || !take_char(&p, ':') || !take_digits(&p, 2, &om) ||
            oh > 23 || om > 59)
            return PE_EINVAL;
        offset_s = sign * (int64_t)(oh * 3600 + om * 60);
    }
    if (*p != '\0')
        return PE_EINVAL;

    int64_t secs = pe_days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 +
                   sec - offset_s;
    *unix_us = secs * US_PER_S + frac_us;
    return 0;
}

void pe_time_format_rfc3339(int64_t unix_us, char *out, size_t outlen)
{
    int64_t ms = unix_us / 1000 - (unix_us % 1000 < 0); /* floor: before 1970 too */
    int64_t secs = ms / 1000 - (ms % 1000 < 0);
    int64_t days = secs / 86400 - (secs % 86400 < 0);
    int64_t in_day = secs - days * 86400, y;
    int m, d;
    pe_civil_from_days(days, &y, &m, &d);
    snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
             (int)(in_day / 3600), (int)(in_day / 60 % 60), (int)(in_day % 60),
             (int)(ms - secs * 1000));
}
