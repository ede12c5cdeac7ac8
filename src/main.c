/*
 * main.c — the profit-engine command line: parses arguments, builds the configuration and the
 * application, and wires modules together. No business rules live here.
 *
 * Invariants:
 *  1. Exit status: 0 success, 1 the command failed, 2 bad usage or bad configuration.
 *  2. The command table (commands[], at the end) is the only list of commands: main() dispatches
 *     through it and `profit-engine --help` lists it, so the two cannot disagree.
 *  3. `<command> --help` answers before any configuration is read or any connection is made.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "pe/aggregate.h"
#include "pe/api.h"
#include "pe/changeset.h"
#include "pe/collector.h"
#include "pe/core.h"
#include "pe/db.h"
#include "pe/doctor.h"
#include "pe/events.h"
#include "pe/experiments.h"
#include "pe/flags.h"
#include "pe/http.h"
#include "pe/jobs.h"
#include "pe/redis.h"
#include "pe/sim.h"
#include "pe/stats.h"
#include "pe/tenancy.h"
#include "pe/version.h"

#define EXIT_USAGE            2
#define DB_ACQUIRE_TIMEOUT_MS 5000
#define REDIS_TIMEOUT_MS      1000
#define RATE_KEY_BUCKETS      (1u << 14) /* live publishable keys an instance keeps apart */
#define RATE_ADDRESS_BUCKETS  (1u << 16) /* client addresses an instance keeps apart */

/* The top-level usage around the list of commands, which print_usage builds from commands[]. */
static const char USAGE_HEAD[] =
    "usage: profit-engine [--help] [--version] <command> [options]\n"
    "\n"
    "Conversion analytics and autopilot experimentation for storefronts.\n"
    "\n"
    "commands:\n";
static const char USAGE_TAIL[] =
    "\n"
    "configuration (environment):\n"
    "  PE_DATABASE_URL        PostgreSQL conninfo or URI      (dbname=profit_engine)\n"
    "  PE_REDIS_URL           redis://host:port[/db] | unix:///path   (redis://127.0.0.1:6379)\n"
    "  PE_LISTEN              host:port to listen on           (127.0.0.1:8080)\n"
    "  PE_LOG_LEVEL           debug | info | warn | error      (info)\n"
    "  PE_WEB_DIR             serve the dashboard from this directory instead of the binary\n"
    "  PE_HTTP_THREADS        HTTP worker threads, 0 = one per CPU (0)\n"
    "  PE_MAX_CONNECTIONS     concurrent connection limit      (1024)\n"
    "  PE_CONNECTION_TIMEOUT  idle seconds before a connection is closed (30)\n"
    "  PE_DB_POOL_SIZE        PostgreSQL connections per process (16)\n"
    "  PE_SHUTDOWN_GRACE      seconds in-flight requests get on SIGTERM, 1..9 (8)\n"
    "  PE_FLAGS_POLL_MS       PostgreSQL poll of flag-set versions, 100..2000 ms (1000)\n"
    "  PE_APPROVAL_TIMEOUT_HOURS  a ChangeSet's PENDING_APPROVAL lifetime, 1..8760 (168)\n"
    "  PE_NOTIFY_INTERVAL_S   ChangeSet notification dispatcher period, seconds (5)\n"
    "  PE_WEBHOOK_URL         POST ChangeSet notifications here (signed, retried)\n"
    "  PE_WEBHOOK_SECRET      HMAC-SHA256 key of the X-PE-Signature header\n"
    "  PE_TRUSTED_PROXIES     proxies' addresses/CIDRs whose X-Forwarded-For names the client\n"
    "  PE_COLLECTOR_STORE_SHARE  % of the ingest queue one store may hold once it is that full\n"
    "                         (50; 100: no share)\n"
    "  PE_RATE_KEY            storefront requests a second per publishable key, burst twice\n"
    "                         that, 429 + Retry-After beyond; 0 = no limit (2000)\n"
    "  PE_RATE_ADDRESS        the same per client address (1000)\n"
    "                         (none: the TCP peer is the client)\n"
    "  PE_JOBS                background jobs of serve: all, none or a list of names (all)\n"
    "\n"
    "Run 'profit-engine <command> --help' for a command's options.\n";

static const char USAGE_SERVE[] =
    "usage: profit-engine serve\n"
    "Runs the HTTP server until SIGTERM or SIGINT, then drains in-flight requests.\n"
    "Configured by the PE_* environment variables (see profit-engine --help).\n";
static const char USAGE_MIGRATE[] =
    "usage: profit-engine migrate\n"
    "Applies every pending migration (each in its own transaction; safe to run concurrently)\n"
    "and prints {\"applied\":N}. Refuses when an applied migration file was edited.\n";
static const char USAGE_MAINTAIN[] =
    "usage: profit-engine maintain\n"
    "Creates event partitions ahead and retires those past retention (pg_partman), once.\n"
    "`serve` runs the same job every hour; instances take turns through an advisory lock.\n";
static const char USAGE_AGGREGATE[] =
    "usage: profit-engine aggregate [--store ID] [--full]\n"
    "Rolls the events received since the last run up into the metrics tables (sessions, days,\n"
    "weeks, months, products, funnel) and prints what it rebuilt as JSON. --store limits the\n"
    "run to one store; --full recomputes everything instead. `serve` runs the same job every\n"
    "minute; instances take turns through an advisory lock (this command waits for its turn).\n";
static const char USAGE_STORE[] =
    "usage: profit-engine store create --name NAME [--timezone TZ] [--currency CCY]\n"
    "Creates a store and prints {\"storeId\":…,\"publishableKey\":…,\"secretKey\":…}.\n"
    "The keys are shown only now. TZ is an IANA name (UTC); CCY is ISO 4217 (USD).\n";
static const char USAGE_USER[] =
    "usage: profit-engine user create --email EMAIL --store STORE_ID\n"
    "Creates a merchant login (or adds an existing one to the store) and prints\n"
    "{\"userId\":…}. The password (8..1024 bytes) is read from standard input.\n";

