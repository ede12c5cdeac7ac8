/*
 * test_content_encoding.c — gzip- and deflate-encoded request bodies over HTTP, against a real
 * profit-engine child process on a private, migrated database with one store. The bodies are
 * compressed here with zlib and sent as they are with libcurl (binary, with their own
 * Content-Encoding header); what was stored is read back from PostgreSQL.
 *
 * Invariants the tests hold the server to:
 *  1. The collector routes (/v1/events, /v1/import, /v1/batch|track|page|identify) store a gzip,
 *     x-gzip, zlib-deflate or raw-deflate body exactly as they store it unencoded; an encoded
 *     body labelled application/x-www-form-urlencoded (axios' label) counts as JSON.
 *  2. The limit is on the decoded body: a ~1 KB bomb of 1 MB is 413 payload_too_large, and so is
 *     a chunked stream of empty gzip members longer than the route's limit on the wire.
 *  3. Corrupt, truncated or trailing-garbage bodies are 400 invalid_encoding; an unknown or
 *     layered coding is 415 unsupported_encoding naming what is accepted; a coding on any other
 *     route (PUT products) is 415 too. Nothing of a refused body is stored.
 *  4. /metrics counts the decoded bodies by route and coding; a preflight on a collector route
 *     allows the Content-Encoding header.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/collector.h"
#include "pe/tenancy.h"
#include "pe_test.h"

static pe_test_fixture_t fx;
static pe_test_tenant_t store;

/* ---- helpers --------------------------------------------------------------------------------- */

/* Sends method path with the len bytes of body as they are (binary) and the given header lines
 * (NULL-terminated). Returns the status. */
static long send_bytes(const char *method, const char *path, const void *body, size_t len,
                       const char *const *headers, pe_test_response_t *r)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", fx.server.base_url, path);
    if (pe_test_http_bytes(method, url, body, len, headers, r) != 0)
        fail_msg("%s %s: no answer", method, path);
    return r->status;
}

/* POSTs body compressed with w and labelled coding ("gzip", "deflate" …) as JSON. */
static long post_encoded(const char *path, const char *auth, const char *coding,
                         pe_test_deflate_format_t w, const char *json, pe_test_response_t *r)
{
    pe_buf_t enc = pe_test_compress(w, json, strlen(json));
    char ce[64];
    snprintf(ce, sizeof ce, "Content-Encoding: %s", coding);
    const char *headers[] = {"Content-Type: application/json", ce, auth, NULL};
    long status = send_bytes("POST", path, enc.data, enc.len, headers, r);
    pe_buf_free(&enc);
    return status;
}

/* A batch of one cart event with the given id, a minute old. */
static void one_event(char *out, size_t outlen, const char *event_id)
{
    char ts[40];
    pe_time_format_rfc3339(pe_now_unix_us() - 60 * 1000000LL, ts, sizeof ts);
    snprintf(out, outlen,
             "{\"events\":[{\"eventId\":\"%s\",\"name\":\"storefront.cart.item_added\","
             "\"timestamp\":\"%s\",\"sessionId\":\"sess-ce\",\"anonymousId\":\"anon-ce\","
             "\"properties\":{\"productId\":\"sku-9\",\"quantity\":3,\"price\":4.5,"
             "\"currency\":\"EUR\"}}]}",
             event_id, ts);
}

static long stored(const char *event_id)
{
    return pe_test_sql_long(fx.conninfo,
                            "SELECT count(*) FROM events WHERE store_id = '%s' AND event_id = '%s'",
                            store.id, event_id);
}

static void expect_accepted(const pe_test_response_t *r, const char *what)
{
    if (r->status != 200)
        fail_msg("%s: status %ld: %.300s", what, r->status, r->body.data ? r->body.data : "");
    assert_string_equal(r->body.data, "{\"accepted\":1,\"rejected\":[]}");
}

/* ---- accepted codings ------------------------------------------------------------------------ */

