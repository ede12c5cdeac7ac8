/*
 * test_scenario.c — the simulator's scenario parser: defaults, the documented example, the
 * round trip through "the scenario in force", and a refusal naming the field for every kind of
 * mistake a hand-written scenario makes; an override's "from" / "to" dates; the closed loop's
 * "effects"; a scenario's own "catalog".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/sim.h"
#include "pe_test.h"
#include "sim/sim_internal.h"

static pe_sim_scenario_t *parse_ok(const char *doc)
{
    pe_sim_scenario_t *s = NULL;
    char err[512] = "";
    int rc = pe_sim_scenario_parse(doc, doc ? strlen(doc) : 0, &s, err, sizeof err);
    if (rc != 0)
        fail_msg("scenario refused: %s\n%s", err, doc ? doc : "(null)");
    return s;
}

static char *in_force(const pe_sim_scenario_t *s)
{
    cJSON *j = pe_sim_scenario_json(s);
    assert_non_null(j);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    assert_non_null(text);
    return text;
}

/* Invariant 3: the scenario in force (text) parses back to a scenario whose own scenario in force
 * is the same text. Returns that scenario (the caller frees it). */
static pe_sim_scenario_t *parses_back(const char *text)
{
    pe_sim_scenario_t *again = parse_ok(text);
    char *second = in_force(again);
    assert_string_equal(text, second);
    free(second);
    return again;
}

static void test_defaults(void **state)
{
    (void)state;
    pe_sim_scenario_t *s = parse_ok(NULL);
    assert_true(s->funnel[0] > 0 && s->funnel[0] < 1);
    assert_int_equal(s->noverrides, 0);
    assert_int_equal(s->products, 40);
    char *text = in_force(s);
    assert_non_null(strstr(text, "\"funnel\":{\"cart\":0.18,"));
    assert_non_null(strstr(text, "\"overrides\":[]"));
    free(text);
    pe_sim_scenario_free(s);
    /* An empty object is the defaults too. */
    s = parse_ok("{}");
    text = in_force(s);
    pe_sim_scenario_t *d = parse_ok(NULL);
    char *dtext = in_force(d);
    assert_string_equal(text, dtext);
    free(text);
    free(dtext);
    pe_sim_scenario_free(s);
    pe_sim_scenario_free(d);
}

static void test_example_and_round_trip(void **state)
{
    (void)state;
    const char *doc =
        "{\"description\":\"mobile checkout problem\",\"funnel\":{\"shipping\":0.8},"
        "\"returningShare\":0.25,\"products\":12,\"devices\":{\"tablet\":0},"
        "\"overrides\":["
        "{\"segment\":{\"device\":\"mobile\"},\"step\":\"shipping\",\"dropMultiplier\":1.4},"
        "{\"segment\":{\"utmCampaign\":\"spring-launch\"},\"paymentMethods\":{\"card\":0}},"
        "{\"segment\":{\"country\":\"FR\",\"visitor\":\"new\",\"source\":\"paid\"},"
        "\"step\":\"cart\",\"probability\":0.05}]}";
    pe_sim_scenario_t *s = parse_ok(doc);
    assert_int_equal(s->noverrides, 3);
    assert_int_equal(s->products, 12);
    assert_true(s->funnel[2] == 0.8);
    assert_true(s->devices[2] == 0);
    const sim_override_t *o = &s->overrides[0];
    assert_int_equal(o->device, 1);
    assert_int_equal(o->step, 2);
    assert_true(o->drop_multiplier == 1.4);
    assert_true(s->overrides[1].has_payments && s->overrides[1].payments[0] == 0 &&
                s->overrides[1].payments[1] < 0);
    assert_true(s->overrides[2].probability == 0.05);

    /* Matching. */
    sim_segment_key_t mobile = {1, 0, 0, SIM_VISITOR_NEW, NULL, 0};
    sim_segment_key_t desktop = {0, 0, 0, SIM_VISITOR_NEW, NULL, 0};
    sim_segment_key_t spring = {0, 0, 3, SIM_VISITOR_RETURNING, "spring-launch", 0};
    sim_segment_key_t fr_paid_new = {0, 1, 2, SIM_VISITOR_NEW, "brand-search", 0};
    sim_segment_key_t fr_paid_ret = {0, 1, 2, SIM_VISITOR_RETURNING, "brand-search", 0};
    assert_true(sim_override_matches(&s->overrides[0], &mobile));
    assert_false(sim_override_matches(&s->overrides[0], &desktop));
    assert_true(sim_override_matches(&s->overrides[1], &spring));
    assert_false(sim_override_matches(&s->overrides[1], &desktop));
    assert_true(sim_override_matches(&s->overrides[2], &fr_paid_new));
    assert_false(sim_override_matches(&s->overrides[2], &fr_paid_ret));

    /* The scenario in force parses back to itself. */
    char *first = in_force(s);
    pe_sim_scenario_t *again = parses_back(first);
    free(first);
    pe_sim_scenario_free(again);
    pe_sim_scenario_free(s);
}

