/*
 * recommendations.c — the recommendations' routes (README "Recommendations"):
 *
 *   GET  /api/v1/stores/{storeId}/recommendations[?status=active,blocked]   the cards, ranked
 *   POST /api/v1/stores/{storeId}/recommendations/generate                  generate now
 *   GET  /api/v1/stores/{storeId}/recommendations/{recId}                   one
 *   POST /api/v1/stores/{storeId}/recommendations/{recId}/approve   {} |
 * {"force":true,"confirm":true} POST /api/v1/stores/{storeId}/recommendations/{recId}/reject
 * {"reason":"…"} (optional)
 *
 * Invariants:
 *  1. The store is the one authentication resolved; another store's recommendation is 404.
 *  2. The merchant acts (a session: its user; a secret key: "secret_key"); the recommender
 *     moves the ChangeSet through the lifecycle, which checks guardrails and writes the audit.
 *  3. "Now" is read here, once per request, and passed down. No business rule here.
 */
#include <string.h>

#include "pe/api.h"
#include "pe/doctor.h"
#include "routes.h"

int pe_api_recommendations_list(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    const pe_query_t *q = pe_http_query_params(req);
    for (size_t i = 0; i < q->count; i++)
        if (strcmp(q->names[i], "status") != 0)
            return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                       "%.64s: unknown query parameter (status)", q->names[i]);
    cJSON *out = NULL;
    pe_refusal_t err = {.code = ""};
    int rc =
        pe_doctor_recommendations_list(app->recommender, pe_http_auth(req)->store_id,
                                       pe_query_get(q, "status"), pe_now_unix_us(), &out, &err);
    if (rc != 0 && err.code[0])
        return pe_http_reply_refusal(req, rc, &err);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot read the recommendations right now");
    return pe_http_reply_cjson(req, 200, out);
}

int pe_api_recommendations_generate(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *out = NULL;
    int rc =
        pe_doctor_recommend(app->recommender, pe_http_auth(req)->store_id, pe_now_unix_us(), &out);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot generate recommendations right now");
    return pe_http_reply_cjson(req, 200, out);
}

int pe_api_recommendation_get(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *out = NULL;
    int rc = pe_doctor_recommendation_get(app->recommender, pe_http_auth(req)->store_id,
                                          pe_http_param(req, "recId"), pe_now_unix_us(), &out);
    if (rc == PE_ENOTFOUND)
        return pe_http_reply_error(req, rc, NULL, "no such recommendation in this store");
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot read the recommendation right now");
    return pe_http_reply_cjson(req, 200, out);
}

/* The body as an object with only the names in allowed (an empty body is {}). Replies 400 and
 * returns NULL otherwise; *empty says the body was empty (nothing to read). */
static const cJSON *decision_body(pe_http_request_t *req, const char *const *allowed, size_t n,
                                  const char *list, bool *empty)
{
    size_t len = 0;
    pe_http_body(req, &len);
    *empty = len == 0;
    if (*empty)
        return NULL;
    const cJSON *body = pe_http_json_body(req);
    if (!body)
        return NULL;
    if (!cJSON_IsObject(body)) {
        pe_http_reply_error(req, PE_EINVAL, "invalid_type", "the body must be a JSON object");
        return NULL;
    }
    for (const cJSON *kv = body->child; kv; kv = kv->next) {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(kv->string, allowed[i]) == 0;
        if (!known) {
            pe_http_reply_error(req, PE_EINVAL, "unknown_field", "%.64s: unknown field (%s)",
                                kv->string, list);
            return NULL;
        }
    }
    return body;
}

/* Replies a decision's outcome. */
static int reply_decision(pe_http_request_t *req, int rc, cJSON *out, pe_changeset_result_t *res,
                          const char *what)
{
    if (rc == PE_ENOTFOUND && !res->refusal.code[0]) {
        pe_changeset_result_free(res);
        return pe_http_reply_error(req, rc, NULL, "no such recommendation in this store");
    }
    if (rc != 0) {
        rc = pe_api_reply_changeset_refusal(req, rc, res, what);
        pe_changeset_result_free(res);
        return rc;
    }
    pe_changeset_result_free(res);
    return pe_http_reply_cjson(req, 200, out);
}

int pe_api_recommendation_approve(pe_http_request_t *req)
{
    static const char *const KEYS[] = {"force", "confirm"};
    pe_app_t *app = pe_http_app(req);
    bool empty = false;
    const cJSON *body = decision_body(req, KEYS, PE_ARRAY_LEN(KEYS), "force, confirm", &empty);
    if (!body && !empty)
        return 0;
    const cJSON *force = cJSON_GetObjectItemCaseSensitive(body, "force");
    const cJSON *confirm = cJSON_GetObjectItemCaseSensitive(body, "confirm");
    if ((force && !cJSON_IsBool(force)) || (confirm && !cJSON_IsBool(confirm)))
        return pe_http_reply_error(req, PE_EINVAL, "invalid_type", "%s: must be true or false",
                                   force && !cJSON_IsBool(force) ? "force" : "confirm");
    pe_api_actor_t a;
    pe_api_merchant_actor(req, &a);
    cJSON *out = NULL;
    pe_changeset_result_t res = {0};
    int rc = pe_doctor_recommendation_approve(
        app->recommender, pe_http_auth(req)->store_id, pe_http_param(req, "recId"),
        cJSON_IsTrue(force), cJSON_IsTrue(confirm), &a.info, pe_now_unix_us(), &out, &res);
    return reply_decision(req, rc, out, &res, "cannot approve the recommendation right now");
}

int pe_api_recommendation_reject(pe_http_request_t *req)
{
    static const char *const KEYS[] = {"reason"};
    pe_app_t *app = pe_http_app(req);
    bool empty = false;
    const cJSON *body = decision_body(req, KEYS, PE_ARRAY_LEN(KEYS), "reason", &empty);
    if (!body && !empty)
        return 0;
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(body, "reason");
    if (reason && !cJSON_IsString(reason) && !cJSON_IsNull(reason))
        return pe_http_reply_error(req, PE_EINVAL, "invalid_type", "reason: must be a string");
    pe_api_actor_t a;
    pe_api_merchant_actor(req, &a);
    cJSON *out = NULL;
    pe_changeset_result_t res = {0};
    int rc = pe_doctor_recommendation_reject(
        app->recommender, pe_http_auth(req)->store_id, pe_http_param(req, "recId"),
        cJSON_IsString(reason) && reason->valuestring[0] ? reason->valuestring : NULL, &a.info,
        pe_now_unix_us(), &out, &res);
    return reply_decision(req, rc, out, &res, "cannot reject the recommendation right now");
}
