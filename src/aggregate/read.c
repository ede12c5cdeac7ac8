/*
 * read.c — the reads behind the metrics API: the store overview (8.4), the checkout funnel with
 * its problem flags (8.5) and a step's breakdown. Each read is a handful of indexed range scans
 * over the aggregate tables of one store; the arithmetic (periods, changes, the drop-off test)
 * is done here in C.
 *
 * Invariants:
 *  1. Only aggregate tables are read (agg_daily, agg_daily_segments, agg_funnel_hourly,
 *     agg_funnel_hourly_segments, agg_product_daily, agg_customer_days), always by store_id
 *     first; never events.
 *  2. A ratio whose denominator is 0 is JSON null, and so is a change against a previous value
 *     of 0 or null: no invented numbers.
 *  3. Periods are store-local days: today; this ISO week (Monday to today) against the same
 *     weekdays of the week before; this month (1st to today) against the same days of the month
 *     before (clamped to its length); the range against the as-long period just before it.
 *     Like with like: a period that ends today is not over, so it and its previous period both
 *     stop at the clock's time of day on their last day (sessions that started, orders placed
 *     and customers who ordered before it); an early morning is never compared with a whole
 *     day. A previous month clamped to its length is whole.
 *  4. The drop-off test (pe_aggregate_dropoff_problem) flags a step when the range's drop-off
 *     exceeds the store's trailing-28-day drop-off by more than PROBLEM_Z standard errors, the
 *     error counting both binomial noise and the day-to-day swing of the trailing days.
 *  5. A step's breakdown splits exactly the sessions the funnel counts for the same query (range
 *     and filters): each of byDevice, byCountry, bySource and byHour sums to the funnel's
 *     sessions at the step before.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/aggregate.h"

#define ACQUIRE_TIMEOUT_MS 2000
#define TRAIL_DAYS         28
#define PROBLEM_Z          3.0 /* one-sided: about 1 false alarm in 740 per step and query */
#define PROBLEM_MIN_N      30  /* sessions at the previous step before a range can be judged */
#define PROBLEM_MIN_DAYS   7   /* trailing days with sessions before there is a baseline */
#define TOP_PRODUCTS       10
#define MAX_SPAN           (2 * PE_AGGREGATE_MAX_DAYS + 64)

static const char SQL_CLOCK[] =
    "SELECT l::date - date '1970-01-01', floor(extract(epoch FROM l::time))"
    "  FROM stores,"
    "       LATERAL (SELECT (timestamptz 'epoch' + $2::bigint * interval '1 microsecond')"
    "                       AT TIME ZONE timezone) AS x(l)"
    " WHERE id = $1::uuid";

int pe_aggregate_clock(pe_db_pool_t *db, const char *store_id, int64_t now_us,
                       pe_aggregate_clock_t *clock)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)now_us);
    const char *p[] = {store_id, now};
    rc = pe_db_exec(conn, SQL_CLOCK, 2, p, &res);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) != 1) {
        rc = PE_ENOTFOUND;
        goto out;
    }
    clock->today = (int32_t)strtol(pe_db_result_get(res, 0, 0), NULL, 10);
    clock->time_of_day = (int32_t)strtol(pe_db_result_get(res, 0, 1), NULL, 10);
out:
    pe_db_result_free(res);
    pe_db_release(db, conn);
    return rc;
}

/* ---- helpers --------------------------------------------------------------------------------- */

static void date_text(int32_t days, char out[16])
{
    pe_aggregate_date_format(days, out, 16);
}

static cJSON *number_or_null(bool ok, double v)
{
    return ok && isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

/* {"value":v,"previous":p,"change":(v − p) / p}; a NaN is "not defined". */
static cJSON *compare(double v, double p)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "value", number_or_null(true, v));
    cJSON_AddItemToObject(o, "previous", number_or_null(true, p));
    cJSON_AddItemToObject(o, "change",
                          number_or_null(!isnan(v) && !isnan(p) && p != 0, (v - p) / p));
    return o;
}

static double ratio(double num, double den)
{
    return den > 0 ? num / den : NAN;
}

/* ---- overview -------------------------------------------------------------------------------- */

typedef struct {
    double sessions, converted, orders, revenue;
} day_row_t;

typedef struct {
    int32_t lo, hi;
    bool cut; /* the last day counts only until the clock's time of day */
} period_t;

enum { P_TODAY, P_WEEK, P_MONTH, P_RANGE, NPERIODS };
static const char *const PERIOD_NAMES[NPERIODS] = {"today", "week", "month", "range"};

