/*
 * test_config.c — configuration from PE_* variables (through a lookup table instead of the
 * process environment), "host:port" parsing, and the error-code table.
 *
 * Invariants checked:
 *  1. Every variable has its documented default.
 *  2. A bad value is PE_EINVAL with a single-line message that starts with "<VARIABLE>:", and
 *     leaves no allocation behind in cfg.
 *  3. Every PE_E… code has one description, one machine code and one HTTP status; unknown codes
 *     are internal errors (500).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pe_test.h"

/* ---- a fake environment ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *value;
} var_t;

/* ctx is a var_t array ended by a NULL name. */
static const char *table_lookup(const char *name, void *ctx)
{
    for (const var_t *v = ctx; v->name; v++)
        if (strcmp(v->name, name) == 0)
            return v->value;
    return NULL;
}

/* Loads cfg from one variable set to value. */
static int load_one(pe_config_t *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    var_t vars[] = {{name, value}, {NULL, NULL}};
    return pe_config_load(cfg, table_lookup, vars, err, errlen);
}

static void expect_bad(const char *name, const char *value)
{
    pe_config_t cfg;
    char err[512];
    int rc = load_one(&cfg, name, value, err, sizeof err);
    if (rc != PE_EINVAL)
        fail_msg("%s=\"%.60s\": rc %d, want PE_EINVAL", name, value, rc);
    size_t nl = strlen(name);
    if (strncmp(err, name, nl) != 0 || err[nl] != ':')
        fail_msg("%s=\"%.60s\": message \"%s\" does not start with \"%s:\"", name, value, err,
                 name);
    if (strchr(err, '\n') || strchr(err, '\r'))
        fail_msg("%s=\"%.60s\": message is not one line: \"%s\"", name, value, err);
    /* Nothing is left allocated: the loader freed what it had. */
    assert_null(cfg.database_url);
    assert_null(cfg.redis_url);
    assert_null(cfg.web_dir);
    pe_config_free(&cfg);
}

static void expect_good(const char *name, const char *value, pe_config_t *cfg)
{
    char err[512];
    int rc = load_one(cfg, name, value, err, sizeof err);
    if (rc != 0)
        fail_msg("%s=\"%.60s\" refused (rc %d): %s", name, value, rc, err);
    assert_string_equal(err, "");
}

