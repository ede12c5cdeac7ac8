/*
 * input.c — the parser of the untrusted `stats analyze` document (README "Statistics"):
 * JSON text → pe_stats_input_t (+ an optional proof plan and runtime), then the same checks
 * as every other caller gets (pe_stats_input_check, pe_stats_plan_check).
 *
 * Invariants:
 *  1. Strict: the text is one JSON object within pe_json_parse's limits; unknown and
 *     duplicate keys are refused at every level; every value has exactly its JSON type
 *     (numbers are numbers, never strings; null only where the README allows it).
 *  2. Every refusal fills err with a stable code (invalid_json, invalid_type, missing_field,
 *     unknown_field, duplicate_field, mismatched_arms, out_of_range, inconsistent) and a
 *     message that starts with the field's path ("variant.sumSquares: …").
 *  3. The two arms carry the same set of covariate fields; with "cuped": true all three are
 *     required. A proportion's sumSquares may be left out (it equals sum).
 *  4. No global state (the cJSON error pointer is not used); thread-safe.
 */
#include <stdio.h>
#include <string.h>

#include "stats_internal.h"

#define MAX_KEYS 16

typedef struct {
    const char *path; /* "" for the root, "control", "plan", … */
    const char *names[MAX_KEYS];
    const cJSON *items[MAX_KEYS];
} object_t;

/* Collects the members of o named in names (NULL-terminated) into obj->items; refuses
 * unknown and duplicate keys. */
static int object_read(const cJSON *o, const char *path, const char *const *names, object_t *obj,
                       pe_refusal_t *err)
{
    memset(obj, 0, sizeof *obj);
    obj->path = path;
    size_t n = 0;
    while (names[n] && n < MAX_KEYS) {
        obj->names[n] = names[n];
        n++;
    }
    if (!cJSON_IsObject(o))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be an object",
                         *path ? path : "input");
    const cJSON *m;
    cJSON_ArrayForEach(m, o)
    {
        const char *key = m->string ? m->string : "";
        size_t i = 0;
        while (i < n && strcmp(names[i], key) != 0)
            i++;
        if (i == n)
            return pe_refuse(err, PE_EINVAL, "unknown_field", "%s%s%.64s: unknown field", path,
                             *path ? "." : "", key);
        if (obj->items[i])
            return pe_refuse(err, PE_EINVAL, "duplicate_field", "%s%s%s: appears twice", path,
                             *path ? "." : "", key);
        obj->items[i] = m;
    }
    return 0;
}

static const cJSON *get(const object_t *obj, const char *name)
{
    for (size_t i = 0; i < MAX_KEYS && obj->names[i]; i++)
        if (strcmp(obj->names[i], name) == 0)
            return obj->items[i];
    return NULL;
}

static const char *sep(const object_t *obj)
{
    return *obj->path ? "." : "";
}

/* A number member; absent (or null when nullable) leaves *out untouched and sets *present. */
static int number(const object_t *obj, const char *name, bool required, bool nullable, double *out,
                  bool *present, pe_refusal_t *err)
{
    const cJSON *j = get(obj, name);
    if (present)
        *present = false;
    if (!j || (nullable && cJSON_IsNull(j))) {
        if (required && !j)
            return pe_refuse(err, PE_EINVAL, "missing_field", "%s%s%s: required", obj->path,
                             sep(obj), name);
        return 0;
    }
    if (!cJSON_IsNumber(j))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "%s%s%s: must be a number%s", obj->path,
                         sep(obj), name, nullable ? " or null" : "");
    if (!stats_finite(j->valuedouble))
        return pe_refuse(err, PE_EINVAL, "out_of_range", "%s%s%s: must be a finite number",
                         obj->path, sep(obj), name);
    *out = j->valuedouble;
    if (present)
        *present = true;
    return 0;
}

/* A string member that must be one of choices (NULL-terminated); *out is its index. */
static int choice(const object_t *obj, const char *name, bool required, const char *const *choices,
                  int *out, pe_refusal_t *err)
{
    const cJSON *j = get(obj, name);
    if (!j) {
        if (required)
            return pe_refuse(err, PE_EINVAL, "missing_field", "%s%s%s: required", obj->path,
                             sep(obj), name);
        return 0;
    }
    if (cJSON_IsString(j) && j->valuestring)
        for (int i = 0; choices[i]; i++)
            if (strcmp(j->valuestring, choices[i]) == 0) {
                *out = i;
                return 0;
            }
    char list[128] = "";
    size_t len = 0;
    for (int i = 0; choices[i] && len < sizeof list; i++) {
        int w = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", choices[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    return pe_refuse(err, PE_EINVAL, cJSON_IsString(j) ? "out_of_range" : "invalid_type",
                     "%s%s%s: must be one of %s", obj->path, sep(obj), name, list);
}

static const char *const METRICS[] = {"proportion", "mean", NULL};
static const char *const METHODS[] = {"frequentist", "bayesian", "sequential", NULL};
static const char *const SIDES[] = {"two", "greater", "less", NULL};
static const char *const DIFFERENCES[] = {"relative", "absolute", NULL};

