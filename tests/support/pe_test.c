/*
 * pe_test.c — the shared test helpers of pe_test.h: private databases on the test server, a
 * profit-engine child process (a server, or one command of its command line), small HTTP and
 * raw-socket clients and the assertions made on their answers, tenants, and the fixture of a
 * test program.
 *
 * Invariants:
 *  1. Every database made here is named pe_t_<pid>_<random hex>; pe_test_db_drop refuses any
 *     other name, so a helper can never drop a database it did not create.
 *  2. A database a test program created and did not drop (a failed test, a forgotten drop) is
 *     dropped at exit, so runs do not pile up databases in .run/.
 *  3. A child server never outlives the test program: it gets SIGTERM when its parent dies
 *     (PR_SET_PDEATHSIG; start servers from the main thread, which cmocka tests run on).
 *  4. A helper that cannot do its job releases what it holds and then fails the running test
 *     through cmocka (fail_msg), or exits when no test is running.
 *  5. A fixture's database outlives its pool and its server: pe_test_fixture_close stops the
 *     server and frees the pool before it drops the database.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <zlib.h>

#include "pe/db.h"
#include "pe_test.h"

#define DB_PREFIX         "pe_t_"
#define MAX_TRACKED_DBS   64
#define SERVER_START_MS   10000
#define SERVER_STOP_MS    15000
#define HTTP_TIMEOUT_MS   10000
#define HEALTH_TIMEOUT_MS 1000
/* A CLI command of a test (a simulated store, its roll-up) takes seconds; ten times that on a
 * slow, shared CI machine under ASan must still pass. */
#define CLI_TIMEOUT_MS 300000

extern char **environ;

static const char services_hint[] =
    "start the private PostgreSQL and Redis with `scripts/dev services up`, then export their "
    "URLs with `eval \"$(scripts/dev env)\"` (or run everything with `scripts/dev test`)";

/* Databases created and not yet dropped (invariant 2). */
static pthread_mutex_t tracked_mu = PTHREAD_MUTEX_INITIALIZER;
static char *tracked[MAX_TRACKED_DBS];
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fail_msg("%s", msg);
    /* fail_msg returns only if cmocka is not running a test. */
    exit(EXIT_FAILURE);
}

/* fmt with ap into out[outlen]; fails the running test rather than use a cut statement or path
 * (what names it in the message). */
static void format_or_die(char *out, size_t outlen, const char *what, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void format_or_die(char *out, size_t outlen, const char *what, const char *fmt, va_list ap)
{
    int n = vsnprintf(out, outlen, fmt, ap);

    if (n < 0 || (size_t)n >= outlen)
        die("the %s is longer than %zu bytes: %.200s", what, outlen - 1, fmt);
}

static const char *env_or_exit(const char *name)
{
    const char *v = getenv(name);

    if (!v || !*v) {
        fprintf(stderr, "%s is not set: %s\n", name, services_hint);
        exit(EXIT_FAILURE);
    }
    return v;
}

const char *pe_test_database_url(void)
{
    return env_or_exit("PE_DATABASE_URL");
}

const char *pe_test_redis_url(void)
{
    return env_or_exit("PE_REDIS_URL");
}

/* ---- databases ------------------------------------------------------------------------------ */

static void quiet_notices(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Runs sql on conninfo. Returns 0 and the first value (malloc'ed, may be NULL), or -1 with a
 * message in err. Does not fail the test, so the at-exit cleanup can use it. */
static int run_sql(const char *conninfo, const char *sql, char **value, char *err, size_t errlen)
{
    int rc = -1;
    PGconn *c = PQconnectdb(conninfo);
    PGresult *res = NULL;

    *value = NULL;
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect: %s", PQerrorMessage(c));
        goto out;
    }
    PQsetNoticeProcessor(c, quiet_notices, NULL);
    res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "%s: %s", sql, PQresultErrorMessage(res));
        goto out;
    }
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && PQnfields(res) > 0 &&
        !PQgetisnull(res, 0, 0)) {
        *value = strdup(PQgetvalue(res, 0, 0));
        if (!*value) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    PQclear(res);
    PQfinish(c);
    return rc;
}

char *pe_test_sql(const char *conninfo, const char *sql)
{
    char err[1024];
    char *value = NULL;

    if (run_sql(conninfo, sql, &value, err, sizeof(err)) != 0)
        die("pe_test_sql: %s", err);
    return value;
}

/* The dbname in conninfo, malloc'ed, or NULL when it names none. */
static char *conninfo_dbname(const char *conninfo)
{
    char *errmsg = NULL, *name = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);

    PQfreemem(errmsg);
    if (!opts)
        return NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "dbname") == 0 && o->val)
            name = strdup(o->val);
    }
    PQconninfoFree(opts);
    return name;
}

/* Appends key='value' with the quoting of libpq's key/value syntax. */
static int append_kv(pe_buf_t *b, const char *key, const char *val)
{
    if (pe_buf_printf(b, "%s%s='", b->len ? " " : "", key) != 0)
        return -1;
    for (const char *p = val; *p; p++) {
        if ((*p == '\'' || *p == '\\') && pe_buf_append(b, "\\", 1) != 0)
            return -1;
        if (pe_buf_append(b, p, 1) != 0)
            return -1;
    }
    return pe_buf_puts(b, "'");
}

/* The URL of the test server (conninfo or URI) rewritten as key=value with another dbname. */
static char *conninfo_with_dbname(const char *base, const char *dbname)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(base, &errmsg);
    pe_buf_t b = PE_BUF_INIT;
    bool ok = opts != NULL;

    if (!opts) {
        fprintf(stderr, "PE_DATABASE_URL does not parse: %s", errmsg ? errmsg : "out of memory");
        PQfreemem(errmsg);
        exit(EXIT_FAILURE);
    }
    for (PQconninfoOption *o = opts; ok && o->keyword; o++) {
        if (o->val && strcmp(o->keyword, "dbname") != 0)
            ok = append_kv(&b, o->keyword, o->val) == 0;
    }
    if (ok)
        ok = append_kv(&b, "dbname", dbname) == 0;
    PQconninfoFree(opts);
    if (!ok) {
        pe_buf_free(&b);
        die("out of memory");
    }
    return pe_buf_steal(&b);
}

