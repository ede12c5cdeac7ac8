/*
 * test_engine.c — the flag engine without I/O: the published bucketing vectors, uniformity
 * (chi-square over 100 buckets, 1,000,000 ids), variant shares, monotone ramps, the store
 * holdout, targeting rules, reasons, the validator's messages and the OFREP context reader.
 *
 * Invariants the tests hold the engine to:
 *  1. pe_flags_hash is SHA-256("salt:unit") read as two big-endian uint32 words — the vectors
 *     below are in README.md and were computed with Python's hashlib, independently.
 *  2. Buckets are uniform and variants follow their weights within sampling error.
 *  3. Raising the rollout keeps every unit that was in; the variant does not depend on it.
 *  4. The holdout takes its share of units for every autopilot flag, the same units for each.
 *  5. What the validator accepts compiles (the API and the compiled set agree): numbers that
 *     are not finite, keys given twice in a value and values nested too deep are refused with
 *     the path; and a set with one flag that does not compile still loads, that flag
 *     quarantined (an ERROR, never a variant) and every other flag as usual.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/flags.h"
#include "pe_test.h"

/* scipy.stats.chi2.ppf(0.999, 99) = 148.2303591651 (df = 100 buckets − 1, α = 0.001). */
#define CHI2_CRIT_99_0001 148.2303591651

#define N_UNITS 1000000

static pe_flag_set_t *set_of(const char *flags_json, unsigned holdout)
{
    char *doc = NULL;
    if (asprintf(&doc,
                 "{\"storeId\":\"s1\",\"version\":7,\"holdout\":{\"percentage\":%u,\"salt\":"
                 "\"hold\"},\"flags\":[%s]}",
                 holdout, flags_json) < 0)
        fail_msg("asprintf");
    pe_flag_set_t *s = pe_flags_set_from_json(doc, strlen(doc));
    free(doc);
    assert_non_null(s);
    return s;
}

static char *flag_json(const char *key, const char *kind, unsigned rollout, const char *variants,
                       const char *rules)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"key\":\"%s\",\"kind\":\"%s\",\"enabled\":true,\"rolloutPercentage\":%u,"
                 "\"salt\":\"salt-%s\",\"version\":1,\"variants\":%s,\"rules\":%s}",
                 key, kind, rollout, key, variants, rules ? rules : "[]") < 0)
        fail_msg("asprintf");
    return out;
}

static const char *const V5050 = "[{\"key\":\"control\",\"value\":false,\"weight\":50},"
                                 "{\"key\":\"treatment\",\"value\":true,\"weight\":50}]";

static void unit_id(long i, char out[48])
{
    /* distinct, uuid-shaped ids */
    snprintf(out, 48, "%08lx-%04lx-4000-8000-%012lx",
             (unsigned long)(i * 2654435761UL) & 0xffffffffUL, (unsigned long)i & 0xffffUL,
             (unsigned long)i);
}

static void test_hash_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *salt, *unit;
        uint32_t v, r;
    } V[] = {
        {"salt", "user-1", 3196192743u, 2181606323u},
        {"free-shipping-banner", "visitor-42", 3911384453u, 543342136u},
        {"8b2df4ca2bb07539", "u1", 2169592004u, 1877799382u},
        {"holdout", "0b07f6dc-8b7e-4c27-843b-440986dd78f2", 1068022876u, 1203414157u},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(V); i++) {
        uint32_t u[2];
        pe_flags_hash(V[i].salt, V[i].unit, u);
        assert_int_equal(u[0], V[i].v);
        assert_int_equal(u[1], V[i].r);
    }
    /* bucket 74 of 100: treatment of a 50/50 split; rollout bucket 50: in at 51 %, out at 50 % */
    assert_false(pe_flags_in_percent(3196192743u, 74));
    assert_true(pe_flags_in_percent(3196192743u, 75));
    assert_false(pe_flags_in_percent(2181606323u, 50));
    assert_true(pe_flags_in_percent(2181606323u, 51));
    assert_false(pe_flags_in_percent(0, 0));
    assert_true(pe_flags_in_percent(UINT32_MAX, 100));
}

