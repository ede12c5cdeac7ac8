/*
 * pe/redis.h — the Redis client wrapper: one place that includes hiredis, with connect and
 * command timeouts and transparent reconnection.
 *
 * Invariants:
 *  1. Only src/redis/ includes hiredis.
 *  2. A pe_redis_t is thread-safe: its hiredis context is used under a mutex and is never
 *     handed out. A command that fails on a broken connection reconnects once and retries
 *     idempotent commands once; after that it reports PE_EUNAVAIL.
 *  3. Keys are binary-safe (length-counted); callers hash-tag per-store keys as {storeId}.
 */
#ifndef PE_REDIS_H
#define PE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pe_redis pe_redis_t;

/* Parses url (redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]) and prepares a
 * client; connects lazily. Returns NULL with a one-line reason in err when the URL is invalid
 * or on ENOMEM. timeout_ms bounds connect and every command (≤ 0: 1000 ms). Caller frees with
 * pe_redis_free. */
pe_redis_t *pe_redis_new(const char *url, int timeout_ms, char *err, size_t errlen);
void pe_redis_free(pe_redis_t *r);
/* Validates a Redis URL without connecting. Returns 0 or PE_EINVAL (reason in err). */
int pe_redis_url_check(const char *url, char *err, size_t errlen);

/* PING. Returns 0 or PE_EUNAVAIL / PE_ETIMEOUT. */
int pe_redis_ping(pe_redis_t *r);
/* SET key value [PX ttl_ms when ttl_ms > 0]. */
int pe_redis_set(pe_redis_t *r, const char *key, size_t keylen, const char *val, size_t vallen,
                 int64_t ttl_ms);
/* GET: 0 with a malloc'ed copy in *out (NUL-terminated, length in *outlen; caller frees),
 * PE_ENOTFOUND when the key is absent, or PE_EUNAVAIL / PE_ETIMEOUT. */
int pe_redis_get(pe_redis_t *r, const char *key, size_t keylen, char **out, size_t *outlen);
/* DEL key. Returns 0 whether or not it existed. */
int pe_redis_del(pe_redis_t *r, const char *key, size_t keylen);
/* PUBLISH channel message; *receivers_out (optional) = subscribers reached. */
int pe_redis_publish(pe_redis_t *r, const char *channel, const char *msg, size_t msglen,
                     long long *receivers_out);
/* Reconnections performed so far (for /metrics). */
uint64_t pe_redis_reconnects(const pe_redis_t *r);

/* ---- subscriptions (a thread with a connection of its own) -------------------------------- */

typedef struct pe_redis_subscriber pe_redis_subscriber_t;
/* Called on the subscriber's thread: once per message with its channel and payload (borrowed
 * for the call), and with channel == NULL after every successful (re)subscription, when
 * messages may have been missed and whoever caches must resynchronise. Must not block long. */
typedef void (*pe_redis_message_fn)(void *arg, const char *channel, const char *msg, size_t len);

/* Starts a thread that connects to url (as pe_redis_new parses it), SUBSCRIBEs to channel and
 * calls fn; on any failure it reconnects after 500 ms, for ever. Returns NULL on a bad URL,
 * ENOMEM or when the thread cannot start (an unreachable server is not an error). */
pe_redis_subscriber_t *pe_redis_subscribe(const char *url, int timeout_ms, const char *channel,
                                          pe_redis_message_fn fn, void *arg);
/* True while subscribed (between a confirmed SUBSCRIBE and the first sign of a broken
 * connection). Thread-safe. */
bool pe_redis_subscriber_live(const pe_redis_subscriber_t *s);
/* Subscriptions made so far (1 + reconnections). Thread-safe. */
uint64_t pe_redis_subscriber_connects(const pe_redis_subscriber_t *s);
/* Stops the thread (within ~200 ms, or a connect timeout), closes, frees. Accepts NULL. */
void pe_redis_subscriber_stop(pe_redis_subscriber_t *s);

#endif /* PE_REDIS_H */
