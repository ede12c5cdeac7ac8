/*
 * test_segment.c — the Segment HTTP Tracking API compatibility routes (POST /v1/batch, /v1/track,
 * /v1/page, /v1/identify) against a real profit-engine child process on a private, migrated
 * database with one store (pe_test_tenant_make).
 *
 * Invariants the tests hold the server to:
 *  1. The write key is a publishable key, as the Basic-auth user or as "writeKey" in the body;
 *     a secret key is 403, an unknown or missing one 401, and nothing is stored for either.
 *  2. Every Segment e-commerce v2 event lands in `events` under its native name with the
 *     translated properties, all messages of one visitor in one session.
 *  3. A retried batch (same messageIds) is stored once; a message id that is a UUID is the
 *     stored eventId, any other becomes the same name-based UUID on every retry.
 *  4. A message over 32 KB, a batch over 500 KB or 500 messages is 413; malformed JSON and
 *     malformed envelopes are 400 in the one error shape; a message that cannot be translated
 *     is refused by index and kept in the dead letter while the rest of the batch is stored.
 *  5. Success is Segment's answer, {"success":true,…}, plus our accepted count and rejections.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/core.h"
#include "pe/db.h"
#include "pe/tenancy.h"
#include "pe_test.h"

static pe_test_fixture_t fx;
static pe_test_tenant_t store;

/* ---- helpers --------------------------------------------------------------------------------- */

/* POSTs body as JSON to path with an optional Authorization header line (NULL: none). */
static long post(const char *path, const char *body, const char *auth, pe_test_response_t *r)
{
    return pe_test_call(&fx.server, "POST", path, body, auth, r);
}

static long post_pk(const char *path, const char *body, pe_test_response_t *r)
{
    char auth[160];
    pe_test_basic_auth(auth, sizeof auth, store.pk);
    return post(path, body, auth, r);
}

/* Asserts a Segment success answer; returns "accepted" and the number of rejections. */
static long expect_success(const pe_test_response_t *r, long *nrejected)
{
    if (r->status != 200)
        fail_msg("status %ld, want 200: %.400s", r->status, r->body.data ? r->body.data : "");
    cJSON *j = pe_test_response_json(r);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "success")));
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(j, "accepted");
    const cJSON *rej = cJSON_GetObjectItemCaseSensitive(j, "rejected");
    assert_true(cJSON_IsNumber(acc));
    assert_true(cJSON_IsArray(rej));
    long accepted = (long)acc->valuedouble;
    if (nrejected)
        *nrejected = cJSON_GetArraySize(rej);
    else if (cJSON_GetArraySize(rej) != 0)
        fail_msg("unexpected rejections: %.400s", r->body.data);
    cJSON_Delete(j);
    return accepted;
}

/* A visitor id unique to this run and test. */
static void visitor(char *out, size_t outlen, const char *test)
{
    char rnd[17];
    pe_random_hex(rnd, 8);
    snprintf(out, outlen, "%s-%s", test, rnd);
}

static void now_text(char out[40])
{
    pe_time_format_rfc3339(pe_now_unix_us(), out, 40);
}

/* ---- authentication -------------------------------------------------------------------------- */

