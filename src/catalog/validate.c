/*
 * validate.c — the product validator: checks a bulk-upsert body field by field and builds the
 * canonical array that store.c hands to PostgreSQL.
 *
 * Invariants:
 *  1. Pure: no I/O, no globals, no allocation except the canonical array; thread-safe.
 *  2. The first failing field is reported, in document order, as "products[i].field: …"; the
 *     message is NUL-terminated and at most 255 bytes, and a refusal leaves *canonical NULL.
 *  3. What passes here passes the CHECKs of 0004_catalog.sql: the same byte bounds, the same
 *     control characters (C0, DEL and the C1 range U+0080..U+009F), the same numeric ranges.
 *  4. The canonical array has, per product, exactly the keys sku, name, category, price, cost,
 *     stock, currency, in that order, with null for the optional ones the client left out.
 *  5. A number that is not finite (cJSON reads 1e400 as inf and would store null) is refused
 *     with the one rule of pe/core.h: out_of_range, "products[i].field: must be a finite
 *     number …".
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pe/catalog.h"

/* The client's key, at most 64 bytes, cut at a UTF-8 boundary (messages stay valid UTF-8). */
static void key_excerpt(const char *key, char out[65])
{
    size_t n = strlen(key);
    if (n > 64) {
        n = 64;
        while (n > 0 && ((unsigned char)key[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, key, n);
    out[n] = '\0';
}

static int check_text(const cJSON *v, size_t i, const char *field, size_t max, pe_refusal_t *err)
{
    if (!cJSON_IsString(v) || !v->valuestring)
        return pe_refuse(err, PE_EINVAL, "invalid_type", "products[%zu].%s: must be a string", i,
                         field);
    size_t n = strlen(v->valuestring);
    if (n == 0)
        return pe_refuse(err, PE_EINVAL, "invalid_format", "products[%zu].%s: must not be empty", i,
                         field);
    if (n > max)
        return pe_refuse(err, PE_EINVAL, "too_long", "products[%zu].%s: longer than %zu bytes", i,
                         field, max);
    if (!pe_utf8_valid(v->valuestring, n))
        return pe_refuse(err, PE_EINVAL, "invalid_format", "products[%zu].%s: not valid UTF-8", i,
                         field);
    if (pe_text_has_control(v->valuestring, n))
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "products[%zu].%s: " PE_TEXT_CONTROL_RULE, i, field);
    return 0;
}

static int check_money(const cJSON *v, size_t i, const char *field, pe_refusal_t *err)
{
    if (!cJSON_IsNumber(v))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "products[%zu].%s: must be a number", i,
                         field);
    double d = v->valuedouble;
    if (!isfinite(d)) /* invariant 5 */
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "products[%zu].%s: " PE_JSON_NONFINITE_RULE, i, field);
    if (d > PE_CATALOG_MONEY_MAX)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "products[%zu].%s: must be <= 1000000000",
                         i, field);
    if (d < 0)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "products[%zu].%s: must be >= 0", i,
                         field);
    return 0;
}

static int check_stock(const cJSON *v, size_t i, pe_refusal_t *err)
{
    if (cJSON_IsNumber(v) && !isfinite(v->valuedouble)) /* invariant 5 */
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "products[%zu].stock: " PE_JSON_NONFINITE_RULE, i);
    if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble)
        return pe_refuse(err, PE_EINVAL, "invalid_type", "products[%zu].stock: must be an integer",
                         i);
    if (v->valuedouble < 0 || v->valuedouble > PE_CATALOG_STOCK_MAX)
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "products[%zu].stock: must be an integer 0..%d", i, PE_CATALOG_STOCK_MAX);
    return 0;
}

static int check_currency(const cJSON *v, size_t i, pe_refusal_t *err)
{
    if (!cJSON_IsString(v) || !v->valuestring)
        return pe_refuse(err, PE_EINVAL, "invalid_type", "products[%zu].currency: must be a string",
                         i);
    const char *s = v->valuestring;
    if (strlen(s) != 3 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' || s[2] < 'A' ||
        s[2] > 'Z')
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "products[%zu].currency: must be an ISO 4217 code (3 upper-case letters)",
                         i);
    return 0;
}

enum { F_SKU, F_NAME, F_CATEGORY, F_PRICE, F_COST, F_STOCK, F_CURRENCY, F_COUNT };
static const char *const FIELDS[F_COUNT] = {"sku",  "name",  "category", "price",
                                            "cost", "stock", "currency"};

