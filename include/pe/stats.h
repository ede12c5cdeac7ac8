/*
 * pe/stats.h — the statistical measurement engine (8.10): every experiment decision goes
 * through here. Pure functions over sufficient statistics per arm (never raw rows): moments,
 * Welch t-test, CUPED, a Gaussian Bayesian model, an always-valid confidence sequence,
 * sample-ratio mismatch, power, tests of proportions with Benjamini–Hochberg q-values (the
 * funnel doctor's), and the decision helper that turns a proof plan plus current
 * statistics into KEEP_RUNNING | WINNER | LOSER | INCONCLUSIVE | ROLLBACK. Also the strict
 * parser and the writer of the `profit-engine stats analyze` JSON, and the command itself.
 *
 * Conventions (the README's "Statistics" section states them for merchants; tests pin them):
 *  - mean metric: mean = sum/n, variance = (sumSquares − sum²/n)/(n − 1);
 *    proportion: p = sum/n, variance = p(1 − p) (sum = sumSquares = conversions).
 *  - absolute effect m_v − m_c, variance v_v/n_v + v_c/n_c; relative effect (m_v − m_c)/|m_c|,
 *    delta-method variance v_v/(n_v·m_c²) + v_c·m_v²/(n_c·m_c⁴).
 *  - the effect is "variant minus control"; higher is better.
 *
 * Invariants:
 *  1. No I/O, no allocation and no mutable state in the numeric functions (everything but
 *     pe_stats_input_parse, pe_stats_*_json and pe_stats_command); all are thread-safe.
 *  2. GSL's abort-on-error handler is switched off exactly once (pthread_once) before any GSL
 *     call, and every GSL status is checked; a failed GSL call is PE_EINTERNAL, never a NaN
 *     handed on silently.
 *  3. In results, NaN means "does not apply or is undefined for these data" and ±INFINITY
 *     means an unbounded interval end (one-sided tests); nothing else is non-finite. The JSON
 *     writer prints both as null, so JSON output never holds NaN or Infinity.
 *  4. Every input is checked before use (pe_stats_input_check); a refusal is PE_EINVAL with a
 *     message naming the field ("control.sumSquares: …").
 */
#ifndef PE_STATS_H
#define PE_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include "pe/core.h"

typedef enum { PE_STATS_PROPORTION = 0, PE_STATS_MEAN } pe_stats_metric_t;
typedef enum { PE_STATS_FREQUENTIST = 0, PE_STATS_BAYESIAN, PE_STATS_SEQUENTIAL } pe_stats_method_t;
/* The alternative hypothesis: effect ≠ 0, effect > 0, effect < 0. One-sided tests give
 * intervals with one infinite end. */
typedef enum { PE_STATS_TWO_SIDED = 0, PE_STATS_GREATER, PE_STATS_LESS } pe_stats_sides_t;
typedef enum { PE_STATS_RELATIVE = 0, PE_STATS_ABSOLUTE } pe_stats_difference_t;

#define PE_STATS_DEFAULT_ALPHA       0.05
#define PE_STATS_DEFAULT_TUNING      5000.0 /* total units at which the CS is tightest */
#define PE_STATS_DEFAULT_POWER       0.8
#define PE_STATS_DEFAULT_MIN_RUNTIME 7.0 /* days */
#define PE_STATS_SRM_THRESHOLD       0.001
#define PE_STATS_MAX_UNITS           9007199254740992.0 /* 2^53: counts stay exact */
#define PE_STATS_MAX_TRIGGERS        8

/* Sufficient statistics of one arm. The pre-period fields are read only for CUPED. */
typedef struct {
    double n;               /* units, an integer in [0, 2^53] */
    double sum;             /* Σ y (proportion: conversions, an integer in [0, n]) */
    double sum_squares;     /* Σ y² (proportion: equals sum) */
    double pre_sum;         /* Σ x, the pre-period covariate */
    double pre_sum_squares; /* Σ x² */
    double sum_products;    /* Σ x·y */
} pe_stats_arm_t;

