/*
 * test_attribution.c — GET …/attribution and GET / PUT …/settings on planted experiments:
 * exposures and journeys written straight into the events table, rolled up by `profit-engine
 * aggregate`, decided by the measure job at fixed simulated times, read in-process and through
 * a child server.
 *
 * What the tests hold attribution to (src/experiments/attribution.c):
 *  1. Nothing proven, nothing attributed, and the answer says why.
 *  2. Proven changes are credited exactly the lower bound of the sum of their measured profit
 *     per visitor × the 200 visitors each treatment served (by hand below), never the estimate;
 *     a second proven change that may reach the same visitors is not added (one counts).
 *  3. The holdout comparison counts every exposed visitor against the store holdout, and the
 *     credit never exceeds what it supports: a holdout doing better caps the credit at zero.
 *  4. Harm avoided = an automatic rollback's loss a day × the days left of its window: the
 *     smallest loss its measurement allows, and the measured one as the estimate.
 *  5. ROI divides by subscriptionCostPerMonth over the range, null without it; the settings
 *     route refuses bad bodies with the field named.
 *  6. The tenant wall: another store's key is 403 on both routes, a publishable key 403, and
 *     another store's settings are never changed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/changeset.h"
#include "pe/experiments.h"
#include "pe_test.h"

#define DAY_US 86400000000LL

static pe_test_fixture_t fx;
static pe_test_tenant_t a, b, c, d;

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static cJSON *expect(const char *method, const char *path, const char *body,
                     const pe_test_tenant_t *t, long want)
{
    return pe_test_expect(&fx.server, method, path, body, t->sk_auth, want);
}

/* The corpus banner ChangeSet as a 50/50 holdout test on flag key over every visitor, window
 * P<days>D and 150 units planned, approved: its id and start. */
static int64_t approved(const pe_test_tenant_t *t, const char *key, int days, char id[32])
{
    char *text = pe_test_corpus("changesets/valid/shipping_cost_banner.json");
    cJSON *doc = cJSON_Parse(text);
    free(text);
    static const char *const server_owned[] = {"id",        "version",    "storeId",   "approval",
                                               "execution", "auditTrail", "createdAt", "updatedAt"};
    for (size_t i = 0; i < PE_ARRAY_LEN(server_owned); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(doc, server_owned[i]);
    cJSON *ap = cJSON_GetObjectItemCaseSensitive(doc, "actionPlan"),
          *pp = cJSON_GetObjectItemCaseSensitive(doc, "proofPlan");
    cJSON_ReplaceItemInObjectCaseSensitive(ap, "rolloutStrategy", cJSON_CreateString("holdout"));
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(ap, "implementation"),
                                           "featureFlagKey", cJSON_CreateString(key));
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(ap, "targetSegment"),
                                           "rules", cJSON_CreateArray());
    char window[16];
    snprintf(window, sizeof window, "P%dD", days);
    cJSON_ReplaceItemInObjectCaseSensitive(pp, "measurementWindow", cJSON_CreateString(window));
    cJSON_ReplaceItemInObjectCaseSensitive(pp, "minimumSampleSize", cJSON_CreateNumber(150));
    char *body = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets", t->id);
    cJSON *cs = expect("POST", path, body, t, 201);
    free(body);
    snprintf(id, 32, "%s", pe_test_json_str(cs, "id"));
    cJSON_Delete(cs);
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s/transitions", t->id, id);
    cJSON_Delete(expect("POST", path, "{\"to\":\"PENDING_APPROVAL\"}", t, 200));
    cs = expect("POST", path, "{\"to\":\"ACTIVE\"}", t, 200);
    int64_t us = 0;
    assert_int_equal(
        pe_time_parse_rfc3339(pe_test_json_str(get(cs, "execution"), "startedAt"), &us), 0);
    cJSON_Delete(cs);
    return us;
}

/* pe_test_plant_visitors at start_us. */
static void visitors(const char *store, int64_t start_us, const char *key, const char *prefix,
                     int n, int n_control, bool holdout, int pct_control, int pct_treatment)
{
    char start[32];
    pe_time_format_rfc3339(start_us, start, sizeof start);
    pe_test_plant_visitors(fx.conninfo, store, start, key, prefix, n, n_control, holdout,
                           pct_control, pct_treatment);
}

