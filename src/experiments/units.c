/*
 * units.c — incremental measurement: the per-unit table of every running experiment of a store
 * (experiment_units, 0021_experiment_units.sql) brought up to date from only the units whose
 * rollups changed since the last refresh, and an experiment's arms read from it as one
 * aggregate. A refresh's cost grows with the units that changed, not with the history behind
 * the experiment; results.c reads running experiments through it.
 *
 *   aggregation (run.c) ──rebuilds sessions, exposures──▶ triggers log units
 *                                                        (experiment_dirty_units)
 *   pe_experiments_refresh(store):  one transaction, the store's lock held
 *     SQL_NEEDED   anything to do? (no: the transaction ends here — a GET's usual case)
 *     SQL_RUN      running experiments of the store; which need a rebuild
 *     SQL_DRAIN    the logged units, taken out of the log
 *     SQL_MINUS    what those units added to their arms so far
 *     SQL_DROP_*   their rows (all rows of a rebuild; experiments no longer running)
 *     SQL_STATE    one state row per running experiment
 *     SQL_UNITS_*  the rows recomputed from the rollups: every unit of a rebuild, the logged
 *                  units of the others
 *     SQL_PLUS     what they add now; SQL_ARMS_* the arms: rebuilt, or += plus − minus
 *   pe_experiments_units_arms: the kept arms of one experiment (experiment_arms, two rows), or
 *     over a window of its units (first exposed from a given instant on)
 *
 * Invariants:
 *  1. SQL_UNITS_* compute each unit's values exactly as results.c's SQL_ARMS does (first
 *     variant, sessions from the first exposure on, the pre-period, cost of goods with the
 *     default margin), in numeric: sums are exact whatever their order, so the kept arms after
 *     any sequence of batches (old values subtracted, new added) equal a rebuild's, bit for
 *     bit.
 *  2. Draining the log and rewriting its units happen in one transaction: a unit logged by an
 *     aggregation that commits meanwhile stays in the log (its insert waits on the row this
 *     transaction deleted) and is rewritten by the next refresh.
 *  3. A rebuild from scratch: no state yet, a changed flag or start, a cost change in the
 *     store's catalogue (experiment_dirty_stores), the caller's request, or a day since the last
 *     one (what the log could have missed — an aggregation that began before the approval —
 *     cannot outlive a day).
 *  4. Every statement filters by store_id; refreshes of one store are serialised by a
 *     transaction advisory lock, so concurrent GETs and the job do not interleave.
 *  5. A GET never does a job's work: its refresh (LOGGED) rewrites logged units only, and only
 *     a backlog of at most 10,000; rebuilds and larger backlogs wait for the measure job (DUE),
 *     which runs without a statement timeout and rebuilds every experiment when the backlog is
 *     larger (a full re-aggregation logs every unit: one pass beats a lookup per unit). Until then
 * a GET reads the table as the last refresh left it (consistent, at most one job interval old) —
 * or, for an experiment that has none yet, the rollups directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiments_internal.h"
#include "pe/catalog.h"
#include "pe/experiments.h"

#define ACQUIRE_TIMEOUT_MS 5000
#define PRE_PERIOD_DAYS    "28" /* results.c's PRE_PERIOD_DAYS */

static const char SQL_LOCK[] =
    "SELECT pg_advisory_xact_lock(hashtext('pe experiment units'), hashtext($1))";

/* The running experiments of the store ($1): the flag key as pe_changeset_flag_key, the
 * primary's target step and kind as results.c's plan_of reads them. */
