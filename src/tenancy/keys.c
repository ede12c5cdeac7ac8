/*
 * keys.c — a store's API keys: issue, list, revoke, and resolve a presented key to its store.
 *
 * pe_tenancy_key_authenticate runs on every storefront and server-to-server request, so it is
 * built to be cheap: a shape check in memory, one SHA-256, one lookup on the unique index of
 * api_keys.key_hash. Garbage never reaches the database. Listing and issuing are rare (a
 * merchant in the dashboard, a deploy rotating a key) and may take a transaction.
 *
 * Invariants:
 *  1. The key leaves this file only towards the caller that asked for it; the database sees its
 *     hash and its 10-character display prefix. Nothing read back (list, get, revoke) carries
 *     the hash out of the module.
 *  2. A key resolves to the store of its own row and nothing else; a revoked key resolves to
 *     nothing. Every statement that touches a store's keys filters by store_id.
 *  3. The kind comes from the row and must agree with the key's tag; a disagreement (which the
 *     hash makes impossible) is refused rather than trusted.
 *  4. A store never has more than PE_KEYS_MAX_LIVE live keys: pe_tenancy_key_create counts them
 *     while holding a lock on the store's row, so two concurrent creations cannot both take the
 *     last place. (A new store starts with two, inside the same limit.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenancy/tenancy_internal.h"

_Static_assert(PE_KEY_PREFIX_LEN == TENANCY_KEY_PREFIX_LEN + 1, "display prefix + NUL");

/* The columns every read of a key selects, in the order fill_info reads them. */
#define KEY_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define KEY_COLUMNS                                                                                \
    "id, kind, key_prefix, " KEY_TS("created_at") ", coalesce(" KEY_TS("revoked_at") ", '')"
#define KEY_NCOLUMNS 5

const char *pe_tenancy_key_kind_name(pe_key_kind_t kind)
{
    return tenancy_key_kind_name(kind);
}

int pe_tenancy_key_kind_from_name(const char *name, pe_key_kind_t *out)
{
    return name && tenancy_key_kind_parse(name, out) == 0 ? 0 : PE_EINVAL;
}

/* Row `row` of res, from column `col` on, into *info. */
static int fill_info(const pe_db_result_t *res, size_t row, size_t col, pe_key_info_t *info)
{
    memset(info, 0, sizeof *info);
    if (tenancy_key_kind_parse(pe_db_result_get(res, row, col + 1), &info->kind) != 0)
        return PE_EINTERNAL;
    snprintf(info->id, sizeof info->id, "%s", pe_db_result_get(res, row, col));
    snprintf(info->prefix, sizeof info->prefix, "%s", pe_db_result_get(res, row, col + 2));
    snprintf(info->created_at, sizeof info->created_at, "%s", pe_db_result_get(res, row, col + 3));
    snprintf(info->revoked_at, sizeof info->revoked_at, "%s", pe_db_result_get(res, row, col + 4));
    return 0;
}

