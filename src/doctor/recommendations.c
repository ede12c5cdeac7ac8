/*
 * recommendations.c — recommendations, stored: the playbooks applied to a store's latest
 * findings, each carried by an Autopilot ChangeSet, ranked by expected profit ÷ effort, at most
 * PE_DOCTOR_MAX_ACTIVE before the merchant at once (recommendations, 0017_recommendations.sql).
 *
 * A recommendation's life:
 *
 *              generate, guardrails pass      promote (a free slot)
 *   (finding) ──────────────────────────▶ queued ────────────────────────▶ active ──approve──▶
 * approved │                                ChangeSet DRAFT   ChangeSet submitted, │ │ generate,
 * guardrails refuse            ▲ guardrails   guardrails      │ guardrails refuse
 *       └────────────────────────────▶ blocked ──┘ pass again   checked again   │ on approval
 *                                      ChangeSet submitted ◀────────────────────┘
 *                                      (force-approve with confirmation)
 *   active | queued | blocked ──reject──▶ rejected (ChangeSet ARCHIVED: rejected)
 *   active | queued | blocked ──finding gone──▶ retired (ChangeSet ARCHIVED: withdrawn/archived)
 *
 *   what                         function                              ChangeSet transition
 *   generate                     pe_doctor_recommend → propose         create (DRAFT)
 *   promote                      promote                               DRAFT → PENDING_APPROVAL
 *   approve                      pe_doctor_recommendation_approve      PENDING_APPROVAL → ACTIVE
 *   reject                       pe_doctor_recommendation_reject       PENDING_APPROVAL → ARCHIVED
 *   retire                       retire                                → ARCHIVED (autopilot)
 *   the ChangeSet moved by       reconcile                             (reads its status)
 *     someone else
 *
 * Invariants:
 *  1. Every operation that changes a store's recommendations holds the store's advisory lock
 *     (LOCK_CLASS, hashtext(store_id)) on its own connection for its whole run, so promotion
 *     never fills a slot twice, across threads and instances.
 *  2. The ChangeSet is the truth of a decision: reconcile brings a recommendation in line with
 *     its ChangeSet before anything reads or decides (approved in the ChangeSet API, expired,
 *     rejected elsewhere, or a crash between the two writes).
 *  3. At most PE_DOCTOR_MAX_ACTIVE recommendations are active, at most one per finding, and none
 *     for a finding whose approved experiment is still running. A blocked one is shown beside
 *     them (the guardrail's own words, force-approvable) but takes no slot: nothing the merchant
 *     can run waits behind a change the guardrails refuse.
 *  4. The same playbook × finding is never proposed while one is open or approved, nor within
 *     PE_DOCTOR_REJECT_MEMORY_DAYS of a rejection (the unique index backs the first rule).
 *  5. "Now" comes from the caller; every statement filters by store_id.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/aggregate.h"
#include "pe/doctor.h"

#define ACQUIRE_TIMEOUT_MS 5000
#define LOCK_CLASS         "1919248234" /* arbitrary, fixed: the advisory lock's first key */
#define JOB_LOCK_KEY       "7262937150124823904" /* "pe recommend", beside diagnose's */
#define US_PER_DAY         (86400LL * 1000000LL)

struct pe_doctor_recommender {
    pe_db_pool_t *db;
    pe_changeset_service_t *changesets;
    const pe_guardrail_check_t *const *extra_checks;
    const pe_doctor_playbook_t *playbooks[PE_DOCTOR_MAX_PLAYBOOKS];
    size_t nplaybooks;
};

static const pe_changeset_actor_info_t AUTOPILOT = {PE_CS_BY_AUTOPILOT, "autopilot", "recommender"};

pe_doctor_recommender_t *pe_doctor_recommender_new(const pe_doctor_recommender_config_t *cfg,
                                                   pe_refusal_t *err)
{
    pe_doctor_recommender_t *r = calloc(1, sizeof *r);
    if (!r) {
        pe_refuse(err, PE_ENOMEM, "internal", "out of memory");
        return NULL;
    }
    r->db = cfg->db;
    r->changesets = cfg->changesets;
    r->extra_checks = cfg->extra_checks;
    size_t n = 0;
    const pe_doctor_playbook_t *builtin = pe_doctor_playbooks_builtin(&n);
    for (size_t i = 0; i < n; i++)
        r->playbooks[r->nplaybooks++] = &builtin[i];
    for (const pe_doctor_playbook_t *const *p = cfg->playbooks; p && *p; p++) {
        if (r->nplaybooks == PE_DOCTOR_MAX_PLAYBOOKS) {
            pe_refuse(err, PE_EINVAL, "too_many", "playbooks: at most %d, built-ins included",
                      PE_DOCTOR_MAX_PLAYBOOKS);
            goto fail;
        }
        if (pe_doctor_playbook_check(*p, err) != 0)
            goto fail;
        for (size_t i = 0; i < r->nplaybooks; i++)
            if (strcmp(r->playbooks[i]->key, (*p)->key) == 0) {
                pe_refuse(err, PE_EINVAL, "duplicate", "%s.key: already registered", (*p)->key);
                goto fail;
            }
        r->playbooks[r->nplaybooks++] = *p;
    }
    return r;
fail:
    free(r);
    return NULL;
}

void pe_doctor_recommender_free(pe_doctor_recommender_t *r)
{
    free(r);
}

/* ---- small helpers -------------------------------------------------------------------------- */

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Locks the store's recommendations on conn (invariant 1). */
static int lock_store(pe_db_conn_t *conn, const char *store_id)
{
    const char *p[] = {store_id};
    return pe_db_exec(conn, "SELECT pg_advisory_lock(" LOCK_CLASS ", hashtext($1))", 1, p, NULL);
}

static void unlock_store(pe_db_conn_t *conn, const char *store_id)
{
    const char *p[] = {store_id};
    pe_db_exec(conn, "SELECT pg_advisory_unlock(" LOCK_CLASS ", hashtext($1))", 1, p, NULL);
}

