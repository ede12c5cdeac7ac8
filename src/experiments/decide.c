/*
 * decide.c — pe_experiments_decide: one look at a running experiment and its plan → an action,
 * the figures behind it and the merchant's sentence. The rules and why they hold are in
 * include/pe/experiments.h; each rule is one function here:
 *
 *   rule                                   function      actions
 *   1. sample-ratio mismatch               srm_check     FREEZE_SRM
 *   2. triggers, then the profit guardrail monitor       ROLLBACK
 *   3. window and minimum sample not met   gate          KEEP_RUNNING, ROLLBACK_INCONCLUSIVE
 *      during the extension                gate          KEEP_RUNNING
 *   4. a final look                        final_look    PROVE, ROLLBACK_LOSER, EXTEND,
 *                                                        ROLLBACK_INCONCLUSIVE
 *
 * Invariants:
 *  1. Every test is the stats engine's (pe_stats_sequential, pe_stats_welch) on the absolute
 *     effect of pe_stats_moments / pe_stats_cuped / pe_stats_difference, after
 *     pe_stats_input_check accepted the arms: `profit-engine stats analyze` with
 *     "difference":"absolute" gives the same p-values and, divided by |control mean|, the
 *     same intervals (but for the zero-variance rule of metric_diff).
 *  2. No allocation: the reason is formatted into the decision's fixed buffer through put()
 *     (vsnprintf), which cuts rather than overflows, and never inside a UTF-8 character.
 *  3. An action that acts on the experiment (ROLLBACK, PROVE, ROLLBACK_LOSER) is only reached
 *     after srm_check found no mismatch.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pe/experiments.h"

#define MINUS          "\xe2\x88\x92" /* U+2212, the merchant-facing minus sign */
#define NAME_MAX_BYTES 96             /* of a metric's name in the sentence */
#define FIG_LEN        256            /* one metric's figures in the sentence */

static const char *const ACTIONS[] = {
    "KEEP_RUNNING",          "ROLLBACK", "PROVE",     "ROLLBACK_LOSER",
    "ROLLBACK_INCONCLUSIVE", "EXTEND",   "FREEZE_SRM"};

const char *pe_experiments_action_name(pe_experiments_action_t a)
{
    return (unsigned)a < PE_ARRAY_LEN(ACTIONS) ? ACTIONS[a] : "UNKNOWN";
}

void pe_experiments_plan_defaults(pe_experiments_plan_t *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->alpha = PE_STATS_DEFAULT_ALPHA;
    plan->min_units = 0;
    plan->window_days = PE_EXPERIMENTS_DEFAULT_WINDOW;
    plan->max_window_days = NAN;
    plan->split[0] = 0.5;
    plan->split[1] = 0.5;
    plan->n_triggers = 1;
    plan->triggers[0] =
        (pe_experiments_trigger_t){.metric = PE_EXPERIMENTS_PRIMARY, .threshold = -0.05};
    plan->guardrail_threshold = PE_EXPERIMENTS_GUARDRAIL_THRESHOLD;
    plan->guardrail_min_units = 0;
    plan->cuped = false;
    plan->sequential_tuning = NAN;
}

/* ---- checks -------------------------------------------------------------------------------- */

#define MAX_UNITS PE_STATS_MAX_UNITS

static bool is_units(double x)
{
    return x >= 0 && x <= MAX_UNITS;
}

static bool is_threshold(double x)
{
    return x >= -1 && x <= 0;
}

int pe_experiments_plan_check(const pe_experiments_plan_t *plan, pe_refusal_t *err)
{
    if (!(plan->alpha > 0 && plan->alpha <= 0.5))
        return pe_refuse(err, PE_EINVAL, "out_of_range", "plan.alpha: must be in (0, 0.5]");
    if (!is_units(plan->min_units))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "plan.minUnits: must be a number in [0, 2^53]");
    if (!(plan->window_days > 0) || !isfinite(plan->window_days))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "plan.windowDays: must be a finite number > 0");
    if (!isnan(plan->max_window_days) &&
        (!(plan->max_window_days > plan->window_days) || !isfinite(plan->max_window_days)))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "plan.maxWindowDays: must be a finite number > windowDays, or none");
    for (int i = 0; i < 2; i++)
        if (!(plan->split[i] > 0) || !isfinite(plan->split[i]))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "plan.split[%d]: must be a finite number > 0", i);
    if (plan->n_triggers > PE_EXPERIMENTS_MAX_TRIGGERS)
        return pe_refuse(err, PE_EINVAL, "too_many", "plan.triggers: at most %d",
                         PE_EXPERIMENTS_MAX_TRIGGERS);
    for (size_t i = 0; i < plan->n_triggers; i++) {
        const pe_experiments_trigger_t *t = &plan->triggers[i];
        if ((unsigned)t->metric > PE_EXPERIMENTS_PROFIT)
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "plan.triggers[%zu].metric: must be primary or profit", i);
        if (t->absolute ? !isfinite(t->threshold) : !is_threshold(t->threshold))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             t->absolute ? "plan.triggers[%zu].threshold: must be a finite number"
                                         : "plan.triggers[%zu].threshold: must be a relative "
                                           "change in [-1, 0]",
                             i);
        if (!(t->window_days >= 0) || !isfinite(t->window_days))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "plan.triggers[%zu].windowDays: must be a finite number ≥ 0", i);
        if (!is_units(t->min_units))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "plan.triggers[%zu].minUnits: must be a number in [0, 2^53]", i);
    }
    if (!is_threshold(plan->guardrail_threshold))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "plan.guardrailThreshold: must be a relative change in [-1, 0]");
    if (!is_units(plan->guardrail_min_units))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "plan.guardrailMinUnits: must be a number in [0, 2^53]");
    if (!isnan(plan->sequential_tuning) &&
        (!(plan->sequential_tuning > 0) || !isfinite(plan->sequential_tuning)))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "plan.sequentialTuning: must be a finite number > 0, or derived");
    return 0;
}

