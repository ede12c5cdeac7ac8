/*
 * loadgen.c — the load generator of bench/ingest: posts batches of realistic storefront events
 * to POST /v1/events over keep-alive HTTP/1.1 connections for a fixed time and reports what the
 * server acknowledged and how long each request took. Built and run by bench/ingest/run.
 *
 * One thread, non-blocking sockets and epoll; every connection carries one request at a time.
 * Two modes:
 *   closed loop (--rate 0)  each connection sends its next request as soon as the previous answer
 *                           arrived: the peak rate the server sustains with C connections;
 *   open loop (--rate R)    request i is due at start + i/R whatever the server does; a request
 *                           that finds no idle connection waits, and its latency is counted from
 *                           when it was due (no coordinated omission).
 *
 * Invariants:
 *  1. Every event has a fresh eventId (a per-run random prefix and a counter), so nothing the
 *     server stores is a duplicate and rows counted afterwards equal events acknowledged.
 *  2. Events are valid per include/pe/events.h: a journey of the commerce set (page views,
 *     product views, add to cart, cart, checkout, shipping, payment, order) per request, with
 *     the context the storefront SDK sends (page, utm, device type, user agent, locale).
 *  3. A request counts as acknowledged only on "200" with "accepted":N; N is what it adds to
 *     events_acked. Anything else is counted as an error and reported.
 *  4. Bounded: sending stops at --duration; answers still outstanding get --drain seconds.
 *
 * --events-per-session N keeps a visit (session and visitor) for N events across requests, as an
 * SDK sends a visit in small batches; by default every request is a visit of its own.
 *
 * Output: one JSON object on stdout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 1024
#define IN_BUF          65536

typedef struct {
    const char *host;
    int port;
    const char *key;
    const char *path;
    int connections;
    double duration_s;
    double rate; /* requests/s, 0 = closed loop */
    int events_per_request;
    double drain_s;
} options_t;

typedef struct {
    int fd;
    bool busy;
    char *out; /* the request being sent (owned) */
    size_t out_len, out_off;
    char in[IN_BUF];
    size_t in_len;
    int64_t due_us; /* when the request was due (open loop) or sent (closed loop) */
    int events;     /* in the request being sent */
} conn_t;

typedef struct {
    uint64_t requests, ok, errors, reconnects, events_sent, events_acked;
    uint32_t *lat_us;
    size_t nlat, caplat;
    char first_error[256];
} stats_t;

typedef struct {
    uint64_t prefix_hi, prefix_lo; /* random per run */
    uint64_t counter;
    unsigned visit;  /* visits begun so far: varies products, devices and quantities */
    int per_session; /* events of one visit (--events-per-session); 0: one visit per request */
    int in_session;  /* events of the current visit sent so far */
    char session[37], anon[37];
} ids_t;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *msg)
{
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

/* ---- events ---------------------------------------------------------------------------------
 */

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

static void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(buf_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            die("vsnprintf failed");
        if (b->data && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 16384;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            die("out of memory");
        b->data = p;
        b->cap = cap;
    }
}

static void new_uuid(ids_t *ids, char out[37])
{
    uint64_t c = ids->counter++;
    /* version 4 layout; the counter makes it unique within the run, the prefix across runs */
    snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(ids->prefix_hi >> 32),
             (unsigned)(ids->prefix_hi >> 16) & 0xffffu, (unsigned)(ids->prefix_hi & 0xfffu),
             (unsigned)(0x8000u | ((ids->prefix_lo >> 48) & 0x3fffu)),
             (unsigned long long)(((ids->prefix_lo & 0xffffu) << 32) ^ c) & 0xffffffffffffULL);
}

static void now_rfc3339(char out[96])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static const char *const PRODUCTS[] = {"sku-tee-black", "sku-hoodie-grey", "sku-cap-navy",
                                       "sku-socks-3pk", "sku-mug-white",   "sku-tote-natural"};
static const char *const CATEGORIES[] = {"apparel", "apparel", "accessories",
                                         "apparel", "home",    "accessories"};
static const double PRICES[] = {24.0, 59.5, 19.99, 12.0, 14.5, 18.0};
static const char *const UAS[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
    "Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
};

