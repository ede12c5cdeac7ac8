/*
 * test_refusal.c — the one refusal shape and the one control-character rule (core/refusal.c).
 *
 * Invariants checked:
 *  1. pe_text_has_control is true for every C0 control, DEL and every C1 control (U+0080..U+009F
 *     as UTF-8), wherever it stands, and false for every other character, the empty string and
 *     a lone 0xC2 at the end; it reads exactly n bytes.
 *  2. pe_refuse returns the rc it was given, writes the code (the error table's when NULL) and
 *     the formatted message, cuts an over-long message to the field (still NUL-terminated), and
 *     accepts a NULL refusal.
 *  3. pe_refusal_json writes the one error body, escaping what JSON must escape.
 *  4. The validators that take text from clients all apply the rule with one wording: a C1
 *     control is refused by the event, flag, catalogue and ChangeSet validators alike.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/catalog.h"
#include "pe/changeset.h"
#include "pe/events.h"
#include "pe/flags.h"
#include "pe_test.h"

static void test_control_rule(void **state)
{
    (void)state;
    char s[8];
    for (unsigned c = 0; c < 0x80; c++) {
        snprintf(s, sizeof s, "a%cb", (char)(c ? c : 'x'));
        bool want = (c > 0 && c < 0x20) || c == 0x7F;
        if (c == 0) {
            s[1] = '\0';
            assert_true(pe_text_has_control(s, 3)); /* a NUL inside the n bytes */
            continue;
        }
        if (pe_text_has_control(s, 3) != want)
            fail_msg("U+%04X: %s", c, want ? "not found" : "found");
    }
    for (unsigned c = 0x80; c < 0x800; c++) { /* every two-byte character */
        s[0] = 'a';
        s[1] = (char)(0xC0 | (c >> 6));
        s[2] = (char)(0x80 | (c & 0x3F));
        s[3] = 'b';
        bool want = c <= 0x9F;
        if (pe_text_has_control(s, 4) != want)
            fail_msg("U+%04X: %s", c, want ? "not found" : "found");
        if (pe_text_has_control(s + 1, 2) != want) /* at the very start and end */
            fail_msg("U+%04X alone: %s", c, want ? "not found" : "found");
    }
    assert_false(pe_text_has_control("", 0));
    assert_false(pe_text_has_control("Grüße, 東京 🛒", strlen("Grüße, 東京 🛒")));
    assert_false(pe_text_has_control("a\xC2", 2)); /* a cut lead byte is not a control */
    assert_false(pe_text_has_control("ab\n", 2));  /* only n bytes are read */
}

static void test_refuse(void **state)
{
    (void)state;
    pe_refusal_t r;
    assert_int_equal(pe_refuse(&r, PE_EINVAL, "out_of_range", "%s: must be <= %d", "x.y", 5),
                     PE_EINVAL);
    assert_string_equal(r.code, "out_of_range");
    assert_string_equal(r.message, "x.y: must be <= 5");
    assert_int_equal(pe_refuse(&r, PE_ETOOBIG, NULL, "big"), PE_ETOOBIG);
    assert_string_equal(r.code, "payload_too_large");
    assert_int_equal(pe_refuse(NULL, PE_ECONFLICT, "c", "m"), PE_ECONFLICT);

    char long_text[2 * PE_REFUSAL_MESSAGE_LEN];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    pe_refuse(&r, PE_EINVAL, "too_long_a_code_for_the_field_of_32_bytes", "%s", long_text);
    assert_int_equal(strlen(r.message), PE_REFUSAL_MESSAGE_LEN - 1);
    assert_int_equal(strlen(r.code), PE_REFUSAL_CODE_LEN - 1);
    pe_refusal_clear(&r);
    assert_string_equal(r.code, "");
    assert_string_equal(r.message, "");
    pe_refusal_clear(NULL);
}

static void test_json(void **state)
{
    (void)state;
    pe_refusal_t r;
    pe_refuse(&r, PE_EINVAL, "invalid_format", "name: \"%s\"\n", "q\\");
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_refusal_json(&r, &b), 0);
    assert_string_equal(b.data, "{\"error\":{\"code\":\"invalid_format\",\"message\":"
                                "\"name: \\\"q\\\\\\\"\\n\"}}");
    pe_buf_free(&b);
}

/* Invariant 4: a C1 control (U+0085, NEXT LINE) in each validator's text field. */
static void test_validators_share_the_rule(void **state)
{
    (void)state;
    pe_refusal_t r;
    cJSON *j;
    char err[128];

    static const char event[] =
        "{\"eventId\":\"4f1c2a8e-9b7d-4c3e-8a1f-2b3c4d5e6f70\",\"name\":\"storefront.page.viewed\","
        "\"timestamp\":\"2026-11-24T10:00:00Z\",\"sessionId\":\"s\\u0085\",\"anonymousId\":\"a\"}";
    assert_int_equal(pe_json_parse(event, strlen(event), &j, err, sizeof err), 0);
    pe_event_t ev;
    assert_int_equal(pe_events_validate(j, 0, &ev, &r), PE_EINVAL);
    assert_string_equal(r.message, "sessionId: " PE_TEXT_CONTROL_RULE);
    cJSON_Delete(j);

    static const char flag[] =
        "{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"value\":1,\"weight\":100}],"
        "\"rules\":[{\"conditions\":[{\"attribute\":\"path\",\"operator\":\"in\","
        "\"values\":[\"/x\\u0085\"]}]}]}";
    assert_int_equal(pe_json_parse(flag, strlen(flag), &j, err, sizeof err), 0);
    cJSON *canonical = NULL;
    assert_int_equal(pe_flags_validate(j, false, &canonical, &r), PE_EINVAL);
    assert_null(canonical);
    assert_string_equal(r.code, "invalid_format");
    assert_non_null(strstr(r.message, "rules[0].conditions[0].values[0]: "));
    cJSON_Delete(j);

    static const char products[] =
        "[{\"sku\":\"a\\u0085\",\"name\":\"n\",\"category\":\"c\",\"price\":1}]";
    assert_int_equal(pe_json_parse(products, strlen(products), &j, err, sizeof err), 0);
    assert_int_equal(pe_catalog_validate(j, NULL, &r), PE_EINVAL);
    assert_string_equal(r.message, "products[0].sku: " PE_TEXT_CONTROL_RULE);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_rule),
        cmocka_unit_test(test_refuse),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_validators_share_the_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
