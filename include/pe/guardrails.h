/*
 * pe/guardrails.h — a store's profit guardrails (stories 8.13, 8.14): minimum margin % (global,
 * per category, per product), maximum discount %, minimum stock, categories excluded from
 * automation, SLO gates; and the check of a ChangeSet's changes against the product catalogue.
 *
 * The configuration, as stored and as GET/PUT /api/v1/stores/{storeId}/guardrails carry it:
 *   {"minMarginPct":20, "categoryMinMarginPct":{"Shoes":25}, "productMinMarginPct":{"SKU-1":30},
 *    "maxDiscountPct":30, "minStockUnits":5, "excludedCategories":["Gift cards"],
 *    "sloGates":[{"metric":"checkout_error_rate","operator":"lte","threshold":0.02}]}
 * Every key is optional on PUT (absent = the default: no limit); the answer has them all.
 *
 * Invariants:
 *  1. The most specific margin threshold wins (product, then category, then global), and the
 *     ChangeSet's own guardrails.profitFloor / stockThreshold can only make it stricter.
 *  2. A check reports every violation (up to PE_GUARDRAILS_MAX_VIOLATIONS), each with a sentence
 *     a merchant understands: "This would reduce margin on SKU-X below threshold (12.0% < 20.0%)".
 *  3. A margin that cannot be computed (unknown cost, SKU not in the catalogue) is a violation:
 *     a guardrail that cannot vouch for a change does not let it through.
 *  4. Validation is pure and names the path ("categoryMinMarginPct.Shoes: must be 0..100").
 *  5. Thread-safe; every statement filters by store_id.
 */
#ifndef PE_GUARDRAILS_H
#define PE_GUARDRAILS_H

#include "pe/core.h"
#include "pe/db.h"

#define PE_GUARDRAILS_MAX_BODY       (64u * 1024)
#define PE_GUARDRAILS_MAX_VIOLATIONS 100
#define PE_GUARDRAILS_MAX_ENTRIES    1000 /* per map / list */

/* Validates a configuration (see above). Returns 0 and, when canonical is non-NULL, a new object
 * with every key (defaults filled; caller deletes), or PE_EINVAL with *err naming the path.
 * Pure and thread-safe. */
int pe_guardrails_validate(const cJSON *cfg, cJSON **canonical, pe_refusal_t *err);

/* The store's configuration (the defaults when never set) with "version" and "updatedAt"
 * (null when never set). Returns 0 and *out (caller deletes) or a database error. */
int pe_guardrails_get(pe_db_pool_t *db, const char *store_id, cJSON **out);
/* Validates and stores cfg; the answer is as pe_guardrails_get's. PE_EINVAL with *err,
 * PE_ENOTFOUND (no such store), or a database error. */
int pe_guardrails_put(pe_db_pool_t *db, const char *store_id, const cJSON *cfg, cJSON **out,
                      pe_refusal_t *err);

/* A custom check (the extension point; see include/pe/changeset.h's config). It appends
 * violation objects {"kind","message",…} to violations. Returns 0 or a PE_E… code. */
struct pe_guardrail_check {
    const char *name;
    int (*check)(void *ctx, pe_db_conn_t *conn, const char *store_id, const cJSON *changeset,
                 const cJSON *config, cJSON *violations);
    void *ctx;
};
typedef struct pe_guardrail_check pe_guardrail_check_t;

/* Checks every change of changeset (actionPlan.implementation.changes, plus the SLO gates)
 * against the store's configuration and products, on conn (inside the caller's transaction).
 * Returns 0 and *violations, a new array (empty when all is well; caller deletes) of
 * {"kind":"margin"|"margin_unknown"|"discount"|"stock"|"excluded_category"|"slo_gate"|…,
 *  "message":…, "sku"?, "category"?, "actual"?, "threshold"?}; or a PE_E… code.
 * extra: NULL-terminated custom checks, may be NULL. */
int pe_guardrails_check(pe_db_conn_t *conn, const char *store_id, const cJSON *changeset,
                        const pe_guardrail_check_t *const *extra, cJSON **violations);

/* What a proposed configuration would do, before it is saved: every ChangeSet still waiting for
 * a decision (DRAFT, PENDING_APPROVAL; the newest PE_GUARDRAILS_PREVIEW_MAX) checked against the
 * stored and against the proposed configuration. Returns 0 and *out (caller deletes):
 *   {"changesets":[{"id","status","problem","blockedNow","blockedAfter","violations":[…after]}],
 *    "valid":true,"newlyBlocked":n,"noLongerBlocked":m,"guardrails":{…proposed, canonical}}
 * or PE_EINVAL with *err naming the path (as pe_guardrails_put), or a database error. Reads
 * only; extra as pe_guardrails_check. */
#define PE_GUARDRAILS_PREVIEW_MAX 200
int pe_guardrails_preview(pe_db_pool_t *db, const char *store_id, const cJSON *proposed,
                          const pe_guardrail_check_t *const *extra, cJSON **out, pe_refusal_t *err);
#endif /* PE_GUARDRAILS_H */
