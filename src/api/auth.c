/*
 * auth.c — who is calling, and may they use this route on this store?
 *
 *   route demands    accepted credentials                       store scope
 *   PUBLISHABLE      Bearer pk_…, X-API-Key: pk_… or ?key=pk_…   the key's store
 *   ADMIN            Bearer sk_…, or the session cookie          {storeId} must be the key's
 *                                                                store / a store of the user
 *   SESSION          the session cookie                          as ADMIN
 *   (write key)      Basic base64(pk_…:), Bearer pk_…, or a key   the key's store
 *                    from the body (Segment clients; the handler
 *                    calls pe_api_authenticate_write_key itself)
 *
 * Invariants:
 *  1. A key never authorises another store's {storeId}: the comparison is on the store id the
 *     key resolved to in the database, never on anything the client sent.
 *  2. Every refusal replies with the one error shape and a message that says what to send;
 *     a database or Redis that cannot answer is 503 with Retry-After, never 401.
 *  3. A state-changing request (POST, PUT, PATCH, DELETE) that the session cookie authenticates
 *     also carries the session's anti-CSRF token as X-CSRF-Token, or is refused 403
 *     csrf_token_invalid. Bearer keys are not sent by the browser on its own: they need none.
 *     Defence in depth, before the token: a browser that says the request comes from another
 *     site (Sec-Fetch-Site: cross-site, or Origin: null) is refused 403 cross_site_request,
 *     on those requests and on sign-in (pe_api_cross_site). Same-site and same-origin pages,
 *     and clients that send neither header (curl, SDKs, older browsers), go on to the token.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "pe/api.h"
#include "pe/tenancy.h"
#include "routes.h"

static const char *bearer_token(pe_http_request_t *req)
{
    const char *h = pe_http_header(req, "Authorization");
    if (!h)
        return NULL;
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

static int refuse(pe_http_request_t *req, int rc, const char *message)
{
    pe_http_reply_error(req, rc, NULL, "%s", message);
    return rc;
}

/* PostgreSQL or Redis did not answer: 503, which the server sends with Retry-After (http/reply.c
 * invariant 4), so a client backs off instead of giving up on its credentials. */
static int dependency_failure(pe_http_request_t *req, int rc)
{
    return refuse(req, rc == PE_EUNAVAIL || rc == PE_ETIMEOUT ? PE_EUNAVAIL : rc,
                  "cannot check credentials right now; retry later");
}

/* Resolves a key of the wanted kind into out. */
static int authenticate_key(pe_app_t *app, pe_http_request_t *req, const char *key,
                            pe_key_kind_t want, pe_http_auth_t *out)
{
    char store_id[PE_ID_LEN];
    pe_key_kind_t kind;
    int rc = pe_tenancy_key_authenticate_cached(app->keys, app->db, key, store_id, &kind);
    if (rc == PE_EUNAUTH)
        return refuse(req, rc, "the API key is unknown or revoked");
    if (rc != 0)
        return dependency_failure(req, rc);
    if (kind != want)
        return refuse(req, PE_EFORBIDDEN,
                      want == PE_KEY_PUBLISHABLE
                          ? "storefront routes take a publishable key (pk_…), never a secret key"
                          : "this route takes a secret key (sk_…), never a publishable key");
    out->principal = kind == PE_KEY_SECRET ? PE_PRINCIPAL_SECRET_KEY : PE_PRINCIPAL_PUBLISHABLE_KEY;
    snprintf(out->store_id, sizeof out->store_id, "%s", store_id);
    return 0;
}

static bool changes_state(const pe_http_request_t *req)
{
    const char *m = pe_http_method(req);
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0;
}

bool pe_api_cross_site(pe_http_request_t *req)
{
    const char *site = pe_http_header(req, "Sec-Fetch-Site");
    const char *origin = pe_http_header(req, "Origin");
    if (site && strcasecmp(site, "cross-site") == 0)
        return true;
    return origin && strcmp(origin, "null") == 0;
}

