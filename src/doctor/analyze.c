/*
 * analyze.c — the funnel doctor's analysis: one store's funnel counts over a window, the
 * previous window and the benchmarks in, ranked findings out. A pure function: no clock, no I/O;
 * it allocates only its own scratch (freed before it returns) and the result.
 *
 * Rules (the README's "Diagnostics" section repeats them for merchants):
 *  1. Step conversion s (1 cart … 5 confirmation) = reach[s] / reach[s−1]; a group's "sessions"
 *     at step s are reach[s−1], the sessions that could have taken the step. Drop-off is
 *     1 − conversion.
 *  2. segment_gap: for every step s and every one-way segment (every non-empty value of every
 *     dimension found in the cells), the segment's conversion is tested against the REST of the
 *     store (every other cell) with the two-proportion z-test (pooled SE, two-sided;
 *     pe_stats_ztest_2prop), when the segment and the rest each have ≥ PE_DOCTOR_MIN_SESSIONS
 *     sessions at reach[s−1]. Every such test enters the family; only a segment that converts
 *     WORSE than the rest (rate < reference) can become a finding — one doing better is no
 *     problem to fix. A cell whose value is "" on a dimension belongs to no segment of it (but
 *     still to every "rest").
 *  3. baseline_shift: for every step, the whole store's conversion in the window against the
 *     previous window (in->previous), the same z-test, when both have ≥ PE_DOCTOR_MIN_SESSIONS
 *     sessions at reach[s−1]; a finding only when the window converts worse.
 *  4. benchmark_gap: for every step whose benchmark drop-off b lies strictly inside (0, 1) (0 or
 *     1 is no usable benchmark: nothing is tested), the store's conversion against 1 − b with
 *     the one-sample score z-test (variance under the benchmark, p0(1 − p0)/n;
 *     pe_stats_ztest_1prop), when the store has ≥ PE_DOCTOR_MIN_SESSIONS sessions at reach[s−1];
 *     a finding only when the store's drop-off is higher than the benchmark's.
 *  5. Each kind's p-values form one family across the whole run (every segment_gap test of
 *     every step and segment together; the baseline_shift tests; the benchmark_gap tests);
 *     Benjamini–Hochberg gives each its q-value within its family (pe_stats_fdr_bh) and a
 *     finding is reported only at q ≤ PE_DOCTOR_FDR. Families per kind, not one for the run:
 *     BH adapts to the real differences in its family, and almost every store differs from
 *     the industry benchmarks at a few thousand sessions, which would make one shared family
 *     lenient for the segments (on clean simulated stores, tests/unit/doctor/test_analyze.c:
 *     12 % of runs with a false segment_gap in one family, 5 % with one per kind, the FDR
 *     level). The change_point tests of the five steps are their own family too. The two-way
 *     segments of rule 12 join the segment_gap family rather than forming their own: on the
 *     same clean stores (200 seeds, 687 tests a run) one family gives 13/200 = 6.5 % of runs
 *     with a false segment_gap, two families 21/200 = 10.5 % (each family spends its own 5 %).
 *  6. Impact per 30 days, scaled by 30 / (window days): lost orders = the group's sessions at
 *     reach[s−1] × (reference rate − rate) × D, where D = the reference's orders / the
 *     reference's reach[s] (its conversion from step s to an order; 0 when nobody reached s);
 *     the reference is the rest of the store (segment_gap), the previous window
 *     (baseline_shift) or the store itself (benchmark_gap). For a change_point the group is the
 *     period after the change (since .. to) and the reference the period before it (from ..
 *     since − 1), and the scale is 30 / (days after the change): what a month at the new rate
 *     loses against the old one. Lost revenue = lost orders × the reference's AOV (revenue /
 *     orders; the store's AOV when the reference has no orders, 0 when neither has any). Lost
 * profit = lost revenue × in->margin. Each is clamped at ≥ 0.
 *  7. likelihood = 1 − q. q is the smallest false-discovery rate at which Benjamini–Hochberg
 *     would still report this finding, so 1 − q is the confidence that the gap is not a
 *     statistical accident of this window's traffic, controlled across every test of the run:
 *     among findings reported at likelihood ≥ L, at most a share 1 − L are expected to be
 *     false alarms. It is NOT the probability that this particular finding is real, it says
 *     nothing about the size of the gap (see the lost profit) and nothing about its cause (a
 *     segment can stand in for another one: mobile visitors may come from one campaign).
 *     score = likelihood × lost profit. A store-level finding (benchmark_gap, baseline_shift) at
 *     a step where a segment_gap finding explains it — the rest of the store, without that
 *     segment, converts at least as well as the store-level reference, or not significantly
 *     worse (one-sample z-test, p > PE_DOCTOR_FDR) — is the symptom of that segment's problem:
 *     its score is set just below the segment's, so it ranks right after it, and its
 *     explanation says so. Findings are ranked by score descending, then q
 *     ascending, then kind, step, dimension and value (byte order); at most
 *     PE_DOCTOR_MAX_FINDINGS are kept.
 *  8. Titles and explanations speak the merchant's language with the numbers: drop-offs in
 *     whole percent (one decimal under 10 %, or when the two would read the same), sessions and
 *     money with thousands separators and no locale, the currency's ISO code ("EUR 2,870"), the
 *     window's dates, the q-value, and whether the margin is the store's default rather than the
 *     catalogue's. Values from the input are printed with control characters replaced by '?'.
 *  9. Too little traffic: fewer than PE_DOCTOR_MIN_SESSIONS sessions in the window gives no
 *     findings, no tests, and a note saying so. With enough traffic but nothing at q ≤ FDR, the
 *     note says that nothing stood out.
 * 10. Deterministic: cells may come in any order. They are first put in one canonical order
 *     (their values, then their counts) and every sum runs in that order, so the same cells in
 *     another order give byte-identical findings. Days come in day order (refused otherwise).
 * 11. change_point: for every step s, over in->days (the whole store per local day), every day d
 *     with at least 3 days of the window before it and 3 from it on (from + 3 ≤ d ≤ to − 2),
 *     and with ≥ PE_DOCTOR_MIN_SESSIONS sessions at reach[s−1] on each side, is a candidate
 *     start of a new rate: its days from d on ("after") are compared with the days before
 *     ("before") by the two-proportion z-test of rule 2 (two-sided). The candidate with the
 *     largest |z| is the step's change point (the earliest on a tie); its p-value is Bonferroni-
 *     corrected for the search, p = min(1, m × p_min) over the step's m candidates, and that p
 *     enters the change_point family (rule 5); only a drop (after converts worse than before)
 *     can become a finding, with since = d. Why Bonferroni rather than a max-statistic bound
 *     (the Brownian-bridge approximation of max |z| over split points, e.g. James, James &
 *     Siegmund 1987): it holds for any dependence between the candidates, any number of days
 *     and any daily traffic, whereas the approximations are asymptotic and assume steady
 *     traffic, which weekdays and campaigns break; the price is conservatism (neighbouring
 *     splits are strongly correlated), which costs little for changes worth reporting: with 23
 *     candidates (28 days) the |z| needed at p = 0.05 goes from 1.96 to 3.1, while a drop from
 *     82 % to 72 % over a thousand sessions on each side gives |z| ≈ 5. On flat binomial days
 *     (tests/unit/doctor/test_analyze.c, 200 seeds) 4 runs in 200 (2 %) report a change_point.
 *     Rule 7's "explained by a segment" does not apply to change points (a segment's gap over
 *     the whole window says nothing about when a rate changed).
 * 12. Two-way segments: for every pair of dimensions and every pair of non-empty values found
 *     together in a cell (mobile × FR), the segment is tested like a one-way one (rule 2: against
 *     the rest of the store, same z-test, same minimum sessions) and its test joins the
 *     segment_gap family (rule 5). A parent (one of its two one-way segments) explains a child
 *     unless the child converts significantly worse than the rest of that parent — the parent's
 *     sessions outside the child — by the z-test of rule 2 at p ≤ PE_DOCTOR_FDR (with fewer
 *     than PE_DOCTOR_MIN_SESSIONS there, the parent is practically the child and explains it).
 *     A two-way finding is reported only when NEITHER parent explains it: when all mobile
 *     visitors drop the same, mobile × FR is no separate cause and only "mobile" is reported.
 *     Conversely, a one-way finding that a reported child explains — the parent's rest without
 *     the child converts at least as well as the parent's reference, or not significantly worse
 *     (one-sample z-test, p > PE_DOCTOR_FDR), the test of rule 7 — is the child's symptom: it
 *     stays, ranks right after the child (score just below), and its explanation says so. This
 *     runs before rule 7, so a store-level finding names the best-ranked segment of either kind.
 *     Cost: one-way and two-way segments are at most (7 + 21) × cells, built by one sort per
 *     dimension and per pair; hypotheses are allocated for the segments that exist.
 * 13. A one-way finding that a smaller reported one-way finding of another dimension explains —
 *     its sessions outside their overlap (the two-way segment of rule 12) convert at least as
 *     well as its reference, or not significantly worse (the test of rule 7) — is that one's
 *     symptom the same way: a campaign's drop shows in its traffic source, a device's in the
 *     countries it dominates. It ranks right after it and says so (rule 12's children first).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/doctor.h"
#include "pe/stats.h"

#define COUNT_MAX 9007199254740992.0 /* 2^53: integer counts stay exact when summed */

