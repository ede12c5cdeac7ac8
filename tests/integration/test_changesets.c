/*
 * test_changesets.c — ChangeSets, their lifecycle, guardrails and the audit trail against a real
 * profit-engine child process and a private, migrated database.
 *
 * Invariants the tests hold the server to:
 *  1. A corpus document is a valid POST body as is; a broken one is refused naming the path.
 *  2. Every pair of states is allowed or refused exactly as the lifecycle table says, through
 *     REST, with the current and allowed next states named in the 409.
 *  3. Two approvals of the same version: one wins, the other gets 409.
 *  4. Each guardrail kind blocks approval with a merchant sentence; force needs confirm, and the
 *     block and the override are in the audit trail.
 *  5. audit_events refuses UPDATE, DELETE and TRUNCATE in the database; verify names a row
 *     altered behind the application's back.
 *  6. The CSV export is RFC 4180 with formula cells neutralised.
 *  7. Another store's key gets 403 on every route; another store's ChangeSet id is a 404.
 *  8. An outbox row committed before a crash is delivered after the restart.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pe/api.h"
#include "pe/changeset.h"
#include "pe/tenancy.h"
#include "pe_test.h"

#define PASSWORD "changesets-password-1"

static pe_test_fixture_t fx;
static pe_test_tenant_t a, b, c;

/* ---- helpers -----------------------------------------------------------------------------------
 */

/* pe_test_expect as t's secret key. */
static cJSON *expect(const char *method, const char *path, const char *body,
                     const pe_test_tenant_t *t, long want)
{
    return pe_test_expect(&fx.server, method, path, body, t->sk_auth, want);
}

static const char *err_message(const cJSON *j)
{
    return pe_test_json_str(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
}

static void cs_path(char *out, size_t n, const pe_test_tenant_t *t, const char *id,
                    const char *suffix)
{
    snprintf(out, n, "/api/v1/stores/%s/changesets%s%s%s", t->id, id ? "/" : "", id ? id : "",
             suffix ? suffix : "");
}

/* Creates a ChangeSet from a corpus file for t; returns its id (static buffer rotated). */
static const char *create(const pe_test_tenant_t *t, const char *file)
{
    static char ids[8][PE_CHANGESET_ID_LEN];
    static int next;
    char path[256];
    char *doc = pe_test_corpusf("changesets/%s", file);
    cs_path(path, sizeof path, t, NULL, NULL);
    cJSON *j = expect("POST", path, doc, t, 201);
    free(doc);
    char *id = ids[next++ % 8];
    snprintf(id, PE_CHANGESET_ID_LEN, "%s", pe_test_json_str(j, "id"));
    assert_true(pe_changeset_cuid_valid(id));
    cJSON_Delete(j);
    return id;
}

/* POST a transition; returns the body (caller deletes). */
static cJSON *move(const pe_test_tenant_t *t, const char *id, const char *body, long want)
{
    char path[256];
    cs_path(path, sizeof path, t, id, "/transitions");
    return expect("POST", path, body, t, want);
}

static const char *PROOF =
    "\"proofResult\":{\"outcome\":\"proven\",\"method\":\"cuped\",\"primaryMetric\":"
    "\"checkout_conversion_rate\",\"relativeLift\":0.12,\"confidenceInterval\":[0.04,0.2],"
    "\"pValue\":0.01,\"sampleSize\":9000,\"decidedAt\":\"2026-03-16T10:00:00Z\","
    "\"winningVariant\":\"treatment\"}";

/* Moves a fresh copy of the banner (no guardrail config in store c) to state. */
static const char *walk_to(const pe_test_tenant_t *t, pe_changeset_state_t state)
{
    const char *id = create(t, "valid/shipping_cost_banner.json");
    char body[1024];
    static const char *const path[] = {"PENDING_APPROVAL", "ACTIVE", "MEASURING", "PROVEN",
                                       "PERMANENT"};
    if (state == PE_CS_ARCHIVED) {
        cJSON_Delete(move(t, id, "{\"to\":\"ARCHIVED\"}", 200));
        return id;
    }
    for (int i = 0; i < 5 && state != PE_CS_DRAFT; i++) {
        if (state == PE_CS_ROLLED_BACK && i == 2) {
            cJSON_Delete(move(t, id, "{\"to\":\"ROLLED_BACK\",\"reason\":\"test\"}", 200));
            break;
        }
        snprintf(body, sizeof body, "{\"to\":\"%s\",\"actor\":\"%s\"%s%s}", path[i],
                 i >= 1 && i <= 3 && i != 1 ? "autopilot" : "merchant", i == 3 ? "," : "",
                 i == 3 ? PROOF : "");
        cJSON_Delete(move(t, id, body, 200));
        if (strcmp(path[i], pe_changeset_state_name(state)) == 0)
            break;
    }
    return id;
}

/* ---- tests
 * --------------------------------------------------------------------------------------- */

static void test_create_read_list(void **state)
{
    (void)state;
    char path[256];
    const char *id = create(&a, "valid/discount_change.json");
    cs_path(path, sizeof path, &a, id, NULL);
    cJSON *doc = expect("GET", path, NULL, &a, 200);
    pe_refusal_t verr;
    if (pe_changeset_validate(doc, PE_CHANGESET_FULL, &verr) != 0)
        fail_msg("the stored document does not validate: %s", verr.message);
    assert_string_equal(pe_test_json_str(doc, "storeId"), a.id);
    assert_string_equal(
        pe_test_json_str(cJSON_GetObjectItemCaseSensitive(doc, "execution"), "status"), "DRAFT");
    assert_string_equal(
        pe_test_json_str(cJSON_GetObjectItemCaseSensitive(doc, "approval"), "status"), "pending");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(doc, "version")->valueint, 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "auditTrail")), 1);
    cJSON_Delete(doc);
    create(&a, "valid/price_change.json");
    cs_path(path, sizeof path, &a, NULL, "?limit=1&status=DRAFT");
    cJSON *page = expect("GET", path, NULL, &a, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(page, "changesets")), 1);
    const char *after = pe_test_json_str(page, "nextAfter");
    assert_true(pe_changeset_cuid_valid(after));
    char path2[512];
    snprintf(path2, sizeof path2, "/api/v1/stores/%s/changesets?limit=1&status=DRAFT&after=%s",
             a.id, after);
    cJSON *page2 = expect("GET", path2, NULL, &a, 200);
    assert_string_not_equal(
        pe_test_json_str(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(page, "changesets"), 0), "id"),
        pe_test_json_str(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(page2, "changesets"), 0), "id"));
    cJSON_Delete(page);
    cJSON_Delete(page2);
    cs_path(path, sizeof path, &a, NULL, "?status=LIVE");
    cJSON_Delete(expect("GET", path, NULL, &a, 400));
}

