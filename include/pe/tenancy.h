/*
 * pe/tenancy.h — stores, their API keys, merchant users, store memberships and sign-in
 * sessions: who is asking, and which store's data they may touch.
 *
 * Invariants:
 *  1. Keys and session tokens are never stored: only their SHA-256 (hex). A key is shown once,
 *     when it is created.
 *  2. Passwords are stored as argon2id hashes (libsodium crypto_pwhash_str, interactive limits).
 *  3. Every query that reads or writes a store's rows filters by store_id; authentication
 *     resolves a credential to exactly one store (keys) or one user (sessions), and
 *     pe_tenancy_member_check decides whether a user may act on a store.
 *  4. All functions are thread-safe (they only use pooled connections). pe_crypto_init() must
 *     have run first (libsodium).
 *  5. Malformed ids and credentials are refused without a query, with the same answer a
 *     well-formed unknown one gets. Output buffers are left empty ("") on failure.
 */
#ifndef PE_TENANCY_H
#define PE_TENANCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pe/db.h"

#define PE_ID_LEN    37 /* uuid text + NUL */
#define PE_KEY_LEN   64 /* "pk_" / "sk_" + base64url(32 bytes) + NUL fits */
#define PE_TOKEN_LEN 64 /* session token: base64url(32 bytes) + NUL */

typedef enum { PE_KEY_PUBLISHABLE = 1, PE_KEY_SECRET = 2 } pe_key_kind_t;

typedef struct {
    char id[PE_ID_LEN];
    char name[201];
    char currency[4];  /* ISO 4217, upper case */
    char timezone[65]; /* IANA name */
} pe_store_t;

/* Creates a store with one publishable and one secret key. name: 1..200 bytes of UTF-8;
 * timezone: an IANA name PostgreSQL knows (default "UTC" when NULL); currency: three upper-case
 * letters (default "USD" when NULL). Fills *store and the two keys (shown only now).
 * Returns 0, PE_EINVAL (message in err naming the field) or a database error. */
int pe_tenancy_store_create(pe_db_pool_t *pool, const char *name, const char *timezone,
                            const char *currency, pe_store_t *store, char pk[PE_KEY_LEN],
                            char sk[PE_KEY_LEN], char *err, size_t errlen);
/* Reads one store. Returns 0 or PE_ENOTFOUND (also for a malformed id). */
int pe_tenancy_store_get(pe_db_pool_t *pool, const char *store_id, pe_store_t *out);

/* The most keys (of both kinds together) a store may have that are not revoked: enough for a
 * key per storefront and server plus rotation overlap, few enough that a leaked session or
 * secret key cannot mint keys without bound. */
#define PE_KEYS_MAX_LIVE  20
#define PE_KEY_PREFIX_LEN 11 /* the 10 characters kept in clear + NUL */
#define PE_TIMESTAMP_LEN  32 /* "2026-11-24T10:00:00.000Z" + NUL, with room */

/* What may be shown of a key after its creation: never the key, never its hash. */
typedef struct {
    char id[PE_ID_LEN];
    pe_key_kind_t kind;
    char prefix[PE_KEY_PREFIX_LEN];    /* "pk_AbCdEfG": tells keys apart, reveals nothing */
    char created_at[PE_TIMESTAMP_LEN]; /* RFC 3339, UTC, milliseconds */
    char revoked_at[PE_TIMESTAMP_LEN]; /* "" while the key works */
} pe_key_info_t;

/* The stored name of a kind, "publishable" or "secret" (NULL for anything else), and back:
 * pe_tenancy_key_kind_from_name returns 0 or PE_EINVAL (name may be NULL). Thread-safe. */
const char *pe_tenancy_key_kind_name(pe_key_kind_t kind);
int pe_tenancy_key_kind_from_name(const char *name, pe_key_kind_t *out);

/* Issues an extra key of `kind` for a store (rotation). The store is locked for the count, so
 * concurrent calls never take it past PE_KEYS_MAX_LIVE live keys. Returns 0 and the key and its
 * id, PE_ENOTFOUND (no such store, malformed id included), PE_EINVAL (unknown kind),
 * PE_ECONFLICT (the store already has PE_KEYS_MAX_LIVE live keys) or a database error. */
