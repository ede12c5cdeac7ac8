/*
 * pe/doctor.h — the funnel doctor (8.6): where, for whom and since when buyers drop off.
 *
 * The analysis (analyze.c) is a pure function of the funnel counts of one store over a window —
 * cells of sessions grouped by their segment, the previous window's, the benchmarks and the
 * store's economics — to ranked findings. Reading the counts from the aggregate tables and
 * storing runs is run.c's (the only part that touches PostgreSQL); "now" is always passed in.
 *
 * A step's conversion is the share of the sessions that reached the step before it that reached
 * it (the funnel page's definition): cart = cart / sessions, checkout = checkout / cart, …,
 * confirmation = confirmation / payment. Its drop-off is 1 − conversion.
 *
 * Invariants:
 *  1. pe_doctor_analyze reads only its input: no clock, no I/O, no allocation besides its own
 *     scratch (freed before it returns) and *out; the same input — its cells in any order —
 *     gives byte-identical findings in the same order. Thread-safe.
 *  2. Every finding survives Benjamini–Hochberg control of the false discovery rate at
 *     PE_DOCTOR_FDR across every test of its kind in the run (each kind is one family: every
 *     segment_gap of every step and segment, one-way and two-way, together); qValue is its
 *     BH-adjusted p-value. A two-way segment (has[] true on two dimensions) is reported only
 *     when neither of its one-way parents explains it (analyze.c rule 12). The numbered rules
 *     are in analyze.c's header.
 *  3. A store with too little traffic gets no finding, never a made-up one (PE_DOCTOR_MIN_*).
 *  4. Lost orders, revenue and profit are never negative and are per 30 days.
 */
#ifndef PE_DOCTOR_H
#define PE_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pe/core.h"
#include "pe/db.h"

#define PE_DOCTOR_STEPS       5    /* cart, checkout, shipping, payment, confirmation */
#define PE_DOCTOR_FDR         0.05 /* findings are reported at q ≤ this */
#define PE_DOCTOR_WINDOW_DAYS 28   /* the default window: the last 28 complete local days */
#define PE_DOCTOR_MAX_DAYS    400
/* A segment is tested at a step only with this many sessions at the step before, in it and in
 * the rest; a window with fewer sessions gets no finding at all. */
#define PE_DOCTOR_MIN_SESSIONS 30
#define PE_DOCTOR_MAX_FINDINGS 50
#define PE_DOCTOR_VALUE_MAX    64  /* bytes of a segment value */
#define PE_DOCTOR_TEXT_MAX     512 /* bytes of a title or an explanation */

/* The dimensions a session is segmented by. */
typedef enum {
    PE_DOCTOR_DEVICE = 0, /* desktop | mobile | tablet | other | unknown */
    PE_DOCTOR_COUNTRY,    /* ISO 3166-1 alpha-2 or unknown */
    PE_DOCTOR_SOURCE,     /* the session's traffic source (agg_sessions.source) */
    PE_DOCTOR_HOUR_BAND, /* night 0–5, morning 6–11, afternoon 12–17, evening 18–23 (local) */
    PE_DOCTOR_WEEKDAY,   /* monday … sunday (local) */
    PE_DOCTOR_VISITOR,   /* new | returning: whether the visitor had a session before */
    PE_DOCTOR_CAMPAIGN, /* the session's utm_campaign (lower case); "" without one */
    PE_DOCTOR_DIMS
} pe_doctor_dim_t;

/* The JSON name of a dimension ("device", "country", "source", "hourBand", "weekday",
 * "visitor", "campaign"); NULL
 * out of range. Static strings. */
const char *pe_doctor_dim_name(pe_doctor_dim_t d);
/* The hour band of a local hour 0..23 ("night", "morning", "afternoon", "evening"); NULL for
 * another hour. Static strings. */
const char *pe_doctor_hour_band(int hour);

/* Funnel counts of a group of sessions. reach[0] is the sessions, reach[s] those that reached
 * step s (1 cart … 5 confirmation); orders and revenue are the group's orders. */
typedef struct {
    double reach[PE_DOCTOR_STEPS + 1];
    double orders;
    double revenue;
} pe_doctor_counts_t;

/* The sessions of one combination of every dimension's value. A value is a NUL-terminated
 * string; "" means the dimension is not known for these sessions: they then belong to no
 * segment of that dimension (but still count in every "rest of the store"). */
