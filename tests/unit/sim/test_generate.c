/*
 * test_generate.c — the traffic generator without a database: every event it renders passes the
 * server's validator, every session stays inside its store-local day, eventIds are unique, the
 * truth agrees with a recount of the rendered events, the output does not depend on the number
 * of worker threads, an override changes its segment and leaves others exactly as they were
 * (and, with "from" / "to", only on its days), the cut-off drops whole sessions, and the
 * closed loop's treatments change exactly the sessions they treat, by the effect they carry,
 * with each treatment's counterfactual drawn from the same draws; a scenario's own catalogue is
 * the one sold.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/events.h"
#include "pe/sim.h"
#include "pe_test.h"
#include "sim/sim_internal.h"

#define DAYS       4
#define US_PER_DAY (86400LL * 1000000LL)

/* 2025-03-28 (Fri) .. 2025-03-31 in Europe/Berlin: the 30th is 23 hours long (DST). */
static const int64_t BERLIN[DAYS + 1] = {
    1743116400000000LL, /* 2025-03-28T00:00+01:00 */
    1743202800000000LL, /* 2025-03-29T00:00+01:00 */
    1743289200000000LL, /* 2025-03-30T00:00+01:00 */
    1743372000000000LL, /* 2025-03-31T00:00+02:00 (23 h later) */
    1743458400000000LL, /* 2025-04-01T00:00+02:00 */
};

typedef struct {
    pthread_mutex_t mu;
    char **lines; /* every event, serialised */
    size_t n, cap;
    int invalid;
    char first_error[PE_REFUSAL_CODE_LEN + PE_REFUSAL_MESSAGE_LEN];
} sink_t;

static int collect(void *ctx, unsigned worker, const cJSON *events, size_t count)
{
    sink_t *s = ctx;
    (void)worker;
    assert_true(count >= 1 && count <= PE_EVENT_BATCH_MAX_EVENTS);
    assert_int_equal((size_t)cJSON_GetArraySize(events), count);
    const cJSON *e;
    pthread_mutex_lock(&s->mu);
    cJSON_ArrayForEach(e, events)
    {
        pe_event_t ev;
        pe_refusal_t err;
        if (pe_events_validate(e, 0, &ev, &err) != 0 && s->invalid++ == 0)
            snprintf(s->first_error, sizeof s->first_error, "%s %s", err.code, err.message);
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 4096;
            s->lines = realloc(s->lines, s->cap * sizeof *s->lines);
            assert_non_null(s->lines);
        }
        s->lines[s->n++] = cJSON_PrintUnformatted(e);
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sink_free(sink_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->lines[i]);
    free(s->lines);
    pthread_mutex_destroy(&s->mu);
}

typedef struct {
    sink_t sink;
    char *truth;
    cJSON *truth_json;
} run_t;

static void run_hooked(run_t *out, uint64_t seed, unsigned threads, const char *scenario,
                       int64_t cutoff, const sim_hooks_t *hooks)
{
    pe_sim_scenario_t *sc = NULL;
    char err[512];
    assert_int_equal(
        pe_sim_scenario_parse(scenario, scenario ? strlen(scenario) : 0, &sc, err, sizeof err), 0);
    pe_sim_params_t p = {
        .seed = seed,
        .days = DAYS,
        .sessions_per_day = 300,
        .day_starts_us = BERLIN,
        .first_day = "2025-03-28",
        .currency = "EUR",
        .cutoff_us = cutoff,
        .scenario = sc,
    };
    pe_sim_t *sim = pe_sim_new(&p, err, sizeof err);
    if (!sim)
        fail_msg("pe_sim_new: %s", err);
    if (hooks)
        sim_set_hooks(sim, hooks);
    memset(out, 0, sizeof *out);
    pthread_mutex_init(&out->sink.mu, NULL);
    assert_int_equal(pe_sim_run(sim, threads, collect, &out->sink), 0);
    if (out->sink.invalid)
        fail_msg("%d generated events are invalid; first: %s", out->sink.invalid,
                 out->sink.first_error);
    qsort(out->sink.lines, out->sink.n, sizeof *out->sink.lines, cmp_line);
    /* Read back as a reader of the truth file would (revenue is exact decimal text). */
    cJSON *truth = pe_sim_truth_json(sim);
    assert_non_null(truth);
    out->truth = cJSON_Print(truth);
    cJSON_Delete(truth);
    assert_non_null(out->truth);
    out->truth_json = cJSON_Parse(out->truth);
    assert_non_null(out->truth_json);
    pe_sim_free(sim);
    pe_sim_scenario_free(sc);
}

