/*
 * test_buf.c — the growable buffer (pe_buf_*) and its JSON string escaper.
 *
 * Invariants checked after every operation:
 *  1. data == NULL exactly when len == cap == 0; otherwise len < cap and data[len] == '\0'.
 *  2. The contents equal a reference built independently, byte for byte.
 *  3. pe_buf_json_string always produces a quoted, valid-UTF-8 JSON string with no raw control
 *     character, and for valid input cJSON reads back the exact bytes that went in.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe_test.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static void check_invariants(const pe_buf_t *b)
{
    if (b->data == NULL) {
        assert_int_equal(b->len, 0);
        assert_int_equal(b->cap, 0);
        return;
    }
    assert_true(b->len < b->cap);
    assert_int_equal(b->data[b->len], '\0');
}

static void check_contents(const pe_buf_t *b, const void *want, size_t n)
{
    check_invariants(b);
    if (b->len != n)
        fail_msg("buffer holds %zu bytes, want %zu", b->len, n);
    if (n && memcmp(b->data, want, n) != 0)
        fail_msg("buffer contents differ from the reference (%zu bytes)", n);
}

/* A small deterministic generator so failures reproduce. */
static uint32_t next_rand(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

/* ---- append, puts, printf -------------------------------------------------------------------- */

static void test_init_is_empty(void **state)
{
    (void)state;
    pe_buf_t b = PE_BUF_INIT;
    check_invariants(&b);
    assert_null(b.data);

    /* Appending nothing still yields a valid, empty C string. */
    assert_int_equal(pe_buf_append(&b, "", 0), 0);
    check_contents(&b, "", 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    pe_buf_free(&b);
}

static void test_append_growth_many_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {1,    2,    7,    62,    63,    64,    65,    127,  128,
                                   129,  255,  256,  257,   511,   1000,  1023,  1024, 1025,
                                   4095, 4096, 4097, 10000, 65535, 65536, 100003};
    size_t max = 100003;
    unsigned char *ref = malloc(max * 3);
    assert_non_null(ref);
    uint32_t seed = 12345;
    for (size_t i = 0; i < max * 3; i++)
        ref[i] = (unsigned char)next_rand(&seed); /* includes NUL bytes: append is binary-safe */

    for (size_t s = 0; s < PE_ARRAY_LEN(sizes); s++) {
        size_t n = sizes[s];

        /* One append of n bytes. */
        pe_buf_t b = PE_BUF_INIT;
        assert_int_equal(pe_buf_append(&b, ref, n), 0);
        check_contents(&b, ref, n);
        pe_buf_free(&b);

        /* n bytes in uneven chunks, checking after every chunk. */
        size_t off = 0, chunk = 1;
        while (off < n) {
            size_t c = chunk < n - off ? chunk : n - off;
            assert_int_equal(pe_buf_append(&b, ref + off, c), 0);
            off += c;
            check_contents(&b, ref, off);
            chunk = chunk * 3 + 1;
            if (chunk > 5000)
                chunk = 1;
        }
        check_contents(&b, ref, n);

        /* Appending on top of existing contents keeps them. */
        assert_int_equal(pe_buf_append(&b, ref + n, n), 0);
        assert_int_equal(pe_buf_append(&b, ref + 2 * n, n), 0);
        check_contents(&b, ref, 3 * n);
        pe_buf_free(&b);
    }
    free(ref);
}

static void test_puts(void **state)
{
    (void)state;
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_buf_puts(&b, "hello"), 0);
    assert_int_equal(pe_buf_puts(&b, ""), 0);
    assert_int_equal(pe_buf_puts(&b, ", world"), 0);
    check_contents(&b, "hello, world", 12);
    assert_string_equal(b.data, "hello, world");

    /* Many puts across several reallocations. */
    pe_buf_t ref = PE_BUF_INIT;
    pe_buf_reset(&b);
    for (int i = 0; i < 2000; i++) {
        const char *word = (i % 3 == 0) ? "abc" : (i % 3 == 1) ? "de" : "fghij";
        assert_int_equal(pe_buf_puts(&b, word), 0);
        assert_int_equal(pe_buf_append(&ref, word, strlen(word)), 0);
    }
    check_contents(&b, ref.data, ref.len);
    assert_int_equal(strlen(b.data), b.len);
    pe_buf_free(&ref);
    pe_buf_free(&b);
}

