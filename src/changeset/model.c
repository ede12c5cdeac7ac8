/*
 * model.c — the AutopilotChangeSet contract as one table of shapes and fields, walked by the
 * validator (pe_changeset_validate) and by the JSON Schema generator (pe_changeset_json_schema),
 * plus the cuid ids.
 *
 * Invariants:
 *  1. No bound is written twice: the validator and the schema read the same field table.
 *  2. Every object is closed (unknown keys refused, additionalProperties: false).
 *  3. The first failure in document order is reported as "<path>: <rule>", the path in the
 *     contract's own spelling (actionPlan.implementation.changes[2].after).
 *  4. Rules JSON Schema cannot say (cross-field rules in check_*) are stated in descriptions;
 *     the schema is weaker than the validator there, never stricter.
 *  5. Pure, allocation-free (the schema builder aside) and thread-safe.
 *  6. A number that is not finite (cJSON reads 1e400 as inf and would store null) is refused
 *     wherever it is, with the one rule of pe/core.h: out_of_range, "<path of the number>:
 *     must be a finite number …" (metadata.a.b[2] included).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pe/changeset.h"
#include "pe/events.h"

#define SCHEMA_ID   "https://profit-engine.dev/schemas/changeset.json"
#define SCHEMA_2020 "https://json-schema.org/draft/2020-12/schema"

typedef enum {
    K_STRING,   /* min..max bytes of UTF-8, no control characters */
    K_IDENT,    /* [a-z0-9][a-z0-9_.-]*, min..max bytes (flag keys, metric names) */
    K_ENUM,     /* one of values */
    K_NUMBER,   /* finite, min..max */
    K_INTEGER,  /* integral, min..max */
    K_BOOL,     /* true | false */
    K_DATETIME, /* RFC 3339 */
    K_DURATION, /* ISO 8601 duration: P[nW|nD][T[nH][nM][nS]] */
    K_CUID,     /* ^c[0-9a-z]{24}$ */
    K_HASH,     /* 64 lower-case hex digits */
    K_VALUE,    /* a string, number, boolean, or an array of those (≤ max items) */
    K_FREE,     /* any JSON object (metadata) */
    K_OBJECT,   /* shape */
    K_ARRAY,    /* items: *item, min..max entries */
} kind_t;

#define F_REQ    0x1u /* mandatory */
#define F_SERVER 0x2u /* owned by the server: mandatory in FULL mode, optional in CLIENT mode */
#define F_NULL   0x4u /* null allowed */

typedef struct shape shape_t;
typedef struct field field_t;

struct field {
    const char *name;
    kind_t kind;
    unsigned flags;
    double min, max;
    const char *const *values; /* K_ENUM, NULL-terminated */
    const shape_t *shape;      /* K_OBJECT */
    const field_t *item;       /* K_ARRAY */
    const char *doc;
};

typedef struct {
    const char *path;
    char *buf;
    size_t len;
    size_t cap;
} path_t;

struct shape {
    const char *name; /* $defs key */
    const char *doc;
    const field_t *fields;
    size_t nfields;
    /* cross-field rules; returns 0 or PE_EINVAL with err filled */
    int (*check)(const cJSON *obj, char *path, size_t plen, pe_refusal_t *err);
};

/* ---- enumerations ------------------------------------------------------------------------------
 */

static const char *const CONFIDENCE[] = {"low", "medium", "high", NULL};
static const char *const ACTION_TYPES[] = {"feature_flag",  "workflow",       "copy_change",
                                           "timing_change", "segment_target", NULL};
static const char *const ROLLOUTS[] = {"immediate", "gradual", "holdout", NULL};
static const char *const RISK[] = {"low", "medium", "high", NULL};
static const char *const METHODS[] = {"cuped", "bayesian", "frequentist", NULL};
static const char *const APPROVAL[] = {"pending", "approved", "rejected", "expired", NULL};
static const char *const STATES[] = {"DRAFT",     "PENDING_APPROVAL", "ACTIVE",
                                     "MEASURING", "PROVEN",           "ROLLED_BACK",
                                     "PERMANENT", "ARCHIVED",         NULL};
static const char *const SOURCES[] = {"events",  "aggregates", "diagnostics", "experiment",
                                      "catalog", "external",   NULL};
static const char *const OPERATORS[] = {"eq",  "neq", "in",  "not_in",   "gt",
                                        "gte", "lt",  "lte", "contains", NULL};
static const char *const COMPARE[] = {"lt", "lte", "gt", "gte", NULL};
static const char *const CHANGE_TYPES[] = {"price",  "discount", "shipping",  "copy",
                                           "layout", "timing",   "targeting", NULL};
static const char *const TRIGGER_ACTIONS[] = {"rollback", "pause", "alert", NULL};
static const char *const AGGREGATIONS[] = {"conversion_rate", "mean",  "sum",
                                           "count",           "ratio", NULL};
static const char *const DIRECTIONS[] = {"increase", "decrease", NULL};
static const char *const OUTCOMES[] = {"proven", "rejected", "inconclusive", NULL};
static const char *const ACTOR_TYPES[] = {"system", "user", "autopilot", NULL};
static const char *const AUDIT_ACTIONS[] = {
    "created",     "updated",        "submitted", "approved",          "rejected",
    "expired",     "withdrawn",      "activated", "measured",          "proven",
    "rolled_back", "made_permanent", "archived",  "guardrail_blocked", "guardrail_overridden",
    NULL};

/* ---- the contract
 * -------------------------------------------------------------------------------- */

#define STR(n, fl, lo, hi, d)                                                                      \
    {                                                                                              \
        n, K_STRING, fl, lo, hi, NULL, NULL, NULL, d                                               \
    }
#define IDENT(n, fl, d)                                                                            \
    {                                                                                              \
        n, K_IDENT, fl, 1, 128, NULL, NULL, NULL, d                                                \
    }
#define ENUM(n, fl, v, d)                                                                          \
    {                                                                                              \
        n, K_ENUM, fl, 0, 0, v, NULL, NULL, d                                                      \
    }
