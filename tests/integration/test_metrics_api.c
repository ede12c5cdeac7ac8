/*
 * test_metrics_api.c — the metrics endpoints through HTTP against a child server: the shapes
 * and values of the overview, the funnel and a step's breakdown over a small aggregated event
 * set; a step's breakdown under every combination of the funnel's filters against the funnel
 * and against counts over agg_sessions; 400s that name the parameter, and tenant isolation
 * (another store's secret key, no key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/aggregate.h"
#include "pe/db.h"
#include "pe/tenancy.h"
#include "pe_test.h"

static pe_test_fixture_t fx;
static pe_test_tenant_t shop_a, shop_b, shop_c;

/* Store C's segments: every session of it takes one of each (by its number), so that every
 * combination of filters below has sessions, some none. */
static const char *const C_DEVICES[] = {"mobile", "desktop", "tablet"};
static const char *const C_LOCALES[] = {"de-DE", "fr-FR", NULL}; /* DE, FR, unknown */
static const char *const C_UTMS[] = {"Google", NULL};            /* google, direct */
#define C_SESSIONS 60

/* Session s of store: page view, cart, checkout, then (if order) an order of value v, today. */
static void journey(const char *store, int s, const char *device, int steps, double v)
{
    static const char *const names[] = {"storefront.page.viewed",     "storefront.cart.item_added",
                                        "checkout.session.started",   "checkout.shipping.submitted",
                                        "checkout.payment.submitted", "checkout.order.completed"};
    for (int k = 0; k <= steps; k++) {
        char q[1400], props[300] = "{}";
        if (k == 1)
            snprintf(props, sizeof props,
                     "{\"productId\":\"p1\",\"quantity\":1,\"price\":5,\"currency\":\"EUR\"}");
        if (k == 5)
            snprintf(props, sizeof props,
                     "{\"orderId\":\"o%d\",\"value\":%.2f,\"currency\":\"EUR\",\"items\":[{"
                     "\"productId\":\"p1\",\"quantity\":2,\"price\":%.2f}]}",
                     s, v, v / 2);
        snprintf(q, sizeof q,
                 "INSERT INTO events (store_id, occurred_at, event_id, name, funnel_step,"
                 " session_id, anonymous_id, client_ts, received_at, device_type, properties)"
                 " VALUES ('%s', date_trunc('day', now()) + interval '%d minutes',"
                 " gen_random_uuid(), '%s', %d, 's%d', 'v%d', now(), now(), '%s', '%s')",
                 store, s * 10 + k, names[k], k, s, s, device, props);
        free(pe_test_sql(fx.conninfo, q));
    }
}

/* Session s of store C, yesterday (UTC) at hour h: a page view with the session's locale and
 * utm_source, then the first `steps` funnel steps; one INSERT. */
static void journey_c(int s, int h, int steps)
{
    static const char *const names[] = {"storefront.page.viewed",     "storefront.cart.item_added",
                                        "checkout.session.started",   "checkout.shipping.submitted",
                                        "checkout.payment.submitted", "checkout.order.completed"};
    const char *device = C_DEVICES[s % 3], *locale = C_LOCALES[(s / 3) % 3];
    const char *utm = C_UTMS[(s / 9) % 2];
    char q[4096];
    int len = snprintf(q, sizeof q,
                       "INSERT INTO events (store_id, occurred_at, event_id, name, funnel_step,"
                       " session_id, anonymous_id, client_ts, received_at, device_type,"
                       " utm_source, context, properties) VALUES");
    for (int k = 0; k <= steps; k++) {
        char ctx[64] = "NULL", u[32] = "NULL", props[160] = "{}";
        if (k == 0 && locale)
            snprintf(ctx, sizeof ctx, "'{\"locale\":\"%s\"}'", locale);
        if (k == 0 && utm)
            snprintf(u, sizeof u, "'%s'", utm);
        if (k == 5)
            snprintf(props, sizeof props,
                     "{\"orderId\":\"c%d\",\"value\":10,\"currency\":\"EUR\",\"items\":[]}", s);
        len += snprintf(q + len, sizeof q - (size_t)len,
                        "%s ('%s', date_trunc('day', now()) - interval '1 day'"
                        " + interval '%d hours %d minutes', gen_random_uuid(), '%s', %d, 'c%d',"
                        " 'w%d', now(), now(), '%s', %s, %s, '%s')",
                        k ? "," : "", shop_c.id, h, k, names[k], k, s, s, device, u, ctx, props);
        assert_true(len < (int)sizeof q);
    }
    free(pe_test_sql(fx.conninfo, q));
}

