/*
 * test_client.c — the wrapper's failure handling against a scripted fake Redis on a loopback
 * port: a dropped connection mid-command (retried once for idempotent commands, never for
 * PUBLISH), a stalled reply (PE_ETIMEOUT, no retry), and error or unexpected replies. A real
 * server cannot be made to fail at these exact moments.
 *
 * Invariant: the fake answers each command it receives with the next action of its script, in
 * order, whatever connection the command arrives on, and records every command it saw, so a
 * test can tell how many times a command was sent.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pe/redis.h"
#include "pe_test.h"

#define CLOSE  NULL /* close the connection without replying */
#define STALL  ""   /* reply nothing; close once the client has (or after IDLEMS) */
#define IDLEMS 2000 /* how long the fake waits for a client before giving up */

typedef struct {
    int lfd;
    uint16_t port;
    const char *const *script;
    size_t nscript;
    int accepted;
    pe_buf_t seen; /* every command received, raw RESP, in order */
    pthread_t thread;
} fake_t;

static bool wait_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    return poll(&p, 1, ms) > 0;
}

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    int cfd = -1;
    char buf[4096];

    for (size_t i = 0; i < f->nscript; i++) {
        const char *action = f->script[i];
        ssize_t n;

        if (cfd < 0) {
            if (!wait_readable(f->lfd, IDLEMS))
                break;
            cfd = accept(f->lfd, NULL, NULL);
            if (cfd < 0)
                break;
            f->accepted++;
        }
        if (!wait_readable(cfd, IDLEMS))
            break;
        n = read(cfd, buf, sizeof(buf));
        if (n <= 0) { /* the client went away: the action is for its next connection */
            close(cfd);
            cfd = -1;
            i--;
            continue;
        }
        pe_buf_append(&f->seen, buf, (size_t)n);
        if (action == CLOSE || action[0] == '\0') {
            /* STALL: wait for the client to give up on the connection */
            while (action != CLOSE && wait_readable(cfd, IDLEMS) && read(cfd, buf, sizeof(buf)) > 0)
                ;
            close(cfd);
            cfd = -1;
            continue;
        }
        if (write(cfd, action, strlen(action)) < 0)
            break;
    }
    if (cfd >= 0)
        close(cfd);
    return NULL;
}

static void fake_start(fake_t *f, const char *const *script, size_t n)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);

    memset(f, 0, sizeof(*f));
    f->script = script;
    f->nscript = n;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
    f->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

/* Waits for the script to finish (or the fake to give up) and closes the listener. */
static void fake_stop(fake_t *f)
{
    pthread_join(f->thread, NULL);
    close(f->lfd);
}

static pe_redis_t *client(const fake_t *f, int timeout_ms)
{
    char url[64], err[256];
    pe_redis_t *r;

    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)f->port);
    r = pe_redis_new(url, timeout_ms, err, sizeof(err));
    assert_non_null(r);
    return r;
}