static void test_basic_auth_and_body_write_key(void **state)
{
    (void)state;
    char anon[64], ts[40], body[1024], auth[160];
    pe_test_response_t r;
    visitor(anon, sizeof anon, "auth");
    now_text(ts);

    /* Basic auth, the way @segment/analytics-node sends the write key */
    snprintf(body, sizeof body,
             "{\"event\":\"Signed "
             "Up\",\"messageId\":\"basic-1\",\"anonymousId\":\"%s\","
             "\"timestamp\":\"%s\",\"properties\":{\"plan\":\"pro\"}}",
             anon, ts);
    post_pk("/v1/track", body, &r);
    assert_int_equal(expect_success(&r, NULL), 1);
    pe_test_response_free(&r);

    /* writeKey in the body, as older libraries do: no Authorization header at all */
    snprintf(body, sizeof body,
             "{\"writeKey\":\"%s\",\"batch\":[{\"type\":\"track\",\"event\":\"Signed "
             "Up\","
             "\"messageId\":\"body-1\",\"anonymousId\":\"%s\",\"timestamp\":\"%s\"}]}",
             store.pk, anon, ts);
    post("/v1/batch", body, NULL, &r);
    assert_int_equal(expect_success(&r, NULL), 1);
    pe_test_response_free(&r);

    /* a Basic header with an empty password part and a body key that disagrees: the header wins */
    pe_test_basic_auth(auth, sizeof auth, store.pk);
    snprintf(body, sizeof body,
             "{\"writeKey\":\"pk_unknown\",\"type\":\"page\",\"messageId\":\"basic-"
             "2\","
             "\"anonymousId\":\"%s\",\"timestamp\":\"%s\",\"properties\":{\"url\":"
             "\"https://shop.example.com/a\"}}",
             anon, ts);
    post("/v1/page", body, auth, &r);
    assert_int_equal(expect_success(&r, NULL), 1);
    pe_test_response_free(&r);

    pe_test_sql_expect(fx.conninfo, "2",
                       "SELECT count(*) FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s' "
                       "AND name = 'custom.segment.signed_up'",
                       store.id, anon);
    pe_test_sql_expect(fx.conninfo, "pro",
                       "SELECT properties->>'plan' FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s' AND name = 'custom.segment.signed_up' LIMIT 1",
                       store.id, anon);
    pe_test_sql_expect(fx.conninfo, "/a",
                       "SELECT page_path FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s' "
                       "AND name = 'storefront.page.viewed'",
                       store.id, anon);
}

static void test_secret_and_unknown_keys(void **state)
{
    (void)state;
    char anon[64], ts[40], body[1024], auth[160];
    pe_test_response_t r;
    visitor(anon, sizeof anon, "keys");
    now_text(ts);
    snprintf(body, sizeof body,
             "{\"event\":\"Refused\",\"anonymousId\":\"%s\",\"timestamp\":\"%s\"}", anon, ts);

    pe_test_basic_auth(auth, sizeof auth, store.sk);
    post("/v1/track", body, auth, &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);

    char with_key[1200];
    snprintf(with_key, sizeof with_key, "{\"writeKey\":\"%s\",\"batch\":[%s]}", store.sk, body);
    post("/v1/batch", with_key, NULL, &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);

    pe_test_basic_auth(auth, sizeof auth, "pk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    post("/v1/track", body, auth, &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);

    post("/v1/track", body, NULL, &r); /* no key anywhere */
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);

    post("/v1/track", body, "Authorization: Basic !!!not-base64", &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);

    pe_test_sql_expect(fx.conninfo, "0",
                       "SELECT count(*) FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s'",
                       store.id, anon);
}

/* ---- e-commerce mapping ---------------------------------------------------------------------- */

