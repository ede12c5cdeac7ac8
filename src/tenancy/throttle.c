/*
 * throttle.c — failed sign-ins per account and per remote address (table login_throttle,
 * migration 0012), so that guessing passwords slows down and then stops, on every instance.
 *
 *   failures of an account   next attempt
 *   0 .. DELAY_FROM-1        taken
 *   DELAY_FROM .. LOCK_AT-1  refused (429) until last failure + DELAY_S * 2^(failures-DELAY_FROM)
 *   LOCK_AT                  refused (429) for LOCK_S, the right password included
 *   (an address only locks, at PE_LOGIN_ADDRESS_LOCK_AT)
 *
 * Invariants:
 *  1. Every statement is parameterised; keys are the lower-cased email (known or not, so an
 *     unknown email is throttled like a known one) and the client's address (the TCP peer, or
 *     behind PE_TRUSTED_PROXIES the client X-Forwarded-For names: pe_http_remote_addr) in
 *     canonical text; an IPv6 address counts as its /64, the block one subscriber or host is
 *     given, so stepping through the addresses of one's own /64 does not reset the count.
 *  2. A failure after the window (PE_LOGIN_WINDOW_S since its first failure) starts a new
 *     window at 1, so old failures stop counting.
 *  3. The refusal is decided by locked_until alone, judged by the database clock; a refused
 *     attempt is not a failure and extends nothing.
 *  4. Success deletes the account row only: an address keeps its count, so one valid account
 *     cannot be used to wash away guesses at others.
 *  5. A row whose window has passed and whose lock (if any) has expired decides nothing
 *     (invariants 2 and 3): pe_tenancy_login_purge deletes such rows, so a spray of random
 *     emails or addresses leaves at most a window's worth plus the purge interval behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenancy/tenancy_internal.h"

/* The longest key kept (login_throttle.key is at most 320 bytes). */
#define KEY_MAX 320

/* The lower-cased email when it is plain printable ASCII of a sane length, else "sha256:" and
 * its hash: whatever bytes a client sends, the key is valid text for PostgreSQL. */
static void account_key(const char *email, char out[KEY_MAX + 1])
{
    size_t n = 0;
    bool plain = true;
    for (; email[n] && n <= TENANCY_EMAIL_MAX; n++) {
        unsigned char c = (unsigned char)email[n];
        plain = plain && c > 0x20 && c < 0x7f;
        /* ASCII folding only, as tenancy_email_normalise does */
        out[n] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    out[n] = '\0';
    if (n == 0 || n > TENANCY_EMAIL_MAX || !plain) {
        char hash[TENANCY_HASH_HEX_LEN];
        if (n > TENANCY_EMAIL_MAX) /* an invalid email: its raw bytes are the account */
            tenancy_hash_hex(email, strnlen(email, 64 * 1024), hash);
        else
            tenancy_hash_hex(out, n, hash);
        snprintf(out, KEY_MAX + 1, "sha256:%s", hash);
    }
}

static void address_key(const char *address, char out[KEY_MAX + 1])
{
    pe_ip_t ip;
    if (!address || !*address) {
        snprintf(out, KEY_MAX + 1, "unknown");
        return;
    }
    if (pe_ip_parse(address, strnlen(address, KEY_MAX), &ip) != 0) {
        /* not an address ("unknown"): pe_http_remote_addr gives short printable ASCII */
        snprintf(out, KEY_MAX + 1, "%.64s", address);
        return;
    }
    if (pe_ip_is_v4(&ip)) {
        pe_ip_format(&ip, out);
        return;
    }
    memset(ip.b + 8, 0, 8); /* the /64 (invariant 1) */
    char text[PE_IP_TEXT_LEN];
    pe_ip_format(&ip, text);
    snprintf(out, KEY_MAX + 1, "%s/64", text);
}

int pe_tenancy_login_check(pe_db_pool_t *pool, const char *email, const char *address,
                           pe_login_throttle_t *out)
{
    /* the later of the two refusals wins: it is the one the caller must wait for */
    static const char sql[] =
        "SELECT kind, ceil(extract(epoch FROM locked_until - now()))::int, failures "
        "FROM login_throttle "
        "WHERE ((kind = 'account' AND key = $1) OR (kind = 'address' AND key = $2)) "
        "AND locked_until > now() ORDER BY locked_until DESC LIMIT 1";
    pe_db_result_t *res = NULL;
    char account[KEY_MAX + 1], addr[KEY_MAX + 1];
    memset(out, 0, sizeof *out);
    account_key(email, account);
    address_key(address, addr);
    const char *params[] = {account, addr};
    int rc = tenancy_exec(pool, sql, 2, params, &res, NULL);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) == 1) {
        out->refused = true;
        out->by_address = strcmp(pe_db_result_get(res, 0, 0), "address") == 0;
        out->retry_after_s = atoi(pe_db_result_get(res, 0, 1));
        if (out->retry_after_s < 1)
            out->retry_after_s = 1;
        int failures = atoi(pe_db_result_get(res, 0, 2));
        out->locked =
            failures >= (out->by_address ? PE_LOGIN_ADDRESS_LOCK_AT : PE_LOGIN_ACCOUNT_LOCK_AT);
    }
    rc = 0;