double pe_experiments_tuning(const pe_experiments_plan_t *plan)
{
    if (!isnan(plan->sequential_tuning))
        return plan->sequential_tuning;
    return plan->min_units > 0 ? fmin(2 * plan->min_units, PE_EXPERIMENTS_MAX_TUNING)
                               : PE_STATS_DEFAULT_TUNING;
}

/* The plan's horizon: how long the experiment is planned to run at most. */
static double horizon(const pe_experiments_plan_t *plan)
{
    return isnan(plan->max_window_days) ? plan->window_days : plan->max_window_days;
}

bool pe_experiments_trigger_windowed(const pe_experiments_plan_t *plan, size_t i)
{
    if (i >= plan->n_triggers || i >= PE_EXPERIMENTS_MAX_TRIGGERS)
        return false;
    double w = plan->triggers[i].window_days;
    return w > 0 && w < horizon(plan);
}

/* ---- one look's context --------------------------------------------------------------------- */

/* The series the tests read: PE_EXPERIMENTS_PRIMARY, PE_EXPERIMENTS_PROFIT over the whole
 * experiment, then WINDOWED + i: trigger i's metric over its trailing window. */
#define WINDOWED 2
#define NSERIES  (WINDOWED + PE_EXPERIMENTS_MAX_TRIGGERS)

typedef struct {
    const pe_experiments_plan_t *plan;
    const pe_experiments_look_t *look;
    const char *name;             /* the primary's name for the merchant */
    pe_stats_input_t in[NSERIES]; /* per series: arms, type, CUPED (checked) */
    pe_stats_diff_t d[NSERIES];   /* per series: the absolute effect every test reads */
    double scale[NSERIES];        /* per series: |control mean|, absolute → relative */
    double mean0[NSERIES];        /* per series: the control mean (absolute thresholds) */
    double tuning;                /* of the always-valid tests */
    double alpha_monitor;         /* rule 2's level of the profit and primary families */
    double alpha_trigger[PE_EXPERIMENTS_MAX_TRIGGERS]; /* rule 2's level of each trigger */
} look_t;

/* The length of the longest prefix of s of at most max bytes that does not end inside a
 * UTF-8 sequence. */
static int utf8_prefix(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    if (s[n])
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    return (int)n;
}

