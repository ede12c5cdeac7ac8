/*
 * pe/experiments.h — the decision rule of a running A/B experiment (8.11, 8.12): one look at a
 * ChangeSet's experiment — the sufficient statistics of its primary metric and of profit per
 * visitor in each arm, the runtime so far — and its plan give what to do now (keep running,
 * roll back harm, prove a win, extend once, freeze on a sample-ratio mismatch), the numbers
 * behind it and a sentence the merchant reads (decide.c, pure). Below it: the results of an
 * experiment from the rollups (results.c), kept incrementally per unit (units.c), and the
 * `measure` job that carries decisions out through the lifecycle and keeps every end in
 * experiment_results (measure.c).
 *
 * The rules, in order (the first that applies decides; src/experiments/decide.c implements
 * each in the function named):
 *
 *   runtime 0 ─────────────── window_days ─────────────── max_window_days (one extension)
 *   every look:   1. FREEZE_SRM                                          srm_check
 *                 2. ROLLBACK (a trigger or the profit guardrail fires)  monitor
 *   before the window or the minimum sample: KEEP_RUNNING                gate
 *   the first look with runtime ≥ window and the minimum sample ("first final look"):
 *                 PROVE | ROLLBACK_LOSER | EXTEND | ROLLBACK_INCONCLUSIVE  final_look
 *   extended: KEEP_RUNNING until max_window_days, then the extension's final look:
 *                 PROVE | ROLLBACK_LOSER | ROLLBACK_INCONCLUSIVE           final_look
 *   the horizon (max_window_days, else window_days) reached short of the minimum sample:
 *                 the final look on what there is (its reason says so)    gate, final_look
 *
 *  1. SRM: pe_stats_srm of the assigned units (profit[k].n) against plan->split; a mismatch
 *     (p < PE_STATS_SRM_THRESHOLD, 0.001, checked at every look) freezes every automatic
 *     decision, a rollback included: the arms are not comparable, so their difference is no
 *     evidence of harm either. The caller alerts the merchant; a later look without a mismatch
 *     decides normally.
 *  2. Harm, at every look from the first: each trigger in plan order (thresholds, operators and
 *     windows below), then the profit
 *     guardrail (profit per visitor guards every experiment, whatever the primary; threshold
 *     plan->guardrail_threshold, −5 % by default). One fires when its metric has at least
 *     max(min_units, PE_EXPERIMENTS_MIN_MONITOR_UNITS = 100) units in both arms AND the
 *     ALWAYS-VALID one-sided test of "treatment worse" (pe_stats_sequential, sides "less")
 *     rejects — its upper bound is below 0 — AND the relative estimate is at or below the
 *     threshold. Always-valid because the monitor looks every few minutes: Ville's inequality
 *     bounds the chance that a metric without a true effect EVER rejects by the test's level,
 *     however often it looks. The level: alpha in all, Bonferroni-split over the metrics the
 *     rule watches (profit always, the primary when a trigger names it; triggers on one metric
 *     share its test): alpha/2 each with the default plan. So a change without effect is
 *     rolled back automatically with probability at most alpha, however many triggers and
 *     looks. (Each metric at the full alpha would bound it only by 2·alpha; simulated A/A
 *     experiments were then rolled back automatically in 7.2 % of 400 runs with the
 *     delta-method relative test, 3.0 % of 1,000 with the absolute one.)
 *     The floor of 100 units: the sequence is asymptotic (a CLT), and below it a handful of
 *     orders decides (without it, A/A runs fired at 46 and 72 units per arm).
 *  3. The proof waits until runtime ≥ window_days AND the primary has min_units units in both
 *     arms — or, short of the sample, until the horizon (max_window_days, else window_days):
 *     an experiment always ends, and a fixed-horizon test on fewer units than planned is as
 *     valid (its false-positive rate is the same), only less likely to find a true effect;
 *     the reason names the shortfall. At that final look the primary's FIXED-HORIZON Welch test
 * (two-sided) at level alpha_f decides, by pe_stats_decide's frequentist rule (significant when p <
 * alpha_f; the direction is the estimate's sign). pe_stats_decide is not called: it re-checks SRM
 *     on the metric's own n, which a change may legitimately move (more units reaching a
 *     step); SRM is rule 1's, on assigned units. Profit per visitor is "significantly worse"
 *     when its one-sided fixed-horizon test of "worse" at alpha rejects (stricter than any
 *     two-sided test at alpha_f, so it blocks more proofs, never fewer).
 *       PROVE            primary significantly better AND profit not significantly worse;
 *       ROLLBACK_LOSER   primary significantly better but profit significantly worse (a win
 *                        paid for with profit: evidence is the profit's), or primary
 *                        significantly worse;
 *       EXTEND           neither, the plan has max_window_days, this is the first final look
 *                        and runtime < max_window_days: the caller records it and passes
 *                        extended = true from then on;
 *       ROLLBACK_INCONCLUSIVE  otherwise. A loss of profit alone is rule 2's to catch.
 *     Why fixed-horizon here and not the always-valid test: proof is judged at no more than
 *     two moments whatever the caller's polling — the first final look (terminal unless
 *     EXTEND) and, when extended, the first look at or after max_window_days; every look in
 *     between is KEEP_RUNNING (only rules 1 and 2 act). At one or two looks the fixed-horizon
 *     test is valid and has the power pe_stats_sample_size plans for (80 % at the planned
 *     sample); the always-valid test at that sample has about half of it. Two looks split the
 *     level (Bonferroni): alpha_f = alpha/2 at each when an extension is possible (a first
 *     final look before max_window_days, or extended), alpha otherwise. So the chance of
 *     PROVING a change without effect is at most alpha/2 — one two-sided test's — over the
 *     whole experiment, and so is that of a false ROLLBACK_LOSER on the primary. This needs
 *     the caller to keep the one fact the statistics cannot show: look->extended.
 *
 * Statistics. Every test runs on the ABSOLUTE effect (treatment − control means, variance
 * v_t/n_t + v_c/n_c) and reports it relative, estimate and interval divided by |control mean|
 * (the control mean taken as known; a rate's interval is cut at −100 %). The delta-method
 * relative effect of pe_stats_difference is not used for decisions: its lower tail is
 * anti-conservative at these sample sizes — a one-sided always-valid "less" test at 0.05
 * rejected in 3.8 % of 4,000 simulated A/A conversion experiments (0.30, up to 11,800 units,
 * 252 looks) against 2.0 % on the absolute effect, and "greater" in 1.1 % (absolute 1.8 %);
 * the relative figures here are therefore not gbstats' delta-method intervals. An arm whose
 * variance is 0 while the other's is not (no conversions yet, or a checkout broken so that
 * nobody orders) takes the other arm's per-unit variance: the delta method would otherwise
 * call the effect certain, or — the treatment's mean at 0 — give it no variance and no test
 * at all, and every test here is of "no difference", under which the arms share a variance.
 * The always-valid tests use tuning T = plan->sequential_tuning, by default 2 × min_units (the
 * planned total) but at most PE_EXPERIMENTS_MAX_TUNING (pe_experiments_tuning): in the
 * simulations of tests/unit/experiments, T from 0.5 to 4 × min_units kept the share of true
 * −10 % changes rolled back automatically within 87.5–91.0 % (the highest at 2×) and A/A
 * automatic rollbacks within 1.1–2.2 %. The cap: a plan for a small uplift on a small segment
 * asks for a million units that its window never brings, and a sequence tuned for two million
 * is so wide at a few thousand that harm goes unseen (closed-loop simulation: a −44 % change
 * ran 28 days at 2,000 units a side without a rollback); any T keeps the test valid, only its
 * tightness moves.
 *
 * CUPED: plan->cuped with look->has_covariate adjusts both metrics by their pre-period
 * covariate (the pre_* fields of each arm, pe_stats_cuped; relative to the adjusted control
 * mean); without a covariate the flag is accepted and the analysis runs unadjusted (the
 * covariate, the unit's own 28 days before its first exposure, is measured by a later slice).
 *
 * Thresholds and operators. A trigger's threshold is relative (a change against control in
 * [−1, 0]: −0.05 fires at a fall of 5 % or more) or absolute (the metric's own value: 0.55
 * fires when the treatment's checkout conversion is estimated at or below 0.55). An absolute
 * threshold fires when the same always-valid test says the treatment is worse than control
 * AND the treatment's estimated mean (control mean + the absolute effect) is at or below it:
 * a level the whole store fell to, control included, is not harm done by the change. The
 * operator lt is strictly below, lte at or below. (The caller maps the contract's operator;
 * a rise, gt/gte, is not harm for the metrics measured here, all "higher is better", and
 * `action` other than rollback are the caller's to list as not evaluated.)
 *
 * Windows. A trigger whose window_days is shorter than the plan's horizon (max_window_days,
 * else window_days) is judged on its metric over the units first exposed in the trailing
 * window (look->trigger_arms, which the caller measures), each unit with its outcomes from its
 * first exposure on: a change that turned harmful recently (a price feed, a broken release)
 * is caught without being diluted by the weeks before. A window at least the horizon is the
 * whole experiment, like 0. The always-valid guarantee holds for a growing sample; a trailing
 * window renews its units every window_days, so over the horizon it is about J =
 * ceil(horizon / window_days) samples, and the trigger's share of alpha is split J ways
 * (Bonferroni). The families that share alpha (rule 2) are: profit per visitor (the guardrail
 * and whole-experiment profit triggers), the primary (whole-experiment primary triggers, when
 * any), and each windowed trigger on its own. Beyond the horizon (an experiment still waiting
 * for its sample) the split no longer bounds the windowed triggers' false alarms.
 *
 * Invariants:
 *  1. Pure: no I/O, no allocation, no mutable state; thread-safe. The same plan and look give
 *     the same decision, byte for byte (the decision is zeroed first).
 *  2. Exactly one action; every field of the decision is set (NaN where a number does not
 *     apply), and reason is one UTF-8 sentence (a name is cut at 96 bytes, the sentence cut
 *     to fit, never inside a character, always terminated).
 *  3. Every input field is checked before use; a refusal is PE_EINVAL naming the field
 *     ("plan.triggers[2].threshold: …", "look.primary: variant.sum: …", where the stats
 *     engine's "variant" is the treatment).
 *  4. Never ROLLBACK, PROVE or ROLLBACK_LOSER while SRM is detected.
 */
