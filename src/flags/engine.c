/*
 * engine.c — the compiled flag set and evaluation: builds an immutable, reference-counted set
 * from a store's flag-set JSON, and evaluates a flag for a context with the bucketing of
 * pe/flags.h (SHA-256 of "salt:unit", big-endian uint32 words, integer thresholds).
 *
 *   evaluation                        reason            exposure
 *   flag disabled                     DISABLED          no
 *   first matching rule, override     TARGETING_MATCH   no
 *   filter rules, none matches        DEFAULT           no
 *   autopilot, unit in store holdout  DEFAULT (holdout) yes (custom.holdout = true)
 *   outside the rollout               DEFAULT           no
 *   weighted variant (bucketed)       SPLIT             experiment / autopilot
 *   one variant at 100 %, rollout 100 STATIC            no
 *   a bucket needed, no targetingKey  ERROR             TARGETING_KEY_MISSING
 *
 * Invariants:
 *  1. Evaluation allocates nothing and takes no lock: it reads an immutable set (the caller
 *     holds a reference) and hashes at most two short strings on the stack (the store holdout's
 *     hash is remembered per thread for the last unit, so a bulk request hashes it once).
 *  2. The thresholds are exact integer arithmetic (u · 100 < p · 2^32 in 64 bits), so every
 *     SDK that follows the README formula gets the same variant, bit for bit.
 *  3. A flag of a set from JSON is compiled only when it passes pe_flags_validate again: Redis
 *     holds what the server wrote, but a reader never trusts it blindly.
 *  4. One bad flag never blocks the others: a flag that fails validation or compilation (an
 *     older build or a hand edit wrote it), or whose key appears twice, is quarantined — kept
 *     by key and answered as an error (OFREP GENERAL: the client falls back to its default
 *     value, never an enabled variant) — or, without a usable key, dropped; the rest of the set
 *     is current. Only a broken envelope (storeId, version, holdout, the flags array, the JSON
 *     itself) refuses the whole set ("flags_set_invalid").
 *
 *   flag of the set's JSON          compiled set             evaluation
 *   validates and compiles          the flag                 as the table above
 *   refused, key usable             quarantined (key, why)   ERROR, GENERAL
 *   refused, key unusable           dropped (counted)        FLAG_NOT_FOUND
 *   key given twice                 one quarantined entry    ERROR, GENERAL
 */
#include <math.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "flags/flags_internal.h"

#define CHUNK_MIN (16 * 1024)

struct flag_chunk {
    struct flag_chunk *next;
    size_t len, cap;
    alignas(max_align_t) unsigned char data[];
};

static void *arena_alloc(pe_flag_set_t *s, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct flag_chunk *c = s->chunks;
    if (!c || c->cap - c->len < n) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->len = 0;
        c->cap = cap;
        c->next = s->chunks;
        s->chunks = c;
    }
    void *p = c->data + c->len;
    c->len += n;
    memset(p, 0, n);
    return p;
}

static char *arena_strndup(pe_flag_set_t *s, const char *str, size_t n)
{
    char *p = arena_alloc(s, n + 1);
    if (p) {
        memcpy(p, str, n);
        p[n] = '\0';
    }
    return p;
}

static char *arena_strdup(pe_flag_set_t *s, const char *str)
{
    return arena_strndup(s, str, strlen(str));
}

static void set_free(pe_flag_set_t *s)
{
    if (!s)
        return;
    struct flag_chunk *c = s->chunks;
    while (c) {
        struct flag_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(s->json);
    free(s);
}

pe_flag_set_t *pe_flags_set_ref(pe_flag_set_t *set)
{
    if (set)
        atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
    return set;
}

void pe_flags_set_release(pe_flag_set_t *set)
{
    if (set && atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) == 1)
        set_free(set);
}

uint64_t pe_flags_set_version(const pe_flag_set_t *set)
{
    return set->version;
}