/* Drops a UTF-8 sequence that snprintf cut short at the end of b. */
static void utf8_trim(char *b)
{
    size_t n = strlen(b), i = n;
    while (i > 0 && ((unsigned char)b[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)b[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (i - 1 + need > n)
        b[i - 1] = '\0';
}

/* snprintf that cuts to fit, never inside a character: every sentence and figure is written
 * through it (a wrapper also keeps gcc's truncation warning for bounded writes quiet, where
 * cutting is the intent). */
static void put(char *b, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put(char *b, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, n, fmt, ap);
    va_end(ap);
    utf8_trim(b);
}

static const char *metric_name(const look_t *c, pe_experiments_metric_t m)
{
    return m == PE_EXPERIMENTS_PRIMARY ? c->name : "profit per visitor";
}

static double metric_units(const look_t *c, int m, int arm)
{
    return arm == PE_EXPERIMENTS_CONTROL ? c->in[m].control.n : c->in[m].variant.n;
}

static bool metric_reaches(const look_t *c, int m, double min_units)
{
    return metric_units(c, m, 0) >= min_units && metric_units(c, m, 1) >= min_units;
}

/* The absolute effect of metric m (and |control mean|, to make it relative), CUPED-adjusted
 * when the plan and the look allow. An arm
 * whose variance is 0 while the other's is not (no conversions yet, or a broken checkout with
 * none at all) borrows the other arm's per-unit variance: the delta method would otherwise
 * call the effect certain — or, with the treatment mean at 0, give it no variance and no test
 * — and under "no difference", which every test here is of, the arms share one variance. */
static int metric_diff(look_t *c, int m)
{
    const pe_stats_input_t *in = &c->in[m];
    pe_stats_moments_t mc, mv;
    int rc = pe_stats_moments(in->metric, &in->control, &mc);
    rc = rc ? rc : pe_stats_moments(in->metric, &in->variant, &mv);
    if (rc == 0 && in->cuped) {
        pe_stats_cuped_t cu;
        rc = pe_stats_cuped(in->metric, &in->control, &in->variant, &cu);
        if (rc == 0 && !isnan(cu.theta)) {
            mc = cu.control;
            mv = cu.variant;
        }
    }
    if (rc != 0)
        return PE_EINTERNAL; /* the arms were checked */
    if (mv.variance == 0 && mc.variance > 0)
        mv.variance = mc.variance;
    else if (mc.variance == 0 && mv.variance > 0)
        mc.variance = mv.variance;
    c->scale[m] = fabs(mc.mean);
    c->mean0[m] = mc.mean;
    return pe_stats_difference(&mc, &mv, PE_STATS_ABSOLUTE, &c->d[m]) == 0 ? 0 : PE_EINTERNAL;
}

/* Builds and checks the per-metric stats inputs; refusals name the look's field. */
static int look_open(look_t *c, const pe_experiments_plan_t *plan,
                     const pe_experiments_look_t *look, pe_refusal_t *err)
{
    c->plan = plan;
    c->look = look;
    c->name = look->primary_name && look->primary_name[0] ? look->primary_name : "primary metric";
    if ((unsigned)look->primary_type > PE_STATS_MEAN)
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "look.primaryType: must be proportion or mean");
    if (!(look->runtime_days >= 0) || !isfinite(look->runtime_days))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "look.runtimeDays: must be a finite number ≥ 0");
    if (look->extended && isnan(plan->max_window_days))
        return pe_refuse(err, PE_EINVAL, "inconsistent",
                         "look.extended: the plan allows no extension (no maxWindowDays)");
    c->tuning = pe_experiments_tuning(plan);
    /* Rule 2 spends alpha in all, split (Bonferroni) over its families (header, "Windows"):
     * profit per visitor always, the primary when a whole-experiment trigger watches it, each
     * windowed trigger on its own and within it over its J windows. Triggers of one family
     * share its test, so they cost nothing more. */
    int families = 1;
    bool primary_family = false;
    for (size_t i = 0; i < plan->n_triggers; i++) {
        if (pe_experiments_trigger_windowed(plan, i))
            families++;
        else if (plan->triggers[i].metric == PE_EXPERIMENTS_PRIMARY)
            primary_family = true;
    }
    families += primary_family;
    c->alpha_monitor = plan->alpha / families;
    for (size_t i = 0; i < plan->n_triggers; i++)
        c->alpha_trigger[i] =
            pe_experiments_trigger_windowed(plan, i)
                ? c->alpha_monitor / ceil(horizon(plan) / plan->triggers[i].window_days)
                : c->alpha_monitor;
    for (int m = 0; m < NSERIES; m++) {
        size_t i = (size_t)(m - WINDOWED);
        if (m >= WINDOWED && !pe_experiments_trigger_windowed(plan, i))
            continue;
        const pe_experiments_trigger_t *t = m >= WINDOWED ? &plan->triggers[i] : NULL;
        int metric = t ? (int)t->metric : m;
        /* a windowed trigger reads its own window's arms once the window is shorter than the
         * experiment; before, the window holds every unit */
        bool own = t && look->runtime_days > t->window_days;
        if (own && !look->trigger_given[i])
            return pe_refuse(err, PE_EINVAL, "missing_field",
                             "look.triggerArms[%zu]: trigger %zu's %.17g-day window is shorter "
                             "than the runtime: its arms over the window are needed",
                             i, i, t->window_days);
        pe_stats_input_t *in = &c->in[m];
        pe_stats_input_defaults(in);
        in->metric = metric == PE_EXPERIMENTS_PRIMARY ? look->primary_type : PE_STATS_MEAN;
        in->difference = PE_STATS_RELATIVE;
        in->alpha = plan->alpha;
        in->cuped = !t && plan->cuped && look->has_covariate;
        in->sequential_tuning = c->tuning;
        in->split[0] = plan->split[0];
        in->split[1] = plan->split[1];
        const pe_stats_arm_t *arms = own                                ? look->trigger_arms[i]
                                     : metric == PE_EXPERIMENTS_PRIMARY ? look->primary
                                                                        : look->profit;
        in->control = arms[PE_EXPERIMENTS_CONTROL];
        in->variant = arms[PE_EXPERIMENTS_TREATMENT];
        if (t) { /* never CUPED: no covariate is asked of a window */
            in->control.pre_sum = in->control.pre_sum_squares = in->control.sum_products = 0;
            in->variant.pre_sum = in->variant.pre_sum_squares = in->variant.sum_products = 0;
        }
        pe_refusal_t inner;
        int rc = pe_stats_input_check(in, &inner);
        if (rc != 0) {
            if (t)
                return pe_refuse(err, rc, inner.code,
                                 "look.triggerArms[%zu]: %s (variant = treatment)", i,
                                 inner.message);
            return pe_refuse(err, rc, inner.code, "%s: %s (variant = treatment)",
                             m == PE_EXPERIMENTS_PRIMARY ? "look.primary" : "look.profit",
                             inner.message);
        }
        if (t && (rc = metric_diff(c, m)) != 0)
            return rc;
    }
    for (int k = 0; k < 2; k++) {
        double np = metric_units(c, PE_EXPERIMENTS_PRIMARY, k);
        double nu = metric_units(c, PE_EXPERIMENTS_PROFIT, k);
        if (np > nu)
            return pe_refuse(err, PE_EINVAL, "inconsistent",
                             "look.primary[%d].n: more units (%.17g) than assigned "
                             "(look.profit[%d].n = %.17g)",
                             k, np, k, nu);
    }
    int rc = metric_diff(c, PE_EXPERIMENTS_PRIMARY);
    return rc ? rc : metric_diff(c, PE_EXPERIMENTS_PROFIT);
}

/* One test of metric m — the always-valid sequence (SEQUENTIAL) or Welch (FREQUENTIST) — on
 * the absolute effect, its estimate and interval then divided by |control mean| (NaN when that
 * is 0): the relative figures the rules and the merchant read. */
static int run_test(const look_t *c, int m, pe_stats_method_t method, pe_stats_sides_t sides,
                    double alpha, pe_stats_test_t *out)
{
    int rc = method == PE_STATS_SEQUENTIAL
                 ? pe_stats_sequential(&c->d[m], c->tuning, alpha, sides, out)
                 : pe_stats_welch(&c->d[m], alpha, sides, out);
    if (rc != 0)
        return PE_EINTERNAL; /* inputs and levels were checked */
    double k = c->scale[m] > 0 && isfinite(c->scale[m]) ? 1 / c->scale[m] : NAN;
    out->estimate *= k;
    out->stddev *= k;
    out->ci_low *= k; /* ±INFINITY stays itself: k > 0 */
    out->ci_high *= k;
    /* A rate cannot fall by more than all of it: the interval meets the parameter space. */
    if (c->in[m].metric == PE_STATS_PROPORTION && out->ci_low < -1)
        out->ci_low = -1;
    return 0;
}

static void evidence_clear(pe_experiments_evidence_t *e, pe_experiments_metric_t m)
{
    *e = (pe_experiments_evidence_t){m, PE_STATS_SEQUENTIAL, NAN, NAN, NAN, NAN, NAN, NAN};
}

static void evidence_set(pe_experiments_evidence_t *e, pe_experiments_metric_t m,
                         pe_stats_method_t method, const pe_stats_test_t *t, double alpha)
{
    e->metric = m;
    e->method = method;
    e->effect = t->estimate;
    e->ci_low = t->ci_low;
    e->ci_high = t->ci_high;
    e->p_value = t->p_value;
    e->alpha = alpha;
}

/* The metric's two-sided always-valid figures at the plan's alpha: what a look shows when it
 * decides nothing. */
static int monitor_evidence(const look_t *c, pe_experiments_metric_t m,
                            pe_experiments_evidence_t *e)
{
    pe_stats_test_t t;
    int rc = run_test(c, m, PE_STATS_SEQUENTIAL, PE_STATS_TWO_SIDED, c->plan->alpha, &t);
    if (rc != 0)
        return rc;
    evidence_set(e, m, PE_STATS_SEQUENTIAL, &t, c->plan->alpha);
    e->always_valid_p = t.p_value;
    return 0;
}

/* ---- the merchant's sentence ---------------------------------------------------------------- */

/* "+10.4 %", "−7.9 %", "0.0 %", "n/a". */
static const char *fmt_pct(char *b, size_t n, double x)
{
    if (isnan(x))
        put(b, n, "n/a");
    else if (isinf(x))
        put(b, n, "%s∞", x < 0 ? MINUS : "+");
    else if (fabs(x) < 0.0005)
        put(b, n, "0.0 %%");
    else
        put(b, n, "%s%.1f %%", x < 0 ? MINUS : "+", fabs(100 * x));
    return b;
}

/* "= 0.003", "= 0.62", "< 0.001", "n/a". */
static const char *fmt_p(char *b, size_t n, double p)
{
    if (isnan(p))
        put(b, n, "n/a");
    else if (p < 0.001)
        put(b, n, "< 0.001");
    else if (p < 0.01)
        put(b, n, "= %.3f", p);
    else
        put(b, n, "= %.2f", p);
    return b;
}

/* "21-day", "10.5-day": a window's length as an adjective. */
static const char *fmt_window(char *b, size_t n, double d)
{
    if (d == floor(d))
        put(b, n, "%.0f-day", d);
    else
        put(b, n, "%.1f-day", d);
    return b;
}

/* A whole count with thousands separators: "6,210". */
static const char *fmt_count(char *b, size_t n, double x)
{
    char digits[32];
    put(digits, sizeof digits, "%.0f", x > 0 ? x : 0);
    size_t len = strlen(digits), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            b[o++] = ',';
        b[o++] = digits[i];
    }
    b[o] = '\0';
    return b;
}