/* ---- names and the benchmark table -------------------------------------------------------- */

static const char *const dim_names[PE_DOCTOR_DIMS] = {"device",  "country", "source",  "hourBand",
                                                      "weekday", "visitor", "campaign"};
static const char *const kind_names[] = {"benchmark_gap", "baseline_shift", "segment_gap",
                                         "change_point"};
static const char *const step_names[PE_DOCTOR_STEPS + 1] = {"sessions", "cart",    "checkout",
                                                            "shipping", "payment", "confirmation"};

const char *pe_doctor_dim_name(pe_doctor_dim_t d)
{
    return (unsigned)d < PE_DOCTOR_DIMS ? dim_names[d] : NULL;
}

const char *pe_doctor_hour_band(int hour)
{
    if (hour < 0 || hour > 23)
        return NULL;
    static const char *const bands[] = {"night", "morning", "afternoon", "evening"};
    return bands[hour / 6];
}

const char *pe_doctor_kind_name(pe_doctor_kind_t k)
{
    return (unsigned)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : NULL;
}

/* Cart: about 7 % of sessions add to cart. Cart to order: Baymard's 70.19 % average cart
 * abandonment leaves 29.81 %, which the four steps after the cart share as 0.55 × 0.75 × 0.80 ×
 * 0.90 = 29.7 % (that split is ours; only the product is sourced). */
const double pe_doctor_benchmark_dropoff[PE_DOCTOR_STEPS + 1] = {0, 0.93, 0.45, 0.25, 0.20, 0.10};
const char pe_doctor_benchmark_source[] =
    "cart: add-to-cart rate of about 7 % of sessions (Dynamic Yield XP2 e-commerce benchmarks, "
    "6.4-7.9 % across industries, 2024); checkout to confirmation: Baymard Institute's average "
    "documented cart abandonment of 70.19 % (49 studies, baymard.com/lists/cart-abandonment-rate), "
    "split over the four checkout steps as 45 %, 25 %, 20 % and 10 % drop-off by Profit Engine "
    "(the product matches Baymard's figure; the split is an assumption)";

/* ---- what the analysis works on ----------------------------------------------------------- */

/* One tested hypothesis. value is borrowed from a cell (or ""), counts are sums. */
typedef struct hypo {
    pe_doctor_kind_t kind;
    int step;
    int dim;            /* PE_DOCTOR_DIMS for the whole store */
    const char *value;  /* "" for the whole store */
    int dim2;           /* two-way segments (rule 12): the second dimension (> dim), else
                           PE_DOCTOR_DIMS */
    const char *value2; /* "" unless two-way */
    size_t seg;         /* segment_gap: its index in work_t.segs */
    double rate, ref_rate, sessions, ref_sessions;
    double p, q;
    double lost_orders, lost_revenue, lost_profit, score;
    const struct hypo *explained_by; /* rules 7 and 12: the segment_gap this gap comes from */
    int32_t since;                   /* change_point: the first day of the new rate */
    size_t split;                    /* change_point: days[split].day == since */
    size_t candidates;               /* change_point: the days tested as the start (rule 11) */
} hypo_t;

/* A one-way segment (every cell with value on dim; dim2 == PE_DOCTOR_DIMS) or a two-way one
 * (every cell with value on dim and value2 on dim2, dim < dim2; rule 12). One-way segments come
 * first in work_t.segs, grouped by dimension and sorted by value (byte order) inside it. */
typedef struct {
    int dim, dim2;
    const char *value, *value2;
    size_t parent[2]; /* two-way: the indices of its one-way parents (dim, value), (dim2, value2) */
    pe_doctor_counts_t counts;
} segment_t;

/* One cell's values on one or two dimensions, with the cell's rank in the canonical order. */
typedef struct {
    const char *value, *value2;
    size_t rank;
} dim_entry_t;

typedef struct {
    const pe_doctor_cell_t **order; /* the cells in canonical order */
    segment_t *segs;
    size_t nsegs;
    size_t dim_first[PE_DOCTOR_DIMS + 1]; /* one-way segments of dim d: [dim_first[d],
                                             dim_first[d + 1]) */
    dim_entry_t *entries;
    hypo_t *hyps;
    size_t nhyps;
    double *p;
    size_t *scratch;
    hypo_t **found;
} work_t;

static void counts_add(pe_doctor_counts_t *acc, const pe_doctor_counts_t *c)
{
    for (int s = 0; s <= PE_DOCTOR_STEPS; s++)
        acc->reach[s] += c->reach[s];
    acc->orders += c->orders;
    acc->revenue += c->revenue;
}

/* total − part, clamped at 0 (revenue sums are not exact). */
static void counts_rest(pe_doctor_counts_t *out, const pe_doctor_counts_t *total,
                        const pe_doctor_counts_t *part)
{
    for (int s = 0; s <= PE_DOCTOR_STEPS; s++)
        out->reach[s] = fmax(0, total->reach[s] - part->reach[s]);
    out->orders = fmax(0, total->orders - part->orders);
    out->revenue = fmax(0, total->revenue - part->revenue);
}

