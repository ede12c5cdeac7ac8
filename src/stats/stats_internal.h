/*
 * stats_internal.h — what the files of src/stats share and nobody else sees: distribution
 * functions wrapped so that every GSL status is checked, and the error formatter.
 *
 * Invariants:
 *  1. Only src/stats includes GSL; these wrappers are the one place GSL's special functions
 *     are called, after pe_stats_init.
 *  2. Each wrapper returns 0 with a finite result in [0, 1] (probabilities) or a finite
 *     quantile, or PE_EINTERNAL; an underflow is the exact answer 0, not an error.
 */
#ifndef PE_STATS_INTERNAL_H
#define PE_STATS_INTERNAL_H

#include <math.h>

#include "pe/stats.h"

/* Degrees of freedom above which Student's t is taken from GSL's large-df path (a
 * Cornish–Fisher expansion, accurate to ~1e-14 there) instead of the incomplete beta. */
#define STATS_T_BETA_MAX_DF 1e4

/* P(T_df > x) for any real x, df > 0 (df = INFINITY: standard normal). */
int stats_t_upper(double x, double df, double *q);
/* The x with P(T_df > x) = p, p in (0, 1). */
int stats_t_quantile_upper(double p, double df, double *x);
/* P(Z > x) and its inverse, p in (0, 1). */
double stats_norm_upper(double x);
int stats_norm_quantile_upper(double p, double *x);
/* Standard normal density. */
double stats_norm_pdf(double x);
/* ln Φ(z), accurate far into the lower tail. */
int stats_log_norm_cdf(double z, double *out);
/* P(χ²_k > x). */
int stats_chisq_upper(double x, double k, double *q);

/* True when x is a finite number. */
static inline bool stats_finite(double x)
{
    return isfinite(x) != 0;
}

#endif /* PE_STATS_INTERNAL_H */
