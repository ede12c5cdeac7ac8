/*
 * keys.c — a store's API keys: issue, revoke, and resolve a presented key to its store.
 *
 * pe_tenancy_key_authenticate runs on every storefront and server-to-server request, so it is
 * built to be cheap: a shape check in memory, one SHA-256, one lookup on the unique index of
 * api_keys.key_hash. Garbage never reaches the database.
 *
 * Invariants:
 *  1. The key leaves this file only towards the caller that asked for it; the database sees its
 *     hash and its 10-character display prefix.
 *  2. A key resolves to the store of its own row and nothing else; a revoked key resolves to
 *     nothing. Every statement that touches a store's keys filters by store_id.
 *  3. The kind comes from the row and must agree with the key's tag; a disagreement (which the
 *     hash makes impossible) is refused rather than trusted.
 */
#include <stdio.h>
#include <string.h>

#include "tenancy/tenancy_internal.h"

int tenancy_key_issue(pe_db_conn_t *conn, const char *store_id, pe_key_kind_t kind,
                      char key[PE_KEY_LEN], char key_id[PE_ID_LEN])
{
    /* INSERT … SELECT FROM stores: an unknown store inserts nothing and says so as zero rows,
     * instead of a foreign-key error that looks like any other invalid input. */
    static const char sql[] = "INSERT INTO api_keys (store_id, kind, key_hash, key_prefix) "
                              "SELECT id, $2, $3, $4 FROM stores WHERE id = $1 RETURNING id";
    pe_db_result_t *res = NULL;
    char hash[TENANCY_HASH_HEX_LEN];
    char prefix[TENANCY_KEY_PREFIX_LEN + 1];
    int rc = tenancy_key_generate(kind, key, hash, prefix);
    if (rc != 0)
        goto out;
    const char *params[] = {store_id, tenancy_key_kind_name(kind), hash, prefix};
    rc = pe_db_exec(conn, sql, 4, params, &res);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) != 1) {
        rc = PE_ENOTFOUND;
        goto out;
    }
    snprintf(key_id, PE_ID_LEN, "%s", pe_db_result_get(res, 0, 0));
    rc = 0;
out:
    pe_db_result_free(res);
    /* A key whose row was not written is worthless; do not let the caller show it. */
    if (rc != 0)
        key[0] = '\0';
    return rc;
}

int pe_tenancy_key_create(pe_db_pool_t *pool, const char *store_id, pe_key_kind_t kind,
                          char key[PE_KEY_LEN], char key_id[PE_ID_LEN])
{
    pe_db_conn_t *conn = NULL;
    int rc = PE_ENOTFOUND;
    key[0] = '\0';
    key_id[0] = '\0';
    if (!tenancy_uuid_valid(store_id))
        goto out;
    rc = pe_db_acquire(pool, TENANCY_DB_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    rc = tenancy_key_issue(conn, store_id, kind, key, key_id);
out:
    pe_db_release(pool, conn);
    return rc;
}

int pe_tenancy_key_revoke(pe_db_pool_t *pool, const char *store_id, const char *key_id)
{
    /* coalesce keeps the first revocation time, so revoking twice is harmless and the audit
     * trail of when a key stopped working does not move. */
    static const char sql[] = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
                              "WHERE store_id = $1 AND id = $2";
    pe_db_result_t *res = NULL;
    int rc = PE_ENOTFOUND;
    if (!tenancy_uuid_valid(store_id) || !tenancy_uuid_valid(key_id))
        goto out;
    const char *params[] = {store_id, key_id};
    rc = tenancy_exec(pool, sql, 2, params, &res, NULL);
    if (rc != 0)
        goto out;
    rc = pe_db_result_affected(res) == 1 ? 0 : PE_ENOTFOUND;
out:
    pe_db_result_free(res);
    return rc;
}

int tenancy_key_lookup(pe_db_pool_t *pool, const char *hash, pe_key_kind_t tagged,
                       char store_id[PE_ID_LEN], pe_key_kind_t *kind)
{
    static const char sql[] =
        "SELECT store_id, kind FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL";
    pe_db_result_t *res = NULL;
    pe_key_kind_t stored = PE_KEY_PUBLISHABLE;
    int rc = PE_EUNAUTH;
    store_id[0] = '\0';
    const char *params[] = {hash};
    rc = tenancy_exec(pool, sql, 1, params, &res, NULL);
    if (rc != 0)
        goto out;
    rc = PE_EUNAUTH;
    if (pe_db_result_rows(res) != 1)
        goto out;
    if (tenancy_key_kind_parse(pe_db_result_get(res, 0, 1), &stored) != 0 || stored != tagged)
        goto out;
    snprintf(store_id, PE_ID_LEN, "%s", pe_db_result_get(res, 0, 0));
    *kind = stored;
    rc = 0;
out:
    pe_db_result_free(res);
    return rc;
}

int pe_tenancy_key_authenticate(pe_db_pool_t *pool, const char *key, char store_id[PE_ID_LEN],
                                pe_key_kind_t *kind)
{
    pe_key_kind_t tagged = PE_KEY_PUBLISHABLE;
    char hash[TENANCY_HASH_HEX_LEN];
    store_id[0] = '\0';
    if (!tenancy_key_well_formed(key, &tagged))
        return PE_EUNAUTH;
    tenancy_hash_hex(key, TENANCY_KEY_STRLEN, hash);
    return tenancy_key_lookup(pool, hash, tagged, store_id, kind);
}