const char *pe_flags_set_store(const pe_flag_set_t *set)
{
    return set->store_id;
}

size_t pe_flags_set_count(const pe_flag_set_t *set)
{
    return set->nflags;
}

const pe_flag_t *pe_flags_set_at(const pe_flag_set_t *set, size_t index)
{
    return index < set->nflags ? &set->flags[index] : NULL;
}

const pe_flag_t *pe_flags_set_find(const pe_flag_set_t *set, const char *key)
{
    size_t lo = 0, hi = set->nflags;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, set->flags[mid].key);
        if (c == 0)
            return &set->flags[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *pe_flags_set_json(const pe_flag_set_t *set, size_t *len)
{
    if (len)
        *len = set->json_len;
    return set->json;
}

const char *pe_flags_key(const pe_flag_t *f)
{
    return f->key;
}

pe_flag_kind_t pe_flags_kind(const pe_flag_t *f)
{
    return f->kind;
}

uint64_t pe_flags_version(const pe_flag_t *f)
{
    return f->version;
}

const char *pe_flags_variant_key(const pe_flag_t *f, int index)
{
    return index >= 0 && (size_t)index < f->nvariants ? f->variants[index].key : NULL;
}

const char *pe_flags_variant_value(const pe_flag_t *f, int index, size_t *len)
{
    if (index < 0 || (size_t)index >= f->nvariants) {
        *len = 0;
        return NULL;
    }
    *len = f->variants[index].value_len;
    return f->variants[index].value;
}

const char *pe_flags_quarantine(const pe_flag_t *f)
{
    return f->quarantine;
}

size_t pe_flags_set_quarantined(const pe_flag_set_t *set)
{
    return set->nquarantined;
}

const char *pe_flags_reason_name(pe_flag_reason_t r)
{
    switch (r) {
    case PE_FLAG_REASON_TARGETING_MATCH:
        return "TARGETING_MATCH";
    case PE_FLAG_REASON_SPLIT:
        return "SPLIT";
    case PE_FLAG_REASON_DISABLED:
        return "DISABLED";
    case PE_FLAG_REASON_DEFAULT:
        return "DEFAULT";
    case PE_FLAG_REASON_STATIC:
        return "STATIC";
    case PE_FLAG_REASON_ERROR:
        break;
    }
    return "ERROR";
}

/* ---- bucketing --------------------------------------------------------------------------- */

void pe_flags_hash(const char *salt, const char *unit, uint32_t out[2])
{
    unsigned char msg[PE_FLAGS_SALT_MAX + 1 + PE_FLAGS_TARGETING_KEY_MAX + 8];
    unsigned char d[crypto_hash_sha256_BYTES];
    size_t ns = strlen(salt), nu = strlen(unit);
    if (ns > PE_FLAGS_SALT_MAX)
        ns = PE_FLAGS_SALT_MAX; /* validated before; a bound for the stack buffer */
    if (nu > PE_FLAGS_TARGETING_KEY_MAX)
        nu = PE_FLAGS_TARGETING_KEY_MAX;
    memcpy(msg, salt, ns);
    msg[ns] = ':';
    memcpy(msg + ns + 1, unit, nu);
    crypto_hash_sha256(d, msg, ns + 1 + nu);
    out[0] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    out[1] = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
}

bool pe_flags_in_percent(uint32_t u, unsigned percent)
{
    return (uint64_t)u * 100u < (uint64_t)percent << 32;
}

/* ---- compiling --------------------------------------------------------------------------- */

static int find_variant(const pe_flag_t *f, const char *key)
{
    for (size_t i = 0; i < f->nvariants; i++)
        if (strcmp(f->variants[i].key, key) == 0)
            return (int)i;
    return -1;
}

static int compile_condition(pe_flag_set_t *s, const cJSON *c, flag_condition_t *out)
{
    const char *attr = cJSON_GetObjectItemCaseSensitive(c, "attribute")->valuestring;
    const char *op = cJSON_GetObjectItemCaseSensitive(c, "operator")->valuestring;
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(c, "values");
    if (strcmp(attr, "device") == 0)
        out->attr = ATTR_DEVICE;
    else if (strcmp(attr, "country") == 0)
        out->attr = ATTR_COUNTRY;
    else if (strcmp(attr, "customer") == 0)
        out->attr = ATTR_CUSTOMER;
    else if (strcmp(attr, "path") == 0)
        out->attr = ATTR_PATH;
    else {
        out->attr = ATTR_CUSTOM;
        out->custom_name = arena_strdup(s, attr + 7);
        if (!out->custom_name)
            return PE_ENOMEM;
    }
    if (flags_op_parse(op, &out->op) != 0)
        return PE_EINVAL;
    if (out->op >= OP_GT) {
        out->number = values->child->valuedouble;
        return 0;
    }
    out->nvalues = (size_t)cJSON_GetArraySize(values);
    out->values = arena_alloc(s, out->nvalues * sizeof *out->values);
    if (!out->values)
        return PE_ENOMEM;
    size_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, values)
    {
        out->values[i] = arena_strdup(s, v->valuestring);
        if (!out->values[i++])
            return PE_ENOMEM;
    }
    return 0;
}

