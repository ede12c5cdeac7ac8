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

#include "pe/changeset.h"
#include "pe/experiments.h"
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

/* The corpus banner ChangeSet as a 50/50 holdout test on flag key, created in t, measured over
 * window with min_units per arm (NULL, 0: the corpus's P14D and 4,200) and the rollback
 * triggers of the JSON array triggers (NULL: the corpus's); its id. */
static void create_plan_triggers(const pe_test_tenant_t *t, const char *key, const char *strategy,
                                 const char *window, int min_units, const char *triggers, char *id)
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
    cJSON *pp = cJSON_GetObjectItemCaseSensitive(doc, "proofPlan");
    if (window)
        cJSON_ReplaceItemInObjectCaseSensitive(pp, "measurementWindow", cJSON_CreateString(window));
    if (min_units)
        cJSON_ReplaceItemInObjectCaseSensitive(pp, "minimumSampleSize",
                                               cJSON_CreateNumber(min_units));
    if (triggers)
        cJSON_ReplaceItemInObjectCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(doc, "rollbackPlan"), "autoRollbackTriggers",
            cJSON_Parse(triggers));
    char *body = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets", t->id);
    cJSON *cs = expect("POST", path, body, t, 201);
    free(body);
    snprintf(id, 32, "%s", pe_test_json_str(cs, "id"));
    cJSON_Delete(cs);
}

static void create_plan(const pe_test_tenant_t *t, const char *key, const char *strategy,
                        const char *window, int min_units, char *id)
{
    create_plan_triggers(t, key, strategy, window, min_units, NULL, id);
}

static void create(const pe_test_tenant_t *t, const char *key, const char *strategy, char *id)
{
    create_plan(t, key, strategy, NULL, 0, id);
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

static void bulk_split(const char *store, const char *start, const char *key, const char *prefix,
                       int n, int n_control, int pct_control, int pct_treatment)
{
    pe_test_plant_visitors(fx.conninfo, store, start, key, prefix, n, n_control, false, pct_control,
                           pct_treatment);
}

static void bulk(const char *store, const char *start, const char *key, const char *prefix, int n,
                 int pct_control, int pct_treatment)
{
    bulk_split(store, start, key, prefix, n, n / 2, pct_control, pct_treatment);
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
    /* every metric's effect: conversion 3/20 → 4/20 (+33.3 %), checkout 6/11 → 8/10, profit per
     * visitor 4.5 → 6 (+33.3 %), with intervals and both p-values */
    const cJSON *effects = get(r, "effects");
    assert_int_equal(cJSON_GetArraySize(effects), 4);
    static const struct {
        const char *metric;
        double effect;
    } want[] = {{"conversion_rate", 1.0 / 3},
                {"checkout_conversion_rate", (0.8 - 6.0 / 11) / (6.0 / 11)},
                {"revenue_per_visitor", 1.0 / 3},
                {"profit_per_visitor", 1.0 / 3}};
    for (size_t i = 0; i < PE_ARRAY_LEN(want); i++) {
        const cJSON *e = cJSON_GetArrayItem(effects, (int)i);
        assert_string_equal(pe_test_json_str(e, "metric"), want[i].metric);
        assert_float_equal(pe_test_json_num(e, "effect"), want[i].effect, 1e-9);
        assert_true(pe_test_json_num(e, "ciLow") < want[i].effect &&
                    pe_test_json_num(e, "ciHigh") > want[i].effect);
        assert_true(pe_test_json_num(e, "pValue") > 0.05); /* 20 units a side prove nothing */
        assert_true(pe_test_json_num(e, "alwaysValidP") >= pe_test_json_num(e, "pValue"));
    }
    /* the banner's trigger watches conversion_rate, which is not its primary: listed, not
     * evaluated, and the default trigger on the primary stands in */
    const cJSON *triggers = get(r, "triggers");
    assert_int_equal(cJSON_GetArraySize(triggers), 2);
    assert_string_equal(pe_test_json_str(cJSON_GetArrayItem(triggers, 0), "metric"),
                        "conversion_rate");
    assert_false(cJSON_IsTrue(get(cJSON_GetArrayItem(triggers, 0), "evaluated")));
    assert_non_null(strstr(pe_test_json_str(cJSON_GetArrayItem(triggers, 0), "note"),
                           "not measured as a trigger"));
    assert_string_equal(pe_test_json_str(cJSON_GetArrayItem(triggers, 1), "metric"),
                        "checkout_conversion_rate");
    assert_true(cJSON_IsTrue(get(cJSON_GetArrayItem(triggers, 1), "evaluated")));
    /* the plan asks for CUPED, but no unit came before: nothing to adjust by */
    assert_true(cJSON_IsTrue(get(get(r, "cuped"), "planned")));
    assert_false(cJSON_IsTrue(get(get(r, "cuped"), "applied")));
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

static const char *started(const pe_test_tenant_t *t, const char *id, char *out)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s", t->id, id);
    cJSON *cs = expect("GET", path, NULL, t, 200);
    snprintf(out, 64, "%s", pe_test_json_str(get(cs, "execution"), "startedAt"));
    cJSON_Delete(cs);
    return out;
}

static int64_t start_of(const cJSON *cs)
{
    int64_t us = 0;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cs, "execution"), "startedAt");
    if (!cJSON_IsString(s) || pe_time_parse_rfc3339(s->valuestring, &us) != 0)
        fail_msg("the ChangeSet has not started");
    return us;
}

