/*
 * test_changeset_flags.c — the feature flag behind a ChangeSet, end to end: REST transitions on
 * one profit-engine child process, the flag read back through the admin API and evaluated
 * through OFREP with the store's publishable key, on that process and on a second one that
 * shares the database and Redis (so the publication after COMMIT is what it sees).
 *
 * Invariants the tests hold the server to:
 *  1. Approval creates and enables the flag from actionPlan (key, kind autopilot, variants
 *     control/treatment with the implementation's before/after values, the rollout strategy's
 *     percentages, targetSegment as a filter rule), and the audit event names the flag key and
 *     version. A unit outside the segment, or without the attribute, gets control (DEFAULT).
 *  2. A rollback turns the flag off: OFREP answers DISABLED on another instance within 1 s.
 *  3. PERMANENT serves the winner to every targeting key of the segment, store holdout
 *     included, and control to everyone else.
 *  4. A flag write that fails (a merchant's flag holds the key) refuses the transition with a
 *     409 and changes nothing: state, version, audit trail, outbox and the merchant's flag.
 *  5. Another store's publishable key gets FLAG_NOT_FOUND for the store's Autopilot flag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pe/api.h"
#include "pe/changeset.h"
#include "pe/tenancy.h"
#include "pe_test.h"

#define PASSWORD "changeset-flags-password-1"

static pe_test_fixture_t fx;
static pe_test_server_t second;
static pe_test_tenant_t a, b;

/* A proofResult whose winningVariant is the text that follows it. */
#define PROOF_BEFORE_WINNER                                                                        \
    "\"proofResult\":{\"outcome\":\"proven\",\"method\":\"cuped\",\"primaryMetric\":"              \
    "\"checkout_conversion_rate\",\"relativeLift\":0.12,\"confidenceInterval\":[0.04,0.2],"        \
    "\"pValue\":0.01,\"sampleSize\":9000,\"decidedAt\":\"2026-03-16T10:00:00Z\","                  \
    "\"winningVariant\":\""

/* ---- helpers ----------------------------------------------------------------------------------
 */

/* pe_test_expect on the first server as t's secret key. */
static cJSON *expect(const char *method, const char *path, const char *body,
                     const pe_test_tenant_t *t, long want)
{
    return pe_test_expect(&fx.server, method, path, body, t->sk_auth, want);
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* Creates a ChangeSet for t from a corpus file, with featureFlagKey replaced by flag_key (NULL:
 * removed, so the key is derived from the id); copies its id into id. */
static void create(const pe_test_tenant_t *t, const char *file, const char *flag_key,
                   char id[PE_CHANGESET_ID_LEN])
{
    char path[256], why[128];
    char *text = pe_test_corpusf("changesets/%s", file);
    cJSON *doc = NULL;
    assert_int_equal(pe_json_parse(text, strlen(text), &doc, why, sizeof why), 0);
    free(text);
    cJSON *impl = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(doc, "actionPlan"), "implementation");
    cJSON_DeleteItemFromObjectCaseSensitive(impl, "featureFlagKey");
    if (flag_key)
        cJSON_AddStringToObject(impl, "featureFlagKey", flag_key);
    else /* a feature_flag plan must name its key; a segment_target one need not */
        cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "actionPlan"),
                                               "type", cJSON_CreateString("segment_target"));
    char *body = pe_json_print(doc);
    cJSON_Delete(doc);
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets", t->id);
    cJSON *j = expect("POST", path, body, t, 201);
    free(body);
    snprintf(id, PE_CHANGESET_ID_LEN, "%s", pe_test_json_str(j, "id"));
    assert_true(pe_changeset_cuid_valid(id));
    cJSON_Delete(j);
}

static cJSON *move(const pe_test_tenant_t *t, const char *id, const char *body, long want)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s/transitions", t->id, id);
    return expect("POST", path, body, t, want);
}

static void move_ok(const pe_test_tenant_t *t, const char *id, const char *body)
{
    cJSON_Delete(move(t, id, body, 200));
}

/* The last audit event of a transition's answer. */
static const cJSON *last_event(const cJSON *doc)
{
    const cJSON *trail = get(doc, "auditTrail");
    return cJSON_GetArrayItem(trail, cJSON_GetArraySize(trail) - 1);
}

static cJSON *flag(const pe_test_tenant_t *t, const char *key, long want)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/flags/%s", t->id, key);
    return expect("GET", path, NULL, t, want);
}

