/*
 * test_ops.c — what an operator relies on, against profit-engine child processes: liveness,
 * readiness (and its failures: a missing database, pending migrations, a dead Redis),
 * Prometheus metrics that count what was served, request ids, the security headers of the
 * dashboard, the Allow header of a 405, the JSON access log, graceful shutdown, idle-connection
 * timeouts and the connection limit.
 *
 * Invariants the tests hold the server to:
 *  1. /healthz needs nothing but the process; /readyz is 200 only when PostgreSQL, Redis and the
 *     migrations are all fine, else 503 "not_ready" naming the failing check.
 *  2. /metrics counts every request by route and status, exactly.
 *  3. Every response our code sends has X-Request-Id: the caller's when it is a valid id, a fresh
 *     one otherwise; each request is one JSON line in the access log under that id.
 *  4. The dashboard is served with a CSP that forbids framing and inline code, nosniff and
 *     X-Frame-Options DENY.
 *  5. SIGTERM ends the process with status 0 within 10 s; a stalled connection is closed after
 *     PE_CONNECTION_TIMEOUT; exhausting PE_MAX_CONNECTIONS does not wedge the server.
 *
 * The main server runs with PE_CONNECTION_TIMEOUT=2, PE_MAX_CONNECTIONS=8 and a pool of 3
 * connections; the readiness failures each get a short-lived server of their own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pe/version.h"
#include "pe_test.h"

#define POOL_SIZE       3
#define CONN_TIMEOUT_S  2
#define MAX_CONNECTIONS 8
/* A stalled connection must be closed after about CONN_TIMEOUT_S, not at once and not never. */
#define MIN_CLOSE_MS     ((long)(CONN_TIMEOUT_S - 1) * 1000)
#define MAX_CLOSE_MS     ((long)(CONN_TIMEOUT_S + 6) * 1000) /* ASan on two busy cores */
#define REQUEST_ID_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

static pe_test_fixture_t fx;

/* ---- helpers --------------------------------------------------------------------------------- */

/* Number of response header lines named `name`. */
static int header_count(const pe_test_response_t *r, const char *name)
{
    int n = 0;
    size_t len = strlen(name);
    for (const char *p = r->headers.data; p && *p;) {
        if (strncasecmp(p, name, len) == 0 && p[len] == ':')
            n++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return n;
}

/* The value of the sample whose name-and-labels are exactly `series`, or -1 when absent. */
static double metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

static char *scrape(void)
{
    pe_test_response_t r;
    pe_test_request(&fx.server, "GET", "/metrics", NULL, &r);
    assert_int_equal(r.status, 200);
    char *text = pe_buf_steal(&r.body);
    pe_test_response_free(&r);
    assert_non_null(text);
    return text;
}

/* A counter of requests_total, 0 when the series does not exist yet. */
static double count_of(const char *text, const char *method, const char *route, int status)
{
    char series[256];
    snprintf(series, sizeof series,
             "pe_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"}", method, route,
             status);
    double v = metric(text, series);
    return v < 0 ? 0 : v;
}

static void expect_delta(const char *before, const char *after, const char *method,
                         const char *route, int status, double want)
{
    double was = count_of(before, method, route, status);
    double now = count_of(after, method, route, status);
    if (now - was != want)
        fail_msg("requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} went from %g to %g; "
                 "want +%g",
                 method, route, status, was, now, want);
}

/* The counts test_metrics expects after its requests, without failing. */
static bool deltas_settled(const char *before, const char *after)
{
    static const struct {
        const char *method, *route;
        int status;
        double want;
    } want[] = {
        {"GET", "/healthz", 200, 3}, {"GET", "/readyz", 200, 2},
        {"GET", "web", 404, 2},      {"GET", "/api/v1/stores/{storeId}", 401, 1},
        {"", "unmatched", 405, 1},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(want); i++)
        if (count_of(after, want[i].method, want[i].route, want[i].status) -
                count_of(before, want[i].method, want[i].route, want[i].status) !=
            want[i].want)
            return false;
    return true;
}

static bool generated_request_id(const char *id)
{
    /* <12 hex>-<8 hex> */
    if (strlen(id) != 21 || id[12] != '-')
        return false;
    for (size_t i = 0; i < 21; i++)
        if (i != 12 && !strchr("0123456789abcdef", id[i]))
            return false;
    return true;
}