static const cJSON *measured(const cJSON *out, const char *id)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, get(out, "changesets")) if (strcmp(pe_test_json_str(c, "id"), id) ==
                                                      0) return c;
    fail_msg("ChangeSet %s was not measured", id);
    return NULL;
}

/* `profit-engine measure`: a change that hurts checkout conversion (0.6 → 0.2 over 200 units
 * a side) is rolled back at once, on the always-valid test, by the system; its flag is off and
 * the reason names the metric and the effect. The other running ChangeSet (20 units a side,
 * nothing decided) moves to MEASURING. */
static void test_measure_rolls_back_harm(void **state)
{
    (void)state;
    char id[32], start[64], path[256];
    create(&a, "banner-harm", "holdout", id);
    cJSON_Delete(move(&a, id, "PENDING_APPROVAL"));
    cJSON_Delete(move(&a, id, "ACTIVE"));
    bulk(a.id, started(&a, id, start), "banner-harm", "h", 400, 60, 20);
    const char *agg[] = {"aggregate", "--store", a.id, NULL};
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg));
    const char *args[] = {"measure", "--store", a.id, NULL};
    cJSON *out = pe_test_cli_json(fx.conninfo, 0, args);
    const cJSON *m = measured(out, id);
    assert_string_equal(pe_test_json_str(m, "before"), "ACTIVE");
    assert_string_equal(pe_test_json_str(m, "after"), "ROLLED_BACK");
    assert_string_equal(pe_test_json_str(m, "action"), "ROLLBACK");
    char reason[512];
    snprintf(reason, sizeof reason, "%s", pe_test_json_str(m, "reason"));
    print_message("%s\n", reason);
    assert_non_null(strstr(reason, "checkout_conversion_rate −66.7 %"));
    assert_non_null(strstr(reason, "always-valid p"));
    cJSON_Delete(out);
    /* the ChangeSet: rolled back by the system with the metrics; the flag off */
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s", a.id, id);
    cJSON *cs = expect("GET", path, NULL, &a, 200);
    const cJSON *exec = get(cs, "execution");
    assert_string_equal(pe_test_json_str(exec, "status"), "ROLLED_BACK");
    assert_int_equal((int)pe_test_json_num(get(exec, "currentMetrics"), "controlSampleSize"), 200);
    const cJSON *trail = get(cs, "auditTrail");
    const cJSON *last = cJSON_GetArrayItem(trail, cJSON_GetArraySize(trail) - 1);
    assert_string_equal(pe_test_json_str(get(last, "actor"), "type"), "system");
    assert_string_equal(pe_test_json_str(last, "reason"), reason);
    cJSON_Delete(cs);
    /* the results keep the measurement as the first point of the series */
    cJSON *r = results(&a, id, 200);
    const cJSON *series = get(r, "series");
    assert_int_equal(cJSON_GetArraySize(series), 1);
    const cJSON *point = cJSON_GetArrayItem(series, 0);
    assert_string_equal(pe_test_json_str(point, "action"), "ROLLBACK");
    assert_int_equal((int)pe_test_json_num(get(get(point, "variants"), "treatment"), "units"), 200);
    assert_float_equal(pe_test_json_num(get(get(point, "variants"), "control"), "stepRate"), 0.6,
                       1e-12);
    cJSON_Delete(r);
    snprintf(path, sizeof path, "/api/v1/stores/%s/flags/banner-harm", a.id);
    cJSON *flag = expect("GET", path, NULL, &a, 200);
    assert_false(cJSON_IsTrue(get(flag, "enabled")));
    cJSON_Delete(flag);
    /* its end is kept for history and attribution, written with the transition */
    pe_test_sql_expect(fx.conninfo,
                       "ROLLED_BACK|automatic|ROLLBACK|banner-harm|checkout_conversion_rate|200|"
                       "200|-0.6667|t|t|t",
                       "SELECT concat_ws('|', outcome, rollback_kind, decision_action, flag_key,"
                       "       primary_metric, control_units, treatment_units,"
                       "       round(primary_effect::numeric, 4),"
                       "       primary_ci_high < 0 AND profit_effect < 0,"
                       "       ended_at IS NOT NULL AND started_at < ended_at,"
                       "       decision->'decision'->>'action' = 'ROLLBACK')"
                       "  FROM experiment_results WHERE store_id = '%s' AND changeset_id = '%s'",
                       a.id, id);
    /* nothing left to do for it; an unknown store is exit 2 */
    out = pe_test_cli_json(fx.conninfo, 0, args);
    const cJSON *c;
    cJSON_ArrayForEach(c, get(out, "changesets"))
        assert_string_not_equal(pe_test_json_str(c, "id"), id);
    cJSON_Delete(out);
    const char *unknown[] = {"measure", "--store", "00000000-0000-4000-8000-000000000000", NULL};
    pe_test_cli_json(fx.conninfo, 2, unknown);
}