/* "14 days", "1 day", "3.5 days". */
static const char *fmt_days(char *b, size_t n, double d)
{
    if (d == floor(d))
        put(b, n, "%.0f day%s", d, d == 1 ? "" : "s");
    else
        put(b, n, "%.1f days", d);
    return b;
}

/* "checkout conversion −7.9 % [−12.1 %, −3.6 %], always-valid p = 0.003 after 6,210 units" */
static void fmt_figures(char *b, size_t n, const char *name, const pe_experiments_evidence_t *e,
                        double units)
{
    char est[32], lo[32], hi[32], p[32], u[32];
    fmt_count(u, sizeof u, units);
    const char *av = e->method == PE_STATS_SEQUENTIAL ? "always-valid " : "";
    int len = utf8_prefix(name, NAME_MAX_BYTES);
    if (isnan(e->effect) && isnan(e->p_value)) {
        put(b, n, "%.*s: no estimate yet after %s units", len, name, u);
        return;
    }
    if (isnan(e->effect)) { /* a test, but no relative effect: the control mean is 0 */
        put(b, n, "%.*s (control at 0), %sp %s after %s units", len, name, av,
            fmt_p(p, sizeof p, e->p_value), u);
        return;
    }
    if (isnan(e->p_value)) { /* an estimate, but no variance to test it with */
        put(b, n, "%.*s %s, no variance yet after %s units", len, name,
            fmt_pct(est, sizeof est, e->effect), u);
        return;
    }
    put(b, n, "%.*s %s [%s, %s], %sp %s after %s units", len, name,
        fmt_pct(est, sizeof est, e->effect), fmt_pct(lo, sizeof lo, e->ci_low),
        fmt_pct(hi, sizeof hi, e->ci_high), av, fmt_p(p, sizeof p, e->p_value), u);
}

