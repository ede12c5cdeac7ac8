/*
 * pe/db.h — PostgreSQL access: a thread-safe connection pool, parameterised statements,
 * transactions, bulk COPY, and the migration runner.
 *
 * Invariants:
 *  1. Only src/db/ includes libpq; everyone else sees the opaque types below.
 *  2. Only parameterised SQL ($1, $2, …) is executed with caller data; the text of a statement
 *     is always a compile-time constant of the caller.
 *  3. A connection is used by one thread at a time: acquire, use, release. A connection released
 *     in a broken state or inside a transaction is reset (ROLLBACK or reconnect) before reuse.
 *  4. libpq / SQLSTATE errors are mapped to PE_E… codes: unique/exclusion/serialization
 *     violations → PE_ECONFLICT, check/not-null/foreign-key/invalid-text → PE_EINVAL,
 *     connection failures → PE_EUNAVAIL, statement timeouts → PE_ETIMEOUT, else PE_EINTERNAL.
 *     In detail (the table is in src/db/exec.c): deadlocks → PE_ECONFLICT, lock_timeout →
 *     PE_ETIMEOUT, insufficient privilege → PE_EFORBIDDEN; a syntax error in statement text is
 *     a bug (PE_EINTERNAL), invalid input syntax of a parameter value is PE_EINVAL.
 *  5. A connection the server closed while it sat unused (a restart, a failover,
 *     pg_terminate_backend, a network drop) is replaced before it fails anything that cannot be
 *     repeated safely: pe_db_acquire and pe_db_conn_check look at it first (and send an empty
 *     query once another connection of the pool was found dead), and pe_db_begin as the first
 *     statement after acquire reconnects and begins again. A statement that ran outside a
 *     transaction, and COMMIT, are never repeated: whether they took effect is unknown.
 */
#ifndef PE_DB_H
#define PE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pe/core.h"

typedef struct pe_db_pool pe_db_pool_t;
typedef struct pe_db_conn pe_db_conn_t;
typedef struct pe_db_result pe_db_result_t;

typedef struct {
    unsigned size;    /* connections the pool may open */
    unsigned open;    /* connections currently open */
    unsigned in_use;  /* connections currently lent out */
    unsigned waiting; /* threads waiting for a connection */
    uint64_t acquired_total;
    uint64_t timeouts_total;
} pe_db_pool_stats_t;

/* Checks that conninfo parses as a libpq conninfo string or URI (no connection is made).
 * Returns 0 or PE_EINVAL with libpq's reason in err. Thread-safe. */
int pe_db_conninfo_check(const char *conninfo, char *err, size_t errlen);
/* Creates a pool of at most `size` connections to conninfo (libpq conninfo or URI). Opens
 * connections lazily; does not fail when the server is down (acquire does). Returns NULL on
 * ENOMEM. The caller frees with pe_db_pool_free. Thread-safe after construction. */
pe_db_pool_t *pe_db_pool_new(const char *conninfo, unsigned size);
/* Closes every connection. No connection may be lent out. Accepts NULL. */
void pe_db_pool_free(pe_db_pool_t *pool);
/* Lends a connection, waiting up to timeout_ms for one to be free (≤ 0: do not wait); an idle
 * one the server has closed is replaced first (invariant 5). Returns 0, PE_ETIMEOUT or
 * PE_EUNAVAIL (cannot connect). Thread-safe. */
int pe_db_acquire(pe_db_pool_t *pool, int timeout_ms, pe_db_conn_t **out);
/* Returns a connection to the pool (rolls back an open transaction, drops a broken one).
 * Accepts NULL. Thread-safe. */
void pe_db_release(pe_db_pool_t *pool, pe_db_conn_t *conn);
void pe_db_pool_stats(pe_db_pool_t *pool, pe_db_pool_stats_t *out);
/* Acquires a connection and runs SELECT 1. Returns 0 or a PE_E… code. */
int pe_db_ping(pe_db_pool_t *pool, int timeout_ms);
/* For a connection kept lent across idle periods (a collector writer's), between transactions:
 * checks it as pe_db_acquire checks an idle one and, when the server has closed it, replaces it
 * in place (session state is not carried over). Inside a transaction or a COPY it only reports.
 * Returns 0, or PE_EUNAVAIL when no new connection can be made (release conn then). Called by
 * the borrowing thread only. */
