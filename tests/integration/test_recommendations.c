/*
 * test_recommendations.c — recommendations end to end: simulated stores with planted problems,
 * `profit-engine diagnose`, then `profit-engine recommend` and the API, on a private migrated
 * database and a child server (PE_JOBS=none; the job is called in-process at a fixed "now").
 *
 * Invariants the tests hold the recommender to:
 *  1. Ground truth: on a store with one planted problem (mobile shipping), the first active
 *     recommendation addresses the first finding's step and segment; on a store with six planted
 *     problems, at most PE_DOCTOR_MAX_ACTIVE are active, at most one per finding, the rest queued
 *     (their ChangeSets drafts), and the active ones are the best by priority.
 *  2. Every generated ChangeSet validates against the contract (pe_changeset_validate, FULL, as
 *     stored) and stands where its recommendation says: PENDING_APPROVAL when shown (active,
 *     blocked), DRAFT when queued; a second generation from the same run proposes nothing.
 *  3. Approving (one call, a merchant session with its CSRF token) moves the ChangeSet to ACTIVE
 *     through the lifecycle and turns its flag on for the finding's segment only: OFREP gives
 *     mobile units the treatment about half the time (the 50/50 split less the store holdout)
 *     and every desktop unit control with reason DEFAULT (not in the experiment).
 *  4. Rejecting an active one archives its ChangeSet (rejected) and promotes the best queued one
 *     of another finding into the free slot; the same playbook × finding is not proposed again
 *     by the next generation.
 *  5. Guardrails: on a store whose margin floor is above what a discount leaves, every discount
 *     recommendation is blocked, carries the guardrail's sentence naming the SKU, takes no active
 *     slot, and is approved only with force + confirm.
 *  6. A recommendation whose finding is gone from the latest run is retired (its ChangeSet
 *     archived, the reason said); an approved one runs on.
 *  8. An extension's playbook (pe_doctor_recommender_config_t.playbooks) is used like a
 *     built-in; one that repeats a key or fails the check is refused.
 *  7. The tenant wall: another store's key or session gets 404 for a recommendation and 404 for
 *     approving it, its list is its own; a publishable key is refused; bad input is a 4xx naming
 *     the field; the job generates once per diagnostic run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/changeset.h"
#include "pe/db.h"
#include "pe/doctor.h"
#include "pe_test.h"

#define END     "2026-11-29"
#define FROM    "2026-11-02"
#define DAYS    "28"
#define PER_DAY "300"

static pe_test_fixture_t fx;
static pe_test_tenant_t a, b, c;

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static cJSON *cli(int want, const char *const *args)
{
    return pe_test_cli_json(fx.conninfo, want, args);
}

static void diagnose(const pe_test_tenant_t *t)
{
    const char *args[] = {"diagnose", "--store", t->id, "--from", FROM, "--to", END, NULL};
    cJSON_Delete(cli(0, args));
}

static cJSON *recommend(const pe_test_tenant_t *t)
{
    const char *args[] = {"recommend", "--store", t->id, NULL};
    return cli(0, args);
}

static cJSON *expect(const char *method, const char *path, const char *body,
                     const pe_test_tenant_t *t, long want)
{
    return pe_test_expect(&fx.server, method, path, body, t->sk_auth, want);
}

/* The store's recommendations with the statuses given ("active,blocked", …). */
static cJSON *list(const pe_test_tenant_t *t, const char *status)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations%s%s", t->id,
             status ? "?status=" : "", status ? status : "");
    return expect("GET", path, NULL, t, 200);
}

static int count_status(const pe_test_tenant_t *t, const char *status)
{
    cJSON *l = list(t, status);
    int n = cJSON_GetArraySize(get(l, "recommendations"));
    cJSON_Delete(l);
    return n;
}

static cJSON *changeset(const pe_test_tenant_t *t, const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s", t->id, id);
    return expect("GET", path, NULL, t, 200);
}