static const char *const ARM_KEYS[] = {
    "n", "sum", "sumSquares", "preSum", "preSumSquares", "sumProducts", NULL};
enum { COV_PRE_SUM = 1, COV_PRE_SQUARES = 2, COV_PRODUCTS = 4 };

static int parse_arm(const cJSON *j, const char *name, pe_stats_metric_t metric,
                     pe_stats_arm_t *arm, unsigned *covariates, pe_refusal_t *err)
{
    object_t o;
    int rc = object_read(j, name, ARM_KEYS, &o, err);
    bool has_sq = false, p1 = false, p2 = false, p3 = false;
    rc = rc ? rc : number(&o, "n", true, false, &arm->n, NULL, err);
    rc = rc ? rc : number(&o, "sum", true, false, &arm->sum, NULL, err);
    rc = rc ? rc
            : number(&o, "sumSquares", metric == PE_STATS_MEAN, false, &arm->sum_squares, &has_sq,
                     err);
    rc = rc ? rc : number(&o, "preSum", false, false, &arm->pre_sum, &p1, err);
    rc = rc ? rc : number(&o, "preSumSquares", false, false, &arm->pre_sum_squares, &p2, err);
    rc = rc ? rc : number(&o, "sumProducts", false, false, &arm->sum_products, &p3, err);
    if (rc != 0)
        return rc;
    if (metric == PE_STATS_PROPORTION && !has_sq)
        arm->sum_squares = arm->sum;
    *covariates = (p1 ? COV_PRE_SUM : 0) | (p2 ? COV_PRE_SQUARES : 0) | (p3 ? COV_PRODUCTS : 0);
    return 0;
}

static const char *first_missing(unsigned have)
{
    return !(have & COV_PRE_SUM)       ? "preSum"
           : !(have & COV_PRE_SQUARES) ? "preSumSquares"
                                       : "sumProducts";
}

static int parse_arms(const object_t *root, pe_stats_input_t *in, pe_refusal_t *err)
{
    const cJSON *jc = get(root, "control"), *jv = get(root, "variant");
    if (!jc)
        return pe_refuse(err, PE_EINVAL, "missing_field", "control: required");
    if (!jv)
        return pe_refuse(err, PE_EINVAL, "missing_field", "variant: required");
    unsigned cc = 0, cv = 0;
    int rc = parse_arm(jc, "control", in->metric, &in->control, &cc, err);
    rc = rc ? rc : parse_arm(jv, "variant", in->metric, &in->variant, &cv, err);
    if (rc != 0)
        return rc;
    if (cc != cv) {
        unsigned missing = cc & ~cv;
        return pe_refuse(err, PE_EINVAL, "mismatched_arms", "%s.%s: present in %s only",
                         missing ? "variant" : "control", first_missing(missing ? cv : cc),
                         missing ? "control" : "variant");
    }
    if (in->cuped && cc != (COV_PRE_SUM | COV_PRE_SQUARES | COV_PRODUCTS))
        return pe_refuse(err, PE_EINVAL, "missing_field", "control.%s: required when cuped is true",
                         first_missing(cc));
    return 0;
}

static int parse_prior(const object_t *root, pe_stats_input_t *in, pe_refusal_t *err)
{
    const cJSON *j = get(root, "prior");
    if (!j || cJSON_IsNull(j))
        return 0;
    static const char *const keys[] = {"mean", "variance", NULL};
    object_t o;
    int rc = object_read(j, "prior", keys, &o, err);
    rc = rc ? rc : number(&o, "mean", true, false, &in->prior.mean, NULL, err);
    rc = rc ? rc : number(&o, "variance", true, false, &in->prior.variance, NULL, err);
    in->has_prior = rc == 0;
    return rc;
}

static int parse_split(const object_t *root, pe_stats_input_t *in, pe_refusal_t *err)
{
    const cJSON *j = get(root, "split");
    if (!j)
        return 0;
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 2)
        return pe_refuse(err, PE_EINVAL, "invalid_type",
                         "split: must be an array of two weights [control, variant]");
    int i = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, j)
    {
        if (!cJSON_IsNumber(w))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "split[%d]: must be a number", i);
        in->split[i++] = w->valuedouble;
    }
    return 0;
}

static int parse_triggers(const cJSON *j, pe_stats_plan_t *plan, pe_refusal_t *err)
{
    if (!j || cJSON_IsNull(j))
        return 0;
    if (!cJSON_IsArray(j))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "plan.rollbackTriggers: must be an array");
    if (cJSON_GetArraySize(j) > PE_STATS_MAX_TRIGGERS)
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "plan.rollbackTriggers: at most %d triggers", PE_STATS_MAX_TRIGGERS);
    static const char *const keys[] = {"relativeChange", "alpha", NULL};
    const cJSON *t;
    cJSON_ArrayForEach(t, j)
    {
        char path[48];
        snprintf(path, sizeof path, "plan.rollbackTriggers[%zu]", plan->n_triggers);
        object_t o;
        pe_stats_trigger_t *tr = &plan->triggers[plan->n_triggers];
        tr->alpha = plan->alpha;
        int rc = object_read(t, path, keys, &o, err);
        rc = rc ? rc : number(&o, "relativeChange", true, false, &tr->relative_change, NULL, err);
        rc = rc ? rc : number(&o, "alpha", false, false, &tr->alpha, NULL, err);
        if (rc != 0)
            return rc;
        plan->n_triggers++;
    }
    return 0;
}