/* The journey of one visit: the event names in order, cycled to fill a request. */
static const char *const JOURNEY[] = {
    "storefront.page.viewed",     "storefront.product.viewed",    "storefront.page.viewed",
    "storefront.product.viewed",  "storefront.cart.item_added",   "storefront.page.viewed",
    "storefront.product.viewed",  "storefront.cart.item_added",   "storefront.cart.viewed",
    "checkout.session.started",   "checkout.shipping.submitted",  "checkout.payment.submitted",
    "checkout.order.completed",   "storefront.page.viewed",       "storefront.product.viewed",
    "storefront.page.viewed",     "custom.newsletter.subscribed", "storefront.product.viewed",
    "storefront.cart.item_added", "storefront.cart.viewed",
};

/* The i-th event of a visit, appended to the body's array (after a comma unless first). */
static void add_event(buf_t *b, ids_t *ids, int i, bool first, const char *session,
                      const char *anon, const char *ts, unsigned visit)
{
    char id[37];
    new_uuid(ids, id);
    const char *name = JOURNEY[i % (int)(sizeof JOURNEY / sizeof JOURNEY[0])];
    size_t p = (visit + (unsigned)i) % (sizeof PRODUCTS / sizeof PRODUCTS[0]);
    bool mobile = visit % 3 == 0;
    buf_printf(b,
               "%s{\"eventId\":\"%s\",\"name\":\"%s\",\"timestamp\":\"%s\",\"sessionId\":\"%s\","
               "\"anonymousId\":\"%s\",\"context\":{\"page\":{\"url\":\"https://shop.example.com"
               "/products/%s?utm_source=newsletter&utm_medium=email&utm_campaign=autumn\","
               "\"path\":\"/products/%s\",\"referrer\":\"https://www.example.org/\",\"title\":"
               "\"%s | Example Shop\"},\"utm\":{\"source\":\"newsletter\",\"medium\":\"email\","
               "\"campaign\":\"autumn\"},\"device\":{\"type\":\"%s\"},\"userAgent\":\"%s\","
               "\"locale\":\"en-US\"},\"properties\":",
               first ? "" : ",", id, name, ts, session, anon, PRODUCTS[p], PRODUCTS[p], PRODUCTS[p],
               mobile ? "mobile" : "desktop", UAS[mobile]);
    if (strcmp(name, "storefront.product.viewed") == 0)
        buf_printf(b,
                   "{\"productId\":\"%s\",\"variantId\":\"%s-m\",\"price\":%.2f,\"currency\":"
                   "\"EUR\",\"category\":\"%s\"}}",
                   PRODUCTS[p], PRODUCTS[p], PRICES[p], CATEGORIES[p]);
    else if (strcmp(name, "storefront.cart.item_added") == 0)
        buf_printf(b,
                   "{\"productId\":\"%s\",\"variantId\":\"%s-m\",\"quantity\":%u,\"price\":%.2f,"
                   "\"currency\":\"EUR\"}}",
                   PRODUCTS[p], PRODUCTS[p], 1 + visit % 2, PRICES[p]);
    else if (strcmp(name, "storefront.cart.viewed") == 0)
        buf_printf(b, "{\"cartValue\":%.2f,\"currency\":\"EUR\",\"itemCount\":2}}",
                   PRICES[p] + PRICES[(p + 1) % 6]);
    else if (strcmp(name, "checkout.session.started") == 0)
        buf_printf(b, "{\"cartValue\":%.2f,\"currency\":\"EUR\",\"itemCount\":2}}",
                   PRICES[p] + PRICES[(p + 1) % 6]);
    else if (strcmp(name, "checkout.shipping.submitted") == 0)
        buf_printf(b, "{\"shippingMethod\":\"standard\",\"shippingCost\":4.9,\"currency\":\"EUR\","
                      "\"country\":\"DE\"}}");
    else if (strcmp(name, "checkout.payment.submitted") == 0)
        buf_printf(b, "{\"paymentMethod\":\"card\"}}");
    else if (strcmp(name, "checkout.order.completed") == 0)
        buf_printf(b,
                   "{\"orderId\":\"ord-%s\",\"value\":%.2f,\"currency\":\"EUR\",\"shipping\":4.9,"
                   "\"tax\":7.6,\"items\":[{\"productId\":\"%s\",\"quantity\":1,\"price\":%.2f,"
                   "\"name\":\"%s\",\"category\":\"%s\"},{\"productId\":\"%s\",\"quantity\":1,"
                   "\"price\":%.2f,\"category\":\"%s\"}]}}",
                   id, PRICES[p] + PRICES[(p + 1) % 6], PRODUCTS[p], PRICES[p], PRODUCTS[p],
                   CATEGORIES[p], PRODUCTS[(p + 1) % 6], PRICES[(p + 1) % 6],
                   CATEGORIES[(p + 1) % 6]);
    else if (strncmp(name, "custom.", 7) == 0)
        buf_printf(b, "{\"list\":\"weekly\",\"source\":\"footer\"},\"custom\":{\"ab\":\"b\"}}");
    else
        buf_printf(b, "{}}");
}