/* ---- reconcile: the ChangeSet is the truth (invariant 2) ------------------------------------ */

static const char SQL_RECONCILE[] =
    "UPDATE recommendations r"
    "   SET status = CASE WHEN c.status IN ('ACTIVE', 'MEASURING', 'PROVEN', 'ROLLED_BACK',"
    "                                       'PERMANENT') THEN 'approved'"
    "                     WHEN c.approval_status = 'rejected' THEN 'rejected'"
    "                     ELSE 'retired' END,"
    "       reason = coalesce(r.reason, CASE WHEN c.approval_status = 'expired'"
    "                     THEN 'the approval expired' END),"
    "       decided_at = $2::timestamptz, updated_at = $2::timestamptz"
    "  FROM changesets c"
    " WHERE r.store_id = $1::uuid AND c.store_id = r.store_id AND c.id = r.changeset_id"
    "   AND r.status IN ('active', 'queued', 'blocked')"
    "   AND c.status NOT IN ('DRAFT', 'PENDING_APPROVAL')";

static int reconcile(pe_db_conn_t *conn, const char *store_id, const char *now)
{
    const char *p[] = {store_id, now};
    return pe_db_exec(conn, SQL_RECONCILE, 2, p, NULL);
}

/* ---- reading ----------------------------------------------------------------------------------
 */

/* Open ones first (shown by priority, then queued), then the decided ones, newest first. The
 * rank counts the open ones: shown first. */
static const char SQL_LIST[] =
    "SELECT id, status, changeset_id, violations, reason, created_at, updated_at, decided_at,"
    "       doc,"
    "       CASE WHEN status IN ('active', 'blocked', 'queued') THEN row_number() OVER ("
    "            ORDER BY status IN ('active', 'blocked', 'queued') DESC,"
    "                     status IN ('active', 'blocked') DESC, priority DESC, created_at, id)"
    "       END AS rank, finding_id"
    "  FROM recommendations"
    " WHERE store_id = $1::uuid";

static cJSON *row_json(const pe_db_result_t *res, size_t i)
{
    cJSON *o = NULL, *violations = NULL;
    if (pe_db_result_json(res, i, 8, &o) != 0 || pe_db_result_json(res, i, 3, &violations) != 0) {
        cJSON_Delete(o);
        return NULL;
    }
    bool ok =
        cJSON_AddStringToObject(o, "id", pe_db_result_get(res, i, 0)) &&
        cJSON_AddStringToObject(o, "status", pe_db_result_get(res, i, 1)) &&
        (pe_db_result_isnull(res, i, 9)
             ? cJSON_AddNullToObject(o, "rank") != NULL
             : cJSON_AddNumberToObject(o, "rank", atof(pe_db_result_get(res, i, 9))) != NULL) &&
        cJSON_AddStringToObject(o, "changesetId", pe_db_result_get(res, i, 2)) &&
        cJSON_AddItemToObject(o, "violations", violations);
    /* the finding as the latest doctor run has it (the document keeps the first run's id) */
    cJSON_DeleteItemFromObject(o, "findingId");
    ok = ok && cJSON_AddStringToObject(o, "findingId", pe_db_result_get(res, i, 10));
    if (!ok)
        cJSON_Delete(violations);
    ok = ok &&
         (pe_db_result_isnull(res, i, 4)
              ? cJSON_AddNullToObject(o, "reason") != NULL
              : cJSON_AddStringToObject(o, "reason", pe_db_result_get(res, i, 4)) != NULL) &&
         cJSON_AddStringToObject(o, "createdAt", pe_db_result_get(res, i, 5)) &&
         cJSON_AddStringToObject(o, "updatedAt", pe_db_result_get(res, i, 6)) &&
         (pe_db_result_isnull(res, i, 7)
              ? cJSON_AddNullToObject(o, "decidedAt") != NULL
              : cJSON_AddStringToObject(o, "decidedAt", pe_db_result_get(res, i, 7)) != NULL);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The rows of SQL_LIST + extra (a WHERE continuation and ORDER BY) as an array. */
static int read_list(pe_db_conn_t *conn, const char *extra, int n, const char *const *p,
                     cJSON **out)
{
    char sql[2048];
    snprintf(sql, sizeof sql, "SELECT * FROM (%s) l %s", SQL_LIST, extra);
    pe_db_result_t *res = NULL;
    cJSON *arr = NULL;
    int rc = pe_db_exec(conn, sql, n, p, &res);
    if (rc != 0)
        goto out;
    rc = PE_ENOMEM;
    arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < pe_db_result_rows(res); i++) {
        cJSON *o = row_json(res, i);
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            goto out;
        }
    }
    if (!arr)
        goto out;
    *out = arr;
    arr = NULL;
    rc = 0;
out:
    cJSON_Delete(arr);
    pe_db_result_free(res);
    return rc;
}

static const char LIST_ORDER[] =
    " ORDER BY l.rank NULLS LAST, l.decided_at DESC NULLS LAST, l.created_at DESC, l.id";

/* ---- promote: fill the free slots (invariant 3) -----------------------------------------------
 */

/* Queued ones whose finding has no active one and no running experiment, best first. */
static const char SQL_PROMOTABLE[] =
    "SELECT r.id, r.finding_key, r.changeset_id,"
    "       (SELECT count(*) FROM recommendations s WHERE s.store_id = r.store_id"
    "          AND s.status = 'active')"
    "  FROM recommendations r"
    " WHERE r.store_id = $1::uuid AND r.status = 'queued'"
    "   AND NOT EXISTS (SELECT 1 FROM recommendations s WHERE s.store_id = r.store_id"
    "                     AND s.finding_key = r.finding_key AND s.status = 'active')"
    "   AND NOT EXISTS (SELECT 1 FROM recommendations s JOIN changesets c"
    "                     ON c.store_id = s.store_id AND c.id = s.changeset_id"
    "                    WHERE s.store_id = r.store_id AND s.finding_key = r.finding_key"
    "                      AND s.status = 'approved' AND c.status IN ('ACTIVE', 'MEASURING'))"
    " ORDER BY r.priority DESC, r.created_at, r.id";

