/*
 * routes.h — the handlers of src/api/, private to the module; pe_api_register() in routes.c
 * is the one table that binds them to methods, paths, limits and authentication.
 */
#ifndef PE_API_ROUTES_H
#define PE_API_ROUTES_H

#include "pe/aggregate.h"
#include "pe/changeset.h"
#include "pe/collector.h"
#include "pe/http.h"

int pe_api_healthz(pe_http_request_t *req);
int pe_api_readyz(pe_http_request_t *req);
int pe_api_metrics(pe_http_request_t *req);
int pe_api_login(pe_http_request_t *req);
/* Whether the browser says the request comes from a page of another site (Sec-Fetch-Site:
 * cross-site, or Origin: null); and the 403 cross_site_request that refuses it (auth.c). */
bool pe_api_cross_site(pe_http_request_t *req);
int pe_api_refuse_cross_site(pe_http_request_t *req);
int pe_api_logout(pe_http_request_t *req);
int pe_api_me(pe_http_request_t *req);
int pe_api_session(pe_http_request_t *req);
int pe_api_store_get(pe_http_request_t *req);
/* The metrics API (metrics.c): overview, funnel, a funnel step's breakdown. */
/* Reads the store's clock at the request's time and parses the query's from / to (and the
 * view's filters): 0, or non-zero after replying (404 no store, 400 a bad parameter named).
 * Shared by every route that takes a date range. */
int pe_api_parse_range(pe_http_request_t *req, pe_aggregate_view_t view, pe_aggregate_query_t *q,
                       pe_aggregate_clock_t *clock);
int pe_api_metrics_overview(pe_http_request_t *req);
int pe_api_metrics_funnel(pe_http_request_t *req);
int pe_api_metrics_breakdown(pe_http_request_t *req);
/* The product catalogue (products.c). */
int pe_api_products_put(pe_http_request_t *req);
int pe_api_products_get(pe_http_request_t *req);
int pe_api_web(pe_http_request_t *req);
/* Serves web/<path> — the embedded copy, or PE_WEB_DIR's — as type with that Cache-Control.
 * path must pass pe_api_web_path_safe. Returns 0 (replied), PE_ENOTFOUND or another PE_E… code
 * (nothing replied). Shared by the dashboard and the SDK routes. */
int pe_api_serve_file(pe_http_request_t *req, const char *path, const char *type,
                      const char *cache);
/* False for a path with a "..", "." or dot-file segment, an empty segment or a backslash. */
bool pe_api_web_path_safe(const char *path);
int pe_api_schema_events(pe_http_request_t *req);
int pe_api_events_post(pe_http_request_t *req);
int pe_api_import_post(pe_http_request_t *req);
/* Hands a validated envelope's events for store_id to the collector and answers when they are
 * stored (or not); shared by the native and the Segment-compatible endpoints (which
 * authenticate the store themselves). Style SEGMENT adds Segment's "success":true to the 200
 * answer. Always replies. */
typedef enum { PE_API_REPLY_NATIVE = 0, PE_API_REPLY_SEGMENT } pe_api_reply_style_t;
int pe_api_ingest_for(pe_http_request_t *req, const char *store_id, pe_collector_mode_t mode,
                      const cJSON *events, int64_t batch_sent_at_us, pe_api_reply_style_t style);
/* The collector's answer to a batch: 200 {"accepted","rejected"} or 503 + Retry-After. */
void pe_api_reply_ingest(pe_http_request_t *req, const pe_collector_result_t *result);

/* Authenticates the write key of a Segment-style request: the Basic-auth user, else a Bearer
 * token, else body_key (the body's "writeKey", may be NULL). Only a publishable key of a live
 * store passes: 0 with *out filled (principal and store_id); otherwise the request has been
 * answered (401 unknown or missing, 403 secret key, 503 database down) and the code is
 * returned. Thread-safe; call from a handler of a PE_AUTH_NONE route. */
int pe_api_authenticate_write_key(pe_http_request_t *req, const char *body_key,
                                  pe_http_auth_t *out);
int pe_api_sdk(pe_http_request_t *req);

/* Segment HTTP Tracking API (segment.c): Segment's limits, 500 KB per batch request and 32 KB
 * per message (the bound the mapping in src/events/segment.c holds each message of a batch to).
 * The routes are PE_AUTH_NONE: the handlers authenticate the write key. */
