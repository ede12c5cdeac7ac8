/*
 * keys.c — a store's API keys over HTTP, for the dashboard's SDK install guide and for
 * rotation:
 *   GET    /api/v1/stores/{storeId}/keys           {"keys":[{id,kind,prefix,createdAt,revokedAt}]}
 *   POST   /api/v1/stores/{storeId}/keys           {"kind":"publishable"|"secret"} → 201, the key
 *   DELETE /api/v1/stores/{storeId}/keys/{keyId}   revoke → 200, the key as revoked
 *
 * Who may do what (the routes are PE_AUTH_ADMIN: a member's session or the store's secret key):
 *
 *   principal            list   create / revoke publishable   create / revoke secret
 *   session (member)     yes    yes                           yes
 *   secret key           yes    yes                           no: 403
 *
 * A secret key may rotate the storefront's keys (a deploy script), but minting or revoking
 * secret keys takes a signed-in merchant: a leaked secret key can then neither make itself
 * permanent with a fresh secret key nor lock the merchant's own integrations out.
 *
 * Invariants:
 *  1. The store is the one authentication resolved; a key of another store is "not found",
 *     exactly like a key id that does not exist or is not a uuid (404).
 *  2. The full key appears in one response only, the 201 of its creation; nothing else carries
 *     it or its hash, and it is never logged (the log names the key's id and prefix).
 *  3. A revoked publishable key is refused by this instance's next storefront request: the
 *     revocation goes through pe_tenancy_key_revoke_cached (other instances follow the NOTIFY).
 *  4. Untrusted bodies answer 400 {"error":{"code","message"}} naming the field; the live-key
 *     limit answers 409 key_limit_reached; nothing a client sends produces a 5xx.
 *  5. A cookie-authenticated POST or DELETE carries X-CSRF-Token (checked in auth.c before the
 *     handler runs).
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "pe/api.h"
#include "pe/tenancy.h"
#include "routes.h"

/* The kind's name for a log line (never NULL: gcc checks %s arguments). */
static const char *kind_name(pe_key_kind_t kind)
{
    const char *name = pe_tenancy_key_kind_name(kind);
    return name ? name : "unknown";
}

/* "user:<uuid>" or "secret_key", for the log. */
static void actor_of(const pe_http_auth_t *a, char *out, size_t outlen)
{
    if (a->principal == PE_PRINCIPAL_SESSION)
        snprintf(out, outlen, "user:%s", a->user_id);
    else
        snprintf(out, outlen, "secret_key");
}

/* Only a signed-in merchant manages secret keys (the table above). Replies 403 when refused. */
static int allowed(pe_http_request_t *req, pe_key_kind_t kind, const char *verb)
{
    if (kind != PE_KEY_SECRET || pe_http_auth(req)->principal == PE_PRINCIPAL_SESSION)
        return 0;
    pe_http_reply_error(req, PE_EFORBIDDEN, "forbidden",
                        "a secret key may %s publishable keys only; sign in to the dashboard to "
                        "%s a secret key",
                        verb, verb);
    return PE_EFORBIDDEN;
}

static int reply_not_found(pe_http_request_t *req)
{
    return pe_http_reply_error(req, PE_ENOTFOUND, "not_found", "no such key in this store");
}

int pe_api_keys_list(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *keys = NULL;
    int rc = pe_tenancy_key_list(app->db, pe_http_auth(req)->store_id, &keys);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot list the keys right now");
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddItemToObject(j, "keys", keys)) {
        cJSON_Delete(j);
        cJSON_Delete(keys);
        return pe_http_reply_error(req, PE_ENOMEM, NULL, "cannot list the keys right now");
    }
    if (!cJSON_AddNumberToObject(j, "maxLive", PE_KEYS_MAX_LIVE)) {
        cJSON_Delete(j);
        return pe_http_reply_error(req, PE_ENOMEM, NULL, "cannot list the keys right now");
    }
    return pe_http_reply_cjson(req, 200, j);
}