static const char USAGE_AUDIT[] =
    "usage: profit-engine audit verify [--store STORE_ID]\n"
    "Recomputes every ChangeSet audit hash chain (of one store with --store) and prints\n"
    "{\"ok\":…,\"checked\":N,\"firstBroken\":null|{\"changesetId\",\"seq\",\"eventId\",\"reason\"}}"
    ".\n"
    "Exit 0 when every chain holds, 1 when one is broken or the check failed.\n";

static const char USAGE_DIAGNOSE[] =
    "usage: profit-engine diagnose --store ID [--from YYYY-MM-DD --to YYYY-MM-DD]\n"
    "Runs the funnel doctor over the store's aggregates (default: the last 28 complete days in\n"
    "the store's time zone), stores the run (replacing one of the same window) and prints it as\n"
    "JSON. Exit 2 for an unknown store or a bad window.\n";

static const char USAGE_ATTRIBUTION[] =
    "usage: profit-engine attribution --store ID --from YYYY-MM-DD --to YYYY-MM-DD\n"
    "Computes what Autopilot earned the store over the store-local days from..to, as GET\n"
    "/api/v1/stores/{id}/attribution answers it (computed now, not read from a snapshot), and\n"
    "prints it as JSON. Exit 2 for an unknown store or a bad range.\n";

static const char USAGE_RECOMMEND[] =
    "usage: profit-engine recommend --store ID\n"
    "Generates the store's recommendations from its latest diagnostic run now (each one a\n"
    "ChangeSet ready for approval; at most 5 shown, the rest queued) and prints\n"
    "{\"runId\",\"generated\",\"retired\",\"note\",\"recommendations\":[…]} as JSON.\n"
    "Exit 2 for an unknown store.\n";

static const char USAGE_MEASURE[] =
    "usage: profit-engine measure --store ID\n"
    "Measures every running Autopilot experiment of the store now and carries its decision out\n"
    "through the ChangeSet lifecycle (MEASURING at the first exposures, ROLLED_BACK on harm or\n"
    "at a losing or inconclusive end, PROVEN on a win that does not cost profit; the flag is\n"
    "turned off with a rollback). Prints {\"measured\":N,\"changesets\":[…]} as JSON.\n"
    "Exit 2 for an unknown store.\n";

static const char USAGE_SCHEMA[] =
    "usage: profit-engine schema export [events|changeset]\n"
    "       profit-engine schema validate < event.json\n"
    "export prints the JSON Schema (2020-12) of events, generated from the server's definitions\n"
    "(also served at /schemas/events.json). validate reads one event object on standard input\n"
    "and prints {\"valid\":true} (exit 0), {\"valid\":false,\"code\":…,\"message\":…} (exit 1),\n"
    "or code \"invalid_json\" when the input is not one JSON document (exit 2).\n"
    "Neither needs the database or any PE_* variable.\n";

static void print_usage(FILE *f);

/* Prints "profit-engine: <message>" and then usage (a command's; NULL: the top-level one) on
 * stderr. Returns EXIT_USAGE, for `return usage_error(…)`. */
static int usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "profit-engine: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (usage)
        fputs(usage, stderr);
    else
        print_usage(stderr);
    return EXIT_USAGE;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

/* Builds and checks the configuration; prints one line naming the variable on failure. */
static int load_config(pe_config_t *cfg)
{
    char err[512];
    if (pe_config_from_env(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "profit-engine: %s\n", err);
        return EXIT_USAGE;
    }
    if (pe_db_conninfo_check(cfg->database_url, err, sizeof err) != 0) {
        fprintf(stderr, "profit-engine: PE_DATABASE_URL: %s\n", err);
        pe_config_free(cfg);
        return EXIT_USAGE;
    }
    if (pe_redis_url_check(cfg->redis_url, err, sizeof err) != 0) {
        fprintf(stderr, "profit-engine: PE_REDIS_URL: %s\n", err);
        pe_config_free(cfg);
        return EXIT_USAGE;
    }
    pe_log_set_level(cfg->log_level);
    return 0;
}

/* ---- serve ----------------------------------------------------------------------------------- */

static int run_maintenance(void *arg, char *err, size_t errlen)
{
    const pe_app_t *app = arg;
    return pe_collector_maintain(app->db, app->cfg->events_retention_days, err, errlen);
}

static int run_aggregate(void *arg, char *err, size_t errlen)
{
    return pe_aggregate_job(arg, err, errlen);
}

static int run_diagnose(void *arg, char *err, size_t errlen)
{
    size_t n = 0;
    return pe_doctor_run_due(arg, pe_now_unix_us(), &n, err, errlen);
}

static int run_recommend(void *arg, char *err, size_t errlen)
{
    size_t n = 0;
    return pe_doctor_recommend_due(arg, pe_now_unix_us(), &n, err, errlen);
}

static int run_measure(void *arg, char *err, size_t errlen)
{
    const pe_app_t *app = arg;
    size_t n = 0;
    return pe_experiments_measure_due(app->db, app->changesets, pe_now_unix_us(), &n, err, errlen);
}

static int run_changeset_expiry(void *arg, char *err, size_t errlen)
{
    size_t n = 0;
    int rc = pe_changeset_expire_due(arg, NULL, &n);
    if (rc != 0)
        snprintf(err, errlen, "%s", pe_strerror(rc));
    else if (n)
        pe_log(PE_LOG_INFO, "changesets_expired", "%zu pending approvals expired", n);
    return rc;
}

static int run_notify(void *arg, char *err, size_t errlen)
{
    size_t n = 0;
    return pe_changeset_dispatch(arg, &n, err, errlen);
}

static int run_login_purge(void *arg, char *err, size_t errlen)
{
    uint64_t n = 0;
    int rc = pe_tenancy_login_purge(arg, &n);
    if (rc != 0)
        snprintf(err, errlen, "%s", pe_strerror(rc));
    else if (n)
        pe_log(PE_LOG_INFO, "login_throttle_purged", "%llu expired sign-in throttle rows deleted",
               (unsigned long long)n);
    return rc;
}

static int run_session_purge(void *arg, char *err, size_t errlen)
{
    uint64_t n = 0;
    int rc = pe_tenancy_session_purge(arg, &n);
    if (rc != 0)
        snprintf(err, errlen, "%s", pe_strerror(rc));
    else if (n)
        pe_log(PE_LOG_INFO, "sessions_purged", "%llu ended sessions deleted",
               (unsigned long long)n);
    return rc;
}

