/*
 * attribution.c — what Autopilot has earned the merchant (8.15): a figure an accountant would
 * sign, measured and never extrapolated, beside the global holdout's direct measurement of
 * everything Autopilot did. GET …/attribution answers with pe_experiments_attribution.
 *
 *   changesets + experiment_results ──▶ each PROVEN / PERMANENT change: its measured per-visitor
 *     effect on revenue and profit, the estimate and its standard error — measured by its
 *     control group until the range's end while it still serves its split (PROVEN; results.c's
 *     arms), else as proven (PERMANENT: no control group left)
 *   agg_exposures ──▶ × the visitors its treatment actually served in the range, week by week
 *     (the week a visitor first got it) ──▶ changes on the same step and overlapping segments
 *     are one group: a visitor who got several of them counts once, for one of them
 *   ──▶ the store's credit: the one-sided 99 % lower bound of the sum over every change
 *   agg_exposures (holdout flag) + agg_sessions, agg_orders, agg_session_products ──▶ the
 *     store holdout against every exposed visitor: conversion, revenue and profit per visitor
 *     with 95 % intervals ──▶ the attributed lower bound never exceeds the holdout's upper
 *     bound × the exposed visitors (when both groups have PE_EXPERIMENTS_ATTRIBUTION_MIN_UNITS)
 *   experiment_results (automatic rollbacks) ──▶ harm avoided, an estimate: the smallest loss a
 *     day the measurement allows (the measured loss: "estimate") × the days left of the window
 *   store_settings.subscription_cost_per_month ──▶ ROI over the range (null without it)
 *
 * Invariants:
 *  1. Only PROVEN and PERMANENT ChangeSets are attributed: each one's measured effect per
 *     visitor (estimate and standard error) × its treatment's visitors first exposed in the
 *     range, and the store is credited max(0, the one-sided 99 % lower bound of the sum):
 *     Σ units·estimate − z·√Σ (units·se)², the changes' measurements being independent (each
 *     has its own random split). No projection, no point estimate in the attributed figure
 *     ("estimate" is shown beside it). Each change's effect is the one of every unit it
 *     measured up to the range's end: the truth it estimates is what the change did to the
 *     visitors it served until then.
 *  2. Two attributed changes on the same funnel step whose segments can share a visitor (an
 *     unknown step or segment: always) are never added for the same visitor: within their group
 *     (the union of overlapping pairs) each visitor is credited once, to the change with the
 *     largest lower bound of the ones it got (SQL_GROUP_SERVED).
 *  3. Reads aggregate tables and the experiments' stored ends only, in one REPEATABLE READ
 *     read-only transaction, every statement filtered by store_id. "Now" is the caller's: the
 *     range ends at the end of `to` or at now, whichever is first.
 *  4. Everything is in the store's currency, rounded to cents in the answer only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiments_internal.h"
#include "pe/aggregate.h"
#include "pe/catalog.h"
#include "pe/experiments.h"

#define ACQUIRE_TIMEOUT_MS 5000
#define MAX_CHANGES        512
#define MAX_WEEKS          (PE_AGGREGATE_MAX_DAYS / 7 + 2)
#define HOLDOUT_ALPHA      0.05
/* The credit is a one-sided 99 % lower bound of the store's total: "never more than it earned"
 * is a promise made for every store at once, so each store's figure holds with a margin (with
 * 95 %, about one store in twenty would be credited more than it earned). */
#define CREDIT_ALPHA 0.01
#define CREDIT_Z     2.3263478740408408 /* the standard normal's 1 − CREDIT_ALPHA quantile */
/* The proof's stored bounds (experiment_results, the plan's alpha of 0.05): profit one-sided,
 * revenue two-sided; a PERMANENT change's are widened from them to CREDIT_ALPHA. */
#define PROOF_Z_PROFIT  1.6448536269514722
#define PROOF_Z_REVENUE 1.959963984540054
#define DAYS_PER_MONTH  (365.25 / 12)

/* The range as instants ($1 store, $2 from, $3 to, both store-local dates, $4 now): its start,
 * its end (the end of `to` or now), the store's currency, time zone and subscription cost. */
static const char SQL_RANGE[] =
    "SELECT s.currency, s.timezone, r.t0, least(r.t1, $4::timestamptz),"
    "       extract(epoch FROM greatest(least(r.t1, $4::timestamptz) - r.t0, '0'))::float8 / 86400,"
    "       st.subscription_cost_per_month::float8"
    "  FROM stores s"
    " CROSS JOIN LATERAL (SELECT ($2::date)::timestamp AT TIME ZONE s.timezone AS t0,"
    "                            ($3::date + 1)::timestamp AT TIME ZONE s.timezone AS t1) r"
    "  LEFT JOIN store_settings st ON st.store_id = s.id"
    " WHERE s.id = $1::uuid";

/* Every ChangeSet with a flag live in [$2, $3): running, ended in the range, or still serving
 * (PROVEN, PERMANENT), with its step, segment and stored end. */
static const char SQL_CHANGES[] =
    "SELECT c.id, c.status, c.feature_flag_key, c.started_at,"
    "       coalesce(r.doc->>'step', ''),"
    "       coalesce(c.action_plan->'targetSegment'->'rules', '[]')::text,"
    "       x.outcome, x.rollback_kind,"
    "       coalesce(x.decided_at >= $2::timestamptz AND x.decided_at < $3::timestamptz, false),"
    "       x.profit_effect, x.profit_ci_low,"
    "       (SELECT (v->>'profitPerVisitor')::float8 FROM "
    "jsonb_array_elements(x.decision->'variants') v"
    "         WHERE v->>'variant' = 'control' AND jsonb_typeof(v->'profitPerVisitor') = 'number'),"
    "       (SELECT (v->>'revenuePerVisitor')::float8 FROM "
    "jsonb_array_elements(x.decision->'variants') v"
    "         WHERE v->>'variant' = 'control' AND jsonb_typeof(v->'revenuePerVisitor') = 'number'),"
    "       (SELECT (e->>'effect')::float8 FROM jsonb_array_elements(x.decision->'effects') e"
    "         WHERE e->>'metric' = 'revenue_per_visitor' AND jsonb_typeof(e->'effect') = 'number'),"
    "       (SELECT (e->>'ciLow')::float8 FROM jsonb_array_elements(x.decision->'effects') e"
    "         WHERE e->>'metric' = 'revenue_per_visitor' AND jsonb_typeof(e->'ciLow') = 'number'),"
    "       x.treatment_units::float8,"
    "       extract(epoch FROM x.ended_at - x.started_at)::float8 / 86400,"
    "       coalesce(c.proof_plan->>'measurementWindow', ''),"
    "       (x.decided_at AT TIME ZONE $4)::date - '1970-01-01'::date,"
    "       x.profit_ci_high,"
    "       (SELECT (e->>'ciHigh')::float8 FROM jsonb_array_elements(x.decision->'effects') e"
    "         WHERE e->>'metric' = 'revenue_per_visitor' AND jsonb_typeof(e->'ciHigh') = 'number')"
    "  FROM changesets c"
    "  LEFT JOIN recommendations r ON r.store_id = c.store_id AND r.changeset_id = c.id"
    "  LEFT JOIN experiment_results x ON x.store_id = c.store_id AND x.changeset_id = c.id"
    " WHERE c.store_id = $1::uuid AND c.feature_flag_key IS NOT NULL AND c.started_at IS NOT NULL"
    "   AND c.started_at < $3::timestamptz"
    "   AND (c.ended_at IS NULL OR c.ended_at >= $2::timestamptz"
    "        OR c.status IN ('PROVEN', 'PERMANENT'))"
    " ORDER BY c.started_at, c.id";