/* One message per mapped Segment event, all of one visitor (no session id given). */
static void ecommerce_batch(char *out, size_t outlen, const char *anon, const char *ts)
{
    snprintf(out, outlen,
             "{\"sentAt\":\"%2$s\",\"batch\":["
             "{\"type\":\"page\",\"messageId\":\"%1$s-page\",\"anonymousId\":\"%1$s\","
             "\"timestamp\":\"%2$s\",\"name\":\"Home\",\"properties\":{\"url\":"
             "\"https://shop.example.com/"
             "tees?utm_source=news&utm_campaign=fall\",\"title\":\"Tees\","
             "\"referrer\":\"https://www.example.org/"
             "\"},\"context\":{\"userAgent\":\"Mozilla/5.0 "
             "(iPhone; CPU iPhone OS 17_5 like Mac OS X) "
             "Mobile/15E148\",\"locale\":\"de-DE\"}},"
             "{\"type\":\"track\",\"event\":\"Product "
             "Viewed\",\"messageId\":\"%1$s-pv\","
             "\"anonymousId\":\"%1$s\",\"timestamp\":\"%2$s\",\"properties\":{"
             "\"product_id\":\"p-1\","
             "\"sku\":\"TEE-1\",\"name\":\"Tee\",\"variant\":\"black\",\"price\":\"19."
             "99\","
             "\"currency\":\"eur\",\"brand\":\"Acme\"}},"
             "{\"type\":\"track\",\"event\":\"Product "
             "Added\",\"messageId\":\"%1$s-pa\","
             "\"anonymousId\":\"%1$s\",\"timestamp\":\"%2$s\",\"properties\":{"
             "\"product_id\":1001,"
             "\"price\":19.99,\"quantity\":2}},"
             "{\"type\":\"track\",\"event\":\"Cart Viewed\",\"messageId\":\"%1$s-cv\","
             "\"anonymousId\":\"%1$s\",\"timestamp\":\"%2$s\",\"properties\":{\"cart_"
             "id\":\"c-1\","
             "\"products\":[{\"product_id\":\"p-1\",\"price\":19.99,\"quantity\":2}]}}"
             ","
             "{\"type\":\"track\",\"event\":\"Checkout "
             "Started\",\"messageId\":\"%1$s-cs\","
             "\"anonymousId\":\"%1$s\",\"timestamp\":\"%2$s\",\"properties\":{"
             "\"value\":39.98,"
             "\"currency\":\"EUR\",\"products\":[{\"product_id\":\"p-1\",\"price\":19."
             "99,"
             "\"quantity\":2}]}},"
             "{\"type\":\"track\",\"event\":\"Checkout Step "
             "Completed\",\"messageId\":\"%1$s-s1\","
             "\"anonymousId\":\"%1$s\",\"timestamp\":\"%2$s\",\"properties\":{"
             "\"step\":1,"
             "\"shipping_method\":\"DHL Express\"}},"
             "{\"type\":\"track\",\"event\":\"Checkout Step "
             "Completed\",\"messageId\":\"%1$s-s2\","
             "\"anonymousId\":\"%1$s\",\"timestamp\":\"%2$s\",\"properties\":{"
             "\"step\":2,"
             "\"payment_method\":\"card\"}},"
             "{\"type\":\"track\",\"event\":\"Payment Info "
             "Entered\",\"messageId\":\"%1$s-pi\","
             "\"anonymousId\":\"%1$s\",\"timestamp\":\"%2$s\",\"properties\":{"
             "\"payment_method\":"
             "\"paypal\"}},"
             "{\"type\":\"track\",\"event\":\"Order "
             "Completed\",\"messageId\":\"%1$s-oc\","
             "\"anonymousId\":\"%1$s\",\"userId\":\"user-%1$s\",\"timestamp\":\"%2$"
             "s\","
             "\"properties\":{\"order_id\":\"o-%1$s\",\"total\":45.88,\"revenue\":39."
             "98,"
             "\"shipping\":4.9,\"tax\":1,\"discount\":-2,\"coupon\":\"FALL\","
             "\"currency\":\"eur\","
             "\"affiliation\":\"web\",\"products\":[{\"product_id\":\"p-1\",\"sku\":"
             "\"TEE-1\","
             "\"name\":\"Tee\",\"category\":\"tees\",\"price\":19.99,\"quantity\":2}]}"
             "},"
             "{\"type\":\"identify\",\"messageId\":\"%1$s-id\",\"anonymousId\":\"%1$"
             "s\","
             "\"userId\":\"user-%1$s\",\"timestamp\":\"%2$s\",\"traits\":{\"email\":"
             "\"buyer@example.com\"}},"
             "{\"type\":\"track\",\"event\":\"Coupon "
             "Applied\",\"messageId\":\"%1$s-ca\","
             "\"anonymousId\":\"%1$s\",\"timestamp\":\"%2$s\",\"properties\":{"
             "\"coupon_id\":\"FALL\"}}"
             "]}",
             anon, ts);
}

