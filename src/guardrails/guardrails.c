/*
 * guardrails.c — a store's profit guardrails: validation of the configuration, storage in the
 * guardrails table (0007_changesets.sql), and the check of a ChangeSet's changes against the
 * product catalogue.
 *
 * Invariants:
 *  1. Thresholds resolve most-specific-first: product, category, global; the ChangeSet's own
 *     profitFloor and stockThreshold only raise them.
 *  2. Every violation found is reported (bounded by PE_GUARDRAILS_MAX_VIOLATIONS), with a
 *     sentence in the merchant's words.
 *  3. Products are read a bounded number at a time (PRODUCTS_PER_CHANGE) and only the store's
 *     own (every statement filters by store_id).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/guardrails.h"

#define ACQUIRE_TIMEOUT_MS  5000
#define PRODUCTS_PER_CHANGE "10000"
#define LABEL_MAX           256

static bool label_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= LABEL_MAX && pe_utf8_valid(s, n) && !pe_text_has_control(s, n);
}

static int pct(const cJSON *v, const char *path, double lo, double hi, pe_refusal_t *err)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be a number", path);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "%s: must be %g..%g", path, lo, hi);
    return 0;
}

static int pct_map(const cJSON *m, const char *name, pe_refusal_t *err)
{
    if (!cJSON_IsObject(m))
        return pe_refuse(err, PE_EINVAL, "invalid_type",
                         "%s: must be an object of name: percentage", name);
    int n = 0;
    for (const cJSON *kv = m->child; kv; kv = kv->next, n++) {
        char path[LABEL_MAX + 64];
        if (n >= PE_GUARDRAILS_MAX_ENTRIES)
            return pe_refuse(err, PE_EINVAL, "too_many", "%s: must have at most %d entries", name,
                             PE_GUARDRAILS_MAX_ENTRIES);
        if (!label_ok(kv->string))
            return pe_refuse(err, PE_EINVAL, "invalid_format",
                             "%s: keys must be 1..%d bytes without control "
                             "characters",
                             name, LABEL_MAX);
        snprintf(path, sizeof path, "%s.%s", name, kv->string);
        int rc = pct(kv, path, 0, 100, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const char *const KEYS[] = {"minMarginPct",
                                   "categoryMinMarginPct",
                                   "productMinMarginPct",
                                   "maxDiscountPct",
                                   "minStockUnits",
                                   "excludedCategories",
                                   "sloGates",
                                   "version",
                                   "updatedAt"};

int pe_guardrails_validate(const cJSON *cfg, cJSON **canonical, pe_refusal_t *err)
{
    int rc;
    if (canonical)
        *canonical = NULL;
    if (!cJSON_IsObject(cfg))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "the guardrails must be a JSON object");
    for (const cJSON *kv = cfg->child; kv; kv = kv->next) {
        bool known = false;
        for (size_t i = 0; i < PE_ARRAY_LEN(KEYS) && !known; i++)
            known = strcmp(kv->string, KEYS[i]) == 0;
        if (!known)
            return pe_refuse(err, PE_EINVAL, "unknown_field", "%.64s: is not a guardrail setting",
                             kv->string);
    }
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "minMarginPct")) &&
        (rc = pct(v, "minMarginPct", 0, 100, err)))
        return rc;
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "categoryMinMarginPct")) &&
        (rc = pct_map(v, "categoryMinMarginPct", err)))
        return rc;
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "productMinMarginPct")) &&
        (rc = pct_map(v, "productMinMarginPct", err)))
        return rc;
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "maxDiscountPct")) &&
        (rc = pct(v, "maxDiscountPct", 0, 100, err)))
        return rc;
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "minStockUnits"))) {
        if ((rc = pct(v, "minStockUnits", 0, 1e9, err)))
            return rc;
        if (v->valuedouble != floor(v->valuedouble))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "minStockUnits: must be an integer");
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "excludedCategories"))) {
        if (!cJSON_IsArray(v))
            return pe_refuse(err, PE_EINVAL, "invalid_type",
                             "excludedCategories: must be an array of names");
        int i = 0;
        for (const cJSON *c = v->child; c; c = c->next, i++) {
            if (i >= PE_GUARDRAILS_MAX_ENTRIES)
                return pe_refuse(err, PE_EINVAL, "too_many",
                                 "excludedCategories: must have at most %d entries",
                                 PE_GUARDRAILS_MAX_ENTRIES);
            if (!cJSON_IsString(c) || !label_ok(c->valuestring))
                return pe_refuse(err, PE_EINVAL, "invalid_format",
                                 "excludedCategories[%d]: must be a category name of 1..%d bytes",
                                 i, LABEL_MAX);
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "sloGates"))) {
        if (!cJSON_IsArray(v))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "sloGates: must be an array");
        int i = 0;
        for (const cJSON *g = v->child; g; g = g->next, i++) {
            char path[64];
            if (i >= 50)
                return pe_refuse(err, PE_EINVAL, "too_many",
                                 "sloGates: must have at most 50 entries");
            if (!cJSON_IsObject(g))
                return pe_refuse(err, PE_EINVAL, "invalid_type", "sloGates[%d]: must be an object",
                                 i);
            for (const cJSON *kv = g->child; kv; kv = kv->next)
                if (strcmp(kv->string, "metric") && strcmp(kv->string, "operator") &&
                    strcmp(kv->string, "threshold"))
                    return pe_refuse(err, PE_EINVAL, "unknown_field",
                                     "sloGates[%d].%.64s: is not a field", i, kv->string);
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(g, "metric");
            const cJSON *op = cJSON_GetObjectItemCaseSensitive(g, "operator");
            if (!cJSON_IsString(m) || !label_ok(m->valuestring) || strlen(m->valuestring) > 128)
                return pe_refuse(err, PE_EINVAL, "invalid_format",
                                 "sloGates[%d].metric: must be a metric name "
                                 "of 1..128 bytes",
                                 i);
            if (!cJSON_IsString(op) ||
                (strcmp(op->valuestring, "lt") && strcmp(op->valuestring, "lte") &&
                 strcmp(op->valuestring, "gt") && strcmp(op->valuestring, "gte")))
                return pe_refuse(err, PE_EINVAL, "invalid_format",
                                 "sloGates[%d].operator: must be one of lt, lte, gt, gte", i);
            snprintf(path, sizeof path, "sloGates[%d].threshold", i);
            if ((rc = pct(cJSON_GetObjectItemCaseSensitive(g, "threshold"), path, -1e9, 1e9, err)))
                return rc;
        }
    }
    if (!canonical)
        return 0;
    cJSON *c = cJSON_CreateObject();
    static const char *const CFG_KEYS[] = {
        "minMarginPct",   "categoryMinMarginPct", "productMinMarginPct",
        "maxDiscountPct", "minStockUnits",        "excludedCategories",
        "sloGates"};
    for (size_t i = 0; c && i < PE_ARRAY_LEN(CFG_KEYS); i++) {
        const cJSON *given = cJSON_GetObjectItemCaseSensitive(cfg, CFG_KEYS[i]);
        cJSON *item = given              ? cJSON_Duplicate(given, true)
                      : i == 0 || i == 4 ? cJSON_CreateNumber(0)
                      : i == 3           ? cJSON_CreateNumber(100)
                      : i == 1 || i == 2 ? cJSON_CreateObject()
                                         : cJSON_CreateArray();
        if (!item || !cJSON_AddItemToObject(c, CFG_KEYS[i], item)) {
            cJSON_Delete(item);
            cJSON_Delete(c);
            c = NULL;
        }
    }
    if (!c)
        return PE_ENOMEM;
    *canonical = c;
    return 0;
}

/* ---- storage -----------------------------------------------------------------------------------
 */

