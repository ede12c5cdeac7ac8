/*
 * test_db.c — the db module against a real PostgreSQL: the pool (lending, exhaustion, threads,
 * resets, connections the server closed while idle — with a FATAL, or silently through a proxy
 * that drops them), statements and their error mapping, transactions, COPY, LISTEN, and the
 * migration runner.
 *
 * Invariants:
 *  1. The program works in databases of its own (pe_test_db_create); the shared one of the group
 *     holds the scratch tables, and every migration test makes a fresh database.
 *  2. Nothing here depends on what the embedded migrations contain, only on how many there are;
 *     the runner's failure paths are driven with migration lists made up here (db/migrate.h).
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "db/migrate.h"
#include "pe/db.h"
#include "pe_test.h"

#define WAIT_MS 5000

static char *g_conninfo; /* the group's database */
static pe_db_pool_t *g_pool;

static int group_setup(void **state)
{
    (void)state;
    g_conninfo = pe_test_db_create();
    free(pe_test_sql(g_conninfo, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, "
                                 "qty int CHECK (qty >= 0), parent int REFERENCES items (id))"));
    free(pe_test_sql(g_conninfo, "CREATE TABLE copied (id int PRIMARY KEY, body text)"));
    free(pe_test_sql(g_conninfo, "CREATE TABLE counter (n int NOT NULL)"));
    free(pe_test_sql(g_conninfo, "INSERT INTO counter VALUES (0)"));
    g_pool = pe_db_pool_new(g_conninfo, 4);
    return g_pool ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    pe_db_pool_free(g_pool);
    pe_test_db_drop(g_conninfo);
    return 0;
}

static pe_db_conn_t *acquire(pe_db_pool_t *pool)
{
    pe_db_conn_t *c = NULL;
    int rc = pe_db_acquire(pool, WAIT_MS, &c);
    if (rc != 0)
        fail_msg("acquire: %s", pe_strerror(rc));
    return c;
}

/* First value of a parameterless query on conn, copied into out. */
static const char *query1(pe_db_conn_t *c, const char *sql, char *out, size_t outlen)
{
    pe_db_result_t *res = NULL;
    int rc = pe_db_exec(c, sql, 0, NULL, &res);
    if (rc != 0)
        fail_msg("%s: %s (%s)", sql, pe_strerror(rc), pe_db_conn_error(c));
    snprintf(out, outlen, "%s", pe_db_result_get(res, 0, 0));
    pe_db_result_free(res);
    return out;
}

/* ---- pool ----------------------------------------------------------------------------------- */

static void test_acquire_release(void **state)
{
    (void)state;
    pe_db_pool_t *pool = pe_db_pool_new(g_conninfo, 2);
    pe_db_pool_stats_t st;
    char pid1[32], pid2[32];

    pe_db_pool_stats(pool, &st);
    assert_int_equal(st.size, 2);
    assert_int_equal(st.open, 0); /* lazy */
    pe_db_conn_t *c = acquire(pool);
    query1(c, "SELECT pg_backend_pid()", pid1, sizeof(pid1));
    pe_db_pool_stats(pool, &st);
    assert_int_equal(st.open, 1);
    assert_int_equal(st.in_use, 1);
    pe_db_release(pool, c);
    pe_db_pool_stats(pool, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.open, 1);

    c = acquire(pool); /* the idle connection is reused, not a new one opened */
    query1(c, "SELECT pg_backend_pid()", pid2, sizeof(pid2));
    assert_string_equal(pid1, pid2);
    pe_db_release(pool, c);
    pe_db_release(pool, NULL);
    pe_db_pool_stats(pool, &st);
    assert_int_equal(st.acquired_total, 2);
    assert_int_equal(pe_db_ping(pool, WAIT_MS), 0);
    pe_db_pool_free(pool);
    pe_db_pool_free(NULL);
}

static void test_session_settings(void **state)
{
    (void)state;
    char v[64];
    pe_db_conn_t *c = acquire(g_pool);
    assert_string_equal(query1(c, "SHOW application_name", v, sizeof(v)), "profit-engine");
    assert_string_equal(query1(c, "SHOW statement_timeout", v, sizeof(v)), "30s");
    assert_string_equal(query1(c, "SHOW client_connection_check_interval", v, sizeof(v)), "2s");
    assert_string_equal(query1(c, "SHOW jit", v, sizeof(v)), "off");
    pe_db_release(g_pool, c);
}

/* A process killed in the middle of a statement (kill -9 of a job, an interrupted CLI command)
 * does not leave its statement running for nobody, holding its locks: PostgreSQL notices the
 * closed connection within client_connection_check_interval and cancels it. */
static void test_killed_client_statement_ends(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pe_db_pool_t *pool = pe_db_pool_new(g_conninfo, 1);
        pe_db_conn_t *c = NULL;
        if (pool && pe_db_acquire(pool, WAIT_MS, &c) == 0)
            pe_db_exec(c, "SELECT pg_advisory_lock(4242), pg_sleep(25)", 0, NULL, NULL);
        _exit(0);
    }
#define RUNNING                                                                                    \
    "SELECT count(*) FROM pg_stat_activity"                                                        \
    " WHERE datname = current_database() AND query LIKE '%%pg_sleep(25)'"                          \
    "   AND state = 'active' AND pid <> pg_backend_pid()"
    int64_t deadline = pe_now_mono_us() + 10000000;
    char *n = NULL;
    for (;;) { /* the statement started */
        free(n);
        n = pe_test_sqlf(g_conninfo, RUNNING);
        if (strcmp(n, "1") == 0 || pe_now_mono_us() > deadline)
            break;
        pe_test_sleep_ms(20);
    }
    assert_string_equal(n, "1");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int64_t killed = pe_now_mono_us();
    for (;;) { /* and ends well before its 25 s, its lock released */
        free(n);
        n = pe_test_sqlf(g_conninfo, RUNNING);
        if (strcmp(n, "0") == 0 || pe_now_mono_us() - killed > 15000000)
            break;
        pe_test_sleep_ms(50);
    }
    double waited_s = (double)(pe_now_mono_us() - killed) / 1e6;
    print_message("the killed client's statement ended %.1f s after the kill\n", waited_s);
    assert_string_equal(n, "0");
    free(n);
    assert_true(waited_s < 15);
    pe_test_sql_expect(g_conninfo, "t", "%s", "SELECT pg_try_advisory_lock(4242)");
#undef RUNNING
}

