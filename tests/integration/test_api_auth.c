/*
 * test_api_auth.c — who may read what through the merchant API, against a real profit-engine
 * child process on a private, migrated database: secret keys, publishable keys, revoked keys,
 * sign-in sessions (cookie attributes, logout, junk cookies) and store scoping.
 *
 * Invariants the tests hold the server to:
 *  1. Tenancy: a secret key reads only its own store; a session reads only its user's stores;
 *     anything else is 403 "forbidden", never the other store's data.
 *  2. Missing, unknown, malformed or revoked credentials are 401 "unauthorized"; a publishable
 *     key on an admin route is 403. Nothing the client sends can produce a 5xx.
 *  3. Every refusal has the one error shape {"error":{"code":…,"message":…}}.
 *  4. A session token travels only in an HttpOnly, SameSite=Strict cookie: it appears in no
 *     response body, and after logout the same cookie is refused.
 *  5. A wrong password and an unknown email get the same status, code and message.
 *  6. A state-changing request on a session carries the session's csrfToken as X-CSRF-Token or
 *     is refused 403 csrf_token_invalid; bearer keys need none.
 *  7. Repeated failed sign-ins are answered 429 with Retry-After: first a growing delay, then a
 *     lock per account (the right password included) and per address; success clears the
 *     account's count.
 *  8. One session opens every store of its user (a merchant with several stores switches between
 *     them without signing in again) and no other: every /api/v1 route with a {storeId} refuses
 *     a store the user is not a member of — reads and writes with a valid CSRF token alike —
 *     with the JSON error shape, never a 5xx, and writes nothing there.
 *  9. Behind PE_TRUSTED_PROXIES the address that is throttled (and logged) is the client that
 *     X-Forwarded-For names, walked right to left; without it, or from an untrusted peer, the
 *     header is ignored; a malformed header counts against the peer, never a 5xx. IPv6 clients
 *     count per /64.
 * 10. The purge deletes throttle rows whose window and lock have both passed, and only those.
 *
 * Three stores, A, B and C, each with one merchant user, and a fourth user who is a member of
 * A and B are made in-process (pe_test_tenant_make, pe_tenancy_user_create) on a pool of the
 * same database; every response body this program receives is kept so invariant 4 can be
 * checked at the end. A second server that trusts 127.0.0.0/8 as its proxies plays the reverse
 * proxy's back end.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pe/api.h"
#include "pe/http.h"
#include "pe/tenancy.h"
#include "pe_test.h"

#define PASSWORD_A "alpha-password-1"
#define PASSWORD_B "bravo-password-2"
#define EMAIL_A    "owner-a@example.com"
#define EMAIL_B    "owner-b@example.com"
#define PASSWORD_C "charlie-password-3"
#define EMAIL_C    "owner-c@example.com"
#define PASSWORD_M "many-stores-password-4"
#define EMAIL_M    "merchant-ab@example.com" /* a member of stores A and B */

static pe_test_fixture_t fx;
static pe_test_tenant_t a, b, c;
static char user_m[PE_ID_LEN];
static pe_buf_t all_bodies; /* every response body received, for invariant 4 */

/* ---- helpers --------------------------------------------------------------------------------- */

/* Sends method path to srv with body and headers; keeps the body for the final token check. */
static long call_at(const pe_test_server_t *srv, const char *method, const char *path,
                    const char *body, const char *const *headers, pe_test_response_t *r)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", srv->base_url, path);
    assert_int_equal(pe_test_http(method, url, body, headers, r), 0);
    if (r->body.len) {
        assert_int_equal(pe_buf_append(&all_bodies, r->body.data, r->body.len), 0);
        assert_int_equal(pe_buf_puts(&all_bodies, "\n"), 0);
    }
    return r->status;
}

static long call(const char *method, const char *path, const char *body, const char *const *headers,
                 pe_test_response_t *r)
{
    return call_at(&fx.server, method, path, body, headers, r);
}

/* GET /api/v1/stores/{id} with one extra header line (may be NULL). */
static long get_store(const char *id, const char *header, pe_test_response_t *r)
{
    char path[512];
    snprintf(path, sizeof path, "/api/v1/stores/%s", id);
    const char *headers[] = {header, NULL};
    return call("GET", path, NULL, header ? headers : NULL, r);
}

static void bearer(char *out, size_t outlen, const char *key)
{
    snprintf(out, outlen, "Authorization: Bearer %s", key);
}

/* Asserts a 200 store body for t's store. */
static void expect_store(const pe_test_response_t *r, const pe_test_tenant_t *t, const char *name)
{
    if (r->status != 200)
        fail_msg("status %ld, want 200: %.300s", r->status, r->body.data ? r->body.data : "");
    cJSON *j = pe_test_response_json(r);
    assert_string_equal(pe_test_json_require_str(j, "id"), t->id);
    assert_string_equal(pe_test_json_require_str(j, "name"), name);
    assert_string_equal(pe_test_json_require_str(j, "currency"), t == &a ? "EUR" : "USD");
    assert_string_equal(pe_test_json_require_str(j, "timezone"),
                        t == &a ? "Europe/Berlin" : "America/New_York");
    cJSON_Delete(j);
}

/* Signs in; returns the session token (from Set-Cookie) in token, checks the cookie's
 * attributes and the csrfToken, and returns the body (the caller deletes it). */
static cJSON *sign_in(const char *email, const char *password, char *token, size_t tokenlen)
{
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    pe_test_response_t r;
    const char *headers[] = {"Content-Type: application/json", NULL};
    call("POST", "/api/v1/auth/login", body, headers, &r);
    if (r.status != 200)
        fail_msg("login: status %ld: %.300s", r.status, r.body.data ? r.body.data : "");

    char cookie[512];
    pe_test_response_header(&r, "Set-Cookie", cookie, sizeof cookie);
    assert_true(strncmp(cookie, PE_SESSION_COOKIE "=", strlen(PE_SESSION_COOKIE) + 1) == 0);
    const char *v = cookie + strlen(PE_SESSION_COOKIE) + 1;
    size_t n = strcspn(v, ";");
    assert_true(n >= 32 && n < tokenlen);
    memcpy(token, v, n);
    token[n] = '\0';
    assert_non_null(strstr(cookie, "; HttpOnly"));
    assert_non_null(strstr(cookie, "; SameSite=Strict"));
    assert_non_null(strstr(cookie, "; Path=/"));
    assert_null(strstr(cookie, "Secure")); /* plain HTTP here, no X-Forwarded-Proto */

    cJSON *j = pe_test_response_json(&r);
    assert_true(strlen(pe_test_json_require_str(j, "csrfToken")) >= 32);
    assert_string_not_equal(pe_test_json_require_str(j, "csrfToken"), token);
    assert_null(strstr(r.body.data, token));
    pe_test_response_free(&r);
    return j;
}

/* Signs in as t's user (a member of t's store only); returns the session token in token. */
static void login(const char *email, const char *password, const pe_test_tenant_t *t, char *token,
                  size_t tokenlen)
{
    cJSON *j = sign_in(email, password, token, tokenlen);
    assert_string_equal(pe_test_json_require_str(j, "userId"), t->user);
    const cJSON *stores = cJSON_GetObjectItemCaseSensitive(j, "stores");
    assert_true(cJSON_IsArray(stores));
    assert_int_equal(cJSON_GetArraySize(stores), 1);
    assert_string_equal(pe_test_json_require_str(cJSON_GetArrayItem(stores, 0), "id"), t->id);
    cJSON_Delete(j);
}

static void cookie_header(char *out, size_t outlen, const char *token)
{
    snprintf(out, outlen, "Cookie: %s=%s", PE_SESSION_COOKIE, token);
}

