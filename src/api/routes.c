/*
 * routes.c — the route table of the product: method, path, handler, authentication, body limit
 * and flags, in one place so the API's surface can be read at a glance.
 */
#include "pe/api.h"
#include "pe/catalog.h"
#include "pe/changeset.h"
#include "pe/flags.h"
#include "pe/guardrails.h"
#include "routes.h"

#define KB 1024u

static const pe_http_route_t ROUTES[] = {
    /* operations */
    {"GET", "/healthz", pe_api_healthz, PE_AUTH_NONE, 0, 0, NULL},
    {"GET", "/readyz", pe_api_readyz, PE_AUTH_NONE, 0, 0, NULL},
    {"GET", "/metrics", pe_api_metrics, PE_AUTH_NONE, 0, 0, NULL},
    /* storefront ingestion; the collector routes take gzip/deflate bodies (ENCODED_BODY) */
    {"POST", "/v1/events", pe_api_events_post, PE_AUTH_PUBLISHABLE, PE_COLLECTOR_MAX_BODY,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY | PE_ROUTE_ENCODED_BODY, NULL},
    /* history, server-to-server: timestamps as sent, up to 400 days old */
    {"POST", "/v1/import", pe_api_import_post, PE_AUTH_SECRET, PE_COLLECTOR_MAX_BODY,
     PE_ROUTE_JSON_BODY | PE_ROUTE_ENCODED_BODY, NULL},
    /* Segment HTTP Tracking API: the write key may be in the body, so the handlers authenticate */
    {"POST", "/v1/batch", pe_api_segment_batch, PE_AUTH_NONE, PE_SEGMENT_MAX_BATCH,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY | PE_ROUTE_ENCODED_BODY, NULL},
    {"POST", "/v1/track", pe_api_segment_track, PE_AUTH_NONE, PE_SEGMENT_MAX_MESSAGE,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY | PE_ROUTE_ENCODED_BODY, NULL},
    {"POST", "/v1/page", pe_api_segment_page, PE_AUTH_NONE, PE_SEGMENT_MAX_MESSAGE,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY | PE_ROUTE_ENCODED_BODY, NULL},
    {"POST", "/v1/identify", pe_api_segment_identify, PE_AUTH_NONE, PE_SEGMENT_MAX_MESSAGE,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY | PE_ROUTE_ENCODED_BODY, NULL},
    /* merchant sign-in */
    {"POST", "/api/v1/auth/login", pe_api_login, PE_AUTH_NONE, 4 * KB, PE_ROUTE_JSON_BODY, NULL},
    {"POST", "/api/v1/auth/logout", pe_api_logout, PE_AUTH_SESSION, 0, 0, NULL},
    {"GET", "/api/v1/me", pe_api_me, PE_AUTH_SESSION, 0, 0, NULL},
    /* the same, or {"signedIn":false}: what the dashboard asks before it knows (no 401) */
    {"GET", "/api/v1/auth/session", pe_api_session, PE_AUTH_NONE, 0, 0, NULL},
    /* stores */
    {"GET", "/api/v1/stores/{storeId}", pe_api_store_get, PE_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/stores/{storeId}/settings", pe_api_store_settings_get, PE_AUTH_ADMIN, 0, 0,
     NULL},
    {"PUT", "/api/v1/stores/{storeId}/settings", pe_api_store_settings_put, PE_AUTH_ADMIN, 1 * KB,
     PE_ROUTE_JSON_BODY, NULL},
    /* API keys: list (prefixes only), create (the key shown once), revoke; a secret key
     * manages publishable keys only (keys.c) */
    {"GET", "/api/v1/stores/{storeId}/keys", pe_api_keys_list, PE_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/stores/{storeId}/keys", pe_api_keys_create, PE_AUTH_ADMIN, 1 * KB,
     PE_ROUTE_JSON_BODY, NULL},
    {"DELETE", "/api/v1/stores/{storeId}/keys/{keyId}", pe_api_key_revoke, PE_AUTH_ADMIN, 0, 0,
     NULL},
    /* metrics (aggregate tables only) */
    {"GET", "/api/v1/stores/{storeId}/metrics/overview", pe_api_metrics_overview, PE_AUTH_ADMIN, 0,
     0, NULL},
    {"GET", "/api/v1/stores/{storeId}/funnel", pe_api_metrics_funnel, PE_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/stores/{storeId}/funnel/steps/{step}/breakdown", pe_api_metrics_breakdown,
     PE_AUTH_ADMIN, 0, 0, NULL},
    /* the product catalogue (bulk upsert, paginated list) */
    {"PUT", "/api/v1/stores/{storeId}/products", pe_api_products_put, PE_AUTH_ADMIN,
     PE_CATALOG_MAX_BODY, PE_ROUTE_JSON_BODY, NULL},
    {"GET", "/api/v1/stores/{storeId}/products", pe_api_products_get, PE_AUTH_ADMIN, 0, 0, NULL},
    /* feature flags (admin) */
    {"GET", "/api/v1/stores/{storeId}/flags", pe_api_flags_list, PE_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/stores/{storeId}/flags", pe_api_flags_create, PE_AUTH_ADMIN,
     PE_FLAGS_MAX_BODY, PE_ROUTE_JSON_BODY, NULL},
    {"GET", "/api/v1/stores/{storeId}/flags/{key}", pe_api_flags_get, PE_AUTH_ADMIN, 0, 0, NULL},
    {"PUT", "/api/v1/stores/{storeId}/flags/{key}", pe_api_flags_put, PE_AUTH_ADMIN,
     PE_FLAGS_MAX_BODY, PE_ROUTE_JSON_BODY, NULL},
    {"PATCH", "/api/v1/stores/{storeId}/flags/{key}", pe_api_flags_patch, PE_AUTH_ADMIN,
     PE_FLAGS_MAX_BODY, PE_ROUTE_JSON_BODY, NULL},
    {"DELETE", "/api/v1/stores/{storeId}/flags/{key}", pe_api_flags_delete, PE_AUTH_ADMIN, 0, 0,
     NULL},
    {"GET", "/api/v1/stores/{storeId}/flags/{key}/history", pe_api_flags_history, PE_AUTH_ADMIN, 0,
     0, NULL},
    {"GET", "/api/v1/stores/{storeId}/flag-settings", pe_api_flags_settings_get, PE_AUTH_ADMIN, 0,
     0, NULL},
    {"PUT", "/api/v1/stores/{storeId}/flag-settings", pe_api_flags_settings_put, PE_AUTH_ADMIN,
     4 * KB, PE_ROUTE_JSON_BODY, NULL},
    /* OpenFeature Remote Evaluation Protocol (storefront, publishable key) */
    {"POST", "/ofrep/v1/evaluate/flags/{key}", pe_api_ofrep_flag, PE_AUTH_PUBLISHABLE, 64 * KB,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY, NULL},
    {"POST", "/ofrep/v1/evaluate/flags", pe_api_ofrep_bulk, PE_AUTH_PUBLISHABLE, 64 * KB,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY, NULL},
    /* ChangeSets: lifecycle, timeline; guardrails; the audit trail */
    {"POST", "/api/v1/stores/{storeId}/changesets", pe_api_changesets_create, PE_AUTH_ADMIN,
     PE_CHANGESET_MAX_BODY, PE_ROUTE_JSON_BODY, NULL},
    {"GET", "/api/v1/stores/{storeId}/changesets", pe_api_changesets_list, PE_AUTH_ADMIN, 0, 0,
     NULL},
    {"GET", "/api/v1/stores/{storeId}/changesets/{cid}", pe_api_changeset_get, PE_AUTH_ADMIN, 0, 0,
     NULL},
    {"PATCH", "/api/v1/stores/{storeId}/changesets/{cid}", pe_api_changeset_patch, PE_AUTH_ADMIN,
     PE_CHANGESET_MAX_BODY, PE_ROUTE_JSON_BODY, NULL},
    {"POST", "/api/v1/stores/{storeId}/changesets/{cid}/transitions", pe_api_changeset_transition,
     PE_AUTH_ADMIN, 64 * KB, PE_ROUTE_JSON_BODY, NULL},
    {"GET", "/api/v1/stores/{storeId}/changesets/{cid}/timeline", pe_api_changeset_timeline,
     PE_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/stores/{storeId}/changesets/{cid}/results", pe_api_changeset_results,
     PE_AUTH_ADMIN, 0, 0, NULL},
    /* what Autopilot has earned: attributed profit, the holdout, harm avoided, ROI */
    {"GET", "/api/v1/stores/{storeId}/attribution", pe_api_attribution_get, PE_AUTH_ADMIN, 0, 0,
     NULL},
    {"GET", "/api/v1/stores/{storeId}/guardrails", pe_api_guardrails_get, PE_AUTH_ADMIN, 0, 0,
     NULL},
    {"PUT", "/api/v1/stores/{storeId}/guardrails", pe_api_guardrails_put, PE_AUTH_ADMIN,
     PE_GUARDRAILS_MAX_BODY, PE_ROUTE_JSON_BODY, NULL},
    {"POST", "/api/v1/stores/{storeId}/guardrails/preview", pe_api_guardrails_preview,
     PE_AUTH_ADMIN, PE_GUARDRAILS_MAX_BODY, PE_ROUTE_JSON_BODY, NULL},
    /* the funnel doctor */
    {"POST", "/api/v1/stores/{storeId}/diagnostics/runs", pe_api_diagnostics_run, PE_AUTH_ADMIN, 0,
     0, NULL},
    {"GET", "/api/v1/stores/{storeId}/diagnostics/runs/{runId}", pe_api_diagnostics_run_get,
     PE_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/stores/{storeId}/findings", pe_api_findings_latest, PE_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/stores/{storeId}/diagnostics/benchmarks", pe_api_benchmarks_get, PE_AUTH_ADMIN,
     0, 0, NULL},
    {"PUT", "/api/v1/stores/{storeId}/diagnostics/benchmarks", pe_api_benchmarks_put, PE_AUTH_ADMIN,
     4 * KB, PE_ROUTE_JSON_BODY, NULL},
    /* recommendations: the playbooks applied to the findings, each a ChangeSet */
    {"GET", "/api/v1/stores/{storeId}/recommendations", pe_api_recommendations_list, PE_AUTH_ADMIN,
     0, 0, NULL},
    {"POST", "/api/v1/stores/{storeId}/recommendations/generate", pe_api_recommendations_generate,
     PE_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/stores/{storeId}/recommendations/{recId}", pe_api_recommendation_get,
     PE_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/stores/{storeId}/recommendations/{recId}/approve",
     pe_api_recommendation_approve, PE_AUTH_ADMIN, 4 * KB, PE_ROUTE_JSON_BODY, NULL},
    {"POST", "/api/v1/stores/{storeId}/recommendations/{recId}/reject",
     pe_api_recommendation_reject, PE_AUTH_ADMIN, 8 * KB, PE_ROUTE_JSON_BODY, NULL},
    {"GET", "/api/v1/stores/{storeId}/audit/verify", pe_api_audit_verify, PE_AUTH_ADMIN, 0, 0,
     NULL},
    {"GET", "/api/v1/stores/{storeId}/audit/export", pe_api_audit_export, PE_AUTH_ADMIN, 0, 0,
     NULL},
    {"GET", "/api/v1/stores/{storeId}/notifications", pe_api_notifications_list, PE_AUTH_ADMIN, 0,
     0, NULL},
    {"POST", "/api/v1/stores/{storeId}/notifications/{notificationId}/read",
     pe_api_notification_read, PE_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/schemas/changeset.json", pe_api_schema_changeset, PE_AUTH_NONE, 0,
     PE_ROUTE_CORS | PE_ROUTE_STATIC, NULL},
    {"GET", "/sdk/{file*}", pe_api_sdk, PE_AUTH_NONE, 0, PE_ROUTE_CORS | PE_ROUTE_STATIC, "sdk"},
    /* the event schema (JSON Schema 2020-12) */
    {"GET", "/schemas/events.json", pe_api_schema_events, PE_AUTH_NONE, 0,
     PE_ROUTE_CORS | PE_ROUTE_STATIC, "schemas"},
    /* the dashboard (lowest precedence: a trailing wildcard) */
    {"GET", "/{path*}", pe_api_web, PE_AUTH_NONE, 0, PE_ROUTE_STATIC, "web"},
};

int pe_api_register(pe_http_router_t *router)
{
    for (size_t i = 0; i < PE_ARRAY_LEN(ROUTES); i++) {
        int rc = pe_http_router_add(router, &ROUTES[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}
