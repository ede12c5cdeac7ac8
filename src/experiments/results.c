/*
 * results.c — an Autopilot experiment as it stands: who was assigned which variant (the
 * exposures rollup, agg_exposures), what each unit did from its first exposure on (its sessions,
 * orders and cost of goods in the aggregate tables), per-variant figures, and the decision rule
 * of decide.c on them. This is what GET …/changesets/{cid}/results answers and what the
 * measure job will act on.
 *
 *   ChangeSet (plan: proofPlan, rollbackPlan, actionPlan, execution.startedAt)
 *        │                                   agg_exposures ─┐ units: first variant, first exposure
 *        ▼                                   agg_sessions  ─┤ sessions ending after it
 *   plan_of ──▶ pe_experiments_plan_t        agg_orders    ─┤ revenue
 *                       │                    agg_session_products × products ─┘ cost of goods
 *                       ▼                              │
 *   pe_experiments_decide(plan, look) ◀── look_of ◀────┘ SQL_ARMS: sufficient statistics per arm
 *
 * Invariants:
 *  1. Intention to treat: a unit counts in the variant it was first assigned, with every session
 *     that ends after its first exposure, whatever it was served later; exposures from the
 *     store's global holdout are not part of the experiment.
 *  2. Gross profit = revenue − cost of goods; a line whose product has no known cost counts at
 *     1 − PE_CATALOG_DEFAULT_MARGIN of its revenue (said in the answer: costKnownShare). What the
 * change itself costs is in the revenue when the storefront reports the price it charged (a
 *     discount); a waived shipping fee is not in the events and is not counted.
 *  3. Reads aggregate tables only, never raw events; every statement filters by store_id. A
 *     running experiment (ACTIVE, MEASURING) is read from its per-unit table (units.c), brought
 *     up to date from the rollups first, which gives the same figures (units.c, invariant 1)
 *     at a cost that grows with what changed; an ended one from the rollups, bounded by its
 *     end (endedAt): units first exposed and sessions started before it.
 *  4. "Now" is the caller's.
 *  5. Triggers: a threshold in [−1, 0] is a relative change, any other the metric's own value;
 *     lt is strictly below, lte at or below; a window shorter than the plan's horizon is judged
 *     on the units first exposed in it (decide.c). Only the primary metric and profit per
 *     visitor are measured as triggers; every other is listed with why not.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiments_internal.h"
#include "pe/catalog.h"
#include "pe/experiments.h"

#define ACQUIRE_TIMEOUT_MS 5000
#define US_PER_DAY         (86400.0 * 1e6)
#define PRE_PERIOD_DAYS    28 /* CUPED's covariate: the unit's own days before its exposure */

static const char *const STEPS[] = {"cart", "checkout", "shipping", "payment", "confirmation"};

/* Per variant: units; units with an order; Σ and Σ² of revenue and of profit per unit; units
 * that reached the step before the target step ($4 − 1) and the target step ($4); revenue whose
 * cost is known. $3: the experiment's start (exposures before it belong to another); $8 its end
 * (exposures and sessions from then on are not part of it: the flag is off or serves one
 * variant; 'infinity' while it runs); $9 the least first exposure of the units counted (a
 * trigger's trailing window; '-infinity' for every unit). */
