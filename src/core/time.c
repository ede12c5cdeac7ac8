/*
 * time.c — clocks, timestamps and randomness (libsodium's CSPRNG).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "pe/core.h"

int64_t pe_now_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t pe_now_unix_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void pe_time_format_rfc3339(int64_t unix_us, char *out, size_t outlen)
{
    time_t secs = (time_t)(unix_us / 1000000);
    int ms = (int)((unix_us % 1000000) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

int pe_crypto_init(void)
{
    return sodium_init() < 0 ? PE_EINTERNAL : 0;
}

void pe_random_hex(char *out, size_t n)
{
    unsigned char raw[64];
    while (n > 0) {
        size_t chunk = n < sizeof raw ? n : sizeof raw;
        randombytes_buf(raw, chunk);
        sodium_bin2hex(out, chunk * 2 + 1, raw, chunk);
        out += chunk * 2;
        n -= chunk;
    }
    *out = '\0';
}

void pe_random_token(char *out, size_t outlen, size_t n)
{
    unsigned char raw[96];
    if (n > sizeof raw)
        n = sizeof raw;
    randombytes_buf(raw, n);
    if (outlen < sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING)) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    sodium_bin2base64(out, outlen, raw, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}
