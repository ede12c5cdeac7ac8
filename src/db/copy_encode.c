/*
 * db/copy_encode.c — rows for COPY … FROM STDIN, encoded in memory by the caller's thread so the
 * connection that sends them only streams bytes: PostgreSQL's binary format (fields as the
 * server stores them: no text to parse on either side) and text-format fields with the date
 * and timestamp forms COPY reads.
 *
 * Binary format: after PE_DB_COPY_BINARY_HEADER, each row is an int16 field count, then per
 * field an int32 length (-1 for NULL) and that many bytes, big-endian: uuid 16 bytes;
 * timestamptz int64 µs since 2000-01-01 UTC; smallint int16; text the UTF-8 bytes; jsonb a
 * version byte (1) and the JSON text. PE_DB_COPY_BINARY_TRAILER ends the data.
 *
 * Invariants:
 *  1. Every encoder appends to a pe_buf_t and returns 0 or PE_ENOMEM; on PE_ENOMEM the buffer
 *     holds a partial row and the caller discards the whole buffer.
 *  2. Nothing here allocates beyond the buffer's growth: the collector's hot path calls these
 *     for every field of every event. Dates and timestamps are arithmetic, not gmtime_r (which
 *     takes glibc's time-zone lock) and snprintf.
 *  3. JSON is written exactly as cJSON_PrintUnformatted would print the tree's values (numbers
 *     as the shortest of 15 or 17 significant digits that read back equal, non-finite as null),
 *     with text assumed valid UTF-8 (validated on the way in) and control bytes escaped.
 *  4. Text for binary COPY must hold no NUL byte (the length is strlen); callers validate.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define US_PER_DAY       (86400LL * 1000000LL)
#define PG_EPOCH_UNIX_US 946684800000000LL /* 2000-01-01T00:00:00Z */

/* ---- text forms ------------------------------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static char *put_digits(char *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + width;
}

size_t pe_db_text_date(int64_t unix_us, char out[PE_DB_TEXT_DATE_LEN])
{
    int64_t y;
    int m, d;
    pe_civil_from_days(floor_div(unix_us, US_PER_DAY), &y, &m, &d);
    char *p = put_digits(out, (uint64_t)(y < 0 ? 0 : y > 9999 ? 9999 : y), 4);
    *p++ = '-';
    p = put_digits(p, (uint64_t)m, 2);
    *p++ = '-';
    p = put_digits(p, (uint64_t)d, 2);
    *p = '\0';
    return (size_t)(p - out);
}

void pe_db_text_timestamptz(int64_t unix_us, char out[PE_DB_TEXT_TIMESTAMPTZ_LEN])
{
    char *p = out + pe_db_text_date(unix_us, out);
    int64_t us = unix_us - floor_div(unix_us, US_PER_DAY) * US_PER_DAY;
    int64_t secs = us / 1000000;
    *p++ = ' ';
    p = put_digits(p, (uint64_t)(secs / 3600), 2);
    *p++ = ':';
    p = put_digits(p, (uint64_t)(secs / 60 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (uint64_t)(secs % 60), 2);
    *p++ = '.';
    p = put_digits(p, (uint64_t)(us % 1000000), 6);
    memcpy(p, "+00", 4);
}

int pe_db_copy_text_field(pe_buf_t *b, const char *s, bool last)
{
    int rc = s ? pe_db_copy_escape(b, s, strlen(s)) : pe_buf_append(b, "\\N", 2);
    return rc | pe_buf_append(b, last ? "\n" : "\t", 1);
}

/* ---- JSON as jsonb's text -------------------------------------------------------------------- */

/* Quotes, backslashes and control bytes escaped, everything else as it is. One pass, runs of
 * plain bytes appended whole. */
static int put_json_string(pe_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = pe_buf_append(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc |= pe_buf_append(b, run, (size_t)(s - run));
        run = s + 1;
        switch (c) {
        case '"':
            rc |= pe_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc |= pe_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc |= pe_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc |= pe_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc |= pe_buf_append(b, "\\t", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc |= pe_buf_append(b, u, sizeof u);
        }
        }
    }
    rc |= pe_buf_append(b, run, (size_t)(s - run));
    return rc | pe_buf_append(b, "\"", 1);
}