#ifndef PE_EXPERIMENTS_H
#define PE_EXPERIMENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "pe/core.h"
#include "pe/stats.h"

#define PE_EXPERIMENTS_MAX_TRIGGERS        20      /* autoRollbackTriggers holds at most 20 */
#define PE_EXPERIMENTS_GUARDRAIL_THRESHOLD (-0.05) /* profit per visitor down 5 % or more */
#define PE_EXPERIMENTS_DEFAULT_WINDOW      7.0     /* days: measurementWindow's default */
#define PE_EXPERIMENTS_MIN_MONITOR_UNITS   100.0   /* per arm before rule 2 may fire at all */
#define PE_EXPERIMENTS_REASON_LEN          512
#define PE_EXPERIMENTS_CONTROL             0 /* index of the control arm */
#define PE_EXPERIMENTS_TREATMENT           1 /* index of the treatment arm */
#define PE_EXPERIMENTS_NO_TRIGGER          (-1)
#define PE_EXPERIMENTS_GUARDRAIL           (-2) /* decision.trigger: the profit guardrail fired */

typedef enum {
    PE_EXPERIMENTS_PRIMARY = 0, /* the ChangeSet's primary metric */
    PE_EXPERIMENTS_PROFIT,      /* gross profit per visitor (per assigned unit) */
} pe_experiments_metric_t;