/* ?view=full lists whole documents (as GET has them, minus auditTrail); summaries by default. */
static void test_list_view_full(void **state)
{
    (void)state;
    char path[256];
    const char *id = create(&a, "valid/discount_change.json");
    cs_path(path, sizeof path, &a, NULL, "?limit=1&view=full");
    cJSON *page = expect("GET", path, NULL, &a, 200);
    cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(page, "changesets"), 0);
    assert_string_equal(pe_test_json_str(item, "id"), id);
    cs_path(path, sizeof path, &a, id, NULL);
    cJSON *doc = expect("GET", path, NULL, &a, 200);
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "auditTrail");
    assert_null(cJSON_GetObjectItemCaseSensitive(item, "auditTrail"));
    if (!cJSON_Compare(item, doc, true))
        fail_msg("the full list item differs from the document: %s", cJSON_PrintUnformatted(item));
    cJSON_Delete(doc);
    cJSON_Delete(page);
    cs_path(path, sizeof path, &a, NULL, "?limit=1&view=summary");
    page = expect("GET", path, NULL, &a, 200);
    item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(page, "changesets"), 0);
    assert_null(cJSON_GetObjectItemCaseSensitive(item, "actionPlan"));
    assert_string_equal(pe_test_json_str(item, "status"), "DRAFT");
    cJSON_Delete(page);
    cs_path(path, sizeof path, &a, NULL, "?view=everything");
    cJSON *e = expect("GET", path, NULL, &a, 400);
    assert_int_equal(strncmp(err_message(e), "view:", 5), 0);
    cJSON_Delete(e);
}

static void test_validation_names_path(void **state)
{
    (void)state;
    char path[256];
    char *doc = pe_test_corpus("changesets/invalid/rollout_percentage_150.json");
    cs_path(path, sizeof path, &a, NULL, NULL);
    cJSON *j = expect("POST", path, doc, &a, 400);
    assert_string_equal(err_message(j), "actionPlan.rolloutPercentage: must be 0..100");
    cJSON_Delete(j);
    free(doc);
    doc = pe_test_corpus("changesets/invalid/datapoint_value_string.json");
    j = expect("POST", path, doc, &a, 400);
    assert_string_equal(err_message(j), "hypothesis.dataEvidence[1].value: must be a number");
    cJSON_Delete(j);
    free(doc);
}

/* A corpus document with the number at section.field[.index] (path_in: a NULL-terminated list
 * of keys, a key "[n]" meaning array element n) replaced by raw text: cJSON can hold 1e400 only
 * as inf, so the text is written as is. Caller frees. */
static char *with_raw_number(const char *file, const char *const *path_in, const char *raw)
{
    char *text = pe_test_corpusf("changesets/%s", file), err[128];
    cJSON *doc = NULL;
    assert_int_equal(pe_json_parse(text, strlen(text), &doc, err, sizeof err), 0);
    free(text);
    cJSON *parent = doc;
    size_t i = 0;
    for (; path_in[i + 1]; i++)
        parent = path_in[i][0] == '[' ? cJSON_GetArrayItem(parent, atoi(path_in[i] + 1))
                                      : cJSON_GetObjectItemCaseSensitive(parent, path_in[i]);
    assert_non_null(parent);
    cJSON *value = cJSON_CreateRaw(raw);
    if (path_in[i][0] == '[')
        assert_true(cJSON_ReplaceItemInArray(parent, atoi(path_in[i] + 1), value));
    else
        assert_true(cJSON_ReplaceItemInObjectCaseSensitive(parent, path_in[i], value));
    char *out = pe_json_print(doc);
    cJSON_Delete(doc);
    assert_non_null(out);
    return out;
}

