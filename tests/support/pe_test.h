/*
 * pe_test.h — helpers shared by the tests: private databases, service URLs, a server started
 * in a child process, a command of the binary run in one, a tiny HTTP client with the
 * assertions API tests make on its answers, tenants (a store with its keys and merchant), and
 * the fixture most integration test programs open once for all their tests (a migrated
 * database, a pool, a server).
 *
 * Integration tests talk to the real PostgreSQL and Redis that `scripts/dev services up`
 * starts; each test program works in a database of its own, created from scratch and migrated,
 * and dropped when the program ends, so test programs can run in parallel.
 */
#ifndef PE_TEST_H
#define PE_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pe/core.h"
#include "pe/db.h"
#include "pe/http.h"
#include "pe/tenancy.h"

/* PE_DATABASE_URL / PE_REDIS_URL of the private services; aborts the test program with a
 * message pointing at `scripts/dev services up` when unset. */
const char *pe_test_database_url(void);
const char *pe_test_redis_url(void);

/* Creates an empty database with a unique name on the test server and returns a malloc'ed
 * conninfo string for it (caller frees with pe_test_db_drop). Aborts on failure. */
char *pe_test_db_create(void);
/* Same, then applies every migration. */
char *pe_test_db_create_migrated(void);
/* Drops the database made by pe_test_db_create and frees conninfo. */
void pe_test_db_drop(char *conninfo);
/* Runs one SQL statement (no parameters) against conninfo; aborts on error. Returns the first
 * column of the first row as a malloc'ed string (or NULL when there is no row). */
char *pe_test_sql(const char *conninfo, const char *sql);

/* sql (a printf format) against conninfo, its first column read as an integer (-1 when there is
 * no row); aborts on an SQL error. For counts. */
long pe_test_sql_long(const char *conninfo, const char *sql_fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* pe_test_sql with sql a printf format: the first column of the first row, malloc'ed (the caller
 * frees), or NULL when there is no row. Fails the running test on an SQL error. The values a
 * test formats into it are ids and numbers it made, never free text. */