typedef struct {
    double n;
    double mean;     /* NaN when n = 0 */
    double variance; /* per the conventions above; NaN when undefined (mean metric, n < 2) */
} pe_stats_moments_t;

/* An effect estimate and the two parts of its variance (variant's, control's), which Welch's
 * degrees of freedom need. */
typedef struct {
    double estimate;
    double var_variant, var_control; /* variance = var_variant + var_control */
    double n_variant, n_control;
} pe_stats_diff_t;

/* An interval estimate of the effect and the test of "effect = 0". */
typedef struct {
    double estimate, stddev;
    double ci_low, ci_high; /* ±INFINITY on the open side of a one-sided interval */
    double p_value;
    double df; /* Welch–Satterthwaite degrees of freedom (frequentist only, else NaN) */
} pe_stats_test_t;

typedef struct {
    double mean, variance; /* of the Gaussian prior on the effect, in the effect's units */
} pe_stats_prior_t;

typedef struct {
    double mean, stddev;    /* posterior of the effect */
    double ci_low, ci_high; /* credible interval, ±INFINITY on the open side */
    double chance_to_win;   /* P(effect > 0) */
    double risk_control;    /* expected loss of choosing control: E[max(effect, 0)] */
    double risk_variant;    /* expected loss of choosing variant: E[max(−effect, 0)] */
} pe_stats_posterior_t;

typedef struct {
    double theta;                        /* NaN when undefined (no covariate variance) */
    pe_stats_moments_t control, variant; /* adjusted means and variances */
    double variance_reduction;           /* 1 − var(adjusted Δ)/var(plain Δ), absolute Δ */
} pe_stats_cuped_t;

typedef struct {
    double chi2, df, p_value; /* p_value NaN when fewer than two arms have weight or n = 0 */
    bool mismatch;            /* p_value < PE_STATS_SRM_THRESHOLD */
} pe_stats_srm_t;

/* Everything `stats analyze` takes. pe_stats_input_defaults fills the defaults. */
typedef struct {
    pe_stats_metric_t metric;
    pe_stats_method_t method;
    pe_stats_sides_t sides;
    pe_stats_difference_t difference;
    double alpha; /* (0, 0.5] */
    bool cuped;
    double sequential_tuning; /* > 0 */
    bool has_prior;           /* false: flat prior */
    pe_stats_prior_t prior;
    double split[2]; /* configured weights of control, variant; ≥ 0, sum > 0 */
    double power;    /* target power for the MDE, (alpha, 1) */
    double mde;      /* relative MDE for achieved power, > 0; NaN = not asked */
    pe_stats_arm_t control, variant;
} pe_stats_input_t;

typedef struct {
    pe_stats_moments_t control, variant; /* plain (unadjusted) moments */
    pe_stats_test_t effect;              /* interval per method; p_value NaN for bayesian */
    double chance_to_win;                /* bayesian only, else NaN */
    double risk[2];                      /* bayesian only: control's, variant's; else NaN */
    pe_stats_srm_t srm;
    bool cuped_applied; /* input asked for CUPED */
    pe_stats_cuped_t cuped;
    double mde_relative;   /* at the current n and target power, else NaN */
    double achieved_power; /* for input mde at the current n, else NaN */
} pe_stats_result_t;

/* Switches GSL's error handler off (once per process; later calls do nothing). Every public
 * function here calls it, so callers need not; main calls it at start-up anyway. Thread-safe. */
void pe_stats_init(void);

/* ---- moments and effects (moments.c) ----------------------------------------------------------
 */

/* Mean and variance of one arm per the conventions. Returns 0, or PE_EINVAL when the arm is
 * inconsistent (see pe_stats_input_check). Thread-safe. */
int pe_stats_moments(pe_stats_metric_t metric, const pe_stats_arm_t *arm, pe_stats_moments_t *out);
/* Effect of variant over control. Returns 0 with out->estimate NaN when it is undefined
 * (an arm without units, a mean metric arm with n < 2, relative with a zero control mean).
 * Thread-safe. */
int pe_stats_difference(const pe_stats_moments_t *control, const pe_stats_moments_t *variant,
                        pe_stats_difference_t kind, pe_stats_diff_t *out);

