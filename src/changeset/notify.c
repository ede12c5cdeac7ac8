/*
 * notify.c — the ChangeSet notification outbox: the dispatcher that hands every due row to the
 * registered notifiers, the two built-in notifiers (in-app, signed webhook), and the merchant's
 * in-app notifications (list, mark read).
 *
 * One outbox row's delivery:
 *
 *   queued (transition commits) ──dispatch──▶ every notifier not in delivered_to is called
 *        ▲                                          │
 *        │ some failed, attempts < 12               ├── all succeeded ──▶ delivered (delivered_at)
 *        └── next_attempt_at = now + 30 s · 2^n ◀───┤
 *            (capped at 1 h)                        └── some failed, 12th attempt ──▶ abandoned
 *
 *   | transition          | function                                    |
 *   |---------------------|---------------------------------------------|
 *   | queued → delivering | pe_changeset_dispatch (dispatch_one)        |
 *   | → delivered         | dispatch_one: settle(…, all_ok)             |
 *   | → retry later       | dispatch_one: settle(…, backoff)            |
 *   | → abandoned         | dispatch_one: settle(…, last attempt)       |
 *
 * Invariants:
 *  1. Each row is delivered in its own transaction that holds its row lock (FOR UPDATE SKIP
 *     LOCKED): two dispatchers never deliver the same row at once, and a crash before the commit
 *     leaves the row due (at-least-once; nothing is lost).
 *  2. Each notifier runs inside a savepoint: a notifier whose statements fail is rolled back
 *     alone; the row's bookkeeping still commits.
 *  3. delivered_to only grows; a notifier named there is not called again for that row, so a
 *     webhook that fails does not duplicate the in-app notification or an extension's delivery.
 *  4. The webhook body is the stored payload text, byte for byte, and the signature covers
 *     "<t>.<body>" with t the Unix seconds sent in the same header.
 *  5. Every statement filters by store_id.
 *
 * Known cost of (1): rows are delivered one after the other and a row's in-app notification
 * commits with its webhook attempt, so a receiver that hangs delays each later row by up to
 * WEBHOOK_TIMEOUT_S. A pass per notifier over the due rows, each committing its own
 * delivered_to under a lease (next_attempt_at pushed ahead), would lift that.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "changeset_internal.h"

#define ACQUIRE_TIMEOUT_MS 5000
/* A run delivers every due row, for at most this long: a burst of transitions (hundreds of rows)
 * goes out at once instead of a fixed number per run, and a run still ends in bounded time for
 * the scheduler and shutdown when webhooks are slow. What is left is due at the next run. */
#define DISPATCH_BUDGET_US    2000000
#define WEBHOOK_TIMEOUT_S     5L
#define MAX_DELIVERY_ATTEMPTS 12

bool pe_changeset_notifier_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* ---- built-in notifiers ------------------------------------------------------------------------
 */

static const char *json_str(const cJSON *o, const char *k, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

int pe_changeset_deliver_in_app(void *ctx, const pe_changeset_notification_t *n, char *err,
                                size_t errlen)
{
    (void)ctx;
    const char *p[] = {n->store_id,
                       n->outbox_id,
                       n->kind,
                       n->changeset_id,
                       json_str(n->payload, "title", n->kind),
                       json_str(n->payload, "reason", "")};
    int rc = pe_db_exec(n->conn,
                        "INSERT INTO notifications (store_id, outbox_id, kind, changeset_id,"
                        " title, body) VALUES ($1::uuid, $2::bigint, $3, $4, $5, $6)"
                        " ON CONFLICT (store_id, outbox_id) DO NOTHING",
                        6, p, NULL);
    if (rc != 0)
        snprintf(err, errlen, "%s", pe_db_conn_error(n->conn));
    return rc;
}

static size_t discard(char *p, size_t size, size_t nmemb, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * nmemb;
}

int pe_changeset_deliver_webhook(void *ctx, const pe_changeset_notification_t *n, char *err,
                                 size_t errlen)
{
    const pe_changeset_service_t *svc = ctx;
    char ts[32], sig[crypto_auth_hmacsha256_BYTES * 2 + 1], header[192], delivery[96];
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    struct curl_slist *h = NULL;
    int rc = PE_ENOMEM;
    snprintf(ts, sizeof ts, "%lld", (long long)(pe_now_unix_us() / 1000000));
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)svc->webhook_secret,
                                strlen(svc->webhook_secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)n->body, strlen(n->body));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(sig, sizeof sig, mac, sizeof mac);
    snprintf(header, sizeof header, "X-PE-Signature: t=%s,v1=%s", ts, sig);
    snprintf(delivery, sizeof delivery, "X-PE-Delivery: %s", n->outbox_id);
    CURL *c = curl_easy_init();
    if (!c)
        goto out;
    h = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *t = h ? curl_slist_append(h, header) : NULL;
    t = t ? curl_slist_append(h, delivery) : NULL;
    t = t ? curl_slist_append(h, "Expect:") : NULL; /* no 100-continue round trip */
    if (!t)
        goto out;
    curl_easy_setopt(c, CURLOPT_URL, svc->webhook_url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, n->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(n->body));
    curl_easy_setopt(c, CURLOPT_TIMEOUT, WEBHOOK_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(cc));
        rc = PE_EIO;
    } else if (status < 200 || status > 299) {
        snprintf(err, errlen, "the webhook answered %ld", status);
        rc = PE_EIO;
    } else {
        rc = 0;
    }