static const char SQL_SHOW[] =
    "UPDATE recommendations SET status = $3, violations = $4::jsonb, updated_at = $5::timestamptz"
    " WHERE store_id = $1::uuid AND id = $2::uuid";

/* The store's guardrails on changeset_id: *violations (caller deletes). */
static int check_guardrails(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                            const char *changeset_id, cJSON **violations)
{
    cJSON *cs = NULL;
    int rc = pe_changeset_get(r->changesets, store_id, changeset_id, &cs);
    if (rc == 0)
        rc = pe_guardrails_check(conn, store_id, cs, r->extra_checks, violations);
    cJSON_Delete(cs);
    return rc;
}

/* Puts a DRAFT proposal before the merchant: its ChangeSet DRAFT → PENDING_APPROVAL, and the
 * recommendation active, or blocked with violations when it has any. */
static int show(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                const char *id, const char *cs_id, const cJSON *violations, const char *now)
{
    pe_changeset_transition_req_t t = {.to = "PENDING_APPROVAL", .expected_version = -1};
    pe_changeset_result_t why = {0};
    cJSON *moved = NULL;
    int rc = pe_changeset_transition(r->changesets, store_id, cs_id, &t, &AUTOPILOT, &moved, &why);
    cJSON_Delete(moved);
    if (rc == PE_ECONFLICT && strcmp(why.refusal.code, "invalid_transition") == 0)
        rc = 0; /* submitted already: a blocked one the guardrails let through again */
    if (rc != 0)
        pe_log(PE_LOG_WARN, "recommendation_submit_failed", "store %s, ChangeSet %s: %s", store_id,
               cs_id, why.refusal.code[0] ? why.refusal.message : pe_strerror(rc));
    pe_changeset_result_free(&why);
    char *vtext = rc == 0 ? pe_json_print(violations) : NULL;
    if (rc == 0 && !vtext)
        rc = PE_ENOMEM;
    if (rc == 0) {
        const char *u[] = {store_id, id, cJSON_GetArraySize(violations) > 0 ? "blocked" : "active",
                           vtext, now};
        rc = pe_db_exec(conn, SQL_SHOW, 5, u, NULL);
    }
    free(vtext);
    return rc;
}

static int promote(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                   const char *now)
{
    const char *p[] = {store_id};
    pe_db_result_t *res = NULL;
    int rc = pe_db_exec(conn, SQL_PROMOTABLE, 1, p, &res);
    size_t rows = rc == 0 ? pe_db_result_rows(res) : 0;
    long shown = rows ? atol(pe_db_result_get(res, 0, 3)) : 0;
    char **taken = rows ? calloc(rows, sizeof *taken) : NULL;
    size_t ntaken = 0;
    if (rows && !taken)
        rc = PE_ENOMEM;
    for (size_t i = 0; rc == 0 && i < rows && shown < PE_DOCTOR_MAX_ACTIVE; i++) {
        const char *id = pe_db_result_get(res, i, 0), *key = pe_db_result_get(res, i, 1);
        const char *cs_id = pe_db_result_get(res, i, 2);
        bool dup = false;
        for (size_t j = 0; j < ntaken; j++)
            dup = dup || strcmp(taken[j], key) == 0;
        if (dup)
            continue;
        /* the guardrails may have changed since it was proposed: checked again */
        cJSON *violations = NULL;
        rc = check_guardrails(r, conn, store_id, cs_id, &violations);
        if (rc == 0)
            rc = show(r, conn, store_id, id, cs_id, violations, now);
        if (rc == 0 && cJSON_GetArraySize(violations) == 0) {
            taken[ntaken++] = (char *)key;
            shown++;
        }
        cJSON_Delete(violations);
    }
    free(taken);
    pe_db_result_free(res);
    return rc;
}

/* ---- generate ------------------------------------------------------------------------------- */

static const char SQL_LATEST_RUN[] = "SELECT id, doc FROM diagnostic_runs WHERE store_id = $1::uuid"
                                     " ORDER BY created_at DESC, id DESC LIMIT 1";

/* Whether the store has sessions before the window (a pre-period for CUPED), its guardrails
 * are read through pe_guardrails_get; and the category a category playbook scopes: the one with
 * the highest gross margin among those with at least 5 % of the window's revenue and every
 * cost known. */
static const char SQL_HISTORY[] =
    "SELECT EXISTS (SELECT 1 FROM agg_sessions WHERE store_id = $1::uuid AND day < $2::date)";

static const char SQL_CATEGORY[] =
    "WITH c AS (SELECT sp.category, sum(sp.revenue)::float8 AS revenue,"
    "                  sum(sp.units * p.cost)::float8 AS cost,"
    "                  bool_and(p.cost IS NOT NULL) AS known"
    "             FROM agg_session_products sp"
    "             LEFT JOIN products p ON p.store_id = sp.store_id AND p.sku = sp.product_id"
    "            WHERE sp.store_id = $1::uuid AND sp.day BETWEEN $2::date AND $3::date"
    "              AND sp.purchases > 0 AND sp.category <> ''"
    "            GROUP BY sp.category),"
    "     t AS (SELECT sum(revenue) AS total FROM c)"
    "SELECT c.category, 1 - c.cost / c.revenue, c.revenue / t.total FROM c, t"
    " WHERE c.known AND c.revenue > 0 AND t.total > 0 AND c.revenue / t.total >= 0.05"
    " ORDER BY 2 DESC, c.category LIMIT 1";

static const char SQL_EXISTING[] =
    "SELECT playbook, finding_key, status,"
    "       status = 'rejected' AND decided_at > $2::timestamptz - interval '1 day' * $3::int"
    "  FROM recommendations WHERE store_id = $1::uuid";

