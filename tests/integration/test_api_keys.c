/*
 * test_api_keys.c — a store's API keys through the merchant API (src/api/keys.c), against a
 * real profit-engine child process on a private, migrated database: list, create, revoke, the
 * anti-CSRF token, the live-key limit (also under concurrent creations), who may manage which
 * kind, store scoping, and untrusted input.
 *
 * Invariants the tests hold the server to:
 *  1. A list shows id, kind, prefix, createdAt and revokedAt, and never a key or a key's hash;
 *     the full key is in the 201 of its creation and nowhere else (no other body, no log line).
 *  2. A key created here works at once (a publishable key on POST /v1/events, a secret key on
 *     the admin API); a revoked publishable key is refused by the very next /v1/events request,
 *     although the key cache was serving it from memory.
 *  3. A session's POST / DELETE without its X-CSRF-Token is 403 csrf_token_invalid and changes
 *     nothing.
 *  4. A store never has more than PE_KEYS_MAX_LIVE live keys, even when creations race: the one
 *     too many is 409 key_limit_reached; revoking one makes room again.
 *  5. A secret key manages publishable keys only (403 for secret ones); a session manages both.
 *  6. Store A's session or secret key cannot list, create or revoke store B's keys (403 on B's
 *     paths, 404 for B's key id on A's path) and B's keys keep working.
 *  7. Bad JSON, a wrong shape, an unknown kind or field, a malformed key id: 4xx with the one
 *     error shape, never a 5xx.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/api.h"
#include "pe/tenancy.h"
#include "pe_test.h"

#define PASSWORD "keys-password-1"

static pe_test_fixture_t fx;
static pe_test_tenant_t a, b, c;
static pe_buf_t all_bodies; /* every response body except the 201s of creations */
static pe_buf_t minted;     /* every key the API handed out, one per line */
static pthread_mutex_t bodies_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *JSON = "Content-Type: application/json";

/* ---- helpers --------------------------------------------------------------------------------- */

/* Adds r's body (when it has one) to all_bodies for invariant 1. Thread-safe. */
static void keep_body(const pe_test_response_t *r)
{
    if (!r->body.len)
        return;
    pthread_mutex_lock(&bodies_lock);
    pe_buf_append(&all_bodies, r->body.data, r->body.len);
    pe_buf_puts(&all_bodies, "\n");
    pthread_mutex_unlock(&bodies_lock);
}

/* Sends method path with body and headers (NULL-terminated, may be NULL). Keeps the body for
 * invariant 1 unless it is a creation's 201. Thread-safe. */
static long call(const char *method, const char *path, const char *body, const char *const *headers,
                 pe_test_response_t *r)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", fx.server.base_url, path);
    if (pe_test_http(method, url, body, headers, r) != 0)
        fail_msg("%s %s: no exchange", method, path);
    if (!(r->status == 201 && strcmp(method, "POST") == 0))
        keep_body(r);
    return r->status;
}

static void expect_status(const pe_test_response_t *r, long status)
{
    if (r->status != status)
        fail_msg("status %ld, want %ld: %.400s", r->status, status,
                 r->body.data ? r->body.data : "");
}

static void keys_path(char *out, size_t outlen, const pe_test_tenant_t *t, const char *key_id)
{
    if (key_id)
        snprintf(out, outlen, "/api/v1/stores/%s/keys/%s", t->id, key_id);
    else
        snprintf(out, outlen, "/api/v1/stores/%s/keys", t->id);
}

/* Header sets: a session with its token, a session without, a secret key. */
static const char *const *as_session(const pe_test_tenant_t *t, const char *h[4])
{
    h[0] = t->cookie, h[1] = t->csrf, h[2] = JSON, h[3] = NULL;
    return h;
}
static const char *const *as_session_no_csrf(const pe_test_tenant_t *t, const char *h[4])
{
    h[0] = t->cookie, h[1] = JSON, h[2] = NULL;
    return h;
}
static const char *const *as_key(const pe_test_tenant_t *t, const char *h[4])
{
    h[0] = t->sk_auth, h[1] = JSON, h[2] = NULL;
    return h;
}

/* POST {"kind":kind} to owner's keys as `headers`; on 201 checks the answer and copies the key
 * and its id out (either may be NULL). Returns the status. */