/* cJSON reads 1e400 as inf and would store null: a ChangeSet with such a number, in a create or
 * a patch, is refused naming the field with the one rule of pe/core.h, and nothing is stored. */
static void test_nonfinite_numbers_refused(void **state)
{
    (void)state;
    static const char RULE[] = PE_JSON_NONFINITE_RULE;
    static const struct {
        const char *path[8], *raw, *named;
    } CASES[] = {
        {{"hypothesis", "dataEvidence", "[0]", "value", NULL},
         "1e400",
         "hypothesis.dataEvidence[0].value"},
        {{"actionPlan", "implementation", "changes", "[0]", "after", NULL},
         "-1e400",
         "actionPlan.implementation.changes[0].after"},
        {{"actionPlan", "implementation", "changes", "[0]", "before", NULL},
         "[1,1e400]",
         "actionPlan.implementation.changes[0].before[1]"},
        {{"proofPlan", "significanceThreshold", NULL}, "1e999", "proofPlan.significanceThreshold"},
    };
    char path[256], sql[256], want[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM changesets WHERE store_id = '%s'", c.id);
    char *before = pe_test_sql(fx.conninfo, sql);
    cs_path(path, sizeof path, &c, NULL, NULL);
    for (size_t i = 0; i < PE_ARRAY_LEN(CASES); i++) {
        char *doc = with_raw_number("valid/price_change.json", CASES[i].path, CASES[i].raw);
        cJSON *j = expect("POST", path, doc, &c, 400);
        snprintf(want, sizeof want, "%s: %s", CASES[i].named, RULE);
        assert_string_equal(err_message(j), want);
        assert_string_equal(pe_test_json_str(cJSON_GetObjectItemCaseSensitive(j, "error"), "code"),
                            "out_of_range");
        cJSON_Delete(j);
        free(doc);
    }
    char *after = pe_test_sql(fx.conninfo, sql);
    assert_string_equal(after, before);
    free(after);
    free(before);

    /* a patch: refused, the draft unchanged */
    const char *id = create(&c, "valid/price_change.json");
    cs_path(path, sizeof path, &c, id, NULL);
    cJSON *j = expect("PATCH", path,
                      "{\"version\":1,\"guardrails\":{\"profitFloor\":-1e400,\"sloRequirements\":"
                      "[],\"riskLevel\":\"high\",\"blockedConditions\":[]}}",
                      &c, 400);
    snprintf(want, sizeof want, "guardrails.profitFloor: %s", RULE);
    assert_string_equal(err_message(j), want);
    cJSON_Delete(j);
    j = expect("GET", path, NULL, &c, 200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "version")->valueint, 1);
    cJSON_Delete(j);
}

static void test_every_pair_via_rest(void **state)
{
    (void)state;
    for (int from = 0; from < PE_CS_NSTATES; from++) {
        for (int to = 0; to < PE_CS_NSTATES; to++) {
            const pe_changeset_transition_t *any = pe_changeset_transition_find(from, to, 0);
            const char *id = walk_to(&c, from);
            char body[1024], want[160];
            bool merchant = pe_changeset_transition_find(from, to, PE_CS_BY_MERCHANT) != NULL;
            const char *actor = merchant ? "merchant" : "autopilot";
            snprintf(body, sizeof body, "{\"to\":\"%s\",\"actor\":\"%s\",\"confirm\":true%s%s}",
                     pe_changeset_state_name(to), actor, to == PE_CS_PROVEN ? "," : "",
                     to == PE_CS_PROVEN ? PROOF : "");
            cJSON *j = move(&c, id, body, any ? 200 : 409);
            if (any) {
                assert_string_equal(
                    pe_test_json_str(cJSON_GetObjectItemCaseSensitive(j, "execution"), "status"),
                    pe_changeset_state_name(to));
            } else {
                snprintf(want, sizeof want, "cannot move from %s to %s; allowed next states: ",
                         pe_changeset_state_name(from), pe_changeset_state_name(to));
                if (strncmp(err_message(j), want, strlen(want)) != 0)
                    fail_msg("409 message '%s' does not start with '%s'", err_message(j), want);
            }
            cJSON_Delete(j);
        }
    }
    /* who may trigger: a merchant cannot start the measurement, nor a session claim autopilot */
    const char *id = walk_to(&c, PE_CS_ACTIVE);
    cJSON *j = move(&c, id, "{\"to\":\"MEASURING\"}", 403);
    assert_non_null(strstr(err_message(j), "only system, autopilot may move"));
    cJSON_Delete(j);
    /* ROLLED_BACK -> PERMANENT needs confirm */
    id = walk_to(&c, PE_CS_ROLLED_BACK);
    j = move(&c, id, "{\"to\":\"PERMANENT\"}", 409);
    assert_string_equal(pe_test_json_str(cJSON_GetObjectItemCaseSensitive(j, "error"), "code"),
                        "confirmation_required");
    cJSON_Delete(j);
    cJSON_Delete(move(&c, id, "{\"to\":\"PERMANENT\",\"confirm\":true}", 200));
    /* PROVEN needs a proof */
    id = walk_to(&c, PE_CS_MEASURING);
    cJSON_Delete(move(&c, id, "{\"to\":\"PROVEN\",\"actor\":\"autopilot\"}", 400));
}

