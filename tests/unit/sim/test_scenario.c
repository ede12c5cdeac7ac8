/*
 * test_scenario.c — the simulator's scenario parser: defaults, the documented example, the
 * round trip through "the scenario in force", and a refusal naming the field for every kind of
 * mistake a hand-written scenario makes.
 */
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
    sim_segment_key_t mobile = {1, 0, 0, SIM_VISITOR_NEW, NULL};
    sim_segment_key_t desktop = {0, 0, 0, SIM_VISITOR_NEW, NULL};
    sim_segment_key_t spring = {0, 0, 3, SIM_VISITOR_RETURNING, "spring-launch"};
    sim_segment_key_t fr_paid_new = {0, 1, 2, SIM_VISITOR_NEW, "brand-search"};
    sim_segment_key_t fr_paid_ret = {0, 1, 2, SIM_VISITOR_RETURNING, "brand-search"};
    assert_true(sim_override_matches(&s->overrides[0], &mobile));
    assert_false(sim_override_matches(&s->overrides[0], &desktop));
    assert_true(sim_override_matches(&s->overrides[1], &spring));
    assert_false(sim_override_matches(&s->overrides[1], &desktop));
    assert_true(sim_override_matches(&s->overrides[2], &fr_paid_new));
    assert_false(sim_override_matches(&s->overrides[2], &fr_paid_ret));

    /* The scenario in force parses back to itself. */
    char *first = in_force(s);
    pe_sim_scenario_t *again = parse_ok(first);
    char *second = in_force(again);
    assert_string_equal(first, second);
    free(first);
    free(second);
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
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_example_and_round_trip),
        cmocka_unit_test(test_refusals_name_the_field),
        cmocka_unit_test(test_size_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
