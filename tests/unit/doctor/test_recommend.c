/*
 * test_recommend.c — playbooks and recommendations, the pure part (src/doctor/playbooks.c,
 * recommend.c).
 *
 * Invariants checked:
 *  1. The catalogue: every built-in passes pe_doctor_playbook_check, keys are unique, at least
 *     twelve, every funnel step and both implementation methods are covered, every playbook
 *     names a source; a playbook with a bad field is refused naming it.
 *  2. Matching: step, segment dimensions, required values (the mobile address form only for
 *     handheld devices, the local payment method only for a country, the first-order discount
 *     only for new visitors), and store-wide findings only where a playbook allows them.
 *  3. Impact by hand (README "Recommendations"): orders = gap · u (u: the share of the gap the
 *     change wins back), the step's relative uplift u·(ref − r)/r capped for a broken step, revenue
 *     at the finding's AOV, profit = revenue · margin − cost, the discount's cost on every order
 *     in scope; priority = likelihood · mid-profit ÷ effort. A discount whose expected profit is
 *     negative is never worth proposing; the same discount on a small enough category is; a
 *     finding another one explains (its symptom) gets none.
 *  4. Every built-in playbook, on every finding shape it matches (each step, each targetable
 *     dimension, store-wide), builds a ChangeSet that passes pe_changeset_validate in client
 *     mode, with the finding's segment as targetSegment rules, a holdout 50/50 rollout, the
 *     store's margin floor, a rollback trigger at −5 % on the primary metric (and on profit per
 *     visitor), profit per visitor as the primary metric of anything that costs money, and a
 *     measurement window of whole weeks, at least 7 days, that grows as traffic shrinks.
 *  5. A loss is never recovered twice: a finding's gap shrinks by the gaps of earlier-ranked
 *     findings at the same step whose segment lies inside it (the whole store after mobile).
 *  6. The request parsers: the status list (default active and blocked, names known, each once)
 *     and the approve / reject bodies (booleans, a reason without control characters ≤ 4000
 *     bytes), refusals naming the field.
 *  7. A segment the flag cannot target (an unknown device, an hour band) gets no
 *     recommendation; a finding's key is stable and a stored finding parses back.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/changeset.h"
#include "pe/doctor.h"
#include "pe/stats.h"
#include "pe_test.h"

static const pe_doctor_playbook_t *find(const char *key)
{
    size_t n = 0;
    const pe_doctor_playbook_t *all = pe_doctor_playbooks_builtin(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].key, key) == 0)
            return &all[i];
    fail_msg("no playbook %s", key);
    return NULL;
}

/* A segment_gap at step with one dimension fixed (dim < 0: store-wide). 30-day window, 3,000
 * sessions at the step before, 0.5 against 0.6, 100 orders lost a month at 50 a piece. */
static pe_doctor_finding_t finding(int step, int dim, const char *value)
{
    pe_doctor_finding_t f = {
        .kind = PE_DOCTOR_SEGMENT_GAP,
        .step = step,
        .rate = 0.5,
        .reference_rate = 0.6,
        .sessions = 3000,
        .reference_sessions = 9000,
        .p_value = 1e-6,
        .q_value = 1e-5,
        .likelihood = 0.9,
        .lost_orders = 100,
        .lost_revenue = 5000,
        .lost_profit = 2000,
    };
    if (dim >= 0) {
        f.has[dim] = true;
        snprintf(f.value[dim], sizeof f.value[dim], "%s", value);
    } else {
        f.kind = PE_DOCTOR_BENCHMARK_GAP;
    }
    snprintf(f.title, sizeof f.title, "A planted gap");
    snprintf(f.explanation, sizeof f.explanation, "Planted for the test.");
    return f;
}