/* "profit per visitor +2.0 % [−5.1 %, +9.0 %]" */
static void fmt_effect(char *b, size_t n, const char *name, const pe_experiments_evidence_t *e)
{
    char est[32], lo[32], hi[32];
    put(b, n, "%.*s %s [%s, %s]", utf8_prefix(name, NAME_MAX_BYTES), name,
        fmt_pct(est, sizeof est, e->effect), fmt_pct(lo, sizeof lo, e->ci_low),
        fmt_pct(hi, sizeof hi, e->ci_high));
}

static double units_total(const look_t *c, int m)
{
    return metric_units(c, m, 0) + metric_units(c, m, 1);
}

/* ---- rule 1: sample-ratio mismatch ---------------------------------------------------------- */

static int srm_check(const look_t *c, pe_experiments_decision_t *out, bool *frozen)
{
    pe_stats_srm_t s;
    *frozen = false;
    if (pe_stats_srm(out->units, c->plan->split, 2, &s) != 0)
        return PE_EINTERNAL; /* counts and weights were checked */
    out->srm_p = s.p_value;
    if (!s.mismatch)
        return 0;
    int rc = monitor_evidence(c, PE_EXPERIMENTS_PRIMARY, &out->evidence);
    if (rc != 0)
        return rc;
    char n0[32], n1[32], p[32];
    double w = c->plan->split[0] + c->plan->split[1];
    out->action = PE_EXPERIMENTS_FREEZE_SRM;
    put(out->reason, sizeof out->reason,
        "Sample ratio mismatch: %s control and %s treatment units against a configured "
        "%.0f/%.0f split (p %s); automatic decisions are frozen until the assignment is "
        "fixed.",
        fmt_count(n0, sizeof n0, out->units[0]), fmt_count(n1, sizeof n1, out->units[1]),
        100 * c->plan->split[0] / w, 100 * c->plan->split[1] / w, fmt_p(p, sizeof p, s.p_value));
    *frozen = true;
    return 0;
}

/* ---- rule 2: triggers and the profit guardrail ---------------------------------------------- */

/* One harm check: the series it reads, its level, and what fires it. */
typedef struct {
    int series;   /* PE_EXPERIMENTS_PRIMARY, _PROFIT, or WINDOWED + i */
    double alpha; /* the one-sided level */
    double threshold, min_units;
    bool absolute, strict;
} harm_t;

/* Fires when series h->series is significantly worse by the one-sided always-valid test and
 * its estimate — relative, or for an absolute threshold the treatment's mean — is below the
 * threshold (or at it, unless strict). less[] caches the test per series (one level per
 * series: a whole-experiment series is one family's, a windowed one its trigger's). */
