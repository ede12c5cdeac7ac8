/*
 * secret.c — credential material: API keys and session tokens, their SHA-256 hashes, and the
 * shape check that lets a bogus credential be refused before any database work.
 *
 * A key is "pk_" or "sk_" followed by the base64url (no padding) of 32 random bytes: 46
 * characters. A session token is the same 43-character base64url without a tag.
 *
 * Invariants:
 *  1. What is stored is the hex SHA-256 of the whole presented string (tag included), so a
 *     publishable key's hash can never match a secret key's row and vice versa.
 *  2. The shape checks read at most one byte past the only valid length (strnlen), so an
 *     attacker's 10 KB header costs nothing, and accept only [A-Za-z0-9_-] after the tag.
 *  3. Nothing here keeps a secret after returning: raw random bytes live in core's
 *     pe_random_token, which wipes them.
 */
#include <string.h>

#include <sodium.h>

#include "tenancy/tenancy_internal.h"

_Static_assert(TENANCY_KEY_STRLEN < PE_KEY_LEN, "a key and its NUL fit PE_KEY_LEN");
_Static_assert(TENANCY_SECRET_B64_LEN < PE_TOKEN_LEN, "a token and its NUL fit PE_TOKEN_LEN");
_Static_assert(TENANCY_SECRET_B64_LEN ==
                   sodium_base64_ENCODED_LEN(TENANCY_SECRET_BYTES,
                                             sodium_base64_VARIANT_URLSAFE_NO_PADDING) -
                       1,
               "TENANCY_SECRET_B64_LEN matches libsodium's encoding");
_Static_assert(TENANCY_HASH_HEX_LEN == crypto_hash_sha256_BYTES * 2 + 1, "hex SHA-256 + NUL");

const char *tenancy_key_kind_name(pe_key_kind_t kind)
{
    switch (kind) {
    case PE_KEY_PUBLISHABLE:
        return "publishable";
    case PE_KEY_SECRET:
        return "secret";
    }
    return NULL;
}

int tenancy_key_kind_parse(const char *name, pe_key_kind_t *out)
{
    if (strcmp(name, "publishable") == 0) {
        *out = PE_KEY_PUBLISHABLE;
        return 0;
    }
    if (strcmp(name, "secret") == 0) {
        *out = PE_KEY_SECRET;
        return 0;
    }
    return PE_EINTERNAL;
}

static const char *kind_tag(pe_key_kind_t kind)
{
    switch (kind) {
    case PE_KEY_PUBLISHABLE:
        return "pk_";
    case PE_KEY_SECRET:
        return "sk_";
    }
    return NULL;
}

void tenancy_hash_hex(const char *s, size_t n, char out[TENANCY_HASH_HEX_LEN])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)s, n);
    sodium_bin2hex(out, TENANCY_HASH_HEX_LEN, digest, sizeof digest);
}

static bool b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Exactly TENANCY_SECRET_B64_LEN base64url characters and then the end of the string. */
static bool secret_well_formed(const char *s)
{
    if (strnlen(s, TENANCY_SECRET_B64_LEN + 1) != TENANCY_SECRET_B64_LEN)
        return false;
    for (size_t i = 0; i < TENANCY_SECRET_B64_LEN; i++)
        if (!b64url_char((unsigned char)s[i]))
            return false;
    return true;
}

int tenancy_key_generate(pe_key_kind_t kind, char key[PE_KEY_LEN], char hash[TENANCY_HASH_HEX_LEN],
                         char prefix[TENANCY_KEY_PREFIX_LEN + 1])
{
    const char *tag = kind_tag(kind);
    if (!tag)
        return PE_EINVAL;
    memcpy(key, tag, TENANCY_KEY_TAG_LEN);
    pe_random_token(key + TENANCY_KEY_TAG_LEN, PE_KEY_LEN - TENANCY_KEY_TAG_LEN,
                    TENANCY_SECRET_BYTES);
    /* pe_random_token leaves "" when the buffer is short; a static assert rules that out, and
     * this keeps a malformed key from ever being issued if that changes. */
    if (!secret_well_formed(key + TENANCY_KEY_TAG_LEN))
        return PE_EINTERNAL;
    tenancy_hash_hex(key, TENANCY_KEY_STRLEN, hash);
    memcpy(prefix, key, TENANCY_KEY_PREFIX_LEN);
    prefix[TENANCY_KEY_PREFIX_LEN] = '\0';
    return 0;
}

bool tenancy_key_well_formed(const char *key, pe_key_kind_t *kind)
{
    if (!key)
        return false;
    if (strncmp(key, "pk_", TENANCY_KEY_TAG_LEN) == 0)
        *kind = PE_KEY_PUBLISHABLE;
    else if (strncmp(key, "sk_", TENANCY_KEY_TAG_LEN) == 0)
        *kind = PE_KEY_SECRET;
    else
        return false;
    return secret_well_formed(key + TENANCY_KEY_TAG_LEN);
}

int tenancy_token_generate(char token[PE_TOKEN_LEN], char hash[TENANCY_HASH_HEX_LEN])
{
    pe_random_token(token, PE_TOKEN_LEN, TENANCY_SECRET_BYTES);
    if (!secret_well_formed(token))
        return PE_EINTERNAL;
    tenancy_hash_hex(token, TENANCY_SECRET_B64_LEN, hash);
    return 0;
}

bool tenancy_token_well_formed(const char *token)
{
    return token && secret_well_formed(token);
}
