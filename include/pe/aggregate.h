/*
 * pe/aggregate.h — the aggregation pipeline (8.3) and the reads behind the metrics API (8.4,
 * 8.5): an incremental job that rolls raw events up into per-session, per-day, per-week and
 * per-month tables (sql/migrations/0005_aggregates.sql), the parser of the metrics endpoints'
 * query parameters, and the overview / funnel / breakdown reads over those tables.
 *
 * Invariants:
 *  1. A run recomputes whole sessions and whole (store, day / week / month) buckets from their
 *     sources inside one REPEATABLE READ transaction, so a rerun changes nothing and the result
 *     does not depend on the order or batching in which events arrived: an incremental run
 *     leaves exactly the tables a full recompute would.
 *  2. One run at a time across every instance (a PostgreSQL advisory lock).
 *  3. No event is missed although events.received_at is stamped before the collector commits:
 *     every inserting transaction logs a lower bound of its rows' received_at
 *     (0009_event_commits.sql), and a run reads the events received since the least bound of the
 *     transactions its last snapshot did not see and keeps those that snapshot did not see.
 *  4. The reads touch aggregate tables only, never the raw events.
 *  5. The query parser is pure (no I/O, no globals) and thread-safe; every refusal names the
 *     parameter it refuses.
 */
#ifndef PE_AGGREGATE_H
#define PE_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pe/core.h"
#include "pe/db.h"
#include "pe/events.h"

/* How often `serve` runs the job. */
#define PE_AGGREGATE_INTERVAL_S 60

typedef struct {
    const char *store_id; /* NULL: every store */
    bool full;            /* recompute everything of the selected stores */
    bool wait;            /* wait for another run to finish (commands); else skip (scheduler) */
} pe_aggregate_options_t;

typedef struct {
    bool skipped;       /* another instance held the lock */
    size_t stores;      /* stores looked at */
    size_t full_stores; /* of which recomputed in full (asked, or never aggregated before) */
    size_t sessions;    /* sessions recomputed incrementally */
    size_t days, weeks, months; /* buckets rebuilt */
    double ms;
} pe_aggregate_report_t;

/* Runs the job once on a connection of db. Returns 0 (rep filled; rep->skipped when another
 * instance runs it and opt->wait is false), PE_ENOTFOUND when opt->store_id names no store, or a
 * PE_E… code with the reason in err. Thread-safe (takes its own connection). */
int pe_aggregate_run(pe_db_pool_t *db, const pe_aggregate_options_t *opt,
                     pe_aggregate_report_t *rep, char *err, size_t errlen);
/* The scheduler's form (pe_job_t.run): arg is the pe_db_pool_t; incremental, every store,
 * skips when another instance is running. */
int pe_aggregate_job(void *arg, char *err, size_t errlen);

/* ---- query parameters of the metrics endpoints (pure) --------------------------------------- */

typedef enum {
    PE_AGGREGATE_VIEW_OVERVIEW = 0, /* from, to */
    PE_AGGREGATE_VIEW_FUNNEL,       /* from, to, device, country, source */
    PE_AGGREGATE_VIEW_BREAKDOWN,    /* from, to, device, country, source (as the funnel) */
} pe_aggregate_view_t;

#define PE_AGGREGATE_MAX_DAYS     400 /* longest from..to range, both ends included */
#define PE_AGGREGATE_DEFAULT_DAYS 30  /* from defaults to to − 29 */
#define PE_AGGREGATE_SOURCE_MAX   256

typedef struct {
    int32_t from, to; /* days since 1970-01-01, store-local, both included */
    char device[16];  /* "" = every device */
    char country[8];  /* "" = every country; "DE" or "unknown" */
    char source[PE_AGGREGATE_SOURCE_MAX + 1]; /* "" = every source */
} pe_aggregate_query_t;