static void drop_tracked_at_exit(void)
{
    char sql[256], err[1024];
    char *value;

    for (size_t i = 0; i < MAX_TRACKED_DBS; i++) {
        if (!tracked[i])
            continue;
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", tracked[i]);
        if (run_sql(pe_test_database_url(), sql, &value, err, sizeof(err)) != 0)
            fprintf(stderr, "pe_test: could not drop %s at exit: %s\n", tracked[i], err);
        free(value);
        free(tracked[i]);
        tracked[i] = NULL;
    }
}

static void register_atexit(void)
{
    atexit(drop_tracked_at_exit);
}

static void track(const char *name, bool add)
{
    pthread_mutex_lock(&tracked_mu);
    for (size_t i = 0; i < MAX_TRACKED_DBS; i++) {
        if (add && !tracked[i]) {
            tracked[i] = strdup(name);
            break;
        }
        if (!add && tracked[i] && strcmp(tracked[i], name) == 0) {
            free(tracked[i]);
            tracked[i] = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&tracked_mu);
}

char *pe_test_db_create(void)
{
    const char *url = pe_test_database_url();
    char name[64], hex[9], sql[256];

    pthread_once(&atexit_once, register_atexit);
    pe_random_hex(hex, 4);
    snprintf(name, sizeof(name), DB_PREFIX "%d_%s", (int)getpid(), hex);
    /* template0 and an explicit UTF8 + C locale: independent of whoever ran initdb, and nobody
     * is ever connected to template0, which CREATE DATABASE would refuse. */
    snprintf(sql, sizeof(sql),
             "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' "
             "LC_CTYPE 'C'",
             name);
    free(pe_test_sql(url, sql));
    track(name, true);
    return conninfo_with_dbname(url, name);
}

char *pe_test_db_create_migrated(void)
{
    char *conninfo = pe_test_db_create();
    pe_db_pool_t *pool = pe_db_pool_new(conninfo, 1);
    char err[512] = "";
    int applied = 0;
    int rc = pool ? pe_db_migrate(pool, &applied, err, sizeof(err)) : PE_ENOMEM;

    pe_db_pool_free(pool);
    if (rc != 0) {
        pe_test_db_drop(conninfo);
        die("migrating a test database failed: %s: %s", pe_strerror(rc), err);
    }
    return conninfo;
}

void pe_test_db_drop(char *conninfo)
{
    char *name;
    char sql[256];

    if (!conninfo)
        return;
    name = conninfo_dbname(conninfo);
    if (!name || strncmp(name, DB_PREFIX, strlen(DB_PREFIX)) != 0 || strlen(name) > 100 ||
        strpbrk(name, "\"\\")) {
        free(name);
        free(conninfo);
        die("pe_test_db_drop: refusing to drop a database pe_test_db_create did not make");
    }
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
    free(conninfo);
    free(pe_test_sql(pe_test_database_url(), sql));
    track(name, false);
    free(name);
}

/* ---- HTTP ----------------------------------------------------------------------------------- */

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return pe_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

/* Keeps only the last response's headers (a 100 Continue or a redirect comes first). */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    pe_buf_t *b = ud;

    if (size * n >= 5 && strncmp(p, "HTTP/", 5) == 0)
        pe_buf_reset(b);
    return pe_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

static bool has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; headers && headers[i]; i++) {
        if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
            return true;
    }
    return false;
}

/* quiet: no message on a failed exchange (polling a server that is still starting). */
static int http_request(const char *method, const char *url, const char *body, size_t body_len,
                        const char *const *headers, long timeout_ms, bool quiet,
                        pe_test_response_t *resp)
{
    int rc = -1;
    CURL *c = NULL;
    struct curl_slist *list = NULL, *tmp;
    CURLcode cc;

    memset(resp, 0, sizeof(*resp));
    pthread_once(&curl_once, curl_init_once);
    c = curl_easy_init();
    if (!c)
        goto out;
    for (size_t i = 0; headers && headers[i]; i++) {
        tmp = curl_slist_append(list, headers[i]);
        if (!tmp)
            goto out;
        list = tmp;
    }
    /* No "Expect: 100-continue" round trip unless a test asks for it. */
    if (!has_header(headers, "Expect")) {
        tmp = curl_slist_append(list, "Expect:");
        if (!tmp)
            goto out;
        list = tmp;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* an http_proxy in the environment must not
                                                  intercept 127.0.0.1 */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp->headers);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0 || body)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (!quiet)
            fprintf(stderr, "pe_test_http %s %s: %s\n", method, url, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    rc = 0;
out:
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    return rc;
}

int pe_test_http(const char *method, const char *url, const char *body, const char *const *headers,
                 pe_test_response_t *resp)
{
    return http_request(method, url, body, body ? strlen(body) : 0, headers, HTTP_TIMEOUT_MS, false,
                        resp);
}

int pe_test_http_bytes(const char *method, const char *url, const void *body, size_t len,
                       const char *const *headers, pe_test_response_t *resp)
{
    return http_request(method, url, body, len, headers, HTTP_TIMEOUT_MS, false, resp);
}

void pe_test_basic_auth(char *out, size_t outlen, const char *key)
{
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char user[256];
    snprintf(user, sizeof(user), "%s:", key);
    size_t n = strlen(user), o = (size_t)snprintf(out, outlen, "Authorization: Basic ");
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)(unsigned char)user[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)(unsigned char)user[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)user[i + 2];
        if (o + 5 >= outlen)
            die("pe_test_basic_auth: %zu bytes are too few", outlen);
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = (char)(i + 1 < n ? B64[(v >> 6) & 63] : '=');
        out[o++] = (char)(i + 2 < n ? B64[v & 63] : '=');
    }
    out[o] = '\0';
}

