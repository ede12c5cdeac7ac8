/*
 * changesets.c — ChangeSets over HTTP: create, list, read, patch, transitions, timeline, and the
 * contract's JSON Schema at /schemas/changeset.json.
 *
 * Invariants:
 *  1. The store is the one authentication resolved; the ChangeSet id comes from the path and
 *     every service call is scoped by that store (another store's id is a 404).
 *  2. A merchant session always acts as the merchant (audit actor user:<id>); only a secret key
 *     (server-to-server: the autopilot, the engine) may say "actor": "autopilot" | "system".
 *  3. The version a write was based on comes from If-Match or the body's "version"; a PATCH
 *     without one is refused (428), a stale one answers 409 with the current version.
 *  4. Refusals keep the one error shape {"error":{"code","message"}}; a guardrail block adds
 *     "violations" (every violation, each with its merchant sentence) inside "error".
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/api.h"
#include "pe/changeset.h"
#include "routes.h"

/* ---- helpers -----------------------------------------------------------------------------------
 */

/* Who is acting; replies 403 (and returns non-zero) for a session claiming to be the system. */
static int resolve_actor(pe_http_request_t *req, const cJSON *body, pe_api_actor_t *a)
{
    const pe_http_auth_t *auth = pe_http_auth(req);
    const cJSON *claim = cJSON_GetObjectItemCaseSensitive(body, "actor");
    const char *want = cJSON_IsString(claim) ? claim->valuestring : "merchant";
    if (claim && !cJSON_IsString(claim))
        return pe_http_reply_error(req, PE_EINVAL, "invalid_type",
                                   "actor: must be merchant, autopilot or system"),
               PE_EINVAL;
    if (auth->principal == PE_PRINCIPAL_SESSION && strcmp(want, "merchant") != 0)
        return pe_http_reply_error(req, PE_EFORBIDDEN, "forbidden",
                                   "actor: a merchant session acts as the merchant"),
               PE_EFORBIDDEN;
    pe_api_merchant_actor(req, a);
    if (strcmp(want, "merchant") == 0)
        return 0;
    if (strcmp(want, "autopilot") == 0)
        a->info = (pe_changeset_actor_info_t){PE_CS_BY_AUTOPILOT, "autopilot", a->id};
    else if (strcmp(want, "system") == 0)
        a->info = (pe_changeset_actor_info_t){PE_CS_BY_SYSTEM, "system", a->id};
    else
        return pe_http_reply_error(req, PE_EINVAL, "invalid_format",
                                   "actor: must be merchant, autopilot or system"),
               PE_EINVAL;
    return 0;
}

/* The version the caller read: If-Match ("3", W/"3" or 3), else body.version; -1 when neither.
 * Returns 0, or replies 400 and returns PE_EINVAL. */
static int expected_version(pe_http_request_t *req, const cJSON *body, int64_t *out)
{
    *out = -1;
    const char *h = pe_http_header(req, "If-Match");
    if (h) {
        if (strncmp(h, "W/", 2) == 0)
            h += 2;
        char digits[24];
        size_t n = strlen(h);
        if (n >= 2 && h[0] == '"' && h[n - 1] == '"') {
            h++;
            n -= 2;
        }
        if (n == 0 || n >= sizeof digits)
            goto bad_header;
        memcpy(digits, h, n);
        digits[n] = '\0';
        char *end = NULL;
        errno = 0;
        long long v = strtoll(digits, &end, 10);
        if (errno || *end || v < 1)
            goto bad_header;
        *out = v;
        return 0;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "version");
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 2147483647 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return pe_http_reply_error(req, PE_EINVAL, "invalid_type",
                                   "version: must be the integer version you read"),
               PE_EINVAL;
    *out = (int64_t)v->valuedouble;
    return 0;
bad_header:
    pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                        "If-Match: must be the ChangeSet's version, e.g. \"3\"");
    return PE_EINVAL;
}

static int reply_doc(pe_http_request_t *req, int status, cJSON *doc)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "version");
    if (cJSON_IsNumber(v)) {
        char etag[32];
        snprintf(etag, sizeof etag, "\"%.0f\"", v->valuedouble);
        pe_http_set_header(req, "ETag", etag);
    }
    return pe_http_reply_cjson(req, status, doc);
}

