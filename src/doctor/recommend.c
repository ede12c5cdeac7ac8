/*
 * recommend.c — from a finding and a playbook to a recommendation: its expected impact in orders,
 * revenue and gross profit per month net of the action's cost, its priority, and the complete
 * Autopilot ChangeSet that carries it (hypothesis, action plan with the flag that targets the
 * finding's segment, guardrails, rollback plan, proof plan). Pure: recommendations.c reads and
 * stores; this file computes.
 *
 * The impact (README "Recommendations"). A finding says: n sessions reached the step before,
 * a share r of them passed it against r_ref in the reference, and the gap cost G orders a month
 * (lostOrdersPerMonth, less what findings ranked before it explain). A playbook's prior says
 * which share u of such a gap its change wins back. Then, per month:
 *
 *     orders(u)  = G · u                              the recoverable gap × the prior
 *     step       = u · (r_ref − r) / r                the step's relative uplift (the proof's
 *                                                     MDE and expectedUplift)
 *     revenue(u) = orders(u) · AOV                    AOV = the finding's revenue ÷ orders
 *     base       = G · r / (r_ref − r)                the orders that come through today
 *     cost(u)    = discount % · (base + orders(u)) · AOV · scope share     (discounts)
 *                = shipping share · (base + orders(u)) · AOV                (free shipping)
 *                = 0                                                        (the rest)
 *     profit(u)  = revenue(u) · margin − cost(u)
 *
 * expected profit = likelihood · profit(middle of the prior), priority = expected ÷ effort.
 *
 * Invariants:
 *  1. No clock, no I/O; the same input gives the same output (the flag key too: it derives from
 *     the playbook and the finding's key, not from a random number).
 *  2. Impact is never extrapolated past the finding's own gap, and a cost counts every order in
 *     its scope, the ones that would have come anyway included.
 *  3. A recommendation's ChangeSet passes pe_changeset_validate in PE_CHANGESET_CLIENT mode
 *     (tests/unit/doctor/test_recommend.c checks every built-in playbook on every step).
 *  4. The target segment is one the feature flag can enforce (flag_hooks.c maps it): a segment
 *     with a value no context can carry ("unknown") gets no recommendation.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/doctor.h"
#include "pe/stats.h"

#define ALPHA           0.05
#define POWER           0.90  /* so that a loss of the planned size is caught in 90 % */
#define ROLLBACK        -0.05 /* the default trigger: the primary metric down more than 5 % */
#define MAX_STEP_UPLIFT 10    /* the relative uplift of a step that converts (almost) nothing */
#define TEXT            1024

#define TRIGGER_MAX_SAMPLE 1000.0 /* units per arm before a rollback trigger may fire, at most */

static const char *const STEP_NAMES[PE_DOCTOR_STEPS + 1] = {"",         "cart",    "checkout",
                                                            "shipping", "payment", "confirmation"};
/* The event that marks each step (DESIGN.md's event model). */
static const char *const STEP_EVENTS[PE_DOCTOR_STEPS + 1] = {
    "",
    "storefront.cart.item_added",
    "checkout.session.started",
    "checkout.shipping.submitted",
    "checkout.payment.submitted",
    "checkout.order.completed",
};
/* The context attribute each dimension is targeted by (flag_hooks.c maps it to the flag's
 * condition; the storefront SDK sends device, customer, source and campaign); NULL: the flag
 * cannot target it. */
static const char *const TARGET_ATTRIBUTE[PE_DOCTOR_DIMS] = {
    [PE_DOCTOR_DEVICE] = "device.type", [PE_DOCTOR_COUNTRY] = "country",
    [PE_DOCTOR_SOURCE] = "source",      [PE_DOCTOR_VISITOR] = "customer.type",
    [PE_DOCTOR_CAMPAIGN] = "campaign",
};

/* ---- a finding's identity and its stored form ----------------------------------------------- */

