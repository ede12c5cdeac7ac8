/*
 * test_query.c — query-string parsing (pe_query_parse / _get / _free).
 *
 * Invariants checked:
 *  1. Names and values are percent-decoded with '+' as a space, never contain NUL and are valid
 *     UTF-8; a query that cannot be decoded so is PE_EINVAL as a whole.
 *  2. At most PE_QUERY_MAX_PARAMS pairs; empty pairs do not count.
 *  3. The query is length-counted (inputs live in exactly-sized heap copies, so ASan catches
 *     over-reads), and pe_query_free releases everything whatever parse returned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/http.h"
#include "pe_test.h"

/* Parses qs[0..len) from an exactly-sized heap copy. */
static int parse_n(const char *qs, size_t len, pe_query_t *q)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, qs, len);
    int rc = pe_query_parse(copy, len, q);
    /* The parsed query must not point into the caller's buffer. */
    free(copy);
    return rc;
}

static int parse(const char *qs, pe_query_t *q)
{
    return parse_n(qs, strlen(qs), q);
}

static void check_well_formed(const pe_query_t *q)
{
    assert_true(q->count <= PE_QUERY_MAX_PARAMS);
    for (size_t i = 0; i < q->count; i++) {
        assert_non_null(q->names[i]);
        assert_non_null(q->values[i]);
        assert_true(pe_utf8_valid(q->names[i], strlen(q->names[i])));
        assert_true(pe_utf8_valid(q->values[i], strlen(q->values[i])));
    }
}

static void test_basic(void **state)
{
    (void)state;
    pe_query_t q;
    assert_int_equal(parse("a=1&b=x%20y", &q), 0);
    check_well_formed(&q);
    assert_int_equal(q.count, 2);
    assert_string_equal(q.names[0], "a");
    assert_string_equal(q.values[0], "1");
    assert_string_equal(q.names[1], "b");
    assert_string_equal(q.values[1], "x y");
    assert_string_equal(pe_query_get(&q, "a"), "1");
    assert_string_equal(pe_query_get(&q, "b"), "x y");
    assert_null(pe_query_get(&q, "c"));
    assert_null(pe_query_get(&q, "A")); /* names are case-sensitive */
    assert_null(pe_query_get(&q, ""));
    pe_query_free(&q);
}

static void test_decoding(void **state)
{
    (void)state;
    pe_query_t q;
    assert_int_equal(parse("q=a+b+c&first+name=J%C3%B6rg&plus=%2B&eq=1%3D2&amp=%26", &q), 0);
    check_well_formed(&q);
    assert_int_equal(q.count, 5);
    assert_string_equal(pe_query_get(&q, "q"), "a b c");
    assert_string_equal(pe_query_get(&q, "first name"), "J\xc3\xb6rg");
    assert_string_equal(pe_query_get(&q, "plus"), "+");
    assert_string_equal(pe_query_get(&q, "eq"), "1=2");
    assert_string_equal(pe_query_get(&q, "amp"), "&");
    pe_query_free(&q);

    /* Only the first '=' splits; raw UTF-8 is fine; an encoded name is decoded. */
    assert_int_equal(parse("expr=a=b&caf\xc3\xa9=1&%6Bey=v", &q), 0);
    assert_string_equal(pe_query_get(&q, "expr"), "a=b");
    assert_string_equal(pe_query_get(&q, "caf\xc3\xa9"), "1");
    assert_string_equal(pe_query_get(&q, "key"), "v");
    pe_query_free(&q);
}

static void test_missing_values_and_empty_pairs(void **state)
{
    (void)state;
    pe_query_t q;
    assert_int_equal(parse("flag&x=1&empty=&=v", &q), 0);
    check_well_formed(&q);
    assert_int_equal(q.count, 4);
    assert_string_equal(pe_query_get(&q, "flag"), "");
    assert_string_equal(pe_query_get(&q, "x"), "1");
    assert_string_equal(pe_query_get(&q, "empty"), "");
    assert_string_equal(pe_query_get(&q, ""), "v");
    pe_query_free(&q);

    assert_int_equal(parse("&&a=1&&&b=2&&", &q), 0);
    assert_int_equal(q.count, 2);
    assert_string_equal(q.names[0], "a");
    assert_string_equal(q.names[1], "b");
    pe_query_free(&q);

    static const char *const nothing[] = {"&", "&&&&", ""};
    for (size_t i = 0; i < PE_ARRAY_LEN(nothing); i++) {
        assert_int_equal(parse(nothing[i], &q), 0);
        assert_int_equal(q.count, 0);
        assert_null(pe_query_get(&q, ""));
        pe_query_free(&q);
    }

    /* A lone '=' is a pair with an empty name and an empty value. */
    assert_int_equal(parse("=", &q), 0);
    assert_int_equal(q.count, 1);
    assert_string_equal(pe_query_get(&q, ""), "");
    pe_query_free(&q);
}

static void test_duplicates_first_wins(void **state)
{
    (void)state;
    pe_query_t q;
    assert_int_equal(parse("a=1&b=2&a=3&a", &q), 0);
    assert_int_equal(q.count, 4);
    assert_string_equal(pe_query_get(&q, "a"), "1");
    /* All of them are kept, in order. */
    assert_string_equal(q.values[2], "3");
    assert_string_equal(q.names[3], "a");
    assert_string_equal(q.values[3], "");
    pe_query_free(&q);

    assert_int_equal(parse("a&a=2", &q), 0);
    assert_string_equal(pe_query_get(&q, "a"), "");
    pe_query_free(&q);
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "a=%00", "%00=1",  "a=x%00y", "a=%",      "a=%4",         "a=%zz",
        "a=%4g", "%=1",    "a=1&b=%", "a=%C0%80", "a=%ED%A0%80",  "a=%F4%90%80%80",
        "a=%C3", "a=\xff", "\xc3=1",  "a=%E2%82", "ok=1&bad=%FF", "a=%%",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        pe_query_t q;
        int rc = parse(bad[i], &q);
        if (rc != PE_EINVAL)
            fail_msg("query \"%s\": rc %d, want PE_EINVAL", bad[i], rc);
        pe_query_free(&q);
    }
    /* A raw NUL inside the counted query. */
    pe_query_t q;
    assert_int_equal(parse_n("a=1\0b", 5, &q), PE_EINVAL);
    pe_query_free(&q);
}

