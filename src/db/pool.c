/*
 * db/pool.c — the PostgreSQL connection pool: a mutex, a condition variable, a LIFO list of idle
 * connections, and a count of slots. Connections are opened lazily, outside the mutex.
 *
 * A slot's life:
 *
 *     (free slot) --acquire, open < size--> OPENING --connect ok--> LENT --release--> IDLE
 *          ^                                  |                     ^  |               |
 *          |                                  | connect failed      |  | broken /      | acquire
 *          +----------------------------------+---------------------+--+ discard       |
 *                                                                    +-----------------+
 *
 *   transition              function                      under the mutex
 *   free → OPENING          pe_db_acquire (reserves)      yes: open++ , in_use++
 *   OPENING → LENT          pe_db_pool_open_conn          no  (a slow server must not block
 *                                                               the pool)
 *   OPENING → free          give_back_slot                yes: open--, in_use--, signal
 *   LENT → IDLE             pe_db_release                 reset outside, push inside, signal
 *   LENT → free             pe_db_release (broken)        close outside, open-- inside
 *   IDLE → LENT             pe_db_acquire                 pop inside, health check outside;
 *                                                         a dead one is reopened in place
 *   LENT → LENT (new link)  pe_db_conn_reopen             no  (epoch is atomic)
 *                           (from pe_db_conn_check, and pe_db_begin on a fresh connection)
 *
 * Invariants:
 *  1. in_use ≤ open ≤ size; open counts open connections plus slots being opened.
 *  2. Every connection on the idle list is open, outside any transaction and not in COPY.
 *  3. The mutex is never held across network I/O (connect, ROLLBACK, health checks).
 *  4. Each new connection carries fallback_application_name=profit-engine and, appended to any
 *     options of the caller, `-c statement_timeout=30s`, so a runaway query cannot hold a
 *     connection for ever (RESET statement_timeout returns to that 30 s), and
 *     `-c client_connection_check_interval=2s`: a process killed in the middle of a long
 *     statement (a job under kill -9, a CLI command interrupted) has its statement cancelled
 *     within 2 s, its locks released, instead of running on to its end for nobody; and
 *     `-c jit=off`: the engine's statements run in milliseconds to seconds, where compiling
 *     them costs more than it saves, and whether PostgreSQL compiles follows cost estimates
 *     (a temporary table without statistics inflates them). The roll-up of one store's product
 *     views (36,000 events, EXPLAIN ANALYZE side by side on busy cores) took 8.8 and 10.6 s
 *     with JIT's inlining and optimisation, 0.46 and 0.65 s without.
 *  5. A connection found dead anywhere (at lending, on release, by pe_db_conn_check, by BEGIN)
 *     advances the pool's epoch. An idle connection last known alive in an earlier epoch is
 *     checked with a round trip (an empty query) before it is lent again: a server restart
 *     closes every session with a FATAL that the no-round-trip check sees, but a network drop
 *     or a failover says nothing until something is sent, and then all the connections of that
 *     era are suspect, not only the one that met it.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define APPLICATION_NAME     "profit-engine"
#define SESSION_OPTIONS      "-c statement_timeout=30s -c client_connection_check_interval=2s -c jit=off"
#define CONNECT_TIMEOUT_SECS "5"

struct pe_db_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* signalled when a connection or a slot becomes free */
    char **keywords;      /* NULL-terminated, for PQconnectdbParams */
    char **values;        /* parallel to keywords */
    char *conninfo_error; /* why conninfo could not be parsed, or NULL */
    pe_db_conn_t *idle;   /* invariant 2; LIFO so the warmest connection is reused */
    unsigned size, open, in_use, waiting;
    uint64_t acquired_total, timeouts_total;
    _Atomic uint64_t epoch; /* invariant 5: advanced whenever a connection is found dead */
};

/* libpq prints notices on stderr by default, which would break our one-JSON-line-per-event
 * log; route them through pe_log instead. A FATAL arriving here came while the connection was
 * idle (libpq reports unsolicited errors as notices): the server is ending the session, so the
 * connection is marked for disposal before anyone lends it. */
