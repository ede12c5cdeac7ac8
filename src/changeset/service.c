/*
 * service.c — the ChangeSet service: construction (with the notifier registry), create, read,
 * list, patch, expiry, the timeline, and the row, audit-chain and outbox writes that the
 * transitions of lifecycle.c (pe_changeset_transition) share with them. The outbox dispatcher
 * and in-app notifications are in notify.c.
 *
 * Invariants:
 *  1. A write locks the ChangeSet row (SELECT … FOR UPDATE) inside its transaction, so the
 *     version check, the state check, the audit chain's next link and the update agree.
 *  2. Every modification increments version; a caller that read another version gets
 *     PE_ECONFLICT (stale_version) and nothing changes.
 *  3. The stored document always validates in PE_CHANGESET_FULL mode: the service validates
 *     what it is about to write, so a bug surfaces as PE_EINTERNAL, never as a bad row.
 *  4. Every statement filters by store_id.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "changeset_internal.h"

#define ACQUIRE_TIMEOUT_MS 5000
#define DEFAULT_APPROVAL_S (7u * 24 * 3600)

/* Registers n after the ones already there; the same path for built-ins and extensions. */
static int add_notifier(pe_changeset_service_t *s, const pe_changeset_notifier_t *n)
{
    if (!n->deliver || !pe_changeset_notifier_name_valid(n->name) ||
        s->nnotifiers == PE_CHANGESET_MAX_NOTIFIERS)
        return PE_EINVAL;
    for (size_t i = 0; i < s->nnotifiers; i++)
        if (strcmp(s->notifiers[i].name, n->name) == 0)
            return PE_EINVAL;
    s->notifiers[s->nnotifiers++] = *n;
    return 0;
}

pe_changeset_service_t *pe_changeset_service_new(const pe_changeset_config_t *cfg)
{
    pe_changeset_service_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    if (!s->cfg.approval_timeout_s)
        s->cfg.approval_timeout_s = DEFAULT_APPROVAL_S;
    if (cfg->webhook_url && cfg->webhook_url[0]) {
        s->webhook_url = strdup(cfg->webhook_url);
        s->webhook_secret = strdup(cfg->webhook_secret ? cfg->webhook_secret : "");
        if (!s->webhook_url || !s->webhook_secret)
            goto fail;
    }
    s->cfg.webhook_url = s->webhook_url;
    s->cfg.webhook_secret = s->webhook_secret;
    s->cfg.notifiers = NULL; /* borrowed only through s->notifiers */
    pe_changeset_notifier_t in_app = {"in_app", pe_changeset_deliver_in_app, NULL};
    pe_changeset_notifier_t webhook = {"webhook", pe_changeset_deliver_webhook, s};
    if (add_notifier(s, &in_app) != 0 || (s->webhook_url && add_notifier(s, &webhook) != 0))
        goto fail;
    if (s->webhook_url && !s->webhook_secret[0])
        pe_log(PE_LOG_WARN, "webhook_unsigned",
               "PE_WEBHOOK_URL is set without PE_WEBHOOK_SECRET: receivers cannot tell these "
               "webhooks from forgeries");
    for (size_t i = 0; cfg->notifiers && cfg->notifiers[i]; i++)
        if (add_notifier(s, cfg->notifiers[i]) != 0) {
            pe_log(PE_LOG_ERROR, "notifier_refused",
                   "notifier %.40s: the name must be 1..32 of [a-z0-9_.-] and unique, deliver "
                   "set, at most %d notifiers",
                   cfg->notifiers[i]->name ? cfg->notifiers[i]->name : "(null)",
                   PE_CHANGESET_MAX_NOTIFIERS);
            goto fail;
        }
    return s;
fail:
    pe_changeset_service_free(s);
    return NULL;
}

void pe_changeset_service_free(pe_changeset_service_t *s)
{
    if (!s)
        return;
    free(s->webhook_url);
    if (s->webhook_secret)
        sodium_memzero(s->webhook_secret, strlen(s->webhook_secret));
    free(s->webhook_secret);
    free(s);
}

