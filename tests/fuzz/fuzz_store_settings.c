/*
 * fuzz_store_settings.c — libFuzzer target for the body of PUT /api/v1/stores/{id}/settings
 * (pe_json_parse, then pe_tenancy_settings_parse) and the attribution route's query string
 * (pe_query_parse, then pe_aggregate_query_parse with the overview's parameters, from and to).
 *
 * Input: byte 0 picks the surface (even: a settings body, odd: the attribution query); the
 * rest is the raw body or query string, copied into an exactly-sized heap buffer so a read
 * past its length is an ASan error.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. pe_tenancy_settings_parse returns 0 or PE_EINVAL with a non-empty code and a message
 *     naming a field (it contains ": "); on 0 the body named subscriptionCostPerMonth, and the
 *     cost is NaN exactly when it was null, else a whole number of cents in 0 … 1e9.
 *  2. A parsed settings body printed back and parsed again gives the same settings.
 *  3. The attribution range, when accepted, is from ≤ to and shorter than
 *     PE_AGGREGATE_MAX_DAYS days.
 *
 * Builds with clang -fsanitize=fuzzer, or with any C compiler plus replay_main.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/aggregate.h"
#include "pe/http.h"
#include "pe/tenancy.h"

#define TODAY 20795 /* 2026-12-08 */

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void settings(const char *text, size_t len)
{
    cJSON *body = NULL;
    char why[128];
    if (pe_json_parse(text, len, &body, why, sizeof why) != 0)
        return;
    pe_store_settings_t s;
    pe_refusal_t err;
    pe_refusal_clear(&err);
    int rc = pe_tenancy_settings_parse(body, &s, &err);
    if (rc != 0) {
        check(rc == PE_EINVAL && err.code[0] && strstr(err.message, ": "));
        cJSON_Delete(body);
        return;
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(body, "subscriptionCostPerMonth");
    check(s.has_subscription_cost && c);
    check(isnan(s.subscription_cost_per_month) == cJSON_IsNull(c));
    if (!cJSON_IsNull(c)) {
        double v = s.subscription_cost_per_month;
        check(v >= 0 && v <= PE_TENANCY_MAX_SUBSCRIPTION && fabs(v * 100 - round(v * 100)) < 1e-3);
    }
    /* printed back, the same settings */
    char again[96];
    if (isnan(s.subscription_cost_per_month))
        snprintf(again, sizeof again, "{\"subscriptionCostPerMonth\":null}");
    else
        snprintf(again, sizeof again, "{\"subscriptionCostPerMonth\":%.2f}",
                 s.subscription_cost_per_month);
    cJSON *back = NULL;
    check(pe_json_parse(again, strlen(again), &back, why, sizeof why) == 0);
    pe_store_settings_t t;
    check(pe_tenancy_settings_parse(back, &t, &err) == 0);
    check(isnan(t.subscription_cost_per_month)
              ? isnan(s.subscription_cost_per_month)
              : t.subscription_cost_per_month == s.subscription_cost_per_month);
    cJSON_Delete(back);
    cJSON_Delete(body);
}

static void range(const char *text, size_t len)
{
    pe_query_t q;
    memset(&q, 0, sizeof q);
    if (pe_query_parse(text, len, &q) == 0) {
        pe_aggregate_query_t a;
        pe_refusal_t err;
        pe_refusal_clear(&err);
        if (pe_aggregate_query_parse(PE_AGGREGATE_VIEW_OVERVIEW, q.names, q.values, q.count, TODAY,
                                     &a, &err) == 0)
            check(a.from <= a.to && a.to - a.from < PE_AGGREGATE_MAX_DAYS);
        else
            check(err.message[0] != '\0');
    }
    pe_query_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = size - 1;
    char *text = malloc(len + 1);
    if (!text)
        return 0;
    memcpy(text, data + 1, len);
    text[len] = '\0';
    if (data[0] % 2 == 0)
        settings(text, len);
    else
        range(text, len);
    free(text);
    return 0;
}