static const char SQL_INSERT[] =
    "INSERT INTO recommendations (store_id, id, playbook, finding_key, finding_id, status,"
    "                             priority, changeset_id, created_at, updated_at, doc)"
    " VALUES ($1::uuid, $2::uuid, $3, $4, $5::uuid, 'queued', $6::float8, $7, $8::timestamptz,"
    "         $8::timestamptz, $9::jsonb)"
    " ON CONFLICT DO NOTHING";

static const char SQL_STILL_THERE[] =
    "UPDATE recommendations SET finding_id = $3::uuid, updated_at = $4::timestamptz"
    " WHERE store_id = $1::uuid AND status IN ('active', 'queued', 'blocked')"
    "   AND finding_key = $2 AND finding_id <> $3::uuid";

static const char SQL_OPEN[] =
    "SELECT r.id, r.finding_key, r.changeset_id, c.status FROM recommendations r"
    "  JOIN changesets c ON c.store_id = r.store_id AND c.id = r.changeset_id"
    " WHERE r.store_id = $1::uuid AND r.status IN ('active', 'queued', 'blocked')";

static const char SQL_BLOCKED[] =
    "SELECT id, changeset_id FROM recommendations WHERE store_id = $1::uuid AND status = 'blocked'";

static const char SQL_UNBLOCK[] =
    "UPDATE recommendations SET status = 'queued', violations = '[]', updated_at = $3::timestamptz"
    " WHERE store_id = $1::uuid AND id = $2::uuid AND status = 'blocked'";

/* A blocked recommendation the store's guardrails now let through goes back in the queue. */
static int unblock(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                   const char *now)
{
    const char *p[] = {store_id};
    pe_db_result_t *res = NULL;
    int rc = pe_db_exec(conn, SQL_BLOCKED, 1, p, &res);
    for (size_t i = 0; rc == 0 && i < pe_db_result_rows(res); i++) {
        cJSON *violations = NULL;
        rc = check_guardrails(r, conn, store_id, pe_db_result_get(res, i, 1), &violations);
        if (rc == 0 && cJSON_GetArraySize(violations) == 0) {
            const char *u[] = {store_id, pe_db_result_get(res, i, 0), now};
            rc = pe_db_exec(conn, SQL_UNBLOCK, 3, u, NULL);
        }
        cJSON_Delete(violations);
    }
    pe_db_result_free(res);
    return rc;
}

static const char SQL_RETIRE[] =
    "UPDATE recommendations SET status = 'retired', reason = $3, decided_at = $4::timestamptz,"
    "       updated_at = $4::timestamptz"
    " WHERE store_id = $1::uuid AND id = $2::uuid AND status IN ('active', 'queued', 'blocked')";

typedef struct {
    const pe_doctor_playbook_t *pb;
    size_t finding; /* index into the run's findings */
    pe_doctor_finding_t f;
    pe_doctor_impact_t impact;
} candidate_t;

static int by_priority(const void *a, const void *b)
{
    const candidate_t *x = a, *y = b;
    if (x->impact.priority != y->impact.priority)
        return x->impact.priority > y->impact.priority ? -1 : 1;
    if (x->finding != y->finding)
        return x->finding < y->finding ? -1 : 1;
    return strcmp(x->pb->key, y->pb->key);
}

/* The run's findings' keys, in order. */
typedef struct {
    const cJSON *findings;
    size_t count;
    pe_doctor_finding_t *parsed; /* [count] */
    char (*keys)[PE_DOCTOR_TEXT_MAX];
} run_findings_t;

static int read_economics(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                          const cJSON *run, pe_doctor_economics_t *eco, cJSON **guardrails,
                          char category[PE_DOCTOR_TEXT_MAX])
{
    const char *from = str(run, "from"), *to = str(run, "to");
    if (!from || !to)
        return PE_EINTERNAL;
    int32_t a = 0, b = 0;
    if (pe_aggregate_date_parse(from, &a) != 0 || pe_aggregate_date_parse(to, &b) != 0)
        return PE_EINTERNAL;
    eco->margin = fmin(fmax(cJSON_GetNumberValue(get(get(run, "margin"), "value")), 0), 1);
    eco->shipping_share = PE_DOCTOR_SHIPPING_SHARE;
    eco->window_days = b >= a ? b - a + 1 : 1;
    eco->store_sessions = cJSON_GetNumberValue(get(run, "sessions"));
    eco->currency = str(run, "currency");
    pe_db_result_t *res = NULL;
    const char *p[] = {store_id, from, to};
    int rc = pe_db_exec(conn, SQL_HISTORY, 2, p, &res);
    if (rc != 0)
        goto out;
    eco->has_pre_period = pe_db_result_get(res, 0, 0)[0] == 't';
    pe_db_result_free(res);
    res = NULL;
    rc = pe_db_exec(conn, SQL_CATEGORY, 3, p, &res);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) == 1) {
        snprintf(category, PE_DOCTOR_TEXT_MAX, "%s", pe_db_result_get(res, 0, 0));
        eco->category = category;
        eco->category_share = atof(pe_db_result_get(res, 0, 2));
    }
    rc = pe_guardrails_get(r->db, store_id, guardrails);
    eco->guardrails = *guardrails;
out:
    pe_db_result_free(res);
    return rc;
}