static long create_key(const pe_test_tenant_t *owner, const char *const *headers, const char *kind,
                       char key[PE_KEY_LEN], char key_id[PE_ID_LEN])
{
    char path[256], body[64];
    keys_path(path, sizeof path, owner, NULL);
    snprintf(body, sizeof body, "{\"kind\":\"%s\"}", kind);
    pe_test_response_t r;
    long status = call("POST", path, body, headers, &r);
    if (status == 201) {
        cJSON *j = pe_test_response_json(&r);
        assert_int_equal(cJSON_GetArraySize(j), 6);
        const char *k = pe_test_json_require_str(j, "key");
        assert_int_equal(strlen(k), 46);
        assert_true(strncmp(k, strcmp(kind, "secret") == 0 ? "sk_" : "pk_", 3) == 0);
        assert_string_equal(pe_test_json_require_str(j, "kind"), kind);
        assert_int_equal(strlen(pe_test_json_require_str(j, "prefix")), 10);
        assert_true(strncmp(pe_test_json_require_str(j, "prefix"), k, 10) == 0);
        assert_int_equal(strlen(pe_test_json_require_str(j, "id")), 36);
        assert_int_equal(strlen(pe_test_json_require_str(j, "createdAt")), 24);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "revokedAt")));
        pthread_mutex_lock(&bodies_lock);
        pe_buf_puts(&minted, k);
        pe_buf_puts(&minted, "\n");
        pthread_mutex_unlock(&bodies_lock);
        if (key)
            snprintf(key, PE_KEY_LEN, "%s", k);
        if (key_id)
            snprintf(key_id, PE_ID_LEN, "%s", pe_test_json_require_str(j, "id"));
        char cache[128];
        pe_test_response_header(&r, "Cache-Control", cache, sizeof cache);
        assert_non_null(strstr(cache, "no-store"));
        cJSON_Delete(j);
    }
    pe_test_response_free(&r);
    return status;
}

static long revoke_key(const pe_test_tenant_t *owner, const char *const *headers,
                       const char *key_id, pe_test_response_t *r)
{
    char path[512];
    keys_path(path, sizeof path, owner, key_id);
    return call("DELETE", path, NULL, headers, r);
}

/* GET owner's keys as `headers`: the parsed {"keys":[…]} (caller frees). */
static cJSON *list_keys(const pe_test_tenant_t *owner, const char *const *headers)
{
    char path[256];
    keys_path(path, sizeof path, owner, NULL);
    pe_test_response_t r;
    call("GET", path, NULL, headers, &r);
    expect_status(&r, 200);
    cJSON *j = pe_test_response_json(&r);
    pe_test_response_free(&r);
    return j;
}

/* The entry of key_id in a list answer, or NULL. */
static const cJSON *find_key(const cJSON *list, const char *key_id)
{
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(list, "keys"))
    {
        if (strcmp(pe_test_json_require_str(k, "id"), key_id) == 0)
            return k;
    }
    return NULL;
}

static long count_sql(const char *sql)
{
    char *v = pe_test_sql(fx.conninfo, sql);
    long n = v ? strtol(v, NULL, 10) : -1;
    free(v);
    return n;
}

static long live_keys(const pe_test_tenant_t *t)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM api_keys WHERE store_id = '%s' AND revoked_at IS NULL", t->id);
    return count_sql(sql);
}

/* One cart event for the key's store; returns the status of POST /v1/events. */
static long post_event(const char *pk, char event_id[PE_ID_LEN])
{
    char hex[33], ts[40], body[1024], auth[128];
    pe_random_hex(hex, 16);
    snprintf(event_id, PE_ID_LEN, "%.8s-%.4s-4%.3s-8%.3s-%.12s", hex, hex + 8, hex + 13, hex + 17,
             hex + 20);
    pe_time_format_rfc3339(pe_now_unix_us(), ts, sizeof ts);
    snprintf(body, sizeof body,
             "{\"events\":[{\"eventId\":\"%s\",\"name\":\"storefront.cart.item_added\","
             "\"timestamp\":\"%s\",\"sessionId\":\"sess-k\",\"anonymousId\":\"anon-k\","
             "\"properties\":{\"productId\":\"sku-1\",\"quantity\":1,\"price\":5,"
             "\"currency\":\"EUR\"}}]}",
             event_id, ts);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", pk);
    const char *headers[] = {auth, JSON, NULL};
    pe_test_response_t r;
    long status = call("POST", "/v1/events", body, headers, &r);
    if (status == 200)
        assert_string_equal(r.body.data, "{\"accepted\":1,\"rejected\":[]}");
    pe_test_response_free(&r);
    return status;
}

