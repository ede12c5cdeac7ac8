/*
 * test_notify.c — the ChangeSet notification outbox end to end: signed webhooks to a real HTTP
 * receiver in this process, retries with backoff, a receiver that is down, the extension API of
 * include/profit_engine.h (a custom guardrail check and a custom notifier), and the in-app
 * notifications API with its tenant isolation.
 *
 * Invariants the tests hold the code to:
 *  1. The webhook POST carries the stored payload as its body, X-PE-Delivery = the outbox id and
 *     X-PE-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t "." body)>, recomputed here from
 *     SHA-256 alone (RFC 2104), not with the code's HMAC calls.
 *  2. A receiver that fails is retried only when due, with a growing delay, and the in-app
 *     notification is written once however many times the webhook is retried.
 *  3. A receiver that is down leaves the outbox row pending (not delivered, not lost) until it
 *     answers; a row that exhausts its attempts is abandoned, never marked delivered.
 *  4. Checks and notifiers registered through profit_engine.h are called; a failing notifier is
 *     retried without calling the ones that succeeded again, and a notifier whose statements
 *     fail is rolled back alone (the others still run, the row still backs off).
 *  5. Notifications are listed newest first with keyset pagination; store B can neither read nor
 *     mark store A's; bad parameters answer 400 naming the parameter.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "pe/tenancy.h"
#include "pe_test.h"
#include "profit_engine.h"

#define SECRET      "whsec-test-0123456789abcdef"
#define MAX_FILE    (1u << 20)
#define MAX_RECEIVE 64

/* ---- a tiny HTTP receiver (one request per connection) -------------------------------------- */

typedef struct {
    char signature[256];
    char delivery[64];
    char content_type[128];
    char *body;
} received_t;

typedef struct {
    int fd;
    uint16_t port;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t mu;
    int script[16]; /* statuses to answer, in order; 200 afterwards */
    size_t nscript;
    size_t n; /* requests received */
    received_t req[MAX_RECEIVE];
} receiver_t;

static void header_value(const char *head, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t n = strlen(name);
    for (const char *p = head; p && *p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr(v, "\r\n");
            snprintf(out, outlen, "%.*s", (int)(end ? end - v : (long)strlen(v)), v);
            return;
        }
    }
}

static void serve_one(receiver_t *r, int c)
{
    char *buf = calloc(1, MAX_FILE);
    size_t len = 0;
    char *body = NULL;
    long want = -1;
    while (len < MAX_FILE - 1) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t k = read(c, buf + len, MAX_FILE - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end && want < 0) {
            char cl[32];
            header_value(buf, "Content-Length", cl, sizeof cl);
            want = (end + 4 - buf) + atol(cl);
            body = end + 4;
        }
        if (want >= 0 && (long)len >= want)
            break;
    }
    pthread_mutex_lock(&r->mu);
    int status = r->n < r->nscript ? r->script[r->n] : 200;
    if (body && r->n < MAX_RECEIVE) {
        received_t *q = &r->req[r->n];
        header_value(buf, "X-PE-Signature", q->signature, sizeof q->signature);
        header_value(buf, "X-PE-Delivery", q->delivery, sizeof q->delivery);
        header_value(buf, "Content-Type", q->content_type, sizeof q->content_type);
        q->body = strdup(body);
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
    char reply[160];
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", status);
    if (write(c, reply, (size_t)n) < 0) {
        /* the client went away: nothing to do */
    }
    free(buf);
}

static void *receiver_main(void *arg)
{
    receiver_t *r = arg;
    while (!atomic_load(&r->stop)) {
        struct pollfd p = {r->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(r, c);
        close(c);
    }
    return NULL;
}

/* Listens on 127.0.0.1:port (0 = any free port). */
static void receiver_start(receiver_t *r, uint16_t port)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    /* close-on-exec: a server started later must not inherit (and keep) the listening port */
    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(r->fd >= 0);
    int one = 1;
    setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(r->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(r->fd, 16), 0);
    socklen_t alen = sizeof a;
    getsockname(r->fd, (struct sockaddr *)&a, &alen);
    r->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&r->thread, NULL, receiver_main, r), 0);
}

/* Stops listening (the port refuses connections afterwards) and frees what was received;
 * receiver_start may run again on r. */
static void receiver_stop(receiver_t *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    close(r->fd);
    for (size_t i = 0; i < r->n && i < MAX_RECEIVE; i++)
        free(r->req[i].body);
    pthread_mutex_destroy(&r->mu);
}

