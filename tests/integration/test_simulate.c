/*
 * test_simulate.c — `profit-engine simulate` against a private, migrated database (and a child
 * server for --via http): determinism, the truth against what PostgreSQL holds, the two delivery
 * paths, a scenario override's visible effect, and refusals that name what is wrong.
 *
 * Invariants the tests hold the command to:
 *  1. Same seed and options, two runs: byte-identical truth files and identical stored events
 *     (every column but the store and the receive time), also when one run goes over HTTP
 *     (/v1/import with a key minted and revoked for the run) and the other in-process.
 *  2. The truth is what the database holds: per store-local day, sessions, sessions reaching
 *     each funnel step, orders and revenue computed by SQL over events equal the truth file's;
 *     no session crosses a local midnight; the catalogue is in products.
 *  3. An override changes its segment's drop-off (mobile checkout → shipping) and leaves other
 *     segments' sessions alone.
 *  4. A bad scenario, bad options, an unknown store, or a publishable key asked for more than the
 *     last 7 days: exit 2 with a message naming the field, and nothing stored.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pe/db.h"
#include "pe/tenancy.h"
#include "pe_test.h"

#define DAYS     "4"
#define SESSIONS "150"
#define SEED     "4242"
#define TZ       "Europe/Berlin"

static pe_test_fixture_t fx;
static char end_date[16];
static char tmpdir[] = "/tmp/pe-test-simulate-XXXXXX";

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    pe_buf_t b = PE_BUF_INIT;
    char chunk[4096];
    size_t n;
    if (!f)
        return strdup("");
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(pe_buf_append(&b, chunk, n), 0);
    fclose(f);
    char *s = pe_buf_steal(&b);
    return s ? s : strdup("");
}

/* Runs `profit-engine simulate ARGS…` (NULL-terminated) on the test database. */
static void simulate(pe_test_cli_t *r, const char *const *args)
{
    const char *argv[32] = {"simulate"};
    size_t n = 1;
    for (size_t i = 0; args[i]; i++) {
        assert_true(n < PE_ARRAY_LEN(argv) - 1);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    pe_test_cli_run(fx.conninfo, argv, r);
}

static void expect_ok(const pe_test_cli_t *r)
{
    if (r->status != 0)
        fail_msg("simulate exited %d\nstdout: %s\nstderr: %s", r->status, r->out, r->err);
    cJSON *j = cJSON_Parse(r->out);
    assert_non_null(j);
    assert_true(cJSON_GetObjectItem(j, "events")->valuedouble > 1000);
    assert_true(cJSON_GetObjectItem(j, "eventsPerSecond")->valuedouble > 0);
    cJSON_Delete(j);
}

/* One value of a parameterised query (the first column of the first row), malloc'ed. */
static char *query1(const char *sql, int n, const char *const *params)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    assert_int_equal(pe_db_acquire(fx.pool, 5000, &conn), 0);
    if (pe_db_exec(conn, sql, n, params, &res) != 0)
        fail_msg("%s: %s", sql, pe_db_conn_error(conn));
    assert_int_equal(pe_db_result_rows(res), 1);
    char *v = strdup(pe_db_result_get(res, 0, 0));
    pe_db_result_free(res);
    pe_db_release(fx.pool, conn);
    return v;
}

static long query_long(const char *sql, int n, const char *const *params)
{
    char *v = query1(sql, n, params);
    long x = strtol(v, NULL, 10);
    free(v);
    return x;
}

static char *truth_path(const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s.json", tmpdir, name) > 0);
    return p;
}

