/*
 * schema.c — GET /schemas/events.json: the JSON Schema (2020-12) of events that
 * pe_events_json_schema generates from the definition table, for SDKs and storefronts on any
 * origin.
 *
 * Invariants:
 *  1. The document is built at most once per process, on the first request (pthread_once), and
 *     is read-only afterwards; replies point at it without copying. This is the module's one
 *     piece of static state: a cache of a pure function of the binary, not configuration.
 *  2. A build that failed (out of memory) is answered 500 for the life of the process; a
 *     half-built document is never served.
 */
#include <pthread.h>

#include "pe/api.h"
#include "pe/events.h"
#include "routes.h"

#define SCHEMA_CACHE_CONTROL "public, max-age=3600"
#define SCHEMA_CONTENT_TYPE  "application/schema+json"

static pthread_once_t schema_once = PTHREAD_ONCE_INIT;
static pe_buf_t schema_doc = PE_BUF_INIT; /* written only inside build_schema */
static int schema_rc = PE_EINTERNAL;

static void build_schema(void)
{
    schema_rc = pe_events_json_schema(&schema_doc);
    if (schema_rc != 0)
        pe_buf_free(&schema_doc);
}

int pe_api_schema_events(pe_http_request_t *req)
{
    pthread_once(&schema_once, build_schema);
    if (schema_rc != 0)
        return pe_http_reply_error(req, schema_rc, NULL, "the event schema could not be built");
    int rc = pe_http_set_header(req, "Cache-Control", SCHEMA_CACHE_CONTROL);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "out of memory");
    return pe_http_reply_static(req, 200, SCHEMA_CONTENT_TYPE, schema_doc.data, schema_doc.len);
}
