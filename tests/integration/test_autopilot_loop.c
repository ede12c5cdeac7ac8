/*
 * test_autopilot_loop.c — `profit-engine simulate … --autopilot`, the closed loop, on a private
 * migrated database: a store with a planted problem is played day by day through the real jobs
 * (aggregate, diagnose, recommend, the merchant's approval, measure) at simulated times, with a
 * harmful true effect planted on every treatment.
 *
 * What it holds the loop to:
 *  1. The engine decides by itself: recommendations are approved by the policy, experiments
 *     start, and a change that halves conversion is rolled back automatically (actor system)
 *     well before its planned window ends; nothing harmful is PROVEN.
 *  2. The truth file records each experiment's planted effect and its realised true effect
 *     (negative for every treatment here), with sessions in treatment and control.
 *  3. Time is the simulation's: every ChangeSet's start and end and every audit event lie inside
 *     the simulated days, which end days before the wall clock's today.
 *  4. The storefront side is real: exposures of both variants are rolled up, and a rolled-back
 *     ChangeSet's flag is off.
 *  5. Attribution at the end: nothing harmful proven, so nothing credited and the answer says
 *     why; the engine's holdout comparison counts exactly the visitors the simulator saw in
 *     the holdout and exposed, and the truth of what Autopilot did to the exposed (every
 *     treatment halved ordering) is a loss.
 *  6. Bad --approve / --autopilot usage exits 2 naming the option.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/changeset.h"
#include "pe_test.h"

#define DAYS     "21"
#define SESSIONS "1200"
#define SEED     "11"
#define TZ       "Europe/Berlin"

static pe_test_fixture_t fx;
static char end_date[16];
static char tmpdir[] = "/tmp/pe-test-autopilot-XXXXXX";
static pe_test_tenant_t store;

static const char SCENARIO[] =
    "{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"shipping\","
    "\"dropMultiplier\":2.0}],"
    "\"effects\":[{\"target\":\"*\",\"conversionMultiplier\":0.5}]}";

static char *write_temp(const char *name, const char *text)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    return path;
}

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    pe_buf_t b = PE_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(pe_buf_append(&b, chunk, n), 0);
    fclose(f);
    cJSON *j = cJSON_ParseWithLength(b.data, b.len);
    pe_buf_free(&b);
    assert_non_null(j);
    return j;
}

/* The number pe_test_sqlf's answer holds (freed). */
static long long_of(char *v)
{
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

#define sql_long(...) long_of(pe_test_sqlf(fx.conninfo, __VA_ARGS__))

static void test_closed_loop_rolls_back_harm(void **state)
{
    (void)state;
    char *scenario = write_temp("scenario.json", SCENARIO);
    char *truth_path = NULL;
    assert_true(asprintf(&truth_path, "%s/truth.json", tmpdir) > 0);
    const char *args[] = {
        "simulate", "--store", store.id,   "--days",      DAYS,        "--sessions-per-day",
        SESSIONS,   "--seed",  SEED,       "--end",       end_date,    "--scenario",
        scenario,   "--truth", truth_path, "--autopilot", "--approve", "top",
        NULL};
    cJSON *sum = pe_test_cli_json(fx.conninfo, 0, args);
    assert_string_equal(pe_test_json_str(sum, "via"), "autopilot");
    assert_true(pe_test_json_num(sum, "approved") >= 2);
    assert_true(pe_test_json_num(sum, "rolledBack") >= 1);
    assert_int_equal((int)pe_test_json_num(sum, "proven"), 0);
    cJSON_Delete(sum);

    cJSON *truth = read_json(truth_path);
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(truth, "autopilot");
    assert_string_equal(pe_test_json_str(ap, "approve"), "top");
    const cJSON *e;
    int rolled_back = 0, treated = 0;
    double pooled = 0, pooled_sessions = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(ap, "experiments"))
    {
        const char *status = pe_test_json_str(e, "status");
        assert_true(strcmp(status, "PROVEN") != 0 && strcmp(status, "PERMANENT") != 0);
        double sessions = pe_test_json_num(e, "treatedSessions");
        if (sessions < 200)
            continue;
        treated++;
        const cJSON *effect = cJSON_GetObjectItemCaseSensitive(e, "effect");
        assert_string_equal(pe_test_json_str(effect, "target"), "*");
        double conv = pe_test_json_num(cJSON_GetObjectItemCaseSensitive(e, "true"), "conversion");
        assert_true(conv < 0.1); /* never a gain beyond noise */
        pooled += conv * sessions;
        pooled_sessions += sessions;
        assert_true(pe_test_json_num(e, "controlSessions") > 0);
        if (strcmp(status, "ROLLED_BACK") != 0)
            continue;
        rolled_back++;
        assert_string_equal(pe_test_json_str(e, "rolledBackBy"), "system");
        /* the simulated calendar: started and ended inside the simulated days */
        const char *started = pe_test_json_str(e, "startedAt");
        const char *ended = pe_test_json_str(e, "endedAt");
        assert_true(strcmp(started, ended) < 0);
        const char *id = pe_test_json_str(e, "changesetId");
        /* the flag is off; both variants were exposed and rolled up */
        assert_int_equal(sql_long("SELECT count(*) FROM flags f JOIN changesets c ON c.store_id ="
                                  " f.store_id AND c.feature_flag_key = f.key WHERE f.store_id ="
                                  " '%s' AND c.id = '%s' AND NOT f.enabled",
                                  store.id, id),
                         1);
        assert_int_equal(sql_long("SELECT count(DISTINCT x.variant) FROM agg_exposures x JOIN"
                                  " changesets c ON c.store_id = x.store_id AND"
                                  " c.feature_flag_key = x.flag_key WHERE x.store_id = '%s' AND"
                                  " c.id = '%s' AND NOT x.holdout",
                                  store.id, id),
                         2);
    }
    assert_true(treated >= 1);
    /* Every treatment halved the chance to order, and the truth says so. Pooled over the
     * experiments (their sessions weighing), the counterfactual orders of the ≥ 2,000 treated
     * sessions at ~3 % are ≥ 60, of which each treated session keeps half (binomial): −0.5 ±
     * 0.065 at most; the flags' random salts move units between arms from run to run, hence
     * bounds at ±3.8 standard deviations. */
    if (pooled_sessions < 2000)
        fail_msg("only %.0f treated sessions in all", pooled_sessions);
    pooled /= pooled_sessions;
    if (!(pooled < -0.25 && pooled > -0.75))
        fail_msg("pooled true conversion effect %.3f over %.0f sessions", pooled, pooled_sessions);
    assert_true(rolled_back >= 1);
    /* Attribution over the simulation: nothing proven, nothing credited, and why; the holdout
     * comparison over the same visitors the simulator counted */
    const cJSON *att = cJSON_GetObjectItemCaseSensitive(ap, "attribution");
    const cJSON *credited = cJSON_GetObjectItemCaseSensitive(att, "attributed");
    assert_float_equal(
        pe_test_json_num(cJSON_GetObjectItemCaseSensitive(credited, "profit"), "lowerBound"), 0, 0);
    assert_non_null(strstr(pe_test_json_str(credited, "reason"), "proven"));
    const cJSON *held = cJSON_GetObjectItemCaseSensitive(att, "holdout");
    const cJSON *held_truth = cJSON_GetObjectItemCaseSensitive(ap, "holdout");
    assert_true(pe_test_json_num(held, "units") > 0);
    assert_float_equal(pe_test_json_num(held, "units"), pe_test_json_num(held_truth, "units"), 0);
    assert_float_equal(pe_test_json_num(held, "exposedUnits"),
                       pe_test_json_num(held_truth, "exposedUnits"), 0);
    const cJSON *what = cJSON_GetObjectItemCaseSensitive(held_truth, "true");
    assert_true(pe_test_json_num(what, "conversionRate") < 0);
    assert_true(pe_test_json_num(what, "profit") < 0);
    assert_float_equal(pe_test_json_num(what, "holdoutProfit"), 0, 0); /* never treated */
    assert_true(pe_test_json_num(cJSON_GetObjectItemCaseSensitive(att, "experiments"),
                                 "rolledBackAutomatically") >= 1);
    /* Every ChangeSet and audit event is stamped with a simulated time (the jobs run five
     * minutes after a simulated midnight), none with the wall clock's today. */
    assert_int_equal(sql_long("SELECT count(*) FROM changesets WHERE store_id = '%s' AND"
                              " greatest(created_at, updated_at, started_at, ended_at) >"
                              " ('%s'::date + 2)::timestamptz",
                              store.id, end_date),
                     0);
    assert_int_equal(sql_long("SELECT count(*) FROM audit_events WHERE store_id = '%s' AND"
                              " occurred_at > ('%s'::date + 2)::timestamptz",
                              store.id, end_date),
                     0);
    assert_true(sql_long("SELECT count(*) FROM audit_events WHERE store_id = '%s' AND actor_type"
                         " = 'system' AND new_state = 'ROLLED_BACK' AND reason <> '%s'",
                         store.id, "") >= 1);
    cJSON_Delete(truth);
    free(truth_path);
    free(scenario);
}