static void test_uniform_chi_square(void **state)
{
    (void)state;
    long counts[100] = {0};
    char id[48];
    for (long i = 0; i < N_UNITS; i++) {
        uint32_t u[2];
        unit_id(i, id);
        pe_flags_hash("uniformity", id, u);
        counts[((uint64_t)u[0] * 100) >> 32]++;
    }
    double expected = N_UNITS / 100.0, chi2 = 0;
    for (int b = 0; b < 100; b++)
        chi2 += (counts[b] - expected) * (counts[b] - expected) / expected;
    if (chi2 >= CHI2_CRIT_99_0001)
        fail_msg("chi-square %.2f rejects uniformity at alpha 0.001 (critical %.2f)", chi2,
                 CHI2_CRIT_99_0001);
}

static void test_variant_shares_and_ramp(void **state)
{
    (void)state;
    static const char *const V3 = "[{\"key\":\"a\",\"value\":\"A\",\"weight\":20},"
                                  "{\"key\":\"b\",\"value\":\"B\",\"weight\":30},"
                                  "{\"key\":\"c\",\"value\":\"C\",\"weight\":50}]";
    char *f10 = flag_json("exp", "experiment", 10, V3, NULL);
    char *f20 = flag_json("exp", "experiment", 20, V3, NULL);
    char *f100 = flag_json("exp", "experiment", 100, V3, NULL);
    pe_flag_set_t *s10 = set_of(f10, 0), *s20 = set_of(f20, 0), *s100 = set_of(f100, 0);
    const pe_flag_t *a = pe_flags_set_find(s10, "exp"), *b = pe_flags_set_find(s20, "exp"),
                    *c = pe_flags_set_find(s100, "exp");
    long in10 = 0, in20 = 0, shares[3] = {0};
    const long n = 200000;
    char id[48];
    for (long i = 0; i < n; i++) {
        pe_flag_context_t ctx = {.targeting_key = id};
        pe_flag_eval_t e10, e20, e100;
        unit_id(i, id);
        pe_flags_evaluate(s10, a, &ctx, &e10);
        pe_flags_evaluate(s20, b, &ctx, &e20);
        pe_flags_evaluate(s100, c, &ctx, &e100);
        assert_int_equal(e100.reason, PE_FLAG_REASON_SPLIT);
        shares[e100.variant]++;
        if (e10.reason == PE_FLAG_REASON_SPLIT) {
            in10++;
            /* monotone: in at 10 % means in at 20 %, with the same variant */
            assert_int_equal(e20.reason, PE_FLAG_REASON_SPLIT);
            assert_int_equal(e20.variant, e10.variant);
            assert_int_equal(e100.variant, e10.variant);
        } else {
            assert_int_equal(e10.reason, PE_FLAG_REASON_DEFAULT);
            assert_int_equal(e10.variant, 0); /* the default variant */
        }
        in20 += e20.reason == PE_FLAG_REASON_SPLIT;
    }
    /* shares within 5 binomial standard errors */
    double w[3] = {0.2, 0.3, 0.5};
    for (int k = 0; k < 3; k++) {
        double sd = sqrt(n * w[k] * (1 - w[k]));
        if (fabs(shares[k] - n * w[k]) > 5 * sd)
            fail_msg("variant %d: %ld of %ld, expected %.0f", k, shares[k], n, n * w[k]);
    }
    assert_true(fabs(in10 - 0.1 * n) < 5 * sqrt(n * 0.09));
    assert_true(fabs(in20 - 0.2 * n) < 5 * sqrt(n * 0.16));
    pe_flags_set_release(s10);
    pe_flags_set_release(s20);
    pe_flags_set_release(s100);
    free(f10);
    free(f20);
    free(f100);
}

