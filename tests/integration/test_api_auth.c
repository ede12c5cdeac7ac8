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
 *
 * Two stores, A and B, each with one merchant user, are made directly through pe_tenancy_* on a
 * pool of the same database; every response body this program receives is kept so invariant 4
 * can be checked at the end.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pe/api.h"
#include "pe/tenancy.h"
#include "pe_test.h"

#define PASSWORD_A "alpha-password-1"
#define PASSWORD_B "bravo-password-2"
#define EMAIL_A    "owner-a@example.com"
#define EMAIL_B    "owner-b@example.com"
#define PASSWORD_C "charlie-password-3"
#define EMAIL_C    "owner-c@example.com"

typedef struct {
    char id[PE_ID_LEN];
    char pk[PE_KEY_LEN];
    char sk[PE_KEY_LEN];
    char user[PE_ID_LEN];
} tenant_t;

static char *conninfo;
static pe_db_pool_t *pool;
static pe_test_server_t server;
static tenant_t a, b, c;
static pe_buf_t all_bodies; /* every response body received, for invariant 4 */

/* ---- helpers --------------------------------------------------------------------------------- */

/* Sends method path with body and headers; keeps the body for the final token check. */
static long call(const char *method, const char *path, const char *body, const char *const *headers,
                 pe_test_response_t *r)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", server.base_url, path);
    assert_int_equal(pe_test_http(method, url, body, headers, r), 0);
    if (r->body.len) {
        assert_int_equal(pe_buf_append(&all_bodies, r->body.data, r->body.len), 0);
        assert_int_equal(pe_buf_puts(&all_bodies, "\n"), 0);
    }
    return r->status;
}

static cJSON *body_json(const pe_test_response_t *r)
{
    cJSON *j = NULL;
    char err[128];
    if (pe_json_parse(r->body.data ? r->body.data : "", r->body.len, &j, err, sizeof err) != 0)
        fail_msg("body is not JSON (%s): %.300s", err, r->body.data ? r->body.data : "");
    return j;
}

static const char *str_at(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!cJSON_IsString(v))
        fail_msg("\"%s\" is not a string", name);
    return v->valuestring;
}

/* Asserts status and the error shape with that code; copies the message into msg (may be NULL).
 */
static void expect_error(const pe_test_response_t *r, long status, const char *code, char *msg,
                         size_t msglen)
{
    if (r->status != status)
        fail_msg("status %ld, want %ld: %.300s", r->status, status,
                 r->body.data ? r->body.data : "");
    char ct[128];
    pe_test_response_header(r, "Content-Type", ct, sizeof ct);
    assert_true(strncmp(ct, "application/json", 16) == 0);
    cJSON *j = body_json(r);
    assert_true(cJSON_IsObject(j));
    assert_int_equal(cJSON_GetArraySize(j), 1);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_true(cJSON_IsObject(e));
    assert_int_equal(cJSON_GetArraySize(e), 2);
    assert_string_equal(str_at(e, "code"), code);
    assert_true(strlen(str_at(e, "message")) > 0);
    if (msg)
        snprintf(msg, msglen, "%s", str_at(e, "message"));
    cJSON_Delete(j);
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
static void expect_store(const pe_test_response_t *r, const tenant_t *t, const char *name)
{
    if (r->status != 200)
        fail_msg("status %ld, want 200: %.300s", r->status, r->body.data ? r->body.data : "");
    cJSON *j = body_json(r);
    assert_string_equal(str_at(j, "id"), t->id);
    assert_string_equal(str_at(j, "name"), name);
    assert_string_equal(str_at(j, "currency"), t == &a ? "EUR" : "USD");
    assert_string_equal(str_at(j, "timezone"), t == &a ? "Europe/Berlin" : "America/New_York");
    cJSON_Delete(j);
}

/* Signs in; returns the session token (from Set-Cookie) in token and checks the cookie's
 * attributes and the body. */
static void login(const char *email, const char *password, const tenant_t *t, char *token,
                  size_t tokenlen)
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

    cJSON *j = body_json(&r);
    assert_string_equal(str_at(j, "userId"), t->user);
    const cJSON *stores = cJSON_GetObjectItemCaseSensitive(j, "stores");
    assert_true(cJSON_IsArray(stores));
    assert_int_equal(cJSON_GetArraySize(stores), 1);
    assert_string_equal(str_at(cJSON_GetArrayItem(stores, 0), "id"), t->id);
    assert_true(strlen(str_at(j, "csrfToken")) >= 32);
    assert_string_not_equal(str_at(j, "csrfToken"), token);
    cJSON_Delete(j);
    assert_null(strstr(r.body.data, token));
    pe_test_response_free(&r);
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
    cJSON *j = body_json(&r);
    snprintf(out, outlen, "X-CSRF-Token: %s", str_at(j, "csrfToken"));
    cJSON_Delete(j);
    pe_test_response_free(&r);
}