static size_t received(receiver_t *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* ---- HMAC-SHA256 from SHA-256 alone (RFC 2104), to check the code's signature independently -- */

static void hmac_sha256_hex(const char *key, const char *msg1, const char *msg2, char out[65])
{
    unsigned char k[64] = {0}, ipad[64], opad[64], inner[32], mac[32];
    size_t klen = strlen(key);
    if (klen > 64)
        crypto_hash_sha256(k, (const unsigned char *)key, klen);
    else
        memcpy(k, key, klen);
    for (int i = 0; i < 64; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_buf_append(&b, ipad, 64), 0);
    assert_int_equal(pe_buf_puts(&b, msg1), 0);
    assert_int_equal(pe_buf_puts(&b, msg2), 0);
    crypto_hash_sha256(inner, (const unsigned char *)b.data, b.len);
    pe_buf_reset(&b);
    assert_int_equal(pe_buf_append(&b, opad, 64), 0);
    assert_int_equal(pe_buf_append(&b, inner, 32), 0);
    crypto_hash_sha256(mac, (const unsigned char *)b.data, b.len);
    pe_buf_free(&b);
    sodium_bin2hex(out, 65, mac, 32);
}

/* ---- fixtures ---------------------------------------------------------------------------------
 */

static pe_test_fixture_t fx; /* fx.server runs from test_webhook_from_server on */
static pe_test_tenant_t a, b;
static pe_changeset_actor_info_t merchant = {PE_CS_BY_MERCHANT, "user", "test-merchant"};

/* Marks every pending row delivered, so a test sees only the rows it makes. */
static void drain_outbox(void)
{
    free(pe_test_sqlf(fx.conninfo, "UPDATE notification_outbox SET delivered_at = now()"
                                   " WHERE delivered_at IS NULL AND abandoned_at IS NULL"));
}

/* Creates a banner ChangeSet for t through svc; returns its id in out. */
static void create_cs(pe_changeset_service_t *svc, const pe_test_tenant_t *t,
                      char out[PE_CHANGESET_ID_LEN])
{
    char *text = pe_test_corpus("changesets/valid/shipping_cost_banner.json");
    cJSON *doc = NULL, *stored = NULL;
    char why[128];
    assert_int_equal(pe_json_parse(text, strlen(text), &doc, why, sizeof why), 0);
    pe_changeset_result_t res;
    int rc = pe_changeset_create(svc, t->id, doc, &merchant, &stored, &res);
    if (rc != 0)
        fail_msg("create: %s %s", pe_strerror(rc), res.refusal.message);
    snprintf(out, PE_CHANGESET_ID_LEN, "%s",
             cJSON_GetObjectItemCaseSensitive(stored, "id")->valuestring);
    cJSON_Delete(stored);
    cJSON_Delete(doc);
    free(text);
}

static size_t dispatch(pe_changeset_service_t *svc)
{
    size_t n = 0;
    char err[256] = "";
    int rc = pe_changeset_dispatch(svc, &n, err, sizeof err);
    if (rc != 0)
        fail_msg("dispatch: %s %s", pe_strerror(rc), err);
    return n;
}

static pe_changeset_service_t *service(const char *webhook_url,
                                       const pe_guardrail_check_t *const *checks,
                                       const pe_changeset_notifier_t *const *notifiers)
{
    pe_changeset_config_t cfg = {.db = fx.pool,
                                 .webhook_url = webhook_url,
                                 .webhook_secret = SECRET,
                                 .extra_checks = checks,
                                 .notifiers = notifiers};
    pe_changeset_service_t *svc = pe_changeset_service_new(&cfg);
    assert_non_null(svc);
    return svc;
}

static void check_signature(const received_t *q, const char *body)
{
    long long t = 0;
    char v1[80] = "";
    if (sscanf(q->signature, "t=%lld,v1=%79s", &t, v1) != 2)
        fail_msg("X-PE-Signature is not t=…,v1=…: '%s'", q->signature);
    long long now = (long long)(pe_now_unix_us() / 1000000);
    assert_true(t > now - 120 && t <= now + 1);
    char ts[32], want[65];
    snprintf(ts, sizeof ts, "%lld.", t);
    hmac_sha256_hex(SECRET, ts, body, want);
    assert_string_equal(v1, want);
    assert_string_equal(q->body, body);
    assert_string_equal(q->content_type, "application/json");
}

/* ---- tests: webhooks ---------------------------------------------------------------------------
 */

static void test_hmac_reference(void **state)
{
    (void)state;
    char out[65];
    hmac_sha256_hex("Jefe", "what do ya want ", "for nothing?", out); /* RFC 4231, case 2 */
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_webhook_signed(void **state)
{
    (void)state;
    receiver_t r;
    char url[128], id[PE_CHANGESET_ID_LEN];
    drain_outbox();
    receiver_start(&r, 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hooks/pe", (unsigned)r.port);
    pe_changeset_service_t *svc = service(url, NULL, NULL);
    create_cs(svc, &a, id);
    assert_int_equal(dispatch(svc), 1);
    assert_int_equal(received(&r), 1);
    char *body = pe_test_sqlf(
        fx.conninfo, "SELECT payload::text FROM notification_outbox WHERE changeset_id = '%s'", id);
    char *oid = pe_test_sqlf(fx.conninfo,
                             "SELECT id FROM notification_outbox WHERE changeset_id = '%s'", id);
    check_signature(&r.req[0], body);
    assert_string_equal(r.req[0].delivery, oid);
    cJSON *p = NULL;
    char why[64];
    assert_int_equal(pe_json_parse(r.req[0].body, strlen(r.req[0].body), &p, why, sizeof why), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "kind")->valuestring,
                        "changeset.created");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "changesetId")->valuestring, id);
    cJSON_Delete(p);
    pe_test_sql_expect(fx.conninfo, "t",
                       "SELECT delivered_at IS NOT NULL AND delivered_to = '{in_app,webhook}'"
                       " FROM notification_outbox WHERE id = %s",
                       oid);
    pe_test_sql_expect(fx.conninfo, "1", "SELECT count(*) FROM notifications WHERE outbox_id = %s",
                       oid);
    /* nothing left: a second dispatch posts nothing */
    assert_int_equal(dispatch(svc), 0);
    assert_int_equal(received(&r), 1);
    free(body);
    free(oid);
    pe_changeset_service_free(svc);
    receiver_stop(&r);
}

