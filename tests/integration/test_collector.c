/*
 * test_collector.c — POST /v1/events end to end against a child server and a private database:
 * storage of every column, idempotent retries, per-event rejections with dead letters, clock-skew
 * correction and the 7-day / 1-hour window, store mismatch, request limits, keys, sendBeacon's
 * text/plain with ?key=, 503 + Retry-After when the commit fails (and a retry that then
 * succeeds once), group commit under concurrency, imports of history (/v1/import), exact JSON
 * values, the publishable-key cache's revocation; and, in-process, the dead-letter bound and
 * writers that keep running when another emptied the queue.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pe/collector.h"
#include "pe/tenancy.h"
#include "pe_test.h"

static pe_test_fixture_t fx;
static pe_test_tenant_t shop_a, shop_b;

static int setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_INFO, 1);
    pe_test_tenant_make(&shop_a, fx.pool, "Shop A", "UTC", "EUR", NULL, NULL);
    pe_test_tenant_make(&shop_b, fx.pool, "Shop B", "UTC", "EUR", NULL, NULL);
    pe_test_server_start(&fx.server, fx.conninfo, NULL);
    return 0;
}

static void iso(int64_t unix_us, char *out, size_t outlen)
{
    pe_time_format_rfc3339(unix_us, out, outlen);
}

/* One cart event at unix_us with the given ids (session "s-<counter>"). */
static void cart_event(pe_buf_t *b, const char *event_id, int64_t unix_us, const char *extra)
{
    char ts[40];
    iso(unix_us, ts, sizeof ts);
    pe_buf_printf(
        b,
        "{\"eventId\":\"%s\",\"name\":\"storefront.cart.item_added\",\"timestamp\":\"%s\","
        "\"sessionId\":\"sess-1\",\"anonymousId\":\"anon-1\","
        "\"context\":{\"page\":{\"path\":\"/p/1\"},\"utm\":{\"source\":\"news\"},"
        "\"device\":{\"type\":\"mobile\"}},"
        "\"properties\":{\"productId\":\"sku-1\",\"quantity\":2,\"price\":9.5,"
        "\"currency\":\"EUR\"}%s}",
        event_id, ts, extra ? extra : "");
}

static long post(const char *path_and_query, const char *body, const char *auth_header,
                 const char *content_type, pe_test_response_t *r)
{
    char url[512], ct[128];
    snprintf(url, sizeof url, "%s%s", fx.server.base_url, path_and_query);
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
    const char *headers[] = {ct, auth_header, NULL};
    assert_int_equal(pe_test_http("POST", url, body, headers, r), 0);
    return r->status;
}

static long post_events(const char *pk, const char *body, pe_test_response_t *r)
{
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", pk);
    return post("/v1/events", body, auth, NULL, r);
}

static void test_store_every_column(void **state)
{
    char id[37], sql[512];
    pe_test_uuid(id);
    pe_buf_t b = PE_BUF_INIT;
    pe_buf_puts(&b, "{\"events\":[");
    cart_event(&b, id, pe_now_unix_us() - 60 * 1000000LL, ",\"userId\":\"u-7\"");
    pe_buf_puts(&b, "]}");
    pe_test_response_t r;
    assert_int_equal(post_events(shop_a.pk, b.data, &r), 200);
    assert_string_equal(r.body.data, "{\"accepted\":1,\"rejected\":[]}");
    pe_test_response_free(&r);

    snprintf(sql, sizeof sql,
             "SELECT concat_ws('|', store_id, name, funnel_step, session_id, anonymous_id, user_id,"
             " page_path, utm_source, device_type, properties->>'productId',"
             " properties->>'quantity', context->'device'->>'type')"
             " FROM events WHERE event_id = '%s'",
             id);
    char *row = pe_test_sql(fx.conninfo, sql);
    char want[512];
    snprintf(want, sizeof want,
             "%s|storefront.cart.item_added|1|sess-1|anon-1|u-7|/p/1|news|mobile|sku-1|2|mobile",
             shop_a.id);
    assert_non_null(row);
    assert_string_equal(row, want);
    free(row);
    pe_buf_free(&b);
}

static void test_retry_and_duplicates_stored_once(void **state)
{
    char id[37];
    pe_test_uuid(id);
    int64_t t = pe_now_unix_us() - 30 * 1000000LL;
    pe_buf_t b = PE_BUF_INIT;
    pe_buf_puts(&b, "{\"events\":[");
    cart_event(&b, id, t, NULL);
    pe_buf_puts(&b, ",");
    cart_event(&b, id, t, NULL); /* the same event twice in one batch */
    pe_buf_puts(&b, "]}");
    for (int attempt = 0; attempt < 3; attempt++) { /* and the batch retried */
        pe_test_response_t r;
        assert_int_equal(post_events(shop_a.pk, b.data, &r), 200);
        assert_non_null(strstr(r.body.data, "\"accepted\":2"));
        pe_test_response_free(&r);
    }
    assert_int_equal(
        pe_test_sql_long(fx.conninfo, "SELECT count(*) FROM events WHERE event_id = '%s'", id), 1);
    /* a retry whose sentAt differs (so its corrected time differs) is still the same event */
    char sent[40];
    iso(pe_now_unix_us() + 5 * 1000000LL, sent, sizeof sent);
    pe_buf_t b2 = PE_BUF_INIT;
    pe_buf_printf(&b2, "{\"sentAt\":\"%s\",\"events\":[", sent);
    cart_event(&b2, id, t, NULL);
    pe_buf_puts(&b2, "]}");
    pe_test_response_t r;
    assert_int_equal(post_events(shop_a.pk, b2.data, &r), 200);
    pe_test_response_free(&r);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo, "SELECT count(*) FROM events WHERE event_id = '%s'", id), 1);
    /* the same eventId in another store is another event */
    assert_int_equal(post_events(shop_b.pk, b.data, &r), 200);
    pe_test_response_free(&r);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo, "SELECT count(*) FROM events WHERE event_id = '%s'", id), 2);
    pe_buf_free(&b);
    pe_buf_free(&b2);
}