typedef enum {
    PE_EXPERIMENTS_KEEP_RUNNING = 0,      /* nothing decided yet */
    PE_EXPERIMENTS_ROLLBACK,              /* harm: a trigger or the profit guardrail fired */
    PE_EXPERIMENTS_PROVE,                 /* a win on the primary that does not cost profit */
    PE_EXPERIMENTS_ROLLBACK_LOSER,        /* final look: primary worse, or a win costing profit */
    PE_EXPERIMENTS_ROLLBACK_INCONCLUSIVE, /* final look: no significant difference */
    PE_EXPERIMENTS_EXTEND,                /* inconclusive, run once more up to max_window_days */
    PE_EXPERIMENTS_FREEZE_SRM,            /* sample-ratio mismatch: no automatic decision */
} pe_experiments_action_t;

/* "metric down to `threshold`, significantly": an autoRollbackTriggers entry (rule 2). The
 * first three fields are the relative "at or below" trigger of earlier callers; the rest
 * default to it when zero. */
typedef struct {
    pe_experiments_metric_t metric;
    double threshold;   /* relative: a change in [−1, 0], e.g. −0.05; absolute: the metric's own
                           value in the treatment arm (a rate, money per visitor), finite */
    double min_units;   /* the metric's units in each arm before it may fire; ≥ 0 */
    bool absolute;      /* threshold is the metric's value, not a change relative to control */
    bool strict;        /* operator lt: fires strictly below; lte (false): at or below */
    double window_days; /* the trailing window, > 0; 0 = the whole experiment (see Windows) */
} pe_experiments_trigger_t;