static const char SQL_ARMS[] =
    "WITH u AS (SELECT unit, (array_agg(variant ORDER BY first_at, session_id))[1] AS variant,"
    "                  min(first_at) AS first_at"
    "             FROM agg_exposures"
    "            WHERE store_id = $1::uuid AND flag_key = $2 AND NOT holdout"
    "              AND first_at >= $3::timestamptz AND first_at < $8::timestamptz"
    "            GROUP BY unit HAVING min(first_at) >= $9::timestamptz),"
    /* every session of a unit: in the experiment (from its first exposure on) or in its
     * pre-period (the PRE_PERIOD_DAYS before it, ended before it: the CUPED covariate) */
    "     us AS (SELECT u.unit, s.session_id, s.reach, s.orders,"
    "                   coalesce(s.ended_at, s.started_at) >= u.first_at AS post FROM u"
    "              JOIN agg_sessions s ON s.store_id = $1::uuid AND s.visitor = u.unit"
    "               AND s.started_at < $8::timestamptz"
    "               AND (coalesce(s.ended_at, s.started_at) >= u.first_at"
    "                    OR s.started_at >= u.first_at - make_interval(days => $7::int))),"
    "     rev AS (SELECT o.session_id, sum(o.value)::float8 AS revenue FROM agg_orders o"
    "              WHERE o.store_id = $1::uuid AND o.session_id IN (SELECT session_id FROM us)"
    "              GROUP BY 1),"
    "     cogs AS (SELECT sp.session_id,"
    "                     sum(coalesce(sp.units * p.cost, sp.revenue * $5::float8))::float8"
    "                       AS cost,"
    "                     coalesce(sum(sp.revenue) FILTER (WHERE p.cost IS NOT NULL), 0)::float8"
    "                       AS known"
    "                FROM agg_session_products sp"
    "                LEFT JOIN products p ON p.store_id = sp.store_id AND p.sku = sp.product_id"
    "               WHERE sp.store_id = $1::uuid AND sp.purchases > 0"
    "                 AND sp.session_id IN (SELECT session_id FROM us)"
    "               GROUP BY 1),"
    "     pu AS (SELECT u.unit, u.variant,"
    "                   coalesce(max(us.reach) FILTER (WHERE us.post), 0) AS reach,"
    "                   coalesce(sum(us.orders) FILTER (WHERE us.post), 0) AS orders,"
    "                   coalesce(sum(rev.revenue) FILTER (WHERE us.post), 0) AS revenue,"
    "                   coalesce(sum(c.cost) FILTER (WHERE us.post), 0) AS cost,"
    "                   coalesce(sum(c.known) FILTER (WHERE us.post), 0) AS known,"
    "                   coalesce(max(us.reach) FILTER (WHERE NOT us.post), -1) AS pre_reach,"
    "                   coalesce(sum(us.orders) FILTER (WHERE NOT us.post), 0) AS pre_orders,"
    "                   coalesce(sum(rev.revenue) FILTER (WHERE NOT us.post), 0) AS pre_revenue,"
    "                   coalesce(sum(c.cost) FILTER (WHERE NOT us.post), 0) AS pre_cost,"
    "                   bool_or(NOT us.post) AS has_pre"
    "              FROM u LEFT JOIN us ON us.unit = u.unit"
    "              LEFT JOIN rev ON rev.session_id = us.session_id"
    "              LEFT JOIN cogs c ON c.session_id = us.session_id"
    "             GROUP BY u.unit, u.variant),"
    /* the primary's value y and covariate x per unit ($6: 0 a step, 1 conversion, 2 revenue,
     * 3 profit per visitor), and whether the unit counts in the primary (a step: it reached
     * the step before) */
    "     m AS (SELECT pu.*, revenue - cost AS profit, pre_revenue - pre_cost AS pre_profit,"
    "                  CASE $6::int WHEN 0 THEN (reach >= $4::int)::int"
    "                               WHEN 1 THEN (orders > 0)::int WHEN 2 THEN revenue"
    "                               ELSE revenue - cost END::float8 AS y,"
    "                  CASE $6::int WHEN 0 THEN (pre_reach >= $4::int)::int"
    "                               WHEN 1 THEN (pre_orders > 0)::int WHEN 2 THEN pre_revenue"
    "                               ELSE pre_revenue - pre_cost END::float8 AS x,"
    "                  ($6::int <> 0 OR reach >= $4::int - 1) AS in_primary"
    "             FROM pu)"
    "SELECT variant, count(*), count(*) FILTER (WHERE orders > 0), sum(orders),"
    "       sum(revenue), sum(revenue * revenue), sum(profit), sum(profit * profit),"
    "       count(*) FILTER (WHERE reach >= $4::int - 1), count(*) FILTER (WHERE reach >= $4::int),"
    "       sum(known),"
    "       coalesce(sum(x) FILTER (WHERE in_primary), 0),"
    "       coalesce(sum(x * x) FILTER (WHERE in_primary), 0),"
    "       coalesce(sum(x * y) FILTER (WHERE in_primary), 0),"
    "       sum(pre_profit), sum(pre_profit * pre_profit), sum(pre_profit * profit),"
    "       count(*) FILTER (WHERE has_pre)"
    "  FROM m GROUP BY variant ORDER BY variant";

/* The series: the measure job's snapshots, oldest first (the last 2,000: a week at the default
 * five minutes). */
static const char SQL_SERIES[] =
    "SELECT doc FROM (SELECT measured_at, doc FROM experiment_measurements"
    "                  WHERE store_id = $1::uuid AND changeset_id = $2"
    "                  ORDER BY measured_at DESC LIMIT 2000) s ORDER BY measured_at";

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static double num(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = get(o, k);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : dflt;
}

/* Days of an ISO 8601 duration of one unit: days or weeks ("P14D", "P2W"), or with `time`
 * hours or minutes ("PT12H", "PT30M"); NaN otherwise. */
double pe_experiments_duration_days(const char *s, bool time)
{
    if (!s || s[0] != 'P')
        return NAN;
    const char *from = s + 1;
    if (time && from[0] == 'T')
        from++;
    char *end = NULL;
    double v = strtod(from, &end);
    if (!end || end == from || !(v > 0) || !isfinite(v))
        return NAN;
    bool t = from != s + 1;
    if (!t && strcmp(end, "D") == 0)
        return v;
    if (!t && strcmp(end, "W") == 0)
        return 7 * v;
    if (t && strcmp(end, "H") == 0)
        return v / 24;
    if (t && strcmp(end, "M") == 0)
        return v / 1440;
    return NAN;
}

static double duration_days(const char *s)
{
    return pe_experiments_duration_days(s, false);
}

/* What the experiment measures, from the ChangeSet's proof plan. */
typedef struct {
    char primary[64]; /* the metric's name */
    int step;         /* 1..5 for "<step>_conversion_rate", 0 for conversion_rate / a mean */
    bool profit;      /* the primary is profit per visitor */
    bool revenue;     /* the primary is revenue per visitor */
    char flag_key[160];
} target_t;

