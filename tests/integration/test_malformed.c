/*
 * test_malformed.c — hostile and broken HTTP against a running profit-engine child process,
 * over raw sockets (pe_test_raw): garbage, bad request lines, bad headers, oversize everything,
 * lying Content-Lengths, broken chunking, bodies where none belong, bad JSON on the login route,
 * odd methods.
 *
 * Invariants the tests hold the server to:
 *  1. Whatever arrives, the answer (when there is one) is a client error: 4xx, never 5xx. The
 *     one exception is "HTTP/9.9", where RFC 9110 §15.6.6 prescribes 505 (HTTP Version Not
 *     Supported); that case accepts exactly 505 or a 4xx.
 *  2. A request that reaches the router is answered with the exact status and the one error
 *     shape {"error":{"code":…,"message":…}} (and nothing else in the object).
 *  3. After every case the server still answers GET /healthz with 200; at the end the child is
 *     still running and exits 0 on SIGTERM.
 *
 * Each case is a row of a table: the bytes, whether to half-close after sending, and what the
 * answer must be. A failing row prints what came back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "pe_test.h"

#define RAW_TIMEOUT_MS 5000
#define KB             ((size_t)1024)

static pe_test_fixture_t fx;

typedef enum {
    ANSWER_4XX,      /* a 4xx from the HTTP layer (libmicrohttpd); no body shape required */
    ANSWER_4XX_OR_0, /* a 4xx, or the connection is closed without an answer */
    ANSWER_ROUTED,   /* exactly `status`, JSON error body with `code` */
    ANSWER_EXACT,    /* exactly `status`, any body */
    ANSWER_VERSION,  /* 505 or a 4xx, or closed without an answer */
    ANSWER_NOT_5XX,  /* anything but a 5xx (a known limitation of the HTTP library) */
} answer_t;

typedef struct {
    const char *name;
    char *data; /* owned */
    size_t len;
    bool shut_write;
    answer_t answer;
    int status;
    const char *code;
} malformed_case_t;

/* ---- building cases -------------------------------------------------------------------------- */

static malformed_case_t make_case(const char *name, const void *data, size_t len, bool shut_write,
                                  answer_t answer, int status, const char *code)
{
    malformed_case_t c = {name, malloc(len + 1), len, shut_write, answer, status, code};
    assert_non_null(c.data);
    memcpy(c.data, data, len);
    c.data[len] = '\0';
    return c;
}

/* A case from a C string (no NUL bytes inside). */
static malformed_case_t str_case(const char *name, const char *s, bool shut_write, answer_t answer,
                                 int status, const char *code)
{
    return make_case(name, s, strlen(s), shut_write, answer, status, code);
}

/* A case built from a printf-formatted head followed by `fill_len` copies of `fill` and a tail. */
static malformed_case_t built_case(const char *name, const char *head, const char *fill,
                                   size_t fill_count, const char *tail, bool shut_write,
                                   answer_t answer, int status, const char *code)
{
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_buf_puts(&b, head), 0);
    for (size_t i = 0; i < fill_count; i++)
        assert_int_equal(pe_buf_puts(&b, fill), 0);
    assert_int_equal(pe_buf_puts(&b, tail), 0);
    malformed_case_t c = {name, b.data, b.len, shut_write, answer, status, code};
    return c;
}

/* A login POST with the given content type and body. */
static malformed_case_t login_case(const char *name, const char *content_type, const char *body,
                                   size_t body_len, int status, const char *code)
{
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_buf_printf(&b,
                                   "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\n"
                                   "Connection: close\r\nContent-Type: %s\r\n"
                                   "Content-Length: %zu\r\n\r\n",
                                   content_type, body_len),
                     0);
    assert_int_equal(pe_buf_append(&b, body, body_len), 0);
    malformed_case_t c = {name, b.data, b.len, false, ANSWER_ROUTED, status, code};
    return c;
}

/* ---- judging answers ------------------------------------------------------------------------- */