pe_buf_t pe_test_compress(pe_test_deflate_format_t format, const void *in, size_t n)
{
    int bits = format == PE_TEST_GZIP   ? 16 + MAX_WBITS
               : format == PE_TEST_ZLIB ? MAX_WBITS
                                        : -MAX_WBITS;
    z_stream z;
    pe_buf_t out = PE_BUF_INIT;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2 failed");
    size_t bound = deflateBound(&z, (uLong)n);
    if (pe_buf_reserve(&out, bound) != 0)
        die("out of memory");
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out.data;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("deflate did not finish");
    out.len = bound - z.avail_out;
    out.data[out.len] = '\0';
    deflateEnd(&z);
    return out;
}

void pe_test_response_free(pe_test_response_t *resp)
{
    if (!resp)
        return;
    pe_buf_free(&resp->body);
    pe_buf_free(&resp->headers);
    resp->status = 0;
}

const char *pe_test_response_header(const pe_test_response_t *resp, const char *name, char *out,
                                    size_t outlen)
{
    size_t n = strlen(name);
    const char *p = resp->headers.data;

    if (outlen)
        out[0] = '\0';
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t linelen = eol ? (size_t)(eol - p) : strlen(p);

        if (linelen > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t vlen = linelen - n - 1;
            while (vlen && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
            }
            while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
                vlen--;
            if (outlen)
                snprintf(out, outlen, "%.*s", (int)vlen, v);
            break;
        }
        p = eol ? eol + 1 : NULL;
    }
    return out;
}

const char *pe_test_header(const pe_test_response_t *resp, const char *name)
{
    static char value[1024];

    return pe_test_response_header(resp, name, value, sizeof(value));
}

const char *pe_test_json_str(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);

    return cJSON_IsString(v) ? v->valuestring : "";
}

const char *pe_test_json_require_str(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);

    if (!cJSON_IsString(v))
        die("\"%s\" is not a string", name);
    return v->valuestring;
}

double pe_test_json_num(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);

    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* s->base_url + path into url[urllen]; fails the running test rather than send a cut URL. */
static void server_url(char *url, size_t urllen, const pe_test_server_t *s, const char *path)
{
    if ((size_t)snprintf(url, urllen, "%s%s", s->base_url, path) >= urllen)
        die("the path is longer than %zu bytes: %.200s", urllen, path);
}

long pe_test_request(const pe_test_server_t *s, const char *method, const char *path,
                     const char *const *headers, pe_test_response_t *r)
{
    char url[2048];

    server_url(url, sizeof(url), s, path);
    if (pe_test_http(method, url, NULL, headers, r) != 0)
        die("%s %s: no exchange", method, path);
    return r->status;
}

long pe_test_call(const pe_test_server_t *s, const char *method, const char *path, const char *body,
                  const char *header, pe_test_response_t *r)
{
    char url[2048];
    const char *headers[] = {"Content-Type: application/json", header, NULL};

    server_url(url, sizeof(url), s, path);
    if (pe_test_http(method, url, body, headers, r) != 0)
        die("%s %s: no exchange", method, path);
    return r->status;
}

cJSON *pe_test_expect(const pe_test_server_t *s, const char *method, const char *path,
                      const char *body, const char *header, long want)
{
    pe_test_response_t r;
    cJSON *j = NULL;

    long status = pe_test_call(s, method, path, body, header, &r);
    if (status != want) {
        char shown[700];

        snprintf(shown, sizeof(shown), "%.600s", r.body.data ? r.body.data : "");
        pe_test_response_free(&r);
        die("%s %s: status %ld, want %ld: %s", method, path, status, want, shown);
    }
    if (r.body.len)
        j = pe_test_response_json(&r);
    pe_test_response_free(&r);
    return j;
}

void pe_test_expect_error(const pe_test_response_t *resp, long status, const char *code, char *msg,
                          size_t msglen)
{
    char ct[128], shown[512];
    cJSON *j;
    const cJSON *e, *c, *m;

    if (resp->status != status)
        die("status %ld, want %ld: %.300s", resp->status, status,
            resp->body.data ? resp->body.data : "");
    pe_test_response_header(resp, "Content-Type", ct, sizeof(ct));
    if (strncmp(ct, "application/json", 16) != 0)
        die("status %ld: Content-Type %s, want application/json", status, ct);
    j = pe_test_response_json(resp);
    e = cJSON_GetObjectItemCaseSensitive(j, "error");
    c = cJSON_GetObjectItemCaseSensitive(e, "code");
    m = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (!cJSON_IsObject(j) || cJSON_GetArraySize(j) != 1 || !cJSON_IsObject(e) ||
        cJSON_GetArraySize(e) != 2 || !cJSON_IsString(c) || !cJSON_IsString(m) ||
        !m->valuestring[0] || strcmp(c->valuestring, code) != 0) {
        snprintf(shown, sizeof(shown), "%.300s", resp->body.data);
        cJSON_Delete(j);
        die("status %ld: want the error shape with code %s and a message: %s", status, code, shown);
    }
    if (msg)
        snprintf(msg, msglen, "%s", m->valuestring);
    cJSON_Delete(j);
}

/* ---- raw sockets ---------------------------------------------------------------------------- */

static int remaining_ms(int64_t deadline_us)
{
    int64_t left = deadline_us - pe_now_mono_us();

    return left <= 0 ? 0 : (int)((left + 999) / 1000);
}

