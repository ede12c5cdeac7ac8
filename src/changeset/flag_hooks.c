/*
 * flag_hooks.c — the feature flag behind a ChangeSet: the lifecycle's flag side effects
 * (PE_CS_T_FLAG_ENABLE / _DISABLE / _WINNER), written through pe/flags.h's _tx calls on the
 * transition's own connection so that the flag changes exactly when the ChangeSet does.
 *
 *   transition (service.c)       hook             flag write (src/flags/store.c)
 *   PENDING_APPROVAL → ACTIVE    enable           pe_flags_put_tx   kind autopilot, enabled
 *   ACTIVE | MEASURING | PROVEN  disable          pe_flags_update_tx {"enabled":false}
 *     → ROLLED_BACK
 *   PROVEN | ROLLED_BACK         serve_winner     pe_flags_put_tx   the winner alone, 100 %
 *     → PERMANENT
 *   after COMMIT                 committed        pe_flags_publish  Redis, this process's copy
 *
 * The mapping from the ChangeSet to the flag (README "ChangeSets", "The feature flag"):
 *   key       actionPlan.implementation.featureFlagKey, else "changeset-<id>"
 *   kind      autopilot (the store holdout stays on control; exposures are recorded)
 *   variants  control   = {"changeset":id,"changes":[{"type","scope","value": before}…]}
 *             treatment = the same with "value": after
 *   strategy  immediate  rolloutPercentage 100, weights control 0 / treatment 100
 *             gradual    rolloutPercentage = actionPlan.rolloutPercentage (rounded),
 *                        weights control 0 / treatment 100 (units outside the rollout: control)
 *             holdout    rolloutPercentage 100, treatment weight = actionPlan.rolloutPercentage
 *                        (rounded) when given, else 100 − proofPlan.holdoutPercentage; control
 *                        the rest
 *   PERMANENT the winner (proofResult.winningVariant, else treatment) as the only variant,
 *             weight 100, rollout 100, default variant: every unit gets it, store holdout too
 *   ROLLED_BACK  enabled false: every unit gets the default variant, control
 *
 * Invariants:
 *  1. Layering: this file knows pe/flags.h; src/flags/ knows nothing of ChangeSets.
 *  2. Nothing is written outside the caller's transaction and nothing is published before its
 *     COMMIT (committed → pe_flags_publish); a failed write fails the transition.
 *  3. Approval and PERMANENT replace only an autopilot flag: a merchant's flag that happens to
 *     have the key is never taken over (PE_ECONFLICT, the transition is refused). A rollback
 *     turns off whatever flag has the key (it is the plan's kill switch), and succeeds when no
 *     flag has it (nothing is on).
 *  4. Replacing keeps the flag's salt, so a unit keeps its bucket across ChangeSets on one key.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pe/changeset.h"
#include "pe/flags.h"

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

void pe_changeset_flag_key(const cJSON *changeset, const char *id,
                           char out[PE_CHANGESET_FLAG_KEY_MAX])
{
    const cJSON *k = get(get(get(changeset, "actionPlan"), "implementation"), "featureFlagKey");
    if (cJSON_IsString(k) && k->valuestring[0])
        snprintf(out, PE_CHANGESET_FLAG_KEY_MAX, "%s", k->valuestring);
    else
        snprintf(out, PE_CHANGESET_FLAG_KEY_MAX, "changeset-%s", id);
}

/* A percentage of the plan (0..100, maybe fractional) as the flag's integer percentage. */
static int whole_percent(const cJSON *v, int dflt)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return dflt;
    long p = lround(v->valuedouble);
    return p < 0 ? 0 : p > 100 ? 100 : (int)p;
}

/* {"changeset":id,"changes":[{"type","scope","value"}…]} with value = before (control) or after
 * (treatment) of every change. */