#define RUNNING                                                                                    \
    "SELECT c.id,"                                                                                 \
    "       coalesce(nullif(c.action_plan->'implementation'->>'featureFlagKey', ''),"              \
    "                'changeset-' || c.id) AS flag_key,"                                           \
    "       (c.execution->>'startedAt')::timestamptz AS started_at,"                               \
    "       coalesce(CASE c.proof_plan->'primaryMetrics'->0->>'name'"                              \
    "                WHEN 'cart_conversion_rate' THEN 1 WHEN 'checkout_conversion_rate' THEN 2"    \
    "                WHEN 'shipping_conversion_rate' THEN 3"                                       \
    "                WHEN 'payment_conversion_rate' THEN 4"                                        \
    "                WHEN 'confirmation_conversion_rate' THEN 5 END, 5) AS step,"                  \
    "       CASE WHEN c.proof_plan->'primaryMetrics'->0->>'name' IN ('cart_conversion_rate',"      \
    "                 'checkout_conversion_rate', 'shipping_conversion_rate',"                     \
    "                 'payment_conversion_rate', 'confirmation_conversion_rate') THEN 0"           \
    "            WHEN c.proof_plan->'primaryMetrics'->0->>'name' = 'revenue_per_visitor' THEN 2"   \
    "            WHEN c.proof_plan->'primaryMetrics'->0->>'name' = 'profit_per_visitor' THEN 3"    \
    "            ELSE 1 END AS kind"                                                               \
    "  FROM changesets c"                                                                          \
    " WHERE c.store_id = $1::uuid AND c.status IN ('ACTIVE', 'MEASURING')"                         \
    "   AND c.execution ? 'startedAt' AND c.action_plan->>'rolloutStrategy' = 'holdout'"

/* Whether a refresh has anything to do ($1 store, $2 now): logged units, a cost change, a
 * running experiment without a current table, a table of one no longer running. */
static const char SQL_NEEDED[] =
    "SELECT EXISTS (SELECT 1 FROM experiment_dirty_units WHERE store_id = $1::uuid)"
    "    OR EXISTS (SELECT 1 FROM experiment_dirty_stores WHERE store_id = $1::uuid)"
    "    OR EXISTS (SELECT 1 FROM (" RUNNING ") r"
    "                 LEFT JOIN experiment_unit_state s"
    "                   ON s.store_id = $1::uuid AND s.changeset_id = r.id"
    "                WHERE s.changeset_id IS NULL OR s.flag_key <> r.flag_key"
    "                   OR s.started_at <> r.started_at OR s.step <> r.step OR s.kind <> r.kind"
    "                   OR s.built_at < $2::timestamptz - interval '1 day')"
    "    OR EXISTS (SELECT 1 FROM experiment_unit_state s WHERE s.store_id = $1::uuid"
    "                  AND NOT EXISTS (SELECT 1 FROM (" RUNNING ") r"
    "                                   WHERE r.id = s.changeset_id))";

/* $1 store, $2 now, $3 rebuild every experiment. */
static const char SQL_RUN[] =
    "CREATE TEMP TABLE eu_run ON COMMIT DROP AS"
    " SELECT r.*, ($3::bool OR s.changeset_id IS NULL OR s.flag_key <> r.flag_key"
    "              OR s.started_at <> r.started_at OR s.step <> r.step OR s.kind <> r.kind"
    "              OR s.built_at < $2::timestamptz - interval '1 day'"
    "              OR EXISTS (SELECT 1 FROM experiment_dirty_stores d"
    "                          WHERE d.store_id = $1::uuid)) AS rebuild"
    "   FROM (" RUNNING ") r"
    "   LEFT JOIN experiment_unit_state s ON s.store_id = $1::uuid AND s.changeset_id = r.id";

static const char SQL_DIRTY_TABLE[] =
    "CREATE TEMP TABLE eu_dirty (unit text PRIMARY KEY) ON COMMIT DROP";

static const char SQL_DRAIN[] =
    "WITH d AS (DELETE FROM experiment_dirty_units WHERE store_id = $1::uuid RETURNING unit)"
    " INSERT INTO eu_dirty SELECT DISTINCT unit FROM d";

static const char SQL_DRAIN_STORE[] =
    "DELETE FROM experiment_dirty_stores WHERE store_id = $1::uuid";

static const char SQL_DROP_ENDED[] =
    "DELETE FROM experiment_unit_state s WHERE s.store_id = $1::uuid"
    "   AND NOT EXISTS (SELECT 1 FROM eu_run r WHERE r.id = s.changeset_id)";

#define ARM_COLS                                                                                   \
    "units, converted, orders, revenue, revenue_sq, profit, profit_sq, before, passed, known,"     \
    " x, x_sq, xy, pre_profit, pre_profit_sq, pre_profit_xy, with_pre"
