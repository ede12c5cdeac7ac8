/*
 * query.c — one parameterised statement on a pooled connection, for the many tenancy calls that
 * need exactly one round trip and no transaction.
 *
 * Invariants:
 *  1. The connection is always released before returning, success or not.
 *  2. The SQLSTATE of a failure is copied out before release (it lives on the connection), so a
 *     caller can tell "the store does not exist" (foreign key) from other invalid input.
 */
#include <stdio.h>

#include "tenancy/tenancy_internal.h"

int tenancy_exec(pe_db_pool_t *pool, const char *sql, int nparams, const char *const *params,
                 pe_db_result_t **out, char sqlstate[6])
{
    pe_db_conn_t *conn = NULL;
    if (sqlstate)
        sqlstate[0] = '\0';
    int rc = pe_db_acquire(pool, TENANCY_DB_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    rc = pe_db_exec(conn, sql, nparams, params, out);
    if (rc != 0 && sqlstate)
        snprintf(sqlstate, 6, "%s", pe_db_conn_sqlstate(conn));
out:
    pe_db_release(pool, conn);
    return rc;
}