/* The visitors one change's treatment served ($2 flag, $3 its start), by the store-local
 * Monday ($6 time zone; days since 1970-01-01) of their first exposure in [$4, $5): first
 * variant treatment (intention to treat), store holdout excluded. */
static const char SQL_SERVED[] =
    "SELECT (date_trunc('week', u.first_at AT TIME ZONE $6))::date - '1970-01-01'::date, count(*)"
    "  FROM (SELECT unit, (array_agg(variant ORDER BY first_at, session_id))[1] AS variant,"
    "               min(first_at) AS first_at"
    "          FROM agg_exposures"
    "         WHERE store_id = $1::uuid AND flag_key = $2 AND NOT holdout"
    "           AND first_at >= $3::timestamptz AND first_at < $5::timestamptz"
    "         GROUP BY unit) u"
    " WHERE u.variant = 'treatment' AND u.first_at >= $4::timestamptz"
    " GROUP BY 1";

/* The visitors a group of changes served ($2 their flags, $3 their starts, $7 and $8 their
 * profit and revenue lower bounds per visitor, in the same order), each counted once: for the
 * change with the largest profit bound (then revenue bound, then the first) of those it got, by
 * the Monday of its first exposure to any of them in [$4, $5) ($6 time zone). Answers rows of
 * (Monday, the change's position in the arrays from 1, visitors). */
static const char SQL_GROUP_SERVED[] =
    "WITH c AS (SELECT * FROM unnest($2::text[], $3::timestamptz[], $7::float8[], $8::float8[])"
    "             WITH ORDINALITY AS c(flag, started, pro_lb, rev_lb, i)),"
    "     t AS (SELECT u.unit, u.first_at, c.i, c.pro_lb, c.rev_lb FROM c"
    "            CROSS JOIN LATERAL ("
    "              SELECT unit, (array_agg(variant ORDER BY first_at, session_id))[1] AS variant,"
    "                     min(first_at) AS first_at"
    "                FROM agg_exposures"
    "               WHERE store_id = $1::uuid AND flag_key = c.flag AND NOT holdout"
    "                 AND first_at >= c.started AND first_at < $5::timestamptz"
    "               GROUP BY unit) u"
    "           WHERE u.variant = 'treatment' AND u.first_at >= $4::timestamptz),"
    "     per AS (SELECT DISTINCT ON (unit) unit, i,"
    "                    min(first_at) OVER (PARTITION BY unit) AS first_at"
    "               FROM t ORDER BY unit, pro_lb DESC, rev_lb DESC, i)"
    "SELECT (date_trunc('week', first_at AT TIME ZONE $6))::date - '1970-01-01'::date, i,"
    "       count(*)"
    "  FROM per GROUP BY 1, 2";

/* The store holdout against every other visitor exposed to an Autopilot flag in [$2, $3): per
 * group, visitors, visitors with an order, Σ and Σ² of revenue and of gross profit per visitor
 * over their sessions from their first exposure in the range on ($4: 1 − the default margin,
 * results.c's cost of goods). */
static const char SQL_HOLDOUT[] =
    "WITH u AS (SELECT e.unit, bool_or(e.holdout) AS holdout, min(e.first_at) AS first_at"
    "             FROM agg_exposures e"
    "            WHERE e.store_id = $1::uuid AND e.first_at >= $2::timestamptz"
    "              AND e.first_at < $3::timestamptz"
    "              AND e.flag_key IN (SELECT c.feature_flag_key FROM changesets c"
    "                                  WHERE c.store_id = $1::uuid"
    "                                    AND c.feature_flag_key IS NOT NULL)"
    "            GROUP BY e.unit),"
    "     us AS (SELECT u.unit, s.session_id, s.orders FROM u"
    "              JOIN agg_sessions s ON s.store_id = $1::uuid AND s.visitor = u.unit"
    "               AND coalesce(s.ended_at, s.started_at) >= u.first_at"
    "               AND s.started_at < $3::timestamptz),"
    "     rev AS (SELECT o.session_id, sum(o.value)::float8 AS revenue FROM agg_orders o"
    "              WHERE o.store_id = $1::uuid AND o.session_id IN (SELECT session_id FROM us)"
    "              GROUP BY 1),"
    "     cogs AS (SELECT sp.session_id,"
    "                     sum(coalesce(sp.units * p.cost, sp.revenue * $4::float8))::float8"
    "                       AS cost"
    "                FROM agg_session_products sp"
    "                LEFT JOIN products p ON p.store_id = sp.store_id AND p.sku = sp.product_id"
    "               WHERE sp.store_id = $1::uuid AND sp.purchases > 0"
    "                 AND sp.session_id IN (SELECT session_id FROM us)"
    "               GROUP BY 1),"
    "     pu AS (SELECT u.unit, u.holdout, coalesce(sum(us.orders), 0) AS orders,"
    "                   coalesce(sum(rev.revenue), 0) AS revenue,"
    "                   coalesce(sum(rev.revenue), 0) - coalesce(sum(c.cost), 0) AS profit"
    "              FROM u LEFT JOIN us ON us.unit = u.unit"
    "              LEFT JOIN rev ON rev.session_id = us.session_id"
    "              LEFT JOIN cogs c ON c.session_id = us.session_id"
    "             GROUP BY u.unit, u.holdout)"
    "SELECT holdout, count(*)::float8, (count(*) FILTER (WHERE orders > 0))::float8,"
    "       sum(revenue), sum(revenue * revenue), sum(profit), sum(profit * profit)"
    "  FROM pu GROUP BY holdout";

/* One ChangeSet live in the range. */
typedef struct {
    char id[64], status[24], flag[256], started[40], step[32];
    cJSON *rules;    /* its targetSegment's rules; NULL when unreadable (overlaps everything) */
    bool proven;     /* PROVEN or PERMANENT, with a PROVEN end stored: attributed */
    bool harm;       /* rolled back automatically in the range: harm avoided */
    bool manual;     /* rolled back by a merchant */
    double est[2];   /* revenue, profit per treated visitor: the point estimate */
    double se[2];    /* its standard error (0 with est 0: nothing measured) */
    double lb[2];    /* max(0, its own one-sided 99 % lower bound): what it is shown with */
    bool remeasured; /* est / se from its control group until the range's end, not the proof */
    /* an automatic rollback's loss a day: the bound nearest to no loss of its measured effect
     * (what the measurement is sure of), and the estimate; the days its window had left */
    double loss_per_day[2], loss_est_per_day[2], days_left;
    int32_t ended_day;       /* the store-local day of its end */
    double units[MAX_WEEKS]; /* treated visitors by week of first exposure */
    double total_units;
    int group;   /* union-find parent */
    size_t size; /* a group's root: its credited changes */
    /* the visitors credited to it by week: its units, less (in a group of several) those
     * credited to another change of the group they also got */
    double credited[MAX_WEEKS];
} change_t;