static void run(run_t *out, uint64_t seed, unsigned threads, const char *scenario, int64_t cutoff)
{
    run_hooked(out, seed, threads, scenario, cutoff, NULL);
}

static void run_free(run_t *r)
{
    sink_free(&r->sink);
    free(r->truth);
    cJSON_Delete(r->truth_json);
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v))
        fail_msg("truth: %s is not a number", k);
    return v->valuedouble;
}

static const cJSON *day_at(const run_t *r, int d)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r->truth_json, "days"), d);
}

/* Recounts per day from the rendered events and compares with the truth. */
static void check_truth_against_events(const run_t *r)
{
    static const char *const STEPS[] = {"cart", "checkout", "shipping", "payment", "confirmation"};
    enum { MAXS = 4000 };
    for (int d = 0; d < DAYS; d++) {
        char(*sess)[40] = calloc(MAXS, 40);
        unsigned char *reach = calloc(MAXS, 1);
        int64_t *first = calloc(MAXS, sizeof *first), *last = calloc(MAXS, sizeof *last);
        assert_true(sess && reach && first && last);
        size_t ns = 0, orders = 0;
        double revenue = 0;
        for (size_t i = 0; i < r->sink.n; i++) {
            cJSON *e = cJSON_Parse(r->sink.lines[i]);
            int64_t ts = 0;
            assert_int_equal(
                pe_time_parse_rfc3339(cJSON_GetObjectItem(e, "timestamp")->valuestring, &ts), 0);
            if (ts < BERLIN[d] || ts >= BERLIN[d + 1]) {
                cJSON_Delete(e);
                continue;
            }
            const char *sid = cJSON_GetObjectItem(e, "sessionId")->valuestring;
            size_t k = 0;
            while (k < ns && strcmp(sess[k], sid) != 0)
                k++;
            if (k == ns) {
                assert_true(ns < MAXS);
                snprintf(sess[ns++], 40, "%s", sid);
                first[k] = last[k] = ts;
            }
            first[k] = ts < first[k] ? ts : first[k];
            last[k] = ts > last[k] ? ts : last[k];
            const pe_event_def_t *def =
                pe_events_lookup(cJSON_GetObjectItem(e, "name")->valuestring);
            if (def->funnel_step)
                reach[k] |= (unsigned char)(1u << (def->funnel_step - 1));
            if (def->funnel_step == PE_FUNNEL_CONFIRMATION) {
                orders++;
                revenue +=
                    cJSON_GetObjectItem(cJSON_GetObjectItem(e, "properties"), "value")->valuedouble;
            }
            cJSON_Delete(e);
        }
        const cJSON *t = day_at(r, d);
        assert_int_equal(ns, (size_t)num(t, "sessions"));
        for (int s = 0; s < 5; s++) {
            size_t c = 0;
            for (size_t k = 0; k < ns; k++)
                c += (reach[k] >> s) & 1;
            if (c != (size_t)num(t, STEPS[s]))
                fail_msg("day %d step %s: events say %zu, truth %g", d, STEPS[s], c,
                         num(t, STEPS[s]));
        }
        assert_int_equal(orders, (size_t)num(t, "orders"));
        assert_true(revenue > 0);
        double want = num(t, "revenue");
        assert_true(revenue - want < 0.005 && want - revenue < 0.005);
        free(sess);
        free(reach);
        free(first);
        free(last);
    }
}