/* Checks products[i]; on success adds its canonical form to out (when out is non-NULL). */
static int check_product(const cJSON *p, size_t i, cJSON *out, pe_refusal_t *err)
{
    const cJSON *f[F_COUNT] = {NULL};
    if (!cJSON_IsObject(p))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "products[%zu]: must be an object", i);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, p)
    {
        size_t k = 0;
        while (k < F_COUNT && strcmp(kv->string, FIELDS[k]) != 0)
            k++;
        if (k == F_COUNT) {
            char key[65];
            key_excerpt(kv->string, key);
            return pe_refuse(err, PE_EINVAL, "unknown_field", "products[%zu].%s: unknown field", i,
                             key);
        }
        if (f[k])
            return pe_refuse(err, PE_EINVAL, "invalid_format", "products[%zu].%s: given twice", i,
                             FIELDS[k]);
        f[k] = kv;
    }
    static const size_t max[] = {PE_CATALOG_SKU_MAX, PE_CATALOG_LABEL_MAX, PE_CATALOG_LABEL_MAX};
    for (int k = F_SKU; k <= F_PRICE; k++)
        if (!f[k])
            return pe_refuse(err, PE_EINVAL, "missing_field", "products[%zu].%s: is required", i,
                             FIELDS[k]);
    int rc;
    for (int k = F_SKU; k <= F_CATEGORY; k++)
        if ((rc = check_text(f[k], i, FIELDS[k], max[k], err)) != 0)
            return rc;
    if ((rc = check_money(f[F_PRICE], i, "price", err)) != 0)
        return rc;
    if (f[F_COST] && !cJSON_IsNull(f[F_COST]) && (rc = check_money(f[F_COST], i, "cost", err)) != 0)
        return rc;
    if (f[F_STOCK] && !cJSON_IsNull(f[F_STOCK]) && (rc = check_stock(f[F_STOCK], i, err)) != 0)
        return rc;
    if (f[F_CURRENCY] && !cJSON_IsNull(f[F_CURRENCY]) &&
        (rc = check_currency(f[F_CURRENCY], i, err)) != 0)
        return rc;
    if (!out)
        return 0;

    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(out, o))
        goto nomem_o;
    for (int k = 0; k < F_COUNT; k++) {
        cJSON *v = f[k] && !cJSON_IsNull(f[k]) ? cJSON_Duplicate(f[k], false) : cJSON_CreateNull();
        if (!v)
            return PE_ENOMEM;
        if (!cJSON_AddItemToObject(o, FIELDS[k], v)) {
            cJSON_Delete(v);
            return PE_ENOMEM;
        }
    }
    return 0;
nomem_o:
    cJSON_Delete(o);
    return PE_ENOMEM;
}

int pe_catalog_validate(const cJSON *products, cJSON **canonical, pe_refusal_t *err)
{
    int rc = PE_ENOMEM;
    cJSON *out = NULL;
    memset(err, 0, sizeof *err);
    if (canonical)
        *canonical = NULL;
    if (!cJSON_IsArray(products)) {
        rc = pe_refuse(err, PE_EINVAL, "invalid_type", "products: must be an array");
        goto out;
    }
    int n = cJSON_GetArraySize(products);
    if (n == 0) {
        rc = pe_refuse(err, PE_EINVAL, "out_of_range", "products: must hold at least one product");
        goto out;
    }
    if (n > PE_CATALOG_MAX_PRODUCTS) {
        rc = pe_refuse(err, PE_ETOOBIG, "too_many", "products: %d products; at most %d per request",
                       n, PE_CATALOG_MAX_PRODUCTS);
        goto out;
    }
    if (canonical && !(out = cJSON_CreateArray()))
        goto out;
    size_t i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, products)
    {
        if ((rc = check_product(p, i, out, err)) != 0)
            goto out;
        /* A SKU twice in one statement cannot be upserted (and would be ambiguous anyway).
         * Quadratic, but over at most 1000 short strings of already-checked input. */
        const char *sku = cJSON_GetObjectItemCaseSensitive(p, "sku")->valuestring;
        size_t j = 0;
        const cJSON *q;
        cJSON_ArrayForEach(q, products)
        {
            if (j >= i)
                break;
            if (strcmp(cJSON_GetObjectItemCaseSensitive(q, "sku")->valuestring, sku) == 0) {
                rc = pe_refuse(err, PE_EINVAL, "duplicate",
                               "products[%zu].sku: the same SKU as products[%zu]", i, j);
                goto out;
            }
            j++;
        }
        i++;
    }
    if (canonical) {
        *canonical = out;
        out = NULL;
    }
    rc = 0;
out:
    cJSON_Delete(out);
    if (rc == PE_ENOMEM)
        pe_refuse(err, PE_ENOMEM, "internal_error", "products: out of memory");
    return rc;
}

int pe_catalog_validate_body(const cJSON *body, cJSON **canonical, pe_refusal_t *err)
{
    memset(err, 0, sizeof *err);
    if (canonical)
        *canonical = NULL;
    if (!cJSON_IsObject(body))
        return pe_refuse(err, PE_EINVAL, "invalid_type",
                         "body: must be an object {\"products\":[…]}");
    const cJSON *kv, *products = NULL;
    cJSON_ArrayForEach(kv, body)
    {
        if (strcmp(kv->string, "products") != 0) {
            char key[65];
            key_excerpt(kv->string, key);
            return pe_refuse(err, PE_EINVAL, "unknown_field", "%s: unknown field", key);
        }
        if (products)
            return pe_refuse(err, PE_EINVAL, "invalid_format", "products: given twice");
        products = kv;
    }
    if (!products)
        return pe_refuse(err, PE_EINVAL, "missing_field", "products: is required");
    return pe_catalog_validate(products, canonical, err);
}