static const char SQL_DAYS[] =
    "SELECT day - date '1970-01-01', sessions, converted_sessions, orders, revenue"
    "  FROM agg_daily WHERE store_id = $1::uuid AND day BETWEEN $2::date AND $3::date";

/* Customers ordering in each period, and the new ones (first order ever inside it), from the
 * pairs of order days of 0010_customer_days.sql: no DISTINCT over orders. */
static const char SQL_CUSTOMERS[] =
    "WITH p(k, lo, hi) AS (VALUES (0, $2::date, $3::date), (1, $4::date, $5::date),"
    "          (2, $6::date, $7::date), (3, $8::date, $9::date), (4, $10::date, $11::date),"
    "          (5, $12::date, $13::date), (6, $14::date, $15::date), (7, $16::date, $17::date))"
    "SELECT p.k, sum(c.customers), sum(c.customers) FILTER (WHERE c.prev_day = '-infinity')"
    "  FROM p JOIN agg_customer_days c ON c.store_id = $1::uuid"
    "   AND c.day BETWEEN p.lo AND p.hi AND c.prev_day < p.lo"
    " GROUP BY p.k";

static const char SQL_TOP_PRODUCTS[] =
    "SELECT product_id, max(category), sum(revenue), sum(units), sum(purchases), sum(views),"
    "       sum(cart_adds)"
    "  FROM agg_product_daily WHERE store_id = $1::uuid AND day BETWEEN $2::date AND $3::date"
    " GROUP BY product_id ORDER BY sum(revenue) DESC, sum(units) DESC, product_id LIMIT 10";

static void civil(int32_t days, int *y, int *m, int *d)
{
    char t[16];
    date_text(days, t);
    *y = atoi(t);
    *m = atoi(t + 5);
    *d = atoi(t + 8);
}

static int32_t date_of(int y, int m, int d)
{
    char t[16];
    int32_t out = 0;
    snprintf(t, sizeof t, "%04d-%02d-%02d", y % 10000, m % 100, d % 100);
    pe_aggregate_date_parse(t, &out);
    return out;
}

/* The current and previous spans of each period (invariant 3). */
static void periods(const pe_aggregate_clock_t *clock, const pe_aggregate_query_t *q,
                    period_t cur[NPERIODS], period_t prev[NPERIODS])
{
    int32_t today = clock->today;
    bool cut = clock->time_of_day < PE_AGGREGATE_DAY_OVER;
    cur[P_TODAY] = (period_t){today, today, cut};
    prev[P_TODAY] = (period_t){today - 1, today - 1, cut};
    int32_t dow = ((today % 7) + 7 + 3) % 7; /* 1970-01-01 was a Thursday: Monday = 0 */
    cur[P_WEEK] = (period_t){today - dow, today, cut};
    prev[P_WEEK] = (period_t){today - dow - 7, today - 7, cut};
    int y, m, d;
    civil(today, &y, &m, &d);
    int32_t first = date_of(y, m, 1);
    int py = m == 1 ? y - 1 : y, pm = m == 1 ? 12 : m - 1;
    int32_t pfirst = date_of(py, pm, 1);
    int32_t plast = first - 1;
    int32_t pend = pfirst + (today - first);
    cur[P_MONTH] = (period_t){first, today, cut};
    prev[P_MONTH] =
        pend <= plast ? (period_t){pfirst, pend, cut} : (period_t){pfirst, plast, false};
    int32_t len = q->to - q->from + 1;
    bool range_cut = cut && q->to == today;
    cur[P_RANGE] = (period_t){q->from, q->to, range_cut};
    prev[P_RANGE] = (period_t){q->from - len, q->from - 1, range_cut};
}

/* The whole days of p: its last day is left to partial_days() when it is cut. */
static period_t whole_days(period_t p)
{
    if (p.cut)
        p.hi--;
    return p;
}

static day_row_t sum_days(const day_row_t *rows, int32_t base, int32_t n, period_t p)
{
    day_row_t s = {0, 0, 0, 0};
    for (int32_t day = p.lo; day <= p.hi; day++) {
        int32_t i = day - base;
        if (i < 0 || i >= n)
            continue;
        s.sessions += rows[i].sessions;
        s.converted += rows[i].converted;
        s.orders += rows[i].orders;
        s.revenue += rows[i].revenue;
    }
    return s;
}