/* The status of the first response in raw, or 0 when raw holds none. */
static int first_status(const pe_buf_t *raw)
{
    if (!raw->data || raw->len < 12)
        return 0;
    /* "HTTP/1.x NNN " */
    if (strncmp(raw->data, "HTTP/1.", 7) != 0 || raw->data[8] != ' ')
        return -1; /* bytes that are not an HTTP response */
    char *end = NULL;
    long status = strtol(raw->data + 9, &end, 10);
    if (end != raw->data + 12 || status < 100 || status > 599)
        return -1;
    return (int)status;
}

/* Checks the first response's body is the one JSON error shape with `code` (NULL: any code). */
static bool error_shape(const pe_buf_t *raw, const char *code, char *why, size_t whylen)
{
    const char *end = strstr(raw->data, "\r\n\r\n");
    if (!end) {
        snprintf(why, whylen, "no end of headers");
        return false;
    }
    size_t head_len = (size_t)(end - raw->data);
    const char *cl = NULL, *ct = NULL;
    for (const char *p = raw->data; p && p < end; p = strstr(p, "\r\n")) {
        if (p != raw->data)
            p += 2;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            cl = p + 15;
        if (strncasecmp(p, "Content-Type:", 13) == 0)
            ct = p + 13;
        if (p >= end)
            break;
    }
    if (!cl || !ct) {
        snprintf(why, whylen, "no Content-Length or Content-Type");
        return false;
    }
    while (*ct == ' ')
        ct++;
    if (strncmp(ct, "application/json", 16) != 0) {
        snprintf(why, whylen, "Content-Type is not application/json");
        return false;
    }
    size_t body_len = strtoul(cl, NULL, 10);
    const char *body = end + 4;
    if (head_len + 4 + body_len > raw->len) {
        snprintf(why, whylen, "body shorter than Content-Length");
        return false;
    }
    cJSON *j = NULL;
    char err[128];
    if (pe_json_parse(body, body_len, &j, err, sizeof err) != 0) {
        snprintf(why, whylen, "body is not JSON: %s", err);
        return false;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    bool ok = cJSON_IsObject(j) && cJSON_GetArraySize(j) == 1 && cJSON_IsObject(e) &&
              cJSON_GetArraySize(e) == 2 && cJSON_IsString(c) && cJSON_IsString(m) &&
              m->valuestring[0] && c->valuestring[0] &&
              (!code || strcmp(c->valuestring, code) == 0);
    if (!ok)
        snprintf(why, whylen, "not {\"error\":{\"code\":\"%s\",\"message\":…}}", code ? code : "…");
    cJSON_Delete(j);
    return ok;
}

/* True when the first response's headers carry X-Request-Id. */
static bool has_request_id(const pe_buf_t *raw)
{
    const char *end = strstr(raw->data, "\r\n\r\n");
    const char *h = strcasestr(raw->data, "\r\nX-Request-Id: ");
    return end && h && h < end;
}

static void healthz_ok(const char *after)
{
    char url[128];
    pe_test_response_t r;
    snprintf(url, sizeof url, "%s/healthz", fx.server.base_url);
    if (pe_test_http("GET", url, NULL, NULL, &r) != 0 || r.status != 200)
        fail_msg("after '%s': GET /healthz answered %ld (server alive: %d)", after, r.status,
                 pe_test_server_alive(&fx.server));
    pe_test_response_free(&r);
}

/* Sends one case and judges the answer; returns true when it passes (and prints why not). */
static bool run_case(const malformed_case_t *c)
{
    pe_buf_t raw = PE_BUF_INIT;
    long got = pe_test_raw(fx.server.port, c->data, c->len, c->shut_write, RAW_TIMEOUT_MS, &raw);
    int status = got > 0 ? first_status(&raw) : 0;
    char why[256] = "";
    bool ok = got >= 0;
    if (!ok)
        snprintf(why, sizeof why, "could not connect");
    else if (status < 0)
        snprintf(why, sizeof why, "the reply is not an HTTP response"), ok = false;

    if (ok) {
        switch (c->answer) {
        case ANSWER_4XX:
            ok = status >= 400 && status < 500;
            break;
        case ANSWER_4XX_OR_0:
            ok = status == 0 || (status >= 400 && status < 500);
            break;
        case ANSWER_VERSION:
            ok = status == 0 || status == 505 || (status >= 400 && status < 500);
            break;
        case ANSWER_NOT_5XX:
            ok = status < 500;
            break;
        case ANSWER_EXACT:
            ok = status == c->status;
            break;
        case ANSWER_ROUTED:
            ok = status == c->status && error_shape(&raw, c->code, why, sizeof why);
            break;
        }
        if (!ok && !why[0])
            snprintf(why, sizeof why, "unexpected status %d", status);
        /* An error that carries X-Request-Id was answered by our code, not by the HTTP library:
         * it has the one error shape. */
        if (ok && status >= 400 && c->answer != ANSWER_ROUTED && has_request_id(&raw))
            ok = error_shape(&raw, NULL, why, sizeof why);
    }
    if (!ok)
        print_error("case '%s': %s; got %ld bytes:\n%.600s\n---\n", c->name, why, got,
                    raw.data ? raw.data : "");
    else if (getenv("PE_TEST_VERBOSE"))
        print_message("case '%s': status %d (%ld bytes)\n", c->name, status, got);
    pe_buf_free(&raw);
    return ok;
}

/* ---- the cases ------------------------------------------------------------------------------- */

static size_t build_cases(malformed_case_t *cs, size_t max)
{
    size_t n = 0;
#define ADD(expr)                                                                                  \
    do {                                                                                           \
        assert_true(n < max);                                                                      \
        cs[n++] = (expr);                                                                          \
    } while (0)

    /* Not HTTP at all: a TLS ClientHello, then binary noise ending in a blank line. */
    static const unsigned char tls[] = {0x16, 0x03, 0x01, 0x00, 0x31, 0x01, 0x00, 0x00, 0x2d,
                                        0x03, 0x03, 0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0x0d,
                                        0x0a, 0x00, 0x00, 0x13, 0x01, 0x0d, 0x0a, 0x0d, 0x0a};
    ADD(make_case("TLS hello", tls, sizeof tls, true, ANSWER_4XX_OR_0, 0, NULL));
    ADD(str_case("garbage line", "\x01\x02\x03 \x7f\x7f\x7f\r\n\r\n", true, ANSWER_4XX_OR_0, 0,
                 NULL));
    ADD(str_case("blank lines only", "\r\n\r\n\r\n\r\n", true, ANSWER_4XX_OR_0, 0, NULL));

    /* Request lines. */
    ADD(str_case("request line without version", "GET /healthz\r\nHost: t\r\n\r\n", true,
                 ANSWER_4XX_OR_0, 0, NULL));
    ADD(str_case("HTTP/9.9", "GET /healthz HTTP/9.9\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_VERSION, 0, NULL));
    ADD(str_case("HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
                 true, ANSWER_4XX, 0, NULL));
    static const char nul_line[] =
        "GET /heal\0thz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    /* libmicrohttpd before 1.0 cuts the target at the NUL and serves "GET /heal"; 1.0 parses
     * requests by RFC 9112 and refuses it. */
    ADD(make_case("NUL in request line", nul_line, sizeof nul_line - 1, true,
                  MHD_VERSION >= 0x01000000 ? ANSWER_4XX_OR_0 : ANSWER_NOT_5XX, 0, NULL));
    ADD(str_case("path without a leading slash",
                 "GET healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_4XX_OR_0, 0, NULL));

    /* Headers. */
    ADD(str_case("header line without colon",
                 "GET /healthz HTTP/1.1\r\nHost: t\r\nThisHasNoColon\r\nConnection: close\r\n\r\n",
                 true, ANSWER_4XX, 0, NULL));
    ADD(built_case("100 KB header", "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ", "a", 100 * KB,
                   "\r\nConnection: close\r\n\r\n", true, ANSWER_4XX, 0, NULL));
    /* The per-connection memory (32 KB, where the headers, the read buffer and the answer's
     * headers live) holds what a browser with a heavy cookie jar sends; beyond, 431. */
    ADD(built_case("12 KB of cookies", "GET /healthz HTTP/1.1\r\nHost: t\r\nCookie: c=", "a",
                   12 * KB, "\r\nConnection: close\r\n\r\n", true, ANSWER_EXACT, 200, NULL));
    ADD(built_case("20 KB header", "GET /healthz HTTP/1.1\r\nHost: t\r\nCookie: c=", "a", 20 * KB,
                   "\r\nConnection: close\r\n\r\n", true, ANSWER_4XX, 0, NULL));
    ADD(built_case("10 000 headers", "GET /healthz HTTP/1.1\r\nHost: t\r\n", "X-H: v\r\n", 10000,
                   "Connection: close\r\n\r\n", true, ANSWER_4XX, 0, NULL));

    /* Paths that reach the router and are refused there. */
    ADD(str_case("invalid UTF-8 path",
                 "GET /api/v1/\xff\xfe\xc0\xaf HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                 true, ANSWER_ROUTED, 400, "invalid_path"));
    ADD(str_case("percent-encoded invalid UTF-8 path",
                 "GET /dash%C0%AFboard HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_ROUTED, 400, "invalid_path"));
    ADD(str_case("path with %00",
                 "GET /heal%00thz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_ROUTED, 400, "invalid_path"));
    ADD(str_case("path with %zz",
                 "GET /heal%zzthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_ROUTED, 400, "invalid_path"));
    ADD(str_case("query with %zz",
                 "GET /healthz?a=%zz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_ROUTED, 400, "invalid_query"));
    ADD(str_case("dot-dot path",
                 "GET /../../etc/passwd HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_ROUTED, 404, "not_found"));
    ADD(built_case("3 KB path", "GET /", "a", 3 * KB,
                   " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true, ANSWER_ROUTED, 400,
                   "invalid_path"));
    ADD(built_case("64 KB URL", "GET /", "a", 64 * KB,
                   " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true, ANSWER_4XX, 0, NULL));

    /* Content-Length lies. */
    ADD(str_case("Content-Length: -1",
                 "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nContent-Length: -1\r\n\r\n{}",
                 true, ANSWER_4XX, 0, NULL));
    ADD(str_case("Content-Length: 99999999999999999999",
                 "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
                 true, ANSWER_4XX, 0, NULL));
    ADD(str_case("Content-Length: 1e3",
                 "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nContent-Length: 1e3\r\n\r\n{}",
                 true, ANSWER_4XX, 0, NULL));
    ADD(str_case("two Content-Lengths",
                 "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n"
                 "\r\n{}",
                 true, ANSWER_4XX_OR_0, 0, NULL));
    ADD(str_case("truncated body then half-close",
                 "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":\"a@b",
                 true, ANSWER_4XX_OR_0, 0, NULL));

    /* Chunked bodies. */
    ADD(str_case("bad chunk size",
                 "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "zz\r\n{}\r\n0\r\n\r\n",
                 true, ANSWER_4XX_OR_0, 0, NULL));
    ADD(str_case("huge chunk size",
                 "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
                 true, ANSWER_4XX_OR_0, 0, NULL));
    ADD(str_case("chunked and Content-Length",
                 "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nContent-Length: 4\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                 true, ANSWER_4XX, 0, NULL));
    {
        /* 16 chunks of 1 KB: four times the login route's 4 KB limit. */
        pe_buf_t b = PE_BUF_INIT;
        assert_int_equal(pe_buf_puts(&b, "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\n"
                                         "Connection: close\r\nContent-Type: application/json\r\n"
                                         "Transfer-Encoding: chunked\r\n\r\n"),
                         0);
        for (int i = 0; i < 16; i++) {
            assert_int_equal(pe_buf_puts(&b, "400\r\n"), 0);
            for (int k = 0; k < 1024; k++)
                assert_int_equal(pe_buf_append(&b, " ", 1), 0);
            assert_int_equal(pe_buf_puts(&b, "\r\n"), 0);
        }
        assert_int_equal(pe_buf_puts(&b, "0\r\n\r\n"), 0);
        malformed_case_t c = {"chunked body over the route limit",
                              b.data,
                              b.len,
                              false,
                              ANSWER_ROUTED,
                              413,
                              "payload_too_large"};
        ADD(c);
    }

    /* Bodies where none belong. */
    ADD(str_case("body on GET /healthz",
                 "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n"
                 "\r\nhello",
                 false, ANSWER_ROUTED, 413, "payload_too_large"));
    ADD(str_case("chunked body on GET /healthz",
                 "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                 false, ANSWER_ROUTED, 413, "payload_too_large"));

    /* The login route's body rules. */
    static const char login_ok[] = "{\"email\":\"a@example.com\",\"password\":\"password1\"}";
    ADD(login_case("login as form data", "application/x-www-form-urlencoded", "email=a&password=b",
                   18, 415, "unsupported_media_type"));
    ADD(login_case("login as text/plain", "text/plain", login_ok, sizeof login_ok - 1, 415,
                   "unsupported_media_type"));
    ADD(login_case("login as application/jsonx", "application/jsonx", login_ok, sizeof login_ok - 1,
                   415, "unsupported_media_type"));
    ADD(login_case("login malformed JSON", "application/json", "{\"email\":", 9, 400,
                   "invalid_json"));
    ADD(login_case("login trailing garbage", "application/json", "{}x", 3, 400, "invalid_json"));
    ADD(login_case("login JSON array", "application/json", "[1,2,3]", 7, 400, "invalid_request"));
    ADD(login_case("login JSON string", "application/json", "\"x\"", 3, 400, "invalid_request"));
    ADD(login_case("login JSON null", "application/json", "null", 4, 400, "invalid_request"));
    {
        char nested[2100];
        memset(nested, '[', 1000);
        memset(nested + 1000, ']', 1000);
        ADD(login_case("login deeply nested JSON", "application/json", nested, 2000, 400,
                       "invalid_json"));
        char objs[4000];
        size_t k = 0;
        for (int i = 0; i < 500; i++)
            k += (size_t)snprintf(objs + k, sizeof objs - k, "{\"a\":");
        objs[k++] = '1';
        memset(objs + k, '}', 500);
        k += 500;
        ADD(login_case("login deeply nested objects", "application/json", objs, k, 400,
                       "invalid_json"));
    }
    static const char bad_utf8[] =
        "{\"email\":\"a\xff\xfe@example.com\",\"password\":\"p\xc0\xaf\"}";
    ADD(login_case("login invalid UTF-8 JSON", "application/json", bad_utf8, sizeof bad_utf8 - 1,
                   400, "invalid_json"));
    static const char nul_json[] = "{\"email\":\"a\0b\",\"password\":\"xxxxxxxx\"}";
    ADD(login_case("login NUL inside JSON", "application/json", nul_json, sizeof nul_json - 1, 400,
                   "invalid_json"));
    ADD(login_case("login empty JSON body", "application/json", "", 0, 400, "invalid_json"));
    {
        size_t big = (size_t)5 * 1024 * 1024;
        char *body = malloc(big);
        assert_non_null(body);
        memset(body, ' ', big);
        body[0] = '{';
        body[big - 1] = '}';
        ADD(login_case("login 5 MB body", "application/json", body, big, 413, "payload_too_large"));
        free(body);
    }

    /* Methods. */
    ADD(str_case("unknown method BREW",
                 "BREW /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_ROUTED, 405, "method_not_allowed"));
    /* Only the dashboard's catch-all GET matches "/": wildcard-only matches are 404, not 405
     * (router.c invariant 4). */
    ADD(str_case("unknown method BREW on /",
                 "BREW / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true, ANSWER_ROUTED,
                 404, "not_found"));
    ADD(str_case("lowercase method",
                 "get /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_ROUTED, 405, "method_not_allowed"));
    ADD(str_case("DELETE on /healthz",
                 "DELETE /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_ROUTED, 405, "method_not_allowed"));
    /* A path a route owns is 405 for another method, even for GET, which the dashboard's
     * catch-all would otherwise answer (router.c invariant 4). */
    ADD(str_case("GET on the login route",
                 "GET /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_ROUTED, 405, "method_not_allowed"));
    ADD(str_case("OPTIONS on a path",
                 "OPTIONS /api/v1/me HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Origin: http://evil.example\r\nAccess-Control-Request-Method: GET\r\n\r\n",
                 true, ANSWER_EXACT, 204, NULL));
    ADD(str_case("OPTIONS on an unknown API path",
                 "OPTIONS /api/v1/nothing-here HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                 true, ANSWER_ROUTED, 404, "not_found"));
    ADD(str_case("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_4XX, 0, NULL));
    ADD(str_case("unknown API path",
                 "GET /api/v1/nothing-here HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true,
                 ANSWER_ROUTED, 404, "not_found"));
#undef ADD
    return n;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_malformed_requests(void **state)
{
    (void)state;
    malformed_case_t cases[96];
    size_t n = build_cases(cases, PE_ARRAY_LEN(cases));
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        if (!run_case(&cases[i]))
            failures++;
        healthz_ok(cases[i].name);
        free(cases[i].data);
    }
    assert_int_equal(failures, 0);
}

/* The CORS-less preflight answer carries what the path allows, and no CORS grant. */
static void test_options_answer(void **state)
{
    (void)state;
    static const char req[] = "OPTIONS /api/v1/me HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                              "Origin: http://evil.example\r\n"
                              "Access-Control-Request-Method: GET\r\n\r\n";
    pe_buf_t raw = PE_BUF_INIT;
    assert_true(pe_test_raw(fx.server.port, req, sizeof req - 1, 1, RAW_TIMEOUT_MS, &raw) > 0);
    assert_int_equal(first_status(&raw), 204);
    assert_non_null(strcasestr(raw.data, "\r\nAllow: GET"));
    assert_null(strcasestr(raw.data, "Access-Control-Allow-Origin"));
    assert_non_null(strcasestr(raw.data, "\r\nX-Request-Id: "));
    pe_buf_free(&raw);
}

/* Many broken requests on one connection, back to back. */
static void test_pipelined_garbage(void **state)
{
    (void)state;
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                              "GET /heal%00thz HTTP/1.1\r\nHost: t\r\n\r\n"
                              "BREW / HTTP/1.1\r\nHost: t\r\n\r\n"
                              "\x01\x02\x03\r\n\r\n";
    pe_buf_t raw = PE_BUF_INIT;
    assert_true(pe_test_raw(fx.server.port, req, sizeof req - 1, 1, RAW_TIMEOUT_MS, &raw) > 0);
    assert_int_equal(first_status(&raw), 200);
    /* Every answer in the stream is a 200 or a 4xx. */
    for (const char *p = raw.data; (p = strstr(p, "HTTP/1.1 ")) != NULL; p += 9) {
        long st = strtol(p + 9, NULL, 10);
        assert_true(st == 200 || (st >= 400 && st < 500));
    }
    pe_buf_free(&raw);
    healthz_ok("pipelined garbage");
}

static void test_server_survived(void **state)
{
    (void)state;
    healthz_ok("everything");
    assert_true(pe_test_server_alive(&fx.server));
    int rc = pe_test_server_stop(&fx.server);
    if (rc != 0)
        fail_msg("profit-engine serve exited with %d on SIGTERM (log: %s)", rc, fx.server.log_path);
}

static int group_setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 0);
    pe_test_server_start(
        &fx.server, fx.conninfo,
        (const char *const[]){"PE_HTTP_THREADS=2", "PE_CONNECTION_TIMEOUT=5", NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_options_answer),
        cmocka_unit_test(test_pipelined_garbage),
        cmocka_unit_test(test_server_survived),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