static void test_rejections_and_dead_letters(void **state)
{
    char good[37], old[37], future[37], other[37];
    pe_test_uuid(good);
    pe_test_uuid(old);
    pe_test_uuid(future);
    pe_test_uuid(other);
    int64_t now = pe_now_unix_us();
    pe_buf_t b = PE_BUF_INIT;
    pe_buf_puts(&b, "{\"events\":[");
    cart_event(&b, good, now - 1000000, NULL);
    pe_buf_puts(&b, ",{\"eventId\":\"not-a-uuid\",\"name\":\"storefront.cart.item_added\"},");
    cart_event(&b, old, now - 8LL * 86400 * 1000000, NULL);
    pe_buf_puts(&b, ",");
    cart_event(&b, future, now + 2LL * 3600 * 1000000, NULL);
    pe_buf_puts(&b, ",");
    char extra[128];
    snprintf(extra, sizeof extra, ",\"storeId\":\"%s\"", shop_b.id);
    cart_event(&b, other, now - 1000000, extra);
    pe_buf_puts(&b, ",42]}");
    pe_test_response_t r;
    assert_int_equal(post_events(shop_a.pk, b.data, &r), 200);
    char err[128];
    cJSON *j = NULL;
    assert_int_equal(pe_json_parse(r.body.data, r.body.len, &j, err, sizeof err), 0);
    assert_int_equal(cJSON_GetObjectItem(j, "accepted")->valueint, 1);
    cJSON *rej = cJSON_GetObjectItem(j, "rejected");
    assert_int_equal(cJSON_GetArraySize(rej), 5);
    static const struct {
        int index;
        const char *code;
    } want[] = {{2, "too_old"}, {3, "in_future"}, {4, "store_mismatch"}};
    for (size_t i = 0; i < PE_ARRAY_LEN(want); i++) {
        bool found = false;
        cJSON *it;
        cJSON_ArrayForEach(it, rej)
        {
            if (cJSON_GetObjectItem(it, "index")->valueint == want[i].index) {
                assert_string_equal(cJSON_GetObjectItem(it, "code")->valuestring, want[i].code);
                assert_non_null(cJSON_GetObjectItem(it, "message")->valuestring);
                assert_non_null(cJSON_GetObjectItem(it, "eventId"));
                found = true;
            }
        }
        if (!found)
            fail_msg("no rejection for index %d", want[i].index);
    }
    cJSON_Delete(j);
    pe_test_response_free(&r);

    /* every refusal is in the dead letter with its raw JSON */
    assert_int_equal(pe_test_sql_long(fx.conninfo,
                                      "SELECT count(*) FROM events_rejected WHERE store_id = '%s'",
                                      shop_a.id),
                     5);
    assert_int_equal(pe_test_sql_long(fx.conninfo,
                                      "SELECT count(*) FROM events_rejected WHERE raw = '42' AND "
                                      "event_index = 5 AND store_id = '%s'",
                                      shop_a.id),
                     1);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo,
                         "SELECT count(*) FROM events_rejected WHERE code = 'too_old' AND "
                         "raw LIKE '%%' || event_id || '%%' AND store_id = '%s'",
                         shop_a.id),
        1);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo, "SELECT count(*) FROM events WHERE event_id IN ('%s')", old),
        0);
    pe_buf_free(&b);
}

/* cJSON reads 1e400 as inf and would store null: an event carrying such a number is rejected on
 * its own (out_of_range, the message naming the number's path), the rest of the batch is stored;
 * the same through the Segment routes, whose mapped events go through the same validation. */
