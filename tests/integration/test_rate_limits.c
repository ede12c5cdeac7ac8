/*
 * test_rate_limits.c — the storefront routes' token buckets (PE_RATE_KEY, PE_RATE_ADDRESS;
 * src/core/ratelimit.c, src/api/auth.c) against a child server whose limits are low: 20 requests
 * a second per publishable key (40 at once), 10 per client address (20 at once), clients told
 * apart by X-Forwarded-For from a trusted proxy. The margins hold however slow the machine: a
 * flood of 150 requests taking up to 5 s still meets the key's limit, one of 250 the address's.
 *
 *  1. A store flooding /v1/events is refused 429 rate_limited with Retry-After once its key's
 *     burst is spent, while another store's events keep being accepted, quickly.
 *  2. Nothing acknowledged is lost and nothing refused is stored: every 200's events are in
 *     PostgreSQL, no 429's; the refused ones sent again after Retry-After with the same
 *     eventIds are stored once.
 *  3. An address sending made-up keys is refused by address (429) before any key lookup, on
 *     OFREP and on the Segment routes alike; another address is not.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe_test.h"

#define FLOOD_KEY     150 /* requests of one key, each from its own address */
#define FLOOD_ADDRESS 250 /* requests of one address, each with its own made-up key */

static pe_test_fixture_t fx;
static pe_test_tenant_t a, b;

/* One page-view event with id; the body of POST /v1/events. */
static void event_body(char *out, size_t n, const char *id)
{
    char ts[40];
    pe_time_format_rfc3339(pe_now_unix_us(), ts, sizeof ts);
    snprintf(out, n,
             "{\"events\":[{\"eventId\":\"%.36s\",\"name\":\"storefront.page.viewed\","
             "\"timestamp\":\"%.39s\",\"sessionId\":\"s-%.8s\",\"anonymousId\":\"a-%.8s\","
             "\"context\":{\"page\":{\"path\":\"/\"}}}]}",
             id, ts, id, id);
}

