/*
 * check.c — validation of an analysis input and of a proof plan, whichever way they arrived
 * (the JSON parser, or a module filling the structs): the numeric functions may assume what
 * is checked here.
 *
 * Invariants:
 *  1. Every refusal is PE_EINVAL with a code ("out_of_range", "inconsistent") and a message
 *     "<field>: <why>" naming the field as the JSON spells it ("variant.sumSquares").
 *  2. Counts are integers in [0, 2^53]; every other number is finite and at most
 *     PE_STATS_MAX_MAGNITUDE in magnitude, so no intermediate overflows a double.
 *  3. Consistency: a proportion's conversions lie in [0, n] and equal sumSquares; a mean
 *     metric's sumSquares ≥ sum²/n; the covariate's preSumSquares ≥ preSum²/n and
 *     (Σxy − ΣxΣy/n)² ≤ (Σx² − (Σx)²/n)(Σy² − (Σy)²/n) (Cauchy–Schwarz), each up to a
 *     relative slack of CHECK_SLACK for a client's rounding; an empty arm has all sums 0.
 */
#include <string.h>

#include "stats_internal.h"

#define PE_STATS_MAX_MAGNITUDE 1e100
#define CHECK_SLACK            1e-9

static bool is_count(double x)
{
    return x >= 0 && x <= PE_STATS_MAX_UNITS && floor(x) == x;
}

static bool in_magnitude(double x)
{
    return stats_finite(x) && fabs(x) <= PE_STATS_MAX_MAGNITUDE;
}

static int refuse_range(pe_refusal_t *err, const char *arm, const char *field, const char *why)
{
    return pe_refuse(err, PE_EINVAL, "out_of_range", "%s%s%s: %s", arm ? arm : "", arm ? "." : "",
                     field, why);
}

/* Centred sum of products a·b minus its slack; negative means inconsistent. */
static long double centred(double n, double sa, double sb, double sab)
{
    return (long double)sab - (long double)sa * (long double)sb / n;
}

static int check_covariate(const pe_stats_arm_t *a, pe_stats_metric_t metric, const char *name,
                           pe_refusal_t *err)
{
    if (!in_magnitude(a->pre_sum))
        return refuse_range(err, name, "preSum", "must be a finite number (|x| ≤ 1e100)");
    if (!in_magnitude(a->pre_sum_squares) || a->pre_sum_squares < 0)
        return refuse_range(err, name, "preSumSquares", "must be a finite number ≥ 0");
    if (!in_magnitude(a->sum_products))
        return refuse_range(err, name, "sumProducts", "must be a finite number (|x| ≤ 1e100)");
    if (a->n == 0) {
        if (a->pre_sum != 0 || a->pre_sum_squares != 0 || a->sum_products != 0)
            return pe_refuse(err, PE_EINVAL, "inconsistent",
                             "%s: preSum, preSumSquares and sumProducts must be 0 when n is 0",
                             name);
        return 0;
    }
    long double cxx = centred(a->n, a->pre_sum, a->pre_sum, a->pre_sum_squares);
    if (cxx < -CHECK_SLACK * a->pre_sum_squares)
        return pe_refuse(err, PE_EINVAL, "inconsistent", "%s.preSumSquares: smaller than preSum²/n",
                         name);
    double ss = metric == PE_STATS_PROPORTION ? a->sum : a->sum_squares;
    long double cyy = centred(a->n, a->sum, a->sum, ss);
    long double cxy = centred(a->n, a->pre_sum, a->sum, a->sum_products);
    if (cxx < 0)
        cxx = 0;
    if (cyy < 0)
        cyy = 0;
    long double bound = cxx * cyy * (1 + CHECK_SLACK) +
                        CHECK_SLACK * (long double)fabs(a->pre_sum_squares) * (long double)ss;
    if (cxy * cxy > bound)
        return pe_refuse(err, PE_EINVAL, "inconsistent",
                         "%s.sumProducts: impossible for these sums (|covariance| exceeds "
                         "the product of the standard deviations)",
                         name);
    return 0;
}

static int check_arm(const pe_stats_input_t *in, const pe_stats_arm_t *a, const char *name,
                     pe_refusal_t *err)
{
    if (!is_count(a->n))
        return refuse_range(err, name, "n", "must be an integer in [0, 2^53]");
    if (!in_magnitude(a->sum))
        return refuse_range(err, name, "sum", "must be a finite number (|x| ≤ 1e100)");
    if (in->metric == PE_STATS_PROPORTION) {
        if (!is_count(a->sum))
            return refuse_range(err, name, "sum", "conversions must be an integer ≥ 0");
        if (a->sum > a->n)
            return pe_refuse(err, PE_EINVAL, "inconsistent",
                             "%s.sum: more conversions (%.17g) than n (%.17g)", name, a->sum, a->n);
        if (a->sum_squares != a->sum)
            return pe_refuse(err, PE_EINVAL, "inconsistent",
                             "%s.sumSquares: must equal sum for a proportion", name);
    } else {
        if (!in_magnitude(a->sum_squares) || a->sum_squares < 0)
            return refuse_range(err, name, "sumSquares", "must be a finite number ≥ 0");
        if (a->n == 0 && (a->sum != 0 || a->sum_squares != 0))
            return pe_refuse(err, PE_EINVAL, "inconsistent",
                             "%s: sum and sumSquares must be 0 when n is 0", name);
        if (a->n > 0 && centred(a->n, a->sum, a->sum, a->sum_squares) <
                            -CHECK_SLACK * (long double)a->sum_squares)
            return pe_refuse(err, PE_EINVAL, "inconsistent", "%s.sumSquares: smaller than sum²/n",
                             name);
    }
    return in->cuped ? check_covariate(a, in->metric, name, err) : 0;
}

