/*
 * test_doctor.c — the funnel doctor end to end: simulated stores with planted problems (the
 * simulator's truth), `profit-engine aggregate`, then `profit-engine diagnose` and the API, on a
 * private migrated database and a child server.
 *
 * Invariants the tests hold the doctor to:
 *  1. Ground truth: for a problem planted in one segment at one step (device, country, traffic
 *     source), the first-ranked finding is a segment_gap naming that step and that segment —
 *     also when the segment drags the whole store below the benchmark at that step (paid
 *     traffic at checkout: the store-level gap is its symptom and ranks after it).
 *     bench/doctor/accuracy runs 20+ such scenarios; the suite keeps four. A clean store (no
 * override) has no segment_gap finding (one fixed seed: a regression check; the false-discovery
 * rate over many seeds is measured by tests/unit/doctor/test_analyze.c and bench/doctor). A change
 * point planted with a date-ranged override (payment converts at 0.35 from one day of the window
 * on) is the first-ranked finding: a change_point at payment whose "since" is within two days of
 * the planted date.
 *  2. Time is an input: every store is simulated into fixed past days (--end) and diagnosed with
 *     an explicit window, so nothing depends on today's date or hour.
 *  3. The API: POST …/diagnostics/runs answers 201 with the run (every finding's evidence valid
 *     as a ChangeSet's dataEvidence, unchanged), GET …/findings the latest run,
 *     GET …/diagnostics/runs/{id} one run; a second run of the same window replaces the first
 *     (the old id is gone, one row is left). Another store's key or session reads none of it
 *     (404), and its own run holds only its own sessions; a publishable key is refused.
 *  6. A store's own benchmarks (GET/PUT …/diagnostics/benchmarks) replace the industry's in its
 *     next runs (a shipping drop-off the store expects is no benchmark_gap any more), null goes
 *     back to the industry's, a refusal names the step and changes nothing, and another store's
 *     key neither changes nor sees them.
 *  5. The daily job (pe_doctor_run_due, at a fixed "now"): it diagnoses the stores with traffic
 *     in their default window and no run of it yet, and a second call finds none due; two
 *     callers at once (two instances) diagnose each store once between them.
 *  4. Bad input is a 4xx naming the problem (from after to, a window over 400 days, to after
 *     today, an unknown parameter, half a window, a malformed date) and exit 2 on the command
 *     line (an unknown store, a bad window); a store without traffic gets an empty run that
 *     says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>

#include "pe/changeset.h"
#include "pe/db.h"
#include "pe/doctor.h"
#include "pe/tenancy.h"
#include "pe_test.h"

#define END     "2026-11-29" /* a Sunday; the window is the 28 days before and including it */
#define FROM    "2026-11-02"
#define DAYS    "28"
#define WINDOW  "from=" FROM "&to=" END
#define PER_DAY "300"

static pe_test_fixture_t fx;
static pe_test_tenant_t a, b;

/* ---- helpers --------------------------------------------------------------------------------- */

/* Runs `profit-engine args…` on the test database (pe_test_cli_json). */
static cJSON *cli(int want, const char *const *args)
{
    return pe_test_cli_json(fx.conninfo, want, args);
}

/* A new store with DAYS days of simulated traffic ending END (scenario may be NULL), rolled up. */
static void seeded_store(pe_test_tenant_t *t, const char *name, const char *email, const char *seed,
                         const char *scenario)
{
    pe_test_seeded_store(&fx, t, name, email, seed, DAYS, END, PER_DAY, scenario);
}

static cJSON *diagnose(const pe_test_tenant_t *t)
{
    const char *args[] = {"diagnose", "--store", t->id, "--from", FROM, "--to", END, NULL};
    return cli(0, args);
}

static const cJSON *first_finding(const cJSON *run)
{
    const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(run, "findings"), 0);
    if (!f)
        fail_msg("no finding: %s", pe_test_json_str(run, "note"));
    return f;
}

/* The finding's segment has exactly one dimension, dim = value. */
static bool segment_is(const cJSON *f, const char *dim, const char *value)
{
    const cJSON *seg = cJSON_GetObjectItemCaseSensitive(f, "segment");
    return cJSON_GetArraySize(seg) == 1 && strcmp(pe_test_json_str(seg, dim), value) == 0;
}