static void test_webhook_retry_backoff(void **state)
{
    (void)state;
    receiver_t r;
    char url[128], id[PE_CHANGESET_ID_LEN];
    drain_outbox();
    receiver_start(&r, 0);
    r.script[0] = 500;
    r.script[1] = 503;
    r.nscript = 2;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)r.port);
    pe_changeset_service_t *svc = service(url, NULL, NULL);
    create_cs(svc, &a, id);
    char *oid = pe_test_sqlf(fx.conninfo,
                             "SELECT id FROM notification_outbox WHERE changeset_id = '%s'", id);
    /* attempt 1: 500 — in-app delivered, webhook due again in ~30 s */
    assert_int_equal(dispatch(svc), 0);
    assert_int_equal(received(&r), 1);
    pe_test_sql_expect(fx.conninfo, "t",
                       "SELECT delivered_at IS NULL AND attempts = 1 AND delivered_to = '{in_app}'"
                       " AND next_attempt_at - now() BETWEEN interval '25 s' AND interval '31 s'"
                       " AND last_error LIKE 'webhook: the webhook answered 500%%'"
                       " FROM notification_outbox WHERE id = %s",
                       oid);
    /* not due yet: nothing is posted */
    assert_int_equal(dispatch(svc), 0);
    assert_int_equal(received(&r), 1);
    /* attempt 2 (time passes): 503 — the delay doubles */
    free(pe_test_sqlf(fx.conninfo,
                      "UPDATE notification_outbox SET next_attempt_at = now() WHERE id = %s", oid));
    assert_int_equal(dispatch(svc), 0);
    assert_int_equal(received(&r), 2);
    pe_test_sql_expect(fx.conninfo, "t",
                       "SELECT delivered_at IS NULL AND attempts = 2"
                       " AND next_attempt_at - now() BETWEEN interval '55 s' AND interval '61 s'"
                       " FROM notification_outbox WHERE id = %s",
                       oid);
    /* attempt 3: 200 — delivered, the same delivery id and body each time */
    free(pe_test_sqlf(fx.conninfo,
                      "UPDATE notification_outbox SET next_attempt_at = now() WHERE id = %s", oid));
    assert_int_equal(dispatch(svc), 1);
    assert_int_equal(received(&r), 3);
    char *body = pe_test_sqlf(fx.conninfo,
                              "SELECT payload::text FROM notification_outbox WHERE id = %s", oid);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(r.req[i].delivery, oid);
        check_signature(&r.req[i], body);
    }
    pe_test_sql_expect(fx.conninfo, "t",
                       "SELECT delivered_at IS NOT NULL AND attempts = 3 AND last_error IS NULL"
                       " FROM notification_outbox WHERE id = %s",
                       oid);
    /* the in-app notification exists once, not once per attempt */
    pe_test_sql_expect(fx.conninfo, "1",
                       "SELECT count(*) FROM notifications WHERE changeset_id = '%s'", id);
    free(body);
    free(oid);
    pe_changeset_service_free(svc);
    receiver_stop(&r);
}

