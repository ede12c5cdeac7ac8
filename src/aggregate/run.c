/*
 * run.c — the aggregation job: `profit-engine aggregate [--store ID] [--full]` and, every
 * minute, the same inside `serve`. It turns raw events into the tables of
 * 0005_aggregates.sql, 0010_customer_days.sql, 0013_funnel_hourly_segments.sql and
 * 0015_session_visitor_campaign.sql and 0018_exposures.sql with set operations in SQL; C only
 * sequences the statements.
 *
 *   lock ─▶ BEGIN REPEATABLE READ ─▶ select stores ─▶ touched sessions ─▶ old buckets
 *        ─▶ rebuild sessions (layer 1) ─▶ visitor types ─▶ new buckets ─▶ rebuild days, weeks,
 *           months and the customers' order days (layer 2)
 *        ─▶ watermark := this snapshot ─▶ prune event_commits ─▶ COMMIT ─▶ unlock
 *
 *   step               statement(s)        what happens
 *   select stores      SQL_RUN             each store with its watermark and the least
 *                                          received_from of the commits it has not seen; no
 *                                          watermark yet or --full: recomputed in full
 *   touched sessions   SQL_TOUCHED,        sessions with an event received since the watermark
 *                      SQL_SESSION_EVENTS  and not visible in its snapshot; all their events,
 *                                          read once from the partitions they span
 *   old buckets        SQL_OLD_*,          days the touched sessions' rows sit on now, the
 *                      SQL_VISITORS        first-order days of their customers, their visitors
 *   layer 1            SQL_DEL_L1_*,       whole sessions recomputed from all their events
 *                      SQL_INS_*
 *   visitor types      SQL_VISITORS,       new or returning, recomputed for every session of
 *                      SQL_VISITOR_TYPES   the visitors of the touched sessions' old and new rows
 *   new buckets        SQL_NEW_*           the same days after the rebuild, weeks and months
 *   layer 2            SQL_DEL_L2_*,       whole buckets recomputed from layer 1
 *                      SQL_INS_DAILY …
 *
 * Invariants:
 *  1. Everything happens in one REPEATABLE READ transaction: the snapshot the events are read in
 *     is the snapshot recorded as the watermark, and a failed run leaves nothing behind.
 *  2. Buckets, not deltas: a session's layer 1 rows are a function of all its events, a day's
 *     layer 2 rows of all layer 1 rows of that day, so incremental and full runs agree exactly
 *     and a rerun with nothing new rewrites identical rows.
 *  3. No event is missed, none is read twice. events.received_at is stamped when the request
 *     arrives, before the collector's group commit makes the row visible, so a row may appear
 *     with a received_at older than the last run. Every transaction that inserts events logs,
 *     in itself, a lower bound of its rows' received_at (event_commits, 0009_event_commits.sql:
 *     exact for the collector, start minus 5 minutes for any other writer). A run reads rows
 *     with received_at ≥ the least bound of the logged transactions its last snapshot could not
 *     see, and keeps those whose inserting transaction it could not see (xmin against
 *     pg_snapshot). Nothing new: nothing read. The collector uses no savepoints, so every row's
 *     xmin is a top-level transaction, which is what pg_snapshot lists.
 *  4. Customers: whether an order's customer is new depends on their first order ever, so when
 *     a touched session's orders move a customer's first-order day, both the old and the new
 *     first day are rebuilt (no other day's new/returning split can change). The old first day
 *     is the least of: the first days of the customers of the touched sessions' old rows (taken
 *     before they are deleted) and, for every customer of their new rows, the first order among
 *     the sessions not touched.
 *  5. Visitor type: agg_sessions.visitor_type says whether the session is its visitor's first
 *     of the store (least started_at, then session_id), so it depends on the visitor's other
 *     sessions, not only on the session's events. A full run computes it over all the store's
 *     sessions as it inserts them. An incremental run inserts the touched sessions with a
 *     provisional type, then recomputes every session of every visitor of the touched sessions'
 *     rows, before and after the rebuild (a late event may change a session's visitor, and a
 *     late session that started first makes the visitor's former first one 'returning'); no
 *     other visitor's sessions can change. Days whose rows changed type are rebuilt in layer 2
 *     like any other touched day, so incremental and full runs still agree exactly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/aggregate.h"

#define AGG_LOCK_KEY       "7262937150124823902" /* arbitrary, fixed: "pe aggregate" */
#define ACQUIRE_TIMEOUT_MS 5000

/* Stores of this run, with their time zone, whether they are recomputed in full, and the lower
 * bound (lo, NULL when no commit is new to them) and snapshot of their incremental read. The
 * xid range cut keeps the log scan to the commits at or after the snapshot's xmin. */
static const char SQL_RUN[] =
    "CREATE TEMP TABLE agg_run ON COMMIT DROP AS"
    " SELECT s.id AS store_id, s.timezone AS tz, ($2::bool OR w.store_id IS NULL) AS is_full,"
    "        (SELECT min(c.received_from) FROM event_commits c"
    "          WHERE c.xid >= pg_snapshot_xmin(w.snapshot)"
    "            AND NOT pg_visible_in_snapshot(c.xid, w.snapshot)) AS lo,"
    "        w.snapshot AS snap,"
    "        (pg_snapshot_xmin(w.snapshot)::text::bigint & 4294967295)::text::xid AS snap_xmin"
    "   FROM stores s LEFT JOIN agg_watermarks w ON w.store_id = s.id AND w.job = 'aggregate'"
    "  WHERE $1::uuid IS NULL OR s.id = $1::uuid";

/* Log rows every watermark has seen can never bound a run again (0009_event_commits.sql,
 * invariant 4). A store without a watermark is recomputed in full and needs none. */
static const char SQL_PRUNE_COMMITS[] =
    "DELETE FROM event_commits"
    " WHERE xid < (SELECT min(pg_snapshot_xmin(snapshot)) FROM agg_watermarks"
    "               WHERE job = 'aggregate')";

static const char SQL_RUN_SUMMARY[] =
    "SELECT count(*), count(*) FILTER (WHERE is_full), min(lo) FILTER (WHERE NOT is_full)"
    "  FROM agg_run";

