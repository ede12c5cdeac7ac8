/*
 * test_reference.c — src/stats against independent references: the vectors that
 * tests/reference/stats/generate.py computed with scipy, statsmodels and mpmath (analyze.json,
 * srm.json, sample_size.json), and published worked examples.
 *
 * Invariants checked:
 *  1. Every field of every vector agrees within the tolerance stated beside it; a field the
 *     reference says does not apply (null) is NaN or infinite here, and only then.
 *  2. The published examples hold to the digits their sources print.
 *
 * Tolerances (why they are what they are):
 *  - The reference moments are exact rationals of the very doubles we read, so a mean is off
 *    by at most an ulp (1e-14 relative allowed). A mean metric's variance loses digits to
 *    cancellation in Σy² − (Σy)²/n: we form it in long double (64-bit mantissa), so its
 *    relative error is ≈ 2^-64 · Σy²/Σ(y−ȳ)² — the tolerance is 1e-13 + 1e-18 · that
 *    condition number (the "tiny variance" vectors have a condition number near 1e10).
 *  - Estimates and interval ends: 1e-12 of the means' magnitude (a difference of two means
 *    cannot be more exact than its terms), plus 1e-9 of the standard error for the quantile
 *    (GSL's t inverse polished by Newton steps agrees with scipy to ~1e-13; measured).
 *  - p-values and chances: d ln Q(t)/dt ≈ t, so a relative error ε in t becomes ≈ t²ε in p;
 *    allowed 1e-9 · (1 + t²) relative, with t = estimate/stddev.
 *  - Risk (expected loss): 1e-9 relative plus 1e-12 of the posterior sd (the reference
 *    integrates numerically, we use the closed form).
 *  - MDE and power: 1e-9 relative (both sides solve to ~1e-15; the reference is statsmodels'
 *    power function solved by brentq at machine tolerance).
 *  - CUPED: the reference adjusts raw units; we adjust sums whose rounding is relative 1e-16
 *    of Σxy, Σx² (≈ 1e-14 of the centred sums): θ 1e-10 relative, reduction 1e-10 absolute.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/stats.h"
#include "pe_test.h"

#define MAX_REPORTED 20

static int failures;

/* A reference file of tests/reference/stats/ (made by generate.py). */
static char *slurp(const char *name)
{
    char relpath[256];
    snprintf(relpath, sizeof relpath, "reference/stats/%s", name);
    return pe_test_file(relpath);
}

static cJSON *load(const char *name)
{
    char *text = slurp(name);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(j) ? j->valuedouble : NAN;
}

static bool is_null(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return !j || cJSON_IsNull(j);
}

/* Compares got with the reference field `key` of obj: |got − want| ≤ abs + rel·|want|. */
static void check(const char *vector, const char *field, double got, const cJSON *obj,
                  const char *key, double rel, double abs_tol)
{
    if (is_null(obj, key)) {
        if (isfinite(got) && ++failures <= MAX_REPORTED)
            print_error("%s: %s = %.17g, reference says it does not apply (null)\n", vector, field,
                        got);
        return;
    }
    double want = num(obj, key);
    double tol = abs_tol + rel * fabs(want);
    if (!(fabs(got - want) <= tol) && ++failures <= MAX_REPORTED)
        print_error("%s: %s = %.17g, reference %.17g (|diff| %.3g > tolerance %.3g)\n", vector,
                    field, got, want, fabs(got - want), tol);
}

static double variance_condition(const cJSON *input, const char *arm, const cJSON *moments)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(input, arm);
    double n = num(a, "n"), ss = num(a, "sumSquares"), var = num(moments, "variance");
    if (!(var > 0) || isnan(ss) || !(n >= 2))
        return 1;
    return ss / ((n - 1) * var);
}

