/*
 * test_decide.c — the experiment decision rule (src/experiments/decide.c): each rule on
 * hand-built arms, then its error rates measured by simulation.
 *
 * Hand-built arms: refusals name the field; KEEP_RUNNING's sentence word for word and byte for
 * byte twice; a trigger fires only at or below its threshold, past its minimum sample and the
 * 100-unit floor; a checkout nobody orders from (zero variance) is rolled back by the trigger,
 * or by the profit guardrail when no trigger watches the primary; the guardrail, and a profit
 * trigger of its own before it; SRM freezes even a harmful change and lets it be rolled back
 * under the split it was drawn with; PROVE waits for the window and the sample; a conversion
 * win that costs profit is ROLLBACK_LOSER, not PROVE; a significant loss at the final look is
 * ROLLBACK_LOSER, or ROLLBACK when the monitor sees it; the extension (p = 0.038 proves with
 * one final look, is EXTEND with two, KEEP_RUNNING inside the extension, ROLLBACK_INCONCLUSIVE
 * at its end, PROVE at a first final look after the maximum); the maximum reached short of
 * the sample; CUPED accepted and ignored without a covariate and narrowing the interval with
 * one (0.089 → 0.040 at ρ ≈ 0.9); sentences stay valid UTF-8 under a 600-byte name.
 *
 * Simulations. Each experiment is looked at every 2 simulated hours (12 looks a day) for up to
 * 21 days, as a caller would: it acts on the first terminal action, records EXTEND and keeps
 * looking through FREEZE_SRM. Plan: alpha 0.05, a 14-day window, one extension to 21 days,
 * the default trigger (primary −5 %) and profit guardrail (−5 %), minimum sample per arm =
 * pe_stats_sample_size(conversion 0.30, mde 0.10, two-sided, power 0.8) = 3,760. Units: a
 * Bernoulli(0.30) checkout conversion, a lognormal order value (median 60, σ 0.6), cost 60 %
 * of the list price, gross profit = value × price multiplier − cost; 47 units a look (the
 * planned sample per arm by day 14, 3 % to spare for the random split) unless said otherwise.
 * Streams: pe_sim_rng_stream(20261207, scenario, run). The whole program takes 4.5 s in the
 * ASan + UBSan Debug build (1,000 A/A runs, 200 for each other scenario).
 * Measured 2026-12-07:
 *  1. A/A, 1,000 runs: falsely rolled back 30 = 3.0 % (asserted ≤ 5 %): automatically 15
 *     (1.5 %; 5 by the profit guardrail; bound alpha), as ROLLBACK_LOSER at a final look 15
 *     (1.5 %; bound alpha/2); falsely PROVEN 21 = 2.1 % (asserted ≤ 5 %; bound alpha/2), 14 at
 *     the first final look and 7 at the extension's end although 96.2 % of runs were extended
 *     and looked at 84 more times after the window end. Proving on the fixed-horizon test at
 *     every look after the window end would have proven 5.4 %. SRM's repeated check froze
 *     1.5 % of runs at some look (2 still frozen at day 21).
 *  2. True −10 % conversion (so −10 % profit per visitor), 200 runs at twice the planned
 *     traffic (93 units a look): rolled back by the window end 97.5 % (asserted ≥ 90 %):
 *     automatically 91.0 % (44 of 184 by the profit guardrail), as ROLLBACK_LOSER on day 14
 *     6.5 %; median time to the automatic rollback 5.92 days; never proven. At the planned
 *     traffic (not asserted): 75.5 %, automatically 62.0 %, median 8.58 days. No test at level
 *     0.05 can reach 90 % there: the planned sample puts −10 % at 2.80 standard errors, and
 *     even the most powerful single one-sided test at the window end has Φ(2.80 − 1.645) =
 *     87.6 %. Hence the recommender plans at 90 % power: with the sample that asks for (1.339
 *     times the traffic), 90.0 % (asserted ≥ 90 %), automatically 78.0 %.
 *  3. True +10 % conversion, the planned traffic, 200 runs: PROVEN 90.5 % (asserted ≥ 80 %),
 *     75.5 % at the first final look, the rest after the extension; never rolled back.
 *  4. A discount, conversion +8 % and prices × 0.85 with cost unchanged (profit per visitor
 *     1.08 × 0.25/0.40 − 1 = −32.5 %), 200 runs: never PROVEN (asserted); rolled back in 100 %
 *     (asserted ≥ 90 %), all automatically by the profit guardrail, median 1.92 days.
 *  5. SRM: the treatment gets 45 % of units against a configured 50/50 and converts 10 %
 *     better, 200 runs: FREEZE_SRM at the end of every run (asserted), first frozen after a
 *     median 1.62 days; never rolled back or proven (asserted: no action after any freeze).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/experiments.h"
#include "pe/sim.h"
#include "pe_test.h"

#define MINUS          "\xe2\x88\x92"
#define SIM_SEED_CUPED 7u

/* ---- hand-built arms ------------------------------------------------------------------------- */

#define PLANNED 3760.0 /* pe_stats_sample_size: baseline 0.30, mde 0.10, alpha 0.05, power 0.8 */
/* The traffic that brings the sample planned for 90 % power (the recommender's) by the window
 * end, in units of PLANNED: ((1.959964 + 1.281552) / (1.959964 + 0.841621))^2. */
#define POWER_90_TRAFFIC 1.3386

static pe_stats_arm_t prop_arm(double n, double k)
{
    return (pe_stats_arm_t){n, k, k, 0, 0, 0};
}

/* A mean-metric arm with the given mean and standard deviation (n − 1 denominator). */
static pe_stats_arm_t mean_arm(double n, double mean, double sd)
{
    return (pe_stats_arm_t){n, n * mean, (n - 1) * sd * sd + n * mean * mean, 0, 0, 0};
}

static void plan_hand(pe_experiments_plan_t *plan)
{
    pe_experiments_plan_defaults(plan);
    plan->min_units = PLANNED;
    plan->window_days = 14;
}

/* n units per arm converting k0 / k1, profit per visitor with means m0 / m1 (sd 40). */
static void look_hand(pe_experiments_look_t *look, double n, double k0, double k1, double m0,
                      double m1, double days)
{
    memset(look, 0, sizeof *look);
    look->primary_name = "checkout conversion";
    look->primary_type = PE_STATS_PROPORTION;
    look->primary[0] = prop_arm(n, k0);
    look->primary[1] = prop_arm(n, k1);
    look->profit[0] = mean_arm(n, m0, 40);
    look->profit[1] = mean_arm(n, m1, 40);
    look->runtime_days = days;
}

