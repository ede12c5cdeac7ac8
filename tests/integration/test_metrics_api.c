/*
 * test_metrics_api.c — the metrics endpoints through HTTP against a child server: the shapes
 * and values of the overview, the funnel and a step's breakdown over a small aggregated event
 * set, 400s that name the parameter, and tenant isolation (another store's secret key, no key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/aggregate.h"
#include "pe/db.h"
#include "pe/tenancy.h"
#include "pe_test.h"

static char *conninfo;
static pe_test_server_t server;
static char store_a[PE_ID_LEN], sk_a[PE_KEY_LEN], store_b[PE_ID_LEN], sk_b[PE_KEY_LEN];

static void make_store(pe_db_pool_t *pool, const char *name, char *id, char *sk)
{
    pe_store_t store;
    char pk[PE_KEY_LEN], err[256];
    assert_int_equal(
        pe_tenancy_store_create(pool, name, "UTC", "EUR", &store, pk, sk, err, sizeof err), 0);
    snprintf(id, PE_ID_LEN, "%s", store.id);
}

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
        free(pe_test_sql(conninfo, q));
    }
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(pe_crypto_init(), 0);
    conninfo = pe_test_db_create_migrated();
    pe_db_pool_t *pool = pe_db_pool_new(conninfo, 2);
    make_store(pool, "Metrics A", store_a, sk_a);
    make_store(pool, "Metrics B", store_b, sk_b);
    /* A today: 4 sessions; 2 mobile reach the order (40 + 60), 1 desktop stops at checkout,
     * 1 desktop only views a page */
    journey(store_a, 1, "mobile", 5, 40);
    journey(store_a, 2, "mobile", 5, 60);
    journey(store_a, 3, "desktop", 2, 0);
    journey(store_a, 4, "desktop", 0, 0);
    journey(store_b, 1, "mobile", 5, 999);
    pe_aggregate_options_t opt = {.wait = true};
    pe_aggregate_report_t rep;
    char err[512];
    assert_int_equal(pe_aggregate_run(pool, &opt, &rep, err, sizeof err), 0);
    pe_db_pool_free(pool);
    pe_test_server_start(&server, conninfo, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(pe_test_server_stop(&server), 0);
    pe_test_db_drop(conninfo);
    return 0;
}

/* GETs path for store with key; returns the status, parses the body into *j (may be NULL). */
static long get(const char *key, const char *store, const char *path, cJSON **j)
{
    char url[1024], auth[128];
    snprintf(url, sizeof url, "%s/api/v1/stores/%s%s", server.base_url, store, path);
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
    assert_int_equal(get(sk_a, store_a, "/metrics/overview", &j), 200);
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
    assert_int_equal(get(sk_a, store_a, "/metrics/overview?from=2026-01-01&to=2026-01-30", &j),
                     200);
    assert_string_equal(cJSON_GetObjectItem(j, "from")->valuestring, "2026-01-01");
    cJSON *trend = cJSON_GetObjectItem(j, "trend");
    assert_int_equal(cJSON_GetArraySize(trend), 30);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(trend, 29), "date")->valuestring,
                        "2026-01-30");
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "topProducts")));
    cJSON_Delete(j);
    assert_int_equal(get(sk_a, store_a, "/metrics/overview", &j), 200);
    cJSON *top = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "topProducts"), 0);
    assert_string_equal(cJSON_GetObjectItem(top, "productId")->valuestring, "p1");
    assert_float_equal(cJSON_GetObjectItem(top, "units")->valuedouble, 4, 1e-9);
    cJSON_Delete(j);
}

static void test_funnel(void **state)
{
    (void)state;
    cJSON *j = NULL;
    assert_int_equal(get(sk_a, store_a, "/funnel", &j), 200);
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
    assert_int_equal(get(sk_a, store_a, "/funnel?device=desktop", &j), 200);
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
    assert_int_equal(get(sk_a, store_a, "/funnel/steps/shipping/breakdown", &j), 200);
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

static void expect_400(const char *path, const char *param)
{
    cJSON *j = NULL;
    long status = get(sk_a, store_a, path, &j);
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
    expect_400("/funnel/steps/cart/breakdown?source=x", "source:");
}

static void test_tenant_isolation(void **state)
{
    (void)state;
    assert_int_equal(get(sk_b, store_a, "/metrics/overview", NULL), 403);
    assert_int_equal(get(sk_b, store_a, "/funnel", NULL), 403);
    assert_int_equal(get(sk_b, store_a, "/funnel/steps/cart/breakdown", NULL), 403);
    assert_int_equal(get(NULL, store_a, "/funnel", NULL), 401);
    cJSON *j = NULL;
    assert_int_equal(get(sk_b, store_b, "/metrics/overview", &j), 200);
    assert_float_equal(num(j, "revenue", "today", "value"), 999.0, 1e-9);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overview),       cmocka_unit_test(test_overview_shape),
        cmocka_unit_test(test_funnel),         cmocka_unit_test(test_breakdown),
        cmocka_unit_test(test_bad_parameters), cmocka_unit_test(test_tenant_isolation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
