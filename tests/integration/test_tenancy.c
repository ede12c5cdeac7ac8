/*
 * test_tenancy.c — stores, API keys, merchant users, memberships and sessions against a real
 * PostgreSQL, in a private database created and migrated for this program (pe_test.h).
 *
 * Invariants the tests hold the code to:
 *  1. Tenancy: a key resolves to its own store only; a user sees only stores they belong to.
 *  2. Secrets: no key or session token appears in any column of the rows that stand for it;
 *     what is stored is its SHA-256, checked here with an independent computation.
 *  3. Refusals: malformed input is refused before the database is asked (proved with a pool
 *     whose server does not exist: the answer is "unauthenticated" / "not found", never
 *     "unavailable").
 *
 * Each test makes its own stores and users, so tests do not depend on each other's order.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "pe_test.h"
#include "pe/tenancy.h"

typedef struct {
    char *conninfo;
    pe_db_pool_t *pool;
    pe_db_pool_t *dead; /* a pool whose server does not exist */
} fixture_t;

static unsigned counter;

/* ---- helpers --------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(pe_crypto_init(), 0);
    f->conninfo = pe_test_db_create_migrated();
    f->pool = pe_db_pool_new(f->conninfo, 4);
    assert_non_null(f->pool);
    f->dead = pe_db_pool_new("host=/nonexistent-pe-test-socket-dir port=1 connect_timeout=2", 1);
    assert_non_null(f->dead);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture_t *f = *state;
    pe_db_pool_free(f->pool);
    pe_db_pool_free(f->dead);
    pe_test_db_drop(f->conninfo);
    free(f);
    return 0;
}

static void sha256_hex(const char *s, char out[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)s, strlen(s));
    sodium_bin2hex(out, 65, d, sizeof d);
}

static bool b64url_shaped(const char *s, size_t want_len)
{
    if (strlen(s) != want_len)
        return false;
    for (; *s; s++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *s))
            return false;
    return true;
}

static void make_store(fixture_t *f, pe_store_t *store, char pk[PE_KEY_LEN], char sk[PE_KEY_LEN])
{
    char name[64], err[256] = "";
    char pk_local[PE_KEY_LEN], sk_local[PE_KEY_LEN];
    snprintf(name, sizeof name, "Store %u", ++counter);
    int rc = pe_tenancy_store_create(f->pool, name, "Europe/Paris", "EUR", store,
                                     pk ? pk : pk_local, sk ? sk : sk_local, err, sizeof err);
    if (rc != 0)
        fail_msg("store_create: %d %s", rc, err);
}

/* A unique email for this program run. */
static void make_email(char *out, size_t len, const char *tag)
{
    snprintf(out, len, "%s.%u.%d@Example.COM", tag, ++counter, (int)getpid());
}

static void make_user(fixture_t *f, const char *store_id, char email[128], const char *password,
                      char user_id[PE_ID_LEN])
{
    char err[256] = "";
    make_email(email, 128, "user");
    int rc = pe_tenancy_user_create(f->pool, email, password, store_id, user_id, err, sizeof err);
    if (rc != 0)
        fail_msg("user_create: %d %s", rc, err);
}

static const char *const random_uuid = "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f";

/* ---- stores ---------------------------------------------------------------------------------- */

static void test_store_create_and_get(void **state)
{
    fixture_t *f = *state;
    pe_store_t s, got;
    char pk[PE_KEY_LEN], sk[PE_KEY_LEN], err[256] = "";

    assert_int_equal(
        pe_tenancy_store_create(f->pool, "Café ☕ Ltd", NULL, NULL, &s, pk, sk, err, sizeof err), 0);
    assert_true(pe_test_uuid_shaped(s.id));
    assert_string_equal(s.name, "Café ☕ Ltd");
    assert_string_equal(s.currency, "USD");
    assert_string_equal(s.timezone, "UTC");

    assert_int_equal(pe_tenancy_store_get(f->pool, s.id, &got), 0);
    assert_string_equal(got.id, s.id);
    assert_string_equal(got.name, s.name);
    assert_string_equal(got.currency, "USD");
    assert_string_equal(got.timezone, "UTC");

    /* Upper-case hex is the same uuid. */
    char upper[PE_ID_LEN];
    for (size_t i = 0; i < sizeof upper; i++)
        upper[i] = (char)(s.id[i] >= 'a' && s.id[i] <= 'f' ? s.id[i] - 32 : s.id[i]);
    assert_int_equal(pe_tenancy_store_get(f->pool, upper, &got), 0);
    assert_string_equal(got.id, s.id);

    char max[201];
    memset(max, 'z', 200);
    max[200] = '\0';
    assert_int_equal(pe_tenancy_store_create(f->pool, max, "America/Argentina/Buenos_Aires", "ARS",
                                             &s, pk, sk, err, sizeof err),
                     0);
    assert_string_equal(s.name, max);
    assert_string_equal(s.timezone, "America/Argentina/Buenos_Aires");
    assert_string_equal(s.currency, "ARS");
}

