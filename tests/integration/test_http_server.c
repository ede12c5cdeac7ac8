/*
 * test_http_server.c — the HTTP server in-process, with routes made for the test: CORS and
 * preflight on storefront routes, publishable-key authentication against the real database,
 * suspend/resume from another thread, chunked bodies over the limit, and graceful shutdown
 * that drains in-flight requests (synchronous and suspended) and refuses new connections.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pe/api.h"
#include "pe/tenancy.h"
#include "pe_test.h"

static pe_test_fixture_t fx; /* its pool is app.db; the server is the in-process one below */
static pe_app_t app;
static pe_http_server_t *server;
static char base[64];
static pe_test_tenant_t shop_a;
static atomic_int slow_started, parked_started;
/* /async requests parked now, and the most at once */
static atomic_int async_parked, async_parked_max;

/* ---- routes of the test ---------------------------------------------------------------------- */

static int echo_store(pe_http_request_t *req)
{
    char body[128];
    int n = snprintf(body, sizeof body, "{\"storeId\":\"%s\"}", pe_http_auth(req)->store_id);
    return pe_http_reply_json(req, 200, body, (size_t)n);
}

static int echo_body(pe_http_request_t *req)
{
    cJSON *j = pe_http_json_body(req);
    if (!j)
        return 0;
    return pe_http_reply_cjson(req, 200, cJSON_Duplicate(j, true));
}

static void *finish_later(void *arg)
{
    pe_http_request_t *req = arg;
    /* Held until a third request is parked beside it (or 10 s pass): with two HTTP threads,
     * three parked at once show that parking frees the thread, whatever the machine's speed. */
    for (int i = 0; i < 1000 && atomic_load(&async_parked_max) < 3; i++)
        pe_test_sleep_ms(10);
    atomic_fetch_sub(&async_parked, 1);
    const char *v = pe_http_query(req, "v");
    char body[96];
    int n = snprintf(body, sizeof body, "{\"async\":true,\"v\":\"%s\"}", v ? v : "");
    pe_http_reply_json(req, 200, body, (size_t)n);
    pe_http_resume(req);
    return NULL;
}

static int async_handler(pe_http_request_t *req)
{
    int now = atomic_fetch_add(&async_parked, 1) + 1;
    for (int max = atomic_load(&async_parked_max);
         now > max && !atomic_compare_exchange_weak(&async_parked_max, &max, now);)
        ;
    pe_http_suspend(req);
    pthread_t t;
    if (pthread_create(&t, NULL, finish_later, req) != 0) {
        pe_http_reply_error(req, PE_EINTERNAL, "internal_error", "no thread");
        pe_http_resume(req);
        return 0;
    }
    pthread_detach(t);
    return 0;
}

static int slow_handler(pe_http_request_t *req)
{
    atomic_fetch_add(&slow_started, 1);
    pe_test_sleep_ms(700);
    return pe_http_reply_json(req, 200, "{\"slow\":true}", 13);
}

static int never_replies(pe_http_request_t *req)
{
    atomic_fetch_add(&parked_started, 1);
    pe_http_suspend(req); /* parked until shutdown answers for it */
    return 0;
}

static int fails(pe_http_request_t *req)
{
    return PE_ECONFLICT;
}

static const pe_http_route_t ROUTES[] = {
    {"GET", "/v1/whoami", echo_store, PE_AUTH_PUBLISHABLE, 0, PE_ROUTE_CORS, NULL},
    {"POST", "/v1/echo", echo_body, PE_AUTH_NONE, 1024, PE_ROUTE_CORS | PE_ROUTE_JSON_BODY, NULL},
    {"POST", "/v1/beacon", echo_body, PE_AUTH_NONE, 1024,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY, NULL},
    {"GET", "/api/v1/stores/{storeId}/echo", echo_store, PE_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/async", async_handler, PE_AUTH_NONE, 0, 0, NULL},
    {"GET", "/slow", slow_handler, PE_AUTH_NONE, 0, 0, NULL},
    {"GET", "/parked", never_replies, PE_AUTH_NONE, 0, 0, NULL},
    {"GET", "/fails", fails, PE_AUTH_NONE, 0, 0, NULL},
};

static void start_server(void)
{
    pe_http_router_t *router = pe_test_router_new(ROUTES, PE_ARRAY_LEN(ROUTES));
    pe_http_server_config_t cfg = {
        .host = "127.0.0.1",
        .port = 0,
        .threads = 2,
        .max_connections = 64,
        .conn_timeout_s = 10,
        .app = &app,
        .authenticate = pe_api_authenticate,
    };
    char err[256];
    server = pe_http_server_new(&cfg, router, err, sizeof err);
    assert_non_null(server);
    app.http = server;
    assert_int_equal(pe_http_server_start(server, err, sizeof err), 0);
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)pe_http_server_port(server));
}

