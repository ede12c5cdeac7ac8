/*
 * db/migrate.c — applies the SQL files embedded from sql/migrations/ in order, once each, and
 * refuses to run against a database whose applied migrations no longer match their files.
 *
 * One run (pe_db_migrate_files):
 *
 *   check names + checksums ─▶ acquire ─▶ pg_advisory_lock ─▶ CREATE TABLE IF NOT EXISTS
 *        ─▶ read schema_migrations ─▶ any checksum differs? ──yes──▶ PE_ECONFLICT
 *                                          │ no
 *                                          ▼
 *        for each file not recorded: BEGIN ─▶ file text ─▶ INSERT row ─▶ COMMIT ─▶ log
 *                                          ▼
 *        (always) ROLLBACK if needed ─▶ pg_advisory_unlock ─▶ RESET timeouts ─▶ release
 *
 * Invariants:
 *  1. Only the holder of the advisory lock PE_DB_MIGRATION_LOCK_KEY creates schema_migrations
 *     or applies a file, so concurrent migrators serialise and the later ones find nothing to
 *     do; the lock is session-level and released before the connection goes back to the pool
 *     (or the connection is discarded, which ends the session and the lock with it).
 *  2. A file and its schema_migrations row commit together or not at all.
 *  3. Checksums of every applied file are verified before anything is applied.
 *  4. The file text is the only SQL executed with PQexec (several statements per file); it is
 *     a compile-time constant of the binary, never caller data.
 *  5. A file must leave its transaction open: one that says COMMIT or ROLLBACK itself would
 *     break invariant 2, and is refused.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "migrate.h"

#define CHECKSUM_HEX (crypto_hash_sha256_BYTES * 2 + 1)
#define ACQUIRE_MS   30000
#define MAX_NAME_LEN 128
#define VERSION_LEN  4
#define SQL_LOCK     "SELECT pg_advisory_lock(" PE_DB_MIGRATION_LOCK_KEY ")"
#define SQL_UNLOCK   "SELECT pg_advisory_unlock(" PE_DB_MIGRATION_LOCK_KEY ")"
#define SQL_TABLE                                                                                  \
    "CREATE TABLE IF NOT EXISTS schema_migrations ("                                               \
    "version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, "                       \
    "applied_at timestamptz NOT NULL DEFAULT now())"

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int pe_db_migration_name_check(const char *path, char *err, size_t errlen)
{
    size_t n = path ? strlen(path) : 0;
    size_t i;

    if (n < VERSION_LEN + 1 + 1 + 4 || n > MAX_NAME_LEN)
        goto bad;
    for (i = 0; i < VERSION_LEN; i++) {
        if (path[i] < '0' || path[i] > '9')
            goto bad;
    }
    if (path[VERSION_LEN] != '_' || strcmp(path + n - 4, ".sql") != 0)
        goto bad;
    for (i = VERSION_LEN + 1; i < n - 4; i++) {
        char c = path[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            goto bad;
    }
    return 0;
bad:
    errf(err, errlen, "migration file name \"%s\" is not NNNN_name.sql (name: a-z, 0-9, _)",
         path ? path : "(null)");
    return PE_EINVAL;
}

/* Invariant 1 of migrate.h, plus: no NUL inside a file (PQexec would stop there silently). */
static int check_files(const pe_embedded_file_t *files, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (pe_db_migration_name_check(files[i].path, err, errlen) != 0)
            return PE_EINVAL;
        if (strlen((const char *)files[i].data) != files[i].len) {
            errf(err, errlen, "migration %s contains a NUL byte", files[i].path);
            return PE_EINVAL;
        }
        if (i > 0 && memcmp(files[i - 1].path, files[i].path, VERSION_LEN) >= 0) {
            errf(err, errlen, "migrations %s and %s are out of order or share a version",
                 files[i - 1].path, files[i].path);
            return PE_EINVAL;
        }
    }
    return 0;
}

/* Returns a calloc'ed array of n hex SHA-256 sums (CHECKSUM_HEX bytes each), or NULL. */
static char *checksums(const pe_embedded_file_t *files, size_t n)
{
    char *sums = calloc(n ? n : 1, CHECKSUM_HEX);
    unsigned char digest[crypto_hash_sha256_BYTES];

    if (!sums)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        crypto_hash_sha256(digest, files[i].data, files[i].len);
        sodium_bin2hex(sums + i * CHECKSUM_HEX, CHECKSUM_HEX, digest, sizeof(digest));
    }
    return sums;
}

/* Row of `applied` (version, checksum) whose version is the file's, or -1. */
static long find_applied(const pe_db_result_t *applied, const char *path)
{
    char version[VERSION_LEN + 1];

    memcpy(version, path, VERSION_LEN);
    version[VERSION_LEN] = '\0';
    for (size_t r = 0; r < pe_db_result_rows(applied); r++) {
        if (strcmp(pe_db_result_get(applied, r, 0), version) == 0)
            return (long)r;
    }
    return -1;
}