static void test_store_create_validation(void **state)
{
    fixture_t *f = *state;
    char over[202];
    memset(over, 'a', 201);
    over[201] = '\0';
    const struct {
        const char *name, *timezone, *currency, *field;
    } cases[] = {
        {"", NULL, NULL, "name"},
        {over, NULL, NULL, "name"},
        {"   ", NULL, NULL, "name"},
        {"tab\there", NULL, NULL, "name"},
        {"line\nbreak", NULL, NULL, "name"},
        {"esc\x1b[31m", NULL, NULL, "name"},
        {"del\x7f", NULL, NULL, "name"},
        {"c1 \xc2\x85", NULL, NULL, "name"},
        {"latin-1 caf\xe9", NULL, NULL, "name"},
        {"\xff\xfe", NULL, NULL, "name"},
        {"overlong \xc0\xaf", NULL, NULL, "name"},
        {"cut \xe2\x82", NULL, NULL, "name"},
        {"Shop", NULL, "usd", "currency"},
        {"Shop", NULL, "EURO", "currency"},
        {"Shop", NULL, "EU", "currency"},
        {"Shop", NULL, "", "currency"},
        {"Shop", NULL, "E1R", "currency"},
        {"Shop", "Mars/Olympus_Mons", NULL, "timezone"},
        {"Shop", "Europe/Pariss", NULL, "timezone"},
        {"Shop", "europe/paris", NULL, "timezone"},
        {"Shop", "", NULL, "timezone"},
        {"Shop", "Europe/Paris'; DROP TABLE stores; --", NULL, "timezone"},
        {"Shop", "UTC\n", NULL, "timezone"},
    };
    char *before = pe_test_sql(f->conninfo, "SELECT count(*) FROM stores");
    char *keys_before = pe_test_sql(f->conninfo, "SELECT count(*) FROM api_keys");
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        pe_store_t s;
        char pk[PE_KEY_LEN] = "x", sk[PE_KEY_LEN] = "x", err[256] = "";
        int rc = pe_tenancy_store_create(f->pool, cases[i].name, cases[i].timezone,
                                         cases[i].currency, &s, pk, sk, err, sizeof err);
        if (rc != PE_EINVAL)
            fail_msg("case %zu: got %d (%s), want PE_EINVAL", i, rc, err);
        size_t n = strlen(cases[i].field);
        if (strncmp(err, cases[i].field, n) != 0 || err[n] != ':')
            fail_msg("case %zu: message \"%s\" does not name %s", i, err, cases[i].field);
        /* Nothing to show: no key was issued. */
        assert_string_equal(pk, "");
        assert_string_equal(sk, "");
    }
    /* Refusals leave nothing behind, not even a half-made store. */
    pe_test_sql_expect(f->conninfo, before, "SELECT count(*) FROM stores");
    pe_test_sql_expect(f->conninfo, keys_before, "SELECT count(*) FROM api_keys");
    free(before);
    free(keys_before);
}

static void test_store_get_not_found(void **state)
{
    fixture_t *f = *state;
    pe_store_t s;
    assert_int_equal(pe_tenancy_store_get(f->pool, random_uuid, &s), PE_ENOTFOUND);
    const char *malformed[] = {"",
                               "not-a-uuid",
                               "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5",
                               "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f0",
                               "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e'f",
                               "' OR 1=1 --"};
    for (size_t i = 0; i < PE_ARRAY_LEN(malformed); i++) {
        assert_int_equal(pe_tenancy_store_get(f->pool, malformed[i], &s), PE_ENOTFOUND);
        /* Not asked of the database at all. */
        assert_int_equal(pe_tenancy_store_get(f->dead, malformed[i], &s), PE_ENOTFOUND);
    }
    /* And a well-formed id does need the database: the dead pool says so. */
    assert_int_equal(pe_tenancy_store_get(f->dead, random_uuid, &s), PE_EUNAVAIL);
}

/* ---- keys ------------------------------------------------------------------------------------ */

static void test_keys_shape_and_never_stored_in_clear(void **state)
{
    fixture_t *f = *state;
    pe_store_t s;
    char pk[PE_KEY_LEN], sk[PE_KEY_LEN], hash[65], prefix[11];
    make_store(f, &s, pk, sk);

    assert_memory_equal(pk, "pk_", 3);
    assert_memory_equal(sk, "sk_", 3);
    assert_true(b64url_shaped(pk + 3, 43));
    assert_true(b64url_shaped(sk + 3, 43));
    assert_string_not_equal(pk + 3, sk + 3);
    pe_test_sql_expect(f->conninfo, "2", "SELECT count(*) FROM api_keys WHERE store_id = '%s'",
                       s.id);

    const struct {
        const char *key, *kind;
    } keys[] = {{pk, "publishable"}, {sk, "secret"}};
    for (size_t i = 0; i < PE_ARRAY_LEN(keys); i++) {
        const char *key = keys[i].key;
        /* Neither the key nor its random part appears in any column of any key row. */
        pe_test_sql_expect(f->conninfo, "0",
                           "SELECT count(*) FROM api_keys k WHERE strpos(k::text, '%s') > 0", key);
        pe_test_sql_expect(f->conninfo, "0",
                           "SELECT count(*) FROM api_keys k WHERE strpos(k::text, '%s') > 0",
                           key + 3);
        pe_test_sql_expect(f->conninfo, "0",
                           "SELECT count(*) FROM stores s WHERE strpos(s::text, '%s') > 0",
                           key + 3);
        /* What is there is its SHA-256 and the 10-character display prefix. */
        sha256_hex(key, hash);
        snprintf(prefix, sizeof prefix, "%s", key);
        pe_test_sql_expect(
            f->conninfo, "1",
            "SELECT count(*) FROM api_keys WHERE store_id = '%s' AND key_hash = '%s' "
            "AND key_prefix = '%s' AND kind = '%s' AND revoked_at IS NULL",
            s.id, hash, prefix, keys[i].kind);
    }
}

