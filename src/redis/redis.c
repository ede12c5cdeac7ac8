/*
 * redis/redis.c — the one place that talks hiredis (0.14 blocking API): a context behind a
 * mutex, opened lazily, replaced when it breaks.
 *
 *   DISCONNECTED --connect_locked ok--> CONNECTED --command ok--> CONNECTED
 *        ^   |                              |
 *        |   +--connect failed: PE_EUNAVAIL |  I/O error, EOF, timeout, NOAUTH, or the socket
 *        |                                  |  is readable while idle (server closed it)
 *        +------------- drop_locked --------+
 *
 *   After drop_locked an idempotent command (PING, GET, SET, DEL) reconnects and is sent once
 *   more; PUBLISH is not (subscribers would see it twice), nor is any command after a timeout
 *   (the server may just be slow, and a retry would double the wait).
 *
 * Invariants:
 *  1. ctx is NULL or a connected context that has passed AUTH and SELECT; it is touched only
 *     with mu held (pe/redis.h invariant 2).
 *  2. A command is sent at most twice, and a second time only when idempotent.
 *  3. hiredis writes with write(2): a peer that closed the socket raises SIGPIPE, which would
 *     kill the process. Every exchange runs with SIGPIPE blocked in the calling thread, and a
 *     SIGPIPE raised meanwhile is consumed before unblocking (as libpq does).
 *  4. reconnects counts successful connections after the first; it is read without the mutex,
 *     so it is only touched with atomic builtins.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "pe/core.h"
#include "pe/redis.h"
#include "url.h"

#define DEFAULT_TIMEOUT_MS 1000

struct pe_redis {
    pthread_mutex_t mu;
    pe_redis_url_t url;
    char where[300]; /* host:port or socket path, for log lines (never the password) */
    struct timeval timeout;
    redisContext *ctx;   /* invariant 1 */
    bool had_connection; /* the next successful connect is a reconnect */
    bool down_logged;    /* log the first failure of an outage, not every one */
    uint64_t reconnects; /* invariant 4 */
};

typedef struct {
    sigset_t old;
    bool was_pending;
} sigpipe_guard_t;

static void sigpipe_block(sigpipe_guard_t *g)
{
    sigset_t set, pending;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_restore(sigpipe_guard_t *g)
{
    sigset_t set, pending;
    struct timespec zero = {0, 0};

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

int pe_redis_url_check(const char *url, char *err, size_t errlen)
{
    pe_redis_url_t u;
    int rc = pe_redis_url_parse(url, &u, err, errlen);

    explicit_bzero(u.password, sizeof(u.password));
    return rc;
}

/* timeout_ms ≤ 0 selects DEFAULT_TIMEOUT_MS: an unbounded wait is never what a server wants. */
pe_redis_t *pe_redis_new(const char *url, int timeout_ms, char *err, size_t errlen)
{
    pe_redis_t *r = calloc(1, sizeof(*r));

    if (!r) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (pe_redis_url_parse(url, &r->url, err, errlen) != 0)
        goto fail;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "cannot create a mutex");
        goto fail;
    }
    if (r->url.is_unix)
        snprintf(r->where, sizeof(r->where), "%s", r->url.path);
    else if (strchr(r->url.host, ':'))
        snprintf(r->where, sizeof(r->where), "[%s]:%d", r->url.host, r->url.port);
    else
        snprintf(r->where, sizeof(r->where), "%s:%d", r->url.host, r->url.port);
    if (timeout_ms <= 0)
        timeout_ms = DEFAULT_TIMEOUT_MS;
    r->timeout.tv_sec = timeout_ms / 1000;
    r->timeout.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
    return r;
fail:
    explicit_bzero(&r->url, sizeof(r->url));
    free(r);
    return NULL;
}

void pe_redis_free(pe_redis_t *r)
{
    if (!r)
        return;
    if (r->ctx)
        redisFree(r->ctx);
    pthread_mutex_destroy(&r->mu);
    explicit_bzero(&r->url, sizeof(r->url));
    free(r);
}

uint64_t pe_redis_reconnects(const pe_redis_t *r)
{
    return r ? __atomic_load_n(&r->reconnects, __ATOMIC_RELAXED) : 0;
}

static const char *where(const pe_redis_t *r)
{
    return r->where;
}

static void drop_locked(pe_redis_t *r, const char *why)
{
    if (!r->down_logged) {
        pe_log(PE_LOG_WARN, "redis_disconnected", "%s: %s", where(r), why);
        r->down_logged = true;
    }
    redisFree(r->ctx);
    r->ctx = NULL;
}

