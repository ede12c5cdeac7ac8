/*
 * tenancy_internal.h — what the files of src/tenancy/ share and nobody else sees: credential
 * material (keys, session tokens, their hashes), input validators, password hashing and a
 * one-statement helper over the pool.
 *
 * Invariants:
 *  1. Module-internal names start with `tenancy_` (no `pe_`): they are not API and may change.
 *  2. Every validator here is pure (no I/O) and decides on bounded input: it never reads past
 *     the limit it enforces, so a 10 MB string costs what a 100-byte one does.
 *  3. A secret (key, token, password) is only ever hashed, compared by hash, or handed back to
 *     the caller that asked for it; it is never logged and never sent to the database.
 */
#ifndef PE_TENANCY_INTERNAL_H
#define PE_TENANCY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "pe/tenancy.h"

/* How long a tenancy call waits for a pooled connection before giving up (PE_ETIMEOUT). */
#define TENANCY_DB_TIMEOUT_MS 5000

/* Random bytes behind every key and session token: 256 bits, beyond guessing. */
#define TENANCY_SECRET_BYTES 32
/* base64url without padding of TENANCY_SECRET_BYTES: ceil(32 * 4 / 3). */
#define TENANCY_SECRET_B64_LEN 43
/* "pk_" / "sk_". */
#define TENANCY_KEY_TAG_LEN 3
#define TENANCY_KEY_STRLEN  (TENANCY_KEY_TAG_LEN + TENANCY_SECRET_B64_LEN)
/* Characters of a key kept in clear (api_keys.key_prefix) so a merchant can tell keys apart. */
#define TENANCY_KEY_PREFIX_LEN 10
/* SHA-256 as lower-case hex + NUL. */
#define TENANCY_HASH_HEX_LEN 65
#define TENANCY_UUID_STRLEN  36
#define TENANCY_NAME_MAX     200
#define TENANCY_TIMEZONE_MAX 64
#define TENANCY_EMAIL_MIN    3
#define TENANCY_EMAIL_MAX    254
#define TENANCY_PASSWORD_MIN 8
#define TENANCY_PASSWORD_MAX 1024

/* SQLSTATE foreign_key_violation: the store or user a row points at does not exist. */
#define TENANCY_SQLSTATE_FK "23503"

/* ---- credentials (secret.c) ------------------------------------------------------------------ */

/* The stored name of a kind ("publishable" / "secret"), or NULL for an unknown kind. */
const char *tenancy_key_kind_name(pe_key_kind_t kind);
/* Parses a stored kind name. Returns 0 or PE_EINTERNAL (the schema forbids anything else). */
int tenancy_key_kind_parse(const char *name, pe_key_kind_t *out);

/* Writes the lower-case hex SHA-256 of n bytes of s into out. Thread-safe. */
void tenancy_hash_hex(const char *s, size_t n, char out[TENANCY_HASH_HEX_LEN]);
/* Resolves a key by its hash (the key's tag said `tagged`): 0, PE_EUNAUTH or a database error. */
int tenancy_key_lookup(pe_db_pool_t *pool, const char *hash, pe_key_kind_t tagged,
                       char store_id[PE_ID_LEN], pe_key_kind_t *kind);

/* A fresh key of `kind`: the key itself (for the caller, once), its hash and its display
 * prefix (for the database). Returns 0 or PE_EINVAL (unknown kind). Thread-safe. */
int tenancy_key_generate(pe_key_kind_t kind, char key[PE_KEY_LEN], char hash[TENANCY_HASH_HEX_LEN],
                         char prefix[TENANCY_KEY_PREFIX_LEN + 1]);
/* True when key has the exact shape tenancy_key_generate produces; sets *kind from its tag.
 * Reads at most TENANCY_KEY_STRLEN + 1 bytes of key. */
bool tenancy_key_well_formed(const char *key, pe_key_kind_t *kind);

/* A fresh session token (for the cookie) and its hash (for the database). Returns 0 or
 * PE_EINTERNAL. Thread-safe. */