/* ---- configuration --------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    var_t none[] = {{NULL, NULL}};
    pe_config_t cfg;
    char err[256] = "stale";
    assert_int_equal(pe_config_load(&cfg, table_lookup, none, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(cfg.database_url, "dbname=profit_engine");
    assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379");
    assert_string_equal(cfg.listen_host, "127.0.0.1");
    assert_int_equal(cfg.listen_port, 8080);
    assert_int_equal(cfg.log_level, PE_LOG_INFO);
    assert_null(cfg.web_dir);
    assert_int_equal(cfg.http_threads, 0);
    assert_int_equal(cfg.max_connections, 1024);
    assert_int_equal(cfg.conn_timeout_s, 30);
    assert_int_equal(cfg.db_pool_size, 16);
    assert_int_equal(cfg.shutdown_grace_s, 8);
    pe_config_free(&cfg);
}

static void test_all_overrides(void **state)
{
    (void)state;
    var_t vars[] = {
        {"PE_DATABASE_URL", "postgresql://u@db/pe"},
        {"PE_REDIS_URL", "unix:///run/redis.sock"},
        {"PE_LISTEN", "0.0.0.0:9090"},
        {"PE_LOG_LEVEL", "debug"},
        {"PE_WEB_DIR", "/"},
        {"PE_HTTP_THREADS", "4"},
        {"PE_MAX_CONNECTIONS", "50"},
        {"PE_CONNECTION_TIMEOUT", "5"},
        {"PE_DB_POOL_SIZE", "3"},
        {"PE_SHUTDOWN_GRACE", "2"},
        {"PE_UNRELATED", "ignored"},
        {NULL, NULL},
    };
    pe_config_t cfg;
    char err[256];
    assert_int_equal(pe_config_load(&cfg, table_lookup, vars, err, sizeof err), 0);
    assert_string_equal(cfg.database_url, "postgresql://u@db/pe");
    assert_string_equal(cfg.redis_url, "unix:///run/redis.sock");
    assert_string_equal(cfg.listen_host, "0.0.0.0");
    assert_int_equal(cfg.listen_port, 9090);
    assert_int_equal(cfg.log_level, PE_LOG_DEBUG);
    assert_string_equal(cfg.web_dir, "/");
    assert_int_equal(cfg.http_threads, 4);
    assert_int_equal(cfg.max_connections, 50);
    assert_int_equal(cfg.conn_timeout_s, 5);
    assert_int_equal(cfg.db_pool_size, 3);
    assert_int_equal(cfg.shutdown_grace_s, 2);
    pe_config_free(&cfg);
}

static void test_good_values(void **state)
{
    (void)state;
    pe_config_t cfg;

    expect_good("PE_LISTEN", "[::1]:9000", &cfg);
    assert_string_equal(cfg.listen_host, "::1");
    assert_int_equal(cfg.listen_port, 9000);
    pe_config_free(&cfg);

    expect_good("PE_LISTEN", "127.0.0.1:0", &cfg);
    assert_int_equal(cfg.listen_port, 0);
    pe_config_free(&cfg);

    expect_good("PE_LISTEN", "localhost:65535", &cfg);
    assert_string_equal(cfg.listen_host, "localhost");
    assert_int_equal(cfg.listen_port, 65535);
    pe_config_free(&cfg);

    expect_good("PE_DATABASE_URL", "", &cfg); /* "" = libpq defaults */
    assert_string_equal(cfg.database_url, "");
    pe_config_free(&cfg);

    static const struct {
        const char *value;
        pe_log_level_t level;
    } levels[] = {{"debug", PE_LOG_DEBUG},
                  {"info", PE_LOG_INFO},
                  {"warn", PE_LOG_WARN},
                  {"warning", PE_LOG_WARN},
                  {"error", PE_LOG_ERROR}};
    for (size_t i = 0; i < PE_ARRAY_LEN(levels); i++) {
        expect_good("PE_LOG_LEVEL", levels[i].value, &cfg);
        assert_int_equal(cfg.log_level, levels[i].level);
        pe_config_free(&cfg);
    }

    /* Numbers at their bounds. */
    expect_good("PE_HTTP_THREADS", "256", &cfg);
    assert_int_equal(cfg.http_threads, 256);
    pe_config_free(&cfg);
    expect_good("PE_MAX_CONNECTIONS", "1", &cfg);
    assert_int_equal(cfg.max_connections, 1);
    pe_config_free(&cfg);
    expect_good("PE_MAX_CONNECTIONS", "100000", &cfg);
    assert_int_equal(cfg.max_connections, 100000);
    pe_config_free(&cfg);
    expect_good("PE_CONNECTION_TIMEOUT", "3600", &cfg);
    assert_int_equal(cfg.conn_timeout_s, 3600);
    pe_config_free(&cfg);
    expect_good("PE_DB_POOL_SIZE", "1000", &cfg);
    assert_int_equal(cfg.db_pool_size, 1000);
    pe_config_free(&cfg);
    expect_good("PE_DB_POOL_SIZE", "016", &cfg); /* leading zeros are decimal, not octal */
    assert_int_equal(cfg.db_pool_size, 16);
    pe_config_free(&cfg);
    expect_good("PE_SHUTDOWN_GRACE", "9", &cfg);
    assert_int_equal(cfg.shutdown_grace_s, 9);
    pe_config_free(&cfg);

    /* A 4096-byte URL is the longest accepted. */
    char *url = malloc(4097);
    assert_non_null(url);
    memset(url, 'u', 4096);
    url[4096] = '\0';
    expect_good("PE_REDIS_URL", url, &cfg);
    assert_int_equal(strlen(cfg.redis_url), 4096);
    pe_config_free(&cfg);
    free(url);
}

