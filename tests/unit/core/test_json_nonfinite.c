/*
 * test_json_nonfinite.c — the one rule for numbers that are not finite (pe_json_find_nonfinite):
 * cJSON parses 1e400 to ±inf and prints it as null, so every validator of untrusted JSON asks
 * this function and names the path it reports.
 *
 * Invariants checked:
 *  1. Every finite tree (nested objects and arrays, the extremes of a double, 1e-400 which
 *     underflows to 0) has no finding, and the path is left as the prefix.
 *  2. 1e400, -1e400 and a nested {"n":1e400} are found, with the first one in document order
 *     (depth first) reported.
 *  3. The path is spelled as the validators spell theirs: prefix, ".key", "[i]"; keys quoted as
 *     events/validate.c quotes them (48 bytes cut at a character boundary then "...", control
 *     bytes and ' as '?', the empty key as ""); a short buffer cuts the path at a UTF-8
 *     boundary and stays NUL-terminated.
 *  4. A printed tree shows why the rule exists: inf prints as null.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe_test.h"

static cJSON *parse(const char *text)
{
    cJSON *j = NULL;
    char err[128];
    if (pe_json_parse(text, strlen(text), &j, err, sizeof err) != 0)
        fail_msg("%s: %s", text, err);
    return j;
}

/* The path pe_json_find_nonfinite reports for text under prefix, or NULL when it finds none. */
static const char *found(const char *text, const char *prefix, char *path, size_t pathlen)
{
    cJSON *j = parse(text);
    bool hit = pe_json_find_nonfinite(j, prefix, path, pathlen);
    cJSON_Delete(j);
    return hit ? path : NULL;
}

static void test_finite_trees(void **state)
{
    (void)state;
    static const char *const FINITE[] = {
        "0",
        "\"1e400\"",
        "[]",
        "{}",
        "[1, -2.5, 1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 1e-400]",
        "{\"a\":{\"b\":[true,null,\"x\",{\"c\":[[[1e300]]]}]}}",
    };
    char path[64];
    for (size_t i = 0; i < PE_ARRAY_LEN(FINITE); i++) {
        if (found(FINITE[i], "p", path, sizeof path))
            fail_msg("%s: found %s", FINITE[i], path);
        assert_string_equal(path, "p");
    }
    assert_false(pe_json_find_nonfinite(NULL, "x", path, sizeof path));
}

static void test_paths(void **state)
{
    (void)state;
    static const struct {
        const char *json, *prefix, *path;
    } CASES[] = {
        {"1e400", "variants[0].value", "variants[0].value"},
        {"-1e400", "variants[0].value", "variants[0].value"},
        {"1e400", "", ""},
        {"1e400", NULL, ""},
        {"{\"n\":1e400}", "variants[1].value", "variants[1].value.n"},
        {"{\"n\":1e400}", "", "n"},
        {"[0, 1, -1e999]", "values", "values[2]"},
        {"{\"a\":[1,{\"b\":2},{\"c\":[0,1e400]}],\"z\":1e400}", "custom", "custom.a[2].c[1]"},
        /* the first in document order, depth first */
        {"{\"a\":{\"x\":1,\"y\":-1e400},\"b\":1e400}", "p", "p.a.y"},
        /* keys quoted as the validators quote them */
        {"{\"\":1e400}", "custom", "custom.\"\""},
        {"{\"a\\nb\":1e400}", "custom", "custom.a?b"},
        {"{\"it's\":1e400}", "custom", "custom.it?s"},
        {"{\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\xc3\xa9tail\":1e400}", "c",
         "c.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk..."},
    };
    char path[256];
    for (size_t i = 0; i < PE_ARRAY_LEN(CASES); i++) {
        const char *got = found(CASES[i].json, CASES[i].prefix, path, sizeof path);
        if (!got)
            fail_msg("%s: nothing found", CASES[i].json);
        if (strcmp(got, CASES[i].path) != 0)
            fail_msg("%s: path %s, want %s", CASES[i].json, got, CASES[i].path);
    }
}

static void test_short_buffer(void **state)
{
    (void)state;
    char path[12];
    /* "p.\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" would be 12 bytes: cut at a boundary */
    assert_non_null(
        found("{\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\":1e400}", "p", path, sizeof path));
    assert_true(strlen(path) < sizeof path);
    assert_true(pe_utf8_valid(path, strlen(path)));
    assert_int_equal(strncmp(path, "p.\xc3\xa9", 4), 0);
    /* no buffer at all: still the verdict */
    cJSON *j = parse("[1e400]");
    assert_true(pe_json_find_nonfinite(j, "x", NULL, 0));
    char one[1];
    assert_true(pe_json_find_nonfinite(j, "x", one, sizeof one));
    assert_string_equal(one, "");
    cJSON_Delete(j);
}

/* Why the rule exists: what cJSON stores for 1e400 is null, not the number that was sent. */
static void test_inf_prints_as_null(void **state)
{
    (void)state;
    cJSON *j = parse("{\"n\":1e400}");
    char *text = pe_json_print(j);
    assert_string_equal(text, "{\"n\":null}");
    free(text);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finite_trees),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_short_buffer),
        cmocka_unit_test(test_inf_prints_as_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