out:
    sodium_memzero(&st, sizeof st);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc;
}

/* ---- the dispatcher ----------------------------------------------------------------------------
 */

/* Columns of the row query. */
enum { R_STORE, R_ID, R_KIND, R_CHANGESET, R_PAYLOAD, R_ATTEMPTS, R_DELIVERED_TO };

/* True when name is one of the comma-separated names in list (names hold no comma). */
static bool listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

/* Calls one notifier inside a savepoint. Returns its result (0 = delivered); a failure of the
 * savepoint itself is returned as *fatal (the transaction is unusable). */
static int call_notifier(pe_db_conn_t *conn, const pe_changeset_notifier_t *nt,
                         const pe_changeset_notification_t *n, char *why, size_t whylen, int *fatal)
{
    *fatal = pe_db_exec(conn, "SAVEPOINT pe_notifier", 0, NULL, NULL);
    if (*fatal != 0)
        return *fatal;
    why[0] = '\0';
    int rc = nt->deliver(nt->ctx, n, why, whylen);
    *fatal = pe_db_exec(
        conn, rc == 0 ? "RELEASE SAVEPOINT pe_notifier" : "ROLLBACK TO SAVEPOINT pe_notifier", 0,
        NULL, NULL);
    if (rc != 0 && !why[0])
        snprintf(why, whylen, "%s", pe_strerror(rc));
    return rc;
}

/* Delivers the oldest due row, if any, in its own transaction. *got = whether there was one,
 * *delivered = whether every notifier has it now. */