/* OFREP for unit; attrs: the context's other members as JSON text ("\"cart_value\":20"), or
 * NULL for none. */
static cJSON *ofrep_ctx(const pe_test_server_t *s, const pe_test_tenant_t *t, const char *key,
                        const char *unit, const char *attrs, long want)
{
    char path[256], body[512];
    snprintf(path, sizeof path, "/ofrep/v1/evaluate/flags/%s", key);
    snprintf(body, sizeof body, "{\"context\":{\"targetingKey\":\"%s\"%s%s}}", unit,
             attrs ? "," : "", attrs ? attrs : "");
    return pe_test_expect(s, "POST", path, body, t->pk_auth, want);
}

static cJSON *ofrep_on(const pe_test_server_t *s, const pe_test_tenant_t *t, const char *key,
                       const char *unit, long want)
{
    return ofrep_ctx(s, t, key, unit, NULL, want);
}

/* The segment of valid/shipping_cost_banner.json is cart.value lt 50. */
#define IN_SEGMENT  "\"cart_value\":20"
#define OUT_SEGMENT "\"cart_value\":80"

/* The variant of key named vkey in an API-form flag. */
static const cJSON *variant_of(const cJSON *f, const char *vkey)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, get(f, "variants")) if (strcmp(pe_test_json_str(v, "key"), vkey) ==
                                                  0) return v;
    fail_msg("the flag has no variant %s", vkey);
    return NULL;
}

static void assert_weights(const cJSON *f, int control, int treatment)
{
    assert_int_equal(cJSON_GetArraySize(get(f, "variants")), 2);
    assert_int_equal((int)pe_test_json_num(variant_of(f, "control"), "weight"), control);
    assert_int_equal((int)pe_test_json_num(variant_of(f, "treatment"), "weight"), treatment);
}

/* The value of the first change in a variant's value. */
static const cJSON *first_change_value(const cJSON *value)
{
    return get(cJSON_GetArrayItem(get(value, "changes"), 0), "value");
}

/* ---- tests ------------------------------------------------------------------------------------
 */