/* Every finding's evidence is valid as a ChangeSet's dataEvidence, unchanged (the contract a
 * recommendation relies on): it replaces the evidence of a valid ChangeSet of the corpus. */
static void expect_evidence_fits_a_changeset(const cJSON *run)
{
    char *text = pe_test_corpus("changesets/valid/discount_change.json");
    cJSON *doc = cJSON_Parse(text);
    free(text);
    assert_non_null(doc);
    cJSON *hypothesis = cJSON_GetObjectItemCaseSensitive(doc, "hypothesis");
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(run, "findings"))
    {
        cJSON *evidence = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(f, "evidence"), true);
        assert_non_null(evidence);
        assert_true(cJSON_ReplaceItemInObjectCaseSensitive(hypothesis, "dataEvidence", evidence));
        pe_refusal_t err;
        if (pe_changeset_validate(doc, PE_CHANGESET_FULL, &err) != 0)
            fail_msg("finding %s: evidence refused: %s", pe_test_json_str(f, "title"), err.message);
    }
    cJSON_Delete(doc);
}

/* ---- 1. ground truth ------------------------------------------------------------------------- */

typedef struct {
    const char *name, *dim, *value, *step, *override;
} planted_t;

static const planted_t PLANTED[] = {
    {"mobile shipping", "device", "mobile", "shipping",
     "{\"segment\":{\"device\":\"mobile\"},\"step\":\"shipping\",\"dropMultiplier\":2.5}"},
    {"FR payment", "country", "FR", "payment",
     "{\"segment\":{\"country\":\"FR\"},\"step\":\"payment\",\"probability\":0.3}"},
    {"paid checkout", "source", "google-ads", "checkout",
     "{\"segment\":{\"source\":\"paid\"},\"step\":\"checkout\",\"probability\":0.2}"},
    {"email cart", "source", "newsletter", "cart",
     "{\"segment\":{\"source\":\"email\"},\"step\":\"cart\",\"probability\":0.02}"},
    /* visitor type and campaign: agg_sessions.visitor_type, .campaign (0015) */
    {"returning shipping", "visitor", "returning", "shipping",
     "{\"segment\":{\"visitor\":\"returning\"},\"step\":\"shipping\",\"probability\":0.4}"},
    {"brand-search payment", "campaign", "brand-search", "payment",
     "{\"segment\":{\"utmCampaign\":\"brand-search\"},\"step\":\"payment\","
     "\"probability\":0.3}"},
};

static void test_planted_problem_ranks_first(void **state)
{
    (void)state;
    int hits = 0;
    for (size_t i = 0; i < PE_ARRAY_LEN(PLANTED); i++) {
        const planted_t *p = &PLANTED[i];
        char scenario[512], seed[16];
        snprintf(scenario, sizeof scenario, "{\"overrides\":[%s]}", p->override);
        snprintf(seed, sizeof seed, "%zu", 100 + i);
        pe_test_tenant_t t;
        seeded_store(&t, p->name, NULL, seed, scenario);
        cJSON *run = diagnose(&t);
        const cJSON *f = first_finding(run);
        bool hit = strcmp(pe_test_json_str(f, "kind"), "segment_gap") == 0 &&
                   strcmp(pe_test_json_str(f, "step"), p->step) == 0 &&
                   segment_is(f, p->dim, p->value);
        if (!hit)
            print_message("planted %s: first finding is %s at %s: %s\n", p->name,
                          pe_test_json_str(f, "kind"), pe_test_json_str(f, "step"),
                          pe_test_json_str(f, "title"));
        hits += hit;
        /* what the merchant reads names the numbers */
        assert_true(pe_test_json_num(f, "lostProfitPerMonth") > 0);
        assert_true(pe_test_json_num(f, "qValue") <= 0.05);
        assert_true(strlen(pe_test_json_str(f, "title")) > 20);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f, "evidence")), 2);
        cJSON_Delete(run);
    }
    print_message("planted problems ranked first: %d of %zu\n", hits, PE_ARRAY_LEN(PLANTED));
    assert_int_equal(hits, (int)PE_ARRAY_LEN(PLANTED));
}