/* Every recommendation of the list: its ChangeSet is valid as stored and in the state its
 * status implies; at most one active per finding (invariants 1, 2). */
static void check_consistent(const pe_test_tenant_t *t)
{
    cJSON *l = list(t, "active,queued,blocked");
    const cJSON *r;
    int active = 0;
    char seen[PE_DOCTOR_MAX_ACTIVE][PE_DOCTOR_TEXT_MAX];
    cJSON_ArrayForEach(r, get(l, "recommendations"))
    {
        const char *status = pe_test_json_str(r, "status");
        cJSON *cs = changeset(t, pe_test_json_str(r, "changesetId"));
        cJSON_DeleteItemFromObjectCaseSensitive(cs, "auditTrail");
        cJSON_AddItemToObject(cs, "auditTrail", cJSON_CreateArray());
        pe_refusal_t err = {"", ""};
        if (pe_changeset_validate(cs, PE_CHANGESET_FULL, &err) != 0)
            fail_msg("%s: %s", pe_test_json_str(r, "title"), err.message);
        const char *want = strcmp(status, "queued") == 0 ? "DRAFT" : "PENDING_APPROVAL";
        assert_string_equal(pe_test_json_str(get(cs, "execution"), "status"), want);
        cJSON_Delete(cs);
        if (strcmp(status, "active") == 0) {
            char key[PE_DOCTOR_TEXT_MAX];
            char *seg = cJSON_PrintUnformatted(get(r, "segment"));
            snprintf(key, sizeof key, "%s:%s", pe_test_json_str(r, "step"), seg);
            free(seg);
            for (int i = 0; i < active; i++)
                if (strcmp(seen[i], key) == 0)
                    fail_msg("two active recommendations for %s", key);
            assert_true(active < PE_DOCTOR_MAX_ACTIVE);
            snprintf(seen[active++], sizeof seen[0], "%s", key);
        }
        assert_int_equal(cJSON_GetArraySize(get(r, "violations")) > 0,
                         strcmp(status, "blocked") == 0);
    }
    cJSON_Delete(l);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_first_recommendation_answers_first_finding(void **state)
{
    (void)state;
    cJSON *out = recommend(&a);
    const cJSON *recs = get(out, "recommendations");
    assert_true(pe_test_json_num(out, "generated") >= 2);
    const cJSON *first = cJSON_GetArrayItem(recs, 0);
    assert_non_null(first);
    assert_string_equal(pe_test_json_str(first, "status"), "active");
    assert_int_equal((int)pe_test_json_num(first, "rank"), 1);
    /* the first finding: the planted one */
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/findings", a.id);
    cJSON *run = expect("GET", path, NULL, &a, 200);
    const cJSON *f = cJSON_GetArrayItem(get(run, "findings"), 0);
    assert_string_equal(pe_test_json_str(f, "step"), "shipping");
    assert_string_equal(pe_test_json_str(get(f, "segment"), "device"), "mobile");
    assert_string_equal(pe_test_json_str(first, "step"), pe_test_json_str(f, "step"));
    assert_true(cJSON_Compare(get(first, "segment"), get(f, "segment"), true));
    assert_string_equal(pe_test_json_str(first, "findingId"), pe_test_json_str(f, "id"));
    char first_id[64], old_finding[64];
    snprintf(first_id, sizeof first_id, "%s", pe_test_json_str(first, "id"));
    snprintf(old_finding, sizeof old_finding, "%s", pe_test_json_str(f, "id"));
    /* what a card needs */
    assert_true(pe_test_json_num(get(get(first, "expectedImpactPerMonth"), "profit"), "high") > 0);
    assert_true(pe_test_json_num(get(first, "expectedUplift"), "low") > 0);
    assert_true(strlen(pe_test_json_str(get(first, "learnMore"), "source")) > 10);
    assert_true(strlen(pe_test_json_str(get(first, "learnMore"), "rollback")) > 10);
    assert_int_equal(cJSON_GetArraySize(get(first, "violations")), 0);
    /* its ChangeSet targets mobile visitors, with the finding's evidence */
    cJSON *cs = changeset(&a, pe_test_json_str(first, "changesetId"));
    const cJSON *rule =
        cJSON_GetArrayItem(get(get(get(cs, "actionPlan"), "targetSegment"), "rules"), 0);
    assert_string_equal(pe_test_json_str(rule, "attribute"), "device.type");
    assert_string_equal(pe_test_json_str(rule, "value"), "mobile");
    assert_true(
        cJSON_Compare(get(get(cs, "hypothesis"), "dataEvidence"), get(f, "evidence"), true));
    assert_string_equal(pe_test_json_str(get(cs, "approval"), "status"), "pending");
    cJSON_Delete(cs);
    cJSON_Delete(out);
    check_consistent(&a);
    /* the same run again: nothing new */
    out = recommend(&a);
    assert_int_equal((int)pe_test_json_num(out, "generated"), 0);
    cJSON_Delete(out);
    /* a new doctor run finds the same problem under a new id: the recommendation points at it */
    cJSON_Delete(run);
    diagnose(&a);
    out = recommend(&a);
    assert_int_equal((int)pe_test_json_num(out, "generated"), 0);
    cJSON_Delete(out);
    run = expect("GET", path, NULL, &a, 200);
    f = cJSON_GetArrayItem(get(run, "findings"), 0);
    assert_string_not_equal(pe_test_json_str(f, "id"), old_finding);
    cJSON *l = list(&a, "active");
    const cJSON *r;
    const char *points_at = NULL;
    cJSON_ArrayForEach(r, get(l, "recommendations"))
    {
        if (strcmp(pe_test_json_str(r, "id"), first_id) == 0)
            points_at = pe_test_json_str(r, "findingId");
    }
    assert_non_null(points_at);
    assert_string_equal(points_at, pe_test_json_str(f, "id"));
    cJSON_Delete(l);
    cJSON_Delete(run);
}

static void test_approve_reaches_the_segment_only(void **state)
{
    (void)state;
    pe_test_tenant_sign_in(&a, &fx.server, NULL);
    cJSON *l = list(&a, "active");
    const cJSON *first = cJSON_GetArrayItem(get(l, "recommendations"), 0);
    char path[256], id[64];
    snprintf(id, sizeof id, "%s", pe_test_json_str(first, "id"));
    cJSON_Delete(l);
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations/%s/approve", a.id, id);
    /* a session without its CSRF token is refused and changes nothing */
    pe_test_response_t r;
    const char *no_csrf[] = {"Content-Type: application/json", a.cookie, NULL};
    char url[512];
    snprintf(url, sizeof url, "%s%s", fx.server.base_url, path);
    assert_int_equal(pe_test_http("POST", url, "{}", no_csrf, &r), 0);
    pe_test_expect_error(&r, 403, "csrf_token_invalid", NULL, 0);
    pe_test_response_free(&r);
    const char *with_csrf[] = {"Content-Type: application/json", a.cookie, a.csrf, NULL};
    assert_int_equal(pe_test_http("POST", url, "{}", with_csrf, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *ans = pe_test_response_json(&r);
    pe_test_response_free(&r);
    assert_string_equal(pe_test_json_str(get(ans, "recommendation"), "status"), "approved");
    const cJSON *cs = get(ans, "changeset");
    assert_string_equal(pe_test_json_str(get(cs, "execution"), "status"), "ACTIVE");
    char key[160];
    snprintf(key, sizeof key, "%s",
             pe_test_json_str(get(get(cs, "actionPlan"), "implementation"), "featureFlagKey"));
    cJSON_Delete(ans);

    /* OFREP: mobile units are split, desktop units are not in the experiment */
    int treated = 0, mobile = 0;
    for (int i = 0; i < 200; i++) {
        char body[256], ofrep[256];
        snprintf(ofrep, sizeof ofrep, "/ofrep/v1/evaluate/flags/%s", key);
        snprintf(body, sizeof body,
                 "{\"context\":{\"targetingKey\":\"visitor-%d\",\"device\":\"desktop\"}}", i);
        cJSON *e = pe_test_expect(&fx.server, "POST", ofrep, body, a.pk_auth, 200);
        assert_string_equal(pe_test_json_str(e, "variant"), "control");
        assert_string_equal(pe_test_json_str(e, "reason"), "DEFAULT");
        cJSON_Delete(e);
        snprintf(body, sizeof body,
                 "{\"context\":{\"targetingKey\":\"visitor-%d\",\"device\":\"mobile\"}}", i);
        e = pe_test_expect(&fx.server, "POST", ofrep, body, a.pk_auth, 200);
        treated += strcmp(pe_test_json_str(e, "variant"), "treatment") == 0;
        mobile++;
        cJSON_Delete(e);
    }
    print_message("mobile units on treatment: %d of %d\n", treated, mobile);
    assert_true(treated >= 65 && treated <= 125); /* 200 · 0.95 · 0.5 = 95 */

    /* approving twice is a conflict; the slot was given to the next one */
    cJSON *again = expect("POST", path, "{}", &a, 409);
    assert_string_equal(pe_test_json_str(get(again, "error"), "code"), "invalid_transition");
    cJSON_Delete(again);
    check_consistent(&a);
}

static void test_many_problems_five_active_and_reject_promotes(void **state)
{
    (void)state;
    cJSON *out = recommend(&c);
    cJSON_Delete(out);
    check_consistent(&c);
    int active = count_status(&c, "active"), queued = count_status(&c, "queued");
    print_message("six planted problems: %d active, %d queued, %d blocked\n", active, queued,
                  count_status(&c, "blocked"));
    assert_int_equal(active, PE_DOCTOR_MAX_ACTIVE);
    assert_true(queued > 0);

    /* the best queued one of a finding with nothing active takes the slot a rejection frees */
    cJSON *l = list(&c, "active");
    const cJSON *last = cJSON_GetArrayItem(get(l, "recommendations"), PE_DOCTOR_MAX_ACTIVE - 1);
    char id[64], playbook[64], step[32], path[256];
    snprintf(id, sizeof id, "%s", pe_test_json_str(last, "id"));
    snprintf(playbook, sizeof playbook, "%s", pe_test_json_str(last, "playbook"));
    snprintf(step, sizeof step, "%s", pe_test_json_str(last, "step"));
    char *segment = cJSON_PrintUnformatted(get(last, "segment"));
    cJSON_Delete(l);
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations/%s/reject", c.id, id);
    cJSON *ans = expect("POST", path, "{\"reason\":\"we tried this last year\"}", &c, 200);
    assert_string_equal(pe_test_json_str(get(ans, "recommendation"), "status"), "rejected");
    assert_string_equal(pe_test_json_str(get(ans, "recommendation"), "reason"),
                        "we tried this last year");
    assert_string_equal(pe_test_json_str(get(get(ans, "changeset"), "execution"), "status"),
                        "ARCHIVED");
    assert_string_equal(pe_test_json_str(get(get(ans, "changeset"), "approval"), "status"),
                        "rejected");
    cJSON_Delete(ans);
    assert_int_equal(count_status(&c, "active"), PE_DOCTOR_MAX_ACTIVE);
    assert_int_equal(count_status(&c, "queued"), queued - 1);
    check_consistent(&c);
    /* rejecting twice, or something that is not there */
    cJSON_Delete(expect("POST", path, "{}", &c, 409));
    /* not proposed again */
    char *text = NULL;
    out = recommend(&c);
    cJSON_Delete(out);
    l = list(&c, "active,queued,blocked");
    const cJSON *r;
    cJSON_ArrayForEach(r, get(l, "recommendations"))
    {
        text = cJSON_PrintUnformatted(get(r, "segment"));
        bool same = strcmp(pe_test_json_str(r, "playbook"), playbook) == 0 &&
                    strcmp(pe_test_json_str(r, "step"), step) == 0 && strcmp(text, segment) == 0;
        free(text);
        assert_false(same);
    }
    cJSON_Delete(l);
    free(segment);
}

static void test_margin_floor_blocks_discounts(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/guardrails", b.id);
    cJSON_Delete(expect("PUT", path, "{\"minMarginPct\":80}", &b, 200));
    cJSON *out = recommend(&b);
    cJSON_Delete(out);
    check_consistent(&b);
    cJSON *l = list(&b, "blocked");
    const cJSON *r;
    int blocked = 0;
    char id[64] = "";
    cJSON_ArrayForEach(r, get(l, "recommendations"))
    {
        blocked++;
        assert_non_null(strstr(pe_test_json_str(r, "playbook"), "discount"));
        const cJSON *v = cJSON_GetArrayItem(get(r, "violations"), 0);
        assert_string_equal(pe_test_json_str(v, "kind"), "margin");
        assert_non_null(strstr(pe_test_json_str(v, "message"), "reduce margin on SIM-"));
        assert_int_equal(strncmp(pe_test_json_str(v, "sku"), "SIM-", 4), 0);
        snprintf(id, sizeof id, "%s", pe_test_json_str(r, "id"));
    }
    cJSON_Delete(l);
    print_message("blocked discount recommendations: %d\n", blocked);
    assert_true(blocked >= 1);
    /* blocked ones take no active slot, and none of the active ones is a discount */
    l = list(&b, "active");
    cJSON_ArrayForEach(r, get(l, "recommendations"))
        assert_null(strstr(pe_test_json_str(r, "playbook"), "discount"));
    cJSON_Delete(l);
    /* approving needs force + confirm, and then it runs */
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations/%s/approve", b.id, id);
    cJSON *refused = expect("POST", path, "{}", &b, 409);
    assert_string_equal(pe_test_json_str(get(refused, "error"), "code"), "guardrail_violation");
    assert_true(cJSON_GetArraySize(get(get(refused, "error"), "violations")) > 0);
    cJSON_Delete(refused);
    cJSON_Delete(expect("POST", path, "{\"force\":true}", &b, 409)); /* no confirmation */
    cJSON *ans = expect("POST", path, "{\"force\":true,\"confirm\":true}", &b, 200);
    assert_string_equal(pe_test_json_str(get(ans, "recommendation"), "status"), "approved");
    assert_string_equal(pe_test_json_str(get(get(ans, "changeset"), "execution"), "status"),
                        "ACTIVE");
    /* and it walks the rest of the lifecycle: measuring, then rolled back (its flag off) */
    snprintf(path, sizeof path, "/api/v1/stores/%s/changesets/%s/transitions", b.id,
             pe_test_json_str(get(ans, "changeset"), "id"));
    cJSON_Delete(ans);
    cJSON_Delete(expect("POST", path, "{\"to\":\"MEASURING\",\"actor\":\"system\"}", &b, 200));
    ans = expect("POST", path, "{\"to\":\"ROLLED_BACK\",\"reason\":\"test\"}", &b, 200);
    assert_string_equal(pe_test_json_str(get(ans, "execution"), "status"), "ROLLED_BACK");
    cJSON_Delete(ans);
    /* the recommendation stays approved: the merchant approved it */
    cJSON *one = list(&b, "approved");
    assert_int_equal(cJSON_GetArraySize(get(one, "recommendations")), 1);
    cJSON_Delete(one);
}

static void test_tenant_wall_and_bad_input(void **state)
{
    (void)state;
    cJSON *l = list(&a, "active,approved");
    const cJSON *r = cJSON_GetArrayItem(get(l, "recommendations"), 0);
    char id[64], path[256];
    snprintf(id, sizeof id, "%s", pe_test_json_str(r, "id"));
    cJSON_Delete(l);
    /* another store's secret key, on its own store's path: not found */
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations/%s", c.id, id);
    pe_test_response_t resp;
    assert_int_equal(pe_test_call(&fx.server, "GET", path, NULL, c.sk_auth, &resp), 404);
    pe_test_expect_error(&resp, 404, "not_found", NULL, 0);
    pe_test_response_free(&resp);
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations/%s/approve", c.id, id);
    assert_int_equal(pe_test_call(&fx.server, "POST", path, "{}", c.sk_auth, &resp), 404);
    pe_test_response_free(&resp);
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations/%s/reject", c.id, id);
    assert_int_equal(pe_test_call(&fx.server, "POST", path, "{}", c.sk_auth, &resp), 404);
    pe_test_response_free(&resp);
    /* on a's path: 403 */
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations/%s", a.id, id);
    assert_int_equal(pe_test_call(&fx.server, "GET", path, NULL, c.sk_auth, &resp), 403);
    pe_test_response_free(&resp);
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations", a.id);
    assert_int_equal(pe_test_call(&fx.server, "GET", path, NULL, c.sk_auth, &resp), 403);
    pe_test_response_free(&resp);
    /* a publishable key is refused */
    assert_int_equal(pe_test_call(&fx.server, "GET", path, NULL, a.pk_auth, &resp), 403);
    pe_test_response_free(&resp);
    /* c's list holds only c's */
    l = list(&c, "active,queued,blocked,approved,rejected,retired");
    cJSON_ArrayForEach(r, get(l, "recommendations"))
        assert_string_not_equal(pe_test_json_str(r, "id"), id);
    cJSON_Delete(l);
    /* bad input names the field */
    char msg[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations?status=maybe", a.id);
    pe_test_call(&fx.server, "GET", path, NULL, a.sk_auth, &resp);
    pe_test_expect_error(&resp, 400, "invalid_request", msg, sizeof msg);
    assert_non_null(strstr(msg, "status:"));
    pe_test_response_free(&resp);
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations?limit=3", a.id);
    pe_test_call(&fx.server, "GET", path, NULL, a.sk_auth, &resp);
    pe_test_expect_error(&resp, 400, "invalid_request", NULL, 0);
    pe_test_response_free(&resp);
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations/not-a-uuid", a.id);
    pe_test_call(&fx.server, "GET", path, NULL, a.sk_auth, &resp);
    pe_test_expect_error(&resp, 404, "not_found", NULL, 0);
    pe_test_response_free(&resp);
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations/%s/approve", a.id, id);
    pe_test_call(&fx.server, "POST", path, "{\"force\":\"yes\"}", a.sk_auth, &resp);
    pe_test_expect_error(&resp, 400, "invalid_type", msg, sizeof msg);
    assert_non_null(strstr(msg, "force"));
    pe_test_response_free(&resp);
    pe_test_call(&fx.server, "POST", path, "{\"please\":true}", a.sk_auth, &resp);
    pe_test_expect_error(&resp, 400, "unknown_field", NULL, 0);
    pe_test_response_free(&resp);
    pe_test_call(&fx.server, "POST", path, "[1", a.sk_auth, &resp);
    pe_test_expect_error(&resp, 400, "invalid_json", NULL, 0);
    pe_test_response_free(&resp);
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations/%s/reject", a.id, id);
    pe_test_call(&fx.server, "POST", path, "{\"reason\":\"a\\u0007b\"}", a.sk_auth, &resp);
    pe_test_expect_error(&resp, 400, "invalid_format", NULL, 0);
    pe_test_response_free(&resp);
    /* the command line: an unknown store is exit 2 */
    const char *args[] = {"recommend", "--store", "00000000-0000-4000-8000-000000000000", NULL};
    cli(2, args);
    const char *bad[] = {"recommend", "--store", "x", NULL};
    cli(2, bad);
}

static void test_job_generates_once_per_run(void **state)
{
    (void)state;
    pe_test_tenant_t d;
    pe_test_seeded_store(&fx, &d, "Recommend job", NULL, "41", DAYS, END, PER_DAY,
                         "{\"overrides\":[{\"segment\":{\"country\":\"FR\"},\"step\":\"payment\","
                         "\"probability\":0.3}]}");
    diagnose(&d);
    pe_changeset_config_t cscfg = {.db = fx.pool};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cscfg);
    /* an extension's playbook, registered as the built-ins are: the best for FR at payment */
    pe_doctor_playbook_t sofort = {
        .key = "x-sofort-banner",
        .title = "Say that {who} can pay by bank transfer",
        .description = "A banner at the {step} step: bank transfer accepted.",
        .rationale = "Planted for the test.",
        .source = "the extension's own A/B tests (a test fixture)",
        .steps = 1u << 4,
        .dims = 1u << PE_DOCTOR_COUNTRY,
        .method = "feature_flag",
        .action_type = "copy_change",
        .change_type = "copy",
        .selector = "/checkout/payment",
        .change = "A bank-transfer banner",
        .before = "false",
        .after = "true",
        .effort = 1,
        .risk = "low",
        .uplift_low = 0.3,
        .uplift_high = 0.5,
    };
    const pe_doctor_playbook_t *const mine[] = {&sofort, NULL};
    pe_doctor_recommender_config_t rcfg = {.db = fx.pool, .changesets = svc, .playbooks = mine};
    pe_refusal_t err = {"", ""};
    pe_doctor_recommender_t *rec = pe_doctor_recommender_new(&rcfg, &err);
    assert_non_null(rec);
    int64_t now = 1764633600LL * 1000000; /* 2025-12-02: fixed, never the wall clock */
    size_t ran = 0;
    char why[256] = "";
    assert_int_equal(pe_doctor_recommend_due(rec, now, &ran, why, sizeof why), 0);
    assert_true(ran >= 1); /* d, and any store not generated since its last run */
    cJSON *l = list(&d, "active");
    const cJSON *first = cJSON_GetArrayItem(get(l, "recommendations"), 0);
    assert_string_equal(pe_test_json_str(first, "playbook"), "x-sofort-banner");
    assert_string_equal(pe_test_json_str(get(first, "segment"), "country"), "FR");
    assert_string_equal(pe_test_json_str(first, "title"),
                        "Say that visitors from FR can pay by bank transfer");
    cJSON_Delete(l);
    assert_int_equal(pe_doctor_recommend_due(rec, now, &ran, why, sizeof why), 0);
    assert_int_equal(ran, 0);
    /* an extension playbook that repeats a built-in's key is refused */
    pe_doctor_playbook_t dup = *pe_doctor_playbooks_builtin(&ran);
    const pe_doctor_playbook_t *const extra[] = {&dup, NULL};
    pe_doctor_recommender_free(rec);
    rcfg.playbooks = extra;
    assert_null(pe_doctor_recommender_new(&rcfg, &err));
    assert_non_null(strstr(err.message, "already registered"));
    /* and one that fails the check names the field */
    sofort.effort = 40;
    rcfg.playbooks = mine;
    assert_null(pe_doctor_recommender_new(&rcfg, &err));
    assert_string_equal(err.message, "x-sofort-banner.effort: must be 1..13 points");
    pe_changeset_service_free(svc);
}

static void test_finding_gone_retires(void **state)
{
    (void)state;
    int open = count_status(&a, "active,queued,blocked");
    assert_true(open > 0);
    /* a newer run without the finding: a window before the store's traffic */
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s/diagnostics/runs?from=2026-10-01&to=2026-10-28",
             a.id);
    cJSON *run = expect("POST", path, NULL, &a, 201);
    assert_int_equal(cJSON_GetArraySize(get(run, "findings")), 0);
    cJSON_Delete(run);
    snprintf(path, sizeof path, "/api/v1/stores/%s/recommendations/generate", a.id);
    cJSON *out = expect("POST", path, NULL, &a, 200);
    assert_int_equal((int)pe_test_json_num(out, "retired"), open);
    assert_int_equal((int)pe_test_json_num(out, "generated"), 0);
    assert_int_equal(cJSON_GetArraySize(get(out, "recommendations")), 0);
    cJSON_Delete(out);
    cJSON *l = list(&a, "retired");
    const cJSON *r;
    cJSON_ArrayForEach(r, get(l, "recommendations"))
    {
        assert_string_equal(pe_test_json_str(r, "reason"),
                            "the finding is gone from the latest diagnostic run");
        cJSON *cs = changeset(&a, pe_test_json_str(r, "changesetId"));
        assert_string_equal(pe_test_json_str(get(cs, "execution"), "status"), "ARCHIVED");
        cJSON_Delete(cs);
    }
    assert_int_equal(cJSON_GetArraySize(get(l, "recommendations")), open);
    cJSON_Delete(l);
    /* the approved experiment runs on */
    l = list(&a, "approved");
    const cJSON *approved = cJSON_GetArrayItem(get(l, "recommendations"), 0);
    cJSON *cs = changeset(&a, pe_test_json_str(approved, "changesetId"));
    assert_string_equal(pe_test_json_str(get(cs, "execution"), "status"), "ACTIVE");
    cJSON_Delete(cs);
    cJSON_Delete(l);
}

static int group_setup(void **state)
{
    pe_test_fixture_open(&fx, PE_LOG_WARN, 4);
    *state = &fx;
    pe_test_seeded_store(&fx, &a, "Recommend A", "ra@example.com", "11", DAYS, END, PER_DAY,
                         "{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":"
                         "\"shipping\",\"dropMultiplier\":2.5}]}");
    pe_test_seeded_store(
        &fx, &b, "Recommend B", NULL, "23", DAYS, END, PER_DAY,
        "{\"overrides\":[{\"segment\":{\"source\":\"email\"},\"step\":\"cart\",\"probability\":"
        "0.1},{\"segment\":{\"device\":\"mobile\"},\"step\":\"checkout\",\"dropMultiplier\":2}]}");
    pe_test_seeded_store(
        &fx, &c, "Recommend C", NULL, "29", DAYS, END, PER_DAY,
        "{\"overrides\":["
        "{\"segment\":{\"device\":\"mobile\"},\"step\":\"shipping\",\"dropMultiplier\":2.5},"
        "{\"segment\":{\"country\":\"FR\"},\"step\":\"payment\",\"probability\":0.3},"
        "{\"segment\":{\"source\":\"paid\"},\"step\":\"checkout\",\"probability\":0.2},"
        "{\"segment\":{\"source\":\"email\"},\"step\":\"cart\",\"probability\":0.02},"
        "{\"segment\":{\"visitor\":\"returning\"},\"step\":\"shipping\",\"probability\":0.4},"
        "{\"segment\":{\"utmCampaign\":\"brand-search\"},\"step\":\"payment\",\"probability\":"
        "0.3}]}");
    diagnose(&a);
    diagnose(&b);
    diagnose(&c);
    pe_test_server_start(&fx.server, fx.conninfo, (const char *const[]){"PE_JOBS=none", NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_recommendation_answers_first_finding),
        cmocka_unit_test(test_approve_reaches_the_segment_only),
        cmocka_unit_test(test_many_problems_five_active_and_reject_promotes),
        cmocka_unit_test(test_margin_floor_blocks_discounts),
        cmocka_unit_test(test_tenant_wall_and_bad_input),
        cmocka_unit_test(test_job_generates_once_per_run),
        cmocka_unit_test(test_finding_gone_retires),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
