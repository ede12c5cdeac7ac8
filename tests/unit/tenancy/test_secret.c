/*
 * test_secret.c — credential material without a database: the shape of generated keys and
 * session tokens, their hashes against an independent SHA-256, and the shape check that guards
 * the authentication hot path.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "pe_test.h"
#include "tenancy/tenancy_internal.h"

static int setup(void **state)
{
    (void)state;
    return pe_crypto_init();
}

static bool all_b64url(const char *s)
{
    for (; *s; s++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *s))
            return false;
    return true;
}

static void sha256_hex(const char *s, char out[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)s, strlen(s));
    sodium_bin2hex(out, 65, d, sizeof d);
}

static void test_hash_known_vector(void **state)
{
    (void)state;
    char hex[TENANCY_HASH_HEX_LEN];
    tenancy_hash_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_key_generate(void **state)
{
    (void)state;
    const struct {
        pe_key_kind_t kind;
        const char *tag;
    } kinds[] = {{PE_KEY_PUBLISHABLE, "pk_"}, {PE_KEY_SECRET, "sk_"}};
    for (size_t k = 0; k < PE_ARRAY_LEN(kinds); k++) {
        char key[PE_KEY_LEN], again[PE_KEY_LEN];
        char hash[TENANCY_HASH_HEX_LEN], want[65];
        char prefix[TENANCY_KEY_PREFIX_LEN + 1], p2[TENANCY_KEY_PREFIX_LEN + 1];
        assert_int_equal(tenancy_key_generate(kinds[k].kind, key, hash, prefix), 0);
        assert_int_equal(strlen(key), 46);
        assert_memory_equal(key, kinds[k].tag, 3);
        assert_true(all_b64url(key + 3));
        sha256_hex(key, want);
        assert_string_equal(hash, want);
        assert_int_equal(strlen(prefix), 10);
        assert_memory_equal(prefix, key, 10);
        /* 43 base64url characters decode to exactly the 32 random bytes. */
        unsigned char raw[64];
        size_t raw_len = 0;
        assert_int_equal(sodium_base642bin(raw, sizeof raw, key + 3, 43, NULL, &raw_len, NULL,
                                           sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                         0);
        assert_int_equal(raw_len, 32);

        pe_key_kind_t parsed = 0;
        assert_true(tenancy_key_well_formed(key, &parsed));
        assert_int_equal(parsed, kinds[k].kind);

        assert_int_equal(tenancy_key_generate(kinds[k].kind, again, hash, p2), 0);
        assert_string_not_equal(key, again);
    }
    char key[PE_KEY_LEN], hash[TENANCY_HASH_HEX_LEN], prefix[TENANCY_KEY_PREFIX_LEN + 1];
    assert_int_equal(tenancy_key_generate((pe_key_kind_t)99, key, hash, prefix), PE_EINVAL);
}

static void test_key_well_formed_refuses(void **state)
{
    (void)state;
    char good[PE_KEY_LEN], hash[TENANCY_HASH_HEX_LEN], prefix[TENANCY_KEY_PREFIX_LEN + 1];
    assert_int_equal(tenancy_key_generate(PE_KEY_SECRET, good, hash, prefix), 0);
    const char *body = good + 3;

    char buf[16384];
    pe_key_kind_t kind;
    assert_false(tenancy_key_well_formed(NULL, &kind));
    assert_false(tenancy_key_well_formed("", &kind));
    assert_false(tenancy_key_well_formed("pk_", &kind));
    assert_false(tenancy_key_well_formed("sk_", &kind));

    const char *tags[] = {"xk_", "PK_", "pk-", "pk", "_pk", "rk_"};
    for (size_t i = 0; i < PE_ARRAY_LEN(tags); i++) {
        snprintf(buf, sizeof buf, "%s%s", tags[i], body);
        if (tenancy_key_well_formed(buf, &kind))
            fail_msg("tag %s accepted", tags[i]);
    }
    /* One character short, one too many, a long run. */
    snprintf(buf, sizeof buf, "sk_%.42s", body);
    assert_false(tenancy_key_well_formed(buf, &kind));
    snprintf(buf, sizeof buf, "sk_%sA", body);
    assert_false(tenancy_key_well_formed(buf, &kind));
    memset(buf, 'A', 10240);
    memcpy(buf, "pk_", 3);
    buf[10240] = '\0';
    assert_false(tenancy_key_well_formed(buf, &kind));
    /* Characters outside base64url, each in the middle of an otherwise good key. */
    const char bad[] = {'=', '+', '/', '\'', '"', ';', ' ', '\n', '\\', '%', '.', '\x80'};
    for (size_t i = 0; i < sizeof bad; i++) {
        snprintf(buf, sizeof buf, "sk_%s", body);
        buf[20] = bad[i];
        if (tenancy_key_well_formed(buf, &kind))
            fail_msg("byte 0x%02x accepted", (unsigned char)bad[i]);
    }
    /* SQL in the shape's place. */
    assert_false(tenancy_key_well_formed("pk_' OR '1'='1", &kind));
    assert_false(tenancy_key_well_formed("sk_'; DROP TABLE api_keys; --aaaaaaaaaaaaaaaaaa", &kind));
}

static void test_token(void **state)
{
    (void)state;
    char token[PE_TOKEN_LEN], other[PE_TOKEN_LEN];
    char hash[TENANCY_HASH_HEX_LEN], want[65];
    assert_int_equal(tenancy_token_generate(token, hash), 0);
    assert_int_equal(strlen(token), 43);
    assert_true(all_b64url(token));
    sha256_hex(token, want);
    assert_string_equal(hash, want);
    assert_true(tenancy_token_well_formed(token));
    assert_int_equal(tenancy_token_generate(other, hash), 0);
    assert_string_not_equal(token, other);

    char buf[128];
    assert_false(tenancy_token_well_formed(NULL));
    assert_false(tenancy_token_well_formed(""));
    snprintf(buf, sizeof buf, "%.42s", token);
    assert_false(tenancy_token_well_formed(buf));
    snprintf(buf, sizeof buf, "%sx", token);
    assert_false(tenancy_token_well_formed(buf));
    snprintf(buf, sizeof buf, "%s", token);
    buf[5] = '\'';
    assert_false(tenancy_token_well_formed(buf));
    /* A key is not a session token. */
    char key[PE_KEY_LEN], prefix[TENANCY_KEY_PREFIX_LEN + 1];
    assert_int_equal(tenancy_key_generate(PE_KEY_PUBLISHABLE, key, hash, prefix), 0);
    assert_false(tenancy_token_well_formed(key));
}

static void test_kind_names(void **state)
{
    (void)state;
    pe_key_kind_t kind;
    assert_string_equal(tenancy_key_kind_name(PE_KEY_PUBLISHABLE), "publishable");
    assert_string_equal(tenancy_key_kind_name(PE_KEY_SECRET), "secret");
    assert_null(tenancy_key_kind_name((pe_key_kind_t)0));
    assert_int_equal(tenancy_key_kind_parse("publishable", &kind), 0);
    assert_int_equal(kind, PE_KEY_PUBLISHABLE);
    assert_int_equal(tenancy_key_kind_parse("secret", &kind), 0);
    assert_int_equal(kind, PE_KEY_SECRET);
    assert_int_equal(tenancy_key_kind_parse("Secret", &kind), PE_EINTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_known_vector),
        cmocka_unit_test(test_key_generate),
        cmocka_unit_test(test_key_well_formed_refuses),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