enum { REVENUE = 0, PROFIT = 1 };

static double col(const pe_db_result_t *r, size_t row, size_t c)
{
    return pe_db_result_isnull(r, row, c) ? NAN : strtod(pe_db_result_get(r, row, c), NULL);
}

static double cents(double x)
{
    return isfinite(x) ? round(x * 100) / 100 : 0;
}

static cJSON *number_or_null(double x)
{
    return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull();
}

static bool put(cJSON *o, const char *k, cJSON *v)
{
    if (v && cJSON_AddItemToObject(o, k, v))
        return true;
    cJSON_Delete(v);
    return false;
}

/* ---- segments: can two changes reach the same visitor? ------------------------------------ */

/* The values an eq / in rule admits, as an array (borrowed or *owned), or NULL for any other
 * operator (which narrows less predictably: assumed to overlap). */
static const cJSON *admitted(const cJSON *rule, cJSON **owned)
{
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(rule, "operator");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rule, "value");
    *owned = NULL;
    if (!cJSON_IsString(op) || !v)
        return NULL;
    if (strcmp(op->valuestring, "in") == 0 && cJSON_IsArray(v))
        return v;
    if (strcmp(op->valuestring, "eq") == 0 && !cJSON_IsArray(v) && !cJSON_IsObject(v)) {
        *owned = cJSON_CreateArray();
        if (*owned && !cJSON_AddItemToArray(*owned, cJSON_Duplicate(v, true))) {
            cJSON_Delete(*owned);
            *owned = NULL;
        }
        return *owned;
    }
    return NULL;
}

static bool any_common(const cJSON *a, const cJSON *b)
{
    const cJSON *x, *y;
    cJSON_ArrayForEach(x, a) cJSON_ArrayForEach(y, b) if (cJSON_Compare(x, y, true)) return true;
    return false;
}

bool pe_experiments_segments_overlap(const cJSON *a, const cJSON *b)
{
    if (!cJSON_IsArray(a) || !cJSON_IsArray(b))
        return true; /* unknown: assume the worst */
    const cJSON *ra, *rb;
    cJSON_ArrayForEach(ra, a)
    {
        const cJSON *attr_a = cJSON_GetObjectItemCaseSensitive(ra, "attribute");
        cJSON_ArrayForEach(rb, b)
        {
            const cJSON *attr_b = cJSON_GetObjectItemCaseSensitive(rb, "attribute");
            if (!cJSON_IsString(attr_a) || !cJSON_IsString(attr_b) ||
                strcmp(attr_a->valuestring, attr_b->valuestring) != 0)
                continue;
            cJSON *oa = NULL, *ob = NULL;
            const cJSON *va = admitted(ra, &oa), *vb = admitted(rb, &ob);
            bool disjoint = va && vb && !any_common(va, vb);
            cJSON_Delete(oa);
            cJSON_Delete(ob);
            if (disjoint)
                return false; /* one attribute that no visitor can satisfy in both */
        }
    }
    return true;
}

static int find(change_t *c, int i)
{
    while (c[i].group != i)
        i = c[i].group = c[c[i].group].group;
    return i;
}

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct {
    double n, converted, revenue, revenue_sq, profit, profit_sq;
} group_t;

typedef struct {
    char currency[4], tz[65], t0[40], t1[40];
    double days, subscription; /* subscription NaN: not set */
    int64_t now_us;
    int32_t from, to, first_monday;
    size_t nweeks, nchanges;
    change_t *changes;
    group_t holdout, exposed;
} att_t;

static int read_range(pe_db_conn_t *conn, const char *store_id, int64_t now_us, att_t *a)
{
    char from[11], to[11], now[PE_DB_TEXT_TIMESTAMPTZ_LEN];
    pe_aggregate_date_format(a->from, from, sizeof from);
    pe_aggregate_date_format(a->to, to, sizeof to);
    pe_db_text_timestamptz(now_us, now);
    const char *p[] = {store_id, from, to, now};
    pe_db_result_t *r = NULL;
    int rc = pe_db_exec(conn, SQL_RANGE, 4, p, &r);
    if (rc == 0 && pe_db_result_rows(r) != 1)
        rc = PE_ENOTFOUND;
    if (rc == 0) {
        snprintf(a->currency, sizeof a->currency, "%s", pe_db_result_get(r, 0, 0));
        snprintf(a->tz, sizeof a->tz, "%s", pe_db_result_get(r, 0, 1));
        snprintf(a->t0, sizeof a->t0, "%s", pe_db_result_get(r, 0, 2));
        snprintf(a->t1, sizeof a->t1, "%s", pe_db_result_get(r, 0, 3));
        a->days = col(r, 0, 4);
        a->subscription = col(r, 0, 5);
    }
    pe_db_result_free(r);
    return rc;
}

/* Days of an ISO 8601 measurementWindow ("P14D", "P2W"), NaN otherwise. */
static double window_days(const char *s)
{
    return pe_experiments_duration_days(s, false);
}

/* A change's effect on metric m per treated visitor: est and its standard error se, and its own
 * lower bound; nothing (0, 0) when either is undefined. */
static void set_effect(change_t *c, int m, double est, double se)
{
    bool ok = isfinite(est) && isfinite(se) && se >= 0;
    c->est[m] = ok ? est : 0;
    c->se[m] = ok ? se : 0;
    c->lb[m] = fmax(0, c->est[m] - CREDIT_Z * c->se[m]);
}