static void test_approval_creates_flag(void **state)
{
    (void)state;
    char id[PE_CHANGESET_ID_LEN];
    /* gradual 50 %: the rollout is the plan's, every unit inside it gets treatment */
    create(&a, "valid/shipping_cost_banner.json", "banner-approval", id);
    move_ok(&a, id, "{\"to\":\"PENDING_APPROVAL\"}");
    cJSON *doc = move(&a, id, "{\"to\":\"ACTIVE\"}", 200);
    const cJSON *ev = last_event(doc);
    assert_string_equal(pe_test_json_str(ev, "action"), "approved");
    const cJSON *fm = get(get(ev, "metadata"), "flag");
    assert_string_equal(pe_test_json_str(fm, "key"), "banner-approval");
    assert_int_equal((int)pe_test_json_num(fm, "version"), 1);
    assert_true(cJSON_IsTrue(get(fm, "enabled")));
    cJSON_Delete(doc);

    cJSON *f = flag(&a, "banner-approval", 200);
    assert_true(cJSON_IsTrue(get(f, "enabled")));
    assert_string_equal(pe_test_json_str(f, "kind"), "autopilot");
    assert_int_equal((int)pe_test_json_num(f, "rolloutPercentage"), 50);
    assert_string_equal(pe_test_json_str(f, "defaultVariant"), "control");
    assert_weights(f, 0, 100);
    const cJSON *rule = cJSON_GetArrayItem(get(f, "rules"), 0);
    assert_int_equal(cJSON_GetArraySize(get(f, "rules")), 1);
    assert_null(get(rule, "variant")); /* a filter: the segment enters the split */
    const cJSON *cond = cJSON_GetArrayItem(get(rule, "conditions"), 0);
    assert_string_equal(pe_test_json_str(cond, "attribute"), "custom.cart_value");
    assert_string_equal(pe_test_json_str(cond, "operator"), "lt");
    const cJSON *tv = get(variant_of(f, "treatment"), "value");
    const cJSON *cv = get(variant_of(f, "control"), "value");
    assert_string_equal(pe_test_json_str(tv, "changeset"), id);
    assert_string_equal(first_change_value(tv)->valuestring,
                        "Free shipping from 50 EUR - you are {remaining} away");
    assert_true(cJSON_IsNull(first_change_value(cv)));
    assert_string_equal(
        pe_test_json_str(get(cJSON_GetArrayItem(get(tv, "changes"), 0), "scope"), "selector"),
        "/cart");

    /* OFREP with the store's publishable key: the segment is split, the treatment's value as
     * served; a unit outside the segment, or without cart_value, is not in the experiment */
    int treated = 0, control = 0;
    for (int i = 0; i < 200; i++) {
        char unit[32];
        snprintf(unit, sizeof unit, "visitor-%d", i);
        for (int k = 0; k < 2; k++) {
            cJSON *o =
                ofrep_ctx(&fx.server, &a, "banner-approval", unit, k ? OUT_SEGMENT : NULL, 200);
            assert_string_equal(pe_test_json_str(o, "variant"), "control");
            assert_string_equal(pe_test_json_str(o, "reason"), "DEFAULT");
            assert_false(cJSON_IsTrue(get(get(o, "metadata"), "holdout")));
            cJSON_Delete(o);
        }
        cJSON *e = ofrep_ctx(&fx.server, &a, "banner-approval", unit, IN_SEGMENT, 200);
        assert_string_equal(pe_test_json_str(e, "key"), "banner-approval");
        if (strcmp(pe_test_json_str(e, "variant"), "treatment") == 0) {
            treated++;
            assert_string_equal(pe_test_json_str(e, "reason"), "SPLIT");
            assert_true(cJSON_Compare(get(e, "value"), tv, true));
        } else {
            assert_string_equal(pe_test_json_str(e, "variant"), "control");
            assert_string_equal(pe_test_json_str(e, "reason"), "DEFAULT");
            control++;
        }
        cJSON_Delete(e);
    }
    assert_true(treated > 60 && treated < 140); /* ≈ 95 % × 50 % of 200 */
    assert_true(control > 60);
    cJSON_Delete(f);

    /* holdout: treatment weight = rolloutPercentage (90), control the rest, rollout 100 */
    create(&a, "valid/discount_change.json", "discount-approval", id);
    move_ok(&a, id, "{\"to\":\"PENDING_APPROVAL\"}");
    move_ok(&a, id, "{\"to\":\"ACTIVE\"}");
    f = flag(&a, "discount-approval", 200);
    assert_int_equal((int)pe_test_json_num(f, "rolloutPercentage"), 100);
    assert_weights(f, 10, 90);
    assert_int_equal(first_change_value(get(variant_of(f, "treatment"), "value"))->valueint, 15);
    assert_int_equal(first_change_value(get(variant_of(f, "control"), "value"))->valueint, 0);
    cJSON_Delete(f);

    /* immediate, no featureFlagKey: rollout 100, all on treatment, key derived from the id */
    create(&a, "valid/price_change.json", NULL, id);
    move_ok(&a, id, "{\"to\":\"PENDING_APPROVAL\"}");
    /* TEE-001 is not in this store's catalogue: the margin guardrail needs an override */
    move_ok(&a, id, "{\"to\":\"ACTIVE\",\"force\":true,\"confirm\":true}");
    char key[64];
    snprintf(key, sizeof key, "changeset-%s", id);
    f = flag(&a, key, 200);
    assert_int_equal((int)pe_test_json_num(f, "rolloutPercentage"), 100);
    assert_weights(f, 0, 100);
    assert_true(cJSON_IsTrue(get(f, "enabled")));
    cJSON_Delete(f);
    /* its segment: returning customers */
    cJSON *e = ofrep_ctx(&fx.server, &a, key, "someone", "\"customer\":\"returning\"", 200);
    assert_true(strcmp(pe_test_json_str(e, "variant"), "treatment") == 0 ||
                cJSON_IsTrue(get(get(e, "metadata"), "holdout")));
    cJSON_Delete(e);
    e = ofrep_ctx(&fx.server, &a, key, "someone", "\"customer\":\"new\"", 200);
    assert_string_equal(pe_test_json_str(e, "variant"), "control");
    assert_string_equal(pe_test_json_str(e, "reason"), "DEFAULT");
    cJSON_Delete(e);
}