static int check_harm(const look_t *c, const harm_t *h, pe_stats_test_t less[NSERIES],
                      bool done[NSERIES], bool *fires)
{
    int m = h->series;
    *fires = false;
    if (!metric_reaches(c, m, fmax(h->min_units, PE_EXPERIMENTS_MIN_MONITOR_UNITS)))
        return 0;
    if (!done[m]) {
        int rc = run_test(c, m, PE_STATS_SEQUENTIAL, PE_STATS_LESS, h->alpha, &less[m]);
        if (rc != 0)
            return rc;
        done[m] = true;
    }
    double x = h->absolute ? c->mean0[m] + c->d[m].estimate : less[m].estimate;
    *fires = less[m].ci_high < 0 && (h->strict ? x < h->threshold : x <= h->threshold);
    return 0;
}

/* "0.52", "12.4": an absolute level in the sentence. */
static const char *fmt_level(char *b, size_t n, double x)
{
    put(b, n, "%s%.4g", x < 0 ? MINUS : "", fabs(x));
    return b;
}

static int monitor(const look_t *c, pe_experiments_decision_t *out, bool *fired)
{
    const pe_experiments_plan_t *plan = c->plan;
    pe_stats_test_t less[NSERIES];
    bool done[NSERIES] = {false};
    int which = PE_EXPERIMENTS_NO_TRIGGER;
    harm_t h = {0};
    *fired = false;
    for (size_t i = 0; i < plan->n_triggers && which == PE_EXPERIMENTS_NO_TRIGGER; i++) {
        const pe_experiments_trigger_t *t = &plan->triggers[i];
        bool windowed = pe_experiments_trigger_windowed(plan, i);
        h = (harm_t){windowed ? WINDOWED + (int)i : (int)t->metric,
                     c->alpha_trigger[i],
                     t->threshold,
                     t->min_units,
                     t->absolute,
                     t->strict};
        int rc = check_harm(c, &h, less, done, fired);
        if (rc != 0)
            return rc;
        if (*fired)
            which = (int)i;
    }
    if (which == PE_EXPERIMENTS_NO_TRIGGER) {
        h = (harm_t){PE_EXPERIMENTS_PROFIT,
                     c->alpha_monitor,
                     plan->guardrail_threshold,
                     plan->guardrail_min_units,
                     false,
                     false};
        int rc = check_harm(c, &h, less, done, fired);
        if (rc != 0)
            return rc;
        if (!*fired)
            return 0;
        which = PE_EXPERIMENTS_GUARDRAIL;
    }
    /* The lower end of the reported interval is the one-sided "greater" bound at the same
     * alpha, so the pair is a 1 − 2·alpha confidence sequence whose upper end decided. */
    int m = h.series;
    pe_experiments_metric_t metric =
        m >= WINDOWED ? plan->triggers[m - WINDOWED].metric : (pe_experiments_metric_t)m;
    pe_stats_test_t greater;
    int rc = run_test(c, m, PE_STATS_SEQUENTIAL, PE_STATS_GREATER, h.alpha, &greater);
    if (rc != 0)
        return rc;
    out->action = PE_EXPERIMENTS_ROLLBACK;
    out->trigger = which;
    evidence_set(&out->evidence, metric, PE_STATS_SEQUENTIAL, &less[m], h.alpha);
    out->evidence.ci_low = greater.ci_low;
    out->evidence.always_valid_p = less[m].p_value;
    char fig[FIG_LEN], thr[32], lvl[32], name[160], days[32];
    if (m >= WINDOWED)
        put(name, sizeof name, "%.*s over the units of the last %s",
            utf8_prefix(metric_name(c, metric), NAME_MAX_BYTES), metric_name(c, metric),
            fmt_days(days, sizeof days, plan->triggers[m - WINDOWED].window_days));
    else
        put(name, sizeof name, "%s", metric_name(c, metric));
    fmt_figures(fig, sizeof fig, name, &out->evidence, units_total(c, m));
    const char *what = which == PE_EXPERIMENTS_GUARDRAIL ? "profit guardrail" : "rollback trigger";
    const char *cmp = h.strict ? "below" : "at or below";
    if (h.absolute)
        put(out->reason, sizeof out->reason,
            "%s: the treatment at %s, %s the %s of %s, rolled back.", fig,
            fmt_level(lvl, sizeof lvl, c->mean0[m] + c->d[m].estimate), cmp, what,
            fmt_level(thr, sizeof thr, h.threshold));
    else
        put(out->reason, sizeof out->reason, "%s: %s the %s of %s, rolled back.", fig, cmp, what,
            fmt_pct(thr, sizeof thr, h.threshold));
    return 0;
}

/* ---- rule 3: waiting for the window, the sample, the extension ------------------------------ */

/* Decides KEEP_RUNNING, or sets *final (and writes nothing) when the final look is due: at the
 * window with the sample, else at the horizon with what there is. */