/* Appends {"metric","threshold","minimumSampleSize","evaluated","note"} to list, and for an
 * evaluated trigger how it is read: {"thresholdKind":"relative"|"absolute","operator",
 * "windowDays" (null: the whole experiment)}. */
static bool listed_trigger(cJSON *list, const char *metric, double threshold, double min_units,
                           const pe_experiments_trigger_t *t, bool windowed,
                           const char *not_evaluated)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return false;
    }
    bool ok = cJSON_AddStringToObject(o, "metric", metric) &&
              cJSON_AddItemToObject(o, "threshold",
                                    isfinite(threshold) ? cJSON_CreateNumber(threshold)
                                                        : cJSON_CreateNull()) &&
              cJSON_AddNumberToObject(o, "minimumSampleSize", min_units) &&
              cJSON_AddBoolToObject(o, "evaluated", !not_evaluated) &&
              (not_evaluated ? cJSON_AddStringToObject(o, "note", not_evaluated) != NULL
                             : cJSON_AddNullToObject(o, "note") != NULL);
    if (ok && t)
        ok = cJSON_AddStringToObject(o, "thresholdKind", t->absolute ? "absolute" : "relative") &&
             cJSON_AddStringToObject(o, "operator", t->strict ? "lt" : "lte") &&
             cJSON_AddItemToObject(o, "windowDays",
                                   windowed ? cJSON_CreateNumber(t->window_days)
                                            : cJSON_CreateNull());
    return ok;
}

static int plan_of(const cJSON *cs, pe_experiments_plan_t *plan, target_t *t, cJSON *listed,
                   pe_refusal_t *err)
{
    pe_experiments_plan_defaults(plan);
    memset(t, 0, sizeof *t);
    const cJSON *pp = get(cs, "proofPlan"), *ap = get(cs, "actionPlan");
    const cJSON *primary = cJSON_GetArrayItem(get(pp, "primaryMetrics"), 0);
    const cJSON *name = get(primary, "name");
    if (!cJSON_IsString(name))
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "proofPlan.primaryMetrics[0].name: the ChangeSet names no metric");
    snprintf(t->primary, sizeof t->primary, "%s", name->valuestring);
    for (int s = 0; s < 5; s++) {
        char want[64];
        snprintf(want, sizeof want, "%s_conversion_rate", STEPS[s]);
        if (strcmp(t->primary, want) == 0)
            t->step = s + 1;
    }
    t->profit = strcmp(t->primary, "profit_per_visitor") == 0;
    t->revenue = strcmp(t->primary, "revenue_per_visitor") == 0;
    if (!t->step && !t->profit && !t->revenue && strcmp(t->primary, "conversion_rate") != 0)
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "proofPlan.primaryMetrics[0].name: %.64s is not a metric the engine "
                         "measures (conversion_rate, <step>_conversion_rate, "
                         "revenue_per_visitor, profit_per_visitor)",
                         t->primary);
    const cJSON *key = get(get(ap, "implementation"), "featureFlagKey");
    const cJSON *id = get(cs, "id");
    if (cJSON_IsString(key) && key->valuestring[0])
        snprintf(t->flag_key, sizeof t->flag_key, "%s", key->valuestring);
    else
        snprintf(t->flag_key, sizeof t->flag_key, "changeset-%s",
                 cJSON_IsString(id) ? id->valuestring : "");
    plan->alpha = num(pp, "significanceThreshold", plan->alpha);
    plan->min_units = num(pp, "minimumSampleSize", 0);
    const cJSON *window = get(pp, "measurementWindow");
    double days = duration_days(cJSON_IsString(window) ? window->valuestring : NULL);
    if (isfinite(days))
        plan->window_days = days;
    /* the split the flag serves (flag_hooks.c): holdout = rolloutPercentage to treatment, else
     * 100 − holdoutPercentage; immediate and gradual give every unit in the rollout treatment */
    const cJSON *strategy = get(ap, "rolloutStrategy");
    double treat = 100;
    if (cJSON_IsString(strategy) && strcmp(strategy->valuestring, "holdout") == 0)
        treat = num(ap, "rolloutPercentage", 100 - num(pp, "holdoutPercentage", 0));
    if (!(treat > 0 && treat < 100))
        return pe_refuse(err, PE_EINVAL, "not_measurable",
                         "actionPlan.rolloutStrategy: a %s rollout gives every exposed unit the "
                         "%s: there is no control group to measure against (use holdout)",
                         cJSON_IsString(strategy) ? strategy->valuestring : "immediate",
                         treat > 0 ? "treatment" : "control");
    plan->split[PE_EXPERIMENTS_CONTROL] = 100 - treat;
    plan->split[PE_EXPERIMENTS_TREATMENT] = treat;
    const cJSON *method = get(pp, "statisticalMethod");
    plan->cuped = cJSON_IsString(method) && strcmp(method->valuestring, "cuped") == 0;
    /* the rollback triggers on the metrics measured here; each one is listed in *listed with
     * whether it is evaluated and, when not, why (nothing is ignored silently). A threshold in
     * [−1, 0] is a relative change ("−0.05": down 5 %), any other the metric's own value (0.55
     * for a conversion, 12.5 money per visitor); lt is strictly below, lte at or below; the
     * window is the trailing one of decide.c (a window the whole plan fits in: every unit). */
    plan->n_triggers = 0;
    const cJSON *tr;
    size_t listed_from = (size_t)cJSON_GetArraySize(listed);
    cJSON_ArrayForEach(tr, get(get(cs, "rollbackPlan"), "autoRollbackTriggers"))
    {
        const cJSON *m = get(tr, "metric"), *op = get(tr, "operator"), *act = get(tr, "action");
        const char *metric = cJSON_IsString(m) ? m->valuestring : "";
        char why[200] = "";
        pe_experiments_metric_t which = PE_EXPERIMENTS_PRIMARY;
        if (strcmp(metric, t->primary) == 0)
            which = PE_EXPERIMENTS_PRIMARY;
        else if (strcmp(metric, "profit_per_visitor") == 0)
            which = PE_EXPERIMENTS_PROFIT;
        else
            snprintf(why, sizeof why,
                     "%.64s is not measured as a trigger: only the primary metric (%.64s) and "
                     "profit_per_visitor are",
                     metric, t->primary);
        if (!why[0] && !(cJSON_IsString(op) && op->valuestring[0] == 'l'))
            snprintf(why, sizeof why, "only a fall (lt, lte) rolls back automatically");
        if (!why[0] && cJSON_IsString(act) && strcmp(act->valuestring, "rollback") != 0)
            snprintf(why, sizeof why, "action %.16s is not carried out automatically yet",
                     act->valuestring);
        if (!why[0] && plan->n_triggers == PE_EXPERIMENTS_MAX_TRIGGERS)
            snprintf(why, sizeof why, "more than %d triggers", PE_EXPERIMENTS_MAX_TRIGGERS);
        double threshold = num(tr, "threshold", NAN);
        if (!why[0] && !isfinite(threshold))
            snprintf(why, sizeof why, "no numeric threshold");
        pe_experiments_trigger_t *x = NULL;
        if (!why[0]) {
            x = &plan->triggers[plan->n_triggers++];
            const cJSON *w = get(tr, "window");
            double wdays =
                pe_experiments_duration_days(cJSON_IsString(w) ? w->valuestring : NULL, true);
            *x = (pe_experiments_trigger_t){
                .metric = which,
                .threshold = threshold,
                .min_units = fmax(num(tr, "minimumSampleSize", 0), 0),
                .absolute = !(threshold >= -1 && threshold <= 0),
                .strict = strcmp(op->valuestring, "lt") == 0,
                .window_days = isfinite(wdays) ? wdays : 0,
            };
        }
        if (!listed_trigger(listed, metric, threshold, num(tr, "minimumSampleSize", 0), x, false,
                            why[0] ? why : NULL))
            return PE_ENOMEM;
    }
    if (plan->n_triggers == 0) { /* the default: primary down 5 % or more */
        plan->triggers[0] =
            (pe_experiments_trigger_t){.metric = PE_EXPERIMENTS_PRIMARY, .threshold = -0.05};
        plan->n_triggers = 1;
        if (!listed_trigger(listed, t->primary, -0.05, 0, &plan->triggers[0], false, NULL))
            return PE_ENOMEM;
    }
    int rc = pe_experiments_plan_check(plan, err);
    /* the windows as judged, now that the plan is whole: "windowDays" of the evaluated ones */
    size_t k = 0;
    for (size_t i = listed_from; rc == 0 && i < (size_t)cJSON_GetArraySize(listed); i++) {
        cJSON *o = cJSON_GetArrayItem(listed, (int)i);
        if (!cJSON_IsTrue(get(o, "evaluated")))
            continue;
        if (pe_experiments_trigger_windowed(plan, k))
            cJSON_ReplaceItemInObjectCaseSensitive(
                o, "windowDays", cJSON_CreateNumber(plan->triggers[k].window_days));
        k++;
    }
    return rc;
}