static pe_doctor_economics_t economics(void)
{
    static const char *const G =
        "{\"minMarginPct\":22,\"minStockUnits\":3,\"sloGates\":[{\"metric\":\"checkout_error_"
        "rate\",\"operator\":\"lte\",\"threshold\":0.02}]}";
    static cJSON *guardrails;
    if (!guardrails)
        guardrails = cJSON_Parse(G);
    return (pe_doctor_economics_t){
        .margin = 0.4,
        .shipping_share = PE_DOCTOR_SHIPPING_SHARE,
        .category = "Sneakers",
        .category_share = 0.2,
        .window_days = 30,
        .store_sessions = 30000,
        .has_pre_period = true,
        .currency = "EUR",
        .guardrails = guardrails,
    };
}

/* The stored form of f, as run.c writes it (enough for build: id, segment, evidence). */
static cJSON *finding_doc(const pe_doctor_finding_t *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *seg = cJSON_AddObjectToObject(o, "segment");
    for (int d = 0; d < PE_DOCTOR_DIMS; d++)
        if (f->has[d])
            cJSON_AddStringToObject(seg, pe_doctor_dim_name((pe_doctor_dim_t)d), f->value[d]);
    cJSON_AddStringToObject(o, "id", "6f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a5b");
    cJSON *ev = cJSON_AddArrayToObject(o, "evidence");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "metric", "shipping_conversion");
    cJSON_AddNumberToObject(p, "value", f->rate);
    cJSON_AddStringToObject(p, "unit", "ratio");
    cJSON_AddStringToObject(p, "period", "P30D");
    cJSON_AddStringToObject(p, "source", "aggregates");
    cJSON_AddNumberToObject(p, "sampleSize", f->sessions);
    cJSON_AddItemToArray(ev, p);
    return o;
}

static void test_catalogue(void **state)
{
    (void)state;
    size_t n = 0;
    const pe_doctor_playbook_t *all = pe_doctor_playbooks_builtin(&n);
    assert_true(n >= 12);
    unsigned steps = 0;
    bool flag = false, config = false;
    for (size_t i = 0; i < n; i++) {
        pe_refusal_t err = {"", ""};
        if (pe_doctor_playbook_check(&all[i], &err) != 0)
            fail_msg("%s: %s", all[i].key, err.message);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(all[i].key, all[j].key);
        steps |= all[i].steps;
        flag = flag || strcmp(all[i].method, "feature_flag") == 0;
        config = config || strcmp(all[i].method, "config_change") == 0;
        assert_true(strlen(all[i].source) > 10);
    }
    assert_int_equal(steps, 0x3eu); /* cart … confirmation */
    assert_true(flag && config);

    pe_doctor_playbook_t bad = *find("guest-checkout");
    pe_refusal_t err = {"", ""};
    bad.effort = 0;
    assert_int_equal(pe_doctor_playbook_check(&bad, &err), PE_EINVAL);
    assert_string_equal(err.message, "guest-checkout.effort: must be 1..13 points");
    bad = *find("guest-checkout");
    bad.uplift_high = 1.5;
    assert_int_equal(pe_doctor_playbook_check(&bad, &err), PE_EINVAL);
    assert_non_null(strstr(err.message, "guest-checkout.uplift"));
    bad = *find("guest-checkout");
    bad.key = "Guest Checkout";
    assert_int_equal(pe_doctor_playbook_check(&bad, &err), PE_EINVAL);
    assert_non_null(strstr(err.message, "key: must be"));
    bad = *find("category-discount");
    bad.amount = 0;
    assert_int_equal(pe_doctor_playbook_check(&bad, &err), PE_EINVAL);
    assert_non_null(strstr(err.message, "category-discount.amount"));
    bad = *find("guest-checkout");
    bad.after = "{not json";
    assert_int_equal(pe_doctor_playbook_check(&bad, &err), PE_EINVAL);
    assert_non_null(strstr(err.message, "before/after"));
}

