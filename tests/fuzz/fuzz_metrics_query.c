/*
 * fuzz_metrics_query.c — libFuzzer target for the metrics endpoints' query parameters: the
 * query-string parser (pe_query_parse) followed by pe_aggregate_query_parse, and the date
 * parser on its own.
 *
 * Input: byte 0 picks the view (overview, funnel, breakdown); the rest is a raw query string,
 * copied into an exactly-sized heap buffer so a read past its length is an ASan error.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. pe_aggregate_query_parse returns 0 or PE_EINVAL; on PE_EINVAL the message is non-empty,
 *     NUL-terminated and starts with "<name>: " where name is a parameter of the query or one
 *     of from / to.
 *  2. On 0: from ≤ to, to − from < PE_AGGREGATE_MAX_DAYS, both dates format back to strings
 *     that parse to the same day; device, country and source are NUL-terminated and within their
 *     bounds; filters are empty in the overview view (the funnel and the breakdown take them).
 *  3. pe_aggregate_date_parse agrees with format: whatever it accepts formats back to the same
 *     ten bytes.
 *
 * Builds with clang -fsanitize=fuzzer, or with any C compiler plus replay_main.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/aggregate.h"
#include "pe/http.h"

#define TODAY 20781 /* 2026-11-24 */

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool named(const pe_query_t *q, const char *msg)
{
    const char *colon = strstr(msg, ": ");
    if (!colon)
        return false;
    size_t n = (size_t)(colon - msg);
    if ((n == 4 && strncmp(msg, "from", 4) == 0) || (n == 2 && strncmp(msg, "to", 2) == 0))
        return true;
    for (size_t i = 0; i < q->count; i++)
        if (strlen(q->names[i]) >= n && strncmp(q->names[i], msg, n) == 0)
            return true; /* a long name may be cut by the message buffer */
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    pe_aggregate_view_t view = (pe_aggregate_view_t)(data[0] % 3);
    size_t len = size - 1;
    char *qs = malloc(len + 1);
    if (!qs)
        return 0;
    memcpy(qs, data + 1, len);
    qs[len] = '\0';

    /* 3: the date parser on its own */
    int32_t days;
    if (len >= 10) {
        char d[11];
        memcpy(d, qs, 10);
        d[10] = '\0';
        if (pe_aggregate_date_parse(d, &days) == 0) {
            char back[16];
            pe_aggregate_date_format(days, back, sizeof back);
            check(strcmp(back, d) == 0);
        }
    }

    pe_query_t q;
    memset(&q, 0, sizeof q);
    if (pe_query_parse(qs, len, &q) == 0) {
        pe_aggregate_query_t out;
        pe_refusal_t err;
        pe_refusal_clear(&err);
        int rc = pe_aggregate_query_parse(view, q.names, q.values, q.count, TODAY, &out, &err);
        check(rc == 0 || rc == PE_EINVAL);
        if (rc == PE_EINVAL) {
            check(memchr(err.message, '\0', sizeof err.message) != NULL && err.message[0] != '\0');
            check(strcmp(err.code, "invalid_request") == 0);
            check(named(&q, err.message));
        } else {
            check(out.from <= out.to && out.to - out.from < PE_AGGREGATE_MAX_DAYS);
            char a[16], b[16];
            int32_t fa, fb;
            pe_aggregate_date_format(out.from, a, sizeof a);
            pe_aggregate_date_format(out.to, b, sizeof b);
            check(pe_aggregate_date_parse(a, &fa) == 0 && fa == out.from);
            check(pe_aggregate_date_parse(b, &fb) == 0 && fb == out.to);
            check(strlen(out.device) < sizeof out.device);
            check(strlen(out.country) < sizeof out.country);
            check(strlen(out.source) <= PE_AGGREGATE_SOURCE_MAX);
            if (view == PE_AGGREGATE_VIEW_OVERVIEW)
                check(!out.device[0] && !out.country[0] && !out.source[0]);
        }
    }
    pe_query_free(&q);
    free(qs);
    return 0;
}