static int add_metric(cJSON *root, const char *name, const day_row_t cur[NPERIODS],
                      const day_row_t prev[NPERIODS], int which)
{
    cJSON *o = cJSON_AddObjectToObject(root, name);
    if (!o)
        return PE_ENOMEM;
    for (int k = 0; k < NPERIODS; k++) {
        double v, p;
        switch (which) {
        case 0:
            v = cur[k].revenue, p = prev[k].revenue;
            break;
        case 1:
            v = cur[k].orders, p = prev[k].orders;
            break;
        case 2:
            v = ratio(cur[k].revenue, cur[k].orders), p = ratio(prev[k].revenue, prev[k].orders);
            break;
        default:
            v = ratio(cur[k].converted, cur[k].sessions);
            p = ratio(prev[k].converted, prev[k].sessions);
            break;
        }
        cJSON *c = compare(v, p);
        if (!c)
            return PE_ENOMEM;
        cJSON_AddItemToObject(o, PERIOD_NAMES[k], c);
    }
    return 0;
}

/* The cut last days (invariant 3): per span (index 2k: the current span of period k, 2k + 1:
 * its previous one), the sessions that started on its last day before the clock's time of day,
 * those of them with an order before it, the orders placed and the customers who ordered
 * before it. A customer counts once per span: not when they ordered on an earlier day of it;
 * new when they never ordered before that day. */
static const char SQL_PARTIAL[] =
    "WITH z AS (SELECT timezone AS tz FROM stores WHERE id = $1::uuid),"
    " p AS (SELECT u.k, u.lo, u.d, (u.d + $2::time) AT TIME ZONE z.tz AS day_start_cut"
    "         FROM unnest($3::int[], $4::date[], $5::date[]) AS u(k, lo, d), z),"
    " s AS (SELECT p.k, count(*) AS sessions,"
    "              count(*) FILTER (WHERE EXISTS (SELECT 1 FROM agg_orders y"
    "                 WHERE y.store_id = x.store_id AND y.session_id = x.session_id"
    "                   AND y.occurred_at < p.day_start_cut)) AS converted"
    "         FROM p JOIN agg_sessions x ON x.store_id = $1::uuid AND x.day = p.d"
    "        WHERE x.started_at < p.day_start_cut GROUP BY p.k),"
    " o AS (SELECT p.k, count(*) AS orders, sum(x.value) AS revenue,"
    "              count(DISTINCT x.customer) FILTER (WHERE NOT EXISTS (SELECT 1 FROM agg_orders e"
    "                 WHERE e.store_id = x.store_id AND e.customer = x.customer"
    "                   AND e.day >= p.lo AND e.day < p.d)) AS customers,"
    "              count(DISTINCT x.customer) FILTER (WHERE NOT EXISTS (SELECT 1 FROM agg_orders e"
    "                 WHERE e.store_id = x.store_id AND e.customer = x.customer"
    "                   AND e.day < p.d)) AS fresh"
    "         FROM p JOIN agg_orders x ON x.store_id = $1::uuid AND x.day = p.d"
    "        WHERE x.occurred_at < p.day_start_cut GROUP BY p.k)"
    " SELECT p.k, coalesce(s.sessions, 0), coalesce(s.converted, 0), coalesce(o.orders, 0),"
    "        coalesce(o.revenue, 0), coalesce(o.customers, 0), coalesce(o.fresh, 0)"
    "   FROM p LEFT JOIN s USING (k) LEFT JOIN o USING (k)";

/* Adds the cut last day of every cut span to scur / sprev, and its customers to all / fresh
 * (indexed as overview_customers()). Nothing to do when no span is cut. */
