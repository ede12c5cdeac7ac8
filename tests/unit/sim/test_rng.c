/*
 * test_rng.c — the simulator's random numbers: the reference outputs of splitmix64 and
 * xoshiro256**, determinism and independence of streams, and the shape of every distribution
 * the generator draws from (means and frequencies within statistical tolerances that a broken
 * implementation would miss by far).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pe/sim.h"
#include "pe_test.h"

#define N 200000

static void test_reference_outputs(void **state)
{
    (void)state;
    /* splitmix64 from state 0 and 1 (the published first outputs). */
    assert_true(pe_sim_mix64(0) == 0xe220a8397b1dcdafULL);
    assert_true(pe_sim_mix64(1) == 0x910a2dec89025cc1ULL);
    /* xoshiro256** from the state {1, 2, 3, 4}, as the reference C code computes it. */
    pe_sim_rng_t r = {{1, 2, 3, 4}};
    assert_true(pe_sim_rng_next(&r) == 0x2d00ULL);
    assert_true(pe_sim_rng_next(&r) == 0x0ULL);
    assert_true(pe_sim_rng_next(&r) == 0x5a007080ULL);
    assert_true(pe_sim_rng_next(&r) == 0x10e0000000009d80ULL);
}

static void test_determinism_and_streams(void **state)
{
    (void)state;
    pe_sim_rng_t a, b, c, d;
    pe_sim_rng_seed(&a, 42);
    pe_sim_rng_seed(&b, 42);
    pe_sim_rng_seed(&c, 43);
    int same_as_other_seed = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = pe_sim_rng_next(&a);
        assert_true(x == pe_sim_rng_next(&b));
        same_as_other_seed += x == pe_sim_rng_next(&c);
    }
    assert_int_equal(same_as_other_seed, 0);

    /* Streams: same coordinates agree, neighbouring coordinates do not. */
    pe_sim_rng_stream(&a, 7, 3, 5);
    pe_sim_rng_stream(&b, 7, 3, 5);
    pe_sim_rng_stream(&c, 7, 3, 6);
    pe_sim_rng_stream(&d, 7, 4, 5);
    uint64_t xa = pe_sim_rng_next(&a);
    assert_true(xa == pe_sim_rng_next(&b));
    assert_true(xa != pe_sim_rng_next(&c));
    assert_true(xa != pe_sim_rng_next(&d));
    /* Seed 0 is fine (no all-zero state). */
    pe_sim_rng_seed(&a, 0);
    assert_true((a.s[0] | a.s[1] | a.s[2] | a.s[3]) != 0);
}

static void test_uniform_and_below(void **state)
{
    (void)state;
    pe_sim_rng_t r;
    pe_sim_rng_seed(&r, 1);
    double sum = 0, min = 1, max = 0;
    for (int i = 0; i < N; i++) {
        double u = pe_sim_rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
        sum += u;
        min = u < min ? u : min;
        max = u > max ? u : max;
    }
    assert_true(fabs(sum / N - 0.5) < 0.005);
    assert_true(min < 0.001 && max > 0.999);

    /* below(10): chi-square with 9 degrees of freedom; 27.9 is the 0.999 quantile. */
    unsigned counts[10] = {0};
    for (int i = 0; i < N; i++) {
        uint64_t x = pe_sim_rng_below(&r, 10);
        assert_true(x < 10);
        counts[x]++;
    }
    double chi = 0, expect = N / 10.0;
    for (int i = 0; i < 10; i++)
        chi += (counts[i] - expect) * (counts[i] - expect) / expect;
    assert_true(chi < 27.9);
    assert_true(pe_sim_rng_below(&r, 0) == 0);
    assert_true(pe_sim_rng_below(&r, 1) == 0);
}

static void test_bernoulli_normal_poisson(void **state)
{
    (void)state;
    pe_sim_rng_t r;
    pe_sim_rng_seed(&r, 2);
    int hits = 0;
    for (int i = 0; i < N; i++)
        hits += pe_sim_rng_bernoulli(&r, 0.3);
    assert_true(fabs((double)hits / N - 0.3) < 0.005);
    for (int i = 0; i < 100; i++) {
        assert_false(pe_sim_rng_bernoulli(&r, 0));
        assert_true(pe_sim_rng_bernoulli(&r, 1));
    }

    double sum = 0, sq = 0;
    for (int i = 0; i < N; i++) {
        double x = pe_sim_rng_normal(&r);
        assert_true(isfinite(x));
        sum += x;
        sq += x * x;
    }
    double mean = sum / N, var = sq / N - mean * mean;
    assert_true(fabs(mean) < 0.01);
    assert_true(fabs(var - 1) < 0.02);

    sum = 0;
    unsigned maxk = 0;
    for (int i = 0; i < N; i++) {
        unsigned k = pe_sim_rng_poisson(&r, 1.3, 8);
        sum += k;
        maxk = k > maxk ? k : maxk;
    }
    assert_true(fabs(sum / N - 1.3) < 0.02);
    assert_true(maxk <= 8);
    assert_int_equal(pe_sim_rng_poisson(&r, 0, 8), 0);
    assert_int_equal(pe_sim_rng_poisson(&r, 20, 3) <= 3, 1);
}

static void test_pick(void **state)
{
    (void)state;
    pe_sim_rng_t r;
    pe_sim_rng_seed(&r, 3);
    const double w[4] = {0.5, 0, 0.3, 0.2};
    unsigned counts[4] = {0};
    for (int i = 0; i < N; i++) {
        size_t k = pe_sim_rng_pick(&r, w, 4);
        assert_true(k < 4);
        counts[k]++;
    }
    assert_int_equal(counts[1], 0); /* a zero weight is never picked */
    assert_true(fabs((double)counts[0] / N - 0.5) < 0.006);
    assert_true(fabs((double)counts[2] / N - 0.3) < 0.006);
    assert_true(fabs((double)counts[3] / N - 0.2) < 0.006);
    /* Unnormalised weights give the same proportions. */
    const double w2[2] = {300, 100};
    unsigned c0 = 0;
    for (int i = 0; i < N; i++)
        c0 += pe_sim_rng_pick(&r, w2, 2) == 0;
    assert_true(fabs((double)c0 / N - 0.75) < 0.006);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_uuid(void **state)
{
    (void)state;
    enum { M = 50000 };
    char(*ids)[37] = malloc(sizeof(*ids) * M);
    assert_non_null(ids);
    for (int i = 0; i < M; i++) {
        pe_sim_uuid(99, (uint64_t)i / 100, (uint64_t)i % 100, ids[i]);
        const char *s = ids[i];
        assert_int_equal(strlen(s), 36);
        assert_true(s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-');
        assert_true(s[14] == '4');                         /* version 4 */
        assert_non_null(strchr("89ab", s[19]));            /* RFC 4122 variant */
        assert_true(strspn(s, "0123456789abcdef-") == 36); /* lower-case hex */
    }
    char again[37];
    pe_sim_uuid(99, 3, 7, again);
    assert_string_equal(again, ids[307]);
    pe_sim_uuid(100, 3, 7, again);
    assert_string_not_equal(again, ids[307]);
    qsort(ids, M, sizeof *ids, cmp_str);
    for (int i = 1; i < M; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_outputs),
        cmocka_unit_test(test_determinism_and_streams),
        cmocka_unit_test(test_uniform_and_below),
        cmocka_unit_test(test_bernoulli_normal_poisson),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_uuid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