static void aggregate(const pe_test_tenant_t *t)
{
    const char *agg[] = {"aggregate", "--store", t->id, NULL};
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg));
}

/* The measure job at now_us on a service whose clock is now_us too (the end is recorded then). */
static int64_t clock_now;
static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return clock_now;
}

static void measure_at(const pe_test_tenant_t *t, int64_t now_us)
{
    clock_now = now_us;
    pe_changeset_config_t cfg = {.db = fx.pool, .clock = fixed_clock};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
    cJSON *out = NULL;
    assert_int_equal(pe_experiments_measure(fx.pool, svc, t->id, now_us, &out), 0);
    cJSON_Delete(out);
    pe_changeset_service_free(svc);
}

/* The store-local day (days since 1970-01-01) of an instant, in Europe/Berlin. */
static int32_t day_of(int64_t us)
{
    char *s = pe_test_sqlf(fx.conninfo,
                           "SELECT (to_timestamp(%lld / 1e6) AT TIME ZONE 'Europe/Berlin')::date"
                           "       - '1970-01-01'::date",
                           (long long)us);
    int32_t day = (int32_t)atoi(s);
    free(s);
    return day;
}

static cJSON *attribution_at(const pe_test_tenant_t *t, int64_t start_us, int64_t now_us)
{
    cJSON *out = NULL;
    assert_int_equal(pe_experiments_attribution(fx.pool, t->id, day_of(start_us),
                                                day_of(start_us) + 13, now_us, &out),
                     0);
    return out;
}

static double num_at(const cJSON *o, const char *key, const char *inner)
{
    return pe_test_json_num(inner ? get(o, key) : o, inner ? inner : key);
}

/* A store without an experiment: zero, and why. */
static void test_nothing_proven(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/attribution", a.id);
    cJSON *r = expect("GET", path, NULL, &a, 200);
    assert_string_equal(pe_test_json_str(r, "currency"), "EUR");
    assert_int_equal((int)num_at(r, "experiments", "run"), 0);
    const cJSON *att = get(r, "attributed");
    assert_float_equal(num_at(att, "profit", "lowerBound"), 0, 0);
    assert_float_equal(num_at(att, "revenue", "lowerBound"), 0, 0);
    assert_non_null(strstr(pe_test_json_str(att, "reason"), "No experiment has been proven"));
    assert_true(cJSON_IsNull(get(get(r, "roi"), "value")));
    assert_int_equal((int)num_at(r, "holdout", "units"), 0);
    assert_true(cJSON_IsNull(get(get(get(r, "holdout"), "profitPerVisitor"), "effect")));
    /* the default range is the last 30 days: five or six weeks, each Monday */
    int weeks = cJSON_GetArraySize(get(r, "weekly"));
    assert_true(weeks == 5 || weeks == 6);
    assert_true(strlen(pe_test_json_str(r, "method")) > 200);
    cJSON_Delete(r);
    /* a range the merchant can read back; bad ones are 400 naming the parameter */
    snprintf(path, sizeof path, "/api/v1/stores/%s/attribution?from=2026-09-01&to=2026-11-30",
             a.id);
    r = expect("GET", path, NULL, &a, 200);
    assert_string_equal(pe_test_json_str(r, "from"), "2026-09-01");
    assert_string_equal(pe_test_json_str(r, "to"), "2026-11-30");
    assert_string_equal(pe_test_json_str(cJSON_GetArrayItem(get(r, "weekly"), 0), "week"),
                        "2026-08-31");
    cJSON_Delete(r);
    static const char *const bad[] = {"?from=2026-13-01", "?from=2026-12-01&to=2026-01-01",
                                      "?device=mobile", "?from=2020-01-01&to=2026-01-01"};
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        snprintf(path, sizeof path, "/api/v1/stores/%s/attribution%s", a.id, bad[i]);
        pe_test_response_t resp;
        assert_int_equal(pe_test_call(&fx.server, "GET", path, NULL, a.sk_auth, &resp), 400);
        pe_test_expect_error(&resp, 400, "invalid_request", NULL, 0);
        pe_test_response_free(&resp);
    }
    /* `profit-engine attribution`: the same answer for an operator; bad ranges and unknown
     * stores are usage errors (exit 2) */
    const char *cli[] = {"attribution", "--store", a.id,         "--from",
                         "2026-09-01",  "--to",    "2026-11-30", NULL};
    r = pe_test_cli_json(fx.conninfo, 0, cli);
    assert_string_equal(pe_test_json_str(r, "from"), "2026-09-01");
    assert_float_equal(num_at(get(r, "attributed"), "profit", "lowerBound"), 0, 0);
    assert_non_null(strstr(pe_test_json_str(get(r, "attributed"), "reason"), "No experiment"));
    cJSON_Delete(r);
    static const char *const refused[][7] = {
        {"attribution", "--store", "00000000-0000-4000-8000-000000000000", "--from", "2026-09-01",
         "--to", "2026-11-30"},
        {"attribution", "--store", "not-a-store", "--from", "2026-09-01", "--to", "2026-11-30"},
        {"attribution", "--store", "00000000-0000-4000-8000-000000000000", "--from", "2026-12-01",
         "--to", "2026-11-30"},
        {"attribution", "--store", "00000000-0000-4000-8000-000000000000", "--from", "2026-13-01",
         "--to", "2026-11-30"},
        {"attribution", "--store", "00000000-0000-4000-8000-000000000000", "--from", "2026-09-01",
         NULL},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(refused); i++) {
        const char *args[8] = {NULL};
        memcpy(args, refused[i], sizeof refused[i]);
        pe_test_cli_json(fx.conninfo, 2, args);
    }
}