/* In-process at a fixed "now" eight days on: a change that doubles checkout conversion (0.3 →
 * 0.6 over 200 units a side, window 7 days, 150 units planned) is PROVEN with its proofResult. */
static void test_measure_proves_win(void **state)
{
    (void)state;
    char id[32], start[64];
    create_plan(&b, "banner-win", "holdout", "P7D", 150, id);
    cJSON_Delete(move(&b, id, "PENDING_APPROVAL"));
    cJSON_Delete(move(&b, id, "ACTIVE"));
    bulk(b.id, started(&b, id, start), "banner-win", "w", 400, 30, 60);
    const char *agg[] = {"aggregate", "--store", b.id, NULL};
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg));
    int64_t start_us = 0;
    assert_int_equal(pe_time_parse_rfc3339(start, &start_us), 0);
    pe_changeset_config_t cfg = {.db = fx.pool};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
    cJSON *out = NULL;
    /* a day in: measuring, nothing decided */
    assert_int_equal(pe_experiments_measure(fx.pool, svc, b.id, start_us + 86400000000LL, &out), 0);
    assert_string_equal(pe_test_json_str(measured(out, id), "after"), "MEASURING");
    assert_string_equal(pe_test_json_str(measured(out, id), "action"), "KEEP_RUNNING");
    cJSON_Delete(out);
    assert_int_equal(pe_experiments_measure(fx.pool, svc, b.id, start_us + 8 * 86400000000LL, &out),
                     0);
    const cJSON *m = measured(out, id);
    print_message("%s\n", pe_test_json_str(m, "reason"));
    assert_string_equal(pe_test_json_str(m, "action"), "PROVE");
    assert_string_equal(pe_test_json_str(m, "after"), "PROVEN");
    cJSON_Delete(out);
    cJSON *cs = NULL;
    assert_int_equal(pe_changeset_get(svc, b.id, id, &cs), 0);
    cJSON *r = NULL;
    pe_refusal_t err = {"", ""};
    assert_int_equal(
        pe_experiments_results(fx.pool, b.id, cs, start_us + 9 * 86400000000LL, &r, &err), 0);
    const cJSON *series = get(r, "series"); /* day 1: keep running; day 8: proven */
    assert_int_equal(cJSON_GetArraySize(series), 2);
    assert_string_equal(pe_test_json_str(cJSON_GetArrayItem(series, 0), "action"), "KEEP_RUNNING");
    assert_string_equal(pe_test_json_str(cJSON_GetArrayItem(series, 1), "action"), "PROVE");
    cJSON_Delete(r);
    const cJSON *proof = get(get(cs, "execution"), "proofResult");
    assert_string_equal(pe_test_json_str(proof, "outcome"), "proven");
    assert_string_equal(pe_test_json_str(proof, "primaryMetric"), "checkout_conversion_rate");
    assert_float_equal(pe_test_json_num(proof, "relativeLift"), 1.0, 1e-9); /* 0.3 → 0.6 */
    assert_true(cJSON_GetArrayItem(get(proof, "confidenceInterval"), 0)->valuedouble > 0);
    /* measured, not projected: 400 units over 8 days is 1,500 a month; b's catalogue does not
     * know SKU-A's cost, so a 50 order earns 15 (the default 30 % margin): profit per visitor
     * 0.3 × 15 = 4.5 against 0.6 × 15 = 9, so 4.5 a unit, 6,750 a month (revenue 15 a unit,
     * 22,500), and the interval's lower end below it */
    const cJSON *imp = get(proof, "impactPerMonth");
    assert_float_equal(pe_test_json_num(imp, "unitsPerMonth"), 1500, 0.5);
    assert_float_equal(pe_test_json_num(imp, "profit"), 6750, 1);
    assert_float_equal(pe_test_json_num(imp, "revenue"), 22500, 1);
    assert_true(pe_test_json_num(imp, "profitLowerBound") > 0 &&
                pe_test_json_num(imp, "profitLowerBound") < 6750);
    cJSON_Delete(cs);
    /* the proof is kept with the same figures, in b's rows only (the tenant wall: the same
     * ChangeSet id under another store has none) */
    pe_test_sql_expect(fx.conninfo, "PROVEN||PROVE|200|200|1.0000|6750|t|t",
                       "SELECT concat_ws('|', outcome, coalesce(rollback_kind, ''),"
                       "       decision_action, control_units, treatment_units,"
                       "       round(primary_effect::numeric, 4), round(profit_per_month),"
                       "       profit_per_month_low < profit_per_month, primary_ci_low > 0)"
                       "  FROM experiment_results WHERE store_id = '%s' AND changeset_id = '%s'",
                       b.id, id);
    pe_test_sql_expect(fx.conninfo, "0",
                       "SELECT count(*) FROM experiment_results WHERE store_id = '%s'"
                       "   AND changeset_id = '%s'",
                       a.id, id);
    /* the job: every store with a running experiment, once across instances */
    size_t n = 0;
    char why[256] = "";
    assert_int_equal(
        pe_experiments_measure_due(fx.pool, svc, start_us + 86400000000LL, &n, why, sizeof why), 0);
    assert_true(n >= 1); /* a's banner-results at least; b's win is PROVEN, not running */
    /* another store's ChangeSets are not measured with b's */
    assert_int_equal(pe_experiments_measure(fx.pool, svc, a.id, start_us, &out), 0);
    const cJSON *c;
    cJSON_ArrayForEach(c, get(out, "changesets"))
        assert_string_not_equal(pe_test_json_str(c, "id"), id);
    cJSON_Delete(out);
    pe_changeset_service_free(svc);
}