static void test_nonfinite_number_rejects_only_its_event(void **state)
{
    (void)state;
    char good1[37], deep[37], price[37], good2[37];
    pe_test_uuid(good1);
    pe_test_uuid(deep);
    pe_test_uuid(price);
    pe_test_uuid(good2);
    char ts[40];
    iso(pe_now_unix_us() - 1000000, ts, sizeof ts);
    pe_buf_t b = PE_BUF_INIT;
    pe_buf_puts(&b, "{\"events\":[");
    cart_event(&b, good1, pe_now_unix_us() - 1000000, NULL);
    pe_buf_printf(&b,
                  ",{\"eventId\":\"%s\",\"name\":\"custom.quiz.answered\",\"timestamp\":\"%s\","
                  "\"sessionId\":\"sess-1\",\"anonymousId\":\"anon-1\",\"properties\":{\"score\":"
                  "1,\"deep\":{\"list\":[0,1e400]}}}",
                  deep, ts);
    pe_buf_printf(&b,
                  ",{\"eventId\":\"%s\",\"name\":\"storefront.cart.item_added\",\"timestamp\":"
                  "\"%s\",\"sessionId\":\"sess-1\",\"anonymousId\":\"anon-1\",\"properties\":{"
                  "\"productId\":\"sku-1\",\"quantity\":1,\"price\":-1e400,\"currency\":\"EUR\"}}",
                  price, ts);
    pe_buf_puts(&b, ",");
    cart_event(&b, good2, pe_now_unix_us() - 1000000, NULL);
    pe_buf_puts(&b, "]}");
    pe_test_response_t r;
    assert_int_equal(post_events(shop_a.pk, b.data, &r), 200);
    cJSON *j = pe_test_response_json(&r);
    pe_test_response_free(&r);
    pe_buf_free(&b);
    assert_int_equal(cJSON_GetObjectItem(j, "accepted")->valueint, 2);
    const cJSON *rej = cJSON_GetObjectItem(j, "rejected");
    assert_int_equal(cJSON_GetArraySize(rej), 2);
    static const struct {
        int index;
        const char *message;
    } want[] = {{1, "properties.deep.list[1]: " PE_JSON_NONFINITE_RULE},
                {2, "properties.price: " PE_JSON_NONFINITE_RULE}};
    for (size_t i = 0; i < PE_ARRAY_LEN(want); i++) {
        const cJSON *it = cJSON_GetArrayItem(rej, (int)i);
        assert_int_equal(cJSON_GetObjectItem(it, "index")->valueint, want[i].index);
        assert_string_equal(cJSON_GetObjectItem(it, "code")->valuestring, "out_of_range");
        assert_string_equal(cJSON_GetObjectItem(it, "message")->valuestring, want[i].message);
    }
    cJSON_Delete(j);
    assert_int_equal(pe_test_sql_long(fx.conninfo,
                                      "SELECT count(*) FROM events WHERE event_id IN ('%s', '%s')",
                                      good1, good2),
                     2);
    assert_int_equal(pe_test_sql_long(fx.conninfo,
                                      "SELECT count(*) FROM events WHERE event_id IN ('%s', '%s')",
                                      deep, price),
                     0);

    /* Segment: a track call with such a property is rejected alone, by the same rule */
    char body[1024];
    snprintf(body, sizeof body,
             "{\"writeKey\":\"%s\",\"batch\":[{\"type\":\"track\",\"event\":\"Quiz Answered\","
             "\"anonymousId\":\"seg-anon-1\",\"messageId\":\"seg-nonfinite-1\",\"properties\":"
             "{\"score\":{\"n\":-1e400}}},{\"type\":\"track\",\"event\":\"Quiz Answered\","
             "\"anonymousId\":\"seg-anon-1\",\"messageId\":\"seg-nonfinite-2\",\"properties\":"
             "{\"score\":{\"n\":3}}}]}",
             shop_a.pk);
    assert_int_equal(post("/v1/batch", body, NULL, NULL, &r), 200);
    j = pe_test_response_json(&r);
    pe_test_response_free(&r);
    assert_int_equal(cJSON_GetObjectItem(j, "accepted")->valueint, 1);
    rej = cJSON_GetObjectItem(j, "rejected");
    assert_int_equal(cJSON_GetArraySize(rej), 1);
    assert_int_equal(cJSON_GetObjectItem(rej->child, "index")->valueint, 0);
    assert_string_equal(cJSON_GetObjectItem(rej->child, "code")->valuestring, "out_of_range");
    assert_string_equal(cJSON_GetObjectItem(rej->child, "message")->valuestring,
                        "properties.score.n: " PE_JSON_NONFINITE_RULE);
    cJSON_Delete(j);

    /* A commerce property with no native field goes to custom: such a number there rejects the
     * event too (it was dropped without a word) */
    snprintf(body, sizeof body,
             "{\"writeKey\":\"%s\",\"batch\":[{\"type\":\"track\",\"event\":\"Product Added\","
             "\"anonymousId\":\"seg-anon-2\",\"messageId\":\"seg-nonfinite-3\",\"properties\":"
             "{\"product_id\":\"sku-1\",\"price\":10,\"quantity\":1,\"currency\":\"EUR\","
             "\"rating\":1e400}}]}",
             shop_a.pk);
    assert_int_equal(post("/v1/batch", body, NULL, NULL, &r), 200);
    j = pe_test_response_json(&r);
    pe_test_response_free(&r);
    assert_int_equal(cJSON_GetObjectItem(j, "accepted")->valueint, 0);
    rej = cJSON_GetObjectItem(j, "rejected");
    assert_int_equal(cJSON_GetArraySize(rej), 1);
    assert_string_equal(cJSON_GetObjectItem(rej->child, "code")->valuestring, "out_of_range");
    assert_string_equal(cJSON_GetObjectItem(rej->child, "message")->valuestring,
                        "custom.rating: " PE_JSON_NONFINITE_RULE);
    cJSON_Delete(j);
}

static void test_clock_skew_correction(void **state)
{
    /* The client's clock is 2 days behind: it stamps the event 5 s before sending. */
    int64_t now = pe_now_unix_us();
    int64_t skew = 2LL * 86400 * 1000000;
    char id[37], ts[40], sent[40], sql[256];
    pe_test_uuid(id);
    iso(now - skew - 5 * 1000000LL, ts, sizeof ts);
    iso(now - skew, sent, sizeof sent);
    pe_buf_t b = PE_BUF_INIT;
    pe_buf_printf(&b, "{\"sentAt\":\"%s\",\"events\":[", sent);
    cart_event(&b, id, now - skew - 5 * 1000000LL, NULL);
    pe_buf_puts(&b, "]}");
    pe_test_response_t r;
    assert_int_equal(post_events(shop_a.pk, b.data, &r), 200);
    assert_non_null(strstr(r.body.data, "\"accepted\":1"));
    pe_test_response_free(&r);
    /* occurred_at = received_at − 5 s (± rounding), client_ts keeps what the client said */
    snprintf(sql, sizeof sql,
             "SELECT abs(extract(epoch FROM (received_at - occurred_at)) - 5) < 0.01"
             " AND abs(extract(epoch FROM (occurred_at - client_ts)) - 172800) < 5"
             " FROM events WHERE event_id = '%s'",
             id);
    char *ok = pe_test_sql(fx.conninfo, sql);
    assert_non_null(ok);
    assert_string_equal(ok, "t");
    free(ok);
    pe_buf_free(&b);
}