static void test_holdout(void **state)
{
    (void)state;
    char *a1 = flag_json("auto-1", "autopilot", 100, V5050, NULL);
    char *a2 = flag_json("auto-2", "autopilot", 100, V5050, NULL);
    char *ex = flag_json("exp", "experiment", 100, V5050, NULL);
    char *all = NULL;
    assert_true(asprintf(&all, "%s,%s,%s", a1, a2, ex) > 0);
    pe_flag_set_t *s = set_of(all, 5);
    const pe_flag_t *f1 = pe_flags_set_find(s, "auto-1"), *f2 = pe_flags_set_find(s, "auto-2"),
                    *fe = pe_flags_set_find(s, "exp");
    long held = 0;
    const long n = 200000;
    char id[48];
    for (long i = 0; i < n; i++) {
        pe_flag_context_t ctx = {.targeting_key = id};
        pe_flag_eval_t e1, e2, ee;
        unit_id(i, id);
        pe_flags_evaluate(s, f1, &ctx, &e1);
        pe_flags_evaluate(s, f2, &ctx, &e2);
        pe_flags_evaluate(s, fe, &ctx, &ee);
        assert_int_equal(e1.holdout, e2.holdout); /* the same units for every autopilot flag */
        assert_false(ee.holdout);                 /* experiments are not held out */
        assert_int_equal(ee.reason, PE_FLAG_REASON_SPLIT);
        if (e1.holdout) {
            held++;
            assert_int_equal(e1.variant, 0);
            assert_int_equal(e1.reason, PE_FLAG_REASON_DEFAULT);
            assert_true(e1.exposure);
        }
    }
    assert_true(fabs(held - 0.05 * n) < 5 * sqrt(n * 0.05 * 0.95));
    pe_flags_set_release(s);
    free(a1);
    free(a2);
    free(ex);
    free(all);
}

static void test_rules_and_reasons(void **state)
{
    (void)state;
    char *f = flag_json(
        "rules", "experiment", 100, V5050,
        "[{\"conditions\":[{\"attribute\":\"custom.plan\",\"operator\":\"in\",\"values\":[\"vip\"]}"
        "],"
        "\"variant\":\"treatment\"},"
        "{\"conditions\":[{\"attribute\":\"device\",\"operator\":\"in\",\"values\":[\"mobile\"]},"
        "{\"attribute\":\"country\",\"operator\":\"not_in\",\"values\":[\"FR\"]},"
        "{\"attribute\":\"path\",\"operator\":\"starts_with\",\"values\":[\"/checkout\"]}]},"
        "{\"conditions\":[{\"attribute\":\"custom.cart\",\"operator\":\"gte\",\"values\":[100]},"
        "{\"attribute\":\"customer\",\"operator\":\"in\",\"values\":[\"returning\"]}]}]");
    char *off =
        flag_json("off", "release", 100, "[{\"key\":\"on\",\"value\":\"x\",\"weight\":100}]", NULL);
    char *all = NULL;
    assert_true(asprintf(&all, "%s,%s", f, off) > 0);
    pe_flag_set_t *s = set_of(all, 0);
    const pe_flag_t *r = pe_flags_set_find(s, "rules");
    pe_flag_eval_t e;
    cJSON *vip = cJSON_CreateString("vip"), *cart = cJSON_CreateNumber(150);

    pe_flag_context_t ctx = {.targeting_key = "u1", .ncustom = 1};
    ctx.custom_names[0] = "plan";
    ctx.custom_values[0] = vip;
    pe_flags_evaluate(s, r, &ctx, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_TARGETING_MATCH);
    assert_string_equal(pe_flags_variant_key(r, e.variant), "treatment");
    assert_false(e.exposure);

    /* filter rules exist and none matches: DEFAULT */
    pe_flag_context_t none = {.targeting_key = "u1", .device = "desktop"};
    pe_flags_evaluate(s, r, &none, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_DEFAULT);
    assert_int_equal(e.variant, 0);

    /* the filter matches: the split (country compares case-insensitively; absent ≠ FR is no
     * match, so a country is given) */
    pe_flag_context_t mob = {
        .targeting_key = "u1", .device = "mobile", .country = "us", .path = "/checkout/shipping"};
    pe_flags_evaluate(s, r, &mob, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_SPLIT);
    assert_true(e.exposure);
    mob.country = "fr";
    pe_flags_evaluate(s, r, &mob, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_DEFAULT);
    mob.country = NULL; /* a condition on an absent attribute never matches */
    pe_flags_evaluate(s, r, &mob, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_DEFAULT);

    pe_flag_context_t num = {.targeting_key = "u1", .customer = "returning", .ncustom = 1};
    num.custom_names[0] = "cart";
    num.custom_values[0] = cart;
    pe_flags_evaluate(s, r, &num, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_SPLIT);
    cart->valuedouble = 99;
    pe_flags_evaluate(s, r, &num, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_DEFAULT);

    /* a bucket needed and no targeting key */
    pe_flag_context_t anon = {.device = "mobile", .country = "US", .path = "/checkout"};
    pe_flags_evaluate(s, r, &anon, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_ERROR);
    assert_string_equal(e.error_code, "TARGETING_KEY_MISSING");
    /* one variant at 100 %: no key needed */
    pe_flags_evaluate(s, pe_flags_set_find(s, "off"), &anon, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_STATIC);
    size_t len = 0;
    assert_string_equal(pe_flags_variant_value(pe_flags_set_find(s, "off"), e.variant, &len),
                        "\"x\"");
    assert_null(pe_flags_set_find(s, "missing"));
    assert_int_equal(pe_flags_set_version(s), 7);

    cJSON_Delete(vip);
    cJSON_Delete(cart);
    pe_flags_set_release(s);
    free(f);
    free(off);
    free(all);

    /* disabled */
    char *d = strdup("{\"key\":\"d\",\"kind\":\"experiment\",\"enabled\":false,\"salt\":\"x\","
                     "\"version\":1,\"variants\":[{\"key\":\"control\",\"value\":false,"
                     "\"weight\":50},{\"key\":\"treatment\",\"value\":true,\"weight\":50}]}");
    pe_flag_set_t *ds = set_of(d, 0);
    pe_flags_evaluate(ds, pe_flags_set_find(ds, "d"), &ctx, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_DISABLED);
    assert_int_equal(e.variant, 0);
    pe_flags_set_release(ds);
    free(d);
}

