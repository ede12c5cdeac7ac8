/*
 * test_router.c — the router: pattern compilation, precedence, parameter decoding, 405 with
 * Allow, and refusal of paths that are not valid paths.
 *
 * Invariants checked:
 *  1. Precedence does not depend on registration order: at the first segment where two matching
 *     patterns differ, literal > parameter > wildcard, and an exact match beats a wildcard that
 *     captures nothing.
 *  2. Parameters are percent-decoded per segment ("%2F" stays inside its parameter) and are
 *     valid UTF-8 without NUL; anything that cannot be decoded so is PE_EINVAL.
 *  3. PE_ROUTER_WRONG_METHOD only when a non-wildcard route has the path, with a deduplicated
 *     Allow list — even when a catch-all of the asked method matches too; a catch-all wildcard
 *     never produces it.
 *  4. Paths are length-counted: the router never reads past pathlen (paths live in exactly-sized
 *     heap copies, so ASan catches over-reads).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/http.h"
#include "pe_test.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static int dummy_handler(pe_http_request_t *req)
{
    (void)req;
    return 0;
}

static void add(pe_http_router_t *r, const char *method, const char *pattern)
{
    pe_http_route_t route = {method, pattern, dummy_handler, PE_AUTH_NONE, 0, 0, NULL};
    int rc = pe_http_router_add(r, &route);
    if (rc != 0)
        fail_msg("adding %s %s: rc %d", method, pattern, rc);
}

static int try_add(pe_http_router_t *r, const char *method, const char *pattern)
{
    pe_http_route_t route = {method, pattern, dummy_handler, PE_AUTH_NONE, 0, 0, NULL};
    return pe_http_router_add(r, &route);
}

/* Matches path[0..len) from an exactly-sized heap copy. */
static int match_n(const pe_http_router_t *r, const char *method, const char *path, size_t len,
                   pe_route_match_t *m, char *allow, size_t allowlen)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, path, len);
    int rc = pe_http_router_match(r, method, copy, len, m, allow, allowlen);
    free(copy);
    return rc;
}

static int match(const pe_http_router_t *r, const char *method, const char *path,
                 pe_route_match_t *m, char *allow, size_t allowlen)
{
    return match_n(r, method, path, strlen(path), m, allow, allowlen);
}

/* Asserts method path matches the route with pattern want_pattern (and method want_method when
 * given); returns the match for parameter checks. */
static void expect_route(const pe_http_router_t *r, const char *method, const char *path,
                         const char *want_method, const char *want_pattern, pe_route_match_t *m)
{
    char allow[128];
    int rc = match(r, method, path, m, allow, sizeof allow);
    if (rc != PE_ROUTER_MATCH)
        fail_msg("%s %s: rc %d (allow \"%s\"), want a match on %s", method, path, rc, allow,
                 want_pattern);
    assert_true(m->route_index < pe_http_router_count(r));
    assert_ptr_equal(m->route, pe_http_router_route(r, m->route_index));
    if (strcmp(m->route->pattern, want_pattern) != 0 ||
        (want_method && strcmp(m->route->method, want_method) != 0))
        fail_msg("%s %s: matched %s %s, want %s %s", method, path, m->route->method,
                 m->route->pattern, want_method ? want_method : "", want_pattern);
}

static void expect_rc(const pe_http_router_t *r, const char *method, const char *path, int want)
{
    pe_route_match_t m;
    char allow[128];
    int rc = match(r, method, path, &m, allow, sizeof allow);
    if (rc != want)
        fail_msg("%s %.100s: rc %d, want %d", method, path, rc, want);
    if (rc == PE_ENOTFOUND || rc == PE_EINVAL)
        assert_string_equal(allow, "");
}

static void expect_param(const pe_route_match_t *m, const char *name, const char *want)
{
    for (size_t i = 0; i < m->nparams; i++) {
        if (strcmp(m->names[i], name) == 0) {
            if (strcmp(m->values[i], want) != 0)
                fail_msg("param %s = \"%s\", want \"%s\"", name, m->values[i], want);
            return;
        }
    }
    fail_msg("no param %s among %zu", name, m->nparams);
}

