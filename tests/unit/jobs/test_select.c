/*
 * test_select.c — PE_JOBS: which background jobs a `serve` runs (src/jobs/select.c).
 *
 * Checks: "all" and an unset spec select every job in table order; "none" selects nothing; a
 * list selects exactly its names in table order whatever order it gives them in, with spaces
 * around names ignored and a name given twice taken once; an unknown name, an empty name,
 * "all" inside a list, and a name longer than any job are refused with a message that names
 * PE_JOBS and the offending part.
 */
#include <string.h>

#include "pe/jobs.h"
#include "pe_test.h"

static int noop(void *arg, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    return 0;
}

static const pe_job_t JOBS[] = {
    {"partition_maintenance", 3600, 5, noop, NULL},
    {"aggregate", 60, 10, noop, NULL},
    {"changeset_expiry", 60, 15, noop, NULL},
};

static void expect(const char *spec, const char *const *want, size_t nwant)
{
    pe_job_t out[PE_ARRAY_LEN(JOBS)];
    size_t n = 99;
    char err[512] = "";
    if (pe_jobs_select(spec, JOBS, PE_ARRAY_LEN(JOBS), out, &n, err, sizeof err) != 0)
        fail_msg("'%s' refused: %s", spec ? spec : "(unset)", err);
    if (n != nwant)
        fail_msg("'%s' selected %zu jobs, want %zu", spec ? spec : "(unset)", n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(out[i].name, want[i]);
}

static void expect_refused(const char *spec, const char *part)
{
    pe_job_t out[PE_ARRAY_LEN(JOBS)];
    size_t n = 99;
    char err[512] = "";
    int rc = pe_jobs_select(spec, JOBS, PE_ARRAY_LEN(JOBS), out, &n, err, sizeof err);
    if (rc != PE_EINVAL)
        fail_msg("'%s' accepted (%zu jobs), want refused", spec, n);
    assert_int_equal(n, 0);
    if (!strstr(err, "PE_JOBS") || !strstr(err, part) || !strstr(err, "aggregate"))
        fail_msg("'%s': message '%s' should name PE_JOBS, '%s' and the jobs", spec, err, part);
}

static void test_all_and_none(void **state)
{
    (void)state;
    static const char *const all[] = {"partition_maintenance", "aggregate", "changeset_expiry"};
    expect("all", all, 3);
    expect(NULL, all, 3);
    expect(" all ", all, 3);
    expect("none", NULL, 0);
}

static void test_lists(void **state)
{
    (void)state;
    static const char *const two[] = {"partition_maintenance", "changeset_expiry"};
    expect("changeset_expiry,partition_maintenance", two, 2);
    expect(" changeset_expiry , partition_maintenance ", two, 2);
    static const char *const one[] = {"aggregate"};
    expect("aggregate,aggregate", one, 1);
}

static void test_refused(void **state)
{
    (void)state;
    expect_refused("aggregat", "'aggregat'");
    expect_refused("aggregate,", "''");
    expect_refused("", "''");
    expect_refused(",aggregate", "''");
    expect_refused("all,aggregate", "'all'");
    expect_refused("none,aggregate", "'none'");
    expect_refused("aggregate;changeset_expiry", "'aggregate;changeset_expiry'");
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    memcpy(longname, "aggregate", 9); /* a job's name as prefix, then more */
    expect_refused(longname, "'aggregateaaaa");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_and_none),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