typedef struct {
    const char *id;
    long status;
} race_t;

static void *approve(void *arg)
{
    race_t *r = arg;
    char path[256], url[512];
    cs_path(path, sizeof path, &c, r->id, "/transitions");
    snprintf(url, sizeof url, "%s%s", fx.server.base_url, path);
    const char *headers[] = {c.sk_auth, "Content-Type: application/json", "If-Match: \"2\"", NULL};
    pe_test_response_t resp;
    if (pe_test_http("POST", url, "{\"to\":\"ACTIVE\"}", headers, &resp) == 0)
        r->status = resp.status;
    pe_test_response_free(&resp);
    return NULL;
}

static void test_concurrency_and_versions(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        const char *id = walk_to(&c, PE_CS_PENDING_APPROVAL); /* version 2 */
        race_t r1 = {id, 0}, r2 = {id, 0};
        pthread_t t1, t2;
        pthread_create(&t1, NULL, approve, &r1);
        pthread_create(&t2, NULL, approve, &r2);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        assert_true((r1.status == 200 && r2.status == 409) ||
                    (r1.status == 409 && r2.status == 200));
    }
    /* PATCH: needs the version, refuses a stale one, increments it */
    const char *id = create(&c, "valid/price_change.json");
    char path[256];
    cs_path(path, sizeof path, &c, id, NULL);
    cJSON_Delete(expect("PATCH", path, "{\"proofPlan\":{}}", &c, 428));
    cJSON *j = expect("PATCH", path,
                      "{\"version\":1,\"guardrails\":{\"profitFloor\":30,\"sloRequirements\":[],"
                      "\"riskLevel\":\"high\",\"blockedConditions\":[]}}",
                      &c, 200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "version")->valueint, 2);
    cJSON_Delete(j);
    j = expect("PATCH", path, "{\"version\":1,\"hypothesis\":{}}", &c, 409);
    assert_non_null(strstr(err_message(j), "version 1 is stale"));
    cJSON_Delete(j);
    j = expect("PATCH", path, "{\"version\":2,\"guardrails\":{\"profitFloor\":300}}", &c, 400);
    assert_non_null(strstr(err_message(j), "guardrails."));
    cJSON_Delete(j);
    j = move(&c, id, "{\"to\":\"PENDING_APPROVAL\",\"version\":1}", 409);
    assert_string_equal(pe_test_json_str(cJSON_GetObjectItemCaseSensitive(j, "error"), "code"),
                        "stale_version");
    cJSON_Delete(j);
}

static void test_expiry(void **state)
{
    (void)state;
    const char *id = walk_to(&c, PE_CS_PENDING_APPROVAL);
    free(pe_test_sqlf(
        fx.conninfo,
        "UPDATE changesets SET expires_at = now() - interval '1 second' WHERE id = '%s'", id));
    pe_changeset_config_t cfg = {.db = fx.pool};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
    size_t n = 0;
    assert_int_equal(pe_changeset_expire_due(svc, NULL, &n), 0);
    assert_int_equal(n, 1);
    pe_changeset_service_free(svc);
    char path[256];
    cs_path(path, sizeof path, &c, id, "/timeline");
    cJSON *t = expect("GET", path, NULL, &c, 200);
    assert_string_equal(pe_test_json_str(t, "status"), "ARCHIVED");
    cJSON *events = cJSON_GetObjectItemCaseSensitive(t, "events");
    const cJSON *last = cJSON_GetArrayItem(events, cJSON_GetArraySize(events) - 1);
    assert_string_equal(pe_test_json_str(last, "action"), "expired");
    assert_string_equal(pe_test_json_str(cJSON_GetObjectItemCaseSensitive(last, "actor"), "type"),
                        "system");
    cJSON_Delete(t);
    cs_path(path, sizeof path, &c, id, NULL);
    cJSON *doc = expect("GET", path, NULL, &c, 200);
    assert_string_equal(
        pe_test_json_str(cJSON_GetObjectItemCaseSensitive(doc, "approval"), "status"), "expired");
    cJSON_Delete(doc);
}

static bool has_message(const cJSON *violations, const char *needle)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, violations)
    {
        if (strstr(pe_test_json_str(v, "message"), needle))
            return true;
    }
    return false;
}