static void test_printf_small(void **state)
{
    (void)state;
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_buf_printf(&b, "%d-%s-%c", 42, "x", 'y'), 0);
    assert_string_equal(b.data, "42-x-y");
    assert_int_equal(b.len, 6);
    assert_int_equal(pe_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 6);
    assert_int_equal(pe_buf_printf(&b, "|%05u|%.2f", 7u, 1.5), 0);
    assert_string_equal(b.data, "42-x-y|00007|1.50");
    check_invariants(&b);
    pe_buf_free(&b);
}

/* printf output of every length around the 256-byte stack buffer, on empty and non-empty
 * buffers, compared with snprintf. */
static void test_printf_sizes(void **state)
{
    (void)state;
    static const char prefix[] = "prefix:";
    size_t lens[] = {0, 1, 100, 250, 254, 255, 256, 257, 258, 300, 511, 512, 1000, 4096, 70000};
    for (size_t k = 0; k < PE_ARRAY_LEN(lens); k++) {
        size_t n = lens[k];
        char *arg = malloc(n + 1);
        assert_non_null(arg);
        for (size_t i = 0; i < n; i++)
            arg[i] = (char)('a' + (i * 7) % 26);
        arg[n] = '\0';

        /* Plain %s of n bytes on an empty buffer. */
        pe_buf_t b = PE_BUF_INIT;
        assert_int_equal(pe_buf_printf(&b, "%s", arg), 0);
        check_contents(&b, arg, n);

        /* Format with a number after the long argument, on a buffer that already has text. */
        pe_buf_t c = PE_BUF_INIT;
        assert_int_equal(pe_buf_puts(&c, prefix), 0);
        assert_int_equal(pe_buf_printf(&c, "[%s]%d", arg, 12345), 0);
        size_t want_len = strlen(prefix) + n + 2 + 5;
        char *want = malloc(want_len + 1);
        assert_non_null(want);
        int w = snprintf(want, want_len + 1, "%s[%s]%d", prefix, arg, 12345);
        assert_int_equal((size_t)w, want_len);
        check_contents(&c, want, want_len);

        /* A width field crossing the stack buffer size. */
        pe_buf_reset(&b);
        assert_int_equal(pe_buf_printf(&b, "%*d", (int)n + 1, 7), 0);
        assert_int_equal(b.len, n + 1);
        assert_int_equal(b.data[n], '7');
        for (size_t i = 0; i < n; i++)
            assert_int_equal(b.data[i], ' ');
        check_invariants(&b);

        free(want);
        free(arg);
        pe_buf_free(&c);
        pe_buf_free(&b);
    }
}

/* Repeated long printfs: each one goes through the big path and must append, not overwrite. */
static void test_printf_repeated_long(void **state)
{
    (void)state;
    pe_buf_t b = PE_BUF_INIT, ref = PE_BUF_INIT;
    char chunk[400];
    for (int i = 0; i < 50; i++) {
        memset(chunk, 'A' + i % 26, sizeof chunk - 1);
        chunk[sizeof chunk - 1] = '\0';
        assert_int_equal(pe_buf_printf(&b, "%d:%s;", i, chunk), 0);
        char head[16];
        int hl = snprintf(head, sizeof head, "%d:", i);
        assert_int_equal(pe_buf_append(&ref, head, (size_t)hl), 0);
        assert_int_equal(pe_buf_append(&ref, chunk, sizeof chunk - 1), 0);
        assert_int_equal(pe_buf_append(&ref, ";", 1), 0);
        check_contents(&b, ref.data, ref.len);
    }
    pe_buf_free(&ref);
    pe_buf_free(&b);
}

/* ---- reset, steal, free -------------------------------------------------------------------- */

static void test_reset(void **state)
{
    (void)state;
    pe_buf_t b = PE_BUF_INIT;
    pe_buf_reset(&b); /* on an empty buffer: nothing to do, no crash */
    check_invariants(&b);
    assert_null(b.data);

    char big[3000];
    memset(big, 'z', sizeof big);
    assert_int_equal(pe_buf_append(&b, big, sizeof big), 0);
    char *data = b.data;
    size_t cap = b.cap;
    pe_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.data, data); /* the allocation is kept */
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.data, "");
    check_invariants(&b);

    /* Reused after reset: no stale bytes show through. */
    assert_int_equal(pe_buf_puts(&b, "new"), 0);
    check_contents(&b, "new", 3);
    assert_ptr_equal(b.data, data); /* fits, no reallocation */
    pe_buf_free(&b);
}