static void test_exhaustion_times_out(void **state)
{
    (void)state;
    pe_db_pool_t *pool = pe_db_pool_new(g_conninfo, 2);
    pe_db_conn_t *a = acquire(pool), *b = acquire(pool), *c = NULL;
    pe_db_pool_stats_t st;

    int64_t t0 = pe_now_mono_us();
    assert_int_equal(pe_db_acquire(pool, 200, &c), PE_ETIMEOUT);
    int64_t waited_ms = (pe_now_mono_us() - t0) / 1000;
    assert_null(c);
    assert_true(waited_ms >= 190 && waited_ms < 2000);
    t0 = pe_now_mono_us();
    assert_int_equal(pe_db_acquire(pool, 0, &c), PE_ETIMEOUT); /* 0: do not wait at all */
    assert_true((pe_now_mono_us() - t0) / 1000 < 1000);        /* no wait: far less than one */
    pe_db_pool_stats(pool, &st);
    assert_int_equal(st.timeouts_total, 2);
    assert_int_equal(st.in_use, 2);
    assert_int_equal(st.waiting, 0);

    pe_db_release(pool, a);
    c = acquire(pool);
    pe_db_release(pool, b);
    pe_db_release(pool, c);
    pe_db_pool_free(pool);
}

typedef struct {
    pe_db_pool_t *pool;
    int hold_ms;
    int rounds;
    int failures;
    unsigned max_in_use;
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        pe_db_conn_t *c = NULL;
        pe_db_pool_stats_t st;
        if (pe_db_acquire(w->pool, 20000, &c) != 0) {
            w->failures++;
            continue;
        }
        pe_db_pool_stats(w->pool, &st);
        if (st.in_use > w->max_in_use)
            w->max_in_use = st.in_use;
        if (pe_db_exec(c, "UPDATE counter SET n = n + 1", 0, NULL, NULL) != 0)
            w->failures++;
        if (w->hold_ms)
            usleep((useconds_t)w->hold_ms * 1000);
        pe_db_release(w->pool, c);
    }
    return NULL;
}

static void test_threads_share_a_pool(void **state)
{
    (void)state;
    enum { THREADS = 8, ROUNDS = 40, SIZE = 3 };
    pe_db_pool_t *pool = pe_db_pool_new(g_conninfo, SIZE);
    pthread_t t[THREADS];
    worker_t w[THREADS];
    pe_db_pool_stats_t st;
    char n[32];

    free(pe_test_sql(g_conninfo, "UPDATE counter SET n = 0"));
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){.pool = pool, .hold_ms = i % 2, .rounds = ROUNDS};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
        assert_true(w[i].max_in_use <= SIZE);
    }
    pe_db_pool_stats(pool, &st);
    assert_true(st.open <= SIZE);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.acquired_total, THREADS * ROUNDS);
    pe_db_conn_t *c = acquire(pool);
    assert_int_equal(strtol(query1(c, "SELECT n FROM counter", n, sizeof(n)), NULL, 10),
                     THREADS * ROUNDS);
    pe_db_release(pool, c);
    pe_db_pool_free(pool);
}

typedef struct {
    pe_db_pool_t *pool;
    pe_db_conn_t *conn;
} holder_t;

static void *release_later(void *arg)
{
    holder_t *h = arg;
    usleep(300 * 1000);
    pe_db_release(h->pool, h->conn);
    return NULL;
}

static void test_waiter_is_woken_by_release(void **state)
{
    (void)state;
    pe_db_pool_t *pool = pe_db_pool_new(g_conninfo, 1);
    holder_t h = {pool, acquire(pool)};
    pthread_t t;
    pe_db_conn_t *c = NULL;

    assert_int_equal(pthread_create(&t, NULL, release_later, &h), 0);
    int64_t t0 = pe_now_mono_us();
    assert_int_equal(pe_db_acquire(pool, WAIT_MS, &c), 0);
    int64_t waited_ms = (pe_now_mono_us() - t0) / 1000;
    assert_true(waited_ms >= 250 && waited_ms < 3000);
    pthread_join(t, NULL);
    pe_db_release(pool, c);
    pe_db_pool_free(pool);
}

static void test_unreachable_server(void **state)
{
    (void)state;
    char conninfo[128], err[256];
    pe_db_conn_t *c = NULL;
    pe_db_pool_stats_t st;
    bool current = true;
    int applied = -1;

    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%u dbname=nowhere user=nobody",
             (unsigned)pe_test_free_port());
    pe_db_pool_t *pool = pe_db_pool_new(conninfo, 2);
    assert_non_null(pool); /* construction never connects */
    int64_t t0 = pe_now_mono_us();
    assert_int_equal(pe_db_acquire(pool, WAIT_MS, &c), PE_EUNAVAIL);
    assert_true((pe_now_mono_us() - t0) / 1000 < 3000);
    assert_null(c);
    pe_db_pool_stats(pool, &st);
    assert_int_equal(st.open, 0); /* the failed slot was given back */
    assert_int_equal(st.in_use, 0);
    assert_int_equal(pe_db_ping(pool, WAIT_MS), PE_EUNAVAIL);
    assert_int_equal(pe_db_migrations_current(pool, &current, err, sizeof(err)), PE_EUNAVAIL);
    assert_false(current);
    assert_int_equal(pe_db_migrate(pool, &applied, err, sizeof(err)), PE_EUNAVAIL);
    assert_int_equal(applied, 0);
    pe_db_pool_free(pool);

    /* A conninfo libpq cannot parse is reported the same way, by acquire. */
    pool = pe_db_pool_new("host=x bogus_option=1", 1);
    assert_non_null(pool);
    assert_int_equal(pe_db_acquire(pool, WAIT_MS, &c), PE_EUNAVAIL);
    pe_db_pool_free(pool);
}

/* ---- statements ----------------------------------------------------------------------------- */

typedef struct {
    const char *sql;
    int nparams;
    const char *params[3];
    int rc;
    const char *sqlstate;
} err_case_t;

