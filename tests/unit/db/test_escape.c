/*
 * test_escape.c — what the db module decides without a server: COPY text escaping, migration
 * file names, and the SQLSTATE → PE_E… table.
 *
 * Invariant: escaped COPY text never contains a raw tab, newline or carriage return, so caller
 * data cannot split a row or a column.
 */
#include <string.h>

#include "db/internal.h"
#include "db/migrate.h"
#include "pe_test.h"

static void expect_escape(const char *in, size_t n, const char *want)
{
    pe_buf_t b = PE_BUF_INIT;

    assert_int_equal(pe_db_copy_escape(&b, in, n), 0);
    if (strlen(want) != b.len || (b.len && memcmp(b.data, want, b.len) != 0))
        fail_msg("escaped \"%.*s\" as \"%.*s\", want \"%s\"", (int)n, in, (int)b.len,
                 b.data ? b.data : "", want);
    for (size_t i = 0; i < b.len; i++)
        assert_true(b.data[i] != '\t' && b.data[i] != '\n' && b.data[i] != '\r');
    pe_buf_free(&b);
}

static void test_copy_escape(void **state)
{
    (void)state;
    expect_escape("plain", 5, "plain");
    expect_escape("", 0, "");
    expect_escape("a\tb", 3, "a\\tb");
    expect_escape("line1\nline2\r\n", 13, "line1\\nline2\\r\\n");
    expect_escape("C:\\dir\\", 7, "C:\\\\dir\\\\");
    expect_escape("\\.", 2, "\\\\.");
    expect_escape("\\N", 2, "\\\\N");
    expect_escape("\b\f\v", 3, "\\b\\f\\v");
    expect_escape("\x01"
                  "7",
                  2, "\\0017");
    expect_escape("\x1f\x7f", 2, "\\037\\177");
    expect_escape("nul\0in", 6, "nul\\000in");
    expect_escape("caf\xc3\xa9 \xe6\x9d\xb1", 9, "caf\xc3\xa9 \xe6\x9d\xb1");

    /* Appends: the buffer keeps what was there. */
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_buf_puts(&b, "1\t"), 0);
    assert_int_equal(pe_db_copy_escape(&b, "x\ty", 3), 0);
    assert_string_equal(b.data, "1\tx\\ty");
    pe_buf_free(&b);
}

static void test_migration_names(void **state)
{
    (void)state;
    static const char *const good[] = {"0001_tenancy.sql", "0042_add_index_2.sql", "9999_x.sql"};
    static const char *const bad[] = {
        NULL,
        "",
        "1_x.sql",
        "00001_x.sql",
        "0001-x.sql",
        "0001_.sql",
        "0001_X.sql",
        "0001_x.txt",
        "0001_x.sql~",
        "0001_x.sql.bak",
        "../0001_x.sql",
        "abcd_x.sql",
        "0001_a b.sql",
        "0001_a-b.sql",
        "sub/0001_x.sql",
    };
    char err[256];

    for (size_t i = 0; i < PE_ARRAY_LEN(good); i++) {
        if (pe_db_migration_name_check(good[i], err, sizeof(err)) != 0)
            fail_msg("%s refused: %s", good[i], err);
    }
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        if (pe_db_migration_name_check(bad[i], err, sizeof(err)) != PE_EINVAL)
            fail_msg("%s accepted", bad[i] ? bad[i] : "(null)");
        assert_non_null(strstr(err, "NNNN_name.sql"));
    }
}

static void test_embedded_migrations_are_well_formed(void **state)
{
    (void)state;
    char err[256];

    for (size_t i = 0; i < pe_embedded_migrations_count; i++) {
        if (pe_db_migration_name_check(pe_embedded_migrations[i].path, err, sizeof(err)) != 0)
            fail_msg("%s", err);
        if (i > 0 &&
            strcmp(pe_embedded_migrations[i - 1].path, pe_embedded_migrations[i].path) >= 0)
            fail_msg("embedded migrations are not sorted at %s", pe_embedded_migrations[i].path);
    }
}

static void test_sqlstate_table(void **state)
{
    (void)state;
    static const struct {
        const char *state;
        int rc;
    } cases[] = {
        {"23505", PE_ECONFLICT}, {"23P01", PE_ECONFLICT}, {"40001", PE_ECONFLICT},
        {"40P01", PE_ECONFLICT}, {"23514", PE_EINVAL},    {"23502", PE_EINVAL},
        {"23503", PE_EINVAL},    {"22P02", PE_EINVAL},    {"22001", PE_EINVAL},
        {"22003", PE_EINVAL},    {"57014", PE_ETIMEOUT},  {"55P03", PE_ETIMEOUT},
        {"08006", PE_EUNAVAIL},  {"08001", PE_EUNAVAIL},  {"53300", PE_EUNAVAIL},
        {"57P01", PE_EUNAVAIL},  {"57P03", PE_EUNAVAIL},  {"42501", PE_EFORBIDDEN},
        {"42601", PE_EINTERNAL}, {"42P01", PE_EINTERNAL}, {"XX000", PE_EINTERNAL},
        {"", PE_EINTERNAL},      {NULL, PE_EINTERNAL},    {"2350", PE_EINTERNAL},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        int rc = pe_db_sqlstate_to_rc(cases[i].state);
        if (rc != cases[i].rc)
            fail_msg("SQLSTATE %s → %d, want %d", cases[i].state ? cases[i].state : "(null)", rc,
                     cases[i].rc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_escape),
        cmocka_unit_test(test_migration_names),
        cmocka_unit_test(test_embedded_migrations_are_well_formed),
        cmocka_unit_test(test_sqlstate_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