void pe_changeset_result_free(pe_changeset_result_t *r)
{
    if (!r)
        return;
    cJSON_Delete(r->violations);
    r->violations = NULL;
}

void pe_changeset_result_init(pe_changeset_result_t *res)
{
    pe_refusal_clear(&res->refusal);
    res->violations = NULL;
    res->version = 0;
}

const pe_guardrail_check_t *const *pe_changeset_extra_checks(const pe_changeset_service_t *svc)
{
    return svc->cfg.extra_checks;
}

int64_t pe_changeset_now(const pe_changeset_service_t *svc)
{
    return svc->cfg.clock ? svc->cfg.clock(svc->cfg.clock_ctx) : pe_now_unix_us();
}

/* ---- reading --------------------------------------------------------------------------------- */

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define DOC_SQL                                                                                    \
    "SELECT jsonb_build_object('id', id, 'version', version, 'storeId', store_id::text,"           \
    " 'hypothesis', hypothesis, 'actionPlan', action_plan, 'guardrails', guardrails,"              \
    " 'rollbackPlan', rollback_plan, 'proofPlan', proof_plan, 'approval', approval,"               \
    " 'execution', execution, 'createdAt', " TS("created_at") ", 'updatedAt', " TS(                \
        "updated_at") ")::text, status, version, audit_seq, coalesce(audit_head, '')"              \
                      " FROM changesets WHERE store_id = $1::uuid AND id = $2"

void pe_changeset_row_free(pe_changeset_row_t *r)
{
    cJSON_Delete(r->doc);
    r->doc = NULL;
}

int pe_changeset_row_load(pe_db_conn_t *conn, const char *store_id, const char *id, bool lock,
                          pe_changeset_row_t *out)
{
    pe_db_result_t *res = NULL;
    const char *params[] = {store_id, id};
    memset(out, 0, sizeof *out);
    if (!pe_changeset_cuid_valid(id))
        return PE_ENOTFOUND;
    int rc = pe_db_exec(conn, lock ? DOC_SQL " FOR UPDATE" : DOC_SQL, 2, params, &res);
    if (rc != 0)
        return rc == PE_EINVAL ? PE_ENOTFOUND : rc;
    if (pe_db_result_rows(res) == 0) {
        rc = PE_ENOTFOUND;
        goto out;
    }
    rc = pe_db_result_json(res, 0, 0, &out->doc);
    if (rc == 0 && pe_changeset_state_parse(pe_db_result_get(res, 0, 1), &out->state) != 0)
        rc = PE_EINTERNAL;
    out->version = strtoll(pe_db_result_get(res, 0, 2), NULL, 10);
    out->audit_seq = strtoll(pe_db_result_get(res, 0, 3), NULL, 10);
    snprintf(out->audit_head, sizeof out->audit_head, "%s", pe_db_result_get(res, 0, 4));
out:
    pe_db_result_free(res);
    if (rc != 0)
        pe_changeset_row_free(out);
    return rc;
}

/* Adds auditTrail to a document. */
static int attach_trail(pe_db_conn_t *conn, const char *store_id, const char *id, cJSON *doc)
{
    cJSON *arr = cJSON_AddArrayToObject(doc, "auditTrail");
    if (!arr)
        return PE_ENOMEM;
    return pe_changeset_audit_timeline_rows(conn, store_id, id, arr);
}

int pe_changeset_doc_read(pe_db_conn_t *conn, const char *store_id, const char *id, cJSON **out)
{
    pe_changeset_row_t row;
    int rc = pe_changeset_row_load(conn, store_id, id, false, &row);
    if (rc != 0)
        return rc;
    rc = attach_trail(conn, store_id, id, row.doc);
    if (rc == 0) {
        *out = row.doc;
        row.doc = NULL;
    }
    pe_changeset_row_free(&row);
    return rc;
}