static int dispatch_one(pe_changeset_service_t *svc, pe_db_conn_t *conn, bool *got, bool *delivered)
{
    pe_db_result_t *res = NULL;
    cJSON *payload = NULL;
    pe_buf_t done = PE_BUF_INIT, errors = PE_BUF_INIT;
    *got = *delivered = false;
    int rc = pe_db_begin(conn);
    if (rc != 0)
        return rc;
    rc = pe_db_exec(conn,
                    "SELECT store_id, id, kind, changeset_id, payload::text, attempts,"
                    " array_to_string(delivered_to, ',') FROM notification_outbox"
                    " WHERE delivered_at IS NULL AND abandoned_at IS NULL"
                    " AND next_attempt_at <= now()"
                    " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
                    0, NULL, &res);
    if (rc != 0 || pe_db_result_rows(res) == 0)
        goto out;
    *got = true;
    const char *store = pe_db_result_get(res, 0, R_STORE), *oid = pe_db_result_get(res, 0, R_ID);
    const char *body = pe_db_result_get(res, 0, R_PAYLOAD);
    const char *already = pe_db_result_get(res, 0, R_DELIVERED_TO);
    int attempt = atoi(pe_db_result_get(res, 0, R_ATTEMPTS)) + 1;
    char why[256];
    if (pe_json_parse(body, strlen(body), &payload, why, sizeof why) != 0) {
        rc = PE_EINTERNAL; /* jsonb always parses; a failure here is a bug */
        goto out;
    }
    pe_changeset_notification_t n = {
        .store_id = store,
        .outbox_id = oid,
        .kind = pe_db_result_get(res, 0, R_KIND),
        .changeset_id =
            pe_db_result_isnull(res, 0, R_CHANGESET) ? NULL : pe_db_result_get(res, 0, R_CHANGESET),
        .payload = payload,
        .body = body,
        .attempt = attempt,
        .conn = conn,
    };
    rc = pe_buf_puts(&done, already);
    bool all_ok = true;
    for (size_t i = 0; rc == 0 && i < svc->nnotifiers; i++) {
        const pe_changeset_notifier_t *nt = &svc->notifiers[i];
        if (listed(already, nt->name))
            continue;
        int fatal = 0;
        int nrc = call_notifier(conn, nt, &n, why, sizeof why, &fatal);
        if (fatal != 0) {
            rc = fatal;
            break;
        }
        if (nrc == 0) {
            rc = done.len ? pe_buf_puts(&done, ",") : 0;
            rc = rc ? rc : pe_buf_puts(&done, nt->name);
            continue;
        }
        all_ok = false;
        pe_log(PE_LOG_WARN, "notification_failed",
               "notifier %s could not deliver outbox row %s (attempt %d): %s", nt->name, oid,
               attempt, why);
        rc = errors.len ? pe_buf_puts(&errors, "; ") : 0;
        rc = rc ? rc : pe_buf_printf(&errors, "%s: %s", nt->name, why);
    }
    if (rc != 0)
        goto out;
    const char *p[] = {store, oid, done.data ? done.data : "", errors.data,
                       all_ok                             ? "delivered"
                       : attempt >= MAX_DELIVERY_ATTEMPTS ? "abandoned"
                                                          : "retry"};
    /* backoff: 30 s, 60 s, … capped at one hour (attempts is the count before this one) */
    rc = pe_db_exec(conn,
                    "UPDATE notification_outbox SET attempts = attempts + 1, last_error = $4,"
                    " delivered_to = coalesce(string_to_array(nullif($3, ''), ','), '{}'),"
                    " delivered_at = CASE WHEN $5 = 'delivered' THEN now() END,"
                    " abandoned_at = CASE WHEN $5 = 'abandoned' THEN now() END,"
                    " next_attempt_at = CASE WHEN $5 = 'retry' THEN now() + least(3600,"
                    "   30 * power(2, attempts)) * interval '1 second' ELSE next_attempt_at END"
                    " WHERE store_id = $1::uuid AND id = $2::bigint",
                    5, p, NULL);
    if (rc == 0 && !all_ok && attempt >= MAX_DELIVERY_ATTEMPTS)
        pe_log(PE_LOG_ERROR, "notification_abandoned",
               "outbox row %s of store %s abandoned after %d attempts: %s", oid, store, attempt,
               errors.data ? errors.data : "");
    *delivered = all_ok;
out:
    rc = rc == 0 ? pe_db_commit(conn) : rc;
    if (rc != 0)
        pe_db_rollback(conn);
    pe_buf_free(&done);
    pe_buf_free(&errors);
    cJSON_Delete(payload);
    pe_db_result_free(res);
    return rc;
}

int pe_changeset_dispatch(pe_changeset_service_t *svc, size_t *count, char *err, size_t errlen)
{
    pe_db_conn_t *conn = NULL;
    *count = 0;
    int rc = pe_db_acquire(svc->cfg.db, ACQUIRE_TIMEOUT_MS, &conn);
    int64_t until = pe_now_mono_us() + DISPATCH_BUDGET_US;
    while (rc == 0 && pe_now_mono_us() < until) {
        bool got, delivered;
        rc = dispatch_one(svc, conn, &got, &delivered);
        if (rc == 0 && delivered)
            (*count)++;
        if (!got)
            break;
    }
    if (rc != 0) {
        const char *why = conn ? pe_db_conn_error(conn) : "";
        snprintf(err, errlen, "%s", why && why[0] ? why : pe_strerror(rc));
    }
    pe_db_release(svc->cfg.db, conn);
    return rc;
}

/* ---- in-app notifications ----------------------------------------------------------------------
 */

static int refuse(pe_changeset_result_t *res, const char *message)
{
    pe_refuse(&res->refusal, PE_EINVAL, "invalid_request", "%s", message);
    return PE_EINVAL;
}

