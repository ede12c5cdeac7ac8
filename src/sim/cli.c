/*
 * cli.c — `profit-engine simulate`: reads the options and the scenario, looks the store up,
 * writes the simulated catalogue through the catalogue module, generates the traffic and
 * delivers it through the real collector — over HTTP (POST /v1/events with a publishable key,
 * POST /v1/import with a secret key) or in-process (--via direct, import mode) — then writes
 * the truth and prints a one-line summary.
 *
 * Invariants:
 *  1. Every batch's answer is checked: accepted must equal the events sent, else the run fails
 *     loudly (exit 1) naming the first refusal. 503 and connection failures are retried with
 *     backoff (the collector is idempotent by eventId, so a retry never doubles an event).
 *  2. The truth file is written only after every event was accepted, via a temporary file and
 *     rename, so a reader never sees a truth the database does not hold.
 *  3. A secret key minted for the run (HTTP without --key) is revoked on every exit path.
 *  4. Bad usage, an unknown store, a bad scenario or a window a publishable key cannot reach
 *     exit 2 before anything is written; failures after that exit 1.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pe/aggregate.h"
#include "pe/catalog.h"
#include "pe/collector.h"
#include "pe/db.h"
#include "pe/tenancy.h"
#include "sim_internal.h"

#define EXIT_USAGE        2
#define DB_TIMEOUT_MS     10000
#define HTTP_TIMEOUT_MS   60000
#define MAX_ATTEMPTS      10
#define BACKOFF_FIRST_MS  100
#define BACKOFF_MAX_MS    5000
#define LIVE_MARGIN_S     600 /* a publishable key's window, minus this much slack */
#define DEFAULT_WORKERS_D 8
#define DEFAULT_WORKERS_H 4
#define MAX_WORKERS       64

const char pe_sim_usage[] =
    "usage: profit-engine simulate --store ID --days D --sessions-per-day N --seed S\n"
    "         [--scenario FILE] [--truth FILE] [--end YYYY-MM-DD] [--via http|direct]\n"
    "         [--url URL] [--key KEY] [--workers W] [--autopilot [--approve top|all|none]]\n"
    "Generates D store-local days of storefront traffic (about N sessions a day) ending on\n"
    "--end (default: today in the store's time zone; sessions that would end after now are\n"
    "left out), writes a catalogue of simulated products (SKUs SIM-0001…) to the store, and\n"
    "delivers the events through the collector. The same seed and options give the same events\n"
    "(eventIds included) and the same truth.\n"
    "  --scenario FILE  funnel probabilities, mixes and per-segment overrides (JSON; README)\n"
    "  --truth FILE     write the scenario in force and the realised truth (JSON)\n"
    "  --via http       POST batches to URL (default http://$PE_LISTEN): with a pk_ key to\n"
    "                   /v1/events (only the last 7 days), with an sk_ key to /v1/import; with\n"
    "                   no key a secret key is minted for the run and revoked at its end\n"
    "  --via direct     in-process collector in import mode (fast; for large loads)\n"
    "  --workers W      concurrent batches in flight, 1..64 (default 8 direct, 4 http)\n"
    "  --autopilot      the closed loop (README \"Closed-loop simulation\"): day by day, units\n"
    "                   bucketed by the store's live flags, the scenario's \"effects\" applied\n"
    "                   to treatments, then aggregate, diagnose, recommend, approve and measure\n"
    "                   run at that day's time; the truth gets every experiment's outcome and\n"
    "                   true effect. Implies --via direct.\n"
    "  --approve P      the merchant's policy with --autopilot: top (default: the best active\n"
    "                   recommendation each day), all, none\n"
    "Needs PE_DATABASE_URL (the store, its time zone, the catalogue). Prints one JSON line:\n"
    "{\"events\",\"sessions\",\"orders\",\"revenue\",\"seconds\",\"eventsPerSecond\",…}.\n";