static int setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_INFO, 2);
    pe_test_tenant_make(&shop_a, fx.pool, "Metrics A", "UTC", "EUR", NULL, NULL);
    pe_test_tenant_make(&shop_b, fx.pool, "Metrics B", "UTC", "EUR", NULL, NULL);
    /* A today: 4 sessions; 2 mobile reach the order (40 + 60), 1 desktop stops at checkout,
     * 1 desktop only views a page */
    journey(shop_a.id, 1, "mobile", 5, 40);
    journey(shop_a.id, 2, "mobile", 5, 60);
    journey(shop_a.id, 3, "desktop", 2, 0);
    journey(shop_a.id, 4, "desktop", 0, 0);
    journey(shop_b.id, 1, "mobile", 5, 999);
    pe_test_tenant_make(&shop_c, fx.pool, "Metrics C", "UTC", "EUR", NULL, NULL);
    for (int s = 0; s < C_SESSIONS; s++) /* hours 0..23 unevenly; depth 0..5 */
        journey_c(s, (s * 7) % 24, (s * 5 + s / 4) % 6);
    pe_aggregate_options_t opt = {.wait = true};
    pe_aggregate_report_t rep;
    char err[512];
    assert_int_equal(pe_aggregate_run(fx.pool, &opt, &rep, err, sizeof err), 0);
    pe_test_server_start(&fx.server, fx.conninfo, NULL);
    return 0;
}

/* GETs path for store with key; returns the status, parses the body into *j (may be NULL). */
static long get(const char *key, const char *store, const char *path, cJSON **j)
{
    char url[1024], auth[128];
    snprintf(url, sizeof url, "%s/api/v1/stores/%s%s", fx.server.base_url, store, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    const char *headers[] = {auth, NULL};
    pe_test_response_t r;
    assert_int_equal(pe_test_http("GET", url, NULL, key ? headers : NULL, &r), 0);
    long status = r.status;
    if (j) {
        *j = cJSON_Parse(r.body.data ? r.body.data : "");
        assert_non_null(*j);
    }
    pe_test_response_free(&r);
    return status;
}

static double num(const cJSON *j, const char *a, const char *b, const char *c)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (c)
        x = cJSON_GetObjectItemCaseSensitive(x, c);
    if (!cJSON_IsNumber(x))
        fail_msg("%s.%s.%s is not a number", a, b ? b : "", c ? c : "");
    return x->valuedouble;
}

static void test_overview(void **state)
{
    (void)state;
    cJSON *j = NULL;
    assert_int_equal(get(shop_a.sk, shop_a.id, "/metrics/overview", &j), 200);
    assert_float_equal(num(j, "revenue", "today", "value"), 100.0, 1e-9);
    assert_float_equal(num(j, "revenue", "range", "value"), 100.0, 1e-9);
    assert_float_equal(num(j, "revenue", "week", "value"), 100.0, 1e-9);
    assert_float_equal(num(j, "revenue", "month", "value"), 100.0, 1e-9);
    assert_float_equal(num(j, "revenue", "today", "previous"), 0.0, 1e-9);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "revenue"), "today"), "change")));
    assert_float_equal(num(j, "orders", "today", "value"), 2.0, 1e-9);
    assert_float_equal(num(j, "aov", "range", "value"), 50.0, 1e-9);
    assert_float_equal(num(j, "conversionRate", "today", "value"), 0.5, 1e-9);
    const cJSON *fresh = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "customers"), "new");
    assert_float_equal(num(fresh, "today", "value", NULL), 2.0, 1e-9);
    assert_float_equal(num(fresh, "range", "value", NULL), 2.0, 1e-9);
    cJSON_Delete(j);
}

