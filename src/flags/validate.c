/*
 * validate.c — the flag-definition validator and the OFREP context reader: checks a body field
 * by field and builds the canonical definition that store.c writes and engine.c compiles.
 *
 * Invariants:
 *  1. Pure: no I/O, no globals; allocation only for the canonical object; thread-safe.
 *  2. The first failing field is reported, in document order, as "<path>: …"
 *     ("variants[1].weight: must be an integer 0..100"); a refusal leaves *canonical NULL.
 *  3. What passes here passes the CHECKs of 0006_flags.sql (key syntax, kinds, ranges).
 *  4. The canonical object has exactly key, description, kind, enabled, rolloutPercentage,
 *     variants, defaultVariant, rules (and salt when given), in that order; each variant
 *     exactly key, value, weight; each rule conditions and, for an override, variant; each
 *     condition attribute, operator, values.
 *  5. What passes here survives the trip to PostgreSQL (jsonb), Redis and back unchanged and
 *     compiles (engine.c validates every flag of a set again, with allow_extra): no number
 *     that is not finite (cJSON would store null), no key given twice in a variant value
 *     (jsonb keeps only the last), no value nested deeper than PE_FLAGS_VALUE_MAX_DEPTH (the
 *     set document nests values deeper than the request did, under the parser's 64 levels).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags/flags_internal.h"

static const char *const KINDS[] = {"release", "experiment", "autopilot"};
static const char *const OPS[] = {"in", "not_in", "starts_with", "contains",
                                  "gt", "gte",    "lt",          "lte"};
static const char *const ATTRS[] = {"device", "country", "customer", "path", "custom"};
static const char *const DEVICES[] = {"desktop", "mobile", "tablet", "other"};
static const char *const CUSTOMERS[] = {"new", "returning"};

const char *flags_attr_name(flag_attr_t a)
{
    return (size_t)a < PE_ARRAY_LEN(ATTRS) ? ATTRS[a] : "?";
}

const char *flags_op_name(flag_op_t o)
{
    return (size_t)o < PE_ARRAY_LEN(OPS) ? OPS[o] : "?";
}

int flags_op_parse(const char *s, flag_op_t *out)
{
    for (size_t i = 0; i < PE_ARRAY_LEN(OPS); i++) {
        if (strcmp(s, OPS[i]) == 0) {
            *out = (flag_op_t)i;
            return 0;
        }
    }
    return PE_EINVAL;
}

const char *pe_flags_kind_name(pe_flag_kind_t k)
{
    return (size_t)k < PE_ARRAY_LEN(KINDS) ? KINDS[k] : "release";
}

/* A client-supplied name, at most 48 bytes, cut at a UTF-8 boundary, for messages. */
static const char *excerpt(const char *s, char out[49])
{
    size_t n = strlen(s);
    if (n > 48) {
        n = 48;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

/* [a-z0-9][a-z0-9._-]{0,max-1} */
static bool key_syntax(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

bool flags_key_valid(const char *s)
{
    return key_syntax(s, PE_FLAGS_KEY_MAX);
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* An integer-valued number in [lo, hi]. */
static bool int_in(const cJSON *v, int lo, int hi, int *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
        v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return false;
    *out = (int)v->valuedouble;
    return true;
}

/* A variant value's shape: nesting within PE_FLAGS_VALUE_MAX_DEPTH levels (the value itself is
 * level 1) and no key given twice in one object. Called on a value of at most
 * PE_FLAGS_VALUE_MAX_BYTES, so the quadratic key check is bounded. */
static int check_value_shape(const cJSON *v, int depth, int i, pe_refusal_t *err)
{
    char x[49];
    if (depth > PE_FLAGS_VALUE_MAX_DEPTH)
        return pe_refuse(err, PE_EINVAL, "too_large",
                         "variants[%d].value: nests deeper than %d levels", i,
                         PE_FLAGS_VALUE_MAX_DEPTH);
    for (const cJSON *c = v->child; c; c = c->next) {
        if (cJSON_IsObject(v))
            for (const cJSON *d = v->child; d != c; d = d->next)
                if (strcmp(d->string, c->string) == 0)
                    return pe_refuse(err, PE_EINVAL, "duplicate",
                                     "variants[%d].value: key '%s' given twice", i,
                                     excerpt(c->string, x));
        if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
            int rc = check_value_shape(c, depth + 1, i, err);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* A JSON type class for "every variant has the same type". */
static int type_class(const cJSON *v)
{
    if (cJSON_IsBool(v))
        return 1;
    if (cJSON_IsString(v))
        return 2;
    if (cJSON_IsNumber(v))
        return 3;
    if (cJSON_IsObject(v))
        return 4;
    return 0;
}

static const char *type_name(int c)
{
    static const char *const names[] = {"?", "a boolean", "a string", "a number", "an object"};
    return names[c >= 0 && c <= 4 ? c : 0];
}

static int check_variants(const cJSON *variants, cJSON *canon, pe_refusal_t *err)
{
    if (!cJSON_IsArray(variants))
        return pe_refuse(err, PE_EINVAL, "invalid_type",
                         "variants: must be an array of {key, value, weight}");
    int n = cJSON_GetArraySize(variants);
    if (n < 1 || n > PE_FLAGS_MAX_VARIANTS)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "variants: must have 1..%d variants",
                         PE_FLAGS_MAX_VARIANTS);
    int sum = 0, i = 0, klass = 0;
    const cJSON *v;
    char x[49];
    cJSON_ArrayForEach(v, variants)
    {
        if (!cJSON_IsObject(v))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "variants[%d]: must be an object", i);
        for (const cJSON *f = v->child; f; f = f->next) {
            if (strcmp(f->string, "key") != 0 && strcmp(f->string, "value") != 0 &&
                strcmp(f->string, "weight") != 0)
                return pe_refuse(err, PE_EINVAL, "unknown_field", "variants[%d].%s: unknown field",
                                 i, excerpt(f->string, x));
        }
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(v, "key");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(v, "value");
        const cJSON *weight = cJSON_GetObjectItemCaseSensitive(v, "weight");
        if (!key)
            return pe_refuse(err, PE_EINVAL, "missing_field", "variants[%d].key: required", i);
        if (!cJSON_IsString(key))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "variants[%d].key: must be a string",
                             i);
        if (!key_syntax(key->valuestring, PE_FLAGS_VARIANT_KEY_MAX))
            return pe_refuse(err, PE_EINVAL, "invalid_format",
                             "variants[%d].key: must match [a-z0-9][a-z0-9._-]{0,%d}", i,
                             PE_FLAGS_VARIANT_KEY_MAX - 1);
        int j = 0;
        for (const cJSON *w = variants->child; w != v; w = w->next, j++) {
            if (strcmp(cJSON_GetObjectItemCaseSensitive(w, "key")->valuestring, key->valuestring) ==
                0)
                return pe_refuse(err, PE_EINVAL, "duplicate",
                                 "variants[%d].key: duplicate of variants[%d].key", i, j);
        }
        if (!value)
            return pe_refuse(err, PE_EINVAL, "missing_field", "variants[%d].value: required", i);
        int c = type_class(value);
        if (c == 0)
            return pe_refuse(err, PE_EINVAL, "invalid_type",
                             "variants[%d].value: must be a boolean, string, number or object", i);
        if (klass && c != klass)
            return pe_refuse(err, PE_EINVAL, "invalid_type",
                             "variants[%d].value: must be %s like variants[0].value", i,
                             type_name(klass));
        klass = c;
        /* the path is cut to leave room for the rule: a refusal always says what is wrong */
        char at[32], path[sizeof err->message - sizeof(": " PE_JSON_NONFINITE_RULE) + 1];
        snprintf(at, sizeof at, "variants[%d].value", i);
        if (pe_json_find_nonfinite(value, at, path, sizeof path))
            return pe_refuse(err, PE_EINVAL, "out_of_range", "%s: " PE_JSON_NONFINITE_RULE, path);
        char *text = cJSON_PrintUnformatted(value);
        if (!text)
            return PE_ENOMEM;
        size_t len = strlen(text);
        free(text);
        if (len > PE_FLAGS_VALUE_MAX_BYTES)
            return pe_refuse(err, PE_EINVAL, "too_long",
                             "variants[%d].value: at most %d bytes of JSON", i,
                             PE_FLAGS_VALUE_MAX_BYTES);
        int rc = check_value_shape(value, 1, i, err);
        if (rc != 0)
            return rc;
        int w = 0;
        if (!weight)
            return pe_refuse(err, PE_EINVAL, "missing_field", "variants[%d].weight: required", i);
        if (!int_in(weight, 0, 100, &w))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "variants[%d].weight: must be an integer 0..100", i);
        sum += w;
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(canon, o) ||
            !cJSON_AddStringToObject(o, "key", key->valuestring) ||
            !cJSON_AddItemToObject(o, "value", cJSON_Duplicate(value, true)) ||
            !cJSON_AddNumberToObject(o, "weight", w))
            return PE_ENOMEM;
        i++;
    }
    if (sum != 100)
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "variants: weights must sum to 100 (they sum to %d)", sum);
    return 0;
}