static void test_key_authenticate(void **state)
{
    fixture_t *f = *state;
    pe_store_t a, b;
    char apk[PE_KEY_LEN], ask[PE_KEY_LEN], bpk[PE_KEY_LEN], bsk[PE_KEY_LEN];
    char store_id[PE_ID_LEN];
    pe_key_kind_t kind = 0;
    make_store(f, &a, apk, ask);
    make_store(f, &b, bpk, bsk);

    assert_int_equal(pe_tenancy_key_authenticate(f->pool, apk, store_id, &kind), 0);
    assert_string_equal(store_id, a.id);
    assert_int_equal(kind, PE_KEY_PUBLISHABLE);
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, ask, store_id, &kind), 0);
    assert_string_equal(store_id, a.id);
    assert_int_equal(kind, PE_KEY_SECRET);

    /* The other store's keys resolve to the other store, never to the first. */
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, bpk, store_id, &kind), 0);
    assert_string_equal(store_id, b.id);
    assert_int_equal(kind, PE_KEY_PUBLISHABLE);
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, bsk, store_id, &kind), 0);
    assert_string_equal(store_id, b.id);
    assert_int_equal(kind, PE_KEY_SECRET);

    /* A publishable key does not become a secret one by changing its tag. */
    char swapped[PE_KEY_LEN];
    snprintf(swapped, sizeof swapped, "sk_%s", apk + 3);
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, swapped, store_id, &kind), PE_EUNAUTH);
    assert_string_equal(store_id, "");

    /* One character changed. */
    char changed[PE_KEY_LEN];
    snprintf(changed, sizeof changed, "%s", ask);
    changed[10] = changed[10] == 'A' ? 'B' : 'A';
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, changed, store_id, &kind), PE_EUNAUTH);

    /* A row whose kind disagrees with the key's tag (a tampered or buggy write) is refused, not
     * trusted either way: a pk_ key must never come back as secret. */
    char hash[65];
    sha256_hex(bpk, hash);
    pe_test_sql_expect(f->conninfo, "1",
                       "UPDATE api_keys SET kind = 'secret' WHERE key_hash = '%s' RETURNING 1",
                       hash);
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, bpk, store_id, &kind), PE_EUNAUTH);
    assert_string_equal(store_id, "");
}

static void test_key_malformed(void **state)
{
    fixture_t *f = *state;
    pe_store_t s;
    char pk[PE_KEY_LEN], sk[PE_KEY_LEN], store_id[PE_ID_LEN];
    pe_key_kind_t kind;
    make_store(f, &s, pk, sk);

    /* 10 KB that starts like a publishable key. */
    static char huge[10 * 1024 + 1];
    memset(huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    huge[0] = 'p';
    huge[1] = 'k';
    huge[2] = '_';
    char tag_prefix[PE_KEY_LEN + 8], short_key[PE_KEY_LEN], long_key[PE_KEY_LEN + 8];
    char quote[PE_KEY_LEN], padded[PE_KEY_LEN + 8], trailing_nl[PE_KEY_LEN + 8], space[PE_KEY_LEN];
    char std_b64[PE_KEY_LEN], upper_tag[PE_KEY_LEN], dash_tag[PE_KEY_LEN], quote2[PE_KEY_LEN];
    char utf8[PE_KEY_LEN], sql_shaped[PE_KEY_LEN];
    snprintf(tag_prefix, sizeof tag_prefix, "rk_%s", pk + 3);
    snprintf(upper_tag, sizeof upper_tag, "PK_%s", pk + 3);
    snprintf(dash_tag, sizeof dash_tag, "pk-%s", pk + 3);
    /* Right length (46 bytes), wrong characters. */
    snprintf(quote2, sizeof quote2, "sk_\"%.42s", sk + 4);
    snprintf(utf8, sizeof utf8, "pk_%.41s\xc3\xa9", pk + 3);
    snprintf(sql_shaped, sizeof sql_shaped, "pk_%.43s",
             "AAAA'); DELETE FROM api_keys; --AAAAAAAAAAA");
    snprintf(short_key, sizeof short_key, "%.45s", pk);
    snprintf(long_key, sizeof long_key, "%sA", pk);
    snprintf(quote, sizeof quote, "%s", pk);
    quote[20] = '\'';
    snprintf(padded, sizeof padded, "%.45s=", pk);
    snprintf(trailing_nl, sizeof trailing_nl, "%s\n", pk);
    snprintf(space, sizeof space, "%s", pk);
    space[30] = ' ';
    snprintf(std_b64, sizeof std_b64, "%s", sk);
    std_b64[12] = '+';
    std_b64[13] = '/';

    const char *bad[] = {
        "",         "pk_",      "sk_",
        "pk",       tag_prefix, upper_tag,
        dash_tag,   pk + 3, /* the random part without its tag */
        short_key,  long_key,   huge,
        quote,      padded,     trailing_nl,
        space,      std_b64,    "pk_' OR '1'='1",
        sql_shaped, quote2,     utf8,
    };
    /* The right-length cases really are 46 bytes, so only their characters are wrong. */
    assert_int_equal(strlen(quote2), 46);
    assert_int_equal(strlen(utf8), 46);
    assert_int_equal(strlen(sql_shaped), 46);
    assert_int_equal(strlen(upper_tag), 46);
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        strcpy(store_id, "untouched");
        int rc = pe_tenancy_key_authenticate(f->pool, bad[i], store_id, &kind);
        if (rc != PE_EUNAUTH)
            fail_msg("case %zu: got %d, want PE_EUNAUTH", i, rc);
        assert_string_equal(store_id, "");
        /* Refused before the database: a pool with no server gives the same answer. */
        rc = pe_tenancy_key_authenticate(f->dead, bad[i], store_id, &kind);
        if (rc != PE_EUNAUTH)
            fail_msg("case %zu: reached the database (got %d)", i, rc);
    }
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, NULL, store_id, &kind), PE_EUNAUTH);
    /* Well-formed but unknown: asked of the database, unknown there. */
    char unknown[PE_KEY_LEN] = "pk_";
    memset(unknown + 3, 'A', 43);
    unknown[46] = '\0';
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, unknown, store_id, &kind), PE_EUNAUTH);
    assert_int_equal(pe_tenancy_key_authenticate(f->dead, unknown, store_id, &kind), PE_EUNAVAIL);
    assert_int_equal(pe_tenancy_key_authenticate(f->dead, pk, store_id, &kind), PE_EUNAVAIL);
    /* The injection attempts changed nothing. */
    pe_test_sql_expect(f->conninfo, "2", "SELECT count(*) FROM api_keys WHERE store_id = '%s'",
                       s.id);
}