static void test_events_every_coding(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        pe_test_deflate_format_t wrap;
    } codings[] = {
        {"gzip", PE_TEST_GZIP},           {"x-gzip", PE_TEST_GZIP},
        {"deflate", PE_TEST_ZLIB},        {"deflate", PE_TEST_RAW_DEFLATE},
        {"GZIP, identity", PE_TEST_GZIP},
    };
    char id[37], body[1024];
    const char *auth = store.pk_auth;
    for (size_t i = 0; i < PE_ARRAY_LEN(codings); i++) {
        pe_test_uuid(id);
        one_event(body, sizeof body, id);
        pe_test_response_t r;
        post_encoded("/v1/events", auth, codings[i].header, codings[i].wrap, body, &r);
        expect_accepted(&r, codings[i].header);
        pe_test_response_free(&r);
        if (stored(id) != 1)
            fail_msg("%s (wrap %d): event %s not stored", codings[i].header, codings[i].wrap, id);
    }
    /* the stored row is the decoded event, column for column */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT concat_ws('|', name, session_id, anonymous_id, properties->>'productId', "
             "properties->>'quantity') FROM events WHERE event_id = '%s'",
             id);
    char *row = pe_test_sql(fx.conninfo, sql);
    assert_non_null(row);
    assert_string_equal(row, "storefront.cart.item_added|sess-ce|anon-ce|sku-9|3");
    free(row);
}

/* What @rudderstack/rudder-sdk-node sends: a gzip Buffer that axios labels as a form. */
static void test_segment_batch_gzip(void **state)
{
    (void)state;
    char auth[160], anon[64], ts[40], body[1024], rnd[17];
    pe_random_hex(rnd, 8);
    snprintf(anon, sizeof anon, "seg-ce-%s", rnd);
    pe_time_format_rfc3339(pe_now_unix_us(), ts, sizeof ts);
    pe_test_basic_auth(auth, sizeof auth, store.pk);
    snprintf(body, sizeof body,
             "{\"batch\":[{\"type\":\"track\",\"event\":\"Signed Up\",\"messageId\":\"m1-%s\","
             "\"anonymousId\":\"%s\",\"timestamp\":\"%s\"},{\"type\":\"page\",\"messageId\":"
             "\"m2-%s\",\"anonymousId\":\"%s\",\"timestamp\":\"%s\",\"properties\":{\"url\":"
             "\"https://shop.example.com/a\"}}],\"sentAt\":\"%s\"}",
             rnd, anon, ts, rnd, anon, ts, ts);
    pe_buf_t enc = pe_test_compress(PE_TEST_GZIP, body, strlen(body));
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                             "Content-Encoding: gzip", auth, NULL};
    pe_test_response_t r;
    send_bytes("POST", "/v1/batch", enc.data, enc.len, headers, &r);
    if (r.status != 200)
        fail_msg("status %ld: %.300s", r.status, r.body.data ? r.body.data : "");
    cJSON *j = pe_test_response_json(&r);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "success")));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "accepted")->valueint, 2);
    cJSON_Delete(j);
    pe_test_response_free(&r);
    assert_int_equal(pe_test_sql_long(fx.conninfo,
                                      "SELECT count(*) FROM events WHERE store_id = '%s' AND "
                                      "anonymous_id = '%s'",
                                      store.id, anon),
                     2);

    /* /v1/track, deflate, JSON label */
    snprintf(body, sizeof body,
             "{\"event\":\"Signed Up\",\"messageId\":\"m3-%s\",\"anonymousId\":\"%s\","
             "\"timestamp\":\"%s\"}",
             rnd, anon, ts);
    post_encoded("/v1/track", auth, "deflate", PE_TEST_ZLIB, body, &r);
    assert_int_equal(r.status, 200);
    pe_test_response_free(&r);
    assert_int_equal(pe_test_sql_long(fx.conninfo,
                                      "SELECT count(*) FROM events WHERE store_id = '%s' AND "
                                      "anonymous_id = '%s'",
                                      store.id, anon),
                     3);

    /* the form label is accepted only for an encoded body: a plain form is still 415 */
    const char *plain[] = {"Content-Type: application/x-www-form-urlencoded", auth, NULL};
    send_bytes("POST", "/v1/batch", body, strlen(body), plain, &r);
    pe_test_expect_error(&r, 415, "unsupported_media_type", NULL, 0);
    pe_test_response_free(&r);
    pe_buf_free(&enc);
}