/* A request body of n events with fresh ids and timestamps: one visit's journey, or with
 * --events-per-session the next n events of the current visit (a new one once it has had its
 * events), as an SDK sends a visit in small batches. */
static buf_t build_body(ids_t *ids, int n)
{
    char ts[96];
    if (ids->per_session == 0 || ids->in_session == 0 || ids->in_session >= ids->per_session) {
        ids->visit++;
        ids->in_session = 0;
        new_uuid(ids, ids->session);
        new_uuid(ids, ids->anon);
    }
    now_rfc3339(ts);
    buf_t body = {0};
    buf_printf(&body, "{\"sentAt\":\"%s\",\"events\":[", ts);
    for (int i = 0; i < n; i++)
        add_event(&body, ids, ids->in_session + i, i == 0, ids->session, ids->anon, ts,
                  ids->visit - 1);
    ids->in_session += n;
    buf_printf(&body, "]}");
    return body;
}

/* Builds the whole HTTP request (headers and a body of n events) into a new allocation. */
static char *build_request(const options_t *o, ids_t *ids, int n, size_t *len)
{
    buf_t body = build_body(ids, n);
    buf_t req = {0};
    buf_printf(&req,
               "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
               o->path, o->host, o->port, o->key, body.len);
    buf_printf(&req, "%.*s", (int)body.len, body.data);
    free(body.data);
    *len = req.len;
    return req.data;
}

/* ---- connections ----------------------------------------------------------------------------
 */

static int connect_to(const options_t *o)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket failed");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1)
        die("--host must be an IPv4 address");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
        die("connect failed");
    return fd;
}

