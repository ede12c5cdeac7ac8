/*
 * sequential.c — the always-valid confidence sequence and p-value behind automatic monitoring
 * and rollback: look as often as you like, the chance of ever excluding a true effect stays ≤ α.
 *
 * The boundary is Robbins' normal mixture (Howard, Ramdas, McAuliffe, Sekhon 2021, "Time-
 * uniform, nonparametric, nonasymptotic confidence sequences", §3.5), used as the asymptotic
 * confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy, Ramdas (2023), "Time-uniform
 * central limit theory and asymptotic confidence sequences", Prop. 2.5 — the form GrowthBook
 * ships. With
 *   N   = n_c + n_v, the units seen so far (the sequence's time),
 *   se  = the effect's standard error now (as in the fixed-horizon test),
 *   T   = the tuning parameter ("sequentialTuning", default 5000),
 *   ρ²  = (−2 ln α + ln(1 − 2 ln α)) / T,   which makes the sequence tightest at N = T,
 *   se' = se · √(1 + 1/(Nρ²)),
 * the mixture martingale for "effect = δ" is, with z = (estimate − δ)/se':
 *   two-sided (λ ~ N(0, ρ²) mixing):      M = exp(z²/2) / √(Nρ² + 1)
 *   one-sided (half-normal mixing, λ ≥ 0): M = 2·Φ(z)·exp(z²/2) / √(Nρ² + 1)
 * and Ville's inequality gives P(∃N: M_N ≥ 1/α) ≤ α. Hence:
 *   two-sided CS:  estimate ± se'·√(2 ln(√(Nρ² + 1)/α))
 *                 (= se·√(2(Nρ²+1)/(Nρ²) · ln(√(Nρ²+1)/α)), Waudby-Smith et al.'s margin with
 *                 σ = se·√N, t = N);
 *   "greater" CS:  [estimate − c·se', +∞), c solving 2Φ(c)·exp(c²/2) = √(Nρ² + 1)/α;
 *   "less" CS:     (−∞, estimate + c·se'];
 *   p-value:       min(1, 1/M) at δ = 0 (z = ±estimate/se' for greater/less).
 * ρ thus enters only through Nρ²: a larger T (smaller ρ) widens the sequence early and
 * tightens it late.
 *
 * Invariants:
 *  1. The interval always contains the estimate and is never narrower than the fixed-horizon
 *     normal interval at the same α.
 *  2. Computed in logs (ln M, ln Φ) so that huge z neither overflows nor loses the p-value.
 *  3. se = 0 or an undefined effect gives no inference (NaN), as in the other methods.
 */
#include "stats_internal.h"

#define BISECT_STEPS 200

double pe_stats_sequential_rho(double alpha, double tuning)
{
    double l = -2 * log(alpha);
    return sqrt((l + log1p(l)) / tuning);
}

/* ln M at standardised distance z for the mixture of `sides`. */
static int log_mixture(double z, double nrho2, bool one_sided, double *out)
{
    double lm = z * z / 2 - 0.5 * log1p(nrho2);
    if (one_sided) {
        double lphi;
        int rc = stats_log_norm_cdf(z, &lphi);
        if (rc != 0)
            return rc;
        lm += M_LN2 + lphi;
    }
    *out = lm;
    return 0;
}

/* The c with ln(2Φ(c)) + c²/2 = level (> 0), by bisection on [0, √(2·level)]. */
static int one_sided_critical(double level, double *c)
{
    double lo = 0, hi = sqrt(2 * level);
    for (int i = 0; i < BISECT_STEPS && hi - lo > 1e-15 * hi; i++) {
        double mid = 0.5 * (lo + hi), lphi;
        int rc = stats_log_norm_cdf(mid, &lphi);
        if (rc != 0)
            return rc;
        if (mid * mid / 2 + M_LN2 + lphi < level)
            lo = mid;
        else
            hi = mid;
    }
    *c = 0.5 * (lo + hi);
    return 0;
}

int pe_stats_sequential(const pe_stats_diff_t *d, double tuning, double alpha,
                        pe_stats_sides_t sides, pe_stats_test_t *out)
{
    pe_stats_init();
    out->estimate = d->estimate;
    out->stddev = NAN;
    out->ci_low = NAN;
    out->ci_high = NAN;
    out->p_value = NAN;
    out->df = NAN;
    if (!(alpha > 0 && alpha < 1) || !(tuning > 0) || !stats_finite(tuning))
        return PE_EINVAL;
    double var = d->var_variant + d->var_control, n = d->n_control + d->n_variant;
    if (isnan(d->estimate) || isnan(var))
        return 0;
    if (var == 0) {
        out->stddev = 0;
        return 0;
    }
    double rho = pe_stats_sequential_rho(alpha, tuning);
    double nrho2 = n * rho * rho;
    double se = sqrt(var), se_mix = se * sqrt(1 + 1 / nrho2);
    double level = 0.5 * log1p(nrho2) - log(alpha); /* ln(√(Nρ²+1)/α) */
    bool one_sided = sides != PE_STATS_TWO_SIDED;
    double z = d->estimate / se_mix, c, lm;
    if (sides == PE_STATS_LESS)
        z = -z;
    int rc = log_mixture(z, nrho2, one_sided, &lm);
    if (rc == 0 && one_sided)
        rc = one_sided_critical(level, &c);
    else
        c = sqrt(2 * level);
    if (rc != 0)
        return rc;
    out->stddev = se;
    out->p_value = lm <= 0 ? 1.0 : exp(-lm);
    out->ci_low = sides == PE_STATS_LESS ? -INFINITY : d->estimate - c * se_mix;
    out->ci_high = sides == PE_STATS_GREATER ? INFINITY : d->estimate + c * se_mix;
    return 0;
}
