/*
 * job.c — the daily diagnosis: `serve`'s job "diagnose" runs the doctor over the default window
 * (the last PE_DOCTOR_WINDOW_DAYS complete local days) for every store that has traffic in it
 * and no run of that window yet.
 *
 * Invariants:
 *  1. Once per store per local day across instances: the job holds a session advisory lock
 *     (DIAGNOSE_LOCK_KEY) while it works, so a second instance skips the period; a store is due
 *     only while it has no run whose window ends yesterday (store-local), so the next period or
 *     instance finds it done. An instance killed mid-job leaves the stores it did not reach due.
 *  2. "Now" comes from the caller (the job passes the clock; tests pass a fixed instant).
 *  3. One store's failure is logged and the others still run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/doctor.h"

#define ACQUIRE_TIMEOUT_MS 5000
#define DIAGNOSE_LOCK_KEY  "7262937150124823903" /* arbitrary, fixed: "pe diagnose" */

/* Stores with sessions in their default window and no run of it. $1 = now (Unix µs), $2 = the
 * window's days (PE_DOCTOR_WINDOW_DAYS). */
static const char SQL_DUE[] =
    "WITH s AS (SELECT id, (to_timestamp($1::double precision / 1e6) AT TIME ZONE timezone)::date"
    "                        AS today FROM stores)"
    "SELECT s.id FROM s"
    " WHERE EXISTS (SELECT 1 FROM agg_sessions a WHERE a.store_id = s.id"
    "                  AND a.day BETWEEN s.today - $2::int AND s.today - 1)"
    "   AND NOT EXISTS (SELECT 1 FROM diagnostic_runs r WHERE r.store_id = s.id"
    "                  AND r.window_to = s.today - 1"
    "                  AND r.window_from = s.today - $2::int)"
    " ORDER BY s.id";

int pe_doctor_run_due(pe_db_pool_t *db, int64_t now_us, size_t *ran, char *err, size_t errlen)
{
    *ran = 0;
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *lock = NULL, *due = NULL;
    bool locked = false;
    int failed = 0;
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0) {
        snprintf(err, errlen, "no database connection: %s", pe_strerror(rc));
        goto out;
    }
    rc = pe_db_exec(conn, "SELECT pg_try_advisory_lock(" DIAGNOSE_LOCK_KEY ")", 0, NULL, &lock);
    if (rc != 0) {
        snprintf(err, errlen, "%s", pe_db_conn_error(conn));
        goto out;
    }
    locked = pe_db_result_get(lock, 0, 0)[0] == 't';
    if (!locked)
        goto out; /* another instance is at it */
    char now[32], window[16];
    snprintf(now, sizeof now, "%lld", (long long)now_us);
    snprintf(window, sizeof window, "%d", PE_DOCTOR_WINDOW_DAYS);
    const char *p[] = {now, window};
    rc = pe_db_exec(conn, SQL_DUE, 2, p, &due);
    if (rc != 0) {
        snprintf(err, errlen, "%s", pe_db_conn_error(conn));
        goto out;
    }
    pe_doctor_request_t rq = {.now_us = now_us};
    for (size_t i = 0; i < pe_db_result_rows(due); i++) {
        const char *store_id = pe_db_result_get(due, i, 0);
        cJSON *run = NULL;
        pe_refusal_t why = {.code = ""};
        int one = pe_doctor_run(db, store_id, &rq, &run, &why);
        if (one == 0) {
            const cJSON *findings = cJSON_GetObjectItemCaseSensitive(run, "findings");
            pe_log(PE_LOG_INFO, "diagnosed", "store %s: %d findings", store_id,
                   cJSON_GetArraySize(findings));
            (*ran)++;
        } else {
            failed++;
            pe_log(PE_LOG_WARN, "diagnose_failed", "store %s: %s", store_id,
                   why.code[0] ? why.message : pe_strerror(one));
            if (!rc)
                rc = one;
        }
        cJSON_Delete(run);
    }
    if (rc != 0)
        snprintf(err, errlen, "%d stores could not be diagnosed (first: %s)", failed,
                 pe_strerror(rc));
out:
    if (locked)
        pe_db_exec(conn, "SELECT pg_advisory_unlock(" DIAGNOSE_LOCK_KEY ")", 0, NULL, NULL);
    pe_db_result_free(lock);
    pe_db_result_free(due);
    pe_db_release(db, conn);
    return rc;
}
