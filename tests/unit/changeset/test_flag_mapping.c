/*
 * test_flag_mapping.c — the flag a ChangeSet drives (src/changeset/flag_hooks.c), without a
 * database: its key, and the definition for each rollout strategy and for PERMANENT.
 *
 * Invariants the tests hold the code to:
 *  1. Every definition built from a valid corpus ChangeSet passes the flag validator as is.
 *  2. immediate / gradual / holdout map to the rollout and weights README "ChangeSets" documents.
 *  3. PERMANENT is the winner alone at 100 %; a winner other than control/treatment, and a
 *     change carried by another variant, are refused naming the ChangeSet field.
 *  4. actionPlan.targetSegment becomes one filter rule, the AND of its rules with the attribute,
 *     operator and value mapping of flag_hooks.c (no rules: "rules": []); what the flag cannot
 *     target is refused naming actionPlan.targetSegment.rules[j], never dropped.
 *  5. Evaluated by the engine, a unit outside the segment or without the attribute gets control
 *     (DEFAULT); treatment made PERMANENT over a segment serves the whole segment, store holdout
 *     included, and control to everyone else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/changeset.h"
#include "pe/flags.h"
#include "pe_test.h"

#define ID "cm7a2b3c40000ab12cd34ef56"

static cJSON *load(const char *name)
{
    char path[1024], why[128];
    const char *file = __FILE__;
    const char *at = strstr(file, "unit/changeset/test_flag_mapping.c");
    assert_non_null(at);
    snprintf(path, sizeof path, "%.*scorpus/changesets/valid/%s", (int)(at - file), file, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    cJSON *doc = NULL;
    assert_int_equal(pe_json_parse(buf, n, &doc, why, sizeof why), 0);
    return doc;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static cJSON *plan(cJSON *doc)
{
    return cJSON_GetObjectItemCaseSensitive(doc, "actionPlan");
}

/* Builds the definition, checks it against the flag validator, returns it. */
static cJSON *definition(const cJSON *doc, const char *winner)
{
    cJSON *def = NULL, *canon = NULL;
    char err[256] = "";
    if (pe_changeset_flag_definition(doc, ID, winner, &def, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
    pe_refusal_t fe;
    if (pe_flags_validate(def, false, &canon, &fe) != 0)
        fail_msg("the flag validator refuses the definition: %s", fe.message);
    cJSON_Delete(canon);
    return def;
}

static void expect_split(const cJSON *def, int rollout, int control, int treatment)
{
    const cJSON *v = get(def, "variants");
    assert_string_equal(get(def, "kind")->valuestring, "autopilot");
    assert_true(cJSON_IsTrue(get(def, "enabled")));
    assert_int_equal(get(def, "rolloutPercentage")->valueint, rollout);
    assert_int_equal(cJSON_GetArraySize(v), 2);
    assert_string_equal(get(cJSON_GetArrayItem(v, 0), "key")->valuestring, "control");
    assert_int_equal(get(cJSON_GetArrayItem(v, 0), "weight")->valueint, control);
    assert_string_equal(get(cJSON_GetArrayItem(v, 1), "key")->valuestring, "treatment");
    assert_int_equal(get(cJSON_GetArrayItem(v, 1), "weight")->valueint, treatment);
    assert_string_equal(get(def, "defaultVariant")->valuestring, "control");
}

static void test_key(void **state)
{
    (void)state;
    char key[PE_CHANGESET_FLAG_KEY_MAX];
    cJSON *doc = load("shipping_cost_banner.json");
    pe_changeset_flag_key(doc, ID, key);
    assert_string_equal(key, "shipping-threshold-banner");
    cJSON_DeleteItemFromObjectCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(plan(doc), "implementation"), "featureFlagKey");
    pe_changeset_flag_key(doc, ID, key);
    assert_string_equal(key, "changeset-" ID);
    cJSON *def = definition(doc, NULL);
    assert_string_equal(get(def, "key")->valuestring, "changeset-" ID);
    cJSON_Delete(def);
    cJSON_Delete(doc);
}

static void test_strategies(void **state)
{
    (void)state;
    cJSON *doc = load("price_change.json"); /* immediate */
    cJSON *def = definition(doc, NULL);
    expect_split(def, 100, 0, 100);
    const cJSON *change = cJSON_GetArrayItem(
        get(get(cJSON_GetArrayItem(get(def, "variants"), 1), "value"), "changes"), 0);
    assert_string_equal(get(change, "type")->valuestring, "price");
    assert_string_equal(get(get(change, "scope"), "sku")->valuestring, "TEE-001");
    assert_true(get(change, "value")->valuedouble == 25.0);
    cJSON_Delete(def);
    cJSON_Delete(doc);

    doc = load("shipping_cost_banner.json"); /* gradual 50 */
    def = definition(doc, NULL);
    expect_split(def, 50, 0, 100);
    cJSON_Delete(def);
    cJSON_ReplaceItemInObjectCaseSensitive(plan(doc), "rolloutPercentage",
                                           cJSON_CreateNumber(12.5));
    def = definition(doc, NULL);
    expect_split(def, 13, 0, 100); /* rounded half away from zero */
    cJSON_Delete(def);
    cJSON_Delete(doc);

    doc = load("discount_change.json"); /* holdout, rolloutPercentage 90 */
    def = definition(doc, NULL);
    expect_split(def, 100, 10, 90);
    cJSON_Delete(def);
    cJSON_DeleteItemFromObjectCaseSensitive(plan(doc), "rolloutPercentage");
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "proofPlan"),
                                           "holdoutPercentage", cJSON_CreateNumber(20));
    def = definition(doc, NULL);
    expect_split(def, 100, 20, 80); /* 100 − proofPlan.holdoutPercentage */
    cJSON_Delete(def);
    cJSON_Delete(doc);
}