static int cmp_double(double a, double b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

static int cmp_cell(const void *a, const void *b)
{
    const pe_doctor_cell_t *x = *(const pe_doctor_cell_t *const *)a;
    const pe_doctor_cell_t *y = *(const pe_doctor_cell_t *const *)b;
    for (int d = 0; d < PE_DOCTOR_DIMS; d++) {
        int c = strcmp(x->value[d], y->value[d]);
        if (c)
            return c;
    }
    for (int s = 0; s <= PE_DOCTOR_STEPS; s++) {
        int c = cmp_double(x->counts.reach[s], y->counts.reach[s]);
        if (c)
            return c;
    }
    int c = cmp_double(x->counts.orders, y->counts.orders);
    return c ? c : cmp_double(x->counts.revenue, y->counts.revenue);
}

static int cmp_entry(const void *a, const void *b)
{
    const dim_entry_t *x = a, *y = b;
    int c = strcmp(x->value, y->value);
    if (c)
        return c;
    if ((c = strcmp(x->value2, y->value2)))
        return c;
    return x->rank < y->rank ? -1 : x->rank > y->rank ? 1 : 0;
}

/* Rule 7's order. Hypotheses are unique by (kind, step, dim, value, dim2, value2), so this is
 * total. */
static int cmp_found(const void *a, const void *b)
{
    const hypo_t *x = *(const hypo_t *const *)a, *y = *(const hypo_t *const *)b;
    int c = cmp_double(y->score, x->score);
    if (c)
        return c;
    if ((c = cmp_double(x->q, y->q)))
        return c;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    if (x->dim != y->dim)
        return x->dim < y->dim ? -1 : 1;
    if ((c = strcmp(x->value, y->value)))
        return c;
    if (x->dim2 != y->dim2)
        return x->dim2 < y->dim2 ? -1 : 1;
    return strcmp(x->value2, y->value2);
}

/* ---- validation ----------------------------------------------------------------------------- */

static bool share_ok(double x)
{
    return isfinite(x) && x >= 0 && x <= 1;
}

static int check_counts(const pe_doctor_counts_t *c, const char *path, pe_refusal_t *err)
{
    for (int s = 0; s <= PE_DOCTOR_STEPS; s++) {
        double r = c->reach[s];
        if (!isfinite(r) || r < 0 || r > COUNT_MAX)
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "%s.reach[%d]: must be a count 0..2^53", path, s);
        if (s > 0 && r > c->reach[s - 1])
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "%s.reach[%d]: must not exceed reach[%d] (a step is reached only "
                             "after the one before it)",
                             path, s, s - 1);
    }
    if (!isfinite(c->orders) || c->orders < 0 || c->orders > COUNT_MAX)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "%s.orders: must be a count 0..2^53",
                         path);
    if (!isfinite(c->revenue) || c->revenue < 0)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "%s.revenue: must be a finite number >= 0",
                         path);
    return 0;
}

static int check_input(const pe_doctor_input_t *in, pe_refusal_t *err)
{
    if (in->to < in->from)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "to: must not be before from");
    if ((int64_t)in->to - in->from + 1 > PE_DOCTOR_MAX_DAYS)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "to: the window must be at most %d days",
                         PE_DOCTOR_MAX_DAYS);
    if (in->ncells > 0 && !in->cells)
        return pe_refuse(err, PE_EINVAL, "missing_field", "cells: missing");
    char path[64];
    for (size_t i = 0; i < in->ncells; i++) {
        const pe_doctor_cell_t *c = &in->cells[i];
        for (int d = 0; d < PE_DOCTOR_DIMS; d++)
            if (!memchr(c->value[d], '\0', PE_DOCTOR_VALUE_MAX))
                return pe_refuse(err, PE_EINVAL, "too_long",
                                 "cells[%zu].%s: must be at most %d bytes", i, dim_names[d],
                                 PE_DOCTOR_VALUE_MAX - 1);
        snprintf(path, sizeof path, "cells[%zu]", i);
        int rc = check_counts(&c->counts, path, err);
        if (rc)
            return rc;
    }
    int rc = check_counts(&in->previous, "previous", err);
    if (rc)
        return rc;
    if (in->ndays > 0 && !in->days)
        return pe_refuse(err, PE_EINVAL, "missing_field", "days: missing");
    for (size_t i = 0; i < in->ndays; i++) {
        const pe_doctor_day_t *d = &in->days[i];
        if (d->day < in->from || d->day > in->to || (i > 0 && d->day <= in->days[i - 1].day))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "days[%zu].day: must lie in the window from..to, after days[%zu]", i,
                             i ? i - 1 : 0);
        snprintf(path, sizeof path, "days[%zu]", i);
        if ((rc = check_counts(&d->counts, path, err)) != 0)
            return rc;
    }
    for (int s = 1; s <= PE_DOCTOR_STEPS; s++)
        if (!share_ok(in->benchmark_dropoff[s]))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "benchmarkDropoff.%s: must be a share 0..1", step_names[s]);
    if (!share_ok(in->margin))
        return pe_refuse(err, PE_EINVAL, "out_of_range", "margin: must be a share 0..1");
    if (in->currency) {
        const char *c = in->currency;
        bool ok = strlen(c) == 3;
        for (int i = 0; ok && i < 3; i++)
            ok = (c[i] >= 'A' && c[i] <= 'Z') || (c[i] >= 'a' && c[i] <= 'z');
        if (!ok)
            return pe_refuse(err, PE_EINVAL, "invalid_format",
                             "currency: must be an ISO 4217 code of three letters");
    }
    return 0;
}

/* ---- sentences ------------------------------------------------------------------------------ */

/* A bounded text being written; a cut keeps it valid UTF-8 when its pieces were. */
typedef struct {
    char *buf;
    size_t cap, len;
} text_t;