static void notice_receiver(void *arg, const PGresult *res)
{
    pe_db_conn_t *conn = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    bool fatal = sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
    pe_log_level_t level = PE_LOG_DEBUG;

    if (fatal) {
        conn->discard = true;
        conn->lost = true;
        level = PE_LOG_WARN;
    } else if (sev && strcmp(sev, "WARNING") == 0) {
        level = PE_LOG_WARN;
    }
    pe_log(level, "db_notice", "%s", msg ? msg : "");
}

#ifndef NDEBUG
/* Invariants 1 and 2, checked in debug builds with the mutex held. */
static bool pool_invariants(const pe_db_pool_t *pool)
{
    if (pool->in_use > pool->open || pool->open > pool->size)
        return false;
    for (const pe_db_conn_t *c = pool->idle; c; c = c->next) {
        if (!c->pg || c->in_copy || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            return false;
    }
    return true;
}
#endif

static void free_strv(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

/* Turns conninfo into keyword/value arrays with our settings merged in (invariant 4). Parsing
 * once here also means a malformed conninfo is reported the same way on every acquire. */
static int build_params(pe_db_pool_t *pool, const char *conninfo)
{
    int rc = PE_ENOMEM;
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
    size_t n = 0, cap = 4;
    const char *user_options = NULL;
    bool have_fallback = false, have_timeout = false;
    pe_buf_t options = PE_BUF_INIT;

    if (!opts) {
        pool->conninfo_error = strdup(errmsg ? errmsg : "out of memory");
        if (!pool->conninfo_error)
            goto out;
        rc = 0; /* acquire reports it: the constructor only fails on ENOMEM */
        goto out;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        cap++;
        if (strcmp(o->keyword, "options") == 0)
            user_options = o->val;
        else if (strcmp(o->keyword, "fallback_application_name") == 0)
            have_fallback = true;
        else if (strcmp(o->keyword, "connect_timeout") == 0)
            have_timeout = true;
    }
    pool->keywords = calloc(cap, sizeof(char *));
    pool->values = calloc(cap, sizeof(char *));
    if (!pool->keywords || !pool->values)
        goto out;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || strcmp(o->keyword, "options") == 0)
            continue;
        pool->keywords[n] = strdup(o->keyword);
        pool->values[n++] = strdup(o->val);
        if (!pool->keywords[n - 1] || !pool->values[n - 1])
            goto out;
    }
    if (user_options && *user_options && pe_buf_printf(&options, "%s ", user_options) != 0)
        goto out;
    if (pe_buf_puts(&options, SESSION_OPTIONS) != 0)
        goto out;
    pool->keywords[n] = strdup("options");
    pool->values[n++] = pe_buf_steal(&options);
    if (!have_fallback) {
        pool->keywords[n] = strdup("fallback_application_name");
        pool->values[n++] = strdup(APPLICATION_NAME);
    }
    if (!have_timeout) {
        /* libpq waits for ever by default; a dead host must turn into PE_EUNAVAIL. */
        pool->keywords[n] = strdup("connect_timeout");
        pool->values[n++] = strdup(CONNECT_TIMEOUT_SECS);
    }
    for (size_t i = 0; i < n; i++) {
        if (!pool->keywords[i] || !pool->values[i])
            goto out;
    }
    rc = 0;
out:
    pe_buf_free(&options);
    PQconninfoFree(opts);
    PQfreemem(errmsg);
    return rc;
}

pe_db_pool_t *pe_db_pool_new(const char *conninfo, unsigned size)
{
    pe_db_pool_t *pool = calloc(1, sizeof(*pool));
    pthread_condattr_t attr;
    bool attr_ok = false, mu_ok = false, cv_ok = false;

    if (!pool)
        return NULL;
    pool->size = size ? size : 1;
    if (pthread_condattr_init(&attr) != 0)
        goto fail;
    attr_ok = true;
    /* Deadlines are monotonic so a wall-clock jump neither shortens nor stretches a wait. */
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0)
        goto fail;
    if (pthread_mutex_init(&pool->mu, NULL) != 0)
        goto fail;
    mu_ok = true;
    if (pthread_cond_init(&pool->cv, &attr) != 0)
        goto fail;
    cv_ok = true;
    if (build_params(pool, conninfo ? conninfo : "") != 0)
        goto fail;
    pthread_condattr_destroy(&attr);
    return pool;
