/*
 * test_rfc3339.c — RFC 3339 text to and from Unix microseconds (core/rfc3339.c).
 *
 * Invariants checked:
 *  1. The formatter agrees with gmtime_r for instants from 1970 to 2100 (every ~17 hours and
 *     the edges of days, months, leap days and years) and rounds toward the past before 1970.
 *  2. parse(format(t)) == t truncated to the millisecond, for the same instants.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pe_test.h"

static void test_format_agrees_with_gmtime(void **state)
{
    (void)state;
    const int64_t end = 4102444800LL * 1000000; /* 2100-01-01 */
    for (int64_t us = 0; us < end; us += 61234567891LL) {
        char got[32], want[96];
        pe_time_format_rfc3339(us, got, sizeof got);
        time_t secs = (time_t)(us / 1000000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(us % 1000000 / 1000));
        if (strcmp(got, want) != 0)
            fail_msg("%lld: %s, want %s", (long long)us, got, want);
        int64_t back = 0;
        assert_int_equal(pe_time_parse_rfc3339(got, &back), 0);
        assert_true(back == us - us % 1000);
    }
    static const struct {
        int64_t us;
        const char *text;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-86400LL * 1000000, "1969-12-31T00:00:00.000Z"},
        {951782400LL * 1000000, "2000-02-29T00:00:00.000Z"},
        {1798761599999000LL, "2026-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        char got[32];
        pe_time_format_rfc3339(cases[i].us, got, sizeof got);
        assert_string_equal(got, cases[i].text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_agrees_with_gmtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
