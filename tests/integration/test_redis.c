/*
 * test_redis.c — the Redis wrapper against the real test Redis: commands, TTLs, pub/sub,
 * binary-safe keys, failures (missing keys, unreachable servers, timeouts) and reconnection
 * after the server drops the connection.
 *
 * Invariants:
 *  1. Every key is under a prefix unique to this program (pe_t:<pid>:), so test programs can
 *     share one Redis; the prefix's keys are deleted at the end.
 *  2. The test pokes the server (CLIENT KILL, CLIENT PAUSE, SUBSCRIBE) through a raw hiredis
 *     context of its own, never through the wrapper's, and kills only the wrapper's connection.
 *  3. What the shared Redis must not undergo (a password, a restart) happens on a private
 *     redis-server this program starts on a free port and always stops.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "pe/redis.h"
#include "pe_test.h"
#include "redis/url.h"

#define TIMEOUT_MS 1000

static pe_redis_t *g_redis;
static char g_prefix[64];

/* A key under this program's prefix. */
static const char *key(const char *name, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%s%s", g_prefix, name);
    return buf;
}

/* A raw hiredis context on the test Redis (with AUTH and SELECT as the URL says). */
static redisContext *raw_connect(void)
{
    pe_redis_url_t u;
    char err[256];
    struct timeval tv = {2, 0};
    redisContext *c;
    redisReply *rep;

    if (pe_redis_url_parse(pe_test_redis_url(), &u, err, sizeof(err)) != 0)
        fail_msg("PE_REDIS_URL: %s", err);
    c = u.is_unix ? redisConnectUnixWithTimeout(u.path, tv)
                  : redisConnectWithTimeout(u.host, u.port, tv);
    if (!c || c->err)
        fail_msg("raw connect: %s", c ? c->errstr : "out of memory");
    redisSetTimeout(c, tv);
    if (u.password[0]) {
        rep = u.user[0] ? redisCommand(c, "AUTH %s %s", u.user, u.password)
                        : redisCommand(c, "AUTH %s", u.password);
        assert_non_null(rep);
        freeReplyObject(rep);
    }
    rep = redisCommand(c, "SELECT %d", u.db);
    assert_non_null(rep);
    freeReplyObject(rep);
    return c;
}

static int group_setup(void **state)
{
    (void)state;
    char err[256] = "";
    char hex[9];

    pe_random_hex(hex, 4);
    snprintf(g_prefix, sizeof(g_prefix), "pe_t:%d:%s:", (int)getpid(), hex);
    g_redis = pe_redis_new(pe_test_redis_url(), TIMEOUT_MS, err, sizeof(err));
    if (!g_redis)
        fprintf(stderr, "pe_redis_new: %s\n", err);
    return g_redis ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    redisContext *c = raw_connect();
    redisReply *rep = redisCommand(c, "KEYS %s*", g_prefix);

    for (size_t i = 0; rep && i < rep->elements; i++)
        freeReplyObject(redisCommand(c, "DEL %b", rep->element[i]->str, rep->element[i]->len));
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    pe_redis_free(g_redis);
    return 0;
}

static void test_ping(void **state)
{
    (void)state;
    assert_int_equal(pe_redis_ping(g_redis), 0);
    assert_int_equal(pe_redis_ping(g_redis), 0);
}

static void test_set_get_del(void **state)
{
    (void)state;
    char k[128];
    char *v = NULL;
    size_t n = 0;

    key("plain", k, sizeof(k));
    assert_int_equal(pe_redis_set(g_redis, k, strlen(k), "hello", 5, 0), 0);
    assert_int_equal(pe_redis_get(g_redis, k, strlen(k), &v, &n), 0);
    assert_int_equal(n, 5);
    assert_string_equal(v, "hello");
    free(v);
    /* Overwrite, then an empty value (present, not missing). */
    assert_int_equal(pe_redis_set(g_redis, k, strlen(k), "", 0, 0), 0);
    assert_int_equal(pe_redis_get(g_redis, k, strlen(k), &v, &n), 0);
    assert_int_equal(n, 0);
    assert_string_equal(v, "");
    free(v);
    assert_int_equal(pe_redis_del(g_redis, k, strlen(k)), 0);
    v = (char *)k; /* must be reset to NULL */
    assert_int_equal(pe_redis_get(g_redis, k, strlen(k), &v, &n), PE_ENOTFOUND);
    assert_null(v);
    assert_int_equal(n, 0);
    /* DEL of a key that is not there is fine too. */
    assert_int_equal(pe_redis_del(g_redis, k, strlen(k)), 0);
    assert_int_equal(pe_redis_get(g_redis, k, strlen(k), &v, NULL), PE_ENOTFOUND);
}