static void test_clean_store_has_no_segment_gap(void **state)
{
    (void)state;
    pe_test_tenant_t t;
    seeded_store(&t, "Clean", NULL, "7", NULL);
    cJSON *run = diagnose(&t);
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(run, "findings"))
    {
        if (strcmp(pe_test_json_str(f, "kind"), "segment_gap") == 0)
            fail_msg("a clean store has a segment_gap: %s", pe_test_json_str(f, "title"));
    }
    assert_true(pe_test_json_num(run, "tests") > 50);
    cJSON_Delete(run);
}

#define CHANGE_DAY "2026-11-18" /* inside the window: 16 days before, 12 from it on */

static int32_t day_number(const char *date)
{
    int y = 0, m = 0, d = 0;
    if (!date || sscanf(date, "%4d-%2d-%2d", &y, &m, &d) != 3)
        fail_msg("not a date: %s", date ? date : "(null)");
    return (int32_t)pe_days_from_civil(y, m, d);
}

static void test_planted_change_point_ranks_first(void **state)
{
    (void)state;
    /* A segment is required: new and returning visitors together are every session. */
    const char *scenario =
        "{\"overrides\":["
        "{\"segment\":{\"visitor\":\"new\"},\"step\":\"payment\",\"probability\":0.35,"
        "\"from\":\"" CHANGE_DAY "\"},"
        "{\"segment\":{\"visitor\":\"returning\"},\"step\":\"payment\",\"probability\":0.35,"
        "\"from\":\"" CHANGE_DAY "\"}]}";
    pe_test_tenant_t t;
    seeded_store(&t, "Change point", NULL, "31", scenario);
    cJSON *run = diagnose(&t);
    const cJSON *f = first_finding(run);
    print_message("planted change point on %s: %s\n", CHANGE_DAY, pe_test_json_str(f, "title"));
    assert_string_equal(pe_test_json_str(f, "kind"), "change_point");
    assert_string_equal(pe_test_json_str(f, "step"), "payment");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f, "segment")), 0);
    int32_t off = day_number(pe_test_json_str(f, "since")) - day_number(CHANGE_DAY);
    if (off < -2 || off > 2)
        fail_msg("planted on %s, found since %s", CHANGE_DAY, pe_test_json_str(f, "since"));
    assert_true(pe_test_json_num(f, "rate") < 0.5 && pe_test_json_num(f, "referenceRate") > 0.7);
    assert_true(pe_test_json_num(f, "qValue") <= 0.05);
    assert_true(pe_test_json_num(f, "lostProfitPerMonth") > 0);
    assert_non_null(strstr(pe_test_json_str(f, "title"), "payment conversion fell from"));
    cJSON_Delete(run);
}

/* ---- 3. the API and tenant isolation ----------------------------------------------------------
 */

