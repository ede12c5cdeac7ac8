/*
 * test_negotiate.c — Accept-Encoding and If-None-Match as the static files read them
 * (src/http/negotiate.c).
 *
 * Invariants checked:
 *  1. gzip is accepted only with a quality above 0: its own entry decides (q=0 refuses it even
 *     beside "*", in either order), else "*"; no header, an empty header or "identity" accept
 *     nothing but identity; case and optional whitespace do not matter; x-gzip is gzip.
 *  2. A malformed q ignores its entry (and only that entry).
 *  3. If-None-Match matches by weak comparison, "*" matches anything, commas inside an entity
 *     tag do not split it, and anything malformed matches nothing.
 *  4. Inputs are read within their bounds (exactly-sized heap copies, so ASan catches over-reads).
 */
#include <stdlib.h>
#include <string.h>

#include "pe/http.h"
#include "pe_test.h"

static bool accepts(const char *header, const char *coding)
{
    if (!header)
        return pe_http_accepts_encoding(NULL, coding);
    size_t n = strlen(header);
    char *copy = malloc(n + 1);
    assert_non_null(copy);
    memcpy(copy, header, n + 1);
    bool yes = pe_http_accepts_encoding(copy, coding);
    free(copy);
    return yes;
}

static bool matches(const char *header, const char *etag)
{
    if (!header)
        return pe_http_none_match(NULL, etag);
    size_t n = strlen(header);
    char *copy = malloc(n + 1);
    assert_non_null(copy);
    memcpy(copy, header, n + 1);
    bool yes = pe_http_none_match(copy, etag);
    free(copy);
    return yes;
}

static void test_accept_encoding(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        bool gzip;
    } cases[] = {
        {NULL, false},
        {"", false},
        {"identity", false},
        {"gzip", true},
        {"GZIP", true},
        {"x-gzip", true},
        {"gzip, deflate, br, zstd", true}, /* what chromium sends */
        {"br", false},
        {"deflate, br", false},
        {"gzip;q=0", false},
        {"gzip; q=0", false},
        {"gzip ;Q=0.000", false},
        {"gzip;q=0, *", false},
        {"*, gzip;q=0", false},
        {"*;q=0, gzip", true},
        {"*", true},
        {"*;q=0", false},
        {"*;q=0.001", true},
        {"gzip;q=0.5, identity;q=1", true},
        {"gzip;q=1.0", true},
        {"gzip;q=1.000", true},
        {"gzip;q=1.", true},
        {"gzip;q=0.", false},
        {"gzip;q=0.0001", false}, /* four decimals: malformed, entry ignored */
        {"gzip;q=1.5", false},
        {"gzip;q=2", false},
        {"gzip;q=", false},
        {"gzip;q", false},
        {"gzip;q=abc", false},
        {"gzip;q=\"1\"", false},
        {"gzip;q=abc, *", true},  /* the malformed entry is ignored, "*" decides */
        {"gzip;q=0, gzip", true}, /* listed twice: the higher quality wins */
        {"gzipx", false},
        {"gzip2", false},
        {"xgzip", false},
        {"gz", false},
        {",, gzip ,", true},
        {"  \tgzip\t ", true},
        {"br;level=\"a,b\", gzip", true},
        {"br;level=\"a, gzip", false}, /* an unterminated quoted string swallows the rest */
        {"gzip junk", false},
        {"gzip junk, deflate", false},
        {"deflate, gzip junk", false},
        {";q=1, gzip", true},
        {"gzip;;q=1", false},
        {"gzip;foo=bar;q=0.8", true},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        bool got = accepts(cases[i].header, "gzip");
        if (got != cases[i].gzip)
            fail_msg("Accept-Encoding: %s%s%s → gzip %s, want %s", cases[i].header ? "'" : "",
                     cases[i].header ? cases[i].header : "(absent)", cases[i].header ? "'" : "",
                     got ? "accepted" : "refused", cases[i].gzip ? "accepted" : "refused");
    }
    assert_true(accepts("br, gzip", "br"));
    assert_false(accepts("x-br", "br"));
    assert_false(accepts("gzip", NULL));
}

static void test_if_none_match(void **state)
{
    (void)state;
    static const char etag[] = "\"0123456789abcdef\"";
    static const struct {
        const char *header;
        bool match;
    } cases[] = {
        {NULL, false},
        {"", false},
        {"\"0123456789abcdef\"", true},
        {"W/\"0123456789abcdef\"", true},
        {"\"0123456789abcdef-gz\"", false},
        {"\"other\", \"0123456789abcdef\"", true},
        {"\"other\",W/\"0123456789abcdef\" ", true},
        {"*", true},
        {" * ", true},
        {"*, \"x\"", false},
        {"0123456789abcdef", false},
        {"\"0123456789abcdef", false},
        {"\"a,\"0123456789abcdef\"\"", false}, /* a comma inside a tag does not split it */
        {"\"a,b\", \"0123456789abcdef\"", true},
        {"junk, \"0123456789abcdef\"", true},
        {"W/", false},
        {"W/junk", false},
        {"\"0123456789ABCDEF\"", false}, /* opaque tags compare byte for byte */
        {"\"\"", false},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        bool got = matches(cases[i].header, etag);
        if (got != cases[i].match)
            fail_msg("If-None-Match: %s → %s, want %s",
                     cases[i].header ? cases[i].header : "(absent)", got ? "match" : "no match",
                     cases[i].match ? "match" : "no match");
    }
    assert_true(matches("\"abc\"", "W/\"abc\""));
    assert_false(matches("\"abc\"", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_encoding),
        cmocka_unit_test(test_if_none_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