static void test_matching(void **state)
{
    (void)state;
    pe_doctor_finding_t mobile = finding(3, PE_DOCTOR_DEVICE, "mobile");
    pe_doctor_finding_t desktop = finding(3, PE_DOCTOR_DEVICE, "desktop");
    pe_doctor_finding_t store = finding(3, -1, NULL);
    pe_doctor_finding_t nl = finding(4, PE_DOCTOR_COUNTRY, "NL");
    pe_doctor_finding_t fresh = finding(1, PE_DOCTOR_VISITOR, "new");
    pe_doctor_finding_t hour = finding(3, PE_DOCTOR_HOUR_BAND, "night");
    const pe_doctor_playbook_t *form = find("mobile-address-form");
    assert_true(pe_doctor_playbook_matches(form, &mobile));
    assert_false(pe_doctor_playbook_matches(form, &desktop));
    assert_false(pe_doctor_playbook_matches(form, &store));
    const pe_doctor_playbook_t *local = find("local-payment-method");
    assert_true(pe_doctor_playbook_matches(local, &nl));
    assert_false(pe_doctor_playbook_matches(local, &mobile)); /* wrong step and dimension */
    pe_doctor_finding_t mobile_payment = finding(4, PE_DOCTOR_DEVICE, "mobile");
    assert_false(pe_doctor_playbook_matches(local, &mobile_payment));
    const pe_doctor_playbook_t *first = find("first-order-discount");
    assert_true(pe_doctor_playbook_matches(first, &fresh));
    pe_doctor_finding_t returning = finding(1, PE_DOCTOR_VISITOR, "returning");
    assert_false(pe_doctor_playbook_matches(first, &returning));
    assert_true(pe_doctor_playbook_matches(find("shipping-cost-upfront"), &store));
    /* no playbook answers an hour band: the flag cannot target it */
    size_t n = 0;
    const pe_doctor_playbook_t *all = pe_doctor_playbooks_builtin(&n);
    for (size_t i = 0; i < n; i++)
        assert_false(pe_doctor_playbook_matches(&all[i], &hour));
}

