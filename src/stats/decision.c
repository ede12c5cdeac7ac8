/*
 * decision.c — the decision helper: proof plan + current statistics + runtime → a verdict
 * with machine-readable reasons. The lifecycle acts on it (WINNER → PROVEN, LOSER /
 * INCONCLUSIVE / ROLLBACK → ROLLED_BACK), so every rule is spelled out here and in the README.
 *
 * Rules, in order (the first that applies decides):
 *   1. ROLLBACK   — a rollback trigger fires. Always judged with the sequential method (the
 *                   monitor looks every hour, so only an always-valid test may act on it),
 *                   one-sided "less" on the relative effect at the trigger's α, whatever the
 *                   plan's method, and before any minimum is reached: the always-valid upper
 *                   bound is below 0 and the estimate is at or below relativeChange.
 *   2. KEEP_RUNNING — either arm has fewer units than minSampleSize, or runtime is below
 *                   minRuntimeDays (default 7), reasons below_min_sample_size /
 *                   below_min_runtime.
 *   3. The plan's method at the plan's α: "significant" means p < α (frequentist: Welch;
 *      sequential: the always-valid p) or chanceToWin ≥ 1 − α (bayesian, improvement) /
 *      ≤ α (degradation); the direction is the estimate's sign (higher is better).
 *        improvement → WINNER, but INCONCLUSIVE when SRM is detected (SRM blocks a winner);
 *        degradation → LOSER;
 *        no inference possible (no variance, no units) → INCONCLUSIVE, insufficient_data;
 *        otherwise → INCONCLUSIVE (not_significant), except that sequential and bayesian
 *        plans with maxRuntimeDays keep running until then (KEEP_RUNNING, not_significant).
 *      A frequentist plan is fixed-horizon: minSampleSize and minRuntimeDays are its horizon.
 *   sample_ratio_mismatch is added to the reasons of any verdict whenever SRM is detected.
 *
 * Invariants:
 *  1. Pure and allocation-free; the input is checked (pe_stats_analyze) and the plan too.
 *  2. Exactly one verdict; reasons never empty.
 */
#include <string.h>

#include "stats_internal.h"

static const char *const VERDICTS[] = {"KEEP_RUNNING", "WINNER", "LOSER", "INCONCLUSIVE",
                                       "ROLLBACK"};
static const char *const REASONS[PE_STATS_REASON_COUNT] = {
    "rollback_trigger",  "insufficient_data",       "below_min_sample_size",
    "below_min_runtime", "significant_improvement", "significant_degradation",
    "not_significant",   "sample_ratio_mismatch",   "max_runtime_reached",
};

const char *pe_stats_verdict_name(pe_stats_verdict_t v)
{
    return (unsigned)v < PE_ARRAY_LEN(VERDICTS) ? VERDICTS[v] : "UNKNOWN";
}

const char *pe_stats_reason_name(unsigned bit)
{
    for (unsigned i = 0; i < PE_STATS_REASON_COUNT; i++)
        if (bit == 1u << i)
            return REASONS[i];
    return NULL;
}

/* Does trigger t fire on in? */
static int trigger_fires(const pe_stats_input_t *in, const pe_stats_trigger_t *t, bool *fires,
                         pe_refusal_t *err)
{
    pe_stats_input_t seq = *in;
    seq.method = PE_STATS_SEQUENTIAL;
    seq.difference = PE_STATS_RELATIVE;
    seq.sides = PE_STATS_LESS;
    seq.alpha = t->alpha;
    if (!(seq.power > seq.alpha))
        seq.power = 0.5 + seq.alpha / 2; /* the power figures are not read here */
    pe_stats_result_t r;
    int rc = pe_stats_analyze(&seq, &r, err);
    if (rc != 0)
        return rc;
    *fires = r.effect.ci_high < 0 && r.effect.estimate <= t->relative_change;
    return 0;
}

int pe_stats_decide(const pe_stats_input_t *in, const pe_stats_plan_t *plan, double runtime_days,
                    pe_stats_decision_t *out, pe_refusal_t *err)
{
    pe_stats_init();
    out->verdict = PE_STATS_KEEP_RUNNING;
    out->reasons = 0;
    out->trigger = -1;
    int rc = pe_stats_plan_check(plan, err);
    if (rc != 0)
        return rc;
    if (!(runtime_days >= 0) || !stats_finite(runtime_days))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "runtimeDays: must be a finite number ≥ 0");

    pe_stats_input_t final = *in;
    final.method = plan->method;
    final.alpha = plan->alpha;
    if (!(final.power > final.alpha))
        final.power = 0.5 + final.alpha / 2;
    pe_stats_result_t r;
    rc = pe_stats_analyze(&final, &r, err);
    if (rc != 0)
        return rc;
    unsigned srm = r.srm.mismatch ? PE_STATS_REASON_SRM : 0;

    for (size_t i = 0; i < plan->n_triggers; i++) {
        bool fires = false;
        rc = trigger_fires(in, &plan->triggers[i], &fires, err);
        if (rc != 0)
            return rc;
        if (fires) {
            out->verdict = PE_STATS_ROLLBACK;
            out->reasons = PE_STATS_REASON_ROLLBACK_TRIGGER | PE_STATS_REASON_DEGRADATION | srm;
            out->trigger = (int)i;
            return 0;
        }
    }

    unsigned early = 0;
    if (in->control.n < plan->min_units || in->variant.n < plan->min_units)
        early |= PE_STATS_REASON_MIN_SAMPLE;
    if (runtime_days < plan->min_runtime_days)
        early |= PE_STATS_REASON_MIN_RUNTIME;
    if (early) {
        out->verdict = PE_STATS_KEEP_RUNNING;
        out->reasons = early | srm;
        return 0;
    }

    bool better = false, worse = false, known;
    if (plan->method == PE_STATS_BAYESIAN) {
        known = !isnan(r.chance_to_win);
        better = known && r.chance_to_win >= 1 - plan->alpha;
        worse = known && r.chance_to_win <= plan->alpha;
    } else {
        known = !isnan(r.effect.p_value);
        bool significant = known && r.effect.p_value < plan->alpha;
        better = significant && r.effect.estimate > 0;
        worse = significant && r.effect.estimate < 0;
    }
    if (better) {
        out->verdict = srm ? PE_STATS_INCONCLUSIVE : PE_STATS_WINNER;
        out->reasons = PE_STATS_REASON_IMPROVEMENT | srm;
    } else if (worse) {
        out->verdict = PE_STATS_LOSER;
        out->reasons = PE_STATS_REASON_DEGRADATION | srm;
    } else if (!known) {
        out->verdict = PE_STATS_INCONCLUSIVE;
        out->reasons = PE_STATS_REASON_INSUFFICIENT_DATA | srm;
    } else if (plan->method != PE_STATS_FREQUENTIST && !isnan(plan->max_runtime_days) &&
               runtime_days < plan->max_runtime_days) {
        out->verdict = PE_STATS_KEEP_RUNNING;
        out->reasons = PE_STATS_REASON_NOT_SIGNIFICANT | srm;
    } else {
        out->verdict = PE_STATS_INCONCLUSIVE;
        out->reasons = PE_STATS_REASON_NOT_SIGNIFICANT | srm |
                       (isnan(plan->max_runtime_days) ? 0 : PE_STATS_REASON_MAX_RUNTIME);
    }
    return 0;
}
