/*
 * test_dropoff.c — the funnel's problem flag (pe_aggregate_dropoff_problem): a step is flagged
 * when the range's drop-off is more than 3 standard errors (binomial noise of the range plus
 * the day-to-day swing of the trailing days) above the pooled trailing drop-off.
 *
 * Invariants:
 *  1. Each case states the z it stands for, so a change of the rule shows up as a named case.
 */
#include <math.h>
#include <stdio.h>

#include "pe/aggregate.h"
#include "pe_test.h"

#define TRAIL 28

/* 28 trailing days of 200 sessions, drop-offs alternating rate − swing and rate + swing. */
static void history(double rate, double swing, double *dropped, double *n)
{
    for (int i = 0; i < TRAIL; i++) {
        n[i] = 200;
        dropped[i] = 200 * (rate + (i % 2 ? swing : -swing));
    }
}

static void test_steady_history_flags_a_real_jump_only(void **state)
{
    (void)state;
    double d[TRAIL], n[TRAIL], expected;
    history(0.20, 0.01, d, n);
    /* one day of 400 sessions: se = sqrt(.2*.8/400 + swing²·28/27) ≈ 0.0224 */
    assert_false(pe_aggregate_dropoff_problem(80, 400, d, n, TRAIL, 1, &expected)); /* z = 0 */
    assert_true(fabs(expected - 0.20) < 1e-12);
    assert_false(pe_aggregate_dropoff_problem(100, 400, d, n, TRAIL, 1, &expected)); /* z ≈ 2.2 */
    assert_true(pe_aggregate_dropoff_problem(120, 400, d, n, TRAIL, 1, &expected));  /* z ≈ 4.5 */
    /* one-sided: buyers dropping much less than usual is not a problem */
    assert_false(pe_aggregate_dropoff_problem(4, 400, d, n, TRAIL, 1, &expected));
}

static void test_noisy_history_raises_the_bar(void **state)
{
    (void)state;
    double d[TRAIL], n[TRAIL], expected;
    history(0.20, 0.10, d, n); /* days swing between 10% and 30% */
    /* the same 30% that is a problem against a steady history is within the usual swing */
    assert_false(pe_aggregate_dropoff_problem(120, 400, d, n, TRAIL, 1, &expected));
    assert_true(pe_aggregate_dropoff_problem(300, 400, d, n, TRAIL, 1, &expected)); /* 75% */
}

static void test_too_little_evidence_is_never_a_problem(void **state)
{
    (void)state;
    double d[TRAIL], n[TRAIL], expected;
    history(0.20, 0.01, d, n);
    /* fewer than 30 sessions in the range */
    assert_false(pe_aggregate_dropoff_problem(29, 29, d, n, TRAIL, 1, &expected));
    assert_true(fabs(expected - 0.20) < 1e-12);
    /* fewer than 7 trailing days with sessions: no expectation at all */
    assert_false(pe_aggregate_dropoff_problem(400, 400, d, n, 6, 1, &expected));
    assert_true(expected == -1);
    /* days without sessions do not count as history */
    for (int i = 0; i < TRAIL; i++)
        n[i] = i < 6 ? 200 : 0;
    assert_false(pe_aggregate_dropoff_problem(400, 400, d, n, TRAIL, 1, &expected));
    assert_true(expected == -1);
}

static void test_longer_ranges_average_out_the_daily_swing(void **state)
{
    (void)state;
    double d[TRAIL], n[TRAIL], expected;
    history(0.20, 0.05, d, n);
    /* 26% over one day is within the swing (z ≈ 1.1); over 28 days (5,600 sessions) the
     * swing averages out and the same rate is a shift (z ≈ 5.5) */
    assert_false(pe_aggregate_dropoff_problem(0.26 * 400, 400, d, n, TRAIL, 1, &expected));
    assert_true(pe_aggregate_dropoff_problem(0.26 * 5600, 5600, d, n, TRAIL, 28, &expected));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_history_flags_a_real_jump_only),
        cmocka_unit_test(test_noisy_history_raises_the_bar),
        cmocka_unit_test(test_too_little_evidence_is_never_a_problem),
        cmocka_unit_test(test_longer_ranges_average_out_the_daily_swing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