/* ---- frequentist (frequentist.c) --------------------------------------------------------------
 */

/* Welch t-test of d (Welch–Satterthwaite df), p-value for `sides`, interval est ± t_df·se.
 * When d's variance is 0 or d is undefined, everything but estimate (and stddev, 0) is NaN.
 * Returns 0 or PE_EINVAL / PE_EINTERNAL. Thread-safe. */
int pe_stats_welch(const pe_stats_diff_t *d, double alpha, pe_stats_sides_t sides,
                   pe_stats_test_t *out);

/* ---- CUPED (cuped.c) --------------------------------------------------------------------------
 */

/* θ = pooled within-arm cov(y, x) / pooled within-arm var(x); per arm the adjusted mean
 * ȳ − θ(x̄ − x̄_both) and variance v_y + θ²v_x − 2θ·cov_xy (clamped at 0). θ is NaN (and the
 * moments are the plain ones) when an arm has n < 2 or the covariate has no variance.
 * Returns 0 or PE_EINVAL. Thread-safe. */
int pe_stats_cuped(pe_stats_metric_t metric, const pe_stats_arm_t *control,
                   const pe_stats_arm_t *variant, pe_stats_cuped_t *out);

/* ---- Bayesian (bayes.c) -----------------------------------------------------------------------
 */

/* Gaussian posterior of the effect: likelihood N(estimate, variance of d); prior flat (NULL)
 * or `prior`, combined by precision. Undefined or zero-variance d gives NaN everywhere but
 * mean. Returns 0 or PE_EINVAL / PE_EINTERNAL. Thread-safe. */
int pe_stats_bayes(const pe_stats_diff_t *d, const pe_stats_prior_t *prior, double alpha,
                   pe_stats_sides_t sides, pe_stats_posterior_t *out);

/* ---- sequential (sequential.c) ----------------------------------------------------------------
 */

/* ρ of the normal mixture for a tuning T (total units at which the sequence is tightest):
 * ρ² = (−2 ln α + ln(1 − 2 ln α)) / T. Thread-safe. */
double pe_stats_sequential_rho(double alpha, double tuning);
/* Always-valid confidence sequence and p-value for d at the current total N = n_c + n_v (see
 * sequential.c for the boundary). p_value is 1/M_N capped at 1, where M is the mixture
 * martingale; a monitor that keeps the running minimum over its looks keeps the guarantee.
 * Returns 0 or PE_EINVAL / PE_EINTERNAL. Thread-safe. */
int pe_stats_sequential(const pe_stats_diff_t *d, double tuning, double alpha,
                        pe_stats_sides_t sides, pe_stats_test_t *out);

/* ---- sample-ratio mismatch (srm.c) ------------------------------------------------------------
 */

/* Chi-square goodness of fit of counts[k] against weights[k] over the arms with weight > 0.
 * Returns 0 (p_value NaN when the test is undefined) or PE_EINVAL. Thread-safe. */
int pe_stats_srm(const double *counts, const double *weights, size_t k, pe_stats_srm_t *out);

/* ---- power (power.c) --------------------------------------------------------------------------
 */

/* Power of the level-alpha z-test when the true effect is delta and its standard error se
 * (two-sided counts rejections in both directions). Returns 0 or PE_EINVAL. Thread-safe. */
int pe_stats_power(double delta, double se, double alpha, pe_stats_sides_t sides, double *power);
/* Smallest |effect| detected with probability `power` at standard error se. Returns 0 or
 * PE_EINVAL (power must lie in (alpha, 1)). Thread-safe. */
int pe_stats_mde(double se, double alpha, double power, pe_stats_sides_t sides, double *mde);

typedef struct {
    pe_stats_metric_t metric;
    double baseline; /* control rate (proportion, in (0,1)) or mean (≠ 0) */
    double variance; /* per-unit variance (mean metric; > 0); ignored for proportions */
    double mde;      /* relative, > 0: the variant's mean is baseline·(1 ± mde) */
    double alpha, power;
    pe_stats_sides_t sides;
} pe_stats_sample_size_input_t;