/* The proof plan and rollback plan of one ChangeSet, as the rule reads them. */
typedef struct {
    double alpha;           /* proofPlan.significanceThreshold, in (0, 0.5] */
    double min_units;       /* proofPlan.minimumSampleSize: primary units per arm, ≥ 0 */
    double window_days;     /* proofPlan.measurementWindow in days: the minimum runtime, > 0 */
    double max_window_days; /* one extension of an inconclusive test up to this; NaN = none,
                               else > window_days */
    double split[2];        /* configured weights of control, treatment; both > 0 */
    size_t n_triggers;      /* ≤ PE_EXPERIMENTS_MAX_TRIGGERS */
    pe_experiments_trigger_t triggers[PE_EXPERIMENTS_MAX_TRIGGERS];
    double guardrail_threshold; /* profit per visitor, in [−1, 0]; −0.05 by default */
    double guardrail_min_units; /* units per arm before the guardrail may fire; ≥ 0 */
    bool cuped;                 /* proofPlan.statisticalMethod = cuped (see above) */
    double sequential_tuning;   /* the always-valid test's T (units in both arms at which it
                                   is tightest); NaN = 2 × min_units capped at
                                   PE_EXPERIMENTS_MAX_TUNING, or PE_STATS_DEFAULT_TUNING when
                                   min_units is 0 */
} pe_experiments_plan_t;

#define PE_EXPERIMENTS_MAX_TUNING 20000.0 /* units in both arms: the derived T's cap */
/* The always-valid tests' tuning T for plan (its own, else derived as above). Pure. */
double pe_experiments_tuning(const pe_experiments_plan_t *plan);

/* One look at the running experiment. Arms are indexed PE_EXPERIMENTS_CONTROL / _TREATMENT. */
typedef struct {
    const char *primary_name;       /* the merchant's name ("checkout conversion"), shown as
                                       given (the caller refuses control characters);
                                       borrowed; NULL = "primary metric" */
    pe_stats_metric_t primary_type; /* proportion (a conversion) or mean (per unit) */
    pe_stats_arm_t primary[2];      /* its n ≤ profit[k].n (a step's conversion counts the
                                       units that reached the step) */
    pe_stats_arm_t profit[2];       /* profit per visitor, a mean over every assigned unit:
                                       profit[k].n is the arm's assigned units (SRM) */
    bool has_covariate;             /* the pre_* fields of all four arms hold the covariate */
    double runtime_days;            /* since the first exposure, ≥ 0 */
    bool extended;                  /* EXTEND was returned before (state the caller keeps) */
    /* Trigger i's metric over the units first exposed in its trailing window, needed when
     * pe_experiments_trigger_windowed(plan, i) and runtime_days > its window_days (before
     * that the window holds the whole experiment, whose arms are used); ignored otherwise.
     * Never CUPED-adjusted. */
    bool trigger_given[PE_EXPERIMENTS_MAX_TRIGGERS];
    pe_stats_arm_t trigger_arms[PE_EXPERIMENTS_MAX_TRIGGERS][2];
} pe_experiments_look_t;

/* One metric's figures behind a decision, relative: the absolute test's estimate and interval
 * over |control mean| ("Statistics" above). */
typedef struct {
    pe_experiments_metric_t metric;
    pe_stats_method_t method; /* SEQUENTIAL (always-valid) or FREQUENTIST (fixed-horizon) */
    double effect;            /* NaN when undefined (no units, zero control mean) */
    double ci_low, ci_high;   /* the interval of the test that decided (see decision) */
    double p_value;           /* of that test */
    double always_valid_p;    /* the metric's always-valid p now (see decision) */
    double alpha;             /* the level the test was run at */
} pe_experiments_evidence_t;

