/*
 * cuped.c — CUPED (Deng, Xu, Kohavi, Walker 2013): variance reduction with a pre-period
 * covariate x of the metric y, from sums only.
 *
 * Invariants:
 *  1. θ = (C_xy,c + C_xy,v) / (C_xx,c + C_xx,v), C the within-arm centred sums of products —
 *     the pooled within-arm covariance over the pooled within-arm variance, each with n − 1
 *     denominators, which cancel. Pooling within arms keeps a treatment effect on y out of θ.
 *  2. Per arm: adjusted mean ȳ − θ(x̄ − x̄_both) (x̄_both over both arms, so the adjusted
 *     difference is Δȳ − θΔx̄); adjusted variance v_y + θ²v_x − 2θ·c_xy with v_x = C_xx/(n−1),
 *     c_xy = C_xy/(n−1) and v_y the arm's variance per the conventions (p(1−p) for
 *     proportions), clamped at 0.
 *  3. Variance reduction = 1 − Σ adj_var/n over Σ var/n: the share of the absolute effect's
 *     variance removed.
 *  4. θ undefined (an arm with n < 2, or a covariate without variance) leaves the plain
 *     moments, θ and the reduction NaN: the analysis proceeds unadjusted.
 */
#include "stats_internal.h"

static long double centred_products(double n, double sa, double sb, double sab)
{
    return (long double)sab - (long double)sa * (long double)sb / n;
}

int pe_stats_cuped(pe_stats_metric_t metric, const pe_stats_arm_t *control,
                   const pe_stats_arm_t *variant, pe_stats_cuped_t *out)
{
    out->theta = NAN;
    out->variance_reduction = NAN;
    int rc = pe_stats_moments(metric, control, &out->control);
    rc = rc ? rc : pe_stats_moments(metric, variant, &out->variant);
    if (rc != 0)
        return rc;
    if (!(control->n >= 2) || !(variant->n >= 2))
        return 0;
    const pe_stats_arm_t *arms[2] = {control, variant};
    pe_stats_moments_t *adj[2] = {&out->control, &out->variant};
    long double cxx[2], cxy[2];
    for (int i = 0; i < 2; i++) {
        const pe_stats_arm_t *a = arms[i];
        cxx[i] = centred_products(a->n, a->pre_sum, a->pre_sum, a->pre_sum_squares);
        if (cxx[i] < 0)
            cxx[i] = 0; /* rounding; pe_stats_input_check refused real inconsistency */
        cxy[i] = centred_products(a->n, a->pre_sum, a->sum, a->sum_products);
    }
    long double den = cxx[0] + cxx[1];
    if (!(den > 0))
        return 0;
    double theta = (double)((cxy[0] + cxy[1]) / den);
    double x_both = (control->pre_sum + variant->pre_sum) / (control->n + variant->n);
    double plain = 0, adjusted = 0;
    for (int i = 0; i < 2; i++) {
        const pe_stats_arm_t *a = arms[i];
        double vx = (double)cxx[i] / (a->n - 1), cxy_n = (double)cxy[i] / (a->n - 1);
        double vy = adj[i]->variance;
        double v = vy + theta * theta * vx - 2 * theta * cxy_n;
        plain += vy / a->n;
        adj[i]->variance = v > 0 ? v : 0;
        adj[i]->mean -= theta * (a->pre_sum / a->n - x_both);
        adjusted += adj[i]->variance / a->n;
    }
    out->theta = theta;
    if (plain > 0)
        out->variance_reduction = 1 - adjusted / plain;
    return 0;
}