static void test_key_create_and_revoke(void **state)
{
    fixture_t *f = *state;
    pe_store_t a, b;
    char ask[PE_KEY_LEN], extra[PE_KEY_LEN], extra_id[PE_ID_LEN], store_id[PE_ID_LEN];
    pe_key_kind_t kind;
    make_store(f, &a, NULL, ask);
    make_store(f, &b, NULL, NULL);

    assert_int_equal(pe_tenancy_key_create(f->pool, a.id, PE_KEY_SECRET, extra, extra_id), 0);
    assert_true(pe_test_uuid_shaped(extra_id));
    assert_memory_equal(extra, "sk_", 3);
    assert_true(b64url_shaped(extra + 3, 43));
    assert_string_not_equal(extra, ask);
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, extra, store_id, &kind), 0);
    assert_string_equal(store_id, a.id);
    assert_int_equal(kind, PE_KEY_SECRET);

    /* Another store cannot revoke it. */
    assert_int_equal(pe_tenancy_key_revoke(f->pool, b.id, extra_id), PE_ENOTFOUND);
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, extra, store_id, &kind), 0);

    assert_int_equal(pe_tenancy_key_revoke(f->pool, a.id, extra_id), 0);
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, extra, store_id, &kind), PE_EUNAUTH);
    assert_string_equal(store_id, "");
    /* Revoking again is harmless and keeps the first revocation time. */
    char *first =
        pe_test_sqlf(f->conninfo, "SELECT revoked_at FROM api_keys WHERE id = '%s'", extra_id);
    assert_int_equal(pe_tenancy_key_revoke(f->pool, a.id, extra_id), 0);
    pe_test_sql_expect(f->conninfo, first, "SELECT revoked_at FROM api_keys WHERE id = '%s'",
                       extra_id);
    free(first);
    /* The store's other keys still work. */
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, ask, store_id, &kind), 0);
    assert_string_equal(store_id, a.id);

    char pk2[PE_KEY_LEN], pk2_id[PE_ID_LEN];
    assert_int_equal(pe_tenancy_key_create(f->pool, b.id, PE_KEY_PUBLISHABLE, pk2, pk2_id), 0);
    assert_int_equal(pe_tenancy_key_authenticate(f->pool, pk2, store_id, &kind), 0);
    assert_string_equal(store_id, b.id);
    assert_int_equal(kind, PE_KEY_PUBLISHABLE);

    /* Unknown or malformed stores and ids. */
    assert_int_equal(pe_tenancy_key_create(f->pool, random_uuid, PE_KEY_SECRET, extra, extra_id),
                     PE_ENOTFOUND);
    assert_string_equal(extra, "");
    assert_int_equal(pe_tenancy_key_create(f->pool, "nope", PE_KEY_SECRET, extra, extra_id),
                     PE_ENOTFOUND);
    assert_int_equal(pe_tenancy_key_create(f->pool, a.id, (pe_key_kind_t)7, extra, extra_id),
                     PE_EINVAL);
    assert_int_equal(pe_tenancy_key_revoke(f->pool, a.id, random_uuid), PE_ENOTFOUND);
    assert_int_equal(pe_tenancy_key_revoke(f->pool, a.id, "nope"), PE_ENOTFOUND);
    assert_int_equal(pe_tenancy_key_revoke(f->pool, "nope", pk2_id), PE_ENOTFOUND);
}

/* ---- users ----------------------------------------------------------------------------------- */

