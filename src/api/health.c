/*
 * health.c — operational endpoints: liveness (/healthz), readiness (/readyz) and Prometheus
 * metrics (/metrics).
 *
 * Invariants:
 *  1. /healthz touches no dependency: it answers as long as the process serves HTTP.
 *  2. /readyz answers 200 only when PostgreSQL and Redis answer and every migration is applied;
 *     otherwise 503 naming each check that failed.
 */
#include <stdio.h>
#include <string.h>

#include "pe/api.h"
#include "pe/version.h"
#include "routes.h"

#define READY_TIMEOUT_MS 2000

int pe_api_healthz(pe_http_request_t *req)
{
    static const char body[] = "{\"status\":\"ok\",\"version\":\"" PE_VERSION "\"}";
    return pe_http_reply_static(req, 200, "application/json", body, sizeof body - 1);
}

int pe_api_readyz(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    const char *pg = "ok", *redis = "ok", *migrations = "ok";
    char why[256] = "";

    int rc = pe_db_ping(app->db, READY_TIMEOUT_MS);
    if (rc != 0) {
        pg = "unreachable";
        migrations = "unknown";
    } else {
        bool current = false;
        char err[200];
        if (pe_db_migrations_current(app->db, &current, err, sizeof err) != 0)
            migrations = "unknown";
        else if (!current)
            migrations = "pending";
    }
    if (pe_redis_ping(app->redis) != 0)
        redis = "unreachable";

    bool ready = strcmp(pg, "ok") == 0 && strcmp(redis, "ok") == 0 && strcmp(migrations, "ok") == 0;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return PE_ENOMEM;
    if (ready) {
        cJSON_AddStringToObject(j, "status", "ready");
    } else {
        snprintf(why, sizeof why, "not ready: postgres %s, redis %s, migrations %s", pg, redis,
                 migrations);
        cJSON *e = cJSON_AddObjectToObject(j, "error");
        cJSON_AddStringToObject(e, "code", "not_ready");
        cJSON_AddStringToObject(e, "message", why);
    }
    cJSON *checks = cJSON_AddObjectToObject(j, "checks");
    cJSON_AddStringToObject(checks, "postgres", pg);
    cJSON_AddStringToObject(checks, "redis", redis);
    cJSON_AddStringToObject(checks, "migrations", migrations);
    return pe_http_reply_cjson(req, ready ? 200 : 503, j);
}

int pe_api_metrics(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    pe_buf_t b = PE_BUF_INIT;
    int rc = pe_buf_printf(&b,
                           "# HELP pe_build_info Build of this binary.\n"
                           "# TYPE pe_build_info gauge\n"
                           "pe_build_info{version=\"%s\",commit=\"%s\"} 1\n"
                           "# HELP pe_uptime_seconds Seconds since start.\n"
                           "# TYPE pe_uptime_seconds gauge\n"
                           "pe_uptime_seconds %.0f\n",
                           PE_VERSION, PE_GIT_COMMIT,
                           (double)(pe_now_unix_us() - app->started_unix_us) / 1e6);
    pe_db_pool_stats_t st;
    pe_db_pool_stats(app->db, &st);
    rc |= pe_buf_printf(
        &b,
        "# HELP pe_db_pool_connections PostgreSQL pool connections by state.\n"
        "# TYPE pe_db_pool_connections gauge\n"
        "pe_db_pool_connections{state=\"max\"} %u\n"
        "pe_db_pool_connections{state=\"open\"} %u\n"
        "pe_db_pool_connections{state=\"in_use\"} %u\n"
        "# HELP pe_db_pool_waiting Threads waiting for a connection.\n"
        "# TYPE pe_db_pool_waiting gauge\n"
        "pe_db_pool_waiting %u\n"
        "# HELP pe_db_pool_acquired_total Connections lent out.\n"
        "# TYPE pe_db_pool_acquired_total counter\n"
        "pe_db_pool_acquired_total %llu\n"
        "# HELP pe_db_pool_timeouts_total Acquisitions that timed out.\n"
        "# TYPE pe_db_pool_timeouts_total counter\n"
        "pe_db_pool_timeouts_total %llu\n"
        "# HELP pe_redis_reconnects_total Redis reconnections.\n"
        "# TYPE pe_redis_reconnects_total counter\n"
        "pe_redis_reconnects_total %llu\n",
        st.size, st.open, st.in_use, st.waiting, (unsigned long long)st.acquired_total,
        (unsigned long long)st.timeouts_total, (unsigned long long)pe_redis_reconnects(app->redis));
    pe_key_cache_stats_t ks;
    pe_tenancy_key_cache_stats(app->keys, &ks);
    rc |= pe_buf_printf(
        &b,
        "# HELP pe_key_cache_lookups_total Publishable-key lookups answered from memory or not.\n"
        "# TYPE pe_key_cache_lookups_total counter\n"
        "pe_key_cache_lookups_total{result=\"hit\"} %llu\n"
        "pe_key_cache_lookups_total{result=\"miss\"} %llu\n"
        "# HELP pe_key_cache_evictions_total Key changes heard (NOTIFY pe_api_keys) and resets.\n"
        "# TYPE pe_key_cache_evictions_total counter\n"
        "pe_key_cache_evictions_total %llu\n"
        "# HELP pe_key_cache_live 1 while the cache listens for key changes (else bypassed).\n"
        "# TYPE pe_key_cache_live gauge\n"
        "pe_key_cache_live %d\n",
        (unsigned long long)ks.hits, (unsigned long long)ks.misses,
        (unsigned long long)ks.evictions, ks.live ? 1 : 0);
    rc |= pe_collector_metrics(app->collector, &b);
    if (app->flags)
        rc |= pe_flags_metrics(app->flags, &b);
    rc |= pe_http_server_metrics(app->http, &b);
    if (rc != 0) {
        pe_buf_free(&b);
        return PE_ENOMEM;
    }
    rc = pe_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    pe_buf_free(&b);
    return rc;
}