static void expect_allow(const pe_http_router_t *r, const char *method, const char *path,
                         const char *want)
{
    pe_route_match_t m;
    char allow[128];
    int rc = match(r, method, path, &m, allow, sizeof allow);
    if (rc != PE_ROUTER_WRONG_METHOD)
        fail_msg("%s %s: rc %d, want PE_ROUTER_WRONG_METHOD", method, path, rc);
    if (strcmp(allow, want) != 0)
        fail_msg("%s %s: Allow \"%s\", want \"%s\"", method, path, allow, want);
}

/* ---- registration ---------------------------------------------------------------------------- */

static void test_add_and_lookup(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    assert_non_null(r);
    assert_int_equal(pe_http_router_count(r), 0);
    assert_null(pe_http_router_route(r, 0));

    pe_http_route_t named = {"GET", "/web/{path*}", dummy_handler, PE_AUTH_ADMIN, 16, 0x3, "web"};
    assert_int_equal(pe_http_router_add(r, &named), 0);
    add(r, "POST", "/web/upload");
    assert_int_equal(pe_http_router_count(r), 2);

    const pe_http_route_t *a = pe_http_router_route(r, 0);
    assert_non_null(a);
    assert_string_equal(a->method, "GET");
    assert_string_equal(a->pattern, "/web/{path*}");
    assert_ptr_equal(a->handler, dummy_handler);
    assert_int_equal(a->auth, PE_AUTH_ADMIN);
    assert_int_equal(a->max_body, 16);
    assert_int_equal(a->flags, 0x3);
    assert_string_equal(a->name, "web");
    /* The name defaults to the pattern. */
    assert_string_equal(pe_http_router_route(r, 1)->name, "/web/upload");
    assert_null(pe_http_router_route(r, 2));

    /* The route was copied: changing the caller's struct changes nothing. */
    named.max_body = 999;
    assert_int_equal(pe_http_router_route(r, 0)->max_body, 16);

    /* Many routes: storage grows and earlier routes stay intact. */
    char patterns[100][32]; /* outlives the router: freed below, in this function */
    for (int i = 0; i < 100; i++) {
        snprintf(patterns[i], sizeof patterns[i], "/many/r%d/{id}", i);
        add(r, "GET", patterns[i]);
    }
    assert_int_equal(pe_http_router_count(r), 102);
    pe_route_match_t m;
    expect_route(r, "GET", "/many/r73/x", "GET", "/many/r73/{id}", &m);
    assert_int_equal(m.route_index, 2 + 73);
    expect_param(&m, "id", "x");
    expect_route(r, "GET", "/web/a", "GET", "/web/{path*}", &m);
    assert_int_equal(m.route_index, 0);
    pe_http_router_free(r);
    pe_http_router_free(NULL);
}

static void test_duplicate_route(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    add(r, "GET", "/api/v1/stores/{storeId}");
    assert_int_equal(try_add(r, "GET", "/api/v1/stores/{storeId}"), PE_EINVAL);
    assert_int_equal(pe_http_router_count(r), 1);
    /* Same pattern, other method: fine. */
    assert_int_equal(try_add(r, "DELETE", "/api/v1/stores/{storeId}"), 0);
    assert_int_equal(try_add(r, "DELETE", "/api/v1/stores/{storeId}"), PE_EINVAL);
    assert_int_equal(pe_http_router_count(r), 2);
    pe_http_router_free(r);
}

static void test_malformed_patterns(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    static const char *const bad[] = {
        "",
        "no-slash",
        "api/v1",
        "/{}",
        "/a/{}/b",
        "/{rest*}/b",
        "/a/{rest*}/{id}",
        "/{a*}/{b*}",
        "/dir/", /* an empty segment would silently mean "/dir" */
        "/a//b",
        "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", /* 9 > PE_HTTP_MAX_PARAMS */
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        int rc = try_add(r, "GET", bad[i]);
        if (rc != PE_EINVAL)
            fail_msg("pattern \"%s\": rc %d, want PE_EINVAL", bad[i], rc);
    }
    assert_int_equal(pe_http_router_count(r), 0);

    /* Missing pieces. */
    pe_http_route_t no_handler = {"GET", "/x", NULL, PE_AUTH_NONE, 0, 0, NULL};
    assert_int_equal(pe_http_router_add(r, &no_handler), PE_EINVAL);
    pe_http_route_t no_method = {NULL, "/x", dummy_handler, PE_AUTH_NONE, 0, 0, NULL};
    assert_int_equal(pe_http_router_add(r, &no_method), PE_EINVAL);
    pe_http_route_t no_pattern = {"GET", NULL, dummy_handler, PE_AUTH_NONE, 0, 0, NULL};
    assert_int_equal(pe_http_router_add(r, &no_pattern), PE_EINVAL);
    assert_int_equal(pe_http_router_count(r), 0);

    /* The router still works after refusals. */
    add(r, "GET", "/x");
    expect_rc(r, "GET", "/x", PE_ROUTER_MATCH);
    pe_http_router_free(r);
}