int pe_tenancy_key_create(pe_db_pool_t *pool, const char *store_id, pe_key_kind_t kind,
                          char key[PE_KEY_LEN], char key_id[PE_ID_LEN]);
/* pe_tenancy_key_create, handing out the new key's row (id, kind, prefix, creation time) in
 * *info instead of only its id. Same returns; *info zeroed on failure. Thread-safe. */
int pe_tenancy_key_create_info(pe_db_pool_t *pool, const char *store_id, pe_key_kind_t kind,
                               char key[PE_KEY_LEN], pe_key_info_t *info);
/* Revokes a key of that store (by key id). Revoking a revoked key keeps its first revocation
 * time and returns 0. Returns 0 or PE_ENOTFOUND. Other instances' caches drop the key when
 * the revocation commits (NOTIFY); this process's cache only then too — prefer
 * pe_tenancy_key_revoke_cached inside a server. */
int pe_tenancy_key_revoke(pe_db_pool_t *pool, const char *store_id, const char *key_id);
/* One key of a store. Returns 0 and *out, or PE_ENOTFOUND (another store's key, a malformed id)
 * or a database error. Thread-safe. */
int pe_tenancy_key_get(pe_db_pool_t *pool, const char *store_id, const char *key_id,
                       pe_key_info_t *out);
/* A store's keys as a cJSON array of pe_tenancy_key_json objects: the live ones first, newest
 * first, then the revoked ones, most recently revoked first; at most PE_KEYS_LIST_MAX in all
 * (every live key always fits). The caller frees it with cJSON_Delete. A malformed or unknown
 * store id has no keys (an empty array). Returns 0, PE_ENOMEM or a database error. */
#define PE_KEYS_LIST_MAX 100
int pe_tenancy_key_list(pe_db_pool_t *pool, const char *store_id, cJSON **out);
/* The number of the store's keys that are not revoked (0 for a malformed or unknown store).
 * Returns 0 and *out, or a database error. Thread-safe. */
int pe_tenancy_key_count_live(pe_db_pool_t *pool, const char *store_id, int *out);
/* {"id","kind","prefix","createdAt","revokedAt"} (revokedAt null while live) of info, or NULL
 * on ENOMEM; the caller owns it. */
cJSON *pe_tenancy_key_json(const pe_key_info_t *info);
/* Resolves a presented key to its store and kind. Returns 0, or PE_EUNAUTH for a malformed,
 * unknown or revoked key, or a database error (PE_EUNAVAIL…). */
int pe_tenancy_key_authenticate(pe_db_pool_t *pool, const char *key, char store_id[PE_ID_LEN],
                                pe_key_kind_t *kind);

/* An in-process cache of publishable keys, the one credential on the hot path (every
 * storefront event batch, every flag evaluation). Kept fresh by LISTEN pe_api_keys (migration
 * 0003): a revoked key is evicted when the revocation commits, on every instance; while the
 * listener is not connected the cache is bypassed. Secret keys are never cached. */
typedef struct pe_key_cache pe_key_cache_t;

/* Starts the cache and its listener. Returns NULL on ENOMEM / thread failure. */
pe_key_cache_t *pe_tenancy_key_cache_new(pe_db_pool_t *pool);
/* Stops the listener and frees. Accepts NULL. */
void pe_tenancy_key_cache_free(pe_key_cache_t *cache);
/* pe_tenancy_key_authenticate through the cache (cache may be NULL: straight to the database).
 * Thread-safe. */
int pe_tenancy_key_authenticate_cached(pe_key_cache_t *cache, pe_db_pool_t *pool, const char *key,
                                       char store_id[PE_ID_LEN], pe_key_kind_t *kind);

typedef struct {
    uint64_t hits, misses, evictions;
    bool live; /* the listener is connected: the cache is in use */
} pe_key_cache_stats_t;
void pe_tenancy_key_cache_stats(pe_key_cache_t *cache, pe_key_cache_stats_t *out);
/* pe_tenancy_key_revoke, then drops the key from this process's cache before returning (cache
 * may be NULL), so the next request with it is refused here without waiting for the NOTIFY that
 * tells the other instances. Fills *out (may be NULL) with the key as revoked. Returns 0,
 * PE_ENOTFOUND or a database error. Thread-safe. */