typedef struct {
    pe_experiments_action_t action;
    /* plan->triggers index that fired, PE_EXPERIMENTS_GUARDRAIL, or PE_EXPERIMENTS_NO_TRIGGER */
    int trigger;
    /* The metric the action is about:
     *  ROLLBACK: the firing metric; method SEQUENTIAL; [ci_low, ci_high] the one-sided
     *    always-valid bounds at rule 2's level (alpha over the monitored metrics; together a
     *    1 − 2·level confidence sequence, so ci_high < 0 exactly when the test rejects);
     *    p_value = always_valid_p = the one-sided p.
     *  PROVE / ROLLBACK_* at a final look / EXTEND: FREQUENTIST, the two-sided Welch interval
     *    and p at alpha_f; always_valid_p two-sided at alpha. ROLLBACK_LOSER for a win that
     *    costs profit: a copy of `guardrail` below (always_valid_p NaN).
     *  KEEP_RUNNING / FREEZE_SRM / ROLLBACK_INCONCLUSIVE for lack of sample: the primary's
     *    two-sided always-valid interval and p at alpha. */
    pe_experiments_evidence_t evidence;
    /* Profit per visitor at a final look: FREQUENTIST, the one-sided test of "worse" at alpha
     * (p_value), with the 1 − 2·alpha two-sided interval whose upper end is that test's bound.
     * All NaN at other looks. */
    pe_experiments_evidence_t guardrail;
    double units[2];                        /* assigned units per arm */
    double srm_p;                           /* NaN when undefined */
    char reason[PE_EXPERIMENTS_REASON_LEN]; /* one sentence for the merchant, UTF-8 */
} pe_experiments_decision_t;

/* Defaults: alpha 0.05, no minimum sample, a 7-day window, no extension, split 50/50, one
 * trigger (the default: primary down 5 % or more, no minimum sample), the profit
 * guardrail at −5 % with no minimum sample, no CUPED, tuning NaN (derived). Thread-safe. */
void pe_experiments_plan_defaults(pe_experiments_plan_t *plan);
/* Returns 0, or PE_EINVAL with err naming the field ("plan.maxWindowDays: …"). Thread-safe. */
int pe_experiments_plan_check(const pe_experiments_plan_t *plan, pe_refusal_t *err);
/* The decision for one look (rules above). out is always fully written (KEEP_RUNNING with a
 * NaN-filled evidence on a refusal). Returns 0, PE_EINVAL (err filled, naming the field) or
 * PE_EINTERNAL (a numerical routine failed). Pure, allocation-free, thread-safe. */
int pe_experiments_decide(const pe_experiments_plan_t *plan, const pe_experiments_look_t *look,
                          pe_experiments_decision_t *out, pe_refusal_t *err);
/* True when plan->triggers[i] is judged on its own trailing window ("Windows" above): 0 <
 * window_days < the plan's horizon (max_window_days, else window_days). Pure; false when i is
 * out of range. */
bool pe_experiments_trigger_windowed(const pe_experiments_plan_t *plan, size_t i);
/* "KEEP_RUNNING", "ROLLBACK", "PROVE", …; static strings, "UNKNOWN" out of range. */
const char *pe_experiments_action_name(pe_experiments_action_t a);

/* ---- results (results.c): an experiment as it stands, from the aggregate tables ------------ */

#include "pe/db.h"

/* The results of one Autopilot ChangeSet's experiment at now_us: its plan read from the
 * ChangeSet (proofPlan, rollbackPlan, actionPlan's split), the units of its flag from
 * agg_exposures (first variant, intention to treat, store holdout excluded) with their
 * outcomes from their first exposure on, and pe_experiments_decide's decision on them:
 * {"changesetId","flagKey","status","startedAt","runtimeDays","primaryMetric",
 *  "minimumRuntimeEndsAt","unitsNeededPerArm","srmPValue","variants":[{"variant","units",
 *  "conversionRate","orders","revenue","profit","revenuePerVisitor","profitPerVisitor","aov",
 *  "costKnownShare","step":{"name","reachedBefore","passed","rate"}}…],
 *  "decision":{"action","reason","evidence":{…},"guardrail":{…}},
 *  "series":[{"at","action","effect","ciLow","ciHigh","variants":{"control":{"units",
 *  "conversionRate","revenuePerVisitor","profitPerVisitor","stepRate"},"treatment":{…}}}…]}
 * (the series: the measure job's snapshots, oldest first, the last 2,000), and "triggers": every
 * autoRollbackTriggers entry with "evaluated", "note" and, when evaluated, "thresholdKind"
 * (relative | absolute), "operator" (lt | lte) and "windowDays" (null: the whole experiment).
 * A ChangeSet not started has no units; one that ended (execution.endedAt) is measured as it
 * stood then: units first exposed, and sessions started, before its end, runtime up to it. Returns
 * 0 and *out (caller deletes), PE_EINVAL with *err (a primary metric the engine does not measure;
 * not_measurable: a rollout without a control group) or a database error. Reads aggregate tables
 * only, never raw events; a running experiment (ACTIVE, MEASURING) through its per-unit table,
 * which it first brings up to date with the logged units (pe_experiments_refresh, LOGGED: a
 * write, bounded; units.c). Thread-safe. */