static void test_bad_values(void **state)
{
    (void)state;
    static const var_t bad[] = {
        {"PE_LISTEN", ""},
        {"PE_LISTEN", "8080"},
        {"PE_LISTEN", "host:"},
        {"PE_LISTEN", ":8080"},
        {"PE_LISTEN", "host:65536"},
        {"PE_LISTEN", "host:99999"},
        {"PE_LISTEN", "host:123456"},
        {"PE_LISTEN", "host:-1"},
        {"PE_LISTEN", "host:80x"},
        {"PE_LISTEN", "host: 80"},
        {"PE_LISTEN", "::1:9000"},
        {"PE_LISTEN", "[::1]"},
        {"PE_LISTEN", "[::1]9000"},
        {"PE_LISTEN", "[::1:9000"},
        {"PE_LISTEN", "[]:9000"},
        {"PE_LOG_LEVEL", ""},
        {"PE_LOG_LEVEL", "INFO"},
        {"PE_LOG_LEVEL", "verbose"},
        {"PE_LOG_LEVEL", "info "},
        {"PE_WEB_DIR", ""},
        {"PE_WEB_DIR", "/nonexistent/profit-engine/web"},
        {"PE_HTTP_THREADS", ""},
        {"PE_HTTP_THREADS", "257"},
        {"PE_HTTP_THREADS", "-1"},
        {"PE_HTTP_THREADS", "four"},
        {"PE_HTTP_THREADS", "4 "},
        {"PE_HTTP_THREADS", "0x10"},
        {"PE_HTTP_THREADS", "4294967297"},
        {"PE_MAX_CONNECTIONS", "0"},
        {"PE_MAX_CONNECTIONS", "100001"},
        {"PE_MAX_CONNECTIONS", "1.5"},
        {"PE_CONNECTION_TIMEOUT", "0"},
        {"PE_CONNECTION_TIMEOUT", "3601"},
        {"PE_CONNECTION_TIMEOUT", "+30"},
        {"PE_DB_POOL_SIZE", "0"},
        {"PE_DB_POOL_SIZE", "1001"},
        {"PE_DB_POOL_SIZE", "99999999999999999999"},
        {"PE_SHUTDOWN_GRACE", "0"},
        {"PE_SHUTDOWN_GRACE", "10"},
        {"PE_SHUTDOWN_GRACE", ""},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++)
        expect_bad(bad[i].name, bad[i].value);

    /* URLs longer than 4096 bytes. */
    char *url = malloc(4098);
    assert_non_null(url);
    memset(url, 'u', 4097);
    url[4097] = '\0';
    expect_bad("PE_DATABASE_URL", url);
    expect_bad("PE_REDIS_URL", url);
    free(url);

    /* A host longer than listen_host can hold. */
    char *listen = malloc(300);
    assert_non_null(listen);
    memset(listen, 'h', 256);
    memcpy(listen + 256, ":80", 4);
    expect_bad("PE_LISTEN", listen);
    free(listen);
}

