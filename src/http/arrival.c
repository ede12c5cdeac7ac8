/*
 * arrival.c — deadlines on how long a request may take to arrive, and room for new connections
 * when slow ones fill the table (the state diagram is in http_internal.h).
 *
 * A tracker per connection, made when libmicrohttpd reports it started and freed when it reports
 * it closed. The connection's own MHD thread moves it from phase to phase with atomic stores; one
 * reaper thread looks at every tracker a few times a second and closes the connections whose
 * deadline has passed by shutdown(2) of their socket: libmicrohttpd then reads the end of the
 * stream and closes the connection itself, on its own thread, as if the client had hung up.
 *
 * Invariants:
 *  1. A socket is shut down only under the lock, while its tracker is on the list: libmicrohttpd
 *     reports a connection closed (and the tracker leaves the list, under the lock) before it
 *     closes the socket, so the descriptor is never one that a newer connection reuses.
 *  2. A connection in BODY or HANDLING is never closed to make room, only by its own deadline
 *     (BODY) or not at all (HANDLING: the server is working or answering; a request parked on
 *     the collector waits for PostgreSQL, not for its client).
 *  3. live counts the tracked connections not yet shut down; after notify(STARTED) returns,
 *     live ≤ max_connections.
 *  4. No clock is read on a request's path but the monotonic one, twice per request.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "http_internal.h"

#define REAPER_TICK_MS 100

typedef enum { PHASE_WAITING = 0, PHASE_BODY, PHASE_HANDLING } phase_t;

struct pe_http_arrival {
    const pe_http_arrivals_t *owner; /* its deadlines */
    pe_http_arrival_t *prev, *next;  /* the list, under the lock */
    int fd;
    bool shut;                   /* shut down by us, under the lock */
    _Atomic int phase;           /* phase_t */
    _Atomic int64_t since_us;    /* when the phase began (monotonic) */
    _Atomic int64_t deadline_us; /* 0 = none */
};

struct pe_http_arrivals {
    pe_http_arrivals_config_t cfg;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t reaper;
    bool stopping;
    pe_http_arrival_t *head;
    unsigned live; /* invariant 3 */
    _Atomic uint64_t closed_header, closed_body, evicted;
};

static void enter(pe_http_arrival_t *t, phase_t phase, int64_t now, int64_t allowed_us)
{
    atomic_store_explicit(&t->since_us, now, memory_order_relaxed);
    atomic_store_explicit(&t->deadline_us, allowed_us ? now + allowed_us : 0, memory_order_relaxed);
    atomic_store_explicit(&t->phase, (int)phase, memory_order_release);
}

static int64_t seconds_us(unsigned s)
{
    return (int64_t)s * 1000000;
}

/* Shuts t's socket down (invariant 1: the lock is held). */
static void shut(pe_http_arrivals_t *a, pe_http_arrival_t *t)
{
    t->shut = true;
    a->live--;
    shutdown(t->fd, SHUT_RDWR);
}

/* The connection waiting longest for its next request, not yet shut; NULL when none waits. */
static pe_http_arrival_t *longest_waiting(pe_http_arrivals_t *a)
{
    pe_http_arrival_t *best = NULL;
    int64_t best_since = INT64_MAX;
    for (pe_http_arrival_t *t = a->head; t; t = t->next) {
        if (t->shut || atomic_load_explicit(&t->phase, memory_order_acquire) != PHASE_WAITING)
            continue;
        int64_t since = atomic_load_explicit(&t->since_us, memory_order_relaxed);
        if (since < best_since) {
            best = t;
            best_since = since;
        }
    }
    return best;
}

static void *reaper_main(void *arg)
{
    pe_http_arrivals_t *a = arg;
    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        int64_t now = pe_now_mono_us();
        for (pe_http_arrival_t *t = a->head; t; t = t->next) {
            int64_t deadline = atomic_load_explicit(&t->deadline_us, memory_order_relaxed);
            if (t->shut || deadline == 0 || now < deadline)
                continue;
            int phase = atomic_load_explicit(&t->phase, memory_order_acquire);
            if (phase == PHASE_HANDLING)
                continue; /* the request arrived in full just now */
            atomic_fetch_add_explicit(phase == PHASE_BODY ? &a->closed_body : &a->closed_header, 1,
                                      memory_order_relaxed);
            shut(a, t);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += REAPER_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->wake, &a->lock, &until);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

pe_http_arrivals_t *pe_http_arrivals_new(const pe_http_arrivals_config_t *cfg)
{
    pe_http_arrivals_t *a = calloc(1, sizeof *a);
    pthread_condattr_t attr;
    if (!a)
        return NULL;
    a->cfg = *cfg;
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&a->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&a->reaper, NULL, reaper_main, a) != 0) {
        pthread_cond_destroy(&a->wake);
        pthread_mutex_destroy(&a->lock);
        free(a);
        return NULL;
    }
    return a;
}