/* Signs t's merchant in (t->cookie, t->csrf); the login's body is kept like every other. */
static void sign_in(pe_test_tenant_t *t)
{
    pe_test_response_t r;
    pe_test_tenant_sign_in(t, &fx.server, &r);
    keep_body(&r);
    pe_test_response_free(&r);
}

/* ---- list ------------------------------------------------------------------------------------ */

static void test_list_shows_prefixes_only(void **state)
{
    (void)state;
    const char *h[4];
    cJSON *j = list_keys(&a, as_session(&a, h));
    assert_int_equal(cJSON_GetArraySize(j), 2);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "maxLive")),
                     PE_KEYS_MAX_LIVE);
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(j, "keys");
    assert_int_equal(cJSON_GetArraySize(keys), 2); /* the pair store create issued */
    int seen_pk = 0, seen_sk = 0;
    const cJSON *k;
    cJSON_ArrayForEach(k, keys)
    {
        assert_int_equal(cJSON_GetArraySize(k), 5); /* id, kind, prefix, createdAt, revokedAt */
        const char *kind = pe_test_json_require_str(k, "kind"),
                   *prefix = pe_test_json_require_str(k, "prefix");
        const char *full = strcmp(kind, "publishable") == 0 ? a.pk : a.sk;
        seen_pk += strcmp(kind, "publishable") == 0;
        seen_sk += strcmp(kind, "secret") == 0;
        assert_int_equal(strlen(prefix), 10);
        assert_true(strncmp(prefix, full, 10) == 0);
        const char *created = pe_test_json_require_str(k, "createdAt");
        assert_int_equal(strlen(created), 24);
        assert_true(created[4] == '-' && created[10] == 'T' && created[23] == 'Z');
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(k, "revokedAt")));
    }
    assert_int_equal(seen_pk, 1);
    assert_int_equal(seen_sk, 1);
    cJSON_Delete(j);

    /* the store's secret key may list too; a publishable key may not */
    j = list_keys(&a, as_key(&a, h));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "keys")), 2);
    cJSON_Delete(j);
    char auth[128], path[256];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", a.pk);
    const char *pk_headers[] = {auth, NULL};
    keys_path(path, sizeof path, &a, NULL);
    pe_test_response_t r;
    call("GET", path, NULL, pk_headers, &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);
    call("GET", path, NULL, NULL, &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
}

/* ---- create, and the key works --------------------------------------------------------------- */

static void test_created_publishable_key_ingests(void **state)
{
    (void)state;
    const char *h[4];
    char pk[PE_KEY_LEN], id[PE_ID_LEN], event_id[PE_ID_LEN];
    assert_int_equal(create_key(&a, as_session(&a, h), "publishable", pk, id), 201);
    assert_string_not_equal(pk, a.pk);

    assert_int_equal(post_event(pk, event_id), 200);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT store_id FROM events WHERE event_id = '%s'", event_id);
    char *store = pe_test_sql(fx.conninfo, sql);
    assert_non_null(store);
    assert_string_equal(store, a.id);
    free(store);

    /* listed, newest first, without the key; the old publishable key still works */
    cJSON *j = list_keys(&a, as_session(&a, h));
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(j, "keys");
    assert_int_equal(cJSON_GetArraySize(keys), 3);
    assert_string_equal(pe_test_json_require_str(cJSON_GetArrayItem(keys, 0), "id"), id);
    assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(keys, 0), "key"));
    cJSON_Delete(j);
    assert_int_equal(post_event(a.pk, event_id), 200);
}