static const char *const SQL_TEMP_TABLES[] = {
    ("CREATE TEMP TABLE agg_t_sessions (store_id uuid, session_id text,"
     "  lo timestamptz, hi timestamptz, PRIMARY KEY (store_id, session_id)) ON COMMIT DROP"),
    ("CREATE TEMP TABLE agg_t_days (store_id uuid, day date, PRIMARY KEY (store_id, day))"
     "  ON COMMIT DROP"),
    ("CREATE TEMP TABLE agg_t_customers (store_id uuid, customer text,"
     "  PRIMARY KEY (store_id, customer)) ON COMMIT DROP"),
    ("CREATE TEMP TABLE agg_t_visitors (store_id uuid, visitor text,"
     "  PRIMARY KEY (store_id, visitor)) ON COMMIT DROP"),
    ("CREATE TEMP TABLE agg_t_periods (store_id uuid, kind char(1), period date,"
     "  PRIMARY KEY (store_id, kind, period)) ON COMMIT DROP"),
    ("CREATE TEMP TABLE agg_t_customer_days (store_id uuid, day date,"
     "  PRIMARY KEY (store_id, day)) ON COMMIT DROP"),
};

/* Sessions with an event not yet aggregated (invariant 3). age() is a cheap first cut: a row
 * whose xid is older than the last snapshot's xmin was visible in it (a frozen row's age is
 * the maximum, so it is cut too). xmin is a 32-bit xid; it is widened
 * to xid8 against the current snapshot's xmax (rows we can see are older than it). $1 is the
 * least lo of the run, so the BRIN index on received_at bounds the scan. */
static const char SQL_TOUCHED[] =
    "INSERT INTO agg_t_sessions"
    " SELECT e.store_id, e.session_id, min(e.occurred_at), max(e.occurred_at)"
    "   FROM events e JOIN agg_run r ON r.store_id = e.store_id AND NOT r.is_full"
    "  CROSS JOIN (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS m) c"
    "  WHERE e.received_at >= $1::timestamptz AND e.received_at >= r.lo"
    "    AND age(e.xmin) <= age(r.snap_xmin)"
    "    AND NOT pg_visible_in_snapshot(agg_xid8(e.xmin, c.m), r.snap)"
    "  GROUP BY e.store_id, e.session_id";

/* A touched session's events lie between its earliest and latest event: those aggregated before
 * (agg_sessions, unknown end: no bound, 0011_session_bounds.sql) and the new ones. */
static const char SQL_TOUCHED_SPAN[] =
    "UPDATE agg_t_sessions t SET lo = least(t.lo, s.started_at),"
    "       hi = greatest(t.hi, coalesce(s.ended_at, 'infinity'))"
    "  FROM agg_sessions s WHERE s.store_id = t.store_id AND s.session_id = t.session_id";

static const char SQL_TOUCHED_BOUNDS[] = "SELECT min(lo), max(hi) FROM agg_t_sessions";

/* Every event of the touched sessions, read once for the three layer 1 tables. $1 and $2 bound
 * occurred_at as constants, so the planner prunes events to the partitions the sessions span
 * (a join condition alone would not). */
static const char SQL_SESSION_EVENTS[] =
    "CREATE TEMP TABLE agg_t_events ON COMMIT DROP AS"
    " SELECT e.*, r.tz FROM agg_t_sessions t"
    "   JOIN events e ON e.store_id = t.store_id AND e.session_id = t.session_id"
    "    AND e.occurred_at BETWEEN t.lo AND t.hi"
    "   JOIN agg_run r ON r.store_id = t.store_id"
    "  WHERE e.occurred_at BETWEEN $1::timestamptz AND $2::timestamptz";

/* The events a run recomputes from, with the store's time zone: every event of the stores
 * recomputed in full, or every event of each touched session. Two sources, two statements each:
 * one UNION of both would make the planner scan all events for the first branch. */
#define FULL_EVENTS                                                                                \
    "(SELECT e.*, r.tz FROM events e JOIN agg_run r ON r.store_id = e.store_id AND r.is_full) ev"
#define SESSION_EVENTS "agg_t_events ev"

/* ---- old buckets ----------------------------------------------------------------------------- */

static const char SQL_OLD_DAYS[] = "INSERT INTO agg_t_days"
                                   " SELECT x.store_id, x.day FROM agg_sessions x JOIN "
                                   "agg_t_sessions t USING (store_id, session_id)"
                                   " UNION SELECT x.store_id, x.day FROM agg_session_products x"
                                   "   JOIN agg_t_sessions t USING (store_id, session_id)"
                                   " UNION SELECT x.store_id, x.day FROM agg_orders x JOIN "
                                   "agg_t_sessions t USING (store_id, session_id)"
                                   " ON CONFLICT DO NOTHING";

static const char SQL_CUSTOMERS[] = "INSERT INTO agg_t_customers"
                                    " SELECT DISTINCT o.store_id, o.customer FROM agg_orders o"
                                    "   JOIN agg_t_sessions t USING (store_id, session_id)"
                                    " ON CONFLICT DO NOTHING";

/* First-order days of the customers involved (before and after the rebuild: invariant 4). */
static const char SQL_FIRST_DAYS[] = "INSERT INTO agg_t_days"
                                     " SELECT o.store_id, min(o.day) FROM agg_orders o JOIN "
                                     "agg_t_customers c USING (store_id, customer)"
                                     "  GROUP BY o.store_id, o.customer"
                                     " ON CONFLICT DO NOTHING";

/* A customer first seen in a touched session's new orders had, before this run, their first
 * order among the sessions not touched: that day changes too (invariant 4). */
static const char SQL_UNTOUCHED_FIRST_DAYS[] =
    "INSERT INTO agg_t_days"
    " SELECT o.store_id, min(o.day) FROM agg_orders o"
    "   JOIN agg_t_customers c USING (store_id, customer)"
    "  WHERE NOT EXISTS (SELECT 1 FROM agg_t_sessions t"
    "                     WHERE t.store_id = o.store_id AND t.session_id = o.session_id)"
    "  GROUP BY o.store_id, o.customer"
    " ON CONFLICT DO NOTHING";

/* Visitors of the touched sessions' rows: run before the rebuild (the old rows' visitors) and
 * after it (the new rows'), invariant 5. */
