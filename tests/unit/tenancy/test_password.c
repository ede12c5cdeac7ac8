/*
 * test_password.c — argon2id hashing and verification without a database, and the decoy that
 * gives an unknown email the cost of a wrong password.
 */
#include <string.h>

#include <sodium.h>

#include "pe_test.h"
#include "tenancy/tenancy_internal.h"

static int setup(void **state)
{
    (void)state;
    return pe_crypto_init();
}

static void test_hash_and_verify(void **state)
{
    (void)state;
    char stored[TENANCY_PWHASH_LEN], other[TENANCY_PWHASH_LEN];
    assert_int_equal(tenancy_password_hash("correct horse battery", stored), 0);
    assert_int_equal(strncmp(stored, "$argon2id$", 10), 0);
    assert_null(strstr(stored, "correct horse"));
    /* The interactive limits, not something cheaper. */
    assert_int_equal(crypto_pwhash_str_needs_rehash(stored, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                                    crypto_pwhash_MEMLIMIT_INTERACTIVE),
                     0);
    assert_true(tenancy_password_verify(stored, "correct horse battery"));
    assert_false(tenancy_password_verify(stored, "correct horse batter"));
    assert_false(tenancy_password_verify(stored, "Correct horse battery"));
    /* Salted: the same password hashes differently each time. */
    assert_int_equal(tenancy_password_hash("correct horse battery", other), 0);
    assert_string_not_equal(stored, other);
    assert_true(tenancy_password_verify(other, "correct horse battery"));
}

static void test_corrupt_stored_hash(void **state)
{
    (void)state;
    assert_false(tenancy_password_verify("", "whatever1"));
    assert_false(tenancy_password_verify("$argon2id$garbage", "whatever1"));
    char longer[300];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_false(tenancy_password_verify(longer, "whatever1"));
}

static void test_dummy_costs_like_a_verify(void **state)
{
    (void)state;
    char stored[TENANCY_PWHASH_LEN];
    assert_int_equal(tenancy_password_hash("a real password", stored), 0);
    /* Warm the decoy so its one-off construction is not measured. */
    assert_false(tenancy_password_verify_dummy("warm-up password"));

    int64_t real_us = INT64_MAX, dummy_us = INT64_MAX;
    for (int i = 0; i < 3; i++) {
        int64_t t0 = pe_now_mono_us();
        assert_false(tenancy_password_verify(stored, "a wrong password"));
        int64_t t1 = pe_now_mono_us();
        assert_false(tenancy_password_verify_dummy("a wrong password"));
        int64_t t2 = pe_now_mono_us();
        real_us = t1 - t0 < real_us ? t1 - t0 : real_us;
        dummy_us = t2 - t1 < dummy_us ? t2 - t1 : dummy_us;
    }
    /* Loose bounds (machines are noisy); a decoy that skipped argon2id would be ~1000x off. */
    if (dummy_us * 3 < real_us || real_us * 3 < dummy_us)
        fail_msg("wrong password took %lld us, decoy %lld us", (long long)real_us,
                 (long long)dummy_us);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_and_verify),
        cmocka_unit_test(test_corrupt_stored_hash),
        cmocka_unit_test(test_dummy_costs_like_a_verify),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
