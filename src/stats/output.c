/*
 * output.c — the `stats analyze` answer as JSON, and the error object.
 *
 * Invariants:
 *  1. A number that is not finite (NaN: does not apply; ±Infinity: an open interval end) is
 *     written as null, so no NaN or Infinity ever reaches the JSON.
 *  2. Finite numbers are written in the shortest form that reads back to the same double.
 *  3. The shape is fixed (README "Statistics"): every key is always present; "risk" and
 *     "cuped" are null as a whole when they do not apply; "decision" only with a plan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats_internal.h"

int pe_stats_json_number(pe_buf_t *b, double x)
{
    if (!stats_finite(x))
        return pe_buf_puts(b, "null");
    char s[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, x);
        if (strtod(s, NULL) == x)
            break;
    }
    return pe_buf_puts(b, s);
}

/* Appends "key":number preceded by sep (may be ""). */
static int field(pe_buf_t *b, const char *sep, const char *key, double x)
{
    int rc = pe_buf_printf(b, "%s\"%s\":", sep, key);
    return rc ? rc : pe_stats_json_number(b, x);
}

static int moments(pe_buf_t *b, const char *key, const pe_stats_moments_t *m)
{
    int rc = pe_buf_printf(b, "\"%s\":{", key);
    rc = rc ? rc : field(b, "", "mean", m->mean);
    rc = rc ? rc : field(b, ",", "variance", m->variance);
    return rc ? rc : pe_buf_puts(b, "}");
}

static int decision(pe_buf_t *b, const pe_stats_decision_t *d)
{
    int rc = pe_buf_printf(b, ",\"decision\":{\"verdict\":\"%s\",\"reasons\":[",
                           pe_stats_verdict_name(d->verdict));
    const char *sep = "";
    for (unsigned i = 0; rc == 0 && i < PE_STATS_REASON_COUNT; i++) {
        if (d->reasons & (1u << i)) {
            rc = pe_buf_printf(b, "%s\"%s\"", sep, pe_stats_reason_name(1u << i));
            sep = ",";
        }
    }
    rc = rc ? rc : pe_buf_puts(b, "]");
    if (rc == 0 && d->trigger >= 0)
        rc = pe_buf_printf(b, ",\"trigger\":%d", d->trigger);
    return rc ? rc : pe_buf_puts(b, "}");
}

int pe_stats_result_json(const pe_stats_result_t *r, const pe_stats_decision_t *d, pe_buf_t *b)
{
    int rc = pe_buf_puts(b, "{");
    rc = rc ? rc : moments(b, "control", &r->control);
    rc = rc ? rc : pe_buf_puts(b, ",");
    rc = rc ? rc : moments(b, "variant", &r->variant);
    rc = rc ? rc : pe_buf_puts(b, ",\"effect\":{");
    rc = rc ? rc : field(b, "", "estimate", r->effect.estimate);
    rc = rc ? rc : field(b, ",", "stddev", r->effect.stddev);
    rc = rc ? rc : field(b, ",", "ciLow", r->effect.ci_low);
    rc = rc ? rc : field(b, ",", "ciHigh", r->effect.ci_high);
    rc = rc ? rc : pe_buf_puts(b, "}");
    rc = rc ? rc : field(b, ",", "pValue", r->effect.p_value);
    rc = rc ? rc : field(b, ",", "chanceToWin", r->chance_to_win);
    if (isnan(r->risk[0]) && isnan(r->risk[1])) {
        rc = rc ? rc : pe_buf_puts(b, ",\"risk\":null");
    } else {
        rc = rc ? rc : pe_buf_puts(b, ",\"risk\":[");
        rc = rc ? rc : pe_stats_json_number(b, r->risk[0]);
        rc = rc ? rc : pe_buf_puts(b, ",");
        rc = rc ? rc : pe_stats_json_number(b, r->risk[1]);
        rc = rc ? rc : pe_buf_puts(b, "]");
    }
    rc = rc ? rc : pe_buf_puts(b, ",\"srm\":{");
    rc = rc ? rc : field(b, "", "pValue", r->srm.p_value);
    rc = rc ? rc
            : pe_buf_printf(b, ",\"mismatch\":%s}",
                            isnan(r->srm.p_value) ? "null"
                            : r->srm.mismatch     ? "true"
                                                  : "false");
    if (r->cuped_applied) {
        rc = rc ? rc : pe_buf_puts(b, ",\"cuped\":{");
        rc = rc ? rc : field(b, "", "theta", r->cuped.theta);
        rc = rc ? rc : field(b, ",", "varianceReduction", r->cuped.variance_reduction);
        rc = rc ? rc : pe_buf_puts(b, "}");
    } else {
        rc = rc ? rc : pe_buf_puts(b, ",\"cuped\":null");
    }
    rc = rc ? rc : pe_buf_puts(b, ",\"power\":{");
    rc = rc ? rc : field(b, "", "mdeRelative", r->mde_relative);
    rc = rc ? rc : field(b, ",", "achievedPower", r->achieved_power);
    rc = rc ? rc : pe_buf_puts(b, "}");
    if (rc == 0 && d)
        rc = decision(b, d);
    return rc ? rc : pe_buf_puts(b, "}");
}