static int cmd_serve(const pe_config_t *cfg, int argc, char **argv)
{
    (void)argc; /* CMD_NO_ARGS */
    (void)argv;
    int rc = EXIT_FAILURE;
    char err[256];
    pe_app_t app = {.cfg = cfg, .started_unix_us = pe_now_unix_us()};
    pe_http_router_t *router = NULL;
    pe_jobs_scheduler_t *scheduler = NULL;

    /* Signals are taken by sigwait() in this thread only; every thread created later inherits
     * the blocked mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    app.db = pe_db_pool_new(cfg->database_url, cfg->db_pool_size);
    /* token buckets of the storefront routes: a second's worth twice over at once */
    app.rate_key = cfg->rate_key
                       ? pe_ratelimit_new(cfg->rate_key, 2.0 * cfg->rate_key, RATE_KEY_BUCKETS)
                       : NULL;
    app.rate_address =
        cfg->rate_address
            ? pe_ratelimit_new(cfg->rate_address, 2.0 * cfg->rate_address, RATE_ADDRESS_BUCKETS)
            : NULL;
    if ((cfg->rate_key && !app.rate_key) || (cfg->rate_address && !app.rate_address)) {
        pe_log(PE_LOG_ERROR, "startup_failed", "out of memory for the rate limits");
        goto out;
    }
    pe_collector_config_t ccfg = {
        .db = app.db,
        .writers = cfg->collector_writers,
        .window_ms = cfg->collector_window_ms,
        .store_queue_pct = cfg->collector_store_share,
        .retention_days = cfg->events_retention_days,
    };
    app.collector = app.db ? pe_collector_new(&ccfg) : NULL;
    app.keys = app.db ? pe_tenancy_key_cache_new(app.db) : NULL;
    app.redis = pe_redis_new(cfg->redis_url, REDIS_TIMEOUT_MS, err, sizeof err);
    if (app.redis) {
        pe_flags_config_t fcfg = {
            .db = app.db,
            .redis = app.redis,
            .redis_url = cfg->redis_url,
            .collector = app.collector,
            .poll_ms = cfg->flags_poll_ms,
            .start_threads = true,
        };
        app.flags = app.db ? pe_flags_new(&fcfg) : NULL;
    }
    pe_changeset_config_t cscfg = {
        .db = app.db,
        .approval_timeout_s = cfg->approval_timeout_h * 3600u,
        .webhook_url = cfg->webhook_url,
        .webhook_secret = cfg->webhook_secret,
    };
    /* Transitions create, disable and settle each ChangeSet's feature flag in their own
     * transaction, and publish it after COMMIT (src/changeset/flag_hooks.c). */
    if (app.flags)
        cscfg.flags = pe_changeset_flag_hooks(app.flags);
    app.changesets = app.db ? pe_changeset_service_new(&cscfg) : NULL;
    pe_doctor_recommender_config_t rcfg = {.db = app.db, .changesets = app.changesets};
    pe_refusal_t why = {.code = ""};
    app.recommender = app.changesets ? pe_doctor_recommender_new(&rcfg, &why) : NULL;
    router = pe_http_router_new();
    if (!app.db || !app.collector || !app.keys || !app.redis || !app.flags || !app.changesets ||
        !app.recommender || !router) {
        fprintf(stderr, "profit-engine: cannot start: %s\n", app.redis ? "out of memory" : err);
        goto out;
    }
    const pe_job_t jobs[] = {
        {"partition_maintenance", 3600, 5, run_maintenance, &app},
        {"aggregate", PE_AGGREGATE_INTERVAL_S, 10, run_aggregate, app.db},
        {"diagnose", PE_DOCTOR_JOB_INTERVAL_S, 120, run_diagnose, app.db},
        {"recommend", PE_DOCTOR_RECOMMEND_INTERVAL_S, 300, run_recommend, app.recommender},
        {"measure", cfg->measure_interval_s, 60, run_measure, &app},
        {"changeset_expiry", 60, 15, run_changeset_expiry, app.changesets},
        {"changeset_notify", cfg->notify_interval_s, 1, run_notify, app.changesets},
        {"login_throttle_purge", PE_LOGIN_PURGE_INTERVAL_S, 30, run_login_purge, app.db},
        {"session_purge", PE_SESSION_PURGE_INTERVAL_S, 45, run_session_purge, app.db},
    };
    pe_job_t selected[PE_ARRAY_LEN(jobs)];
    size_t nselected = 0;
    if (pe_jobs_select(cfg->jobs, jobs, PE_ARRAY_LEN(jobs), selected, &nselected, err,
                       sizeof err) != 0) {
        fprintf(stderr, "profit-engine: %s\n", err);
        rc = EXIT_USAGE;
        goto out;
    }
    if (nselected < PE_ARRAY_LEN(jobs))
        pe_log(PE_LOG_INFO, "jobs_selected", "PE_JOBS=%s: %zu of %zu background jobs run here",
               cfg->jobs, nselected, PE_ARRAY_LEN(jobs));
    if (pe_api_register(router) != 0) {
        fprintf(stderr, "profit-engine: cannot register routes\n");
        goto out;
    }
    pe_http_server_config_t hcfg = {
        .host = cfg->listen_host,
        .port = cfg->listen_port,
        .threads = cfg->http_threads,
        .max_connections = cfg->max_connections,
        .conn_timeout_s = cfg->conn_timeout_s,
        .header_timeout_s = cfg->header_timeout_s,
        .body_timeout_s = cfg->body_timeout_s,
        .app = &app,
        .authenticate = pe_api_authenticate,
        .trusted_proxies = cfg->trusted_proxies,
    };
    app.http = pe_http_server_new(&hcfg, router, err, sizeof err);
    router = NULL; /* the server owns it now, even on failure */
    if (!app.http) {
        fprintf(stderr, "profit-engine: %s\n", err);
        goto out;
    }
    if (pe_http_server_start(app.http, err, sizeof err) != 0) {
        fprintf(stderr, "profit-engine: %s\n", err);
        rc = EXIT_USAGE;
        goto out;
    }
    pe_log(PE_LOG_INFO, "server_started", "profit-engine %s (%s) listening on http://%s:%u",
           PE_VERSION, PE_GIT_COMMIT, cfg->listen_host, (unsigned)pe_http_server_port(app.http));
    bool current = false;
    if (pe_db_migrations_current(app.db, &current, err, sizeof err) != 0)
        pe_log(PE_LOG_WARN, "database_unreachable", "PostgreSQL is not reachable yet: %s", err);
    else if (!current)
        pe_log(PE_LOG_WARN, "migrations_pending",
               "migrations are pending; run 'profit-engine migrate' (/readyz reports 503)");

    scheduler = nselected ? pe_jobs_scheduler_start(selected, nselected) : NULL;
    if (nselected && !scheduler)
        pe_log(PE_LOG_ERROR, "scheduler_failed", "background jobs could not start");

    int sig = 0;
    sigwait(&stop_signals, &sig);
    int64_t grace_ends = pe_now_mono_us() + (int64_t)cfg->shutdown_grace_s * 1000000;
    pe_log(PE_LOG_INFO, "shutdown_started", "received %s; draining for up to %u s",
           sig == SIGINT ? "SIGINT" : "SIGTERM", cfg->shutdown_grace_s);
    /* Order matters: requests parked on the collector are answered by its writer, so drain
     * HTTP, then let the writer commit and answer everything queued, then close HTTP. No job
     * starts meanwhile; the one running gets what is left of the grace (at least a second). */
    pe_jobs_scheduler_request_stop(scheduler);
    pe_http_server_drain(app.http, cfg->shutdown_grace_s * 1000);
    pe_collector_stop(app.collector);
    pe_http_server_stop(app.http, 1000);
    char job[64] = "";
    int64_t left_ms = (grace_ends - pe_now_mono_us()) / 1000;
    if (pe_jobs_scheduler_stop_within(scheduler, (int)(left_ms > 1000 ? left_ms : 1000), job,
                                      sizeof job) != 0) {
        /* A roll-up of a large store, or a job waiting on a lock, can take minutes: it works in
         * transactions, which PostgreSQL rolls back when this process's connections close
         * (within client_connection_check_interval), and the next instance's run redoes it. */
        pe_log(PE_LOG_WARN, "job_abandoned",
               "%s still running after the %u s grace: left for PostgreSQL to roll back", job,
               cfg->shutdown_grace_s);
        pe_log(PE_LOG_INFO, "shutdown_complete", "stopped");
        fflush(NULL);
        _exit(0);
    }
    scheduler = NULL;
    pe_log(PE_LOG_INFO, "shutdown_complete", "stopped");
    rc = 0;
out:
    pe_jobs_scheduler_stop(scheduler);
    pe_http_server_free(app.http);
    pe_flags_free(app.flags);         /* after HTTP: handlers use it; before the collector */
    pe_collector_free(app.collector); /* after HTTP: late requests may still reach it */
    pe_http_router_free(router);
    pe_redis_free(app.redis);
    pe_doctor_recommender_free(app.recommender);
    pe_changeset_service_free(app.changesets);
    pe_tenancy_key_cache_free(app.keys);
    pe_db_pool_free(app.db);
    pe_ratelimit_free(app.rate_key);
    pe_ratelimit_free(app.rate_address);
    return rc;
}