static void test_request_limits_and_keys(void **state)
{
    pe_test_response_t r;
    assert_int_equal(post_events(shop_a.pk, "{\"events\":", &r), 400);
    assert_non_null(strstr(r.body.data, "\"code\":\"invalid_json\""));
    pe_test_response_free(&r);
    assert_int_equal(post_events(shop_a.pk, "[1,2]", &r), 400);
    pe_test_response_free(&r);
    assert_int_equal(post_events(shop_a.pk, "{\"events\":{}}", &r), 400);
    pe_test_response_free(&r);
    assert_int_equal(post_events(shop_a.pk, "{\"events\":[],\"sentAt\":\"yesterday\"}", &r), 400);
    pe_test_response_free(&r);

    pe_buf_t b = PE_BUF_INIT;
    pe_buf_puts(&b, "{\"events\":[");
    for (int i = 0; i < 501; i++)
        pe_buf_puts(&b, i ? ",{}" : "{}");
    pe_buf_puts(&b, "]}");
    assert_int_equal(post_events(shop_a.pk, b.data, &r), 413);
    pe_test_response_free(&r);
    pe_buf_free(&b);

    assert_int_equal(post_events(shop_a.sk, "{\"events\":[]}", &r), 403);
    pe_test_response_free(&r);
    assert_int_equal(post_events("pk_unknown", "{\"events\":[]}", &r), 401);
    pe_test_response_free(&r);
    assert_int_equal(post("/v1/events", "{\"events\":[]}", NULL, NULL, &r), 401);
    pe_test_response_free(&r);

    /* navigator.sendBeacon: text/plain and the key in the query */
    char id[37], path[128];
    pe_test_uuid(id);
    pe_buf_puts(&b, "{\"events\":[");
    cart_event(&b, id, pe_now_unix_us(), NULL);
    pe_buf_puts(&b, "]}");
    snprintf(path, sizeof path, "/v1/events?key=%s", shop_b.pk);
    assert_int_equal(post(path, b.data, NULL, "text/plain;charset=UTF-8", &r), 200);
    char v[16];
    assert_string_equal(pe_test_response_header(&r, "Access-Control-Allow-Origin", v, sizeof v),
                        "*");
    pe_test_response_free(&r);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT store_id FROM events WHERE event_id = '%s'", id);
    char *owner = pe_test_sql(fx.conninfo, sql);
    assert_string_equal(owner, shop_b.id);
    free(owner);
    pe_buf_free(&b);
}

static void test_commit_failure_is_503_then_retry_stores_once(void **state)
{
    char id[37];
    pe_test_uuid(id);
    pe_buf_t b = PE_BUF_INIT;
    pe_buf_puts(&b, "{\"events\":[");
    cart_event(&b, id, pe_now_unix_us(), NULL);
    pe_buf_puts(&b, "]}");
    free(pe_test_sql(fx.conninfo, "ALTER TABLE event_keys RENAME TO event_keys_away"));
    pe_test_response_t r;
    long status = post_events(shop_a.pk, b.data, &r);
    free(pe_test_sql(fx.conninfo, "ALTER TABLE event_keys_away RENAME TO event_keys"));
    assert_int_equal(status, 503);
    char v[16];
    assert_string_equal(pe_test_response_header(&r, "Retry-After", v, sizeof v), "2");
    assert_non_null(strstr(r.body.data, "\"code\":\"unavailable\""));
    pe_test_response_free(&r);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo, "SELECT count(*) FROM events WHERE event_id = '%s'", id), 0);

    assert_int_equal(post_events(shop_a.pk, b.data, &r), 200);
    pe_test_response_free(&r);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo, "SELECT count(*) FROM events WHERE event_id = '%s'", id), 1);
    pe_buf_free(&b);
}

#define THREADS   12
#define BATCHES   5
#define PER_BATCH 20

static void *post_many(void *arg)
{
    long *failures = arg;
    for (int k = 0; k < BATCHES; k++) {
        pe_buf_t b = PE_BUF_INIT;
        pe_buf_puts(&b, "{\"events\":[");
        for (int i = 0; i < PER_BATCH; i++) {
            char id[37];
            pe_test_uuid(id);
            if (i)
                pe_buf_puts(&b, ",");
            cart_event(&b, id, pe_now_unix_us() - 1000000, ",\"userId\":\"load\"");
        }
        pe_buf_puts(&b, "]}");
        pe_test_response_t r;
        if (post_events(shop_a.pk, b.data, &r) != 200 || !strstr(r.body.data, "\"accepted\":20"))
            (*failures)++;
        pe_test_response_free(&r);
        pe_buf_free(&b);
    }
    return NULL;
}

/* The value of a sample line "name value" (not the # HELP line that names it too). */
static long metric(const char *text, const char *name)
{
    for (const char *p = text; (p = strstr(p, name)) != NULL; p++)
        if (p == text || p[-1] == '\n')
            return strtol(p + strlen(name), NULL, 10);
    return -1;
}

