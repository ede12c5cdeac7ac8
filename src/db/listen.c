/*
 * listen.c — PostgreSQL LISTEN on a dedicated connection, for in-process caches that must learn
 * at once when the rows behind them change (a revoked API key, a disabled flag), on every
 * instance, without polling. Delivery is transactional: NOTIFY reaches listeners only when the
 * transaction that sent it commits.
 *
 *   CONNECTING ──connected, LISTEN ok──▶ LIVE ──socket error / FATAL──▶ CONNECTING (after 1 s)
 *        │                                 │
 *        └──── stop ──▶ STOPPED ◀── stop ──┘
 *
 *   transition             function          what the cache is told
 *   CONNECTING → LIVE      listen_connect()  fn(NULL): forget everything (anything may have
 *                                            changed while nobody listened)
 *   LIVE → CONNECTING      listener_main()   fn(NULL) again, and live = false until back
 *
 * Invariants:
 *  1. live is true only between a successful LISTEN and the first sign of a broken connection;
 *     a cache consults it on every read and falls back to the database when it is false.
 *  2. Every reconnect tells the cache to forget (fn(NULL)) after LISTEN succeeded, so no change
 *     committed while the listener was away can survive in the cache.
 *  3. The channel name is checked against [a-z_]{1,63} and is the only text ever spliced into
 *     SQL here (LISTEN takes no parameters).
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define POLL_MS      200
#define RECONNECT_MS 1000

struct pe_db_listener {
    pe_db_pool_t *pool;
    char channel[64];
    pe_db_notify_fn fn;
    void *arg;
    pthread_t thread;
    _Atomic bool stopping;
    _Atomic bool live;
};

static bool channel_valid(const char *c)
{
    size_t n = strlen(c);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || c[i] == '_'))
            return false;
    return true;
}

static void sleep_ms(pe_db_listener_t *l, int ms)
{
    for (int waited = 0; waited < ms && !atomic_load(&l->stopping); waited += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Opens the connection and LISTENs. Returns it, or NULL (logged). */
static pe_db_conn_t *listen_connect(pe_db_listener_t *l)
{
    pe_db_conn_t *conn = NULL;
    PGresult *res = NULL;
    char sql[96];
    if (pe_db_pool_open_conn(l->pool, &conn) != 0)
        goto fail;
    snprintf(sql, sizeof sql, "LISTEN %s", l->channel); /* invariant 3 */
    res = PQexec(conn->pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pe_log(PE_LOG_WARN, "db_listen_failed", "LISTEN %s: %s", l->channel,
               PQerrorMessage(conn->pg));
        goto fail;
    }
    PQclear(res);
    return conn;
fail:
    PQclear(res);
    pe_db_conn_close(conn);
    return NULL;
}

/* Hands every pending notification to fn. Returns false when the connection is broken. */
static bool drain(pe_db_listener_t *l, pe_db_conn_t *conn)
{
    if (!PQconsumeInput(conn->pg) || PQstatus(conn->pg) != CONNECTION_OK || conn->discard)
        return false;
    PGnotify *n;
    while ((n = PQnotifies(conn->pg)) != NULL) {
        if (strcmp(n->relname, l->channel) == 0)
            l->fn(l->arg, n->extra ? n->extra : "");
        PQfreemem(n);
    }
    return true;
}

static void *listener_main(void *arg)
{
    pe_db_listener_t *l = arg;
    while (!atomic_load(&l->stopping)) {
        pe_db_conn_t *conn = listen_connect(l);
        if (!conn) {
            sleep_ms(l, RECONNECT_MS);
            continue;
        }
        l->fn(l->arg, NULL); /* invariant 2 */
        atomic_store(&l->live, true);
        pe_log(PE_LOG_DEBUG, "db_listening", "listening on %s", l->channel);
        bool ok = true;
        while (ok && !atomic_load(&l->stopping)) {
            struct pollfd pfd = {.fd = PQsocket(conn->pg), .events = POLLIN, .revents = 0};
            if (pfd.fd < 0)
                break;
            int r = poll(&pfd, 1, POLL_MS);
            if (r > 0)
                ok = drain(l, conn);
        }
        atomic_store(&l->live, false);
        l->fn(l->arg, NULL);
        pe_db_conn_close(conn);
        if (!ok && !atomic_load(&l->stopping)) {
            pe_log(PE_LOG_WARN, "db_listen_lost", "lost the connection listening on %s",
                   l->channel);
            sleep_ms(l, RECONNECT_MS);
        }
    }
    return NULL;
}

pe_db_listener_t *pe_db_listener_start(pe_db_pool_t *pool, const char *channel, pe_db_notify_fn fn,
                                       void *arg)
{
    if (!pool || !channel || !fn || !channel_valid(channel))
        return NULL;
    pe_db_listener_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->pool = pool;
    snprintf(l->channel, sizeof l->channel, "%s", channel);
    l->fn = fn;
    l->arg = arg;
    if (pthread_create(&l->thread, NULL, listener_main, l) != 0) {
        free(l);
        return NULL;
    }
    return l;
}

bool pe_db_listener_live(const pe_db_listener_t *l)
{
    return l && atomic_load(&l->live);
}

void pe_db_listener_stop(pe_db_listener_t *l)
{
    if (!l)
        return;
    atomic_store(&l->stopping, true);
    pthread_join(l->thread, NULL);
    free(l);
}