static void test_max_params(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    add(r, "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}");
    add(r, "GET", "/p/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{rest*}");
    pe_route_match_t m;
    expect_route(r, "GET", "/1/2/3/4/5/6/7/8", NULL, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", &m);
    assert_int_equal(m.nparams, 8);
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    static const char *const values[] = {"1", "2", "3", "4", "5", "6", "7", "8"};
    for (size_t i = 0; i < 8; i++) {
        assert_string_equal(m.names[i], names[i]);
        assert_string_equal(m.values[i], values[i]);
    }
    expect_route(r, "GET", "/p/1/2/3/4/5/6/7/x/y/z", NULL, "/p/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{rest*}",
                 &m);
    assert_int_equal(m.nparams, 8);
    expect_param(&m, "rest", "x/y/z");
    expect_param(&m, "g", "7");
    pe_http_router_free(r);
}

/* ---- precedence ------------------------------------------------------------------------------ */

static void check_flags_precedence(bool literal_first)
{
    static const char *const param = "/api/v1/stores/{storeId}/flags/{key}";
    static const char *const literal = "/api/v1/stores/{storeId}/flags/bulk";
    pe_http_router_t *r = pe_http_router_new();
    add(r, "GET", literal_first ? literal : param);
    add(r, "GET", literal_first ? param : literal);

    pe_route_match_t m;
    expect_route(r, "GET", "/api/v1/stores/s1/flags/bulk", "GET", literal, &m);
    assert_int_equal(m.nparams, 1);
    expect_param(&m, "storeId", "s1");

    expect_route(r, "GET", "/api/v1/stores/s1/flags/checkout-v2", "GET", param, &m);
    assert_int_equal(m.nparams, 2);
    assert_string_equal(m.names[0], "storeId");
    assert_string_equal(m.values[0], "s1");
    assert_string_equal(m.names[1], "key");
    assert_string_equal(m.values[1], "checkout-v2");

    /* Near misses of the literal are parameters. */
    expect_route(r, "GET", "/api/v1/stores/s1/flags/Bulk", "GET", param, &m);
    expect_route(r, "GET", "/api/v1/stores/s1/flags/bulk2", "GET", param, &m);
    expect_route(r, "GET", "/api/v1/stores/s1/flags/bul", "GET", param, &m);
    /* Literals compare decoded: %62 is 'b'. */
    expect_route(r, "GET", "/api/v1/stores/s1/flags/%62ulk", "GET", literal, &m);
    pe_http_router_free(r);
}

static void test_literal_beats_param(void **state)
{
    (void)state;
    check_flags_precedence(true);
    check_flags_precedence(false);
}

static void check_mixed_precedence(bool order)
{
    pe_http_router_t *r = pe_http_router_new();
    const char *a = "/a/{x}/c";
    const char *b = "/{y}/b/c";
    const char *w = "/a/{rest*}";
    const char *p = "/a/{one}";
    if (order) {
        add(r, "GET", a);
        add(r, "GET", b);
        add(r, "GET", w);
        add(r, "GET", p);
    } else {
        add(r, "GET", p);
        add(r, "GET", w);
        add(r, "GET", b);
        add(r, "GET", a);
    }
    pe_route_match_t m;
    /* The first differing segment decides: segment 0 is literal in a, a parameter in b. */
    expect_route(r, "GET", "/a/b/c", NULL, a, &m);
    expect_param(&m, "x", "b");
    expect_route(r, "GET", "/z/b/c", NULL, b, &m);
    expect_param(&m, "y", "z");
    /* A parameter beats a wildcard. */
    expect_route(r, "GET", "/a/q", NULL, p, &m);
    expect_param(&m, "one", "q");
    expect_route(r, "GET", "/a/q/r", NULL, w, &m);
    expect_param(&m, "rest", "q/r");
    expect_route(r, "GET", "/a/q/r/s/t", NULL, w, &m);
    expect_param(&m, "rest", "q/r/s/t");
    pe_http_router_free(r);
}

static void test_mixed_precedence(void **state)
{
    (void)state;
    check_mixed_precedence(true);
    check_mixed_precedence(false);
}

/* An exact route beats a wildcard that would capture nothing ("/" vs "/{path*}", "/static" vs
 * "/static/{path*}"), whatever the order. */
static void check_exact_beats_empty_wildcard(bool exact_first)
{
    pe_http_router_t *r = pe_http_router_new();
    const char *pairs[][2] = {{"/", "/{path*}"}, {"/static", "/static/{path*}"}};
    for (size_t i = 0; i < PE_ARRAY_LEN(pairs); i++) {
        add(r, "GET", pairs[i][exact_first ? 0 : 1]);
        add(r, "GET", pairs[i][exact_first ? 1 : 0]);
    }
    pe_route_match_t m;
    expect_route(r, "GET", "/", "GET", "/", &m);
    assert_int_equal(m.nparams, 0);
    expect_route(r, "GET", "/static", "GET", "/static", &m);
    assert_int_equal(m.nparams, 0);
    expect_route(r, "GET", "/static/app.js", "GET", "/static/{path*}", &m);
    expect_param(&m, "path", "app.js");
    expect_route(r, "GET", "/other", "GET", "/{path*}", &m);
    expect_param(&m, "path", "other");
    pe_http_router_free(r);
}

static void test_exact_beats_empty_wildcard(void **state)
{
    (void)state;
    check_exact_beats_empty_wildcard(true);
    check_exact_beats_empty_wildcard(false);
}

/* The product's table shape: fixed routes, a parameter route, and the dashboard catch-all. */
static pe_http_router_t *product_router(void)
{
    pe_http_router_t *r = pe_http_router_new();
    assert_non_null(r);
    add(r, "GET", "/healthz");
    add(r, "GET", "/readyz");
    add(r, "GET", "/metrics");
    add(r, "POST", "/api/v1/auth/login");
    add(r, "POST", "/api/v1/auth/logout");
    add(r, "GET", "/api/v1/me");
    add(r, "GET", "/api/v1/stores/{storeId}");
    add(r, "GET", "/{path*}");
    return r;
}

static void test_product_table(void **state)
{
    (void)state;
    pe_http_router_t *r = product_router();
    pe_route_match_t m;
    expect_route(r, "GET", "/healthz", "GET", "/healthz", &m);
    assert_int_equal(m.nparams, 0);
    expect_route(r, "HEAD", "/healthz", "GET", "/healthz", &m);
    expect_route(r, "GET", "/api/v1/stores/st_123", "GET", "/api/v1/stores/{storeId}", &m);
    expect_param(&m, "storeId", "st_123");
    /* Anything else under GET is the dashboard. */
    expect_route(r, "GET", "/api/v1/stores", "GET", "/{path*}", &m);
    expect_param(&m, "path", "api/v1/stores");
    expect_route(r, "GET", "/api/v1/stores/st_123/extra", "GET", "/{path*}", &m);
    expect_route(r, "GET", "/assets/app.css", "GET", "/{path*}", &m);
    expect_param(&m, "path", "assets/app.css");
    assert_string_equal(m.route->name, "/{path*}");

    /* Wrong methods on real routes are 405 ... */
    expect_allow(r, "POST", "/api/v1/me", "GET, HEAD");
    expect_allow(r, "DELETE", "/healthz", "GET, HEAD");
    expect_allow(r, "PUT", "/api/v1/stores/x", "GET, HEAD");
    /* ... but the catch-all never turns unknown POSTs into 405. */
    expect_rc(r, "POST", "/index.html", PE_ENOTFOUND);
    expect_rc(r, "POST", "/", PE_ENOTFOUND);
    expect_rc(r, "DELETE", "/api/v1/stores", PE_ENOTFOUND);
    pe_http_router_free(r);
}

/* ---- parameters ------------------------------------------------------------------------------ */

static void test_params_decoded(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    add(r, "GET", "/api/v1/stores/{storeId}/flags/{key}");
    add(r, "GET", "/files/{path*}");
    pe_route_match_t m;
    const char *pat = "/api/v1/stores/{storeId}/flags/{key}";

    expect_route(r, "GET", "/api/v1/stores/my%20store/flags/a", NULL, pat, &m);
    expect_param(&m, "storeId", "my store");
    expect_route(r, "GET", "/api/v1/stores/caf%C3%A9/flags/%e2%82%ac", NULL, pat, &m);
    expect_param(&m, "storeId", "caf\xc3\xa9");
    expect_param(&m, "key", "\xe2\x82\xac");
    /* Raw UTF-8 is fine too. */
    expect_route(r, "GET", "/api/v1/stores/caf\xc3\xa9/flags/\xf0\x9f\x98\x80", NULL, pat, &m);
    expect_param(&m, "storeId", "caf\xc3\xa9");
    expect_param(&m, "key", "\xf0\x9f\x98\x80");
    /* %2F is data inside the parameter, never a separator. */
    expect_route(r, "GET", "/api/v1/stores/a%2Fb/flags/c%2fd%2F", NULL, pat, &m);
    expect_param(&m, "storeId", "a/b");
    expect_param(&m, "key", "c/d/");
    /* '+' is not a space in paths; "%25" is a literal percent, decoded once. */
    expect_route(r, "GET", "/api/v1/stores/a+b/flags/100%25", NULL, pat, &m);
    expect_param(&m, "storeId", "a+b");
    expect_param(&m, "key", "100%");
    expect_route(r, "GET", "/api/v1/stores/%2525/flags/k", NULL, pat, &m);
    expect_param(&m, "storeId", "%25");
    /* An encoded slash cannot fake an extra segment. */
    expect_rc(r, "GET", "/api/v1/stores/s%2Fflags%2Fk", PE_ENOTFOUND);

    /* The wildcard joins decoded segments with '/'. */
    expect_route(r, "GET", "/files/a/b/c.txt", NULL, "/files/{path*}", &m);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.names[0], "path");
    expect_param(&m, "path", "a/b/c.txt");
    expect_route(r, "GET", "/files/%C3%A9t%C3%A9/x%20y", NULL, "/files/{path*}", &m);
    expect_param(&m, "path", "\xc3\xa9t\xc3\xa9/x y");
    expect_route(r, "GET", "/files/a//b/", NULL, "/files/{path*}", &m);
    expect_param(&m, "path", "a//b/");
    expect_route(r, "GET", "/files/", NULL, "/files/{path*}", &m);
    expect_param(&m, "path", "");
    expect_route(r, "GET", "/files", NULL, "/files/{path*}", &m);
    expect_param(&m, "path", "");
    pe_http_router_free(r);
}