/* One arm's figures as read. */
typedef struct {
    double units, converted, orders, revenue, revenue_sq, profit, profit_sq, before, passed, known;
    double x, x_sq, xy;                              /* the primary's covariate over its units */
    double pre_profit, pre_profit_sq, pre_profit_xy; /* profit per visitor's */
    double with_pre;                                 /* units with a session in their pre-period */
} arm_t;

static int step_of(const target_t *t)
{
    return t->step ? t->step : 5;
}

static int kind_of(const target_t *t)
{
    return t->step ? 0 : t->revenue ? 2 : t->profit ? 3 : 1;
}

/* The arms in a result of SQL_ARMS's columns (or units.c's, the same). */
static void parse_arms(const pe_db_result_t *res, arm_t arms[2], char variants[2][65])
{
    for (size_t i = 0; i < pe_db_result_rows(res); i++) {
        const char *v = pe_db_result_get(res, i, 0);
        int k = strcmp(v, "control") == 0     ? PE_EXPERIMENTS_CONTROL
                : strcmp(v, "treatment") == 0 ? PE_EXPERIMENTS_TREATMENT
                                              : -1;
        if (k < 0)
            continue; /* a variant the experiment does not compare (PERMANENT's winner alone) */
        double *f = &arms[k].units;
        for (int c = 0; c < 17; c++)
            f[c] = atof(pe_db_result_get(res, i, (size_t)c + 1));
        snprintf(variants[k], 65, "%s", v);
    }
}