static void expect_refusal(const char *json, const char *message)
{
    cJSON *j = cJSON_Parse(json), *canon = NULL;
    pe_refusal_t err;
    assert_non_null(j);
    int rc = pe_flags_validate(j, false, &canon, &err);
    if (rc != PE_EINVAL || strcmp(err.message, message) != 0)
        fail_msg("%s\n  got rc %d: %s\n  want: %s", json, rc, err.message, message);
    assert_null(canon);
    cJSON_Delete(j);
}

static void test_validation_names_the_field(void **state)
{
    (void)state;
    expect_refusal("{\"variants\":[]}", "key: required");
    expect_refusal("{\"key\":\"Bad Key\",\"variants\":[]}",
                   "key: must match [a-z0-9][a-z0-9._-]{0,127}");
    expect_refusal("{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"value\":1,\"weight\":50},"
                   "{\"key\":\"b\",\"value\":2,\"weight\":150}]}",
                   "variants[1].weight: must be an integer 0..100");
    expect_refusal("{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"value\":1,\"weight\":50},"
                   "{\"key\":\"b\",\"value\":2,\"weight\":40}]}",
                   "variants: weights must sum to 100 (they sum to 90)");
    expect_refusal("{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"value\":1,\"weight\":50},"
                   "{\"key\":\"a\",\"value\":2,\"weight\":50}]}",
                   "variants[1].key: duplicate of variants[0].key");
    expect_refusal("{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"value\":1,\"weight\":50},"
                   "{\"key\":\"b\",\"value\":\"2\",\"weight\":50}]}",
                   "variants[1].value: must be a number like variants[0].value");
    expect_refusal("{\"key\":\"k\",\"rolloutPercentage\":101,\"variants\":[]}",
                   "rolloutPercentage: must be an integer 0..100");
    expect_refusal("{\"key\":\"k\",\"kind\":\"ab\",\"variants\":[]}",
                   "kind: must be release, experiment or autopilot");
    expect_refusal("{\"key\":\"k\",\"colour\":1}", "colour: unknown field");
    expect_refusal("{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"value\":1,\"weight\":100}],"
                   "\"rules\":[{\"conditions\":[{\"attribute\":\"device\",\"operator\":\"in\","
                   "\"values\":[\"phone\"]}]}]}",
                   "rules[0].conditions[0].values[0]: must be desktop, mobile, tablet or other");
    expect_refusal("{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"value\":1,\"weight\":100}],"
                   "\"rules\":[{\"conditions\":[{\"attribute\":\"device\",\"operator\":\"gt\","
                   "\"values\":[1]}]}]}",
                   "rules[0].conditions[0].operator: gt does not apply to device");
    expect_refusal("{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"value\":1,\"weight\":100}],"
                   "\"rules\":[{\"conditions\":[{\"attribute\":\"path\",\"operator\":\"in\","
                   "\"values\":[\"/x\"]}],\"variant\":\"zz\"}]}",
                   "rules[0].variant: no variant named 'zz'");
    expect_refusal("{\"key\":\"k\",\"defaultVariant\":\"q\",\"variants\":[{\"key\":\"a\","
                   "\"value\":1,\"weight\":100}]}",
                   "defaultVariant: no variant named 'q'");

    /* the canonical form fills defaults, in a fixed order */
    cJSON *j = cJSON_Parse("{\"variants\":[{\"weight\":100,\"value\":true,\"key\":\"on\"}],"
                           "\"key\":\"free-shipping-banner\"}"),
          *canon = NULL;
    pe_refusal_t err;
    assert_int_equal(pe_flags_validate(j, false, &canon, &err), 0);
    char *text = cJSON_PrintUnformatted(canon);
    assert_string_equal(text, "{\"key\":\"free-shipping-banner\",\"description\":\"\",\"kind\":"
                              "\"release\",\"enabled\":false,\"rolloutPercentage\":100,"
                              "\"variants\":[{\"key\":\"on\",\"value\":true,\"weight\":100}],"
                              "\"defaultVariant\":\"on\",\"rules\":[]}");
    free(text);
    cJSON_Delete(canon);
    cJSON_Delete(j);
}

