/*
 * bayes.c — the Gaussian Bayesian model of an effect: chance to beat control, credible
 * interval and expected loss (risk) of either choice.
 *
 * Invariants:
 *  1. Likelihood: estimate ~ N(effect, se²) with se² the effect's variance (delta method for
 *     relative effects). Flat prior: posterior N(estimate, se²). Proper prior N(m0, τ²):
 *     precisions add, 1/s² = 1/se² + 1/τ², and μ = s²(estimate/se² + m0/τ²).
 *  2. chanceToWin = P(effect > 0) = Φ(μ/s). Credible interval: two-sided μ ± z(1 − α/2)·s;
 *     "greater" [μ − z(1 − α)·s, +∞); "less" (−∞, μ + z(1 − α)·s].
 *  3. Risk (expected loss, in the effect's units): of choosing control E[max(effect, 0)] =
 *     s·(φ(z) + zΦ(z)); of choosing variant E[max(−effect, 0)] = s·(φ(z) − z·Q(z)), z = μ/s.
 *     Both ≥ 0 and their difference is μ.
 *  4. se = 0 or an undefined effect gives no posterior: NaN everywhere but mean.
 */
#include "stats_internal.h"

/* E[max(X, 0)] for X ~ N(z, 1). φ(z) − |z|Q(|z|) for z < 0 loses only ~2·log10|z| digits. */
static double positive_part(double z)
{
    double g = z >= 0 ? stats_norm_pdf(z) + z * (1.0 - stats_norm_upper(z))
                      : stats_norm_pdf(z) - (-z) * stats_norm_upper(-z);
    return g > 0 ? g : 0;
}

int pe_stats_bayes(const pe_stats_diff_t *d, const pe_stats_prior_t *prior, double alpha,
                   pe_stats_sides_t sides, pe_stats_posterior_t *out)
{
    out->mean = d->estimate;
    out->stddev = NAN;
    out->ci_low = NAN;
    out->ci_high = NAN;
    out->chance_to_win = NAN;
    out->risk_control = NAN;
    out->risk_variant = NAN;
    if (!(alpha > 0 && alpha < 1))
        return PE_EINVAL;
    if (prior &&
        (!stats_finite(prior->mean) || !(prior->variance > 0) || !stats_finite(prior->variance)))
        return PE_EINVAL;
    double var = d->var_variant + d->var_control;
    if (isnan(d->estimate) || isnan(var) || var == 0)
        return 0;
    double mu = d->estimate, s2 = var;
    if (prior) {
        double prec = 1 / var + 1 / prior->variance;
        s2 = 1 / prec;
        mu = s2 * (d->estimate / var + prior->mean / prior->variance);
    }
    double s = sqrt(s2), z = mu / s, crit;
    int rc = stats_norm_quantile_upper(sides == PE_STATS_TWO_SIDED ? alpha / 2 : alpha, &crit);
    if (rc != 0)
        return rc;
    out->mean = mu;
    out->stddev = s;
    out->ci_low = sides == PE_STATS_LESS ? -INFINITY : mu - crit * s;
    out->ci_high = sides == PE_STATS_GREATER ? INFINITY : mu + crit * s;
    out->chance_to_win = stats_norm_upper(-z);
    out->risk_control = s * positive_part(z);
    out->risk_variant = s * positive_part(-z);
    return 0;
}