out:
    pe_db_result_free(res);
    return rc;
}

/* Counts one failure for (kind, key) and sets its lock from the new count. */
static int count_failure(pe_db_pool_t *pool, const char *kind, const char *key, int delay_from,
                         int lock_at)
{
    static const char sql[] =
        "INSERT INTO login_throttle AS t (kind, key, failures, window_started_at, last_failed_at) "
        "VALUES ($1, $2, 1, now(), now()) "
        "ON CONFLICT (kind, key) DO UPDATE SET "
        "failures = CASE WHEN t.window_started_at <= now() - $3::int * interval '1 second' "
        "THEN 1 ELSE t.failures + 1 END, "
        "window_started_at = CASE WHEN t.window_started_at <= now() - $3::int * interval "
        "'1 second' THEN now() ELSE t.window_started_at END, "
        "last_failed_at = now()";
    /* A second statement on the row just written: its count is now final for this failure,
     * and a concurrent failure only ever sees a higher one. */
    static const char lock_sql[] =
        "UPDATE login_throttle SET locked_until = CASE "
        "WHEN failures >= $3::int THEN now() + $4::int * interval '1 second' "
        "WHEN $5::int > 0 AND failures >= $5::int THEN "
        "now() + ($6::int * power(2, failures - $5::int)) * interval '1 second' "
        "ELSE NULL END "
        "WHERE kind = $1 AND key = $2";
    char window[16], lock_at_s[16], lock_s[16], delay_from_s[16], delay_s[16];
    snprintf(window, sizeof window, "%d", PE_LOGIN_WINDOW_S);
    snprintf(lock_at_s, sizeof lock_at_s, "%d", lock_at);
    snprintf(lock_s, sizeof lock_s, "%d", PE_LOGIN_LOCK_S);
    snprintf(delay_from_s, sizeof delay_from_s, "%d", delay_from);
    snprintf(delay_s, sizeof delay_s, "%d", PE_LOGIN_DELAY_S);
    const char *params[] = {kind, key, window};
    int rc = tenancy_exec(pool, sql, 3, params, NULL, NULL);
    if (rc != 0)
        goto out;
    const char *lock_params[] = {kind, key, lock_at_s, lock_s, delay_from_s, delay_s};
    rc = tenancy_exec(pool, lock_sql, 6, lock_params, NULL, NULL);
out:
    return rc;
}

int pe_tenancy_login_failed(pe_db_pool_t *pool, const char *email, const char *address)
{
    char account[KEY_MAX + 1], addr[KEY_MAX + 1];
    account_key(email, account);
    address_key(address, addr);
    int rc = count_failure(pool, "account", account, PE_LOGIN_ACCOUNT_DELAY_FROM,
                           PE_LOGIN_ACCOUNT_LOCK_AT);
    if (rc != 0)
        goto out;
    rc = count_failure(pool, "address", addr, 0, PE_LOGIN_ADDRESS_LOCK_AT);
out:
    return rc;
}

int pe_tenancy_login_succeeded(pe_db_pool_t *pool, const char *email)
{
    static const char sql[] = "DELETE FROM login_throttle WHERE kind = 'account' AND key = $1";
    char account[KEY_MAX + 1];
    account_key(email, account);
    const char *params[] = {account};
    return tenancy_exec(pool, sql, 1, params, NULL, NULL);
}

int pe_tenancy_login_purge(pe_db_pool_t *pool, uint64_t *deleted)
{
    /* One statement, one scan: the table has no index but its key, and batches would rescan
     * it. A row refreshed by a concurrent failure is re-checked by PostgreSQL and kept. */
    static const char sql[] = "DELETE FROM login_throttle "
                              "WHERE window_started_at <= now() - $1::int * interval '1 second' "
                              "AND (locked_until IS NULL OR locked_until <= now())";
    pe_db_result_t *res = NULL;
    char window[16];
    snprintf(window, sizeof window, "%d", PE_LOGIN_WINDOW_S);
    const char *params[] = {window};
    if (deleted)
        *deleted = 0;
    int rc = tenancy_exec(pool, sql, 1, params, &res, NULL);
    if (rc == 0 && deleted)
        *deleted = pe_db_result_affected(res);
    pe_db_result_free(res);
    return rc;
}
