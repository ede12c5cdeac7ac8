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
 *   targeting actionPlan.targetSegment.rules (AND) as ONE filter rule {"conditions":[…]}, a
 *             condition per SegmentRule in order; no rules: "rules": [] (every unit). A unit
 *             outside the segment, or whose context lacks an attribute a rule reads, gets the
 *             default variant, control (OFREP DEFAULT): it is not part of the experiment.
 *   PERMANENT the winner (proofResult.winningVariant, else treatment) as the only variant,
 *             weight 100, rollout 100, default variant: every unit gets it, store holdout too.
 *             Treatment winning over a segment: variants control 0 / treatment 100, default
 *             control, rules [the segment's rule with "variant":"treatment", the same rule as
 *             a filter]: the whole segment, store holdout too, gets treatment (TARGETING_MATCH),
 *             everyone else control (DEFAULT). Control winning: control alone, no rules.
 *   ROLLED_BACK  enabled false: every unit gets the default variant, control
 *
 * SegmentRule → flag condition (pe/flags.h reads the OFREP context's top-level keys):
 *   attribute  device.type, device → device;  country, geo.country → country;
 *              customer.type, customer → customer;  page.path, path → path;
 *              any other a.b.c → custom.a_b_c (utm.source → custom.utm_source, the context key
 *              web/sdk/pe.js sends; cart.value → custom.cart_value)
 *   operator   eq → in [value]; neq → not_in [value]; in, not_in, contains, gt, gte, lt, lte
 *              as they are (an array value: its items are the values)
 *   value      a string; a number as decimal text that reads back as the same number, a
 *              boolean as "true" / "false" (the engine compares a context number by value);
 *              gt/gte/lt/lte keep their one number; country values upper-cased
 *   What the flag validator refuses (device 'phone', contains on device, lt 'abc', more than
 *   PE_FLAGS_MAX_CONDITIONS rules) refuses the plan, naming actionPlan.targetSegment.rules[j]:
 *   an audience is never silently widened.
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
 *  5. The targeting rule is validated (pe_flags_validate, on a minimal flag around it) while it
 *     is built, so its refusal names the ChangeSet's field; the rest of the definition is
 *     validated by pe_flags_put_tx as before (a variant value over 4 KiB).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- targeting: actionPlan.targetSegment → the flag's rules ------------------------------- */

/* The flag attribute a SegmentRule attribute names (the table above), into out. A name too long
 * for out is cut, and the validator refuses it (a custom name has at most 64 bytes). */
static void flag_attribute(const char *a, char *out, size_t outlen)
{
    static const char *const KNOWN[][2] = {
        {"device.type", "device"},     {"device", "device"},
        {"country", "country"},        {"geo.country", "country"},
        {"customer.type", "customer"}, {"customer", "customer"},
        {"page.path", "path"},         {"path", "path"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(KNOWN); i++) {
        if (strcmp(a, KNOWN[i][0]) == 0) {
            snprintf(out, outlen, "%s", KNOWN[i][1]);
            return;
        }
    }
    snprintf(out, outlen, "custom.%s", a);
    for (char *c = out + strlen("custom."); *c; c++)
        if (*c == '.') /* the storefront SDK's context keys: utm.source → utm_source */
            *c = '_';
}

/* A number as decimal text that reads back as the same double (%.15g, else %.17g): the engine
 * compares a context's number with an in / not_in value by strtod, so the text must round-trip. */
static void number_text(double d, char out[32])
{
    snprintf(out, 32, "%.15g", d);
    if (strtod(out, NULL) != d)
        snprintf(out, 32, "%.17g", d);
}

/* One SegmentRule value as the string a flag condition compares (a country upper-cased). A value
 * of another type is copied as is: the validator refuses it, naming its index. */
static cJSON *string_value(const cJSON *v, bool upper)
{
    char num[32];
    if (cJSON_IsNumber(v)) {
        number_text(v->valuedouble, num);
        return cJSON_CreateString(num);
    }
    if (cJSON_IsBool(v))
        return cJSON_CreateString(cJSON_IsTrue(v) ? "true" : "false");
    cJSON *s = cJSON_Duplicate(v, true);
    if (s && upper && cJSON_IsString(s))
        for (char *c = s->valuestring; *c; c++)
            if (*c >= 'a' && *c <= 'z')
                *c = (char)(*c - 'a' + 'A');
    return s;
}

/* Appends v to values: as it is for gt/gte/lt/lte (a number), else as a string. */
static bool add_value(cJSON *values, const cJSON *v, bool numeric, bool upper)
{
    cJSON *s = numeric ? cJSON_Duplicate(v, true) : string_value(v, upper);
    if (!s || !cJSON_AddItemToArray(values, s)) {
        cJSON_Delete(s);
        return false;
    }
    return true;
}

/* The flag condition of one SegmentRule, {"attribute","operator","values"}, not yet validated;
 * the items of an array value are the condition's values, in order (segment_refusal relies on
 * it), any other value its only one. Returns the condition (caller deletes) or NULL (ENOMEM). */
static cJSON *condition_of(const cJSON *sr)
{
    static const char *const OPS[][2] = {{"eq", "in"}, {"neq", "not_in"}};
    const cJSON *attr = get(sr, "attribute"), *op = get(sr, "operator"), *value = get(sr, "value");
    const char *o = cJSON_IsString(op) ? op->valuestring : "";
    char fa[160];
    flag_attribute(cJSON_IsString(attr) ? attr->valuestring : "", fa, sizeof fa);
    for (size_t i = 0; i < PE_ARRAY_LEN(OPS); i++)
        if (strcmp(o, OPS[i][0]) == 0)
            o = OPS[i][1];
    bool numeric = strcmp(o, "gt") == 0 || strcmp(o, "gte") == 0 || strcmp(o, "lt") == 0 ||
                   strcmp(o, "lte") == 0;
    bool upper = strcmp(fa, "country") == 0;
    cJSON *c = cJSON_CreateObject(), *ret = NULL;
    cJSON *values = c && cJSON_AddStringToObject(c, "attribute", fa) &&
                            cJSON_AddStringToObject(c, "operator", o)
                        ? cJSON_AddArrayToObject(c, "values")
                        : NULL;
    if (!values)
        goto out;
    if (cJSON_IsArray(value)) {
        const cJSON *v;
        cJSON_ArrayForEach(v, value)
        {
            if (!add_value(values, v, numeric, upper))
                goto out;
        }
    } else if (value && !add_value(values, value, numeric, upper)) {
        goto out;
    }
    ret = c;
    c = NULL;
out:
    cJSON_Delete(c);
    return ret;
}

/* A SegmentRule value (or one item of it) as a refusal quotes it. */
static void shown(const cJSON *v, char *out, size_t outlen)
{
    char num[32];
    if (cJSON_IsString(v)) {
        int n = (int)strlen(v->valuestring);
        if (n > 48) /* cut at a UTF-8 boundary */
            for (n = 48; n > 0 && ((unsigned char)v->valuestring[n] & 0xC0) == 0x80; n--)
                ;
        snprintf(out, outlen, "'%.*s'", n, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        number_text(v->valuedouble, num);
        snprintf(out, outlen, "%s", num);
    } else if (cJSON_IsBool(v)) {
        snprintf(out, outlen, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else {
        snprintf(out, outlen, "this value");
    }
}

/* The validator's refusal of the probe's "rules[0].conditions[j]…: why", said with the
 * ChangeSet's path actionPlan.targetSegment.rules[j]…: its "values[k]" is the rule's "value[k]"
 * when the value is an array, else "value"; a refused value or attribute is quoted. */
static void segment_refusal(const cJSON *rules, const char *msg, char *err, size_t errlen)
{
    static const char PREFIX[] = "rules[0].conditions[";
    char *end = NULL, what[64];
    long j = strncmp(msg, PREFIX, sizeof PREFIX - 1) == 0
                 ? strtol(msg + sizeof PREFIX - 1, &end, 10)
                 : -1;
    const cJSON *sr = end && *end == ']' && j >= 0 ? cJSON_GetArrayItem(rules, (int)j) : NULL;
    if (!sr) { /* not about one condition: cannot happen with the probe, said as it is */
        snprintf(err, errlen,
                 "actionPlan.targetSegment.rules: the feature flag cannot target this segment: %s",
                 msg);
        return;
    }
    const char *field = end + 1, *colon = strstr(field, ": ");
    const char *why = colon ? colon + 2 : "";
    int flen = colon ? (int)(colon - field) : (int)strlen(field);
    const cJSON *value = get(sr, "value"), *attr = get(sr, "attribute");
    if (flen == 10 && strncmp(field, ".attribute", 10) == 0) {
        shown(attr, what, sizeof what);
        snprintf(err, errlen,
                 "actionPlan.targetSegment.rules[%ld].attribute: the feature flag cannot target "
                 "%s (device.type, country, customer.type, page.path, or a name of 1..64 "
                 "letters, digits, _ . -)",
                 j, what);
    } else if (strncmp(field, ".values[", 8) == 0) {
        char fa[160], at[32] = "";
        flag_attribute(cJSON_IsString(attr) ? attr->valuestring : "", fa, sizeof fa);
        if (cJSON_IsArray(value)) {
            long k = strtol(field + 8, NULL, 10);
            snprintf(at, sizeof at, "[%ld]", k);
            value = cJSON_GetArrayItem(value, (int)k);
        }
        shown(value, what, sizeof what);
        if (strncmp(why, "must be ", 8) == 0)
            why += 8;
        snprintf(err, errlen,
                 "actionPlan.targetSegment.rules[%ld].value%s: the feature flag cannot target %s "
                 "%s (%s)",
                 j, at, fa, what, why);
    } else {
        bool values = flen == 7 && strncmp(field, ".values", 7) == 0;
        snprintf(err, errlen,
                 "actionPlan.targetSegment.rules[%ld]%.*s: the feature flag cannot target this: "
                 "%s",
                 j, values ? 6 : flen, field, why);
    }
}

/* A minimal flag with one empty filter rule (*conds: its conditions, borrowed), so that whatever
 * the validator refuses in it is that rule. NULL on ENOMEM. */
static cJSON *probe_new(cJSON **conds)
{
    cJSON *p = cJSON_CreateObject(), *ret = NULL;
    cJSON *variants = p ? cJSON_AddArrayToObject(p, "variants") : NULL;
    cJSON *v = variants ? cJSON_CreateObject() : NULL;
    if (!v || !cJSON_AddItemToArray(variants, v)) {
        cJSON_Delete(v);
        goto out;
    }
    cJSON *rules = cJSON_AddArrayToObject(p, "rules");
    cJSON *r = rules ? cJSON_CreateObject() : NULL;
    if (!r || !cJSON_AddItemToArray(rules, r)) {
        cJSON_Delete(r);
        goto out;
    }
    if (!cJSON_AddStringToObject(p, "key", "segment") ||
        !cJSON_AddStringToObject(v, "key", "control") || !cJSON_AddTrueToObject(v, "value") ||
        !cJSON_AddNumberToObject(v, "weight", 100) ||
        !(*conds = cJSON_AddArrayToObject(r, "conditions")))
        goto out;
    ret = p;
    p = NULL;
out:
    cJSON_Delete(p);
    return ret;
}

/* actionPlan.targetSegment as ONE filter rule {"conditions":[…]}: the AND of the segment's rules
 * in their order, canonical (it passed pe_flags_validate). *rule is NULL when the segment has no
 * rules (every visitor). Returns 0, PE_EINVAL with err naming the ChangeSet field — whatever the
 * flag cannot target refuses the plan rather than widen its audience — or PE_ENOMEM. */
static int segment_rule(const cJSON *segment, cJSON **rule, char *err, size_t errlen)
{
    const cJSON *rules = get(segment, "rules"), *sr;
    int n = cJSON_IsArray(rules) ? cJSON_GetArraySize(rules) : 0, rc = PE_ENOMEM;
    cJSON *probe = NULL, *conds = NULL, *canon = NULL;
    pe_refusal_t fe = {"", ""};
    *rule = NULL;
    if (n == 0) {
        rc = 0;
        goto out;
    }
    if (n > PE_FLAGS_MAX_CONDITIONS) {
        snprintf(err, errlen,
                 "actionPlan.targetSegment.rules: the feature flag can target at most %d rules "
                 "(this segment has %d)",
                 PE_FLAGS_MAX_CONDITIONS, n);
        rc = PE_EINVAL;
        goto out;
    }
    if (!(probe = probe_new(&conds)))
        goto out;
    cJSON_ArrayForEach(sr, rules)
    {
        cJSON *c = condition_of(sr);
        if (!c || !cJSON_AddItemToArray(conds, c)) {
            cJSON_Delete(c);
            goto out;
        }
    }
    rc = pe_flags_validate(probe, false, &canon, &fe);
    if (rc == PE_EINVAL)
        segment_refusal(rules, fe.message, err, errlen);
    if (rc != 0)
        goto out;
    rc = PE_ENOMEM;
    if (!(*rule = cJSON_DetachItemFromArray((cJSON *)get(canon, "rules"), 0)))
        goto out;
    rc = 0;
out:
    cJSON_Delete(probe);
    cJSON_Delete(canon);
    return rc;
}

int pe_changeset_flag_definition(const cJSON *changeset, const char *id, const char *winner,
                                 cJSON **def, char *err, size_t errlen)
{
    const cJSON *ap = get(changeset, "actionPlan");
    const cJSON *changes = get(get(ap, "implementation"), "changes");
    const cJSON *strategy = get(ap, "rolloutStrategy");
    cJSON *d = NULL, *control = NULL, *treatment = NULL, *variants = NULL, *rule = NULL;
    cJSON *rules = NULL;
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
    /* control as the winner is control for everyone: the segment changes nothing */
    if (!winner || strcmp(winner, "treatment") == 0)
        rc = segment_rule(get(ap, "targetSegment"), &rule, err, errlen);
    if (rc != 0)
        goto out;
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
    if (winner && !rule) { /* every unit, store holdout included, gets the winner */
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
    } else { /* the experiment; PERMANENT with a segment too (treat 100, control: the rest) */
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
    if (!cJSON_AddStringToObject(d, "defaultVariant", winner && !rule ? winner : "control") ||
        !(rules = cJSON_AddArrayToObject(d, "rules")))
        goto out;
    if (rule && winner) {
        /* an override first: the whole segment, store holdout included, gets the winner; the
         * filter after it only sends everyone else to the default, control, unbucketed */
        cJSON *o = cJSON_Duplicate(rule, true);
        if (!o || !cJSON_AddStringToObject(o, "variant", winner) ||
            !cJSON_AddItemToArray(rules, o)) {
            cJSON_Delete(o);
            goto out;
        }
    }
    if (rule) {
        if (!cJSON_AddItemToArray(rules, rule))
            goto out;
        rule = NULL;
    }
    *def = d;
    d = NULL;
    rc = 0;
out:
    cJSON_Delete(d);
    cJSON_Delete(variants);
    cJSON_Delete(control);
    cJSON_Delete(treatment);
    cJSON_Delete(rule);
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
