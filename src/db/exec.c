/*
 * db/exec.c — statements, results, transactions, and the one mapping of SQLSTATE to PE_E….
 *
 * Invariants:
 *  1. Caller data travels only as $n text parameters (PQexecParams); statement text is the
 *     caller's compile-time constant, so PQexecParams also refuses a second statement in it.
 *  2. Every PGresult is PQclear'ed on every path; a pe_db_result_t owns exactly one.
 *  3. After each call conn->err / conn->sqlstate describe that call's failure, or are "".
 *  4. pe_db_commit never reports success for a transaction the server rolled back.
 *  5. A failure that ends the session (libpq lost the link, SQLSTATE class 08, 57P01..57P03)
 *     marks the connection lost (internal.h invariant 4). pe_db_begin on a fresh connection
 *     (nothing sent since it was lent) that meets one reopens it and sends BEGIN once more: the
 *     server had nothing of ours to lose, so a connection that died idle costs no request. No
 *     other statement is ever retried here: outside a transaction a statement commits itself,
 *     and whether it did before the link broke is unknown.
 *
 * SQLSTATE → PE_E… (pe_db_sqlstate_to_rc):
 *
 *   SQLSTATE                                         PE_E…         why
 *   23505 unique, 23P01 exclusion                    ECONFLICT     duplicate
 *   40001 serialization, 40P01 deadlock              ECONFLICT     retryable conflict
 *   23xxx other integrity (check, not-null, FK, …)   EINVAL        the data broke a rule
 *   22xxx data exception (invalid text, range, …)    EINVAL        the data was malformed
 *   57014 query_canceled (statement_timeout)         ETIMEOUT
 *   55P03 lock_not_available (lock_timeout)          ETIMEOUT
 *   08xxx connection, 53xxx resources,               EUNAVAIL      the server cannot serve us
 *   57P01..57P05 shutdown / cannot connect now
 *   42501 insufficient_privilege                     EFORBIDDEN    e.g. append-only tables
 *   anything else, 42601 syntax error included       EINTERNAL     statement text is ours, so
 *                                                                  a syntax error is a bug
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct pe_db_result {
    PGresult *res;
};

bool pe_db_sqlstate_is_lost(const char *s)
{
    if (!s || strlen(s) != 5)
        return false;
    return strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
           strcmp(s, "57P03") == 0;
}

int pe_db_sqlstate_to_rc(const char *s)
{
    if (!s || strlen(s) != 5)
        return PE_EINTERNAL;
    if (strcmp(s, "23505") == 0 || strcmp(s, "23P01") == 0 || strcmp(s, "40001") == 0 ||
        strcmp(s, "40P01") == 0)
        return PE_ECONFLICT;
    if (strncmp(s, "23", 2) == 0 || strncmp(s, "22", 2) == 0)
        return PE_EINVAL;
    if (strcmp(s, "57014") == 0 || strcmp(s, "55P03") == 0)
        return PE_ETIMEOUT;
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0 || strncmp(s, "57P", 3) == 0)
        return PE_EUNAVAIL;
    if (strcmp(s, "42501") == 0)
        return PE_EFORBIDDEN;
    return PE_EINTERNAL;
}

void pe_db_conn_clear_error(pe_db_conn_t *conn)
{
    conn->err[0] = '\0';
    conn->sqlstate[0] = '\0';
    conn->last_rc = 0;
}

static void set_err(pe_db_conn_t *conn, const char *msg)
{
    size_t n = strlen(msg);

    /* libpq messages end in a newline; ours are one line. */
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    if (n >= sizeof(conn->err))
        n = sizeof(conn->err) - 1;
    memcpy(conn->err, msg, n);
    conn->err[n] = '\0';
}

int pe_db_conn_fail_msg(pe_db_conn_t *conn, int rc, const char *msg)
{
    set_err(conn, msg);
    conn->sqlstate[0] = '\0';
    conn->last_rc = rc;
    return rc;
}

int pe_db_conn_fail(pe_db_conn_t *conn, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* The primary message only: DETAIL lines can quote row values (an e-mail address in a
     * unique violation), and this message ends up in logs. */
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    int rc;

    if (PQstatus(conn->pg) != CONNECTION_OK || pe_db_sqlstate_is_lost(state)) {
        /* invariant 5; the server closes the session after such an error even when libpq has
         * not read the end of it yet */
        conn->lost = true;
        conn->discard = true;
    }
    if (PQstatus(conn->pg) != CONNECTION_OK)
        rc = PE_EUNAVAIL;
    else if (!res)
        rc = PE_ENOMEM;
    else
        rc = pe_db_sqlstate_to_rc(state);
    if (primary)
        set_err(conn, primary);
    else if (res && *PQresultErrorMessage(res))
        set_err(conn, PQresultErrorMessage(res));
    else
        set_err(conn, PQerrorMessage(conn->pg));
    snprintf(conn->sqlstate, sizeof(conn->sqlstate), "%s", state ? state : "");
    conn->last_rc = rc;
    return rc;
}