static void test_webhook_down(void **state)
{
    (void)state;
    receiver_t r;
    char url[128], id[PE_CHANGESET_ID_LEN];
    drain_outbox();
    /* a port that was ours and now refuses connections */
    receiver_start(&r, 0);
    uint16_t port = r.port;
    receiver_stop(&r);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)port);
    pe_changeset_service_t *svc = service(url, NULL, NULL);
    create_cs(svc, &b, id);
    char *oid = pe_test_sqlf(fx.conninfo,
                             "SELECT id FROM notification_outbox WHERE changeset_id = '%s'", id);
    assert_int_equal(dispatch(svc), 0);
    pe_test_sql_expect(fx.conninfo, "t",
                       "SELECT delivered_at IS NULL AND abandoned_at IS NULL AND attempts = 1"
                       " AND last_error LIKE 'webhook: %%'"
                       " FROM notification_outbox WHERE id = %s",
                       oid);
    /* the receiver comes back: the pending row reaches it when next due */
    receiver_start(&r, port);
    free(pe_test_sqlf(fx.conninfo,
                      "UPDATE notification_outbox SET next_attempt_at = now() WHERE id = %s", oid));
    assert_int_equal(dispatch(svc), 1);
    assert_int_equal(received(&r), 1);
    assert_string_equal(r.req[0].delivery, oid);
    receiver_stop(&r);
    /* down for good: the last attempt abandons the row, it is never marked delivered */
    create_cs(svc, &b, id);
    char *oid2 = pe_test_sqlf(fx.conninfo,
                              "SELECT id FROM notification_outbox WHERE changeset_id = '%s'", id);
    free(pe_test_sqlf(fx.conninfo, "UPDATE notification_outbox SET attempts = 11 WHERE id = %s",
                      oid2));
    assert_int_equal(dispatch(svc), 0);
    pe_test_sql_expect(fx.conninfo, "t",
                       "SELECT delivered_at IS NULL AND abandoned_at IS NOT NULL AND attempts = 12"
                       " FROM notification_outbox WHERE id = %s",
                       oid2);
    free(pe_test_sqlf(
        fx.conninfo, "UPDATE notification_outbox SET next_attempt_at = now() WHERE id = %s", oid2));
    assert_int_equal(dispatch(svc), 0); /* abandoned rows are not retried */
    pe_test_sql_expect(fx.conninfo, "12", "SELECT attempts FROM notification_outbox WHERE id = %s",
                       oid2);
    free(oid);
    free(oid2);
    pe_changeset_service_free(svc);
}

/* ---- tests: the extension API ------------------------------------------------------------------
 */

typedef struct {
    atomic_int calls;
} check_ctx_t;

static int custom_check(void *ctx, pe_db_conn_t *conn, const char *store_id, const cJSON *cs,
                        const cJSON *config, cJSON *violations)
{
    (void)conn;
    (void)store_id;
    (void)cs;
    (void)config;
    atomic_fetch_add(&((check_ctx_t *)ctx)->calls, 1);
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "kind", "custom.freeze");
    cJSON_AddStringToObject(v, "message", "The store is in its holiday change freeze");
    cJSON_AddItemToArray(violations, v);
    return 0;
}

typedef struct {
    atomic_int calls;
    atomic_int fail_first;
    char last_kind[64];
    char last_changeset[PE_CHANGESET_ID_LEN];
    int last_attempt;
} notifier_ctx_t;

static int custom_notifier(void *ctx, const pe_changeset_notification_t *n, char *err,
                           size_t errlen)
{
    notifier_ctx_t *c = ctx;
    atomic_fetch_add(&c->calls, 1);
    snprintf(c->last_kind, sizeof c->last_kind, "%s", n->kind);
    snprintf(c->last_changeset, sizeof c->last_changeset, "%s",
             n->changeset_id ? n->changeset_id : "");
    c->last_attempt = n->attempt;
    assert_non_null(n->payload);
    assert_non_null(n->conn);
    if (atomic_fetch_sub(&c->fail_first, 1) > 0) {
        snprintf(err, errlen, "slack is down");
        return PE_EIO;
    }
    return 0;
}