static void test_session_mints_a_working_secret_key(void **state)
{
    (void)state;
    const char *h[4];
    char sk[PE_KEY_LEN], id[PE_ID_LEN], auth[128], path[128];
    assert_int_equal(create_key(&a, as_session(&a, h), "secret", sk, id), 201);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", sk);
    snprintf(path, sizeof path, "/api/v1/stores/%s", a.id);
    const char *key_headers[] = {auth, NULL};
    pe_test_response_t r;
    call("GET", path, NULL, key_headers, &r);
    expect_status(&r, 200);
    pe_test_response_free(&r);

    revoke_key(&a, as_session(&a, h), id, &r);
    expect_status(&r, 200);
    pe_test_response_free(&r);
    call("GET", path, NULL, key_headers, &r); /* secret keys are never cached: refused at once */
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
}

/* ---- revoke ---------------------------------------------------------------------------------- */

/* The NOTIFY that tells every instance usually arrives before the next request does; the rounds
 * make a process that relied on it alone fail here almost surely. */
#define REVOKE_ROUNDS 8

static void test_revoked_publishable_key_is_refused_at_once(void **state)
{
    (void)state;
    const char *h[4];
    for (int round = 0; round < REVOKE_ROUNDS; round++) {
        char pk[PE_KEY_LEN], id[PE_ID_LEN], event_id[PE_ID_LEN];
        assert_int_equal(create_key(&a, as_session(&a, h), "publishable", pk, id), 201);
        /* the first use reads PostgreSQL and caches the key; the next are served from memory */
        for (int i = 0; i < 3; i++)
            assert_int_equal(post_event(pk, event_id), 200);

        pe_test_response_t r;
        revoke_key(&a, as_session(&a, h), id, &r);
        expect_status(&r, 200);
        /* no retry loop: the very next request */
        if (post_event(pk, event_id) != 401)
            fail_msg("round %d: a revoked key was still accepted", round);
        cJSON *j = pe_test_response_json(&r);
        assert_int_equal(cJSON_GetArraySize(j), 5);
        assert_string_equal(pe_test_json_require_str(j, "id"), id);
        assert_string_equal(pe_test_json_require_str(j, "kind"), "publishable");
        char revoked_at[PE_TIMESTAMP_LEN];
        snprintf(revoked_at, sizeof revoked_at, "%s", pe_test_json_require_str(j, "revokedAt"));
        assert_int_equal(strlen(revoked_at), 24);
        cJSON_Delete(j);
        pe_test_response_free(&r);
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM events WHERE event_id = '%s'", event_id);
        assert_int_equal(count_sql(sql), 0);
        if (round > 0)
            continue;

        /* the list says when; revoking again is harmless and keeps the first time */
        j = list_keys(&a, as_session(&a, h));
        const cJSON *k = find_key(j, id);
        assert_non_null(k);
        assert_string_equal(pe_test_json_require_str(k, "revokedAt"), revoked_at);
        cJSON_Delete(j);
        revoke_key(&a, as_session(&a, h), id, &r);
        expect_status(&r, 200);
        j = pe_test_response_json(&r);
        assert_string_equal(pe_test_json_require_str(j, "revokedAt"), revoked_at);
        cJSON_Delete(j);
        pe_test_response_free(&r);
        assert_int_equal(post_event(pk, event_id), 401);
        assert_int_equal(post_event(a.pk, event_id), 200); /* the store's other key works */
    }
}

/* ---- CSRF ------------------------------------------------------------------------------------ */

static void test_session_writes_need_the_csrf_token(void **state)
{
    (void)state;
    const char *h[4];
    long before = live_keys(&a);
    char path[256];
    keys_path(path, sizeof path, &a, NULL);
    pe_test_response_t r;
    call("POST", path, "{\"kind\":\"publishable\"}", as_session_no_csrf(&a, h), &r);
    pe_test_expect_error(&r, 403, "csrf_token_invalid", NULL, 0);
    pe_test_response_free(&r);
    /* another session's token is no better */
    const char *wrong[] = {a.cookie, b.csrf, JSON, NULL};
    call("POST", path, "{\"kind\":\"secret\"}", wrong, &r);
    pe_test_expect_error(&r, 403, "csrf_token_invalid", NULL, 0);
    pe_test_response_free(&r);
    assert_int_equal(live_keys(&a), before);

    char pk[PE_KEY_LEN], id[PE_ID_LEN], event_id[PE_ID_LEN];
    assert_int_equal(create_key(&a, as_session(&a, h), "publishable", pk, id), 201);
    revoke_key(&a, as_session_no_csrf(&a, h), id, &r);
    pe_test_expect_error(&r, 403, "csrf_token_invalid", NULL, 0);
    pe_test_response_free(&r);
    assert_int_equal(post_event(pk, event_id), 200); /* still live */
    revoke_key(&a, as_session(&a, h), id, &r);
    expect_status(&r, 200);
    pe_test_response_free(&r);
}