void pe_doctor_finding_key(const pe_doctor_finding_t *f, char *out, size_t len)
{
    const char *kind = pe_doctor_kind_name(f->kind);
    int o = snprintf(out, len, "%s:%s:", kind ? kind : "?",
                     f->step >= 1 && f->step <= PE_DOCTOR_STEPS ? STEP_NAMES[f->step] : "?");
    bool first = true;
    for (int d = 0; d < PE_DOCTOR_DIMS && o >= 0 && (size_t)o < len; d++)
        if (f->has[d]) {
            o += snprintf(out + o, len - (size_t)o, "%s%s=%s", first ? "" : ",",
                          pe_doctor_dim_name((pe_doctor_dim_t)d), f->value[d]);
            first = false;
        }
    if (first && o >= 0 && (size_t)o < len)
        snprintf(out + o, len - (size_t)o, "store");
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static double num_or(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = get(o, k);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : dflt;
}

int pe_doctor_finding_parse(const cJSON *doc, pe_doctor_finding_t *f)
{
    memset(f, 0, sizeof *f);
    const cJSON *kind = get(doc, "kind"), *step = get(doc, "step"), *seg = get(doc, "segment");
    if (!cJSON_IsString(kind) || !cJSON_IsString(step) || !cJSON_IsObject(seg))
        return PE_EINVAL;
    int k = 0;
    while (pe_doctor_kind_name((pe_doctor_kind_t)k) &&
           strcmp(pe_doctor_kind_name((pe_doctor_kind_t)k), kind->valuestring) != 0)
        k++;
    if (!pe_doctor_kind_name((pe_doctor_kind_t)k))
        return PE_EINVAL;
    f->kind = (pe_doctor_kind_t)k;
    for (int s = 1; s <= PE_DOCTOR_STEPS; s++)
        if (strcmp(STEP_NAMES[s], step->valuestring) == 0)
            f->step = s;
    if (!f->step)
        return PE_EINVAL;
    const cJSON *v;
    cJSON_ArrayForEach(v, seg)
    {
        int d = 0;
        while (d < PE_DOCTOR_DIMS && strcmp(pe_doctor_dim_name((pe_doctor_dim_t)d), v->string))
            d++;
        if (d == PE_DOCTOR_DIMS || !cJSON_IsString(v) ||
            strlen(v->valuestring) >= PE_DOCTOR_VALUE_MAX)
            return PE_EINVAL;
        f->has[d] = true;
        snprintf(f->value[d], sizeof f->value[d], "%s", v->valuestring);
    }
    f->rate = num_or(doc, "rate", NAN);
    f->reference_rate = num_or(doc, "referenceRate", NAN);
    f->sessions = num_or(doc, "sessions", 0);
    f->p_value = num_or(doc, "pValue", NAN);
    f->q_value = num_or(doc, "qValue", NAN);
    f->likelihood = num_or(doc, "likelihood", 0);
    double cause = num_or(doc, "explainedBy", 0);
    f->explained_by = cause >= 1 && cause <= PE_DOCTOR_MAX_FINDINGS ? (int)cause : 0;
    f->lost_orders = num_or(doc, "lostOrdersPerMonth", 0);
    f->lost_revenue = num_or(doc, "lostRevenuePerMonth", 0);
    f->lost_profit = num_or(doc, "lostProfitPerMonth", 0);
    const cJSON *title = get(doc, "title"), *expl = get(doc, "explanation");
    snprintf(f->title, sizeof f->title, "%s", cJSON_IsString(title) ? title->valuestring : "");
    snprintf(f->explanation, sizeof f->explanation, "%s",
             cJSON_IsString(expl) ? expl->valuestring : "");
    return 0;
}

/* True when a's segment lies inside b's: a fixes every dimension b fixes, to the same value. */
static bool inside(const pe_doctor_finding_t *a, const pe_doctor_finding_t *b)
{
    for (int d = 0; d < PE_DOCTOR_DIMS; d++)
        if (b->has[d] && (!a->has[d] || strcmp(a->value[d], b->value[d]) != 0))
            return false;
    return true;
}

void pe_doctor_findings_residual(pe_doctor_finding_t *f, size_t n)
{
    /* explained[i] from the original numbers: a finding shrunk first must not explain less */
    double *explained = calloc(n + 1, sizeof *explained);
    for (size_t i = 0; explained && i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (f[j].step == f[i].step && inside(&f[j], &f[i]))
                explained[i] += f[j].lost_orders;
    for (size_t i = 0; explained && i < n; i++) {
        if (!(f[i].lost_orders > 0) || explained[i] <= 0)
            continue;
        double keep = fmax(0, 1 - explained[i] / f[i].lost_orders);
        f[i].lost_orders *= keep;
        f[i].lost_revenue *= keep;
        f[i].lost_profit *= keep;
    }
    free(explained);
}

/* ---- what a merchant's request says --------------------------------------------------------- */

const char *const PE_DOCTOR_STATUS_NAMES[PE_DOCTOR_STATUSES] = {"active",   "queued",   "blocked",
                                                                "approved", "rejected", "retired"};

#define REASON_MAX 4000

int pe_doctor_status_parse(const char *list, unsigned *mask, pe_refusal_t *err)
{
    *mask = 0;
    if (!list) {
        *mask = 1u << 0 | 1u << 2; /* active, blocked */
        return 0;
    }
    const char *s = list;
    do {
        size_t n = strcspn(s, ",");
        int k = 0;
        while (k < PE_DOCTOR_STATUSES && !(strlen(PE_DOCTOR_STATUS_NAMES[k]) == n &&
                                           strncmp(PE_DOCTOR_STATUS_NAMES[k], s, n) == 0))
            k++;
        if (k == PE_DOCTOR_STATUSES)
            return pe_refuse(err, PE_EINVAL, "invalid_request",
                             "status: must be a comma-separated list of active, queued, blocked, "
                             "approved, rejected, retired");
        if (*mask & (1u << k))
            return pe_refuse(err, PE_EINVAL, "invalid_request", "status: %s is given twice",
                             PE_DOCTOR_STATUS_NAMES[k]);
        *mask |= 1u << k;
        s += n;
    } while (*s++ == ',');
    return 0;
}

int pe_doctor_decision_parse(const cJSON *body, bool approve, pe_doctor_decision_t *out,
                             pe_refusal_t *err)
{
    *out = (pe_doctor_decision_t){0};
    if (!body)
        return 0;
    if (!cJSON_IsObject(body))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "the body must be a JSON object");
    for (const cJSON *kv = body->child; kv; kv = kv->next) {
        bool known = approve
                         ? strcmp(kv->string, "force") == 0 || strcmp(kv->string, "confirm") == 0
                         : strcmp(kv->string, "reason") == 0;
        if (!known)
            return pe_refuse(err, PE_EINVAL, "unknown_field", "%.64s: unknown field (%s)",
                             kv->string, approve ? "force, confirm" : "reason");
        if (approve && !cJSON_IsBool(kv))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be true or false",
                             kv->string);
    }
    if (approve) {
        out->force = cJSON_IsTrue(get(body, "force"));
        out->confirm = cJSON_IsTrue(get(body, "confirm"));
        return 0;
    }
    const cJSON *reason = get(body, "reason");
    if (!reason || cJSON_IsNull(reason))
        return 0;
    if (!cJSON_IsString(reason))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "reason: must be a string");
    size_t n = strlen(reason->valuestring);
    if (n > REASON_MAX)
        return pe_refuse(err, PE_EINVAL, "too_long", "reason: at most %d bytes", REASON_MAX);
    if (pe_text_has_control(reason->valuestring, n))
        return pe_refuse(err, PE_EINVAL, "invalid_format", "reason: " PE_TEXT_CONTROL_RULE);
    out->reason = n ? reason->valuestring : NULL;
    return 0;
}