static void test_settings(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/settings", a.id);
    cJSON *s = expect("GET", path, NULL, &a, 200);
    assert_true(cJSON_IsNull(get(s, "subscriptionCostPerMonth")));
    assert_string_equal(pe_test_json_str(s, "currency"), "EUR");
    cJSON_Delete(s);
    s = expect("PUT", path, "{\"subscriptionCostPerMonth\":49.5}", &a, 200);
    assert_float_equal(pe_test_json_num(s, "subscriptionCostPerMonth"), 49.5, 0);
    cJSON_Delete(s);
    static const struct {
        const char *body, *code;
    } bad[] = {
        {"{\"subscriptionCostPerMonth\":-1}", "out_of_range"},
        {"{\"subscriptionCostPerMonth\":2e9}", "out_of_range"},
        {"{\"subscriptionCostPerMonth\":\"49\"}", "invalid_type"},
        {"{\"subscriptionCostPerMonth\":49.999}", "invalid_format"},
        {"{\"subscriptionCostPerMonth\":1,\"subscriptionCostPerMonth\":2}", "duplicate"},
        {"{\"plan\":\"pro\"}", "unknown_field"},
        {"{}", "missing_field"},
        {"[]", "invalid_type"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        pe_test_response_t resp;
        char msg[256];
        assert_int_equal(pe_test_call(&fx.server, "PUT", path, bad[i].body, a.sk_auth, &resp), 400);
        pe_test_expect_error(&resp, 400, bad[i].code, msg, sizeof msg);
        assert_true(strstr(msg, "subscriptionCostPerMonth") || strstr(msg, "plan") ||
                    strstr(msg, "settings"));
        pe_test_response_free(&resp);
    }
    /* a signed-in merchant reads and writes them too (with the session's CSRF token) */
    pe_test_tenant_sign_in(&a, &fx.server, NULL);
    char url[512];
    snprintf(url, sizeof url, "%s", path);
    pe_test_response_t resp;
    const char *const read_h[] = {a.cookie, NULL};
    assert_int_equal(pe_test_request(&fx.server, "GET", url, read_h, &resp), 200);
    assert_non_null(strstr(resp.body.data, "49.5"));
    pe_test_response_free(&resp);
    assert_int_equal(pe_test_call(&fx.server, "PUT", path, "{\"subscriptionCostPerMonth\":null}",
                                  a.cookie, &resp),
                     403); /* no CSRF token */
    pe_test_response_free(&resp);
    snprintf(url, sizeof url, "/api/v1/stores/%s/attribution", a.id);
    assert_int_equal(pe_test_request(&fx.server, "GET", url, read_h, &resp), 200);
    pe_test_response_free(&resp);

    /* the tenant wall: b's key cannot read or change a's settings or attribution */
    assert_int_equal(
        pe_test_call(&fx.server, "PUT", path, "{\"subscriptionCostPerMonth\":0}", b.sk_auth, &resp),
        403);
    pe_test_response_free(&resp);
    assert_int_equal(pe_test_call(&fx.server, "GET", path, NULL, b.sk_auth, &resp), 403);
    pe_test_response_free(&resp);
    assert_int_equal(pe_test_call(&fx.server, "GET", path, NULL, a.pk_auth, &resp), 403);
    pe_test_response_free(&resp);
    assert_int_equal(pe_test_call(&fx.server, "GET", url, NULL, b.sk_auth, &resp), 403);
    pe_test_response_free(&resp);
    assert_int_equal(pe_test_call(&fx.server, "GET", url, NULL, a.pk_auth, &resp), 403);
    pe_test_response_free(&resp);
    pe_test_sql_expect(fx.conninfo, "49.50",
                       "SELECT subscription_cost_per_month FROM store_settings"
                       " WHERE store_id = '%s'",
                       a.id);
    pe_test_sql_expect(fx.conninfo, "0",
                       "SELECT count(*) FROM store_settings WHERE store_id = '%s'", b.id);
    /* null clears it */
    s = expect("PUT", path, "{\"subscriptionCostPerMonth\":null}", &a, 200);
    assert_true(cJSON_IsNull(get(s, "subscriptionCostPerMonth")));
    cJSON_Delete(s);
}

/* Three proven changes, by hand, all on an unknown step (so one group: their credit is per
 * visitor, never added for the same visitor). Each experiment has 400 visitors, control orders
 * 30 %, treatment 60 % (one SKU-A at 50; its cost unknown, so 30 % margin: 15 an order).
 *   att-win and att-win2 split the same visitors w0…w399 the same way, each planting a session
 *     with the same outcome: a visitor who orders orders twice (30 profit), so control's profit
 *     per visitor is 9 and each of the 200 treated visitors is worth 9 more, in both;
 *   att-win3 has its own visitors x0…x399, one session each: 4.5 more per treated visitor.
 * Credit: the w visitors once, for att-win or att-win2 (the same bounds), plus the x visitors
 * for att-win3: the lower bound of the sum of two independent measurements. */
static double low_of(const pe_test_tenant_t *t, const char *key)
{
    char *v = pe_test_sqlf(fx.conninfo,
                           "SELECT profit_ci_low FROM experiment_results WHERE store_id = '%s'"
                           "   AND flag_key = '%s'",
                           t->id, key);
    double x = strtod(v, NULL);
    free(v);
    assert_true(x > 0 && x < 1);
    return x;
}

static void test_proven_credited(void **state)
{
    (void)state;
    char id[32], path[256];
    int64_t start = approved(&b, "att-win", 7, id);
    visitors(b.id, start, "att-win", "w", 400, 200, false, 30, 60);
    int64_t start2 = approved(&b, "att-win2", 7, id);
    visitors(b.id, start2, "att-win2", "w", 400, 200, false, 30, 60);
    int64_t start3 = approved(&b, "att-win3", 7, id);
    visitors(b.id, start3, "att-win3", "x", 400, 200, false, 30, 60);
    /* the store holdout: 100 visitors, 30 order */
    visitors(b.id, start, "att-win", "h", 100, 100, true, 30, 30);
    aggregate(&b);
    measure_at(&b, start + DAY_US);
    measure_at(&b, start + 8 * DAY_US);
    pe_test_sql_expect(fx.conninfo, "PROVEN,PROVEN,PROVEN",
                       "SELECT string_agg(status, ',') FROM changesets WHERE store_id = '%s'",
                       b.id);
    snprintf(path, sizeof path, "/api/v1/stores/%s/settings", b.id);
    cJSON_Delete(expect("PUT", path, "{\"subscriptionCostPerMonth\":300}", &b, 200));

    cJSON *r = attribution_at(&b, start, start + 9 * DAY_US);
    char *text = cJSON_Print(r);
    print_message("%s\n", text);
    free(text);
    /* The proofs stored one-sided 95 % bounds (relative); each change's own 99 % bound of the
     * same units (the control group measured nothing new yet) is the estimate less the proof's
     * margin widened by z(0.99) / z(0.95) (Welch's t at ~400 df differs from z by under 0.5 %
     * of the margin). The store's credit is the 99 % bound of the sum: its margin is the root
     * of the sum of the two independent margins squared, not their sum. */
    const double widen = 2.3263478740408408 / 1.6448536269514722;
    assert_float_equal(low_of(&b, "att-win"), low_of(&b, "att-win2"), 1e-9);
    double w_low = 1 - (1 - low_of(&b, "att-win")) * widen,
           x_low = 1 - (1 - low_of(&b, "att-win3")) * widen;
    double margin_w = (1 - w_low) * 9 * 200, margin_x = (1 - x_low) * 4.5 * 200;
    double margin = sqrt(margin_w * margin_w + margin_x * margin_x);
    double want = 1800 + 900 - margin;
    const cJSON *att = get(r, "attributed");
    assert_float_equal(num_at(att, "profit", "lowerBound"), want, 0.005 * margin + 0.03);
    /* more than the sum of the two changes' own bounds */
    assert_true(want > 1800 + 900 - margin_w - margin_x + 50);
    assert_float_equal(num_at(att, "profit", "estimate"), 1800 + 900, 0.01);
    assert_float_equal(num_at(att, "revenue", "estimate"), 6000 + 3000, 0.01); /* 30, 15 each */
    assert_true(num_at(att, "revenue", "lowerBound") > 0 &&
                num_at(att, "revenue", "lowerBound") < 9000);
    assert_true(cJSON_IsNull(get(att, "reason")));
    assert_false(cJSON_IsTrue(get(att, "cappedByHoldout")));
    /* each change with its own figures, all in one group */
    const cJSON *list = get(att, "changesets");
    assert_int_equal(cJSON_GetArraySize(list), 3);
    double credited = 0;
    for (int i = 0; i < 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(list, i);
        assert_float_equal(num_at(e, "treatedUnits", NULL), 200, 0);
        credited += num_at(e, "creditedUnits", NULL);
        assert_float_equal(num_at(e, "profit", "lowerBound"),
                           (i < 2 ? w_low * 9 : x_low * 4.5) * 200,
                           0.005 * (i < 2 ? margin_w : margin_x) + 0.03);
        assert_float_equal(num_at(e, "group", NULL),
                           num_at(cJSON_GetArrayItem(list, 0), "group", NULL), 0);
        assert_float_equal(num_at(e, "profit", "estimate"), i < 2 ? 1800 : 900, 0.01);
        /* still serving its split: measured by its control group until now (the same units
         * as at the proof here, so the same bound) */
        assert_string_equal(pe_test_json_str(e, "measuredBy"), "controlGroup");
    }
    /* the w visitors credited once: to one of att-win and att-win2, all to the same one */
    assert_float_equal(credited, 400, 0);
    assert_float_equal(num_at(cJSON_GetArrayItem(list, 2), "creditedUnits", NULL), 200, 0);
    assert_float_equal(num_at(cJSON_GetArrayItem(list, 0), "creditedUnits", NULL) *
                           num_at(cJSON_GetArrayItem(list, 1), "creditedUnits", NULL),
                       0, 0);
    assert_int_equal((int)num_at(r, "experiments", "proven"), 3);
    assert_int_equal((int)num_at(r, "experiments", "run"), 3);
    double treated = 0; /* 200 w visitors once, 200 x */
    const cJSON *wk;
    cJSON_ArrayForEach(wk, get(r, "weekly")) treated += pe_test_json_num(wk, "treatedUnits");
    assert_float_equal(treated, 400, 0);
    /* the holdout: 100 visitors ordering at 30 %, against the 800 exposed (w and x, each once)
     * at 45 %; its interval supports far more than the credit, so it caps nothing */
    const cJSON *h = get(r, "holdout");
    assert_int_equal((int)pe_test_json_num(h, "units"), 100);
    assert_int_equal((int)pe_test_json_num(h, "exposedUnits"), 800);
    assert_true(cJSON_IsTrue(get(h, "enoughUnits")));
    assert_float_equal(num_at(h, "conversionRate", "holdout"), 0.3, 1e-12);
    assert_float_equal(num_at(h, "conversionRate", "exposed"), 0.45, 1e-12);
    assert_float_equal(num_at(h, "conversionRate", "effect"), 0.5, 1e-9);
    assert_true(num_at(h, "conversionRate", "ciLow") < 0.5 &&
                num_at(h, "conversionRate", "ciHigh") > 0.5);
    /* ROI over the range: 300 a month over the days from the start's midnight to now */
    const cJSON *roi = get(r, "roi");
    double cost = pe_test_json_num(roi, "subscriptionCost");
    assert_true(cost > 300 * 9 / (365.25 / 12) && cost < 300 * 10 / (365.25 / 12) + 0.01);
    want = num_at(att, "profit", "lowerBound"); /* from here on: the credit as answered */
    /* want and cost are rounded to cents, value is not: each moves it by up to half a cent */
    assert_float_equal(pe_test_json_num(roi, "value"), want / cost,
                       (want / cost) * (0.005 / cost + 0.005 / want) + 1e-9);
    /* the weekly series adds up to the total */
    double sum = 0, cum = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, get(r, "weekly"))
    {
        sum += pe_test_json_num(w, "attributedProfit");
        cum = pe_test_json_num(w, "cumulativeProfit");
    }
    assert_float_equal(sum, want, 0.03);
    assert_float_equal(cum, want, 0.03);
    /* what the route answers: kept as a snapshot and read back until it is two measure
     * intervals old, its ROI always with the settings as they are now */
    int64_t now = start + 9 * DAY_US;
    cJSON *first = NULL, *again = NULL;
    assert_int_equal(pe_experiments_attribution_get(fx.pool, b.id, day_of(start),
                                                    day_of(start) + 13, now, &first),
                     0);
    assert_float_equal(num_at(get(first, "attributed"), "profit", "lowerBound"), want, 0.03);
    cJSON_Delete(expect("PUT", path, "{\"subscriptionCostPerMonth\":600}", &b, 200));
    assert_int_equal(pe_experiments_attribution_get(fx.pool, b.id, day_of(start),
                                                    day_of(start) + 13, now + 60000000LL, &again),
                     0);
    assert_string_equal(pe_test_json_str(again, "computedAt"),
                        pe_test_json_str(first, "computedAt"));
    assert_float_equal(num_at(again, "roi", "subscriptionCostPerMonth"), 600, 0);
    assert_float_equal(num_at(again, "roi", "value"), num_at(first, "roi", "value") / 2, 1e-3);
    cJSON_Delete(again);
    assert_int_equal(pe_experiments_attribution_get(
                         fx.pool, b.id, day_of(start), day_of(start) + 13,
                         now + (PE_EXPERIMENTS_ATTRIBUTION_MAX_AGE_S + 1) * 1000000LL, &again),
                     0);
    assert_string_not_equal(pe_test_json_str(again, "computedAt"),
                            pe_test_json_str(first, "computedAt"));
    cJSON_Delete(again);
    cJSON_Delete(first);
    /* the measure job keeps the store's default range (its last 30 days) and the asked one
     * warm: b has no running experiment, only live proven ones */
    pe_changeset_config_t cfg = {.db = fx.pool};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
    size_t n = 0;
    char why[256] = "";
    int64_t later = now + DAY_US / 2;
    assert_int_equal(pe_experiments_measure_due(fx.pool, svc, later, &n, why, sizeof why), 0);
    pe_changeset_service_free(svc);
    pe_test_sql_expect(fx.conninfo, "2|2",
                       "SELECT count(*) || '|' || count(*) FILTER (WHERE computed_at ="
                       "       to_timestamp(%lld / 1e6))"
                       "  FROM attribution_snapshots WHERE store_id = '%s'",
                       (long long)later, b.id);
    /* after the proof att-win3 keeps serving its split: 400 more visitors half a day later are
     * credited too, each at a bound the larger sample makes tighter than the proof's */
    visitors(b.id, start3 + 8 * DAY_US + DAY_US / 2, "att-win3", "y", 400, 200, false, 30, 60);
    aggregate(&b);
    cJSON *more = attribution_at(&b, start, start + 9 * DAY_US);
    const cJSON *e3 = cJSON_GetArrayItem(get(get(more, "attributed"), "changesets"), 2);
    assert_float_equal(num_at(e3, "treatedUnits", NULL), 400, 0);
    assert_float_equal(num_at(e3, "profit", "estimate"), 4.5 * 400, 0.01);
    assert_true(num_at(e3, "profit", "lowerBound") / 400 > x_low * 4.5 + 0.1);
    assert_true(num_at(e3, "profit", "lowerBound") / 400 < 4.5);
    cJSON_Delete(more);
    /* made PERMANENT, att-win3 has no control group left: it keeps its proof's estimate and
     * bound (widened to 99 %), for all 400 visitors it served */
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s/transitions", b.id, id);
    cJSON_Delete(expect("POST", path, "{\"to\":\"PERMANENT\"}", &b, 200));
    cJSON *permanent = attribution_at(&b, start, start + 9 * DAY_US);
    e3 = cJSON_GetArrayItem(get(get(permanent, "attributed"), "changesets"), 2);
    assert_string_equal(pe_test_json_str(e3, "status"), "PERMANENT");
    assert_string_equal(pe_test_json_str(e3, "measuredBy"), "proof");
    assert_float_equal(num_at(e3, "treatedUnits", NULL), 400, 0);
    assert_float_equal(num_at(e3, "profit", "estimate"), 4.5 * 400, 0.01);
    assert_float_equal(num_at(e3, "profit", "lowerBound"), x_low * 4.5 * 400,
                       0.005 * margin_x * 2 + 0.03);
    assert_int_equal((int)num_at(permanent, "experiments", "permanent"), 1);
    assert_int_equal((int)num_at(permanent, "experiments", "proven"), 2);
    cJSON_Delete(permanent);
    /* a range before the start credits nothing */
    cJSON *before = NULL;
    assert_int_equal(pe_experiments_attribution(fx.pool, b.id, day_of(start) - 20,
                                                day_of(start) - 10, start + 9 * DAY_US, &before),
                     0);
    assert_float_equal(num_at(get(before, "attributed"), "profit", "lowerBound"), 0, 0);
    cJSON_Delete(before);
    cJSON_Delete(r);
    /* the route: the same changes credited (its "now" is the wall clock's, which may still be
     * before some of the planted visitors) */
    snprintf(path, sizeof path, "/api/v1/stores/%s/attribution", b.id);
    r = expect("GET", path, NULL, &b, 200);
    assert_int_equal((int)num_at(r, "experiments", "proven"), 2);
    assert_int_equal((int)num_at(r, "experiments", "permanent"), 1);
    assert_int_equal(cJSON_GetArraySize(get(get(r, "attributed"), "changesets")), 3);
    assert_true(num_at(get(r, "attributed"), "profit", "lowerBound") <= want + 0.03);
    cJSON_Delete(r);
}