static void test_guardrails(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/guardrails", b.id);
    cJSON *j = expect("GET", path, NULL, &b, 200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "version")->valueint, 0);
    cJSON_Delete(j);
    j = expect("PUT", path, "{\"categoryMinMarginPct\":{\"Shoes\":120}}", &b, 400);
    assert_string_equal(err_message(j), "categoryMinMarginPct.Shoes: must be 0..100");
    cJSON_Delete(j);
    cJSON_Delete(expect("PUT", path,
                        "{\"minMarginPct\":20,\"categoryMinMarginPct\":{\"Sneakers\":30},"
                        "\"maxDiscountPct\":10,\"minStockUnits\":5,"
                        "\"excludedCategories\":[\"Gift cards\"],\"sloGates\":[{"
                        "\"metric\":\"checkout_error_rate\",\"operator\":\"lte\","
                        "\"threshold\":0.01}]}",
                        &b, 200));
    char products[1024];
    snprintf(products, sizeof products, "/api/v1/stores/%s/products", b.id);
    cJSON_Delete(expect(
        "PUT", products,
        "{\"products\":[{\"sku\":\"TEE-001\",\"name\":\"Everyday Tee\",\"category\":\"Tees\","
        "\"price\":29,\"cost\":22,\"stock\":100},{\"sku\":\"SNK-1\",\"name\":\"Runner\","
        "\"category\":\"Sneakers\",\"price\":100,\"cost\":60,\"stock\":3}]}",
        &b, 200));

    /* price: margin below the global threshold */
    const char *id = create(&b, "valid/price_change.json");
    cJSON_Delete(move(&b, id, "{\"to\":\"PENDING_APPROVAL\"}", 200));
    j = move(&b, id, "{\"to\":\"ACTIVE\"}", 409);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_string_equal(pe_test_json_str(e, "code"), "guardrail_violation");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "violations");
    assert_true(has_message(v, "This would reduce margin on TEE-001 below threshold "
                               "(12.0% < 20.0%)"));
    assert_true(has_message(v, "The SLO check on checkout_error_rate allows 0.02"));
    cJSON_Delete(j);
    /* force without confirm is still blocked; with confirm it passes and is logged */
    cJSON_Delete(move(&b, id, "{\"to\":\"ACTIVE\",\"force\":true}", 409));
    cJSON_Delete(move(&b, id,
                      "{\"to\":\"ACTIVE\",\"force\":true,\"confirm\":true,"
                      "\"reason\":\"clearance\"}",
                      200));
    cs_path(path, sizeof path, &b, id, "/timeline");
    j = expect("GET", path, NULL, &b, 200);
    int blocked = 0, overridden = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(j, "events"))
    {
        blocked += strcmp(pe_test_json_str(ev, "action"), "guardrail_blocked") == 0;
        overridden += strcmp(pe_test_json_str(ev, "action"), "guardrail_overridden") == 0;
    }
    assert_int_equal(blocked, 2);
    assert_int_equal(overridden, 1);
    cJSON_Delete(j);

    /* discount: max discount, category margin, stock */
    id = create(&b, "valid/discount_change.json");
    cJSON_Delete(move(&b, id, "{\"to\":\"PENDING_APPROVAL\"}", 200));
    j = move(&b, id, "{\"to\":\"ACTIVE\"}", 409);
    v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"),
                                         "violations");
    assert_true(has_message(v, "A 15.0% discount exceeds the maximum discount of 10.0%"));
    assert_true(has_message(v, "This would reduce margin on SNK-1 below threshold "
                               "(29.4% < 30.0%)"));
    assert_true(has_message(v, "SNK-1 has 3 units in stock, below the minimum of 10"));
    cJSON_Delete(j);

    /* excluded category */
    char *doc = pe_test_corpus("changesets/valid/discount_change.json");
    char *at = strstr(doc, "\"Sneakers\"\n");
    assert_non_null(at);
    cJSON *d = cJSON_Parse(doc);
    free(doc);
    cJSON *scope = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(
            cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "actionPlan"),
                                                 "implementation"),
                "changes"),
            0),
        "scope");
    cJSON_ReplaceItemInObjectCaseSensitive(scope, "category", cJSON_CreateString("Gift cards"));
    char *text = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    cs_path(path, sizeof path, &b, NULL, NULL);
    j = expect("POST", path, text, &b, 201);
    free(text);
    char gid[PE_CHANGESET_ID_LEN];
    snprintf(gid, sizeof gid, "%s", pe_test_json_str(j, "id"));
    cJSON_Delete(j);
    cJSON_Delete(move(&b, gid, "{\"to\":\"PENDING_APPROVAL\"}", 200));
    j = move(&b, gid, "{\"to\":\"ACTIVE\"}", 409);
    v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"),
                                         "violations");
    assert_true(has_message(v, "Category 'Gift cards' is excluded from automation"));
    cJSON_Delete(j);
    /* a rollback is never blocked by guardrails */
    cJSON_Delete(move(&b, gid, "{\"to\":\"ARCHIVED\"}", 200));
}

static int exec_raw(const char *q)
{
    pe_db_conn_t *conn = NULL;
    assert_int_equal(pe_db_acquire(fx.pool, 5000, &conn), 0);
    int rc = pe_db_exec(conn, q, 0, NULL, NULL);
    pe_db_release(fx.pool, conn);
    return rc;
}