#define NUM(n, fl, lo, hi, d)                                                                      \
    {                                                                                              \
        n, K_NUMBER, fl, lo, hi, NULL, NULL, NULL, d                                               \
    }
#define INT(n, fl, lo, hi, d)                                                                      \
    {                                                                                              \
        n, K_INTEGER, fl, lo, hi, NULL, NULL, NULL, d                                              \
    }
#define SIMPLE(n, k, fl, d)                                                                        \
    {                                                                                              \
        n, k, fl, 0, 0, NULL, NULL, NULL, d                                                        \
    }
#define OBJ(n, fl, s, d)                                                                           \
    {                                                                                              \
        n, K_OBJECT, fl, 0, 0, NULL, &s, NULL, d                                                   \
    }
#define ARR(n, fl, lo, hi, it, d)                                                                  \
    {                                                                                              \
        n, K_ARRAY, fl, lo, hi, NULL, NULL, &it, d                                                 \
    }
#define SHAPE(var, n, d, f, chk) static const shape_t var = {n, d, f, PE_ARRAY_LEN(f), chk}

#define MONEY_MAX 1e9
#define TEXT_MAX  4000
#define BIG_INT   1e12

static int check_action_plan(const cJSON *o, char *path, size_t plen, pe_refusal_t *err);
static int check_change(const cJSON *o, char *path, size_t plen, pe_refusal_t *err);
static int check_approval(const cJSON *o, char *path, size_t plen, pe_refusal_t *err);
static int check_proof(const cJSON *o, char *path, size_t plen, pe_refusal_t *err);
static int check_execution(const cJSON *o, char *path, size_t plen, pe_refusal_t *err);

/* DataPoint: one observation the hypothesis rests on. */
static const field_t DATA_POINT_F[] = {
    IDENT("metric", F_REQ, "metric name, e.g. cart_abandonment_rate"),
    NUM("value", F_REQ, -MONEY_MAX, MONEY_MAX, "the observed value"),
    STR("unit", 0, 1, 32, "percent, currency code, count, …"),
    SIMPLE("period", K_DURATION, F_REQ, "the window observed, ISO 8601 duration (P30D)"),
    ENUM("source", F_REQ, SOURCES, "where the number comes from"),
    INT("sampleSize", 0, 0, BIG_INT, "observations behind the value"),
    SIMPLE("observedAt", K_DATETIME, 0, "when it was measured"),
};
SHAPE(DATA_POINT, "DataPoint", "An observation the hypothesis rests on.", DATA_POINT_F, NULL);

static const field_t SEGMENT_RULE_F[] = {
    STR("attribute", F_REQ, 1, 128, "device.type, product.category, cart.value, utm.source, …"),
    ENUM("operator", F_REQ, OPERATORS, NULL),
    {"value", K_VALUE, F_REQ, 0, 100, NULL, NULL, NULL,
     "a string, number or boolean, or an array of up to 100 of them (in, not_in)"},
};
SHAPE(SEGMENT_RULE, "SegmentRule", "One condition; a segment is the AND of its rules.",
      SEGMENT_RULE_F, NULL);
static const field_t SEGMENT_RULE_ITEM = OBJ(NULL, F_REQ, SEGMENT_RULE, NULL);

static const field_t SEGMENT_F[] = {
    STR("name", F_REQ, 1, 128, "merchant-facing name, e.g. Mobile cart abandoners"),
    STR("description", 0, 0, TEXT_MAX, NULL),
    ARR("rules", F_REQ, 0, 20, SEGMENT_RULE_ITEM, "AND of conditions; empty = every visitor"),
    NUM("estimatedReach", 0, 0, 1, "share of sessions in the segment, 0..1"),
};
SHAPE(SEGMENT, "SegmentDefinition", "Who sees the change.", SEGMENT_F, NULL);

static const field_t SCOPE_F[] = {
    STR("sku", 0, 1, 128, "one product"),
    STR("category", 0, 1, 256, "every product of a category"),
    STR("selector", 0, 1, 256, "a page or element (copy, layout), e.g. /checkout/shipping"),
};
SHAPE(SCOPE, "ChangeScope", "What a change applies to; absent = the whole store.", SCOPE_F, NULL);

static const field_t CHANGE_F[] = {
    ENUM("type", F_REQ, CHANGE_TYPES, NULL),
    STR("description", F_REQ, 1, TEXT_MAX, "what changes, in the merchant's words"),
    OBJ("scope", 0, SCOPE, NULL),
    {"before", K_VALUE, F_NULL, 0, 100, NULL, NULL, NULL, "the value today (null: none)"},
    {"after", K_VALUE, F_REQ, 0, 100, NULL, NULL, NULL,
     "the new value; price: a price >= 0; discount: a percentage 0..100"},
    IDENT("variant", 0, "the flag variant that carries it (treatment)"),
};
SHAPE(CHANGE, "ChangeDetail", "One change the plan makes.", CHANGE_F, check_change);
static const field_t CHANGE_ITEM = OBJ(NULL, F_REQ, CHANGE, NULL);

static const field_t IMPLEMENTATION_F[] = {
    IDENT("featureFlagKey", 0, "required when actionPlan.type is feature_flag"),
    ARR("changes", F_REQ, 1, 100, CHANGE_ITEM, NULL),
};
SHAPE(IMPLEMENTATION, "Implementation", "How the plan is carried out.", IMPLEMENTATION_F, NULL);

static const field_t ACTION_PLAN_F[] = {
    ENUM("type", F_REQ, ACTION_TYPES, NULL),
    OBJ("targetSegment", F_REQ, SEGMENT, NULL),
    OBJ("implementation", F_REQ, IMPLEMENTATION, NULL),
    ENUM("rolloutStrategy", F_REQ, ROLLOUTS, NULL),
    NUM("rolloutPercentage", 0, 0, 100, "share of the segment exposed; required when gradual"),
};
SHAPE(ACTION_PLAN, "ActionPlan", "What the autopilot will do.", ACTION_PLAN_F, check_action_plan);

