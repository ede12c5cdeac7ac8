/*
 * proportions.c — tests of proportions for the funnel doctor: the two-proportion z-test with a
 * pooled standard error, the one-sample score z-test against a known rate, and the
 * Benjamini–Hochberg adjustment of a family of p-values (q-values).
 *
 * Invariants:
 *  1. Two samples (statsmodels' proportions_ztest([k1, k2], [n1, n2])): p̂ = (k1 + k2)/(n1 + n2),
 *     z = (k1/n1 − k2/n2) / √(p̂(1 − p̂)(1/n1 + 1/n2)), p = 2·Q(|z|).
 *  2. One sample (proportions_ztest(k, n, value=p0, prop_var=p0), the score test): the
 *     variance is the null one, z = (k/n − p0) / √(p0(1 − p0)/n). p0 must lie in (0, 1).
 *  3. No evidence is not an error: a sample without units, or pooled counts all 0 or all n
 *     (no variance), give z = 0 and p = 1 — statsmodels would answer NaN there.
 *  4. Counts are finite, k ≥ 0, n ≥ 0, k ≤ n (they need not be integers); anything else is
 *     PE_EINVAL and *out is left as "no evidence".
 *  5. BH (multipletests(method='fdr_bh')): with p sorted ascending, q_(i) = min_{j ≥ i} m·p_(j)/j,
 *     capped at 1, handed back in the input's order. Equal p-values get equal q-values, so
 *     the order in which ties are sorted does not matter; the sort is a heap sort on indices,
 *     so nothing is allocated.
 *  6. Pure, no allocation, thread-safe; GSL is reached only through stats_norm_upper.
 */
#include "stats_internal.h"

static void no_evidence(pe_stats_ztest_t *out)
{
    out->z = 0;
    out->p_value = 1;
}

static bool count_ok(double k, double n)
{
    return stats_finite(k) && stats_finite(n) && k >= 0 && n >= 0 && k <= n;
}

static void two_sided(double z, pe_stats_ztest_t *out)
{
    out->z = z;
    out->p_value = fmin(1.0, 2.0 * stats_norm_upper(fabs(z)));
}

int pe_stats_ztest_2prop(double k1, double n1, double k2, double n2, pe_stats_ztest_t *out)
{
    pe_stats_init();
    no_evidence(out);
    if (!count_ok(k1, n1) || !count_ok(k2, n2))
        return PE_EINVAL;
    if (!(n1 > 0) || !(n2 > 0))
        return 0;
    double pooled = (k1 + k2) / (n1 + n2);
    double var = pooled * (1 - pooled) * (1 / n1 + 1 / n2);
    if (!(var > 0))
        return 0;
    double z = (k1 / n1 - k2 / n2) / sqrt(var);
    if (!stats_finite(z))
        return PE_EINTERNAL;
    two_sided(z, out);
    return 0;
}

int pe_stats_ztest_1prop(double k, double n, double p0, pe_stats_ztest_t *out)
{
    pe_stats_init();
    no_evidence(out);
    if (!count_ok(k, n) || !(p0 > 0 && p0 < 1))
        return PE_EINVAL;
    if (!(n > 0))
        return 0;
    double z = (k / n - p0) / sqrt(p0 * (1 - p0) / n);
    if (!stats_finite(z))
        return PE_EINTERNAL;
    two_sided(z, out);
    return 0;
}

/* Heap sort of idx[0..m) by p[idx[·]] ascending. */
static void sift_down(const double *p, size_t *idx, size_t root, size_t end)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= end)
            return;
        if (child + 1 < end && p[idx[child + 1]] > p[idx[child]])
            child++;
        if (!(p[idx[child]] > p[idx[root]]))
            return;
        size_t t = idx[root];
        idx[root] = idx[child];
        idx[child] = t;
        root = child;
    }
}

static void sort_indices(const double *p, size_t *idx, size_t m)
{
    for (size_t i = 0; i < m; i++)
        idx[i] = i;
    for (size_t i = m / 2; i-- > 0;)
        sift_down(p, idx, i, m);
    for (size_t end = m; end-- > 1;) {
        size_t t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        sift_down(p, idx, 0, end);
    }
}

int pe_stats_fdr_bh(const double *p, size_t m, double *q, size_t *scratch)
{
    if (m == 0)
        return 0;
    if (!p || !q || !scratch)
        return PE_EINVAL;
    for (size_t i = 0; i < m; i++)
        if (!(p[i] >= 0 && p[i] <= 1))
            return PE_EINVAL;
    sort_indices(p, scratch, m);
    /* From the largest p down, so the running minimum is the min over j ≥ i; each p[k] is read
     * before q[k] is written and never again, which is what lets q alias p. */
    double running = 1.0;
    for (size_t i = m; i-- > 0;) {
        size_t k = scratch[i];
        double adj = p[k] * (double)m / (double)(i + 1);
        if (adj < running)
            running = adj;
        q[k] = running;
    }
    return 0;
}