static void record_latency(stats_t *st, int64_t us)
{
    if (st->nlat == st->caplat) {
        size_t cap = st->caplat ? st->caplat * 2 : 65536;
        uint32_t *p = realloc(st->lat_us, cap * sizeof *p);
        if (!p)
            die("out of memory");
        st->lat_us = p;
        st->caplat = cap;
    }
    st->lat_us[st->nlat++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void note_error(stats_t *st, const char *what, const char *detail, size_t n)
{
    st->errors++;
    if (!st->first_error[0])
        snprintf(st->first_error, sizeof st->first_error, "%s: %.*s", what,
                 (int)(n > 160 ? 160 : n), detail);
}

/* Parses a complete response in c->in; returns its length, 0 when incomplete, -1 when broken.
 */
static long parse_response(conn_t *c, int *status, const char **body, size_t *body_len)
{
    c->in[c->in_len < IN_BUF ? c->in_len : IN_BUF - 1] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (!end)
        return c->in_len >= IN_BUF - 1 ? -1 : 0;
    size_t head = (size_t)(end - c->in) + 4;
    if (sscanf(c->in, "HTTP/1.%*d %d", status) != 1)
        return -1;
    long cl = -1;
    for (char *p = strstr(c->in, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
            cl = strtol(p + 17, NULL, 10);
    }
    if (cl < 0 || head + (size_t)cl >= IN_BUF)
        return -1;
    if (c->in_len < head + (size_t)cl)
        return 0;
    *body = c->in + head;
    *body_len = (size_t)cl;
    return (long)(head + (size_t)cl);
}

static void start_request(const options_t *o, ids_t *ids, stats_t *st, conn_t *c, int64_t due)
{
    free(c->out);
    c->out = build_request(o, ids, o->events_per_request, &c->out_len);
    c->out_off = 0;
    c->in_len = 0;
    c->busy = true;
    c->due_us = due;
    c->events = o->events_per_request;
    st->requests++;
    st->events_sent += (uint64_t)c->events;
}

static void reconnect(const options_t *o, int ep, conn_t *c, stats_t *st)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = connect_to(o);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->busy = false;
    c->in_len = 0;
    st->reconnects++;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const stats_t *st, double p)
{
    if (!st->nlat)
        return 0;
    size_t i = (size_t)(p * (double)(st->nlat - 1) + 0.5);
    return st->lat_us[i] / 1000.0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --port P --key pk_… [--host 127.0.0.1] [--path /v1/events]\n"
            "               [--connections 16] [--duration 10] [--rate 0]\n"
            "               [--events-per-request 20] [--events-per-session 0] [--drain 10]\n"
            "       loadgen --dump N [--events-per-request 20]   (N request bodies, one a line,\n"
            "                                                     for bench/ingest/micro)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    options_t o = {.host = "127.0.0.1",
                   .path = "/v1/events",
                   .connections = 16,
                   .duration_s = 10,
                   .events_per_request = 20,
                   .drain_s = 10};
    static const struct option longopts[] = {{"host", required_argument, NULL, 'h'},
                                             {"port", required_argument, NULL, 'p'},
                                             {"key", required_argument, NULL, 'k'},
                                             {"path", required_argument, NULL, 'P'},
                                             {"connections", required_argument, NULL, 'c'},
                                             {"duration", required_argument, NULL, 'd'},
                                             {"rate", required_argument, NULL, 'r'},
                                             {"events-per-request", required_argument, NULL, 'e'},
                                             {"events-per-session", required_argument, NULL, 'S'},
                                             {"drain", required_argument, NULL, 'D'},
                                             {"dump", required_argument, NULL, 'X'},
                                             {NULL, 0, NULL, 0}};
    int opt, dump = 0, per_session = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            o.host = optarg;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 'k':
            o.key = optarg;
            break;
        case 'P':
            o.path = optarg;
            break;
        case 'c':
            o.connections = atoi(optarg);
            break;
        case 'd':
            o.duration_s = atof(optarg);
            break;
        case 'r':
            o.rate = atof(optarg);
            break;
        case 'e':
            o.events_per_request = atoi(optarg);
            break;
        case 'D':
            o.drain_s = atof(optarg);
            break;
        case 'S':
            per_session = atoi(optarg);
            break;
        case 'X':
            dump = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (dump > 0 && o.events_per_request >= 1 && o.events_per_request <= 500) {
        ids_t ids = {.prefix_hi = 0x5eed5eed5eed5eedULL,
                     .prefix_lo = (uint64_t)now_us(),
                     .per_session = per_session};
        for (int i = 0; i < dump; i++) {
            buf_t body = build_body(&ids, o.events_per_request);
            printf("%.*s\n", (int)body.len, body.data);
            free(body.data);
        }
        return 0;
    }
    if (!o.key || o.port <= 0 || o.connections < 1 || o.connections > MAX_CONNECTIONS ||
        o.duration_s <= 0 || o.events_per_request < 1 || o.events_per_request > 500 || o.rate < 0)
        usage();

    if (per_session < 0 || per_session > 100000)
        usage();
    ids_t ids = {.per_session = per_session};
    {
        FILE *f = fopen("/dev/urandom", "rb");
        if (!f || fread(&ids.prefix_hi, 8, 1, f) != 1 || fread(&ids.prefix_lo, 8, 1, f) != 1)
            die("cannot read /dev/urandom");
        fclose(f);
    }

    stats_t st = {0};
    int ep = epoll_create1(EPOLL_CLOEXEC);
    conn_t *conns = calloc((size_t)o.connections, sizeof *conns);
    if (ep < 0 || !conns)
        die("cannot set up");
    for (int i = 0; i < o.connections; i++) {
        conns[i].fd = connect_to(&o);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }

    int64_t start = now_us();
    int64_t stop_sending = start + (int64_t)(o.duration_s * 1e6);
    int64_t hard_stop = stop_sending + (int64_t)(o.drain_s * 1e6);
    int64_t last_answer = start;
    uint64_t scheduled = 0; /* open loop: requests due so far */
    uint64_t started = 0;
    struct epoll_event events[64];

    for (;;) {
        int64_t now = now_us();
        bool sending = now < stop_sending;
        /* hand due requests to idle connections */
        for (int i = 0; i < o.connections; i++) {
            conn_t *c = &conns[i];
            if (c->busy || !sending)
                continue;
            if (o.rate > 0) {
                scheduled = (uint64_t)((double)(now - start) * o.rate / 1e6) + 1;
                if (started >= scheduled)
                    break;
                int64_t due = start + (int64_t)((double)started * 1e6 / o.rate);
                start_request(&o, &ids, &st, c, due);
            } else {
                start_request(&o, &ids, &st, c, now);
            }
            started++;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
        bool any_busy = false;
        for (int i = 0; i < o.connections; i++)
            any_busy |= conns[i].busy;
        if (!sending && !any_busy)
            break;
        if (now >= hard_stop) {
            for (int i = 0; i < o.connections; i++)
                if (conns[i].busy)
                    note_error(&st, "no answer before the drain deadline", "", 0);
            break;
        }
        int timeout_ms = 1;
        if (o.rate == 0)
            timeout_ms = 50;
        int n = epoll_wait(ep, events, 64, timeout_ms);
        for (int k = 0; k < n; k++) {
            conn_t *c = events[k].data.ptr;
            if (c->busy && c->out_off < c->out_len && (events[k].events & EPOLLOUT)) {
                ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (w > 0)
                    c->out_off += (size_t)w;
                else if (w < 0 && errno != EAGAIN) {
                    note_error(&st, "send", strerror(errno), strlen(strerror(errno)));
                    reconnect(&o, ep, c, &st);
                    continue;
                }
                if (c->out_off == c->out_len) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!(events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            ssize_t r = recv(c->fd, c->in + c->in_len, IN_BUF - 1 - c->in_len, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN)) {
                if (c->busy)
                    note_error(&st, "connection closed by the server", "", 0);
                reconnect(&o, ep, c, &st);
                continue;
            }
            if (r < 0)
                continue;
            c->in_len += (size_t)r;
            if (!c->busy) {
                c->in_len = 0;
                continue;
            }
            int status = 0;
            const char *body = NULL;
            size_t body_len = 0;
            long used = parse_response(c, &status, &body, &body_len);
            if (used == 0)
                continue;
            int64_t t = now_us();
            last_answer = t;
            c->busy = false;
            record_latency(&st, t - c->due_us);
            const char *acc = used > 0 ? strstr(body, "\"accepted\":") : NULL;
            if (used < 0) {
                note_error(&st, "unparsable response", c->in, c->in_len);
                reconnect(&o, ep, c, &st);
            } else if (status != 200 || !acc) {
                note_error(&st, "status", c->in, (size_t)used);
            } else {
                long accepted = strtol(acc + 11, NULL, 10);
                st.ok++;
                st.events_acked += (uint64_t)accepted;
                if (accepted != c->events || !strstr(body, "\"rejected\":[]"))
                    note_error(&st, "events rejected", body, body_len);
            }
            c->in_len = 0;
        }
    }

    double elapsed = (double)(last_answer - start) / 1e6;
    if (elapsed <= 0)
        elapsed = o.duration_s;
    qsort(st.lat_us, st.nlat, sizeof *st.lat_us, cmp_u32);
    printf("{\"mode\":\"%s\",\"connections\":%d,\"events_per_request\":%d,\"target_rate\":%.1f,"
           "\"elapsed_s\":%.3f,\"requests\":%llu,\"ok\":%llu,\"errors\":%llu,\"reconnects\":%llu,"
           "\"events_sent\":%llu,\"events_acked\":%llu,\"requests_per_s\":%.1f,"
           "\"events_per_s\":%.1f,\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"max_ms\":%.2f,\"first_error\":\"",
           o.rate > 0 ? "open" : "closed", o.connections, o.events_per_request, o.rate, elapsed,
           (unsigned long long)st.requests, (unsigned long long)st.ok,
           (unsigned long long)st.errors, (unsigned long long)st.reconnects,
           (unsigned long long)st.events_sent, (unsigned long long)st.events_acked,
           (double)st.ok / elapsed, (double)st.events_acked / elapsed, pct_ms(&st, 0.50),
           pct_ms(&st, 0.90), pct_ms(&st, 0.99), st.nlat ? st.lat_us[st.nlat - 1] / 1000.0 : 0.0);
    for (const char *p = st.first_error; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf(" ");
        else
            putchar(ch);
    }
    printf("\"}\n");
    for (int i = 0; i < o.connections; i++) {
        close(conns[i].fd);
        free(conns[i].out);
    }
    free(conns);
    free(st.lat_us);
    close(ep);
    return 0;
}
