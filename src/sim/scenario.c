/*
 * scenario.c — the simulator's scenario: the defaults of simulated traffic, the JSON document
 * that changes them (globally, or per segment through overrides), its strict validation, and its
 * serialisation as "the scenario in force".
 *
 * Invariants:
 *  1. Untrusted input: the document goes through pe_json_parse (size, nesting and UTF-8 bounds);
 *     unknown keys, keys given twice, wrong types and out-of-range numbers are refused with a
 *     message naming the path ("overrides[1].segment.device: must be one of desktop, …").
 *  2. A parsed scenario is complete (every default filled in) and immutable.
 *  3. pe_sim_scenario_json(parse(x)) parses back to the same scenario (a fixed point after one
 *     round), so the truth file's "scenario" can be fed back with --scenario.
 *  4. The dimension tables here (steps, devices, countries, sources, payment methods) are the
 *     only place those names are spelled.
 *  5. An override's "from" / "to" are store-local calendar dates (YYYY-MM-DD, a real date),
 *     both included, either absent = open-ended, from ≤ to; they are kept as day numbers and
 *     printed back as the same text, so the round trip of invariant 3 holds for them too.
 *  6. A "catalog" replaces the generated products: each entry is complete (sku, name, category,
 *     price and cost in whole cents; stock and popularity optional), SKUs are unique and
 *     URL-safe, labels carry no control characters. "products" and "catalog" exclude each other.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

const char *const sim_step_names[SIM_NSTEPS] = {"cart", "checkout", "shipping", "payment",
                                                "confirmation"};
const char *const sim_device_names[SIM_NDEVICES] = {"desktop", "mobile", "tablet", "other"};
const char *const sim_country_codes[SIM_NCOUNTRIES] = {"DE", "FR", "GB", "US", "NL",
                                                       "ES", "IT", "AT", "CH", "SE"};
const char *const sim_country_locales[SIM_NCOUNTRIES] = {
    "de-DE", "fr-FR", "en-GB", "en-US", "nl-NL", "es-ES", "it-IT", "de-AT", "de-CH", "sv-SE"};
const sim_source_t sim_sources[SIM_NSOURCES] = {
    {"direct", NULL, NULL, {NULL, NULL}, ""},
    {"organic", "google", "organic", {NULL, NULL}, "https://www.google.com/"},
    {"paid", "google-ads", "cpc", {"brand-search", "generic-search"}, "https://www.google.com/"},
    {"social", "instagram", "social", {"spring-launch", "influencer"}, "https://l.instagram.com/"},
    {"email", "newsletter", "email", {"weekly-newsletter", "win-back"}, ""},
    {"referral", "blog.example", "referral", {NULL, NULL}, "https://blog.example/best-picks"},
};
const char *const sim_payment_names[SIM_NPAYMENTS] = {"card", "paypal", "klarna", "applepay"};

static const double DEFAULT_FUNNEL[SIM_NSTEPS] = {0.18, 0.55, 0.78, 0.82, 0.90};
static const double DEFAULT_PAYMENTS[SIM_NPAYMENTS] = {0.55, 0.25, 0.12, 0.08};
static const double DEFAULT_DEVICES[SIM_NDEVICES] = {0.42, 0.48, 0.08, 0.02};
static const double DEFAULT_COUNTRIES[SIM_NCOUNTRIES] = {0.34, 0.12, 0.12, 0.10, 0.07,
                                                         0.07, 0.06, 0.05, 0.04, 0.03};
static const double DEFAULT_SOURCES[SIM_NSOURCES] = {0.28, 0.30, 0.16, 0.12, 0.09, 0.05};
#define DEFAULT_RETURNING 0.30
#define DEFAULT_PRODUCTS  40
#define MAX_PRODUCTS      SIM_PRODUCTS_MAX
#define MAX_PRICE         1e6
#define MAX_STOCK         1000000000
#define MAX_WEIGHT        1e6
#define MAX_MULTIPLIER    100.0
#define MAX_RETURNING     0.95
#define MAX_TEXT          256

/* ---- errors and paths ----------------------------------------------------------------------- */

typedef struct {
    char *err;
    size_t errlen;
} ctx_t;

static int fail(ctx_t *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ctx_t *c, const char *path, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s", path, msg);
    return PE_EINVAL;
}