static void test_overview_shape(void **state)
{
    (void)state;
    cJSON *j = NULL;
    assert_int_equal(
        get(shop_a.sk, shop_a.id, "/metrics/overview?from=2026-01-01&to=2026-01-30", &j), 200);
    assert_string_equal(cJSON_GetObjectItem(j, "from")->valuestring, "2026-01-01");
    cJSON *trend = cJSON_GetObjectItem(j, "trend");
    assert_int_equal(cJSON_GetArraySize(trend), 30);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(trend, 29), "date")->valuestring,
                        "2026-01-30");
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "topProducts")));
    cJSON_Delete(j);
    assert_int_equal(get(shop_a.sk, shop_a.id, "/metrics/overview", &j), 200);
    cJSON *top = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "topProducts"), 0);
    assert_string_equal(cJSON_GetObjectItem(top, "productId")->valuestring, "p1");
    assert_float_equal(cJSON_GetObjectItem(top, "units")->valuedouble, 4, 1e-9);
    cJSON_Delete(j);
}

static void test_funnel(void **state)
{
    (void)state;
    cJSON *j = NULL;
    assert_int_equal(get(shop_a.sk, shop_a.id, "/funnel", &j), 200);
    static const char *const steps[] = {"cart", "checkout", "shipping", "payment", "confirmation"};
    static const double sessions[] = {3, 3, 2, 2, 2};
    cJSON *arr = cJSON_GetObjectItem(j, "steps");
    assert_int_equal(cJSON_GetArraySize(arr), 5);
    for (int i = 0; i < 5; i++) {
        cJSON *s = cJSON_GetArrayItem(arr, i);
        assert_string_equal(cJSON_GetObjectItem(s, "step")->valuestring, steps[i]);
        assert_float_equal(cJSON_GetObjectItem(s, "sessions")->valuedouble, sessions[i], 1e-9);
        assert_true(cJSON_IsBool(cJSON_GetObjectItem(s, "problem")));
    }
    assert_float_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "conversion")->valuedouble,
                       0.75, 1e-9);
    assert_float_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 2), "dropOff")->valuedouble,
                       1.0 / 3, 1e-9);
    cJSON_Delete(j);
    assert_int_equal(get(shop_a.sk, shop_a.id, "/funnel?device=desktop", &j), 200);
    arr = cJSON_GetObjectItem(j, "steps");
    assert_float_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 1), "sessions")->valuedouble, 1,
                       1e-9);
    assert_float_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 2), "sessions")->valuedouble, 0,
                       1e-9);
    cJSON_Delete(j);
}

static void test_breakdown(void **state)
{
    (void)state;
    cJSON *j = NULL;
    assert_int_equal(get(shop_a.sk, shop_a.id, "/funnel/steps/shipping/breakdown", &j), 200);
    assert_string_equal(cJSON_GetObjectItem(j, "previousStep")->valuestring, "checkout");
    cJSON *dev = cJSON_GetObjectItem(j, "byDevice");
    assert_int_equal(cJSON_GetArraySize(dev), 2);
    for (int i = 0; i < 2; i++) {
        cJSON *d = cJSON_GetArrayItem(dev, i);
        double conv = cJSON_GetObjectItem(d, "conversion")->valuedouble;
        const char *v = cJSON_GetObjectItem(d, "value")->valuestring;
        assert_float_equal(conv, strcmp(v, "mobile") == 0 ? 1.0 : 0.0, 1e-9);
    }
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "byHour")), 24);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "byCountry")), 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "bySource")), 1);
    cJSON_Delete(j);
}