bool pe_db_conn_lost(const pe_db_conn_t *conn)
{
    return conn && (!conn->pg || conn->lost || PQstatus(conn->pg) != CONNECTION_OK);
}

const char *pe_db_conn_error(const pe_db_conn_t *conn)
{
    return conn ? conn->err : "";
}

const char *pe_db_conn_sqlstate(const pe_db_conn_t *conn)
{
    return conn ? conn->sqlstate : "";
}

/* Ends a COPY a caller started through pe_db_exec by mistake. A COPY FROM STDIN is aborted
 * and the connection stays usable; any other COPY leaves data on the wire, so the connection is
 * dropped on release. */
static void abort_stray_copy(pe_db_conn_t *conn, ExecStatusType status)
{
    PGresult *res;

    if (status != PGRES_COPY_IN) {
        conn->discard = true;
        return;
    }
    PQputCopyEnd(conn->pg, "COPY FROM STDIN must use pe_db_copy_begin");
    while ((res = PQgetResult(conn->pg)) != NULL)
        PQclear(res);
}

int pe_db_exec(pe_db_conn_t *conn, const char *sql, int nparams, const char *const *params,
               pe_db_result_t **out)
{
    int rc = PE_EINTERNAL;
    PGresult *res = NULL;
    pe_db_result_t *wrap = NULL;

    if (out)
        *out = NULL;
    pe_db_conn_clear_error(conn);
    conn->fresh = false;
    if (conn->in_copy) {
        rc = pe_db_conn_fail_msg(conn, PE_EINTERNAL, "statement issued during COPY");
        goto out;
    }
    res = PQexecParams(conn->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        break;
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
        abort_stray_copy(conn, PQresultStatus(res));
        rc = pe_db_conn_fail_msg(conn, PE_EINTERNAL, "COPY must go through pe_db_copy_begin");
        goto out;
    default:
        rc = pe_db_conn_fail(conn, res);
        goto out;
    }
    if (out) {
        wrap = malloc(sizeof(*wrap));
        if (!wrap) {
            rc = pe_db_conn_fail_msg(conn, PE_ENOMEM, "out of memory");
            goto out;
        }
        wrap->res = res;
        res = NULL;
        *out = wrap;
    }
    rc = 0;
out:
    PQclear(res);
    return rc;
}

int pe_db_begin(pe_db_conn_t *conn)
{
    bool fresh = conn->fresh;
    int rc = pe_db_exec(conn, "BEGIN", 0, NULL, NULL);

    /* Invariant 5: the connection died while idle (a restart, a failover, a terminated
     * backend) after the pool's check, or in a way no check without a round trip can see. */
    if (rc != 0 && fresh && pe_db_conn_lost(conn)) {
        pe_log(PE_LOG_WARN, "db_reconnect", "connection lost before BEGIN (%.*s); reconnecting",
               (int)strcspn(conn->err, "\n"), conn->err);
        rc = pe_db_conn_reopen(conn);
        if (rc == 0)
            rc = pe_db_exec(conn, "BEGIN", 0, NULL, NULL);
    }
    return rc;
}

int pe_db_commit(pe_db_conn_t *conn)
{
    int rc = PE_EINTERNAL;
    int earlier = conn->last_rc;
    pe_db_result_t *res = NULL;

    /* In a failed transaction the server answers COMMIT with "ROLLBACK" and no error; that
     * must not read as success (invariant 4). */
    if (PQtransactionStatus(conn->pg) == PQTRANS_INERROR) {
        pe_db_rollback(conn);
        rc = pe_db_conn_fail_msg(conn, earlier ? earlier : PE_EINTERNAL,
                                 "transaction aborted by an earlier error");
        goto out;
    }
    rc = pe_db_exec(conn, "COMMIT", 0, NULL, &res);
    if (rc != 0)
        goto out;
    if (strcmp(PQcmdStatus(res->res), "COMMIT") != 0) {
        rc = pe_db_conn_fail_msg(conn, PE_EINTERNAL, "transaction was rolled back at COMMIT");
        goto out;
    }
    rc = 0;
out:
    pe_db_result_free(res);
    return rc;
}