void pe_http_arrivals_free(pe_http_arrivals_t *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->reaper, NULL);
    /* libmicrohttpd reported every connection closed before this (see the header); a tracker
     * still here belongs to nobody. */
    for (pe_http_arrival_t *t = a->head, *next; t; t = next) {
        next = t->next;
        free(t);
    }
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void pe_http_arrivals_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode code)
{
    pe_http_arrivals_t *a = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        pe_http_arrival_t *t = ci ? calloc(1, sizeof *t) : NULL;
        *socket_context = t;
        if (!t)
            return; /* untracked: only the idle timeout applies to it */
        t->owner = a;
        t->fd = ci->connect_fd;
        enter(t, PHASE_WAITING, pe_now_mono_us(), seconds_us(a->cfg.header_timeout_s));
        pthread_mutex_lock(&a->lock);
        t->next = a->head;
        if (a->head)
            a->head->prev = t;
        a->head = t;
        a->live++;
        while (a->live > a->cfg.max_connections) {
            pe_http_arrival_t *victim = longest_waiting(a);
            if (!victim)
                break; /* cannot happen: t itself waits */
            atomic_fetch_add_explicit(&a->evicted, 1, memory_order_relaxed);
            shut(a, victim);
        }
        pthread_mutex_unlock(&a->lock);
        return;
    }
    pe_http_arrival_t *t = *socket_context;
    if (code != MHD_CONNECTION_NOTIFY_CLOSED || !t)
        return;
    *socket_context = NULL;
    pthread_mutex_lock(&a->lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        a->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (!t->shut)
        a->live--;
    pthread_mutex_unlock(&a->lock);
    free(t);
}

pe_http_arrival_t *pe_http_arrival_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void pe_http_arrival_headers_done(pe_http_arrival_t *t, bool expects_body)
{
    if (!t)
        return;
    if (expects_body)
        enter(t, PHASE_BODY, pe_now_mono_us(), seconds_us(t->owner->cfg.body_timeout_s));
    else
        enter(t, PHASE_HANDLING, 0, 0);
}

void pe_http_arrival_body_done(pe_http_arrival_t *t)
{
    if (t && atomic_load_explicit(&t->phase, memory_order_relaxed) != PHASE_HANDLING)
        enter(t, PHASE_HANDLING, 0, 0);
}

void pe_http_arrival_request_done(pe_http_arrival_t *t)
{
    if (!t)
        return;
    const pe_http_arrivals_config_t *cfg = &t->owner->cfg;
    enter(t, PHASE_WAITING, pe_now_mono_us(),
          seconds_us(cfg->idle_timeout_s) + seconds_us(cfg->header_timeout_s));
}

int pe_http_arrivals_metrics(pe_http_arrivals_t *a, pe_buf_t *out)
{
    pthread_mutex_lock(&a->lock);
    unsigned live = a->live;
    pthread_mutex_unlock(&a->lock);
    int rc = pe_buf_printf(
        out,
        "# HELP pe_http_connections_open Client connections open (not being closed).\n"
        "# TYPE pe_http_connections_open gauge\n"
        "pe_http_connections_open %u\n"
        "# HELP pe_http_connections_closed_total Connections the server closed: a request that "
        "did not arrive in time, or a waiting connection closed to make room for a new one.\n"
        "# TYPE pe_http_connections_closed_total counter\n"
        "pe_http_connections_closed_total{reason=\"header_timeout\"} %llu\n"
        "pe_http_connections_closed_total{reason=\"body_timeout\"} %llu\n"
        "pe_http_connections_closed_total{reason=\"evicted\"} %llu\n",
        live, (unsigned long long)atomic_load(&a->closed_header),
        (unsigned long long)atomic_load(&a->closed_body),
        (unsigned long long)atomic_load(&a->evicted));
    return rc ? PE_ENOMEM : 0;
}
