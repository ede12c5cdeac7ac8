/*
 * test_flag_mapping.c — the flag a ChangeSet drives (src/changeset/flag_hooks.c), without a
 * database: its key, and the definition for each rollout strategy and for PERMANENT.
 *
 * Invariants the tests hold the code to:
 *  1. Every definition built from a valid corpus ChangeSet passes the flag validator as is.
 *  2. immediate / gradual / holdout map to the rollout and weights README "ChangeSets" documents.
 *  3. PERMANENT is the winner alone at 100 %; a winner other than control/treatment, and a
 *     change carried by another variant, are refused naming the ChangeSet field.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_strategies),
        cmocka_unit_test(test_permanent_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