static int partial_days(pe_db_conn_t *conn, const char *store_id, const pe_aggregate_clock_t *clock,
                        const period_t cur[NPERIODS], const period_t prev[NPERIODS],
                        day_row_t scur[NPERIODS], day_row_t sprev[NPERIODS],
                        double all[2 * NPERIODS], double fresh[2 * NPERIODS])
{
    char ks[64] = "{", los[256] = "{", days[256] = "{", cut[16];
    size_t nk = 0;
    for (int i = 0; i < 2 * NPERIODS; i++) {
        period_t s = i % 2 ? prev[i / 2] : cur[i / 2];
        if (!s.cut)
            continue;
        char lo[16], d[16], sep[2] = {nk ? ',' : '\0', '\0'};
        date_text(s.lo, lo);
        date_text(s.hi, d);
        snprintf(ks + strlen(ks), sizeof ks - strlen(ks), "%s%d", sep, i);
        snprintf(los + strlen(los), sizeof los - strlen(los), "%s%s", sep, lo);
        snprintf(days + strlen(days), sizeof days - strlen(days), "%s%s", sep, d);
        nk++;
    }
    if (nk == 0)
        return 0;
    strcat(ks, "}");
    strcat(los, "}");
    strcat(days, "}");
    snprintf(cut, sizeof cut, "%02d:%02d:%02d", clock->time_of_day / 3600,
             clock->time_of_day / 60 % 60, clock->time_of_day % 60);
    const char *p[] = {store_id, cut, ks, los, days};
    pe_db_result_t *res = NULL;
    int rc = pe_db_exec(conn, SQL_PARTIAL, 5, p, &res);
    if (rc != 0)
        return rc;
    for (size_t r = 0; r < pe_db_result_rows(res); r++) {
        long i = strtol(pe_db_result_get(res, r, 0), NULL, 10);
        if (i < 0 || i >= 2 * NPERIODS)
            continue;
        day_row_t *row = i % 2 ? &sprev[i / 2] : &scur[i / 2];
        row->sessions += strtod(pe_db_result_get(res, r, 1), NULL);
        row->converted += strtod(pe_db_result_get(res, r, 2), NULL);
        row->orders += strtod(pe_db_result_get(res, r, 3), NULL);
        row->revenue += strtod(pe_db_result_get(res, r, 4), NULL);
        all[i] += strtod(pe_db_result_get(res, r, 5), NULL);
        fresh[i] += strtod(pe_db_result_get(res, r, 6), NULL);
    }
    pe_db_result_free(res);
    return 0;
}

/* Customers ordering in each period (index 2k: the current span of period k, 2k + 1: its
 * previous one): those of the whole days from agg_customer_days, plus all[] and fresh[], the
 * customers of a cut last day (partial_days()). */
static int overview_customers(pe_db_conn_t *conn, const char *store_id,
                              const period_t cur[NPERIODS], const period_t prev[NPERIODS],
                              const double cut_all[2 * NPERIODS],
                              const double cut_fresh[2 * NPERIODS], cJSON *root)
{
    char dates[16][16];
    const char *p[17] = {store_id};
    for (int k = 0; k < NPERIODS; k++) {
        period_t c = whole_days(cur[k]), b = whole_days(prev[k]);
        date_text(c.lo, dates[4 * k]);
        date_text(c.hi, dates[4 * k + 1]);
        date_text(b.lo, dates[4 * k + 2]);
        date_text(b.hi, dates[4 * k + 3]);
    }
    for (int i = 0; i < 16; i++)
        p[i + 1] = dates[i];
    pe_db_result_t *res = NULL;
    int rc = pe_db_exec(conn, SQL_CUSTOMERS, 17, p, &res);
    if (rc != 0)
        return rc;
    double all[2 * NPERIODS], fresh[2 * NPERIODS];
    memcpy(all, cut_all, sizeof all);
    memcpy(fresh, cut_fresh, sizeof fresh);
    for (size_t r = 0; r < pe_db_result_rows(res); r++) {
        long k = strtol(pe_db_result_get(res, r, 0), NULL, 10);
        if (k < 0 || k >= 2 * NPERIODS)
            continue;
        all[k] += strtod(pe_db_result_get(res, r, 1), NULL);
        fresh[k] += strtod(pe_db_result_get(res, r, 2), NULL);
    }
    pe_db_result_free(res);
    cJSON *c = cJSON_AddObjectToObject(root, "customers");
    cJSON *n = c ? cJSON_AddObjectToObject(c, "new") : NULL;
    cJSON *r = c ? cJSON_AddObjectToObject(c, "returning") : NULL;
    if (!n || !r)
        return PE_ENOMEM;
    for (int k = 0; k < NPERIODS; k++) {
        int a = 2 * k, b = 2 * k + 1; /* current, previous */
        cJSON_AddItemToObject(n, PERIOD_NAMES[k], compare(fresh[a], fresh[b]));
        cJSON_AddItemToObject(r, PERIOD_NAMES[k], compare(all[a] - fresh[a], all[b] - fresh[b]));
    }
    return 0;
}