long pe_test_raw(uint16_t port, const void *data, size_t len, int shut_write, int timeout_ms,
                 pe_buf_t *out)
{
    long got = -1;
    int fd = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int64_t deadline = pe_now_mono_us() + (int64_t)timeout_ms * 1000;
    const char *p = data;
    char chunk[4096];

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto out;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT, .revents = 0};
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        if (errno != EINPROGRESS || poll(&pfd, 1, remaining_ms(deadline)) <= 0)
            goto out;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
            goto out;
    }
    while (len > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT, .revents = 0};
        ssize_t w;

        if (poll(&pfd, 1, remaining_ms(deadline)) <= 0)
            goto out;
        w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w < 0) {
            /* The server may answer and close before reading everything: keep its reply. */
            if (errno == EPIPE || errno == ECONNRESET)
                break;
            goto out;
        }
        p += w;
        len -= (size_t)w;
    }
    if (shut_write)
        shutdown(fd, SHUT_WR);
    got = 0;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
        ssize_t r;

        if (poll(&pfd, 1, remaining_ms(deadline)) <= 0)
            break;
        r = recv(fd, chunk, sizeof(chunk), 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0)
            break; /* EOF, or a reset: a way of closing too */
        if (pe_buf_append(out, chunk, (size_t)r) != 0) {
            got = -1;
            goto out;
        }
        got += r;
    }
out:
    if (fd >= 0)
        close(fd);
    return got;
}

/* ---- the command line ---------------------------------------------------------------------- */

/* stdin_data in an unlinked temporary file, read from its start: unlike a pipe, it never makes
 * the child and this program wait for each other, however much either writes. */
static int stdin_file(const char *stdin_data)
{
    char path[] = "/tmp/pe-test-stdin-XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    size_t len = stdin_data ? strlen(stdin_data) : 0;

    if (fd < 0)
        die("mkostemp: %s", strerror(errno));
    unlink(path);
    if ((len && write(fd, stdin_data, len) != (ssize_t)len) || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        die("writing the standard input of a command: %s", strerror(errno));
    }
    return fd;
}

/* The output of buf as a NUL-terminated string the caller frees ("" when there was none). */
static char *steal_text(pe_buf_t *buf, size_t *len)
{
    *len = buf->len;
    char *s = buf->len ? pe_buf_steal(buf) : strdup("");

    if (!s)
        die("out of memory");
    return s;
}

void pe_test_cli_exec(const char *const *args, const char *const *env, const char *stdin_data,
                      int timeout_ms, pe_test_cli_t *r)
{
    const char *binary = getenv("PE_TEST_BINARY");
    const char *argv[64], *envp[1024];
    size_t na = 0, ne = 0;
    int out_pipe[2], err_pipe[2], in_fd;
    pe_buf_t bufs[2] = {PE_BUF_INIT, PE_BUF_INIT};

    memset(r, 0, sizeof(*r));
    r->status = -1;
    if (!binary || !*binary)
        die("PE_TEST_BINARY is not set (ctest sets it to the profit-engine binary)");
    argv[na++] = binary;
    for (size_t i = 0; args && args[i]; i++) {
        if (na == PE_ARRAY_LEN(argv) - 1)
            die("pe_test_cli_exec: too many arguments");
        argv[na++] = args[i];
    }
    argv[na] = NULL;
    /* The command sees only the configuration the test gives it. */
    for (size_t i = 0; environ[i]; i++) {
        if (strncmp(environ[i], "PE_", 3) == 0)
            continue;
        if (ne == PE_ARRAY_LEN(envp) - 1)
            die("pe_test_cli_exec: the environment is too large");
        envp[ne++] = environ[i];
    }
    for (size_t i = 0; env && env[i]; i++) {
        if (ne == PE_ARRAY_LEN(envp) - 1)
            die("pe_test_cli_exec: the environment is too large");
        envp[ne++] = env[i];
    }
    envp[ne] = NULL;

    in_fd = stdin_file(stdin_data);
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_pipe[1], STDOUT_FILENO) < 0 ||
            dup2(err_pipe[1], STDERR_FILENO) < 0)
            _exit(126);
        execve(binary, (char *const *)argv, (char *const *)envp);
        dprintf(STDERR_FILENO, "exec %s: %s\n", binary, strerror(errno));
        _exit(127);
    }
    close(in_fd);
    close(out_pipe[1]);
    close(err_pipe[1]);

    /* Both pipes at once: a child that fills one while this program waits on the other would
     * never end. */
    struct pollfd fds[2] = {{.fd = out_pipe[0], .events = POLLIN},
                            {.fd = err_pipe[0], .events = POLLIN}};
    int open_fds = 2;
    int64_t deadline = pe_now_mono_us() + (int64_t)timeout_ms * 1000;
    while (open_fds > 0) {
        int left_ms = remaining_ms(deadline);
        if (left_ms <= 0) {
            r->timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        int n = poll(fds, 2, left_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("poll: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            char chunk[4096];
            ssize_t got;

            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            got = read(fds[i].fd, chunk, sizeof(chunk));
            if (got > 0) {
                if (pe_buf_append(&bufs[i], chunk, (size_t)got) != 0)
                    die("out of memory");
            } else if (got == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && !r->timed_out)
        r->status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        r->signal = WTERMSIG(status);
    r->out = steal_text(&bufs[0], &r->out_len);
    r->err = steal_text(&bufs[1], &r->err_len);
}

void pe_test_cli_run(const char *conninfo, const char *const *args, pe_test_cli_t *r)
{
    char *db = NULL, *redis = NULL;

    if (asprintf(&db, "PE_DATABASE_URL=%s", conninfo) < 0 ||
        asprintf(&redis, "PE_REDIS_URL=%s", pe_test_redis_url()) < 0)
        die("out of memory");
    const char *const env[] = {db, redis, "PE_LOG_LEVEL=error", NULL};
    pe_test_cli_exec(args, env, NULL, CLI_TIMEOUT_MS, r);
    free(db);
    free(redis);
}

cJSON *pe_test_cli_json(const char *conninfo, int want, const char *const *args)
{
    pe_test_cli_t r;
    pe_test_cli_run(conninfo, args, &r);
    char msg[4200], how[64];
    if (r.timed_out)
        snprintf(how, sizeof how, "was killed after %d s", CLI_TIMEOUT_MS / 1000);
    else if (r.signal)
        snprintf(how, sizeof how, "died of signal %d", r.signal);
    else
        snprintf(how, sizeof how, "exited %d", r.status);
    snprintf(msg, sizeof msg, "%s %s, want exit %d\nstdout: %.2000s\nstderr: %.2000s", args[0], how,
             want, r.out, r.err);
    cJSON *j = r.status == want && want == 0 ? cJSON_Parse(r.out) : NULL;
    bool ok = r.status == want && (want != 0 || j);
    pe_test_cli_free(&r);
    if (!ok)
        fail_msg("%s", msg);
    return j;
}

void pe_test_cli_free(pe_test_cli_t *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* ---- time and ids -------------------------------------------------------------------------- */

void pe_test_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int pe_test_env_int(const char *name, int def, int lo, int hi)
{
    const char *v = getenv(name);
    if (!v)
        return def;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi)
        fail_msg("%s=\"%s\": an integer %d..%d", name, v, lo, hi);
    return (int)n;
}

void pe_test_uuid(char out[37])
{
    char hex[33];

    pe_random_hex(hex, 16);
    snprintf(out, 37, "%.8s-%.4s-4%.3s-8%.3s-%.12s", hex, hex + 8, hex + 13, hex + 17, hex + 20);
}

bool pe_test_uuid_shaped(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
            return false;
    }
    return true;
}

/* ---- the server child process --------------------------------------------------------------- */

uint16_t pe_test_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint16_t port = 0;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Same variable name ("NAME=…")? */
static bool same_name(const char *a, const char *b)
{
    size_t n = strcspn(a, "=");

    return strncmp(a, b, n) == 0 && b[n] == '=';
}

/* environ minus every name set in `ours`, then `ours`. Strings are borrowed except ours'. */
static const char **build_env(char *const *ours, size_t nours)
{
    size_t n = 0, k = 0;
    const char **env;

    while (environ[n])
        n++;
    env = calloc(n + nours + 1, sizeof(char *));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        bool overridden = false;
        for (size_t j = 0; j < nours && !overridden; j++)
            overridden = same_name(ours[j], environ[i]);
        if (!overridden)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < nours; j++) {
        bool later = false;
        /* The last setting of a name wins, as extra_env comes after our defaults. */
        for (size_t m = j + 1; m < nours && !later; m++)
            later = same_name(ours[m], ours[j]);
        if (!later)
            env[k++] = ours[j];
    }
    return env;
}

static void print_log(const char *path)
{
    char buf[4096];
    size_t n;
    FILE *f = fopen(path, "r");

    fprintf(stderr, "---- %s ----\n", path);
    if (!f)
        return;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
    fprintf(stderr, "---- end of %s ----\n", path);
}

/* True when the child has ended; *how describes it ("exit status 1", "signal 11"). */
static bool child_exited(int pid, char *how, size_t howlen)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    snprintf(how, howlen, "gone");
    /* WNOWAIT: look without reaping, so pe_test_server_stop still gets the status. */
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return true;
    if (si.si_pid == 0)
        return false;
    snprintf(how, howlen, "%s %d", si.si_code == CLD_EXITED ? "exit status" : "signal",
             si.si_status);
    return true;
}

