/*
 * settings.c — a store's business settings (0022_store_settings.sql): today the subscription
 * cost a month that attribution's ROI divides by. GET / PUT /api/v1/stores/{id}/settings.
 *
 *   {"subscriptionCostPerMonth": 49.00 | null}     null: not set (ROI null, never invented)
 *
 * Invariants:
 *  1. The body is checked in memory first (pe_tenancy_settings_parse, pure, fuzzed): an object
 *     with known fields only; the cost a finite number 0 … 1e9 with at most two decimals (a
 *     price, to the cent), or null.
 *  2. A PUT replaces the settings it names and answers what is stored, after COMMIT.
 *  3. Every statement filters by store_id; "now" is the caller's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenancy/tenancy_internal.h"

#define ACQUIRE_TIMEOUT_MS 5000

int pe_tenancy_settings_parse(const cJSON *body, pe_store_settings_t *out, pe_refusal_t *err)
{
    memset(out, 0, sizeof *out);
    out->subscription_cost_per_month = NAN;
    if (!cJSON_IsObject(body))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "settings: must be a JSON object");
    for (const cJSON *f = body->child; f; f = f->next) {
        if (strcmp(f->string, "subscriptionCostPerMonth") != 0)
            return pe_refuse(err, PE_EINVAL, "unknown_field",
                             "%.64s: unknown field (settings take subscriptionCostPerMonth)",
                             f->string);
        if (cJSON_GetObjectItemCaseSensitive(body, f->string) != f)
            return pe_refuse(err, PE_EINVAL, "duplicate", "%.64s: given twice", f->string);
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(body, "subscriptionCostPerMonth");
    if (!c)
        return pe_refuse(err, PE_EINVAL, "missing_field",
                         "subscriptionCostPerMonth: required (null clears it)");
    out->has_subscription_cost = true;
    if (cJSON_IsNull(c))
        return 0;
    if (!cJSON_IsNumber(c))
        return pe_refuse(err, PE_EINVAL, "invalid_type",
                         "subscriptionCostPerMonth: must be a number or null");
    double v = c->valuedouble;
    if (!isfinite(v) || v < 0 || v > PE_TENANCY_MAX_SUBSCRIPTION)
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "subscriptionCostPerMonth: must be 0 … 1000000000 in the store's "
                         "currency");
    double in_cents = v * 100;
    if (fabs(in_cents - round(in_cents)) > 1e-6 * fmax(1, in_cents))
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "subscriptionCostPerMonth: at most two decimals (to the cent)");
    out->subscription_cost_per_month = round(in_cents) / 100;
    return 0;
}

static const char SQL_GET[] =
    "SELECT s.currency, st.subscription_cost_per_month::float8,"
    "       to_char(st.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    "  FROM stores s LEFT JOIN store_settings st ON st.store_id = s.id"
    " WHERE s.id = $1::uuid";

static const char SQL_PUT[] =
    "INSERT INTO store_settings (store_id, subscription_cost_per_month, updated_at)"
    " SELECT s.id, $2::numeric, $3::timestamptz FROM stores s WHERE s.id = $1::uuid"
    " ON CONFLICT (store_id) DO UPDATE SET"
    "   subscription_cost_per_month = excluded.subscription_cost_per_month,"
    "   updated_at = excluded.updated_at";

static int read_settings(pe_db_conn_t *conn, const char *store_id, cJSON **out)
{
    const char *p[] = {store_id};
    pe_db_result_t *r = NULL;
    int rc = pe_db_exec(conn, SQL_GET, 1, p, &r);
    if (rc == 0 && pe_db_result_rows(r) != 1)
        rc = PE_ENOTFOUND;
    cJSON *o = NULL;
    if (rc == 0) {
        o = cJSON_CreateObject();
        bool set = !pe_db_result_isnull(r, 0, 1);
        bool ok =
            o && cJSON_AddStringToObject(o, "currency", pe_db_result_get(r, 0, 0)) &&
            cJSON_AddItemToObject(o, "subscriptionCostPerMonth",
                                  set ? cJSON_CreateNumber(strtod(pe_db_result_get(r, 0, 1), NULL))
                                      : cJSON_CreateNull()) &&
            cJSON_AddItemToObject(o, "updatedAt",
                                  pe_db_result_isnull(r, 0, 2)
                                      ? cJSON_CreateNull()
                                      : cJSON_CreateString(pe_db_result_get(r, 0, 2)));
        if (!ok) {
            cJSON_Delete(o);
            o = NULL;
            rc = PE_ENOMEM;
        }
    }
    pe_db_result_free(r);
    *out = o;
    return rc;
}

int pe_tenancy_settings_get(pe_db_pool_t *pool, const char *store_id, cJSON **out)
{
    *out = NULL;
    if (!tenancy_uuid_valid(store_id))
        return PE_ENOTFOUND;
    pe_db_conn_t *conn = NULL;
    int rc = pe_db_acquire(pool, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = read_settings(conn, store_id, out);
    pe_db_release(pool, conn);
    return rc;
}

int pe_tenancy_settings_put(pe_db_pool_t *pool, const char *store_id, const pe_store_settings_t *s,
                            int64_t now_us, cJSON **out)
{
    *out = NULL;
    if (!tenancy_uuid_valid(store_id))
        return PE_ENOTFOUND;
    char cost[40], now[PE_DB_TEXT_TIMESTAMPTZ_LEN];
    const char *cost_p = NULL;
    if (isfinite(s->subscription_cost_per_month)) {
        snprintf(cost, sizeof cost, "%.2f", s->subscription_cost_per_month);
        cost_p = cost;
    }
    pe_db_text_timestamptz(now_us, now);
    pe_db_conn_t *conn = NULL;
    int rc = pe_db_acquire(pool, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        return rc;
    const char *p[] = {store_id, cost_p, now};
    if (s->has_subscription_cost)
        rc = pe_db_exec(conn, SQL_PUT, 3, p, NULL);
    if (rc == 0)
        rc = read_settings(conn, store_id, out);
    pe_db_release(pool, conn);
    return rc;
}