#define ARM_SUMS                                                                                   \
    "sum(units) AS units, sum(converted) AS converted, sum(orders) AS orders,"                     \
    " sum(revenue) AS revenue, sum(revenue_sq) AS revenue_sq, sum(profit) AS profit,"              \
    " sum(profit_sq) AS profit_sq, sum(before) AS before, sum(passed) AS passed,"                  \
    " sum(known) AS known, sum(x) AS x, sum(x_sq) AS x_sq, sum(xy) AS xy,"                         \
    " sum(pre_profit) AS pre_profit, sum(pre_profit_sq) AS pre_profit_sq,"                         \
    " sum(pre_profit_xy) AS pre_profit_xy, sum(with_pre) AS with_pre"

/* What the logged units of experiments not rebuilt add to their arms ($1 store), before
 * (eu_minus) and after (eu_plus) they are rewritten. */
#define DELTA_OF(TABLE)                                                                            \
    "CREATE TEMP TABLE " TABLE " ON COMMIT DROP AS"                                                \
    " SELECT v.changeset_id, v.variant, " ARM_SUMS "   FROM eu_dirty d"                            \
    "   JOIN experiment_unit_values v ON v.store_id = $1::uuid AND v.unit = d.unit"                \
    "   JOIN eu_run r ON r.id = v.changeset_id AND NOT r.rebuild"                                  \
    "  GROUP BY v.changeset_id, v.variant"
static const char SQL_MINUS[] = DELTA_OF("eu_minus");
static const char SQL_PLUS[] = DELTA_OF("eu_plus");

static const char SQL_DROP_REBUILT[] = "DELETE FROM experiment_units e USING eu_run r"
                                       " WHERE e.store_id = $1::uuid AND e.changeset_id = r.id"
                                       "   AND r.rebuild";
static const char SQL_DROP_LOGGED[] =
    "DELETE FROM experiment_units e USING eu_dirty d, eu_run r"
    " WHERE e.store_id = $1::uuid AND e.unit = d.unit AND e.changeset_id = r.id"
    "   AND NOT r.rebuild";

/* The temporary tables have no statistics until analysed: without them the planner guesses
 * them large and scans the experiments' tables instead of looking the few units up. */
static const char SQL_ANALYZE[] = "ANALYZE eu_run, eu_dirty";

static const char SQL_STATE[] =
    "INSERT INTO experiment_unit_state (store_id, changeset_id, flag_key, started_at, step, kind,"
    "                                   built_at, refreshed_at)"
    " SELECT $1::uuid, r.id, r.flag_key, r.started_at, r.step, r.kind,"
    "        CASE WHEN r.rebuild THEN $2::timestamptz ELSE 'epoch' END, $2::timestamptz"
    "   FROM eu_run r"
    " ON CONFLICT (store_id, changeset_id) DO UPDATE"
    "   SET flag_key = EXCLUDED.flag_key, started_at = EXCLUDED.started_at,"
    "       step = EXCLUDED.step, kind = EXCLUDED.kind,"
    "       built_at = greatest(experiment_unit_state.built_at, EXCLUDED.built_at),"
    "       refreshed_at = EXCLUDED.refreshed_at";

/* The per-unit part of results.c's SQL_ARMS (invariant 1) after the units to write (u: cs,
 * unit, variant, first_at); $1 store, $2 the default cost share of a line without a known
 * cost, $3 pre-period days. */