static void test_catalog(void **state)
{
    (void)state;
    const char *doc =
        "{\"catalog\":["
        "{\"sku\":\"espresso-one\",\"name\":\"Espresso One\",\"category\":\"machines\","
        "\"price\":249,\"cost\":161.5,\"stock\":40},"
        "{\"sku\":\"house-blend\",\"name\":\"House Blend 1 kg\",\"category\":\"beans\","
        "\"price\":18.5,\"cost\":7.4,\"popularity\":6}]}";
    pe_sim_scenario_t *s = parse_ok(doc);
    assert_int_equal(s->products, 2);
    assert_non_null(s->catalog);
    assert_string_equal(s->catalog[0].sku, "espresso-one");
    assert_string_equal(s->catalog[1].category, "beans");
    assert_int_equal(s->catalog[0].price_cents, 24900);
    assert_int_equal(s->catalog[0].cost_cents, 16150);
    assert_int_equal(s->catalog[1].price_cents, 1850);
    assert_int_equal(s->catalog[0].stock, 40);
    assert_int_equal(s->catalog[1].stock, -1);
    assert_true(s->catalog[0].popularity == 1 && s->catalog[1].popularity == 6);
    /* In force: the catalog replaces "products", and parses back to itself. */
    char *first = in_force(s);
    assert_null(strstr(first, "\"products\""));
    assert_non_null(strstr(first, "\"catalog\":[{\"sku\":\"espresso-one\",\"name\":\"Espresso "
                                  "One\",\"category\":\"machines\",\"price\":249,\"cost\":161.5,"
                                  "\"stock\":40,\"popularity\":1},"));
    pe_sim_scenario_t *again = parses_back(first);
    free(first);
    pe_sim_scenario_free(again);
    pe_sim_scenario_free(s);
}

