/*
 * db/internal.h — what the files of src/db share and nobody else sees: the connection struct
 * and the SQLSTATE → PE_E… mapping. It includes libpq, so it must never be included from outside
 * src/db (invariant 1 of pe/db.h).
 *
 * Invariants:
 *  1. A pe_db_conn_t is lent to one thread at a time (between pe_db_acquire and pe_db_release);
 *     its fields are touched only by that thread, except `next`, which belongs to the pool's
 *     mutex while the connection is idle.
 *  2. err and sqlstate always hold NUL-terminated strings ("" when the last call succeeded).
 *  3. discard == true means the connection must be closed, not reused, when released.
 *  4. lost == true means the session itself is over (libpq lost the socket, the server sent a
 *     FATAL, SQLSTATE class 08 or 57P01..57P03): nothing more can run on it until it is reopened.
 *     It implies discard. It is sticky: only pe_db_conn_reopen clears it.
 *  5. fresh == true means no statement has been sent on the connection since it was lent (or
 *     reopened): its borrower has no transaction and no session state on it (a SET, a session
 *     advisory lock, a LISTEN, a temporary table) that a new connection would silently lack.
 */
#ifndef PE_DB_INTERNAL_H
#define PE_DB_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "pe/db.h"

struct pe_db_conn {
    PGconn *pg;              /* NULL only after a failed reopen: then lost */
    pe_db_pool_t *pool;      /* whose settings open it; borrowed, outlives the connection */
    struct pe_db_conn *next; /* idle list link, guarded by the pool mutex */
    uint64_t epoch;          /* the pool's dead-connection epoch when it was last known alive */
    bool in_copy;            /* between pe_db_copy_begin and pe_db_copy_end */
    bool discard;            /* close instead of reusing on release (invariant 3) */
    bool lost;               /* the session is over (invariant 4) */
    bool fresh;              /* nothing sent since lent or reopened (invariant 5) */
    int last_rc;             /* PE_E… code of the last failed call, 0 after a success */
    char sqlstate[6];
    char err[512];
};

/* Records a failure on conn from res (may be NULL: then from the connection) and returns the
 * mapped PE_E… code. Does not clear res. */
int pe_db_conn_fail(pe_db_conn_t *conn, const PGresult *res);
/* Records a failure described by the caller (no SQLSTATE) and returns rc. */
int pe_db_conn_fail_msg(pe_db_conn_t *conn, int rc, const char *msg);
/* Forgets the last error. */
void pe_db_conn_clear_error(pe_db_conn_t *conn);
/* Opens a connection of the pool's settings that is not counted in the pool (the listener's);
 * returns 0 or PE_EUNAVAIL / PE_ENOMEM. Close it with pe_db_conn_close (accepts NULL). */
int pe_db_pool_open_conn(pe_db_pool_t *pool, pe_db_conn_t **out);
void pe_db_conn_close(pe_db_conn_t *conn);
/* Replaces conn's PGconn by a new one of its pool's settings, in place (the slot, the struct and
 * the borrower stay; conn is fresh again), and tells the pool a connection was found dead so
 * that its idle siblings are checked with a round trip before they are lent (pool.c,
 * invariant 5). Only for a connection whose session is lost or that carries nothing its
 * borrower needs. Returns 0, or PE_EUNAVAIL / PE_ENOMEM (conn->pg is then NULL and conn lost:
 * release it). */
int pe_db_conn_reopen(pe_db_conn_t *conn);
/* True when sqlstate says the session is over or cannot start: class 08, 57P01..57P03. */
bool pe_db_sqlstate_is_lost(const char *sqlstate);
/* Maps a five-character SQLSTATE to a PE_E… code (NULL or "" → PE_EINTERNAL). Thread-safe. */
int pe_db_sqlstate_to_rc(const char *sqlstate);

#endif /* PE_DB_INTERNAL_H */