static size_t count(const pe_buf_t *b, const char *needle)
{
    size_t n = 0;
    for (const char *p = b->data; p && (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_idempotent_command_is_retried_once(void **state)
{
    (void)state;
    static const char *const script[] = {CLOSE, "+PONG\r\n", CLOSE, CLOSE};
    fake_t f;

    fake_start(&f, script, 2);
    pe_redis_t *r = client(&f, 1000);
    assert_int_equal(pe_redis_ping(r), 0);
    assert_int_equal(pe_redis_reconnects(r), 1);
    pe_redis_free(r);
    fake_stop(&f);
    assert_int_equal(f.accepted, 2);
    assert_int_equal(count(&f.seen, "PING"), 2);
    pe_buf_free(&f.seen);

    /* Dropped twice in a row: one retry only, then PE_EUNAVAIL. */
    fake_start(&f, &script[2], 2);
    r = client(&f, 1000);
    assert_int_equal(pe_redis_set(r, "k", 1, "v", 1, 0), PE_EUNAVAIL);
    pe_redis_free(r);
    fake_stop(&f);
    assert_int_equal(count(&f.seen, "SET"), 2);
    pe_buf_free(&f.seen);
}

static void test_publish_is_not_retried(void **state)
{
    (void)state;
    static const char *const script[] = {CLOSE, "+PONG\r\n"};
    fake_t f;
    long long receivers = 7;

    fake_start(&f, script, PE_ARRAY_LEN(script));
    pe_redis_t *r = client(&f, 1000);
    assert_int_equal(pe_redis_publish(r, "ch", "once", 4, &receivers), PE_EUNAVAIL);
    assert_int_equal(receivers, 0);
    /* The next command goes out on a new connection and gets the next answer. */
    assert_int_equal(pe_redis_ping(r), 0);
    pe_redis_free(r);
    fake_stop(&f);
    assert_int_equal(count(&f.seen, "PUBLISH"), 1);
    assert_int_equal(count(&f.seen, "PING"), 1);
    pe_buf_free(&f.seen);
}

static void test_stalled_reply_times_out_without_retry(void **state)
{
    (void)state;
    static const char *const script[] = {STALL, "$2\r\nok\r\n"};
    fake_t f;
    char *v = NULL;

    fake_start(&f, script, PE_ARRAY_LEN(script));
    pe_redis_t *r = client(&f, 100);
    int64_t t0 = pe_now_mono_us();
    assert_int_equal(pe_redis_get(r, "k", 1, &v, NULL), PE_ETIMEOUT);
    int64_t ms = (pe_now_mono_us() - t0) / 1000;
    assert_true(ms >= 90 && ms < IDLEMS - 500); /* its timeout, not the fake giving up */
    assert_null(v);
    assert_int_equal(pe_redis_get(r, "k", 1, &v, NULL), 0);
    assert_string_equal(v, "ok");
    free(v);
    pe_redis_free(r);
    fake_stop(&f);
    assert_int_equal(count(&f.seen, "GET"), 2);
    pe_buf_free(&f.seen);
}

static void test_error_and_unexpected_replies(void **state)
{
    (void)state;
    static const char *const script[] = {
        "-ERR unknown command\r\n",            /* PING → a bug on our side */
        "-LOADING Redis is loading\r\n",       /* PING → not available yet */
        ":1\r\n",                              /* GET answered with an integer */
        "$-1\r\n",                             /* GET: missing */
        "+OK\r\n",                             /* DEL answered with a status */
        "-NOAUTH Authentication required\r\n", /* SET */
        "+OK\r\n",                             /* SET again, on a new connection */
    };
    fake_t f;
    char *v = NULL;

    fake_start(&f, script, PE_ARRAY_LEN(script));
    pe_redis_t *r = client(&f, 1000);
    assert_int_equal(pe_redis_ping(r), PE_EINTERNAL);
    assert_int_equal(pe_redis_ping(r), PE_EUNAVAIL);
    assert_int_equal(pe_redis_get(r, "k", 1, &v, NULL), PE_EINTERNAL);
    assert_null(v);
    assert_int_equal(pe_redis_get(r, "k", 1, &v, NULL), PE_ENOTFOUND);
    assert_int_equal(pe_redis_del(r, "k", 1), PE_EINTERNAL);
    assert_int_equal(pe_redis_set(r, "k", 1, "v", 1, 0), PE_EUNAVAIL);
    assert_int_equal(pe_redis_set(r, "k", 1, "v", 1, 0), 0);
    pe_redis_free(r);
    fake_stop(&f);
    /* LOADING and NOAUTH dropped the connection; the others kept it. */
    assert_int_equal(f.accepted, 3);
    pe_buf_free(&f.seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idempotent_command_is_retried_once),
        cmocka_unit_test(test_publish_is_not_retried),
        cmocka_unit_test(test_stalled_reply_times_out_without_retry),
        cmocka_unit_test(test_error_and_unexpected_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