void pe_test_server_start(pe_test_server_t *s, const char *conninfo, const char *const *extra_env)
{
    const char *binary = getenv("PE_TEST_BINARY");
    char *ours[64];
    size_t nours = 0, nextra = 0;
    const char **env = NULL;
    int logfd = -1;
    pid_t parent = getpid(), pid;
    int64_t deadline;

    memset(s, 0, sizeof(*s));
    if (!binary || !*binary)
        die("PE_TEST_BINARY is not set (ctest sets it to the profit-engine binary)");
    while (extra_env && extra_env[nextra])
        nextra++;
    if (nextra > PE_ARRAY_LEN(ours) - 3)
        die("pe_test_server_start: too many extra variables");
    s->port = pe_test_free_port();
    if (!s->port)
        die("pe_test_server_start: no free port: %s", strerror(errno));
    snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%u", (unsigned)s->port);
    snprintf(s->log_path, sizeof(s->log_path), "/tmp/pe-test-server-%d-%u.log", (int)parent,
             (unsigned)s->port);
    if (asprintf(&ours[nours++], "PE_LISTEN=127.0.0.1:%u", (unsigned)s->port) < 0 ||
        asprintf(&ours[nours++], "PE_DATABASE_URL=%s", conninfo) < 0 ||
        asprintf(&ours[nours++], "PE_REDIS_URL=%s", pe_test_redis_url()) < 0)
        die("out of memory");
    for (size_t i = 0; i < nextra; i++) {
        ours[nours] = strdup(extra_env[i]);
        if (!ours[nours++])
            die("out of memory");
    }
    env = build_env(ours, nours);
    logfd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!env || logfd < 0)
        die("pe_test_server_start: %s: %s", s->log_path, strerror(errno));
    pid = fork();
    if (pid == 0) {
        char *const argv[] = {(char *)binary, (char *)"serve", NULL};
        int devnull = open("/dev/null", O_RDONLY);

        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127); /* the parent died before prctl took effect */
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        execve(binary, argv, (char *const *)env);
        dprintf(STDERR_FILENO, "exec %s: %s\n", binary, strerror(errno));
        _exit(127);
    }
    close(logfd);
    free((void *)env);
    for (size_t i = 0; i < nours; i++)
        free(ours[i]);
    if (pid < 0)
        die("fork: %s", strerror(errno));
    s->pid = (int)pid;

    deadline = pe_now_mono_us() + (int64_t)SERVER_START_MS * 1000;
    while (pe_now_mono_us() < deadline) {
        pe_test_response_t resp;
        char url[128], how[64];

        if (child_exited(s->pid, how, sizeof(how))) {
            print_log(s->log_path);
            pe_test_server_stop(s);
            die("profit-engine serve ended during start-up with %s (log above)", how);
        }
        snprintf(url, sizeof(url), "%s/healthz", s->base_url);
        if (http_request("GET", url, NULL, 0, NULL, HEALTH_TIMEOUT_MS, true, &resp) == 0 &&
            resp.status == 200) {
            pe_test_response_free(&resp);
            return;
        }
        pe_test_response_free(&resp);
        usleep(50 * 1000);
    }
    print_log(s->log_path);
    pe_test_server_stop(s);
    die("profit-engine serve did not answer GET /healthz with 200 within %d ms (log above)",
        SERVER_START_MS);
}

