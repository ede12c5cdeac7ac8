/*
 * test_url.c — the Redis URL grammar without a server: a table of accepted URLs with the fields
 * they must yield, and a table of refused ones with a word the reason must contain.
 *
 * Invariant: no refusal message ever repeats the password of the URL it refuses.
 */
#include <string.h>

#include "pe/redis.h"
#include "pe_test.h"
#include "redis/url.h"

typedef struct {
    const char *url;
    bool is_unix;
    const char *host;
    int port;
    const char *path;
    int db;
    const char *user;
    const char *password;
} accept_t;

typedef struct {
    const char *url;
    const char *reason; /* a substring of the message */
} reject_t;

static void test_accepted(void **state)
{
    (void)state;
    static const accept_t cases[] = {
        {"redis://localhost", false, "localhost", 6379, "", 0, "", ""},
        {"redis://127.0.0.1:6380", false, "127.0.0.1", 6380, "", 0, "", ""},
        {"redis://127.0.0.1:6380/2", false, "127.0.0.1", 6380, "", 2, "", ""},
        {"redis://cache.internal/", false, "cache.internal", 6379, "", 0, "", ""},
        {"redis://:s3cret@redis-1:1/15", false, "redis-1", 1, "", 15, "", "s3cret"},
        {"redis://app:p%40ss%2Fw0rd@h:65535", false, "h", 65535, "", 0, "app", "p@ss/w0rd"},
        {"redis://:a@b@host", false, "host", 6379, "", 0, "", "a@b"},
        {"redis://[::1]:6379/0", false, "::1", 6379, "", 0, "", ""},
        {"redis://[::1]", false, "::1", 6379, "", 0, "", ""},
        {"REDIS://Host_1", false, "Host_1", 6379, "", 0, "", ""},
        {"unix:///tmp/redis.sock", true, "", 0, "/tmp/redis.sock", 0, "", ""},
        {"unix:///run/r.sock?db=5", true, "", 0, "/run/r.sock", 5, "", ""},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        const accept_t *c = &cases[i];
        pe_redis_url_t u;
        char err[256] = "";
        int rc = pe_redis_url_parse(c->url, &u, err, sizeof(err));

        if (rc != 0)
            fail_msg("%s: refused: %s", c->url, err);
        if (u.is_unix != c->is_unix || strcmp(u.host, c->host) != 0 || u.port != c->port ||
            strcmp(u.path, c->path) != 0 || u.db != c->db || strcmp(u.user, c->user) != 0 ||
            strcmp(u.password, c->password) != 0)
            fail_msg("%s: got unix=%d host=%s port=%d path=%s db=%d user=%s", c->url, u.is_unix,
                     u.host, u.port, u.path, u.db, u.user);
        assert_int_equal(pe_redis_url_check(c->url, err, sizeof(err)), 0);
    }
}

static void test_refused(void **state)
{
    (void)state;
    char longpath[300];
    memcpy(longpath, "unix:///", 8);
    memset(longpath + 8, 'a', 200);
    longpath[208] = '\0';
    const reject_t cases[] = {
        {NULL, "empty"},
        {"", "empty"},
        {"localhost:6379", "scheme"},
        {"http://localhost", "scheme"},
        {"rediss://secure-host:6380", "TLS"},
        {"redis://", "missing host"},
        {"redis://:6379", "missing host"},
        {"redis://host:0", "port"},
        {"redis://host:65536", "port"},
        {"redis://host:-1", "port"},
        {"redis://host:6379x", "port"},
        {"redis://host:", "port"},
        {"redis://host/db1", "database"},
        {"redis://host/1/2", "database"},
        {"redis://host/1000000", "database"},
        {"redis://host/1?timeout=3", "query"},
        {"redis://host#frag", "query"},
        {"redis://s3cret@host", "user info"},
        {"redis://:@host", "empty password"},
        {"redis://:p%zzx@host", "percent"},
        {"redis://:p%00x@host", "percent"},
        {"redis://:p%4@host", "percent"},
        {"redis://::1:6379", "brackets"},
        {"redis://[::1", "unterminated"},
        {"redis://[::1]x", "after"},
        {"redis://[::g]", "IPv6"},
        {"redis://ho$t", "host"},
        {"redis://host name", "space"},
        {"redis://host\n", "control"},
        {"unix://tmp/redis.sock", "absolute"},
        {"unix:///", "missing"},
        {"unix:///tmp/r.sock?password=x", "unknown parameter"},
        {"unix:///tmp/r.sock?db=x", "db must be"},
        {"unix:///tmp/r.sock?db=", "db must be"},
        {"unix://:pw@/tmp/r.sock", "absolute"},
        {"unix:///tmp/r@sock", "only a path"},
        {longpath, "longer"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        pe_redis_url_t u;
        char err[256] = "";
        int rc = pe_redis_url_parse(cases[i].url, &u, err, sizeof(err));

        if (rc != PE_EINVAL)
            fail_msg("%s: accepted, want refusal (%s)", cases[i].url, cases[i].reason);
        if (!strstr(err, cases[i].reason))
            fail_msg("%s: reason \"%s\" does not mention \"%s\"", cases[i].url, err,
                     cases[i].reason);
        if (strncmp(err, "redis URL: ", 11) != 0)
            fail_msg("%s: reason \"%s\" does not say what it is about", cases[i].url, err);
    }
}

static void test_password_never_echoed(void **state)
{
    (void)state;
    static const char *const urls[] = {
        "redis://:hunter2@host:99999", "redis://:hunter2@host/x", "redis://admin:hunter2@ho$t",
        "redis://:hunter2@host?x=1",   "rediss://:hunter2@host",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(urls); i++) {
        char err[256] = "";
        assert_int_equal(pe_redis_url_check(urls[i], err, sizeof(err)), PE_EINVAL);
        if (strstr(err, "hunter2"))
            fail_msg("%s: the reason repeats the password: %s", urls[i], err);
    }
}

static void test_new_validates_without_connecting(void **state)
{
    (void)state;
    char err[256] = "";
    /* Nothing listens on port 1: construction must still succeed (connection is lazy). */
    pe_redis_t *r = pe_redis_new("redis://127.0.0.1:1/3", 200, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(pe_redis_reconnects(r), 0);
    pe_redis_free(r);
    pe_redis_free(NULL);

    assert_null(pe_redis_new("memcached://x", 200, err, sizeof(err)));
    assert_non_null(strstr(err, "scheme"));
    /* A tiny error buffer is filled, truncated, and NUL-terminated. */
    char tiny[8];
    assert_null(pe_redis_new("redis://host:0", 200, tiny, sizeof(tiny)));
    assert_true(strlen(tiny) < sizeof(tiny));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_password_never_echoed),
        cmocka_unit_test(test_new_validates_without_connecting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