int pe_db_rollback(pe_db_conn_t *conn)
{
    return pe_db_exec(conn, "ROLLBACK", 0, NULL, NULL);
}

int pe_db_tx(pe_db_pool_t *pool, int timeout_ms, int (*fn)(pe_db_conn_t *conn, void *arg),
             void *arg)
{
    pe_db_conn_t *conn = NULL;
    int rc = pe_db_acquire(pool, timeout_ms, &conn);

    if (rc != 0)
        goto out;
    rc = pe_db_begin(conn);
    if (rc != 0)
        goto out;
    rc = fn(conn, arg);
    if (rc != 0) {
        pe_db_rollback(conn);
        goto out;
    }
    rc = pe_db_commit(conn);
out:
    /* release rolls back whatever is still open (fn failed and ROLLBACK failed too). */
    pe_db_release(pool, conn);
    return rc;
}

size_t pe_db_result_rows(const pe_db_result_t *res)
{
    return res ? (size_t)PQntuples(res->res) : 0;
}

size_t pe_db_result_cols(const pe_db_result_t *res)
{
    return res ? (size_t)PQnfields(res->res) : 0;
}

static bool in_range(const pe_db_result_t *res, size_t row, size_t col)
{
    return res && row < (size_t)PQntuples(res->res) && col < (size_t)PQnfields(res->res);
}

const char *pe_db_result_get(const pe_db_result_t *res, size_t row, size_t col)
{
    if (!in_range(res, row, col))
        return "";
    return PQgetvalue(res->res, (int)row, (int)col);
}

int pe_db_result_json(const pe_db_result_t *res, size_t row, size_t col, cJSON **out)
{
    *out = NULL;
    if (!in_range(res, row, col) || PQgetisnull(res->res, (int)row, (int)col))
        return PE_EINTERNAL;
    const char *text = PQgetvalue(res->res, (int)row, (int)col);
    char why[64];
    return pe_json_parse(text, strlen(text), out, why, sizeof why) == 0 ? 0 : PE_EINTERNAL;
}

bool pe_db_result_isnull(const pe_db_result_t *res, size_t row, size_t col)
{
    if (!in_range(res, row, col))
        return true;
    return PQgetisnull(res->res, (int)row, (int)col) != 0;
}

uint64_t pe_db_result_affected(const pe_db_result_t *res)
{
    const char *s = res ? PQcmdTuples(res->res) : "";

    return *s ? strtoull(s, NULL, 10) : 0;
}

void pe_db_result_free(pe_db_result_t *res)
{
    if (!res)
        return;
    PQclear(res->res);
    free(res);
}

int pe_db_each_once(pe_db_pool_t *pool, int timeout_ms, const char *lock_key, const char *due_sql,
                    int nparams, const char *const *params,
                    int (*fn)(void *arg, const pe_db_result_t *due, size_t row), void *arg,
                    const char *what, size_t *done, char *err, size_t errlen)
{
    *done = 0;
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *lock = NULL, *due = NULL;
    bool locked = false;
    char sql[96];
    int rc = pe_db_acquire(pool, timeout_ms, &conn);
    if (rc != 0) {
        snprintf(err, errlen, "no database connection: %s", pe_strerror(rc));
        return rc;
    }
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%s)", lock_key);
    rc = pe_db_exec(conn, sql, 0, NULL, &lock);
    locked = rc == 0 && pe_db_result_get(lock, 0, 0)[0] == 't';
    if (rc == 0 && locked)
        rc = pe_db_exec(conn, due_sql, nparams, params, &due);
    if (rc != 0)
        snprintf(err, errlen, "%s", pe_db_conn_error(conn));
    size_t rows = rc == 0 && locked ? pe_db_result_rows(due) : 0, failed = 0;
    int first = 0;
    for (size_t i = 0; i < rows; i++) {
        int one = fn(arg, due, i);
        if (one == 0) {
            (*done)++;
        } else if (failed++ == 0) {
            first = one;
        }
    }
    if (rc == 0 && failed) {
        rc = first;
        snprintf(err, errlen, "%zu of %zu %s failed (first: %s)", failed, rows, what,
                 pe_strerror(first));
    }
    if (locked) {
        snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%s)", lock_key);
        pe_db_exec(conn, sql, 0, NULL, NULL);
    }
    pe_db_result_free(lock);
    pe_db_result_free(due);
    pe_db_release(pool, conn);
    return rc;
}