static int load(pe_db_conn_t *conn, const char *store_id, cJSON **out)
{
    pe_db_result_t *res = NULL;
    const char *params[] = {store_id};
    int rc =
        pe_db_exec(conn,
                   "SELECT config::text, version,"
                   " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                   " FROM guardrails WHERE store_id = $1::uuid",
                   1, params, &res);
    if (rc != 0)
        return rc;
    cJSON *cfg = NULL;
    pe_refusal_t err;
    char why[64];
    bool found = pe_db_result_rows(res) > 0;
    const char *text = found ? pe_db_result_get(res, 0, 0) : "{}";
    if (pe_json_parse(text, strlen(text), &cfg, why, sizeof why) != 0) {
        rc = PE_EINTERNAL;
        goto out;
    }
    rc = pe_guardrails_validate(cfg, out, &err);
    if (rc == PE_EINVAL)
        rc = PE_EINTERNAL;
    if (rc == 0) {
        bool ok = found
                      ? cJSON_AddNumberToObject(*out, "version",
                                                strtod(pe_db_result_get(res, 0, 1), NULL)) &&
                            cJSON_AddStringToObject(*out, "updatedAt", pe_db_result_get(res, 0, 2))
                      : cJSON_AddNumberToObject(*out, "version", 0) &&
                            cJSON_AddNullToObject(*out, "updatedAt");
        if (!ok) {
            cJSON_Delete(*out);
            *out = NULL;
            rc = PE_ENOMEM;
        }
    }
out:
    cJSON_Delete(cfg);
    pe_db_result_free(res);
    return rc;
}