typedef struct {
    char value[PE_DOCTOR_DIMS][PE_DOCTOR_VALUE_MAX];
    pe_doctor_counts_t counts;
} pe_doctor_cell_t;

/* The whole store's funnel counts on one store-local day. */
typedef struct {
    int32_t day; /* days since 1970-01-01 */
    pe_doctor_counts_t counts;
} pe_doctor_day_t;

/* What a run analyses. Cells are borrowed. */
typedef struct {
    int32_t from, to;              /* the window, store-local days since 1970-01-01, both
                                      included (to − from + 1 days) */
    const pe_doctor_cell_t *cells; /* the window's sessions, one cell per combination */
    size_t ncells;
    pe_doctor_counts_t previous; /* the whole store over the window before (same length);
                                    reach[0] == 0 when there is no history */
    const pe_doctor_day_t *days; /* the whole store per local day of the window, in strictly
                                    increasing day order inside from..to (a day without
                                    sessions may be missing); change points (analyze.c rule 11) */
    size_t ndays;
    double benchmark_dropoff[PE_DOCTOR_STEPS + 1]; /* [s]: the industry drop-off of step s,
                                                      0..1 (0 or 1: no usable benchmark, the
                                                      step is not tested); [0] unused */
    bool benchmark_is_store[PE_DOCTOR_STEPS + 1];  /* [s]: the store set it, not the industry */
    double margin;                                 /* gross margin of revenue, 0..1 */
    bool margin_from_catalogue; /* false: margin is the store default (said so) */
    const char *currency;       /* ISO 4217 (three letters), for the sentences; NULL:
                                   amounts are written without a currency */
} pe_doctor_input_t;

typedef enum {
    PE_DOCTOR_BENCHMARK_GAP = 0,
    PE_DOCTOR_BASELINE_SHIFT,
    PE_DOCTOR_SEGMENT_GAP,
    PE_DOCTOR_CHANGE_POINT,
} pe_doctor_kind_t;

/* "benchmark_gap", "baseline_shift", "segment_gap", "change_point"; NULL out of range. */
const char *pe_doctor_kind_name(pe_doctor_kind_t k);

typedef struct {
    pe_doctor_kind_t kind;
    int step;                 /* 1 cart … 5 confirmation */
    bool has[PE_DOCTOR_DIMS]; /* the segment: the dimensions it fixes (none: whole store) */
    char value[PE_DOCTOR_DIMS][PE_DOCTOR_VALUE_MAX];
    double rate;               /* the step's conversion in the segment (window) */
    double reference_rate;     /* the rest of the store / previous window / benchmark */
    double sessions;           /* sessions that reached the step before, in the segment */
    double reference_sessions; /* the same for the reference (0 for a benchmark) */
    double p_value, q_value;
    double likelihood; /* 0..1, see README "Diagnostics" */
    int32_t since;     /* change points: the first local day of the new rate;
                          0 (meaningless) for the other kinds */
    double lost_orders, lost_revenue, lost_profit; /* per 30 days, ≥ 0 */
    double score;                                  /* likelihood × lost profit: the rank's key */
    char title[PE_DOCTOR_TEXT_MAX];
    char explanation[PE_DOCTOR_TEXT_MAX];
} pe_doctor_finding_t;

typedef struct {
    pe_doctor_finding_t *findings; /* ranked, first = most likely × most costly (score desc,
                                      then q asc, kind, step, dimension, value); owned; NULL
                                      when count is 0 */
    size_t count;
    size_t tests;                  /* hypotheses tested (the BH family) */
    double sessions;               /* in the window */
    char note[PE_DOCTOR_TEXT_MAX]; /* why there is nothing to say ("too little traffic: …",
                                      "no drop-off stands out: …"), or "" */
} pe_doctor_result_t;

/* Analyses in. Returns 0 and *out (free with pe_doctor_result_free), PE_EINVAL with *err (a
 * window that is empty or longer than PE_DOCTOR_MAX_DAYS, a rate out of 0..1, a count that is
 * negative, not finite or above 2^53, a step reached more often than the one before it, a value
 * not NUL-terminated, a currency not of three letters, a day outside the window or out of order;
 * the message starts with the field: "to:", "margin:", "benchmarkDropoff.shipping:",
 * "cells[3].reach[2]:", "previous.orders:", "cells[0].source:", "currency:", "days[4].day:",
 * "days[4].reach[1]:"), PE_ENOMEM or PE_EINTERNAL. On failure *out is empty. Pure
 * and thread-safe (invariant 1). */