static void test_ecommerce_events_stored(void **state)
{
    (void)state;
    char anon[64], ts[40];
    static char body[16384];
    pe_test_response_t r;
    visitor(anon, sizeof anon, "shop");
    now_text(ts);
    ecommerce_batch(body, sizeof body, anon, ts);
    post_pk("/v1/batch", body, &r);
    assert_int_equal(expect_success(&r, NULL), 11);
    pe_test_response_free(&r);

    pe_test_sql_expect(fx.conninfo,
                       "checkout.order.completed,checkout.payment.submitted,checkout."
                       "payment.submitted,"
                       "checkout.session.started,checkout.shipping.submitted,custom."
                       "segment.coupon_"
                       "applied,custom.segment.identify,storefront.cart.item_added,"
                       "storefront.cart."
                       "viewed,storefront.page.viewed,storefront.product.viewed",
                       "SELECT string_agg(name, ',' ORDER BY name) FROM events WHERE "
                       "store_id = '%s' "
                       "AND anonymous_id = '%s'",
                       store.id, anon);
    /* one visitor without a session id: one session, the anonymousId */
    pe_test_sql_expect(fx.conninfo, "1",
                       "SELECT count(DISTINCT session_id) FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s'",
                       store.id, anon);
    pe_test_sql_expect(fx.conninfo, anon,
                       "SELECT min(session_id) FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s'",
                       store.id, anon);
    /* funnel steps follow the names */
    pe_test_sql_expect(fx.conninfo, "0,0,1,1,2,3,4,4,5",
                       "SELECT string_agg(funnel_step::text, ',' ORDER BY funnel_step) "
                       "FROM events "
                       "WHERE store_id = '%s' AND anonymous_id = '%s' AND name NOT LIKE "
                       "'custom.%%'",
                       store.id, anon);

    /* page: context.page from properties, utm from the URL, device from the user agent */
    pe_test_sql_expect(fx.conninfo, "/tees|news|fall|mobile|Tees|de-DE",
                       "SELECT concat_ws('|', page_path, utm_source, utm_campaign, device_type, "
                       "context->'page'->>'title', context->>'locale') FROM events WHERE "
                       "store_id = '%s' "
                       "AND anonymous_id = '%s' AND name = 'storefront.page.viewed'",
                       store.id, anon);
    /* product viewed: renamed fields, numeric string price, upper-cased currency, extras */
    pe_test_sql_expect(fx.conninfo,
                       "{\"name\": \"Tee\", \"price\": 19.99, \"currency\": \"EUR\", "
                       "\"productId\": "
                       "\"p-1\", \"variantId\": \"black\"}|{\"sku\": \"TEE-1\", "
                       "\"brand\": \"Acme\"}",
                       "SELECT properties::text || '|' || custom::text FROM events WHERE "
                       "store_id = '%s' "
                       "AND anonymous_id = '%s' AND name = 'storefront.product.viewed'",
                       store.id, anon);
    /* product added: numeric product id as text, quantity, the store's currency */
    pe_test_sql_expect(fx.conninfo,
                       "{\"price\": 19.99, \"currency\": \"EUR\", \"quantity\": 2, "
                       "\"productId\": "
                       "\"1001\"}",
                       "SELECT properties::text FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s' "
                       "AND name = 'storefront.cart.item_added'",
                       store.id, anon);
    pe_test_sql_expect(fx.conninfo,
                       "{\"currency\": \"EUR\", \"cartValue\": 39.98, \"itemCount\": 2}",
                       "SELECT properties::text FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s' "
                       "AND name = 'storefront.cart.viewed'",
                       store.id, anon);
    pe_test_sql_expect(fx.conninfo,
                       "{\"currency\": \"EUR\", \"cartValue\": 39.98, \"itemCount\": 2}",
                       "SELECT properties::text FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s' "
                       "AND name = 'checkout.session.started'",
                       store.id, anon);
    pe_test_sql_expect(fx.conninfo, "DHL Express",
                       "SELECT properties->>'shippingMethod' FROM events WHERE store_id "
                       "= '%s' AND "
                       "anonymous_id = '%s' AND name = 'checkout.shipping.submitted'",
                       store.id, anon);
    pe_test_sql_expect(fx.conninfo, "card,paypal",
                       "SELECT string_agg(properties->>'paymentMethod', ',' ORDER BY "
                       "properties->>'paymentMethod') FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s' AND name = 'checkout.payment.submitted'",
                       store.id, anon);
    /* order: revenue is the value, products are items, the user id is kept */
    char want[512];
    snprintf(want, sizeof want,
             "{\"tax\": 1, \"items\": [{\"name\": \"Tee\", \"price\": 19.99, "
             "\"category\": "
             "\"tees\", \"quantity\": 2, \"productId\": \"p-1\"}], \"value\": 39.98, "
             "\"coupon\": "
             "\"FALL\", \"orderId\": \"o-%s\", \"currency\": \"EUR\", \"discount\": "
             "2, "
             "\"shipping\": 4.9}|user-%s|{\"total\": 45.88, \"affiliation\": \"web\"}",
             anon, anon);
    pe_test_sql_expect(fx.conninfo, want,
                       "SELECT properties::text || '|' || user_id || '|' || custom::text "
                       "FROM events "
                       "WHERE store_id = '%s' AND anonymous_id = '%s' AND "
                       "name = 'checkout.order.completed'",
                       store.id, anon);
    /* identify keeps the link, not the traits */
    snprintf(want, sizeof want, "user-%s|{}|", anon);
    pe_test_sql_expect(fx.conninfo, want,
                       "SELECT concat(user_id, '|', properties::text, '|', custom::text) "
                       "FROM events "
                       "WHERE store_id = '%s' AND anonymous_id = '%s' AND "
                       "name = 'custom.segment.identify'",
                       store.id, anon);
    /* other track names: custom.segment.<snake_case>, properties as sent, the exact name */
    pe_test_sql_expect(fx.conninfo, "{\"coupon_id\": \"FALL\"}|{\"event\": \"Coupon Applied\"}",
                       "SELECT properties::text || '|' || custom::text FROM events WHERE "
                       "store_id = '%s' "
                       "AND anonymous_id = '%s' AND name = 'custom.segment.coupon_applied'",
                       store.id, anon);
}