typedef struct {
    double units_per_arm;      /* the real solution n of power(n) = target */
    double units_per_arm_ceil; /* ⌈n⌉, what to plan for */
    double delta;              /* absolute effect (signed) */
    double var_control, var_variant;
} pe_stats_sample_size_t;

/* Units per arm (equal split) for the z-test to reach in->power against in->mde. Returns 0 or
 * PE_EINVAL with a message naming the field in err. Thread-safe. */
int pe_stats_sample_size(const pe_stats_sample_size_input_t *in, pe_stats_sample_size_t *out,
                         pe_refusal_t *err);

/* ---- proportions (proportions.c) -------------------------------------------------------------
 */

/* A z-test's statistic and its two-sided p-value. "No evidence" is z = 0, p = 1. */
typedef struct {
    double z;
    double p_value;
} pe_stats_ztest_t;

/* Two-proportion z-test of k1/n1 against k2/n2 with the pooled standard error (statsmodels'
 * proportions_ztest): z > 0 when the first rate is higher. A side without units, or no variance
 * (k1 + k2 = 0 or = n1 + n2), is "no evidence". Returns 0, or PE_EINVAL for a count that is
 * negative, not finite or k > n (out is then "no evidence"), or PE_EINTERNAL. Pure, thread-safe. */
int pe_stats_ztest_2prop(double k1, double n1, double k2, double n2, pe_stats_ztest_t *out);
/* One-sample score z-test of k/n against the known rate p0 in (0, 1), with the variance under
 * the null, p0(1 − p0)/n (proportions_ztest(k, n, value=p0, prop_var=p0)). n = 0 is "no
 * evidence". Returns 0, PE_EINVAL (counts as above, p0 outside (0, 1)) or PE_EINTERNAL. Pure,
 * thread-safe. */
int pe_stats_ztest_1prop(double k, double n, double p0, pe_stats_ztest_t *out);
/* Benjamini–Hochberg adjusted p-values (q-values) of p[0..m), in the same order, as
 * statsmodels' multipletests(p, method='fdr_bh')[1]. The caller lends scratch, m indices, which
 * are overwritten; q may be p itself. Allocation-free, O(m log m). Returns 0, or PE_EINVAL when a
 * p-value is outside [0, 1] or NaN (q then unspecified). Pure, thread-safe. */
int pe_stats_fdr_bh(const double *p, size_t m, double *q, size_t *scratch);

/* ---- analysis (analyze.c) ---------------------------------------------------------------------
 */

/* Defaults: frequentist, two-sided, relative, alpha 0.05, no CUPED, tuning 5000, flat prior,
 * split 50/50, power 0.8, no mde, empty arms. */
void pe_stats_input_defaults(pe_stats_input_t *in);
/* Checks every field (ranges, integrality, sums against counts, sumSquares ≥ sum²/n, the
 * covariate's Cauchy–Schwarz bound). Returns 0 or PE_EINVAL with err naming the field. */
int pe_stats_input_check(const pe_stats_input_t *in, pe_refusal_t *err);
/* The whole analysis of in (checked first). Returns 0, PE_EINVAL (err filled) or
 * PE_EINTERNAL (a GSL failure). Thread-safe, allocation-free. */
int pe_stats_analyze(const pe_stats_input_t *in, pe_stats_result_t *out, pe_refusal_t *err);

/* ---- decision helper (decision.c) --------------------------------------------------------------
 */

typedef enum {
    PE_STATS_KEEP_RUNNING = 0,
    PE_STATS_WINNER,
    PE_STATS_LOSER,
    PE_STATS_INCONCLUSIVE,
    PE_STATS_ROLLBACK,
} pe_stats_verdict_t;