static void test_rollback_disables_within_1s(void **state)
{
    (void)state;
    char id[PE_CHANGESET_ID_LEN];
    create(&a, "valid/shipping_cost_banner.json", "banner-rollback", id);
    move_ok(&a, id, "{\"to\":\"PENDING_APPROVAL\"}");
    move_ok(&a, id, "{\"to\":\"ACTIVE\"}");
    /* the second instance caches the enabled flag first */
    cJSON *e = ofrep_on(&second, &a, "banner-rollback", "visitor-1", 200);
    for (int i = 0;
         i < PE_TEST_WAIT_MS / 50 && strcmp(pe_test_json_str(e, "reason"), "DISABLED") == 0; i++) {
        cJSON_Delete(e);
        usleep(50 * 1000);
        e = ofrep_on(&second, &a, "banner-rollback", "visitor-1", 200);
    }
    assert_string_not_equal(pe_test_json_str(e, "reason"), "DISABLED");
    cJSON_Delete(e);

    cJSON *doc = move(&a, id, "{\"to\":\"ROLLED_BACK\",\"reason\":\"conversion dropped\"}", 200);
    const cJSON *fm = get(get(last_event(doc), "metadata"), "flag");
    assert_string_equal(pe_test_json_str(fm, "key"), "banner-rollback");
    assert_int_equal((int)pe_test_json_num(fm, "version"), 2);
    assert_false(cJSON_IsTrue(get(fm, "enabled")));
    cJSON_Delete(doc);
    int64_t t0 = pe_now_mono_us();
    bool off = false;
    while (!off && pe_now_mono_us() - t0 < 1000000) {
        e = ofrep_on(&second, &a, "banner-rollback", "visitor-1", 200);
        off = strcmp(pe_test_json_str(e, "reason"), "DISABLED") == 0;
        if (off)
            assert_string_equal(pe_test_json_str(e, "variant"), "control");
        cJSON_Delete(e);
        if (!off)
            usleep(20 * 1000);
    }
    if (!off)
        fail_msg("the second instance still serves the rolled-back flag after 1 s");
    e = ofrep_on(&fx.server, &a, "banner-rollback", "visitor-2", 200);
    assert_string_equal(pe_test_json_str(e, "reason"), "DISABLED");
    cJSON_Delete(e);
    cJSON *f = flag(&a, "banner-rollback", 200);
    assert_false(cJSON_IsTrue(get(f, "enabled")));
    cJSON_Delete(f);
}

static void walk_to_proven(const pe_test_tenant_t *t, const char *id, const char *winner)
{
    char body[1024];
    move_ok(t, id, "{\"to\":\"PENDING_APPROVAL\"}");
    move_ok(t, id, "{\"to\":\"ACTIVE\"}");
    move_ok(t, id, "{\"to\":\"MEASURING\",\"actor\":\"autopilot\"}");
    snprintf(body, sizeof body,
             "{\"to\":\"PROVEN\",\"actor\":\"autopilot\"," PROOF_BEFORE_WINNER "%s\"}}", winner);
    move_ok(t, id, body);
}

/* Every unit with the context members attrs (NULL: none) gets variant, with value. */
static void every_unit_gets(const pe_test_tenant_t *t, const char *key, const char *attrs,
                            const char *variant, const cJSON *value)
{
    for (int i = 0; i < 300; i++) {
        char unit[32];
        snprintf(unit, sizeof unit, "unit-%d", i);
        cJSON *e = ofrep_ctx(&fx.server, t, key, unit, attrs, 200);
        if (strcmp(pe_test_json_str(e, "variant"), variant) != 0)
            fail_msg("%s got %s (%s), want %s for everyone", unit, pe_test_json_str(e, "variant"),
                     pe_test_json_str(e, "reason"), variant);
        assert_true(cJSON_Compare(get(e, "value"), value, true));
        cJSON_Delete(e);
    }
}