static void test_permanent_and_refusals(void **state)
{
    (void)state;
    cJSON *doc = load("discount_change.json");
    cJSON *def = definition(doc, "control");
    const cJSON *v = get(def, "variants");
    assert_int_equal(cJSON_GetArraySize(v), 1);
    assert_string_equal(get(cJSON_GetArrayItem(v, 0), "key")->valuestring, "control");
    assert_int_equal(get(cJSON_GetArrayItem(v, 0), "weight")->valueint, 100);
    assert_int_equal(get(def, "rolloutPercentage")->valueint, 100);
    assert_string_equal(get(def, "defaultVariant")->valuestring, "control");
    cJSON_Delete(def);

    char err[256] = "";
    assert_int_equal(pe_changeset_flag_definition(doc, ID, "variant-b", &def, err, sizeof err),
                     PE_EINVAL);
    assert_null(def);
    assert_non_null(strstr(err, "execution.proofResult.winningVariant"));

    cJSON *change = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(plan(doc), "implementation"), "changes"),
        0);
    cJSON_ReplaceItemInObjectCaseSensitive(change, "variant", cJSON_CreateString("control"));
    assert_int_equal(pe_changeset_flag_definition(doc, ID, NULL, &def, err, sizeof err), PE_EINVAL);
    assert_string_equal(err, "actionPlan.implementation.changes[0].variant: the flag has the "
                             "variants control and treatment, and treatment carries every change");
    cJSON_Delete(doc);
}

/* ---- targeting ---------------------------------------------------------------------------- */

static cJSON *parse(const char *text)
{
    cJSON *doc = NULL;
    char why[128];
    if (pe_json_parse(text, strlen(text), &doc, why, sizeof why) != 0)
        fail_msg("test JSON: %s", why);
    return doc;
}

/* doc's actionPlan.targetSegment.rules replaced by the JSON array rules. */
static void segment(cJSON *doc, const char *rules)
{
    cJSON_ReplaceItemInObjectCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(plan(doc), "targetSegment"), "rules", parse(rules));
}

static void expect_rules(const cJSON *def, const char *want)
{
    cJSON *w = parse(want);
    if (!cJSON_Compare(get(def, "rules"), w, true)) {
        char *got = cJSON_PrintUnformatted(get(def, "rules"));
        fail_msg("rules %s, want %s", got ? got : "?", want);
    }
    cJSON_Delete(w);
}

/* The rules of the experiment's flag for a segment. */
static void expect_targeting(const char *segment_rules, const char *want)
{
    cJSON *doc = load("price_change.json");
    segment(doc, segment_rules);
    cJSON *def = definition(doc, NULL);
    expect_rules(def, want);
    cJSON_Delete(def);
    cJSON_Delete(doc);
}