/* Withdraws the open recommendations whose finding is gone; refreshes the others' finding id. */
static int retire_gone(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                       const run_findings_t *rf, const char *now, size_t *retired)
{
    const char *p[] = {store_id};
    pe_db_result_t *open = NULL;
    int rc = pe_db_exec(conn, SQL_OPEN, 1, p, &open);
    for (size_t i = 0; rc == 0 && i < pe_db_result_rows(open); i++) {
        const char *id = pe_db_result_get(open, i, 0), *key = pe_db_result_get(open, i, 1);
        const char *cs_id = pe_db_result_get(open, i, 2);
        bool present = false;
        for (size_t j = 0; j < rf->count && !present; j++)
            present = strcmp(rf->keys[j], key) == 0;
        if (present)
            continue;
        static const char why[] = "the finding is gone from the latest diagnostic run";
        pe_changeset_transition_req_t t = {.to = "ARCHIVED", .reason = why, .expected_version = -1};
        pe_changeset_result_t res = {0};
        cJSON *moved = NULL;
        rc = pe_changeset_transition(r->changesets, store_id, cs_id, &t, &AUTOPILOT, &moved, &res);
        cJSON_Delete(moved);
        pe_changeset_result_free(&res);
        if (rc == 0) {
            const char *u[] = {store_id, id, why, now};
            rc = pe_db_exec(conn, SQL_RETIRE, 4, u, NULL);
            (*retired)++;
        }
    }
    for (size_t j = 0; rc == 0 && j < rf->count; j++) {
        const char *fid = str(cJSON_GetArrayItem(rf->findings, (int)j), "id");
        const char *u[] = {store_id, rf->keys[j], fid ? fid : "", now};
        if (fid)
            rc = pe_db_exec(conn, SQL_STILL_THERE, 4, u, NULL);
    }
    pe_db_result_free(open);
    return rc;
}

/* True when playbook × key may be proposed (invariant 4). */
static bool may_propose(const pe_db_result_t *existing, const char *playbook, const char *key)
{
    for (size_t i = 0; i < pe_db_result_rows(existing); i++) {
        if (strcmp(pe_db_result_get(existing, i, 0), playbook) != 0 ||
            strcmp(pe_db_result_get(existing, i, 1), key) != 0)
            continue;
        const char *status = pe_db_result_get(existing, i, 2);
        if (strcmp(status, "retired") == 0)
            continue;
        if (strcmp(status, "rejected") == 0 && pe_db_result_get(existing, i, 3)[0] != 't')
            continue;
        return false;
    }
    return true;
}

/* How many of the finding's recommendations are open or approved: each takes one of its
 * PE_DOCTOR_PER_FINDING places (a rejected or retired one frees its place for another
 * playbook). */
static size_t taken_places(const pe_db_result_t *existing, const char *key)
{
    size_t n = 0;
    for (size_t i = 0; i < pe_db_result_rows(existing); i++) {
        const char *status = pe_db_result_get(existing, i, 2);
        n += strcmp(pe_db_result_get(existing, i, 1), key) == 0 &&
             strcmp(status, "rejected") != 0 && strcmp(status, "retired") != 0;
    }
    return n;
}

/* One new recommendation: the ChangeSet (DRAFT) and the row (queued). */
static int propose(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                   const candidate_t *c, const run_findings_t *rf, const pe_doctor_economics_t *eco,
                   const char *now)
{
    const cJSON *finding = cJSON_GetArrayItem(rf->findings, (int)c->finding);
    cJSON *rec = NULL, *doc = NULL, *stored = NULL, *violations = NULL;
    char *text = NULL;
    pe_changeset_result_t why = {0};
    int rc = pe_doctor_recommendation_build(c->pb, &c->f, finding, eco, &c->impact, &rec, &doc);
    if (rc != 0)
        goto out;
    rc = pe_changeset_create(r->changesets, store_id, doc, &AUTOPILOT, &stored, &why);
    if (rc != 0) {
        pe_log(PE_LOG_ERROR, "recommendation_invalid", "store %s, playbook %s: %s", store_id,
               c->pb->key, why.refusal.code[0] ? why.refusal.message : pe_strerror(rc));
        goto out;
    }
    char id[PE_UUID_TEXT_LEN], priority[32];
    pe_random_uuid(id);
    snprintf(priority, sizeof priority, "%.17g", c->impact.priority);
    text = pe_json_print(rec);
    const char *fid = str(finding, "id");
    if (!text || !fid) {
        rc = text ? PE_EINTERNAL : PE_ENOMEM;
        goto out;
    }
    const char *p[] = {store_id,          id,  c->pb->key, rf->keys[c->finding], fid, priority,
                       str(stored, "id"), now, text};
    rc = pe_db_exec(conn, SQL_INSERT, 9, p, NULL);
    /* what the guardrails refuse is shown at once as blocked, in their words */
    if (rc == 0)
        rc = pe_guardrails_check(conn, store_id, stored, r->extra_checks, &violations);
    if (rc == 0 && cJSON_GetArraySize(violations) > 0)
        rc = show(r, conn, store_id, id, str(stored, "id"), violations, now);
out:
    cJSON_Delete(violations);
    pe_changeset_result_free(&why);
    cJSON_Delete(rec);
    cJSON_Delete(doc);
    cJSON_Delete(stored);
    free(text);
    return rc;
}

/* The candidates of every finding: each matching playbook with a positive expected profit that
 * may be proposed, the best of them in the finding's free places (PE_DOCTOR_PER_FINDING less
 * those taken), best first. */
static int candidates_of(pe_doctor_recommender_t *r, const run_findings_t *rf,
                         const pe_doctor_economics_t *eco, const pe_db_result_t *existing,
                         candidate_t **out, size_t *n)
{
    *n = 0;
    *out = NULL;
    candidate_t *all = calloc(rf->count * r->nplaybooks + 1, sizeof *all);
    if (!all)
        return PE_ENOMEM;
    size_t count = 0;
    for (size_t i = 0; i < rf->count; i++) {
        size_t first = count;
        for (size_t k = 0; k < r->nplaybooks; k++) {
            const pe_doctor_playbook_t *pb = r->playbooks[k];
            candidate_t *c = &all[count];
            if (!pe_doctor_playbook_matches(pb, &rf->parsed[i]) ||
                !may_propose(existing, pb->key, rf->keys[i]) ||
                pe_doctor_impact(pb, &rf->parsed[i], eco, &c->impact) != 0 ||
                !pe_doctor_impact_worth_proposing(&c->impact))
                continue;
            c->pb = pb;
            c->finding = i;
            c->f = rf->parsed[i];
            count++;
        }
        qsort(all + first, count - first, sizeof *all, by_priority);
        size_t taken = taken_places(existing, rf->keys[i]);
        size_t places = taken < PE_DOCTOR_PER_FINDING ? PE_DOCTOR_PER_FINDING - taken : 0;
        if (count - first > places)
            count = first + places;
    }
    qsort(all, count, sizeof *all, by_priority);
    *out = all;
    *n = count;
    return 0;
}

