/*
 * run.c — a diagnostic run: read one store's funnel counts over a window from the aggregate
 * tables, hand them to the pure analysis (analyze.c), and store the run and its findings
 * (diagnostic_runs, findings: 0014_diagnostics.sql); and the reads of stored runs.
 *
 * Invariants:
 *  1. Only aggregate tables are read (agg_sessions, agg_orders, agg_daily, agg_session_products),
 *     the store's benchmarks (diagnostic_benchmarks) and the catalogue and store rows: never a
 *     raw events partition, so a run costs what the window's sessions cost, whatever the event
 *     volume.
 *  2. "Now" comes from the caller: the window's default end (yesterday, store-local) and the
 *     run's createdAt derive from now_us, never from a clock read here or in PostgreSQL.
 *  3. Every statement filters by store_id; a run or finding of another store is "not found".
 *  4. Storing is one transaction: the run of the same window (if any) and runs older than
 *     PE_DOCTOR_KEEP_DAYS go, the new run and all its findings come, or nothing changes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/catalog.h"
#include "pe/doctor.h"

#define ACQUIRE_TIMEOUT_MS 5000
#define COST_COVERAGE_MIN  0.5 /* share of revenue whose cost must be known to use the catalogue */
#define US_PER_DAY         (86400LL * 1000000LL)

/* The store's currency and its local date at now ($2, Unix µs). */
static const char SQL_STORE[] =
    "SELECT currency, ((to_timestamp($2::double precision / 1e6) AT TIME ZONE timezone)::date"
    "         - date '1970-01-01')"
    "  FROM stores WHERE id = $1::uuid";

/* The window's sessions, one row per device × country × source × hour band × weekday ×
 * visitor type × campaign, with their funnel reach, orders and order revenue. visitor_type and
 * campaign are agg_sessions' (0015_session_visitor_campaign.sql); campaign is '' for a session
 * without one, which read_cells keeps as "" so that it joins no campaign segment. */
static const char SQL_CELLS[] =
    "WITH rev AS (SELECT session_id, sum(value) AS revenue FROM agg_orders"
    "              WHERE store_id = $1::uuid AND day BETWEEN $2::date AND $3::date + 1"
    "              GROUP BY session_id)"
    "SELECT s.device, s.country, s.source, s.hour / 6, extract(isodow FROM s.day)::int,"
    "       s.visitor_type, s.campaign,"
    "       count(*), count(*) FILTER (WHERE s.reach >= 1), count(*) FILTER (WHERE s.reach >= 2),"
    "       count(*) FILTER (WHERE s.reach >= 3), count(*) FILTER (WHERE s.reach >= 4),"
    "       count(*) FILTER (WHERE s.reach >= 5), sum(s.orders), coalesce(sum(rev.revenue), 0)"
    "  FROM agg_sessions s LEFT JOIN rev USING (session_id)"
    " WHERE s.store_id = $1::uuid AND s.day BETWEEN $2::date AND $3::date"
    " GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7";

/* The whole store over the window before (reach only: it is the baseline of the steps). */
static const char SQL_PREVIOUS[] =
    "SELECT count(*), count(*) FILTER (WHERE reach >= 1), count(*) FILTER (WHERE reach >= 2),"
    "       count(*) FILTER (WHERE reach >= 3), count(*) FILTER (WHERE reach >= 4),"
    "       count(*) FILTER (WHERE reach >= 5), coalesce(sum(orders), 0)"
    "  FROM agg_sessions WHERE store_id = $1::uuid AND day BETWEEN $2::date AND $3::date";

/* The whole store per local day of the window (agg_daily: sessions that started that day). */
static const char SQL_DAYS[] =
    "SELECT day - date '1970-01-01', sessions, reach_cart, reach_checkout, reach_shipping,"
    "       reach_payment, reach_confirmation, orders, revenue"
    "  FROM agg_daily WHERE store_id = $1::uuid AND day BETWEEN $2::date AND $3::date"
    " ORDER BY day";

/* Cost of goods against revenue of the window's purchased lines whose cost the catalogue knows,
 * and the revenue of all purchased lines. */