static const field_t HYPOTHESIS_F[] = {
    STR("problem", F_REQ, 1, TEXT_MAX, "42% cart abandonment at shipping"),
    STR("expectedOutcome", F_REQ, 1, TEXT_MAX, "Reduce abandonment by 15-25%"),
    ENUM("confidenceLevel", F_REQ, CONFIDENCE, NULL),
    ARR("dataEvidence", F_REQ, 1, 50, ((field_t)OBJ(NULL, F_REQ, DATA_POINT, NULL)), NULL),
};
SHAPE(HYPOTHESIS, "Hypothesis", "Why the change should help.", HYPOTHESIS_F, NULL);

static const field_t SLO_F[] = {
    IDENT("metric", F_REQ, "checkout_error_rate, p95_latency_ms, …"),
    ENUM("operator", F_REQ, COMPARE, "the metric must stay <operator> threshold"),
    NUM("threshold", F_REQ, -MONEY_MAX, MONEY_MAX, NULL),
    SIMPLE("window", K_DURATION, F_REQ, "ISO 8601 duration"),
};
SHAPE(SLO, "SLOCheck", "A service level the change must keep.", SLO_F, NULL);

static const field_t BLOCKED_ITEM = STR(NULL, F_REQ, 1, 256, NULL);
static const field_t GUARDRAILS_F[] = {
    NUM("profitFloor", F_REQ, 0, 100, "minimum gross margin %, on top of the store's guardrails"),
    INT("stockThreshold", 0, 0, 1e9, "minimum units in stock for any product the plan touches"),
    ARR("sloRequirements", F_REQ, 0, 20, ((field_t)OBJ(NULL, F_REQ, SLO, NULL)), NULL),
    ENUM("riskLevel", F_REQ, RISK, NULL),
    ARR("blockedConditions", F_REQ, 0, 50, BLOCKED_ITEM, "conditions that forbid execution"),
};
SHAPE(GUARDRAILS, "ChangeSetGuardrails", "Limits the plan must respect.", GUARDRAILS_F, NULL);

static const field_t TRIGGER_F[] = {
    IDENT("metric", F_REQ, NULL),
    ENUM("operator", F_REQ, COMPARE, "fires when the metric is <operator> threshold"),
    NUM("threshold", F_REQ, -MONEY_MAX, MONEY_MAX, NULL),
    SIMPLE("window", K_DURATION, F_REQ, "ISO 8601 duration"),
    INT("minimumSampleSize", 0, 0, BIG_INT, "observations before the trigger may fire"),
    ENUM("action", F_REQ, TRIGGER_ACTIONS, NULL),
};
SHAPE(TRIGGER, "MetricTrigger", "A condition that rolls the change back on its own.", TRIGGER_F,
      NULL);

static const field_t ROLLBACK_F[] = {
    ARR("autoRollbackTriggers", F_REQ, 0, 20, ((field_t)OBJ(NULL, F_REQ, TRIGGER, NULL)), NULL),
    SIMPLE("manualRollbackEnabled", K_BOOL, F_REQ, NULL),
    STR("rollbackProcedure", F_REQ, 1, TEXT_MAX, NULL),
    SIMPLE("estimatedRollbackTime", K_DURATION, F_REQ, "ISO 8601 duration (PT5M)"),
};
SHAPE(ROLLBACK, "RollbackPlan", "How the change is undone.", ROLLBACK_F, NULL);

static const field_t METRIC_DEF_F[] = {
    IDENT("name", F_REQ, "conversion_rate, revenue_per_visitor, …"),
    STR("description", 0, 0, TEXT_MAX, NULL),
    ENUM("aggregation", F_REQ, AGGREGATIONS, NULL),
    ENUM("direction", F_REQ, DIRECTIONS, "which way is better"),
    STR("eventName", 0, 1, 128, "the event it counts, e.g. checkout.order.completed"),
    NUM("minimumDetectableEffect", 0, 0, 10, "relative effect the test is powered for"),
};
SHAPE(METRIC_DEF, "MetricDefinition", "A metric the proof measures.", METRIC_DEF_F, NULL);
static const field_t METRIC_DEF_ITEM = OBJ(NULL, F_REQ, METRIC_DEF, NULL);

static const field_t PROOF_PLAN_F[] = {
    ARR("primaryMetrics", F_REQ, 1, 5, METRIC_DEF_ITEM, NULL),
    ARR("secondaryMetrics", F_REQ, 0, 20, METRIC_DEF_ITEM, NULL),
    NUM("holdoutPercentage", F_REQ, 0, 50, "share kept on control, 0..50"),
    ENUM("statisticalMethod", F_REQ, METHODS, NULL),
    INT("minimumSampleSize", F_REQ, 1, 1e9, "per arm"),
    SIMPLE("measurementWindow", K_DURATION, F_REQ, "ISO 8601 duration (P14D)"),
    NUM("significanceThreshold", F_REQ, 0.0001, 0.5, "alpha, e.g. 0.05"),
};
SHAPE(PROOF_PLAN, "ProofPlan", "How the change will be proven.", PROOF_PLAN_F, NULL);

static const field_t APPROVAL_F[] = {
    ENUM("status", F_REQ, APPROVAL, NULL),
    STR("approvedBy", 0, 1, 128, "required when approved"),
    SIMPLE("approvedAt", K_DATETIME, 0, "required when approved"),
    SIMPLE("expiresAt", K_DATETIME, 0, "when a pending approval expires"),
};
SHAPE(APPROVAL_S, "Approval", "The merchant's decision.", APPROVAL_F, check_approval);

static const field_t METRIC_VALUE_F[] = {
    IDENT("metric", F_REQ, NULL),
    NUM("control", F_REQ, -MONEY_MAX, MONEY_MAX, NULL),
    NUM("treatment", F_REQ, -MONEY_MAX, MONEY_MAX, NULL),
    NUM("relativeLift", 0, -1e6, 1e6, NULL),
};
SHAPE(METRIC_VALUE, "MetricValue", "A metric's value in each arm.", METRIC_VALUE_F, NULL);