int pe_test_server_stop(pe_test_server_t *s)
{
    int status = 0;
    pid_t r = 0;
    int64_t deadline = pe_now_mono_us() + (int64_t)SERVER_STOP_MS * 1000;

    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    while ((r = waitpid(s->pid, &status, WNOHANG)) == 0 && pe_now_mono_us() < deadline)
        usleep(10 * 1000);
    if (r == 0) {
        fprintf(stderr, "pe_test: server %d ignored SIGTERM for %d ms; killing it\n", s->pid,
                SERVER_STOP_MS);
        kill(s->pid, SIGKILL);
        r = waitpid(s->pid, &status, 0);
    }
    s->pid = 0;
    int rc = r < 0 || !WIFEXITED(status) ? -1 : WEXITSTATUS(status);
    if (rc != 0)
        fprintf(stderr, "pe_test: profit-engine serve exited with %d (log: %s)\n", rc, s->log_path);
    return rc;
}

int pe_test_server_alive(pe_test_server_t *s)
{
    char how[64];

    return s->pid > 0 && !child_exited(s->pid, how, sizeof(how));
}

char *pe_test_file(const char *relpath)
{
    enum { MAX_TEST_FILE = 1 << 20 };
    char path[1024];
    const char *file = __FILE__;
    const char *at = strstr(file, "support/pe_test.c");
    if (!at)
        die("cannot locate tests/ from %s", file);
    snprintf(path, sizeof path, "%.*s%s", (int)(at - file), file, relpath);
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open %s", path);
    char *buf = calloc(1, MAX_TEST_FILE);
    if (!buf) {
        fclose(f);
        die("out of memory reading %s", path);
    }
    size_t n = fread(buf, 1, MAX_TEST_FILE, f);
    bool whole = feof(f);
    fclose(f);
    if (!whole || n == MAX_TEST_FILE)
        die("%s is larger than %d bytes", path, MAX_TEST_FILE - 1);
    buf[n] = '\0';
    return buf;
}

void pe_test_plant_visitors(const char *conninfo, const char *store, const char *start,
                            const char *key, const char *prefix, int n, int n_control, bool holdout,
                            int pct_control, int pct_treatment)
{
    static const struct {
        const char *name;
        int step;
        bool exposure, ordered;
    } kinds[] = {
        {"storefront.page.viewed", 0, false, false},
        {"experiment.exposure.assigned", 0, true, false},
        {"storefront.cart.item_added", 1, false, false},
        {"checkout.session.started", 2, false, true},
        {"checkout.shipping.submitted", 3, false, true},
        {"checkout.payment.submitted", 4, false, true},
        {"checkout.order.completed", 5, false, true},
    };
    for (size_t k = 0; k < PE_ARRAY_LEN(kinds); k++) {
        char *r = pe_test_sqlf(
            conninfo,
            "WITH g AS (SELECT g, g < %d AS control,"
            "                  '%s'::timestamptz + make_interval(secs => 60 + g + %zu) AS t"
            "             FROM generate_series(0, %d) g)"
            "INSERT INTO events (store_id, occurred_at, event_id, name, funnel_step, session_id,"
            " anonymous_id, client_ts, received_at, properties, custom)"
            " SELECT '%s', t, gen_random_uuid(), '%s', %d, 's-%s-%s' || g, '%s' || g, t, now(),"
            "        CASE WHEN %s THEN jsonb_build_object('flagKey', '%s', 'variant',"
            "                 CASE WHEN control THEN 'control' ELSE 'treatment' END)"
            "             WHEN %d = 5 THEN '{\"orderId\":\"o\",\"value\":50,\"currency\":"
            "\"EUR\",\"items\":[{\"productId\":\"SKU-A\",\"quantity\":1,\"price\":50}]}'::jsonb"
            "             ELSE '{}'::jsonb END,"
            "        CASE WHEN %s AND %s THEN '{\"holdout\":true}'::jsonb END"
            "   FROM g WHERE NOT %s OR (g %% 100) < CASE WHEN control THEN %d ELSE %d END"
            " RETURNING 1",
            n_control, start, k, n - 1, store, kinds[k].name, kinds[k].step, key, prefix, prefix,
            kinds[k].exposure ? "true" : "false", key, kinds[k].step,
            kinds[k].exposure ? "true" : "false", holdout ? "true" : "false",
            kinds[k].ordered ? "true" : "false", pct_control, pct_treatment);
        free(r);
    }
}

char *pe_test_corpus(const char *relpath)
{
    char path[600];
    snprintf(path, sizeof path, "corpus/%s", relpath);
    return pe_test_file(path);
}

char *pe_test_corpusf(const char *relpath_fmt, ...)
{
    char relpath[512];
    va_list ap;

    va_start(ap, relpath_fmt);
    format_or_die(relpath, sizeof(relpath), "corpus path", relpath_fmt, ap);
    va_end(ap);
    return pe_test_corpus(relpath);
}

cJSON *pe_test_response_json(const pe_test_response_t *resp)
{
    cJSON *j = NULL;
    char err[128];
    const char *body = resp->body.data ? resp->body.data : "";
    if (pe_json_parse(body, resp->body.len, &j, err, sizeof err) != 0)
        fail_msg("body is not JSON (%s): %.300s", err, body);
    return j;
}

