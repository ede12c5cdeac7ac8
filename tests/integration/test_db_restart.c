/*
 * test_db_restart.c — a PostgreSQL restart as the server's connections see it, against a
 * profit-engine child process. Restarting the shared test PostgreSQL would break the other test
 * programs, so the restart is what it does to each session: the server ends every session of
 * this program's database (pg_terminate_backend: a FATAL, then the socket closes).
 *
 * Invariants the tests hold the server to:
 *  1. After every session was ended, the next requests all succeed on new connections and
 *     store exactly once: POST /v1/events (more of them than there are collector writers, each
 *     of which held a connection), a secret-key read, a dashboard read with a session cookie.
 *  2. A group commit whose connection is lost before COMMIT is stored, once, on a new
 *     connection: the request answers 200. One lost at COMMIT answers 503 with Retry-After
 *     (the outcome was unknown) and the client's retry stores it once.
 *  3. While PostgreSQL cannot be reached at all, a request that needs credentials checked
 *     answers 503 with Retry-After and the one error shape (never 401, never without
 *     Retry-After), whichever credentials it carries.
 *
 * The server runs with PE_JOBS=none (nothing but the requests and the writers commits).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pe/api.h"
#include "pe/db.h"
#include "pe/tenancy.h"
#include "pe_test.h"

#define WRITERS 2
#define WAIT_MS 30000 /* generous: the suite runs under ASan on two busy cores */

static pe_test_fixture_t fx;
static pe_test_tenant_t shop;
static char session[PE_TOKEN_LEN];

/* ---- helpers --------------------------------------------------------------------------------- */

/* Ends every other session of the test database, as a restart ends each of them, and returns
 * once all of them are gone (pg_terminate_backend waits up to its timeout for that). Returns
 * how many there were. A session may end on its own between the snapshot and its termination
 * (the backend of a connection this program just closed is still listed while it exits):
 * pg_terminate_backend then answers false, so those are waited for instead. */
static long end_all_sessions(void)
{
    char *v = pe_test_sql(
        fx.conninfo,
        "SELECT count(*) || ':' || coalesce(string_agg(pid::text, ',') FILTER (WHERE NOT ended),"
        " '') FROM (SELECT pid, pg_terminate_backend(pid, 30000) AS ended FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()) t");
    long all = -1;
    int list_at = 0;
    assert_non_null(v);
    assert_int_equal(sscanf(v, "%ld:%n", &all, &list_at), 1);
    const char *not_ended = v + list_at;
    if (*not_ended) {
        char sql[4096];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid IN (%s)",
                 not_ended);
        if (!pe_test_sql_wait(fx.conninfo, sql, "0", WAIT_MS))
            fail_msg("sessions %s of %ld did not end within %d ms", not_ended, all, WAIT_MS);
    }
    free(v);
    return all;
}

/* {"events":[one cart event with id event_id, now]} into b. */
static void one_event(pe_buf_t *b, const char *event_id)
{
    char ts[40];
    pe_time_format_rfc3339(pe_now_unix_us(), ts, sizeof ts);
    pe_buf_printf(b,
                  "{\"events\":[{\"eventId\":\"%s\",\"name\":\"storefront.cart.item_added\","
                  "\"timestamp\":\"%s\",\"sessionId\":\"restart\",\"anonymousId\":\"anon-1\","
                  "\"properties\":{\"productId\":\"sku-1\",\"quantity\":1,\"price\":9.5,"
                  "\"currency\":\"EUR\"}}]}",
                  event_id, ts);
}

static long post_events(const pe_test_server_t *s, const char *body, pe_test_response_t *r)
{
    return pe_test_call(s, "POST", "/v1/events", body, shop.pk_auth, r);
}

static long get(const pe_test_server_t *s, const char *path, const char *header_line,
                pe_test_response_t *r)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->base_url, path);
    const char *headers[] = {header_line, NULL};
    assert_int_equal(pe_test_http("GET", url, NULL, header_line ? headers : NULL, r), 0);
    return r->status;
}

/* Posts one new event and expects 200 {"accepted":1}; its id goes to id. */
static void expect_stored(const char *what, int i, char id[37])
{
    pe_buf_t b = PE_BUF_INIT;
    pe_test_response_t r;
    pe_test_uuid(id);
    one_event(&b, id);
    if (post_events(&fx.server, b.data, &r) != 200 || !strstr(r.body.data, "\"accepted\":1"))
        fail_msg("%s: POST /v1/events #%d: %ld %.300s (log: %s)", what, i + 1, r.status,
                 r.body.data ? r.body.data : "", fx.server.log_path);
    pe_test_response_free(&r);
    pe_buf_free(&b);
}

static long events_with_id(const char *id)
{
    return pe_test_sql_long(fx.conninfo,
                            "SELECT count(*) FROM events WHERE store_id = "
                            "'%s' AND event_id = '%s'",
                            shop.id, id);
}

static void *post_one(void *arg)
{
    (void)arg;
    char id[37];
    expect_stored("warm-up", 0, id);
    return NULL;
}