/* ---- migrate --------------------------------------------------------------------------------- */

static int cmd_migrate(const pe_config_t *cfg, int argc, char **argv)
{
    (void)argc; /* CMD_NO_ARGS */
    (void)argv;
    pe_db_pool_t *pool = pe_db_pool_new(cfg->database_url, 2);
    if (!pool) {
        fprintf(stderr, "profit-engine: out of memory\n");
        return EXIT_FAILURE;
    }
    char err[512] = "";
    int applied = 0;
    int rc = pe_db_migrate(pool, &applied, err, sizeof err);
    pe_db_pool_free(pool);
    if (rc != 0) {
        fprintf(stderr, "profit-engine: migrate: %s\n", err[0] ? err : pe_strerror(rc));
        return EXIT_FAILURE;
    }
    printf("{\"applied\":%d,\"total\":%zu}\n", applied, pe_embedded_migrations_count);
    return 0;
}

/* ---- maintain -------------------------------------------------------------------------------- */

static int cmd_maintain(const pe_config_t *cfg, int argc, char **argv)
{
    (void)argc; /* CMD_NO_ARGS */
    (void)argv;
    pe_db_pool_t *pool = pe_db_pool_new(cfg->database_url, 1);
    if (!pool)
        return EXIT_FAILURE;
    char err[512] = "";
    int rc = pe_collector_maintain(pool, cfg->events_retention_days, err, sizeof err);
    pe_db_pool_free(pool);
    if (rc != 0) {
        fprintf(stderr, "profit-engine: maintain: %s\n", err[0] ? err : pe_strerror(rc));
        return EXIT_FAILURE;
    }
    printf("{\"maintained\":true}\n");
    return 0;
}

/* ---- aggregate ------------------------------------------------------------------------------- */

static int cmd_aggregate(const pe_config_t *cfg, int argc, char **argv)
{
    pe_aggregate_options_t opt = {.wait = true};
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--full") == 0)
            opt.full = true;
        else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            opt.store_id = argv[++i];
        else
            return usage_error(USAGE_AGGREGATE, "unexpected argument '%s'", argv[i]);
    }
    pe_db_pool_t *pool = pe_db_pool_new(cfg->database_url, 1);
    if (!pool)
        return EXIT_FAILURE;
    pe_aggregate_report_t rep;
    char err[512] = "";
    int rc = pe_aggregate_run(pool, &opt, &rep, err, sizeof err);
    pe_db_pool_free(pool);
    if (rc != 0) {
        fprintf(stderr, "profit-engine: aggregate: %s\n", err[0] ? err : pe_strerror(rc));
        return rc == PE_ENOTFOUND || rc == PE_EINVAL ? EXIT_USAGE : EXIT_FAILURE;
    }
    printf("{\"stores\":%zu,\"fullStores\":%zu,\"sessions\":%zu,\"days\":%zu,\"weeks\":%zu,"
           "\"months\":%zu,\"ms\":%.1f}\n",
           rep.stores, rep.full_stores, rep.sessions, rep.days, rep.weeks, rep.months, rep.ms);
    return 0;
}