static void test_ttl(void **state)
{
    (void)state;
    char k[128];
    char *v = NULL;
    redisContext *raw = raw_connect();

    key("ttl", k, sizeof(k));
    /* Long enough that a busy machine still reads it before it expires; then it goes. */
    assert_int_equal(pe_redis_set(g_redis, k, strlen(k), "soon gone", 9, 1500), 0);
    redisReply *rep = redisCommand(raw, "PTTL %s", k);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_true(rep->integer > 0 && rep->integer <= 1500);
    freeReplyObject(rep);
    assert_int_equal(pe_redis_get(g_redis, k, strlen(k), &v, NULL), 0);
    free(v);
    int gone = 0;
    for (int64_t t0 = pe_now_mono_us();
         (gone = pe_redis_get(g_redis, k, strlen(k), &v, NULL)) == 0 &&
         pe_now_mono_us() - t0 < (int64_t)PE_TEST_WAIT_MS * 1000;) {
        free(v);
        v = NULL;
        usleep(50 * 1000);
    }
    assert_int_equal(gone, PE_ENOTFOUND);

    /* ttl_ms ≤ 0: no expiry. */
    assert_int_equal(pe_redis_set(g_redis, k, strlen(k), "kept", 4, 0), 0);
    rep = redisCommand(raw, "PTTL %s", k);
    assert_int_equal(rep->integer, -1);
    freeReplyObject(rep);
    redisFree(raw);
}

static void test_binary_safe_keys_and_values(void **state)
{
    (void)state;
    char k1[128], k2[128];
    const char val[] = {'v', '\0', '\r', '\n', '\xff', 'z'};
    char *v = NULL;
    size_t n = 0, plen = strlen(g_prefix);

    /* k1 = prefix + "a\0b\r\n", k2 = prefix + "a": a C-string API would confuse them. */
    memcpy(k1, g_prefix, plen);
    memcpy(k1 + plen, "a\0b\r\n", 5);
    memcpy(k2, g_prefix, plen);
    k2[plen] = 'a';
    assert_int_equal(pe_redis_set(g_redis, k1, plen + 5, val, sizeof(val), 0), 0);
    assert_int_equal(pe_redis_set(g_redis, k2, plen + 1, "short", 5, 0), 0);
    assert_int_equal(pe_redis_get(g_redis, k1, plen + 5, &v, &n), 0);
    assert_int_equal(n, sizeof(val));
    assert_memory_equal(v, val, sizeof(val));
    assert_int_equal(v[n], '\0'); /* NUL-terminated for convenience */
    free(v);
    assert_int_equal(pe_redis_get(g_redis, k2, plen + 1, &v, &n), 0);
    assert_string_equal(v, "short");
    free(v);
    assert_int_equal(pe_redis_del(g_redis, k1, plen + 5), 0);
    assert_int_equal(pe_redis_get(g_redis, k2, plen + 1, &v, &n), 0); /* untouched */
    free(v);
}

static void test_publish(void **state)
{
    (void)state;
    char ch[128];
    long long receivers = -1;
    redisContext *sub = raw_connect();
    redisReply *rep;
    const char msg[] = {'f', 'l', 'a', 'g', '\0', '!'};

    key("channel", ch, sizeof(ch));
    assert_int_equal(pe_redis_publish(g_redis, ch, "nobody", 6, &receivers), 0);
    assert_int_equal(receivers, 0);
    assert_int_equal(pe_redis_publish(g_redis, ch, "nobody", 6, NULL), 0);

    rep = redisCommand(sub, "SUBSCRIBE %s", ch);
    assert_non_null(rep);
    freeReplyObject(rep);
    assert_int_equal(pe_redis_publish(g_redis, ch, msg, sizeof(msg), &receivers), 0);
    assert_int_equal(receivers, 1);
    assert_int_equal(redisGetReply(sub, (void **)&rep), REDIS_OK);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_int_equal(rep->elements, 3);
    assert_string_equal(rep->element[0]->str, "message");
    assert_string_equal(rep->element[1]->str, ch);
    assert_int_equal(rep->element[2]->len, sizeof(msg));
    assert_memory_equal(rep->element[2]->str, msg, sizeof(msg));
    freeReplyObject(rep);
    redisFree(sub);
}