cJSON *pe_tenancy_key_json(const pe_key_info_t *info)
{
    const char *kind = tenancy_key_kind_name(info->kind);
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    if (!cJSON_AddStringToObject(j, "id", info->id) ||
        !cJSON_AddStringToObject(j, "kind", kind ? kind : "") ||
        !cJSON_AddStringToObject(j, "prefix", info->prefix) ||
        !cJSON_AddStringToObject(j, "createdAt", info->created_at) ||
        !(info->revoked_at[0] ? cJSON_AddStringToObject(j, "revokedAt", info->revoked_at)
                              : cJSON_AddNullToObject(j, "revokedAt"))) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* Issues a key on conn and reads its row back into *info. */
static int issue(pe_db_conn_t *conn, const char *store_id, pe_key_kind_t kind, char key[PE_KEY_LEN],
                 pe_key_info_t *info)
{
    /* INSERT … SELECT FROM stores: an unknown store inserts nothing and says so as zero rows,
     * instead of a foreign-key error that looks like any other invalid input. */
    static const char sql[] = "INSERT INTO api_keys (store_id, kind, key_hash, key_prefix) "
                              "SELECT id, $2, $3, $4 FROM stores WHERE id = $1 "
                              "RETURNING " KEY_COLUMNS;
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
    rc = pe_db_result_rows(res) == 1 ? fill_info(res, 0, 0, info) : PE_ENOTFOUND;
out:
    pe_db_result_free(res);
    /* A key whose row was not written is worthless; do not let the caller show it. */
    if (rc != 0)
        key[0] = '\0';
    return rc;
}

int tenancy_key_issue(pe_db_conn_t *conn, const char *store_id, pe_key_kind_t kind,
                      char key[PE_KEY_LEN], char key_id[PE_ID_LEN])
{
    pe_key_info_t info;
    int rc = issue(conn, store_id, kind, key, &info);
    snprintf(key_id, PE_ID_LEN, "%s", rc == 0 ? info.id : "");
    return rc;
}

static const char COUNT_LIVE_SQL[] =
    "SELECT count(*) FROM api_keys WHERE store_id = $1 AND revoked_at IS NULL";

typedef struct {
    const char *store_id;
    pe_key_kind_t kind;
    char *key;           /* out, PE_KEY_LEN */
    pe_key_info_t *info; /* out */
} key_create_t;

static int key_create_tx(pe_db_conn_t *conn, void *arg)
{
    /* FOR NO KEY UPDATE serialises the creators of one store's keys (invariant 4: the count
     * below, a new snapshot under READ COMMITTED, then sees every key the previous holder
     * committed) without blocking the foreign-key checks of rows that reference the store. */
    static const char lock_sql[] = "SELECT 1 FROM stores WHERE id = $1 FOR NO KEY UPDATE";
    key_create_t *c = arg;
    pe_db_result_t *res = NULL;
    const char *params[] = {c->store_id};
    int rc = pe_db_exec(conn, lock_sql, 1, params, &res);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) != 1) {
        rc = PE_ENOTFOUND;
        goto out;
    }
    pe_db_result_free(res);
    res = NULL;
    rc = pe_db_exec(conn, COUNT_LIVE_SQL, 1, params, &res);
    if (rc != 0)
        goto out;
    if (atol(pe_db_result_get(res, 0, 0)) >= PE_KEYS_MAX_LIVE) {
        rc = PE_ECONFLICT;
        goto out;
    }
    rc = issue(conn, c->store_id, c->kind, c->key, c->info);
out:
    pe_db_result_free(res);
    return rc;
}

int pe_tenancy_key_create_info(pe_db_pool_t *pool, const char *store_id, pe_key_kind_t kind,
                               char key[PE_KEY_LEN], pe_key_info_t *info)
{
    int rc = PE_ENOTFOUND;
    key[0] = '\0';
    memset(info, 0, sizeof *info);
    if (!tenancy_uuid_valid(store_id))
        goto out;
    rc = PE_EINVAL;
    if (!tenancy_key_kind_name(kind))
        goto out;
    key_create_t c = {store_id, kind, key, info};
    rc = pe_db_tx(pool, TENANCY_DB_TIMEOUT_MS, key_create_tx, &c);
out:
    /* A key whose row did not commit is worthless; do not let the caller show it. */
    if (rc != 0) {
        key[0] = '\0';
        memset(info, 0, sizeof *info);
    }
    return rc;
}

int pe_tenancy_key_create(pe_db_pool_t *pool, const char *store_id, pe_key_kind_t kind,
                          char key[PE_KEY_LEN], char key_id[PE_ID_LEN])
{
    pe_key_info_t info;
    int rc = pe_tenancy_key_create_info(pool, store_id, kind, key, &info);
    snprintf(key_id, PE_ID_LEN, "%s", info.id);
    return rc;
}