fail:
    if (attr_ok)
        pthread_condattr_destroy(&attr);
    if (cv_ok)
        pthread_cond_destroy(&pool->cv);
    if (mu_ok)
        pthread_mutex_destroy(&pool->mu);
    free_strv(pool->keywords);
    free_strv(pool->values);
    free(pool->conninfo_error);
    free(pool);
    return NULL;
}

void pe_db_conn_close(pe_db_conn_t *conn)
{
    if (!conn)
        return;
    PQfinish(conn->pg);
    free(conn);
}

void pe_db_pool_free(pe_db_pool_t *pool)
{
    if (!pool)
        return;
    while (pool->idle) {
        pe_db_conn_t *c = pool->idle;
        pool->idle = c->next;
        pe_db_conn_close(c);
    }
    if (pool->in_use)
        pe_log(PE_LOG_ERROR, "db_pool_free_in_use", "%u connections still lent out", pool->in_use);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    free_strv(pool->keywords);
    free_strv(pool->values);
    free(pool->conninfo_error);
    free(pool);
}

/* Copies a libpq message as one line: our log has one event per line, and libpq's connection
 * errors come as several ("…failed: Connection refused\n\tIs the server running…"). */
static void trim_copy(char *dst, size_t dstlen, const char *src)
{
    size_t o = 0;

    for (const char *p = src; *p && o + 1 < dstlen; p++) {
        bool space = *p == '\n' || *p == '\t' || *p == ' ';
        if (space && (o == 0 || dst[o - 1] == ' '))
            continue;
        dst[o++] = space ? ' ' : (char)*p;
    }
    while (o && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

/* Connects conn (whose pg is NULL) with its pool's settings, no mutex held (invariant 3), and
 * makes it fresh. Returns 0 or PE_EUNAVAIL / PE_ENOMEM; on failure conn->pg is NULL and conn
 * lost. */
static int connect_conn(pe_db_conn_t *conn)
{
    int rc = PE_EUNAVAIL;
    pe_db_pool_t *pool = conn->pool;
    char msg[512] = "out of memory";

    assert(!conn->pg);
    conn->in_copy = false;
    conn->discard = false;
    conn->lost = true;
    conn->fresh = true;
    pe_db_conn_clear_error(conn);
    /* Read before connecting: a death found while we connect makes this one suspect too. */
    conn->epoch = atomic_load(&pool->epoch);
    if (pool->conninfo_error) {
        trim_copy(msg, sizeof(msg), pool->conninfo_error);
        pe_log(PE_LOG_ERROR, "db_conninfo_invalid", "%s", msg);
        goto out;
    }
    conn->pg = PQconnectdbParams((const char *const *)pool->keywords,
                                 (const char *const *)pool->values, 0);
    if (!conn->pg) {
        rc = PE_ENOMEM;
        goto out;
    }
    if (PQstatus(conn->pg) != CONNECTION_OK) {
        trim_copy(msg, sizeof(msg), PQerrorMessage(conn->pg));
        pe_log(PE_LOG_WARN, "db_connect_failed", "%s", msg);
        PQfinish(conn->pg);
        conn->pg = NULL;
        goto out;
    }
    PQsetNoticeReceiver(conn->pg, notice_receiver, conn);
    conn->lost = false;
    rc = 0;
out:
    if (rc != 0)
        pe_db_conn_fail_msg(conn, rc, msg); /* libpq's reason, for the caller's log */
    return rc;
}

/* Opens a new connection (no mutex held: invariant 3). Returns 0 or PE_EUNAVAIL / PE_ENOMEM. */
int pe_db_pool_open_conn(pe_db_pool_t *pool, pe_db_conn_t **out)
{
    int rc = PE_ENOMEM;
    pe_db_conn_t *conn = calloc(1, sizeof(*conn));

    if (!conn)
        goto out;
    conn->pool = pool;
    rc = connect_conn(conn);
    if (rc != 0)
        goto out;
    *out = conn;
    conn = NULL;
out:
    pe_db_conn_close(conn);
    return rc;
}

int pe_db_conn_reopen(pe_db_conn_t *conn)
{
    /* Its siblings opened before now may have died the same way (invariant 5). */
    atomic_fetch_add(&conn->pool->epoch, 1);
    PQfinish(conn->pg);
    conn->pg = NULL;
    return connect_conn(conn);
}

/* An idle connection may have been closed by the server (restart, pg_terminate_backend,
 * idle timeout) without libpq noticing: data or EOF waiting on an idle socket says so. The
 * server sends a FATAL message before closing, which notice_receiver turns into discard. */
static bool idle_conn_healthy(pe_db_conn_t *conn)
{
    PGnotify *n;

    /* A few rounds at most: a stream of NOTIFYs must not keep us here. */
    for (int round = 0; round < 4; round++) {
        struct pollfd pfd = {.fd = PQsocket(conn->pg), .events = POLLIN, .revents = 0};

        if (conn->discard || PQstatus(conn->pg) != CONNECTION_OK || pfd.fd < 0)
            return false;
        if (poll(&pfd, 1, 0) <= 0)
            return true;
        if (!PQconsumeInput(conn->pg))
            return false;
        /* PQisBusy parses what arrived, which runs notice_receiver for a FATAL. */
        (void)PQisBusy(conn->pg);
        while ((n = PQnotifies(conn->pg)) != NULL)
            PQfreemem(n);
    }
    return !conn->discard && PQstatus(conn->pg) == CONNECTION_OK;
}

/* idle_conn_healthy, and a round trip when the pool found a connection dead since this one was
 * last known alive (invariant 5). */
static bool idle_conn_alive(pe_db_conn_t *conn)
{
    uint64_t epoch = atomic_load(&conn->pool->epoch);
    PGresult *res;
    bool ok;

    if (!conn->pg || conn->lost || !idle_conn_healthy(conn))
        return false;
    if (conn->epoch >= epoch)
        return true;
    res = PQexec(conn->pg, "");
    ok = PQresultStatus(res) == PGRES_EMPTY_QUERY;
    PQclear(res);
    if (!ok || conn->discard || PQstatus(conn->pg) != CONNECTION_OK)
        return false;
    conn->epoch = epoch;
    return true;
}

int pe_db_conn_check(pe_db_conn_t *conn)
{
    int rc = PE_EUNAVAIL;

    if (conn->in_copy || (conn->pg && PQtransactionStatus(conn->pg) != PQTRANS_IDLE)) {
        /* Work is under way on it: nothing can be replaced, only reported. */
        rc = pe_db_conn_lost(conn) ? PE_EUNAVAIL : 0;
        goto out;
    }
    if (idle_conn_alive(conn)) {
        rc = 0;
        goto out;
    }
    pe_log(PE_LOG_WARN, "db_reconnect", "a held connection was closed by the server; replacing it");
    rc = pe_db_conn_reopen(conn);
out:
    return rc;
}

static void deadline_after(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void give_back_slot(pe_db_pool_t *pool)
{
    pthread_mutex_lock(&pool->mu);
    pool->open--;
    pool->in_use--;
    assert(pool_invariants(pool));
    /* A waiter may now open a connection of its own in this slot. */
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
}

/* timeout_ms ≤ 0 means "do not wait": take a free connection or slot, or fail at once. */
int pe_db_acquire(pe_db_pool_t *pool, int timeout_ms, pe_db_conn_t **out)
{
    int rc = PE_EINTERNAL;
    pe_db_conn_t *conn = NULL;
    bool must_open = false;
    struct timespec deadline;

    *out = NULL;
    deadline_after(&deadline, timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        if (pool->idle) {
            conn = pool->idle;
            pool->idle = conn->next;
            conn->next = NULL;
            break;
        }
        if (pool->open < pool->size) {
            pool->open++;
            must_open = true;
            break;
        }
        if (timeout_ms <= 0) {
            pool->timeouts_total++;
            pthread_mutex_unlock(&pool->mu);
            rc = PE_ETIMEOUT;
            goto out;
        }
        pool->waiting++;
        int w = pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline);
        pool->waiting--;
        if (w == ETIMEDOUT && !pool->idle && pool->open >= pool->size) {
            pool->timeouts_total++;
            pthread_mutex_unlock(&pool->mu);
            rc = PE_ETIMEOUT;
            goto out;
        }
    }
    pool->in_use++;
    assert(pool_invariants(pool));
    pthread_mutex_unlock(&pool->mu);

    if (conn && !idle_conn_alive(conn)) {
        /* Keep the slot, replace the connection (and suspect its siblings: invariant 5). */
        rc = pe_db_conn_reopen(conn);
        if (rc != 0) {
            pe_db_conn_close(conn);
            give_back_slot(pool);
            goto out;
        }
    }
    if (must_open) {
        rc = pe_db_pool_open_conn(pool, &conn);
        if (rc != 0) {
            give_back_slot(pool);
            goto out;
        }
    }
    conn->fresh = true;
    pe_db_conn_clear_error(conn);
    pthread_mutex_lock(&pool->mu);
    pool->acquired_total++;
    pthread_mutex_unlock(&pool->mu);
    *out = conn;
    rc = 0;
out:
    return rc;
}

/* Brings a lent connection back to invariant 2, or closes it (conn->pg = NULL). */
static void reset_for_reuse(pe_db_conn_t *conn)
{
    PGresult *res;

    if (!conn->pg)
        return;
    if (conn->in_copy) {
        /* Abort the COPY: the server discards the rows and reports an error we drain. */
        PQputCopyEnd(conn->pg, "connection released during COPY");
        while ((res = PQgetResult(conn->pg)) != NULL)
            PQclear(res);
        conn->in_copy = false;
    }
    if (conn->discard || PQstatus(conn->pg) != CONNECTION_OK)
        goto close;
    switch (PQtransactionStatus(conn->pg)) {
    case PQTRANS_IDLE:
        break;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        res = PQexec(conn->pg, "ROLLBACK");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            PQclear(res);
            goto close;
        }
        PQclear(res);
        if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
            goto close;
        break;
    default: /* ACTIVE or UNKNOWN: a command is in flight or the link is gone */
        goto close;
    }
    pe_db_conn_clear_error(conn);
    return;
close:
    PQfinish(conn->pg);
    conn->pg = NULL;
}

void pe_db_release(pe_db_pool_t *pool, pe_db_conn_t *conn)
{
    if (!conn)
        return;
    if (pe_db_conn_lost(conn))
        atomic_fetch_add(&pool->epoch, 1); /* invariant 5 */
    reset_for_reuse(conn);
    conn->discard = false;
    pthread_mutex_lock(&pool->mu);
    pool->in_use--;
    if (conn->pg) {
        conn->next = pool->idle;
        pool->idle = conn;
        conn = NULL;
    } else {
        pool->open--;
    }
    assert(pool_invariants(pool));
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    pe_db_conn_close(conn);
}

void pe_db_pool_stats(pe_db_pool_t *pool, pe_db_pool_stats_t *out)
{
    pthread_mutex_lock(&pool->mu);
    out->size = pool->size;
    out->open = pool->open;
    out->in_use = pool->in_use;
    out->waiting = pool->waiting;
    out->acquired_total = pool->acquired_total;
    out->timeouts_total = pool->timeouts_total;
    pthread_mutex_unlock(&pool->mu);
}

int pe_db_ping(pe_db_pool_t *pool, int timeout_ms)
{
    pe_db_conn_t *conn = NULL;
    int rc = pe_db_acquire(pool, timeout_ms, &conn);

    if (rc != 0)
        goto out;
    rc = pe_db_exec(conn, "SELECT 1", 0, NULL, NULL);
out:
    pe_db_release(pool, conn);
    return rc;
}
