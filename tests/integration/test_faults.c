/*
 * test_faults.c — `kill -9` of the server in the middle of sustained ingest (issue 22, faults):
 * storefront clients that behave like the SDK — each batch of events sent again, with the same
 * eventIds, until it is acknowledged — while the server is killed with SIGKILL and a new one
 * started on the same database, PE_FAULT_KILLS times (3 here; bench/faults/run runs 10).
 *
 * What it holds the server to:
 *  1. Nothing acknowledged is lost: every batch answered 200 is in PostgreSQL, every event of it.
 *  2. Nothing is counted twice: a batch stored and then sent again (its answer lost with the
 *     killed server) is stored once — count(*) equals count(DISTINCT eventId) equals the events
 *     sent.
 *  3. The clients all finish: a killed server costs retries, never a lost batch.
 *
 * And PostgreSQL stopped for PE_FAULT_PG_OUTAGE_S seconds (10) under the same load, the server
 * left running:
 *  4. Meanwhile every answer is 200 or 503 with Retry-After (never another status, never a
 *     dropped connection), and /readyz answers 503 naming postgres.
 *  5. When PostgreSQL is back the same server process recovers on its own (no restart): the
 *     clients' retries are acknowledged, /readyz is 200 again, and 1 and 2 hold.
 *  The outage, in the suite: a TCP proxy between the server and PostgreSQL stops listening and
 *  cuts every connection (a stopped server as its clients see it: sessions end mid-statement,
 *  connections are refused), then listens again. bench/faults/run --postgres stops the real
 *  PostgreSQL instead (PE_FAULT_PG_STOP / PE_FAULT_PG_START, shell commands).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pe_test.h"

#define CLIENTS        4
#define BATCHES        60 /* per client */
#define EVENTS         20 /* per batch */
#define MAX_ATTEMPTS   3000
#define RETRY_PAUSE_MS 20

static pe_test_fixture_t fx;
static pe_test_tenant_t killed_shop, outage_shop;
static const pe_test_tenant_t *shop; /* the store the clients send to */
static pthread_mutex_t server_mu = PTHREAD_MUTEX_INITIALIZER;
static char base_url[64];
static atomic_int acked, retries;
static bool server_stays_up;           /* the clients must always get an answer */
static atomic_int without_retry_after; /* 503s without a usable Retry-After */
static char client_error[512]; /* the first client failure (cmocka asserts on the main thread) */
static pthread_mutex_t error_mu = PTHREAD_MUTEX_INITIALIZER;

