/*
 * metrics.c — the merchant's metrics API (data for 8.4 and 8.5): the store overview, the
 * checkout funnel and a step's breakdown. The handlers parse and authorise; the numbers come
 * from src/aggregate/ (aggregate tables only).
 *
 * Invariants:
 *  1. The store is the authenticated one (pe_http_auth()->store_id, checked against {storeId}
 *     by the auth middleware); nothing of another store is ever read.
 *  2. Every bad parameter is a 400 {"error":{"code":"invalid_request","message":"from: …"}} that
 *     names the parameter; unknown query parameters are bad parameters too.
 *  3. Dates default relative to the store's own today (its time zone), never the server's.
 */
#include <stdio.h>

#include "pe/aggregate.h"
#include "pe/api.h"
#include "routes.h"

int pe_api_parse_range(pe_http_request_t *req, pe_aggregate_view_t view, pe_aggregate_query_t *q,
                       pe_aggregate_clock_t *clock)
{
    pe_app_t *app = pe_http_app(req);
    const char *store_id = pe_http_auth(req)->store_id;
    int rc = pe_aggregate_clock(app->db, store_id, pe_now_unix_us(), clock);
    if (rc != 0) {
        pe_http_reply_error(req, rc, NULL,
                            rc == PE_ENOTFOUND ? "no such store" : "cannot read the store");
        return rc;
    }
    const pe_query_t *qs = pe_http_query_params(req);
    pe_refusal_t err;
    rc = pe_aggregate_query_parse(view, qs->names, qs->values, qs->count, clock->today, q, &err);
    if (rc != 0)
        pe_http_reply_refusal(req, rc, &err);
    return rc;
}

static int reply(pe_http_request_t *req, int rc, cJSON *j)
{
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot read the metrics right now");
    return pe_http_reply_cjson(req, 200, j);
}

int pe_api_metrics_overview(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    const char *store_id = pe_http_auth(req)->store_id;
    pe_aggregate_query_t q;
    pe_aggregate_clock_t clock;
    if (pe_api_parse_range(req, PE_AGGREGATE_VIEW_OVERVIEW, &q, &clock) != 0)
        return 0;
    cJSON *j = NULL;
    int rc = pe_aggregate_overview(app->db, store_id, &clock, &q, &j);
    return reply(req, rc, j);
}

int pe_api_metrics_funnel(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    pe_aggregate_query_t q;
    pe_aggregate_clock_t clock;
    if (pe_api_parse_range(req, PE_AGGREGATE_VIEW_FUNNEL, &q, &clock) != 0)
        return 0;
    cJSON *j = NULL;
    int rc = pe_aggregate_funnel(app->db, pe_http_auth(req)->store_id, &q, &j);
    return reply(req, rc, j);
}

int pe_api_metrics_breakdown(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    pe_funnel_step_t step;
    if (pe_aggregate_step_parse(pe_http_param(req, "step"), &step) != 0)
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "step: must be cart, checkout, shipping, payment or "
                                   "confirmation");
    pe_aggregate_query_t q;
    pe_aggregate_clock_t clock;
    if (pe_api_parse_range(req, PE_AGGREGATE_VIEW_BREAKDOWN, &q, &clock) != 0)
        return 0;
    cJSON *j = NULL;
    int rc = pe_aggregate_breakdown(app->db, pe_http_auth(req)->store_id, step, &q, &j);
    return reply(req, rc, j);
}