static void test_retry_stored_once(void **state)
{
    (void)state;
    char anon[64], ts[40];
    static char body[16384];
    pe_test_response_t r;
    visitor(anon, sizeof anon, "retry");
    now_text(ts);
    ecommerce_batch(body, sizeof body, anon, ts);
    for (int i = 0; i < 3; i++) {
        post_pk("/v1/batch", body, &r);
        assert_int_equal(expect_success(&r, NULL), 11); /* a retry counts as accepted */
        pe_test_response_free(&r);
    }
    pe_test_sql_expect(fx.conninfo, "11",
                       "SELECT count(*) FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s'",
                       store.id, anon);
    /* messageIds that are not UUIDs become name-based (version 5 layout) UUIDs */
    pe_test_sql_expect(fx.conninfo, "11",
                       "SELECT count(*) FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s' AND "
                       "event_id::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab]'",
                       store.id, anon);

    /* a UUID messageId is the eventId itself (lower-cased), also through /v1/identify */
    char uuid[37], upper[37], msg[1024];
    pe_random_hex(uuid, 4);
    snprintf(uuid + 8, sizeof uuid - 8, "-1234-4abc-8def-0123456789ab");
    for (size_t i = 0; i <= 36; i++)
        upper[i] = (char)((uuid[i] >= 'a' && uuid[i] <= 'f') ? uuid[i] - 32 : uuid[i]);
    snprintf(msg, sizeof msg,
             "{\"messageId\":\"%s\",\"anonymousId\":\"%s\",\"userId\":\"u-%s\","
             "\"timestamp\":\"%s\"}",
             upper, anon, anon, ts);
    for (int i = 0; i < 2; i++) {
        post_pk("/v1/identify", msg, &r);
        assert_int_equal(expect_success(&r, NULL), 1);
        pe_test_response_free(&r);
    }
    char want[64];
    snprintf(want, sizeof want, "1|%s", uuid);
    pe_test_sql_expect(fx.conninfo, want,
                       "SELECT count(*) || '|' || min(event_id::text) FROM events WHERE "
                       "store_id = '%s' "
                       "AND anonymous_id = '%s' AND name = 'custom.segment.identify' AND "
                       "event_id::text NOT LIKE '%%-5%%'",
                       store.id, anon);
}

