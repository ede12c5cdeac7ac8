/*
 * users.c — merchant users: sign-up into a store and sign-in by email and password.
 *
 * Invariants:
 *  1. Emails are stored normalised (tenancy_email_normalise) and matched through the unique
 *     index on lower(email), so "A@B.C" and "a@b.c" are one account.
 *  2. argon2id work (tens of milliseconds, 64 MB) never runs while a pooled connection is held:
 *     look up, release, hash or verify, then take a connection again to write.
 *  3. Sign-in answers PE_EUNAUTH for an unknown email and for a wrong password after the same
 *     single argon2id verification (password.c's decoy for the unknown email).
 *  4. A user row never exists without a membership: the user and its first membership are
 *     inserted in one transaction.
 */
#include <stdio.h>
#include <string.h>

#include "tenancy/tenancy_internal.h"

/* SQLSTATE foreign_key_violation: the store (or, in a race, the user) is gone. */
static bool fk_violation(const char *sqlstate)
{
    return strcmp(sqlstate, TENANCY_SQLSTATE_FK) == 0;
}

/* Looks up a user by normalised email. Returns 0 with id and stored hash, PE_ENOTFOUND, or a
 * database error. */
static int find_user(pe_db_pool_t *pool, const char *email, char id[PE_ID_LEN],
                     char stored[TENANCY_PWHASH_LEN])
{
    static const char sql[] =
        "SELECT id, password_hash FROM merchant_users WHERE lower(email) = lower($1)";
    pe_db_result_t *res = NULL;
    const char *params[] = {email};
    int rc = tenancy_exec(pool, sql, 1, params, &res, NULL);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) != 1) {
        rc = PE_ENOTFOUND;
        goto out;
    }
    snprintf(id, PE_ID_LEN, "%s", pe_db_result_get(res, 0, 0));
    /* A stored value too long for the buffer is cut short and then fails verification, which
     * is the right answer for a corrupt hash. */
    snprintf(stored, TENANCY_PWHASH_LEN, "%s", pe_db_result_get(res, 0, 1));
    rc = 0;
out:
    pe_db_result_free(res);
    return rc;
}

/* Adds an existing user to a store; already being a member is success. */
static int add_member(pe_db_pool_t *pool, const char *store_id, const char *user_id)
{
    static const char sql[] = "INSERT INTO store_members (store_id, user_id) VALUES ($1, $2) "
                              "ON CONFLICT (store_id, user_id) DO NOTHING";
    char sqlstate[6];
    const char *params[] = {store_id, user_id};
    int rc = tenancy_exec(pool, sql, 2, params, NULL, sqlstate);
    if (rc != 0 && fk_violation(sqlstate))
        rc = PE_ENOTFOUND;
    return rc;
}

typedef struct {
    const char *email;
    const char *password_hash;
    const char *store_id;
    char *user_id; /* out, PE_ID_LEN */
    bool raced;    /* out: someone else registered the email since we looked */
} user_insert_t;

static int user_insert_tx(pe_db_conn_t *conn, void *arg)
{
    static const char user_sql[] = "INSERT INTO merchant_users (email, password_hash) "
                                   "VALUES ($1, $2) ON CONFLICT ((lower(email))) DO NOTHING "
                                   "RETURNING id";
    static const char member_sql[] =
        "INSERT INTO store_members (store_id, user_id) VALUES ($1, $2)";
    user_insert_t *u = arg;
    pe_db_result_t *res = NULL;

    const char *user_params[] = {u->email, u->password_hash};
    int rc = pe_db_exec(conn, user_sql, 2, user_params, &res);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) != 1) {
        u->raced = true;
        rc = PE_ECONFLICT;
        goto out;
    }
    snprintf(u->user_id, PE_ID_LEN, "%s", pe_db_result_get(res, 0, 0));

    const char *member_params[] = {u->store_id, u->user_id};
    rc = pe_db_exec(conn, member_sql, 2, member_params, NULL);
    if (rc != 0 && fk_violation(pe_db_conn_sqlstate(conn)))
        rc = PE_ENOTFOUND;
out:
    pe_db_result_free(res);
    return rc;
}

int pe_tenancy_user_create(pe_db_pool_t *pool, const char *email, const char *password,
                           const char *store_id, char user_id[PE_ID_LEN], char *err, size_t errlen)
{
    char norm[TENANCY_EMAIL_MAX + 1];
    char stored[TENANCY_PWHASH_LEN];
    char fresh[TENANCY_PWHASH_LEN];
    bool hashed = false;
    user_id[0] = '\0';
    tenancy_set_err(err, errlen, "%s", "");

    int rc = tenancy_email_normalise(email, norm, err, errlen);
    if (rc == 0)
        rc = tenancy_validate_password(password, err, errlen);
    if (rc != 0)
        goto out;
    if (!tenancy_uuid_valid(store_id)) {
        tenancy_set_err(err, errlen, "store: not found");
        rc = PE_ENOTFOUND;
        goto out;
    }

    /* Two rounds at most: if another sign-up registers the same email between our lookup and
     * our insert, the second round finds it and treats it like any existing account. */
    for (int round = 0; round < 2; round++) {
        rc = find_user(pool, norm, user_id, stored);
        if (rc == 0) {
            if (!tenancy_password_verify(stored, password)) {
                user_id[0] = '\0';
                tenancy_set_err(err, errlen, "email: already registered");
                rc = PE_ECONFLICT;
                goto out;
            }
            rc = add_member(pool, store_id, user_id);
            goto out;
        }
        if (rc != PE_ENOTFOUND)
            goto out;

        if (!hashed) {
            rc = tenancy_password_hash(password, fresh);
            if (rc != 0)
                goto out;
            hashed = true;
        }
        user_insert_t u = {.email = norm,
                           .password_hash = fresh,
                           .store_id = store_id,
                           .user_id = user_id,
                           .raced = false};
        rc = pe_db_tx(pool, TENANCY_DB_TIMEOUT_MS, user_insert_tx, &u);
        if (rc == PE_ECONFLICT && u.raced)
            continue;
        goto out;
    }
out:
    if (rc == PE_ENOTFOUND)
        tenancy_set_err(err, errlen, "store: not found");
    if (rc != 0)
        user_id[0] = '\0';
    return rc;
}

int pe_tenancy_user_verify(pe_db_pool_t *pool, const char *email, const char *password,
                           char user_id[PE_ID_LEN])
{
    char norm[TENANCY_EMAIL_MAX + 1];
    char stored[TENANCY_PWHASH_LEN];
    int rc = PE_EUNAUTH;
    user_id[0] = '\0';

    /* A password no account can have is refused at once: the answer depends on the input
     * alone, not on which accounts exist, and argon2id is never fed an unbounded string. */
    if (tenancy_validate_password(password, NULL, 0) != 0)
        goto out;
    if (tenancy_email_normalise(email, norm, NULL, 0) != 0) {
        tenancy_password_verify_dummy(password);
        goto out;
    }
    rc = find_user(pool, norm, user_id, stored);
    if (rc == PE_ENOTFOUND) {
        tenancy_password_verify_dummy(password);
        rc = PE_EUNAUTH;
        goto out;
    }
    if (rc != 0)
        goto out;
    rc = tenancy_password_verify(stored, password) ? 0 : PE_EUNAUTH;
out:
    if (rc != 0)
        user_id[0] = '\0';
    return rc;
}