static int count_open(pe_db_conn_t *conn, const char *store_id, long *open)
{
    const char *p[] = {store_id};
    pe_db_result_t *res = NULL;
    int rc = pe_db_exec(conn,
                        "SELECT count(*) FROM recommendations WHERE store_id = $1::uuid"
                        "   AND status IN ('active', 'queued', 'blocked')",
                        1, p, &res);
    if (rc == 0)
        *open = atol(pe_db_result_get(res, 0, 0));
    pe_db_result_free(res);
    return rc;
}

static int generate(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                    int64_t now_us, cJSON *out)
{
    char now[PE_DB_TEXT_TIMESTAMPTZ_LEN], since[32], category[PE_DOCTOR_TEXT_MAX];
    pe_db_text_timestamptz(now_us, now);
    snprintf(since, sizeof since, "%d", PE_DOCTOR_REJECT_MEMORY_DAYS);
    pe_db_result_t *latest = NULL, *existing = NULL;
    cJSON *run = NULL, *guardrails = NULL;
    run_findings_t rf = {0};
    candidate_t *cands = NULL;
    size_t ncands = 0, generated = 0, retired = 0;
    const char *p[] = {store_id, now, since};
    int rc = pe_db_exec(conn, SQL_LATEST_RUN, 1, p, &latest);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(latest) == 0) {
        rc = cJSON_AddNullToObject(out, "runId") &&
                     cJSON_AddStringToObject(out, "note",
                                             "no diagnostic run yet: POST …/diagnostics/runs")
                 ? promote(r, conn, store_id, now)
                 : PE_ENOMEM;
        goto out;
    }
    if ((rc = pe_db_result_json(latest, 0, 1, &run)) != 0)
        goto out;
    rf.findings = get(run, "findings");
    rf.count = (size_t)cJSON_GetArraySize(rf.findings);
    rf.parsed = calloc(rf.count + 1, sizeof *rf.parsed);
    rf.keys = calloc(rf.count + 1, sizeof *rf.keys);
    rc = PE_ENOMEM;
    if (!rf.parsed || !rf.keys)
        goto out;
    for (size_t i = 0; i < rf.count; i++) {
        if (pe_doctor_finding_parse(cJSON_GetArrayItem(rf.findings, (int)i), &rf.parsed[i]) != 0) {
            rc = PE_EINTERNAL;
            goto out;
        }
        pe_doctor_finding_key(&rf.parsed[i], rf.keys[i], sizeof rf.keys[i]);
    }
    pe_doctor_findings_residual(rf.parsed, rf.count);
    pe_doctor_economics_t eco = {0};
    if ((rc = read_economics(r, conn, store_id, run, &eco, &guardrails, category)) != 0 ||
        (rc = retire_gone(r, conn, store_id, &rf, now, &retired)) != 0 ||
        (rc = unblock(r, conn, store_id, now)) != 0 ||
        (rc = pe_db_exec(conn, SQL_EXISTING, 3, p, &existing)) != 0 ||
        (rc = candidates_of(r, &rf, &eco, existing, &cands, &ncands)) != 0)
        goto out;
    long open = 0;
    if ((rc = count_open(conn, store_id, &open)) != 0)
        goto out;
    for (size_t i = 0; i < ncands && open < PE_DOCTOR_MAX_OPEN; i++) {
        rc = propose(r, conn, store_id, &cands[i], &rf, &eco, now);
        if (rc != 0)
            goto out;
        generated++;
        open++;
    }
    const char *state[] = {store_id, pe_db_result_get(latest, 0, 0), now};
    rc = pe_db_exec(conn,
                    "INSERT INTO recommendation_state (store_id, run_id, generated_at)"
                    " VALUES ($1::uuid, $2::uuid, $3::timestamptz)"
                    " ON CONFLICT (store_id) DO UPDATE SET run_id = excluded.run_id,"
                    "   generated_at = excluded.generated_at",
                    3, state, NULL);
    if (rc == 0)
        rc = promote(r, conn, store_id, now);
    if (rc == 0 &&
        (!cJSON_AddStringToObject(out, "runId", pe_db_result_get(latest, 0, 0)) ||
         !(rf.count == 0
               ? cJSON_AddStringToObject(out, "note", "the latest diagnostic run has no finding")
           : ncands == 0
               ? cJSON_AddStringToObject(out, "note",
                                         "no playbook answers the findings with a positive "
                                         "expected profit, or all were proposed already")
               : cJSON_AddNullToObject(out, "note"))))
        rc = PE_ENOMEM;
out:
    if (rc == 0 && (!cJSON_AddNumberToObject(out, "generated", (double)generated) ||
                    !cJSON_AddNumberToObject(out, "retired", (double)retired)))
        rc = PE_ENOMEM;
    free(cands);
    free(rf.parsed);
    free(rf.keys);
    cJSON_Delete(run);
    cJSON_Delete(guardrails);
    pe_db_result_free(latest);
    pe_db_result_free(existing);
    return rc;
}

/* Runs fn under the store's lock, after reconcile. */
typedef int (*locked_fn)(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                         const char *now, void *arg);