typedef struct {
    const char *store, *days, *sessions, *seed, *scenario, *truth, *end, *via, *url, *key, *workers;
    const char *approve;
    bool autopilot;
} options_t;

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "profit-engine: simulate: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", pe_sim_usage);
    return EXIT_USAGE;
}

static int problem(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int problem(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "profit-engine: simulate: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return status;
}

static int parse_options(int argc, char **argv, options_t *o)
{
    static const char *const names[] = {"--store", "--days",     "--sessions-per-day",
                                        "--seed",  "--scenario", "--truth",
                                        "--end",   "--via",      "--url",
                                        "--key",   "--workers",  "--approve"};
    const char **slots[] = {&o->store, &o->days, &o->sessions, &o->seed, &o->scenario, &o->truth,
                            &o->end,   &o->via,  &o->url,      &o->key,  &o->workers,  &o->approve};
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--autopilot") == 0) {
            o->autopilot = true;
            continue;
        }
        size_t k = 0;
        while (k < PE_ARRAY_LEN(names) && strcmp(argv[i], names[k]) != 0)
            k++;
        if (k == PE_ARRAY_LEN(names))
            return usage("unknown option '%s'", argv[i]);
        if (i + 1 >= argc)
            return usage("option %s needs a value", argv[i]);
        *slots[k] = argv[++i];
    }
    if (!o->store || !o->days || !o->sessions || !o->seed)
        return usage("--store, --days, --sessions-per-day and --seed are required");
    if (o->approve && !o->autopilot)
        return usage("--approve goes with --autopilot");
    if (o->approve && strcmp(o->approve, "top") != 0 && strcmp(o->approve, "all") != 0 &&
        strcmp(o->approve, "none") != 0)
        return usage("--approve: must be top, all or none");
    if (o->autopilot && o->via && strcmp(o->via, "direct") != 0)
        return usage("--autopilot delivers in-process: --via direct (the default with it)");
    return 0;
}

/* A decimal integer in [lo, hi]. */
static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int read_file(const char *path, size_t max, char **out, size_t *len)
{
    int rc = PE_EIO;
    pe_buf_t b = PE_BUF_INIT;
    char chunk[65536];
    size_t n;
    FILE *f = fopen(path, "rb");
    *out = NULL;
    *len = 0;
    if (!f)
        return PE_ENOTFOUND;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > max) {
            rc = PE_ETOOBIG;
            goto out;
        }
        if (pe_buf_append(&b, chunk, n) != 0) {
            rc = PE_ENOMEM;
            goto out;
        }
    }
    if (ferror(f))
        goto out;
    *len = b.len;
    *out = pe_buf_steal(&b);
    if (!*out && (*out = strdup("")) == NULL) {
        rc = PE_ENOMEM;
        goto out;
    }
    rc = 0;
out:
    fclose(f);
    pe_buf_free(&b);
    return rc;
}

/* Writes text to path through path.tmp + rename. */
static int write_file(const char *path, const char *text)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return PE_EINVAL;
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return PE_EIO;
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return PE_EIO;
    }
    return 0;
}

/* ---- the store's days ------------------------------------------------------------------------ */

/* Fills first_day and days+1 local midnights (Unix µs) ending the day after `end` (NULL =
 * today in tz). */
static int day_bounds(pe_db_pool_t *pool, const char *tz, const char *end, unsigned days,
                      char first_day[11], int64_t *starts)
{
    static const char sql[] =
        "SELECT to_char(e + i, 'YYYY-MM-DD'), "
        "       (extract(epoch FROM ((e + i)::timestamp AT TIME ZONE $1)) * 1000000)::bigint "
        "  FROM (SELECT coalesce($2::date, (now() AT TIME ZONE $1)::date) AS e) AS d, "
        "       generate_series(1 - $3::int, 1) AS i "
        " ORDER BY i";
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    char n[16];
    snprintf(n, sizeof n, "%u", days);
    const char *params[] = {tz, end, n};
    int rc = pe_db_acquire(pool, DB_TIMEOUT_MS, &conn);
    if (rc == 0)
        rc = pe_db_exec(conn, sql, 3, params, &res);
    if (rc == 0 && pe_db_result_rows(res) != days + 1)
        rc = PE_EINTERNAL;
    if (rc == 0) {
        snprintf(first_day, 11, "%s", pe_db_result_get(res, 0, 0));
        for (unsigned d = 0; d <= days; d++)
            starts[d] = strtoll(pe_db_result_get(res, d, 1), NULL, 10);
    }
    pe_db_result_free(res);
    pe_db_release(pool, conn);
    return rc;
}

