/*
 * test_utf8_json.c — UTF-8 validation (pe_utf8_valid) and the guarded JSON parser
 * (pe_json_parse, and pe_json_parse_arena for the ingest path).
 *
 * Invariants checked:
 *  1. pe_utf8_valid accepts exactly the shortest-form encodings of U+0000..U+10FFFF minus the
 *     surrogates, and never reads past n.
 *  2. pe_json_parse reads exactly len bytes (inputs live in unterminated heap copies, so ASan
 *     catches any over-read), returns 0 with a tree or PE_EINVAL with *out == NULL and a reason.
 *  3. Nesting beyond 64 levels is refused before cJSON recurses, so hostile depth is cheap.
 *  4. pe_json_parse_arena gives every input the same verdict and reason, and an equal tree
 *     (every case here runs through both), at any size and parse after parse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe_test.h"

/* ---- UTF-8 ----------------------------------------------------------------------------------- */

typedef struct {
    const char *bytes;
    size_t n;
    bool valid;
    const char *what;
} utf8_case_t;

#define U8(lit, ok, what)                                                                          \
    {                                                                                              \
        (lit), sizeof(lit) - 1, (ok), (what)                                                       \
    }

/* Checks s[0..n) from an exactly-sized heap copy so a read past n is an ASan error. */
static bool valid_exact(const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, s, n);
    bool ok = pe_utf8_valid(copy, n);
    free(copy);
    return ok;
}

static void test_utf8_table(void **state)
{
    (void)state;
    static const utf8_case_t cases[] = {
        U8("", true, "empty"),
        U8("plain ascii", true, "ascii"),
        U8("a\0b", true, "NUL is a valid code point"),
        U8("\x7f", true, "U+007F"),
        U8("\xc2\x80", true, "U+0080, smallest 2-byte"),
        U8("\xdf\xbf", true, "U+07FF, largest 2-byte"),
        U8("\xe0\xa0\x80", true, "U+0800, smallest 3-byte"),
        U8("\xed\x9f\xbf", true, "U+D7FF, just below the surrogates"),
        U8("\xee\x80\x80", true, "U+E000, just above the surrogates"),
        U8("\xef\xbf\xbf", true, "U+FFFF"),
        U8("\xf0\x90\x80\x80", true, "U+10000, smallest 4-byte"),
        U8("\xf0\x9f\x98\x80", true, "U+1F600 emoji"),
        U8("\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", true, "emoji with skin tone modifier"),
        U8("\xf4\x8f\xbf\xbf", true, "U+10FFFF, the last code point"),
        U8("caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac", true, "mixed"),

        U8("\xc0\x80", false, "overlong NUL (C0 80)"),
        U8("\xc1\xbf", false, "overlong 2-byte (C1 BF)"),
        U8("\xe0\x80\x80", false, "overlong 3-byte NUL (E0 80 80)"),
        U8("\xe0\x9f\xbf", false, "overlong U+07FF in 3 bytes"),
        U8("\xf0\x80\x80\x80", false, "overlong 4-byte NUL"),
        U8("\xf0\x8f\xbf\xbf", false, "overlong U+FFFF in 4 bytes"),
        U8("\xed\xa0\x80", false, "high surrogate U+D800 (ED A0 80)"),
        U8("\xed\xbf\xbf", false, "low surrogate U+DFFF"),
        U8("\xed\xa0\xbd\xed\xb8\x80", false, "CESU-8 surrogate pair"),
        U8("\xf4\x90\x80\x80", false, "U+110000 (F4 90 80 80)"),
        U8("\xf5\x80\x80\x80", false, "lead byte F5"),
        U8("\xf8\x88\x80\x80\x80", false, "5-byte form"),
        U8("\xfe", false, "FE"),
        U8("\xff", false, "FF"),
        U8("\x80", false, "lone continuation byte"),
        U8("a\xbf", false, "continuation byte after ASCII"),
        U8("\xc2", false, "truncated 2-byte"),
        U8("\xe2\x82", false, "truncated 3-byte"),
        U8("\xf0\x9f\x98", false, "truncated 4-byte"),
        U8("\xf0\x9f\x98"
           "a",
           false, "4-byte interrupted by ASCII"),
        U8("\xc2"
           "A",
           false, "lead byte followed by ASCII"),
        U8("\xe2\x28\xa1", false, "bad second byte"),
        U8("ok\xc3\xa9\xc3", false, "valid then truncated at the end"),
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        bool got = valid_exact(cases[i].bytes, cases[i].n);
        if (got != cases[i].valid)
            fail_msg("%s: pe_utf8_valid = %d, want %d", cases[i].what, got, cases[i].valid);
    }
}