/* ---- store create ---------------------------------------------------------------------------- */

/* Reads --flag value pairs into vals (same order as names). Returns 0 or EXIT_USAGE. */
static int parse_flags(int argc, char **argv, const char *const *names, const char **vals, size_t n,
                       const char *usage)
{
    for (int i = 0; i < argc; i++) {
        size_t k = 0;
        while (k < n && strcmp(argv[i], names[k]) != 0)
            k++;
        if (k == n)
            return usage_error(usage, "unknown option '%s'", argv[i]);
        if (i + 1 >= argc)
            return usage_error(usage, "option %s needs a value", argv[i]);
        vals[k] = argv[++i];
    }
    return 0;
}

static int cmd_store(const pe_config_t *cfg, int argc, char **argv)
{
    static const char *const names[] = {"--name", "--timezone", "--currency"};
    const char *vals[3] = {NULL, NULL, NULL};
    if (argc < 1 || strcmp(argv[0], "create") != 0)
        return usage_error(USAGE_STORE, "unknown store command '%s'", argc ? argv[0] : "");
    int rc = parse_flags(argc - 1, argv + 1, names, vals, 3, USAGE_STORE);
    if (rc != 0)
        return rc;
    if (!vals[0])
        return usage_error(USAGE_STORE, "%s is required", "--name");

    pe_db_pool_t *pool = pe_db_pool_new(cfg->database_url, 1);
    if (!pool)
        return EXIT_FAILURE;
    pe_store_t store;
    char pk[PE_KEY_LEN], sk[PE_KEY_LEN], err[256] = "";
    rc = pe_tenancy_store_create(pool, vals[0], vals[1], vals[2], &store, pk, sk, err, sizeof err);
    pe_db_pool_free(pool);
    if (rc != 0) {
        fprintf(stderr, "profit-engine: store create: %s\n", err[0] ? err : pe_strerror(rc));
        return rc == PE_EINVAL ? EXIT_USAGE : EXIT_FAILURE;
    }
    printf("{\"storeId\":\"%s\",\"publishableKey\":\"%s\",\"secretKey\":\"%s\"}\n", store.id, pk,
           sk);
    return 0;
}

/* ---- user create ----------------------------------------------------------------------------- */

/* Reads one line (the password) from stdin without echo when stdin is a terminal. */
static int read_password(char *out, size_t outlen)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios saved, quiet;
    if (tty) {
        fprintf(stderr, "password: ");
        tcgetattr(STDIN_FILENO, &saved);
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = fgets(out, (int)outlen, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fprintf(stderr, "\n");
    }
    if (!line)
        return PE_EINVAL;
    size_t n = strlen(out);
    if (n == outlen - 1 && out[n - 1] != '\n')
        return PE_ETOOBIG;
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    return 0;
}

static int cmd_user(const pe_config_t *cfg, int argc, char **argv)
{
    static const char *const names[] = {"--email", "--store"};
    const char *vals[2] = {NULL, NULL};
    if (argc < 1 || strcmp(argv[0], "create") != 0)
        return usage_error(USAGE_USER, "unknown user command '%s'", argc ? argv[0] : "");
    int rc = parse_flags(argc - 1, argv + 1, names, vals, 2, USAGE_USER);
    if (rc != 0)
        return rc;
    if (!vals[0] || !vals[1])
        return usage_error(USAGE_USER, "%s are required", "--email and --store");
    char password[1027];
    rc = read_password(password, sizeof password);
    if (rc != 0) {
        fprintf(stderr, "profit-engine: user create: %s\n",
                rc == PE_ETOOBIG ? "the password is longer than 1024 bytes"
                                 : "no password on standard input");
        return EXIT_USAGE;
    }
    pe_db_pool_t *pool = pe_db_pool_new(cfg->database_url, 1);
    if (!pool)
        return EXIT_FAILURE;
    char user_id[PE_ID_LEN], err[256] = "";
    rc = pe_tenancy_user_create(pool, vals[0], password, vals[1], user_id, err, sizeof err);
    pe_db_pool_free(pool);
    memset(password, 0, sizeof password);
    if (rc != 0) {
        const char *why = err[0]               ? err
                          : rc == PE_ECONFLICT ? "that email exists with a different password"
                          : rc == PE_ENOTFOUND ? "no such store"
                                               : pe_strerror(rc);
        fprintf(stderr, "profit-engine: user create: %s\n", why);
        return rc == PE_EINVAL || rc == PE_ENOTFOUND ? EXIT_USAGE : EXIT_FAILURE;
    }
    printf("{\"userId\":\"%s\",\"storeId\":\"%s\"}\n", user_id, vals[1]);
    return 0;
}

/* Prints out (taken) as one JSON line: the answer of a command that reports in JSON. Returns 0
 * or EXIT_FAILURE (out of memory). */
static int print_json(cJSON *out)
{
    char *text = pe_json_print(out);
    cJSON_Delete(out);
    if (!text)
        return EXIT_FAILURE;
    printf("%s\n", text);
    free(text);
    return 0;
}

/* ---- diagnose -------------------------------------------------------------------------------- */