static void test_sqlstate_mapping(void **state)
{
    (void)state;
    static const err_case_t cases[] = {
        {"INSERT INTO items (id, name) VALUES ($1, $2)", 2, {"1", "dup"}, PE_ECONFLICT, "23505"},
        {"INSERT INTO items (id, name) VALUES ($1, NULL)", 1, {"2"}, PE_EINVAL, "23502"},
        {"INSERT INTO items (id, name, qty) VALUES (3, 'q', $1)", 1, {"-1"}, PE_EINVAL, "23514"},
        {"INSERT INTO items (id, name, parent) VALUES (4, 'p', $1)",
         1,
         {"999"},
         PE_EINVAL,
         "23503"},
        {"SELECT $1::int", 1, {"abc"}, PE_EINVAL, "22P02"},
        {"SELECT $1::int", 1, {"99999999999"}, PE_EINVAL, "22003"},
        {"SELECT 1 / $1::int", 1, {"0"}, PE_EINVAL, "22012"},
        {"SELEC 1", 0, {NULL}, PE_EINTERNAL, "42601"},
        {"SELECT 1; SELECT 2", 0, {NULL}, PE_EINTERNAL, "42601"},
        {"SELECT * FROM no_such_table", 0, {NULL}, PE_EINTERNAL, "42P01"},
    };
    pe_db_conn_t *c = acquire(g_pool);
    char v[32];

    free(pe_test_sql(g_conninfo, "INSERT INTO items (id, name) VALUES (1, 'first') "
                                 "ON CONFLICT DO NOTHING"));
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        pe_db_result_t *res = (pe_db_result_t *)&v; /* must be reset to NULL on failure */
        int rc = pe_db_exec(c, cases[i].sql, cases[i].nparams, cases[i].params, &res);
        if (rc != cases[i].rc || strcmp(pe_db_conn_sqlstate(c), cases[i].sqlstate) != 0)
            fail_msg("%s: got %d (%s), want %d (%s)", cases[i].sql, rc, pe_db_conn_sqlstate(c),
                     cases[i].rc, cases[i].sqlstate);
        assert_null(res);
        assert_true(strlen(pe_db_conn_error(c)) > 0);
        assert_null(strchr(pe_db_conn_error(c), '\n')); /* one line, for logs */
        /* The connection stays usable and the error is forgotten by the next success. */
        assert_string_equal(query1(c, "SELECT 'ok'", v, sizeof(v)), "ok");
        assert_string_equal(pe_db_conn_error(c), "");
        assert_string_equal(pe_db_conn_sqlstate(c), "");
    }

    /* A statement timeout is PE_ETIMEOUT. The statement computes rather than sleeps: under
     * libfaketime (scripts/dev test --at) a backend sleeping in epoll_wait reads the real clock
     * in its SIGALRM handler (libfaketime stops faking for the length of the wait), finds the
     * fake deadline hours away when the shifted clock is ahead, and re-arms the alarm for then,
     * so a sleep outlasts its timeout there and nowhere else. */
    assert_int_equal(pe_db_begin(c), 0);
    assert_int_equal(pe_db_exec(c, "SET LOCAL statement_timeout = '50ms'", 0, NULL, NULL), 0);
    assert_int_equal(
        pe_db_exec(c, "SELECT count(*) FROM generate_series(1, 200000000)", 0, NULL, NULL),
        PE_ETIMEOUT);
    assert_string_equal(pe_db_conn_sqlstate(c), "57014");
    assert_int_equal(pe_db_rollback(c), 0);
    pe_db_release(g_pool, c);
}

static void test_hostile_parameters_stay_data(void **state)
{
    (void)state;
    static const char *const hostile[] = {
        "x'); DROP TABLE items; --",
        "\\'; SELECT pg_sleep(10); --",
        "$1 $2 \"quoted\" 'single' \\ back\\slash",
        "tab\there\nnewline\r\n",
        "\xe2\x80\x8b zero-width, \xf0\x9f\x92\xa5 emoji, caf\xc3\xa9",
    };
    pe_db_conn_t *c = acquire(g_pool);
    char id[16], v[16];

    for (size_t i = 0; i < PE_ARRAY_LEN(hostile); i++) {
        pe_db_result_t *res = NULL;
        snprintf(id, sizeof(id), "%zu", 100 + i);
        const char *ins[2] = {id, hostile[i]};
        assert_int_equal(
            pe_db_exec(c, "INSERT INTO items (id, name) VALUES ($1, $2)", 2, ins, &res), 0);
        assert_int_equal(pe_db_result_affected(res), 1);
        pe_db_result_free(res);
        const char *sel[1] = {id};
        assert_int_equal(pe_db_exec(c, "SELECT name, qty FROM items WHERE id = $1", 1, sel, &res),
                         0);
        assert_int_equal(pe_db_result_rows(res), 1);
        assert_int_equal(pe_db_result_cols(res), 2);
        assert_string_equal(pe_db_result_get(res, 0, 0), hostile[i]);
        assert_false(pe_db_result_isnull(res, 0, 0));
        assert_true(pe_db_result_isnull(res, 0, 1)); /* SQL NULL reads as "" */
        assert_string_equal(pe_db_result_get(res, 0, 1), "");
        /* Out of range reads are "" and NULL, never a crash. */
        assert_string_equal(pe_db_result_get(res, 5, 0), "");
        assert_string_equal(pe_db_result_get(res, 0, 9), "");
        assert_true(pe_db_result_isnull(res, 1, 0));
        pe_db_result_free(res);
    }
    assert_string_equal(query1(c, "SELECT count(*) FROM items WHERE id >= 100", v, sizeof(v)), "5");

    /* A NULL parameter is SQL NULL. */
    const char *nul[1] = {NULL};
    pe_db_result_t *res = NULL;
    assert_int_equal(pe_db_exec(c, "SELECT $1::text IS NULL", 1, nul, &res), 0);
    assert_string_equal(pe_db_result_get(res, 0, 0), "t");
    pe_db_result_free(res);
    pe_db_result_free(NULL);
    assert_int_equal(pe_db_result_rows(NULL), 0);
    pe_db_release(g_pool, c);
}

/* ---- transactions --------------------------------------------------------------------------- */

static int insert_then(pe_db_conn_t *c, void *arg)
{
    const int *mode = arg;
    const char *p[1] = {"300"};
    int rc = pe_db_exec(c, "INSERT INTO items (id, name) VALUES ($1, 'tx')", 1, p, NULL);
    if (rc != 0)
        return rc;
    if (*mode == 1)
        return PE_EINVAL; /* a domain check failed after the write */
    if (*mode == 2) {
        /* A failed statement whose error fn ignores: the tx must not commit. */
        (void)pe_db_exec(c, "INSERT INTO items (id, name) VALUES ($1, 'dup')", 1, p, NULL);
    }
    return 0;
}

static void test_tx_rolls_back_when_fn_fails(void **state)
{
    (void)state;
    int mode = 1;
    char v[16];

    free(pe_test_sql(g_conninfo, "DELETE FROM items WHERE id = 300"));
    assert_int_equal(pe_db_tx(g_pool, WAIT_MS, insert_then, &mode), PE_EINVAL);
    pe_db_conn_t *c = acquire(g_pool);
    assert_string_equal(query1(c, "SELECT count(*) FROM items WHERE id = 300", v, sizeof(v)), "0");
    pe_db_release(g_pool, c);

    mode = 2;
    assert_int_equal(pe_db_tx(g_pool, WAIT_MS, insert_then, &mode), PE_ECONFLICT);
    c = acquire(g_pool);
    assert_string_equal(query1(c, "SELECT count(*) FROM items WHERE id = 300", v, sizeof(v)), "0");
    pe_db_release(g_pool, c);

    mode = 0;
    assert_int_equal(pe_db_tx(g_pool, WAIT_MS, insert_then, &mode), 0);
    c = acquire(g_pool);
    assert_string_equal(query1(c, "SELECT count(*) FROM items WHERE id = 300", v, sizeof(v)), "1");
    pe_db_release(g_pool, c);
}