int pe_guardrails_get(pe_db_pool_t *db, const char *store_id, cJSON **out)
{
    pe_db_conn_t *conn = NULL;
    *out = NULL;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc == 0)
        rc = load(conn, store_id, out);
    pe_db_release(db, conn);
    return rc;
}

int pe_guardrails_put(pe_db_pool_t *db, const char *store_id, const cJSON *cfg, cJSON **out,
                      pe_refusal_t *err)
{
    pe_db_conn_t *conn = NULL;
    cJSON *canonical = NULL;
    char *text = NULL;
    *out = NULL;
    int rc = pe_guardrails_validate(cfg, &canonical, err);
    if (rc != 0)
        goto out;
    rc = PE_ENOMEM;
    if (!(text = pe_json_print(canonical)))
        goto out;
    rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    const char *params[] = {store_id, text};
    rc = pe_db_exec(conn,
                    "INSERT INTO guardrails (store_id, config) VALUES ($1::uuid, $2::jsonb)"
                    " ON CONFLICT (store_id) DO UPDATE SET config = EXCLUDED.config,"
                    " version = guardrails.version + 1, updated_at = now()",
                    2, params, NULL);
    if (rc == PE_EINVAL && strcmp(pe_db_conn_sqlstate(conn), "23503") == 0)
        rc = PE_ENOTFOUND;
    if (rc == 0)
        rc = load(conn, store_id, out);
out:
    pe_db_release(db, conn);
    free(text);
    cJSON_Delete(canonical);
    return rc;
}

/* ---- the check ----------------------------------------------------------------------------------
 */

typedef struct {
    cJSON *list;
    int count;
    bool oom;
} found_t;

static void add_violation(found_t *f, const char *kind, const char *sku, const char *category,
                          double actual, double threshold, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void add_violation(found_t *f, const char *kind, const char *sku, const char *category,
                          double actual, double threshold, const char *fmt, ...)
{
    if (f->count >= PE_GUARDRAILS_MAX_VIOLATIONS) {
        f->count++;
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *v = cJSON_CreateObject();
    bool ok = v && cJSON_AddStringToObject(v, "kind", kind) &&
              cJSON_AddStringToObject(v, "message", msg) &&
              (!sku || cJSON_AddStringToObject(v, "sku", sku)) &&
              (!category || cJSON_AddStringToObject(v, "category", category)) &&
              (isnan(actual) || cJSON_AddNumberToObject(v, "actual", round(actual * 100) / 100)) &&
              (isnan(threshold) || cJSON_AddNumberToObject(v, "threshold", threshold));
    if (!ok || !cJSON_AddItemToArray(f->list, v)) {
        cJSON_Delete(v);
        f->oom = true;
        return;
    }
    f->count++;
}

static double num(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool in_list(const cJSON *arr, const char *s)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, arr)
    {
        if (cJSON_IsString(c) && strcmp(c->valuestring, s) == 0)
            return true;
    }
    return false;
}

/* The margin threshold for one product: product, then category, then global; never below the
 * ChangeSet's profitFloor. */
static double margin_threshold(const cJSON *cfg, double floor_pct, const char *sku,
                               const char *category)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cfg, "productMinMarginPct"), sku);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cfg, "categoryMinMarginPct"), category);
    double t = cJSON_IsNumber(p)   ? p->valuedouble
               : cJSON_IsNumber(c) ? c->valuedouble
                                   : num(cfg, "minMarginPct", 0);
    return t > floor_pct ? t : floor_pct;
}