/* Expects the readiness failure of a server started on db with extra env. */
static void expect_not_ready(const char *db, const char *const *env, const char *check,
                             const char *state, const char *in_message)
{
    pe_test_server_t s;
    pe_test_server_start(&s, db, env);
    pe_test_response_t r;
    pe_test_request(&s, "GET", "/readyz", NULL, &r);
    if (r.status != 503)
        fail_msg("/readyz: status %ld, want 503: %.300s", r.status, r.body.data ? r.body.data : "");
    cJSON *j = pe_test_response_json(&r);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_string_equal(pe_test_json_require_str(e, "code"), "not_ready");
    const char *msg = pe_test_json_require_str(e, "message");
    if (!strstr(msg, in_message))
        fail_msg("/readyz message '%s' does not contain '%s'", msg, in_message);
    const cJSON *checks = cJSON_GetObjectItemCaseSensitive(j, "checks");
    assert_string_equal(pe_test_json_require_str(checks, check), state);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "status"));
    cJSON_Delete(j);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-store");
    pe_test_response_free(&r);

    /* Liveness does not depend on it. */
    pe_test_request(&s, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    pe_test_response_free(&r);
    assert_int_equal(pe_test_server_stop(&s), 0);
}

/* ---- health and readiness -------------------------------------------------------------------- */

static void test_healthz(void **state)
{
    (void)state;
    pe_test_response_t r;
    pe_test_request(&fx.server, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(strncmp(pe_test_header(&r, "Content-Type"), "application/json", 16) == 0);
    cJSON *j = pe_test_response_json(&r);
    assert_string_equal(pe_test_json_require_str(j, "status"), "ok");
    assert_string_equal(pe_test_json_require_str(j, "version"), PE_VERSION);
    cJSON_Delete(j);
    pe_test_response_free(&r);

    /* HEAD answers like GET, without a body. */
    pe_test_request(&fx.server, "HEAD", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    pe_test_response_free(&r);
}

static void test_readyz_ok(void **state)
{
    (void)state;
    pe_test_response_t r;
    pe_test_request(&fx.server, "GET", "/readyz", NULL, &r);
    if (r.status != 200)
        fail_msg("/readyz: %ld %.300s", r.status, r.body.data ? r.body.data : "");
    cJSON *j = pe_test_response_json(&r);
    assert_string_equal(pe_test_json_require_str(j, "status"), "ready");
    const cJSON *checks = cJSON_GetObjectItemCaseSensitive(j, "checks");
    assert_true(cJSON_IsObject(checks));
    assert_int_equal(cJSON_GetArraySize(checks), 3);
    assert_string_equal(pe_test_json_require_str(checks, "postgres"), "ok");
    assert_string_equal(pe_test_json_require_str(checks, "redis"), "ok");
    assert_string_equal(pe_test_json_require_str(checks, "migrations"), "ok");
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "error"));
    cJSON_Delete(j);
    pe_test_response_free(&r);
}

static void test_readyz_missing_database(void **state)
{
    (void)state;
    char *missing = NULL;
    assert_true(asprintf(&missing, "%s dbname=pe_t_missing_%d", fx.conninfo, (int)getpid()) > 0);
    expect_not_ready(missing, NULL, "postgres", "unreachable", "postgres unreachable");
    free(missing);
}

static void test_readyz_unmigrated(void **state)
{
    (void)state;
    char *empty = pe_test_db_create();
    expect_not_ready(empty, NULL, "migrations", "pending", "migrations pending");
    pe_test_db_drop(empty);
}

static void test_readyz_dead_redis(void **state)
{
    (void)state;
    char dead[128];
    snprintf(dead, sizeof dead, "PE_REDIS_URL=unix:///tmp/pe-test-ops-%d-no-redis.sock",
             (int)getpid());
    expect_not_ready(fx.conninfo, (const char *const[]){dead, NULL}, "redis", "unreachable",
                     "redis unreachable");
}

/* ---- metrics --------------------------------------------------------------------------------- */