static void text_add(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(text_t *t, const char *fmt, ...)
{
    if (t->len + 1 >= t->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->buf[t->len] = '\0';
        return;
    }
    if ((size_t)n < t->cap - t->len) {
        t->len += (size_t)n;
        return;
    }
    size_t end = t->cap - 1; /* cut: drop a trailing partial UTF-8 sequence */
    size_t lead = end;
    while (lead > t->len && ((unsigned char)t->buf[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead > t->len) {
        unsigned char c = (unsigned char)t->buf[lead - 1];
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (end - (lead - 1) < need)
            end = lead - 1;
    }
    t->buf[end] = '\0';
    t->len = end;
}

/* A value from the input, safe to print: control characters (C0, DEL, C1) become '?'. */
static void safe_value(const char *v, char out[PE_DOCTOR_VALUE_MAX])
{
    size_t j = 0;
    for (size_t i = 0; v[i] && j + 1 < PE_DOCTOR_VALUE_MAX; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == 0xC2 && (unsigned char)v[i + 1] >= 0x80 && (unsigned char)v[i + 1] <= 0x9F) {
            out[j++] = '?';
            i++;
        } else {
            out[j++] = (char)(c < 0x20 || c == 0x7F ? '?' : c);
        }
    }
    out[j] = '\0';
}

/* A whole number with thousands separators: 1240 → "1,240". */
static void fmt_count(double x, char *out, size_t len)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", fmax(0, x));
    size_t n = strlen(digits), j = 0;
    for (size_t i = 0; i < n && j + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[j++] = ',';
        out[j++] = digits[i];
    }
    out[j] = '\0';
}

/* Orders: one decimal under 10 ("2.5"), whole above ("41"). */
static void fmt_orders(double x, char *out, size_t len)
{
    if (x < 9.95)
        snprintf(out, len, "%.1f", x);
    else
        fmt_count(x, out, len);
}

static void fmt_money(const char *currency, double x, char *out, size_t len)
{
    char n[40];
    fmt_count(x, n, sizeof n);
    if (currency)
        snprintf(out, len, "%c%c%c %s", currency[0] & ~0x20, currency[1] & ~0x20,
                 currency[2] & ~0x20, n);
    else
        snprintf(out, len, "%s", n);
}

/* Two shares as percentages, with as many decimals (0..2) as it takes to tell them apart; one
 * at least under 10 %. */
static void fmt_pct_pair(double a, double b, char *oa, char *ob, size_t len)
{
    int dec = (a < 0.0995 || b < 0.0995) ? 1 : 0;
    for (; dec < 2; dec++) {
        char x[16], y[16];
        snprintf(x, sizeof x, "%.*f", dec, 100 * a);
        snprintf(y, sizeof y, "%.*f", dec, 100 * b);
        if (a == b || strcmp(x, y) != 0)
            break;
    }
    snprintf(oa, len, "%.*f %%", dec, 100 * a);
    snprintf(ob, len, "%.*f %%", dec, 100 * b);
}

static void fmt_q(double q, char *out, size_t len)
{
    if (q < 0.001)
        snprintf(out, len, "q < 0.001");
    else
        snprintf(out, len, "q = %.3f", q);
}

static void fmt_day(int32_t day, char *out, size_t len)
{
    int64_t y;
    int m, d;
    pe_civil_from_days(day, &y, &m, &d);
    snprintf(out, len, "%04lld-%02d-%02d", (long long)y, m, d);
}

/* "did not <action>" after reaching step s − 1. */
static const char *const step_action[PE_DOCTOR_STEPS + 1] = {"",
                                                             "add anything to the cart",
                                                             "start checkout",
                                                             "submit shipping",
                                                             "submit payment",
                                                             "complete the order"};
/* The sessions at reach[s − 1], as a merchant says it. */
static const char *const step_base[PE_DOCTOR_STEPS + 1] = {"",
                                                           "sessions",
                                                           "sessions with a cart",
                                                           "sessions that started checkout",
                                                           "sessions that submitted shipping",
                                                           "sessions that submitted payment"};
/* Where a drop-off at step s happens. */
static const char *const step_leave[PE_DOCTOR_STEPS + 1] = {
    "",
    "leave without adding anything to the cart",
    "leave the cart without starting checkout",
    "leave at the shipping step",
    "leave at the payment step",
    "leave between payment and the order"};

/* A segment value as words that qualify "visitors" ("from FR", "on mondays"): the second value
 * of a two-way segment, and the one-way phrase of most dimensions (segment_phrase). dim is
 * never the device (segment_phrase words it; it is always the first of a pair). */
static void segment_qualifier(int dim, const char *value, char *out, size_t len)
{
    char v[PE_DOCTOR_VALUE_MAX];
    safe_value(value, v);
    bool unknown = strcmp(v, "unknown") == 0;
    switch (dim) {
    case PE_DOCTOR_COUNTRY:
        snprintf(out, len, unknown ? "from an unknown country" : "from %s", v);
        break;
    case PE_DOCTOR_SOURCE:
        if (unknown)
            snprintf(out, len, "from an unknown source");
        else if (strcmp(v, "direct") == 0)
            snprintf(out, len, "coming directly");
        else
            snprintf(out, len, "coming from %s", v);
        break;
    case PE_DOCTOR_HOUR_BAND:
        if (strcmp(v, "night") == 0)
            snprintf(out, len, "at night (0-6 h)");
        else if (strcmp(v, "morning") == 0)
            snprintf(out, len, "in the morning (6-12 h)");
        else if (strcmp(v, "afternoon") == 0)
            snprintf(out, len, "in the afternoon (12-18 h)");
        else if (strcmp(v, "evening") == 0)
            snprintf(out, len, "in the evening (18-24 h)");
        else
            snprintf(out, len, "in the hours '%s'", v);
        break;
    case PE_DOCTOR_WEEKDAY:
        snprintf(out, len, "on %ss", v);
        break;
    case PE_DOCTOR_VISITOR:
        if (strcmp(v, "new") == 0 || strcmp(v, "returning") == 0)
            snprintf(out, len, "who are %s visitors", v);
        else
            snprintf(out, len, "of visitor type '%s'", v);
        break;
    case PE_DOCTOR_CAMPAIGN:
        snprintf(out, len, "from the campaign '%s'", v);
        break;
    default:
        snprintf(out, len, "with %s '%s'", dim_names[dim], v);
        break;
    }
}

/* A one-way segment as the subject of a sentence: "Mobile visitors", "Direct visitors", "New
 * visitors"; otherwise "Visitors " and segment_qualifier's words ("Visitors from FR"). */
static void segment_phrase(int dim, const char *value, char *out, size_t len)
{
    char v[PE_DOCTOR_VALUE_MAX];
    safe_value(value, v);
    if (dim == PE_DOCTOR_DEVICE) {
        if (strcmp(v, "unknown") == 0)
            snprintf(out, len, "Visitors on an unknown device");
        else if (strcmp(v, "other") == 0)
            snprintf(out, len, "Visitors on other devices");
        else {
            if (v[0] >= 'a' && v[0] <= 'z')
                v[0] = (char)(v[0] - 'a' + 'A');
            snprintf(out, len, "%s visitors", v);
        }
    } else if (dim == PE_DOCTOR_SOURCE && strcmp(v, "direct") == 0) {
        snprintf(out, len, "Direct visitors");
    } else if (dim == PE_DOCTOR_VISITOR && (strcmp(v, "new") == 0 || strcmp(v, "returning") == 0)) {
        snprintf(out, len, "%s visitors", v[0] == 'n' ? "New" : "Returning");
    } else {
        char q[PE_DOCTOR_VALUE_MAX + 40];
        segment_qualifier(dim, value, q, sizeof q);
        snprintf(out, len, "Visitors %s", q);
    }
}

/* A segment of one or two dimensions (dim2 = PE_DOCTOR_DIMS: one) as a merchant says it:
 * "Mobile visitors", "Mobile visitors from FR". */
static void two_way_phrase(int dim, const char *value, int dim2, const char *value2, char *out,
                           size_t len)
{
    char first[PE_DOCTOR_VALUE_MAX + 64], second[PE_DOCTOR_VALUE_MAX + 64];
    segment_phrase(dim, value, first, sizeof first);
    if (dim2 >= PE_DOCTOR_DIMS) {
        snprintf(out, len, "%s", first);
        return;
    }
    segment_qualifier(dim2, value2, second, sizeof second);
    snprintf(out, len, "%s %s", first, second);
}

static void hypo_phrase(const hypo_t *h, char *out, size_t len)
{
    two_way_phrase(h->dim, h->value, h->dim2, h->value2, out, len);
}

void pe_doctor_segment_phrase(const pe_doctor_finding_t *f, char *out, size_t len)
{
    int first = PE_DOCTOR_DIMS, second = PE_DOCTOR_DIMS;
    for (int d = PE_DOCTOR_DIMS - 1; d >= 0; d--)
        if (f->has[d]) {
            second = first;
            first = d;
        }
    if (first == PE_DOCTOR_DIMS)
        snprintf(out, len, "Every visitor");
    else
        two_way_phrase(first, f->value[first], second,
                       second < PE_DOCTOR_DIMS ? f->value[second] : "", out, len);
}

static void write_texts(const pe_doctor_input_t *in, const hypo_t *h, pe_doctor_finding_t *f)
{
    text_t title = {f->title, sizeof f->title, 0};
    text_t expl = {f->explanation, sizeof f->explanation, 0};
    int s = h->step;
    int32_t days = in->to - in->from + 1;
    char drop[16], ref_drop[16], n[40], ref_n[40], q[24], from[16], to[16];
    fmt_pct_pair(1 - h->rate, 1 - h->ref_rate, drop, ref_drop, sizeof drop);
    fmt_count(h->sessions, n, sizeof n);
    fmt_count(h->ref_sessions, ref_n, sizeof ref_n);
    fmt_q(h->q, q, sizeof q);
    fmt_day(in->from, from, sizeof from);
    fmt_day(in->to, to, sizeof to);

    switch (h->kind) {
    case PE_DOCTOR_SEGMENT_GAP: {
        char who[2 * PE_DOCTOR_VALUE_MAX + 160];
        hypo_phrase(h, who, sizeof who);
        double ratio = h->ref_rate < 1 ? (1 - h->rate) / (1 - h->ref_rate) : INFINITY;
        if (isfinite(ratio) && ratio >= 1.05)
            text_add(&title, "%s %s %.1f× as often as the rest of the store", who, step_leave[s],
                     ratio);
        else
            text_add(&title, "%s %s more often than the rest of the store", who, step_leave[s]);
        text_add(&expl,
                 "%s of their %s %s did not %s, against %s of the other %s, over the %d days "
                 "from %s to %s (%s).",
                 drop, n, step_base[s], step_action[s], ref_drop, ref_n, (int)days, from, to, q);
        break;
    }
    case PE_DOCTOR_BASELINE_SHIFT:
        text_add(&title, "More visitors %s than in the previous %d days: %s vs %s", step_leave[s],
                 (int)days, drop, ref_drop);
        text_add(&expl,
                 "%s of %s %s did not %s over the %d days from %s to %s, against %s of %s in the "
                 "%d days before (%s).",
                 drop, n, step_base[s], step_action[s], (int)days, from, to, ref_drop, ref_n,
                 (int)days, q);
        break;
    case PE_DOCTOR_CHANGE_POINT: {
        char since[16], conv[16], ref_conv[16];
        fmt_day(h->since, since, sizeof since);
        fmt_pct_pair(h->rate, h->ref_rate, conv, ref_conv, sizeof conv);
        text_add(&title, "Since %s, %s conversion fell from %s to %s", since, step_names[s],
                 ref_conv, conv);
        text_add(&expl,
                 "%s of %s %s went on to %s in the %d days before %s; from then to %s, %s of %s "
                 "did (%s; the p-value allows for the %zu day%s tested as the start).",
                 ref_conv, ref_n, step_base[s], step_action[s], (int)(h->since - in->from), since,
                 to, conv, n, q, h->candidates, h->candidates == 1 ? "" : "s");
        break;
    }
    default:
        text_add(&title, "More visitors %s than %s: %s vs %s", step_leave[s],
                 in->benchmark_is_store[s] ? "the store's own benchmark" : "the industry benchmark",
                 drop, ref_drop);
        text_add(&expl,
                 "%s of %s %s did not %s over the %d days from %s to %s; the benchmark is %s "
                 "(%s).",
                 drop, n, step_base[s], step_action[s], (int)days, from, to, ref_drop, q);
        break;
    }
    char orders[40], revenue[64], profit[64];
    fmt_orders(h->lost_orders, orders, sizeof orders);
    fmt_money(in->currency, h->lost_revenue, revenue, sizeof revenue);
    fmt_money(in->currency, h->lost_profit, profit, sizeof profit);
    text_add(&expl, " About %s lost orders, %s revenue and %s gross profit a month.", orders,
             revenue, profit);
    if (!in->margin_from_catalogue)
        text_add(&expl,
                 " Gross profit uses the store's default margin of %.0f %%, not the catalogue's "
                 "costs.",
                 100 * in->margin);
}

/* ---- the analysis --------------------------------------------------------------------------- */

/* Rule 6 for one hypothesis: the group's sessions are h->sessions over `days` days, reference
 * counts r, store counts t (for the AOV fallback). */
static void impact(const pe_doctor_input_t *in, hypo_t *h, const pe_doctor_counts_t *r,
                   const pe_doctor_counts_t *t, double days)
{
    int s = h->step;
    double scale = 30.0 / days;
    double downstream = r->reach[s] > 0 ? r->orders / r->reach[s] : 0;
    double aov = r->orders > 0   ? r->revenue / r->orders
                 : t->orders > 0 ? t->revenue / t->orders
                                 : 0;
    double lost = h->sessions * (h->ref_rate - h->rate) * downstream * scale;
    h->lost_orders = isfinite(lost) ? fmax(0, lost) : 0;
    h->lost_revenue = fmax(0, h->lost_orders * aov);
    h->lost_profit = fmax(0, h->lost_revenue * in->margin);
}

/* A two-sample test of g against r at step s: the whole store against the previous window
 * (seg SIZE_MAX) or segment w->segs[seg] against the rest of the store. */
static int add_two_sample(work_t *w, pe_doctor_kind_t kind, int s, size_t seg,
                          const pe_doctor_counts_t *g, const pe_doctor_counts_t *r)
{
    double n = g->reach[s - 1], rn = r->reach[s - 1];
    if (n < PE_DOCTOR_MIN_SESSIONS || rn < PE_DOCTOR_MIN_SESSIONS)
        return 0;
    pe_stats_ztest_t z;
    int rc = pe_stats_ztest_2prop(g->reach[s], n, r->reach[s], rn, &z);
    if (rc)
        return rc == PE_EINVAL ? PE_EINTERNAL : rc; /* counts were checked: a bug */
    hypo_t *h = &w->hyps[w->nhyps++];
    *h = (hypo_t){.kind = kind,
                  .step = s,
                  .dim = PE_DOCTOR_DIMS,
                  .value = "",
                  .dim2 = PE_DOCTOR_DIMS,
                  .value2 = "",
                  .seg = seg};
    if (seg != SIZE_MAX) {
        const segment_t *sg = &w->segs[seg];
        h->dim = sg->dim;
        h->value = sg->value;
        h->dim2 = sg->dim2;
        h->value2 = sg->value2;
    }
    h->sessions = n;
    h->ref_sessions = rn;
    h->rate = g->reach[s] / n;
    h->ref_rate = r->reach[s] / rn;
    h->p = z.p_value;
    return 0;
}

static int add_benchmark(work_t *w, int s, const pe_doctor_counts_t *t, double dropoff)
{
    double n = t->reach[s - 1];
    if (n < PE_DOCTOR_MIN_SESSIONS || !(dropoff > 0 && dropoff < 1))
        return 0;
    pe_stats_ztest_t z;
    int rc = pe_stats_ztest_1prop(t->reach[s], n, 1 - dropoff, &z);
    if (rc)
        return rc == PE_EINVAL ? PE_EINTERNAL : rc;
    hypo_t *h = &w->hyps[w->nhyps++];
    *h = (hypo_t){.kind = PE_DOCTOR_BENCHMARK_GAP,
                  .step = s,
                  .dim = PE_DOCTOR_DIMS,
                  .value = "",
                  .dim2 = PE_DOCTOR_DIMS,
                  .value2 = ""};
    h->sessions = n;
    h->ref_sessions = 0;
    h->rate = t->reach[s] / n;
    h->ref_rate = 1 - dropoff;
    h->p = z.p_value;
    return 0;
}

/* The whole store's days before days[k] and from it on, each summed in day order. */
static void split_days(const pe_doctor_input_t *in, size_t k, pe_doctor_counts_t *before,
                       pe_doctor_counts_t *after)
{
    memset(before, 0, sizeof *before);
    memset(after, 0, sizeof *after);
    for (size_t i = 0; i < in->ndays; i++)
        counts_add(i < k ? before : after, &in->days[i].counts);
}

/* Rule 11 for step s: the split day with the largest |z|, Bonferroni-corrected over the
 * candidates; no hypothesis when no day qualifies. */
static int add_change_point(work_t *w, const pe_doctor_input_t *in, int s)
{
    size_t best = 0, m = 0;
    pe_stats_ztest_t best_z = {0, 1};
    for (size_t k = 1; k < in->ndays; k++) {
        int32_t d = in->days[k].day;
        if (d - in->from < 3 || in->to - d + 1 < 3)
            continue;
        pe_doctor_counts_t before, after;
        split_days(in, k, &before, &after);
        if (before.reach[s - 1] < PE_DOCTOR_MIN_SESSIONS ||
            after.reach[s - 1] < PE_DOCTOR_MIN_SESSIONS)
            continue;
        pe_stats_ztest_t z;
        int rc = pe_stats_ztest_2prop(after.reach[s], after.reach[s - 1], before.reach[s],
                                      before.reach[s - 1], &z);
        if (rc)
            return rc == PE_EINVAL ? PE_EINTERNAL : rc; /* counts were checked: a bug */
        if (m++ == 0 || fabs(z.z) > fabs(best_z.z)) {
            best = k;
            best_z = z;
        }
    }
    if (m == 0)
        return 0;
    pe_doctor_counts_t before, after;
    split_days(in, best, &before, &after);
    hypo_t *h = &w->hyps[w->nhyps++];
    *h = (hypo_t){.kind = PE_DOCTOR_CHANGE_POINT,
                  .step = s,
                  .dim = PE_DOCTOR_DIMS,
                  .value = "",
                  .dim2 = PE_DOCTOR_DIMS,
                  .value2 = ""};
    h->sessions = after.reach[s - 1];
    h->ref_sessions = before.reach[s - 1];
    h->rate = after.reach[s] / h->sessions;
    h->ref_rate = before.reach[s] / h->ref_sessions;
    h->p = fmin(1, (double)m * best_z.p_value);
    h->since = in->days[best].day;
    h->split = best;
    h->candidates = m;
    return 0;
}

/* The one-way parent of dimension d with value v: its index in w->segs (one-way segments of d
 * are sorted by value). Every two-way segment's values are those of some cell, so it exists. */
static size_t find_parent(const work_t *w, int d, const char *v)
{
    size_t lo = w->dim_first[d], hi = w->dim_first[d + 1];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(w->segs[mid].value, v);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

/* The one-way segments, then the two-way ones (rule 12: every pair of dimensions, every pair of
 * non-empty values found together in a cell), each summed over its cells in canonical order.
 * Returns 0 or PE_EINTERNAL (a two-way segment without its parent: a bug). */
static int build_segments(const pe_doctor_input_t *in, work_t *w)
{
    size_t n = in->ncells;
    for (int d = 0; d < PE_DOCTOR_DIMS; d++) {
        w->dim_first[d] = w->nsegs;
        for (size_t i = 0; i < n; i++)
            w->entries[i] = (dim_entry_t){w->order[i]->value[d], "", i};
        qsort(w->entries, n, sizeof *w->entries, cmp_entry);
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && strcmp(w->entries[j].value, w->entries[i].value) == 0)
                j++;
            if (w->entries[i].value[0] != '\0') {
                segment_t *sg = &w->segs[w->nsegs++];
                memset(sg, 0, sizeof *sg);
                sg->dim = d;
                sg->dim2 = PE_DOCTOR_DIMS;
                sg->value = w->entries[i].value;
                sg->value2 = "";
                sg->parent[0] = sg->parent[1] = SIZE_MAX;
                for (size_t k = i; k < j; k++)
                    counts_add(&sg->counts, &w->order[w->entries[k].rank]->counts);
            }
            i = j;
        }
    }
    w->dim_first[PE_DOCTOR_DIMS] = w->nsegs;
    for (int d = 0; d < PE_DOCTOR_DIMS; d++) {
        for (int d2 = d + 1; d2 < PE_DOCTOR_DIMS; d2++) {
            for (size_t i = 0; i < n; i++)
                w->entries[i] = (dim_entry_t){w->order[i]->value[d], w->order[i]->value[d2], i};
            qsort(w->entries, n, sizeof *w->entries, cmp_entry);
            for (size_t i = 0; i < n;) {
                const dim_entry_t *e = &w->entries[i];
                size_t j = i;
                while (j < n && strcmp(w->entries[j].value, e->value) == 0 &&
                       strcmp(w->entries[j].value2, e->value2) == 0)
                    j++;
                if (e->value[0] != '\0' && e->value2[0] != '\0') {
                    segment_t *sg = &w->segs[w->nsegs++];
                    memset(sg, 0, sizeof *sg);
                    sg->dim = d;
                    sg->dim2 = d2;
                    sg->value = e->value;
                    sg->value2 = e->value2;
                    sg->parent[0] = find_parent(w, d, e->value);
                    sg->parent[1] = find_parent(w, d2, e->value2);
                    if (sg->parent[0] == SIZE_MAX || sg->parent[1] == SIZE_MAX)
                        return PE_EINTERNAL;
                    for (size_t k = i; k < j; k++)
                        counts_add(&sg->counts, &w->order[w->entries[k].rank]->counts);
                }
                i = j;
            }
        }
    }
    return 0;
}