/* ---- who manages which kind ------------------------------------------------------------------ */

static void test_secret_key_manages_publishable_keys_only(void **state)
{
    (void)state;
    const char *h[4];
    char pk[PE_KEY_LEN], id[PE_ID_LEN], event_id[PE_ID_LEN];
    long before = live_keys(&a);
    /* no CSRF token needed: a bearer key is not sent by a browser on its own */
    assert_int_equal(create_key(&a, as_key(&a, h), "publishable", pk, id), 201);
    assert_int_equal(post_event(pk, event_id), 200);

    char path[256];
    keys_path(path, sizeof path, &a, NULL);
    pe_test_response_t r;
    call("POST", path, "{\"kind\":\"secret\"}", as_key(&a, h), &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);
    assert_int_equal(live_keys(&a), before + 1);

    /* the store's own secret key, by id: a secret key cannot revoke it (nor itself) */
    char sk_id[PE_ID_LEN];
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT id FROM api_keys WHERE store_id = '%s' AND kind = 'secret' "
             "AND revoked_at IS NULL ORDER BY created_at LIMIT 1",
             a.id);
    char *v = pe_test_sql(fx.conninfo, sql);
    assert_non_null(v);
    snprintf(sk_id, sizeof sk_id, "%s", v);
    free(v);
    revoke_key(&a, as_key(&a, h), sk_id, &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);

    revoke_key(&a, as_key(&a, h), id, &r);
    expect_status(&r, 200);
    pe_test_response_free(&r);
    assert_int_equal(post_event(pk, event_id), 401);
    assert_int_equal(live_keys(&a), before);
}

/* ---- the live-key limit ---------------------------------------------------------------------- */

typedef struct {
    int rc;
    pe_test_response_t r;
} race_t;

/* No cmocka assertion off the main thread: the answers are checked after the join. */
static void *race_create(void *arg)
{
    race_t *race = arg;
    char url[256];
    snprintf(url, sizeof url, "%s/api/v1/stores/%s/keys", fx.server.base_url, c.id);
    const char *headers[] = {c.sk_auth, JSON, NULL};
    race->rc = pe_test_http("POST", url, "{\"kind\":\"publishable\"}", headers, &race->r);
    return NULL;
}

/* Two free places, RACERS simultaneous creations: exactly two win. Returns the ids of the two
 * keys created in won[]. */
enum { RACERS = 6, RACE_ROUNDS = 4 };

static void race_for_two_places(char won[2][PE_ID_LEN])
{
    pthread_t threads[RACERS];
    race_t results[RACERS];
    for (int i = 0; i < RACERS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, race_create, &results[i]), 0);
    for (int i = 0; i < RACERS; i++)
        pthread_join(threads[i], NULL);
    int created = 0, refused = 0;
    for (int i = 0; i < RACERS; i++) {
        assert_int_equal(results[i].rc, 0);
        pe_test_response_t *r = &results[i].r;
        if (r->status == 201) {
            cJSON *j = pe_test_response_json(r);
            if (created < 2)
                snprintf(won[created], PE_ID_LEN, "%s", pe_test_json_require_str(j, "id"));
            created++;
            assert_int_equal(pe_buf_puts(&minted, pe_test_json_require_str(j, "key")), 0);
            assert_int_equal(pe_buf_puts(&minted, "\n"), 0);
            cJSON_Delete(j);
        } else {
            refused++;
            pe_test_expect_error(r, 409, "key_limit_reached", NULL, 0);
            assert_int_equal(pe_buf_append(&all_bodies, r->body.data, r->body.len), 0);
        }
        pe_test_response_free(r);
    }
    if (created != 2)
        fail_msg("%d of %d racing creations for 2 places succeeded", created, RACERS);
    assert_int_equal(refused, RACERS - 2);
    assert_int_equal(live_keys(&c), PE_KEYS_MAX_LIVE);
}

