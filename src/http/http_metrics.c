/*
 * http_metrics.c — the HTTP layer's request metrics: per route, requests by status and a latency
 * histogram (counted by server.c's on_completed) and the bodies decoded by content coding
 * (counted by its run_handler), and their Prometheus text for /metrics, with the in-flight gauge
 * and arrival.c's connection gauges.
 *
 * Invariants:
 *  1. One slot per route, in the router's order, plus one last slot for requests no route
 *     matched (slot = the route count); the table is sized once, with the router it counts.
 *  2. Counting is lock-free (relaxed atomics) from any MHD thread; the text reads the same
 *     counters without a lock, so each value is exact but the set is not one instant's snapshot.
 *  3. A request counts once by status and once in the histogram, however it ended (499: it was
 *     never answered); a status outside 0..MAX_STATUS-1 counts only in the histogram. A decoded
 *     body counts once, when the handler is about to see it.
 *  4. The text lists only what happened: a status, a route's histogram or a coding that never
 *     counted is left out, and latency buckets are written cumulative, as Prometheus wants.
 */
#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "http_internal.h"

#define MAX_STATUS 600

static const double LATENCY_BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
#define NBUCKETS PE_ARRAY_LEN(LATENCY_BUCKETS)

typedef struct {
    _Atomic uint64_t status[MAX_STATUS];
    _Atomic uint64_t buckets[NBUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
    _Atomic uint64_t decoded[PE_HTTP_CODING_COUNT]; /* bodies decoded, by coding */
} route_metrics_t;

struct pe_http_metrics {
    size_t nslots;
    route_metrics_t slot[]; /* invariant 1 */
};

pe_http_metrics_t *pe_http_metrics_new(size_t nroutes)
{
    size_t nslots = nroutes + 1;
    pe_http_metrics_t *m = calloc(1, sizeof *m + nslots * sizeof m->slot[0]);
    if (m)
        m->nslots = nslots;
    return m;
}

void pe_http_metrics_free(pe_http_metrics_t *m)
{
    free(m);
}

void pe_http_metrics_count(pe_http_metrics_t *m, size_t slot, int status, double seconds)
{
    assert(slot < m->nslots);
    route_metrics_t *r = &m->slot[slot];
    if (status >= 0 && status < MAX_STATUS)
        atomic_fetch_add_explicit(&r->status[status], 1, memory_order_relaxed);
    for (size_t i = 0; i < NBUCKETS; i++) {
        if (seconds <= LATENCY_BUCKETS[i]) {
            atomic_fetch_add_explicit(&r->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

void pe_http_metrics_count_decoded(pe_http_metrics_t *m, size_t slot, pe_http_coding_t coding)
{
    assert(slot < m->nslots && coding < PE_HTTP_CODING_COUNT);
    atomic_fetch_add_explicit(&m->slot[slot].decoded[coding], 1, memory_order_relaxed);
}

/* ---- exposition ------------------------------------------------------------------------------ */

int pe_http_server_metrics(pe_http_server_t *s, pe_buf_t *out)
{
    int rc = 0;
    size_t nroutes = pe_http_router_count(s->router);
    rc |= pe_buf_puts(out, "# HELP pe_http_requests_total HTTP requests by route and status.\n"
                           "# TYPE pe_http_requests_total counter\n");
    for (size_t i = 0; i <= nroutes; i++) {
        const pe_http_route_t *r = pe_http_router_route(s->router, i);
        const char *method = r ? r->method : "";
        const char *name = r ? r->name : "unmatched";
        for (int st = 0; st < MAX_STATUS; st++) {
            uint64_t v =
                atomic_load_explicit(&s->metrics->slot[i].status[st], memory_order_relaxed);
            if (v)
                rc |=
                    pe_buf_printf(out,
                                  "pe_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"}"
                                  " %llu\n",
                                  method, name, st, (unsigned long long)v);
        }
    }
    rc |=
        pe_buf_puts(out, "# HELP pe_http_request_duration_seconds HTTP request latency by route.\n"
                         "# TYPE pe_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= nroutes; i++) {
        const route_metrics_t *m = &s->metrics->slot[i];
        uint64_t count = atomic_load_explicit(&m->count, memory_order_relaxed);
        if (!count)
            continue;
        const pe_http_route_t *r = pe_http_router_route(s->router, i);
        const char *method = r ? r->method : "";
        const char *name = r ? r->name : "unmatched";
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += atomic_load_explicit(&m->buckets[b], memory_order_relaxed);
            rc |=
                pe_buf_printf(out,
                              "pe_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                              "le=\"%g\"} %llu\n",
                              method, name, LATENCY_BUCKETS[b], (unsigned long long)cum);
        }
        rc |= pe_buf_printf(
            out,
            "pe_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n"
            "pe_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n"
            "pe_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
            method, name, (unsigned long long)count, method, name,
            (double)atomic_load_explicit(&m->sum_us, memory_order_relaxed) / 1e6, method, name,
            (unsigned long long)count);
    }
    rc |= pe_buf_puts(out, "# HELP pe_http_request_bodies_decoded_total Request bodies received "
                           "with a Content-Encoding and decoded whole, by route and coding.\n"
                           "# TYPE pe_http_request_bodies_decoded_total counter\n");
    for (size_t i = 0; i < nroutes; i++) {
        const pe_http_route_t *r = pe_http_router_route(s->router, i);
        for (int c = PE_HTTP_CODING_IDENTITY + 1; c < PE_HTTP_CODING_COUNT; c++) {
            uint64_t v =
                atomic_load_explicit(&s->metrics->slot[i].decoded[c], memory_order_relaxed);
            if (v)
                rc |=
                    pe_buf_printf(out,
                                  "pe_http_request_bodies_decoded_total{method=\"%s\",route=\"%s\","
                                  "encoding=\"%s\"} %llu\n",
                                  r->method, r->name, pe_http_coding_name((pe_http_coding_t)c),
                                  (unsigned long long)v);
        }
    }
    rc |= pe_buf_printf(out,
                        "# HELP pe_http_requests_in_flight Requests being served now.\n"
                        "# TYPE pe_http_requests_in_flight gauge\n"
                        "pe_http_requests_in_flight %ld\n",
                        atomic_load(&s->in_flight));
    if (s->arrivals)
        rc |= pe_http_arrivals_metrics(s->arrivals, out);
    return rc ? PE_ENOMEM : 0;
}
