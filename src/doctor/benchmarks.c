/*
 * benchmarks.c — the drop-off each funnel step is compared with (benchmark_gap findings): the
 * industry benchmark shipped with the doctor, or the store's own where it set one
 * (diagnostic_benchmarks, 0016_diagnostic_benchmarks.sql).
 *
 *   GET  …/diagnostics/benchmarks  {"steps":{"cart":{"dropOff":0.93,"source":"industry"},…},
 *                                   "industrySource":"…"}
 *   PUT  …/diagnostics/benchmarks  {"shipping":0.3,"payment":null}: a number 0 < x < 1 sets the
 *                                   store's drop-off for that step, null goes back to the
 *                                   industry's; steps not named stay as they are.
 *
 * Invariants:
 *  1. Every statement filters by store_id.
 *  2. A PUT is validated whole before anything is written, and written in one transaction: a
 *     refusal changes nothing.
 *  3. "Now" (updated_at) comes from the caller.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/doctor.h"

#define ACQUIRE_TIMEOUT_MS 5000

static const char *const STEPS[PE_DOCTOR_STEPS + 1] = {"",         "cart",    "checkout",
                                                       "shipping", "payment", "confirmation"};

static int step_index(const char *name)
{
    for (int s = 1; s <= PE_DOCTOR_STEPS; s++)
        if (strcmp(name, STEPS[s]) == 0)
            return s;
    return 0;
}

int pe_doctor_benchmarks_read(pe_db_conn_t *conn, const char *store_id,
                              double dropoff[PE_DOCTOR_STEPS + 1], bool own[PE_DOCTOR_STEPS + 1])
{
    memcpy(dropoff, pe_doctor_benchmark_dropoff, sizeof pe_doctor_benchmark_dropoff);
    for (int s = 0; s <= PE_DOCTOR_STEPS; s++)
        own[s] = false;
    const char *p[] = {store_id};
    pe_db_result_t *r = NULL;
    int rc = pe_db_exec(conn,
                        "SELECT step, dropoff FROM diagnostic_benchmarks WHERE store_id = $1::uuid",
                        1, p, &r);
    for (size_t i = 0; rc == 0 && i < pe_db_result_rows(r); i++) {
        int s = step_index(pe_db_result_get(r, i, 0));
        if (s) {
            dropoff[s] = strtod(pe_db_result_get(r, i, 1), NULL);
            own[s] = true;
        }
    }
    pe_db_result_free(r);
    return rc;
}

static cJSON *benchmarks_json(const double dropoff[], const bool own[])
{
    cJSON *o = cJSON_CreateObject();
    cJSON *steps = o ? cJSON_AddObjectToObject(o, "steps") : NULL;
    bool ok = steps && cJSON_AddStringToObject(o, "industrySource", pe_doctor_benchmark_source);
    for (int s = 1; ok && s <= PE_DOCTOR_STEPS; s++) {
        cJSON *st = cJSON_AddObjectToObject(steps, STEPS[s]);
        ok = st && cJSON_AddNumberToObject(st, "dropOff", dropoff[s]) &&
             cJSON_AddStringToObject(st, "source", own[s] ? "store" : "industry");
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int pe_doctor_benchmarks_get(pe_db_pool_t *db, const char *store_id, cJSON **out)
{
    *out = NULL;
    pe_db_conn_t *conn = NULL;
    double dropoff[PE_DOCTOR_STEPS + 1];
    bool own[PE_DOCTOR_STEPS + 1];
    int rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc == 0)
        rc = pe_doctor_benchmarks_read(conn, store_id, dropoff, own);
    pe_db_release(db, conn);
    if (rc == 0 && !(*out = benchmarks_json(dropoff, own)))
        rc = PE_ENOMEM;
    return rc;
}

typedef struct {
    const char *store_id;
    const cJSON *body;
    const char *now;
} put_ctx_t;

static int put_tx(pe_db_conn_t *conn, void *arg)
{
    const put_ctx_t *c = arg;
    const cJSON *v;
    int rc = 0;
    cJSON_ArrayForEach(v, c->body)
    {
        if (rc != 0)
            break;
        char value[32];
        snprintf(value, sizeof value, "%.17g", cJSON_IsNumber(v) ? v->valuedouble : 0);
        const char *p[] = {c->store_id, v->string, value, c->now};
        rc = cJSON_IsNull(v)
                 ? pe_db_exec(conn,
                              "DELETE FROM diagnostic_benchmarks WHERE store_id = $1::uuid"
                              " AND step = $2",
                              2, p, NULL)
                 : pe_db_exec(conn,
                              "INSERT INTO diagnostic_benchmarks (store_id, step, dropoff,"
                              " updated_at) VALUES ($1::uuid, $2, $3::float8, $4::timestamptz)"
                              " ON CONFLICT (store_id, step) DO UPDATE SET dropoff ="
                              " excluded.dropoff, updated_at = excluded.updated_at",
                              4, p, NULL);
    }
    return rc;
}

int pe_doctor_benchmarks_put(pe_db_pool_t *db, const char *store_id, const cJSON *body,
                             int64_t now_us, cJSON **out, pe_refusal_t *err)
{
    *out = NULL;
    if (!cJSON_IsObject(body))
        return pe_refuse(err, PE_EINVAL, "invalid_type",
                         "the body must be an object of steps, e.g. {\"shipping\":0.3}");
    const cJSON *v;
    cJSON_ArrayForEach(v, body)
    {
        char key[PE_JSON_KEY_QUOTE_MAX + 4];
        if (!step_index(v->string))
            return pe_refuse(err, PE_EINVAL, "unknown_field",
                             "%s: not a funnel step (cart, checkout, shipping, payment, "
                             "confirmation)",
                             pe_json_quote_key(v->string, key));
        for (const cJSON *w = body->child; w != v; w = w->next)
            if (strcmp(w->string, v->string) == 0)
                return pe_refuse(err, PE_EINVAL, "invalid_format", "%s: given twice", v->string);
        if (cJSON_IsNull(v))
            continue;
        if (!cJSON_IsNumber(v))
            return pe_refuse(err, PE_EINVAL, "invalid_type",
                             "%s: must be a drop-off between 0 and 1, or null", v->string);
        if (!isfinite(v->valuedouble))
            return pe_refuse(err, PE_EINVAL, "out_of_range", "%s: " PE_JSON_NONFINITE_RULE,
                             v->string);
        if (!(v->valuedouble > 0 && v->valuedouble < 1))
            return pe_refuse(err, PE_EINVAL, "out_of_range",
                             "%s: must be greater than 0 and less than 1 (a drop-off share)",
                             v->string);
    }
    char now[32];
    pe_time_format_rfc3339(now_us, now, sizeof now);
    put_ctx_t ctx = {.store_id = store_id, .body = body, .now = now};
    int rc = pe_db_tx(db, ACQUIRE_TIMEOUT_MS, put_tx, &ctx);
    if (rc == 0)
        rc = pe_doctor_benchmarks_get(db, store_id, out);
    return rc;
}
