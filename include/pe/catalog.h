/*
 * pe/catalog.h — a store's product catalogue: what it sells (SKU, name, category), at what price
 * and cost, and how much is in stock. Validated in memory with messages that name the field
 * ("products[3].price: must be >= 0"), written in bulk (all or nothing), read back a page at a
 * time.
 *
 * Invariants:
 *  1. Every statement filters by store_id: a store reads and writes only its own products.
 *  2. A bulk upsert is all or nothing: one invalid product refuses the whole request before any
 *     connection is taken, and the valid ones are written by one statement in one transaction.
 *  3. Validation is pure, bounded and thread-safe; its verdicts agree with the CHECKs of
 *     sql/migrations/0004_catalog.sql, so valid input never meets a database refusal.
 *  4. Money keeps the decimal the client wrote: prices travel as JSON numbers into PostgreSQL
 *     numeric and come back as numeric text, never through a rounding step of ours.
 *  5. All functions are thread-safe (pooled connections only).
 */
#ifndef PE_CATALOG_H
#define PE_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "pe/core.h"
#include "pe/db.h"

#define PE_CATALOG_MAX_PRODUCTS 1000 /* per bulk upsert */
#define PE_CATALOG_MAX_BODY     (2u * 1024 * 1024)
#define PE_CATALOG_SKU_MAX      128 /* bytes of UTF-8 */
#define PE_CATALOG_LABEL_MAX    256 /* name, category */
/* The gross margin assumed for what the catalogue has no cost for: the funnel doctor's store
 * margin when too few costs are known (src/doctor/run.c), an experiment's cost of goods for a
 * line of unknown cost (src/experiments/results.c). */
#define PE_CATALOG_DEFAULT_MARGIN 0.30
#define PE_CATALOG_MONEY_MAX      1e9
#define PE_CATALOG_STOCK_MAX      1000000000
#define PE_CATALOG_PAGE_DEFAULT   100
#define PE_CATALOG_PAGE_MAX       500

/* Refusals (pe_refusal_t) name the path ("products[3].price: must be >= 0"). Codes:
 * missing_field, invalid_type, out_of_range, too_long, unknown_field, invalid_format (empty or
 * control characters, a key given twice, a bad currency), duplicate (a SKU twice in one
 * request), too_many (more than PE_CATALOG_MAX_PRODUCTS). */

/* Validates a bulk-upsert body {"products":[…]} (no other keys; 1..PE_CATALOG_MAX_PRODUCTS
 * products). Each product: "sku" (1..128 bytes), "name" and "category" (1..256 bytes; none with
 * control characters), "price" (number 0..1e9), optional "cost" (number 0..1e9 or null),
 * "stock" (integer 0..1e9 or null), "currency" (ISO 4217 upper case or null = the store's);
 * unknown keys are refused. Returns 0 and, when canonical is non-NULL, a new array of objects
 * with exactly those seven keys (absent ones as null; caller frees with cJSON_Delete); or
 * PE_EINVAL / PE_ETOOBIG (too many) with *err filled; PE_ENOMEM. Pure and thread-safe. */
int pe_catalog_validate_body(const cJSON *body, cJSON **canonical, pe_refusal_t *err);
/* The same for the products array alone (paths still read "products[i]…"). */
int pe_catalog_validate(const cJSON *products, cJSON **canonical, pe_refusal_t *err);

/* Validates and upserts products (a JSON array as above, borrowed) for store_id in one
 * transaction: a known SKU is replaced, a new one inserted. Returns 0 and *count (products
 * written), PE_EINVAL / PE_ETOOBIG with *err, PE_ENOTFOUND (no such store, or a malformed id), or
 * a database error (PE_EUNAVAIL…). Thread-safe. */
int pe_catalog_upsert(pe_db_pool_t *pool, const char *store_id, const cJSON *products,
                      size_t *count, pe_refusal_t *err);

/* One page of the list. */
typedef struct {
    const char *after;    /* list SKUs strictly after this one (bytewise), NULL = from the start */
    const char *category; /* only this category, NULL = all */
    unsigned limit;       /* 1..PE_CATALOG_PAGE_MAX; 0 = PE_CATALOG_PAGE_DEFAULT */
} pe_catalog_query_t;

/* Lists a store's products ordered by SKU (bytewise). Returns 0 and *out, a new object
 * {"products":[{"sku","name","category","price","cost","stock","currency","updatedAt"}…],
 * "nextAfter":"<sku>"|null} (nextAfter is the cursor for the next page, null on the last page;
 * caller frees with cJSON_Delete); PE_EINVAL (limit out of range, an over-long cursor or
 * category); or a database error. A malformed store id lists nothing. Thread-safe. */
int pe_catalog_list(pe_db_pool_t *pool, const char *store_id, const pe_catalog_query_t *q,
                    cJSON **out);

#endif /* PE_CATALOG_H */