/* The approval expiry runs at the simulated times, for the simulated store only: with nobody
 * approving, the ChangeSets the recommender submits on the first days are archived by the system
 * once PE_APPROVAL_TIMEOUT_HOURS (a week) has passed in simulated time, and none is still
 * waiting past its expiry when the last day's jobs have run; another store's expired ChangeSet
 * is left to that store's own expiry. */
static void test_waiting_changesets_expire(void **state)
{
    (void)state;
    pe_test_tenant_t idle, other;
    pe_test_tenant_make(&idle, fx.pool, "Nobody approves", TZ, "EUR", NULL, NULL);
    pe_test_tenant_make(&other, fx.pool, "Someone else", TZ, "EUR", NULL, NULL);
    char *scenario = write_temp("problem.json", SCENARIO);
    const char *args[] = {
        "simulate", "--store",     idle.id,     "--days", "14",     "--sessions-per-day",
        "1000",     "--seed",      "5",         "--end",  end_date, "--scenario",
        scenario,   "--autopilot", "--approve", "none",   NULL};
    /* the other store's ChangeSet waits past its expiry, by the simulated clock too */
    pe_changeset_config_t cfg = {.db = fx.pool};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
    assert_non_null(svc);
    char *text = pe_test_corpus("changesets/valid/shipping_cost_banner.json");
    cJSON *doc = cJSON_Parse(text);
    free(text);
    pe_changeset_actor_info_t merchant = {PE_CS_BY_MERCHANT, "user", "secret_key"};
    pe_changeset_transition_req_t submit = {.to = "PENDING_APPROVAL", .expected_version = -1};
    cJSON *made = NULL;
    pe_changeset_result_t r;
    assert_int_equal(pe_changeset_create(svc, other.id, doc, &merchant, &made, &r), 0);
    pe_changeset_result_free(&r);
    char id[64];
    snprintf(id, sizeof id, "%s", pe_test_json_str(made, "id"));
    cJSON_Delete(made);
    cJSON_Delete(doc);
    assert_int_equal(pe_changeset_transition(svc, other.id, id, &submit, &merchant, &made, &r), 0);
    pe_changeset_result_free(&r);
    cJSON_Delete(made);
    pe_changeset_service_free(svc);
    free(pe_test_sqlf(fx.conninfo,
                      "UPDATE changesets SET expires_at = '%s'::date - 30 WHERE store_id = '%s'",
                      end_date, other.id));
    cJSON *sum = pe_test_cli_json(fx.conninfo, 0, args);
    assert_int_equal((int)pe_test_json_num(sum, "approved"), 0);
    cJSON_Delete(sum);
    assert_true(sql_long("SELECT count(*) FROM audit_events WHERE store_id = '%s' AND actor_type"
                         " = 'system' AND action = 'expired' AND new_state = 'ARCHIVED'"
                         " AND occurred_at < '%s'::date + 2",
                         idle.id, end_date) >= 1);
    assert_int_equal(sql_long("SELECT count(*) FROM changesets WHERE store_id = '%s' AND status ="
                              " 'PENDING_APPROVAL' AND expires_at <= '%s'::date + 1",
                              idle.id, end_date),
                     0);
    assert_int_equal(sql_long("SELECT count(*) FROM changesets WHERE store_id = '%s' AND status ="
                              " 'PENDING_APPROVAL'",
                              other.id),
                     1);
    free(scenario);
}