static int variant_value(const cJSON *changes, const char *id, bool treatment, cJSON **out,
                         char *err, size_t errlen)
{
    int rc = PE_ENOMEM, i = 0;
    cJSON *v = cJSON_CreateObject();
    cJSON *arr = v && cJSON_AddStringToObject(v, "changeset", id)
                     ? cJSON_AddArrayToObject(v, "changes")
                     : NULL;
    if (!arr)
        goto out;
    for (const cJSON *c = changes ? changes->child : NULL; c; c = c->next, i++) {
        const cJSON *variant = get(c, "variant");
        if (cJSON_IsString(variant) && strcmp(variant->valuestring, "treatment") != 0) {
            snprintf(err, errlen,
                     "actionPlan.implementation.changes[%d].variant: the flag has the variants "
                     "control and treatment, and treatment carries every change",
                     i);
            rc = PE_EINVAL;
            goto out;
        }
        const cJSON *value = get(c, treatment ? "after" : "before");
        const cJSON *scope = get(c, "scope");
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            goto out;
        }
        if (!cJSON_AddItemToObject(o, "type", cJSON_Duplicate(get(c, "type"), true)) ||
            (scope && !cJSON_AddItemToObject(o, "scope", cJSON_Duplicate(scope, true))) ||
            !cJSON_AddItemToObject(o, "value",
                                   value ? cJSON_Duplicate(value, true) : cJSON_CreateNull()))
            goto out;
    }
    *out = v;
    v = NULL;
    rc = 0;
out:
    cJSON_Delete(v);
    return rc;
}