static void test_group_commit_under_concurrency(void **state)
{
    pthread_t t[THREADS];
    long failures[THREADS] = {0};
    pe_test_response_t before, after;
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", fx.server.base_url);
    assert_int_equal(pe_test_http("GET", url, NULL, NULL, &before), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, post_many, &failures[i]);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(failures[i], 0);
    }
    assert_int_equal(pe_test_http("GET", url, NULL, NULL, &after), 0);
    assert_int_equal(pe_test_sql_long(fx.conninfo,
                                      "SELECT count(*) FROM events WHERE "
                                      "user_id = 'load' AND store_id = '%s'",
                                      shop_a.id),
                     THREADS * BATCHES * PER_BATCH);
    long batches = metric(after.body.data, "pe_collector_batches_total ") -
                   metric(before.body.data, "pe_collector_batches_total ");
    long commits = metric(after.body.data, "pe_collector_commits_total{result=\"ok\"} ") -
                   metric(before.body.data, "pe_collector_commits_total{result=\"ok\"} ");
    assert_int_equal(batches, THREADS * BATCHES);
    /* concurrent requests share commits */
    if (!(commits > 0 && commits < batches))
        fail_msg("%ld commits for %ld batches: no group commit", commits, batches);
    pe_test_response_free(&before);
    pe_test_response_free(&after);
}

/* ---- in-process: a batch's outcome, waited for ------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int rc;
} waiter_t;

static void on_done(void *arg, const pe_collector_result_t *res)
{
    waiter_t *w = arg;
    pthread_mutex_lock(&w->lock);
    w->rc = res->rc;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void wait_done(waiter_t *w)
{
    pthread_mutex_lock(&w->lock);
    while (!w->done)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

/* ---- in-process: every writer keeps running ------------------------------------------------ */

static unsigned writers_running(pe_collector_t *c)
{
    pe_collector_stats_t s;
    pe_collector_stats(c, &s);
    return s.writers_running;
}

/* Two writers both gathering when one of them takes the whole queue: the other must wait for
 * the next request, not end. (It used to end: after the first such race the collector ran on
 * one writer for good, every commit in series, a third of the CPU idle at peak.) Each round
 * wakes both writers: the first batch wakes one, which waits window_ms for company; the second,
 * 10 ms later, wakes the other; the first to reach the deadline takes both. */
static void test_writers_keep_running(void **state)
{
    pe_db_pool_t *pool = pe_db_pool_new(fx.conninfo, 4);
    pe_collector_config_t cfg = {.db = pool, .writers = 2, .window_ms = 60};
    pe_collector_t *c = pe_collector_new(&cfg);
    assert_non_null(c);
    for (int i = 0; i < 100 && writers_running(c) < 2; i++)
        usleep(10 * 1000);
    assert_int_equal(writers_running(c), 2);
    char err[64];
    for (int round = 0; round < 4; round++) {
        waiter_t w[2] = {{PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, -1},
                         {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, -1}};
        cJSON *events[2] = {NULL, NULL};
        for (int k = 0; k < 2; k++) {
            char id[37];
            pe_test_uuid(id);
            pe_buf_t b = PE_BUF_INIT;
            pe_buf_puts(&b, "[");
            cart_event(&b, id, pe_now_unix_us() - 1000000, ",\"userId\":\"two-writers\"");
            pe_buf_puts(&b, "]");
            assert_int_equal(pe_json_parse(b.data, b.len, &events[k], err, sizeof err), 0);
            pe_buf_free(&b);
            assert_int_equal(pe_collector_ingest(c, shop_b.id, PE_COLLECTOR_LIVE, events[k], 0,
                                                 pe_now_unix_us(), on_done, &w[k]),
                             0);
            usleep(10 * 1000);
        }
        for (int k = 0; k < 2; k++) {
            wait_done(&w[k]);
            assert_int_equal(w[k].rc, 0);
            cJSON_Delete(events[k]);
        }
        usleep(20 * 1000); /* the writer that found the queue empty has decided by now */
        if (writers_running(c) != 2)
            fail_msg("round %d: %u of 2 writers still running", round, writers_running(c));
    }
    pe_collector_free(c);
    pe_db_pool_free(pool);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo,
                         "SELECT count(*) FROM events WHERE user_id = 'two-writers' AND "
                         "store_id = '%s'",
                         shop_b.id),
        8);
}

/* ---- in-process: one store cannot take the whole queue -------------------------------------- */

/* A batch of n cart events of store for the in-process collector (the caller deletes it). */
static cJSON *cart_batch(int n, const char *user)
{
    pe_buf_t b = PE_BUF_INIT;
    char err[64], extra[64];
    snprintf(extra, sizeof extra, ",\"userId\":\"%s\"", user);
    pe_buf_puts(&b, "[");
    for (int i = 0; i < n; i++) {
        char id[37];
        pe_test_uuid(id);
        if (i)
            pe_buf_puts(&b, ",");
        cart_event(&b, id, pe_now_unix_us() - 1000000, extra);
    }
    pe_buf_puts(&b, "]");
    cJSON *events = NULL;
    assert_int_equal(pe_json_parse(b.data, b.len, &events, err, sizeof err), 0);
    pe_buf_free(&b);
    return events;
}

/* With the writer held (another session locks event_keys), store A fills the queue until it
 * holds its share (50 of 100 events) and is refused; store B still gets the room that is left;
 * then the queue is full for everyone. Released, every accepted batch is stored. */