/* ---- delivery -------------------------------------------------------------------------------- */

typedef struct {
    const char *store_id;
    /* direct */
    pe_collector_t *collector;
    /* http */
    char url[1024];
    struct curl_slist *headers;
    CURL *curl[MAX_WORKERS];
    /* both */
    atomic_ullong retries;
    atomic_flag reported;
} deliver_ctx_t;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static long backoff_ms(int attempt)
{
    long ms = BACKOFF_FIRST_MS << (attempt < 6 ? attempt : 6);
    return ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms;
}

static int deliver_direct(void *arg, unsigned worker, const cJSON *events, size_t count)
{
    deliver_ctx_t *c = arg;
    (void)worker;
    for (int attempt = 0;; attempt++) {
        size_t accepted = 0, rejected = 0;
        int rc = pe_collector_ingest_wait(c->collector, c->store_id, PE_COLLECTOR_IMPORT, events,
                                          pe_now_unix_us(), &accepted, &rejected);
        if ((rc == PE_EUNAVAIL || rc == PE_ETIMEOUT) && attempt + 1 < MAX_ATTEMPTS) {
            atomic_fetch_add(&c->retries, 1);
            sleep_ms(backoff_ms(attempt));
            continue;
        }
        if (rc != 0) {
            if (!atomic_flag_test_and_set(&c->reported))
                problem(1, "the collector could not store a batch: %s", pe_strerror(rc));
            return rc;
        }
        if (accepted != count) {
            if (!atomic_flag_test_and_set(&c->reported))
                problem(1,
                        "the collector accepted %zu of %zu events (%zu rejected; the reasons are "
                        "in events_rejected)",
                        accepted, count, rejected);
            return PE_EINTERNAL;
        }
        return 0;
    }
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return pe_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

/* Checks a 200 answer {"accepted":N,"rejected":[]}. */
static int check_answer(deliver_ctx_t *c, const pe_buf_t *body, size_t count)
{
    cJSON *j = NULL;
    char err[128];
    int rc = PE_EINTERNAL;
    if (pe_json_parse(body->data ? body->data : "", body->len, &j, err, sizeof err) != 0)
        goto out;
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(j, "accepted");
    const cJSON *rej = cJSON_GetObjectItemCaseSensitive(j, "rejected");
    if (cJSON_IsNumber(acc) && acc->valuedouble == (double)count && cJSON_IsArray(rej) &&
        cJSON_GetArraySize(rej) == 0)
        rc = 0;
out:
    if (rc != 0 && !atomic_flag_test_and_set(&c->reported))
        problem(1, "the server did not accept all %zu events: %.600s", count,
                body->data ? body->data : "");
    cJSON_Delete(j);
    return rc;
}

/* POSTs {"events":[body]} (count events), retrying 503 and connection failures. */
static int post_batch(deliver_ctx_t *c, CURL *curl, const pe_buf_t *payload, size_t count)
{
    pe_buf_t resp = PE_BUF_INIT;
    int rc = PE_EIO;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        pe_buf_reset(&resp);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload->data);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)payload->len);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
        CURLcode cc = curl_easy_perform(curl);
        long status = 0;
        if (cc == CURLE_OK)
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (cc == CURLE_OK && status == 200) {
            rc = check_answer(c, &resp, count);
            goto out;
        }
        if (cc == CURLE_OK && status != 503) {
            if (!atomic_flag_test_and_set(&c->reported))
                problem(1, "POST %s answered %ld: %.600s", c->url, status,
                        resp.data ? resp.data : "");
            rc = PE_EINVAL;
            goto out;
        }
        if (attempt + 1 == MAX_ATTEMPTS) {
            if (!atomic_flag_test_and_set(&c->reported))
                problem(1, "POST %s: %s after %d attempts", c->url,
                        cc == CURLE_OK ? "503" : curl_easy_strerror(cc), MAX_ATTEMPTS);
            rc = PE_EUNAVAIL;
            goto out;
        }
        atomic_fetch_add(&c->retries, 1);
        sleep_ms(backoff_ms(attempt));
    }