/* The session's anti-CSRF token, from GET /api/v1/me, as an "X-CSRF-Token: …" line. */
static void csrf_header(char *out, size_t outlen, const char *cookie)
{
    pe_test_response_t r;
    const char *headers[] = {cookie, NULL};
    call("GET", "/api/v1/me", NULL, headers, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = pe_test_response_json(&r);
    snprintf(out, outlen, "X-CSRF-Token: %s", pe_test_json_require_str(j, "csrfToken"));
    cJSON_Delete(j);
    pe_test_response_free(&r);
}

/* ---- secret and publishable keys ------------------------------------------------------------- */

static void test_secret_key_reads_own_store(void **state)
{
    (void)state;
    pe_test_response_t r;
    char h[256];

    bearer(h, sizeof h, a.sk);
    get_store(a.id, h, &r);
    expect_store(&r, &a, "Store A");
    pe_test_response_free(&r);

    bearer(h, sizeof h, b.sk);
    get_store(b.id, h, &r);
    expect_store(&r, &b, "Store B");
    pe_test_response_free(&r);

    /* The scheme is case-insensitive. */
    snprintf(h, sizeof h, "Authorization: bearer %s", a.sk);
    get_store(a.id, h, &r);
    expect_store(&r, &a, "Store A");
    pe_test_response_free(&r);
}

static void test_other_store_is_forbidden(void **state)
{
    (void)state;
    pe_test_response_t r;
    char h[256];

    bearer(h, sizeof h, b.sk);
    get_store(a.id, h, &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    assert_null(strstr(r.body.data, "Store A"));
    pe_test_response_free(&r);

    bearer(h, sizeof h, a.sk);
    get_store(b.id, h, &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);
}

static void test_publishable_key_refused(void **state)
{
    (void)state;
    pe_test_response_t r;
    char h[256];

    bearer(h, sizeof h, a.pk);
    get_store(a.id, h, &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);

    /* ?key= is for storefront routes only: without a bearer the admin route is 401. */
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s?key=%s", a.id, a.pk);
    call("GET", path, NULL, NULL, &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
    snprintf(path, sizeof path, "/api/v1/stores/%s?key=%s", a.id, a.sk);
    call("GET", path, NULL, NULL, &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
}

static void test_missing_and_bad_credentials(void **state)
{
    (void)state;
    pe_test_response_t r;

    get_store(a.id, NULL, &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);

    /* A secret key with one character changed, garbage, an empty bearer, another scheme. */
    char tampered[PE_KEY_LEN];
    snprintf(tampered, sizeof tampered, "%s", a.sk);
    size_t last = strlen(tampered) - 1;
    tampered[last] = tampered[last] == 'A' ? 'B' : 'A';
    char tampered_h[256];
    bearer(tampered_h, sizeof tampered_h, tampered);
    char *long_h = malloc(6000);
    assert_non_null(long_h);
    snprintf(long_h, 6000, "Authorization: Bearer sk_%04000d", 7);
    const char *bad[] = {
        tampered_h,
        "Authorization: Bearer garbage",
        "Authorization: Bearer sk_",
        "Authorization: Bearer pk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Authorization: Bearer sk_' OR '1'='1",
        "Authorization: Bearer sk_\xff\xfe\xfd",
        long_h,
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        get_store(a.id, bad[i], &r);
        if (r.status != 401)
            fail_msg("case %zu: status %ld, want 401: %.300s", i, r.status,
                     r.body.data ? r.body.data : "");
        pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
        pe_test_response_free(&r);
    }
    free(long_h);

    /* No bearer token at all (empty, Basic): as if no credentials were sent. */
    const char *none[] = {"Authorization: Bearer ", "Authorization: Basic c2tfeDp4"};
    for (size_t i = 0; i < PE_ARRAY_LEN(none); i++) {
        get_store(a.id, none[i], &r);
        pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
        pe_test_response_free(&r);
    }
}

static void test_revoked_key(void **state)
{
    (void)state;
    char key[PE_KEY_LEN], key_id[PE_ID_LEN], h[256];
    pe_test_response_t r;

    assert_int_equal(pe_tenancy_key_create(fx.pool, a.id, PE_KEY_SECRET, key, key_id), 0);
    bearer(h, sizeof h, key);
    get_store(a.id, h, &r);
    expect_store(&r, &a, "Store A");
    pe_test_response_free(&r);

    assert_int_equal(pe_tenancy_key_revoke(fx.pool, a.id, key_id), 0);
    get_store(a.id, h, &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);

    /* The store's original key still works. */
    bearer(h, sizeof h, a.sk);
    get_store(a.id, h, &r);
    expect_store(&r, &a, "Store A");
    pe_test_response_free(&r);
}

static void test_malformed_store_id(void **state)
{
    (void)state;
    static const char *const ids[] = {
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
        "%27%3B%20DROP%20TABLE%20stores%3B--",
        "%E2%98%83",
        "1",
        "ffffffff-ffff-ffff-ffff-ffffffffffffffffffffffff",
    };
    char h[256];
    bearer(h, sizeof h, a.sk);
    for (size_t i = 0; i < PE_ARRAY_LEN(ids); i++) {
        pe_test_response_t r;
        get_store(ids[i], h, &r);
        if (r.status != 403)
            fail_msg("store id %s: status %ld, want 403: %.300s", ids[i], r.status,
                     r.body.data ? r.body.data : "");
        pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
        pe_test_response_free(&r);
    }
    /* A uuid is the same store in any letter case, for keys as for sessions. */
    char upper[PE_ID_LEN];
    for (size_t i = 0; i < sizeof upper; i++)
        upper[i] = (char)toupper((unsigned char)a.id[i]);
    pe_test_response_t r;
    get_store(upper, h, &r);
    expect_store(&r, &a, "Store A");
    pe_test_response_free(&r);
}

/* ---- sessions -------------------------------------------------------------------------------- */

/* GET /api/v1/auth/session: the dashboard's probe. Signed out (no cookie, a junk one, an ended
 * session) it is 200 {"signedIn":false} — nothing for a browser console to log as an error —
 * and signed in it is /api/v1/me's answer with "signedIn":true. */
static void test_session_probe(void **state)
{
    (void)state;
    char token[128], cookie[256];
    pe_test_response_t r;
    const char *nothing[] = {NULL};
    call("GET", "/api/v1/auth/session", NULL, nothing, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"signedIn\":false}");
    pe_test_response_free(&r);
    const char *junk[] = {"Cookie: " PE_SESSION_COOKIE "=not-a-session", NULL};
    call("GET", "/api/v1/auth/session", NULL, junk, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"signedIn\":false}");
    pe_test_response_free(&r);
    login(EMAIL_A, PASSWORD_A, &a, token, sizeof token);
    cookie_header(cookie, sizeof cookie, token);
    const char *signed_in[] = {cookie, NULL};
    call("GET", "/api/v1/auth/session", NULL, signed_in, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = pe_test_response_json(&r);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "signedIn")));
    assert_string_equal(pe_test_json_require_str(j, "userId"), a.user);
    assert_true(strlen(pe_test_json_require_str(j, "csrfToken")) >= 32);
    assert_null(strstr(r.body.data, token)); /* the token itself is never in a body */
    cJSON_Delete(j);
    pe_test_response_free(&r);
}

static void test_session_lifecycle(void **state)
{
    (void)state;
    char token[128], cookie[256];
    pe_test_response_t r;

    login(EMAIL_A, PASSWORD_A, &a, token, sizeof token);
    cookie_header(cookie, sizeof cookie, token);

    get_store(a.id, cookie, &r);
    expect_store(&r, &a, "Store A");
    pe_test_response_free(&r);

    get_store(b.id, cookie, &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    assert_null(strstr(r.body.data, "Store B"));
    pe_test_response_free(&r);

    get_store("not-a-uuid", cookie, &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);

    const char *headers[] = {cookie, NULL};
    call("GET", "/api/v1/me", NULL, headers, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = pe_test_response_json(&r);
    assert_string_equal(pe_test_json_require_str(j, "userId"), a.user);
    const cJSON *stores = cJSON_GetObjectItemCaseSensitive(j, "stores");
    assert_int_equal(cJSON_GetArraySize(stores), 1);
    const cJSON *s0 = cJSON_GetArrayItem(stores, 0);
    assert_string_equal(pe_test_json_require_str(s0, "id"), a.id);
    assert_string_equal(pe_test_json_require_str(s0, "name"), "Store A");
    cJSON_Delete(j);
    pe_test_response_free(&r);

    /* A bearer key is not a session: /me wants the cookie. */
    char h[256];
    bearer(h, sizeof h, a.sk);
    const char *key_headers[] = {h, NULL};
    call("GET", "/api/v1/me", NULL, key_headers, &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);

    /* Logout ends the session and clears the cookie. */
    char csrf[128];
    csrf_header(csrf, sizeof csrf, cookie);
    const char *logout_headers[] = {cookie, csrf, NULL};
    call("POST", "/api/v1/auth/logout", "", logout_headers, &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body.len, 0);
    char set_cookie[512];
    pe_test_response_header(&r, "Set-Cookie", set_cookie, sizeof set_cookie);
    assert_true(strncmp(set_cookie, PE_SESSION_COOKIE "=;", strlen(PE_SESSION_COOKIE) + 2) == 0);
    assert_non_null(strstr(set_cookie, "Max-Age=0"));
    assert_non_null(strstr(set_cookie, "HttpOnly"));
    pe_test_response_free(&r);

    call("GET", "/api/v1/me", NULL, headers, &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
    get_store(a.id, cookie, &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
    call("POST", "/api/v1/auth/logout", "", logout_headers, &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
}

static void test_sessions_are_per_user(void **state)
{
    (void)state;
    char token_a[128], token_b[128], cookie[256];
    pe_test_response_t r;

    login(EMAIL_A, PASSWORD_A, &a, token_a, sizeof token_a);
    login(EMAIL_B, PASSWORD_B, &b, token_b, sizeof token_b);
    assert_string_not_equal(token_a, token_b);

    cookie_header(cookie, sizeof cookie, token_b);
    get_store(b.id, cookie, &r);
    expect_store(&r, &b, "Store B");
    pe_test_response_free(&r);
    get_store(a.id, cookie, &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);

    /* Ending B's session leaves A's alone. */
    char csrf_b[128];
    csrf_header(csrf_b, sizeof csrf_b, cookie);
    const char *headers_b[] = {cookie, csrf_b, NULL};
    call("POST", "/api/v1/auth/logout", "", headers_b, &r);
    assert_int_equal(r.status, 204);
    pe_test_response_free(&r);
    cookie_header(cookie, sizeof cookie, token_a);
    get_store(a.id, cookie, &r);
    expect_store(&r, &a, "Store A");
    pe_test_response_free(&r);
}

static void test_junk_session_cookies(void **state)
{
    (void)state;
    char *long_cookie = malloc(5000);
    assert_non_null(long_cookie);
    snprintf(long_cookie, 5000, "Cookie: " PE_SESSION_COOKIE "=%03000d", 1);
    const char *junk[] = {
        "Cookie: " PE_SESSION_COOKIE "=junk",
        "Cookie: " PE_SESSION_COOKIE "=",
        "Cookie: " PE_SESSION_COOKIE "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Cookie: " PE_SESSION_COOKIE "=%00%00",
        "Cookie: " PE_SESSION_COOKIE "=\"quoted\"",
        "Cookie: other=1; " PE_SESSION_COOKIE "='; DROP TABLE sessions;--",
        long_cookie,
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(junk); i++) {
        pe_test_response_t r;
        const char *headers[] = {junk[i], NULL};
        call("GET", "/api/v1/me", NULL, headers, &r);
        if (r.status != 401)
            fail_msg("cookie case %zu: /me status %ld, want 401: %.300s", i, r.status,
                     r.body.data ? r.body.data : "");
        pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
        pe_test_response_free(&r);
        get_store(a.id, junk[i], &r);
        if (r.status != 401)
            fail_msg("cookie case %zu: store status %ld, want 401: %.300s", i, r.status,
                     r.body.data ? r.body.data : "");
        pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
        pe_test_response_free(&r);
    }
    free(long_cookie);

    pe_test_response_t r;
    call("GET", "/api/v1/me", NULL, NULL, &r);
    pe_test_expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
}

static void test_login_refusals(void **state)
{
    (void)state;
    const char *json[] = {"Content-Type: application/json", NULL};
    pe_test_response_t r;
    char msg_wrong[512], msg_unknown[512], msg_other_store[512];

    call("POST", "/api/v1/auth/login",
         "{\"email\":\"" EMAIL_A "\",\"password\":\"not-the-password\"}", json, &r);
    pe_test_expect_error(&r, 401, "invalid_credentials", msg_wrong, sizeof msg_wrong);
    char set_cookie[256];
    assert_string_equal(pe_test_response_header(&r, "Set-Cookie", set_cookie, sizeof set_cookie),
                        "");
    pe_test_response_free(&r);

    call("POST", "/api/v1/auth/login",
         "{\"email\":\"nobody@example.com\",\"password\":\"" PASSWORD_A "\"}", json, &r);
    pe_test_expect_error(&r, 401, "invalid_credentials", msg_unknown, sizeof msg_unknown);
    assert_string_equal(pe_test_response_header(&r, "Set-Cookie", set_cookie, sizeof set_cookie),
                        "");
    pe_test_response_free(&r);
    assert_string_equal(msg_wrong, msg_unknown);

    /* B's password for A's email. */
    call("POST", "/api/v1/auth/login",
         "{\"email\":\"" EMAIL_A "\",\"password\":\"" PASSWORD_B "\"}", json, &r);
    pe_test_expect_error(&r, 401, "invalid_credentials", msg_other_store, sizeof msg_other_store);
    assert_string_equal(msg_wrong, msg_other_store);
    pe_test_response_free(&r);

    /* A malformed email or a too-short password is still the same answer, not a hint. */
    call("POST", "/api/v1/auth/login", "{\"email\":\"no-at-sign\",\"password\":\"x\"}", json, &r);
    pe_test_expect_error(&r, 401, "invalid_credentials", msg_unknown, sizeof msg_unknown);
    assert_string_equal(msg_wrong, msg_unknown);
    pe_test_response_free(&r);

    /* The email is case-insensitive (normalised), the password is not. */
    char token[128];
    login("OWNER-A@Example.com", PASSWORD_A, &a, token, sizeof token);
    call("POST", "/api/v1/auth/login",
         "{\"email\":\"" EMAIL_A "\",\"password\":\"ALPHA-PASSWORD-1\"}", json, &r);
    pe_test_expect_error(&r, 401, "invalid_credentials", NULL, 0);
    pe_test_response_free(&r);

    /* Missing fields, wrong types. */
    static const char *const shapes[] = {
        "{}",
        "{\"email\":\"" EMAIL_A "\"}",
        "{\"email\":1,\"password\":\"" PASSWORD_A "\"}",
        "{\"email\":\"" EMAIL_A "\",\"password\":null}",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(shapes); i++) {
        call("POST", "/api/v1/auth/login", shapes[i], json, &r);
        pe_test_expect_error(&r, 400, "invalid_request", NULL, 0);
        pe_test_response_free(&r);
    }
}

/* ---- CSRF ------------------------------------------------------------------------------------ */

#define FLAG_BODY                                                                                  \
    "{\"key\":\"%s\",\"kind\":\"release\",\"enabled\":true,\"rolloutPercentage\":100,"             \
    "\"variants\":[{\"key\":\"on\",\"value\":true,\"weight\":100}]}"

static void test_csrf_token_on_session_writes(void **state)
{
    (void)state;
    char token[128], cookie[256], csrf[128], other_token[128], other_cookie[256], other_csrf[128];
    char path[256], body[512];
    pe_test_response_t r;
    login(EMAIL_A, PASSWORD_A, &a, token, sizeof token);
    cookie_header(cookie, sizeof cookie, token);
    csrf_header(csrf, sizeof csrf, cookie);
    login(EMAIL_A, PASSWORD_A, &a, other_token, sizeof other_token);
    cookie_header(other_cookie, sizeof other_cookie, other_token);
    csrf_header(other_csrf, sizeof other_csrf, other_cookie);
    assert_string_not_equal(csrf, other_csrf); /* per session */

    snprintf(path, sizeof path, "/api/v1/stores/%s/flags", a.id);
    snprintf(body, sizeof body, FLAG_BODY, "csrf-flag");
    const char *json = "Content-Type: application/json";
    char msg[512];

    /* without, with another session's, with a truncated token: refused, nothing written */
    const char *none[] = {cookie, json, NULL};
    call("POST", path, body, none, &r);
    pe_test_expect_error(&r, 403, "csrf_token_invalid", msg, sizeof msg);
    assert_non_null(strstr(msg, "X-CSRF-Token"));
    pe_test_response_free(&r);
    const char *wrong[] = {cookie, json, other_csrf, NULL};
    call("POST", path, body, wrong, &r);
    pe_test_expect_error(&r, 403, "csrf_token_invalid", NULL, 0);
    pe_test_response_free(&r);
    char truncated[128];
    snprintf(truncated, sizeof truncated, "%.*s", (int)strlen(csrf) - 1, csrf);
    const char *short_one[] = {cookie, json, truncated, NULL};
    call("POST", path, body, short_one, &r);
    pe_test_expect_error(&r, 403, "csrf_token_invalid", NULL, 0);
    pe_test_response_free(&r);
    char *n = pe_test_sql(fx.conninfo, "SELECT count(*) FROM flags WHERE key = 'csrf-flag'");
    assert_string_equal(n, "0");
    free(n);
    /* logout is a write too: without the token the session survives */
    call("POST", "/api/v1/auth/logout", "", none, &r);
    pe_test_expect_error(&r, 403, "csrf_token_invalid", NULL, 0);
    pe_test_response_free(&r);

    /* with its token, but a browser saying a page of another site sent it (a stolen token
     * used from a cross-site form): refused before the token counts; same-site goes on */
    const char *cross[] = {cookie, json, csrf, "Sec-Fetch-Site: cross-site", NULL};
    call("POST", path, body, cross, &r);
    pe_test_expect_error(&r, 403, "cross_site_request", NULL, 0);
    pe_test_response_free(&r);
    const char *opaque[] = {cookie, json, csrf, "Origin: null", NULL};
    call("POST", path, body, opaque, &r);
    pe_test_expect_error(&r, 403, "cross_site_request", NULL, 0);
    pe_test_response_free(&r);
    n = pe_test_sql(fx.conninfo, "SELECT count(*) FROM flags WHERE key = 'csrf-flag'");
    assert_string_equal(n, "0");
    free(n);
    /* reads are not refused for it (a cross-site read gets no CORS grant anyway) */
    call("GET", path, NULL, cross, &r);
    assert_int_equal(r.status, 200);
    pe_test_response_free(&r);

    /* with its own token: done (a same-origin page says so) */
    const char *right[] = {cookie, json, csrf, "Sec-Fetch-Site: same-origin", NULL};
    call("POST", path, body, right, &r);
    if (r.status != 201)
        fail_msg("status %ld: %.300s", r.status, r.body.data ? r.body.data : "");
    pe_test_response_free(&r);
    /* reads need none */
    call("GET", path, NULL, none, &r);
    assert_int_equal(r.status, 200);
    pe_test_response_free(&r);

    /* a secret key is not sent by a browser on its own: no token */
    char h[256];
    bearer(h, sizeof h, a.sk);
    const char *key_headers[] = {h, json, NULL};
    snprintf(body, sizeof body, FLAG_BODY, "csrf-flag-by-key");
    call("POST", path, body, key_headers, &r);
    if (r.status != 201)
        fail_msg("status %ld: %.300s", r.status, r.body.data ? r.body.data : "");
    pe_test_response_free(&r);

    const char *logout_right[] = {cookie, csrf, NULL};
    call("POST", "/api/v1/auth/logout", "", logout_right, &r);
    assert_int_equal(r.status, 204);
    pe_test_response_free(&r);
    const char *logout_other[] = {other_cookie, other_csrf, NULL};
    call("POST", "/api/v1/auth/logout", "", logout_other, &r);
    assert_int_equal(r.status, 204);
    pe_test_response_free(&r);
}

/* ---- a merchant with several stores ---------------------------------------------------------- */

/* Asserts a 2xx; the body may be anything. */
static void expect_ok(const pe_test_response_t *r, const char *what)
{
    if (r->status < 200 || r->status > 299)
        fail_msg("%s: status %ld, want 2xx: %.300s", what, r->status,
                 r->body.data ? r->body.data : "");
}

static void test_one_session_opens_every_store_of_its_user(void **state)
{
    (void)state;
    char token[128], cookie[256], csrf[128], path[256], body[512];
    pe_test_response_t r;
    cJSON *j = sign_in(EMAIL_M, PASSWORD_M, token, sizeof token);
    assert_string_equal(pe_test_json_require_str(j, "userId"), user_m);
    const cJSON *stores = cJSON_GetObjectItemCaseSensitive(j, "stores");
    assert_int_equal(cJSON_GetArraySize(stores), 2);
    cJSON_Delete(j);
    cookie_header(cookie, sizeof cookie, token);
    csrf_header(csrf, sizeof csrf, cookie);

    /* /me lists both stores, oldest membership first, with what the switcher shows */
    const char *headers[] = {cookie, NULL};
    call("GET", "/api/v1/me", NULL, headers, &r);
    assert_int_equal(r.status, 200);
    j = pe_test_response_json(&r);
    assert_string_equal(pe_test_json_require_str(j, "userId"), user_m);
    stores = cJSON_GetObjectItemCaseSensitive(j, "stores");
    assert_int_equal(cJSON_GetArraySize(stores), 2);
    const cJSON *s0 = cJSON_GetArrayItem(stores, 0), *s1 = cJSON_GetArrayItem(stores, 1);
    assert_string_equal(pe_test_json_require_str(s0, "id"), a.id);
    assert_string_equal(pe_test_json_require_str(s0, "name"), "Store A");
    assert_string_equal(pe_test_json_require_str(s0, "currency"), "EUR");
    assert_string_equal(pe_test_json_require_str(s1, "id"), b.id);
    assert_string_equal(pe_test_json_require_str(s1, "name"), "Store B");
    assert_string_equal(pe_test_json_require_str(s1, "timezone"), "America/New_York");
    cJSON_Delete(j);
    pe_test_response_free(&r);

    /* the same session reads and writes both, back and forth */
    const pe_test_tenant_t *both[] = {&a, &b, &a};
    for (size_t i = 0; i < PE_ARRAY_LEN(both); i++) {
        const pe_test_tenant_t *t = both[i];
        get_store(t->id, cookie, &r);
        expect_store(&r, t, t == &a ? "Store A" : "Store B");
        pe_test_response_free(&r);
        static const char *const reads[] = {"/flags",      "/products",         "/changesets",
                                            "/guardrails", "/metrics/overview", "/funnel"};
        for (size_t k = 0; k < PE_ARRAY_LEN(reads); k++) {
            snprintf(path, sizeof path, "/api/v1/stores/%s%s", t->id, reads[k]);
            call("GET", path, NULL, headers, &r);
            expect_ok(&r, path);
            pe_test_response_free(&r);
        }
        snprintf(path, sizeof path, "/api/v1/stores/%s/flags", t->id);
        snprintf(body, sizeof body, FLAG_BODY, i == 2 ? "switch-flag-again" : "switch-flag");
        const char *write[] = {cookie, csrf, "Content-Type: application/json", NULL};
        call("POST", path, body, write, &r);
        if (r.status != 201)
            fail_msg("POST %s: status %ld: %.300s", path, r.status, r.body.data);
        pe_test_response_free(&r);
    }
    /* each flag landed in the store it was written to */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(key, ',' ORDER BY key) FROM flags WHERE store_id = '%s' "
             "AND key LIKE 'switch-flag%%'",
             a.id);
    char *keys = pe_test_sql(fx.conninfo, sql);
    assert_string_equal(keys, "switch-flag,switch-flag-again");
    free(keys);
    snprintf(sql, sizeof sql,
             "SELECT string_agg(key, ',' ORDER BY key) FROM flags WHERE store_id = '%s' "
             "AND key LIKE 'switch-flag%%'",
             b.id);
    keys = pe_test_sql(fx.conninfo, sql);
    assert_string_equal(keys, "switch-flag");
    free(keys);

    /* and nothing of store C */
    get_store(c.id, cookie, &r);
    pe_test_expect_error(&r, 403, "forbidden", NULL, 0);
    assert_null(strstr(r.body.data, "Store C"));
    pe_test_response_free(&r);

    const char *logout[] = {cookie, csrf, NULL};
    call("POST", "/api/v1/auth/logout", "", logout, &r);
    assert_int_equal(r.status, 204);
    pe_test_response_free(&r);
}

/* What store id's rows of every store-owned table add up to, to see that nothing was written. */
static char *store_footprint(const char *store_id)
{
    static const char *const tables[] = {"api_keys",      "flags",         "flag_changes",
                                         "flag_settings", "products",      "changesets",
                                         "guardrails",    "notifications", "store_members"};
    pe_buf_t sql = PE_BUF_INIT;
    assert_int_equal(pe_buf_puts(&sql, "SELECT concat_ws(','"), 0);
    for (size_t i = 0; i < PE_ARRAY_LEN(tables); i++)
        assert_int_equal(pe_buf_printf(&sql, ", (SELECT count(*) FROM %s WHERE store_id = '%s')",
                                       tables[i], store_id),
                         0);
    assert_int_equal(pe_buf_puts(&sql, ")"), 0);
    char *out = pe_test_sql(fx.conninfo, sql.data);
    pe_buf_free(&sql);
    return out;
}

/* pattern with {storeId} = store_id and every other parameter a plausible value. */
static void fill_pattern(const char *pattern, const char *store_id, char *out, size_t outlen)
{
    static const struct {
        const char *name, *value;
    } values[] = {
        {"{storeId}", NULL},
        {"{key}", "some-flag"},
        {"{step}", "checkout"},
        {"{cid}", "3f1c2a9e-0b4d-4e6f-8a7b-1c2d3e4f5a6b"},
        {"{keyId}", "3f1c2a9e-0b4d-4e6f-8a7b-1c2d3e4f5a6c"},
        {"{notificationId}", "3f1c2a9e-0b4d-4e6f-8a7b-1c2d3e4f5a6d"},
    };
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = pattern; *p;) {
        const char *value = NULL;
        size_t skip = 1;
        if (*p == '{') {
            const char *close = strchr(p, '}');
            assert_non_null(close);
            skip = (size_t)(close - p) + 1;
            value = "x"; /* an unknown parameter: any segment */
            for (size_t i = 0; i < PE_ARRAY_LEN(values); i++)
                if (strlen(values[i].name) == skip && strncmp(p, values[i].name, skip) == 0)
                    value = values[i].value ? values[i].value : store_id;
        }
        int w = value ? snprintf(out + n, outlen - n, "%s", value)
                      : snprintf(out + n, outlen - n, "%c", *p);
        assert_true(w > 0 && (size_t)w < outlen - n);
        n += (size_t)w;
        p += skip;
    }
}

static void test_every_store_route_refuses_non_members(void **state)
{
    (void)state;
    char token[128], cookie[256], csrf[128], path[512];
    cJSON *j = sign_in(EMAIL_M, PASSWORD_M, token, sizeof token);
    cJSON_Delete(j);
    cookie_header(cookie, sizeof cookie, token);
    csrf_header(csrf, sizeof csrf, cookie);

    /* every route of the API table, so a route added later is held to the same rule */
    pe_http_router_t *router = pe_http_router_new();
    assert_non_null(router);
    assert_int_equal(pe_api_register(router), 0);
    char *before = store_footprint(c.id);
    /* a store that exists (C, someone else's) and one that does not */
    const char *targets[] = {c.id, "00000000-0000-4000-8000-000000000000"};
    size_t checked = 0, writes = 0;
    for (size_t i = 0; i < pe_http_router_count(router); i++) {
        const pe_http_route_t *route = pe_http_router_route(router, i);
        if (strncmp(route->pattern, "/api/v1/", 8) != 0 || !strstr(route->pattern, "{storeId}"))
            continue;
        bool write = strcmp(route->method, "GET") != 0;
        for (size_t t = 0; t < PE_ARRAY_LEN(targets); t++) {
            fill_pattern(route->pattern, targets[t], path, sizeof path);
            const char *headers[] = {cookie, csrf, "Content-Type: application/json", NULL};
            pe_test_response_t r;
            call(route->method, path, write && route->max_body ? "{}" : NULL, headers, &r);
            /* a route for secret keys only does not take a session at all */
            long want = route->auth == PE_AUTH_SECRET ? 401 : 403;
            if (r.status != want)
                fail_msg("%s %s: status %ld, want %ld: %.300s", route->method, path, r.status, want,
                         r.body.data ? r.body.data : "");
            pe_test_expect_error(&r, want, want == 403 ? "forbidden" : "unauthorized", NULL, 0);
            assert_null(strstr(r.body.data, "Store C"));
            pe_test_response_free(&r);
            checked++;
            writes += write;
        }
    }
    pe_http_router_free(router);
    assert_true(checked >= 2 * 25); /* the table has at least this many store routes */
    assert_true(writes >= 2 * 10);
    char *after = store_footprint(c.id);
    assert_string_equal(after, before);
    free(before);
    free(after);

    /* the same session still works on its own stores afterwards */
    pe_test_response_t r;
    get_store(b.id, cookie, &r);
    expect_store(&r, &b, "Store B");
    pe_test_response_free(&r);
    const char *logout[] = {cookie, csrf, NULL};
    call("POST", "/api/v1/auth/logout", "", logout, &r);
    assert_int_equal(r.status, 204);
    pe_test_response_free(&r);
}

/* ---- sign-in throttling ---------------------------------------------------------------------- */

static long try_login(const char *email, const char *password, pe_test_response_t *r)
{
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    const char *headers[] = {"Content-Type: application/json", NULL};
    return call("POST", "/api/v1/auth/login", body, headers, r);
}

/* Asserts a 429 whose Retry-After is in [lo, hi] and whose message contains want. */
static void expect_throttled(pe_test_response_t *r, int lo, int hi, const char *want)
{
    char msg[512], retry[32];
    pe_test_expect_error(r, 429, "too_many_requests", msg, sizeof msg);
    pe_test_response_header(r, "Retry-After", retry, sizeof retry);
    int s = atoi(retry);
    if (s < lo || s > hi)
        fail_msg("Retry-After %s, want %d..%d", retry, lo, hi);
    if (!strstr(msg, want))
        fail_msg("message \"%s\" lacks \"%s\"", msg, want);
    assert_string_equal(pe_test_response_header(r, "Set-Cookie", retry, sizeof retry), "");
    pe_test_response_free(r);
}

static void expect_wrong(const char *email)
{
    pe_test_response_t r;
    try_login(email, "not-the-password", &r);
    pe_test_expect_error(&r, 401, "invalid_credentials", NULL, 0);
    pe_test_response_free(&r);
}

/* As if the delay had passed (the clock is the database's). */
static void delay_passes(void)
{
    free(pe_test_sql(fx.conninfo, "UPDATE login_throttle SET locked_until = now() - interval '1s' "
                                  "WHERE kind = 'account'"));
}

static void test_failed_sign_ins_lock_the_account(void **state)
{
    (void)state;
    pe_test_response_t r;
    char token[128];
    expect_wrong(EMAIL_C);
    expect_wrong("Owner-C@example.com"); /* the same account */
    expect_wrong(EMAIL_C);
    /* three failures: the next attempt waits, even with the right password */
    try_login(EMAIL_C, PASSWORD_C, &r);
    expect_throttled(&r, 1, PE_LOGIN_DELAY_S, "for this account; wait");
    delay_passes();
    expect_wrong(EMAIL_C);
    try_login(EMAIL_C, PASSWORD_C, &r);
    expect_throttled(&r, PE_LOGIN_DELAY_S + 1, 2 * PE_LOGIN_DELAY_S, "for this account; wait");
    delay_passes();
    expect_wrong(EMAIL_C);
    /* five: locked for 15 minutes, the right password included */
    try_login(EMAIL_C, PASSWORD_C, &r);
    expect_throttled(&r, PE_LOGIN_LOCK_S - 60, PE_LOGIN_LOCK_S,
                     "Too many failed sign-ins for this account; try again in 15 minutes");
    try_login(EMAIL_C, "not-the-password", &r);
    expect_throttled(&r, PE_LOGIN_LOCK_S - 60, PE_LOGIN_LOCK_S, "try again in 15 minutes");
    /* another account from the same address is not locked (the address is under its limit) */
    login(EMAIL_B, PASSWORD_B, &b, token, sizeof token);

    /* the lock and its window pass: the right password opens a session and clears the count */
    free(pe_test_sql(fx.conninfo, "UPDATE login_throttle SET locked_until = now() - interval '1s', "
                                  "window_started_at = now() - interval '1 hour' "
                                  "WHERE kind = 'account'"));
    expect_wrong(EMAIL_C); /* a new window: 1 */
    expect_wrong(EMAIL_C); /* 2 */
    login(EMAIL_C, PASSWORD_C, &c, token, sizeof token);
    char *n = pe_test_sql(fx.conninfo, "SELECT count(*) FROM login_throttle WHERE kind = 'account' "
                                       "AND key = 'owner-c@example.com'");
    assert_string_equal(n, "0");
    free(n);
    /* two more failures after the success do not reach the delay (they would add to four) */
    expect_wrong(EMAIL_C);
    expect_wrong(EMAIL_C);
    login(EMAIL_C, PASSWORD_C, &c, token, sizeof token);
}

static void test_failed_sign_ins_lock_the_address(void **state)
{
    (void)state;
    pe_test_response_t r;
    char *s =
        pe_test_sql(fx.conninfo, "SELECT failures FROM login_throttle WHERE kind = 'address'");
    int before = s ? atoi(s) : 0;
    free(s);
    assert_true(before < PE_LOGIN_ADDRESS_LOCK_AT);
    /* one guess at each of many accounts: no account is throttled, the address is */
    for (int i = before; i < PE_LOGIN_ADDRESS_LOCK_AT; i++) {
        char email[64];
        snprintf(email, sizeof email, "guess-%d@example.com", i);
        expect_wrong(email);
    }
    try_login(EMAIL_B, PASSWORD_B, &r);
    expect_throttled(&r, PE_LOGIN_LOCK_S - 60, PE_LOGIN_LOCK_S,
                     "Too many failed sign-ins from this address; try again in 15 minutes");
    /* a success elsewhere does not clear the address; the tests after this one need it clear */
    free(pe_test_sql(fx.conninfo, "DELETE FROM login_throttle"));
}

/* ---- behind a reverse proxy ------------------------------------------------------------------ */

/* A wrong password for email through srv with one or two extra header lines (may be NULL). */
static long wrong_via(const pe_test_server_t *srv, const char *email, const char *h1,
                      const char *h2, pe_test_response_t *r)
{
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"not-the-password\"}", email);
    const char *headers[] = {"Content-Type: application/json", h1, h2, NULL};
    if (!h1)
        headers[1] = NULL;
    return call_at(srv, "POST", "/api/v1/auth/login", body, headers, r);
}

static int address_failures(const char *key)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT failures FROM login_throttle WHERE kind = 'address' AND key = '%s'", key);
    char *s = pe_test_sql(fx.conninfo, sql);
    int n = s ? atoi(s) : 0;
    free(s);
    return n;
}

/* The first line of path that contains every one of the NULL-terminated needles, or false. */
static bool log_has_line(const char *path, const char *const *needles)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        found = true;
        for (size_t i = 0; needles[i]; i++)
            found = found && strstr(line, needles[i]) != NULL;
    }
    fclose(f);
    return found;
}

static void test_trusted_proxy_names_the_client(void **state)
{
    (void)state;
    pe_test_server_t proxy;
    pe_test_server_start(
        &proxy, fx.conninfo,
        (const char *const[]){"PE_HTTP_THREADS=2", "PE_TRUSTED_PROXIES=127.0.0.0/8, ::1", NULL});
    free(pe_test_sql(fx.conninfo, "DELETE FROM login_throttle"));
    pe_test_response_t r;
    char token[128];

    /* Many clients share the proxy's connection; each is counted as itself. */
    for (int i = 0; i < PE_LOGIN_ADDRESS_LOCK_AT; i++) {
        char email[64];
        snprintf(email, sizeof email, "spray-%d@example.com", i);
        wrong_via(&proxy, email, "X-Forwarded-For: 198.51.100.7", NULL, &r);
        pe_test_expect_error(&r, 401, "invalid_credentials", NULL, 0);
        pe_test_response_free(&r);
    }
    assert_int_equal(address_failures("198.51.100.7"), PE_LOGIN_ADDRESS_LOCK_AT);
    assert_int_equal(address_failures("127.0.0.1"), 0);
    /* the guesser is locked out… */
    const char *json = "Content-Type: application/json";
    const char *from_7[] = {json, "X-Forwarded-For: 198.51.100.7", NULL};
    call_at(&proxy, "POST", "/api/v1/auth/login",
            "{\"email\":\"" EMAIL_B "\",\"password\":\"" PASSWORD_B "\"}", from_7, &r);
    expect_throttled(&r, PE_LOGIN_LOCK_S - 60, PE_LOGIN_LOCK_S,
                     "Too many failed sign-ins from this address; try again in 15 minutes");
    /* …and cannot step out by claiming another address left of the one the proxy saw, nor in a
     * header line of its own before the proxy's */
    const char *claimed[] = {json, "X-Forwarded-For: 198.51.100.8, 198.51.100.7", NULL};
    call_at(&proxy, "POST", "/api/v1/auth/login",
            "{\"email\":\"" EMAIL_B "\",\"password\":\"" PASSWORD_B "\"}", claimed, &r);
    expect_throttled(&r, PE_LOGIN_LOCK_S - 60, PE_LOGIN_LOCK_S, "from this address");
    const char *two_lines[] = {json, "X-Forwarded-For: 198.51.100.8",
                               "X-Forwarded-For: 198.51.100.7", NULL};
    call_at(&proxy, "POST", "/api/v1/auth/login",
            "{\"email\":\"" EMAIL_B "\",\"password\":\"" PASSWORD_B "\"}", two_lines, &r);
    expect_throttled(&r, PE_LOGIN_LOCK_S - 60, PE_LOGIN_LOCK_S, "from this address");
    /* …while everyone else behind the same proxy signs in */
    const char *from_8[] = {json, "X-Forwarded-For: 198.51.100.8", NULL};
    call_at(&proxy, "POST", "/api/v1/auth/login",
            "{\"email\":\"" EMAIL_B "\",\"password\":\"" PASSWORD_B "\"}", from_8, &r);
    if (r.status != 200)
        fail_msg("a bystander behind the proxy: status %ld: %.300s", r.status, r.body.data);
    pe_test_response_free(&r);
    /* trusted hops right of the client are skipped */
    wrong_via(&proxy, "hop@example.com", "X-Forwarded-For: 198.51.100.9, 127.0.0.2", NULL, &r);
    pe_test_expect_error(&r, 401, "invalid_credentials", NULL, 0);
    pe_test_response_free(&r);
    assert_int_equal(address_failures("198.51.100.9"), 1);

    /* A malformed header is the peer's failure, never a 5xx; so is no header. */
    static const char *const malformed[] = {
        "X-Forwarded-For: not-an-address",      "X-Forwarded-For: 198.51.100.10, unknown",
        "X-Forwarded-For: 198.51.100.10:99999", "X-Forwarded-For: [2001:db8::1",
        "X-Forwarded-For: 1.2.3.4%0a",          NULL,
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(malformed); i++) {
        char email[64]; /* one account each: the account's delay is not what is tested here */
        snprintf(email, sizeof email, "malformed-%zu@example.com", i);
        wrong_via(&proxy, email, malformed[i], NULL, &r);
        if (r.status != 401)
            fail_msg("header '%s': status %ld: %.300s", malformed[i] ? malformed[i] : "(none)",
                     r.status, r.body.data);
        pe_test_response_free(&r);
    }
    assert_int_equal(address_failures("127.0.0.1"), (int)PE_ARRAY_LEN(malformed));
    assert_int_equal(address_failures("198.51.100.10"), 0);
    free(pe_test_sql(fx.conninfo, "DELETE FROM login_throttle WHERE kind = 'account'"));

    /* IPv6 clients count per /64, in any spelling */
    wrong_via(&proxy, "v6@example.com", "X-Forwarded-For: 2001:db8:1:2::5", NULL, &r);
    pe_test_response_free(&r);
    wrong_via(&proxy, "v6@example.com", "X-Forwarded-For: [2001:DB8:1:2:ffff::6]:443", NULL, &r);
    pe_test_response_free(&r);
    wrong_via(&proxy, "v6@example.com", "X-Forwarded-For: 2001:db8:1:3::5", NULL, &r);
    pe_test_response_free(&r);
    assert_int_equal(address_failures("2001:db8:1:2::/64"), 2);
    assert_int_equal(address_failures("2001:db8:1:3::/64"), 1);
    free(pe_test_sql(fx.conninfo, "DELETE FROM login_throttle WHERE kind = 'account'"));

    /* The server that trusts no proxy ignores the header: the peer is the address. */
    int direct_before = address_failures("127.0.0.1");
    wrong_via(&fx.server, "direct@example.com", "X-Forwarded-For: 198.51.100.8", NULL, &r);
    pe_test_expect_error(&r, 401, "invalid_credentials", NULL, 0);
    pe_test_response_free(&r);
    assert_int_equal(address_failures("127.0.0.1"), direct_before + 1);
    assert_int_equal(address_failures("198.51.100.8"), 0);
    login(EMAIL_A, PASSWORD_A, &a, token, sizeof token); /* 198.51.100.7's lock is not ours */

    /* The access log shows the client, and the proxy it came through. */
    assert_int_equal(pe_test_server_stop(&proxy), 0);
    assert_true(log_has_line(
        proxy.log_path,
        (const char *const[]){"\"event\":\"http_request\"", "\"status\":429",
                              "\"remote\":\"198.51.100.7\",\"peer\":\"127.0.0.1\"", NULL}));
    assert_true(log_has_line(proxy.log_path,
                             (const char *const[]){"\"event\":\"http_request\"", "\"status\":200",
                                                   "\"remote\":\"198.51.100.8\"", NULL}));
    assert_true(
        log_has_line(proxy.log_path, (const char *const[]){"\"event\":\"http_request\"",
                                                           "\"remote\":\"127.0.0.1\"", NULL}));
    assert_false(log_has_line(proxy.log_path,
                              (const char *const[]){"\"remote\":\"127.0.0.1\",\"peer\"", NULL}));
    assert_true(
        log_has_line(fx.server.log_path, (const char *const[]){"\"event\":\"http_request\"",
                                                               "\"remote\":\"127.0.0.1\"", NULL}));
    assert_false(log_has_line(fx.server.log_path, (const char *const[]){"198.51.100.", NULL}));
    free(pe_test_sql(fx.conninfo, "DELETE FROM login_throttle"));
}

/* ---- the purge ------------------------------------------------------------------------------- */

static void test_purge_deletes_only_spent_rows(void **state)
{
    (void)state;
    free(pe_test_sql(fx.conninfo, "DELETE FROM login_throttle"));
    free(pe_test_sql(
        fx.conninfo,
        "INSERT INTO login_throttle (kind, key, failures, window_started_at, last_failed_at, "
        "locked_until) VALUES "
        /* spent: window over, never locked */
        "('account', 'old@example.com', 2, now() - interval '1 hour', "
        " now() - interval '50 minutes', NULL), "
        /* spent: window over, lock over */
        "('account', 'old-lock@example.com', 5, now() - interval '1 hour', "
        " now() - interval '50 minutes', now() - interval '35 minutes'), "
        "('address', '198.51.100.50', 3, now() - interval '16 minutes', "
        " now() - interval '16 minutes', NULL), "
        /* kept: window over but the lock is still in force */
        "('address', '198.51.100.51', 20, now() - interval '20 minutes', "
        " now() - interval '10 minutes', now() + interval '5 minutes'), "
        /* kept: window running */
        "('account', 'fresh@example.com', 1, now() - interval '1 minute', "
        " now() - interval '1 minute', NULL), "
        "('address', '198.51.100.52', 1, now() - interval '14 minutes', "
        " now() - interval '14 minutes', NULL), "
        /* kept: window running, waiting out a delay */
        "('account', 'delayed@example.com', 3, now() - interval '2 minutes', "
        " now() - interval '1 minute', now() + interval '4 seconds'), "
        /* kept: window running, lock already over (the count still matters) */
        "('account', 'recent@example.com', 4, now() - interval '5 minutes', "
        " now() - interval '1 minute', now() - interval '1 second')"));
    uint64_t n = 99;
    assert_int_equal(pe_tenancy_login_purge(fx.pool, &n), 0);
    assert_int_equal(n, 3);
    char *left =
        pe_test_sql(fx.conninfo, "SELECT string_agg(key, ',' ORDER BY key) FROM login_throttle");
    assert_string_equal(left, "198.51.100.51,198.51.100.52,delayed@example.com,fresh@example.com,"
                              "recent@example.com");
    free(left);
    /* nothing more to do the second time; NULL is allowed for the count */
    assert_int_equal(pe_tenancy_login_purge(fx.pool, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(pe_tenancy_login_purge(fx.pool, NULL), 0);

    /* a purged account starts from nothing, as it would have after its window anyway */
    free(
        pe_test_sql(fx.conninfo,
                    "UPDATE login_throttle SET window_started_at = now() - interval '1 hour', "
                    "locked_until = now() - interval '1 second' WHERE key = 'recent@example.com'"));
    assert_int_equal(pe_tenancy_login_purge(fx.pool, &n), 0);
    assert_int_equal(n, 1);
    expect_wrong("recent@example.com");
    char *failures = pe_test_sql(
        fx.conninfo, "SELECT failures FROM login_throttle WHERE key = 'recent@example.com'");
    assert_string_equal(failures, "1");
    free(failures);
    free(pe_test_sql(fx.conninfo, "DELETE FROM login_throttle"));
}

/* Sessions that can never authenticate again are deleted; live ones, and the user's other
 * sessions, stay and keep working. */
static void test_session_purge_deletes_only_ended_sessions(void **state)
{
    (void)state;
    char live[128], signed_out[128], idle[128], expired[128];
    login(EMAIL_A, PASSWORD_A, &a, live, sizeof live);
    login(EMAIL_A, PASSWORD_A, &a, signed_out, sizeof signed_out);
    login(EMAIL_A, PASSWORD_A, &a, idle, sizeof idle);
    login(EMAIL_A, PASSWORD_A, &a, expired, sizeof expired);
    assert_int_equal(pe_tenancy_session_revoke(fx.pool, signed_out), 0);
    /* the newest two sessions of user A: one idle-expired, one past its absolute expiry */
    free(pe_test_sql(fx.conninfo,
                     "UPDATE sessions SET idle_expires_at = now() - interval '1 second'"
                     " WHERE token_hash = (SELECT token_hash FROM sessions WHERE "
                     "revoked_at IS NULL ORDER BY created_at DESC, token_hash LIMIT 1"
                     " OFFSET 1)"));
    free(pe_test_sql(fx.conninfo, "UPDATE sessions SET expires_at = now() - interval '1 second'"
                                  " WHERE token_hash = (SELECT token_hash FROM sessions WHERE "
                                  "revoked_at IS NULL AND idle_expires_at > now() ORDER BY "
                                  "created_at DESC, token_hash LIMIT 1)"));
    char *before = pe_test_sql(fx.conninfo, "SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL"
                                            " OR idle_expires_at <= now() OR expires_at <= now())"
                                            " FROM sessions");
    assert_non_null(before);
    uint64_t ended = strtoull(before, NULL, 10), n = 0;
    free(before);
    assert_true(ended >= 3);
    assert_int_equal(pe_tenancy_session_purge(fx.pool, &n), 0);
    assert_int_equal(n, ended);
    char *left =
        pe_test_sql(fx.conninfo, "SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL"
                                 " OR idle_expires_at <= now() OR expires_at <= now()");
    assert_string_equal(left, "0");
    free(left);
    /* the live session still signs in requests */
    char cookie[256];
    cookie_header(cookie, sizeof cookie, live);
    pe_test_response_t r;
    const char *headers[] = {cookie, NULL};
    call("GET", "/api/v1/me", NULL, headers, &r);
    assert_int_equal(r.status, 200);
    pe_test_response_free(&r);
    assert_int_equal(pe_tenancy_session_purge(fx.pool, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(pe_tenancy_session_purge(fx.pool, NULL), 0);
}

/* Behind a TLS-terminating proxy the cookie is also Secure — when the proxy is one the operator
 * trusts (PE_TRUSTED_PROXIES); a client's own X-Forwarded-Proto says nothing. A sign-in posted
 * by a page of another site is refused (login CSRF). */
static void test_secure_cookie_behind_tls(void **state)
{
    (void)state;
    const char *headers[] = {"Content-Type: application/json", "X-Forwarded-Proto: https", NULL};
    const char *body = "{\"email\":\"" EMAIL_A "\",\"password\":\"" PASSWORD_A "\"}";
    pe_test_response_t r;
    char cookie[512];
    call("POST", "/api/v1/auth/login", body, headers, &r); /* no trusted proxy here */
    assert_int_equal(r.status, 200);
    pe_test_response_header(&r, "Set-Cookie", cookie, sizeof cookie);
    assert_non_null(strstr(cookie, "; HttpOnly"));
    assert_null(strstr(cookie, "; Secure"));
    pe_test_response_free(&r);
    pe_test_server_t proxy;
    pe_test_server_start(&proxy, fx.conninfo,
                         (const char *const[]){"PE_TRUSTED_PROXIES=127.0.0.0/8, ::1", NULL});
    call_at(&proxy, "POST", "/api/v1/auth/login", body, headers, &r);
    assert_int_equal(r.status, 200);
    pe_test_response_header(&r, "Set-Cookie", cookie, sizeof cookie);
    assert_non_null(strstr(cookie, "; HttpOnly"));
    assert_non_null(strstr(cookie, "; SameSite=Strict"));
    assert_non_null(strstr(cookie, "; Secure"));
    pe_test_response_free(&r);
    assert_int_equal(pe_test_server_stop(&proxy), 0);
    const char *cross[] = {"Content-Type: application/json", "Sec-Fetch-Site: cross-site", NULL};
    call("POST", "/api/v1/auth/login", body, cross, &r);
    pe_test_expect_error(&r, 403, "cross_site_request", NULL, 0);
    assert_string_equal(pe_test_response_header(&r, "Set-Cookie", cookie, sizeof cookie), "");
    pe_test_response_free(&r);
}

/* Last: every body this program received is free of every session token it obtained. */
static void test_tokens_never_in_bodies(void **state)
{
    (void)state;
    char token[128];
    login(EMAIL_B, PASSWORD_B, &b, token, sizeof token);
    char cookie[256];
    cookie_header(cookie, sizeof cookie, token);
    pe_test_response_t r;
    const char *headers[] = {cookie, NULL};
    call("GET", "/api/v1/me", NULL, headers, &r);
    assert_int_equal(r.status, 200);
    pe_test_response_free(&r);
    assert_non_null(all_bodies.data);
    assert_null(strstr(all_bodies.data, token));
    /* Nor the secret keys (they were only sent, never shown back). */
    assert_null(strstr(all_bodies.data, a.sk));
    assert_null(strstr(all_bodies.data, b.sk));
    /* The server is still healthy and stops cleanly. */
    assert_true(pe_test_server_alive(&fx.server));
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    pe_test_tenant_make(&a, fx.pool, "Store A", "Europe/Berlin", "EUR", EMAIL_A, PASSWORD_A);
    pe_test_tenant_make(&b, fx.pool, "Store B", "America/New_York", "USD", EMAIL_B, PASSWORD_B);
    pe_test_tenant_make(&c, fx.pool, "Store C", "UTC", "USD", EMAIL_C, PASSWORD_C);
    char err[256] = "", again[PE_ID_LEN];
    assert_int_equal(
        pe_tenancy_user_create(fx.pool, EMAIL_M, PASSWORD_M, a.id, user_m, err, sizeof err), 0);
    assert_int_equal(
        pe_tenancy_user_create(fx.pool, EMAIL_M, PASSWORD_M, b.id, again, err, sizeof err), 0);
    assert_string_equal(again, user_m); /* one user, two stores */
    pe_test_server_start(&fx.server, fx.conninfo, (const char *const[]){"PE_HTTP_THREADS=2", NULL});
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pe_buf_free(&all_bodies);
    return pe_test_fixture_close(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_key_reads_own_store),
        cmocka_unit_test(test_other_store_is_forbidden),
        cmocka_unit_test(test_publishable_key_refused),
        cmocka_unit_test(test_missing_and_bad_credentials),
        cmocka_unit_test(test_revoked_key),
        cmocka_unit_test(test_malformed_store_id),
        cmocka_unit_test(test_session_probe),
        cmocka_unit_test(test_session_lifecycle),
        cmocka_unit_test(test_sessions_are_per_user),
        cmocka_unit_test(test_junk_session_cookies),
        cmocka_unit_test(test_login_refusals),
        cmocka_unit_test(test_csrf_token_on_session_writes),
        cmocka_unit_test(test_one_session_opens_every_store_of_its_user),
        cmocka_unit_test(test_every_store_route_refuses_non_members),
        cmocka_unit_test(test_failed_sign_ins_lock_the_account),
        cmocka_unit_test(test_failed_sign_ins_lock_the_address),
        cmocka_unit_test(test_trusted_proxy_names_the_client),
        cmocka_unit_test(test_purge_deletes_only_spent_rows),
        cmocka_unit_test(test_session_purge_deletes_only_ended_sessions),
        cmocka_unit_test(test_secure_cookie_behind_tls),
        cmocka_unit_test(test_tokens_never_in_bodies),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