/* Until each collector writer holds a connection (its last statement a COMMIT; nothing else of
 * this server commits), posts bursts of concurrent batches. */
static void warm_up_writers(void)
{
    int64_t deadline = pe_now_mono_us() + (int64_t)WAIT_MS * 1000;
    while (pe_test_sql_long(
               fx.conninfo,
               "SELECT count(*) FROM pg_stat_activity WHERE datname = "
               "current_database()"
               " AND pid <> pg_backend_pid() AND state = 'idle' AND query = 'COMMIT'") < WRITERS) {
        if (pe_now_mono_us() > deadline)
            fail_msg("the %d writers did not all commit within %d ms", WRITERS, WAIT_MS);
        pthread_t t[2 * WRITERS];
        for (int i = 0; i < 2 * WRITERS; i++)
            assert_int_equal(pthread_create(&t[i], NULL, post_one, NULL), 0);
        for (int i = 0; i < 2 * WRITERS; i++)
            pthread_join(t[i], NULL);
    }
}

/* A 503 with Retry-After (a positive number of seconds) and {"error":{"code","message"}}. */
static void expect_503_retry_after(const char *what, const pe_test_response_t *r, const char *code)
{
    char retry_after[32];
    if (r->status != 503)
        fail_msg("%s: status %ld, want 503: %.300s", what, r->status,
                 r->body.data ? r->body.data : "");
    pe_test_response_header(r, "Retry-After", retry_after, sizeof retry_after);
    if (atoi(retry_after) < 1)
        fail_msg("%s: 503 without a Retry-After (\"%s\")", what, retry_after);
    cJSON *j = pe_test_response_json(r);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    assert_true(cJSON_IsString(c) && cJSON_IsString(m) && *m->valuestring);
    assert_string_equal(c->valuestring, code);
    cJSON_Delete(j);
}

/* ---- setup ------------------------------------------------------------------------------------
 */

static int setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_INFO, 1);
    pe_test_tenant_make(&shop, fx.pool, "Restart Shop", "UTC", "EUR", "restart@example.com",
                        "correct horse battery");
    assert_int_equal(pe_tenancy_session_create(fx.pool, shop.user, session), 0);
    /* no session of this program's own: end_all_sessions counts the server's */
    pe_db_pool_free(fx.pool);
    fx.pool = NULL;
    static const char *const env[] = {"PE_COLLECTOR_WRITERS=2", "PE_DB_POOL_SIZE=6", "PE_JOBS=none",
                                      NULL};
    pe_test_server_start(&fx.server, fx.conninfo, env);
    return 0;
}

/* ---- invariant 1 ------------------------------------------------------------------------------
 */

static void test_ingest_survives_a_restart(void **state)
{
    (void)state;
    char ids[WRITERS + 3][37];
    warm_up_writers();
    assert_true(end_all_sessions() >= WRITERS);
    /* one more than the writers, and then some: each writer meets its dead connection once */
    for (int i = 0; i < WRITERS + 3; i++)
        expect_stored("after the restart", i, ids[i]);
    for (int i = 0; i < WRITERS + 3; i++)
        assert_int_equal(events_with_id(ids[i]), 1);

    /* and again, right after the first restart's new connections were made */
    assert_true(end_all_sessions() >= 1);
    for (int i = 0; i < WRITERS + 3; i++)
        expect_stored("after a second restart", i, ids[i]);
    for (int i = 0; i < WRITERS + 3; i++)
        assert_int_equal(events_with_id(ids[i]), 1);
}

static void test_reads_survive_a_restart(void **state)
{
    (void)state;
    char path[256], cookie[128];
    const char *bearer = shop.sk_auth;
    snprintf(cookie, sizeof cookie, "Cookie: %s=%s", PE_SESSION_COOKIE, session);
    pe_test_response_t r;

    /* every pooled connection in use once, so the restart finds them all idle in the pool */
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            assert_true(end_all_sessions() >= 1);
        for (int i = 0; i < 8; i++) {
            snprintf(path, sizeof path, "/api/v1/stores/%s", shop.id);
            if (get(&fx.server, path, bearer, &r) != 200 || !strstr(r.body.data, shop.id))
                fail_msg("round %d: secret-key read #%d: %ld %.300s", round, i + 1, r.status,
                         r.body.data ? r.body.data : "");
            pe_test_response_free(&r);
            snprintf(path, sizeof path, "/api/v1/stores/%s/metrics/overview", shop.id);
            if (get(&fx.server, path, cookie, &r) != 200)
                fail_msg("round %d: dashboard read #%d: %ld %.300s", round, i + 1, r.status,
                         r.body.data ? r.body.data : "");
            pe_test_response_free(&r);
        }
    }
}

/* ---- invariant 2 ------------------------------------------------------------------------------
 */

/* The first time `table` gets rows, the session storing them is ended by the server itself
 * (statement trigger: during the COPY; deferred constraint trigger: at COMMIT). A sequence
 * counts the firings: it is not rolled back with the transaction. */