static void client_failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void client_failed(const char *fmt, ...)
{
    pthread_mutex_lock(&error_mu);
    if (!client_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(client_error, sizeof client_error, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&error_mu);
}

static void current_url(char out[64])
{
    pthread_mutex_lock(&server_mu);
    memcpy(out, base_url, 64);
    pthread_mutex_unlock(&server_mu);
}

/* Client c's batch b: EVENTS page views with ids that name them. */
static void batch_body(pe_buf_t *b, int c, int batch)
{
    char ts[40];
    pe_time_format_rfc3339(pe_now_unix_us(), ts, sizeof ts);
    pe_buf_reset(b);
    pe_buf_puts(b, "{\"events\":[");
    for (int e = 0; e < EVENTS; e++)
        pe_buf_printf(b,
                      "%s{\"eventId\":\"00000000-0000-4000-8000-%04x%04x%04x\","
                      "\"name\":\"storefront.page.viewed\",\"timestamp\":\"%s\","
                      "\"sessionId\":\"s-%d-%d\",\"anonymousId\":\"a-%d\","
                      "\"context\":{\"page\":{\"path\":\"/p/%d\"}}}",
                      e ? "," : "", (unsigned)c, (unsigned)batch, (unsigned)e, ts, c, batch, c, e);
    pe_buf_puts(b, "]}");
}

static void *client(void *arg)
{
    int c = (int)(intptr_t)arg;
    pe_buf_t body = PE_BUF_INIT;
    char auth[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", shop->pk);
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    for (int batch = 0; batch < BATCHES && !client_error[0]; batch++) {
        batch_body(&body, c, batch);
        for (int attempt = 0;; attempt++) {
            if (attempt == MAX_ATTEMPTS) {
                client_failed("client %d: batch %d never acknowledged", c, batch);
                break;
            }
            char url[128], base[64];
            current_url(base);
            snprintf(url, sizeof url, "%s/v1/events", base);
            pe_test_response_t r;
            int rc = pe_test_http("POST", url, body.data, headers, &r);
            bool ok = rc == 0 && r.status == 200 && r.body.data &&
                      strstr(r.body.data, "\"accepted\":20,\"rejected\":[]");
            bool wrong = rc == 0 ? (r.status == 200 ? !ok : r.status != 503) : server_stays_up;
            if (rc == 0 && r.status == 503) {
                char retry_after[16];
                pe_test_response_header(&r, "Retry-After", retry_after, sizeof retry_after);
                if (atoi(retry_after) < 1)
                    atomic_fetch_add(&without_retry_after, 1);
            }
            if (wrong && rc != 0)
                client_failed("client %d batch %d: no answer (the server stays up)", c, batch);
            else if (wrong)
                client_failed("client %d batch %d: status %ld: %.300s", c, batch, r.status,
                              r.body.data ? r.body.data : "");
            pe_test_response_free(&r);
            if (wrong)
                break;
            if (ok) {
                atomic_fetch_add(&acked, 1);
                break;
            }
            atomic_fetch_add(&retries, 1);
            pe_test_sleep_ms(RETRY_PAUSE_MS);
        }
    }
    pe_buf_free(&body);
    return NULL;
}

static void start_server_on(const char *conninfo)
{
    pe_test_server_start(&fx.server, conninfo,
                         (const char *const[]){"PE_JOBS=none", "PE_RATE_KEY=0", NULL});
    pthread_mutex_lock(&server_mu);
    memcpy(base_url, fx.server.base_url, sizeof base_url);
    pthread_mutex_unlock(&server_mu);
}

static void start_server(void)
{
    start_server_on(fx.conninfo);
}

/* Starts the clients on store `to`, the counters zeroed. */
static void clients_start(pthread_t t[CLIENTS], const pe_test_tenant_t *to, bool stays_up)
{
    shop = to;
    server_stays_up = stays_up;
    atomic_store(&acked, 0);
    atomic_store(&retries, 0);
    atomic_store(&without_retry_after, 0);
    for (int c = 0; c < CLIENTS; c++)
        assert_int_equal(pthread_create(&t[c], NULL, client, (void *)(intptr_t)c), 0);
}

/* Joins the clients and checks 1–3: every batch acknowledged, each event stored once. */
static void clients_finish(pthread_t t[CLIENTS], const char *what)
{
    for (int c = 0; c < CLIENTS; c++)
        pthread_join(t[c], NULL);
    if (client_error[0])
        fail_msg("%s", client_error);
    const int total = CLIENTS * BATCHES;
    assert_int_equal(atomic_load(&acked), total);
    char *counts = pe_test_sqlf(fx.conninfo,
                                "SELECT count(*) || ' ' || count(DISTINCT event_id) FROM events"
                                " WHERE store_id = '%s'",
                                shop->id);
    char want[32];
    snprintf(want, sizeof want, "%d %d", total * EVENTS, total * EVENTS);
    print_message("%s: %d batches of %d acknowledged after %d retries; stored (events, distinct "
                  "eventIds): %s, sent %d\n",
                  what, total, EVENTS, atomic_load(&retries), counts, total * EVENTS);
    assert_string_equal(counts, want);
    free(counts);
}

static void test_kill_during_ingest(void **state)
{
    (void)state;
    int kills = pe_test_env_int("PE_FAULT_KILLS", 3, 1, 100);
    pthread_t t[CLIENTS];
    clients_start(t, &killed_shop, false);
    const int total = CLIENTS * BATCHES;
    for (int k = 1; k <= kills; k++) {
        /* the k-th kill once k/(kills+1) of the batches are acknowledged: mid-stream */
        while (atomic_load(&acked) < total * k / (kills + 1) && !client_error[0])
            pe_test_sleep_ms(5);
        kill(fx.server.pid, SIGKILL);
        int status = 0;
        waitpid(fx.server.pid, &status, 0);
        fx.server.pid = 0;
        start_server();
    }
    char what[64];
    snprintf(what, sizeof what, "%d kill -9 during ingest", kills);
    clients_finish(t, what);
}

/* ---- PostgreSQL stopped under load ---------------------------------------------------------- */

/* A TCP proxy to PostgreSQL that can stop: no listener, every connection cut. One thread
 * accepts (and owns the listening socket); two per connection copy bytes, one each way. */
typedef struct {
    int fd[2];        /* client side, PostgreSQL side */
    atomic_int users; /* pumps still running; the last one closes both */
    bool used;
} pair_t;

static struct {
    uint16_t port, target_port;
    atomic_bool want_up, is_up, quit;
    pthread_mutex_t mu;
    pair_t pairs[64];
    pthread_t acceptor;
} proxy = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct {
    pair_t *pair;
    int from, to;
} pump_arg_t;

static void *pump(void *arg)
{
    pump_arg_t a = *(pump_arg_t *)arg;
    free(arg);
    char buf[65536];
    for (;;) {
        ssize_t n = read(a.from, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(a.to, buf + off, (size_t)(n - off));
            if (w <= 0)
                goto done;
            off += w;
        }
    }
done:
    shutdown(a.from, SHUT_RDWR);
    shutdown(a.to, SHUT_RDWR);
    pthread_mutex_lock(&proxy.mu);
    if (atomic_fetch_sub(&a.pair->users, 1) == 1) {
        close(a.pair->fd[0]);
        close(a.pair->fd[1]);
        a.pair->used = false;
    }
    pthread_mutex_unlock(&proxy.mu);
    return NULL;
}

static int listen_on(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void spawn_pair(int client_fd)
{
    int pg = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(proxy.target_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (pg < 0 || connect(pg, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (pg >= 0)
            close(pg);
        close(client_fd);
        return;
    }
    pthread_mutex_lock(&proxy.mu);
    pair_t *p = NULL;
    for (size_t i = 0; i < PE_ARRAY_LEN(proxy.pairs) && !p; i++)
        if (!proxy.pairs[i].used)
            p = &proxy.pairs[i];
    if (!p) {
        pthread_mutex_unlock(&proxy.mu);
        close(pg);
        close(client_fd);
        return;
    }
    p->used = true;
    p->fd[0] = client_fd;
    p->fd[1] = pg;
    atomic_store(&p->users, 2);
    pthread_mutex_unlock(&proxy.mu);
    for (int dir = 0; dir < 2; dir++) {
        pump_arg_t *a = malloc(sizeof *a);
        assert_non_null(a);
        *a = (pump_arg_t){p, p->fd[dir], p->fd[1 - dir]};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, pump, a), 0);
        pthread_detach(t);
    }
}

static void *acceptor(void *arg)
{
    (void)arg;
    int lfd = -1;
    while (!atomic_load(&proxy.quit)) {
        bool want = atomic_load(&proxy.want_up);
        if (want && lfd < 0 && (lfd = listen_on(proxy.port)) < 0) {
            pe_test_sleep_ms(20); /* the port is still held: try again */
            continue;
        }
        if (!want && lfd >= 0) {
            close(lfd);
            lfd = -1;
        }
        atomic_store(&proxy.is_up, lfd >= 0);
        if (lfd < 0) {
            pe_test_sleep_ms(5);
            continue;
        }
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        if (poll(&pfd, 1, 20) == 1) {
            int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0)
                spawn_pair(c);
        }
    }
    if (lfd >= 0)
        close(lfd);
    atomic_store(&proxy.is_up, false);
    return NULL;
}

/* Cuts every connection through the proxy, both ways. */
static void proxy_cut(void)
{
    pthread_mutex_lock(&proxy.mu);
    for (size_t i = 0; i < PE_ARRAY_LEN(proxy.pairs); i++)
        if (proxy.pairs[i].used) {
            shutdown(proxy.pairs[i].fd[0], SHUT_RDWR);
            shutdown(proxy.pairs[i].fd[1], SHUT_RDWR);
        }
    pthread_mutex_unlock(&proxy.mu);
}

/* Starts listening (and waits until it does) or stops: no listener, every connection cut. */
static void proxy_set(bool up)
{
    atomic_store(&proxy.want_up, up);
    for (int i = 0; i < 1000 && atomic_load(&proxy.is_up) != up; i++)
        pe_test_sleep_ms(5);
    assert_true(atomic_load(&proxy.is_up) == up);
    if (!up)
        proxy_cut();
}

/* fx.conninfo with host and port replaced by the proxy's, as keyword=value pairs. */
static char *conninfo_via_proxy(void)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(fx.conninfo, &errmsg);
    assert_non_null(opts);
    pe_buf_t b = PE_BUF_INIT;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "port") == 0 && o->val)
            proxy.target_port = (uint16_t)atoi(o->val);
        if (!o->val || strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
            strcmp(o->keyword, "port") == 0)
            continue;
        pe_buf_printf(&b, "%s='%s' ", o->keyword, o->val); /* test values hold no quote */
    }
    PQconninfoFree(opts);
    if (!proxy.target_port)
        proxy.target_port = 5432;
    pe_buf_printf(&b, "host=127.0.0.1 port=%u", (unsigned)proxy.port);
    return b.data;
}

