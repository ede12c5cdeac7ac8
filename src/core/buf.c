/*
 * buf.c — growable byte buffers.
 *
 * Invariants:
 *  1. data == NULL implies len == cap == 0; otherwise len < cap and data[len] == '\0'.
 *  2. Growth is geometric (×2) so appends are amortised O(1).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/core.h"

static int reserve(pe_buf_t *b, size_t extra)
{
    if (extra >= SIZE_MAX - b->len - 1)
        return PE_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return PE_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int pe_buf_reserve(pe_buf_t *b, size_t extra)
{
    return reserve(b, extra);
}

int pe_buf_append(pe_buf_t *b, const void *p, size_t n)
{
    if (reserve(b, n) != 0)
        return PE_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int pe_buf_puts(pe_buf_t *b, const char *s)
{
    return pe_buf_append(b, s, strlen(s));
}

int pe_buf_vprintf(pe_buf_t *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    if (n < 0)
        return PE_EINVAL;
    if ((size_t)n < sizeof small)
        return pe_buf_append(b, small, (size_t)n);
    if (reserve(b, (size_t)n) != 0)
        return PE_ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int pe_buf_printf(pe_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = pe_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not valid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool pe_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII, the bulk of every body, eight bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, sizeof w);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_seq_len(p + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

int pe_buf_json_string(pe_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    if (reserve(b, n + 2) != 0)
        return PE_ENOMEM;
    b->data[b->len++] = '"';
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i && pe_buf_append(b, p + i, run - i) != 0)
            return PE_ENOMEM;
        i = run;
        if (i >= n)
            break;
        unsigned char c = p[i];
        char esc[8];
        size_t elen = 2;
        esc[0] = '\\';
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
        } else if (c == '\n') {
            esc[1] = 'n';
        } else if (c == '\r') {
            esc[1] = 'r';
        } else if (c == '\t') {
            esc[1] = 't';
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        } else {
            size_t l = utf8_seq_len(p + i, n - i);
            if (l == 0) {
                if (pe_buf_append(b, "\xEF\xBF\xBD", 3) != 0)
                    return PE_ENOMEM;
                i++;
            } else {
                if (pe_buf_append(b, p + i, l) != 0)
                    return PE_ENOMEM;
                i += l;
            }
            continue;
        }
        if (pe_buf_append(b, esc, elen) != 0)
            return PE_ENOMEM;
        i++;
    }
    return pe_buf_append(b, "\"", 1);
}

void pe_buf_reset(pe_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void pe_buf_free(pe_buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *pe_buf_steal(pe_buf_t *b)
{
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
