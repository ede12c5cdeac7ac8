/*
 * rateload.c — the constant-rate load generator of bench/flags (wrk2 is not in Debian): bulk
 * OFREP evaluations (POST /ofrep/v1/evaluate/flags) for random visitors at a fixed rate over
 * keep-alive HTTP/1.1 connections, and the latency of each measured from when it was due.
 * Built and run by bench/flags/run. --get PATH sends plain GETs instead (a baseline: the same
 * generator and connections against a trivial route show what the machine itself allows);
 * --idle sends nothing and measures how late the generator's own wake-ups are.
 *
 * One thread, non-blocking sockets, epoll and a timerfd armed at the next due time. Request i is
 * due at start + i/R whatever the server does (open loop). A request that finds every connection
 * busy waits in line, and its latency still counts from when it was due: a server that stalls
 * is charged for every request it delayed (no coordinated omission).
 *
 * Invariants:
 *  1. Every connection carries at most one request at a time; due requests are sent in order.
 *  2. Latency = answer complete − due time, in ns, for every request sent; the generator's own
 *     lateness (a late wake-up) is charged to the server, so figures are upper bounds.
 *  3. Only "HTTP/1.1 200" with a complete Content-Length body counts as ok; anything else is an
 *     error, reported with the first one's status line.
 *  4. Bounded: sending stops at --duration; answers still outstanding get --drain seconds.
 *
 * Output: one JSON object on stdout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 256
#define IN_BUF          (256 * 1024)

typedef struct {
    int port;
    const char *key;
    const char *get; /* --get PATH: a plain GET instead (the baseline: what the machine allows) */
    bool idle;       /* --idle: no requests; how late the generator itself wakes (the machine) */
    int connections;
    double rate;
    double duration_s;
    double drain_s;
} options_t;

typedef struct {
    int fd;
    bool busy;
    char out[1024];
    size_t out_len, out_off;
    char *in;
    size_t in_len;
    int64_t due_ns;
} conn_t;

typedef struct {
    uint64_t sent, ok, errors, reconnects, late_sends;
    int64_t *lat_ns;
    size_t nlat, caplat;
    char first_error[160];
} stats_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* xorshift64*: random visitors, devices and paths; seeded per run. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static void note_error(stats_t *st, const char *what)
{
    st->errors++;
    if (st->first_error[0])
        return;
    snprintf(st->first_error, sizeof st->first_error, "%s", what);
    for (char *p = st->first_error; *p; p++) /* it goes into a JSON string */
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '\'';
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void build_request(conn_t *c, const options_t *o)
{
    if (o->get) {
        c->out_len =
            (size_t)snprintf(c->out, sizeof c->out, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
                             o->get, o->port);
        c->out_off = 0;
        return;
    }
    static const char *const devices[] = {"desktop", "mobile", "tablet"};
    static const char *const paths[] = {"/", "/product/mug", "/cart", "/checkout/shipping",
                                        "/checkout/payment"};
    char body[256];
    uint64_t r = rnd();
    int blen = snprintf(body, sizeof body,
                        "{\"context\":{\"targetingKey\":\"v-%016llx\",\"device\":\"%s\","
                        "\"path\":\"%s\"}}",
                        (unsigned long long)rnd(), devices[r % 3], paths[(r >> 8) % 5]);
    c->out_len = (size_t)snprintf(c->out, sizeof c->out,
                                  "POST /ofrep/v1/evaluate/flags HTTP/1.1\r\n"
                                  "Host: 127.0.0.1:%d\r\n"
                                  "Authorization: Bearer %s\r\n"
                                  "Content-Type: application/json\r\n"
                                  "Content-Length: %d\r\n\r\n%s",
                                  o->port, o->key, blen, body);
    c->out_off = 0;
}

/* Returns the length of a complete response at the start of in (0: incomplete, -1: malformed). */
static long response_length(const char *in, size_t len)
{
    const char *end = memmem(in, len, "\r\n\r\n", 4);
    if (!end)
        return len > 65536 ? -1 : 0;
    size_t head = (size_t)(end - in) + 4;
    long body = 0;
    for (const char *p = in; p < end;) {
        const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
            body = strtol(p + 15, NULL, 10);
        p = eol + 2;
    }
    if (body < 0)
        return -1;
    return head + (size_t)body <= len ? (long)(head + (size_t)body) : 0;
}

static void reopen(conn_t *c, int ep, const options_t *o, stats_t *st)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->busy = false;
    c->in_len = 0;
    c->fd = connect_to(o->port);
    st->reconnects++;
    if (c->fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
}

static void record(stats_t *st, int64_t ns)
{
    if (st->nlat == st->caplat) {
        size_t cap = st->caplat ? st->caplat * 2 : 65536;
        int64_t *p = realloc(st->lat_ns, cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "rateload: out of memory\n");
            exit(1);
        }
        st->lat_ns = p;
        st->caplat = cap;
    }
    st->lat_ns[st->nlat++] = ns;
}