/* The same proven change, but the store holdout (200 visitors) orders at 60 %, better than
 * the exposed 45 %: the holdout supports no gain, so nothing is credited. */
static void test_capped_by_holdout(void **state)
{
    (void)state;
    char id[32];
    int64_t start = approved(&c, "att-cap", 7, id);
    visitors(c.id, start, "att-cap", "w", 400, 200, false, 30, 60);
    visitors(c.id, start, "att-cap", "h", 200, 200, true, 60, 60);
    aggregate(&c);
    measure_at(&c, start + DAY_US);
    measure_at(&c, start + 8 * DAY_US);
    cJSON *r = attribution_at(&c, start, start + 9 * DAY_US);
    const cJSON *att = get(r, "attributed"), *h = get(r, "holdout");
    assert_int_equal((int)num_at(r, "experiments", "proven"), 1);
    assert_true(cJSON_IsTrue(get(h, "enoughUnits")));
    assert_true(num_at(h, "profitPerVisitor", "ciHigh") < 0);
    assert_true(cJSON_IsTrue(get(att, "cappedByHoldout")));
    assert_float_equal(num_at(att, "profit", "lowerBound"), 0, 0);
    assert_float_equal(num_at(att, "profit", "estimate"), 900, 0.01); /* shown, not credited */
    assert_non_null(strstr(pe_test_json_str(att, "reason"), "holdout"));
    assert_true(cJSON_IsNull(get(get(r, "roi"), "value"))); /* no subscription cost set */
    cJSON_Delete(r);
}

