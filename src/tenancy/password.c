/*
 * password.c — argon2id password hashing and verification (libsodium crypto_pwhash_str,
 * interactive limits), including the decoy verification that makes "no such email" cost the
 * same as "wrong password".
 *
 * Invariants:
 *  1. Stored hashes are crypto_pwhash_str strings: algorithm, limits and salt are inside the
 *     string, so verification needs nothing else and old hashes keep working if limits change.
 *  2. The decoy hash is computed once, lazily, under pthread_once, with the same limits as real
 *     hashes, by the first verification of either kind; after that it is only read. It is the
 *     one piece of process-wide state here and it holds nothing secret (the password behind it
 *     is random and forgotten at once).
 *  3. Every path through tenancy_password_verify and tenancy_password_verify_dummy runs exactly
 *     one argon2id computation at the interactive limits.
 *  4. Callers must have run pe_crypto_init (sodium_init) first.
 */
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "tenancy/tenancy_internal.h"

_Static_assert(TENANCY_PWHASH_LEN == crypto_pwhash_STRBYTES, "matches libsodium");
_Static_assert(crypto_pwhash_ALG_DEFAULT == crypto_pwhash_ALG_ARGON2ID13,
               "crypto_pwhash_str produces argon2id");

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];
static bool dummy_ready;

static void dummy_init(void)
{
    char pw[2 * 16 + 1];
    pe_random_hex(pw, 16);
    dummy_ready = crypto_pwhash_str(dummy_hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                    crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0;
    sodium_memzero(pw, sizeof pw);
}

int tenancy_password_hash(const char *password, char out[TENANCY_PWHASH_LEN])
{
    /* crypto_pwhash_str fails only when it cannot allocate its memory-hard working area. */
    if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return PE_ENOMEM;
    return 0;
}

bool tenancy_password_verify(const char *stored, const char *password)
{
    /* Whichever sign-in comes first pays for building the decoy, known email or not, so even
     * the first attempt after start-up does not tell them apart. */
    pthread_once(&dummy_once, dummy_init);
    /* A stored value that cannot be a crypto_pwhash string would be refused in microseconds;
     * answer it at full cost like any other mismatch. */
    if (strnlen(stored, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return tenancy_password_verify_dummy(password);
    return crypto_pwhash_str_verify(stored, password, strlen(password)) == 0;
}

bool tenancy_password_verify_dummy(const char *password)
{
    pthread_once(&dummy_once, dummy_init);
    if (dummy_ready) {
        /* The outcome is irrelevant (nobody knows the decoy's password); the work is the point. */
        int ignored = crypto_pwhash_str_verify(dummy_hash, password, strlen(password));
        (void)ignored;
    } else {
        /* The decoy could not be built (out of memory at that moment): hashing costs the same
         * as verifying, so timing still does not tell unknown from wrong. */
        char scratch[crypto_pwhash_STRBYTES];
        (void)tenancy_password_hash(password, scratch);
    }
    return false;
}