int pe_changeset_get(pe_changeset_service_t *svc, const char *store_id, const char *id, cJSON **out)
{
    pe_db_conn_t *conn = NULL;
    *out = NULL;
    int rc = pe_db_acquire(svc->cfg.db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc == 0)
        rc = pe_changeset_doc_read(conn, store_id, id, out);
    pe_db_release(svc->cfg.db, conn);
    return rc;
}

int pe_changeset_timeline(pe_changeset_service_t *svc, const char *store_id, const char *id,
                          cJSON **out)
{
    pe_db_conn_t *conn = NULL;
    pe_changeset_row_t row = {0};
    cJSON *o = NULL;
    *out = NULL;
    int rc = pe_db_acquire(svc->cfg.db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    rc = pe_changeset_row_load(conn, store_id, id, false, &row);
    if (rc != 0)
        goto out;
    rc = PE_ENOMEM;
    o = cJSON_CreateObject();
    cJSON *events = o ? cJSON_AddArrayToObject(o, "events") : NULL;
    if (!events || !cJSON_AddStringToObject(o, "changesetId", id) ||
        !cJSON_AddStringToObject(o, "status", pe_changeset_state_name(row.state)))
        goto out;
    rc = pe_changeset_audit_timeline_rows(conn, store_id, id, events);
    if (rc == 0) {
        *out = o;
        o = NULL;
    }
out:
    cJSON_Delete(o);
    pe_changeset_row_free(&row);
    pe_db_release(svc->cfg.db, conn);
    return rc;
}

/* What one list item is: a summary, or the document as pe_changeset_doc_read has it minus
 * auditTrail. */
#define C_CREATED TS("c.created_at")
#define C_UPDATED TS("c.updated_at")
#define C_EXPIRES TS("c.expires_at")
#define SUMMARY_JSON                                                                               \
    "jsonb_build_object('id', c.id, 'version', c.version, 'status', c.status,"                     \
    " 'approvalStatus', c.approval_status, 'riskLevel', c.risk_level,"                             \
    " 'actionType', c.action_type, 'problem', c.hypothesis->>'problem',"                           \
    " 'expectedOutcome', c.hypothesis->>'expectedOutcome', 'createdAt', " C_CREATED                \
    ", 'updatedAt', " C_UPDATED ", 'expiresAt', CASE WHEN c.expires_at IS NULL THEN NULL"          \
    " ELSE " C_EXPIRES " END)"
#define FULL_JSON                                                                                  \
    "jsonb_build_object('id', c.id, 'version', c.version, 'storeId', c.store_id::text,"            \
    " 'hypothesis', c.hypothesis, 'actionPlan', c.action_plan, 'guardrails', c.guardrails,"        \
    " 'rollbackPlan', c.rollback_plan, 'proofPlan', c.proof_plan, 'approval', c.approval,"         \
    " 'execution', c.execution, 'createdAt', " C_CREATED ", 'updatedAt', " C_UPDATED ")"
#define LIST_SQL(item)                                                                             \
    "SELECT " item "::text, c.id FROM changesets c WHERE c.store_id = $1::uuid"                    \
    " AND ($2::text IS NULL OR c.status = $2)"                                                     \
    " AND ($3::text IS NULL OR (c.created_at, c.id) < (SELECT p.created_at, p.id"                  \
    "      FROM changesets p WHERE p.store_id = $1::uuid AND p.id = $3))"                          \
    " ORDER BY c.created_at DESC, c.id DESC LIMIT $4::int"

int pe_changeset_list(pe_changeset_service_t *svc, const char *store_id,
                      const pe_changeset_query_t *q, cJSON **out, pe_changeset_result_t *res)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *r = NULL;
    cJSON *o = NULL;
    pe_changeset_state_t st;
    pe_changeset_result_init(res);
    *out = NULL;
    unsigned limit = q->limit ? q->limit : 50;
    if (limit > 200)
        return pe_refuse(&res->refusal, PE_EINVAL, "invalid_request",
                         "limit: must be an integer 1..200");
    if (q->status && pe_changeset_state_parse(q->status, &st) != 0)
        return pe_refuse(&res->refusal, PE_EINVAL, "invalid_request",
                         "status: must be one of DRAFT, PENDING_APPROVAL, ACTIVE, MEASURING, "
                         "PROVEN, ROLLED_BACK, PERMANENT, ARCHIVED");
    if (q->after && !pe_changeset_cuid_valid(q->after))
        return pe_refuse(&res->refusal, PE_EINVAL, "invalid_request",
                         "after: must be the nextAfter of the previous page");
    char lim[16];
    snprintf(lim, sizeof lim, "%u", limit + 1);
    const char *params[] = {store_id, q->status, q->after, lim};
    int rc = pe_db_acquire(svc->cfg.db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    /* keyset pagination on (created_at, id), newest first */
    rc = pe_db_exec(conn, q->full ? LIST_SQL(FULL_JSON) : LIST_SQL(SUMMARY_JSON), 4, params, &r);
    if (rc != 0)
        goto out;
    rc = PE_ENOMEM;
    o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "changesets") : NULL;
    if (!arr)
        goto out;
    size_t n = pe_db_result_rows(r);
    for (size_t i = 0; i < n && i < limit; i++) {
        if ((rc = pe_changeset_json_row_add(arr, r, i)) != 0)
            goto out;
    }
    rc = PE_ENOMEM;
    if (n > limit ? !cJSON_AddStringToObject(o, "nextAfter", pe_db_result_get(r, limit - 1, 1))
                  : !cJSON_AddNullToObject(o, "nextAfter"))
        goto out;
    *out = o;
    o = NULL;
    rc = 0;
out:
    cJSON_Delete(o);
    pe_db_result_free(r);
    pe_db_release(svc->cfg.db, conn);
    return rc;
}