static int cmd_diagnose(const pe_config_t *cfg, int argc, char **argv)
{
    static const char *const names[] = {"--store", "--from", "--to"};
    const char *vals[3] = {NULL, NULL, NULL};
    int rc = parse_flags(argc, argv, names, vals, 3, USAGE_DIAGNOSE);
    if (rc != 0)
        return rc;
    if (!vals[0])
        return usage_error(USAGE_DIAGNOSE, "--store is required");
    pe_doctor_request_t rq = {.now_us = pe_now_unix_us()};
    if (vals[1] || vals[2]) {
        if (!vals[1] || !vals[2])
            return usage_error(USAGE_DIAGNOSE, "give --from and --to together, or neither");
        if (pe_aggregate_date_parse(vals[1], &rq.from) != 0 ||
            pe_aggregate_date_parse(vals[2], &rq.to) != 0)
            return usage_error(USAGE_DIAGNOSE, "--from and --to must be YYYY-MM-DD");
        rq.has_window = true;
    }
    pe_db_pool_t *pool = pe_db_pool_new(cfg->database_url, 1);
    if (!pool)
        return EXIT_FAILURE;
    cJSON *run = NULL;
    pe_refusal_t err = {.code = ""};
    rc = pe_doctor_run(pool, vals[0], &rq, &run, &err);
    pe_db_pool_free(pool);
    if (rc != 0) {
        fprintf(stderr, "profit-engine: diagnose: %s\n",
                err.code[0] ? err.message : pe_strerror(rc));
        return rc == PE_ENOTFOUND || rc == PE_EINVAL ? EXIT_USAGE : EXIT_FAILURE;
    }
    return print_json(run);
}

/* ---- attribution ----------------------------------------------------------------------------- */

static int cmd_attribution(const pe_config_t *cfg, int argc, char **argv)
{
    static const char *const names[] = {"--store", "--from", "--to"};
    const char *vals[3] = {NULL, NULL, NULL};
    int rc = parse_flags(argc, argv, names, vals, 3, USAGE_ATTRIBUTION);
    if (rc != 0)
        return rc;
    if (!vals[0] || !vals[1] || !vals[2])
        return usage_error(USAGE_ATTRIBUTION, "--store, --from and --to are required");
    if (!pe_uuid_text_valid(vals[0]))
        return usage_error(USAGE_ATTRIBUTION, "--store must be a store id (a UUID)");
    int32_t from = 0, to = 0;
    if (pe_aggregate_date_parse(vals[1], &from) != 0 || pe_aggregate_date_parse(vals[2], &to) != 0)
        return usage_error(USAGE_ATTRIBUTION, "--from and --to must be YYYY-MM-DD");
    pe_db_pool_t *pool = pe_db_pool_new(cfg->database_url, 1);
    if (!pool)
        return EXIT_FAILURE;
    cJSON *out = NULL;
    rc = pe_experiments_attribution(pool, vals[0], from, to, pe_now_unix_us(), &out);
    pe_db_pool_free(pool);
    if (rc != 0) {
        fprintf(stderr, "profit-engine: attribution: %s\n",
                rc == PE_ENOTFOUND ? "no such store"
                : rc == PE_EINVAL  ? "a bad range (from after to, or more than the most days)"
                                   : pe_strerror(rc));
        return rc == PE_ENOTFOUND || rc == PE_EINVAL ? EXIT_USAGE : EXIT_FAILURE;
    }
    return print_json(out);
}

/* ---- recommend ------------------------------------------------------------------------------- */

static int cmd_recommend(const pe_config_t *cfg, int argc, char **argv)
{
    static const char *const names[] = {"--store"};
    const char *vals[1] = {NULL};
    int rc = parse_flags(argc, argv, names, vals, 1, USAGE_RECOMMEND);
    if (rc != 0)
        return rc;
    if (!vals[0])
        return usage_error(USAGE_RECOMMEND, "--store is required");
    if (!pe_uuid_text_valid(vals[0]))
        return usage_error(USAGE_RECOMMEND, "--store must be a store id (a UUID)");
    /* the recommender holds the store's lock on one connection while the ChangeSet service
     * uses another */
    pe_db_pool_t *pool = pe_db_pool_new(cfg->database_url, 3);
    pe_changeset_config_t cscfg = {.db = pool};
    pe_changeset_service_t *svc = pool ? pe_changeset_service_new(&cscfg) : NULL;
    pe_doctor_recommender_config_t rcfg = {.db = pool, .changesets = svc};
    pe_refusal_t why = {.code = ""};
    pe_doctor_recommender_t *rec = svc ? pe_doctor_recommender_new(&rcfg, &why) : NULL;
    cJSON *out = NULL;
    rc = rec ? pe_doctor_recommend(rec, vals[0], pe_now_unix_us(), &out) : PE_ENOMEM;
    pe_doctor_recommender_free(rec);
    pe_changeset_service_free(svc);
    pe_db_pool_free(pool);
    if (rc != 0) {
        fprintf(stderr, "profit-engine: recommend: %s\n",
                rc == PE_ENOTFOUND ? "no such store" : pe_strerror(rc));
        return rc == PE_ENOTFOUND ? EXIT_USAGE : EXIT_FAILURE;
    }
    return print_json(out);
}

/* ---- measure --------------------------------------------------------------------------------- */

static int cmd_measure(const pe_config_t *cfg, int argc, char **argv)
{
    static const char *const names[] = {"--store"};
    const char *vals[1] = {NULL};
    int rc = parse_flags(argc, argv, names, vals, 1, USAGE_MEASURE);
    if (rc != 0)
        return rc;
    if (!vals[0])
        return usage_error(USAGE_MEASURE, "--store is required");
    if (!pe_uuid_text_valid(vals[0]))
        return usage_error(USAGE_MEASURE, "--store must be a store id (a UUID)");
    char err[256];
    pe_db_pool_t *pool = pe_db_pool_new(cfg->database_url, 3);
    /* Redis publishes a rolled-back flag at once; without it, servers see it at their next
     * PostgreSQL poll */
    pe_redis_t *redis = pe_redis_new(cfg->redis_url, REDIS_TIMEOUT_MS, err, sizeof err);
    pe_flags_config_t fcfg = {.db = pool, .redis = redis};
    pe_flags_t *flags = pool ? pe_flags_new(&fcfg) : NULL;
    pe_changeset_config_t cscfg = {.db = pool};
    if (flags)
        cscfg.flags = pe_changeset_flag_hooks(flags);
    pe_changeset_service_t *svc = flags ? pe_changeset_service_new(&cscfg) : NULL;
    cJSON *out = NULL;
    rc = svc ? pe_experiments_measure(pool, svc, vals[0], pe_now_unix_us(), &out) : PE_ENOMEM;
    pe_changeset_service_free(svc);
    pe_flags_free(flags);
    pe_redis_free(redis);
    pe_db_pool_free(pool);
    if (rc != 0) {
        fprintf(stderr, "profit-engine: measure: %s\n",
                rc == PE_ENOTFOUND ? "no such store" : pe_strerror(rc));
        return rc == PE_ENOTFOUND ? EXIT_USAGE : EXIT_FAILURE;
    }
    return print_json(out);
}