static void test_extensions(void **state)
{
    (void)state;
    check_ctx_t cc = {0};
    notifier_ctx_t nc = {0};
    atomic_store(&nc.fail_first, 1);
    const pe_guardrail_check_t check = {"freeze", custom_check, &cc};
    const pe_changeset_notifier_t notifier = {"slack", custom_notifier, &nc};
    const pe_guardrail_check_t *const checks[] = {&check, NULL};
    const pe_changeset_notifier_t *const notifiers[] = {&notifier, NULL};
    char id[PE_CHANGESET_ID_LEN];
    drain_outbox();
    pe_changeset_service_t *svc = service(NULL, checks, notifiers);
    create_cs(svc, &a, id);
    /* the custom notifier fails once: retried, in-app not written twice */
    assert_int_equal(dispatch(svc), 0);
    assert_int_equal(atomic_load(&nc.calls), 1);
    assert_string_equal(nc.last_kind, "changeset.created");
    assert_string_equal(nc.last_changeset, id);
    pe_test_sql_expect(fx.conninfo, "t",
                       "SELECT delivered_to = '{in_app}' AND last_error = 'slack: slack is down'"
                       " FROM notification_outbox WHERE changeset_id = '%s'",
                       id);
    free(pe_test_sqlf(
        fx.conninfo,
        "UPDATE notification_outbox SET next_attempt_at = now() WHERE changeset_id = '%s'", id));
    assert_int_equal(dispatch(svc), 1);
    assert_int_equal(atomic_load(&nc.calls), 2);
    assert_int_equal(nc.last_attempt, 2);
    pe_test_sql_expect(fx.conninfo, "t",
                       "SELECT delivered_at IS NOT NULL AND delivered_to = '{in_app,slack}'"
                       " FROM notification_outbox WHERE changeset_id = '%s'",
                       id);
    pe_test_sql_expect(fx.conninfo, "1",
                       "SELECT count(*) FROM notifications WHERE changeset_id = '%s'", id);
    /* the custom check runs on submission and blocks approval with its sentence */
    pe_changeset_result_t res;
    cJSON *doc = NULL;
    pe_changeset_transition_req_t t = {.to = "PENDING_APPROVAL", .expected_version = -1};
    assert_int_equal(pe_changeset_transition(svc, a.id, id, &t, &merchant, &doc, &res), 0);
    cJSON_Delete(doc);
    assert_true(atomic_load(&cc.calls) >= 1);
    int before = atomic_load(&cc.calls);
    t.to = "ACTIVE";
    assert_int_equal(pe_changeset_transition(svc, a.id, id, &t, &merchant, &doc, &res),
                     PE_ECONFLICT);
    assert_string_equal(res.refusal.code, "guardrail_violation");
    assert_non_null(strstr(res.refusal.message, "The store is in its holiday change freeze"));
    assert_true(atomic_load(&cc.calls) > before);
    pe_changeset_result_free(&res);
    t.force = t.confirm = true;
    assert_int_equal(pe_changeset_transition(svc, a.id, id, &t, &merchant, &doc, &res), 0);
    cJSON_Delete(doc);
    /* the notifier hears about the approval */
    while (dispatch(svc) > 0)
        ;
    assert_string_equal(nc.last_kind, "changeset.approved");
    pe_changeset_service_free(svc);

    /* a notifier the registry refuses: bad name, duplicate of a built-in, no function */
    const pe_changeset_notifier_t bad[] = {
        {"Bad Name", custom_notifier, &nc}, {"in_app", custom_notifier, &nc}, {"x", NULL, NULL}};
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        const pe_changeset_notifier_t *const list[] = {&bad[i], NULL};
        pe_changeset_config_t cfg = {.db = fx.pool, .notifiers = list};
        pe_changeset_service_t *s = pe_changeset_service_new(&cfg);
        if (s)
            fail_msg("notifier '%s' was accepted", bad[i].name);
    }
}

/* A notifier whose statements fail is rolled back alone: the next notifier still runs, and the
 * row keeps its bookkeeping (attempts, backoff) even when no notifier succeeded. */
