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

#include "pe/changeset.h"
#include "pe/core.h"
#include "pe/db.h"
#include "pe/guardrails.h"

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
    int explained_by; /* the rank (1-based) of the finding that explains this one — its cause
                         (analyze.c rules 7, 12, 13: it ranks right after it) — or 0 */
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

/* A finding's segment as a merchant says it: "Mobile visitors", "Mobile visitors from FR",
 * "Every visitor" (no segment). Pure. */
void pe_doctor_segment_phrase(const pe_doctor_finding_t *f, char *out, size_t len);

/* ---- playbooks (playbooks.c): what to do about a kind of finding ---------------------------- */

/* How a playbook's action costs the merchant money (README "Recommendations"). */
typedef enum {
    PE_DOCTOR_COST_NONE = 0, /* copy, layout, a feature the storefront has: nothing per order */
    PE_DOCTOR_COST_DISCOUNT, /* gives away `amount` % of the price of every order in its scope,
                                the orders that would have come anyway included */
    PE_DOCTOR_COST_SHIPPING, /* waives the shipping of every order in its scope (what shipping
                                costs: pe_doctor_economics_t.shipping_share of the order value) */
} pe_doctor_cost_t;

#define PE_DOCTOR_PLAYBOOK_KEY_MAX 41 /* [a-z0-9-]{1,40} + NUL */

/* A playbook: a kind of finding (kind × step × segment dimensions) mapped to an action. The
 * built-ins (pe_doctor_playbooks_builtin) and an extension's are the same struct, registered
 * through pe_doctor_recommender_config_t.playbooks (include/profit_engine.h).
 *
 * Templates (title, description, change) may use {who} (the segment: "mobile visitors"),
 * {step} ("shipping"), {category}, {amount} (the playbook's amount) and {currency}. */
typedef struct pe_doctor_playbook {
    const char *key;         /* [a-z0-9-]{1,40}, unique among the registered playbooks */
    const char *title;       /* template, ≤ 200 bytes rendered */
    const char *description; /* template: what the merchant's storefront will do */
    const char *rationale;   /* why it should help (learnMore) */
    const char *source;      /* the public source of the prior uplift range */
    unsigned kinds;          /* bits 1u << pe_doctor_kind_t it answers; 0 = every kind */
    unsigned steps;          /* bits 1u << step (1 cart … 5 confirmation) it acts on */
    unsigned dims;           /* bits 1u << pe_doctor_dim_t a finding's segment may fix */
    bool store_wide;         /* also answers a finding about the whole store */
    /* With values: the segment must fix `value_dim` to one of them ("mobile", "tablet"). */
    pe_doctor_dim_t value_dim;
    const char *const *values; /* NULL-terminated, or NULL: any value */
    const char *method;        /* implementation: "feature_flag" (the storefront switches a
                                  feature it has) | "config_change" (the flag carries a setting
                                  the storefront applies: a threshold, a discount, a method) */
    const char *action_type;   /* the ChangeSet's actionPlan.type */
    const char *change_type;   /* its ChangeDetail.type: price, discount, shipping, copy, … */
    const char *selector;      /* ChangeDetail.scope.selector, or NULL */
    const char *change;        /* ChangeDetail.description template */
    const char *before;  /* ChangeDetail.before: JSON text of a string, number or boolean ({amount}
                            allowed) */
    const char *after;   /* ChangeDetail.after as JSON text ({amount} allowed) */
    bool needs_category; /* scope.category = pe_doctor_economics_t.category; without one
                            the playbook is not proposed */
    int effort;          /* story points, 1..13 */
    const char *risk;    /* low | medium | high */
    double uplift_low;   /* the prior: the share of a finding's gap (its lost orders) the */
    double uplift_high;  /* change wins back, 0 < low ≤ high ≤ 1 */
    pe_doctor_cost_t cost;
    double amount; /* the discount in %, 0 otherwise */
} pe_doctor_playbook_t;