int pe_db_conn_check(pe_db_conn_t *conn);
/* True when the session of conn is over: libpq lost the link, or the last failure was SQLSTATE
 * class 08 or 57P01..57P03 (shutdown, crash, terminated). Nothing more can run on conn, but a new
 * connection may well work; whatever conn had not committed was rolled back by the server.
 * False for NULL. */
bool pe_db_conn_lost(const pe_db_conn_t *conn);

/* Executes one parameterised statement (text parameters; NULL entry = SQL NULL). On success
 * returns 0 and, when out is non-NULL, the result (caller frees with pe_db_result_free).
 * On failure returns a PE_E… code; pe_db_conn_error() tells the server's message. */
int pe_db_exec(pe_db_conn_t *conn, const char *sql, int nparams, const char *const *params,
               pe_db_result_t **out);
/* The last error message on conn (borrowed, valid until the next call on conn), or "". */
const char *pe_db_conn_error(const pe_db_conn_t *conn);
/* The SQLSTATE of the last error on conn (borrowed), or "". */
const char *pe_db_conn_sqlstate(const pe_db_conn_t *conn);

/* BEGIN. As the first statement after pe_db_acquire, a lost connection is reopened and BEGIN sent
 * once more (invariant 5). Returns 0 or a PE_E… code. */
int pe_db_begin(pe_db_conn_t *conn);
int pe_db_commit(pe_db_conn_t *conn);
int pe_db_rollback(pe_db_conn_t *conn);

/* Runs fn(conn, arg) inside BEGIN … COMMIT on a pooled connection; ROLLBACK when fn returns
 * non-zero (and that value is returned). Waits up to timeout_ms for a connection. */
int pe_db_tx(pe_db_pool_t *pool, int timeout_ms, int (*fn)(pe_db_conn_t *conn, void *arg),
             void *arg);

/* A job that runs once across instances, row by row: on one pooled connection it takes the
 * session advisory lock lock_key (a bigint literal) without waiting — when another session holds
 * it, returns 0 at once with *done 0 — runs due_sql (params may be NULL when nparams is 0) and
 * calls fn(arg, due, row) for every row, the lock held throughout and released at the end
 * (also on failure). A row that fails does not stop the others: *done counts the rows fn
 * returned 0 for, and the first failure is returned with err = "<failed> of <rows> <what>
 * failed (first: <message>)". Waits up to timeout_ms for the connection; fn may use other
 * pooled connections. Thread-safe. */
int pe_db_each_once(pe_db_pool_t *pool, int timeout_ms, const char *lock_key, const char *due_sql,
                    int nparams, const char *const *params,
                    int (*fn)(void *arg, const pe_db_result_t *due, size_t row), void *arg,
                    const char *what, size_t *done, char *err, size_t errlen);

/* COPY: starts `COPY … FROM STDIN` (sql is the COPY statement), sends data (COPY text format)
 * in pieces, and ends it. Returns 0 or a PE_E… code (end reports rows rejected by the server). */
int pe_db_copy_begin(pe_db_conn_t *conn, const char *sql);
int pe_db_copy_send(pe_db_conn_t *conn, const char *data, size_t len);
int pe_db_copy_end(pe_db_conn_t *conn, uint64_t *rows_out);
/* Appends n bytes of s escaped for COPY text format (backslash, tab, newline, CR, other
 * control bytes) to b — no delimiter. Returns 0 or PE_ENOMEM. */
int pe_db_copy_escape(pe_buf_t *b, const char *s, size_t n);

/* ---- COPY rows encoded in memory (copy_encode.c) ---------------------------------------------
 * Every encoder appends to b and returns 0 or PE_ENOMEM (then b holds a partial row: discard
 * it). Pure apart from b, thread-safe for distinct buffers, allocation-free beyond b's growth. */

/* Text format: s escaped (NULL is \N), then a tab, or a newline when last. */
int pe_db_copy_text_field(pe_buf_t *b, const char *s, bool last);
/* "2026-11-24", the text form of a date (UTC day of unix_us); returns its length (10). */
#define PE_DB_TEXT_DATE_LEN 11
size_t pe_db_text_date(int64_t unix_us, char out[PE_DB_TEXT_DATE_LEN]);
/* "2026-11-24 10:00:00.123456+00", the text form of a timestamptz. */
#define PE_DB_TEXT_TIMESTAMPTZ_LEN 32
void pe_db_text_timestamptz(int64_t unix_us, char out[PE_DB_TEXT_TIMESTAMPTZ_LEN]);