static cJSON *variant(const char *key, cJSON *value, int weight)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "key", key) ||
        !cJSON_AddItemToObject(o, "value", value) ||
        !cJSON_AddNumberToObject(o, "weight", weight)) {
        if (!o || !get(o, "value"))
            cJSON_Delete(value);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int pe_changeset_flag_definition(const cJSON *changeset, const char *id, const char *winner,
                                 cJSON **def, char *err, size_t errlen)
{
    const cJSON *ap = get(changeset, "actionPlan");
    const cJSON *changes = get(get(ap, "implementation"), "changes");
    const cJSON *strategy = get(ap, "rolloutStrategy");
    cJSON *d = NULL, *control = NULL, *treatment = NULL, *variants = NULL;
    char key[PE_CHANGESET_FLAG_KEY_MAX], desc[PE_FLAGS_DESCRIPTION_MAX];
    int rollout = 100, treat = 100;
    *def = NULL;
    int rc = variant_value(changes, id, false, &control, err, errlen);
    if (rc == 0)
        rc = variant_value(changes, id, true, &treatment, err, errlen);
    if (rc != 0)
        goto out;
    if (winner && strcmp(winner, "treatment") != 0 && strcmp(winner, "control") != 0) {
        snprintf(err, errlen,
                 "execution.proofResult.winningVariant: must be treatment or control, not '%.64s'",
                 winner);
        rc = PE_EINVAL;
        goto out;
    }
    const char *s = cJSON_IsString(strategy) ? strategy->valuestring : "immediate";
    if (!winner && strcmp(s, "gradual") == 0) {
        rollout = whole_percent(get(ap, "rolloutPercentage"), 100);
    } else if (!winner && strcmp(s, "holdout") == 0) {
        const cJSON *pct = get(ap, "rolloutPercentage");
        treat = pct ? whole_percent(pct, 100)
                    : 100 - whole_percent(get(get(changeset, "proofPlan"), "holdoutPercentage"), 0);
    }
    pe_changeset_flag_key(changeset, id, key);
    const cJSON *type = get(ap, "type");
    snprintf(desc, sizeof desc, "Autopilot: ChangeSet %s (%s)%s", id,
             cJSON_IsString(type) ? type->valuestring : "change", winner ? ", made permanent" : "");
    rc = PE_ENOMEM;
    d = cJSON_CreateObject();
    variants = cJSON_CreateArray();
    if (!d || !variants)
        goto out;
    if (winner) {
        bool t = strcmp(winner, "treatment") == 0;
        cJSON *only = variant(winner, t ? treatment : control, 100);
        if (t)
            treatment = NULL;
        else
            control = NULL;
        if (!only || !cJSON_AddItemToArray(variants, only)) {
            cJSON_Delete(only);
            goto out;
        }
    } else {
        cJSON *vc = variant("control", control, 100 - treat);
        control = NULL;
        if (!vc || !cJSON_AddItemToArray(variants, vc)) {
            cJSON_Delete(vc);
            goto out;
        }
        cJSON *vt = variant("treatment", treatment, treat);
        treatment = NULL;
        if (!vt || !cJSON_AddItemToArray(variants, vt)) {
            cJSON_Delete(vt);
            goto out;
        }
    }
    if (!cJSON_AddStringToObject(d, "key", key) ||
        !cJSON_AddStringToObject(d, "description", desc) ||
        !cJSON_AddStringToObject(d, "kind", "autopilot") || !cJSON_AddTrueToObject(d, "enabled") ||
        !cJSON_AddNumberToObject(d, "rolloutPercentage", rollout) ||
        !cJSON_AddItemToObject(d, "variants", variants))
        goto out;
    variants = NULL;
    if (!cJSON_AddStringToObject(d, "defaultVariant", winner ? winner : "control") ||
        !cJSON_AddArrayToObject(d, "rules"))
        goto out;
    *def = d;
    d = NULL;
    rc = 0;
out:
    cJSON_Delete(d);
    cJSON_Delete(variants);
    cJSON_Delete(control);
    cJSON_Delete(treatment);
    return rc;
}

/* ---- the hooks ---------------------------------------------------------------------------- */

/* What a write produced, for the audit metadata. */
static void outcome(const cJSON *flag, pe_changeset_flag_outcome_t *out)
{
    const cJSON *v = get(flag, "version"), *r = get(flag, "rolloutPercentage");
    out->version = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    out->enabled = cJSON_IsTrue(get(flag, "enabled"));
    out->rollout_percentage = cJSON_IsNumber(r) ? r->valueint : 0;
}

static void say(char *err, size_t errlen, int rc, const pe_refusal_t *fe)
{
    snprintf(err, errlen, "%s", fe->message[0] ? fe->message : pe_strerror(rc));
}

/* Approval and PERMANENT: write the definition (winner NULL: the experiment). */
static int put(pe_db_conn_t *conn, const char *store_id, const char *id, const cJSON *cs,
               const char *winner, pe_changeset_flag_outcome_t *out, char *err, size_t errlen)
{
    cJSON *def = NULL, *flag = NULL;
    pe_refusal_t fe = {"", ""};
    char actor[64];
    snprintf(actor, sizeof actor, "changeset:%s", id);
    pe_flags_actor_t who = {actor};
    pe_changeset_flag_key(cs, id, out->key);
    int rc = pe_changeset_flag_definition(cs, id, winner, &def, err, errlen);
    if (rc != 0)
        goto out;
    rc = pe_flags_put_tx(conn, store_id, &who, def, "autopilot", &flag, &fe);
    if (rc != 0) {
        say(err, errlen, rc, &fe);
        goto out;
    }
    outcome(flag, out);
    if (winner)
        snprintf(out->variant, sizeof out->variant, "%s", winner);
out:
    cJSON_Delete(def);
    cJSON_Delete(flag);
    return rc;
}

static int hook_enable(void *ctx, pe_db_conn_t *conn, const char *store_id, const char *id,
                       const cJSON *cs, pe_changeset_flag_outcome_t *out, char *err, size_t errlen)
{
    (void)ctx;
    return put(conn, store_id, id, cs, NULL, out, err, errlen);
}

static int hook_winner(void *ctx, pe_db_conn_t *conn, const char *store_id, const char *id,
                       const cJSON *cs, const char *variant, pe_changeset_flag_outcome_t *out,
                       char *err, size_t errlen)
{
    (void)ctx;
    return put(conn, store_id, id, cs, variant ? variant : "treatment", out, err, errlen);
}

static int hook_disable(void *ctx, pe_db_conn_t *conn, const char *store_id, const char *id,
                        const cJSON *cs, pe_changeset_flag_outcome_t *out, char *err, size_t errlen)
{
    (void)ctx;
    cJSON *flag = NULL;
    pe_refusal_t fe = {"", ""};
    char actor[64];
    snprintf(actor, sizeof actor, "changeset:%s", id);
    pe_flags_actor_t who = {actor};
    pe_changeset_flag_key(cs, id, out->key);
    int rc = PE_ENOMEM;
    cJSON *body = cJSON_CreateObject();
    if (!body || !cJSON_AddFalseToObject(body, "enabled"))
        goto out;
    rc = pe_flags_update_tx(conn, store_id, out->key, &who, body, true, &flag, &fe);
    if (rc == PE_ENOTFOUND) { /* invariant 3: no flag, nothing is on */
        out->version = 0;
        out->enabled = false;
        rc = 0;
        goto out;
    }
    if (rc != 0) {
        say(err, errlen, rc, &fe);
        goto out;
    }
    outcome(flag, out);
out:
    cJSON_Delete(body);
    cJSON_Delete(flag);
    return rc;
}

static void hook_committed(void *ctx, const char *store_id)
{
    pe_flags_publish(ctx, store_id);
}

pe_changeset_flag_hooks_t pe_changeset_flag_hooks(pe_flags_t *flags)
{
    pe_changeset_flag_hooks_t h = {
        .enable = hook_enable,
        .disable = hook_disable,
        .serve_winner = hook_winner,
        .committed = hook_committed,
        .ctx = flags,
    };
    return h;
}
