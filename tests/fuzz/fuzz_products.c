/*
 * fuzz_products.c — libFuzzer target for the product catalogue's bulk-upsert body: the JSON guard
 * (pe_json_parse) and pe_catalog_validate_body, the validator that stands between
 * PUT /api/v1/stores/{storeId}/products and PostgreSQL.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. The verdict is 0, PE_EINVAL or PE_ETOOBIG, and the same (code and message too) when run
 *     twice: validation is pure.
 *  2. A refusal has a code from the list in pe/catalog.h, a non-empty NUL-terminated valid-UTF-8
 *     message "<path>: …", and leaves *canonical NULL.
 *  3. An acceptance gives a canonical array with one object per product, each with exactly the
 *     keys sku, name, category, price, cost, stock, currency in that order; validating the
 *     canonical array again accepts it and gives the same canonical text (a fixed point).
 *
 * The input is copied into an exactly-sized heap buffer so a read past its end is an ASan error.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/catalog.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_products: invariant failed at line %d: %s\n", __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const CODES[] = {"missing_field", "invalid_type",   "out_of_range", "too_long",
                                    "unknown_field", "invalid_format", "duplicate",    "too_many"};
static const char *const KEYS[] = {"sku", "name", "category", "price", "cost", "stock", "currency"};

static bool known_code(const char *code)
{
    for (size_t i = 0; i < PE_ARRAY_LEN(CODES); i++)
        if (strcmp(code, CODES[i]) == 0)
            return true;
    return false;
}

static void check_refusal(const pe_refusal_t *err, const cJSON *canonical)
{
    CHECK(canonical == NULL);
    CHECK(memchr(err->code, '\0', sizeof err->code) != NULL);
    CHECK(memchr(err->message, '\0', sizeof err->message) != NULL);
    CHECK(known_code(err->code));
    size_t n = strlen(err->message);
    CHECK(n > 0 && pe_utf8_valid(err->message, n));
    CHECK(strstr(err->message, ": ") != NULL);
}

static void check_canonical(const cJSON *body, const cJSON *canonical)
{
    const cJSON *products = cJSON_GetObjectItemCaseSensitive(body, "products");
    CHECK(cJSON_IsArray(canonical));
    CHECK(cJSON_GetArraySize(canonical) == cJSON_GetArraySize(products));
    CHECK(cJSON_GetArraySize(canonical) >= 1 &&
          cJSON_GetArraySize(canonical) <= PE_CATALOG_MAX_PRODUCTS);
    const cJSON *p;
    cJSON_ArrayForEach(p, canonical)
    {
        size_t k = 0;
        for (const cJSON *kv = p->child; kv; kv = kv->next, k++)
            CHECK(k < PE_ARRAY_LEN(KEYS) && strcmp(kv->string, KEYS[k]) == 0);
        CHECK(k == PE_ARRAY_LEN(KEYS));
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "sku")));
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(p, "price")));
    }
    cJSON *again = NULL;
    pe_refusal_t err;
    int rc = pe_catalog_validate(canonical, &again, &err);
    if (rc == PE_ENOMEM)
        return;
    CHECK(rc == 0);
    char *a = cJSON_PrintUnformatted(canonical), *b = cJSON_PrintUnformatted(again);
    if (a && b)
        CHECK(strcmp(a, b) == 0);
    free(a);
    free(b);
    cJSON_Delete(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        abort();
    if (size)
        memcpy(text, data, size);
    cJSON *body = NULL;
    char why[128];
    if (pe_json_parse(text, size, &body, why, sizeof why) == 0) {
        cJSON *canonical = NULL, *canonical2 = NULL;
        pe_refusal_t err, err2;
        memset(&err, 'Z', sizeof err);
        int rc = pe_catalog_validate_body(body, &canonical, &err);
        int rc2 = pe_catalog_validate_body(body, &canonical2, &err2);
        if (rc != PE_ENOMEM && rc2 != PE_ENOMEM) {
            CHECK(rc == 0 || rc == PE_EINVAL || rc == PE_ETOOBIG);
            CHECK(rc == rc2);
            if (rc == 0)
                check_canonical(body, canonical);
            else {
                check_refusal(&err, canonical);
                CHECK(strcmp(err.code, err2.code) == 0 && strcmp(err.message, err2.message) == 0);
            }
        }
        cJSON_Delete(canonical);
        cJSON_Delete(canonical2);
    }
    cJSON_Delete(body);
    free(text);
    return 0;
}