/* A split far from the flag's 50/50 (150 against 250): no automatic decision even on a large
 * difference, and the merchant is alerted once (an in-app notification), not at every run. */
static void test_measure_freezes_on_srm(void **state)
{
    (void)state;
    char id[32], start[64], path[256];
    create(&b, "banner-srm", "holdout", id);
    cJSON_Delete(move(&b, id, "PENDING_APPROVAL"));
    cJSON_Delete(move(&b, id, "ACTIVE"));
    bulk_split(b.id, started(&b, id, start), "banner-srm", "m", 400, 150, 60, 10);
    const char *agg[] = {"aggregate", "--store", b.id, NULL};
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg));
    const char *args[] = {"measure", "--store", b.id, NULL};
    for (int run = 0; run < 2; run++) {
        cJSON *out = pe_test_cli_json(fx.conninfo, 0, args);
        const cJSON *m = measured(out, id);
        assert_string_equal(pe_test_json_str(m, "action"), "FREEZE_SRM");
        assert_string_equal(pe_test_json_str(m, "after"), "MEASURING");
        cJSON_Delete(out);
    }
    pe_test_sql_expect(fx.conninfo, "1",
                       "SELECT count(*) FROM notification_outbox WHERE store_id = '%s'"
                       "   AND changeset_id = '%s' AND kind = 'changeset.srm_mismatch'",
                       b.id, id);
    /* the dispatcher makes it an in-app notification with the reason */
    pe_changeset_config_t cfg = {.db = fx.pool};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
    size_t n = 0;
    char err[256];
    assert_int_equal(pe_changeset_dispatch(svc, &n, err, sizeof err), 0);
    pe_changeset_service_free(svc);
    snprintf(path, sizeof path, "/api/v1/stores/%s/notifications", b.id);
    cJSON *list = expect("GET", path, NULL, &b, 200);
    const cJSON *first = cJSON_GetArrayItem(get(list, "notifications"), 0);
    assert_string_equal(pe_test_json_str(first, "kind"), "changeset.srm_mismatch");
    assert_string_equal(pe_test_json_str(first, "changesetId"), id);
    assert_non_null(strstr(pe_test_json_str(first, "body"), "Sample ratio mismatch"));
    cJSON_Delete(list);
}

/* Sessions of n units a day before start (the pre-period) and a minute after it (exposed to key,
 * the first half control): every unit reaches the cart in both; a unit g passes checkout in
 * the pre-period when g % 10 < 5 and in the experiment when (g % 10 < 5) differs from
 * (g % 20 == 7 or g % 20 == 2) — its own past predicts it nine times in ten. */
static void loyal_units(const char *store, const char *start, const char *key, int n)
{
    static const struct {
        const char *name;
        int step;
    } kinds[] = {{"storefront.page.viewed", 0},
                 {"experiment.exposure.assigned", 0},
                 {"storefront.cart.item_added", 1},
                 {"checkout.session.started", 2}};
    for (int pre = 0; pre < 2; pre++)
        for (size_t k = 0; k < PE_ARRAY_LEN(kinds); k++) {
            if (pre && k == 1)
                continue; /* no exposure before the experiment */
            char *r = pe_test_sqlf(
                fx.conninfo,
                "WITH g AS (SELECT g, '%s'::timestamptz + make_interval(secs => %d + g + %zu) AS t,"
                "                  (g %% 10 < 5) AS loyal, (g %% 20 IN (7, 2)) AS flip"
                "             FROM generate_series(0, %d) g)"
                "INSERT INTO events (store_id, occurred_at, event_id, name, funnel_step,"
                " session_id, anonymous_id, client_ts, received_at, properties)"
                " SELECT '%s', t, gen_random_uuid(), '%s', %d, 's-c%d-' || g, 'c' || g, t, now(),"
                "        CASE WHEN %zu = 1 THEN jsonb_build_object('flagKey', '%s', 'variant',"
                "                 CASE WHEN g < %d THEN 'control' ELSE 'treatment' END)"
                "             ELSE '{}'::jsonb END"
                "   FROM g WHERE %d < 2 OR (CASE WHEN %d = 1 THEN loyal ELSE loyal <> flip END)"
                " RETURNING 1",
                start, pre ? -86400 : 60, k, n - 1, store, kinds[k].name, kinds[k].step, pre, k,
                key, n / 2, kinds[k].step, pre);
            free(r);
        }
}

/* CUPED with the units' own pre-period: the same units, the same decision rule, measured by a
 * ChangeSet that plans CUPED and one that does not: the adjusted interval is far narrower. */