static int read_changes(pe_db_conn_t *conn, const char *store_id, att_t *a)
{
    const char *p[] = {store_id, a->t0, a->t1, a->tz};
    pe_db_result_t *r = NULL;
    int rc = pe_db_exec(conn, SQL_CHANGES, 4, p, &r);
    size_t n = rc == 0 ? pe_db_result_rows(r) : 0;
    if (rc == 0 && n > MAX_CHANGES)
        n = MAX_CHANGES; /* a store with more live experiments than this: the oldest count */
    if (rc == 0 && n && !(a->changes = calloc(n, sizeof *a->changes)))
        rc = PE_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        change_t *c = &a->changes[a->nchanges++];
        c->group = (int)i;
        snprintf(c->id, sizeof c->id, "%s", pe_db_result_get(r, i, 0));
        snprintf(c->status, sizeof c->status, "%s", pe_db_result_get(r, i, 1));
        snprintf(c->flag, sizeof c->flag, "%s", pe_db_result_get(r, i, 2));
        snprintf(c->started, sizeof c->started, "%s", pe_db_result_get(r, i, 3));
        snprintf(c->step, sizeof c->step, "%s", pe_db_result_get(r, i, 4));
        c->rules = cJSON_Parse(pe_db_result_get(r, i, 5));
        const char *outcome = pe_db_result_get(r, i, 6), *kind = pe_db_result_get(r, i, 7);
        bool ended_in_range = strcmp(pe_db_result_get(r, i, 8), "t") == 0;
        double peff = col(r, i, 9), plow = col(r, i, 10), ppv = fabs(col(r, i, 11)),
               rpv = fabs(col(r, i, 12)), reff = col(r, i, 13), rlow = col(r, i, 14),
               treated = col(r, i, 15), runtime = col(r, i, 16);
        double window = window_days(pe_db_result_get(r, i, 17));
        double ended_day = col(r, i, 18);
        c->ended_day = isfinite(ended_day) ? (int32_t)ended_day : a->to;
        bool serving = strcmp(c->status, "PROVEN") == 0 || strcmp(c->status, "PERMANENT") == 0;
        c->proven = serving && strcmp(outcome, "PROVEN") == 0;
        c->manual = strcmp(c->status, "ROLLED_BACK") == 0 && strcmp(kind, "automatic") != 0;
        if (c->proven) {
            /* per treated visitor, in money: the relative effect × control's mean, and its
             * standard error from the proof's bound (a PROVEN change is re-measured below, and
             * this is replaced) */
            set_effect(c, REVENUE, reff * rpv, (reff - rlow) * rpv / PROOF_Z_REVENUE);
            set_effect(c, PROFIT, peff * ppv, (peff - plow) * ppv / PROOF_Z_PROFIT);
        }
        c->harm = strcmp(kind, "automatic") == 0 && ended_in_range;
        if (c->harm && runtime > 0 && treated > 0) {
            double per_day = treated / runtime;
            double phigh = col(r, i, 19), rhigh = col(r, i, 20);
            c->loss_per_day[REVENUE] = isfinite(rhigh * rpv) ? fmax(0, -rhigh * rpv) * per_day : 0;
            c->loss_per_day[PROFIT] = isfinite(phigh * ppv) ? fmax(0, -phigh * ppv) * per_day : 0;
            c->loss_est_per_day[REVENUE] =
                isfinite(reff * rpv) ? fmax(0, -reff * rpv) * per_day : 0;
            c->loss_est_per_day[PROFIT] = isfinite(peff * ppv) ? fmax(0, -peff * ppv) * per_day : 0;
            c->days_left = isfinite(window) ? fmax(0, window - runtime) : 0;
        }
    }
    pe_db_result_free(r);
    return rc;
}

/* The estimate of treatment − control per visitor (absolute) and its standard error; false when
 * undefined (an arm under 2 units, no variance). */
static bool effect_of(const pe_stats_arm_t arm[2], double *est, double *se)
{
    pe_stats_moments_t mc, mt;
    pe_stats_diff_t d;
    if (!(arm[PE_EXPERIMENTS_CONTROL].n >= 2 && arm[PE_EXPERIMENTS_TREATMENT].n >= 2) ||
        pe_stats_moments(PE_STATS_MEAN, &arm[PE_EXPERIMENTS_CONTROL], &mc) != 0 ||
        pe_stats_moments(PE_STATS_MEAN, &arm[PE_EXPERIMENTS_TREATMENT], &mt) != 0 ||
        pe_stats_difference(&mc, &mt, PE_STATS_ABSOLUTE, &d) != 0 || !isfinite(d.estimate))
        return false;
    *est = d.estimate;
    *se = sqrt(d.var_variant + d.var_control);
    return isfinite(*se) && *se > 0;
}

/* A PROVEN change still serves its split, so its control group still measures it: its credit
 * per visitor is re-measured over every unit it served until the range's end (more units than
 * at the proof, and none of the proof's luck), both metrics or neither. */
static int remeasure(pe_db_conn_t *conn, const char *store_id, const att_t *a, change_t *c)
{
    pe_stats_arm_t revenue[2], profit[2];
    int rc = pe_experiments_money_arms(conn, store_id, c->flag, c->started, a->t1, revenue, profit);
    double est[2], se[2];
    if (rc == 0 && effect_of(revenue, &est[REVENUE], &se[REVENUE]) &&
        effect_of(profit, &est[PROFIT], &se[PROFIT])) {
        for (int m = 0; m < 2; m++)
            set_effect(c, m, est[m], se[m]);
        c->remeasured = true;
    }
    return rc;
}

static int read_served(pe_db_conn_t *conn, const char *store_id, att_t *a, change_t *c)
{
    const char *p[] = {store_id, c->flag, c->started, a->t0, a->t1, a->tz};
    pe_db_result_t *r = NULL;
    int rc = pe_db_exec(conn, SQL_SERVED, 6, p, &r);
    for (size_t i = 0; rc == 0 && i < pe_db_result_rows(r); i++) {
        long w = (long)(col(r, i, 0) - a->first_monday) / 7;
        if (w < 0 || (size_t)w >= a->nweeks)
            continue; /* cannot happen: first exposures are in the range */
        c->units[w] += col(r, i, 1);
        c->total_units += col(r, i, 1);
    }
    pe_db_result_free(r);
    return rc;
}

/* Groups the credited changes: one step (an unknown one: any) and segments that can share a
 * visitor; sizes on the roots. */
static void group_changes(att_t *a)
{
    for (size_t i = 0; i < a->nchanges; i++)
        for (size_t j = i + 1; j < a->nchanges; j++) {
            change_t *x = &a->changes[i], *y = &a->changes[j];
            if (!x->proven || !y->proven)
                continue;
            bool same_step = !x->step[0] || !y->step[0] || strcmp(x->step, y->step) == 0;
            if (same_step && pe_experiments_segments_overlap(x->rules, y->rules))
                a->changes[find(a->changes, (int)j)].group = find(a->changes, (int)i);
        }
    for (size_t i = 0; i < a->nchanges; i++)
        if (a->changes[i].proven)
            a->changes[find(a->changes, (int)i)].size++;
}

/* Appends x as an element of a PostgreSQL array literal (quoted, \ and " escaped). */
static bool array_item(pe_buf_t *b, const char *x)
{
    bool ok = pe_buf_append(b, b->len ? ",\"" : "{\"", 2) == 0;
    for (const char *p = x; ok && *p; p++)
        ok = (*p == '"' || *p == '\\' ? pe_buf_append(b, "\\", 1) == 0 : true) &&
             pe_buf_append(b, p, 1) == 0;
    return ok && pe_buf_append(b, "\"", 1) == 0;
}

static bool array_number(pe_buf_t *b, double x)
{
    char n[40];
    snprintf(n, sizeof n, "%.17g", isfinite(x) ? x : 0);
    return array_item(b, n);
}

/* The group rooted at root: its visitors once each, credited to one of its changes
 * (SQL_GROUP_SERVED). */