static void test_permanent_serves_winner(void **state)
{
    (void)state;
    char id[PE_CHANGESET_ID_LEN];
    create(&a, "valid/shipping_cost_banner.json", "banner-permanent", id);
    walk_to_proven(&a, id, "treatment");
    cJSON *before = flag(&a, "banner-permanent", 200);
    cJSON *tv = cJSON_Duplicate(get(variant_of(before, "treatment"), "value"), true);
    cJSON *doc = move(&a, id, "{\"to\":\"PERMANENT\"}", 200);
    const cJSON *fm = get(get(last_event(doc), "metadata"), "flag");
    assert_string_equal(pe_test_json_str(fm, "key"), "banner-permanent");
    assert_string_equal(pe_test_json_str(fm, "variant"), "treatment");
    assert_int_equal((int)pe_test_json_num(fm, "version"), 2);
    cJSON_Delete(doc);
    cJSON *f = flag(&a, "banner-permanent", 200);
    assert_true(cJSON_IsTrue(get(f, "enabled")));
    assert_int_equal((int)pe_test_json_num(f, "rolloutPercentage"), 100);
    /* over a segment: treatment for it (an override), control for the rest (a filter) */
    assert_weights(f, 0, 100);
    assert_string_equal(pe_test_json_str(f, "defaultVariant"), "control");
    assert_int_equal(cJSON_GetArraySize(get(f, "rules")), 2);
    assert_string_equal(pe_test_json_str(cJSON_GetArrayItem(get(f, "rules"), 0), "variant"),
                        "treatment");
    assert_null(get(cJSON_GetArrayItem(get(f, "rules"), 1), "variant"));
    assert_string_equal(pe_test_json_str(f, "salt"),
                        pe_test_json_str(before, "salt")); /* units keep their buckets */
    every_unit_gets(&a, "banner-permanent", IN_SEGMENT, "treatment", tv);
    cJSON *cv = cJSON_Duplicate(get(variant_of(f, "control"), "value"), true);
    every_unit_gets(&a, "banner-permanent", OUT_SEGMENT, "control", cv);
    every_unit_gets(&a, "banner-permanent", NULL, "control", cv);
    cJSON_Delete(cv);
    cJSON_Delete(f);
    cJSON_Delete(before);
    cJSON_Delete(tv);

    /* control can win too: everyone gets the experience of today */
    create(&a, "valid/discount_change.json", "discount-permanent", id);
    walk_to_proven(&a, id, "control");
    before = flag(&a, "discount-permanent", 200);
    cv = cJSON_Duplicate(get(variant_of(before, "control"), "value"), true);
    move_ok(&a, id, "{\"to\":\"PERMANENT\"}");
    every_unit_gets(&a, "discount-permanent", NULL, "control", cv);
    every_unit_gets(&a, "discount-permanent",
                    "\"device\":\"mobile\",\"product_category\":"
                    "\"Sneakers\"",
                    "control", cv);
    cJSON_Delete(before);
    cJSON_Delete(cv);

    /* rolled back, then kept anyway (confirmed): the disabled flag comes back with treatment */
    create(&a, "valid/shipping_cost_banner.json", "banner-kept", id);
    move_ok(&a, id, "{\"to\":\"PENDING_APPROVAL\"}");
    move_ok(&a, id, "{\"to\":\"ACTIVE\"}");
    move_ok(&a, id, "{\"to\":\"ROLLED_BACK\"}");
    before = flag(&a, "banner-kept", 200);
    tv = cJSON_Duplicate(get(variant_of(before, "treatment"), "value"), true);
    move_ok(&a, id, "{\"to\":\"PERMANENT\",\"confirm\":true}");
    every_unit_gets(&a, "banner-kept", IN_SEGMENT, "treatment", tv);
    cJSON_Delete(before);
    cJSON_Delete(tv);
}