static void expect_refusal(const char *segment_rules, const char *want)
{
    cJSON *doc = load("discount_change.json"), *def = NULL;
    char err[256] = "";
    segment(doc, segment_rules);
    assert_int_equal(pe_changeset_flag_definition(doc, ID, NULL, &def, err, sizeof err), PE_EINVAL);
    assert_null(def);
    assert_string_equal(err, want);
    /* PERMANENT with treatment targets the segment too; with control it needs no segment */
    assert_int_equal(pe_changeset_flag_definition(doc, ID, "treatment", &def, err, sizeof err),
                     PE_EINVAL);
    assert_null(def);
    assert_string_equal(err, want);
    def = definition(doc, "control");
    cJSON_Delete(def);
    cJSON_Delete(doc);
}

static void test_targeting_mapping(void **state)
{
    (void)state;
    /* the corpus: every segment maps and validates (definition() checks) */
    cJSON *doc = load("discount_change.json");
    cJSON *def = definition(doc, NULL);
    expect_rules(def, "[{\"conditions\":[{\"attribute\":\"custom.product_category\",\"operator\":"
                      "\"in\",\"values\":[\"Sneakers\"]},{\"attribute\":\"device\",\"operator\":"
                      "\"in\",\"values\":[\"mobile\",\"desktop\"]}]}]");
    cJSON_Delete(def);
    cJSON_Delete(doc);
    doc = load("price_change.json");
    def = definition(doc, NULL);
    expect_rules(def, "[{\"conditions\":[{\"attribute\":\"customer\",\"operator\":\"in\","
                      "\"values\":[\"returning\"]}]}]");
    cJSON_Delete(def);
    cJSON_Delete(doc);
    doc = load("shipping_cost_banner.json");
    def = definition(doc, NULL);
    expect_rules(def, "[{\"conditions\":[{\"attribute\":\"custom.cart_value\",\"operator\":\"lt\","
                      "\"values\":[50]}]}]");
    cJSON_Delete(def);
    cJSON_Delete(doc);

    /* mobile visitors only */
    expect_targeting("[{\"attribute\":\"device.type\",\"operator\":\"eq\",\"value\":\"mobile\"}]",
                     "[{\"conditions\":[{\"attribute\":\"device\",\"operator\":\"in\","
                     "\"values\":[\"mobile\"]}]}]");
    /* no rules: every visitor */
    expect_targeting("[]", "[]");
    /* numbers and booleans compared as text, countries upper-cased, the SDK's utm keys */
    expect_targeting(
        "[{\"attribute\":\"cart.items\",\"operator\":\"eq\",\"value\":3},"
        "{\"attribute\":\"cart.value\",\"operator\":\"neq\",\"value\":19.99},"
        "{\"attribute\":\"member\",\"operator\":\"eq\",\"value\":true},"
        "{\"attribute\":\"geo.country\",\"operator\":\"in\",\"value\":[\"de\",\"AT\"]},"
        "{\"attribute\":\"utm.source\",\"operator\":\"eq\",\"value\":\"newsletter\"},"
        "{\"attribute\":\"utm.campaign\",\"operator\":\"not_in\",\"value\":[\"a\",7]},"
        "{\"attribute\":\"page.path\",\"operator\":\"contains\",\"value\":\"/checkout\"},"
        "{\"attribute\":\"customer\",\"operator\":\"neq\",\"value\":\"new\"},"
        "{\"attribute\":\"cart.value\",\"operator\":\"gte\",\"value\":12.5}]",
        "[{\"conditions\":["
        "{\"attribute\":\"custom.cart_items\",\"operator\":\"in\",\"values\":[\"3\"]},"
        "{\"attribute\":\"custom.cart_value\",\"operator\":\"not_in\",\"values\":[\"19.99\"]},"
        "{\"attribute\":\"custom.member\",\"operator\":\"in\",\"values\":[\"true\"]},"
        "{\"attribute\":\"country\",\"operator\":\"in\",\"values\":[\"DE\",\"AT\"]},"
        "{\"attribute\":\"custom.utm_source\",\"operator\":\"in\",\"values\":[\"newsletter\"]},"
        "{\"attribute\":\"custom.utm_campaign\",\"operator\":\"not_in\",\"values\":[\"a\",\"7\"]},"
        "{\"attribute\":\"path\",\"operator\":\"contains\",\"values\":[\"/checkout\"]},"
        "{\"attribute\":\"customer\",\"operator\":\"not_in\",\"values\":[\"new\"]},"
        "{\"attribute\":\"custom.cart_value\",\"operator\":\"gte\",\"values\":[12.5]}]}]");
}