/* "parent.key" (or "key" at the top); the key at most 64 bytes, cut at a UTF-8 boundary. */
static void join(char *out, size_t outlen, const char *parent, const char *key_in)
{
    char key[65];
    size_t n = strlen(key_in);
    if (n > 64) {
        n = 64;
        while (n > 0 && ((unsigned char)key_in[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(key, key_in, n);
    key[n] = '\0';
    /* Paths are bounded (keys print at most 64 bytes); a cut path is still a useful message. */
    if (snprintf(out, outlen, "%s%s%.64s", parent, parent[0] ? "." : "", key) < 0)
        out[0] = '\0';
}

/* Refuses a key given twice in obj (cJSON keeps both). */
static int no_duplicates(ctx_t *c, const cJSON *obj, const char *path)
{
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0) {
                char p[256];
                join(p, sizeof p, path, a->string);
                return fail(c, p, "given twice");
            }
    return 0;
}

static int index_of(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

/* "a, b, c" */
static void list_names(char *out, size_t outlen, const char *const *names, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < outlen; i++) {
        int w = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static int number_in(ctx_t *c, const cJSON *v, const char *path, double lo, double hi, double *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fail(c, path, "must be a number %g..%g", lo, hi);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return fail(c, path, "must be a number %g..%g", lo, hi);
    *out = v->valuedouble;
    return 0;
}

/* An object of name → weight (0..MAX_WEIGHT) over names; updates out[] for the names given
 * (others untouched). */
static int weights(ctx_t *c, const cJSON *obj, const char *path, const char *const *names, size_t n,
                   double *out)
{
    char p[256], list[256];
    if (!cJSON_IsObject(obj))
        return fail(c, path, "must be an object of name: weight");
    int rc = no_duplicates(c, obj, path);
    if (rc != 0)
        return rc;
    for (const cJSON *kv = obj->child; kv; kv = kv->next) {
        join(p, sizeof p, path, kv->string);
        int i = index_of(names, n, kv->string);
        if (i < 0) {
            list_names(list, sizeof list, names, n);
            return fail(c, p, "unknown name; one of %s", list);
        }
        if ((rc = number_in(c, kv, p, 0, MAX_WEIGHT, &out[i])) != 0)
            return rc;
    }
    return 0;
}

static bool any_positive(const double *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (w[i] > 0)
            return true;
    return false;
}

static int string_in(ctx_t *c, const cJSON *v, const char *path, const char *const *names, size_t n,
                     int *out)
{
    char list[256];
    list_names(list, sizeof list, names, n);
    if (!cJSON_IsString(v) || (*out = index_of(names, n, v->valuestring)) < 0)
        return fail(c, path, "must be one of %s", list);
    return 0;
}

static int text(ctx_t *c, const cJSON *v, const char *path, char **out)
{
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > MAX_TEXT)
        return fail(c, path, "must be a string of 1..%d bytes", MAX_TEXT);
    *out = strdup(v->valuestring);
    return *out ? 0 : PE_ENOMEM;
}

/* "YYYY-MM-DD", a real calendar date from 1970 on, as days since 1970-01-01. */
static int date_day(ctx_t *c, const cJSON *v, const char *path, int32_t *out)
{
    int y = 0, m = 0, d = 0;
    char tail, back[16];
    const char *t = cJSON_IsString(v) ? v->valuestring : NULL;
    bool ok = t && strlen(t) == 10 && t[4] == '-' && t[7] == '-' &&
              sscanf(t, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && y >= 1970 && m >= 1 &&
              m <= 12 && d >= 1 && d <= 31;
    if (ok) {
        int64_t days = pe_days_from_civil(y, m, d);
        int64_t by;
        int bm, bd;
        pe_civil_from_days(days, &by, &bm, &bd);
        /* The round trip refuses 2026-02-30, and the text must be the canonical one. */
        snprintf(back, sizeof back, "%04d-%02d-%02d", (int)by, bm, bd);
        ok = strcmp(back, t) == 0;
        *out = (int32_t)days;
    }
    if (!ok)
        return fail(c, path, "must be a date YYYY-MM-DD (a store-local calendar day)");
    return 0;
}

static void day_text(int32_t day, char out[16])
{
    int64_t y;
    int m, d;
    pe_civil_from_days(day, &y, &m, &d);
    snprintf(out, 16, "%04d-%02d-%02d", (int)(y % 10000), m % 100, d % 100);
}

/* ---- overrides ------------------------------------------------------------------------------ */

static int parse_segment(ctx_t *c, const cJSON *seg, const char *path, sim_override_t *o)
{
    static const char *const VISITORS[] = {"new", "returning"};
    char p[256];
    if (!cJSON_IsObject(seg))
        return fail(c, path,
                    "must be an object (device, country, source, utmSource, "
                    "utmMedium, utmCampaign, visitor)");
    int rc = no_duplicates(c, seg, path);
    if (rc != 0)
        return rc;
    if (!seg->child)
        return fail(c, path,
                    "must name at least one of device, country, source, utmSource, "
                    "utmMedium, utmCampaign, visitor");
    for (const cJSON *kv = seg->child; kv; kv = kv->next) {
        join(p, sizeof p, path, kv->string);
        const char *k = kv->string;
        if (strcmp(k, "device") == 0)
            rc = string_in(c, kv, p, sim_device_names, SIM_NDEVICES, &o->device);
        else if (strcmp(k, "country") == 0)
            rc = string_in(c, kv, p, sim_country_codes, SIM_NCOUNTRIES, &o->country);
        else if (strcmp(k, "source") == 0) {
            const char *names[SIM_NSOURCES];
            for (size_t i = 0; i < SIM_NSOURCES; i++)
                names[i] = sim_sources[i].name;
            rc = string_in(c, kv, p, names, SIM_NSOURCES, &o->source);
        } else if (strcmp(k, "visitor") == 0)
            rc = string_in(c, kv, p, VISITORS, 2, &o->visitor);
        else if (strcmp(k, "utmSource") == 0)
            rc = text(c, kv, p, &o->utm_source);
        else if (strcmp(k, "utmMedium") == 0)
            rc = text(c, kv, p, &o->utm_medium);
        else if (strcmp(k, "utmCampaign") == 0)
            rc = text(c, kv, p, &o->utm_campaign);
        else
            rc = fail(c, p,
                      "unknown field; a segment has device, country, source, utmSource, "
                      "utmMedium, utmCampaign, visitor");
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int parse_override(ctx_t *c, const cJSON *ov, size_t idx, const pe_sim_scenario_t *s,
                          sim_override_t *o)
{
    char path[64], p[256];
    snprintf(path, sizeof path, "overrides[%zu]", idx);
    o->device = o->country = o->source = o->visitor = -1;
    o->step = -1;
    o->drop_multiplier = o->probability = -1;
    for (size_t i = 0; i < SIM_NPAYMENTS; i++)
        o->payments[i] = -1;
    if (!cJSON_IsObject(ov))
        return fail(c, path,
                    "must be an object {\"segment\":{…}, \"step\":…, "
                    "\"dropMultiplier\"|\"probability\":…, \"paymentMethods\":{…}, "
                    "\"from\"/\"to\": \"YYYY-MM-DD\"}");
    int rc = no_duplicates(c, ov, path);
    if (rc != 0)
        return rc;
    const cJSON *segment = NULL, *step = NULL, *mult = NULL, *prob = NULL, *pay = NULL;
    const cJSON *from = NULL, *to = NULL;
    for (const cJSON *kv = ov->child; kv; kv = kv->next) {
        const char *k = kv->string;
        if (strcmp(k, "segment") == 0)
            segment = kv;
        else if (strcmp(k, "from") == 0)
            from = kv;
        else if (strcmp(k, "to") == 0)
            to = kv;
        else if (strcmp(k, "step") == 0)
            step = kv;
        else if (strcmp(k, "dropMultiplier") == 0)
            mult = kv;
        else if (strcmp(k, "probability") == 0)
            prob = kv;
        else if (strcmp(k, "paymentMethods") == 0)
            pay = kv;
        else {
            join(p, sizeof p, path, k);
            return fail(c, p,
                        "unknown field; an override has segment, step, dropMultiplier, "
                        "probability, paymentMethods, from, to");
        }
    }
    join(p, sizeof p, path, "segment");
    if (!segment)
        return fail(c, p, "is required");
    if ((rc = parse_segment(c, segment, p, o)) != 0)
        return rc;
    if (from) {
        join(p, sizeof p, path, "from");
        if ((rc = date_day(c, from, p, &o->from)) != 0)
            return rc;
        o->has_from = true;
    }
    if (to) {
        join(p, sizeof p, path, "to");
        if ((rc = date_day(c, to, p, &o->to)) != 0)
            return rc;
        o->has_to = true;
        if (from && o->to < o->from)
            return fail(c, p, "must not be before from (%s)", from->valuestring);
    }
    if (step) {
        join(p, sizeof p, path, "step");
        if ((rc = string_in(c, step, p, sim_step_names, SIM_NSTEPS, &o->step)) != 0)
            return rc;
        if (!mult && !prob)
            return fail(c, path, "a step needs dropMultiplier or probability");
        if (mult && prob)
            return fail(c, path, "give dropMultiplier or probability, not both");
        if (mult) {
            join(p, sizeof p, path, "dropMultiplier");
            rc = number_in(c, mult, p, 0, MAX_MULTIPLIER, &o->drop_multiplier);
        } else {
            join(p, sizeof p, path, "probability");
            rc = number_in(c, prob, p, 0, 1, &o->probability);
        }
        if (rc != 0)
            return rc;
    } else if (mult || prob) {
        join(p, sizeof p, path, mult ? "dropMultiplier" : "probability");
        return fail(c, p, "needs a step");
    }
    if (pay) {
        join(p, sizeof p, path, "paymentMethods");
        if ((rc = weights(c, pay, p, sim_payment_names, SIM_NPAYMENTS, o->payments)) != 0)
            return rc;
        double merged[SIM_NPAYMENTS];
        for (size_t i = 0; i < SIM_NPAYMENTS; i++)
            merged[i] = o->payments[i] >= 0 ? o->payments[i] : s->payments[i];
        if (!any_positive(merged, SIM_NPAYMENTS))
            return fail(c, p, "leaves no payment method with a weight > 0");
        o->has_payments = true;
    }
    if (!step && !pay)
        return fail(c, path,
                    "changes nothing: give a step (with dropMultiplier or "
                    "probability) or paymentMethods");
    return 0;
}

/* ---- the document --------------------------------------------------------------------------- */

static int parse_effect(ctx_t *c, const cJSON *ef, size_t idx, sim_effect_rule_t *e)
{
    static const struct {
        const char *prefix;
        sim_target_kind_t kind;
    } TARGETS[] = {{"step:", SIM_TARGET_STEP},
                   {"changeType:", SIM_TARGET_CHANGE_TYPE},
                   {"playbook:", SIM_TARGET_PLAYBOOK},
                   {"flag:", SIM_TARGET_FLAG}};
    char path[64], p[256];
    snprintf(path, sizeof path, "effects[%zu]", idx);
    e->drop_multiplier = e->conversion_multiplier = e->price_multiplier = 1.0;
    if (!cJSON_IsObject(ef))
        return fail(c, path,
                    "must be an object {\"target\":…, \"segment\":{…}, \"dropMultiplier\":…, "
                    "\"conversionMultiplier\":…, \"priceMultiplier\":…}");
    int rc = no_duplicates(c, ef, path);
    if (rc != 0)
        return rc;
    const cJSON *target = NULL, *segment = NULL, *drop = NULL, *conv = NULL, *price = NULL;
    for (const cJSON *kv = ef->child; kv; kv = kv->next) {
        const char *k = kv->string;
        const cJSON **slot = strcmp(k, "target") == 0                 ? &target
                             : strcmp(k, "segment") == 0              ? &segment
                             : strcmp(k, "dropMultiplier") == 0       ? &drop
                             : strcmp(k, "conversionMultiplier") == 0 ? &conv
                             : strcmp(k, "priceMultiplier") == 0      ? &price
                                                                      : NULL;
        if (!slot) {
            join(p, sizeof p, path, k);
            return fail(c, p,
                        "unknown field; an effect has target, segment, dropMultiplier, "
                        "conversionMultiplier, priceMultiplier");
        }
        *slot = kv;
    }
    join(p, sizeof p, path, "target");
    if (!target)
        return fail(c, p,
                    "is required: *, step:<step>, changeType:<type>, playbook:<id> or "
                    "flag:<key>");
    if ((rc = text(c, target, p, &e->target)) != 0)
        return rc;
    e->value = "";
    if (strcmp(e->target, "*") != 0) {
        size_t t = 0;
        while (t < PE_ARRAY_LEN(TARGETS) &&
               strncmp(e->target, TARGETS[t].prefix, strlen(TARGETS[t].prefix)) != 0)
            t++;
        if (t == PE_ARRAY_LEN(TARGETS) || !e->target[strlen(TARGETS[t].prefix)])
            return fail(c, p,
                        "must be *, step:<step>, changeType:<type>, playbook:<id> or "
                        "flag:<key>");
        e->kind = TARGETS[t].kind;
        e->value = e->target + strlen(TARGETS[t].prefix);
        int step;
        if (e->kind == SIM_TARGET_STEP &&
            (step = index_of(sim_step_names, SIM_NSTEPS, e->value)) < 0) {
            char list[128];
            list_names(list, sizeof list, sim_step_names, SIM_NSTEPS);
            return fail(c, p, "step:<step> names one of %s", list);
        }
    }
    if (segment) {
        join(p, sizeof p, path, "segment");
        e->segment.device = e->segment.country = e->segment.source = e->segment.visitor = -1;
        if ((rc = parse_segment(c, segment, p, &e->segment)) != 0)
            return rc;
        e->has_segment = true;
    }
    if (!drop && !conv && !price)
        return fail(c, path,
                    "changes nothing: give dropMultiplier, conversionMultiplier or "
                    "priceMultiplier");
    struct {
        const cJSON *v;
        const char *name;
        double lo, hi, *out;
    } nums[] = {{drop, "dropMultiplier", 0, MAX_MULTIPLIER, &e->drop_multiplier},
                {conv, "conversionMultiplier", 0, MAX_MULTIPLIER, &e->conversion_multiplier},
                {price, "priceMultiplier", 0.01, MAX_MULTIPLIER, &e->price_multiplier}};
    for (size_t i = 0; i < PE_ARRAY_LEN(nums); i++) {
        if (!nums[i].v)
            continue;
        join(p, sizeof p, path, nums[i].name);
        if ((rc = number_in(c, nums[i].v, p, nums[i].lo, nums[i].hi, nums[i].out)) != 0)
            return rc;
    }
    return 0;
}

/* A label into a fixed buffer: 1..SIM_LABEL_MAX bytes, no control characters (the parser has
 * already checked UTF-8). */
static int label(ctx_t *c, const cJSON *v, const char *path, char out[SIM_LABEL_MAX + 1])
{
    size_t n = cJSON_IsString(v) ? strlen(v->valuestring) : 0;
    if (n == 0 || n > SIM_LABEL_MAX)
        return fail(c, path, "must be a string of 1..%d bytes", SIM_LABEL_MAX);
    if (pe_text_has_control(v->valuestring, n))
        return fail(c, path, PE_TEXT_CONTROL_RULE);
    memcpy(out, v->valuestring, n + 1);
    return 0;
}

static int sku(ctx_t *c, const cJSON *v, const char *path, char out[SIM_SKU_MAX + 1])
{
    size_t n = cJSON_IsString(v) ? strlen(v->valuestring) : 0;
    bool ok = n >= 1 && n <= SIM_SKU_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = v->valuestring[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '-' || ch == '.' || ch == '_' || ch == '~';
    }
    if (!ok)
        return fail(c, path, "must be 1..%d letters, digits, -, ., _ or ~", SIM_SKU_MAX);
    memcpy(out, v->valuestring, n + 1);
    return 0;
}

/* An amount of money in whole cents, lo..MAX_PRICE. */
static int cents(ctx_t *c, const cJSON *v, const char *path, double lo, int64_t *out)
{
    double euros = 0;
    int rc = number_in(c, v, path, lo, MAX_PRICE, &euros);
    if (rc != 0)
        return rc;
    double whole = round(euros * 100.0);
    if (fabs(euros * 100.0 - whole) > 1e-6)
        return fail(c, path, "must be in whole cents");
    *out = (int64_t)whole;
    return 0;
}

static int parse_product(ctx_t *c, const cJSON *item, size_t idx, sim_product_t *p)
{
    static const char *const KEYS[] = {"sku",  "name",  "category",  "price",
                                       "cost", "stock", "popularity"};
    const cJSON *f[PE_ARRAY_LEN(KEYS)] = {NULL};
    char path[64], p2[128], list[128];
    snprintf(path, sizeof path, "catalog[%zu]", idx);
    if (!cJSON_IsObject(item))
        return fail(c, path, "must be an object");
    int rc = no_duplicates(c, item, path);
    if (rc != 0)
        return rc;
    for (const cJSON *kv = item->child; kv; kv = kv->next) {
        int i = index_of(KEYS, PE_ARRAY_LEN(KEYS), kv->string);
        if (i < 0) {
            join(p2, sizeof p2, path, kv->string);
            list_names(list, sizeof list, KEYS, PE_ARRAY_LEN(KEYS));
            return fail(c, p2, "unknown field; a product has %s", list);
        }
        f[i] = kv;
    }
    for (size_t i = 0; i < 5; i++)
        if (!f[i]) {
            join(p2, sizeof p2, path, KEYS[i]);
            return fail(c, p2, "is required");
        }
    join(p2, sizeof p2, path, "sku");
    if ((rc = sku(c, f[0], p2, p->sku)) != 0)
        return rc;
    join(p2, sizeof p2, path, "name");
    if ((rc = label(c, f[1], p2, p->name)) != 0)
        return rc;
    join(p2, sizeof p2, path, "category");
    if ((rc = label(c, f[2], p2, p->category)) != 0)
        return rc;
    join(p2, sizeof p2, path, "price");
    if ((rc = cents(c, f[3], p2, 0.01, &p->price_cents)) != 0)
        return rc;
    join(p2, sizeof p2, path, "cost");
    if ((rc = cents(c, f[4], p2, 0, &p->cost_cents)) != 0)
        return rc;
    p->stock = -1;
    if (f[5]) {
        double n = 0;
        join(p2, sizeof p2, path, "stock");
        if ((rc = number_in(c, f[5], p2, 0, MAX_STOCK, &n)) != 0)
            return rc;
        if (floor(n) != n)
            return fail(c, p2, "must be an integer 0..%d", MAX_STOCK);
        p->stock = (int)n;
    }
    p->popularity = 1;
    join(p2, sizeof p2, path, "popularity");
    return f[6] ? number_in(c, f[6], p2, 0, MAX_WEIGHT, &p->popularity) : 0;
}

static int parse_catalog(ctx_t *c, const cJSON *arr, pe_sim_scenario_t *s)
{
    if (!cJSON_IsArray(arr) || !arr->child)
        return fail(c, "catalog", "must be an array of 1..%d products", MAX_PRODUCTS);
    int n = cJSON_GetArraySize(arr);
    if (n > MAX_PRODUCTS)
        return fail(c, "catalog", "must be an array of 1..%d products", MAX_PRODUCTS);
    if (!(s->catalog = calloc((size_t)n, sizeof *s->catalog)))
        return PE_ENOMEM;
    size_t i = 0;
    bool viewed = false;
    for (const cJSON *item = arr->child; item; item = item->next, i++) {
        int rc = parse_product(c, item, i, &s->catalog[i]);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->catalog[j].sku, s->catalog[i].sku) == 0) {
                char path[64];
                snprintf(path, sizeof path, "catalog[%zu].sku", i);
                return fail(c, path, "%s is already catalog[%zu]", s->catalog[i].sku, j);
            }
        viewed = viewed || s->catalog[i].popularity > 0;
    }
    if (!viewed)
        return fail(c, "catalog", "leaves no product with a popularity > 0");
    s->products = (unsigned)n;
    return 0;
}

static void set_defaults(pe_sim_scenario_t *s)
{
    memcpy(s->funnel, DEFAULT_FUNNEL, sizeof s->funnel);
    memcpy(s->payments, DEFAULT_PAYMENTS, sizeof s->payments);
    memcpy(s->devices, DEFAULT_DEVICES, sizeof s->devices);
    memcpy(s->countries, DEFAULT_COUNTRIES, sizeof s->countries);
    memcpy(s->sources, DEFAULT_SOURCES, sizeof s->sources);
    s->returning_share = DEFAULT_RETURNING;
    s->products = DEFAULT_PRODUCTS;
}

static int parse_root(ctx_t *c, const cJSON *root, pe_sim_scenario_t *s)
{
    static const char *const KEYS[] = {"description", "funnel",  "paymentMethods", "devices",
                                       "countries",   "sources", "returningShare", "products",
                                       "overrides",   "effects", "catalog"};
    const cJSON *f[PE_ARRAY_LEN(KEYS)] = {NULL};
    char list[256];
    if (!cJSON_IsObject(root))
        return fail(c, "scenario", "must be a JSON object");
    int rc = no_duplicates(c, root, "");
    if (rc != 0)
        return rc;
    for (const cJSON *kv = root->child; kv; kv = kv->next) {
        int i = index_of(KEYS, PE_ARRAY_LEN(KEYS), kv->string);
        if (i < 0) {
            list_names(list, sizeof list, KEYS, PE_ARRAY_LEN(KEYS));
            char p[80];
            join(p, sizeof p, "", kv->string);
            return fail(c, p, "unknown field; a scenario has %s", list);
        }
        f[i] = kv;
    }
    if (f[0] && (rc = text(c, f[0], "description", &s->description)) != 0)
        return rc;
    if (f[1]) {
        /* Funnel probabilities are weights bounded by 1. */
        double tmp[SIM_NSTEPS];
        memcpy(tmp, s->funnel, sizeof tmp);
        if ((rc = weights(c, f[1], "funnel", sim_step_names, SIM_NSTEPS, tmp)) != 0)
            return rc;
        for (size_t i = 0; i < SIM_NSTEPS; i++) {
            if (tmp[i] > 1) {
                char p[64];
                join(p, sizeof p, "funnel", sim_step_names[i]);
                return fail(c, p, "must be a probability 0..1");
            }
        }
        memcpy(s->funnel, tmp, sizeof tmp);
    }
    struct {
        size_t key;
        const char *path;
        const char *const *names;
        size_t n;
        double *out;
    } maps[] = {
        {2, "paymentMethods", sim_payment_names, SIM_NPAYMENTS, s->payments},
        {3, "devices", sim_device_names, SIM_NDEVICES, s->devices},
        {4, "countries", sim_country_codes, SIM_NCOUNTRIES, s->countries},
        {5, "sources", NULL, SIM_NSOURCES, s->sources},
    };
    const char *source_names[SIM_NSOURCES];
    for (size_t i = 0; i < SIM_NSOURCES; i++)
        source_names[i] = sim_sources[i].name;
    maps[3].names = source_names;
    for (size_t m = 0; m < PE_ARRAY_LEN(maps); m++) {
        if (!f[maps[m].key])
            continue;
        rc = weights(c, f[maps[m].key], maps[m].path, maps[m].names, maps[m].n, maps[m].out);
        if (rc != 0)
            return rc;
        if (!any_positive(maps[m].out, maps[m].n))
            return fail(c, maps[m].path, "leaves no %s with a weight > 0",
                        m == 0 ? "payment method" : "value");
    }
    if (f[6] &&
        (rc = number_in(c, f[6], "returningShare", 0, MAX_RETURNING, &s->returning_share)) != 0)
        return rc;
    if (f[7]) {
        double n = 0;
        if ((rc = number_in(c, f[7], "products", 1, MAX_PRODUCTS, &n)) != 0)
            return rc;
        if (floor(n) != n)
            return fail(c, "products", "must be an integer 1..%d", MAX_PRODUCTS);
        s->products = (unsigned)n;
    }
    if (f[10] && f[7])
        return fail(c, "products", "give products (generated) or catalog (your own), not both");
    if (f[10] && (rc = parse_catalog(c, f[10], s)) != 0)
        return rc;
    if (f[8]) {
        const cJSON *ovs = f[8];
        if (!cJSON_IsArray(ovs))
            return fail(c, "overrides", "must be an array");
        int n = cJSON_GetArraySize(ovs);
        if (n > PE_SIM_SCENARIO_MAX_OVERRIDES)
            return fail(c, "overrides", "at most %d overrides", PE_SIM_SCENARIO_MAX_OVERRIDES);
        if (n > 0) {
            s->overrides = calloc((size_t)n, sizeof *s->overrides);
            if (!s->overrides)
                return PE_ENOMEM;
        }
        size_t i = 0;
        for (const cJSON *ov = ovs->child; ov; ov = ov->next, i++) {
            s->noverrides = i + 1; /* so that free releases what the override holds */
            if ((rc = parse_override(c, ov, i, s, &s->overrides[i])) != 0)
                return rc;
        }
    }
    if (f[9]) {
        const cJSON *efs = f[9];
        if (!cJSON_IsArray(efs))
            return fail(c, "effects", "must be an array");
        int n = cJSON_GetArraySize(efs);
        if (n > SIM_MAX_EFFECTS)
            return fail(c, "effects", "at most %d effects", SIM_MAX_EFFECTS);
        if (n > 0 && !(s->effects = calloc((size_t)n, sizeof *s->effects)))
            return PE_ENOMEM;
        size_t i = 0;
        for (const cJSON *ef = efs->child; ef; ef = ef->next, i++) {
            s->neffects = i + 1; /* so that free releases what the effect holds */
            if ((rc = parse_effect(c, ef, i, &s->effects[i])) != 0)
                return rc;
        }
    }
    return 0;
}

void pe_sim_scenario_free(pe_sim_scenario_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->noverrides; i++) {
        free(s->overrides[i].utm_source);
        free(s->overrides[i].utm_medium);
        free(s->overrides[i].utm_campaign);
    }
    free(s->overrides);
    for (size_t i = 0; i < s->neffects; i++) {
        free(s->effects[i].target);
        free(s->effects[i].segment.utm_source);
        free(s->effects[i].segment.utm_medium);
        free(s->effects[i].segment.utm_campaign);
    }
    free(s->effects);
    free(s->catalog);
    free(s->description);
    free(s);
}

int pe_sim_scenario_parse(const char *text_in, size_t len, pe_sim_scenario_t **out, char *err,
                          size_t errlen)
{
    ctx_t c = {err, errlen};
    cJSON *root = NULL;
    int rc = PE_ENOMEM;
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    pe_sim_scenario_t *s = calloc(1, sizeof *s);
    if (!s)
        goto out;
    set_defaults(s);
    if (text_in && len > 0) {
        char why[128];
        if (len > PE_SIM_SCENARIO_MAX_BYTES) {
            rc = fail(&c, "scenario", "larger than %d bytes", PE_SIM_SCENARIO_MAX_BYTES);
            goto out;
        }
        if (pe_json_parse(text_in, len, &root, why, sizeof why) != 0) {
            rc = fail(&c, "scenario", "not valid JSON: %s", why);
            goto out;
        }
        if ((rc = parse_root(&c, root, s)) != 0)
            goto out;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    if (rc == PE_ENOMEM && errlen)
        snprintf(err, errlen, "scenario: out of memory");
    cJSON_Delete(root);
    pe_sim_scenario_free(s);
    return rc;
}

/* ---- matching ------------------------------------------------------------------------------- */

bool sim_override_matches(const sim_override_t *o, const sim_segment_key_t *k)
{
    const sim_source_t *src = &sim_sources[k->source];
    if (o->device >= 0 && o->device != k->device)
        return false;
    if (o->country >= 0 && o->country != k->country)
        return false;
    if (o->source >= 0 && o->source != k->source)
        return false;
    if (o->visitor >= 0 && o->visitor != k->visitor)
        return false;
    if (o->utm_source && (!src->utm_source || strcmp(o->utm_source, src->utm_source) != 0))
        return false;
    if (o->utm_medium && (!src->utm_medium || strcmp(o->utm_medium, src->utm_medium) != 0))
        return false;
    if (o->utm_campaign && (!k->campaign || strcmp(o->utm_campaign, k->campaign) != 0))
        return false;
    if ((o->has_from && k->day < o->from) || (o->has_to && k->day > o->to))
        return false;
    return true;
}

/* ---- serialisation -------------------------------------------------------------------------- */

static cJSON *weights_json(const double *w, const char *const *names, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < n; i++)
        if (!cJSON_AddNumberToObject(o, names[i], w[i])) {
            cJSON_Delete(o);
            return NULL;
        }
    return o;
}

static bool add(cJSON *parent, const char *name, cJSON *item)
{
    if (item && cJSON_AddItemToObject(parent, name, item))
        return true;
    cJSON_Delete(item);
    return false;
}

/* The segment fields of o into seg. */
static bool segment_into(cJSON *seg, const sim_override_t *o)
{
    static const char *const VISITORS[] = {"new", "returning"};
    bool ok = true;
    if (ok && o->device >= 0)
        ok = cJSON_AddStringToObject(seg, "device", sim_device_names[o->device]) != NULL;
    if (ok && o->country >= 0)
        ok = cJSON_AddStringToObject(seg, "country", sim_country_codes[o->country]) != NULL;
    if (ok && o->source >= 0)
        ok = cJSON_AddStringToObject(seg, "source", sim_sources[o->source].name) != NULL;
    if (ok && o->visitor >= 0)
        ok = cJSON_AddStringToObject(seg, "visitor", VISITORS[o->visitor]) != NULL;
    if (ok && o->utm_source)
        ok = cJSON_AddStringToObject(seg, "utmSource", o->utm_source) != NULL;
    if (ok && o->utm_medium)
        ok = cJSON_AddStringToObject(seg, "utmMedium", o->utm_medium) != NULL;
    if (ok && o->utm_campaign)
        ok = cJSON_AddStringToObject(seg, "utmCampaign", o->utm_campaign) != NULL;
    return ok;
}

static cJSON *override_json(const sim_override_t *o)
{
    cJSON *j = cJSON_CreateObject(), *seg = cJSON_CreateObject();
    bool ok = j && add(j, "segment", seg) && segment_into(seg, o);
    if (ok && o->step >= 0) {
        ok = cJSON_AddStringToObject(j, "step", sim_step_names[o->step]) != NULL;
        if (ok && o->drop_multiplier >= 0)
            ok = cJSON_AddNumberToObject(j, "dropMultiplier", o->drop_multiplier) != NULL;
        if (ok && o->probability >= 0)
            ok = cJSON_AddNumberToObject(j, "probability", o->probability) != NULL;
    }
    char day[16];
    if (ok && o->has_from) {
        day_text(o->from, day);
        ok = cJSON_AddStringToObject(j, "from", day) != NULL;
    }
    if (ok && o->has_to) {
        day_text(o->to, day);
        ok = cJSON_AddStringToObject(j, "to", day) != NULL;
    }
    if (ok && o->has_payments) {
        cJSON *p = cJSON_CreateObject();
        ok = add(j, "paymentMethods", p);
        for (size_t i = 0; ok && i < SIM_NPAYMENTS; i++)
            if (o->payments[i] >= 0)
                ok = cJSON_AddNumberToObject(p, sim_payment_names[i], o->payments[i]) != NULL;
    }
    if (!ok) {
        if (!j)
            cJSON_Delete(seg);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static cJSON *effect_json(const sim_effect_rule_t *e)
{
    cJSON *j = cJSON_CreateObject();
    bool ok = j && cJSON_AddStringToObject(j, "target", e->target);
    if (ok && e->has_segment) {
        cJSON *seg = cJSON_CreateObject();
        ok = add(j, "segment", seg) && segment_into(seg, &e->segment);
    }
    if (ok && e->drop_multiplier != 1.0)
        ok = cJSON_AddNumberToObject(j, "dropMultiplier", e->drop_multiplier) != NULL;
    if (ok && e->conversion_multiplier != 1.0)
        ok = cJSON_AddNumberToObject(j, "conversionMultiplier", e->conversion_multiplier) != NULL;
    if (ok && e->price_multiplier != 1.0)
        ok = cJSON_AddNumberToObject(j, "priceMultiplier", e->price_multiplier) != NULL;
    if (ok && e->drop_multiplier == 1.0 && e->conversion_multiplier == 1.0 &&
        e->price_multiplier == 1.0) /* an explicit "no effect" (A/A) must parse back */
        ok = cJSON_AddNumberToObject(j, "conversionMultiplier", 1.0) != NULL;
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static cJSON *catalog_json(const sim_product_t *products, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        const sim_product_t *p = &products[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        bool ok = cJSON_AddStringToObject(o, "sku", p->sku) &&
                  cJSON_AddStringToObject(o, "name", p->name) &&
                  cJSON_AddStringToObject(o, "category", p->category) &&
                  cJSON_AddNumberToObject(o, "price", (double)p->price_cents / 100.0) &&
                  cJSON_AddNumberToObject(o, "cost", (double)p->cost_cents / 100.0) &&
                  (p->stock < 0 || cJSON_AddNumberToObject(o, "stock", p->stock)) &&
                  cJSON_AddNumberToObject(o, "popularity", p->popularity);
        if (!ok) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

cJSON *pe_sim_scenario_json(const pe_sim_scenario_t *s)
{
    const char *source_names[SIM_NSOURCES];
    for (size_t i = 0; i < SIM_NSOURCES; i++)
        source_names[i] = sim_sources[i].name;
    cJSON *j = cJSON_CreateObject();
    bool ok = j != NULL;
    if (ok && s->description)
        ok = cJSON_AddStringToObject(j, "description", s->description) != NULL;
    ok = ok && add(j, "funnel", weights_json(s->funnel, sim_step_names, SIM_NSTEPS));
    ok =
        ok && add(j, "paymentMethods", weights_json(s->payments, sim_payment_names, SIM_NPAYMENTS));
    ok = ok && add(j, "devices", weights_json(s->devices, sim_device_names, SIM_NDEVICES));
    ok = ok && add(j, "countries", weights_json(s->countries, sim_country_codes, SIM_NCOUNTRIES));
    ok = ok && add(j, "sources", weights_json(s->sources, source_names, SIM_NSOURCES));
    ok = ok && cJSON_AddNumberToObject(j, "returningShare", s->returning_share) != NULL;
    if (s->catalog)
        ok = ok && add(j, "catalog", catalog_json(s->catalog, s->products));
    else
        ok = ok && cJSON_AddNumberToObject(j, "products", s->products) != NULL;
    cJSON *ovs = ok ? cJSON_CreateArray() : NULL;
    ok = ok && add(j, "overrides", ovs);
    for (size_t i = 0; ok && i < s->noverrides; i++) {
        cJSON *o = override_json(&s->overrides[i]);
        ok = o && cJSON_AddItemToArray(ovs, o);
        if (!ok)
            cJSON_Delete(o);
    }
    cJSON *efs = ok && s->neffects ? cJSON_CreateArray() : NULL;
    ok = ok && (!s->neffects || add(j, "effects", efs));
    for (size_t i = 0; ok && i < s->neffects; i++) {
        cJSON *o = effect_json(&s->effects[i]);
        ok = o && cJSON_AddItemToArray(efs, o);
        if (!ok)
            cJSON_Delete(o);
    }
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}