/* Compiles one validated canonical flag (plus salt and version) into *f. */
static int compile_flag(pe_flag_set_t *s, const cJSON *c, const cJSON *raw, pe_flag_t *f)
{
    const cJSON *salt = cJSON_GetObjectItemCaseSensitive(c, "salt");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(raw, "version");
    if (!cJSON_IsString(salt) || !cJSON_IsNumber(version))
        return PE_EINVAL;
    f->key = arena_strdup(s, cJSON_GetObjectItemCaseSensitive(c, "key")->valuestring);
    f->salt = arena_strdup(s, salt->valuestring);
    f->version = (uint64_t)version->valuedouble;
    const char *kind = cJSON_GetObjectItemCaseSensitive(c, "kind")->valuestring;
    f->kind = strcmp(kind, "experiment") == 0  ? PE_FLAG_KIND_EXPERIMENT
              : strcmp(kind, "autopilot") == 0 ? PE_FLAG_KIND_AUTOPILOT
                                               : PE_FLAG_KIND_RELEASE;
    f->enabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "enabled"));
    f->rollout = (unsigned)cJSON_GetObjectItemCaseSensitive(c, "rolloutPercentage")->valuedouble;
    const cJSON *variants = cJSON_GetObjectItemCaseSensitive(c, "variants");
    f->nvariants = (size_t)cJSON_GetArraySize(variants);
    f->variants = arena_alloc(s, f->nvariants * sizeof *f->variants);
    if (!f->key || !f->salt || !f->variants)
        return PE_ENOMEM;
    size_t i = 0;
    unsigned cum = 0;
    f->single = -1;
    const cJSON *v;
    cJSON_ArrayForEach(v, variants)
    {
        flag_variant_t *fv = &f->variants[i++];
        char *text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(v, "value"));
        if (!text)
            return PE_ENOMEM;
        fv->value_len = strlen(text);
        fv->value = arena_strndup(s, text, fv->value_len);
        free(text);
        fv->key = arena_strdup(s, cJSON_GetObjectItemCaseSensitive(v, "key")->valuestring);
        fv->weight = (unsigned)cJSON_GetObjectItemCaseSensitive(v, "weight")->valuedouble;
        cum += fv->weight;
        fv->cum = cum;
        if (!fv->value || !fv->key)
            return PE_ENOMEM;
        if (fv->weight == 100)
            f->single = (int)(i - 1);
    }
    if (cum != 100)
        return PE_EINVAL;
    f->default_variant =
        find_variant(f, cJSON_GetObjectItemCaseSensitive(c, "defaultVariant")->valuestring);
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(c, "rules");
    f->nrules = (size_t)cJSON_GetArraySize(rules);
    if (f->nrules) {
        f->rules = arena_alloc(s, f->nrules * sizeof *f->rules);
        if (!f->rules)
            return PE_ENOMEM;
    }
    i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, rules)
    {
        flag_rule_t *fr = &f->rules[i++];
        const cJSON *conds = cJSON_GetObjectItemCaseSensitive(r, "conditions");
        const cJSON *variant = cJSON_GetObjectItemCaseSensitive(r, "variant");
        fr->variant = cJSON_IsString(variant) ? find_variant(f, variant->valuestring) : -1;
        if (fr->variant < 0)
            f->has_filters = true;
        fr->nconditions = (size_t)cJSON_GetArraySize(conds);
        fr->conditions = arena_alloc(s, fr->nconditions * sizeof *fr->conditions);
        if (!fr->conditions)
            return PE_ENOMEM;
        size_t j = 0;
        const cJSON *cond;
        cJSON_ArrayForEach(cond, conds)
        {
            int rc = compile_condition(s, cond, &fr->conditions[j++]);
            if (rc != 0)
                return rc;
        }
    }
    return f->default_variant < 0 ? PE_EINVAL : 0;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const pe_flag_t *)a)->key, ((const pe_flag_t *)b)->key);
}