static void test_utf8_respects_length(void **state)
{
    (void)state;
    /* A sequence cut by n is truncated even though the following byte would complete it. */
    assert_false(pe_utf8_valid("\xc3\xa9", 1));
    assert_false(pe_utf8_valid("\xf0\x9f\x98\x80", 3));
    /* Bytes past n are not looked at. */
    assert_true(pe_utf8_valid("abc\xff", 3));
    assert_true(pe_utf8_valid("\xff", 0));
}

/* Every code point: valid encodings pass, surrogates fail. */
static void test_utf8_all_code_points(void **state)
{
    (void)state;
    for (unsigned cp = 0; cp <= 0x10FFFF; cp++) {
        unsigned char b[4];
        size_t n;
        if (cp < 0x80) {
            b[0] = (unsigned char)cp;
            n = 1;
        } else if (cp < 0x800) {
            b[0] = (unsigned char)(0xC0 | (cp >> 6));
            b[1] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = (unsigned char)(0xE0 | (cp >> 12));
            b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            b[2] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            b[0] = (unsigned char)(0xF0 | (cp >> 18));
            b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            b[3] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        bool want = cp < 0xD800 || cp > 0xDFFF;
        if (pe_utf8_valid((const char *)b, n) != want)
            fail_msg("U+%04X: pe_utf8_valid = %d, want %d", cp, !want, want);
    }
}

/* ---- JSON ------------------------------------------------------------------------------------ */

/* Two trees print the same (cJSON_Compare is no use here: it misses duplicate keys, and on
 * nested objects it recurses both ways at every level, 2^64 calls for 64 levels). */
static bool same_tree(const cJSON *a, const cJSON *b)
{
    char *pa = pe_json_print(a), *pb = pe_json_print(b);
    assert_non_null(pa);
    assert_non_null(pb);
    bool same = strcmp(pa, pb) == 0;
    cJSON_free(pa);
    cJSON_free(pb);
    return same;
}

/* The arena parse of the same bytes: the same verdict and reason, and an equal tree. */
static void check_arena_agrees(const char *copy, size_t len, int rc, const cJSON *tree,
                               const char *err, size_t errlen)
{
    char arena_err[256] = "";
    pe_json_arena_t *arena = (pe_json_arena_t *)copy; /* must be overwritten */
    cJSON *arena_tree = (cJSON *)copy;
    size_t n = errlen < sizeof arena_err ? errlen : sizeof arena_err;
    int arena_rc = pe_json_parse_arena(copy, len, &arena, &arena_tree, arena_err, n);
    if (arena_rc != rc)
        fail_msg("[%.*s]: rc %d, arena parse rc %d", (int)(len < 80 ? len : 80), copy, rc,
                 arena_rc);
    if (rc != 0) {
        assert_null(arena);
        assert_null(arena_tree);
        assert_string_equal(arena_err, err);
        return;
    }
    assert_non_null(arena);
    if (!same_tree(tree, arena_tree))
        fail_msg("[%.*s]: the arena tree differs", (int)(len < 80 ? len : 80), copy);
    pe_json_arena_free(arena);
}

/* Parses text[0..len) from an unterminated heap copy, with pe_json_parse and, checked to agree,
 * with pe_json_parse_arena. Returns the rc; err gets the reason. */
static int parse_exact(const char *text, size_t len, cJSON **out, char *err, size_t errlen)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, text, len);
    err[0] = '\0';
    *out = (cJSON *)copy; /* must be overwritten with NULL or a tree */
    int rc = pe_json_parse(copy, len, out, err, errlen);
    check_arena_agrees(copy, len, rc, *out, err, errlen);
    free(copy);
    return rc;
}

