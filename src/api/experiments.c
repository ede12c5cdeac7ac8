/*
 * experiments.c — an Autopilot experiment's results, and what Autopilot has earned:
 *
 *   GET /api/v1/stores/{storeId}/changesets/{cid}/results   per-variant figures and the decision
 *   GET /api/v1/stores/{storeId}/attribution?from=&to=      attributed revenue and profit, the
 *                                                           holdout, harm avoided, ROI, weekly
 *
 * Invariants:
 *  1. The ChangeSet is read through the ChangeSet service for the store authentication resolved:
 *     another store's is 404, like every ChangeSet route.
 *  2. "Now" is read here, once, and passed down. No business rule here.
 */
#include "pe/api.h"
#include "pe/changeset.h"
#include "pe/experiments.h"
#include "routes.h"

int pe_api_changeset_results(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    const char *store_id = pe_http_auth(req)->store_id;
    cJSON *cs = NULL, *out = NULL;
    int rc = pe_changeset_get(app->changesets, store_id, pe_http_param(req, "cid"), &cs);
    if (rc == PE_ENOTFOUND)
        return pe_http_reply_error(req, rc, NULL, "no such ChangeSet in this store");
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot read the ChangeSet right now");
    pe_refusal_t err = {.code = ""};
    rc = pe_experiments_results(app->db, store_id, cs, pe_now_unix_us(), &out, &err);
    cJSON_Delete(cs);
    if (rc != 0 && err.code[0])
        return pe_http_reply_refusal(req, rc, &err);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot measure the experiment right now");
    return pe_http_reply_cjson(req, 200, out);
}

int pe_api_attribution_get(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    pe_aggregate_query_t q;
    pe_aggregate_clock_t clock;
    if (pe_api_parse_range(req, PE_AGGREGATE_VIEW_OVERVIEW, &q, &clock) != 0)
        return 0;
    cJSON *out = NULL;
    int rc = pe_experiments_attribution_get(app->db, pe_http_auth(req)->store_id, q.from, q.to,
                                            pe_now_unix_us(), &out);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL,
                                   rc == PE_ENOTFOUND ? "no such store"
                                                      : "cannot compute the attribution right now");
    return pe_http_reply_cjson(req, 200, out);
}