static int check_change(pe_db_conn_t *conn, const char *store_id, const cJSON *cfg,
                        const cJSON *cs_guard, const cJSON *change, int index, found_t *f)
{
    const char *type = str(change, "type");
    if (!type)
        return 0;
    bool price = strcmp(type, "price") == 0, discount = strcmp(type, "discount") == 0;
    bool targeting = strcmp(type, "targeting") == 0;
    const cJSON *scope = cJSON_GetObjectItemCaseSensitive(change, "scope");
    const char *sku = str(scope, "sku"), *category = str(scope, "category");
    const cJSON *excluded = cJSON_GetObjectItemCaseSensitive(cfg, "excludedCategories");
    double after = num(change, "after", NAN);
    double max_discount = num(cfg, "maxDiscountPct", 100);

    if (category && in_list(excluded, category))
        add_violation(f, "excluded_category", NULL, category, NAN, NAN,
                      "Category '%s' is excluded from automation (change %d)", category, index + 1);
    if (discount && after > max_discount)
        add_violation(f, "discount", sku, category, after, max_discount,
                      "A %.1f%% discount exceeds the maximum discount of %.1f%%", after,
                      max_discount);
    if (!price && !discount && !targeting)
        return 0; /* copy, layout, timing, shipping: no product is repriced or promoted */
    if (price && !sku) {
        add_violation(f, "margin_unknown", NULL, category, NAN, NAN,
                      "A price change must name one SKU (scope.sku) so its margin can be checked");
        return 0;
    }

    pe_db_result_t *res = NULL;
    const char *params[] = {store_id, sku, category};
    int rc = pe_db_exec(conn,
                        "SELECT sku, category, price::float8, cost::float8, stock FROM products"
                        " WHERE store_id = $1::uuid AND ($2::text IS NULL OR sku = $2)"
                        " AND ($3::text IS NULL OR category = $3)"
                        " ORDER BY sku LIMIT " PRODUCTS_PER_CHANGE,
                        3, params, &res);
    if (rc != 0)
        return rc;
    size_t n = pe_db_result_rows(res);
    if (sku && n == 0)
        add_violation(f, "margin_unknown", sku, NULL, NAN, NAN,
                      "%s is not in the product catalogue, so its margin cannot be checked", sku);
    double min_stock = num(cfg, "minStockUnits", 0);
    double cs_stock = num(cs_guard, "stockThreshold", 0);
    if (cs_stock > min_stock)
        min_stock = cs_stock;
    double floor_pct = num(cs_guard, "profitFloor", 0);
    for (size_t i = 0; i < n && !f->oom; i++) {
        const char *p_sku = pe_db_result_get(res, i, 0), *p_cat = pe_db_result_get(res, i, 1);
        double p_price = strtod(pe_db_result_get(res, i, 2), NULL);
        if (!category && in_list(excluded, p_cat))
            add_violation(f, "excluded_category", p_sku, p_cat, NAN, NAN,
                          "%s is in category '%s', which is excluded from automation", p_sku,
                          p_cat);
        if (!pe_db_result_isnull(res, i, 4)) {
            double stock = strtod(pe_db_result_get(res, i, 4), NULL);
            if (stock < min_stock)
                add_violation(f, "stock", p_sku, p_cat, stock, min_stock,
                              "%s has %.0f units in stock, below the minimum of %.0f", p_sku, stock,
                              min_stock);
        }
        if (targeting)
            continue;
        double new_price = price ? after : p_price * (1.0 - after / 100.0);
        double threshold = margin_threshold(cfg, floor_pct, p_sku, p_cat);
        if (pe_db_result_isnull(res, i, 3)) {
            if (threshold > 0)
                add_violation(f, "margin_unknown", p_sku, p_cat, NAN, threshold,
                              "The cost of %s is unknown, so its margin cannot be checked "
                              "against the %.1f%% threshold",
                              p_sku, threshold);
            continue;
        }
        double cost = strtod(pe_db_result_get(res, i, 3), NULL);
        double margin = new_price > 0 ? (new_price - cost) / new_price * 100.0 : -INFINITY;
        if (margin < threshold) {
            if (isinf(margin))
                add_violation(f, "margin", p_sku, p_cat, NAN, threshold,
                              "This would sell %s for nothing (margin threshold %.1f%%)", p_sku,
                              threshold);
            else
                add_violation(f, "margin", p_sku, p_cat, margin, threshold,
                              "This would reduce margin on %s below threshold (%.1f%% < %.1f%%)",
                              p_sku, margin, threshold);
        }
    }
    pe_db_result_free(res);
    return 0;
}