static void expect_reject(const char *text, size_t len, const char *reason_part)
{
    char err[128];
    cJSON *j = NULL;
    int rc = parse_exact(text, len, &j, err, sizeof err);
    if (rc != PE_EINVAL)
        fail_msg("[%.*s] (%zu bytes): rc %d, want PE_EINVAL", (int)(len < 80 ? len : 80), text, len,
                 rc);
    assert_null(j);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    if (reason_part && !strstr(err, reason_part))
        fail_msg("[%.*s]: reason \"%s\" does not mention \"%s\"", (int)(len < 80 ? len : 80), text,
                 err, reason_part);
}

#define REJECT(lit, part) expect_reject((lit), sizeof(lit) - 1, (part))

static cJSON *expect_accept(const char *text, size_t len)
{
    char err[128];
    cJSON *j = NULL;
    int rc = parse_exact(text, len, &j, err, sizeof err);
    if (rc != 0)
        fail_msg("[%.*s] refused (rc %d): %s", (int)(len < 80 ? len : 80), text, rc, err);
    assert_non_null(j);
    return j;
}

static void test_json_valid_object(void **state)
{
    (void)state;
    static const char text[] =
        "{\"name\":\"caf\xc3\xa9\",\"n\":42,\"list\":[true,null,\"x\"],\"o\":{\"k\":-1.5}}";
    cJSON *j = expect_accept(text, sizeof text - 1);
    assert_true(cJSON_IsObject(j));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "name")),
                        "caf\xc3\xa9");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "n")->valueint, 42);
    cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "list");
    assert_int_equal(cJSON_GetArraySize(list), 3);
    assert_true(cJSON_IsTrue(cJSON_GetArrayItem(list, 0)));
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(list, 1)));
    cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "o");
    assert_true(cJSON_GetObjectItemCaseSensitive(o, "k")->valuedouble == -1.5);

    char *printed = pe_json_print(j);
    assert_non_null(printed);
    assert_string_equal(printed, text);
    free(printed);
    cJSON_Delete(j);

    /* Scalars and empty containers are values too. */
    static const char *const scalars[] = {"0", "\"\"", "[]", "{}", "true", "null", "-1e3"};
    for (size_t i = 0; i < PE_ARRAY_LEN(scalars); i++)
        cJSON_Delete(expect_accept(scalars[i], strlen(scalars[i])));
}

static void test_json_whitespace_and_trailing(void **state)
{
    (void)state;
    cJSON_Delete(expect_accept("{} \t\r\n", 6));
    cJSON_Delete(expect_accept(" \n{\"a\":1}\n", 10));
    cJSON_Delete(expect_accept("[1] ", 4));

    /* Only len bytes count: garbage after len is invisible. */
    cJSON_Delete(expect_accept("{}garbage", 2));

    /* Trailing garbage names the byte where it starts. */
    REJECT("{} x", "byte 3");
    REJECT("{}x", "byte 2");
    REJECT("{}{}", "byte 2");
    REJECT("1 2", "byte 2");
    REJECT("[1]]", "byte 3");
    REJECT("\"a\",", "byte 3");
}