static const char SQL_VISITORS[] = "INSERT INTO agg_t_visitors"
                                   " SELECT DISTINCT x.store_id, x.visitor FROM agg_sessions x"
                                   "   JOIN agg_t_sessions t USING (store_id, session_id)"
                                   " ON CONFLICT DO NOTHING";

/* ---- layer 1 --------------------------------------------------------------------------------- */

static const char *const SQL_DEL_FULL[] = {
    "DELETE FROM agg_sessions x USING agg_run r WHERE x.store_id = r.store_id AND r.is_full",
    ("DELETE FROM agg_session_products x USING agg_run r"
     " WHERE x.store_id = r.store_id AND r.is_full"),
    "DELETE FROM agg_orders x USING agg_run r WHERE x.store_id = r.store_id AND r.is_full",
    "DELETE FROM agg_exposures x USING agg_run r WHERE x.store_id = r.store_id AND r.is_full",
    "DELETE FROM agg_daily x USING agg_run r WHERE x.store_id = r.store_id AND r.is_full",
    "DELETE FROM agg_daily_segments x USING agg_run r WHERE x.store_id = r.store_id AND r.is_full",
    "DELETE FROM agg_funnel_hourly x USING agg_run r WHERE x.store_id = r.store_id AND r.is_full",
    ("DELETE FROM agg_funnel_hourly_segments x USING agg_run r"
     " WHERE x.store_id = r.store_id AND r.is_full"),
    "DELETE FROM agg_product_daily x USING agg_run r WHERE x.store_id = r.store_id AND r.is_full",
    "DELETE FROM agg_category_daily x USING agg_run r WHERE x.store_id = r.store_id AND r.is_full",
    "DELETE FROM agg_weekly x USING agg_run r WHERE x.store_id = r.store_id AND r.is_full",
    "DELETE FROM agg_monthly x USING agg_run r WHERE x.store_id = r.store_id AND r.is_full",
    ("DELETE FROM agg_customer_days x USING agg_run r"
     " WHERE x.store_id = r.store_id AND r.is_full"),
};

static const char *const SQL_DEL_L1[] = {
    ("DELETE FROM agg_sessions x USING agg_t_sessions t"
     " WHERE x.store_id = t.store_id AND x.session_id = t.session_id"),
    ("DELETE FROM agg_session_products x USING agg_t_sessions t"
     " WHERE x.store_id = t.store_id AND x.session_id = t.session_id"),
    ("DELETE FROM agg_orders x USING agg_t_sessions t"
     " WHERE x.store_id = t.store_id AND x.session_id = t.session_id"),
    ("DELETE FROM agg_exposures x USING agg_t_sessions t"
     " WHERE x.store_id = t.store_id AND x.session_id = t.session_id"),
};

/* Ties in time are broken by event_id so that "first" is the same whatever the arrival order;
 * the funnel breaks them by step first (two steps in the same instant count in order). */
// clang-format off
#define FIRST(expr, cond) \
    "(array_agg(" expr " ORDER BY ev.occurred_at, ev.event_id) FILTER (WHERE " cond "))[1]"

#define INS_SESSIONS(src) \
    "INSERT INTO agg_sessions (store_id, session_id, started_at, day, hour, visitor, device," \
    "                          country, source, reach, orders, ended_at, visitor_type," \
    "                          campaign)" \
    " SELECT ev.store_id, ev.session_id, min(ev.occurred_at)," \
    "        (min(ev.occurred_at) AT TIME ZONE ev.tz)::date," \
    "        extract(hour FROM min(ev.occurred_at) AT TIME ZONE ev.tz)::smallint," \
    "        " FIRST("ev.anonymous_id", "true") "," \
    "        coalesce(" FIRST("ev.device_type", "ev.device_type IS NOT NULL") ", 'unknown')," \
    "        coalesce(" FIRST("agg_locale_country(ev.context->>'locale')", \
                              "agg_locale_country(ev.context->>'locale') IS NOT NULL") "," \
    "                 'unknown')," \
    "        coalesce(" FIRST("lower(ev.utm_source)", "ev.utm_source <> ''") "," \
    "                 " FIRST("agg_referrer_host(ev.context->'page'->>'referrer')", "true") "," \
    "                 'direct')," \
    "        coalesce(agg_funnel_reach(ev.funnel_step ORDER BY ev.occurred_at, ev.funnel_step," \
    "                                  ev.event_id) FILTER (WHERE ev.funnel_step > 0), 0)," \
    "        count(*) FILTER (WHERE ev.name = 'checkout.order.completed'), max(ev.occurred_at)," \
    "        CASE WHEN row_number() OVER (PARTITION BY ev.store_id, " \
                                          FIRST("ev.anonymous_id", "true") \
    "                                     ORDER BY min(ev.occurred_at), ev.session_id) = 1" \
    "             THEN 'new' ELSE 'returning' END," \
    "        coalesce(" FIRST("lower(ev.utm_campaign)", "ev.utm_campaign <> ''") ", '')" \
    "   FROM " src " GROUP BY ev.store_id, ev.session_id, ev.tz"

/* Product views, add-to-carts and order lines, one row per session, local day, product and
 * category. A quantity written 2.0 is 2 (the validator accepts it), hence ::numeric first. */
#define INS_SESSION_PRODUCTS(src) \
    "INSERT INTO agg_session_products" \
    " SELECT store_id, session_id, day, product_id, category," \
    "        count(*) FILTER (WHERE name = 'storefront.product.viewed')," \
    "        count(*) FILTER (WHERE name = 'storefront.cart.item_added')," \
    "        count(DISTINCT order_id), coalesce(sum(units), 0), coalesce(sum(revenue), 0)" \
    "   FROM (SELECT ev.store_id, ev.session_id, ev.name," \
    "                (ev.occurred_at AT TIME ZONE ev.tz)::date AS day," \
    "                coalesce(it->>'productId', ev.properties->>'productId') AS product_id," \
    "                coalesce(it->>'category', ev.properties->>'category', '') AS category," \
    "                CASE WHEN it IS NOT NULL THEN ev.event_id END AS order_id," \
    "                (it->>'quantity')::numeric::bigint AS units," \
    "                (it->>'price')::numeric * (it->>'quantity')::numeric AS revenue" \
    "           FROM " src \
    "           LEFT JOIN LATERAL jsonb_array_elements(CASE" \
    "                WHEN ev.name = 'checkout.order.completed'" \
    "                 AND jsonb_typeof(ev.properties->'items') = 'array'" \
    "                THEN ev.properties->'items' ELSE '[]'::jsonb END) it ON true" \
    "          WHERE ev.name IN ('storefront.product.viewed', 'storefront.cart.item_added')" \
    "             OR (ev.name = 'checkout.order.completed' AND it IS NOT NULL)) x" \
    "  WHERE product_id IS NOT NULL" \
    "  GROUP BY store_id, session_id, day, product_id, category"