int pe_changeset_json_row_add(cJSON *arr, const pe_db_result_t *r, size_t row)
{
    cJSON *item = NULL;
    int rc = pe_db_result_json(r, row, 0, &item);
    if (rc == 0 && !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        rc = PE_ENOMEM;
    }
    return rc;
}

/* ---- writing: audit, outbox --------------------------------------------------------------------
 */

/* Appends one audit event to the chain of row (locked by the caller) and moves its head. */
int pe_changeset_audit_append(pe_db_conn_t *conn, const char *store_id, const char *cs_id,
                              pe_changeset_row_t *row, const pe_changeset_actor_info_t *actor,
                              int64_t now_us, const char *action, const char *prev_state,
                              const char *new_state, const char *reason, const cJSON *metadata)
{
    char id[PE_CHANGESET_ID_LEN], hash[PE_AUDIT_HASH_LEN], seq[32], us[32];
    pe_buf_t meta = PE_BUF_INIT;
    pe_changeset_cuid(id);
    int64_t now = now_us;
    pe_changeset_audit_record_t r = {
        .id = id,
        .changeset_id = cs_id,
        .store_id = store_id,
        .seq = row->audit_seq + 1,
        .occurred_us = now,
        .actor_type = actor->audit_type,
        .actor_id = actor->id,
        .action = action,
        .previous_state = prev_state,
        .new_state = new_state,
        .reason = reason ? reason : "",
        .metadata = metadata,
    };
    int rc = pe_changeset_audit_metadata_text(metadata, &meta);
    rc = rc ? rc : pe_changeset_audit_hash(&r, row->audit_head, hash);
    if (rc != 0)
        goto out;
    snprintf(seq, sizeof seq, "%lld", (long long)r.seq);
    snprintf(us, sizeof us, "%lld", (long long)now);
    const char *params[] = {store_id,
                            us,
                            id,
                            cs_id,
                            seq,
                            actor->audit_type,
                            actor->id,
                            action,
                            prev_state,
                            new_state,
                            r.reason,
                            meta.data,
                            row->audit_head[0] ? row->audit_head : NULL,
                            hash};
    rc = pe_db_exec(conn,
                    "INSERT INTO audit_events (store_id, occurred_at, id, changeset_id, seq,"
                    " actor_type, actor_id, action, previous_state, new_state, reason, metadata,"
                    " prev_hash, hash) VALUES ($1::uuid,"
                    " 'epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3, $4,"
                    " $5::bigint, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14)",
                    14, params, NULL);
    if (rc != 0)
        goto out;
    const char *p2[] = {store_id, cs_id, seq, hash};
    rc = pe_db_exec(conn,
                    "UPDATE changesets SET audit_seq = $3::bigint, audit_head = $4"
                    " WHERE store_id = $1::uuid AND id = $2",
                    4, p2, NULL);
    if (rc != 0)
        goto out;
    row->audit_seq = r.seq;
    snprintf(row->audit_head, sizeof row->audit_head, "%s", hash);
out:
    pe_buf_free(&meta);
    return rc;
}