static int parse_plan(const cJSON *j, pe_stats_plan_t *plan, pe_refusal_t *err)
{
    static const char *const keys[] = {
        "method",           "alpha", "minSampleSize", "minRuntimeDays", "maxRuntimeDays",
        "rollbackTriggers", NULL};
    object_t o;
    int method = (int)plan->method;
    int rc = object_read(j, "plan", keys, &o, err);
    rc = rc ? rc : choice(&o, "method", false, METHODS, &method, err);
    rc = rc ? rc : number(&o, "alpha", false, false, &plan->alpha, NULL, err);
    rc = rc ? rc : number(&o, "minSampleSize", false, false, &plan->min_units, NULL, err);
    rc = rc ? rc : number(&o, "minRuntimeDays", false, false, &plan->min_runtime_days, NULL, err);
    rc = rc ? rc : number(&o, "maxRuntimeDays", false, true, &plan->max_runtime_days, NULL, err);
    plan->method = (pe_stats_method_t)method;
    rc = rc ? rc : parse_triggers(get(&o, "rollbackTriggers"), plan, err);
    return rc ? rc : pe_stats_plan_check(plan, err);
}

int pe_stats_input_parse(const char *text, size_t len, pe_stats_input_t *in, pe_stats_plan_t *plan,
                         bool *has_plan, double *runtime_days, pe_refusal_t *err)
{
    static const char *const keys[] = {
        "metricType",       "method", "alpha",       "sides", "difference", "cuped",
        "sequentialTuning", "prior",  "split",       "power", "mde",        "control",
        "variant",          "plan",   "runtimeDays", NULL};
    char why[128];
    cJSON *root = NULL;
    int rc;
    pe_stats_input_defaults(in);
    pe_stats_plan_defaults(plan);
    *has_plan = false;
    *runtime_days = NAN;
    if (pe_json_parse(text ? text : "", text ? len : 0, &root, why, sizeof why) != 0) {
        rc = pe_refuse(err, PE_EINVAL, "invalid_json", "input: %s", why);
        goto out;
    }
    object_t o;
    int metric = 0, method = 0, sides = 0, difference = 0;
    rc = object_read(root, "", keys, &o, err);
    rc = rc ? rc : choice(&o, "metricType", true, METRICS, &metric, err);
    rc = rc ? rc : choice(&o, "method", false, METHODS, &method, err);
    rc = rc ? rc : choice(&o, "sides", false, SIDES, &sides, err);
    rc = rc ? rc : choice(&o, "difference", false, DIFFERENCES, &difference, err);
    rc = rc ? rc : number(&o, "alpha", false, false, &in->alpha, NULL, err);
    rc = rc ? rc : number(&o, "sequentialTuning", false, false, &in->sequential_tuning, NULL, err);
    rc = rc ? rc : number(&o, "power", false, false, &in->power, NULL, err);
    rc = rc ? rc : number(&o, "mde", false, true, &in->mde, NULL, err);
    if (rc != 0)
        goto out;
    in->metric = (pe_stats_metric_t)metric;
    in->method = (pe_stats_method_t)method;
    in->sides = (pe_stats_sides_t)sides;
    in->difference = (pe_stats_difference_t)difference;
    const cJSON *cuped = get(&o, "cuped");
    if (cuped && !cJSON_IsBool(cuped)) {
        rc = pe_refuse(err, PE_EINVAL, "invalid_type", "cuped: must be true or false");
        goto out;
    }
    in->cuped = cuped && cJSON_IsTrue(cuped);
    rc = parse_prior(&o, in, err);
    rc = rc ? rc : parse_split(&o, in, err);
    rc = rc ? rc : parse_arms(&o, in, err);
    rc = rc ? rc : pe_stats_input_check(in, err);
    if (rc != 0)
        goto out;
    const cJSON *jp = get(&o, "plan");
    bool has_runtime = false;
    rc = number(&o, "runtimeDays", false, false, runtime_days, &has_runtime, err);
    if (rc == 0 && jp && !cJSON_IsNull(jp)) {
        rc = parse_plan(jp, plan, err);
        if (rc == 0 && !has_runtime)
            rc = pe_refuse(err, PE_EINVAL, "missing_field", "runtimeDays: required with a plan");
        if (rc == 0 && !(*runtime_days >= 0))
            rc = pe_refuse(err, PE_EINVAL, "out_of_range",
                           "runtimeDays: must be a finite number ≥ 0");
        *has_plan = rc == 0;
    } else if (rc == 0 && has_runtime) {
        rc = pe_refuse(err, PE_EINVAL, "inconsistent", "runtimeDays: only meaningful with a plan");
    }
out:
    cJSON_Delete(root);
    return rc;
}
