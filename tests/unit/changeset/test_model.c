/*
 * test_model.c — the ChangeSet contract's validator over the shared corpus, the exported JSON
 * Schema, and cuid ids.
 *
 * Invariants the tests hold the code to:
 *  1. Every file of tests/corpus/changesets/valid/ is accepted in FULL and in CLIENT mode.
 *  2. Every file of invalid/ is refused with exactly the code and path expected-errors.txt
 *     names, and a message "<path>: …".
 *  3. CLIENT mode lets the server-owned fields go, FULL mode does not.
 *  4. The schema names every nested type of the contract in $defs and closes every object.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/changeset.h"
#include "pe_test.h"

#define MAX_FILE (1u << 20)

static void corpus_path(char *out, size_t outlen, const char *sub)
{
    const char *file = __FILE__;
    const char *at = strstr(file, "unit/changeset/test_model.c");
    assert_non_null(at);
    snprintf(out, outlen, "%.*scorpus/changesets/%s", (int)(at - file), file, sub);
}

static cJSON *load(const char *sub)
{
    char path[1024], err[128];
    corpus_path(path, sizeof path, sub);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = malloc(MAX_FILE);
    assert_non_null(buf);
    size_t n = fread(buf, 1, MAX_FILE, f);
    fclose(f);
    cJSON *j = NULL;
    if (pe_json_parse(buf, n, &j, err, sizeof err) != 0)
        fail_msg("%s is not JSON: %s", path, err);
    free(buf);
    return j;
}

static void test_valid_corpus(void **state)
{
    (void)state;
    char dir[1024];
    corpus_path(dir, sizeof dir, "valid");
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".json"))
            continue;
        char sub[512];
        snprintf(sub, sizeof sub, "valid/%s", e->d_name);
        cJSON *j = load(sub);
        pe_refusal_t err;
        if (pe_changeset_validate(j, PE_CHANGESET_FULL, &err) != 0)
            fail_msg("%s refused: %s", e->d_name, err.message);
        assert_int_equal(pe_changeset_validate(j, PE_CHANGESET_CLIENT, &err), 0);
        cJSON_Delete(j);
        files++;
    }
    closedir(d);
    assert_true(files >= 3);
}

static void test_invalid_corpus(void **state)
{
    (void)state;
    char path[1024], line[1024];
    corpus_path(path, sizeof path, "expected-errors.txt");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int files = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256], code[64], want[512];
        if (line[0] == '#' || sscanf(line, "%255s %63s %511s", name, code, want) != 3)
            continue;
        char sub[512];
        snprintf(sub, sizeof sub, "invalid/%s", name);
        cJSON *j = load(sub);
        pe_refusal_t err;
        int rc = pe_changeset_validate(j, PE_CHANGESET_FULL, &err);
        if (rc != PE_EINVAL)
            fail_msg("%s: accepted, expected %s at %s", name, code, want);
        const char *expect_path = strcmp(want, "-") == 0 ? "" : want;
        /* The path is what the message names before ": "; a rule about the whole document
         * names none (its first ": ", if any, follows words, not a path). */
        const char *colon = strstr(err.message, ": ");
        size_t plen = colon ? (size_t)(colon - err.message) : 0;
        if (colon && memchr(err.message, ' ', plen))
            plen = 0;
        if (strcmp(err.code, code) != 0 || plen != strlen(expect_path) ||
            memcmp(err.message, expect_path, plen) != 0)
            fail_msg("%s: got %s (%s), expected %s at '%s'", name, err.code, err.message, code,
                     expect_path);
        cJSON_Delete(j);
        files++;
    }
    fclose(f);
    assert_true(files >= 30);
}

static void test_rollout_message(void **state)
{
    (void)state;
    cJSON *j = load("valid/shipping_cost_banner.json");
    cJSON *ap = cJSON_GetObjectItemCaseSensitive(j, "actionPlan");
    cJSON_ReplaceItemInObjectCaseSensitive(ap, "rolloutPercentage", cJSON_CreateNumber(101));
    pe_refusal_t err;
    assert_int_equal(pe_changeset_validate(j, PE_CHANGESET_CLIENT, &err), PE_EINVAL);
    assert_string_equal(err.message, "actionPlan.rolloutPercentage: must be 0..100");
    cJSON_Delete(j);
}

static void test_client_mode(void **state)
{
    (void)state;
    cJSON *j = load("valid/discount_change.json");
    static const char *const server[] = {"id",       "version",   "storeId",
                                         "approval", "execution", "auditTrail"};
    for (size_t i = 0; i < PE_ARRAY_LEN(server); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(j, server[i]);
    pe_refusal_t err;
    assert_int_equal(pe_changeset_validate(j, PE_CHANGESET_CLIENT, &err), 0);
    assert_int_equal(pe_changeset_validate(j, PE_CHANGESET_FULL, &err), PE_EINVAL);
    assert_string_equal(err.code, "missing_field");
    assert_memory_equal(err.message, "id: ", 4);
    /* a server field, when present, is still checked */
    cJSON_AddStringToObject(j, "id", "not-a-cuid");
    assert_int_equal(pe_changeset_validate(j, PE_CHANGESET_CLIENT, &err), PE_EINVAL);
    assert_memory_equal(err.message, "id: ", 4);
    cJSON_Delete(j);
}

static void test_duplicate_key(void **state)
{
    (void)state;
    cJSON *j = load("valid/price_change.json");
    cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(j, "guardrails"), "riskLevel",
                          cJSON_CreateString("high"));
    pe_refusal_t err;
    assert_int_equal(pe_changeset_validate(j, PE_CHANGESET_FULL, &err), PE_EINVAL);
    assert_memory_equal(err.message, "guardrails.riskLevel: ", 22);
    assert_string_equal(err.code, "invalid_format");
    cJSON_Delete(j);
}

static void test_schema(void **state)
{
    (void)state;
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_changeset_json_schema(&b), 0);
    cJSON *s = NULL;
    char err[128];
    assert_int_equal(pe_json_parse(b.data, b.len, &s, err, sizeof err), 0);
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(s, "$defs");
    static const char *const types[] = {"AutopilotChangeSet", "DataPoint",     "SegmentDefinition",
                                        "ChangeDetail",       "SLOCheck",      "MetricTrigger",
                                        "MetricDefinition",   "LiveMetrics",   "ProofResult",
                                        "AuditEvent",         "ChangeSetInput"};
    for (size_t i = 0; i < PE_ARRAY_LEN(types); i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(defs, types[i]);
        if (!t)
            fail_msg("$defs.%s missing", types[i]);
        assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(t, "additionalProperties")));
    }
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(s, "$schema")->valuestring,
                        "https://json-schema.org/draft/2020-12/schema");
    cJSON_Delete(s);
    pe_buf_free(&b);
}

static void test_cuid(void **state)
{
    (void)state;
    char a[PE_CHANGESET_ID_LEN], b[PE_CHANGESET_ID_LEN];
    pe_changeset_cuid(a);
    pe_changeset_cuid(b);
    assert_true(pe_changeset_cuid_valid(a));
    assert_string_not_equal(a, b);
    assert_false(pe_changeset_cuid_valid("c123"));
    assert_false(pe_changeset_cuid_valid("C7a1k2p30000qz8x4t9b2c1dx"));
    assert_false(pe_changeset_cuid_valid(NULL));
}

int main(void)
{
    pe_crypto_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_corpus),
        cmocka_unit_test(test_invalid_corpus),
        cmocka_unit_test(test_rollout_message),
        cmocka_unit_test(test_client_mode),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_cuid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
