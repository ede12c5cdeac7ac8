/*
 * rng.c — the simulator's random numbers: xoshiro256** (Blackman & Vigna) seeded through
 * splitmix64, and the few distributions the generator draws from.
 *
 * Invariants:
 *  1. Pure functions of the generator state: no globals, no rand(), no clock; the same state
 *     gives the same sequence on every platform with IEEE-754 doubles.
 *  2. A state is never all zero (xoshiro's one fixed point): seeding goes through splitmix64,
 *     whose outputs for consecutive inputs are never all four zero.
 *  3. Every distribution consumes a fixed, documented number of draws per call where the
 *     generator relies on it (uniform, bernoulli, pick: one; normal: two).
 */
#include <math.h>
#include <stdio.h>

#include "pe/sim.h"

uint64_t pe_sim_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void pe_sim_rng_seed(pe_sim_rng_t *r, uint64_t seed)
{
    /* splitmix64 as a sequence: state += golden gamma, output = mix(state). */
    for (int i = 0; i < 4; i++) {
        r->s[i] = pe_sim_mix64(seed);
        seed += 0x9e3779b97f4a7c15ULL;
    }
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 1;
}

void pe_sim_rng_stream(pe_sim_rng_t *r, uint64_t seed, uint64_t a, uint64_t b)
{
    /* Chained mixing: (seed, a, b) → one 64-bit stream seed; mix64 is a bijection, so
     * different a for the same seed (or b for the same seed and a) give different seeds. */
    uint64_t h = pe_sim_mix64(seed ^ 0x5851f42d4c957f2dULL);
    h = pe_sim_mix64(h ^ a);
    h = pe_sim_mix64(h ^ (b * 0xd1342543de82ef95ULL));
    pe_sim_rng_seed(r, h);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t pe_sim_rng_next(pe_sim_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double pe_sim_rng_uniform(pe_sim_rng_t *r)
{
    return (double)(pe_sim_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t pe_sim_rng_below(pe_sim_rng_t *r, uint64_t n)
{
    if (n == 0)
        return 0;
    /* Rejection on the top of the range: threshold = 2^64 mod n. */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = pe_sim_rng_next(r);
        if (x >= threshold)
            return x % n;
    }
}

bool pe_sim_rng_bernoulli(pe_sim_rng_t *r, double p)
{
    return pe_sim_rng_uniform(r) < p;
}

double pe_sim_rng_normal(pe_sim_rng_t *r)
{
    double u1 = pe_sim_rng_uniform(r), u2 = pe_sim_rng_uniform(r);
    /* 1 - u1 is in (0, 1]: log never sees 0. */
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

unsigned pe_sim_rng_poisson(pe_sim_rng_t *r, double lambda, unsigned cap)
{
    if (!(lambda > 0))
        return 0;
    if (lambda > 30)
        lambda = 30;
    double limit = exp(-lambda), p = 1.0;
    unsigned k = 0;
    for (;;) {
        p *= pe_sim_rng_uniform(r);
        if (p <= limit || k >= cap)
            return k;
        k++;
    }
}

size_t pe_sim_rng_pick(pe_sim_rng_t *r, const double *weights, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += weights[i] > 0 ? weights[i] : 0;
    double x = pe_sim_rng_uniform(r) * sum;
    for (size_t i = 0; i < n; i++) {
        double w = weights[i] > 0 ? weights[i] : 0;
        if (x < w)
            return i;
        x -= w;
    }
    /* Rounding left x at or just above the last bucket: the last positive weight wins. */
    for (size_t i = n; i > 0; i--)
        if (weights[i - 1] > 0)
            return i - 1;
    return n ? n - 1 : 0;
}

void pe_sim_uuid(uint64_t seed, uint64_t a, uint64_t b, char out[37])
{
    pe_sim_rng_t r;
    pe_sim_rng_stream(&r, seed ^ 0x2545f4914f6cdd1dULL, a, b);
    uint64_t hi = pe_sim_rng_next(&r), lo = pe_sim_rng_next(&r);
    hi = (hi & ~0xf000ULL) | 0x4000ULL;                        /* version 4 */
    lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL; /* RFC 4122 variant */
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
             (unsigned)((hi >> 16) & 0xffff), (unsigned)(hi & 0xffff), (unsigned)(lo >> 48),
             (unsigned long long)(lo & 0xffffffffffffULL));
}