static void test_unreachable_is_unavailable_quickly(void **state)
{
    (void)state;
    char url[128], err[256] = "";
    char *v = NULL;

    /* Refused at once: nothing listens. */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)pe_test_free_port());
    pe_redis_t *r = pe_redis_new(url, 300, err, sizeof(err));
    assert_non_null(r);
    int64_t t0 = pe_now_mono_us();
    assert_int_equal(pe_redis_ping(r), PE_EUNAVAIL);
    assert_int_equal(pe_redis_set(r, "k", 1, "v", 1, 0), PE_EUNAVAIL);
    assert_int_equal(pe_redis_get(r, "k", 1, &v, NULL), PE_EUNAVAIL);
    assert_null(v);
    assert_int_equal(pe_redis_publish(r, "c", "m", 1, NULL), PE_EUNAVAIL);
    assert_true((pe_now_mono_us() - t0) / 1000 < 1000);
    assert_int_equal(pe_redis_reconnects(r), 0);
    pe_redis_free(r);

    /* A unix socket that does not exist. */
    r = pe_redis_new("unix:///tmp/pe-test-no-such.sock", 300, err, sizeof(err));
    assert_int_equal(pe_redis_ping(r), PE_EUNAVAIL);
    pe_redis_free(r);

    /* An address that drops packets (TEST-NET-1, RFC 5737): bounded by the connect timeout,
     * or refused at once where there is no route. */
    r = pe_redis_new("redis://192.0.2.1:6379", 300, err, sizeof(err));
    t0 = pe_now_mono_us();
    assert_int_equal(pe_redis_ping(r), PE_EUNAVAIL);
    int64_t ms = (pe_now_mono_us() - t0) / 1000;
    if (ms > 1500)
        fail_msg("connecting to a black hole took %lld ms with a 300 ms timeout", (long long)ms);
    pe_redis_free(r);
}

/* Ids of the server's clients, from CLIENT LIST, into ids[] (returns how many). */
static size_t client_ids(redisContext *raw, long long *ids, size_t max)
{
    redisReply *rep = redisCommand(raw, "CLIENT LIST TYPE normal");
    size_t n = 0;

    assert_non_null(rep);
    for (const char *p = rep->str; p && (p = strstr(p, "id=")) != NULL && n < max; p += 3) {
        if (p == rep->str || p[-1] == '\n')
            ids[n++] = strtoll(p + 3, NULL, 10);
    }
    freeReplyObject(rep);
    return n;
}

static bool contains(const long long *ids, size_t n, long long id)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == id)
            return true;
    }
    return false;
}

/* A new wrapper whose (first) connection has been killed by the server, and only it: the
 * client that appears when the wrapper connects, less our own, retried until exactly one
 * appears (other test programs may connect meanwhile). */
static pe_redis_t *wrapper_with_killed_connection(redisContext *raw)
{
    long long before[512], after[512];
    redisReply *me = redisCommand(raw, "CLIENT ID");
    long long my_id = me->integer;
    char err[256];

    freeReplyObject(me);
    for (int attempt = 0; attempt < 20; attempt++) {
        pe_redis_t *r = pe_redis_new(pe_test_redis_url(), TIMEOUT_MS, err, sizeof(err));
        size_t nb = client_ids(raw, before, 512);
        long long victim = -1;
        int fresh = 0;

        assert_non_null(r);
        assert_int_equal(pe_redis_ping(r), 0); /* connects */
        size_t na = client_ids(raw, after, 512);
        for (size_t i = 0; i < na; i++) {
            if (after[i] != my_id && !contains(before, nb, after[i])) {
                victim = after[i];
                fresh++;
            }
        }
        if (fresh == 1) {
            redisReply *rep = redisCommand(raw, "CLIENT KILL ID %lld", victim);
            assert_non_null(rep);
            assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
            assert_int_equal(rep->integer, 1);
            freeReplyObject(rep);
            usleep(50 * 1000); /* let the close reach the wrapper's socket */
            return r;
        }
        pe_redis_free(r);
        usleep(20 * 1000);
    }
    fail_msg("could not single out the wrapper's connection");
    return NULL;
}

