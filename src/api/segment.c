/*
 * segment.c — Segment HTTP Tracking API compatibility: POST /v1/batch, /v1/track, /v1/page and
 * /v1/identify. The handler authenticates the write key, has the body mapped to native events by
 * pe_events_segment_map (src/events/segment.c says what maps to what, and refuses malformed
 * envelopes) and hands them to the collector exactly as POST /v1/events does
 * (pe_api_ingest_for), so validation, clock-skew correction, idempotency, the dead letter and the
 * 200-after-COMMIT promise are the collector's, unchanged.
 *
 *   request                                        answer
 *   malformed JSON, not an object, "batch" not     400 {"error":{…}}
 *   an array, a bad sentAt
 *   no key, an unknown or revoked key              401
 *   a secret key                                   403
 *   a message over 32 KB, a batch over 500 KB or   413
 *   500 messages
 *   stored (after COMMIT)                          200 {"success":true,"accepted":N,"rejected":[…]}
 *   PostgreSQL down, the queue full                503 + Retry-After (nothing stored; retry)
 *
 * The write key is a publishable key (pk_…): the Basic-auth user (what Segment's libraries send)
 * or "writeKey" in the body (older libraries). The routes are PE_AUTH_NONE and the handler
 * authenticates after parsing the body, since the key may be inside it.
 *
 * Invariants:
 *  1. No Segment field is read here but "writeKey": the mapping is the domain's, and everything
 *     it needs from outside (the store, its currency, the time, randomness) is read here and
 *     passed in.
 *  2. The store's currency is read only when a commerce event lacks one (the mapping says so),
 *     as before the mapping moved: page views and identifies cost no database round trip.
 *  3. The request is answered exactly once: here for refusals before ingestion, otherwise by
 *     the collector's done callback (pe_api_ingest_for in events.c).
 */
#include <stdio.h>

#include <sodium.h>

#include "pe/api.h"
#include "pe/collector.h"
#include "pe/events.h"
#include "pe/tenancy.h"
#include "routes.h"

/* The store's currency into out; false when it cannot be read (the events then go without one,
 * and the validator says so). */
static bool store_currency(pe_app_t *app, const char *store_id, char out[4])
{
    pe_store_t store;
    if (pe_tenancy_store_get(app->db, store_id, &store) != 0)
        return false;
    snprintf(out, 4, "%s", store.currency);
    return out[0] != '\0';
}

/* type NULL: /v1/batch; else the one message type of /v1/<type>. */
static int segment_post(pe_http_request_t *req, const char *type)
{
    pe_app_t *app = pe_http_app(req);
    pe_events_segment_out_t mapped = {0};
    pe_refusal_t refusal;
    int rc = 0;
    cJSON *body = pe_http_json_body(req);
    if (!body)
        goto out; /* answered 400 */
    rc = pe_events_segment_check_body(body, type, &refusal);
    if (rc != 0) {
        rc = pe_http_reply_refusal(req, rc, &refusal);
        goto out;
    }
    const cJSON *write_key = cJSON_GetObjectItemCaseSensitive(body, "writeKey");
    pe_http_auth_t auth;
    rc = pe_api_authenticate_write_key(
        req, cJSON_IsString(write_key) ? write_key->valuestring : NULL, &auth);
    if (rc != 0)
        goto out; /* answered 401 / 403 / 503 */

    pe_events_segment_in_t in = {.store_id = auth.store_id, .received_at_us = pe_now_unix_us()};
    randombytes_buf(in.seed, sizeof in.seed);
    rc = pe_events_segment_map(body, type, &in, &mapped, &refusal);
    char currency[4];
    if (rc == 0 && mapped.wants_store_currency && store_currency(app, auth.store_id, currency)) {
        /* Pure and seeded: the second mapping differs from the first only by the currency. */
        in.store_currency = currency;
        cJSON_Delete(mapped.events);
        rc = pe_events_segment_map(body, type, &in, &mapped, &refusal);
    }
    if (rc == PE_ENOMEM)
        goto out; /* the server's answer for a code nothing replied to */
    if (rc != 0) {
        rc = pe_http_reply_refusal(req, rc, &refusal);
        goto out;
    }
    /* Answers now or from the collector's done callback; req is not ours after this call. */
    rc = pe_api_ingest_for(req, auth.store_id, PE_COLLECTOR_LIVE, mapped.events,
                           mapped.batch_sent_at_us, PE_API_REPLY_SEGMENT);
out:
    cJSON_Delete(mapped.events);
    return rc;
}

int pe_api_segment_batch(pe_http_request_t *req)
{
    return segment_post(req, NULL);
}

int pe_api_segment_track(pe_http_request_t *req)
{
    return segment_post(req, "track");
}

int pe_api_segment_page(pe_http_request_t *req)
{
    return segment_post(req, "page");
}

int pe_api_segment_identify(pe_http_request_t *req)
{
    return segment_post(req, "identify");
}