static void test_steal(void **state)
{
    (void)state;
    pe_buf_t b = PE_BUF_INIT;
    assert_null(pe_buf_steal(&b)); /* nothing allocated yet */
    check_invariants(&b);

    assert_int_equal(pe_buf_printf(&b, "owned %d", 1), 0);
    char *p = pe_buf_steal(&b);
    assert_non_null(p);
    assert_string_equal(p, "owned 1");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);

    /* The buffer is reusable and does not share the stolen allocation. */
    assert_int_equal(pe_buf_puts(&b, "second"), 0);
    assert_ptr_not_equal(b.data, p);
    assert_string_equal(p, "owned 1");
    check_contents(&b, "second", 6);
    free(p);
    pe_buf_free(&b);
}

static void test_free_is_null_safe(void **state)
{
    (void)state;
    pe_buf_free(NULL);

    pe_buf_t b = PE_BUF_INIT;
    pe_buf_free(&b); /* never allocated */
    check_invariants(&b);

    assert_int_equal(pe_buf_puts(&b, "x"), 0);
    pe_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    pe_buf_free(&b); /* twice */

    /* Reusable after free. */
    assert_int_equal(pe_buf_puts(&b, "again"), 0);
    check_contents(&b, "again", 5);
    pe_buf_free(&b);
}

/* ---- JSON string escaping -------------------------------------------------------------------- */

static void expect_json(const char *in, size_t n, const char *want)
{
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_buf_json_string(&b, in, n), 0);
    check_invariants(&b);
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fail_msg("escaped %zu bytes as [%s], want [%s]", n, b.data, want);
    pe_buf_free(&b);
}

#define EXPECT_JSON(lit, want) expect_json((lit), sizeof(lit) - 1, (want))

static void test_json_string_table(void **state)
{
    (void)state;
    EXPECT_JSON("", "\"\"");
    EXPECT_JSON("plain text", "\"plain text\"");
    EXPECT_JSON("say \"hi\"", "\"say \\\"hi\\\"\"");
    EXPECT_JSON("C:\\dir\\", "\"C:\\\\dir\\\\\"");
    EXPECT_JSON("a\nb\rc\td", "\"a\\nb\\rc\\td\"");
    /* Other control characters use \u00XX with lower-case hex. */
    EXPECT_JSON("\x01", "\"\\u0001\"");
    EXPECT_JSON("\b\f", "\"\\u0008\\u000c\"");
    EXPECT_JSON("\x1f", "\"\\u001f\"");
    EXPECT_JSON("\x1b[0m", "\"\\u001b[0m\"");
    /* DEL and '/' are legal raw in JSON. */
    EXPECT_JSON("\x7f/", "\"\x7f/\"");
    /* Valid multi-byte UTF-8 is kept as is. */
    EXPECT_JSON("caf\xc3\xa9", "\"caf\xc3\xa9\"");
    EXPECT_JSON("\xe2\x82\xac 5", "\"\xe2\x82\xac 5\"");
    EXPECT_JSON("\xef\xbf\xbf", "\"\xef\xbf\xbf\"");
    EXPECT_JSON("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");
    EXPECT_JSON("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");
    /* Each invalid byte becomes U+FFFD. */
    EXPECT_JSON("\xff", "\"\xef\xbf\xbd\"");
    EXPECT_JSON("a\x80"
                "b",
                "\"a\xef\xbf\xbd"
                "b\"");
    EXPECT_JSON("\xc0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\"");                 /* overlong NUL */
    EXPECT_JSON("\xe2\x82", "\"\xef\xbf\xbd\xef\xbf\xbd\"");                 /* truncated */
    EXPECT_JSON("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
    EXPECT_JSON("\xf4\x90\x80\x80",
                "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* > U+10FFFF */
    EXPECT_JSON("\xc3"
                "A",
                "\"\xef\xbf\xbd"
                "A\""); /* lead byte without continuation */
    /* Embedded NUL with an explicit length. */
    EXPECT_JSON("a\0b", "\"a\\u0000b\"");
    EXPECT_JSON("\0", "\"\\u0000\"");
}

static void test_json_string_appends(void **state)
{
    (void)state;
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_buf_puts(&b, "{\"k\":"), 0);
    assert_int_equal(pe_buf_json_string(&b, "v\"1", 3), 0);
    assert_int_equal(pe_buf_puts(&b, ",\"e\":"), 0);
    assert_int_equal(pe_buf_json_string(&b, "", 0), 0);
    assert_int_equal(pe_buf_puts(&b, "}"), 0);
    assert_string_equal(b.data, "{\"k\":\"v\\\"1\",\"e\":\"\"}");
    check_invariants(&b);

    /* Only n bytes are read: the rest of the string is not escaped. */
    pe_buf_reset(&b);
    assert_int_equal(pe_buf_json_string(&b, "abc\"def", 3), 0);
    assert_string_equal(b.data, "\"abc\"");
    pe_buf_free(&b);
}

/* Escapes in[0..n), checks the output is a well-formed JSON string and, when the input is valid
 * UTF-8 without NUL, that cJSON reads back exactly the input. */
static void check_roundtrip(const char *in, size_t n)
{
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_buf_json_string(&b, in, n), 0);
    check_invariants(&b);
    assert_true(b.len >= 2);
    assert_int_equal(b.data[0], '"');
    assert_int_equal(b.data[b.len - 1], '"');
    assert_true(pe_utf8_valid(b.data, b.len));
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.data[i] < 0x20)
            fail_msg("raw control byte 0x%02x at %zu of the output", (unsigned char)b.data[i], i);

    cJSON *j = cJSON_ParseWithLength(b.data, b.len);
    if (!j)
        fail_msg("cJSON cannot parse the output [%s]", b.data);
    assert_true(cJSON_IsString(j));
    if (pe_utf8_valid(in, n) && !memchr(in, '\0', n)) {
        const char *got = cJSON_GetStringValue(j);
        if (strlen(got) != n || memcmp(got, in, n) != 0)
            fail_msg("round trip of %zu bytes changed the string: [%s]", n, got);
    }
    cJSON_Delete(j);
    pe_buf_free(&b);
}

