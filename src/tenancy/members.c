/*
 * members.c — who may act on which store: the membership check behind every merchant API call
 * and the list of a user's stores for the dashboard's store picker.
 *
 * Invariants:
 *  1. Membership is the only grant: a user sees a store if and only if a store_members row joins
 *     them. There is no "admin sees everything" path here.
 *  2. Malformed ids are answered without a query, the same way a well-formed stranger's id is:
 *     forbidden for the check, an empty list for the list.
 */
#include <string.h>

#include "tenancy/tenancy_internal.h"

int pe_tenancy_member_check(pe_db_pool_t *pool, const char *user_id, const char *store_id)
{
    static const char sql[] = "SELECT 1 FROM store_members WHERE store_id = $1 AND user_id = $2";
    pe_db_result_t *res = NULL;
    int rc = PE_EFORBIDDEN;
    if (!tenancy_uuid_valid(user_id) || !tenancy_uuid_valid(store_id))
        goto out;
    const char *params[] = {store_id, user_id};
    rc = tenancy_exec(pool, sql, 2, params, &res, NULL);
    if (rc != 0)
        goto out;
    rc = pe_db_result_rows(res) == 1 ? 0 : PE_EFORBIDDEN;
out:
    pe_db_result_free(res);
    return rc;
}

int pe_tenancy_user_stores(pe_db_pool_t *pool, const char *user_id, cJSON **out)
{
    /* Oldest membership first: the store a merchant signed up with stays at the top. */
    static const char sql[] = "SELECT s.id, s.name, s.currency, s.timezone "
                              "FROM store_members m JOIN stores s ON s.id = m.store_id "
                              "WHERE m.user_id = $1 ORDER BY m.created_at, s.id";
    static const char *const fields[] = {"id", "name", "currency", "timezone"};
    pe_db_result_t *res = NULL;
    cJSON *list = NULL;
    int rc = PE_ENOMEM;
    *out = NULL;
    list = cJSON_CreateArray();
    if (!list)
        goto out;
    /* A malformed id names no user, and a user who does not exist belongs to no store. */
    if (tenancy_uuid_valid(user_id)) {
        const char *params[] = {user_id};
        rc = tenancy_exec(pool, sql, 1, params, &res, NULL);
        if (rc != 0)
            goto out;
        rc = PE_ENOMEM;
    }
    size_t rows = res ? pe_db_result_rows(res) : 0;
    for (size_t row = 0; row < rows; row++) {
        cJSON *store = cJSON_CreateObject();
        /* Added before it is filled, so the array owns it and frees it on any failure below. */
        if (!store || !cJSON_AddItemToArray(list, store)) {
            cJSON_Delete(store);
            goto out;
        }
        for (size_t col = 0; col < PE_ARRAY_LEN(fields); col++)
            if (!cJSON_AddStringToObject(store, fields[col], pe_db_result_get(res, row, col)))
                goto out;
    }
    *out = list;
    list = NULL;
    rc = 0;
out:
    cJSON_Delete(list);
    pe_db_result_free(res);
    return rc;
}