static void test_import_gzip(void **state)
{
    (void)state;
    char id[37], body[1024], ts[40];
    const char *auth = store.sk_auth;
    pe_test_uuid(id);
    /* ten days old: only /v1/import takes it */
    pe_time_format_rfc3339(pe_now_unix_us() - 10LL * 86400 * 1000000, ts, sizeof ts);
    snprintf(body, sizeof body,
             "{\"events\":[{\"eventId\":\"%s\",\"name\":\"storefront.cart.item_added\","
             "\"timestamp\":\"%s\",\"sessionId\":\"sess-imp\",\"anonymousId\":\"anon-imp\","
             "\"properties\":{\"productId\":\"sku-1\",\"quantity\":1,\"price\":1,"
             "\"currency\":\"EUR\"}}]}",
             id, ts);
    pe_test_response_t r;
    post_encoded("/v1/import", auth, "gzip", PE_TEST_GZIP, body, &r);
    expect_accepted(&r, "import");
    pe_test_response_free(&r);
    assert_int_equal(stored(id), 1);
}

/* ---- refusals -------------------------------------------------------------------------------- */

static void test_bomb_is_413(void **state)
{
    (void)state;
    const char *auth = store.pk_auth;
    /* 1 MB of JSON-ish filler compresses to ~1 KB; the route takes 512 KB decoded */
    size_t n = (size_t)1024 * 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"events\":[", 11);
    memcpy(big + n - 2, "]}", 2);
    big[n] = '\0';
    for (pe_test_deflate_format_t w = PE_TEST_GZIP; w <= PE_TEST_ZLIB; w++) {
        pe_buf_t enc = pe_test_compress(w, big, n);
        assert_true(enc.len < 4096);
        const char *headers[] = {
            "Content-Type: application/json",
            w == PE_TEST_GZIP ? "Content-Encoding: gzip" : "Content-Encoding: deflate", auth, NULL};
        pe_test_response_t r;
        send_bytes("POST", "/v1/events", enc.data, enc.len, headers, &r);
        char msg[512];
        pe_test_expect_error(&r, 413, "payload_too_large", msg, sizeof msg);
        assert_non_null(strstr(msg, "decoded"));
        assert_non_null(strstr(msg, "524288"));
        pe_test_response_free(&r);
        pe_buf_free(&enc);
    }
    free(big);
    assert_true(pe_test_server_alive(&fx.server));
}

/* An endless stream of empty gzip members decodes to nothing: the limit holds on the wire. */
static void test_chunked_empty_members_413(void **state)
{
    (void)state;
    char auth[160];
    pe_test_basic_auth(auth, sizeof auth, store.pk);
    pe_buf_t member = pe_test_compress(PE_TEST_GZIP, "", 0);
    pe_buf_t req = PE_BUF_INIT;
    pe_buf_printf(&req,
                  "POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  "Content-Encoding: gzip\r\n%s\r\nTransfer-Encoding: chunked\r\n"
                  "Connection: close\r\n\r\n",
                  auth);
    /* 40 KB of members, beyond /v1/track's 32 KB, in chunks of 50 members */
    size_t total = 0;
    while (total < (size_t)40 * 1024) {
        pe_buf_printf(&req, "%zx\r\n", member.len * 50);
        for (int i = 0; i < 50; i++)
            pe_buf_append(&req, member.data, member.len);
        pe_buf_puts(&req, "\r\n");
        total += member.len * 50;
    }
    pe_buf_puts(&req, "0\r\n\r\n");
    pe_buf_t out = PE_BUF_INIT;
    assert_true(pe_test_raw(fx.server.port, req.data, req.len, 0, 60000, &out) > 0);
    if (!strstr(out.data, " 413 ") || !strstr(out.data, "payload_too_large"))
        fail_msg("want 413 payload_too_large, got: %.400s", out.data);
    pe_buf_free(&out);

    /* the same stream within the limit is a valid, empty body: the handler says so (400) */
    pe_buf_reset(&req);
    pe_buf_printf(&req,
                  "POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  "Content-Encoding: gzip\r\n%s\r\nTransfer-Encoding: chunked\r\n"
                  "Connection: close\r\n\r\n%zx\r\n",
                  auth, member.len * 3);
    for (int i = 0; i < 3; i++)
        pe_buf_append(&req, member.data, member.len);
    pe_buf_puts(&req, "\r\n0\r\n\r\n");
    assert_true(pe_test_raw(fx.server.port, req.data, req.len, 0, 60000, &out) > 0);
    if (!strstr(out.data, " 400 ") || strstr(out.data, "invalid_encoding"))
        fail_msg("want the handler's 400 for an empty body, got: %.400s", out.data);
    pe_buf_free(&out);
    pe_buf_free(&req);
    pe_buf_free(&member);
}