static void test_refusals_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *doc, *want;
    } cases[] = {
        {"[1]", "scenario: must be a JSON object"},
        {"{\"funnel\":", "scenario: not valid JSON"},
        {"{\"funel\":{}}", "funel: unknown field; a scenario has description, funnel"},
        {"{\"returningShare\":0.1,\"returningShare\":0.2}", "returningShare: given twice"},
        {"{\"returningShare\":0.99}", "returningShare: must be a number 0..0.95"},
        {"{\"returningShare\":\"x\"}", "returningShare: must be a number"},
        {"{\"products\":0}", "products: must be a number 1..1000"},
        {"{\"products\":1.5}", "products: must be an integer 1..1000"},
        {"{\"funnel\":{\"cart\":1.5}}", "funnel.cart: must be a probability 0..1"},
        {"{\"funnel\":{\"basket\":0.5}}", "funnel.basket: unknown name; one of cart, checkout"},
        {"{\"funnel\":[]}", "funnel: must be an object of name: weight"},
        {"{\"devices\":{\"desktop\":0,\"mobile\":0,\"tablet\":0,\"other\":0}}",
         "devices: leaves no value with a weight > 0"},
        {"{\"paymentMethods\":{\"bitcoin\":1}}", "paymentMethods.bitcoin: unknown name"},
        {"{\"countries\":{\"BR\":1}}", "countries.BR: unknown name; one of DE, FR"},
        {"{\"catalog\":[]}", "catalog: must be an array of 1..1000 products"},
        {"{\"catalog\":{}}", "catalog: must be an array of 1..1000 products"},
        {"{\"products\":3,\"catalog\":[{\"sku\":\"a\",\"name\":\"A\",\"category\":\"c\",\"price\":"
         "1,\"cost\":0.5}]}",
         "products: give products (generated) or catalog (your own), not both"},
        {"{\"catalog\":[1]}", "catalog[0]: must be an object"},
        {"{\"catalog\":[{\"sku\":\"a\"}]}", "catalog[0].name: is required"},
        {"{\"catalog\":[{\"sku\":\"a\",\"name\":\"A\",\"category\":\"c\",\"price\":1,\"cost\":0.5,"
         "\"colour\":\"red\"}]}",
         "catalog[0].colour: unknown field; a product has sku, name"},
        {"{\"catalog\":[{\"sku\":\"a\",\"name\":\"A\",\"category\":\"c\",\"price\":1,\"cost\":0.5,"
         "\"cost\":1}]}",
         "catalog[0].cost: given twice"},
        {"{\"catalog\":[{\"sku\":\"a/"
         "b\",\"name\":\"A\",\"category\":\"c\",\"price\":1,\"cost\":0}]}",
         "catalog[0].sku: must be 1..64 letters, digits, -, ., _ or ~"},
        {"{\"catalog\":[{\"sku\":\"a\",\"name\":\"A\\u0007\",\"category\":\"c\",\"price\":1,"
         "\"cost\":0}]}",
         "catalog[0].name: must not contain control characters"},
        {"{\"catalog\":[{\"sku\":\"a\",\"name\":\"A\",\"category\":\"\",\"price\":1,\"cost\":0}]}",
         "catalog[0].category: must be a string of 1..128 bytes"},
        {"{\"catalog\":[{\"sku\":\"a\",\"name\":\"A\",\"category\":\"c\",\"price\":0,\"cost\":0}]}",
         "catalog[0].price: must be a number 0.01..1e+06"},
        {"{\"catalog\":[{\"sku\":\"a\",\"name\":\"A\",\"category\":\"c\",\"price\":1.005,\"cost\":"
         "0}]}",
         "catalog[0].price: must be in whole cents"},
        {"{\"catalog\":[{\"sku\":\"a\",\"name\":\"A\",\"category\":\"c\",\"price\":1,\"cost\":0.5,"
         "\"stock\":1.5}]}",
         "catalog[0].stock: must be an integer 0..1000000000"},
        {"{\"catalog\":[{\"sku\":\"a\",\"name\":\"A\",\"category\":\"c\",\"price\":1,\"cost\":0.5,"
         "\"popularity\":-1}]}",
         "catalog[0].popularity: must be a number 0..1e+06"},
        {"{\"catalog\":[{\"sku\":\"a\",\"name\":\"A\",\"category\":\"c\",\"price\":1,\"cost\":0.5},"
         "{\"sku\":\"a\",\"name\":\"A\",\"category\":\"c\",\"price\":1,\"cost\":0.5}]}",
         "catalog[1].sku: a is already catalog[0]"},
        {"{\"catalog\":[{\"sku\":\"a\",\"name\":\"A\",\"category\":\"c\",\"price\":1,\"cost\":0.5,"
         "\"popularity\":0}]}",
         "catalog: leaves no product with a popularity > 0"},
        {"{\"overrides\":{}}", "overrides: must be an array"},
        {"{\"overrides\":[1]}", "overrides[0]: must be an object"},
        {"{\"overrides\":[{\"step\":\"cart\",\"probability\":0.1}]}",
         "overrides[0].segment: is required"},
        {"{\"overrides\":[{\"segment\":{},\"step\":\"cart\",\"probability\":0.1}]}",
         "overrides[0].segment: must name at least one of"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"phone\"},\"step\":\"shipping\","
         "\"dropMultiplier\":1.4}]}",
         "overrides[0].segment.device: must be one of desktop, mobile, tablet, other"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"mobile\"}},"
         "{\"segment\":{\"os\":\"ios\"},\"step\":\"cart\",\"probability\":1}]}",
         "overrides[0]: changes nothing"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"cart\","
         "\"probability\":1},{\"segment\":{\"os\":\"ios\"},\"step\":\"cart\",\"probability\":1}]}",
         "overrides[1].segment.os: unknown field"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"shiping\","
         "\"dropMultiplier\":1}]}",
         "overrides[0].step: must be one of cart, checkout, shipping, payment, confirmation"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"shipping\","
         "\"dropMultiplier\":-1}]}",
         "overrides[0].dropMultiplier: must be a number 0..100"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"shipping\"}]}",
         "overrides[0]: a step needs dropMultiplier or probability"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"shipping\","
         "\"dropMultiplier\":1,\"probability\":0.5}]}",
         "overrides[0]: give dropMultiplier or probability, not both"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"dropMultiplier\":2}]}",
         "overrides[0].dropMultiplier: needs a step"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"payment\","
         "\"probability\":2}]}",
         "overrides[0].probability: must be a number 0..1"},
        {"{\"overrides\":[{\"segment\":{\"source\":\"tv\"},\"step\":\"cart\",\"probability\":1}]}",
         "overrides[0].segment.source: must be one of direct, organic, paid, social, email"},
        {"{\"overrides\":[{\"segment\":{\"utmCampaign\":\"\"},\"step\":\"cart\",\"probability\":1}]"
         "}",
         "overrides[0].segment.utmCampaign: must be a string of 1..256 bytes"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"paymentMethods\":"
         "{\"card\":0,\"paypal\":0,\"klarna\":0,\"applepay\":0}}]}",
         "overrides[0].paymentMethods: leaves no payment method with a weight > 0"},
        {"{\"paymentMethods\":{\"paypal\":0,\"klarna\":0,\"applepay\":0},\"overrides\":["
         "{\"segment\":{\"device\":\"mobile\"},\"paymentMethods\":{\"card\":0}}]}",
         "overrides[0].paymentMethods: leaves no payment method with a weight > 0"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"cart\",\"probability\":1,"
         "\"drop\":2}]}",
         "overrides[0].drop: unknown field"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        pe_sim_scenario_t *s = (pe_sim_scenario_t *)0x1;
        char err[512] = "";
        int rc = pe_sim_scenario_parse(cases[i].doc, strlen(cases[i].doc), &s, err, sizeof err);
        if (rc != PE_EINVAL || s != NULL || strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: %s\n  rc %d, message '%s'\n  want '%s…'", i, cases[i].doc, rc, err,
                     cases[i].want);
    }
}