static void test_cuped_narrows(void **state)
{
    (void)state;
    char with[32], start[64];
    create(&b, "banner-cuped", "holdout", with);
    cJSON_Delete(move(&b, with, "PENDING_APPROVAL"));
    cJSON_Delete(move(&b, with, "ACTIVE"));
    loyal_units(b.id, started(&b, with, start), "banner-cuped", 400);
    const char *agg[] = {"aggregate", "--store", b.id, NULL};
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg));
    cJSON *r = results(&b, with, 200);
    const cJSON *cu = get(r, "cuped");
    assert_true(cJSON_IsTrue(get(cu, "applied")));
    assert_int_equal((int)pe_test_json_num(cu, "unitsWithPrePeriod"), 400);
    const cJSON *e = get(get(r, "decision"), "evidence");
    double w_cuped = pe_test_json_num(e, "ciHigh") - pe_test_json_num(e, "ciLow");
    cJSON_Delete(r);
    /* the same plan without CUPED, on the same flag's units (taken over from the first) */
    pe_changeset_config_t cfg = {.db = fx.pool};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
    cJSON *cs = NULL;
    assert_int_equal(pe_changeset_get(svc, b.id, with, &cs), 0);
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(cs, "proofPlan"),
                                           "statisticalMethod", cJSON_CreateString("frequentist"));
    pe_refusal_t err = {"", ""};
    assert_int_equal(
        pe_experiments_results(fx.pool, b.id, cs, start_of(cs) + 3600000000LL, &r, &err), 0);
    assert_false(cJSON_IsTrue(get(get(r, "cuped"), "applied")));
    e = get(get(r, "decision"), "evidence");
    double w_plain = pe_test_json_num(e, "ciHigh") - pe_test_json_num(e, "ciLow");
    print_message("checkout conversion interval width: %.4f with CUPED, %.4f without\n", w_cuped,
                  w_plain);
    assert_true(w_cuped < 0.7 * w_plain);
    cJSON_Delete(r);
    cJSON_Delete(cs);
    pe_changeset_service_free(svc);
}

/* A merchant's rollback through the API: the next measure run records it (kind manual), measured
 * as the experiment stood when it ended — units exposed after it are not counted. */
static void test_manual_rollback_recorded(void **state)
{
    (void)state;
    char id[32], start[64], path[256];
    create(&a, "banner-manual", "holdout", id);
    cJSON_Delete(move(&a, id, "PENDING_APPROVAL"));
    cJSON_Delete(move(&a, id, "ACTIVE"));
    /* live for an hour before the merchant rolls it back: its start moved back (the audit
     * chain does not cover execution), its units exposed within that hour */
    int64_t start_us = 0;
    assert_int_equal(pe_time_parse_rfc3339(started(&a, id, start), &start_us), 0);
    pe_time_format_rfc3339(start_us - 3600000000LL, start, sizeof start);
    free(pe_test_sqlf(fx.conninfo,
                      "UPDATE changesets SET started_at = '%s',"
                      "       execution = jsonb_set(execution, '{startedAt}', to_jsonb('%s'::text))"
                      " WHERE store_id = '%s' AND id = '%s' RETURNING 1",
                      start, start, a.id, id));
    bulk(a.id, start, "banner-manual", "mr", 200, 50, 50);
    cJSON_Delete(move(&a, id, "ROLLED_BACK"));
    /* after the rollback: more units, exposed an hour later (the flag is off by then) */
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s", a.id, id);
    cJSON *cs = expect("GET", path, NULL, &a, 200);
    int64_t end_us = 0;
    assert_int_equal(
        pe_time_parse_rfc3339(pe_test_json_str(get(cs, "execution"), "endedAt"), &end_us), 0);
    cJSON_Delete(cs);
    char later[40];
    pe_time_format_rfc3339(end_us + 3600000000LL, later, sizeof later);
    bulk(a.id, later, "banner-manual", "ml", 100, 0, 100);
    const char *agg[] = {"aggregate", "--store", a.id, NULL};
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg));
    const char *args[] = {"measure", "--store", a.id, NULL};
    cJSON *out = pe_test_cli_json(fx.conninfo, 0, args);
    const cJSON *r, *found = NULL;
    cJSON_ArrayForEach(r, get(out, "recorded")) if (strcmp(pe_test_json_str(r, "id"), id) == 0)
        found = r;
    assert_non_null(found);
    assert_string_equal(pe_test_json_str(found, "kind"), "manual");
    cJSON_Delete(out);
    pe_test_sql_expect(fx.conninfo, "ROLLED_BACK|manual||100|100|0.0000|t",
                       "SELECT concat_ws('|', outcome, rollback_kind,"
                       "       coalesce(decision_action, ''), control_units, treatment_units,"
                       "       round(primary_effect::numeric, 4), ended_at IS NOT NULL)"
                       "  FROM experiment_results WHERE store_id = '%s' AND changeset_id = '%s'",
                       a.id, id);
    /* the results of an ended experiment are frozen at its end, too */
    cJSON *res = results(&a, id, 200);
    assert_int_equal((int)pe_test_json_num(variant(res, "treatment"), "units"), 100);
    cJSON_Delete(res);
    /* recorded once: the next run has nothing more to record */
    out = pe_test_cli_json(fx.conninfo, 0, args);
    cJSON_ArrayForEach(r, get(out, "recorded"))
        assert_string_not_equal(pe_test_json_str(r, "id"), id);
    cJSON_Delete(out);
}