static void try_send(conn_t *c, int ep, const options_t *o, stats_t *st)
{
    while (c->busy && c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)) {
            return;
        } else {
            note_error(st, "send failed");
            reopen(c, ep, o, st);
            return;
        }
    }
}

static void on_readable(conn_t *c, int ep, const options_t *o, stats_t *st)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, IN_BUF - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (c->in_len == IN_BUF) {
                note_error(st, "response larger than the buffer");
                reopen(c, ep, o, st);
                return;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (c->busy)
            note_error(st, n == 0 ? "connection closed by the server" : "recv failed");
        reopen(c, ep, o, st);
        return;
    }
    if (!c->busy)
        return;
    long len = response_length(c->in, c->in_len);
    if (len == 0)
        return;
    int64_t t = now_ns();
    if (len < 0) {
        note_error(st, "malformed response");
        reopen(c, ep, o, st);
        return;
    }
    record(st, t - c->due_ns);
    if (strncmp(c->in, "HTTP/1.1 200", 12) == 0) {
        st->ok++;
    } else {
        char line[120];
        const char *eol = memchr(c->in, '\r', c->in_len);
        size_t l = eol ? (size_t)(eol - c->in) : 0;
        snprintf(line, sizeof line, "%.*s", (int)(l < 100 ? l : 100), c->in);
        note_error(st, line);
    }
    memmove(c->in, c->in + len, c->in_len - (size_t)len);
    c->in_len -= (size_t)len;
    c->busy = false;
}

static void usage(void);

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_ms(const stats_t *st, double p)
{
    if (!st->nlat)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(st->nlat - 1) + 0.5);
    return (double)st->lat_ns[i] / 1e6;
}

/* --idle: sleeps until each due time and records how late it woke. Nothing else runs here, so
 * this is the floor any latency measured on this machine right now stands on. */