static const field_t LIVE_F[] = {
    SIMPLE("updatedAt", K_DATETIME, F_REQ, NULL),
    INT("controlSampleSize", F_REQ, 0, BIG_INT, NULL),
    INT("treatmentSampleSize", F_REQ, 0, BIG_INT, NULL),
    ARR("metrics", F_REQ, 0, 50, ((field_t)OBJ(NULL, F_REQ, METRIC_VALUE, NULL)), NULL),
};
SHAPE(LIVE, "LiveMetrics", "The experiment as it stands.", LIVE_F, NULL);

static const field_t CI_ITEM = NUM(NULL, F_REQ, -1e12, 1e12, NULL);
static const field_t IMPACT_F[] = {
    NUM("revenue", F_REQ, -MONEY_MAX, MONEY_MAX,
        "measured revenue uplift a month at 100 % traffic"),
    NUM("profit", F_REQ, -MONEY_MAX, MONEY_MAX, "measured gross profit uplift a month, the same"),
    NUM("profitLowerBound", F_REQ, -MONEY_MAX, MONEY_MAX,
        "the profit uplift at the interval's lower end: the conservative figure"),
    NUM("unitsPerMonth", F_REQ, 0, 1e12, "units a month the figures are scaled to"),
};
SHAPE(IMPACT, "ImpactPerMonth", "What a proven change earns a month, measured.", IMPACT_F, NULL);

static const field_t PROOF_F[] = {
    ENUM("outcome", F_REQ, OUTCOMES, NULL),
    ENUM("method", F_REQ, METHODS, NULL),
    IDENT("primaryMetric", F_REQ, NULL),
    NUM("relativeLift", F_REQ, -1e6, 1e6, NULL),
    ARR("confidenceInterval", F_REQ, 2, 2, CI_ITEM, "[low, high], low <= high"),
    NUM("pValue", 0, 0, 1, NULL),
    NUM("probabilityToBeatControl", 0, 0, 1, NULL),
    INT("sampleSize", F_REQ, 0, BIG_INT, NULL),
    SIMPLE("decidedAt", K_DATETIME, F_REQ, NULL),
    IDENT("winningVariant", 0, "the variant PERMANENT serves (treatment | control)"),
    OBJ("impactPerMonth", 0, IMPACT, "the measured impact a month at 100 % traffic"),
};
SHAPE(PROOF, "ProofResult", "The statistical verdict.", PROOF_F, check_proof);

static const field_t EXECUTION_F[] = {
    ENUM("status", F_REQ, STATES, "the lifecycle state"),
    SIMPLE("startedAt", K_DATETIME, 0, NULL),
    SIMPLE("endedAt", K_DATETIME, 0, NULL),
    OBJ("currentMetrics", 0, LIVE, NULL),
    OBJ("proofResult", 0, PROOF, NULL),
};
SHAPE(EXECUTION, "Execution", "Where the ChangeSet is in its lifecycle.", EXECUTION_F,
      check_execution);

static const field_t ACTOR_F[] = {
    ENUM("type", F_REQ, ACTOR_TYPES, NULL),
    STR("id", F_REQ, 1, 128, NULL),
};
SHAPE(ACTOR, "Actor", "Who acted.", ACTOR_F, NULL);

static const field_t AUDIT_F[] = {
    SIMPLE("id", K_CUID, F_REQ, NULL),
    SIMPLE("changesetId", K_CUID, F_REQ, NULL),
    STR("storeId", F_REQ, 1, PE_CHANGESET_STORE_ID_MAX, NULL),
    INT("seq", 0, 1, BIG_INT, "position in the ChangeSet's chain"),
    SIMPLE("timestamp", K_DATETIME, F_REQ, NULL),
    OBJ("actor", F_REQ, ACTOR, NULL),
    ENUM("action", F_REQ, AUDIT_ACTIONS, NULL),
    ENUM("previousState", F_REQ | F_NULL, STATES, "null for the first event"),
    ENUM("newState", F_REQ, STATES, NULL),
    STR("reason", F_REQ, 0, TEXT_MAX, NULL),
    SIMPLE("metadata", K_FREE, F_REQ, "metrics and guardrail checks at that moment"),
    SIMPLE("hash", K_HASH, 0, "SHA-256 of the canonical event and previousHash"),
    {"previousHash", K_HASH, F_NULL, 0, 0, NULL, NULL, NULL, NULL},
};
SHAPE(AUDIT, "AuditEvent", "One entry of the append-only, hash-chained audit trail.", AUDIT_F,
      NULL);

static const field_t CHANGESET_F[] = {
    SIMPLE("id", K_CUID, F_SERVER, "cuid"),
    INT("version", F_SERVER, 1, 2147483647, "increments on every modification"),
    STR("storeId", F_SERVER, 1, PE_CHANGESET_STORE_ID_MAX, "tenant scope"),
    OBJ("hypothesis", F_REQ, HYPOTHESIS, NULL),
    OBJ("actionPlan", F_REQ, ACTION_PLAN, NULL),
    OBJ("guardrails", F_REQ, GUARDRAILS, NULL),
    OBJ("rollbackPlan", F_REQ, ROLLBACK, NULL),
    OBJ("proofPlan", F_REQ, PROOF_PLAN, NULL),
    OBJ("approval", F_SERVER, APPROVAL_S, NULL),
    OBJ("execution", F_SERVER, EXECUTION, NULL),
    ARR("auditTrail", F_SERVER, 0, 100000, ((field_t)OBJ(NULL, F_REQ, AUDIT, NULL)), NULL),
    SIMPLE("createdAt", K_DATETIME, 0, NULL),
    SIMPLE("updatedAt", K_DATETIME, 0, NULL),
};
SHAPE(CHANGESET, "AutopilotChangeSet", "An executable, auditable, reversible autopilot action.",
      CHANGESET_F, NULL);

/* ---- ids ---------------------------------------------------------------------------------------
 */

static const char B36[] = "0123456789abcdefghijklmnopqrstuvwxyz";

void pe_changeset_cuid(char out[PE_CHANGESET_ID_LEN])
{
    uint64_t ms = (uint64_t)(pe_now_unix_us() / 1000);
    out[0] = 'c';
    for (int i = 8; i >= 1; i--) {
        out[i] = B36[ms % 36];
        ms /= 36;
    }
    for (int i = 9; i < 25; i++)
        out[i] = B36[randombytes_uniform(36)];
    out[25] = '\0';
}