static void test_valid_deterministic_and_true(void **state)
{
    (void)state;
    run_t a, b, c;
    run(&a, 11, 1, NULL, 0);
    run(&b, 11, 4, NULL, 0);
    run(&c, 12, 4, NULL, 0);
    assert_true(a.sink.n > 1000);
    /* Same seed: the same events and the same truth, whatever the threads. */
    assert_int_equal(a.sink.n, b.sink.n);
    for (size_t i = 0; i < a.sink.n; i++)
        assert_string_equal(a.sink.lines[i], b.sink.lines[i]);
    assert_string_equal(a.truth, b.truth);
    /* Another seed: other events. */
    assert_string_not_equal(a.truth, c.truth);
    /* eventIds unique (lines are sorted, and start with the eventId). */
    for (size_t i = 1; i < a.sink.n; i++)
        assert_true(strncmp(a.sink.lines[i - 1], a.sink.lines[i], 48) != 0);
    assert_int_equal((size_t)num(cJSON_GetObjectItem(a.truth_json, "totals"), "events"), a.sink.n);
    check_truth_against_events(&a);
    /* The 23-hour day has sessions too, inside it (check_truth_against_events counted by day). */
    assert_true(num(day_at(&a, 2), "sessions") > 100);
    run_free(&a);
    run_free(&b);
    run_free(&c);
}

static const cJSON *device(const run_t *r, int d, const char *name)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(day_at(r, d), "byDevice"), name);
}

static void test_override_changes_only_its_segment(void **state)
{
    (void)state;
    run_t base, prob;
    run(&base, 5, 2, NULL, 0);
    run(&prob, 5, 2,
        "{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"shipping\","
        "\"dropMultiplier\":3}]}",
        0);
    double base_conv = 0, prob_conv = 0, base_checkout = 0, prob_checkout = 0;
    for (int d = 0; d < DAYS; d++) {
        /* Desktop sessions are untouched, to the event (only whether an order is a customer's
         * first may differ: the same visitor may have failed to order on mobile before). */
        cJSON *bd = cJSON_Duplicate(device(&base, d, "desktop"), true);
        cJSON *pd = cJSON_Duplicate(device(&prob, d, "desktop"), true);
        const char *const differ[] = {"ordersNewCustomers", "ordersReturningCustomers"};
        for (size_t k = 0; k < 2; k++) {
            cJSON_DeleteItemFromObject(bd, differ[k]);
            cJSON_DeleteItemFromObject(pd, differ[k]);
        }
        char *x = cJSON_PrintUnformatted(bd);
        char *y = cJSON_PrintUnformatted(pd);
        assert_string_equal(x, y);
        free(x);
        free(y);
        cJSON_Delete(bd);
        cJSON_Delete(pd);
        const cJSON *bm = device(&base, d, "mobile"), *pm = device(&prob, d, "mobile");
        /* Mobile sessions reach checkout as often as before, shipping much less often. */
        assert_true(num(bm, "checkout") == num(pm, "checkout"));
        assert_true(num(pm, "shipping") <= num(bm, "shipping"));
        base_checkout += num(bm, "checkout");
        prob_checkout += num(pm, "checkout");
        base_conv += num(bm, "shipping");
        prob_conv += num(pm, "shipping");
    }
    /* Base drop 22 % → 66 %: conversion 0.78 → 0.34; far beyond noise at these counts. */
    double b = base_conv / base_checkout, p = prob_conv / prob_checkout;
    if (!(b > 0.65 && p < 0.5))
        fail_msg("mobile checkout→shipping: base %.3f, with the override %.3f", b, p);
    /* The override's own truth counts mobile sessions. */
    const cJSON *ov = cJSON_GetArrayItem(cJSON_GetObjectItem(prob.truth_json, "overrides"), 0);
    assert_non_null(ov);
    double mobile_sessions = 0;
    for (int d = 0; d < DAYS; d++)
        mobile_sessions += num(device(&prob, d, "mobile"), "sessions");
    assert_true(num(ov, "sessions") == mobile_sessions);
    run_free(&base);
    run_free(&prob);

    /* Payment methods: a campaign that never pays by card. */
    run_t pay;
    run(&pay, 5, 2,
        "{\"sources\":{\"social\":5},\"overrides\":[{\"segment\":{\"utmCampaign\":"
        "\"spring-launch\"},\"paymentMethods\":{\"card\":0}}]}",
        0);
    ov = cJSON_GetArrayItem(cJSON_GetObjectItem(pay.truth_json, "overrides"), 0);
    const cJSON *methods = cJSON_GetObjectItem(ov, "paymentMethods");
    assert_true(num(ov, "payment") > 20);
    assert_true(num(methods, "card") == 0);
    assert_true(num(methods, "paypal") > 0);
    assert_true(
        num(cJSON_GetObjectItem(cJSON_GetObjectItem(pay.truth_json, "totals"), "paymentMethods"),
            "card") > 0);
    run_free(&pay);
}