static void test_release_mid_transaction_is_clean(void **state)
{
    (void)state;
    pe_db_pool_t *pool = pe_db_pool_new(g_conninfo, 1);
    char v[32], pid1[32], pid2[32];

    /* Open transaction with an uncommitted row. */
    pe_db_conn_t *c = acquire(pool);
    query1(c, "SELECT pg_backend_pid()", pid1, sizeof(pid1));
    assert_int_equal(pe_db_begin(c), 0);
    assert_int_equal(
        pe_db_exec(c, "INSERT INTO items (id, name) VALUES (400, 'ghost')", 0, NULL, NULL), 0);
    pe_db_release(pool, c);
    c = acquire(pool);
    query1(c, "SELECT pg_backend_pid()", pid2, sizeof(pid2));
    assert_string_equal(pid1, pid2); /* same session, rolled back rather than replaced */
    assert_string_equal(query1(c, "SELECT count(*) FROM items WHERE id = 400", v, sizeof(v)), "0");
    /* Not in a transaction any more: SAVEPOINT is refused outside one. */
    assert_int_equal(pe_db_exec(c, "SAVEPOINT probe", 0, NULL, NULL), PE_EINTERNAL);
    assert_string_equal(pe_db_conn_sqlstate(c), "25P01");

    /* Aborted transaction. */
    assert_int_equal(pe_db_begin(c), 0);
    assert_int_equal(pe_db_exec(c, "SELECT 1/0", 0, NULL, NULL), PE_EINVAL);
    pe_db_release(pool, c);
    c = acquire(pool);
    assert_string_equal(query1(c, "SELECT 'usable'", v, sizeof(v)), "usable");
    assert_string_equal(pe_db_conn_error(c), "");

    /* A session settings change inside the transaction does not leak either. */
    pe_db_release(pool, c);
    pe_db_pool_free(pool);
}

/* Ends the session of backend pid from outside (as a server restart ends every session: a
 * FATAL, then the socket closes) and returns once the backend is gone. */
static void end_session(const char *pid)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s, 30000)", pid);
    char *v = pe_test_sql(g_conninfo, sql);
    assert_non_null(v);
    assert_string_equal(v, "t");
    free(v);
}

static void test_broken_connections_are_replaced(void **state)
{
    (void)state;
    pe_db_pool_t *pool = pe_db_pool_new(g_conninfo, 1);
    pe_db_pool_stats_t st;
    char pid1[32], pid2[32], v[16];

    /* Broken while lent: the server ends the session under us. */
    pe_db_conn_t *c = acquire(pool);
    assert_int_equal(pe_db_exec(c, "SELECT pg_terminate_backend(pg_backend_pid())", 0, NULL, NULL),
                     PE_EUNAVAIL);
    pe_db_release(pool, c);
    pe_db_pool_stats(pool, &st);
    assert_int_equal(st.open, 0);
    c = acquire(pool);
    assert_string_equal(query1(c, "SELECT 'back'", v, sizeof(v)), "back");

    /* Broken while idle: killed from outside; the next acquire notices before lending it. */
    query1(c, "SELECT pg_backend_pid()", pid1, sizeof(pid1));
    pe_db_release(pool, c);
    end_session(pid1); /* returns once the backend is gone: its FATAL was sent before */
    c = acquire(pool);
    query1(c, "SELECT pg_backend_pid()", pid2, sizeof(pid2));
    assert_string_not_equal(pid1, pid2);
    pe_db_release(pool, c);
    pe_db_pool_free(pool);
}

/* A connection that died after it was lent but before anything was sent on it (the pool's look
 * at the idle socket came too early): BEGIN reconnects and begins again, transparently. Not once
 * the borrower has run something on it (its session state would silently be gone): then BEGIN
 * fails, and the connection says it is lost. pe_db_conn_check replaces a held one between
 * transactions. */
static void test_begin_replaces_a_connection_that_died_idle(void **state)
{
    (void)state;
    pe_db_pool_t *pool = pe_db_pool_new(g_conninfo, 1);
    pe_db_pool_stats_t st;
    char pid1[32], pid2[32], pid3[32];

    pe_db_conn_t *c = acquire(pool);
    query1(c, "SELECT pg_backend_pid()", pid1, sizeof(pid1));
    pe_db_release(pool, c);
    c = acquire(pool); /* checked: alive */
    end_session(pid1);
    assert_int_equal(pe_db_begin(c), 0);
    assert_false(pe_db_conn_lost(c));
    query1(c, "SELECT pg_backend_pid()", pid2, sizeof(pid2));
    assert_string_not_equal(pid1, pid2);
    assert_int_equal(pe_db_exec(c, "INSERT INTO counter VALUES (1)", 0, NULL, NULL), 0);
    assert_int_equal(pe_db_rollback(c), 0);

    /* something ran on it since it was lent: no silent reconnect */
    assert_int_equal(pe_db_exec(c, "SET application_name = 'pe_test_state'", 0, NULL, NULL), 0);
    end_session(pid2);
    assert_int_equal(pe_db_begin(c), PE_EUNAVAIL);
    assert_true(pe_db_conn_lost(c));
    pe_db_release(pool, c);
    pe_db_pool_stats(pool, &st);
    assert_int_equal(st.open, 0);

    /* a connection kept lent across transactions (a collector writer's) */
    c = acquire(pool);
    query1(c, "SELECT pg_backend_pid()", pid1, sizeof(pid1));
    assert_int_equal(pe_db_conn_check(c), 0); /* alive: kept */
    query1(c, "SELECT pg_backend_pid()", pid2, sizeof(pid2));
    assert_string_equal(pid1, pid2);
    end_session(pid1);
    assert_int_equal(pe_db_conn_check(c), 0); /* dead: replaced in place */
    assert_false(pe_db_conn_lost(c));
    query1(c, "SELECT pg_backend_pid()", pid3, sizeof(pid3));
    assert_string_not_equal(pid1, pid3);
    pe_db_release(pool, c);
    pe_db_pool_stats(pool, &st);
    assert_int_equal(st.open, 1);
    assert_int_equal(st.in_use, 0);

    /* an error of the statement is not a lost connection */
    c = acquire(pool);
    assert_int_equal(pe_db_exec(c, "SELECT 1/0", 0, NULL, NULL), PE_EINVAL);
    assert_false(pe_db_conn_lost(c));
    assert_false(pe_db_conn_lost(NULL));
    pe_db_release(pool, c);
    pe_db_pool_free(pool);
}

/* A TCP proxy to the test server that can cut its connections silently, as a network drop or a
 * failover does: the server side is closed, the client hears nothing until it sends, and then
 * gets a reset. Only the proxy's thread touches the pairs. */
#define PROXY_PAIRS 16

typedef struct {
    struct sockaddr_in upstream;
    int listen_fd, wake[2];
    uint16_t port;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int client[PROXY_PAIRS], server[PROXY_PAIRS]; /* -1: closed; server -1 alone: cut */
    bool cut_requested, stop;
    unsigned cuts;
} proxy_t;

static void reset_close(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
}

static bool write_all(int fd, const char *p, ssize_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, (size_t)n);
        if (w <= 0)
            return false;
        p += w;
        n -= w;
    }
    return true;
}