static void test_store_share_of_queue(void **state)
{
    (void)state;
    pe_db_pool_t *pool = pe_db_pool_new(fx.conninfo, 2), *held = pe_db_pool_new(fx.conninfo, 1);
    pe_db_conn_t *locker = NULL;
    assert_int_equal(pe_db_acquire(held, 5000, &locker), 0);
    assert_int_equal(pe_db_exec(locker, "BEGIN", 0, NULL, NULL), 0);
    assert_int_equal(
        pe_db_exec(locker, "LOCK TABLE event_keys IN ACCESS EXCLUSIVE MODE", 0, NULL, NULL), 0);
    pe_collector_config_t cfg = {
        .db = pool, .writers = 1, .window_ms = 1, .queue_max_events = 100, .store_queue_pct = 50};
    pe_collector_t *c = pe_collector_new(&cfg);
    assert_non_null(c);
    enum { MAX = 16 };
    waiter_t w[MAX];
    cJSON *batches[MAX];
    int n = 0;
    /* A's first batch: taken by the writer, which then waits for the lock */
    batches[n] = cart_batch(10, "share-a");
    w[n] = (waiter_t){PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, -1};
    assert_int_equal(pe_collector_ingest(c, shop_a.id, PE_COLLECTOR_LIVE, batches[n], 0,
                                         pe_now_unix_us(), on_done, &w[n]),
                     0);
    n++;
    pe_collector_stats_t st;
    for (int i = 0; i < 500; i++) {
        pe_collector_stats(c, &st);
        if (st.queued_events == 0)
            break;
        usleep(10 * 1000);
    }
    assert_int_equal(st.queued_events, 0);
    /* A: five batches of 10 wait, the sixth is refused; then B: five more, then the queue is full
     */
    int accepted[2] = {0, 0};
    for (int s = 0; s < 2; s++) {
        const char *store = s == 0 ? shop_a.id : shop_b.id;
        for (;;) {
            cJSON *batch = cart_batch(10, s == 0 ? "share-a" : "share-b");
            w[n] = (waiter_t){PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, -1};
            int rc = pe_collector_ingest(c, store, PE_COLLECTOR_LIVE, batch, 0, pe_now_unix_us(),
                                         on_done, &w[n]);
            if (rc != 0) {
                assert_int_equal(rc, PE_EUNAVAIL);
                cJSON_Delete(batch);
                break;
            }
            assert_true(n + 1 < MAX);
            batches[n] = batch;
            n++;
            accepted[s]++;
        }
    }
    pe_collector_stats(c, &st);
    print_message("queue of 100, share 50 %%: store A queued %d batches of 10 before its refusal, "
                  "store B %d more before the queue was full\n",
                  accepted[0], accepted[1]);
    assert_int_equal(accepted[0], 5);
    assert_int_equal(accepted[1], 5);
    assert_int_equal(st.store_share_full_total, 1);
    assert_int_equal(st.queue_full_total, 1);
    /* released: every accepted batch stored */
    assert_int_equal(pe_db_exec(locker, "ROLLBACK", 0, NULL, NULL), 0);
    for (int i = 0; i < n; i++) {
        wait_done(&w[i]);
        assert_int_equal(w[i].rc, 0);
        cJSON_Delete(batches[i]);
    }
    pe_collector_free(c);
    pe_db_release(held, locker);
    pe_db_pool_free(held);
    pe_db_pool_free(pool);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo, "SELECT count(*) FROM events WHERE user_id = 'share-a'"), 60);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo, "SELECT count(*) FROM events WHERE user_id = 'share-b'"), 50);
}

/* ---- in-process: the dead-letter bound ------------------------------------------------------ */

static void test_dead_letter_bound(void **state)
{
    pe_db_pool_t *pool = pe_db_pool_new(fx.conninfo, 2);
    pe_collector_config_t cfg = {.db = pool, .dead_letters_per_store_hour = 5};
    pe_collector_t *c = pe_collector_new(&cfg);
    assert_non_null(c);
    char err[64];
    cJSON *events = NULL;
    const char *bad = "[1,2,3,4]";
    assert_int_equal(pe_json_parse(bad, strlen(bad), &events, err, sizeof err), 0);
    for (int round = 0; round < 3; round++) { /* 12 refusals, 5 kept */
        waiter_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, -1};
        assert_int_equal(pe_collector_ingest(c, shop_b.id, PE_COLLECTOR_LIVE, events, 0,
                                             pe_now_unix_us(), on_done, &w),
                         0);
        wait_done(&w);
        assert_int_equal(w.rc, 0);
    }
    cJSON_Delete(events);
    pe_collector_free(c);
    pe_db_pool_free(pool);
    assert_int_equal(pe_test_sql_long(fx.conninfo,
                                      "SELECT count(*) FROM events_rejected "
                                      "WHERE raw IN ('1','2','3','4') AND "
                                      "store_id = '%s'",
                                      shop_b.id),
                     4);
    assert_int_equal(
        pe_test_sql_long(
            fx.conninfo,
            "SELECT coalesce(sum(dropped), 0) FROM events_rejected_overflow WHERE store_id = "
            "'%s'",
            shop_b.id),
        8);
}

static long post_import(const char *key, const char *body, pe_test_response_t *r)
{
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    return post("/v1/import", body, auth, NULL, r);
}

/* History goes to /v1/import with a secret key: timestamps as sent (no skew correction), up to
 * 400 days back, the partitions of those days made on the way, retries stored once. */
