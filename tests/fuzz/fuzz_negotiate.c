/*
 * fuzz_negotiate.c — libFuzzer target for the header parsers that decide how a static file is
 * answered: pe_http_accepts_encoding (Accept-Encoding) and pe_http_none_match (If-None-Match).
 *
 * Input: the header value (a NUL ends it early, as it would in a request). It is copied into
 * an exactly-sized heap buffer so a read past its end is an ASan error.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. Deterministic: the same input gives the same verdicts.
 *  2. gzip accepted ⇒ the header mentions "gzip" or "*" (case-insensitively); a header that
 *     starts with a "gzip" entry of quality 1 accepts gzip whatever follows.
 *  3. A match ⇒ the header contains the entity tag's opaque part or is "*"; a header that starts
 *     with the tag matches whatever follows the comma.
 *
 * Builds with clang -fsanitize=fuzzer, or with any C compiler plus replay_main.c.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/http.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_negotiate: invariant failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char ETAG[] = "\"0123456789abcdef\"";

static char *concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (!s)
        abort();
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';

    bool gzip = pe_http_accepts_encoding(text, "gzip");
    CHECK(gzip == pe_http_accepts_encoding(text, "gzip"));
    if (gzip)
        CHECK(strcasestr(text, "gzip") || strchr(text, '*'));
    (void)pe_http_accepts_encoding(text, "br");
    char *prefixed = concat("gzip, ", text);
    CHECK(pe_http_accepts_encoding(prefixed, "gzip"));
    free(prefixed);

    bool match = pe_http_none_match(text, ETAG);
    CHECK(match == pe_http_none_match(text, ETAG));
    if (match)
        CHECK(strstr(text, "0123456789abcdef") || strchr(text, '*'));
    (void)pe_http_none_match(text, text);
    prefixed = concat("\"0123456789abcdef\", ", text);
    CHECK(pe_http_none_match(prefixed, ETAG));
    free(prefixed);

    free(text);
    return 0;
}
