/*
 * events.c — POST /v1/events, the native collector endpoint: {"events":[…],"sentAt"?}.
 * The request is parked (suspend) while the group-commit writer stores the batch, and answered
 * from the writer's done callback, so HTTP threads never wait on PostgreSQL.
 *
 * Invariants:
 *  1. 200 {"accepted":N,"rejected":[…]} only after COMMIT; 503 + Retry-After when the writer
 *     could not store it (nothing was stored; a retry is safe because ingestion is idempotent).
 *  2. A malformed request (not JSON, not {"events":[…]}, more than 500 events) is a 4xx and
 *     stores nothing.
 *
 * POST /v1/import (secret key) takes the same envelope for history: timestamps as sent, up to
 * 400 days old (pe_collector_mode_t). pe_api_ingest_for is also the way in for the
 * Segment-compatible routes (segment.c), which
 * authenticate the store themselves and answer in Segment's shape ({"success":true,…}).
 */
#include <stdio.h>
#include <string.h>

#include "pe/api.h"
#include "pe/collector.h"
#include "routes.h"

#define RETRY_AFTER_S "2"

static void reply_ingest(pe_http_request_t *req, const pe_collector_result_t *result,
                         pe_api_reply_style_t style)
{
    if (result->rc != 0) {
        pe_http_set_header(req, "Retry-After", RETRY_AFTER_S);
        pe_http_reply_error(req, PE_EUNAVAIL, "unavailable",
                            "events could not be stored right now; nothing was stored, retry");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    if (j && style == PE_API_REPLY_SEGMENT && !cJSON_AddTrueToObject(j, "success")) {
        cJSON_Delete(j);
        j = NULL;
    }
    cJSON *rejected = NULL;
    if (j && cJSON_AddNumberToObject(j, "accepted", (double)result->accepted))
        rejected = cJSON_AddArrayToObject(j, "rejected");
    if (!rejected) {
        cJSON_Delete(j);
        pe_http_reply_error(req, PE_ENOMEM, "internal_error", "out of memory");
        return;
    }
    for (size_t i = 0; i < result->nrejected; i++) {
        const pe_collector_rejection_t *r = &result->rejected[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddNumberToObject(o, "index", (double)r->index);
        if (r->event_id[0])
            cJSON_AddStringToObject(o, "eventId", r->event_id);
        cJSON_AddStringToObject(o, "code", r->error.code);
        cJSON_AddStringToObject(o, "message", r->error.message);
        cJSON_AddItemToArray(rejected, o);
    }
    pe_http_reply_cjson(req, 200, j);
}

void pe_api_reply_ingest(pe_http_request_t *req, const pe_collector_result_t *result)
{
    reply_ingest(req, result, PE_API_REPLY_NATIVE);
}

static void on_stored(void *arg, const pe_collector_result_t *result)
{
    pe_http_request_t *req = arg;
    reply_ingest(req, result, PE_API_REPLY_NATIVE);
    pe_http_resume(req);
}

static void on_stored_segment(void *arg, const pe_collector_result_t *result)
{
    pe_http_request_t *req = arg;
    reply_ingest(req, result, PE_API_REPLY_SEGMENT);
    pe_http_resume(req);
}

int pe_api_ingest_for(pe_http_request_t *req, const char *store_id, pe_collector_mode_t mode,
                      const cJSON *events, int64_t batch_sent_at_us, pe_api_reply_style_t style)
{
    pe_app_t *app = pe_http_app(req);
    pe_http_suspend(req);
    int rc = pe_collector_ingest(
        app->collector, store_id, mode, events, batch_sent_at_us, pe_now_unix_us(),
        style == PE_API_REPLY_SEGMENT ? on_stored_segment : on_stored, req);
    if (rc == 0)
        return 0; /* on_stored answers */
    if (rc == PE_ETOOBIG)
        pe_http_reply_error(req, rc, NULL, "at most %d events per request",
                            PE_COLLECTOR_MAX_EVENTS);
    else if (rc != PE_EUNAVAIL)
        pe_http_reply_error(req, rc, NULL, "the batch cannot be taken: %s", pe_strerror(rc));
    else {
        pe_http_set_header(req, "Retry-After", RETRY_AFTER_S);
        pe_http_reply_error(req, PE_EUNAVAIL, "unavailable", "the collector is busy; retry");
    }
    pe_http_resume(req);
    return 0;
}

/* The native envelope {"events":[…],"sentAt"?} of /v1/events and /v1/import. */
static int events_envelope(pe_http_request_t *req, pe_collector_mode_t mode)
{
    const cJSON *body = pe_http_json_body_arena(req);
    if (!body)
        return 0;
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(body, "events");
    if (!cJSON_IsObject(body) || !cJSON_IsArray(events))
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "send {\"events\":[…]} with at most %d events",
                                   PE_COLLECTOR_MAX_EVENTS);
    if (cJSON_GetArraySize(events) > PE_COLLECTOR_MAX_EVENTS)
        return pe_http_reply_error(req, PE_ETOOBIG, "payload_too_large",
                                   "%d events; at most %d per request", cJSON_GetArraySize(events),
                                   PE_COLLECTOR_MAX_EVENTS);
    const cJSON *field;
    cJSON_ArrayForEach(field, body)
    {
        if (strcmp(field->string, "events") != 0 && strcmp(field->string, "sentAt") != 0)
            return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                       "%.64s: unknown field (the envelope is "
                                       "{\"events\":[…],\"sentAt\":…})",
                                       field->string);
    }
    int64_t sent_at = 0;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(body, "sentAt");
    if (s && (!cJSON_IsString(s) || pe_time_parse_rfc3339(s->valuestring, &sent_at) != 0))
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "sentAt: must be an RFC 3339 timestamp");
    return pe_api_ingest_for(req, pe_http_auth(req)->store_id, mode, events, sent_at,
                             PE_API_REPLY_NATIVE);
}

int pe_api_events_post(pe_http_request_t *req)
{
    return events_envelope(req, PE_COLLECTOR_LIVE);
}

int pe_api_import_post(pe_http_request_t *req)
{
    return events_envelope(req, PE_COLLECTOR_IMPORT);
}
