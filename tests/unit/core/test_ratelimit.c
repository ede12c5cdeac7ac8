/*
 * test_ratelimit.c — the token buckets of the storefront routes (src/core/ratelimit.c), on a
 * clock the test drives.
 *
 *  1. A key takes `burst` requests at once, then one every 1/rate seconds; the refusal says how
 *     long until the next token, and tokens never pile up beyond the burst.
 *  2. Keys are independent.
 *  3. Many threads on one key at one instant take exactly `burst` tokens between them.
 *  4. A small table under a churn of 100,000 keys keeps working (bounded: a key forgotten comes
 *     back with a full bucket, never a wrong refusal of a new key).
 *  5. Bad parameters give no table.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "pe_test.h"

#define T0 1700000000000000LL /* µs */

static void test_burst_then_rate(void **state)
{
    (void)state;
    pe_ratelimit_t *rl = pe_ratelimit_new(10, 20, 64);
    assert_non_null(rl);
    double wait = -1;
    for (int i = 0; i < 20; i++)
        assert_true(pe_ratelimit_take(rl, "pk_a", T0, &wait));
    assert_false(pe_ratelimit_take(rl, "pk_a", T0, &wait));
    assert_float_equal(wait, 0.1, 1e-9);
    assert_false(pe_ratelimit_take(rl, "pk_a", T0 + 50000, &wait)); /* half a token */
    assert_float_equal(wait, 0.05, 1e-9);
    assert_true(pe_ratelimit_take(rl, "pk_a", T0 + 100000, &wait)); /* one token back */
    assert_false(pe_ratelimit_take(rl, "pk_a", T0 + 100000, NULL));
    /* an hour idle: the burst again, not 36,000 */
    int taken = 0;
    while (pe_ratelimit_take(rl, "pk_a", T0 + 3600000000LL, NULL))
        taken++;
    assert_int_equal(taken, 20);
    /* a clock that steps back gives nothing */
    assert_false(pe_ratelimit_take(rl, "pk_a", T0, NULL));
    pe_ratelimit_free(rl);
}

static void test_keys_independent(void **state)
{
    (void)state;
    pe_ratelimit_t *rl = pe_ratelimit_new(1, 3, 1024);
    for (int i = 0; i < 3; i++)
        assert_true(pe_ratelimit_take(rl, "203.0.113.7", T0, NULL));
    assert_false(pe_ratelimit_take(rl, "203.0.113.7", T0, NULL));
    for (int k = 0; k < 100; k++) {
        char key[32];
        snprintf(key, sizeof key, "198.51.100.%d", k);
        assert_true(pe_ratelimit_take(rl, key, T0, NULL));
    }
    assert_false(pe_ratelimit_take(rl, "203.0.113.7", T0, NULL)); /* still limited */
    pe_ratelimit_free(rl);
}

typedef struct {
    pe_ratelimit_t *rl;
    atomic_int *taken;
} worker_t;

static void *hammer(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < 20000; i++)
        if (pe_ratelimit_take(w->rl, "pk_shared", T0, NULL))
            atomic_fetch_add(w->taken, 1);
    return NULL;
}

static void test_threads_share_the_burst(void **state)
{
    (void)state;
    pe_ratelimit_t *rl = pe_ratelimit_new(100, 500, 256);
    atomic_int taken = 0;
    worker_t w = {rl, &taken};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&taken), 500);
    pe_ratelimit_free(rl);
}

static void test_bounded_under_churn(void **state)
{
    (void)state;
    pe_ratelimit_t *rl = pe_ratelimit_new(1, 1, 64);
    for (int k = 0; k < 100000; k++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", k);
        /* a key never seen before always has its full bucket */
        assert_true(pe_ratelimit_take(rl, key, T0 + k, NULL));
    }
    pe_ratelimit_free(rl);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    assert_null(pe_ratelimit_new(0, 10, 64));
    assert_null(pe_ratelimit_new(-1, 10, 64));
    assert_null(pe_ratelimit_new(10, 0.5, 64));
    pe_ratelimit_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),         cmocka_unit_test(test_keys_independent),
        cmocka_unit_test(test_threads_share_the_burst), cmocka_unit_test(test_bounded_under_churn),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