static void make_tenant(tenant_t *t, const char *name, const char *tz, const char *currency,
                        const char *email, const char *password)
{
    pe_store_t store;
    char err[256] = "";
    int rc =
        pe_tenancy_store_create(pool, name, tz, currency, &store, t->pk, t->sk, err, sizeof err);
    if (rc != 0)
        fail_msg("store create: %s %s", pe_strerror(rc), err);
    snprintf(t->id, sizeof t->id, "%s", store.id);
    rc = pe_tenancy_user_create(pool, email, password, t->id, t->user, err, sizeof err);
    if (rc != 0)
        fail_msg("user create: %s %s", pe_strerror(rc), err);
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
    expect_error(&r, 403, "forbidden", NULL, 0);
    assert_null(strstr(r.body.data, "Store A"));
    pe_test_response_free(&r);

    bearer(h, sizeof h, a.sk);
    get_store(b.id, h, &r);
    expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);
}

static void test_publishable_key_refused(void **state)
{
    (void)state;
    pe_test_response_t r;
    char h[256];

    bearer(h, sizeof h, a.pk);
    get_store(a.id, h, &r);
    expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);

    /* ?key= is for storefront routes only: without a bearer the admin route is 401. */
    char path[256];
    snprintf(path, sizeof path, "/api/v1/stores/%s?key=%s", a.id, a.pk);
    call("GET", path, NULL, NULL, &r);
    expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
    snprintf(path, sizeof path, "/api/v1/stores/%s?key=%s", a.id, a.sk);
    call("GET", path, NULL, NULL, &r);
    expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
}

static void test_missing_and_bad_credentials(void **state)
{
    (void)state;
    pe_test_response_t r;

    get_store(a.id, NULL, &r);
    expect_error(&r, 401, "unauthorized", NULL, 0);
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
        expect_error(&r, 401, "unauthorized", NULL, 0);
        pe_test_response_free(&r);
    }
    free(long_h);

    /* No bearer token at all (empty, Basic): as if no credentials were sent. */
    const char *none[] = {"Authorization: Bearer ", "Authorization: Basic c2tfeDp4"};
    for (size_t i = 0; i < PE_ARRAY_LEN(none); i++) {
        get_store(a.id, none[i], &r);
        expect_error(&r, 401, "unauthorized", NULL, 0);
        pe_test_response_free(&r);
    }
}