void pe_api_merchant_actor(pe_http_request_t *req, pe_api_actor_t *a)
{
    const pe_http_auth_t *auth = pe_http_auth(req);
    bool session = auth->principal == PE_PRINCIPAL_SESSION;
    snprintf(a->id, sizeof a->id, "%s", session ? auth->user_id : "secret_key");
    a->info = (pe_changeset_actor_info_t){PE_CS_BY_MERCHANT, "user", a->id};
}

int pe_api_reply_changeset_refusal(pe_http_request_t *req, int rc, pe_changeset_result_t *res,
                                   const char *what)
{
    if (!res->refusal.code[0]) {
        if (rc == PE_ENOTFOUND)
            return pe_http_reply_error(req, PE_ENOTFOUND, "not_found",
                                       "no such ChangeSet in this store");
        return pe_http_reply_error(req, rc, NULL, "%s", what);
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *e = j ? cJSON_AddObjectToObject(j, "error") : NULL;
    if (!e || !cJSON_AddStringToObject(e, "code", res->refusal.code) ||
        !cJSON_AddStringToObject(e, "message", res->refusal.message)) {
        cJSON_Delete(j);
        return PE_ENOMEM;
    }
    if (res->violations) {
        cJSON_AddItemToObject(e, "violations", res->violations);
        res->violations = NULL;
    }
    return pe_http_reply_cjson(req, pe_error_http_status(rc), j);
}

/* ---- handlers ----------------------------------------------------------------------------------
 */

int pe_api_changesets_create(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    pe_api_actor_t a;
    cJSON *doc = NULL;
    pe_changeset_result_t res;
    /* the document is the body; "actor" is not part of it */
    if (resolve_actor(req, NULL, &a) != 0)
        return 0;
    int rc = pe_changeset_create(app->changesets, pe_http_auth(req)->store_id, body, &a.info, &doc,
                                 &res);
    if (rc != 0) {
        rc = pe_api_reply_changeset_refusal(req, rc, &res, "cannot create the ChangeSet");
        pe_changeset_result_free(&res);
        return rc;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    if (cJSON_IsString(id)) {
        char loc[256];
        snprintf(loc, sizeof loc, "/api/v1/stores/%s/changesets/%s", pe_http_auth(req)->store_id,
                 id->valuestring);
        pe_http_set_header(req, "Location", loc);
    }
    return reply_doc(req, 201, doc);
}

int pe_api_changesets_list(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    pe_changeset_query_t q = {.status = pe_http_query(req, "status"),
                              .after = pe_http_query(req, "after")};
    const char *limit = pe_http_query(req, "limit"), *view = pe_http_query(req, "view");
    if (view && strcmp(view, "full") != 0 && strcmp(view, "summary") != 0)
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "view: must be summary or full");
    q.full = view && strcmp(view, "full") == 0;
    if (limit) {
        char *end = NULL;
        errno = 0;
        long v = strtol(limit, &end, 10);
        if (errno || end == limit || *end || v < 1 || v > 200)
            return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                       "limit: must be an integer 1..200");
        q.limit = (unsigned)v;
    }
    cJSON *out = NULL;
    pe_changeset_result_t res;
    int rc = pe_changeset_list(app->changesets, pe_http_auth(req)->store_id, &q, &out, &res);
    if (rc != 0)
        return pe_api_reply_changeset_refusal(req, rc, &res, "cannot list the ChangeSets");
    return pe_http_reply_cjson(req, 200, out);
}

int pe_api_changeset_get(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *doc = NULL;
    pe_changeset_result_t res = {.version = 0};
    int rc = pe_changeset_get(app->changesets, pe_http_auth(req)->store_id,
                              pe_http_param(req, "cid"), &doc);
    if (rc != 0)
        return pe_api_reply_changeset_refusal(req, rc, &res, "cannot read the ChangeSet");
    return reply_doc(req, 200, doc);
}

int pe_api_changeset_patch(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    int64_t version;
    pe_api_actor_t a;
    if (expected_version(req, body, &version) != 0 || resolve_actor(req, NULL, &a) != 0)
        return 0;
    if (version < 0)
        return pe_http_reply_error(req, PE_EPRECONDITION, "version_required",
                                   "send the version you read (If-Match header or \"version\")");
    cJSON *doc = NULL;
    pe_changeset_result_t res;
    int rc = pe_changeset_patch(app->changesets, pe_http_auth(req)->store_id,
                                pe_http_param(req, "cid"), version, body, &a.info, &doc, &res);
    if (rc != 0) {
        rc = pe_api_reply_changeset_refusal(req, rc, &res, "cannot update the ChangeSet");
        pe_changeset_result_free(&res);
        return rc;
    }
    return reply_doc(req, 200, doc);
}