int pe_tenancy_key_revoke_cached(pe_key_cache_t *cache, pe_db_pool_t *pool, const char *store_id,
                                 const char *key_id, pe_key_info_t *out);

/* Creates a merchant user (email normalised to lower case, 3..254 bytes, one '@'; password
 * 8..1024 bytes) and makes it a member of store_id. An existing user with that email is added to
 * the store only when password matches. Returns 0 and the user id, PE_EINVAL (err), PE_ECONFLICT
 * (email exists, password differs) or PE_ENOTFOUND (no such store). */
int pe_tenancy_user_create(pe_db_pool_t *pool, const char *email, const char *password,
                           const char *store_id, char user_id[PE_ID_LEN], char *err, size_t errlen);
/* Checks email + password. Returns 0 and the user id, or PE_EUNAUTH (same answer, and the same
 * argon2id cost, whether the email is unknown or the password wrong). */
int pe_tenancy_user_verify(pe_db_pool_t *pool, const char *email, const char *password,
                           char user_id[PE_ID_LEN]);
/* Returns 0 when user_id is a member of store_id, PE_EFORBIDDEN otherwise (malformed ids
 * included), or a database error. */
int pe_tenancy_member_check(pe_db_pool_t *pool, const char *user_id, const char *store_id);
/* The stores a user belongs to, as a cJSON array of {"id","name","currency","timezone"}, oldest
 * membership first (caller frees with cJSON_Delete; an empty array when the user belongs to no
 * store or does not exist). Returns 0, PE_ENOMEM or a database error. */
int pe_tenancy_user_stores(pe_db_pool_t *pool, const char *user_id, cJSON **out);

/* Session lifetimes (seconds). */
#define PE_SESSION_IDLE_S     (2 * 3600)
#define PE_SESSION_ABSOLUTE_S (7 * 24 * 3600)

/* Opens a sign-in session for user_id; the token (shown only now) goes into the cookie.
 * Returns 0, PE_ENOTFOUND (no such user) or a database error. */
int pe_tenancy_session_create(pe_db_pool_t *pool, const char *user_id, char token[PE_TOKEN_LEN]);
/* Resolves a session token to its user, refreshing its idle expiry. Returns 0 or PE_EUNAUTH
 * (unknown, revoked, idle- or absolutely expired). */
int pe_tenancy_session_authenticate(pe_db_pool_t *pool, const char *token, char user_id[PE_ID_LEN]);
/* Ends a session. Returns 0 whether or not it existed. */
int pe_tenancy_session_revoke(pe_db_pool_t *pool, const char *token);
/* Deletes the sessions that can never authenticate again (signed out, idle- or absolutely
 * expired), so sign-ins do not grow the table without bound. `serve` runs it every
 * PE_SESSION_PURGE_INTERVAL_S (job session_purge); safe on several instances at once. Returns 0
 * and the number of rows deleted in *deleted (may be NULL), or a database error. */
#define PE_SESSION_PURGE_INTERVAL_S 3600
int pe_tenancy_session_purge(pe_db_pool_t *pool, uint64_t *deleted);

/* The anti-CSRF token of a session: base64url of a BLAKE2b MAC, keyed by the session token, of
 * a fixed label. Only the holder of the cookie (or a page the server answered to it) can know
 * it, it reveals nothing of the session token, and every instance derives the same one without
 * storing it. Returns 0, or PE_EUNAUTH for a malformed session token (out left ""). Thread-safe. */
#define PE_CSRF_TOKEN_LEN 44 /* base64url(32 bytes) + NUL */
int pe_tenancy_session_csrf(const char *token, char out[PE_CSRF_TOKEN_LEN]);
/* True when presented (may be NULL) is the anti-CSRF token of the session token; the
 * comparison takes the same time wherever the two differ. Thread-safe. */
bool pe_tenancy_session_csrf_check(const char *token, const char *presented);

