/*
 * db/migrate.h — the migration runner over an explicit list of files. pe_db_migrate and
 * pe_db_migrations_current (pe/db.h) call these with the embedded migrations; tests call them
 * with lists of their own to exercise failures the real migrations never show. Private to
 * src/db and its tests; free of libpq.
 *
 * Invariants:
 *  1. files[] is sorted by path and every path is NNNN_name.sql (4 digits, then [a-z0-9_]+);
 *     versions (the 4 digits) strictly increase. A list that breaks this is refused whole.
 *  2. A migration is recorded in schema_migrations in the same transaction that applies it.
 */
#ifndef PE_DB_MIGRATE_H
#define PE_DB_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "pe/db.h"

/* The session advisory lock that serialises migrators: "pe-migra" as a big-endian int64. */
#define PE_DB_MIGRATION_LOCK_KEY "8098929452838777441"

/* Checks one file name against invariant 1. Returns 0 or PE_EINVAL (reason in err). */
int pe_db_migration_name_check(const char *path, char *err, size_t errlen);

/* pe_db_migrate over files[0..n). Same contract. Thread-safe. */
int pe_db_migrate_files(pe_db_pool_t *pool, const pe_embedded_file_t *files, size_t n,
                        int *applied_out, char *err, size_t errlen);
/* pe_db_migrations_current over files[0..n). Same contract. Thread-safe. */
int pe_db_migrations_current_files(pe_db_pool_t *pool, const pe_embedded_file_t *files, size_t n,
                                   bool *current, char *err, size_t errlen);

#endif /* PE_DB_MIGRATE_H */
