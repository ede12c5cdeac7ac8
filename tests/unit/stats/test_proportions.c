/*
 * test_proportions.c — src/stats/proportions.c against statsmodels: the vectors that
 * tests/reference/stats/proportions.py wrote to proportions.json (30 two-proportion z-tests,
 * 25 one-sample score tests, 25 Benjamini–Hochberg families), and the refusals.
 *
 * Invariants checked:
 *  1. Every vector agrees within the tolerance below; the "no evidence" cases (no units, no
 *     variance) give exactly z = 0, p = 1.
 *  2. Bad counts (negative, k > n, NaN, infinite) and a p0 outside (0, 1) are PE_EINVAL; a
 *     p-value outside [0, 1] is PE_EINVAL for BH.
 *  3. BH writes q in the input's order, may work in place, and does not depend on the order of
 *     its input.
 *
 * Tolerances (why they are what they are):
 *  - z: 1e-12 relative (both sides evaluate the same closed form in doubles; a few roundings).
 *  - p: d ln Q(z)/dz ≈ z, so a relative error ε in z becomes ≈ z²ε in p; GSL's Q and scipy's
 *    norm.sf agree to ~1e-15 relative: allowed 1e-9 · (1 + z²) relative, as test_reference.c.
 *  - q: products and minima of the p-values, exact up to one rounding: 1e-12 relative.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/stats.h"
#include "pe_test.h"

/* A reference file of tests/reference/stats/ (made by proportions.py). */
static char *slurp(const char *name)
{
    char relpath[256];
    snprintf(relpath, sizeof relpath, "reference/stats/%s", name);
    return pe_test_file(relpath);
}

static cJSON *load_section(cJSON **doc, const char *section)
{
    char *text = slurp("proportions.json");
    *doc = cJSON_Parse(text);
    free(text);
    assert_non_null(*doc);
    cJSON *s = cJSON_GetObjectItemCaseSensitive(*doc, section);
    assert_true(cJSON_IsArray(s));
    return s;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(j))
        fail_msg("reference field %s missing", key);
    return j->valuedouble;
}

static const char *name_of(const cJSON *o)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, "name");
    return cJSON_IsString(j) ? j->valuestring : "?";
}

static bool close_rel(double got, double want, double rel)
{
    if (got == want)
        return true;
    return fabs(got - want) <= rel * fabs(want);
}

static void check_z(const char *name, const pe_stats_ztest_t *got, double z, double p)
{
    if (!close_rel(got->z, z, 1e-12))
        fail_msg("%s: z %.17g, statsmodels %.17g", name, got->z, z);
    if (!close_rel(got->p_value, p, 1e-9 * (1 + z * z)))
        fail_msg("%s: p %.17g, statsmodels %.17g", name, got->p_value, p);
}

static void test_ztest2_reference(void **state)
{
    (void)state;
    cJSON *doc;
    const cJSON *v, *vs = load_section(&doc, "ztest2");
    int cases = 0;
    cJSON_ArrayForEach(v, vs)
    {
        pe_stats_ztest_t r;
        assert_int_equal(
            pe_stats_ztest_2prop(num(v, "k1"), num(v, "n1"), num(v, "k2"), num(v, "n2"), &r), 0);
        check_z(name_of(v), &r, num(v, "z"), num(v, "pValue"));
        /* swapping the samples flips z and keeps p */
        pe_stats_ztest_t s;
        assert_int_equal(
            pe_stats_ztest_2prop(num(v, "k2"), num(v, "n2"), num(v, "k1"), num(v, "n1"), &s), 0);
        assert_true(s.z == -r.z || (s.z == 0 && r.z == 0));
        assert_true(s.p_value == r.p_value);
        cases++;
    }
    assert_true(cases >= 20);
    printf("ztest2: %d statsmodels vectors agree\n", cases);
    cJSON_Delete(doc);
}

static void test_ztest1_reference(void **state)
{
    (void)state;
    cJSON *doc;
    const cJSON *v, *vs = load_section(&doc, "ztest1");
    int cases = 0;
    cJSON_ArrayForEach(v, vs)
    {
        pe_stats_ztest_t r;
        assert_int_equal(pe_stats_ztest_1prop(num(v, "k"), num(v, "n"), num(v, "p0"), &r), 0);
        check_z(name_of(v), &r, num(v, "z"), num(v, "pValue"));
        cases++;
    }
    assert_true(cases >= 20);
    printf("ztest1: %d statsmodels vectors agree\n", cases);
    cJSON_Delete(doc);
}

