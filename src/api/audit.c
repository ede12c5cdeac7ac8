/*
 * audit.c — the audit trail over HTTP: GET /api/v1/stores/{storeId}/audit/verify (the first
 * broken link of the store's chains) and GET /api/v1/stores/{storeId}/audit/export
 * ?format=csv|json&from=&to= (streamed: RFC 4180 CSV or JSON lines, one page of rows in memory
 * at a time, no connection held between pages).
 *
 * Invariants:
 *  1. The store is the one authentication resolved.
 *  2. from / to are RFC 3339; from is inclusive, to exclusive; bad values answer 400 naming them.
 */
#include <string.h>

#include "pe/api.h"
#include "pe/changeset.h"
#include "pe/events.h"
#include "routes.h"

int pe_api_audit_verify(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *out = NULL;
    int rc = pe_changeset_audit_verify(app->db, pe_http_auth(req)->store_id, &out);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot verify the audit trail");
    return pe_http_reply_cjson(req, 200, out);
}

static long export_read(void *ctx, char *buf, size_t max)
{
    long n = pe_changeset_audit_export_read(ctx, buf, max);
    if (n < 0)
        pe_log(PE_LOG_ERROR, "audit_export_failed", "the export stopped: %s", pe_strerror((int)n));
    return n;
}

static void export_done(void *ctx)
{
    pe_changeset_audit_export_free(ctx);
}

int pe_api_audit_export(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    const char *format = pe_http_query(req, "format");
    const char *from = pe_http_query(req, "from"), *to = pe_http_query(req, "to");
    int64_t from_us = PE_AUDIT_UNBOUNDED, to_us = PE_AUDIT_UNBOUNDED;
    bool csv = !format || strcmp(format, "csv") == 0;
    if (format && !csv && strcmp(format, "json") != 0)
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "format: must be csv or json");
    if (from && pe_time_parse_rfc3339(from, &from_us) != 0)
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "from: must be an RFC 3339 date-time");
    if (to && pe_time_parse_rfc3339(to, &to_us) != 0)
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "to: must be an RFC 3339 date-time");
    if (from && to && to_us <= from_us)
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request", "to: must be after from");
    pe_changeset_audit_export_t *x =
        pe_changeset_audit_export_new(app->db, pe_http_auth(req)->store_id, csv, from_us, to_us);
    if (!x)
        return PE_ENOMEM;
    pe_http_set_header(req, "Content-Disposition",
                       csv ? "attachment; filename=\"audit.csv\""
                           : "attachment; filename=\"audit.jsonl\"");
    return pe_http_reply_stream(
        req, 200, csv ? "text/csv; charset=utf-8; header=present" : "application/x-ndjson",
        export_read, export_done, x);
}