static bool variant_exists(const cJSON *variants, const char *key)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, variants)
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(v, "key")->valuestring, key) == 0)
            return true;
    }
    return false;
}

/* "custom.<name>": name [A-Za-z0-9_.-]{1,64} */
static bool custom_attr(const char *s)
{
    if (strncmp(s, "custom.", 7) != 0)
        return false;
    s += 7;
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static int check_condition(const cJSON *c, const char *path, cJSON *out, pe_refusal_t *err)
{
    char x[49];
    if (!cJSON_IsObject(c))
        return pe_refuse(err, PE_EINVAL, "invalid_type",
                         "%s: must be an object {attribute, operator, values}", path);
    for (const cJSON *f = c->child; f; f = f->next) {
        if (strcmp(f->string, "attribute") != 0 && strcmp(f->string, "operator") != 0 &&
            strcmp(f->string, "values") != 0)
            return pe_refuse(err, PE_EINVAL, "unknown_field", "%s.%s: unknown field", path,
                             excerpt(f->string, x));
    }
    const cJSON *attr = cJSON_GetObjectItemCaseSensitive(c, "attribute");
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(c, "operator");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(c, "values");
    if (!attr)
        return pe_refuse(err, PE_EINVAL, "missing_field", "%s.attribute: required", path);
    if (!cJSON_IsString(attr))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "%s.attribute: must be a string", path);
    flag_attr_t a;
    if (strcmp(attr->valuestring, "device") == 0)
        a = ATTR_DEVICE;
    else if (strcmp(attr->valuestring, "country") == 0)
        a = ATTR_COUNTRY;
    else if (strcmp(attr->valuestring, "customer") == 0)
        a = ATTR_CUSTOMER;
    else if (strcmp(attr->valuestring, "path") == 0)
        a = ATTR_PATH;
    else if (custom_attr(attr->valuestring))
        a = ATTR_CUSTOM;
    else
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "%s.attribute: must be device, country, customer, path or custom.<name>",
                         path);
    if (!op)
        return pe_refuse(err, PE_EINVAL, "missing_field", "%s.operator: required", path);
    flag_op_t o;
    if (!cJSON_IsString(op) || flags_op_parse(op->valuestring, &o) != 0)
        return pe_refuse(
            err, PE_EINVAL, "invalid_format",
            "%s.operator: must be in, not_in, starts_with, contains, gt, gte, lt or lte", path);
    bool numeric = o >= OP_GT;
    bool allowed = a == ATTR_CUSTOM || (a == ATTR_PATH && !numeric) || o <= OP_NOT_IN;
    if (!allowed)
        return pe_refuse(err, PE_EINVAL, "invalid_format", "%s.operator: %s does not apply to %s",
                         path, op->valuestring, attr->valuestring);
    if (!values)
        return pe_refuse(err, PE_EINVAL, "missing_field", "%s.values: required", path);
    int n = cJSON_GetArraySize(values);
    if (!cJSON_IsArray(values))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "%s.values: must be an array", path);
    if (numeric ? n != 1 : (n < 1 || n > PE_FLAGS_MAX_VALUES))
        return pe_refuse(err, PE_EINVAL, "out_of_range", "%s.values: must have %s", path,
                         numeric ? "exactly one number" : "1..100 strings");
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, values)
    {
        if (numeric) {
            if (!cJSON_IsNumber(v))
                return pe_refuse(err, PE_EINVAL, "invalid_type", "%s.values[%d]: must be a number",
                                 path, i);
            if (!isfinite(v->valuedouble))
                return pe_refuse(err, PE_EINVAL, "out_of_range",
                                 "%s.values[%d]: " PE_JSON_NONFINITE_RULE, path, i);
            i++;
            continue;
        }
        if (!cJSON_IsString(v))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "%s.values[%d]: must be a string",
                             path, i);
        const char *s = v->valuestring;
        size_t len = strlen(s);
        if (len == 0 || len > 256 || pe_text_has_control(s, strlen(s)))
            return pe_refuse(err, PE_EINVAL, "invalid_format",
                             "%s.values[%d]: must be 1..256 bytes without control characters", path,
                             i);
        if (a == ATTR_DEVICE && !in_list(s, DEVICES, PE_ARRAY_LEN(DEVICES)))
            return pe_refuse(err, PE_EINVAL, "invalid_format",
                             "%s.values[%d]: must be desktop, mobile, tablet or other", path, i);
        if (a == ATTR_CUSTOMER && !in_list(s, CUSTOMERS, PE_ARRAY_LEN(CUSTOMERS)))
            return pe_refuse(err, PE_EINVAL, "invalid_format",
                             "%s.values[%d]: must be new or returning", path, i);
        if (a == ATTR_COUNTRY &&
            !(len == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'))
            return pe_refuse(err, PE_EINVAL, "invalid_format",
                             "%s.values[%d]: must be an ISO 3166-1 alpha-2 code (upper case)", path,
                             i);
        i++;
    }
    if (!cJSON_AddStringToObject(out, "attribute", attr->valuestring) ||
        !cJSON_AddStringToObject(out, "operator", op->valuestring) ||
        !cJSON_AddItemToObject(out, "values", cJSON_Duplicate(values, true)))
        return PE_ENOMEM;
    return 0;
}

