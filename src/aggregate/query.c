/*
 * query.c — the query parameters of the metrics endpoints (from, to, device, country, source)
 * and date parsing and formatting (the day arithmetic is core's pe_days_from_civil). Query strings
 * are untrusted input: this is pure code with a libFuzzer target (tests/fuzz/fuzz_metrics_query.c).
 *
 * Invariants:
 *  1. Pure: no I/O, no allocation, no globals, no libc calendar or locale; thread-safe.
 *  2. Every refusal is PE_EINVAL with a message that starts with the parameter's name.
 *  3. On success from ≤ to ≤ from + PE_AGGREGATE_MAX_DAYS − 1, both real dates in 1970..9999.
 */
#include <stdio.h>
#include <string.h>

#include "pe/aggregate.h"

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int pe_aggregate_date_parse(const char *s, int32_t *days)
{
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
        !digits(s + 8, 2))
        return PE_EINVAL;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
    unsigned d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || m < 1 || m > 12 || d < 1)
        return PE_EINVAL;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return PE_EINVAL;
    *days = (int32_t)pe_days_from_civil(y, (int)m, (int)d);
    return 0;
}

void pe_aggregate_date_format(int32_t days, char *out, size_t outlen)
{
    int64_t y;
    int m, d;
    pe_civil_from_days(days, &y, &m, &d);
    snprintf(out, outlen, "%04d-%02d-%02d", (int)y, m % 100, d % 100);
}

int pe_aggregate_step_parse(const char *name, pe_funnel_step_t *step)
{
    for (int s = PE_FUNNEL_CART; s <= PE_FUNNEL_CONFIRMATION; s++) {
        const char *n = pe_events_funnel_step_name((pe_funnel_step_t)s);
        if (name && n && strcmp(name, n) == 0) {
            *step = (pe_funnel_step_t)s;
            return 0;
        }
    }
    return PE_EINVAL;
}

/* The caller's parameter name is echoed, cut to 64 bytes (it may be anything up to the query's
 * size). */
static int refuse(pe_refusal_t *err, const char *name, const char *why)
{
    return pe_refuse(err, PE_EINVAL, "invalid_request", "%.64s: %s", name, why);
}

int pe_aggregate_query_parse(pe_aggregate_view_t view, const char *const *names,
                             const char *const *values, size_t n, int32_t today,
                             pe_aggregate_query_t *q, pe_refusal_t *err)
{
    static const char *const known[] = {"from", "to", "device", "country", "source"};
    /* the funnel and a step's breakdown take the same filters: the breakdown splits the
     * funnel's own (filtered) sessions */
    size_t nknown = view == PE_AGGREGATE_VIEW_OVERVIEW ? 2 : 5;
    const char *given[5] = {NULL, NULL, NULL, NULL, NULL};
    memset(q, 0, sizeof *q);
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < nknown && strcmp(names[i], known[k]) != 0)
            k++;
        if (k == nknown)
            return refuse(err, names[i], "unknown query parameter");
        if (given[k])
            return refuse(err, names[i], "given more than once");
        if (!values[i][0])
            return refuse(err, names[i], "must not be empty");
        given[k] = values[i];
    }
    if (given[1] && pe_aggregate_date_parse(given[1], &q->to) != 0)
        return refuse(err, "to", "must be a date YYYY-MM-DD");
    if (given[0] && pe_aggregate_date_parse(given[0], &q->from) != 0)
        return refuse(err, "from", "must be a date YYYY-MM-DD");
    if (!given[1])
        q->to = today;
    if (!given[0])
        q->from = q->to >= PE_AGGREGATE_DEFAULT_DAYS - 1 ? q->to - (PE_AGGREGATE_DEFAULT_DAYS - 1)
                                                         : 0; /* not before 1970-01-01 */
    if (q->from > q->to)
        return refuse(err, "from",
                      given[1] ? "must not be after to"
                               : "must not be after "
                                 "today (to)");
    if (q->to - q->from + 1 > PE_AGGREGATE_MAX_DAYS)
        return refuse(err, given[0] ? "from" : "to", "the range from..to must not exceed 400 days");
    if (given[2]) {
        static const char *const devices[] = {"desktop", "mobile", "tablet", "other", "unknown"};
        size_t d = 0;
        while (d < PE_ARRAY_LEN(devices) && strcmp(given[2], devices[d]) != 0)
            d++;
        if (d == PE_ARRAY_LEN(devices))
            return refuse(err, "device", "must be desktop, mobile, tablet, other or unknown");
        snprintf(q->device, sizeof q->device, "%s", given[2]);
    }
    if (given[3]) {
        const char *c = given[3];
        bool iso = strlen(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z';
        if (!iso && strcmp(c, "unknown") != 0)
            return refuse(err, "country", "must be an ISO 3166-1 alpha-2 code (DE) or unknown");
        snprintf(q->country, sizeof q->country, "%s", c);
    }
    if (given[4]) {
        if (strlen(given[4]) > PE_AGGREGATE_SOURCE_MAX)
            return refuse(err, "source", "must be at most 256 bytes");
        if (pe_text_has_control(given[4], strlen(given[4])))
            return refuse(err, "source", PE_TEXT_CONTROL_RULE);
        snprintf(q->source, sizeof q->source, "%s", given[4]);
    }
    return 0;
}