/* Binary format ("COPY … FROM STDIN (FORMAT binary)"): the data is the header, the rows, the
 * trailer. A row is pe_db_copy_bin_row(b, n) followed by exactly n fields. */
#define PE_DB_COPY_BINARY_HEADER      "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0"
#define PE_DB_COPY_BINARY_HEADER_LEN  19
#define PE_DB_COPY_BINARY_TRAILER     "\377\377"
#define PE_DB_COPY_BINARY_TRAILER_LEN 2
int pe_db_copy_bin_row(pe_buf_t *b, uint16_t nfields);
int pe_db_copy_bin_null(pe_buf_t *b);
/* s NULL is a NULL field; s must hold no NUL byte. */
int pe_db_copy_bin_text(pe_buf_t *b, const char *s);
int pe_db_copy_bin_uuid(pe_buf_t *b, const unsigned char uuid[16]);
int pe_db_copy_bin_timestamptz(pe_buf_t *b, int64_t unix_us);
int pe_db_copy_bin_int2(pe_buf_t *b, int16_t v);
/* j's JSON as jsonb (j NULL is a NULL field); text printed as cJSON_PrintUnformatted would. */
int pe_db_copy_bin_jsonb(pe_buf_t *b, const cJSON *j);

size_t pe_db_result_rows(const pe_db_result_t *res);
size_t pe_db_result_cols(const pe_db_result_t *res);
/* Text value of (row, col); "" for NULL; borrowed until pe_db_result_free. */
const char *pe_db_result_get(const pe_db_result_t *res, size_t row, size_t col);
/* Parses the JSON the database built in (row, col) (a json/jsonb column, or text the query
 * made with to_json/json_build_object). Returns 0 and *out (caller deletes), or PE_EINTERNAL
 * when the value is NULL, out of range or not JSON (the database broke its own contract). */
int pe_db_result_json(const pe_db_result_t *res, size_t row, size_t col, cJSON **out);
bool pe_db_result_isnull(const pe_db_result_t *res, size_t row, size_t col);
/* Rows affected by an INSERT/UPDATE/DELETE (cmdTuples). */
uint64_t pe_db_result_affected(const pe_db_result_t *res);
void pe_db_result_free(pe_db_result_t *res);

/* ---- notifications (LISTEN) ---------------------------------------------------------------------
 */

/* A thread that holds one connection of the pool's settings (not counted in the pool), LISTENs
 * on a channel and calls fn for every notification. fn(arg, payload) runs on the listener's
 * thread; payload NULL means "notifications may have been missed" (the connection was lost or
 * has just been made): whoever caches must forget everything. It reconnects on its own. */
typedef struct pe_db_listener pe_db_listener_t;
typedef void (*pe_db_notify_fn)(void *arg, const char *payload);

/* channel: [a-z_]{1,63}. Returns NULL on ENOMEM, a bad channel, or when the thread cannot
 * start; a database that cannot be reached yet is not an error (the thread keeps trying). */
pe_db_listener_t *pe_db_listener_start(pe_db_pool_t *pool, const char *channel, pe_db_notify_fn fn,
                                       void *arg);
/* True while the listener is connected and listening: only then is a cache it keeps fresh
 * trustworthy. Thread-safe. */
bool pe_db_listener_live(const pe_db_listener_t *l);
/* Stops the thread (within ~0.2 s; up to the connect timeout while it is connecting), closes
 * the connection, frees. Accepts NULL. */
void pe_db_listener_stop(pe_db_listener_t *l);

/* ---- migrations ------------------------------------------------------------------------------ */

/* Applies every embedded migration (sql/migrations/NNNN_name.sql) not yet recorded in
 * schema_migrations, each in its own transaction, recording its SHA-256 checksum. Holds a
 * session advisory lock so concurrent migrators serialise. Refuses (PE_ECONFLICT, message in
 * err) when an applied migration's file was edited. *applied_out counts what ran. */
int pe_db_migrate(pe_db_pool_t *pool, int *applied_out, char *err, size_t errlen);
/* Sets *current = true when every embedded migration is applied with a matching checksum.
 * Returns 0 or a PE_E… code (PE_EUNAVAIL when the database is unreachable). */
int pe_db_migrations_current(pe_db_pool_t *pool, bool *current, char *err, size_t errlen);

#endif /* PE_DB_H */