/* ---- schema ---------------------------------------------------------------------------------- */

#define SCHEMA_STDIN_MAX (4u << 20) /* far above any valid event; bounds a runaway pipe */

static int cmd_schema_export(bool changeset)
{
    pe_buf_t b = PE_BUF_INIT;
    int rc = changeset ? pe_changeset_json_schema(&b) : pe_events_json_schema(&b);
    if (rc == 0)
        printf("%s\n", b.data);
    else
        fprintf(stderr, "profit-engine: schema export: %s\n", pe_strerror(rc));
    pe_buf_free(&b);
    return rc == 0 ? 0 : EXIT_FAILURE;
}

/* Prints {"valid":false,"code":code,"message":message} and returns status. */
static int schema_refusal(int status, const char *code, const char *message)
{
    pe_buf_t b = PE_BUF_INIT;
    int rc = pe_buf_puts(&b, "{\"valid\":false,\"code\":");
    rc = rc ? rc : pe_buf_json_string(&b, code, strlen(code));
    rc = rc ? rc : pe_buf_puts(&b, ",\"message\":");
    rc = rc ? rc : pe_buf_json_string(&b, message, strlen(message));
    rc = rc ? rc : pe_buf_puts(&b, "}");
    if (rc == 0)
        printf("%s\n", b.data);
    pe_buf_free(&b);
    return rc == 0 ? status : EXIT_FAILURE;
}

static int cmd_schema_validate(void)
{
    pe_buf_t in = PE_BUF_INIT;
    char chunk[65536], err[256] = "";
    size_t n;
    int status = EXIT_FAILURE;
    cJSON *j = NULL;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (in.len + n > SCHEMA_STDIN_MAX) {
            snprintf(err, sizeof err, "input: larger than %u bytes", SCHEMA_STDIN_MAX);
            status = schema_refusal(EXIT_FAILURE, "too_large", err);
            goto out;
        }
        if (pe_buf_append(&in, chunk, n) != 0)
            goto out;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "profit-engine: schema validate: cannot read standard input\n");
        goto out;
    }
    if (pe_json_parse(in.data ? in.data : "", in.len, &j, err, sizeof err) != 0) {
        status = schema_refusal(EXIT_USAGE, "invalid_json", err);
        goto out;
    }
    pe_event_t ev;
    pe_refusal_t verdict;
    if (pe_events_validate(j, 0, &ev, &verdict) != 0) {
        status = schema_refusal(EXIT_FAILURE, verdict.code, verdict.message);
        goto out;
    }
    printf("{\"valid\":true}\n");
    status = 0;
out:
    cJSON_Delete(j);
    pe_buf_free(&in);
    return status;
}

static int cmd_schema(const pe_config_t *cfg, int argc, char **argv)
{
    (void)cfg; /* CMD_NO_CONFIG */
    if (argc < 1 || (strcmp(argv[0], "export") != 0 && strcmp(argv[0], "validate") != 0))
        return usage_error(USAGE_SCHEMA, "expected 'export' or 'validate', not '%s'",
                           argc ? argv[0] : "");
    bool export = strcmp(argv[0], "export") == 0;
    bool changeset = export && argc > 1 && strcmp(argv[1], "changeset") == 0;
    if (argc > 2 || (argc == 2 && (!export || (!changeset && strcmp(argv[1], "events") != 0))))
        return usage_error(USAGE_SCHEMA, "unexpected argument '%s'", argv[argc - 1]);
    return export ? cmd_schema_export(changeset) : cmd_schema_validate();
}

/* ---- audit verify ---------------------------------------------------------------------------- */

static int cmd_audit(const pe_config_t *cfg, int argc, char **argv)
{
    const char *store = NULL;
    if (argc < 1 || strcmp(argv[0], "verify") != 0)
        return usage_error(USAGE_AUDIT, "unknown audit command '%s'", argc ? argv[0] : "");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            store = argv[++i];
        else
            return usage_error(USAGE_AUDIT, "unexpected argument '%s'", argv[i]);
    }
    pe_db_pool_t *pool = pe_db_pool_new(cfg->database_url, 1);
    if (!pool)
        return EXIT_FAILURE;
    cJSON *out = NULL;
    int rc = pe_changeset_audit_verify(pool, store, &out);
    pe_db_pool_free(pool);
    if (rc != 0) {
        fprintf(stderr, "profit-engine: audit verify: %s\n", pe_strerror(rc));
        return rc == PE_EINVAL ? EXIT_USAGE : EXIT_FAILURE;
    }
    char *text = pe_json_print(out);
    bool ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "ok"));
    cJSON_Delete(out);
    if (!text)
        return EXIT_FAILURE;
    printf("%s\n", text);
    free(text);
    return ok ? 0 : EXIT_FAILURE;
}

/* ---- stats ----------------------------------------------------------------------------------- */

static int cmd_stats(const pe_config_t *cfg, int argc, char **argv)
{
    (void)cfg; /* CMD_NO_CONFIG: pure computation */
    return pe_stats_command(argc, argv);
}

/* ---- the command table ----------------------------------------------------------------------- */

enum {
    CMD_NO_ARGS = 1u << 0,   /* any argument (but --help) is a usage error */
    CMD_NO_CONFIG = 1u << 1, /* runs without libsodium or the PE_* configuration; cfg is NULL */
};

/* A command of `profit-engine <name> …`. run gets the arguments after the name and the checked
 * configuration (NULL with CMD_NO_CONFIG), and returns the exit status (invariant 1); it is
 * called once, from main(). */
typedef struct {
    const char *name;
    /* For the list of `profit-engine --help`: one line per form of the command, and one line of
     * help per form, paired in order. print_usage lays them out. */
    const char *synopsis;
    const char *help;
    const char *usage; /* `profit-engine <name> --help`, and after the command's usage errors */
    unsigned flags;    /* CMD_* */
    int (*run)(const pe_config_t *cfg, int argc, char **argv);
} command_t;

