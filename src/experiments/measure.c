/*
 * measure.c — the job `measure` and `profit-engine measure --store ID`: every running Autopilot
 * experiment of a store is measured (results.c) and its decision carried out through the
 * ChangeSet lifecycle, with the system as the actor, so that an approved ChangeSet reaches
 * PROVEN or ROLLED_BACK with no human in between.
 *
 *   decision (decide.c)        ChangeSet ACTIVE                    ChangeSet MEASURING
 *   units > 0, not harm        → MEASURING (currentMetrics)        —
 *   ROLLBACK                   → ROLLED_BACK (reason, metrics)     → ROLLED_BACK
 *   ROLLBACK_LOSER / _INCONCL. → ROLLED_BACK                       → ROLLED_BACK
 *   PROVE                      → MEASURING, then → PROVEN (proofResult)
 *   KEEP_RUNNING, EXTEND       nothing (EXTEND needs a maximum window, which no ChangeSet
 *                              field carries yet: it does not occur)
 *   FREEZE_SRM                 nothing automatic; the merchant is alerted once
 *                              (notification changeset.srm_mismatch: in-app, webhook)
 *
 * Every end is kept in experiment_results (0020_experiment_results.sql), for history and
 * attribution: an automatic one in the transition's own transaction (write_result, run by the
 * lifecycle through pe_changeset_transition_req_t.in_transaction); a merchant's rollback,
 * which the API carries out without this module, by the next run (record_ended), measured
 * over the experiment's span [startedAt, endedAt).
 *
 * Invariants:
 *  1. Every state change goes through pe_changeset_transition: the flag is turned off in the
 *     rollback's own transaction, the audit event, the notification and the experiment_results
 *     row come with it.
 *  2. Once across instances (a session advisory lock; a second caller returns at once), and a
 *     ChangeSet moved meanwhile by a merchant is left alone (the transition checks the state).
 *  3. "Now" is the caller's; every statement filters by store_id.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/changeset.h"
#include "pe/experiments.h"

#define ACQUIRE_TIMEOUT_MS 5000
#define MEASURE_LOCK_KEY   "7262937150124823905" /* "pe measure", beside diagnose's */

static const pe_changeset_actor_info_t SYSTEM = {PE_CS_BY_SYSTEM, "system", "measure"};

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* The string member k of o, or "". */
static const char *text(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(get(o, k));
    return s ? s : "";
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : NAN;
}

static const cJSON *arm(const cJSON *results, const char *variant)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, get(results, "variants"))
    {
        const cJSON *name = get(v, "variant");
        if (cJSON_IsString(name) && strcmp(name->valuestring, variant) == 0)
            return v;
    }
    return NULL;
}

static bool add_metric(cJSON *list, const char *metric, double control, double treatment)
{
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddItemToArray(list, m)) {
        cJSON_Delete(m);
        return false;
    }
    double c = isfinite(control) ? control : 0, t = isfinite(treatment) ? treatment : 0;
    return cJSON_AddStringToObject(m, "metric", metric) &&
           cJSON_AddNumberToObject(m, "control", c) && cJSON_AddNumberToObject(m, "treatment", t) &&
           (c == 0 || cJSON_AddNumberToObject(m, "relativeLift", (t - c) / fabs(c)) != NULL);
}