int pe_experiments_results(pe_db_pool_t *db, const char *store_id, const cJSON *changeset,
                           int64_t now_us, cJSON **out, pe_refusal_t *err);

/* ---- incremental measurement (units.c) ------------------------------------------------------ */

typedef struct {
    unsigned long long experiments;  /* running experiments of the store */
    unsigned long long rebuilt;      /* of them, rebuilt from scratch */
    unsigned long long units_logged; /* units the aggregation logged since the last refresh */
} pe_experiments_refresh_t;

typedef enum {
    PE_EXPERIMENTS_REFRESH_LOGGED = 0, /* logged units only, a small backlog (a GET) */
    PE_EXPERIMENTS_REFRESH_DUE,        /* logged units, and the rebuilds that are due (the job) */
    PE_EXPERIMENTS_REFRESH_ALL,        /* every experiment from scratch (a full recomputation) */
} pe_experiments_refresh_mode_t;

/* Brings the per-unit tables of store_id's running experiments (experiment_units) up to date
 * with the rollups: only the units logged as changed since the last refresh are recomputed,
 * and, as mode allows, the experiments that need a rebuild (units.c, invariants 3 and 5) or
 * all of them (the same rows). One transaction; *out (may be NULL) says what was done.
 * Returns 0 or a database error. Thread-safe (refreshes of a store are serialised).
 * pe_experiments_results refreshes LOGGED for a running experiment; pe_experiments_measure
 * DUE for its store first. */
int pe_experiments_refresh(pe_db_pool_t *db, const char *store_id, int64_t now_us,
                           pe_experiments_refresh_mode_t mode, pe_experiments_refresh_t *out);

/* ---- the job (measure.c): carrying the decisions out through the lifecycle ----------------- */

typedef struct pe_changeset_service pe_changeset_service_t; /* pe/changeset.h */

#define PE_EXPERIMENTS_MEASURE_INTERVAL_S 300 /* PE_MEASURE_INTERVAL_S's default */

/* Measures every ACTIVE or MEASURING ChangeSet of store_id at now_us and carries each decision
 * out with the system as actor (measure.c's table): ACTIVE → MEASURING at the first exposures,
 * → ROLLED_BACK on harm or at a losing or inconclusive end, → PROVEN with its proofResult;
 * each end writes its experiment_results row in the transition's transaction. Then records
 * the experiment_results row of every ChangeSet rolled back otherwise (a merchant), measured
 * over its span. *out = {"measured":N,"changesets":[{"id","before","after","action",
 * "reason"}…],"recorded":[{"id","outcome","kind"}…]} (caller deletes). Returns 0, PE_ENOTFOUND (no
 * such store) or a database / lifecycle error. A transition the lifecycle refuses (a merchant moved
 * it meanwhile) is logged and skipped. Thread-safe. */
int pe_experiments_measure(pe_db_pool_t *db, pe_changeset_service_t *svc, const char *store_id,
                           int64_t now_us, cJSON **out);
/* The job: pe_experiments_measure, then pe_experiments_attribution_refresh, for every store
 * with a running or live proven experiment (or an ended one whose experiment_results row is
 * missing), once across instances (an advisory lock: a second caller returns 0 at once).
 * *measured = ChangeSets measured. Returns 0 or the failure (err says how many stores failed).
 * Thread-safe. */
