/*
 * time.c — clocks, calendar arithmetic and randomness (libsodium's CSPRNG); RFC 3339 text is
 * rfc3339.c's.
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

int64_t pe_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* 0..399 */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
    return era * 146097 + doe - 719468;
}

void pe_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* 0..146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* 0..365 */
    int64_t mp = (5 * doy + 2) / 153;                                    /* 0..11 */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
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

void pe_random_uuid(char out[PE_UUID_TEXT_LEN])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 9562 variant */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

bool pe_uuid_text_valid(const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < PE_UUID_TEXT_LEN - 1; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex)
            return false; /* also stops at the NUL of a short string */
    }
    return s[PE_UUID_TEXT_LEN - 1] == '\0';
}
