/*
 * srm.c — sample-ratio mismatch: did the arms receive the units the configured split says?
 *
 * Invariants:
 *  1. Pearson's chi-square goodness of fit over the arms with weight > 0 only: expected
 *     E_i = N·w_i/Σw (N and Σw over those arms), χ² = Σ (n_i − E_i)²/E_i, df = k' − 1.
 *  2. Mismatch exactly when p < PE_STATS_SRM_THRESHOLD (0.001): a strict threshold because SRM
 *     is checked on every look and a false alarm blocks a winner.
 *  3. Fewer than two weighted arms, or no units in them, leave the test undefined (p NaN,
 *     mismatch false). Weights need not sum to 1; they must be finite and ≥ 0.
 */
#include "stats_internal.h"

int pe_stats_srm(const double *counts, const double *weights, size_t k, pe_stats_srm_t *out)
{
    out->chi2 = NAN;
    out->df = NAN;
    out->p_value = NAN;
    out->mismatch = false;
    double total = 0, wsum = 0;
    size_t arms = 0;
    for (size_t i = 0; i < k; i++) {
        if (!(weights[i] >= 0) || !stats_finite(weights[i]) || !(counts[i] >= 0) ||
            !stats_finite(counts[i]))
            return PE_EINVAL;
        if (weights[i] > 0) {
            total += counts[i];
            wsum += weights[i];
            arms++;
        }
    }
    if (arms < 2 || !(total > 0))
        return 0;
    double chi2 = 0;
    for (size_t i = 0; i < k; i++) {
        if (weights[i] > 0) {
            double e = total * (weights[i] / wsum), dev = counts[i] - e;
            chi2 += dev * dev / e;
        }
    }
    double p;
    int rc = stats_chisq_upper(chi2, (double)(arms - 1), &p);
    if (rc != 0)
        return rc;
    out->chi2 = chi2;
    out->df = (double)(arms - 1);
    out->p_value = p;
    out->mismatch = p < PE_STATS_SRM_THRESHOLD;
    return 0;
}