static void test_user_create_and_verify(void **state)
{
    fixture_t *f = *state;
    pe_store_t s;
    char email[128], lower[128], user_id[PE_ID_LEN], got[PE_ID_LEN];
    make_store(f, &s, NULL, NULL);
    make_user(f, s.id, email, "correct horse battery", user_id);
    assert_true(pe_test_uuid_shaped(user_id));

    /* Stored lower-cased, password as argon2id, never in clear. */
    for (size_t i = 0; i <= strlen(email); i++)
        lower[i] = (char)(email[i] >= 'A' && email[i] <= 'Z' ? email[i] + 32 : email[i]);
    pe_test_sql_expect(f->conninfo, lower, "SELECT email FROM merchant_users WHERE id = '%s'",
                       user_id);
    pe_test_sql_expect(
        f->conninfo, "t",
        "SELECT password_hash LIKE '$argon2id$%%' AND strpos(password_hash, 'horse') = 0 "
        "FROM merchant_users WHERE id = '%s'",
        user_id);
    pe_test_sql_expect(f->conninfo, "owner",
                       "SELECT role FROM store_members WHERE store_id = '%s' AND user_id = '%s'",
                       s.id, user_id);

    assert_int_equal(pe_tenancy_user_verify(f->pool, email, "correct horse battery", got), 0);
    assert_string_equal(got, user_id);
    /* Any case of the email is the same account. */
    assert_int_equal(pe_tenancy_user_verify(f->pool, lower, "correct horse battery", got), 0);
    assert_string_equal(got, user_id);
    char upper[128];
    for (size_t i = 0; i <= strlen(email); i++)
        upper[i] = (char)(email[i] >= 'a' && email[i] <= 'z' ? email[i] - 32 : email[i]);
    assert_int_equal(pe_tenancy_user_verify(f->pool, upper, "correct horse battery", got), 0);
    assert_string_equal(got, user_id);

    /* Wrong password, unknown email, malformed input: one answer, and no id. */
    strcpy(got, "untouched");
    assert_int_equal(pe_tenancy_user_verify(f->pool, email, "correct horse batterY", got),
                     PE_EUNAUTH);
    assert_string_equal(got, "");
    strcpy(got, "untouched");
    assert_int_equal(
        pe_tenancy_user_verify(f->pool, "nobody@example.com", "correct horse battery", got),
        PE_EUNAUTH);
    assert_string_equal(got, "");
    assert_int_equal(pe_tenancy_user_verify(f->pool, email, "short", got), PE_EUNAUTH);
    assert_int_equal(pe_tenancy_user_verify(f->pool, "not an email", "correct horse battery", got),
                     PE_EUNAUTH);
    assert_int_equal(pe_tenancy_user_verify(f->pool, "' OR 1=1 --@x", "correct horse battery", got),
                     PE_EUNAUTH);
    assert_int_equal(pe_tenancy_user_verify(f->pool, NULL, "correct horse battery", got),
                     PE_EUNAUTH);
}

static void test_user_verify_timing_does_not_reveal_accounts(void **state)
{
    fixture_t *f = *state;
    pe_store_t s;
    char email[128], user_id[PE_ID_LEN], got[PE_ID_LEN];
    make_store(f, &s, NULL, NULL);
    make_user(f, s.id, email, "a real password", user_id);

    int64_t known_us = INT64_MAX, unknown_us = INT64_MAX;
    for (int i = 0; i < 3; i++) {
        int64_t t0 = pe_now_mono_us();
        assert_int_equal(pe_tenancy_user_verify(f->pool, email, "a wrong password", got),
                         PE_EUNAUTH);
        int64_t t1 = pe_now_mono_us();
        assert_int_equal(
            pe_tenancy_user_verify(f->pool, "ghost@example.com", "a wrong password", got),
            PE_EUNAUTH);
        int64_t t2 = pe_now_mono_us();
        known_us = t1 - t0 < known_us ? t1 - t0 : known_us;
        unknown_us = t2 - t1 < unknown_us ? t2 - t1 : unknown_us;
    }
    /* Loose on purpose (shared machines are noisy); skipping argon2id for unknown emails would
     * make them two to three orders of magnitude faster. */
    if (unknown_us * 3 < known_us || known_us * 3 < unknown_us)
        fail_msg("wrong password %lld us, unknown email %lld us", (long long)known_us,
                 (long long)unknown_us);
}

static void test_user_create_existing_email(void **state)
{
    fixture_t *f = *state;
    pe_store_t a, b, c;
    char email[128], user_id[PE_ID_LEN], again[PE_ID_LEN], err[256] = "";
    make_store(f, &a, NULL, NULL);
    make_store(f, &b, NULL, NULL);
    make_store(f, &c, NULL, NULL);
    make_user(f, a.id, email, "first password", user_id);

    /* Same person (same password, any case) joining a second store: same account. */
    char upper[128];
    for (size_t i = 0; i <= strlen(email); i++)
        upper[i] = (char)(email[i] >= 'a' && email[i] <= 'z' ? email[i] - 32 : email[i]);
    assert_int_equal(
        pe_tenancy_user_create(f->pool, upper, "first password", b.id, again, err, sizeof err), 0);
    assert_string_equal(again, user_id);
    assert_int_equal(pe_tenancy_member_check(f->pool, user_id, b.id), 0);
    /* Joining a store twice is fine. */
    assert_int_equal(
        pe_tenancy_user_create(f->pool, email, "first password", b.id, again, err, sizeof err), 0);
    assert_string_equal(again, user_id);

    /* Someone else claiming that email with another password is refused, and gains nothing. */
    strcpy(again, "untouched");
    assert_int_equal(
        pe_tenancy_user_create(f->pool, email, "other password", c.id, again, err, sizeof err),
        PE_ECONFLICT);
    assert_string_equal(again, "");
    assert_int_equal(strncmp(err, "email:", 6), 0);
    assert_int_equal(pe_tenancy_member_check(f->pool, user_id, c.id), PE_EFORBIDDEN);
    assert_int_equal(pe_tenancy_user_verify(f->pool, email, "other password", again), PE_EUNAUTH);
    assert_int_equal(pe_tenancy_user_verify(f->pool, email, "first password", again), 0);
    pe_test_sql_expect(f->conninfo, "1",
                       "SELECT count(*) FROM merchant_users WHERE lower(email) = lower('%s')",
                       email);
}