static pe_experiments_decision_t decide_ok(const pe_experiments_plan_t *plan,
                                           const pe_experiments_look_t *look)
{
    pe_experiments_decision_t d;
    pe_refusal_t err;
    int rc = pe_experiments_decide(plan, look, &d, &err);
    if (rc != 0)
        fail_msg("refused: %s", err.message);
    print_message("  %-22s %s\n", pe_experiments_action_name(d.action), d.reason);
    return d;
}

static void expect_in(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("\"%s\" lacks \"%s\"", text, part);
}

static void expect_refusal(const pe_experiments_plan_t *plan, const pe_experiments_look_t *look,
                           const char *prefix)
{
    pe_experiments_decision_t d;
    pe_refusal_t err;
    memset(&err, 0, sizeof err);
    assert_int_equal(pe_experiments_decide(plan, look, &d, &err), PE_EINVAL);
    if (strncmp(err.message, prefix, strlen(prefix)) != 0)
        fail_msg("refusal \"%s\" does not start with \"%s\"", err.message, prefix);
    assert_int_equal(d.action, PE_EXPERIMENTS_KEEP_RUNNING);
    assert_true(isnan(d.evidence.effect));
    expect_in(d.reason, "No decision");
}

static void test_plan_defaults_and_refusals(void **state)
{
    (void)state;
    pe_experiments_plan_t plan, bad;
    pe_experiments_plan_defaults(&plan);
    assert_true(plan.alpha == 0.05 && plan.window_days == 7 && isnan(plan.max_window_days));
    assert_int_equal(plan.n_triggers, 1);
    assert_int_equal(plan.triggers[0].metric, PE_EXPERIMENTS_PRIMARY);
    assert_true(plan.triggers[0].threshold == -0.05 && plan.guardrail_threshold == -0.05);
    assert_int_equal(pe_experiments_plan_check(&plan, NULL), 0);

    pe_experiments_look_t look;
    look_hand(&look, 500, 150, 150, 20, 20, 1);
    bad = plan;
    bad.alpha = 0;
    expect_refusal(&bad, &look, "plan.alpha:");
    bad = plan;
    bad.max_window_days = 7;
    expect_refusal(&bad, &look, "plan.maxWindowDays:");
    bad = plan;
    bad.split[1] = 0;
    expect_refusal(&bad, &look, "plan.split[1]:");
    bad = plan;
    bad.n_triggers = PE_EXPERIMENTS_MAX_TRIGGERS + 1;
    expect_refusal(&bad, &look, "plan.triggers:");
    bad = plan;
    bad.triggers[0].threshold = 0.1;
    expect_refusal(&bad, &look, "plan.triggers[0].threshold:");
    bad = plan;
    bad.triggers[0].metric = (pe_experiments_metric_t)7;
    expect_refusal(&bad, &look, "plan.triggers[0].metric:");
    bad = plan;
    bad.guardrail_threshold = NAN;
    expect_refusal(&bad, &look, "plan.guardrailThreshold:");
    bad = plan;
    bad.sequential_tuning = -1;
    expect_refusal(&bad, &look, "plan.sequentialTuning:");

    pe_experiments_look_t l = look;
    l.primary[1].sum = 600;
    l.primary[1].sum_squares = 600;
    expect_refusal(&plan, &l, "look.primary: variant.sum");
    l = look;
    l.primary[1].n = 501;
    expect_refusal(&plan, &l, "look.primary[1].n:");
    l = look;
    l.profit[0].sum_squares = 0;
    expect_refusal(&plan, &l, "look.profit: control.sumSquares");
    l = look;
    l.runtime_days = -1;
    expect_refusal(&plan, &l, "look.runtimeDays:");
    l = look;
    l.extended = true;
    expect_refusal(&plan, &l, "look.extended:");
    assert_string_equal(pe_experiments_action_name(PE_EXPERIMENTS_FREEZE_SRM), "FREEZE_SRM");
    assert_string_equal(pe_experiments_action_name((pe_experiments_action_t)99), "UNKNOWN");
}

static void test_keep_running(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    plan_hand(&plan);
    pe_experiments_look_t look;
    look_hand(&look, 500, 150, 155, 20, 20.5, 2);
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_KEEP_RUNNING);
    assert_int_equal(d.trigger, PE_EXPERIMENTS_NO_TRIGGER);
    assert_int_equal(d.evidence.method, PE_STATS_SEQUENTIAL);
    assert_true(fabs(d.evidence.effect - 5.0 / 150) < 1e-12);
    assert_true(d.evidence.ci_low < 0 && d.evidence.ci_high > 0 && d.evidence.p_value == 1);
    assert_true(d.units[0] == 500 && d.units[1] == 500 && d.srm_p == 1);
    assert_true(isnan(d.guardrail.effect));
    assert_string_equal(d.reason, "checkout conversion +3.3 % [" MINUS "31.8 %, +38.4 %], "
                                  "always-valid p = 1.00 after 1,000 units; the proof waits for "
                                  "14 days (2 days so far) and 3,760 units per arm (500 so far).");
    /* the same look twice: the same decision, byte for byte */
    pe_experiments_decision_t again = decide_ok(&plan, &look);
    assert_memory_equal(&d, &again, sizeof d);
}