#define INS_ORDERS(src) \
    "INSERT INTO agg_orders" \
    " SELECT ev.store_id, ev.session_id, ev.event_id, ev.occurred_at," \
    "        (ev.occurred_at AT TIME ZONE ev.tz)::date, coalesce(ev.user_id, ev.anonymous_id)," \
    "        coalesce((ev.properties->>'value')::numeric, 0)," \
    "        coalesce((SELECT sum((it->>'quantity')::numeric) FROM jsonb_array_elements(CASE" \
    "                    WHEN jsonb_typeof(ev.properties->'items') = 'array'" \
    "                    THEN ev.properties->'items' ELSE '[]'::jsonb END) it), 0)::bigint" \
    "   FROM " src " WHERE ev.name = 'checkout.order.completed'"

/* Exposures to experiment and autopilot flags (0018_exposures.sql): per session, flag and unit
 * (the anonymousId OFREP was asked for), the first variant and when. */
#define INS_EXPOSURES(src) \
    "INSERT INTO agg_exposures" \
    " SELECT ev.store_id, ev.session_id, ev.properties->>'flagKey', ev.anonymous_id," \
    "        (array_agg(ev.properties->>'variant' ORDER BY ev.occurred_at, ev.event_id))[1]," \
    "        min(ev.occurred_at), bool_or(coalesce((ev.custom->>'holdout')::boolean, false))" \
    "   FROM " src \
    "  WHERE ev.name = 'experiment.exposure.assigned'" \
    "    AND ev.properties->>'flagKey' IS NOT NULL AND ev.properties->>'variant' IS NOT NULL" \
    "  GROUP BY ev.store_id, ev.session_id, ev.properties->>'flagKey', ev.anonymous_id"

/* The visitor type of every session of the visitors in agg_t_visitors (invariant 5): the type
 * INS_SESSIONS gave the touched sessions only compares them with each other. Rows whose type
 * changes put their day on the list of layer 2 days to rebuild. */
static const char SQL_VISITOR_TYPES[] =
    "WITH f AS (SELECT s.store_id, s.session_id,"
    "                  CASE WHEN row_number() OVER (PARTITION BY s.store_id, s.visitor"
    "                                               ORDER BY s.started_at, s.session_id) = 1"
    "                       THEN 'new' ELSE 'returning' END AS visitor_type"
    "             FROM agg_sessions s JOIN agg_t_visitors v USING (store_id, visitor)),"
    " u AS (UPDATE agg_sessions x SET visitor_type = f.visitor_type FROM f"
    "        WHERE x.store_id = f.store_id AND x.session_id = f.session_id"
    "          AND x.visitor_type <> f.visitor_type"
    "       RETURNING x.store_id, x.day)"
    " INSERT INTO agg_t_days SELECT DISTINCT store_id, day FROM u ON CONFLICT DO NOTHING";

static const char *const SQL_INS_FULL[] = {
    INS_SESSIONS(FULL_EVENTS), INS_SESSION_PRODUCTS(FULL_EVENTS), INS_ORDERS(FULL_EVENTS),
    INS_EXPOSURES(FULL_EVENTS),
};
static const char *const SQL_INS_TOUCHED[] = {
    INS_SESSIONS(SESSION_EVENTS), INS_SESSION_PRODUCTS(SESSION_EVENTS),
    INS_ORDERS(SESSION_EVENTS), INS_EXPOSURES(SESSION_EVENTS),
};
// clang-format on

/* ---- new buckets ----------------------------------------------------------------------------- */

static const char SQL_NEW_DAYS[] =
    "INSERT INTO agg_t_days"
    " SELECT x.store_id, x.day FROM agg_sessions x JOIN agg_t_sessions t USING (store_id, "
    "session_id)"
    " UNION SELECT x.store_id, x.day FROM agg_session_products x"
    "   JOIN agg_t_sessions t USING (store_id, session_id)"
    " UNION SELECT x.store_id, x.day FROM agg_orders x JOIN agg_t_sessions t USING (store_id, "
    "session_id)"
    " UNION SELECT x.store_id, x.day FROM agg_sessions x JOIN agg_run r"
    "   ON r.store_id = x.store_id AND r.is_full"
    " UNION SELECT x.store_id, x.day FROM agg_session_products x JOIN agg_run r"
    "   ON r.store_id = x.store_id AND r.is_full"
    " UNION SELECT x.store_id, x.day FROM agg_orders x JOIN agg_run r"
    "   ON r.store_id = x.store_id AND r.is_full"
    " ON CONFLICT DO NOTHING";

/* Days of agg_customer_days to rebuild (0010_customer_days.sql, invariant 1): the touched days
 * and every order day, after the rebuild, of the customers whose orders moved (a day that lost
 * its last order of such a customer is a touched day already). */
static const char SQL_CUSTOMER_DAYS[] =
    "INSERT INTO agg_t_customer_days"
    " SELECT store_id, day FROM agg_t_days"
    " UNION SELECT o.store_id, o.day FROM agg_orders o JOIN agg_t_customers c"
    "   USING (store_id, customer)"
    " ON CONFLICT DO NOTHING";

static const char SQL_PERIODS[] =
    "INSERT INTO agg_t_periods"
    " SELECT DISTINCT store_id, 'w', date_trunc('week', day)::date FROM agg_t_days"
    " UNION SELECT DISTINCT store_id, 'm', date_trunc('month', day)::date FROM agg_t_days";

/* ---- layer 2 --------------------------------------------------------------------------------- */

