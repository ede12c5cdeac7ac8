/*
 * store.c — the catalogue in PostgreSQL: bulk upsert and the paginated list.
 *
 * Invariants:
 *  1. Every statement filters by store_id ($1), which is checked to be a UUID before any query.
 *  2. A bulk upsert is one INSERT … SELECT FROM jsonb_to_recordset($2) … ON CONFLICT statement
 *     inside pe_db_tx: all products are written, or none. The JSON handed over is the
 *     validator's canonical array, so the statement never sees a key or a type it does not
 *     expect; the store's currency fills in a missing one within the same statement.
 *  3. An unknown store writes nothing and is reported as PE_ENOTFOUND (the INSERT selects from
 *     stores, so there is no foreign-key error to interpret).
 *  4. Amounts come back as PostgreSQL's numeric text, embedded raw in the JSON answer (exact).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/catalog.h"

#define DB_TIMEOUT_MS 5000

typedef struct {
    const char *store_id;
    const char *json; /* canonical array */
    size_t count;     /* out */
} upsert_t;

static int upsert_tx(pe_db_conn_t *conn, void *arg)
{
    static const char sql[] =
        "INSERT INTO products AS p (store_id, sku, name, category, price, cost, stock, currency, "
        "                           updated_at) "
        "SELECT s.id, r.sku, r.name, r.category, r.price, r.cost, r.stock, "
        "       coalesce(r.currency, s.currency), now() "
        "  FROM stores s, jsonb_to_recordset($2::jsonb) AS r(sku text, name text, category text, "
        "       price numeric, cost numeric, stock integer, currency text) "
        " WHERE s.id = $1 "
        "ON CONFLICT (store_id, sku) DO UPDATE SET name = excluded.name, "
        "       category = excluded.category, price = excluded.price, cost = excluded.cost, "
        "       stock = excluded.stock, currency = excluded.currency, updated_at = now()";
    upsert_t *u = arg;
    pe_db_result_t *res = NULL;
    const char *params[] = {u->store_id, u->json};
    int rc = pe_db_exec(conn, sql, 2, params, &res);
    if (rc != 0)
        goto out;
    u->count = (size_t)pe_db_result_affected(res);
    /* Nothing written although the validator passed products: the store does not exist. */
    if (u->count == 0)
        rc = PE_ENOTFOUND;
out:
    pe_db_result_free(res);
    return rc;
}

int pe_catalog_upsert(pe_db_pool_t *pool, const char *store_id, const cJSON *products,
                      size_t *count, pe_refusal_t *err)
{
    cJSON *canonical = NULL;
    char *json = NULL;
    *count = 0;
    int rc = pe_catalog_validate(products, &canonical, err);
    if (rc != 0)
        goto out;
    rc = PE_ENOTFOUND;
    if (!pe_uuid_text_valid(store_id))
        goto out;
    rc = PE_ENOMEM;
    json = pe_json_print(canonical);
    if (!json)
        goto out;
    upsert_t u = {.store_id = store_id, .json = json, .count = 0};
    rc = pe_db_tx(pool, DB_TIMEOUT_MS, upsert_tx, &u);
    if (rc == 0)
        *count = u.count;
out:
    free(json);
    cJSON_Delete(canonical);
    return rc;
}

/* Adds name: raw numeric text, or null when the column is NULL. */
static bool add_number(cJSON *o, const char *name, const pe_db_result_t *res, size_t row,
                       size_t col)
{
    cJSON *v = pe_db_result_isnull(res, row, col)
                   ? cJSON_CreateNull()
                   : cJSON_CreateRaw(pe_db_result_get(res, row, col));
    if (v && cJSON_AddItemToObject(o, name, v))
        return true;
    cJSON_Delete(v);
    return false;
}

static bool add_product(cJSON *arr, const pe_db_result_t *res, size_t row)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return false;
    }
    return cJSON_AddStringToObject(o, "sku", pe_db_result_get(res, row, 0)) &&
           cJSON_AddStringToObject(o, "name", pe_db_result_get(res, row, 1)) &&
           cJSON_AddStringToObject(o, "category", pe_db_result_get(res, row, 2)) &&
           add_number(o, "price", res, row, 3) && add_number(o, "cost", res, row, 4) &&
           add_number(o, "stock", res, row, 5) &&
           cJSON_AddStringToObject(o, "currency", pe_db_result_get(res, row, 6)) &&
           cJSON_AddStringToObject(o, "updatedAt", pe_db_result_get(res, row, 7));
}

int pe_catalog_list(pe_db_pool_t *pool, const char *store_id, const pe_catalog_query_t *q,
                    cJSON **out)
{
    /* One row more than asked tells whether another page exists. */
    static const char sql[] =
        "SELECT sku, name, category, price::text, cost::text, stock::text, currency, "
        "       to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
        "  FROM products "
        " WHERE store_id = $1 AND ($2::text IS NULL OR sku > $2) "
        "   AND ($3::text IS NULL OR category = $3) "
        " ORDER BY sku LIMIT $4";
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    cJSON *j = NULL;
    int rc = PE_EINVAL;
    *out = NULL;
    unsigned limit = q->limit ? q->limit : PE_CATALOG_PAGE_DEFAULT;
    if (limit > PE_CATALOG_PAGE_MAX)
        goto out;
    if (q->after && strlen(q->after) > PE_CATALOG_SKU_MAX)
        goto out;
    if (q->category && strlen(q->category) > PE_CATALOG_LABEL_MAX)
        goto out;
    rc = PE_ENOMEM;
    j = cJSON_CreateObject();
    cJSON *arr = j ? cJSON_AddArrayToObject(j, "products") : NULL;
    if (!arr)
        goto out;
    size_t rows = 0;
    if (pe_uuid_text_valid(store_id)) {
        char lim[16];
        snprintf(lim, sizeof lim, "%u", limit + 1);
        const char *params[] = {store_id, q->after, q->category, lim};
        rc = pe_db_acquire(pool, DB_TIMEOUT_MS, &conn);
        if (rc != 0)
            goto out;
        rc = pe_db_exec(conn, sql, 4, params, &res);
        if (rc != 0)
            goto out;
        rows = pe_db_result_rows(res);
    }
    rc = PE_ENOMEM;
    size_t shown = rows > limit ? limit : rows;
    for (size_t r = 0; r < shown; r++)
        if (!add_product(arr, res, r))
            goto out;
    cJSON *next =
        rows > limit ? cJSON_CreateString(pe_db_result_get(res, shown - 1, 0)) : cJSON_CreateNull();
    if (!next || !cJSON_AddItemToObject(j, "nextAfter", next)) {
        cJSON_Delete(next);
        goto out;
    }
    *out = j;
    j = NULL;
    rc = 0;
out:
    pe_db_result_free(res);
    pe_db_release(pool, conn);
    cJSON_Delete(j);
    return rc;
}
