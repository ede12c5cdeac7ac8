/*
 * test_input.c — the untrusted `stats analyze` input, degenerate statistics and the decision
 * helper's rules.
 *
 * Invariants checked:
 *  1. Bad input (NaN/Infinity, negative or fractional counts, sumSquares below sum²/n,
 *     conversions above n, mismatched arms, unknown or duplicate fields, wrong types) is
 *     refused with the documented code and a message that starts with the field's path.
 *  2. Degenerate but valid input (n = 0, zero variance in both arms, n = 1, zero control
 *     mean with a relative effect) gives a defined result whose undefined fields print as
 *     null: the JSON never holds NaN or Infinity, and one-sided intervals print an open end
 *     as null.
 *  3. The decision helper follows README "Statistics": rollback by the sequential method
 *     before any minimum, minimum sample size and runtime (7 days by default), SRM blocks
 *     WINNER, LOSER on a significant degradation, INCONCLUSIVE otherwise at the horizon.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/stats.h"
#include "pe_test.h"

static int parse(const char *text, pe_stats_input_t *in, pe_refusal_t *err)
{
    pe_stats_plan_t plan;
    bool has_plan;
    double runtime;
    memset(err, 0, sizeof *err);
    return pe_stats_input_parse(text, strlen(text), in, &plan, &has_plan, &runtime, err);
}

static void expect_refusal(const char *text, const char *code, const char *prefix)
{
    pe_stats_input_t in;
    pe_refusal_t err;
    int rc = parse(text, &in, &err);
    if (rc != PE_EINVAL)
        fail_msg("accepted: %s", text);
    if (strcmp(err.code, code) != 0 || strncmp(err.message, prefix, strlen(prefix)) != 0)
        fail_msg("%s: got %s \"%s\", want %s \"%s…\"", text, err.code, err.message, code, prefix);
}

/* Analyses text and returns the JSON answer (caller frees). */
static char *analyze_json(const char *text)
{
    pe_stats_input_t in;
    pe_refusal_t err;
    if (parse(text, &in, &err) != 0)
        fail_msg("refused %s: %s", text, err.message);
    pe_stats_result_t r;
    assert_int_equal(pe_stats_analyze(&in, &r, &err), 0);
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_stats_result_json(&r, NULL, &b), 0);
    assert_null(strstr(b.data, "nan"));
    assert_null(strstr(b.data, "inf"));
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    cJSON_Delete(j);
    return pe_buf_steal(&b);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refusal("", "invalid_json", "input:");
    expect_refusal("[1]", "invalid_type", "input:");
    expect_refusal("{\"metricType\":\"proportion\",\"control\":{\"n\":NaN,\"sum\":0},"
                   "\"variant\":{\"n\":1,\"sum\":0}}",
                   "invalid_json", "input:");
    expect_refusal("{\"metricType\":\"proportion\",\"control\":{\"n\":1e999,\"sum\":0},"
                   "\"variant\":{\"n\":1,\"sum\":0}}",
                   "out_of_range", "control.n:");
    expect_refusal("{\"metricType\":\"proportion\",\"control\":{\"n\":-5,\"sum\":0},"
                   "\"variant\":{\"n\":1,\"sum\":0}}",
                   "out_of_range", "control.n:");
    expect_refusal("{\"metricType\":\"proportion\",\"control\":{\"n\":5.5,\"sum\":0},"
                   "\"variant\":{\"n\":1,\"sum\":0}}",
                   "out_of_range", "control.n:");
    expect_refusal("{\"metricType\":\"proportion\",\"control\":{\"n\":5,\"sum\":-1},"
                   "\"variant\":{\"n\":1,\"sum\":0}}",
                   "out_of_range", "control.sum:");
    expect_refusal("{\"metricType\":\"proportion\",\"control\":{\"n\":5,\"sum\":6},"
                   "\"variant\":{\"n\":1,\"sum\":0}}",
                   "inconsistent", "control.sum:");
    expect_refusal(
        "{\"metricType\":\"proportion\",\"control\":{\"n\":5,\"sum\":2,\"sumSquares\":3},"
        "\"variant\":{\"n\":1,\"sum\":0}}",
        "inconsistent", "control.sumSquares:");
    expect_refusal("{\"metricType\":\"mean\",\"control\":{\"n\":4,\"sum\":40,\"sumSquares\":399},"
                   "\"variant\":{\"n\":4,\"sum\":4,\"sumSquares\":4}}",
                   "inconsistent", "control.sumSquares:");
    expect_refusal("{\"metricType\":\"mean\",\"control\":{\"n\":4,\"sum\":4},"
                   "\"variant\":{\"n\":4,\"sum\":4,\"sumSquares\":4}}",
                   "missing_field", "control.sumSquares:");
    expect_refusal("{\"metricType\":\"mean\",\"control\":{\"n\":0,\"sum\":3,\"sumSquares\":9},"
                   "\"variant\":{\"n\":4,\"sum\":4,\"sumSquares\":4}}",
                   "inconsistent", "control:");
    expect_refusal("{\"metricType\":\"proportion\",\"control\":{\"n\":5,\"sum\":1,\"preSum\":3},"
                   "\"variant\":{\"n\":5,\"sum\":1}}",
                   "mismatched_arms", "variant.preSum:");
    expect_refusal("{\"metricType\":\"mean\",\"cuped\":true,"
                   "\"control\":{\"n\":4,\"sum\":4,\"sumSquares\":4},"
                   "\"variant\":{\"n\":4,\"sum\":4,\"sumSquares\":4}}",
                   "missing_field", "control.preSum:");
    expect_refusal("{\"metricType\":\"mean\",\"cuped\":true,\"control\":{\"n\":3,\"sum\":6,"
                   "\"sumSquares\":14,\"preSum\":6,\"preSumSquares\":14,\"sumProducts\":100},"
                   "\"variant\":{\"n\":3,\"sum\":6,\"sumSquares\":14,\"preSum\":6,"
                   "\"preSumSquares\":14,\"sumProducts\":14}}",
                   "inconsistent", "control.sumProducts:");
    expect_refusal("{\"metricType\":\"proportion\",\"bogus\":1,\"control\":{\"n\":5,\"sum\":1},"
                   "\"variant\":{\"n\":5,\"sum\":1}}",
                   "unknown_field", "bogus:");
    expect_refusal("{\"metricType\":\"proportion\",\"control\":{\"n\":5,\"sum\":1,\"x\":1},"
                   "\"variant\":{\"n\":5,\"sum\":1}}",
                   "unknown_field", "control.x:");
    expect_refusal("{\"metricType\":\"proportion\",\"alpha\":0.1,\"alpha\":0.2,"
                   "\"control\":{\"n\":5,\"sum\":1},\"variant\":{\"n\":5,\"sum\":1}}",
                   "duplicate_field", "alpha:");
    expect_refusal("{\"metricType\":\"ratio\",\"control\":{\"n\":5,\"sum\":1},"
                   "\"variant\":{\"n\":5,\"sum\":1}}",
                   "out_of_range", "metricType:");
    expect_refusal("{\"metricType\":\"proportion\",\"alpha\":\"0.05\","
                   "\"control\":{\"n\":5,\"sum\":1},\"variant\":{\"n\":5,\"sum\":1}}",
                   "invalid_type", "alpha:");
    expect_refusal("{\"metricType\":\"proportion\",\"alpha\":0.7,"
                   "\"control\":{\"n\":5,\"sum\":1},\"variant\":{\"n\":5,\"sum\":1}}",
                   "out_of_range", "alpha:");
    expect_refusal("{\"metricType\":\"proportion\",\"split\":[0.5],"
                   "\"control\":{\"n\":5,\"sum\":1},\"variant\":{\"n\":5,\"sum\":1}}",
                   "invalid_type", "split:");
    expect_refusal("{\"metricType\":\"proportion\",\"split\":[0,0],"
                   "\"control\":{\"n\":5,\"sum\":1},\"variant\":{\"n\":5,\"sum\":1}}",
                   "out_of_range", "split:");
    expect_refusal("{\"metricType\":\"proportion\",\"prior\":{\"mean\":0,\"variance\":0},"
                   "\"control\":{\"n\":5,\"sum\":1},\"variant\":{\"n\":5,\"sum\":1}}",
                   "out_of_range", "prior.variance:");
    expect_refusal("{\"metricType\":\"proportion\",\"control\":{\"n\":5,\"sum\":1}}",
                   "missing_field", "variant:");
    expect_refusal("{\"metricType\":\"proportion\",\"plan\":{\"minRuntimeDays\":7},"
                   "\"control\":{\"n\":5,\"sum\":1},\"variant\":{\"n\":5,\"sum\":1}}",
                   "missing_field", "runtimeDays:");
    expect_refusal("{\"metricType\":\"proportion\",\"runtimeDays\":3,"
                   "\"plan\":{\"rollbackTriggers\":[{\"relativeChange\":0.05}]},"
                   "\"control\":{\"n\":5,\"sum\":1},\"variant\":{\"n\":5,\"sum\":1}}",
                   "out_of_range", "plan.rollbackTriggers[0].relativeChange:");
}