static const char *const SQL_DEL_L2[] = {
    "DELETE FROM agg_daily x USING agg_t_days t WHERE x.store_id = t.store_id AND x.day = t.day",
    ("DELETE FROM agg_daily_segments x USING agg_t_days t"
     " WHERE x.store_id = t.store_id AND x.day = t.day"),
    ("DELETE FROM agg_funnel_hourly x USING agg_t_days t"
     " WHERE x.store_id = t.store_id AND x.day = t.day"),
    ("DELETE FROM agg_funnel_hourly_segments x USING agg_t_days t"
     " WHERE x.store_id = t.store_id AND x.day = t.day"),
    ("DELETE FROM agg_product_daily x USING agg_t_days t"
     " WHERE x.store_id = t.store_id AND x.day = t.day"),
    ("DELETE FROM agg_category_daily x USING agg_t_days t"
     " WHERE x.store_id = t.store_id AND x.day = t.day"),
    ("DELETE FROM agg_weekly x USING agg_t_periods t"
     " WHERE t.kind = 'w' AND x.store_id = t.store_id AND x.period = t.period"),
    ("DELETE FROM agg_monthly x USING agg_t_periods t"
     " WHERE t.kind = 'm' AND x.store_id = t.store_id AND x.period = t.period"),
    ("DELETE FROM agg_customer_days x USING agg_t_customer_days t"
     " WHERE x.store_id = t.store_id AND x.day = t.day"),
};

#define REACH_COUNTS                                                                               \
    " count(*) FILTER (WHERE s.reach >= 1) AS reach_cart,"                                         \
    " count(*) FILTER (WHERE s.reach >= 2) AS reach_checkout,"                                     \
    " count(*) FILTER (WHERE s.reach >= 3) AS reach_shipping,"                                     \
    " count(*) FILTER (WHERE s.reach >= 4) AS reach_payment,"                                      \
    " count(*) FILTER (WHERE s.reach >= 5) AS reach_confirmation"

/* The first order day of an order's customer. */
#define FIRST_ORDER_DAY                                                                            \
    " JOIN LATERAL (SELECT min(o2.day) AS first_day FROM agg_orders o2"                            \
    "                WHERE o2.store_id = o.store_id AND o2.customer = o.customer) f ON true"

#define DAILY_COLUMNS                                                                              \
    "sessions, visitors, reach_cart, reach_checkout, reach_shipping, reach_payment,"               \
    " reach_confirmation, converted_sessions, product_views, cart_adds, orders, revenue, units,"   \
    " customers, new_customers, returning_customers"

#define DAILY_VALUES                                                                               \
    " coalesce(s.sessions, 0), coalesce(s.visitors, 0), coalesce(s.reach_cart, 0),"                \
    " coalesce(s.reach_checkout, 0), coalesce(s.reach_shipping, 0), coalesce(s.reach_payment, 0)," \
    " coalesce(s.reach_confirmation, 0), coalesce(s.converted, 0), coalesce(p.views, 0),"          \
    " coalesce(p.adds, 0), coalesce(o.orders, 0), coalesce(o.revenue, 0), coalesce(o.units, 0),"   \
    " coalesce(o.customers, 0), coalesce(o.new_customers, 0),"                                     \
    " coalesce(o.customers, 0) - coalesce(o.new_customers, 0)"

/* Sessions by start day, product activity and orders by their own day. DIMS are the segment
 * columns ("" for the store total); a segment's product activity and orders take the segment
 * of their session (SJOIN), the store total needs no join (every layer 1 row has its session). */
#define SESSION_OF(x)                                                                              \
    " JOIN agg_sessions s ON s.store_id = " x ".store_id AND s.session_id = " x ".session_id"
#define DAILY_SQL(table, dims, sdims, joindims, sjoin_p, sjoin_o)                                  \
    "INSERT INTO " table " (store_id, day" dims ", " DAILY_COLUMNS ")"                             \
    " WITH s AS (SELECT s.store_id, s.day" sdims ", count(*) AS sessions,"                         \
    "                   count(DISTINCT s.visitor) AS visitors," REACH_COUNTS ","                   \
    "                   count(*) FILTER (WHERE s.orders > 0) AS converted"                         \
    "              FROM agg_sessions s JOIN agg_t_days t USING (store_id, day)"                    \
    "             GROUP BY s.store_id, s.day" sdims "),"                                           \
    " p AS (SELECT x.store_id, x.day" sdims ", sum(x.views) AS views, sum(x.cart_adds) AS adds"    \
    "         FROM agg_session_products x JOIN agg_t_days t USING (store_id, day)" sjoin_p         \
    "        GROUP BY x.store_id, x.day" sdims "),"                                                \
    " o AS (SELECT o.store_id, o.day" sdims ", count(*) AS orders, sum(o.value) AS revenue,"       \
    "              sum(o.units) AS units, count(DISTINCT o.customer) AS customers,"                \
    "              count(DISTINCT o.customer) FILTER (WHERE f.first_day = o.day) AS new_customers" \
    "         FROM agg_orders o JOIN agg_t_days t USING (store_id, day)" sjoin_o FIRST_ORDER_DAY   \
    "        GROUP BY o.store_id, o.day" sdims ")"                                                 \
    " SELECT store_id, day" dims ", " DAILY_VALUES                                                 \
    "   FROM s FULL JOIN p USING (store_id, day" joindims ")"                                      \
    "          FULL JOIN o USING (store_id, day" joindims ")"

static const char SQL_INS_DAILY[] = DAILY_SQL("agg_daily", "", "", "", "", "");
static const char SQL_INS_SEGMENTS[] =
    DAILY_SQL("agg_daily_segments", ", device, country, source", ", s.device, s.country, s.source",
              ", device, country, source", SESSION_OF("x"), SESSION_OF("o"));

static const char SQL_INS_HOURLY[] =
    "INSERT INTO agg_funnel_hourly"
    " SELECT s.store_id, s.day, s.hour, count(*)," REACH_COUNTS
    "   FROM agg_sessions s JOIN agg_t_days t USING (store_id, day)"
    "  GROUP BY s.store_id, s.day, s.hour";