/* execution.currentMetrics (the contract's LiveMetrics) from the results. */
static cJSON *current_metrics(const cJSON *r, const char *now)
{
    const cJSON *c = arm(r, "control"), *t = arm(r, "treatment");
    cJSON *o = cJSON_CreateObject();
    cJSON *list = o ? cJSON_AddArrayToObject(o, "metrics") : NULL;
    const char *primary = cJSON_GetStringValue(get(r, "primaryMetric"));
    bool step =
        primary && strstr(primary, "_conversion_rate") && strcmp(primary, "conversion_rate");
    bool ok =
        list && cJSON_AddStringToObject(o, "updatedAt", now) &&
        cJSON_AddNumberToObject(o, "controlSampleSize", fmax(num(c, "units"), 0)) &&
        cJSON_AddNumberToObject(o, "treatmentSampleSize", fmax(num(t, "units"), 0)) &&
        add_metric(list, "conversion_rate", num(c, "conversionRate"), num(t, "conversionRate")) &&
        (!step ||
         add_metric(list, primary, num(get(c, "step"), "rate"), num(get(t, "step"), "rate"))) &&
        add_metric(list, "revenue_per_visitor", num(c, "revenuePerVisitor"),
                   num(t, "revenuePerVisitor")) &&
        add_metric(list, "profit_per_visitor", num(c, "profitPerVisitor"),
                   num(t, "profitPerVisitor"));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The effect of metric in the results' effects, or NULL. */
static const cJSON *effect_of(const cJSON *r, const char *metric)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, get(r, "effects")) if (strcmp(text(e, "metric"), metric) == 0) return e;
    return NULL;
}

/* proofResult.impactPerMonth: the measured per-unit effect on revenue and on profit (relative
 * effect × control's per-unit value) times the units a month the experiment saw, as if every
 * one had the change; the lower bound from the profit interval's lower end. Nothing projected
 * beyond the traffic measured. */