/* POSTs path with body as key from client address addr; fills r. */
static long send_as(const char *path, const char *body, const char *key, const char *addr,
                    pe_test_response_t *r)
{
    char url[512], auth[160], xff[80];
    snprintf(url, sizeof url, "%s%s", fx.server.base_url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    snprintf(xff, sizeof xff, "X-Forwarded-For: %s", addr);
    const char *headers[] = {"Content-Type: application/json", auth, xff, NULL};
    assert_int_equal(pe_test_http("POST", url, body, headers, r), 0);
    return r->status;
}

static long stored(const pe_test_tenant_t *t, const char *id)
{
    char *v = pe_test_sqlf(fx.conninfo,
                           "SELECT count(*) FROM events WHERE store_id = '%s' AND event_id = '%s'",
                           t->id, id);
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

static void test_flooding_key_throttled_other_store_served(void **state)
{
    (void)state;
    char ids[FLOOD_KEY][37];
    long status[FLOOD_KEY];
    int refused = 0, accepted = 0;
    double retry_max = 0;
    for (int i = 0; i < FLOOD_KEY; i++) {
        char body[1024];
        pe_test_uuid(ids[i]);
        event_body(body, sizeof body, ids[i]);
        pe_test_response_t r;
        char addr[32];
        snprintf(addr, sizeof addr, "203.0.%d.%d", 113 + i / 250, 1 + i % 250);
        status[i] = send_as("/v1/events", body, a.pk, addr, &r);
        if (status[i] == 429) {
            char msg[512];
            pe_test_expect_error(&r, 429, "rate_limited", msg, sizeof msg);
            assert_non_null(strstr(msg, "with this key"));
            char retry[32];
            pe_test_response_header(&r, "Retry-After", retry, sizeof retry);
            assert_true(retry[0] != '\0');
            double s = strtod(retry, NULL);
            assert_true(s >= 1 && s <= 2);
            retry_max = fmax(retry_max, s);
            refused++;
        } else {
            assert_int_equal(status[i], 200);
            assert_non_null(strstr(r.body.data, "\"accepted\":1,"));
            accepted++;
        }
        pe_test_response_free(&r);
        /* the other store, from its own address, all along the flood */
        if (i % 10 == 0) {
            char other[37], ob[1024];
            pe_test_uuid(other);
            event_body(ob, sizeof ob, other);
            int64_t t0 = pe_now_mono_us();
            assert_int_equal(send_as("/v1/events", ob, b.pk, "198.51.100.20", &r), 200);
            assert_non_null(strstr(r.body.data, "\"accepted\":1,"));
            int64_t ms = (pe_now_mono_us() - t0) / 1000;
            if (ms > 2000)
                fail_msg("store B's events waited %lld ms during store A's flood", (long long)ms);
            pe_test_response_free(&r);
            assert_int_equal(stored(&b, other), 1);
        }
    }
    print_message("flood of %d: %d accepted, %d refused 429\n", FLOOD_KEY, accepted, refused);
    assert_true(accepted >= 40 && refused >= 20);
    /* acknowledged: stored once; refused: not stored */
    for (int i = 0; i < FLOOD_KEY; i++)
        assert_int_equal(stored(&a, ids[i]), status[i] == 200 ? 1 : 0);
    /* after Retry-After, the refused ones again with the same ids: stored once each */
    pe_test_sleep_ms((long)(retry_max * 1000) + 100);
    int resent = 0;
    for (int i = 0; i < FLOOD_KEY && resent < 15; i++) {
        if (status[i] != 429)
            continue;
        char body[1024];
        event_body(body, sizeof body, ids[i]);
        pe_test_response_t r;
        assert_int_equal(send_as("/v1/events", body, a.pk, "192.0.2.10", &r), 200);
        pe_test_response_free(&r);
        assert_int_equal(stored(&a, ids[i]), 1);
        resent++;
    }
    assert_int_equal(resent, 15);
}

static void test_address_throttled_before_key_lookup(void **state)
{
    (void)state;
    int unauthorised = 0, limited = 0;
    for (int i = 0; i < FLOOD_ADDRESS; i++) {
        char key[64];
        snprintf(key, sizeof key, "pk_madeup%08d", i);
        pe_test_response_t r;
        long s = send_as("/ofrep/v1/evaluate/flags", "{\"context\":{\"targetingKey\":\"v\"}}", key,
                         "203.0.113.66", &r);
        if (s == 429) {
            char msg[512];
            pe_test_expect_error(&r, 429, "rate_limited", msg, sizeof msg);
            assert_non_null(strstr(msg, "from this address"));
            limited++;
        } else {
            assert_int_equal(s, 401);
            unauthorised++;
        }
        pe_test_response_free(&r);
    }
    print_message("made-up keys from one address: %d refused 401, then %d refused 429\n",
                  unauthorised, limited);
    assert_true(unauthorised >= 20 && limited >= 20);
    /* the Segment routes share the address's bucket */
    pe_test_response_t seg;
    char seg_body[256];
    snprintf(seg_body, sizeof seg_body,
             "{\"writeKey\":\"%s\",\"type\":\"page\",\"anonymousId\":\"a-1\","
             "\"messageId\":\"m-1\"}",
             b.pk);
    assert_int_equal(send_as("/v1/page", seg_body, "none", "203.0.113.66", &seg), 429);
    pe_test_response_free(&seg);
    /* another address with a real key: served */
    pe_test_response_t r;
    assert_int_equal(send_as("/ofrep/v1/evaluate/flags", "{\"context\":{\"targetingKey\":\"v\"}}",
                             b.pk, "198.51.100.77", &r),
                     200);
    pe_test_response_free(&r);
}

static int group_setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    pe_test_tenant_make(&a, fx.pool, "Flooding", "UTC", "EUR", NULL, NULL);
    pe_test_tenant_make(&b, fx.pool, "Quiet", "UTC", "EUR", NULL, NULL);
    pe_test_server_start(&fx.server, fx.conninfo,
                         (const char *const[]){"PE_RATE_KEY=20", "PE_RATE_ADDRESS=10",
                                               "PE_TRUSTED_PROXIES=127.0.0.1/32", "PE_JOBS=none",
                                               NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flooding_key_throttled_other_store_served),
        cmocka_unit_test(test_address_throttled_before_key_lookup),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