/* Rule 12, first half: whether a parent explains the segment_gap h. A one-way h has no parent
 * (*explained false). A two-way h is explained unless it converts significantly worse (p ≤
 * PE_DOCTOR_FDR, two-sided z-test of rule 2, lower rate) than the rest of EACH parent — the
 * parent's sessions outside h — with ≥ PE_DOCTOR_MIN_SESSIONS of them at reach[s − 1] (fewer:
 * the parent is practically the child and already says it). Returns 0 or PE_EINTERNAL. */
static int explained_by_parent(const work_t *w, const hypo_t *h, bool *explained)
{
    *explained = false;
    const segment_t *c = &w->segs[h->seg];
    if (c->dim2 == PE_DOCTOR_DIMS)
        return 0;
    int s = h->step;
    for (int k = 0; k < 2 && !*explained; k++) {
        pe_doctor_counts_t rest;
        counts_rest(&rest, &w->segs[c->parent[k]].counts, &c->counts);
        double rn = rest.reach[s - 1];
        if (rn < PE_DOCTOR_MIN_SESSIONS) {
            *explained = true;
            break;
        }
        pe_stats_ztest_t z;
        int rc =
            pe_stats_ztest_2prop(c->counts.reach[s], c->counts.reach[s - 1], rest.reach[s], rn, &z);
        if (rc)
            return PE_EINTERNAL; /* counts were checked: a bug */
        *explained = !(h->rate < rest.reach[s] / rn && z.p_value <= PE_DOCTOR_FDR);
    }
    return 0;
}