/* A positive decimal bigint (ids and cursors); false otherwise. */
static bool positive_id(const char *s)
{
    if (!s || !*s || strlen(s) > 18)
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return strtoll(s, NULL, 10) > 0;
}

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define NOTIFICATION_JSON                                                                          \
    "jsonb_build_object('id', n.id::text, 'kind', n.kind, 'changesetId', n.changeset_id,"          \
    " 'title', n.title, 'body', n.body, 'createdAt', " TS(                                         \
        "n.created_at") ","                                                                        \
                        " 'readAt', CASE WHEN n.read_at IS NULL THEN NULL ELSE " TS(               \
                            "n.read_at") " END)::text"

int pe_changeset_notifications_list(pe_changeset_service_t *svc, const char *store_id,
                                    const pe_notification_query_t *q, cJSON **out,
                                    pe_changeset_result_t *res)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *r = NULL, *cnt = NULL;
    cJSON *o = NULL;
    char lim[16];
    pe_refusal_clear(&res->refusal);
    res->violations = NULL;
    *out = NULL;
    unsigned limit = q->limit ? q->limit : 20;
    if (limit > 100)
        return refuse(res, "limit: must be an integer 1..100");
    if (q->cursor && !positive_id(q->cursor))
        return refuse(res, "cursor: must be the nextCursor of the previous page");
    snprintf(lim, sizeof lim, "%u", limit + 1);
    const char *params[] = {store_id, q->unread_only ? "t" : "f", q->cursor, lim};
    int rc = pe_db_acquire(svc->cfg.db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    rc = pe_db_exec(conn,
                    "SELECT " NOTIFICATION_JSON ", n.id FROM notifications n"
                    " WHERE n.store_id = $1::uuid AND (NOT $2::bool OR n.read_at IS NULL)"
                    " AND ($3::bigint IS NULL OR n.id < $3::bigint)"
                    " ORDER BY n.id DESC LIMIT $4::int",
                    4, params, &r);
    if (rc == 0)
        rc = pe_db_exec(conn,
                        "SELECT count(*) FROM notifications"
                        " WHERE store_id = $1::uuid AND read_at IS NULL",
                        1, params, &cnt);
    if (rc != 0)
        goto out;
    rc = PE_ENOMEM;
    o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "notifications") : NULL;
    if (!arr)
        goto out;
    size_t n = pe_db_result_rows(r);
    for (size_t i = 0; i < n && i < limit; i++)
        if ((rc = pe_changeset_json_row_add(arr, r, i)) != 0)
            goto out;
    rc = PE_ENOMEM;
    if (n > limit ? !cJSON_AddStringToObject(o, "nextCursor", pe_db_result_get(r, limit - 1, 1))
                  : !cJSON_AddNullToObject(o, "nextCursor"))
        goto out;
    if (!cJSON_AddNumberToObject(o, "unreadCount",
                                 (double)strtoll(pe_db_result_get(cnt, 0, 0), NULL, 10)))
        goto out;
    *out = o;
    o = NULL;
    rc = 0;
out:
    cJSON_Delete(o);
    pe_db_result_free(r);
    pe_db_result_free(cnt);
    pe_db_release(svc->cfg.db, conn);
    return rc;
}

int pe_changeset_notification_read(pe_changeset_service_t *svc, const char *store_id,
                                   const char *id, cJSON **out, pe_changeset_result_t *res)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *r = NULL;
    pe_refusal_clear(&res->refusal);
    res->violations = NULL;
    *out = NULL;
    if (!positive_id(id))
        return refuse(res, "notificationId: must be a positive integer");
    const char *params[] = {store_id, id};
    int rc = pe_db_acquire(svc->cfg.db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc == 0)
        rc = pe_db_exec(conn,
                        "UPDATE notifications n SET read_at = coalesce(n.read_at, now())"
                        " WHERE n.store_id = $1::uuid AND n.id = $2::bigint"
                        " RETURNING " NOTIFICATION_JSON,
                        2, params, &r);
    if (rc == 0 && pe_db_result_rows(r) == 0)
        rc = PE_ENOTFOUND;
    if (rc == 0)
        rc = pe_db_result_json(r, 0, 0, out);
    pe_db_result_free(r);
    pe_db_release(svc->cfg.db, conn);
    return rc;
}