static void test_failing_in_app_isolated(void **state)
{
    (void)state;
    notifier_ctx_t nc = {0};
    atomic_store(&nc.fail_first, 1);
    const pe_changeset_notifier_t notifier = {"slack", custom_notifier, &nc};
    const pe_changeset_notifier_t *const notifiers[] = {&notifier, NULL};
    char id[PE_CHANGESET_ID_LEN];
    drain_outbox();
    pe_changeset_service_t *svc = service(NULL, NULL, notifiers);
    create_cs(svc, &b, id);
    free(pe_test_sqlf(
        fx.conninfo,
        "CREATE FUNCTION refuse_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.changeset_id = '%s' THEN RAISE EXCEPTION 'notifications are full'; END IF;"
        " RETURN NEW; END $$",
        id));
    free(pe_test_sqlf(fx.conninfo, "CREATE TRIGGER refuse_note BEFORE INSERT ON notifications"
                                   " FOR EACH ROW EXECUTE FUNCTION refuse_note()"));
    assert_int_equal(dispatch(svc), 0);
    assert_int_equal(atomic_load(&nc.calls), 1); /* called after in_app failed */
    pe_test_sql_expect(
        fx.conninfo, "t",
        "SELECT delivered_at IS NULL AND attempts = 1 AND delivered_to = '{}'"
        " AND last_error LIKE 'in_app: %%notifications are full%%; slack: slack is down'"
        " AND next_attempt_at > now() + interval '25 s'"
        " FROM notification_outbox WHERE changeset_id = '%s'",
        id);
    free(pe_test_sqlf(fx.conninfo, "DROP TRIGGER refuse_note ON notifications"));
    free(pe_test_sqlf(fx.conninfo, "DROP FUNCTION refuse_note()"));
    free(pe_test_sqlf(
        fx.conninfo,
        "UPDATE notification_outbox SET next_attempt_at = now() WHERE changeset_id = '%s'", id));
    assert_int_equal(dispatch(svc), 1);
    pe_test_sql_expect(fx.conninfo, "t",
                       "SELECT delivered_at IS NOT NULL AND delivered_to = '{in_app,slack}'"
                       " FROM notification_outbox WHERE changeset_id = '%s'",
                       id);
    pe_test_sql_expect(fx.conninfo, "1",
                       "SELECT count(*) FROM notifications WHERE changeset_id = '%s'", id);
    pe_changeset_service_free(svc);
}

/* A burst of transitions (a bulk approval, a rollback wave) queues many rows: one run delivers
 * all of them, not a fixed few per run (20, once) while the rest wait for later runs. 100 rows
 * fit the run's 2 s with room on two busy cores under ASan; 300 did not always. */
static void test_burst_delivered_in_one_run(void **state)
{
    (void)state;
    enum { BURST = 100 };
    char id[PE_CHANGESET_ID_LEN];
    drain_outbox();
    pe_changeset_service_t *svc = service(NULL, NULL, NULL);
    create_cs(svc, &b, id);
    free(pe_test_sqlf(fx.conninfo,
                      "INSERT INTO notification_outbox (store_id, kind, changeset_id, payload)"
                      " SELECT store_id, kind, changeset_id, payload FROM notification_outbox,"
                      " generate_series(2, %d) WHERE changeset_id = '%s'",
                      BURST, id));
    pe_test_sql_expect(fx.conninfo, "100",
                       "SELECT count(*) FROM notification_outbox WHERE changeset_id = '%s'"
                       " AND delivered_at IS NULL",
                       id);
    assert_int_equal(dispatch(svc), BURST);
    pe_test_sql_expect(fx.conninfo, "0",
                       "SELECT count(*) FROM notification_outbox WHERE changeset_id = '%s'"
                       " AND delivered_at IS NULL",
                       id);
    pe_test_sql_expect(fx.conninfo, "100",
                       "SELECT count(*) FROM notifications WHERE changeset_id = '%s'", id);
    pe_changeset_service_free(svc);
}

/* ---- tests through the server ------------------------------------------------------------------
 */