static void test_api_runs_and_isolation(void **state)
{
    (void)state;
#define RUNS_PATH "/api/v1/stores/%s/diagnostics/runs?" WINDOW
    char path[256], run_path[256], findings_a[128], findings_b[128];
    snprintf(path, sizeof path, RUNS_PATH, a.id);
    cJSON *run = pe_test_expect(&fx.server, "POST", path, NULL, a.sk_auth, 201);
    const char *run_id = pe_test_json_require_str(run, "runId");
    assert_string_equal(pe_test_json_str(run, "storeId"), a.id);
    assert_string_equal(pe_test_json_str(run, "from"), FROM);
    assert_string_equal(pe_test_json_str(run, "to"), END);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(run, "findings")) >= 1);
    expect_evidence_fits_a_changeset(run);
    snprintf(run_path, sizeof run_path, "/api/v1/stores/%s/diagnostics/runs/%s", a.id, run_id);
    snprintf(findings_a, sizeof findings_a, "/api/v1/stores/%s/findings", a.id);
    snprintf(findings_b, sizeof findings_b, "/api/v1/stores/%s/findings", b.id);

    cJSON *latest = pe_test_expect(&fx.server, "GET", findings_a, NULL, a.sk_auth, 200);
    assert_string_equal(pe_test_json_str(latest, "runId"), run_id);
    cJSON_Delete(latest);
    cJSON *one = pe_test_expect(&fx.server, "GET", run_path, NULL, a.sk_auth, 200);
    assert_true(cJSON_Compare(one, run, true));
    cJSON_Delete(one);
    pe_test_tenant_sign_in(&a, &fx.server, NULL);
    latest = pe_test_expect(&fx.server, "GET", findings_a, NULL, a.cookie, 200);
    cJSON_Delete(latest);

    /* store B: its key reaches none of A's runs, by A's path or by A's run id under B's path */
    pe_test_response_t r;
    pe_test_call(&fx.server, "GET", run_path, NULL, b.sk_auth, &r);
    assert_true(r.status == 403 || r.status == 404);
    pe_test_response_free(&r);
    char b_run_path[256];
    snprintf(b_run_path, sizeof b_run_path, "/api/v1/stores/%s/diagnostics/runs/%s", b.id, run_id);
    pe_test_call(&fx.server, "GET", b_run_path, NULL, b.sk_auth, &r);
    pe_test_expect_error(&r, 404, "not_found", NULL, 0);
    pe_test_response_free(&r);
    /* B has no run yet: an answer, not an error */
    cJSON *none = pe_test_expect(&fx.server, "GET", findings_b, NULL, b.sk_auth, 200);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(none, "runId")));
    assert_string_equal(pe_test_json_str(none, "storeId"), b.id);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(none, "findings")), 0);
    assert_non_null(strstr(pe_test_json_str(none, "note"), "No diagnostic run yet"));
    cJSON_Delete(none);
    pe_test_call(&fx.server, "GET", findings_a, NULL, b.sk_auth, &r);
    assert_true(r.status == 403 || r.status == 404);
    pe_test_response_free(&r);
    pe_test_call(&fx.server, "POST", path, NULL, b.sk_auth, &r);
    assert_true(r.status == 403 || r.status == 404);
    pe_test_response_free(&r);
    pe_test_call(&fx.server, "GET", findings_a, NULL, a.pk_auth, &r);
    assert_true(r.status == 401 || r.status == 403);
    pe_test_response_free(&r);

    /* B's own run sees only B's sessions: none, and says so */
    snprintf(path, sizeof path, RUNS_PATH, b.id);
    cJSON *run_b = pe_test_expect(&fx.server, "POST", path, NULL, b.sk_auth, 201);
    assert_true(pe_test_json_num(run_b, "sessions") == 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(run_b, "findings")), 0);
    assert_non_null(strstr(pe_test_json_str(run_b, "note"), "too little traffic"));
    cJSON_Delete(run_b);

    /* a second run of the same window replaces the first */
    snprintf(path, sizeof path, RUNS_PATH, a.id);
    cJSON *again = pe_test_expect(&fx.server, "POST", path, NULL, a.sk_auth, 201);
    assert_string_not_equal(pe_test_json_str(again, "runId"), run_id);
    pe_test_call(&fx.server, "GET", run_path, NULL, a.sk_auth, &r);
    pe_test_expect_error(&r, 404, "not_found", NULL, 0);
    pe_test_response_free(&r);
    pe_test_sql_expect(fx.conninfo, "1",
                       "SELECT count(*) FROM diagnostic_runs WHERE store_id = '%s'"
                       " AND window_from = '" FROM "' AND window_to = '" END "'",
                       a.id);
    pe_test_sql_expect(fx.conninfo, "t",
                       "SELECT count(*) = jsonb_array_length((SELECT doc -> 'findings' FROM"
                       " diagnostic_runs WHERE store_id = '%s')) FROM findings WHERE store_id = "
                       "'%s'",
                       a.id, a.id);
    cJSON_Delete(again);
    cJSON_Delete(run);
}

/* ---- 4. bad input ---------------------------------------------------------------------------- */

