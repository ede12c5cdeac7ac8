/*
 * diagnostics.c — the funnel doctor's routes: run now, the latest findings, one run.
 *
 *   POST /api/v1/stores/{storeId}/diagnostics/runs[?from=YYYY-MM-DD&to=YYYY-MM-DD]  201 the run
 *   GET  /api/v1/stores/{storeId}/findings        the latest run ({"runId":null,…} before any)
 *   GET  /api/v1/stores/{storeId}/diagnostics/runs/{runId}                           one run
 *   GET  /api/v1/stores/{storeId}/diagnostics/benchmarks        each step's benchmark drop-off
 *   PUT  /api/v1/stores/{storeId}/diagnostics/benchmarks        {"shipping":0.3,"cart":null}
 *
 * Invariants:
 *  1. The store is the one authentication resolved; a run of another store is 404.
 *  2. "Now" is read here, when the request is handled, and passed to the doctor (which reads no
 *     clock of its own).
 *  3. No business rule here: the window's rules and the analysis are src/doctor's.
 */
#include <string.h>

#include "pe/aggregate.h"
#include "pe/api.h"
#include "pe/doctor.h"
#include "routes.h"

/* from/to of the query (both or neither). Replies 400 and returns PE_EINVAL when malformed. */
static int window_of(pe_http_request_t *req, pe_doctor_request_t *rq)
{
    const pe_query_t *q = pe_http_query_params(req);
    const char *from = NULL, *to = NULL;
    for (size_t i = 0; i < q->count; i++) {
        const char **slot = strcmp(q->names[i], "from") == 0 ? &from
                            : strcmp(q->names[i], "to") == 0 ? &to
                                                             : NULL;
        if (!slot)
            return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                       "%.64s: unknown query parameter (from, to)", q->names[i]);
        if (*slot)
            return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                       "%s: given more than once", q->names[i]);
        *slot = q->values[i];
    }
    if (!from && !to)
        return 0;
    if (!from || !to)
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "%s: give from and to together, or neither",
                                   from ? "to" : "from");
    if (pe_aggregate_date_parse(from, &rq->from) != 0)
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request", "from: must be YYYY-MM-DD");
    if (pe_aggregate_date_parse(to, &rq->to) != 0)
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request", "to: must be YYYY-MM-DD");
    rq->has_window = true;
    return 0;
}

int pe_api_diagnostics_run(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    pe_doctor_request_t rq = {.now_us = pe_now_unix_us()};
    if (window_of(req, &rq) != 0)
        return 0;
    cJSON *run = NULL;
    pe_refusal_t err = {.code = ""};
    int rc = pe_doctor_run(app->db, pe_http_auth(req)->store_id, &rq, &run, &err);
    if (rc != 0 && err.code[0])
        return pe_http_reply_refusal(req, rc, &err);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot run the diagnostics right now");
    return pe_http_reply_cjson(req, 201, run);
}

int pe_api_findings_latest(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *run = NULL;
    const char *store_id = pe_http_auth(req)->store_id;
    int rc = pe_doctor_latest(app->db, store_id, &run);
    if (rc == PE_ENOTFOUND) {
        /* no run yet is an answer, not an error (a dashboard asks before the first daily run) */
        run = cJSON_CreateObject();
        if (!run || !cJSON_AddNullToObject(run, "runId") ||
            !cJSON_AddStringToObject(run, "storeId", store_id) ||
            !cJSON_AddArrayToObject(run, "findings") ||
            !cJSON_AddStringToObject(run, "note",
                                     "No diagnostic run yet: the doctor runs once a day, and POST "
                                     "…/diagnostics/runs runs one now.")) {
            cJSON_Delete(run);
            return pe_http_reply_error(req, PE_ENOMEM, NULL, "cannot read the findings right now");
        }
        return pe_http_reply_cjson(req, 200, run);
    }
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot read the findings right now");
    return pe_http_reply_cjson(req, 200, run);
}

int pe_api_diagnostics_run_get(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *run = NULL;
    int rc =
        pe_doctor_run_get(app->db, pe_http_auth(req)->store_id, pe_http_param(req, "runId"), &run);
    if (rc == PE_ENOTFOUND)
        return pe_http_reply_error(req, rc, NULL, "no such diagnostic run in this store");
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot read the run right now");
    return pe_http_reply_cjson(req, 200, run);
}

int pe_api_benchmarks_get(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *out = NULL;
    int rc = pe_doctor_benchmarks_get(app->db, pe_http_auth(req)->store_id, &out);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot read the benchmarks right now");
    return pe_http_reply_cjson(req, 200, out);
}

int pe_api_benchmarks_put(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    cJSON *out = NULL;
    pe_refusal_t err = {.code = ""};
    int rc = pe_doctor_benchmarks_put(app->db, pe_http_auth(req)->store_id, body, pe_now_unix_us(),
                                      &out, &err);
    if (rc != 0 && err.code[0])
        return pe_http_reply_refusal(req, rc, &err);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot store the benchmarks right now");
    return pe_http_reply_cjson(req, 200, out);
}
