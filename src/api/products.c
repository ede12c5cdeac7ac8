/*
 * products.c — the product catalogue over HTTP: PUT /api/v1/stores/{storeId}/products (bulk
 * upsert, {"products":[…]}) and GET /api/v1/stores/{storeId}/products (a page, by SKU).
 *
 * Invariants:
 *  1. The store is the one authentication resolved ({storeId} checked against the key or the
 *     session): a handler never reads another store's id from the request.
 *  2. All or nothing: one bad product answers 400 naming the field ("products[3].price: must be
 *     >= 0") and nothing is written; more than PE_CATALOG_MAX_PRODUCTS answer 413.
 *  3. Bad query parameters answer 400 naming the parameter.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/api.h"
#include "pe/catalog.h"
#include "routes.h"

int pe_api_products_put(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *body = pe_http_json_body(req);
    if (!body)
        return 0;
    pe_refusal_t err;
    int rc = pe_catalog_validate_body(body, NULL, &err);
    if (rc == PE_ETOOBIG)
        return pe_http_reply_error(req, PE_ETOOBIG, "payload_too_large", "%s", err.message);
    if (rc == PE_EINVAL)
        return pe_http_reply_error(req, PE_EINVAL, err.code, "%s", err.message);
    if (rc != 0)
        return rc;
    size_t count = 0;
    rc = pe_catalog_upsert(app->db, pe_http_auth(req)->store_id,
                           cJSON_GetObjectItemCaseSensitive(body, "products"), &count, &err);
    if (rc == PE_EINVAL && err.message[0])
        return pe_http_reply_error(req, PE_EINVAL, err.code, "%s", err.message);
    if (rc != 0)
        return pe_http_reply_error(
            req, rc, NULL, rc == PE_ENOTFOUND ? "no such store" : "cannot store the products");
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddNumberToObject(j, "upserted", (double)count)) {
        cJSON_Delete(j);
        return PE_ENOMEM;
    }
    return pe_http_reply_cjson(req, 200, j);
}

int pe_api_products_get(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    pe_catalog_query_t q = {
        .after = pe_http_query(req, "after"),
        .category = pe_http_query(req, "category"),
        .limit = PE_CATALOG_PAGE_DEFAULT,
    };
    const char *limit = pe_http_query(req, "limit");
    if (limit) {
        char *end = NULL;
        errno = 0;
        long v = strtol(limit, &end, 10);
        if (errno || end == limit || *end || v < 1 || v > PE_CATALOG_PAGE_MAX)
            return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                       "limit: must be an integer 1..%d", PE_CATALOG_PAGE_MAX);
        q.limit = (unsigned)v;
    }
    if (q.after && (!*q.after || strlen(q.after) > PE_CATALOG_SKU_MAX))
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "after: must be a SKU of 1..%d bytes", PE_CATALOG_SKU_MAX);
    if (q.category && (!*q.category || strlen(q.category) > PE_CATALOG_LABEL_MAX))
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "category: must be 1..%d bytes", PE_CATALOG_LABEL_MAX);
    cJSON *j = NULL;
    int rc = pe_catalog_list(app->db, pe_http_auth(req)->store_id, &q, &j);
    if (rc != 0)
        return pe_http_reply_error(req, rc, NULL, "cannot list the products");
    return pe_http_reply_cjson(req, 200, j);
}