static int read_group_served(pe_db_conn_t *conn, const char *store_id, att_t *a, int root)
{
    pe_buf_t arr[4];
    memset(arr, 0, sizeof arr);
    change_t *member[MAX_CHANGES];
    size_t n = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < a->nchanges; i++) {
        change_t *c = &a->changes[i];
        if (!c->proven || find(a->changes, (int)i) != root)
            continue;
        member[n++] = c;
        ok = array_item(&arr[0], c->flag) && array_item(&arr[1], c->started) &&
             array_number(&arr[2], c->est[PROFIT] - CREDIT_Z * c->se[PROFIT]) &&
             array_number(&arr[3], c->est[REVENUE] - CREDIT_Z * c->se[REVENUE]);
    }
    for (int k = 0; ok && k < 4; k++)
        ok = pe_buf_append(&arr[k], "}", 2) == 0; /* with the terminating NUL */
    int rc = ok ? 0 : PE_ENOMEM;
    pe_db_result_t *r = NULL;
    if (rc == 0) {
        const char *p[] = {store_id, arr[0].data, arr[1].data, a->t0,
                           a->t1,    a->tz,       arr[2].data, arr[3].data};
        rc = pe_db_exec(conn, SQL_GROUP_SERVED, 8, p, &r);
    }
    for (size_t i = 0; rc == 0 && i < pe_db_result_rows(r); i++) {
        long w = (long)(col(r, i, 0) - a->first_monday) / 7;
        long k = (long)col(r, i, 1) - 1;
        if (w < 0 || (size_t)w >= a->nweeks || k < 0 || (size_t)k >= n)
            continue;
        member[k]->credited[w] += col(r, i, 2);
    }
    pe_db_result_free(r);
    for (int k = 0; k < 4; k++)
        pe_buf_free(&arr[k]);
    return rc;
}

static int read_holdout(pe_db_conn_t *conn, const char *store_id, att_t *a)
{
    char share[32];
    snprintf(share, sizeof share, "%.17g", 1.0 - PE_CATALOG_DEFAULT_MARGIN);
    const char *p[] = {store_id, a->t0, a->t1, share};
    pe_db_result_t *r = NULL;
    int rc = experiments_exec_hashed(conn, SQL_HOLDOUT, 4, p, &r);
    for (size_t i = 0; rc == 0 && i < pe_db_result_rows(r); i++) {
        group_t *g = strcmp(pe_db_result_get(r, i, 0), "t") == 0 ? &a->holdout : &a->exposed;
        *g = (group_t){col(r, i, 1), col(r, i, 2), col(r, i, 3),
                       col(r, i, 4), col(r, i, 5), col(r, i, 6)};
    }
    pe_db_result_free(r);
    return rc;
}

/* ---- the answer ------------------------------------------------------------------------- */

/* One metric of the holdout comparison: the exposed visitors against the holdout's, relative
 * (the delta method: the holdout's mean is itself an estimate) with a two-sided 95 % interval;
 * *abs_high the absolute effect's upper bound per visitor (NaN when undefined). */
static cJSON *comparison(pe_stats_metric_t type, const pe_stats_arm_t *h, const pe_stats_arm_t *e,
                         double *abs_high)
{
    pe_stats_moments_t mh, me;
    pe_stats_diff_t rel, abs;
    pe_stats_test_t trel = {.estimate = NAN, .ci_low = NAN, .ci_high = NAN},
                    tabs = {.ci_high = NAN};
    *abs_high = NAN;
    bool ok = h->n >= 2 && e->n >= 2 && pe_stats_moments(type, h, &mh) == 0 &&
              pe_stats_moments(type, e, &me) == 0;
    if (ok && pe_stats_difference(&mh, &me, PE_STATS_RELATIVE, &rel) == 0 && isfinite(rel.estimate))
        pe_stats_welch(&rel, HOLDOUT_ALPHA, PE_STATS_TWO_SIDED, &trel);
    if (ok && pe_stats_difference(&mh, &me, PE_STATS_ABSOLUTE, &abs) == 0 &&
        isfinite(abs.estimate) &&
        pe_stats_welch(&abs, HOLDOUT_ALPHA, PE_STATS_TWO_SIDED, &tabs) == 0)
        *abs_high = tabs.ci_high;
    cJSON *o = cJSON_CreateObject();
    if (o && put(o, "holdout", number_or_null(ok ? mh.mean : NAN)) &&
        put(o, "exposed", number_or_null(ok ? me.mean : NAN)) &&
        put(o, "effect", number_or_null(trel.estimate)) &&
        put(o, "ciLow", number_or_null(trel.ci_low)) &&
        put(o, "ciHigh", number_or_null(trel.ci_high)))
        return o;
    cJSON_Delete(o);
    return NULL;
}

/* {k1: a, k2: b} in money, rounded to cents. */
static cJSON *money2(const char *k1, double a, const char *k2, double b)
{
    cJSON *o = cJSON_CreateObject();
    if (o && cJSON_AddNumberToObject(o, k1, cents(a)) && cJSON_AddNumberToObject(o, k2, cents(b)))
        return o;
    cJSON_Delete(o);
    return NULL;
}

static cJSON *money_pair(double estimate, double lower)
{
    return money2("estimate", estimate, "lowerBound", lower);
}

static const char METHOD[] =
    "Only changes that were proven in an A/B test and are still live (PROVEN or PERMANENT) "
    "count. Each one's gain per visitor is measured against its control group over everyone it "
    "was shown to, and multiplied by the visitors its change was actually shown in the "
    "period: nothing is projected into the future. The profit credited is the lower end of a "
    "99 % confidence bound for the sum of those gains (never the estimate, and nothing when "
    "that lower end is below zero). When credited changes act on the same checkout step for "
    "visitors who can be the same, a visitor who got several of them counts once, for the "
    "change whose gain is surest. "
    "Separately, the visitors Autopilot never changes anything for (the store holdout) are "
    "compared with everyone else, which measures all of Autopilot's changes together; the "
    "credited total is never more than that comparison allows at its upper bound. Harm "
    "avoided is an estimate: for each change rolled back automatically, the smallest loss a day "
    "its measurement allows, times the days left of its planned test.";

static double sum_weeks(const double *x, size_t nweeks)
{
    double sum = 0;
    for (size_t w = 0; w < nweeks; w++)
        sum += x[w];
    return sum;
}