static void reject(const char *why)
{
    pe_log(PE_LOG_ERROR, "flags_set_invalid", "a flag set was refused: %s", why);
}

/* Notes a quarantined or dropped flag for the operator. Returns 0 or PE_ENOMEM. */
static int note_quarantine(pe_flag_set_t *s, const char *key, const char *why)
{
    flag_quarantine_t *q = &s->quarantined[s->nquarantined];
    q->key = arena_strdup(s, key);
    q->why = arena_strdup(s, why);
    if (!q->key || !q->why)
        return PE_ENOMEM;
    s->nquarantined++;
    return 0;
}

/* raw failed validation or compilation (why): quarantines it into *f when its key is usable
 * (returns 1), else drops it (returns 0); either way the operator hears of it. Returns
 * PE_ENOMEM when out of memory. */
static int quarantine(pe_flag_set_t *s, const cJSON *raw, pe_flag_t *f, const char *why)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(raw, "key");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(raw, "version");
    bool usable = cJSON_IsString(key) && flags_key_valid(key->valuestring);
    memset(f, 0, sizeof *f); /* a compilation that failed half-way leaves nothing behind */
    if (note_quarantine(s, usable ? key->valuestring : "?", why) != 0)
        return PE_ENOMEM;
    if (!usable)
        return 0;
    f->key = s->quarantined[s->nquarantined - 1].key;
    f->quarantine = s->quarantined[s->nquarantined - 1].why;
    f->default_variant = -1;
    f->single = -1;
    if (cJSON_IsNumber(version) && version->valuedouble >= 1 && version->valuedouble < 9e15)
        f->version = (uint64_t)version->valuedouble;
    return 1;
}

/* flags[0..n) sorted by key: each key given more than once becomes one quarantined entry (no
 * copy can be trusted to be the current one: one may be the disabled one). Returns the new
 * count, or PE_ENOMEM (as a negative). */
static long merge_duplicates(pe_flag_set_t *s, size_t n)
{
    size_t w = 0;
    for (size_t r = 0; r < n;) {
        size_t end = r + 1;
        while (end < n && strcmp(s->flags[end].key, s->flags[r].key) == 0)
            end++;
        s->flags[w] = s->flags[r];
        if (end - r > 1) {
            static const char WHY[] = "the key appears more than once in the flag set";
            if (note_quarantine(s, s->flags[r].key, WHY) != 0)
                return PE_ENOMEM;
            pe_flag_t *f = &s->flags[w];
            const char *key = f->key;
            uint64_t version = f->version;
            memset(f, 0, sizeof *f);
            f->key = key;
            f->version = version;
            f->quarantine = s->quarantined[s->nquarantined - 1].why;
            f->default_variant = -1;
            f->single = -1;
        }
        w++;
        r = end;
    }
    return (long)w;
}