static void test_json_rejects(void **state)
{
    (void)state;
    /* Empty. */
    expect_reject("", 0, NULL);
    REJECT(" ", NULL);
    REJECT("\n\t ", NULL);

    /* NUL bytes, inside strings, between tokens and at the end. */
    REJECT("{\"a\":\"\0\"}", "NUL");
    REJECT("{\"a\":1}\0", "NUL");
    REJECT("\0{}", "NUL");

    /* Invalid UTF-8, even inside a string. */
    REJECT("{\"a\":\"\xff\"}", "UTF-8");
    REJECT("[\"\xc0\x80\"]", "UTF-8");
    REJECT("[\"\xed\xa0\x80\"]", "UTF-8");
    REJECT("[\"\xf4\x90\x80\x80\"]", "UTF-8");
    REJECT("[\"\xe2\x82\"]", "UTF-8");

    /* Malformed JSON mentions where it went wrong. */
    REJECT("{", "byte");
    REJECT("{\"a\":}", "byte");
    REJECT("[1,]", "byte");
    REJECT("{'a':1}", "byte");
    REJECT("nul", "byte");
    REJECT("\"unterminated", "byte");

    /* An escaped NUL would cut cJSON's C string short; an escaped backslash before u0000 is
     * fine. */
    REJECT("{\"a\":\"x\\u0000y\"}", "u0000");
    cJSON_Delete(expect_accept("[\"\\\\u0000\"]", 11));

    /* Only space, tab, LF and CR are whitespace between tokens (RFC 8259), at either end. */
    REJECT("\x01{}", "control byte");
    REJECT("\v[1]", "control byte");
    REJECT("[1,\x0c"
           "2]",
           "control byte");
    REJECT("{\"a\":1}\v", NULL);
}

/* A byte offset in the message is a number, and the malformed-input offset lies inside the
 * input. */
static void test_json_error_offset(void **state)
{
    (void)state;
    static const char *const bad[] = {"{\"a\":}", "[1,2,,3]", "{\"a\" 1}", "[tru]", "{} x"};
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        char err[128];
        cJSON *j = NULL;
        size_t len = strlen(bad[i]);
        assert_int_equal(parse_exact(bad[i], len, &j, err, sizeof err), PE_EINVAL);
        const char *p = strstr(err, "byte ");
        if (!p) {
            fail_msg("[%s]: \"%s\" names no byte offset", bad[i], err);
            return;
        }
        char *end = NULL;
        unsigned long at = strtoul(p + 5, &end, 10);
        assert_true(end > p + 5);
        assert_true(at <= len);
    }

    /* A short err buffer is truncated, not overrun. */
    char small[8];
    cJSON *j = NULL;
    assert_int_equal(pe_json_parse("{\"a\":}", 6, &j, small, sizeof small), PE_EINVAL);
    assert_true(strlen(small) < sizeof small);
}

static char *nested(const char *open, const char *close, int depth, const char *inner)
{
    pe_buf_t b = PE_BUF_INIT;
    for (int i = 0; i < depth; i++)
        assert_int_equal(pe_buf_puts(&b, open), 0);
    assert_int_equal(pe_buf_puts(&b, inner), 0);
    for (int i = 0; i < depth; i++)
        assert_int_equal(pe_buf_puts(&b, close), 0);
    return pe_buf_steal(&b);
}

static void test_json_depth_limit(void **state)
{
    (void)state;
    struct {
        const char *open, *close, *inner;
    } shapes[] = {
        {"[", "]", "1"},
        {"[", "]", ""},
        {"{\"a\":", "}", "0"},
        {"[{\"k\":", "}]", "null"}, /* two levels per step */
    };
    for (size_t s = 0; s < PE_ARRAY_LEN(shapes); s++) {
        int per = s == 3 ? 2 : 1;
        int ok_depth = 64 / per;
        char *ok = nested(shapes[s].open, shapes[s].close, ok_depth, shapes[s].inner);
        cJSON *j = expect_accept(ok, strlen(ok));
        /* The innermost container really is at depth 64. */
        int depth = 0;
        for (cJSON *c = j; c && (cJSON_IsArray(c) || cJSON_IsObject(c)); c = c->child)
            depth++;
        assert_int_equal(depth, 64);
        cJSON_Delete(j);
        free(ok);

        char *deep = nested(shapes[s].open, shapes[s].close, ok_depth + 1, shapes[s].inner);
        expect_reject(deep, strlen(deep), "64");
        free(deep);
    }

    /* Brackets inside strings are text, not nesting. */
    char *inner = nested("[", "]", 63, "\"[[[[[[[[[[[[[[[[[[[[\\\"{{{{{{{{{{{{{{{{{{{{\"");
    cJSON_Delete(expect_accept(inner, strlen(inner)));
    free(inner);
}