static int check_rules(const cJSON *rules, const cJSON *variants, cJSON *canon, pe_refusal_t *err)
{
    if (!cJSON_IsArray(rules))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "rules: must be an array");
    int n = cJSON_GetArraySize(rules);
    if (n > PE_FLAGS_MAX_RULES)
        return pe_refuse(err, PE_EINVAL, "too_many", "rules: at most %d rules", PE_FLAGS_MAX_RULES);
    int i = 0;
    const cJSON *r;
    char x[49];
    cJSON_ArrayForEach(r, rules)
    {
        if (!cJSON_IsObject(r))
            return pe_refuse(err, PE_EINVAL, "invalid_type",
                             "rules[%d]: must be an object {conditions, variant?}", i);
        for (const cJSON *f = r->child; f; f = f->next) {
            if (strcmp(f->string, "conditions") != 0 && strcmp(f->string, "variant") != 0)
                return pe_refuse(err, PE_EINVAL, "unknown_field", "rules[%d].%s: unknown field", i,
                                 excerpt(f->string, x));
        }
        const cJSON *conds = cJSON_GetObjectItemCaseSensitive(r, "conditions");
        const cJSON *variant = cJSON_GetObjectItemCaseSensitive(r, "variant");
        if (!conds)
            return pe_refuse(err, PE_EINVAL, "missing_field", "rules[%d].conditions: required", i);
        if (!cJSON_IsArray(conds))
            return pe_refuse(err, PE_EINVAL, "invalid_type",
                             "rules[%d].conditions: must be an array", i);
        int nc = cJSON_GetArraySize(conds);
        if (nc < 1 || nc > PE_FLAGS_MAX_CONDITIONS)
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "rules[%d].conditions: must have 1..%d conditions", i,
                             PE_FLAGS_MAX_CONDITIONS);
        cJSON *ro = cJSON_CreateObject();
        cJSON *co = ro ? cJSON_AddArrayToObject(ro, "conditions") : NULL;
        if (!ro || !cJSON_AddItemToArray(canon, ro) || !co)
            return PE_ENOMEM;
        int j = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, conds)
        {
            char path[64];
            snprintf(path, sizeof path, "rules[%d].conditions[%d]", i, j);
            cJSON *o = cJSON_CreateObject();
            if (!o || !cJSON_AddItemToArray(co, o))
                return PE_ENOMEM;
            int rc = check_condition(c, path, o, err);
            if (rc != 0)
                return rc;
            j++;
        }
        if (variant && !cJSON_IsNull(variant)) {
            if (!cJSON_IsString(variant))
                return pe_refuse(err, PE_EINVAL, "invalid_type",
                                 "rules[%d].variant: must be a string", i);
            if (!variant_exists(variants, variant->valuestring))
                return pe_refuse(err, PE_EINVAL, "invalid_format",
                                 "rules[%d].variant: no variant named '%s'", i,
                                 excerpt(variant->valuestring, x));
            if (!cJSON_AddStringToObject(ro, "variant", variant->valuestring))
                return PE_ENOMEM;
        }
        i++;
    }
    return 0;
}