/* "from" / "to" limit an override to store-local days: parsed, matched inclusively, printed
 * back the same, and refused naming the field when they are no date or out of order. */
static void test_date_range(void **state)
{
    (void)state;
    const char *doc =
        "{\"overrides\":["
        "{\"segment\":{\"device\":\"mobile\"},\"step\":\"payment\",\"probability\":0.35,"
        "\"from\":\"2026-11-20\"},"
        "{\"segment\":{\"country\":\"FR\"},\"step\":\"cart\",\"dropMultiplier\":2,"
        "\"to\":\"2026-11-03\"},"
        "{\"segment\":{\"source\":\"paid\"},\"step\":\"shipping\",\"probability\":0.5,"
        "\"from\":\"2024-02-28\",\"to\":\"2024-03-01\"},"
        "{\"segment\":{\"device\":\"desktop\"},\"step\":\"cart\",\"probability\":0.1,"
        "\"from\":\"2026-01-05\",\"to\":\"2026-01-05\"}]}";
    pe_sim_scenario_t *s = parse_ok(doc);
    assert_int_equal(s->noverrides, 4);
    int32_t nov20 = (int32_t)pe_days_from_civil(2026, 11, 20);
    const sim_override_t *o = s->overrides;
    assert_true(o[0].has_from && !o[0].has_to && o[0].from == nov20);
    assert_true(!o[1].has_from && o[1].has_to &&
                o[1].to == (int32_t)pe_days_from_civil(2026, 11, 3));
    assert_true(o[2].has_from && o[2].has_to && o[2].to - o[2].from == 2); /* a leap day between */
    assert_true(o[3].from == o[3].to);

    /* Matching is by the session's local day, both bounds included. */
    sim_segment_key_t k = {1, 0, 0, SIM_VISITOR_NEW, NULL, nov20 - 1};
    assert_false(sim_override_matches(&o[0], &k));
    k.day = nov20;
    assert_true(sim_override_matches(&o[0], &k));
    k.day = nov20 + 300;
    assert_true(sim_override_matches(&o[0], &k));
    k.device = 0; /* the segment still has to match */
    assert_false(sim_override_matches(&o[0], &k));
    sim_segment_key_t fr = {0, 1, 0, SIM_VISITOR_NEW, NULL, o[1].to};
    assert_true(sim_override_matches(&o[1], &fr));
    fr.day = o[1].to + 1;
    assert_false(sim_override_matches(&o[1], &fr));
    fr.day = 0; /* open-ended back to the first day there is */
    assert_true(sim_override_matches(&o[1], &fr));
    sim_segment_key_t paid = {0, 0, 2, SIM_VISITOR_NEW, "brand-search", o[2].from - 1};
    int hits = 0;
    for (int d = 0; d < 5; d++, paid.day++)
        hits += sim_override_matches(&o[2], &paid);
    assert_int_equal(hits, 3);
    sim_segment_key_t desk = {0, 0, 0, SIM_VISITOR_NEW, NULL, o[3].from};
    assert_true(sim_override_matches(&o[3], &desk));
    desk.day++;
    assert_false(sim_override_matches(&o[3], &desk));

    /* The scenario in force carries the dates, as given, and parses back to itself. */
    char *first = in_force(s);
    assert_non_null(strstr(first, "\"probability\":0.35,\"from\":\"2026-11-20\"}"));
    assert_non_null(strstr(first, "\"dropMultiplier\":2,\"to\":\"2026-11-03\"}"));
    assert_non_null(strstr(first, "\"from\":\"2024-02-28\",\"to\":\"2024-03-01\"}"));
    pe_sim_scenario_t *again = parses_back(first);
    assert_true(again->overrides[2].from == o[2].from && again->overrides[2].to == o[2].to);
    assert_false(again->overrides[0].has_to);
    free(first);
    pe_sim_scenario_free(again);
    pe_sim_scenario_free(s);

    static const struct {
        const char *dates, *want;
    } bad[] = {
        {"\"from\":\"2026-02-30\"", "overrides[0].from: must be a date YYYY-MM-DD"},
        {"\"from\":\"2026-2-3\"", "overrides[0].from: must be a date YYYY-MM-DD"},
        {"\"from\":\"2026-02-03T00:00:00Z\"", "overrides[0].from: must be a date YYYY-MM-DD"},
        {"\"from\":\"1969-12-31\"", "overrides[0].from: must be a date YYYY-MM-DD"},
        {"\"from\":20261120", "overrides[0].from: must be a date YYYY-MM-DD"},
        {"\"from\":\"\"", "overrides[0].from: must be a date YYYY-MM-DD"},
        {"\"to\":\"2026-13-01\"", "overrides[0].to: must be a date YYYY-MM-DD"},
        {"\"to\":null", "overrides[0].to: must be a date YYYY-MM-DD"},
        {"\"from\":\"2026-11-21\",\"to\":\"2026-11-20\"",
         "overrides[0].to: must not be before from (2026-11-21)"},
        {"\"to\":\"2026-11-20\",\"from\":\"2026-11-21\"",
         "overrides[0].to: must not be before from (2026-11-21)"},
        {"\"from\":\"2026-11-20\",\"from\":\"2026-11-21\"", "overrides[0].from: given twice"},
        {"\"since\":\"2026-11-20\"",
         "overrides[0].since: unknown field; an override has segment, step, dropMultiplier, "
         "probability, paymentMethods, from, to"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"payment\","
                 "\"probability\":0.35,%s}]}",
                 bad[i].dates);
        pe_sim_scenario_t *r = (pe_sim_scenario_t *)0x1;
        char err[512] = "";
        int rc = pe_sim_scenario_parse(text, strlen(text), &r, err, sizeof err);
        if (rc != PE_EINVAL || r != NULL || strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
            fail_msg("case %zu: %s\n  rc %d, message '%s'\n  want '%s…'", i, text, rc, err,
                     bad[i].want);
    }
}

static void test_effects(void **state)
{
    (void)state;
    const char *doc = "{\"effects\":["
                      "{\"target\":\"step:shipping\",\"segment\":{\"device\":\"mobile\"},"
                      "\"dropMultiplier\":0.7},"
                      "{\"target\":\"changeType:discount\",\"conversionMultiplier\":1.08,"
                      "\"priceMultiplier\":0.85},"
                      "{\"target\":\"playbook:guest-checkout\",\"conversionMultiplier\":1},"
                      "{\"target\":\"flag:ap-x-1\",\"conversionMultiplier\":0.9},"
                      "{\"target\":\"*\",\"conversionMultiplier\":0.9}]}";
    pe_sim_scenario_t *s = parse_ok(doc);
    assert_int_equal(s->neffects, 5);
    assert_int_equal(s->effects[0].kind, SIM_TARGET_STEP);
    assert_string_equal(s->effects[0].value, "shipping");
    assert_true(s->effects[0].has_segment && s->effects[0].segment.device == 1);
    assert_true(s->effects[0].drop_multiplier == 0.7 && s->effects[0].price_multiplier == 1);
    assert_int_equal(s->effects[1].kind, SIM_TARGET_CHANGE_TYPE);
    assert_true(s->effects[1].price_multiplier == 0.85);
    assert_int_equal(s->effects[2].kind, SIM_TARGET_PLAYBOOK);
    assert_int_equal(s->effects[3].kind, SIM_TARGET_FLAG);
    assert_string_equal(s->effects[3].value, "ap-x-1");
    assert_int_equal(s->effects[4].kind, SIM_TARGET_ANY);
    sim_segment_key_t mobile = {1, 0, 0, SIM_VISITOR_NEW, NULL, 0};
    sim_segment_key_t desktop = {0, 0, 0, SIM_VISITOR_NEW, NULL, 0};
    assert_true(sim_override_matches(&s->effects[0].segment, &mobile));
    assert_false(sim_override_matches(&s->effects[0].segment, &desktop));
    /* round trip, the explicit no-effect (A/A) entry included */
    char *first = in_force(s);
    pe_sim_scenario_t *again = parses_back(first);
    assert_int_equal(again->neffects, 5);
    free(first);
    pe_sim_scenario_free(again);
    pe_sim_scenario_free(s);

    static const struct {
        const char *doc, *want;
    } bad[] = {
        {"{\"effects\":{}}", "effects: must be an array"},
        {"{\"effects\":[{\"conversionMultiplier\":1}]}", "effects[0].target: is required"},
        {"{\"effects\":[{\"target\":\"step:basket\",\"dropMultiplier\":1}]}",
         "effects[0].target: step:<step> names one of cart"},
        {"{\"effects\":[{\"target\":\"color:red\",\"dropMultiplier\":1}]}",
         "effects[0].target: must be *, step:<step>"},
        {"{\"effects\":[{\"target\":\"flag:\",\"dropMultiplier\":1}]}",
         "effects[0].target: must be *"},
        {"{\"effects\":[{\"target\":\"*\"}]}", "effects[0]: changes nothing"},
        {"{\"effects\":[{\"target\":\"*\",\"priceMultiplier\":0}]}",
         "effects[0].priceMultiplier: must be a number 0.01..100"},
        {"{\"effects\":[{\"target\":\"*\",\"conversionMultiplier\":-1}]}",
         "effects[0].conversionMultiplier: must be a number 0..100"},
        {"{\"effects\":[{\"target\":\"*\",\"segment\":{\"device\":\"car\"},"
         "\"conversionMultiplier\":1}]}",
         "effects[0].segment.device: must be one of desktop"},
        {"{\"effects\":[{\"target\":\"*\",\"lift\":2}]}", "effects[0].lift: unknown field"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        pe_sim_scenario_t *x = NULL;
        char err[512] = "";
        assert_int_equal(pe_sim_scenario_parse(bad[i].doc, strlen(bad[i].doc), &x, err, sizeof err),
                         PE_EINVAL);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i].want);
        assert_null(x);
    }
}

static void test_size_bound(void **state)
{
    (void)state;
    size_t n = PE_SIM_SCENARIO_MAX_BYTES + 10;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    pe_sim_scenario_t *s = NULL;
    char err[256];
    assert_int_equal(pe_sim_scenario_parse(big, n, &s, err, sizeof err), PE_EINVAL);
    assert_non_null(strstr(err, "larger than"));
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_example_and_round_trip),
        cmocka_unit_test(test_catalog),    cmocka_unit_test(test_refusals_name_the_field),
        cmocka_unit_test(test_date_range), cmocka_unit_test(test_effects),
        cmocka_unit_test(test_size_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
