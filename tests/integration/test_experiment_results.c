/*
 * test_experiment_results.c — GET …/changesets/{cid}/results on planted exposures and outcomes:
 * events written straight into the events table, rolled up by `profit-engine aggregate`, read
 * through a child server.
 *
 * Invariants the tests hold the results to (src/experiments/results.c):
 *  1. Exact numbers: 20 units per arm assigned after the ChangeSet went live; per variant the
 *     units, conversion, revenue, gross profit (the catalogue's cost), the target step's units
 *     before it and through it — by hand below. A unit counts in its first variant (intention to
 *     treat) with every session from its exposure on; holdout exposures, exposures before the
 *     start and another flag's units are not part of it.
 *  2. The decision is the rule's (pe_experiments_decide): nothing is decided in the first minutes
 *     (KEEP_RUNNING), and the answer says when the minimum runtime ends and how many units the
 *     proof plan still needs.
 *  3. A ChangeSet not started has no units; one whose rollout leaves no control group is 400
 *     not_measurable; another store's key gets 404, a publishable key 403.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe_test.h"

static pe_test_fixture_t fx;
static pe_test_tenant_t a, b;

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static cJSON *expect(const char *method, const char *path, const char *body,
                     const pe_test_tenant_t *t, long want)
{
    return pe_test_expect(&fx.server, method, path, body, t->sk_auth, want);
}

/* The corpus banner ChangeSet as a 50/50 holdout test on flag key, created in t; its id. */
static void create(const pe_test_tenant_t *t, const char *key, const char *strategy, char *id)
{
    char *text = pe_test_corpus("changesets/valid/shipping_cost_banner.json");
    cJSON *doc = cJSON_Parse(text);
    free(text);
    static const char *const server_owned[] = {"id",        "version",    "storeId",   "approval",
                                               "execution", "auditTrail", "createdAt", "updatedAt"};
    for (size_t i = 0; i < PE_ARRAY_LEN(server_owned); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(doc, server_owned[i]);
    cJSON *ap = cJSON_GetObjectItemCaseSensitive(doc, "actionPlan");
    cJSON_ReplaceItemInObjectCaseSensitive(ap, "rolloutStrategy", cJSON_CreateString(strategy));
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(ap, "implementation"),
                                           "featureFlagKey", cJSON_CreateString(key));
    /* every visitor: the banner's cart-value segment needs a context the test does not send */
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(ap, "targetSegment"),
                                           "rules", cJSON_CreateArray());
    char *body = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets", t->id);
    cJSON *cs = expect("POST", path, body, t, 201);
    free(body);
    snprintf(id, 32, "%s", pe_test_json_str(cs, "id"));
    cJSON_Delete(cs);
}

static cJSON *move(const pe_test_tenant_t *t, const char *id, const char *to)
{
    char path[256], body[128];
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s/transitions", t->id, id);
    snprintf(body, sizeof body, "{\"to\":\"%s\"}", to);
    return expect("POST", path, body, t, 200);
}

static cJSON *results(const pe_test_tenant_t *t, const char *id, long want)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s/results", t->id, id);
    return expect("GET", path, NULL, t, want);
}

/* One event of unit u at start + sec seconds. */
static void event(const char *store, const char *start, const char *session, const char *unit,
                  const char *name, int step, int sec, const char *props, const char *custom)
{
    char *r = pe_test_sqlf(
        fx.conninfo,
        "INSERT INTO events (store_id, occurred_at, event_id, name, funnel_step, session_id,"
        " anonymous_id, client_ts, received_at, properties, custom)"
        " SELECT '%s', t, gen_random_uuid(), '%s', %d, '%s', '%s', t, now(), '%s'::jsonb, %s"
        "   FROM (SELECT '%s'::timestamptz + interval '%d seconds' AS t) x RETURNING 1",
        store, name, step, session, unit, props, custom ? custom : "NULL", start, sec);
    free(r);
}

/* A unit's journey: exposed to key with variant, then as far as `reach` (0 landing … 5
 * an order of one SKU-A at 50). */