int pe_api_refuse_cross_site(pe_http_request_t *req)
{
    pe_http_reply_error(req, PE_EFORBIDDEN, "cross_site_request",
                        "a page of another site cannot change anything here: open the "
                        "dashboard itself");
    return PE_EFORBIDDEN;
}

static int authenticate_session(pe_app_t *app, pe_http_request_t *req, pe_http_auth_t *out)
{
    const char *token = pe_http_cookie(req, PE_SESSION_COOKIE);
    if (!token)
        return refuse(req, PE_EUNAUTH, "sign in first (no session cookie)");
    char user_id[PE_ID_LEN];
    int rc = pe_tenancy_session_authenticate(app->db, token, user_id);
    if (rc == PE_EUNAUTH)
        return refuse(req, rc, "the session has expired or was ended; sign in again");
    if (rc != 0)
        return dependency_failure(req, rc);
    out->principal = PE_PRINCIPAL_SESSION;
    snprintf(out->user_id, sizeof out->user_id, "%s", user_id);
    /* A cookie rides along with any cross-site form or fetch; the token does not. */
    if (changes_state(req) && pe_api_cross_site(req))
        return pe_api_refuse_cross_site(req);
    if (changes_state(req) &&
        !pe_tenancy_session_csrf_check(token, pe_http_header(req, "X-CSRF-Token"))) {
        pe_http_reply_error(req, PE_EFORBIDDEN, "csrf_token_invalid",
                            "send the csrfToken from /api/v1/me or the sign-in answer as the "
                            "X-CSRF-Token header");
        return PE_EFORBIDDEN;
    }
    return 0;
}

/* Checks the {storeId} of the path against what the principal may touch. */
static int authorize_store(pe_app_t *app, pe_http_request_t *req, pe_http_auth_t *out)
{
    const char *store_id = pe_http_param(req, "storeId");
    if (!store_id)
        return 0;
    if (out->principal == PE_PRINCIPAL_SESSION) {
        int rc = pe_tenancy_member_check(app->db, out->user_id, store_id);
        if (rc == PE_EFORBIDDEN)
            return refuse(req, rc, "you are not a member of this store");
        if (rc != 0)
            return dependency_failure(req, rc);
        /* the canonical (lower-case) text of the uuid, as keys resolve to */
        size_t n = 0;
        for (; store_id[n] && n + 1 < sizeof out->store_id; n++)
            out->store_id[n] = (char)tolower((unsigned char)store_id[n]);
        out->store_id[n] = '\0';
        return 0;
    }
    /* uuids compare case-insensitively: the key's store is in PostgreSQL's lower-case form */
    if (strcasecmp(out->store_id, store_id) != 0)
        return refuse(req, PE_EFORBIDDEN, "this key belongs to another store");
    return 0;
}

/* A storefront request over its bucket (PE_RATE_ADDRESS, PE_RATE_KEY): 429 with Retry-After,
 * whole seconds rounded up. */
static int over_rate(pe_http_request_t *req, pe_ratelimit_t *rl, const char *key, const char *who)
{
    double wait = 0;
    if (!rl || pe_ratelimit_take(rl, key, pe_now_unix_us(), &wait))
        return 0;
    char retry[24];
    snprintf(retry, sizeof retry, "%.0f", ceil(wait));
    pe_http_set_header(req, "Retry-After", retry);
    pe_http_reply_error(req, PE_ELOCKED, "rate_limited",
                        "too many requests %s; retry after %s second%s (events and evaluations "
                        "are accepted again then: retry with the same eventIds)",
                        who, retry, strcmp(retry, "1") == 0 ? "" : "s");
    return PE_ELOCKED;
}

/* A storefront request's publishable key, within the rate limits: the address first (a flood
 * of made-up keys is refused before any lookup), then the key. */