#define PE_SEGMENT_MAX_BATCH   (500 * 1024)
#define PE_SEGMENT_MAX_MESSAGE PE_EVENTS_SEGMENT_MAX_MESSAGE
int pe_api_segment_batch(pe_http_request_t *req);
int pe_api_segment_track(pe_http_request_t *req);
int pe_api_segment_page(pe_http_request_t *req);
int pe_api_segment_identify(pe_http_request_t *req);

/* Feature flags: the merchant's API (flags.c) and OpenFeature remote evaluation (ofrep.c). */
int pe_api_flags_list(pe_http_request_t *req);
int pe_api_flags_create(pe_http_request_t *req);
int pe_api_flags_get(pe_http_request_t *req);
int pe_api_flags_put(pe_http_request_t *req);
int pe_api_flags_patch(pe_http_request_t *req);
int pe_api_flags_delete(pe_http_request_t *req);
int pe_api_flags_history(pe_http_request_t *req);
int pe_api_flags_settings_get(pe_http_request_t *req);
int pe_api_flags_settings_put(pe_http_request_t *req);
int pe_api_ofrep_flag(pe_http_request_t *req);
int pe_api_ofrep_bulk(pe_http_request_t *req);

/* ChangeSets (changesets.c), guardrails (guardrails.c), the audit trail (audit.c). */
int pe_api_changesets_create(pe_http_request_t *req);
int pe_api_changesets_list(pe_http_request_t *req);
int pe_api_changeset_get(pe_http_request_t *req);
int pe_api_changeset_patch(pe_http_request_t *req);
int pe_api_changeset_transition(pe_http_request_t *req);
int pe_api_changeset_timeline(pe_http_request_t *req);
/* An experiment's results (experiments.c). */
int pe_api_changeset_results(pe_http_request_t *req);
int pe_api_attribution_get(pe_http_request_t *req);
int pe_api_store_settings_get(pe_http_request_t *req);
int pe_api_store_settings_put(pe_http_request_t *req);
int pe_api_schema_changeset(pe_http_request_t *req);
/* Who acts for a merchant route: the signed-in user (audit "user:<id>"), or "secret_key". */
typedef struct {
    pe_changeset_actor_info_t info;
    char id[PE_HTTP_ID_LEN + 16];
} pe_api_actor_t;
void pe_api_merchant_actor(pe_http_request_t *req, pe_api_actor_t *a);
/* Replies to a refusal of the ChangeSet service (res filled: code, message and the guardrail
 * violations, which it takes) or to a plain error code (what says what failed). Always
 * replies. */
int pe_api_reply_changeset_refusal(pe_http_request_t *req, int rc, pe_changeset_result_t *res,
                                   const char *what);
/* Recommendations (recommendations.c). */
int pe_api_recommendations_list(pe_http_request_t *req);
int pe_api_recommendations_generate(pe_http_request_t *req);
int pe_api_recommendation_get(pe_http_request_t *req);
int pe_api_recommendation_approve(pe_http_request_t *req);
int pe_api_recommendation_reject(pe_http_request_t *req);
int pe_api_guardrails_get(pe_http_request_t *req);
int pe_api_guardrails_put(pe_http_request_t *req);
int pe_api_guardrails_preview(pe_http_request_t *req);
int pe_api_audit_verify(pe_http_request_t *req);
int pe_api_audit_export(pe_http_request_t *req);
/* The funnel doctor (diagnostics.c): run now, the latest findings, one run. */
int pe_api_diagnostics_run(pe_http_request_t *req);
int pe_api_findings_latest(pe_http_request_t *req);
int pe_api_diagnostics_run_get(pe_http_request_t *req);
int pe_api_benchmarks_get(pe_http_request_t *req);
int pe_api_benchmarks_put(pe_http_request_t *req);
/* A store's API keys (keys.c): list, create (shown once), revoke. */
int pe_api_keys_list(pe_http_request_t *req);
int pe_api_keys_create(pe_http_request_t *req);
int pe_api_key_revoke(pe_http_request_t *req);
/* In-app notifications (notifications.c). */
int pe_api_notifications_list(pe_http_request_t *req);
int pe_api_notification_read(pe_http_request_t *req);

#endif /* PE_API_ROUTES_H */