bool pe_changeset_cuid_valid(const char *s)
{
    if (!s || s[0] != 'c' || strlen(s) != 25)
        return false;
    for (int i = 1; i < 25; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z')))
            return false;
    return true;
}

/* ---- validation -------------------------------------------------------------------------------
 */

#define PATH_MAX_LEN 160 /* a path longer than this is cut (still a prefix of the real one) */

static int fail(pe_refusal_t *err, const char *path, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(pe_refusal_t *err, const char *path, const char *code, const char *fmt, ...)
{
    char rule[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof rule, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(ap);
    return path[0] ? pe_refuse(err, PE_EINVAL, code, "%s: %s", path, rule)
                   : pe_refuse(err, PE_EINVAL, code, "%s", rule);
}

/* Appends ".name" or "[i]" to path (kept within plen; a path cut short is still a prefix). */
static size_t path_push(char *path, size_t plen, const char *name, int index)
{
    size_t n = strlen(path);
    if (name)
        snprintf(path + n, plen - n, "%s%s", n ? "." : "", name);
    else
        snprintf(path + n, plen - n, "[%d]", index);
    return n;
}

/* ISO 8601 duration: P(nW | [nY][nM][nD][T[nH][nM][n[.n]S]]), at least one part, integers of at
 * most 6 digits (seconds may carry a fraction). */
static bool duration_valid(const char *s)
{
    if (*s++ != 'P')
        return false;
    bool any = false, time = false;
    const char *date_units = "YMWD", *time_units = "HMS";
    const char *allowed = date_units;
    while (*s) {
        if (*s == 'T') {
            if (time)
                return false;
            time = true;
            allowed = time_units;
            s++;
            if (!*s)
                return false;
            continue;
        }
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            s++;
            digits++;
        }
        if (digits == 0 || digits > 6)
            return false;
        if (*s == '.' && time) {
            s++;
            int frac = 0;
            while (*s >= '0' && *s <= '9') {
                s++;
                frac++;
            }
            if (frac == 0 || frac > 6 || *s != 'S')
                return false;
        }
        const char *u = *s ? strchr(allowed, *s) : NULL;
        if (!u)
            return false;
        allowed = u + 1; /* units in order, each once */
        s++;
        any = true;
    }
    return any;
}

static bool enum_has(const char *const *values, const char *s)
{
    for (size_t i = 0; values[i]; i++)
        if (strcmp(values[i], s) == 0)
            return true;
    return false;
}

static void enum_list(const char *const *values, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; values[i] && n < outlen; i++)
        n += (size_t)snprintf(out + n, outlen - n, "%s%s", i ? ", " : "", values[i]);
}

static const char *type_word(kind_t k)
{
    switch (k) {
    case K_NUMBER:
        return "a number";
    case K_INTEGER:
        return "an integer";
    case K_BOOL:
        return "a boolean";
    case K_OBJECT:
    case K_FREE:
        return "an object";
    case K_ARRAY:
        return "an array";
    case K_VALUE:
        return "a string, number, boolean or an array of them";
    default:
        return "a string";
    }
}

static int validate_shape(const cJSON *obj, const shape_t *shape, pe_changeset_mode_t mode,
                          char *path, size_t plen, pe_refusal_t *err);

static bool scalar(const cJSON *v)
{
    return cJSON_IsString(v) || cJSON_IsNumber(v) || cJSON_IsBool(v);
}

/* Free-form metadata: any object, at most 8 levels deep and 1000 members per level (numbers
 * that are not finite are refused before, with their path). */
static bool free_ok(const cJSON *v, int depth)
{
    if (depth > 8)
        return false;
    if (cJSON_IsString(v) && !pe_utf8_valid(v->valuestring, strlen(v->valuestring)))
        return false;
    int n = 0;
    for (const cJSON *c = v->child; c; c = c->next, n++)
        if (n >= 1000 || !free_ok(c, depth + 1))
            return false;
    return true;
}

static int validate_value(const cJSON *v, const field_t *f, pe_changeset_mode_t mode, char *path,
                          size_t plen, pe_refusal_t *err)
{
    char list[256];
    if (cJSON_IsNull(v)) {
        if (f->flags & F_NULL)
            return 0;
        return fail(err, path, "invalid_type", "must be %s, not null",
                    f->kind == K_ENUM ? "one of the listed values" : type_word(f->kind));
    }
    switch (f->kind) {
    case K_STRING:
    case K_IDENT:
    case K_ENUM:
    case K_DATETIME:
    case K_DURATION:
    case K_CUID:
    case K_HASH: {
        if (!cJSON_IsString(v))
            return fail(err, path, "invalid_type", "must be a string");
        const char *s = v->valuestring;
        size_t n = strlen(s);
        if (!pe_utf8_valid(s, n) || pe_text_has_control(s, n))
            return fail(err, path, "invalid_format",
                        "must be UTF-8 text without control "
                        "characters");
        if (f->kind == K_STRING || f->kind == K_IDENT) {
            if (n < (size_t)f->min)
                return fail(err, path, "invalid_format", "must not be empty");
            if (n > (size_t)f->max)
                return fail(err, path, "too_long", "must be at most %.0f bytes", f->max);
        }
        if (f->kind == K_IDENT) {
            bool ok = (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9');
            for (size_t i = 1; ok && i < n; i++)
                ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
                     s[i] == '.' || s[i] == '-';
            if (!ok)
                return fail(err, path, "invalid_format",
                            "must be lower-case letters, digits, '_', '.' or '-' and start "
                            "with a letter or digit");
        }
        if (f->kind == K_ENUM && !enum_has(f->values, s)) {
            enum_list(f->values, list, sizeof list);
            return fail(err, path, "invalid_format", "must be one of %s", list);
        }
        int64_t us;
        if (f->kind == K_DATETIME && pe_time_parse_rfc3339(s, &us) != 0)
            return fail(err, path, "invalid_format",
                        "must be an RFC 3339 date-time such as 2026-03-01T09:30:00Z");
        if (f->kind == K_DURATION && !duration_valid(s))
            return fail(err, path, "invalid_format",
                        "must be an ISO 8601 duration such as P14D or PT5M");
        if (f->kind == K_CUID && !pe_changeset_cuid_valid(s))
            return fail(err, path, "invalid_format", "must be a cuid (c + 24 of [0-9a-z])");
        if (f->kind == K_HASH) {
            bool ok = n == 64;
            for (size_t i = 0; ok && i < n; i++)
                ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
            if (!ok)
                return fail(err, path, "invalid_format", "must be 64 lower-case hex digits");
        }
        return 0;
    }
    case K_NUMBER:
    case K_INTEGER:
        if (!cJSON_IsNumber(v))
            return fail(err, path, "invalid_type", "must be %s", type_word(f->kind));
        if (!isfinite(v->valuedouble)) /* invariant 6 */
            return fail(err, path, "out_of_range", PE_JSON_NONFINITE_RULE);
        if (f->kind == K_INTEGER && v->valuedouble != floor(v->valuedouble))
            return fail(err, path, "invalid_type", "must be an integer");
        if (v->valuedouble < f->min || v->valuedouble > f->max)
            return fail(err, path, "out_of_range", "must be %g..%g", f->min, f->max);
        return 0;
    case K_BOOL:
        if (!cJSON_IsBool(v))
            return fail(err, path, "invalid_type", "must be a boolean");
        return 0;
    case K_VALUE: {
        if (cJSON_IsArray(v)) {
            int i = 0;
            for (const cJSON *c = v->child; c; c = c->next, i++) {
                if (i >= (int)f->max)
                    return fail(err, path, "too_many", "must have at most %.0f items", f->max);
                bool finite = !cJSON_IsNumber(c) || isfinite(c->valuedouble);
                if (!scalar(c) || !finite) {
                    size_t n = path_push(path, plen, NULL, i);
                    int rc = finite ? fail(err, path, "invalid_type",
                                           "must be a string, number or boolean")
                                    : fail(err, path, "out_of_range", PE_JSON_NONFINITE_RULE);
                    path[n] = '\0';
                    return rc;
                }
            }
            return 0;
        }
        if (!scalar(v))
            return fail(err, path, "invalid_type", "must be %s", type_word(K_VALUE));
        if (cJSON_IsNumber(v) && !isfinite(v->valuedouble)) /* invariant 6 */
            return fail(err, path, "out_of_range", PE_JSON_NONFINITE_RULE);
        if (cJSON_IsString(v) && strlen(v->valuestring) > TEXT_MAX)
            return fail(err, path, "too_long", "must be at most %d bytes", TEXT_MAX);
        return 0;
    }
    case K_FREE: {
        if (!cJSON_IsObject(v))
            return fail(err, path, "invalid_type", "must be an object");
        char at[PATH_MAX_LEN];
        if (pe_json_find_nonfinite(v, path, at, sizeof at)) /* invariant 6 */
            return fail(err, at, "out_of_range", PE_JSON_NONFINITE_RULE);
        if (!free_ok(v, 0))
            return fail(err, path, "out_of_range",
                        "must nest at most 8 levels, 1000 members each, UTF-8 text");
        return 0;
    }
    case K_OBJECT:
        if (!cJSON_IsObject(v))
            return fail(err, path, "invalid_type", "must be an object");
        return validate_shape(v, f->shape, mode, path, plen, err);
    case K_ARRAY: {
        if (!cJSON_IsArray(v))
            return fail(err, path, "invalid_type", "must be an array");
        int n = cJSON_GetArraySize(v);
        if (n < (int)f->min)
            return fail(err, path, n ? "out_of_range" : "missing_field",
                        "must have at least %.0f item%s", f->min, f->min == 1 ? "" : "s");
        if (n > (int)f->max)
            return fail(err, path, "too_many", "must have at most %.0f items", f->max);
        int i = 0;
        for (const cJSON *c = v->child; c; c = c->next, i++) {
            size_t mark = path_push(path, plen, NULL, i);
            int rc = validate_value(c, f->item, mode, path, plen, err);
            path[mark] = '\0';
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    }
    return fail(err, path, "invalid_type", "unexpected value");
}

static int validate_shape(const cJSON *obj, const shape_t *shape, pe_changeset_mode_t mode,
                          char *path, size_t plen, pe_refusal_t *err)
{
    /* unknown or repeated keys first: a typo should be named, not reported as a missing field */
    for (const cJSON *kv = obj->child; kv; kv = kv->next) {
        const char *key = kv->string ? kv->string : "";
        bool known = false;
        for (size_t i = 0; i < shape->nfields && !known; i++)
            known = strcmp(shape->fields[i].name, key) == 0;
        for (const cJSON *p = obj->child; p != kv; p = p->next)
            if (strcmp(p->string ? p->string : "", key) == 0) {
                size_t mark = path_push(path, plen, key, 0);
                int rc = fail(err, path, "invalid_format", "appears twice");
                path[mark] = '\0';
                return rc;
            }
        if (!known) {
            char excerpt[65];
            snprintf(excerpt, sizeof excerpt, "%s", key);
            if (!pe_utf8_valid(excerpt, strlen(excerpt)))
                snprintf(excerpt, sizeof excerpt, "?");
            size_t mark = path_push(path, plen, excerpt, 0);
            int rc = fail(err, path, "unknown_field", "is not a field of %s", shape->name);
            path[mark] = '\0';
            return rc;
        }
    }
    for (size_t i = 0; i < shape->nfields; i++) {
        const field_t *f = &shape->fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name);
        size_t mark = path_push(path, plen, f->name, 0);
        int rc = 0;
        bool required = (f->flags & F_REQ) || ((f->flags & F_SERVER) && mode == PE_CHANGESET_FULL);
        if (!v) {
            if (required)
                rc = fail(err, path, "missing_field", "is required");
        } else {
            rc = validate_value(v, f, mode, path, plen, err);
        }
        path[mark] = '\0';
        if (rc != 0)
            return rc;
    }
    return shape->check ? shape->check(obj, path, plen, err) : 0;
}

int pe_changeset_validate(const cJSON *doc, pe_changeset_mode_t mode, pe_refusal_t *err)
{
    char path[PATH_MAX_LEN];
    path[0] = '\0';
    memset(err, 0, sizeof *err);
    if (!cJSON_IsObject(doc))
        return fail(err, "", "invalid_type", "a ChangeSet must be a JSON object");
    return validate_shape(doc, &CHANGESET, mode, path, sizeof path, err);
}

/* ---- cross-field rules ------------------------------------------------------------------------
 */

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static bool str_is(const cJSON *v, const char *s)
{
    return cJSON_IsString(v) && strcmp(v->valuestring, s) == 0;
}

static int fail_at(pe_refusal_t *err, char *path, size_t plen, const char *field, const char *code,
                   const char *rule)
{
    size_t mark = path_push(path, plen, field, 0);
    int rc = fail(err, path, code, "%s", rule);
    path[mark] = '\0';
    return rc;
}

static int check_action_plan(const cJSON *o, char *path, size_t plen, pe_refusal_t *err)
{
    if (str_is(get(o, "rolloutStrategy"), "gradual") && !get(o, "rolloutPercentage"))
        return fail_at(err, path, plen, "rolloutPercentage", "missing_field",
                       "is required when rolloutStrategy is gradual");
    if (str_is(get(o, "type"), "feature_flag") &&
        !get(get(o, "implementation"), "featureFlagKey")) {
        size_t mark = path_push(path, plen, "implementation", 0);
        int rc = fail_at(err, path, plen, "featureFlagKey", "missing_field",
                         "is required when actionPlan.type is feature_flag");
        path[mark] = '\0';
        return rc;
    }
    return 0;
}

static int check_change(const cJSON *o, char *path, size_t plen, pe_refusal_t *err)
{
    const cJSON *after = get(o, "after");
    if (str_is(get(o, "type"), "price") &&
        (!cJSON_IsNumber(after) || after->valuedouble < 0 || after->valuedouble > 1e9))
        return fail_at(err, path, plen, "after", "out_of_range",
                       "must be a price 0..1e9 for a price change");
    if (str_is(get(o, "type"), "discount") &&
        (!cJSON_IsNumber(after) || after->valuedouble < 0 || after->valuedouble > 100))
        return fail_at(err, path, plen, "after", "out_of_range",
                       "must be a percentage 0..100 for a discount");
    return 0;
}

static int check_approval(const cJSON *o, char *path, size_t plen, pe_refusal_t *err)
{
    if (str_is(get(o, "status"), "approved")) {
        if (!get(o, "approvedBy"))
            return fail_at(err, path, plen, "approvedBy", "missing_field",
                           "is required when status is approved");
        if (!get(o, "approvedAt"))
            return fail_at(err, path, plen, "approvedAt", "missing_field",
                           "is required when status is approved");
    }
    return 0;
}

static int check_proof(const cJSON *o, char *path, size_t plen, pe_refusal_t *err)
{
    const cJSON *ci = get(o, "confidenceInterval");
    if (cJSON_GetArraySize(ci) == 2 &&
        cJSON_GetArrayItem(ci, 0)->valuedouble > cJSON_GetArrayItem(ci, 1)->valuedouble)
        return fail_at(err, path, plen, "confidenceInterval", "out_of_range",
                       "low must be <= high");
    return 0;
}

static int check_execution(const cJSON *o, char *path, size_t plen, pe_refusal_t *err)
{
    int64_t a, b;
    const cJSON *s = get(o, "startedAt"), *e = get(o, "endedAt");
    if (cJSON_IsString(s) && cJSON_IsString(e) && pe_time_parse_rfc3339(s->valuestring, &a) == 0 &&
        pe_time_parse_rfc3339(e->valuestring, &b) == 0 && b < a)
        return fail_at(err, path, plen, "endedAt", "out_of_range", "must not be before startedAt");
    return 0;
}

/* ---- JSON Schema -------------------------------------------------------------------------------
 */

typedef struct {
    bool oom;
} builder_t;

static cJSON *chk(builder_t *b, cJSON *item)
{
    if (!item)
        b->oom = true;
    return item;
}

static void add_str(builder_t *b, cJSON *o, const char *k, const char *v)
{
    chk(b, o ? cJSON_AddStringToObject(o, k, v) : NULL);
}

static void add_num(builder_t *b, cJSON *o, const char *k, double v)
{
    chk(b, o ? cJSON_AddNumberToObject(o, k, v) : NULL);
}

static void add_item(builder_t *b, cJSON *parent, const char *k, cJSON *item)
{
    if (!item) {
        b->oom = true;
        return;
    }
    if (!parent ||
        !(k ? cJSON_AddItemToObject(parent, k, item) : cJSON_AddItemToArray(parent, item))) {
        cJSON_Delete(item);
        b->oom = true;
    }
}

static cJSON *string_type(builder_t *b, const char *type)
{
    cJSON *s = chk(b, cJSON_CreateObject());
    add_str(b, s, "type", type);
    return s;
}

static cJSON *field_schema(builder_t *b, const field_t *f)
{
    cJSON *s = NULL;
    switch (f->kind) {
    case K_STRING:
        s = string_type(b, "string");
        add_num(b, s, "minLength", f->min);
        add_num(b, s, "maxLength", f->max);
        break;
    case K_IDENT:
        s = string_type(b, "string");
        add_str(b, s, "pattern", "^[a-z0-9][a-z0-9_.-]*$");
        add_num(b, s, "maxLength", f->max);
        break;
    case K_ENUM: {
        s = chk(b, cJSON_CreateObject());
        cJSON *e = chk(b, cJSON_CreateArray());
        for (size_t i = 0; f->values[i]; i++)
            add_item(b, e, NULL, cJSON_CreateString(f->values[i]));
        if (f->flags & F_NULL)
            add_item(b, e, NULL, cJSON_CreateNull());
        add_item(b, s, "enum", e);
        break;
    }
    case K_NUMBER:
    case K_INTEGER:
        s = string_type(b, f->kind == K_NUMBER ? "number" : "integer");
        add_num(b, s, "minimum", f->min);
        add_num(b, s, "maximum", f->max);
        break;
    case K_BOOL:
        s = string_type(b, "boolean");
        break;
    case K_DATETIME:
        s = string_type(b, "string");
        add_str(b, s, "format", "date-time");
        break;
    case K_DURATION:
        s = string_type(b, "string");
        add_str(b, s, "format", "duration");
        add_str(b, s, "pattern",
                "^P(?!$)(\\d+Y)?(\\d+M)?(\\d+W)?(\\d+D)?(T(?=\\d)(\\d+H)?(\\d+M)?"
                "(\\d+(\\.\\d+)?S)?)?$");
        break;
    case K_CUID:
        s = string_type(b, "string");
        add_str(b, s, "pattern", "^c[0-9a-z]{24}$");
        break;
    case K_HASH:
        s = string_type(b, "string");
        add_str(b, s, "pattern", "^[0-9a-f]{64}$");
        break;
    case K_VALUE: {
        s = chk(b, cJSON_CreateObject());
        cJSON *types = chk(b, cJSON_CreateArray());
        static const char *const T[] = {"string", "number", "boolean", "array"};
        for (size_t i = 0; i < 4; i++)
            add_item(b, types, NULL, cJSON_CreateString(T[i]));
        if (f->flags & F_NULL)
            add_item(b, types, NULL, cJSON_CreateString("null"));
        add_item(b, s, "type", types);
        cJSON *items = chk(b, cJSON_CreateObject());
        cJSON *it = chk(b, cJSON_CreateArray());
        for (size_t i = 0; i < 3; i++)
            add_item(b, it, NULL, cJSON_CreateString(T[i]));
        add_item(b, items, "type", it);
        add_item(b, s, "items", items);
        add_num(b, s, "maxItems", f->max);
        break;
    }
    case K_FREE:
        s = string_type(b, "object");
        break;
    case K_OBJECT: {
        s = chk(b, cJSON_CreateObject());
        char ref[96];
        snprintf(ref, sizeof ref, "#/$defs/%s", f->shape->name);
        add_str(b, s, "$ref", ref);
        break;
    }
    case K_ARRAY:
        s = string_type(b, "array");
        add_item(b, s, "items", field_schema(b, f->item));
        add_num(b, s, "minItems", f->min);
        add_num(b, s, "maxItems", f->max);
        break;
    }
    if (s && (f->flags & F_NULL) && f->kind != K_ENUM && f->kind != K_VALUE) {
        cJSON *any = chk(b, cJSON_CreateObject());
        cJSON *one = chk(b, cJSON_CreateArray());
        add_item(b, one, NULL, s);
        add_item(b, one, NULL, string_type(b, "null"));
        add_item(b, any, "anyOf", one);
        s = any;
    }
    if (s && f->doc)
        add_str(b, s, "description", f->doc);
    return s;
}

static cJSON *shape_schema(builder_t *b, const shape_t *shape, bool client)
{
    cJSON *s = string_type(b, "object");
    add_str(b, s, "title", shape->name);
    add_str(b, s, "description", shape->doc);
    cJSON *props = chk(b, cJSON_CreateObject());
    cJSON *req = chk(b, cJSON_CreateArray());
    for (size_t i = 0; i < shape->nfields; i++) {
        const field_t *f = &shape->fields[i];
        add_item(b, props, f->name, field_schema(b, f));
        if ((f->flags & F_REQ) || ((f->flags & F_SERVER) && !client))
            add_item(b, req, NULL, cJSON_CreateString(f->name));
    }
    add_item(b, s, "properties", props);
    add_item(b, s, "required", req);
    add_item(b, s, "additionalProperties", cJSON_CreateFalse());
    return s;
}

static void add_defs(builder_t *b, cJSON *defs, const shape_t *shape)
{
    if (cJSON_GetObjectItemCaseSensitive(defs, shape->name))
        return;
    add_item(b, defs, shape->name, shape_schema(b, shape, false));
    for (size_t i = 0; i < shape->nfields; i++) {
        const field_t *f = &shape->fields[i];
        while (f->kind == K_ARRAY)
            f = f->item;
        if (f->kind == K_OBJECT)
            add_defs(b, defs, f->shape);
    }
}

int pe_changeset_json_schema(pe_buf_t *out)
{
    builder_t b = {false};
    cJSON *root = chk(&b, cJSON_CreateObject());
    add_str(&b, root, "$schema", SCHEMA_2020);
    add_str(&b, root, "$id", SCHEMA_ID);
    add_str(&b, root, "title", "AutopilotChangeSet");
    add_str(&b, root, "description",
            "A stored ChangeSet (every mandatory field). $defs.ChangeSetInput is what POST "
            "/api/v1/stores/{storeId}/changesets accepts: the server owns id, version, storeId, "
            "approval, execution and auditTrail. Cross-field rules (rolloutPercentage when "
            "gradual, featureFlagKey for feature_flag plans, approvedBy/approvedAt when approved, "
            "a price or 0..100 discount in ChangeDetail.after, confidenceInterval low <= high, "
            "endedAt >= startedAt) are checked by the server and stated in descriptions.");
    add_str(&b, root, "$ref", "#/$defs/AutopilotChangeSet");
    cJSON *defs = chk(&b, cJSON_CreateObject());
    add_defs(&b, defs, &CHANGESET);
    cJSON *input = shape_schema(&b, &CHANGESET, true);
    if (input) {
        cJSON_ReplaceItemInObjectCaseSensitive(input, "title",
                                               cJSON_CreateString("ChangeSetInput"));
    }
    add_item(&b, defs, "ChangeSetInput", input);
    add_item(&b, root, "$defs", defs);
    int rc = PE_ENOMEM;
    char *text = b.oom ? NULL : cJSON_Print(root);
    if (text && pe_buf_puts(out, text) == 0)
        rc = 0;
    free(text);
    cJSON_Delete(root);
    return rc;
}