#define UNITS_INSERT(U)                                                                            \
    "INSERT INTO experiment_units (store_id, changeset_id, unit, variant, first_at, reach,"        \
    "  orders, revenue, cost, known, pre_reach, pre_orders, pre_revenue, pre_cost, has_pre)"       \
    " WITH u AS (" U "),"                                                                          \
    "      us AS (SELECT u.cs, u.unit, s.session_id, s.reach, s.orders,"                           \
    "                    coalesce(s.ended_at, s.started_at) >= u.first_at AS post FROM u"          \
    "               JOIN agg_sessions s ON s.store_id = $1::uuid AND s.visitor = u.unit"           \
    "                AND (coalesce(s.ended_at, s.started_at) >= u.first_at"                        \
    "                     OR s.started_at >= u.first_at - make_interval(days => $3::int))),"       \
    "      rev AS (SELECT o.session_id, sum(o.value) AS revenue FROM agg_orders o"                 \
    "               WHERE o.store_id = $1::uuid AND o.session_id IN (SELECT session_id FROM us)"   \
    "               GROUP BY 1),"                                                                  \
    "      cogs AS (SELECT sp.session_id,"                                                         \
    "                      sum(coalesce(sp.units * p.cost, sp.revenue * $2::numeric)) AS cost,"    \
    "                      coalesce(sum(sp.revenue) FILTER (WHERE p.cost IS NOT NULL), 0)"         \
    "                        AS known"                                                             \
    "                 FROM agg_session_products sp"                                                \
    "                 LEFT JOIN products p ON p.store_id = sp.store_id AND p.sku = sp.product_id"  \
    "                WHERE sp.store_id = $1::uuid AND sp.purchases > 0"                            \
    "                  AND sp.session_id IN (SELECT session_id FROM us)"                           \
    "                GROUP BY 1)"                                                                  \
    " SELECT $1::uuid, u.cs, u.unit, u.variant, u.first_at,"                                       \
    "        coalesce(max(us.reach) FILTER (WHERE us.post), 0),"                                   \
    "        coalesce(sum(us.orders) FILTER (WHERE us.post), 0),"                                  \
    "        coalesce(sum(rev.revenue) FILTER (WHERE us.post), 0),"                                \
    "        coalesce(sum(c.cost) FILTER (WHERE us.post), 0),"                                     \
    "        coalesce(sum(c.known) FILTER (WHERE us.post), 0),"                                    \
    "        coalesce(max(us.reach) FILTER (WHERE NOT us.post), -1),"                              \
    "        coalesce(sum(us.orders) FILTER (WHERE NOT us.post), 0),"                              \
    "        coalesce(sum(rev.revenue) FILTER (WHERE NOT us.post), 0),"                            \
    "        coalesce(sum(c.cost) FILTER (WHERE NOT us.post), 0),"                                 \
    "        coalesce(bool_or(NOT us.post), false)"                                                \
    "   FROM u LEFT JOIN us ON us.cs = u.cs AND us.unit = u.unit"                                  \
    "   LEFT JOIN rev ON rev.session_id = us.session_id"                                           \
    "   LEFT JOIN cogs c ON c.session_id = us.session_id"                                          \
    "  GROUP BY u.cs, u.unit, u.variant, u.first_at"

/* Every unit of the experiments rebuilt, in a table of its own: the planner then knows how
 * many they are. Read straight from agg_exposures, a new flag's tens of thousands of units are
 * one row to statistics taken before it existed, and the plan joins their sessions to orders
 * in nested loops (108 s for one store of bench/autopilot, a minute of it per day). */
static const char SQL_REBUILT_UNITS[] =
    "CREATE TEMP TABLE eu_rebuilt ON COMMIT DROP AS"
    " SELECT r.id AS cs, e.unit,"
    "        (array_agg(e.variant ORDER BY e.first_at, e.session_id))[1] AS variant,"
    "        min(e.first_at) AS first_at"
    "   FROM eu_run r"
    "   JOIN agg_exposures e ON e.store_id = $1::uuid AND e.flag_key = r.flag_key"
    "    AND NOT e.holdout AND e.first_at >= r.started_at"
    "  WHERE r.rebuild GROUP BY r.id, e.unit";
static const char SQL_ANALYZE_REBUILT[] = "ANALYZE eu_rebuilt";
static const char SQL_UNITS_REBUILD[] =
    UNITS_INSERT("SELECT cs, unit, variant, first_at FROM eu_rebuilt");
/* The logged units of the others, found through the exposures index by unit (the cost is the
 * log's, not the experiment's). */
/* The logged units' exposures to the experiments not rebuilt, in a table of their own so the
 * planner knows how few they are (and looks their sessions up rather than scanning). */