/* In the order `profit-engine --help` lists them. */
static const command_t commands[] = {
    {"serve", "serve", "run the HTTP server (the default)", USAGE_SERVE, CMD_NO_ARGS, cmd_serve},
    {"migrate", "migrate", "apply pending database migrations and exit", USAGE_MIGRATE, CMD_NO_ARGS,
     cmd_migrate},
    {"maintain", "maintain", "run partition maintenance (pg_partman) once and exit", USAGE_MAINTAIN,
     CMD_NO_ARGS, cmd_maintain},
    {"aggregate", "aggregate [--store ID] [--full]",
     "roll new events up into the metrics tables and exit", USAGE_AGGREGATE, 0, cmd_aggregate},
    {"diagnose", "diagnose --store ID [--from D --to D]",
     "run the funnel doctor over a window and print the ranked findings", USAGE_DIAGNOSE, 0,
     cmd_diagnose},
    {"measure", "measure --store ID",
     "measure the store's running experiments and roll back, prove or keep running each one",
     USAGE_MEASURE, 0, cmd_measure},
    {"recommend", "recommend --store ID",
     "turn the latest findings into recommendations (ChangeSets ready to approve) and print them",
     USAGE_RECOMMEND, 0, cmd_recommend},
    {"attribution", "attribution --store ID --from D --to D",
     "print what Autopilot earned the store over the days (GET …/attribution, computed now)",
     USAGE_ATTRIBUTION, 0, cmd_attribution},
    {"store", "store create --name N [--timezone TZ] [--currency C]",
     "create a store; prints its id and API keys (shown once)", USAGE_STORE, 0, cmd_store},
    {"user", "user create --email E --store ID",
     "create a merchant login for a store; password on stdin", USAGE_USER, 0, cmd_user},
    {"schema", "schema export [events|changeset]\nschema validate",
     "print the JSON Schema (2020-12) of events or of ChangeSets\n"
     "check one event (JSON on stdin) against it",
     USAGE_SCHEMA, CMD_NO_CONFIG, cmd_schema},
    {"simulate", "simulate --store ID --days D --sessions-per-day N --seed S [options]",
     "generate storefront traffic with known truth (see --help)", pe_sim_usage, 0, pe_sim_command},
    {"stats", "stats analyze | sample-size",
     "experiment statistics: JSON on stdin -> JSON (see --help)", pe_stats_usage, CMD_NO_CONFIG,
     cmd_stats},
    {"audit", "audit verify [--store ID]",
     "recompute the ChangeSet audit hash chains; name the first broken link (exit 1 when one is "
     "broken)",
     USAGE_AUDIT, 0, cmd_audit},
};

#define USAGE_HELP_COLUMN 28 /* where a command's help starts in the list */
#define USAGE_WIDTH       90 /* help wraps before a line gets longer than this */

/* Prints one form of a command: "  synopsis", then help from USAGE_HELP_COLUMN — on the same line
 * when the synopsis leaves room, else on the next — wrapped between words to USAGE_WIDTH. */
static void print_form(FILE *f, const char *synopsis, size_t synopsis_len, const char *help,
                       size_t help_len)
{
    size_t col = 0;
    if (synopsis_len) {
        fprintf(f, "  %.*s", (int)synopsis_len, synopsis);
        col = 2 + synopsis_len;
        if (col >= USAGE_HELP_COLUMN && help_len) {
            fputc('\n', f);
            col = 0;
        }
    }
    const char *p = help, *end = help + help_len;
    bool line_start = true;
    while (p < end) {
        size_t word = 0;
        while (p + word < end && p[word] != ' ')
            word++;
        if (!line_start && col + 1 + word > USAGE_WIDTH) {
            fputc('\n', f);
            col = 0;
            line_start = true;
        }
        if (line_start) {
            fprintf(f, "%*s", (int)(USAGE_HELP_COLUMN - col), "");
            col = USAGE_HELP_COLUMN;
        } else {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, word, f);
        col += word;
        line_start = false;
        p += word;
        while (p < end && *p == ' ')
            p++;
    }
    fputc('\n', f);
}

/* The top-level usage: USAGE_HEAD, every form of every command in commands[], USAGE_TAIL. */
static void print_usage(FILE *f)
{
    fputs(USAGE_HEAD, f);
    for (size_t i = 0; i < PE_ARRAY_LEN(commands); i++) {
        const char *synopsis = commands[i].synopsis, *help = commands[i].help;
        while (*synopsis || *help) {
            size_t sn = strcspn(synopsis, "\n"), hn = strcspn(help, "\n");
            print_form(f, synopsis, sn, help, hn);
            synopsis += sn + (synopsis[sn] == '\n');
            help += hn + (help[hn] == '\n');
        }
    }
    fputs(USAGE_TAIL, f);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    pe_json_init(); /* cJSON's allocation hooks, before any thread uses cJSON */
    const char *name = argc > 1 ? argv[1] : "serve";
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("profit-engine %s (%s)\n", PE_VERSION, PE_GIT_COMMIT);
        return 0;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    const command_t *cmd = NULL;
    for (size_t i = 0; i < PE_ARRAY_LEN(commands) && !cmd; i++)
        if (strcmp(name, commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd)
        return usage_error(NULL, "unknown command '%s'", name);
    int sub_argc = argc > 2 ? argc - 2 : 0;
    char **sub_argv = argv + 2;
    if (wants_help(sub_argc, sub_argv)) {
        fputs(cmd->usage, stdout);
        return 0;
    }
    if ((cmd->flags & CMD_NO_ARGS) && sub_argc > 0)
        return usage_error(cmd->usage, "unexpected argument '%s'", sub_argv[0]);
    if (cmd->flags & CMD_NO_CONFIG)
        return cmd->run(NULL, sub_argc, sub_argv);

    if (pe_crypto_init() != 0) {
        fprintf(stderr, "profit-engine: cannot initialise libsodium\n");
        return EXIT_FAILURE;
    }
    pe_config_t cfg;
    int rc = load_config(&cfg);
    if (rc != 0)
        return rc;
    rc = cmd->run(&cfg, sub_argc, sub_argv);
    pe_config_free(&cfg);
    return rc;
}