/* Checks every applied file against its recorded checksum (invariant 3). */
static int verify_applied(const pe_embedded_file_t *files, size_t n, const char *sums,
                          const pe_db_result_t *applied, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        long r = find_applied(applied, files[i].path);
        const char *recorded;

        if (r < 0)
            continue;
        recorded = pe_db_result_get(applied, (size_t)r, 1);
        if (strcmp(recorded, sums + i * CHECKSUM_HEX) != 0) {
            errf(err, errlen,
                 "migration %s was changed after it was applied (recorded checksum %.12s, file "
                 "%.12s); put schema changes in a new migration",
                 files[i].path, recorded, sums + i * CHECKSUM_HEX);
            return PE_ECONFLICT;
        }
    }
    return 0;
}

/* Applies one file and records it, in one transaction (invariants 2, 4, 5). */
static int apply_one(pe_db_conn_t *conn, const pe_embedded_file_t *f, const char *sum, char *err,
                     size_t errlen)
{
    int rc = PE_EINTERNAL;
    PGresult *res = NULL;
    char version[VERSION_LEN + 1];
    char name[MAX_NAME_LEN];
    const char *params[3] = {version, name, sum};
    int64_t t0 = pe_now_mono_us();

    memcpy(version, f->path, VERSION_LEN);
    version[VERSION_LEN] = '\0';
    snprintf(name, sizeof(name), "%.*s", (int)(strlen(f->path) - VERSION_LEN - 1 - 4),
             f->path + VERSION_LEN + 1);
    rc = pe_db_begin(conn);
    if (rc != 0) {
        errf(err, errlen, "migration %s: BEGIN failed: %s", f->path, pe_db_conn_error(conn));
        goto out;
    }
    res = PQexec(conn->pg, (const char *)f->data);
    switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
        break;
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
        conn->discard = true; /* the session is mid-COPY; closing it rolls everything back */
        rc = PE_EINTERNAL;
        errf(err, errlen, "migration %s uses COPY with STDIN/STDOUT, which cannot be embedded",
             f->path);
        goto out;
    default:
        rc = pe_db_conn_fail(conn, res);
        errf(err, errlen, "migration %s failed: %s (SQLSTATE %s)", f->path, pe_db_conn_error(conn),
             pe_db_conn_sqlstate(conn));
        /* A broken file is our bug, not bad input: keep only "unreachable" and "timed out". */
        if (rc != PE_EUNAVAIL && rc != PE_ETIMEOUT)
            rc = PE_EINTERNAL;
        goto out;
    }
    if (PQtransactionStatus(conn->pg) != PQTRANS_INTRANS) {
        rc = PE_EINTERNAL;
        errf(err, errlen, "migration %s ends its own transaction (COMMIT/ROLLBACK inside)",
             f->path);
        goto out;
    }
    rc = pe_db_exec(conn,
                    "INSERT INTO schema_migrations (version, name, checksum) "
                    "VALUES ($1, $2, $3)",
                    3, params, NULL);
    if (rc == 0)
        rc = pe_db_commit(conn);
    if (rc != 0) {
        errf(err, errlen, "migration %s: recording it failed: %s", f->path, pe_db_conn_error(conn));
        goto out;
    }
    pe_log(PE_LOG_INFO, "migration_applied", "%s in %.1f ms", f->path,
           (double)(pe_now_mono_us() - t0) / 1000.0);
    rc = 0;
out:
    PQclear(res);
    return rc;
}

/* Session settings for the run: no statement timeout (a migration may take long, and it is a
 * deliberate operator action); up to 300 s for another migrator to finish; then at most 30 s
 * for each table lock a migration needs, because a DDL statement queued behind a long query
 * makes every later query on that table queue behind it — better to fail (PE_ETIMEOUT, rolled
 * back) and be retried than to stall the running servers. */
static int begin_session(pe_db_conn_t *conn, bool *locked, char *err, size_t errlen)
{
    int rc;

    rc = pe_db_exec(conn, "SET statement_timeout = 0", 0, NULL, NULL);
    if (rc == 0)
        rc = pe_db_exec(conn, "SET lock_timeout = '300s'", 0, NULL, NULL);
    if (rc == 0) {
        rc = pe_db_exec(conn, SQL_LOCK, 0, NULL, NULL);
        *locked = rc == 0;
    }
    if (rc == 0)
        rc = pe_db_exec(conn, "SET lock_timeout = '30s'", 0, NULL, NULL);
    if (rc != 0)
        errf(err, errlen, "cannot take the migration lock: %s", pe_db_conn_error(conn));
    return rc;
}

/* Undoes begin_session; on any doubt the connection is discarded, which ends the session and
 * with it the advisory lock (invariant 1). */