/* The same for every subset of the funnel's filters (0013_funnel_hourly_segments.sql): dims is
 * the bit mask of the columns grouped by (device 4, country 2, source 1), the others are ''.
 * The finest cells (dims 7) first; each coarser subset is summed from them. Seven plain
 * GROUP BYs rather than GROUPING SETS: the planner cannot size the sets' hash tables and spills
 * them to disk (measured: 40% slower). Written in key order, so a filter's hours of a day
 * share a page. */
// clang-format off
#define CUBE_SUMS \
    "sum(sessions), sum(reach_cart), sum(reach_checkout), sum(reach_shipping)," \
    " sum(reach_payment), sum(reach_confirmation)"
#define CUBE_SET(dims, columns, group) \
    " UNION ALL SELECT store_id, day, " dims ", " columns ", hour, " CUBE_SUMS \
    "   FROM cell GROUP BY store_id, day, hour, " group
static const char SQL_INS_HOURLY_SEGMENTS[] =
    "INSERT INTO agg_funnel_hourly_segments"
    " WITH cell AS MATERIALIZED ("
    "   SELECT s.store_id, s.day, s.hour, s.device, s.country, s.source, count(*)::int AS sessions,"
    "          count(*) FILTER (WHERE s.reach >= 1)::int AS reach_cart,"
    "          count(*) FILTER (WHERE s.reach >= 2)::int AS reach_checkout,"
    "          count(*) FILTER (WHERE s.reach >= 3)::int AS reach_shipping,"
    "          count(*) FILTER (WHERE s.reach >= 4)::int AS reach_payment,"
    "          count(*) FILTER (WHERE s.reach >= 5)::int AS reach_confirmation"
    "     FROM agg_sessions s JOIN agg_t_days t USING (store_id, day)"
    "    GROUP BY s.store_id, s.day, s.hour, s.device, s.country, s.source)"
    " SELECT * FROM (SELECT store_id, day, 7::smallint AS dims, device, country, source, hour,"
    "                       sessions, reach_cart, reach_checkout, reach_shipping, reach_payment,"
    "                       reach_confirmation FROM cell"
    CUBE_SET("6", "device, country, ''", "device, country")
    CUBE_SET("5", "device, '', source",  "device, source")
    CUBE_SET("4", "device, '', ''",      "device")
    CUBE_SET("3", "'', country, source", "country, source")
    CUBE_SET("2", "'', country, ''",     "country")
    CUBE_SET("1", "'', '', source",      "source") ") x"
    " ORDER BY store_id, day, dims, device, country, source, hour";
// clang-format on

static const char SQL_INS_PRODUCTS[] =
    "INSERT INTO agg_product_daily"
    " SELECT x.store_id, x.day, x.product_id, max(nullif(x.category, '')), sum(x.views),"
    "        sum(x.cart_adds), sum(x.purchases), sum(x.units), sum(x.revenue)"
    "   FROM agg_session_products x JOIN agg_t_days t USING (store_id, day)"
    "  GROUP BY x.store_id, x.day, x.product_id";

static const char SQL_INS_CATEGORIES[] =
    "INSERT INTO agg_category_daily"
    " SELECT x.store_id, x.day, coalesce(nullif(x.category, ''), 'uncategorized'), sum(x.views),"
    "        sum(x.cart_adds), sum(x.purchases), sum(x.units), sum(x.revenue)"
    "   FROM agg_session_products x JOIN agg_t_days t USING (store_id, day)"
    "  GROUP BY 1, 2, 3";

/* A week or a month, counted over its own layer 1 rows: distinct visitors and customers are
 * exact for the period; a new customer's first order ever falls inside it. Product views and
 * add-to-carts are plain sums: over the period's days of agg_daily, rebuilt just before. */
#define PERIOD_SQL(table, kind, end)                                                               \
    "INSERT INTO " table " (store_id, period, " DAILY_COLUMNS ")"                                  \
    " WITH per AS (SELECT store_id, period, (" end ")::date AS period_end FROM agg_t_periods"      \
    "               WHERE kind = '" kind "'),"                                                     \
    " s AS (SELECT per.store_id, per.period, count(*) AS sessions,"                                \
    "              count(DISTINCT s.visitor) AS visitors," REACH_COUNTS ","                        \
    "              count(*) FILTER (WHERE s.orders > 0) AS converted"                              \
    "         FROM per JOIN agg_sessions s ON s.store_id = per.store_id"                           \
    "          AND s.day >= per.period AND s.day < per.period_end"                                 \
    "        GROUP BY per.store_id, per.period),"                                                  \
    " p AS (SELECT per.store_id, per.period, sum(d.product_views) AS views,"                       \
    "              sum(d.cart_adds) AS adds"                                                       \
    "         FROM per JOIN agg_daily d ON d.store_id = per.store_id"                              \
    "          AND d.day >= per.period AND d.day < per.period_end"                                 \
    "        GROUP BY per.store_id, per.period),"                                                  \
    " o AS (SELECT per.store_id, per.period, count(*) AS orders, sum(o.value) AS revenue,"         \
    "              sum(o.units) AS units, count(DISTINCT o.customer) AS customers,"                \
    "              count(DISTINCT o.customer) FILTER (WHERE f.first_day >= per.period)"            \
    "                AS new_customers"                                                             \
    "         FROM per JOIN agg_orders o ON o.store_id = per.store_id"                             \
    "          AND o.day >= per.period AND o.day < per.period_end" FIRST_ORDER_DAY                 \
    "        GROUP BY per.store_id, per.period)"                                                   \
    " SELECT store_id, period, " DAILY_VALUES                                                      \
    "   FROM s FULL JOIN p USING (store_id, period) FULL JOIN o USING (store_id, period)"

static const char SQL_INS_WEEKLY[] = PERIOD_SQL("agg_weekly", "w", "period + 7");
static const char SQL_INS_MONTHLY[] = PERIOD_SQL("agg_monthly", "m", "period + interval '1 month'");

/* Each customer ordering on a day, under their previous order day (one index probe each). */
static const char SQL_INS_CUSTOMER_DAYS[] =
    "INSERT INTO agg_customer_days"
    " SELECT o.store_id, o.day, coalesce(pv.prev_day, '-infinity'), count(*)"
    "   FROM (SELECT DISTINCT o.store_id, o.customer, o.day FROM agg_orders o"
    "           JOIN agg_t_customer_days t USING (store_id, day)) o"
    "   LEFT JOIN LATERAL (SELECT max(o2.day) AS prev_day FROM agg_orders o2"
    "                       WHERE o2.store_id = o.store_id AND o2.customer = o.customer"
    "                         AND o2.day < o.day) pv ON true"
    "  GROUP BY 1, 2, 3";