/* The built-in catalogue (a static table; *count its length). Thread-safe. */
const pe_doctor_playbook_t *pe_doctor_playbooks_builtin(size_t *count);
/* Checks one playbook (key syntax, templates present, enums of the ChangeSet contract, before and
 * after a JSON string, number or boolean, 0 < uplift_low ≤ uplift_high ≤ 1, effort 1..13, a
 * discount amount in (0, 100)). Returns 0 or PE_EINVAL with *err naming the field
 * ("guest-checkout.effort: …"). Pure. */
int pe_doctor_playbook_check(const pe_doctor_playbook_t *pb, pe_refusal_t *err);
/* True when pb answers f: its kind, its step, every dimension f's segment fixes is one pb
 * accepts (or f is store-wide and pb->store_wide), and the value constraint. Pure. */
bool pe_doctor_playbook_matches(const pe_doctor_playbook_t *pb, const pe_doctor_finding_t *f);

/* ---- recommendations (recommend.c: pure) ---------------------------------------------------- */

#define PE_DOCTOR_MAX_ACTIVE         5    /* active recommendations per store */
#define PE_DOCTOR_REJECT_MEMORY_DAYS 30   /* a rejected playbook × finding is not proposed again */
#define PE_DOCTOR_SHIPPING_SHARE     0.08 /* shipping cost per order ÷ order value, when unknown */
#define PE_DOCTOR_MIN_WINDOW_DAYS    7    /* proofPlan.measurementWindow: at least a week */
#define PE_DOCTOR_MAX_WINDOW_DAYS    56   /* a test that needs longer is said to need longer */

/* What a recommendation's numbers rest on besides the finding. */
typedef struct {
    double margin;           /* the store's gross margin of revenue, 0..1 */
    double shipping_share;   /* shipping cost ÷ order value, 0..1 (PE_DOCTOR_SHIPPING_SHARE) */
    const char *category;    /* the category a category playbook scopes, NULL: none known */
    double category_share;   /* its share of the store's revenue 0..1 */
    double window_days;      /* the run's window (the finding's counts cover it) */
    double store_sessions;   /* sessions in the window, the whole store */
    bool has_pre_period;     /* the store has history before the window: CUPED */
    const char *currency;    /* ISO 4217 */
    const cJSON *guardrails; /* the store's guardrails (pe_guardrails_get), or NULL */
} pe_doctor_economics_t;

/* A playbook's expected impact on a finding, per month. [0] low, [1] high end of the prior. */
typedef struct {
    double uplift[2];       /* the prior: the share of the gap won back */
    double step_uplift[2];  /* what that is as a relative uplift of the step's conversion */
    double orders[2];       /* more orders */
    double revenue[2];      /* more revenue (list price) */
    double cost[2];         /* what the action costs: discount given, shipping waived */
    double profit[2];       /* gross profit: revenue × margin − cost; may be negative */
    double expected_profit; /* likelihood × the middle of profit[] */
    double priority;        /* expected_profit ÷ effort: the rank's key */
    double baseline_rate;   /* the step's conversion in the segment today */
    double units_per_arm;   /* proofPlan.minimumSampleSize */
    int window_days;        /* proofPlan.measurementWindow, whole weeks, ≥ 7 */
    double days_needed;     /* at the segment's traffic, for both arms (may exceed the window) */
    bool profit_metric;     /* the primary metric is profit per visitor (the action costs) */
} pe_doctor_impact_t;

/* The expected impact of pb on f (README "Recommendations": the gap × the prior, net of the
 * action's cost; the sample size from the power calculator at 90 % power, α 0.05, for the
 * step's relative uplift at the middle of the prior). Returns 0, PE_ENOTFOUND when there is nothing
 * to recover (no gap, no orders, a category playbook without a category) or PE_EINVAL (a number out
 * of range). Pure. */
int pe_doctor_impact(const pe_doctor_playbook_t *pb, const pe_doctor_finding_t *f,
                     const pe_doctor_economics_t *eco, pe_doctor_impact_t *out);
/* True when the impact is worth proposing: a positive expected gross profit net of the action's
 * cost. A discount that loses money is never proposed, however much it lifts conversion. Pure. */