static void check_vector(const cJSON *v)
{
    const char *name = cJSON_GetObjectItemCaseSensitive(v, "name")->valuestring;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(v, "input");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(v, "expected");
    char *text = cJSON_PrintUnformatted(input);
    assert_non_null(text);
    pe_stats_input_t in;
    pe_stats_plan_t plan;
    pe_stats_result_t r;
    pe_refusal_t err;
    bool has_plan;
    double runtime;
    int rc = pe_stats_input_parse(text, strlen(text), &in, &plan, &has_plan, &runtime, &err);
    free(text);
    if (rc != 0) {
        failures++;
        print_error("%s: input refused: %s %s\n", name, err.code, err.message);
        return;
    }
    rc = pe_stats_analyze(&in, &r, &err);
    if (rc != 0) {
        failures++;
        print_error("%s: analysis failed: %s %s\n", name, err.code, err.message);
        return;
    }
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(exp, "control");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(exp, "variant");
    const cJSON *ee = cJSON_GetObjectItemCaseSensitive(exp, "effect");
    double cond_c = variance_condition(input, "control", ec);
    double cond_v = variance_condition(input, "variant", ev);
    check(name, "control.mean", r.control.mean, ec, "mean", 1e-14, 0);
    check(name, "variant.mean", r.variant.mean, ev, "mean", 1e-14, 0);
    check(name, "control.variance", r.control.variance, ec, "variance", 1e-13 + 1e-18 * cond_c, 0);
    check(name, "variant.variance", r.variant.variance, ev, "variance", 1e-13 + 1e-18 * cond_v, 0);

    double scale = fabs(num(ec, "mean")) + fabs(num(ev, "mean"));
    if (in.difference == PE_STATS_RELATIVE)
        scale /= fabs(num(ec, "mean"));
    if (!isfinite(scale))
        scale = 0;
    double var_rel = 1e-13 + 1e-18 * fmax(cond_c, cond_v);
    double sd = num(ee, "stddev"), t = num(ee, "estimate") / sd;
    if (!isfinite(t))
        t = 0;
    bool cuped = in.cuped;
    double est_abs = (cuped ? 1e-11 : 1e-12) * scale;
    check(name, "effect.estimate", r.effect.estimate, ee, "estimate", 1e-13, est_abs);
    check(name, "effect.stddev", r.effect.stddev, ee, "stddev", var_rel + (cuped ? 1e-10 : 0), 0);
    double ci_abs = est_abs + (isfinite(sd) ? (1e-9 + var_rel) * sd : 0);
    check(name, "effect.ciLow", r.effect.ci_low, ee, "ciLow", 1e-13, ci_abs);
    check(name, "effect.ciHigh", r.effect.ci_high, ee, "ciHigh", 1e-13, ci_abs);
    double p_rel = (1e-9 + var_rel) * (1 + t * t);
    check(name, "pValue", r.effect.p_value, exp, "pValue", p_rel, 1e-300);
    check(name, "chanceToWin", r.chance_to_win, exp, "chanceToWin", p_rel, 1e-15);

    const cJSON *risk = cJSON_GetObjectItemCaseSensitive(exp, "risk");
    if (cJSON_IsArray(risk)) {
        const cJSON *r0 = cJSON_GetArrayItem(risk, 0), *r1 = cJSON_GetArrayItem(risk, 1);
        double risk_abs = 1e-12 * (isfinite(sd) ? sd : 0);
        if (!(fabs(r.risk[0] - r0->valuedouble) <= 1e-9 * fabs(r0->valuedouble) + risk_abs) ||
            !(fabs(r.risk[1] - r1->valuedouble) <= 1e-9 * fabs(r1->valuedouble) + risk_abs)) {
            if (++failures <= MAX_REPORTED)
                print_error("%s: risk = [%.17g, %.17g], reference [%.17g, %.17g]\n", name,
                            r.risk[0], r.risk[1], r0->valuedouble, r1->valuedouble);
        }
    } else if ((isfinite(r.risk[0]) || isfinite(r.risk[1])) && ++failures <= MAX_REPORTED) {
        print_error("%s: risk given, reference says it does not apply\n", name);
    }

    const cJSON *srm = cJSON_GetObjectItemCaseSensitive(exp, "srm");
    check(name, "srm.pValue", r.srm.p_value, srm, "pValue", 1e-9, 1e-300);
    if (!is_null(srm, "mismatch") &&
        r.srm.mismatch != cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(srm, "mismatch")) &&
        ++failures <= MAX_REPORTED)
        print_error("%s: srm.mismatch differs\n", name);

    const cJSON *cu = cJSON_GetObjectItemCaseSensitive(exp, "cuped");
    if (cJSON_IsObject(cu)) {
        check(name, "cuped.theta", r.cuped.theta, cu, "theta", 1e-10, 0);
        check(name, "cuped.varianceReduction", r.cuped.variance_reduction, cu, "varianceReduction",
              0, 1e-10);
    }
    const cJSON *pw = cJSON_GetObjectItemCaseSensitive(exp, "power");
    check(name, "power.mdeRelative", r.mde_relative, pw, "mdeRelative", 1e-9 + var_rel, 0);
    check(name, "power.achievedPower", r.achieved_power, pw, "achievedPower", 1e-9 + var_rel,
          1e-12);
}

static void test_analyze_vectors(void **state)
{
    (void)state;
    failures = 0;
    cJSON *all = load("analyze.json");
    int count = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, all)
    {
        check_vector(v);
        count++;
    }
    cJSON_Delete(all);
    assert_true(count >= 150);
    if (failures)
        fail_msg("%d field(s) disagree with the reference over %d vectors", failures, count);
}

static void test_srm_vectors(void **state)
{
    (void)state;
    failures = 0;
    cJSON *all = load("srm.json");
    const cJSON *v;
    int count = 0;
    cJSON_ArrayForEach(v, all)
    {
        double counts[8], weights[8];
        size_t k = 0;
        const cJSON *c, *w = cJSON_GetObjectItemCaseSensitive(v, "weights")->child;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(v, "counts"))
        {
            assert_true(k < 8 && w);
            counts[k] = c->valuedouble;
            weights[k++] = w->valuedouble;
            w = w->next;
        }
        pe_stats_srm_t srm;
        assert_int_equal(pe_stats_srm(counts, weights, k, &srm), 0);
        const char *name = cJSON_GetObjectItemCaseSensitive(v, "name")->valuestring;
        /* χ² is exact to ~1e-15 relative; d ln p/dχ² ≈ 1/2, so p's relative error ≈ χ²/2 · ε. */
        check(name, "srm.pValue", srm.p_value, v, "pValue", 1e-10 * (1 + srm.chi2), 1e-300);
        if (!is_null(v, "pValue"))
            assert_int_equal(srm.mismatch, num(v, "pValue") < 0.001);
        count++;
    }
    cJSON_Delete(all);
    assert_true(count >= 8);
    if (failures)
        fail_msg("%d SRM p-values disagree with scipy", failures);
}