static void test_corrupt_truncated_trailing_400(void **state)
{
    (void)state;
    char id[37], body[1024];
    const char *auth = store.pk_auth;
    pe_test_uuid(id);
    one_event(body, sizeof body, id);
    for (pe_test_deflate_format_t w = PE_TEST_GZIP; w <= PE_TEST_RAW_DEFLATE; w++) {
        const char *ce = w == PE_TEST_GZIP ? "Content-Encoding: gzip" : "Content-Encoding: deflate";
        const char *headers[] = {"Content-Type: application/json", ce, auth, NULL};
        pe_buf_t enc = pe_test_compress(w, body, strlen(body));
        pe_test_response_t r;
        char msg[512];

        /* truncated */
        send_bytes("POST", "/v1/events", enc.data, enc.len - 3, headers, &r);
        pe_test_expect_error(&r, 400, "invalid_encoding", msg, sizeof msg);
        assert_non_null(strstr(msg, "truncated"));
        pe_test_response_free(&r);

        /* trailing garbage */
        pe_buf_t tail = PE_BUF_INIT;
        pe_buf_append(&tail, enc.data, enc.len);
        pe_buf_puts(&tail, "garbage!");
        send_bytes("POST", "/v1/events", tail.data, tail.len, headers, &r);
        pe_test_expect_error(&r, 400, "invalid_encoding", NULL, 0);
        pe_test_response_free(&r);
        pe_buf_free(&tail);

        /* corrupt: the gzip/zlib check value, or (raw) bytes that are no deflate stream */
        if (w == PE_TEST_RAW_DEFLATE) {
            const char junk[] = "\xff\xff\xff\xff\xff\xff\xff\xff";
            send_bytes("POST", "/v1/events", junk, sizeof junk - 1, headers, &r);
        } else {
            enc.data[enc.len - 6] ^= 0x40;
            send_bytes("POST", "/v1/events", enc.data, enc.len, headers, &r);
        }
        pe_test_expect_error(&r, 400, "invalid_encoding", NULL, 0);
        pe_test_response_free(&r);
        pe_buf_free(&enc);
    }
    /* an unencoded body labelled gzip */
    const char *headers[] = {"Content-Type: application/json", "Content-Encoding: gzip", auth,
                             NULL};
    pe_test_response_t r;
    send_bytes("POST", "/v1/events", body, strlen(body), headers, &r);
    pe_test_expect_error(&r, 400, "invalid_encoding", NULL, 0);
    pe_test_response_free(&r);
    assert_int_equal(stored(id), 0);
}

static void test_unsupported_415(void **state)
{
    (void)state;
    char id[37], body[1024];
    const char *auth = store.pk_auth;
    pe_test_uuid(id);
    one_event(body, sizeof body, id);
    static const char *const refused[] = {"br",         "zstd",          "compress",
                                          "gzip, gzip", "gzip, deflate", "gzip;q=1"};
    for (size_t i = 0; i < PE_ARRAY_LEN(refused); i++) {
        char ce[64];
        snprintf(ce, sizeof ce, "Content-Encoding: %s", refused[i]);
        const char *headers[] = {"Content-Type: application/json", ce, auth, NULL};
        pe_test_response_t r;
        send_bytes("POST", "/v1/events", body, strlen(body), headers, &r);
        char msg[512];
        pe_test_expect_error(&r, 415, "unsupported_encoding", msg, sizeof msg);
        if (!strstr(msg, "gzip, x-gzip, deflate or identity"))
            fail_msg("%s: the message names no accepted coding: %s", refused[i], msg);
        pe_test_response_free(&r);
    }
    assert_int_equal(stored(id), 0);

    /* identity is no coding: accepted anywhere */
    const char *identity[] = {"Content-Type: application/json", "Content-Encoding: identity", auth,
                              NULL};
    pe_test_response_t r;
    send_bytes("POST", "/v1/events", body, strlen(body), identity, &r);
    expect_accepted(&r, "identity");
    pe_test_response_free(&r);
    assert_int_equal(stored(id), 1);
}

