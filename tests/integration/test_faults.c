/*
 * test_faults.c — `kill -9` of the server in the middle of sustained ingest (issue 22, faults):
 * storefront clients that behave like the SDK — each batch of events sent again, with the same
 * eventIds, until it is acknowledged — while the server is killed with SIGKILL and a new one
 * started on the same database, PE_FAULT_KILLS times (3 here; bench/faults/run runs 10).
 *
 * What it holds the server to:
 *  1. Nothing acknowledged is lost: every batch answered 200 is in PostgreSQL, every event of it.
 *  2. Nothing is counted twice: a batch stored and then sent again (its answer lost with the
 *     killed server) is stored once — count(*) equals count(DISTINCT eventId) equals the events
 *     sent.
 *  3. The clients all finish: a killed server costs retries, never a lost batch.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pe_test.h"

#define CLIENTS        4
#define BATCHES        60 /* per client */
#define EVENTS         20 /* per batch */
#define MAX_ATTEMPTS   3000
#define RETRY_PAUSE_MS 20

static pe_test_fixture_t fx;
static pe_test_tenant_t shop;
static pthread_mutex_t server_mu = PTHREAD_MUTEX_INITIALIZER;
static char base_url[64];
static atomic_int acked, retries;
static char client_error[512]; /* the first client failure (cmocka asserts on the main thread) */
static pthread_mutex_t error_mu = PTHREAD_MUTEX_INITIALIZER;

static void client_failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void client_failed(const char *fmt, ...)
{
    pthread_mutex_lock(&error_mu);
    if (!client_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(client_error, sizeof client_error, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&error_mu);
}

static void current_url(char out[64])
{
    pthread_mutex_lock(&server_mu);
    memcpy(out, base_url, 64);
    pthread_mutex_unlock(&server_mu);
}

/* Client c's batch b: EVENTS page views with ids that name them. */
static void batch_body(pe_buf_t *b, int c, int batch)
{
    char ts[40];
    pe_time_format_rfc3339(pe_now_unix_us(), ts, sizeof ts);
    pe_buf_reset(b);
    pe_buf_puts(b, "{\"events\":[");
    for (int e = 0; e < EVENTS; e++)
        pe_buf_printf(b,
                      "%s{\"eventId\":\"00000000-0000-4000-8000-%04x%04x%04x\","
                      "\"name\":\"storefront.page.viewed\",\"timestamp\":\"%s\","
                      "\"sessionId\":\"s-%d-%d\",\"anonymousId\":\"a-%d\","
                      "\"context\":{\"page\":{\"path\":\"/p/%d\"}}}",
                      e ? "," : "", (unsigned)c, (unsigned)batch, (unsigned)e, ts, c, batch, c, e);
    pe_buf_puts(b, "]}");
}

static void *client(void *arg)
{
    int c = (int)(intptr_t)arg;
    pe_buf_t body = PE_BUF_INIT;
    char auth[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", shop.pk);
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    for (int batch = 0; batch < BATCHES && !client_error[0]; batch++) {
        batch_body(&body, c, batch);
        for (int attempt = 0;; attempt++) {
            if (attempt == MAX_ATTEMPTS) {
                client_failed("client %d: batch %d never acknowledged", c, batch);
                break;
            }
            char url[128], base[64];
            current_url(base);
            snprintf(url, sizeof url, "%s/v1/events", base);
            pe_test_response_t r;
            int rc = pe_test_http("POST", url, body.data, headers, &r);
            bool ok = rc == 0 && r.status == 200 && r.body.data &&
                      strstr(r.body.data, "\"accepted\":20,\"rejected\":[]");
            bool wrong = rc == 0 && (r.status == 200 ? !ok : r.status != 503);
            if (wrong)
                client_failed("client %d batch %d: status %ld: %.300s", c, batch, r.status,
                              r.body.data ? r.body.data : "");
            pe_test_response_free(&r);
            if (wrong)
                break;
            if (ok) {
                atomic_fetch_add(&acked, 1);
                break;
            }
            atomic_fetch_add(&retries, 1);
            pe_test_sleep_ms(RETRY_PAUSE_MS);
        }
    }
    pe_buf_free(&body);
    return NULL;
}

static void start_server(void)
{
    pe_test_server_start(&fx.server, fx.conninfo,
                         (const char *const[]){"PE_JOBS=none", "PE_RATE_KEY=0", NULL});
    pthread_mutex_lock(&server_mu);
    memcpy(base_url, fx.server.base_url, sizeof base_url);
    pthread_mutex_unlock(&server_mu);
}

static void test_kill_during_ingest(void **state)
{
    (void)state;
    const char *env = getenv("PE_FAULT_KILLS");
    int kills = env ? atoi(env) : 3;
    if (kills < 1 || kills > 100)
        fail_msg("PE_FAULT_KILLS: 1..100");
    pthread_t t[CLIENTS];
    for (int c = 0; c < CLIENTS; c++)
        assert_int_equal(pthread_create(&t[c], NULL, client, (void *)(intptr_t)c), 0);
    const int total = CLIENTS * BATCHES;
    for (int k = 1; k <= kills; k++) {
        /* the k-th kill once k/(kills+1) of the batches are acknowledged: mid-stream */
        while (atomic_load(&acked) < total * k / (kills + 1) && !client_error[0])
            pe_test_sleep_ms(5);
        kill(fx.server.pid, SIGKILL);
        int status = 0;
        waitpid(fx.server.pid, &status, 0);
        fx.server.pid = 0;
        start_server();
    }
    for (int c = 0; c < CLIENTS; c++)
        pthread_join(t[c], NULL);
    if (client_error[0])
        fail_msg("%s", client_error);
    assert_int_equal(atomic_load(&acked), total);
    char *counts = pe_test_sqlf(fx.conninfo,
                                "SELECT count(*) || ' ' || count(DISTINCT event_id) FROM events"
                                " WHERE store_id = '%s'",
                                shop.id);
    char want[32];
    snprintf(want, sizeof want, "%d %d", total * EVENTS, total * EVENTS);
    print_message("%d kill -9 during ingest: %d batches of %d acknowledged after %d retries; "
                  "stored (events, distinct eventIds): %s, sent %d\n",
                  kills, total, EVENTS, atomic_load(&retries), counts, total * EVENTS);
    assert_string_equal(counts, want);
    free(counts);
}

static int group_setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    pe_test_tenant_make(&shop, fx.pool, "Killed", "UTC", "EUR", NULL, NULL);
    start_server();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_during_ingest),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