static const char SQL_WATERMARK[] =
    "INSERT INTO agg_watermarks (store_id, job, snapshot, taken_at, full_at, updated_at)"
    " SELECT store_id, 'aggregate', pg_current_snapshot(), now(),"
    "        CASE WHEN is_full THEN now() END, clock_timestamp() FROM agg_run"
    " ON CONFLICT (store_id, job) DO UPDATE SET snapshot = EXCLUDED.snapshot,"
    "   taken_at = EXCLUDED.taken_at, full_at = coalesce(EXCLUDED.full_at, agg_watermarks.full_at),"
    "   updated_at = EXCLUDED.updated_at";

static const char SQL_COUNTS[] =
    "SELECT (SELECT count(*) FROM agg_t_sessions), (SELECT count(*) FROM agg_t_days),"
    "       (SELECT count(*) FROM agg_t_periods WHERE kind = 'w'),"
    "       (SELECT count(*) FROM agg_t_periods WHERE kind = 'm')";

/* ---------------------------------------------------------------------------------------------- */

static int exec(pe_db_conn_t *conn, const char *sql, int n, const char *const *params, char *err,
                size_t errlen)
{
    int rc = pe_db_exec(conn, sql, n, params, NULL);
    if (rc != 0) /* which statement: its first words are enough to find it here */
        snprintf(err, errlen, "%s (in \"%.48s…\")", pe_db_conn_error(conn), sql);
    return rc;
}