/* Runs seed SEED over DAYS days ending end_date into store s. */
static void run_store(const pe_test_tenant_t *s, const char *via, const char *truth,
                      const char *scenario)
{
    const char *args[24] = {"--store", s->id,    "--days", DAYS,    "--sessions-per-day",
                            SESSIONS,  "--seed", SEED,     "--end", end_date,
                            "--via",   via};
    size_t n = 12;
    if (truth) {
        args[n++] = "--truth";
        args[n++] = truth;
    }
    if (scenario) {
        args[n++] = "--scenario";
        args[n++] = scenario;
    }
    if (strcmp(via, "http") == 0) {
        args[n++] = "--url";
        args[n++] = fx.server.base_url;
    }
    args[n] = NULL;
    pe_test_cli_t r;
    simulate(&r, args);
    expect_ok(&r);
    pe_test_cli_free(&r);
}

/* Events of a and b that differ in anything but store and receive time (both directions). */
static long differing_events(const pe_test_tenant_t *a, const pe_test_tenant_t *b)
{
    static const char sql[] =
        "WITH x AS (SELECT event_id, occurred_at, name, funnel_step, session_id, anonymous_id, "
        "       user_id, client_ts, page_path, utm_source, utm_medium, utm_campaign, device_type, "
        "       context, properties, custom FROM events WHERE store_id = $1), "
        "     y AS (SELECT event_id, occurred_at, name, funnel_step, session_id, anonymous_id, "
        "       user_id, client_ts, page_path, utm_source, utm_medium, utm_campaign, device_type, "
        "       context, properties, custom FROM events WHERE store_id = $2) "
        "SELECT (SELECT count(*) FROM (SELECT * FROM x EXCEPT ALL SELECT * FROM y) d1) + "
        "       (SELECT count(*) FROM (SELECT * FROM y EXCEPT ALL SELECT * FROM x) d2)";
    const char *params[] = {a->id, b->id};
    return query_long(sql, 2, params);
}

static long event_count(const pe_test_tenant_t *s)
{
    const char *params[] = {s->id};
    return query_long("SELECT count(*) FROM events WHERE store_id = $1", 1, params);
}

static cJSON *read_json(const char *path)
{
    char *text = slurp(path);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j)
        fail_msg("%s is not JSON", path);
    return j;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static pe_test_tenant_t s1, s2, s3, s4;