static void test_import_history(void **state)
{
    int64_t now = pe_now_unix_us();
    int64_t old = now - 45LL * 86400 * 1000000; /* no partition exists this far back */
    char id[37], id2[37], too_old[37], sent[40], sql[512];
    pe_test_uuid(id);
    pe_test_uuid(id2);
    pe_test_uuid(too_old);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = "
             "i.inhrelid"
             " WHERE i.inhparent = '%s'::regclass AND c.relname = '%s_p' ||"
             " to_char(now() - interval '45 days', 'YYYY_MM_DD')",
             "events", "events");
    assert_int_equal(pe_test_sql_long(fx.conninfo, "%s", sql), 0);

    iso(now + 3600LL * 1000000, sent, sizeof sent); /* a sentAt that live traffic would apply */
    pe_buf_t b = PE_BUF_INIT;
    pe_buf_printf(&b, "{\"sentAt\":\"%s\",\"events\":[", sent);
    cart_event(&b, id, old, NULL);
    pe_buf_puts(&b, ",");
    cart_event(&b, id2, now - 200LL * 86400 * 1000000, NULL);
    pe_buf_puts(&b, ",");
    cart_event(&b, too_old, now - 401LL * 86400 * 1000000, NULL);
    pe_buf_puts(&b, "]}");
    pe_test_response_t r;
    for (int attempt = 0; attempt < 2; attempt++) { /* the second is a retry */
        assert_int_equal(post_import(shop_a.sk, b.data, &r), 200);
        assert_non_null(strstr(r.body.data, "\"accepted\":2"));
        assert_non_null(strstr(r.body.data, "\"index\":2"));
        assert_non_null(strstr(r.body.data, "\"code\":\"too_old\""));
        pe_test_response_free(&r);
    }
    assert_int_equal(pe_test_sql_long(fx.conninfo, "%s", sql), 1);
    assert_int_equal(pe_test_sql_long(fx.conninfo,
                                      "SELECT count(*) FROM events WHERE event_id IN ('%s', '%s')"
                                      " AND occurred_at = client_ts AND store_id = '%s'",
                                      id, id2, shop_a.id),
                     2);
    /* keyed by events' own primary key (the timestamp as sent), which lives as long as the
     * event: no event_keys row, whose 10-day retention would forget it */
    assert_int_equal(
        pe_test_sql_long(fx.conninfo, "SELECT count(*) FROM event_keys WHERE event_id = '%s'", id),
        0);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo, "SELECT count(*) FROM events WHERE event_id = '%s'", too_old),
        0);

    /* a publishable key may not import; the storefront endpoint refuses history and says where
     * it goes */
    assert_int_equal(post_import(shop_a.pk, b.data, &r), 403);
    pe_test_response_free(&r);
    char id3[37];
    pe_test_uuid(id3);
    pe_buf_t live = PE_BUF_INIT;
    pe_buf_puts(&live, "{\"events\":[");
    cart_event(&live, id3, old, NULL);
    pe_buf_puts(&live, "]}");
    assert_int_equal(post_events(shop_a.pk, live.data, &r), 200);
    assert_non_null(strstr(r.body.data, "\"code\":\"too_old\""));
    assert_non_null(strstr(r.body.data, "/v1/import"));
    pe_test_response_free(&r);
    pe_buf_free(&live);
    pe_buf_free(&b);

    /* PE_EVENTS_RETENTION_DAYS: maintenance applies the operator's retention and retires the
     * partitions past it */
    pe_db_pool_t *pool = pe_db_pool_new(fx.conninfo, 1);
    char err[256] = "";
    assert_int_equal(pe_collector_maintain(pool, 40, err, sizeof err), 0);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo,
                         "SELECT count(*) FROM partman.part_config WHERE parent_table ="
                         " 'public.events' AND retention = '40 days'"),
        1);
    assert_int_equal(pe_test_sql_long(fx.conninfo, "%s", sql), 0);
    assert_int_equal(pe_test_sql_long(fx.conninfo,
                                      "SELECT count(*) FROM events WHERE event_id IN ('%s', '%s')",
                                      id, id2),
                     0);
    assert_int_equal(pe_collector_maintain(pool, 400, err, sizeof err), 0);
    pe_db_pool_free(pool);
}

/* Property values reach PostgreSQL exactly: the collector writes JSON straight into COPY text,
 * so quotes, backslashes, control characters, non-ASCII text and every kind of number must
 * survive both escapings. */
static void test_json_values_stored_exactly(void **state)
{
    static const char custom[] =
        "{\"quote\":\"a\\\"b\",\"backslash\":\"c\\\\d\",\"eol\":\"e\\nf\\r\\tg\","
        "\"ctrl\":\"\\u0001\\u001f\\u007f\",\"text\":\"Grüße € 😀 \\\\N \\\\.\","
        "\"int\":-42,\"big\":123456789012345,"
        "\"frac\":0.1,\"tiny\":-2.5e-300,\"huge\":1.5e300,\"zero\":0,"
        "\"nested\":{\"list\":[1,\"two\",true,false,null]}}";
    char id[37], sql[2048];
    pe_test_uuid(id);
    char extra[1024];
    snprintf(extra, sizeof extra, ",\"custom\":%s", custom);
    pe_buf_t b = PE_BUF_INIT;
    pe_buf_puts(&b, "{\"events\":[");
    cart_event(&b, id, pe_now_unix_us(), extra);
    pe_buf_puts(&b, "]}");
    pe_test_response_t r;
    assert_int_equal(post_events(shop_a.pk, b.data, &r), 200);
    assert_string_equal(r.body.data, "{\"accepted\":1,\"rejected\":[]}");
    pe_test_response_free(&r);
    snprintf(sql, sizeof sql,
             "SELECT (custom = $j$%s$j$::jsonb)::text || '|' || (custom->>'backslash') || '|' ||"
             " (custom->>'text') FROM events WHERE event_id = '%s'",
             custom, id);
    char *v = pe_test_sql(fx.conninfo, sql);
    assert_non_null(v);
    assert_string_equal(v, "true|c\\d|Grüße € 😀 \\N \\.");
    free(v);
    pe_buf_free(&b);
}

/* A publishable key is served from memory after its first use, and its revocation (by another
 * process, straight in the database) still stops it at once: NOTIFY evicts it. */
