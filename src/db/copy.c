/*
 * db/copy.c — bulk loading with COPY … FROM STDIN in text format, and the escaping that keeps
 * caller data from being read as delimiters, row ends or the end-of-data marker.
 *
 *     IDLE --pe_db_copy_begin--> IN_COPY --pe_db_copy_send*--> IN_COPY --pe_db_copy_end--> IDLE
 *                                   |
 *                                   +--pe_db_release--> aborted (PQputCopyEnd with a message)
 *
 * Invariants:
 *  1. conn->in_copy is true exactly while the server waits for COPY data on conn.
 *  2. pe_db_copy_end always leaves the connection out of COPY state, whatever the outcome, and
 *     drains every pending result.
 *  3. pe_db_copy_escape output never contains a raw tab, newline, carriage return or a
 *     backslash that does not start an escape, so "\." can never appear as a line by itself.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int pe_db_copy_begin(pe_db_conn_t *conn, const char *sql)
{
    int rc = PE_EINTERNAL;
    PGresult *res = NULL;

    pe_db_conn_clear_error(conn);
    conn->fresh = false;
    if (conn->in_copy) {
        rc = pe_db_conn_fail_msg(conn, PE_EINTERNAL, "a COPY is already in progress");
        goto out;
    }
    /* PQexecParams with no parameters: one statement only (see exec.c invariant 1). */
    res = PQexecParams(conn->pg, sql, 0, NULL, NULL, NULL, NULL, 0);
    switch (PQresultStatus(res)) {
    case PGRES_COPY_IN:
        break;
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        rc = pe_db_conn_fail_msg(conn, PE_EINTERNAL, "statement is not COPY … FROM STDIN");
        goto out;
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
        conn->discard = true; /* unread COPY data wedges the connection */
        rc = pe_db_conn_fail_msg(conn, PE_EINTERNAL, "statement is not COPY … FROM STDIN");
        goto out;
    default:
        rc = pe_db_conn_fail(conn, res);
        goto out;
    }
    conn->in_copy = true;
    rc = 0;
out:
    PQclear(res);
    return rc;
}

int pe_db_copy_send(pe_db_conn_t *conn, const char *data, size_t len)
{
    int rc = PE_EINTERNAL;

    if (!conn->in_copy) {
        rc = pe_db_conn_fail_msg(conn, PE_EINTERNAL, "no COPY in progress");
        goto out;
    }
    while (len > 0) {
        /* PQputCopyData takes an int length. */
        int chunk = len > (size_t)(INT_MAX / 2) ? INT_MAX / 2 : (int)len;

        /* In blocking mode 1 = queued (possibly after waiting), -1 = failed; never 0. */
        if (PQputCopyData(conn->pg, data, chunk) != 1) {
            rc = pe_db_conn_fail(conn, NULL);
            goto out;
        }
        data += chunk;
        len -= (size_t)chunk;
    }
    rc = 0;
out:
    return rc;
}

int pe_db_copy_end(pe_db_conn_t *conn, uint64_t *rows_out)
{
    int rc = PE_EINTERNAL;
    PGresult *res = NULL;
    const char *tuples;

    if (rows_out)
        *rows_out = 0;
    if (!conn->in_copy) {
        rc = pe_db_conn_fail_msg(conn, PE_EINTERNAL, "no COPY in progress");
        goto out;
    }
    conn->in_copy = false;
    if (PQputCopyEnd(conn->pg, NULL) != 1) {
        rc = pe_db_conn_fail(conn, NULL);
        conn->discard = true; /* the server may still think it is in COPY */
        goto out;
    }
    res = PQgetResult(conn->pg);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = pe_db_conn_fail(conn, res);
        goto out;
    }
    tuples = PQcmdTuples(res);
    if (rows_out && *tuples)
        *rows_out = strtoull(tuples, NULL, 10);
    pe_db_conn_clear_error(conn);
    rc = 0;
out:
    PQclear(res);
    if (res) {
        /* Invariant 2: nothing may be left pending for the next statement. */
        while ((res = PQgetResult(conn->pg)) != NULL)
            PQclear(res);
    }
    return rc;
}

int pe_db_copy_escape(pe_buf_t *b, const char *s, size_t n)
{
    static const char octal[] = "01234567";
    size_t run = 0; /* start of the pending run of bytes that need no escaping */

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[5];
        size_t esclen = 2;

        if (c >= 0x20 && c != 0x7f && c != '\\')
            continue;
        esc[0] = '\\';
        switch (c) {
        case '\\':
            esc[1] = '\\';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\v':
            esc[1] = 'v';
            break;
        default:
            /* Three octal digits, so a following digit cannot join the escape. A NUL becomes
             * \000, which the server rejects: text cannot hold NUL, and failing loudly beats
             * truncating silently. */
            esc[1] = octal[(c >> 6) & 7];
            esc[2] = octal[(c >> 3) & 7];
            esc[3] = octal[c & 7];
            esclen = 4;
            break;
        }
        if (pe_buf_append(b, s + run, i - run) != 0 || pe_buf_append(b, esc, esclen) != 0)
            return PE_ENOMEM;
        run = i + 1;
    }
    if (run < n && pe_buf_append(b, s + run, n - run) != 0)
        return PE_ENOMEM;
    return 0;
}