int tenancy_token_generate(char token[PE_TOKEN_LEN], char hash[TENANCY_HASH_HEX_LEN]);
/* True when token has the exact shape tenancy_token_generate produces. Reads at most
 * TENANCY_SECRET_B64_LEN + 1 bytes of token. */
bool tenancy_token_well_formed(const char *token);

/* ---- keys (keys.c) --------------------------------------------------------------------------- */

/* Issues a key of `kind` for store_id on conn (inside the caller's transaction, if any): fills
 * key (shown once) and key_id. Returns 0, PE_ENOTFOUND (no such store), PE_EINVAL (unknown
 * kind) or a database error. */
int tenancy_key_issue(pe_db_conn_t *conn, const char *store_id, pe_key_kind_t kind,
                      char key[PE_KEY_LEN], char key_id[PE_ID_LEN]);
/* Revokes a key of store_id (idempotent: the first revocation time stays) and hands out its hash
 * (for the caller's cache, never further) and, when info is non-NULL, the key as revoked.
 * Returns 0, PE_ENOTFOUND (hash left "") or a database error. Thread-safe. */
int tenancy_key_revoke(pe_db_pool_t *pool, const char *store_id, const char *key_id,
                       char hash[TENANCY_HASH_HEX_LEN], pe_key_info_t *info);

/* ---- validators (validate.c) ----------------------------------------------------------------- */

/* Formats a message into err when err is non-NULL and errlen > 0. */
void tenancy_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True for the canonical text form of a uuid, 8-4-4-4-12 hex digits (either case). Reads at
 * most 37 bytes of s. Lets callers answer "not found" for garbage without a query. */
bool tenancy_uuid_valid(const char *s);
/* Store name: 1..200 bytes of valid UTF-8, no C0/C1 control characters or DEL, not blank.
 * Returns 0 or PE_EINVAL with a message naming the field. */
int tenancy_validate_store_name(const char *name, char *err, size_t errlen);
/* ISO 4217 shape: exactly three upper-case ASCII letters. Returns 0 or PE_EINVAL. */
int tenancy_validate_currency(const char *currency, char *err, size_t errlen);
/* Shape of an IANA zone name (1..64 bytes of [A-Za-z0-9/_+-]); whether PostgreSQL knows it is
 * the caller's query. Returns 0 or PE_EINVAL. */
int tenancy_validate_timezone_shape(const char *tz, char *err, size_t errlen);
/* Normalises an email (ASCII letters to lower case) into out and checks it: 3..254 bytes, valid
 * UTF-8, exactly one '@' with something on both sides, no whitespace or control characters.
 * Returns 0 or PE_EINVAL. */
int tenancy_email_normalise(const char *email, char out[TENANCY_EMAIL_MAX + 1], char *err,
                            size_t errlen);
/* Password length 8..1024 bytes. Returns 0 or PE_EINVAL. */
int tenancy_validate_password(const char *password, char *err, size_t errlen);

/* ---- passwords (password.c) ------------------------------------------------------------------ */

#define TENANCY_PWHASH_LEN 128 /* crypto_pwhash_STRBYTES; checked by a static assert */

/* argon2id (interactive limits) of password into out. Returns 0 or PE_ENOMEM. Thread-safe;
 * deliberately slow and memory-hungry — call it without holding a pooled connection. */
int tenancy_password_hash(const char *password, char out[TENANCY_PWHASH_LEN]);
/* True when password matches the stored argon2id string. Same cost as tenancy_password_hash. */
bool tenancy_password_verify(const char *stored, const char *password);
/* Spends the cost of one verification against a fixed hash and returns false: what a sign-in
 * with an unknown email does, so its timing matches a wrong password. Thread-safe. */
bool tenancy_password_verify_dummy(const char *password);

/* ---- pooled statements (query.c) ------------------------------------------------------------- */

/* Acquires a connection, runs one parameterised statement, releases the connection. On failure
 * copies the SQLSTATE into sqlstate (when non-NULL; "" when there is none). *out as for
 * pe_db_exec. Thread-safe. */
int tenancy_exec(pe_db_pool_t *pool, const char *sql, int nparams, const char *const *params,
                 pe_db_result_t **out, char sqlstate[6]);

#endif /* PE_TENANCY_INTERNAL_H */