static void proxy_accept(proxy_t *px)
{
    int c = accept(px->listen_fd, NULL, NULL), s = -1, i = 0;
    if (c < 0)
        return;
    while (i < PROXY_PAIRS && px->client[i] >= 0)
        i++;
    s = socket(AF_INET, SOCK_STREAM, 0);
    if (i == PROXY_PAIRS || s < 0 ||
        connect(s, (struct sockaddr *)&px->upstream, sizeof(px->upstream)) != 0) {
        close(c);
        if (s >= 0)
            close(s);
        return;
    }
    px->client[i] = c;
    px->server[i] = s;
}

static void *proxy_main(void *arg)
{
    proxy_t *px = arg;
    char buf[65536];
    for (;;) {
        struct pollfd pfd[2 + 2 * PROXY_PAIRS];
        int pair[2 + 2 * PROXY_PAIRS], n = 0;
        pthread_mutex_lock(&px->lock);
        bool stop = px->stop;
        if (px->cut_requested) {
            for (int i = 0; i < PROXY_PAIRS; i++)
                if (px->server[i] >= 0) {
                    close(px->server[i]);
                    px->server[i] = -1;
                }
            px->cut_requested = false;
            px->cuts++;
            pthread_cond_broadcast(&px->cv);
        }
        pthread_mutex_unlock(&px->lock);
        if (stop)
            break;
        pfd[n] = (struct pollfd){.fd = px->listen_fd, .events = POLLIN};
        pair[n++] = -1;
        pfd[n] = (struct pollfd){.fd = px->wake[0], .events = POLLIN};
        pair[n++] = -1;
        for (int i = 0; i < PROXY_PAIRS; i++) {
            if (px->client[i] < 0)
                continue;
            pfd[n] = (struct pollfd){.fd = px->client[i], .events = POLLIN};
            pair[n++] = i;
            if (px->server[i] >= 0) {
                pfd[n] = (struct pollfd){.fd = px->server[i], .events = POLLIN};
                pair[n++] = i;
            }
        }
        if (poll(pfd, (nfds_t)n, -1) <= 0)
            continue;
        if (pfd[1].revents)
            (void)!read(px->wake[0], buf, sizeof(buf));
        if (pfd[0].revents & POLLIN)
            proxy_accept(px);
        for (int k = 2; k < n; k++) {
            int i = pair[k];
            if (!pfd[k].revents || px->client[i] < 0)
                continue;
            bool from_client = pfd[k].fd == px->client[i];
            if (from_client && px->server[i] < 0) { /* cut: the client spoke, it gets a reset */
                reset_close(px->client[i]);
                px->client[i] = -1;
                continue;
            }
            if (!from_client && pfd[k].fd != px->server[i])
                continue; /* closed earlier in this round */
            ssize_t got = read(pfd[k].fd, buf, sizeof(buf));
            if (got <= 0 || !write_all(from_client ? px->server[i] : px->client[i], buf, got)) {
                close(px->client[i]);
                close(px->server[i]);
                px->client[i] = px->server[i] = -1;
            }
        }
    }
    for (int i = 0; i < PROXY_PAIRS; i++) {
        if (px->client[i] >= 0)
            close(px->client[i]);
        if (px->server[i] >= 0)
            close(px->server[i]);
    }
    return NULL;
}

/* Starts a proxy to the test server; false when it is not reached over TCP (then skip). */
static bool proxy_start(proxy_t *px)
{
    char *addr = pe_test_sql(g_conninfo, "SELECT host(inet_server_addr())");
    char *port = pe_test_sql(g_conninfo, "SELECT inet_server_port()");
    bool ok = addr && port;
    memset(px, 0, sizeof(*px));
    if (ok) {
        px->upstream.sin_family = AF_INET;
        px->upstream.sin_port = htons((uint16_t)atoi(port));
        ok = inet_pton(AF_INET, addr, &px->upstream.sin_addr) == 1;
    }
    free(addr);
    free(port);
    if (!ok)
        return false;
    for (int i = 0; i < PROXY_PAIRS; i++)
        px->client[i] = px->server[i] = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    px->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(px->listen_fd >= 0);
    assert_int_equal(bind(px->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(px->listen_fd, 16), 0);
    assert_int_equal(getsockname(px->listen_fd, (struct sockaddr *)&sa, &sl), 0);
    px->port = ntohs(sa.sin_port);
    assert_int_equal(pipe(px->wake), 0);
    pthread_mutex_init(&px->lock, NULL);
    pthread_cond_init(&px->cv, NULL);
    assert_int_equal(pthread_create(&px->thread, NULL, proxy_main, px), 0);
    return true;
}

/* Cuts every connection through the proxy, silently; returns once it is done. */
static void proxy_cut(proxy_t *px)
{
    pthread_mutex_lock(&px->lock);
    unsigned cuts = px->cuts;
    px->cut_requested = true;
    assert_int_equal(write(px->wake[1], "c", 1), 1);
    while (px->cuts == cuts)
        pthread_cond_wait(&px->cv, &px->lock);
    pthread_mutex_unlock(&px->lock);
}

static void proxy_stop(proxy_t *px)
{
    pthread_mutex_lock(&px->lock);
    px->stop = true;
    pthread_mutex_unlock(&px->lock);
    assert_int_equal(write(px->wake[1], "s", 1), 1);
    pthread_join(px->thread, NULL);
    close(px->listen_fd);
    close(px->wake[0]);
    close(px->wake[1]);
    pthread_cond_destroy(&px->cv);
    pthread_mutex_destroy(&px->lock);
}

/* Lends every connection of pool (n of them) at once and runs a statement on each: none may
 * fail, whatever happened to them while they were idle. */
static void use_all(pe_db_pool_t *pool, int n, const char *when)
{
    pe_db_conn_t *c[8];
    assert_true(n <= 8);
    for (int i = 0; i < n; i++) {
        c[i] = acquire(pool);
        int rc = pe_db_exec(c[i], "SELECT 1", 0, NULL, NULL);
        if (rc != 0)
            fail_msg("%s: connection %d of %d: %s (%s)", when, i + 1, n, pe_strerror(rc),
                     pe_db_conn_error(c[i]));
    }
    for (int i = 0; i < n; i++)
        pe_db_release(pool, c[i]);
}

/* A silent drop (no FATAL reaches us, nothing is readable until we send) is invisible to the
 * pool's look at an idle socket. BEGIN, first after acquire, reconnects and begins again; and
 * once one connection was found dead, every connection of that era is checked with a round trip
 * before it is lent, so the drop costs no further statement. A statement outside a transaction
 * is never repeated: it may have committed. */
static void test_silent_drops_cost_no_transaction(void **state)
{
    (void)state;
    static proxy_t px; /* static: a failing test leaves its thread running */
    char conninfo[1024], pid[32];
    if (!proxy_start(&px))
        skip(); /* the test server is not reached over TCP */
    /* a later keyword wins in a libpq conninfo */
    snprintf(conninfo, sizeof(conninfo), "%s host=127.0.0.1 port=%u", g_conninfo,
             (unsigned)px.port);
    pe_db_pool_t *pool = pe_db_pool_new(conninfo, 3);
    use_all(pool, 3, "through the proxy");

    proxy_cut(&px);
    pe_db_conn_t *c = acquire(pool);
    assert_int_equal(pe_db_begin(c), 0);
    query1(c, "SELECT pg_backend_pid()", pid, sizeof(pid));
    assert_int_equal(pe_db_commit(c), 0);
    pe_db_release(pool, c);
    use_all(pool, 3, "after a silent drop met by BEGIN");

    proxy_cut(&px);
    c = acquire(pool);
    assert_int_equal(pe_db_exec(c, "SELECT 1", 0, NULL, NULL), PE_EUNAVAIL);
    assert_true(pe_db_conn_lost(c));
    pe_db_release(pool, c);
    use_all(pool, 3, "after a silent drop met by a statement");

    pe_db_pool_free(pool);
    proxy_stop(&px);
}

/* ---- COPY ----------------------------------------------------------------------------------- */

static void test_copy_round_trip(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "plain",
        "tab\tinside",
        "new\nline and\r\ncrlf",
        "back\\slash \\N \\t literally",
        "\\.",
        "",
        "bell\a and \x1f unit separator",
        "caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x9b\x92",
    };
    enum { N = PE_ARRAY_LEN(bodies) };
    pe_buf_t rows = PE_BUF_INIT;
    pe_db_conn_t *c = acquire(g_pool);
    pe_db_result_t *res = NULL;
    uint64_t copied = 0;

    for (size_t i = 0; i < N; i++) {
        assert_int_equal(pe_buf_printf(&rows, "%zu\t", i + 1), 0);
        assert_int_equal(pe_db_copy_escape(&rows, bodies[i], strlen(bodies[i])), 0);
        assert_int_equal(pe_buf_puts(&rows, "\n"), 0);
    }
    assert_int_equal(pe_db_copy_begin(c, "COPY copied (id, body) FROM STDIN"), 0);
    /* Pieces need not end on row boundaries. */
    size_t half = rows.len / 2 + 3;
    assert_int_equal(pe_db_copy_send(c, rows.data, half), 0);
    assert_int_equal(pe_db_copy_send(c, rows.data + half, rows.len - half), 0);
    assert_int_equal(pe_db_copy_end(c, &copied), 0);
    assert_int_equal(copied, N);
    assert_int_equal(pe_db_exec(c, "SELECT body FROM copied ORDER BY id", 0, NULL, &res), 0);
    assert_int_equal(pe_db_result_rows(res), N);
    for (size_t i = 0; i < N; i++)
        assert_string_equal(pe_db_result_get(res, i, 0), bodies[i]);
    pe_db_result_free(res);
    pe_buf_free(&rows);
    pe_db_release(g_pool, c);
}