/* The sessions of an entry of a breakdown part named value (hour when value is NULL). */
static const cJSON *part_entry(const cJSON *part, const char *value, int hour)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, part)
    {
        const cJSON *v = cJSON_GetObjectItem(e, value ? "value" : "hour");
        if (value ? (cJSON_IsString(v) && strcmp(v->valuestring, value) == 0)
                  : (cJSON_IsNumber(v) && (int)v->valuedouble == hour))
            return e;
    }
    return NULL;
}

/* Brute force over agg_sessions (layer 1) for store C and one filter combination: n[g][v][k] is
 * the number of sessions with reach >= k (k = 0: all) whose column g (0 device, 1 country,
 * 2 source, 3 hour) has value index v. */
enum { C_GROUPS = 4, C_VALUES = 24 };
static const char *const C_VALUE_NAMES[3][3] = {
    {"mobile", "desktop", "tablet"}, {"DE", "FR", "unknown"}, {"google", "direct", NULL}};

static void brute_c(const char *device, const char *country, const char *source,
                    double n[C_GROUPS][C_VALUES][6])
{
    static const char *const cols[C_GROUPS] = {"device", "country", "source", "hour::text"};
    memset(n, 0, sizeof(double) * C_GROUPS * C_VALUES * 6);
    for (int g = 0; g < C_GROUPS; g++) {
        char q[1400];
        snprintf(
            q, sizeof q,
            "SELECT string_agg(format('%%s %%s %%s %%s %%s %%s %%s', v, n0, n1, n2, n3, n4,"
            " n5), ';') FROM (SELECT %s AS v, count(*) AS n0,"
            " count(*) FILTER (WHERE reach >= 1) AS n1, count(*) FILTER (WHERE reach >= 2) AS n2,"
            " count(*) FILTER (WHERE reach >= 3) AS n3, count(*) FILTER (WHERE reach >= 4) AS n4,"
            " count(*) FILTER (WHERE reach >= 5) AS n5 FROM agg_sessions"
            " WHERE store_id = '%s' AND ('%s' = '' OR device = '%s')"
            " AND ('%s' = '' OR country = '%s') AND ('%s' = '' OR source = '%s')"
            " GROUP BY 1) x",
            cols[g], shop_c.id, device, device, country, country, source, source);
        char *v = pe_test_sql(fx.conninfo, q);
        for (char *row = v ? strtok(v, ";") : NULL; row; row = strtok(NULL, ";")) {
            char name[32];
            double c[6];
            assert_int_equal(sscanf(row, "%31s %lf %lf %lf %lf %lf %lf", name, &c[0], &c[1], &c[2],
                                    &c[3], &c[4], &c[5]),
                             7);
            int idx = -1;
            if (g == 3)
                idx = atoi(name);
            else
                for (int i = 0; i < 3; i++)
                    if (C_VALUE_NAMES[g][i] && strcmp(C_VALUE_NAMES[g][i], name) == 0)
                        idx = i;
            if (idx < 0 || idx >= C_VALUES)
                fail_msg("unexpected %s value %s in store C", cols[g], name);
            memcpy(n[g][idx], c, sizeof c);
        }
        free(v);
    }
}

/* Every combination of the three filters and every step: the breakdown's parts each split the
 * funnel's sessions at the step before, the filtered dimension keeps only its value, and every
 * entry equals a count over agg_sessions (so agg_funnel_hourly_segments agrees with layer 1). */