long pe_test_sql_long(const char *conninfo, const char *sql_fmt, ...)
{
    char sql[8192];
    va_list ap;
    va_start(ap, sql_fmt);
    format_or_die(sql, sizeof(sql), "statement", sql_fmt, ap);
    va_end(ap);
    char *v = pe_test_sql(conninfo, sql);
    long r = v ? strtol(v, NULL, 10) : -1;
    free(v);
    return r;
}

char *pe_test_sqlf(const char *conninfo, const char *sql_fmt, ...)
{
    char sql[8192];
    va_list ap;

    va_start(ap, sql_fmt);
    format_or_die(sql, sizeof(sql), "statement", sql_fmt, ap);
    va_end(ap);
    return pe_test_sql(conninfo, sql);
}

void pe_test_sql_expect(const char *conninfo, const char *want, const char *sql_fmt, ...)
{
    char sql[8192];
    va_list ap;
    char *got;

    va_start(ap, sql_fmt);
    format_or_die(sql, sizeof(sql), "statement", sql_fmt, ap);
    va_end(ap);
    got = pe_test_sql(conninfo, sql);
    if (!got || strcmp(got, want) != 0) {
        char shown[1024];

        snprintf(shown, sizeof(shown), "%s", got ? got : "(no row)");
        free(got);
        die("%s\n  got:  %s\n  want: %s", sql, shown, want);
    }
    free(got);
}

/* ---- waiting on the database ------------------------------------------------------------------
 */

bool pe_test_sql_wait(const char *conninfo, const char *sql, const char *want, int timeout_ms)
{
    int64_t deadline = pe_now_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        char *got = pe_test_sql(conninfo, sql);
        bool ok = got && strcmp(got, want) == 0;
        free(got);
        if (ok)
            return true;
        if (pe_now_mono_us() >= deadline)
            return false;
        usleep(50 * 1000);
    }
}

/* ---- a private redis-server -------------------------------------------------------------------
 */

/* True when something accepts a TCP connection on 127.0.0.1:port. */
static bool accepts(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int pe_test_redis_server_start(pe_test_redis_server_t *r, uint16_t port, const char *password)
{
    char portstr[8];
    const char *argv[16];
    int n = 0;

    memset(r, 0, sizeof(*r));
    r->port = port ? port : pe_test_free_port();
    if (!r->port)
        die("pe_test_redis_server_start: no free port: %s", strerror(errno));
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)r->port);
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = portstr;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    if (password) {
        argv[n++] = "--requirepass";
        argv[n++] = password;
    }
    argv[n] = NULL;
    /* exec's status comes back through a close-on-exec pipe: 127 = not installed. */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        unsetenv("LD_PRELOAD");
        unsetenv("FAKETIME");
        execvp("redis-server", (char *const *)argv);
        int e = errno;
        if (write(pfd[1], &e, sizeof(e)) < 0)
            _exit(126);
        _exit(127);
    }
    close(pfd[1]);
    int exec_errno = 0;
    ssize_t got = read(pfd[0], &exec_errno, sizeof(exec_errno));
    close(pfd[0]);
    if (got == (ssize_t)sizeof(exec_errno)) {
        waitpid(pid, NULL, 0);
        if (exec_errno == ENOENT)
            return -1;
        die("exec redis-server: %s", strerror(exec_errno));
    }
    r->pid = (int)pid;
    int64_t deadline = pe_now_mono_us() + (int64_t)PE_TEST_WAIT_MS * 1000;
    while (!accepts(r->port)) {
        if (pe_now_mono_us() >= deadline) {
            pe_test_redis_server_kill(r);
            die("private redis-server on port %u did not accept connections within %d ms",
                (unsigned)r->port, PE_TEST_WAIT_MS);
        }
        usleep(20 * 1000);
    }
    return 0;
}