static void test_copy_failures_leave_connection_usable(void **state)
{
    (void)state;
    pe_db_pool_t *pool = pe_db_pool_new(g_conninfo, 1);
    pe_db_conn_t *c = acquire(pool);
    uint64_t copied = 99;
    char v[16];

    /* The server rejects a row: end reports it, nothing is kept. */
    assert_int_equal(pe_db_copy_begin(c, "COPY copied (id, body) FROM STDIN"), 0);
    assert_int_equal(pe_db_copy_send(c, "1000\tok\nnot-a-number\tx\n", 24), 0);
    assert_int_equal(pe_db_copy_end(c, &copied), PE_EINVAL);
    assert_string_equal(pe_db_conn_sqlstate(c), "22P02");
    assert_int_equal(copied, 0);
    assert_string_equal(query1(c, "SELECT count(*) FROM copied WHERE id >= 1000", v, sizeof(v)),
                        "0");

    /* Not a COPY FROM STDIN, or COPY through exec: refused, connection still fine. */
    assert_int_equal(pe_db_copy_begin(c, "SELECT 1"), PE_EINTERNAL);
    assert_int_equal(pe_db_copy_begin(c, "COPY nowhere FROM STDIN"), PE_EINTERNAL);
    assert_string_equal(pe_db_conn_sqlstate(c), "42P01");
    assert_int_equal(pe_db_exec(c, "COPY copied FROM STDIN", 0, NULL, NULL), PE_EINTERNAL);
    assert_string_equal(query1(c, "SELECT 'fine'", v, sizeof(v)), "fine");
    assert_int_equal(pe_db_copy_send(c, "x", 1), PE_EINTERNAL); /* no COPY in progress */
    assert_int_equal(pe_db_copy_end(c, NULL), PE_EINTERNAL);

    /* Released in the middle of a COPY: aborted, nothing kept, connection reused cleanly. */
    assert_int_equal(pe_db_copy_begin(c, "COPY copied (id, body) FROM STDIN"), 0);
    assert_int_equal(pe_db_copy_send(c, "2000\thalf\n", 10), 0);
    pe_db_release(pool, c);
    c = acquire(pool);
    assert_string_equal(query1(c, "SELECT count(*) FROM copied WHERE id = 2000", v, sizeof(v)),
                        "0");
    pe_db_release(pool, c);
    pe_db_pool_free(pool);
}

/* ---- migrations ----------------------------------------------------------------------------- */

/* ---- LISTEN ---------------------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    int resets;
    char payloads[8][32];
    int npayloads;
} heard_t;

static void on_heard(void *arg, const char *payload)
{
    heard_t *h = arg;
    pthread_mutex_lock(&h->lock);
    if (!payload)
        h->resets++;
    else if (h->npayloads < 8)
        snprintf(h->payloads[h->npayloads++], sizeof h->payloads[0], "%s", payload);
    pthread_mutex_unlock(&h->lock);
}

static int heard_count(heard_t *h, bool resets)
{
    pthread_mutex_lock(&h->lock);
    int n = resets ? h->resets : h->npayloads;
    pthread_mutex_unlock(&h->lock);
    return n;
}

typedef struct {
    heard_t *h;
    pe_db_listener_t *l;
    int resets, payloads; /* at least this many */
} expect_t;

static bool met(const expect_t *e)
{
    return heard_count(e->h, true) >= e->resets && heard_count(e->h, false) >= e->payloads &&
           pe_db_listener_live(e->l);
}

/* Waits up to WAIT_MS for the expectation; returns whether it was met. */
static bool wait_for(heard_t *h, pe_db_listener_t *l, int resets, int payloads)
{
    expect_t e = {h, l, resets, payloads};
    for (int64_t t0 = pe_now_mono_us(); pe_now_mono_us() - t0 < WAIT_MS * 1000LL; usleep(5000))
        if (met(&e))
            return true;
    return false;
}

/* Notifications arrive when the sending transaction commits; a lost connection is noticed,
 * announced as a reset (NULL payload) and replaced, and listening goes on. */