static int setup(void **state)
{
    pe_test_fixture_open(&fx, PE_LOG_WARN, 4);
    app.db = fx.pool;
    char err[256];
    app.redis = pe_redis_new(pe_test_redis_url(), 1000, err, sizeof err);
    assert_non_null(app.redis);
    pe_test_tenant_make(&shop_a, fx.pool, "Shop A", "UTC", "EUR", NULL, NULL);
    start_server();
    return 0;
}

static int teardown(void **state)
{
    pe_http_server_free(server);
    pe_redis_free(app.redis);
    return pe_test_fixture_close(&fx);
}

static long get(const char *path, const char *const *headers, pe_test_response_t *r)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    assert_int_equal(pe_test_http("GET", url, NULL, headers, r), 0);
    return r->status;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_preflight_and_cors(void **state)
{
    pe_test_response_t r;
    char url[256];
    snprintf(url, sizeof url, "%s/v1/echo", base);
    const char *const pre[] = {"Origin: https://shop.example",
                               "Access-Control-Request-Method: POST", NULL};
    assert_int_equal(pe_test_http("OPTIONS", url, NULL, pre, &r), 0);
    assert_int_equal(r.status, 204);
    assert_string_equal(pe_test_header(&r, "Access-Control-Allow-Origin"), "*");
    assert_non_null(strstr(pe_test_header(&r, "Access-Control-Allow-Methods"), "POST"));
    assert_non_null(strstr(pe_test_header(&r, "Access-Control-Allow-Headers"), "Authorization"));
    assert_non_null(strstr(pe_test_header(&r, "Access-Control-Allow-Headers"), "Content-Type"));
    pe_test_response_free(&r);

    const char *const json[] = {"Content-Type: application/json", NULL};
    assert_int_equal(pe_test_http("POST", url, "{\"a\":[1,2]}", json, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"a\":[1,2]}");
    assert_string_equal(pe_test_header(&r, "Access-Control-Allow-Origin"), "*");
    assert_non_null(strstr(pe_test_header(&r, "Access-Control-Expose-Headers"), "ETag"));
    /* storefront routes do not carry the dashboard's CSP */
    assert_string_equal(pe_test_header(&r, "Content-Security-Policy"), "");
    pe_test_response_free(&r);

    /* the dashboard-side routes carry no CORS grant */
    get("/slow", NULL, &r);
    assert_string_equal(pe_test_header(&r, "Access-Control-Allow-Origin"), "");
    assert_non_null(
        strstr(pe_test_header(&r, "Content-Security-Policy"), "frame-ancestors 'none'"));
    pe_test_response_free(&r);
}

static void test_content_types(void **state)
{
    pe_test_response_t r;
    char url[256];
    snprintf(url, sizeof url, "%s/v1/echo", base);
    const char *const text[] = {"Content-Type: text/plain", NULL};
    assert_int_equal(pe_test_http("POST", url, "{}", text, &r), 0);
    assert_int_equal(r.status, 415);
    assert_non_null(strstr(r.body.data, "\"code\":\"unsupported_media_type\""));
    pe_test_response_free(&r);

    /* sendBeacon posts text/plain: accepted where the route says so */
    snprintf(url, sizeof url, "%s/v1/beacon", base);
    assert_int_equal(pe_test_http("POST", url, "{\"b\":1}", text, &r), 0);
    assert_int_equal(r.status, 200);
    pe_test_response_free(&r);

    const char *const json_charset[] = {"Content-Type: Application/JSON; charset=utf-8", NULL};
    assert_int_equal(pe_test_http("POST", url, "{\"b\":2}", json_charset, &r), 0);
    assert_int_equal(r.status, 200);
    pe_test_response_free(&r);
}

static void test_publishable_key_auth(void **state)
{
    pe_test_response_t r;
    char path[256];
    char bearer[128];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", shop_a.pk);
    const char *const hb[] = {bearer, NULL};
    assert_int_equal(get("/v1/whoami", hb, &r), 200);
    assert_non_null(strstr(r.body.data, shop_a.id));
    pe_test_response_free(&r);

    snprintf(path, sizeof path, "/v1/whoami?key=%s", shop_a.pk);
    assert_int_equal(get(path, NULL, &r), 200);
    assert_non_null(strstr(r.body.data, shop_a.id));
    pe_test_response_free(&r);

    snprintf(path, sizeof path, "/v1/whoami?key=%s", shop_a.sk);
    assert_int_equal(get(path, NULL, &r), 403);
    assert_non_null(strstr(r.body.data, "\"code\":\"forbidden\""));
    pe_test_response_free(&r);

    assert_int_equal(get("/v1/whoami", NULL, &r), 401);
    assert_non_null(strstr(r.body.data, "\"code\":\"unauthorized\""));
    pe_test_response_free(&r);

    assert_int_equal(get("/v1/whoami?key=pk_nope", NULL, &r), 401);
    pe_test_response_free(&r);

    /* a publishable key never opens the admin API, even for its own store */
    snprintf(path, sizeof path, "/api/v1/stores/%s/echo", shop_a.id);
    assert_int_equal(get(path, hb, &r), 403);
    pe_test_response_free(&r);
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", shop_a.sk);
    assert_int_equal(get(path, hb, &r), 200);
    pe_test_response_free(&r);
}

typedef struct {
    int index;
    long status;
    char body[128];
} async_call_t;

static void *call_async(void *arg)
{
    async_call_t *c = arg;
    char path[64];
    snprintf(path, sizeof path, "/async?v=%d", c->index);
    pe_test_response_t r;
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    if (pe_test_http("GET", url, NULL, NULL, &r) == 0) {
        c->status = r.status;
        snprintf(c->body, sizeof c->body, "%s", r.body.data ? r.body.data : "");
    }
    pe_test_response_free(&r);
    return NULL;
}

static void test_suspend_resume(void **state)
{
    enum { N = 16 };
    pthread_t t[N];
    async_call_t calls[N];
    for (int i = 0; i < N; i++) {
        calls[i] = (async_call_t){.index = i};
        assert_int_equal(pthread_create(&t[i], NULL, call_async, &calls[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"async\":true,\"v\":\"%d\"}", i);
        assert_int_equal(calls[i].status, 200);
        assert_string_equal(calls[i].body, want);
    }
    /* 16 requests on 2 HTTP threads: at least three were parked at once (a parked request
     * does not hold its thread). */
    assert_true(atomic_load(&async_parked_max) >= 3);
    assert_int_equal(atomic_load(&async_parked), 0);
}

static void test_handler_errors_and_chunked_limit(void **state)
{
    pe_test_response_t r;
    assert_int_equal(get("/fails", NULL, &r), 409);
    assert_non_null(strstr(r.body.data, "\"code\":\"conflict\""));
    pe_test_response_free(&r);

    /* a chunked body over the route's 1024 bytes is refused with 413 */
    pe_buf_t req = PE_BUF_INIT;
    pe_buf_puts(&req, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        pe_buf_puts(&req, "400\r\n");
        for (int k = 0; k < 1024; k++)
            pe_buf_puts(&req, " ");
        pe_buf_puts(&req, "\r\n");
    }
    pe_buf_puts(&req, "0\r\n\r\n");
    pe_buf_t out = PE_BUF_INIT;
    assert_true(pe_test_raw(pe_http_server_port(server), req.data, req.len, 1, 5000, &out) > 0);
    assert_non_null(strstr(out.data, "HTTP/1.1 413"));
    assert_non_null(strstr(out.data, "\"code\":\"payload_too_large\""));
    pe_buf_free(&req);
    pe_buf_free(&out);
}

static void *call_slow(void *arg)
{
    long *status = arg;
    pe_test_response_t r;
    char url[256];
    snprintf(url, sizeof url, "%s/slow", base);
    if (pe_test_http("GET", url, NULL, NULL, &r) == 0)
        *status = r.status;
    pe_test_response_free(&r);
    return NULL;
}

static void *call_parked(void *arg)
{
    long *status = arg;
    pe_test_response_t r;
    char url[256];
    snprintf(url, sizeof url, "%s/parked", base);
    if (pe_test_http("GET", url, NULL, NULL, &r) == 0)
        *status = r.status;
    pe_test_response_free(&r);
    return NULL;
}

/* Runs last: stops the server. */
static void test_graceful_stop(void **state)
{
    long slow_status = 0, parked_status = 0;
    pthread_t slow, parked;
    assert_int_equal(pthread_create(&slow, NULL, call_slow, &slow_status), 0);
    assert_int_equal(pthread_create(&parked, NULL, call_parked, &parked_status), 0);
    while (atomic_load(&slow_started) == 0 || atomic_load(&parked_started) == 0)
        pe_test_sleep_ms(5);

    int64_t start = pe_now_mono_us();
    pe_http_server_stop(server, 1500);
    double seconds = (double)(pe_now_mono_us() - start) / 1e6;
    pthread_join(slow, NULL);
    pthread_join(parked, NULL);

    assert_int_equal(slow_status, 200);   /* in-flight work finished */
    assert_int_equal(parked_status, 503); /* a request parked past the grace is answered */
    /* the grace, and then not much more (generous: ASan on two busy cores) */
    assert_true(seconds >= 1.4 && seconds < 1.5 + 5.0);

    /* nothing listens any more */
    pe_buf_t out = PE_BUF_INIT;
    assert_int_equal(pe_test_raw(pe_http_server_port(server), "GET /healthz HTTP/1.0\r\n\r\n", 24,
                                 1, 1000, &out),
                     -1);
    pe_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preflight_and_cors),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_publishable_key_auth),
        cmocka_unit_test(test_suspend_resume),
        cmocka_unit_test(test_handler_errors_and_chunked_limit),
        cmocka_unit_test(test_graceful_stop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