/* A trigger with a trailing window: 2,000 units a side with no difference on day 0, then 100 a
 * side on day 2 whose checkout falls from 0.6 to 0.1. At 2.5 days the whole experiment is down
 * 4 % (not significant always-valid), the last day's units 83 %: the 1-day trigger fires on
 * them; at day 4 the window holds no unit and nothing fires. An absolute threshold (treatment
 * below 0.2) on the same window fires too; one below 0.05 does not. */
static void test_trigger_window_fires(void **state)
{
    (void)state;
    static const struct {
        const char *key, *trigger, *want_at_2_5;
    } cases[] = {
        {"banner-window",
         "[{\"metric\":\"checkout_conversion_rate\",\"operator\":\"lt\",\"threshold\":-0.1,"
         "\"window\":\"P1D\",\"minimumSampleSize\":50,\"action\":\"rollback\"}]",
         "ROLLBACK"},
        {"banner-window-abs",
         "[{\"metric\":\"checkout_conversion_rate\",\"operator\":\"lte\",\"threshold\":0.2,"
         "\"window\":\"PT24H\",\"minimumSampleSize\":50,\"action\":\"rollback\"}]",
         "ROLLBACK"},
        {"banner-window-low",
         "[{\"metric\":\"checkout_conversion_rate\",\"operator\":\"lt\",\"threshold\":0.05,"
         "\"window\":\"P1D\",\"minimumSampleSize\":50,\"action\":\"rollback\"}]",
         "KEEP_RUNNING"},
    };
    pe_changeset_config_t cfg = {.db = fx.pool};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        char id[32], start[64], later[40];
        create_plan_triggers(&b, cases[i].key, "holdout", "P7D", 100, cases[i].trigger, id);
        cJSON_Delete(move(&b, id, "PENDING_APPROVAL"));
        cJSON_Delete(move(&b, id, "ACTIVE"));
        int64_t start_us = 0;
        assert_int_equal(pe_time_parse_rfc3339(started(&b, id, start), &start_us), 0);
        char p1[8], p2[8];
        snprintf(p1, sizeof p1, "e%zu", i);
        snprintf(p2, sizeof p2, "f%zu", i);
        bulk(b.id, start, cases[i].key, p1, 4000, 60, 60);
        pe_time_format_rfc3339(start_us + 2 * 86400000000LL, later, sizeof later);
        bulk(b.id, later, cases[i].key, p2, 200, 60, 10);
        const char *agg[] = {"aggregate", "--store", b.id, NULL};
        cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg));
        cJSON *cs = NULL, *r = NULL;
        assert_int_equal(pe_changeset_get(svc, b.id, id, &cs), 0);
        pe_refusal_t err = {"", ""};
        /* as the measure job leaves it: the per-unit table built (the window read from it) */
        assert_int_equal(pe_experiments_refresh(fx.pool, b.id, start_us + 60 * 3600000000LL,
                                                PE_EXPERIMENTS_REFRESH_DUE, NULL),
                         0);
        assert_int_equal(
            pe_experiments_results(fx.pool, b.id, cs, start_us + 60 * 3600000000LL, &r, &err), 0);
        const cJSON *d = get(r, "decision");
        print_message("%s: %s\n", cases[i].key, pe_test_json_str(d, "reason"));
        assert_string_equal(pe_test_json_str(d, "action"), cases[i].want_at_2_5);
        const cJSON *t0 = cJSON_GetArrayItem(get(r, "triggers"), 0);
        assert_true(cJSON_IsTrue(get(t0, "evaluated")));
        assert_float_equal(pe_test_json_num(t0, "windowDays"), 1, 1e-12);
        assert_string_equal(pe_test_json_str(t0, "thresholdKind"), i ? "absolute" : "relative");
        if (strcmp(cases[i].want_at_2_5, "ROLLBACK") == 0) {
            assert_non_null(
                strstr(pe_test_json_str(d, "reason"), "over the units of the last 1 day"));
            assert_non_null(strstr(pe_test_json_str(d, "reason"), "after 200 units"));
        }
        /* the whole experiment: down, but not enough to be sure */
        const cJSON *e;
        cJSON_ArrayForEach(e, get(r, "effects"))
        {
            if (strcmp(pe_test_json_str(e, "metric"), "checkout_conversion_rate") == 0)
                assert_true(pe_test_json_num(e, "effect") < 0 &&
                            pe_test_json_num(e, "alwaysValidP") > 0.01);
        }
        cJSON_Delete(r);
        /* day 4: nobody was exposed in the last day */
        assert_int_equal(
            pe_experiments_results(fx.pool, b.id, cs, start_us + 4 * 86400000000LL, &r, &err), 0);
        assert_string_equal(pe_test_json_str(get(r, "decision"), "action"), "KEEP_RUNNING");
        cJSON_Delete(r);
        cJSON_Delete(cs);
    }
    pe_changeset_service_free(svc);
}

/* The "variants" and "effects" of results as one JSON text (caller frees). */
static char *figures(const cJSON *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "variants", cJSON_Duplicate(get(r, "variants"), true));
    cJSON_AddItemToObject(o, "effects", cJSON_Duplicate(get(r, "effects"), true));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* Incremental measurement (units.c): after a first build, batches of new units, late events
 * on sessions already measured, new sessions of measured units and re-exposures are measured
 * by rewriting only the units they touched; the arms then equal those of a rebuild from
 * scratch exactly, and those read from the rollups directly (SQL_ARMS) to the last bits. */