int pe_changeset_outbox_queue(pe_db_conn_t *conn, const char *store_id, const char *cs_id,
                              int64_t now_us, const char *kind, const char *title, const char *from,
                              const char *to, const char *reason,
                              const pe_changeset_actor_info_t *actor)
{
    char ts[32];
    pe_time_format_rfc3339(now_us, ts, sizeof ts);
    cJSON *p = cJSON_CreateObject();
    cJSON *a = p ? cJSON_AddObjectToObject(p, "actor") : NULL;
    bool ok =
        a && cJSON_AddStringToObject(p, "kind", kind) &&
        cJSON_AddStringToObject(p, "storeId", store_id) &&
        cJSON_AddStringToObject(p, "changesetId", cs_id) &&
        cJSON_AddStringToObject(p, "title", title) &&
        (from ? cJSON_AddStringToObject(p, "from", from) : cJSON_AddNullToObject(p, "from")) &&
        cJSON_AddStringToObject(p, "to", to) &&
        cJSON_AddStringToObject(p, "reason", reason ? reason : "") &&
        cJSON_AddStringToObject(p, "occurredAt", ts) &&
        cJSON_AddStringToObject(a, "type", actor->audit_type) &&
        cJSON_AddStringToObject(a, "id", actor->id);
    char *text = ok ? pe_json_print(p) : NULL;
    cJSON_Delete(p);
    if (!text)
        return PE_ENOMEM;
    const char *params[] = {store_id, kind, cs_id, text};
    int rc = pe_db_exec(conn,
                        "INSERT INTO notification_outbox (store_id, kind, changeset_id, payload)"
                        " VALUES ($1::uuid, $2, $3, $4::jsonb)",
                        4, params, NULL);
    free(text);
    return rc;
}

/* ---- create, patch ------------------------------------------------------------------------------
 */

static const char *const CLIENT_SECTIONS[] = {"hypothesis", "actionPlan", "guardrails",
                                              "rollbackPlan", "proofPlan"};

static char *section_text(const cJSON *doc, const char *key)
{
    return pe_json_print(cJSON_GetObjectItemCaseSensitive(doc, key));
}