static void test_audit_immutable_and_verify(void **state)
{
    (void)state;
    walk_to(&a, PE_CS_PROVEN);
    assert_int_equal(exec_raw("UPDATE audit_events SET reason = 'x'"), PE_EFORBIDDEN);
    assert_int_equal(exec_raw("DELETE FROM audit_events"), PE_EFORBIDDEN);
    assert_int_equal(exec_raw("TRUNCATE audit_events"), PE_EFORBIDDEN);
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/audit/verify", a.id);
    cJSON *j = expect("GET", path, NULL, &a, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok")));
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "checked")->valueint >= 6);
    cJSON_Delete(j);

    /* tenant d: altered behind the application's back (replica role skips triggers) */
    const char *id = walk_to(&c, PE_CS_MEASURING);
    char *victim = pe_test_sqlf(
        fx.conninfo, "SELECT id FROM audit_events WHERE changeset_id = '%s' AND seq = 3", id);
    pe_db_conn_t *conn = NULL;
    assert_int_equal(pe_db_acquire(fx.pool, 5000, &conn), 0);
    assert_int_equal(pe_db_exec(conn, "SET session_replication_role = replica", 0, NULL, NULL), 0);
    const char *params[] = {victim};
    assert_int_equal(pe_db_exec(conn,
                                "UPDATE audit_events SET reason = 'nothing to see' "
                                "WHERE id = $1",
                                1, params, NULL),
                     0);
    assert_int_equal(pe_db_exec(conn, "RESET session_replication_role", 0, NULL, NULL), 0);
    pe_db_release(fx.pool, conn);
    snprintf(path, sizeof path, "/api/v1/stores/%s/audit/verify", c.id);
    j = expect("GET", path, NULL, &c, 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "ok")));
    const cJSON *br = cJSON_GetObjectItemCaseSensitive(j, "firstBroken");
    assert_string_equal(pe_test_json_str(br, "eventId"), victim);
    assert_string_equal(pe_test_json_str(br, "changesetId"), id);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(br, "seq")->valueint, 3);
    cJSON_Delete(j);
    /* the command line names it too (exit 1) */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "PE_DATABASE_URL='%s' %s audit verify --store %s", fx.conninfo,
             getenv("PE_TEST_BINARY"), c.id);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_non_null(strstr(out, victim));
    snprintf(cmd, sizeof cmd, "PE_DATABASE_URL='%s' %s audit verify --store %s >/dev/null",
             fx.conninfo, getenv("PE_TEST_BINARY"), a.id);
    assert_int_equal(WEXITSTATUS(system(cmd)), 0);
    free(victim);
}

static void test_export_csv(void **state)
{
    (void)state;
    const char *id = create(&a, "valid/price_change.json");
    /* a reason with a control character is refused like any other ChangeSet text */
    cJSON *refused = move(&a, id, "{\"to\":\"ARCHIVED\",\"reason\":\"a\\u0007b\"}", 400);
    assert_string_equal(pe_test_json_str(cJSON_GetObjectItem(refused, "error"), "code"),
                        "invalid_format");
    cJSON_Delete(refused);
    cJSON_Delete(
        move(&a, id, "{\"to\":\"ARCHIVED\",\"reason\":\"=cmd|' /C calc'!A0, \\\"q\\\"\"}", 200));
    char path[512];
    snprintf(path, sizeof path, "/api/v1/stores/%s/audit/export?format=csv", a.id);
    pe_test_response_t r;
    assert_int_equal(pe_test_call(&fx.server, "GET", path, NULL, a.sk_auth, &r), 200);
    char ct[128];
    pe_test_response_header(&r, "Content-Type", ct, sizeof ct);
    assert_non_null(strstr(ct, "text/csv"));
    assert_true(strncmp(r.body.data, "id,changesetId,storeId,seq,timestamp,", 36) == 0);
    assert_non_null(strstr(r.body.data, "\r\n"));
    assert_non_null(strstr(r.body.data, ",\"'=cmd|' /C calc'!A0, \"\"q\"\"\","));
    assert_null(strstr(r.body.data, ",=cmd"));
    pe_test_response_free(&r);
    /* JSON lines, and a window that ends before everything: only the header */
    snprintf(path, sizeof path, "/api/v1/stores/%s/audit/export?format=json", a.id);
    assert_int_equal(pe_test_call(&fx.server, "GET", path, NULL, a.sk_auth, &r), 200);
    char *line = strtok(r.body.data, "\n");
    int lines = 0;
    for (; line; line = strtok(NULL, "\n"), lines++) {
        cJSON *e = cJSON_Parse(line);
        assert_non_null(e);
        assert_string_equal(pe_test_json_str(e, "storeId"), a.id);
        cJSON_Delete(e);
    }
    assert_true(lines >= 8);
    pe_test_response_free(&r);
    snprintf(path, sizeof path,
             "/api/v1/stores/%s/audit/export?format=csv&from=2000-01-01T00:00:00Z"
             "&to=2000-02-01T00:00:00Z",
             a.id);
    assert_int_equal(pe_test_call(&fx.server, "GET", path, NULL, a.sk_auth, &r), 200);
    assert_int_equal(r.body.len, strlen("id,changesetId,storeId,seq,timestamp,actorType,actorId,"
                                        "action,previousState,newState,reason,metadata,hash,"
                                        "previousHash\r\n"));
    pe_test_response_free(&r);
    snprintf(path, sizeof path, "/api/v1/stores/%s/audit/export?format=xml", a.id);
    assert_int_equal(pe_test_call(&fx.server, "GET", path, NULL, a.sk_auth, &r), 400);
    pe_test_response_free(&r);
}

/* POST …/guardrails/preview: every ChangeSet waiting for a decision checked against the stored
 * and the proposed configuration, before anything is saved. */