static void test_bad_input(void **state)
{
    (void)state;
    static const struct {
        const char *query, *names;
    } bad[] = {
        {"from=2026-11-29&to=2026-11-02", "from"},
        {"from=2025-01-01&to=2026-11-29", "400 days"},
        {"from=2026-11-02&to=2999-01-01", "to"},
        {"from=2026-11-02", "to"},
        {"from=2026-11-02&to=2026-11-31", "to"},
        {"window=28", "window"},
        {"from=2026-11-02&to=2026-11-29&from=2026-11-03", "from"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        char path[256], msg[512];
        snprintf(path, sizeof path, "/api/v1/stores/%s/diagnostics/runs?%s", a.id, bad[i].query);
        pe_test_response_t r;
        pe_test_call(&fx.server, "POST", path, NULL, a.sk_auth, &r);
        pe_test_expect_error(&r, 400, "invalid_request", msg, sizeof msg);
        if (!strstr(msg, bad[i].names))
            fail_msg("%s: the message does not name %s: %s", bad[i].query, bad[i].names, msg);
        pe_test_response_free(&r);
    }
    char unknown_run[256];
    snprintf(unknown_run, sizeof unknown_run, "/api/v1/stores/%s/diagnostics/runs/not-a-uuid",
             a.id);
    pe_test_response_t r;
    pe_test_call(&fx.server, "GET", unknown_run, NULL, a.sk_auth, &r);
    pe_test_expect_error(&r, 404, "not_found", NULL, 0);
    pe_test_response_free(&r);

    const char *no_store[] = {"diagnose", "--store", "00000000-0000-4000-8000-000000000000", NULL};
    cli(2, no_store);
    const char *backwards[] = {"diagnose", "--store", a.id, "--from", END, "--to", FROM, NULL};
    cli(2, backwards);
    const char *half[] = {"diagnose", "--store", a.id, "--from", FROM, NULL};
    cli(2, half);
}

/* ---- 5. the daily job ------------------------------------------------------------------------ */

typedef struct {
    int64_t now_us;
    size_t ran;
    int rc;
} due_call_t;

static void *call_due(void *arg)
{
    due_call_t *c = arg;
    char err[256];
    c->rc = pe_doctor_run_due(fx.pool, c->now_us, &c->ran, err, sizeof err);
    return NULL;
}

/* The day after END, noon in Berlin: the default window is exactly FROM..END. */
static int64_t day_after_end_us(void)
{
    char *v = pe_test_sqlf(fx.conninfo, "SELECT extract(epoch FROM timestamptz '" END
                                        " 12:00:00+01' + interval '1 day')::bigint");
    int64_t s = strtoll(v, NULL, 10);
    free(v);
    return s * 1000000;
}

static void test_daily_job_runs_each_store_once(void **state)
{
    (void)state;
    pe_test_sql_expect(fx.conninfo, "0", "%s", "SELECT count(*) FROM diagnostic_runs");
    int64_t now = day_after_end_us();
    /* two instances at once: one holds the lock and diagnoses every store due, the other skips */
    due_call_t one = {.now_us = now}, two = {.now_us = now};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, call_due, &one), 0);
    assert_int_equal(pthread_create(&t2, NULL, call_due, &two), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(one.rc, 0);
    assert_int_equal(two.rc, 0);
    char *stores = pe_test_sqlf(fx.conninfo, "SELECT count(DISTINCT store_id) FROM agg_sessions");
    assert_int_equal((long)(one.ran + two.ran), strtol(stores, NULL, 10));
    free(stores);
    pe_test_sql_expect(
        fx.conninfo, "t",
        "SELECT count(*) = count(DISTINCT store_id) AND bool_and(window_from = '" FROM
        "' AND window_to = '" END "') FROM diagnostic_runs");
    /* the same day again: nothing is due */
    due_call_t again = {.now_us = now};
    call_due(&again);
    assert_int_equal(again.rc, 0);
    assert_int_equal(again.ran, 0);
}

/* ---- 6. a store's own benchmarks --------------------------------------------------------------
 */

/* How many of run's findings are kind at step. */
static int count_findings(const cJSON *run, const char *kind, const char *step)
{
    int n = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(run, "findings"))
    {
        n += strcmp(pe_test_json_str(f, "kind"), kind) == 0 &&
             strcmp(pe_test_json_str(f, "step"), step) == 0;
    }
    return n;
}