pe_flag_set_t *pe_flags_set_from_json(const char *json, size_t len)
{
    pe_flag_set_t *s = calloc(1, sizeof *s);
    cJSON *doc = NULL;
    char why[256];
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    if (pe_json_parse(json, len, &doc, why, sizeof why) != 0) {
        reject(why);
        goto fail;
    }
    const cJSON *store = cJSON_GetObjectItemCaseSensitive(doc, "storeId");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(doc, "version");
    const cJSON *holdout = cJSON_GetObjectItemCaseSensitive(doc, "holdout");
    const cJSON *hpct = cJSON_GetObjectItemCaseSensitive(holdout, "percentage");
    const cJSON *hsalt = cJSON_GetObjectItemCaseSensitive(holdout, "salt");
    const cJSON *flags = cJSON_GetObjectItemCaseSensitive(doc, "flags");
    if (!cJSON_IsString(store) || strlen(store->valuestring) >= sizeof s->store_id ||
        !cJSON_IsNumber(version) || version->valuedouble < 0 || !cJSON_IsNumber(hpct) ||
        hpct->valuedouble < 0 || hpct->valuedouble > PE_FLAGS_HOLDOUT_MAX ||
        !cJSON_IsString(hsalt) || strlen(hsalt->valuestring) > PE_FLAGS_SALT_MAX ||
        !cJSON_IsArray(flags) || cJSON_GetArraySize(flags) > PE_FLAGS_MAX_PER_STORE) {
        reject("missing or malformed storeId, version, holdout or flags");
        goto fail;
    }
    snprintf(s->store_id, sizeof s->store_id, "%s", store->valuestring);
    s->version = (uint64_t)version->valuedouble;
    s->holdout_pct = (unsigned)hpct->valuedouble;
    s->holdout_salt = arena_strdup(s, hsalt->valuestring);
    size_t n = (size_t)cJSON_GetArraySize(flags);
    if (n) {
        /* one note per flag at most, and one per key given twice (at most n / 2) */
        s->flags = arena_alloc(s, n * sizeof *s->flags);
        s->quarantined = arena_alloc(s, (n + n / 2) * sizeof *s->quarantined);
        if (!s->flags || !s->quarantined)
            goto fail;
    }
    if (!s->holdout_salt)
        goto fail;
    size_t i = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, flags)
    {
        cJSON *canon = NULL;
        pe_refusal_t err = {"", ""};
        int rc = pe_flags_validate(f, true, &canon, &err);
        if (rc == 0)
            rc = compile_flag(s, canon, f, &s->flags[i]);
        cJSON_Delete(canon);
        if (rc == 0) {
            i++;
            continue;
        }
        if (rc == PE_EINVAL) /* invariant 4 */
            rc = quarantine(s, f, &s->flags[i],
                            err.message[0] ? err.message : "the flag lacks its salt or version");
        if (rc < 0)
            goto fail; /* out of memory */
        i += (size_t)rc;
    }
    if (i > 1)
        qsort(s->flags, i, sizeof *s->flags, by_key);
    long kept = merge_duplicates(s, i);
    if (kept < 0)
        goto fail;
    s->nflags = (size_t)kept;
    s->json = malloc(len + 1);
    if (!s->json)
        goto fail;
    memcpy(s->json, json, len);
    s->json[len] = '\0';
    s->json_len = len;
    cJSON_Delete(doc);
    return s;
fail:
    cJSON_Delete(doc);
    set_free(s);
    return NULL;
}