static void test_param_limit(void **state)
{
    (void)state;
    pe_buf_t b = PE_BUF_INIT;
    for (int i = 0; i < PE_QUERY_MAX_PARAMS; i++)
        assert_int_equal(pe_buf_printf(&b, "%sp%d=%d", i ? "&" : "", i, i * 10), 0);

    pe_query_t q;
    assert_int_equal(parse_n(b.data, b.len, &q), 0);
    check_well_formed(&q);
    assert_int_equal(q.count, PE_QUERY_MAX_PARAMS);
    assert_string_equal(pe_query_get(&q, "p0"), "0");
    assert_string_equal(pe_query_get(&q, "p63"), "630");
    pe_query_free(&q);

    /* Empty pairs around them do not count. */
    pe_buf_t padded = PE_BUF_INIT;
    assert_int_equal(pe_buf_printf(&padded, "&&%s&&&", b.data), 0);
    assert_int_equal(parse_n(padded.data, padded.len, &q), 0);
    assert_int_equal(q.count, PE_QUERY_MAX_PARAMS);
    pe_query_free(&q);
    pe_buf_free(&padded);

    /* One more is too many, whether it has a value or not. */
    pe_buf_t more = PE_BUF_INIT;
    assert_int_equal(pe_buf_printf(&more, "%s&p64=640", b.data), 0);
    assert_int_equal(parse_n(more.data, more.len, &q), PE_ETOOBIG);
    pe_query_free(&q);
    pe_buf_reset(&more);
    assert_int_equal(pe_buf_printf(&more, "%s&x", b.data), 0);
    assert_int_equal(parse_n(more.data, more.len, &q), PE_ETOOBIG);
    pe_query_free(&q);
    pe_buf_free(&more);

    /* Many one-byte pairs: the most storage per input byte. */
    pe_buf_t tiny = PE_BUF_INIT;
    for (int i = 0; i < PE_QUERY_MAX_PARAMS; i++)
        assert_int_equal(pe_buf_puts(&tiny, i ? "&=" : "="), 0);
    assert_int_equal(parse_n(tiny.data, tiny.len, &q), 0);
    assert_int_equal(q.count, PE_QUERY_MAX_PARAMS);
    pe_query_free(&q);
    pe_buf_free(&tiny);
    pe_buf_free(&b);
}

static void test_empty_and_long(void **state)
{
    (void)state;
    pe_query_t q;
    assert_int_equal(parse_n("", 0, &q), 0);
    assert_int_equal(q.count, 0);
    assert_null(pe_query_get(&q, "a"));
    pe_query_free(&q);

    /* A 200 KB value, plain and fully percent-encoded. */
    enum { N = 200000 };
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_buf_puts(&b, "k=v&big="), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(pe_buf_append(&b, "x", 1), 0);
    assert_int_equal(pe_buf_puts(&b, "&enc="), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(pe_buf_puts(&b, i % 2 ? "%41" : "+"), 0);
    assert_int_equal(parse_n(b.data, b.len, &q), 0);
    assert_int_equal(q.count, 3);
    assert_string_equal(pe_query_get(&q, "k"), "v");
    const char *big = pe_query_get(&q, "big");
    assert_non_null(big);
    assert_int_equal(strlen(big), N);
    assert_true(big[0] == 'x' && big[N - 1] == 'x');
    const char *enc = pe_query_get(&q, "enc");
    assert_non_null(enc);
    assert_int_equal(strlen(enc), N);
    assert_true(enc[0] == ' ' && enc[1] == 'A' && enc[N - 1] == 'A');
    pe_query_free(&q);
    pe_buf_free(&b);
}

static void test_length_counted(void **state)
{
    (void)state;
    pe_query_t q;
    assert_int_equal(parse_n("a=1&b=2", 3, &q), 0);
    assert_int_equal(q.count, 1);
    assert_string_equal(pe_query_get(&q, "a"), "1");
    assert_null(pe_query_get(&q, "b"));
    pe_query_free(&q);

    /* A cut that leaves a broken escape is invalid. */
    assert_int_equal(parse_n("a=%41", 4, &q), PE_EINVAL);
    pe_query_free(&q);
}

static void test_free_is_null_safe(void **state)
{
    (void)state;
    pe_query_free(NULL);
    pe_query_t q;
    assert_int_equal(parse("a=1", &q), 0);
    pe_query_free(&q);
    assert_int_equal(q.count, 0);
    assert_null(pe_query_get(&q, "a"));
    pe_query_free(&q); /* twice */

    /* A parse over a used struct starts from scratch (after a free). */
    assert_int_equal(parse("b=2", &q), 0);
    assert_null(pe_query_get(&q, "a"));
    assert_string_equal(pe_query_get(&q, "b"), "2");
    pe_query_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_decoding),
        cmocka_unit_test(test_missing_values_and_empty_pairs),
        cmocka_unit_test(test_duplicates_first_wins),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_param_limit),
        cmocka_unit_test(test_empty_and_long),
        cmocka_unit_test(test_length_counted),
        cmocka_unit_test(test_free_is_null_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
