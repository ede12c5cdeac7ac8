/*
 * percent.c — percent-decoding (RFC 3986) for paths, query strings and URLs.
 *
 * Invariants:
 *  1. Bytes past n are never read; the output is always NUL-terminated when it fits.
 *  2. A decoded NUL is refused, so decoded text is always a C string of the returned length.
 */
#include "pe/core.h"

int pe_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long pe_percent_decode(const char *s, size_t n, char *out, size_t outlen, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = pe_hex_digit(s[i + 1]), lo = pe_hex_digit(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= outlen)
            return -1;
        out[o++] = c;
    }
    if (outlen == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}