static void test_targeting_refusals(void **state)
{
    (void)state;
    expect_refusal("[{\"attribute\":\"product.category\",\"operator\":\"eq\",\"value\":\"Shoes\"},"
                   "{\"attribute\":\"device.type\",\"operator\":\"eq\",\"value\":\"phone\"}]",
                   "actionPlan.targetSegment.rules[1].value: the feature flag cannot target "
                   "device 'phone' (desktop, mobile, tablet or other)");
    expect_refusal(
        "[{\"attribute\":\"device\",\"operator\":\"in\",\"value\":[\"mobile\",\"phone\"]}]",
        "actionPlan.targetSegment.rules[0].value[1]: the feature flag cannot target device "
        "'phone' (desktop, mobile, tablet or other)");
    expect_refusal("[{\"attribute\":\"customer.type\",\"operator\":\"eq\",\"value\":\"vip\"}]",
                   "actionPlan.targetSegment.rules[0].value: the feature flag cannot target "
                   "customer 'vip' (new or returning)");
    expect_refusal("[{\"attribute\":\"device.type\",\"operator\":\"contains\",\"value\":\"mob\"}]",
                   "actionPlan.targetSegment.rules[0].operator: the feature flag cannot target "
                   "this: contains does not apply to device");
    expect_refusal("[{\"attribute\":\"cart.value\",\"operator\":\"lt\",\"value\":\"cheap\"}]",
                   "actionPlan.targetSegment.rules[0].value: the feature flag cannot target "
                   "custom.cart_value 'cheap' (a number)");
    expect_refusal("[{\"attribute\":\"cart.value\",\"operator\":\"lt\",\"value\":[1,2]}]",
                   "actionPlan.targetSegment.rules[0].value: the feature flag cannot target "
                   "this: must have exactly one number");
    expect_refusal("[{\"attribute\":\"utm source\",\"operator\":\"eq\",\"value\":\"x\"}]",
                   "actionPlan.targetSegment.rules[0].attribute: the feature flag cannot target "
                   "'utm source' (device.type, country, customer.type, page.path, or a name of "
                   "1..64 letters, digits, _ . -)");
    char many[2048] = "[";
    for (int i = 0; i <= PE_FLAGS_MAX_CONDITIONS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "%s{\"attribute\":\"a%d\",\"operator\":\"eq\",\"value\":\"x\"}", i ? "," : "", i);
    strcat(many, "]");
    expect_refusal(many, "actionPlan.targetSegment.rules: the feature flag can target at most 10 "
                         "rules (this segment has 11)");
}

/* A set holding def alone, the store holdout at holdout %. */
static pe_flag_set_t *set_of(const cJSON *def, int holdout)
{
    cJSON *canon = NULL, *doc = cJSON_CreateObject(), *h = NULL;
    pe_refusal_t fe;
    assert_int_equal(pe_flags_validate(def, false, &canon, &fe), 0);
    assert_non_null(cJSON_AddStringToObject(canon, "salt", "salt"));
    assert_non_null(cJSON_AddNumberToObject(canon, "version", 1));
    assert_non_null(doc);
    assert_non_null(cJSON_AddStringToObject(doc, "storeId", "s"));
    assert_non_null(cJSON_AddNumberToObject(doc, "version", 1));
    assert_non_null(h = cJSON_AddObjectToObject(doc, "holdout"));
    assert_non_null(cJSON_AddNumberToObject(h, "percentage", holdout));
    assert_non_null(cJSON_AddStringToObject(h, "salt", "hold"));
    cJSON *flags = cJSON_AddArrayToObject(doc, "flags");
    assert_true(flags && cJSON_AddItemToArray(flags, canon));
    char *text = cJSON_PrintUnformatted(doc);
    assert_non_null(text);
    pe_flag_set_t *set = pe_flags_set_from_json(text, strlen(text));
    assert_non_null(set);
    assert_int_equal(pe_flags_set_quarantined(set), 0);
    free(text);
    cJSON_Delete(doc);
    return set;
}

/* The variant the set's flag serves a unit with the context's other attributes (JSON members,
 * "" for none); *reason its reason. */
static const char *served(const pe_flag_set_t *set, const char *unit, const char *attrs,
                          pe_flag_reason_t *reason)
{
    char text[256], why[128];
    snprintf(text, sizeof text, "{\"targetingKey\":\"%s\"%s%s}", unit, attrs[0] ? "," : "", attrs);
    cJSON *ctx = parse(text);
    pe_flag_context_t c;
    pe_flag_eval_t ev;
    assert_int_equal(pe_flags_context_parse(ctx, &c, why, sizeof why), 0);
    pe_flags_evaluate(set, pe_flags_set_at(set, 0), &c, &ev);
    cJSON_Delete(ctx);
    *reason = ev.reason;
    return ev.variant >= 0 ? pe_flags_variant_key(ev.flag, ev.variant) : "(error)";
}