static void test_guardrails_preview(void **state)
{
    (void)state;
    pe_test_tenant_t d;
    pe_test_tenant_make(&d, fx.pool, "ChangeSets D", "Europe/Berlin", "EUR", NULL, NULL);
    char path[256], guard[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/products", d.id);
    cJSON_Delete(expect("PUT", path,
                        "{\"products\":[{\"sku\":\"TEE-001\",\"name\":\"Everyday Tee\","
                        "\"category\":\"Tees\",\"price\":29,\"cost\":15,\"stock\":100}]}",
                        &d, 200));
    const char *waiting = create(&d, "valid/price_change.json"); /* TEE-001 at 25: 40 % margin */
    cJSON_Delete(move(&d, waiting, "{\"to\":\"PENDING_APPROVAL\"}", 200));
    const char *draft = create(&d, "valid/price_change.json");
    const char *live = create(&d, "valid/price_change.json");
    cJSON_Delete(move(&d, live, "{\"to\":\"PENDING_APPROVAL\"}", 200));
    cJSON_Delete(move(&d, live, "{\"to\":\"ACTIVE\"}", 200)); /* above its own 15 % floor */
    snprintf(guard, sizeof guard, "/api/v1/stores/%s/guardrails", d.id);
    snprintf(path, sizeof path, "/api/v1/stores/%s/guardrails/preview", d.id);

    /* a 50 % floor would block both open ones, not the live one, and stores nothing */
    cJSON *j = expect("POST", path, "{\"minMarginPct\":50}", &d, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "valid")));
    assert_int_equal((int)pe_test_json_num(j, "newlyBlocked"), 2);
    assert_int_equal((int)pe_test_json_num(j, "noLongerBlocked"), 0);
    assert_int_equal(
        (int)pe_test_json_num(cJSON_GetObjectItemCaseSensitive(j, "guardrails"), "minMarginPct"),
        50);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "changesets"), *it;
    assert_int_equal(cJSON_GetArraySize(items), 2);
    int seen = 0;
    cJSON_ArrayForEach(it, items)
    {
        const char *id = pe_test_json_str(it, "id");
        assert_true(strcmp(id, waiting) == 0 || strcmp(id, draft) == 0);
        assert_string_equal(pe_test_json_str(it, "status"),
                            strcmp(id, waiting) == 0 ? "PENDING_APPROVAL" : "DRAFT");
        assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "blockedNow")));
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "blockedAfter")));
        assert_true(has_message(cJSON_GetObjectItemCaseSensitive(it, "violations"),
                                "This would reduce margin on TEE-001 below threshold "
                                "(40.0% < 50.0%)"));
        seen++;
    }
    assert_int_equal(seen, 2);
    cJSON_Delete(j);
    j = expect("GET", guard, NULL, &d, 200);
    assert_int_equal((int)pe_test_json_num(j, "version"), 0);
    cJSON_Delete(j);

    /* stored at 50, a 10 % floor frees them again */
    cJSON_Delete(expect("PUT", guard, "{\"minMarginPct\":50}", &d, 200));
    j = expect("POST", path, "{\"minMarginPct\":10}", &d, 200);
    assert_int_equal((int)pe_test_json_num(j, "newlyBlocked"), 0);
    assert_int_equal((int)pe_test_json_num(j, "noLongerBlocked"), 2);
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "changesets"))
    {
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "blockedNow")));
        assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "blockedAfter")));
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(it, "violations")), 0);
    }
    cJSON_Delete(j);

    /* a bad configuration: the verdict says why in PUT's words, and nothing changes */
    j = expect("POST", path, "{\"categoryMinMarginPct\":{\"Tees\":120}}", &d, 200);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "valid")));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "changesets"));
    assert_string_equal(err_message(j), "categoryMinMarginPct.Tees: must be 0..100");
    cJSON_Delete(j);
    j = expect("POST", path, "[1]", &d, 200);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "valid")));
    cJSON_Delete(j);
    cJSON_Delete(expect("POST", path, "{\"minMarginPct\":", &d, 400)); /* not JSON */
    j = expect("GET", guard, NULL, &d, 200);
    assert_int_equal((int)pe_test_json_num(j, "version"), 1);
    assert_int_equal((int)pe_test_json_num(j, "minMarginPct"), 50);
    cJSON_Delete(j);
}