static int with_store(pe_doctor_recommender_t *r, const char *store_id, int64_t now_us,
                      locked_fn fn, void *arg)
{
    char now[PE_DB_TEXT_TIMESTAMPTZ_LEN];
    pe_db_text_timestamptz(now_us, now);
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    bool locked = false;
    int rc = pe_db_acquire(r->db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    const char *p[] = {store_id};
    rc = pe_db_exec(conn, "SELECT 1 FROM stores WHERE id = $1::uuid", 1, p, &res);
    if (rc == 0 && pe_db_result_rows(res) == 0)
        rc = PE_ENOTFOUND;
    if (rc != 0)
        goto out;
    if ((rc = lock_store(conn, store_id)) != 0)
        goto out;
    locked = true;
    if ((rc = reconcile(conn, store_id, now)) != 0)
        goto out;
    rc = fn(r, conn, store_id, now, arg);
out:
    if (locked)
        unlock_store(conn, store_id);
    pe_db_result_free(res);
    if (conn)
        pe_db_release(r->db, conn);
    return rc;
}

typedef struct {
    int64_t now_us;
    cJSON *out;
} generate_arg_t;

static int shown_list(pe_db_conn_t *conn, const char *store_id, cJSON *out)
{
    char extra[256];
    snprintf(extra, sizeof extra, "WHERE l.status IN ('active', 'blocked') %s", LIST_ORDER);
    const char *p[] = {store_id};
    cJSON *list = NULL;
    int rc = read_list(conn, extra, 1, p, &list);
    if (rc == 0 && !cJSON_AddItemToObject(out, "recommendations", list)) {
        cJSON_Delete(list);
        rc = PE_ENOMEM;
    }
    return rc;
}

static int do_generate(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                       const char *now, void *arg)
{
    (void)now;
    generate_arg_t *g = arg;
    int rc = generate(r, conn, store_id, g->now_us, g->out);
    return rc == 0 ? shown_list(conn, store_id, g->out) : rc;
}

int pe_doctor_recommend(pe_doctor_recommender_t *r, const char *store_id, int64_t now_us,
                        cJSON **out)
{
    generate_arg_t g = {now_us, cJSON_CreateObject()};
    if (!g.out)
        return PE_ENOMEM;
    int rc = with_store(r, store_id, now_us, do_generate, &g);
    if (rc != 0) {
        cJSON_Delete(g.out);
        return rc;
    }
    *out = g.out;
    return 0;
}

/* ---- reads ---------------------------------------------------------------------------------- */

int pe_doctor_recommendations_list(pe_doctor_recommender_t *r, const char *store_id, unsigned mask,
                                   int64_t now_us, cJSON **out)
{
    /* the statuses as a text[] literal of known names only */
    char wanted[128] = "{", now[PE_DB_TEXT_TIMESTAMPTZ_LEN], extra[256];
    size_t o = 1;
    for (int k = 0; k < PE_DOCTOR_STATUSES; k++)
        if (mask & (1u << k))
            o += (size_t)snprintf(wanted + o, sizeof wanted - o, "%s%s", o > 1 ? "," : "",
                                  PE_DOCTOR_STATUS_NAMES[k]);
    snprintf(wanted + o, sizeof wanted - o, "}");
    pe_db_text_timestamptz(now_us, now);
    snprintf(extra, sizeof extra, "WHERE l.status = ANY ($2::text[]) %s", LIST_ORDER);
    pe_db_conn_t *conn = NULL;
    cJSON *list = NULL, *o2 = NULL;
    int rc = pe_db_acquire(r->db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        return rc;
    const char *p[] = {store_id, wanted};
    if ((rc = reconcile(conn, store_id, now)) == 0)
        rc = read_list(conn, extra, 2, p, &list);
    pe_db_release(r->db, conn);
    if (rc != 0)
        return rc;
    o2 = cJSON_CreateObject();
    if (!o2 || !cJSON_AddItemToObject(o2, "recommendations", list)) {
        cJSON_Delete(o2);
        cJSON_Delete(list);
        return PE_ENOMEM;
    }
    *out = o2;
    return 0;
}

/* One row (after reconcile) on conn: *out, or PE_ENOTFOUND. */
static int read_one(pe_db_conn_t *conn, const char *store_id, const char *id, cJSON **out)
{
    if (!pe_uuid_text_valid(id))
        return PE_ENOTFOUND;
    char extra[64];
    snprintf(extra, sizeof extra, "WHERE l.id = $2::uuid");
    const char *p[] = {store_id, id};
    cJSON *list = NULL;
    int rc = read_list(conn, extra, 2, p, &list);
    if (rc != 0)
        return rc;
    cJSON *one = cJSON_DetachItemFromArray(list, 0);
    cJSON_Delete(list);
    if (!one)
        return PE_ENOTFOUND;
    *out = one;
    return 0;
}

int pe_doctor_recommendation_get(pe_doctor_recommender_t *r, const char *store_id, const char *id,
                                 int64_t now_us, cJSON **out)
{
    char now[PE_DB_TEXT_TIMESTAMPTZ_LEN];
    pe_db_text_timestamptz(now_us, now);
    pe_db_conn_t *conn = NULL;
    int rc = pe_db_acquire(r->db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        return rc;
    if ((rc = reconcile(conn, store_id, now)) == 0)
        rc = read_one(conn, store_id, id, out);
    pe_db_release(r->db, conn);
    return rc;
}

/* ---- decisions ------------------------------------------------------------------------------ */

typedef struct {
    const char *id;
    bool approve, force, confirm;
    const char *reason;
    const pe_changeset_actor_info_t *actor;
    cJSON **out;
    pe_changeset_result_t *res;
} decide_arg_t;

static int do_decide(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                     const char *now, void *arg)
{
    decide_arg_t *d = arg;
    cJSON *rec = NULL, *cs = NULL, *answer = NULL;
    int rc = read_one(conn, store_id, d->id, &rec);
    if (rc != 0)
        goto out;
    const char *status = str(rec, "status");
    bool open = strcmp(status, "active") == 0 || strcmp(status, "blocked") == 0 ||
                (!d->approve && strcmp(status, "queued") == 0);
    if (!open) {
        rc = pe_refuse(&d->res->refusal, PE_ECONFLICT, "invalid_transition",
                       "the recommendation is %s: only %s can be %s", status,
                       d->approve ? "an active or blocked one" : "an open one",
                       d->approve ? "approved" : "rejected");
        goto out;
    }
    const char *cs_id = str(rec, "changesetId");
    const char *outcome = d->approve ? "approved" : "rejected";
    if (!d->approve && strcmp(status, "queued") == 0) {
        /* a queued proposal's ChangeSet is still a draft: the merchant discards it */
        pe_changeset_transition_req_t t = {
            .to = "ARCHIVED", .reason = d->reason, .expected_version = -1};
        rc = pe_changeset_transition(r->changesets, store_id, cs_id, &t, d->actor, &cs, d->res);
    } else {
        pe_changeset_transition_req_t t = {.to = d->approve ? "ACTIVE" : "ARCHIVED",
                                           .reason = d->reason,
                                           .confirm = d->confirm,
                                           .force = d->force,
                                           .expected_version = -1};
        rc = pe_changeset_transition(r->changesets, store_id, cs_id, &t, d->actor, &cs, d->res);
    }
    if (rc != 0) {
        if (d->approve && d->res->violations && strcmp(status, "blocked") != 0) {
            /* the guardrails changed since it was shown: it is blocked now, and says why */
            char *v = pe_json_print(d->res->violations);
            const char *u[] = {store_id, d->id, "blocked", v ? v : "[]", now};
            if (v)
                pe_db_exec(conn, SQL_SHOW, 5, u, NULL);
            free(v);
        }
        goto out;
    }
    const char *u[] = {store_id, d->id, outcome, d->reason, now};
    rc = pe_db_exec(conn,
                    "UPDATE recommendations SET status = $3, reason = $4,"
                    "       decided_at = $5::timestamptz, updated_at = $5::timestamptz"
                    " WHERE store_id = $1::uuid AND id = $2::uuid",
                    5, u, NULL);
    if (rc == 0)
        rc = promote(r, conn, store_id, now);
    cJSON_Delete(rec);
    rec = NULL;
    if (rc == 0)
        rc = read_one(conn, store_id, d->id, &rec);
    if (rc != 0)
        goto out;
    rc = PE_ENOMEM;
    answer = cJSON_CreateObject();
    if (!answer || !cJSON_AddItemToObject(answer, "recommendation", rec))
        goto out;
    rec = NULL;
    if (!cJSON_AddItemToObject(answer, "changeset", cs))
        goto out;
    cs = NULL;
    *d->out = answer;
    answer = NULL;
    rc = 0;
out:
    cJSON_Delete(rec);
    cJSON_Delete(cs);
    cJSON_Delete(answer);
    return rc;
}

int pe_doctor_recommendation_approve(pe_doctor_recommender_t *r, const char *store_id,
                                     const char *id, bool force, bool confirm,
                                     const pe_changeset_actor_info_t *actor, int64_t now_us,
                                     cJSON **out, pe_changeset_result_t *res)
{
    decide_arg_t d = {id, true, force, confirm, NULL, actor, out, res};
    return with_store(r, store_id, now_us, do_decide, &d);
}

int pe_doctor_recommendation_reject(pe_doctor_recommender_t *r, const char *store_id,
                                    const char *id, const char *reason,
                                    const pe_changeset_actor_info_t *actor, int64_t now_us,
                                    cJSON **out, pe_changeset_result_t *res)
{
    decide_arg_t d = {id, false, false, false, reason, actor, out, res};
    return with_store(r, store_id, now_us, do_decide, &d);
}

/* ---- the job -------------------------------------------------------------------------------- */

/* Stores whose latest run is not the one they were generated from, and stores with queued
 * recommendations and a free slot (approvals made in the ChangeSet API free one). */
static const char SQL_DUE[] =
    "SELECT s.id, true FROM stores s"
    " WHERE EXISTS (SELECT 1 FROM diagnostic_runs d WHERE d.store_id = s.id)"
    "   AND (SELECT d.id FROM diagnostic_runs d WHERE d.store_id = s.id"
    "         ORDER BY d.created_at DESC, d.id DESC LIMIT 1)"
    "       IS DISTINCT FROM (SELECT run_id FROM recommendation_state t WHERE t.store_id = s.id)"
    " UNION ALL "
    "SELECT DISTINCT r.store_id, false FROM recommendations r WHERE r.status = 'queued'"
    " ORDER BY 2 DESC, 1";

static int do_refresh(pe_doctor_recommender_t *r, pe_db_conn_t *conn, const char *store_id,
                      const char *now, void *arg)
{
    (void)arg;
    return promote(r, conn, store_id, now);
}

/* One due store: generated (a new run) or refreshed (free slots filled). */
typedef struct {
    pe_doctor_recommender_t *r;
    int64_t now_us;
    size_t generated; /* stores generated for (a refresh is housekeeping, not counted) */
} job_t;

static int recommend_one(void *arg, const pe_db_result_t *due, size_t row)
{
    job_t *job = arg;
    const char *store_id = pe_db_result_get(due, row, 0);
    bool fresh = pe_db_result_get(due, row, 1)[0] == 't';
    cJSON *result = NULL;
    int rc = fresh ? pe_doctor_recommend(job->r, store_id, job->now_us, &result)
                   : with_store(job->r, store_id, job->now_us, do_refresh, NULL);
    if (rc == 0 && fresh)
        job->generated++;
    if (rc == 0 && fresh)
        pe_log(PE_LOG_INFO, "recommended", "store %s: %d proposed, %d retired", store_id,
               (int)cJSON_GetNumberValue(get(result, "generated")),
               (int)cJSON_GetNumberValue(get(result, "retired")));
    else if (rc != 0)
        pe_log(PE_LOG_WARN, "recommend_failed", "store %s: %s", store_id, pe_strerror(rc));
    cJSON_Delete(result);
    return rc;
}

int pe_doctor_recommend_due(pe_doctor_recommender_t *r, int64_t now_us, size_t *ran, char *err,
                            size_t errlen)
{
    job_t job = {r, now_us, 0};
    size_t done = 0;
    int rc = pe_db_each_once(r->db, ACQUIRE_TIMEOUT_MS, JOB_LOCK_KEY, SQL_DUE, 0, NULL,
                             recommend_one, &job, "stores' recommendations", &done, err, errlen);
    *ran = job.generated;
    return rc;
}