/* A store SLO gate is met when the ChangeSet carries an SLO check on the same metric that is at
 * least as strict. */
static void check_slo_gates(const cJSON *cfg, const cJSON *cs_guard, found_t *f)
{
    const cJSON *gate;
    const cJSON *reqs = cJSON_GetObjectItemCaseSensitive(cs_guard, "sloRequirements");
    cJSON_ArrayForEach(gate, cJSON_GetObjectItemCaseSensitive(cfg, "sloGates"))
    {
        const char *metric = str(gate, "metric"), *op = str(gate, "operator");
        double t = num(gate, "threshold", 0);
        if (!metric || !op)
            continue;
        bool upper = op[0] == 'l';
        const cJSON *r, *match = NULL;
        cJSON_ArrayForEach(r, reqs)
        {
            const char *m = str(r, "metric"), *rop = str(r, "operator");
            if (m && rop && strcmp(m, metric) == 0 && (rop[0] == 'l') == upper)
                match = r;
        }
        if (!match) {
            add_violation(f, "slo_gate", NULL, NULL, NAN, t,
                          "The ChangeSet has no SLO check on %s (the store requires %s %g)", metric,
                          op, t);
            continue;
        }
        double rt = num(match, "threshold", 0);
        if (upper ? rt > t : rt < t)
            add_violation(f, "slo_gate", NULL, NULL, rt, t,
                          "The SLO check on %s allows %g, looser than the store's gate (%s %g)",
                          metric, rt, op, t);
    }
}

/* pe_guardrails_check against the configuration cfg (canonical) instead of the stored one. */
static int check_with(pe_db_conn_t *conn, const char *store_id, const cJSON *cfg,
                      const cJSON *changeset, const pe_guardrail_check_t *const *extra,
                      cJSON **violations)
{
    found_t f = {cJSON_CreateArray(), 0, false};
    *violations = NULL;
    int rc = PE_ENOMEM;
    if (!f.list)
        goto out;
    const cJSON *cs_guard = cJSON_GetObjectItemCaseSensitive(changeset, "guardrails");
    const cJSON *changes = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(changeset, "actionPlan"),
                                         "implementation"),
        "changes");
    const cJSON *change;
    int i = 0;
    cJSON_ArrayForEach(change, changes)
    {
        rc = check_change(conn, store_id, cfg, cs_guard, change, i++, &f);
        if (rc != 0)
            goto out;
    }
    check_slo_gates(cfg, cs_guard, &f);
    for (size_t k = 0; extra && extra[k]; k++) {
        rc = extra[k]->check(extra[k]->ctx, conn, store_id, changeset, cfg, f.list);
        if (rc != 0)
            goto out;
    }
    if (f.count > PE_GUARDRAILS_MAX_VIOLATIONS) {
        char more[64];
        snprintf(more, sizeof more, "... and %d more violations",
                 f.count - PE_GUARDRAILS_MAX_VIOLATIONS);
        cJSON *t = cJSON_CreateObject();
        if (!t || !cJSON_AddStringToObject(t, "kind", "truncated") ||
            !cJSON_AddStringToObject(t, "message", more) || !cJSON_AddItemToArray(f.list, t)) {
            cJSON_Delete(t);
            f.oom = true;
        }
    }
    rc = f.oom ? PE_ENOMEM : 0;
    if (rc == 0) {
        *violations = f.list;
        f.list = NULL;
    }
out:
    cJSON_Delete(f.list);
    return rc;
}

int pe_guardrails_check(pe_db_conn_t *conn, const char *store_id, const cJSON *changeset,
                        const pe_guardrail_check_t *const *extra, cJSON **violations)
{
    cJSON *cfg = NULL;
    *violations = NULL;
    int rc = load(conn, store_id, &cfg);
    if (rc == 0)
        rc = check_with(conn, store_id, cfg, changeset, extra, violations);
    cJSON_Delete(cfg);
    return rc;
}