static void test_reconnects_after_server_closes(void **state)
{
    (void)state;
    char k[128];
    char *v = NULL;
    redisContext *raw = raw_connect();

    key("reconnect", k, sizeof(k));
    pe_redis_t *r = wrapper_with_killed_connection(raw);
    assert_int_equal(pe_redis_reconnects(r), 0);
    /* The next command notices the closed connection, reconnects and succeeds. */
    assert_int_equal(pe_redis_set(r, k, strlen(k), "again", 5, 0), 0);
    assert_int_equal(pe_redis_reconnects(r), 1);
    assert_int_equal(pe_redis_get(r, k, strlen(k), &v, NULL), 0);
    assert_string_equal(v, "again");
    free(v);
    pe_redis_free(r);

    /* With a non-idempotent command: PUBLISH is not lost either, since the closed connection
     * is noticed before anything is sent on it. */
    r = wrapper_with_killed_connection(raw);
    assert_int_equal(pe_redis_publish(r, k, "x", 1, NULL), 0);
    assert_int_equal(pe_redis_reconnects(r), 1);
    pe_redis_free(r);
    redisFree(raw);
}

static void private_redis_start(pe_test_redis_server_t *p, uint16_t port, const char *password);

static void test_command_timeout(void **state)
{
    (void)state;
    char err[256], url[64];
    pe_test_redis_server_t p = {0};

    private_redis_start(&p, 0, NULL);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)p.port);
    pe_redis_t *r = pe_redis_new(url, 100, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(pe_redis_ping(r), 0);
    /* A private server, so its writes can pause far longer than the timeout without other
     * programs noticing: the command must come back at its own timeout, not when the pause
     * ends, however slow the machine is. */
    struct timeval tv = {2, 0};
    redisContext *raw = redisConnectWithTimeout("127.0.0.1", p.port, tv);
    assert_true(raw && !raw->err);
    redisReply *rep = redisCommand(raw, "CLIENT PAUSE 10000 WRITE");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    int64_t t0 = pe_now_mono_us();
    assert_int_equal(pe_redis_set(r, "paused", 6, "late", 4, 0), PE_ETIMEOUT);
    int64_t ms = (pe_now_mono_us() - t0) / 1000;
    assert_true(ms >= 90 && ms < 5000); /* the timeout, not the pause */
    freeReplyObject(redisCommand(raw, "CLIENT UNPAUSE"));
    assert_int_equal(pe_redis_ping(r), 0); /* a fresh connection after the timeout */
    assert_int_equal(pe_redis_reconnects(r), 1);
    pe_redis_free(r);
    redisFree(raw);
    pe_test_redis_server_kill(&p);
}

/* ---- a private redis-server (invariant 3) ---------------------------------------------------- */

/* Starts a private redis-server on port (a free one when 0); skips the test when redis-server
 * is not installed. */
static void private_redis_start(pe_test_redis_server_t *p, uint16_t port, const char *password)
{
    if (pe_test_redis_server_start(p, port, password) != 0)
        skip();
}