static void test_wildcard_root(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    add(r, "GET", "/{path*}");
    pe_route_match_t m;
    expect_route(r, "GET", "/", NULL, "/{path*}", &m);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.names[0], "path");
    assert_string_equal(m.values[0], "");
    expect_route(r, "GET", "/index.html", NULL, "/{path*}", &m);
    expect_param(&m, "path", "index.html");
    expect_route(r, "GET", "/a/b/c", NULL, "/{path*}", &m);
    expect_param(&m, "path", "a/b/c");
    /* Wildcard-only path, other method: not found, not 405. */
    expect_rc(r, "POST", "/", PE_ENOTFOUND);
    expect_rc(r, "POST", "/index.html", PE_ENOTFOUND);
    expect_rc(r, "DELETE", "/a/b", PE_ENOTFOUND);
    pe_http_router_free(r);
}

static void test_empty_param_segment(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    add(r, "GET", "/stores/{id}/x");
    add(r, "GET", "/stores/{id}");
    expect_rc(r, "GET", "/stores//x", PE_ENOTFOUND);
    expect_rc(r, "GET", "/stores/", PE_ENOTFOUND);
    expect_rc(r, "GET", "/stores", PE_ENOTFOUND);
    pe_route_match_t m;
    expect_route(r, "GET", "/stores/1/x", NULL, "/stores/{id}/x", &m);
    expect_param(&m, "id", "1");
    pe_http_router_free(r);
}