static void test_sample_size_vectors(void **state)
{
    (void)state;
    failures = 0;
    cJSON *all = load("sample_size.json");
    const cJSON *v;
    cJSON_ArrayForEach(v, all)
    {
        const char *sides = cJSON_GetObjectItemCaseSensitive(v, "sides")->valuestring;
        pe_stats_sample_size_input_t in = {
            .metric =
                strcmp(cJSON_GetObjectItemCaseSensitive(v, "metric")->valuestring, "mean") == 0
                    ? PE_STATS_MEAN
                    : PE_STATS_PROPORTION,
            .baseline = num(v, "baseline"),
            .variance = num(v, "variance"),
            .mde = num(v, "mde"),
            .alpha = num(v, "alpha"),
            .power = num(v, "power"),
            .sides = strcmp(sides, "greater") == 0 ? PE_STATS_GREATER
                     : strcmp(sides, "less") == 0  ? PE_STATS_LESS
                                                   : PE_STATS_TWO_SIDED,
        };
        pe_stats_sample_size_t out;
        pe_refusal_t err;
        assert_int_equal(pe_stats_sample_size(&in, &out, &err), 0);
        if (!is_null(v, "ruleOfThumb")) {
            /* Published rule of thumb 16σ²/δ² (α 0.05, power 0.8): the exact z figure is
             * 15.7σ²/δ², within 2% of it. */
            double rule = num(v, "ruleOfThumb");
            assert_true(fabs(out.units_per_arm - rule) <= 0.02 * rule);
            assert_true(out.units_per_arm < rule);
            continue;
        }
        check("sample_size", "unitsPerArm", out.units_per_arm, v, "unitsPerArm", 1e-9, 0);
        check("sample_size", "effect", out.delta, v, "effect", 1e-12, 0);
        assert_true(out.units_per_arm_ceil >= out.units_per_arm);
        assert_true(out.units_per_arm_ceil - out.units_per_arm < 1);
    }
    cJSON_Delete(all);
    if (failures)
        fail_msg("%d sample sizes disagree with statsmodels", failures);
}

/* R: t.test(ts1, ts2) → t = -1.8325, df = 17.9, p-value = 0.08356,
 * 95 percent CI -2.1469104 0.1469104 (stats.stackexchange.com, BruceET; see generate.py). */
static void test_published_welch(void **state)
{
    (void)state;
    static const double ts1[] = {11, 9, 10, 11, 10, 12, 9, 11, 12, 9};
    static const double ts2[] = {11, 13, 10, 13, 12, 9, 11, 12, 12, 11};
    pe_stats_input_t in;
    pe_stats_input_defaults(&in);
    in.metric = PE_STATS_MEAN;
    in.difference = PE_STATS_ABSOLUTE;
    for (int i = 0; i < 10; i++) {
        in.variant.n++;
        in.variant.sum += ts1[i];
        in.variant.sum_squares += ts1[i] * ts1[i];
        in.control.n++;
        in.control.sum += ts2[i];
        in.control.sum_squares += ts2[i] * ts2[i];
    }
    pe_stats_result_t r;
    pe_refusal_t err;
    assert_int_equal(pe_stats_analyze(&in, &r, &err), 0);
    assert_true(fabs(r.effect.estimate / r.effect.stddev - -1.8325) < 5e-5);
    assert_true(fabs(r.effect.df - 17.9) < 0.05);
    assert_true(fabs(r.effect.p_value - 0.08356) < 5e-6);
    assert_true(fabs(r.effect.ci_low - -2.1469104) < 5e-8);
    assert_true(fabs(r.effect.ci_high - 0.1469104) < 5e-8);
}

/* Kohavi, Tang, Xu (2020), ch. 21: 821,588 vs 815,482 on 50/50 → p ≈ 1.8e-6: an SRM. */
static void test_published_srm(void **state)
{
    (void)state;
    double counts[2] = {821588, 815482}, weights[2] = {0.5, 0.5};
    pe_stats_srm_t srm;
    assert_int_equal(pe_stats_srm(counts, weights, 2, &srm), 0);
    assert_true(srm.p_value >= 1.75e-6 && srm.p_value < 1.85e-6);
    assert_true(srm.mismatch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analyze_vectors),     cmocka_unit_test(test_srm_vectors),
        cmocka_unit_test(test_sample_size_vectors), cmocka_unit_test(test_published_welch),
        cmocka_unit_test(test_published_srm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