static void test_live_key_limit(void **state)
{
    (void)state;
    const char *h[4];
    char first_id[PE_ID_LEN] = "";
    /* store C: fill up to two below the limit */
    while (live_keys(&c) < PE_KEYS_MAX_LIVE - 2) {
        char id[PE_ID_LEN];
        assert_int_equal(create_key(&c, as_session(&c, h), "publishable", NULL, id), 201);
        if (!first_id[0])
            snprintf(first_id, sizeof first_id, "%s", id);
    }
    pe_test_response_t r;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        char won[2][PE_ID_LEN];
        race_for_two_places(won);
        if (round + 1 == RACE_ROUNDS)
            break;
        for (int i = 0; i < 2; i++) { /* two places again */
            revoke_key(&c, as_key(&c, h), won[i], &r);
            expect_status(&r, 200);
            pe_test_response_free(&r);
        }
    }
    int n = -1;
    assert_int_equal(pe_tenancy_key_count_live(fx.pool, c.id, &n), 0);
    assert_int_equal(n, PE_KEYS_MAX_LIVE);

    /* full: a session is refused too, with a message that says what to do */
    char path[256];
    keys_path(path, sizeof path, &c, NULL);
    call("POST", path, "{\"kind\":\"secret\"}", as_session(&c, h), &r);
    pe_test_expect_error(&r, 409, "key_limit_reached", NULL, 0);
    assert_non_null(strstr(r.body.data, "revoke"));
    pe_test_response_free(&r);
    assert_int_equal(live_keys(&c), PE_KEYS_MAX_LIVE);

    /* revoking one makes room for one */
    revoke_key(&c, as_session(&c, h), first_id, &r);
    expect_status(&r, 200);
    pe_test_response_free(&r);
    assert_int_equal(create_key(&c, as_session(&c, h), "secret", NULL, NULL), 201);
    assert_int_equal(create_key(&c, as_session(&c, h), "publishable", NULL, NULL), 409);

    /* every live key is listed first, newest first; the most recently revoked one follows */
    cJSON *j = list_keys(&c, as_session(&c, h));
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(j, "keys");
    int total = cJSON_GetArraySize(keys);
    assert_int_equal(total, PE_KEYS_MAX_LIVE + 1 + 2 * (RACE_ROUNDS - 1));
    for (int i = 0; i < total; i++) {
        const cJSON *k = cJSON_GetArrayItem(keys, i);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(k, "revokedAt")) ==
                    (i < PE_KEYS_MAX_LIVE));
    }
    assert_string_equal(pe_test_json_require_str(cJSON_GetArrayItem(keys, PE_KEYS_MAX_LIVE), "id"),
                        first_id);
    cJSON_Delete(j);
}

/* ---- tenancy --------------------------------------------------------------------------------- */

static void test_other_store_keys_are_out_of_reach(void **state)
{
    (void)state;
    const char *h[4];
    long b_before = live_keys(&b);
    char path[256], b_pk_id[PE_ID_LEN], sql[256], event_id[PE_ID_LEN];
    snprintf(sql, sizeof sql,
             "SELECT id FROM api_keys WHERE store_id = '%s' AND kind = 'publishable' "
             "AND revoked_at IS NULL ORDER BY created_at LIMIT 1",
             b.id);
    char *v = pe_test_sql(fx.conninfo, sql);
    assert_non_null(v);
    snprintf(b_pk_id, sizeof b_pk_id, "%s", v);
    free(v);

    pe_test_response_t r;
    /* A's session and A's secret key on B's paths: 403, whatever the method */
    const char *const *as_a[] = {as_session(&a, (const char *[4]){0}),
                                 as_key(&a, (const char *[4]){0})};
    for (size_t i = 0; i < PE_ARRAY_LEN(as_a); i++) {
        keys_path(path, sizeof path, &b, NULL);
        call("GET", path, NULL, as_a[i], &r);
        pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
        assert_null(strstr(r.body.data, b_pk_id));
        pe_test_response_free(&r);
        call("POST", path, "{\"kind\":\"publishable\"}", as_a[i], &r);
        pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
        pe_test_response_free(&r);
        revoke_key(&b, as_a[i], b_pk_id, &r);
        pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
        pe_test_response_free(&r);
        /* B's key id on A's own path: not A's key, so there is no such key */
        revoke_key(&a, as_a[i], b_pk_id, &r);
        pe_test_expect_error(&r, 404, "not_found", NULL, 0);
        pe_test_response_free(&r);
    }
    /* A's session does not see B's keys in its own list either */
    cJSON *j = list_keys(&a, as_session(&a, h));
    assert_null(find_key(j, b_pk_id));
    cJSON_Delete(j);

    assert_int_equal(live_keys(&b), b_before);
    assert_int_equal(post_event(b.pk, event_id), 200);
    snprintf(sql, sizeof sql, "SELECT store_id FROM events WHERE event_id = '%s'", event_id);
    v = pe_test_sql(fx.conninfo, sql);
    assert_string_equal(v, b.id);
    free(v);
}