/* A change that cuts ordering from 60 % to 20 % is rolled back automatically a day in, with 13
 * days of its 14-day window left: it was measured losing 6 profit (20 revenue) on each of 200
 * treated visitors a day. */
static void test_harm_avoided(void **state)
{
    (void)state;
    char id[32];
    int64_t start = approved(&d, "att-harm", 14, id);
    visitors(d.id, start, "att-harm", "w", 400, 200, false, 60, 20);
    aggregate(&d);
    measure_at(&d, start + DAY_US);
    pe_test_sql_expect(fx.conninfo, "ROLLED_BACK|automatic",
                       "SELECT concat_ws('|', outcome, rollback_kind) FROM experiment_results"
                       " WHERE store_id = '%s'",
                       d.id);
    cJSON *r = attribution_at(&d, start, start + 2 * DAY_US);
    const cJSON *harm = get(r, "harmAvoided");
    assert_int_equal((int)pe_test_json_num(harm, "rollbacks"), 1);
    /* the estimate from the measured loss; the figure from the smallest loss the measurement
     * allows (its interval's end nearest to zero) */
    assert_float_equal(num_at(harm, "estimate", "profit"), 6.0 * 200 * 13, 0.05);
    assert_float_equal(num_at(harm, "estimate", "revenue"), 20.0 * 200 * 13, 0.05);
    assert_true(pe_test_json_num(harm, "profit") > 0.25 * 6.0 * 200 * 13 &&
                pe_test_json_num(harm, "profit") < 6.0 * 200 * 13);
    assert_true(pe_test_json_num(harm, "revenue") > 0.25 * 20.0 * 200 * 13 &&
                pe_test_json_num(harm, "revenue") < 20.0 * 200 * 13);
    assert_int_equal((int)num_at(r, "experiments", "rolledBackAutomatically"), 1);
    assert_float_equal(num_at(get(r, "attributed"), "profit", "lowerBound"), 0, 0);
    double weekly = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, get(r, "weekly")) weekly += pe_test_json_num(w, "harmAvoidedProfit");
    assert_float_equal(weekly, pe_test_json_num(harm, "profit"), 0.05);
    cJSON_Delete(r);
}

static int group_setup(void **state)
{
    pe_test_fixture_open(&fx, PE_LOG_WARN, 4);
    *state = &fx;
    pe_test_tenant_make(&a, fx.pool, "Attribution A", "Europe/Berlin", "EUR",
                        "attribution-a@example.com", "correct horse battery");
    pe_test_tenant_make(&b, fx.pool, "Attribution B", "Europe/Berlin", "EUR", NULL, NULL);
    pe_test_tenant_make(&c, fx.pool, "Attribution C", "Europe/Berlin", "EUR", NULL, NULL);
    pe_test_tenant_make(&d, fx.pool, "Attribution D", "Europe/Berlin", "EUR", NULL, NULL);
    pe_test_server_start(&fx.server, fx.conninfo, (const char *const[]){"PE_JOBS=none", NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_proven),  cmocka_unit_test(test_settings),
        cmocka_unit_test(test_proven_credited), cmocka_unit_test(test_capped_by_holdout),
        cmocka_unit_test(test_harm_avoided),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