static void end_session(pe_db_conn_t *conn, bool locked)
{
    if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE && pe_db_rollback(conn) != 0)
        conn->discard = true;
    if (locked && pe_db_exec(conn, SQL_UNLOCK, 0, NULL, NULL) != 0)
        conn->discard = true;
    if (pe_db_exec(conn, "RESET statement_timeout", 0, NULL, NULL) != 0 ||
        pe_db_exec(conn, "RESET lock_timeout", 0, NULL, NULL) != 0)
        conn->discard = true;
}

/* What both entry points do first: validate the file list, checksum it, take a connection.
 * On success the caller owns *sums (free) and *conn (pe_db_release). */
static int prepare(pe_db_pool_t *pool, const pe_embedded_file_t *files, size_t n, char **sums,
                   pe_db_conn_t **conn, char *err, size_t errlen)
{
    errf(err, errlen, "%s", "");
    int rc = check_files(files, n, err, errlen);
    if (rc != 0)
        return rc;
    if (pe_crypto_init() != 0) {
        errf(err, errlen, "libsodium failed to initialise");
        return PE_EINTERNAL;
    }
    *sums = checksums(files, n);
    if (!*sums)
        return PE_ENOMEM;
    rc = pe_db_acquire(pool, ACQUIRE_MS, conn);
    if (rc != 0)
        errf(err, errlen, "no database connection: %s", pe_strerror(rc));
    return rc;
}

int pe_db_migrate_files(pe_db_pool_t *pool, const pe_embedded_file_t *files, size_t n,
                        int *applied_out, char *err, size_t errlen)
{
    int rc = PE_EINTERNAL;
    int applied = 0;
    char *sums = NULL;
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *rows = NULL;
    bool locked = false;

    rc = prepare(pool, files, n, &sums, &conn, err, errlen);
    if (rc != 0)
        goto out;
    rc = begin_session(conn, &locked, err, errlen);
    if (rc != 0)
        goto out;
    rc = pe_db_exec(conn, SQL_TABLE, 0, NULL, NULL);
    if (rc == 0)
        rc = pe_db_exec(conn, "SELECT version, checksum FROM schema_migrations", 0, NULL, &rows);
    if (rc != 0) {
        errf(err, errlen, "schema_migrations: %s", pe_db_conn_error(conn));
        goto out;
    }
    rc = verify_applied(files, n, sums, rows, err, errlen);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (find_applied(rows, files[i].path) >= 0)
            continue;
        rc = apply_one(conn, &files[i], sums + i * CHECKSUM_HEX, err, errlen);
        if (rc != 0)
            goto out;
        applied++;
    }
    rc = 0;
out:
    if (conn)
        end_session(conn, locked);
    pe_db_result_free(rows);
    pe_db_release(pool, conn);
    free(sums);
    if (applied_out)
        *applied_out = applied;
    return rc;
}

int pe_db_migrations_current_files(pe_db_pool_t *pool, const pe_embedded_file_t *files, size_t n,
                                   bool *current, char *err, size_t errlen)
{
    int rc = PE_EINTERNAL;
    char *sums = NULL;
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *rows = NULL;
    size_t pending = 0;
    const char *first_pending = NULL;
    bool exists;

    *current = false;
    rc = prepare(pool, files, n, &sums, &conn, err, errlen);
    if (rc != 0)
        goto out;
    /* Asking first keeps an absent table ("nothing applied yet") out of the server's log. */
    rc = pe_db_exec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, &rows);
    if (rc != 0) {
        errf(err, errlen, "schema_migrations: %s", pe_db_conn_error(conn));
        goto out;
    }
    exists = strcmp(pe_db_result_get(rows, 0, 0), "t") == 0;
    pe_db_result_free(rows);
    rows = NULL;
    if (exists) {
        rc = pe_db_exec(conn, "SELECT version, checksum FROM schema_migrations", 0, NULL, &rows);
        if (rc != 0) {
            errf(err, errlen, "schema_migrations: %s", pe_db_conn_error(conn));
            goto out;
        }
        if (verify_applied(files, n, sums, rows, err, errlen) != 0)
            goto out; /* an answer, not a failure: not current, and err says why */
    }
    for (size_t i = 0; i < n; i++) {
        if (rows && find_applied(rows, files[i].path) >= 0)
            continue;
        if (!first_pending)
            first_pending = files[i].path;
        pending++;
    }
    if (pending) {
        errf(err, errlen, "%zu migration(s) pending, first %s", pending, first_pending);
        goto out;
    }
    *current = true;
out:
    pe_db_result_free(rows);
    pe_db_release(pool, conn);
    free(sums);
    return rc;
}

int pe_db_migrate(pe_db_pool_t *pool, int *applied_out, char *err, size_t errlen)
{
    return pe_db_migrate_files(pool, pe_embedded_migrations, pe_embedded_migrations_count,
                               applied_out, err, errlen);
}

int pe_db_migrations_current(pe_db_pool_t *pool, bool *current, char *err, size_t errlen)
{
    return pe_db_migrations_current_files(pool, pe_embedded_migrations,
                                          pe_embedded_migrations_count, current, err, errlen);
}