static void test_bh_reference(void **state)
{
    (void)state;
    cJSON *doc;
    const cJSON *v, *vs = load_section(&doc, "bh");
    int cases = 0;
    cJSON_ArrayForEach(v, vs)
    {
        const cJSON *pj = cJSON_GetObjectItemCaseSensitive(v, "p");
        const cJSON *qj = cJSON_GetObjectItemCaseSensitive(v, "q");
        size_t m = (size_t)cJSON_GetArraySize(pj);
        assert_int_equal(m, (size_t)cJSON_GetArraySize(qj));
        double *p = calloc(m, sizeof *p), *q = calloc(m, sizeof *q), *rev = calloc(m, sizeof *q);
        double *want = calloc(m, sizeof *want);
        size_t *scratch = calloc(m, sizeof *scratch);
        assert_true(p && q && rev && want && scratch);
        for (size_t i = 0; i < m; i++) {
            p[i] = cJSON_GetArrayItem(pj, (int)i)->valuedouble;
            want[i] = cJSON_GetArrayItem(qj, (int)i)->valuedouble;
        }
        assert_int_equal(pe_stats_fdr_bh(p, m, q, scratch), 0);
        for (size_t i = 0; i < m; i++)
            if (!close_rel(q[i], want[i], 1e-12))
                fail_msg("%s[%zu]: q %.17g, statsmodels %.17g", name_of(v), i, q[i], want[i]);
        /* reversed input, reversed output */
        for (size_t i = 0; i < m; i++)
            rev[i] = p[m - 1 - i];
        assert_int_equal(pe_stats_fdr_bh(rev, m, rev, scratch), 0); /* in place */
        for (size_t i = 0; i < m; i++)
            assert_true(rev[m - 1 - i] == q[i]);
        free(p);
        free(q);
        free(rev);
        free(want);
        free(scratch);
        cases++;
    }
    assert_true(cases >= 20);
    printf("bh: %d statsmodels families agree\n", cases);
    cJSON_Delete(doc);
}

static void test_refusals(void **state)
{
    (void)state;
    pe_stats_ztest_t r;
    const double bad[] = {-1, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pe_stats_ztest_2prop(bad[i], 10, 1, 10, &r), PE_EINVAL);
        assert_true(r.z == 0 && r.p_value == 1);
        assert_int_equal(pe_stats_ztest_2prop(1, 10, 1, bad[i], &r), PE_EINVAL);
        assert_int_equal(pe_stats_ztest_1prop(bad[i], 10, 0.5, &r), PE_EINVAL);
        assert_int_equal(pe_stats_ztest_1prop(1, 10, bad[i], &r), PE_EINVAL);
    }
    assert_int_equal(pe_stats_ztest_2prop(11, 10, 1, 10, &r), PE_EINVAL); /* k > n */
    assert_int_equal(pe_stats_ztest_2prop(1, 10, 3, 2, &r), PE_EINVAL);
    assert_int_equal(pe_stats_ztest_1prop(11, 10, 0.5, &r), PE_EINVAL);
    assert_int_equal(pe_stats_ztest_1prop(1, 10, 0, &r), PE_EINVAL);
    assert_int_equal(pe_stats_ztest_1prop(1, 10, 1, &r), PE_EINVAL);

    double p[3] = {0.1, 0.2, 0.3}, q[3];
    size_t scratch[3];
    assert_int_equal(pe_stats_fdr_bh(p, 0, q, scratch), 0);
    p[1] = NAN;
    assert_int_equal(pe_stats_fdr_bh(p, 3, q, scratch), PE_EINVAL);
    p[1] = 1.5;
    assert_int_equal(pe_stats_fdr_bh(p, 3, q, scratch), PE_EINVAL);
    p[1] = -0.1;
    assert_int_equal(pe_stats_fdr_bh(p, 3, q, scratch), PE_EINVAL);
}

static void test_no_evidence(void **state)
{
    (void)state;
    pe_stats_ztest_t r;
    const double cases[][4] = {{0, 0, 0, 0},     {0, 0, 5, 10},    {5, 10, 0, 0},
                               {0, 100, 0, 200}, {100, 100, 7, 7}, {0, 1, 0, 1e15}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r.z = r.p_value = NAN;
        assert_int_equal(
            pe_stats_ztest_2prop(cases[i][0], cases[i][1], cases[i][2], cases[i][3], &r), 0);
        assert_true(r.z == 0 && r.p_value == 1);
    }
    assert_int_equal(pe_stats_ztest_1prop(0, 0, 0.3, &r), 0);
    assert_true(r.z == 0 && r.p_value == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ztest2_reference), cmocka_unit_test(test_ztest1_reference),
        cmocka_unit_test(test_bh_reference),     cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_no_evidence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
