/*
 * test_slow_clients.c — the HTTP server in-process against clients that send their requests one
 * byte at a time ("slowloris"): the headers and the body each have a deadline that no trickle
 * extends, a full connection table makes room for new clients by closing the connection that
 * has waited longest for its request, and patient but honest clients are served.
 *
 * Invariants the tests hold the server to (PE_HEADER_TIMEOUT 2 s, PE_BODY_TIMEOUT 3 s,
 * PE_CONNECTION_TIMEOUT 20 s, 32 connections):
 *  1. A connection trickling its headers is closed after the header deadline, not before, and
 *     long before the idle timeout, although a byte arrives every 300 ms.
 *  2. The same for a body, counted from the end of the headers.
 *  3. Three times as many trickling connections as the table holds (more than libmicrohttpd
 *     itself admits) never keep a request from being answered, and all of them are gone once
 *     the header deadline has passed.
 *  4. Headers and a body that arrive in pieces within their deadlines, and a keep-alive
 *     connection that idles longer than the header deadline between two requests, are served.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pe/http.h"
#include "pe_test.h"

#define HEADER_TIMEOUT_S 2
#define BODY_TIMEOUT_S   3
#define MAX_CONNECTIONS  32
#define TRICKLE_MS       300

static pe_http_server_t *server;
static uint16_t port;
static char base[64];

static int hello(pe_http_request_t *req)
{
    return pe_http_reply_json(req, 200, "{\"hello\":true}", 14);
}

static int echo(pe_http_request_t *req)
{
    size_t len;
    const char *body = pe_http_body(req, &len);
    return pe_http_reply(req, 200, "text/plain", body, len);
}

static const pe_http_route_t ROUTES[] = {
    {"GET", "/hello", hello, PE_AUTH_NONE, 0, 0, NULL},
    {"POST", "/echo", echo, PE_AUTH_NONE, 64 * 1024, 0, NULL},
};

/* ---- raw connections ------------------------------------------------------------------------- */

static int dial(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("connect: %s", strerror(errno));
    return fd;
}

/* Sends s; false when the server has closed the connection. */
static bool say(int fd, const char *s)
{
    size_t n = strlen(s);
    return send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* True when the server has closed fd (EOF or reset), without waiting. Bytes it sent are read and
 * dropped. */
static bool closed_by_server(int fd)
{
    char buf[512];
    for (;;) {
        struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
        if (poll(&p, 1, 0) <= 0)
            return false;
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return true;
        if (r < 0)
            return false;
    }
}

/* Trickles s one byte every TRICKLE_MS (from its start again when it runs out) until the server
 * closes the connection or give_up_ms pass. Returns the milliseconds until it was closed, or -1. */
static long trickle_until_closed(int fd, const char *s, long give_up_ms)
{
    int64_t t0 = pe_now_mono_us();
    size_t i = 0, n = strlen(s);
    for (;;) {
        long ms = (long)((pe_now_mono_us() - t0) / 1000);
        if (closed_by_server(fd))
            return ms;
        if (ms > give_up_ms)
            return -1;
        char one[2] = {s[i++ % n], '\0'};
        if (!say(fd, one))
            return (long)((pe_now_mono_us() - t0) / 1000);
        pe_test_sleep_ms(TRICKLE_MS);
    }
}

/* Reads one response (headers and a Content-Length body) from fd within timeout_ms into out. */
static bool read_response(int fd, pe_buf_t *out, int timeout_ms)
{
    int64_t deadline = pe_now_mono_us() + (int64_t)timeout_ms * 1000;
    pe_buf_reset(out);
    for (;;) {
        const char *end = out->data ? strstr(out->data, "\r\n\r\n") : NULL;
        const char *cl = out->data ? strstr(out->data, "Content-Length: ") : NULL;
        if (end && cl && cl < end) {
            size_t want = (size_t)(end + 4 - out->data) + strtoul(cl + 16, NULL, 10);
            if (out->len >= want)
                return true;
        }
        int left = (int)((deadline - pe_now_mono_us()) / 1000);
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return false;
        char buf[1024];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0 || pe_buf_append(out, buf, (size_t)r) != 0)
            return false;
    }
}

/* ---- metrics -----------------------------------------------------------------------------------
 */

