/*
 * test_simulation.c — the engine's guarantees checked by Monte Carlo with a fixed-seed PRNG
 * (xoshiro256**, seeded through splitmix64), so every run draws the same numbers:
 *
 *  1. A/A, fixed horizon (Welch, α = 0.05, proportions): the false-positive rate is α within
 *     3.5 binomial standard errors of the experiment count.
 *  2. A/A, sequential monitor looking 100 times (always-valid p-value < α at any look counts
 *     as a false alarm): the rate stays ≤ α. The same looks with the fixed-horizon test are
 *     checked to inflate the rate beyond 2α, so this check can tell the two apart.
 *  3. CUPED with a covariate of correlation ρ: the mean ratio of CI widths (CUPED / plain) is
 *     √(1 − ρ²) within 0.01 (the ratio's spread across experiments is O(1/√n)), and the
 *     reported variance reduction is ρ² within 0.01; the adjusted A/A test keeps FPR ≈ α.
 *
 * PE_STATS_SIM_SCALE (default 1) multiplies the experiment counts; bench/stats/run uses a
 * larger scale for tighter figures. Every test prints its measured figures.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pe/stats.h"
#include "pe_test.h"

typedef struct {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal by Box–Muller (one of the pair; simplicity over speed). */
static double normal(rng_t *r)
{
    double u = uniform(r), v = uniform(r);
    return sqrt(-2 * log1p(-u)) * cos(2 * M_PI * v);
}

static double scale(void)
{
    const char *s = getenv("PE_STATS_SIM_SCALE");
    double k = s ? strtod(s, NULL) : 1;
    return k >= 1 ? k : 1;
}

static double binomial_sd(double p, double n)
{
    return sqrt(p * (1 - p) / n);
}

/* Adds `units` Bernoulli(p) units to arm. */
static void add_conversions(rng_t *r, pe_stats_arm_t *arm, int units, double p)
{
    for (int i = 0; i < units; i++) {
        double y = uniform(r) < p;
        arm->n += 1;
        arm->sum += y;
        arm->sum_squares += y;
    }
}

static void test_aa_fixed_horizon(void **state)
{
    (void)state;
    const int experiments = (int)(4000 * scale()), units = 2000;
    const double p = 0.1, alpha = 0.05;
    rng_t r;
    rng_seed(&r, 1);
    int alarms = 0;
    for (int e = 0; e < experiments; e++) {
        pe_stats_input_t in;
        pe_stats_input_defaults(&in);
        in.alpha = alpha;
        add_conversions(&r, &in.control, units, p);
        add_conversions(&r, &in.variant, units, p);
        pe_stats_result_t res;
        pe_refusal_t err;
        assert_int_equal(pe_stats_analyze(&in, &res, &err), 0);
        alarms += res.effect.p_value < alpha;
    }
    double fpr = (double)alarms / experiments, sd = binomial_sd(alpha, experiments);
    print_message("A/A fixed horizon: FPR %.4f over %d experiments (alpha %.2f, 3.5 sd = %.4f)\n",
                  fpr, experiments, alpha, 3.5 * sd);
    assert_true(fabs(fpr - alpha) <= 3.5 * sd);
}

static void test_aa_sequential_monitor(void **state)
{
    (void)state;
    const int experiments = (int)(1000 * scale()), looks = 100, per_look = 50;
    const double p = 0.1, alpha = 0.05;
    rng_t r;
    rng_seed(&r, 2);
    int seq_alarms = 0, peek_alarms = 0;
    for (int e = 0; e < experiments; e++) {
        pe_stats_input_t in;
        pe_stats_input_defaults(&in);
        in.alpha = alpha;
        bool seq_alarm = false, peek_alarm = false;
        for (int l = 0; l < looks; l++) {
            add_conversions(&r, &in.control, per_look, p);
            add_conversions(&r, &in.variant, per_look, p);
            pe_stats_result_t res;
            pe_refusal_t err;
            in.method = PE_STATS_SEQUENTIAL;
            assert_int_equal(pe_stats_analyze(&in, &res, &err), 0);
            seq_alarm |= res.effect.p_value < alpha;
            /* The CS holds at every look: it contains 0 whenever the p-value is ≥ alpha. */
            if (!(res.effect.p_value < alpha) && isfinite(res.effect.ci_low))
                assert_true(res.effect.ci_low <= 0 && res.effect.ci_high >= 0);
            in.method = PE_STATS_FREQUENTIST;
            assert_int_equal(pe_stats_analyze(&in, &res, &err), 0);
            peek_alarm |= res.effect.p_value < alpha;
        }
        seq_alarms += seq_alarm;
        peek_alarms += peek_alarm;
    }
    double fpr = (double)seq_alarms / experiments, naive = (double)peek_alarms / experiments;
    print_message("A/A with %d looks: sequential FPR %.4f, fixed-horizon test peeking FPR %.4f "
                  "(%d experiments, alpha %.2f)\n",
                  looks, fpr, naive, experiments, alpha);
    assert_true(fpr <= alpha);
    assert_true(naive > 2 * alpha);
}

static void test_cuped_shrinks_interval(void **state)
{
    (void)state;
    const int experiments = (int)(300 * scale()), units = 1000;
    const double rho = 0.8, alpha = 0.05;
    rng_t r;
    rng_seed(&r, 3);
    double ratio_sum = 0, reduction_sum = 0;
    int alarms = 0;
    for (int e = 0; e < experiments; e++) {
        pe_stats_input_t in;
        pe_stats_input_defaults(&in);
        in.metric = PE_STATS_MEAN;
        in.difference = PE_STATS_ABSOLUTE;
        in.alpha = alpha;
        pe_stats_arm_t *arms[2] = {&in.control, &in.variant};
        for (int a = 0; a < 2; a++) {
            for (int i = 0; i < units; i++) {
                double x = 10 + 2 * normal(&r);
                double y = 10 + rho * (x - 10) + sqrt(1 - rho * rho) * 2 * normal(&r);
                arms[a]->n += 1;
                arms[a]->sum += y;
                arms[a]->sum_squares += y * y;
                arms[a]->pre_sum += x;
                arms[a]->pre_sum_squares += x * x;
                arms[a]->sum_products += x * y;
            }
        }
        pe_stats_result_t plain, adjusted;
        pe_refusal_t err;
        assert_int_equal(pe_stats_analyze(&in, &plain, &err), 0);
        in.cuped = true;
        assert_int_equal(pe_stats_analyze(&in, &adjusted, &err), 0);
        ratio_sum += (adjusted.effect.ci_high - adjusted.effect.ci_low) /
                     (plain.effect.ci_high - plain.effect.ci_low);
        reduction_sum += adjusted.cuped.variance_reduction;
        alarms += adjusted.effect.p_value < alpha;
    }
    double ratio = ratio_sum / experiments, reduction = reduction_sum / experiments;
    double fpr = (double)alarms / experiments, sd = binomial_sd(alpha, experiments);
    print_message("CUPED rho %.2f: CI width ratio %.4f (expected %.4f), variance reduction %.4f "
                  "(expected %.4f), adjusted A/A FPR %.4f (%d experiments)\n",
                  rho, ratio, sqrt(1 - rho * rho), reduction, rho * rho, fpr, experiments);
    assert_true(fabs(ratio - sqrt(1 - rho * rho)) <= 0.01);
    assert_true(fabs(reduction - rho * rho) <= 0.01);
    assert_true(fabs(fpr - alpha) <= 3.5 * sd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aa_fixed_horizon),
        cmocka_unit_test(test_aa_sequential_monitor),
        cmocka_unit_test(test_cuped_shrinks_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