static void test_rollback_trigger(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    plan_hand(&plan);
    pe_experiments_look_t look;
    look_hand(&look, 3000, 900, 750, 20, 20, 3); /* 0.30 → 0.25: −16.7 % */
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    assert_int_equal(d.trigger, 0);
    assert_int_equal(d.evidence.metric, PE_EXPERIMENTS_PRIMARY);
    assert_int_equal(d.evidence.method, PE_STATS_SEQUENTIAL);
    assert_true(fabs(d.evidence.effect + 1.0 / 6) < 1e-12);
    /* one-sided bounds at alpha/2 (two monitored metrics share alpha), symmetric about the
     * estimate, the upper one below 0 */
    assert_true(d.evidence.alpha == 0.025);
    assert_true(d.evidence.ci_high < 0 && d.evidence.ci_low < d.evidence.effect);
    assert_true(fabs((d.evidence.ci_high - d.evidence.effect) -
                     (d.evidence.effect - d.evidence.ci_low)) < 1e-12);
    assert_true(d.evidence.p_value < 0.025 && d.evidence.always_valid_p == d.evidence.p_value);
    expect_in(d.reason, "checkout conversion " MINUS "16.7 % [" MINUS);
    expect_in(d.reason, "], always-valid p < 0.001 after 6,000 units: at or below the rollback "
                        "trigger of " MINUS "5.0 %, rolled back.");

    /* the threshold: a highly significant −3 % does not fire a −5 % trigger, fires a −2 % one */
    look_hand(&look, 200000, 60000, 58200, 20, 20, 3);
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_KEEP_RUNNING);
    plan.triggers[0].threshold = -0.02;
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    assert_true(fabs(d.evidence.effect + 0.03) < 1e-12);

    /* the trigger's minimum sample, and the floor of 100 units per arm under every trigger */
    plan_hand(&plan);
    plan.triggers[0].min_units = 5000;
    look_hand(&look, 3000, 900, 750, 20, 20, 3);
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_KEEP_RUNNING);
    plan.triggers[0].min_units = 0;
    look_hand(&look, 99, 40, 5, 20, 20, 0.5);
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_KEEP_RUNNING);
    look_hand(&look, 100, 40, 5, 20, 20, 0.5);
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_ROLLBACK);
}

/* The contract's operator and absolute thresholds: 2^18 units a side converting 0.25 and
 * 0.234375 (−6.25 %, exact in binary, so the comparisons at the threshold are exact). */
static void test_trigger_operator_and_absolute(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    pe_experiments_look_t look;
    plan_hand(&plan);
    look_hand(&look, 262144, 65536, 61440, 20, 20, 3);
    /* relative −6.25 %: lte fires at the threshold, lt does not */
    plan.triggers[0].threshold = -0.0625;
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    expect_in(d.reason, ": at or below the rollback trigger of " MINUS "6.2 %");
    plan.triggers[0].strict = true;
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_KEEP_RUNNING);
    plan.triggers[0].threshold = -0.05;
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    expect_in(d.reason, ": below the rollback trigger of " MINUS "5.0 %");
    /* absolute: the treatment's estimated level against the threshold */
    plan.triggers[0] = (pe_experiments_trigger_t){
        .metric = PE_EXPERIMENTS_PRIMARY, .threshold = 0.234375, .absolute = true};
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    assert_int_equal(d.trigger, 0);
    expect_in(d.reason, ": the treatment at 0.2344, at or below the rollback trigger of 0.2344");
    plan.triggers[0].strict = true;
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_KEEP_RUNNING);
    plan.triggers[0].threshold = 0.24;
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_ROLLBACK);
    /* significantly worse, but still above the level the merchant set: no rollback */
    plan.triggers[0].threshold = 0.20;
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_KEEP_RUNNING);
    /* below the level, but no worse than control (the whole store fell): no rollback */
    plan.triggers[0].threshold = 0.5;
    look_hand(&look, 262144, 65536, 65536, 20, 20, 3);
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_KEEP_RUNNING);
    /* an absolute threshold on profit per visitor (money a visitor): 20 → 18 */
    plan_hand(&plan);
    plan.triggers[0] = (pe_experiments_trigger_t){
        .metric = PE_EXPERIMENTS_PROFIT, .threshold = 18.5, .absolute = true, .strict = true};
    plan.guardrail_threshold = -0.5; /* out of the way */
    look_hand(&look, 30000, 9000, 9000, 20, 18, 3);
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    assert_int_equal(d.trigger, 0);
    assert_int_equal(d.evidence.metric, PE_EXPERIMENTS_PROFIT);
    expect_in(d.reason, "the treatment at 18, below the rollback trigger of 18.5");
    /* refusals */
    plan.triggers[0].threshold = NAN;
    expect_refusal(&plan, &look, "plan.triggers[0].threshold: must be a finite number");
    plan.triggers[0].threshold = 18.5;
    plan.triggers[0].absolute = false;
    expect_refusal(&plan, &look, "plan.triggers[0].threshold: must be a relative change");
    plan.triggers[0].threshold = -0.1;
    plan.triggers[0].window_days = -1;
    expect_refusal(&plan, &look, "plan.triggers[0].windowDays");
}

/* A trigger with a trailing window shorter than the plan's horizon: its own arms once the
 * window is shorter than the runtime, its own share of alpha split over the windows. */
static void test_trigger_window(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    pe_experiments_look_t look;
    plan_hand(&plan); /* 14-day window, no extension: the horizon is 14 days */
    plan.triggers[0].window_days = 1;
    assert_true(pe_experiments_trigger_windowed(&plan, 0));
    assert_false(pe_experiments_trigger_windowed(&plan, 1));
    /* day 3 of an experiment whose whole arms show nothing, while the last day's units
     * convert 0.30 → 0.20 */
    look_hand(&look, 3000, 900, 900, 20, 20, 3);
    expect_refusal(&plan, &look, "look.triggerArms[0]: ");
    look.trigger_given[0] = true;
    look.trigger_arms[0][0] = prop_arm(1000, 300);
    look.trigger_arms[0][1] = prop_arm(1000, 200);
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    assert_int_equal(d.trigger, 0);
    assert_true(fabs(d.evidence.effect + 1.0 / 3) < 1e-12);
    /* two families (profit, the windowed trigger), the trigger's half over 14 windows */
    assert_true(fabs(d.evidence.alpha - 0.025 / 14) < 1e-15);
    expect_in(d.reason, "checkout conversion over the units of the last 1 day " MINUS "33.3 %");
    expect_in(d.reason, "after 2,000 units");
    /* within the first day the window holds every unit: the whole arms, no arms needed */
    look_hand(&look, 3000, 900, 750, 20, 20, 0.5);
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    assert_true(fabs(d.evidence.alpha - 0.025 / 14) < 1e-15);
    /* a window as long as the horizon is the whole experiment, at the family's level */
    plan.triggers[0].window_days = 14;
    assert_false(pe_experiments_trigger_windowed(&plan, 0));
    look_hand(&look, 3000, 900, 750, 20, 20, 3);
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    assert_true(d.evidence.alpha == 0.025);
    /* an extension makes the horizon 21 days: a 14-day window is windowed then, 2 windows */
    plan.max_window_days = 21;
    assert_true(pe_experiments_trigger_windowed(&plan, 0));
    d = decide_ok(&plan, &look);
    assert_true(fabs(d.evidence.alpha - 0.025 / 2) < 1e-15);
}