/* The body of a creation: exactly {"kind":"publishable"|"secret"}. Replies 400 and returns
 * PE_EINVAL when it is not. */
static int parse_kind(pe_http_request_t *req, const cJSON *body, pe_key_kind_t *kind)
{
    const char *unknown = NULL;
    if (cJSON_IsObject(body))
        for (const cJSON *f = body->child; f && !unknown; f = f->next)
            if (strcmp(f->string, "kind") != 0)
                unknown = f->string;
    if (unknown) {
        pe_http_reply_error(req, PE_EINVAL, "unknown_field",
                            "%.64s: unknown field (a key request has only \"kind\")", unknown);
        return PE_EINVAL;
    }
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(body, "kind");
    if (!cJSON_IsObject(body) || !cJSON_IsString(k) ||
        pe_tenancy_key_kind_from_name(k->valuestring, kind) != 0) {
        pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                            "kind: must be \"publishable\" or \"secret\"");
        return PE_EINVAL;
    }
    return 0;
}

int pe_api_keys_create(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    const pe_http_auth_t *auth = pe_http_auth(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    pe_key_kind_t kind;
    if (parse_kind(req, body, &kind) != 0 || allowed(req, kind, "create") != 0)
        return 0;
    char key[PE_KEY_LEN];
    pe_key_info_t info;
    int rc = pe_tenancy_key_create_info(app->db, auth->store_id, kind, key, &info);
    if (rc == PE_ECONFLICT)
        return pe_http_reply_error(req, PE_ECONFLICT, "key_limit_reached",
                                   "this store already has %d live keys, the most it may have; "
                                   "revoke one it no longer uses first",
                                   PE_KEYS_MAX_LIVE);
    if (rc != 0)
        return pe_http_reply_error(
            req, rc, NULL, rc == PE_ENOTFOUND ? "no such store" : "cannot create a key now");
    char actor[64];
    actor_of(auth, actor, sizeof actor);
    pe_log(PE_LOG_INFO, "api_key_created", "store %s: %s key %s (prefix %s) created by %s",
           auth->store_id, kind_name(kind), info.id, info.prefix, actor);
    cJSON *j = pe_tenancy_key_json(&info);
    /* invariant 2: the only response that ever holds the key */
    if (!j || !cJSON_AddStringToObject(j, "key", key)) {
        cJSON_Delete(j);
        sodium_memzero(key, sizeof key);
        return pe_http_reply_error(req, PE_ENOMEM, NULL,
                                   "the key was created but cannot be shown; "
                                   "revoke it and create another");
    }
    sodium_memzero(key, sizeof key);
    return pe_http_reply_cjson(req, 201, j);
}

int pe_api_key_revoke(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    const pe_http_auth_t *auth = pe_http_auth(req);
    const char *key_id = pe_http_param(req, "keyId");
    pe_key_info_t info;
    /* The kind decides who may revoke it; kinds never change, so read-then-revoke is safe. */
    int rc = pe_tenancy_key_get(app->db, auth->store_id, key_id, &info);
    if (rc == PE_ENOTFOUND)
        return reply_not_found(req);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot revoke the key now");
    if (allowed(req, info.kind, "revoke") != 0)
        return 0;
    rc = pe_tenancy_key_revoke_cached(app->keys, app->db, auth->store_id, key_id, &info);
    if (rc == PE_ENOTFOUND)
        return reply_not_found(req);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot revoke the key now");
    char actor[64];
    actor_of(auth, actor, sizeof actor);
    pe_log(PE_LOG_INFO, "api_key_revoked", "store %s: %s key %s (prefix %s) revoked by %s at %s",
           auth->store_id, kind_name(info.kind), info.id, info.prefix, actor, info.revoked_at);
    cJSON *j = pe_tenancy_key_json(&info);
    if (!j)
        return pe_http_reply_error(req, PE_ENOMEM, NULL, "the key was revoked");
    return pe_http_reply_cjson(req, 200, j);
}