/* The arms of the units first exposed in [from, end) ($9, $8 of SQL_ARMS), from on or after
 * started. A running experiment (changeset_id non-NULL) is read from its per-unit table
 * (units.c, refreshed by the caller), when it has one. */
static int read_arms(pe_db_pool_t *db, const char *store_id, const target_t *t,
                     const char *changeset_id, const char *started, const char *end,
                     const char *from, arm_t arms[2], char variants[2][65])
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    if (changeset_id) {
        int rc = pe_experiments_units_arms(db, store_id, changeset_id,
                                           strcmp(from, "-infinity") == 0 ? NULL : from, &res);
        if (rc == 0)
            parse_arms(res, arms, variants);
        pe_db_result_free(res);
        if (rc != PE_ENOTFOUND)
            return rc;
        res = NULL;
    }
    char step[8], share[16], kind[4], days[8];
    snprintf(step, sizeof step, "%d", step_of(t));
    snprintf(share, sizeof share, "%.3f", 1 - PE_CATALOG_DEFAULT_MARGIN);
    snprintf(kind, sizeof kind, "%d", kind_of(t));
    snprintf(days, sizeof days, "%d", PRE_PERIOD_DAYS);
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        return rc;
    const char *p[] = {store_id, t->flag_key, started, step, share, kind, days, end, from};
    rc = experiments_exec_hashed(conn, SQL_ARMS, 9, p, &res);
    if (rc == 0)
        parse_arms(res, arms, variants);
    pe_db_result_free(res);
    pe_db_release(db, conn);
    return rc;
}

int experiments_exec_hashed(pe_db_conn_t *conn, const char *sql, int nparams,
                            const char *const *params, pe_db_result_t **out)
{
    int rc = pe_db_exec(conn, "SET enable_nestloop = off", 0, NULL, NULL);
    if (rc != 0)
        return rc;
    rc = pe_db_exec(conn, sql, nparams, params, out);
    /* after a failure inside a transaction the RESET fails too, and the rollback undoes the SET */
    int reset = pe_db_exec(conn, "RESET enable_nestloop", 0, NULL, NULL);
    return rc ? rc : reset;
}

int pe_experiments_money_arms(pe_db_conn_t *conn, const char *store_id, const char *flag_key,
                              const char *started, const char *until, pe_stats_arm_t revenue[2],
                              pe_stats_arm_t profit[2])
{
    arm_t arms[2];
    char variants[2][65] = {"", ""}, share[16];
    memset(arms, 0, sizeof arms);
    snprintf(share, sizeof share, "%.3f", 1 - PE_CATALOG_DEFAULT_MARGIN);
    /* the primary's columns are not read: the order itself (step 5, conversion), no pre-period */
    const char *p[] = {store_id, flag_key, started, "5", share, "1", "0", until, "-infinity"};
    pe_db_result_t *res = NULL;
    int rc = experiments_exec_hashed(conn, SQL_ARMS, 9, p, &res);
    if (rc == 0)
        parse_arms(res, arms, variants);
    pe_db_result_free(res);
    for (int k = 0; k < 2; k++) {
        revenue[k] = (pe_stats_arm_t){
            .n = arms[k].units, .sum = arms[k].revenue, .sum_squares = arms[k].revenue_sq};
        profit[k] = (pe_stats_arm_t){
            .n = arms[k].units, .sum = arms[k].profit, .sum_squares = arms[k].profit_sq};
    }
    return rc;
}

static void look_of(const target_t *t, const arm_t arms[2], double runtime_days, bool cuped,
                    pe_experiments_look_t *look)
{
    memset(look, 0, sizeof *look);
    look->primary_name = t->primary;
    look->runtime_days = runtime_days;
    /* CUPED: every unit's own pre-period; a unit without one has covariate 0 */
    look->has_covariate = cuped && arms[0].with_pre + arms[1].with_pre > 0;
    for (int k = 0; k < 2; k++) {
        const arm_t *a = &arms[k];
        look->profit[k] =
            (pe_stats_arm_t){.n = a->units, .sum = a->profit, .sum_squares = a->profit_sq};
        if (t->profit) {
            look->primary_type = PE_STATS_MEAN;
            look->primary[k] = look->profit[k];
        } else if (t->revenue) {
            look->primary_type = PE_STATS_MEAN;
            look->primary[k] =
                (pe_stats_arm_t){.n = a->units, .sum = a->revenue, .sum_squares = a->revenue_sq};
        } else if (t->step) {
            look->primary_type = PE_STATS_PROPORTION;
            look->primary[k] =
                (pe_stats_arm_t){.n = a->before, .sum = a->passed, .sum_squares = a->passed};
        } else {
            look->primary_type = PE_STATS_PROPORTION;
            look->primary[k] =
                (pe_stats_arm_t){.n = a->units, .sum = a->converted, .sum_squares = a->converted};
        }
        if (look->has_covariate) {
            look->profit[k].pre_sum = a->pre_profit;
            look->profit[k].pre_sum_squares = a->pre_profit_sq;
            look->profit[k].sum_products = a->pre_profit_xy;
            if (t->profit) {
                look->primary[k] = look->profit[k];
            } else {
                look->primary[k].pre_sum = a->x;
                look->primary[k].pre_sum_squares = a->x_sq;
                look->primary[k].sum_products = a->xy;
            }
        }
    }
}

