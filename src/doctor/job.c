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

typedef struct {
    pe_db_pool_t *db;
    pe_doctor_request_t rq;
} job_t;

/* One due store: diagnosed over the default window at the job's now. */
static int diagnose_one(void *arg, const pe_db_result_t *due, size_t row)
{
    job_t *job = arg;
    const char *store_id = pe_db_result_get(due, row, 0);
    cJSON *run = NULL;
    pe_refusal_t why = {.code = ""};
    int rc = pe_doctor_run(job->db, store_id, &job->rq, &run, &why);
    if (rc == 0)
        pe_log(PE_LOG_INFO, "diagnosed", "store %s: %d findings", store_id,
               cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(run, "findings")));
    else
        pe_log(PE_LOG_WARN, "diagnose_failed", "store %s: %s", store_id,
               why.code[0] ? why.message : pe_strerror(rc));
    cJSON_Delete(run);
    return rc;
}

int pe_doctor_run_due(pe_db_pool_t *db, int64_t now_us, size_t *ran, char *err, size_t errlen)
{
    char now[32], window[16];
    snprintf(now, sizeof now, "%lld", (long long)now_us);
    snprintf(window, sizeof window, "%d", PE_DOCTOR_WINDOW_DAYS);
    const char *p[] = {now, window};
    job_t job = {db, {.now_us = now_us}};
    return pe_db_each_once(db, ACQUIRE_TIMEOUT_MS, DIAGNOSE_LOCK_KEY, SQL_DUE, 2, p, diagnose_one,
                           &job, "stores diagnosed", ran, err, errlen);
}