out:
    pe_buf_free(&resp);
    return rc;
}

static int deliver_http(void *arg, unsigned worker, const cJSON *events, size_t count)
{
    deliver_ctx_t *c = arg;
    CURL *curl = c->curl[worker];
    pe_buf_t payload = PE_BUF_INIT;
    size_t in_payload = 0;
    int rc = PE_ENOMEM;
    (void)count;
    /* Events are serialised one by one so that a batch over the body limit is split. */
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
    {
        char *text = cJSON_PrintUnformatted(e);
        if (!text)
            goto out;
        size_t n = strlen(text);
        if (in_payload && payload.len + n + 4 > PE_COLLECTOR_MAX_BODY) {
            rc = pe_buf_puts(&payload, "]}");
            rc = rc ? rc : post_batch(c, curl, &payload, in_payload);
            pe_buf_reset(&payload);
            in_payload = 0;
            if (rc != 0) {
                free(text);
                goto out;
            }
        }
        rc = pe_buf_puts(&payload, in_payload ? "," : "{\"events\":[");
        rc = rc ? rc : pe_buf_append(&payload, text, n);
        free(text);
        if (rc != 0)
            goto out;
        in_payload++;
    }
    rc = 0;
    if (in_payload) {
        rc = pe_buf_puts(&payload, "]}");
        rc = rc ? rc : post_batch(c, curl, &payload, in_payload);
    }
out:
    pe_buf_free(&payload);
    return rc;
}

static int http_setup(deliver_ctx_t *c, const pe_config_t *cfg, const char *url, const char *key,
                      bool import, unsigned workers)
{
    char auth[128];
    if (url) /* "http://host:port" or with a trailing slash */
        snprintf(c->url, sizeof c->url, "%.*s%s",
                 (int)(strlen(url) - (url[strlen(url) - 1] == '/')), url,
                 import ? "/v1/import" : "/v1/events");
    else
        snprintf(c->url, sizeof c->url,
                 strchr(cfg->listen_host, ':') ? "http://[%s]:%u%s" : "http://%s:%u%s",
                 cfg->listen_host, (unsigned)cfg->listen_port,
                 import ? "/v1/import" : "/v1/events");
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    struct curl_slist *h2 = h ? curl_slist_append(h, "Content-Type: application/json") : NULL;
    struct curl_slist *h3 = h2 ? curl_slist_append(h2, "Expect:") : NULL;
    if (!h3) {
        curl_slist_free_all(h);
        return PE_ENOMEM;
    }
    c->headers = h3;
    for (unsigned i = 0; i < workers; i++) {
        CURL *curl = curl_easy_init();
        if (!curl)
            return PE_ENOMEM;
        c->curl[i] = curl;
        curl_easy_setopt(curl, CURLOPT_URL, c->url);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)HTTP_TIMEOUT_MS);
        curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, c->headers);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    }
    return 0;
}

/* ---- the command ----------------------------------------------------------------------------- */

typedef struct {
    options_t o;
    uint64_t days, sessions, seed, workers;
    bool direct;
    pe_sim_scenario_t *scenario;
    pe_db_pool_t *pool;
    pe_store_t store;
    int64_t *starts;
    char first_day[11];
    pe_sim_t *sim;
    deliver_ctx_t dc;
    char minted_key[PE_KEY_LEN], minted_id[PE_ID_LEN];
    char *truth_text;
    int64_t now_us;   /* the real now the run started at (the cut-off) */
    cJSON *autopilot; /* the closed loop's truth, with --autopilot */
    sim_autopilot_totals_t loop;
} run_t;