/* The arms of every windowed trigger whose window is shorter than the runtime (decide.c):
 * its metric over the units first exposed in the window before now_us; one read per window. */
static int window_arms(pe_db_pool_t *db, const char *store_id, const target_t *t,
                       const char *changeset_id, const pe_experiments_plan_t *plan,
                       const char *started, const char *end, int64_t now_us,
                       pe_experiments_look_t *look)
{
    for (size_t i = 0; i < plan->n_triggers; i++) {
        double w = plan->triggers[i].window_days;
        if (!pe_experiments_trigger_windowed(plan, i) || !(look->runtime_days > w) ||
            look->trigger_given[i])
            continue;
        char from[40], variants[2][65];
        arm_t arms[2];
        memset(arms, 0, sizeof arms);
        pe_time_format_rfc3339(now_us - (int64_t)(w * US_PER_DAY), from, sizeof from);
        int rc = read_arms(db, store_id, t, changeset_id, started, end, from, arms, variants);
        if (rc != 0)
            return rc;
        pe_experiments_look_t one;
        look_of(t, arms, look->runtime_days, false, &one);
        for (size_t j = i; j < plan->n_triggers; j++) /* every trigger on this window */
            if (plan->triggers[j].window_days == w && pe_experiments_trigger_windowed(plan, j)) {
                const pe_stats_arm_t *a =
                    plan->triggers[j].metric == PE_EXPERIMENTS_PRIMARY ? one.primary : one.profit;
                look->trigger_arms[j][0] = a[0];
                look->trigger_arms[j][1] = a[1];
                look->trigger_given[j] = true;
            }
    }
    return 0;
}

static cJSON *number_or_null(double x)
{
    return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull();
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : NAN;
}

static bool add_evidence(cJSON *o, const char *name, const pe_experiments_evidence_t *e,
                         const char *metric)
{
    cJSON *x = cJSON_AddObjectToObject(o, name);
    return x && cJSON_AddStringToObject(x, "metric", metric) &&
           cJSON_AddStringToObject(
               x, "method", e->method == PE_STATS_SEQUENTIAL ? "sequential" : "frequentist") &&
           cJSON_AddItemToObject(x, "effect", number_or_null(e->effect)) &&
           cJSON_AddItemToObject(x, "ciLow", number_or_null(e->ci_low)) &&
           cJSON_AddItemToObject(x, "ciHigh", number_or_null(e->ci_high)) &&
           cJSON_AddItemToObject(x, "pValue", number_or_null(e->p_value)) &&
           cJSON_AddItemToObject(x, "alwaysValidP", number_or_null(e->always_valid_p));
}

/* One metric's relative effect of treatment over control: the fixed-horizon (Welch) interval
 * and p at alpha, and the always-valid p (the sequential test at the plan's tuning) — what a
 * chart and a table show beside the decision, which only the decision rule acts on. */
static cJSON *effect_json(const char *metric, pe_stats_metric_t type, const pe_stats_arm_t *c,
                          const pe_stats_arm_t *t, const pe_experiments_plan_t *plan)
{
    pe_stats_input_t in;
    pe_stats_input_defaults(&in);
    in.metric = type;
    in.alpha = plan->alpha;
    in.control = *c;
    in.variant = *t;
    in.control.pre_sum = in.control.pre_sum_squares = in.control.sum_products = 0;
    in.variant.pre_sum = in.variant.pre_sum_squares = in.variant.sum_products = 0;
    pe_stats_result_t fixed, seq;
    pe_refusal_t err;
    bool ok_fixed = c->n >= 2 && t->n >= 2 && pe_stats_analyze(&in, &fixed, &err) == 0;
    in.method = PE_STATS_SEQUENTIAL;
    in.sequential_tuning = pe_experiments_tuning(plan);
    bool ok_seq = ok_fixed && pe_stats_analyze(&in, &seq, &err) == 0;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "metric", metric) ||
        !cJSON_AddItemToObject(o, "effect",
                               number_or_null(ok_fixed ? fixed.effect.estimate : NAN)) ||
        !cJSON_AddItemToObject(o, "ciLow", number_or_null(ok_fixed ? fixed.effect.ci_low : NAN)) ||
        !cJSON_AddItemToObject(o, "ciHigh",
                               number_or_null(ok_fixed ? fixed.effect.ci_high : NAN)) ||
        !cJSON_AddItemToObject(o, "pValue",
                               number_or_null(ok_fixed ? fixed.effect.p_value : NAN)) ||
        !cJSON_AddItemToObject(o, "alwaysValidP",
                               number_or_null(ok_seq ? seq.effect.p_value : NAN))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *effects_json(const target_t *t, const arm_t arms[2],
                           const pe_experiments_plan_t *plan)
{
    const arm_t *c = &arms[PE_EXPERIMENTS_CONTROL], *v = &arms[PE_EXPERIMENTS_TREATMENT];
    char step[64];
    snprintf(step, sizeof step, "%s_conversion_rate", STEPS[(t->step ? t->step : 5) - 1]);
    struct {
        const char *name;
        pe_stats_metric_t type;
        pe_stats_arm_t c, t;
    } m[] = {
        {"conversion_rate",
         PE_STATS_PROPORTION,
         {c->units, c->converted, c->converted, 0, 0, 0},
         {v->units, v->converted, v->converted, 0, 0, 0}},
        {step,
         PE_STATS_PROPORTION,
         {c->before, c->passed, c->passed, 0, 0, 0},
         {v->before, v->passed, v->passed, 0, 0, 0}},
        {"revenue_per_visitor",
         PE_STATS_MEAN,
         {c->units, c->revenue, c->revenue_sq, 0, 0, 0},
         {v->units, v->revenue, v->revenue_sq, 0, 0, 0}},
        {"profit_per_visitor",
         PE_STATS_MEAN,
         {c->units, c->profit, c->profit_sq, 0, 0, 0},
         {v->units, v->profit, v->profit_sq, 0, 0, 0}},
    };
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; list && i < PE_ARRAY_LEN(m); i++) {
        if (i == 1 && !t->step)
            continue; /* the step is the order itself: conversion_rate says it */
        cJSON *e = effect_json(m[i].name, m[i].type, &m[i].c, &m[i].t, plan);
        if (!e || !cJSON_AddItemToArray(list, e)) {
            cJSON_Delete(e);
            cJSON_Delete(list);
            return NULL;
        }
    }
    return list;
}