static void test_deterministic_and_true(void **state)
{
    (void)state;
    char *t1 = truth_path("s1"), *t2 = truth_path("s2");
    run_store(&s1, "direct", t1, NULL);
    run_store(&s2, "direct", t2, NULL);
    char *a = slurp(t1), *b = slurp(t2);
    assert_true(strlen(a) > 1000);
    assert_string_equal(a, b); /* byte-identical truth */
    free(a);
    free(b);
    long n = event_count(&s1);
    assert_true(n > 1000);
    assert_int_equal(n, event_count(&s2));
    assert_int_equal(differing_events(&s1, &s2), 0);

    /* The truth against SQL over what PostgreSQL holds, per store-local day. */
    cJSON *truth = read_json(t1);
    const cJSON *days = cJSON_GetObjectItem(truth, "days");
    assert_int_equal(cJSON_GetArraySize(days), atoi(DAYS));
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(days, atoi(DAYS) - 1), "date")->valuestring,
        end_date);
    static const char sql[] =
        "SELECT concat_ws(',', count(DISTINCT session_id), "
        "  count(DISTINCT session_id) FILTER (WHERE funnel_step = 1), "
        "  count(DISTINCT session_id) FILTER (WHERE funnel_step = 2), "
        "  count(DISTINCT session_id) FILTER (WHERE funnel_step = 3), "
        "  count(DISTINCT session_id) FILTER (WHERE funnel_step = 4), "
        "  count(DISTINCT session_id) FILTER (WHERE funnel_step = 5), "
        "  count(*) FILTER (WHERE name = 'checkout.order.completed'), "
        "  coalesce(sum((properties->>'value')::numeric) "
        "           FILTER (WHERE name = 'checkout.order.completed'), 0)::numeric(14,2), "
        "  count(*)) "
        "  FROM events WHERE store_id = $1 "
        "   AND (occurred_at AT TIME ZONE '" TZ "')::date = $2::date";
    long total_orders = 0;
    const cJSON *day;
    cJSON_ArrayForEach(day, days)
    {
        char want[256];
#define N(k) (long)cJSON_GetObjectItem(day, k)->valuedouble
        snprintf(want, sizeof want, "%ld,%ld,%ld,%ld,%ld,%ld,%ld,%.2f,%ld", N("sessions"),
                 N("cart"), N("checkout"), N("shipping"), N("payment"), N("confirmation"),
                 N("orders"), cJSON_GetObjectItem(day, "revenue")->valuedouble, N("events"));
        total_orders += N("orders");
#undef N
        const char *params[] = {s1.id, cJSON_GetObjectItem(day, "date")->valuestring};
        char *got = query1(sql, 2, params);
        if (strcmp(got, want) != 0)
            fail_msg("day %s: database %s, truth %s", params[1], got, want);
        free(got);
    }
    assert_true(total_orders > 5);
    /* No session crosses a store-local midnight. */
    const char *params[] = {s1.id};
    assert_int_equal(query_long("SELECT count(*) FROM (SELECT session_id FROM events "
                                "WHERE store_id = $1 GROUP BY session_id HAVING "
                                "count(DISTINCT (occurred_at AT TIME ZONE '" TZ "')::date) > 1) x",
                                1, params),
                     0);
    /* The catalogue went through the catalogue module, and orders use its prices. */
    assert_int_equal(query_long("SELECT count(*) FROM products WHERE store_id = $1 AND sku LIKE "
                                "'SIM-%'",
                                1, params),
                     40);
    assert_int_equal(query_long("SELECT count(*) FROM events e, jsonb_array_elements("
                                "e.properties->'items') i LEFT JOIN products p ON p.store_id = $1 "
                                "AND p.sku = i->>'productId' WHERE e.store_id = $1 AND "
                                "e.name = 'checkout.order.completed' AND (p.sku IS NULL OR "
                                "p.price <> (i->>'price')::numeric)",
                                1, params),
                     0);
    cJSON_Delete(truth);
    free(t1);
    free(t2);
}

static void test_http_matches_direct(void **state)
{
    (void)state;
    char *t3 = truth_path("s3"), *t1 = truth_path("s1");
    run_store(&s3, "http", t3, NULL);
    char *a = slurp(t1), *b = slurp(t3);
    assert_string_equal(a, b);
    free(a);
    free(b);
    assert_int_equal(event_count(&s3), event_count(&s1));
    assert_int_equal(differing_events(&s1, &s3), 0);
    /* A secret key was minted for the run and revoked at its end. */
    const char *params[] = {s3.id};
    assert_int_equal(query_long("SELECT count(*) FROM api_keys WHERE store_id = $1 AND kind = "
                                "'secret' AND revoked_at IS NOT NULL",
                                1, params),
                     1);
    free(t1);
    free(t3);
}

/* Mobile sessions' checkout → shipping conversion in store s. */
static double shipping_conversion(const pe_test_tenant_t *s, const char *device, long *checkout)
{
    static const char sql[] =
        "SELECT concat_ws(',', count(DISTINCT session_id) FILTER (WHERE funnel_step = 2), "
        "                      count(DISTINCT session_id) FILTER (WHERE funnel_step = 3)) "
        "  FROM events WHERE store_id = $1 AND device_type = $2";
    const char *params[] = {s->id, device};
    char *v = query1(sql, 2, params);
    long c = 0, sh = 0;
    assert_int_equal(sscanf(v, "%ld,%ld", &c, &sh), 2);
    free(v);
    *checkout = c;
    return c ? (double)sh / (double)c : 0;
}