static const char *sget(const cJSON *o, const char *path1, const char *path2)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, path1);
    if (path2)
        v = cJSON_GetObjectItemCaseSensitive(v, path2);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int pe_changeset_create(pe_changeset_service_t *svc, const char *store_id, const cJSON *doc,
                        const pe_changeset_actor_info_t *actor, cJSON **out,
                        pe_changeset_result_t *res)
{
    pe_refusal_t verr;
    pe_db_conn_t *conn = NULL;
    char *text[5] = {NULL};
    char id[PE_CHANGESET_ID_LEN];
    pe_changeset_row_t row = {0};
    pe_changeset_result_init(res);
    *out = NULL;
    int rc = pe_changeset_validate(doc, PE_CHANGESET_CLIENT, &verr);
    if (rc != 0)
        return pe_refuse(&res->refusal, rc, verr.code, "%s", verr.message);
    rc = PE_ENOMEM;
    for (size_t i = 0; i < 5; i++)
        if (!(text[i] = section_text(doc, CLIENT_SECTIONS[i])))
            goto out;
    pe_changeset_cuid(id);
    int64_t now = pe_changeset_now(svc);
    char now_text[32];
    pe_time_format_rfc3339(now, now_text, sizeof now_text);
    rc = pe_db_acquire(svc->cfg.db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0 || (rc = pe_db_begin(conn)) != 0)
        goto out;
    const char *params[] = {store_id,
                            id,
                            sget(doc, "guardrails", "riskLevel"),
                            sget(doc, "actionPlan", "type"),
                            sget(cJSON_GetObjectItemCaseSensitive(doc, "actionPlan"),
                                 "implementation", "featureFlagKey"),
                            text[0],
                            text[1],
                            text[2],
                            text[3],
                            text[4],
                            now_text};
    rc = pe_db_exec(conn,
                    "INSERT INTO changesets (store_id, id, status, approval_status, risk_level,"
                    " action_type, feature_flag_key, hypothesis, action_plan, guardrails,"
                    " rollback_plan, proof_plan, approval, execution, created_at, updated_at)"
                    " VALUES ($1::uuid, $2, 'DRAFT', 'pending', $3, $4, $5, $6::jsonb, $7::jsonb,"
                    " $8::jsonb, $9::jsonb, $10::jsonb, '{\"status\":\"pending\"}',"
                    " '{\"status\":\"DRAFT\"}', $11::timestamptz, $11::timestamptz)",
                    11, params, NULL);
    if (rc == PE_EINVAL && strcmp(pe_db_conn_sqlstate(conn), "23503") == 0)
        rc = PE_ENOTFOUND;
    if (rc != 0)
        goto out;
    row.audit_head[0] = '\0';
    cJSON *meta = cJSON_CreateObject();
    if (!meta || !cJSON_AddNumberToObject(meta, "version", 1)) {
        cJSON_Delete(meta);
        rc = PE_ENOMEM;
        goto out;
    }
    rc = pe_changeset_audit_append(conn, store_id, id, &row, actor, now, "created", NULL, "DRAFT",
                                   "ChangeSet created", meta);
    cJSON_Delete(meta);
    if (rc == 0)
        rc = pe_changeset_outbox_queue(conn, store_id, id, now, "changeset.created",
                                       "New ChangeSet proposed", NULL, "DRAFT",
                                       sget(doc, "hypothesis", "problem"), actor);
    if (rc == 0)
        rc = pe_db_commit(conn);
    if (rc == 0)
        rc = pe_changeset_doc_read(conn, store_id, id, out);
out:
    for (size_t i = 0; i < 5; i++)
        free(text[i]);
    pe_db_release(svc->cfg.db, conn);
    return rc;
}