static int idle_probe(const options_t *o)
{
    if (o->rate <= 0 || o->duration_s <= 0)
        usage();
    stats_t st = {0};
    const int64_t interval = (int64_t)(1e9 / o->rate);
    const int64_t start = now_ns() + 1000000;
    const int64_t n = (int64_t)(o->duration_s * o->rate);
    for (int64_t i = 0; i < n; i++) {
        int64_t due = start + i * interval;
        struct timespec ts = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        int64_t late = now_ns() - due;
        record(&st, late);
        st.late_sends += late > 1000000;
    }
    qsort(st.lat_ns, st.nlat, sizeof *st.lat_ns, cmp_i64);
    printf("{\"mode\":\"idle\",\"rate\":%.1f,\"wakeups\":%zu,\"late_sends\":%llu,"
           "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f}\n",
           o->rate, st.nlat, (unsigned long long)st.late_sends, pct_ms(&st, 50), pct_ms(&st, 90),
           pct_ms(&st, 99), pct_ms(&st, 99.9),
           st.nlat ? (double)st.lat_ns[st.nlat - 1] / 1e6 : 0.0);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: rateload --port P (--key pk_… | --get PATH) --rate R "
                    "[--connections 16] [--duration 20] [--drain 5]\n"
                    "       rateload --idle --rate R [--duration 20]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    options_t o = {.connections = 16, .duration_s = 20, .drain_s = 5};
    static const struct option longs[] = {{"port", required_argument, NULL, 'p'},
                                          {"key", required_argument, NULL, 'k'},
                                          {"get", required_argument, NULL, 'g'},
                                          {"rate", required_argument, NULL, 'r'},
                                          {"idle", no_argument, NULL, 'i'},
                                          {"connections", required_argument, NULL, 'c'},
                                          {"duration", required_argument, NULL, 'd'},
                                          {"drain", required_argument, NULL, 'D'},
                                          {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (opt) {
        case 'p':
            o.port = atoi(optarg);
            break;
        case 'k':
            o.key = optarg;
            break;
        case 'i':
            o.idle = true;
            break;
        case 'g':
            o.get = optarg;
            break;
        case 'r':
            o.rate = atof(optarg);
            break;
        case 'c':
            o.connections = atoi(optarg);
            break;
        case 'd':
            o.duration_s = atof(optarg);
            break;
        case 'D':
            o.drain_s = atof(optarg);
            break;
        default:
            usage();
        }
    }
    if (o.idle)
        return idle_probe(&o);
    if (o.port <= 0 || (!o.key == !o.get) || strlen(o.key ? o.key : o.get) > 200 || o.rate <= 0 ||
        o.connections < 1 || o.connections > MAX_CONNECTIONS || o.duration_s <= 0 || o.drain_s < 0)
        usage();

    rng_state = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ep < 0 || tfd < 0) {
        perror("rateload: epoll/timerfd");
        return 1;
    }
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

    stats_t st = {0};
    conn_t *conns = calloc((size_t)o.connections, sizeof *conns);
    if (!conns) {
        fprintf(stderr, "rateload: out of memory\n");
        return 1;
    }
    for (int i = 0; i < o.connections; i++) {
        conns[i].fd = -1;
        conns[i].in = malloc(IN_BUF);
        if (!conns[i].in) {
            fprintf(stderr, "rateload: out of memory\n");
            return 1;
        }
        reopen(&conns[i], ep, &o, &st);
        if (conns[i].fd < 0) {
            fprintf(stderr, "rateload: cannot connect to 127.0.0.1:%d\n", o.port);
            return 1;
        }
    }
    st.reconnects = 0;

    const int64_t interval = (int64_t)(1e9 / o.rate);
    const int64_t start = now_ns() + 50000000; /* 50 ms to finish connecting */
    const int64_t stop_sending = start + (int64_t)(o.duration_s * 1e9);
    const int64_t deadline = stop_sending + (int64_t)(o.drain_s * 1e9);
    uint64_t next = 0; /* index of the next request to send */
    struct epoll_event evs[64];

    for (;;) {
        int64_t t = now_ns();
        /* Send every request that is due, on idle connections, oldest first. */
        bool blocked = false;
        while (start + (int64_t)next * interval <= t &&
               start + (int64_t)next * interval < stop_sending) {
            conn_t *idle = NULL;
            for (int i = 0; i < o.connections && !idle; i++)
                if (!conns[i].busy && conns[i].fd >= 0)
                    idle = &conns[i];
            if (!idle) {
                blocked = true; /* waits in line; its latency still counts from its due time */
                break;
            }
            idle->busy = true;
            idle->due_ns = start + (int64_t)next * interval;
            if (t - idle->due_ns > 1000000)
                st.late_sends++;
            build_request(idle, &o);
            st.sent++;
            next++;
            try_send(idle, ep, &o, &st);
        }
        bool busy = false;
        for (int i = 0; i < o.connections; i++)
            busy |= conns[i].busy;
        bool sending = start + (int64_t)next * interval < stop_sending;
        if ((!sending && !busy) || t >= deadline)
            break;
        if (sending && !blocked) { /* blocked: an answer (epoll) frees a connection first */
            int64_t due = start + (int64_t)next * interval;
            struct itimerspec its = {
                .it_value = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000}};
            if (due <= t)
                its.it_value = (struct timespec){.tv_sec = 0, .tv_nsec = 1}; /* relative */
            timerfd_settime(tfd, due <= t ? 0 : TFD_TIMER_ABSTIME, &its, NULL);
        }
        int n = epoll_wait(ep, evs, 64, 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) {
                uint64_t expirations;
                ssize_t r = read(tfd, &expirations, sizeof expirations);
                (void)r;
                continue;
            }
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                if (c->busy)
                    note_error(&st, "connection error");
                reopen(c, ep, &o, &st);
                continue;
            }
            if (evs[i].events & EPOLLOUT)
                try_send(c, ep, &o, &st);
            if (evs[i].events & EPOLLIN)
                on_readable(c, ep, &o, &st);
        }
    }
    int64_t end = now_ns();
    uint64_t unanswered = 0;
    for (int i = 0; i < o.connections; i++)
        unanswered += conns[i].busy;
    /* Requests never sent (every connection busy until the end) count as errors too. */
    uint64_t due_total = (uint64_t)(o.duration_s * o.rate);
    uint64_t unsent = due_total > st.sent ? due_total - st.sent : 0;
    qsort(st.lat_ns, st.nlat, sizeof *st.lat_ns, cmp_i64);
    double sent_secs = (double)((stop_sending < end ? stop_sending : end) - start) / 1e9;
    printf("{\"target_rate\":%.1f,\"connections\":%d,\"seconds\":%.3f,\"sent\":%llu,"
           "\"achieved_rate\":%.1f,\"ok\":%llu,\"errors\":%llu,\"unanswered\":%llu,\"unsent\":%llu,"
           "\"late_sends\":%llu,\"reconnects\":%llu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"first_error\":\"%s\"}\n",
           o.rate, o.connections, sent_secs, (unsigned long long)st.sent,
           sent_secs > 0 ? (double)st.sent / sent_secs : 0.0, (unsigned long long)st.ok,
           (unsigned long long)st.errors, (unsigned long long)unanswered,
           (unsigned long long)unsent, (unsigned long long)st.late_sends,
           (unsigned long long)st.reconnects, pct_ms(&st, 50), pct_ms(&st, 90), pct_ms(&st, 99),
           pct_ms(&st, 99.9), st.nlat ? (double)st.lat_ns[st.nlat - 1] / 1e6 : 0.0, st.first_error);
    return 0;
}