static void test_user_create_validation(void **state)
{
    fixture_t *f = *state;
    pe_store_t s;
    char user_id[PE_ID_LEN], email[128];
    make_store(f, &s, NULL, NULL);
    make_email(email, sizeof email, "valid");

    char long_email[300], long_pw[1100];
    memset(long_email, 'a', 255);
    long_email[10] = '@';
    long_email[255] = '\0';
    memset(long_pw, 'p', 1025);
    long_pw[1025] = '\0';
    const struct {
        const char *email, *password, *field;
    } cases[] = {
        {"", "password1", "email"},
        {"ab", "password1", "email"},
        {"no-at-sign.example.com", "password1", "email"},
        {"two@@example.com", "password1", "email"},
        {"@example.com", "password1", "email"},
        {"owner@", "password1", "email"},
        {"own er@example.com", "password1", "email"},
        {"owner@example.com\n", "password1", "email"},
        {"\xff@example.com", "password1", "email"},
        {long_email, "password1", "email"},
        {NULL, "password1", "email"},
        {email, "1234567", "password"},
        {email, "", "password"},
        {email, long_pw, "password"},
        {email, NULL, "password"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        char err[256] = "";
        int rc = pe_tenancy_user_create(f->pool, cases[i].email, cases[i].password, s.id, user_id,
                                        err, sizeof err);
        if (rc != PE_EINVAL)
            fail_msg("case %zu: got %d (%s), want PE_EINVAL", i, rc, err);
        size_t n = strlen(cases[i].field);
        if (strncmp(err, cases[i].field, n) != 0 || err[n] != ':')
            fail_msg("case %zu: message \"%s\" does not name %s", i, err, cases[i].field);
    }
    /* 8 and 1024 bytes are both fine. */
    char err[256] = "";
    memset(long_pw, 'p', 1024);
    long_pw[1024] = '\0';
    assert_int_equal(
        pe_tenancy_user_create(f->pool, email, long_pw, s.id, user_id, err, sizeof err), 0);
    assert_int_equal(pe_tenancy_user_verify(f->pool, email, long_pw, user_id), 0);
    make_email(email, sizeof email, "eight");
    assert_int_equal(
        pe_tenancy_user_create(f->pool, email, "12345678", s.id, user_id, err, sizeof err), 0);

    /* A store that does not exist: no account is left behind. */
    make_email(email, sizeof email, "orphan");
    assert_int_equal(
        pe_tenancy_user_create(f->pool, email, "password1", random_uuid, user_id, err, sizeof err),
        PE_ENOTFOUND);
    assert_string_equal(user_id, "");
    pe_test_sql_expect(f->conninfo, "0",
                       "SELECT count(*) FROM merchant_users WHERE lower(email) = lower('%s')",
                       email);
    assert_int_equal(
        pe_tenancy_user_create(f->pool, email, "password1", "nope", user_id, err, sizeof err),
        PE_ENOTFOUND);
}

typedef struct {
    fixture_t *f;
    const char *email;
    const char *password;
    const char *store_id;
    char user_id[PE_ID_LEN];
    int rc;
} racer_t;

static void *race_create(void *arg)
{
    racer_t *r = arg;
    char err[256];
    r->rc = pe_tenancy_user_create(r->f->pool, r->email, r->password, r->store_id, r->user_id, err,
                                   sizeof err);
    return NULL;
}

static void test_user_create_concurrent_same_email(void **state)
{
    fixture_t *f = *state;
    pe_store_t a, b;
    char email[128];
    make_store(f, &a, NULL, NULL);
    make_store(f, &b, NULL, NULL);

    /* Same password: both sign-ups end in one account that belongs to both stores. */
    make_email(email, sizeof email, "race");
    racer_t r1 = {.f = f, .email = email, .password = "same password", .store_id = a.id};
    racer_t r2 = {.f = f, .email = email, .password = "same password", .store_id = b.id};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, race_create, &r1), 0);
    assert_int_equal(pthread_create(&t2, NULL, race_create, &r2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(r1.rc, 0);
    assert_int_equal(r2.rc, 0);
    assert_string_equal(r1.user_id, r2.user_id);
    assert_int_equal(pe_tenancy_member_check(f->pool, r1.user_id, a.id), 0);
    assert_int_equal(pe_tenancy_member_check(f->pool, r1.user_id, b.id), 0);

    /* Different passwords: exactly one wins, the other is told the email is taken. */
    make_email(email, sizeof email, "race");
    racer_t r3 = {.f = f, .email = email, .password = "password three", .store_id = a.id};
    racer_t r4 = {.f = f, .email = email, .password = "password four", .store_id = b.id};
    assert_int_equal(pthread_create(&t1, NULL, race_create, &r3), 0);
    assert_int_equal(pthread_create(&t2, NULL, race_create, &r4), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_true((r3.rc == 0 && r4.rc == PE_ECONFLICT) || (r3.rc == PE_ECONFLICT && r4.rc == 0));
    pe_test_sql_expect(f->conninfo, "1",
                       "SELECT count(*) FROM merchant_users WHERE lower(email) = lower('%s')",
                       email);
}

/* ---- memberships ----------------------------------------------------------------------------- */

static void test_member_check_and_user_stores(void **state)
{
    fixture_t *f = *state;
    pe_store_t a, b, other;
    char email[128], user_id[PE_ID_LEN], outsider_email[128], outsider[PE_ID_LEN];
    char err[256] = "";
    make_store(f, &a, NULL, NULL);
    make_store(f, &b, NULL, NULL);
    make_store(f, &other, NULL, NULL);
    make_user(f, a.id, email, "member password", user_id);
    make_user(f, other.id, outsider_email, "outsider password", outsider);

    assert_int_equal(pe_tenancy_member_check(f->pool, user_id, a.id), 0);
    assert_int_equal(pe_tenancy_member_check(f->pool, user_id, b.id), PE_EFORBIDDEN);
    assert_int_equal(pe_tenancy_member_check(f->pool, outsider, a.id), PE_EFORBIDDEN);
    assert_int_equal(pe_tenancy_member_check(f->pool, random_uuid, a.id), PE_EFORBIDDEN);
    assert_int_equal(pe_tenancy_member_check(f->pool, user_id, random_uuid), PE_EFORBIDDEN);
    assert_int_equal(pe_tenancy_member_check(f->pool, "nope", a.id), PE_EFORBIDDEN);
    assert_int_equal(pe_tenancy_member_check(f->pool, user_id, "' OR 1=1 --"), PE_EFORBIDDEN);
    assert_int_equal(pe_tenancy_member_check(f->dead, user_id, "nope"), PE_EFORBIDDEN);

    cJSON *list = NULL;
    assert_int_equal(pe_tenancy_user_stores(f->pool, user_id, &list), 0);
    assert_true(cJSON_IsArray(list));
    assert_int_equal(cJSON_GetArraySize(list), 1);
    cJSON *first = cJSON_GetArrayItem(list, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "id")), a.id);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "name")), a.name);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "currency")), "EUR");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "timezone")),
                        "Europe/Paris");
    cJSON_Delete(list);

    /* Joining b adds b, after a; the outsider's store never shows. */
    char again[PE_ID_LEN];
    assert_int_equal(
        pe_tenancy_user_create(f->pool, email, "member password", b.id, again, err, sizeof err), 0);
    assert_int_equal(pe_tenancy_user_stores(f->pool, user_id, &list), 0);
    assert_int_equal(cJSON_GetArraySize(list), 2);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "id")), a.id);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "id")), b.id);
    cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        assert_string_not_equal(cJSON_GetStringValue(cJSON_GetObjectItem(item, "id")), other.id);
    }
    cJSON_Delete(list);

    /* No such user, well-formed or not: an empty list, and only the well-formed id needed the
     * database to say so. */
    assert_int_equal(pe_tenancy_user_stores(f->pool, random_uuid, &list), 0);
    assert_true(cJSON_IsArray(list));
    assert_int_equal(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);
    const char *malformed[] = {"nope", "", "' OR 1=1 --"};
    for (size_t i = 0; i < PE_ARRAY_LEN(malformed); i++) {
        list = NULL;
        assert_int_equal(pe_tenancy_user_stores(f->dead, malformed[i], &list), 0);
        assert_true(cJSON_IsArray(list));
        assert_int_equal(cJSON_GetArraySize(list), 0);
        cJSON_Delete(list);
    }
    list = NULL;
    assert_int_equal(pe_tenancy_user_stores(f->dead, random_uuid, &list), PE_EUNAVAIL);
    assert_null(list);
}