/* Whether the k of n sessions that stay when a part is taken out of a finding's group convert at
 * least as well as ref_rate, or not significantly worse (one-sample z-test, p > PE_DOCTOR_FDR):
 * then that part explains the finding (rules 7, 12 and 13). Nothing left (n = 0): the part is
 * the whole group, and explains it. */
static bool rest_not_worse(double k, double n, double ref_rate)
{
    if (n <= 0 || k / n >= ref_rate)
        return true;
    pe_stats_ztest_t z = {0, 1};
    return pe_stats_ztest_1prop(k, n, ref_rate, &z) == 0 && z.p_value > PE_DOCTOR_FDR;
}

/* Rule 12, second half: the reported two-way finding (in found[0..nfound)) that explains the
 * one-way segment_gap p — its best-ranked child at the same step without which the rest of p
 * converts at least as well as p's reference, or not significantly worse (one-sample z-test,
 * p > PE_DOCTOR_FDR) — or NULL. */
static const hypo_t *explained_by_child(const work_t *w, hypo_t *const *found, size_t nfound,
                                        const hypo_t *p)
{
    const hypo_t *cause = NULL;
    int s = p->step;
    for (size_t k = 0; k < nfound; k++) {
        const hypo_t *c = found[k];
        if (c->kind != PE_DOCTOR_SEGMENT_GAP || c->step != s || c->dim2 == PE_DOCTOR_DIMS ||
            (w->segs[c->seg].parent[0] != p->seg && w->segs[c->seg].parent[1] != p->seg) ||
            (cause && cmp_found(&cause, &c) <= 0))
            continue;
        pe_doctor_counts_t rest;
        counts_rest(&rest, &w->segs[p->seg].counts, &w->segs[c->seg].counts);
        if (rest_not_worse(rest.reach[s], rest.reach[s - 1], p->ref_rate))
            cause = c;
    }
    return cause;
}