static void test_incremental_equals_full(void **state)
{
    (void)state;
    char id[32], start[64];
    create(&b, "banner-incremental", "holdout", id);
    cJSON_Delete(move(&b, id, "PENDING_APPROVAL"));
    cJSON_Delete(move(&b, id, "ACTIVE"));
    started(&b, id, start);
    const char *agg[] = {"aggregate", "--store", b.id, NULL};
    pe_changeset_config_t cfg = {.db = fx.pool};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
    cJSON *cs = NULL, *r = NULL;
    assert_int_equal(pe_changeset_get(svc, b.id, id, &cs), 0);
    int64_t now = start_of(cs) + 3600000000LL;
    pe_refusal_t err = {"", ""};
    pe_experiments_refresh_t done;

    /* batch 1; a GET before the job built the table reads the rollups (and builds nothing),
     * then the job's refresh builds it */
    bulk(b.id, start, "banner-incremental", "i", 400, 60, 30);
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg));
    assert_int_equal(pe_experiments_results(fx.pool, b.id, cs, now, &r, &err), 0);
    assert_int_equal((int)pe_test_json_num(variant(r, "control"), "units"), 200);
    cJSON_Delete(r);
    pe_test_sql_expect(fx.conninfo, "0",
                       "SELECT count(*) FROM experiment_units WHERE store_id = '%s'"
                       "   AND changeset_id = '%s'",
                       b.id, id);
    assert_int_equal(pe_experiments_refresh(fx.pool, b.id, now, PE_EXPERIMENTS_REFRESH_DUE, &done),
                     0);
    assert_true(done.rebuilt >= 1);
    pe_test_sql_expect(fx.conninfo, "400",
                       "SELECT count(*) FROM experiment_units WHERE store_id = '%s'"
                       "   AND changeset_id = '%s'",
                       b.id, id);
    /* batch 2: 100 new units; an order late in a session already measured (unit i7); a new
     * session with an order of a control unit (i13); a re-exposure of i13 to the treatment */
    bulk(b.id, start, "banner-incremental", "j", 100, 50, 50);
    event(b.id, start, "s-i7", "i7", "checkout.order.completed", 5, 600,
          "{\"orderId\":\"late\",\"value\":80,\"currency\":\"EUR\",\"items\":"
          "[{\"productId\":\"SKU-B\",\"quantity\":2,\"price\":40}]}",
          NULL);
    event(b.id, start, "s-i13-late", "i13", "storefront.page.viewed", 0, 900, "{}", NULL);
    event(b.id, start, "s-i13-late", "i13", "experiment.exposure.assigned", 0, 901,
          "{\"flagKey\":\"banner-incremental\",\"variant\":\"treatment\"}", NULL);
    event(b.id, start, "s-i13-late", "i13", "checkout.order.completed", 5, 960,
          "{\"orderId\":\"o13\",\"value\":30,\"currency\":\"EUR\",\"items\":"
          "[{\"productId\":\"SKU-A\",\"quantity\":1,\"price\":30}]}",
          NULL);
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg));
    assert_int_equal(pe_experiments_refresh(fx.pool, b.id, now, PE_EXPERIMENTS_REFRESH_DUE, &done),
                     0);
    print_message("incremental: %llu units logged, %llu of %llu experiments rebuilt\n",
                  done.units_logged, done.rebuilt, done.experiments);
    assert_int_equal(done.rebuilt, 0);
    assert_true(done.units_logged >= 102 && done.units_logged < 200);
    /* batch 3: 60 more units */
    bulk(b.id, start, "banner-incremental", "k", 60, 20, 70);
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg));
    assert_int_equal(pe_experiments_results(fx.pool, b.id, cs, now, &r, &err), 0);
    char *incremental = figures(r);
    cJSON_Delete(r);
    pe_test_sql_expect(fx.conninfo, "560",
                       "SELECT count(*) FROM experiment_units WHERE store_id = '%s'"
                       "   AND changeset_id = '%s'",
                       b.id, id);
    /* a rebuild from scratch: the same figures, exactly */
    assert_int_equal(pe_experiments_refresh(fx.pool, b.id, now, PE_EXPERIMENTS_REFRESH_ALL, &done),
                     0);
    assert_true(done.rebuilt >= 1);
    assert_int_equal(pe_experiments_results(fx.pool, b.id, cs, now, &r, &err), 0);
    char *full = figures(r);
    cJSON_Delete(r);
    print_message("%s\n", incremental);
    assert_string_equal(incremental, full);
    /* and the rollups read directly (an experiment not running is read so) agree */
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(cs, "execution"),
                                           "status", cJSON_CreateString("PROVEN"));
    assert_int_equal(pe_experiments_results(fx.pool, b.id, cs, now, &r, &err), 0);
    cJSON *direct = cJSON_Parse(full);
    const cJSON *rows = get(direct, "variants");
    for (int k = 0; k < 2; k++) {
        const cJSON *x = cJSON_GetArrayItem(get(r, "variants"), k),
                    *y = cJSON_GetArrayItem(rows, k);
        static const char *const f[] = {"units",  "orders",         "revenue",
                                        "profit", "conversionRate", "profitPerVisitor"};
        for (size_t i = 0; i < PE_ARRAY_LEN(f); i++)
            assert_float_equal(pe_test_json_num(x, f[i]), pe_test_json_num(y, f[i]), 1e-9);
    }
    /* treatment i13 stays control (intention to treat), with its late order */
    assert_int_equal((int)pe_test_json_num(variant(r, "control"), "units"), 200 + 50 + 30);
    cJSON_Delete(direct);
    cJSON_Delete(r);
    free(incremental);
    free(full);
    cJSON_Delete(cs);
    pe_changeset_service_free(svc);
}