/* A copy of a day's truth without the first-order split, which may differ on later days (a
 * visitor who failed to order during the override may order for the first time afterwards). */
static char *day_without_first_orders(const run_t *r, int d)
{
    cJSON *o = cJSON_Duplicate(day_at(r, d), true);
    assert_non_null(o);
    const char *const groups[] = {"byDevice", "byCountry", "bySource"};
    const char *const differ[] = {"ordersNewCustomers", "ordersReturningCustomers"};
    for (size_t k = 0; k < 2; k++) {
        cJSON_DeleteItemFromObject(o, differ[k]);
        for (size_t g = 0; g < 3; g++) {
            cJSON *e;
            cJSON_ArrayForEach(e, cJSON_GetObjectItem(o, groups[g]))
                cJSON_DeleteItemFromObject(e, differ[k]);
        }
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    assert_non_null(text);
    return text;
}

/* An override with "from" / "to" changes only the sessions of its days; the days outside are
 * exactly as without it, and the truth's overrides[] records the dates and counts only the
 * matched days' sessions. */
static void test_override_date_range(void **state)
{
    (void)state;
    run_t base, ranged, again;
    const char *scenario =
        "{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"payment\","
        "\"probability\":0.1,\"from\":\"2025-03-29\",\"to\":\"2025-03-30\"}]}";
    run(&base, 7, 2, NULL, 0);
    run(&ranged, 7, 2, scenario, 0);
    run(&again, 7, 3, scenario, 0);
    /* Determinism holds with dates too. */
    assert_string_equal(ranged.truth, again.truth);
    assert_int_equal(ranged.sink.n, again.sink.n);
    for (size_t i = 0; i < ranged.sink.n; i++)
        assert_string_equal(ranged.sink.lines[i], again.sink.lines[i]);
    /* Outside the range, every count of the day is as without the override. */
    for (int d = 0; d < DAYS; d += 3) {
        char *x = day_without_first_orders(&base, d), *y = day_without_first_orders(&ranged, d);
        if (strcmp(x, y) != 0)
            fail_msg("day %d changed outside the override's dates:\n%s\n%s", d, x, y);
        free(x);
        free(y);
    }
    /* Inside it, mobile sessions pay far less often (0.82 → 0.1); others are untouched. */
    double ses = 0, base_pay = 0, ranged_pay = 0, base_ship = 0;
    for (int d = 1; d <= 2; d++) {
        const cJSON *bm = device(&base, d, "mobile"), *rm = device(&ranged, d, "mobile");
        assert_true(num(bm, "shipping") == num(rm, "shipping"));
        base_ship += num(bm, "shipping");
        base_pay += num(bm, "payment");
        ranged_pay += num(rm, "payment");
        ses += num(rm, "sessions");
        assert_true(num(device(&base, d, "desktop"), "payment") ==
                    num(device(&ranged, d, "desktop"), "payment"));
    }
    if (!(base_ship > 20 && base_pay / base_ship > 0.6 && ranged_pay / base_ship < 0.3))
        fail_msg("mobile shipping→payment on the override's days: base %g/%g, ranged %g/%g",
                 base_pay, base_ship, ranged_pay, base_ship);
    const cJSON *ov = cJSON_GetArrayItem(cJSON_GetObjectItem(ranged.truth_json, "overrides"), 0);
    assert_non_null(ov);
    assert_string_equal(cJSON_GetObjectItem(ov, "from")->valuestring, "2025-03-29");
    assert_string_equal(cJSON_GetObjectItem(ov, "to")->valuestring, "2025-03-30");
    assert_true(num(ov, "sessions") == ses);
    assert_true(num(ov, "payment") == ranged_pay);
    /* The scenario in force carries them too. */
    const cJSON *sc = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(ranged.truth_json, "scenario"), "overrides"), 0);
    assert_string_equal(cJSON_GetObjectItem(sc, "from")->valuestring, "2025-03-29");
    assert_string_equal(cJSON_GetObjectItem(sc, "to")->valuestring, "2025-03-30");
    /* An override without dates records none. */
    run_free(&again);
    run(&again, 7, 2,
        "{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"payment\","
        "\"probability\":0.1}]}",
        0);
    ov = cJSON_GetArrayItem(cJSON_GetObjectItem(again.truth_json, "overrides"), 0);
    assert_null(cJSON_GetObjectItem(ov, "from"));
    assert_null(cJSON_GetObjectItem(ov, "to"));
    assert_true(num(ov, "sessions") > ses);
    run_free(&base);
    run_free(&ranged);
    run_free(&again);
}