static cJSON *impact(const cJSON *r)
{
    const cJSON *c = arm(r, "control"), *t = arm(r, "treatment");
    double units = fmax(num(c, "units"), 0) + fmax(num(t, "units"), 0);
    double days = num(r, "runtimeDays");
    double per_month = days > 0 ? units / days * 30 : 0;
    const cJSON *rev = effect_of(r, "revenue_per_visitor"),
                *pro = effect_of(r, "profit_per_visitor");
    double rpv = num(c, "revenuePerVisitor"), ppv = num(c, "profitPerVisitor");
    double dr = num(rev, "effect") * fabs(rpv), dp = num(pro, "effect") * fabs(ppv);
    double lo = num(pro, "ciLow") * fabs(ppv);
    cJSON *o = cJSON_CreateObject();
    if (!o ||
        !cJSON_AddNumberToObject(o, "revenue",
                                 isfinite(dr) ? round(dr * per_month * 100) / 100 : 0) ||
        !cJSON_AddNumberToObject(o, "profit",
                                 isfinite(dp) ? round(dp * per_month * 100) / 100 : 0) ||
        !cJSON_AddNumberToObject(o, "profitLowerBound",
                                 isfinite(lo) ? round(lo * per_month * 100) / 100 : 0) ||
        !cJSON_AddNumberToObject(o, "unitsPerMonth", round(per_month))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* execution.proofResult (the contract's ProofResult) from a PROVE decision. */
static cJSON *proof_result(const cJSON *r, const char *now)
{
    const cJSON *e = get(get(r, "decision"), "evidence");
    double units =
        fmax(num(arm(r, "control"), "units"), 0) + fmax(num(arm(r, "treatment"), "units"), 0);
    double lo = num(e, "ciLow"), hi = num(e, "ciHigh"), p = num(e, "pValue");
    cJSON *o = cJSON_CreateObject();
    cJSON *ci = o ? cJSON_AddArrayToObject(o, "confidenceInterval") : NULL;
    bool ok = ci && cJSON_AddStringToObject(o, "outcome", "proven") &&
              cJSON_AddStringToObject(o, "method", "frequentist") &&
              cJSON_AddStringToObject(o, "primaryMetric", text(r, "primaryMetric")) &&
              cJSON_AddNumberToObject(o, "relativeLift",
                                      isfinite(num(e, "effect")) ? num(e, "effect") : 0) &&
              cJSON_AddItemToArray(ci, cJSON_CreateNumber(isfinite(lo) ? lo : 0)) &&
              cJSON_AddItemToArray(ci, cJSON_CreateNumber(isfinite(hi) ? hi : 0)) &&
              (!isfinite(p) || cJSON_AddNumberToObject(o, "pValue", fmin(fmax(p, 0), 1))) &&
              cJSON_AddNumberToObject(o, "sampleSize", units) &&
              cJSON_AddStringToObject(o, "decidedAt", now) &&
              cJSON_AddStringToObject(o, "winningVariant", "treatment") &&
              cJSON_AddItemToObject(o, "impactPerMonth", impact(r));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* A compact snapshot of the results for the series (0019_experiment_measurements.sql). */
static cJSON *snapshot(const cJSON *r, const char *now)
{
    const cJSON *d = get(r, "decision"), *e = get(d, "evidence");
    cJSON *o = cJSON_CreateObject();
    cJSON *arms = o ? cJSON_AddObjectToObject(o, "variants") : NULL;
    bool ok = arms && cJSON_AddStringToObject(o, "at", now) &&
              cJSON_AddStringToObject(o, "action", text(d, "action")) &&
              cJSON_AddItemToObject(o, "effect", cJSON_Duplicate(get(e, "effect"), true)) &&
              cJSON_AddItemToObject(o, "ciLow", cJSON_Duplicate(get(e, "ciLow"), true)) &&
              cJSON_AddItemToObject(o, "ciHigh", cJSON_Duplicate(get(e, "ciHigh"), true));
    static const char *const keep[] = {"units", "conversionRate", "revenuePerVisitor",
                                       "profitPerVisitor"};
    for (int k = 0; ok && k < 2; k++) {
        const char *name = k ? "treatment" : "control";
        const cJSON *a = arm(r, name);
        cJSON *x = cJSON_AddObjectToObject(arms, name);
        ok = x != NULL;
        for (size_t i = 0; ok && i < PE_ARRAY_LEN(keep); i++)
            ok = cJSON_AddItemToObject(x, keep[i], cJSON_Duplicate(get(a, keep[i]), true));
        ok = ok && cJSON_AddItemToObject(x, "stepRate",
                                         cJSON_Duplicate(get(get(a, "step"), "rate"), true));
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int record(pe_db_pool_t *db, const char *store_id, const char *id, const cJSON *r,
                  const char *now)
{
    cJSON *snap = snapshot(r, now);
    char *doc = snap ? pe_json_print(snap) : NULL;
    cJSON_Delete(snap);
    if (!doc)
        return PE_ENOMEM;
    pe_db_conn_t *conn = NULL;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc == 0) {
        const char *p[] = {store_id, id, now, doc};
        rc = pe_db_exec(conn,
                        "INSERT INTO experiment_measurements (store_id, changeset_id, measured_at,"
                        " doc) VALUES ($1::uuid, $2, $3::timestamptz, $4::jsonb)"
                        " ON CONFLICT DO NOTHING",
                        4, p, NULL);
        pe_db_release(db, conn);
    }
    free(doc);
    return rc;
}

/* ---- experiment_results -------------------------------------------------------------------- */

/* How an experiment ended, for its experiment_results row. */
typedef struct {
    const cJSON *r;         /* its results (pe_experiments_results), borrowed */
    const char *outcome;    /* PROVEN | ROLLED_BACK */
    const char *kind;       /* automatic | manual; NULL when PROVEN */
    const char *action;     /* the decision's action; NULL for a merchant's rollback */
    const char *decided_at; /* RFC 3339 */
} ending_t;

/* "%.17g" of x into b, or NULL (SQL NULL) when x is not finite. */
static const char *sql_num(char b[40], double x)
{
    if (!isfinite(x))
        return NULL;
    snprintf(b, 40, "%.17g", x);
    return b;
}

/* The figures of metric in the results: the decision's own where it judged that metric
 * (evidence, or the guardrail of a final look), else the fixed-horizon effect of "effects". */
static const cJSON *figures_of(const cJSON *r, const char *metric)
{
    const cJSON *d = get(r, "decision");
    const cJSON *e = get(d, "evidence"), *g = get(d, "guardrail");
    if (strcmp(text(e, "metric"), metric) == 0 && cJSON_IsNumber(get(e, "effect")))
        return e;
    if (strcmp(text(g, "metric"), metric) == 0 && cJSON_IsNumber(get(g, "effect")))
        return g;
    return effect_of(r, metric);
}

static const char SQL_RESULT[] =
    "INSERT INTO experiment_results (store_id, changeset_id, flag_key, outcome, rollback_kind,"
    " decision_action, decided_at, started_at, ended_at, primary_metric, control_units,"
    " treatment_units, primary_effect, primary_ci_low, primary_ci_high, primary_p,"
    " profit_effect, profit_ci_low, profit_ci_high, profit_p, revenue_per_month,"
    " profit_per_month, profit_per_month_low, decision)"
    " VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::timestamptz, $8::timestamptz, $9::timestamptz,"
    " $10, $11::bigint, $12::bigint, $13::float8, $14::float8, $15::float8, $16::float8,"
    " $17::float8, $18::float8, $19::float8, $20::float8, $21::float8, $22::float8,"
    " $23::float8, $24::jsonb)"
    " ON CONFLICT (store_id, changeset_id) DO NOTHING";

/* Writes the experiment_results row of an ending on conn: as the lifecycle's in_transaction
 * hook (ctx an ending_t; changeset the document as stored, whose endedAt it records), or in a
 * transaction of its own. Returns 0 or a PE_E… code (which rolls the transition back). */
static int write_result(void *ctx, pe_db_conn_t *conn, const char *store_id, const char *id,
                        const cJSON *changeset)
{
    const ending_t *x = ctx;
    const cJSON *r = x->r, *exec = get(changeset, "execution");
    const cJSON *pri = figures_of(r, text(r, "primaryMetric")),
                *pro = figures_of(r, "profit_per_visitor");
    cJSON *imp = impact(r), *doc = cJSON_Duplicate(r, true);
    char *doc_text = NULL;
    int rc = PE_ENOMEM;
    if (!imp || !doc)
        goto out;
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "series"); /* experiment_measurements has it */
    if (!(doc_text = pe_json_print(doc)))
        goto out;
    char n[14][40];
    const char *started = cJSON_GetStringValue(get(r, "startedAt")),
               *ended = cJSON_GetStringValue(get(exec, "endedAt"));
    const char *p[] = {store_id,
                       id,
                       text(r, "flagKey"),
                       x->outcome,
                       x->kind,
                       x->action,
                       x->decided_at,
                       started,
                       ended,
                       text(r, "primaryMetric"),
                       sql_num(n[0], fmax(num(arm(r, "control"), "units"), 0)),
                       sql_num(n[1], fmax(num(arm(r, "treatment"), "units"), 0)),
                       sql_num(n[2], num(pri, "effect")),
                       sql_num(n[3], num(pri, "ciLow")),
                       sql_num(n[4], num(pri, "ciHigh")),
                       sql_num(n[5], num(pri, "pValue")),
                       sql_num(n[6], num(pro, "effect")),
                       sql_num(n[7], num(pro, "ciLow")),
                       sql_num(n[8], num(pro, "ciHigh")),
                       sql_num(n[9], num(pro, "pValue")),
                       sql_num(n[10], num(imp, "revenue")),
                       sql_num(n[11], num(imp, "profit")),
                       sql_num(n[12], num(imp, "profitLowerBound")),
                       doc_text};
    rc = pe_db_exec(conn, SQL_RESULT, (int)PE_ARRAY_LEN(p), p, NULL);
out:
    cJSON_Delete(imp);
    cJSON_Delete(doc);
    free(doc_text);
    return rc;
}

/* One transition with the system as actor; a refusal is logged and is not an error of the job
 * (a merchant may have moved the ChangeSet meanwhile). *state follows the ChangeSet. ending,
 * when given, is written to experiment_results in the transition's transaction. */
static int move(pe_changeset_service_t *svc, const char *store_id, const char *id, const char *to,
                const char *reason, const cJSON *metrics, const cJSON *proof, ending_t *ending,
                char *state, size_t statelen)
{
    pe_changeset_transition_req_t t = {.to = to,
                                       .reason = reason,
                                       .expected_version = -1,
                                       .current_metrics = metrics,
                                       .proof_result = proof,
                                       .in_transaction = ending ? write_result : NULL,
                                       .in_transaction_ctx = ending};
    pe_changeset_result_t res = {0};
    cJSON *doc = NULL;
    int rc = pe_changeset_transition(svc, store_id, id, &t, &SYSTEM, &doc, &res);
    if (rc == 0)
        snprintf(state, statelen, "%s", to);
    else
        pe_log(PE_LOG_WARN, "measure_transition_refused", "store %s, ChangeSet %s → %s: %s",
               store_id, id, to, res.refusal.code[0] ? res.refusal.message : pe_strerror(rc));
    cJSON_Delete(doc);
    pe_changeset_result_free(&res);
    return rc == PE_ECONFLICT || rc == PE_EFORBIDDEN ? 0 : rc;
}

/* Measures one ChangeSet and acts; appends {"id","before","after","action","reason"}. */
static int measure_one(pe_db_pool_t *db, pe_changeset_service_t *svc, const char *store_id,
                       const char *id, int64_t now_us, cJSON *list)
{
    cJSON *cs = NULL, *r = NULL, *metrics = NULL, *proof = NULL;
    pe_refusal_t why = {.code = ""};
    char now[40], before[32] = "", state[32] = "";
    pe_time_format_rfc3339(now_us, now, sizeof now);
    int rc = pe_changeset_get(svc, store_id, id, &cs);
    if (rc != 0)
        goto out;
    snprintf(before, sizeof before, "%s", text(get(cs, "execution"), "status"));
    snprintf(state, sizeof state, "%s", before);
    rc = pe_experiments_results(db, store_id, cs, now_us, &r, &why);
    if (rc == PE_EINVAL) { /* not measurable: said once per run, nothing to act on */
        pe_log(PE_LOG_INFO, "measure_skipped", "store %s, ChangeSet %s: %s", store_id, id,
               why.message);
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    if ((rc = record(db, store_id, id, r, now)) != 0)
        goto out;
    const cJSON *d = get(r, "decision");
    const char *action = text(d, "action"), *reason = text(d, "reason");
    double units =
        fmax(num(arm(r, "control"), "units"), 0) + fmax(num(arm(r, "treatment"), "units"), 0);
    rc = PE_ENOMEM;
    if (!(metrics = current_metrics(r, now)))
        goto out;
    rc = 0;
    bool harm = strcmp(action, "ROLLBACK") == 0 || strncmp(action, "ROLLBACK_", 9) == 0;
    if (strcmp(state, "ACTIVE") == 0 && units > 0 && !harm)
        rc = move(svc, store_id, id, "MEASURING", "the first exposures arrived", metrics, NULL,
                  NULL, state, sizeof state);
    if (rc == 0 && harm) {
        ending_t end = {r, "ROLLED_BACK", "automatic", action, now};
        rc = move(svc, store_id, id, "ROLLED_BACK", reason, metrics, NULL, &end, state,
                  sizeof state);
    }
    if (rc == 0 && strcmp(action, "PROVE") == 0 && strcmp(state, "MEASURING") == 0) {
        ending_t end = {r, "PROVEN", NULL, action, now};
        rc = (proof = proof_result(r, now)) ? 0 : PE_ENOMEM;
        if (rc == 0)
            rc = move(svc, store_id, id, "PROVEN", reason, metrics, proof, &end, state,
                      sizeof state);
    }
    if (rc == 0 && strcmp(action, "FREEZE_SRM") == 0) {
        bool queued = false;
        rc = pe_changeset_alert(svc, store_id, id, "changeset.srm_mismatch",
                                "Automatic decisions frozen: the traffic split is off", reason,
                                &SYSTEM, &queued);
        if (queued)
            pe_log(PE_LOG_WARN, "sample_ratio_mismatch", "store %s, ChangeSet %s: %s", store_id, id,
                   reason);
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "id", id) &&
              cJSON_AddStringToObject(o, "before", before) &&
              cJSON_AddStringToObject(o, "after", state) &&
              cJSON_AddStringToObject(o, "action", action) &&
              cJSON_AddStringToObject(o, "reason", reason);
    if (!ok || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        rc = rc ? rc : PE_ENOMEM;
    }
out:
    cJSON_Delete(cs);
    cJSON_Delete(r);
    cJSON_Delete(metrics);
    cJSON_Delete(proof);
    return rc;
}

static const char SQL_RUNNING[] = "SELECT id FROM changesets WHERE store_id = $1::uuid"
                                  "   AND status IN ('ACTIVE', 'MEASURING') ORDER BY id";

/* Ended experiments without their experiment_results row: rolled back by a merchant (an
 * automatic end writes its row with the transition). Only holdout rollouts have a control
 * group to measure (results.c); a bounded batch a run. */
#define SQL_UNRECORDED_WHERE                                                                       \
    " c.status = 'ROLLED_BACK' AND c.action_plan->>'rolloutStrategy' = 'holdout'"                  \
    " AND NOT EXISTS (SELECT 1 FROM experiment_results x"                                          \
    "                  WHERE x.store_id = c.store_id AND x.changeset_id = c.id)"
static const char SQL_UNRECORDED[] = "SELECT c.id FROM changesets c WHERE c.store_id = $1::uuid"
                                     " AND" SQL_UNRECORDED_WHERE " ORDER BY c.id LIMIT 50";

/* The audit event that rolled the ChangeSet back (the last one entering ROLLED_BACK). */
static const cJSON *rollback_event(const cJSON *cs)
{
    const cJSON *e, *found = NULL;
    cJSON_ArrayForEach(e, get(cs, "auditTrail")) if (strcmp(text(e, "newState"), "ROLLED_BACK") ==
                                                     0) found = e;
    return found;
}

/* Records the ending of a ChangeSet rolled back without the job (by a merchant, or before
 * experiment_results existed): its results over [startedAt, endedAt), kind from the actor of
 * its rollback event (a user: manual; the engine: automatic), decided when that event was.
 * Appends {"id","outcome","kind"} to list. Not measurable: logged, nothing written. */
static int record_ended(pe_db_pool_t *db, pe_changeset_service_t *svc, const char *store_id,
                        const char *id, int64_t now_us, cJSON *list)
{
    cJSON *cs = NULL, *r = NULL;
    pe_db_conn_t *conn = NULL;
    pe_refusal_t why = {.code = ""};
    int rc = pe_changeset_get(svc, store_id, id, &cs);
    if (rc != 0)
        goto out;
    rc = pe_experiments_results(db, store_id, cs, now_us, &r, &why);
    if (rc == PE_EINVAL) {
        pe_log(PE_LOG_INFO, "measure_skipped", "store %s, ChangeSet %s: %s", store_id, id,
               why.message);
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    const cJSON *ev = rollback_event(cs);
    const char *actor = text(get(ev, "actor"), "type");
    const char *kind = strcmp(actor, "user") == 0 || !actor[0] ? "manual" : "automatic";
    const char *at = text(ev, "timestamp");
    ending_t end = {r, "ROLLED_BACK", kind, NULL,
                    at[0] ? at : text(get(cs, "execution"), "endedAt")};
    if ((rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn)) != 0)
        goto out;
    if ((rc = write_result(&end, conn, store_id, id, cs)) != 0)
        goto out;
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "id", id) &&
              cJSON_AddStringToObject(o, "outcome", "ROLLED_BACK") &&
              cJSON_AddStringToObject(o, "kind", kind);
    if (!ok || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        rc = PE_ENOMEM;
    }
out:
    pe_db_release(db, conn);
    cJSON_Delete(cs);
    cJSON_Delete(r);
    return rc;
}

int pe_experiments_measure(pe_db_pool_t *db, pe_changeset_service_t *svc, const char *store_id,
                           int64_t now_us, cJSON **out)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL, *ended = NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *list = o ? cJSON_AddArrayToObject(o, "changesets") : NULL;
    cJSON *recorded = list ? cJSON_AddArrayToObject(o, "recorded") : NULL;
    int rc = recorded ? pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn) : PE_ENOMEM;
    if (rc != 0)
        goto out;
    const char *p[] = {store_id};
    rc = pe_db_exec(conn, "SELECT 1 FROM stores WHERE id = $1::uuid", 1, p, &res);
    if (rc == 0 && pe_db_result_rows(res) == 0)
        rc = PE_ENOTFOUND;
    pe_db_result_free(res);
    res = NULL;
    if (rc == 0)
        rc = pe_db_exec(conn, SQL_RUNNING, 1, p, &res);
    if (rc == 0)
        rc = pe_db_exec(conn, SQL_UNRECORDED, 1, p, &ended);
    pe_db_release(db, conn); /* the transitions take their own connections */
    conn = NULL;
    /* the per-unit tables with what the aggregation logged, and the rebuilds due (units.c) */
    if (rc == 0 && pe_db_result_rows(res) > 0)
        rc = pe_experiments_refresh(db, store_id, now_us, PE_EXPERIMENTS_REFRESH_DUE, NULL);
    for (size_t i = 0; rc == 0 && i < pe_db_result_rows(res); i++)
        rc = measure_one(db, svc, store_id, pe_db_result_get(res, i, 0), now_us, list);
    for (size_t i = 0; rc == 0 && i < pe_db_result_rows(ended); i++)
        rc = record_ended(db, svc, store_id, pe_db_result_get(ended, i, 0), now_us, recorded);
    if (rc == 0 && !cJSON_AddNumberToObject(o, "measured", cJSON_GetArraySize(list)))
        rc = PE_ENOMEM;
out:
    pe_db_result_free(res);
    pe_db_result_free(ended);
    if (rc != 0) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return 0;
}

typedef struct {
    pe_db_pool_t *db;
    pe_changeset_service_t *svc;
    int64_t now_us;
    size_t measured;
} job_t;

static int measure_store(void *arg, const pe_db_result_t *due, size_t row)
{
    job_t *job = arg;
    cJSON *out = NULL;
    const char *store_id = pe_db_result_get(due, row, 0);
    int rc = pe_experiments_measure(job->db, job->svc, store_id, job->now_us, &out);
    if (rc == 0)
        job->measured += (size_t)cJSON_GetArraySize(get(out, "changesets"));
    else
        pe_log(PE_LOG_WARN, "measure_failed", "store %s: %s", store_id, pe_strerror(rc));
    cJSON_Delete(out);
    /* what the experiments have earned, for the dashboard (attribution.c's snapshots) */
    int arc = pe_experiments_attribution_refresh(job->db, store_id, job->now_us);
    if (arc != 0)
        pe_log(PE_LOG_WARN, "attribution_failed", "store %s: %s", store_id, pe_strerror(arc));
    return rc ? rc : arc;
}

int pe_experiments_measure_due(pe_db_pool_t *db, pe_changeset_service_t *svc, int64_t now_us,
                               size_t *measured, char *err, size_t errlen)
{
    job_t job = {db, svc, now_us, 0};
    size_t stores = 0;
    int rc = pe_db_each_once(db, ACQUIRE_TIMEOUT_MS, MEASURE_LOCK_KEY,
                             "SELECT DISTINCT store_id FROM changesets c"
                             " WHERE c.status IN ('ACTIVE', 'MEASURING', 'PROVEN', 'PERMANENT')"
                             "    OR" SQL_UNRECORDED_WHERE " ORDER BY 1",
                             0, NULL, measure_store, &job, "stores measured", &stores, err, errlen);
    *measured = job.measured;
    return rc;
}