/* ---- impact --------------------------------------------------------------------------------- */

/* True when every dimension the finding fixes can be targeted by the flag with its value. */
static bool targetable(const pe_doctor_finding_t *f)
{
    for (int d = 0; d < PE_DOCTOR_DIMS; d++) {
        if (!f->has[d])
            continue;
        const char *v = f->value[d];
        if (!TARGET_ATTRIBUTE[d] || !v[0] || strcmp(v, "unknown") == 0)
            return false;
        if (d == PE_DOCTOR_COUNTRY &&
            !(strlen(v) == 2 && v[0] >= 'A' && v[0] <= 'Z' && v[1] >= 'A' && v[1] <= 'Z'))
            return false;
    }
    return true;
}

/* Units per arm and the runtime for the primary metric at the middle of the prior. */
static void plan_sample(const pe_doctor_finding_t *f, const pe_doctor_economics_t *eco, double down,
                        double aov, pe_doctor_impact_t *m)
{
    double u = (m->step_uplift[0] + m->step_uplift[1]) / 2;
    double r = fmin(fmax(f->rate, 0.001), 0.999);
    double per_month = f->sessions * 30 / eco->window_days;
    pe_stats_sample_size_input_t in = {
        .metric = PE_STATS_PROPORTION,
        .baseline = r,
        .mde = fmin(u, (0.999 - r) / r),
        .alpha = ALPHA,
        .power = POWER,
        .sides = PE_STATS_TWO_SIDED,
    };
    if (m->profit_metric) {
        /* Profit per unit at the step: an order (probability r·down) of value V·margin, V
         * exponential around the AOV (coefficient of variation 1: E[V²] = 2·AOV²). */
        double p = r * down, unit = aov * eco->margin;
        double mean = p * unit, var = p * 2 * unit * unit - mean * mean;
        double delta = (m->profit[0] + m->profit[1]) / 2 / fmax(per_month, 1);
        in.metric = PE_STATS_MEAN;
        in.baseline = mean;
        in.variance = var;
        in.mde = mean > 0 && delta > 0 ? delta / mean : 0;
    }
    pe_stats_sample_size_t out;
    pe_refusal_t err;
    if (!(in.mde > 0) || !(in.baseline > 0) || pe_stats_sample_size(&in, &out, &err) != 0 ||
        !isfinite(out.units_per_arm_ceil))
        out.units_per_arm_ceil = 1e9;
    m->units_per_arm = fmin(fmax(out.units_per_arm_ceil, 100), 1e9);
    double per_day = f->sessions / eco->window_days;
    m->days_needed = per_day > 0 ? 2 * m->units_per_arm / per_day : INFINITY;
    double weeks = ceil(fmin(m->days_needed, PE_DOCTOR_MAX_WINDOW_DAYS) / 7);
    m->window_days = (int)fmax(weeks * 7, PE_DOCTOR_MIN_WINDOW_DAYS);
}