static const char *const FIELDS[] = {
    "key",      "description",    "kind", "enabled", "rolloutPercentage",
    "variants", "defaultVariant", "rules"};

int pe_flags_validate(const cJSON *def, bool allow_extra, cJSON **canonical, pe_refusal_t *err)
{
    int rc = PE_EINVAL;
    cJSON *c = NULL;
    char x[49];
    *canonical = NULL;
    pe_refusal_clear(err);
    if (!cJSON_IsObject(def))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "flag: must be a JSON object");
    for (const cJSON *f = def->child; f; f = f->next) {
        bool known =
            in_list(f->string, FIELDS, PE_ARRAY_LEN(FIELDS)) ||
            (allow_extra && (strcmp(f->string, "version") == 0 || strcmp(f->string, "salt") == 0));
        if (!known)
            return pe_refuse(err, PE_EINVAL, "unknown_field", "%s: unknown field",
                             excerpt(f->string, x));
        for (const cJSON *g = def->child; g != f; g = g->next)
            if (strcmp(g->string, f->string) == 0)
                return pe_refuse(err, PE_EINVAL, "duplicate", "%s: given twice", f->string);
    }
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(def, "key");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(def, "description");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(def, "kind");
    const cJSON *enabled = cJSON_GetObjectItemCaseSensitive(def, "enabled");
    const cJSON *rollout = cJSON_GetObjectItemCaseSensitive(def, "rolloutPercentage");
    const cJSON *variants = cJSON_GetObjectItemCaseSensitive(def, "variants");
    const cJSON *dflt = cJSON_GetObjectItemCaseSensitive(def, "defaultVariant");
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(def, "rules");
    const cJSON *salt = cJSON_GetObjectItemCaseSensitive(def, "salt");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(def, "version");

    if (!key)
        return pe_refuse(err, PE_EINVAL, "missing_field", "key: required");
    if (!cJSON_IsString(key))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "key: must be a string");
    if (!key_syntax(key->valuestring, PE_FLAGS_KEY_MAX))
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "key: must match [a-z0-9][a-z0-9._-]{0,%d}", PE_FLAGS_KEY_MAX - 1);
    if (desc && !cJSON_IsNull(desc)) {
        if (!cJSON_IsString(desc))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "description: must be a string");
        if (strlen(desc->valuestring) > PE_FLAGS_DESCRIPTION_MAX)
            return pe_refuse(err, PE_EINVAL, "too_long", "description: at most %d bytes",
                             PE_FLAGS_DESCRIPTION_MAX);
    }
    int k = 0;
    if (kind) {
        if (!cJSON_IsString(kind))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "kind: must be a string");
        for (k = 0; k < (int)PE_ARRAY_LEN(KINDS) && strcmp(kind->valuestring, KINDS[k]) != 0; k++)
            ;
        if (k == (int)PE_ARRAY_LEN(KINDS))
            return pe_refuse(err, PE_EINVAL, "invalid_format",
                             "kind: must be release, experiment or autopilot");
    }
    if (enabled && !cJSON_IsBool(enabled))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "enabled: must be true or false");
    int pct = 100;
    if (rollout && !int_in(rollout, 0, 100, &pct))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "rolloutPercentage: must be an integer 0..100");
    if (!variants)
        return pe_refuse(err, PE_EINVAL, "missing_field", "variants: required");
    if (salt) {
        if (!cJSON_IsString(salt))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "salt: must be a string");
        size_t n = strlen(salt->valuestring);
        bool ok = n >= 1 && n <= PE_FLAGS_SALT_MAX;
        for (size_t i = 0; ok && i < n; i++) {
            char ch = salt->valuestring[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '-' || ch == '.';
        }
        if (!ok)
            return pe_refuse(err, PE_EINVAL, "invalid_format",
                             "salt: must be 1..%d of [A-Za-z0-9._-]", PE_FLAGS_SALT_MAX);
    }
    int ver = 0;
    if (version && !int_in(version, 1, 2000000000, &ver))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "version: must be a positive integer");

    c = cJSON_CreateObject();
    cJSON *cv = NULL, *cr = NULL;
    if (!c || !cJSON_AddStringToObject(c, "key", key->valuestring) ||
        !cJSON_AddStringToObject(c, "description", cJSON_IsString(desc) ? desc->valuestring : "") ||
        !cJSON_AddStringToObject(c, "kind", KINDS[k]) ||
        !cJSON_AddBoolToObject(c, "enabled", cJSON_IsTrue(enabled)) ||
        !cJSON_AddNumberToObject(c, "rolloutPercentage", pct) ||
        !(cv = cJSON_AddArrayToObject(c, "variants"))) {
        rc = PE_ENOMEM;
        goto out;
    }
    rc = check_variants(variants, cv, err);
    if (rc != 0)
        goto out;
    const char *dv = cJSON_GetObjectItemCaseSensitive(cv->child, "key")->valuestring;
    if (dflt && !cJSON_IsNull(dflt)) {
        if (!cJSON_IsString(dflt)) {
            rc = pe_refuse(err, PE_EINVAL, "invalid_type", "defaultVariant: must be a string");
            goto out;
        }
        if (!variant_exists(cv, dflt->valuestring)) {
            rc = pe_refuse(err, PE_EINVAL, "invalid_format",
                           "defaultVariant: no variant named '%s'", excerpt(dflt->valuestring, x));
            goto out;
        }
        dv = dflt->valuestring;
    }
    if (!cJSON_AddStringToObject(c, "defaultVariant", dv) ||
        !(cr = cJSON_AddArrayToObject(c, "rules"))) {
        rc = PE_ENOMEM;
        goto out;
    }
    if (rules && !cJSON_IsNull(rules)) {
        rc = check_rules(rules, cv, cr, err);
        if (rc != 0)
            goto out;
    }
    if (salt && !cJSON_AddStringToObject(c, "salt", salt->valuestring)) {
        rc = PE_ENOMEM;
        goto out;
    }
    *canonical = c;
    c = NULL;
    rc = 0;