static void test_trailing_slash(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    add(r, "GET", "/");
    add(r, "GET", "/api/v1/me");
    add(r, "GET", "/api/v1/stores/{storeId}");
    /* A trailing slash is a different path: no implicit match. */
    expect_rc(r, "GET", "/api/v1/me/", PE_ENOTFOUND);
    expect_rc(r, "GET", "/api/v1/stores/x/", PE_ENOTFOUND);
    expect_rc(r, "GET", "/api/v1/", PE_ENOTFOUND);
    /* Empty segments are not collapsed. */
    expect_rc(r, "GET", "//", PE_ENOTFOUND);
    expect_rc(r, "GET", "/api//v1/me", PE_ENOTFOUND);
    expect_rc(r, "GET", "//api/v1/me", PE_ENOTFOUND);
    expect_rc(r, "GET", "/", PE_ROUTER_MATCH);
    expect_rc(r, "GET", "/api/v1/me", PE_ROUTER_MATCH);
    pe_http_router_free(r);
}

/* ---- 405 ------------------------------------------------------------------------------------- */

static void test_wrong_method_allow(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    add(r, "GET", "/items");
    add(r, "POST", "/items");
    add(r, "GET", "/items/{id}");
    add(r, "PUT", "/items/{id}");
    add(r, "DELETE", "/items/{id}");
    add(r, "POST", "/only-post");
    /* Two GET routes for one path: GET must appear once. */
    add(r, "GET", "/dup/{a}");
    add(r, "GET", "/dup/fixed");
    add(r, "HEAD", "/dup/fixed");

    expect_allow(r, "PATCH", "/items", "GET, HEAD, POST");
    expect_allow(r, "DELETE", "/items", "GET, HEAD, POST");
    expect_allow(r, "POST", "/items/7", "GET, HEAD, PUT, DELETE");
    expect_allow(r, "PUT", "/only-post", "POST");
    expect_allow(r, "GET", "/only-post", "POST");
    expect_allow(r, "HEAD", "/only-post", "POST");
    expect_allow(r, "POST", "/dup/fixed", "GET, HEAD");
    expect_allow(r, "POST", "/dup/other", "GET, HEAD");
    /* Methods are case-sensitive tokens. */
    expect_allow(r, "get", "/items", "GET, HEAD, POST");

    /* HEAD matches GET routes; the allowed methods themselves match. */
    pe_route_match_t m;
    expect_route(r, "HEAD", "/items", "GET", "/items", &m);
    expect_route(r, "HEAD", "/items/9", "GET", "/items/{id}", &m);
    expect_param(&m, "id", "9");
    expect_route(r, "POST", "/items", "POST", "/items", &m);
    expect_route(r, "DELETE", "/items/9", "DELETE", "/items/{id}", &m);

    /* Unknown paths are 404 with an empty Allow. */
    expect_rc(r, "GET", "/nothing", PE_ENOTFOUND);
    expect_rc(r, "PATCH", "/items/1/2", PE_ENOTFOUND);
    pe_http_router_free(r);
}