static void test_listener_hears_and_survives_a_lost_connection(void **state)
{
    (void)state;
    heard_t h = {.npayloads = 0};
    pthread_mutex_init(&h.lock, NULL);
    assert_null(pe_db_listener_start(g_pool, "Bad-Name; DROP", on_heard, &h));
    assert_null(pe_db_listener_start(g_pool, "", on_heard, &h));
    pe_db_listener_t *l = pe_db_listener_start(g_pool, "pe_test_channel", on_heard, &h);
    assert_non_null(l);
    assert_true(wait_for(&h, l, 1, 0));
    assert_int_equal(heard_count(&h, true), 1); /* told to forget on (first) connect */

    /* not delivered before COMMIT, delivered after */
    pe_db_conn_t *c = acquire(g_pool);
    assert_int_equal(pe_db_begin(c), 0);
    assert_int_equal(pe_db_exec(c, "SELECT pg_notify('pe_test_channel', 'one')", 0, NULL, NULL), 0);
    usleep(300 * 1000);
    assert_int_equal(heard_count(&h, false), 0);
    assert_int_equal(pe_db_commit(c), 0);
    assert_true(wait_for(&h, l, 1, 1));
    assert_string_equal(h.payloads[0], "one");
    /* another channel is not heard */
    assert_int_equal(pe_db_exec(c, "NOTIFY other_channel, 'x'", 0, NULL, NULL), 0);

    /* the server ends the listener's session: reset, reconnect, live again */
    assert_int_equal(pe_db_exec(c,
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                " WHERE query = 'LISTEN pe_test_channel'",
                                0, NULL, NULL),
                     0);
    assert_true(wait_for(&h, l, 3, 1)); /* lost: reset; reconnected: reset */
    assert_int_equal(pe_db_exec(c, "NOTIFY pe_test_channel, 'two'", 0, NULL, NULL), 0);
    assert_true(wait_for(&h, l, 3, 2));
    assert_int_equal(heard_count(&h, false), 2); /* other_channel was not heard */
    assert_string_equal(h.payloads[1], "two");
    pe_db_release(g_pool, c);

    int64_t t0 = pe_now_mono_us();
    pe_db_listener_stop(l);
    assert_true(pe_now_mono_us() - t0 < 1000000);
    pe_db_listener_stop(NULL);
    pthread_mutex_destroy(&h.lock);
}

static const char *const count_sql = "SELECT count(*) FROM schema_migrations";
/* pg_locks spans the cluster, where other test programs migrate too: count this database's. */
static const char *const advisory_locks_sql =
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database())";

static void test_migrate_applies_once(void **state)
{
    (void)state;
    char *ci = pe_test_db_create();
    pe_db_pool_t *pool = pe_db_pool_new(ci, 2);
    char err[512], want[16];
    bool current = true;
    int applied = -1;

    assert_int_equal(pe_db_migrations_current(pool, &current, err, sizeof(err)), 0);
    assert_int_equal(current, pe_embedded_migrations_count == 0);
    assert_int_equal(pe_db_migrate(pool, &applied, err, sizeof(err)), 0);
    assert_int_equal(applied, (int)pe_embedded_migrations_count);
    assert_int_equal(pe_db_migrations_current(pool, &current, err, sizeof(err)), 0);
    assert_true(current);
    assert_int_equal(pe_db_migrate(pool, &applied, err, sizeof(err)), 0);
    assert_int_equal(applied, 0);

    snprintf(want, sizeof(want), "%zu", pe_embedded_migrations_count);
    char *n = pe_test_sql(ci, count_sql);
    assert_string_equal(n, want);
    free(n);
    char *len = pe_test_sql(ci, "SELECT coalesce(min(length(checksum)), 64) "
                                "FROM schema_migrations");
    assert_string_equal(len, "64");
    free(len);
    /* The lock is given back: no advisory lock survives the run. */
    char *locks = pe_test_sql(ci, advisory_locks_sql);
    assert_string_equal(locks, "0");
    free(locks);
    pe_db_pool_free(pool);
    pe_test_db_drop(ci);
}

static void test_migrate_refuses_edited_file(void **state)
{
    (void)state;
    if (pe_embedded_migrations_count == 0)
        skip();
    char *ci = pe_test_db_create_migrated();
    pe_db_pool_t *pool = pe_db_pool_new(ci, 1);
    char err[512] = "";
    bool current = true;
    int applied = -1;

    free(pe_test_sql(ci, "UPDATE schema_migrations SET checksum = 'x' "
                         "WHERE version = (SELECT min(version) FROM schema_migrations)"));
    assert_int_equal(pe_db_migrate(pool, &applied, err, sizeof(err)), PE_ECONFLICT);
    assert_int_equal(applied, 0);
    if (!strstr(err, pe_embedded_migrations[0].path))
        fail_msg("message does not name %s: %s", pe_embedded_migrations[0].path, err);
    assert_int_equal(pe_db_migrations_current(pool, &current, err, sizeof(err)), 0);
    assert_false(current);
    assert_non_null(strstr(err, pe_embedded_migrations[0].path));
    pe_db_pool_free(pool);
    pe_test_db_drop(ci);
}

typedef struct {
    const char *conninfo;
    const pe_embedded_file_t *files; /* NULL: the embedded migrations */
    size_t n;
    int rc;
    int applied;
    char err[512];
} migrator_t;

static void *migrator(void *arg)
{
    migrator_t *m = arg;
    pe_db_pool_t *pool = pe_db_pool_new(m->conninfo, 1);
    if (m->files)
        m->rc = pe_db_migrate_files(pool, m->files, m->n, &m->applied, m->err, sizeof(m->err));
    else
        m->rc = pe_db_migrate(pool, &m->applied, m->err, sizeof(m->err));
    pe_db_pool_free(pool);
    return NULL;
}