out:
    cJSON_Delete(c);
    return rc;
}

int pe_flags_validate_settings(const cJSON *body, int *pct, pe_refusal_t *err)
{
    char x[49];
    if (!cJSON_IsObject(body))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "settings: must be a JSON object");
    for (const cJSON *f = body->child; f; f = f->next)
        if (strcmp(f->string, "holdoutPercentage") != 0)
            return pe_refuse(err, PE_EINVAL, "unknown_field", "%s: unknown field",
                             excerpt(f->string, x));
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(body, "holdoutPercentage");
    if (!h)
        return pe_refuse(err, PE_EINVAL, "missing_field", "holdoutPercentage: required");
    if (!int_in(h, 0, PE_FLAGS_HOLDOUT_MAX, pct))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "holdoutPercentage: must be an integer 0..%d", PE_FLAGS_HOLDOUT_MAX);
    return 0;
}

/* ---- the OFREP context ------------------------------------------------------------------- */

static int ctx_string(const cJSON *v, const char *name, size_t max, const char **out, char *err,
                      size_t errlen)
{
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > max) {
        snprintf(err, errlen, "%s: must be a string of 1..%zu bytes", name, max);
        return PE_EINVAL;
    }
    *out = v->valuestring;
    return 0;
}

int pe_flags_context_parse(const cJSON *context, pe_flag_context_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!context || cJSON_IsNull(context))
        return 0;
    if (!cJSON_IsObject(context)) {
        snprintf(err, errlen, "context: must be an object");
        return PE_EINVAL;
    }
    for (const cJSON *v = context->child; v; v = v->next) {
        const char *n = v->string;
        int rc = 0;
        if (strcmp(n, "targetingKey") == 0)
            rc = ctx_string(v, "targetingKey", PE_FLAGS_TARGETING_KEY_MAX, &out->targeting_key, err,
                            errlen);
        else if (strcmp(n, "device") == 0)
            rc = ctx_string(v, "device", 16, &out->device, err, errlen);
        else if (strcmp(n, "country") == 0)
            rc = ctx_string(v, "country", 8, &out->country, err, errlen);
        else if (strcmp(n, "customer") == 0)
            rc = ctx_string(v, "customer", 16, &out->customer, err, errlen);
        else if (strcmp(n, "path") == 0)
            rc = ctx_string(v, "path", 2048, &out->path, err, errlen);
        else if (strcmp(n, "sessionId") == 0)
            rc = ctx_string(v, "sessionId", 256, &out->session_id, err, errlen);
        else if (cJSON_IsString(v) || cJSON_IsNumber(v) || cJSON_IsBool(v)) {
            if (out->ncustom == PE_FLAGS_CONTEXT_MAX_ATTRS) {
                snprintf(err, errlen, "context: at most %d attributes", PE_FLAGS_CONTEXT_MAX_ATTRS);
                return PE_EINVAL;
            }
            out->custom_names[out->ncustom] = n;
            out->custom_values[out->ncustom++] = v;
        }
        /* objects, arrays and nulls are allowed by OpenFeature and ignored by rules */
        if (rc != 0)
            return rc;
    }
    return 0;
}