static void test_revoked_key(void **state)
{
    (void)state;
    char key[PE_KEY_LEN], key_id[PE_ID_LEN], h[256];
    pe_test_response_t r;

    assert_int_equal(pe_tenancy_key_create(pool, a.id, PE_KEY_SECRET, key, key_id), 0);
    bearer(h, sizeof h, key);
    get_store(a.id, h, &r);
    expect_store(&r, &a, "Store A");
    pe_test_response_free(&r);

    assert_int_equal(pe_tenancy_key_revoke(pool, a.id, key_id), 0);
    get_store(a.id, h, &r);
    expect_error(&r, 401, "unauthorized", NULL, 0);
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
        expect_error(&r, 403, "forbidden", NULL, 0);
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
    expect_error(&r, 403, "forbidden", NULL, 0);
    assert_null(strstr(r.body.data, "Store B"));
    pe_test_response_free(&r);

    get_store("not-a-uuid", cookie, &r);
    expect_error(&r, 403, "forbidden", NULL, 0);
    pe_test_response_free(&r);

    const char *headers[] = {cookie, NULL};
    call("GET", "/api/v1/me", NULL, headers, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = body_json(&r);
    assert_string_equal(str_at(j, "userId"), a.user);
    const cJSON *stores = cJSON_GetObjectItemCaseSensitive(j, "stores");
    assert_int_equal(cJSON_GetArraySize(stores), 1);
    const cJSON *s0 = cJSON_GetArrayItem(stores, 0);
    assert_string_equal(str_at(s0, "id"), a.id);
    assert_string_equal(str_at(s0, "name"), "Store A");
    cJSON_Delete(j);
    pe_test_response_free(&r);

    /* A bearer key is not a session: /me wants the cookie. */
    char h[256];
    bearer(h, sizeof h, a.sk);
    const char *key_headers[] = {h, NULL};
    call("GET", "/api/v1/me", NULL, key_headers, &r);
    expect_error(&r, 401, "unauthorized", NULL, 0);
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
    expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
    get_store(a.id, cookie, &r);
    expect_error(&r, 401, "unauthorized", NULL, 0);
    pe_test_response_free(&r);
    call("POST", "/api/v1/auth/logout", "", logout_headers, &r);
    expect_error(&r, 401, "unauthorized", NULL, 0);
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
    expect_error(&r, 403, "forbidden", NULL, 0);
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
        expect_error(&r, 401, "unauthorized", NULL, 0);
        pe_test_response_free(&r);
        get_store(a.id, junk[i], &r);
        if (r.status != 401)
            fail_msg("cookie case %zu: store status %ld, want 401: %.300s", i, r.status,
                     r.body.data ? r.body.data : "");
        expect_error(&r, 401, "unauthorized", NULL, 0);
        pe_test_response_free(&r);
    }
    free(long_cookie);

    pe_test_response_t r;
    call("GET", "/api/v1/me", NULL, NULL, &r);
    expect_error(&r, 401, "unauthorized", NULL, 0);
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
    expect_error(&r, 401, "invalid_credentials", msg_wrong, sizeof msg_wrong);
    char set_cookie[256];
    assert_string_equal(pe_test_response_header(&r, "Set-Cookie", set_cookie, sizeof set_cookie),
                        "");
    pe_test_response_free(&r);

    call("POST", "/api/v1/auth/login",
         "{\"email\":\"nobody@example.com\",\"password\":\"" PASSWORD_A "\"}", json, &r);
    expect_error(&r, 401, "invalid_credentials", msg_unknown, sizeof msg_unknown);
    assert_string_equal(pe_test_response_header(&r, "Set-Cookie", set_cookie, sizeof set_cookie),
                        "");
    pe_test_response_free(&r);
    assert_string_equal(msg_wrong, msg_unknown);

    /* B's password for A's email. */
    call("POST", "/api/v1/auth/login",
         "{\"email\":\"" EMAIL_A "\",\"password\":\"" PASSWORD_B "\"}", json, &r);
    expect_error(&r, 401, "invalid_credentials", msg_other_store, sizeof msg_other_store);
    assert_string_equal(msg_wrong, msg_other_store);
    pe_test_response_free(&r);

    /* A malformed email or a too-short password is still the same answer, not a hint. */
    call("POST", "/api/v1/auth/login", "{\"email\":\"no-at-sign\",\"password\":\"x\"}", json, &r);
    expect_error(&r, 401, "invalid_credentials", msg_unknown, sizeof msg_unknown);
    assert_string_equal(msg_wrong, msg_unknown);
    pe_test_response_free(&r);

    /* The email is case-insensitive (normalised), the password is not. */
    char token[128];
    login("OWNER-A@Example.com", PASSWORD_A, &a, token, sizeof token);
    call("POST", "/api/v1/auth/login",
         "{\"email\":\"" EMAIL_A "\",\"password\":\"ALPHA-PASSWORD-1\"}", json, &r);
    expect_error(&r, 401, "invalid_credentials", NULL, 0);
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
        expect_error(&r, 400, "invalid_request", NULL, 0);
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
    expect_error(&r, 403, "csrf_token_invalid", msg, sizeof msg);
    assert_non_null(strstr(msg, "X-CSRF-Token"));
    pe_test_response_free(&r);
    const char *wrong[] = {cookie, json, other_csrf, NULL};
    call("POST", path, body, wrong, &r);
    expect_error(&r, 403, "csrf_token_invalid", NULL, 0);
    pe_test_response_free(&r);
    char truncated[128];
    snprintf(truncated, sizeof truncated, "%.*s", (int)strlen(csrf) - 1, csrf);
    const char *short_one[] = {cookie, json, truncated, NULL};
    call("POST", path, body, short_one, &r);
    expect_error(&r, 403, "csrf_token_invalid", NULL, 0);
    pe_test_response_free(&r);
    char *n = pe_test_sql(conninfo, "SELECT count(*) FROM flags WHERE key = 'csrf-flag'");
    assert_string_equal(n, "0");
    free(n);
    /* logout is a write too: without the token the session survives */
    call("POST", "/api/v1/auth/logout", "", none, &r);
    expect_error(&r, 403, "csrf_token_invalid", NULL, 0);
    pe_test_response_free(&r);

    /* with its own token: done */
    const char *right[] = {cookie, json, csrf, NULL};
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
    expect_error(r, 429, "too_many_requests", msg, sizeof msg);
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
    expect_error(&r, 401, "invalid_credentials", NULL, 0);
    pe_test_response_free(&r);
}