bool pe_doctor_impact_worth_proposing(const pe_doctor_impact_t *m);

/* The identity of a finding across runs: "segment_gap:shipping:device=mobile,country=FR" (a
 * finding's id changes with every run; this does not). Pure. */
void pe_doctor_finding_key(const pe_doctor_finding_t *f, char *out, size_t len);
/* Takes out of each finding the part that a finding ranked before it explains, so that one loss
 * is never recovered twice: finding i's lost orders, revenue and profit shrink by the lost orders
 * of every earlier finding at the same step whose segment lies inside i's (fixes every dimension
 * i fixes, with the same value — the whole store contains every segment), never below zero.
 * A store-wide benchmark gap at shipping that mobile visitors' gap ranked before it explains is
 * left with what mobile does not explain. f is ranked (the run's order). Pure. */
void pe_doctor_findings_residual(pe_doctor_finding_t *f, size_t n);
/* Reads a stored finding (the run's JSON, run.c's shape) back into *f. Returns 0 or PE_EINVAL.
 * Pure. */
int pe_doctor_finding_parse(const cJSON *doc, pe_doctor_finding_t *f);

/* Builds the recommendation (without id, status, rank, changesetId, violations: the store's to
 * fill) and the ChangeSet that carries it (a client document: it passes pe_changeset_validate in
 * PE_CHANGESET_CLIENT mode). finding is the stored finding (its id and evidence are used).
 * Returns 0 with *rec and *changeset (caller deletes both), or PE_ENOMEM / PE_EINVAL. Pure. */
int pe_doctor_recommendation_build(const pe_doctor_playbook_t *pb, const pe_doctor_finding_t *f,
                                   const cJSON *finding, const pe_doctor_economics_t *eco,
                                   const pe_doctor_impact_t *impact, cJSON **rec,
                                   cJSON **changeset);

/* ---- recommendations, stored (recommendations.c) -------------------------------------------- */

#define PE_DOCTOR_PER_FINDING   2  /* open or approved recommendations per finding (the best) */
#define PE_DOCTOR_MAX_OPEN      20 /* open (active, queued, blocked) recommendations per store */
#define PE_DOCTOR_MAX_PLAYBOOKS 64 /* built-ins and extensions together */

typedef struct {
    pe_db_pool_t *db;                   /* borrowed */
    pe_changeset_service_t *changesets; /* borrowed: creates, submits, approves, rejects */
    const pe_guardrail_check_t *const *extra_checks; /* the service's custom checks, NULL-
                                                        terminated, may be NULL (borrowed) */
    /* Extension playbooks, registered after the built-ins (NULL-terminated, may be NULL;
     * borrowed: they must outlive the recommender). A key may not repeat a built-in's. */
    const pe_doctor_playbook_t *const *playbooks;
} pe_doctor_recommender_config_t;

typedef struct pe_doctor_recommender pe_doctor_recommender_t;

/* Returns a recommender, or NULL with *err (an extension playbook that fails
 * pe_doctor_playbook_check or repeats a key, more than PE_DOCTOR_MAX_PLAYBOOKS) or on ENOMEM.
 * Thread-safe afterwards. */
pe_doctor_recommender_t *pe_doctor_recommender_new(const pe_doctor_recommender_config_t *cfg,
                                                   pe_refusal_t *err);
void pe_doctor_recommender_free(pe_doctor_recommender_t *r);

/* Generates store_id's recommendations from its latest diagnostic run now (README
 * "Recommendations": retire, propose, promote), and answers {"runId","generated","retired",
 * "note","recommendations":[the active and blocked ones]} in *out (caller deletes). Returns 0,
 * PE_ENOTFOUND (no such store) or a database / ChangeSet error. Serialised per store across
 * instances (an advisory lock). now_us is the caller's clock. Thread-safe. */
int pe_doctor_recommend(pe_doctor_recommender_t *r, const char *store_id, int64_t now_us,
                        cJSON **out);
