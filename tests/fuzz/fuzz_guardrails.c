/*
 * fuzz_guardrails.c — libFuzzer target for the body of PUT /api/v1/stores/{id}/guardrails and
 * POST …/guardrails/preview (pe_json_parse, then pe_guardrails_validate): the store's margin,
 * discount, stock, excluded-category and SLO-gate settings, from the merchant's browser.
 *
 * Input: the raw body, copied into an exactly-sized heap buffer so a read past its length is an
 * ASan error.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. pe_guardrails_validate returns 0 or PE_EINVAL with a non-empty code and message; a refused
 *     object names the path (its message contains ": ").
 *  2. An accepted configuration comes back canonical with every key, and the canonical form is
 *     a fixed point: validated again it is accepted and prints the same.
 *  3. Every margin and discount in the canonical form is a number 0..100 and the maps and lists
 *     hold at most PE_GUARDRAILS_MAX_ENTRIES entries.
 *
 * Builds with clang -fsanitize=fuzzer, or with any C compiler plus replay_main.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/guardrails.h"

static void check(bool ok)
{
    if (!ok)
        abort();
}

static const char *const KEYS[] = {"minMarginPct",   "categoryMinMarginPct", "productMinMarginPct",
                                   "maxDiscountPct", "minStockUnits",        "excludedCategories",
                                   "sloGates"};

/* A percentage of the canonical form: null (no limit) or a number 0..100. */
static void percent(const cJSON *v)
{
    check(!v || cJSON_IsNull(v) ||
          (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 100));
}

static void canonical_ok(const cJSON *c)
{
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++)
        check(cJSON_GetObjectItemCaseSensitive(c, KEYS[i]) != NULL);
    percent(cJSON_GetObjectItemCaseSensitive(c, "minMarginPct"));
    percent(cJSON_GetObjectItemCaseSensitive(c, "maxDiscountPct"));
    static const char *const MAPS[] = {"categoryMinMarginPct", "productMinMarginPct"};
    for (size_t m = 0; m < 2; m++) {
        const cJSON *map = cJSON_GetObjectItemCaseSensitive(c, MAPS[m]), *e;
        check(cJSON_IsObject(map) && cJSON_GetArraySize(map) <= PE_GUARDRAILS_MAX_ENTRIES);
        cJSON_ArrayForEach(e, map) percent(e);
    }
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(c, "excludedCategories");
    check(cJSON_IsArray(ex) && cJSON_GetArraySize(ex) <= PE_GUARDRAILS_MAX_ENTRIES);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cJSON *body = NULL, *canonical = NULL, *again = NULL;
    char why[128];
    if (pe_json_parse(text, size, &body, why, sizeof why) != 0)
        goto out;
    pe_refusal_t err;
    pe_refusal_clear(&err);
    int rc = pe_guardrails_validate(body, &canonical, &err);
    if (rc != 0) {
        check(rc == PE_EINVAL && err.code[0] && err.message[0]);
        check(!cJSON_IsObject(body) || strstr(err.message, ": "));
        goto out;
    }
    canonical_ok(canonical);
    check(pe_guardrails_validate(canonical, &again, &err) == 0);
    char *a = cJSON_PrintUnformatted(canonical), *b = cJSON_PrintUnformatted(again);
    check(a && b && strcmp(a, b) == 0);
    free(a);
    free(b);
out:
    cJSON_Delete(again);
    cJSON_Delete(canonical);
    cJSON_Delete(body);
    free(text);
    return 0;
}