/* Server errors that mean "this server cannot serve us now" rather than "bad command". */
static bool error_means_unavailable(const char *msg)
{
    static const char *const prefixes[] = {"NOAUTH", "WRONGPASS",  "LOADING",
                                           "BUSY",   "MASTERDOWN", "OOM"};

    for (size_t i = 0; i < PE_ARRAY_LEN(prefixes); i++) {
        if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    }
    return false;
}

/* Sends one command on a fresh context during connect (AUTH, SELECT). */
static int setup_command(pe_redis_t *r, redisContext *c, int argc, const char **argv,
                         const size_t *lens)
{
    int rc = PE_EUNAVAIL;
    redisReply *rep = redisCommandArgv(c, argc, argv, lens);

    if (!rep) {
        pe_log(PE_LOG_WARN, "redis_connect_failed", "%s: %s: %s", where(r), argv[0], c->errstr);
        goto out;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        /* The message is the server's ("WRONGPASS …"); it does not contain the password. */
        pe_log(PE_LOG_ERROR, "redis_connect_failed", "%s: %s refused: %.200s", where(r), argv[0],
               rep->str);
        goto out;
    }
    rc = 0;
out:
    if (rep)
        freeReplyObject(rep);
    return rc;
}

static int connect_locked(pe_redis_t *r)
{
    int rc = PE_EUNAVAIL;
    redisContext *c;
    char db[16];

    if (r->url.is_unix)
        c = redisConnectUnixWithTimeout(r->url.path, r->timeout);
    else
        c = redisConnectWithTimeout(r->url.host, r->url.port, r->timeout);
    if (!c) {
        rc = PE_ENOMEM;
        goto out;
    }
    if (c->err) {
        if (!r->down_logged)
            pe_log(PE_LOG_WARN, "redis_connect_failed", "%s: %s", where(r), c->errstr);
        r->down_logged = true;
        goto out;
    }
    if (redisSetTimeout(c, r->timeout) != REDIS_OK)
        goto out;
    if (r->url.password[0]) {
        const char *argv[3] = {"AUTH", r->url.user, r->url.password};
        size_t lens[3] = {4, strlen(r->url.user), strlen(r->url.password)};
        /* AUTH user pass needs Redis 6; without a user name send the classic form. */
        bool with_user = r->url.user[0] != '\0';
        const char *argv2[2] = {"AUTH", r->url.password};
        size_t lens2[2] = {4, lens[2]};

        rc = with_user ? setup_command(r, c, 3, argv, lens) : setup_command(r, c, 2, argv2, lens2);
        if (rc != 0)
            goto out;
    }
    if (r->url.db != 0) {
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, 0};

        lens[1] = (size_t)snprintf(db, sizeof(db), "%d", r->url.db);
        rc = setup_command(r, c, 2, argv, lens);
        if (rc != 0)
            goto out;
    }
    if (r->had_connection)
        __atomic_add_fetch(&r->reconnects, 1, __ATOMIC_RELAXED);
    if (r->down_logged)
        pe_log(PE_LOG_INFO, "redis_connected", "%s", where(r));
    r->had_connection = true;
    r->down_logged = false;
    r->ctx = c;
    c = NULL;
    rc = 0;
out:
    if (c)
        redisFree(c);
    return rc == 0 ? 0 : (rc == PE_ENOMEM ? PE_ENOMEM : PE_EUNAVAIL);
}

/* Nothing is outstanding on an idle context, so anything readable is EOF or an error from a
 * server that has closed (or is closing) the connection. */
static bool idle_socket_ok(const redisContext *c)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN, .revents = 0};

    return poll(&pfd, 1, 0) == 0;
}

static bool is_timeout(const redisContext *c, int saved_errno)
{
    return c->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
                                      strstr(c->errstr, "temporarily unavailable") != NULL);
}

/* Runs one command under the mutex; *out is the reply (caller frees with freeReplyObject),
 * never an error reply. Returns 0, PE_EUNAVAIL, PE_ETIMEOUT, PE_ENOMEM or PE_EINTERNAL. */