static void journey(const char *store, const char *start, const char *key, int unit,
                    const char *variant, int reach, int sec, bool holdout)
{
    char u[16], s[24], props[160];
    snprintf(u, sizeof u, "u%d", unit);
    snprintf(s, sizeof s, "s-%s-%d", u, sec);
    event(store, start, s, u, "storefront.page.viewed", 0, sec, "{}", NULL);
    snprintf(props, sizeof props, "{\"flagKey\":\"%s\",\"variant\":\"%s\"}", key, variant);
    event(store, start, s, u, "experiment.exposure.assigned", 0, sec + 1, props,
          holdout ? "'{\"holdout\":true}'" : NULL);
    static const char *const names[] = {"",
                                        "storefront.cart.item_added",
                                        "checkout.session.started",
                                        "checkout.shipping.submitted",
                                        "checkout.payment.submitted",
                                        "checkout.order.completed"};
    for (int step = 1; step <= reach; step++)
        event(store, start, s, u, names[step], step, sec + 1 + step,
              step == 5 ? "{\"orderId\":\"o\",\"value\":50,\"currency\":\"EUR\",\"items\":"
                          "[{\"productId\":\"SKU-A\",\"quantity\":1,\"price\":50}]}"
                        : "{}",
              NULL);
}

static const cJSON *variant(const cJSON *r, const char *name)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, get(r, "variants")) if (strcmp(pe_test_json_str(v, "variant"), name) ==
                                                  0) return v;
    fail_msg("no variant %s", name);
    return NULL;
}