static void test_cutoff_drops_whole_sessions(void **state)
{
    (void)state;
    run_t r;
    int64_t cutoff = BERLIN[3] + 12 * 3600 * 1000000LL; /* noon of the last day */
    run(&r, 9, 3, NULL, cutoff);
    assert_true(num(r.truth_json, "sessionsCut") > 50);
    for (size_t i = 0; i < r.sink.n; i++) {
        cJSON *e = cJSON_Parse(r.sink.lines[i]);
        int64_t ts = 0;
        assert_int_equal(
            pe_time_parse_rfc3339(cJSON_GetObjectItem(e, "timestamp")->valuestring, &ts), 0);
        assert_true(ts <= cutoff);
        cJSON_Delete(e);
    }
    check_truth_against_events(&r);
    run_free(&r);
}

/* ---- the closed loop's treatments ----------------------------------------------------------- */

typedef struct {
    int mode;          /* 0: no treatment; 1: half the units get two treatments */
    size_t sessions;   /* observed */
    size_t treated;    /* of which treated */
    double orders[3];  /* treated sessions: actual, without the first, without the second */
    double revenue[3]; /* the same, cents */
    double untreated_changed;
    int bad;
} probe_t;

static bool in_treatment(const sim_unit_t *u)
{
    return u->unit[strlen(u->unit) - 1] % 2 == 0; /* half the units, by their id */
}

static void probe_treat(void *ctx, const sim_unit_t *u, sim_treatment_t *t)
{
    probe_t *p = ctx;
    if (p->mode == 0 || !in_treatment(u))
        return;
    for (size_t i = 0; i < 2; i++) {
        for (int k = 0; k < SIM_NSTEPS; k++)
            t->effect[i].drop[k] = 1.0;
        t->effect[i].conversion = t->effect[i].price = 1.0;
        t->effect[i].conversion_step = -1;
    }
    t->effect[0].conversion = 0.5; /* half the chance to complete the order */
    if (p->mode == 2)
        t->effect[0].conversion_step = 2; /* ... taken at shipping, where the change acts */
    t->effect[1].price = 0.8;             /* a fifth off every price */
    t->n = 2;
}

static void probe_observe(void *ctx, const sim_unit_t *u, int64_t start_us,
                          const sim_outcome_t *actual, const sim_outcome_t *without,
                          const sim_outcome_t *baseline)
{
    probe_t *p = ctx;
    p->sessions++;
    if (!u->unit[0] || start_us <= 0 || u->key == NULL)
        p->bad++;
    if (p->mode == 0 || !in_treatment(u)) {
        /* untreated: the baseline is what happened */
        if (memcmp(baseline, actual, sizeof *actual) != 0)
            p->bad++;
        return;
    }
    p->treated++;
    /* the baseline has neither treatment: the orders of "without the conversion effect" (the
     * discount changes no decision) at the undiscounted prices */
    if (baseline->orders != without[0].orders || baseline->reached != without[0].reached ||
        (baseline->orders && baseline->revenue_cents < without[0].revenue_cents) ||
        (baseline->orders && baseline->revenue_cents != without[1].revenue_cents &&
         without[1].orders))
        p->bad++;
    const sim_outcome_t *o[3] = {actual, &without[0], &without[1]};
    for (int i = 0; i < 3; i++) {
        p->orders[i] += o[i]->orders;
        p->revenue[i] += (double)o[i]->revenue_cents;
    }
    /* without the conversion effect the session orders at least as often */
    if (without[0].orders < actual->orders)
        p->bad++;
    /* taken at shipping (step index 2), it leaves the steps before alone */
    if (p->mode == 2 && (actual->reached >= 2) != (without[0].reached >= 2))
        p->bad++;
    /* without the discount, an order of the same basket costs more */
    if (actual->orders && without[1].orders && without[1].revenue_cents < actual->revenue_cents)
        p->bad++;
}