/* A value nested depth levels ({"a":{"a":…1…}}), malloc'ed. */
static char *nested_value(int depth)
{
    pe_buf_t b = PE_BUF_INIT;
    for (int i = 1; i < depth; i++)
        assert_int_equal(pe_buf_puts(&b, "{\"a\":"), 0);
    assert_int_equal(pe_buf_puts(&b, "{\"a\":1}"), 0);
    for (int i = 1; i < depth; i++)
        assert_int_equal(pe_buf_puts(&b, "}"), 0);
    return pe_buf_steal(&b);
}

/* The definition is accepted, and its canonical form (plus a salt and a version, in a set
 * document nested as the cache's is) compiles without quarantine. */
static void expect_compiles(const char *json)
{
    cJSON *j = NULL, *canon = NULL;
    pe_refusal_t err;
    char why[128];
    if (pe_json_parse(json, strlen(json), &j, why, sizeof why) != 0)
        fail_msg("%.80s: %s", json, why);
    if (pe_flags_validate(j, false, &canon, &err) != 0)
        fail_msg("%.80s: refused: %s", json, err.message);
    char *text = cJSON_PrintUnformatted(canon), *doc = NULL;
    assert_non_null(text);
    size_t n = strlen(text);
    assert_true(asprintf(&doc,
                         "{\"storeId\":\"s\",\"version\":1,\"holdout\":{\"percentage\":5,"
                         "\"salt\":\"h\"},\"flags\":[%.*s,\"salt\":\"x\",\"version\":1}]}",
                         (int)(n - 1), text) > 0);
    pe_flag_set_t *set = pe_flags_set_from_json(doc, strlen(doc));
    assert_non_null(set);
    assert_int_equal(pe_flags_set_count(set), 1);
    assert_int_equal(pe_flags_set_quarantined(set), 0);
    assert_null(pe_flags_quarantine(pe_flags_set_at(set, 0)));
    pe_flags_set_release(set);
    free(doc);
    free(text);
    cJSON_Delete(canon);
    cJSON_Delete(j);
}