static int put_json_number(pe_buf_t *b, double d)
{
    char text[32];
    int n;
    if (!isfinite(d))
        return pe_buf_append(b, "null", 4); /* as cJSON prints it */
    if (d == trunc(d) && fabs(d) < 1e15) {
        uint64_t v = (uint64_t)(d < 0 ? -d : d);
        char *end = text + sizeof text, *p = end;
        do
            *--p = (char)('0' + v % 10);
        while (v /= 10);
        if (d < 0)
            *--p = '-';
        return pe_buf_append(b, p, (size_t)(end - p));
    }
    n = snprintf(text, sizeof text, "%.15g", d);
    if (strtod(text, NULL) != d)
        n = snprintf(text, sizeof text, "%.17g", d);
    return pe_buf_append(b, text, (size_t)n);
}

static int put_json_value(pe_buf_t *b, const cJSON *j)
{
    int rc = 0;
    if (cJSON_IsString(j))
        return put_json_string(b, j->valuestring);
    if (cJSON_IsNumber(j))
        return put_json_number(b, j->valuedouble);
    if (cJSON_IsTrue(j))
        return pe_buf_append(b, "true", 4);
    if (cJSON_IsFalse(j))
        return pe_buf_append(b, "false", 5);
    if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
        bool object = cJSON_IsObject(j);
        rc |= pe_buf_append(b, object ? "{" : "[", 1);
        for (const cJSON *item = j->child; item; item = item->next) {
            if (item != j->child)
                rc |= pe_buf_append(b, ",", 1);
            if (object) {
                rc |= put_json_string(b, item->string);
                rc |= pe_buf_append(b, ":", 1);
            }
            rc |= put_json_value(b, item); /* depth is bounded by the parser (pe_json_parse) */
        }
        return rc | pe_buf_append(b, object ? "}" : "]", 1);
    }
    return pe_buf_append(b, "null", 4);
}

/* ---- binary fields --------------------------------------------------------------------------- */

static int put_be(pe_buf_t *b, uint64_t v, int bytes)
{
    unsigned char out[8];
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        out[i] = (unsigned char)(v & 0xff);
    return pe_buf_append(b, out, (size_t)bytes);
}

int pe_db_copy_bin_row(pe_buf_t *b, uint16_t nfields)
{
    return put_be(b, nfields, 2);
}

int pe_db_copy_bin_null(pe_buf_t *b)
{
    return put_be(b, UINT32_MAX, 4);
}

int pe_db_copy_bin_text(pe_buf_t *b, const char *s)
{
    if (!s)
        return pe_db_copy_bin_null(b);
    size_t n = strlen(s);
    return put_be(b, (uint32_t)n, 4) | pe_buf_append(b, s, n);
}

int pe_db_copy_bin_uuid(pe_buf_t *b, const unsigned char uuid[16])
{
    return put_be(b, 16, 4) | pe_buf_append(b, uuid, 16);
}

int pe_db_copy_bin_timestamptz(pe_buf_t *b, int64_t unix_us)
{
    return put_be(b, 8, 4) | put_be(b, (uint64_t)(unix_us - PG_EPOCH_UNIX_US), 8);
}

int pe_db_copy_bin_int2(pe_buf_t *b, int16_t v)
{
    return put_be(b, 2, 4) | put_be(b, (uint16_t)v, 2);
}

int pe_db_copy_bin_jsonb(pe_buf_t *b, const cJSON *j)
{
    if (!j)
        return pe_db_copy_bin_null(b);
    size_t at = b->len;
    int rc = put_be(b, 0, 4) | pe_buf_append(b, "\1", 1) | put_json_value(b, j);
    if (rc != 0)
        return rc;
    size_t n = b->len - at - 4; /* the length is patched in once it is known */
    for (int i = 3; i >= 0; i--, n >>= 8)
        b->data[at + (size_t)i] = (char)(n & 0xff);
    return 0;
}