static void test_breakdown_filters(void **state)
{
    (void)state;
    static const char *const steps[] = {"cart", "checkout", "shipping", "payment", "confirmation"};
    static const char *const keys[3] = {"byDevice", "byCountry", "bySource"};
    static double n[C_GROUPS][C_VALUES][6];
    int combos = 0, nonzero_hours = 0;
    for (int d = -1; d < 3; d++) {
        for (int c = -1; c < 3; c++) {
            for (int src = -1; src < 2; src++) {
                const char *fv[3] = {d < 0 ? "" : C_VALUE_NAMES[0][d],
                                     c < 0 ? "" : C_VALUE_NAMES[1][c],
                                     src < 0 ? "" : C_VALUE_NAMES[2][src]};
                static const char *const names[3] = {"device", "country", "source"};
                char qs[256] = ""; /* the default range: the last 30 days */
                for (int f = 0; f < 3; f++)
                    if (fv[f][0])
                        snprintf(qs + strlen(qs), sizeof qs - strlen(qs), "%s%s=%s",
                                 qs[0] ? "&" : "", names[f], fv[f]);
                brute_c(fv[0], fv[1], fv[2], n);
                char path[512];
                cJSON *funnel = NULL;
                snprintf(path, sizeof path, "/funnel%s%s", qs[0] ? "?" : "", qs);
                assert_int_equal(get(shop_c.sk, shop_c.id, path, &funnel), 200);
                for (int k = 1; k <= 5; k++) {
                    cJSON *b = NULL;
                    snprintf(path, sizeof path, "/funnel/steps/%s/breakdown%s%s", steps[k - 1],
                             qs[0] ? "?" : "", qs);
                    assert_int_equal(get(shop_c.sk, shop_c.id, path, &b), 200);
                    const cJSON *fl = cJSON_GetObjectItem(b, "filters");
                    for (int f = 0; f < 3; f++) {
                        const cJSON *x = cJSON_GetObjectItem(fl, names[f]);
                        if (fv[f][0])
                            assert_string_equal(cJSON_GetStringValue(x), fv[f]);
                        else
                            assert_true(cJSON_IsNull(x));
                    }
                    double before =
                        k == 1
                            ? num(funnel, "sessions", NULL, NULL)
                            : cJSON_GetObjectItem(
                                  cJSON_GetArrayItem(cJSON_GetObjectItem(funnel, "steps"), k - 2),
                                  "sessions")
                                  ->valuedouble;
                    double at = cJSON_GetObjectItem(
                                    cJSON_GetArrayItem(cJSON_GetObjectItem(funnel, "steps"), k - 1),
                                    "sessions")
                                    ->valuedouble;
                    for (int g = 0; g < C_GROUPS; g++) {
                        const cJSON *part = cJSON_GetObjectItem(b, g < 3 ? keys[g] : "byHour");
                        double sum_n = 0, sum_k = 0;
                        const cJSON *e;
                        cJSON_ArrayForEach(e, part)
                        {
                            sum_n += cJSON_GetObjectItem(e, "sessions")->valuedouble;
                            sum_k += cJSON_GetObjectItem(e, "reached")->valuedouble;
                        }
                        if (sum_n != before || sum_k != at)
                            fail_msg("%s part %d: %g/%g, funnel %g/%g", path, g, sum_n, sum_k,
                                     before, at);
                        int nvalues = g == 3 ? 24 : g == 2 ? 2 : 3;
                        if (g < 3 && fv[g][0]) /* the filtered dimension: its value only */
                            assert_true(cJSON_GetArraySize(part) <= 1);
                        for (int v = 0; v < nvalues; v++) {
                            const cJSON *entry =
                                part_entry(part, g < 3 ? C_VALUE_NAMES[g][v] : NULL, v);
                            double en =
                                entry ? cJSON_GetObjectItem(entry, "sessions")->valuedouble : 0;
                            double ek =
                                entry ? cJSON_GetObjectItem(entry, "reached")->valuedouble : 0;
                            if (en != n[g][v][k - 1] || ek != n[g][v][k])
                                fail_msg("%s part %d value %d: %g/%g, agg_sessions %g/%g", path, g,
                                         v, en, ek, n[g][v][k - 1], n[g][v][k]);
                            nonzero_hours += g == 3 && en > 0;
                        }
                    }
                    cJSON_Delete(b);
                }
                cJSON_Delete(funnel);
                combos++;
            }
        }
    }
    assert_int_equal(combos, 48);
    assert_true(nonzero_hours > 100);
    /* a filter narrows the breakdown: mobile's byHour differs from the store's */
    cJSON *all = NULL, *mobile = NULL;
    assert_int_equal(get(shop_c.sk, shop_c.id, "/funnel/steps/cart/breakdown", &all), 200);
    assert_int_equal(
        get(shop_c.sk, shop_c.id, "/funnel/steps/cart/breakdown?device=mobile", &mobile), 200);
    char *a = cJSON_PrintUnformatted(cJSON_GetObjectItem(all, "byHour"));
    char *m = cJSON_PrintUnformatted(cJSON_GetObjectItem(mobile, "byHour"));
    assert_string_not_equal(a, m);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(mobile, "byDevice")), 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(all, "byDevice")), 3);
    free(a);
    free(m);
    cJSON_Delete(all);
    cJSON_Delete(mobile);
}