static int overview_top(pe_db_conn_t *conn, const char *store_id, const pe_aggregate_query_t *q,
                        cJSON *root)
{
    char from[16], to[16];
    date_text(q->from, from);
    date_text(q->to, to);
    const char *p[] = {store_id, from, to};
    pe_db_result_t *res = NULL;
    int rc = pe_db_exec(conn, SQL_TOP_PRODUCTS, 3, p, &res);
    if (rc != 0)
        return rc;
    cJSON *arr = cJSON_AddArrayToObject(root, "topProducts");
    for (size_t r = 0; arr && r < pe_db_result_rows(res); r++) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "productId", pe_db_result_get(res, r, 0));
        if (pe_db_result_isnull(res, r, 1))
            cJSON_AddNullToObject(o, "category");
        else
            cJSON_AddStringToObject(o, "category", pe_db_result_get(res, r, 1));
        cJSON_AddNumberToObject(o, "revenue", strtod(pe_db_result_get(res, r, 2), NULL));
        cJSON_AddNumberToObject(o, "units", strtod(pe_db_result_get(res, r, 3), NULL));
        cJSON_AddNumberToObject(o, "purchases", strtod(pe_db_result_get(res, r, 4), NULL));
        cJSON_AddNumberToObject(o, "views", strtod(pe_db_result_get(res, r, 5), NULL));
        cJSON_AddNumberToObject(o, "cartAdds", strtod(pe_db_result_get(res, r, 6), NULL));
        cJSON_AddItemToArray(arr, o);
    }
    pe_db_result_free(res);
    return arr ? 0 : PE_ENOMEM;
}

int pe_aggregate_overview(pe_db_pool_t *db, const char *store_id, const pe_aggregate_clock_t *clock,
                          const pe_aggregate_query_t *q, cJSON **out)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    cJSON *root = NULL;
    day_row_t *rows = NULL;
    period_t cur[NPERIODS], prev[NPERIODS];
    periods(clock, q, cur, prev);
    int32_t lo = cur[0].lo, hi = cur[0].hi;
    for (int k = 0; k < NPERIODS; k++) {
        lo = cur[k].lo < lo ? cur[k].lo : lo;
        lo = prev[k].lo < lo ? prev[k].lo : lo;
        hi = cur[k].hi > hi ? cur[k].hi : hi;
        hi = prev[k].hi > hi ? prev[k].hi : hi;
    }
    int32_t n = hi - lo + 1;
    int rc = PE_ENOMEM;
    rows = n > 0 && n <= MAX_SPAN ? calloc((size_t)n, sizeof *rows) : NULL;
    root = cJSON_CreateObject();
    if (!rows || !root)
        goto out;
    rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    char dlo[16], dhi[16], t[16];
    date_text(lo, dlo);
    date_text(hi, dhi);
    const char *p[] = {store_id, dlo, dhi};
    rc = pe_db_exec(conn, SQL_DAYS, 3, p, &res);
    if (rc != 0)
        goto out;
    for (size_t r = 0; r < pe_db_result_rows(res); r++) {
        int32_t i = (int32_t)strtol(pe_db_result_get(res, r, 0), NULL, 10) - lo;
        if (i < 0 || i >= n)
            continue;
        rows[i] = (day_row_t){
            strtod(pe_db_result_get(res, r, 1), NULL), strtod(pe_db_result_get(res, r, 2), NULL),
            strtod(pe_db_result_get(res, r, 3), NULL), strtod(pe_db_result_get(res, r, 4), NULL)};
    }
    day_row_t scur[NPERIODS], sprev[NPERIODS];
    for (int k = 0; k < NPERIODS; k++) {
        scur[k] = sum_days(rows, lo, n, whole_days(cur[k]));
        sprev[k] = sum_days(rows, lo, n, whole_days(prev[k]));
    }
    double customers[2 * NPERIODS] = {0}, fresh[2 * NPERIODS] = {0};
    rc = partial_days(conn, store_id, clock, cur, prev, scur, sprev, customers, fresh);
    if (rc != 0)
        goto out;
    date_text(q->from, t);
    cJSON_AddStringToObject(root, "from", t);
    date_text(q->to, t);
    cJSON_AddStringToObject(root, "to", t);
    date_text(clock->today, t);
    cJSON_AddStringToObject(root, "today", t);
    if (clock->time_of_day < PE_AGGREGATE_DAY_OVER) {
        snprintf(t, sizeof t, "%02d:%02d", clock->time_of_day / 3600, clock->time_of_day / 60 % 60);
        cJSON_AddStringToObject(root, "comparedUntil", t);
    } else {
        cJSON_AddNullToObject(root, "comparedUntil");
    }
    rc = add_metric(root, "revenue", scur, sprev, 0);
    rc = rc ? rc : add_metric(root, "orders", scur, sprev, 1);
    rc = rc ? rc : add_metric(root, "aov", scur, sprev, 2);
    rc = rc ? rc : add_metric(root, "conversionRate", scur, sprev, 3);
    rc = rc ? rc : overview_customers(conn, store_id, cur, prev, customers, fresh, root);
    if (rc != 0)
        goto out;
    cJSON *trend = cJSON_AddArrayToObject(root, "trend");
    for (int32_t day = q->from; trend && day <= q->to; day++) {
        day_row_t d = rows[day - lo];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        date_text(day, t);
        cJSON_AddStringToObject(o, "date", t);
        cJSON_AddNumberToObject(o, "sessions", d.sessions);
        cJSON_AddNumberToObject(o, "orders", d.orders);
        cJSON_AddNumberToObject(o, "revenue", d.revenue);
        cJSON_AddItemToObject(o, "conversionRate",
                              number_or_null(true, ratio(d.converted, d.sessions)));
        cJSON_AddItemToArray(trend, o);
    }
    rc = overview_top(conn, store_id, q, root);
    if (rc != 0)
        goto out;
    *out = root;
    root = NULL;
