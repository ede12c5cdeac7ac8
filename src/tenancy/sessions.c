/*
 * sessions.c — dashboard sign-in sessions behind the session cookie.
 *
 * Lifecycle of a row in `sessions`:
 *
 *     pe_tenancy_session_create
 *              │
 *              ▼
 *          ┌────────┐  pe_tenancy_session_authenticate (before both expiries):
 *          │ ACTIVE │◀─┐ last_seen_at = now,
 *          └────────┘──┘ idle_expires_at = min(now + PE_SESSION_IDLE_S, expires_at)
 *            │   │   │
 *            │   │   └── now ≥ idle_expires_at ──▶ IDLE-EXPIRED  ─┐
 *            │   └────── now ≥ expires_at ───────▶ EXPIRED       ─┼─▶ authenticate: PE_EUNAUTH
 *            └── pe_tenancy_session_revoke ──────▶ REVOKED       ─┘
 *
 * The expired and revoked states are terminal; nothing moves a session back to ACTIVE.
 *
 * Invariants:
 *  1. Only the SHA-256 of the token is stored; the token exists in the cookie alone.
 *  2. Use extends a session up to, never past, its absolute lifetime: a refresh writes
 *     min(now + idle, expires_at). Both expiries are still tested on every use, so a session
 *     whose expires_at was shortened by hand ends then, whatever idle_expires_at says.
 *  3. Authenticating is one statement: the expiry test and the refresh happen in the same
 *     UPDATE, so no interleaving can refresh a session that had already expired.
 *  4. Expiry is judged by the database clock (now()), the same clock that wrote the expiries.
 *  5. The anti-CSRF token is a MAC keyed by the session token: never stored, never equal to
 *     anything stored, and the session token cannot be recovered from it.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "tenancy/tenancy_internal.h"

/* Writes a lifetime in seconds as a decimal parameter (the macros are expressions). */
static void seconds_param(char out[16], int seconds)
{
    snprintf(out, 16, "%d", seconds);
}

int pe_tenancy_session_create(pe_db_pool_t *pool, const char *user_id, char token[PE_TOKEN_LEN])
{
    static const char sql[] =
        "INSERT INTO sessions (token_hash, user_id, idle_expires_at, expires_at) "
        "VALUES ($1, $2, now() + $3::int * interval '1 second', "
        "now() + $4::int * interval '1 second')";
    char hash[TENANCY_HASH_HEX_LEN];
    char sqlstate[6];
    char idle[16], absolute[16];
    int rc = PE_ENOTFOUND;
    token[0] = '\0';
    if (!tenancy_uuid_valid(user_id))
        goto out;
    rc = tenancy_token_generate(token, hash);
    if (rc != 0)
        goto out;
    seconds_param(idle, PE_SESSION_IDLE_S);
    seconds_param(absolute, PE_SESSION_ABSOLUTE_S);
    const char *params[] = {hash, user_id, idle, absolute};
    rc = tenancy_exec(pool, sql, 4, params, NULL, sqlstate);
    if (rc != 0 && strcmp(sqlstate, TENANCY_SQLSTATE_FK) == 0)
        rc = PE_ENOTFOUND;
out:
    /* A token whose row was not written must not reach a cookie. */
    if (rc != 0)
        token[0] = '\0';
    return rc;
}

int pe_tenancy_session_authenticate(pe_db_pool_t *pool, const char *token, char user_id[PE_ID_LEN])
{
    static const char sql[] =
        "UPDATE sessions SET last_seen_at = now(), "
        "idle_expires_at = least(now() + $2::int * interval '1 second', expires_at) "
        "WHERE token_hash = $1 AND revoked_at IS NULL "
        "AND idle_expires_at > now() AND expires_at > now() "
        "RETURNING user_id";
    pe_db_result_t *res = NULL;
    char hash[TENANCY_HASH_HEX_LEN];
    char idle[16];
    int rc = PE_EUNAUTH;
    user_id[0] = '\0';
    if (!tenancy_token_well_formed(token))
        goto out;
    tenancy_hash_hex(token, TENANCY_SECRET_B64_LEN, hash);
    seconds_param(idle, PE_SESSION_IDLE_S);
    const char *params[] = {hash, idle};
    rc = tenancy_exec(pool, sql, 2, params, &res, NULL);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) != 1) {
        rc = PE_EUNAUTH;
        goto out;
    }
    snprintf(user_id, PE_ID_LEN, "%s", pe_db_result_get(res, 0, 0));
    rc = 0;
out:
    pe_db_result_free(res);
    return rc;
}

int pe_tenancy_session_revoke(pe_db_pool_t *pool, const char *token)
{
    /* coalesce keeps the first revocation time when a session is signed out twice. */
    static const char sql[] = "UPDATE sessions SET revoked_at = coalesce(revoked_at, now()) "
                              "WHERE token_hash = $1";
    char hash[TENANCY_HASH_HEX_LEN];
    int rc = 0;
    /* A token that cannot exist has no session to end. */
    if (!tenancy_token_well_formed(token))
        goto out;
    tenancy_hash_hex(token, TENANCY_SECRET_B64_LEN, hash);
    const char *params[] = {hash};
    rc = tenancy_exec(pool, sql, 1, params, NULL, NULL);
out:
    return rc;
}

int pe_tenancy_session_purge(pe_db_pool_t *pool, uint64_t *deleted)
{
    /* A session past either expiry or signed out can never authenticate again (the checks in
     * pe_tenancy_session_authenticate): its row only keeps a token hash around. */
    static const char sql[] = "DELETE FROM sessions WHERE revoked_at IS NOT NULL "
                              "OR idle_expires_at <= now() OR expires_at <= now()";
    pe_db_result_t *res = NULL;
    if (deleted)
        *deleted = 0;
    int rc = tenancy_exec(pool, sql, 0, NULL, &res, NULL);
    if (rc == 0 && deleted)
        *deleted = pe_db_result_affected(res);
    pe_db_result_free(res);
    return rc;
}

/* Domain separation: the MAC of this label, and of nothing else, is the anti-CSRF token. */
static const char CSRF_LABEL[] = "profit-engine csrf v1";

int pe_tenancy_session_csrf(const char *token, char out[PE_CSRF_TOKEN_LEN])
{
    unsigned char mac[32];
    int rc = PE_EUNAUTH;
    out[0] = '\0';
    if (!tenancy_token_well_formed(token))
        goto out;
    if (crypto_generichash(mac, sizeof mac, (const unsigned char *)CSRF_LABEL,
                           sizeof CSRF_LABEL - 1, (const unsigned char *)token,
                           TENANCY_SECRET_B64_LEN) != 0) {
        rc = PE_EINTERNAL;
        goto out;
    }
    sodium_bin2base64(out, PE_CSRF_TOKEN_LEN, mac, sizeof mac,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    rc = 0;
out:
    return rc;
}

bool pe_tenancy_session_csrf_check(const char *token, const char *presented)
{
    char want[PE_CSRF_TOKEN_LEN];
    if (!presented || pe_tenancy_session_csrf(token, want) != 0)
        return false;
    size_t n = strlen(want);
    /* the length of a well-formed token is public (43); only its bytes are compared in
     * constant time */
    if (strnlen(presented, n + 1) != n)
        return false;
    return sodium_memcmp(want, presented, n) == 0;
}