static void kill_first_commit(const char *name, const char *table, bool at_commit)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "CREATE SEQUENCE %s", name);
    free(pe_test_sql(fx.conninfo, sql));
    snprintf(sql, sizeof sql,
             "CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
             " IF nextval('%s') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid());"
             " PERFORM pg_sleep(5); END IF; RETURN NULL; END $$",
             name, name);
    free(pe_test_sql(fx.conninfo, sql));
    if (at_commit)
        snprintf(sql, sizeof sql,
                 "CREATE CONSTRAINT TRIGGER %s AFTER INSERT ON %s DEFERRABLE INITIALLY DEFERRED"
                 " FOR EACH ROW EXECUTE FUNCTION %s()",
                 name, table, name);
    else
        snprintf(sql, sizeof sql,
                 "CREATE TRIGGER %s AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s()",
                 name, table, name);
    free(pe_test_sql(fx.conninfo, sql));
}

static void drop_kill(const char *name, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP TRIGGER %s ON %s", name, table);
    free(pe_test_sql(fx.conninfo, sql));
    snprintf(sql, sizeof sql, "DROP FUNCTION %s()", name);
    free(pe_test_sql(fx.conninfo, sql));
    snprintf(sql, sizeof sql, "DROP SEQUENCE %s", name);
    free(pe_test_sql(fx.conninfo, sql));
}

static void test_lost_before_commit_is_stored_on_a_new_connection(void **state)
{
    (void)state;
    char id[37];
    kill_first_commit("pe_test_kill_copy", "event_keys", false);
    expect_stored("connection lost during the COPY", 0, id);
    assert_int_equal(events_with_id(id), 1);
    assert_int_equal(pe_test_sql_long(fx.conninfo, "SELECT last_value FROM pe_test_kill_copy"),
                     2); /* killed, retried */
    drop_kill("pe_test_kill_copy", "event_keys");
}

static void test_lost_at_commit_is_not_retried(void **state)
{
    (void)state;
    char id[37];
    pe_buf_t b = PE_BUF_INIT;
    pe_test_response_t r;
    kill_first_commit("pe_test_kill_commit", "event_keys", true);
    pe_test_uuid(id);
    one_event(&b, id);
    /* the outcome of a COMMIT that lost its connection is unknown: the client is told to retry */
    post_events(&fx.server, b.data, &r);
    expect_503_retry_after("connection lost at COMMIT", &r, "unavailable");
    pe_test_response_free(&r);
    assert_int_equal(pe_test_sql_long(fx.conninfo, "SELECT last_value FROM pe_test_kill_commit"),
                     1); /* not retried */
    assert_int_equal(events_with_id(id), 0);
    /* the client's retry of the same batch: stored once */
    assert_int_equal(post_events(&fx.server, b.data, &r), 200);
    pe_test_response_free(&r);
    assert_int_equal(post_events(&fx.server, b.data, &r), 200);
    pe_test_response_free(&r);
    assert_int_equal(events_with_id(id), 1);
    pe_buf_free(&b);
    drop_kill("pe_test_kill_commit", "event_keys");
}

/* ---- invariant 3 ------------------------------------------------------------------------------
 */

static void test_unreachable_database_answers_503_with_retry_after(void **state)
{
    (void)state;
    char url[128], path[256], cookie[128], body[64];
    const char *bearer = shop.sk_auth;
    pe_test_server_t s;
    pe_test_response_t r;
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%u/nowhere",
             (unsigned)pe_test_free_port());
    pe_test_server_start(&s, url, NULL);

    snprintf(path, sizeof path, "/api/v1/stores/%s", shop.id);
    get(&s, path, bearer, &r);
    expect_503_retry_after("secret key, PostgreSQL down", &r, "unavailable");
    assert_non_null(strstr(r.body.data, "cannot check credentials right now"));
    pe_test_response_free(&r);

    snprintf(cookie, sizeof cookie, "Cookie: %s=%s", PE_SESSION_COOKIE, session);
    get(&s, path, cookie, &r);
    expect_503_retry_after("session, PostgreSQL down", &r, "unavailable");
    pe_test_response_free(&r);

    snprintf(body, sizeof body, "{\"events\":[]}");
    post_events(&s, body, &r);
    expect_503_retry_after("publishable key, PostgreSQL down", &r, "unavailable");
    pe_test_response_free(&r);

    /* and readiness says so the same way */
    get(&s, "/readyz", NULL, &r);
    assert_int_equal(r.status, 503);
    char retry_after[32];
    assert_true(atoi(pe_test_response_header(&r, "Retry-After", retry_after, sizeof retry_after)) >=
                1);
    pe_test_response_free(&r);
    assert_int_equal(pe_test_server_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingest_survives_a_restart),
        cmocka_unit_test(test_reads_survive_a_restart),
        cmocka_unit_test(test_lost_before_commit_is_stored_on_a_new_connection),
        cmocka_unit_test(test_lost_at_commit_is_not_retried),
        cmocka_unit_test(test_unreachable_database_answers_503_with_retry_after),
    };
    return cmocka_run_group_tests(tests, setup, pe_test_fixture_teardown);
}