static void test_broken_checkout(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    plan_hand(&plan);
    pe_experiments_look_t look;
    look_hand(&look, 200, 60, 0, 20, 0, 0.5);
    look.profit[1] = mean_arm(200, 0, 0); /* no orders, no profit: zero variance */
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    assert_true(d.evidence.effect == -1);
    expect_in(d.reason, "checkout conversion " MINUS "100.0 % [" MINUS "100.0 %, " MINUS);
    /* with the primary unwatched, the profit guardrail catches it */
    plan.n_triggers = 0;
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    assert_int_equal(d.trigger, PE_EXPERIMENTS_GUARDRAIL);
    assert_true(d.evidence.alpha == 0.05); /* one monitored metric: all of alpha */
}

static void test_profit_guardrail(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    plan_hand(&plan);
    pe_experiments_look_t look;
    look_hand(&look, 3000, 900, 905, 20, 16, 4); /* profit per visitor −20 % */
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK);
    assert_int_equal(d.trigger, PE_EXPERIMENTS_GUARDRAIL);
    assert_int_equal(d.evidence.metric, PE_EXPERIMENTS_PROFIT);
    assert_true(fabs(d.evidence.effect + 0.2) < 1e-12);
    expect_in(d.reason, "profit per visitor " MINUS "20.0 % [");
    expect_in(d.reason, "after 6,000 units: at or below the profit guardrail of " MINUS
                        "5.0 %, rolled back.");
    /* a profit trigger of its own fires first, as a trigger */
    plan.triggers[1] = (pe_experiments_trigger_t){
        .metric = PE_EXPERIMENTS_PROFIT, .threshold = -0.10, .min_units = 1000};
    plan.n_triggers = 2;
    d = decide_ok(&plan, &look);
    assert_int_equal(d.trigger, 1);
    plan.guardrail_threshold = -0.25; /* the guardrail alone would not fire */
    plan.n_triggers = 1;
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_KEEP_RUNNING);
}

static void test_srm_freezes(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    plan_hand(&plan);
    pe_experiments_look_t look;
    look_hand(&look, 5500, 1650, 1000, 20, 10, 20);
    look.primary[1] = prop_arm(4500, 1000);
    look.profit[1] = mean_arm(4500, 10, 40);
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_FREEZE_SRM);
    assert_true(d.srm_p < 1e-6 && d.units[0] == 5500 && d.units[1] == 4500);
    assert_string_equal(d.reason,
                        "Sample ratio mismatch: 5,500 control and 4,500 treatment units against a "
                        "configured 50/50 split (p < 0.001); automatic decisions are frozen until "
                        "the assignment is fixed.");
    /* the split the data were drawn with: no mismatch, and the harm is acted on */
    plan.split[0] = 55;
    plan.split[1] = 45;
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_ROLLBACK);
}

static void test_prove(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    plan_hand(&plan);
    pe_experiments_look_t look;
    look_hand(&look, 4000, 1200, 1380, 20, 23, 14); /* +15 % both */
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_PROVE);
    assert_int_equal(d.evidence.method, PE_STATS_FREQUENTIST);
    assert_true(d.evidence.alpha == 0.05); /* no extension possible: one final look */
    assert_true(fabs(d.evidence.effect - 0.15) < 1e-12 && d.evidence.ci_low > 0);
    assert_true(d.evidence.p_value < 0.05 && d.evidence.always_valid_p < 1);
    assert_int_equal(d.guardrail.metric, PE_EXPERIMENTS_PROFIT);
    assert_true(fabs(d.guardrail.effect - 0.15) < 1e-12 && d.guardrail.ci_high > 0.15);
    expect_in(d.reason, "checkout conversion +15.0 % [+");
    expect_in(d.reason, "after 8,000 units and 14 days; profit per visitor +15.0 % [+");
    expect_in(d.reason, "] is not significantly worse. Proven.");
    /* not before the window, not below the sample while a maximum window is still ahead */
    look.runtime_days = 13.9;
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_KEEP_RUNNING);
    expect_in(d.reason, "the proof waits for 14 days (13.9 days so far).");
    plan.max_window_days = 21;
    look_hand(&look, 3000, 900, 1035, 20, 23, 15);
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_KEEP_RUNNING);
    expect_in(d.reason, "the proof waits for 3,760 units per arm (3,000 so far).");
}

static void test_profit_blocks_proof(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    plan_hand(&plan);
    pe_experiments_look_t look;
    /* conversion +15 %, profit per visitor −4 % (sd 10): significant at the final look, but
     * above the −5 % guardrail, so no rollback before it */
    look_hand(&look, 4000, 1200, 1380, 20, 19.2, 14);
    look.profit[0] = mean_arm(4000, 20, 10);
    look.profit[1] = mean_arm(4000, 19.2, 10);
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK_LOSER);
    assert_int_equal(d.evidence.metric, PE_EXPERIMENTS_PROFIT);
    assert_true(d.guardrail.ci_high < 0 && d.guardrail.p_value < 0.05);
    expect_in(d.reason, "profit per visitor " MINUS "4.0 % [");
    expect_in(d.reason, "after 8,000 units and 14 days: significantly worse, although checkout "
                        "conversion +15.0 % [+");
    expect_in(d.reason, "] is better. Not proven, rolled back.");
}

static void test_loser(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    plan_hand(&plan);
    plan.n_triggers = 0; /* nobody watches the primary before the end */
    pe_experiments_look_t look;
    look_hand(&look, 4000, 1200, 1104, 20, 20, 14); /* −8 % */
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK_LOSER);
    assert_int_equal(d.evidence.metric, PE_EXPERIMENTS_PRIMARY);
    expect_in(d.reason, "checkout conversion " MINUS "8.0 % [");
    expect_in(d.reason, "after 8,000 units and 14 days: significantly worse, rolled back.");
    /* the default trigger's always-valid test is not significant here: the same */
    plan.n_triggers = 1;
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_ROLLBACK_LOSER);
    /* a harm the monitor sees is an automatic rollback, even at the final look */
    look_hand(&look, 4000, 1200, 1000, 20, 20, 14);
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_ROLLBACK);
}