static void test_metrics(void **state)
{
    (void)state;
    pe_test_response_t r;
    char *before = scrape();

    /* A known mix: 3 healthz, 2 readyz, 2 dashboard 404s, 1 store 401, 1 405. */
    for (int i = 0; i < 3; i++) {
        pe_test_request(&fx.server, "GET", "/healthz", NULL, &r);
        pe_test_response_free(&r);
    }
    for (int i = 0; i < 2; i++) {
        pe_test_request(&fx.server, "GET", "/readyz", NULL, &r);
        assert_int_equal(r.status, 200);
        pe_test_response_free(&r);
    }
    for (int i = 0; i < 2; i++) {
        pe_test_request(&fx.server, "GET", "/missing-file.js", NULL, &r);
        assert_int_equal(r.status, 404);
        pe_test_response_free(&r);
    }
    pe_test_request(&fx.server, "GET", "/api/v1/stores/00000000-0000-4000-8000-000000000000", NULL,
                    &r);
    assert_int_equal(r.status, 401);
    pe_test_response_free(&r);
    pe_test_request(&fx.server, "DELETE", "/readyz", NULL, &r);
    assert_int_equal(r.status, 405);
    pe_test_response_free(&r);

    /* A request is counted when libmicrohttpd reports it completed, which can be a moment
     * after the client has the whole reply: scrape until the counts settle. */
    pe_test_response_t m;
    int64_t deadline = pe_now_mono_us() + (int64_t)PE_TEST_WAIT_MS * 1000;
    for (;;) {
        pe_test_request(&fx.server, "GET", "/metrics", NULL, &m);
        assert_int_equal(m.status, 200);
        if (deltas_settled(before, m.body.data) || pe_now_mono_us() > deadline)
            break;
        pe_test_response_free(&m);
        usleep(20 * 1000);
    }
    assert_string_equal(pe_test_header(&m, "Content-Type"),
                        "text/plain; version=0.0.4; charset=utf-8");
    const char *after = m.body.data;

    /* The commit label is whatever the binary was built from; the version is ours. */
    char build[256];
    snprintf(build, sizeof build, "\npe_build_info{version=\"%s\",commit=\"", PE_VERSION);
    const char *bi = strstr(after, build);
    assert_non_null(bi);
    bi += strlen(build);
    size_t commit_len = strcspn(bi, "\"");
    assert_true(commit_len > 0 && commit_len <= 40);
    assert_true(strncmp(bi + commit_len, "\"} 1\n", 5) == 0);
    assert_true(metric(after, "pe_uptime_seconds") >= 0);

    expect_delta(before, after, "GET", "/healthz", 200, 3);
    expect_delta(before, after, "GET", "/readyz", 200, 2);
    expect_delta(before, after, "GET", "web", 404, 2);
    expect_delta(before, after, "GET", "/api/v1/stores/{storeId}", 401, 1);
    expect_delta(before, after, "", "unmatched", 405, 1);
    /* The scrape before this one is counted too (and any retried scrape). */
    assert_true(
        count_of(after, "GET", "/metrics", 200) - count_of(before, "GET", "/metrics", 200) >= 1);

    /* Histogram: cumulative buckets, +Inf equals _count equals the sum of statuses. */
    double prev = 0;
    static const char *const les[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                      "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                      "1",      "2.5",   "5",      "10",    "+Inf"};
    for (size_t i = 0; i < PE_ARRAY_LEN(les); i++) {
        char series[256];
        snprintf(series, sizeof series,
                 "pe_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\","
                 "le=\"%s\"}",
                 les[i]);
        double v = metric(after, series);
        if (v < prev)
            fail_msg("bucket le=%s is %g, below the previous %g", les[i], v, prev);
        prev = v;
    }
    double total = count_of(after, "GET", "/healthz", 200);
    assert_true(prev == total);
    assert_true(metric(after, "pe_http_request_duration_seconds_count{method=\"GET\",route=\"/"
                              "healthz\"}") == total);
    assert_true(metric(after, "pe_http_request_duration_seconds_sum{method=\"GET\",route=\"/"
                              "healthz\"}") >= 0);

    assert_true(metric(after, "pe_db_pool_connections{state=\"max\"}") == POOL_SIZE);
    double open = metric(after, "pe_db_pool_connections{state=\"open\"}");
    assert_true(open >= 1 && open <= POOL_SIZE); /* /readyz used the pool */
    assert_true(metric(after, "pe_db_pool_connections{state=\"in_use\"}") == 0);
    assert_true(metric(after, "pe_http_requests_in_flight") >= 1); /* this very scrape */

    /* Text format: every sample's family has # HELP and # TYPE lines. */
    for (const char *p = after; p && *p;) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol); /* the exposition ends with a newline */
        if (*p != '#') {
            char family[128];
            size_t n = strcspn(p, "{ ");
            assert_true(n > 0 && n < sizeof family);
            snprintf(family, sizeof family, "%.*s", (int)n, p);
            /* A histogram's samples belong to the family without the suffix. */
            char type_line[192];
            static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
            for (size_t k = 0; k < PE_ARRAY_LEN(suffixes); k++) {
                size_t sl = strlen(suffixes[k]), fl = strlen(family);
                if (fl <= sl || strcmp(family + fl - sl, suffixes[k]) != 0)
                    continue;
                snprintf(type_line, sizeof type_line, "# TYPE %.*s histogram\n", (int)(fl - sl),
                         family);
                if (strstr(after, type_line))
                    family[fl - sl] = '\0';
            }
            snprintf(type_line, sizeof type_line, "# TYPE %s ", family);
            if (!strstr(after, type_line))
                fail_msg("no '# TYPE %s' for the sample line '%.*s'", family, (int)(eol - p), p);
        }
        p = eol + 1;
    }
    pe_test_response_free(&m);
    free(before);
}