/* Builds the answer from what was read. */
static int answer(att_t *a, cJSON **out)
{
    double att[2][MAX_WEEKS] = {{0}}, harm[2][MAX_WEEKS] = {{0}};
    double treated[MAX_WEEKS] = {0}, gain[2][MAX_WEEKS] = {{0}};
    /* Σ credited visitors × estimate, and the variance of that sum: each change's estimate is
     * one measurement for all its visitors (their errors add up), different changes' are
     * independent (their variances add up) */
    double total_est[2] = {0}, variance[2] = {0};
    for (size_t i = 0; i < a->nchanges; i++) {
        const change_t *c = &a->changes[i];
        if (!c->proven)
            continue;
        double units = sum_weeks(c->credited, a->nweeks);
        for (size_t w = 0; w < a->nweeks; w++) {
            treated[w] += c->credited[w];
            for (int m = 0; m < 2; m++)
                gain[m][w] += fmax(0, c->est[m]) * c->credited[w];
        }
        for (int m = 0; m < 2; m++) {
            total_est[m] += c->est[m] * units;
            variance[m] += (c->se[m] * units) * (c->se[m] * units);
        }
    }
    /* the credit: the sum's one-sided lower bound, never below zero, shared out over the weeks
     * as the gains its positive parts measured there */
    double total[2] = {0};
    for (int m = 0; m < 2; m++) {
        total[m] = fmax(0, total_est[m] - CREDIT_Z * sqrt(variance[m]));
        double gains = 0;
        for (size_t w = 0; w < a->nweeks; w++)
            gains += gain[m][w];
        for (size_t w = 0; w < a->nweeks && gains > 0; w++)
            att[m][w] = total[m] * gain[m][w] / gains;
    }
    size_t harmed = 0;
    double harm_est[2] = {0};
    for (size_t i = 0; i < a->nchanges; i++) {
        const change_t *c = &a->changes[i];
        if (!c->harm)
            continue;
        harmed++;
        long w = ((long)c->ended_day - a->first_monday) / 7;
        w = w < 0 ? 0 : (size_t)w >= a->nweeks ? (long)a->nweeks - 1 : w;
        for (int m = 0; m < 2; m++) {
            harm[m][w] += c->loss_per_day[m] * c->days_left;
            harm_est[m] += c->loss_est_per_day[m] * c->days_left;
        }
    }
    double total_harm[2] = {0};
    for (size_t w = 0; w < a->nweeks; w++)
        for (int m = 0; m < 2; m++)
            total_harm[m] += harm[m][w];

    /* the holdout: conversion, revenue and profit per visitor */
    pe_stats_arm_t hc = {a->holdout.n, a->holdout.converted, a->holdout.converted, 0, 0, 0},
                   ec = {a->exposed.n, a->exposed.converted, a->exposed.converted, 0, 0, 0},
                   hr = {a->holdout.n, a->holdout.revenue, a->holdout.revenue_sq, 0, 0, 0},
                   er = {a->exposed.n, a->exposed.revenue, a->exposed.revenue_sq, 0, 0, 0},
                   hp = {a->holdout.n, a->holdout.profit, a->holdout.profit_sq, 0, 0, 0},
                   ep = {a->exposed.n, a->exposed.profit, a->exposed.profit_sq, 0, 0, 0};
    double high_conv, high[2];
    bool powered = a->holdout.n >= PE_EXPERIMENTS_ATTRIBUTION_MIN_UNITS &&
                   a->exposed.n >= PE_EXPERIMENTS_ATTRIBUTION_MIN_UNITS;
    cJSON *h = cJSON_CreateObject();
    if (h && !(cJSON_AddNumberToObject(h, "units", a->holdout.n) &&
               cJSON_AddNumberToObject(h, "exposedUnits", a->exposed.n) &&
               cJSON_AddBoolToObject(h, "enoughUnits", powered) &&
               put(h, "conversionRate", comparison(PE_STATS_PROPORTION, &hc, &ec, &high_conv)) &&
               put(h, "revenuePerVisitor", comparison(PE_STATS_MEAN, &hr, &er, &high[REVENUE])) &&
               put(h, "profitPerVisitor", comparison(PE_STATS_MEAN, &hp, &ep, &high[PROFIT])))) {
        cJSON_Delete(h);
        h = NULL;
    }
    bool capped = false;
    for (int m = 0; m < 2 && powered; m++) {
        double cap = isfinite(high[m]) ? fmax(0, high[m]) * a->exposed.n : INFINITY;
        if (total[m] > cap) {
            double f = total[m] > 0 ? cap / total[m] : 0;
            for (size_t w = 0; w < a->nweeks; w++)
                att[m][w] *= f;
            total[m] = cap;
            capped |= m == PROFIT;
        }
    }

    size_t run = a->nchanges, running = 0, proven = 0, permanent = 0, auto_rb = 0, manual_rb = 0,
           counted = 0;
    for (size_t i = 0; i < a->nchanges; i++) {
        const change_t *c = &a->changes[i];
        running += strcmp(c->status, "ACTIVE") == 0 || strcmp(c->status, "MEASURING") == 0;
        proven += strcmp(c->status, "PROVEN") == 0;
        permanent += strcmp(c->status, "PERMANENT") == 0;
        auto_rb += strcmp(c->status, "ROLLED_BACK") == 0 && !c->manual;
        manual_rb += c->manual;
        counted += c->proven;
    }
    const char *why = NULL;
    if (!counted)
        why = proven + permanent
                  ? "No live change has a stored proof in this period, so nothing is attributed."
                  : "No experiment has been proven in this period, so nothing is attributed: "
                    "only a change proven in an A/B test earns credit.";
    else if (!(total[PROFIT] > 0) && capped)
        why = "The holdout comparison does not support any gain in this period, so nothing is "
              "attributed.";
    else if (!(total[PROFIT] > 0))
        why = "The proven changes' confidence intervals reach zero (or their visitors fall "
              "outside this period), so nothing is attributed.";

    char from[11], to[11];
    pe_aggregate_date_format(a->from, from, sizeof from);
    pe_aggregate_date_format(a->to, to, sizeof to);
    cJSON *o = cJSON_CreateObject(), *x, *att_o, *list, *hv, *weekly;
    bool ok = h && o && cJSON_AddStringToObject(o, "from", from) &&
              cJSON_AddStringToObject(o, "to", to) &&
              cJSON_AddStringToObject(o, "currency", a->currency) &&
              (x = cJSON_AddObjectToObject(o, "experiments")) &&
              cJSON_AddNumberToObject(x, "run", (double)run) &&
              cJSON_AddNumberToObject(x, "running", (double)running) &&
              cJSON_AddNumberToObject(x, "proven", (double)proven) &&
              cJSON_AddNumberToObject(x, "permanent", (double)permanent) &&
              cJSON_AddNumberToObject(x, "rolledBackAutomatically", (double)auto_rb) &&
              cJSON_AddNumberToObject(x, "rolledBackManually", (double)manual_rb) &&
              (att_o = cJSON_AddObjectToObject(o, "attributed")) &&
              put(att_o, "revenue", money_pair(total_est[REVENUE], total[REVENUE])) &&
              put(att_o, "profit", money_pair(total_est[PROFIT], total[PROFIT])) &&
              cJSON_AddBoolToObject(att_o, "cappedByHoldout", capped) &&
              put(att_o, "reason", why ? cJSON_CreateString(why) : cJSON_CreateNull()) &&
              (list = cJSON_AddArrayToObject(att_o, "changesets"));
    for (size_t i = 0; ok && i < a->nchanges; i++) {
        const change_t *c = &a->changes[i];
        if (!c->proven)
            continue;
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(list, e)) {
            cJSON_Delete(e);
            ok = false;
            break;
        }
        ok = cJSON_AddStringToObject(e, "id", c->id) &&
             cJSON_AddStringToObject(e, "status", c->status) &&
             put(e, "step", c->step[0] ? cJSON_CreateString(c->step) : cJSON_CreateNull()) &&
             cJSON_AddNumberToObject(e, "treatedUnits", c->total_units) &&
             cJSON_AddNumberToObject(e, "creditedUnits", sum_weeks(c->credited, a->nweeks)) &&
             cJSON_AddStringToObject(e, "measuredBy", c->remeasured ? "controlGroup" : "proof") &&
             put(e, "revenue",
                 money_pair(c->est[REVENUE] * c->total_units, c->lb[REVENUE] * c->total_units)) &&
             put(e, "profit",
                 money_pair(c->est[PROFIT] * c->total_units, c->lb[PROFIT] * c->total_units)) &&
             cJSON_AddNumberToObject(e, "group", find(a->changes, (int)i));
    }
    bool h_given = ok; /* put() owns h from here: it is placed, or deleted */
    ok = ok && put(o, "holdout", h) && (hv = cJSON_AddObjectToObject(o, "harmAvoided")) &&
         cJSON_AddNumberToObject(hv, "revenue", cents(total_harm[REVENUE])) &&
         cJSON_AddNumberToObject(hv, "profit", cents(total_harm[PROFIT])) &&
         put(hv, "estimate", money2("revenue", harm_est[REVENUE], "profit", harm_est[PROFIT])) &&
         cJSON_AddNumberToObject(hv, "rollbacks", (double)harmed) &&
         cJSON_AddStringToObject(hv, "note",
                                 "an estimate: each automatic rollback's loss a day — the "
                                 "smallest its measurement allows (\"estimate\": the measured "
                                 "one) — times the days left of its planned test") &&
         (weekly = cJSON_AddArrayToObject(o, "weekly"));
    double cum[2] = {0};
    for (size_t w = 0; ok && w < a->nweeks; w++) {
        char week[11];
        pe_aggregate_date_format(a->first_monday + (int32_t)(7 * w), week, sizeof week);
        cum[REVENUE] += att[REVENUE][w];
        cum[PROFIT] += att[PROFIT][w];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(weekly, e)) {
            cJSON_Delete(e);
            ok = false;
            break;
        }
        ok = cJSON_AddStringToObject(e, "week", week) &&
             cJSON_AddNumberToObject(e, "treatedUnits", treated[w]) &&
             cJSON_AddNumberToObject(e, "attributedRevenue", cents(att[REVENUE][w])) &&
             cJSON_AddNumberToObject(e, "attributedProfit", cents(att[PROFIT][w])) &&
             cJSON_AddNumberToObject(e, "cumulativeRevenue", cents(cum[REVENUE])) &&
             cJSON_AddNumberToObject(e, "cumulativeProfit", cents(cum[PROFIT])) &&
             cJSON_AddNumberToObject(e, "harmAvoidedProfit", cents(harm[PROFIT][w]));
    }
    char at[32];
    pe_time_format_rfc3339(a->now_us, at, sizeof at);
    ok = ok && cJSON_AddStringToObject(o, "method", METHOD) &&
         cJSON_AddStringToObject(o, "computedAt", at);
    if (!h_given)
        cJSON_Delete(h);
    if (!ok) {
        cJSON_Delete(o);
        return PE_ENOMEM;
    }
    *out = o;
    return 0;
}

