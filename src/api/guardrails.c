/*
 * guardrails.c — GET/PUT /api/v1/stores/{storeId}/guardrails: a store's profit guardrails;
 * POST …/guardrails/preview: what a configuration would block before it is saved.
 *
 * Invariants:
 *  1. The store is the one authentication resolved.
 *  2. A bad configuration answers 400 naming the path and stores nothing.
 *  3. A preview reads only: it validates as PUT does and stores nothing. A configuration PUT
 *     would refuse is a 200 {"valid":false,"error":{"code","message"}} (the message as PUT's
 *     400 has it); a body that is not JSON is a 400 as everywhere.
 */
#include "pe/api.h"
#include "pe/changeset.h"
#include "pe/guardrails.h"
#include "routes.h"

int pe_api_guardrails_get(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *out = NULL;
    int rc = pe_guardrails_get(app->db, pe_http_auth(req)->store_id, &out);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot read the guardrails");
    return pe_http_reply_cjson(req, 200, out);
}

int pe_api_guardrails_put(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    cJSON *out = NULL;
    pe_refusal_t err;
    int rc = pe_guardrails_put(app->db, pe_http_auth(req)->store_id, body, &out, &err);
    if (rc == PE_EINVAL)
        return pe_http_reply_error(req, PE_EINVAL, err.code, "%s", err.message);
    if (rc != 0)
        return pe_http_reply_error(
            req, rc, NULL, rc == PE_ENOTFOUND ? "no such store" : "cannot store the guardrails");
    return pe_http_reply_cjson(req, 200, out);
}

int pe_api_guardrails_preview(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    cJSON *out = NULL;
    pe_refusal_t err;
    int rc = pe_guardrails_preview(app->db, pe_http_auth(req)->store_id, body,
                                   pe_changeset_extra_checks(app->changesets), &out, &err);
    if (rc == PE_EINVAL) {
        /* the answer to "is this valid?": a verdict, not a failed request (the dashboard asks
         * on every keystroke, and a browser logs every 4xx as an error) */
        cJSON *o = cJSON_CreateObject(), *e = o ? cJSON_CreateObject() : NULL;
        if (!e || !cJSON_AddBoolToObject(o, "valid", false) ||
            !cJSON_AddStringToObject(e, "code", err.code) ||
            !cJSON_AddStringToObject(e, "message", err.message) ||
            !cJSON_AddItemToObject(o, "error", e)) {
            if (o && !cJSON_GetObjectItemCaseSensitive(o, "error"))
                cJSON_Delete(e);
            cJSON_Delete(o);
            return pe_http_reply_error(req, PE_ENOMEM, NULL, "cannot check the guardrails");
        }
        return pe_http_reply_cjson(req, 200, o);
    }
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot check the guardrails right now");
    return pe_http_reply_cjson(req, 200, out);
}
