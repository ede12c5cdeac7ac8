/*
 * fuzz_router.c — libFuzzer target for the router and the query-string parser.
 *
 * Input: byte 0 picks the method from METHODS; the rest is a request URI, split at the first
 * '?' into the path and the query. Path and query are copied into exactly-sized heap buffers so
 * a read past their length is an ASan error.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. pe_http_router_match returns one of MATCH, WRONG_METHOD, PE_ENOTFOUND, PE_EINVAL, and
 *     PE_EINVAL exactly when the path is not a valid path by an independent check (no leading
 *     '/', too long, or a segment pe_percent_decode_text refuses).
 *  2. MATCH: the route index is in range, the route answers the method, parameters are at most
 *     PE_HTTP_MAX_PARAMS, valid UTF-8, non-empty unless captured by a wildcard; matching again
 *     gives the same route (matching is read-only).
 *  3. WRONG_METHOD: Allow is a non-empty, duplicate-free ", " list that does not name the
 *     request method, and its first method matches the path (the server's preflight relies on
 *     it). PE_ENOTFOUND / PE_EINVAL: Allow is empty.
 *  4. Query: on success every name and value is valid UTF-8 and pe_query_get returns the
 *     first value of a name; pe_query_free releases everything on every outcome.
 *
 * Builds with clang -fsanitize=fuzzer, or with any C compiler plus replay_main.c; it uses no
 * libFuzzer-only API.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/http.h"

static const char *const METHODS[] = {"GET",   "HEAD",    "POST", "PUT", "DELETE",
                                      "PATCH", "OPTIONS", "get",  ""};

static int dummy_handler(pe_http_request_t *req)
{
    (void)req;
    return 0;
}

/* The product's table (src/api/routes.c) plus the parameter and wildcard shapes to come. */
static const pe_http_route_t ROUTES[] = {
    {"GET", "/healthz", dummy_handler, PE_AUTH_NONE, 0, 0, NULL},
    {"GET", "/readyz", dummy_handler, PE_AUTH_NONE, 0, 0, NULL},
    {"GET", "/metrics", dummy_handler, PE_AUTH_NONE, 0, 0, NULL},
    {"POST", "/api/v1/auth/login", dummy_handler, PE_AUTH_NONE, 4096, PE_ROUTE_JSON_BODY, NULL},
    {"POST", "/api/v1/auth/logout", dummy_handler, PE_AUTH_SESSION, 0, 0, NULL},
    {"GET", "/api/v1/me", dummy_handler, PE_AUTH_SESSION, 0, 0, NULL},
    {"GET", "/api/v1/stores/{storeId}", dummy_handler, PE_AUTH_ADMIN, 0, 0, NULL},
    {"PATCH", "/api/v1/stores/{storeId}", dummy_handler, PE_AUTH_ADMIN, 4096, PE_ROUTE_JSON_BODY,
     NULL},
    {"GET", "/api/v1/stores/{storeId}/flags", dummy_handler, PE_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/stores/{storeId}/flags", dummy_handler, PE_AUTH_ADMIN, 4096,
     PE_ROUTE_JSON_BODY, NULL},
    {"GET", "/api/v1/stores/{storeId}/flags/{key}", dummy_handler, PE_AUTH_ADMIN, 0, 0, NULL},
    {"PUT", "/api/v1/stores/{storeId}/flags/{key}", dummy_handler, PE_AUTH_ADMIN, 4096,
     PE_ROUTE_JSON_BODY, NULL},
    {"DELETE", "/api/v1/stores/{storeId}/flags/{key}", dummy_handler, PE_AUTH_ADMIN, 0, 0, NULL},
    {"POST", "/api/v1/stores/{storeId}/flags/bulk", dummy_handler, PE_AUTH_ADMIN, 65536,
     PE_ROUTE_JSON_BODY, NULL},
    {"POST", "/api/v1/collect/{storeId}/events", dummy_handler, PE_AUTH_PUBLISHABLE, 65536,
     PE_ROUTE_CORS | PE_ROUTE_JSON_BODY | PE_ROUTE_TEXT_BODY, NULL},
    {"GET", "/api/v1/stores/{storeId}/exports/{path*}", dummy_handler, PE_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/api/v1/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", dummy_handler, PE_AUTH_ADMIN, 0, 0, NULL},
    {"GET", "/", dummy_handler, PE_AUTH_NONE, 0, PE_ROUTE_STATIC, "root"},
    {"GET", "/{path*}", dummy_handler, PE_AUTH_NONE, 0, PE_ROUTE_STATIC, "web"},
};

/* Built on first use and kept for the life of the process (libFuzzer has no teardown). */
static const pe_http_router_t *router(void)
{
    static pe_http_router_t *r;
    if (r)
        return r;
    r = pe_http_router_new();
    if (!r)
        abort();
    for (size_t i = 0; i < PE_ARRAY_LEN(ROUTES); i++)
        if (pe_http_router_add(r, &ROUTES[i]) != 0)
            abort();
    return r;
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_router: invariant failed at line %d: %s\n", __LINE__, #cond);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char *copy_exact(const uint8_t *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (!c)
        abort();
    if (n)
        memcpy(c, p, n);
    return c;
}

static bool route_answers(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* The independent validity check of invariant 1. */
static bool path_valid(const char *path, size_t len)
{
    if (len == 0 || path[0] != '/' || len > PE_HTTP_MAX_PATH)
        return false;
    char *out = malloc(len + 1);
    if (!out)
        abort();
    bool ok = true;
    size_t start = 1;
    while (ok && start <= len) {
        const char *slash = memchr(path + start, '/', len - start);
        size_t end = slash ? (size_t)(slash - path) : len;
        ok = pe_percent_decode_text(path + start, end - start, out, false) >= 0;
        start = end + 1;
    }
    free(out);
    return ok;
}

static bool in_storage(const pe_route_match_t *m, const char *p)
{
    return p >= m->storage && p < m->storage + sizeof m->storage;
}

static void check_match(const pe_http_router_t *r, const char *method, const char *path, size_t len,
                        const pe_route_match_t *m)
{
    CHECK(m->route_index < pe_http_router_count(r));
    CHECK(m->route == pe_http_router_route(r, m->route_index));
    CHECK(route_answers(m->route->method, method));
    CHECK(m->nparams <= PE_HTTP_MAX_PARAMS);
    bool wildcard = strstr(m->route->pattern, "*}") != NULL;
    for (size_t i = 0; i < m->nparams; i++) {
        const char *v = m->values[i];
        CHECK(m->names[i] != NULL && m->names[i][0] != '\0');
        CHECK(v != NULL);
        size_t vl = strlen(v);
        CHECK(vl <= len);
        CHECK(pe_utf8_valid(v, vl));
        bool last = i + 1 == m->nparams;
        if (!(wildcard && last)) {
            CHECK(vl > 0);
            CHECK(in_storage(m, v));
        }
    }

    /* Matching is read-only on the router: the same input gives the same route. */
    pe_route_match_t again;
    char allow[256];
    CHECK(pe_http_router_match(r, method, path, len, &again, allow, sizeof allow) ==
          PE_ROUTER_MATCH);
    CHECK(again.route_index == m->route_index);
    CHECK(again.nparams == m->nparams);
}

static void check_allow(const pe_http_router_t *r, const char *method, const char *path, size_t len,
                        const char *allow)
{
    CHECK(allow[0] != '\0');
    char methods[16][16];
    size_t n = 0;
    const char *p = allow;
    for (;;) {
        size_t l = strcspn(p, ",");
        CHECK(l > 0 && l < sizeof methods[0] && n < PE_ARRAY_LEN(methods));
        memcpy(methods[n], p, l);
        methods[n][l] = '\0';
        for (size_t k = 0; k < n; k++)
            CHECK(strcmp(methods[k], methods[n]) != 0);
        CHECK(!route_answers(methods[n], method));
        n++;
        if (p[l] == '\0')
            break;
        CHECK(p[l + 1] == ' ');
        p += l + 2;
    }
    /* The first allowed method reaches a route on this path. */
    pe_route_match_t m;
    char again[256];
    CHECK(pe_http_router_match(r, methods[0], path, len, &m, again, sizeof again) ==
          PE_ROUTER_MATCH);
}

static void fuzz_path(const char *method, const char *path, size_t len)
{
    const pe_http_router_t *r = router();
    size_t count = pe_http_router_count(r);
    pe_route_match_t m;
    char allow[256];
    memset(allow, 'Z', sizeof allow);
    int rc = pe_http_router_match(r, method, path, len, &m, allow, sizeof allow);
    CHECK(memchr(allow, '\0', sizeof allow) != NULL);
    bool valid = path_valid(path, len);
    switch (rc) {
    case PE_ROUTER_MATCH:
        CHECK(valid);
        check_match(r, method, path, len, &m);
        break;
    case PE_ROUTER_WRONG_METHOD:
        CHECK(valid);
        check_allow(r, method, path, len, allow);
        break;
    case PE_ENOTFOUND:
        CHECK(allow[0] == '\0');
        break;
    case PE_EINVAL:
        CHECK(!valid);
        CHECK(allow[0] == '\0');
        break;
    default:
        CHECK(!"unexpected return code");
    }
    /* A path that is not valid by the independent check is never routed. */
    if (!valid)
        CHECK(rc == PE_EINVAL || rc == PE_ENOTFOUND);
    CHECK(pe_http_router_count(r) == count);
}

static void fuzz_query(const char *qs, size_t len)
{
    pe_query_t q;
    int rc = pe_query_parse(qs, len, &q);
    CHECK(rc == 0 || rc == PE_EINVAL || rc == PE_ETOOBIG);
    if (rc == 0) {
        CHECK(q.count <= PE_QUERY_MAX_PARAMS);
        for (size_t i = 0; i < q.count; i++) {
            size_t nl = strlen(q.names[i]), vl = strlen(q.values[i]);
            CHECK(nl <= len && vl <= len);
            CHECK(pe_utf8_valid(q.names[i], nl));
            CHECK(pe_utf8_valid(q.values[i], vl));
            /* get gives the first pair with this name. */
            size_t first = 0;
            while (strcmp(q.names[first], q.names[i]) != 0)
                first++;
            CHECK(pe_query_get(&q, q.names[i]) == q.values[first]);
        }
        CHECK(pe_query_get(&q, "\xff") == NULL); /* never a valid decoded name */
    }
    pe_query_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *method = METHODS[data[0] % PE_ARRAY_LEN(METHODS)];
    const uint8_t *uri = data + 1;
    size_t urilen = size - 1;
    const uint8_t *qmark = memchr(uri, '?', urilen);
    size_t pathlen = qmark ? (size_t)(qmark - uri) : urilen;

    char *path = copy_exact(uri, pathlen);
    fuzz_path(method, path, pathlen);
    free(path);

    if (qmark) {
        size_t qlen = urilen - pathlen - 1;
        char *qs = copy_exact(qmark + 1, qlen);
        fuzz_query(qs, qlen);
        free(qs);
    }
    return 0;
}