/* Rule 13: the reported one-way finding of another dimension, smaller than the one-way
 * segment_gap p, that explains p — p's sessions outside it convert at least as well as p's
 * reference, or not significantly worse (one-sample z-test, p > PE_DOCTOR_FDR): a campaign
 * inside its traffic source, a country that is mostly one device. The best-ranked such finding
 * at p's step, or NULL. Their overlap is the two-way segment of rule 12 (none: no overlap). */
static const hypo_t *explained_by_smaller(const work_t *w, hypo_t *const *found, size_t nfound,
                                          const hypo_t *p)
{
    const hypo_t *cause = NULL;
    int s = p->step;
    for (size_t k = 0; k < nfound; k++) {
        const hypo_t *c = found[k];
        if (c == p || c->kind != PE_DOCTOR_SEGMENT_GAP || c->step != s ||
            c->dim2 != PE_DOCTOR_DIMS || c->dim == p->dim || !(c->sessions < p->sessions) ||
            (cause && cmp_found(&cause, &c) <= 0))
            continue;
        const segment_t *both = NULL;
        for (size_t i = 0; i < w->nsegs && !both; i++) {
            const segment_t *x = &w->segs[i];
            if (x->dim2 != PE_DOCTOR_DIMS && ((x->parent[0] == p->seg && x->parent[1] == c->seg) ||
                                              (x->parent[0] == c->seg && x->parent[1] == p->seg)))
                both = x;
        }
        if (!both)
            continue;
        pe_doctor_counts_t rest;
        counts_rest(&rest, &w->segs[p->seg].counts, &both->counts);
        if (rest_not_worse(rest.reach[s], rest.reach[s - 1], p->ref_rate))
            cause = c;
    }
    return cause;
}