static const char SQL_LOGGED_UNITS[] =
    "CREATE TEMP TABLE eu_units ON COMMIT DROP AS"
    " SELECT r.id AS cs, e.unit,"
    "        (array_agg(e.variant ORDER BY e.first_at, e.session_id))[1] AS variant,"
    "        min(e.first_at) AS first_at"
    "   FROM eu_dirty d"
    "   JOIN agg_exposures e ON e.store_id = $1::uuid AND e.unit = d.unit AND NOT e.holdout"
    "   JOIN eu_run r ON r.flag_key = e.flag_key AND e.first_at >= r.started_at"
    "    AND NOT r.rebuild"
    "  GROUP BY r.id, e.unit";
static const char SQL_ANALYZE_LOGGED[] = "ANALYZE eu_units";
static const char SQL_UNITS_LOGGED[] =
    UNITS_INSERT("SELECT cs, unit, variant, first_at FROM eu_units");

/* After a rebuild the table's statistics are stale (a new experiment's rows are unknown to
 * the planner), and the logged units' lookups need them to go through the primary key. */
static const char SQL_ANALYZE_UNITS[] = "ANALYZE experiment_units";

static const char SQL_ARMS_DROP[] = "DELETE FROM experiment_arms a USING eu_run r"
                                    " WHERE a.store_id = $1::uuid AND a.changeset_id = r.id"
                                    "   AND r.rebuild";
static const char SQL_ARMS_BUILD[] =
    "INSERT INTO experiment_arms (store_id, changeset_id, variant, " ARM_COLS ")"
    " SELECT $1::uuid, v.changeset_id, v.variant, " ARM_SUMS " FROM experiment_unit_values v"
    "   JOIN eu_run r ON r.id = v.changeset_id AND r.rebuild"
    "  WHERE v.store_id = $1::uuid GROUP BY v.changeset_id, v.variant";
static const char SQL_ARMS_DELTA[] =
    "INSERT INTO experiment_arms (store_id, changeset_id, variant, " ARM_COLS ")"
    " SELECT $1::uuid, changeset_id, variant, " ARM_SUMS "   FROM (SELECT * FROM eu_plus UNION ALL"
    "         SELECT changeset_id, variant, -units, -converted, -orders, -revenue, -revenue_sq,"
    "                -profit, -profit_sq, -before, -passed, -known, -x, -x_sq, -xy,"
    "                -pre_profit, -pre_profit_sq, -pre_profit_xy, -with_pre FROM eu_minus) d"
    "  GROUP BY changeset_id, variant"
    " ON CONFLICT (store_id, changeset_id, variant) DO UPDATE SET"
    "  units = experiment_arms.units + EXCLUDED.units,"
    "  converted = experiment_arms.converted + EXCLUDED.converted,"
    "  orders = experiment_arms.orders + EXCLUDED.orders,"
    "  revenue = experiment_arms.revenue + EXCLUDED.revenue,"
    "  revenue_sq = experiment_arms.revenue_sq + EXCLUDED.revenue_sq,"
    "  profit = experiment_arms.profit + EXCLUDED.profit,"
    "  profit_sq = experiment_arms.profit_sq + EXCLUDED.profit_sq,"
    "  before = experiment_arms.before + EXCLUDED.before,"
    "  passed = experiment_arms.passed + EXCLUDED.passed,"
    "  known = experiment_arms.known + EXCLUDED.known,"
    "  x = experiment_arms.x + EXCLUDED.x, x_sq = experiment_arms.x_sq + EXCLUDED.x_sq,"
    "  xy = experiment_arms.xy + EXCLUDED.xy,"
    "  pre_profit = experiment_arms.pre_profit + EXCLUDED.pre_profit,"
    "  pre_profit_sq = experiment_arms.pre_profit_sq + EXCLUDED.pre_profit_sq,"
    "  pre_profit_xy = experiment_arms.pre_profit_xy + EXCLUDED.pre_profit_xy,"
    "  with_pre = experiment_arms.with_pre + EXCLUDED.with_pre";

static const char SQL_COUNTS[] = "SELECT (SELECT count(*) FROM eu_dirty),"
                                 "       (SELECT count(*) FILTER (WHERE rebuild) FROM eu_run),"
                                 "       (SELECT count(*) FROM eu_run)";