static void run_two_migrators(const pe_embedded_file_t *files, size_t n)
{
    char *ci = pe_test_db_create();
    migrator_t m[2];
    pthread_t t[2];
    char want[16];

    for (int i = 0; i < 2; i++) {
        m[i] = (migrator_t){.conninfo = ci, .files = files, .n = n, .applied = -1};
        assert_int_equal(pthread_create(&t[i], NULL, migrator, &m[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        if (m[i].rc != 0)
            fail_msg("migrator %d: %s: %s", i, pe_strerror(m[i].rc), m[i].err);
    }
    /* The lock serialises them: one does everything, the other finds nothing to do. */
    assert_int_equal(m[0].applied + m[1].applied, (int)n);
    assert_true(m[0].applied == 0 || m[1].applied == 0);
    snprintf(want, sizeof(want), "%zu", n);
    char *count = pe_test_sql(ci, count_sql);
    assert_string_equal(count, want);
    free(count);
    pe_test_db_drop(ci);
}

static void test_concurrent_migrators(void **state)
{
    (void)state;
    run_two_migrators(NULL, pe_embedded_migrations_count);
}

#define MIGRATION(p, sql)                                                                          \
    {                                                                                              \
        (p), (const unsigned char *)(sql), sizeof(sql) - 1                                         \
    }

static void test_concurrent_slow_migrators(void **state)
{
    (void)state;
    /* Slow files widen the window in which an unserialised second run would collide. */
    static const pe_embedded_file_t files[] = {
        MIGRATION("0001_a.sql", "CREATE TABLE m_a (x int); SELECT pg_sleep(0.2);"),
        MIGRATION("0002_b.sql", "CREATE TABLE m_b (x int); SELECT pg_sleep(0.2);"),
        MIGRATION("0003_c.sql", "INSERT INTO m_a VALUES (1);"),
    };
    run_two_migrators(files, PE_ARRAY_LEN(files));
}

static void test_failed_migration_rolls_back(void **state)
{
    (void)state;
    static const pe_embedded_file_t good[] = {
        MIGRATION("0001_a.sql", "CREATE TABLE m_a (x int);\n-- a comment\n"),
        MIGRATION("0002_b.sql", "CREATE TABLE m_b (x int); INSERT INTO m_b VALUES (1), (2);"),
    };
    static const pe_embedded_file_t broken[] = {
        MIGRATION("0001_a.sql", "CREATE TABLE m_a (x int);\n-- a comment\n"),
        MIGRATION("0002_b.sql", "CREATE TABLE m_b (x int); INSERT INTO m_b VALUES (1), (2);"),
        MIGRATION("0003_c.sql", "CREATE TABLE m_c (x int); SELEC broken;"),
    };
    static const pe_embedded_file_t commits[] = {
        MIGRATION("0001_a.sql", "CREATE TABLE m_a (x int);\n-- a comment\n"),
        MIGRATION("0002_b.sql", "CREATE TABLE m_b (x int); INSERT INTO m_b VALUES (1), (2);"),
        MIGRATION("0003_d.sql", "CREATE TABLE m_d (x int); COMMIT;"),
    };
    char *ci = pe_test_db_create();
    pe_db_pool_t *pool = pe_db_pool_new(ci, 1);
    char err[512] = "";
    int applied = -1;
    bool current = true;

    assert_int_equal(pe_db_migrate_files(pool, good, 2, &applied, err, sizeof(err)), 0);
    assert_int_equal(applied, 2);
    assert_int_equal(pe_db_migrate_files(pool, broken, 3, &applied, err, sizeof(err)),
                     PE_EINTERNAL);
    assert_int_equal(applied, 0);
    assert_non_null(strstr(err, "0003_c.sql"));
    assert_non_null(strstr(err, "42601"));
    char *v = pe_test_sql(ci, "SELECT to_regclass('m_c') IS NULL");
    assert_string_equal(v, "t"); /* the failed file left nothing behind */
    free(v);
    v = pe_test_sql(ci, count_sql);
    assert_string_equal(v, "2");
    free(v);
    assert_int_equal(pe_db_migrations_current_files(pool, broken, 3, &current, err, sizeof(err)),
                     0);
    assert_false(current);
    assert_non_null(strstr(err, "0003_c.sql"));

    /* A file that commits on its own is refused (its row would not be atomic with it). */
    assert_int_equal(pe_db_migrate_files(pool, commits, 3, &applied, err, sizeof(err)),
                     PE_EINTERNAL);
    assert_non_null(strstr(err, "0003_d.sql"));
    v = pe_test_sql(ci, count_sql);
    assert_string_equal(v, "2");
    free(v);
    v = pe_test_sql(ci, advisory_locks_sql);
    assert_string_equal(v, "0");
    free(v);

    /* The pool's connection came back in a usable state after all of that. */
    pe_db_conn_t *c = acquire(pool);
    char s[32];
    assert_string_equal(query1(c, "SHOW statement_timeout", s, sizeof(s)), "30s");
    assert_string_equal(query1(c, "SHOW lock_timeout", s, sizeof(s)), "0");
    pe_db_release(pool, c);
    pe_db_pool_free(pool);
    pe_test_db_drop(ci);
}

static void test_bad_migration_lists_are_refused(void **state)
{
    (void)state;
    static const pe_embedded_file_t bad_name[] = {MIGRATION("1_a.sql", "SELECT 1;")};
    static const pe_embedded_file_t duplicate[] = {MIGRATION("0001_a.sql", "SELECT 1;"),
                                                   MIGRATION("0001_b.sql", "SELECT 1;")};
    static const pe_embedded_file_t unsorted[] = {MIGRATION("0002_a.sql", "SELECT 1;"),
                                                  MIGRATION("0001_b.sql", "SELECT 1;")};
    static const pe_embedded_file_t with_nul[] = {
        {"0001_a.sql", (const unsigned char *)"SELECT 1;\0DROP", 14}};
    char *ci = pe_test_db_create();
    pe_db_pool_t *pool = pe_db_pool_new(ci, 1);
    char err[512];
    int applied = -1;
    bool current;

    assert_int_equal(pe_db_migrate_files(pool, bad_name, 1, &applied, err, sizeof(err)), PE_EINVAL);
    assert_non_null(strstr(err, "1_a.sql"));
    assert_int_equal(pe_db_migrate_files(pool, duplicate, 2, &applied, err, sizeof(err)),
                     PE_EINVAL);
    assert_int_equal(pe_db_migrate_files(pool, unsorted, 2, &applied, err, sizeof(err)), PE_EINVAL);
    assert_int_equal(pe_db_migrate_files(pool, with_nul, 1, &applied, err, sizeof(err)), PE_EINVAL);
    assert_int_equal(pe_db_migrations_current_files(pool, bad_name, 1, &current, err, sizeof(err)),
                     PE_EINVAL);
    /* Nothing was touched: not even schema_migrations exists. */
    char *v = pe_test_sql(ci, "SELECT to_regclass('schema_migrations') IS NULL");
    assert_string_equal(v, "t");
    free(v);
    pe_db_pool_free(pool);
    pe_test_db_drop(ci);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acquire_release),
        cmocka_unit_test(test_session_settings),
        cmocka_unit_test(test_killed_client_statement_ends),
        cmocka_unit_test(test_exhaustion_times_out),
        cmocka_unit_test(test_threads_share_a_pool),
        cmocka_unit_test(test_waiter_is_woken_by_release),
        cmocka_unit_test(test_unreachable_server),
        cmocka_unit_test(test_sqlstate_mapping),
        cmocka_unit_test(test_hostile_parameters_stay_data),
        cmocka_unit_test(test_tx_rolls_back_when_fn_fails),
        cmocka_unit_test(test_release_mid_transaction_is_clean),
        cmocka_unit_test(test_broken_connections_are_replaced),
        cmocka_unit_test(test_begin_replaces_a_connection_that_died_idle),
        cmocka_unit_test(test_silent_drops_cost_no_transaction),
        cmocka_unit_test(test_copy_round_trip),
        cmocka_unit_test(test_copy_failures_leave_connection_usable),
        cmocka_unit_test(test_listener_hears_and_survives_a_lost_connection),
        cmocka_unit_test(test_migrate_applies_once),
        cmocka_unit_test(test_migrate_refuses_edited_file),
        cmocka_unit_test(test_concurrent_migrators),
        cmocka_unit_test(test_concurrent_slow_migrators),
        cmocka_unit_test(test_failed_migration_rolls_back),
        cmocka_unit_test(test_bad_migration_lists_are_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