int pe_doctor_analyze(const pe_doctor_input_t *in, pe_doctor_result_t *out, pe_refusal_t *err);
/* Frees r's findings (accepts NULL; r itself is the caller's). */
void pe_doctor_result_free(pe_doctor_result_t *r);

/* The industry benchmark of each step's drop-off ([0] unused) that a store starts with, and
 * where the numbers come from (README "Diagnostics"). */
extern const double pe_doctor_benchmark_dropoff[PE_DOCTOR_STEPS + 1];
extern const char pe_doctor_benchmark_source[];

/* ---- runs (run.c: reads the aggregate tables, stores runs) ---------------------------------- */

#define PE_DOCTOR_KEEP_DAYS 400 /* stored runs are kept this long */

typedef struct {
    int64_t now_us;   /* the caller's now: the default window ends yesterday, store-local */
    bool has_window;  /* false: the last PE_DOCTOR_WINDOW_DAYS complete local days */
    int32_t from, to; /* with has_window: local days since 1970-01-01 */
} pe_doctor_request_t;

/* Runs the doctor for store_id and stores the run (replacing one of the same window). Returns 0
 * and *out, the run as the API answers it (caller deletes); PE_ENOTFOUND (no such store) or
 * PE_EINVAL (from after to, a window over PE_DOCTOR_MAX_DAYS or ending after today) with *err;
 * or a database error. Reads no raw events. Thread-safe. */
int pe_doctor_run(pe_db_pool_t *db, const char *store_id, const pe_doctor_request_t *rq,
                  cJSON **out, pe_refusal_t *err);
/* The store's latest run (*out, caller deletes). Returns 0, PE_ENOTFOUND (none yet) or a
 * database error. Thread-safe. */
int pe_doctor_latest(pe_db_pool_t *db, const char *store_id, cJSON **out);
/* One run of the store. Returns 0, PE_ENOTFOUND (none with that id in this store) or a database
 * error. Thread-safe. */
int pe_doctor_run_get(pe_db_pool_t *db, const char *store_id, const char *run_id, cJSON **out);

/* ---- a store's benchmarks (benchmarks.c) ---------------------------------------------------- */

/* The drop-off each step is compared with on conn: the store's own (own[s] true) or the
 * industry's (pe_doctor_benchmark_dropoff). Returns 0 or a database error. */
int pe_doctor_benchmarks_read(pe_db_conn_t *conn, const char *store_id,
                              double dropoff[PE_DOCTOR_STEPS + 1], bool own[PE_DOCTOR_STEPS + 1]);
/* {"steps":{"cart":{"dropOff":…,"source":"industry"|"store"},…},"industrySource":"…"} (*out,
 * caller deletes). Returns 0 or a database error. Thread-safe. */
int pe_doctor_benchmarks_get(pe_db_pool_t *db, const char *store_id, cJSON **out);
/* Sets the store's drop-off of the steps body names ({"shipping":0.3}; null: back to the
 * industry's), all or nothing, and answers as pe_doctor_benchmarks_get. Returns 0, PE_EINVAL with
 * *err naming the step (unknown step, not a number in (0, 1), given twice) or a database error.
 * Thread-safe. */
int pe_doctor_benchmarks_put(pe_db_pool_t *db, const char *store_id, const cJSON *body,
                             int64_t now_us, cJSON **out, pe_refusal_t *err);

/* The daily job (job.c): runs the doctor over the default window for every store with traffic
 * in it and no run of it yet, once across instances (an advisory lock: a second caller returns 0
 * at once with *ran 0). now_us is the caller's clock. Returns 0 with *ran stores diagnosed, or
 * the first failure (the other stores still ran; err says how many failed). Thread-safe. */
#define PE_DOCTOR_JOB_INTERVAL_S 3600 /* serve checks hourly; a store is due once a local day */
int pe_doctor_run_due(pe_db_pool_t *db, int64_t now_us, size_t *ran, char *err, size_t errlen);

#endif /* PE_DOCTOR_H */
