/*
 * test_validate.c — the tenancy input rules without a database: store names, currencies, time
 * zone shapes, emails, passwords and uuids, each as a table of accepted and refused inputs.
 *
 * Invariant: every refusal also checks that the message names the field, because the API shows
 * that message to the merchant next to the field it names.
 */
#include <string.h>

#include "pe_test.h"
#include "tenancy/tenancy_internal.h"

typedef struct {
    const char *input;
    int want;
} case_t;

static void expect_field(const char *err, const char *field)
{
    size_t n = strlen(field);
    if (strncmp(err, field, n) != 0 || err[n] != ':')
        fail_msg("message \"%s\" does not name the field %s", err, field);
}

static void test_store_name(void **state)
{
    (void)state;
    char max[TENANCY_NAME_MAX + 1], over[TENANCY_NAME_MAX + 2];
    memset(max, 'a', TENANCY_NAME_MAX);
    max[TENANCY_NAME_MAX] = '\0';
    memset(over, 'a', TENANCY_NAME_MAX + 1);
    over[TENANCY_NAME_MAX + 1] = '\0';
    const case_t cases[] = {
        {"Acme", 0},
        {"Café ☕ 東京", 0},
        {max, 0},
        {" leading space is fine", 0},
        {"", PE_EINVAL},
        {over, PE_EINVAL},
        {"   ", PE_EINVAL},
        {"tab\there", PE_EINVAL},
        {"new\nline", PE_EINVAL},
        {"bell\a", PE_EINVAL},
        {"del\x7f", PE_EINVAL},
        {"c1 \xc2\x85 next-line", PE_EINVAL},
        {"c1 \xc2\x9f", PE_EINVAL},
        {"latin-1 \xe9t\xe9", PE_EINVAL},
        {"\xff\xfe", PE_EINVAL},
        {"overlong \xc0\xaf", PE_EINVAL},
        {"truncated \xe2\x82", PE_EINVAL},
        {"surrogate \xed\xa0\x80", PE_EINVAL},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        char err[128] = "";
        int rc = tenancy_validate_store_name(cases[i].input, err, sizeof err);
        if (rc != cases[i].want)
            fail_msg("case %zu: got %d, want %d", i, rc, cases[i].want);
        if (rc != 0)
            expect_field(err, "name");
    }
    char err[128] = "";
    assert_int_equal(tenancy_validate_store_name(NULL, err, sizeof err), PE_EINVAL);
    /* No message buffer is fine too. */
    assert_int_equal(tenancy_validate_store_name("", NULL, 0), PE_EINVAL);
}

static void test_currency(void **state)
{
    (void)state;
    const case_t cases[] = {
        {"USD", 0},          {"EUR", 0},         {"usd", PE_EINVAL}, {"Usd", PE_EINVAL},
        {"EURO", PE_EINVAL}, {"US", PE_EINVAL},  {"", PE_EINVAL},    {"U1D", PE_EINVAL},
        {"US ", PE_EINVAL},  {"ÉUR", PE_EINVAL},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        char err[128] = "";
        int rc = tenancy_validate_currency(cases[i].input, err, sizeof err);
        if (rc != cases[i].want)
            fail_msg("case %zu (%s): got %d, want %d", i, cases[i].input, rc, cases[i].want);
        if (rc != 0)
            expect_field(err, "currency");
    }
}

static void test_timezone_shape(void **state)
{
    (void)state;
    char over[TENANCY_TIMEZONE_MAX + 2];
    memset(over, 'A', sizeof over - 1);
    over[sizeof over - 1] = '\0';
    const case_t cases[] = {
        {"UTC", 0},
        {"Europe/Paris", 0},
        {"America/Argentina/Buenos_Aires", 0},
        {"Etc/GMT+3", 0},
        {"America/Port-au-Prince", 0},
        {"", PE_EINVAL},
        {over, PE_EINVAL},
        {"Europe/Paris'; DROP TABLE stores; --", PE_EINVAL},
        {"Europe Paris", PE_EINVAL},
        {"Europe/Zürich", PE_EINVAL},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        char err[128] = "";
        int rc = tenancy_validate_timezone_shape(cases[i].input, err, sizeof err);
        if (rc != cases[i].want)
            fail_msg("case %zu (%s): got %d, want %d", i, cases[i].input, rc, cases[i].want);
        if (rc != 0)
            expect_field(err, "timezone");
    }
}