int pe_doctor_impact(const pe_doctor_playbook_t *pb, const pe_doctor_finding_t *f,
                     const pe_doctor_economics_t *eco, pe_doctor_impact_t *out)
{
    memset(out, 0, sizeof *out);
    double r = f->rate, ref = f->reference_rate, gap = f->lost_orders;
    if (!isfinite(r) || !isfinite(ref) || r < 0 || ref > 1 || !(eco->margin >= 0) ||
        eco->margin > 1 || !(eco->window_days >= 1) || !(f->likelihood >= 0) || f->likelihood > 1 ||
        !(f->sessions >= 0))
        return PE_EINVAL;
    /* a symptom gets no recommendation of its own: its cause (explained_by) does */
    if (!(ref > r) || !(gap > 0) || !(f->lost_revenue > 0) || !(f->sessions > 0) ||
        f->explained_by || !targetable(f) || (pb->needs_category && !eco->category))
        return PE_ENOTFOUND;
    double aov = f->lost_revenue / gap;
    double base = gap * r / (ref - r);
    double per_month = f->sessions * 30 / eco->window_days;
    double down = per_month > 0 ? gap / (per_month * (ref - r)) : 0; /* orders per step pass */
    double scope = pb->needs_category ? fmin(fmax(eco->category_share, 0), 1) : 1;
    out->uplift[0] = pb->uplift_low;
    out->uplift[1] = pb->uplift_high;
    out->baseline_rate = r;
    for (int i = 0; i < 2; i++) {
        double u = out->uplift[i];
        out->orders[i] = gap * u;
        /* the step's conversion moves by u·(ref − r), relative to r (a broken step: capped) */
        out->step_uplift[i] = fmin(u * (ref - r) / fmax(r, 0.001), MAX_STEP_UPLIFT);
        out->revenue[i] = out->orders[i] * aov;
        double reached = (base + out->orders[i]) * aov; /* every order in scope, at list price */
        if (pb->cost == PE_DOCTOR_COST_DISCOUNT)
            out->cost[i] = pb->amount / 100 * reached * scope;
        else if (pb->cost == PE_DOCTOR_COST_SHIPPING)
            out->cost[i] = fmin(fmax(eco->shipping_share, 0), 1) * reached;
        out->profit[i] = out->revenue[i] * eco->margin - out->cost[i];
    }
    out->expected_profit = f->likelihood * (out->profit[0] + out->profit[1]) / 2;
    out->priority = out->expected_profit / pb->effort;
    out->profit_metric = pb->cost != PE_DOCTOR_COST_NONE;
    plan_sample(f, eco, down, aov, out);
    return 0;
}

bool pe_doctor_impact_worth_proposing(const pe_doctor_impact_t *m)
{
    return m->expected_profit > 0 && m->profit[0] + m->profit[1] > 0;
}

/* ---- texts ---------------------------------------------------------------------------------- */

/* "1,234" / "12.5": amounts for sentences. */
static void fmt_amount(double x, char *out, size_t len)
{
    double a = fabs(x);
    if (a >= 100) {
        long long v = llround(a);
        char digits[32], grouped[48];
        snprintf(digits, sizeof digits, "%lld", v);
        size_t n = strlen(digits), o = 0;
        for (size_t i = 0; i < n; i++) {
            if (i && (n - i) % 3 == 0)
                grouped[o++] = ',';
            grouped[o++] = digits[i];
        }
        grouped[o] = '\0';
        snprintf(out, len, "%s%s", x < 0 ? "-" : "", grouped);
    } else {
        snprintf(out, len, "%s%.1f", x < 0 ? "-" : "", a);
    }
}