static int gate(const look_t *c, pe_experiments_decision_t *out, bool *final)
{
    const pe_experiments_plan_t *plan = c->plan;
    const pe_experiments_look_t *look = c->look;
    bool window = look->runtime_days >= plan->window_days;
    bool sample = metric_reaches(c, PE_EXPERIMENTS_PRIMARY, plan->min_units);
    bool in_extension = look->extended && look->runtime_days < plan->max_window_days;
    /* The horizon ends the wait for the sample: an experiment always ends. */
    bool at_horizon = look->runtime_days >= horizon(plan);
    *final = window && (sample || at_horizon) && !in_extension;
    if (*final)
        return 0;
    int rc = monitor_evidence(c, PE_EXPERIMENTS_PRIMARY, &out->evidence);
    if (rc != 0)
        return rc;
    char fig[FIG_LEN], d1[32], d2[32], u1[32], u2[32];
    fmt_figures(fig, sizeof fig, c->name, &out->evidence, units_total(c, PE_EXPERIMENTS_PRIMARY));
    double short_arm = fmin(metric_units(c, PE_EXPERIMENTS_PRIMARY, 0),
                            metric_units(c, PE_EXPERIMENTS_PRIMARY, 1));
    fmt_count(u1, sizeof u1, plan->min_units);
    fmt_count(u2, sizeof u2, short_arm);
    out->action = PE_EXPERIMENTS_KEEP_RUNNING;
    fmt_days(d2, sizeof d2, look->runtime_days);
    if (in_extension)
        put(out->reason, sizeof out->reason,
            "%s; extended once: the final look is at %s (%s so far).", fig,
            fmt_days(d1, sizeof d1, plan->max_window_days), d2);
    else if (!window && !sample)
        put(out->reason, sizeof out->reason,
            "%s; the proof waits for %s (%s so far) and %s units per arm (%s so far).", fig,
            fmt_days(d1, sizeof d1, plan->window_days), d2, u1, u2);
    else if (!window)
        put(out->reason, sizeof out->reason, "%s; the proof waits for %s (%s so far).", fig,
            fmt_days(d1, sizeof d1, plan->window_days), d2);
    else
        put(out->reason, sizeof out->reason,
            "%s; the proof waits for %s units per arm (%s so far).", fig, u1, u2);
    return 0;
}

/* ---- rule 4: the final look ---------------------------------------------------------------- */