int pe_changeset_patch(pe_changeset_service_t *svc, const char *store_id, const char *id,
                       int64_t expected_version, const cJSON *patch,
                       const pe_changeset_actor_info_t *actor, cJSON **out,
                       pe_changeset_result_t *res)
{
    pe_db_conn_t *conn = NULL;
    pe_changeset_row_t row = {0};
    char *text[5] = {NULL};
    cJSON *fields = NULL;
    int64_t now = pe_changeset_now(svc);
    char now_text[32];
    pe_time_format_rfc3339(now, now_text, sizeof now_text);
    pe_changeset_result_init(res);
    *out = NULL;
    if (!cJSON_IsObject(patch))
        return pe_refuse(&res->refusal, PE_EINVAL, "invalid_type",
                         "the patch must be a JSON object");
    for (const cJSON *kv = patch->child; kv; kv = kv->next) {
        bool ok = strcmp(kv->string, "version") == 0;
        for (size_t i = 0; i < 5 && !ok; i++)
            ok = strcmp(kv->string, CLIENT_SECTIONS[i]) == 0;
        if (!ok)
            return pe_refuse(
                &res->refusal, PE_EINVAL, "unknown_field",
                "%.64s: cannot be patched (only hypothesis, actionPlan, guardrails, "
                "rollbackPlan and proofPlan; the lifecycle moves through /transitions)",
                kv->string);
    }
    int rc = pe_db_acquire(svc->cfg.db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0 || (rc = pe_db_begin(conn)) != 0)
        goto out;
    rc = pe_changeset_row_load(conn, store_id, id, true, &row);
    if (rc != 0)
        goto out;
    res->version = row.version;
    if (expected_version != row.version) {
        rc = pe_refuse(&res->refusal, PE_ECONFLICT, "stale_version",
                       "version %lld is stale: the ChangeSet is at version %lld; read it again",
                       (long long)expected_version, (long long)row.version);
        goto out;
    }
    if (row.state != PE_CS_DRAFT) {
        rc = pe_refuse(&res->refusal, PE_ECONFLICT, "not_editable",
                       "only a DRAFT ChangeSet can be edited; this one is %s",
                       pe_changeset_state_name(row.state));
        goto out;
    }
    rc = PE_ENOMEM;
    if (!(fields = cJSON_CreateArray()))
        goto out;
    for (size_t i = 0; i < 5; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(patch, CLIENT_SECTIONS[i]);
        if (!v)
            continue;
        cJSON *copy = cJSON_Duplicate(v, true);
        if (!copy || !cJSON_ReplaceItemInObjectCaseSensitive(row.doc, CLIENT_SECTIONS[i], copy)) {
            cJSON_Delete(copy);
            goto out;
        }
        cJSON_AddItemToArray(fields, cJSON_CreateString(CLIENT_SECTIONS[i]));
    }
    cJSON_ReplaceItemInObjectCaseSensitive(row.doc, "version",
                                           cJSON_CreateNumber((double)(row.version + 1)));
    cJSON_AddArrayToObject(row.doc, "auditTrail");
    pe_refusal_t verr;
    rc = pe_changeset_validate(row.doc, PE_CHANGESET_FULL, &verr);
    if (rc != 0) {
        rc = pe_refuse(&res->refusal, rc, verr.code, "%s", verr.message);
        goto out;
    }
    rc = PE_ENOMEM;
    for (size_t i = 0; i < 5; i++)
        if (!(text[i] = section_text(row.doc, CLIENT_SECTIONS[i])))
            goto out;
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(row.doc, "actionPlan");
    const char *params[] = {store_id,
                            id,
                            text[0],
                            text[1],
                            text[2],
                            text[3],
                            text[4],
                            sget(row.doc, "guardrails", "riskLevel"),
                            sget(ap, "type", NULL),
                            sget(ap, "implementation", "featureFlagKey"),
                            now_text};
    rc = pe_db_exec(conn,
                    "UPDATE changesets SET hypothesis = $3::jsonb, action_plan = $4::jsonb,"
                    " guardrails = $5::jsonb, rollback_plan = $6::jsonb, proof_plan = $7::jsonb,"
                    " risk_level = $8, action_type = $9, feature_flag_key = $10,"
                    " version = version + 1, updated_at = $11::timestamptz"
                    " WHERE store_id = $1::uuid AND id = $2",
                    11, params, NULL);
    if (rc != 0)
        goto out;
    cJSON *meta = cJSON_CreateObject();
    if (!meta || !cJSON_AddItemToObject(meta, "fields", fields) ||
        !cJSON_AddNumberToObject(meta, "version", (double)(row.version + 1))) {
        if (meta && cJSON_GetObjectItemCaseSensitive(meta, "fields"))
            fields = NULL;
        cJSON_Delete(meta);
        rc = PE_ENOMEM;
        goto out;
    }
    fields = NULL;
    rc = pe_changeset_audit_append(conn, store_id, id, &row, actor, now, "updated", "DRAFT",
                                   "DRAFT", "ChangeSet edited", meta);
    cJSON_Delete(meta);
    if (rc == 0)
        rc = pe_db_commit(conn);
    if (rc == 0)
        rc = pe_changeset_doc_read(conn, store_id, id, out);
out:
    for (size_t i = 0; i < 5; i++)
        free(text[i]);
    cJSON_Delete(fields);
    pe_changeset_row_free(&row);
    pe_db_release(svc->cfg.db, conn);
    return rc;
}