static void test_degenerate_results(void **state)
{
    (void)state;
    /* n = 0 in both arms: nothing is defined, everything prints null. */
    char *s = analyze_json("{\"metricType\":\"proportion\",\"control\":{\"n\":0,\"sum\":0},"
                           "\"variant\":{\"n\":0,\"sum\":0}}");
    assert_non_null(strstr(s, "\"control\":{\"mean\":null,\"variance\":null}"));
    assert_non_null(strstr(s, "\"effect\":{\"estimate\":null,\"stddev\":null,\"ciLow\":null,"
                              "\"ciHigh\":null},\"pValue\":null"));
    assert_non_null(strstr(s, "\"srm\":{\"pValue\":null,\"mismatch\":null}"));
    free(s);
    /* Zero variance in both arms: the estimate is known, no test is possible. */
    s = analyze_json("{\"metricType\":\"mean\",\"difference\":\"absolute\","
                     "\"control\":{\"n\":10,\"sum\":50,\"sumSquares\":250},"
                     "\"variant\":{\"n\":12,\"sum\":72,\"sumSquares\":432}}");
    assert_non_null(strstr(s, "\"effect\":{\"estimate\":1,\"stddev\":0,\"ciLow\":null,"
                              "\"ciHigh\":null},\"pValue\":null"));
    free(s);
    /* Zero conversions in control, relative: the relative effect is undefined. */
    s = analyze_json("{\"metricType\":\"proportion\",\"method\":\"bayesian\","
                     "\"control\":{\"n\":100,\"sum\":0},\"variant\":{\"n\":100,\"sum\":3}}");
    assert_non_null(strstr(s, "\"estimate\":null"));
    assert_non_null(strstr(s, "\"chanceToWin\":null,\"risk\":null"));
    free(s);
    /* n = 1 for a mean metric: variance undefined. */
    s = analyze_json("{\"metricType\":\"mean\",\"control\":{\"n\":1,\"sum\":3,\"sumSquares\":9},"
                     "\"variant\":{\"n\":2,\"sum\":9,\"sumSquares\":41}}");
    assert_non_null(strstr(s, "\"control\":{\"mean\":3,\"variance\":null}"));
    free(s);
    /* One-sided interval: the open end prints null. */
    s = analyze_json("{\"metricType\":\"proportion\",\"sides\":\"greater\",\"cuped\":false,"
                     "\"control\":{\"n\":1000,\"sum\":100},\"variant\":{\"n\":1000,\"sum\":130}}");
    assert_non_null(strstr(s, "\"ciHigh\":null},\"pValue\":0.0"));
    assert_non_null(strstr(s, "\"cuped\":null"));
    free(s);
    /* CUPED with a covariate without variance: theta null, analysis unadjusted. */
    s = analyze_json("{\"metricType\":\"mean\",\"cuped\":true,\"control\":{\"n\":3,\"sum\":6,"
                     "\"sumSquares\":14,\"preSum\":3,\"preSumSquares\":3,\"sumProducts\":6},"
                     "\"variant\":{\"n\":3,\"sum\":9,\"sumSquares\":29,\"preSum\":3,"
                     "\"preSumSquares\":3,\"sumProducts\":9}}");
    assert_non_null(strstr(s, "\"cuped\":{\"theta\":null,\"varianceReduction\":null}"));
    free(s);
}

