/*
 * profit_engine.h — the extension API of Profit Engine: the C form of the PRD's "protected
 * methods" and overrides. An extension is a plain struct of function pointers handed to the
 * service that calls it; the built-ins are registered through the same lists.
 *
 * Registration points (the engine's own modules declare them; this header re-exports them so an
 * extension includes one file):
 *
 *   what                    type                       where it is registered
 *   ----------------------  -------------------------  ------------------------------------------
 *   custom guardrail check  pe_guardrail_check_t       pe_changeset_config_t.extra_checks
 *   notifier                pe_changeset_notifier_t    pe_changeset_config_t.notifiers
 *   feature-flag hooks      pe_changeset_flag_hooks_t  pe_changeset_config_t.flags
 *   recommendation playbook pe_doctor_playbook_t       pe_doctor_recommender_config_t.playbooks
 *
 * Invariants an extension can rely on, and must keep:
 *  1. Both lists are NULL-terminated arrays of const pointers, borrowed by the service: they
 *     (and every ctx) must outlive it. Registration happens once, before the service is shared;
 *     the lists are read-only afterwards, so callbacks may run on several threads at once.
 *  2. A guardrail check runs inside the transition's transaction on the connection it is given
 *     (read with it; never commit or roll back). It appends violation objects
 *     {"kind","message",…} whose message is a sentence a merchant understands; any violation
 *     blocks a guarded transition unless the merchant force-approves with confirmation.
 *     A non-zero return aborts the transition.
 *  3. A notifier is called by the outbox dispatcher after the transition committed, after the
 *     built-ins ("in_app", then "webhook" when PE_WEBHOOK_URL is set), at least once per
 *     notification until it returns 0 (retried with backoff, 12 attempts; a notifier that
 *     succeeded is not called again when another one fails). n->outbox_id is the idempotency
 *     key. Its statements on n->conn commit with the delivery, or roll back when it fails.
 *  4. A playbook is plain data (pe/doctor.h): checked by pe_doctor_playbook_check when the
 *     recommender is made (a refusal or a key a built-in has makes pe_doctor_recommender_new
 *     fail); its templates, change, prior and cost model then make recommendations exactly as
 *     the built-ins do (src/doctor/playbooks.c is the model to copy).
 *
 * Example: a check that keeps automation away from a SKU, and a notifier that counts.
 *
 *     #include "profit_engine.h"
 *
 *     static int no_sku_x(void *ctx, pe_db_conn_t *conn, const char *store_id,
 *                         const cJSON *changeset, const cJSON *config, cJSON *violations)
 *     {
 *         (void)ctx; (void)conn; (void)store_id; (void)config;
 *         const cJSON *impl = cJSON_GetObjectItemCaseSensitive(
 *             cJSON_GetObjectItemCaseSensitive(changeset, "actionPlan"), "implementation");
 *         const cJSON *change;
 *         cJSON_ArrayForEach(change, cJSON_GetObjectItemCaseSensitive(impl, "changes")) {
 *             const cJSON *sku = cJSON_GetObjectItemCaseSensitive(
 *                 cJSON_GetObjectItemCaseSensitive(change, "scope"), "sku");
 *             if (!cJSON_IsString(sku) || strcmp(sku->valuestring, "SKU-X") != 0)
 *                 continue;
 *             cJSON *v = cJSON_CreateObject();
 *             if (!v || !cJSON_AddStringToObject(v, "kind", "custom.no_sku_x") ||
 *                 !cJSON_AddStringToObject(v, "message", "SKU-X is priced by hand; the "
 *                                                        "autopilot may not change it") ||
 *                 !cJSON_AddItemToArray(violations, v)) {
 *                 cJSON_Delete(v);
 *                 return PE_ENOMEM;
 *             }
 *         }
 *         return 0;
 *     }
 *
 *     static int count(void *ctx, const pe_changeset_notification_t *n, char *err, size_t len)
 *     {
 *         (void)n; (void)err; (void)len;
 *         atomic_fetch_add((atomic_long *)ctx, 1);
 *         return 0;                                   // or PE_EIO + err: retried later
 *     }
 *
 *     static atomic_long delivered;
 *     static const pe_guardrail_check_t check = {"no_sku_x", no_sku_x, NULL};
 *     static const pe_changeset_notifier_t counter = {"counter", count, &delivered};
 *     static const pe_guardrail_check_t *const checks[] = {&check, NULL};
 *     static const pe_changeset_notifier_t *const notifiers[] = {&counter, NULL};
 *
 *     pe_changeset_config_t cfg = {.db = pool, .extra_checks = checks, .notifiers = notifiers};
 *     pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
 *
 * tests/integration/test_notify.c registers exactly such a pair and sees both called.
 */
#ifndef PROFIT_ENGINE_H
#define PROFIT_ENGINE_H

#define PE_EXTENSION_API_VERSION 1

#include "pe/changeset.h"  /* pe_changeset_notifier_t, pe_changeset_config_t, the service */
#include "pe/core.h"       /* PE_E… codes, cJSON, pe_buf_t, logging */
#include "pe/db.h"         /* pe_db_conn_t and pe_db_exec for checks and notifiers */
#include "pe/doctor.h"     /* pe_doctor_playbook_t, pe_doctor_recommender_config_t */
#include "pe/guardrails.h" /* pe_guardrail_check_t */

#endif /* PROFIT_ENGINE_H */