static unsigned long long closed_count(const char *reason)
{
    pe_buf_t m = PE_BUF_INIT;
    assert_int_equal(pe_http_server_metrics(server, &m), 0);
    char needle[96];
    snprintf(needle, sizeof needle, "pe_http_connections_closed_total{reason=\"%s\"} ", reason);
    const char *p = strstr(m.data, needle);
    assert_non_null(p);
    unsigned long long v = strtoull(p + strlen(needle), NULL, 10);
    pe_buf_free(&m);
    return v;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_trickled_headers_are_cut(void **state)
{
    (void)state;
    unsigned long long before = closed_count("header_timeout");
    int fd = dial();
    assert_true(say(fd, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    long ms = trickle_until_closed(fd, "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 15000);
    close(fd);
    if (ms < 0)
        fail_msg("a connection trickling its headers was still open after 15 s");
    /* the deadline counts from the connection (≤ 100 ms before t0), the reaper looks every
     * 100 ms; the upper bound is what ASan on two busy cores needs, far below the 20 s idle
     * timeout that each trickled byte would restart */
    if (ms < HEADER_TIMEOUT_S * 1000 - 200 || ms > HEADER_TIMEOUT_S * 1000 + 8000)
        fail_msg("closed after %ld ms; the header deadline is %d s", ms, HEADER_TIMEOUT_S);
    assert_true(closed_count("header_timeout") > before);
}

static void test_trickled_body_is_cut(void **state)
{
    (void)state;
    unsigned long long before = closed_count("body_timeout");
    int fd = dial();
    assert_true(say(fd, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                        "Content-Type: text/plain\r\n\r\n"));
    long ms = trickle_until_closed(fd, "b", 15000);
    close(fd);
    if (ms < 0)
        fail_msg("a connection trickling its body was still open after 15 s");
    if (ms < BODY_TIMEOUT_S * 1000 - 200 || ms > BODY_TIMEOUT_S * 1000 + 8000)
        fail_msg("closed after %ld ms; the body deadline is %d s", ms, BODY_TIMEOUT_S);
    assert_true(closed_count("body_timeout") > before);
}

typedef struct {
    int fds[3 * MAX_CONNECTIONS];
    size_t n;
    atomic_bool stop;
} swarm_t;

static void *trickle_all(void *arg)
{
    swarm_t *s = arg;
    while (!atomic_load(&s->stop)) {
        for (size_t i = 0; i < s->n; i++)
            say(s->fds[i], "a"); /* fails once the server closed it: that is the point */
        pe_test_sleep_ms(TRICKLE_MS);
    }
    return NULL;
}

static void test_health_answers_while_slow_clients_fill_the_table(void **state)
{
    (void)state;
    unsigned long long evicted = closed_count("evicted");
    swarm_t s = {.n = 3 * MAX_CONNECTIONS};
    for (size_t i = 0; i < s.n; i++) {
        s.fds[i] = dial();
        assert_true(say(s.fds[i], "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
    }
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, trickle_all, &s), 0);
    /* Health checks for longer than the header deadline, while the swarm keeps the table full. */
    char url[128];
    snprintf(url, sizeof url, "%s/hello", base);
    int64_t t0 = pe_now_mono_us();
    int answered = 0;
    while (pe_now_mono_us() - t0 < (HEADER_TIMEOUT_S + 2) * 1000000LL) {
        pe_test_response_t r;
        int64_t c0 = pe_now_mono_us();
        int rc = pe_test_http("GET", url, NULL, NULL, &r);
        long status = rc == 0 ? r.status : 0;
        pe_test_response_free(&r);
        if (status != 200)
            fail_msg("health check %d answered %ld (curl %d) after %lld ms with %zu slow "
                     "clients",
                     answered + 1, status, rc, (long long)((pe_now_mono_us() - c0) / 1000), s.n);
        answered++;
        pe_test_sleep_ms(100);
    }
    atomic_store(&s.stop, true);
    pthread_join(t, NULL);
    assert_true(answered >= 10);
    assert_true(closed_count("evicted") > evicted);
    /* Every slow client is gone: evicted, or cut at its header deadline. */
    int64_t deadline = pe_now_mono_us() + (HEADER_TIMEOUT_S + 8) * 1000000LL;
    for (size_t i = 0; i < s.n; i++) {
        while (!closed_by_server(s.fds[i]) && pe_now_mono_us() < deadline)
            pe_test_sleep_ms(20);
        if (!closed_by_server(s.fds[i]))
            fail_msg("slow client %zu is still connected", i);
        close(s.fds[i]);
    }
}

static void test_patient_clients_are_served(void **state)
{
    (void)state;
    pe_buf_t resp = PE_BUF_INIT;
    /* headers in three pieces and a body in two, each within its deadline */
    int fd = dial();
    assert_true(say(fd, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    pe_test_sleep_ms(500);
    assert_true(say(fd, "Content-Type: text/plain\r\nContent-Length: 10\r\n"));
    pe_test_sleep_ms(500);
    assert_true(say(fd, "\r\n01234"));
    pe_test_sleep_ms(1000);
    assert_true(say(fd, "56789"));
    assert_true(read_response(fd, &resp, 10000));
    assert_non_null(strstr(resp.data, "HTTP/1.1 200"));
    assert_non_null(strstr(resp.data, "\r\n\r\n0123456789"));
    /* keep-alive: idle longer than the header deadline, then the next request */
    pe_test_sleep_ms((HEADER_TIMEOUT_S + 1) * 1000);
    assert_false(closed_by_server(fd));
    assert_true(say(fd, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    assert_true(read_response(fd, &resp, 10000));
    assert_non_null(strstr(resp.data, "HTTP/1.1 200"));
    close(fd);
    pe_buf_free(&resp);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    pe_log_set_level(PE_LOG_WARN);
    pe_http_router_t *router = pe_test_router_new(ROUTES, PE_ARRAY_LEN(ROUTES));
    pe_http_server_config_t cfg = {
        .host = "127.0.0.1",
        .threads = 2,
        .max_connections = MAX_CONNECTIONS,
        .conn_timeout_s = 20,
        .header_timeout_s = HEADER_TIMEOUT_S,
        .body_timeout_s = BODY_TIMEOUT_S,
    };
    char err[256];
    server = pe_http_server_new(&cfg, router, err, sizeof err);
    assert_non_null(server);
    assert_int_equal(pe_http_server_start(server, err, sizeof err), 0);
    port = pe_http_server_port(server);
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pe_http_server_free(server);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trickled_headers_are_cut),
        cmocka_unit_test(test_trickled_body_is_cut),
        cmocka_unit_test(test_health_answers_while_slow_clients_fill_the_table),
        cmocka_unit_test(test_patient_clients_are_served),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