void flags_log_quarantine(const pe_flag_set_t *set)
{
    for (size_t i = 0; i < set->nquarantined; i++) {
        const flag_quarantine_t *q = &set->quarantined[i];
        bool dropped = strcmp(q->key, "?") == 0;
        pe_log(PE_LOG_ERROR, "flags_quarantined",
               "store %s, flag set version %llu: flag '%s' %s: %s; the store's other flags are "
               "served as usual; fix the flag (PUT) or delete it",
               set->store_id, (unsigned long long)set->version, q->key,
               dropped ? "has no usable key and is left out (OFREP: FLAG_NOT_FOUND)"
                       : "is quarantined (OFREP answers it with GENERAL, clients use their "
                         "default)",
               q->why);
    }
}

/* ---- evaluation -------------------------------------------------------------------------- */

/* The context's value of a custom attribute, or NULL. */
static const cJSON *custom_value(const pe_flag_context_t *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->ncustom; i++)
        if (strcmp(ctx->custom_names[i], name) == 0)
            return ctx->custom_values[i];
    return NULL;
}

static bool string_matches(const flag_condition_t *c, const char *s, bool fold)
{
    bool any = false;
    for (size_t i = 0; i < c->nvalues && !any; i++) {
        const char *v = c->values[i];
        switch (c->op) {
        case OP_IN:
        case OP_NOT_IN:
            any = fold ? strcasecmp(s, v) == 0 : strcmp(s, v) == 0;
            break;
        case OP_STARTS_WITH:
            any = strncmp(s, v, strlen(v)) == 0;
            break;
        case OP_CONTAINS:
            any = strstr(s, v) != NULL;
            break;
        default:
            break;
        }
    }
    return c->op == OP_NOT_IN ? !any : any;
}

/* A condition on an absent attribute never matches (not_in included). */
static bool condition_matches(const flag_condition_t *c, const pe_flag_context_t *ctx)
{
    const char *s = NULL;
    switch (c->attr) {
    case ATTR_DEVICE:
        s = ctx->device;
        break;
    case ATTR_COUNTRY:
        s = ctx->country;
        break;
    case ATTR_CUSTOMER:
        s = ctx->customer;
        break;
    case ATTR_PATH:
        s = ctx->path;
        break;
    case ATTR_CUSTOM: {
        const cJSON *v = custom_value(ctx, c->custom_name);
        if (!v)
            return false;
        if (c->op >= OP_GT) {
            if (!cJSON_IsNumber(v))
                return false;
            double x = v->valuedouble;
            return c->op == OP_GT    ? x > c->number
                   : c->op == OP_GTE ? x >= c->number
                   : c->op == OP_LT  ? x < c->number
                                     : x <= c->number;
        }
        if (cJSON_IsString(v))
            s = v->valuestring;
        else if (cJSON_IsBool(v))
            s = cJSON_IsTrue(v) ? "true" : "false";
        else if (cJSON_IsNumber(v) && (c->op == OP_IN || c->op == OP_NOT_IN)) {
            bool any = false;
            for (size_t i = 0; i < c->nvalues && !any; i++) {
                char *end = NULL;
                double want = strtod(c->values[i], &end);
                any = end && *end == '\0' && end != c->values[i] && want == v->valuedouble;
            }
            return c->op == OP_NOT_IN ? !any : any;
        }
        break;
    }
    }
    if (!s || c->op >= OP_GT)
        return false;
    return string_matches(c, s, c->attr == ATTR_COUNTRY);
}

static bool rule_matches(const flag_rule_t *r, const pe_flag_context_t *ctx)
{
    for (size_t i = 0; i < r->nconditions; i++)
        if (!condition_matches(&r->conditions[i], ctx))
            return false;
    return true;
}

/* The last holdout bucket this thread computed: a bulk evaluation of several autopilot flags
 * for one unit hashes the store holdout once. Thread-local, compared by value (salt and unit),
 * so a freed set or another store can never be served a stale bucket. */
