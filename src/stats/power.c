/*
 * power.c — power analysis for the z-test of an effect: the power achieved against a true
 * effect, the minimum detectable effect (MDE) at a standard error, and units per arm.
 *
 * Invariants:
 *  1. Power of the level-α test, x = δ/se: two-sided Q(z_{α/2} − x) + Q(z_{α/2} + x) (a
 *     rejection in either direction counts, as statsmodels' NormalIndPower counts it);
 *     "greater" Q(z_α − x); "less" Q(z_α + x). Normal approximation throughout.
 *  2. MDE: the |δ| whose power is the target, in closed form one-sided, by bisection two-sided
 *     (power grows strictly with |δ|). Needs α < power < 1.
 *  3. Units per arm (equal split) for a relative MDE m on baseline b: δ = ±m·|b| (minus for
 *     "less"), variances v_c, v_v — proportions p(1−p) at p = b and at b(1 ± m), means the
 *     given variance in both arms — and n = (v_c + v_v)·(x/δ)², x the MDE at se = 1.
 *  4. No allocation: the root finder is a fixed-length bisection.
 */
#include <string.h>

#include "stats_internal.h"

#define BISECT_STEPS 200

static double power_at(double x, double z, pe_stats_sides_t sides)
{
    switch (sides) {
    case PE_STATS_GREATER:
        return stats_norm_upper(z - x);
    case PE_STATS_LESS:
        return stats_norm_upper(z + x);
    default:
        return stats_norm_upper(z - x) + stats_norm_upper(z + x);
    }
}

static int critical(double alpha, pe_stats_sides_t sides, double *z)
{
    return stats_norm_quantile_upper(sides == PE_STATS_TWO_SIDED ? alpha / 2 : alpha, z);
}

int pe_stats_power(double delta, double se, double alpha, pe_stats_sides_t sides, double *power)
{
    pe_stats_init();
    if (!stats_finite(delta) || !(se > 0) || !stats_finite(se) || !(alpha > 0 && alpha < 1))
        return PE_EINVAL;
    double z;
    int rc = critical(alpha, sides, &z);
    if (rc != 0)
        return rc;
    *power = fmin(1.0, power_at(delta / se, z, sides));
    return 0;
}

int pe_stats_mde(double se, double alpha, double power, pe_stats_sides_t sides, double *mde)
{
    pe_stats_init();
    if (!(se > 0) || !stats_finite(se) || !(alpha > 0 && alpha < 1) || !(power > alpha) ||
        !(power < 1))
        return PE_EINVAL;
    double z, zp;
    int rc = critical(alpha, sides, &z);
    rc = rc ? rc : stats_norm_quantile_upper(power, &zp); /* Q(zp) = power, zp < 0 usually */
    if (rc != 0)
        return rc;
    double x = z - zp; /* one-sided: Q(z − x) = power */
    if (sides == PE_STATS_TWO_SIDED) {
        double lo = 0, hi = x; /* power_at(hi) ≥ Q(z − hi) = power */
        for (int i = 0; i < BISECT_STEPS && hi - lo > 1e-15 * hi; i++) {
            double mid = 0.5 * (lo + hi);
            if (power_at(mid, z, sides) < power)
                lo = mid;
            else
                hi = mid;
        }
        x = 0.5 * (lo + hi);
    }
    *mde = x * se;
    return 0;
}

int pe_stats_sample_size(const pe_stats_sample_size_input_t *in, pe_stats_sample_size_t *out,
                         pe_refusal_t *err)
{
    pe_stats_init();
    memset(out, 0, sizeof *out);
    double b = in->baseline, m = in->mde;
    if (!(in->alpha > 0 && in->alpha <= 0.5))
        return pe_refuse(err, PE_EINVAL, "out_of_range", "alpha: must be in (0, 0.5]");
    if (!(in->power > in->alpha && in->power < 1))
        return pe_refuse(err, PE_EINVAL, "out_of_range", "power: must be in (alpha, 1)");
    if (!(m > 0) || !stats_finite(m))
        return pe_refuse(err, PE_EINVAL, "out_of_range", "mde: must be a finite number > 0");
    double sign = in->sides == PE_STATS_LESS ? -1.0 : 1.0;
    if (in->metric == PE_STATS_PROPORTION) {
        if (!(b > 0 && b < 1))
            return pe_refuse(err, PE_EINVAL, "out_of_range", "baseline: a rate must be in (0, 1)");
        double p1 = b * (1 + sign * m);
        if (!(p1 >= 0 && p1 <= 1))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "mde: baseline × (1 %c mde) = %.6g is not a rate in [0, 1]",
                             sign > 0 ? '+' : '-', p1);
        out->delta = p1 - b;
        out->var_control = b * (1 - b);
        out->var_variant = p1 * (1 - p1);
    } else {
        if (!stats_finite(b) || b == 0)
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "baseline: must be a finite number ≠ 0");
        if (!(in->variance > 0) || !stats_finite(in->variance))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "variance: must be a finite number > 0");
        out->delta = sign * m * fabs(b);
        out->var_control = in->variance;
        out->var_variant = in->variance;
    }
    if (out->delta == 0)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "mde: too small to change the baseline");
    double x;
    int rc = pe_stats_mde(1.0, in->alpha, in->power, in->sides, &x);
    if (rc != 0)
        return rc == PE_EINVAL
                   ? pe_refuse(err, PE_EINVAL, "out_of_range", "power: cannot be reached")
                   : rc;
    double ratio = x / out->delta;
    out->units_per_arm = (out->var_control + out->var_variant) * ratio * ratio;
    if (!stats_finite(out->units_per_arm) || out->units_per_arm > PE_STATS_MAX_UNITS)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "mde: needs more than 2^53 units per arm");
    out->units_per_arm_ceil = ceil(out->units_per_arm);
    return 0;
}