/* The extension: alpha/2 at each of the two final looks, KEEP_RUNNING between them. */
static void test_extension(void **state)
{
    (void)state;
    pe_experiments_look_t look;
    look_hand(&look, 4000, 1200, 1286, 20, 21, 14);
    /* the primary's fixed-horizon p lies between alpha/2 and alpha */
    pe_stats_moments_t mc, mv;
    pe_stats_diff_t diff;
    pe_stats_test_t t;
    assert_int_equal(pe_stats_moments(PE_STATS_PROPORTION, &look.primary[0], &mc), 0);
    assert_int_equal(pe_stats_moments(PE_STATS_PROPORTION, &look.primary[1], &mv), 0);
    assert_int_equal(pe_stats_difference(&mc, &mv, PE_STATS_ABSOLUTE, &diff), 0);
    assert_int_equal(pe_stats_welch(&diff, 0.05, PE_STATS_TWO_SIDED, &t), 0);
    print_message("  primary p = %.4f\n", t.p_value);
    assert_true(t.p_value > 0.025 && t.p_value < 0.05);

    pe_experiments_plan_t plan;
    plan_hand(&plan);
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_PROVE);
    plan.max_window_days = 21;
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_EXTEND);
    assert_true(d.evidence.alpha == 0.025 && d.evidence.p_value == t.p_value);
    expect_in(d.reason, "after 8,000 units and 14 days: not significant yet (with two final "
                        "looks, each needs p < 0.025); extended once, to 21 days.");
    look.extended = true;
    look.runtime_days = 17;
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_KEEP_RUNNING);
    expect_in(d.reason, "; extended once: the final look is at 21 days (17 days so far).");
    /* the extension's final look spends the other alpha/2 */
    look.runtime_days = 21;
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK_INCONCLUSIVE);
    expect_in(d.reason, "and 21 days: no significant difference (with two final looks, each "
                        "needs p < 0.025), rolled back.");
    /* a first final look at or after the maximum is the only one: all of alpha */
    look.extended = false;
    look.runtime_days = 22;
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_PROVE);
    /* short of the sample at the window, the test waits for it until the maximum ... */
    look_hand(&look, 2000, 600, 610, 20, 20, 14);
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_KEEP_RUNNING);
    /* ... where the final look runs on what there is, at all of alpha (the only one) */
    look_hand(&look, 2000, 600, 610, 20, 20, 21);
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_ROLLBACK_INCONCLUSIVE);
    assert_true(d.evidence.alpha == 0.05);
    expect_in(d.reason, "checkout conversion +1.7 % [");
    expect_in(d.reason, "The 21-day window ended with 2,000 of the planned 3,760 units per arm.");
    /* a clear win is proven on the smaller sample: a valid test, only a less powerful one */
    look_hand(&look, 2000, 600, 720, 20, 20, 21);
    d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_PROVE);
    expect_in(d.reason, "Proven. The 21-day window ended with 2,000 of the planned 3,760");
    /* without a maximum the window is the horizon: the test ends there */
    plan.max_window_days = NAN;
    look_hand(&look, 2000, 600, 610, 20, 20, 14);
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_ROLLBACK_INCONCLUSIVE);
    look_hand(&look, 2000, 600, 610, 20, 20, 13);
    assert_int_equal(decide_ok(&plan, &look).action, PE_EXPERIMENTS_KEEP_RUNNING);
}

static void test_cuped(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    plan_hand(&plan);
    pe_experiments_look_t look;
    memset(&look, 0, sizeof look);
    look.primary_name = "revenue per visitor";
    look.primary_type = PE_STATS_MEAN;
    look.runtime_days = 3;
    pe_sim_rng_t rng;
    pe_sim_rng_stream(&rng, SIM_SEED_CUPED, 0, 0);
    for (int i = 0; i < 4000; i++) {
        int arm = i & 1;
        double x = 50 + 20 * pe_sim_rng_normal(&rng); /* the unit's pre-period */
        double y = x + 10 * pe_sim_rng_normal(&rng);  /* correlated with it (rho ≈ 0.9) */
        pe_stats_arm_t *a[2] = {&look.primary[arm], &look.profit[arm]};
        for (int k = 0; k < 2; k++) {
            a[k]->n += 1;
            a[k]->sum += y;
            a[k]->sum_squares += y * y;
            a[k]->pre_sum += x;
            a[k]->pre_sum_squares += x * x;
            a[k]->sum_products += x * y;
        }
    }
    pe_experiments_decision_t plain = decide_ok(&plan, &look);
    plan.cuped = true; /* without a covariate: accepted, ignored */
    pe_experiments_decision_t ignored = decide_ok(&plan, &look);
    assert_memory_equal(&plain, &ignored, sizeof plain);
    look.has_covariate = true;
    pe_experiments_decision_t adjusted = decide_ok(&plan, &look);
    double w0 = plain.evidence.ci_high - plain.evidence.ci_low;
    double w1 = adjusted.evidence.ci_high - adjusted.evidence.ci_low;
    print_message("  CUPED interval width %.4f → %.4f\n", w0, w1);
    assert_true(w1 < 0.6 * w0);
}

/* True when s is well-formed UTF-8 (no cut sequence, no stray continuation byte). */
static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int len = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : 4;
        if ((*p & 0xC0) == 0x80)
            return false;
        for (int i = 1; i < len; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += len;
    }
    return true;
}

static void test_reason_text(void **state)
{
    (void)state;
    pe_experiments_plan_t plan;
    plan_hand(&plan);
    plan.max_window_days = 21;
    pe_experiments_look_t look;
    look_hand(&look, 2000, 600, 610, 20, 20, 21);
    char name[601] = "";
    for (int i = 0; i < 300; i++)
        strcat(name, "\xc3\xa9"); /* é: two bytes, so any byte limit may fall inside one */
    look.primary_name = name;
    for (double days = 2; days <= 21; days += 19) {
        look.runtime_days = days;
        pe_experiments_decision_t d = decide_ok(&plan, &look);
        assert_true(utf8_valid(d.reason));
        assert_true(strlen(d.reason) < sizeof d.reason);
        expect_in(d.reason, " +1.7 % [");
    }
    /* every unit converts in both arms: an estimate, but nothing to test it with */
    look_hand(&look, 200, 200, 200, 20, 20, 2);
    expect_in(decide_ok(&plan, &look).reason, "checkout conversion 0.0 %, no variance yet after "
                                              "400 units;");
    /* no name: "primary metric"; a control without conversions has no relative effect, but
     * the absolute test still decides */
    look_hand(&look, 4000, 0, 40, 20, 20, 14);
    look.primary_name = NULL;
    plan.max_window_days = NAN;
    pe_experiments_decision_t d = decide_ok(&plan, &look);
    assert_int_equal(d.action, PE_EXPERIMENTS_PROVE);
    assert_true(isnan(d.evidence.effect));
    expect_in(d.reason, "primary metric (control at 0), p < 0.001 after 8,000 units and 14 days");
}