static void test_exact_numbers(void **state)
{
    (void)state;
    char id[32], path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/products", a.id);
    cJSON_Delete(expect("PUT", path,
                        "{\"products\":[{\"sku\":\"SKU-A\",\"name\":\"A\",\"category\":\"C\","
                        "\"price\":50,\"cost\":20,\"currency\":\"EUR\",\"stock\":100}]}",
                        &a, 200));
    create(&a, "banner-results", "holdout", id);
    /* not started: nothing measured yet */
    cJSON *r = results(&a, id, 200);
    assert_true(cJSON_IsNull(get(r, "startedAt")));
    assert_int_equal((int)pe_test_json_num(variant(r, "control"), "units"), 0);
    assert_string_equal(pe_test_json_str(get(r, "decision"), "action"), "KEEP_RUNNING");
    cJSON_Delete(r);
    cJSON_Delete(move(&a, id, "PENDING_APPROVAL"));
    cJSON *cs = move(&a, id, "ACTIVE");
    char start[64];
    snprintf(start, sizeof start, "%s", pe_test_json_str(get(cs, "execution"), "startedAt"));
    cJSON_Delete(cs);

    /* control: 20 units, 10 reach the cart, 5 of them checkout, 2 order;
     * treatment: 20 units, 10 reach the cart, 8 of them checkout, 4 order */
    for (int i = 0; i < 20; i++) {
        int reach = i < 2 ? 5 : i < 5 ? 2 : i < 10 ? 1 : 0;
        journey(a.id, start, "banner-results", i, "control", reach, 60 + i, false);
        reach = i < 4 ? 5 : i < 8 ? 3 : i < 10 ? 1 : 0;
        journey(a.id, start, "banner-results", 100 + i, "treatment", reach, 60 + i, false);
    }
    /* not part of it: a unit served from the holdout, one exposed before the start, one of
     * another flag; and a later session of a control unit that was then served the treatment
     * (intention to treat: it stays control, and its order counts there) */
    journey(a.id, start, "banner-results", 500, "control", 5, 70, true);
    journey(a.id, start, "banner-results", 501, "treatment", 5, -3600, false);
    journey(a.id, start, "other-flag", 502, "treatment", 5, 70, false);
    journey(a.id, start, "banner-results", 19, "treatment", 5, 4000, false);
    const char *agg[] = {"aggregate", "--store", a.id, NULL};
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg));

    r = results(&a, id, 200);
    char *text = cJSON_Print(r);
    print_message("%s\n", text);
    free(text);
    assert_string_equal(pe_test_json_str(r, "primaryMetric"), "checkout_conversion_rate");
    assert_string_equal(pe_test_json_str(r, "flagKey"), "banner-results");
    const cJSON *c = variant(r, "control"), *t = variant(r, "treatment");
    assert_int_equal((int)pe_test_json_num(c, "units"), 20);
    assert_int_equal((int)pe_test_json_num(t, "units"), 20);
    assert_int_equal((int)pe_test_json_num(c, "orders"), 3); /* 2 + the later session */
    assert_int_equal((int)pe_test_json_num(t, "orders"), 4);
    assert_float_equal(pe_test_json_num(c, "conversionRate"), 3.0 / 20, 1e-12);
    assert_float_equal(pe_test_json_num(c, "revenue"), 150, 1e-9);
    assert_float_equal(pe_test_json_num(c, "profit"), 150 - 3 * 20, 1e-9);
    assert_float_equal(pe_test_json_num(t, "revenue"), 200, 1e-9);
    assert_float_equal(pe_test_json_num(t, "profit"), 120, 1e-9);
    assert_float_equal(pe_test_json_num(t, "profitPerVisitor"), 6, 1e-12);
    assert_float_equal(pe_test_json_num(t, "aov"), 50, 1e-12);
    assert_float_equal(pe_test_json_num(t, "costKnownShare"), 1, 1e-12);
    /* checkout: units that reached the cart, and of them checkout (u19's later session reached
     * checkout too, after reaching nothing before: 11 before, 6 through) */
    const cJSON *cstep = get(c, "step"), *tstep = get(t, "step");
    assert_string_equal(pe_test_json_str(cstep, "name"), "checkout");
    assert_int_equal((int)pe_test_json_num(cstep, "reachedBefore"), 11);
    assert_int_equal((int)pe_test_json_num(cstep, "passed"), 6);
    assert_int_equal((int)pe_test_json_num(tstep, "reachedBefore"), 10);
    assert_int_equal((int)pe_test_json_num(tstep, "passed"), 8);
    /* minutes in: nothing decided; 4,200 a side planned, 4,190 still needed (treatment) */
    const cJSON *d = get(r, "decision");
    assert_string_equal(pe_test_json_str(d, "action"), "KEEP_RUNNING");
    assert_true(strlen(pe_test_json_str(d, "reason")) > 10);
    assert_int_equal((int)pe_test_json_num(r, "unitsNeededPerArm"), 4200 - 10);
    assert_true(strlen(pe_test_json_str(r, "minimumRuntimeEndsAt")) > 10);
    assert_true(pe_test_json_num(r, "srmPValue") > 0.5); /* 20 against 20 on a 50/50 split */
    cJSON_Delete(r);

    /* the tenant wall */
    char other[256];
    snprintf(other, sizeof other, "/api/v1/stores/%s/changesets/%s/results", b.id, id);
    pe_test_response_t resp;
    assert_int_equal(pe_test_call(&fx.server, "GET", other, NULL, b.sk_auth, &resp), 404);
    pe_test_expect_error(&resp, 404, "not_found", NULL, 0);
    pe_test_response_free(&resp);
    snprintf(other, sizeof other, "/api/v1/stores/%s/changesets/%s/results", a.id, id);
    assert_int_equal(pe_test_call(&fx.server, "GET", other, NULL, b.sk_auth, &resp), 403);
    pe_test_response_free(&resp);
    assert_int_equal(pe_test_call(&fx.server, "GET", other, NULL, a.pk_auth, &resp), 403);
    pe_test_response_free(&resp);
}

static void test_not_measurable(void **state)
{
    (void)state;
    char id[32];
    create(&a, "banner-immediate", "immediate", id);
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s/results", a.id, id);
    pe_test_response_t resp;
    char msg[256];
    pe_test_call(&fx.server, "GET", path, NULL, a.sk_auth, &resp);
    pe_test_expect_error(&resp, 400, "not_measurable", msg, sizeof msg);
    assert_non_null(strstr(msg, "actionPlan.rolloutStrategy"));
    pe_test_response_free(&resp);
}

static int group_setup(void **state)
{
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    *state = &fx;
    pe_test_tenant_make(&a, fx.pool, "Results A", "Europe/Berlin", "EUR", NULL, NULL);
    pe_test_tenant_make(&b, fx.pool, "Results B", "Europe/Berlin", "EUR", NULL, NULL);
    pe_test_server_start(&fx.server, fx.conninfo, (const char *const[]){"PE_JOBS=none", NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_numbers),
        cmocka_unit_test(test_not_measurable),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