static void test_auth_and_select(void **state)
{
    (void)state;
    pe_test_redis_server_t p = {0};
    char url[256], err[256] = "";
    char *v = NULL;

    private_redis_start(&p, 0, "s3cr%t@x");
    /* The password percent-encoded; db 5. */
    snprintf(url, sizeof(url), "redis://:s3cr%%25t%%40x@127.0.0.1:%u/5", (unsigned)p.port);
    pe_redis_t *r = pe_redis_new(url, TIMEOUT_MS, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(pe_redis_set(r, "where", 5, "db5", 3, 0), 0);
    pe_redis_free(r);

    struct timeval tv = {2, 0};
    redisContext *raw = redisConnectWithTimeout("127.0.0.1", p.port, tv);
    assert_true(raw && !raw->err);
    freeReplyObject(redisCommand(raw, "AUTH %s", "s3cr%t@x"));
    redisReply *rep = redisCommand(raw, "GET where");
    assert_int_equal(rep->type, REDIS_REPLY_NIL); /* not in db 0 … */
    freeReplyObject(rep);
    freeReplyObject(redisCommand(raw, "SELECT 5"));
    rep = redisCommand(raw, "GET where");
    assert_int_equal(rep->type, REDIS_REPLY_STRING); /* … but in db 5 */
    assert_string_equal(rep->str, "db5");
    freeReplyObject(rep);

    /* A Redis 6 ACL user: AUTH user password. */
    rep = redisCommand(raw, "ACL SETUSER alice on >alicepw ~* +@all");
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    snprintf(url, sizeof(url), "redis://alice:alicepw@127.0.0.1:%u/5", (unsigned)p.port);
    r = pe_redis_new(url, TIMEOUT_MS, err, sizeof(err));
    assert_int_equal(pe_redis_get(r, "where", 5, &v, NULL), 0);
    assert_string_equal(v, "db5");
    free(v);
    pe_redis_free(r);
    redisFree(raw);

    /* Wrong or missing credentials: the server is there but will not serve us. */
    snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%u", (unsigned)p.port);
    r = pe_redis_new(url, TIMEOUT_MS, err, sizeof(err));
    assert_int_equal(pe_redis_ping(r), PE_EUNAVAIL);
    pe_redis_free(r);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)p.port);
    r = pe_redis_new(url, TIMEOUT_MS, err, sizeof(err));
    assert_int_equal(pe_redis_ping(r), PE_EUNAVAIL); /* NOAUTH */
    pe_redis_free(r);
    pe_test_redis_server_kill(&p);
}

static void test_server_restart(void **state)
{
    (void)state;
    pe_test_redis_server_t p = {0};
    char url[128], err[256] = "";
    char *v = NULL;

    private_redis_start(&p, 0, NULL);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)p.port);
    pe_redis_t *r = pe_redis_new(url, 300, err, sizeof(err));
    assert_int_equal(pe_redis_set(r, "k", 1, "v", 1, 0), 0);

    pe_test_redis_server_kill(&p);
    int64_t t0 = pe_now_mono_us();
    assert_int_equal(pe_redis_get(r, "k", 1, &v, NULL), PE_EUNAVAIL);
    assert_int_equal(pe_redis_ping(r), PE_EUNAVAIL);
    assert_true((pe_now_mono_us() - t0) / 1000 < 1000);

    private_redis_start(&p, p.port, NULL);
    assert_int_equal(pe_redis_ping(r), 0);
    assert_int_equal(pe_redis_reconnects(r), 1);
    assert_int_equal(pe_redis_get(r, "k", 1, &v, NULL), PE_ENOTFOUND); /* nothing was saved */
    pe_redis_free(r);
    pe_test_redis_server_kill(&p);
}

typedef struct {
    int id;
    int failures;
} hammer_t;

static void *hammer(void *arg)
{
    hammer_t *h = arg;
    char k[128], val[64];

    for (int i = 0; i < 200; i++) {
        char *v = NULL;
        snprintf(k, sizeof(k), "%sthread:%d", g_prefix, h->id);
        int n = snprintf(val, sizeof(val), "%d:%d", h->id, i);
        if (pe_redis_set(g_redis, k, strlen(k), val, (size_t)n, 0) != 0 ||
            pe_redis_get(g_redis, k, strlen(k), &v, NULL) != 0 || strcmp(v, val) != 0)
            h->failures++;
        free(v);
    }
    return NULL;
}

static void test_threads_share_a_client(void **state)
{
    (void)state;
    enum { THREADS = 6 };
    pthread_t t[THREADS];
    hammer_t h[THREADS];

    for (int i = 0; i < THREADS; i++) {
        h[i] = (hammer_t){.id = i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &h[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(h[i].failures, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_set_get_del),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_binary_safe_keys_and_values),
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_unreachable_is_unavailable_quickly),
        cmocka_unit_test(test_reconnects_after_server_closes),
        cmocka_unit_test(test_command_timeout),
        cmocka_unit_test(test_threads_share_a_client),
        cmocka_unit_test(test_auth_and_select),
        cmocka_unit_test(test_server_restart),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