/* Parses the decoded query parameters (names[i] = values[i], n of them) of a view. today is the
 * store-local date (days since 1970-01-01) the defaults are relative to: to = today,
 * from = to − 29. Refuses unknown or repeated parameters, empty values, malformed or impossible
 * dates (YYYY-MM-DD only), from after to, ranges over PE_AGGREGATE_MAX_DAYS days, unknown
 * devices, countries that are not two upper-case letters or "unknown", and sources over 256
 * bytes or with control characters. Returns 0 or PE_EINVAL with *err (code invalid_request,
 * message "from: …": the parameter first). Pure and thread-safe. */
int pe_aggregate_query_parse(pe_aggregate_view_t view, const char *const *names,
                             const char *const *values, size_t n, int32_t today,
                             pe_aggregate_query_t *q, pe_refusal_t *err);
/* "cart" … "confirmation" → the step. Returns 0 or PE_EINVAL. Pure. */
int pe_aggregate_step_parse(const char *name, pe_funnel_step_t *step);
/* Parses exactly YYYY-MM-DD (a real calendar date, years 1970..9999) into days since
 * 1970-01-01. Returns 0 or PE_EINVAL. Pure. */
int pe_aggregate_date_parse(const char *s, int32_t *days);
/* Writes days since 1970-01-01 as YYYY-MM-DD (out ≥ 11 bytes). Pure. */
void pe_aggregate_date_format(int32_t days, char *out, size_t outlen);

/* ---- reads (aggregate tables only) ---------------------------------------------------------- */

/* A moment on the store's own clock. */
typedef struct {
    int32_t today;       /* the store-local date, days since 1970-01-01 */
    int32_t time_of_day; /* store-local seconds since midnight, 0..PE_AGGREGATE_DAY_OVER */
} pe_aggregate_clock_t;
#define PE_AGGREGATE_DAY_OVER 86400 /* time_of_day of a day that is over: nothing is cut */

/* The store-local date and time of day of now_us (the caller's clock: the request's, the
 * job's) in the store's time zone. Returns 0, PE_ENOTFOUND or a PE_E… code. Thread-safe. */
int pe_aggregate_clock(pe_db_pool_t *db, const char *store_id, int64_t now_us,
                       pe_aggregate_clock_t *clock);

/* Builds the answer of GET …/metrics/overview: revenue, orders, aov and conversionRate with
 * today / week / month / range, each {"value","previous","change"}; customers new and returning
 * the same way; the daily trend over the range; the top products of the range. A period that
 * ends today is compared like with like: both it and its previous period stop at the clock's
 * time of day on their last day ("comparedUntil"). *out belongs to the caller (cJSON_Delete).
 * Thread-safe. */
int pe_aggregate_overview(pe_db_pool_t *db, const char *store_id, const pe_aggregate_clock_t *clock,
                          const pe_aggregate_query_t *q, cJSON **out);
/* GET …/funnel: the five steps with sessions, conversion, dropOff, the trailing-28-day
 * expectation and the problem flag (see read.c for the test). Thread-safe. */
int pe_aggregate_funnel(pe_db_pool_t *db, const char *store_id, const pe_aggregate_query_t *q,
                        cJSON **out);
/* GET …/funnel/steps/{step}/breakdown: the step's conversion by device, country, source and
 * store-local hour of day, over the sessions the funnel with the same query counts (the
 * filters of q narrow every part: Σ sessions of each part = the funnel's sessions at the step
 * before). Reads agg_daily_segments, and agg_funnel_hourly or, filtered,
 * agg_funnel_hourly_segments. *out belongs to the caller (cJSON_Delete). Thread-safe. */
int pe_aggregate_breakdown(pe_db_pool_t *db, const char *store_id, pe_funnel_step_t step,
                           const pe_aggregate_query_t *q, cJSON **out);

/* The drop-off test of the funnel (pure, exposed for tests): the range dropped `dropped` of `n`
 * sessions; the trailing days dropped trail_dropped[i] of trail_n[i]. Sets *expected to the
 * pooled trailing drop-off (−1 when there is too little history) and returns whether the range's
 * drop-off is unusually high. range_days is the number of days in the range with sessions. */
bool pe_aggregate_dropoff_problem(double dropped, double n, const double *trail_dropped,
                                  const double *trail_n, size_t ntrail, size_t range_days,
                                  double *expected);

#endif /* PE_AGGREGATE_H */