out:
    pe_db_result_free(res);
    pe_db_release(db, conn);
    cJSON_Delete(root);
    free(rows);
    return rc;
}

/* ---- funnel ---------------------------------------------------------------------------------- */

bool pe_aggregate_dropoff_problem(double dropped, double n, const double *trail_dropped,
                                  const double *trail_n, size_t ntrail, size_t range_days,
                                  double *expected)
{
    double sum_d = 0, sum_n = 0, mean = 0, m2 = 0;
    size_t k = 0;
    for (size_t i = 0; i < ntrail; i++) {
        if (trail_n[i] <= 0)
            continue;
        sum_d += trail_dropped[i];
        sum_n += trail_n[i];
        double r = trail_dropped[i] / trail_n[i], delta = r - mean; /* Welford */
        mean += delta / (double)++k;
        m2 += delta * (r - mean);
    }
    *expected = -1;
    if (k < PROBLEM_MIN_DAYS || sum_n <= 0)
        return false;
    double p0 = sum_d / sum_n;
    *expected = p0;
    if (n < PROBLEM_MIN_N || range_days == 0)
        return false;
    double s2 = m2 / (double)(k - 1);                              /* day-to-day swing */
    double se = sqrt(p0 * (1 - p0) / n + s2 / (double)range_days); /* of the range's mean */
    double p = dropped / n;
    if (se <= 0)
        return p > p0;
    return (p - p0) / se > PROBLEM_Z;
}

#define FUNNEL_SUMS                                                                                \
    "SELECT day - date '1970-01-01', sum(sessions), sum(reach_cart), sum(reach_checkout),"         \
    "       sum(reach_shipping), sum(reach_payment), sum(reach_confirmation)"

static const char SQL_FUNNEL_ALL[] =
    FUNNEL_SUMS " FROM agg_daily WHERE store_id = $1::uuid AND day BETWEEN $2::date AND $3::date"
                " GROUP BY day";
static const char SQL_FUNNEL_SEGMENT[] =
    FUNNEL_SUMS " FROM agg_daily_segments"
                " WHERE store_id = $1::uuid AND day BETWEEN $2::date AND $3::date"
                "   AND ($4 = '' OR device = $4) AND ($5 = '' OR country = $5)"
                "   AND ($6 = '' OR source = $6)"
                " GROUP BY day";