/* The attribution of [from, to] at now_us without its ROI: *out, and the subscription cost a
 * month (NaN: not set) and the range's days that ROI divides by. */
static int compute(pe_db_pool_t *db, const char *store_id, int32_t from, int32_t to, int64_t now_us,
                   cJSON **out, double *subscription, double *days)
{
    *out = NULL;
    if (from > to || to - from >= PE_AGGREGATE_MAX_DAYS)
        return PE_EINVAL;
    att_t a = {.from = from, .to = to, .now_us = now_us};
    /* Mondays: 1970-01-01 was a Thursday (day 0 ≡ Thursday, Monday = day − (day + 3) mod 7) */
    a.first_monday = from - (int32_t)(((from % 7) + 7 + 3) % 7);
    int32_t last_monday = to - (int32_t)(((to % 7) + 7 + 3) % 7);
    a.nweeks = (size_t)((last_monday - a.first_monday) / 7 + 1);
    pe_db_conn_t *conn = NULL;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = pe_db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL);
    /* The holdout's and the arms' statements join CTEs of every exposed visitor and their
     * sessions. With statistics taken before a flag's exposures existed (a young store, a new
     * experiment) the planner sees one row in each and joins them in nested loops: quadratic,
     * 30 s and cancelled for a store of 25,000 sessions in CI. Hash joins cost the same when the
     * estimates are right. */
    if (rc == 0)
        rc = pe_db_exec(conn, "SET LOCAL enable_nestloop = off", 0, NULL, NULL);
    if (rc == 0)
        rc = read_range(conn, store_id, now_us, &a);
    if (rc == 0)
        rc = read_changes(conn, store_id, &a);
    group_changes(&a);
    for (size_t i = 0; rc == 0 && i < a.nchanges; i++)
        if (a.changes[i].proven && strcmp(a.changes[i].status, "PROVEN") == 0)
            rc = remeasure(conn, store_id, &a, &a.changes[i]);
    for (size_t i = 0; rc == 0 && i < a.nchanges; i++)
        if (a.changes[i].proven)
            rc = read_served(conn, store_id, &a, &a.changes[i]);
    for (size_t i = 0; rc == 0 && i < a.nchanges; i++) {
        change_t *c = &a.changes[i];
        if (c->size > 1)
            rc = read_group_served(conn, store_id, &a, (int)i);
        else if (c->proven && c->size == 1)
            memcpy(c->credited, c->units, sizeof c->credited); /* a group of its own */
    }
    if (rc == 0)
        rc = read_holdout(conn, store_id, &a);
    if (rc == 0)
        rc = pe_db_exec(conn, "COMMIT", 0, NULL, NULL);
    else
        pe_db_exec(conn, "ROLLBACK", 0, NULL, NULL);
    pe_db_release(db, conn);
    if (rc == 0)
        rc = answer(&a, out);
    for (size_t i = 0; i < a.nchanges; i++)
        cJSON_Delete(a.changes[i].rules);
    free(a.changes);
    *subscription = a.subscription;
    *days = a.days;
    return rc;
}

/* Appends "roi" to doc: the attributed profit over the subscription cost of the range's days. */
static int add_roi(cJSON *doc, double subscription, double days)
{
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "attributed"),
                                         "profit"),
        "lowerBound");
    double profit = cJSON_IsNumber(lb) ? lb->valuedouble : 0;
    double cost = isfinite(subscription) ? subscription * days / DAYS_PER_MONTH : NAN;
    cJSON *roi = cJSON_CreateObject();
    if (roi && put(roi, "subscriptionCostPerMonth", number_or_null(subscription)) &&
        put(roi, "subscriptionCost", number_or_null(isfinite(cost) ? cents(cost) : NAN)) &&
        put(roi, "value", number_or_null(cost > 0 ? profit / cost : NAN)) && put(doc, "roi", roi))
        return 0;
    cJSON_Delete(roi);
    return PE_ENOMEM;
}