static void test_scenario_override_changes_its_segment(void **state)
{
    (void)state;
    char scenario[256];
    snprintf(scenario, sizeof scenario, "%s/mobile-shipping.json", tmpdir);
    FILE *f = fopen(scenario, "w");
    assert_non_null(f);
    fputs("{\"description\":\"mobile visitors drop three times as often at shipping\","
          "\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"shipping\","
          "\"dropMultiplier\":3}]}",
          f);
    fclose(f);
    char *t4 = truth_path("s4");
    run_store(&s4, "direct", t4, scenario);
    long base_checkout = 0, prob_checkout = 0, d1 = 0, d2 = 0;
    double base = shipping_conversion(&s1, "mobile", &base_checkout);
    double prob = shipping_conversion(&s4, "mobile", &prob_checkout);
    /* The same sessions reach checkout; far fewer of the mobile ones go on to shipping. */
    assert_int_equal(base_checkout, prob_checkout);
    assert_true(base_checkout >= 30);
    if (!(base > 0.6 && prob < base - 0.2))
        fail_msg("mobile checkout→shipping: %.3f without, %.3f with the override", base, prob);
    /* Desktop sessions are untouched. */
    assert_true(shipping_conversion(&s1, "desktop", &d1) ==
                shipping_conversion(&s4, "desktop", &d2));
    assert_int_equal(d1, d2);
    /* The truth file carries the scenario in force and the override's own counts. */
    cJSON *truth = read_json(t4);
    const cJSON *ov = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(truth, "scenario"), "overrides"), 0);
    assert_string_equal(cJSON_GetObjectItem(ov, "step")->valuestring, "shipping");
    const cJSON *counts = cJSON_GetArrayItem(cJSON_GetObjectItem(truth, "overrides"), 0);
    assert_int_equal((long)cJSON_GetObjectItem(counts, "checkout")->valuedouble, prob_checkout);
    cJSON_Delete(truth);
    free(t4);
}