static void test_store_benchmarks(void **state)
{
    (void)state;
    char path[160], runs[256], path_b[160];
    snprintf(path, sizeof path, "/api/v1/stores/%s/diagnostics/benchmarks", a.id);
    snprintf(path_b, sizeof path_b, "/api/v1/stores/%s/diagnostics/benchmarks", b.id);
    snprintf(runs, sizeof runs, RUNS_PATH, a.id);

    cJSON *bm = pe_test_expect(&fx.server, "GET", path, NULL, a.sk_auth, 200);
    const cJSON *ship =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(bm, "steps"), "shipping");
    assert_true(pe_test_json_num(ship, "dropOff") == 0.25);
    assert_string_equal(pe_test_json_str(ship, "source"), "industry");
    assert_non_null(strstr(pe_test_json_str(bm, "industrySource"), "Baymard"));
    cJSON_Delete(bm);
    cJSON *run = pe_test_expect(&fx.server, "POST", runs, NULL, a.sk_auth, 201);
    assert_int_equal(count_findings(run, "benchmark_gap", "shipping"), 1);
    cJSON_Delete(run);

    /* the store expects a 70 % drop-off at shipping: its 40 % is no gap any more */
    bm = pe_test_expect(&fx.server, "PUT", path, "{\"shipping\":0.7}", a.sk_auth, 200);
    ship =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(bm, "steps"), "shipping");
    assert_true(pe_test_json_num(ship, "dropOff") == 0.7);
    assert_string_equal(pe_test_json_str(ship, "source"), "store");
    cJSON_Delete(bm);
    run = pe_test_expect(&fx.server, "POST", runs, NULL, a.sk_auth, 201);
    assert_int_equal(count_findings(run, "benchmark_gap", "shipping"), 0);
    assert_true(count_findings(run, "segment_gap", "shipping") >= 1); /* the planted cause stays */
    cJSON_Delete(run);

    /* another store's key changes nothing of A's and sees its own (industry) benchmarks */
    pe_test_response_t r;
    pe_test_call(&fx.server, "PUT", path, "{\"shipping\":0.1}", b.sk_auth, &r);
    assert_true(r.status == 403 || r.status == 404);
    pe_test_response_free(&r);
    bm = pe_test_expect(&fx.server, "GET", path_b, NULL, b.sk_auth, 200);
    ship =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(bm, "steps"), "shipping");
    assert_string_equal(pe_test_json_str(ship, "source"), "industry");
    cJSON_Delete(bm);
    pe_test_sql_expect(fx.conninfo, "0.7",
                       "SELECT dropoff FROM diagnostic_benchmarks WHERE store_id = '%s'", a.id);

    /* refusals name the step and change nothing */
    static const struct {
        const char *body, *code, *names;
    } bad[] = {
        {"{\"shiping\":0.3}", "unknown_field", "shiping"},
        {"{\"cart\":1}", "out_of_range", "cart"},
        {"{\"cart\":0}", "out_of_range", "cart"},
        {"{\"cart\":\"0.5\"}", "invalid_type", "cart"},
        {"{\"cart\":0.5,\"cart\":0.6}", "invalid_format", "cart"},
        {"{\"payment\":0.5,\"cart\":1e400}", "out_of_range", "cart"},
        {"[0.5]", "invalid_type", "object"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        char msg[512];
        pe_test_call(&fx.server, "PUT", path, bad[i].body, a.sk_auth, &r);
        pe_test_expect_error(&r, 400, bad[i].code, msg, sizeof msg);
        if (!strstr(msg, bad[i].names))
            fail_msg("%s: the message does not name %s: %s", bad[i].body, bad[i].names, msg);
        pe_test_response_free(&r);
    }
    pe_test_sql_expect(fx.conninfo, "1",
                       "SELECT count(*) FROM diagnostic_benchmarks WHERE store_id = '%s'", a.id);

    /* null goes back to the industry's */
    bm = pe_test_expect(&fx.server, "PUT", path, "{\"shipping\":null}", a.sk_auth, 200);
    ship =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(bm, "steps"), "shipping");
    assert_string_equal(pe_test_json_str(ship, "source"), "industry");
    cJSON_Delete(bm);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    *state = &fx;
    seeded_store(&a, "Doctor A", "a@example.com", "11",
                 "{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"shipping\","
                 "\"dropMultiplier\":2.5}]}");
    pe_test_tenant_make(&b, fx.pool, "Doctor B", "Europe/Berlin", "EUR", "b@example.com",
                        "doctor password");
    pe_test_server_start(&fx.server, fx.conninfo, (const char *const[]){"PE_JOBS=none", NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_daily_job_runs_each_store_once),
        cmocka_unit_test(test_planted_problem_ranks_first),
        cmocka_unit_test(test_clean_store_has_no_segment_gap),
        cmocka_unit_test(test_planted_change_point_ranks_first),
        cmocka_unit_test(test_api_runs_and_isolation),
        cmocka_unit_test(test_store_benchmarks),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