/* ---- request ids ----------------------------------------------------------------------------- */

static void test_request_ids(void **state)
{
    (void)state;
    pe_test_response_t r;
    static const struct {
        const char *method;
        const char *path;
        long status;
    } cases[] = {
        {"GET", "/healthz", 200},   {"GET", "/readyz", 200},      {"GET", "/metrics", 200},
        {"GET", "/", 200},          {"GET", "/nothing.css", 404}, {"DELETE", "/healthz", 405},
        {"GET", "/api/v1/me", 401}, {"GET", "/heal%00thz", 400},  {"OPTIONS", "/healthz", 204},
    };
    char seen[PE_ARRAY_LEN(cases)][64];
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        pe_test_request(&fx.server, cases[i].method, cases[i].path, NULL, &r);
        assert_int_equal(r.status, cases[i].status);
        const char *id = pe_test_header(&r, "X-Request-Id");
        if (!generated_request_id(id))
            fail_msg("%s %s: X-Request-Id '%s' is not a generated id", cases[i].method,
                     cases[i].path, id);
        assert_int_equal(header_count(&r, "X-Request-Id"), 1);
        snprintf(seen[i], sizeof seen[i], "%s", id);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(seen[k], seen[i]);
        assert_string_equal(pe_test_header(&r, "X-Content-Type-Options"), "nosniff");
        pe_test_response_free(&r);
    }

    /* A valid incoming id is echoed. */
    static const char *const valid[] = {"abc-123_X.y", "0123456789abcdef0123456789abcdef", "a",
                                        "7f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"};
    for (size_t i = 0; i < PE_ARRAY_LEN(valid); i++) {
        char h[128];
        snprintf(h, sizeof h, "X-Request-Id: %s", valid[i]);
        pe_test_request(&fx.server, "GET", "/healthz", (const char *const[]){h, NULL}, &r);
        assert_string_equal(pe_test_header(&r, "X-Request-Id"), valid[i]);
        pe_test_response_free(&r);
    }
    char longest[80];
    memset(longest, 'x', 64);
    longest[64] = '\0';
    char h64[100];
    snprintf(h64, sizeof h64, "X-Request-Id: %s", longest);
    pe_test_request(&fx.server, "GET", "/healthz", (const char *const[]){h64, NULL}, &r);
    assert_string_equal(pe_test_header(&r, "X-Request-Id"), longest);
    pe_test_response_free(&r);

    /* An invalid one is replaced, never reflected. */
    char too_long[100];
    memset(too_long, 'x', 65);
    too_long[65] = '\0';
    char h65[128];
    snprintf(h65, sizeof h65, "X-Request-Id: %s", too_long);
    const char *invalid[] = {
        "X-Request-Id: has spaces in it",
        "X-Request-Id: <script>alert(1)</script>",
        "X-Request-Id: a/b",
        "X-Request-Id: caf\xc3\xa9",
        "X-Request-Id: a\"b",
        h65,
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(invalid); i++) {
        pe_test_request(&fx.server, "GET", "/healthz", (const char *const[]){invalid[i], NULL}, &r);
        const char *id = pe_test_header(&r, "X-Request-Id");
        if (!generated_request_id(id))
            fail_msg("'%s' came back as '%s', not a fresh id", invalid[i], id);
        pe_test_response_free(&r);
    }
}

/* ---- headers --------------------------------------------------------------------------------- */