static void test_validation_agrees_with_the_compiled_set(void **state)
{
    (void)state;
    static const char *const VALUE = "{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"value\":";
    char body[512];
    /* cJSON reads 1e400 as inf and would store null: refused, with the path */
    snprintf(body, sizeof body, "%s1e400,\"weight\":100}]}", VALUE);
    expect_refusal(body, "variants[0].value: " PE_JSON_NONFINITE_RULE);
    snprintf(body, sizeof body, "%s-1e400,\"weight\":100}]}", VALUE);
    expect_refusal(body, "variants[0].value: " PE_JSON_NONFINITE_RULE);
    expect_refusal("{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"value\":{\"n\":1},"
                   "\"weight\":50},{\"key\":\"b\",\"value\":{\"m\":[0,{\"n\":1e400}]},"
                   "\"weight\":50}]}",
                   "variants[1].value.m[1].n: " PE_JSON_NONFINITE_RULE);
    expect_refusal("{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"value\":1,\"weight\":100}],"
                   "\"rules\":[{\"conditions\":[{\"attribute\":\"custom.cart\",\"operator\":"
                   "\"gt\",\"values\":[-1e400]}]}]}",
                   "rules[0].conditions[0].values[0]: " PE_JSON_NONFINITE_RULE);
    /* jsonb keeps only the last of a key given twice: refused */
    snprintf(body, sizeof body, "%s{\"x\":{\"a\":1,\"a\":2}},\"weight\":100}]}", VALUE);
    expect_refusal(body, "variants[0].value: key 'a' given twice");
    /* the set document nests a value 2 levels deeper than the request: a bound both pass */
    char *deep = nested_value(PE_FLAGS_VALUE_MAX_DEPTH + 1), *ok = nested_value(32), *def = NULL;
    assert_true(asprintf(&def, "%s%s,\"weight\":100}]}", VALUE, deep) > 0);
    expect_refusal(def, "variants[0].value: nests deeper than 32 levels");
    free(def);
    assert_true(asprintf(&def, "%s%s,\"weight\":100}]}", VALUE, ok) > 0);
    expect_compiles(def);
    free(def);
    free(deep);
    free(ok);
    /* what is accepted compiles */
    snprintf(body, sizeof body, "%s1e308,\"weight\":100}]}", VALUE);
    expect_compiles(body);
    snprintf(body, sizeof body, "%s{\"n\":1e-400,\"s\":\"1e400\"},\"weight\":100}]}", VALUE);
    expect_compiles(body);
}

/* Flags as an older build or a hand edit may have stored them, next to good ones. */
static void test_bad_flag_is_quarantined(void **state)
{
    (void)state;
    char *good =
        flag_json("good", "release", 100, "[{\"key\":\"on\",\"value\":true,\"weight\":100}]", NULL);
    char *exp = flag_json("exp", "experiment", 100, V5050, NULL);
    static const char KILLED[] =
        "{\"key\":\"killed\",\"enabled\":false,\"salt\":\"s\",\"version\":4,\"variants\":"
        "[{\"key\":\"off\",\"value\":false,\"weight\":0},{\"key\":\"on\",\"value\":true,"
        "\"weight\":100}],\"defaultVariant\":\"off\"}";
    /* 1e400 as PostgreSQL holds it after cJSON printed it: null */
    static const char BAD[] =
        "{\"key\":\"bad\",\"enabled\":true,\"salt\":\"s\",\"version\":3,\"variants\":"
        "[{\"key\":\"on\",\"value\":null,\"weight\":100}]}";
    static const char NO_SALT[] = "{\"key\":\"no-salt\",\"enabled\":true,\"version\":1,"
                                  "\"variants\":[{\"key\":\"on\",\"value\":1,\"weight\":100}]}";
    static const char NO_KEY[] = "{\"enabled\":true,\"salt\":\"s\",\"version\":1,"
                                 "\"variants\":[{\"key\":\"on\",\"value\":1,\"weight\":100}]}";
    char *dup1 =
        flag_json("dup", "release", 100, "[{\"key\":\"on\",\"value\":true,\"weight\":100}]", NULL);
    char *flags = NULL;
    assert_true(asprintf(&flags, "%s,%s,%s,%s,%s,%s,%s,%s", BAD, good, KILLED, NO_SALT, exp, NO_KEY,
                         dup1, dup1) > 0);
    pe_flag_set_t *s = set_of(flags, 0);
    /* bad, no-salt and dup are kept as quarantined entries; the flag without a key is left out */
    assert_int_equal(pe_flags_set_count(s), 6);
    assert_int_equal(pe_flags_set_quarantined(s), 4);
    pe_flag_context_t ctx = {.targeting_key = "u1"};
    pe_flag_eval_t e;
    static const char *const QUARANTINED[] = {"bad", "no-salt", "dup"};
    for (size_t i = 0; i < PE_ARRAY_LEN(QUARANTINED); i++) {
        const pe_flag_t *f = pe_flags_set_find(s, QUARANTINED[i]);
        assert_non_null(f);
        assert_non_null(pe_flags_quarantine(f));
        pe_flags_evaluate(s, f, &ctx, &e);
        assert_int_equal(e.reason, PE_FLAG_REASON_ERROR);
        assert_int_equal(e.variant, -1);
        assert_string_equal(e.error_code, "GENERAL");
        assert_non_null(e.error_details);
        assert_false(e.exposure);
        assert_null(pe_flags_variant_key(f, e.variant));
    }
    assert_string_equal(pe_flags_quarantine(pe_flags_set_find(s, "bad")),
                        "variants[0].value: must be a boolean, string, number or object");
    assert_int_equal(pe_flags_version(pe_flags_set_find(s, "bad")), 3);
    /* the others are served as usual: the kill switch holds, the rest evaluates */
    pe_flags_evaluate(s, pe_flags_set_find(s, "killed"), &ctx, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_DISABLED);
    assert_string_equal(pe_flags_variant_key(pe_flags_set_find(s, "killed"), e.variant), "off");
    pe_flags_evaluate(s, pe_flags_set_find(s, "good"), &ctx, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_STATIC);
    pe_flags_evaluate(s, pe_flags_set_find(s, "exp"), &ctx, &e);
    assert_int_equal(e.reason, PE_FLAG_REASON_SPLIT);
    assert_null(pe_flags_quarantine(pe_flags_set_find(s, "exp")));
    /* still sorted by key, for the lookups */
    for (size_t i = 1; i < pe_flags_set_count(s); i++)
        assert_true(strcmp(pe_flags_key(pe_flags_set_at(s, i - 1)),
                           pe_flags_key(pe_flags_set_at(s, i))) < 0);
    pe_flags_set_release(s);
    free(flags);
    free(dup1);
    free(exp);
    free(good);
}