int pe_experiments_attribution(pe_db_pool_t *db, const char *store_id, int32_t from, int32_t to,
                               int64_t now_us, cJSON **out)
{
    double subscription = NAN, days = 0;
    int rc = compute(db, store_id, from, to, now_us, out, &subscription, &days);
    if (rc == 0 && (rc = add_roi(*out, subscription, days)) != 0) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- snapshots (0022_attribution.sql): what the job keeps warm for the dashboard ---------- */

/* A snapshot of [$2, $3] computed at most $5 seconds before $4 (and not after it), with the
 * settings as they are now; ($1 the store). */
static const char SQL_SNAPSHOT[] =
    "SELECT st.subscription_cost_per_month::float8, sn.doc::text, sn.range_days"
    "  FROM stores s"
    "  LEFT JOIN store_settings st ON st.store_id = s.id"
    "  LEFT JOIN attribution_snapshots sn ON sn.store_id = s.id AND sn.from_day = $2::date"
    "        AND sn.to_day = $3::date AND sn.computed_at <= $4::timestamptz"
    "        AND sn.computed_at >= $4::timestamptz - make_interval(secs => $5::float8)"
    " WHERE s.id = $1::uuid";

static const char SQL_ASKED[] =
    "UPDATE attribution_snapshots SET asked_at = greatest(asked_at, $4::timestamptz)"
    " WHERE store_id = $1::uuid AND from_day = $2::date AND to_day = $3::date";

/* $5 the doc, $6 its range's days, $7 asked now (else the row keeps its asked_at; a new row
 * takes $4). */
static const char SQL_STORE[] =
    "INSERT INTO attribution_snapshots (store_id, from_day, to_day, computed_at, asked_at,"
    " range_days, doc)"
    " VALUES ($1::uuid, $2::date, $3::date, $4::timestamptz, $4::timestamptz, $6::float8,"
    "         $5::jsonb)"
    " ON CONFLICT (store_id, from_day, to_day) DO UPDATE SET"
    "   computed_at = excluded.computed_at, range_days = excluded.range_days, doc = excluded.doc,"
    "   asked_at = CASE WHEN $7::bool THEN greatest(attribution_snapshots.asked_at,"
    "                                               excluded.asked_at)"
    "                   ELSE attribution_snapshots.asked_at END"
    " WHERE attribution_snapshots.computed_at <= excluded.computed_at";

static int store_snapshot(pe_db_pool_t *db, const char *store_id, int32_t from, int32_t to,
                          int64_t now_us, const cJSON *doc, double days, bool asked)
{
    char f[11], t[11], now[PE_DB_TEXT_TIMESTAMPTZ_LEN], d[40];
    pe_aggregate_date_format(from, f, sizeof f);
    pe_aggregate_date_format(to, t, sizeof t);
    pe_db_text_timestamptz(now_us, now);
    snprintf(d, sizeof d, "%.17g", isfinite(days) ? days : 0);
    char *text = pe_json_print(doc);
    if (!text)
        return PE_ENOMEM;
    pe_db_conn_t *conn = NULL;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc == 0) {
        const char *p[] = {store_id, f, t, now, text, d, asked ? "true" : "false"};
        rc = pe_db_exec(conn, SQL_STORE, 7, p, NULL);
        pe_db_release(db, conn);
    }
    free(text);
    return rc;
}

int pe_experiments_attribution_get(pe_db_pool_t *db, const char *store_id, int32_t from, int32_t to,
                                   int64_t now_us, cJSON **out)
{
    *out = NULL;
    char f[11], t[11], now[PE_DB_TEXT_TIMESTAMPTZ_LEN], age[32];
    pe_aggregate_date_format(from, f, sizeof f);
    pe_aggregate_date_format(to, t, sizeof t);
    pe_db_text_timestamptz(now_us, now);
    snprintf(age, sizeof age, "%d", PE_EXPERIMENTS_ATTRIBUTION_MAX_AGE_S);
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *r = NULL;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        return rc;
    const char *p[] = {store_id, f, t, now, age};
    rc = pe_db_exec(conn, SQL_SNAPSHOT, 5, p, &r);
    if (rc == 0 && pe_db_result_rows(r) != 1)
        rc = PE_ENOTFOUND;
    if (rc == 0 && !pe_db_result_isnull(r, 0, 1)) { /* a fresh snapshot */
        double subscription = col(r, 0, 0), days = col(r, 0, 2);
        cJSON *doc = cJSON_Parse(pe_db_result_get(r, 0, 1));
        rc = doc ? pe_db_exec(conn, SQL_ASKED, 4, p, NULL) : PE_ENOMEM;
        if (rc == 0)
            rc = add_roi(doc, subscription, days);
        if (rc == 0)
            *out = doc;
        else
            cJSON_Delete(doc);
        pe_db_result_free(r);
        pe_db_release(db, conn);
        return rc;
    }
    pe_db_result_free(r);
    pe_db_release(db, conn);
    if (rc != 0)
        return rc;
    double subscription = NAN, days = 0;
    cJSON *doc = NULL;
    rc = compute(db, store_id, from, to, now_us, &doc, &subscription, &days);
    if (rc == 0)
        rc = store_snapshot(db, store_id, from, to, now_us, doc, days, true);
    if (rc == 0)
        rc = add_roi(doc, subscription, days);
    if (rc == 0)
        *out = doc;
    else
        cJSON_Delete(doc);
    return rc;
}

/* The ranges the job keeps warm ($1 store, $2 now): the default (the store's last 30 days at
 * now) and the ones asked for in the last day (the latest four); older snapshots go. */
static const char SQL_WARM[] =
    "WITH gone AS (DELETE FROM attribution_snapshots WHERE store_id = $1::uuid"
    "                 AND asked_at < $2::timestamptz - interval '1 day')"
    "SELECT d - 29 - '1970-01-01'::date, d - '1970-01-01'::date FROM ("
    "  SELECT (($2::timestamptz) AT TIME ZONE s.timezone)::date AS d FROM stores s"
    "   WHERE s.id = $1::uuid) x"
    " UNION"
    " SELECT * FROM (SELECT from_day - '1970-01-01'::date, to_day - '1970-01-01'::date"
    "                  FROM attribution_snapshots WHERE store_id = $1::uuid"
    "                   AND asked_at >= $2::timestamptz - interval '1 day'"
    "                 ORDER BY asked_at DESC LIMIT 4) y";

int pe_experiments_attribution_refresh(pe_db_pool_t *db, const char *store_id, int64_t now_us)
{
    char now[PE_DB_TEXT_TIMESTAMPTZ_LEN];
    pe_db_text_timestamptz(now_us, now);
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *r = NULL;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        return rc;
    const char *p[] = {store_id, now};
    rc = pe_db_exec(conn, SQL_WARM, 2, p, &r);
    pe_db_release(db, conn);
    for (size_t i = 0; rc == 0 && i < pe_db_result_rows(r); i++) {
        int32_t from = (int32_t)col(r, i, 0), to = (int32_t)col(r, i, 1);
        double subscription = NAN, days = 0;
        cJSON *doc = NULL;
        rc = compute(db, store_id, from, to, now_us, &doc, &subscription, &days);
        if (rc == 0)
            rc = store_snapshot(db, store_id, from, to, now_us, doc, days, false);
        cJSON_Delete(doc);
    }
    pe_db_result_free(r);
    return rc;
}