static void test_flag_failure_rolls_back_transition(void **state)
{
    (void)state;
    char id[PE_CHANGESET_ID_LEN], path[256], q[512];
    /* the merchant already runs a release flag under the key the plan names */
    snprintf(path, sizeof path, "/api/v1/stores/%s/flags", a.id);
    cJSON_Delete(expect("POST", path,
                        "{\"key\":\"merchant-owned\",\"kind\":\"release\",\"enabled\":true,"
                        "\"variants\":[{\"key\":\"off\",\"value\":false,\"weight\":0},{\"key\":"
                        "\"on\",\"value\":true,\"weight\":100}],\"defaultVariant\":\"off\"}",
                        &a, 201));
    create(&a, "valid/shipping_cost_banner.json", "merchant-owned", id);
    move_ok(&a, id, "{\"to\":\"PENDING_APPROVAL\"}");
    snprintf(q, sizeof q, "SELECT count(*) FROM notification_outbox WHERE changeset_id = '%s'", id);
    char *outbox = pe_test_sql(fx.conninfo, q);
    cJSON *j = move(&a, id, "{\"to\":\"ACTIVE\"}", 409);
    const cJSON *err = get(j, "error");
    assert_string_equal(pe_test_json_str(err, "code"), "flag_conflict");
    if (!strstr(pe_test_json_str(err, "message"), "release flag named 'merchant-owned' exists"))
        fail_msg("409 message does not name the conflict: %s", pe_test_json_str(err, "message"));
    cJSON_Delete(j);
    /* nothing changed: state, version, audit trail, outbox, the merchant's flag */
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s", a.id, id);
    cJSON *doc = expect("GET", path, NULL, &a, 200);
    assert_string_equal(pe_test_json_str(get(doc, "execution"), "status"), "PENDING_APPROVAL");
    assert_string_equal(pe_test_json_str(get(doc, "approval"), "status"), "pending");
    assert_int_equal((int)pe_test_json_num(doc, "version"), 2);
    assert_int_equal(cJSON_GetArraySize(get(doc, "auditTrail")), 2);
    assert_string_equal(pe_test_json_str(last_event(doc), "action"), "submitted");
    cJSON_Delete(doc);
    char *after = pe_test_sql(fx.conninfo, q);
    assert_string_equal(after, outbox);
    free(after);
    free(outbox);
    cJSON *f = flag(&a, "merchant-owned", 200);
    assert_string_equal(pe_test_json_str(f, "kind"), "release");
    assert_int_equal((int)pe_test_json_num(f, "version"), 1);
    cJSON_Delete(f);
    /* and once the merchant's flag is gone, the same approval goes through */
    snprintf(path, sizeof path, "/api/v1/stores/%s/flags/merchant-owned", a.id);
    cJSON_Delete(expect("DELETE", path, NULL, &a, 204));
    move_ok(&a, id, "{\"to\":\"ACTIVE\"}");
    f = flag(&a, "merchant-owned", 200);
    assert_string_equal(pe_test_json_str(f, "kind"), "autopilot");
    cJSON_Delete(f);
}

static void test_tenant_isolation(void **state)
{
    (void)state;
    char id[PE_CHANGESET_ID_LEN], path[256];
    create(&a, "valid/shipping_cost_banner.json", "banner-isolated", id);
    move_ok(&a, id, "{\"to\":\"PENDING_APPROVAL\"}");
    move_ok(&a, id, "{\"to\":\"ACTIVE\"}");
    cJSON_Delete(ofrep_on(&fx.server, &a, "banner-isolated", "visitor-1", 200));
    cJSON *e = ofrep_on(&fx.server, &b, "banner-isolated", "visitor-1", 404);
    assert_string_equal(pe_test_json_str(e, "errorCode"), "FLAG_NOT_FOUND");
    cJSON_Delete(e);
    /* B can neither read A's flag nor roll A's ChangeSet back */
    snprintf(path, sizeof path, "/api/v1/stores/%s/flags/banner-isolated", a.id);
    cJSON_Delete(pe_test_expect(&fx.server, "GET", path, NULL, b.sk_auth, 403));
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s/transitions", b.id, id);
    cJSON_Delete(expect("POST", path, "{\"to\":\"ROLLED_BACK\"}", &b, 404));
    cJSON *f = flag(&a, "banner-isolated", 200);
    assert_true(cJSON_IsTrue(get(f, "enabled")));
    cJSON_Delete(f);
    cJSON_Delete(flag(&b, "banner-isolated", 404));
}

/* ---- setup ------------------------------------------------------------------------------------
 */

static int group_setup(void **state)
{
    (void)state;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    pe_test_tenant_make(&a, fx.pool, "ChangeSet flags A", "Europe/Berlin", "EUR",
                        "flags-a@example.com", PASSWORD);
    pe_test_tenant_make(&b, fx.pool, "ChangeSet flags B", "Europe/Berlin", "EUR",
                        "flags-b@example.com", PASSWORD);
    pe_test_server_start(&fx.server, fx.conninfo, (const char *const[]){"PE_HTTP_THREADS=2", NULL});
    pe_test_server_start(&second, fx.conninfo, (const char *const[]){"PE_HTTP_THREADS=2", NULL});
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = pe_test_server_stop(&second);
    return pe_test_fixture_close(&fx) == 0 && rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_approval_creates_flag),
        cmocka_unit_test(test_rollback_disables_within_1s),
        cmocka_unit_test(test_permanent_serves_winner),
        cmocka_unit_test(test_flag_failure_rolls_back_transition),
        cmocka_unit_test(test_tenant_isolation),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