static int final_look(const look_t *c, pe_experiments_decision_t *out)
{
    const pe_experiments_plan_t *plan = c->plan;
    const pe_experiments_look_t *look = c->look;
    bool has_max = !isnan(plan->max_window_days);
    bool before_max = has_max && look->runtime_days < plan->max_window_days;
    /* Two final looks are possible exactly when an extension may still follow this one or
     * this one ends it: each then gets alpha/2 (Bonferroni), see the header. */
    double alpha_f = has_max && (look->extended || before_max) ? plan->alpha / 2 : plan->alpha;

    pe_stats_test_t primary, primary_av, profit_less, profit_greater;
    int rc = run_test(c, PE_EXPERIMENTS_PRIMARY, PE_STATS_FREQUENTIST, PE_STATS_TWO_SIDED, alpha_f,
                      &primary);
    rc = rc ? rc
            : run_test(c, PE_EXPERIMENTS_PRIMARY, PE_STATS_SEQUENTIAL, PE_STATS_TWO_SIDED,
                       plan->alpha, &primary_av);
    /* The guardrail: the one-sided test of "worse" at alpha; the "greater" bound at alpha
     * completes the interval for the sentence (a 1 − 2·alpha interval). */
    rc = rc ? rc
            : run_test(c, PE_EXPERIMENTS_PROFIT, PE_STATS_FREQUENTIST, PE_STATS_LESS, plan->alpha,
                       &profit_less);
    rc = rc ? rc
            : run_test(c, PE_EXPERIMENTS_PROFIT, PE_STATS_FREQUENTIST, PE_STATS_GREATER,
                       plan->alpha, &profit_greater);
    if (rc != 0)
        return rc;

    evidence_set(&out->evidence, PE_EXPERIMENTS_PRIMARY, PE_STATS_FREQUENTIST, &primary, alpha_f);
    out->evidence.always_valid_p = primary_av.p_value;
    evidence_set(&out->guardrail, PE_EXPERIMENTS_PROFIT, PE_STATS_FREQUENTIST, &profit_less,
                 plan->alpha);
    out->guardrail.ci_low = profit_greater.ci_low;

    /* p NaN (no inference) is not significant; the direction is the absolute estimate's, which
     * exists even where the relative one does not (a control mean of 0) */
    bool significant = primary.p_value < alpha_f;
    bool better = significant && c->d[PE_EXPERIMENTS_PRIMARY].estimate > 0;
    bool worse = significant && c->d[PE_EXPERIMENTS_PRIMARY].estimate < 0;
    bool profit_worse = profit_less.ci_high < 0;

    char fig[FIG_LEN], gfig[FIG_LEN], d[32], level[96] = "";
    fmt_days(d, sizeof d, look->runtime_days);
    if (alpha_f < plan->alpha)
        put(level, sizeof level, " (with two final looks, each needs p < %g)", alpha_f);
    if (better && !profit_worse) {
        out->action = PE_EXPERIMENTS_PROVE;
        fmt_figures(fig, sizeof fig, c->name, &out->evidence,
                    units_total(c, PE_EXPERIMENTS_PRIMARY));
        fmt_effect(gfig, sizeof gfig, "profit per visitor", &out->guardrail);
        put(out->reason, sizeof out->reason, "%s and %s; %s is not significantly worse. Proven.",
            fig, d, gfig);
    } else if (better) {
        /* A win on the primary paid for with profit is a loser for the merchant. */
        out->action = PE_EXPERIMENTS_ROLLBACK_LOSER;
        fmt_effect(fig, sizeof fig, c->name, &out->evidence);
        out->evidence = out->guardrail;
        fmt_figures(gfig, sizeof gfig, "profit per visitor", &out->guardrail,
                    units_total(c, PE_EXPERIMENTS_PROFIT));
        put(out->reason, sizeof out->reason,
            "%s and %s: significantly worse, although %s is better. Not proven, rolled "
            "back.",
            gfig, d, fig);
    } else {
        fmt_figures(fig, sizeof fig, c->name, &out->evidence,
                    units_total(c, PE_EXPERIMENTS_PRIMARY));
        if (worse) {
            out->action = PE_EXPERIMENTS_ROLLBACK_LOSER;
            put(out->reason, sizeof out->reason, "%s and %s: significantly worse, rolled back.",
                fig, d);
        } else if (has_max && !look->extended && before_max) {
            char m[32];
            out->action = PE_EXPERIMENTS_EXTEND;
            put(out->reason, sizeof out->reason,
                "%s and %s: not significant yet%s; extended once, to %s.", fig, d, level,
                fmt_days(m, sizeof m, plan->max_window_days));
        } else {
            out->action = PE_EXPERIMENTS_ROLLBACK_INCONCLUSIVE;
            put(out->reason, sizeof out->reason,
                "%s and %s: no significant difference%s, rolled back.", fig, d, level);
        }
    }
    if (!metric_reaches(c, PE_EXPERIMENTS_PRIMARY, plan->min_units)) {
        /* the horizon came first: said, so that a short test is read as one */
        char u1[32], u2[32], w[32];
        fmt_count(u1, sizeof u1, plan->min_units);
        fmt_count(u2, sizeof u2,
                  fmin(metric_units(c, PE_EXPERIMENTS_PRIMARY, 0),
                       metric_units(c, PE_EXPERIMENTS_PRIMARY, 1)));
        size_t len = strlen(out->reason);
        put(out->reason + len, sizeof out->reason - len,
            " The %s window ended with %s of the planned %s units per arm.",
            fmt_window(w, sizeof w, horizon(plan)), u2, u1);
    }
    return 0;
}

/* ---- the decision ------------------------------------------------------------------------- */

static void decision_clear(pe_experiments_decision_t *out)
{
    memset(out, 0, sizeof *out); /* the reason's tail too: equal looks give equal bytes */
    out->action = PE_EXPERIMENTS_KEEP_RUNNING;
    out->trigger = PE_EXPERIMENTS_NO_TRIGGER;
    evidence_clear(&out->evidence, PE_EXPERIMENTS_PRIMARY);
    evidence_clear(&out->guardrail, PE_EXPERIMENTS_PROFIT);
    out->units[0] = NAN;
    out->units[1] = NAN;
    out->srm_p = NAN;
    out->reason[0] = '\0';
}

int pe_experiments_decide(const pe_experiments_plan_t *plan, const pe_experiments_look_t *look,
                          pe_experiments_decision_t *out, pe_refusal_t *err)
{
    int rc = PE_EINTERNAL;
    look_t c;
    bool decided = false, final = false;
    decision_clear(out);
    rc = pe_experiments_plan_check(plan, err);
    if (rc != 0)
        goto out;
    rc = look_open(&c, plan, look, err);
    if (rc != 0)
        goto out;
    out->units[0] = metric_units(&c, PE_EXPERIMENTS_PROFIT, 0);
    out->units[1] = metric_units(&c, PE_EXPERIMENTS_PROFIT, 1);

    rc = srm_check(&c, out, &decided);
    if (rc == 0 && !decided)
        rc = monitor(&c, out, &decided);
    if (rc == 0 && !decided)
        rc = gate(&c, out, &final);
    if (rc == 0 && final)
        rc = final_look(&c, out);
out:
    if (rc == PE_EINTERNAL)
        pe_refuse(err, PE_EINTERNAL, "internal", "statistics: a numerical routine failed");
    if (rc != 0) {
        decision_clear(out);
        put(out->reason, sizeof out->reason, "No decision: the look was refused.");
    }
    utf8_trim(out->reason);
    return rc;
}