/* The arms of one experiment ($1 store, $2 ChangeSet) in SQL_ARMS's columns: kept
 * (experiment_arms), or over a window of its units (first exposed from $3 on). */
static const char SQL_ARMS_KEPT[] = "SELECT variant, " ARM_COLS " FROM experiment_arms"
                                    " WHERE store_id = $1::uuid AND changeset_id = $2"
                                    " ORDER BY variant";
static const char SQL_ARMS_WINDOW[] =
    "SELECT variant, " ARM_SUMS " FROM experiment_unit_values"
    " WHERE store_id = $1::uuid AND changeset_id = $2 AND first_at >= $3::timestamptz"
    " GROUP BY variant ORDER BY variant";

/* A logged-only refresh (a GET) leaves a backlog larger than this to the job: after a full
 * re-aggregation every unit is logged, and rewriting them all is a rebuild's work. */
#define LOGGED_BACKLOG_MAX "10000"

static const char SQL_BACKLOG[] =
    "SELECT count(*) > " LOGGED_BACKLOG_MAX " FROM (SELECT 1 FROM experiment_dirty_units"
    "  WHERE store_id = $1::uuid LIMIT " LOGGED_BACKLOG_MAX " + 1) x";

/* A refresh that may not rebuild leaves the experiments that need it to the job: out of this
 * run (their logged units are drained with the others: the rebuild will read them), and the
 * store's cost mark stays for the job. */
static const char SQL_SKIP_REBUILDS[] = "DELETE FROM eu_run WHERE rebuild";

/* A rebuild is a job's work: no statement timeout (the aggregation does the same). */
static const char SQL_NO_TIMEOUT[] = "SET LOCAL statement_timeout = 0";

typedef struct {
    const char *store_id;
    const char *now;
    pe_experiments_refresh_mode_t mode;
    pe_experiments_refresh_t *out;
} refresh_t;