/* The message quotes the value; a value with a line break must not split the log line. */
static void test_bad_value_message_is_one_line(void **state)
{
    (void)state;
    static const var_t bad[] = {
        {"PE_LISTEN", "host:80\nPE_FAKE: injected"},
        {"PE_LOG_LEVEL", "info\n"},
        {"PE_LOG_LEVEL", "info\r\nnext"},
        {"PE_HTTP_THREADS", "4\n"},
        {"PE_WEB_DIR", "/nonexistent\ndir"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++)
        expect_bad(bad[i].name, bad[i].value);
}

/* The first bad variable (in table order) is the one reported, and values set before it are
 * released. */
static void test_first_error_wins(void **state)
{
    (void)state;
    var_t vars[] = {
        {"PE_DATABASE_URL", "dbname=x"},
        {"PE_LOG_LEVEL", "loud"},
        {"PE_DB_POOL_SIZE", "0"},
        {NULL, NULL},
    };
    pe_config_t cfg;
    char err[256];
    assert_int_equal(pe_config_load(&cfg, table_lookup, vars, err, sizeof err), PE_EINVAL);
    assert_true(strncmp(err, "PE_LOG_LEVEL:", 13) == 0);
    assert_null(cfg.database_url);
    assert_null(cfg.redis_url);
    pe_config_free(&cfg);
}

static void test_web_dir(void **state)
{
    (void)state;
    char dir[] = "/tmp/pe-test-webdir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[sizeof dir + 16];
    snprintf(file, sizeof file, "%s/index.html", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("<!doctype html>", f);
    fclose(f);

    pe_config_t cfg;
    expect_good("PE_WEB_DIR", dir, &cfg);
    assert_string_equal(cfg.web_dir, dir);
    pe_config_free(&cfg);

    /* A regular file is not a directory. */
    expect_bad("PE_WEB_DIR", file);

    unlink(file);
    rmdir(dir);
    /* Gone now. */
    expect_bad("PE_WEB_DIR", dir);
}

static void test_config_free_twice(void **state)
{
    (void)state;
    var_t vars[] = {{"PE_WEB_DIR", "/"}, {NULL, NULL}};
    pe_config_t cfg;
    char err[256];
    assert_int_equal(pe_config_load(&cfg, table_lookup, vars, err, sizeof err), 0);
    assert_non_null(cfg.web_dir);
    pe_config_free(&cfg);
    assert_null(cfg.database_url);
    assert_null(cfg.redis_url);
    assert_null(cfg.web_dir);
    pe_config_free(&cfg);
    pe_config_free(NULL);
}

/* ---- pe_parse_listen ------------------------------------------------------------------------- */

static void test_parse_listen_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *host;
        int rc;
        uint16_t port;
    } cases[] = {
        {"127.0.0.1:8080", "127.0.0.1", 0, 8080},
        {"localhost:0", "localhost", 0, 0},
        {"0.0.0.0:65535", "0.0.0.0", 0, 65535},
        {"[::1]:9000", "::1", 0, 9000},
        {"[::]:80", "::", 0, 80},
        {"[fe80::1%eth0]:443", "fe80::1%eth0", 0, 443},
        {"h:00080", "h", 0, 80},
        {"h:65536", NULL, PE_EINVAL, 0},
        {"h:000080", NULL, PE_EINVAL, 0},
        {"h:", NULL, PE_EINVAL, 0},
        {":80", NULL, PE_EINVAL, 0},
        {"", NULL, PE_EINVAL, 0},
        {"h", NULL, PE_EINVAL, 0},
        {"a:b:80", NULL, PE_EINVAL, 0},
        {"::1:80", NULL, PE_EINVAL, 0},
        {"[::1]", NULL, PE_EINVAL, 0},
        {"[::1]:", NULL, PE_EINVAL, 0},
        {"[::1]80", NULL, PE_EINVAL, 0},
        {"[::1", NULL, PE_EINVAL, 0},
        {"[]:80", NULL, PE_EINVAL, 0},
        {"h:8o", NULL, PE_EINVAL, 0},
        {"h:+80", NULL, PE_EINVAL, 0},
        {"h:-0", NULL, PE_EINVAL, 0},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        char host[64] = "";
        uint16_t port = 0;
        int rc = pe_parse_listen(cases[i].in, host, sizeof host, &port);
        if (rc != cases[i].rc)
            fail_msg("\"%s\": rc %d, want %d", cases[i].in, rc, cases[i].rc);
        if (rc == 0 && (strcmp(host, cases[i].host) != 0 || port != cases[i].port))
            fail_msg("\"%s\": %s port %u, want %s port %u", cases[i].in, host, port, cases[i].host,
                     cases[i].port);
    }

    /* hostlen counts the terminator: a host of hostlen - 1 bytes fits, hostlen does not. */
    char host[8];
    uint16_t port = 0;
    assert_int_equal(pe_parse_listen("1234567:1", host, sizeof host, &port), 0);
    assert_string_equal(host, "1234567");
    assert_int_equal(pe_parse_listen("12345678:1", host, sizeof host, &port), PE_EINVAL);
    assert_int_equal(pe_parse_listen("[1234567]:1", host, sizeof host, &port), 0);
    assert_int_equal(pe_parse_listen("[12345678]:1", host, sizeof host, &port), PE_EINVAL);
}