static void test_other_routes_415(void **state)
{
    (void)state;
    char path[256];
    const char *auth = store.sk_auth;
    snprintf(path, sizeof path, "/api/v1/stores/%s/products", store.id);
    const char *products = "{\"products\":[{\"sku\":\"ce-1\",\"name\":\"Gz\",\"price\":1,"
                           "\"currency\":\"EUR\"}]}";
    pe_buf_t enc = pe_test_compress(PE_TEST_GZIP, products, strlen(products));
    const char *headers[] = {"Content-Type: application/json", "Content-Encoding: gzip", auth,
                             NULL};
    pe_test_response_t r;
    send_bytes("PUT", path, enc.data, enc.len, headers, &r);
    char msg[512];
    pe_test_expect_error(&r, 415, "unsupported_encoding", msg, sizeof msg);
    assert_non_null(strstr(msg, "unencoded"));
    pe_test_response_free(&r);
    pe_buf_free(&enc);
    assert_int_equal(
        pe_test_sql_long(fx.conninfo,
                         "SELECT count(*) FROM products WHERE store_id = '%s' AND sku = 'ce-1'",
                         store.id),
        0);

    /* the login route too, before it reads a byte */
    const char *login[] = {"Content-Type: application/json", "Content-Encoding: deflate", NULL};
    send_bytes("POST", "/api/v1/auth/login", "xx", 2, login, &r);
    pe_test_expect_error(&r, 415, "unsupported_encoding", NULL, 0);
    pe_test_response_free(&r);
}

static void test_metrics_and_preflight(void **state)
{
    (void)state;
    pe_test_response_t r;
    char url[256];
    snprintf(url, sizeof url, "%s/metrics", fx.server.base_url);
    assert_int_equal(pe_test_http("GET", url, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    /* earlier tests in this program sent gzip and deflate bodies to /v1/events */
    assert_non_null(strstr(r.body.data, "# TYPE pe_http_request_bodies_decoded_total counter"));
    assert_non_null(strstr(r.body.data, "pe_http_request_bodies_decoded_total{method=\"POST\","
                                        "route=\"/v1/events\",encoding=\"gzip\"}"));
    assert_non_null(strstr(r.body.data, "pe_http_request_bodies_decoded_total{method=\"POST\","
                                        "route=\"/v1/events\",encoding=\"deflate\"}"));
    assert_non_null(strstr(r.body.data, "pe_http_request_bodies_decoded_total{method=\"POST\","
                                        "route=\"/v1/batch\",encoding=\"gzip\"} 1\n"));
    pe_test_response_free(&r);

    snprintf(url, sizeof url, "%s/v1/events", fx.server.base_url);
    const char *pre[] = {"Origin: https://shop.example", "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: content-encoding", NULL};
    assert_int_equal(pe_test_http("OPTIONS", url, NULL, pre, &r), 0);
    assert_int_equal(r.status, 204);
    char allow[256];
    pe_test_response_header(&r, "Access-Control-Allow-Headers", allow, sizeof allow);
    assert_non_null(strstr(allow, "Content-Encoding"));
    pe_test_response_free(&r);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 1);
    pe_test_tenant_make(&store, fx.pool, "Gzip Store", "UTC", "EUR", NULL, NULL);
    pe_test_server_start(&fx.server, fx.conninfo, (const char *const[]){"PE_HTTP_THREADS=2", NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_every_coding),
        cmocka_unit_test(test_segment_batch_gzip),
        cmocka_unit_test(test_import_gzip),
        cmocka_unit_test(test_bomb_is_413),
        cmocka_unit_test(test_chunked_empty_members_413),
        cmocka_unit_test(test_corrupt_truncated_trailing_400),
        cmocka_unit_test(test_unsupported_415),
        cmocka_unit_test(test_other_routes_415),
        cmocka_unit_test(test_metrics_and_preflight),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
