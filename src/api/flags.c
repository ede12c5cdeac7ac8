/*
 * flags.c — the merchant's feature-flag API: /api/v1/stores/{storeId}/flags (list, create),
 * /flags/{key} (read, replace, patch, delete), /flags/{key}/history, and /flag-settings (the
 * store's Autopilot holdout). PATCH {"enabled":false} is the kill switch.
 *
 * Invariants:
 *  1. The store is the one authentication resolved (pe_http_auth()->store_id, checked against
 *     {storeId}); a flag of another store is never read or written — it is simply not found.
 *  2. A refused body answers 400 {"error":{"code","message"}} naming the field
 *     ("variants[1].weight: must be an integer 0..100") and changes nothing; a stale "version"
 *     answers 409; a key that exists answers 409 on create.
 *  3. A change is answered after it committed in PostgreSQL and was handed to Redis and to this
 *     instance's copy (pe_flags_* do that in order).
 */
#include <stdio.h>
#include <string.h>

#include "pe/api.h"
#include "pe/flags.h"
#include "routes.h"

/* "secret_key" or "user:<uuid>", for the history. */
static void actor_of(pe_http_request_t *req, char *out, size_t outlen, pe_flags_actor_t *who)
{
    const pe_http_auth_t *a = pe_http_auth(req);
    if (a->principal == PE_PRINCIPAL_SESSION)
        snprintf(out, outlen, "user:%s", a->user_id);
    else
        snprintf(out, outlen, "secret_key");
    who->actor = out;
}

static int reply_failure(pe_http_request_t *req, int rc, const pe_refusal_t *err, const char *what)
{
    if (err && err->message[0] && (rc == PE_EINVAL || rc == PE_ECONFLICT))
        return pe_http_reply_refusal(req, rc, err);
    if (rc == PE_ENOTFOUND)
        return pe_http_reply_error(req, rc, NULL, "no flag '%.128s' in this store",
                                   pe_http_param(req, "key") ? pe_http_param(req, "key") : "");
    return pe_http_reply_error(req, rc, NULL, "%s", what);
}

int pe_api_flags_list(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *j = NULL;
    int rc = pe_flags_list(app->flags, pe_http_auth(req)->store_id, &j);
    if (rc != 0)
        return reply_failure(req, rc, NULL, "cannot list the flags right now");
    return pe_http_reply_cjson(req, 200, j);
}

int pe_api_flags_create(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    char actor[64];
    pe_flags_actor_t who;
    pe_refusal_t err = {.code = ""};
    actor_of(req, actor, sizeof actor, &who);
    cJSON *j = NULL;
    int rc = pe_flags_create(app->flags, pe_http_auth(req)->store_id, &who, body, &j, &err);
    if (rc != 0)
        return reply_failure(req, rc, &err, "cannot create the flag right now");
    return pe_http_reply_cjson(req, 201, j);
}

int pe_api_flags_get(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *j = NULL;
    int rc = pe_flags_get(app->flags, pe_http_auth(req)->store_id, pe_http_param(req, "key"), &j);
    if (rc != 0)
        return reply_failure(req, rc, NULL, "cannot read the flag right now");
    return pe_http_reply_cjson(req, 200, j);
}

static int update(pe_http_request_t *req, bool partial)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    char actor[64];
    pe_flags_actor_t who;
    pe_refusal_t err = {.code = ""};
    actor_of(req, actor, sizeof actor, &who);
    cJSON *j = NULL;
    int rc = pe_flags_update(app->flags, pe_http_auth(req)->store_id, pe_http_param(req, "key"),
                             &who, body, partial, &j, &err);
    if (rc != 0)
        return reply_failure(req, rc, &err, "cannot change the flag right now");
    return pe_http_reply_cjson(req, 200, j);
}

int pe_api_flags_put(pe_http_request_t *req)
{
    return update(req, false);
}

int pe_api_flags_patch(pe_http_request_t *req)
{
    return update(req, true);
}

int pe_api_flags_delete(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    char actor[64];
    pe_flags_actor_t who;
    actor_of(req, actor, sizeof actor, &who);
    int rc =
        pe_flags_delete(app->flags, pe_http_auth(req)->store_id, pe_http_param(req, "key"), &who);
    if (rc != 0)
        return reply_failure(req, rc, NULL, "cannot delete the flag right now");
    return pe_http_reply(req, 204, "application/json", "", 0);
}

int pe_api_flags_history(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *j = NULL;
    int rc =
        pe_flags_history(app->flags, pe_http_auth(req)->store_id, pe_http_param(req, "key"), &j);
    if (rc != 0)
        return reply_failure(req, rc, NULL, "cannot read the history right now");
    return pe_http_reply_cjson(req, 200, j);
}

int pe_api_flags_settings_get(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *j = NULL;
    int rc = pe_flags_settings_get(app->flags, pe_http_auth(req)->store_id, &j);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot read the flag settings right now");
    return pe_http_reply_cjson(req, 200, j);
}

int pe_api_flags_settings_put(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    char actor[64];
    pe_flags_actor_t who;
    pe_refusal_t err = {.code = ""};
    actor_of(req, actor, sizeof actor, &who);
    cJSON *j = NULL;
    int rc = pe_flags_settings_put(app->flags, pe_http_auth(req)->store_id, &who, body, &j, &err);
    if (rc != 0)
        return reply_failure(req, rc, &err, "cannot change the flag settings right now");
    return pe_http_reply_cjson(req, 200, j);
}