void pe_test_redis_server_kill(pe_test_redis_server_t *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

/* ---- tenants ------------------------------------------------------------------------------ */

/* Copies src into dst[dstlen]; fails the test instead of truncating a credential. */
static void copy_field(char *dst, size_t dstlen, const char *what, const char *src)
{
    if ((size_t)snprintf(dst, dstlen, "%s", src) >= dstlen)
        die("pe_test_tenant: the %s '%.60s' is longer than %zu bytes", what, src, dstlen - 1);
}

void pe_test_tenant_make(pe_test_tenant_t *t, pe_db_pool_t *pool, const char *name, const char *tz,
                         const char *currency, const char *email, const char *password)
{
    pe_store_t store;
    char err[256] = "";
    int rc;

    memset(t, 0, sizeof(*t));
    rc = pe_tenancy_store_create(pool, name, tz, currency, &store, t->pk, t->sk, err, sizeof(err));
    if (rc != 0)
        die("store create: %s %s", pe_strerror(rc), err);
    copy_field(t->id, sizeof(t->id), "store id", store.id);
    snprintf(t->pk_auth, sizeof(t->pk_auth), "Authorization: Bearer %s", t->pk);
    snprintf(t->sk_auth, sizeof(t->sk_auth), "Authorization: Bearer %s", t->sk);
    if (email) {
        if (!password)
            die("pe_test_tenant_make: a merchant user (%s) needs a password", email);
        copy_field(t->email, sizeof(t->email), "email", email);
        copy_field(t->password, sizeof(t->password), "password", password);
        rc = pe_tenancy_user_create(pool, email, password, t->id, t->user, err, sizeof(err));
        if (rc != 0)
            die("user create: %s %s", pe_strerror(rc), err);
    }
}

void pe_test_tenant_sign_in(pe_test_tenant_t *t, const pe_test_server_t *s,
                            pe_test_response_t *login)
{
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    pe_buf_t body = PE_BUF_INIT;
    pe_test_response_t r;
    cJSON *j = NULL;
    const cJSON *csrf;
    char url[128], cookie[512], perr[128], why[512] = "";
    int rc;

    memset(&r, 0, sizeof(r));
    if (!t->email[0])
        die("pe_test_tenant_sign_in: store %s was made without a merchant user", t->id);
    snprintf(url, sizeof(url), "%s/api/v1/auth/login", s->base_url);
    rc = pe_buf_puts(&body, "{\"email\":");
    rc = rc ? rc : pe_buf_json_string(&body, t->email, strlen(t->email));
    rc = rc ? rc : pe_buf_puts(&body, ",\"password\":");
    rc = rc ? rc : pe_buf_json_string(&body, t->password, strlen(t->password));
    rc = rc ? rc : pe_buf_puts(&body, "}");
    if (rc != 0) {
        snprintf(why, sizeof(why), "out of memory");
        goto out;
    }
    if (pe_test_http("POST", url, body.data, headers, &r) != 0) {
        snprintf(why, sizeof(why), "POST %s: no exchange", url);
        goto out;
    }
    if (r.status != 200) {
        snprintf(why, sizeof(why), "sign-in as %s: status %ld: %.300s", t->email, r.status,
                 r.body.data ? r.body.data : "");
        goto out;
    }
    pe_test_response_header(&r, "Set-Cookie", cookie, sizeof(cookie));
    if (!cookie[0] || (size_t)snprintf(t->cookie, sizeof(t->cookie), "Cookie: %.*s",
                                       (int)strcspn(cookie, ";"), cookie) >= sizeof(t->cookie)) {
        snprintf(why, sizeof(why), "sign-in as %s: no usable Set-Cookie (%.200s)", t->email,
                 cookie);
        goto out;
    }
    if (pe_json_parse(r.body.data ? r.body.data : "", r.body.len, &j, perr, sizeof(perr)) != 0) {
        snprintf(why, sizeof(why), "sign-in as %s: the body is not JSON (%s)", t->email, perr);
        goto out;
    }
    csrf = cJSON_GetObjectItemCaseSensitive(j, "csrfToken");
    if (!cJSON_IsString(csrf) || (size_t)snprintf(t->csrf, sizeof(t->csrf), "X-CSRF-Token: %s",
                                                  csrf->valuestring) >= sizeof(t->csrf)) {
        snprintf(why, sizeof(why), "sign-in as %s: no usable csrfToken: %.300s", t->email,
                 r.body.data);
        goto out;
    }
out:
    cJSON_Delete(j);
    pe_buf_free(&body);
    if (why[0] || !login)
        pe_test_response_free(&r);
    else
        *login = r;
    if (why[0]) {
        t->cookie[0] = t->csrf[0] = '\0';
        die("pe_test_tenant_sign_in: %s", why);
    }
}

/* ---- an in-process HTTP server ------------------------------------------------------------- */

pe_http_router_t *pe_test_router_new(const pe_http_route_t *routes, size_t n)
{
    pe_http_router_t *router = pe_http_router_new();

    if (!router)
        die("out of memory");
    for (size_t i = 0; i < n; i++) {
        if (pe_http_router_add(router, &routes[i]) != 0) {
            pe_http_router_free(router);
            die("route %s %s does not go in", routes[i].method, routes[i].pattern);
        }
    }
    return router;
}

/* ---- the fixture of a test program ---------------------------------------------------------- */

void pe_test_fixture_open(pe_test_fixture_t *fx, pe_log_level_t log_level, int pool_size)
{
    memset(fx, 0, sizeof(*fx));
    if (pe_crypto_init() != 0)
        die("pe_crypto_init failed");
    /* libcurl's global init is not thread-safe: done here, before a test starts threads. */
    pthread_once(&curl_once, curl_init_once);
    pe_log_set_level(log_level);
    fx->conninfo = pe_test_db_create_migrated();
    if (pool_size > 0) {
        fx->pool = pe_db_pool_new(fx->conninfo, pool_size);
        if (!fx->pool) {
            pe_test_db_drop(fx->conninfo);
            fx->conninfo = NULL;
            die("pe_test_fixture_open: no pool of %d on the test database", pool_size);
        }
    }
}

int pe_test_fixture_close(pe_test_fixture_t *fx)
{
    int rc = fx->server.pid > 0 ? pe_test_server_stop(&fx->server) : 0;

    pe_db_pool_free(fx->pool);
    pe_test_db_drop(fx->conninfo); /* invariant 5 */
    memset(fx, 0, sizeof(*fx));
    return rc == 0 ? 0 : -1;
}

int pe_test_fixture_teardown(void **state)
{
    return *state ? pe_test_fixture_close(*state) : -1;
}

void pe_test_seeded_store(const pe_test_fixture_t *fx, pe_test_tenant_t *t, const char *name,
                          const char *email, const char *seed, const char *days, const char *end,
                          const char *sessions_per_day, const char *scenario)
{
    pe_test_tenant_make(t, fx->pool, name, "Europe/Berlin", "EUR", email,
                        email ? "store password" : NULL);
    char path[128] = "";
    if (scenario) {
        snprintf(path, sizeof path, "/tmp/pe-test-scenario-%s.json", t->id);
        FILE *f = fopen(path, "w");
        if (!f)
            fail_msg("cannot write %s", path);
        fputs(scenario, f);
        fclose(f);
    }
    const char *sim[] = {"simulate",
                         "--store",
                         t->id,
                         "--days",
                         days,
                         "--seed",
                         seed,
                         "--end",
                         end,
                         "--sessions-per-day",
                         sessions_per_day,
                         "--via",
                         "direct",
                         scenario ? "--scenario" : NULL,
                         path,
                         NULL};
    cJSON_Delete(pe_test_cli_json(fx->conninfo, 0, sim));
    const char *agg[] = {"aggregate", "--store", t->id, NULL};
    cJSON_Delete(pe_test_cli_json(fx->conninfo, 0, agg));
    if (scenario)
        unlink(path);
}