/* ---- sessions -------------------------------------------------------------------------------- */

static void make_session(fixture_t *f, char user_id[PE_ID_LEN], char token[PE_TOKEN_LEN],
                         char hash[65])
{
    pe_store_t s;
    char email[128];
    make_store(f, &s, NULL, NULL);
    make_user(f, s.id, email, "session password", user_id);
    assert_int_equal(pe_tenancy_session_create(f->pool, user_id, token), 0);
    sha256_hex(token, hash);
}

static void test_session_create_authenticate_revoke(void **state)
{
    fixture_t *f = *state;
    char user_id[PE_ID_LEN], token[PE_TOKEN_LEN], hash[65], got[PE_ID_LEN];
    make_session(f, user_id, token, hash);

    assert_true(b64url_shaped(token, 43));
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, token, got), 0);
    assert_string_equal(got, user_id);
    /* Stored as its hash only; lifetimes as documented. */
    pe_test_sql_expect(f->conninfo, "0",
                       "SELECT count(*) FROM sessions s WHERE strpos(s::text, '%s') > 0", token);
    pe_test_sql_expect(f->conninfo, "t",
                       "SELECT user_id = '%s' AND revoked_at IS NULL "
                       "AND expires_at - created_at = interval '%d seconds' "
                       "AND idle_expires_at > now() + interval '%d seconds' "
                       "FROM sessions WHERE token_hash = '%s'",
                       user_id, PE_SESSION_ABSOLUTE_S, PE_SESSION_IDLE_S - 60, hash);

    /* Two sessions of one user are independent. */
    char second[PE_TOKEN_LEN];
    assert_int_equal(pe_tenancy_session_create(f->pool, user_id, second), 0);
    assert_string_not_equal(second, token);

    assert_int_equal(pe_tenancy_session_revoke(f->pool, token), 0);
    strcpy(got, "untouched");
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, token, got), PE_EUNAUTH);
    assert_string_equal(got, "");
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, second, got), 0);
    assert_string_equal(got, user_id);
    /* Revoking again, or revoking nothing, is fine. */
    assert_int_equal(pe_tenancy_session_revoke(f->pool, token), 0);
    assert_int_equal(pe_tenancy_session_revoke(f->pool, "no-such-session"), 0);
    assert_int_equal(pe_tenancy_session_revoke(f->pool, NULL), 0);

    /* Unknown users get no session. */
    char none[PE_TOKEN_LEN];
    assert_int_equal(pe_tenancy_session_create(f->pool, random_uuid, none), PE_ENOTFOUND);
    assert_string_equal(none, "");
    assert_int_equal(pe_tenancy_session_create(f->pool, "nope", none), PE_ENOTFOUND);
}