/* ---- error codes ----------------------------------------------------------------------------- */

static void test_error_table(void **state)
{
    (void)state;
    static const struct {
        int rc;
        int status;
        const char *code;
        const char *text;
    } rows[] = {
        {PE_OK, 200, "ok", "ok"},
        {PE_EINVAL, 400, "invalid_request", "invalid input"},
        {PE_ENOMEM, 500, "internal_error", "out of memory"},
        {PE_ENOTFOUND, 404, "not_found", "not found"},
        {PE_ECONFLICT, 409, "conflict", "conflict"},
        {PE_EUNAUTH, 401, "unauthorized", "authentication required"},
        {PE_EFORBIDDEN, 403, "forbidden", "forbidden"},
        {PE_EUNAVAIL, 503, "unavailable", "service unavailable"},
        {PE_ETOOBIG, 413, "payload_too_large", "too large"},
        {PE_ETIMEOUT, 503, "timeout", "timed out"},
        {PE_EIO, 500, "internal_error", "i/o error"},
        {PE_EINTERNAL, 500, "internal_error", "internal error"},
        {PE_ELOCKED, 429, "too_many_requests", "too many attempts"},
        {PE_EMETHOD, 405, "method_not_allowed", "method not allowed"},
        {PE_EMEDIA, 415, "unsupported_media_type", "unsupported media type"},
        {PE_EPRECONDITION, 428, "precondition_required", "precondition required"},
    };
    assert_int_equal(PE_ARRAY_LEN(rows), (size_t)(1 - PE_ELAST)); /* every code has its row */
    for (size_t i = 0; i < PE_ARRAY_LEN(rows); i++) {
        int rc = rows[i].rc;
        if (pe_error_http_status(rc) != rows[i].status)
            fail_msg("rc %d: status %d, want %d", rc, pe_error_http_status(rc), rows[i].status);
        assert_string_equal(pe_error_code(rc), rows[i].code);
        assert_string_equal(pe_strerror(rc), rows[i].text);
    }

    /* Every code from PE_EINVAL down to PE_ELAST has its own description. */
    for (int a = PE_ELAST; a <= PE_EINVAL; a++)
        for (int b = a + 1; b <= PE_EINVAL; b++)
            if (strcmp(pe_strerror(a), pe_strerror(b)) == 0)
                fail_msg("codes %d and %d share the description \"%s\"", a, b, pe_strerror(a));

    /* Unknown codes are internal errors. */
    static const int unknown[] = {PE_ELAST - 1, -100, 1, 42, -2147483647 - 1, 2147483647};
    for (size_t i = 0; i < PE_ARRAY_LEN(unknown); i++) {
        assert_int_equal(pe_error_http_status(unknown[i]), 500);
        assert_string_equal(pe_error_code(unknown[i]), "internal_error");
        assert_string_equal(pe_strerror(unknown[i]), "internal error");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_overrides),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_value_message_is_one_line),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_web_dir),
        cmocka_unit_test(test_config_free_twice),
        cmocka_unit_test(test_parse_listen_table),
        cmocka_unit_test(test_error_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