static void test_treatments_and_counterfactuals(void **state)
{
    (void)state;
    /* Hooks that treat nobody change nothing: the same events and truth as without hooks. */
    run_t plain, idle, treated;
    probe_t p0 = {.mode = 0}, p1 = {.mode = 1};
    sim_hooks_t h0 = {probe_treat, probe_observe, &p0}, h1 = {probe_treat, probe_observe, &p1};
    run(&plain, 7, 2, NULL, 0);
    run_hooked(&idle, 7, 2, NULL, 0, &h0);
    assert_string_equal(plain.truth, idle.truth);
    assert_int_equal(plain.sink.n, idle.sink.n);
    for (size_t i = 0; i < plain.sink.n; i++)
        assert_string_equal(plain.sink.lines[i], idle.sink.lines[i]);
    const cJSON *totals = cJSON_GetObjectItemCaseSensitive(plain.truth_json, "totals");
    assert_int_equal(p0.sessions, (size_t)num(totals, "sessions"));
    assert_int_equal(p0.bad, 0);

    /* Half the units get conversion × 0.5 and prices × 0.8. */
    run_hooked(&treated, 7, 2, NULL, 0, &h1);
    check_truth_against_events(&treated); /* still valid, still counted right */
    assert_int_equal(p1.bad, 0);
    assert_true(p1.treated > p1.sessions / 3 && p1.treated < p1.sessions * 2 / 3);
    /* each counterfactual isolates its own treatment */
    double conv = p1.orders[0] / p1.orders[1];
    assert_true(conv > 0.35 && conv < 0.65);
    assert_float_equal(p1.orders[0], p1.orders[2], 0); /* the discount changes no decision */
    double price = p1.revenue[0] / p1.revenue[2];
    assert_true(price > 0.78 && price < 0.85); /* shipping is not discounted */
    /* the treated store sells less than the untreated one */
    assert_true(num(cJSON_GetObjectItemCaseSensitive(treated.truth_json, "totals"), "orders") <
                num(totals, "orders"));
    run_free(&plain);
    run_free(&idle);
    run_free(&treated);

    /* The same halving taken at the shipping step: the steps before it do not move. */
    run_t at_step;
    probe_t p2 = {.mode = 2};
    sim_hooks_t h2 = {probe_treat, probe_observe, &p2};
    run_hooked(&at_step, 7, 2, NULL, 0, &h2);
    assert_int_equal(p2.bad, 0);
    conv = p2.orders[0] / p2.orders[1];
    assert_true(conv > 0.35 && conv < 0.65);
    run_free(&at_step);
}

/* A scenario's own catalogue: the store sells exactly those products at their prices, a
 * product of popularity 0 is never seen, and the catalogue written to the store is the one given
 * (an untracked stock as null). */
