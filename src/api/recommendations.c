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
    unsigned mask = 0;
    pe_refusal_t err = {.code = ""};
    if (pe_doctor_status_parse(pe_query_get(q, "status"), &mask, &err) != 0)
        return pe_http_reply_refusal(req, PE_EINVAL, &err);
    cJSON *out = NULL;
    int rc = pe_doctor_recommendations_list(app->recommender, pe_http_auth(req)->store_id, mask,
                                            pe_now_unix_us(), &out);
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

/* The decision in the body (an empty body is {}). Replies 400 and returns PE_EINVAL when it is
 * malformed. */
static int decision_of(pe_http_request_t *req, bool approve, pe_doctor_decision_t *d)
{
    size_t len = 0;
    pe_http_body(req, &len);
    const cJSON *body = NULL;
    if (len > 0 && !(body = pe_http_json_body(req)))
        return PE_EINVAL; /* replied: invalid_json */
    pe_refusal_t err = {.code = ""};
    if (pe_doctor_decision_parse(body, approve, d, &err) != 0)
        return pe_http_reply_refusal(req, PE_EINVAL, &err), PE_EINVAL;
    return 0;
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
    pe_app_t *app = pe_http_app(req);
    pe_doctor_decision_t d;
    if (decision_of(req, true, &d) != 0)
        return 0;
    pe_api_actor_t a;
    pe_api_merchant_actor(req, &a);
    cJSON *out = NULL;
    pe_changeset_result_t res = {0};
    int rc = pe_doctor_recommendation_approve(app->recommender, pe_http_auth(req)->store_id,
                                              pe_http_param(req, "recId"), d.force, d.confirm,
                                              &a.info, pe_now_unix_us(), &out, &res);
    return reply_decision(req, rc, out, &res, "cannot approve the recommendation right now");
}

int pe_api_recommendation_reject(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    pe_doctor_decision_t d;
    if (decision_of(req, false, &d) != 0)
        return 0;
    pe_api_actor_t a;
    pe_api_merchant_actor(req, &a);
    cJSON *out = NULL;
    pe_changeset_result_t res = {0};
    int rc = pe_doctor_recommendation_reject(app->recommender, pe_http_auth(req)->store_id,
                                             pe_http_param(req, "recId"), d.reason, &a.info,
                                             pe_now_unix_us(), &out, &res);
    return reply_decision(req, rc, out, &res, "cannot reject the recommendation right now");
}