static int exec_all(pe_db_conn_t *conn, const char *const *sqls, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        int rc = exec(conn, sqls[i], 0, NULL, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The pipeline, inside the caller's transaction. */
static int pipeline(pe_db_conn_t *conn, const pe_aggregate_options_t *opt,
                    pe_aggregate_report_t *rep, char *err, size_t errlen)
{
    pe_db_result_t *res = NULL;
    const char *run_params[] = {opt->store_id, opt->full ? "true" : "false"};
    int rc = exec(conn, "SET LOCAL statement_timeout = 0", 0, NULL, err, errlen);
    rc = rc ? rc : exec(conn, "SET LOCAL work_mem = '64MB'", 0, NULL, err, errlen);
    /* An incremental run joins a few thousand touched sessions to tables of millions of rows:
     * index probes, not scans, as long as the planner does not price each probe as a disk seek
     * (the aggregate tables' indexes are hot: the dashboard reads them all day). */
    rc = rc ? rc : exec(conn, "SET LOCAL random_page_cost = 1.1", 0, NULL, err, errlen);
    rc = rc ? rc : exec(conn, SQL_RUN, 2, run_params, err, errlen);
    if (rc != 0)
        goto out;
    rc = pe_db_exec(conn, SQL_RUN_SUMMARY, 0, NULL, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s", pe_db_conn_error(conn));
        goto out;
    }
    rep->stores = strtoul(pe_db_result_get(res, 0, 0), NULL, 10);
    rep->full_stores = strtoul(pe_db_result_get(res, 0, 1), NULL, 10);
    if (opt->store_id && rep->stores == 0) {
        snprintf(err, errlen, "no store %s", opt->store_id);
        rc = PE_ENOTFOUND;
        goto out;
    }
    char lo[64] = "";
    bool incremental = !pe_db_result_isnull(res, 0, 2);
    if (incremental)
        snprintf(lo, sizeof lo, "%s", pe_db_result_get(res, 0, 2));
    pe_db_result_free(res);
    res = NULL;

    rc = exec_all(conn, SQL_TEMP_TABLES, PE_ARRAY_LEN(SQL_TEMP_TABLES), err, errlen);
    if (rc != 0)
        goto out;
    if (incremental) {
        const char *p[] = {lo};
        rc = exec(conn, SQL_TOUCHED, 1, p, err, errlen);
        rc = rc ? rc : exec(conn, "ANALYZE agg_t_sessions", 0, NULL, err, errlen);
        rc = rc ? rc : exec(conn, SQL_TOUCHED_SPAN, 0, NULL, err, errlen);
        if (rc != 0)
            goto out;
        if ((rc = pe_db_exec(conn, SQL_TOUCHED_BOUNDS, 0, NULL, &res)) != 0) {
            snprintf(err, errlen, "%s", pe_db_conn_error(conn));
            goto out;
        }
        incremental = !pe_db_result_isnull(res, 0, 0); /* else: no session is new */
        if (incremental) {
            char span_lo[64], span_hi[64];
            snprintf(span_lo, sizeof span_lo, "%s", pe_db_result_get(res, 0, 0));
            snprintf(span_hi, sizeof span_hi, "%s", pe_db_result_get(res, 0, 1));
            const char *span[] = {span_lo, span_hi};
            rc = exec(conn, SQL_SESSION_EVENTS, 2, span, err, errlen);
            rc = rc ? rc
                    : exec(conn, "ANALYZE agg_t_events (store_id, session_id, name)", 0, NULL, err,
                           errlen);
        }
        pe_db_result_free(res);
        res = NULL;
        if (rc != 0)
            goto out;
    }
    static const char *const before[] = {SQL_OLD_DAYS, SQL_CUSTOMERS, SQL_FIRST_DAYS, SQL_VISITORS};
    rc = exec_all(conn, before, PE_ARRAY_LEN(before), err, errlen);
    rc = rc ? rc : exec_all(conn, SQL_DEL_FULL, PE_ARRAY_LEN(SQL_DEL_FULL), err, errlen);
    rc = rc ? rc : exec_all(conn, SQL_DEL_L1, PE_ARRAY_LEN(SQL_DEL_L1), err, errlen);
    if (rc == 0 && rep->full_stores > 0) {
        /* A store recomputed in full is often one the statistics have never seen (its first
         * run): the planner would expect one row of it and join its sessions to its days on
         * store_id alone, a cross product probed once per session and day (minutes for a few
         * thousand sessions). ANALYZE inside the transaction samples the rows it just wrote. */
        static const char *const analyze_layer1[] = {
            "ANALYZE agg_sessions",
            "ANALYZE agg_session_products",
            "ANALYZE agg_orders",
            "ANALYZE agg_exposures",
        };
        rc = exec_all(conn, SQL_INS_FULL, PE_ARRAY_LEN(SQL_INS_FULL), err, errlen);
        rc = rc ? rc : exec_all(conn, analyze_layer1, PE_ARRAY_LEN(analyze_layer1), err, errlen);
    }
    if (rc == 0 && incremental) {
        static const char *const touched[] = {SQL_VISITORS, "ANALYZE agg_t_visitors",
                                              SQL_VISITOR_TYPES};
        rc = exec_all(conn, SQL_INS_TOUCHED, PE_ARRAY_LEN(SQL_INS_TOUCHED), err, errlen);
        rc = rc ? rc : exec_all(conn, touched, PE_ARRAY_LEN(touched), err, errlen);
    }
    static const char *const layer1[] = {SQL_NEW_DAYS,   SQL_CUSTOMERS,
                                         SQL_FIRST_DAYS, SQL_UNTOUCHED_FIRST_DAYS,
                                         SQL_PERIODS,    SQL_CUSTOMER_DAYS};
    rc = rc ? rc : exec_all(conn, layer1, PE_ARRAY_LEN(layer1), err, errlen);
    rc = rc ? rc : exec(conn, "ANALYZE agg_t_days", 0, NULL, err, errlen);
    rc = rc ? rc : exec(conn, "ANALYZE agg_t_customer_days", 0, NULL, err, errlen);
    rc = rc ? rc : exec_all(conn, SQL_DEL_L2, PE_ARRAY_LEN(SQL_DEL_L2), err, errlen);
    static const char *const layer2[] = {
        SQL_INS_DAILY,         SQL_INS_SEGMENTS,   SQL_INS_HOURLY,   SQL_INS_HOURLY_SEGMENTS,
        SQL_INS_PRODUCTS,      SQL_INS_CATEGORIES, SQL_INS_WEEKLY,   SQL_INS_MONTHLY,
        SQL_INS_CUSTOMER_DAYS, SQL_WATERMARK,      SQL_PRUNE_COMMITS};
    rc = rc ? rc : exec_all(conn, layer2, PE_ARRAY_LEN(layer2), err, errlen);
    if (rc != 0)
        goto out;
    /* A full run rewrites whole tables: fresh statistics keep the dashboard's plans sane
     * before autovacuum gets round to it (layer 1 was analysed before layer 2 was built). */
    static const char *const analyze[] = {
        "ANALYZE agg_daily",         "ANALYZE agg_daily_segments",
        "ANALYZE agg_funnel_hourly", "ANALYZE agg_funnel_hourly_segments",
        "ANALYZE agg_product_daily", "ANALYZE agg_category_daily",
        "ANALYZE agg_customer_days",
    };
    if (rep->full_stores > 0 && (rc = exec_all(conn, analyze, PE_ARRAY_LEN(analyze), err, errlen)))
        goto out;
    rc = pe_db_exec(conn, SQL_COUNTS, 0, NULL, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s", pe_db_conn_error(conn));
        goto out;
    }
    rep->sessions = strtoul(pe_db_result_get(res, 0, 0), NULL, 10);
    rep->days = strtoul(pe_db_result_get(res, 0, 1), NULL, 10);
    rep->weeks = strtoul(pe_db_result_get(res, 0, 2), NULL, 10);
    rep->months = strtoul(pe_db_result_get(res, 0, 3), NULL, 10);
out:
    pe_db_result_free(res);
    return rc;
}

int pe_aggregate_run(pe_db_pool_t *db, const pe_aggregate_options_t *opt,
                     pe_aggregate_report_t *rep, char *err, size_t errlen)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    bool locked = false, in_tx = false;
    int64_t start = pe_now_mono_us();
    memset(rep, 0, sizeof *rep);
    err[0] = '\0';
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0) {
        snprintf(err, errlen, "no database connection: %s", pe_strerror(rc));
        goto out;
    }
    if (opt->wait) {
        rc = exec(conn, "SELECT pg_advisory_lock(" AGG_LOCK_KEY ")", 0, NULL, err, errlen);
        if (rc != 0)
            goto out;
        locked = true;
    } else {
        rc = pe_db_exec(conn, "SELECT pg_try_advisory_lock(" AGG_LOCK_KEY ")", 0, NULL, &res);
        if (rc != 0) {
            snprintf(err, errlen, "%s", pe_db_conn_error(conn));
            goto out;
        }
        locked = pe_db_result_get(res, 0, 0)[0] == 't';
        if (!locked) {
            rep->skipped = true;
            goto out;
        }
    }
    rc = exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL, err, errlen);
    if (rc != 0)
        goto out;
    in_tx = true;
    rc = pipeline(conn, opt, rep, err, errlen);
    if (rc != 0)
        goto out;
    rc = pe_db_commit(conn);
    in_tx = false;
    if (rc != 0)
        snprintf(err, errlen, "commit: %s", pe_db_conn_error(conn));
out:
    if (in_tx)
        pe_db_rollback(conn);
    if (locked)
        pe_db_exec(conn, "SELECT pg_advisory_unlock(" AGG_LOCK_KEY ")", 0, NULL, NULL);
    pe_db_result_free(res);
    pe_db_release(db, conn);
    rep->ms = (double)(pe_now_mono_us() - start) / 1000.0;
    return rc;
}

int pe_aggregate_job(void *arg, char *err, size_t errlen)
{
    pe_aggregate_options_t opt = {.store_id = NULL, .full = false, .wait = false};
    pe_aggregate_report_t rep;
    int rc = pe_aggregate_run(arg, &opt, &rep, err, errlen);
    if (rc == 0 && rep.skipped)
        pe_log(PE_LOG_INFO, "aggregate_skipped", "another instance is aggregating");
    else if (rc == 0)
        pe_log(PE_LOG_INFO, "aggregate_done",
               "%zu stores (%zu in full), %zu sessions, %zu days, %zu weeks, %zu months in %.1f "
               "ms",
               rep.stores, rep.full_stores, rep.sessions, rep.days, rep.weeks, rep.months, rep.ms);
    return rc;
}