/* ---- preview -------------------------------------------------------------------------------- */

/* The ChangeSets still waiting for a decision, newest first: what new settings could block. */
static const char SQL_OPEN_CHANGESETS[] =
    "SELECT id, status, coalesce(hypothesis->>'problem', ''),"
    "       jsonb_build_object('guardrails', guardrails, 'actionPlan', action_plan)::text"
    "  FROM changesets WHERE store_id = $1::uuid AND status IN ('DRAFT', 'PENDING_APPROVAL')"
    " ORDER BY created_at DESC, id DESC LIMIT $2::int";

/* One open ChangeSet under the stored and the proposed configuration. */
static cJSON *preview_item(pe_db_result_t *res, size_t i, const cJSON *now_v, cJSON *after_v)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "id", pe_db_result_get(res, i, 0)) &&
              cJSON_AddStringToObject(o, "status", pe_db_result_get(res, i, 1)) &&
              cJSON_AddStringToObject(o, "problem", pe_db_result_get(res, i, 2)) &&
              cJSON_AddBoolToObject(o, "blockedNow", cJSON_GetArraySize(now_v) > 0) &&
              cJSON_AddBoolToObject(o, "blockedAfter", cJSON_GetArraySize(after_v) > 0) &&
              cJSON_AddItemToObject(o, "violations", after_v);
    if (!ok) {
        if (!o || !cJSON_GetObjectItemCaseSensitive(o, "violations"))
            cJSON_Delete(after_v);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int pe_guardrails_preview(pe_db_pool_t *db, const char *store_id, const cJSON *proposed,
                          const pe_guardrail_check_t *const *extra, cJSON **out, pe_refusal_t *err)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    cJSON *canonical = NULL, *current = NULL, *o = NULL;
    *out = NULL;
    int rc = pe_guardrails_validate(proposed, &canonical, err);
    if (rc != 0)
        return rc;
    rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    rc = load(conn, store_id, &current);
    if (rc != 0)
        goto out;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", PE_GUARDRAILS_PREVIEW_MAX);
    const char *params[] = {store_id, limit};
    rc = pe_db_exec(conn, SQL_OPEN_CHANGESETS, 2, params, &res);
    if (rc != 0)
        goto out;
    rc = PE_ENOMEM;
    o = cJSON_CreateObject();
    cJSON *list = o ? cJSON_AddArrayToObject(o, "changesets") : NULL;
    if (!list)
        goto out;
    int newly = 0, freed = 0;
    for (size_t i = 0; i < pe_db_result_rows(res); i++) {
        cJSON *doc = NULL, *now_v = NULL, *after_v = NULL;
        char why[64];
        const char *text = pe_db_result_get(res, i, 3);
        rc = pe_json_parse(text, strlen(text), &doc, why, sizeof why) != 0 ? PE_EINTERNAL : 0;
        rc = rc ? rc : check_with(conn, store_id, current, doc, extra, &now_v);
        rc = rc ? rc : check_with(conn, store_id, canonical, doc, extra, &after_v);
        cJSON_Delete(doc);
        if (rc != 0) {
            cJSON_Delete(now_v);
            cJSON_Delete(after_v);
            goto out;
        }
        bool was = cJSON_GetArraySize(now_v) > 0, will = cJSON_GetArraySize(after_v) > 0;
        newly += will && !was;
        freed += was && !will;
        cJSON *item = preview_item(res, i, now_v, after_v);
        cJSON_Delete(now_v);
        if (!item || !cJSON_AddItemToArray(list, item)) {
            cJSON_Delete(item);
            rc = PE_ENOMEM;
            goto out;
        }
    }
    if (!cJSON_AddBoolToObject(o, "valid", true) ||
        !cJSON_AddNumberToObject(o, "newlyBlocked", newly) ||
        !cJSON_AddNumberToObject(o, "noLongerBlocked", freed) ||
        !cJSON_AddItemToObject(o, "guardrails", canonical)) {
        rc = PE_ENOMEM;
        goto out;
    }
    canonical = NULL;
    *out = o;
    o = NULL;
    rc = 0;
out:
    pe_db_result_free(res);
    pe_db_release(db, conn);
    cJSON_Delete(canonical);
    cJSON_Delete(current);
    cJSON_Delete(o);
    return rc;
}