/* Reasons, a bit set; pe_stats_reason_name gives each its machine-readable name. */
enum {
    PE_STATS_REASON_ROLLBACK_TRIGGER = 1u << 0,  /* "rollback_trigger" */
    PE_STATS_REASON_INSUFFICIENT_DATA = 1u << 1, /* "insufficient_data" */
    PE_STATS_REASON_MIN_SAMPLE = 1u << 2,        /* "below_min_sample_size" */
    PE_STATS_REASON_MIN_RUNTIME = 1u << 3,       /* "below_min_runtime" */
    PE_STATS_REASON_IMPROVEMENT = 1u << 4,       /* "significant_improvement" */
    PE_STATS_REASON_DEGRADATION = 1u << 5,       /* "significant_degradation" */
    PE_STATS_REASON_NOT_SIGNIFICANT = 1u << 6,   /* "not_significant" */
    PE_STATS_REASON_SRM = 1u << 7,               /* "sample_ratio_mismatch" */
    PE_STATS_REASON_MAX_RUNTIME = 1u << 8,       /* "max_runtime_reached" */
};
#define PE_STATS_REASON_COUNT 9

/* "Primary metric −5% with significance": fires when the always-valid (sequential) one-sided
 * test says the relative effect is below 0 at level alpha AND its estimate is at or below
 * relative_change (e.g. −0.05). */
typedef struct {
    double relative_change; /* ≤ 0 */
    double alpha;           /* (0, 0.5] */
} pe_stats_trigger_t;

typedef struct {
    pe_stats_method_t method;
    double alpha;            /* significance threshold; bayesian: chanceToWin ≥ 1 − alpha */
    double min_units;        /* minimum units per arm before a final verdict */
    double min_runtime_days; /* default 7 */
    double max_runtime_days; /* sequential/bayesian keep running until then; NaN = min */
    size_t n_triggers;
    pe_stats_trigger_t triggers[PE_STATS_MAX_TRIGGERS];
} pe_stats_plan_t;

typedef struct {
    pe_stats_verdict_t verdict;
    unsigned reasons;
    int trigger; /* index of the rollback trigger that fired, or −1 */
} pe_stats_decision_t;

/* Defaults: frequentist, alpha 0.05, no minimum units, 7 days, no maximum, no triggers. */
void pe_stats_plan_defaults(pe_stats_plan_t *plan);
int pe_stats_plan_check(const pe_stats_plan_t *plan, pe_refusal_t *err);
/* Decides for in (its method and alpha are replaced by the plan's) after runtime_days.
 * Returns 0, PE_EINVAL (err filled) or PE_EINTERNAL. Thread-safe, allocation-free. */
int pe_stats_decide(const pe_stats_input_t *in, const pe_stats_plan_t *plan, double runtime_days,
                    pe_stats_decision_t *out, pe_refusal_t *err);
/* "KEEP_RUNNING", "WINNER", …; static strings. */
const char *pe_stats_verdict_name(pe_stats_verdict_t v);
/* Name of one reason bit, or NULL. */
const char *pe_stats_reason_name(unsigned bit);

/* ---- JSON (input.c, output.c) ------------------------------------------------------------------
 */

/* Parses the untrusted `stats analyze` document: strict (unknown and duplicate fields refused),
 * every refusal naming its field. *has_plan tells whether "plan" (and "runtimeDays") came.
 * Returns 0 or PE_EINVAL with err. Thread-safe. */
int pe_stats_input_parse(const char *text, size_t len, pe_stats_input_t *in, pe_stats_plan_t *plan,
                         bool *has_plan, double *runtime_days, pe_refusal_t *err);
/* Appends the result as one JSON object (shape in the README); with a decision, adds
 * "decision":{"verdict":…,"reasons":[…]}. Non-finite numbers print as null. Returns 0 or
 * PE_ENOMEM. */
int pe_stats_result_json(const pe_stats_result_t *r, const pe_stats_decision_t *decision,
                         pe_buf_t *b);
/* Appends a number as JSON: shortest round-trip text, or null when not finite. */
int pe_stats_json_number(pe_buf_t *b, double x);

/* ---- the command (cli.c: the module's only I/O) -----------------------------------------------
 */

extern const char pe_stats_usage[];
/* `profit-engine stats analyze|sample-size …`: exit status 0, 2 (bad input; an error object on
 * stdout) or 1. */
int pe_stats_command(int argc, char **argv);

#endif /* PE_STATS_H */