/* A catch-all GET answers GET for every path no other route owns; a path a route without a
 * wildcard owns (POST /api/v1/auth/login) is 405 for GET, with its Allow, not the dashboard's
 * 404 (issue 22's probe). Its neighbours stay the catch-all's. */
static void test_wildcard_get_does_not_shadow_405(void **state)
{
    (void)state;
    pe_http_router_t *r = product_router();
    pe_route_match_t m;
    expect_allow(r, "GET", "/api/v1/auth/login", "POST");
    expect_allow(r, "HEAD", "/api/v1/auth/login", "POST");
    expect_route(r, "GET", "/api/v1/auth/login/x", "GET", "/{path*}", &m);
    expect_route(r, "GET", "/api/v1/auth", "GET", "/{path*}", &m);
    pe_http_router_free(r);
}

/* Allow does not overflow a small buffer and stays a well-formed (possibly shorter) list. */
static void test_allow_small_buffer(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    add(r, "GET", "/x");
    add(r, "POST", "/x");
    add(r, "PUT", "/x");
    pe_route_match_t m;
    char allow[10];
    memset(allow, 'Z', sizeof allow);
    assert_int_equal(match(r, "DELETE", "/x", &m, allow, sizeof allow), PE_ROUTER_WRONG_METHOD);
    assert_non_null(memchr(allow, '\0', sizeof allow));
    /* Whole methods are dropped, never cut: what is there is a prefix of the full list. */
    static const char full[] = "GET, HEAD, POST, PUT";
    size_t n = strlen(allow);
    assert_true(n > 0);
    assert_memory_equal(allow, full, n);
    assert_true(full[n] == ',' || full[n] == '\0');
    /* No Allow buffer at all. */
    assert_int_equal(match(r, "DELETE", "/x", &m, NULL, 0), PE_ROUTER_WRONG_METHOD);
    pe_http_router_free(r);
}