static void test_usage(void **state)
{
    (void)state;
    pe_test_cli_t r;
    const char *approve_alone[] = {
        "simulate", "--store", store.id, "--days",    "1",   "--sessions-per-day",
        "10",       "--seed",  "1",      "--approve", "top", NULL};
    pe_test_cli_run(fx.conninfo, approve_alone, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--approve goes with --autopilot"));
    pe_test_cli_free(&r);
    const char *bad_policy[] = {"simulate",           "--store", store.id, "--days", "1",
                                "--sessions-per-day", "10",      "--seed", "1",      "--autopilot",
                                "--approve",          "some",    NULL};
    pe_test_cli_run(fx.conninfo, bad_policy, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--approve: must be top, all or none"));
    pe_test_cli_free(&r);
    const char *over_http[] = {
        "simulate", "--store",     store.id, "--days", "1", "--sessions-per-day", "10", "--seed",
        "1",        "--autopilot", "--via",  "http",   NULL};
    pe_test_cli_run(fx.conninfo, over_http, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--autopilot delivers in-process"));
    pe_test_cli_free(&r);
}

static int group_setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(tmpdir));
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    /* Whole weeks ending on the last Sunday at least three days ago: the simulated calendar
     * ends well before today, so anything stamped with the wall clock would stand out. */
    char *d = pe_test_sql(fx.conninfo, "SELECT to_char(d - extract(isodow FROM d)::int % 7, "
                                       "'YYYY-MM-DD') FROM (SELECT (now() AT TIME ZONE '" TZ
                                       "')::date - 3 AS d) x");
    snprintf(end_date, sizeof end_date, "%s", d);
    free(d);
    pe_test_tenant_make(&store, fx.pool, "Closed loop", TZ, "EUR", NULL, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = pe_test_fixture_close(&fx);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_closed_loop_rolls_back_harm),
        cmocka_unit_test(test_waiting_changesets_expire),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
