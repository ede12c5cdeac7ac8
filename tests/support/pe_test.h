/*
 * pe_test.h — helpers shared by the tests: private databases, service URLs, a server started
 * in a child process, a tiny HTTP client, and tenants (a store with its keys and merchant).
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

#endif /* PE_TEST_H */