static int prepare(run_t *r, const pe_config_t *cfg, int argc, char **argv)
{
    options_t *o = &r->o;
    int rc = parse_options(argc, argv, o);
    if (rc != 0)
        return rc;
    if (!parse_u64(o->days, 1, PE_SIM_MAX_DAYS, &r->days))
        return usage("--days: must be an integer 1..%d", PE_SIM_MAX_DAYS);
    if (!parse_u64(o->sessions, 1, PE_SIM_MAX_SESSIONS_PER_DAY, &r->sessions))
        return usage("--sessions-per-day: must be an integer 1..%d", PE_SIM_MAX_SESSIONS_PER_DAY);
    if (!parse_u64(o->seed, 0, UINT64_MAX, &r->seed))
        return usage("--seed: must be an integer 0..18446744073709551615");
    if (o->via && strcmp(o->via, "http") != 0 && strcmp(o->via, "direct") != 0)
        return usage("--via: must be http or direct");
    r->direct = o->autopilot || (o->via && strcmp(o->via, "direct") == 0);
    r->workers = r->direct ? DEFAULT_WORKERS_D : DEFAULT_WORKERS_H;
    if (o->workers && !parse_u64(o->workers, 1, MAX_WORKERS, &r->workers))
        return usage("--workers: must be an integer 1..%d", MAX_WORKERS);
    if (r->direct && (o->url || o->key))
        return usage("--url and --key go with --via http");
    if (o->key && strncmp(o->key, "pk_", 3) != 0 && strncmp(o->key, "sk_", 3) != 0)
        return usage("--key: must be a publishable (pk_…) or secret (sk_…) key");
    if (o->url && strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)
        return usage("--url: must start with http:// or https://");
    if (o->end) {
        int y, m, d;
        char tail;
        if (strlen(o->end) != 10 || sscanf(o->end, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
            return usage("--end: must be a date YYYY-MM-DD");
    }

    char *text = NULL, err[512];
    size_t len = 0;
    if (o->scenario) {
        rc = read_file(o->scenario, PE_SIM_SCENARIO_MAX_BYTES, &text, &len);
        if (rc != 0)
            return problem(EXIT_USAGE, "--scenario %s: %s", o->scenario,
                           rc == PE_ENOTFOUND ? strerror(errno)
                           : rc == PE_ETOOBIG ? "larger than 1 MiB"
                                              : pe_strerror(rc));
    }
    rc = pe_sim_scenario_parse(text, len, &r->scenario, err, sizeof err);
    free(text);
    if (rc != 0)
        return problem(rc == PE_EINVAL ? EXIT_USAGE : 1, "--scenario %s: %s",
                       o->scenario ? o->scenario : "", err);

    r->pool = pe_db_pool_new(cfg->database_url, 6);
    if (!r->pool)
        return problem(1, "out of memory");
    rc = pe_tenancy_store_get(r->pool, o->store, &r->store);
    if (rc == PE_ENOTFOUND)
        return problem(EXIT_USAGE, "--store %s: no such store", o->store);
    if (rc != 0)
        return problem(1, "cannot read the store: %s", pe_strerror(rc));
    r->starts = calloc(r->days + 1, sizeof *r->starts);
    if (!r->starts)
        return problem(1, "out of memory");
    rc = day_bounds(r->pool, r->store.timezone, o->end, (unsigned)r->days, r->first_day, r->starts);
    if (rc == PE_EINVAL)
        return usage("--end: '%s' is not a date", o->end);
    if (rc != 0)
        return problem(1, "cannot compute the store's days: %s", pe_strerror(rc));
    int64_t now = r->now_us = pe_now_unix_us();
    if (!r->direct && o->key && strncmp(o->key, "pk_", 3) == 0 &&
        now - r->starts[0] > (int64_t)(PE_COLLECTOR_MAX_AGE_S - LIVE_MARGIN_S) * 1000000)
        return problem(EXIT_USAGE,
                       "with a publishable key only the last 7 days can be simulated (the "
                       "storefront endpoint refuses older events); %s starts too early: use a "
                       "secret key (sk_…), no key, or --via direct",
                       r->first_day);

    pe_sim_params_t p = {
        .seed = r->seed,
        .days = (unsigned)r->days,
        .sessions_per_day = (unsigned)r->sessions,
        .day_starts_us = r->starts,
        .first_day = r->first_day,
        .currency = r->store.currency,
        .host = NULL,
        .cutoff_us = now,
        .scenario = r->scenario,
    };
    r->sim = pe_sim_new(&p, err, sizeof err);
    if (!r->sim)
        return problem(1, "%s", err);
    return 0;
}

static int write_catalog(run_t *r)
{
    cJSON *products = pe_sim_catalog_json(r->sim);
    pe_refusal_t err = {{0}, {0}};
    size_t count = 0;
    int rc = products ? pe_catalog_upsert(r->pool, r->store.id, products, &count, &err) : PE_ENOMEM;
    cJSON_Delete(products);
    if (rc != 0)
        return problem(1, "cannot write the catalogue: %s",
                       err.message[0] ? err.message : pe_strerror(rc));
    return 0;
}

static int autopilot(run_t *r, const pe_config_t *cfg)
{
    int32_t first_day = 0;
    if (pe_aggregate_date_parse(r->first_day, &first_day) != 0)
        return problem(1, "internal: day 0 %s is not a date", r->first_day);
    sim_autopilot_params_t p = {
        .pool = r->pool,
        .store_id = r->store.id,
        .redis_url = cfg->redis_url,
        .scenario = r->scenario,
        .approve = !r->o.approve || strcmp(r->o.approve, "top") == 0 ? SIM_APPROVE_TOP
                   : strcmp(r->o.approve, "all") == 0                ? SIM_APPROVE_ALL
                                                                     : SIM_APPROVE_NONE,
        .days = (unsigned)r->days,
        .workers = (unsigned)r->workers,
        .day_starts = r->starts,
        .first_day = first_day,
        .real_now_us = r->now_us,
        .deliver = deliver_direct,
        .deliver_ctx = &r->dc,
    };
    return sim_autopilot_run(&p, r->sim, &r->autopilot, &r->loop);
}

static int deliver(run_t *r, const pe_config_t *cfg, double *seconds)
{
    deliver_ctx_t *c = &r->dc;
    c->store_id = r->store.id;
    atomic_flag_clear(&c->reported);
    pe_collector_t *collector = NULL;
    int rc;
    int64_t t0 = pe_now_mono_us();
    if (r->direct) {
        pe_collector_config_t ccfg = {.db = r->pool};
        collector = pe_collector_new(&ccfg);
        if (!collector)
            return problem(1, "cannot start the collector");
        c->collector = collector;
        if (r->o.autopilot) {
            rc = autopilot(r, cfg);
            pe_collector_free(collector);
            *seconds = (double)(pe_now_mono_us() - t0) / 1e6;
            return rc;
        }
        rc = pe_sim_run(r->sim, (unsigned)r->workers, deliver_direct, c);
        pe_collector_free(collector);
    } else {
        const char *key = r->o.key;
        if (!key) {
            rc = pe_tenancy_key_create(r->pool, r->store.id, PE_KEY_SECRET, r->minted_key,
                                       r->minted_id);
            if (rc != 0)
                return problem(1, "cannot mint a secret key for the run: %s", pe_strerror(rc));
            key = r->minted_key;
        }
        rc = http_setup(c, cfg, r->o.url, key, strncmp(key, "sk_", 3) == 0, (unsigned)r->workers);
        if (rc == 0)
            rc = pe_sim_run(r->sim, (unsigned)r->workers, deliver_http, c);
    }
    *seconds = (double)(pe_now_mono_us() - t0) / 1e6;
    if (rc != 0 && !atomic_flag_test_and_set(&c->reported))
        problem(1, "the run stopped: %s", pe_strerror(rc));
    return rc == 0 ? 0 : 1;
}

static void cleanup(run_t *r)
{
    for (size_t i = 0; i < MAX_WORKERS; i++)
        curl_easy_cleanup(r->dc.curl[i]);
    curl_slist_free_all(r->dc.headers);
    if (r->minted_id[0]) {
        int rc = pe_tenancy_key_revoke(r->pool, r->store.id, r->minted_id);
        if (rc != 0)
            problem(1, "could not revoke the key minted for the run (id %s): %s", r->minted_id,
                    pe_strerror(rc));
    }
    pe_sim_free(r->sim);
    cJSON_Delete(r->autopilot);
    pe_sim_scenario_free(r->scenario);
    free(r->starts);
    free(r->truth_text);
    pe_db_pool_free(r->pool);
}

int pe_sim_command(const pe_config_t *cfg, int argc, char **argv)
{
    run_t r;
    memset(&r, 0, sizeof r);
    double seconds = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int status = prepare(&r, cfg, argc, argv);
    if (status == 0)
        status = write_catalog(&r);
    if (status == 0)
        status = deliver(&r, cfg, &seconds);
    if (status == 0 && r.o.truth) {
        cJSON *truth = pe_sim_truth_json(r.sim);
        if (truth && r.autopilot && cJSON_AddItemToObject(truth, "autopilot", r.autopilot))
            r.autopilot = NULL;
        r.truth_text = truth && !r.autopilot ? cJSON_Print(truth) : NULL;
        cJSON_Delete(truth);
        if (!r.truth_text || write_file(r.o.truth, r.truth_text) != 0)
            status = problem(1, "--truth %s: cannot write: %s", r.o.truth,
                             r.truth_text ? strerror(errno) : "out of memory");
    }
    if (status == 0) {
        pe_sim_totals_t t;
        pe_sim_totals(r.sim, &t);
        printf("{\"storeId\":\"%s\",\"via\":\"%s\",\"from\":\"%s\",\"days\":%llu,"
               "\"sessions\":%llu,\"events\":%llu,\"orders\":%llu,\"revenue\":%llu.%02llu,"
               "\"retries\":%llu,\"seconds\":%.3f,\"eventsPerSecond\":%.0f",
               r.store.id,
               r.o.autopilot ? "autopilot"
               : r.direct    ? "direct"
                             : "http",
               r.first_day, (unsigned long long)r.days, (unsigned long long)t.sessions,
               (unsigned long long)t.events, (unsigned long long)t.orders,
               (unsigned long long)(t.revenue_cents / 100),
               (unsigned long long)(t.revenue_cents % 100),
               (unsigned long long)atomic_load(&r.dc.retries), seconds,
               seconds > 0 ? (double)t.events / seconds : 0.0);
        if (r.o.autopilot)
            printf(",\"experiments\":%zu,\"approved\":%zu,\"proven\":%zu,\"rolledBack\":%zu,"
                   "\"running\":%zu",
                   r.loop.experiments, r.loop.approved, r.loop.proven, r.loop.rolled_back,
                   r.loop.running);
        if (r.o.autopilot)
            printf(",\"stageSeconds\":{\"traffic\":%.1f,\"aggregate\":%.1f,\"diagnose\":%.1f,"
                   "\"recommend\":%.1f,\"measure\":%.1f}",
                   r.loop.seconds[SIM_STAGE_TRAFFIC], r.loop.seconds[SIM_STAGE_AGGREGATE],
                   r.loop.seconds[SIM_STAGE_DIAGNOSE], r.loop.seconds[SIM_STAGE_RECOMMEND],
                   r.loop.seconds[SIM_STAGE_MEASURE]);
        printf("}\n");
        fflush(stdout);
    }
    cleanup(&r);
    curl_global_cleanup();
    return status;
}
