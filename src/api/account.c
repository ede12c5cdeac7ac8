/*
 * account.c — merchant sign-in: login, logout, who am I (GET /api/v1/me, 401 when signed out;
 * GET /api/v1/auth/session, 200 {"signedIn":false} then — the dashboard's probe); the store and its
 * business settings (GET / PUT …/settings: subscriptionCostPerMonth, src/tenancy/settings.c).
 *
 * Invariants:
 *  1. The session token travels only in an HttpOnly, SameSite=Strict cookie (Secure behind TLS:
 *     X-Forwarded-Proto https from a trusted proxy, PE_TRUSTED_PROXIES — a client's own header
 *     says nothing); it is never in a response body.
 *  2. A failed login says the same thing whether the email or the password was wrong.
 *  3. The anti-CSRF token ("csrfToken", derived from the session) is in the body of login and
 *     /me only, for the page to send back as X-CSRF-Token (checked in auth.c).
 *  4. While the account or the address is throttled (src/tenancy/throttle.c) login answers 429
 *     with Retry-After before looking at the password; only a wrong password counts as a
 *     failure, and a success clears the account's count.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pe/api.h"
#include "pe/tenancy.h"
#include "routes.h"

static bool behind_tls(pe_http_request_t *req)
{
    const char *proto = pe_http_header(req, "X-Forwarded-Proto");
    return proto && strcasecmp(proto, "https") == 0 && pe_http_peer_trusted(req);
}

static int set_session_cookie(pe_http_request_t *req, const char *token, long max_age)
{
    char cookie[256];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%ld%s",
             PE_SESSION_COOKIE, token, max_age, behind_tls(req) ? "; Secure" : "");
    return pe_http_set_header(req, "Set-Cookie", cookie);
}

static int reply_me(pe_http_request_t *req, const char *user_id, const char *session_token,
                    int status)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *stores = NULL;
    char csrf[PE_CSRF_TOKEN_LEN];
    int rc = pe_tenancy_session_csrf(session_token, csrf);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "the session token is malformed; sign in again");
    rc = pe_tenancy_user_stores(app->db, user_id, &stores);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot list your stores");
    cJSON *j = cJSON_CreateObject();
    if (!j) {
        cJSON_Delete(stores);
        return PE_ENOMEM;
    }
    cJSON_AddBoolToObject(j, "signedIn", true);
    cJSON_AddStringToObject(j, "userId", user_id);
    cJSON_AddItemToObject(j, "stores", stores);
    cJSON_AddStringToObject(j, "csrfToken", csrf);
    return pe_http_reply_cjson(req, status, j);
}

/* 429 with Retry-After and a message a merchant can act on. */
static int reply_throttled(pe_http_request_t *req, const pe_login_throttle_t *t)
{
    char retry[16];
    snprintf(retry, sizeof retry, "%d", t->retry_after_s);
    pe_http_set_header(req, "Retry-After", retry);
    const char *who = t->by_address ? "from this address" : "for this account";
    if (t->locked) {
        int minutes = (t->retry_after_s + 59) / 60;
        return pe_http_reply_error(req, PE_ELOCKED, "too_many_requests",
                                   "Too many failed sign-ins %s; try again in %d minute%s", who,
                                   minutes, minutes == 1 ? "" : "s");
    }
    return pe_http_reply_error(req, PE_ELOCKED, "too_many_requests",
                               "Too many failed sign-ins %s; wait %d second%s before trying again",
                               who, t->retry_after_s, t->retry_after_s == 1 ? "" : "s");
}