int pe_changeset_expire_due(pe_changeset_service_t *svc, const char *store_id, size_t *count)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    char now[32];
    *count = 0;
    pe_time_format_rfc3339(pe_changeset_now(svc), now, sizeof now);
    const char *params[] = {now, store_id};
    int rc = pe_db_acquire(svc->cfg.db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc == 0)
        rc = pe_db_exec(conn,
                        "SELECT store_id, id FROM changesets WHERE status = 'PENDING_APPROVAL'"
                        " AND expires_at <= $1::timestamptz"
                        " AND ($2::uuid IS NULL OR store_id = $2::uuid)"
                        " ORDER BY expires_at LIMIT 500",
                        2, params, &res);
    pe_db_release(svc->cfg.db, conn);
    if (rc != 0)
        return rc;
    pe_changeset_actor_info_t system = {PE_CS_BY_SYSTEM, "system", "approval-expiry"};
    for (size_t i = 0; i < pe_db_result_rows(res); i++) {
        char reason[128];
        snprintf(reason, sizeof reason, "Approval expired after %u hours without a decision",
                 svc->cfg.approval_timeout_s / 3600);
        pe_changeset_transition_req_t req = {
            .to = "ARCHIVED", .reason = reason, .expected_version = -1};
        pe_changeset_result_t r;
        cJSON *doc = NULL;
        int trc = pe_changeset_transition(svc, pe_db_result_get(res, i, 0),
                                          pe_db_result_get(res, i, 1), &req, &system, &doc, &r);
        cJSON_Delete(doc);
        pe_changeset_result_free(&r);
        if (trc == 0)
            (*count)++;
        else if (trc != PE_ECONFLICT) /* someone decided in between: fine */
            rc = trc;
    }
    pe_db_result_free(res);
    return rc;
}

/* ---- alerts ------------------------------------------------------------------------------- */

typedef struct {
    const char *store_id, *id, *kind, *title, *reason;
    const pe_changeset_actor_info_t *actor;
    bool *queued;
    int64_t now_us;
} alert_ctx_t;

static int alert_tx(pe_db_conn_t *conn, void *arg)
{
    alert_ctx_t *a = arg;
    pe_db_result_t *res = NULL;
    const char *p[] = {a->store_id, a->id, a->kind};
    /* the row lock serialises two instances alerting about one ChangeSet */
    int rc = pe_db_exec(conn,
                        "SELECT c.status, EXISTS (SELECT 1 FROM notification_outbox o"
                        "   WHERE o.store_id = c.store_id AND o.changeset_id = c.id"
                        "     AND o.kind = $3)"
                        "  FROM changesets c WHERE c.store_id = $1::uuid AND c.id = $2 FOR UPDATE",
                        3, p, &res);
    if (rc == 0 && pe_db_result_rows(res) == 0)
        rc = PE_ENOTFOUND;
    if (rc == 0 && pe_db_result_get(res, 0, 1)[0] != 't') {
        const char *state = pe_db_result_get(res, 0, 0);
        rc = pe_changeset_outbox_queue(conn, a->store_id, a->id, a->now_us, a->kind, a->title,
                                       state, state, a->reason, a->actor);
        *a->queued = rc == 0;
    }
    pe_db_result_free(res);
    return rc;
}

int pe_changeset_alert(pe_changeset_service_t *svc, const char *store_id, const char *id,
                       const char *kind, const char *title, const char *reason,
                       const pe_changeset_actor_info_t *actor, bool *queued)
{
    *queued = false;
    if (!pe_changeset_cuid_valid(id))
        return PE_ENOTFOUND;
    alert_ctx_t a = {store_id, id, kind, title, reason, actor, queued, pe_changeset_now(svc)};
    int rc = pe_db_tx(svc->cfg.db, ACQUIRE_TIMEOUT_MS, alert_tx, &a);
    if (rc != 0)
        *queued = false;
    return rc;
}
