/*
 * test_attribution.c — the pure part of attribution (src/experiments/attribution.c): whether
 * two changes' segments can reach the same visitor, which decides whether their credit may be
 * added (disjoint) or only the larger one counts (overlapping).
 */
#include <stdlib.h>

#include "pe/experiments.h"
#include "pe_test.h"

static bool overlap(const char *a, const char *b)
{
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    bool r = pe_experiments_segments_overlap(x, y);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return r;
}

static void test_segments(void **state)
{
    (void)state;
    const char *mobile =
        "[{\"attribute\":\"device.type\",\"operator\":\"eq\",\"value\":\"mobile\"}]";
    const char *desktop =
        "[{\"attribute\":\"device.type\",\"operator\":\"eq\",\"value\":\"desktop\"}]";
    const char *mobile_de =
        "[{\"attribute\":\"device.type\",\"operator\":\"eq\",\"value\":\"mobile\"},"
        " {\"attribute\":\"country\",\"operator\":\"eq\",\"value\":\"DE\"}]";
    const char *not_mobile =
        "[{\"attribute\":\"device.type\",\"operator\":\"neq\",\"value\":\"mobile\"}]";
    const char *tablet_or_mobile =
        "[{\"attribute\":\"device.type\",\"operator\":\"in\",\"value\":[\"tablet\",\"mobile\"]}]";
    const char *fr = "[{\"attribute\":\"country\",\"operator\":\"in\",\"value\":[\"FR\",\"IT\"]}]";
    /* everyone overlaps with everyone */
    assert_true(overlap("[]", mobile));
    assert_true(overlap("[]", "[]"));
    /* one attribute with values no visitor has in both: disjoint */
    assert_false(overlap(mobile, desktop));
    assert_false(overlap(desktop, mobile_de));
    assert_false(overlap(mobile_de, fr));
    /* a value in common, or different attributes: overlapping */
    assert_true(overlap(mobile, mobile_de));
    assert_true(overlap(tablet_or_mobile, mobile));
    assert_true(overlap(mobile, fr));
    /* any operator other than eq / in is not reasoned about: assumed to overlap */
    assert_true(overlap(mobile, not_mobile));
    /* numbers and strings are different values; unreadable lists overlap */
    assert_false(overlap("[{\"attribute\":\"cart.value\",\"operator\":\"eq\",\"value\":50}]",
                         "[{\"attribute\":\"cart.value\",\"operator\":\"eq\",\"value\":\"50\"}]"));
    assert_true(overlap("null", mobile));
    assert_true(overlap("{\"rules\":[]}", mobile));
    assert_true(pe_experiments_segments_overlap(NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