static void expect_dashboard_headers(const pe_test_response_t *r, const char *what)
{
    const char *csp = pe_test_header(r, "Content-Security-Policy");
    if (!strstr(csp, "frame-ancestors 'none'") || strstr(csp, "unsafe-inline") ||
        strstr(csp, "unsafe-eval") || !strstr(csp, "default-src 'self'") ||
        !strstr(csp, "object-src 'none'"))
        fail_msg("%s: Content-Security-Policy '%s'", what, csp);
    assert_int_equal(header_count(r, "Content-Security-Policy"), 1);
    assert_string_equal(pe_test_header(r, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(pe_test_header(r, "X-Frame-Options"), "DENY");
    assert_string_equal(pe_test_header(r, "Referrer-Policy"), "same-origin");
    assert_null(strstr(r->headers.data, "Access-Control-Allow-Origin"));
}

static void test_dashboard_headers(void **state)
{
    (void)state;
    pe_test_response_t r, deep;

    pe_test_request(&fx.server, "GET", "/", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(pe_test_header(&r, "Content-Type"), "text/html; charset=utf-8");
    assert_true(r.body.len > 0);
    assert_non_null(strcasestr(r.body.data, "<!doctype html>"));
    expect_dashboard_headers(&r, "/");
    /* index.html is revalidated, once: one Cache-Control header. */
    assert_int_equal(header_count(&r, "Cache-Control"), 1);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-cache");

    /* A client-side route (a deep link) is the same document with the same headers. */
    pe_test_request(&fx.server, "GET", "/funnel", NULL, &deep);
    assert_int_equal(deep.status, 200);
    assert_string_equal(pe_test_header(&deep, "Content-Type"), "text/html; charset=utf-8");
    assert_int_equal(deep.body.len, r.body.len);
    assert_memory_equal(deep.body.data, r.body.data, r.body.len);
    expect_dashboard_headers(&deep, "/funnel");
    assert_int_equal(header_count(&deep, "Cache-Control"), 1);
    assert_string_equal(pe_test_header(&deep, "Cache-Control"), "no-cache");
    pe_test_response_free(&deep);
    pe_test_response_free(&r);

    /* A missing asset is a 404 in the error shape, never cached as if it were a file. */
    pe_test_request(&fx.server, "GET", "/assets/missing.js", NULL, &r);
    assert_int_equal(r.status, 404);
    cJSON *j = pe_test_response_json(&r);
    assert_string_equal(
        pe_test_json_require_str(cJSON_GetObjectItemCaseSensitive(j, "error"), "code"),
        "not_found");
    cJSON_Delete(j);
    expect_dashboard_headers(&r, "/assets/missing.js");
    assert_int_equal(header_count(&r, "Cache-Control"), 1);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-store");
    pe_test_response_free(&r);

    /* API responses carry the same protections. */
    pe_test_request(&fx.server, "GET", "/api/v1/me", NULL, &r);
    assert_int_equal(r.status, 401);
    expect_dashboard_headers(&r, "/api/v1/me");
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-store");
    pe_test_response_free(&r);
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    static const struct {
        const char *method;
        const char *path;
        const char *allow;
    } cases[] = {
        {"DELETE", "/healthz", "GET, HEAD"},
        {"POST", "/metrics", "GET, HEAD"},
        {"PUT", "/api/v1/auth/login", "POST"},
        {"DELETE", "/api/v1/stores/00000000-0000-4000-8000-000000000000", "GET, HEAD"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        pe_test_response_t r;
        pe_test_request(&fx.server, cases[i].method, cases[i].path, NULL, &r);
        assert_int_equal(r.status, 405);
        if (strcmp(pe_test_header(&r, "Allow"), cases[i].allow) != 0)
            fail_msg("%s %s: Allow '%s', want '%s'", cases[i].method, cases[i].path,
                     pe_test_header(&r, "Allow"), cases[i].allow);
        cJSON *j = pe_test_response_json(&r);
        assert_string_equal(
            pe_test_json_require_str(cJSON_GetObjectItemCaseSensitive(j, "error"), "code"),
            "method_not_allowed");
        cJSON_Delete(j);
        pe_test_response_free(&r);
    }
}

/* ---- access log ------------------------------------------------------------------------------ */

/* Reads the log; returns the http_request entries whose request_id is id (array, caller frees),
 * failing on any line that is not a JSON object. */
static cJSON *log_entries(const char *id)
{
    FILE *f = fopen(fx.server.log_path, "r");
    assert_non_null(f);
    cJSON *found = cJSON_CreateArray();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        cJSON *j = NULL;
        char err[128];
        if (pe_json_parse(line, (size_t)n, &j, err, sizeof err) != 0 || !cJSON_IsObject(j))
            fail_msg("log line is not a JSON object (%s): %.300s", err, line);
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "event");
        const cJSON *rid = cJSON_GetObjectItemCaseSensitive(j, "request_id");
        if (cJSON_IsString(ev) && strcmp(ev->valuestring, "http_request") == 0 &&
            cJSON_IsString(rid) && strcmp(rid->valuestring, id) == 0)
            cJSON_AddItemToArray(found, j);
        else
            cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    return found;
}

static void test_access_log(void **state)
{
    (void)state;
    static const struct {
        const char *method;
        const char *path;
        const char *logged_path;
        long status;
        const char *route;
    } cases[] = {
        {"GET", "/healthz?probe=1", "/healthz", 200, "/healthz"},
        {"GET", "/funnel", "/funnel", 200, "web"},
        {"GET", "/api/v1/me", "/api/v1/me", 401, "/api/v1/me"},
        {"DELETE", "/healthz", "/healthz", 405, ""},
        {"POST", "/api/v1/auth/login", "/api/v1/auth/login", 415, "/api/v1/auth/login"},
    };
    char ids[PE_ARRAY_LEN(cases)][64];
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        snprintf(ids[i], sizeof ids[i], "ops-log-%d-%zu", (int)getpid(), i);
        char h[128];
        snprintf(h, sizeof h, "X-Request-Id: %s", ids[i]);
        char url[256];
        snprintf(url, sizeof url, "%s%s", fx.server.base_url, cases[i].path);
        pe_test_response_t r;
        const bool post = strcmp(cases[i].method, "POST") == 0;
        assert_int_equal(pe_test_http(cases[i].method, url, post ? "a=b" : NULL,
                                      (const char *const[]){h, NULL}, &r),
                         0);
        assert_int_equal(r.status, cases[i].status);
        pe_test_response_free(&r);
    }
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        /* The line is written when the request completes, just after the reply is sent. */
        cJSON *found = NULL;
        int64_t deadline = pe_now_mono_us() + (int64_t)PE_TEST_WAIT_MS * 1000;
        for (;;) {
            found = log_entries(ids[i]);
            if (cJSON_GetArraySize(found) > 0 || pe_now_mono_us() > deadline)
                break;
            cJSON_Delete(found);
            usleep(20 * 1000);
        }
        if (cJSON_GetArraySize(found) != 1)
            fail_msg("request %s: %d access log lines, want 1", ids[i], cJSON_GetArraySize(found));
        const cJSON *e = cJSON_GetArrayItem(found, 0);
        assert_string_equal(pe_test_json_require_str(e, "level"), "info");
        assert_string_equal(pe_test_json_require_str(e, "method"), cases[i].method);
        assert_string_equal(pe_test_json_require_str(e, "path"), cases[i].logged_path);
        assert_string_equal(pe_test_json_require_str(e, "route"), cases[i].route);
        assert_non_null(pe_test_json_require_str(e, "ts"));
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status");
        assert_true(cJSON_IsNumber(st));
        assert_int_equal(st->valueint, cases[i].status);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "duration_ms");
        assert_true(cJSON_IsNumber(d));
        assert_true(d->valuedouble >= 0 && d->valuedouble < 10000);
        assert_null(cJSON_GetObjectItemCaseSensitive(e, "aborted"));
        cJSON_Delete(found);
    }
}