/* An ended experiment's results are read from the rollups. A store whose rows the planner's
 * statistics have not counted yet (its first roll-up analysed one visitor, the next added
 * twelve thousand; autovacuum has not come by) must still be answered at once: the statement
 * looked each session's money up by joining back aggregates that the plan then rebuilt once per
 * session, which ran into the 30 s statement timeout (a 503 on a new store's results page). */
static void test_results_without_statistics(void **state)
{
    (void)state;
    static const char *const TABLES[] = {"agg_sessions", "agg_exposures", "agg_orders",
                                         "agg_session_products"};
    pe_test_tenant_t c;
    pe_test_tenant_make(&c, fx.pool, "Results C", "Europe/Berlin", "EUR", NULL, NULL);
    char id[32], start[64];
    create(&c, "banner-big", "holdout", id);
    cJSON_Delete(move(&c, id, "PENDING_APPROVAL"));
    cJSON_Delete(move(&c, id, "ACTIVE"));
    int64_t start_us = 0;
    assert_int_equal(pe_time_parse_rfc3339(started(&c, id, start), &start_us), 0);
    pe_time_format_rfc3339(start_us - 3 * 3600000000LL, start, sizeof start);
    free(pe_test_sqlf(fx.conninfo,
                      "UPDATE changesets SET started_at = '%s',"
                      "       execution = jsonb_set(execution, '{startedAt}', to_jsonb('%s'::text))"
                      " WHERE store_id = '%s' AND id = '%s' RETURNING 1",
                      start, start, c.id, id));
    const char *agg[] = {"aggregate", "--store", c.id, NULL};
    bulk(c.id, start, "banner-big", "first", 2, 0, 100);
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg)); /* the first, full run: analysed */
    for (size_t i = 0; i < PE_ARRAY_LEN(TABLES); i++)
        free(pe_test_sqlf(fx.conninfo, "ALTER TABLE %s SET (autovacuum_enabled = false)",
                          TABLES[i]));
    bulk(c.id, start, "banner-big", "big", 12000, 30, 40);
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, agg)); /* incremental: not analysed */
    cJSON_Delete(move(&c, id, "ROLLED_BACK"));
    pe_changeset_config_t cfg = {.db = fx.pool};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
    cJSON *cs = NULL, *r = NULL;
    assert_int_equal(pe_changeset_get(svc, c.id, id, &cs), 0);
    pe_refusal_t err = {"", ""};
    int64_t t0 = pe_now_mono_us();
    int rc = pe_experiments_results(fx.pool, c.id, cs, pe_now_unix_us(), &r, &err);
    double seconds = (double)(pe_now_mono_us() - t0) / 1e6;
    print_message("an ended experiment of 12,000 visitors, statistics without its store: %.2f s\n",
                  seconds);
    for (size_t i = 0; i < PE_ARRAY_LEN(TABLES); i++)
        free(pe_test_sqlf(fx.conninfo, "ALTER TABLE %s RESET (autovacuum_enabled)", TABLES[i]));
    assert_int_equal(rc, 0); /* PE_ETIMEOUT before */
    assert_true(seconds < 10);
    /* every unit exposed while it ran, as the rollup has them */
    long units = pe_test_sql_long(
        fx.conninfo,
        "SELECT count(DISTINCT x.unit) FROM agg_exposures x JOIN changesets c ON c.store_id ="
        " x.store_id AND c.feature_flag_key = x.flag_key WHERE x.store_id = '%s' AND c.id = '%s'"
        " AND NOT x.holdout AND x.first_at >= c.started_at AND x.first_at < c.ended_at",
        c.id, id);
    assert_true(units > 10000);
    assert_float_equal(pe_test_json_num(variant(r, "control"), "units") +
                           pe_test_json_num(variant(r, "treatment"), "units"),
                       (double)units, 0);
    cJSON_Delete(r);
    cJSON_Delete(cs);
    pe_changeset_service_free(svc);
}

static int group_setup(void **state)
{
    pe_test_fixture_open(&fx, PE_LOG_WARN, 4);
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
        cmocka_unit_test(test_measure_rolls_back_harm),
        cmocka_unit_test(test_measure_proves_win),
        cmocka_unit_test(test_measure_freezes_on_srm),
        cmocka_unit_test(test_cuped_narrows),
        cmocka_unit_test(test_manual_rollback_recorded),
        cmocka_unit_test(test_trigger_window_fires),
        cmocka_unit_test(test_incremental_equals_full),
        cmocka_unit_test(test_results_without_statistics),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