static void test_json_string_roundtrip(void **state)
{
    (void)state;
    /* Every byte 0x01..0x7F, in one string. */
    char ascii[127];
    for (int i = 0; i < 127; i++)
        ascii[i] = (char)(i + 1);
    check_roundtrip(ascii, sizeof ascii);

    static const char *const samples[] = {
        "",
        "\"\\\"\\\\",
        "line\nline\r\n\ttab",
        "caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x98\x80",
        "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
        "</script><!--",
        "\\u0000 is text here",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(samples); i++)
        check_roundtrip(samples[i], strlen(samples[i]));

    /* Random valid strings mixing ASCII controls and multi-byte characters. */
    static const char *const pieces[] = {
        "a",    "\"",   "\\",       "\n",           "\x01",
        "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
        "/",    " ",    "\t",       "\r",           "\b",
        "\f"};
    uint32_t seed = 7;
    for (int round = 0; round < 300; round++) {
        pe_buf_t s = PE_BUF_INIT;
        int count = (int)(next_rand(&seed) % 60);
        for (int k = 0; k < count; k++) {
            const char *p = pieces[next_rand(&seed) % PE_ARRAY_LEN(pieces)];
            assert_int_equal(pe_buf_puts(&s, p), 0);
        }
        check_roundtrip(s.data ? s.data : "", s.len);
        pe_buf_free(&s);
    }

    /* Random bytes, NULs and invalid sequences included: still well-formed output. */
    for (int round = 0; round < 300; round++) {
        unsigned char raw[64];
        size_t n = next_rand(&seed) % sizeof raw;
        for (size_t k = 0; k < n; k++)
            raw[k] = (unsigned char)next_rand(&seed);
        check_roundtrip((const char *)raw, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_empty),
        cmocka_unit_test(test_append_growth_many_sizes),
        cmocka_unit_test(test_puts),
        cmocka_unit_test(test_printf_small),
        cmocka_unit_test(test_printf_sizes),
        cmocka_unit_test(test_printf_repeated_long),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_free_is_null_safe),
        cmocka_unit_test(test_json_string_table),
        cmocka_unit_test(test_json_string_appends),
        cmocka_unit_test(test_json_string_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