static cJSON *variant_json(const char *name, const arm_t *a, const target_t *t)
{
    cJSON *v = cJSON_CreateObject();
    cJSON *step = v ? cJSON_CreateObject() : NULL;
    bool ok =
        step && cJSON_AddStringToObject(v, "variant", name) &&
        cJSON_AddNumberToObject(v, "units", a->units) &&
        cJSON_AddItemToObject(v, "conversionRate", number_or_null(ratio(a->converted, a->units))) &&
        cJSON_AddNumberToObject(v, "orders", a->orders) &&
        cJSON_AddNumberToObject(v, "revenue", round(a->revenue * 100) / 100) &&
        cJSON_AddNumberToObject(v, "profit", round(a->profit * 100) / 100) &&
        cJSON_AddItemToObject(v, "revenuePerVisitor",
                              number_or_null(ratio(a->revenue, a->units))) &&
        cJSON_AddItemToObject(v, "profitPerVisitor", number_or_null(ratio(a->profit, a->units))) &&
        cJSON_AddItemToObject(v, "aov", number_or_null(ratio(a->revenue, a->orders))) &&
        cJSON_AddItemToObject(v, "costKnownShare", number_or_null(ratio(a->known, a->revenue))) &&
        cJSON_AddItemToObject(v, "step", step);
    if (!ok && step && !get(v, "step"))
        cJSON_Delete(step);
    ok = ok && cJSON_AddStringToObject(step, "name", STEPS[(t->step ? t->step : 5) - 1]) &&
         cJSON_AddNumberToObject(step, "reachedBefore", a->before) &&
         cJSON_AddNumberToObject(step, "passed", a->passed) &&
         cJSON_AddItemToObject(step, "rate", number_or_null(ratio(a->passed, a->before)));
    if (!ok) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

static int read_series(pe_db_pool_t *db, const char *store_id, const char *id, cJSON *list)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        return rc;
    const char *p[] = {store_id, id};
    rc = pe_db_exec(conn, SQL_SERIES, 2, p, &res);
    for (size_t i = 0; rc == 0 && i < pe_db_result_rows(res); i++) {
        cJSON *doc = NULL;
        rc = pe_db_result_json(res, i, 0, &doc);
        if (rc == 0 && !cJSON_AddItemToArray(list, doc)) {
            cJSON_Delete(doc);
            rc = PE_ENOMEM;
        }
    }
    pe_db_result_free(res);
    pe_db_release(db, conn);
    return rc;
}