static const char SQL_MARGIN[] =
    "SELECT coalesce(sum(sp.units * p.cost) FILTER (WHERE p.cost IS NOT NULL), 0),"
    "       coalesce(sum(sp.revenue) FILTER (WHERE p.cost IS NOT NULL), 0),"
    "       coalesce(sum(sp.revenue), 0)"
    "  FROM agg_session_products sp"
    "  LEFT JOIN products p ON p.store_id = sp.store_id AND p.sku = sp.product_id"
    " WHERE sp.store_id = $1::uuid AND sp.day BETWEEN $2::date AND $3::date AND sp.purchases > 0";

static const char *const WEEKDAYS[] = {"monday", "tuesday",  "wednesday", "thursday",
                                       "friday", "saturday", "sunday"};
static const char *const STEPS[] = {"", "cart", "checkout", "shipping", "payment", "confirmation"};

static void day_text(int32_t days, char out[PE_DB_TEXT_DATE_LEN])
{
    pe_db_text_date((int64_t)days * US_PER_DAY, out);
}

static double num(const pe_db_result_t *r, size_t row, size_t col)
{
    return strtod(pe_db_result_get(r, row, col), NULL);
}

/* ---- reading --------------------------------------------------------------------------------- */

static int read_cells(pe_db_conn_t *conn, const char *store_id, const char *from, const char *to,
                      pe_doctor_cell_t **cells, size_t *ncells)
{
    pe_db_result_t *r = NULL;
    const char *p[] = {store_id, from, to};
    int rc = pe_db_exec(conn, SQL_CELLS, 3, p, &r);
    if (rc != 0)
        return rc;
    size_t n = pe_db_result_rows(r);
    *cells = calloc(n ? n : 1, sizeof **cells);
    if (!*cells) {
        pe_db_result_free(r);
        return PE_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        pe_doctor_cell_t *c = &(*cells)[i];
        for (size_t d = 0; d < 3; d++)
            snprintf(c->value[d], sizeof c->value[d], "%s", pe_db_result_get(r, i, d));
        long band = strtol(pe_db_result_get(r, i, 3), NULL, 10);
        long wd = strtol(pe_db_result_get(r, i, 4), NULL, 10);
        snprintf(c->value[PE_DOCTOR_HOUR_BAND], sizeof c->value[0], "%s",
                 pe_doctor_hour_band((int)(band * 6)));
        snprintf(c->value[PE_DOCTOR_WEEKDAY], sizeof c->value[0], "%s",
                 wd >= 1 && wd <= 7 ? WEEKDAYS[wd - 1] : "unknown");
        snprintf(c->value[PE_DOCTOR_VISITOR], sizeof c->value[0], "%s", pe_db_result_get(r, i, 5));
        snprintf(c->value[PE_DOCTOR_CAMPAIGN], sizeof c->value[0], "%s", pe_db_result_get(r, i, 6));
        for (size_t s = 0; s <= PE_DOCTOR_STEPS; s++)
            c->counts.reach[s] = num(r, i, 7 + s);
        c->counts.orders = num(r, i, 13);
        c->counts.revenue = num(r, i, 14);
    }
    *ncells = n;
    pe_db_result_free(r);
    return 0;
}

static int read_previous(pe_db_conn_t *conn, const char *store_id, int32_t from, int32_t to,
                         pe_doctor_counts_t *out)
{
    char a[PE_DB_TEXT_DATE_LEN], b[PE_DB_TEXT_DATE_LEN];
    int32_t len = to - from + 1;
    day_text(from - len, a);
    day_text(from - 1, b);
    const char *p[] = {store_id, a, b};
    pe_db_result_t *r = NULL;
    int rc = pe_db_exec(conn, SQL_PREVIOUS, 3, p, &r);
    if (rc == 0 && pe_db_result_rows(r) == 1) {
        for (size_t s = 0; s <= PE_DOCTOR_STEPS; s++)
            out->reach[s] = num(r, 0, s);
        out->orders = num(r, 0, 6);
    }
    pe_db_result_free(r);
    return rc;
}