/* pe_test_expect without a body as t's secret key; every answer here has a JSON body. */
static cJSON *expect(const char *method, const char *path, const pe_test_tenant_t *t, long want)
{
    cJSON *j = pe_test_expect(&fx.server, method, path, NULL, t->sk_auth, want);
    if (!j)
        fail_msg("%s %s: %ld with an empty body, want JSON", method, path, want);
    return j;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void wait_sql(const char *want, const char *q)
{
    if (!pe_test_sql_wait(fx.conninfo, q, want, PE_TEST_WAIT_MS))
        fail_msg("never true: %s = %s (log: %s)", q, want, fx.server.log_path);
}

static void test_webhook_from_server(void **state)
{
    (void)state;
    receiver_t r;
    char env_url[160], path[256];
    drain_outbox();
    receiver_start(&r, 0);
    snprintf(env_url, sizeof env_url, "PE_WEBHOOK_URL=http://127.0.0.1:%u/in", (unsigned)r.port);
    pe_test_server_start(&fx.server, fx.conninfo,
                         (const char *const[]){"PE_HTTP_THREADS=2", "PE_NOTIFY_INTERVAL_S=1",
                                               env_url, "PE_WEBHOOK_SECRET=" SECRET, NULL});
    char *doc = pe_test_corpus("changesets/valid/discount_change.json");
    snprintf(path, sizeof path, "%s/api/v1/stores/%s/changesets", fx.server.base_url, a.id);
    const char *headers[] = {a.sk_auth, "Content-Type: application/json", NULL};
    pe_test_response_t resp;
    assert_int_equal(pe_test_http("POST", path, doc, headers, &resp), 0);
    assert_int_equal(resp.status, 201);
    pe_test_response_free(&resp);
    free(doc);
    for (int64_t t0 = pe_now_mono_us();
         received(&r) == 0 && pe_now_mono_us() - t0 < (int64_t)PE_TEST_WAIT_MS * 1000;)
        usleep(50 * 1000);
    if (received(&r) == 0)
        fail_msg("the server never posted the webhook (log: %s)", fx.server.log_path);
    char q[128];
    snprintf(q, sizeof q, "SELECT payload::text FROM notification_outbox WHERE id = %s",
             r.req[0].delivery);
    char *body = pe_test_sql(fx.conninfo, q);
    check_signature(&r.req[0], body);
    free(body);
    receiver_stop(&r);
    /* the rest of the tests use this server */
}

static void test_notifications_api(void **state)
{
    (void)state;
    char path[512], q[256];
    pe_changeset_service_t *svc = service(NULL, NULL, NULL);
    char ids[3][PE_CHANGESET_ID_LEN];
    for (int i = 0; i < 3; i++)
        create_cs(svc, &a, ids[i]);
    pe_changeset_service_free(svc);
    snprintf(q, sizeof q,
             "SELECT count(*) FROM notifications WHERE changeset_id IN ('%s','%s','%s')", ids[0],
             ids[1], ids[2]);
    wait_sql("3", q); /* the server's dispatcher delivered them in-app */

    /* page through everything newest first, two at a time */
    snprintf(path, sizeof path, "/api/v1/stores/%s/notifications?limit=2", a.id);
    cJSON *p1 = expect("GET", path, &a, 200);
    cJSON *items = cJSON_GetObjectItemCaseSensitive(p1, "notifications");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    const char *cursor = jstr(p1, "nextCursor");
    assert_non_null(cursor);
    const cJSON *first = cJSON_GetArrayItem(items, 0);
    assert_string_equal(jstr(first, "changesetId"), ids[2]); /* newest first */
    assert_string_equal(jstr(first, "kind"), "changeset.created");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(first, "readAt")));
    long total_unread = (long)cJSON_GetObjectItemCaseSensitive(p1, "unreadCount")->valuedouble;
    long seen = 2, last = atol(jstr(cJSON_GetArrayItem(items, 1), "id"));
    char next[32];
    snprintf(next, sizeof next, "%s", cursor);
    for (;;) {
        snprintf(path, sizeof path, "/api/v1/stores/%s/notifications?limit=2&cursor=%s", a.id,
                 next);
        cJSON *pg = expect("GET", path, &a, 200);
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(pg, "notifications"))
        {
            long id = atol(jstr(it, "id"));
            assert_true(id < last); /* strictly descending: no overlap, no repeat */
            last = id;
            seen++;
        }
        const char *nc = jstr(pg, "nextCursor");
        if (nc)
            snprintf(next, sizeof next, "%s", nc);
        cJSON_Delete(pg);
        if (!nc)
            break;
    }
    snprintf(q, sizeof q, "SELECT count(*) FROM notifications WHERE store_id = '%s'", a.id);
    char *count = pe_test_sql(fx.conninfo, q);
    assert_int_equal(seen, atol(count));
    free(count);

    /* mark the newest read: readAt set, gone from unread, unreadCount down by one */
    char nid[32];
    snprintf(nid, sizeof nid, "%s", jstr(first, "id"));
    snprintf(path, sizeof path, "/api/v1/stores/%s/notifications/%s/read", a.id, nid);
    cJSON *m = expect("POST", path, &a, 200);
    assert_string_equal(jstr(m, "id"), nid);
    char read_at[40];
    assert_non_null(jstr(m, "readAt"));
    snprintf(read_at, sizeof read_at, "%s", jstr(m, "readAt"));
    cJSON_Delete(m);
    m = expect("POST", path, &a, 200); /* idempotent: the first readAt stays */
    assert_string_equal(jstr(m, "readAt"), read_at);
    cJSON_Delete(m);
    snprintf(path, sizeof path, "/api/v1/stores/%s/notifications?unread=true&limit=100", a.id);
    cJSON *u = expect("GET", path, &a, 200);
    assert_int_equal((long)cJSON_GetObjectItemCaseSensitive(u, "unreadCount")->valuedouble,
                     total_unread - 1);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(u, "notifications"))
    {
        assert_string_not_equal(jstr(it, "id"), nid);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(it, "readAt")));
    }
    cJSON_Delete(u);

    /* store B: not through A's path (403), not by id through its own (404), A's stays unread */
    const char *second = jstr(cJSON_GetArrayItem(items, 1), "id");
    snprintf(path, sizeof path, "/api/v1/stores/%s/notifications", a.id);
    cJSON_Delete(expect("GET", path, &b, 403));
    snprintf(path, sizeof path, "/api/v1/stores/%s/notifications/%s/read", a.id, second);
    cJSON_Delete(expect("POST", path, &b, 403));
    snprintf(path, sizeof path, "/api/v1/stores/%s/notifications/%s/read", b.id, second);
    cJSON *nf = expect("POST", path, &b, 404);
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(nf, "error"), "code"), "not_found");
    cJSON_Delete(nf);
    snprintf(path, sizeof path, "/api/v1/stores/%s/notifications?limit=100", b.id);
    cJSON *lb = expect("GET", path, &b, 200);
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(lb, "notifications"))
    {
        char check[160];
        const char *id = jstr(it, "id");
        assert_non_null(id);
        snprintf(check, sizeof check, "SELECT store_id FROM notifications WHERE id = %s",
                 id ? id : "NULL");
        char *owner = pe_test_sql(fx.conninfo, check);
        assert_string_equal(owner, b.id);
        free(owner);
    }
    cJSON_Delete(lb);
    snprintf(q, sizeof q, "SELECT read_at IS NULL FROM notifications WHERE id = %s", second);
    char *still = pe_test_sql(fx.conninfo, q);
    assert_string_equal(still, "t");
    free(still);
    cJSON_Delete(p1);

    /* bad parameters: 400 naming the parameter */
    static const char *const bad[][2] = {
        {"?limit=0", "limit:"},           {"?limit=101", "limit:"},  {"?limit=x", "limit:"},
        {"?cursor=abc", "cursor:"},       {"?cursor=-5", "cursor:"}, {"?unread=maybe", "unread:"},
        {"/abc/read", "notificationId:"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        bool post = strstr(bad[i][0], "/read") != NULL;
        snprintf(path, sizeof path, "/api/v1/stores/%s/notifications%s", a.id, bad[i][0]);
        cJSON *e = expect(post ? "POST" : "GET", path, &a, 400);
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(e, "error");
        assert_non_null(jstr(err, "code"));
        if (strncmp(jstr(err, "message"), bad[i][1], strlen(bad[i][1])) != 0)
            fail_msg("%s: message '%s' does not start with '%s'", bad[i][0], jstr(err, "message"),
                     bad[i][1]);
        cJSON_Delete(e);
    }
    snprintf(path, sizeof path, "/api/v1/stores/%s/notifications/999999999/read", a.id);
    cJSON_Delete(expect("POST", path, &a, 404));
}

/* ---- setup
 * --------------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_ERROR, 2);
    pe_test_tenant_make(&a, fx.pool, "Notify A", "Europe/Berlin", "EUR", NULL, NULL);
    pe_test_tenant_make(&b, fx.pool, "Notify B", "Europe/Berlin", "EUR", NULL, NULL);
    return 0;
}

int main(void)
{
    /* in-process first (no server dispatching behind their back), then through the server */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_reference),
        cmocka_unit_test(test_webhook_signed),
        cmocka_unit_test(test_webhook_retry_backoff),
        cmocka_unit_test(test_webhook_down),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_failing_in_app_isolated),
        cmocka_unit_test(test_burst_delivered_in_one_run),
        cmocka_unit_test(test_webhook_from_server),
        cmocka_unit_test(test_notifications_api),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
