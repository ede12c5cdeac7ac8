/*
 * redis/subscribe.c — SUBSCRIBE on a connection of its own, in a thread: the way an
 * in-process cache learns at once that another instance changed what it caches.
 *
 *   CONNECTING ──connect, AUTH, SUBSCRIBE confirmed──▶ LIVE ──EOF / error / bad reply──▶ CONNECTING
 *        │                                             │                         (after 500 ms)
 *        └─────────────── stop ──▶ STOPPED ◀── stop ───┘
 *
 *   transition          function          what the caller is told
 *   CONNECTING → LIVE   sub_connect()     fn(NULL): resynchronise (messages published while
 *                                         nobody listened are lost: pub/sub is fire-and-forget)
 *   LIVE → CONNECTING   subscriber_main() live = false (the caller's other refresh path, e.g. a
 *                                         database poll, covers the gap)
 *
 * Invariants:
 *  1. The context is touched only by the subscriber's thread; other threads read `live` and
 *     `connects`, which are atomics.
 *  2. The thread never blocks for more than POLL_MS without checking `stopping`: it polls the
 *     socket and reads only what is there (redisBufferRead), so an idle subscription is not an
 *     error (a blocking read with a timeout would break the hiredis context).
 *  3. SIGPIPE is blocked for the whole thread (hiredis writes with write(2)).
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "pe/core.h"
#include "pe/redis.h"
#include "url.h"

#define POLL_MS      200
#define RECONNECT_MS 500

struct pe_redis_subscriber {
    pe_redis_url_t url;
    struct timeval timeout;
    char channel[128];
    pe_redis_message_fn fn;
    void *arg;
    pthread_t thread;
    atomic_bool stopping;
    atomic_bool live;
    _Atomic uint64_t connects;
};

static void sleep_ms(pe_redis_subscriber_t *s, int ms)
{
    for (int waited = 0; waited < ms && !atomic_load(&s->stopping); waited += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static bool reply_ok(redisReply *rep)
{
    return rep && rep->type != REDIS_REPLY_ERROR;
}

/* Connects, authenticates and subscribes; returns the context or NULL. */
static redisContext *sub_connect(pe_redis_subscriber_t *s)
{
    redisContext *c = s->url.is_unix
                          ? redisConnectUnixWithTimeout(s->url.path, s->timeout)
                          : redisConnectWithTimeout(s->url.host, s->url.port, s->timeout);
    redisReply *rep = NULL;
    if (!c || c->err || redisSetTimeout(c, s->timeout) != REDIS_OK)
        goto fail;
    if (s->url.password[0]) {
        const char *argv[3] = {"AUTH", s->url.user, s->url.password};
        size_t lens[3] = {4, strlen(s->url.user), strlen(s->url.password)};
        rep = s->url.user[0] ? redisCommandArgv(c, 3, argv, lens)
                             : redisCommandArgv(c, 2, (const char *[]){"AUTH", s->url.password},
                                                (size_t[]){4, lens[2]});
        if (!reply_ok(rep))
            goto fail;
        freeReplyObject(rep);
        rep = NULL;
    }
    const char *argv[2] = {"SUBSCRIBE", s->channel};
    size_t lens[2] = {9, strlen(s->channel)};
    rep = redisCommandArgv(c, 2, argv, lens);
    /* ["subscribe", channel, 1] */
    if (!reply_ok(rep) || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
        goto fail;
    freeReplyObject(rep);
    return c;
fail:
    if (rep)
        freeReplyObject(rep);
    if (c)
        redisFree(c);
    return NULL;
}

/* Hands a buffered reply to fn. Returns false on a reply that is not a pub/sub message. */
static bool deliver(pe_redis_subscriber_t *s, redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return false;
    if (strcmp(rep->element[0]->str, "message") == 0 &&
        rep->element[1]->type == REDIS_REPLY_STRING && rep->element[2]->type == REDIS_REPLY_STRING)
        s->fn(s->arg, rep->element[1]->str, rep->element[2]->str, rep->element[2]->len);
    return true;
}

static void *subscriber_main(void *arg)
{
    pe_redis_subscriber_t *s = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* invariant 3 */
    bool logged = false;
    while (!atomic_load(&s->stopping)) {
        redisContext *c = sub_connect(s);
        if (!c) {
            if (!logged)
                pe_log(PE_LOG_WARN, "redis_subscribe_failed", "cannot subscribe to %s; retrying",
                       s->channel);
            logged = true;
            sleep_ms(s, RECONNECT_MS);
            continue;
        }
        if (logged)
            pe_log(PE_LOG_INFO, "redis_subscribed", "subscribed to %s again", s->channel);
        logged = false;
        atomic_fetch_add(&s->connects, 1);
        atomic_store(&s->live, true);
        s->fn(s->arg, NULL, NULL, 0);
        bool ok = true;
        while (ok && !atomic_load(&s->stopping)) {
            void *reply = NULL;
            if (redisGetReplyFromReader(c, &reply) != REDIS_OK) {
                ok = false;
                break;
            }
            if (reply) {
                ok = deliver(s, reply);
                freeReplyObject(reply);
                continue;
            }
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN, .revents = 0};
            int r = poll(&pfd, 1, POLL_MS);
            if (r > 0)
                ok = redisBufferRead(c) == REDIS_OK;
        }
        atomic_store(&s->live, false);
        redisFree(c);
        if (!ok && !atomic_load(&s->stopping)) {
            pe_log(PE_LOG_WARN, "redis_subscription_lost", "lost the subscription to %s",
                   s->channel);
            logged = true;
            sleep_ms(s, RECONNECT_MS);
        }
    }
    return NULL;
}

pe_redis_subscriber_t *pe_redis_subscribe(const char *url, int timeout_ms, const char *channel,
                                          pe_redis_message_fn fn, void *arg)
{
    char err[256];
    if (!url || !channel || !fn || strlen(channel) >= sizeof(((pe_redis_subscriber_t *)0)->channel))
        return NULL;
    pe_redis_subscriber_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (pe_redis_url_parse(url, &s->url, err, sizeof err) != 0) {
        free(s);
        return NULL;
    }
    if (timeout_ms <= 0)
        timeout_ms = 1000;
    s->timeout.tv_sec = timeout_ms / 1000;
    s->timeout.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
    snprintf(s->channel, sizeof s->channel, "%s", channel);
    s->fn = fn;
    s->arg = arg;
    if (pthread_create(&s->thread, NULL, subscriber_main, s) != 0) {
        explicit_bzero(&s->url, sizeof s->url);
        free(s);
        return NULL;
    }
    return s;
}

bool pe_redis_subscriber_live(const pe_redis_subscriber_t *s)
{
    return s && atomic_load(&((pe_redis_subscriber_t *)s)->live);
}

uint64_t pe_redis_subscriber_connects(const pe_redis_subscriber_t *s)
{
    return s ? atomic_load(&((pe_redis_subscriber_t *)s)->connects) : 0;
}

void pe_redis_subscriber_stop(pe_redis_subscriber_t *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    pthread_join(s->thread, NULL);
    explicit_bzero(&s->url, sizeof s->url);
    free(s);
}