static int read_days(pe_db_conn_t *conn, const char *store_id, const char *from, const char *to,
                     pe_doctor_day_t **days, size_t *ndays)
{
    const char *p[] = {store_id, from, to};
    pe_db_result_t *r = NULL;
    int rc = pe_db_exec(conn, SQL_DAYS, 3, p, &r);
    if (rc != 0)
        return rc;
    size_t n = pe_db_result_rows(r);
    *days = calloc(n ? n : 1, sizeof **days);
    if (!*days) {
        pe_db_result_free(r);
        return PE_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        (*days)[i].day = (int32_t)strtol(pe_db_result_get(r, i, 0), NULL, 10);
        for (size_t s = 0; s <= PE_DOCTOR_STEPS; s++)
            (*days)[i].counts.reach[s] = num(r, i, 1 + s);
        (*days)[i].counts.orders = num(r, i, 7);
        (*days)[i].counts.revenue = num(r, i, 8);
    }
    *ndays = n;
    pe_db_result_free(r);
    return 0;
}

static int read_margin(pe_db_conn_t *conn, const char *store_id, const char *from, const char *to,
                       double *margin, bool *from_catalogue)
{
    const char *p[] = {store_id, from, to};
    pe_db_result_t *r = NULL;
    int rc = pe_db_exec(conn, SQL_MARGIN, 3, p, &r);
    *margin = PE_CATALOG_DEFAULT_MARGIN;
    *from_catalogue = false;
    if (rc == 0 && pe_db_result_rows(r) == 1) {
        double cost = num(r, 0, 0), known = num(r, 0, 1), all = num(r, 0, 2);
        if (all > 0 && known >= COST_COVERAGE_MIN * all && known > 0) {
            double m = 1 - cost / known;
            *margin = m < 0 ? 0 : m > 1 ? 1 : m;
            *from_catalogue = true;
        }
    }
    pe_db_result_free(r);
    return rc;
}

/* ---- the run as JSON ------------------------------------------------------------------------- */

static cJSON *number_or_null(double x)
{
    return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull();
}

/* One DataPoint of the ChangeSet contract (model.c). */
static bool add_point(cJSON *evidence, const char *metric, double value, const char *unit,
                      const char *period, double sample, const char *observed_at)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(evidence, o)) {
        cJSON_Delete(o);
        return false;
    }
    return cJSON_AddStringToObject(o, "metric", metric) &&
           cJSON_AddNumberToObject(o, "value", isfinite(value) ? value : 0) &&
           cJSON_AddStringToObject(o, "unit", unit) &&
           cJSON_AddStringToObject(o, "period", period) &&
           cJSON_AddStringToObject(o, "source", "aggregates") &&
           cJSON_AddNumberToObject(o, "sampleSize", sample) &&
           cJSON_AddStringToObject(o, "observedAt", observed_at);
}