/* GET /readyz: its status, and the value of checks.postgres. */
static long readyz(char *postgres, size_t len)
{
    char url[128], base[64];
    current_url(base);
    snprintf(url, sizeof url, "%s/readyz", base);
    pe_test_response_t r;
    assert_int_equal(pe_test_http("GET", url, NULL, NULL, &r), 0);
    cJSON *j = pe_test_response_json(&r);
    snprintf(postgres, len, "%s",
             pe_test_json_str(cJSON_GetObjectItemCaseSensitive(j, "checks"), "postgres"));
    cJSON_Delete(j);
    long status = r.status;
    pe_test_response_free(&r);
    return status;
}

static void run_shell(const char *what, const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("%s (%s): exit status %d", what, cmd, rc);
}

static void test_postgres_outage_under_load(void **state)
{
    (void)state;
    int outage_s = pe_test_env_int("PE_FAULT_PG_OUTAGE_S", 10, 1, 600);
    const char *stop_cmd = getenv("PE_FAULT_PG_STOP"), *start_cmd = getenv("PE_FAULT_PG_START");
    bool real = stop_cmd && start_cmd;

    pe_test_server_stop(&fx.server);
    char *via_proxy = NULL;
    if (real) {
        start_server();
    } else {
        proxy.port = pe_test_free_port();
        via_proxy = conninfo_via_proxy();
        atomic_store(&proxy.want_up, true);
        assert_int_equal(pthread_create(&proxy.acceptor, NULL, acceptor, NULL), 0);
        proxy_set(true);
        start_server_on(via_proxy);
    }
    int pid = fx.server.pid;
    char postgres[64];
    assert_int_equal(readyz(postgres, sizeof postgres), 200);

    pthread_t t[CLIENTS];
    clients_start(t, &outage_shop, true);
    const int total = CLIENTS * BATCHES;
    while (atomic_load(&acked) < total / 3 && !client_error[0])
        pe_test_sleep_ms(5);
    int64_t down_at = pe_now_mono_us();
    if (real)
        run_shell("stopping PostgreSQL", stop_cmd);
    else
        proxy_set(false);
    int acked_at_stop = atomic_load(&acked);
    pe_test_sleep_ms(1000);
    long ready_down = readyz(postgres, sizeof postgres);
    char postgres_down[64];
    snprintf(postgres_down, sizeof postgres_down, "%s", postgres);
    while (pe_now_mono_us() - down_at < (int64_t)outage_s * 1000000)
        pe_test_sleep_ms(20);
    int acked_during = atomic_load(&acked) - acked_at_stop;
    int retries_during = atomic_load(&retries);
    if (real)
        run_shell("starting PostgreSQL", start_cmd);
    else
        proxy_set(true);
    int64_t up_at = pe_now_mono_us();
    int before = atomic_load(&acked);
    while (atomic_load(&acked) == before && atomic_load(&acked) < total && !client_error[0] &&
           pe_now_mono_us() - up_at < 60000000)
        pe_test_sleep_ms(5);
    double recovered_s = (double)(pe_now_mono_us() - up_at) / 1e6;
    long ready_after = 0;
    for (int i = 0; i < 300 && (ready_after = readyz(postgres, sizeof postgres)) != 200; i++)
        pe_test_sleep_ms(100);
    char what[160];
    snprintf(what, sizeof what,
             "PostgreSQL %s for %d s under load (first batch acknowledged %.2f s after it was "
             "back; %d retries while down)",
             real ? "stopped" : "cut off", outage_s, recovered_s, retries_during);
    clients_finish(t, what);

    /* 4 and 5 */
    assert_int_equal(ready_down, 503);
    assert_string_not_equal(postgres_down, "ok");
    assert_true(postgres_down[0] != '\0');
    /* a batch may be acknowledged just after the cut, from a commit already made: not more */
    assert_true(acked_during <= CLIENTS);
    assert_int_equal(atomic_load(&without_retry_after), 0);
    assert_int_equal(ready_after, 200);
    assert_int_equal(fx.server.pid, pid);
    assert_true(pe_test_server_alive(&fx.server));

    pe_test_server_stop(&fx.server);
    if (!real) {
        atomic_store(&proxy.quit, true);
        pthread_join(proxy.acceptor, NULL);
        proxy_cut();
    }
    free(via_proxy);
    start_server();
}

static int group_setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    pe_test_tenant_make(&killed_shop, fx.pool, "Killed", "UTC", "EUR", NULL, NULL);
    pe_test_tenant_make(&outage_shop, fx.pool, "Outage", "UTC", "EUR", NULL, NULL);
    start_server();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_during_ingest),
        cmocka_unit_test(test_postgres_outage_under_load),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
