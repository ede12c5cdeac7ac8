/*
 * maintain.c — partition maintenance for the event tables: pg_partman creates the partitions
 * ahead and retires those past retention (events PE_EVENTS_RETENTION_DAYS, 400 by default,
 * idempotency keys 10 days, dead letters 30 days, see 0002_events.sql). Run hourly by the scheduler
 * inside `serve` and on demand by `profit-engine maintain`.
 *
 * Invariants:
 *  1. One runner at a time across every instance: a session advisory lock; another instance
 *     holding it means there is nothing to do now.
 *  2. run_maintenance_proc commits per partition set, so it runs outside any transaction.
 */
#include <stdio.h>

#include "pe/collector.h"

#define MAINTAIN_LOCK_KEY  "7262937150124823901" /* arbitrary, fixed: "pe maintain" */
#define ACQUIRE_TIMEOUT_MS 5000

int pe_collector_maintain(pe_db_pool_t *db, unsigned retention_days, char *err, size_t errlen)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    bool locked = false;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0) {
        snprintf(err, errlen, "no database connection: %s", pe_strerror(rc));
        goto out;
    }
    rc = pe_db_exec(conn, "SELECT pg_try_advisory_lock(" MAINTAIN_LOCK_KEY ")", 0, NULL, &res);
    if (rc != 0)
        goto fail;
    locked = pe_db_result_get(res, 0, 0)[0] == 't';
    pe_db_result_free(res);
    res = NULL;
    if (!locked) {
        pe_log(PE_LOG_INFO, "maintenance_skipped", "another instance is running maintenance");
        goto out;
    }
    int64_t start = pe_now_mono_us();
    /* the operator's retention (PE_EVENTS_RETENTION_DAYS) wins over the migration's default */
    char days[16];
    snprintf(days, sizeof days, "%u",
             retention_days ? retention_days : PE_COLLECTOR_RETENTION_DAYS);
    const char *params[] = {days};
    rc = pe_db_exec(conn,
                    "UPDATE partman.part_config SET retention = $1 || ' days'"
                    " WHERE parent_table = 'public.events'"
                    " AND retention IS DISTINCT FROM $1 || ' days'",
                    1, params, NULL);
    if (rc != 0)
        goto fail;
    rc = pe_db_exec(conn, "CALL partman.run_maintenance_proc()", 0, NULL, NULL);
    if (rc != 0)
        goto fail;
    pe_log(PE_LOG_INFO, "maintenance_done", "partition maintenance in %.1f ms",
           (double)(pe_now_mono_us() - start) / 1000.0);
    goto out;
fail:
    snprintf(err, errlen, "%s", pe_db_conn_error(conn));
out:
    if (locked)
        pe_db_exec(conn, "SELECT pg_advisory_unlock(" MAINTAIN_LOCK_KEY ")", 0, NULL, NULL);
    pe_db_release(db, conn);
    return rc;
}
