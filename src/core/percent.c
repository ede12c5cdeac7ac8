/*
 * percent.c — percent-decoding (RFC 3986) for paths, query strings and URLs, and the one parser
 * of query strings (the server's own and the page URLs events carry).
 *
 * Invariants:
 *  1. Bytes past n are never read; the output is always NUL-terminated when it fits.
 *  2. A decoded NUL is refused, so decoded text is always a C string of the returned length.
 */
#include <stdlib.h>
#include <string.h>

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

long pe_percent_decode_text(const char *s, size_t n, char *out, bool plus_is_space)
{
    long len = pe_percent_decode(s, n, out, n + 1, plus_is_space);
    if (len < 0 || !pe_utf8_valid(out, (size_t)len))
        return -1;
    return len;
}

/* ---- query strings --------------------------------------------------------------------------- */

int pe_query_parse(const char *qs, size_t len, pe_query_t *q)
{
    memset(q, 0, sizeof *q);
    if (len == 0)
        return 0;
    q->storage = malloc(len * 2 + 2);
    if (!q->storage)
        return PE_ENOMEM;
    size_t used = 0, pos = 0;
    while (pos <= len) {
        const char *amp = memchr(qs + pos, '&', len - pos);
        size_t end = amp ? (size_t)(amp - qs) : len;
        if (end > pos) {
            if (q->count == PE_QUERY_MAX_PARAMS)
                return PE_ETOOBIG;
            const char *eq = memchr(qs + pos, '=', end - pos);
            size_t name_end = eq ? (size_t)(eq - qs) : end;
            long nl = pe_percent_decode_text(qs + pos, name_end - pos, q->storage + used, true);
            if (nl < 0)
                return PE_EINVAL;
            q->names[q->count] = q->storage + used;
            used += (size_t)nl + 1;
            size_t vstart = eq ? name_end + 1 : end;
            long vl = pe_percent_decode_text(qs + vstart, end - vstart, q->storage + used, true);
            if (vl < 0)
                return PE_EINVAL;
            q->values[q->count] = q->storage + used;
            used += (size_t)vl + 1;
            q->count++;
        }
        if (!amp)
            break;
        pos = end + 1;
    }
    return 0;
}

const char *pe_query_get(const pe_query_t *q, const char *name)
{
    for (size_t i = 0; i < q->count; i++)
        if (strcmp(q->names[i], name) == 0)
            return q->values[i];
    return NULL;
}

void pe_query_free(pe_query_t *q)
{
    if (!q)
        return;
    free(q->storage);
    q->storage = NULL;
    q->count = 0;
}