char *pe_test_sqlf(const char *conninfo, const char *sql_fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Fails the running test, naming the statement, unless sql (a printf format) answers want as the
 * first column of its first row (no row never equals want). */
void pe_test_sql_expect(const char *conninfo, const char *want, const char *sql_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sleeps ms milliseconds (the rest of it again when a signal interrupts). */
void pe_test_sleep_ms(long ms);

/* The integer in environment variable name (a bench's knob: bench/faults/run sets them), or def
 * when it is not set; fails the running test when it is not an integer lo..hi. */
int pe_test_env_int(const char *name, int def, int lo, int hi);

/* A random version-4 UUID in its text form ("xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx") in out: an
 * event id no other run of the test uses. */
void pe_test_uuid(char out[37]);
/* True when s is a UUID in the lower-case text form PostgreSQL prints. */
bool pe_test_uuid_shaped(const char *s);

/* A TCP port on 127.0.0.1 that nothing listened on a moment ago: connecting to it is refused at
 * once (a closed port), or a server may bind it. 0 when none could be had. */
uint16_t pe_test_free_port(void);

/* How long a test waits for something that happens "soon" (a job's next run, a message through
 * Redis, a server's reaction): generous, because the suite runs under ASan on two shared cores
 * and a deadline close to the usual time fails on a busy machine. A test that measures a bound
 * (a kill switch within 1 s) asserts the measured time separately. */
#define PE_TEST_WAIT_MS 30000

/* Runs sql against conninfo every 50 ms until its first column equals want, for at most
 * timeout_ms. Returns true when it did; false on the deadline (the caller fails with context). */
bool pe_test_sql_wait(const char *conninfo, const char *sql, const char *want, int timeout_ms);

/* The whole file tests/corpus/<relpath> (NUL-terminated, at most 1 MiB), found next to this
 * source tree whatever the build directory. Fails the test when it cannot be read. The caller
 * frees. */
char *pe_test_corpus(const char *relpath);
/* The whole file tests/<relpath> ("reference/stats/analyze.json"), NUL-terminated, at most
 * 1 MiB (a larger one fails the test rather than being cut). The caller frees. */
char *pe_test_file(const char *relpath);
/* pe_test_corpus with the path a printf format ("changesets/%s"). */
char *pe_test_corpusf(const char *relpath_fmt, ...) __attribute__((format(printf, 1, 2)));

/* Plants n visitors (anonymousId prefix + index, one session each, "s-<key>-" prefix + index:
 * the same visitors planted again for another flag get a second session) straight into
 * the events table of the database at conninfo: each lands a minute after start (RFC 3339) and
 * is exposed to flag key — the first n_control to control, the rest to treatment; with holdout
 * every one is served from the store holdout (custom.holdout) — and adds to the cart;
 * pct_control / pct_treatment of each 100 go on through checkout to an order of one SKU-A at
 * 50 EUR. Roll them up with `profit-engine aggregate`. Fails the running test on an error. */
void pe_test_plant_visitors(const char *conninfo, const char *store, const char *start,
                            const char *key, const char *prefix, int n, int n_control, bool holdout,
                            int pct_control, int pct_treatment);

/* A profit-engine server run as a child process (the binary from PE_TEST_BINARY). */
typedef struct {
    int pid;
    uint16_t port;
    char base_url[64];
    char log_path[256];
} pe_test_server_t;

/* Starts `profit-engine serve` with PE_LISTEN=127.0.0.1:<free port>, the given database and
 * the test Redis, plus extra "NAME=value" variables (NULL-terminated, may be NULL); waits until
 * /healthz answers. Aborts on failure. */
void pe_test_server_start(pe_test_server_t *s, const char *conninfo, const char *const *extra_env);
/* Sends SIGTERM and waits; returns the exit status (or -1 when killed by a signal). A non-zero
 * one is also printed to stderr with the server's log path. */
int pe_test_server_stop(pe_test_server_t *s);
/* True while the child is running. */
int pe_test_server_alive(pe_test_server_t *s);

/* What a run of the binary's command line left. */
typedef struct {
    int status;     /* its exit status; -1 when it did not exit (a signal, the deadline) */
    int signal;     /* the signal that ended it, or 0 */
    bool timed_out; /* still running at the deadline: killed */
    char *out;      /* its standard output, NUL-terminated, never NULL */
    size_t out_len;
    char *err; /* its standard error, the same */
    size_t err_len;
} pe_test_cli_t;

/* Runs the binary (PE_TEST_BINARY) with args (NULL-terminated, the command first) in this
 * program's environment minus every PE_* variable plus env ("NAME=value", NULL-terminated, may
 * be NULL), stdin_data on its standard input (NULL: empty), and collects what it writes until it
 * exits; kills it after timeout_ms. Fills *r, which the caller frees with pe_test_cli_free.
 * Fails the running test when the binary cannot be run. */
void pe_test_cli_exec(const char *const *args, const char *const *env, const char *stdin_data,
                      int timeout_ms, pe_test_cli_t *r);
/* pe_test_cli_exec on the database conninfo and the test Redis, with PE_LOG_LEVEL=error, nothing
 * on stdin, and a deadline only a command that hangs reaches (a simulation or an aggregation
 * takes seconds under ASan). */
void pe_test_cli_run(const char *conninfo, const char *const *args, pe_test_cli_t *r);
void pe_test_cli_free(pe_test_cli_t *r);
/* pe_test_cli_run, then fails the running test unless the command exits want (the message shows
 * both outputs). Returns its standard output parsed as JSON when want is 0 (the caller deletes),
 * else NULL. */
cJSON *pe_test_cli_json(const char *conninfo, int want, const char *const *args);

/* An HTTP exchange through libcurl. */
typedef struct {
    long status;
    pe_buf_t body;
    pe_buf_t headers; /* raw response header lines */
} pe_test_response_t;

/* Sends method url with body (may be NULL) and extra header lines (NULL-terminated array, may be
 * NULL). Returns 0 on a completed exchange. */
int pe_test_http(const char *method, const char *url, const char *body, const char *const *headers,
                 pe_test_response_t *resp);
/* Same, with a body of len bytes sent as they are (binary: gzip, bytes with NUL). */
int pe_test_http_bytes(const char *method, const char *url, const void *body, size_t len,
                       const char *const *headers, pe_test_response_t *resp);
void pe_test_response_free(pe_test_response_t *resp);
/* "Authorization: Basic base64(key + ":")": how Segment clients send their write key. */
void pe_test_basic_auth(char *out, size_t outlen, const char *key);

/* The formats zlib writes a compressed request body in. */
typedef enum { PE_TEST_GZIP, PE_TEST_ZLIB, PE_TEST_RAW_DEFLATE } pe_test_deflate_format_t;
/* in[0..n) compressed by zlib (level 6) in that format, in a new buffer the caller frees. */
pe_buf_t pe_test_compress(pe_test_deflate_format_t format, const void *in, size_t n);
/* The response body parsed as JSON (the caller deletes it); fails the test when it is not JSON. */
cJSON *pe_test_response_json(const pe_test_response_t *resp);
/* Value of response header `name` (case-insensitive) copied into out, or "" when absent. */
const char *pe_test_response_header(const pe_test_response_t *resp, const char *name, char *out,
                                    size_t outlen);
/* The value of header `name` of resp, in a buffer of this module that the next call overwrites:
 * for assertions. Not thread-safe. */
const char *pe_test_header(const pe_test_response_t *resp, const char *name);
/* The string member `name` of object j (borrowed from j), or "" when j has none or it is not a
 * string: for assertions that compare it. */
const char *pe_test_json_str(const cJSON *j, const char *name);
/* The same, but fails the running test when the member is missing or not a string. */
const char *pe_test_json_require_str(const cJSON *j, const char *name);
/* The number member `name` of object j, or -1 when j has none or it is not a number. */
double pe_test_json_num(const cJSON *j, const char *name);

/* method s->base_url + path without a body and with exactly the header lines given
 * (NULL-terminated, may be NULL). Fails the running test when the exchange does not complete;
 * returns the status. The caller frees *r. Thread-safe. */
long pe_test_request(const pe_test_server_t *s, const char *method, const char *path,
                     const char *const *headers, pe_test_response_t *r);
/* The exchange of most API tests: method s->base_url + path with body (may be NULL) and the
 * header lines "Content-Type: application/json" and header (a credential; NULL: none). Fails
 * the running test when the exchange does not complete; returns the status. The caller frees
 * *r with pe_test_response_free. Thread-safe. */
long pe_test_call(const pe_test_server_t *s, const char *method, const char *path, const char *body,
                  const char *header, pe_test_response_t *r);
/* pe_test_call, then fails the running test unless the status is want (the message shows the
 * body). Returns the body parsed as JSON, which the caller deletes, or NULL when it is empty. */
cJSON *pe_test_expect(const pe_test_server_t *s, const char *method, const char *path,
                      const char *body, const char *header, long want);
/* Fails the running test unless resp has status and the one error shape every refusal has:
 * application/json, {"error":{"code":code,"message":"…"}} with nothing else, and a message that
 * is not empty. The message is copied into msg[msglen] when msg is not NULL. */
void pe_test_expect_error(const pe_test_response_t *resp, long status, const char *code, char *msg,
                          size_t msglen);

/* Sends raw bytes to 127.0.0.1:port, half-closes after sending when shut_write, and collects
 * the reply into out until the peer closes or timeout_ms passes. Returns bytes received or -1. */
long pe_test_raw(uint16_t port, const void *data, size_t len, int shut_write, int timeout_ms,
                 pe_buf_t *out);

/* A private redis-server on 127.0.0.1 without persistence, for tests that crash or restart it. */
typedef struct {
    int pid;
    uint16_t port;
} pe_test_redis_server_t;

/* Starts redis-server (from PATH) on port (a free one when 0), with requirepass when password
 * is not NULL, and waits until it accepts connections. It runs on the real clock: LD_PRELOAD and
 * FAKETIME are taken out of its environment, because redis-server hangs under libfaketime
 * (`scripts/dev test --at`), as the shared test Redis does. Returns 0, or -1 when redis-server is
 * not installed (the caller skips); aborts on any other failure. */
int pe_test_redis_server_start(pe_test_redis_server_t *r, uint16_t port, const char *password);
/* SIGKILL and reap: a crash, as far as its clients can tell. No-op when not running. */
void pe_test_redis_server_kill(pe_test_redis_server_t *r);

/* ---- tenants ------------------------------------------------------------------------------- */

/* One store as the API tests act on it: its keys, the header lines that carry them, and
 * optionally its merchant user and a signed-in session of that user. Tests make two or more and
 * prove with them that one store's credentials never reach another store's data. Every field is
 * a NUL-terminated string; a part the test did not ask for is "". */
typedef struct {
    char id[PE_ID_LEN];   /* the store's id */
    char pk[PE_KEY_LEN];  /* its publishable key (storefront routes, OFREP) */
    char sk[PE_KEY_LEN];  /* its secret key (the admin API) */
    char pk_auth[128];    /* "Authorization: Bearer pk_…" */
    char sk_auth[128];    /* "Authorization: Bearer sk_…" */
    char user[PE_ID_LEN]; /* the merchant user's id ("" when made without an email) */
    char email[128];      /* that user's email and password, for signing in */
    char password[128];
    char cookie[256]; /* "Cookie: pe_session=…" once pe_test_tenant_sign_in ran */
    char csrf[128];   /* "X-CSRF-Token: …" of that session */
} pe_test_tenant_t;

/* Makes a tenant in the database behind pool (borrowed), in-process and before or without any
 * server: a store named name with timezone tz (an IANA name) and currency (ISO 4217), whose two
 * keys pe_tenancy_store_create issues, and, when email is not NULL, a merchant user with email and
 * password who is a member of it (an email that exists with the same password joins this store
 * as well). Fills every field of *t but cookie and csrf. Fails the running test on any error.
 * pe_crypto_init() must have run. Thread-safe for distinct *t, as is pe_test_tenant_sign_in. */
void pe_test_tenant_make(pe_test_tenant_t *t, pe_db_pool_t *pool, const char *name, const char *tz,
                         const char *currency, const char *email, const char *password);
/* Signs t's merchant in on server s (POST /api/v1/auth/login) and fills t->cookie and t->csrf.
 * Fails the running test unless the answer is 200 with a session cookie and a csrfToken. When
 * login is not NULL it receives the response, which the caller frees with pe_test_response_free
 * (for tests that keep every body they are sent); otherwise the response is freed here. */
void pe_test_tenant_sign_in(pe_test_tenant_t *t, const pe_test_server_t *s,
                            pe_test_response_t *login);

/* ---- an in-process HTTP server ------------------------------------------------------------- */

/* A router with the n routes of routes (their strings must outlive it). Fails the running test
 * when one does not go in. The caller owns it until it hands it to pe_http_server_new. */
pe_http_router_t *pe_test_router_new(const pe_http_route_t *routes, size_t n);

/* ---- the fixture of a test program ---------------------------------------------------------- */

/* What most integration test programs set up once, in their group setup, for all their tests:
 * a migrated private database, a pool on it for making tenants and looking behind the API, and
 * a profit-engine server on it. The server is started by the caller once what it must find
 * exists: pe_test_server_start(&fx->server, fx->conninfo, env). */
typedef struct {
    char *conninfo;          /* the private database, migrated */
    pe_db_pool_t *pool;      /* a pool on it; NULL when opened with pool_size 0 */
    pe_test_server_t server; /* pid 0 while not running */
} pe_test_fixture_t;

/* Fills *fx: initialises libsodium (pe_crypto_init) and libcurl's global state while the program
 * has one thread, sets the in-process log level, creates and migrates a private database and,
 * when pool_size > 0, a pool of pool_size connections on it. fx->server is zeroed. Fails the
 * running test (or exits) on failure. Not thread-safe: call it from a group setup. */
void pe_test_fixture_open(pe_test_fixture_t *fx, pe_log_level_t log_level, int pool_size);
/* Undoes pe_test_fixture_open: stops fx->server when it runs, frees the pool, drops the database
 * and zeroes *fx. Accepts a zeroed fixture. Returns 0, or -1 when the server exited other than
 * with status 0 on SIGTERM (a leak found by ASan, a crash): what a group teardown returns. */
int pe_test_fixture_close(pe_test_fixture_t *fx);
/* A cmocka group teardown: pe_test_fixture_close(*state). cmocka runs it after a group setup
 * that failed as well, so the setup stores its fixture in *state before it opens it, and what a
 * setup that failed half-way had opened is closed too. Returns -1 when *state is NULL. */
int pe_test_fixture_teardown(void **state);

/* Makes tenant t (as pe_test_tenant_make: time zone Europe/Berlin, currency EUR, a merchant
 * when email is not NULL, with password "store password") on fx's database, simulates `days` days
 * of traffic ending `end` (YYYY-MM-DD) at sessions_per_day with seed, sent straight to the
 * collector, under scenario (the --scenario JSON text; NULL: none), and rolls it up
 * (`profit-engine aggregate --store`). Fails the running test on any error. */
void pe_test_seeded_store(const pe_test_fixture_t *fx, pe_test_tenant_t *t, const char *name,
                          const char *email, const char *seed, const char *days, const char *end,
                          const char *sessions_per_day, const char *scenario);

#endif /* PE_TEST_H */
