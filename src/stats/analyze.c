/*
 * analyze.c — one analysis of a two-arm experiment: checks the input, computes the moments,
 * SRM, optional CUPED adjustment, the effect by the requested method, and the power figures.
 * This is what `stats analyze` prints and what the decision helper reads.
 *
 * Invariants:
 *  1. Every result field is set: a number, NaN ("does not apply / undefined"), or ±INFINITY
 *     for an interval's open end. Fields of other methods are NaN (bayesian: pValue;
 *     frequentist and sequential: chanceToWin and risk).
 *  2. control/variant report the plain moments; with CUPED and a defined θ the effect is
 *     computed from the adjusted moments (relative effects divide by the adjusted control
 *     mean); without a defined θ the analysis runs unadjusted and cuped's fields are NaN.
 *  3. Power figures are for the fixed-horizon z-test at the analysis's standard error of the
 *     absolute effect, relative to the (analysis) control mean: mdeRelative at the target
 *     power, achievedPower against the input's relative mde (signed by `sides`).
 *  4. No allocation; a GSL failure is PE_EINTERNAL with err code "internal".
 */
#include <string.h>

#include "stats_internal.h"

void pe_stats_input_defaults(pe_stats_input_t *in)
{
    memset(in, 0, sizeof *in);
    in->metric = PE_STATS_PROPORTION;
    in->method = PE_STATS_FREQUENTIST;
    in->sides = PE_STATS_TWO_SIDED;
    in->difference = PE_STATS_RELATIVE;
    in->alpha = PE_STATS_DEFAULT_ALPHA;
    in->sequential_tuning = PE_STATS_DEFAULT_TUNING;
    in->split[0] = 0.5;
    in->split[1] = 0.5;
    in->power = PE_STATS_DEFAULT_POWER;
    in->mde = NAN;
}

static void result_clear(pe_stats_result_t *r)
{
    pe_stats_moments_t none = {NAN, NAN, NAN};
    r->control = none;
    r->variant = none;
    r->effect = (pe_stats_test_t){NAN, NAN, NAN, NAN, NAN, NAN};
    r->chance_to_win = NAN;
    r->risk[0] = NAN;
    r->risk[1] = NAN;
    r->srm = (pe_stats_srm_t){NAN, NAN, NAN, false};
    r->cuped_applied = false;
    r->cuped = (pe_stats_cuped_t){NAN, none, none, NAN};
    r->mde_relative = NAN;
    r->achieved_power = NAN;
}

static int power_figures(const pe_stats_input_t *in, const pe_stats_moments_t *c,
                         const pe_stats_moments_t *v, pe_stats_result_t *out)
{
    pe_stats_diff_t abs;
    int rc = pe_stats_difference(c, v, PE_STATS_ABSOLUTE, &abs);
    if (rc != 0)
        return rc;
    double se = sqrt(abs.var_control + abs.var_variant), scale = fabs(c->mean);
    if (!(se > 0) || !stats_finite(se) || !(scale > 0) || !stats_finite(scale))
        return 0;
    double mde;
    rc = pe_stats_mde(se, in->alpha, in->power, in->sides, &mde);
    if (rc != 0)
        return rc;
    out->mde_relative = mde / scale;
    if (!isnan(in->mde)) {
        double delta = (in->sides == PE_STATS_LESS ? -1.0 : 1.0) * in->mde * scale;
        if (stats_finite(delta))
            rc = pe_stats_power(delta, se, in->alpha, in->sides, &out->achieved_power);
    }
    return rc;
}

int pe_stats_analyze(const pe_stats_input_t *in, pe_stats_result_t *out, pe_refusal_t *err)
{
    pe_stats_init();
    result_clear(out);
    int rc = pe_stats_input_check(in, err);
    if (rc != 0)
        return rc;
    rc = pe_stats_moments(in->metric, &in->control, &out->control);
    rc = rc ? rc : pe_stats_moments(in->metric, &in->variant, &out->variant);
    double counts[2] = {in->control.n, in->variant.n};
    rc = rc ? rc : pe_stats_srm(counts, in->split, 2, &out->srm);
    const pe_stats_moments_t *c = &out->control, *v = &out->variant;
    if (rc == 0 && in->cuped) {
        out->cuped_applied = true;
        rc = pe_stats_cuped(in->metric, &in->control, &in->variant, &out->cuped);
        if (rc == 0 && !isnan(out->cuped.theta)) {
            c = &out->cuped.control;
            v = &out->cuped.variant;
        }
    }
    pe_stats_diff_t d;
    rc = rc ? rc : pe_stats_difference(c, v, in->difference, &d);
    if (rc != 0)
        goto out;
    if (in->method == PE_STATS_BAYESIAN) {
        pe_stats_posterior_t post;
        rc = pe_stats_bayes(&d, in->has_prior ? &in->prior : NULL, in->alpha, in->sides, &post);
        out->effect =
            (pe_stats_test_t){post.mean, post.stddev, post.ci_low, post.ci_high, NAN, NAN};
        out->chance_to_win = post.chance_to_win;
        out->risk[0] = post.risk_control;
        out->risk[1] = post.risk_variant;
    } else if (in->method == PE_STATS_SEQUENTIAL) {
        rc = pe_stats_sequential(&d, in->sequential_tuning, in->alpha, in->sides, &out->effect);
    } else {
        rc = pe_stats_welch(&d, in->alpha, in->sides, &out->effect);
    }
    rc = rc ? rc : power_figures(in, c, v, out);
out:
    if (rc == PE_EINVAL)
        return pe_refuse(err, PE_EINVAL, "invalid_input", "input: inconsistent statistics");
    if (rc != 0) {
        pe_refuse(err, PE_EINVAL, "internal", "statistics: a numerical routine failed");
        return PE_EINTERNAL;
    }
    return 0;
}
