/*
 * stores.c — creating a store (the tenant) with its first pair of keys, and reading one back.
 *
 * Invariants:
 *  1. A store never exists without both its keys: the store row and the two key rows are
 *     written in one transaction (pe_db_tx), so a failure leaves nothing behind.
 *  2. Everything checkable in memory is checked before a connection is taken; the time zone,
 *     which only PostgreSQL can vouch for, is checked against pg_timezone_names inside the same
 *     transaction.
 *  3. A malformed store id is "not found" without a query: ids come from URLs, and garbage
 *     should neither cost a round trip nor surface as a database error.
 */
#include <stdio.h>
#include <string.h>

#include "tenancy/tenancy_internal.h"

typedef struct {
    const char *name;
    const char *timezone;
    const char *currency;
    pe_store_t *store; /* out */
    char *pk;          /* out, PE_KEY_LEN */
    char *sk;          /* out, PE_KEY_LEN */
    char *err;
    size_t errlen;
} store_create_t;

static void fill_store(const pe_db_result_t *res, pe_store_t *out)
{
    snprintf(out->id, sizeof out->id, "%s", pe_db_result_get(res, 0, 0));
    snprintf(out->name, sizeof out->name, "%s", pe_db_result_get(res, 0, 1));
    snprintf(out->currency, sizeof out->currency, "%s", pe_db_result_get(res, 0, 2));
    snprintf(out->timezone, sizeof out->timezone, "%s", pe_db_result_get(res, 0, 3));
}

static int store_create_tx(pe_db_conn_t *conn, void *arg)
{
    static const char tz_sql[] = "SELECT 1 FROM pg_timezone_names WHERE name = $1";
    static const char insert_sql[] = "INSERT INTO stores (name, currency, timezone) "
                                     "VALUES ($1, $2, $3) RETURNING id, name, currency, timezone";
    store_create_t *c = arg;
    pe_db_result_t *res = NULL;
    char key_id[PE_ID_LEN];

    const char *tz_params[] = {c->timezone};
    int rc = pe_db_exec(conn, tz_sql, 1, tz_params, &res);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) == 0) {
        tenancy_set_err(c->err, c->errlen, "timezone: unknown time zone");
        rc = PE_EINVAL;
        goto out;
    }
    pe_db_result_free(res);
    res = NULL;

    const char *params[] = {c->name, c->currency, c->timezone};
    rc = pe_db_exec(conn, insert_sql, 3, params, &res);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) != 1) {
        rc = PE_EINTERNAL;
        goto out;
    }
    fill_store(res, c->store);

    rc = tenancy_key_issue(conn, c->store->id, PE_KEY_PUBLISHABLE, c->pk, key_id);
    if (rc != 0)
        goto out;
    rc = tenancy_key_issue(conn, c->store->id, PE_KEY_SECRET, c->sk, key_id);
out:
    pe_db_result_free(res);
    return rc;
}

int pe_tenancy_store_create(pe_db_pool_t *pool, const char *name, const char *timezone,
                            const char *currency, pe_store_t *store, char pk[PE_KEY_LEN],
                            char sk[PE_KEY_LEN], char *err, size_t errlen)
{
    store_create_t c = {
        .name = name,
        .timezone = timezone ? timezone : "UTC",
        .currency = currency ? currency : "USD",
        .store = store,
        .pk = pk,
        .sk = sk,
        .err = err,
        .errlen = errlen,
    };
    memset(store, 0, sizeof *store);
    pk[0] = '\0';
    sk[0] = '\0';
    tenancy_set_err(err, errlen, "%s", "");

    int rc = tenancy_validate_store_name(c.name, err, errlen);
    if (rc == 0)
        rc = tenancy_validate_currency(c.currency, err, errlen);
    if (rc == 0)
        rc = tenancy_validate_timezone_shape(c.timezone, err, errlen);
    if (rc == 0)
        rc = pe_db_tx(pool, TENANCY_DB_TIMEOUT_MS, store_create_tx, &c);
    if (rc != 0) {
        /* The transaction rolled back: nothing of what was filled in exists. */
        memset(store, 0, sizeof *store);
        pk[0] = '\0';
        sk[0] = '\0';
    }
    return rc;
}

int pe_tenancy_store_get(pe_db_pool_t *pool, const char *store_id, pe_store_t *out)
{
    static const char sql[] = "SELECT id, name, currency, timezone FROM stores WHERE id = $1";
    pe_db_result_t *res = NULL;
    int rc = PE_ENOTFOUND;
    memset(out, 0, sizeof *out);
    if (!tenancy_uuid_valid(store_id))
        goto out;
    const char *params[] = {store_id};
    rc = tenancy_exec(pool, sql, 1, params, &res, NULL);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) != 1) {
        rc = PE_ENOTFOUND;
        goto out;
    }
    fill_store(res, out);
    rc = 0;
out:
    pe_db_result_free(res);
    return rc;
}