int tenancy_key_revoke(pe_db_pool_t *pool, const char *store_id, const char *key_id,
                       char hash[TENANCY_HASH_HEX_LEN], pe_key_info_t *info)
{
    /* coalesce keeps the first revocation time, so revoking twice is harmless and the audit
     * trail of when a key stopped working does not move. */
    static const char sql[] = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
                              "WHERE store_id = $1 AND id = $2 RETURNING key_hash, " KEY_COLUMNS;
    pe_db_result_t *res = NULL;
    int rc = PE_ENOTFOUND;
    hash[0] = '\0';
    if (!tenancy_uuid_valid(store_id) || !tenancy_uuid_valid(key_id))
        goto out;
    const char *params[] = {store_id, key_id};
    rc = tenancy_exec(pool, sql, 2, params, &res, NULL);
    if (rc != 0)
        goto out;
    rc = PE_ENOTFOUND;
    if (pe_db_result_rows(res) != 1)
        goto out;
    if (info && (rc = fill_info(res, 0, 1, info)) != 0)
        goto out;
    snprintf(hash, TENANCY_HASH_HEX_LEN, "%s", pe_db_result_get(res, 0, 0));
    rc = 0;
out:
    pe_db_result_free(res);
    return rc;
}

int pe_tenancy_key_revoke(pe_db_pool_t *pool, const char *store_id, const char *key_id)
{
    char hash[TENANCY_HASH_HEX_LEN];
    return tenancy_key_revoke(pool, store_id, key_id, hash, NULL);
}

int pe_tenancy_key_get(pe_db_pool_t *pool, const char *store_id, const char *key_id,
                       pe_key_info_t *out)
{
    static const char sql[] =
        "SELECT " KEY_COLUMNS " FROM api_keys WHERE store_id = $1 AND id = $2";
    pe_db_result_t *res = NULL;
    int rc = PE_ENOTFOUND;
    memset(out, 0, sizeof *out);
    if (!tenancy_uuid_valid(store_id) || !tenancy_uuid_valid(key_id))
        goto out;
    const char *params[] = {store_id, key_id};
    rc = tenancy_exec(pool, sql, 2, params, &res, NULL);
    if (rc != 0)
        goto out;
    rc = pe_db_result_rows(res) == 1 ? fill_info(res, 0, 0, out) : PE_ENOTFOUND;
out:
    pe_db_result_free(res);
    return rc;
}

int pe_tenancy_key_list(pe_db_pool_t *pool, const char *store_id, cJSON **out)
{
    /* Live keys sort first, so the limit only ever drops old revoked ones (invariant 4 keeps
     * the live ones far below it). */
    static const char sql[] = "SELECT " KEY_COLUMNS " FROM api_keys WHERE store_id = $1 "
                              "ORDER BY revoked_at IS NOT NULL, coalesce(revoked_at, created_at) "
                              "DESC, id LIMIT $2";
    _Static_assert(PE_KEYS_MAX_LIVE < PE_KEYS_LIST_MAX, "every live key is listed");
    pe_db_result_t *res = NULL;
    cJSON *list = NULL;
    int rc = PE_ENOMEM;
    *out = NULL;
    list = cJSON_CreateArray();
    if (!list)
        goto out;
    if (tenancy_uuid_valid(store_id)) {
        char limit[16];
        snprintf(limit, sizeof limit, "%d", PE_KEYS_LIST_MAX);
        const char *params[] = {store_id, limit};
        rc = tenancy_exec(pool, sql, 2, params, &res, NULL);
        if (rc != 0)
            goto out;
    }
    size_t rows = res ? pe_db_result_rows(res) : 0;
    for (size_t row = 0; row < rows; row++) {
        pe_key_info_t info;
        rc = fill_info(res, row, 0, &info);
        if (rc != 0)
            goto out;
        rc = PE_ENOMEM;
        cJSON *item = pe_tenancy_key_json(&info);
        if (!item || !cJSON_AddItemToArray(list, item)) {
            cJSON_Delete(item);
            goto out;
        }
    }
    *out = list;
    list = NULL;
    rc = 0;
out:
    cJSON_Delete(list);
    pe_db_result_free(res);
    return rc;
}

int pe_tenancy_key_count_live(pe_db_pool_t *pool, const char *store_id, int *out)
{
    pe_db_result_t *res = NULL;
    int rc = 0;
    *out = 0;
    if (!tenancy_uuid_valid(store_id))
        goto out;
    const char *params[] = {store_id};
    rc = tenancy_exec(pool, COUNT_LIVE_SQL, 1, params, &res, NULL);
    if (rc != 0)
        goto out;
    *out = (int)atol(pe_db_result_get(res, 0, 0));
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