/* The template with {who}, {step}, {category}, {amount} and {currency} replaced. */
static void render(const char *tpl, const char *who, const pe_doctor_playbook_t *pb,
                   const pe_doctor_finding_t *f, const pe_doctor_economics_t *eco, char *out,
                   size_t len)
{
    char amount[32];
    snprintf(amount, sizeof amount, "%g", pb->amount);
    const struct {
        const char *name, *value;
    } vars[] = {{"{who}", who},
                {"{step}", STEP_NAMES[f->step]},
                {"{category}", eco->category ? eco->category : "the category"},
                {"{amount}", amount},
                {"{currency}", eco->currency ? eco->currency : ""}};
    size_t o = 0;
    for (const char *p = tpl; *p && o + 1 < len;) {
        size_t i = 0;
        while (i < PE_ARRAY_LEN(vars) && strncmp(p, vars[i].name, strlen(vars[i].name)) != 0)
            i++;
        if (i < PE_ARRAY_LEN(vars)) {
            int n = snprintf(out + o, len - o, "%s", vars[i].value);
            o = n < 0 ? o : fmin(o + (size_t)n, len - 1);
            p += strlen(vars[i].name);
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

/* "mobile visitors" from "Mobile visitors" (inside a sentence); "every visitor". */
static void who_of(const pe_doctor_finding_t *f, char *out, size_t len)
{
    pe_doctor_segment_phrase(f, out, len);
    if (out[0] >= 'A' && out[0] <= 'Z' && !(out[1] >= 'A' && out[1] <= 'Z'))
        out[0] = (char)(out[0] - 'A' + 'a');
}

/* ---- the ChangeSet -------------------------------------------------------------------------- */

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static const char *confidence(double likelihood)
{
    return likelihood >= 0.99 ? "high" : likelihood >= 0.9 ? "medium" : "low";
}

static cJSON *parse_value(const pe_doctor_playbook_t *pb, const char *tpl)
{
    char text[512];
    render(tpl, "", pb, &(pe_doctor_finding_t){.step = 1}, &(pe_doctor_economics_t){0}, text,
           sizeof text);
    return cJSON_ParseWithLengthOpts(text, strlen(text) + 1, NULL, true); /* the NUL included */
}

static bool add_metric(cJSON *list, const char *name, const char *description,
                       const char *aggregation, const char *event, double mde)
{
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddItemToArray(list, m)) {
        cJSON_Delete(m);
        return false;
    }
    return cJSON_AddStringToObject(m, "name", name) &&
           cJSON_AddStringToObject(m, "description", description) &&
           cJSON_AddStringToObject(m, "aggregation", aggregation) &&
           cJSON_AddStringToObject(m, "direction", "increase") &&
           (!event || cJSON_AddStringToObject(m, "eventName", event)) &&
           (!(mde > 0) || cJSON_AddNumberToObject(m, "minimumDetectableEffect", fmin(mde, 10)));
}

static bool add_trigger(cJSON *list, const char *metric, const char *window, double sample)
{
    cJSON *t = cJSON_CreateObject();
    if (!t || !cJSON_AddItemToArray(list, t)) {
        cJSON_Delete(t);
        return false;
    }
    return cJSON_AddStringToObject(t, "metric", metric) &&
           cJSON_AddStringToObject(t, "operator", "lt") &&
           cJSON_AddNumberToObject(t, "threshold", ROLLBACK) &&
           cJSON_AddStringToObject(t, "window", window) &&
           cJSON_AddNumberToObject(t, "minimumSampleSize", sample) &&
           cJSON_AddStringToObject(t, "action", "rollback");
}

/* targetSegment: one rule per dimension the finding fixes. */
static cJSON *target_segment(const pe_doctor_finding_t *f, const pe_doctor_economics_t *eco,
                             const char *who_cap)
{
    cJSON *seg = cJSON_CreateObject();
    cJSON *rules = seg ? cJSON_AddArrayToObject(seg, "rules") : NULL;
    bool ok = rules && cJSON_AddStringToObject(seg, "name", who_cap);
    for (int d = 0; ok && d < PE_DOCTOR_DIMS; d++) {
        if (!f->has[d])
            continue;
        cJSON *r = cJSON_CreateObject();
        ok = r && cJSON_AddStringToObject(r, "attribute", TARGET_ATTRIBUTE[d]) &&
             cJSON_AddStringToObject(r, "operator", "eq") &&
             cJSON_AddStringToObject(r, "value", f->value[d]) && cJSON_AddItemToArray(rules, r);
        if (!ok)
            cJSON_Delete(r);
    }
    if (ok && eco->store_sessions > 0 && cJSON_GetArraySize(rules) > 0) {
        /* the segment's share of sessions is only known at the step's entry: a floor */
        double reach = fmin(1, f->sessions / eco->store_sessions);
        ok = cJSON_AddNumberToObject(seg, "estimatedReach", round(reach * 10000) / 10000) != NULL;
    }
    if (!ok) {
        cJSON_Delete(seg);
        return NULL;
    }
    return seg;
}

static bool add_slos(cJSON *list, const cJSON *gates)
{
    const cJSON *g;
    cJSON_ArrayForEach(g, gates)
    {
        const cJSON *metric = get(g, "metric"), *op = get(g, "operator"), *th = get(g, "threshold");
        if (!cJSON_IsString(metric) || !cJSON_IsString(op) || !cJSON_IsNumber(th))
            continue;
        cJSON *s = cJSON_CreateObject();
        if (!s || !cJSON_AddItemToArray(list, s)) {
            cJSON_Delete(s);
            return false;
        }
        if (!cJSON_AddStringToObject(s, "metric", metric->valuestring) ||
            !cJSON_AddStringToObject(s, "operator", op->valuestring) ||
            !cJSON_AddNumberToObject(s, "threshold", th->valuedouble) ||
            !cJSON_AddStringToObject(s, "window", "P1D"))
            return false;
    }
    return true;
}

typedef struct {
    char who[2 * PE_DOCTOR_VALUE_MAX + 160], who_cap[2 * PE_DOCTOR_VALUE_MAX + 160];
    char title[TEXT], description[TEXT], change[TEXT], problem[TEXT], outcome[TEXT];
    char metric[64], step_metric[64], flag_key[PE_DOCTOR_PLAYBOOK_KEY_MAX + 16], window[16];
    char measure[TEXT], rollback[TEXT];
} texts_t;

static void write_texts(const pe_doctor_playbook_t *pb, const pe_doctor_finding_t *f,
                        const pe_doctor_economics_t *eco, const pe_doctor_impact_t *m, texts_t *t)
{
    char key[PE_DOCTOR_TEXT_MAX], o0[64], o1[64], p0[64], p1[64], n[64];
    const char *cur = eco->currency ? eco->currency : "";
    pe_doctor_segment_phrase(f, t->who_cap, sizeof t->who_cap);
    who_of(f, t->who, sizeof t->who);
    render(pb->title, t->who, pb, f, eco, t->title, sizeof t->title);
    if (t->title[0] >= 'a' && t->title[0] <= 'z')
        t->title[0] = (char)(t->title[0] - 'a' + 'A');
    render(pb->description, t->who, pb, f, eco, t->description, sizeof t->description);
    render(pb->change, t->who, pb, f, eco, t->change, sizeof t->change);
    pe_doctor_finding_key(f, key, sizeof key);
    snprintf(t->flag_key, sizeof t->flag_key, "ap-%s-%08x", pb->key, fnv1a(key));
    snprintf(t->step_metric, sizeof t->step_metric, "%s_conversion_rate", STEP_NAMES[f->step]);
    if (m->profit_metric)
        snprintf(t->metric, sizeof t->metric, "profit_per_visitor");
    else
        snprintf(t->metric, sizeof t->metric, "%s_conversion_rate", STEP_NAMES[f->step]);
    snprintf(t->window, sizeof t->window, "P%dD", m->window_days);
    snprintf(t->problem, sizeof t->problem, "%s %s", f->title, f->explanation);
    fmt_amount(m->orders[0], o0, sizeof o0);
    fmt_amount(m->orders[1], o1, sizeof o1);
    fmt_amount(m->profit[0], p0, sizeof p0);
    fmt_amount(m->profit[1], p1, sizeof p1);
    snprintf(t->outcome, sizeof t->outcome,
             "Win back %.0f-%.0f %% of the gap to %.1f %%: lift the %s conversion of %s by "
             "%.1f-%.1f %% (from %.1f %%), %s to %s more orders and %s to %s %s more gross profit "
             "a month, net of what the change costs.",
             m->uplift[0] * 100, m->uplift[1] * 100, f->reference_rate * 100, STEP_NAMES[f->step],
             t->who, m->step_uplift[0] * 100, m->step_uplift[1] * 100, m->baseline_rate * 100, o0,
             o1, p0, p1, cur);
    fmt_amount(m->units_per_arm, n, sizeof n);
    int written = snprintf(
        t->measure, sizeof t->measure,
        "A/B test behind the flag %s: half of %s get the change, half keep today's store (the "
        "store's global holdout never gets it). Primary metric: %s, %s units per arm for the "
        "middle of the expected uplift at 90 %% power and a 5 %% significance level; "
        "measured for %d days",
        t->flag_key, t->who, t->metric, n, m->window_days);
    if (written > 0 && (size_t)written < sizeof t->measure) {
        if (m->days_needed > PE_DOCTOR_MAX_WINDOW_DAYS)
            snprintf(t->measure + written, sizeof t->measure - (size_t)written,
                     " (at today's traffic the sample needs about %.0f weeks: the test may end "
                     "inconclusive, and then the change is rolled back).",
                     ceil(m->days_needed / 7));
        else
            snprintf(t->measure + written, sizeof t->measure - (size_t)written,
                     ", whole weeks so that every weekday counts.");
    }
    snprintf(t->rollback, sizeof t->rollback,
             "Rolled back automatically when %s%s falls more than 5 %% below control with "
             "significance (an always-valid test, so checking every few minutes does not raise "
             "false alarms); the merchant can roll back at any time. Rolling back turns the flag "
             "%s off: every visitor gets today's store within a second.",
             t->metric, m->profit_metric ? "" : " or profit per visitor", t->flag_key);
}

static cJSON *build_changeset(const pe_doctor_playbook_t *pb, const pe_doctor_finding_t *f,
                              const cJSON *finding, const pe_doctor_economics_t *eco,
                              const pe_doctor_impact_t *m, const texts_t *t)
{
    cJSON *cs = cJSON_CreateObject();
    if (!cs)
        return NULL;
    /* hypothesis */
    cJSON *h = cJSON_AddObjectToObject(cs, "hypothesis");
    bool ok =
        h && cJSON_AddStringToObject(h, "problem", t->problem) &&
        cJSON_AddStringToObject(h, "expectedOutcome", t->outcome) &&
        cJSON_AddStringToObject(h, "confidenceLevel", confidence(f->likelihood)) &&
        cJSON_AddItemToObject(h, "dataEvidence", cJSON_Duplicate(get(finding, "evidence"), true));
    /* actionPlan */
    cJSON *ap = ok ? cJSON_AddObjectToObject(cs, "actionPlan") : NULL;
    ok = ap && cJSON_AddStringToObject(ap, "type", pb->action_type) &&
         cJSON_AddItemToObject(ap, "targetSegment", target_segment(f, eco, t->who_cap));
    cJSON *impl = ok ? cJSON_AddObjectToObject(ap, "implementation") : NULL;
    cJSON *changes = impl && cJSON_AddStringToObject(impl, "featureFlagKey", t->flag_key)
                         ? cJSON_AddArrayToObject(impl, "changes")
                         : NULL;
    cJSON *c = changes ? cJSON_CreateObject() : NULL;
    ok = c && cJSON_AddItemToArray(changes, c);
    if (!ok)
        cJSON_Delete(c);
    cJSON *scope = ok ? cJSON_CreateObject() : NULL;
    ok = scope && cJSON_AddItemToObject(c, "scope", scope);
    if (!ok)
        cJSON_Delete(scope);
    ok = ok && cJSON_AddStringToObject(c, "type", pb->change_type) &&
         cJSON_AddStringToObject(c, "description", t->change) &&
         (pb->needs_category ? cJSON_AddStringToObject(scope, "category", eco->category) != NULL
          : pb->selector     ? cJSON_AddStringToObject(scope, "selector", pb->selector) != NULL
                             : true) &&
         cJSON_AddItemToObject(c, "before", parse_value(pb, pb->before)) &&
         cJSON_AddItemToObject(c, "after", parse_value(pb, pb->after)) &&
         cJSON_AddStringToObject(c, "variant", "treatment") &&
         cJSON_AddStringToObject(ap, "rolloutStrategy", "holdout") &&
         cJSON_AddNumberToObject(ap, "rolloutPercentage", 50);
    if (ok && !scope->child)
        cJSON_DeleteItemFromObjectCaseSensitive(c, "scope");
    /* guardrails: the store's */
    const cJSON *g = eco->guardrails;
    cJSON *gr = ok ? cJSON_AddObjectToObject(cs, "guardrails") : NULL;
    double margin_floor = num_or(g, "minMarginPct", 0), stock = num_or(g, "minStockUnits", -1);
    ok = gr && cJSON_AddNumberToObject(gr, "profitFloor", fmin(fmax(margin_floor, 0), 100)) &&
         (stock < 0 || cJSON_AddNumberToObject(gr, "stockThreshold", floor(stock))) &&
         add_slos(cJSON_AddArrayToObject(gr, "sloRequirements"), get(g, "sloGates")) &&
         cJSON_AddStringToObject(gr, "riskLevel", pb->risk) &&
         cJSON_AddArrayToObject(gr, "blockedConditions");
    /* rollbackPlan */
    /* A trigger's minimum sample only delays the always-valid test, which is already safe to
     * look at from its first hundred units: a tenth of the proof's sample, but never more than
     * TRIGGER_MAX_SAMPLE, so that harm to a test planned for a million units is still caught
     * in its first weeks (closed-loop simulation: a −40 % change with a 250,000-unit trigger
     * ran its full 56 days). */
    double trigger_sample = fmin(fmax(100, ceil(m->units_per_arm / 10)), TRIGGER_MAX_SAMPLE);
    cJSON *rb = ok ? cJSON_AddObjectToObject(cs, "rollbackPlan") : NULL;
    cJSON *triggers = rb ? cJSON_AddArrayToObject(rb, "autoRollbackTriggers") : NULL;
    char procedure[256];
    snprintf(procedure, sizeof procedure,
             "Disable the flag %s: every visitor gets today's store at once", t->flag_key);
    ok = triggers && add_trigger(triggers, t->metric, t->window, trigger_sample) &&
         (m->profit_metric ||
          add_trigger(triggers, "profit_per_visitor", t->window, trigger_sample)) &&
         cJSON_AddTrueToObject(rb, "manualRollbackEnabled") &&
         cJSON_AddStringToObject(rb, "rollbackProcedure", procedure) &&
         cJSON_AddStringToObject(rb, "estimatedRollbackTime", "PT1M");
    /* proofPlan */
    cJSON *pp = ok ? cJSON_AddObjectToObject(cs, "proofPlan") : NULL;
    cJSON *primary = pp ? cJSON_AddArrayToObject(pp, "primaryMetrics") : NULL;
    cJSON *secondary = primary ? cJSON_AddArrayToObject(pp, "secondaryMetrics") : NULL;
    char step_desc[128];
    snprintf(step_desc, sizeof step_desc,
             "units that reached the %s step ÷ units exposed at the "
             "step before it",
             STEP_NAMES[f->step]);
    double mid = (m->step_uplift[0] + m->step_uplift[1]) / 2;
    ok = secondary &&
         (m->profit_metric
              ? add_metric(primary, "profit_per_visitor",
                           "(revenue − cost of goods − the change's own cost) ÷ units exposed",
                           "mean", NULL, 0) &&
                    add_metric(secondary, t->metric[0] == 'p' ? "conversion_rate" : t->metric,
                               "orders ÷ units exposed", "conversion_rate",
                               "checkout.order.completed", 0)
              : add_metric(primary, t->metric, step_desc, "conversion_rate", STEP_EVENTS[f->step],
                           mid) &&
                    add_metric(secondary, "profit_per_visitor",
                               "(revenue − cost of goods) ÷ units exposed", "mean", NULL, 0)) &&
         add_metric(secondary, "revenue_per_visitor", "revenue ÷ units exposed", "mean", NULL, 0) &&
         add_metric(secondary, "average_order_value", "revenue ÷ orders", "mean",
                    "checkout.order.completed", 0) &&
         cJSON_AddNumberToObject(pp, "holdoutPercentage", 50) &&
         cJSON_AddStringToObject(pp, "statisticalMethod",
                                 eco->has_pre_period ? "cuped" : "frequentist") &&
         cJSON_AddNumberToObject(pp, "minimumSampleSize", m->units_per_arm) &&
         cJSON_AddStringToObject(pp, "measurementWindow", t->window) &&
         cJSON_AddNumberToObject(pp, "significanceThreshold", ALPHA);
    if (!ok) {
        cJSON_Delete(cs);
        return NULL;
    }
    return cs;
}

static cJSON *range(double lo, double hi, double scale)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddNumberToObject(o, "low", round(lo * scale) / scale) ||
        !cJSON_AddNumberToObject(o, "high", round(hi * scale) / scale)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int pe_doctor_recommendation_build(const pe_doctor_playbook_t *pb, const pe_doctor_finding_t *f,
                                   const cJSON *finding, const pe_doctor_economics_t *eco,
                                   const pe_doctor_impact_t *m, cJSON **rec, cJSON **changeset)
{
    *rec = *changeset = NULL;
    if (f->step < 1 || f->step > PE_DOCTOR_STEPS || !cJSON_IsArray(get(finding, "evidence")))
        return PE_EINVAL;
    texts_t *t = calloc(1, sizeof *t);
    if (!t)
        return PE_ENOMEM;
    int rc = PE_ENOMEM;
    write_texts(pb, f, eco, m, t);
    cJSON *r = NULL, *cs = build_changeset(pb, f, finding, eco, m, t);
    if (!cs)
        goto out;
    r = cJSON_CreateObject();
    const cJSON *fid = get(finding, "id");
    cJSON *uplift = r ? cJSON_AddObjectToObject(r, "expectedUplift") : NULL;
    cJSON *impact = uplift ? cJSON_AddObjectToObject(r, "expectedImpactPerMonth") : NULL;
    cJSON *learn = impact ? cJSON_CreateObject() : NULL;
    bool ok =
        learn && cJSON_AddStringToObject(r, "title", t->title) &&
        cJSON_AddStringToObject(r, "description", t->description) &&
        cJSON_AddStringToObject(r, "problem", f->title) &&
        cJSON_AddStringToObject(r, "findingId", cJSON_IsString(fid) ? fid->valuestring : "") &&
        cJSON_AddStringToObject(r, "playbook", pb->key) &&
        cJSON_AddStringToObject(r, "step", STEP_NAMES[f->step]) &&
        cJSON_AddItemToObject(r, "segment", cJSON_Duplicate(get(finding, "segment"), true)) &&
        cJSON_AddStringToObject(uplift, "metric", t->step_metric) &&
        cJSON_AddNumberToObject(uplift, "low", round(m->step_uplift[0] * 1e4) / 1e4) &&
        cJSON_AddNumberToObject(uplift, "high", round(m->step_uplift[1] * 1e4) / 1e4) &&
        cJSON_AddNumberToObject(uplift, "gapShareLow", m->uplift[0]) &&
        cJSON_AddNumberToObject(uplift, "gapShareHigh", m->uplift[1]) &&
        cJSON_AddItemToObject(impact, "orders", range(m->orders[0], m->orders[1], 10)) &&
        cJSON_AddItemToObject(impact, "revenue", range(m->revenue[0], m->revenue[1], 100)) &&
        cJSON_AddItemToObject(impact, "profit", range(m->profit[0], m->profit[1], 100)) &&
        cJSON_AddItemToObject(impact, "cost", range(m->cost[0], m->cost[1], 100)) &&
        cJSON_AddStringToObject(impact, "currency", eco->currency ? eco->currency : "") &&
        cJSON_AddStringToObject(r, "riskLevel", pb->risk) &&
        cJSON_AddStringToObject(r, "implementationMethod", pb->method) &&
        cJSON_AddNumberToObject(r, "effort", pb->effort) &&
        cJSON_AddNumberToObject(r, "expectedProfit", round(m->expected_profit * 100) / 100) &&
        cJSON_AddNumberToObject(r, "priority", round(m->priority * 100) / 100) &&
        cJSON_AddItemToObject(r, "learnMore", learn);
    if (!ok && learn && !get(r, "learnMore"))
        cJSON_Delete(learn);
    ok =
        ok && cJSON_AddStringToObject(learn, "explanation", f->explanation) &&
        cJSON_AddItemToObject(learn, "evidence", cJSON_Duplicate(get(finding, "evidence"), true)) &&
        cJSON_AddStringToObject(learn, "rationale", pb->rationale) &&
        cJSON_AddStringToObject(learn, "source", pb->source) &&
        cJSON_AddStringToObject(learn, "measurement", t->measure) &&
        cJSON_AddStringToObject(learn, "rollback", t->rollback);
    if (!ok)
        goto out;
    *rec = r;
    *changeset = cs;
    r = cs = NULL;
    rc = 0;
out:
    cJSON_Delete(r);
    cJSON_Delete(cs);
    free(t);
    return rc;
}
