/*
 * negotiate.c — the two request headers that decide how a static file is answered:
 * Accept-Encoding (may the body be gzip?) and If-None-Match (does the client hold it already?).
 * Pure functions over header text: no allocation and no I/O, so they are fuzzed
 * (tests/fuzz/fuzz_negotiate.c).
 *
 * Invariants:
 *  1. Reading stops at the terminating NUL; no byte outside the string is read.
 *  2. What is malformed refuses: an Accept-Encoding entry with a bad q is ignored, an
 *     If-None-Match element that is not an entity tag matches nothing. A wrong refusal costs
 *     bytes (identity instead of gzip, a 200 instead of a 304), never correctness.
 *  3. An Accept-Encoding entry for the coding decides over "*" whatever the order, and the
 *     highest quality wins when a coding is listed twice.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "pe/http.h"

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Skips optional whitespace and the commas of empty list elements (RFC 9110 §5.6.1). */
static const char *skip_separators(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
    return p;
}

/* tchar of RFC 9110 §5.6.2. */
static bool tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_token(const char *p)
{
    while (tchar(*p))
        p++;
    return p;
}

/* A qvalue (RFC 9110 §12.4.2: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")]) in thousandths, or -1. */
static int qvalue(const char *p, size_t n)
{
    if (n == 0 || (p[0] != '0' && p[0] != '1'))
        return -1;
    int q = (p[0] - '0') * 1000;
    if (n == 1)
        return q;
    if (p[1] != '.' || n > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        q += (p[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

/* Whether the token tok[0..n) names coding; "x-gzip" is "gzip" (RFC 9110 §8.4.1.3). */
static bool names_coding(const char *tok, size_t n, const char *coding)
{
    size_t len = strlen(coding);
    if (n == len && strncasecmp(tok, coding, n) == 0)
        return true;
    return strcasecmp(coding, "gzip") == 0 && n == 6 && strncasecmp(tok, "x-gzip", 6) == 0;
}

/* Parses the parameters after a coding (";" name "=" value …) from p; sets *q to the q
 * parameter (thousandths; 1000 when absent) or -1 when anything is malformed. Returns where the
 * element's parameters end. */
static const char *parameters(const char *p, int *q)
{
    *q = 1000;
    for (p = skip_ows(p); *p == ';'; p = skip_ows(p)) {
        const char *name = skip_ows(p + 1);
        p = skip_token(name);
        size_t namelen = (size_t)(p - name);
        p = skip_ows(p);
        if (namelen == 0 || *p != '=') {
            *q = -1;
            return p;
        }
        const char *value = skip_ows(p + 1);
        bool quoted = *value == '"';
        if (quoted) {
            for (p = value + 1; *p != '"'; p++) {
                if (*p == '\0' || (*p == '\\' && p[1] == '\0')) {
                    *q = -1;
                    return p;
                }
                if (*p == '\\')
                    p++;
            }
            p++;
        } else {
            p = skip_token(value);
        }
        if (namelen == 1 && (name[0] == 'q' || name[0] == 'Q')) {
            *q = quoted ? -1 : qvalue(value, (size_t)(p - value));
            if (*q < 0)
                return p;
        }
    }
    return p;
}

bool pe_http_accepts_encoding(const char *accept_encoding, const char *coding)
{
    if (!accept_encoding || !coding)
        return false;
    int named = -1, star = -1; /* best quality seen, -1 = not listed */
    const char *p = skip_separators(accept_encoding);
    while (*p) {
        const char *tok = p;
        p = skip_token(p);
        size_t toklen = (size_t)(p - tok);
        int q = -1;
        if (toklen > 0)
            p = parameters(p, &q);
        if (*p != '\0' && *p != ',') {
            q = -1; /* junk after the element: ignore all of it */
            while (*p != '\0' && *p != ',')
                p++;
        }
        if (q >= 0) {
            if (names_coding(tok, toklen, coding))
                named = q > named ? q : named;
            else if (toklen == 1 && tok[0] == '*')
                star = q > star ? q : star;
        }
        p = skip_separators(p);
    }
    return named >= 0 ? named > 0 : star > 0;
}

bool pe_http_none_match(const char *if_none_match, const char *etag)
{
    if (!if_none_match || !etag)
        return false;
    if (etag[0] == 'W' && etag[1] == '/')
        etag += 2;
    size_t etag_len = strlen(etag);
    const char *p = skip_ows(if_none_match);
    if (*p == '*')
        return *skip_ows(p + 1) == '\0';
    for (p = skip_separators(p); *p; p = skip_separators(p)) {
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"') {
            while (*p != '\0' && *p != ',')
                p++;
            continue;
        }
        const char *open = p;
        const char *close = strchr(open + 1, '"');
        if (!close)
            return false;
        p = close + 1;
        size_t n = (size_t)(p - open);
        if (n == etag_len && memcmp(open, etag, n) == 0)
            return true;
    }
    return false;
}