static int storefront_key(pe_app_t *app, pe_http_request_t *req, const char *key,
                          pe_http_auth_t *out)
{
    int rc = over_rate(req, app->rate_address, pe_http_remote_addr(req), "from this address");
    if (rc == 0)
        rc = authenticate_key(app, req, key, PE_KEY_PUBLISHABLE, out);
    if (rc == 0)
        rc = over_rate(req, app->rate_key, key, "with this key");
    return rc;
}

int pe_api_authenticate(void *appv, pe_http_request_t *req, pe_auth_kind_t required,
                        pe_http_auth_t *out)
{
    pe_app_t *app = appv;
    memset(out, 0, sizeof *out);
    const char *bearer = bearer_token(req);
    int rc;
    switch (required) {
    case PE_AUTH_NONE:
        return 0;
    case PE_AUTH_PUBLISHABLE: {
        /* X-API-Key: the header OpenFeature's OFREP providers use for API keys */
        const char *key = bearer ? bearer : pe_http_header(req, "X-API-Key");
        if (!key)
            key = pe_http_query(req, "key");
        if (!key)
            return refuse(req, PE_EUNAUTH,
                          "send the publishable key as 'Authorization: Bearer pk_…', "
                          "'X-API-Key: pk_…' or ?key=pk_…");
        return storefront_key(app, req, key, out);
    }
    case PE_AUTH_ADMIN:
        if (bearer)
            rc = authenticate_key(app, req, bearer, PE_KEY_SECRET, out);
        else if (pe_http_cookie(req, PE_SESSION_COOKIE))
            rc = authenticate_session(app, req, out);
        else
            return refuse(req, PE_EUNAUTH,
                          "send a secret key as 'Authorization: Bearer sk_…' or sign in");
        break;
    case PE_AUTH_SECRET:
        if (!bearer)
            return refuse(req, PE_EUNAUTH, "send a secret key as 'Authorization: Bearer sk_…'");
        rc = authenticate_key(app, req, bearer, PE_KEY_SECRET, out);
        break;
    case PE_AUTH_SESSION:
        rc = authenticate_session(app, req, out);
        break;
    default:
        return refuse(req, PE_EINTERNAL, "unknown authentication requirement");
    }
    if (rc != 0)
        return rc;
    return authorize_store(app, req, out);
}

/* The user part of "Authorization: Basic base64(user:password)" into out, or false. */
static bool basic_user(pe_http_request_t *req, char *out, size_t outlen)
{
    const char *h = pe_http_header(req, "Authorization");
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return false;
    h += 6;
    while (*h == ' ')
        h++;
    size_t n = strcspn(h, " ");
    unsigned char bin[256];
    size_t binlen = 0;
    if (n == 0 || n > 4 * (sizeof bin / 3) ||
        (sodium_base642bin(bin, sizeof bin - 1, h, n, NULL, &binlen, NULL,
                           sodium_base64_VARIANT_ORIGINAL) != 0 &&
         sodium_base642bin(bin, sizeof bin - 1, h, n, NULL, &binlen, NULL,
                           sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0))
        return false;
    bin[binlen] = '\0';
    size_t user = strcspn((const char *)bin, ":");
    if (user == 0 || user >= outlen || memchr(bin, '\0', binlen))
        return false;
    memcpy(out, bin, user);
    out[user] = '\0';
    return true;
}

int pe_api_authenticate_write_key(pe_http_request_t *req, const char *body_key, pe_http_auth_t *out)
{
    pe_app_t *app = pe_http_app(req);
    memset(out, 0, sizeof *out);
    char user[PE_KEY_LEN + 1];
    const char *key = basic_user(req, user, sizeof user) ? user : bearer_token(req);
    if (!key)
        key = body_key && *body_key ? body_key : NULL;
    if (!key)
        return refuse(req, PE_EUNAUTH,
                      "send the write key (a publishable key pk_…) as the Basic-auth user "
                      "('Authorization: Basic base64(pk_…:)') or as \"writeKey\" in the body");
    return storefront_key(app, req, key, out);
}