int pe_stats_input_check(const pe_stats_input_t *in, pe_refusal_t *err)
{
    if ((unsigned)in->metric > PE_STATS_MEAN)
        return refuse_range(err, NULL, "metricType", "must be proportion or mean");
    if ((unsigned)in->method > PE_STATS_SEQUENTIAL)
        return refuse_range(err, NULL, "method", "must be frequentist, bayesian or sequential");
    if ((unsigned)in->sides > PE_STATS_LESS)
        return refuse_range(err, NULL, "sides", "must be two, greater or less");
    if ((unsigned)in->difference > PE_STATS_ABSOLUTE)
        return refuse_range(err, NULL, "difference", "must be relative or absolute");
    if (!(in->alpha > 0 && in->alpha <= 0.5))
        return refuse_range(err, NULL, "alpha", "must be in (0, 0.5]");
    if (!(in->sequential_tuning > 0) || !in_magnitude(in->sequential_tuning))
        return refuse_range(err, NULL, "sequentialTuning", "must be a finite number > 0");
    if (in->has_prior) {
        if (!in_magnitude(in->prior.mean))
            return refuse_range(err, NULL, "prior.mean", "must be a finite number");
        if (!(in->prior.variance > 0) || !in_magnitude(in->prior.variance))
            return refuse_range(err, NULL, "prior.variance", "must be a finite number > 0");
    }
    for (int i = 0; i < 2; i++)
        if (!(in->split[i] >= 0) || !in_magnitude(in->split[i]))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "split[%d]: must be a finite number ≥ 0", i);
    if (!(in->split[0] + in->split[1] > 0))
        return refuse_range(err, NULL, "split", "needs a weight > 0");
    if (!(in->power > in->alpha && in->power < 1))
        return refuse_range(err, NULL, "power", "must be in (alpha, 1)");
    if (!isnan(in->mde) && (!(in->mde > 0) || !in_magnitude(in->mde)))
        return refuse_range(err, NULL, "mde", "must be a finite number > 0");
    int rc = check_arm(in, &in->control, "control", err);
    return rc ? rc : check_arm(in, &in->variant, "variant", err);
}

void pe_stats_plan_defaults(pe_stats_plan_t *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->method = PE_STATS_FREQUENTIST;
    plan->alpha = PE_STATS_DEFAULT_ALPHA;
    plan->min_units = 0;
    plan->min_runtime_days = PE_STATS_DEFAULT_MIN_RUNTIME;
    plan->max_runtime_days = NAN;
}

int pe_stats_plan_check(const pe_stats_plan_t *plan, pe_refusal_t *err)
{
    if ((unsigned)plan->method > PE_STATS_SEQUENTIAL)
        return refuse_range(err, NULL, "plan.method",
                            "must be frequentist, bayesian or sequential");
    if (!(plan->alpha > 0 && plan->alpha <= 0.5))
        return refuse_range(err, NULL, "plan.alpha", "must be in (0, 0.5]");
    if (!is_count(plan->min_units))
        return refuse_range(err, NULL, "plan.minSampleSize", "must be an integer in [0, 2^53]");
    if (!(plan->min_runtime_days >= 0) || !in_magnitude(plan->min_runtime_days))
        return refuse_range(err, NULL, "plan.minRuntimeDays", "must be a finite number ≥ 0");
    if (!isnan(plan->max_runtime_days) && (!in_magnitude(plan->max_runtime_days) ||
                                           !(plan->max_runtime_days >= plan->min_runtime_days)))
        return refuse_range(err, NULL, "plan.maxRuntimeDays",
                            "must be a finite number ≥ minRuntimeDays");
    if (plan->n_triggers > PE_STATS_MAX_TRIGGERS)
        return refuse_range(err, NULL, "plan.rollbackTriggers", "at most 8 triggers");
    for (size_t i = 0; i < plan->n_triggers; i++) {
        const pe_stats_trigger_t *t = &plan->triggers[i];
        if (!(t->relative_change <= 0) || !in_magnitude(t->relative_change))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "plan.rollbackTriggers[%zu].relativeChange: must be a finite "
                             "number ≤ 0",
                             i);
        if (!(t->alpha > 0 && t->alpha <= 0.5))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "plan.rollbackTriggers[%zu].alpha: must be in (0, 0.5]", i);
    }
    return 0;
}