int pe_api_login(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    if (pe_api_cross_site(req)) /* login CSRF: signing the victim into another account */
        return pe_api_refuse_cross_site(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    const cJSON *email = cJSON_GetObjectItemCaseSensitive(body, "email");
    const cJSON *password = cJSON_GetObjectItemCaseSensitive(body, "password");
    if (!cJSON_IsString(email) || !cJSON_IsString(password))
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "send {\"email\":\"…\",\"password\":\"…\"}");
    const char *address = pe_http_remote_addr(req);
    pe_login_throttle_t throttle;
    int rc = pe_tenancy_login_check(app->db, email->valuestring, address, &throttle);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot sign in right now");
    if (throttle.refused)
        return reply_throttled(req, &throttle);
    char user_id[PE_ID_LEN];
    rc = pe_tenancy_user_verify(app->db, email->valuestring, password->valuestring, user_id);
    if (rc == PE_EUNAUTH || rc == PE_EINVAL) {
        rc = pe_tenancy_login_failed(app->db, email->valuestring, address);
        if (rc != 0)
            return pe_http_reply_error(req, rc, NULL, "cannot sign in right now");
        return pe_http_reply_error(req, PE_EUNAUTH, "invalid_credentials",
                                   "email or password is wrong");
    }
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot sign in right now");
    rc = pe_tenancy_login_succeeded(app->db, email->valuestring);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot sign in right now");
    char token[PE_TOKEN_LEN];
    rc = pe_tenancy_session_create(app->db, user_id, token);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot open a session right now");
    set_session_cookie(req, token, PE_SESSION_ABSOLUTE_S);
    return reply_me(req, user_id, token, 200);
}

int pe_api_logout(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    const char *token = pe_http_cookie(req, PE_SESSION_COOKIE);
    if (token) {
        int rc = pe_tenancy_session_revoke(app->db, token);
        if (rc != 0)
            return pe_http_reply_error(req, rc, NULL, "cannot end the session right now");
    }
    set_session_cookie(req, "", 0);
    return pe_http_reply_static(req, 204, "application/json", "", 0);
}

int pe_api_me(pe_http_request_t *req)
{
    /* the cookie authenticated this request, so it is there and well formed */
    return reply_me(req, pe_http_auth(req)->user_id, pe_http_cookie(req, PE_SESSION_COOKIE), 200);
}

int pe_api_session(pe_http_request_t *req)
{
    /* The dashboard's first question, asked before it knows: a signed-out visitor is an
     * answer (200 {"signedIn":false}), not an error the browser console would log. */
    pe_app_t *app = pe_http_app(req);
    const char *token = pe_http_cookie(req, PE_SESSION_COOKIE);
    char user_id[PE_ID_LEN];
    int rc = token ? pe_tenancy_session_authenticate(app->db, token, user_id) : PE_EUNAUTH;
    if (rc == PE_EUNAUTH) {
        cJSON *j = cJSON_CreateObject();
        if (!j || !cJSON_AddBoolToObject(j, "signedIn", false)) {
            cJSON_Delete(j);
            return PE_ENOMEM;
        }
        return pe_http_reply_cjson(req, 200, j);
    }
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot check the session right now");
    return reply_me(req, user_id, token, 200);
}

int pe_api_store_get(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    pe_store_t store;
    int rc = pe_tenancy_store_get(app->db, pe_http_auth(req)->store_id, &store);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL,
                                   rc == PE_ENOTFOUND ? "no such store" : "cannot read the store");
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return PE_ENOMEM;
    cJSON_AddStringToObject(j, "id", store.id);
    cJSON_AddStringToObject(j, "name", store.name);
    cJSON_AddStringToObject(j, "currency", store.currency);
    cJSON_AddStringToObject(j, "timezone", store.timezone);
    return pe_http_reply_cjson(req, 200, j);
}

int pe_api_store_settings_get(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *j = NULL;
    int rc = pe_tenancy_settings_get(app->db, pe_http_auth(req)->store_id, &j);
    if (rc != 0)
        return pe_http_reply_error(
            req, rc, NULL, rc == PE_ENOTFOUND ? "no such store" : "cannot read the settings");
    return pe_http_reply_cjson(req, 200, j);
}

int pe_api_store_settings_put(pe_http_request_t *req)
{
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0; /* answered 400 */
    pe_store_settings_t s;
    pe_refusal_t err = {.code = ""};
    int rc = pe_tenancy_settings_parse(body, &s, &err);
    if (rc != 0)
        return pe_http_reply_refusal(req, rc, &err);
    pe_app_t *app = pe_http_app(req);
    cJSON *j = NULL;
    rc = pe_tenancy_settings_put(app->db, pe_http_auth(req)->store_id, &s, pe_now_unix_us(), &j);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL,
                                   rc == PE_ENOTFOUND ? "no such store"
                                                      : "cannot change the settings right now");
    return pe_http_reply_cjson(req, 200, j);
}