static void test_targeting_evaluated(void **state)
{
    (void)state;
    cJSON *doc = load("shipping_cost_banner.json"); /* cart.value lt 50, gradual 50 % */
    cJSON *def = definition(doc, NULL);
    pe_flag_set_t *set = set_of(def, 5);
    pe_flag_reason_t r;
    int treated = 0;
    for (int i = 0; i < 400; i++) {
        char unit[32];
        snprintf(unit, sizeof unit, "visitor-%d", i);
        if (strcmp(served(set, unit, "\"cart_value\":20", &r), "treatment") == 0) {
            assert_int_equal(r, PE_FLAG_REASON_SPLIT);
            treated++;
        }
        /* outside the segment, or without the attribute: control, not in the experiment */
        assert_string_equal(served(set, unit, "\"cart_value\":80", &r), "control");
        assert_int_equal(r, PE_FLAG_REASON_DEFAULT);
        assert_string_equal(served(set, unit, "", &r), "control");
        assert_int_equal(r, PE_FLAG_REASON_DEFAULT);
        assert_string_equal(served(set, unit, "\"cart_value\":\"20\"", &r), "control");
        assert_int_equal(r, PE_FLAG_REASON_DEFAULT);
    }
    assert_true(treated > 140 && treated < 240); /* ≈ 95 % × 50 % of 400 */
    pe_flags_set_release(set);
    cJSON_Delete(def);

    /* a number compared by value after its trip through text */
    segment(doc, "[{\"attribute\":\"cart.value\",\"operator\":\"eq\",\"value\":19.99}]");
    def = definition(doc, "treatment");
    set = set_of(def, 0);
    assert_string_equal(served(set, "u", "\"cart_value\":19.99", &r), "treatment");
    assert_string_equal(served(set, "u", "\"cart_value\":19.98", &r), "control");
    pe_flags_set_release(set);
    cJSON_Delete(def);
    cJSON_Delete(doc);
}

static void test_permanent_with_segment(void **state)
{
    (void)state;
    cJSON *doc = load("shipping_cost_banner.json");
    cJSON *def = definition(doc, "treatment");
    expect_split(def, 100, 0, 100);
    expect_rules(def,
                 "[{\"conditions\":[{\"attribute\":\"custom.cart_value\",\"operator\":\"lt\","
                 "\"values\":[50]}],\"variant\":\"treatment\"},{\"conditions\":[{"
                 "\"attribute\":\"custom.cart_value\",\"operator\":\"lt\",\"values\":[50]}]}]");
    /* a large store holdout: the segment gets treatment all the same, everyone else control */
    pe_flag_set_t *set = set_of(def, 50);
    pe_flag_reason_t r;
    for (int i = 0; i < 200; i++) {
        char unit[32];
        snprintf(unit, sizeof unit, "unit-%d", i);
        assert_string_equal(served(set, unit, "\"cart_value\":20", &r), "treatment");
        assert_int_equal(r, PE_FLAG_REASON_TARGETING_MATCH);
        assert_string_equal(served(set, unit, "\"cart_value\":80", &r), "control");
        assert_int_equal(r, PE_FLAG_REASON_DEFAULT);
        assert_string_equal(served(set, unit, "", &r), "control");
        assert_int_equal(r, PE_FLAG_REASON_DEFAULT);
    }
    pe_flags_set_release(set);
    cJSON_Delete(def);

    /* control winning: control for everyone, no rules */
    def = definition(doc, "control");
    assert_int_equal(cJSON_GetArraySize(get(def, "variants")), 1);
    expect_rules(def, "[]");
    cJSON_Delete(def);

    /* no segment: the winner alone, every unit, as before */
    segment(doc, "[]");
    def = definition(doc, "treatment");
    assert_int_equal(cJSON_GetArraySize(get(def, "variants")), 1);
    assert_string_equal(get(def, "defaultVariant")->valuestring, "treatment");
    expect_rules(def, "[]");
    cJSON_Delete(def);
    cJSON_Delete(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_strategies),
        cmocka_unit_test(test_permanent_and_refusals),
        cmocka_unit_test(test_targeting_mapping),
        cmocka_unit_test(test_targeting_refusals),
        cmocka_unit_test(test_targeting_evaluated),
        cmocka_unit_test(test_permanent_with_segment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