static void test_context(void **state)
{
    (void)state;
    pe_flag_context_t ctx;
    char err[128];
    cJSON *c = cJSON_Parse("{\"targetingKey\":\"u\",\"device\":\"mobile\",\"plan\":\"vip\","
                           "\"cart\":3,\"tags\":[1],\"vip\":true}");
    assert_int_equal(pe_flags_context_parse(c, &ctx, err, sizeof err), 0);
    assert_string_equal(ctx.targeting_key, "u");
    assert_string_equal(ctx.device, "mobile");
    assert_int_equal(ctx.ncustom, 3); /* plan, cart, vip; arrays ignored */
    cJSON_Delete(c);
    c = cJSON_Parse("{\"targetingKey\":5}");
    assert_int_equal(pe_flags_context_parse(c, &ctx, err, sizeof err), PE_EINVAL);
    assert_string_equal(err, "targetingKey: must be a string of 1..256 bytes");
    cJSON_Delete(c);
    assert_int_equal(pe_flags_context_parse(NULL, &ctx, err, sizeof err), 0);
    assert_null(ctx.targeting_key);
}

static void test_exposure_id(void **state)
{
    (void)state;
    char a[37], b[37], c[37];
    pe_flags_exposure_id("s", "f", "u", 20000, a);
    pe_flags_exposure_id("s", "f", "u", 20000, b);
    pe_flags_exposure_id("s", "f", "u", 20001, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '8'); /* version 8 */
}

static void test_bad_documents_refused(void **state)
{
    (void)state;
    static const char *const BAD[] = {
        "",
        "{}",
        "{\"storeId\":\"s\",\"version\":1,\"holdout\":{\"percentage\":5,\"salt\":\"x\"}}",
        /* an envelope that is broken: the whole set is refused (a bad flag is only quarantined,
         * test_bad_flag_is_quarantined) */
        "{\"storeId\":\"s\",\"version\":\"1\",\"holdout\":{\"percentage\":5,\"salt\":\"x\"},"
        "\"flags\":[]}",
        "{\"storeId\":\"s\",\"version\":1,\"holdout\":{\"percentage\":51,\"salt\":\"x\"},"
        "\"flags\":[]}",
        "{\"storeId\":\"s\",\"version\":1,\"holdout\":{\"percentage\":5,\"salt\":\"x\"},"
        "\"flags\":{}}",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(BAD); i++)
        assert_null(pe_flags_set_from_json(BAD[i], strlen(BAD[i])));
}

int main(void)
{
    assert_int_equal(pe_crypto_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_uniform_chi_square),
        cmocka_unit_test(test_variant_shares_and_ramp),
        cmocka_unit_test(test_holdout),
        cmocka_unit_test(test_rules_and_reasons),
        cmocka_unit_test(test_validation_names_the_field),
        cmocka_unit_test(test_validation_agrees_with_the_compiled_set),
        cmocka_unit_test(test_bad_flag_is_quarantined),
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_exposure_id),
        cmocka_unit_test(test_bad_documents_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