static int refresh_tx(pe_db_conn_t *conn, void *arg)
{
    refresh_t *r = arg;
    pe_db_result_t *res = NULL;
    char share[16];
    snprintf(share, sizeof share, "%.3f", 1 - PE_CATALOG_DEFAULT_MARGIN);
    const char *store[] = {r->store_id};
    bool logged = r->mode == PE_EXPERIMENTS_REFRESH_LOGGED;
    bool all = r->mode == PE_EXPERIMENTS_REFRESH_ALL;
    const char *run[] = {r->store_id, r->now, "f"};
    const char *state[] = {r->store_id, r->now};
    const char *units[] = {r->store_id, share, PRE_PERIOD_DAYS};
    int rc = pe_db_exec(conn, SQL_LOCK, 1, store, NULL);
    if (rc == 0 && r->mode != PE_EXPERIMENTS_REFRESH_ALL) { /* a GET's usual case: one read */
        rc = pe_db_exec(conn, SQL_NEEDED, 2, state, &res);
        bool needed =
            rc == 0 && pe_db_result_rows(res) == 1 && strcmp(pe_db_result_get(res, 0, 0), "t") == 0;
        pe_db_result_free(res);
        res = NULL;
        if (rc == 0 && needed) {
            /* a large backlog (a full re-aggregation logs every unit): a GET leaves it to the
             * job, and the job rebuilds — one pass over the rollups, not a lookup per unit */
            rc = pe_db_exec(conn, SQL_BACKLOG, 1, store, &res);
            bool large = rc == 0 && strcmp(pe_db_result_get(res, 0, 0), "t") == 0;
            pe_db_result_free(res);
            res = NULL;
            needed = !(large && logged);
            all = large && !logged;
        }
        if (rc != 0 || !needed)
            return rc;
    }
    run[2] = all ? "t" : "f";
    if (rc == 0 && !logged)
        rc = pe_db_exec(conn, SQL_NO_TIMEOUT, 0, NULL, NULL);
    /* in SQL's order: what runs, the log drained, ended tables dropped, the old values of
     * the logged units out of their arms, the units rewritten, the new values in */
    static const struct {
        const char *sql;
        int which;         /* 0 store, 1 run, 2 state, 3 units, 4 none */
        bool rebuild_only; /* not in a logged-only refresh */
        bool logged_only;
    } steps[] = {{SQL_RUN, 1, false, false},
                 {SQL_DIRTY_TABLE, 4, false, false},
                 {SQL_DRAIN, 0, false, false},
                 {SQL_DRAIN_STORE, 0, true, false},
                 {SQL_DROP_ENDED, 0, false, false},
                 {SQL_SKIP_REBUILDS, 4, false, true},
                 {SQL_ANALYZE, 4, false, false},
                 {SQL_MINUS, 0, false, false},
                 {SQL_DROP_REBUILT, 0, false, false},
                 {SQL_DROP_LOGGED, 0, false, false},
                 {SQL_STATE, 2, false, false},
                 {SQL_REBUILT_UNITS, 0, false, false},
                 {SQL_ANALYZE_REBUILT, 4, false, false},
                 {SQL_UNITS_REBUILD, 3, false, false},
                 {SQL_LOGGED_UNITS, 0, false, false},
                 {SQL_ANALYZE_LOGGED, 4, false, false},
                 {SQL_UNITS_LOGGED, 3, false, false},
                 {SQL_PLUS, 0, false, false},
                 {SQL_ARMS_DROP, 0, false, false},
                 {SQL_ARMS_BUILD, 0, false, false},
                 {SQL_ARMS_DELTA, 0, false, false}};
    const char *const *params[] = {store, run, state, units, NULL};
    static const int counts[] = {1, 3, 2, 3, 0};
    for (size_t i = 0; rc == 0 && i < PE_ARRAY_LEN(steps); i++) {
        if ((steps[i].rebuild_only && logged) || (steps[i].logged_only && !logged))
            continue;
        rc = pe_db_exec(conn, steps[i].sql, counts[steps[i].which], params[steps[i].which], NULL);
    }
    if (rc == 0)
        rc = pe_db_exec(conn, SQL_COUNTS, 0, NULL, &res);
    pe_experiments_refresh_t done = {0};
    if (rc == 0 && pe_db_result_rows(res) == 1) {
        done.units_logged = strtoull(pe_db_result_get(res, 0, 0), NULL, 10);
        done.rebuilt = strtoull(pe_db_result_get(res, 0, 1), NULL, 10);
        done.experiments = strtoull(pe_db_result_get(res, 0, 2), NULL, 10);
    }
    if (rc == 0 && done.rebuilt > 0)
        rc = pe_db_exec(conn, SQL_ANALYZE_UNITS, 0, NULL, NULL);
    if (r->out)
        *r->out = done;
    pe_db_result_free(res);
    if (rc != 0)
        pe_log(PE_LOG_WARN, "experiment_units_refresh_failed", "store %s: %s", r->store_id,
               pe_db_conn_error(conn));
    return rc;
}

int pe_experiments_refresh(pe_db_pool_t *db, const char *store_id, int64_t now_us,
                           pe_experiments_refresh_mode_t mode, pe_experiments_refresh_t *out)
{
    char now[40];
    pe_time_format_rfc3339(now_us, now, sizeof now);
    if (out)
        memset(out, 0, sizeof *out);
    refresh_t r = {store_id, now, mode, out};
    return pe_db_tx(db, ACQUIRE_TIMEOUT_MS, refresh_tx, &r);
}

int pe_experiments_units_arms(pe_db_pool_t *db, const char *store_id, const char *changeset_id,
                              const char *from, pe_db_result_t **out)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *state = NULL;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        return rc;
    const char *q[] = {store_id, changeset_id, from};
    rc = pe_db_exec(conn,
                    "SELECT 1 FROM experiment_unit_state WHERE store_id = $1::uuid"
                    "   AND changeset_id = $2",
                    2, q, &state);
    if (rc == 0 && pe_db_result_rows(state) == 0)
        rc = PE_ENOTFOUND;
    pe_db_result_free(state);
    if (rc == 0)
        rc = from ? pe_db_exec(conn, SQL_ARMS_WINDOW, 3, q, out)
                  : pe_db_exec(conn, SQL_ARMS_KEPT, 2, q, out);
    pe_db_release(db, conn);
    return rc;
}