int pe_experiments_results(pe_db_pool_t *db, const char *store_id, const cJSON *changeset,
                           int64_t now_us, cJSON **out, pe_refusal_t *err)
{
    *out = NULL;
    pe_experiments_plan_t plan;
    target_t t;
    cJSON *triggers = cJSON_CreateArray();
    int rc = triggers ? plan_of(changeset, &plan, &t, triggers, err) : PE_ENOMEM;
    if (rc != 0) {
        cJSON_Delete(triggers);
        return rc;
    }
    const cJSON *exec = get(changeset, "execution");
    const cJSON *started = get(exec, "startedAt"), *ended = get(exec, "endedAt");
    int64_t start_us = 0, end_us = 0;
    bool running =
        cJSON_IsString(started) && pe_time_parse_rfc3339(started->valuestring, &start_us) == 0;
    /* an experiment that ended is measured as it stood then: its flag is off since, or serves
     * one variant to everyone */
    char end[40] = "infinity";
    if (cJSON_IsString(ended) && pe_time_parse_rfc3339(ended->valuestring, &end_us) == 0) {
        snprintf(end, sizeof end, "%s", ended->valuestring);
        now_us = end_us < now_us ? end_us : now_us;
    }
    arm_t arms[2];
    memset(arms, 0, sizeof arms);
    char variants[2][65] = {"control", "treatment"};
    /* a running experiment is read from its per-unit table, brought up to date first (units.c:
     * the cost is the units changed since the last refresh); an ended one from the rollups */
    const cJSON *id_item = get(changeset, "id"), *status_item = get(exec, "status");
    const char *live = NULL;
    if (running && !end_us && cJSON_IsString(id_item) && cJSON_IsString(status_item) &&
        (strcmp(status_item->valuestring, "ACTIVE") == 0 ||
         strcmp(status_item->valuestring, "MEASURING") == 0)) {
        live = id_item->valuestring;
        if ((rc = pe_experiments_refresh(db, store_id, now_us, PE_EXPERIMENTS_REFRESH_LOGGED,
                                         NULL)) != 0) {
            cJSON_Delete(triggers);
            return rc;
        }
    }
    if (running && (rc = read_arms(db, store_id, &t, live, started->valuestring, end, "-infinity",
                                   arms, variants)) != 0) {
        cJSON_Delete(triggers);
        return rc;
    }
    double runtime = running ? fmax((double)(now_us - start_us) / US_PER_DAY, 0) : 0;
    pe_experiments_look_t look;
    look_of(&t, arms, runtime, plan.cuped, &look);
    if (running && (rc = window_arms(db, store_id, &t, live, &plan, started->valuestring, end,
                                     now_us, &look)) != 0) {
        cJSON_Delete(triggers);
        return rc;
    }
    pe_experiments_decision_t d;
    rc = pe_experiments_decide(&plan, &look, &d, err);
    if (rc != 0) {
        cJSON_Delete(triggers);
        return rc;
    }
    rc = PE_ENOMEM;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToObject(o, "triggers", triggers)) {
        cJSON_Delete(triggers);
        cJSON_Delete(o);
        return rc;
    }
    cJSON *list = o ? cJSON_AddArrayToObject(o, "variants") : NULL;
    cJSON *dec = list ? cJSON_AddObjectToObject(o, "decision") : NULL, *cuped = NULL;
    const cJSON *id = get(changeset, "id"), *status = get(exec, "status");
    double needed = 0;
    for (int k = 0; k < 2; k++)
        needed = fmax(needed, plan.min_units - look.primary[k].n);
    char ends[40] = "";
    if (running)
        pe_time_format_rfc3339(start_us + (int64_t)(plan.window_days * US_PER_DAY), ends,
                               sizeof ends);
    bool ok =
        dec &&
        cJSON_AddStringToObject(o, "changesetId", cJSON_IsString(id) ? id->valuestring : "") &&
        cJSON_AddStringToObject(o, "flagKey", t.flag_key) &&
        cJSON_AddStringToObject(o, "status", cJSON_IsString(status) ? status->valuestring : "") &&
        cJSON_AddItemToObject(o, "startedAt",
                              running ? cJSON_CreateString(started->valuestring)
                                      : cJSON_CreateNull()) &&
        cJSON_AddNumberToObject(o, "runtimeDays", round(runtime * 1000) / 1000) &&
        cJSON_AddStringToObject(o, "primaryMetric", t.primary) &&
        cJSON_AddItemToObject(o, "minimumRuntimeEndsAt",
                              running ? cJSON_CreateString(ends) : cJSON_CreateNull()) &&
        cJSON_AddNumberToObject(o, "unitsNeededPerArm", ceil(fmax(needed, 0))) &&
        cJSON_AddItemToObject(o, "srmPValue", number_or_null(d.srm_p)) &&
        (cuped = cJSON_AddObjectToObject(o, "cuped")) != NULL &&
        cJSON_AddBoolToObject(cuped, "planned", plan.cuped) &&
        cJSON_AddBoolToObject(cuped, "applied", look.has_covariate) &&
        cJSON_AddNumberToObject(cuped, "unitsWithPrePeriod", arms[0].with_pre + arms[1].with_pre) &&
        cJSON_AddNumberToObject(cuped, "prePeriodDays", PRE_PERIOD_DAYS);
    for (int k = 0; ok && k < 2; k++) {
        cJSON *v = variant_json(variants[k], &arms[k], &t);
        ok = v && cJSON_AddItemToArray(list, v);
        if (!ok)
            cJSON_Delete(v);
    }
    ok = ok && cJSON_AddStringToObject(dec, "action", pe_experiments_action_name(d.action)) &&
         cJSON_AddStringToObject(dec, "reason", d.reason) &&
         add_evidence(dec, "evidence", &d.evidence,
                      d.evidence.metric == PE_EXPERIMENTS_PROFIT ? "profit_per_visitor"
                                                                 : t.primary) &&
         add_evidence(dec, "guardrail", &d.guardrail, "profit_per_visitor");
    cJSON *effects = ok ? effects_json(&t, arms, &plan) : NULL;
    ok = effects && cJSON_AddItemToObject(o, "effects", effects);
    if (!ok)
        cJSON_Delete(effects);
    cJSON *series = ok ? cJSON_AddArrayToObject(o, "series") : NULL;
    if (!series) {
        cJSON_Delete(o);
        return rc;
    }
    if ((rc = read_series(db, store_id, cJSON_IsString(id) ? id->valuestring : "", series)) != 0) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return 0;
}