int pe_experiments_measure_due(pe_db_pool_t *db, pe_changeset_service_t *svc, int64_t now_us,
                               size_t *measured, char *err, size_t errlen);

/* ---- attribution (attribution.c): what Autopilot has earned the merchant ------------------ */

#define PE_EXPERIMENTS_ATTRIBUTION_MIN_UNITS 100.0 /* per group before the holdout caps */

/* GET …/attribution for store_id over the store-local days [from, to] (days since 1970-01-01,
 * to − from < PE_AGGREGATE_MAX_DAYS), the range ending at now_us when that is earlier:
 * {"from","to","currency",
 *  "experiments":{"run","running","proven","permanent","rolledBackAutomatically",
 *                 "rolledBackManually"},
 *  "attributed":{"revenue":{"estimate","lowerBound"},"profit":{"estimate","lowerBound"},
 *                "cappedByHoldout","reason" (null, or why nothing is attributed),
 *                "changesets":[{"id","status","step","treatedUnits","creditedUnits" (those
 *                               not credited to another change of its group),"measuredBy"
 *                               (controlGroup: re-measured until the range's end; proof: as
 *                               proven),
 *                               "revenue":{…},"profit":{…},"group"}…]},
 *  "holdout":{"units","exposedUnits","enoughUnits","conversionRate":{"holdout","exposed",
 *             "effect","ciLow","ciHigh"},"revenuePerVisitor":{…},"profitPerVisitor":{…}},
 *  "harmAvoided":{"revenue","profit" (from the smallest loss each rollback's measurement
 *                 allows),"estimate":{"revenue","profit"} (from the measured loss),"rollbacks",
 *                 "note"},
 *  "roi":{"subscriptionCostPerMonth","subscriptionCost","value"},
 *  "weekly":[{"week" (its Monday),"treatedUnits","attributedRevenue","attributedProfit",
 *             "cumulativeRevenue","cumulativeProfit","harmAvoidedProfit"}…],
 *  "method":"…","computedAt" (now_us, RFC 3339)}
 * The attributed figure is "lowerBound" (attribution.c's invariants: proven and live changes
 * only, each one's measured effect per visitor times the visitors it served in the range, a
 * visitor of overlapping changes credited once; the store's figure the one-sided 99 % lower
 * bound of their sum, capped by the holdout's upper bound; a change's own "lowerBound" its own
 * 99 % bound); effects in "holdout" are relative to the holdout's mean with two-sided 95
 * % intervals. Returns 0 and *out (caller deletes), PE_EINVAL (a bad range), PE_ENOTFOUND (no such
 * store) or a database error. Reads aggregate tables only. Thread-safe. */
int pe_experiments_attribution(pe_db_pool_t *db, const char *store_id, int32_t from, int32_t to,
                               int64_t now_us, cJSON **out);

/* Snapshots older than this are recomputed by a GET: two measure intervals at the default. */
#define PE_EXPERIMENTS_ATTRIBUTION_MAX_AGE_S (2 * PE_EXPERIMENTS_MEASURE_INTERVAL_S)
/* What GET …/attribution answers: the snapshot of [from, to] computed at most
 * PE_EXPERIMENTS_ATTRIBUTION_MAX_AGE_S before now_us (by the measure job or an earlier GET;
 * "computedAt" says when), else pe_experiments_attribution's answer, stored as the snapshot.
 * ROI is always read with the settings as they are. Returns as pe_experiments_attribution.
 * Thread-safe. */
int pe_experiments_attribution_get(pe_db_pool_t *db, const char *store_id, int32_t from, int32_t to,
                                   int64_t now_us, cJSON **out);
/* The measure job's part: recomputes store_id's snapshots at now_us — its default range (the
 * last 30 store-local days) and the ranges asked for in the last day (the latest four) — and
 * deletes those nobody asked for in a day. Returns 0 or a database error. Thread-safe. */
int pe_experiments_attribution_refresh(pe_db_pool_t *db, const char *store_id, int64_t now_us);
/* Whether two targetSegment rule lists can admit the same visitor: false only when some
 * attribute is constrained by eq / in in both to values that share none; anything else (other
 * operators, a list that is not an array) counts as overlapping. Pure. */
bool pe_experiments_segments_overlap(const cJSON *a, const cJSON *b);

#endif /* PE_EXPERIMENTS_H */