/* As if the delay had passed (the clock is the database's). */
static void delay_passes(void)
{
    free(pe_test_sql(conninfo, "UPDATE login_throttle SET locked_until = now() - interval '1s' "
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
    free(pe_test_sql(conninfo, "UPDATE login_throttle SET locked_until = now() - interval '1s', "
                               "window_started_at = now() - interval '1 hour' "
                               "WHERE kind = 'account'"));
    expect_wrong(EMAIL_C); /* a new window: 1 */
    expect_wrong(EMAIL_C); /* 2 */
    login(EMAIL_C, PASSWORD_C, &c, token, sizeof token);
    char *n = pe_test_sql(conninfo, "SELECT count(*) FROM login_throttle WHERE kind = 'account' "
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
    char *s = pe_test_sql(conninfo, "SELECT failures FROM login_throttle WHERE kind = 'address'");
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
    free(pe_test_sql(conninfo, "DELETE FROM login_throttle"));
}

/* Behind a TLS-terminating proxy the cookie is also Secure. */
static void test_secure_cookie_behind_tls(void **state)
{
    (void)state;
    const char *headers[] = {"Content-Type: application/json", "X-Forwarded-Proto: https", NULL};
    pe_test_response_t r;
    call("POST", "/api/v1/auth/login",
         "{\"email\":\"" EMAIL_A "\",\"password\":\"" PASSWORD_A "\"}", headers, &r);
    assert_int_equal(r.status, 200);
    char cookie[512];
    pe_test_response_header(&r, "Set-Cookie", cookie, sizeof cookie);
    assert_non_null(strstr(cookie, "; HttpOnly"));
    assert_non_null(strstr(cookie, "; SameSite=Strict"));
    assert_non_null(strstr(cookie, "; Secure"));
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
    assert_true(pe_test_server_alive(&server));
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    assert_int_equal(pe_crypto_init(), 0);
    pe_log_set_level(PE_LOG_WARN);
    conninfo = pe_test_db_create_migrated();
    pool = pe_db_pool_new(conninfo, 2);
    assert_non_null(pool);
    make_tenant(&a, "Store A", "Europe/Berlin", "EUR", EMAIL_A, PASSWORD_A);
    make_tenant(&b, "Store B", "America/New_York", "USD", EMAIL_B, PASSWORD_B);
    make_tenant(&c, "Store C", "UTC", "USD", EMAIL_C, PASSWORD_C);
    pe_test_server_start(&server, conninfo, (const char *const[]){"PE_HTTP_THREADS=2", NULL});
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = pe_test_server_stop(&server);
    pe_db_pool_free(pool);
    pe_test_db_drop(conninfo);
    pe_buf_free(&all_bodies);
    if (rc != 0)
        fprintf(stderr, "profit-engine serve exited with %d (log: %s)\n", rc, server.log_path);
    return rc == 0 ? 0 : -1;
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
        cmocka_unit_test(test_session_lifecycle),
        cmocka_unit_test(test_sessions_are_per_user),
        cmocka_unit_test(test_junk_session_cookies),
        cmocka_unit_test(test_login_refusals),
        cmocka_unit_test(test_csrf_token_on_session_writes),
        cmocka_unit_test(test_failed_sign_ins_lock_the_account),
        cmocka_unit_test(test_failed_sign_ins_lock_the_address),
        cmocka_unit_test(test_secure_cookie_behind_tls),
        cmocka_unit_test(test_tokens_never_in_bodies),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