static void test_tenant_isolation(void **state)
{
    (void)state;
    const char *id = create(&a, "valid/price_change.json");
    static const char *const routes[][2] = {
        {"GET", "/changesets"},
        {"POST", "/changesets"},
        {"GET", "/changesets/%s"},
        {"PATCH", "/changesets/%s"},
        {"POST", "/changesets/%s/transitions"},
        {"GET", "/changesets/%s/timeline"},
        {"GET", "/guardrails"},
        {"PUT", "/guardrails"},
        {"POST", "/guardrails/preview"},
        {"GET", "/audit/verify"},
        {"GET", "/audit/export"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(routes); i++) {
        char sub[128], path[512];
        const char *hole = strstr(routes[i][1], "%s");
        if (hole)
            snprintf(sub, sizeof sub, "%.*s%s%s", (int)(hole - routes[i][1]), routes[i][1], id,
                     hole + 2);
        else
            snprintf(sub, sizeof sub, "%s", routes[i][1]);
        snprintf(path, sizeof path, "/api/v1/stores/%s%s", a.id, sub);
        pe_test_response_t r;
        bool get = strcmp(routes[i][0], "GET") == 0;
        pe_test_call(&fx.server, routes[i][0], path,
                     get ? NULL : "{\"to\":\"ARCHIVED\",\"version\":1}", b.sk_auth, &r);
        if (r.status != 403)
            fail_msg("%s %s with another store's key: %ld", routes[i][0], path, r.status);
        pe_test_response_free(&r);
        /* the publishable key of the store itself is refused too */
        char pk[160];
        snprintf(pk, sizeof pk, "Authorization: Bearer %s", a.pk);
        pe_test_call(&fx.server, routes[i][0], path, get ? NULL : "{}", pk, &r);
        assert_true(r.status == 401 || r.status == 403);
        pe_test_response_free(&r);
    }
    /* b asking for a's ChangeSet through its own store: not found */
    char path[256];
    cs_path(path, sizeof path, &b, id, NULL);
    cJSON_Delete(expect("GET", path, NULL, &b, 404));
    cJSON_Delete(move(&b, id, "{\"to\":\"ARCHIVED\"}", 404));
    cs_path(path, sizeof path, &a, id, NULL);
    cJSON *doc = expect("GET", path, NULL, &a, 200);
    assert_string_equal(
        pe_test_json_str(cJSON_GetObjectItemCaseSensitive(doc, "execution"), "status"), "DRAFT");
    cJSON_Delete(doc);
}

static void test_schema_served(void **state)
{
    (void)state;
    pe_test_response_t r;
    assert_int_equal(pe_test_call(&fx.server, "GET", "/schemas/changeset.json", NULL, NULL, &r),
                     200);
    cJSON *s = pe_test_response_json(&r);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "$defs"),
                                                     "ProofResult"));
    cJSON_Delete(s);
    pe_test_response_free(&r);
}

static void test_outbox_survives_crash(void **state)
{
    (void)state;
    /* notifications flow while the server runs */
    const char *id = walk_to(&a, PE_CS_PENDING_APPROVAL);
    char q[256];
    snprintf(q, sizeof q, "SELECT count(*) FROM notifications WHERE changeset_id = '%s'", id);
    if (!pe_test_sql_wait(fx.conninfo, q, "2", PE_TEST_WAIT_MS))
        fail_msg("the two notifications of %s were not delivered (log: %s)", id,
                 fx.server.log_path);
    /* a server whose dispatcher will not run before it is killed */
    pe_test_server_stop(&fx.server);
    pe_test_server_start(
        &fx.server, fx.conninfo,
        (const char *const[]){"PE_HTTP_THREADS=2", "PE_NOTIFY_INTERVAL_S=86400", NULL});
    cJSON_Delete(move(&a, id, "{\"to\":\"ACTIVE\",\"force\":true,\"confirm\":true}", 200));
    kill(fx.server.pid, SIGKILL);
    waitpid(fx.server.pid, NULL, 0);
    char *pending =
        pe_test_sqlf(fx.conninfo,
                     "SELECT count(*) FROM notification_outbox WHERE changeset_id = '%s'"
                     " AND delivered_at IS NULL",
                     id);
    assert_string_equal(pending, "1");
    free(pending);
    pe_test_server_start(
        &fx.server, fx.conninfo,
        (const char *const[]){"PE_HTTP_THREADS=2", "PE_NOTIFY_INTERVAL_S=1", NULL});
    if (!pe_test_sql_wait(fx.conninfo, q, "3", PE_TEST_WAIT_MS))
        fail_msg("the notification committed before the crash was never delivered (log: %s)",
                 fx.server.log_path);
}

/* ---- setup
 * --------------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    pe_test_tenant_make(&a, fx.pool, "ChangeSets A", "Europe/Berlin", "EUR", "a@example.com",
                        PASSWORD);
    pe_test_tenant_make(&b, fx.pool, "ChangeSets B", "Europe/Berlin", "EUR", "b@example.com",
                        PASSWORD);
    pe_test_tenant_make(&c, fx.pool, "ChangeSets C", "Europe/Berlin", "EUR", "c@example.com",
                        PASSWORD);
    pe_test_server_start(
        &fx.server, fx.conninfo,
        (const char *const[]){"PE_HTTP_THREADS=2", "PE_NOTIFY_INTERVAL_S=1", NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_read_list),
        cmocka_unit_test(test_list_view_full),
        cmocka_unit_test(test_validation_names_path),
        cmocka_unit_test(test_nonfinite_numbers_refused),
        cmocka_unit_test(test_every_pair_via_rest),
        cmocka_unit_test(test_concurrency_and_versions),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_guardrails),
        cmocka_unit_test(test_guardrails_preview),
        cmocka_unit_test(test_audit_immutable_and_verify),
        cmocka_unit_test(test_export_csv),
        cmocka_unit_test(test_tenant_isolation),
        cmocka_unit_test(test_schema_served),
        cmocka_unit_test(test_outbox_survives_crash),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