/* ---- connections ----------------------------------------------------------------------------- */

static int connect_local(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Milliseconds until the peer closes fd (EOF or reset), reading and discarding what comes;
 * -1 when it is still open after limit_ms. */
static long ms_until_closed(int fd, long limit_ms)
{
    int64_t start = pe_now_mono_us();
    for (;;) {
        long left = limit_ms - (long)((pe_now_mono_us() - start) / 1000);
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        char buf[1024];
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got > 0) {
            /* Whatever the server says before closing, it is not a success or a 5xx. */
            buf[got < (ssize_t)sizeof buf ? got : (ssize_t)sizeof buf - 1] = '\0';
            if (strncmp(buf, "HTTP/1.", 7) == 0) {
                long status = strtol(buf + 9, NULL, 10);
                assert_true(status >= 400 && status < 500);
            }
            continue;
        }
        return (long)((pe_now_mono_us() - start) / 1000);
    }
}

static void test_stalled_connection_is_closed(void **state)
{
    (void)state;
    /* A partial request line, then silence. */
    int fd = connect_local(fx.server.port);
    assert_int_equal(send(fd, "GET /heal", 9, MSG_NOSIGNAL), 9);
    long ms = ms_until_closed(fd, MAX_CLOSE_MS + 2000);
    close(fd);
    if (ms < MIN_CLOSE_MS || ms > MAX_CLOSE_MS)
        fail_msg("a stalled partial request was closed after %ld ms; want about %d s", ms,
                 CONN_TIMEOUT_S);

    /* A connection that never sends a byte. */
    fd = connect_local(fx.server.port);
    ms = ms_until_closed(fd, MAX_CLOSE_MS + 2000);
    close(fd);
    if (ms < 0 || ms > MAX_CLOSE_MS)
        fail_msg("a silent connection was closed after %ld ms; want about %d s", ms,
                 CONN_TIMEOUT_S);

    /* Headers complete except for the blank line. */
    fd = connect_local(fx.server.port);
    static const char partial[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
    assert_int_equal(send(fd, partial, sizeof partial - 1, MSG_NOSIGNAL),
                     (ssize_t)sizeof partial - 1);
    ms = ms_until_closed(fd, MAX_CLOSE_MS + 2000);
    close(fd);
    if (ms < 0 || ms > MAX_CLOSE_MS)
        fail_msg("stalled headers were closed after %ld ms; want about %d s", ms, CONN_TIMEOUT_S);

    pe_test_response_t r;
    pe_test_request(&fx.server, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    pe_test_response_free(&r);
}

static void test_connection_limit(void **state)
{
    (void)state;
    int fds[20];
    for (size_t i = 0; i < PE_ARRAY_LEN(fds); i++)
        fds[i] = connect_local(fx.server.port); /* the kernel accepts; the server may drop */
    /* Hold them a moment so the server has seen them all. */
    usleep(300 * 1000);
    assert_true(pe_test_server_alive(&fx.server));
    for (size_t i = 0; i < PE_ARRAY_LEN(fds); i++)
        close(fds[i]);

    /* Once they are gone, requests are served again. */
    int64_t deadline = pe_now_mono_us() + (int64_t)PE_TEST_WAIT_MS * 1000;
    long status = 0;
    while (status != 200 && pe_now_mono_us() < deadline) {
        pe_test_response_t r;
        char url[128];
        snprintf(url, sizeof url, "%s/healthz", fx.server.base_url);
        if (pe_test_http("GET", url, NULL, NULL, &r) == 0)
            status = r.status;
        pe_test_response_free(&r);
        if (status != 200)
            usleep(50 * 1000);
    }
    assert_int_equal(status, 200);

    /* And the limit is real capacity, not a leak: 8 concurrent keep-alive requests work. */
    for (int round = 0; round < 3; round++) {
        int keep[MAX_CONNECTIONS / 2];
        for (size_t i = 0; i < PE_ARRAY_LEN(keep); i++) {
            keep[i] = connect_local(fx.server.port);
            static const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
            assert_int_equal(send(keep[i], req, sizeof req - 1, MSG_NOSIGNAL),
                             (ssize_t)sizeof req - 1);
        }
        for (size_t i = 0; i < PE_ARRAY_LEN(keep); i++) {
            char buf[16] = "";
            struct pollfd pfd = {.fd = keep[i], .events = POLLIN};
            assert_int_equal(poll(&pfd, 1, 3000), 1);
            assert_true(recv(keep[i], buf, 12, 0) == 12);
            assert_memory_equal(buf, "HTTP/1.1 200", 12);
            close(keep[i]);
        }
    }
    assert_true(pe_test_server_alive(&fx.server));
}

/* ---- shutdown -------------------------------------------------------------------------------- */

/* A job still running when the grace ends is left behind, not waited for: here the roll-up
 * waits on a lock another session holds (as it would behind a long migration, or grinding
 * through a large store), and SIGTERM still ends the server with 0 within the grace and a
 * second; PostgreSQL ends the abandoned statement once the connection is gone, rolled back. */
static void test_shutdown_leaves_a_stuck_job(void **state)
{
    (void)state;
    PGconn *holder = PQconnectdb(fx.conninfo);
    assert_int_equal(PQstatus(holder), CONNECTION_OK);
    PGresult *r = PQexec(holder, "BEGIN; LOCK TABLE agg_watermarks IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    /* its own application_name, to tell its sessions from the fixture server's (which runs no
     * job: its roll-up would take the roll-up's advisory lock and this one would skip its run) */
    char conninfo[1024];
    snprintf(conninfo, sizeof conninfo, "%s application_name=pe-stuck-job", fx.conninfo);
    pe_test_server_t srv;
    pe_test_server_start(&srv, conninfo,
                         (const char *const[]){"PE_JOBS=aggregate", "PE_SHUTDOWN_GRACE=1",
                                               "PE_LOG_LEVEL=info", NULL});
    static const char WAITING[] =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        "   AND wait_event_type = 'Lock' AND application_name = 'pe-stuck-job'";
    /* the roll-up starts 10 s after the server */
    if (!pe_test_sql_wait(fx.conninfo, WAITING, "1", 30000))
        fail_msg("the roll-up never waited on the lock (log: %s)", srv.log_path);
    int64_t start = pe_now_mono_us();
    int rc = pe_test_server_stop(&srv);
    double seconds = (double)(pe_now_mono_us() - start) / 1e6;
    print_message("SIGTERM with the roll-up stuck on a lock: exit %d after %.1f s\n", rc, seconds);
    assert_int_equal(rc, 0);
    assert_true(seconds < 4); /* the 1 s grace, a second for the job, slack */
    /* PostgreSQL sees the connection gone and ends the statement (client_connection_check_interval)
     */
    bool ended = pe_test_sql_wait(fx.conninfo, WAITING, "0", 10000);
    r = PQexec(holder, "ROLLBACK");
    PQclear(r);
    PQfinish(holder);
    assert_true(ended);
    FILE *f = fopen(srv.log_path, "r");
    assert_non_null(f);
    char line[4096];
    bool abandoned = false, complete = false;
    while (fgets(line, sizeof line, f)) {
        abandoned = abandoned || (strstr(line, "\"event\":\"job_abandoned\"") &&
                                  strstr(line, "aggregate still running"));
        complete = complete || (abandoned && strstr(line, "\"event\":\"shutdown_complete\""));
    }
    fclose(f);
    assert_true(abandoned && complete);
}

static void test_graceful_shutdown(void **state)
{
    (void)state;
    assert_true(pe_test_server_alive(&fx.server));
    int64_t start = pe_now_mono_us();
    int rc = pe_test_server_stop(&fx.server);
    double seconds = (double)(pe_now_mono_us() - start) / 1e6;
    if (rc != 0)
        fail_msg("SIGTERM: exit %d (log: %s)", rc, fx.server.log_path);
    if (seconds > 10)
        fail_msg("SIGTERM: took %.1f s", seconds);

    /* It said so in its log, in order. */
    FILE *f = fopen(fx.server.log_path, "r");
    assert_non_null(f);
    char line[4096];
    bool started = false, draining = false, complete = false;
    while (fgets(line, sizeof line, f)) {
        started = started || strstr(line, "\"event\":\"server_started\"");
        draining = draining || (started && strstr(line, "\"event\":\"shutdown_started\""));
        complete = complete || (draining && strstr(line, "\"event\":\"shutdown_complete\""));
    }
    fclose(f);
    assert_true(started && draining && complete);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 0);
    char pool[64], timeout[64], maxc[64];
    snprintf(pool, sizeof pool, "PE_DB_POOL_SIZE=%d", POOL_SIZE);
    snprintf(timeout, sizeof timeout, "PE_CONNECTION_TIMEOUT=%d", CONN_TIMEOUT_S);
    snprintf(maxc, sizeof maxc, "PE_MAX_CONNECTIONS=%d", MAX_CONNECTIONS);
    pe_test_server_start(&fx.server, fx.conninfo,
                         (const char *const[]){pool, timeout, maxc, "PE_HTTP_THREADS=2",
                                               "PE_LOG_LEVEL=info", "PE_JOBS=none", NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_readyz_ok),
        cmocka_unit_test(test_readyz_missing_database),
        cmocka_unit_test(test_readyz_unmigrated),
        cmocka_unit_test(test_readyz_dead_redis),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_request_ids),
        cmocka_unit_test(test_dashboard_headers),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_access_log),
        cmocka_unit_test(test_stalled_connection_is_closed),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_shutdown_leaves_a_stuck_job),
        cmocka_unit_test(test_graceful_shutdown),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