/* ---- untrusted input ------------------------------------------------------------------------- */

static void test_bad_input_is_4xx(void **state)
{
    (void)state;
    const char *h[4];
    long before = live_keys(&a);
    char path[256];
    keys_path(path, sizeof path, &a, NULL);
    static const struct {
        const char *body;
        const char *code;
    } bodies[] = {
        {"", "invalid_json"},
        {"{", "invalid_json"},
        {"{\"kind\":\"publishable\"", "invalid_json"},
        {"{\"kind\":\"publi\xff\"}", "invalid_json"},
        {"null", "invalid_request"},
        {"[]", "invalid_request"},
        {"[{\"kind\":\"publishable\"}]", "invalid_request"},
        {"\"publishable\"", "invalid_request"},
        {"{}", "invalid_request"},
        {"{\"kind\":null}", "invalid_request"},
        {"{\"kind\":1}", "invalid_request"},
        {"{\"kind\":[\"publishable\"]}", "invalid_request"},
        {"{\"kind\":\"\"}", "invalid_request"},
        {"{\"kind\":\"admin\"}", "invalid_request"},
        {"{\"kind\":\"Publishable\"}", "invalid_request"},
        {"{\"kind\":\"publishable \"}", "invalid_request"},
        {"{\"kind\":\"publishable\",\"name\":\"x\"}", "unknown_field"},
        {"{\"key\":\"pk_x\"}", "unknown_field"},
    };
    pe_test_response_t r;
    for (size_t i = 0; i < PE_ARRAY_LEN(bodies); i++) {
        call("POST", path, bodies[i].body, as_session(&a, h), &r);
        if (r.status != 400)
            fail_msg("body %zu: status %ld: %.300s", i, r.status, r.body.data ? r.body.data : "");
        pe_test_expect_error(&r, 400, bodies[i].code, NULL, 0);
        pe_test_response_free(&r);
    }
    /* too big, not JSON at all */
    char *big = malloc(4096);
    assert_non_null(big);
    snprintf(big, 4096, "{\"kind\":\"publishable\",\"pad\":\"%03000d\"}", 0);
    call("POST", path, big, as_session(&a, h), &r);
    pe_test_expect_error(&r, 413, "payload_too_large", NULL, 0);
    pe_test_response_free(&r);
    free(big);
    const char *text[] = {a.cookie, a.csrf, "Content-Type: application/x-www-form-urlencoded",
                          NULL};
    call("POST", path, "kind=publishable", text, &r);
    assert_true(r.status >= 400 && r.status < 500);
    pe_test_response_free(&r);
    assert_int_equal(live_keys(&a), before);

    /* malformed or unknown key ids */
    static const char *const ids[] = {
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
        "00000000-0000-0000-0000-00000000000g",
        "%27%20OR%20%271%27=%271",
        "x%E2%80%A6",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(ids); i++) {
        revoke_key(&a, as_session(&a, h), ids[i], &r);
        if (r.status != 404)
            fail_msg("id %zu: status %ld: %.300s", i, r.status, r.body.data ? r.body.data : "");
        pe_test_expect_error(&r, 404, "not_found", NULL, 0);
        pe_test_response_free(&r);
    }
    revoke_key(&a, as_session(&a, h), "%00", &r);
    assert_true(r.status >= 400 && r.status < 500);
    pe_test_response_free(&r);
    /* a body on DELETE, and a store id that is not a uuid */
    keys_path(path, sizeof path, &a, "00000000-0000-0000-0000-000000000000");
    call("DELETE", path, "{}", as_session(&a, h), &r);
    assert_true(r.status >= 400 && r.status < 500);
    pe_test_response_free(&r);
    call("GET", "/api/v1/stores/not-a-uuid/keys", NULL, as_session(&a, h), &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);
    call("PUT", "/api/v1/stores/not-a-uuid/keys", "{}", as_session(&a, h), &r);
    assert_int_equal(r.status, 405);
    pe_test_response_free(&r);
    assert_int_equal(live_keys(&a), before);
}