static void expect_refusal(const char *const *args, const char *want)
{
    pe_test_cli_t r;
    simulate(&r, args);
    if (r.status != 2 || !strstr(r.err, want))
        fail_msg("exit %d, stderr '%s'; want exit 2 and '%s'", r.status, r.err, want);
    pe_test_cli_free(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    pe_test_tenant_t s5;
    pe_test_tenant_make(&s5, fx.pool, "Refusals", TZ, "EUR", NULL, NULL);
    static const struct {
        const char *doc, *want;
    } scenarios[] = {
        {"{\"overrides\":[{\"segment\":{\"device\":\"phone\"},\"step\":\"shipping\","
         "\"dropMultiplier\":1.4}]}",
         "overrides[0].segment.device: must be one of desktop, mobile, tablet, other"},
        {"{\"overrides\":[{\"segment\":{\"device\":\"mobile\"},\"step\":\"shipping\","
         "\"dropMultiplier\":-2}]}",
         "overrides[0].dropMultiplier: must be a number 0..100"},
        {"{\"funnel\":{\"cart\":2}}", "funnel.cart: must be a probability 0..1"},
        {"{\"overrides\":[{\"segment\":{\"utmCampaign\":\"x\"},\"paymentMethods\":{\"cash\":1}}]}",
         "overrides[0].paymentMethods.cash: unknown name"},
        {"not json", "scenario: not valid JSON"},
    };
    char path[256];
    snprintf(path, sizeof path, "%s/bad.json", tmpdir);
    for (size_t i = 0; i < PE_ARRAY_LEN(scenarios); i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(scenarios[i].doc, f);
        fclose(f);
        const char *args[] = {"--store",    s5.id,    "--days", "2",     "--sessions-per-day",
                              "10",         "--seed", "1",      "--via", "direct",
                              "--scenario", path,     NULL};
        expect_refusal(args, scenarios[i].want);
    }
    const char *missing[] = {
        "--store", s5.id,    "--days", "2",          "--sessions-per-day",
        "10",      "--seed", "1",      "--scenario", "/nonexistent/scenario.json",
        NULL};
    expect_refusal(missing, "--scenario /nonexistent/scenario.json");
    const char *days0[] = {"--store", s5.id,    "--days", "0", "--sessions-per-day",
                           "10",      "--seed", "1",      NULL};
    expect_refusal(days0, "--days: must be an integer 1..400");
    const char *via[] = {"--store", s5.id,   "--days", "1", "--sessions-per-day", "10", "--seed",
                         "1",       "--via", "pigeon", NULL};
    expect_refusal(via, "--via: must be http or direct");
    const char *nostore[] = {"--store",
                             "00000000-0000-4000-8000-000000000000",
                             "--days",
                             "1",
                             "--sessions-per-day",
                             "10",
                             "--seed",
                             "1",
                             NULL};
    expect_refusal(nostore, "no such store");
    const char *end[] = {"--store", s5.id,    "--days", "1",     "--sessions-per-day",
                         "10",      "--seed", "1",      "--end", "2025-13-01",
                         NULL};
    expect_refusal(end, "--end");
    /* A publishable key reaches only the last 7 days. */
    const char *pk[] = {"--store", s5.id,   "--days", "30",    "--sessions-per-day", "10", "--seed",
                        "1",       "--key", s5.pk,    "--url", fx.server.base_url,   NULL};
    expect_refusal(pk, "only the last 7 days");
    /* Nothing was stored by any refusal. */
    assert_int_equal(event_count(&s5), 0);
    const char *params[] = {s5.id};
    assert_int_equal(query_long("SELECT count(*) FROM products WHERE store_id = $1", 1, params), 0);
}

static void test_publishable_key_live_window(void **state)
{
    (void)state;
    pe_test_tenant_t s6;
    pe_test_tenant_make(&s6, fx.pool, "Live", TZ, "EUR", NULL, NULL);
    /* Today and yesterday through /v1/events (skew-corrected storefront path). */
    const char *args[] = {
        "--store", s6.id,   "--days", "2",     "--sessions-per-day", "300", "--seed",
        "9",       "--key", s6.pk,    "--url", fx.server.base_url,   NULL};
    pe_test_cli_t r;
    simulate(&r, args);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    long events = (long)cJSON_GetObjectItem(j, "events")->valuedouble;
    assert_true(events > 100);
    assert_int_equal(event_count(&s6), events);
    /* Nothing in the future (sessions ending after "now" are left out). */
    const char *params[] = {s6.id};
    assert_int_equal(query_long("SELECT count(*) FROM events WHERE store_id = $1 AND "
                                "occurred_at > now()",
                                1, params),
                     0);
    cJSON_Delete(j);
    pe_test_cli_free(&r);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(tmpdir));
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    /* A past window of four whole local days, Thursday to Sunday, ending on the last Sunday at
     * least two days ago by the database's clock (the one the command reads). Traffic depends on
     * the weekday, so a window that moved with the calendar drew other sessions every day and
     * the thresholds below held on some days only; aligned to the week, every run simulates the
     * same sessions at other dates. */
    char *d = pe_test_sql(fx.conninfo, "SELECT to_char(d - extract(isodow FROM d)::int % 7, "
                                       "'YYYY-MM-DD') FROM (SELECT (now() AT TIME ZONE '" TZ
                                       "')::date - 2 AS d) x");
    snprintf(end_date, sizeof end_date, "%s", d);
    free(d);
    pe_test_tenant_make(&s1, fx.pool, "Sim 1", TZ, "EUR", NULL, NULL);
    pe_test_tenant_make(&s2, fx.pool, "Sim 2", TZ, "EUR", NULL, NULL);
    pe_test_tenant_make(&s3, fx.pool, "Sim 3", TZ, "EUR", NULL, NULL);
    pe_test_tenant_make(&s4, fx.pool, "Sim 4", TZ, "EUR", NULL, NULL);
    pe_test_server_start(&fx.server, fx.conninfo, (const char *const[]){"PE_HTTP_THREADS=2", NULL});
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
        cmocka_unit_test(test_deterministic_and_true),
        cmocka_unit_test(test_http_matches_direct),
        cmocka_unit_test(test_scenario_override_changes_its_segment),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_publishable_key_live_window),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