static void test_email(void **state)
{
    (void)state;
    static const struct {
        const char *input;
        const char *want; /* normalised form, or NULL when refused */
    } cases[] = {
        {"Owner@Example.COM", "owner@example.com"},
        {"a@b", "a@b"},
        {"first.last+tag@shop.example", "first.last+tag@shop.example"},
        {"ÉLODIE@Exemple.fr", "Élodie@exemple.fr"}, /* only ASCII folds */
        {"", NULL},
        {"ab", NULL},
        {"no-at-sign", NULL},
        {"@example.com", NULL},
        {"owner@", NULL},
        {"a@@b.c", NULL},
        {"a@b@c", NULL},
        {"a b@c.d", NULL},
        {" a@b.c", NULL},
        {"a@b.c\n", NULL},
        {"a@b.c\r", NULL},
        {"a\x01@b.c", NULL},
        {"\xff@b.c", NULL},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        char out[TENANCY_EMAIL_MAX + 1] = "";
        char err[128] = "";
        int rc = tenancy_email_normalise(cases[i].input, out, err, sizeof err);
        if (cases[i].want) {
            if (rc != 0)
                fail_msg("case %zu (%s): refused: %s", i, cases[i].input, err);
            assert_string_equal(out, cases[i].want);
        } else {
            if (rc != PE_EINVAL)
                fail_msg("case %zu (%s): accepted as %s", i, cases[i].input, out);
            expect_field(err, "email");
        }
    }

    /* Length limits: 254 bytes is the most an address can be. */
    char email[TENANCY_EMAIL_MAX + 2];
    char out[TENANCY_EMAIL_MAX + 1];
    memset(email, 'a', TENANCY_EMAIL_MAX);
    email[0] = 'A';
    email[64] = '@';
    email[TENANCY_EMAIL_MAX] = '\0';
    assert_int_equal(tenancy_email_normalise(email, out, NULL, 0), 0);
    assert_int_equal(out[0], 'a');
    assert_int_equal(strlen(out), TENANCY_EMAIL_MAX);
    email[TENANCY_EMAIL_MAX] = 'a';
    email[TENANCY_EMAIL_MAX + 1] = '\0';
    assert_int_equal(tenancy_email_normalise(email, out, NULL, 0), PE_EINVAL);
    assert_int_equal(tenancy_email_normalise(NULL, out, NULL, 0), PE_EINVAL);
}

static void test_password(void **state)
{
    (void)state;
    char pw[TENANCY_PASSWORD_MAX + 2];
    char err[128] = "";
    memset(pw, 'p', sizeof pw);
    pw[TENANCY_PASSWORD_MAX] = '\0';
    assert_int_equal(tenancy_validate_password(pw, err, sizeof err), 0);
    pw[TENANCY_PASSWORD_MAX] = 'p';
    pw[TENANCY_PASSWORD_MAX + 1] = '\0';
    assert_int_equal(tenancy_validate_password(pw, err, sizeof err), PE_EINVAL);
    expect_field(err, "password");
    assert_int_equal(tenancy_validate_password("12345678", err, sizeof err), 0);
    assert_int_equal(tenancy_validate_password("1234567", err, sizeof err), PE_EINVAL);
    assert_int_equal(tenancy_validate_password("", err, sizeof err), PE_EINVAL);
    assert_int_equal(tenancy_validate_password(NULL, err, sizeof err), PE_EINVAL);
    /* The message must never echo the password. */
    assert_null(strstr(err, "1234567"));
}

static void test_uuid(void **state)
{
    (void)state;
    assert_true(tenancy_uuid_valid("0b9f6c1e-3d4a-4f5b-8c7d-9e0f1a2b3c4d"));
    assert_true(tenancy_uuid_valid("0B9F6C1E-3D4A-4F5B-8C7D-9E0F1A2B3C4D"));
    assert_false(tenancy_uuid_valid(NULL));
    assert_false(tenancy_uuid_valid(""));
    assert_false(tenancy_uuid_valid("not-a-uuid"));
    assert_false(tenancy_uuid_valid("0b9f6c1e3d4a4f5b8c7d9e0f1a2b3c4d"));
    assert_false(tenancy_uuid_valid("0b9f6c1e-3d4a-4f5b-8c7d-9e0f1a2b3c4d0"));
    assert_false(tenancy_uuid_valid("0b9f6c1e-3d4a-4f5b-8c7d-9e0f1a2b3c4"));
    assert_false(tenancy_uuid_valid("0b9f6c1e-3d4a-4f5b-8c7d_9e0f1a2b3c4d"));
    assert_false(tenancy_uuid_valid("0b9f6c1g-3d4a-4f5b-8c7d-9e0f1a2b3c4d"));
    assert_false(tenancy_uuid_valid("{b9f6c1e-3d4a-4f5b-8c7d-9e0f1a2b3c4d"));
    assert_false(tenancy_uuid_valid("0b9f6c1e-3d4a-4f5b-8c7d-9e0f1a2b3c'd"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_name),     cmocka_unit_test(test_currency),
        cmocka_unit_test(test_timezone_shape), cmocka_unit_test(test_email),
        cmocka_unit_test(test_password),       cmocka_unit_test(test_uuid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