/* The statuses of a recommendation, in the order of PE_DOCTOR_STATUS_NAMES. */
#define PE_DOCTOR_STATUSES 6
extern const char *const PE_DOCTOR_STATUS_NAMES[PE_DOCTOR_STATUSES]; /* "active", "queued",
                                    "blocked", "approved", "rejected", "retired" */
/* Parses a comma-separated list of statuses ("active,blocked"; each at most once) into *mask
 * (bit i: PE_DOCTOR_STATUS_NAMES[i]); NULL: active and blocked, the cards the merchant sees.
 * Returns 0 or PE_EINVAL with *err ("status: …"). Pure. */
int pe_doctor_status_parse(const char *list, unsigned *mask, pe_refusal_t *err);

/* A merchant's decision on a recommendation, from the request body. */
typedef struct {
    bool force, confirm; /* approve: override guardrail violations (needs confirm) */
    const char *reason;  /* reject: borrowed from the body, NULL when none or empty */
} pe_doctor_decision_t;
/* Reads an approve body ({} or {"force":bool,"confirm":bool}) or a reject body
 * ({"reason":"…"|null}, ≤ 4000 bytes without control characters) into *out; body may be NULL
 * (an empty body). Returns 0, or PE_EINVAL with *err naming the field (unknown_field,
 * invalid_type, too_long, invalid_format). Pure. */
int pe_doctor_decision_parse(const cJSON *body, bool approve, pe_doctor_decision_t *out,
                             pe_refusal_t *err);

/* {"recommendations":[…]} with the statuses in mask (pe_doctor_status_parse), open ones by
 * rank, then the decided ones newest first. Returns 0 or a database error. Thread-safe. */
int pe_doctor_recommendations_list(pe_doctor_recommender_t *r, const char *store_id, unsigned mask,
                                   int64_t now_us, cJSON **out);
/* One recommendation. Returns 0, PE_ENOTFOUND (none with that id in this store) or a database
 * error. Thread-safe. */
int pe_doctor_recommendation_get(pe_doctor_recommender_t *r, const char *store_id, const char *id,
                                 int64_t now_us, cJSON **out);
/* Approves an active or blocked recommendation: its ChangeSet goes to ACTIVE through the
 * lifecycle (guardrails, audit, flag live), the next queued one is promoted, and *out is
 * {"recommendation":…,"changeset":…}. force + confirm override guardrail violations. Returns 0,
 * PE_ENOTFOUND, PE_ECONFLICT (not open: res says why; guardrails block it: res->violations,
 * and the recommendation becomes blocked), PE_EINVAL, or an error of the lifecycle. */
int pe_doctor_recommendation_approve(pe_doctor_recommender_t *r, const char *store_id,
                                     const char *id, bool force, bool confirm,
                                     const pe_changeset_actor_info_t *actor, int64_t now_us,
                                     cJSON **out, pe_changeset_result_t *res);
/* Rejects an active, queued or blocked recommendation (reason may be NULL, else as
 * pe_doctor_decision_parse accepts it): its ChangeSet is ARCHIVED (rejected), the playbook is
 * not proposed again for that finding for PE_DOCTOR_REJECT_MEMORY_DAYS, the next queued one is
 * promoted; *out as approve's. Returns 0, PE_ENOTFOUND, PE_ECONFLICT (not open) or a lifecycle
 * error. */
int pe_doctor_recommendation_reject(pe_doctor_recommender_t *r, const char *store_id,
                                    const char *id, const char *reason,
                                    const pe_changeset_actor_info_t *actor, int64_t now_us,
                                    cJSON **out, pe_changeset_result_t *res);
/* The job "recommend": generates for every store whose latest diagnostic run is newer than its
 * recommendations, and refreshes (promotes into free slots) every store with queued ones; once
 * across instances (an advisory lock). Returns 0 with *ran stores generated, or the first
 * failure (the other stores still ran). Thread-safe. */
#define PE_DOCTOR_RECOMMEND_INTERVAL_S 3600
int pe_doctor_recommend_due(pe_doctor_recommender_t *r, int64_t now_us, size_t *ran, char *err,
                            size_t errlen);

#endif /* PE_DOCTOR_H */
