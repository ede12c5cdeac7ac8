/*
 * ratelimit.c — token buckets by key (a publishable key, a client address): each key may take
 * `rate` requests a second on average and `burst` at once; a request beyond is refused with the
 * time until a token is back (the 429's Retry-After).
 *
 * Invariants:
 *  1. Bounded memory whatever the keys: a fixed table of `capacity` buckets (a power of two), a
 *     key's bucket found by a keyed hash (SipHash with a random key per table, so no client can
 *     aim its keys at one slot) and PROBE slots after it. A key not found takes a free slot, else
 *     the slot in its window seen longest ago; a key evicted that way comes back with a full
 *     bucket — the price of the bound, paid by keys idle longer than the others of their window.
 *  2. Time is the caller's (now_us): the table never reads the clock; tests drive it.
 *  3. Thread-safe: one mutex per stripe of slots; a key's window never crosses a stripe.
 *  4. A full bucket is `burst` tokens; one request takes one token; tokens come back at `rate` a
 *     second up to `burst`.
 */
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "pe/core.h"

#define PROBE  8
#define STRIPE 64 /* slots per mutex: a multiple of PROBE */

typedef struct {
    uint64_t digest; /* the key's 64-bit keyed hash, never 0; 0: a free slot */
    double tokens;
    int64_t at_us; /* when tokens was computed */
} bucket_t;

struct pe_ratelimit {
    double rate, burst;
    size_t capacity; /* a power of two, a multiple of STRIPE */
    bucket_t *slots;
    pthread_mutex_t *locks;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
};

pe_ratelimit_t *pe_ratelimit_new(double rate, double burst, size_t capacity)
{
    if (!(rate > 0) || !(burst >= 1) || !isfinite(rate) || !isfinite(burst))
        return NULL;
    size_t cap = STRIPE;
    while (cap < capacity && cap < ((size_t)1 << 30))
        cap <<= 1;
    pe_ratelimit_t *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    rl->rate = rate;
    rl->burst = burst;
    rl->capacity = cap;
    rl->slots = calloc(cap, sizeof *rl->slots);
    rl->locks = calloc(cap / STRIPE, sizeof *rl->locks);
    if (!rl->slots || !rl->locks || sodium_init() < 0) {
        pe_ratelimit_free(rl);
        return NULL;
    }
    for (size_t i = 0; i < cap / STRIPE; i++)
        pthread_mutex_init(&rl->locks[i], NULL);
    crypto_shorthash_keygen(rl->hash_key);
    return rl;
}

void pe_ratelimit_free(pe_ratelimit_t *rl)
{
    if (!rl)
        return;
    if (rl->locks && rl->slots)
        for (size_t i = 0; i < rl->capacity / STRIPE; i++)
            pthread_mutex_destroy(&rl->locks[i]);
    free(rl->locks);
    free(rl->slots);
    free(rl);
}

bool pe_ratelimit_take(pe_ratelimit_t *rl, const char *key, int64_t now_us, double *retry_after_s)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)key, strlen(key), rl->hash_key);
    uint64_t digest = 0;
    memcpy(&digest, h, sizeof digest);
    size_t first = (size_t)(digest & (rl->capacity - 1)) & ~(size_t)(PROBE - 1);
    digest |= (uint64_t)1 << 63; /* never 0, the free mark; two keys share a bucket only when
                                  * 63 bits of a keyed hash collide */
    pthread_mutex_t *lock = &rl->locks[first / STRIPE];
    pthread_mutex_lock(lock);
    bucket_t *b = NULL, *free_slot = NULL, *stalest = NULL;
    for (size_t i = 0; i < PROBE; i++) {
        bucket_t *s = &rl->slots[first + i];
        if (s->digest == digest) {
            b = s;
            break;
        }
        if (s->digest == 0 && !free_slot)
            free_slot = s;
        if (!stalest || s->at_us < stalest->at_us)
            stalest = s;
    }
    if (!b) {
        b = free_slot ? free_slot : stalest;
        b->digest = digest;
        b->tokens = rl->burst;
        b->at_us = now_us;
    }
    if (now_us > b->at_us) {
        b->tokens = fmin(rl->burst, b->tokens + (double)(now_us - b->at_us) / 1e6 * rl->rate);
        b->at_us = now_us;
    }
    bool ok = b->tokens >= 1;
    if (ok)
        b->tokens -= 1;
    double wait = ok ? 0 : (1 - b->tokens) / rl->rate;
    pthread_mutex_unlock(lock);
    if (retry_after_s)
        *retry_after_s = wait;
    return ok;
}