/* ---- simulated experiments ------------------------------------------------------------------- */

#define SIM_P0         0.30            /* baseline checkout conversion */
#define SIM_MU         4.0943445622221 /* ln 60: median order value 60 */
#define SIM_SIGMA      0.6             /* lognormal order value (mean 71.8) */
#define SIM_COST       0.6             /* cost of goods per unit of list price (40 % margin) */
#define SIM_LOOKS_DAY  12              /* a look every 2 hours */
#define SIM_WINDOW     14.0
#define SIM_MAX_WINDOW 21.0
#define SIM_MAX_RUNS   1000
#define SIM_SEED       20261207u

typedef struct {
    const char *name;
    double conv_mult;   /* treatment's conversion multiplier (the true effect) */
    double price_mult;  /* treatment's price multiplier, cost unchanged */
    double treat_share; /* the share of units the treatment really gets (configured: 0.5) */
    double traffic;     /* planned samples per arm that arrive by the end of the window */
    int runs;
    uint64_t stream;
} scenario_t;

typedef struct {
    int runs;
    int final[PE_EXPERIMENTS_FREEZE_SRM + 1]; /* the action each run ended with */
    int rollback_by_window;                   /* ROLLBACK at runtime ≤ window */
    int loser_by_window;                      /* ROLLBACK_LOSER at runtime ≤ window */
    int by_guardrail;                         /* ROLLBACKs the profit guardrail fired */
    int extended;
    int proven_first; /* PROVE at the first final look */
    int frozen;       /* runs with a FREEZE_SRM at some look */
    int acted_while_frozen;
    int naive_proof; /* A/A: fixed-horizon "better" at any look after the window end */
    double rollback_days[SIM_MAX_RUNS];
    int n_rollback;
    double freeze_days[SIM_MAX_RUNS];
    int n_freeze;
    double looks;
} tally_t;

static double planned_units(void)
{
    pe_stats_sample_size_input_t in = {PE_STATS_PROPORTION, SIM_P0, 0, 0.10, 0.05, 0.8,
                                       PE_STATS_TWO_SIDED};
    pe_stats_sample_size_t out;
    pe_refusal_t err;
    assert_int_equal(pe_stats_sample_size(&in, &out, &err), 0);
    return out.units_per_arm_ceil;
}

static void add_unit(pe_experiments_look_t *look, int arm, bool converted, double profit)
{
    pe_stats_arm_t *c = &look->primary[arm], *p = &look->profit[arm];
    c->n += 1;
    p->n += 1;
    if (converted) {
        c->sum += 1;
        c->sum_squares += 1;
    }
    p->sum += profit;
    p->sum_squares += profit * profit;
}

/* What a monitor that proved on the fixed-horizon test at every look after the window end
 * would do: two-sided Welch at alpha on the conversion, treatment better. */