/* ---- invalid paths --------------------------------------------------------------------------- */

static void test_invalid_paths(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    add(r, "GET", "/{path*}");
    static const char *const bad[] = {
        "",        "no-slash", "*",          "a/b",           "/%zz",       "/a%zz",
        "/%",      "/a%",      "/%0",        "/a/%0",         "/%00",       "/a%00b",
        "/%C0%80", "/%c0%af",  "/%ED%A0%80", "/%F4%90%80%80", "/%FF",       "/%C3",
        "/\xff",   "/caf\xc3", "/%G0",       "/%0G",          "/ok/%E2%82", "/%%41",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        pe_route_match_t m;
        char allow[64] = "stale";
        int rc = match(r, "GET", bad[i], &m, allow, sizeof allow);
        if (rc != PE_EINVAL)
            fail_msg("path \"%s\": rc %d, want PE_EINVAL", bad[i], rc);
        assert_string_equal(allow, "");
    }
    /* A raw NUL inside the counted path. */
    pe_route_match_t m;
    assert_int_equal(match_n(r, "GET", "/a\0b", 4, &m, NULL, 0), PE_EINVAL);
    /* Invalid even when no route could match. */
    pe_http_router_t *empty = pe_http_router_new();
    assert_int_equal(match(empty, "GET", "/%zz", &m, NULL, 0), PE_EINVAL);
    expect_rc(empty, "GET", "/fine", PE_ENOTFOUND);
    pe_http_router_free(empty);
    pe_http_router_free(r);
}

static void test_path_length(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    add(r, "GET", "/{path*}");
    add(r, "GET", "/p/{one}");
    char *path = malloc(PE_HTTP_MAX_PATH + 2);
    assert_non_null(path);
    pe_route_match_t m;

    /* Exactly PE_HTTP_MAX_PATH bytes is allowed, one more is not. */
    path[0] = '/';
    memset(path + 1, 'a', PE_HTTP_MAX_PATH - 1);
    assert_int_equal(match_n(r, "GET", path, PE_HTTP_MAX_PATH, &m, NULL, 0), PE_ROUTER_MATCH);
    assert_int_equal(strlen(m.values[0]), PE_HTTP_MAX_PATH - 1);
    path[PE_HTTP_MAX_PATH] = 'a';
    assert_int_equal(match_n(r, "GET", path, PE_HTTP_MAX_PATH + 1, &m, NULL, 0), PE_EINVAL);

    /* One long parameter at the limit. */
    path[0] = '/';
    path[1] = 'p';
    path[2] = '/';
    memset(path + 3, 'b', PE_HTTP_MAX_PATH - 3);
    assert_int_equal(match_n(r, "GET", path, PE_HTTP_MAX_PATH, &m, NULL, 0), PE_ROUTER_MATCH);
    assert_string_equal(m.route->pattern, "/p/{one}");
    assert_int_equal(strlen(m.values[0]), PE_HTTP_MAX_PATH - 3);

    /* Many short segments at the limit: "/a/a/..." (1024 segments) is too deep to be a route. */
    for (size_t i = 0; i < PE_HTTP_MAX_PATH; i += 2) {
        path[i] = '/';
        path[i + 1] = 'a';
    }
    assert_int_equal(match_n(r, "GET", path, PE_HTTP_MAX_PATH, &m, NULL, 0), PE_ENOTFOUND);

    /* pathlen is honoured: bytes after it are not part of the path. */
    assert_int_equal(match_n(r, "GET", "/p/xy?q=1", 5, &m, NULL, 0), PE_ROUTER_MATCH);
    assert_string_equal(m.values[0], "xy");
    free(path);
    pe_http_router_free(r);
}