int pe_doctor_analyze(const pe_doctor_input_t *in, pe_doctor_result_t *out, pe_refusal_t *err)
{
    int rc = PE_EINTERNAL;
    work_t w = {0};
    if (!out)
        return PE_EINVAL;
    memset(out, 0, sizeof *out);
    if (!in)
        return pe_refuse(err, PE_EINVAL, "missing_field", "input: missing");
    rc = check_input(in, err);
    if (rc)
        goto out;

    char from[16], to[16];
    fmt_day(in->from, from, sizeof from);
    fmt_day(in->to, to, sizeof to);
    int days = (int)(in->to - in->from + 1);
    size_t n = in->ncells;

    rc = PE_ENOMEM;
    w.order = malloc((n ? n : 1) * sizeof(const pe_doctor_cell_t *));
    if (!w.order)
        goto out;
    for (size_t i = 0; i < n; i++)
        w.order[i] = &in->cells[i];
    qsort(w.order, n, sizeof(const pe_doctor_cell_t *), cmp_cell);
    pe_doctor_counts_t total = {0};
    for (size_t i = 0; i < n; i++)
        counts_add(&total, &w.order[i]->counts);
    out->sessions = total.reach[0];

    if (total.reach[0] < PE_DOCTOR_MIN_SESSIONS) {
        char sessions[40];
        fmt_count(total.reach[0], sessions, sizeof sessions);
        snprintf(out->note, sizeof out->note,
                 "too little traffic: %s sessions in the %d days from %s to %s; the doctor needs "
                 "at least %d",
                 sessions, days, from, to, PE_DOCTOR_MIN_SESSIONS);
        rc = 0;
        goto out;
    }

    /* rule 12: one-way segments of every dimension and two-way ones of every pair: linear in
     * cells × pairs of dimensions */
    size_t maxsegs = (size_t)(PE_DOCTOR_DIMS + PE_DOCTOR_DIMS * (PE_DOCTOR_DIMS - 1) / 2) * n;
    w.segs = calloc(maxsegs ? maxsegs : 1, sizeof *w.segs);
    w.entries = calloc(n ? n : 1, sizeof *w.entries);
    if (!w.segs || !w.entries)
        goto out;
    rc = build_segments(in, &w);
    if (rc)
        goto out;
    rc = PE_ENOMEM; /* the segments that exist, not the most there could be */
    w.hyps = calloc((size_t)PE_DOCTOR_STEPS * (w.nsegs + 3), sizeof *w.hyps);
    if (!w.hyps)
        goto out;

    for (int s = 1; s <= PE_DOCTOR_STEPS; s++) {
        rc = add_benchmark(&w, s, &total, in->benchmark_dropoff[s]);
        if (rc)
            goto out;
        rc = add_two_sample(&w, PE_DOCTOR_BASELINE_SHIFT, s, SIZE_MAX, &total, &in->previous);
        if (rc)
            goto out;
        rc = add_change_point(&w, in, s);
        if (rc)
            goto out;
        for (size_t i = 0; i < w.nsegs; i++) {
            pe_doctor_counts_t rest;
            counts_rest(&rest, &total, &w.segs[i].counts);
            rc = add_two_sample(&w, PE_DOCTOR_SEGMENT_GAP, s, i, &w.segs[i].counts, &rest);
            if (rc)
                goto out;
        }
    }
    out->tests = w.nhyps;

    rc = PE_ENOMEM;
    size_t m = w.nhyps ? w.nhyps : 1;
    w.p = malloc(m * sizeof *w.p);
    w.scratch = malloc(m * sizeof *w.scratch);
    w.found = malloc(m * sizeof(hypo_t *));
    if (!w.p || !w.scratch || !w.found)
        goto out;
    /* Rule 5: one Benjamini–Hochberg family per kind. w.p holds a kind's p-values packed in
     * hypothesis order, then their q-values, which go back to the hypotheses' slots. */
    for (int kind = PE_DOCTOR_BENCHMARK_GAP; kind <= PE_DOCTOR_CHANGE_POINT; kind++) {
        size_t k = 0;
        for (size_t i = 0; i < w.nhyps; i++)
            if ((int)w.hyps[i].kind == kind)
                w.p[k++] = w.hyps[i].p;
        if (k == 0)
            continue;
        rc = pe_stats_fdr_bh(w.p, k, w.p, w.scratch);
        if (rc) {
            rc = PE_EINTERNAL; /* every p came from a z-test: a bug */
            goto out;
        }
        k = 0;
        for (size_t i = 0; i < w.nhyps; i++)
            if ((int)w.hyps[i].kind == kind)
                w.hyps[i].q = w.p[k++];
    }

    /* Rule 6's references need the hypothesis' counts again; they are recomputed here for the
     * few that are findings rather than kept for every test. */
    size_t nfound = 0;
    for (size_t i = 0; i < w.nhyps; i++) {
        hypo_t *h = &w.hyps[i];
        if (!(h->q <= PE_DOCTOR_FDR) || !(h->rate < h->ref_rate))
            continue;
        if (h->kind == PE_DOCTOR_SEGMENT_GAP) {
            bool explained = false;
            rc = explained_by_parent(&w, h, &explained);
            if (rc)
                goto out;
            if (explained)
                continue; /* rule 12: its parent says it */
            pe_doctor_counts_t rest;
            counts_rest(&rest, &total, &w.segs[h->seg].counts);
            impact(in, h, &rest, &total, days);
        } else if (h->kind == PE_DOCTOR_BASELINE_SHIFT) {
            impact(in, h, &in->previous, &total, days);
        } else if (h->kind == PE_DOCTOR_CHANGE_POINT) {
            pe_doctor_counts_t before, after;
            split_days(in, h->split, &before, &after);
            impact(in, h, &before, &total, (double)(in->to - h->since + 1));
        } else {
            impact(in, h, &total, &total, days);
        }
        h->score = (1 - h->q) * h->lost_profit;
        w.found[nfound++] = h;
    }
    /* Rules 12 and 13: a one-way gap that one of its reported two-way children, or a smaller
     * one-way finding of another dimension, explains ranks right after it. */
    for (size_t i = 0; i < nfound; i++) {
        hypo_t *h = w.found[i];
        if (h->kind != PE_DOCTOR_SEGMENT_GAP || h->dim2 != PE_DOCTOR_DIMS)
            continue;
        const hypo_t *cause = explained_by_child(&w, w.found, nfound, h);
        if (!cause)
            cause = explained_by_smaller(&w, w.found, nfound, h); /* rule 13 */
        h->explained_by = cause;
        if (cause && cause->score <= h->score)
            h->score = nextafter(cause->score, 0);
    }
    /* Rule 7: a store-level gap that one segment explains ranks right after that segment. */
    for (size_t i = 0; i < nfound; i++) {
        hypo_t *h = w.found[i];
        if (h->kind == PE_DOCTOR_SEGMENT_GAP || h->kind == PE_DOCTOR_CHANGE_POINT)
            continue; /* rule 11: a segment does not explain a date */
        const hypo_t *cause = NULL;
        for (size_t k = 0; k < nfound; k++) {
            const hypo_t *g = w.found[k];
            if (g->kind != PE_DOCTOR_SEGMENT_GAP || g->step != h->step ||
                (cause && cmp_found(&cause, &g) <= 0))
                continue;
            /* the store without g is g's reference: the rest of the store */
            if (rest_not_worse(g->ref_rate * g->ref_sessions, g->ref_sessions, h->ref_rate))
                cause = g;
        }
        h->explained_by = cause;
        if (cause && cause->score <= h->score)
            h->score = nextafter(cause->score, 0);
    }
    qsort(w.found, nfound, sizeof(hypo_t *), cmp_found);
    if (nfound > PE_DOCTOR_MAX_FINDINGS)
        nfound = PE_DOCTOR_MAX_FINDINGS;

    if (nfound == 0) {
        snprintf(out->note, sizeof out->note,
                 "no drop-off stands out: none of the %zu tests over the %d days from %s to %s "
                 "reached q <= %.2f",
                 w.nhyps, days, from, to, PE_DOCTOR_FDR);
        rc = 0;
        goto out;
    }
    rc = PE_ENOMEM;
    out->findings = calloc(nfound, sizeof *out->findings);
    if (!out->findings)
        goto out;
    for (size_t i = 0; i < nfound; i++) {
        const hypo_t *h = w.found[i];
        pe_doctor_finding_t *f = &out->findings[i];
        f->kind = h->kind;
        f->step = h->step;
        if (h->dim < PE_DOCTOR_DIMS) {
            f->has[h->dim] = true;
            snprintf(f->value[h->dim], sizeof f->value[h->dim], "%s", h->value);
        }
        if (h->dim2 < PE_DOCTOR_DIMS) {
            f->has[h->dim2] = true;
            snprintf(f->value[h->dim2], sizeof f->value[h->dim2], "%s", h->value2);
        }
        f->rate = h->rate;
        f->reference_rate = h->ref_rate;
        f->sessions = h->sessions;
        f->reference_sessions = h->ref_sessions;
        f->p_value = h->p;
        f->q_value = h->q;
        f->likelihood = 1 - h->q;
        f->since = h->kind == PE_DOCTOR_CHANGE_POINT ? h->since : 0;
        f->lost_orders = h->lost_orders;
        f->lost_revenue = h->lost_revenue;
        f->lost_profit = h->lost_profit;
        f->score = h->score;
        for (size_t k = 0; k < i && h->explained_by; k++)
            if (w.found[k] == h->explained_by)
                f->explained_by = (int)k + 1;
        write_texts(in, h, f);
        if (h->explained_by) {
            char who[2 * PE_DOCTOR_VALUE_MAX + 160];
            hypo_phrase(h->explained_by, who, sizeof who);
            text_t expl = {f->explanation, sizeof f->explanation, strlen(f->explanation)};
            if (h->kind == PE_DOCTOR_SEGMENT_GAP)
                text_add(&expl,
                         " Most of it comes from a part of them: %s (the finding above); the "
                         "others do not fall short.",
                         who);
            else
                text_add(&expl,
                         " Most of it comes from one segment: %s (the finding above); the rest "
                         "of the store does not fall short.",
                         who);
        }
    }
    out->count = nfound;
    rc = 0;
out:
    free(w.order);
    free(w.segs);
    free(w.entries);
    free(w.hyps);
    free(w.p);
    free(w.scratch);
    free(w.found);
    if (rc) {
        pe_doctor_result_free(out);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

void pe_doctor_result_free(pe_doctor_result_t *r)
{
    if (!r)
        return;
    free(r->findings);
    r->findings = NULL;
    r->count = 0;
}