static void test_session_malformed_tokens(void **state)
{
    fixture_t *f = *state;
    char user_id[PE_ID_LEN], token[PE_TOKEN_LEN], hash[65], got[PE_ID_LEN];
    make_session(f, user_id, token, hash);

    char short_t[PE_TOKEN_LEN], long_t[PE_TOKEN_LEN + 8], quoted[PE_TOKEN_LEN], huge[8193];
    snprintf(short_t, sizeof short_t, "%.42s", token);
    snprintf(long_t, sizeof long_t, "%s=", token);
    snprintf(quoted, sizeof quoted, "%s", token);
    quoted[7] = '\'';
    memset(huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    const char *bad[] = {"", short_t, long_t, quoted, huge, hash, "' OR 1=1 --"};
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        if (pe_tenancy_session_authenticate(f->pool, bad[i], got) != PE_EUNAUTH)
            fail_msg("case %zu accepted", i);
        if (pe_tenancy_session_authenticate(f->dead, bad[i], got) != PE_EUNAUTH)
            fail_msg("case %zu reached the database", i);
    }
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, NULL, got), PE_EUNAUTH);
    assert_int_equal(pe_tenancy_session_authenticate(f->dead, token, got), PE_EUNAVAIL);
    /* Still valid after all that. */
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, token, got), 0);
}

static void test_session_idle_refresh_and_expiry(void **state)
{
    fixture_t *f = *state;
    char user_id[PE_ID_LEN], token[PE_TOKEN_LEN], hash[65], got[PE_ID_LEN];
    make_session(f, user_id, token, hash);

    /* Use pushes the idle expiry forward by the idle lifetime. */
    pe_test_sql_expect(
        f->conninfo, "1",
        "UPDATE sessions SET idle_expires_at = now() + interval '1 minute', "
        "last_seen_at = now() - interval '1 hour' WHERE token_hash = '%s' RETURNING 1",
        hash);
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, token, got), 0);
    pe_test_sql_expect(f->conninfo, "t",
                       "SELECT idle_expires_at > now() + interval '%d seconds' "
                       "AND last_seen_at > now() - interval '1 minute' "
                       "FROM sessions WHERE token_hash = '%s'",
                       PE_SESSION_IDLE_S - 60, hash);

    /* ...but never past the absolute expiry. */
    pe_test_sql_expect(
        f->conninfo, "1",
        "UPDATE sessions SET expires_at = now() + interval '10 minutes', "
        "idle_expires_at = now() + interval '1 minute' WHERE token_hash = '%s' RETURNING 1",
        hash);
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, token, got), 0);
    pe_test_sql_expect(f->conninfo, "t",
                       "SELECT idle_expires_at = expires_at FROM sessions WHERE token_hash = '%s'",
                       hash);

    /* Idle too long: refused, and the refusal does not revive it. */
    pe_test_sql_expect(f->conninfo, "1",
                       "UPDATE sessions SET idle_expires_at = now() - interval '1 second' "
                       "WHERE token_hash = '%s' RETURNING 1",
                       hash);
    strcpy(got, "untouched");
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, token, got), PE_EUNAUTH);
    assert_string_equal(got, "");
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, token, got), PE_EUNAUTH);
    pe_test_sql_expect(f->conninfo, "t",
                       "SELECT idle_expires_at < now() FROM sessions WHERE token_hash = '%s'",
                       hash);
}

static void test_session_absolute_expiry(void **state)
{
    fixture_t *f = *state;
    char user_id[PE_ID_LEN], token[PE_TOKEN_LEN], hash[65], got[PE_ID_LEN];
    make_session(f, user_id, token, hash);
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, token, got), 0);

    /* Past its absolute lifetime, even though it was used a moment ago. */
    pe_test_sql_expect(
        f->conninfo, "1",
        "UPDATE sessions SET expires_at = now() - interval '1 second', "
        "idle_expires_at = now() + interval '1 hour' WHERE token_hash = '%s' RETURNING 1",
        hash);
    strcpy(got, "untouched");
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, token, got), PE_EUNAUTH);
    assert_string_equal(got, "");
}

static void test_user_delete_cascades(void **state)
{
    fixture_t *f = *state;
    char user_id[PE_ID_LEN], token[PE_TOKEN_LEN], hash[65], got[PE_ID_LEN];
    make_session(f, user_id, token, hash);
    pe_test_sql_expect(f->conninfo, "1", "DELETE FROM merchant_users WHERE id = '%s' RETURNING 1",
                       user_id);
    assert_int_equal(pe_tenancy_session_authenticate(f->pool, token, got), PE_EUNAUTH);
    pe_test_sql_expect(f->conninfo, "0", "SELECT count(*) FROM store_members WHERE user_id = '%s'",
                       user_id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_create_and_get),
        cmocka_unit_test(test_store_create_validation),
        cmocka_unit_test(test_store_get_not_found),
        cmocka_unit_test(test_keys_shape_and_never_stored_in_clear),
        cmocka_unit_test(test_key_authenticate),
        cmocka_unit_test(test_key_malformed),
        cmocka_unit_test(test_key_create_and_revoke),
        cmocka_unit_test(test_user_create_and_verify),
        cmocka_unit_test(test_user_verify_timing_does_not_reveal_accounts),
        cmocka_unit_test(test_user_create_existing_email),
        cmocka_unit_test(test_user_create_validation),
        cmocka_unit_test(test_user_create_concurrent_same_email),
        cmocka_unit_test(test_member_check_and_user_stores),
        cmocka_unit_test(test_session_create_authenticate_revoke),
        cmocka_unit_test(test_session_malformed_tokens),
        cmocka_unit_test(test_session_idle_refresh_and_expiry),
        cmocka_unit_test(test_session_absolute_expiry),
        cmocka_unit_test(test_user_delete_cascades),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