static void test_revoked_publishable_key_stops_at_once(void **state)
{
    pe_db_pool_t *pool = pe_db_pool_new(fx.conninfo, 1);
    char pk[PE_KEY_LEN], key_id[PE_ID_LEN], id[37];
    assert_int_equal(pe_tenancy_key_create(pool, shop_a.id, PE_KEY_PUBLISHABLE, pk, key_id), 0);
    pe_test_response_t r;
    for (int i = 0; i < 3; i++) {
        pe_test_uuid(id);
        pe_buf_t b = PE_BUF_INIT;
        pe_buf_puts(&b, "{\"events\":[");
        cart_event(&b, id, pe_now_unix_us(), NULL);
        pe_buf_puts(&b, "]}");
        assert_int_equal(post_events(pk, b.data, &r), 200);
        pe_test_response_free(&r);
        pe_buf_free(&b);
    }
    char url[256];
    snprintf(url, sizeof url, "%s/metrics", fx.server.base_url);
    assert_int_equal(pe_test_http("GET", url, NULL, NULL, &r), 0);
    assert_non_null(strstr(r.body.data, "pe_key_cache_live 1"));
    const char *hits = strstr(r.body.data, "pe_key_cache_lookups_total{result=\"hit\"} ");
    assert_non_null(hits);
    assert_true(strtol(hits + strlen("pe_key_cache_lookups_total{result=\"hit\"} "), NULL, 10) >=
                2);
    pe_test_response_free(&r);

    assert_int_equal(pe_tenancy_key_revoke(pool, shop_a.id, key_id), 0);
    int64_t t0 = pe_now_mono_us();
    long status = 200;
    while (status == 200 && pe_now_mono_us() - t0 < 5000000) {
        status = post_events(pk, "{\"events\":[]}", &r);
        pe_test_response_free(&r);
    }
    assert_int_equal(status, 401);
    assert_true(pe_now_mono_us() - t0 < 1000000); /* at once, not after a cache lifetime */
    pe_db_pool_free(pool);
}

/* Maintenance premakes partitions 4 days ahead again when the newest ones are missing, and
 * steps aside while another instance holds the maintenance lock. pg_partman decides from the
 * newest partition how many to make (at some hours of the day one more than at others), so the
 * test drops, and looks for, every partition from 4 days ahead on. */
#define AHEAD_PARTITIONS                                                                           \
    " FROM pg_tables WHERE tablename ~ '^events_p[0-9]{4}_[0-9]{2}_[0-9]{2}$'"                     \
    "   AND tablename >= 'events_p' || to_char(now() + interval '4 days', 'YYYY_MM_DD')"

static void drop_ahead_partitions(void)
{
    free(pe_test_sql(fx.conninfo,
                     "DO $$ DECLARE t text; BEGIN FOR t IN SELECT tablename" AHEAD_PARTITIONS
                     " LOOP EXECUTE format('DROP TABLE %I', t); END LOOP; END $$"));
}

static void test_maintenance(void **state)
{
    (void)state;
    static const char ahead[] = "SELECT count(*)" AHEAD_PARTITIONS;
    assert_true(pe_test_sql_long(fx.conninfo, "%s", ahead) >= 1);
    drop_ahead_partitions();
    assert_int_equal(pe_test_sql_long(fx.conninfo, "%s", ahead), 0);
    pe_db_pool_t *pool = pe_db_pool_new(fx.conninfo, 2);
    char err[256] = "";
    assert_int_equal(pe_collector_maintain(pool, 400, err, sizeof err), 0);
    assert_true(pe_test_sql_long(fx.conninfo, "%s", ahead) >= 1);

    /* another instance holds the lock: nothing happens, no error */
    pe_db_conn_t *holder = NULL;
    assert_int_equal(pe_db_acquire(pool, 1000, &holder), 0);
    assert_int_equal(
        pe_db_exec(holder, "SELECT pg_advisory_lock(7262937150124823901)", 0, NULL, NULL), 0);
    drop_ahead_partitions();
    assert_int_equal(pe_collector_maintain(pool, 400, err, sizeof err), 0);
    assert_int_equal(pe_test_sql_long(fx.conninfo, "%s", ahead), 0);
    assert_int_equal(
        pe_db_exec(holder, "SELECT pg_advisory_unlock(7262937150124823901)", 0, NULL, NULL), 0);
    pe_db_release(pool, holder);
    assert_int_equal(pe_collector_maintain(pool, 400, err, sizeof err), 0);
    assert_true(pe_test_sql_long(fx.conninfo, "%s", ahead) >= 1);
    pe_db_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_every_column),
        cmocka_unit_test(test_retry_and_duplicates_stored_once),
        cmocka_unit_test(test_rejections_and_dead_letters),
        cmocka_unit_test(test_nonfinite_number_rejects_only_its_event),
        cmocka_unit_test(test_clock_skew_correction),
        cmocka_unit_test(test_request_limits_and_keys),
        cmocka_unit_test(test_commit_failure_is_503_then_retry_stores_once),
        cmocka_unit_test(test_group_commit_under_concurrency),
        cmocka_unit_test(test_dead_letter_bound),
        cmocka_unit_test(test_store_share_of_queue),
        cmocka_unit_test(test_writers_keep_running),
        cmocka_unit_test(test_maintenance),
        cmocka_unit_test(test_import_history),
        cmocka_unit_test(test_json_values_stored_exactly),
        cmocka_unit_test(test_revoked_publishable_key_stops_at_once),
    };
    return cmocka_run_group_tests(tests, setup, pe_test_fixture_teardown);
}