/* ---- last: nothing leaked -------------------------------------------------------------------- */

static void test_keys_and_hashes_never_leak(void **state)
{
    (void)state;
    assert_non_null(all_bodies.data);
    assert_non_null(minted.data);
    /* no hash of any key in any body */
    char *hashes = pe_test_sql(fx.conninfo, "SELECT string_agg(key_hash, ',') FROM api_keys");
    assert_non_null(hashes);
    for (char *save = NULL, *h = strtok_r(hashes, ",", &save); h; h = strtok_r(NULL, ",", &save))
        if (strstr(all_bodies.data, h))
            fail_msg("a key hash appeared in a response body");
    free(hashes);

    /* no minted key, nor the stores' own keys, in any other body, nor in the server's log */
    FILE *f = fopen(fx.server.log_path, "r");
    assert_non_null(f);
    pe_buf_t log = PE_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(pe_buf_append(&log, chunk, n), 0);
    fclose(f);
    assert_int_equal(pe_buf_puts(&log, ""), 0);
    assert_non_null(strstr(log.data, "\"api_key_created\""));
    assert_non_null(strstr(log.data, "\"api_key_revoked\""));
    const char *own[] = {a.pk, a.sk, b.pk, b.sk, c.pk, c.sk};
    for (size_t i = 0; i < PE_ARRAY_LEN(own); i++) {
        assert_null(strstr(log.data, own[i]));
        assert_null(strstr(all_bodies.data, own[i]));
    }
    size_t count = 0;
    for (char *save = NULL, *k = strtok_r(minted.data, "\n", &save); k;
         k = strtok_r(NULL, "\n", &save), count++) {
        if (strstr(all_bodies.data, k) || strstr(log.data, k))
            fail_msg("minted key %zu appeared outside its creation's answer", count);
    }
    assert_true(count >= PE_KEYS_MAX_LIVE);
    pe_buf_free(&log);
    assert_true(pe_test_server_alive(&fx.server));
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    pe_test_tenant_make(&a, fx.pool, "Keys A", "UTC", "EUR", "keys-a@example.com", PASSWORD);
    pe_test_tenant_make(&b, fx.pool, "Keys B", "UTC", "EUR", "keys-b@example.com", PASSWORD);
    pe_test_tenant_make(&c, fx.pool, "Keys C", "UTC", "EUR", "keys-c@example.com", PASSWORD);
    /* info: the key log lines are part of what is checked */
    pe_test_server_start(&fx.server, fx.conninfo,
                         (const char *const[]){"PE_HTTP_THREADS=4", "PE_LOG_LEVEL=info", NULL});
    sign_in(&a);
    sign_in(&b);
    sign_in(&c);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pe_buf_free(&all_bodies);
    pe_buf_free(&minted);
    return pe_test_fixture_close(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_shows_prefixes_only),
        cmocka_unit_test(test_created_publishable_key_ingests),
        cmocka_unit_test(test_session_mints_a_working_secret_key),
        cmocka_unit_test(test_revoked_publishable_key_is_refused_at_once),
        cmocka_unit_test(test_session_writes_need_the_csrf_token),
        cmocka_unit_test(test_secret_key_manages_publishable_keys_only),
        cmocka_unit_test(test_live_key_limit),
        cmocka_unit_test(test_other_store_keys_are_out_of_reach),
        cmocka_unit_test(test_bad_input_is_4xx),
        cmocka_unit_test(test_keys_and_hashes_never_leak),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