static int command(pe_redis_t *r, bool idempotent, int argc, const char **argv, const size_t *lens,
                   redisReply **out)
{
    int rc = PE_EUNAVAIL;
    redisReply *rep = NULL;
    sigpipe_guard_t guard;

    *out = NULL;
    pthread_mutex_lock(&r->mu);
    assert(!r->ctx || r->ctx->err == 0); /* invariant 1: broken contexts are dropped at once */
    sigpipe_block(&guard);
    if (r->ctx && !idle_socket_ok(r->ctx))
        drop_locked(r, "connection closed by the server");
    for (int attempt = 0; attempt < 2; attempt++) {
        int saved_errno;

        if (!r->ctx) {
            rc = connect_locked(r);
            if (rc != 0)
                goto out;
        }
        errno = 0;
        rep = redisCommandArgv(r->ctx, argc, argv, lens);
        saved_errno = errno;
        if (rep)
            break;
        rc = is_timeout(r->ctx, saved_errno) ? PE_ETIMEOUT : PE_EUNAVAIL;
        drop_locked(r, rc == PE_ETIMEOUT ? "command timed out" : r->ctx->errstr);
        if (rc == PE_ETIMEOUT || !idempotent)
            goto out;
    }
    if (!rep)
        goto out;
    if (rep->type == REDIS_REPLY_ERROR) {
        pe_log(PE_LOG_WARN, "redis_error", "%s: %.200s", argv[0], rep->str);
        rc = error_means_unavailable(rep->str) ? PE_EUNAVAIL : PE_EINTERNAL;
        /* After NOAUTH and the like a fresh connection (with AUTH) is the way back. */
        if (rc == PE_EUNAVAIL)
            drop_locked(r, rep->str);
        goto out;
    }
    *out = rep;
    rep = NULL;
    rc = 0;
out:
    sigpipe_restore(&guard);
    pthread_mutex_unlock(&r->mu);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int pe_redis_ping(pe_redis_t *r)
{
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    redisReply *rep = NULL;
    int rc = command(r, true, 1, argv, lens, &rep);

    if (rc == 0 && rep->type != REDIS_REPLY_STATUS)
        rc = PE_EINTERNAL;
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int pe_redis_set(pe_redis_t *r, const char *key, size_t keylen, const char *val, size_t vallen,
                 int64_t ttl_ms)
{
    char ttl[24];
    const char *argv[5] = {"SET", key, val, "PX", ttl};
    size_t lens[5] = {3, keylen, vallen, 2, 0};
    redisReply *rep = NULL;
    int rc;

    lens[4] = (size_t)snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
    rc = command(r, true, ttl_ms > 0 ? 5 : 3, argv, lens, &rep);
    if (rc == 0 && rep->type != REDIS_REPLY_STATUS)
        rc = PE_EINTERNAL;
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int pe_redis_get(pe_redis_t *r, const char *key, size_t keylen, char **out, size_t *outlen)
{
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, keylen};
    redisReply *rep = NULL;
    int rc;

    *out = NULL;
    if (outlen)
        *outlen = 0;
    rc = command(r, true, 2, argv, lens, &rep);
    if (rc != 0)
        goto out;
    if (rep->type == REDIS_REPLY_NIL) {
        rc = PE_ENOTFOUND;
        goto out;
    }
    if (rep->type != REDIS_REPLY_STRING) {
        rc = PE_EINTERNAL;
        goto out;
    }
    *out = malloc(rep->len + 1);
    if (!*out) {
        rc = PE_ENOMEM;
        goto out;
    }
    memcpy(*out, rep->str, rep->len);
    (*out)[rep->len] = '\0';
    if (outlen)
        *outlen = rep->len;
    rc = 0;
out:
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int pe_redis_del(pe_redis_t *r, const char *key, size_t keylen)
{
    const char *argv[2] = {"DEL", key};
    size_t lens[2] = {3, keylen};
    redisReply *rep = NULL;
    int rc = command(r, true, 2, argv, lens, &rep);

    if (rc == 0 && rep->type != REDIS_REPLY_INTEGER)
        rc = PE_EINTERNAL;
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int pe_redis_publish(pe_redis_t *r, const char *channel, const char *msg, size_t msglen,
                     long long *receivers_out)
{
    const char *argv[3] = {"PUBLISH", channel, msg};
    size_t lens[3] = {7, strlen(channel), msglen};
    redisReply *rep = NULL;
    int rc = command(r, false, 3, argv, lens, &rep);

    if (receivers_out)
        *receivers_out = 0;
    if (rc == 0 && rep->type != REDIS_REPLY_INTEGER)
        rc = PE_EINTERNAL;
    if (rc == 0 && receivers_out)
        *receivers_out = rep->integer;
    if (rep)
        freeReplyObject(rep);
    return rc;
}
