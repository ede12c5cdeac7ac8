/*
 * frequentist.c — Welch's unequal-variance t-test of an effect, for both metric types.
 *
 * Invariants:
 *  1. se² = a_v + a_c (the effect's variance parts); Welch–Satterthwaite
 *     df = (a_v + a_c)² / (a_v²/(n_v − 1) + a_c²/(n_c − 1)), a part that is 0 adding nothing.
 *  2. t = estimate/se. Two-sided p = 2·P(T_df > |t|), interval est ± t_df(1 − α/2)·se;
 *     "greater" p = P(T_df > t), interval [est − t_df(1 − α)·se, +∞); "less" p = P(T_df < t),
 *     interval (−∞, est + t_df(1 − α)·se].
 *  3. An undefined effect, or one whose variance is 0 (both arms without variance), gets no
 *     inference: every field but estimate (and stddev = 0 for the zero-variance case) is NaN.
 *     A test is never run on a standard error of 0.
 */
#include "stats_internal.h"

static void test_clear(pe_stats_test_t *out, double estimate)
{
    out->estimate = estimate;
    out->stddev = NAN;
    out->ci_low = NAN;
    out->ci_high = NAN;
    out->p_value = NAN;
    out->df = NAN;
}

static double welch_df(const pe_stats_diff_t *d)
{
    double av = d->var_variant, ac = d->var_control;
    double den = 0;
    if (av > 0)
        den += av * av / (d->n_variant - 1);
    if (ac > 0)
        den += ac * ac / (d->n_control - 1);
    return (av + ac) * (av + ac) / den;
}

int pe_stats_welch(const pe_stats_diff_t *d, double alpha, pe_stats_sides_t sides,
                   pe_stats_test_t *out)
{
    test_clear(out, d->estimate);
    if (!(alpha > 0 && alpha < 1))
        return PE_EINVAL;
    double var = d->var_variant + d->var_control;
    if (isnan(d->estimate) || isnan(var))
        return 0;
    if (var == 0) {
        out->stddev = 0;
        return 0;
    }
    double se = sqrt(var), t = d->estimate / se, df = welch_df(d);
    if (!stats_finite(df) || !(df > 0)) {
        /* n = 1 with variance > 0 is impossible for checked input; refuse to guess. */
        return PE_EINTERNAL;
    }
    out->stddev = se;
    out->df = df;
    double q, crit;
    int rc;
    switch (sides) {
    case PE_STATS_GREATER:
        rc = stats_t_upper(t, df, &out->p_value);
        rc = rc ? rc : stats_t_quantile_upper(alpha, df, &crit);
        if (rc == 0) {
            out->ci_low = d->estimate - crit * se;
            out->ci_high = INFINITY;
        }
        break;
    case PE_STATS_LESS:
        rc = stats_t_upper(-t, df, &out->p_value);
        rc = rc ? rc : stats_t_quantile_upper(alpha, df, &crit);
        if (rc == 0) {
            out->ci_low = -INFINITY;
            out->ci_high = d->estimate + crit * se;
        }
        break;
    default:
        rc = stats_t_upper(fabs(t), df, &q);
        rc = rc ? rc : stats_t_quantile_upper(alpha / 2, df, &crit);
        if (rc == 0) {
            out->p_value = fmin(1.0, 2 * q);
            out->ci_low = d->estimate - crit * se;
            out->ci_high = d->estimate + crit * se;
        }
        break;
    }
    if (rc != 0)
        test_clear(out, d->estimate);
    return rc;
}