static void test_json_hostile_depth_is_fast(void **state)
{
    (void)state;
    enum { N = 100000 };
    char *open = malloc(N);
    assert_non_null(open);
    memset(open, '[', N);
    int64_t t0 = pe_now_mono_us();
    expect_reject(open, N, "64");
    free(open);

    /* Balanced, so only the depth check can refuse it. */
    char *balanced = malloc(2 * (size_t)N);
    assert_non_null(balanced);
    memset(balanced, '[', N);
    memset(balanced + N, ']', N);
    expect_reject(balanced, 2 * (size_t)N, "64");
    memset(balanced, '{', N);
    memset(balanced + N, '}', N);
    expect_reject(balanced, 2 * (size_t)N, "64");
    free(balanced);
    int64_t elapsed = pe_now_mono_us() - t0;
    /* A linear scan of 500 KB; generous for sanitizer builds on slow machines. */
    if (elapsed > 2000000)
        fail_msg("refusing deep nesting took %lld us", (long long)elapsed);
}

/* An arena parse of a batch bigger than its first block (the arena grows block by block), next
 * to ordinary cJSON use on the same thread, parse after parse (a thread reuses its blocks):
 * every tree equals the plain parse's, and the ordinary trees are untouched by the arena's. */
static void test_json_arena_large_and_reused(void **state)
{
    (void)state;
    pe_buf_t b = PE_BUF_INIT;
    for (int round = 0; round < 4; round++) {
        /* small, large, then dense (a node of 64 bytes per 2 bytes of text: the first block,
         * sized from the text, is soon full and more follow), then small again (the spare) */
        pe_buf_reset(&b);
        pe_buf_puts(&b, "{\"events\":[");
        int n = round == 1 ? 5000 : 300;
        for (int i = 0; i < n; i++)
            pe_buf_printf(&b, "%s{\"i\":%d,\"s\":\"caf\\u00e9 %d\",\"a\":[1.5,true,null,{}]}",
                          i ? "," : "", i, i);
        pe_buf_puts(&b, "],\"dense\":[0");
        for (int i = 1; round == 2 && i < 50000; i++)
            pe_buf_puts(&b, ",0");
        pe_buf_puts(&b, "]}");
        cJSON *ordinary = cJSON_CreateObject(); /* malloc'd while no arena parse runs */
        assert_non_null(cJSON_AddStringToObject(ordinary, "kept", "yes"));
        char err[128];
        cJSON *plain = NULL, *tree = NULL;
        pe_json_arena_t *arena = NULL;
        assert_int_equal(pe_json_parse(b.data, b.len, &plain, err, sizeof err), 0);
        assert_int_equal(pe_json_parse_arena(b.data, b.len, &arena, &tree, err, sizeof err), 0);
        assert_true(same_tree(plain, tree));
        const cJSON *events = cJSON_GetObjectItemCaseSensitive(tree, "events");
        assert_int_equal(cJSON_GetArraySize(events), n);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tree, "dense")),
                         round == 2 ? 50000 : 1);
        const cJSON *last = cJSON_GetArrayItem(events, n - 1);
        char want[32];
        snprintf(want, sizeof want, "caf\xc3\xa9 %d", n - 1);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(last, "s")->valuestring, want);
        /* cJSON allocations after the parse are ordinary again: printing, deleting */
        char *printed = pe_json_print(tree);
        assert_non_null(printed);
        cJSON_free(printed);
        pe_json_arena_free(arena);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(ordinary, "kept")->valuestring, "yes");
        cJSON_Delete(ordinary);
        cJSON_Delete(plain);
    }
    pe_buf_free(&b);
    pe_json_arena_free(NULL); /* like free(NULL) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_table),
        cmocka_unit_test(test_utf8_respects_length),
        cmocka_unit_test(test_utf8_all_code_points),
        cmocka_unit_test(test_json_valid_object),
        cmocka_unit_test(test_json_whitespace_and_trailing),
        cmocka_unit_test(test_json_rejects),
        cmocka_unit_test(test_json_error_offset),
        cmocka_unit_test(test_json_depth_limit),
        cmocka_unit_test(test_json_hostile_depth_is_fast),
        cmocka_unit_test(test_json_arena_large_and_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