static void add_filter(cJSON *o, const char *name, const char *v)
{
    if (v[0])
        cJSON_AddStringToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

int pe_aggregate_funnel(pe_db_pool_t *db, const char *store_id, const pe_aggregate_query_t *q,
                        cJSON **out)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    cJSON *root = NULL;
    double range[6] = {0};
    double trail[TRAIL_DAYS][6];
    double active[6] = {0}; /* days of the range with sessions at each step */
    memset(trail, 0, sizeof trail);
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    char lo[16], from[16], to[16];
    date_text(q->from - TRAIL_DAYS, lo);
    date_text(q->from, from);
    date_text(q->to, to);
    bool all = !q->device[0] && !q->country[0] && !q->source[0];
    const char *p[] = {store_id, lo, to, q->device, q->country, q->source};
    rc = pe_db_exec(conn, all ? SQL_FUNNEL_ALL : SQL_FUNNEL_SEGMENT, all ? 3 : 6, p, &res);
    if (rc != 0)
        goto out;
    for (size_t r = 0; r < pe_db_result_rows(res); r++) {
        int32_t day = (int32_t)strtol(pe_db_result_get(res, r, 0), NULL, 10);
        double v[6];
        for (int s = 0; s < 6; s++)
            v[s] = strtod(pe_db_result_get(res, r, (size_t)s + 1), NULL);
        if (day >= q->from) {
            for (int s = 0; s < 6; s++) {
                range[s] += v[s];
                active[s] += v[s] > 0;
            }
        } else if (day >= q->from - TRAIL_DAYS) {
            memcpy(trail[day - (q->from - TRAIL_DAYS)], v, sizeof v);
        }
    }
    rc = PE_ENOMEM;
    root = cJSON_CreateObject();
    if (!root)
        goto out;
    cJSON_AddStringToObject(root, "from", from);
    cJSON_AddStringToObject(root, "to", to);
    cJSON *filters = cJSON_AddObjectToObject(root, "filters");
    cJSON *steps = cJSON_AddArrayToObject(root, "steps");
    if (!filters || !steps)
        goto out;
    add_filter(filters, "device", q->device);
    add_filter(filters, "country", q->country);
    add_filter(filters, "source", q->source);
    cJSON_AddNumberToObject(root, "sessions", range[0]);
    for (int s = 1; s <= 5; s++) {
        double td[TRAIL_DAYS], tn[TRAIL_DAYS], expected = -1;
        for (int i = 0; i < TRAIL_DAYS; i++) {
            tn[i] = trail[i][s - 1];
            td[i] = trail[i][s - 1] - trail[i][s];
        }
        bool problem = pe_aggregate_dropoff_problem(range[s - 1] - range[s], range[s - 1], td, tn,
                                                    TRAIL_DAYS, (size_t)active[s - 1], &expected);
        double conv = ratio(range[s], range[s - 1]);
        cJSON *o = cJSON_CreateObject();
        if (!o)
            goto out;
        cJSON_AddItemToArray(steps, o);
        cJSON_AddStringToObject(o, "step", pe_events_funnel_step_name((pe_funnel_step_t)s));
        cJSON_AddNumberToObject(o, "sessions", range[s]);
        cJSON_AddItemToObject(o, "conversion", number_or_null(true, conv));
        cJSON_AddItemToObject(o, "dropOff", number_or_null(true, 1 - conv));
        cJSON_AddItemToObject(o, "expectedDropOff", number_or_null(expected >= 0, expected));
        cJSON_AddBoolToObject(o, "problem", problem);
    }
    *out = root;
    root = NULL;
    rc = 0;
out:
    pe_db_result_free(res);
    pe_db_release(db, conn);
    cJSON_Delete(root);
    return rc;
}

/* ---- breakdown ------------------------------------------------------------------------------- */

/* $4 is the step: the sessions at the step before it and at it, by each segment column. */
#define STEP_COLUMNS                                                                               \
    "sum(CASE $4::int WHEN 1 THEN sessions WHEN 2 THEN reach_cart WHEN 3 THEN reach_checkout"      \
    "    WHEN 4 THEN reach_shipping ELSE reach_payment END),"                                      \
    " sum(CASE $4::int WHEN 1 THEN reach_cart WHEN 2 THEN reach_checkout WHEN 3 THEN"              \
    "    reach_shipping WHEN 4 THEN reach_payment ELSE reach_confirmation END)"

/* $5..$7 are the funnel's filters ('' = any), as in SQL_FUNNEL_SEGMENT. */
static const char SQL_BREAKDOWN[] =
    "SELECT GROUPING(device, country, source), device, country, source, " STEP_COLUMNS
    "  FROM agg_daily_segments WHERE store_id = $1::uuid AND day BETWEEN $2::date AND $3::date"
    "   AND ($5 = '' OR device = $5) AND ($6 = '' OR country = $6) AND ($7 = '' OR source = $7)"
    " GROUP BY GROUPING SETS ((device), (country), (source))"
    " ORDER BY 1, 5 DESC, 2, 3, 4";

static const char SQL_BREAKDOWN_HOURS[] =
    "SELECT hour, " STEP_COLUMNS
    "  FROM agg_funnel_hourly WHERE store_id = $1::uuid AND day BETWEEN $2::date AND $3::date"
    " GROUP BY hour";

/* Filtered: the cube rows of exactly the filters given ($5 the bit mask, $6..$8 the values or
 * ''; 0013_funnel_hourly_segments.sql). The key leads with the day, so each day of the range is
 * its own index descent to at most 24 adjacent rows (= ANY, not a range over every cube row of
 * the days). */
static const char SQL_BREAKDOWN_HOURS_SEGMENT[] =
    "SELECT hour, " STEP_COLUMNS "  FROM agg_funnel_hourly_segments WHERE store_id = $1::uuid"
    "   AND day = ANY (ARRAY(SELECT generate_series($2::date, $3::date, interval '1 day')::date))"
    "   AND dims = $5::smallint AND device = $6 AND country = $7 AND source = $8"
    " GROUP BY hour";