static cJSON *finding_json(const pe_doctor_finding_t *f, size_t rank, const char *period,
                           const char *created_at)
{
    char id[PE_UUID_TEXT_LEN], metric[64], since[PE_DB_TEXT_DATE_LEN];
    pe_random_uuid(id);
    cJSON *o = cJSON_CreateObject();
    cJSON *seg = o ? cJSON_CreateObject() : NULL;
    cJSON *evidence = seg ? cJSON_CreateArray() : NULL;
    bool ok = evidence && cJSON_AddStringToObject(o, "id", id) &&
              cJSON_AddNumberToObject(o, "rank", (double)rank) &&
              cJSON_AddStringToObject(o, "kind", pe_doctor_kind_name(f->kind)) &&
              cJSON_AddStringToObject(o, "step", STEPS[f->step]) &&
              cJSON_AddItemToObject(o, "segment", seg);
    if (!ok) {
        cJSON_Delete(o);
        cJSON_Delete(seg);
        cJSON_Delete(evidence);
        return NULL;
    }
    for (size_t d = 0; d < PE_DOCTOR_DIMS; d++)
        if (f->has[d])
            ok = ok &&
                 cJSON_AddStringToObject(seg, pe_doctor_dim_name((pe_doctor_dim_t)d), f->value[d]);
    if (f->kind == PE_DOCTOR_CHANGE_POINT)
        day_text(f->since, since);
    ok = ok && cJSON_AddItemToObject(o, "rate", number_or_null(f->rate)) &&
         cJSON_AddItemToObject(o, "referenceRate", number_or_null(f->reference_rate)) &&
         cJSON_AddNumberToObject(o, "sessions", f->sessions) &&
         cJSON_AddItemToObject(o, "pValue", number_or_null(f->p_value)) &&
         cJSON_AddItemToObject(o, "qValue", number_or_null(f->q_value)) &&
         cJSON_AddNumberToObject(o, "likelihood", f->likelihood) &&
         (f->explained_by ? cJSON_AddNumberToObject(o, "explainedBy", f->explained_by) != NULL
                          : cJSON_AddNullToObject(o, "explainedBy") != NULL) &&
         (f->kind == PE_DOCTOR_CHANGE_POINT ? cJSON_AddStringToObject(o, "since", since) != NULL
                                            : cJSON_AddNullToObject(o, "since") != NULL) &&
         cJSON_AddNumberToObject(o, "lostOrdersPerMonth", round(f->lost_orders * 10) / 10) &&
         cJSON_AddNumberToObject(o, "lostRevenuePerMonth", round(f->lost_revenue * 100) / 100) &&
         cJSON_AddNumberToObject(o, "lostProfitPerMonth", round(f->lost_profit * 100) / 100) &&
         cJSON_AddStringToObject(o, "title", f->title) &&
         cJSON_AddStringToObject(o, "explanation", f->explanation) &&
         cJSON_AddItemToObject(o, "evidence", evidence);
    snprintf(metric, sizeof metric, "%s_conversion", STEPS[f->step]);
    ok = ok && add_point(evidence, metric, f->rate, "ratio", period, f->sessions, created_at);
    if (ok && f->kind != PE_DOCTOR_BENCHMARK_GAP && f->kind != PE_DOCTOR_CHANGE_POINT) {
        snprintf(metric, sizeof metric, "%s_conversion_reference", STEPS[f->step]);
        ok = add_point(evidence, metric, f->reference_rate, "ratio", period, f->reference_sessions,
                       created_at);
    }
    if (ok && f->kind == PE_DOCTOR_BENCHMARK_GAP) {
        snprintf(metric, sizeof metric, "%s_conversion_benchmark", STEPS[f->step]);
        ok = add_point(evidence, metric, f->reference_rate, "ratio", period, 0, created_at);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *run_json(const char *run_id, const char *store_id, int32_t from, int32_t to,
                       const char *created_at, const pe_doctor_input_t *in,
                       const pe_doctor_result_t *res)
{
    char a[PE_DB_TEXT_DATE_LEN], b[PE_DB_TEXT_DATE_LEN], period[16];
    day_text(from, a);
    day_text(to, b);
    snprintf(period, sizeof period, "P%dD", (int)(to - from + 1));
    cJSON *o = cJSON_CreateObject();
    cJSON *margin = o ? cJSON_AddObjectToObject(o, "margin") : NULL;
    cJSON *list = margin ? cJSON_AddArrayToObject(o, "findings") : NULL;
    bool ok = list && cJSON_AddStringToObject(o, "runId", run_id) &&
              cJSON_AddStringToObject(o, "storeId", store_id) &&
              cJSON_AddStringToObject(o, "from", a) && cJSON_AddStringToObject(o, "to", b) &&
              cJSON_AddStringToObject(o, "createdAt", created_at) &&
              cJSON_AddNumberToObject(o, "sessions", res->sessions) &&
              cJSON_AddNumberToObject(o, "tests", (double)res->tests) &&
              cJSON_AddStringToObject(o, "currency", in->currency) &&
              (res->note[0] ? cJSON_AddStringToObject(o, "note", res->note) != NULL
                            : cJSON_AddNullToObject(o, "note") != NULL) &&
              cJSON_AddNumberToObject(margin, "value", round(in->margin * 10000) / 10000) &&
              cJSON_AddStringToObject(margin, "source",
                                      in->margin_from_catalogue ? "catalogue" : "default");
    for (size_t i = 0; ok && i < res->count; i++) {
        cJSON *f = finding_json(&res->findings[i], i + 1, period, created_at);
        ok = f && cJSON_AddItemToArray(list, f);
        if (!ok)
            cJSON_Delete(f);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- storing --------------------------------------------------------------------------------- */

typedef struct {
    const char *store_id;
    const cJSON *run;
} store_ctx_t;

static int store_run(pe_db_conn_t *conn, void *arg)
{
    store_ctx_t *c = arg;
    const char *run_id = cJSON_GetObjectItemCaseSensitive(c->run, "runId")->valuestring;
    const char *from = cJSON_GetObjectItemCaseSensitive(c->run, "from")->valuestring;
    const char *to = cJSON_GetObjectItemCaseSensitive(c->run, "to")->valuestring;
    const char *created = cJSON_GetObjectItemCaseSensitive(c->run, "createdAt")->valuestring;
    char keep[32];
    snprintf(keep, sizeof keep, "%d days", PE_DOCTOR_KEEP_DAYS);
    char *doc = pe_json_print(c->run);
    if (!doc)
        return PE_ENOMEM;
    const char *del[] = {c->store_id, from, to, created, keep};
    int rc = pe_db_exec(conn,
                        "DELETE FROM diagnostic_runs WHERE store_id = $1::uuid AND"
                        " ((window_from = $2::date AND window_to = $3::date)"
                        "  OR created_at < $4::timestamptz - $5::interval)",
                        5, del, NULL);
    const char *ins[] = {c->store_id, run_id, from, to, created, doc};
    if (rc == 0)
        rc = pe_db_exec(conn,
                        "INSERT INTO diagnostic_runs (store_id, id, window_from, window_to,"
                        " created_at, doc) VALUES ($1::uuid, $2::uuid, $3::date, $4::date,"
                        " $5::timestamptz, $6::jsonb)",
                        6, ins, NULL);
    free(doc);
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(c->run, "findings"))
    {
        if (rc != 0)
            break;
        char rank[16], likelihood[32], lost[32];
        snprintf(rank, sizeof rank, "%.0f",
                 cJSON_GetObjectItemCaseSensitive(f, "rank")->valuedouble);
        snprintf(likelihood, sizeof likelihood, "%.17g",
                 cJSON_GetObjectItemCaseSensitive(f, "likelihood")->valuedouble);
        snprintf(lost, sizeof lost, "%.17g",
                 cJSON_GetObjectItemCaseSensitive(f, "lostProfitPerMonth")->valuedouble);
        char *fdoc = pe_json_print(f);
        char *seg = pe_json_print(cJSON_GetObjectItemCaseSensitive(f, "segment"));
        const char *p[] = {c->store_id,
                           run_id,
                           cJSON_GetObjectItemCaseSensitive(f, "id")->valuestring,
                           rank,
                           cJSON_GetObjectItemCaseSensitive(f, "kind")->valuestring,
                           cJSON_GetObjectItemCaseSensitive(f, "step")->valuestring,
                           seg,
                           likelihood,
                           lost,
                           fdoc};
        rc = fdoc && seg
                 ? pe_db_exec(conn,
                              "INSERT INTO findings (store_id, run_id, id, rank, kind, step,"
                              " segment, likelihood, lost_profit, doc) VALUES ($1::uuid,"
                              " $2::uuid, $3::uuid, $4::int, $5, $6, $7::jsonb,"
                              " $8::float8, $9::float8, $10::jsonb)",
                              10, p, NULL)
                 : PE_ENOMEM;
        free(fdoc);
        free(seg);
    }
    return rc;
}

/* ---- the run --------------------------------------------------------------------------------- */

int pe_doctor_run(pe_db_pool_t *db, const char *store_id, const pe_doctor_request_t *rq,
                  cJSON **out, pe_refusal_t *err)
{
    *out = NULL;
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *r = NULL;
    pe_doctor_cell_t *cells = NULL;
    pe_doctor_day_t *days = NULL;
    pe_doctor_result_t res = {0};
    cJSON *run = NULL;
    char currency[8] = "", now_text[32];
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    snprintf(now_text, sizeof now_text, "%lld", (long long)rq->now_us);
    const char *sp[] = {store_id, now_text};
    rc = pe_db_exec(conn, SQL_STORE, 2, sp, &r);
    if (rc == PE_EINVAL || (rc == 0 && pe_db_result_rows(r) != 1)) {
        rc = pe_refuse(err, PE_ENOTFOUND, "not_found", "store: no such store");
        goto out;
    }
    if (rc != 0)
        goto out;
    snprintf(currency, sizeof currency, "%s", pe_db_result_get(r, 0, 0));
    int32_t today = (int32_t)strtol(pe_db_result_get(r, 0, 1), NULL, 10);
    pe_db_result_free(r);
    r = NULL;

    int32_t from = today - PE_DOCTOR_WINDOW_DAYS, to = today - 1;
    if (rq->has_window) {
        from = rq->from;
        to = rq->to;
    }
    if (from > to) {
        rc = pe_refuse(err, PE_EINVAL, "invalid_request", "from: must not be after to");
        goto out;
    }
    if (to - from + 1 > PE_DOCTOR_MAX_DAYS) {
        rc = pe_refuse(err, PE_EINVAL, "invalid_request",
                       "from: the window from..to must not exceed %d days", PE_DOCTOR_MAX_DAYS);
        goto out;
    }
    if (to > today) {
        rc = pe_refuse(err, PE_EINVAL, "invalid_request",
                       "to: must not be after today in the store's time zone");
        goto out;
    }
    char a[PE_DB_TEXT_DATE_LEN], b[PE_DB_TEXT_DATE_LEN];
    day_text(from, a);
    day_text(to, b);

    pe_doctor_input_t in = {.from = from, .to = to, .currency = currency};
    size_t ncells = 0;
    rc = read_cells(conn, store_id, a, b, &cells, &ncells);
    size_t ndays = 0;
    if (rc == 0)
        rc = pe_doctor_benchmarks_read(conn, store_id, in.benchmark_dropoff, in.benchmark_is_store);
    if (rc == 0)
        rc = read_days(conn, store_id, a, b, &days, &ndays);
    if (rc == 0)
        rc = read_previous(conn, store_id, from, to, &in.previous);
    if (rc == 0)
        rc = read_margin(conn, store_id, a, b, &in.margin, &in.margin_from_catalogue);
    pe_db_release(db, conn);
    conn = NULL;
    if (rc != 0)
        goto out;
    in.cells = cells;
    in.ncells = ncells;
    in.days = days;
    in.ndays = ndays;
    rc = pe_doctor_analyze(&in, &res, err);
    if (rc != 0)
        goto out;

    char run_id[PE_UUID_TEXT_LEN], created[32];
    pe_random_uuid(run_id);
    pe_time_format_rfc3339(rq->now_us, created, sizeof created);
    rc = PE_ENOMEM;
    run = run_json(run_id, store_id, from, to, created, &in, &res);
    if (!run)
        goto out;
    store_ctx_t ctx = {.store_id = store_id, .run = run};
    rc = pe_db_tx(db, ACQUIRE_TIMEOUT_MS, store_run, &ctx);
    if (rc != 0)
        goto out;
    *out = run;
    run = NULL;
out:
    cJSON_Delete(run);
    pe_doctor_result_free(&res);
    free(cells);
    free(days);
    pe_db_result_free(r);
    pe_db_release(db, conn);
    return rc;
}

/* ---- reads ----------------------------------------------------------------------------------- */

static int read_one(pe_db_pool_t *db, const char *sql, int n, const char *const *p, cJSON **out)
{
    *out = NULL;
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *r = NULL;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc == 0)
        rc = pe_db_exec(conn, sql, n, p, &r);
    if (rc == PE_EINVAL || (rc == 0 && pe_db_result_rows(r) == 0))
        rc = PE_ENOTFOUND; /* a malformed id names nothing */
    if (rc == 0)
        rc = pe_db_result_json(r, 0, 0, out);
    pe_db_result_free(r);
    pe_db_release(db, conn);
    return rc;
}

int pe_doctor_latest(pe_db_pool_t *db, const char *store_id, cJSON **out)
{
    const char *p[] = {store_id};
    return read_one(db,
                    "SELECT doc FROM diagnostic_runs WHERE store_id = $1::uuid"
                    " ORDER BY created_at DESC, id DESC LIMIT 1",
                    1, p, out);
}

int pe_doctor_run_get(pe_db_pool_t *db, const char *store_id, const char *run_id, cJSON **out)
{
    const char *p[] = {store_id, run_id};
    return read_one(db,
                    "SELECT doc FROM diagnostic_runs WHERE store_id = $1::uuid AND id = $2::uuid",
                    2, p, out);
}