static void test_scenario_catalog(void **state)
{
    (void)state;
    static const char *scenario =
        "{\"catalog\":["
        "{\"sku\":\"espresso-one\",\"name\":\"Espresso One\",\"category\":\"Coffee Machines\","
        "\"price\":249,\"cost\":161.5,\"stock\":40,\"popularity\":1},"
        "{\"sku\":\"burr-grinder\",\"name\":\"Burr Grinder\",\"category\":\"Grinders\","
        "\"price\":89.9,\"cost\":50,\"popularity\":0},"
        "{\"sku\":\"house-blend\",\"name\":\"House Blend 1 kg\",\"category\":\"Beans\","
        "\"price\":18.5,\"cost\":7.4,\"popularity\":6}]}";
    pe_sim_scenario_t *sc = NULL;
    char err[512];
    assert_int_equal(pe_sim_scenario_parse(scenario, strlen(scenario), &sc, err, sizeof err), 0);
    pe_sim_params_t p = {.seed = 5,
                         .days = DAYS,
                         .sessions_per_day = 300,
                         .day_starts_us = BERLIN,
                         .first_day = "2025-03-28",
                         .currency = "EUR",
                         .scenario = sc};
    pe_sim_t *sim = pe_sim_new(&p, err, sizeof err);
    assert_non_null(sim);
    cJSON *catalog = pe_sim_catalog_json(sim);
    char *text = cJSON_PrintUnformatted(catalog);
    assert_string_equal(
        text, "[{\"sku\":\"espresso-one\",\"name\":\"Espresso One\",\"category\":\"Coffee "
              "Machines\",\"price\":249,\"cost\":161.5,\"stock\":40,\"currency\":\"EUR\"},"
              "{\"sku\":\"burr-grinder\",\"name\":\"Burr Grinder\",\"category\":\"Grinders\","
              "\"price\":89.9,\"cost\":50,\"stock\":null,\"currency\":\"EUR\"},"
              "{\"sku\":\"house-blend\",\"name\":\"House Blend 1 kg\",\"category\":\"Beans\","
              "\"price\":18.5,\"cost\":7.4,\"stock\":null,\"currency\":\"EUR\"}]");
    free(text);
    cJSON_Delete(catalog);
    pe_sim_free(sim);
    pe_sim_scenario_free(sc);

    run_t r;
    run(&r, 5, 2, scenario, 0);
    check_truth_against_events(&r);
    size_t views[2] = {0, 0}, lines = 0, collections = 0;
    for (size_t i = 0; i < r.sink.n; i++) {
        cJSON *e = cJSON_Parse(r.sink.lines[i]);
        assert_non_null(e);
        const cJSON *props = cJSON_GetObjectItem(e, "properties");
        const char *path =
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "context"), "page"),
                                "path")
                ->valuestring;
        assert_null(strstr(r.sink.lines[i], "burr-grinder"));
        assert_null(strstr(r.sink.lines[i], "SIM-"));
        if (strncmp(path, "/collections/", 13) == 0) {
            collections++;
            assert_true(strcmp(path, "/collections/coffee-machines") == 0 ||
                        strcmp(path, "/collections/beans") == 0);
        }
        const cJSON *sku = cJSON_GetObjectItem(props, "productId");
        if (cJSON_IsString(sku)) {
            bool espresso = strcmp(sku->valuestring, "espresso-one") == 0;
            assert_true(espresso || strcmp(sku->valuestring, "house-blend") == 0);
            views[espresso ? 0 : 1]++;
            assert_true(cJSON_GetObjectItem(props, "price")->valuedouble ==
                        (espresso ? 249 : 18.5));
        }
        const cJSON *items = cJSON_GetObjectItem(props, "items"), *it;
        cJSON_ArrayForEach(it, items)
        {
            const char *id = cJSON_GetObjectItem(it, "productId")->valuestring;
            double price = cJSON_GetObjectItem(it, "price")->valuedouble;
            assert_true((strcmp(id, "espresso-one") == 0 && price == 249) ||
                        (strcmp(id, "house-blend") == 0 && price == 18.5));
            lines++;
        }
        cJSON_Delete(e);
    }
    /* Popularity 1 against 6: the beans are seen about six times as often. */
    assert_true(lines > 50 && collections > 0);
    double ratio = (double)views[1] / (double)views[0];
    if (ratio < 4.5 || ratio > 7.5)
        fail_msg("house-blend seen %zu times, espresso-one %zu: ratio %.2f, want ~6", views[1],
                 views[0], ratio);
    run_free(&r);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    pe_sim_scenario_t *sc = NULL;
    char err[256];
    assert_int_equal(pe_sim_scenario_parse(NULL, 0, &sc, err, sizeof err), 0);
    int64_t short_day[2] = {0, 3600LL * 1000000};
    pe_sim_params_t p = {.seed = 1,
                         .days = 1,
                         .sessions_per_day = 10,
                         .day_starts_us = short_day,
                         .first_day = "2025-01-01",
                         .currency = "EUR",
                         .scenario = sc};
    assert_null(pe_sim_new(&p, err, sizeof err));
    assert_non_null(strstr(err, "22..26 hours"));
    int64_t day[2] = {0, US_PER_DAY};
    p.day_starts_us = day;
    p.first_day = "2025-02-30";
    assert_null(pe_sim_new(&p, err, sizeof err));
    p.first_day = "2025-02-28";
    p.days = 0;
    assert_null(pe_sim_new(&p, err, sizeof err));
    pe_sim_scenario_free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_deterministic_and_true),
        cmocka_unit_test(test_override_changes_only_its_segment),
        cmocka_unit_test(test_override_date_range),
        cmocka_unit_test(test_cutoff_drops_whole_sessions),
        cmocka_unit_test(test_treatments_and_counterfactuals),
        cmocka_unit_test(test_scenario_catalog),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