static void expect_400(const char *path, const char *param)
{
    cJSON *j = NULL;
    long status = get(shop_a.sk, shop_a.id, path, &j);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(e, "message"));
    if (status != 400 || !msg || strncmp(msg, param, strlen(param)) != 0)
        fail_msg("%s: %ld %s", path, status, msg ? msg : "(no message)");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "code")), "invalid_request");
    cJSON_Delete(j);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    expect_400("/metrics/overview?from=2026-02-30", "from:");
    expect_400("/metrics/overview?from=2026-11-24&to=2026-11-01", "from:");
    expect_400("/metrics/overview?from=2024-01-01&to=2026-01-01", "from:");
    expect_400("/metrics/overview?to=yesterday", "to:");
    expect_400("/metrics/overview?form=2026-01-01", "form:");
    expect_400("/metrics/overview?device=mobile", "device:"); /* not a parameter there */
    expect_400("/funnel?device=phone", "device:");
    expect_400("/funnel?country=de", "country:");
    expect_400("/funnel?from=2026-01-01&from=2026-01-02", "from:");
    expect_400("/funnel/steps/basket/breakdown", "step:");
    /* the breakdown takes the funnel's filters, validated the same way */
    expect_400("/funnel/steps/cart/breakdown?source=a%01b", "source:");
    expect_400("/funnel/steps/cart/breakdown?device=phone", "device:");
    expect_400("/funnel/steps/cart/breakdown?country=de", "country:");
    expect_400("/funnel/steps/cart/breakdown?country=DE&country=FR", "country:");
    expect_400("/funnel/steps/cart/breakdown?source=", "source:");
    expect_400("/funnel/steps/cart/breakdown?segment=x", "segment:");
}

static void test_tenant_isolation(void **state)
{
    (void)state;
    assert_int_equal(get(shop_b.sk, shop_a.id, "/metrics/overview", NULL), 403);
    assert_int_equal(get(shop_b.sk, shop_a.id, "/funnel", NULL), 403);
    assert_int_equal(get(shop_b.sk, shop_a.id, "/funnel/steps/cart/breakdown", NULL), 403);
    assert_int_equal(get(NULL, shop_a.id, "/funnel", NULL), 401);
    cJSON *j = NULL;
    assert_int_equal(get(shop_b.sk, shop_b.id, "/metrics/overview", &j), 200);
    assert_float_equal(num(j, "revenue", "today", "value"), 999.0, 1e-9);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overview),
        cmocka_unit_test(test_overview_shape),
        cmocka_unit_test(test_funnel),
        cmocka_unit_test(test_breakdown),
        cmocka_unit_test(test_breakdown_filters),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_tenant_isolation),
    };
    return cmocka_run_group_tests(tests, setup, pe_test_fixture_teardown);
}
