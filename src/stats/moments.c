/*
 * moments.c — from sufficient statistics to per-arm means and variances, and from two arms'
 * moments to the effect (absolute or relative) with the two parts of its variance.
 *
 * Invariants:
 *  1. Mean metric: mean = sum/n, variance = (sumSquares − sum²/n)/(n − 1), the centred sum
 *     formed in long double so that sumSquares ≈ sum²/n (tiny variances) keeps its digits.
 *     Proportion: p = sum/n, variance = p(1 − p), formed as (sum/n)·((n − sum)/n).
 *  2. A centred sum that is negative by more than CENTRED_SLACK·sumSquares is refused
 *     (sumSquares inconsistent with sum); within the slack (the rounding of a client's sums)
 *     it is 0.
 *  3. Undefined is NaN, never a division by zero: mean needs n ≥ 1, a mean metric's variance
 *     n ≥ 2, an effect both arms defined, a relative effect a non-zero control mean.
 *  4. An effect or variance beyond a double's range is undefined (NaN), never infinite.
 *  5. Relative effect (m_v − m_c)/|m_c|, delta-method variance parts
 *     v_v/(n_v·m_c²) and v_c·m_v²/(n_c·m_c⁴).
 */
#include "stats_internal.h"

/* Relative slack on sumSquares − sum²/n < 0 before the input counts as inconsistent. */
#define CENTRED_SLACK 1e-9

/* Σ(y − ȳ)² from sums, in long double; NaN when it is negative beyond the slack. */
static double centred(double n, double sum, double sum_squares)
{
    long double c = (long double)sum_squares - (long double)sum * (long double)sum / n;
    if (c >= 0)
        return (double)c;
    return -c <= CENTRED_SLACK * fabs(sum_squares) ? 0.0 : NAN;
}

int pe_stats_moments(pe_stats_metric_t metric, const pe_stats_arm_t *arm, pe_stats_moments_t *out)
{
    out->n = arm->n;
    out->mean = NAN;
    out->variance = NAN;
    if (!(arm->n >= 0) || !stats_finite(arm->n) || !stats_finite(arm->sum))
        return PE_EINVAL;
    if (arm->n == 0)
        return arm->sum == 0 ? 0 : PE_EINVAL;
    out->mean = arm->sum / arm->n;
    if (metric == PE_STATS_PROPORTION) {
        if (arm->sum < 0 || arm->sum > arm->n)
            return PE_EINVAL;
        out->variance = out->mean * ((arm->n - arm->sum) / arm->n);
        return 0;
    }
    if (!stats_finite(arm->sum_squares) || arm->sum_squares < 0)
        return PE_EINVAL;
    double c = centred(arm->n, arm->sum, arm->sum_squares);
    if (isnan(c))
        return PE_EINVAL;
    if (arm->n >= 2)
        out->variance = c / (arm->n - 1);
    return 0;
}

int pe_stats_difference(const pe_stats_moments_t *control, const pe_stats_moments_t *variant,
                        pe_stats_difference_t kind, pe_stats_diff_t *out)
{
    out->estimate = NAN;
    out->var_variant = NAN;
    out->var_control = NAN;
    out->n_variant = variant->n;
    out->n_control = control->n;
    double mc = control->mean, mv = variant->mean;
    if (!(control->n >= 1) || !(variant->n >= 1) || isnan(mc) || isnan(mv))
        return 0;
    double vc = control->variance, vv = variant->variance;
    if (kind == PE_STATS_ABSOLUTE) {
        out->estimate = mv - mc;
        out->var_variant = vv / variant->n;
        out->var_control = vc / control->n;
    } else {
        if (mc == 0)
            return 0;
        double mc2 = mc * mc;
        out->estimate = (mv - mc) / fabs(mc);
        out->var_variant = vv / (variant->n * mc2);
        out->var_control = vc * (mv / mc2) * (mv / mc2) / control->n;
    }
    /* Beyond a double's range (a control mean near 0 against huge values): undefined. */
    if (!stats_finite(out->estimate) || isinf(out->var_variant) || isinf(out->var_control) ||
        isinf(out->var_variant + out->var_control)) {
        out->estimate = NAN;
        out->var_variant = NAN;
        out->var_control = NAN;
    }
    return 0;
}
