/*
 * routes.c — the route table of the product: method, path, handler, authentication, body limit
 * and flags, in one place so the API's surface can be read at a glance.
 */
#include "pe/api.h"
#include "pe/catalog.h"
#include "routes.h"

#define KB 1024u

static const pe_http_route_t ROUTES[] = {
    /* operations */
    {"GET", "/healthz", pe_api_healthz, PE_AUTH_NONE, 0, 0, NULL},
    {"GET", "/readyz", pe_api_readyz, PE_AUTH_NONE, 0, 0, NULL},
    {"GET", "/metrics", pe_api_metrics, PE_AUTH_NONE, 0, 0, NULL},
    /* storefront ingestion */
    {"POST", "/v1/events", pe_api_events_post, PE_AUTH_PUBLISHABLE, PE_COLLECTOR_MAX_BODY,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY, NULL},
    /* history, server-to-server: timestamps as sent, up to 400 days old */
    {"POST", "/v1/import", pe_api_import_post, PE_AUTH_SECRET, PE_COLLECTOR_MAX_BODY,
     PE_ROUTE_JSON_BODY, NULL},
    /* Segment HTTP Tracking API: the write key may be in the body, so the handlers authenticate */
    {"POST", "/v1/batch", pe_api_segment_batch, PE_AUTH_NONE, PE_SEGMENT_MAX_BATCH,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY, NULL},
    {"POST", "/v1/track", pe_api_segment_track, PE_AUTH_NONE, PE_SEGMENT_MAX_MESSAGE,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY, NULL},
    {"POST", "/v1/page", pe_api_segment_page, PE_AUTH_NONE, PE_SEGMENT_MAX_MESSAGE,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY, NULL},
    {"POST", "/v1/identify", pe_api_segment_identify, PE_AUTH_NONE, PE_SEGMENT_MAX_MESSAGE,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY, NULL},
    /* merchant sign-in */
    {"POST", "/api/v1/auth/login", pe_api_login, PE_AUTH_NONE, 4 * KB, PE_ROUTE_JSON_BODY, NULL},
    {"POST", "/api/v1/auth/logout", pe_api_logout, PE_AUTH_SESSION, 0, 0, NULL},
    {"GET", "/api/v1/me", pe_api_me, PE_AUTH_SESSION, 0, 0, NULL},
    /* stores */
    {"GET", "/api/v1/stores/{storeId}", pe_api_store_get, PE_AUTH_ADMIN, 0, 0, NULL},
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
    {"GET", "/sdk/{file*}", pe_api_sdk, PE_AUTH_NONE, 0, PE_ROUTE_CORS | PE_ROUTE_STATIC, "sdk"},
    /* the event schema (JSON Schema 2020-12) */
    {"GET", "/schemas/events.json", pe_api_schema_events, PE_AUTH_NONE, 0,
     PE_ROUTE_CORS | PE_ROUTE_STATIC, "schemas"},
    /* the dashboard (lowest precedence: a trailing wildcard) */
    {"GET", "/{path*}", pe_api_web, PE_AUTH_NONE, 0, PE_ROUTE_STATIC, "web"},
};

int pe_api_register(pe_router_t *router)
{
    for (size_t i = 0; i < PE_ARRAY_LEN(ROUTES); i++) {
        int rc = pe_router_add(router, &ROUTES[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}