/* ---- decisions ------------------------------------------------------------------------------ */

static pe_stats_decision_t decide(double nc, double cc, double nv, double cv,
                                  const pe_stats_plan_t *plan, double days, double split_v)
{
    pe_stats_input_t in;
    pe_stats_input_defaults(&in);
    in.control = (pe_stats_arm_t){.n = nc, .sum = cc, .sum_squares = cc};
    in.variant = (pe_stats_arm_t){.n = nv, .sum = cv, .sum_squares = cv};
    in.split[1] = split_v;
    pe_stats_decision_t d;
    pe_refusal_t err;
    assert_int_equal(pe_stats_decide(&in, plan, days, &d, &err), 0);
    assert_true(d.reasons != 0);
    return d;
}

static void test_decisions(void **state)
{
    (void)state;
    pe_stats_plan_t plan;
    pe_stats_plan_defaults(&plan);
    assert_true(plan.min_runtime_days == 7);
    plan.min_units = 10000;

    /* Strong improvement but only 3 days and too few units: keep running. */
    pe_stats_decision_t d = decide(5000, 500, 5000, 700, &plan, 3, 0.5);
    assert_int_equal(d.verdict, PE_STATS_KEEP_RUNNING);
    assert_true(d.reasons & PE_STATS_REASON_MIN_RUNTIME);
    assert_true(d.reasons & PE_STATS_REASON_MIN_SAMPLE);

    /* Same after 7 days and enough units: winner. */
    d = decide(20000, 2000, 20000, 2400, &plan, 7, 0.5);
    assert_int_equal(d.verdict, PE_STATS_WINNER);
    assert_int_equal(d.reasons, PE_STATS_REASON_IMPROVEMENT);

    /* An SRM (60/40 configured, 50/50 observed) blocks the winner. */
    d = decide(20000, 2000, 20000, 2400, &plan, 7, 2.0 / 3.0);
    assert_int_equal(d.verdict, PE_STATS_INCONCLUSIVE);
    assert_true(d.reasons & PE_STATS_REASON_SRM);

    /* Significant degradation at the horizon: loser. */
    d = decide(20000, 2000, 20000, 1800, &plan, 8, 0.5);
    assert_int_equal(d.verdict, PE_STATS_LOSER);

    /* Nothing significant at the horizon: inconclusive. */
    d = decide(20000, 2000, 20000, 2010, &plan, 8, 0.5);
    assert_int_equal(d.verdict, PE_STATS_INCONCLUSIVE);
    assert_int_equal(d.reasons, PE_STATS_REASON_NOT_SIGNIFICANT);

    /* Rollback trigger (−5% with significance) fires on day 1, below every minimum. */
    plan.n_triggers = 1;
    plan.triggers[0] = (pe_stats_trigger_t){.relative_change = -0.05, .alpha = 0.05};
    d = decide(8000, 800, 8000, 560, &plan, 1, 0.5);
    assert_int_equal(d.verdict, PE_STATS_ROLLBACK);
    assert_int_equal(d.trigger, 0);

    /* The trigger uses the sequential method: a drop the fixed-horizon test calls significant
     * (p ≈ 0.04) but the always-valid sequence does not is no rollback. */
    pe_stats_input_t in;
    pe_stats_input_defaults(&in);
    in.control = (pe_stats_arm_t){.n = 8000, .sum = 800, .sum_squares = 800};
    in.variant = (pe_stats_arm_t){.n = 8000, .sum = 715, .sum_squares = 715};
    pe_stats_result_t fixed;
    pe_refusal_t err;
    assert_int_equal(pe_stats_analyze(&in, &fixed, &err), 0);
    assert_true(fixed.effect.p_value < 0.05 && fixed.effect.estimate <= -0.05);
    d = decide(8000, 800, 8000, 715, &plan, 1, 0.5);
    assert_int_equal(d.verdict, PE_STATS_KEEP_RUNNING);

    /* Sequential plan with a maximum keeps running while not significant. */
    plan.n_triggers = 0;
    plan.method = PE_STATS_SEQUENTIAL;
    plan.max_runtime_days = 28;
    d = decide(20000, 2000, 20000, 2010, &plan, 10, 0.5);
    assert_int_equal(d.verdict, PE_STATS_KEEP_RUNNING);
    assert_int_equal(d.reasons, PE_STATS_REASON_NOT_SIGNIFICANT);
    d = decide(20000, 2000, 20000, 2010, &plan, 28, 0.5);
    assert_int_equal(d.verdict, PE_STATS_INCONCLUSIVE);
    assert_true(d.reasons & PE_STATS_REASON_MAX_RUNTIME);

    /* Bayesian plan: chance to win ≥ 1 − alpha. */
    plan.method = PE_STATS_BAYESIAN;
    d = decide(20000, 2000, 20000, 2400, &plan, 28, 0.5);
    assert_int_equal(d.verdict, PE_STATS_WINNER);

    /* No data at all after the minimums: inconclusive, insufficient data. */
    plan.min_units = 0;
    d = decide(100, 0, 100, 0, &plan, 28, 0.5);
    assert_int_equal(d.verdict, PE_STATS_INCONCLUSIVE);
    assert_true(d.reasons & PE_STATS_REASON_INSUFFICIENT_DATA);
}

static void test_sequential_wider_than_fixed(void **state)
{
    (void)state;
    pe_stats_diff_t d = {.estimate = 0.01,
                         .var_variant = 1e-5,
                         .var_control = 1e-5,
                         .n_variant = 5000,
                         .n_control = 5000};
    for (int s = 0; s <= PE_STATS_LESS; s++) {
        pe_stats_test_t seq;
        pe_stats_posterior_t z; /* flat prior: the normal interval */
        assert_int_equal(pe_stats_sequential(&d, 5000, 0.05, (pe_stats_sides_t)s, &seq), 0);
        assert_int_equal(pe_stats_bayes(&d, NULL, 0.05, (pe_stats_sides_t)s, &z), 0);
        assert_true(seq.ci_low <= z.ci_low && seq.ci_high >= z.ci_high);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_degenerate_results),
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_sequential_wider_than_fixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