static _Thread_local struct {
    char salt[PE_FLAGS_SALT_MAX + 1];
    char unit[PE_FLAGS_TARGETING_KEY_MAX + 1];
    uint32_t u[2];
} holdout_memo;

static void holdout_bucket(const char *salt, const char *unit, uint32_t u[2])
{
    if (holdout_memo.unit[0] && strcmp(holdout_memo.unit, unit) == 0 &&
        strcmp(holdout_memo.salt, salt) == 0) {
        u[0] = holdout_memo.u[0];
        u[1] = holdout_memo.u[1];
        return;
    }
    pe_flags_hash(salt, unit, u);
    if (strlen(salt) <= PE_FLAGS_SALT_MAX && strlen(unit) <= PE_FLAGS_TARGETING_KEY_MAX) {
        strcpy(holdout_memo.salt, salt);
        strcpy(holdout_memo.unit, unit);
        holdout_memo.u[0] = u[0];
        holdout_memo.u[1] = u[1];
    }
}

void pe_flags_evaluate(const pe_flag_set_t *set, const pe_flag_t *flag,
                       const pe_flag_context_t *ctx, pe_flag_eval_t *out)
{
    out->flag = flag;
    out->holdout = false;
    out->exposure = false;
    out->error_code = NULL;
    out->error_details = NULL;
    out->variant = flag->default_variant;
    if (flag->quarantine) { /* invariant 4: never a variant, never an exposure */
        out->variant = -1;
        out->reason = PE_FLAG_REASON_ERROR;
        out->error_code = "GENERAL";
        out->error_details = "this flag's stored definition is invalid; it is quarantined until "
                             "the merchant fixes it: use your default value";
        return;
    }
    if (!flag->enabled) {
        out->reason = PE_FLAG_REASON_DISABLED;
        return;
    }
    bool filtered_in = false;
    for (size_t i = 0; i < flag->nrules; i++) {
        if (!rule_matches(&flag->rules[i], ctx))
            continue;
        if (flag->rules[i].variant >= 0) {
            out->variant = flag->rules[i].variant;
            out->reason = PE_FLAG_REASON_TARGETING_MATCH;
            return;
        }
        filtered_in = true;
        break;
    }
    if (flag->has_filters && !filtered_in) {
        out->reason = PE_FLAG_REASON_DEFAULT;
        return;
    }
    bool holdout_applies = flag->kind == PE_FLAG_KIND_AUTOPILOT && set->holdout_pct > 0;
    bool bucketed = flag->rollout < 100 || flag->single < 0;
    if (!bucketed && !holdout_applies) {
        out->variant = flag->single;
        out->reason = PE_FLAG_REASON_STATIC;
        return;
    }
    if (!ctx->targeting_key) {
        out->variant = -1;
        out->reason = PE_FLAG_REASON_ERROR;
        out->error_code = "TARGETING_KEY_MISSING";
        out->error_details = "context.targetingKey is required to assign this flag";
        return;
    }
    uint32_t u[2];
    if (holdout_applies) {
        holdout_bucket(set->holdout_salt, ctx->targeting_key, u);
        if (pe_flags_in_percent(u[0], set->holdout_pct)) {
            out->reason = PE_FLAG_REASON_DEFAULT;
            out->holdout = true;
            out->exposure = true;
            return;
        }
    }
    pe_flags_hash(flag->salt, ctx->targeting_key, u);
    if (!pe_flags_in_percent(u[1], flag->rollout)) {
        out->reason = PE_FLAG_REASON_DEFAULT;
        return;
    }
    int v = flag->single;
    if (v < 0) {
        uint64_t x = (uint64_t)u[0] * 100u;
        for (v = 0; (size_t)v + 1 < flag->nvariants; v++)
            if (x < (uint64_t)flag->variants[v].cum << 32)
                break;
    }
    out->variant = v;
    out->reason = PE_FLAG_REASON_SPLIT;
    out->exposure = flag->kind != PE_FLAG_KIND_RELEASE;
}