static void test_segment_count(void **state)
{
    (void)state;
    pe_http_router_t *r = pe_http_router_new();
    /* A literal route of 32 segments (the pattern outlives the router: freed last). */
    pe_buf_t pattern = PE_BUF_INIT;
    for (int i = 0; i < 32; i++)
        assert_int_equal(pe_buf_puts(&pattern, "/s"), 0);
    add(r, "GET", pattern.data);
    add(r, "GET", "/w/{rest*}");
    pe_route_match_t m;
    expect_route(r, "GET", pattern.data, "GET", pattern.data, &m);

    /* 32 segments through the wildcard: joined back intact. */
    pe_buf_t path = PE_BUF_INIT, want = PE_BUF_INIT;
    assert_int_equal(pe_buf_puts(&path, "/w"), 0);
    for (int i = 0; i < 31; i++) {
        const char *seg = i % 2 ? "/o" : "/e";
        assert_int_equal(pe_buf_puts(&path, seg), 0);
        assert_int_equal(pe_buf_puts(&want, i ? seg : seg + 1), 0);
    }
    expect_route(r, "GET", path.data, "GET", "/w/{rest*}", &m);
    expect_param(&m, "rest", want.data);

    /* Far too many segments: not found, never a crash. */
    pe_buf_reset(&path);
    assert_int_equal(pe_buf_puts(&path, "/w"), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(pe_buf_puts(&path, "/x"), 0);
    expect_rc(r, "GET", path.data, PE_ENOTFOUND);
    pe_http_router_free(r);
    pe_buf_free(&path);
    pe_buf_free(&want);
    pe_buf_free(&pattern);
}

/* ---- percent decoding ------------------------------------------------------------------------ */

static void test_percent_decode(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool plus;
        long rc;
        const char *out;
    } cases[] = {
        {"", false, 0, ""},
        {"abc", false, 3, "abc"},
        {"%41", false, 1, "A"},
        {"a%20b", false, 3, "a b"},
        {"%c3%A9", false, 2, "\xc3\xa9"},
        {"a+b", false, 3, "a+b"},
        {"a+b", true, 3, "a b"},
        {"%2B", true, 1, "+"},
        {"%25", false, 1, "%"},
        {"%2525", false, 3, "%25"},
        {"%2F", false, 1, "/"},
        {"%", false, -1, NULL},
        {"a%", false, -1, NULL},
        {"%4", false, -1, NULL},
        {"%4g", false, -1, NULL},
        {"%g4", false, -1, NULL},
        {"%00", false, -1, NULL},
        {"%00", true, -1, NULL},
        {"%C3", false, -1, NULL},
        {"%C0%80", false, -1, NULL},
        {"%ED%A0%80", false, -1, NULL},
        {"\xff", false, -1, NULL},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        char out[32];
        long rc = pe_percent_decode_text(cases[i].in, strlen(cases[i].in), out, cases[i].plus);
        if (rc != cases[i].rc)
            fail_msg("decode \"%s\": %ld, want %ld", cases[i].in, rc, cases[i].rc);
        if (rc >= 0) {
            assert_int_equal(out[rc], '\0');
            assert_string_equal(out, cases[i].out);
        }
    }
    /* n is honoured, and a raw NUL inside n is refused. */
    char out[8];
    assert_int_equal(pe_percent_decode_text("%41BC", 3, out, false), 1);
    assert_string_equal(out, "A");
    assert_int_equal(pe_percent_decode_text("%4", 2, out, false), -1);
    assert_int_equal(pe_percent_decode_text("a\0b", 3, out, false), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_lookup),
        cmocka_unit_test(test_duplicate_route),
        cmocka_unit_test(test_malformed_patterns),
        cmocka_unit_test(test_max_params),
        cmocka_unit_test(test_literal_beats_param),
        cmocka_unit_test(test_mixed_precedence),
        cmocka_unit_test(test_exact_beats_empty_wildcard),
        cmocka_unit_test(test_product_table),
        cmocka_unit_test(test_params_decoded),
        cmocka_unit_test(test_wildcard_root),
        cmocka_unit_test(test_empty_param_segment),
        cmocka_unit_test(test_trailing_slash),
        cmocka_unit_test(test_wrong_method_allow),
        cmocka_unit_test(test_wildcard_get_does_not_shadow_405),
        cmocka_unit_test(test_allow_small_buffer),
        cmocka_unit_test(test_invalid_paths),
        cmocka_unit_test(test_path_length),
        cmocka_unit_test(test_segment_count),
        cmocka_unit_test(test_percent_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