static const char *const TRANSITION_KEYS[] = {"to",    "reason",  "confirm",     "force",
                                              "actor", "version", "proofResult", "currentMetrics"};

int pe_api_changeset_transition(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    if (!cJSON_IsObject(body))
        return pe_http_reply_error(req, PE_EINVAL, "invalid_type",
                                   "the body must be a JSON object");
    for (const cJSON *kv = body->child; kv; kv = kv->next) {
        bool known = false;
        for (size_t i = 0; i < PE_ARRAY_LEN(TRANSITION_KEYS) && !known; i++)
            known = strcmp(kv->string, TRANSITION_KEYS[i]) == 0;
        if (!known)
            return pe_http_reply_error(req, PE_EINVAL, "unknown_field",
                                       "%.64s: is not a field of a transition (to, reason, "
                                       "confirm, force, actor, version, proofResult, "
                                       "currentMetrics)",
                                       kv->string);
    }
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(body, "to");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(body, "reason");
    const cJSON *confirm = cJSON_GetObjectItemCaseSensitive(body, "confirm");
    const cJSON *force = cJSON_GetObjectItemCaseSensitive(body, "force");
    if (!cJSON_IsString(to))
        return pe_http_reply_error(req, PE_EINVAL, to ? "invalid_type" : "missing_field",
                                   "to: the target state is required (a string)");
    if (reason && !cJSON_IsString(reason))
        return pe_http_reply_error(req, PE_EINVAL, "invalid_type", "reason: must be a string");
    if ((confirm && !cJSON_IsBool(confirm)) || (force && !cJSON_IsBool(force)))
        return pe_http_reply_error(req, PE_EINVAL, "invalid_type", "%s: must be true or false",
                                   confirm && !cJSON_IsBool(confirm) ? "confirm" : "force");
    pe_changeset_transition_req_t t = {
        .to = to->valuestring,
        .reason = reason ? reason->valuestring : NULL,
        .confirm = cJSON_IsTrue(confirm),
        .force = cJSON_IsTrue(force),
        .proof_result = cJSON_GetObjectItemCaseSensitive(body, "proofResult"),
        .current_metrics = cJSON_GetObjectItemCaseSensitive(body, "currentMetrics"),
    };
    pe_api_actor_t a;
    if (expected_version(req, body, &t.expected_version) != 0 || resolve_actor(req, body, &a) != 0)
        return 0;
    cJSON *doc = NULL;
    pe_changeset_result_t res;
    int rc = pe_changeset_transition(app->changesets, pe_http_auth(req)->store_id,
                                     pe_http_param(req, "cid"), &t, &a.info, &doc, &res);
    if (rc != 0) {
        rc = pe_api_reply_changeset_refusal(req, rc, &res, "cannot move the ChangeSet");
        pe_changeset_result_free(&res);
        return rc;
    }
    return reply_doc(req, 200, doc);
}

int pe_api_changeset_timeline(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *out = NULL;
    pe_changeset_result_t res = {.version = 0};
    int rc = pe_changeset_timeline(app->changesets, pe_http_auth(req)->store_id,
                                   pe_http_param(req, "cid"), &out);
    if (rc != 0)
        return pe_api_reply_changeset_refusal(req, rc, &res, "cannot read the timeline");
    return pe_http_reply_cjson(req, 200, out);
}

/* ---- /schemas/changeset.json: built once (a pure function of the binary), read-only after ---- */

static pthread_once_t schema_once = PTHREAD_ONCE_INIT;
static pe_buf_t schema_doc = PE_BUF_INIT;
static int schema_rc = PE_EINTERNAL;

static void build_schema(void)
{
    schema_rc = pe_changeset_json_schema(&schema_doc);
    if (schema_rc != 0)
        pe_buf_free(&schema_doc);
}

int pe_api_schema_changeset(pe_http_request_t *req)
{
    pthread_once(&schema_once, build_schema);
    if (schema_rc != 0)
        return pe_http_reply_error(req, schema_rc, NULL, "the ChangeSet schema could not be built");
    int rc = pe_http_set_header(req, "Cache-Control", "public, max-age=3600");
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "out of memory");
    return pe_http_reply_static(req, 200, "application/schema+json", schema_doc.data,
                                schema_doc.len);
}