static void test_impact_by_hand(void **state)
{
    (void)state;
    pe_doctor_finding_t f = finding(4, PE_DOCTOR_DEVICE, "mobile");
    pe_doctor_economics_t eco = economics();
    pe_doctor_impact_t m;
    /* trust messaging wins back 1–5 % of the 100 orders the gap loses: 1 and 5 orders, the
     * 0.5 step lifted by 0.01·0.1 and 0.05·0.1, i.e. 0.2 % and 1 % relative */
    assert_int_equal(pe_doctor_impact(find("trust-returns-messaging"), &f, &eco, &m), 0);
    assert_float_equal(m.orders[0], 1, 1e-9);
    assert_float_equal(m.orders[1], 5, 1e-9);
    assert_float_equal(m.step_uplift[0], 0.002, 1e-12);
    assert_float_equal(m.step_uplift[1], 0.01, 1e-12);
    assert_float_equal(m.revenue[1], 250, 1e-9);
    assert_float_equal(m.cost[1], 0, 0);
    assert_float_equal(m.profit[0], 20, 1e-9);
    assert_float_equal(m.profit[1], 100, 1e-9);
    assert_float_equal(m.expected_profit, 0.9 * 60, 1e-9);
    assert_float_equal(m.priority, 0.9 * 60 / 1, 1e-9);
    assert_false(m.profit_metric);
    assert_true(pe_doctor_impact_worth_proposing(&m));
    /* a step that converts nothing: the relative uplift is capped, the orders are the gap's */
    pe_doctor_finding_t broken = f;
    broken.rate = 0;
    assert_int_equal(pe_doctor_impact(find("mobile-address-form"), &broken, &eco, &m), 0);
    assert_float_equal(m.orders[1], 15, 1e-9);
    assert_float_equal(m.step_uplift[1], 10, 0);
    /* a symptom gets no recommendation: its cause does */
    pe_doctor_finding_t symptom = finding(4, -1, NULL);
    symptom.explained_by = 1;
    assert_int_equal(pe_doctor_impact(find("express-wallets"), &symptom, &eco, &m), PE_ENOTFOUND);

    /* a 10 % discount on the whole store (scope share 1): every one of the 500 orders that come
     * anyway pays it. Low end 5 %: 5 more orders, cost 0.1 · 505 · 50 = 2,525, profit
     * 5 · 50 · 0.4 − 2,525 = −2,425: never worth proposing */
    pe_doctor_finding_t cart = finding(2, PE_DOCTOR_DEVICE, "mobile");
    pe_doctor_economics_t all_store = eco;
    all_store.category_share = 1;
    assert_int_equal(pe_doctor_impact(find("category-discount"), &cart, &all_store, &m), 0);
    assert_float_equal(m.orders[0], 5, 1e-9);
    assert_float_equal(m.cost[0], 2525, 1e-9);
    assert_float_equal(m.profit[0], -2425, 1e-9);
    assert_true(m.profit_metric);
    assert_false(pe_doctor_impact_worth_proposing(&m));
    /* the same on a category with 1 % of the revenue costs 25.25 at the low end */
    pe_doctor_economics_t small = eco;
    small.category_share = 0.01;
    assert_int_equal(pe_doctor_impact(find("category-discount"), &cart, &small, &m), 0);
    assert_float_equal(m.cost[0], 25.25, 1e-9);
    assert_float_equal(m.profit[0], 5 * 50 * 0.4 - 25.25, 1e-9);
    assert_true(pe_doctor_impact_worth_proposing(&m));
    /* free shipping waives 8 % of the order value on every order */
    assert_int_equal(pe_doctor_impact(find("free-shipping-threshold"), &cart, &eco, &m), 0);
    assert_float_equal(m.cost[0], 0.08 * (500 + m.orders[0]) * 50, 1e-9);
    /* without a category a category playbook has nothing to scope */
    pe_doctor_economics_t none = eco;
    none.category = NULL;
    assert_int_equal(pe_doctor_impact(find("category-discount"), &cart, &none, &m), PE_ENOTFOUND);
    /* no gap, unknown values, a bad margin */
    pe_doctor_finding_t better = f;
    better.rate = 0.7;
    assert_int_equal(pe_doctor_impact(find("express-wallets"), &better, &eco, &m), PE_ENOTFOUND);
    pe_doctor_finding_t unknown = finding(4, PE_DOCTOR_DEVICE, "unknown");
    assert_int_equal(pe_doctor_impact(find("express-wallets"), &unknown, &eco, &m), PE_ENOTFOUND);
    pe_doctor_economics_t bad = eco;
    bad.margin = 1.5;
    assert_int_equal(pe_doctor_impact(find("express-wallets"), &f, &bad, &m), PE_EINVAL);
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* Builds pb on f and checks the ChangeSet against the contract and the plan's rules. */
static void check_build(const pe_doctor_playbook_t *pb, const pe_doctor_finding_t *f,
                        const pe_doctor_economics_t *eco)
{
    pe_doctor_impact_t m;
    int rc = pe_doctor_impact(pb, f, eco, &m);
    if (rc == PE_ENOTFOUND)
        return;
    assert_int_equal(rc, 0);
    cJSON *doc = finding_doc(f), *rec = NULL, *cs = NULL;
    assert_int_equal(pe_doctor_recommendation_build(pb, f, doc, eco, &m, &rec, &cs), 0);
    pe_refusal_t err = {"", ""};
    if (pe_changeset_validate(cs, PE_CHANGESET_CLIENT, &err) != 0)
        fail_msg("%s on %s: %s", pb->key, pe_doctor_kind_name(f->kind), err.message);
    const cJSON *ap = get(cs, "actionPlan"), *seg = get(ap, "targetSegment");
    int fixed = 0;
    for (int d = 0; d < PE_DOCTOR_DIMS; d++)
        fixed += f->has[d];
    assert_int_equal(cJSON_GetArraySize(get(seg, "rules")), fixed);
    if (f->has[PE_DOCTOR_DEVICE]) {
        const cJSON *r = cJSON_GetArrayItem(get(seg, "rules"), 0);
        assert_string_equal(pe_test_json_str(r, "attribute"), "device.type");
        assert_string_equal(pe_test_json_str(r, "operator"), "eq");
        assert_string_equal(pe_test_json_str(r, "value"), f->value[PE_DOCTOR_DEVICE]);
    }
    assert_string_equal(pe_test_json_str(ap, "rolloutStrategy"), "holdout");
    assert_int_equal((int)pe_test_json_num(ap, "rolloutPercentage"), 50);
    assert_int_equal((int)pe_test_json_num(get(cs, "guardrails"), "profitFloor"), 22);
    assert_int_equal((int)pe_test_json_num(get(cs, "guardrails"), "stockThreshold"), 3);
    assert_int_equal(cJSON_GetArraySize(get(get(cs, "guardrails"), "sloRequirements")), 1);
    const cJSON *pp = get(cs, "proofPlan");
    const char *primary =
        pe_test_json_str(cJSON_GetArrayItem(get(pp, "primaryMetrics"), 0), "name");
    assert_string_equal(primary, pb->cost != PE_DOCTOR_COST_NONE ? "profit_per_visitor" : primary);
    if (pb->cost == PE_DOCTOR_COST_NONE)
        assert_non_null(strstr(primary, "_conversion_rate"));
    const cJSON *triggers = get(get(cs, "rollbackPlan"), "autoRollbackTriggers");
    assert_string_equal(pe_test_json_str(cJSON_GetArrayItem(triggers, 0), "metric"), primary);
    assert_float_equal(pe_test_json_num(cJSON_GetArrayItem(triggers, 0), "threshold"), -0.05, 0);
    assert_string_equal(
        pe_test_json_str(cJSON_GetArrayItem(triggers, cJSON_GetArraySize(triggers) - 1), "metric"),
        "profit_per_visitor");
    int days = 0;
    assert_int_equal(sscanf(pe_test_json_str(pp, "measurementWindow"), "P%dD", &days), 1);
    assert_true(days >= 7 && days % 7 == 0);
    assert_true(pe_test_json_num(pp, "minimumSampleSize") >= 100);
    /* a trigger waits for a tenth of the proof's sample, never for more than 1,000 units */
    double trigger_min = pe_test_json_num(cJSON_GetArrayItem(triggers, 0), "minimumSampleSize");
    assert_true(trigger_min >= 100 && trigger_min <= 1000);
    assert_true(trigger_min == 1000 ||
                trigger_min >= ceil(pe_test_json_num(pp, "minimumSampleSize") / 10));
    assert_string_equal(pe_test_json_str(pp, "statisticalMethod"), "cuped");
    assert_string_equal(pe_test_json_str(get(cs, "hypothesis"), "confidenceLevel"), "medium");
    /* the recommendation's own fields */
    assert_string_equal(pe_test_json_str(rec, "playbook"), pb->key);
    assert_string_equal(pe_test_json_str(rec, "implementationMethod"), pb->method);
    assert_string_equal(pe_test_json_str(rec, "findingId"), "6f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a5b");
    assert_non_null(get(get(rec, "expectedImpactPerMonth"), "profit"));
    assert_non_null(strstr(pe_test_json_str(get(rec, "learnMore"), "source"), pb->source));
    assert_null(strchr(pe_test_json_str(rec, "title"), '{')); /* every template variable filled */
    assert_null(strchr(pe_test_json_str(rec, "description"), '{'));
    /* the flag key depends on the playbook and the finding only */
    cJSON *rec2 = NULL, *cs2 = NULL;
    assert_int_equal(pe_doctor_recommendation_build(pb, f, doc, eco, &m, &rec2, &cs2), 0);
    const char *k1 = pe_test_json_str(get(ap, "implementation"), "featureFlagKey");
    const char *k2 =
        pe_test_json_str(get(get(cs2, "actionPlan"), "implementation"), "featureFlagKey");
    assert_string_equal(k1, k2);
    assert_int_equal(strncmp(k1, "ap-", 3), 0);
    cJSON_Delete(rec2);
    cJSON_Delete(cs2);
    cJSON_Delete(rec);
    cJSON_Delete(cs);
    cJSON_Delete(doc);
}

static void test_changesets_valid(void **state)
{
    (void)state;
    static const struct {
        int dim;
        const char *value;
    } SHAPES[] = {{-1, NULL},
                  {PE_DOCTOR_DEVICE, "mobile"},
                  {PE_DOCTOR_DEVICE, "desktop"},
                  {PE_DOCTOR_COUNTRY, "NL"},
                  {PE_DOCTOR_SOURCE, "google"},
                  {PE_DOCTOR_VISITOR, "new"},
                  {PE_DOCTOR_CAMPAIGN, "black-friday"}};
    size_t n = 0, built = 0;
    const pe_doctor_playbook_t *all = pe_doctor_playbooks_builtin(&n);
    pe_doctor_economics_t eco = economics();
    eco.category_share = 0.01; /* so that the discounts are worth building */
    for (size_t i = 0; i < n; i++)
        for (int step = 1; step <= PE_DOCTOR_STEPS; step++)
            for (size_t s = 0; s < PE_ARRAY_LEN(SHAPES); s++) {
                pe_doctor_finding_t f = finding(step, SHAPES[s].dim, SHAPES[s].value);
                if (!pe_doctor_playbook_matches(&all[i], &f))
                    continue;
                check_build(&all[i], &f, &eco);
                built++;
            }
    assert_true(built > 100);
    /* a two-way segment: two rules, ANDed */
    pe_doctor_finding_t two = finding(3, PE_DOCTOR_DEVICE, "mobile");
    two.has[PE_DOCTOR_COUNTRY] = true;
    snprintf(two.value[PE_DOCTOR_COUNTRY], sizeof two.value[0], "FR");
    check_build(find("mobile-address-form"), &two, &eco);
}

static void test_window_grows_with_less_traffic(void **state)
{
    (void)state;
    pe_doctor_economics_t eco = economics();
    pe_doctor_finding_t big = finding(3, PE_DOCTOR_DEVICE, "mobile");
    big.sessions = 3000000;
    pe_doctor_impact_t a, b;
    assert_int_equal(pe_doctor_impact(find("mobile-address-form"), &big, &eco, &a), 0);
    assert_int_equal(a.window_days, PE_DOCTOR_MIN_WINDOW_DAYS);
    pe_doctor_finding_t small = big;
    small.sessions = 600;
    assert_int_equal(pe_doctor_impact(find("mobile-address-form"), &small, &eco, &b), 0);
    assert_float_equal(a.units_per_arm, b.units_per_arm, 1e-9); /* same rates: same sample */
    assert_true(b.days_needed > a.days_needed);
    assert_int_equal(b.window_days, PE_DOCTOR_MAX_WINDOW_DAYS);
    /* the sample is the power calculator's for the middle of the prior: 10 % of the 0.1 gap
     * is 0.01 on a 0.5 step, 2 % relative */
    pe_stats_sample_size_input_t in = {.metric = PE_STATS_PROPORTION,
                                       .baseline = 0.5,
                                       .mde = 0.02,
                                       .alpha = 0.05,
                                       .power = 0.9,
                                       .sides = PE_STATS_TWO_SIDED};
    pe_stats_sample_size_t ref;
    pe_refusal_t err;
    assert_int_equal(pe_stats_sample_size(&in, &ref, &err), 0);
    assert_float_equal(a.units_per_arm, ref.units_per_arm_ceil, 0);
}

static void test_finding_identity(void **state)
{
    (void)state;
    pe_doctor_finding_t f = finding(3, PE_DOCTOR_DEVICE, "mobile");
    f.has[PE_DOCTOR_COUNTRY] = true;
    snprintf(f.value[PE_DOCTOR_COUNTRY], sizeof f.value[0], "FR");
    char key[PE_DOCTOR_TEXT_MAX];
    pe_doctor_finding_key(&f, key, sizeof key);
    assert_string_equal(key, "segment_gap:shipping:device=mobile,country=FR");
    pe_doctor_finding_t s = finding(5, -1, NULL);
    pe_doctor_finding_key(&s, key, sizeof key);
    assert_string_equal(key, "benchmark_gap:confirmation:store");
    /* the segment as the merchant reads it */
    pe_doctor_segment_phrase(&f, key, sizeof key);
    assert_string_equal(key, "Mobile visitors from FR");
    pe_doctor_segment_phrase(&s, key, sizeof key);
    assert_string_equal(key, "Every visitor");
    pe_doctor_finding_t nl = finding(4, PE_DOCTOR_COUNTRY, "NL");
    pe_doctor_segment_phrase(&nl, key, sizeof key);
    assert_string_equal(key, "Visitors from NL");

    cJSON *doc = cJSON_Parse(
        "{\"kind\":\"segment_gap\",\"step\":\"payment\",\"segment\":{\"country\":\"NL\"},"
        "\"rate\":0.4,\"referenceRate\":0.7,\"sessions\":900,\"likelihood\":0.99,"
        "\"lostOrdersPerMonth\":12.5,\"lostRevenuePerMonth\":800,\"lostProfitPerMonth\":320,"
        "\"title\":\"t\",\"explanation\":\"e\"}");
    pe_doctor_finding_t p;
    assert_int_equal(pe_doctor_finding_parse(doc, &p), 0);
    assert_int_equal(p.kind, PE_DOCTOR_SEGMENT_GAP);
    assert_int_equal(p.step, 4);
    assert_true(p.has[PE_DOCTOR_COUNTRY]);
    assert_string_equal(p.value[PE_DOCTOR_COUNTRY], "NL");
    assert_float_equal(p.lost_orders, 12.5, 0);
    assert_float_equal(p.reference_rate, 0.7, 0);
    cJSON_Delete(doc);
    doc = cJSON_Parse("{\"kind\":\"segment_gap\",\"step\":\"payment\",\"segment\":{\"planet\":"
                      "\"mars\"}}");
    assert_int_equal(pe_doctor_finding_parse(doc, &p), PE_EINVAL);
    cJSON_Delete(doc);
}

static void test_residual(void **state)
{
    (void)state;
    /* ranked: mobile at shipping (90 lost orders), the whole store at shipping (70: mobile
     * explains all of it), mobile FR at shipping (inside mobile... but ranked after it: 20 of
     * mobile's 90 explain it fully), desktop at shipping (not inside mobile: untouched), the
     * whole store at payment (another step: untouched) */
    pe_doctor_finding_t f[5];
    f[0] = finding(3, PE_DOCTOR_DEVICE, "mobile");
    f[0].lost_orders = 90;
    f[1] = finding(3, -1, NULL);
    f[1].lost_orders = 70;
    f[2] = finding(3, PE_DOCTOR_DEVICE, "mobile");
    f[2].has[PE_DOCTOR_COUNTRY] = true;
    snprintf(f[2].value[PE_DOCTOR_COUNTRY], sizeof f[2].value[0], "FR");
    f[2].lost_orders = 20;
    f[3] = finding(3, PE_DOCTOR_DEVICE, "desktop");
    f[3].lost_orders = 30;
    f[4] = finding(4, -1, NULL);
    f[4].lost_orders = 50;
    pe_doctor_findings_residual(f, 5);
    assert_float_equal(f[0].lost_orders, 90, 0);
    assert_float_equal(f[1].lost_orders, 0, 0); /* never below zero */
    assert_float_equal(f[1].lost_revenue, 0, 0);
    assert_float_equal(f[2].lost_orders, 20, 0); /* mobile FR lies inside mobile, not around it */
    assert_float_equal(f[3].lost_orders, 30, 0);
    assert_float_equal(f[4].lost_orders, 50, 0);
    /* the whole store with more loss than mobile explains keeps the rest, in proportion */
    pe_doctor_finding_t g[2] = {finding(3, PE_DOCTOR_DEVICE, "mobile"), finding(3, -1, NULL)};
    g[0].lost_orders = 40;
    g[1].lost_orders = 100;
    g[1].lost_revenue = 5000;
    g[1].lost_profit = 2000;
    pe_doctor_findings_residual(g, 2);
    assert_float_equal(g[1].lost_orders, 60, 1e-9);
    assert_float_equal(g[1].lost_revenue, 3000, 1e-9);
    assert_float_equal(g[1].lost_profit, 1200, 1e-9);
    /* with nothing left, nothing is proposed for it */
    pe_doctor_impact_t m;
    pe_doctor_economics_t eco = economics();
    assert_int_equal(pe_doctor_impact(find("shipping-cost-upfront"), &f[1], &eco, &m),
                     PE_ENOTFOUND);
}

static void test_request_parsers(void **state)
{
    (void)state;
    unsigned mask = 0;
    pe_refusal_t err = {"", ""};
    assert_int_equal(pe_doctor_status_parse(NULL, &mask, &err), 0);
    assert_int_equal(mask, 1u << 0 | 1u << 2); /* active, blocked */
    assert_int_equal(pe_doctor_status_parse("retired,approved", &mask, &err), 0);
    assert_int_equal(mask, 1u << 5 | 1u << 3);
    assert_int_equal(pe_doctor_status_parse("active,", &mask, &err), PE_EINVAL);
    assert_int_equal(pe_doctor_status_parse("", &mask, &err), PE_EINVAL);
    assert_int_equal(pe_doctor_status_parse("activ", &mask, &err), PE_EINVAL);
    assert_int_equal(pe_doctor_status_parse("queued,queued", &mask, &err), PE_EINVAL);
    assert_string_equal(err.message, "status: queued is given twice");

    pe_doctor_decision_t d;
    assert_int_equal(pe_doctor_decision_parse(NULL, true, &d, &err), 0);
    assert_false(d.force || d.confirm);
    cJSON *b = cJSON_Parse("{\"force\":true,\"confirm\":true}");
    assert_int_equal(pe_doctor_decision_parse(b, true, &d, &err), 0);
    assert_true(d.force && d.confirm);
    assert_int_equal(pe_doctor_decision_parse(b, false, &d, &err), PE_EINVAL);
    assert_string_equal(err.code, "unknown_field");
    cJSON_Delete(b);
    b = cJSON_Parse("{\"confirm\":1}");
    assert_int_equal(pe_doctor_decision_parse(b, true, &d, &err), PE_EINVAL);
    assert_string_equal(err.message, "confirm: must be true or false");
    cJSON_Delete(b);
    b = cJSON_Parse("{\"reason\":\"too expensive\"}");
    assert_int_equal(pe_doctor_decision_parse(b, false, &d, &err), 0);
    assert_string_equal(d.reason, "too expensive");
    cJSON_Delete(b);
    b = cJSON_Parse("{\"reason\":\"\"}");
    assert_int_equal(pe_doctor_decision_parse(b, false, &d, &err), 0);
    assert_null(d.reason);
    cJSON_Delete(b);
    b = cJSON_Parse("{\"reason\":\"a\\u0085b\"}");
    assert_int_equal(pe_doctor_decision_parse(b, false, &d, &err), PE_EINVAL);
    assert_string_equal(err.code, "invalid_format");
    cJSON_Delete(b);
    char *long_reason = malloc(4100);
    memset(long_reason, 'x', 4099);
    long_reason[4099] = '\0';
    b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "reason", long_reason);
    assert_int_equal(pe_doctor_decision_parse(b, false, &d, &err), PE_EINVAL);
    assert_string_equal(err.code, "too_long");
    cJSON_Delete(b);
    free(long_reason);
    b = cJSON_Parse("[]");
    assert_int_equal(pe_doctor_decision_parse(b, false, &d, &err), PE_EINVAL);
    cJSON_Delete(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_impact_by_hand),
        cmocka_unit_test(test_changesets_valid),
        cmocka_unit_test(test_window_grows_with_less_traffic),
        cmocka_unit_test(test_finding_identity),
        cmocka_unit_test(test_residual),
        cmocka_unit_test(test_request_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