/* ---- limits and malformed requests ----------------------------------------------------------- */

static void test_oversized(void **state)
{
    (void)state;
    char anon[64], ts[40];
    pe_test_response_t r;
    visitor(anon, sizeof anon, "big");
    now_text(ts);
    size_t big = (size_t)40 * 1024;
    char *pad = malloc(big + 1);
    assert_non_null(pad);
    memset(pad, 'x', big);
    pad[big] = '\0';
    size_t cap = (size_t)700 * 1024;
    char *body = malloc(cap);
    assert_non_null(body);

    /* one message over 32 KB: the single-message route refuses the body */
    snprintf(body, cap,
             "{\"event\":\"Big\",\"anonymousId\":\"%s\",\"timestamp\":\"%s\","
             "\"properties\":{\"pad\":\"%s\"}}",
             anon, ts, pad);
    post_pk("/v1/track", body, &r);
    pe_test_expect_error(&r, 413, "payload_too_large", NULL, 0);
    pe_test_response_free(&r);

    /* the same message inside a small enough batch: refused by its size, nothing stored */
    snprintf(body, cap,
             "{\"batch\":[{\"type\":\"track\",\"event\":\"Small\","
             "\"anonymousId\":\"%s\","
             "\"timestamp\":\"%s\"},{\"type\":\"track\",\"event\":\"Big\","
             "\"anonymousId\":"
             "\"%s\",\"timestamp\":\"%s\",\"properties\":{\"pad\":\"%s\"}}]}",
             anon, ts, anon, ts, pad);
    post_pk("/v1/batch", body, &r);
    pe_test_expect_error(&r, 413, "payload_too_large", NULL, 0);
    pe_test_response_free(&r);

    /* a batch over 500 KB of messages that are each within 32 KB */
    pad[(size_t)20 * 1024] = '\0';
    size_t n = (size_t)snprintf(body, cap, "{\"batch\":[");
    for (int i = 0; i < 27; i++)
        n += (size_t)snprintf(body + n, cap - n,
                              "%s{\"type\":\"track\",\"event\":\"Part\",\"anonymousId\":\"%s\","
                              "\"timestamp\":\"%s\",\"properties\":{\"pad\":\"%s\"}}",
                              i ? "," : "", anon, ts, pad);
    snprintf(body + n, cap - n, "]}");
    assert_true(strlen(body) > (size_t)500 * 1024);
    post_pk("/v1/batch", body, &r);
    pe_test_expect_error(&r, 413, "payload_too_large", NULL, 0);
    pe_test_response_free(&r);

    /* more than 500 messages */
    n = (size_t)snprintf(body, cap, "{\"batch\":[");
    for (int i = 0; i < 501; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s{\"type\":\"track\",\"event\":\"Many\"}",
                              i ? "," : "");
    snprintf(body + n, cap - n, "]}");
    post_pk("/v1/batch", body, &r);
    pe_test_expect_error(&r, 413, "payload_too_large", NULL, 0);
    pe_test_response_free(&r);

    free(pad);
    free(body);
    pe_test_sql_expect(fx.conninfo, "0",
                       "SELECT count(*) FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s'",
                       store.id, anon);
}

static void test_malformed(void **state)
{
    (void)state;
    pe_test_response_t r;
    static const struct {
        const char *path, *body, *code;
    } CASES[] = {
        {"/v1/batch", "{\"batch\":[", "invalid_json"},
        {"/v1/batch", "not json", "invalid_json"},
        {"/v1/track", "{\"event\":\"x\",}", "invalid_json"},
        {"/v1/batch", "[]", "invalid_request"},
        {"/v1/batch", "{}", "invalid_request"},
        {"/v1/batch", "{\"batch\":{}}", "invalid_request"},
        {"/v1/batch", "{\"batch\":[],\"sentAt\":\"yesterday\"}", "invalid_request"},
        {"/v1/page", "\"a string\"", "invalid_request"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(CASES); i++) {
        post_pk(CASES[i].path, CASES[i].body, &r);
        pe_test_expect_error(&r, 400, CASES[i].code, NULL, 0);
        pe_test_response_free(&r);
    }
    /* and the server is fine */
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", fx.server.base_url);
    assert_int_equal(pe_test_http("GET", url, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    pe_test_response_free(&r);
}

/* Messages that cannot be translated are refused by index, and the rest is stored. */
static void test_untranslatable_messages_refused(void **state)
{
    (void)state;
    char anon[64], ts[40], body[2048];
    pe_test_response_t r;
    visitor(anon, sizeof anon, "odd");
    now_text(ts);
    snprintf(body, sizeof body,
             "{\"batch\":[{\"type\":\"track\",\"event\":\"Fine\",\"anonymousId\":\"%1$"
             "s\","
             "\"timestamp\":\"%2$s\"},42,{\"type\":\"teleport\",\"anonymousId\":\"%1$"
             "s\"},"
             "{\"type\":\"track\",\"anonymousId\":\"%1$s\",\"timestamp\":\"%2$s\"},"
             "{\"type\":\"track\",\"event\":\"Old\",\"anonymousId\":\"%1$s\","
             "\"timestamp\":\"2001-01-01T00:00:00Z\"}]}",
             anon, ts);
    post_pk("/v1/batch", body, &r);
    long nrejected = 0;
    assert_int_equal(expect_success(&r, &nrejected), 1);
    assert_int_equal(nrejected, 4);
    cJSON *j = pe_test_response_json(&r);
    const cJSON *rej = cJSON_GetObjectItemCaseSensitive(j, "rejected");
    for (int i = 0; i < 4; i++) {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(rej, i), "index");
        assert_true(cJSON_IsNumber(idx));
        assert_int_equal((int)idx->valuedouble, i + 1);
    }
    cJSON_Delete(j);
    pe_test_response_free(&r);
    pe_test_sql_expect(fx.conninfo, "1",
                       "SELECT count(*) FROM events WHERE store_id = '%s' AND "
                       "anonymous_id = '%s'",
                       store.id, anon);
    /* the dead letter keeps the messages that could not be translated as they were sent */
    long kept = pe_test_sql_long(fx.conninfo,
                                 "SELECT count(*) FROM events_rejected WHERE store_id = '%s' AND "
                                 "raw LIKE '%%teleport%%' AND raw LIKE '%%%s%%'",
                                 store.id, anon);
    assert_int_equal(kept, 1);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    pe_test_tenant_make(&store, fx.pool, "Segment Store", "Europe/Berlin", "EUR", NULL, NULL);
    pe_test_server_start(&fx.server, fx.conninfo, (const char *const[]){"PE_HTTP_THREADS=2", NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_auth_and_body_write_key),
        cmocka_unit_test(test_secret_and_unknown_keys),
        cmocka_unit_test(test_ecommerce_events_stored),
        cmocka_unit_test(test_retry_stored_once),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_untranslatable_messages_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