/* ---- sign-in throttling (throttle.c) ---------------------------------------------------------
 * Failures are counted per account (the lower-case email, known or not) and per client address
 * (the caller passes pe_http_remote_addr: the peer, or behind PE_TRUSTED_PROXIES the client of
 * X-Forwarded-For; an IPv6 address counts as its /64) in a window that starts at the first
 * failure and lasts PE_LOGIN_WINDOW_S. From
 * PE_LOGIN_ACCOUNT_DELAY_FROM failures of an account each further attempt must wait a growing
 * delay (PE_LOGIN_DELAY_S doubled per failure); at PE_LOGIN_ACCOUNT_LOCK_AT the account, and at
 * PE_LOGIN_ADDRESS_LOCK_AT the address, is locked for PE_LOGIN_LOCK_S. State is in PostgreSQL
 * so every instance agrees. */
#define PE_LOGIN_WINDOW_S           (15 * 60)
#define PE_LOGIN_LOCK_S             (15 * 60)
#define PE_LOGIN_DELAY_S            5
#define PE_LOGIN_ACCOUNT_DELAY_FROM 3
#define PE_LOGIN_ACCOUNT_LOCK_AT    5
#define PE_LOGIN_ADDRESS_LOCK_AT    20

typedef struct {
    bool refused;      /* a sign-in now would be refused without checking the password */
    bool locked;       /* true: locked out; false: only asked to wait (the growing delay) */
    bool by_address;   /* the address, not the account, is what is refused */
    int retry_after_s; /* seconds until an attempt is taken again (>= 1 when refused) */
} pe_login_throttle_t;

/* Whether a sign-in for email from address may be tried now. Returns 0 and *out, or a
 * database error. Thread-safe. */
int pe_tenancy_login_check(pe_db_pool_t *pool, const char *email, const char *address,
                           pe_login_throttle_t *out);
/* Counts a failed sign-in against the account and the address, and sets their delay or lock.
 * Returns 0 or a database error. Thread-safe. */
int pe_tenancy_login_failed(pe_db_pool_t *pool, const char *email, const char *address);
/* Clears the account's failures after a successful sign-in (the address keeps its count).
 * Returns 0 or a database error. Thread-safe. */
int pe_tenancy_login_succeeded(pe_db_pool_t *pool, const char *email);
/* Deletes the throttle rows that no longer decide anything — window passed, no lock in force —
 * so failures sprayed over random emails and addresses cannot grow the table without bound.
 * `serve` runs it every PE_LOGIN_PURGE_INTERVAL_S; safe on several instances at once. Returns 0
 * and the number of rows deleted in *deleted (may be NULL), or a database error. Thread-safe. */
#define PE_LOGIN_PURGE_INTERVAL_S PE_LOGIN_WINDOW_S
int pe_tenancy_login_purge(pe_db_pool_t *pool, uint64_t *deleted);

/* ---- a store's business settings (settings.c) -------------------------------------------- */

#define PE_TENANCY_MAX_SUBSCRIPTION 1e9 /* in the store's currency a month */

typedef struct {
    bool has_subscription_cost;         /* the body names it */
    double subscription_cost_per_month; /* NaN: null (not set); else 0 … 1e9, to the cent */
} pe_store_settings_t;

/* The body of PUT …/settings: {"subscriptionCostPerMonth": number | null} and nothing else.
 * Returns 0 with *out, or PE_EINVAL with *err (invalid_type, unknown_field, duplicate,
 * missing_field, out_of_range, invalid_format — a message naming the field). Pure. */
int pe_tenancy_settings_parse(const cJSON *body, pe_store_settings_t *out, pe_refusal_t *err);
/* {"currency","subscriptionCostPerMonth" (null when not set),"updatedAt"} of the store.
 * Returns 0 and *out (caller deletes), PE_ENOTFOUND or a database error. Thread-safe. */
int pe_tenancy_settings_get(pe_db_pool_t *pool, const char *store_id, cJSON **out);
/* Stores s (at now_us) and answers as pe_tenancy_settings_get, after COMMIT. Thread-safe. */
int pe_tenancy_settings_put(pe_db_pool_t *pool, const char *store_id, const pe_store_settings_t *s,
                            int64_t now_us, cJSON **out);

#endif /* PE_TENANCY_H */