static cJSON *breakdown_row(const char *key, const char *value, double hour, double n, double k)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (value)
        cJSON_AddStringToObject(o, key, value);
    else
        cJSON_AddNumberToObject(o, key, hour);
    cJSON_AddNumberToObject(o, "sessions", n);
    cJSON_AddNumberToObject(o, "reached", k);
    cJSON_AddItemToObject(o, "conversion", number_or_null(true, ratio(k, n)));
    return o;
}

int pe_aggregate_breakdown(pe_db_pool_t *db, const char *store_id, pe_funnel_step_t step,
                           const pe_aggregate_query_t *q, cJSON **out)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    cJSON *root = NULL;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    char from[16], to[16], s[4], dims[4];
    date_text(q->from, from);
    date_text(q->to, to);
    snprintf(s, sizeof s, "%d", (int)step);
    int mask = (q->device[0] ? 4 : 0) | (q->country[0] ? 2 : 0) | (q->source[0] ? 1 : 0);
    snprintf(dims, sizeof dims, "%d", mask);
    const char *p[] = {store_id, from, to, s, q->device, q->country, q->source};
    const char *ph[] = {store_id, from, to, s, dims, q->device, q->country, q->source};
    rc = pe_db_exec(conn, SQL_BREAKDOWN, 7, p, &res);
    if (rc != 0)
        goto out;
    rc = PE_ENOMEM;
    root = cJSON_CreateObject();
    if (!root)
        goto out;
    cJSON_AddStringToObject(root, "step", pe_events_funnel_step_name(step));
    cJSON_AddStringToObject(root, "previousStep",
                            step == PE_FUNNEL_CART
                                ? "sessions"
                                : pe_events_funnel_step_name((pe_funnel_step_t)(step - 1)));
    cJSON_AddStringToObject(root, "from", from);
    cJSON_AddStringToObject(root, "to", to);
    cJSON *filters = cJSON_AddObjectToObject(root, "filters");
    cJSON *parts[3] = {cJSON_AddArrayToObject(root, "byDevice"),
                       cJSON_AddArrayToObject(root, "byCountry"),
                       cJSON_AddArrayToObject(root, "bySource")};
    cJSON *hours = cJSON_AddArrayToObject(root, "byHour");
    if (!filters || !parts[0] || !parts[1] || !parts[2] || !hours)
        goto out;
    add_filter(filters, "device", q->device);
    add_filter(filters, "country", q->country);
    add_filter(filters, "source", q->source);
    for (size_t r = 0; r < pe_db_result_rows(res); r++) {
        /* GROUPING bits: device 4, country 2, source 1; the one column grouped has bit 0 */
        long g = strtol(pe_db_result_get(res, r, 0), NULL, 10);
        int d = g == 3 ? 0 : g == 5 ? 1 : 2;
        cJSON *o = breakdown_row("value", pe_db_result_get(res, r, (size_t)d + 1), 0,
                                 strtod(pe_db_result_get(res, r, 4), NULL),
                                 strtod(pe_db_result_get(res, r, 5), NULL));
        if (!o)
            goto out;
        cJSON_AddItemToArray(parts[d], o);
    }
    pe_db_result_free(res);
    res = NULL;
    rc = mask ? pe_db_exec(conn, SQL_BREAKDOWN_HOURS_SEGMENT, 8, ph, &res)
              : pe_db_exec(conn, SQL_BREAKDOWN_HOURS, 4, p, &res);
    if (rc != 0)
        goto out;
    double n[24] = {0}, k[24] = {0};
    for (size_t r = 0; r < pe_db_result_rows(res); r++) {
        long h = strtol(pe_db_result_get(res, r, 0), NULL, 10);
        if (h < 0 || h > 23)
            continue;
        n[h] = strtod(pe_db_result_get(res, r, 1), NULL);
        k[h] = strtod(pe_db_result_get(res, r, 2), NULL);
    }
    rc = PE_ENOMEM;
    for (int h = 0; h < 24; h++) {
        cJSON *o = breakdown_row("hour", NULL, h, n[h], k[h]);
        if (!o)
            goto out;
        cJSON_AddItemToArray(hours, o);
    }
    *out = root;
    root = NULL;
    rc = 0;
out:
    pe_db_result_free(res);
    pe_db_release(db, conn);
    cJSON_Delete(root);
    return rc;
}