static bool naive_better(const pe_experiments_look_t *look)
{
    pe_stats_moments_t mc, mv;
    pe_stats_diff_t d;
    pe_stats_test_t t;
    assert_int_equal(pe_stats_moments(PE_STATS_PROPORTION, &look->primary[0], &mc), 0);
    assert_int_equal(pe_stats_moments(PE_STATS_PROPORTION, &look->primary[1], &mv), 0);
    assert_int_equal(pe_stats_difference(&mc, &mv, PE_STATS_ABSOLUTE, &d), 0);
    assert_int_equal(pe_stats_welch(&d, 0.05, PE_STATS_TWO_SIDED, &t), 0);
    return t.p_value < 0.05 && t.estimate > 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    if (n == 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One experiment, looked at every 2 hours as the caller of pe_experiments_decide would: it
 * acts on the first terminal action, records EXTEND (look.extended), and keeps looking through
 * FREEZE_SRM (it alerts; nothing is decided). Units arrive before each look, each assigned to
 * the treatment with probability treat_share; a unit converts with SIM_P0 (× conv_mult in the
 * treatment) and then orders a lognormal value, its gross profit value × price_mult − cost. */
static void sim_run(const scenario_t *s, const pe_experiments_plan_t *plan, int run,
                    int units_per_look, bool naive, tally_t *t)
{
    pe_sim_rng_t rng;
    pe_sim_rng_stream(&rng, SIM_SEED, s->stream, (uint64_t)run);
    pe_experiments_look_t look;
    memset(&look, 0, sizeof look);
    look.primary_name = "checkout conversion";
    look.primary_type = PE_STATS_PROPORTION;
    int looks = (int)(SIM_MAX_WINDOW * SIM_LOOKS_DAY);
    pe_experiments_action_t last = PE_EXPERIMENTS_KEEP_RUNNING;
    bool frozen = false, done = false, naive_proved = false;
    for (int k = 1; k <= looks && !(done && !naive); k++) {
        for (int u = 0; u < units_per_look; u++) {
            int arm = pe_sim_rng_bernoulli(&rng, s->treat_share) ? 1 : 0;
            bool converted = pe_sim_rng_bernoulli(&rng, SIM_P0 * (arm ? s->conv_mult : 1));
            double profit = 0;
            if (converted) {
                double value = exp(SIM_MU + SIM_SIGMA * pe_sim_rng_normal(&rng));
                profit = value * (arm ? s->price_mult : 1) - SIM_COST * value;
            }
            add_unit(&look, arm, converted, profit);
        }
        look.runtime_days = (double)k / SIM_LOOKS_DAY;
        if (naive && look.runtime_days >= SIM_WINDOW && !naive_proved)
            naive_proved = naive_better(&look);
        if (done)
            continue;
        pe_experiments_decision_t d;
        pe_refusal_t err;
        if (pe_experiments_decide(plan, &look, &d, &err) != 0)
            fail_msg("run %d look %d: %s", run, k, err.message);
        t->looks += 1;
        last = d.action;
        switch (d.action) {
        case PE_EXPERIMENTS_KEEP_RUNNING:
            continue;
        case PE_EXPERIMENTS_EXTEND:
            assert_false(look.extended);
            look.extended = true;
            t->extended++;
            continue;
        case PE_EXPERIMENTS_FREEZE_SRM:
            if (!frozen)
                t->freeze_days[t->n_freeze++] = look.runtime_days;
            frozen = true;
            continue;
        case PE_EXPERIMENTS_ROLLBACK:
            t->rollback_days[t->n_rollback++] = look.runtime_days;
            t->rollback_by_window += look.runtime_days <= SIM_WINDOW;
            t->by_guardrail += d.trigger == PE_EXPERIMENTS_GUARDRAIL;
            break;
        case PE_EXPERIMENTS_ROLLBACK_LOSER:
            t->loser_by_window += look.runtime_days <= SIM_WINDOW;
            break;
        case PE_EXPERIMENTS_PROVE:
            t->proven_first += !look.extended;
            break;
        default:
            break;
        }
        t->acted_while_frozen += frozen;
        done = true;
    }
    t->final[last]++;
    t->frozen += frozen;
    t->naive_proof += naive_proved;
    t->runs++;
}

static double share(const tally_t *t, int count)
{
    return (double)count / t->runs;
}

static const tally_t *sim_scenario(const scenario_t *s, bool naive)
{
    static tally_t t;
    memset(&t, 0, sizeof t);
    assert_true(s->runs <= SIM_MAX_RUNS);
    double n = planned_units();
    pe_experiments_plan_t plan;
    pe_experiments_plan_defaults(&plan);
    plan.min_units = n;
    plan.window_days = SIM_WINDOW;
    plan.max_window_days = SIM_MAX_WINDOW;
    /* traffic × the planned sample per arm by the end of the window, with 3 % to spare for
     * the random split */
    int units_per_look = (int)ceil(2 * n * s->traffic * 1.03 / (SIM_WINDOW * SIM_LOOKS_DAY));
    for (int r = 0; r < s->runs; r++)
        sim_run(s, &plan, r, units_per_look, naive, &t);
    print_message("%s: %d runs, %d units a look (planned %.0f per arm), %.0f decisions\n", s->name,
                  t.runs, units_per_look, n, t.looks);
    for (int a = 0; a <= PE_EXPERIMENTS_FREEZE_SRM; a++)
        if (t.final[a])
            print_message("  ended %-22s %4d = %.3f\n", pe_experiments_action_name(a), t.final[a],
                          share(&t, t.final[a]));
    print_message("  by the window end: ROLLBACK %.3f, ROLLBACK_LOSER %.3f; extended %.3f; "
                  "proven at the first final look %.3f; ever frozen %.3f\n",
                  share(&t, t.rollback_by_window), share(&t, t.loser_by_window),
                  share(&t, t.extended), share(&t, t.proven_first), share(&t, t.frozen));
    print_message("  median days to ROLLBACK %.2f (%d, %d by the profit guardrail), to "
                  "FREEZE_SRM %.2f (%d)\n",
                  median(t.rollback_days, t.n_rollback), t.n_rollback, t.by_guardrail,
                  median(t.freeze_days, t.n_freeze), t.n_freeze);
    return &t;
}

static void test_sim_aa(void **state)
{
    (void)state;
    scenario_t s = {"A/A", 1.0, 1.0, 0.5, 1.0, 1000, 1};
    const tally_t *t = sim_scenario(&s, true);
    double rollback = share(t, t->final[PE_EXPERIMENTS_ROLLBACK]);
    double loser = share(t, t->final[PE_EXPERIMENTS_ROLLBACK_LOSER]);
    double proven = share(t, t->final[PE_EXPERIMENTS_PROVE]);
    print_message("  falsely rolled back %.3f (automatically %.3f, as a loser %.3f), falsely "
                  "proven %.3f; proving on the fixed-horizon test at every look after the window "
                  "end would prove %.3f\n",
                  rollback + loser, rollback, loser, proven, share(t, t->naive_proof));
    assert_true(rollback + loser <= 0.05);
    assert_true(proven <= 0.05);
    assert_true(share(t, t->naive_proof) > proven); /* the protection is real */
}

static void test_sim_harm(void **state)
{
    (void)state;
    scenario_t s = {"-10 % conversion, twice the planned traffic", 0.9, 1.0, 0.5, 2.0, 200, 2};
    const tally_t *t = sim_scenario(&s, false);
    double by_window = share(t, t->rollback_by_window + t->loser_by_window);
    print_message("  rolled back within the window %.3f (automatically %.3f)\n", by_window,
                  share(t, t->rollback_by_window));
    assert_true(by_window >= 0.90);
    assert_int_equal(t->final[PE_EXPERIMENTS_PROVE], 0);
    /* for the record: at a sample planned for 80 % power no test at level 0.05 reaches 90 %
     * (header) */
    scenario_t s1 = {"-10 % conversion, the planned traffic", 0.9, 1.0, 0.5, 1.0, 200, 6};
    t = sim_scenario(&s1, false);
    print_message("  rolled back within the window %.3f (automatically %.3f)\n",
                  share(t, t->rollback_by_window + t->loser_by_window),
                  share(t, t->rollback_by_window));
    assert_int_equal(t->final[PE_EXPERIMENTS_PROVE], 0);
    /* the recommender plans for 90 % power: (z.975 + z.90)² / (z.975 + z.80)² = 1.339 times
     * the sample above */
    scenario_t s2 = {"-10 % conversion, a sample planned for 90 % power",
                     0.9,
                     1.0,
                     0.5,
                     POWER_90_TRAFFIC,
                     200,
                     7};
    t = sim_scenario(&s2, false);
    by_window = share(t, t->rollback_by_window + t->loser_by_window);
    print_message("  rolled back within the window %.3f (automatically %.3f)\n", by_window,
                  share(t, t->rollback_by_window));
    assert_true(by_window >= 0.90);
    assert_int_equal(t->final[PE_EXPERIMENTS_PROVE], 0);
}

static void test_sim_win(void **state)
{
    (void)state;
    scenario_t s = {"+10 % conversion, the planned traffic", 1.1, 1.0, 0.5, 1.0, 200, 3};
    const tally_t *t = sim_scenario(&s, false);
    double proven = share(t, t->final[PE_EXPERIMENTS_PROVE]);
    print_message("  proven %.3f\n", proven);
    assert_true(proven >= 0.80);
    assert_int_equal(t->final[PE_EXPERIMENTS_ROLLBACK] + t->final[PE_EXPERIMENTS_ROLLBACK_LOSER],
                     0);
}

static void test_sim_discount(void **state)
{
    (void)state;
    scenario_t s = {"discount: conversion +8 %, price x0.85 (profit per visitor -32.5 %)",
                    1.08,
                    0.85,
                    0.5,
                    1.0,
                    200,
                    4};
    const tally_t *t = sim_scenario(&s, false);
    double harm =
        share(t, t->final[PE_EXPERIMENTS_ROLLBACK] + t->final[PE_EXPERIMENTS_ROLLBACK_LOSER]);
    print_message("  proven %d times, rolled back %.3f\n", t->final[PE_EXPERIMENTS_PROVE], harm);
    assert_int_equal(t->final[PE_EXPERIMENTS_PROVE], 0);
    assert_true(harm >= 0.90);
}

static void test_sim_srm(void **state)
{
    (void)state;
    scenario_t s = {"SRM: treatment gets 45 % (configured 50 %), conversion +10 %",
                    1.1,
                    1.0,
                    0.45,
                    1.0,
                    200,
                    5};
    const tally_t *t = sim_scenario(&s, false);
    print_message("  frozen %.3f, acted on %d\n", share(t, t->final[PE_EXPERIMENTS_FREEZE_SRM]),
                  t->acted_while_frozen);
    assert_int_equal(t->final[PE_EXPERIMENTS_FREEZE_SRM], t->runs);
    assert_int_equal(t->acted_while_frozen, 0);
}

/* A/A with a windowed trigger (primary down 5 %, trailing 2 days) beside the default one, and a
 * change that turns harmful on day 7 (conversion × 0.7 for units exposed from then on): the
 * window's level split keeps false rollbacks within alpha, and the late harm is caught within
 * days, where the whole-experiment test alone, diluted by the first week, is slower. */
static void sim_window(double late_mult, int runs, uint64_t stream, bool windowed, int *rolled,
                       double *days, int *n_days)
{
    double n = planned_units();
    pe_experiments_plan_t plan;
    pe_experiments_plan_defaults(&plan);
    plan.min_units = n;
    plan.window_days = SIM_WINDOW;
    if (windowed) {
        plan.n_triggers = 2;
        plan.triggers[1] = (pe_experiments_trigger_t){
            .metric = PE_EXPERIMENTS_PRIMARY, .threshold = -0.05, .window_days = 2};
    }
    int per_look = (int)ceil(2 * n * 1.03 / (SIM_WINDOW * SIM_LOOKS_DAY));
    int looks = (int)(SIM_WINDOW * SIM_LOOKS_DAY), wl = 2 * SIM_LOOKS_DAY;
    static pe_stats_arm_t batch[14 * SIM_LOOKS_DAY + 1][2]; /* a look of SIM_WINDOW each */
    *rolled = 0;
    *n_days = 0;
    for (int r = 0; r < runs; r++) {
        pe_sim_rng_t rng;
        pe_sim_rng_stream(&rng, SIM_SEED, stream, (uint64_t)r);
        pe_experiments_look_t look;
        memset(&look, 0, sizeof look);
        memset(batch, 0, sizeof batch);
        look.primary_name = "checkout conversion";
        look.primary_type = PE_STATS_PROPORTION;
        for (int k = 1; k <= looks; k++) {
            look.runtime_days = (double)k / SIM_LOOKS_DAY;
            double mult = look.runtime_days > 7 ? late_mult : 1;
            for (int u = 0; u < per_look; u++) {
                int arm = pe_sim_rng_bernoulli(&rng, 0.5) ? 1 : 0;
                bool conv = pe_sim_rng_bernoulli(&rng, SIM_P0 * (arm ? mult : 1));
                double profit =
                    conv ? exp(SIM_MU + SIM_SIGMA * pe_sim_rng_normal(&rng)) * (1 - SIM_COST) : 0;
                add_unit(&look, arm, conv, profit);
                batch[k][arm].n += 1;
                batch[k][arm].sum += conv;
                batch[k][arm].sum_squares += conv;
            }
            memset(look.trigger_arms[1], 0, sizeof look.trigger_arms[1]);
            for (int j = k; j > k - wl && j >= 1; j--)
                for (int a = 0; a < 2; a++) {
                    look.trigger_arms[1][a].n += batch[j][a].n;
                    look.trigger_arms[1][a].sum += batch[j][a].sum;
                    look.trigger_arms[1][a].sum_squares += batch[j][a].sum_squares;
                }
            look.trigger_given[1] = windowed;
            pe_experiments_decision_t d;
            pe_refusal_t err;
            if (pe_experiments_decide(&plan, &look, &d, &err) != 0)
                fail_msg("run %d look %d: %s", r, k, err.message);
            if (d.action == PE_EXPERIMENTS_ROLLBACK) {
                (*rolled)++;
                days[(*n_days)++] = look.runtime_days;
                break;
            }
            if (d.action != PE_EXPERIMENTS_KEEP_RUNNING)
                break;
        }
    }
}

static void test_sim_window(void **state)
{
    (void)state;
    static double days[SIM_MAX_RUNS];
    int rolled = 0, n = 0;
    sim_window(1.0, 400, 8, true, &rolled, days, &n);
    print_message("A/A with a 2-day windowed trigger: rolled back automatically %d of 400 = %.3f\n",
                  rolled, rolled / 400.0);
    assert_true(rolled / 400.0 <= 0.05);
    sim_window(0.7, 200, 9, true, &rolled, days, &n);
    double with = median(days, n);
    int with_rolled = rolled;
    sim_window(0.7, 200, 9, false, &rolled, days, &n);
    double without = median(days, n);
    print_message("harm from day 7 (conversion x0.7): rolled back %d of 200, median day %.2f with "
                  "the window; %d, median day %.2f without\n",
                  with_rolled, with, rolled, without);
    assert_true(with_rolled >= 180);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_defaults_and_refusals),
        cmocka_unit_test(test_keep_running),
        cmocka_unit_test(test_rollback_trigger),
        cmocka_unit_test(test_trigger_operator_and_absolute),
        cmocka_unit_test(test_trigger_window),
        cmocka_unit_test(test_broken_checkout),
        cmocka_unit_test(test_profit_guardrail),
        cmocka_unit_test(test_srm_freezes),
        cmocka_unit_test(test_prove),
        cmocka_unit_test(test_profit_blocks_proof),
        cmocka_unit_test(test_loser),
        cmocka_unit_test(test_extension),
        cmocka_unit_test(test_cuped),
        cmocka_unit_test(test_reason_text),
        cmocka_unit_test(test_sim_aa),
        cmocka_unit_test(test_sim_harm),
        cmocka_unit_test(test_sim_win),
        cmocka_unit_test(test_sim_discount),
        cmocka_unit_test(test_sim_srm),
        cmocka_unit_test(test_sim_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
